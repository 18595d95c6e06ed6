//! The contract between the Graphman client and the Layer7 twin: the real
//! [`GraphmanClient`] against a real twin over loopback HTTP, for every operation the
//! client offers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::graphman::types::{
    ClusterPropertyInput, KeyGenerateOptions, KeyInput, TrustedCertInput,
};
use super::graphman::{GraphmanBundle, GraphmanClient, GraphmanOptions};
use super::twin_support::{context, context_with, twin, writes};
use super::{Layer7Error, Layer7Gateway, Layer7Selection};
use crate::test_support::TestResult;

/// The default keystore.
const KEYSTORE: &str = "00000000000000000000000000000002";

/// The Graphman client of a step against `twin`.
async fn client(twin: &runsheet_twin::layer7::Layer7Twin) -> TestResult<GraphmanClient> {
    Ok(Layer7Gateway::for_step(&context(twin, false))
        .await?
        .graphman)
}

/// A service input at `path` in folder `/apis` with policy `xml`.
fn service(path: &str, xml: &str) -> Value {
    json!({"name": path.trim_start_matches('/'), "resolutionPath": path, "serviceType": "WEB_API",
        "folderPath": "/apis", "methodsAllowed": ["GET"], "policy": {"xml": xml}})
}

/// A bundle with a folder, a cluster property, a policy and a service.
fn bundle() -> TestResult<GraphmanBundle> {
    Ok(GraphmanBundle::parse(
        &json!({
            "folders": [{"name": "apis", "folderPath": "/apis"}],
            "clusterProperties": [{"name": "io.timeout", "value": "30"}],
            "policies": [{"name": "auth", "folderPath": "/apis", "policyType": "FRAGMENT", "policy": {"xml": "<auth/>"}}],
            "services": [service("/orders", "<orders/>")],
        })
        .to_string(),
    )?)
}

#[tokio::test]
async fn node_and_cluster_information() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin).await?;
    let node = client.node_info().await?;
    assert_eq!(node.name, "layer7-twin");
    assert_eq!(
        node.node_id.as_deref(),
        Some(twin.config().node_id.as_str())
    );
    let version = node.product_version.unwrap_or_default();
    assert_eq!(version.formal_string.as_deref(), Some("11.1.2"));
    assert!(node.boot_time.is_some());
    let cluster = client.cluster_info().await?;
    assert_eq!(cluster.nodes.len(), 1);
    assert_eq!(cluster.nodes[0].name, "layer7-twin");
    assert!(cluster.checksum.is_some());
    Ok(())
}

#[tokio::test]
async fn services_policies_and_their_revisions() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin).await?;
    client
        .install_bundle(&bundle()?, &GraphmanOptions::default())
        .await?;
    let orders = client
        .service_by_resolution_path("/orders")
        .await?
        .ok_or("no /orders")?;
    assert_eq!(orders.service_type.as_deref(), Some("WEB_API"));
    assert_eq!(orders.folder_path.as_deref(), Some("/apis"));
    assert_eq!(orders.methods_allowed, ["GET"]);
    // A new policy saved without activating it: the old one keeps serving.
    let saved = client
        .set_services(
            &[service("/orders", "<orders-v2/>")],
            &GraphmanOptions {
                activate: Some(false),
                comment: Some("CRQ-7".to_owned()),
                ..GraphmanOptions::default()
            },
        )
        .await?;
    assert!(saved.changed());
    let still = client
        .service_by_resolution_path("/orders")
        .await?
        .ok_or("gone")?;
    assert_eq!(
        still.policy.and_then(|p| p.xml).as_deref(),
        Some("<orders/>")
    );
    let activated = client
        .update_service_revision(
            "/orders",
            "WEB_API",
            2,
            true,
            None,
            &GraphmanOptions::default(),
        )
        .await?;
    assert!(activated.changed());
    let now = client
        .service_by_resolution_path("/orders")
        .await?
        .ok_or("gone")?;
    assert_eq!(
        now.policy.and_then(|p| p.xml).as_deref(),
        Some("<orders-v2/>")
    );
    assert_ne!(now.checksum, orders.checksum);
    // Policies: revision 1 again, with a comment.
    let policy = client.policy_by_name("auth").await?.ok_or("no auth")?;
    assert_eq!(policy.policy_type.as_deref(), Some("FRAGMENT"));
    let same = client
        .update_policy_revision(
            "auth",
            1,
            true,
            Some("checked"),
            &GraphmanOptions::default(),
        )
        .await?;
    assert!(same.changed(), "{:?}", same.statuses);
    let missing = client
        .update_policy_revision("auth", 9, true, None, &GraphmanOptions::default())
        .await
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        missing.contains("name=auth") && missing.contains("no revision 9"),
        "{missing}"
    );
    assert!(client.policy_by_name("nope").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn cluster_properties_set_read_and_delete() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin).await?;
    let input = ClusterPropertyInput {
        name: "io.timeout".to_owned(),
        value: "30".to_owned(),
        description: Some("seconds".to_owned()),
    };
    let set = client
        .set_cluster_properties(std::slice::from_ref(&input), &GraphmanOptions::default())
        .await?;
    assert!(set.changed());
    let again = client
        .set_cluster_properties(&[input], &GraphmanOptions::default())
        .await?;
    assert!(!again.changed(), "{:?}", again.statuses);
    let read = client
        .cluster_property_by_name("io.timeout")
        .await?
        .ok_or("missing")?;
    assert_eq!(read.value.as_deref(), Some("30"));
    assert_eq!(read.description.as_deref(), Some("seconds"));
    assert_eq!(writes(&twin).await?, 1);
    let deleted = client
        .delete_cluster_properties(&["io.timeout", "absent"], &GraphmanOptions::default())
        .await?;
    let statuses: Vec<&str> = deleted.statuses.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(statuses, ["DELETED", "NONE"]);
    assert!(
        client
            .cluster_property_by_name("io.timeout")
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn keys_from_pem_and_generated_and_a_listen_port_switch() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin).await?;
    let key_pair = rcgen::KeyPair::generate()?;
    let certificate = rcgen::CertificateParams::new(vec!["pem.example.com".to_owned()])?
        .self_signed(&key_pair)?;
    let pem = format!("{}{}", key_pair.serialize_pem(), certificate.pem());
    let from_pem = KeyInput {
        keystore_id: KEYSTORE.to_owned(),
        alias: "from-pem".to_owned(),
        subject_dn: None,
        pem: Some(pem),
        key_generate_options: None,
        usage_types: Vec::new(),
    };
    let generated = KeyInput {
        keystore_id: KEYSTORE.to_owned(),
        alias: "generated".to_owned(),
        subject_dn: Some("CN=gw.example.com".to_owned()),
        pem: None,
        key_generate_options: Some(KeyGenerateOptions {
            rsa_key_bits: 2048,
            cert_expiry: 30,
        }),
        usage_types: Vec::new(),
    };
    let set = client
        .set_keys(&[from_pem, generated], &GraphmanOptions::default())
        .await?;
    assert_eq!(set.statuses.len(), 2);
    let key = client.key_by_alias("from-pem").await?.ok_or("no key")?;
    assert_eq!(key.cert_chain.len(), 1);
    assert!(key.cert_chain[0].contains("BEGIN CERTIFICATE"));
    let generated = client.key_by_alias("generated").await?.ok_or("no key")?;
    assert!(
        generated
            .subject_dn
            .as_deref()
            .is_some_and(|dn| dn.contains("CN=gw.example.com")),
        "{generated:?}"
    );
    let port = "Default HTTPS (8443)";
    client
        .update_listen_port_key(port, KEYSTORE, "generated", &GraphmanOptions::default())
        .await?;
    let switched = client.listen_port_by_name(port).await?.ok_or("no port")?;
    let tls = switched.tls_settings.unwrap_or_default();
    assert_eq!(tls.key_alias.as_deref(), Some("generated"));
    assert_eq!(tls.keystore_id.as_deref(), Some(KEYSTORE));
    let in_use = client
        .delete_keys(&[(KEYSTORE, "generated")], &GraphmanOptions::default())
        .await
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        in_use.contains("alias=generated") && in_use.contains(port),
        "{in_use}"
    );
    client
        .update_listen_port_key(port, KEYSTORE, "ssl", &GraphmanOptions::default())
        .await?;
    let deleted = client
        .delete_keys(&[(KEYSTORE, "generated")], &GraphmanOptions::default())
        .await?;
    assert!(deleted.changed());
    assert!(client.key_by_alias("generated").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn trusted_certs_by_name_and_deleted_by_thumbprint() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin).await?;
    let key_pair = rcgen::KeyPair::generate()?;
    let certificate = rcgen::CertificateParams::new(vec!["partner.example.com".to_owned()])?
        .self_signed(&key_pair)?;
    let input = TrustedCertInput {
        name: "partner".to_owned(),
        cert_base64: STANDARD.encode(certificate.der()),
        trusted_for: vec!["SSL".to_owned()],
        verify_hostname: Some(true),
        trust_anchor: None,
    };
    client
        .set_trusted_certs(&[input], &GraphmanOptions::default())
        .await?;
    let found = client.trusted_certs_by_name("partner").await?;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].trusted_for, ["SSL"]);
    assert_eq!(found[0].verify_hostname, Some(true));
    let thumbprint = found[0].thumbprint_sha1.clone().ok_or("no thumbprint")?;
    let deleted = client
        .delete_trusted_certs(&[thumbprint.as_str()], &GraphmanOptions::default())
        .await?;
    assert!(deleted.changed());
    assert!(client.trusted_certs_by_name("partner").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn export_install_and_delete_bundles_round_trip() -> TestResult {
    let source = twin().await?;
    let target = twin().await?;
    let from = client(&source).await?;
    let to = client(&target).await?;
    from.install_bundle(&bundle()?, &GraphmanOptions::default())
        .await?;
    let folders = from.folders().await?;
    assert_eq!(folders.len(), 1);
    assert_eq!(
        from.folder_by_path("/apis")
            .await?
            .map(|f| f.name)
            .as_deref(),
        Some("apis")
    );
    let everything = from.export(None).await?;
    assert_eq!(everything.entities("services").len(), 1);
    assert_eq!(everything.entities("folders").len(), 1);
    let selection = Layer7Selection {
        services: vec!["/orders".to_owned()],
        folders: vec!["/apis".to_owned()],
        policies: vec!["auth".to_owned()],
        cluster_properties: vec!["io.timeout".to_owned()],
    };
    let selected = from.export(Some(&selection)).await?;
    // The folder brings its policy and service again: each entity is exported once.
    for section in ["folders", "policies", "services", "clusterProperties"] {
        assert_eq!(
            selected.entities(section).len(),
            1,
            "{section}: {}",
            selected.to_json()
        );
    }
    let installed = to
        .install_bundle(&everything, &GraphmanOptions::default())
        .await?;
    assert!(
        installed.statuses.iter().all(|s| s.status == "CREATED"),
        "{:?}",
        installed.statuses
    );
    let copy = to.export(None).await?;
    let difference = super::graphman::bundle::diff(&everything, &copy);
    assert!(difference.is_empty(), "{difference:?}");
    let deleted = to
        .delete_bundle(&everything, &GraphmanOptions::default())
        .await?;
    assert!(
        deleted.statuses.iter().all(|s| s.status == "DELETED"),
        "{:?}",
        deleted.statuses
    );
    assert!(to.service_by_resolution_path("/orders").await?.is_none());
    assert!(to.folders().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn test_mode_changes_nothing_even_in_a_dry_run() -> TestResult {
    let twin = twin().await?;
    let dry = Layer7Gateway::for_step(&context(&twin, true))
        .await?
        .graphman;
    let tested = dry
        .install_bundle(&bundle()?, &GraphmanOptions::test())
        .await?;
    assert!(tested.statuses.iter().any(|s| s.status == "CREATED"));
    assert!(dry.service_by_resolution_path("/orders").await?.is_none());
    let refused = dry
        .install_bundle(&bundle()?, &GraphmanOptions::default())
        .await
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(refused.contains("dry run"), "{refused}");
    assert_eq!(writes(&twin).await?, 0);
    Ok(())
}

#[tokio::test]
async fn an_error_status_names_the_entity_and_commits_nothing() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin).await?;
    let mut broken = bundle()?;
    broken.sections.insert(
        "services".to_owned(),
        json!([{"name": "lost", "resolutionPath": "/lost", "folderPath": "/nowhere", "policy": {"xml": "<x/>"}}]),
    );
    let error = client
        .install_bundle(&broken, &GraphmanOptions::default())
        .await
        .err()
        .ok_or("no error")?;
    let message = error.to_string();
    assert!(
        matches!(
            error,
            Layer7Error::Graphql { .. } | Layer7Error::Entity { .. }
        ),
        "{message}"
    );
    assert!(message.contains("/lost"), "{message}");
    assert!(
        message.contains("folder /nowhere does not exist"),
        "{message}"
    );
    assert!(
        client
            .cluster_property_by_name("io.timeout")
            .await?
            .is_none()
    );
    assert_eq!(writes(&twin).await?, 0);
    Ok(())
}

#[tokio::test]
async fn encass_configs_are_read_by_name() -> TestResult {
    let twin = twin().await?;
    let client = client(&twin).await?;
    let mut with_encass = bundle()?;
    with_encass.sections.insert(
        "encassConfigs".to_owned(),
        json!([{"name": "Auth", "policyName": "auth"}]),
    );
    client
        .install_bundle(&with_encass, &GraphmanOptions::default())
        .await?;
    let encass = client
        .encass_config_by_name("Auth")
        .await?
        .ok_or("missing")?;
    assert_eq!(encass.policy_name.as_deref(), Some("auth"));
    assert_eq!(client.encass_configs().await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_is_a_401() -> TestResult {
    let twin = twin().await?;
    let client = Layer7Gateway::for_step(&context_with(&twin, false, "wrong"))
        .await?
        .graphman;
    let error = client.node_info().await.err().ok_or("no error")?;
    assert!(
        matches!(error, Layer7Error::Unauthorized { status: 401, .. }),
        "{error}"
    );
    Ok(())
}
