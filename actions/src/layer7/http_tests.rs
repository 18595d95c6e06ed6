//! HTTP-level tests of the Graphman client, `/ssg/ping` and the dry-run
//! exception, against a loopback stub serving reference-shaped bodies.

use serde_json::json;

use super::Layer7Error;
use super::graphman::GraphmanOptions;
use super::graphman::types::ClusterPropertyInput;
use super::ping::PingState;
use super::restman::{Bundle, ImportOptions};
use super::test_server::{ADMIN_BASIC, GatewayStub, TestResult, json, xml};
use crate::web::WebError;

#[tokio::test]
async fn node_info_is_a_typed_query_with_basic_auth() -> TestResult {
    let stub = GatewayStub::start(|_| {
        json(200, json!({"data": {"nodeInfo": {
            "name": "gw1", "nodeId": "n1", "address": "10.0.0.5", "bootTime": "2026-01-02T03:04:05Z",
            "formFactor": "CONTAINER", "supportsDBUpgrade": false,
            "productVersion": {"formalString": "11.1.00", "buildNumber": "1234"},
            "patches": [{"patchId": "CR02", "status": "INSTALLED", "latest": true}]
        }}}))
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let node = gateway.graphman.node_info().await?;
    assert_eq!(node.name, "gw1");
    assert_eq!(
        node.product_version
            .and_then(|v| v.formal_string)
            .as_deref(),
        Some("11.1.00")
    );
    assert_eq!(node.patches[0].patch_id, "CR02");
    let seen = &stub.seen()[0];
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("POST", "/graphman")
    );
    assert_eq!(seen.header("authorization"), Some(ADMIN_BASIC));
    assert_eq!(
        seen.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let content_types = seen.headers.iter().filter(|(name, _)| name == "content-type");
    assert_eq!(content_types.count(), 1, "{:?}", seen.headers);
    let body: serde_json::Value = serde_json::from_str(&seen.body)?;
    assert!(
        body["query"]
            .as_str()
            .is_some_and(|q| q.contains("nodeInfo { name nodeId")),
        "{body}"
    );
    assert_eq!(body["variables"], json!({}));
    Ok(())
}

#[tokio::test]
async fn graphql_errors_become_an_error_with_their_messages() -> TestResult {
    let stub = GatewayStub::start(|_| {
        json(200, json!({"errors": [{"message": "Validation error (FieldUndefined@[clusterPropertyByName/nope]) : Field 'nope' in type 'ClusterProperty' is undefined", "locations": [{"line": 1, "column": 2}]}], "data": null}))
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let outcome = gateway.graphman.cluster_property_by_name("io.x").await;
    let message = outcome
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "POST {}/graphman (clusterPropertyByName): GraphQL errors: Validation error",
            stub.url
        )),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn another_content_type_or_broken_json_is_a_clear_error() -> TestResult {
    let stub = GatewayStub::start(|seen| {
        if seen.body.contains("clusterInfo") {
            (200, "text/html", "<html>Gateway Login</html>".to_owned())
        } else {
            (
                200,
                "application/json",
                "{\"data\": {\"nodeInfo\": ".to_owned(),
            )
        }
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let html = gateway.graphman.cluster_info().await;
    let message = html
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert!(
        message.contains("malformed response: no valid response from graphman: expected application/json, got `text/html`; body: <html>Gateway Login</html>"),
        "{message}"
    );
    let broken = gateway.graphman.node_info().await;
    let message = broken
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert!(
        message.contains("malformed response: not JSON"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn a_detailed_status_error_names_the_entity_and_the_description() -> TestResult {
    let stub = GatewayStub::start(|_| {
        json(200, json!({"data": {"setClusterProperties": {"detailedStatus": [
            {"action": "NEW_OR_UPDATE", "status": "UPDATED", "description": "updated", "source": [{"name": "name", "value": "io.a"}], "target": [{"name": "goid", "value": "g1"}]},
            {"action": "NEW_OR_UPDATE", "status": "ERROR", "description": "the value is not valid for this property", "source": [{"name": "name", "value": "io.b"}], "target": []}
        ]}}}))
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let inputs = [
        ClusterPropertyInput {
            name: "io.a".to_owned(),
            value: "1".to_owned(),
            description: None,
        },
        ClusterPropertyInput {
            name: "io.b".to_owned(),
            value: "x".to_owned(),
            description: None,
        },
    ];
    let outcome = gateway
        .graphman
        .set_cluster_properties(&inputs, &GraphmanOptions::default())
        .await;
    let message = outcome
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert_eq!(
        message,
        "setClusterProperties: name=io.b: the value is not valid for this property"
    );
    Ok(())
}

#[tokio::test]
async fn mutation_options_travel_as_query_parameters_and_the_passphrase_as_a_header() -> TestResult
{
    let stub = GatewayStub::start(|_| {
        json(200, json!({"data": {"installBundleEntities": {"summary": {"services": [
            {"action": "NEW_OR_UPDATE", "status": "CREATED", "description": "created", "source": [{"name": "resolutionPath", "value": "/orders"}], "target": []}
        ]}}}}))
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let bundle = super::graphman::GraphmanBundle::parse(
        r#"{"services": [{"name": "orders", "resolutionPath": "/orders"}]}"#,
    )?;
    let options = GraphmanOptions {
        activate: Some(false),
        comment: Some("CRQ 7".to_owned()),
        passphrase: Some("7layer".to_owned()),
        ..GraphmanOptions::default()
    };
    let status = gateway.graphman.install_bundle(&bundle, &options).await?;
    assert!(status.changed());
    let seen = &stub.seen()[0];
    assert_eq!(seen.uri, "/graphman?activate=false&comment=CRQ+7");
    assert_eq!(seen.header("x-l7-passphrase"), Some("N2xheWVy"));
    let body: serde_json::Value = serde_json::from_str(&seen.body)?;
    assert_eq!(
        body["variables"]["services"][0]["resolutionPath"],
        "/orders"
    );
    Ok(())
}

#[tokio::test]
async fn ping_is_up_on_200_with_basic_auth() -> TestResult {
    let stub =
        GatewayStub::start(|_| (200, "text/html", "<html><body>OK</body></html>".to_owned()))
            .await?;
    let gateway = stub.gateway(false).await?;
    let up = gateway.ping.ping().await?;
    assert_eq!(
        (up.state, up.status, up.body.as_str()),
        (PingState::Up, 200, "OK")
    );
    assert!(up.require_up().is_ok());
    let seen = &stub.seen()[0];
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("GET", "/ssg/ping")
    );
    assert_eq!(seen.header("authorization"), Some(ADMIN_BASIC));
    Ok(())
}

#[tokio::test]
async fn ping_answers_not_operational_as_a_result_not_an_error() -> TestResult {
    let stub = GatewayStub::start(|_| {
        (
            503,
            "text/html",
            "<html><body>The server is not in an operational state</body></html>".to_owned(),
        )
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let down = gateway.ping.ping().await?;
    assert_eq!(down.state, PingState::NotOperational);
    assert_eq!(down.body, "The server is not in an operational state");
    assert!(matches!(
        down.require_up(),
        Err(Layer7Error::NotOperational { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn ping_of_a_closed_port_is_the_transport_error() -> TestResult {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    let web = crate::web::WebClient::for_step(
        &runsheet_engine::StepContext::detached("step", false),
        None,
    )
    .await?;
    let gateway = super::Layer7Gateway::connect(
        "l7",
        &format!("http://127.0.0.1:{port}"),
        &format!("http://127.0.0.1:{port}"),
        super::connection::Connection::new(web, None),
    );
    let outcome = gateway.ping.ping().await;
    assert!(
        matches!(
            &outcome,
            Err(Layer7Error::Web(WebError::ConnectionRefused { .. }))
        ),
        "{outcome:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_dry_run_sends_queries_and_test_imports_and_refuses_real_writes() -> TestResult {
    let stub = GatewayStub::start(|seen| {
        if seen.uri.starts_with("/graphman") {
            json(200, json!({"data": {
                "clusterPropertyByName": {"name": "io.a", "value": "1"},
                "setClusterProperties": {"detailedStatus": [{"action": "NEW_OR_UPDATE", "status": "UPDATED", "source": [], "target": []}]}
            }}))
        } else {
            xml(200, r#"<l7:Item xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:Resource><l7:Mappings><l7:Mapping action="NewOrUpdate" actionTaken="UpdatedExisting" srcId="8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7" type="CLUSTER_PROPERTY"/></l7:Mappings></l7:Resource></l7:Item>"#)
        }
    })
    .await?;
    let gateway = stub.gateway(true).await?;
    let property = gateway.graphman.cluster_property_by_name("io.a").await?;
    assert_eq!(property.map(|p| p.value), Some(Some("1".to_owned())));
    let bundle = Bundle::parse(crate::layer7::restman::bundle::tests::BUNDLE)?;
    let test = ImportOptions {
        test: true,
        ..ImportOptions::default()
    };
    let results = gateway.restman.import(&bundle, &test).await?;
    assert_eq!(results.len(), 1);
    let preview = gateway
        .graphman
        .set_cluster_properties(
            &[ClusterPropertyInput {
                name: "io.a".to_owned(),
                value: "2".to_owned(),
                description: None,
            }],
            &GraphmanOptions::test(),
        )
        .await?;
    assert!(preview.changed());

    let real = gateway
        .restman
        .import(&bundle, &ImportOptions::default())
        .await;
    assert!(
        matches!(&real, Err(Layer7Error::Web(WebError::DryRunWrite { .. }))),
        "{real:?}"
    );
    let mutation = gateway
        .graphman
        .set_cluster_properties(
            &[ClusterPropertyInput {
                name: "io.a".to_owned(),
                value: "2".to_owned(),
                description: None,
            }],
            &GraphmanOptions::default(),
        )
        .await;
    assert!(
        matches!(
            &mutation,
            Err(Layer7Error::Web(WebError::DryRunWrite { .. }))
        ),
        "{mutation:?}"
    );
    let create = gateway
        .restman
        .create(
            &super::restman::ClusterProperty::new("a", "b"),
            &super::restman::WriteOptions::default(),
        )
        .await;
    assert!(
        matches!(&create, Err(Layer7Error::Web(WebError::DryRunWrite { .. }))),
        "{create:?}"
    );

    let sent: Vec<String> = stub
        .seen()
        .into_iter()
        .map(|s| format!("{} {}", s.method, s.uri))
        .collect();
    assert_eq!(
        sent,
        [
            "POST /graphman",
            "PUT /restman/1.0/bundle?test=true",
            "POST /graphman?test=true"
        ]
    );
    Ok(())
}
