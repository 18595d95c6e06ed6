//! basic-auth credentials (reference §7.6): usernames with passwords stored as Kong
//! stores them, the SHA-1 hex of the password followed by the consumer id.

use serde_json::{Map, Value, json};

use super::credentials;
use crate::kong::schema::{Field, Kind, Schema, Transformation};

/// The basic-auths schema.
pub fn schema() -> Schema {
    let mut fields = credentials::owned_fields();
    fields.extend([
        Field::new("username", Kind::String).required().unique(),
        Field::new("password", Kind::String).required(),
        super::tags_field(),
    ]);
    let mut schema = super::schema("basic-auths", Some("username"), fields);
    schema.nested_name = "basic-auth";
    schema.transformations.push(Transformation {
        input: "password",
        apply: hash_password,
    });
    schema
}

/// Kong's `crypto.hash(consumer_id, password)`.
pub fn password_hash(consumer_id: &str, password: &str) -> String {
    sha1_smol::Sha1::from(format!("{password}{consumer_id}"))
        .digest()
        .to_string()
}

/// Replaces the written password with its hash.
fn hash_password(entity: &mut Map<String, Value>) {
    let consumer = entity
        .get("consumer")
        .and_then(|consumer| consumer.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(password) = entity.get("password").and_then(Value::as_str) {
        let hashed = password_hash(&consumer, password);
        entity.insert("password".to_owned(), json!(hashed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_the_consumer_id_as_salt() {
        // printf 'secret1234' | sha1sum
        assert_eq!(
            password_hash("1234", "secret"),
            "9119d6a820c5bd916857b03a71318176ad57bfb7"
        );
    }
}
