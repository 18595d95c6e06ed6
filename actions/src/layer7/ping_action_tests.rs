//! `layer7.ping` against a real Layer7 twin over loopback HTTP (and a stub without
//! Graphman).

use std::time::Duration;

use runsheet_engine::{Action, ActionError};
use serde_json::{Value, json};

use super::Layer7Ping;
use crate::layer7::test_server::GatewayStub;
use crate::layer7::twin_support::{
    PASSWORD, context, context_at, context_with, control, twin, writes,
};
use crate::test_support::TestResult;

/// The message of a failed step.
fn message(result: Result<runsheet_engine::Applied, ActionError>) -> String {
    match result {
        Ok(applied) => format!("unexpected success: {:?}", applied.outputs),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn an_up_node_reports_node_cluster_version_and_boot_time() -> TestResult {
    let twin = twin().await?;
    let applied = Layer7Ping::new()
        .apply(&context(&twin, false), json!({}))
        .await?;
    let outputs = &applied.outputs;
    assert_eq!(outputs["status"], "up");
    assert_eq!(outputs["version"], "11.1.2");
    assert_eq!(outputs["node"]["name"], "layer7-twin");
    assert_eq!(outputs["node"]["id"], json!(twin.config().node_id));
    assert_eq!(outputs["node"]["status"], "RUNNING");
    assert_eq!(outputs["cluster"]["node_count"], 1);
    assert_eq!(outputs["cluster"]["nodes"], json!(["layer7-twin"]));
    assert_eq!(outputs["patches"], json!([]));
    let boot = outputs["boot_time"].as_str().unwrap_or_default();
    let parsed: jiff::Timestamp = boot.parse()?;
    assert_eq!(outputs["boot_time_ms"], json!(parsed.as_millisecond()));
    assert_eq!(outputs["note"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn a_restarting_node_fails_the_step_until_it_is_up_again() -> TestResult {
    let twin = twin().await?;
    let before = Layer7Ping::new()
        .apply(&context(&twin, false), json!({}))
        .await?;
    control(
        &twin,
        reqwest::Method::POST,
        "/_twin/node",
        Some(json!({"action": "restart", "down_ms": 0, "starting_ms": 600})),
    )
    .await?;
    let starting = message(
        Layer7Ping::new()
            .apply(&context(&twin, false), json!({}))
            .await,
    );
    assert!(starting.starts_with("gateway `l7`: "), "{starting}");
    assert!(
        starting.contains("not in an operational state"),
        "{starting}"
    );
    assert!(starting.contains("/ssg/ping"), "{starting}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after = Layer7Ping::new()
        .apply(&context(&twin, false), json!({}))
        .await?;
    assert_eq!(after.outputs["status"], "up");
    assert_ne!(after.outputs["boot_time"], before.outputs["boot_time"]);
    let (after_ms, before_ms) = (
        after.outputs["boot_time_ms"].as_i64(),
        before.outputs["boot_time_ms"].as_i64(),
    );
    assert!(
        after_ms.zip(before_ms).is_some_and(|(a, b)| a > b),
        "boot_time_ms {after_ms:?} after {before_ms:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_stopped_node_fails_the_step_naming_the_gateway() -> TestResult {
    let twin = twin().await?;
    twin.node().stop();
    let stopped = message(
        Layer7Ping::new()
            .apply(&context(&twin, false), json!({}))
            .await,
    );
    assert!(stopped.starts_with("gateway `l7`: "), "{stopped}");
    assert!(stopped.contains(&twin.url()), "{stopped}");
    Ok(())
}

#[tokio::test]
async fn an_upgrade_shows_the_new_version_and_patches() -> TestResult {
    let twin = twin().await?;
    control(
        &twin,
        reqwest::Method::POST,
        "/_twin/node",
        Some(json!({"version": "11.1.3", "patches": [
            {"patchId": "CR01", "latest": false},
            {"patchId": "CR02", "latest": true}
        ]})),
    )
    .await?;
    let applied = Layer7Ping::new()
        .apply(&context(&twin, false), json!({}))
        .await?;
    assert_eq!(applied.outputs["version"], "11.1.3");
    assert_eq!(applied.outputs["patches"], json!(["CR01", "CR02"]));
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_401() -> TestResult {
    let twin = twin().await?;
    let refused = message(
        Layer7Ping::new()
            .apply(&context_with(&twin, false, "wrong"), json!({}))
            .await,
    );
    assert!(refused.starts_with("gateway `l7`: "), "{refused}");
    assert!(refused.contains("answered 401"), "{refused}");
    assert!(refused.contains("username and password"), "{refused}");
    assert!(!refused.contains("wrong"), "{refused}");
    Ok(())
}

#[tokio::test]
async fn a_dry_run_pings_and_writes_nothing() -> TestResult {
    let twin = twin().await?;
    let applied = Layer7Ping::new()
        .apply(&context(&twin, true), json!({}))
        .await?;
    assert_eq!(applied.outputs["status"], "up");
    assert_eq!(applied.outputs["version"], "11.1.2");
    assert_eq!(writes(&twin).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_gateway_without_graphman_still_pings_with_an_unknown_version() -> TestResult {
    let stub = GatewayStub::start(|seen| {
        if seen.uri.starts_with("/ssg/ping") {
            (200, "text/html", "<html><body>OK</body></html>".to_owned())
        } else {
            (404, "text/plain", "Not Found".to_owned())
        }
    })
    .await
    .map_err(|error| error.to_string())?;
    let applied = Layer7Ping::new()
        .apply(&context_at(&stub.url, false, PASSWORD), json!({}))
        .await?;
    assert_eq!(applied.outputs["status"], "up");
    assert_eq!(applied.outputs["version"], "unknown");
    let note = applied.outputs["note"].as_str().unwrap_or_default();
    assert!(note.contains("/graphman answered 404"), "{note}");
    Ok(())
}

#[tokio::test]
async fn arguments_are_refused() {
    let context = runsheet_engine::StepContext::detached("step", false);
    let refused = message(Layer7Ping::new().apply(&context, json!({"x": 1})).await);
    assert!(
        refused.contains("invalid arguments for `layer7.ping`"),
        "{refused}"
    );
}
