//! `kong.entity` against a running Kong twin over loopback HTTP: create, update of the
//! fields given, delete and the undo of each for several kinds; plans that write
//! nothing; Kong's errors; bad matches; secret fields; probe.

use rcgen::{CertificateParams, KeyPair};
use runsheet_engine::{Action, ActionError, Applied, Change, Probe};
use runsheet_twin::kong::KongTwin;
use serde_json::{Value, json};

use super::client::KongClient;
use super::entity::KongEntity;
use super::twin_tests::{client, context, control, count, twin, with_request_timeout};
use crate::test_support::keeping;
use crate::test_support::{TestResult, message};

/// The twin's count of writes served so far.
async fn writes(twin: &KongTwin) -> TestResult<u64> {
    let counters = control(twin, reqwest::Method::GET, "/_twin/counters", None).await?;
    Ok(counters["writes"].as_u64().unwrap_or_default())
}

/// Plans `arguments` in a dry run and checks that the twin saw no write.
async fn plan(twin: &KongTwin, arguments: &Value) -> TestResult<Change> {
    let before = writes(twin).await?;
    let change = KongEntity::new()
        .plan(&context(twin, true, None), arguments.clone())
        .await?;
    assert_eq!(writes(twin).await?, before, "a plan wrote: {change:?}");
    Ok(change)
}

/// Applies `arguments` for real.
async fn apply(twin: &KongTwin, arguments: &Value) -> Result<Applied, ActionError> {
    KongEntity::new()
        .apply(&context(twin, false, None), arguments.clone())
        .await
}

/// Undoes what `applied` did.
async fn undo(twin: &KongTwin, arguments: &Value, applied: Applied) -> TestResult {
    let record = applied.undo.ok_or("no undo record")?;
    KongEntity::new()
        .undo(&context(twin, false, None), arguments.clone(), record)
        .await?;
    Ok(())
}

/// The entity at `path` without `updated_at` (and `created_at` when `stamps`), for comparisons.
async fn read(client: &KongClient, path: &str, stamps: bool) -> TestResult<Option<Value>> {
    let Some(mut entity) = client.find(path).await? else {
        return Ok(None);
    };
    if let Some(fields) = entity.as_object_mut() {
        fields.shift_remove("updated_at");
        if stamps {
            fields.shift_remove("created_at");
        }
    }
    Ok(Some(entity))
}

/// Seeds the twin with a decK-style document.
fn seed(twin: &KongTwin, document: Value) -> TestResult {
    twin.load(&document)
        .map_err(|error| format!("seed: {}", error.body()))?;
    Ok(())
}

/// A self-signed certificate for `name`: (cert PEM, key PEM).
fn certificate(name: &str) -> TestResult<(String, String)> {
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec![name.to_owned()])?.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[tokio::test]
async fn service_is_created_updated_deleted_and_each_step_undone() -> TestResult {
    let twin = twin().await?;
    let reader = client(&twin, false).await?;
    let create = json!({"kind": "service", "match": {"name": "orders"},
        "spec": {"host": "orders.internal", "port": 8080, "retries": 3}});

    let change = plan(&twin, &create).await?;
    assert_eq!(change.summary, "create service orders");
    assert_eq!(change.changes, Some(true));
    assert_eq!(
        change.after.as_deref(),
        Some("host: orders.internal\nname: orders\nport: 8080\nretries: 3\n")
    );
    let created = apply(&twin, &create).await?;
    assert_eq!(created.outputs["changed"], json!(true));
    assert_eq!(created.outputs["entity"]["host"], json!("orders.internal"));
    let id = created.outputs["id"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(
        plan(&twin, &create).await?,
        Change::none("service orders: no change")
    );
    let again = writes(&twin).await?;
    let unchanged = apply(&twin, &create).await?;
    assert_eq!(unchanged.outputs["changed"], json!(false));
    assert_eq!(unchanged.outputs["id"], json!(id));
    assert!(unchanged.undo.is_none());
    assert_eq!(writes(&twin).await?, again, "no change, no write");

    let original = read(&reader, "/services/orders", false).await?;
    let update = json!({"kind": "service", "match": {"name": "orders"},
        "spec": {"retries": 5, "read_timeout": 1000, "host": "orders.internal"}});
    let change = plan(&twin, &update).await?;
    assert_eq!(
        change.summary,
        "update service orders: retries, read_timeout"
    );
    assert_eq!(
        change.before.as_deref(),
        Some("host: orders.internal\nread_timeout: 60000\nretries: 3\n")
    );
    assert_eq!(
        change.after.as_deref(),
        Some("host: orders.internal\nread_timeout: 1000\nretries: 5\n")
    );
    let updated = apply(&twin, &update).await?;
    assert_eq!(
        updated.undo,
        Some(
            json!({"kind": "updated", "id": id, "previous": {"retries": 3, "read_timeout": 60000}})
        )
    );
    let stored = read(&reader, "/services/orders", false)
        .await?
        .ok_or("gone")?;
    assert_eq!(
        (stored["retries"].clone(), stored["read_timeout"].clone()),
        (json!(5), json!(1000))
    );
    assert_eq!(stored["port"], json!(8080), "fields not given are kept");
    undo(&twin, &update, updated).await?;
    assert_eq!(read(&reader, "/services/orders", false).await?, original);

    let delete = json!({"kind": "service", "match": {"name": "orders"}, "state": "absent"});
    let change = plan(&twin, &delete).await?;
    assert_eq!(
        change.summary,
        "delete service orders (Kong deletes its plugins with it; undo brings back only the service)"
    );
    assert!(
        change
            .before
            .as_deref()
            .is_some_and(|before| before.contains("retries: 3\n")),
        "{change:?}"
    );
    assert_eq!(change.after.as_deref(), Some(""));
    let deleted = apply(&twin, &delete).await?;
    assert_eq!(deleted.outputs["id"], json!(id));
    assert_eq!(deleted.outputs["entity"], Value::Null);
    assert_eq!(read(&reader, "/services/orders", false).await?, None);
    assert_eq!(
        plan(&twin, &delete).await?,
        Change::none("service orders: absent, no change")
    );
    undo(&twin, &delete, deleted).await?;
    assert_eq!(
        read(&reader, "/services/orders", true).await?,
        read_without_created(original.clone())
    );

    undo(&twin, &create, created).await?;
    assert_eq!(
        read(&reader, &format!("/services/{id}"), false).await?,
        None
    );
    Ok(())
}

/// `entity` without `created_at`.
fn read_without_created(entity: Option<Value>) -> Option<Value> {
    entity.map(|mut entity| {
        if let Some(fields) = entity.as_object_mut() {
            fields.shift_remove("created_at");
        }
        entity
    })
}

#[tokio::test]
async fn route_refers_to_its_service_by_name_and_moves_back_on_undo() -> TestResult {
    let twin = twin().await?;
    seed(
        &twin,
        json!({"_format_version": "3.0", "services": [
            {"name": "orders", "host": "orders.internal"},
            {"name": "billing", "host": "billing.internal"}
        ]}),
    )?;
    let reader = client(&twin, false).await?;
    let orders = reader.get("/services/orders").await?["id"].clone();
    let billing = reader.get("/services/billing").await?["id"].clone();
    let create = json!({"kind": "route", "match": {"name": "orders-v2"},
        "spec": {"paths": ["/v2"], "service": "orders"}});
    assert_eq!(
        plan(&twin, &create).await?.summary,
        "create route orders-v2"
    );
    let created = apply(&twin, &create).await?;
    assert_eq!(created.outputs["entity"]["service"], json!({"id": orders}));
    for service in [
        json!("orders"),
        json!({"name": "orders"}),
        json!({"id": orders}),
        orders.clone(),
    ] {
        let same = json!({"kind": "route", "match": {"name": "orders-v2"},
            "spec": {"paths": ["/v2"], "service": service}});
        assert_eq!(
            plan(&twin, &same).await?,
            Change::none("route orders-v2: no change")
        );
    }
    let original = read(&reader, "/routes/orders-v2", false).await?;
    let move_it = json!({"kind": "route", "match": {"name": "orders-v2"},
        "spec": {"service": "billing"}});
    let change = plan(&twin, &move_it).await?;
    assert_eq!(change.summary, "update route orders-v2: service");
    assert_eq!(
        change.before,
        Some(format!(
            "service:\n  id: {}\n",
            orders.as_str().unwrap_or_default()
        ))
    );
    let moved = apply(&twin, &move_it).await?;
    assert_eq!(
        reader.get("/routes/orders-v2").await?["service"],
        json!({"id": billing})
    );
    undo(&twin, &move_it, moved).await?;
    assert_eq!(read(&reader, "/routes/orders-v2", false).await?, original);

    let missing = json!({"kind": "route", "match": {"name": "orders-v3"},
        "spec": {"paths": ["/v3"], "service": "nowhere"}});
    let refused = message(apply(&twin, &missing).await)?;
    assert!(
        refused.starts_with("create route orders-v3: foreign key unresolved"),
        "{refused}"
    );
    Ok(())
}

#[tokio::test]
async fn plugin_matched_by_name_and_scope_merges_config_and_undoes() -> TestResult {
    let twin = twin().await?;
    seed(
        &twin,
        json!({"_format_version": "3.0",
            "services": [{"name": "orders", "host": "orders.internal",
                "routes": [{"name": "r1", "paths": ["/orders"]}],
                "plugins": [{"name": "rate-limiting", "config": {"minute": 5, "hour": 100}}]}],
            "plugins": [{"name": "rate-limiting", "config": {"minute": 1000}}]}),
    )?;
    let reader = client(&twin, false).await?;
    let plugins = reader.list("/plugins").await?;
    let scoped_id = plugins
        .iter()
        .find(|plugin| !plugin["service"].is_null())
        .map(|plugin| plugin["id"].clone())
        .ok_or("no scoped plugin")?;
    let global_id = plugins
        .iter()
        .find(|plugin| plugin["service"].is_null())
        .map(|plugin| plugin["id"].clone())
        .ok_or("no global plugin")?;
    let scoped_path = format!("/plugins/{}", scoped_id.as_str().unwrap_or_default());
    let global_path = format!("/plugins/{}", global_id.as_str().unwrap_or_default());
    let original = read(&reader, &scoped_path, false).await?;
    let global = read(&reader, &global_path, false).await?;

    let update = json!({"kind": "plugin", "match": {"name": "rate-limiting", "service": "orders"},
        "spec": {"config": {"minute": 10}}});
    let change = plan(&twin, &update).await?;
    assert_eq!(
        change.summary,
        "update plugin rate-limiting on service orders: config"
    );
    assert_eq!(change.before.as_deref(), Some("config:\n  minute: 5\n"));
    assert_eq!(change.after.as_deref(), Some("config:\n  minute: 10\n"));
    let updated = apply(&twin, &update).await?;
    assert_eq!(updated.outputs["id"], scoped_id);
    let stored = reader.get(&scoped_path).await?;
    assert_eq!(stored["config"]["minute"], json!(10));
    assert_eq!(
        stored["config"]["hour"],
        json!(100),
        "other config fields kept"
    );
    assert_eq!(
        read(&reader, &global_path, false).await?,
        global,
        "the global plugin is another scope"
    );
    assert_eq!(
        plan(&twin, &update).await?,
        Change::none("plugin rate-limiting on service orders: no change")
    );
    undo(&twin, &update, updated).await?;
    assert_eq!(read(&reader, &scoped_path, false).await?, original);

    let global_match = json!({"kind": "plugin", "match": {"name": "rate-limiting"},
        "spec": {"config": {"minute": 1000}}});
    let found = apply(&twin, &global_match).await?;
    assert_eq!(
        (
            found.outputs["id"].clone(),
            found.outputs["changed"].clone()
        ),
        (global_id, json!(false))
    );

    let on_route = json!({"kind": "plugin", "match": {"name": "key-auth", "route": "r1"},
        "spec": {"config": {"key_names": ["x-key"]}}});
    assert_eq!(
        plan(&twin, &on_route).await?.summary,
        "create plugin key-auth on route r1"
    );
    let created = apply(&twin, &on_route).await?;
    let route_id = reader.get("/routes/r1").await?["id"].clone();
    assert_eq!(created.outputs["entity"]["route"], json!({"id": route_id}));
    assert_eq!(created.outputs["entity"]["service"], Value::Null);
    assert_eq!(
        plan(&twin, &on_route).await?,
        Change::none("plugin key-auth on route r1: no change")
    );
    Ok(())
}

#[tokio::test]
async fn consumer_key_auth_and_acl_keep_secrets_out_of_plans_and_outputs() -> TestResult {
    let twin = twin().await?;
    let reader = client(&twin, false).await?;
    let consumer = json!({"kind": "consumer", "match": {"username": "alice"},
        "spec": {"custom_id": "c-1", "tags": ["team-a"]}});
    apply(&twin, &consumer).await?;
    let by_custom_id =
        json!({"kind": "consumer", "match": {"custom_id": "c-1"}, "spec": {"tags": ["team-a"]}});
    assert_eq!(
        plan(&twin, &by_custom_id).await?,
        Change::none("consumer c-1: no change")
    );

    let key = "alice-key-0123456789";
    let credential = json!({"kind": "key_auth", "match": {"consumer": "alice", "key": key},
        "spec": {"tags": ["rotation-1"]}});
    let change = plan(&twin, &credential).await?;
    assert_eq!(
        change.summary,
        "create key-auth credential of consumer alice"
    );
    assert_eq!(
        change.after.as_deref(),
        Some("key: (secret)\ntags:\n- rotation-1\n")
    );
    let created = apply(&twin, &credential).await?;
    assert_eq!(created.outputs["entity"]["key"], json!("(secret)"));
    assert!(created.secrets.contains(&key.to_owned()));
    assert!(!format!("{:?}{:?}", created.outputs, created.change).contains(key));
    assert_eq!(
        plan(&twin, &credential).await?,
        Change::none("key-auth credential of consumer alice: no change")
    );

    let new_key = "alice-key-abcdefghij";
    let rekey = json!({"kind": "key_auth", "match": {"consumer": "alice", "key": key},
        "spec": {"key": new_key}});
    let change = plan(&twin, &rekey).await?;
    assert_eq!(
        change.summary,
        "update key-auth credential of consumer alice: key"
    );
    assert_eq!(change.before.as_deref(), Some("key: (secret)\n"));
    assert_eq!(change.after.as_deref(), Some("key: (secret, changed)\n"));
    let rekeyed = apply(&twin, &rekey).await?;
    assert!(
        rekeyed.secrets.contains(&key.to_owned()) && rekeyed.secrets.contains(&new_key.to_owned())
    );
    let credential_id = created.outputs["id"].as_str().ok_or("no id")?.to_owned();
    let path = format!("/consumers/alice/key-auth/{credential_id}");
    assert_eq!(reader.get(&path).await?["key"], json!(new_key));
    undo(&twin, &rekey, rekeyed).await?;
    assert_eq!(reader.get(&path).await?["key"], json!(key));

    let original = read(&reader, &path, false).await?;
    let revoke =
        json!({"kind": "key_auth", "match": {"consumer": "alice", "key": key}, "state": "absent"});
    let change = plan(&twin, &revoke).await?;
    assert_eq!(
        change.summary,
        "delete key-auth credential of consumer alice"
    );
    assert!(!format!("{change:?}").contains(key), "{change:?}");
    let revoked = apply(&twin, &revoke).await?;
    assert!(revoked.secrets.contains(&key.to_owned()));
    assert_eq!(read(&reader, &path, false).await?, None);
    undo(&twin, &revoke, revoked).await?;
    assert_eq!(
        read(&reader, &path, true).await?,
        read_without_created(original),
        "same id, key and tags (Kong stamps a re-created entity anew)"
    );

    // Bob cannot take alice's key: Kong's 409, with the key masked.
    apply(
        &twin,
        &json!({"kind": "consumer", "match": {"username": "bob"}}),
    )
    .await?;
    let steal = json!({"kind": "key_auth", "match": {"consumer": "bob", "key": key}});
    let refused = message(apply(&twin, &steal).await)?;
    assert!(
        refused.starts_with("create key-auth credential of consumer bob: UNIQUE violation detected on '{key=\"(secret)\"}'"),
        "{refused}"
    );
    assert!(!refused.contains(key), "{refused}");

    let acl = json!({"kind": "acl", "match": {"consumer": "alice", "group": "admins"}});
    assert_eq!(
        plan(&twin, &acl).await?.summary,
        "create ACL group admins of consumer alice"
    );
    let created = apply(&twin, &acl).await?;
    assert_eq!(
        plan(&twin, &acl).await?,
        Change::none("ACL group admins of consumer alice: no change")
    );
    let acl_path = format!(
        "/consumers/alice/acls/{}",
        created.outputs["id"].as_str().unwrap_or_default()
    );
    let original = read(&reader, &acl_path, false).await?;
    let drop_acl = json!({"kind": "acl", "match": {"consumer": "alice", "group": "admins"}, "state": "absent"});
    let dropped = apply(&twin, &drop_acl).await?;
    assert_eq!(read(&reader, &acl_path, false).await?, None);
    undo(&twin, &drop_acl, dropped).await?;
    assert_eq!(
        read(&reader, &acl_path, true).await?,
        read_without_created(original)
    );
    undo(&twin, &acl, created).await?;
    assert_eq!(read(&reader, &acl_path, false).await?, None);

    let orphan = json!({"kind": "acl", "match": {"consumer": "nobody", "group": "admins"}});
    let refused = message(apply(&twin, &orphan).await)?;
    assert!(
        refused.starts_with(
            "create ACL group admins of consumer nobody: consumer `nobody` not found on the gateway"
        ),
        "{refused}"
    );
    Ok(())
}

#[tokio::test]
async fn target_gets_the_default_port_and_comes_back_with_its_id() -> TestResult {
    let twin = twin().await?;
    seed(
        &twin,
        json!({"_format_version": "3.0", "upstreams": [{"name": "core"}]}),
    )?;
    let reader = client(&twin, false).await?;
    let create = json!({"kind": "target", "match": {"upstream": "core", "target": "10.0.0.5"},
        "spec": {"weight": 50}});
    assert_eq!(
        plan(&twin, &create).await?.summary,
        "create target 10.0.0.5:8000 of upstream core"
    );
    let created = apply(&twin, &create).await?;
    assert_eq!(created.outputs["entity"]["target"], json!("10.0.0.5:8000"));
    let path = "/upstreams/core/targets/10.0.0.5:8000";
    let original = read(&reader, path, false).await?;
    let drain = json!({"kind": "target", "match": {"upstream": "core", "target": "10.0.0.5:8000"},
        "spec": {"weight": 0}});
    let change = plan(&twin, &drain).await?;
    assert_eq!(
        (
            change.summary.as_str(),
            change.before.as_deref(),
            change.after.as_deref()
        ),
        (
            "update target 10.0.0.5:8000 of upstream core: weight",
            Some("weight: 50\n"),
            Some("weight: 0\n")
        )
    );
    let drained = apply(&twin, &drain).await?;
    assert_eq!(reader.get(path).await?["weight"], json!(0));
    undo(&twin, &drain, drained).await?;
    assert_eq!(read(&reader, path, false).await?, original);

    let remove = json!({"kind": "target", "match": {"upstream": "core", "target": "10.0.0.5"}, "state": "absent"});
    let removed = apply(&twin, &remove).await?;
    assert_eq!(read(&reader, path, false).await?, None);
    undo(&twin, &remove, removed).await?;
    let back = read(&reader, path, true).await?;
    assert_eq!(back, read_without_created(original));
    Ok(())
}

#[tokio::test]
async fn sni_moves_to_another_certificate_and_certificate_keys_stay_secret() -> TestResult {
    let twin = twin().await?;
    let reader = client(&twin, false).await?;
    let (cert_a, key_a) = certificate("a.test")?;
    let (cert_b, key_b) = certificate("a.test")?;
    let first = reader
        .post(
            "/certificates",
            &json!({"cert": cert_a, "key": key_a, "snis": ["a.test"]}),
        )
        .await?;
    let second = reader
        .post("/certificates", &json!({"cert": cert_b, "key": key_b}))
        .await?;
    let (first_id, second_id) = (first["id"].clone(), second["id"].clone());

    let original = read(&reader, "/snis/a.test", false).await?;
    let move_it = json!({"kind": "sni", "match": {"name": "a.test"},
        "spec": {"certificate": second_id}});
    let change = plan(&twin, &move_it).await?;
    assert_eq!(change.summary, "update SNI a.test: certificate");
    let moved = apply(&twin, &move_it).await?;
    assert_eq!(
        reader.get("/snis/a.test").await?["certificate"],
        json!({"id": second_id})
    );
    // The certificate can be named by one of its SNIs.
    let by_sni =
        json!({"kind": "sni", "match": {"name": "a.test"}, "spec": {"certificate": "a.test"}});
    assert_eq!(
        plan(&twin, &by_sni).await?,
        Change::none("SNI a.test: no change")
    );
    undo(&twin, &move_it, moved).await?;
    assert_eq!(read(&reader, "/snis/a.test", false).await?, original);
    assert_eq!(
        original.as_ref().map(|sni| sni["certificate"].clone()),
        Some(json!({"id": first_id}))
    );

    // A new key pair for the second certificate: the keys never show.
    let (cert_c, key_c) = certificate("c.test")?;
    let second_path = format!("/certificates/{}", second_id.as_str().unwrap_or_default());
    let original = read(&reader, &second_path, false).await?;
    let renew = json!({"kind": "certificate", "match": {"id": second_id},
        "spec": {"cert": cert_c, "key": key_c, "tags": ["renewed"]}});
    let change = plan(&twin, &renew).await?;
    assert_eq!(
        change.summary,
        format!(
            "update certificate {}: cert, key, tags",
            second_id.as_str().unwrap_or_default()
        )
    );
    let shown = format!("{change:?}");
    assert!(shown.contains("key: (secret, changed)"), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    let renewed = apply(&twin, &renew).await?;
    assert!(renewed.secrets.contains(&key_b) && renewed.secrets.contains(&key_c));
    assert_eq!(renewed.outputs["entity"]["key"], json!("(secret)"));
    assert!(
        !renewed
            .outputs
            .values()
            .any(|value| value.to_string().contains("PRIVATE KEY"))
    );
    let tags_only = json!({"kind": "certificate", "match": {"id": second_id},
        "spec": {"key": key_c, "tags": ["renewed"]}});
    assert_eq!(
        plan(&twin, &tags_only).await?,
        Change::none(format!(
            "certificate {}: no change",
            second_id.as_str().unwrap_or_default()
        ))
    );
    undo(&twin, &renew, renewed).await?;
    assert_eq!(read(&reader, &second_path, false).await?, original);

    let by_name = json!({"kind": "certificate", "match": {"name": "a.test"}});
    let outcome = KongEntity::new()
        .plan(&context(&twin, true, None), by_name)
        .await;
    assert!(
        matches!(outcome, Err(ActionError::InvalidArguments { .. })),
        "{outcome:?}"
    );
    let refused = message(outcome)?;
    assert!(
        refused.contains("give `id` (a certificate has no name to match by)"),
        "{refused}"
    );
    Ok(())
}

#[tokio::test]
async fn upstream_healthchecks_merge_the_keys_given() -> TestResult {
    let twin = twin().await?;
    let reader = client(&twin, false).await?;
    let create = json!({"kind": "upstream", "match": {"name": "core"},
        "spec": {"slots": 100}});
    apply(&twin, &create).await?;
    assert_eq!(
        plan(&twin, &create).await?,
        Change::none("upstream core: no change")
    );
    let slower = json!({"kind": "upstream", "match": {"name": "core"},
        "spec": {"healthchecks": {"active": {"healthy": {"interval": 5}}}}});
    apply(&twin, &slower).await?;
    assert_eq!(
        plan(&twin, &slower).await?,
        Change::none("upstream core: no change")
    );
    let original = read(&reader, "/upstreams/core", false)
        .await?
        .ok_or("no upstream")?;
    assert_eq!(
        original["healthchecks"]["active"]["healthy"]["interval"],
        json!(5)
    );
    assert_eq!(original["healthchecks"]["active"]["timeout"], json!(1));
    let faster = json!({"kind": "upstream", "match": {"name": "core"},
        "spec": {"healthchecks": {"active": {"healthy": {"interval": 1}, "timeout": 2}}}});
    let change = plan(&twin, &faster).await?;
    assert_eq!(
        change.before.as_deref(),
        Some("healthchecks:\n  active:\n    healthy:\n      interval: 5\n    timeout: 1\n")
    );
    let updated = apply(&twin, &faster).await?;
    let stored = reader.get("/upstreams/core").await?;
    assert_eq!(
        stored["healthchecks"]["active"]["healthy"]["interval"],
        json!(1)
    );
    assert_eq!(stored["healthchecks"]["active"]["timeout"], json!(2));
    assert_eq!(
        stored["healthchecks"]["active"]["healthy"]["http_statuses"],
        original["healthchecks"]["active"]["healthy"]["http_statuses"],
        "keys not given are kept"
    );
    undo(&twin, &faster, updated).await?;
    assert_eq!(
        read(&reader, "/upstreams/core", false).await?,
        Some(original)
    );
    Ok(())
}

#[tokio::test]
async fn kong_errors_and_bad_matches_are_shown_and_write_nothing() -> TestResult {
    let twin = twin().await?;
    seed(
        &twin,
        json!({"_format_version": "3.0",
            "services": [{"name": "orders", "host": "orders.internal"},
                         {"name": "billing", "host": "billing.internal"}],
            "consumers": [{"username": "alice", "custom_id": "c-1"}, {"username": "bob", "custom_id": "c-2"}]}),
    )?;
    let reader = client(&twin, false).await?;
    let orders = reader.get("/services/orders").await?["id"].clone();
    let start = writes(&twin).await?;

    let invalid =
        json!({"kind": "service", "match": {"name": "bad"}, "spec": {"host": "x", "port": 70000}});
    let refused = message(apply(&twin, &invalid).await)?;
    assert!(
        refused.starts_with(
            "create service bad: schema violation (port: value should be between 0 and 65535)"
        ),
        "{refused}"
    );
    let taken =
        json!({"kind": "consumer", "match": {"username": "carol"}, "spec": {"custom_id": "c-1"}});
    let refused = message(apply(&twin, &taken).await)?;
    assert!(
        refused.starts_with(
            "create consumer carol: UNIQUE violation detected on '{custom_id=\"c-1\"}'"
        ),
        "{refused}"
    );
    let failed_writes = writes(&twin).await? - start;

    let before = writes(&twin).await?;
    let contradictory = json!({"kind": "service", "match": {"id": orders, "name": "billing"}, "spec": {"retries": 1}});
    let outcome = apply(&twin, &contradictory).await;
    assert!(
        matches!(outcome, Err(ActionError::InvalidArguments { .. })),
        "{outcome:?}"
    );
    let shown = message(outcome)?;
    assert!(shown.contains("is ambiguous"), "{shown}");
    assert!(shown.contains("`name: billing` finds service"), "{shown}");
    let mixed = json!({"kind": "consumer", "match": {"username": "alice", "custom_id": "c-2"}, "state": "absent"});
    let shown = message(apply(&twin, &mixed).await)?;
    assert!(
        shown.contains("`match` of consumer alice is ambiguous"),
        "{shown}"
    );
    let empty = json!({"kind": "route", "match": {}});
    assert!(message(apply(&twin, &empty).await)?.contains("names nothing: give `id` or `name`"));
    let no_name = json!({"kind": "plugin", "match": {"service": "orders"}});
    assert!(message(apply(&twin, &no_name).await)?.contains("needs `id` or `name`"));
    assert_eq!(writes(&twin).await?, before, "bad matches write nothing");
    assert_eq!(failed_writes, 2, "one refused create each, nothing else");
    assert_eq!(reader.list("/consumers").await?.len(), 2);
    assert_eq!(reader.list("/services").await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn probe_says_done_only_when_the_wanted_state_holds() -> TestResult {
    let twin = twin().await?;
    let live = context(&twin, false, None);
    let action = KongEntity::new();
    let present =
        json!({"kind": "consumer", "match": {"username": "dave"}, "spec": {"tags": ["x"]}});
    assert!(matches!(
        action.probe(&live, present.clone()).await?,
        Probe::NotDone
    ));
    apply(&twin, &present).await?;
    match action.probe(&live, present.clone()).await? {
        Probe::Done(applied) => {
            assert!(applied.undo.is_none(), "the replaced state is unknown");
            assert_eq!(applied.outputs["entity"]["username"], json!("dave"));
        }
        other => return Err(format!("expected Done, got {other:?}").into()),
    }
    let retagged =
        json!({"kind": "consumer", "match": {"username": "dave"}, "spec": {"tags": ["y"]}});
    assert!(matches!(
        action.probe(&live, retagged).await?,
        Probe::NotDone
    ));
    let absent = json!({"kind": "consumer", "match": {"username": "dave"}, "state": "absent"});
    assert!(matches!(
        action.probe(&live, absent.clone()).await?,
        Probe::NotDone
    ));
    apply(&twin, &absent).await?;
    assert!(matches!(action.probe(&live, absent).await?, Probe::Done(_)));
    Ok(())
}

#[tokio::test]
async fn an_id_in_match_pins_the_id_of_what_is_created() -> TestResult {
    let twin = twin().await?;
    seed(
        &twin,
        json!({"_format_version": "3.0", "upstreams": [{"name": "core"}]}),
    )?;
    let reader = client(&twin, false).await?;
    let consumer_id = "4c5f4e1a-8d0b-4c43-9f34-1f2a3b4c5d6e";
    let consumer = json!({"kind": "consumer", "match": {"id": consumer_id, "username": "erin"}});
    let change = plan(&twin, &consumer).await?;
    assert_eq!(change.summary, "create consumer erin");
    assert_eq!(
        change.after,
        Some(format!("id: {consumer_id}\nusername: erin\n"))
    );
    let created = apply(&twin, &consumer).await?;
    assert_eq!(created.outputs["id"], json!(consumer_id));
    assert_eq!(
        reader.get("/consumers/erin").await?["id"],
        json!(consumer_id)
    );
    let target_id = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let target = json!({"kind": "target",
        "match": {"upstream": "core", "id": target_id, "target": "10.0.0.9:81"}});
    let created = apply(&twin, &target).await?;
    assert_eq!(created.outputs["id"], json!(target_id));
    assert_eq!(
        reader.get("/upstreams/core/targets/10.0.0.9:81").await?["id"],
        json!(target_id)
    );
    Ok(())
}

#[tokio::test]
async fn generated_credential_secrets_are_masked_and_a_hashed_password_is_not_restored()
-> TestResult {
    let twin = twin().await?;
    seed(
        &twin,
        json!({"_format_version": "3.0", "consumers": [{"username": "frank"}]}),
    )?;
    let reader = client(&twin, false).await?;
    let jwt = json!({"kind": "jwt", "match": {"consumer": "frank", "key": "frank-issuer"}});
    let created = apply(&twin, &jwt).await?;
    let stored = reader
        .get(&format!(
            "/consumers/frank/jwt/{}",
            created.outputs["id"].as_str().unwrap_or_default()
        ))
        .await?;
    let secret = stored["secret"].as_str().ok_or("no secret")?.to_owned();
    assert_eq!(created.outputs["entity"]["secret"], json!("(secret)"));
    assert_eq!(created.outputs["entity"]["key"], json!("frank-issuer"));
    assert!(created.secrets.contains(&secret), "Kong's generated secret");

    let basic = json!({"kind": "basic_auth", "match": {"consumer": "frank", "username": "frank-basic"},
        "spec": {"password": "first-password"}});
    apply(&twin, &basic).await?;
    let hashed = reader
        .get("/consumers/frank/basic-auth/frank-basic")
        .await?;
    let rotate = json!({"kind": "basic_auth", "match": {"consumer": "frank", "username": "frank-basic"},
        "spec": {"password": "second-password"}});
    let change = plan(&twin, &rotate).await?;
    assert_eq!(
        change.after.as_deref(),
        Some("password: (secret, changed)\n")
    );
    let rotated = apply(&twin, &rotate).await?;
    assert!(rotated.secrets.contains(&"second-password".to_owned()));
    let refused = KongEntity::new()
        .undo(
            &context(&twin, false, None),
            rotate,
            rotated.undo.ok_or("no undo record")?,
        )
        .await;
    let shown = message(refused)?;
    assert!(
        shown.contains("Kong keeps only a hash of its previous `password`"),
        "{shown}"
    );
    assert_ne!(
        reader
            .get("/consumers/frank/basic-auth/frank-basic")
            .await?["password"],
        hashed["password"],
        "the refused undo wrote nothing"
    );
    Ok(())
}

#[tokio::test]
async fn ca_certificate_is_deleted_and_restored_by_id() -> TestResult {
    let twin = twin().await?;
    let reader = client(&twin, false).await?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = KeyPair::generate()?;
    let ca = params.self_signed(&key)?.pem();
    let stored = reader
        .post("/ca_certificates", &json!({"cert": ca, "tags": ["root"]}))
        .await?;
    let id = stored["id"].as_str().ok_or("no id")?.to_owned();
    let path = format!("/ca_certificates/{id}");
    let original = read(&reader, &path, true).await?;
    let remove = json!({"kind": "ca_certificate", "match": {"id": id}, "state": "absent"});
    let change = plan(&twin, &remove).await?;
    assert_eq!(change.summary, format!("delete CA certificate {id}"));
    assert!(
        change
            .before
            .as_deref()
            .is_some_and(|before| before.contains("cert: |\n  -----BEGIN CERTIFICATE-----\n")),
        "{change:?}"
    );
    let removed = apply(&twin, &remove).await?;
    assert_eq!(read(&reader, &path, true).await?, None);
    undo(&twin, &remove, removed).await?;
    assert_eq!(read(&reader, &path, true).await?, original);
    Ok(())
}

/// Runs the undo record of `applied` twice, as a rollback interrupted after the first
/// undo and resumed would.
async fn undo_twice(twin: &KongTwin, arguments: &Value, applied: Applied) -> TestResult {
    let record = applied.undo.ok_or("no undo record")?;
    for _ in 0..2 {
        KongEntity::new()
            .undo(
                &context(twin, false, None),
                arguments.clone(),
                record.clone(),
            )
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn undo_of_a_deleted_target_can_run_twice() -> TestResult {
    let twin = twin().await?;
    seed(
        &twin,
        json!({"_format_version": "3.0", "upstreams": [{"name": "core",
            "targets": [{"target": "10.0.0.5:8000", "weight": 50}]}]}),
    )?;
    let reader = client(&twin, false).await?;
    let path = "/upstreams/core/targets/10.0.0.5:8000";
    let original = read(&reader, path, true).await?;
    let remove = json!({"kind": "target", "match": {"upstream": "core", "target": "10.0.0.5"},
        "state": "absent"});
    let removed = apply(&twin, &remove).await?;
    assert_eq!(read(&reader, path, true).await?, None);
    undo_twice(&twin, &remove, removed).await?;
    assert_eq!(read(&reader, path, true).await?, original);
    Ok(())
}

#[tokio::test]
async fn undo_of_a_ttl_given_to_a_key_without_one_clears_it_again() -> TestResult {
    let twin = twin().await?;
    let key = "gina-key-0123456789";
    seed(
        &twin,
        json!({"_format_version": "3.0", "consumers": [{"username": "gina",
            "keyauth_credentials": [{"key": key}]}]}),
    )?;
    let reader = client(&twin, false).await?;
    let expire = json!({"kind": "key_auth", "match": {"consumer": "gina", "key": key},
        "spec": {"ttl": 3600}});
    let expiring = apply(&twin, &expire).await?;
    let id = expiring.outputs["id"].as_str().ok_or("no id")?.to_owned();
    let path = format!("/consumers/gina/key-auth/{id}");
    assert!(reader.get(&path).await?["ttl"].as_i64().is_some());
    undo(&twin, &expire, expiring).await?;
    assert_eq!(
        reader.get(&path).await?["ttl"],
        Value::Null,
        "no expiry again"
    );
    Ok(())
}

#[tokio::test]
async fn an_id_of_another_consumers_credential_is_refused_not_taken_over() -> TestResult {
    let twin = twin().await?;
    let id = "0b6c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d";
    seed(
        &twin,
        json!({"_format_version": "3.0", "consumers": [
            {"username": "alice"},
            {"username": "bob", "keyauth_credentials": [{"id": id, "key": "bob-key-0123456789"}]}
        ]}),
    )?;
    let reader = client(&twin, false).await?;
    let original = read(&reader, &format!("/key-auths/{id}"), false).await?;
    let take = json!({"kind": "key_auth", "match": {"consumer": "alice", "id": id},
        "spec": {"tags": ["alice"]}});
    let refused = message(apply(&twin, &take).await)?;
    assert!(
        refused.starts_with(&format!(
            "create key-auth credential {id} of consumer alice:"
        )) && refused.contains("primary key violation"),
        "{refused}"
    );
    assert_eq!(
        count(&twin, &format!("PUT /consumers/alice/key-auth/{id}")).await?,
        0,
        "a PUT by id would move bob's credential to alice and replace it on a real Kong"
    );
    assert_eq!(
        read(&reader, &format!("/key-auths/{id}"), false).await?,
        original
    );
    let own = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    let created = apply(
        &twin,
        &json!({"kind": "key_auth", "match": {"consumer": "alice", "id": own}}),
    )
    .await?;
    assert_eq!(
        created.outputs["id"],
        json!(own),
        "a fresh id is still pinned"
    );
    assert_eq!(
        reader
            .get(&format!("/consumers/alice/key-auth/{own}"))
            .await?["id"],
        json!(own)
    );
    Ok(())
}

#[tokio::test]
async fn a_name_shaped_like_an_id_does_not_reach_the_entity_with_that_id() -> TestResult {
    let twin = twin().await?;
    let id = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a";
    seed(
        &twin,
        json!({"_format_version": "3.0", "services": [
            {"id": id, "name": "orders", "host": "orders.internal"}
        ]}),
    )?;
    let reader = client(&twin, false).await?;
    let remove = json!({"kind": "service", "match": {"name": id}, "state": "absent"});
    assert_eq!(
        plan(&twin, &remove).await?,
        Change::none(format!("service {id}: absent, no change"))
    );
    let applied = apply(&twin, &remove).await?;
    assert_eq!(applied.outputs["changed"], json!(false));
    assert_eq!(reader.get("/services/orders").await?["id"], json!(id));
    let create =
        json!({"kind": "service", "match": {"name": id}, "spec": {"host": "other.internal"}});
    assert_eq!(
        plan(&twin, &create).await?.summary,
        format!("create service {id}")
    );
    Ok(())
}

#[tokio::test]
async fn a_plugin_on_a_service_id_that_is_gone_is_absent() -> TestResult {
    let twin = twin().await?;
    let gone = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b";
    let remove = json!({"kind": "plugin", "match": {"name": "cors", "service": {"id": gone}},
        "state": "absent"});
    assert_eq!(
        plan(&twin, &remove).await?,
        Change::none(format!("plugin cors on service {gone}: absent, no change"))
    );
    let applied = apply(&twin, &remove).await?;
    assert_eq!(applied.outputs["changed"], json!(false));
    Ok(())
}

#[tokio::test]
async fn secrets_inside_a_plugin_config_stay_out_of_plans_outputs_and_errors() -> TestResult {
    let twin = twin().await?;
    seed(
        &twin,
        json!({"_format_version": "3.0",
            "services": [{"name": "orders", "host": "orders.internal"}]}),
    )?;
    let create = json!({"kind": "plugin", "match": {"name": "rate-limiting", "service": "orders"},
        "spec": {"config": {"minute": 5, "policy": "redis",
            "redis": {"host": "redis.internal", "password": "redis-pw-4c1d"}}}});
    let change = plan(&twin, &create).await?;
    let shown = format!("{change:?}");
    assert!(!shown.contains("redis-pw-4c1d"), "{shown}");
    assert!(shown.contains("redis.internal"), "{shown}");
    let created = apply(&twin, &create).await?;
    assert!(created.secrets.contains(&"redis-pw-4c1d".to_owned()));
    let outputs = serde_json::to_string(&created.outputs)?;
    assert!(!outputs.contains("redis-pw-4c1d"), "{outputs}");
    assert_eq!(
        created.outputs["entity"]["config"]["redis"]["password"],
        json!(super::entity::MASK)
    );
    let stored = client(&twin, false)
        .await?
        .list("/plugins")
        .await?
        .into_iter()
        .next()
        .ok_or("no plugin")?;
    assert_eq!(
        stored["config"]["redis"]["password"],
        json!("redis-pw-4c1d")
    );

    let rekey = json!({"kind": "plugin", "match": {"name": "rate-limiting", "service": "orders"},
        "spec": {"config": {"redis": {"password": "redis-pw-77aa"}}}});
    let change = plan(&twin, &rekey).await?;
    let shown = format!("{change:?}");
    assert_eq!(change.changes, Some(true));
    assert!(
        !shown.contains("redis-pw-4c1d") && !shown.contains("redis-pw-77aa"),
        "{shown}"
    );
    let updated = apply(&twin, &rekey).await?;
    assert!(
        updated.secrets.contains(&"redis-pw-4c1d".to_owned()),
        "the previous value too"
    );
    assert!(updated.secrets.contains(&"redis-pw-77aa".to_owned()));
    Ok(())
}

/// Applies `arguments` with the gateway's `request_timeout` set to `timeout`.
async fn apply_waiting(
    twin: &KongTwin,
    arguments: &Value,
    timeout: std::time::Duration,
) -> Result<Applied, ActionError> {
    let context = with_request_timeout(context(twin, false, None), timeout);
    KongEntity::new().apply(&context, arguments.clone()).await
}

#[tokio::test]
async fn a_write_answered_after_the_timeout_is_found_applied_and_keeps_its_undo() -> TestResult {
    let twin = twin().await?;
    let reader = client(&twin, false).await?;
    let create = json!({"kind": "service", "match": {"name": "late"}, "spec": {"host": "late.internal"}});
    control(&twin, reqwest::Method::POST, "/_twin/faults",
        Some(json!({"delay_nth_write": 1, "delay_ms": 1500}))).await?;
    // Lands half a second after the 1 s timeout, half a second before the look-again ends.
    let applied = apply_waiting(&twin, &create, std::time::Duration::from_secs(1)).await?;
    assert_eq!(applied.outputs["changed"], json!(true), "{applied:?}");
    let created = read(&reader, "/services/late", true).await?.ok_or("not created")?;
    assert_eq!(applied.outputs["id"], created["id"]);
    assert_eq!(writes(&twin).await?, 1, "the create was sent once");
    undo(&twin, &create, applied).await?;
    assert_eq!(read(&reader, "/services/late", true).await?, None, "the undo deletes it");
    Ok(())
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_is_found_applied_even_when_its_retries_fail() -> TestResult {
    // Kong applies the write and the connection closes before its answer. A POST is not
    // sent again; a PUT (a create with a pinned id) is, and its retries get 503s. Either
    // way the write is looked for, found, and the step goes on with its undo record.
    let id = "6a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
    for (create, request, sent) in [
        (json!({"kind": "consumer", "match": {"username": "cut"}}), "POST /consumers", 1),
        (json!({"kind": "consumer", "match": {"id": id, "username": "cut"}}), &*format!("PUT /consumers/{id}"), 3),
    ] {
        let twin = twin().await?;
        let reader = client(&twin, false).await?;
        control(&twin, reqwest::Method::POST, "/_twin/faults",
            Some(json!({"drop_nth_write": 1, "when": "after"}))).await?;
        control(&twin, reqwest::Method::POST, "/_twin/faults",
            Some(json!({"fail_nth_write": 2, "status": 503, "probability": 1.0, "seed": 1}))).await?;
        let applied = apply_waiting(&twin, &create, std::time::Duration::from_secs(2)).await?;
        control(&twin, reqwest::Method::DELETE, "/_twin/faults", None).await?;
        assert_eq!(count(&twin, request).await?, sent, "{request}");
        assert_eq!(applied.outputs["changed"], json!(true), "{applied:?}");
        let created = read(&reader, "/consumers/cut", true).await?.ok_or("not created")?;
        assert_eq!(applied.outputs["id"], created["id"]);
        undo(&twin, &create, applied).await?;
        assert_eq!(read(&reader, "/consumers/cut", true).await?, None, "the undo deletes it");
    }
    Ok(())
}

#[tokio::test]
async fn a_write_run_again_after_a_crash_undoes_to_what_its_first_try_replaced() -> TestResult {
    let twin = twin().await?;
    let reader = client(&twin, false).await?;
    let action = KongEntity::new();
    // A create and then an update, each killed after its write and run again on resume:
    // the undo of the run-again step puts back what the first try replaced.
    let create = json!({"kind": "service", "match": {"name": "crashed"}, "spec": {"host": "a.internal"}});
    let update = json!({"kind": "service", "match": {"name": "crashed"}, "spec": {"host": "b.internal"}});
    for (arguments, before) in [(&create, None), (&update, Some("a.internal"))] {
        let (first, kept) = keeping(context(&twin, false, None), None);
        action.apply(&first, arguments.clone()).await?;
        let kept = kept.lock().map_err(|_| "poisoned")?.first().cloned();
        assert!(kept.is_some(), "nothing kept before the write");
        let (again, _) = keeping(context(&twin, false, None), kept);
        let applied = action.apply(&again, arguments.clone()).await?;
        assert_eq!(applied.outputs["changed"], json!(true), "{arguments}");
        action
            .undo(&again, arguments.clone(), applied.undo.ok_or("no undo record")?)
            .await?;
        let host = read(&reader, "/services/crashed", false)
            .await?
            .and_then(|service| service["host"].as_str().map(str::to_owned));
        assert_eq!(host.as_deref(), before, "after the undo of {arguments}");
        if before.is_none() {
            // Put the service back for the update's round.
            action.apply(&context(&twin, false, None), create.clone()).await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_write_still_unanswered_after_the_wait_leaves_the_step_needing_attention() -> TestResult {
    let twin = twin().await?;
    let create = json!({"kind": "service", "match": {"name": "later"}, "spec": {"host": "later.internal"}});
    control(&twin, reqwest::Method::POST, "/_twin/faults",
        Some(json!({"delay_nth_write": 1, "delay_ms": 1500}))).await?;
    let error = apply_waiting(&twin, &create, std::time::Duration::from_millis(200))
        .await
        .err()
        .ok_or("the step succeeded")?;
    let ActionError::PartiallyApplied { message, changes_left } = &error else {
        return Err(format!("not a partial outcome: {error:?}").into());
    };
    assert!(message.contains("create service later:") && message.contains("no answer within 200ms"), "{message}");
    assert_eq!(changes_left.len(), 1);
    assert!(changes_left[0].contains("Kong may still apply it"), "{changes_left:?}");
    // The write lands after all, as the message warned.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let reader = client(&twin, false).await?;
    assert!(read(&reader, "/services/later", true).await?.is_some());
    Ok(())
}
