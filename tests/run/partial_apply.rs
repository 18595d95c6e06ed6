//! Steps that cannot tell or cannot undo what they did: a `host.service` status command
//! that fails (its state cannot be told, so nothing is stopped and the step fails), and a
//! `kong.sync` that fails midway and whose own restore fails too (the run ends needing
//! attention, exit 2, with the entities left named).

use crate::lab::{Lab, TestResult};
use crate::traffic::TwinProcess;

/// Stops a "service" whose status command fails with 5 (not an LSB code), then would
/// write a marker: neither the stop nor the next step may run.
const SERVICE: &str = r#"runsheet: 1
name: status-fails
steps:
  - id: stop-dp3
    action: host.service
    on: me
    with:
      name: dp3
      state: stopped
      manager: command
      status: "echo cannot read the pid file >&2; exit 5"
      start: "true"
      stop: "touch stopped"
  - id: after
    action: host.exec
    on: me
    with: {command: "touch after"}
"#;

#[test]
fn a_status_command_that_fails_fails_the_step_and_stops_nothing() -> TestResult {
    let lab = Lab::new()?;
    lab.write("p.yaml", SERVICE)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    run.assert_ended(
        1,
        &[
            "stop-dp3",
            "status command `echo cannot read the pid file >&2; exit 5` exited with 5",
            "nothing was started or stopped",
            "cannot read the pid file",
        ],
    );
    assert!(!lab.path().join("stopped").exists(), "the stop ran");
    assert!(!lab.path().join("after").exists(), "the next step ran");
    Ok(())
}

/// One service on the gateway; the sync changes it and adds two more.
const SEED: &str = "_format_version: '3.0'
services:
  - name: billing
    url: http://billing.internal:8080
";

/// The state the sync brings the gateway to.
const STATE: &str = "_format_version: '3.0'
services:
  - name: billing
    url: http://billing-v2.internal:8080
  - name: orders
    url: http://orders.internal:8080
  - name: stock
    url: http://stock.internal:8080
";

/// A sync, rolled back on failure.
const SYNC: &str = "runsheet: 1
name: partial-sync
rollback: all
steps:
  - id: sync
    action: kong.sync
    with: {state: state.yaml}
";

#[test]
fn a_sync_whose_own_restore_fails_needs_attention_and_names_what_it_left() -> TestResult {
    let lab = Lab::new()?;
    lab.write("kong.yaml", SEED)?;
    lab.write("state.yaml", STATE)?;
    lab.write("p.yaml", SYNC)?;
    let twin = TwinProcess::start(&lab, "kong.yaml")?;
    lab.write(
        "env.yaml",
        &format!(
            "runsheet: 1\nname: partial\ngateways:\n  kong: {}\nhosts:\n  me: {{transport: local}}\n",
            twin.gateway()
        ),
    )?;
    // The first write goes through; every write after it fails, the restore's too.
    twin.fault(r#"{"fail_nth_write": 2, "status": 500, "probability": 1.0, "seed": 1}"#)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    run.assert_ended(
        2,
        &[
            "needs attention:",
            "sync: failed partway and could not put back its own changes; left changed: ",
            "put back failed",
        ],
    );
    assert!(!run.stdout.contains("rolled back"), "{}", run.all());
    let id = run.run_id().ok_or("no run id")?;
    let journal = std::fs::read_to_string(
        lab.path()
            .join(".runsheet/runs")
            .join(&id)
            .join("journal.jsonl"),
    )?;
    let failed = journal
        .lines()
        .find(|line| line.contains(r#""kind":"step_failed""#))
        .ok_or("no step_failed record")?;
    let record: serde_json::Value = serde_json::from_str(failed)?;
    let left = record["changes_left"]
        .as_array()
        .ok_or_else(|| format!("no changes_left: {failed}"))?;
    assert!(!left.is_empty(), "{failed}");
    Ok(())
}
