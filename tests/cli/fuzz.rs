//! Property test of the loader and validation: valid playbooks (and the lab
//! environment) mutated byte- and line-wise never panic, always finish, and
//! every diagnostic they produce has a span inside its file and renders.
//!
//! This drives the engine library directly instead of the binary: hundreds of
//! cases in a few seconds.

use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proptest::prelude::*;
use runsheet_engine::check::StaticHost;
use runsheet_engine::loader::{load_environment, load_playbook, source_from_bytes};
use runsheet_engine::model::Environment;
use runsheet_engine::template::Templates;
use runsheet_engine::validation::{EnvironmentContext, validate};
use runsheet_engine::{Diagnostics, Registry, SourceFile};

use crate::support::{LAB_ENV, root, yaml_files};

/// Longest a single case may take before it counts as a hang.
const CASE_LIMIT: Duration = Duration::from_secs(10);

/// Text spliced into the input: template, anchor and YAML punctuation, deep
/// brackets, tabs, huge numbers and a few keys of the format.
const SNIPPETS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{{ steps.",
    "{{ inputs.x }}",
    "{{ hosts('dataplane') }}",
    "{{ result }}",
    "&a ",
    "*a",
    "&a [*a, *a, *a]",
    "<<: *a\n",
    "\t",
    "\n\t",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
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
    "99999999999999999999999",
    "-1",
    "0x1F",
    "1e400",
    "~",
    "\u{feff}",
    "\r\n",
    "\0",
    "é",
    "needs: [a, b]\n",
    "  - id: x\n    action: log\n",
    "steps:\n",
    "for_each: \"{{ [1, 2] }}\"\n",
    "rollback: [x]\n",
    "on: kong\n",
    "as: host\n",
];

/// One edit of the input.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteBytes { at: usize, len: usize },
    InsertBytes { at: usize, bytes: Vec<u8> },
    ReplaceByte { at: usize, byte: u8 },
    InsertSnippet { at: usize, snippet: &'static str },
    DeleteLine { line: usize },
    DuplicateLine { line: usize },
    SwapLines { first: usize, second: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::DeleteBytes { at, len }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::InsertBytes { at, bytes }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::ReplaceByte { at, byte }),
        3 => (any::<usize>(), prop::sample::select(SNIPPETS))
            .prop_map(|(at, snippet)| Mutation::InsertSnippet { at, snippet }),
        1 => any::<usize>().prop_map(|line| Mutation::DeleteLine { line }),
        1 => any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        1 => (any::<usize>(), any::<usize>())
            .prop_map(|(first, second)| Mutation::SwapLines { first, second }),
    ]
}

impl Mutation {
    /// Applies the edit; positions wrap around the input's length.
    fn apply(&self, bytes: &mut Vec<u8>) {
        let position = |at: usize, bytes: &Vec<u8>| at % (bytes.len() + 1);
        match self {
            Mutation::DeleteBytes { at, len } => {
                let start = position(*at, bytes);
                let end = (start + len).min(bytes.len());
                bytes.drain(start..end);
            }
            Mutation::InsertBytes { at, bytes: new } => {
                let start = position(*at, bytes);
                bytes.splice(start..start, new.iter().copied());
            }
            Mutation::ReplaceByte { at, byte } => {
                if !bytes.is_empty() {
                    let index = at % bytes.len();
                    bytes[index] = *byte;
                }
            }
            Mutation::InsertSnippet { at, snippet } => {
                let start = position(*at, bytes);
                bytes.splice(start..start, snippet.bytes());
            }
            Mutation::DeleteLine { line } => edit_lines(bytes, |lines| {
                let index = line % lines.len();
                lines.remove(index);
            }),
            Mutation::DuplicateLine { line } => edit_lines(bytes, |lines| {
                let index = line % lines.len();
                lines.insert(index, lines[index].clone());
            }),
            Mutation::SwapLines { first, second } => edit_lines(bytes, |lines| {
                let count = lines.len();
                lines.swap(first % count, second % count);
            }),
        }
    }
}

/// Edits the input as a list of lines (each keeps its `\n`).
fn edit_lines(bytes: &mut Vec<u8>, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let mut lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    if lines.is_empty() {
        return;
    }
    edit(&mut lines);
    *bytes = lines.concat();
}

/// What every case shares: the seeds, the registry, templates and the lab environment.
struct Shared {
    playbooks: Vec<Vec<u8>>,
    environment_text: Vec<u8>,
    registry: Registry,
    templates: Templates,
    environment: Option<(Arc<SourceFile>, Environment)>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let read = |path: &std::path::Path| std::fs::read(root().join(path)).unwrap_or_default();
        let mut seeds: Vec<std::path::PathBuf> =
            yaml_files("tests/fixtures/valid").unwrap_or_default();
        seeds.push("playbooks/examples/hello.yaml".into());
        let environment_text = read(std::path::Path::new(LAB_ENV));
        let environment = std::str::from_utf8(&environment_text)
            .ok()
            .and_then(|text| {
                let file = SourceFile::new(LAB_ENV, text);
                let (environment, _) = load_environment(&file);
                environment.map(|e| (file, e))
            });
        Shared {
            playbooks: seeds.iter().map(|p| read(p)).collect(),
            environment_text,
            registry: runsheet_actions::registry().unwrap_or_default(),
            templates: Templates::new(Arc::new(StaticHost::default())),
            environment,
        }
    })
}

/// Problems with a batch: spans outside their file, or a rendering that fails.
fn diagnostic_problems(diagnostics: &Diagnostics) -> Vec<String> {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    let mut problems = Vec::new();
    for diagnostic in diagnostics.iter() {
        // The end of a span is not checked against character boundaries: a
        // `template::syntax` span may end inside a multi-byte character today
        // (reported; rendering copes with it).
        if let (Some(file), Some(span)) = (&diagnostic.file, diagnostic.span) {
            let end = span.offset + span.len;
            if end > file.text.len() || !file.text.is_char_boundary(span.offset) {
                problems.push(format!(
                    "{}: span {span:?} does not start on a character inside its {} bytes",
                    diagnostic.code,
                    file.text.len()
                ));
            }
        }
        let _ = diagnostic.to_record();
        let mut rendered = String::new();
        if handler.render_report(&mut rendered, diagnostic).is_err() {
            problems.push(format!("{}: cannot be rendered", diagnostic.code));
        }
    }
    problems
}

/// Loads and validates a playbook (without and with the lab environment).
fn check_playbook(bytes: Vec<u8>) -> Vec<String> {
    let shared = shared();
    let file = match source_from_bytes("fuzzed.yaml".into(), bytes) {
        Ok(file) => file,
        Err(diagnostic) => return diagnostic_problems(&diagnostic.into()),
    };
    let (playbook, diagnostics) = load_playbook(&file);
    let mut problems = diagnostic_problems(&diagnostics);
    if let Some(playbook) = playbook {
        let (_, found) = validate(&file, &playbook, &shared.registry, &shared.templates, None);
        problems.extend(diagnostic_problems(&found));
        if let Some((environment_file, environment)) = &shared.environment {
            let context = EnvironmentContext {
                environment,
                file: environment_file,
            };
            let (_, found) = validate(
                &file,
                &playbook,
                &shared.registry,
                &shared.templates,
                Some(context),
            );
            problems.extend(diagnostic_problems(&found));
        }
    }
    problems
}

/// Loads an environment file.
fn check_environment(bytes: Vec<u8>) -> Vec<String> {
    match source_from_bytes("fuzzed.env.yaml".into(), bytes) {
        Ok(file) => diagnostic_problems(&load_environment(&file).1),
        Err(diagnostic) => diagnostic_problems(&diagnostic.into()),
    }
}

/// Runs a check on its own thread, so a panic is reported and a hang is bounded.
fn bounded(check: fn(Vec<u8>) -> Vec<String>, input: Vec<u8>) -> Result<(), TestCaseError> {
    let (sender, receiver) = channel();
    let worker = std::thread::spawn(move || {
        let _ = sender.send(check(input));
    });
    match receiver.recv_timeout(CASE_LIMIT) {
        Ok(problems) => {
            prop_assert!(problems.is_empty(), "{}", problems.join("\n"));
            Ok(())
        }
        Err(RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!(
            "did not finish within {CASE_LIMIT:?}"
        ))),
        Err(RecvTimeoutError::Disconnected) => {
            let payload = worker.join().err();
            let message = payload
                .as_ref()
                .and_then(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                })
                .unwrap_or_default();
            Err(TestCaseError::fail(format!("panicked: {message}")))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_playbooks_never_panic(seed in any::<usize>(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let shared = shared();
        prop_assert!(shared.playbooks.len() >= 12 && shared.playbooks.iter().all(|p| !p.is_empty()), "seeds missing");
        prop_assert!(!shared.registry.is_empty() && shared.environment.is_some(), "registry or lab environment missing");
        let playbooks = &shared.playbooks;
        let mut bytes = playbooks[seed % playbooks.len()].clone();
        for mutation in &mutations {
            mutation.apply(&mut bytes);
        }
        bounded(check_playbook, bytes)?;
    }

    #[test]
    fn mutated_environments_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut bytes = shared().environment_text.clone();
        prop_assert!(!bytes.is_empty(), "seed missing");
        for mutation in &mutations {
            mutation.apply(&mut bytes);
        }
        bounded(check_environment, bytes)?;
    }
}
