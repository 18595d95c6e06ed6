//! Upstreams (reference §7.7): load-balancer definitions with a `healthchecks` record.

use serde_json::{Map, Value, json};

use super::checks;
use crate::kong::schema::{Field, ForeignKey, HealthHook, Kind, OnDelete, Schema, Violations};

/// Balancing algorithms, in Kong's order.
const ALGORITHMS: [&str; 4] = [
    "round-robin",
    "consistent-hashing",
    "least-connections",
    "latency",
];

/// Hash inputs, in Kong's order.
const HASH_ON: [&str; 8] = [
    "none",
    "consumer",
    "ip",
    "header",
    "cookie",
    "path",
    "query_arg",
    "uri_capture",
];

/// The upstreams schema.
pub fn schema() -> Schema {
    let mut fields = super::identity_fields();
    fields.extend([
        Field::new("name", Kind::String)
            .required()
            .unique()
            .check(upstream_name),
        Field::new("algorithm", Kind::String)
            .default(default_algorithm)
            .check(|value| checks::one_of(value.as_str()?, &ALGORITHMS).map(Value::String)),
        hash_enum("hash_on"),
        hash_enum("hash_fallback"),
        Field::new("hash_on_header", Kind::String),
        Field::new("hash_fallback_header", Kind::String),
        Field::new("hash_on_cookie", Kind::String),
        Field::new("hash_on_cookie_path", Kind::String).default(|_| json!("/")),
        Field::new("hash_on_query_arg", Kind::String),
        Field::new("hash_fallback_query_arg", Kind::String),
        Field::new("hash_on_uri_capture", Kind::String),
        Field::new("hash_fallback_uri_capture", Kind::String),
        Field::new("slots", Kind::Integer)
            .default(|_| json!(10000))
            .check(|value| checks::between(value, 10, 65536)),
        Field::new("healthchecks", Kind::Record)
            .default(|_| default_healthchecks())
            .check(check_healthchecks),
        super::tags_field(),
        Field::new("host_header", Kind::String).check(host_header),
        Field::new(
            "client_certificate",
            Kind::Foreign(ForeignKey {
                collection: "certificates",
                on_delete: OnDelete::Restrict,
            }),
        ),
        Field::new("use_srv_name", Kind::Boolean).default(super::default_false),
    ]);
    let mut schema = super::schema("upstreams", Some("name"), fields);
    schema.entity_checks.push(hash_coupling);
    schema.health = Some(HealthHook {
        child: "targets",
        enabled: healthchecks_enabled,
        threshold: |upstream| {
            upstream
                .get("healthchecks")
                .and_then(|checks| checks.get("threshold"))
                .and_then(Value::as_f64)
                .unwrap_or_default()
        },
    });
    schema
}

/// A `none`-defaulted hash enum.
fn hash_enum(name: &'static str) -> Field {
    Field::new(name, Kind::String)
        .default(|_| json!("none"))
        .check(|value| checks::one_of(value.as_str()?, &HASH_ON).map(Value::String))
}

/// `consistent-hashing` when hashing on something, else `round-robin`.
fn default_algorithm(entity: &Map<String, Value>) -> Value {
    match entity.get("hash_on").and_then(Value::as_str) {
        Some(hash_on) if hash_on != "none" => json!("consistent-hashing"),
        _ => json!("round-robin"),
    }
}

/// The `healthchecks` default, returned in full on every upstream.
pub fn default_healthchecks() -> Value {
    json!({
        "threshold": 0,
        "active": {
            "type": "http",
            "timeout": 1,
            "concurrency": 10,
            "http_path": "/",
            "https_sni": null,
            "https_verify_certificate": true,
            "headers": null,
            "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
            "unhealthy": {
                "interval": 0,
                "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                "tcp_failures": 0,
                "timeouts": 0,
                "http_failures": 0
            }
        },
        "passive": {
            "type": "http",
            "healthy": {
                "http_statuses": [200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                                  300, 301, 302, 303, 304, 305, 306, 307, 308],
                "successes": 0
            },
            "unhealthy": {
                "http_statuses": [429, 500, 503],
                "tcp_failures": 0,
                "timeouts": 0,
                "http_failures": 0
            }
        }
    })
}

/// Whether health checking is enabled for an upstream (reference §7.7).
pub fn healthchecks_enabled(upstream: &Map<String, Value>) -> bool {
    let Some(checks) = upstream.get("healthchecks") else {
        return false;
    };
    let nonzero = |path: &str| {
        checks
            .pointer(path)
            .and_then(Value::as_f64)
            .is_some_and(|number| number != 0.0)
    };
    [
        "/active/healthy/interval",
        "/active/unhealthy/interval",
        "/passive/unhealthy/tcp_failures",
        "/passive/unhealthy/timeouts",
        "/passive/unhealthy/http_failures",
    ]
    .iter()
    .any(|path| nonzero(path))
}

/// Upstream names: hostnames, no IP addresses, no port.
fn upstream_name(value: &Value) -> Option<Value> {
    let text = value.as_str()?;
    let message = match checks::split_host_port(text) {
        Ok((host, _)) if host.parse::<std::net::IpAddr>().is_ok() => "no ip addresses allowed",
        Ok((_, Some(_))) => "no port allowed",
        Ok((host, None)) if checks::is_hostname(host) => return None,
        _ => "must be a valid hostname",
    };
    Some(json!(format!("Invalid name ('{text}'); {message}")))
}

/// `host_header`: a host with an optional port.
fn host_header(value: &Value) -> Option<Value> {
    let text = value.as_str()?;
    match checks::split_host_port(text) {
        Ok((host, _)) if checks::is_host(host) => None,
        _ => Some(json!(format!("invalid value: {text}"))),
    }
}

/// Range checks of the `healthchecks` record's numbers and enums.
fn check_healthchecks(value: &Value) -> Option<Value> {
    let mut errors = Map::new();
    let ranges: [(&str, i64, i64); 11] = [
        ("/threshold", 0, 100),
        ("/active/timeout", 0, 65535),
        ("/active/concurrency", 1, 2_147_483_648),
        ("/active/healthy/interval", 0, 65535),
        ("/active/healthy/successes", 0, 255),
        ("/active/unhealthy/interval", 0, 65535),
        ("/active/unhealthy/tcp_failures", 0, 255),
        ("/active/unhealthy/timeouts", 0, 255),
        ("/active/unhealthy/http_failures", 0, 255),
        ("/passive/unhealthy/tcp_failures", 0, 255),
        ("/passive/unhealthy/http_failures", 0, 255),
    ];
    for (path, min, max) in ranges {
        let Some(item) = value.pointer(path).filter(|item| !item.is_null()) else {
            continue;
        };
        let error = if item.is_number() {
            checks::between(item, min, max)
        } else {
            Some(json!("expected a number"))
        };
        if let Some(error) = error {
            insert_at(&mut errors, path, error);
        }
    }
    for path in ["/active/type", "/passive/type"] {
        let types = ["tcp", "http", "https", "grpc", "grpcs"];
        if let Some(item) = value.pointer(path).filter(|item| !item.is_null()) {
            let error = match item.as_str() {
                Some(text) => checks::one_of(text, &types).map(Value::String),
                None => Some(json!("expected a string")),
            };
            if let Some(error) = error {
                insert_at(&mut errors, path, error);
            }
        }
    }
    (!errors.is_empty()).then_some(Value::Object(errors))
}

/// Inserts `error` at the JSON-pointer `path` inside `errors`.
fn insert_at(errors: &mut Map<String, Value>, path: &str, error: Value) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut cursor = errors;
    for part in &parts[..parts.len() - 1] {
        let next = cursor
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(next) = next else { return };
        cursor = next;
    }
    cursor.insert(parts[parts.len() - 1].to_owned(), error);
}

/// `hash_on`/`hash_fallback` coupling and the fields each hash input requires.
fn hash_coupling(entity: &Map<String, Value>, violations: &mut Violations) {
    let text = |field: &str| entity.get(field).and_then(Value::as_str);
    let set = |field: &str| entity.get(field).is_some_and(|value| !value.is_null());
    let hash_on = text("hash_on").unwrap_or("none");
    let fallback = text("hash_fallback").unwrap_or("none");
    if (hash_on == "none" || hash_on == "cookie") && fallback != "none" {
        violations.field("hash_fallback", "expected one of: none");
    } else if hash_on != "none" && hash_on == fallback && hash_on != "header" {
        violations.entity("values of these fields must be distinct: 'hash_on', 'hash_fallback'");
    }
    let requirements = [
        ("header", "hash_on", "hash_on_header"),
        ("cookie", "hash_on", "hash_on_cookie"),
        ("query_arg", "hash_on", "hash_on_query_arg"),
        ("uri_capture", "hash_on", "hash_on_uri_capture"),
        ("header", "hash_fallback", "hash_fallback_header"),
        ("query_arg", "hash_fallback", "hash_fallback_query_arg"),
        ("uri_capture", "hash_fallback", "hash_fallback_uri_capture"),
    ];
    for (input, selector, field) in requirements {
        if text(selector) == Some(input) && !set(field) {
            violations.field(field, "required field missing");
        }
    }
    for (first, second) in [
        ("hash_on_header", "hash_fallback_header"),
        ("hash_on_query_arg", "hash_fallback_query_arg"),
        ("hash_on_uri_capture", "hash_fallback_uri_capture"),
    ] {
        if set(first) && entity.get(first) == entity.get(second) {
            violations.entity(format!(
                "values of these fields must be distinct: '{first}', '{second}'"
            ));
        }
    }
    let algorithm = text("algorithm").unwrap_or("round-robin");
    if (algorithm == "least-connections" || algorithm == "latency") && hash_on != "none" {
        violations.field("hash_on", "expected one of: none");
    }
}
