//! Review of `kong.snapshot` and `kong.sync` against a Kong twin over loopback HTTP:
//! restores that must undo references to what the sync created, secrets Kong echoes in
//! its errors, snapshots of records with null members synced back.

use runsheet_engine::Action;
use serde_json::json;

use super::snapshot::KongSnapshot;
use super::sync::KongSync;
use super::tests::{normalized, seed, step};
use crate::kong::twin_tests::writes;
use crate::test_support::message;
use crate::kong::twin_tests::{client, twin};
use crate::test_support::TestResult;

#[tokio::test]
async fn a_restore_puts_a_moved_route_back_before_deleting_the_service_it_moved_to() -> TestResult {
    let twin = twin().await?;
    seed(&twin)?;
    let original = normalized(&twin);
    let dir = tempfile::tempdir()?;
    let live = step(&twin, false, dir.path());
    // Writes: PUT service fresh, PATCH orders-route onto it, PUT consumer carol (refused
    // by Kong: unknown field). The restore must move the route back before it can
    // delete fresh (Kong refuses to delete a service that routes still use).
    std::fs::write(
        dir.path().join("move.yaml"),
        "_format_version: '3.0'\nservices:\n- name: fresh\n  host: fresh.internal\n  routes:\n  - name: orders-route\n    paths: [/orders]\nconsumers:\n- username: carol\n  nickname: c\n",
    )?;
    let shown = message(
        KongSync::new()
            .apply(&live, json!({"state": "move.yaml"}))
            .await,
    )?;
    assert!(
        shown.starts_with("kong.sync: create consumer carol failed: "),
        "{shown}"
    );
    assert!(
        shown.contains("the gateway was restored to its state before the sync"),
        "{shown}"
    );
    assert_eq!(normalized(&twin), original);
    Ok(())
}

#[tokio::test]
async fn a_key_kong_echoes_in_an_error_is_masked() -> TestResult {
    let twin = twin().await?;
    seed(&twin)?;
    let dir = tempfile::tempdir()?;
    let live = step(&twin, false, dir.path());
    // bob's key is outside team-a: giving it to alice is a create Kong refuses with
    // `UNIQUE violation detected on '{key="bob-key"}'`.
    std::fs::write(
        dir.path().join("steal.yaml"),
        "_format_version: '3.0'\nconsumers:\n- username: alice\n  keyauth_credentials:\n  - key: bob-key\n",
    )?;
    let before = writes(&twin).await?;
    let shown = message(
        KongSync::new()
            .apply(
                &live,
                json!({"state": "steal.yaml", "select_tags": ["team-a"]}),
            )
            .await,
    )?;
    assert!(shown.contains("UNIQUE violation"), "{shown}");
    assert!(!shown.contains("bob-key"), "{shown}");
    assert!(writes(&twin).await? > before, "Kong was asked");
    Ok(())
}

#[tokio::test]
async fn a_snapshot_of_records_with_null_members_syncs_back_as_no_change() -> TestResult {
    let twin = twin().await?;
    seed(&twin)?;
    let admin = client(&twin, false).await?;
    admin
        .post(
            "/services/orders/routes",
            &json!({"name": "tcp-route", "protocols": ["tcp"],
                    "sources": [{"ip": "10.0.0.0/8", "port": null}]}),
        )
        .await?;
    let dir = tempfile::tempdir()?;
    let live = step(&twin, false, dir.path());
    KongSnapshot::new()
        .apply(
            &live,
            json!({"path": "snap.yaml", "include_credentials": true}),
        )
        .await?;
    let plan = KongSync::new()
        .plan(&live, json!({"state": "snap.yaml", "delete": true}))
        .await?;
    assert_eq!(plan.changes, Some(false), "{plan:?}");
    Ok(())
}

#[test]
fn a_file_of_thousands_of_entities_gets_every_line_right() -> TestResult {
    // 20,000 consumers, 3 lines each (their speed is measured by `cargo bench --bench
    // kong`: counting every entity's line from the top of the file took minutes).
    let mut text = String::from("_format_version: '3.0'\nconsumers:\n");
    for index in 0..20_000 {
        text.push_str(&format!("- username: c-{index}\n  tags:\n  - t\n"));
    }
    let document = super::file::read("big.yaml", &text)?;
    assert_eq!(document.entries.len(), 20_000);
    assert_eq!(document.entries[0].line, 3);
    assert_eq!(document.entries[19_999].line, 3 + 3 * 19_999);
    Ok(())
}

#[tokio::test]
async fn a_file_without_ids_is_matched_to_thousands_of_entities() -> TestResult {
    // 5,000 consumers, each with a key and an ACL group, named by the file without ids
    // (a hand-written decK file); `cargo bench --bench kong` measures the time.
    let twin = twin().await?;
    let mut text = String::from("_format_version: '3.0'\nconsumers:\n");
    let mut consumers = Vec::new();
    for index in 0..5_000 {
        text.push_str(&format!(
            "- username: c-{index}\n  keyauth_credentials:\n  - key: key-{index}\n  acls:\n  - group: g\n"
        ));
        consumers.push(json!({"username": format!("c-{index}"),
            "keyauth_credentials": [{"key": format!("key-{index}")}], "acls": [{"group": "g"}]}));
    }
    twin.load(&json!({"_format_version": "3.0", "consumers": consumers}))
        .map_err(|error| format!("seed: {}", error.body()))?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("many.yaml"), text)?;
    let live = step(&twin, false, dir.path());
    let plan = KongSync::new()
        .plan(&live, json!({"state": "many.yaml", "delete": true}))
        .await?;
    assert_eq!(
        plan.summary,
        "sync with many.yaml: in sync (15000 entities), no change"
    );
    Ok(())
}

#[tokio::test]
async fn secrets_inside_plugin_configs_are_masked_in_snapshots_and_plans() -> TestResult {
    let twin = twin().await?;
    twin.load(&json!({"_format_version": "3.0",
        "services": [{"name": "orders", "host": "orders.internal",
            "plugins": [{"name": "rate-limiting", "config": {"minute": 5, "policy": "redis",
                "redis": {"host": "redis.internal", "password": "redis-pw-4c1d"}}}]}]}))
        .map_err(|error| format!("seed: {}", error.body()))?;
    let dir = tempfile::tempdir()?;
    let live = step(&twin, false, dir.path());
    KongSnapshot::new()
        .apply(&live, json!({"path": "masked.yaml"}))
        .await?;
    let masked = std::fs::read_to_string(dir.path().join("masked.yaml"))?;
    assert!(!masked.contains("redis-pw-4c1d"), "{masked}");
    assert!(masked.contains("redis.internal"), "{masked}");
    KongSnapshot::new()
        .apply(
            &live,
            json!({"path": "full.yaml", "include_credentials": true}),
        )
        .await?;
    let full = std::fs::read_to_string(dir.path().join("full.yaml"))?;
    assert!(full.contains("redis-pw-4c1d"), "{full}");

    let before = writes(&twin).await?;
    let refused = message(
        KongSync::new()
            .apply(&live, json!({"state": "masked.yaml"}))
            .await,
    )?;
    assert!(
        refused.contains("`config` holds the snapshot mask"),
        "{refused}"
    );
    assert_eq!(writes(&twin).await?, before, "nothing written");

    // A plan that changes the password shows neither value; the apply hands both over.
    std::fs::write(
        dir.path().join("rekey.yaml"),
        full.replace("redis-pw-4c1d", "redis-pw-77aa"),
    )?;
    let change = KongSync::new()
        .plan(
            &step(&twin, true, dir.path()),
            json!({"state": "rekey.yaml"}),
        )
        .await?;
    let shown = format!("{change:?}");
    assert_eq!(change.changes, Some(true), "{shown}");
    assert!(
        !shown.contains("redis-pw-4c1d") && !shown.contains("redis-pw-77aa"),
        "{shown}"
    );
    let applied = KongSync::new()
        .apply(&live, json!({"state": "rekey.yaml"}))
        .await?;
    assert!(applied.secrets.contains(&"redis-pw-77aa".to_owned()));
    assert!(applied.secrets.contains(&"redis-pw-4c1d".to_owned()));
    Ok(())
}
