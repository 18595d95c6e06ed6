//! `runsheet validate` over the fixture corpus: every invalid file is refused
//! with its expected code and a stable rendering, every valid file passes.

use std::path::{Path, PathBuf};

use crate::support::{
    Expectation, LAB_ENV, TestResult, error_codes, expectation, record_problems, runsheet,
    snapshot_collecting, stem, yaml_files,
};

const INVALID: &str = "tests/fixtures/invalid";
const VALID: &str = "tests/fixtures/valid";

/// One invalid fixture: a playbook and the environment it is validated against.
#[derive(Debug)]
struct InvalidCase {
    name: String,
    playbook: PathBuf,
    environment: PathBuf,
    expected: Expectation,
}

impl InvalidCase {
    fn arguments(&self, json: bool) -> Vec<String> {
        let mut arguments = vec![
            "validate".to_owned(),
            self.playbook.display().to_string(),
            "--env".to_owned(),
            self.environment.display().to_string(),
        ];
        if json {
            arguments.extend(["--output".to_owned(), "json".to_owned()]);
        }
        arguments
    }

    fn command_line(&self) -> String {
        format!("runsheet {}", self.arguments(false).join(" "))
    }
}

/// Playbook fixtures run against the lab environment; an `env-NN-name.yaml`
/// playbook runs against its own `env-NN-name.env.yaml`, whose header holds the code.
fn invalid_cases() -> Result<Vec<InvalidCase>, Box<dyn std::error::Error>> {
    let mut cases = Vec::new();
    for playbook in yaml_files(INVALID)? {
        let name = stem(&playbook);
        if name.ends_with(".env") {
            continue;
        }
        let environment = if name.starts_with("env-") {
            Path::new(INVALID).join(format!("{name}.env.yaml"))
        } else {
            PathBuf::from(LAB_ENV)
        };
        let header_file = if name.starts_with("env-") {
            &environment
        } else {
            &playbook
        };
        let expected = expectation(header_file)?
            .ok_or_else(|| format!("{}: no `# expect: CODE` header", header_file.display()))?;
        cases.push(InvalidCase {
            name,
            playbook,
            environment,
            expected,
        });
    }
    Ok(cases)
}

#[test]
fn the_invalid_corpus_covers_every_rule() -> TestResult {
    let cases = invalid_cases()?;
    assert!(cases.len() >= 64, "only {} invalid fixtures", cases.len());
    let codes: std::collections::BTreeSet<&str> =
        cases.iter().map(|c| c.expected.code.as_str()).collect();
    let required = [
        "yaml::syntax",
        "yaml::tab",
        "yaml::empty",
        "yaml::not-a-mapping",
        "yaml::duplicate-key",
        "yaml::multiple-documents",
        "yaml::encoding",
        "yaml::number-too-large",
        "yaml::budget",
        "format::version",
        "key::missing",
        "key::unknown",
        "value::wrong-type",
        "value::invalid",
        "playbook::bad-name",
        "step::action-and-steps",
        "step::no-action",
        "step::for-each-without-body",
        "step::fan-out-key",
        "step::zero-batch",
        "step::with-on-group",
        "step::duplicate-id",
        "needs::unknown",
        "needs::self",
        "needs::cycle",
        "step::unknown-action",
        "with::unknown-argument",
        "with::missing-argument",
        "with::wrong-type",
        "with::invalid-value",
        "with::not-a-mapping",
        "template::syntax",
        "template::undefined",
        "template::unknown-input",
        "template::unknown-var",
        "template::unknown-step",
        "template::not-an-ancestor",
        "template::own-outputs",
        "rollback::unknown",
        "input::bad-default",
        "input::bad-pattern",
        "input::bad-range",
        "input::bad-name",
        "step::reserved-as",
        "gateway::unknown-type",
        "gateway::missing-type",
        "gateway::no-address",
        "host::no-address",
        "env::unknown-group",
        "on::unknown",
        "on::wrong-target",
    ];
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|c| !codes.contains(c))
        .collect();
    assert!(missing.is_empty(), "no fixture expects {missing:?}");
    Ok(())
}

#[test]
fn invalid_fixtures_are_refused_with_their_code_and_rendering() -> TestResult {
    let mut failures = Vec::new();
    for case in invalid_cases()? {
        failures.extend(check_invalid(&case)?);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    Ok(())
}

/// Runs one invalid fixture twice (JSON and human), compares the human
/// rendering with its snapshot and lists what is wrong.
fn check_invalid(case: &InvalidCase) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut failures = Vec::new();
    let mut fail = |message: String| failures.push(format!("{}: {message}", case.name));
    let json = runsheet(&case.arguments(true))?;
    let human = runsheet(&case.arguments(false))?;
    for run in [&json, &human] {
        if run.panicked() {
            fail(format!("panicked:\n{}", run.stderr));
        }
    }
    let records = match json.records() {
        Ok(records) => records,
        Err(e) => {
            fail(format!(
                "--output json is not a JSON array ({e}):\n{}",
                json.stdout
            ));
            return Ok(failures);
        }
    };
    for record in &records {
        for problem in record_problems(record) {
            fail(problem);
        }
        // Both renderings must agree on the position.
        if let (Some(file), Some(line), Some(column)) = (
            record["file"].as_str(),
            record["line"].as_u64(),
            record["column"].as_u64(),
        ) {
            let position = format!("{file}:{line}:{column}");
            if !human.stderr.contains(&position) {
                fail(format!("human output does not show {position}"));
            }
        }
    }
    let codes = error_codes(&records);
    let found = codes.contains(&case.expected.code.as_str());
    match &case.expected.known_bug {
        None => {
            for (run, format) in [(&json, "json"), (&human, "human")] {
                if run.code != Some(3) {
                    fail(format!(
                        "exit code {:?} with --output {format}, expected 3",
                        run.code
                    ));
                }
            }
            if !found {
                fail(format!(
                    "expected `{}`, found {codes:?}",
                    case.expected.code
                ));
            }
        }
        Some(bug) if found => fail(format!(
            "known bug fixed? `{}` is now reported; remove the `# known-bug: {bug}` line",
            case.expected.code
        )),
        Some(_) => {}
    }
    let code = human
        .code
        .map_or_else(|| "none (killed)".to_owned(), |c| c.to_string());
    let rendered = format!("exit code: {code}\n{}", human.stderr);
    failures.extend(snapshot_collecting(
        "invalid",
        &case.name,
        &case.command_line(),
        &rendered,
    ));
    Ok(failures)
}

#[test]
fn valid_fixtures_pass_with_and_without_the_environment() -> TestResult {
    let playbooks = yaml_files(VALID)?;
    assert!(
        playbooks.len() >= 12,
        "only {} valid fixtures",
        playbooks.len()
    );
    let mut failures = Vec::new();
    for playbook in &playbooks {
        let path = playbook.display().to_string();
        for environment in [Some(LAB_ENV), None] {
            let mut arguments = vec!["validate", path.as_str(), "--output", "json"];
            arguments.extend(environment.iter().flat_map(|e| ["--env", *e]));
            let run = runsheet(&arguments)?;
            let context = format!("{path} (env {environment:?})");
            if run.code != Some(0) || run.panicked() {
                failures.push(format!(
                    "{context}: exit {:?}\n{}{}",
                    run.code, run.stdout, run.stderr
                ));
                continue;
            }
            let records = run.records()?;
            let errors = error_codes(&records);
            if !errors.is_empty() {
                failures.push(format!("{context}: errors {errors:?}"));
            }
            failures.extend(records.iter().flat_map(record_problems));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    Ok(())
}

#[test]
fn warnings_do_not_fail_validation() -> TestResult {
    let playbook = "tests/fixtures/valid/17-warning-only.yaml";
    let run = runsheet(&["validate", playbook, "--env", LAB_ENV, "--output", "json"])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let records = run.records()?;
    let codes: Vec<&str> = records.iter().filter_map(|r| r["code"].as_str()).collect();
    assert_eq!(codes, ["input::required-with-default"]);
    assert_eq!(records[0]["severity"], "warning");
    let run = runsheet(&["validate", playbook, "--env", LAB_ENV])?;
    assert!(
        run.stderr.contains(": ok (0 errors, 1 warning)"),
        "{}",
        run.stderr
    );
    Ok(())
}

#[test]
fn one_call_validates_many_files() -> TestResult {
    let mut arguments = vec!["validate".to_owned()];
    arguments.extend(yaml_files(VALID)?.iter().map(|p| p.display().to_string()));
    arguments.extend(["--env".to_owned(), LAB_ENV.to_owned()]);
    let run = runsheet(&arguments)?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches(": ok (").count(),
        arguments.len() - 3,
        "{}",
        run.stderr
    );

    let mixed = [
        "validate",
        "tests/fixtures/valid/01-minimal.yaml",
        "tests/fixtures/invalid/34-needs-unknown.yaml",
        "--env",
        LAB_ENV,
        "--output",
        "json",
    ];
    let run = runsheet(&mixed)?;
    assert_eq!(run.code, Some(3), "one invalid file fails the whole call");
    let records = run.records()?;
    let files: Vec<&str> = records.iter().filter_map(|r| r["file"].as_str()).collect();
    assert_eq!(files, ["tests/fixtures/invalid/34-needs-unknown.yaml"]);
    Ok(())
}

#[test]
fn the_same_id_in_different_scopes_is_valid() -> TestResult {
    let playbook = "tests/fixtures/valid/05-groups-and-scopes.yaml";
    let text = std::fs::read_to_string(crate::support::root().join(playbook))?;
    assert!(
        text.matches("- id: check").count() >= 4,
        "the fixture lost its point"
    );
    let run = runsheet(&["validate", playbook, "--env", LAB_ENV])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Ok(())
}

#[test]
fn unreadable_paths_are_refused() -> TestResult {
    for (path, code) in [
        ("tests/fixtures/no-such-playbook.yaml", "file::unreadable"),
        ("tests/fixtures/valid", "file::unreadable"),
    ] {
        let run = runsheet(&["validate", path, "--output", "json"])?;
        assert_eq!(run.code, Some(3), "{path}");
        assert_eq!(error_codes(&run.records()?), [code], "{path}");
    }
    let run = runsheet(&[
        "validate",
        "tests/fixtures/valid/01-minimal.yaml",
        "--env",
        "tests/fixtures/envs/no-such-env.yaml",
    ])?;
    assert_eq!(run.code, Some(3), "a missing environment file is an error");
    assert!(run.stderr.contains("no-such-env.yaml"), "{}", run.stderr);
    assert!(!run.panicked());
    Ok(())
}
