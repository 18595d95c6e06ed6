//! Routes (reference §7.2): matching rules that send traffic to a service.

use serde_json::{Map, Value, json};

use super::checks;
use crate::kong::schema::{Element, Field, ForeignKey, Kind, OnDelete, Schema, Violations};

/// Protocol groups that cannot be mixed in one route.
const PROTOCOL_GROUPS: [&[&str]; 4] = [
    &["http", "https"],
    &["tcp", "tls", "udp"],
    &["tls_passthrough"],
    &["grpc", "grpcs"],
];

/// The routes schema.
pub fn schema() -> Schema {
    let mut fields = super::identity_fields();
    fields.extend([
        super::name_field(),
        Field::new("protocols", Kind::Set(Element::String))
            .required()
            .default(|_| json!(["http", "https"]))
            .check(checks::protocols),
        Field::new("methods", Kind::Set(Element::String)).check(checks::route_methods),
        Field::new("hosts", Kind::Array(Element::String)).check(checks::route_hosts),
        Field::new("paths", Kind::Array(Element::String)).check(checks::route_paths),
        Field::new("headers", Kind::Map).check(checks::route_headers),
        Field::new("https_redirect_status_code", Kind::Integer)
            .required()
            .default(|_| json!(426))
            .check(|value| {
                let allowed = [426, 301, 302, 307, 308];
                (!allowed.iter().any(|code| value.as_i64() == Some(*code)))
                    .then(|| json!("expected one of: 426, 301, 302, 307, 308"))
            }),
        Field::new("regex_priority", Kind::Integer).default(|_| json!(0)),
        Field::new("strip_path", Kind::Boolean)
            .required()
            .default(|entity| json!(!is_grpc(entity))),
        Field::new("path_handling", Kind::String)
            .default(|_| json!("v0"))
            .check(|value| checks::one_of(value.as_str()?, &["v0", "v1"]).map(Value::String)),
        Field::new("preserve_host", Kind::Boolean)
            .required()
            .default(super::default_false),
        Field::new("request_buffering", Kind::Boolean)
            .required()
            .default(super::default_true),
        Field::new("response_buffering", Kind::Boolean)
            .required()
            .default(super::default_true),
        Field::new("snis", Kind::Set(Element::String)),
        Field::new("sources", Kind::Set(Element::Record)),
        Field::new("destinations", Kind::Set(Element::Record)),
        super::tags_field(),
        Field::new(
            "service",
            Kind::Foreign(ForeignKey {
                collection: "services",
                on_delete: OnDelete::Restrict,
            }),
        ),
    ]);
    let mut schema = super::schema("routes", Some("name"), fields);
    schema.entity_checks.extend([
        exclusive_protocol_groups as fn(&Map<String, Value>, &mut Violations),
        matching_attributes,
    ]);
    schema
}

/// The route's protocols.
fn protocols(entity: &Map<String, Value>) -> Vec<&str> {
    entity
        .get("protocols")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |items| {
            items.iter().filter_map(Value::as_str).collect()
        })
}

/// Whether the route speaks gRPC (its `strip_path` defaults to false).
fn is_grpc(entity: &Map<String, Value>) -> bool {
    protocols(entity)
        .iter()
        .any(|protocol| protocol.starts_with("grpc"))
}

/// Whether `field` holds a non-empty value.
fn is_set(entity: &Map<String, Value>, field: &str) -> bool {
    match entity.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(map)) => !map.is_empty(),
        Some(_) => true,
    }
}

/// Protocols from different groups cannot be mixed.
fn exclusive_protocol_groups(entity: &Map<String, Value>, violations: &mut Violations) {
    let protocols = protocols(entity);
    let used: Vec<String> = PROTOCOL_GROUPS
        .iter()
        .filter(|group| group.iter().any(|member| protocols.contains(member)))
        .map(|group| {
            format!(
                "({})",
                group
                    .iter()
                    .map(|member| format!("'{member}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    if used.len() > 1 {
        violations.field(
            "protocols",
            format!("these sets are mutually exclusive: {}", used.join(", ")),
        );
    }
}

/// Each protocol family needs some matching attribute and forbids others.
fn matching_attributes(entity: &Map<String, Value>, violations: &mut Violations) {
    if !violations.fields.is_empty() {
        return;
    }
    let protocols = protocols(entity);
    let has = |protocol: &str| protocols.contains(&protocol);
    let (required, forbidden, message): (&[&str], &[&str], String) = if has("tls_passthrough") {
        (
            &["snis"],
            &["methods", "hosts", "paths", "headers"],
            "must set snis when 'protocols' is 'tls_passthrough'".to_owned(),
        )
    } else if has("tcp") || has("tls") || has("udp") {
        (
            &["sources", "destinations", "snis"],
            &["methods", "hosts", "paths", "headers"],
            "must set one of 'sources', 'destinations', 'snis' when 'protocols' is 'tcp', 'tls' or 'udp'".to_owned(),
        )
    } else if has("grpcs") {
        (
            &["hosts", "headers", "paths", "snis"],
            &["methods", "sources", "destinations"],
            "must set one of 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'grpcs'"
                .to_owned(),
        )
    } else if has("grpc") {
        (
            &["hosts", "headers", "paths"],
            &["methods", "sources", "destinations"],
            "must set one of 'hosts', 'headers', 'paths' when 'protocols' is 'grpc'".to_owned(),
        )
    } else if has("https") {
        (&["methods", "hosts", "headers", "paths", "snis"], &["sources", "destinations"], "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'".to_owned())
    } else {
        (
            &["methods", "hosts", "headers", "paths"],
            &["sources", "destinations"],
            "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'"
                .to_owned(),
        )
    };
    let mut conditional = false;
    for field in forbidden {
        if is_set(entity, field) {
            violations.field(field, "value must be null");
            conditional = true;
        }
    }
    let tls_capable = ["https", "grpcs", "tls", "tls_passthrough"]
        .iter()
        .any(|protocol| has(protocol));
    if is_set(entity, "snis") && !tls_capable {
        violations.entity("'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'");
    }
    if is_grpc(entity) && entity.get("strip_path") == Some(&Value::Bool(true)) {
        violations.field("strip_path", "value must be false");
        conditional = true;
    }
    if conditional {
        violations.entity("failed conditional validation given value of field 'protocols'");
    }
    if !required.iter().any(|field| is_set(entity, field)) {
        violations.entity(message);
    }
}
