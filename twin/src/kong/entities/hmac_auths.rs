//! hmac-auth credentials (reference §7.6): a username and a shared secret.

use super::credentials;
use crate::kong::schema::{Field, Kind, Schema};

/// The hmac-auths schema.
pub fn schema() -> Schema {
    let mut fields = credentials::owned_fields();
    fields.extend([
        Field::new("username", Kind::String).required().unique(),
        Field::new("secret", Kind::String).default(credentials::random_string),
        super::tags_field(),
    ]);
    let mut schema = super::schema("hmac-auths", Some("username"), fields);
    schema.nested_name = "hmac-auth";
    schema
}
