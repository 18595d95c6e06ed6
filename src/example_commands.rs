//! The runsheet commands written in `examples/` (Harness pipelines, pre-commit hooks)
//! parse as the CLI parses them: a renamed flag or verb breaks this test, not a pipeline.

use std::path::{Path, PathBuf};

use clap::Parser as _;
use serde_json::Value;

use crate::cli::Cli;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The YAML files of `examples/DIR` (hidden files included), sorted.
fn yaml_files(dir: &str) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    Ok(files)
}

fn parse_yaml(path: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    serde_saphyr::from_str::<Value>(&text)
        .map_err(|e| format!("{}: not valid YAML: {e}", path.display()).into())
}

/// The scripts of a YAML document: the strings under `command` and `script` keys.
fn scripts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| scripts(v, out)),
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(text) if key == "command" || key == "script" => {
                        out.push(text.clone());
                    }
                    other => scripts(other, out),
                }
            }
        }
        _ => {}
    }
}

/// Splits a shell command line into words: quotes removed, Harness `<+...>` expressions
/// kept whole; stops at `#`, `;`, `&&`, `||`, `|` and redirections.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            break;
        };
        let mut ahead = chars.clone();
        ahead.next();
        let redirection = first.is_ascii_digit() && ahead.next() == Some('>');
        if redirection
            || (matches!(first, '#' | ';' | '|' | '&' | '>' | '<') && !expression_ahead(&chars))
        {
            break;
        }
        let mut word = String::new();
        let mut depth = 0;
        let mut ended = false;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() && depth == 0 {
                break;
            }
            if c == ';' && depth == 0 {
                ended = true;
                break;
            }
            chars.next();
            match c {
                '"' | '\'' => {
                    for inner in chars.by_ref() {
                        if inner == c {
                            break;
                        }
                        word.push(inner);
                    }
                }
                '<' if chars.peek() == Some(&'+') => {
                    depth += 1;
                    word.push(c);
                }
                '>' if depth > 0 => {
                    depth -= 1;
                    word.push(c);
                }
                _ => word.push(c),
            }
        }
        words.push(word);
        if ended {
            break;
        }
    }
    words
}

/// Whether the next characters start a Harness expression (`<+`) rather than a redirection.
fn expression_ahead(chars: &std::iter::Peekable<std::str::Chars<'_>>) -> bool {
    let mut ahead = chars.clone();
    ahead.next() == Some('<') && ahead.next() == Some('+')
}

/// The runsheet command lines in a script (line continuations joined).
fn runsheet_lines(script: &str) -> Vec<String> {
    let joined = script.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("runsheet "))
        .map(str::to_owned)
        .collect()
}

/// The verb of a parsed command.
fn verb(command: &crate::cli::Command) -> &'static str {
    use crate::cli::Command;
    match command {
        Command::Validate { .. } => "validate",
        Command::Plan { .. } => "plan",
        Command::Run { .. } => "run",
        Command::Resume { .. } => "resume",
        Command::Rollback { .. } => "rollback",
        _ => "other",
    }
}

/// Parses one command line with the real CLI definition.
fn parses(line: &str) -> Result<Cli, String> {
    Cli::try_parse_from(words(line)).map_err(|e| format!("`{line}`:\n{e}"))
}

#[test]
fn words_keep_expressions_and_stop_at_shell_operators() {
    assert_eq!(
        words(
            r#"runsheet run p.yaml --change-id "<+pipeline.variables.change_id>" --set v=<+a.b> > out.json"#
        ),
        [
            "runsheet",
            "run",
            "p.yaml",
            "--change-id",
            "<+pipeline.variables.change_id>",
            "--set",
            "v=<+a.b>"
        ]
    );
    assert_eq!(
        words("runsheet validate x.yaml 2>&1 | tee log # note"),
        ["runsheet", "validate", "x.yaml"]
    );
    assert_eq!(
        words("runsheet plan 'a b.yaml'; echo"),
        ["runsheet", "plan", "a b.yaml"]
    );
}

#[test]
fn a_wrong_flag_in_an_example_would_be_caught() {
    assert!(parses("runsheet run p.yaml --change-id X --windw 2026").is_err());
    assert!(parses("runsheet validate p.yaml --env uat").is_ok());
}

#[test]
fn every_runsheet_command_in_the_harness_examples_parses() -> TestResult {
    let files = yaml_files("harness")?;
    assert!(
        files.len() >= 3,
        "examples/harness has {} YAML files",
        files.len()
    );
    let mut verbs = Vec::new();
    for file in &files {
        let document = parse_yaml(file)?;
        let mut texts = Vec::new();
        scripts(&document, &mut texts);
        let lines: Vec<String> = texts.iter().flat_map(|t| runsheet_lines(t)).collect();
        assert!(!lines.is_empty(), "{}: no runsheet command", file.display());
        for line in lines {
            let cli = parses(&line).map_err(|e| format!("{}: {e}", file.display()))?;
            verbs.push(verb(&cli.command));
        }
    }
    for wanted in ["validate", "plan", "run", "resume"] {
        assert!(
            verbs.contains(&wanted),
            "no `{wanted}` command in examples/harness: {verbs:?}"
        );
    }
    Ok(())
}

#[test]
fn the_pre_commit_hooks_run_valid_commands() -> TestResult {
    let files = yaml_files("pre-commit")?;
    assert_eq!(files.len(), 2, "{files:?}");
    let mut hooks = 0;
    for file in &files {
        let document = parse_yaml(file)?;
        let listed: Vec<&Value> = match &document {
            Value::Array(hooks) => hooks.iter().collect(),
            other => other["repos"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|repo| repo["hooks"].as_array().into_iter().flatten())
                .collect(),
        };
        for hook in listed {
            let entry = hook["entry"]
                .as_str()
                .ok_or_else(|| format!("{}: a hook without entry", file.display()))?;
            let mut line = entry.to_owned();
            for arg in hook["args"].as_array().into_iter().flatten() {
                line.push(' ');
                line.push_str(arg.as_str().unwrap_or_default());
            }
            // pre-commit appends the staged files that match `files`.
            if hook["pass_filenames"] != Value::Bool(false) {
                line.push_str(" playbooks/kong-restart.yaml playbooks/kong-scale.yml");
            }
            let cli = parses(&line).map_err(|e| format!("{}: {e}", file.display()))?;
            assert!(
                matches!(cli.command, crate::cli::Command::Validate { .. }),
                "{}: the hook does not validate: {line}",
                file.display()
            );
            let pattern = hook["files"].as_str().unwrap_or_default();
            let selects = regex::Regex::new(pattern)?;
            assert!(
                selects.is_match("playbooks/kong-restart.yaml") && !selects.is_match("src/main.rs"),
                "{}: `files: {pattern}` does not select the playbooks",
                file.display()
            );
            hooks += 1;
        }
    }
    assert!(hooks >= 3, "{hooks} hooks");
    Ok(())
}
