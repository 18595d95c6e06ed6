//! Inputs from `--set` and `--vars-file`: every constraint of the declaration is
//! enforced on the command line, and `plan` insists on required inputs.

use crate::support::{LAB_ENV, TestResult, error_codes, record_problems, runsheet, snapshot};

/// Declares one input of each type, with every constraint.
const PLAYBOOK: &str = "tests/fixtures/valid/02-inputs-every-type.yaml";

/// Runs `validate PLAYBOOK --env lab --output json` with extra arguments.
fn validate_json(extra: &[&str]) -> Result<crate::support::Run, std::io::Error> {
    let mut arguments = vec!["validate", PLAYBOOK, "--env", LAB_ENV, "--output", "json"];
    arguments.extend_from_slice(extra);
    runsheet(&arguments)
}

#[test]
fn set_values_that_break_the_declaration_are_refused() -> TestResult {
    let cases: &[(&str, &str, &str)] = &[
        ("batch_size=two", "input::invalid", "expected an integer"),
        (
            "target_version=latest",
            "input::invalid",
            "does not match the pattern",
        ),
        ("batch_size=0", "input::invalid", "below the minimum 1"),
        ("batch_size=11", "input::invalid", "above the maximum 10"),
        (
            "colour=red",
            "input::invalid",
            "not one of the allowed values",
        ),
        (
            "dry_notice=yes",
            "input::invalid",
            "expected `true` or `false`",
        ),
        ("drain_wait=30", "input::invalid", "missing unit"),
        ("error_budget=1.5", "input::invalid", "above the maximum 1"),
        (
            "targets=[]",
            "input::invalid",
            "list length 0 is below the minimum 1",
        ),
        ("targets=10.0.0.1", "input::invalid", "expected a list"),
        (
            "headers=X-Change",
            "input::invalid",
            "expected a map written as JSON",
        ),
        (
            "batch_sise=2",
            "input::unknown",
            "did you mean `batch_size`?",
        ),
        ("batch_size", "input::bad-set", "expected NAME=VALUE"),
    ];
    let mut failures = Vec::new();
    for (set, code, words) in cases {
        let run = validate_json(&["--set", set])?;
        let records = run.records()?;
        let text = run.stdout.as_str();
        if run.code != Some(3) || error_codes(&records) != [*code] || !text.contains(words) {
            failures.push(format!(
                "--set {set}: exit {:?}, expected {code} saying {words:?}:\n{text}",
                run.code
            ));
        }
        failures.extend(records.iter().flat_map(record_problems));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    Ok(())
}

#[test]
fn set_values_that_fit_are_accepted() -> TestResult {
    let sets = [
        "target_version=3.10.0",
        "colour=green",
        "batch_size=10",
        "error_budget=0",
        "dry_notice=true",
        "drain_wait=1h30m",
        r#"targets=["a:1", "b:2"]"#,
        r#"headers={"X-Change": "CRQ-2"}"#,
        "admin_token=OTHER_TOKEN",
        "ticket=CRQ-2",
    ];
    let arguments: Vec<&str> = sets.iter().flat_map(|s| ["--set", *s]).collect();
    let run = validate_json(&arguments)?;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_eq!(run.records()?, Vec::<serde_json::Value>::new());
    Ok(())
}

#[test]
fn set_errors_point_at_the_declaration() -> TestResult {
    let run = runsheet(&[
        "validate",
        PLAYBOOK,
        "--env",
        LAB_ENV,
        "--set",
        "batch_size=0",
    ])?;
    assert_eq!(run.code, Some(3));
    snapshot(
        "inputs",
        "set-below-minimum",
        "runsheet validate 02-inputs-every-type.yaml --set batch_size=0",
        &run.stderr,
    );
    Ok(())
}

#[test]
fn vars_files_are_checked_like_set() -> TestResult {
    let cases: &[(&str, Option<&str>)] = &[
        ("good", None),
        ("wrong-type", Some("input::invalid")),
        ("unknown-input", Some("input::unknown")),
        ("not-a-mapping", Some("input::vars-file")),
    ];
    for (name, code) in cases {
        let file = format!("tests/fixtures/vars/{name}.yaml");
        let run = validate_json(&["--vars-file", &file])?;
        let records = run.records()?;
        let expected_exit = if code.is_some() { 3 } else { 0 };
        assert_eq!(run.code, Some(expected_exit), "{file}: {}", run.stdout);
        assert_eq!(
            error_codes(&records),
            code.iter().copied().collect::<Vec<_>>(),
            "{file}"
        );
        for record in records.iter().filter(|r| r["severity"] == "error") {
            assert_eq!(record["file"], file.as_str(), "the vars file is named");
            assert!(record_problems(record).is_empty(), "{record}");
        }
    }
    Ok(())
}

#[test]
fn set_wins_over_a_vars_file() -> TestResult {
    let run = runsheet(&[
        "plan",
        "--static",
        PLAYBOOK,
        "--env",
        LAB_ENV,
        "--vars-file",
        "tests/fixtures/vars/good.yaml",
        "--set",
        "batch_size=2",
        "--output",
        "json",
    ])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(plan["inputs"]["batch_size"], 2, "--set wins");
    assert_eq!(plan["inputs"]["colour"], "green", "from the vars file");
    assert_eq!(
        plan["inputs"]["admin_token"], "••••••",
        "secrets are masked"
    );
    Ok(())
}

#[test]
fn plan_requires_required_inputs_but_validate_does_not() -> TestResult {
    let run = runsheet(&["plan", PLAYBOOK, "--env", LAB_ENV])?;
    assert_eq!(run.code, Some(3));
    assert!(run.stderr.contains("input::missing"), "{}", run.stderr);
    assert!(
        run.stderr.contains("--set target_version="),
        "{}",
        run.stderr
    );
    let run = runsheet(&["validate", PLAYBOOK, "--env", LAB_ENV])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Ok(())
}
