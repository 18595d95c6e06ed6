//! Services (reference §7.1): upstream API definitions, with the write-only `url` shorthand.

use serde_json::{Map, Value, json};

use super::checks;
use crate::kong::schema::{Element, Field, ForeignKey, Kind, OnDelete, Schema, Violations};

/// Protocols under which the TLS fields may be set.
const TLS_PROTOCOLS: [&str; 2] = ["https", "tls"];

/// Protocols under which `path` must be null.
const PATHLESS_PROTOCOLS: [&str; 5] = ["tcp", "tls", "udp", "grpc", "grpcs"];

/// The services schema.
pub fn schema() -> Schema {
    let mut fields = super::identity_fields();
    fields.extend([
        super::name_field(),
        Field::new("retries", Kind::Integer)
            .default(|_| json!(5))
            .check(|value| checks::between(value, 0, 32767)),
        Field::new("protocol", Kind::String)
            .required()
            .default(|_| json!("http"))
            .check(|value| checks::one_of(value.as_str()?, &checks::PROTOCOLS).map(Value::String)),
        Field::new("host", Kind::String)
            .required()
            .check(checks::service_host),
        Field::new("port", Kind::Integer)
            .required()
            .default(|_| json!(80))
            .check(|value| checks::between(value, 0, 65535)),
        Field::new("path", Kind::String).check(checks::service_path),
        timeout("connect_timeout"),
        timeout("write_timeout"),
        timeout("read_timeout"),
        super::tags_field(),
        Field::new(
            "client_certificate",
            Kind::Foreign(ForeignKey {
                collection: "certificates",
                on_delete: OnDelete::Restrict,
            }),
        ),
        Field::new("tls_verify", Kind::Boolean),
        Field::new("tls_verify_depth", Kind::Integer).check(|value| checks::between(value, 0, 64)),
        Field::new("ca_certificates", Kind::Array(Element::Uuid)),
        Field::new("enabled", Kind::Boolean)
            .required()
            .default(super::default_true),
    ]);
    let mut schema = super::schema("services", Some("name"), fields);
    schema.shorthands.push(expand_url);
    schema.entity_checks.push(protocol_conditionals);
    schema
}

/// A timeout in milliseconds, default 60000.
fn timeout(name: &'static str) -> Field {
    Field::new(name, Kind::Integer)
        .default(|_| json!(60000))
        .check(|value| checks::between(value, 1, 2_147_483_646))
}

/// Expands `url` into `protocol`, `host`, `port` and `path` (never stored).
fn expand_url(body: &mut Map<String, Value>, violations: &mut Violations) {
    let Some(url) = body.remove("url") else {
        return;
    };
    let Value::String(url) = url else {
        if !url.is_null() {
            violations.field("url", "expected a string");
        }
        return;
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        violations.field("url", "missing host in url");
        return;
    };
    let (authority, path) = match rest.find('/') {
        Some(index) => (&rest[..index], Some(&rest[index..])),
        None => (rest, None),
    };
    let Ok((host, port)) = checks::split_host_port(authority) else {
        violations.field("url", "invalid port number");
        return;
    };
    if host.is_empty() {
        violations.field("url", "missing host in url");
        return;
    }
    let protocol = if scheme.is_empty() {
        if port == Some(443) {
            "https".to_owned()
        } else {
            "http".to_owned()
        }
    } else {
        scheme.to_ascii_lowercase()
    };
    let port = port.unwrap_or(if protocol == "https" { 443 } else { 80 });
    body.insert("protocol".to_owned(), json!(protocol));
    body.insert("host".to_owned(), json!(host));
    body.insert("port".to_owned(), json!(port));
    body.insert(
        "path".to_owned(),
        path.map_or(Value::Null, |path| json!(path)),
    );
}

/// `path` only for HTTP-ish protocols; TLS client settings only for `https`/`tls`.
fn protocol_conditionals(entity: &Map<String, Value>, violations: &mut Violations) {
    let protocol = entity
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut failed = false;
    let mut must_be_null = |field: &str, violations: &mut Violations| {
        if entity.get(field).is_some_and(|value| !value.is_null()) {
            violations.field(field, "value must be null");
            failed = true;
        }
    };
    if PATHLESS_PROTOCOLS.contains(&protocol) {
        must_be_null("path", violations);
    }
    if !TLS_PROTOCOLS.contains(&protocol) {
        for field in [
            "client_certificate",
            "tls_verify",
            "tls_verify_depth",
            "ca_certificates",
        ] {
            must_be_null(field, violations);
        }
    }
    if failed {
        violations.entity("failed conditional validation given value of field 'protocol'");
    }
}
