//! Conformance of the Kong twin's Admin API to the reference, over real HTTP.
//!
//! Expected bodies are the reference's examples (`shared/reference/kong-admin-api.md` §3-§7, §9).
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

mod support;
use support::{Admin, Reply, id, urlencode};

#[tokio::test]
async fn node_info_and_status_report_the_configured_version() {
    let admin = Admin::start().await;
    let root = admin.get("/").await;
    assert_eq!(root.status, 200);
    assert_eq!(root.body["version"], "3.4.2");
    assert_eq!(root.body["tagline"], "Welcome to kong");
    assert_eq!(root.body["configuration"]["database"], "postgres");
    let status = admin.get("/status").await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["database"]["reachable"], true);
    assert!(status.body["server"]["total_requests"].as_u64().unwrap() >= 2);
    let refused = admin.post("/", json!({})).await;
    assert_eq!(
        (refused.status, refused.body),
        (405, json!({"message": "Method not allowed"}))
    );
}

#[tokio::test]
async fn unknown_paths_and_collection_writes_answer_plain_messages() {
    let admin = Admin::start().await;
    let missing = admin.get("/nothing-here").await;
    assert_eq!(
        (missing.status, missing.body),
        (404, json!({"message": "Not found"}))
    );
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let reply = admin.call(method, "/services", Some(json!({}))).await;
        assert_eq!(
            (reply.status, reply.body),
            (405, json!({"message": "Method not allowed"}))
        );
    }
    let absent = admin.get("/services/nope").await;
    assert_eq!(
        (absent.status, absent.body),
        (404, json!({"message": "Not found"}))
    );
}

#[tokio::test]
async fn post_fills_defaults_and_returns_nulls() {
    let admin = Admin::start().await;
    let service = admin
        .service(json!({"name": "billing", "host": "billing.internal"}))
        .await;
    for (field, expected) in [
        ("protocol", json!("http")),
        ("port", json!(80)),
        ("retries", json!(5)),
        ("connect_timeout", json!(60000)),
        ("read_timeout", json!(60000)),
        ("write_timeout", json!(60000)),
        ("enabled", json!(true)),
        ("path", Value::Null),
        ("tags", Value::Null),
        ("client_certificate", Value::Null),
    ] {
        assert_eq!(service.get(field), Some(&expected), "{field}");
    }
    assert!(service["created_at"].is_i64());
    assert_eq!(id(&service).len(), 36);
    let fetched = admin.get(&format!("/services/{}", id(&service))).await;
    assert_eq!(fetched.body, service);
    let by_name = admin.get("/services/billing").await;
    assert_eq!(by_name.body, service);
    // Trailing slash is the same route.
    assert_eq!(admin.get("/services/billing/").await.body, service);
}

#[tokio::test]
async fn url_shorthand_expands_and_is_never_returned() {
    let admin = Admin::start().await;
    let service = admin
        .service(json!({"url": "https://api.internal:8443/v1"}))
        .await;
    assert_eq!(service["protocol"], "https");
    assert_eq!(service["host"], "api.internal");
    assert_eq!(service["port"], 8443);
    assert_eq!(service["path"], "/v1");
    assert!(service.get("url").is_none());
    let default_port = admin
        .service(json!({"url": "https://secure.internal"}))
        .await;
    assert_eq!(
        (default_port["port"].clone(), default_port["path"].clone()),
        (json!(443), Value::Null)
    );
}

#[tokio::test]
async fn schema_violations_match_the_reference_body() {
    let admin = Admin::start().await;
    let reply = admin.post("/services", json!({"port": 70000})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        json!({
            "code": 2,
            "name": "schema violation",
            "message": "2 schema violations (host: required field missing; port: value should be between 0 and 65535)",
            "fields": { "host": "required field missing", "port": "value should be between 0 and 65535" }
        })
    );
    let unknown = admin
        .post("/services", json!({"host": "a.internal", "colour": "blue"}))
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.body["message"],
        "schema violation (colour: unknown field)"
    );
    assert_eq!(unknown.body["fields"], json!({"colour": "unknown field"}));
    let with_port = admin
        .post("/services", json!({"host": "a.internal:8080"}))
        .await;
    assert_eq!(with_port.body["fields"]["host"], "must not have a port");
    let bad_name = admin
        .post("/services", json!({"host": "a.internal", "name": "a b"}))
        .await;
    assert_eq!(
        bad_name.body["fields"]["name"],
        "invalid value 'a b': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
    );
    let bad_id = admin
        .post(
            "/services",
            json!({"host": "a.internal", "id": "not-a-uuid"}),
        )
        .await;
    assert_eq!(bad_id.body["fields"]["id"], "expected a valid UUID");
    let conditional = admin
        .post(
            "/services",
            json!({"host": "a.internal", "protocol": "tcp", "path": "/x"}),
        )
        .await;
    assert_eq!(conditional.status, 400);
    assert_eq!(
        conditional.body["fields"],
        json!({"path": "value must be null", "@entity": ["failed conditional validation given value of field 'protocol'"]})
    );
    assert_eq!(
        conditional.body["message"],
        "2 schema violations (failed conditional validation given value of field 'protocol'; path: value must be null)"
    );
    let bad_tag = admin
        .post(
            "/services",
            json!({"host": "a.internal", "tags": ["ok", "a,b"]}),
        )
        .await;
    assert_eq!(
        bad_tag.body["message"],
        "schema violation (tags.2: invalid tag 'a,b': expected printable ascii (except `,` and `/`) or valid utf-8 sequences)"
    );
}

#[tokio::test]
async fn duplicate_names_conflict_and_duplicate_ids_are_primary_key_violations() {
    let admin = Admin::start().await;
    let first = admin
        .service(json!({"name": "billing", "host": "a.internal"}))
        .await;
    let duplicate = admin
        .post(
            "/services",
            json!({"name": "billing", "host": "b.internal"}),
        )
        .await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(
        duplicate.body,
        json!({
            "code": 5,
            "name": "unique constraint violation",
            "message": "UNIQUE violation detected on '{name=\"billing\"}'",
            "fields": {"name": "billing"}
        })
    );
    let same_id = admin
        .post("/services", json!({"id": id(&first), "host": "c.internal"}))
        .await;
    assert_eq!(same_id.status, 400);
    assert_eq!(
        same_id.body,
        json!({
            "code": 3,
            "name": "primary key violation",
            "message": format!("primary key violation on key '{{id=\"{}\"}}'", id(&first)),
            "fields": {"id": id(&first)}
        })
    );
}

#[tokio::test]
async fn foreign_keys_resolve_by_name_and_report_missing_parents() {
    let admin = Admin::start().await;
    let service = admin
        .service(json!({"name": "billing", "host": "a.internal"}))
        .await;
    let route = admin
        .post(
            "/routes",
            json!({"paths": ["/billing"], "service": {"name": "billing"}}),
        )
        .await;
    assert_eq!(route.status, 201, "{}", route.body);
    assert_eq!(route.body["service"], json!({"id": id(&service)}));
    assert_eq!(route.body["protocols"], json!(["http", "https"]));
    assert_eq!(route.body["strip_path"], true);
    assert_eq!(route.body["https_redirect_status_code"], 426);

    let unresolved = admin
        .post(
            "/routes",
            json!({"paths": ["/x"], "service": {"name": "ghost"}}),
        )
        .await;
    assert_eq!(unresolved.status, 400);
    assert_eq!(unresolved.body["code"], 13);
    assert_eq!(unresolved.body["name"], "foreign keys unresolved");
    assert_eq!(
        unresolved.body["message"],
        "foreign key unresolved (service.name: the foreign key cannot be resolved with '{name=\"ghost\"}' for an existing 'services' entity)"
    );

    let ghost = "0b4a1d55-6c7a-4e38-9e3c-3d2f4a4d5b61";
    let missing = admin
        .post(
            "/routes",
            json!({"paths": ["/x"], "service": {"id": ghost}}),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.body,
        json!({
            "code": 4,
            "name": "foreign key violation",
            "message": format!("the foreign key '{{id=\"{ghost}\"}}' does not reference an existing 'services' entity."),
            "fields": {"service": {"id": ghost}}
        })
    );

    let blocked = admin.delete("/services/billing").await;
    assert_eq!(blocked.status, 400);
    assert_eq!(
        blocked.body,
        json!({
            "code": 4,
            "name": "foreign key violation",
            "message": "an existing 'routes' entity references this 'services' entity",
            "fields": {"@referenced_by": "routes"}
        })
    );
    assert_eq!(
        admin
            .delete(&format!("/routes/{}", id(&route.body)))
            .await
            .status,
        204
    );
    assert_eq!(admin.delete("/services/billing").await.status, 204);
    assert_eq!(admin.get("/services/billing").await.status, 404);
}

#[tokio::test]
async fn nested_endpoints_are_scoped_to_their_parent() {
    let admin = Admin::start().await;
    let billing = admin
        .service(json!({"name": "billing", "host": "a.internal"}))
        .await;
    admin
        .service(json!({"name": "orders", "host": "b.internal"}))
        .await;
    let created = admin
        .post(
            "/services/billing/routes",
            json!({"name": "pay", "paths": ["/pay"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["service"], json!({"id": id(&billing)}));
    admin
        .post(
            "/services/orders/routes",
            json!({"name": "order", "paths": ["/order"]}),
        )
        .await;

    let listed = admin.get("/services/billing/routes?tags=nothing").await;
    assert_eq!(listed.status, 200);
    let names: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|route| route["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pay"]);
    assert_eq!(listed.body["next"], Value::Null);

    assert_eq!(admin.get("/services/billing/routes/pay").await.status, 200);
    let foreign = admin.get("/services/orders/routes/pay").await;
    assert_eq!(
        (foreign.status, foreign.body),
        (404, json!({"message": "Not found"}))
    );
    assert_eq!(admin.get("/services/ghost/routes").await.status, 404);

    let parent = admin.get("/routes/pay/service").await;
    assert_eq!(
        (parent.status, parent.body["name"].clone()),
        (200, json!("billing"))
    );
    let no_delete = admin.delete("/routes/pay/service").await;
    assert_eq!(
        (no_delete.status, no_delete.body),
        (405, json!({"message": "Method not allowed"}))
    );
    let patched_parent = admin
        .patch("/routes/pay/service", json!({"retries": 2}))
        .await;
    assert_eq!(
        (
            patched_parent.status,
            patched_parent.body["retries"].clone()
        ),
        (200, json!(2))
    );

    let nested_missing = admin.delete("/services/billing/routes/ghost").await;
    assert_eq!(
        (nested_missing.status, nested_missing.body),
        (404, json!({"message": "Not found"}))
    );
    assert_eq!(
        admin.delete("/services/billing/routes/pay").await.status,
        204
    );
    assert_eq!(admin.get("/routes/pay").await.status, 404);
}

#[tokio::test]
async fn put_upserts_by_name_then_replaces_fully() {
    let admin = Admin::start().await;
    let created = admin
        .put(
            "/services/billing",
            json!({"host": "a.internal", "retries": 9, "tags": ["blue"]}),
        )
        .await;
    assert_eq!(created.status, 200);
    assert_eq!(created.body["name"], "billing");
    assert_eq!(created.body["retries"], 9);
    let replaced = admin
        .put("/services/billing", json!({"host": "b.internal"}))
        .await;
    assert_eq!(replaced.status, 200);
    assert_eq!(id(&replaced.body), id(&created.body));
    assert_eq!(replaced.body["host"], "b.internal");
    assert_eq!(
        replaced.body["retries"], 5,
        "fields absent from a PUT return to their defaults"
    );
    assert_eq!(replaced.body["tags"], Value::Null);
    assert_eq!(
        admin.get("/services").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let pinned = "6a3f2c1e-1f1d-4d7a-9b35-2f8f6f0c2a11";
    let by_id = admin
        .put(
            &format!("/services/{pinned}"),
            json!({"host": "c.internal"}),
        )
        .await;
    assert_eq!((by_id.status, id(&by_id.body)), (200, pinned.to_owned()));
    let invalid = admin.put("/services/other", json!({"retries": 9})).await;
    assert_eq!(invalid.status, 400);
    assert_eq!(
        invalid.body["fields"],
        json!({"host": "required field missing"})
    );
}

#[tokio::test]
async fn patch_merges_and_reports_missing_entities_with_code_6() {
    let admin = Admin::start().await;
    let service = admin
        .service(json!({"name": "billing", "host": "a.internal", "retries": 9, "tags": ["a", "b"]}))
        .await;
    let patched = admin
        .patch("/services/billing", json!({"port": 8080, "tags": ["c"]}))
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["host"], "a.internal");
    assert_eq!(
        patched.body["retries"], 9,
        "fields absent from a PATCH keep their values"
    );
    assert_eq!(patched.body["port"], 8080);
    assert_eq!(
        patched.body["tags"],
        json!(["c"]),
        "sets are replaced wholesale"
    );
    assert_eq!(patched.body["created_at"], service["created_at"]);
    let cleared = admin
        .patch("/services/billing", json!({"tags": null}))
        .await;
    assert_eq!(cleared.body["tags"], Value::Null);
    let invalid = admin.patch("/services/billing", json!({"port": -1})).await;
    assert_eq!(
        invalid.body["message"],
        "schema violation (port: value should be between 0 and 65535)"
    );

    let by_name = admin.patch("/services/nope", json!({"retries": 1})).await;
    assert_eq!(by_name.status, 404);
    assert_eq!(
        by_name.body,
        json!({"code": 6, "name": "not found", "message": "could not find the entity with '{name=\"nope\"}'", "fields": {"name": "nope"}})
    );
    let ghost = "0b4a1d55-6c7a-4e38-9e3c-3d2f4a4d5b61";
    let by_id = admin
        .patch(&format!("/services/{ghost}"), json!({"retries": 1}))
        .await;
    assert_eq!(by_id.status, 404);
    assert_eq!(
        by_id.body["message"],
        format!("could not find the entity with primary key '{{id=\"{ghost}\"}}'")
    );
}

#[tokio::test]
async fn top_level_delete_is_idempotent() {
    let admin = Admin::start().await;
    let service = admin
        .service(json!({"name": "billing", "host": "a.internal"}))
        .await;
    let path = format!("/services/{}", id(&service));
    for _ in 0..2 {
        let reply = admin.delete(&path).await;
        assert_eq!((reply.status, reply.body), (204, Value::Null));
    }
    assert_eq!(admin.delete("/services/never-existed").await.status, 204);
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_are_refused() {
    let admin = Admin::start().await;
    let url = format!("{}/services", admin.twin.url());
    let broken = admin
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status().as_u16(), 400);
    assert_eq!(
        broken.json::<Value>().await.unwrap(),
        json!({"message": "Cannot parse JSON body"})
    );
    let untyped = admin.http.post(&url).body("host=a").send().await.unwrap();
    assert_eq!(untyped.status().as_u16(), 415);
}

#[tokio::test]
async fn pagination_visits_2500_services_exactly_once() {
    let admin = Admin::start().await;
    let mut created = HashSet::new();
    for index in 0..2500 {
        created.insert(id(&admin
            .service(json!({"name": format!("svc-{index}"), "host": "a.internal"}))
            .await));
    }

    let first = admin.get("/services").await;
    assert_eq!(
        first.body["data"].as_array().unwrap().len(),
        100,
        "default size is 100"
    );

    let mut seen = Vec::new();
    let mut path = "/services?size=1000".to_owned();
    let mut pages = Vec::new();
    loop {
        let page = admin.get(&path).await;
        assert_eq!(page.status, 200);
        let data = page.body["data"].as_array().unwrap();
        pages.push(data.len());
        seen.extend(data.iter().map(id));
        match page.body["next"].as_str() {
            Some(next) => {
                let offset = page.body["offset"].as_str().unwrap();
                assert!(next.starts_with("/services?offset="), "{next}");
                assert!(next.ends_with("&size=1000"), "{next}");
                path = next.to_owned();
                assert!(!offset.contains('='), "offset tokens carry no padding");
            }
            None => {
                assert!(
                    page.body.get("offset").is_none(),
                    "the last page has no offset"
                );
                break;
            }
        }
    }
    assert_eq!(pages, [1000, 1000, 500]);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no entity twice");
    assert_eq!(unique, created, "every entity once");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "ascending by id");

    // Paging with the `offset` field (as decK does) gives the same walk.
    let mut offset_walk = Vec::new();
    let mut offset: Option<String> = None;
    loop {
        let query = offset.as_ref().map_or(String::new(), |offset| {
            format!("&offset={}", urlencode(offset))
        });
        let page = admin.get(&format!("/services?size=700{query}")).await;
        offset_walk.extend(page.body["data"].as_array().unwrap().iter().map(id));
        match page.body["offset"].as_str() {
            Some(next) => offset = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(offset_walk, seen);
}


#[tokio::test]
async fn pagination_errors_use_codes_7_and_9() {
    let admin = Admin::start().await;
    let empty = admin.get("/services").await;
    assert_eq!(empty.body, json!({"data": [], "next": null}));
    let not_number = admin.get("/services?size=abc").await;
    assert_eq!(
        (not_number.status, not_number.body),
        (
            400,
            json!({"code": 9, "name": "invalid size", "message": "size must be a number"})
        )
    );
    for size in ["0", "1001"] {
        let reply = admin.get(&format!("/services?size={size}")).await;
        assert_eq!(
            (reply.status, reply.body),
            (
                400,
                json!({"code": 9, "name": "invalid size", "message": "size must be an integer between 1 and 1000"})
            )
        );
    }
    let bad_offset = admin.get("/services?offset=!!!").await;
    assert_eq!(
        (bad_offset.status, bad_offset.body),
        (
            400,
            json!({"code": 7, "name": "invalid offset", "message": "'!!!' is not a valid offset: bad base64 encoding"})
        )
    );
}

#[tokio::test]
async fn tag_filters_combine_with_and_or_and_reject_bad_syntax() {
    let admin = Admin::start().await;
    for (name, tags) in [
        ("ab", json!(["a", "b"])),
        ("a", json!(["a"])),
        ("b", json!(["b", "b"])),
        ("c", json!(["c"])),
        ("none", Value::Null),
    ] {
        let service = admin
            .service(json!({"name": name, "host": "a.internal", "tags": tags}))
            .await;
        if name == "b" {
            assert_eq!(service["tags"], json!(["b"]), "sets are de-duplicated");
        }
    }
    let names = |reply: &Reply| {
        let mut names: Vec<String> = reply.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entity| entity["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&admin.get("/services?tags=a").await), ["a", "ab"]);
    assert_eq!(names(&admin.get("/services?tags=a,b").await), ["ab"]);
    assert_eq!(
        names(&admin.get("/services?tags=a/b").await),
        ["a", "ab", "b"]
    );
    assert_eq!(
        names(&admin.get("/services?tags=a/c").await),
        ["a", "ab", "c"]
    );

    let paged = admin.get("/services?tags=a/b/c&size=1").await;
    assert_eq!(
        paged.body["next"]
            .as_str()
            .map(|next| next.ends_with("&tags=a%2Fb%2Fc&size=1")),
        Some(true),
        "{}",
        paged.body
    );

    let null = admin.get("/services?tags=").await;
    assert_eq!(
        (null.status, null.body),
        (
            400,
            json!({"code": 11, "name": "invalid options", "message": "invalid option (tags: cannot be null)", "options": {"tags": "cannot be null"}})
        )
    );
    let mixed = admin.get("/services?tags=a,b/c").await;
    assert_eq!(
        (mixed.status, mixed.body["message"].clone()),
        (400, json!("invalid option (tags: invalid filter syntax)"))
    );
    let many = admin.get("/services?tags=a,b,c,d,e,f").await;
    assert_eq!(
        (many.status, many.body["message"].clone()),
        (
            400,
            json!("invalid option (tags: cannot query more than 5 tags)")
        )
    );
    assert_eq!(admin.get("/services?tags=a,b,c,d,e").await.status, 200);
}

#[tokio::test]
async fn route_validation_follows_kong_messages() {
    let admin = Admin::start().await;
    let empty = admin.post("/routes", json!({})).await;
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.body["fields"]["@entity"],
        json!([
            "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"
        ])
    );
    let http_only = admin.post("/routes", json!({"protocols": ["http"]})).await;
    assert_eq!(
        http_only.body["message"],
        "schema violation (must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http')"
    );
    let mixed = admin
        .post(
            "/routes",
            json!({"protocols": ["http", "tcp"], "paths": ["/"]}),
        )
        .await;
    assert_eq!(
        mixed.body["fields"]["protocols"],
        "these sets are mutually exclusive: ('http', 'https'), ('tcp', 'tls', 'udp')"
    );
    let unknown_protocol = admin
        .post(
            "/routes",
            json!({"protocols": ["http", "ftp"], "paths": ["/"]}),
        )
        .await;
    assert_eq!(
        unknown_protocol.body["message"],
        "schema violation (protocols.2: expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp)"
    );
    let methods = admin
        .post("/routes", json!({"methods": ["GET", "get"]}))
        .await;
    assert_eq!(
        methods.body["fields"]["methods"],
        json!([null, "invalid value: get"])
    );
    let hosts = admin
        .post("/routes", json!({"hosts": ["mock*bin.com"]}))
        .await;
    assert_eq!(
        hosts.body["fields"]["hosts"],
        json!(["invalid wildcard: must be placed at leftmost or rightmost label"])
    );
    let paths = admin
        .post("/routes", json!({"paths": ["/a/../b", "foo", "/x//y"]}))
        .await;
    assert_eq!(
        paths.body["fields"]["paths"],
        json!([
            "non-normalized path, consider use '/b' instead",
            "should start with: / (fixed path) or ~/ (regex path)",
            "must not have empty segments"
        ])
    );
    let headers = admin
        .post("/routes", json!({"headers": {"Host": ["x"]}}))
        .await;
    assert_eq!(
        headers.body["fields"]["headers"],
        "cannot contain 'host' header, which must be specified in the 'hosts' attribute"
    );
    let redirect = admin
        .post(
            "/routes",
            json!({"paths": ["/"], "https_redirect_status_code": 404}),
        )
        .await;
    assert_eq!(
        redirect.body["fields"]["https_redirect_status_code"],
        "expected one of: 426, 301, 302, 307, 308"
    );
    let grpc = admin
        .post("/routes", json!({"protocols": ["grpc"], "paths": ["/"]}))
        .await;
    assert_eq!(
        (grpc.status, grpc.body["strip_path"].clone()),
        (201, json!(false))
    );
    let regex = admin.post("/routes", json!({"paths": ["~/users/\\d+$"], "hosts": ["*.example.org:321"], "methods": ["GET", "GET"]})).await;
    assert_eq!(regex.status, 201, "{}", regex.body);
    assert_eq!(regex.body["methods"], json!(["GET"]));
}

#[tokio::test]
async fn options_lists_methods_and_entity_post_is_not_allowed() {
    let admin = Admin::start().await;
    let url = format!("{}/services", admin.twin.url());
    let options = admin
        .http
        .request(Method::OPTIONS, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(options.status().as_u16(), 204);
    assert_eq!(options.headers()["allow"], "GET, HEAD, OPTIONS, POST");
    let entity = admin
        .http
        .request(Method::OPTIONS, format!("{url}/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        entity.headers()["allow"],
        "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
    );
    let head = admin.http.head(&url).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["server"], "kong/3.4.2");
    assert_eq!(
        head.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert!(head.text().await.unwrap().is_empty());
    let post = admin.post("/services/x", json!({})).await;
    assert_eq!(
        (post.status, post.body),
        (405, json!({"message": "Method not allowed"}))
    );
}

#[tokio::test]
async fn put_through_a_child_creates_and_links_a_missing_parent() {
    let admin = Admin::start().await;
    let route = admin
        .post("/routes", json!({"name": "orphan", "paths": ["/o"]}))
        .await;
    assert_eq!(
        (route.status, route.body["service"].clone()),
        (201, Value::Null)
    );
    assert_eq!(admin.get("/routes/orphan/service").await.status, 404);
    let parent = admin
        .put(
            "/routes/orphan/service",
            json!({"name": "adopted", "host": "a.internal"}),
        )
        .await;
    assert_eq!(parent.status, 200, "{}", parent.body);
    let linked = admin.get("/routes/orphan").await;
    assert_eq!(linked.body["service"], json!({"id": id(&parent.body)}));
}

#[tokio::test]
async fn responses_carry_kong_headers_and_duplicate_content_types_are_refused() {
    let admin = Admin::start().await;
    let url = format!("{}/services", admin.twin.url());
    let reply = admin
        .http
        .get(&url)
        .header("origin", "https://ops.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.headers()["access-control-allow-origin"],
        "https://ops.example"
    );
    assert_eq!(reply.headers()["access-control-allow-credentials"], "true");
    assert!(
        reply.headers()["x-kong-admin-latency"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    let twice = admin
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("content-type", "application/json")
        .body(r#"{"host":"a.internal"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status().as_u16(), 400);
    assert_eq!(admin.get("/services").await.body["data"], json!([]));
}

#[tokio::test]
async fn form_encoded_bodies_are_typed_by_the_schema() {
    let admin = Admin::start().await;
    let url = format!("{}/services", admin.twin.url());
    let service = admin
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=billing&host=a.internal&port=8080&enabled=false&tags[]=blue&tags[]=green")
        .send()
        .await
        .unwrap();
    assert_eq!(service.status().as_u16(), 201);
    let body: Value = service.json().await.unwrap();
    assert_eq!(
        (body["port"].clone(), body["enabled"].clone()),
        (json!(8080), json!(false))
    );
    assert_eq!(body["tags"], json!(["blue", "green"]));
    let route = admin
        .http
        .post(format!("{}/routes", admin.twin.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("paths=%2Fpay&service.name=billing")
        .send()
        .await
        .unwrap();
    assert_eq!(route.status().as_u16(), 201);
    let route: Value = route.json().await.unwrap();
    assert_eq!(
        (route["paths"].clone(), route["service"].clone()),
        (json!(["/pay"]), json!({"id": id(&body)}))
    );
    let untyped = admin
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("host=a")
        .send()
        .await
        .unwrap();
    assert_eq!(untyped.status().as_u16(), 415);
}

#[tokio::test]
async fn upstreams_fill_defaults_and_names_are_unique() {
    let admin = Admin::start().await;
    let created = admin
        .post("/upstreams", json!({"name": "billing.internal"}))
        .await;
    assert_eq!(created.status, 201);
    let body = &created.body;
    assert_eq!(body["algorithm"], "round-robin");
    assert_eq!(body["hash_on"], "none");
    assert_eq!(body["hash_fallback"], "none");
    assert_eq!(body["hash_on_cookie_path"], "/");
    assert_eq!(body["slots"], 10000);
    assert_eq!(body["use_srv_name"], false);
    assert_eq!(body["tags"], Value::Null);
    assert_eq!(body["host_header"], Value::Null);
    assert_eq!(body["client_certificate"], Value::Null);
    assert_eq!(body["healthchecks"]["threshold"], 0);
    assert_eq!(
        body["healthchecks"]["active"]["unhealthy"]["http_statuses"],
        json!([429, 404, 500, 501, 502, 503, 504, 505])
    );
    assert_eq!(
        body["healthchecks"]["passive"]["unhealthy"]["http_statuses"],
        json!([429, 500, 503])
    );
    assert_eq!(
        body["healthchecks"]["active"]["https_verify_certificate"],
        true
    );
    let fetched = admin.get("/upstreams/billing.internal").await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, created.body);

    let duplicate = admin
        .post("/upstreams", json!({"name": "billing.internal"}))
        .await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(
        duplicate.body,
        json!({
            "code": 5,
            "name": "unique constraint violation",
            "message": "UNIQUE violation detected on '{name=\"billing.internal\"}'",
            "fields": {"name": "billing.internal"}
        })
    );

    let hashed = admin
        .post(
            "/upstreams",
            json!({"name": "hashed", "hash_on": "header", "hash_on_header": "x-user"}),
        )
        .await;
    assert_eq!(hashed.status, 201);
    assert_eq!(hashed.body["algorithm"], "consistent-hashing");
}

#[tokio::test]
async fn upstream_validation_follows_the_reference() {
    let admin = Admin::start().await;
    let ip = admin.post("/upstreams", json!({"name": "10.0.0.1"})).await;
    assert_eq!(ip.status, 400);
    assert_eq!(
        ip.body["fields"],
        json!({"name": "Invalid name ('10.0.0.1'); no ip addresses allowed"})
    );
    let missing = admin.post("/upstreams", json!({})).await;
    assert_eq!(
        missing.body["fields"],
        json!({"name": "required field missing"})
    );
    let bad = admin
        .post(
            "/upstreams",
            json!({"name": "u", "algorithm": "random", "slots": 5, "healthchecks": {"threshold": 101}}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body["fields"],
        json!({
            "algorithm": "expected one of: round-robin, consistent-hashing, least-connections, latency",
            "slots": "value should be between 10 and 65536",
            "healthchecks": {"threshold": "value should be between 0 and 100"}
        })
    );
    let header = admin
        .post("/upstreams", json!({"name": "u", "hash_on": "header"}))
        .await;
    assert_eq!(
        header.body["fields"],
        json!({"hash_on_header": "required field missing"})
    );
    let fallback = admin
        .post("/upstreams", json!({"name": "u", "hash_fallback": "ip"}))
        .await;
    assert_eq!(
        fallback.body["fields"],
        json!({"hash_fallback": "expected one of: none"})
    );
}

#[tokio::test]
async fn upstream_patch_merges_the_healthchecks_record() {
    let admin = Admin::start().await;
    let created = admin.post("/upstreams", json!({"name": "pool"})).await;
    assert_eq!(created.status, 201);
    let patched = admin
        .patch(
            "/upstreams/pool",
            json!({"healthchecks": {"active": {"healthy": {"interval": 5}}}}),
        )
        .await;
    assert_eq!(patched.status, 200);
    let mut expected = created.body["healthchecks"].clone();
    expected["active"]["healthy"]["interval"] = json!(5);
    assert_eq!(patched.body["healthchecks"], expected);
    assert_eq!(patched.body["name"], "pool");
    assert_eq!(patched.body["slots"], 10000);
}

#[tokio::test]
async fn targets_live_under_their_upstream_only() {
    let admin = Admin::start().await;
    let upstream = admin.post("/upstreams", json!({"name": "pool"})).await;
    assert_eq!(upstream.status, 201);
    let created = admin
        .post("/upstreams/pool/targets", json!({"target": "a.internal"}))
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["target"], "a.internal:8000");
    assert_eq!(created.body["weight"], 100);
    assert_eq!(created.body["upstream"], json!({"id": id(&upstream.body)}));
    assert_eq!(created.body["tags"], Value::Null);
    assert!(created.body["created_at"].is_f64());
    let stamp = created.body["created_at"].as_f64().unwrap();
    assert_eq!((stamp * 1000.0).round() / 1000.0, stamp);
    assert_eq!(created.body["updated_at"], created.body["created_at"]);

    for path in [
        "/targets".to_owned(),
        format!("/targets/{}", id(&created.body)),
        format!("/targets/{}/upstream", id(&created.body)),
    ] {
        let reply = admin.get(&path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.body, json!({"message": "Not found"}));
    }

    let by_target = admin.get("/upstreams/pool/targets/a.internal:8000").await;
    assert_eq!(by_target.status, 200);
    assert_eq!(by_target.body, created.body);
    let by_id = admin
        .get(&format!("/upstreams/pool/targets/{}", id(&created.body)))
        .await;
    assert_eq!(by_id.body, created.body);

    let ipv6 = admin
        .post(
            "/upstreams/pool/targets",
            json!({"target": "[::1]", "weight": 0}),
        )
        .await;
    assert_eq!(ipv6.status, 201);
    assert_eq!(ipv6.body["target"], "[::1]:8000");
    assert_eq!(ipv6.body["weight"], 0);

    let invalid = admin
        .post(
            "/upstreams/pool/targets",
            json!({"target": "bad host", "weight": 70000}),
        )
        .await;
    assert_eq!(invalid.status, 400);
    assert_eq!(
        invalid.body["fields"],
        json!({
            "target": "Invalid target ('bad host'); not a valid hostname or ip address",
            "weight": "value should be between 0 and 65535"
        })
    );

    let duplicate = admin
        .post(
            "/upstreams/pool/targets",
            json!({"target": "a.internal:8000"}),
        )
        .await;
    assert_eq!(duplicate.status, 409);
    let upstream_id = id(&upstream.body);
    assert_eq!(
        duplicate.body,
        json!({
            "code": 5,
            "name": "unique constraint violation",
            "message": format!(
                "UNIQUE violation detected on '{{target=\"a.internal:8000\",upstream={{id=\"{upstream_id}\"}}}}'"
            ),
            "fields": {"target": "a.internal:8000", "upstream": {"id": upstream_id}}
        })
    );
    // The same target string is free in another upstream.
    admin.post("/upstreams", json!({"name": "other"})).await;
    let elsewhere = admin
        .post("/upstreams/other/targets", json!({"target": "a.internal"}))
        .await;
    assert_eq!(elsewhere.status, 201);
    let scoped = admin.get("/upstreams/other/targets/a.internal:8000").await;
    assert_eq!(scoped.body, elsewhere.body);
}

#[tokio::test]
async fn target_put_and_patch_only_update_and_delete_is_404_when_missing() {
    let admin = Admin::start().await;
    admin.post("/upstreams", json!({"name": "pool"})).await;
    let created = admin
        .post(
            "/upstreams/pool/targets",
            json!({"target": "a.internal:80", "tags": ["x"]}),
        )
        .await;
    assert_eq!(created.status, 201);

    let missing_put = admin
        .put(
            "/upstreams/pool/targets/b.internal:80",
            json!({"weight": 5}),
        )
        .await;
    assert_eq!(missing_put.status, 404);
    assert_eq!(missing_put.body, json!({"message": "Not found"}));
    let missing_patch = admin
        .patch(
            "/upstreams/pool/targets/b.internal:80",
            json!({"weight": 5}),
        )
        .await;
    assert_eq!(missing_patch.status, 404);
    assert_eq!(
        admin
            .get("/upstreams/pool/targets/b.internal:80")
            .await
            .status,
        404
    );

    let put = admin
        .put(
            "/upstreams/pool/targets/a.internal:80",
            json!({"weight": 5}),
        )
        .await;
    assert_eq!(put.status, 200);
    assert_eq!(put.body["weight"], 5);
    assert_eq!(put.body["tags"], json!(["x"]), "PUT merges like PATCH");
    assert_eq!(put.body["id"], created.body["id"]);
    assert_eq!(put.body["created_at"], created.body["created_at"]);
    let patch = admin
        .patch(
            &format!("/upstreams/pool/targets/{}", id(&created.body)),
            json!({"weight": 0}),
        )
        .await;
    assert_eq!(patch.status, 200);
    assert_eq!(patch.body["weight"], 0);

    let deleted = admin.delete("/upstreams/pool/targets/a.internal:80").await;
    assert_eq!(deleted.status, 204);
    let again = admin.delete("/upstreams/pool/targets/a.internal:80").await;
    assert_eq!(again.status, 404);
    assert_eq!(again.body, json!({"message": "Not found"}));
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let reply = admin
            .call(method, "/upstreams/pool/targets", Some(json!({})))
            .await;
        assert_eq!(reply.status, 405);
    }
}

#[tokio::test]
async fn deleting_an_upstream_cascades_its_targets() {
    let admin = Admin::start().await;
    admin.post("/upstreams", json!({"name": "pool"})).await;
    let target = admin
        .post("/upstreams/pool/targets", json!({"target": "a.internal"}))
        .await;
    assert_eq!(admin.delete("/upstreams/pool").await.status, 204);
    admin.post("/upstreams", json!({"name": "pool"})).await;
    let reply = admin
        .get(&format!("/upstreams/pool/targets/{}", id(&target.body)))
        .await;
    assert_eq!(reply.status, 404);
    let recreated = admin
        .post("/upstreams/pool/targets", json!({"target": "a.internal"}))
        .await;
    assert_eq!(recreated.status, 201);
}

#[tokio::test]
async fn target_lists_are_newest_first_with_index_offsets() {
    let admin = Admin::start().await;
    admin.post("/upstreams", json!({"name": "pool"})).await;
    let mut created = Vec::new();
    for index in 0..5 {
        let reply = admin
            .post(
                "/upstreams/pool/targets",
                json!({"target": format!("t{index}.internal"), "weight": if index == 2 { 0 } else { 10 }}),
            )
            .await;
        assert_eq!(reply.status, 201);
        created.push(reply.body["target"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let first = admin.get("/upstreams/pool/targets?size=2").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["offset"], "2");
    assert_eq!(first.body["next"], "/upstreams/pool/targets?offset=2");
    let mut seen: Vec<String> = Vec::new();
    let mut next = Some("/upstreams/pool/targets?size=2".to_owned());
    while let Some(path) = next {
        let page = admin.get(&path).await;
        for item in page.body["data"].as_array().unwrap() {
            seen.push(item["target"].as_str().unwrap().to_owned());
        }
        next = page.body["offset"]
            .as_str()
            .map(|offset| format!("/upstreams/pool/targets?size=2&offset={offset}"));
    }
    created.reverse();
    assert_eq!(
        seen, created,
        "all targets, weight 0 included, newest first"
    );
}

#[tokio::test]
async fn upstream_health_reports_targets_and_forced_health() {
    let admin = Admin::start().await;
    assert_eq!(admin.get("/upstreams/nope/health").await.status, 404);
    let upstream = admin.post("/upstreams", json!({"name": "pool"})).await;
    let a = admin
        .post(
            "/upstreams/pool/targets",
            json!({"target": "10.0.0.5:8080"}),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    admin
        .post(
            "/upstreams/pool/targets",
            json!({"target": "10.0.0.6", "weight": 0}),
        )
        .await;

    // Health checks off: every target reports HEALTHCHECKS_OFF.
    let off = admin.get("/upstreams/pool/health").await;
    assert_eq!(off.status, 200);
    assert!(off.body["node_id"].is_string());
    assert_eq!(off.body["next"], Value::Null);
    let data = off.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["id"], a.body["id"]);
    assert_eq!(data[1]["health"], "HEALTHCHECKS_OFF");
    assert_eq!(data[1]["data"]["host"], "10.0.0.5");
    assert_eq!(data[1]["data"]["port"], 8080);
    assert_eq!(
        data[1]["data"]["addresses"],
        json!([{"ip": "10.0.0.5", "port": 8080, "weight": 100, "health": "HEALTHCHECKS_OFF"}])
    );
    let balancer = admin.get("/upstreams/pool/health?balancer_health=1").await;
    assert_eq!(balancer.body["data"]["id"], upstream.body["id"]);
    assert_eq!(balancer.body["data"]["health"], "HEALTHCHECKS_OFF");
    assert_eq!(balancer.body["data"]["balancer_health"], "HEALTHY");

    // Enable active checks; forced health now shows.
    let patched = admin
        .patch(
            "/upstreams/pool",
            json!({"healthchecks": {"active": {"healthy": {"interval": 5}}, "threshold": 50}}),
        )
        .await;
    assert_eq!(patched.status, 200);
    let on = admin.get("/upstreams/pool/health").await;
    assert_eq!(on.body["data"][1]["health"], "HEALTHY");
    assert_eq!(on.body["data"][0]["health"], "HEALTHCHECKS_OFF", "weight 0");

    let forced = admin
        .call(
            Method::PUT,
            "/upstreams/pool/targets/10.0.0.5:8080/unhealthy",
            None,
        )
        .await;
    assert_eq!(forced.status, 204);
    let down = admin.get("/upstreams/pool/health").await;
    assert_eq!(down.body["data"][1]["health"], "UNHEALTHY");
    assert_eq!(
        down.body["data"][1]["data"]["addresses"][0]["health"],
        "UNHEALTHY"
    );
    let balancer = admin.get("/upstreams/pool/health?balancer_health=1").await;
    assert_eq!(balancer.body["data"]["health"], "UNHEALTHY");
    assert_eq!(balancer.body["data"]["balancer_health"], "UNHEALTHY");

    let restored = admin
        .call(
            Method::PUT,
            &format!("/upstreams/pool/targets/{}/healthy", id(&a.body)),
            None,
        )
        .await;
    assert_eq!(restored.status, 204);
    let up = admin.get("/upstreams/pool/health").await;
    assert_eq!(up.body["data"][1]["health"], "HEALTHY");

    // The per-address form: the target's one address, port defaulting to 8000 as Kong.
    let by_address = admin
        .call(
            Method::PUT,
            "/upstreams/pool/targets/10.0.0.5:8080/10.0.0.5:8080/unhealthy",
            None,
        )
        .await;
    assert_eq!(by_address.status, 204);
    let down = admin.get("/upstreams/pool/health").await;
    assert_eq!(down.body["data"][1]["health"], "UNHEALTHY");
    let other_address = admin
        .call(
            Method::PUT,
            "/upstreams/pool/targets/10.0.0.5:8080/10.0.0.6:8080/healthy",
            None,
        )
        .await;
    assert_eq!(other_address.status, 404);
    let restored = admin
        .call(
            Method::PUT,
            "/upstreams/pool/targets/10.0.0.5:8080/10.0.0.5:8080/healthy",
            None,
        )
        .await;
    assert_eq!(restored.status, 204);

    let unknown = admin
        .call(
            Method::PUT,
            "/upstreams/pool/targets/10.9.9.9:1/healthy",
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    let no_upstream = admin
        .call(
            Method::PUT,
            "/upstreams/none/targets/10.0.0.5:8080/healthy",
            None,
        )
        .await;
    assert_eq!(no_upstream.status, 404);
    let post = admin
        .call(
            Method::POST,
            "/upstreams/pool/targets/10.0.0.5:8080/healthy",
            None,
        )
        .await;
    assert_eq!(post.status, 405);
}

#[tokio::test]
async fn a_form_key_nested_thousands_deep_is_refused_and_the_twin_lives_on() {
    let admin = Admin::start().await;
    let body = format!("a{}=1", ".a".repeat(10_000));
    let response = admin
        .http
        .post(format!("{}/services", admin.twin.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(admin.get("/").await.status, 200);
    assert_eq!(admin.get("/services").await.body["data"], json!([]));
}

#[tokio::test]
async fn a_regex_path_that_does_not_compile_is_refused() {
    let admin = Admin::start().await;
    let refused = admin.post("/routes", json!({"paths": ["~/(a"]})).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let message = refused.body["fields"]["paths"][0].as_str().unwrap();
    assert!(message.starts_with("invalid regex: '/(a' (PCRE returned: "), "{message}");
    let fine = admin.post("/routes", json!({"paths": ["~/v[0-9]+/items$"]})).await;
    assert_eq!(fine.status, 201, "{}", fine.body);
}
