//! Plugins (reference §7.3): global or scoped by service, route and consumer, with a
//! `config` validated against the named plugin's schema ([`catalog`]).

use serde_json::{Map, Value, json};

use super::checks;
use crate::kong::error::DaoError;
use crate::kong::schema::{Element, Field, ForeignKey, Kind, OnDelete, Schema, Subschema};
use crate::kong::store::Store;

mod acl;
mod basic_auth;
pub mod catalog;
mod cors;
mod hmac_auth;
mod ip_restriction;
mod jwt;
mod key_auth;
mod oauth2;
mod rate_limiting;
mod request_termination;

/// The entity's `protocols` default (`typedefs.protocols`).
const DEFAULT_PROTOCOLS: [&str; 4] = ["grpc", "grpcs", "http", "https"];

/// The plugins schema.
pub fn schema() -> Schema {
    let scope = |name: &'static str, collection: &'static str| {
        Field::new(
            name,
            Kind::Foreign(ForeignKey {
                collection,
                on_delete: OnDelete::Cascade,
            }),
        )
    };
    let fields = vec![
        Field::new("id", Kind::Uuid),
        Field::new("name", Kind::String).required().check(enabled),
        Field::new("instance_name", Kind::String)
            .unique()
            .check(checks::name),
        Field::new("created_at", Kind::Timestamp),
        Field::new("updated_at", Kind::Timestamp),
        scope("route", "routes"),
        scope("service", "services"),
        scope("consumer", "consumers"),
        Field::new("config", Kind::Record),
        Field::new("protocols", Kind::Set(Element::String))
            .required()
            .default(default_protocols)
            .check(checks::protocols),
        Field::new("enabled", Kind::Boolean)
            .required()
            .default(super::default_true),
        super::tags_field(),
    ];
    let mut schema = super::schema("plugins", Some("instance_name"), fields);
    schema.cache_key = Some(&["name", "route", "service", "consumer"]);
    schema.subschema = Some(Subschema {
        key: "name",
        apply: complete,
    });
    schema.store_check = Some(protocols_match);
    schema
}

/// `plugin '<n>' not enabled; ...` for a plugin the node does not load.
fn enabled(value: &Value) -> Option<Value> {
    let name = value.as_str()?;
    catalog::find(name).is_none().then(|| {
        json!(format!(
            "plugin '{name}' not enabled; add it to the 'plugins' configuration property"
        ))
    })
}

/// The named plugin's own `protocols` default, else the entity's.
fn default_protocols(plugin: &Map<String, Value>) -> Value {
    let own = plugin
        .get("name")
        .and_then(Value::as_str)
        .and_then(catalog::find)
        .and_then(|schema| schema.default_protocols);
    match own {
        Some(protocols) => json!(protocols),
        None => json!(DEFAULT_PROTOCOLS),
    }
}

/// The [`Subschema`] hook: the named plugin's consumer rule, protocols and `config`.
fn complete(plugin: &mut Map<String, Value>, violations: &mut crate::kong::schema::Violations) {
    let schema = plugin
        .get("name")
        .and_then(Value::as_str)
        .and_then(catalog::find);
    if let Some(schema) = schema {
        catalog::complete(schema, plugin, violations);
    }
}

/// A plugin's protocols must share one with its route, or with at least one route of its
/// service (Kong's `check_protocols_match`).
fn protocols_match(store: &Store, plugin: &Map<String, Value>) -> Result<(), DaoError> {
    let protocols: Vec<&str> = plugin
        .get("protocols")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |items| {
            items.iter().filter_map(Value::as_str).collect()
        });
    let shares = |route: &Map<String, Value>| {
        route
            .get("protocols")
            .and_then(Value::as_array)
            .is_some_and(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|protocol| protocols.contains(&protocol))
            })
    };
    let scope_id = |field: &str| plugin.get(field)?.get("id")?.as_str();
    let message = if let Some(route_id) = scope_id("route") {
        let route = store.find("routes", route_id);
        route
            .is_some_and(|route| !shares(route))
            .then_some("must match the associated route's protocols")
    } else if let Some(service_id) = scope_id("service") {
        let mut routes = store
            .rows("routes")
            .filter(|route| {
                route
                    .get("service")
                    .and_then(|service| service.get("id"))
                    .and_then(Value::as_str)
                    == Some(service_id)
            })
            .peekable();
        let has_routes = routes.peek().is_some();
        let mut routes = routes;
        (has_routes && !routes.any(shares)).then_some(
            "must match the protocols of at least one route pointing to this Plugin's service",
        )
    } else {
        None
    };
    match message {
        None => Ok(()),
        Some(message) => {
            let mut fields = Map::new();
            fields.insert("protocols".to_owned(), json!(message));
            Err(DaoError::SchemaViolation {
                fields,
                entity: Vec::new(),
            })
        }
    }
}
