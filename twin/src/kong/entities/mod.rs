//! The entity catalogue: one file per entity, each a [`Schema`] value.

use serde_json::{Value, json};

use super::schema::{Element, Field, Kind, Registry, Schema, check_tags};

pub mod acls;
pub mod basic_auths;
pub mod ca_certificates;
pub mod certificates;
pub(crate) mod checks;
pub mod consumers;
mod credentials;
pub mod hmac_auths;
pub mod jwts;
pub mod key_auths;
pub mod oauth2_credentials;
pub mod oauth2_tokens;
pub mod plugins;
pub mod routes;
pub mod services;
pub mod snis;
pub mod targets;
pub mod upstreams;

/// Every entity the Kong twin serves, in registration order.
pub fn registry() -> Registry {
    Registry {
        schemas: vec![
            services::schema(),
            routes::schema(),
            upstreams::schema(),
            targets::schema(),
            certificates::schema(),
            snis::schema(),
            ca_certificates::schema(),
            consumers::schema(),
            plugins::schema(),
            key_auths::schema(),
            jwts::schema(),
            acls::schema(),
            basic_auths::schema(),
            hmac_auths::schema(),
            oauth2_credentials::schema(),
            oauth2_tokens::schema(),
        ],
    }
}

/// The fields every entity starts with: `id`, `created_at`, `updated_at`.
fn identity_fields() -> Vec<Field> {
    vec![
        Field::new("id", Kind::Uuid),
        Field::new("created_at", Kind::Timestamp),
        Field::new("updated_at", Kind::Timestamp),
    ]
}

/// The `tags` set common to every entity.
fn tags_field() -> Field {
    Field::new("tags", Kind::Set(Element::String)).check(check_tags)
}

/// The `name` endpoint key of services and routes.
fn name_field() -> Field {
    Field::new("name", Kind::String)
        .unique()
        .check(checks::name)
}

/// A default of `true`.
fn default_true(_: &serde_json::Map<String, Value>) -> Value {
    json!(true)
}

/// A default of `false`.
fn default_false(_: &serde_json::Map<String, Value>) -> Value {
    json!(false)
}

/// Builds a [`Schema`] with no shorthands or entity checks.
fn schema(
    collection: &'static str,
    endpoint_key: Option<&'static str>,
    fields: Vec<Field>,
) -> Schema {
    Schema {
        collection,
        nested_name: collection,
        endpoint_key,
        fields,
        shorthands: Vec::new(),
        entity_checks: Vec::new(),
        nested_only: false,
        nested_update_only: false,
        float_timestamps: false,
        unique_scope: None,
        normalize_key: None,
        index_offsets: false,
        health: None,
        forced_health: false,
        child_keys: None,
        on_write: None,
        id_references: Vec::new(),
        ttl: false,
        lookup_query: None,
        cache_key: None,
        subschema: None,
        store_check: None,
        transformations: Vec::new(),
    }
}
