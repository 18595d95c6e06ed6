//! Targets (reference §7.8): `host:port` backends of an upstream, nested under it only.

use serde_json::{Map, Value, json};

use super::checks;
use crate::kong::schema::{Field, ForeignKey, Kind, OnDelete, Schema, Violations};

/// The targets schema.
pub fn schema() -> Schema {
    let fields = vec![
        Field::new("id", Kind::Uuid),
        Field::new("created_at", Kind::Number),
        Field::new("updated_at", Kind::Number),
        Field::new(
            "upstream",
            Kind::Foreign(ForeignKey {
                collection: "upstreams",
                on_delete: OnDelete::Cascade,
            }),
        )
        .required(),
        Field::new("target", Kind::String).required().unique(),
        Field::new("weight", Kind::Integer)
            .default(|_| json!(100))
            .check(|value| checks::between(value, 0, 65535)),
        super::tags_field(),
    ];
    let mut schema = super::schema("targets", Some("target"), fields);
    schema.shorthands.push(normalize_target);
    schema.nested_only = true;
    schema.nested_update_only = true;
    schema.float_timestamps = true;
    schema.unique_scope = Some("upstream");
    schema.normalize_key = Some(normalize);
    schema.index_offsets = true;
    schema.forced_health = true;
    schema
}

/// `host[:port]` → `host:port` with port 8000 by default; IPv6 as `[addr]:port`.
pub fn normalize(text: &str) -> Option<String> {
    let (host, port) = checks::split_host_port(text).ok()?;
    let port = port.unwrap_or(8000);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(match ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
        });
    }
    checks::is_hostname(host).then(|| format!("{host}:{port}"))
}

/// Rewrites `target` to its normalized form, or reports it invalid.
fn normalize_target(body: &mut Map<String, Value>, violations: &mut Violations) {
    let Some(Value::String(text)) = body.get("target") else {
        return;
    };
    if text.is_empty() {
        return;
    }
    match normalize(text) {
        Some(normalized) => {
            body.insert("target".to_owned(), json!(normalized));
        }
        None => violations.field(
            "target",
            format!("Invalid target ('{text}'); not a valid hostname or ip address"),
        ),
    }
}
