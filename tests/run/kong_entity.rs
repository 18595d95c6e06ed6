//! `kong.entity` from the binary against an embedded twin: a service, a route naming it
//! and a plugin's config change, rolled back after a failure to the seeded state; a plan
//! of the same playbook shows the field diff and writes nothing.

use crate::lab::{Lab, TestResult};

/// A service `billing` with a rate-limiting plugin.
const SEED: &str = "_format_version: '3.0'
services:
  - name: billing
    host: billing.internal
    retries: 5
    plugins:
      - {name: rate-limiting, config: {minute: 5, hour: 100}}
";

/// Gateway `kong` is an embedded twin (with its control endpoint) seeded from `kong.yaml`.
const ENVIRONMENT: &str = "runsheet: 1
name: konglab
gateways:
  kong: {type: kong, twin: {seed: kong.yaml, control: true}}
";

/// Creates orders and a route to it, changes billing and its plugin, then fails.
const PLAYBOOK: &str = r#"runsheet: 1
name: entities-then-fail
rollback: all
steps:
  - id: orders
    action: kong.entity
    on: kong
    with: {kind: service, match: {name: orders}, spec: {host: orders.internal, port: 8080}}
  - id: route
    action: kong.entity
    on: kong
    with: {kind: route, match: {name: orders-v2}, spec: {paths: [/v2], service: orders}}
  - id: retries
    action: kong.entity
    on: kong
    with: {kind: service, match: {name: billing}, spec: {retries: 3}}
  - id: limit
    action: kong.entity
    on: kong
    with: {kind: plugin, match: {name: rate-limiting, service: billing}, spec: {config: {minute: 10}}}
  - id: boom
    action: fail
    with: {message: "stop after the entities"}
"#;

fn lab() -> std::io::Result<Lab> {
    let lab = Lab::new()?;
    lab.write("env.yaml", ENVIRONMENT)?;
    lab.write("kong.yaml", SEED)?;
    lab.write("p.yaml", PLAYBOOK)?;
    Ok(lab)
}

#[test]
fn a_failure_after_entity_changes_rolls_each_back() -> TestResult {
    let lab = lab()?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    for step in ["orders", "route", "retries", "limit"] {
        assert!(
            run.stdout.contains(&format!("undone  {step}")),
            "{step}: {}",
            run.all()
        );
    }
    let id = lab.only_run().ok_or("no run recorded")?;
    let saved = lab
        .path()
        .join(".runsheet/runs")
        .join(&id)
        .join("twins/kong.json");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&saved)?)?;
    let services = state["services"].as_array().ok_or("no services")?;
    assert_eq!(services.len(), 1, "orders was deleted: {state}");
    assert_eq!(services[0]["name"], "billing");
    assert_eq!(services[0]["retries"], 5);
    assert!(
        state["routes"].as_array().is_none_or(Vec::is_empty),
        "{state}"
    );
    let plugins = state["plugins"].as_array().ok_or("no plugins")?;
    assert_eq!(plugins.len(), 1, "{state}");
    assert_eq!(plugins[0]["config"]["minute"], 5);
    assert_eq!(plugins[0]["config"]["hour"], 100);
    Ok(())
}

#[test]
fn a_plan_shows_the_field_diff_and_writes_nothing() -> TestResult {
    let lab = lab()?;
    let text = PLAYBOOK.replace(
        "  - id: boom\n    action: fail\n    with: {message: \"stop after the entities\"}\n",
        "  - id: writes\n    action: http\n    with:\n      url: \"{{ env.gateways.kong.admin_url }}/_twin/counters\"\n      extract: {count: /writes}\n  - id: no-writes\n    action: assert\n    with: {that: \"steps.writes.outputs.count == 0\"}\n",
    );
    assert!(!text.contains("action: fail"), "{text}");
    lab.write("p.yaml", &text)?;
    let plan = lab.run(&["plan", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(plan.code, Some(0), "{}", plan.all());
    for expected in [
        "create service orders",
        "create route orders-v2",
        "update service billing: retries",
        "update plugin rate-limiting on service billing: config",
        "-retries: 5",
        "+retries: 3",
        "-  minute: 5",
        "+  minute: 10",
    ] {
        assert!(plan.stdout.contains(expected), "{expected}: {}", plan.all());
    }
    Ok(())
}
