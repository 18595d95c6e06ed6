//! Graphman over the store: queries, mutations, revisions, keys and listen ports, bundles,
//! and the HTTP front (auth, writes counted, faults, lifecycle, seeds).

use serde_json::{Map, Value, json};

use super::StoreResolver;
use crate::layer7::graphman::{GraphqlRequest, RequestOptions, execute};
use crate::layer7::node::Node;
use crate::layer7::store::Store;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// A resolver over a store with the defaults.
fn resolver() -> TestResult<StoreResolver> {
    let node = Node::new(
        "gw1",
        "0123456789abcdef0123456789abcdef",
        "11.1.2",
        Vec::new(),
    );
    Ok(StoreResolver::new(
        Store::with_defaults()?,
        node.info(),
        "localhost:8443".to_owned(),
        "admin".to_owned(),
    ))
}

/// Runs `query` with `variables` and `options`; the body.
fn run(
    resolver: &mut StoreResolver,
    query: &str,
    variables: Value,
    options: &RequestOptions,
) -> Value {
    let request = GraphqlRequest {
        query: query.to_owned(),
        variables: variables.as_object().cloned().unwrap_or_else(Map::new),
        operation_name: None,
    };
    execute(resolver, &request, options).body
}

/// Runs `query` with default options and no errors expected; its `data`.
fn ok(resolver: &mut StoreResolver, query: &str, variables: Value) -> TestResult<Value> {
    let body = run(resolver, query, variables, &RequestOptions::default());
    if body.get("errors").is_some() {
        return Err(format!("{query}: {body}").into());
    }
    Ok(body["data"].clone())
}

const SET_SERVICES: &str = "mutation($input: [L7ServiceInput!]!) { setServices(input: $input) { status detailedStatus { status description } services { goid checksum } } }";

fn orders(xml: &str) -> Value {
    json!({"input": [{"name": "orders", "resolutionPath": "/orders", "serviceType": "WEB_API",
        "folderPath": "/apis", "methodsAllowed": ["GET"], "policy": {"xml": xml}}]})
}

#[test]
fn services_are_created_in_folders_read_back_and_keep_revision_semantics() -> TestResult {
    let mut resolver = resolver()?;
    let folder = ok(
        &mut resolver,
        "mutation { setFolders(input: [{name: \"apis\", folderPath: \"/apis\"}]) { status } }",
        json!({}),
    )?;
    assert_eq!(folder["setFolders"]["status"], json!(["CREATED"]));
    let created = ok(&mut resolver, SET_SERVICES, orders("<a/>"))?;
    assert_eq!(created["setServices"]["status"], json!(["CREATED"]));
    assert!(resolver.changed());
    let query = "{ serviceByResolutionPath(resolutionPath: \"/orders\") { name serviceType folderPath methodsAllowed enabled policy { xml } policyRevisions { ordinal active comment } } }";
    let read = ok(&mut resolver, query, json!({}))?;
    let service = &read["serviceByResolutionPath"];
    assert_eq!(service["folderPath"], "/apis");
    assert_eq!(service["serviceType"], "WEB_API");
    assert_eq!(service["policy"]["xml"], "<a/>");
    // activate=false with a comment: a second revision, the first still serves.
    let inactive = RequestOptions {
        activate: false,
        comment: Some("CRQ-1".to_owned()),
        ..RequestOptions::default()
    };
    let body = run(&mut resolver, SET_SERVICES, orders("<b/>"), &inactive);
    assert_eq!(
        body["data"]["setServices"]["status"],
        json!(["UPDATED"]),
        "{body}"
    );
    let read = ok(&mut resolver, query, json!({}))?;
    let service = &read["serviceByResolutionPath"];
    assert_eq!(service["policy"]["xml"], "<a/>");
    assert_eq!(
        service["policyRevisions"],
        json!([{"ordinal": 1, "active": true, "comment": null}, {"ordinal": 2, "active": false, "comment": "CRQ-1"}])
    );
    let activate = ok(
        &mut resolver,
        "mutation { updateServiceRevision(refInput: {resolutionPath: \"/orders\", serviceType: WEB_API}, revision: 2) { status } }",
        json!({}),
    )?;
    assert_eq!(activate["updateServiceRevision"]["status"], "UPDATED");
    let read = ok(
        &mut resolver,
        "{ services { policy { xml } policyRevisions(selected: [0]) { ordinal } } }",
        json!({}),
    )?;
    assert_eq!(read["services"][0]["policy"]["xml"], "<b/>");
    assert_eq!(
        read["services"][0]["policyRevisions"],
        json!([{"ordinal": 2}])
    );
    Ok(())
}

#[test]
fn checksums_are_equal_for_equal_configuration_and_change_with_it() -> TestResult {
    let mut one = resolver()?;
    let mut other = resolver()?;
    let set = "mutation($input: [ClusterPropertyInput!]!) { setClusterProperties(input: $input) { status } }";
    let read = "{ clusterPropertyByName(name: \"a\") { goid checksum } }";
    ok(
        &mut one,
        set,
        json!({"input": [{"name": "a", "value": "1"}]}),
    )?;
    ok(
        &mut other,
        set,
        json!({"input": [{"name": "a", "value": "1"}]}),
    )?;
    let first = ok(&mut one, read, json!({}))?;
    let second = ok(&mut other, read, json!({}))?;
    assert_ne!(
        first["clusterPropertyByName"]["goid"],
        second["clusterPropertyByName"]["goid"]
    );
    assert_eq!(
        first["clusterPropertyByName"]["checksum"],
        second["clusterPropertyByName"]["checksum"]
    );
    let again = ok(
        &mut one,
        set,
        json!({"input": [{"name": "a", "value": "1"}]}),
    )?;
    assert_eq!(
        again["setClusterProperties"]["status"],
        json!(["USED_EXISTING"])
    );
    ok(
        &mut one,
        set,
        json!({"input": [{"name": "a", "value": "2"}]}),
    )?;
    let changed = ok(&mut one, read, json!({}))?;
    assert_ne!(
        changed["clusterPropertyByName"]["checksum"],
        first["clusterPropertyByName"]["checksum"]
    );
    Ok(())
}

#[test]
fn a_generated_key_serves_a_listen_port_and_cannot_be_deleted_while_used() -> TestResult {
    let mut resolver = resolver()?;
    let set = ok(
        &mut resolver,
        "mutation { setKeys(input: [{alias: \"new-ssl\", subjectDn: \"CN=gw.example.com\", keyGenerateOptions: {certExpiry: 30}}]) { status } }",
        json!({}),
    )?;
    assert_eq!(set["setKeys"]["status"], json!(["CREATED"]));
    let key = ok(
        &mut resolver,
        "{ keyByAlias(alias: \"new-ssl\") { keystoreId subjectDn keyType certChain pem p12 } }",
        json!({}),
    )?;
    let key = &key["keyByAlias"];
    assert!(
        key["subjectDn"]
            .as_str()
            .is_some_and(|dn| dn.contains("CN=gw.example.com")),
        "{key}"
    );
    assert_eq!(key["pem"], Value::Null);
    assert_eq!(key["keystoreId"], "00000000000000000000000000000002");
    let switch = ok(
        &mut resolver,
        "mutation { updateListenPort(refInput: {name: \"Default HTTPS (8443)\"}, input: {tlsSettings: {keystoreId: \"00000000000000000000000000000002\", keyAlias: \"new-ssl\"}}) { status } }",
        json!({}),
    )?;
    assert_eq!(switch["updateListenPort"]["status"], "UPDATED");
    let port = ok(
        &mut resolver,
        "{ listenPortByName(name: \"Default HTTPS (8443)\") { port tlsSettings { keyAlias } } }",
        json!({}),
    )?;
    assert_eq!(
        port["listenPortByName"]["tlsSettings"]["keyAlias"],
        "new-ssl"
    );
    let refused = run(
        &mut resolver,
        "mutation { deleteKeys(refInputs: [{keystoreId: \"00000000000000000000000000000002\", alias: \"new-ssl\"}]) { status detailedStatus { description } } }",
        json!({}),
        &RequestOptions::default(),
    );
    assert_eq!(
        refused["data"]["deleteKeys"]["status"],
        json!(["ERROR"]),
        "{refused}"
    );
    let description = refused["data"]["deleteKeys"]["detailedStatus"][0]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("Default HTTPS (8443)"),
        "{description}"
    );
    let missing = run(
        &mut resolver,
        "mutation { updateListenPort(refInput: {name: \"Default HTTPS (8443)\"}, input: {tlsSettings: {keyAlias: \"nope\"}}) { status detailedStatus { description } } }",
        json!({}),
        &RequestOptions::default(),
    );
    let description = missing["data"]["updateListenPort"]["detailedStatus"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("private key nope does not exist"),
        "{missing}"
    );
    Ok(())
}

#[test]
fn bundles_install_under_mappings_and_delete_in_reverse_order() -> TestResult {
    let mut resolver = resolver()?;
    let bundle = json!({
        "folders": [{"name": "apis", "folderPath": "/apis"}, {"name": "v1", "folderPath": "/apis/v1"}],
        "clusterProperties": [{"name": "a", "value": "1"}],
        "policies": [{"name": "frag", "folderPath": "/apis/v1", "policyType": "FRAGMENT", "policy": {"xml": "<f/>"}}],
        "encassConfigs": [{"name": "enc", "policyName": "frag"}],
        "services": [{"name": "orders", "resolutionPath": "/orders", "serviceType": "WEB_API", "folderPath": "/apis/v1", "policy": {"xml": "<s/>"}}],
    });
    let install = "mutation { installBundleEntities { summary } }";
    let test = RequestOptions {
        test: true,
        ..RequestOptions::default()
    };
    let tested = run(&mut resolver, install, bundle.clone(), &test);
    assert_eq!(
        tested["data"]["installBundleEntities"]["summary"]["services"][0]["status"],
        "CREATED"
    );
    assert_eq!(
        ok(&mut resolver, "{ services { name } }", json!({}))?["services"],
        json!([])
    );
    let data = ok(&mut resolver, install, bundle.clone())?;
    let summary = &data["installBundleEntities"]["summary"];
    for section in [
        "folders",
        "clusterProperties",
        "policies",
        "encassConfigs",
        "services",
    ] {
        assert!(
            summary[section]
                .as_array()
                .is_some_and(|list| list.iter().all(|status| status["status"] == "CREATED")),
            "{section}: {summary}"
        );
    }
    let export = ok(
        &mut resolver,
        "{ foldersByPath(path: \"/apis\") { folderPath } encassConfigs { policyName } }",
        json!({}),
    )?;
    let mut paths: Vec<&str> = export["foldersByPath"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|folder| folder["folderPath"].as_str())
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/apis", "/apis/v1"]);
    assert_eq!(export["foldersByPath"].as_array().map(Vec::len), Some(2));
    assert_eq!(export["encassConfigs"][0]["policyName"], "frag");
    let mut broken = bundle.clone();
    broken["jdbcConnections"] = json!([{"name": "db"}]);
    broken["clusterProperties"] = json!([{"name": "a", "value": "changed"}]);
    let refused = run(&mut resolver, install, broken, &RequestOptions::default());
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("Nothing was committed")),
        "{refused}"
    );
    let value = ok(
        &mut resolver,
        "{ clusterPropertyByName(name: \"a\") { value } }",
        json!({}),
    )?;
    assert_eq!(value["clusterPropertyByName"]["value"], "1");
    let deleted = ok(
        &mut resolver,
        "mutation { deleteBundleEntities { summary } }",
        bundle,
    )?;
    let summary = &deleted["deleteBundleEntities"]["summary"];
    assert_eq!(summary["folders"][0]["status"], "DELETED", "{summary}");
    assert_eq!(summary["services"][0]["status"], "DELETED");
    let left = ok(
        &mut resolver,
        "{ folders { name } services { name } policies { name } }",
        json!({}),
    )?;
    assert_eq!(left, json!({"folders": [], "services": [], "policies": []}));
    Ok(())
}

#[test]
fn node_and_cluster_information_come_from_the_node() -> TestResult {
    let mut resolver = resolver()?;
    let data = ok(
        &mut resolver,
        "{ nodeInfo { name nodeId nodeStatus bootTime productVersion { formalString } patches { patchId } } clusterInfo { name nodes { name } } authenticatedUser { login } }",
        json!({}),
    )?;
    assert_eq!(data["nodeInfo"]["name"], "gw1");
    assert_eq!(data["nodeInfo"]["nodeStatus"], "RUNNING");
    assert_eq!(data["nodeInfo"]["productVersion"]["formalString"], "11.1.2");
    assert!(
        data["nodeInfo"]["bootTime"]
            .as_i64()
            .is_some_and(|time| time > 0)
    );
    assert_eq!(data["clusterInfo"]["nodes"], json!([{"name": "gw1"}]));
    assert_eq!(data["authenticatedUser"]["login"], "admin");
    Ok(())
}

#[test]
fn trusted_certs_are_matched_by_thumbprint_and_deleted_by_it() -> TestResult {
    let mut resolver = resolver()?;
    let der = crate::layer7::keys::self_signed(&crate::layer7::keys::KeyRequest {
        dn: "CN=partner".to_owned(),
        curve: None,
        days: 10,
        ca: false,
    })?
    .chain
    .remove(0);
    use base64::Engine as _;
    let cert = base64::engine::general_purpose::STANDARD.encode(&der);
    let set =
        "mutation($input: [TrustedCertInput!]!) { setTrustedCerts(input: $input) { status } }";
    let input = json!({"input": [{"name": "partner", "certBase64": cert, "trustedFor": ["SSL"]}]});
    assert_eq!(
        ok(&mut resolver, set, input.clone())?["setTrustedCerts"]["status"],
        json!(["CREATED"])
    );
    assert_eq!(
        ok(&mut resolver, set, input)?["setTrustedCerts"]["status"],
        json!(["USED_EXISTING"])
    );
    let read = ok(
        &mut resolver,
        "{ trustedCertsByName(name: \"partner\") { thumbprintSha1 trustedFor subjectDn } }",
        json!({}),
    )?;
    let thumbprint = read["trustedCertsByName"][0]["thumbprintSha1"].clone();
    assert_eq!(read["trustedCertsByName"][0]["trustedFor"], json!(["SSL"]));
    let delete = "mutation($t: [String!]!) { deleteTrustedCerts(thumbprintSha1s: $t) { status } }";
    let deleted = ok(&mut resolver, delete, json!({"t": [thumbprint.clone()]}))?;
    assert_eq!(deleted["deleteTrustedCerts"]["status"], json!(["DELETED"]));
    let again = ok(&mut resolver, delete, json!({"t": [thumbprint]}))?;
    assert_eq!(again["deleteTrustedCerts"]["status"], json!(["NONE"]));
    Ok(())
}

#[test]
fn secrets_are_never_shown() -> TestResult {
    let mut resolver = resolver()?;
    ok(
        &mut resolver,
        "mutation { setSecrets(input: [{name: \"db\", secret: \"hunter2\"}]) { status } }",
        json!({}),
    )?;
    let read = ok(
        &mut resolver,
        "{ secrets { name secret secretType checksum } }",
        json!({}),
    )?;
    assert_eq!(read["secrets"][0]["secret"], Value::Null);
    assert!(!read.to_string().contains("hunter2"));
    Ok(())
}
