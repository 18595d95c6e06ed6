//! `kong.key_rotate` and `kong.cert_rotate` against a running Kong twin over loopback:
//! keys checked through the twin's proxy (key-auth in front of a twin node), certificates
//! through its TLS proxy (served by SNI), write faults at every position, interrupted
//! applies, overlap expiry, undo, probe and dry runs.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, KeyPair};
use runsheet_engine::{Action, ActionError, Applied, Probe};
use runsheet_twin::kong::KongTwin;
use runsheet_twin::node::NodeHandle;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::cert_rotate::KongCertRotate;
use super::certificate_check::leaf_der;
use super::key_rotate::KongKeyRotate;
use crate::served_certificate::{TlsEndpoint, served_leaf, server_name_for};
use super::twin_tests::{client, context, control, twin, with_request_timeout};
use crate::test_support::TestResult;

/// The consumer's keys before a rotation.
const OLD_KEYS: [&str; 2] = ["old-key-one-0001", "old-key-two-0002"];

/// How long the fault tests wait for an answer, and look for a write whose answer never came.
const LOOK_AGAIN: Duration = Duration::from_secs(3);

/// The new key the fault tests rotate to (known, so that the proxy can be asked).
const NEW_KEY: &str = "new-key-three-0003";

/// A twin with a proxy, a node behind `/orders` protected by key-auth, and consumer
/// `alice` with the two [`OLD_KEYS`].
struct KeyLab {
    twin: KongTwin,
    _node: NodeHandle,
    _dir: tempfile::TempDir,
}

impl KeyLab {
    /// Starts the twin, its proxy and the node, and seeds them.
    async fn start() -> TestResult<Self> {
        let mut twin = twin().await?;
        twin.start_proxy().await?;
        let dir = tempfile::tempdir()?;
        let node = runsheet_twin::node::serve(
            TcpListener::bind("127.0.0.1:0").await?,
            dir.path(),
            "3.9.0",
        )
        .await?;
        twin.load(&json!({
            "_format_version": "3.0",
            "services": [{
                "name": "orders",
                "url": node.url(),
                "routes": [{
                    "name": "orders",
                    "paths": ["/orders"],
                    "plugins": [{"name": "key-auth", "config": {"key_names": ["x-api-key"]}}]
                }]
            }],
            "consumers": [{
                "username": "alice",
                "keyauth_credentials": [{"key": OLD_KEYS[0]}, {"key": OLD_KEYS[1]}]
            }]
        }))
        .map_err(|error| format!("seed: {}", error.body()))?;
        Ok(Self {
            twin,
            _node: node,
            _dir: dir,
        })
    }

    /// The status the proxy answers to `GET /orders` with `key`.
    async fn status(&self, key: &str) -> TestResult<u16> {
        let url = format!("{}/orders", self.twin.proxy_url().ok_or("no proxy")?);
        let response = reqwest::Client::new()
            .get(url)
            .header("x-api-key", key)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    /// Whether at least one of `keys` authenticates through the proxy.
    async fn any_accepted(&self, keys: &[&str]) -> TestResult<bool> {
        for key in keys {
            if self.status(key).await? == 200 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The key-auth credentials of alice, as the Admin API lists them.
    async fn keys(&self) -> TestResult<Vec<Value>> {
        let client = client(&self.twin, false).await?;
        Ok(client.list("/consumers/alice/key-auth").await?)
    }
}

/// The twin's write counter.
async fn writes(twin: &KongTwin) -> TestResult<u64> {
    let counters = control(twin, reqwest::Method::GET, "/_twin/counters", None).await?;
    Ok(counters["writes"].as_u64().unwrap_or(0))
}

/// Injects a fault on the `nth` write from now: a 500 answer, or a dropped connection.
async fn fault(twin: &KongTwin, nth: u64, drop: bool) -> TestResult {
    let body = if drop {
        json!({"drop_nth_write": nth})
    } else {
        json!({"fail_nth_write": nth, "status": 500})
    };
    control(twin, reqwest::Method::POST, "/_twin/faults", Some(body)).await?;
    Ok(())
}

/// Clears every fault.
async fn clear_faults(twin: &KongTwin) -> TestResult {
    control(twin, reqwest::Method::DELETE, "/_twin/faults", None).await?;
    Ok(())
}

/// A string output.
fn output<'a>(applied: &'a Applied, name: &str) -> &'a str {
    applied
        .outputs
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// What a failed action said, or an error when it succeeded.
fn failure<T: std::fmt::Debug>(outcome: Result<T, ActionError>) -> TestResult<String> {
    match outcome {
        Ok(value) => Err(format!("expected a failure, got {value:?}").into()),
        Err(error) => Ok(error.to_string()),
    }
}

#[tokio::test]
async fn key_rotation_checks_the_new_key_then_deletes_the_old_ones_and_undo_restores_them()
-> TestResult {
    let lab = KeyLab::start().await?;
    let old_ids: Vec<Value> = lab
        .keys()
        .await?
        .iter()
        .map(|key| key["id"].clone())
        .collect();
    let action = KongKeyRotate::new();
    let context = context(&lab.twin, false, None);
    let applied = action
        .apply(&context, json!({"consumer": "alice", "generate": true}))
        .await?;

    let new_key = output(&applied, "key").to_owned();
    assert_eq!(new_key.len(), 32, "Kong generates 32 characters");
    assert!(
        applied.secrets.contains(&new_key),
        "the new key is a secret"
    );
    for old in OLD_KEYS {
        assert!(
            applied.secrets.iter().any(|s| s == old),
            "old keys in the undo record are secrets"
        );
    }
    assert!(output(&applied, "rotation_id").starts_with("alice-"));
    let mut revoked: Vec<Value> = applied.outputs["revoked"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    revoked.sort_by_key(Value::to_string);
    let mut expected = old_ids.clone();
    expected.sort_by_key(Value::to_string);
    assert_eq!(revoked, expected);
    assert_eq!(applied.outputs["old_keys_expire_at"], Value::Null);
    let change = applied.change.clone().ok_or("no change")?;
    let undo = applied.undo.clone().ok_or("no undo record")?;
    for text in [
        change.summary.as_str(),
        change.before.as_deref().unwrap_or_default(),
        change.after.as_deref().unwrap_or_default(),
    ] {
        assert!(
            !text.contains(&new_key) && !OLD_KEYS.iter().any(|old| text.contains(old)),
            "{text}"
        );
    }
    assert!(
        change.summary.contains("accepted through /orders"),
        "{}",
        change.summary
    );

    assert_eq!(lab.status(&new_key).await?, 200);
    for old in OLD_KEYS {
        assert_eq!(lab.status(old).await?, 401, "{old} revoked");
    }
    let keys = lab.keys().await?;
    assert_eq!(keys.len(), 1);
    assert_eq!(
        keys[0]["tags"],
        json!([format!(
            "runsheet-rotation:{}",
            output(&applied, "rotation_id")
        )])
    );

    action.undo(&context, Value::Null, undo.clone()).await?;
    for old in OLD_KEYS {
        assert_eq!(lab.status(old).await?, 200, "{old} restored");
    }
    assert_eq!(lab.status(&new_key).await?, 401, "the new key is revoked");
    let mut restored: Vec<Value> = lab
        .keys()
        .await?
        .iter()
        .map(|key| key["id"].clone())
        .collect();
    restored.sort_by_key(Value::to_string);
    assert_eq!(restored, expected, "restored with their ids");
    // Undo twice changes nothing and still fails nobody.
    action.undo(&context, Value::Null, undo).await?;
    assert_eq!(lab.status(OLD_KEYS[0]).await?, 200);
    Ok(())
}

#[tokio::test]
async fn with_an_overlap_both_keys_work_until_the_old_ones_expire() -> TestResult {
    let lab = KeyLab::start().await?;
    let action = KongKeyRotate::new();
    let context = context(&lab.twin, false, None);
    let applied = action
        .apply(
            &context,
            json!({"consumer": "alice", "key": NEW_KEY, "overlap": "2s"}),
        )
        .await?;
    assert_eq!(output(&applied, "key"), NEW_KEY);
    assert!(!output(&applied, "old_keys_expire_at").is_empty());
    assert_eq!(applied.outputs["revoked"].as_array().map(Vec::len), Some(2));
    assert_eq!(lab.status(NEW_KEY).await?, 200);
    for old in OLD_KEYS {
        assert_eq!(
            lab.status(old).await?,
            200,
            "{old} works inside the overlap"
        );
    }

    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(lab.status(NEW_KEY).await?, 200);
    for old in OLD_KEYS {
        assert_eq!(
            lab.status(old).await?,
            401,
            "{old} expired after the overlap"
        );
    }

    // Undo after the overlap re-creates the expired keys, then revokes the new one.
    let undo = applied.undo.ok_or("no undo record")?;
    action.undo(&context, Value::Null, undo).await?;
    for old in OLD_KEYS {
        assert_eq!(lab.status(old).await?, 200, "{old} re-created");
    }
    assert_eq!(lab.status(NEW_KEY).await?, 401);
    assert!(
        lab.keys().await?.iter().all(|key| key["ttl"].is_null()),
        "no expiry after undo"
    );
    Ok(())
}

#[tokio::test]
async fn undo_during_the_overlap_cancels_the_expiry() -> TestResult {
    let lab = KeyLab::start().await?;
    let action = KongKeyRotate::new();
    let context = context(&lab.twin, false, None);
    let applied = action
        .apply(
            &context,
            json!({"consumer": "alice", "generate": true, "overlap": "1h"}),
        )
        .await?;
    assert!(
        lab.keys()
            .await?
            .iter()
            .filter(|key| key["ttl"].is_number())
            .count()
            == 2
    );
    action
        .undo(
            &context,
            Value::Null,
            applied.undo.clone().ok_or("no undo")?,
        )
        .await?;
    let keys = lab.keys().await?;
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|key| key["ttl"].is_null()), "{keys:?}");
    assert_eq!(lab.status(output(&applied, "key")).await?, 401);
    Ok(())
}

#[tokio::test]
async fn a_new_key_the_proxy_refuses_is_deleted_and_the_old_keys_stay() -> TestResult {
    let lab = KeyLab::start().await?;
    let context = context(&lab.twin, false, None);
    // The key goes in a header key-auth does not read: the proxy answers 401.
    let outcome = KongKeyRotate::new()
        .apply(
            &context,
            json!({"consumer": "alice", "key": NEW_KEY,
                   "verify": {"header": "x-wrong", "timeout": "1s"}}),
        )
        .await;
    let message = failure(outcome)?;
    assert!(
        message.contains("was not accepted through the proxy"),
        "{message}"
    );
    assert!(message.contains("it was deleted"), "{message}");
    assert!(!message.contains(NEW_KEY), "no key in messages: {message}");
    assert_eq!(lab.keys().await?.len(), 2);
    assert_eq!(lab.status(NEW_KEY).await?, 401);
    for old in OLD_KEYS {
        assert_eq!(lab.status(old).await?, 200);
    }
    Ok(())
}

#[tokio::test]
async fn without_a_protected_route_nothing_is_written() -> TestResult {
    let lab = KeyLab::start().await?;
    let client = client(&lab.twin, false).await?;
    let plugins = client.list("/plugins").await?;
    for plugin in plugins {
        client
            .delete(&format!(
                "/plugins/{}",
                plugin["id"].as_str().unwrap_or_default()
            ))
            .await?;
    }
    let before = writes(&lab.twin).await?;
    let context = context(&lab.twin, false, None);
    let message = failure(
        KongKeyRotate::new()
            .apply(&context, json!({"consumer": "alice", "generate": true}))
            .await,
    )?;
    assert!(message.contains("verify.path"), "{message}");
    // A path that is not protected cannot prove a key either.
    let message = failure(
        KongKeyRotate::new()
            .apply(
                &context,
                json!({"consumer": "alice", "generate": true, "verify": {"path": "/orders"}}),
            )
            .await,
    )?;
    assert!(message.contains("cannot prove anything"), "{message}");
    let message = failure(
        KongKeyRotate::new()
            .apply(&context, json!({"consumer": "bob", "generate": true}))
            .await,
    )?;
    assert!(message.contains("consumer `bob` not found"), "{message}");
    assert_eq!(writes(&lab.twin).await?, before);
    Ok(())
}

#[tokio::test]
async fn key_rotation_plan_describes_and_writes_nothing() -> TestResult {
    let lab = KeyLab::start().await?;
    let dry = context(&lab.twin, true, None);
    let action = KongKeyRotate::new();
    let change = action
        .plan(
            &dry,
            json!({"consumer": "alice", "generate": true, "overlap": "5m"}),
        )
        .await?;
    assert_eq!(
        change.summary,
        "add a key for consumer alice (generated), verify through /orders, old keys (2) expire after 5m"
    );
    assert_eq!(change.changes, Some(true));
    let skipped = action
        .plan(&dry, json!({"consumer": "alice", "key": NEW_KEY, "revoke_old": false, "verify": {"skip": true}}))
        .await?;
    assert_eq!(
        skipped.summary,
        "add a key for consumer alice (given), no verification (verify.skip), old keys (2) kept"
    );
    assert!(!skipped.summary.contains(NEW_KEY));
    assert_eq!(writes(&lab.twin).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_rerun_with_the_same_key_reuses_it_and_probe_tells_what_it_sees() -> TestResult {
    let lab = KeyLab::start().await?;
    let action = KongKeyRotate::new();
    let context = context(&lab.twin, false, None);
    let given = json!({"consumer": "alice", "key": NEW_KEY, "revoke_old": false});
    let generated = json!({"consumer": "alice", "generate": true});
    assert!(matches!(
        action.probe(&context, given.clone()).await?,
        Probe::NotDone
    ));
    assert!(matches!(
        action.probe(&context, generated.clone()).await?,
        Probe::NotDone
    ));

    let first = action.apply(&context, given.clone()).await?;
    let second = action.apply(&context, given.clone()).await?;
    assert_eq!(output(&first, "key_id"), output(&second, "key_id"));
    assert_eq!(
        output(&first, "rotation_id"),
        output(&second, "rotation_id")
    );
    assert_eq!(lab.keys().await?.len(), 3);

    for arguments in [given, generated] {
        match action.probe(&context, arguments).await? {
            Probe::Unknown(why) => {
                assert!(why.contains(output(&first, "key_id")), "{why}");
                assert!(!why.contains(NEW_KEY), "{why}");
            }
            other => return Err(format!("expected Unknown, got {other:?}").into()),
        }
    }
    Ok(())
}

/// The arguments of a rotation to [`NEW_KEY`], with an overlap or not.
fn to_new_key(overlap: bool) -> Value {
    let mut arguments = json!({"consumer": "alice", "key": NEW_KEY});
    if overlap {
        arguments["overlap"] = json!("1h");
    }
    arguments
}

/// Every key alice has had: at least one must always work.
const EVERY_KEY: [&str; 3] = [OLD_KEYS[0], OLD_KEYS[1], NEW_KEY];

/// Runs one rotation with a fault on its `nth` write, then checks that alice still has a
/// key the proxy accepts (and, when the rotation failed, that the old keys still work);
/// whether it failed.
async fn rotate_under_fault(nth: u64, drop: bool, overlap: bool) -> TestResult<bool> {
    let lab = KeyLab::start().await?;
    // A dropped write is looked for again for as long as one answer is waited for.
    let context = with_request_timeout(context(&lab.twin, false, None), LOOK_AGAIN);
    fault(&lab.twin, nth, drop).await?;
    let outcome = KongKeyRotate::new()
        .apply(&context, to_new_key(overlap))
        .await;
    clear_faults(&lab.twin).await?;
    assert!(
        lab.any_accepted(&EVERY_KEY).await?,
        "no valid key after a fault on write {nth} (drop: {drop}, overlap: {overlap}): {outcome:?}"
    );
    let Err(error) = outcome else {
        return Ok(false);
    };
    assert!(!error.to_string().contains(NEW_KEY), "{error}");
    for old in OLD_KEYS {
        assert_eq!(lab.status(old).await?, 200, "{old} after {error}");
    }
    assert_eq!(
        lab.status(NEW_KEY).await?,
        401,
        "the new key is removed after {error}"
    );
    Ok(true)
}

#[tokio::test]
async fn the_consumer_keeps_a_valid_key_whichever_write_of_a_rotation_fails() -> TestResult {
    // A rotation writes 3 times: the add, then one retirement per old key. DELETEs are
    // idempotent and retried by the client, so only the add fails without an overlap;
    // with one, the PATCHes of the ttl are not retried and fail the step too.
    for (overlap, expected_failures) in [(false, 1), (true, 3)] {
        for drop in [false, true] {
            let mut failures = 0;
            for nth in 1..=4 {
                if rotate_under_fault(nth, drop, overlap).await? {
                    failures += 1;
                }
            }
            assert_eq!(
                failures, expected_failures,
                "drop {drop}, overlap {overlap}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_rotation_whose_own_restore_fails_names_what_it_left() -> TestResult {
    let lab = KeyLab::start().await?;
    let context = context(&lab.twin, false, None);
    // The add succeeds; every write after it fails: the retirement, then the restore.
    control(
        &lab.twin,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"fail_nth_write": 2, "status": 500, "probability": 1.0, "seed": 1})),
    )
    .await?;
    let outcome = KongKeyRotate::new()
        .apply(&context, to_new_key(true))
        .await;
    clear_faults(&lab.twin).await?;
    let Err(ActionError::PartiallyApplied {
        message,
        changes_left,
    }) = &outcome
    else {
        return Err(format!("not a partial apply: {outcome:?}").into());
    };
    assert!(message.contains("restoring failed"), "{message}");
    assert!(
        changes_left
            .iter()
            .any(|item| item.starts_with("consumer alice: new key id ")),
        "{changes_left:?}"
    );
    assert!(
        !format!("{message}{changes_left:?}").contains(NEW_KEY),
        "no key value"
    );
    assert!(lab.any_accepted(&EVERY_KEY).await?, "alice keeps a valid key");
    Ok(())
}

#[tokio::test]
async fn the_consumer_keeps_a_valid_key_whichever_write_of_an_undo_fails() -> TestResult {
    // An undo writes 3 times: restore each old key (PUT after a delete, PATCH after an
    // overlap), then delete the new key.
    for overlap in [false, true] {
        for drop in [false, true] {
            for nth in 1..=3 {
                let lab = KeyLab::start().await?;
                let context = context(&lab.twin, false, None);
                let action = KongKeyRotate::new();
                let applied = action.apply(&context, to_new_key(overlap)).await?;
                let undo = applied.undo.ok_or("no undo record")?;
                fault(&lab.twin, nth, drop).await?;
                let outcome = action.undo(&context, Value::Null, undo.clone()).await;
                clear_faults(&lab.twin).await?;
                assert!(
                    lab.any_accepted(&EVERY_KEY).await?,
                    "no valid key after an undo with a fault on write {nth} (drop {drop}, overlap {overlap}): {outcome:?}"
                );
                // Undo again completes it.
                action.undo(&context, Value::Null, undo).await?;
                for old in OLD_KEYS {
                    assert_eq!(lab.status(old).await?, 200);
                }
                assert_eq!(lab.status(NEW_KEY).await?, 401);
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_interrupted_rotation_never_leaves_the_consumer_without_a_key() -> TestResult {
    let lab = KeyLab::start().await?;
    let context = Arc::new(context(&lab.twin, false, None));
    for stop_after_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        let task_context = Arc::clone(&context);
        let task = tokio::spawn(async move {
            KongKeyRotate::new()
                .apply(&task_context, json!({"consumer": "alice", "key": NEW_KEY}))
                .await
        });
        tokio::time::sleep(Duration::from_millis(stop_after_ms)).await;
        task.abort();
        let _ = task.await;
        assert!(
            lab.any_accepted(&EVERY_KEY).await?,
            "no valid key after stopping the rotation at {stop_after_ms} ms"
        );
    }
    Ok(())
}

/// A self-signed certificate for `names` (the first one its CN) and its key, as PEM.
fn certificate(names: &[&str]) -> TestResult<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )?;
    params
        .distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("test"));
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The SNIs the certificate tests use.
const SNIS: [&str; 2] = ["a.example.com", "*.shop.example.com"];

/// A twin with its TLS proxy, and the old certificate on [`SNIS`]: the twin, the old
/// certificate's PEM and its id.
async fn certificate_lab() -> TestResult<(KongTwin, String, String)> {
    let mut twin = twin().await?;
    twin.serve_proxy_tls(TcpListener::bind("127.0.0.1:0").await?, None)
        .await?;
    let (cert, key) = certificate(&SNIS)?;
    twin.load(&json!({
        "_format_version": "3.0",
        "certificates": [{"cert": cert, "key": key, "snis": [{"name": SNIS[0]}, {"name": SNIS[1]}]}]
    }))
    .map_err(|error| format!("seed: {}", error.body()))?;
    let client = client(&twin, false).await?;
    let id = client.get("/snis/a.example.com").await?["certificate"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((twin, cert, id))
}

/// The leaf the twin's TLS proxy presents for `sni`.
async fn served(twin: &KongTwin, sni: &str) -> TestResult<Vec<u8>> {
    let endpoint = TlsEndpoint::parse(&twin.proxy_tls_url().ok_or("no TLS proxy")?)?;
    Ok(served_leaf(
        &endpoint,
        &server_name_for(sni),
        std::path::Path::new("."),
        Duration::from_secs(5),
    )
    .await?)
}

/// How many certificates the twin holds.
async fn certificate_count(twin: &KongTwin) -> TestResult<usize> {
    Ok(client(twin, false)
        .await?
        .list("/certificates")
        .await?
        .len())
}

#[tokio::test]
async fn cert_rotation_moves_the_snis_serves_the_new_certificate_and_undo_moves_them_back()
-> TestResult {
    let (twin, old_cert, old_id) = certificate_lab().await?;
    let (cert, key) = certificate(&["a.example.com", "*.shop.example.com", "b.example.com"])?;
    let new_leaf = leaf_der(&cert).ok_or("no leaf")?;
    let old_leaf = leaf_der(&old_cert).ok_or("no leaf")?;
    for sni in SNIS {
        assert_eq!(served(&twin, sni).await?, old_leaf);
    }
    let action = KongCertRotate::new();
    let context = context(&twin, false, None);
    // The certificate named by one of its SNIs.
    let applied = action
        .apply(
            &context,
            json!({"certificate": "a.example.com", "cert": cert, "key": key}),
        )
        .await?;
    assert_eq!(output(&applied, "previous_certificate_id"), old_id);
    let new_id = output(&applied, "certificate_id").to_owned();
    assert_ne!(new_id, old_id);
    assert_eq!(
        applied.outputs["snis"],
        json!(["*.shop.example.com", "a.example.com"])
    );
    assert!(!output(&applied, "not_after").is_empty());
    assert_eq!(
        applied.secrets,
        vec![key.clone()],
        "the private key is a secret"
    );
    let change = applied.change.clone().ok_or("no change")?;
    assert!(
        change.summary.contains("served through the proxy"),
        "{}",
        change.summary
    );
    assert!(!serde_json::to_string(&applied.outputs)?.contains("PRIVATE KEY"));
    for sni in SNIS {
        assert_eq!(
            served(&twin, sni).await?,
            new_leaf,
            "{sni} serves the new certificate"
        );
    }
    let client = client(&twin, false).await?;
    let stored = client.get(&format!("/certificates/{new_id}")).await?;
    assert_eq!(
        stored["tags"],
        json!([format!(
            "runsheet-rotation:{}",
            output(&applied, "rotation_id")
        )])
    );
    assert!(
        client
            .find(&format!("/certificates/{old_id}"))
            .await?
            .is_some(),
        "old kept"
    );

    action
        .undo(&context, Value::Null, applied.undo.ok_or("no undo")?)
        .await?;
    for sni in SNIS {
        assert_eq!(
            served(&twin, sni).await?,
            old_leaf,
            "{sni} serves the old certificate again"
        );
    }
    assert!(
        client
            .find(&format!("/certificates/{new_id}"))
            .await?
            .is_none(),
        "new deleted"
    );
    Ok(())
}

#[tokio::test]
async fn a_certificate_that_does_not_cover_an_sni_or_match_its_key_writes_nothing() -> TestResult {
    let (twin, _, old_id) = certificate_lab().await?;
    let context = context(&twin, false, None);
    let action = KongCertRotate::new();
    let (narrow, narrow_key) = certificate(&["a.example.com"])?;
    let message = failure(
        action
            .apply(
                &context,
                json!({"certificate": old_id, "cert": narrow, "key": narrow_key}),
            )
            .await,
    )?;
    assert!(
        message.contains("does not cover SNI *.shop.example.com"),
        "{message}"
    );
    assert!(message.contains("nothing was changed"), "{message}");

    // Moving only the covered SNI is fine in a plan.
    let change = action
        .plan(
            &context,
            json!({"certificate": old_id, "cert": narrow, "key": narrow_key, "snis": ["a.example.com"]}),
        )
        .await?;
    assert!(
        change
            .summary
            .starts_with("create certificate (CN=a.example.com, expires "),
        "{}",
        change.summary
    );
    assert!(
        change
            .summary
            .contains(&format!("move SNIs a.example.com from {old_id}")),
        "{}",
        change.summary
    );

    let (cert, _) = certificate(&SNIS)?;
    let (_, other_key) = certificate(&SNIS)?;
    let message = failure(
        action
            .apply(
                &context,
                json!({"certificate": old_id, "cert": cert, "key": other_key}),
            )
            .await,
    )?;
    assert!(message.contains("`key` does not match `cert`"), "{message}");
    assert!(!message.contains("PRIVATE KEY"), "{message}");
    let message = failure(
        action
            .apply(
                &context,
                json!({"certificate": "nope.example.com", "cert": narrow, "key": narrow_key}),
            )
            .await,
    )?;
    assert!(message.contains("no SNI `nope.example.com`"), "{message}");
    assert_eq!(writes(&twin).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_failed_sni_move_is_rolled_back_to_the_old_certificate() -> TestResult {
    // Writes: 1 create, 2 and 3 the SNI moves (a PATCH is not retried). A 500, or a
    // connection dropped before Kong took the move (looked for again, never seen).
    for (nth, drop) in [(2, false), (3, false), (3, true)] {
        let (twin, old_cert, _) = certificate_lab().await?;
        let old_leaf = leaf_der(&old_cert).ok_or("no leaf")?;
        let (cert, key) = certificate(&SNIS)?;
        let context = with_request_timeout(context(&twin, false, None), LOOK_AGAIN);
        fault(&twin, nth, drop).await?;
        let message = failure(
            KongCertRotate::new()
                .apply(
                    &context,
                    json!({"certificate": "a.example.com", "cert": cert, "key": key}),
                )
                .await,
        )?;
        clear_faults(&twin).await?;
        assert!(message.contains("rolled back"), "{message}");
        assert!(!message.contains("rolling back failed"), "{message}");
        assert!(!message.contains("PRIVATE KEY"), "{message}");
        for sni in SNIS {
            assert_eq!(
                served(&twin, sni).await?,
                old_leaf,
                "{sni} after a fault on write {nth} (drop: {drop})"
            );
        }
        assert_eq!(
            certificate_count(&twin).await?,
            1,
            "the new certificate is deleted"
        );
    }
    // A dropped create is looked for (by its rotation tag) and, never seen, left for a
    // person to check: nothing is stored and the SNIs are untouched.
    let (twin, old_cert, _) = certificate_lab().await?;
    let (cert, key) = certificate(&SNIS)?;
    fault(&twin, 1, true).await?;
    let outcome = KongCertRotate::new()
        .apply(
            &with_request_timeout(context(&twin, false, None), LOOK_AGAIN),
            json!({"certificate": "a.example.com", "cert": cert, "key": key}),
        )
        .await;
    clear_faults(&twin).await?;
    let Err(ActionError::PartiallyApplied { message, changes_left }) = outcome else {
        return Err(format!("a dropped create is not in doubt: {outcome:?}").into());
    };
    assert!(
        message.contains("creating the new certificate")
            && message.contains("the connection closed before Kong answered")
            && message.contains("the SNIs are untouched"),
        "{message}"
    );
    assert!(changes_left[0].contains("may still be stored"), "{changes_left:?}");
    assert_eq!(certificate_count(&twin).await?, 1);
    let old_leaf = leaf_der(&old_cert).ok_or("no leaf")?;
    assert_eq!(served(&twin, SNIS[0]).await?, old_leaf);
    Ok(())
}

#[tokio::test]
async fn a_cert_rotation_whose_answers_are_lost_finds_its_writes_and_completes() -> TestResult {
    // Kong applies the write, then the connection closes before its answer: the
    // rotation reads it back, finds it applied, and goes on. Each write is sent once.
    for nth in 1..=3 {
        let (twin, _, _) = certificate_lab().await?;
        let (cert, key) = certificate(&SNIS)?;
        let before = writes(&twin).await?;
        lose_answer(&twin, nth).await?;
        let applied = KongCertRotate::new()
            .apply(
                &with_request_timeout(context(&twin, false, None), LOOK_AGAIN),
                json!({"certificate": "a.example.com", "cert": cert.clone(), "key": key}),
            )
            .await
            .map_err(|error| format!("lost answer on write {nth}: {error}"))?;
        clear_faults(&twin).await?;
        let new_leaf = leaf_der(&cert).ok_or("no leaf")?;
        for sni in SNIS {
            assert_eq!(served(&twin, sni).await?, new_leaf, "{sni}, lost answer on write {nth}");
        }
        assert_eq!(certificate_count(&twin).await?, 2, "old and new, write {nth}");
        assert_eq!(writes(&twin).await? - before, 3, "each write sent once (write {nth})");
        assert!(applied.undo.is_some(), "write {nth}: no undo record");
    }
    Ok(())
}

#[tokio::test]
async fn cert_rotation_dry_run_writes_nothing_and_a_rerun_changes_nothing() -> TestResult {
    let (twin, _, old_id) = certificate_lab().await?;
    let (cert, key) = certificate(&SNIS)?;
    let arguments = json!({"certificate": old_id, "cert": cert, "key": key});
    let action = KongCertRotate::new();
    let change = action
        .plan(&context(&twin, true, None), arguments.clone())
        .await?;
    assert_eq!(change.changes, Some(true));
    assert!(
        change.summary.contains(&format!(
            "move SNIs *.shop.example.com, a.example.com from {old_id}"
        )),
        "{}",
        change.summary
    );
    assert!(!change.summary.contains("PRIVATE KEY"));
    assert_eq!(writes(&twin).await?, 0);
    assert!(matches!(
        action
            .probe(&context(&twin, false, None), arguments.clone())
            .await?,
        Probe::NotDone
    ));

    let context = context(&twin, false, None);
    let applied = action
        .apply(
            &context,
            json!({"certificate": "a.example.com", "cert": cert, "key": key}),
        )
        .await?;
    let again = action
        .apply(
            &context,
            json!({"certificate": "a.example.com", "cert": cert, "key": key}),
        )
        .await?;
    assert_eq!(again.change.map(|change| change.changes), Some(Some(false)));
    assert!(again.undo.is_none());
    assert_eq!(certificate_count(&twin).await?, 2);
    match action.probe(&context, arguments).await? {
        Probe::Unknown(why) => assert!(why.contains(output(&applied, "certificate_id")), "{why}"),
        other => return Err(format!("expected Unknown, got {other:?}").into()),
    }
    Ok(())
}

#[tokio::test]
async fn cert_rotation_reads_files_and_without_a_tls_proxy_url_fails_before_writing_unless_skipped()
-> TestResult {
    let twin = twin().await?;
    let (cert, key) = certificate(&["a.example.com"])?;
    twin.load(&json!({
        "_format_version": "3.0",
        "certificates": [{"cert": cert, "key": key, "snis": [{"name": "a.example.com"}]}]
    }))
    .map_err(|error| format!("seed: {}", error.body()))?;
    // The new certificate and key as files next to the playbook.
    let (new_cert, new_key) = certificate(&["a.example.com"])?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("new.pem"), &new_cert)?;
    std::fs::write(dir.path().join("new.key"), &new_key)?;
    let mut context = context(&twin, false, None);
    context.base_dir = dir.path().to_path_buf();
    let action = KongCertRotate::new();
    let message = failure(
        action
            .apply(
                &context,
                json!({"certificate": "a.example.com", "cert": "new.pem", "key": "new.key"}),
            )
            .await,
    )?;
    assert!(message.contains("proxy_tls_url"), "{message}");
    let message = failure(
        action
            .apply(
                &context,
                json!({"certificate": "a.example.com", "cert": "new.pem", "key": "s3cr3t-not-a-file"}),
            )
            .await,
    )?;
    assert!(message.contains("`key` holds no PEM"), "{message}");
    assert!(!message.contains("s3cr3t"), "{message}");
    assert_eq!(writes(&twin).await?, 0);
    let applied = action
        .apply(
            &context,
            json!({"certificate": "a.example.com", "cert": "new.pem", "key": "new.key", "verify": {"skip": true}}),
        )
        .await?;
    assert_eq!(
        applied.secrets,
        vec![new_key.clone()],
        "the key file's content is a secret"
    );
    let summary = applied
        .change
        .map(|change| change.summary)
        .unwrap_or_default();
    assert!(summary.contains("not verified (verify.skip)"), "{summary}");
    Ok(())
}

#[tokio::test]
async fn a_key_owned_by_another_consumer_is_refused_without_showing_it() -> TestResult {
    let lab = KeyLab::start().await?;
    let client = client(&lab.twin, false).await?;
    client
        .post("/consumers", &json!({"username": "bob"}))
        .await?;
    client
        .post("/consumers/bob/key-auth", &json!({"key": NEW_KEY}))
        .await?;
    let message = failure(
        KongKeyRotate::new()
            .apply(
                &context(&lab.twin, false, None),
                json!({"consumer": "alice", "key": NEW_KEY}),
            )
            .await,
    )?;
    assert!(message.contains("adding the new key failed"), "{message}");
    assert!(
        message.contains("UNIQUE violation"),
        "Kong's words: {message}"
    );
    assert!(!message.contains(NEW_KEY), "no key in messages: {message}");
    for old in OLD_KEYS {
        assert_eq!(lab.status(old).await?, 200);
    }
    assert_eq!(lab.keys().await?.len(), 2);
    Ok(())
}

/// Requests and failures seen by one load-generating client.
#[derive(Debug, Default, Clone, Copy)]
struct Load {
    requests: u64,
    failures: u64,
}

/// Sends `GET /orders` with the key in `key` (read before each request) until `stop`
/// says so; counts the answers that are not 200.
async fn generate_load(
    proxy: String,
    key: Arc<std::sync::RwLock<String>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Load {
    let http = reqwest::Client::new();
    let mut load = Load::default();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let current = key.read().map(|key| key.clone()).unwrap_or_default();
        let status = http
            .get(format!("{proxy}/orders"))
            .header("x-api-key", current)
            .send()
            .await
            .map(|response| response.status().as_u16());
        load.requests += 1;
        if status.ok() != Some(200) {
            load.failures += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    load
}

#[tokio::test]
async fn clients_see_no_failure_during_a_rotation_with_an_overlap() -> TestResult {
    let lab = KeyLab::start().await?;
    let proxy = lab.twin.proxy_url().ok_or("no proxy")?;
    let stop_old = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_switching = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One client stays on the old key; another switches to the new key as soon as the
    // step publishes it.
    let old_key = Arc::new(std::sync::RwLock::new(OLD_KEYS[0].to_owned()));
    let switching_key = Arc::new(std::sync::RwLock::new(OLD_KEYS[1].to_owned()));
    let stays = tokio::spawn(generate_load(
        proxy.clone(),
        Arc::clone(&old_key),
        Arc::clone(&stop_old),
    ));
    let switches = tokio::spawn(generate_load(
        proxy,
        Arc::clone(&switching_key),
        Arc::clone(&stop_switching),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let applied = KongKeyRotate::new()
        .apply(
            &context(&lab.twin, false, None),
            json!({"consumer": "alice", "generate": true, "overlap": "4s"}),
        )
        .await?;
    let new_key = output(&applied, "key").to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Ok(mut key) = switching_key.write() {
        *key = new_key.clone();
    }
    // Both run on inside the overlap; the old-key client stops before the old keys expire.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_old.store(true, std::sync::atomic::Ordering::SeqCst);
    let on_old = stays.await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop_switching.store(true, std::sync::atomic::Ordering::SeqCst);
    let on_new = switches.await?;
    println!("load on the old key: {on_old:?}; load switching to the new key: {on_new:?}");
    assert_eq!(on_old.failures, 0, "{on_old:?}");
    assert_eq!(on_new.failures, 0, "{on_new:?}");
    assert!(
        on_old.requests > 20 && on_new.requests > 20,
        "{on_old:?} {on_new:?}"
    );
    // After the overlap, the old key is refused and the new one still works.
    assert_eq!(lab.status(OLD_KEYS[0]).await?, 401);
    assert_eq!(lab.status(&new_key).await?, 200);
    Ok(())
}

#[tokio::test]
async fn a_proxy_that_keeps_serving_the_old_certificate_rolls_the_rotation_back() -> TestResult {
    let (twin, old_cert, old_id) = certificate_lab().await?;
    // The step's `proxy_tls_url` is another gateway that still has the old certificate:
    // the handshakes never see the new one.
    let (stale, _, _) = certificate_lab().await?;
    let mut context = context(&twin, false, None);
    let mut environment = context
        .environment
        .as_deref()
        .cloned()
        .ok_or("no environment")?;
    for gateway in environment.gateways.values_mut() {
        if let runsheet_engine::model::Gateway::Kong(doc) = gateway {
            doc.proxy_tls_url = stale
                .proxy_tls_url()
                .map(|url| runsheet_engine::de::Spanned::new(url, Default::default()));
        }
    }
    context.environment = Some(Arc::new(environment));
    let (cert, key) = certificate(&SNIS)?;
    let message = failure(
        KongCertRotate::new()
            .apply(
                &context,
                json!({"certificate": old_id, "cert": cert, "key": key, "verify": {"timeout": "1s"}}),
            )
            .await,
    )?;
    assert!(
        message.contains("did not serve the new certificate"),
        "{message}"
    );
    assert!(message.contains("rolled back"), "{message}");
    let old_leaf = leaf_der(&old_cert).ok_or("no leaf")?;
    for sni in SNIS {
        assert_eq!(
            served(&twin, sni).await?,
            old_leaf,
            "{sni} is back on the old certificate"
        );
    }
    assert_eq!(
        certificate_count(&twin).await?,
        1,
        "the new certificate is deleted"
    );
    Ok(())
}

/// Makes the `nth` write from now apply, then drops its connection: a change whose
/// answer never arrives.
async fn lose_answer(twin: &KongTwin, nth: u64) -> TestResult {
    let body = json!({"drop_nth_write": nth, "when": "after"});
    control(twin, reqwest::Method::POST, "/_twin/faults", Some(body)).await?;
    Ok(())
}

#[tokio::test]
async fn a_given_key_that_is_expiring_is_not_made_the_only_key() -> TestResult {
    // An earlier rotation set a ttl on OLD_KEYS[1]; rotating "back" to it would retire
    // every other key and leave alice with one key that expires within the hour.
    let lab = KeyLab::start().await?;
    let client = client(&lab.twin, false).await?;
    let expiring = lab
        .keys()
        .await?
        .into_iter()
        .find(|key| key["key"] == OLD_KEYS[1])
        .ok_or("no second key")?;
    let id = expiring["id"].as_str().unwrap_or_default().to_owned();
    client
        .patch(
            &format!("/consumers/alice/key-auth/{id}"),
            &json!({"ttl": 3600}),
        )
        .await?;
    let before = writes(&lab.twin).await?;
    let message = failure(
        KongKeyRotate::new()
            .apply(
                &context(&lab.twin, false, None),
                json!({"consumer": "alice", "key": OLD_KEYS[1]}),
            )
            .await,
    )?;
    assert!(message.contains("expires"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(!message.contains(OLD_KEYS[1]), "{message}");
    assert_eq!(writes(&lab.twin).await?, before, "nothing written");
    let keys = lab.keys().await?;
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter()
            .any(|key| key["key"] == OLD_KEYS[0] && key["ttl"].is_null()),
        "the key without expiry is untouched: {keys:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_key_rotation_whose_answers_are_lost_finds_its_writes_and_completes() -> TestResult {
    // Writes: 1 the add, 2 and 3 the retirements (PATCH ttl: not retried). Kong applies
    // each, then the connection closes before its answer: the rotation reads it back
    // and goes on, and ends as a rotation without a fault does.
    for nth in 1..=3 {
        let lab = KeyLab::start().await?;
        let before = writes(&lab.twin).await?;
        lose_answer(&lab.twin, nth).await?;
        let outcome = KongKeyRotate::new()
            .apply(
                &with_request_timeout(context(&lab.twin, false, None), LOOK_AGAIN),
                to_new_key(true),
            )
            .await;
        clear_faults(&lab.twin).await?;
        let applied = outcome.map_err(|error| format!("lost answer on write {nth}: {error}"))?;
        assert!(applied.undo.is_some(), "write {nth}: no undo record");
        assert_eq!(lab.status(NEW_KEY).await?, 200, "new key, lost answer on write {nth}");
        let keys = lab.keys().await?;
        for old in OLD_KEYS {
            // Retired with the hour of overlap: still accepted, now with an expiry.
            assert_eq!(lab.status(old).await?, 200, "{old}, lost answer on write {nth}");
            let key = keys.iter().find(|key| key["key"] == old).ok_or("an old key is gone")?;
            assert!(
                key["ttl"].as_i64().is_some_and(|ttl| ttl <= 3600),
                "{old} has no expiry after a lost answer on write {nth}: {keys:?}"
            );
        }
        assert_eq!(writes(&lab.twin).await? - before, 3, "each write sent once (write {nth})");
    }
    Ok(())
}

#[tokio::test]
async fn undo_does_not_move_snis_back_to_a_certificate_that_expired_meanwhile() -> TestResult {
    let mut twin = twin().await?;
    twin.serve_proxy_tls(TcpListener::bind("127.0.0.1:0").await?, None)
        .await?;
    // The old certificate expires 3 seconds from now.
    let old_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["a.example.com".to_owned()])?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + (now + Duration::from_secs(3));
    let old_cert = params.self_signed(&old_key)?.pem();
    twin.load(&json!({
        "_format_version": "3.0",
        "certificates": [{"cert": old_cert, "key": old_key.serialize_pem(), "snis": [{"name": "a.example.com"}]}]
    }))
    .map_err(|error| format!("seed: {}", error.body()))?;
    let (cert, key) = certificate(&["a.example.com"])?;
    let new_leaf = leaf_der(&cert).ok_or("no leaf")?;
    let context = context(&twin, false, None);
    let action = KongCertRotate::new();
    let applied = action
        .apply(
            &context,
            json!({"certificate": "a.example.com", "cert": cert, "key": key}),
        )
        .await?;
    let undo = applied.undo.ok_or("no undo")?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = writes(&twin).await?;
    let message = failure(action.undo(&context, Value::Null, undo).await)?;
    assert!(message.contains("expired"), "{message}");
    assert_eq!(writes(&twin).await?, before, "nothing written");
    assert_eq!(
        served(&twin, "a.example.com").await?,
        new_leaf,
        "the SNI stays on the valid new certificate"
    );
    assert_eq!(certificate_count(&twin).await?, 2);
    Ok(())
}

#[tokio::test]
async fn undo_of_a_rerun_after_the_retirement_clears_the_expiry_the_first_run_set() -> TestResult {
    let lab = KeyLab::start().await?;
    let action = KongKeyRotate::new();
    let context = context(&lab.twin, false, None);
    let arguments = json!({"consumer": "alice", "generate": true, "overlap": "1h"});
    // The first run retires the old keys (a ttl and the retired tag), then "crashes":
    // its undo record is lost, and the step runs again.
    action.apply(&context, arguments.clone()).await?;
    let retired = lab.keys().await?;
    assert!(
        retired.iter().any(|key| key["tags"]
            .as_array()
            .is_some_and(|tags| tags.contains(&json!(super::key_rotate::RETIRED_TAG)))),
        "{retired:?}"
    );
    let rerun = action.apply(&context, arguments).await?;
    action
        .undo(&context, Value::Null, rerun.undo.clone().ok_or("no undo")?)
        .await?;
    let keys = lab.keys().await?;
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(key["ttl"].is_null(), "a key left expiring: {keys:?}");
        assert!(
            !key["tags"]
                .as_array()
                .is_some_and(|tags| tags.contains(&json!(super::key_rotate::RETIRED_TAG))),
            "{keys:?}"
        );
    }
    assert_eq!(
        lab.status(output(&rerun, "key")).await?,
        401,
        "the rerun's key is revoked"
    );
    Ok(())
}
