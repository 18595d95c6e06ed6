//! `playbooks/kong-scale.yaml` end to end: real `runsheet twin node` processes added to and
//! removed from the Kong twin's upstream `core` by the real binary, with customers'
//! key-auth requests going through the twin's proxy.

use std::sync::Arc;

use crate::kong_nodes::{ALICE_KEY, KongLab, Layout};
use crate::lab::TestResult;
use crate::traffic::{Load, Outcome, Tally};

/// The playbook under test.
const PLAYBOOK: &str = "kong-scale.yaml";

/// Customers sending requests during a change.
fn customers(kong: &KongLab) -> Load {
    Load::start(&kong.orders(), 2, Arc::new(|_| Some(ALICE_KEY.to_owned())))
}

/// None failed, and some were answered.
fn assert_no_customer_failed(tallies: &[Tally]) {
    let total = Tally::sum(tallies);
    assert_eq!(total.failed(), 0, "failed requests: {:?}", total.failures);
    assert!(total.ok > 0, "no traffic: {total:?}");
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
    let kong = KongLab::open(
        Layout {
            serving: 3,
            spare: 1,
        },
        |env| env,
    )?;
    let load = customers(&kong);
    let added = kong.run(
        "run",
        PLAYBOOK,
        &["action=add", r#"hosts=["dp4"]"#, "traffic_apikey=ALICE_KEY"],
    )?;
    assert_eq!(added.code, Some(0), "{}", added.all());
    assert!(kong.pid(3).is_some() && kong.ready(3), "dp4 runs");
    assert_eq!(targets(&kong)?, [(0, 100), (1, 100), (2, 100), (3, 100)]);
    assert!(
        added.stdout.contains("node dp4 runs 3.9.0"),
        "{}",
        added.stdout
    );

    // Again: nothing to do.
    let writes = kong.writes()?;
    let again = kong.run(
        "run",
        PLAYBOOK,
        &["action=add", r#"hosts=["dp4"]"#, "traffic_apikey=ALICE_KEY"],
    )?;
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert_eq!(kong.writes()?, writes, "a second add writes nothing");

    let removed = kong.run(
        "run",
        PLAYBOOK,
        &[
            "action=remove",
            r#"hosts=["dp4"]"#,
            "traffic_apikey=ALICE_KEY",
        ],
    )?;
    assert_no_customer_failed(&load.finish());
    assert_eq!(removed.code, Some(0), "{}", removed.all());
    assert_eq!(kong.pid(3), None, "dp4 stopped");
    assert_eq!(targets(&kong)?, [(0, 100), (1, 100), (2, 100)]);

    let writes = kong.writes()?;
    let again = kong.run(
        "run",
        PLAYBOOK,
        &[
            "action=remove",
            r#"hosts=["dp4"]"#,
            "traffic_apikey=ALICE_KEY",
        ],
    )?;
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert_eq!(kong.writes()?, writes, "a second remove writes nothing");
    assert_eq!(kong.pid(3), None);
    Ok(())
}

#[test]
fn an_add_failing_at_its_second_node_keeps_the_first_and_stops_the_second() -> TestResult {
    let kong = KongLab::open(
        Layout {
            serving: 3,
            spare: 2,
        },
        |env| env,
    )?;
    // The 1st write adds dp4's target; the 2nd, dp5's, fails.
    kong.fault(r#"{"fail_nth_write": 2, "status": 500}"#)?;
    let run = kong.run(
        "run",
        PLAYBOOK,
        &[
            "action=add",
            r#"hosts=["dp4", "dp5"]"#,
            "traffic_apikey=ALICE_KEY",
        ],
    )?;
    assert_eq!(run.code, Some(1), "{}", run.all());
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
            let mut lines: Vec<String> = env.lines().map(str::to_owned).collect();
            let dp3 = lines.iter().position(|l| l == "  dp3:").unwrap_or(0);
            if let Some(line) = lines[dp3..]
                .iter_mut()
                .find(|l| l.contains("stop_command:"))
            {
                *line = "      stop_command: 'echo kong: stop refused >&2; exit 1'".to_owned();
            }
            lines.join("\n") + "\n"
        },
    )?;
    let load = customers(&kong);
    let run = kong.run(
        "run",
        PLAYBOOK,
        &[
            "action=remove",
            r#"hosts=["dp3"]"#,
            "traffic_apikey=ALICE_KEY",
        ],
    )?;
    assert_no_customer_failed(&load.finish());
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("stop refused"), "{}", run.all());
    assert_eq!(targets(&kong)?, [(0, 100), (1, 100), (2, 100)]);
    assert!(kong.pid(2).is_some() && kong.ready(2), "dp3 still runs");
    Ok(())
}

#[test]
fn a_remove_below_min_nodes_is_refused_before_any_write() -> TestResult {
    let kong = KongLab::open(
        Layout {
            serving: 3,
            spare: 0,
        },
        |env| env,
    )?;
    let run = kong.run(
        "run",
        PLAYBOOK,
        &["action=remove", r#"hosts=["dp2", "dp3"]"#],
    )?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.all().contains("would leave 1 of the 3 target(s)") && run.all().contains("min_nodes=2"),
        "{}",
        run.all()
    );
    assert_eq!(kong.writes()?, 0);
    assert!(kong.pid(1).is_some() && kong.pid(2).is_some());
    let unknown = kong.run("run", PLAYBOOK, &["action=remove", r#"hosts=["dp9"]"#])?;
    assert_eq!(unknown.code, Some(1), "{}", unknown.all());
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
    let kong = KongLab::open(
        Layout {
            serving: 3,
            spare: 1,
        },
        |env| env,
    )?;
    let before: Vec<_> = (0..4).map(|n| kong.pid(n)).collect();
    for sets in [
        ["action=add", r#"hosts=["dp4"]"#],
        ["action=remove", r#"hosts=["dp3"]"#],
    ] {
        let validated = kong.run("validate", PLAYBOOK, &sets)?;
        assert_eq!(validated.code, Some(0), "{}", validated.all());
        let plan = kong.run("plan", PLAYBOOK, &sets)?;
        assert_eq!(plan.code, Some(0), "{sets:?}: {}", plan.all());
    }
    assert_eq!(kong.writes()?, 0);
    assert_eq!((0..4).map(|n| kong.pid(n)).collect::<Vec<_>>(), before);
    assert_eq!(targets(&kong)?, [(0, 100), (1, 100), (2, 100)]);
    Ok(())
}
