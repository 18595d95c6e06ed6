//! Malformed playbooks given to the real binary (`runsheet validate`), with
//! time and peak RSS, and a time-bounded fuzz loop over the loader and
//! validation (seconds in CI, minutes with `RUNSHEET_RELIABILITY=full`).

use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use runsheet_engine::check::StaticHost;
use runsheet_engine::loader::{load_environment, load_playbook, source_from_bytes};
use runsheet_engine::template::Templates;
use runsheet_engine::validation::{EnvironmentContext, validate};
use runsheet_engine::{Registry, SourceFile};

use super::{Measured, headline, measure};
use crate::lab::{Lab, TestResult};
use crate::reliability::{full, report, scale};

/// The head every generated playbook starts with.
const HEAD: &str = "runsheet: 1\nname: hostile\n";

/// The billion laughs: nine levels of ten aliases each, 10^9 strings if expanded.
fn alias_bomb() -> String {
    let mut text = format!(
        "{HEAD}vars:\n  l0: &l0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n"
    );
    for level in 1..=9 {
        let previous = format!("*l{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        text.push_str(&format!("  l{level}: &l{level} [{items}]\n"));
    }
    text.push_str("steps:\n  - {id: x, action: log, with: {message: \"{{ vars.l9 }}\"}}\n");
    text
}

/// `levels` nested flow sequences: `[[[...]]]`.
fn deep_flow(levels: usize) -> String {
    format!(
        "{HEAD}vars:\n  deep: {}{}\nsteps: []\n",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// `levels` nested block sequences on one line: `- - - ... x`.
fn deep_block(levels: usize) -> String {
    format!(
        "{HEAD}vars:\n  deep:\n    {}x\nsteps: []\n",
        "- ".repeat(levels)
    )
}

/// `levels` nested block mappings, one per line, each indented one more space.
fn deep_block_mappings(levels: usize) -> String {
    let mut text = format!("{HEAD}vars:\n");
    for level in 0..levels {
        text.push_str(&" ".repeat(level + 2));
        text.push_str("a:\n");
    }
    text.push_str("steps: []\n");
    text
}

/// A file of about `bytes` bytes: a valid head, then a long comment-free list.
fn big_file(bytes: usize) -> Vec<u8> {
    let mut text =
        format!("{HEAD}steps:\n  - {{id: x, action: log, with: {{message: hi}}}}\nvars:\n  big:\n")
            .into_bytes();
    let line = b"    - 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
    while text.len() + line.len() < bytes {
        text.extend_from_slice(line);
    }
    text
}

/// A valid playbook with one byte that is not UTF-8 at a known offset.
fn invalid_utf8() -> (Vec<u8>, usize) {
    let head = format!("{HEAD}steps:\n  - {{id: x, action: log, with: {{message: \"caf");
    let mut bytes = head.clone().into_bytes();
    bytes.push(0xe9);
    bytes.extend_from_slice(b"\"}}\n");
    (bytes, head.len())
}

/// One case: a name, the file, what the output must say.
struct Case {
    name: &'static str,
    file: Vec<u8>,
    expect: Vec<String>,
}

#[test]
fn malformed_files_are_refused_quickly_in_bounded_memory() -> TestResult {
    let lab = Lab::new()?;
    let (utf8, offset) = invalid_utf8();
    let mut cases = vec![
        Case {
            name: "alias bomb (10^9 strings)",
            file: alias_bomb().into_bytes(),
            expect: vec!["yaml::budget".into(), "too many alias expansions".into()],
        },
        Case {
            name: "alias chain at the node budget (4 wide, 30 deep)",
            file: alias_chain(4, 30).into_bytes(),
            expect: vec!["yaml::budget".into(), "too many alias expansions".into()],
        },
        Case {
            name: "alias chain just within the budget (4 wide, 9 deep: 700k nodes)",
            file: alias_chain(4, 9).into_bytes(),
            expect: vec!["case.yaml: ok (0 errors".into()],
        },
        Case {
            name: "flow nesting, 100,000 levels",
            file: deep_flow(100_000).into_bytes(),
            expect: vec!["yaml::budget".into(), "nested deeper than 64".into()],
        },
        Case {
            name: "block sequences, 100,000 levels",
            file: deep_block(100_000).into_bytes(),
            expect: vec!["yaml::budget".into(), "nested deeper than 64".into()],
        },
        Case {
            name: "block mappings, 2,000 levels",
            file: deep_block_mappings(2_000).into_bytes(),
            expect: vec!["yaml::budget".into(), "nested deeper than 64".into()],
        },
        Case {
            name: "100 MB file",
            file: big_file(100 * 1024 * 1024),
            expect: vec![
                "yaml::too-large".into(),
                "more than the 33554432 bytes".into(),
            ],
        },
        Case {
            name: "invalid UTF-8",
            file: utf8,
            expect: vec![
                "yaml::encoding".into(),
                format!("invalid byte 0xe9 at byte offset {offset}"),
                "case.yaml".into(),
            ],
        },
    ];
    if full() {
        // Just under the size limit: parsed in full, so this measures the parser's memory.
        cases.push(Case {
            name: "31 MB file (under the limit)",
            file: big_file(31 * 1024 * 1024),
            expect: vec!["case.yaml: ok (0 errors".into()],
        });
    }
    let mut rows = Vec::new();
    for case in cases {
        let path = lab.path().join("case.yaml");
        std::fs::write(&path, &case.file)?;
        let measured: Measured = measure(&lab, &["validate", "case.yaml"])?;
        let all = measured.run.all();
        let valid = case.expect.iter().any(|e| e.contains(": ok (0 errors"));
        assert_eq!(
            measured.run.code,
            Some(if valid { 0 } else { 3 }),
            "{}: {all}",
            case.name
        );
        for text in &case.expect {
            assert!(
                all.contains(text.as_str()),
                "{}: {text:?} missing: {all}",
                case.name
            );
        }
        assert!(!all.contains("panicked"), "{}: {all}", case.name);
        rows.push(vec![
            case.name.to_owned(),
            format!("{:.1} MB", case.file.len() as f64 / 1e6),
            format!(
                "exit {}: {} `{}`",
                measured.run.code.unwrap_or(-1),
                case.expect[0],
                if valid { "" } else { headline(&all) }
                    .chars()
                    .take(90)
                    .collect::<String>()
            ),
            measured.time(),
            measured.peak(),
        ]);
        std::fs::remove_file(&path)?;
    }
    report(
        "Hostile input: malformed files given to `runsheet validate`",
        &["case", "size", "outcome", "time", "peak RSS"],
        &rows,
    );
    Ok(())
}

#[test]
fn an_environment_file_bomb_is_refused_too() -> TestResult {
    let lab = Lab::new()?;
    let bomb = alias_bomb()
        .replace("name: hostile\n", "name: lab\n")
        .replace(
            "steps:\n  - {id: x, action: log, with: {message: \"{{ vars.l9 }}\"}}\n",
            "",
        );
    lab.write("bomb.env.yaml", &bomb)?;
    lab.write(
        "ok.yaml",
        &format!("{HEAD}steps:\n  - {{id: x, action: log, with: {{message: hi}}}}\n"),
    )?;
    let measured = measure(&lab, &["validate", "ok.yaml", "--env", "bomb.env.yaml"])?;
    let all = measured.run.all();
    assert_eq!(measured.run.code, Some(3), "{all}");
    assert!(
        all.contains("too many alias expansions") && all.contains("bomb.env.yaml"),
        "{all}"
    );
    Ok(())
}

/// Longest one case may take before it counts as a hang: the worst input within the
/// loader's budget (an alias chain expanding to 2,000,000 nodes) takes about 3 s in a
/// debug build on a loaded machine, a tenth of that in release.
const CASE_LIMIT: Duration = Duration::from_secs(if cfg!(debug_assertions) { 60 } else { 10 });

/// An alias chain of `width` aliases per level over `levels` levels: not a bomb at
/// small sizes, refused at the node budget at large ones.
fn alias_chain(width: usize, levels: usize) -> String {
    let mut text = format!("{HEAD}vars:\n  a0: &a0 [x, y]\n");
    for level in 1..=levels {
        let items = vec![format!("*a{}", level - 1); width].join(", ");
        text.push_str(&format!("  a{level}: &a{level} [{items}]\n"));
    }
    text.push_str("steps:\n  - {id: x, action: log, with: {message: hi}}\n");
    text
}

/// A tiny xorshift generator: reproducible from its seed, printed with the figures.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Text spliced into seeds: YAML and template punctuation, anchors, deep brackets.
const SNIPPETS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{{ steps.",
    "{{ inputs.x }}",
    "&a ",
    "*a",
    "&a [*a, *a, *a]",
    "<<: *a\n",
    "\t",
    "[[[[[[[[[[[[[[[[",
    "{{{{{{{{{{{{{{{{",
    "]]]]",
    "- ",
    ": ",
    "? ",
    "\n---\n",
    "\"",
    "'",
    "\\",
    "|\n",
    ">-\n",
    "!!binary ",
    "!!str ",
    "!vault ",
    "99999999999999999999999",
    "1e400",
    "~",
    "\u{feff}",
    "\r\n",
    "\0",
    "\u{ffff}",
    "needs: [a, b]\n",
    "  - id: x\n    action: log\n",
    "for_each: \"{{ [1, 2] }}\"\n",
    "rollback: [x]\n",
    "{% include 'x' %}",
    "{% for i in range(100000) %}",
    "{{ range(1000000000) }}",
];

/// One mutated or generated input.
fn case(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(10) {
        // A generated structure: deep nesting or an alias chain of random shape.
        0 => {
            let depth = 1 + rng.below(5000);
            match rng.below(3) {
                0 => deep_flow(depth).into_bytes(),
                1 => deep_block(depth).into_bytes(),
                // Chains at the node budget take seconds in a debug build: the full run only.
                _ if full() => alias_chain(1 + rng.below(12), 1 + rng.below(30)).into_bytes(),
                _ => alias_chain(1 + rng.below(4), 1 + rng.below(6)).into_bytes(),
            }
        }
        // Random bytes.
        1 => (0..rng.below(2048)).map(|_| rng.next() as u8).collect(),
        // A seed, mutated a few times.
        _ => {
            let mut bytes = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(5) {
                    0 => {
                        let end = (at + 1 + rng.below(16)).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    1 => {
                        let snippet = SNIPPETS[rng.below(SNIPPETS.len())];
                        bytes.splice(at..at, snippet.bytes());
                    }
                    2 if !bytes.is_empty() => {
                        let index = at.min(bytes.len() - 1);
                        bytes[index] = rng.next() as u8;
                    }
                    3 => {
                        // Duplicate a slice (repeats keys, lines and anchors).
                        let end = (at + rng.below(200)).min(bytes.len());
                        let slice = bytes[at..end].to_vec();
                        bytes.splice(at..at, slice);
                    }
                    _ => {
                        let snippet = SNIPPETS[rng.below(SNIPPETS.len())].repeat(1 + rng.below(64));
                        bytes.splice(at..at, snippet.bytes());
                    }
                }
            }
            bytes
        }
    }
}

/// This process's peak resident memory (VmHWM), in KiB.
fn own_peak_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|line| {
            line.strip_prefix("VmHWM:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
}

/// The seeds: every valid fixture, every shipped playbook and the lab environment.
fn seeds() -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    for dir in ["tests/fixtures/valid", "playbooks", "playbooks/examples"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "yaml")
                    && let Ok(bytes) = std::fs::read(&path)
                {
                    seeds.push(bytes);
                }
            }
        }
    }
    if let Ok(bytes) = std::fs::read(root.join("environments/lab.yaml")) {
        seeds.push(bytes);
    }
    seeds
}

/// Loads and validates one input as a playbook (with the lab environment) and as an
/// environment; the number of diagnostics found.
fn check(
    bytes: Vec<u8>,
    registry: &Registry,
    templates: &Templates,
    environment: &Option<(Arc<SourceFile>, runsheet_engine::model::Environment)>,
) -> usize {
    let mut found = 0;
    let Ok(file) = source_from_bytes("fuzzed.yaml".into(), bytes) else {
        return 1;
    };
    let (playbook, diagnostics) = load_playbook(&file);
    found += diagnostics.iter().count();
    if let Some(playbook) = playbook {
        let context = environment
            .as_ref()
            .map(|(file, environment)| EnvironmentContext { environment, file });
        let (_, diagnostics) = validate(&file, &playbook, registry, templates, context);
        found += diagnostics.iter().count();
    }
    // The same bytes read as an environment file: only for panics and hangs.
    let _ = load_environment(&file);
    found
}

#[test]
fn the_loader_and_validation_survive_a_fuzz_loop() -> TestResult {
    let budget = Duration::from_secs(scale(6, 180) as u64);
    let seed = std::env::var("RUNSHEET_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
                | 1
        });
    let seeds = seeds();
    assert!(seeds.len() >= 20, "seeds missing: {}", seeds.len());
    let (sender, receiver) = channel::<Vec<u8>>();
    let (done_sender, done) = channel::<(usize, Duration)>();
    // One worker does the checks, so a hang is seen as a missing answer.
    let worker = std::thread::spawn(move || {
        let registry = runsheet_actions::registry().unwrap_or_default();
        let templates = Templates::new(Arc::new(StaticHost::default()));
        let lab = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/lab.yaml"),
        )
        .unwrap_or_default();
        let file = SourceFile::new("environments/lab.yaml", lab);
        let environment = load_environment(&file)
            .0
            .map(|environment| (file, environment));
        for bytes in receiver {
            let started = Instant::now();
            let found = check(bytes, &registry, &templates, &environment);
            if done_sender.send((found, started.elapsed())).is_err() {
                break;
            }
        }
    });
    let mut rng = Rng(seed);
    let started = Instant::now();
    let before = own_peak_kib();
    let (mut cases, mut refused, mut slowest, mut bytes_in) =
        (0usize, 0usize, Duration::ZERO, 0usize);
    while started.elapsed() < budget {
        let input = case(&mut rng, &seeds);
        bytes_in += input.len();
        let shown: String = String::from_utf8_lossy(&input).chars().take(300).collect();
        sender.send(input)?;
        match done.recv_timeout(CASE_LIMIT) {
            Ok((found, took)) => {
                cases += 1;
                refused += usize::from(found > 0);
                slowest = slowest.max(took);
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(
                    format!("a case took over {CASE_LIMIT:?} (seed {seed}): {shown:?}").into(),
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("the loader panicked (seed {seed}) on: {shown:?}").into());
            }
        }
    }
    drop(sender);
    let _ = worker.join();
    let after = own_peak_kib();
    assert!(cases >= 5, "only {cases} cases ran");
    report(
        "Hostile input: fuzz loop over the loader and validation (in-process)",
        &[
            "seed",
            "time",
            "cases",
            "with diagnostics",
            "input bytes",
            "slowest case",
            "test process peak RSS, before → after (meaningful with --test-threads=1)",
        ],
        &[vec![
            seed.to_string(),
            format!("{:.0} s", started.elapsed().as_secs_f64()),
            cases.to_string(),
            refused.to_string(),
            format!("{:.1} MB", bytes_in as f64 / 1e6),
            format!("{:.0} ms", slowest.as_secs_f64() * 1000.0),
            format!(
                "{:.0} → {:.0} MiB",
                before.unwrap_or(0) as f64 / 1024.0,
                after.unwrap_or(0) as f64 / 1024.0
            ),
        ]],
    );
    Ok(())
}
