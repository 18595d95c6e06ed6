//! `layer7.key_rotate` and `layer7.listen_port` against a real Layer7 twin over loopback,
//! its HTTPS listen ports served on loopback: generate and pem, the served certificate
//! proved by handshake, undo, dry run, refusals before any write, faults on each write,
//! a failed verification rolled back, probe, and `tls.inspect` trusting the new
//! certificate through the rotation's `certificate_pem` output.

use std::time::Duration;

use runsheet_engine::{Action, Probe, StepContext};
use runsheet_twin::layer7::Layer7Twin;
use serde_json::{Value, json};

use super::gateway::Layer7Gateway;
use super::graphman::GraphmanOptions;
use super::key_material::KeyCertificate;
use super::key_material::tests::key_and_chain;
use super::key_rotate::Layer7KeyRotate;
use super::listen_port::Layer7ListenPort;
use super::listen_port_keys::{KeyRef, read_key, read_port};
use super::twin_support::{context, control, twin, writes};
use crate::kong::certificate_check::sha256_hex;
use crate::served_certificate::{TlsEndpoint, served_leaf};
use crate::test_support::TestResult;

/// The twin's default HTTPS listen ports.
const PORT_8443: &str = "Default HTTPS (8443)";
const PORT_9443: &str = "Default HTTPS (9443)";

/// A twin with the control endpoint on and its HTTPS listen ports served.
async fn serving_twin() -> TestResult<Layer7Twin> {
    let mut twin = twin().await?;
    twin.serve_listen_ports().await?;
    Ok(twin)
}

/// The gateway of a read-only context.
async fn gateway(twin: &Layer7Twin) -> TestResult<Layer7Gateway> {
    Ok(Layer7Gateway::for_step(&context(twin, true)).await?)
}

/// The DER of the leaf certificate listen port `name` serves now.
async fn served(twin: &Layer7Twin, name: &str) -> TestResult<Vec<u8>> {
    let gateway = gateway(twin).await?;
    let port = read_port(&gateway, name)
        .await?
        .ok_or_else(|| format!("no listen port {name}"))?;
    let endpoint = TlsEndpoint {
        host: "127.0.0.1".to_owned(),
        port: port.port,
    };
    Ok(served_leaf(
        &endpoint,
        "127.0.0.1",
        std::path::Path::new("."),
        Duration::from_secs(5),
    )
    .await?)
}

/// The key alias listen port `name` names.
async fn port_alias(twin: &Layer7Twin, name: &str) -> TestResult<Option<String>> {
    let gateway = gateway(twin).await?;
    Ok(read_port(&gateway, name)
        .await?
        .and_then(|port| port.named_key)
        .map(|key| key.alias))
}

/// Whether the twin holds key `alias` in the software keystore.
async fn has_key(twin: &Layer7Twin, alias: &str) -> TestResult<bool> {
    let gateway = gateway(twin).await?;
    Ok(
        read_key(&gateway, &KeyRef::new(super::SOFTWARE_KEYSTORE, alias))
            .await?
            .is_some(),
    )
}

/// Arguments generating key `alias` for `ports`.
fn generate(alias: &str, ports: &[&str]) -> Value {
    json!({"alias": alias, "listen_ports": ports, "generate": {"dn": "CN=rotated.example"}})
}

/// The error text of a failed step.
fn error_text<T: std::fmt::Debug>(result: Result<T, runsheet_engine::ActionError>) -> String {
    match result {
        Ok(value) => format!("unexpected success: {value:?}"),
        Err(error) => error.to_string(),
    }
}

/// Injects a failure of the `nth` write from now.
async fn fail_write(twin: &Layer7Twin, nth: u64) -> TestResult {
    control(
        twin,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"fail_nth_write": nth, "status": 500})),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn generate_switches_the_ports_the_handshake_shows_it_and_undo_brings_the_old_one_back()
-> TestResult {
    let twin = serving_twin().await?;
    let old = served(&twin, PORT_8443).await?;
    assert_eq!(served(&twin, PORT_9443).await?, old);
    let action = Layer7KeyRotate::new();
    let arguments = generate("ssl-2026", &[PORT_8443, PORT_9443]);
    let applied = action
        .apply(&context(&twin, false), arguments.clone())
        .await?;

    let new = served(&twin, PORT_8443).await?;
    assert_ne!(new, old);
    assert_eq!(served(&twin, PORT_9443).await?, new);
    let outputs = &applied.outputs;
    assert_eq!(outputs["thumbprint"], json!(sha256_hex(&new)));
    assert_eq!(outputs["subject"], "CN=rotated.example");
    assert_eq!(outputs["alias"], "ssl-2026");
    assert_eq!(
        outputs["key_id"],
        json!(format!("{}:ssl-2026", super::SOFTWARE_KEYSTORE))
    );
    assert_eq!(outputs["created"], true);
    assert_eq!(outputs["changed"], true);
    assert_eq!(outputs["host"], "127.0.0.1");
    assert_eq!(outputs["ports"][0]["previous_alias"], "ssl");
    let pem = outputs["certificate_pem"].as_str().unwrap_or_default();
    let from_pem = rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .ok_or("no certificate in certificate_pem")??;
    assert_eq!(from_pem.to_vec(), new);
    assert!(KeyCertificate::from_der(new.clone())?.not_after > jiff::Timestamp::now().as_second());
    assert_eq!(
        port_alias(&twin, PORT_8443).await?.as_deref(),
        Some("ssl-2026")
    );
    let change = applied.change.ok_or("no change reported")?;
    assert!(
        change.summary.contains("created key `ssl-2026`"),
        "{}",
        change.summary
    );

    let undo = applied.undo.ok_or("no undo record")?;
    action.undo(&context(&twin, false), arguments, undo).await?;
    assert_eq!(served(&twin, PORT_8443).await?, old);
    assert_eq!(served(&twin, PORT_9443).await?, old);
    assert_eq!(port_alias(&twin, PORT_9443).await?.as_deref(), Some("ssl"));
    assert!(!has_key(&twin, "ssl-2026").await?, "undo left the key");
    Ok(())
}

#[tokio::test]
async fn a_pem_key_is_imported_served_and_a_rerun_changes_nothing() -> TestResult {
    let twin = serving_twin().await?;
    let pem = key_and_chain("api.example.com")?;
    let action = Layer7KeyRotate::new();
    let arguments = json!({"alias": "api-2026", "listen_ports": [PORT_8443], "pem": pem});
    let applied = action
        .apply(&context(&twin, false), arguments.clone())
        .await?;
    let new = served(&twin, PORT_8443).await?;
    let leaf = rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .ok_or("no certificate")??;
    assert_eq!(new, leaf.to_vec());
    assert_eq!(applied.outputs["thumbprint"], json!(sha256_hex(&new)));
    assert!(applied.secrets.contains(&pem), "the pem is not masked");
    let undo_text = applied
        .undo
        .as_ref()
        .map(Value::to_string)
        .unwrap_or_default();
    assert!(!undo_text.contains("PRIVATE KEY"), "{undo_text}");
    assert!(
        !applied
            .outputs
            .values()
            .any(|value| value.to_string().contains("PRIVATE KEY")),
        "an output holds the key"
    );

    let before = writes(&twin).await?;
    let again = action
        .apply(&context(&twin, false), arguments.clone())
        .await?;
    assert_eq!(writes(&twin).await?, before, "a rerun wrote");
    assert_eq!(again.outputs["changed"], false);
    assert!(again.undo.is_none());
    let plan = action.plan(&context(&twin, true), arguments).await?;
    assert_eq!(plan.changes, Some(false), "{}", plan.summary);
    Ok(())
}

#[tokio::test]
async fn a_dry_run_plans_the_change_and_writes_nothing() -> TestResult {
    let twin = serving_twin().await?;
    let action = Layer7KeyRotate::new();
    let plan = action
        .plan(
            &context(&twin, true),
            generate("ssl-2026", &[PORT_8443, PORT_9443]),
        )
        .await?;
    assert_eq!(plan.changes, Some(true));
    assert!(
        plan.summary.contains("create key `ssl-2026`")
            && plan.summary.contains("CN=rotated.example")
            && plan
                .summary
                .contains("`Default HTTPS (9443)` (`ssl` -> `ssl-2026`)"),
        "{}",
        plan.summary
    );
    let after = plan.after.unwrap_or_default();
    assert!(after.contains("key `ssl-2026`"), "{after}");
    assert!(plan.before.unwrap_or_default().contains("key `ssl`"));
    let pem = key_and_chain("api.example.com")?;
    let plan = action
        .plan(
            &context(&twin, true),
            json!({"alias": "api", "listen_ports": [PORT_8443], "pem": pem}),
        )
        .await?;
    assert!(
        plan.summary.contains("from pem: CN=api.example.com"),
        "{}",
        plan.summary
    );
    assert!(!plan.summary.contains("PRIVATE"), "{}", plan.summary);
    assert_eq!(writes(&twin).await?, 0);
    assert!(!has_key(&twin, "ssl-2026").await?);
    Ok(())
}

#[tokio::test]
async fn refusals_come_before_any_write() -> TestResult {
    let twin = serving_twin().await?;
    let action = Layer7KeyRotate::new();
    let apply = |arguments: Value| {
        let context = context(&twin, false);
        let action = action.clone();
        async move { action.apply(&context, arguments).await }
    };
    let unknown = error_text(apply(generate("n", &[PORT_8443, "Nope (1)"])).await);
    assert!(
        unknown.contains("no listen port named `Nope (1)`"),
        "{unknown}"
    );
    assert!(unknown.contains("nothing was changed"), "{unknown}");
    let http = error_text(apply(generate("n", &["Default HTTP (8080)"])).await);
    assert!(http.contains("is HTTP, not HTTPS"), "{http}");

    let pem = key_and_chain("api.example.com")?;
    let other = key_and_chain("other.example.com")?;
    let key_only = pem
        .split("-----BEGIN CERTIFICATE-----")
        .next()
        .unwrap_or_default()
        .to_owned();
    let other_cert = other
        .find("-----BEGIN CERTIFICATE-----")
        .and_then(|start| other.get(start..))
        .unwrap_or_default();
    let mismatched = format!("{key_only}{other_cert}");
    let refused = error_text(
        apply(json!({"alias": "n", "listen_ports": [PORT_8443], "pem": mismatched})).await,
    );
    assert!(refused.contains("does not match"), "{refused}");
    assert!(!refused.contains("PRIVATE KEY-----"), "{refused}");
    let bad = error_text(
        apply(json!({"alias": "n", "listen_ports": [PORT_8443], "pem": "not a pem"})).await,
    );
    assert!(bad.contains("no private key"), "{bad}");
    let taken =
        error_text(apply(json!({"alias": "ssl", "listen_ports": [PORT_8443], "pem": pem})).await);
    assert!(
        taken.contains("exists already with another certificate"),
        "{taken}"
    );
    let twice = error_text(apply(generate("n", &[PORT_8443, PORT_8443])).await);
    assert!(twice.contains("named twice"), "{twice}");
    assert_eq!(writes(&twin).await?, 0);
    assert!(!has_key(&twin, "n").await?);

    // `generate` with an alias that exists while a port presents another key.
    apply(json!({"alias": "api", "listen_ports": [PORT_8443], "pem": pem})).await?;
    let before = writes(&twin).await?;
    let generated = error_text(apply(generate("ssl", &[PORT_8443])).await);
    assert!(generated.contains("choose an unused alias"), "{generated}");
    assert_eq!(writes(&twin).await?, before);
    Ok(())
}

#[tokio::test]
async fn a_fault_on_any_write_leaves_the_twin_as_it_was() -> TestResult {
    // Writes: 1 create the key, 2 switch 8443, 3 switch 9443.
    for nth in 1..=3 {
        let twin = serving_twin().await?;
        let old = served(&twin, PORT_8443).await?;
        fail_write(&twin, nth).await?;
        let error = error_text(
            Layer7KeyRotate::new()
                .apply(
                    &context(&twin, false),
                    generate("ssl-2026", &[PORT_8443, PORT_9443]),
                )
                .await,
        );
        if nth == 1 {
            assert!(
                error.contains("creating private key `ssl-2026` failed"),
                "{error}"
            );
            assert!(error.contains("no listen port was changed"), "{error}");
        } else {
            assert!(error.contains("rolled back"), "write {nth}: {error}");
            assert!(
                error.contains("key `ssl-2026` was deleted"),
                "write {nth}: {error}"
            );
        }
        assert_eq!(served(&twin, PORT_8443).await?, old, "write {nth}");
        assert_eq!(served(&twin, PORT_9443).await?, old, "write {nth}");
        assert_eq!(port_alias(&twin, PORT_8443).await?.as_deref(), Some("ssl"));
        assert_eq!(port_alias(&twin, PORT_9443).await?.as_deref(), Some("ssl"));
        assert!(
            !has_key(&twin, "ssl-2026").await?,
            "write {nth} left the key"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_failed_rollback_names_what_is_left() -> TestResult {
    let twin = serving_twin().await?;
    // Writes: 1 create, 2 switch 8443, 3 switch 9443 (fails), 4 switch 8443 back (fails).
    control(
        &twin,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"fail_nth_write": 3, "status": 500, "probability": 1.0, "times": 2})),
    )
    .await?;
    let outcome = Layer7KeyRotate::new()
        .apply(
            &context(&twin, false),
            generate("ssl-2026", &[PORT_8443, PORT_9443]),
        )
        .await;
    // Typed, so that the run ends needing attention rather than "rolled back".
    match &outcome {
        Err(runsheet_engine::ActionError::PartiallyApplied { changes_left, .. }) => assert!(
            changes_left
                .iter()
                .any(|item| item.starts_with("listen port `Default HTTPS (8443)`")),
            "{changes_left:?}"
        ),
        other => return Err(format!("not a partial apply: {other:?}").into()),
    }
    let error = error_text(outcome);
    assert!(error.contains("rolling back failed"), "{error}");
    assert!(error.contains("`Default HTTPS (8443)`"), "{error}");
    assert!(error.contains("the key is kept"), "{error}");
    Ok(())
}

#[tokio::test]
async fn a_port_that_does_not_serve_the_new_key_is_rolled_back() -> TestResult {
    let twin = serving_twin().await?;
    // An HTTPS listen port whose address answers no TLS: the handshake fails.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = silent.local_addr()?.port();
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = silent.accept().await {
            drop(stream);
        }
    });
    let gateway = Layer7Gateway::for_step(&context(&twin, false)).await?;
    gateway
        .graphman
        .set_listen_ports(
            &[
                json!({"name": "Broken HTTPS", "protocol": "HTTPS", "port": port, "enabled": true,
                "tlsSettings": {"keystoreId": super::SOFTWARE_KEYSTORE, "keyAlias": "ssl"}}),
            ],
            &GraphmanOptions::default(),
        )
        .await?;
    let mut step = context(&twin, false);
    step.timeout = Some(Duration::from_secs(1));
    let error = error_text(
        Layer7KeyRotate::new()
            .apply(&step, generate("ssl-2026", &[PORT_8443, "Broken HTTPS"]))
            .await,
    );
    accept.abort();
    assert!(
        error.contains("listen port `Broken HTTPS` does not serve the new certificate"),
        "{error}"
    );
    assert!(error.contains("rolled back"), "{error}");
    assert_eq!(port_alias(&twin, PORT_8443).await?.as_deref(), Some("ssl"));
    assert_eq!(
        port_alias(&twin, "Broken HTTPS").await?.as_deref(),
        Some("ssl")
    );
    assert!(!has_key(&twin, "ssl-2026").await?);
    Ok(())
}

#[tokio::test]
async fn probe_says_done_only_when_every_port_presents_the_key() -> TestResult {
    let twin = serving_twin().await?;
    let action = Layer7KeyRotate::new();
    let arguments = generate("ssl-2026", &[PORT_8443]);
    let step: StepContext = context(&twin, false);
    assert!(matches!(
        action.probe(&step, arguments.clone()).await?,
        Probe::NotDone
    ));
    action.apply(&step, arguments.clone()).await?;
    let Probe::Done(found) = action.probe(&step, arguments.clone()).await? else {
        return Err("a finished rotation was not found done".into());
    };
    assert_eq!(found.outputs["alias"], "ssl-2026");
    let lost = found.undo.ok_or("no undo record")?;
    let refused = error_text(action.undo(&step, arguments, lost).await);
    assert!(refused.contains("switch listen ports"), "{refused}");
    let wider = generate("ssl-2026", &[PORT_8443, PORT_9443]);
    assert!(matches!(
        action.probe(&step, wider).await?,
        Probe::Unknown(_)
    ));
    Ok(())
}

#[tokio::test]
async fn listen_port_reads_the_port_and_tls_inspect_trusts_the_rotated_certificate() -> TestResult {
    let twin = serving_twin().await?;
    let read = Layer7ListenPort::new()
        .apply(&context(&twin, true), json!({"name": PORT_8443}))
        .await?;
    assert_eq!(read.outputs["alias"], "ssl");
    assert_eq!(read.outputs["protocol"], "HTTPS");
    let old = served(&twin, PORT_8443).await?;
    assert_eq!(
        read.outputs["certificate"]["thumbprint"],
        json!(sha256_hex(&old))
    );
    assert_eq!(writes(&twin).await?, 0);

    let applied = Layer7KeyRotate::new()
        .apply(&context(&twin, false), generate("ssl-2026", &[PORT_8443]))
        .await?;
    let inspect = crate::registry()?
        .get("tls.inspect")
        .ok_or("no tls.inspect")?
        .apply(
            &context(&twin, true),
            json!({
                "host": "127.0.0.1",
                "port": read.outputs["port"],
                "server_name": "rotated.example",
                "ca": applied.outputs["certificate_pem"],
            }),
        )
        .await?;
    assert_eq!(inspect.outputs["not_after"], applied.outputs["not_after"]);
    let missing = error_text(
        Layer7ListenPort::new()
            .apply(&context(&twin, true), json!({"name": "Nope"}))
            .await,
    );
    assert!(missing.contains("no listen port named `Nope`"), "{missing}");
    Ok(())
}

#[tokio::test]
async fn undo_leaves_a_port_changed_since_and_says_so() -> TestResult {
    let twin = serving_twin().await?;
    let old = served(&twin, PORT_8443).await?;
    let action = Layer7KeyRotate::new();
    let arguments = generate("ssl-2026", &[PORT_8443, PORT_9443]);
    let applied = action
        .apply(&context(&twin, false), arguments.clone())
        .await?;
    // Someone moves 9443 to a third key after the rotation.
    let gateway = Layer7Gateway::for_step(&context(&twin, false)).await?;
    gateway
        .restman
        .create_private_key(
            super::SOFTWARE_KEYSTORE,
            "third",
            &super::restman::PrivateKeyCreationContext::rsa("CN=third.example", 2048, 30),
        )
        .await?;
    super::listen_port_keys::switch_port(
        &gateway,
        PORT_9443,
        &KeyRef::new(super::SOFTWARE_KEYSTORE, "third"),
    )
    .await?;
    let undo = applied.undo.ok_or("no undo record")?;
    let error = error_text(action.undo(&context(&twin, false), arguments, undo).await);
    assert!(
        error.contains("listen port `Default HTTPS (9443)` presents key `third` now"),
        "{error}"
    );
    assert!(error.contains("key `ssl-2026`"), "{error}");
    assert!(
        error.contains("restored and verified: `Default HTTPS (8443)`"),
        "{error}"
    );
    assert_eq!(served(&twin, PORT_8443).await?, old);
    assert_eq!(
        port_alias(&twin, PORT_9443).await?.as_deref(),
        Some("third")
    );
    assert!(
        has_key(&twin, "ssl-2026").await?,
        "the key was deleted although undo stopped"
    );
    Ok(())
}
