//! `layer7.policy_revision` against the Layer7 twin over loopback HTTP.

use runsheet_engine::{Action, Probe};
use runsheet_twin::layer7::Layer7Twin;
use serde_json::json;

use super::Layer7Gateway;
use super::export_import_tests::{fragment, put, service};
use super::policy_revision::Layer7PolicyRevision;
use super::restman::{Policy, Service};
use super::twin_support::{context, context_with, twin, writes};
use crate::test_support::{TestResult, message};

const ORDERS: &str = "5e000000000000000000000000000001";
const FRAGMENT: &str = "90000000000000000000000000000001";
const ROOT: &str = "0000000000000000ffffffffffffec76";

/// Service `/orders` with revisions 1..=3 (comments `c1`..`c3`, 3 active) and
/// fragment `auth` with revisions 1..=2 (2 active).
async fn seeded() -> TestResult<Layer7Twin> {
    let twin = twin().await?;
    for number in 1..=3 {
        put(
            &twin,
            &format!("services/{ORDERS}?versionComment=c{number}"),
            service("orders", "/orders", &format!("orders v{number}"), ROOT),
        )
        .await?;
    }
    for number in 1..=2 {
        put(
            &twin,
            &format!("policies/{FRAGMENT}?versionComment=f{number}"),
            fragment("auth", &format!("auth v{number}")),
        )
        .await?;
    }
    Ok(twin)
}

/// The active revision of the service.
async fn active(twin: &Layer7Twin) -> TestResult<u64> {
    let gateway = Layer7Gateway::for_step(&context(twin, true)).await?;
    let versions = gateway.restman.versions::<Service>(ORDERS).await?;
    versions
        .iter()
        .find(|version| version.active)
        .map(|version| version.ordinal)
        .ok_or_else(|| "no active revision".into())
}

#[tokio::test]
async fn plan_shows_both_revisions_and_their_policies_without_writing() -> TestResult {
    let twin = seeded().await?;
    let before = writes(&twin).await?;
    let action = Layer7PolicyRevision::new();
    let change = action
        .plan(
            &context(&twin, true),
            json!({"service": "/orders", "activate": "previous"}),
        )
        .await?;
    assert_eq!(
        change.summary,
        format!("service `orders` ({ORDERS}): active revision 3 (\"c3\") -> 2 (\"c2\")")
    );
    assert_eq!(change.changes, Some(true));
    assert!(
        change
            .before
            .as_deref()
            .is_some_and(|xml| xml.contains("orders v3"))
    );
    assert!(
        change
            .after
            .as_deref()
            .is_some_and(|xml| xml.contains("orders v2"))
    );
    let same = action
        .plan(
            &context(&twin, true),
            json!({"service": "orders", "activate": 3}),
        )
        .await?;
    assert_eq!(same.changes, Some(false));
    assert!(
        same.summary.contains("is active already, no change"),
        "{}",
        same.summary
    );
    assert_eq!(writes(&twin).await?, before);
    Ok(())
}

#[tokio::test]
async fn apply_activates_previous_and_undo_activates_the_old_one_again() -> TestResult {
    let twin = seeded().await?;
    let action = Layer7PolicyRevision::new();
    let context = context(&twin, false);
    let arguments = json!({"service": ORDERS, "activate": "previous"});
    let applied = action.apply(&context, arguments.clone()).await?;
    assert_eq!(applied.outputs["revision"], json!(2));
    assert_eq!(applied.outputs["previous_revision"], json!(3));
    assert_eq!(applied.outputs["changed"], json!(true));
    assert_eq!(active(&twin).await?, 2);
    action
        .undo(&context, arguments, applied.undo.ok_or("no undo record")?)
        .await?;
    assert_eq!(active(&twin).await?, 3);
    Ok(())
}

#[tokio::test]
async fn an_active_revision_is_left_alone() -> TestResult {
    let twin = seeded().await?;
    let before = writes(&twin).await?;
    let applied = Layer7PolicyRevision::new()
        .apply(
            &context(&twin, false),
            json!({"service": "/orders", "activate": 3}),
        )
        .await?;
    assert_eq!(applied.outputs["changed"], json!(false));
    assert_eq!(writes(&twin).await?, before);
    Ok(())
}

#[tokio::test]
async fn policies_by_name_and_their_revisions() -> TestResult {
    let twin = seeded().await?;
    let action = Layer7PolicyRevision::new();
    let context = context(&twin, false);
    let applied = action
        .apply(&context, json!({"policy": "auth", "activate": 1}))
        .await?;
    assert_eq!(applied.outputs["previous_revision"], json!(2));
    let gateway = Layer7Gateway::for_step(&context).await?;
    let versions = gateway.restman.versions::<Policy>(FRAGMENT).await?;
    assert!(versions.iter().any(|v| v.active && v.ordinal == 1));
    Ok(())
}

#[tokio::test]
async fn missing_entities_revisions_and_credentials_are_clear_errors() -> TestResult {
    let twin = seeded().await?;
    let action = Layer7PolicyRevision::new();
    let context = context(&twin, true);
    let missing = message(
        action
            .plan(&context, json!({"service": "/nope", "activate": 1}))
            .await,
    )?;
    assert!(
        missing.contains("service `/nope` not found on gateway `l7`"),
        "{missing}"
    );
    let no_policy = message(
        action
            .plan(&context, json!({"policy": "ghost", "activate": 1}))
            .await,
    )?;
    assert!(
        no_policy.contains("policy `ghost` not found"),
        "{no_policy}"
    );
    let no_revision = message(
        action
            .plan(&context, json!({"service": "/orders", "activate": 9}))
            .await,
    )?;
    assert!(
        no_revision.contains("has no revision 9 (it has 1, 2, 3)"),
        "{no_revision}"
    );
    action
        .apply(
            &super::twin_support::context(&twin, false),
            json!({"service": "/orders", "activate": 1}),
        )
        .await?;
    let oldest = message(
        action
            .plan(
                &context,
                json!({"service": "/orders", "activate": "previous"}),
            )
            .await,
    )?;
    assert!(oldest.contains("there is no previous revision"), "{oldest}");
    let refused = message(
        action
            .plan(
                &context_with(&twin, true, "wrong"),
                json!({"service": "/orders", "activate": 1}),
            )
            .await,
    )?;
    assert!(
        refused.contains("401") && refused.contains("credentials"),
        "{refused}"
    );
    Ok(())
}

#[tokio::test]
async fn probe_is_done_when_the_wanted_revision_is_active() -> TestResult {
    let twin = seeded().await?;
    let action = Layer7PolicyRevision::new();
    let context = context(&twin, false);
    let by_number = json!({"service": "/orders", "activate": 2});
    assert!(matches!(
        action.probe(&context, by_number.clone()).await?,
        Probe::NotDone
    ));
    let previous = json!({"service": "/orders", "activate": "previous"});
    assert!(matches!(
        action.probe(&context, previous.clone()).await?,
        Probe::NotDone
    ));
    action.apply(&context, by_number.clone()).await?;
    match action.probe(&context, by_number).await? {
        Probe::Done(applied) => assert_eq!(applied.outputs["revision"], json!(2)),
        other => return Err(format!("expected Done, got {other:?}").into()),
    }
    assert!(matches!(
        action.probe(&context, previous).await?,
        Probe::Unknown(_)
    ));
    Ok(())
}
