//! The gateway node stand-in (`runsheet twin node`): version from its state directory,
//! "upgrade" by rewriting the file and restarting, PID file, draining, echo, graceful stop.
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use runsheet_twin::node::{self, NodeHandle};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A fresh state directory under the system temp dir (removed by the caller).
fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("twin-node-{}", uuid::Uuid::new_v4()))
}

/// Starts a node on a free loopback port.
async fn start(state_dir: &Path, version: &str) -> NodeHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    node::serve(listener, state_dir, version).await.unwrap()
}

/// Status and JSON body of a GET.
async fn get(url: String) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_version_comes_from_the_state_dir_and_a_rewrite_plus_restart_upgrades() {
    let dir = state_dir();
    let node = start(&dir, "3.9.1").await;
    assert_eq!(
        std::fs::read_to_string(dir.join("version")).unwrap().trim(),
        "3.9.1"
    );
    let (status, info) = get(format!("{}/", node.url())).await;
    assert_eq!(status, 200);
    assert_eq!(info["version"], "3.9.1");
    assert_eq!(info["configuration"]["role"], "data_plane");
    assert_eq!(info["configuration"]["database"], "off");
    let node_id = info["node_id"].as_str().unwrap().to_owned();
    assert!(!info["hostname"].as_str().unwrap().is_empty());
    let address = node.address();
    node.stop().await.unwrap();

    // The upgrade: a new version in the file, then a restart on the same address. The
    // `version` argument only seeds a missing file.
    std::fs::write(dir.join("version"), "3.10.0\n").unwrap();
    let listener = TcpListener::bind(address).await.unwrap();
    let node = node::serve(listener, &dir, "3.9.1").await.unwrap();
    assert_eq!(node.version(), "3.10.0");
    let (_, info) = get(format!("{}/", node.url())).await;
    assert_eq!(info["version"], "3.10.0");
    assert_eq!(
        info["node_id"],
        node_id.as_str(),
        "the node id survives restarts"
    );
    node.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_pid_file_exists_while_running_and_is_removed_on_graceful_stop() {
    let dir = state_dir();
    let node = start(&dir, "3.9.1").await;
    let pid = std::fs::read_to_string(dir.join("node.pid")).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
    node.stop().await.unwrap();
    assert!(!dir.join("node.pid").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_draining_node_reports_503_until_restarted() {
    let dir = state_dir();
    let node = start(&dir, "3.9.1").await;
    let ready = format!("{}/status/ready", node.url());
    assert_eq!(get(ready.clone()).await, (200, json!({"message": "ready"})));
    let drained = reqwest::Client::new()
        .post(&ready)
        .json(&json!({"status": "draining"}))
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 204);
    assert_eq!(
        get(ready.clone()).await,
        (503, json!({"message": "draining"}))
    );
    // Traffic is still served while draining.
    assert_eq!(get(format!("{}/orders", node.url())).await.0, 200);
    let address = node.address();
    node.stop().await.unwrap();

    let node = node::serve(TcpListener::bind(address).await.unwrap(), &dir, "3.9.1")
        .await
        .unwrap();
    assert_eq!(get(ready).await, (200, json!({"message": "ready"})));
    node.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn status_has_a_data_plane_shape() {
    let dir = state_dir();
    let node = start(&dir, "3.9.1").await;
    let (status, body) = get(format!("{}/status", node.url())).await;
    assert_eq!(status, 200);
    assert!(body.get("database").is_none());
    let hash = body["configuration_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 32);
    assert!(body["server"]["total_requests"].as_u64().unwrap() >= 1);
    node.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn other_requests_are_echoed_with_the_node_that_answered() {
    let dir = state_dir();
    let node = start(&dir, "3.9.1").await;
    let response = reqwest::Client::new()
        .post(format!("{}/orders/7?expand=lines&x=1", node.url()))
        .header("X-Request-Id", "abc")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["via"], "1.1 kong/3.9.1");
    assert_eq!(response.headers()["server"], "kong/3.9.1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/orders/7");
    assert_eq!(body["query"], "expand=lines&x=1");
    assert_eq!(body["headers"]["x-request-id"], "abc");
    assert_eq!(body["body_size"], 5);
    assert_eq!(body["node"]["version"], "3.9.1");
    assert_eq!(body["node"]["listen"], node.address().to_string());
    node.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_finishes_in_flight_requests_then_refuses_connections() {
    let dir = state_dir();
    let node = start(&dir, "3.9.1").await;
    let url = format!("{}/slow", node.url());
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .header(node::DELAY_HEADER, "400")
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let address = node.address();
    node.stop().await.unwrap();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let error = reqwest::get(format!("http://{address}/"))
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_empty_version_file_is_an_error() {
    let dir = state_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("version"), "\n").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = node::serve(listener, &dir, "3.9.1").await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(!dir.join("node.pid").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_until_sigterm_then_stops_gracefully() {
    let dir = state_dir();
    // A free port for `run` to bind.
    let address = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let running = tokio::spawn(node::run(node::NodeConfig {
        listen: address,
        state_dir: dir.clone(),
        version: "3.9.1".to_owned(),
    }));
    let url = format!("http://{address}/");
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(response) = reqwest::get(&url).await {
            answered = Some(response.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answered.unwrap()["version"], "3.9.1");
    assert!(dir.join("node.pid").exists());
    // The handler is installed before the node answers, so this does not kill the tests.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!dir.join("node.pid").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
