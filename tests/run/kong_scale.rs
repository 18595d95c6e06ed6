//! `playbooks/kong-scale.yaml` end to end: real `runsheet twin node` processes added to and
//! removed from the Kong twin's upstream `core` by the real binary, with customers'
//! key-auth requests going through the twin's proxy.

use crate::kong_nodes::{KongLab, Layout, with_host_var};
use crate::lab::{Run, TestResult};
use crate::traffic::{Load, Outcome, assert_none_failed};

/// The playbook under test.
const PLAYBOOK: &str = "kong-scale.yaml";

/// Customers sending requests during a change.
fn customers(kong: &KongLab) -> Load {
    kong.customers(2)
}

/// The lab with `serving` nodes in the upstream and `spare` more in the environment.
fn lab(serving: usize, spare: usize) -> Outcome<KongLab> {
    KongLab::open(Layout { serving, spare }, |env| env)
}

/// `kong-scale` doing `action` on `hosts` (a JSON list), customers' key from `ALICE_KEY`.
fn scale(kong: &KongLab, action: &str, hosts: &str) -> std::io::Result<Run> {
    kong.run(
        "run",
        PLAYBOOK,
        &[
            &format!("action={action}"),
            &format!("hosts={hosts}"),
            "traffic_apikey=ALICE_KEY",
        ],
    )
}

/// A second `kong-scale` doing `action` on `hosts` succeeds and writes nothing.
fn assert_second_run_writes_nothing(kong: &KongLab, action: &str, hosts: &str) -> TestResult {
    let writes = kong.writes()?;
    let again = scale(kong, action, hosts)?;
    again.assert_ended(0, &[]);
    assert_eq!(kong.writes()?, writes, "a second {action} writes nothing");
    Ok(())
}

/// The upstream's targets, as (node index, weight), sorted.
fn targets(kong: &KongLab) -> Outcome<Vec<(usize, u64)>> {
    let mut found = Vec::new();
    for (target, weight) in kong.weights()? {
        let index = kong
            .nodes
            .iter()
            .position(|node| node.address == target)
            .ok_or_else(|| format!("unknown target {target}"))?;
        found.push((index, weight));
    }
    found.sort();
    Ok(found)
}

#[test]
fn a_node_added_then_removed_takes_traffic_in_between_and_no_customer_fails() -> TestResult {
    let kong = lab(3, 1)?;
    let load = customers(&kong);
    let added = scale(&kong, "add", r#"["dp4"]"#)?;
    added.assert_ended(0, &[]);
    assert!(kong.pid(3).is_some() && kong.ready(3), "dp4 runs");
    assert_eq!(targets(&kong)?, [(0, 100), (1, 100), (2, 100), (3, 100)]);
    assert!(
        added.stdout.contains("node dp4 runs 3.9.0"),
        "{}",
        added.stdout
    );

    // Again: nothing to do.
    assert_second_run_writes_nothing(&kong, "add", r#"["dp4"]"#)?;

    let removed = scale(&kong, "remove", r#"["dp4"]"#)?;
    assert_none_failed(&load.finish(), 0);
    removed.assert_ended(0, &[]);
    assert_eq!(kong.pid(3), None, "dp4 stopped");
    assert_eq!(targets(&kong)?, [(0, 100), (1, 100), (2, 100)]);

    assert_second_run_writes_nothing(&kong, "remove", r#"["dp4"]"#)?;
    assert_eq!(kong.pid(3), None);
    Ok(())
}

#[test]
fn an_add_failing_at_its_second_node_keeps_the_first_and_stops_the_second() -> TestResult {
    let kong = lab(3, 2)?;
    // The 1st write adds dp4's target; the 2nd, dp5's, fails.
    kong.fault(r#"{"fail_nth_write": 2, "status": 500}"#)?;
    let run = scale(&kong, "add", r#"["dp4", "dp5"]"#)?;
    run.assert_ended(1, &[]);
    assert!(run.all().contains("add[dp5].add-target"), "{}", run.all());
    assert_eq!(targets(&kong)?, [(0, 100), (1, 100), (2, 100), (3, 100)]);
    assert!(kong.pid(3).is_some(), "dp4 stays added");
    assert_eq!(kong.pid(4), None, "dp5 stopped again");
    Ok(())
}

#[test]
fn a_remove_whose_stop_fails_restores_the_target_and_its_weight() -> TestResult {
    let kong = KongLab::open(
        Layout {
            serving: 3,
            spare: 0,
        },
        |env| {
            with_host_var(&env, "dp3", "stop_command", |_| {
                "      stop_command: 'echo kong: stop refused >&2; exit 1'".to_owned()
            })
        },
    )?;
    let load = customers(&kong);
    let run = scale(&kong, "remove", r#"["dp3"]"#)?;
    assert_none_failed(&load.finish(), 0);
    run.assert_ended(1, &[]);
    assert!(run.all().contains("stop refused"), "{}", run.all());
    assert_eq!(targets(&kong)?, [(0, 100), (1, 100), (2, 100)]);
    assert!(kong.pid(2).is_some() && kong.ready(2), "dp3 still runs");
    Ok(())
}

#[test]
fn a_remove_below_min_nodes_is_refused_before_any_write() -> TestResult {
    let kong = lab(3, 0)?;
    let run = kong.run(
        "run",
        PLAYBOOK,
        &["action=remove", r#"hosts=["dp2", "dp3"]"#],
    )?;
    run.assert_ended(1, &[]);
    assert!(
        run.all().contains("would leave 1 of the 3 target(s)") && run.all().contains("min_nodes=2"),
        "{}",
        run.all()
    );
    assert_eq!(kong.writes()?, 0);
    assert!(kong.pid(1).is_some() && kong.pid(2).is_some());
    let unknown = kong.run("run", PLAYBOOK, &["action=remove", r#"hosts=["dp9"]"#])?;
    unknown.assert_ended(1, &[]);
    assert!(
        unknown
            .all()
            .contains("not every host of dp9 is in group dataplane"),
        "{}",
        unknown.all()
    );
    assert_eq!(kong.writes()?, 0);
    Ok(())
}

#[test]
fn plans_of_an_add_and_a_remove_write_nothing() -> TestResult {
    let kong = lab(3, 1)?;
    let before = kong.pids();
    for sets in [
        ["action=add", r#"hosts=["dp4"]"#],
        ["action=remove", r#"hosts=["dp3"]"#],
    ] {
        let validated = kong.run("validate", PLAYBOOK, &sets)?;
        validated.assert_ended(0, &[]);
        let plan = kong.run("plan", PLAYBOOK, &sets)?;
        assert_eq!(plan.code, Some(0), "{sets:?}: {}", plan.all());
    }
    assert_eq!(kong.writes()?, 0);
    assert_eq!(kong.pids(), before);
    assert_eq!(targets(&kong)?, [(0, 100), (1, 100), (2, 100)]);
    Ok(())
}
