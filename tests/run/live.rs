//! The live view on a terminal (under util-linux `script`, a pseudo-terminal): the status
//! line with the change window's countdown and the time left by earlier runs, a failure
//! with its error, the rollback and the commands to look further, and colour only without
//! `NO_COLOR`.

use std::process::{Command, Stdio};

use crate::lab::{Lab, Run, TestResult};

/// A write, a pause long enough for the status line to be redrawn, and a step that fails
/// when asked to.
const PLAYBOOK: &str = r#"runsheet: 1
name: live-demo
inputs:
  fail: {type: boolean, default: false}
steps:
  - {id: write, action: host.file, on: me, with: {path: "{{ env.data }}/marker", content: "marker\n"}}
  - {id: wait, action: sleep, with: {duration: 1200ms}}
  - id: check
    action: fail
    with: {message: "the gateway answered 503"}
    when: "{{ inputs.fail }}"
"#;

/// The CI markers the binary knows, removed so the run is live.
const CI_MARKERS: [&str; 7] = [
    "CI",
    "DRONE",
    "HARNESS_BUILD_ID",
    "HARNESS_EXECUTION_ID",
    "HARNESS_PIPELINE_ID",
    "BUILD_ID",
    "GITHUB_ACTIONS",
];

/// Whether util-linux `script` is here; skipped without it unless every test must run.
fn has_script() -> Result<bool, String> {
    if Command::new("script").arg("--version").output().is_ok() {
        return Ok(true);
    }
    if std::env::var_os("RUNSHEET_TEST_REQUIRE_ALL").is_some() {
        return Err("`script` (util-linux) is missing: .ci/run installs bsdutils".into());
    }
    eprintln!("skipped: `script` (util-linux) is needed for a pseudo-terminal");
    Ok(false)
}

/// `runsheet ARGS` under a pseudo-terminal (its output, both streams, on stdout), with
/// `NO_COLOR` when `colour` is false and an xterm otherwise.
fn on_terminal(lab: &Lab, args: &str, colour: bool) -> std::io::Result<Run> {
    let binary = env!("CARGO_BIN_EXE_runsheet");
    let mut command = Command::new("script");
    command
        .args(["-qec", &format!("{binary} {args}"), "/dev/null"])
        .current_dir(lab.path())
        .stdin(Stdio::null())
        .env("TERM", "xterm-256color");
    for name in CI_MARKERS {
        command.env_remove(name);
    }
    if colour {
        command.env_remove("NO_COLOR");
    } else {
        command.env("NO_COLOR", "1");
    }
    lab.run_with(command)
}

/// A colour (SGR) escape sequence; cursor movement is not one.
fn has_colour(text: &str) -> bool {
    regex::Regex::new(r"\x1b\[[0-9;]*m").is_ok_and(|re| re.is_match(text))
}

/// A window from five minutes ago to 62 minutes from now.
fn window_around_now() -> String {
    let now = jiff::Timestamp::now().as_second();
    let at = |secs: i64| {
        jiff::Timestamp::from_second(secs)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    format!("{}/{}", at(now - 300), at(now + 62 * 60))
}

#[test]
fn a_run_in_its_window_counts_down_and_estimates_from_earlier_runs() -> TestResult {
    if !has_script()? {
        return Ok(());
    }
    let lab = Lab::with_data()?;
    lab.write("p.yaml", PLAYBOOK)?;
    // Two earlier runs (piped: plain lines) give the estimate its basis.
    for _ in 0..2 {
        lab.run(&["run", "p.yaml", "--env", "env.yaml"])?
            .assert_ended(0, &["finished: successful"]);
    }
    let args = format!(
        "run p.yaml --env env.yaml --yes --window {}",
        window_around_now()
    );
    let run = on_terminal(&lab, &args, false)?;
    let out = &run.stdout;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(out.contains("window closes in 1h0"), "no countdown:\n{out}");
    assert!(
        regex::Regex::new(r"\(typical run \ds, 2 earlier runs\)")?.is_match(out),
        "no estimate:\n{out}"
    );
    assert!(out.contains("/3 done"), "no progress:\n{out}");
    assert!(out.contains("finished: successful"), "{out}");
    assert!(!has_colour(out), "colour despite NO_COLOR:\n{out}");
    Ok(())
}

#[test]
fn a_failure_shows_the_error_the_rollback_and_the_commands_in_colour() -> TestResult {
    if !has_script()? {
        return Ok(());
    }
    let lab = Lab::with_data()?;
    lab.write("p.yaml", PLAYBOOK)?;
    let run = on_terminal(
        &lab,
        "run p.yaml --env env.yaml --yes --set fail=true",
        true,
    )?;
    let out = &run.stdout;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let id = regex::Regex::new(r"run (\d{8}-\d{6}-[0-9a-f]{4}): live-demo")?
        .captures(out)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
        .ok_or_else(|| format!("no run id:\n{out}"))?;
    for text in [
        "\u{1b}[1;31mFAILED\u{1b}[0m  check: the gateway answered 503",
        "\u{1b}[32mok\u{1b}[0m      write",
        "rolling back: 0/1 undone",
        "rolling back: 1/1 undone",
        "\u{1b}[32mundone\u{1b}[0m  write",
        "\u{1b}[1;31mfinished: failed and rolled back",
        &format!("the failed step: runsheet explain {id} 'check'"),
        &format!("details: runsheet show {id}; after fixing the cause: runsheet resume {id}"),
    ] {
        assert!(out.contains(text), "{text:?} missing:\n{out}");
    }
    // The commands come after the last drawing of the live view: nothing redraws over them.
    let last_bar = out.rfind("/3 done").unwrap_or(0);
    let commands = out.rfind("after fixing the cause").unwrap_or(0);
    assert!(
        commands > last_bar,
        "the live view drew after the commands:\n{out}"
    );
    assert_eq!(
        std::fs::read_to_string(lab.data().join("marker")).ok(),
        None,
        "the write was not undone"
    );
    Ok(())
}
