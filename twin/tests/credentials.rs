//! Conformance of the Kong twin's consumer credentials to the reference
//! (`shared/reference/kong-admin-api.md` §2.4, §3, §7.5, §7.6, §7.12), over real HTTP:
//! key-auth (with its TTL), jwt, acls, basic-auth and hmac-auth.
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use std::time::Duration;

use serde_json::{Value, json};

mod support;
use support::{Admin, consumer, created, id};

/// The entities of a list reply.
fn data(reply: &support::Reply) -> Vec<Value> {
    reply.body["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn key_auth_credentials_generate_keys_and_have_no_updated_at() {
    let admin = Admin::start().await;
    let alice = consumer(&admin, "alice").await;
    let generated = created(&admin, "/consumers/alice/key-auth", json!({})).await;
    let key = generated["key"].as_str().unwrap();
    assert_eq!(key.len(), 32);
    assert!(key.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(generated["consumer"], json!({"id": id(&alice)}));
    assert_eq!(generated["ttl"], Value::Null);
    assert_eq!(generated["tags"], Value::Null);
    assert!(generated.get("updated_at").is_none());
    assert!(generated["created_at"].is_i64());
    let chosen = created(
        &admin,
        "/consumers/alice/key-auth",
        json!({"key": "K2", "tags": ["rotation-2025-06"]}),
    )
    .await;
    assert_eq!(chosen["key"], "K2");
    consumer(&admin, "bob").await;
    let taken = admin
        .post("/consumers/bob/key-auth", json!({"key": "K2"}))
        .await;
    assert_eq!(
        (taken.status, taken.body),
        (
            409,
            json!({"code": 5, "name": "unique constraint violation",
                "message": "UNIQUE violation detected on '{key=\"K2\"}'", "fields": {"key": "K2"}})
        )
    );
    let listed = admin.get("/consumers/alice/key-auth").await;
    assert_eq!(data(&listed).len(), 2);
    assert_eq!(admin.get("/consumers/alice/key-auth/K2").await.body, chosen);
    assert_eq!(
        admin.get(&format!("/key-auths/{}", id(&chosen))).await.body,
        chosen
    );
    assert_eq!(admin.get("/consumers/bob/key-auth/K2").await.status, 404);
    let owner = admin.get("/key-auths/K2/consumer").await;
    assert_eq!(owner.body, alice);
    let no_consumer = admin.post("/key-auths", json!({"key": "K9"})).await;
    assert_eq!(
        (no_consumer.status, no_consumer.body),
        (
            400,
            json!({"code": 2, "name": "schema violation",
                "message": "schema violation (consumer: required field missing)",
                "fields": {"consumer": "required field missing"}})
        )
    );
    let top = admin
        .post(
            "/key-auths",
            json!({"key": "K9", "consumer": {"username": "bob"}}),
        )
        .await;
    assert_eq!(top.status, 201, "{}", top.body);
    assert_eq!(data(&admin.get("/key-auths").await).len(), 3);
}

#[tokio::test]
async fn key_auth_put_patch_and_delete_follow_nested_rules() {
    let admin = Admin::start().await;
    consumer(&admin, "alice").await;
    let by_key = admin.put("/consumers/alice/key-auth/K3", json!({})).await;
    assert_eq!(
        (by_key.status, by_key.body["key"].clone()),
        (200, json!("K3"))
    );
    let pinned = "0b5a5f0e-0000-4000-8000-00000000000a";
    let by_id = admin
        .put(&format!("/consumers/alice/key-auth/{pinned}"), json!({}))
        .await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.body["id"], pinned);
    assert_eq!(by_id.body["key"].as_str().unwrap().len(), 32);
    let patched = admin
        .patch("/consumers/alice/key-auth/K3", json!({"key": "K4"}))
        .await;
    assert_eq!(
        (patched.status, patched.body["key"].clone()),
        (200, json!("K4"))
    );
    assert_eq!(
        admin.delete("/consumers/alice/key-auth/K4").await.status,
        204
    );
    let again = admin.delete("/consumers/alice/key-auth/K4").await;
    assert_eq!(
        (again.status, again.body),
        (404, json!({"message": "Not found"}))
    );
    assert_eq!(admin.delete("/key-auths/K4").await.status, 204);
    assert_eq!(
        admin.delete(&format!("/key-auths/{pinned}")).await.status,
        204
    );
    assert_eq!(
        admin.delete(&format!("/key-auths/{pinned}")).await.status,
        204
    );
    assert_eq!(data(&admin.get("/key-auths").await), Vec::<Value>::new());
}

#[tokio::test]
async fn key_auth_ttl_counts_down_and_expired_keys_vanish() {
    let admin = Admin::start().await;
    consumer(&admin, "alice").await;
    let nested = "/consumers/alice/key-auth";
    let short = created(&admin, nested, json!({"key": "short", "ttl": 1})).await;
    assert_eq!(short["ttl"], 1);
    let long = created(&admin, nested, json!({"key": "long", "ttl": 100})).await;
    assert_eq!(long["ttl"], 100);
    created(&admin, nested, json!({"key": "kept", "ttl": 100})).await;
    created(&admin, nested, json!({"key": "cleared", "ttl": 100})).await;
    created(&admin, nested, json!({"key": "replaced", "ttl": 100})).await;
    let kept = admin
        .patch(&format!("{nested}/kept"), json!({"tags": ["x"]}))
        .await;
    assert_eq!(kept.body["ttl"], 99, "PATCH without ttl keeps the expiry");
    let cleared = admin
        .patch(&format!("{nested}/cleared"), json!({"ttl": 0}))
        .await;
    assert_eq!(cleared.body["ttl"], Value::Null);
    let replaced = admin.put(&format!("{nested}/replaced"), json!({})).await;
    assert_eq!(replaced.body["ttl"], Value::Null);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let remaining = admin.get(&format!("{nested}/long")).await.body["ttl"]
        .as_i64()
        .unwrap();
    assert!((97..=98).contains(&remaining), "{remaining}");
    let restarted = admin
        .patch(&format!("{nested}/long"), json!({"ttl": 50}))
        .await;
    assert_eq!(restarted.body["ttl"], 50);
    let missing = json!({"message": "Not found"});
    let gone = admin.get(&format!("{nested}/short")).await;
    assert_eq!((gone.status, gone.body), (404, missing.clone()));
    assert_eq!(admin.get("/key-auths/short").await.status, 404);
    assert_eq!(
        admin
            .get(&format!("/key-auths/{}", id(&short)))
            .await
            .status,
        404
    );
    let keys: Vec<Value> = data(&admin.get("/key-auths").await)
        .iter()
        .map(|credential| credential["key"].clone())
        .collect();
    assert!(!keys.contains(&json!("short")));
    assert_eq!(keys.len(), 4);
    assert_eq!(data(&admin.get(nested).await).len(), 4);
    let deleted = admin.delete(&format!("{nested}/short")).await;
    assert_eq!((deleted.status, deleted.body), (404, missing));
    let reused = admin.post(nested, json!({"key": "short"})).await;
    assert_eq!(
        reused.status, 201,
        "an expired key is free again: {}",
        reused.body
    );
}

#[tokio::test]
async fn bad_ttl_values_are_invalid_options() {
    let admin = Admin::start().await;
    consumer(&admin, "alice").await;
    let expected = json!({"code": 11, "name": "invalid options",
        "message": "invalid option (ttl: must be an integer between 0 and 100000000)",
        "options": {"ttl": "must be an integer between 0 and 100000000"}});
    for ttl in [json!(-1), json!(100_000_001), json!(2.5), json!("soon")] {
        let reply = admin
            .post("/consumers/alice/key-auth", json!({"ttl": ttl}))
            .await;
        assert_eq!((reply.status, reply.body), (400, expected.clone()), "{ttl}");
    }
    let created = created(&admin, "/consumers/alice/key-auth", json!({"key": "k"})).await;
    let patch = admin
        .patch(&format!("/key-auths/{}", id(&created)), json!({"ttl": -5}))
        .await;
    assert_eq!((patch.status, patch.body), (400, expected));
    let other = admin
        .post("/consumers", json!({"username": "bob", "ttl": 10}))
        .await;
    assert_eq!(other.body["fields"], json!({"ttl": "unknown field"}));
}

#[tokio::test]
async fn jwt_credentials_generate_key_and_secret_and_need_a_public_key_for_rs256() {
    let admin = Admin::start().await;
    consumer(&admin, "alice").await;
    let jwt = created(&admin, "/consumers/alice/jwt", json!({})).await;
    assert_eq!(jwt["algorithm"], "HS256");
    assert_eq!(jwt["key"].as_str().unwrap().len(), 32);
    assert_eq!(jwt["secret"].as_str().unwrap().len(), 32);
    assert_eq!(jwt["rsa_public_key"], Value::Null);
    assert!(jwt.get("updated_at").is_none());
    let rs = admin
        .post("/consumers/alice/jwt", json!({"algorithm": "RS256"}))
        .await;
    assert_eq!(
        (rs.status, rs.body),
        (
            400,
            json!({"code": 2, "name": "schema violation",
                "message": "2 schema violations (failed conditional validation given value of field 'algorithm'; rsa_public_key: required field missing)",
                "fields": {"rsa_public_key": "required field missing",
                    "@entity": ["failed conditional validation given value of field 'algorithm'"]}})
        )
    );
    let bad = admin
        .post("/consumers/alice/jwt", json!({"algorithm": "none"}))
        .await;
    assert_eq!(
        bad.body["fields"]["algorithm"],
        "expected one of: HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA"
    );
    let taken = admin
        .post("/consumers/alice/jwt", json!({"key": jwt["key"]}))
        .await;
    assert_eq!(taken.status, 409);
    assert_eq!(
        admin
            .get(&format!("/jwts/{}", jwt["key"].as_str().unwrap()))
            .await
            .body,
        jwt
    );
    assert_eq!(data(&admin.get("/jwts").await).len(), 1);
}

#[tokio::test]
async fn acl_groups_are_unique_per_consumer_and_addressed_by_name() {
    let admin = Admin::start().await;
    let alice = consumer(&admin, "alice").await;
    consumer(&admin, "bob").await;
    let admins = created(&admin, "/consumers/alice/acls", json!({"group": "admins"})).await;
    let duplicate = admin
        .post("/consumers/alice/acls", json!({"group": "admins"}))
        .await;
    let alice_id = id(&alice);
    assert_eq!(
        (duplicate.status, duplicate.body),
        (
            409,
            json!({"code": 5, "name": "unique constraint violation",
                "message": format!("UNIQUE violation detected on '{{consumer={{id=\"{alice_id}\"}},group=\"admins\"}}'"),
                "fields": {"consumer": {"id": alice_id}, "group": "admins"}})
        )
    );
    created(&admin, "/consumers/bob/acls", json!({"group": "admins"})).await;
    assert_eq!(admin.get("/consumers/alice/acls/admins").await.body, admins);
    let put_existing = admin
        .put("/consumers/alice/acls/admins", json!({"tags": ["t"]}))
        .await;
    assert_eq!(put_existing.status, 200, "{}", put_existing.body);
    assert_eq!(put_existing.body["id"], admins["id"]);
    let put_new = admin.put("/consumers/alice/acls/ops", json!({})).await;
    assert_eq!(
        (put_new.status, put_new.body["group"].clone()),
        (200, json!("ops"))
    );
    let patched = admin
        .patch("/consumers/alice/acls/ops", json!({"tags": ["p"]}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["id"], put_new.body["id"]);
    assert_eq!(data(&admin.get("/consumers/alice/acls").await).len(), 2);
    assert_eq!(data(&admin.get("/acls").await).len(), 3);
    assert_eq!(admin.get("/consumers/alice/acls/nobody").await.status, 404);
    assert_eq!(
        admin.delete("/consumers/alice/acls/admins").await.status,
        204
    );
    assert_eq!(
        admin.delete("/consumers/alice/acls/admins").await.status,
        404
    );
    assert_eq!(admin.get("/consumers/bob/acls/admins").await.status, 200);
}

#[tokio::test]
async fn basic_auth_passwords_are_stored_as_kong_hashes() {
    let admin = Admin::start().await;
    let alice = consumer(&admin, "alice").await;
    let credential = created(
        &admin,
        "/consumers/alice/basic-auth",
        json!({"username": "alice-login", "password": "s3cret"}),
    )
    .await;
    let hash = |password: &str| sha1_hex(&format!("{password}{}", id(&alice)));
    assert_eq!(credential["password"], hash("s3cret"));
    let tagged = admin
        .patch("/basic-auths/alice-login", json!({"tags": ["t"]}))
        .await;
    assert_eq!(
        tagged.body["password"],
        hash("s3cret"),
        "PATCH without password keeps the hash"
    );
    let changed = admin
        .patch(
            "/consumers/alice/basic-auth/alice-login",
            json!({"password": "n3w"}),
        )
        .await;
    assert_eq!(changed.body["password"], hash("n3w"));
    let taken = admin
        .post(
            "/consumers/alice/basic-auth",
            json!({"username": "alice-login", "password": "x"}),
        )
        .await;
    assert_eq!(taken.status, 409);
    assert_eq!(taken.body["fields"], json!({"username": "alice-login"}));
    let missing = admin
        .post("/consumers/alice/basic-auth", json!({"username": "other"}))
        .await;
    assert_eq!(
        missing.body["fields"],
        json!({"password": "required field missing"})
    );
}

/// SHA-1 hex of `text` by the system's `sha1sum`, independent of the twin's code.
fn sha1_hex(text: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn hmac_auth_credentials_have_unique_usernames_and_generated_secrets() {
    let admin = Admin::start().await;
    consumer(&admin, "alice").await;
    let hmac = created(
        &admin,
        "/consumers/alice/hmac-auth",
        json!({"username": "h"}),
    )
    .await;
    assert_eq!(hmac["secret"].as_str().unwrap().len(), 32);
    let taken = admin
        .post("/consumers/alice/hmac-auth", json!({"username": "h"}))
        .await;
    assert_eq!(taken.status, 409);
    assert_eq!(admin.get("/hmac-auths/h").await.body, hmac);
    assert_eq!(
        admin.get("/hmac-auths/h/consumer").await.body["username"],
        "alice"
    );
}

#[tokio::test]
async fn deleting_a_consumer_cascades_its_credentials_and_plugins() {
    let admin = Admin::start().await;
    consumer(&admin, "alice").await;
    consumer(&admin, "bob").await;
    for (path, body) in [
        ("key-auth", json!({})),
        ("jwt", json!({})),
        ("acls", json!({"group": "g"})),
        ("basic-auth", json!({"username": "a", "password": "p"})),
        ("hmac-auth", json!({"username": "a"})),
        (
            "plugins",
            json!({"name": "rate-limiting", "config": {"minute": 1}}),
        ),
    ] {
        created(&admin, &format!("/consumers/alice/{path}"), body).await;
    }
    created(&admin, "/consumers/bob/key-auth", json!({})).await;
    assert_eq!(admin.delete("/consumers/alice").await.status, 204);
    for collection in ["/jwts", "/acls", "/basic-auths", "/hmac-auths", "/plugins"] {
        assert_eq!(
            data(&admin.get(collection).await),
            Vec::<Value>::new(),
            "{collection}"
        );
    }
    assert_eq!(data(&admin.get("/key-auths").await).len(), 1);
    assert_eq!(admin.get("/consumers/alice/key-auth").await.status, 404);
}

#[tokio::test]
async fn declarative_ttl_is_an_absolute_expiry() {
    let admin = Admin::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let file = format!(
        "_format_version: '3.0'\nconsumers:\n- username: alice\n  keyauth_credentials:\n  - key: past\n    ttl: {}\n  - key: future\n    ttl: {}\n",
        now - 10,
        now + 100
    );
    admin.twin.seed(&file).unwrap();
    assert_eq!(admin.get("/key-auths/past").await.status, 404);
    let future = admin.get("/key-auths/future").await;
    let remaining = future.body["ttl"].as_i64().unwrap();
    assert!((98..=100).contains(&remaining), "{remaining}");
    let exported = admin.twin.export();
    let keys = exported["keyauth_credentials"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["ttl"], json!(now + 100));
}
