//! Conformance of the Kong twin's consumers, plugins, schemas, tags and endpoints
//! catalogue to the reference (`shared/reference/kong-admin-api.md` §2-§5, §7.3, §7.4,
//! §7.12, §9.4), over real HTTP.
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use serde_json::{Value, json};

mod support;
use support::{Admin, Reply, consumer, created, id};

/// A code-2 body with `fields` and its message.
fn violation(message: &str, fields: Value) -> Value {
    json!({"code": 2, "name": "schema violation", "message": message, "fields": fields})
}

/// Status and body together, for one-line comparisons.
fn answer(reply: Reply) -> (u16, Value) {
    (reply.status, reply.body)
}

#[tokio::test]
async fn consumers_need_a_username_or_custom_id_and_both_are_unique() {
    let admin = Admin::start().await;
    let empty = admin.post("/consumers", json!({})).await;
    let message = "at least one of these fields must be non-empty: 'custom_id', 'username'";
    assert_eq!(
        answer(empty),
        (
            400,
            violation(
                &format!("schema violation ({message})"),
                json!({"@entity": [message]})
            )
        )
    );
    let alice = created(
        &admin,
        "/consumers",
        json!({"username": "alice", "custom_id": "c-1"}),
    )
    .await;
    for field in [
        "id",
        "created_at",
        "updated_at",
        "username",
        "custom_id",
        "tags",
    ] {
        assert!(alice.get(field).is_some(), "{field}");
    }
    assert_eq!(alice["tags"], Value::Null);
    let same_name = admin.post("/consumers", json!({"username": "alice"})).await;
    assert_eq!(
        answer(same_name),
        (
            409,
            json!({"code": 5, "name": "unique constraint violation",
                "message": "UNIQUE violation detected on '{username=\"alice\"}'",
                "fields": {"username": "alice"}})
        )
    );
    let same_custom_id = admin.post("/consumers", json!({"custom_id": "c-1"})).await;
    assert_eq!(same_custom_id.status, 409);
    assert_eq!(same_custom_id.body["fields"], json!({"custom_id": "c-1"}));
    assert_eq!(admin.get("/consumers/alice").await.body, alice);
    let bob = admin.put("/consumers/bob", json!({})).await;
    assert_eq!(
        (bob.status, bob.body["username"].clone()),
        (200, json!("bob"))
    );
}

#[tokio::test]
async fn custom_id_query_is_an_exact_lookup() {
    let admin = Admin::start().await;
    let alice = created(
        &admin,
        "/consumers",
        json!({"username": "alice", "custom_id": "c-1"}),
    )
    .await;
    created(
        &admin,
        "/consumers",
        json!({"username": "carol", "custom_id": "c-10"}),
    )
    .await;
    assert_eq!(
        answer(admin.get("/consumers?custom_id=c-1").await),
        (200, json!({"data": [alice], "next": null}))
    );
    assert_eq!(
        answer(admin.get("/consumers?custom_id=nobody").await),
        (200, json!({"data": [], "next": null}))
    );
    assert_eq!(
        answer(admin.get("/consumers?custom_id=").await),
        (
            400,
            json!({"message": "custom_id must be an unempty string"})
        )
    );
    assert_eq!(
        admin.get("/consumers").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn key_auth_plugin_gets_every_default() {
    let admin = Admin::start().await;
    let plugin = created(&admin, "/plugins", json!({"name": "key-auth"})).await;
    assert_eq!(
        plugin["config"],
        json!({"key_names": ["apikey"], "hide_credentials": false, "anonymous": null,
            "key_in_header": true, "key_in_query": true, "key_in_body": false,
            "run_on_preflight": true, "realm": null})
    );
    assert_eq!(
        plugin["protocols"],
        json!(["grpc", "grpcs", "http", "https"])
    );
    assert_eq!(plugin["enabled"], true);
    for field in ["route", "service", "consumer", "instance_name", "tags"] {
        assert_eq!(plugin[field], Value::Null, "{field}");
    }
    let fetched = admin.get(&format!("/plugins/{}", id(&plugin))).await;
    assert_eq!(fetched.body, plugin);
}

#[tokio::test]
async fn plugin_names_and_config_keys_are_checked() {
    let admin = Admin::start().await;
    let not_enabled = "plugin 'nope' not enabled; add it to the 'plugins' configuration property";
    assert_eq!(
        answer(admin.post("/plugins", json!({"name": "nope"})).await),
        (
            400,
            violation(
                &format!("schema violation (name: {not_enabled})"),
                json!({"name": not_enabled})
            )
        )
    );
    let unknown = admin
        .post(
            "/plugins",
            json!({"name": "key-auth", "config": {"colour": "blue"}}),
        )
        .await;
    assert_eq!(
        answer(unknown),
        (
            400,
            violation(
                "schema violation (config.colour: unknown field)",
                json!({"config": {"colour": "unknown field"}})
            )
        )
    );
    let bad_header = admin
        .post(
            "/plugins",
            json!({"name": "key-auth", "config": {"key_names": ["ok", "no way"]}}),
        )
        .await;
    assert_eq!(
        bad_header.body["fields"],
        json!({"config": {"key_names": [null, "bad header name 'no way', allowed characters are A-Z, a-z, 0-9, '_', and '-'"]}})
    );
    let bad_protocol = admin
        .post(
            "/plugins",
            json!({"name": "key-auth", "protocols": ["tcp"]}),
        )
        .await;
    assert_eq!(
        bad_protocol.body["fields"],
        json!({"protocols": ["expected one of: grpc, grpcs, http, https"]})
    );
    let alice = consumer(&admin, "alice").await;
    let scoped = admin
        .post(
            "/plugins",
            json!({"name": "key-auth", "consumer": {"id": id(&alice)}}),
        )
        .await;
    assert_eq!(
        answer(scoped),
        (
            400,
            violation(
                "schema violation (consumer: value must be null)",
                json!({"consumer": "value must be null"})
            )
        )
    );
    assert_eq!(
        admin.get("/plugins").await.body,
        json!({"data": [], "next": null})
    );
}

#[tokio::test]
async fn plugins_are_unique_per_name_and_scope_with_a_composite_conflict() {
    let admin = Admin::start().await;
    created(&admin, "/plugins", json!({"name": "basic-auth"})).await;
    let global = admin.post("/plugins", json!({"name": "basic-auth"})).await;
    assert_eq!(
        answer(global),
        (
            409,
            json!({"code": 5, "name": "unique constraint violation",
                "message": "UNIQUE violation detected on '{consumer=null,name=\"basic-auth\",route=null,service=null}'",
                "fields": {"consumer": null, "name": "basic-auth", "route": null, "service": null}})
        )
    );
    let service = admin
        .service(json!({"name": "billing", "host": "billing.internal"}))
        .await;
    let nested = format!("/services/{}/plugins", id(&service));
    created(&admin, &nested, json!({"name": "basic-auth"})).await;
    let again = admin.post(&nested, json!({"name": "basic-auth"})).await;
    let service_id = id(&service);
    assert_eq!(
        answer(again),
        (
            409,
            json!({"code": 5, "name": "unique constraint violation",
                "message": format!("UNIQUE violation detected on '{{consumer=null,name=\"basic-auth\",route=null,service={{id=\"{service_id}\"}}}}'"),
                "fields": {"consumer": null, "name": "basic-auth", "route": null, "service": {"id": service_id}}})
        )
    );
    let named = created(
        &admin,
        "/plugins",
        json!({"name": "cors", "instance_name": "edge-cors"}),
    )
    .await;
    assert_eq!(admin.get("/plugins/edge-cors").await.body, named);
    let taken = admin
        .post(
            &nested,
            json!({"name": "cors", "instance_name": "edge-cors"}),
        )
        .await;
    assert_eq!(
        answer(taken),
        (
            409,
            json!({"code": 5, "name": "unique constraint violation",
                "message": "UNIQUE violation detected on '{instance_name=\"edge-cors\"}'",
                "fields": {"instance_name": "edge-cors"}})
        )
    );
}

#[tokio::test]
async fn nested_plugin_endpoints_scope_to_their_parent() {
    let admin = Admin::start().await;
    let service = admin
        .service(json!({"name": "billing", "host": "billing.internal"}))
        .await;
    let route = created(
        &admin,
        "/routes",
        json!({"name": "r", "paths": ["/b"], "service": {"id": id(&service)}}),
    )
    .await;
    let alice = consumer(&admin, "alice").await;
    let on_service = created(&admin, "/services/billing/plugins", json!({"name": "cors"})).await;
    assert_eq!(on_service["service"], json!({"id": id(&service)}));
    let on_route = created(&admin, "/routes/r/plugins", json!({"name": "key-auth"})).await;
    assert_eq!(on_route["route"], json!({"id": id(&route)}));
    let on_consumer = created(
        &admin,
        "/consumers/alice/plugins",
        json!({"name": "rate-limiting", "config": {"minute": 10}}),
    )
    .await;
    assert_eq!(on_consumer["consumer"], json!({"id": id(&alice)}));
    created(
        &admin,
        "/plugins",
        json!({"name": "acl", "config": {"allow": ["ops"]}}),
    )
    .await;
    let listed = admin.get("/services/billing/plugins").await;
    assert_eq!(
        listed.body,
        json!({"data": [on_service.clone()], "next": null})
    );
    let route_plugins = admin.get(&format!("/routes/{}/plugins", id(&route))).await;
    assert_eq!(route_plugins.body["data"], json!([on_route.clone()]));
    let other = admin
        .get(&format!("/consumers/alice/plugins/{}", id(&on_route)))
        .await;
    assert_eq!(answer(other), (404, json!({"message": "Not found"})));
    let owner = admin
        .get(&format!("/plugins/{}/service", id(&on_service)))
        .await;
    assert_eq!(owner.body, service);
    let owner = admin
        .get(&format!("/plugins/{}/consumer", id(&on_consumer)))
        .await;
    assert_eq!(owner.body["username"], "alice");
    assert_eq!(
        admin.get("/plugins").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn plugin_protocols_must_match_the_route_or_a_route_of_the_service() {
    let admin = Admin::start().await;
    let service = admin
        .service(json!({"name": "billing", "host": "billing.internal"}))
        .await;
    let lonely = admin
        .service(json!({"name": "lonely", "host": "lonely.internal"}))
        .await;
    created(
        &admin,
        "/routes",
        json!({"name": "plain", "protocols": ["http"], "paths": ["/b"], "service": {"id": id(&service)}}),
    )
    .await;
    let route_mismatch = admin
        .post(
            "/routes/plain/plugins",
            json!({"name": "cors", "protocols": ["https"]}),
        )
        .await;
    assert_eq!(
        answer(route_mismatch),
        (
            400,
            violation(
                "schema violation (protocols: must match the associated route's protocols)",
                json!({"protocols": "must match the associated route's protocols"})
            )
        )
    );
    let service_mismatch = admin
        .post(
            "/services/billing/plugins",
            json!({"name": "cors", "protocols": ["https"]}),
        )
        .await;
    let message =
        "must match the protocols of at least one route pointing to this Plugin's service";
    assert_eq!(service_mismatch.status, 400);
    assert_eq!(
        service_mismatch.body["fields"],
        json!({"protocols": message})
    );
    let no_routes = admin
        .post(
            &format!("/services/{}/plugins", id(&lonely)),
            json!({"name": "cors", "protocols": ["https"]}),
        )
        .await;
    assert_eq!(no_routes.status, 201, "{}", no_routes.body);
    let matching = admin
        .post(
            "/routes/plain/plugins",
            json!({"name": "cors", "protocols": ["http"]}),
        )
        .await;
    assert_eq!(matching.status, 201, "{}", matching.body);
}

#[tokio::test]
async fn acl_needs_exactly_one_of_allow_and_deny() {
    let admin = Admin::start().await;
    let neither = admin.post("/plugins", json!({"name": "acl"})).await;
    let at_least = "at least one of these fields must be non-empty: 'config.allow', 'config.deny'";
    assert_eq!(
        answer(neither),
        (
            400,
            violation(
                &format!("schema violation ({at_least})"),
                json!({"@entity": [at_least]})
            )
        )
    );
    let both = admin
        .post(
            "/plugins",
            json!({"name": "acl", "config": {"allow": ["a"], "deny": ["b"]}}),
        )
        .await;
    assert_eq!(
        both.body["fields"],
        json!({"@entity": ["exactly one of these fields must be non-empty: 'config.allow', 'config.deny'"]})
    );
    let allow = created(
        &admin,
        "/plugins",
        json!({"name": "acl", "config": {"allow": ["ops"]}}),
    )
    .await;
    assert_eq!(
        allow["config"],
        json!({"allow": ["ops"], "deny": null, "hide_groups_header": false, "always_use_authenticated_groups": false})
    );
}

#[tokio::test]
async fn rate_limiting_config_defaults_and_checks() {
    let admin = Admin::start().await;
    let none = admin
        .post("/plugins", json!({"name": "rate-limiting"}))
        .await;
    let message = "at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'";
    assert_eq!(none.body["fields"], json!({"@entity": [message]}));
    let plugin = created(
        &admin,
        "/plugins",
        json!({"name": "rate-limiting", "config": {"minute": 5}}),
    )
    .await;
    let config = &plugin["config"];
    assert_eq!(config["minute"], 5);
    assert_eq!(config["second"], Value::Null);
    assert_eq!(config["limit_by"], "consumer");
    assert_eq!(config["policy"], "local");
    assert_eq!(config["fault_tolerant"], true);
    assert_eq!(config["hide_client_headers"], false);
    assert_eq!(config["error_code"], 429);
    assert_eq!(config["error_message"], "API rate limit exceeded");
    assert_eq!(config["redis"]["port"], 6379);
    assert_eq!(config["redis"]["timeout"], 2000);
    assert_eq!(config["redis"]["host"], Value::Null);
    let redis = admin
        .post("/plugins", json!({"name": "rate-limiting", "route": null, "config": {"hour": 5, "policy": "redis"}}))
        .await;
    assert_eq!(
        answer(redis),
        (
            400,
            violation(
                "2 schema violations (failed conditional validation given value of field 'config.policy'; config.redis.host: required field missing)",
                json!({"config": {"redis": {"host": "required field missing"}},
                    "@entity": ["failed conditional validation given value of field 'config.policy'"]})
            )
        )
    );
    let old_style = admin.post("/consumers", json!({"username": "x"})).await;
    assert_eq!(old_style.status, 201);
    let moved = admin
        .post(
            "/consumers/x/plugins",
            json!({"name": "rate-limiting", "config": {"hour": 5, "policy": "redis", "redis_host": "redis.internal"}}),
        )
        .await;
    assert_eq!(moved.status, 201, "{}", moved.body);
    assert_eq!(moved.body["config"]["redis"]["host"], "redis.internal");
    let policy = admin
        .post(
            "/plugins",
            json!({"name": "rate-limiting", "config": {"hour": 5, "policy": "memcached"}}),
        )
        .await;
    assert_eq!(
        policy.body["fields"],
        json!({"config": {"policy": "expected one of: local, cluster, redis"}})
    );
    let order = admin
        .post(
            "/plugins",
            json!({"name": "rate-limiting", "config": {"second": 10, "minute": 5}}),
        )
        .await;
    assert_eq!(
        order.body["fields"],
        json!({"config": "The limit for minute(5.0) cannot be lower than the limit for second(10.0)"})
    );
    let header = admin
        .post(
            "/plugins",
            json!({"name": "rate-limiting", "config": {"day": 5, "limit_by": "header"}}),
        )
        .await;
    assert_eq!(
        header.body["fields"],
        json!({"config": {"header_name": "required field missing"},
            "@entity": ["failed conditional validation given value of field 'config.limit_by'"]})
    );
}

#[tokio::test]
async fn request_termination_cors_jwt_and_ip_restriction_configs() {
    let admin = Admin::start().await;
    let termination = created(&admin, "/plugins", json!({"name": "request-termination"})).await;
    assert_eq!(
        termination["config"],
        json!({"status_code": 503, "message": null, "content_type": null, "body": null, "echo": false, "trigger": null})
    );
    let mixed = admin
        .post("/routes", json!({"name": "r", "paths": ["/"]}))
        .await;
    assert_eq!(mixed.status, 201);
    let both = admin
        .post(
            "/routes/r/plugins",
            json!({"name": "request-termination", "config": {"message": "no", "body": "{}"}}),
        )
        .await;
    assert_eq!(
        answer(both),
        (
            400,
            violation(
                "schema violation (config: message cannot be used with content_type or body)",
                json!({"config": "message cannot be used with content_type or body"})
            )
        )
    );
    let status = admin
        .post(
            "/routes/r/plugins",
            json!({"name": "request-termination", "config": {"status_code": 99}}),
        )
        .await;
    assert_eq!(
        status.body["fields"],
        json!({"config": {"status_code": "value should be between 100 and 599"}})
    );
    let cors = created(&admin, "/routes/r/plugins", json!({"name": "cors"})).await;
    assert_eq!(
        cors["config"]["methods"],
        json!([
            "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"
        ])
    );
    assert_eq!(cors["config"]["credentials"], false);
    let jwt = created(&admin, "/routes/r/plugins", json!({"name": "jwt"})).await;
    assert_eq!(
        jwt["config"],
        json!({"uri_param_names": ["jwt"], "cookie_names": [], "key_claim_name": "iss",
            "secret_is_base64": false, "claims_to_verify": null, "anonymous": null,
            "run_on_preflight": true, "maximum_expiration": 0,
            "header_names": ["authorization"], "realm": null})
    );
    let expiring = admin
        .post("/plugins", json!({"name": "jwt", "config": {"maximum_expiration": 60, "claims_to_verify": ["nbf"]}}))
        .await;
    assert_eq!(
        expiring.body["fields"],
        json!({"config": {"claims_to_verify": "expected to contain: exp"},
            "@entity": ["failed conditional validation given value of field 'config.maximum_expiration'"]})
    );
    let ip = admin
        .post(
            "/plugins",
            json!({"name": "ip-restriction", "config": {"allow": ["10.0.0.0/8", "nope"]}}),
        )
        .await;
    assert_eq!(
        ip.body["fields"],
        json!({"config": {"allow": [null, "invalid ip or cidr range: 'nope'"]}})
    );
    let ip = created(
        &admin,
        "/plugins",
        json!({"name": "ip-restriction", "config": {"deny": ["192.0.2.1"]}}),
    )
    .await;
    assert_eq!(
        ip["protocols"],
        json!(["http", "https", "tcp", "tls", "grpc", "grpcs"])
    );
}

#[tokio::test]
async fn plugin_patch_merges_config_and_missing_plugins_answer_404() {
    let admin = Admin::start().await;
    let plugin = created(
        &admin,
        "/plugins",
        json!({"name": "key-auth", "config": {"key_names": ["x-key"]}}),
    )
    .await;
    let path = format!("/plugins/{}", id(&plugin));
    let patched = admin
        .patch(
            &path,
            json!({"config": {"hide_credentials": true}, "enabled": false}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["config"]["key_names"], json!(["x-key"]));
    assert_eq!(patched.body["config"]["hide_credentials"], true);
    assert_eq!(patched.body["enabled"], false);
    let bad = admin
        .patch(&path, json!({"config": {"key_in_body": "yes"}}))
        .await;
    assert_eq!(
        bad.body["fields"],
        json!({"config": {"key_in_body": "expected a boolean"}})
    );
    let missing = "/plugins/6a9d2b4e-0000-4000-8000-000000000001";
    assert_eq!(
        answer(admin.patch(missing, json!({"enabled": false})).await),
        (404, json!({"message": "Not found"}))
    );
    let with_name = admin
        .patch(missing, json!({"name": "key-auth", "enabled": false}))
        .await;
    assert_eq!(with_name.status, 404);
    assert_eq!(with_name.body["code"], 6);
}

#[tokio::test]
async fn deletes_cascade_plugins_of_routes_services_and_consumers() {
    let admin = Admin::start().await;
    let service = admin
        .service(json!({"name": "billing", "host": "billing.internal"}))
        .await;
    created(
        &admin,
        "/routes",
        json!({"name": "r", "paths": ["/"], "service": {"id": id(&service)}}),
    )
    .await;
    created(&admin, "/routes/r/plugins", json!({"name": "key-auth"})).await;
    let service_plugin =
        created(&admin, "/services/billing/plugins", json!({"name": "cors"})).await;
    created(&admin, "/consumers", json!({"username": "alice"})).await;
    created(
        &admin,
        "/consumers/alice/plugins",
        json!({"name": "rate-limiting", "config": {"second": 1}}),
    )
    .await;
    let global = created(&admin, "/plugins", json!({"name": "request-termination"})).await;
    let blocked = admin.delete("/services/billing").await;
    assert_eq!(blocked.status, 400);
    assert_eq!(blocked.body["fields"], json!({"@referenced_by": "routes"}));
    assert_eq!(
        admin
            .get(&format!("/plugins/{}", id(&service_plugin)))
            .await
            .status,
        200
    );
    assert_eq!(admin.delete("/routes/r").await.status, 204);
    assert_eq!(admin.delete("/consumers/alice").await.status, 204);
    assert_eq!(
        admin.get("/plugins").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(admin.delete("/services/billing").await.status, 204);
    assert_eq!(
        admin.get("/plugins").await.body,
        json!({"data": [global], "next": null})
    );
}

#[tokio::test]
async fn plugin_catalogue_and_plugin_schemas() {
    let admin = Admin::start().await;
    let enabled = admin.get("/plugins/enabled").await;
    assert_eq!(enabled.status, 200);
    let names = enabled.body["enabled_plugins"].as_array().unwrap();
    for name in [
        "acl",
        "basic-auth",
        "cors",
        "hmac-auth",
        "ip-restriction",
        "jwt",
        "key-auth",
        "rate-limiting",
        "request-termination",
    ] {
        assert!(names.contains(&json!(name)), "{name}");
    }
    let schema = admin.get("/schemas/plugins/key-auth").await;
    assert_eq!(schema.status, 200);
    let fields = schema.body["fields"].as_array().unwrap();
    assert_eq!(fields[0]["consumer"]["eq"], Value::Null);
    let config = fields.iter().find_map(|field| field.get("config")).unwrap();
    let key_names = config["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|field| field.get("key_names"))
        .unwrap();
    assert_eq!(key_names["default"], json!(["apikey"]));
    assert_eq!(key_names["required"], true);
    let acl = admin.get("/schemas/plugins/acl").await;
    assert_eq!(
        acl.body["entity_checks"],
        json!([{"only_one_of": ["config.allow", "config.deny"]}, {"at_least_one_of": ["config.allow", "config.deny"]}])
    );
    assert_eq!(
        answer(admin.get("/schemas/plugins/nope").await),
        (404, json!({"message": "No plugin named 'nope'"}))
    );
    assert_eq!(
        answer(
            admin
                .post("/schemas/plugins/validate", json!({"name": "key-auth"}))
                .await
        ),
        (200, json!({"message": "schema validation successful"}))
    );
    let invalid = admin
        .post("/schemas/plugins/validate", json!({"name": "acl"}))
        .await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.body["code"], 2);
    assert_eq!(admin.get("/plugins").await.body["data"], json!([]));
}

#[tokio::test]
async fn entity_schemas_and_validation_without_writing() {
    let admin = Admin::start().await;
    let services = admin.get("/schemas/services").await;
    assert_eq!(services.status, 200);
    let fields = services.body["fields"].as_array().unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find_map(|field| field.get(name))
            .cloned()
            .unwrap()
    };
    assert_eq!(field("name"), json!({"type": "string", "unique": true}));
    assert_eq!(
        field("port"),
        json!({"type": "integer", "required": true, "default": 80})
    );
    assert_eq!(
        field("id"),
        json!({"type": "string", "uuid": true, "auto": true})
    );
    let key_auths = admin.get("/schemas/keyauth_credentials").await;
    assert_eq!(key_auths.body["ttl"], true);
    let key_fields = key_auths.body["fields"].as_array().unwrap();
    let key = key_fields
        .iter()
        .find_map(|field| field.get("key"))
        .unwrap();
    assert_eq!(
        key,
        &json!({"type": "string", "unique": true, "auto": true})
    );
    assert_eq!(
        answer(admin.get("/schemas/nope").await),
        (404, json!({"message": "No entity named 'nope'"}))
    );
    assert_eq!(
        answer(
            admin
                .post("/schemas/services/validate", json!({"host": "a.internal"}))
                .await
        ),
        (200, json!({"message": "schema validation successful"}))
    );
    assert_eq!(
        answer(
            admin
                .post("/schemas/services/validate", json!({"port": 70000}))
                .await
        ),
        (
            400,
            violation(
                "2 schema violations (host: required field missing; port: value should be between 0 and 65535)",
                json!({"host": "required field missing", "port": "value should be between 0 and 65535"})
            )
        )
    );
    let consumer = admin.post("/schemas/consumers/validate", json!({})).await;
    assert_eq!(
        consumer.body["fields"],
        json!({"@entity": ["at least one of these fields must be non-empty: 'custom_id', 'username'"]})
    );
    for table in [
        "routes",
        "upstreams",
        "targets",
        "certificates",
        "snis",
        "ca_certificates",
        "plugins",
        "keyauth_credentials",
        "jwt_secrets",
        "acls",
        "basicauth_credentials",
        "hmacauth_credentials",
    ] {
        let reply = admin
            .post(&format!("/schemas/{table}/validate"), json!({"colour": 1}))
            .await;
        assert_eq!(reply.status, 400, "{table}");
        assert_eq!(reply.body["fields"]["colour"], "unknown field", "{table}");
    }
    assert_eq!(admin.get("/services").await.body["data"], json!([]));
    let wrong_method = admin.get("/schemas/services/validate").await;
    assert_eq!(
        answer(wrong_method),
        (405, json!({"message": "Method not allowed"}))
    );
}

#[tokio::test]
async fn tags_list_every_tagged_entity_and_page() {
    let admin = Admin::start().await;
    let service = admin
        .service(json!({"name": "billing", "host": "billing.internal", "tags": ["team-a", "prod"]}))
        .await;
    let consumer = created(
        &admin,
        "/consumers",
        json!({"username": "alice", "tags": ["team-a"]}),
    )
    .await;
    created(&admin, "/consumers", json!({"username": "untagged"})).await;
    let all = admin.get("/tags").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["next"], Value::Null);
    let mut items: Vec<Value> = all.body["data"].as_array().unwrap().clone();
    items.sort_by_key(Value::to_string);
    let mut expected = vec![
        json!({"entity_name": "services", "entity_id": id(&service), "tag": "team-a"}),
        json!({"entity_name": "services", "entity_id": id(&service), "tag": "prod"}),
        json!({"entity_name": "consumers", "entity_id": id(&consumer), "tag": "team-a"}),
    ];
    expected.sort_by_key(Value::to_string);
    assert_eq!(items, expected);
    let team = admin.get("/tags/team-a").await;
    assert_eq!(team.body["data"].as_array().unwrap().len(), 2);
    let first = admin.get("/tags/team-a?size=1").await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 1);
    let next = first.body["next"].as_str().unwrap().to_owned();
    assert!(next.starts_with("/tags/team-a?offset="), "{next}");
    assert!(first.body["offset"].is_string());
    let second = admin.get(&next).await;
    assert_eq!(second.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["next"], Value::Null);
    assert_ne!(first.body["data"][0], second.body["data"][0]);
    assert_eq!(answer(admin.get("/tags?offset=%21%21").await).0, 400);
}

#[tokio::test]
async fn endpoints_lists_route_templates() {
    let admin = Admin::start().await;
    let reply = admin.get("/endpoints").await;
    assert_eq!(reply.status, 200);
    let data: Vec<&str> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for path in [
        "/",
        "/consumers/{consumers}/key-auth",
        "/consumers/{consumers}/key-auth/{key-auths}",
        "/key-auths/{key-auths}/consumer",
        "/plugins/enabled",
        "/services/{services}/plugins",
        "/schemas/plugins/{name}",
        "/upstreams/{upstreams}/health",
        "/tags/{tags}",
    ] {
        assert!(data.contains(&path), "{path}");
    }
    assert!(!data.contains(&"/targets"));
    assert!(!data.contains(&"/snis/{snis}/certificate"));
    let position = |path: &str| data.iter().position(|item| *item == path).unwrap();
    assert!(position("/consumers") < position("/consumers/{consumers}"));
    assert!(position("/consumers/{consumers}/plugins") < position("/key-auths"));
}

#[tokio::test]
async fn node_info_lists_available_and_configured_plugins() {
    let admin = Admin::start().await;
    assert_eq!(admin.get("/").await.body["plugins"]["enabled_in_cluster"], json!([]));
    let cors = created(&admin, "/plugins", json!({"name": "cors"})).await;
    let root = admin.get("/").await;
    let plugins = &root.body["plugins"];
    assert_eq!(
        plugins["available_on_server"]["key-auth"],
        json!({"version": "3.4.2", "priority": 1250})
    );
    assert_eq!(plugins["enabled_in_cluster"], json!(["cors"]));
    // The body is cached per set of plugins in use: a change shows at once.
    admin.delete(&format!("/plugins/{}", id(&cors))).await;
    assert_eq!(admin.get("/").await.body["plugins"]["enabled_in_cluster"], json!([]));
}

#[tokio::test]
async fn declarative_files_load_consumers_credentials_and_plugins() {
    let admin = Admin::start().await;
    let file = r#"
_format_version: "3.0"
services:
- name: billing
  host: billing.internal
  plugins:
  - name: rate-limiting
    config: {minute: 10}
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-key
  acls:
  - group: ops
plugins:
- name: key-auth
  service: billing
"#;
    admin.twin.seed(file).unwrap();
    let key = admin.get("/key-auths/alice-key/consumer").await;
    assert_eq!(key.body["username"], "alice");
    assert_eq!(admin.get("/consumers/alice/acls/ops").await.status, 200);
    let plugins = admin.get("/services/billing/plugins").await;
    let mut names: Vec<String> = plugins.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|plugin| plugin["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["key-auth", "rate-limiting"]);
    let limited = plugins.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|plugin| plugin["name"] == "rate-limiting")
        .cloned()
        .unwrap();
    assert_eq!(limited["config"]["policy"], "local");
}

#[tokio::test]
async fn a_refused_put_through_a_child_leaves_no_parent_behind() {
    let admin = Admin::start().await;
    let plugin = created(&admin, "/plugins", json!({"name": "key-auth"})).await;
    let refused = admin
        .put(
            &format!("/plugins/{}/consumer", id(&plugin)),
            json!({"username": "ghost"}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(admin.get("/consumers").await.body["data"], json!([]));
    assert_eq!(admin.get("/consumers/ghost").await.status, 404);
}
