//! JWT credentials (reference §7.6): a consumer's signing key and secret or public key.

use serde_json::{Map, Value, json};

use super::{checks, credentials};
use crate::kong::schema::{Field, Kind, Schema, Violations};

/// Signature algorithms, in Kong's order.
const ALGORITHMS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// Algorithms verified with `rsa_public_key`.
const PUBLIC_KEY_ALGORITHMS: [&str; 7] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

/// The jwts schema.
pub fn schema() -> Schema {
    let mut fields = credentials::owned_fields();
    fields.extend([
        Field::new("key", Kind::String)
            .unique()
            .default(credentials::random_string),
        Field::new("secret", Kind::String).default(credentials::random_string),
        Field::new("rsa_public_key", Kind::String),
        Field::new("algorithm", Kind::String)
            .default(|_| json!("HS256"))
            .check(|value| checks::one_of(value.as_str()?, &ALGORITHMS).map(Value::String)),
        super::tags_field(),
    ]);
    let mut schema = super::schema("jwts", Some("key"), fields);
    schema.nested_name = "jwt";
    schema.entity_checks.push(public_key_required);
    schema
}

/// Public-key algorithms need `rsa_public_key`.
fn public_key_required(entity: &Map<String, Value>, violations: &mut Violations) {
    let algorithm = entity
        .get("algorithm")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let missing = entity.get("rsa_public_key").is_none_or(Value::is_null);
    if PUBLIC_KEY_ALGORITHMS.contains(&algorithm) && missing {
        violations.field("rsa_public_key", "required field missing");
        violations.entity("failed conditional validation given value of field 'algorithm'");
    }
}
