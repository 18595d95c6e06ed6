//! Load + validate + plan benchmark over generated playbooks.
//!
//! Shapes: a chain (each step needs the previous), a wide fan-out (every step
//! needs the first), and for_each bodies (groups of 10 steps over 4 hosts).
//! Every step carries two templates. Each measurement runs in a child process
//! so its peak resident memory (VmHWM) is its own.
//!
//! Run: `cargo bench --bench load` (add `-- --quick` to skip 100k).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use runsheet_engine::check::{CheckRequest, check};
use runsheet_engine::plan::plan;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const SHAPES: [&str; 3] = ["chain", "wide", "for_each"];
const REPEATS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|a| a == "--child") {
        let shape = args.get(position + 1).map_or("chain", String::as_str);
        let size = args
            .get(position + 2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000);
        child(shape, size);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let exe = std::env::current_exe().unwrap_or_default();
    println!(
        "{:<9} {:>7} {:>10} {:>10} {:>10} {:>9} {:>11}",
        "shape", "steps", "bytes", "best ms", "median ms", "peak MiB", "µs/step"
    );
    let mut medians: Vec<(usize, f64)> = Vec::new();
    for shape in SHAPES {
        for size in SIZES {
            if quick && size > 10_000 {
                continue;
            }
            let output = Command::new(&exe)
                .args(["--child", shape, &size.to_string()])
                .output();
            match output {
                Ok(out) if out.status.success() => {
                    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    println!("{line}");
                    if shape == "chain" {
                        let median = line
                            .split_whitespace()
                            .nth(4)
                            .and_then(|m| m.parse().ok())
                            .unwrap_or(0.0);
                        medians.push((size, median));
                    }
                }
                Ok(out) => println!(
                    "{shape} {size}: child failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(e) => println!("{shape} {size}: cannot start child: {e}"),
            }
        }
    }
    for pair in medians.windows(2) {
        let ((n0, t0), (n1, t1)) = (pair[0], pair[1]);
        let growth = t1 / t0.max(f64::EPSILON);
        let ratio = n1 as f64 / n0 as f64;
        let n_log_n = ratio * (n1 as f64).ln() / (n0 as f64).ln();
        println!("chain growth {n0} → {n1}: ×{growth:.1} time (n log n would be ×{n_log_n:.1})");
    }
}

fn child(shape: &str, size: usize) {
    let dir = std::env::temp_dir().join(format!("runsheet-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let playbook = dir.join("playbook.yaml");
    let environment = dir.join("env.yaml");
    let text = generate(shape, size);
    if std::fs::write(&playbook, &text).is_err()
        || std::fs::write(&environment, ENVIRONMENT).is_err()
    {
        eprintln!("cannot write to {}", dir.display());
        std::process::exit(1);
    }
    let registry = match runsheet_actions::registry() {
        Ok(registry) => registry,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut times = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let start = Instant::now();
        let ok = run_once(&registry, &playbook, &environment);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if !ok {
            eprintln!("generated playbook did not validate");
            std::process::exit(1);
        }
    }
    times.sort_by(f64::total_cmp);
    let best = times[0];
    let median = times[times.len() / 2];
    let peak = peak_rss_mib();
    println!(
        "{shape:<9} {size:>7} {:>10} {best:>10.1} {median:>10.1} {peak:>9.1} {:>11.2}",
        text.len(),
        median * 1000.0 / size as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn run_once(registry: &runsheet_engine::Registry, playbook: &Path, environment: &Path) -> bool {
    let request = CheckRequest {
        playbook: playbook.to_path_buf(),
        environment: Some(environment.display().to_string()),
        sets: vec!["greeting=hello".into()],
        env_inputs: Vec::new(),
        vars_files: Vec::new(),
        require_inputs: true,
        preset: serde_json::Map::new(),
    };
    let start = Instant::now();
    match check(registry, &request) {
        Ok(checked) => {
            let checked_at = start.elapsed();
            let ok = plan(&checked, registry).is_ok();
            if std::env::var_os("RUNSHEET_BENCH_PHASES").is_some() {
                let planned_at = start.elapsed();
                let parse_start = Instant::now();
                let parsed = runsheet_engine::loader::read_source(playbook)
                    .map(|file| runsheet_engine::node::parse(&file).is_ok());
                eprintln!(
                    "check {checked_at:?} (YAML parse alone {:?}, ok: {}) plan {:?}",
                    parse_start.elapsed(),
                    parsed.unwrap_or(false),
                    planned_at - checked_at
                );
            }
            ok
        }
        Err(diagnostics) => {
            for d in diagnostics.iter().take(3) {
                eprintln!("{}: {}", d.code, d.message);
            }
            false
        }
    }
}

const ENVIRONMENT: &str = "runsheet: 1\nname: bench\nhosts:\n  h1: {address: 10.0.0.1, groups: [dp]}\n  h2: {address: 10.0.0.2, groups: [dp]}\n  h3: {address: 10.0.0.3, groups: [dp]}\n  h4: {address: 10.0.0.4, groups: [dp]}\n";

fn header() -> String {
    "runsheet: 1\nname: bench\ninputs:\n  greeting: {type: string, required: true}\nvars:\n  prefix: \"{{ inputs.greeting }}\"\nsteps:\n".to_owned()
}

/// A playbook of `size` steps of the given shape, each with two templates.
fn generate(shape: &str, size: usize) -> String {
    let mut text = header();
    match shape {
        "wide" => {
            for i in 0..size {
                let needs = if i == 0 {
                    "[]".to_owned()
                } else {
                    "[s0]".to_owned()
                };
                let _ = write!(
                    text,
                    "  - id: s{i}\n    action: log\n    needs: {needs}\n    when: \"{{{{ inputs.greeting != '' }}}}\"\n    with: {{message: \"{{{{ vars.prefix }}}} {i}\"}}\n"
                );
            }
        }
        "for_each" => {
            // Each group holds 9 body steps plus itself: 10 steps a group, run over 4 hosts.
            for g in 0..size / 10 {
                let _ = write!(
                    text,
                    "  - id: g{g}\n    for_each: \"{{{{ hosts('dp') }}}}\"\n    as: host\n    batch: 2\n    steps:\n"
                );
                for i in 0..9 {
                    let _ = write!(
                        text,
                        "      - id: b{i}\n        action: log\n        when: \"{{{{ host.name != '' }}}}\"\n        with: {{message: \"{{{{ vars.prefix }}}} {{{{ host.address }}}}\"}}\n"
                    );
                }
            }
        }
        _ => {
            for i in 0..size {
                let message = if i == 0 {
                    "\"{{ vars.prefix }} first\"".to_owned()
                } else {
                    format!(
                        "\"{{{{ vars.prefix }}}} after {{{{ steps.s{}.outputs.message }}}}\"",
                        i - 1
                    )
                };
                let _ = write!(
                    text,
                    "  - id: s{i}\n    action: log\n    when: \"{{{{ inputs.greeting != '' }}}}\"\n    with: {{message: {message}}}\n"
                );
            }
        }
    }
    text
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
