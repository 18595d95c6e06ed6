//! The `/_twin` control endpoint, injected faults and the Status API listener, over real HTTP
//! (DESIGN "The twin and the lab"; reference §9.2, §9.3, §17 "Fault injection").
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use std::time::{Duration, Instant};

use runsheet_twin::kong::TwinConfig;
use serde_json::{Value, json};
use tokio::net::TcpListener;

mod pki;
mod support;
use pki::Authority;
use runsheet_twin::kong::TlsSettings;
use support::{Admin, Reply};

/// A twin with the control endpoint.
async fn controlled() -> Admin {
    Admin::start_with(TwinConfig {
        control: true,
        ..TwinConfig::with_version("3.9.1")
    })
    .await
}

/// A DB-less twin with the control endpoint.
async fn controlled_db_less() -> Admin {
    Admin::start_with(TwinConfig {
        control: true,
        db_less: true,
        ..TwinConfig::with_version("3.9.1")
    })
    .await
}

/// Injects `fault`, asserting 201.
async fn inject(admin: &Admin, fault: Value) -> Value {
    let reply = admin.post("/_twin/faults", fault).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

/// Sends a JSON request with the raw result, so that connection errors can be seen.
async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> reqwest::Result<reqwest::Response> {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await
}

/// Status and parsed body of a GET on any URL.
async fn get_url(url: &str) -> Reply {
    Reply::read(reqwest::get(url).await.unwrap()).await
}

/// The names of every service, sorted.
async fn service_names(admin: &Admin) -> Vec<String> {
    let reply = admin.get("/services").await;
    assert_eq!(reply.status, 200);
    let mut names: Vec<String> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|service| service["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// A service body named `name`.
fn service(name: &str) -> Value {
    json!({"name": name, "url": "http://billing.internal:8080"})
}

#[tokio::test]
async fn without_control_twin_paths_are_the_plain_404() {
    let admin = Admin::start().await;
    for path in ["/_twin/counters", "/_twin/faults", "/_twin"] {
        let reply = admin.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.body, json!({"message": "Not found"}));
    }
    let reply = admin
        .post("/_twin/faults", json!({"fail_nth_write": 1}))
        .await;
    assert_eq!(reply.status, 404);
    // The fault was not injected: the next write succeeds.
    admin.service(service("billing")).await;
}

#[tokio::test]
async fn counters_count_requests_by_method_and_path_and_writes() {
    let admin = controlled().await;
    admin.get("/services").await;
    admin.get("/services?size=1").await;
    admin.service(service("billing")).await;
    admin
        .patch("/services/billing", json!({"retries": 3}))
        .await;
    admin.delete("/services/absent").await;
    admin.post("/status", json!({})).await;
    let reply = admin.get("/_twin/counters").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({
            "requests": {
                "DELETE /services/absent": 1,
                "GET /services": 2,
                "PATCH /services/billing": 1,
                "POST /services": 1,
                "POST /status": 1,
            },
            "writes": 3,
        })
    );
}

#[tokio::test]
async fn reset_zeroes_the_counters_and_with_state_empties_the_store() {
    let admin = controlled().await;
    admin.service(service("billing")).await;
    let reply = admin.post("/_twin/reset", json!({})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"requests": {}, "writes": 0}));
    assert_eq!(admin.get("/_twin/counters").await.body["writes"], 0);
    assert_eq!(service_names(&admin).await, ["billing"]);

    let reply = admin.post("/_twin/reset?state=true", json!({})).await;
    assert_eq!(reply.status, 200);
    assert!(service_names(&admin).await.is_empty());
}

#[tokio::test]
async fn snapshot_lists_every_collection() {
    let admin = controlled().await;
    let billing = admin.service(service("billing")).await;
    let route = admin
        .post(
            "/services/billing/routes",
            json!({"name": "billing-api", "paths": ["/billing"]}),
        )
        .await;
    assert_eq!(route.status, 201);
    let reply = admin.get("/_twin/snapshot").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["services"], json!([billing]));
    assert_eq!(reply.body["routes"], json!([route.body]));
    assert_eq!(reply.body["upstreams"], json!([]));
    assert_eq!(reply.body["certificates"], json!([]));
}

#[tokio::test]
async fn the_nth_write_fails_without_changing_anything_and_the_next_succeeds() {
    let admin = controlled().await;
    let body = inject(&admin, json!({"fail_nth_write": 2, "status": 500})).await;
    assert_eq!(
        body,
        json!({"faults": [{"fail_nth_write": 2, "status": 500}]})
    );
    admin.service(service("first")).await;
    // What is left: the next write.
    assert_eq!(
        admin.get("/_twin/faults").await.body,
        json!({"faults": [{"fail_nth_write": 1, "status": 500}]})
    );
    // Reads do not count.
    assert_eq!(admin.get("/services/first").await.status, 200);
    let reply = admin.post("/services", service("second")).await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.body,
        json!({"message": "An unexpected error occurred"})
    );
    assert_eq!(admin.get("/services/second").await.status, 404);
    assert_eq!(admin.get("/_twin/faults").await.body, json!({"faults": []}));
    admin.service(service("second")).await;
    assert_eq!(service_names(&admin).await, ["first", "second"]);
    assert_eq!(admin.get("/_twin/counters").await.body["writes"], 3);
}

#[tokio::test]
async fn a_failed_delete_keeps_the_entity() {
    let admin = controlled().await;
    admin.service(service("billing")).await;
    inject(&admin, json!({"fail_nth_write": 1, "status": 503})).await;
    let reply = admin.delete("/services/billing").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, json!({"message": "Service Unavailable"}));
    assert_eq!(service_names(&admin).await, ["billing"]);
}

#[tokio::test]
async fn a_write_dropped_before_changes_nothing_and_the_client_sees_a_connection_error() {
    let admin = controlled().await;
    inject(&admin, json!({"drop_nth_write": 1})).await;
    let result = send(
        &admin.http,
        reqwest::Method::POST,
        format!("{}/services", admin.twin.url()),
        Some(service("billing")),
    )
    .await;
    let error = result.unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert!(service_names(&admin).await.is_empty());
    // The fault is spent: the retry succeeds.
    admin.service(service("billing")).await;
}

#[tokio::test]
async fn a_write_dropped_after_is_applied_but_never_answered() {
    let admin = controlled().await;
    inject(&admin, json!({"drop_nth_write": 1, "when": "after"})).await;
    let result = send(
        &admin.http,
        reqwest::Method::PUT,
        format!("{}/services/billing", admin.twin.url()),
        Some(json!({"url": "http://billing.internal:8080"})),
    )
    .await;
    let error = result.unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert_eq!(service_names(&admin).await, ["billing"]);
}

/// Which of `count` PUTs fail with 500 under the currently injected fault.
async fn failure_pattern(admin: &Admin, round: usize, count: usize) -> Vec<bool> {
    let mut pattern = Vec::new();
    for index in 0..count {
        let reply = admin
            .put(
                &format!("/services/round{round}-{index}"),
                json!({"url": "http://billing.internal:8080"}),
            )
            .await;
        assert!(
            reply.status == 200 || reply.status == 500,
            "{}",
            reply.status
        );
        pattern.push(reply.status == 500);
    }
    pattern
}

#[tokio::test]
async fn a_seeded_probability_gives_the_same_failures_each_time() {
    let admin = controlled().await;
    let fault = json!({"fail_nth_write": 1, "probability": 0.5, "seed": 7, "status": 500});
    inject(&admin, fault.clone()).await;
    let first = failure_pattern(&admin, 1, 24).await;
    assert_eq!(admin.delete("/_twin/faults").await.status, 204);
    inject(&admin, fault).await;
    let second = failure_pattern(&admin, 2, 24).await;
    assert_eq!(first, second);
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
    // Failed writes changed nothing.
    let created = service_names(&admin).await.len();
    let succeeded = first
        .iter()
        .chain(&second)
        .filter(|failed| !**failed)
        .count();
    assert_eq!(created, succeeded);
}

#[tokio::test]
async fn latency_delays_requests() {
    let admin = controlled().await;
    inject(&admin, json!({"latency_ms": 300, "probability": 1.0})).await;
    let started = Instant::now();
    assert_eq!(admin.get("/services").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn latency_can_be_scoped_to_writes_under_a_path() {
    let admin = controlled().await;
    let body = inject(
        &admin,
        json!({"latency_ms": 300, "writes_only": true, "path_prefix": "/services"}),
    )
    .await;
    assert_eq!(
        body["faults"],
        json!([{"latency_ms": 300, "probability": 1.0, "writes_only": true, "path_prefix": "/services"}])
    );
    let started = Instant::now();
    admin.service(service("billing")).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_fail_to_connect_then_the_listener_comes_back() {
    let admin = controlled().await;
    let body = inject(&admin, json!({"refuse_connections_s": 1})).await;
    let left = body["faults"][0]["refuse_connections_s"].as_f64().unwrap();
    assert!(left > 0.0 && left <= 1.0, "{left}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("{}/services", admin.twin.url());
    let error = send(&fresh, reqwest::Method::GET, url.clone(), None)
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match send(&fresh, reqwest::Method::GET, url.clone(), None).await {
            Ok(response) => {
                assert_eq!(response.status(), 200);
                break;
            }
            Err(error) => {
                assert!(Instant::now() < deadline, "still refused: {error:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn an_unreachable_database_shows_on_status_ready_and_entity_endpoints() {
    let mut admin = controlled().await;
    admin
        .twin
        .serve_status(TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let status_url = admin.twin.status_url().unwrap();
    admin.service(service("billing")).await;
    inject(&admin, json!({"database_unreachable": true})).await;

    assert_eq!(
        admin.get("/status").await.body["database"]["reachable"],
        false
    );
    let status = get_url(&format!("{status_url}/status")).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["database"], json!({"reachable": false}));
    let ready = get_url(&format!("{status_url}/status/ready")).await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.body,
        json!({"message": "failed to connect to database"})
    );
    let unexpected = json!({"message": "An unexpected error occurred"});
    for reply in [
        admin.get("/services").await,
        admin.get("/services/billing").await,
        admin.post("/services", service("other")).await,
    ] {
        assert_eq!(reply.status, 500);
        assert_eq!(reply.body, unexpected);
    }
    assert_eq!(admin.get("/").await.status, 200);

    assert_eq!(admin.delete("/_twin/faults").await.status, 204);
    assert_eq!(
        admin.get("/status").await.body["database"]["reachable"],
        true
    );
    let ready = get_url(&format!("{status_url}/status/ready")).await;
    assert_eq!(ready.status, 200);
    assert_eq!(service_names(&admin).await, ["billing"]);
}

/// POSTs a declarative configuration to `/config`; the raw response.
async fn post_config(admin: &Admin) -> reqwest::Response {
    admin
        .http
        .post(format!("{}/config", admin.twin.url()))
        .json(&json!({"_format_version": "3.0", "services": [service("billing")]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_busy_node_refuses_config_with_429_and_retry_after() {
    let admin = controlled_db_less().await;
    inject(&admin, json!({"config_busy": true})).await;
    let response = post_config(&admin).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"message": "Currently loading previous configuration"})
    );
    assert!(service_names(&admin).await.is_empty());
    inject(&admin, json!({"config_busy": false})).await;
    assert_eq!(post_config(&admin).await.status(), 201);
    assert_eq!(service_names(&admin).await, ["billing"]);
}

#[tokio::test]
async fn bad_fault_bodies_answer_400_and_inject_nothing() {
    let admin = controlled().await;
    for body in [
        json!({"fail_nth_write": 0}),
        json!({"fail_nth_write": 1, "latency_ms": 5}),
        json!({"drop_nth_write": 1, "when": "sometime"}),
        json!({"latency_ms": 5, "probability": 1.5}),
        json!({"explode": true}),
    ] {
        let reply = admin.post("/_twin/faults", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}");
        assert!(reply.body["message"].is_string(), "{}", reply.body);
    }
    assert_eq!(admin.get("/_twin/faults").await.body, json!({"faults": []}));
    assert_eq!(admin.get("/_twin/nothing").await.status, 404);
    assert_eq!(admin.put("/_twin/counters", json!({})).await.status, 405);
}

#[tokio::test]
async fn the_control_endpoint_requires_the_admin_token_when_one_is_set() {
    let admin = Admin::start_with(TwinConfig {
        control: true,
        admin_token: Some("s3cret".to_owned()),
        ..TwinConfig::with_version("3.9.1")
    })
    .await;
    assert_eq!(admin.get("/_twin/counters").await.status, 401);
    let response = admin
        .http
        .get(format!("{}/_twin/counters", admin.twin.url()))
        .header("Kong-Admin-Token", "s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_status_listener_serves_status_and_readiness_with_draining() {
    let mut admin = Admin::start().await;
    assert_eq!(admin.twin.status_url(), None);
    let address = admin
        .twin
        .serve_status(TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let status_url = admin.twin.status_url().unwrap();
    assert_eq!(status_url, format!("http://{address}"));

    let status = get_url(&format!("{status_url}/status")).await;
    assert_eq!(status.status, 200);
    let admin_status = admin.get("/status").await.body;
    let keys = |body: &Value| {
        body.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&status.body), keys(&admin_status));
    assert_eq!(status.body["database"], json!({"reachable": true}));

    let ready = get_url(&format!("{status_url}/status/ready")).await;
    assert_eq!(
        (ready.status, ready.body),
        (200, json!({"message": "ready"}))
    );
    // Readiness exists on the Status API only.
    assert_eq!(admin.get("/status/ready").await.status, 404);
    assert_eq!(get_url(&format!("{status_url}/services")).await.status, 404);

    let client = reqwest::Client::new();
    let drain = client
        .post(format!("{status_url}/status/ready"))
        .json(&json!({"status": "draining"}))
        .send()
        .await
        .unwrap();
    assert_eq!(drain.status(), 204);
    let ready = get_url(&format!("{status_url}/status/ready")).await;
    assert_eq!(
        (ready.status, ready.body),
        (503, json!({"message": "draining"}))
    );
    // Draining takes the node out of the load balancer; the Admin API still answers.
    assert_eq!(admin.get("/services").await.status, 200);
}

#[tokio::test]
async fn a_db_less_status_listener_is_not_ready_until_a_configuration_is_loaded() {
    let mut admin = controlled_db_less().await;
    admin
        .twin
        .serve_status(TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let status_url = admin.twin.status_url().unwrap();
    let ready = get_url(&format!("{status_url}/status/ready")).await;
    assert_eq!(
        (ready.status, ready.body),
        (
            503,
            json!({"message": "no configuration available (empty configuration present)"})
        )
    );
    let status = get_url(&format!("{status_url}/status")).await.body;
    assert_eq!(
        status["configuration_hash"],
        "00000000000000000000000000000000"
    );
    assert!(status.get("database").is_none());

    assert_eq!(post_config(&admin).await.status(), 201);
    let ready = get_url(&format!("{status_url}/status/ready")).await;
    assert_eq!(ready.status, 200);
    let status = get_url(&format!("{status_url}/status")).await.body;
    assert_ne!(
        status["configuration_hash"],
        "00000000000000000000000000000000"
    );
}

#[tokio::test]
async fn the_tls_admin_listener_serves_control_and_drops_connections_too() {
    let mut admin = controlled().await;
    let authority = Authority::new("Admin CA");
    let server = authority.issue(&["admin.test"]);
    let settings = TlsSettings::from_pem(&server.cert, &server.key).unwrap();
    let address = admin
        .twin
        .serve_admin_tls(TcpListener::bind("127.0.0.1:0").await.unwrap(), settings)
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(authority.pair.cert.as_bytes()).unwrap(),
        )
        .resolve("admin.test", address)
        .build()
        .unwrap();
    let base = format!("https://admin.test:{}", address.port());
    let injected = send(
        &client,
        reqwest::Method::POST,
        format!("{base}/_twin/faults"),
        Some(json!({"drop_nth_write": 1})),
    )
    .await
    .unwrap();
    assert_eq!(injected.status(), 201);
    let error = send(
        &client,
        reqwest::Method::POST,
        format!("{base}/services"),
        Some(service("billing")),
    )
    .await
    .unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert!(service_names(&admin).await.is_empty());
    let counters = admin.get("/_twin/counters").await.body;
    assert_eq!(counters["requests"]["POST /services"], 1);
}
