//! key-auth credentials (reference §7.5): API keys of a consumer, with an optional TTL.

use super::credentials;
use crate::kong::schema::{Field, Kind, Schema};

/// The key-auths schema; `ttl` holds the absolute expiry (Unix seconds) behind the
/// `ttl` hook.
pub fn schema() -> Schema {
    let mut fields = credentials::owned_fields();
    fields.extend([
        Field::new("key", Kind::String)
            .unique()
            .default(credentials::random_string),
        super::tags_field(),
        Field::new("ttl", Kind::Number),
    ]);
    let mut schema = super::schema("key-auths", Some("key"), fields);
    schema.nested_name = "key-auth";
    schema.ttl = true;
    schema
}
