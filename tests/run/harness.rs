//! CI/CD use of the binary: plain timestamped logs when piped or under a CI
//! marker (no prompts, no escape sequences), every flag from `RUNSHEET_*`
//! variables, and the report directory (`runsheet-out/`) with its dotenv file
//! written on success, failure, pause, SIGTERM and refusal.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::lab::{Lab, Run, TestResult};
use crate::traffic::Outcome;

/// A playbook with an optional gate, outputs and a secret read by a step.
const OUTPUTS_PLAYBOOK: &str = r#"runsheet: 1
name: outputs-demo
inputs:
  target_version: {type: string, required: true}
  gate: {type: boolean, default: false}
steps:
  - id: facts
    action: set
    with:
      values:
        version: "{{ inputs.target_version }}"
        note: "it's \"quoted\"\nand $(two) lines"
  - id: gate
    action: approval
    with: {gate: go-prod, prompt: "Apply to production?"}
    when: "{{ inputs.gate }}"
  - id: after
    action: log
    with: {message: "applied {{ steps.facts.outputs.version }}"}
outputs:
  version: "{{ steps.facts.outputs.version }}"
  note: "{{ steps.facts.outputs.note }}"
  message: "{{ steps.after.outputs.message }}"
"#;

/// The CI markers the binary knows, removed so a test decides which one is set.
const CI_MARKERS: [&str; 7] = [
    "CI",
    "DRONE",
    "HARNESS_BUILD_ID",
    "HARNESS_EXECUTION_ID",
    "HARNESS_PIPELINE_ID",
    "BUILD_ID",
    "GITHUB_ACTIONS",
];

/// `runsheet ARGS` in the lab with no CI marker and no `RUNSHEET_*` variable of the caller.
fn clean(lab: &Lab, args: &[&str]) -> Command {
    let mut command = lab.command(args);
    for marker in CI_MARKERS {
        command.env_remove(marker);
    }
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RUNSHEET_") {
            command.env_remove(name);
        }
    }
    command
}

/// A lab holding `playbook` as `p.yaml`.
fn lab_with(playbook: &str) -> std::io::Result<Lab> {
    let lab = Lab::new()?;
    lab.write("p.yaml", playbook)?;
    Ok(lab)
}

/// `runsheet VERB p.yaml --env env.yaml --set target_version=VERSION` as [`clean`] makes it.
fn outputs_command(lab: &Lab, verb: &str, version: &str) -> Command {
    let version = format!("target_version={version}");
    clean(
        lab,
        &[verb, "p.yaml", "--env", "env.yaml", "--set", &version],
    )
}

/// The JSON document in file `path`.
fn read_json(path: &Path) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// The variables of `DIR/runsheet.env` as a POSIX shell reads them after `. FILE`.
fn dotenv(dir: &Path) -> Result<BTreeMap<String, String>, Box<dyn std::error::Error>> {
    let file = dir.join("runsheet.env");
    let text = std::fs::read_to_string(&file)?;
    let names: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.to_owned()))
        .collect();
    let script = format!(
        ". \"$1\" && printf '%s\\0' {}",
        names
            .iter()
            .map(|n| format!("\"${n}\""))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let output = Command::new("sh")
        .args(["-c", &script, "sh"])
        .arg(&file)
        .output()?;
    assert!(
        output.status.success(),
        "sh could not source {}:\n{text}",
        file.display()
    );
    let values: Vec<String> = String::from_utf8(output.stdout)?
        .split('\0')
        .map(str::to_owned)
        .collect();
    Ok(names.into_iter().zip(values).collect())
}

/// Whether util-linux `script` (a pseudo-terminal) is here. Without it the test is skipped
/// with a message, except under `.ci/run` (`RUNSHEET_TEST_REQUIRE_ALL`), which installs it.
fn has_script() -> Outcome<bool> {
    if Command::new("script").arg("--version").output().is_ok() {
        return Ok(true);
    }
    if std::env::var_os("RUNSHEET_TEST_REQUIRE_ALL").is_some() {
        return Err("`script` (util-linux) is missing: .ci/run installs bsdutils".into());
    }
    eprintln!("skipped: `script` (util-linux) is needed for a pseudo-terminal");
    Ok(false)
}

fn timestamped(line: &str) -> bool {
    let pattern = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  \S")
        .map(|re| re.is_match(line));
    pattern.unwrap_or(false)
}

fn assert_plain(run: &Run) {
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'),
        "escape sequence in the output:\n{}",
        run.all()
    );
    assert!(
        !run.stdout.trim().is_empty(),
        "no log lines:\n{}",
        run.all()
    );
    for line in run.stdout.lines() {
        assert!(
            timestamped(line),
            "line without a time stamp: {line:?}\n{}",
            run.all()
        );
    }
}

#[test]
fn piped_output_is_timestamped_lines_without_escapes_and_the_report_dir_is_complete() -> TestResult
{
    let lab = lab_with(OUTPUTS_PLAYBOOK)?;
    let mut command = outputs_command(&lab, "run", "3.9.1");
    // Colour is off because the output is a pipe, not because of NO_COLOR.
    command
        .env_remove("NO_COLOR")
        .env("RUNSHEET_INPUT_NO_SUCH_INPUT", "x");
    let run = lab.run_with(command)?;
    run.assert_ended(0, &[]);
    assert_plain(&run);
    assert!(
        run.stderr
            .contains("RUNSHEET_INPUT_NO_SUCH_INPUT names no input"),
        "{}",
        run.all()
    );
    let out = lab.path().join("runsheet-out");
    let vars = dotenv(&out)?;
    assert_eq!(vars["RUNSHEET_STATUS"], "succeeded");
    assert_eq!(vars["RUNSHEET_EXIT_CODE"], "0");
    assert_eq!(Some(vars["RUNSHEET_RUN_ID"].clone()), run.run_id());
    assert_eq!(vars["RUNSHEET_ROLLBACK_PERFORMED"], "false");
    assert_eq!(vars["RUNSHEET_CLOSE_CODE"], "Successful");
    assert_eq!(vars["RUNSHEET_OUTPUT_VERSION"], "3.9.1");
    assert_eq!(vars["RUNSHEET_OUTPUT_MESSAGE"], "applied 3.9.1");
    // Quotes and `$(...)` come back as written; the newline as `\n`, so the file stays one line per variable.
    assert_eq!(
        vars["RUNSHEET_OUTPUT_NOTE"],
        "it's \"quoted\"\\nand $(two) lines"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml"))?;
    let document = roxmltree::Document::parse(&junit)?;
    let cases = document
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert!(cases >= 2, "{junit}");
    let json = read_json(&out.join("report.json"))?;
    assert_eq!(json["outcome"], "succeeded");
    assert_eq!(json["outputs"]["version"], "3.9.1");
    assert!(
        json.get("ci").is_none(),
        "no CI marker, no ci block: {json}"
    );
    let closure = std::fs::read_to_string(out.join("closure.md"))?;
    assert!(
        closure.contains("| Suggested close code | Successful |"),
        "{closure}"
    );
    assert!(closure.contains("## Outputs"), "{closure}");
    assert_eq!(vars["RUNSHEET_CLOSURE_REPORT"], "runsheet-out/closure.md");
    Ok(())
}

/// `runsheet ARGS` under a pseudo-terminal (`script`), stdin at end of file, no CI marker.
fn terminal_command(lab: &Lab, args: &str) -> Command {
    let binary = env!("CARGO_BIN_EXE_runsheet");
    let mut command = Command::new("script");
    command
        .args(["-qec", &format!("{binary} {args}"), "/dev/null"])
        .current_dir(lab.path())
        .stdin(Stdio::null());
    for name in CI_MARKERS {
        command.env_remove(name);
    }
    command
}

/// `runsheet ARGS` under a pseudo-terminal with `NO_COLOR` and the CI marker given.
fn under_terminal(lab: &Lab, args: &str, marker: Option<(&str, &str)>) -> std::io::Result<Run> {
    let mut command = terminal_command(lab, args);
    command.env("NO_COLOR", "1");
    if let Some((name, value)) = marker {
        command.env(name, value);
    }
    lab.run_with(command)
}

#[test]
fn no_color_takes_the_colour_out_of_diagnostics_on_a_terminal() -> TestResult {
    if !has_script()? {
        return Ok(());
    }
    let lab = Lab::new()?;
    lab.write(
        "bad.yaml",
        "runsheet: 1\nname: bad\nsteps:\n  - {id: a, action: log, with: {message: \"{{ inputs.nope }}\"}}\n",
    )?;
    // The control: the same diagnostics on a terminal without NO_COLOR are coloured.
    let mut command = terminal_command(&lab, "validate bad.yaml");
    command.env_remove("NO_COLOR").env("TERM", "xterm-256color");
    let coloured = lab.run_with(command)?;
    let plain = under_terminal(&lab, "validate bad.yaml", None)?;
    for run in [&coloured, &plain] {
        run.assert_ended(3, &["template::unknown-input"]);
    }
    assert!(
        coloured.stdout.contains("\u{1b}["),
        "no colour without NO_COLOR:\n{}",
        coloured.all()
    );
    assert!(
        !plain.stdout.contains('\u{1b}'),
        "colour despite NO_COLOR:\n{}",
        plain.all()
    );
    Ok(())
}

#[test]
fn a_ci_marker_on_a_terminal_means_plain_lines_and_a_gate_pauses_without_a_prompt() -> TestResult {
    if !has_script()? {
        return Ok(());
    }
    let lab = lab_with(OUTPUTS_PLAYBOOK)?;
    let args = "run p.yaml --env env.yaml --set target_version=3.9.1 --set gate=true --yes";
    // Without a marker, a terminal gets the question (the control: the marker is what changes it).
    let run = under_terminal(&lab, args, None)?;
    assert!(run.stdout.contains("Approve? [y/N]"), "{}", run.all());
    assert!(
        run.stdout.contains('\u{1b}'),
        "a terminal draws progress:\n{}",
        run.all()
    );
    for (marker, value) in [
        ("CI", "true"),
        ("DRONE", "true"),
        ("HARNESS_BUILD_ID", "42"),
        ("HARNESS_EXECUTION_ID", "Vq1b0Hx2"),
    ] {
        std::fs::remove_dir_all(lab.path().join(".runsheet"))?;
        let run = under_terminal(&lab, args, Some((marker, value)))?;
        let context = format!("{marker}={value}:\n{}", run.all());
        assert_eq!(run.code, Some(4), "{context}");
        assert!(!run.stdout.contains("Approve?"), "{context}");
        assert!(!run.stdout.contains('\u{1b}'), "{context}");
        let logged: Vec<&str> = run.stdout.lines().filter(|l| timestamped(l)).collect();
        assert!(
            logged
                .iter()
                .any(|l| l.contains("PAUSED  gate: gate `go-prod`")),
            "{context}"
        );
        let vars = dotenv(&lab.path().join("runsheet-out"))?;
        assert_eq!(vars["RUNSHEET_STATUS"], "paused", "{context}");
        assert_eq!(vars["RUNSHEET_EXIT_CODE"], "4", "{context}");
        assert_eq!(vars["RUNSHEET_CLOSE_CODE"], "", "{context}");
        assert_eq!(vars["RUNSHEET_WAITING_GATES"], "go-prod", "{context}");
    }
    Ok(())
}

#[test]
fn piped_with_ci_set_a_gate_pauses_with_exit_4_and_resume_approves_it_from_variables() -> TestResult
{
    let lab = lab_with(OUTPUTS_PLAYBOOK)?;
    let mut command = clean(&lab, &["run", "p.yaml"]);
    command
        .env("CI", "true")
        .env("RUNSHEET_ENV", "env.yaml")
        .env("RUNSHEET_INPUT_TARGET_VERSION", "3.9.2")
        .env("RUNSHEET_INPUT_GATE", "true")
        .env("RUNSHEET_CHANGE_ID", "CHG0031234")
        .env("RUNSHEET_WINDOW", "2020-01-01T00:00Z/2099-01-01T00:00Z")
        .env("RUNSHEET_STATE_DIR", "state")
        .env("RUNSHEET_REPORT_DIR", "out")
        .env("RUNSHEET_APPROVER", "pipeline-bot")
        .env("HARNESS_PIPELINE_ID", "kong_rolling_upgrade")
        .env("HARNESS_EXECUTION_ID", "Vq1b0Hx2")
        .env(
            "CI_BUILD_LINK",
            "https://harness.example/executions/Vq1b0Hx2",
        );
    let run = lab.run_with(command)?;
    run.assert_ended(4, &[]);
    assert_plain(&run);
    assert!(!run.stderr.contains("Approve?"), "{}", run.all());
    assert!(
        lab.path().join("state/runs").is_dir(),
        "RUNSHEET_STATE_DIR not used"
    );
    assert!(
        !lab.path().join("runsheet-out").exists(),
        "RUNSHEET_REPORT_DIR not used"
    );
    let paused = dotenv(&lab.path().join("out"))?;
    assert_eq!(paused["RUNSHEET_STATUS"], "paused");
    let report = read_json(&lab.path().join("out/report.json"))?;
    assert_eq!(report["change_id"], "CHG0031234");
    assert_eq!(
        report["window"],
        "2020-01-01T00:00:00Z/2099-01-01T00:00:00Z"
    );
    assert_eq!(report["ci"]["system"], "harness");
    assert_eq!(report["ci"]["pipeline"], "kong_rolling_upgrade");
    assert_eq!(
        report["ci"]["execution_url"],
        "https://harness.example/executions/Vq1b0Hx2"
    );
    let closure = std::fs::read_to_string(lab.path().join("out/closure.md"))?;
    assert!(closure.contains("| CI execution | harness (pipeline kong_rolling_upgrade, execution Vq1b0Hx2): https://harness.example/executions/Vq1b0Hx2 |"), "{closure}");
    // The next pipeline step: the run id from the dotenv, the gate from a variable, JSON logs.
    let mut command = clean(&lab, &["resume"]);
    command
        .env("CI", "true")
        .env("RUNSHEET_RUN_ID", &paused["RUNSHEET_RUN_ID"])
        .env("RUNSHEET_APPROVE", &paused["RUNSHEET_WAITING_GATES"])
        .env("RUNSHEET_STATE_DIR", "state")
        .env("RUNSHEET_REPORT_DIR", "out")
        .env("RUNSHEET_APPROVER", "pipeline-bot")
        .env("RUNSHEET_LOG_FORMAT", "json");
    let run = lab.run_with(command)?;
    run.assert_ended(0, &["\"by\":\"pipeline-bot\""]);
    for line in run.stdout.lines() {
        let _: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
    }
    let done = dotenv(&lab.path().join("out"))?;
    assert_eq!(done["RUNSHEET_STATUS"], "succeeded");
    assert_eq!(done["RUNSHEET_RUN_ID"], paused["RUNSHEET_RUN_ID"]);
    assert_eq!(done["RUNSHEET_OUTPUT_VERSION"], "3.9.2");
    assert_eq!(done["RUNSHEET_OUTPUT_MESSAGE"], "applied 3.9.2");
    Ok(())
}

#[test]
fn help_names_the_variables_of_the_run_flags() -> TestResult {
    let lab = Lab::new()?;
    let run = lab.run_with(clean(&lab, &["run", "--help"]))?;
    for name in [
        "RUNSHEET_ENV",
        "RUNSHEET_CHANGE_ID",
        "RUNSHEET_WINDOW",
        "RUNSHEET_STATE_DIR",
        "RUNSHEET_REPORT_DIR",
        "RUNSHEET_APPROVER",
        "RUNSHEET_DRY_RUN",
        "RUNSHEET_LOG_FORMAT",
    ] {
        assert!(
            run.stdout.contains(name),
            "{name} missing from run --help:\n{}",
            run.stdout
        );
    }
    Ok(())
}

/// A playbook that writes a file, then fails: the write is undone.
const FAILING_PLAYBOOK: &str = r#"runsheet: 1
name: failing
steps:
  - {id: write, action: host.file, on: me, with: {path: "{{ env.data }}/a", content: "a\n"}}
  - {id: boom, action: fail, with: {message: "the health gate failed"}}
outputs:
  written: "{{ steps.write.outputs | length > 0 }}"
"#;

#[test]
fn a_failed_run_leaves_a_dotenv_that_says_it_rolled_back() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", FAILING_PLAYBOOK)?;
    let run = lab.run_with(clean(&lab, &["run", "p.yaml", "--env", "env.yaml"]))?;
    run.assert_ended(1, &[]);
    assert!(!lab.data().join("a").exists(), "the write was not undone");
    let vars = dotenv(&lab.path().join("runsheet-out"))?;
    assert_eq!(vars["RUNSHEET_STATUS"], "rolled_back");
    assert_eq!(vars["RUNSHEET_EXIT_CODE"], "1");
    assert_eq!(vars["RUNSHEET_ROLLBACK_PERFORMED"], "true");
    assert_eq!(vars["RUNSHEET_CLOSE_CODE"], "Unsuccessful");
    assert_eq!(vars["RUNSHEET_OUTPUT_WRITTEN"], "true");
    let junit = std::fs::read_to_string(lab.path().join("runsheet-out/junit.xml"))?;
    assert!(junit.contains("the health gate failed"), "{junit}");
    Ok(())
}

#[test]
fn a_refused_run_replaces_the_last_reports_with_a_dotenv_saying_refused() -> TestResult {
    let lab = lab_with(OUTPUTS_PLAYBOOK)?;
    lab.run_with(outputs_command(&lab, "run", "1.0.0"))?
        .assert_ended(0, &[]);
    let mut command = outputs_command(&lab, "run", "1.0.0");
    command.env("RUNSHEET_WINDOW", "2020-01-01T00:00Z/2020-01-01T04:00Z");
    let refused = lab.run_with(command)?;
    refused.assert_ended(5, &[]);
    let out = lab.path().join("runsheet-out");
    let vars = dotenv(&out)?;
    assert_eq!(vars["RUNSHEET_STATUS"], "refused");
    assert_eq!(vars["RUNSHEET_EXIT_CODE"], "5");
    assert_eq!(vars["RUNSHEET_RUN_ID"], "");
    // The successful run's JUnit report is gone; this one says the run was refused.
    let junit = std::fs::read_to_string(out.join("junit.xml"))?;
    assert!(
        junit.contains("failures=\"1\"") && junit.contains("nothing ran: refused (exit 5)"),
        "{junit}"
    );
    assert!(!junit.contains("outputs-demo"), "{junit}");
    let invalid = lab.run_with(clean(&lab, &["run", "p.yaml", "--env", "env.yaml"]))?;
    invalid.assert_ended(3, &[]);
    assert_eq!(dotenv(&out)?["RUNSHEET_STATUS"], "invalid");
    let junit = std::fs::read_to_string(out.join("junit.xml"))?;
    assert!(junit.contains("nothing ran: invalid (exit 3)"), "{junit}");
    Ok(())
}

#[test]
fn sigterm_during_a_step_exits_130_with_reports_saying_interrupted() -> TestResult {
    let lab = lab_with(
        "runsheet: 1\nname: sleepy\nsteps:\n  - {id: nap, action: sleep, with: {duration: 2s}}\n  - {id: after, action: log, with: {message: never}}\n",
    )?;
    let mut child = clean(&lab, &["run", "p.yaml", "--env", "env.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .ok_or("the run ended before its step started")??;
        seen.push(line.clone());
        if line.contains("start   nap") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no step started: {seen:?}"
        );
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(killed.success());
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait()?;
    assert!(
        matches!(status.code(), Some(130 | 143)),
        "exit {status:?}; {seen:?}"
    );
    assert!(seen.iter().all(|l| timestamped(l)), "{seen:?}");
    // One signal, announced once (not again when the rollback starts).
    assert_eq!(
        seen.iter()
            .filter(|l| l.contains("signal received"))
            .count(),
        1,
        "{seen:?}"
    );
    let out = lab.path().join("runsheet-out");
    let vars = dotenv(&out)?;
    assert_eq!(vars["RUNSHEET_STATUS"], "interrupted");
    assert_eq!(
        vars["RUNSHEET_EXIT_CODE"],
        status.code().map(|c| c.to_string()).unwrap_or_default()
    );
    assert_eq!(vars["RUNSHEET_CLOSE_CODE"], "Unsuccessful");
    let junit = std::fs::read_to_string(out.join("junit.xml"))?;
    roxmltree::Document::parse(&junit)?;
    assert!(std::fs::read_to_string(out.join("closure.md"))?.contains("interrupted"));
    Ok(())
}

#[test]
fn a_secret_that_reaches_an_output_is_masked_everywhere_in_the_report_dir() -> TestResult {
    let lab = lab_with(
        "runsheet: 1\nname: secretive\nsteps:\n  - id: creds\n    action: set\n    with: {values: {header: \"Bearer {{ secret('DEMO_TOKEN') }}\"}}\noutputs:\n  header: \"{{ steps.creds.outputs.header }}\"\n",
    )?;
    let mut command = clean(&lab, &["run", "p.yaml", "--env", "env.yaml"]);
    command.env("DEMO_TOKEN", "tok-5ecret-value");
    let run = lab.run_with(command)?;
    run.assert_ended(0, &[]);
    let vars = dotenv(&lab.path().join("runsheet-out"))?;
    assert!(
        vars["RUNSHEET_OUTPUT_HEADER"].starts_with("Bearer "),
        "{vars:?}"
    );
    for (path, text) in lab.artefacts()? {
        assert!(
            !text.contains("tok-5ecret-value"),
            "the secret is in {}",
            path.display()
        );
    }
    Ok(())
}

#[test]
fn plan_writes_a_report_dir_only_when_asked() -> TestResult {
    let lab = lab_with(OUTPUTS_PLAYBOOK)?;
    lab.run_with(outputs_command(&lab, "plan", "3.9.1"))?
        .assert_ended(0, &[]);
    assert!(
        !lab.path().join("runsheet-out").exists(),
        "plan wrote a report dir nobody asked for"
    );
    let mut command = outputs_command(&lab, "plan", "3.9.1");
    command.env("RUNSHEET_REPORT_DIR", "rehearsal");
    lab.run_with(command)?.assert_ended(0, &[]);
    let dir = lab.path().join("rehearsal");
    let plan = read_json(&dir.join("plan.json"))?;
    assert_eq!(plan["runsheet_plan"], 1);
    let vars = dotenv(&dir)?;
    assert_eq!(vars["RUNSHEET_STATUS"], "planned");
    assert_eq!(vars["RUNSHEET_CLOSE_CODE"], "");
    assert!(dir.join("junit.xml").is_file());
    Ok(())
}

#[test]
fn resuming_an_unknown_run_replaces_an_earlier_runs_reports() -> TestResult {
    let lab = Lab::new()?;
    // A pipeline workspace where an earlier step left a successful run's files.
    std::fs::create_dir_all(lab.path().join("runsheet-out"))?;
    lab.write(
        "runsheet-out/runsheet.env",
        "RUNSHEET_STATUS='succeeded'\nRUNSHEET_EXIT_CODE='0'\n",
    )?;
    lab.write("runsheet-out/junit.xml", "<testsuites/>\n")?;
    let run = lab.run(&["resume", "20260101-000000-abcd"])?;
    run.assert_ended(3, &[]);
    let out = lab.path().join("runsheet-out");
    let vars = dotenv(&out)?;
    assert_eq!(vars["RUNSHEET_STATUS"], "invalid", "{}", run.all());
    assert_eq!(vars["RUNSHEET_EXIT_CODE"], "3");
    let junit = std::fs::read_to_string(out.join("junit.xml"))?;
    assert!(
        junit.contains("nothing ran: invalid (exit 3)"),
        "the earlier run's JUnit is replaced: {junit}"
    );
    Ok(())
}
