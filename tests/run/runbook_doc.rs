//! `runsheet doc` against the lab's real rolling upgrade (tests/run/kong_lab.rs): a saved
//! plan's diffs in the document, the document's step order against the order a real run
//! journaled its steps, and expected durations from that run.

use std::collections::HashSet;

use crate::kong_lab::ShippedLab;
use crate::lab::TestResult;

/// The rolling upgrade, as the lab runs it.
const PLAYBOOK: &str = "playbooks/kong-rolling-upgrade.yaml";

/// Inputs: one node at a time (so the journal's order is the document's), fast readiness.
const SETS: [&str; 4] = ["--set", "target_version=3.9.1", "--set", "ready_delay=50ms"];

/// `runsheet VERB PLAYBOOK --env lab SETS... EXTRA...` in the lab.
fn verb(lab: &ShippedLab, verb: &str, extra: &[&str]) -> std::io::Result<crate::lab::Run> {
    let mut args = vec![verb, PLAYBOOK, "--env", "environments/lab.yaml"];
    args.extend(SETS);
    args.extend(extra);
    lab.runsheet(&args)
}

/// Values of `data-path="..."` in an HTML document, in order.
fn data_paths(html: &str) -> Vec<String> {
    html.split("data-path=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Paths of the action steps a run's journal records as succeeded, each at its first
/// occurrence (a body's steps repeat once per item).
fn journaled_paths(journal: &str) -> Result<Vec<String>, serde_json::Error> {
    let mut seen = HashSet::new();
    let mut paths = Vec::new();
    for line in journal.lines() {
        let record: serde_json::Value = serde_json::from_str(line)?;
        let container = matches!(record["action"].as_str(), Some("group" | "for_each"));
        if record["kind"] != "step_succeeded" || container {
            continue;
        }
        if let Some(path) = record["path"].as_str()
            && seen.insert(path.to_owned())
        {
            paths.push(path.to_owned());
        }
    }
    Ok(paths)
}

#[test]
fn the_runbook_shows_the_saved_plans_diffs_the_executors_order_and_earlier_durations() -> TestResult
{
    let lab = ShippedLab::embedded(|text| text, |text| text)?;

    let plan = verb(&lab, "plan", &["--out", "upgrade.plan"])?;
    plan.assert_ended(0, &[]);
    let with_plan = verb(&lab, "doc", &["--from-plan", "upgrade.plan"])?;
    with_plan.assert_ended(0, &["Changes from | the saved plan `upgrade.plan`"]);
    for node in ["dp1", "dp2", "dp3"] {
        assert!(
            with_plan
                .stdout
                .contains(&format!("- `upgrade[{node}].node.drain`: changes: ")),
            "{}",
            with_plan.all()
        );
    }
    assert!(
        with_plan
            .stdout
            .contains("```diff\n--- before\n+++ after\n"),
        "the drain's diff is shown: {}",
        with_plan.all()
    );
    assert!(
        !with_plan.stdout.contains("**Warning:**"),
        "a fresh plan of the same playbook and inputs: {}",
        with_plan.all()
    );
    let other_inputs = lab.runsheet(&[
        "doc",
        PLAYBOOK,
        "--env",
        "environments/lab.yaml",
        "--set",
        "target_version=3.9.2",
        "--from-plan",
        "upgrade.plan",
    ])?;
    other_inputs.assert_ended(0, &["made with other values of target_version"]);

    let run = verb(&lab, "run", &[])?;
    run.assert_ended(0, &[]);
    let id = lab.lab.only_run().ok_or("no run directory")?;
    let journal = std::fs::read_to_string(
        lab.lab
            .path()
            .join(format!(".runsheet/runs/{id}/journal.jsonl")),
    )?;
    let executed = journaled_paths(&journal)?;
    assert!(executed.len() > 15, "a real upgrade: {executed:?}");

    let html = verb(&lab, "doc", &["--format", "html"])?;
    html.assert_ended(0, &[]);
    let documented = data_paths(&html.stdout);
    let ran: HashSet<&String> = executed.iter().collect();
    let documented_that_ran: Vec<String> = documented
        .iter()
        .filter(|path| ran.contains(path))
        .cloned()
        .collect();
    assert_eq!(
        documented_that_ran, executed,
        "the document lists the steps in the order the executor ran them"
    );
    let never_documented: Vec<&String> = executed
        .iter()
        .filter(|path| !documented.contains(path))
        .collect();
    assert!(never_documented.is_empty(), "{never_documented:?}");

    let markdown = verb(&lab, "doc", &[])?;
    markdown.assert_ended(0, &["p95 of 1 run", "over 1 earlier run"]);
    assert!(
        !markdown.stdout.contains("no earlier runs"),
        "{}",
        markdown.all()
    );
    Ok(())
}
