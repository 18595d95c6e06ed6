//! `layer7.service` against a real Layer7 twin over loopback HTTP: plan, apply,
//! idempotence, undo and probe, proved by the twin's published-service traffic;
//! not found, ambiguity, 401 and a stale version.

use std::time::Duration;

use runsheet_engine::{Action, Probe};
use runsheet_twin::layer7::Layer7Twin;
use runsheet_twin::layer7::store::{RevisionOptions, Service as StoredService};
use serde_json::{Value, json};

use super::Layer7Service;
use crate::layer7::gateway::Layer7Gateway;
use crate::layer7::restman::Service;
use crate::layer7::twin_support::{context, context_with, control, twin, writes};
use crate::test_support::TestResult;

/// The first seeded service's goid.
const ORDERS: &str = "a1000000000000000000000000000001";

/// The policy of a seeded service: answers `body` (as Base64ResponseBody).
fn policy(body: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<wsp:Policy xmlns:L7p="http://www.layer7tech.com/ws/policy" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy">
    <wsp:All wsp:Usage="Required">
        <L7p:HardcodedResponse>
            <L7p:Base64ResponseBody stringValue="{encoded}"/>
            <L7p:ResponseContentType stringValue="text/plain"/>
        </L7p:HardcodedResponse>
    </wsp:All>
</wsp:Policy>"#
    )
}

/// A bundle item of an enabled service `name` at `path` (verbs GET) answering `body`.
fn service_item(id: &str, name: &str, path: &str, body: &str) -> String {
    let escaped = policy(body)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    format!(
        r#"<l7:Item><l7:Name>{name}</l7:Name><l7:Id>{id}</l7:Id><l7:Type>SERVICE</l7:Type><l7:Resource>
<l7:Service id="{id}" version="0"><l7:ServiceDetail folderId="0000000000000000ffffffffffffec76" id="{id}" version="0">
<l7:Name>{name}</l7:Name><l7:Enabled>true</l7:Enabled>
<l7:ServiceMappings><l7:HttpMapping><l7:UrlPattern>{path}</l7:UrlPattern><l7:Verbs><l7:Verb>GET</l7:Verb></l7:Verbs></l7:HttpMapping></l7:ServiceMappings>
</l7:ServiceDetail>
<l7:Resources><l7:ResourceSet tag="policy"><l7:Resource type="policy">{escaped}</l7:Resource></l7:ResourceSet></l7:Resources>
</l7:Service></l7:Resource></l7:Item>"#
    )
}

/// Seeds the twin with these bundle items.
fn seed(twin: &Layer7Twin, items: &[String]) -> TestResult {
    let bundle = format!(
        r#"<l7:Bundle xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:References>{}</l7:References></l7:Bundle>"#,
        items.concat()
    );
    twin.seed_bundle(&bundle)?;
    Ok(())
}

/// A twin with service `orders` at `/orders` answering `orders ok`.
async fn twin_with_orders() -> TestResult<Layer7Twin> {
    let twin = twin().await?;
    seed(
        &twin,
        &[service_item(ORDERS, "orders", "/orders", "orders ok")],
    )?;
    Ok(twin)
}

/// What a GET of `path` on the twin's listener answers: status and body.
async fn traffic(twin: &Layer7Twin, path: &str) -> TestResult<(u16, String)> {
    let response = reqwest::get(format!("{}{path}", twin.url())).await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// The service as the gateway has it now.
async fn read(twin: &Layer7Twin, id: &str) -> TestResult<Service> {
    let gateway = Layer7Gateway::for_step(&context(twin, true)).await?;
    Ok(gateway.restman.get::<Service>(id).await?)
}

fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

#[tokio::test]
async fn disabling_stops_traffic_and_undo_brings_it_back() -> TestResult {
    let twin = twin_with_orders().await?;
    let action = Layer7Service::new();
    let arguments = json!({"resolution_path": "/orders", "enabled": false});
    assert_eq!(
        traffic(&twin, "/orders").await?,
        (200, "orders ok".to_owned())
    );
    let before = read(&twin, ORDERS).await?;

    let change = action
        .plan(&context(&twin, true), arguments.clone())
        .await?;
    assert_eq!(
        change.summary,
        "service `orders` (/orders): enabled true -> false"
    );
    assert_eq!(change.changes, Some(true));
    assert_eq!(writes(&twin).await?, 0, "a plan only reads");

    let applied = action
        .apply(&context(&twin, false), arguments.clone())
        .await?;
    assert_eq!(applied.outputs["id"], json!(ORDERS));
    assert_eq!(applied.outputs["changed"], json!(true));
    assert_eq!(applied.outputs["enabled"], json!(false));
    assert_eq!(writes(&twin).await?, 1);
    let (status, body) = traffic(&twin, "/orders").await?;
    assert_eq!(status, 404, "{body}");
    assert!(body.starts_with("Service Not Found"), "{body}");
    let after = read(&twin, ORDERS).await?;
    assert!(!after.detail.enabled);
    assert_eq!(
        after.policy_revision(),
        before.policy_revision(),
        "no new policy revision"
    );
    assert_eq!(after.policy_xml(), before.policy_xml());
    assert_eq!(after.version, before.version.map(|v| v + 1));

    // Again: already disabled, nothing written.
    let again = action
        .apply(&context(&twin, false), arguments.clone())
        .await?;
    assert_eq!(again.outputs["changed"], json!(false));
    assert_eq!(writes(&twin).await?, 1);
    let none = action
        .plan(&context(&twin, true), arguments.clone())
        .await?;
    assert_eq!(none.changes, Some(false));
    assert_eq!(
        none.summary,
        "service `orders` (/orders): enabled false, no change"
    );
    let Probe::Done(done) = action
        .probe(&context(&twin, true), arguments.clone())
        .await?
    else {
        return Err("probe: expected Done after the apply".into());
    };
    assert_eq!(done.outputs["id"], json!(ORDERS));

    let undo = applied.undo.ok_or("no undo record")?;
    action
        .undo(&context(&twin, false), arguments.clone(), undo.clone())
        .await?;
    assert_eq!(
        traffic(&twin, "/orders").await?,
        (200, "orders ok".to_owned())
    );
    assert_eq!(writes(&twin).await?, 2);
    assert!(matches!(
        action
            .probe(&context(&twin, true), arguments.clone())
            .await?,
        Probe::NotDone
    ));
    // Undo twice: already restored, nothing written.
    action.undo(&context(&twin, false), arguments, undo).await?;
    assert_eq!(writes(&twin).await?, 2);
    assert_eq!(
        read(&twin, ORDERS).await?.policy_revision(),
        before.policy_revision()
    );
    Ok(())
}

#[tokio::test]
async fn finds_by_name_and_enables() -> TestResult {
    let twin = twin_with_orders().await?;
    let action = Layer7Service::new();
    let disable = json!({"name": "orders", "enabled": false});
    action.apply(&context(&twin, false), disable).await?;
    assert_eq!(traffic(&twin, "/orders").await?.0, 404);
    let enable = json!({"name": "orders", "enabled": true});
    let change = action.plan(&context(&twin, true), enable.clone()).await?;
    assert_eq!(
        change.summary,
        "service `orders` (/orders): enabled false -> true"
    );
    let applied = action.apply(&context(&twin, false), enable).await?;
    assert_eq!(applied.outputs["changed"], json!(true));
    let undo = applied.undo.ok_or("no undo record")?;
    assert_eq!(undo, json!({"id": ORDERS, "previous_enabled": false}));
    assert_eq!(
        traffic(&twin, "/orders").await?,
        (200, "orders ok".to_owned())
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_service_is_an_error_naming_what_was_looked_for() -> TestResult {
    let twin = twin_with_orders().await?;
    let action = Layer7Service::new();
    for (arguments, expected) in [
        (
            json!({"resolution_path": "/payments", "enabled": false}),
            "no service with resolution path `/payments`",
        ),
        (
            json!({"name": "Orders", "enabled": false}),
            "no service with name `Orders`",
        ),
    ] {
        let plan = action
            .plan(&context(&twin, true), arguments.clone())
            .await
            .map(|_| ());
        let message = plan.err().map(text).unwrap_or_default();
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("/restman/1.0/services"), "{message}");
        let apply = action
            .apply(&context(&twin, false), arguments)
            .await
            .map(|_| ());
        assert!(apply.is_err());
    }
    assert_eq!(writes(&twin).await?, 0);
    Ok(())
}

#[tokio::test]
async fn several_matches_are_an_error_listing_ids_and_folders() -> TestResult {
    let twin = twin().await?;
    seed(
        &twin,
        &[
            service_item(ORDERS, "orders", "/orders", "v1"),
            service_item(
                "a1000000000000000000000000000002",
                "orders",
                "/orders/v2",
                "v2",
            ),
        ],
    )?;
    let action = Layer7Service::new();
    let error = action
        .apply(
            &context(&twin, false),
            json!({"name": "orders", "enabled": false}),
        )
        .await
        .map(|_| ())
        .err()
        .map(text)
        .unwrap_or_default();
    assert!(error.contains("2 services have name `orders`"), "{error}");
    assert!(error.contains(ORDERS), "{error}");
    assert!(
        error.contains("a1000000000000000000000000000002"),
        "{error}"
    );
    assert!(
        error.contains("folder 0000000000000000ffffffffffffec76"),
        "{error}"
    );
    assert!(error.contains("resolution path"), "{error}");
    assert_eq!(writes(&twin).await?, 0);
    // By path, each is found alone.
    let applied = action
        .apply(
            &context(&twin, false),
            json!({"resolution_path": "/orders/v2", "enabled": false}),
        )
        .await?;
    assert_eq!(
        applied.outputs["id"],
        json!("a1000000000000000000000000000002")
    );
    assert_eq!(traffic(&twin, "/orders").await?, (200, "v1".to_owned()));
    Ok(())
}

#[tokio::test]
async fn wrong_credentials_say_to_check_them() -> TestResult {
    let twin = twin_with_orders().await?;
    let action = Layer7Service::new();
    let error = action
        .plan(
            &context_with(&twin, true, "not-the-password"),
            json!({"name": "orders", "enabled": false}),
        )
        .await
        .map(|_| ())
        .err()
        .map(text)
        .unwrap_or_default();
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("username and password"), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");
    Ok(())
}

#[tokio::test]
async fn a_change_between_read_and_write_is_a_conflict_and_changes_nothing() -> TestResult {
    let twin = twin_with_orders().await?;
    // Every write waits 400 ms after it is counted: the test changes the service meanwhile.
    control(
        &twin,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"latency_ms": 400, "writes_only": true})),
    )
    .await?;
    let step = tokio::spawn({
        let context = context(&twin, false);
        async move {
            Layer7Service::new()
                .apply(&context, json!({"name": "orders", "enabled": false}))
                .await
        }
    });
    let put = format!("PUT /restman/1.0/services/{ORDERS}");
    let mut seen = false;
    for _ in 0..200 {
        let counters = control(&twin, reqwest::Method::GET, "/_twin/counters", None).await?;
        if counters["requests"][&put].as_u64() == Some(1) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen, "the step's PUT never arrived");
    // Someone else changes the service (tracing on) while the step's PUT waits.
    twin.with_store(|store| -> Result<(), String> {
        let mut service: StoredService = store
            .get::<StoredService>(ORDERS)
            .ok_or("no service")?
            .entity
            .clone();
        service.tracing_enabled = true;
        store
            .save(Some(ORDERS), service, None, &RevisionOptions::active())
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    let error = step.await?.map(|_| ()).err().map(text).unwrap_or_default();
    assert!(
        error.contains("changed on the gateway by someone else"),
        "{error}"
    );
    assert!(error.contains("re-run the step"), "{error}");
    assert!(error.contains("409"), "{error}");
    // Nothing changed: still enabled, and still the other change.
    let after = read(&twin, ORDERS).await?;
    assert!(after.detail.enabled);
    let tracing = after
        .detail
        .properties
        .as_ref()
        .and_then(|p| p.get("tracingEnabled"))
        .and_then(|v| v.as_bool());
    assert_eq!(tracing, Some(true));
    assert_eq!(writes(&twin).await?, 0);
    let _cleared: Value = control(&twin, reqwest::Method::DELETE, "/_twin/faults", None).await?;
    Ok(())
}
