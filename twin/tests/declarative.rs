//! Declarative configuration (`POST /config`, `--seed`), the DB-less profile and the RBAC token,
//! over real HTTP (reference §1.1, §10, §11).
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use runsheet_twin::kong::TwinConfig;
use serde_json::{Value, json};

mod pki;
mod support;
use support::{Admin, Reply};

/// A decK-style file with nested and top-level children.
const SEED: &str = r#"
_format_version: "3.0"
_info: {select_tags: [lab]}
services:
  - name: billing
    url: http://billing.internal:8080/v1
    tags: [lab]
    routes:
      - name: billing-api
        paths: [/billing]
upstreams:
  - name: billing.internal
    targets:
      - {target: "127.0.0.1:9001", weight: 100}
      - {target: "127.0.0.1:9002", weight: 0}
routes:
  - name: billing-admin
    service: billing
    paths: [/billing-admin]
"#;

/// A DB-less twin.
async fn db_less() -> Admin {
    Admin::start_with(TwinConfig {
        db_less: true,
        ..TwinConfig::with_version("3.9.1")
    })
    .await
}

/// POSTs raw `text` to `/config` with `content_type`.
async fn post_config(admin: &Admin, query: &str, content_type: &str, text: &str) -> Reply {
    let response = admin
        .http
        .post(format!("{}/config{query}", admin.twin.url()))
        .header("content-type", content_type)
        .body(text.to_owned())
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

#[tokio::test]
async fn seed_loads_nested_and_top_level_children() {
    let admin = Admin::start().await;
    admin.twin.seed(SEED).unwrap();
    let service = admin.get("/services/billing").await;
    assert_eq!(service.status, 200);
    assert_eq!(service.body["host"], "billing.internal");
    assert_eq!(service.body["path"], "/v1");
    let routes = admin.get("/services/billing/routes").await;
    let mut names: Vec<&str> = routes.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|route| route["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["billing-admin", "billing-api"]);
    let targets = admin.get("/upstreams/billing.internal/targets").await;
    assert_eq!(targets.body["data"].as_array().unwrap().len(), 2);
    // A seeded twin is a normal DB-backed node: writes work and /config is refused.
    assert_eq!(
        admin
            .post("/services", json!({"name": "x", "host": "x.internal"}))
            .await
            .status,
        201
    );
    let refused = admin.post("/config", json!({"_format_version": "3.0"})).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body,
        json!({"message": "this endpoint is only available when Kong is configured to not use a database"})
    );
}

#[tokio::test]
async fn a_bad_seed_names_the_place_and_leaves_the_twin_empty() {
    let admin = Admin::start().await;
    let error = admin
        .twin
        .seed("_format_version: '3.0'\nservices:\n- name: a\n  routes:\n  - {name: r, paths: [nope]}\n")
        .unwrap_err();
    let body = error.body();
    assert_eq!(body["code"], 14);
    assert_eq!(body["name"], "invalid declarative configuration");
    assert_eq!(body["fields"]["services"][0]["host"], "required field missing");
    assert!(body["fields"]["services"][0]["routes"][0]["paths"].is_array(), "{body}");
    assert_eq!(admin.get("/services").await.body["data"], json!([]));
}

#[tokio::test]
async fn db_less_post_config_replaces_everything_and_changes_the_hash() {
    let admin = db_less().await;
    let before = admin.get("/status").await.body;
    assert_eq!(before["configuration_hash"], "00000000000000000000000000000000");
    assert!(before.get("database").is_none(), "{before}");
    assert_eq!(admin.get("/").await.body["configuration"]["database"], "off");

    let loaded = post_config(&admin, "", "application/yaml", SEED).await;
    assert_eq!(loaded.status, 201, "{}", loaded.body);
    assert_eq!(loaded.body["services"].as_object().unwrap().len(), 1);
    assert_eq!(loaded.body["routes"].as_object().unwrap().len(), 2);
    let hash = admin.get("/status").await.body["configuration_hash"].clone();
    assert_eq!(hash.as_str().unwrap().len(), 32);
    assert_ne!(hash, before["configuration_hash"]);

    // The same file again with check_hash=1 is a 304; the ids are stable either way.
    let same = post_config(&admin, "?check_hash=1", "application/yaml", SEED).await;
    assert_eq!(same.status, 304);
    let id = admin.get("/services/billing").await.body["id"].clone();
    let again = post_config(&admin, "", "text/yaml", SEED).await;
    assert_eq!(again.status, 201);
    assert_eq!(admin.get("/services/billing").await.body["id"], id);

    // A smaller file replaces the whole state.
    let smaller = admin
        .post(
            "/config",
            json!({"config": "_format_version: '3.0'\nservices:\n- {name: other, host: other.internal}\n"}),
        )
        .await;
    assert_eq!(smaller.status, 201, "{}", smaller.body);
    assert_eq!(admin.get("/services/billing").await.status, 404);
    assert_eq!(admin.get("/routes").await.body["data"], json!([]));
    assert_eq!(admin.get("/services/other").await.status, 200);
    let exported = admin.get("/config").await.body["config"].clone();
    let exported: Value = serde_json::from_str(exported.as_str().unwrap()).unwrap();
    assert_eq!(exported["_format_version"], "3.0");
    assert_eq!(exported["services"][0]["name"], "other");
}

#[tokio::test]
async fn db_less_config_errors_mirror_the_file_and_change_nothing() {
    let admin = db_less().await;
    assert_eq!(post_config(&admin, "", "application/yaml", SEED).await.status, 201);
    let bad = "_format_version: '3.0'\nservices:\n- {name: a, host: a.internal}\n- {name: a, host: b.internal}\n- {name: c}\n";
    let refused = post_config(&admin, "?flatten_errors=1", "application/yaml", bad).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["code"], 14);
    assert_eq!(
        refused.body["fields"],
        json!({"services": [null,
            "uniqueness violation: 'services' entity with name set to 'a' already declared",
            {"host": "required field missing"}]})
    );
    assert_eq!(refused.body["flattened_errors"].as_array().unwrap().len(), 2);
    assert_eq!(admin.get("/services/billing").await.status, 200, "old state kept");

    let empty = post_config(&admin, "", "application/yaml", "").await;
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.body,
        json!({"message": "expected a declarative configuration"})
    );
}

#[tokio::test]
async fn db_less_entity_writes_answer_405_with_code_12() {
    let admin = db_less().await;
    assert_eq!(post_config(&admin, "", "application/yaml", SEED).await.status, 201);
    let create = admin
        .post("/services", json!({"name": "x", "host": "x.internal"}))
        .await;
    assert_eq!(create.status, 405);
    assert_eq!(
        create.body,
        json!({"code": 12, "name": "operation unsupported",
               "message": "cannot create 'services' entities when not using a database"})
    );
    let by_name = admin.patch("/services/billing", json!({"retries": 1})).await;
    assert_eq!(
        by_name.body["message"],
        "cannot update 'services' entities by 'name' when not using a database"
    );
    let id = admin.get("/services/billing").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delete = admin.delete(&format!("/services/{id}")).await;
    assert_eq!(delete.status, 405);
    assert_eq!(
        delete.body["message"],
        "cannot remove 'services' entities when not using a database"
    );
    let nested = admin
        .post("/services/billing/routes", json!({"paths": ["/x"]}))
        .await;
    assert_eq!(
        nested.body["message"],
        "cannot create 'routes' entities when not using a database"
    );
    assert_eq!(admin.get("/services/billing").await.body["retries"], 5);
}

#[tokio::test]
async fn rbac_token_is_required_when_configured() {
    let admin = Admin::start_with(TwinConfig {
        admin_token: Some("s3cret".to_owned()),
        token_header: "X-Admin-Token".to_owned(),
        ..TwinConfig::with_version("3.10.0.2")
    })
    .await;
    let missing = admin.get("/services").await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.body,
        json!({"message": "Invalid credentials. Token or User credentials required"})
    );
    let url = format!("{}/services", admin.twin.url());
    for (header, token, status) in [
        ("X-Admin-Token", "wrong", 401),
        ("Kong-Admin-Token", "s3cret", 401),
        ("X-Admin-Token", "s3cret", 200),
    ] {
        let response = admin
            .http
            .get(&url)
            .header(header, token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{header}: {token}");
    }
}

#[tokio::test]
async fn an_export_loads_back_to_the_same_state_certificates_and_snis_included() {
    let pair = pki::ecdsa(&["a.example.com"]);
    let admin = Admin::start().await;
    let seed = json!({
        "_format_version": "3.0",
        "certificates": [{"cert": pair.cert, "key": pair.key,
                          "snis": [{"name": "a.example.com"}, {"name": "b.example.com"}]}],
        "services": [{"name": "billing", "host": "billing.internal",
                      "routes": [{"name": "r", "paths": ["/r"]}]}],
        "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "k1"}]}],
    });
    admin.twin.load(&seed).unwrap();
    let exported = admin.twin.export();
    let again = Admin::start().await;
    again.twin.load(&exported).unwrap();
    assert_eq!(again.twin.export(), exported);
    let certificate = again.get("/certificates/b.example.com").await;
    assert_eq!(certificate.status, 200);
    assert_eq!(certificate.body["snis"], json!(["a.example.com", "b.example.com"]));
}
