//! The Kong actions from the binary against an embedded twin: `kong.target` drains a
//! target, `kong.status` reads the node, a failure rolls the drain back; a plan of the
//! same playbook writes nothing.

use crate::lab::{Lab, TestResult};

/// An upstream `core` with two targets of weight 100.
const SEED: &str = "_format_version: '3.0'
upstreams:
  - name: core
    targets:
      - {target: '10.0.0.1:8000', weight: 100}
      - {target: '10.0.0.2:8000', weight: 100}
";

/// Gateway `kong` is an embedded twin (with its control endpoint) seeded from `kong.yaml`.
const ENVIRONMENT: &str = "runsheet: 1
name: konglab
gateways:
  kong: {type: kong, twin: {seed: kong.yaml, control: true}}
";

/// Drains 10.0.0.1, reads it back and checks the node, counts the twin's writes, then fails.
const PLAYBOOK: &str = r#"runsheet: 1
name: drain-then-fail
rollback: all
steps:
  - id: drain
    action: kong.target
    on: kong
    with: {upstream: core, target: "10.0.0.1", weight: 0}
  - id: status
    action: kong.status
    on: kong
  - id: drained
    action: http
    with:
      url: "{{ env.gateways.kong.admin_url }}/upstreams/core/targets/10.0.0.1:8000"
      extract: {weight: /weight}
  - id: writes
    action: http
    with:
      url: "{{ env.gateways.kong.admin_url }}/_twin/counters"
      extract: {count: /writes}
  - id: check
    action: assert
    with:
      that:
        - "steps.status.outputs.version == '3.9.3'"
        - "steps.status.outputs.edition == 'community'"
        - "steps.status.outputs.database_reachable"
        - "steps.status.outputs.ready"
        - "steps.drained.outputs.weight == (0 if steps.writes.outputs.count > 0 else 100)"
  - id: boom
    action: fail
    with: {message: "stop after the drain"}
"#;

fn lab() -> std::io::Result<Lab> {
    let lab = Lab::new()?;
    lab.write("env.yaml", ENVIRONMENT)?;
    lab.write("kong.yaml", SEED)?;
    lab.write("p.yaml", PLAYBOOK)?;
    Ok(lab)
}

/// The weight of each target in a saved twin state (`twins/kong.json`).
fn weights(state: &serde_json::Value) -> Vec<(String, u64)> {
    let mut weights: Vec<(String, u64)> = state["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["target"].as_str()?.to_owned(), t["weight"].as_u64()?)))
        .collect();
    weights.sort();
    weights
}

#[test]
fn a_failure_after_a_drain_rolls_the_target_weight_back() -> TestResult {
    let lab = lab()?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(
        run.code,
        Some(1),
        "the fail step fails the run:\n{}",
        run.all()
    );
    assert!(run.all().contains("stop after the drain"), "{}", run.all());
    assert!(run.stdout.contains("undone  drain"), "{}", run.all());
    let id = lab.only_run().ok_or("no run recorded")?;
    let saved = lab
        .path()
        .join(".runsheet/runs")
        .join(&id)
        .join("twins/kong.json");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&saved)?)?;
    assert_eq!(
        weights(&state),
        [
            ("10.0.0.1:8000".to_owned(), 100),
            ("10.0.0.2:8000".to_owned(), 100)
        ],
        "the rollback restored the drained weight"
    );
    let journal = std::fs::read_to_string(
        lab.path()
            .join(".runsheet/runs")
            .join(&id)
            .join("journal.jsonl"),
    )?;
    assert!(
        journal.contains("previous_weight"),
        "the undo record is journaled: {journal}"
    );
    Ok(())
}

#[test]
fn a_plan_shows_the_weight_change_and_writes_nothing() -> TestResult {
    let lab = lab()?;
    // Without the failing step, the plan ends cleanly; the assert reads the twin's write
    // counter and the target's weight (still 100) after the planned drain.
    let text = PLAYBOOK.replace(
        "  - id: boom\n    action: fail\n    with: {message: \"stop after the drain\"}\n",
        "  - id: no-writes\n    action: assert\n    with: {that: \"steps.writes.outputs.count == 0\"}\n",
    );
    assert!(!text.contains("action: fail"), "{text}");
    lab.write("p.yaml", &text)?;
    let plan = lab.run(&["plan", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(plan.code, Some(0), "{}", plan.all());
    assert!(
        plan.stdout
            .contains("target 10.0.0.1:8000 of upstream core: weight 100 -> 0"),
        "{}",
        plan.all()
    );
    Ok(())
}
