//! The shipped Kong playbooks `kong-policy-migration` and `kong-rollback`, run by the real
//! binary against the Kong data-plane lab of `kong_nodes.rs` (a standalone twin whose
//! upstream `core` balances three `runsheet twin node` processes, hosts `dp1`..`dp3` with
//! the node contract's host vars). Each playbook: the success path, a failure in the
//! middle with the automatic rollback checked by the gateway's state (normalised
//! `kong.snapshot` files before and after), and a dry run with zero writes.

use std::path::Path;

use crate::kong_nodes::{ALICE_KEY, BOB_KEY, KongLab, Options};
use crate::lab::{Run, TestResult};
use crate::traffic::{Outcome, Tally, assert_in_rotation, delete, request};

/// A policy migration of the shipped example state file with `sets`.
fn migration(lab: &KongLab, verb: &str, sets: &[&str]) -> std::io::Result<Run> {
    let artefacts = format!("artefacts={}", lab.lab.path().join("artefacts").display());
    let mut all = vec![
        "state_file=examples/kong-lab-state.yaml",
        artefacts.as_str(),
    ];
    all.extend_from_slice(sets);
    lab.run(verb, "kong-policy-migration.yaml", &all)
}

#[test]
fn policy_migration_plans_without_writing_pauses_at_its_gate_and_syncs_when_approved() -> TestResult
{
    let lab = KongLab::plain()?;
    let planned = migration(&lab, "plan", &[])?;
    planned.assert_ended(
        0,
        &[
            "2 to create, 1 to update, 0 to delete",
            "+create route orders-v2",
        ],
    );
    assert_eq!(lab.twin.writes()?, 0, "a plan writes nothing");

    let smoke = r#"smoke_tests=[{"path": "/v2/orders", "status": 200}, {"path": "/v2/orders", "status": 401, "key": false, "name": "no key"}]"#;
    let paused = migration(&lab, "run", &[smoke, "smoke_key=ALICE_KEY"])?;
    paused.assert_ended(4, &[]);
    assert!(
        paused
            .stdout
            .contains("2 to create, 1 to update, 0 to delete"),
        "the gate quotes the diff: {}",
        paused.all()
    );
    assert_eq!(lab.twin.writes()?, 0, "nothing is written before the gate");
    let run = paused.run_id().ok_or("no run id")?;

    let resumed = lab.runsheet(&["resume", &run, "--approve", "sync"])?;
    resumed.assert_ended(0, &[]);
    assert!(
        !resumed.all().contains(ALICE_KEY),
        "the smoke key is masked: {}",
        resumed.all()
    );
    let (status, route) = lab.admin("/routes/orders-v2")?;
    assert_eq!(status, 200, "{route}");
    let (status, _) = request(&lab.url("/v2/orders"), &[("apikey", ALICE_KEY)])?;
    assert_eq!(status, 200);
    let (_, payments) = lab.admin("/services/payments")?;
    assert_eq!(payments["read_timeout"], 15000);
    let before = std::fs::read_dir(lab.lab.path().join("artefacts"))?.count();
    assert_eq!(before, 1, "the pre-state snapshot is kept");

    // Idempotent: a second run finds the gateway in sync, does not stop at the gate,
    // and changes nothing.
    let writes = lab.twin.writes()?;
    let snapshot = lab.snapshot("after-first.yaml")?;
    let again = migration(&lab, "run", &[])?;
    again.assert_ended(0, &[]);
    assert!(
        again.stdout.contains("gate: `when:"),
        "no gate when in sync: {}",
        again.all()
    );
    assert_eq!(lab.snapshot("after-second.yaml")?, snapshot);
    assert_eq!(lab.twin.writes()?, writes, "a second run writes nothing");
    Ok(())
}

#[test]
fn policy_migration_restores_the_gateway_when_a_write_fails_or_a_smoke_test_fails() -> TestResult {
    let lab = KongLab::plain()?;
    let before = lab.snapshot("before.yaml")?;

    // A write failing in the middle of the sync (its 2nd write: the route's plugin).
    lab.fault(r#"{"fail_nth_write": 2, "status": 400}"#)?;
    let failed = migration(&lab, "run", &["approval=false"])?;
    failed.assert_ended(1, &[]);
    assert!(failed.all().contains("restored"), "{}", failed.all());
    assert_eq!(
        lab.snapshot("after-fault.yaml")?,
        before,
        "the gateway is back to its snapshot"
    );

    // A smoke test failing after a complete sync: /v2/orders without a key answers 401.
    let smoke = r#"smoke_tests=[{"path": "/v2/orders", "status": 200}]"#;
    let failed = migration(&lab, "run", &["approval=false", smoke])?;
    failed.assert_ended(1, &["undone  sync"]);
    assert_eq!(
        lab.snapshot("after-smoke.yaml")?,
        before,
        "the gateway is back to its snapshot"
    );
    let (status, _) = lab.admin("/routes/orders-v2")?;
    assert_eq!(status, 404, "the new route is gone");
    Ok(())
}

/// A `kong-rollback` run restoring `snapshot`.
fn restore(lab: &KongLab, verb: &str, snapshot: &Path, sets: &[&str]) -> std::io::Result<Run> {
    let snapshot = format!("snapshot={}", snapshot.display());
    let artefacts = format!("artefacts={}", lab.lab.path().join("rollback").display());
    let mut all = vec![snapshot.as_str(), artefacts.as_str()];
    all.extend_from_slice(sets);
    lab.run(verb, "kong-rollback.yaml", &all)
}

#[test]
fn rollback_restores_a_snapshot_exactly_and_undoes_a_restore_that_fails() -> TestResult {
    let lab = KongLab::plain()?;
    let original = lab.snapshot("original.yaml")?;
    let migrated = migration(&lab, "run", &["approval=false"])?;
    migrated.assert_ended(0, &[]);
    // Something changed by hand too: bob is gone.
    let (status, _) = delete(&format!("{}/consumers/bob", lab.twin.admin_url))?;
    assert_eq!(status, 204);
    let changed = lab.snapshot("changed.yaml")?;
    assert_ne!(changed, original);
    let snapshot = lab.lab.path().join("original.yaml");

    let writes = lab.twin.writes()?;
    let planned = restore(&lab, "plan", &snapshot, &[])?;
    planned.assert_ended(0, &["to delete"]);
    assert_eq!(lab.twin.writes()?, writes, "a plan writes nothing");

    // A write failing in the middle of the restore: the gateway stays as it was.
    lab.fault(r#"{"fail_nth_write": 2, "status": 400}"#)?;
    let failed = restore(&lab, "run", &snapshot, &["approval=false"])?;
    failed.assert_ended(1, &[]);
    assert_eq!(
        lab.snapshot("after-fault.yaml")?,
        changed,
        "a failed restore leaves the state before it"
    );

    // Through the gate, then restored byte for byte (the playbook compares the hashes and
    // says so).
    let paused = restore(&lab, "run", &snapshot, &[])?;
    paused.assert_ended(4, &[]);
    let run = paused.run_id().ok_or("no run id")?;
    let resumed = lab.runsheet(&["resume", &run, "--approve", "restore"])?;
    resumed.assert_ended(0, &["byte-identical to the file"]);
    assert_eq!(lab.snapshot("restored.yaml")?, original);
    let (status, _) = request(&lab.url("/orders"), &[("apikey", BOB_KEY)])?;
    assert_eq!(status, 200, "bob's key works again");
    Ok(())
}

/// The lab with its nodes at 3.9.1, node `i`'s install command refusing `refused[i]`.
fn on_3_9_1(refused: &[Option<&str>]) -> Outcome<KongLab> {
    KongLab::build(
        Options {
            version: "3.9.1",
            refused,
            ..Options::default()
        },
        |env| env,
    )
}

/// A `kong-rollback` of the nodes' version to 3.9.0 with 4 customers on `/orders`
/// during the run: its outcome and what the customers saw.
fn version_rollback_under_load(lab: &KongLab) -> Outcome<(Run, Tally)> {
    let load = lab.customers(4);
    let run = lab.run("run", "kong-rollback.yaml", VERSION_ROLLBACK)?;
    Ok((run, Tally::sum(&load.finish())))
}

/// The `--set`s of a version rollback to 3.9.0.
const VERSION_ROLLBACK: &[&str] = &[
    "approval=false",
    "mode=version",
    "version=3.9.0",
    "ready_timeout=20s",
    "traffic_key=ALICE_KEY",
];

#[test]
fn rollback_puts_nodes_back_on_a_version_without_failing_a_request() -> TestResult {
    let lab = on_3_9_1(&[])?;
    // With the gate (the default), nothing is touched before someone approves.
    let gated = lab.run("run", "kong-rollback.yaml", &VERSION_ROLLBACK[1..])?;
    gated.assert_ended(4, &[]);
    assert!(gated.stderr.contains("--approve rollback-version"), "{}", gated.all());
    assert_eq!(lab.writes()?, 0, "nothing changes before the approval");
    lab.runsheet(&["unlock", "kong-lab"])?;
    let planned = lab.run("plan", "kong-rollback.yaml", VERSION_ROLLBACK)?;
    planned.assert_ended(0, &["weight 100 -> 0"]);
    assert_eq!(lab.writes()?, 0, "a plan writes nothing");
    for index in 0..3 {
        assert_eq!(
            lab.node_version(index)?,
            "3.9.1",
            "a plan leaves the nodes alone"
        );
    }

    let (done, tally) = version_rollback_under_load(&lab)?;
    done.assert_ended(0, &[]);
    for index in 0..3 {
        assert_eq!(lab.node_version(index)?, "3.9.0");
    }
    assert_in_rotation(&lab.weights()?);
    println!(
        "version rollback of 3 nodes: {} requests, {} failed",
        tally.sent(),
        tally.failed()
    );
    assert!(tally.ok > 50, "{tally:?}");
    assert_eq!(tally.failed(), 0, "{:?}", tally.failures);
    Ok(())
}

#[test]
fn a_node_failing_its_version_rollback_is_put_back_and_finished_nodes_stay() -> TestResult {
    // dp2 refuses to install 3.9.0; its reinstall of 3.9.1 works.
    let lab = on_3_9_1(&[None, Some("3.9.0"), None])?;
    let (failed, tally) = version_rollback_under_load(&lab)?;
    failed.assert_ended(1, &[]);
    assert_eq!(
        lab.node_version(0)?,
        "3.9.0",
        "the finished batch stays on the version"
    );
    assert_eq!(
        lab.node_version(1)?,
        "3.9.1",
        "the failed node is back on the version it ran"
    );
    assert_eq!(
        lab.node_version(2)?,
        "3.9.1",
        "no batch starts after the failure"
    );
    assert_in_rotation(&lab.weights()?);
    assert!(lab.ready(1), "the failed node runs and is ready");
    assert_eq!(tally.failed(), 0, "{:?}", tally.failures);
    Ok(())
}
