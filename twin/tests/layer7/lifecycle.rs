//! `/ssg/ping`, the node lifecycle, faults and counters over HTTP.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Gateway, TestResult, cluster_property};

/// `GET /ssg/ping`: status and body, or `None` when the connection fails.
async fn ping(gateway: &Gateway) -> Option<(u16, String)> {
    let response = gateway
        .http
        .get(format!("{}/ssg/ping", gateway.twin.url()))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test]
async fn ping_answers_ok_and_can_be_made_to_fail_or_be_slow() -> TestResult {
    let gateway = Gateway::start().await?;
    let (status, body) = ping(&gateway).await.ok_or("no answer")?;
    assert_eq!(status, 200);
    assert!(body.contains("OK"), "{body}");
    let set = gateway
        .control("/_twin/faults", json!({"ping_failing": true}))
        .await?;
    assert_eq!(set.status, 201, "{}", set.text);
    let (status, body) = ping(&gateway).await.ok_or("no answer")?;
    assert_eq!(status, 503);
    assert!(
        body.contains("The server is not in an operational state"),
        "{body}"
    );
    gateway
        .control("/_twin/faults", json!({"ping_delay_ms": 300}))
        .await?;
    let started = Instant::now();
    ping(&gateway).await.ok_or("no answer")?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let cleared = gateway
        .http
        .delete(format!("{}/_twin/faults", gateway.twin.url()))
        .basic_auth("admin", Some("password"))
        .send()
        .await?;
    assert_eq!(cleared.status(), 204);
    assert_eq!(ping(&gateway).await.map(|answer| answer.0), Some(200));
    let refused = gateway
        .control("/_twin/faults", json!({"database_unreachable": true}))
        .await?;
    assert_eq!(refused.status, 400);
    Ok(())
}

#[tokio::test]
async fn a_restart_refuses_then_starts_then_runs_the_new_version() -> TestResult {
    let gateway = Gateway::start().await?;
    let before = gateway.control_get("/_twin/node").await?;
    assert_eq!(before["productVersion"]["formalString"], "11.1.2");
    assert_eq!(before["status"], "running");
    gateway
        .create("clusterProperties", cluster_property("kept", "1"))
        .await?;
    let restart = gateway
        .control(
            "/_twin/node",
            json!({
                "action": "restart", "down_ms": 400, "starting_ms": 400, "version": "11.1.3",
                "patches": [{"patchId": "CR01", "latest": true}],
            }),
        )
        .await?;
    assert_eq!(restart.status, 200, "{}", restart.text);
    assert!(
        ping(&gateway).await.is_none(),
        "connections are refused while down"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen_starting = false;
    loop {
        match ping(&gateway).await {
            Some((503, _)) => {
                seen_starting = true;
                let management = gateway.get("clusterProperties").await?;
                assert_eq!(management.status, 503, "management waits too");
            }
            Some((200, _)) => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "the node never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_starting, "the node went through starting");
    let after = gateway.control_get("/_twin/node").await?;
    assert_eq!(after["productVersion"]["formalString"], "11.1.3");
    assert_eq!(after["patches"][0]["patchId"], "CR01");
    assert_eq!(after["patches"][0]["status"], "INSTALLED");
    assert!(after["bootTime"].as_i64() > before["bootTime"].as_i64());
    let kept = gateway.get("clusterProperties?name=kept").await?;
    assert_eq!(
        kept.xml.find_all("Item").count(),
        1,
        "entities survive a restart"
    );
    assert_eq!(
        gateway.twin.node().info().product_version.formal_string,
        "11.1.3"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_or_dropped_write_changes_nothing() -> TestResult {
    let gateway = Gateway::start().await?;
    let failing = gateway
        .control("/_twin/faults", json!({"fail_nth_write": 1, "status": 503}))
        .await?;
    assert_eq!(failing.status, 201, "{}", failing.text);
    // Reads are not writes: the fault waits for the write.
    assert_eq!(gateway.get("clusterProperties").await?.status, 200);
    let refused = gateway
        .post("clusterProperties", cluster_property("a", "1"))
        .await?;
    assert_eq!(refused.status, 503);
    assert_eq!(
        gateway
            .get("clusterProperties?name=a")
            .await?
            .xml
            .find_all("Item")
            .count(),
        0
    );
    gateway
        .control("/_twin/faults", json!({"drop_nth_write": 1}))
        .await?;
    let dropped = gateway
        .http
        .post(format!("{}/clusterProperties", gateway.restman()))
        .basic_auth("admin", Some("password"))
        .body(cluster_property("a", "1"))
        .send()
        .await;
    assert!(dropped.is_err(), "the connection closes without an answer");
    assert_eq!(
        gateway
            .get("clusterProperties?name=a")
            .await?
            .xml
            .find_all("Item")
            .count(),
        0
    );
    assert_eq!(gateway.writes().await?, 0);
    gateway
        .create("clusterProperties", cluster_property("a", "1"))
        .await?;
    assert_eq!(gateway.writes().await?, 1);
    Ok(())
}

#[tokio::test]
async fn counters_count_requests_by_path_and_committed_writes() -> TestResult {
    let gateway = Gateway::start().await?;
    gateway.get("clusterProperties").await?;
    gateway.get("clusterProperties").await?;
    gateway
        .create("clusterProperties", cluster_property("a", "1"))
        .await?;
    // A refused write commits nothing.
    gateway
        .post("clusterProperties", cluster_property("a", "1"))
        .await?;
    let counters = gateway.control_get("/_twin/counters").await?;
    assert_eq!(
        counters["requests"]["GET /restman/1.0/clusterProperties"],
        2
    );
    assert_eq!(
        counters["requests"]["POST /restman/1.0/clusterProperties"],
        2
    );
    assert_eq!(counters["writes"], 1);
    let reset = gateway.control("/_twin/reset", json!({})).await?;
    assert_eq!(reset.status, 200);
    assert_eq!(gateway.writes().await?, 0);
    let refusal = gateway
        .control("/_twin/faults", json!({"refuse_connections_s": 0.3}))
        .await?;
    assert_eq!(refusal.status, 201);
    assert!(ping(&gateway).await.is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while ping(&gateway).await.is_none() {
        assert!(Instant::now() < deadline, "the listener never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
