//! Consumers (reference §7.4): API clients, addressed by `username`, found by `custom_id`.

use serde_json::{Map, Value};

use crate::kong::schema::{Field, Kind, Schema, Violations};

/// The consumers schema.
pub fn schema() -> Schema {
    let mut fields = super::identity_fields();
    fields.extend([
        Field::new("username", Kind::String).unique(),
        Field::new("custom_id", Kind::String).unique(),
        super::tags_field(),
    ]);
    let mut schema = super::schema("consumers", Some("username"), fields);
    schema.entity_checks.push(username_or_custom_id);
    schema.lookup_query = Some("custom_id");
    schema
}

/// At least one of `username` and `custom_id`.
fn username_or_custom_id(entity: &Map<String, Value>, violations: &mut Violations) {
    let set = |field: &str| entity.get(field).is_some_and(|value| !value.is_null());
    if !set("username") && !set("custom_id") {
        violations
            .entity("at least one of these fields must be non-empty: 'custom_id', 'username'");
    }
}
