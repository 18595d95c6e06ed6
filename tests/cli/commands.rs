//! The other commands: plan, graph, schema, actions, the oversized-file guard
//! and the run-time verbs this build does not have yet.

use std::io::Write as _;

use serde_json::Value;

use crate::support::{LAB_ENV, TestResult, error_codes, root, runsheet, runsheet_in, snapshot};

/// A playbook with a group, a `for_each` with a body, and `finally`.
const ROLLING_UPGRADE: &str = "tests/fixtures/valid/15-rolling-upgrade.yaml";

#[test]
fn plan_json_lists_steps_in_order_with_resolved_templates() -> TestResult {
    let run = runsheet(&[
        "plan",
        "--static",
        ROLLING_UPGRADE,
        "--env",
        LAB_ENV,
        "--output",
        "json",
    ])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let plan: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(plan["playbook"], "rolling-upgrade");
    snapshot(
        "commands",
        "plan-rolling-upgrade-json",
        "runsheet plan 15-rolling-upgrade.yaml --env lab --output json",
        &run.stdout,
    );
    Ok(())
}

/// The example playbook on the lab needs its input: refused before anything starts (the
/// README's main job is run as written by tests/run/readme.rs).
#[test]
fn the_example_on_the_lab_needs_its_input() -> TestResult {
    let missing_input = runsheet(&[
        "plan",
        "playbooks/examples/hello.yaml",
        "--env",
        "environments/lab.yaml",
    ])?;
    assert_eq!(missing_input.code, Some(3), "{}", missing_input.stderr);
    assert!(
        missing_input.stderr.contains("input::missing"),
        "{}",
        missing_input.stderr
    );
    assert!(
        !missing_input.stderr.contains("lab: started node"),
        "refused before the lab's nodes start: {}",
        missing_input.stderr
    );
    Ok(())
}

#[test]
fn plan_human_says_nothing_changed() -> TestResult {
    let run = runsheet(&["plan", "--static", ROLLING_UPGRADE, "--env", LAB_ENV])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    snapshot(
        "commands",
        "plan-rolling-upgrade-human",
        "runsheet plan 15-rolling-upgrade.yaml --env lab",
        &run.stdout,
    );
    Ok(())
}

/// The dry run's plan: timestamps and durations vary, the rest must not.
#[test]
fn plan_shows_diffs_reads_and_values_known_after_apply() -> TestResult {
    const PLAYBOOK: &str = "tests/fixtures/valid/18-dry-run.yaml";
    let human = runsheet(&["plan", PLAYBOOK, "--env", LAB_ENV, "--detailed-exitcode"])?;
    assert_eq!(human.code, Some(6), "changes found: {}", human.stderr);
    let times = regex::Regex::new(r"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")?;
    let durations = regex::Regex::new(r"\b\d+ms\b")?;
    let stable = durations.replace_all(&times.replace_all(&human.stdout, "[time]"), "[ms]").into_owned();
    snapshot("commands", "plan-dry-run-human", "runsheet plan 18-dry-run.yaml --env lab", &stable);
    let json = runsheet(&["plan", PLAYBOOK, "--env", LAB_ENV, "--output", "json"])?;
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let plan: Value = serde_json::from_str(&json.stdout)?;
    let steps: Vec<&str> = plan["steps"].as_array().into_iter().flatten().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(steps, ["conf", "restart"], "the saved plan lists the write steps");
    snapshot("commands", "plan-dry-run-json", "runsheet plan 18-dry-run.yaml --env lab --output json", &json.stdout);
    Ok(())
}

#[test]
fn plan_refuses_an_invalid_playbook() -> TestResult {
    let run = runsheet(&[
        "plan",
        "tests/fixtures/invalid/36-cycle-of-two.yaml",
        "--env",
        LAB_ENV,
    ])?;
    assert_eq!(run.code, Some(3));
    assert!(run.stderr.contains("needs::cycle"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no plan is printed: {}", run.stdout);
    Ok(())
}

#[test]
fn graph_renders_groups_and_fan_out_as_mermaid_and_dot() -> TestResult {
    for format in ["mermaid", "dot"] {
        let run = runsheet(&["graph", ROLLING_UPGRADE, "--format", format])?;
        assert_eq!(run.code, Some(0), "{format}: {}", run.stderr);
        snapshot(
            "commands",
            &format!("graph-rolling-upgrade-{format}"),
            &format!("runsheet graph 15-rolling-upgrade.yaml --format {format}"),
            &run.stdout,
        );
    }
    let run = runsheet(&["graph", "tests/fixtures/invalid/37-cycle-of-three.yaml"])?;
    assert_eq!(run.code, Some(3), "a cyclic playbook has no graph");
    assert!(run.stderr.contains("a → b → c → a"), "{}", run.stderr);
    Ok(())
}

#[test]
fn schema_is_json_schema_binding_each_action_to_its_arguments() -> TestResult {
    let run = runsheet(&["schema"])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let schema: Value = serde_json::from_str(&run.stdout)?;
    assert!(schema["$defs"].is_object(), "no $defs");
    let bindings = schema
        .pointer("/$defs/StepDoc/allOf")
        .and_then(Value::as_array)
        .ok_or("no allOf on StepDoc")?;
    let kong_target = bindings
        .iter()
        .find(|b| b.pointer("/if/properties/action/const") == Some(&Value::from("kong.target")))
        .ok_or("no if/then binding for kong.target")?;
    let with = kong_target
        .pointer("/then/properties/with")
        .ok_or("the kong.target binding has no `with`")?;
    for argument in ["upstream", "target", "weight"] {
        assert!(
            with["properties"][argument].is_object(),
            "kong.target `with` lacks {argument}"
        );
    }
    assert_eq!(bindings.len(), 35, "one binding per action");

    let run = runsheet(&["schema", "environment"])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let environment: Value = serde_json::from_str(&run.stdout)?;
    assert!(environment["properties"]["gateways"].is_object());
    Ok(())
}

#[test]
fn actions_lists_the_whole_catalogue() -> TestResult {
    let run = runsheet(&["actions", "--output", "json"])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let actions: Vec<Value> = serde_json::from_str(&run.stdout)?;
    let names: Vec<&str> = actions.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names.len(), 35, "{names:?}");
    for name in [
        "kong.target",
        "layer7.import",
        "host.exec",
        "http",
        "approval",
        "tls.inspect",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }

    let run = runsheet(&["actions"])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let listed = run
        .stdout
        .lines()
        .filter(|line| {
            let first = line.split_whitespace().next().unwrap_or_default();
            line.starts_with("  ") && names.contains(&first)
        })
        .count();
    assert_eq!(listed, 35, "{}", run.stdout);
    Ok(())
}

#[test]
fn actions_describes_one_action_and_suggests_on_a_typo() -> TestResult {
    let run = runsheet(&["actions", "kong.target"])?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for word in ["upstream", "target", "weight", "(required)", "W I U"] {
        assert!(run.stdout.contains(word), "{word} missing:\n{}", run.stdout);
    }
    let run = runsheet(&["actions", "kong.targte"])?;
    assert_eq!(run.code, Some(3));
    assert!(
        run.stderr.contains("did you mean `kong.target`?"),
        "{}",
        run.stderr
    );
    assert!(!run.panicked());
    Ok(())
}

#[test]
fn a_100_mb_playbook_is_refused_by_size() -> TestResult {
    let directory = tempfile::tempdir()?;
    let path = directory.path().join("huge.yaml");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    file.write_all(b"runsheet: 1\nname: huge\nsteps:\n")?;
    let step = b"  - {id: s, action: log, with: {message: padding padding padding padding}}\n";
    let size: usize = 100 * 1024 * 1024;
    let mut written = 30;
    while written + step.len() <= size {
        file.write_all(step)?;
        written += step.len();
    }
    file.write_all(&vec![b'#'; size - written])?;
    file.flush()?;
    drop(file);
    assert_eq!(std::fs::metadata(&path)?.len(), size as u64);

    let path = path.display().to_string();
    let run = runsheet(&["validate", &path, "--output", "json"])?;
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    let records = run.records()?;
    assert_eq!(error_codes(&records), ["yaml::too-large"]);
    let message = records[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("104857600 bytes"),
        "the size is named: {message}"
    );
    let run = runsheet(&["validate", &path])?;
    assert_eq!(run.code, Some(3));
    assert!(run.stderr.contains("104857600 bytes"), "{}", run.stderr);
    assert!(!run.panicked());
    Ok(())
}

#[test]
fn history_verbs_on_an_empty_state_directory_change_nothing() -> TestResult {
    let directory = tempfile::tempdir()?;
    let runs = runsheet_in(directory.path(), &["runs", "--output", "json"])?;
    assert_eq!(runs.code, Some(0), "{}", runs.stderr);
    assert_eq!(runs.stdout.trim(), "[]");
    for arguments in [
        &["show", "20260101-000000-abcd"][..],
        &["resume", "20260101-000000-abcd"],
        &["rollback", "20260101-000000-abcd"],
    ] {
        let run = runsheet_in(directory.path(), arguments)?;
        assert_eq!(run.code, Some(3), "{arguments:?}: {}", run.stderr);
        assert!(run.stderr.contains("no run `20260101-000000-abcd`"), "{}", run.stderr);
    }
    let unlock = runsheet_in(directory.path(), &["unlock", "lab"])?;
    assert_eq!(unlock.code, Some(0), "{}", unlock.stderr);
    assert!(unlock.stderr.contains("not locked"), "{}", unlock.stderr);
    assert_eq!(std::fs::read_dir(directory.path())?.count(), 0, "nothing was written");
    Ok(())
}

/// Output piped into `head` must not crash the binary.
#[test]
fn a_closed_stdout_is_not_a_panic() -> TestResult {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_runsheet"))
        .args([
            "plan",
            ROLLING_UPGRADE,
            "--env",
            LAB_ENV,
            "--output",
            "json",
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    let output = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}
