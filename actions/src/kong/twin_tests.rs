//! The Kong client and actions against a running Kong twin (`runsheet-twin`) over
//! loopback HTTP: retries and faults, Kong's error bodies, pagination, workspaces,
//! the RBAC token, and `kong.status`, `kong.target`, `kong.wait_healthy` end to end.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use runsheet_engine::de::Spanned;
use runsheet_engine::model::{
    ChangeSettings, Environment, Gateway, KongGatewayDoc, SshSettings, TemplateText,
};
use runsheet_engine::{Action, ActionError, Change, Probe, StepContext, StepTarget};
use runsheet_twin::kong::{KongTwin, TwinConfig};
use serde_json::{Value, json};

use super::client::{KongClient, KongError, RetryPolicy};
use super::status::KongStatus;
use super::target::KongTarget;
use super::wait_healthy::KongWaitHealthy;
use crate::test_support::TestResult;
use crate::web::WebClient;

/// Retries fast enough for tests.
const QUICK: RetryPolicy = RetryPolicy {
    attempts: 3,
    first_delay: Duration::from_millis(10),
};

/// A twin with the control endpoint on.
pub(super) async fn twin() -> std::io::Result<KongTwin> {
    KongTwin::start(TwinConfig {
        control: true,
        ..TwinConfig::default()
    })
    .await
}

/// A client for `twin`'s Admin API outside any run.
pub(super) async fn client(twin: &KongTwin, dry_run: bool) -> TestResult<KongClient> {
    let context = StepContext::detached("test", dry_run);
    let web = WebClient::for_step(&context, None).await?;
    Ok(KongClient::new(web, &twin.url()).retry(QUICK))
}

/// Sends a control request to the twin (`/_twin/...`); the JSON answer.
pub(super) async fn control(
    twin: &KongTwin,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> TestResult<Value> {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", twin.url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let text = response.text().await?;
    Ok(if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    })
}

/// Writes (non-dry-run) writes the twin has counted.
pub(crate) async fn writes(twin: &KongTwin) -> TestResult<u64> {
    let counters = control(twin, reqwest::Method::GET, "/_twin/counters", None).await?;
    Ok(counters["writes"].as_u64().unwrap_or(u64::MAX))
}

/// How many times the twin saw `METHOD /path`.
pub(super) async fn count(twin: &KongTwin, request: &str) -> TestResult<u64> {
    let counters = control(twin, reqwest::Method::GET, "/_twin/counters", None).await?;
    Ok(counters["requests"][request].as_u64().unwrap_or(0))
}

/// `context` with the gateway's `request_timeout` set to `timeout`: how long a write
/// whose answer never came is looked for again.
pub(super) fn with_request_timeout(
    mut context: StepContext,
    timeout: std::time::Duration,
) -> StepContext {
    if let Some(environment) = context.environment.as_deref() {
        let mut environment = environment.clone();
        for gateway in environment.gateways.values_mut() {
            if let Gateway::Kong(doc) = gateway {
                doc.request_timeout = Some(Spanned::new(
                    runsheet_engine::model::Duration(timeout),
                    Default::default(),
                ));
            }
        }
        context.environment = Some(std::sync::Arc::new(environment));
    }
    context
}

/// A step context whose target is gateway `kong`, pointing at `twin` (with `token`).
pub(super) fn context(twin: &KongTwin, dry_run: bool, token: Option<&str>) -> StepContext {
    let doc = KongGatewayDoc {
        kind: "kong".to_owned(),
        admin_url: Some(Spanned::new(twin.url(), Default::default())),
        proxy_url: twin
            .proxy_url()
            .map(|url| Spanned::new(url, Default::default())),
        proxy_tls_url: twin
            .proxy_tls_url()
            .map(|url| Spanned::new(url, Default::default())),
        status_url: twin
            .status_url()
            .map(|url| Spanned::new(url, Default::default())),
        request_timeout: None,
        token: token.map(|token| TemplateText {
            source: token.to_owned(),
            span: Default::default(),
        }),
        token_header: Some("X-Admin-Token".to_owned()),
        workspace: None,
        tls: None,
        twin: None,
    };
    let mut gateways = IndexMap::new();
    gateways.insert(
        Spanned::new("kong".to_owned(), Default::default()),
        Gateway::Kong(doc),
    );
    let environment = Environment {
        name: Spanned::new("test".to_owned(), Default::default()),
        vars: IndexMap::new(),
        gateways,
        hosts: Vec::new(),
        unreadable: Vec::new(),
        ssh: SshSettings::default(),
        change: ChangeSettings::default(),
    };
    let mut context = StepContext::detached("step", dry_run);
    context.target = StepTarget::Gateway("kong".to_owned());
    context.environment = Some(Arc::new(environment));
    context
}

/// Seeds `core` with two targets (a and b, weight 100) into `twin`.
fn seed_upstream(twin: &KongTwin, healthchecks: bool) -> TestResult {
    let interval = if healthchecks { 5 } else { 0 };
    twin.load(&json!({
        "_format_version": "3.0",
        "upstreams": [{
            "name": "core",
            "healthchecks": {"active": {"healthy": {"interval": interval}}},
            "targets": [
                {"target": "10.0.0.1:8000", "weight": 100},
                {"target": "10.0.0.2:8000", "weight": 100}
            ]
        }]
    }))
    .map_err(|error| format!("seed: {}", error.body()))?;
    Ok(())
}

/// The weight of `target` in upstream `core`.
async fn weight(client: &KongClient, target: &str) -> TestResult<Option<u64>> {
    let targets = client.list("/upstreams/core/targets").await?;
    Ok(targets
        .iter()
        .find(|t| t["target"] == json!(target))
        .and_then(|t| t["weight"].as_u64()))
}

#[tokio::test]
async fn an_idempotent_put_is_retried_after_a_500_and_a_post_is_not() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin, false).await?;
    let fault = json!({"fail_nth_write": 1, "status": 500});
    control(
        &twin,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(fault.clone()),
    )
    .await?;
    let stored = client.put("/upstreams/core", &json!({})).await?;
    assert_eq!(stored["name"], json!("core"));
    assert_eq!(count(&twin, "PUT /upstreams/core").await?, 2);

    control(&twin, reqwest::Method::POST, "/_twin/faults", Some(fault)).await?;
    let outcome = client.post("/upstreams", &json!({"name": "edge"})).await;
    assert!(
        matches!(&outcome, Err(KongError::Api { status: 500, .. })),
        "{outcome:?}"
    );
    assert_eq!(count(&twin, "POST /upstreams").await?, 1);
    assert!(
        client.find("/upstreams/edge").await?.is_none(),
        "the failed write changed nothing"
    );
    Ok(())
}

#[tokio::test]
async fn a_get_is_retried_on_5xx_up_to_the_bound() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin, false).await?;
    control(
        &twin,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"database_unreachable": true})),
    )
    .await?;
    let outcome = client.get("/services").await;
    assert!(
        matches!(&outcome, Err(KongError::Api { status: 500, .. })),
        "{outcome:?}"
    );
    assert_eq!(count(&twin, "GET /services").await?, 3);
    control(&twin, reqwest::Method::DELETE, "/_twin/faults", None).await?;
    assert_eq!(client.get("/services").await?["data"], json!([]));
    Ok(())
}

#[tokio::test]
async fn a_get_is_retried_when_the_connection_is_refused() -> TestResult {
    let twin = twin().await?;
    let context = StepContext::detached("test", false);
    let web = WebClient::for_step(&context, None).await?;
    let patient = KongClient::new(web, &twin.url()).retry(RetryPolicy {
        attempts: 4,
        first_delay: Duration::from_millis(400),
    });
    control(
        &twin,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"refuse_connections_s": 1})),
    )
    .await?;
    // 400 + 800 ms of backoff outlasts the second of refused connections.
    let node = patient.node().await?;
    assert_eq!(node.version.to_string(), "3.9.3");
    Ok(())
}

#[tokio::test]
async fn kong_errors_carry_code_message_and_fields() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin, false).await?;
    client.post("/upstreams", &json!({"name": "core"})).await?;
    let conflict = client.post("/upstreams", &json!({"name": "core"})).await;
    match &conflict {
        Err(KongError::Api {
            status,
            code,
            fields,
            message,
            ..
        }) => {
            assert_eq!(*status, 409);
            assert_eq!(*code, Some(5));
            assert_eq!(fields.as_ref(), Some(&json!({"name": "core"})));
            assert_eq!(message, "UNIQUE violation detected on '{name=\"core\"}'");
        }
        other => return Err(format!("expected a 409, got {other:?}").into()),
    }
    let shown = conflict.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        shown,
        format!(
            "UNIQUE violation detected on '{{name=\"core\"}}' (POST {}/upstreams answered 409)",
            twin.url()
        )
    );
    let invalid = client
        .post("/upstreams", &json!({"name": "edge", "slots": 5}))
        .await;
    match invalid {
        Err(KongError::Api {
            status: 400,
            code: Some(2),
            fields: Some(fields),
            message,
            ..
        }) => {
            assert!(fields.get("slots").is_some(), "{fields}");
            assert!(
                message.starts_with("schema violation (slots: "),
                "{message}"
            );
        }
        other => return Err(format!("expected a schema violation, got {other:?}").into()),
    }
    let missing = client.get("/upstreams/nowhere").await;
    assert!(
        missing.as_ref().err().is_some_and(KongError::is_not_found),
        "{missing:?}"
    );
    Ok(())
}

#[tokio::test]
async fn list_follows_next_to_the_last_page() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin, false).await?;
    for index in 0..5 {
        client
            .post("/upstreams", &json!({"name": format!("u{index}")}))
            .await?;
    }
    let all = client.list("/upstreams?size=2").await?;
    let mut names: Vec<&str> = all.iter().filter_map(|u| u["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["u0", "u1", "u2", "u3", "u4"]);
    assert_eq!(count(&twin, "GET /upstreams").await?, 3);
    Ok(())
}

#[tokio::test]
async fn workspace_prefix_and_rbac_token_are_sent() -> TestResult {
    let twin = KongTwin::start(TwinConfig {
        admin_token: Some("s3cret".to_owned()),
        token_header: "X-Admin-Token".to_owned(),
        ..TwinConfig::with_version("3.10.0.2")
    })
    .await?;
    let context = StepContext::detached("test", false);
    let web = WebClient::for_step(&context, None).await?;
    let anonymous = KongClient::new(web.clone(), &twin.url()).retry(QUICK);
    let refused = anonymous.node().await;
    assert_eq!(refused.err().and_then(|e| e.status()), Some(401));
    let admin = KongClient::new(web, &twin.url())
        .retry(QUICK)
        .token("X-Admin-Token", "s3cret");
    let node = admin.node().await?;
    assert_eq!(
        (node.edition.as_str(), node.version.build),
        ("enterprise", 2)
    );
    admin.post("/workspaces", &json!({"name": "team"})).await?;
    let team = admin.clone().workspace("team");
    team.post("/upstreams", &json!({"name": "core"})).await?;
    assert_eq!(team.list("/upstreams").await?.len(), 1);
    assert!(
        admin.list("/upstreams").await?.is_empty(),
        "default workspace untouched"
    );
    Ok(())
}

#[tokio::test]
async fn the_client_sends_no_write_in_a_dry_run() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin, true).await?;
    let outcome = client.post("/upstreams", &json!({"name": "core"})).await;
    assert!(matches!(
        outcome,
        Err(KongError::Web(crate::web::WebError::DryRunWrite { .. }))
    ));
    assert_eq!(
        control(&twin, reqwest::Method::GET, "/_twin/counters", None).await?["writes"],
        json!(0)
    );
    Ok(())
}

#[tokio::test]
async fn status_reports_version_edition_role_database_and_readiness() -> TestResult {
    let mut twin = twin().await?;
    twin.serve_status(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
        .await?;
    let applied = KongStatus::new()
        .apply(&context(&twin, false, None), json!({}))
        .await?;
    assert_eq!(
        Value::Object(applied.outputs),
        json!({"version": "3.9.3", "edition": "community", "role": "traditional",
               "database_reachable": true, "ready": true})
    );
    control(
        &twin,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"database_unreachable": true})),
    )
    .await?;
    let applied = KongStatus::new()
        .apply(&context(&twin, true, None), json!({}))
        .await?;
    assert_eq!(applied.outputs["database_reachable"], json!(false));
    assert_eq!(applied.outputs["ready"], json!(false));
    Ok(())
}

#[tokio::test]
async fn status_without_a_gateway_or_with_the_wrong_token_fails_clearly() -> TestResult {
    let twin = KongTwin::start(TwinConfig {
        admin_token: Some("s3cret".to_owned()),
        token_header: "X-Admin-Token".to_owned(),
        ..TwinConfig::default()
    })
    .await?;
    let detached = StepContext::detached("status", false);
    let outcome = KongStatus::new().apply(&detached, json!({})).await;
    assert!(
        outcome
            .err()
            .is_some_and(|e| e.to_string().contains("needs a gateway"))
    );
    let outcome = KongStatus::new()
        .apply(&context(&twin, false, Some("wrong")), json!({}))
        .await;
    let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains(&format!("(GET {}/ answered 401)", twin.url())),
        "{message}"
    );
    let applied = KongStatus::new()
        .apply(&context(&twin, false, Some("s3cret")), json!({}))
        .await?;
    // No Status API URL: readiness cannot be read.
    assert_eq!(applied.outputs["ready"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn target_drains_plans_and_undoes_to_the_previous_weight() -> TestResult {
    let twin = twin().await?;
    seed_upstream(&twin, false)?;
    let reader = client(&twin, false).await?;
    let action = KongTarget::new();
    let drain = json!({"upstream": "core", "target": "10.0.0.1", "weight": 0});

    let plan = action
        .plan(&context(&twin, true, None), drain.clone())
        .await?;
    assert_eq!(
        plan.summary,
        "target 10.0.0.1:8000 of upstream core: weight 100 -> 0"
    );
    assert_eq!(plan.changes, Some(true));
    assert_eq!(
        control(&twin, reqwest::Method::GET, "/_twin/counters", None).await?["writes"],
        json!(0)
    );
    let refused = action
        .apply(&context(&twin, true, None), drain.clone())
        .await;
    assert!(
        matches!(refused, Err(ActionError::DryRunWrite { .. })),
        "{refused:?}"
    );
    assert_eq!(weight(&reader, "10.0.0.1:8000").await?, Some(100));

    let live = context(&twin, false, None);
    let applied = action.apply(&live, drain.clone()).await?;
    assert_eq!(applied.outputs["weight"], json!(0));
    assert_eq!(applied.outputs["previous_weight"], json!(100));
    assert_eq!(weight(&reader, "10.0.0.1:8000").await?, Some(0));
    assert_eq!(
        action.plan(&live, drain.clone()).await?,
        Change::none("target 10.0.0.1:8000 of upstream core: weight 0, no change")
    );
    assert!(matches!(
        action.probe(&live, drain.clone()).await?,
        Probe::Done(_)
    ));

    let undo = applied.undo.ok_or("no undo record")?;
    action.undo(&live, drain.clone(), undo).await?;
    assert_eq!(weight(&reader, "10.0.0.1:8000").await?, Some(100));
    assert_eq!(weight(&reader, "10.0.0.2:8000").await?, Some(100));
    assert!(matches!(action.probe(&live, drain).await?, Probe::NotDone));
    Ok(())
}

#[tokio::test]
async fn a_drain_run_again_after_a_crash_keeps_the_weight_its_first_attempt_replaced() -> TestResult {
    let twin = twin().await?;
    seed_upstream(&twin, false)?;
    let reader = client(&twin, false).await?;
    let action = KongTarget::new();
    let drain = json!({"upstream": "core", "target": "10.0.0.1", "weight": 0});
    // The first attempt keeps the weight it replaces before it writes...
    let (first, kept) = crate::test_support::keeping(context(&twin, false, None), None);
    action.apply(&first, drain.clone()).await?;
    let kept = kept.lock().map_err(|_| "poisoned")?.clone();
    assert_eq!(kept, [json!({"weight": 100})]);
    assert_eq!(weight(&reader, "10.0.0.1:8000").await?, Some(0));
    // ...and, killed before its end record, is run again on resume: the drained 0 is
    // not the weight to restore.
    let (again, _) = crate::test_support::keeping(context(&twin, false, None), kept.first().cloned());
    let applied = action.apply(&again, drain.clone()).await?;
    assert_eq!(applied.outputs["previous_weight"], json!(100));
    action
        .undo(&again, drain, applied.undo.ok_or("no undo record")?)
        .await?;
    assert_eq!(weight(&reader, "10.0.0.1:8000").await?, Some(100));
    Ok(())
}

#[tokio::test]
async fn target_created_by_the_step_is_deleted_by_its_undo() -> TestResult {
    let twin = twin().await?;
    seed_upstream(&twin, false)?;
    let reader = client(&twin, false).await?;
    let action = KongTarget::new();
    let live = context(&twin, false, None);
    let add = json!({"upstream": "core", "target": "10.0.0.3:9000", "weight": 5});
    let plan = action.plan(&live, add.clone()).await?;
    assert_eq!(
        plan.summary,
        "create target 10.0.0.3:9000 in upstream core with weight 5"
    );
    let applied = action.apply(&live, add.clone()).await?;
    assert_eq!(applied.outputs["previous_weight"], Value::Null);
    assert_eq!(weight(&reader, "10.0.0.3:9000").await?, Some(5));
    action
        .undo(&live, add, applied.undo.ok_or("no undo record")?)
        .await?;
    assert_eq!(weight(&reader, "10.0.0.3:9000").await?, None);
    let missing = action
        .apply(
            &live,
            json!({"upstream": "nowhere", "target": "a:1", "weight": 1}),
        )
        .await;
    let message = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("upstream `nowhere` not found"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn wait_healthy_waits_for_weighted_targets_only() -> TestResult {
    let twin = twin().await?;
    seed_upstream(&twin, true)?;
    let admin = client(&twin, false).await?;
    let action = KongWaitHealthy::new();
    let live = context(&twin, false, None);
    let arguments = json!({"upstream": "core", "timeout": "1s"});
    let applied = action.apply(&live, arguments.clone()).await?;
    assert_eq!(
        applied.outputs["health"],
        json!({"10.0.0.1:8000": "HEALTHY", "10.0.0.2:8000": "HEALTHY"})
    );
    admin
        .put(
            "/upstreams/core/targets/10.0.0.2:8000/unhealthy",
            &json!({}),
        )
        .await?;
    let outcome = action.apply(&live, arguments.clone()).await;
    let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        message,
        "upstream `core` not healthy within 1s: 10.0.0.2:8000 (UNHEALTHY)"
    );
    // Drained, the unhealthy target is no longer waited for.
    admin
        .patch(
            "/upstreams/core/targets/10.0.0.2:8000",
            &json!({"weight": 0}),
        )
        .await?;
    action.apply(&live, arguments).await?;
    let one = json!({"upstream": "core", "target": "10.0.0.1", "timeout": "1s"});
    action.apply(&live, one).await?;
    Ok(())
}
