//! `playbooks/kong-restart.yaml` end to end: the real binary restarts three real
//! `runsheet twin node` processes behind the Kong twin's upstream `core` while customers
//! send key-auth requests through its proxy (service `orders` does not retry another
//! target, so a request sent to a stopped node fails).

use crate::kong_nodes::{ALICE_KEY, KongLab, Layout, with_host_var};
use crate::lab::{Run, TestResult};
use crate::traffic::{Load, NodeProcess, assert_in_rotation, assert_none_failed};

/// The playbook under test.
const PLAYBOOK: &str = "kong-restart.yaml";

/// Customers sending requests during a restart.
fn customers(kong: &KongLab) -> Load {
    kong.customers(3)
}

/// The lab with `edit` applied to its environment: three serving nodes.
fn three_nodes(edit: impl Fn(String) -> String) -> Result<KongLab, Box<dyn std::error::Error>> {
    KongLab::open(
        Layout {
            serving: 3,
            spare: 0,
        },
        edit,
    )
}

/// A restart with `sets` while customers send requests: none of them failed, and enough
/// were answered to mean something.
fn restart_under_load(kong: &KongLab, sets: &[&str]) -> std::io::Result<Run> {
    let load = customers(kong);
    let run = kong.run("run", PLAYBOOK, sets)?;
    let total = assert_none_failed(&load.finish(), 20);
    println!(
        "kong-restart of {} nodes: {} requests, {} failed",
        kong.nodes.len(),
        total.sent(),
        total.failed()
    );
    Ok(run)
}

/// Node `n` runs as a new process (not the one of `before`).
fn assert_restarted(kong: &KongLab, n: usize, before: &[Option<String>], what: &str) {
    let after = kong.pid(n);
    assert!(
        after.is_some() && after != before[n],
        "{what}: {:?} -> {after:?}",
        before[n]
    );
}

/// Every target at weight 100.
fn assert_all_serving(kong: &KongLab) -> TestResult {
    let weights = kong.weights()?;
    assert_eq!(weights.len(), 3, "{weights:?}");
    assert_in_rotation(&weights);
    Ok(())
}

#[test]
fn a_rolling_restart_restarts_every_node_without_failing_a_customer() -> TestResult {
    let kong = three_nodes(|env| env)?;
    let before = kong.pids();
    assert!(before.iter().all(Option::is_some), "{before:?}");
    let run = restart_under_load(&kong, &["traffic_apikey=ALICE_KEY"])?;
    run.assert_ended(0, &[]);
    for n in 0..3 {
        assert_restarted(&kong, n, &before, &format!("dp{}", n + 1));
        assert!(
            run.stdout
                .contains(&format!("restart[dp{}].traffic", n + 1)),
            "traffic checked while dp{} was drained: {}",
            n + 1,
            run.stdout
        );
    }
    assert!(
        !run.all().contains(ALICE_KEY),
        "the key is masked: {}",
        run.all()
    );
    assert_all_serving(&kong)?;
    assert_eq!(kong.writes()?, 6, "a drain and a readmit per node");
    Ok(())
}

/// The environment with dp2's start command failing once, then working.
fn dp2_fails_to_start_once(env: String) -> String {
    with_host_var(&env, "dp2", "start_command", |line| {
        line.replacen(
            "start_command: '",
            "start_command: 'if [ ! -e failed-once ]; then touch failed-once; echo kong: start failed >&2; exit 1; fi; ",
            1,
        )
    })
}

#[test]
fn with_max_failures_a_failed_node_is_put_back_and_the_next_nodes_are_restarted() -> TestResult {
    let kong = three_nodes(dp2_fails_to_start_once)?;
    let before = kong.pids();
    let run = restart_under_load(&kong, &["traffic_apikey=ALICE_KEY", "max_failures=1"])?;
    assert!(run.all().contains("start failed"), "{}", run.all());
    // A failure within max_failures is tolerated: the run goes on and succeeds, having
    // put the failed node back first.
    run.assert_ended(0, &["rollback (failed item restart[dp2])"]);
    assert_restarted(&kong, 0, &before, "dp1 restarted");
    assert!(kong.pid(1).is_some() && kong.ready(1), "dp2 runs again");
    assert_restarted(&kong, 2, &before, "dp3 restarted after dp2 failed");
    assert_all_serving(&kong)?;
    Ok(())
}

#[test]
fn a_node_that_fails_to_start_is_started_again_and_readmitted_and_earlier_nodes_stay_restarted()
-> TestResult {
    // dp2's start command fails once (as a start racing a slow port release would), then works.
    let kong = three_nodes(dp2_fails_to_start_once)?;
    let before = kong.pids();
    let run = restart_under_load(&kong, &["traffic_apikey=ALICE_KEY"])?;
    run.assert_ended(1, &[]);
    assert!(run.all().contains("start failed"), "{}", run.all());
    assert_restarted(&kong, 0, &before, "dp1 keeps its restart");
    assert!(kong.pid(1).is_some() && kong.ready(1), "dp2 runs again");
    assert_eq!(kong.pid(2), before[2], "dp3 untouched");
    assert_all_serving(&kong)?;
    Ok(())
}

#[test]
fn a_node_that_cannot_come_back_stays_drained_and_the_run_asks_for_a_person() -> TestResult {
    let kong = three_nodes(|env| {
        with_host_var(&env, "dp2", "start_command", |_| {
            "      start_command: 'echo kong: address already in use >&2; exit 1'".to_owned()
        })
    })?;
    let before = kong.pids();
    let run = restart_under_load(&kong, &["traffic_apikey=ALICE_KEY", "ready_timeout=2s"])?;
    run.assert_ended(2, &[]);
    assert!(
        run.all().contains("address already in use"),
        "{}",
        run.all()
    );
    assert_eq!(kong.pid(1), None, "dp2 is down");
    let weights = kong.weights()?;
    let dp2 = &kong.nodes[1].address;
    for (target, weight) in &weights {
        let expected = if target == dp2 { 0 } else { 100 };
        assert_eq!(*weight, expected, "{target}: {weights:?}");
    }
    assert_eq!(kong.pid(2), before[2], "dp3 untouched");
    Ok(())
}

#[test]
fn a_plan_writes_nothing_and_restarts_nothing() -> TestResult {
    let kong = three_nodes(|env| env)?;
    let before = kong.pids();
    let validated = kong.run("validate", PLAYBOOK, &[])?;
    validated.assert_ended(0, &[]);
    let plan = kong.run(
        "plan",
        PLAYBOOK,
        &["batch_size=2", "traffic_apikey=ALICE_KEY"],
    )?;
    plan.assert_ended(0, &["weight 100 -> 0"]);
    assert_eq!(kong.writes()?, 0);
    assert_eq!(kong.pids(), before, "no node restarted");
    assert_all_serving(&kong)?;
    Ok(())
}

#[test]
fn a_stopped_node_fails_the_pre_check_before_anything_changes() -> TestResult {
    let kong = three_nodes(|env| env)?;
    let stopped = std::process::Command::new("sh")
        .args(["-c", &NodeProcess::stop_command(&kong.nodes[2].dir)])
        .status()?;
    assert!(stopped.success());
    let before: Vec<_> = (0..2).map(|n| kong.pid(n)).collect();
    let run = kong.run("run", PLAYBOOK, &[])?;
    run.assert_ended(1, &[]);
    assert!(
        run.all().contains("precheck[dp3].ready"),
        "dp3 is named: {}",
        run.all()
    );
    assert_eq!(kong.writes()?, 0, "no upstream change");
    assert_eq!(
        (0..2).map(|n| kong.pid(n)).collect::<Vec<_>>(),
        before,
        "nothing restarted"
    );
    assert_eq!(kong.pid(2), None, "the stopped node was not started");
    Ok(())
}
