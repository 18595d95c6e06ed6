//! HTTP-level tests of [`RestmanClient`] against a loopback stub serving
//! reference-shaped bodies.

use super::*;
use crate::layer7::restman::bundle::{ActionTaken, Bundle, ExportQuery, ImportOptions};
use crate::layer7::restman::entities::{ClusterProperty, ListenPort};
use crate::layer7::restman::policy_entities::Service;
use crate::layer7::test_server::{ADMIN_BASIC, GatewayStub, TestResult, xml};

const NS: &str = "http://ns.l7tech.com/2010/04/gateway-management";

fn property_item(version: u64) -> String {
    format!(
        r#"<l7:Item xmlns:l7="{NS}"><l7:Name>io.httpsHostVerify</l7:Name><l7:Id>abc</l7:Id><l7:Type>CLUSTER_PROPERTY</l7:Type><l7:TimeStamp>2020-08-17T23:28:23.524Z</l7:TimeStamp><l7:Link rel="self" uri="https://gw:8443/restman/1.0/clusterProperties/abc"/><l7:Resource><l7:ClusterProperty id="abc" version="{version}"><l7:Name>io.httpsHostVerify</l7:Name><l7:Value>true</l7:Value></l7:ClusterProperty></l7:Resource></l7:Item>"#
    )
}

fn error(kind: &str, detail: &str) -> String {
    format!(
        r#"<l7:Error xmlns:l7="{NS}"><l7:Type>{kind}</l7:Type><l7:TimeStamp>2020-08-17T23:28:23.524Z</l7:TimeStamp><l7:Link rel="self" uri="https://gw:8443/restman/1.0/x"/><l7:Detail>{detail}</l7:Detail></l7:Error>"#
    )
}

#[tokio::test]
async fn sends_basic_auth_and_reads_the_entity() -> TestResult {
    let stub = GatewayStub::start(|_| xml(200, &property_item(3))).await?;
    let gateway = stub.gateway(false).await?;
    let property: ClusterProperty = gateway.restman.get("abc").await?;
    assert_eq!(
        (property.value.as_str(), property.version),
        ("true", Some(3))
    );
    let seen = &stub.seen()[0];
    assert_eq!(seen.uri, "/restman/1.0/clusterProperties/abc");
    assert_eq!(seen.header("authorization"), Some(ADMIN_BASIC));
    assert_eq!(seen.header("accept"), Some("application/xml"));
    Ok(())
}

#[tokio::test]
async fn unauthorized_says_to_check_the_credentials_and_never_shows_the_password() -> TestResult {
    let stub = GatewayStub::start(|_| {
        (
            401,
            "text/html",
            "<html>Authentication Required</html>".to_owned(),
        )
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let outcome = gateway.restman.list::<Service>(&[]).await;
    let message = outcome
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert!(message.contains("answered 401"), "{message}");
    assert!(
        message.contains("check the gateway's username and password"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    Ok(())
}

#[tokio::test]
async fn lists_with_filters_and_reads_an_empty_list() -> TestResult {
    let stub = GatewayStub::start(|_| {
        xml(
            200,
            &format!(r#"<l7:List xmlns:l7="{NS}"><l7:Name>SERVICE List</l7:Name><l7:Type>List</l7:Type><l7:TimeStamp>2020-08-17T23:28:23.524Z</l7:TimeStamp><l7:Link rel="self" uri="https://gw:8443/restman/1.0/services?name=orders%20api"/></l7:List>"#),
        )
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    assert_eq!(
        gateway
            .restman
            .find_by_name::<Service>("orders api")
            .await?,
        None
    );
    assert_eq!(stub.seen()[0].uri, "/restman/1.0/services?name=orders+api");
    Ok(())
}

#[tokio::test]
async fn not_found_names_the_entity_and_the_gateway_detail() -> TestResult {
    let stub = GatewayStub::start(|_| {
        xml(
            404,
            &error("ResourceNotFound", "Resource not found {id=nope}"),
        )
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let outcome = gateway.restman.get::<ListenPort>("nope").await;
    assert!(
        matches!(&outcome, Err(Layer7Error::NotFound { .. })),
        "{outcome:?}"
    );
    let message = outcome
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert_eq!(
        message,
        format!(
            "listen port nope not found (GET {}/restman/1.0/listenPorts/nope answered 404: Resource not found {{id=nope}})",
            stub.url
        )
    );
    Ok(())
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_naming_the_entity() -> TestResult {
    let stub = GatewayStub::start(|seen| match seen.method.as_str() {
        "GET" => xml(200, &property_item(3)),
        _ => xml(
            409,
            &error(
                "InvalidResource",
                "Unable to update: version mismatch (expected 4, was 3)",
            ),
        ),
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let mut property: ClusterProperty = gateway.restman.get("abc").await?;
    property.value = "false".to_owned();
    let outcome = gateway
        .restman
        .put("abc", &property, &WriteOptions::default())
        .await;
    let message = outcome
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert!(
        message.starts_with("cluster property `io.httpsHostVerify`: version 3 is stale"),
        "{message}"
    );
    assert!(
        message.contains("answered 409: Unable to update: version mismatch"),
        "{message}"
    );
    let put = &stub.seen()[1];
    assert_eq!(put.method, "PUT");
    assert!(
        put.body.starts_with(&format!(
            r#"<l7:ClusterProperty xmlns:l7="{NS}" id="abc" version="3">"#
        )),
        "{}",
        put.body
    );
    assert_eq!(put.header("content-type"), Some("application/xml"));
    Ok(())
}

#[tokio::test]
async fn other_refusals_carry_the_l7_error_type_and_detail() -> TestResult {
    let stub = GatewayStub::start(|_| {
        xml(400, &error("BadRequest", "cvc-complex-type.2.4.a: Invalid content was found starting with element 'l7:Writable'"))
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let outcome = gateway
        .restman
        .create(&ClusterProperty::new("a", "b"), &WriteOptions::default())
        .await;
    assert!(
        matches!(&outcome, Err(Layer7Error::Rejected { status: 400, error_type: Some(kind), detail, .. })
            if kind == "BadRequest" && detail.starts_with("cvc-complex-type")),
        "{outcome:?}"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_xml_and_wrong_content_types_name_the_url_and_quote_the_body() -> TestResult {
    let stub = GatewayStub::start(|seen| {
        if seen.uri.contains("services") {
            xml(200, "<l7:Item><l7:Name>broken</l7:Nam")
        } else {
            (
                200,
                "text/html",
                "<html><body>Policy Manager login</body></html>".to_owned(),
            )
        }
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let broken = gateway.restman.get::<Service>("s1").await;
    let message = broken
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "GET {}/restman/1.0/services/s1: malformed response: not the expected XML",
            stub.url
        )),
        "{message}"
    );
    assert!(
        message.contains("body: <l7:Item><l7:Name>broken</l7:Nam"),
        "{message}"
    );
    let html = gateway.restman.get::<ClusterProperty>("c1").await;
    let message = html
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert!(
        message.contains("malformed response: expected application/xml, got `text/html`"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn export_strips_the_envelope_and_sends_the_passphrase_in_base64() -> TestResult {
    let bundle_xml = crate::layer7::restman::bundle::tests::BUNDLE.to_owned();
    let stub = GatewayStub::start(move |_| {
        let inner = bundle_xml.replace(&format!(" xmlns:l7=\"{NS}\""), "");
        xml(200, &format!(r#"<l7:Item xmlns:l7="{NS}"><l7:Name>Bundle</l7:Name><l7:Type>BUNDLE</l7:Type><l7:Resource>{inner}</l7:Resource></l7:Item>"#))
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let query = ExportQuery {
        passphrase: Some("7layer".to_owned()),
        encrypt_secrets: true,
        ..ExportQuery::default()
    }
    .service("610e24359b89658ee77ba06dc24673d7");
    let bundle = gateway.restman.export(&query).await?;
    assert_eq!(bundle.items.len(), 2);
    let seen = &stub.seen()[0];
    assert_eq!(
        seen.uri,
        "/restman/1.0/bundle?service=610e24359b89658ee77ba06dc24673d7&encryptSecrets=true"
    );
    assert_eq!(seen.header("l7-key-passphrase"), Some("N2xheWVy"));
    Ok(())
}

/// The 409 answer of an import whose second mapping fails (KB 107541's shape).
fn failed_import() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<l7:Item xmlns:l7="{NS}"><l7:Name>Bundle mappings</l7:Name><l7:Type>BUNDLE MAPPINGS</l7:Type><l7:Resource><l7:Mappings>
  <l7:Mapping action="NewOrExisting" actionTaken="UsedExisting" srcId="0000000000000000ffffffffffffec76" targetId="0000000000000000ffffffffffffec76" type="FOLDER"/>
  <l7:Mapping action="NewOrUpdate" errorType="UniqueKeyConflict" srcId="8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7" type="CLUSTER_PROPERTY">
    <l7:Properties><l7:Property key="ErrorMessage"><l7:StringValue>(name) must be unique</l7:StringValue></l7:Property></l7:Properties>
  </l7:Mapping>
  <l7:Mapping action="NewOrUpdate" errorType="TargetNotFound" srcId="610e24359b89658ee77ba06dc24673d7" type="SERVICE">
    <l7:Properties><l7:Property key="ErrorMessage"><l7:StringValue>second failure</l7:StringValue></l7:Property></l7:Properties>
  </l7:Mapping>
</l7:Mappings></l7:Resource></l7:Item>"#
    )
}

#[tokio::test]
async fn a_409_import_names_the_first_failing_mapping_and_keeps_every_result() -> TestResult {
    let stub = GatewayStub::start(|_| xml(409, &failed_import())).await?;
    let gateway = stub.gateway(false).await?;
    let bundle = Bundle::parse(crate::layer7::restman::bundle::tests::BUNDLE)?;
    let outcome = gateway
        .restman
        .import(&bundle, &ImportOptions::default())
        .await;
    let Err(Layer7Error::BundleFailed { failure, results }) = &outcome else {
        return Err(format!("expected BundleFailed, got {outcome:?}").into());
    };
    assert_eq!(results.len(), 3);
    assert_eq!(failure.name.as_deref(), Some("orders.backend"));
    let message = outcome
        .map(|_| ())
        .map_err(|e| e.to_string())
        .err()
        .unwrap_or_default();
    assert_eq!(
        message,
        "bundle import failed at CLUSTER_PROPERTY `orders.backend` (srcId 8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7): UniqueKeyConflict: (name) must be unique; the import changed nothing (a bundle is imported all or nothing)"
    );
    let seen = &stub.seen()[0];
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("PUT", "/restman/1.0/bundle")
    );
    assert!(
        seen.body
            .starts_with(&format!("<l7:Bundle xmlns:l7=\"{NS}\">")),
        "{}",
        seen.body
    );
    Ok(())
}

#[tokio::test]
async fn a_successful_import_answers_each_mapping_named_from_the_bundle() -> TestResult {
    let answer = failed_import()
        .replace(
            r#"errorType="UniqueKeyConflict""#,
            r#"actionTaken="UpdatedExisting" targetId="8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7""#,
        )
        .replace(
            r#"errorType="TargetNotFound""#,
            r#"actionTaken="CreatedNew""#,
        );
    let stub = GatewayStub::start(move |_| xml(200, &answer)).await?;
    let gateway = stub.gateway(false).await?;
    let bundle = Bundle::parse(crate::layer7::restman::bundle::tests::BUNDLE)?;
    let options = ImportOptions {
        activate: Some(false),
        version_comment: Some("CRQ-42 orders".to_owned()),
        ..ImportOptions::default()
    };
    let results = gateway.restman.import(&bundle, &options).await?;
    let taken: Vec<(Option<String>, Option<ActionTaken>)> = results
        .iter()
        .map(|r| (r.name.clone(), r.action_taken.clone()))
        .collect();
    assert_eq!(
        taken,
        [
            (None, Some(ActionTaken::UsedExisting)),
            (
                Some("orders.backend".to_owned()),
                Some(ActionTaken::UpdatedExisting)
            ),
            (Some("foo API".to_owned()), Some(ActionTaken::CreatedNew)),
        ]
    );
    assert_eq!(
        stub.seen()[0].uri,
        "/restman/1.0/bundle?activate=false&versionComment=CRQ-42+orders"
    );
    Ok(())
}

#[tokio::test]
async fn versions_and_activation_use_the_revision_paths() -> TestResult {
    let stub = GatewayStub::start(|seen| {
        if seen.method == "POST" {
            return xml(200, "");
        }
        let version = |ordinal: u64, active: bool| {
            format!(r#"<l7:Item><l7:Name>Policy Version</l7:Name><l7:Id>v{ordinal}</l7:Id><l7:Type>POLICY_VERSION</l7:Type><l7:Resource><l7:PolicyVersion id="v{ordinal}"><l7:Active>{active}</l7:Active><l7:Comment>rev {ordinal}</l7:Comment><l7:Ordinal>{ordinal}</l7:Ordinal><l7:PolicyId>p1</l7:PolicyId><l7:Time>1597706903524</l7:Time></l7:PolicyVersion></l7:Resource></l7:Item>"#)
        };
        xml(200, &format!(r#"<l7:List xmlns:l7="{NS}"><l7:Name>POLICY_VERSION List</l7:Name>{}{}</l7:List>"#, version(1, false), version(2, true)))
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let versions = gateway.restman.versions::<Service>("s1").await?;
    let summary: Vec<(u64, bool)> = versions.iter().map(|v| (v.ordinal, v.active)).collect();
    assert_eq!(summary, [(1, false), (2, true)]);
    gateway.restman.activate_version::<Service>("s1", 1).await?;
    let uris: Vec<String> = stub
        .seen()
        .into_iter()
        .map(|s| format!("{} {}", s.method, s.uri))
        .collect();
    assert_eq!(
        uris,
        [
            "GET /restman/1.0/services/s1/versions",
            "POST /restman/1.0/services/s1/versions/1/activate"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn creates_a_key_and_marks_its_special_purposes() -> TestResult {
    let stub = GatewayStub::start(|seen| {
        if seen.method == "POST" {
            xml(201, &format!(r#"<l7:Item xmlns:l7="{NS}"><l7:Name>ssl-2026</l7:Name><l7:Id>00000000000000000000000000000002:ssl-2026</l7:Id><l7:Type>SSG_KEY_ENTRY</l7:Type></l7:Item>"#))
        } else {
            xml(200, &format!(r#"<l7:Item xmlns:l7="{NS}"><l7:Name>ssl-2026</l7:Name><l7:Id>00000000000000000000000000000002:ssl-2026</l7:Id></l7:Item>"#))
        }
    })
    .await?;
    let gateway = stub.gateway(false).await?;
    let context = crate::layer7::restman::entities::PrivateKeyCreationContext::rsa(
        "CN=gw.example",
        2048,
        365,
    );
    let reference = gateway
        .restman
        .create_private_key(crate::layer7::SOFTWARE_KEYSTORE, "ssl-2026", &context)
        .await?;
    assert_eq!(
        reference.id.as_deref(),
        Some("00000000000000000000000000000002:ssl-2026")
    );
    gateway
        .restman
        .set_special_purposes(crate::layer7::SOFTWARE_KEYSTORE, "ssl-2026", &["SSL", "CA"])
        .await?;
    let seen = stub.seen();
    assert_eq!(
        seen[0].uri,
        "/restman/1.0/privateKeys/00000000000000000000000000000002:ssl-2026"
    );
    assert!(
        seen[0].body.contains("<l7:Dn>CN=gw.example</l7:Dn>"),
        "{}",
        seen[0].body
    );
    assert_eq!(
        format!("{} {}", seen[1].method, seen[1].uri),
        "PUT /restman/1.0/privateKeys/00000000000000000000000000000002:ssl-2026/specialPurpose?purpose=SSL&purpose=CA"
    );
    Ok(())
}
