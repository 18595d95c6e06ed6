//! OAuth2 credentials (reference §7.6): a consumer's client applications, addressed by
//! `client_id` under `/oauth2` and `/consumers/{c}/oauth2`.

use serde_json::{Value, json};

use super::{checks, credentials};
use crate::kong::schema::{Element, Field, Kind, Schema};

/// The oauth2 credentials schema (Kong's `oauth2_credentials` table).
pub fn schema() -> Schema {
    let mut fields = credentials::owned_fields();
    fields.extend([
        Field::new("name", Kind::String).required(),
        Field::new("client_id", Kind::String)
            .unique()
            .default(credentials::random_string),
        Field::new("client_secret", Kind::String).default(credentials::random_string),
        Field::new("hash_secret", Kind::Boolean)
            .required()
            .default(super::default_false),
        Field::new("redirect_uris", Kind::Array(Element::String)).check(redirect_uris),
        super::tags_field(),
        Field::new("client_type", Kind::String)
            .required()
            .default(|_| json!("confidential"))
            .check(|value| {
                checks::one_of(value.as_str()?, &["confidential", "public"]).map(Value::String)
            }),
    ]);
    let mut schema = super::schema("oauth2", Some("client_id"), fields);
    schema.nested_name = "oauth2";
    schema
}

/// Each redirect URI is absolute (scheme and host) and has no fragment.
fn redirect_uris(value: &Value) -> Option<Value> {
    let items = value.as_array()?;
    let errors: Vec<Value> = items
        .iter()
        .map(|item| {
            let uri = item.as_str().unwrap_or_default();
            let parsed = uri.split_once("://").filter(|(scheme, rest)| {
                !scheme.is_empty() && !rest.is_empty() && !rest.starts_with('/')
            });
            if parsed.is_none() {
                json!(format!("cannot parse '{uri}'"))
            } else if uri.contains('#') {
                json!(format!("fragment not allowed in '{uri}'"))
            } else {
                Value::Null
            }
        })
        .collect();
    errors
        .iter()
        .any(|error| !error.is_null())
        .then(|| Value::Array(errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_without_fragment() {
        assert_eq!(redirect_uris(&json!(["https://app.example/cb"])), None);
        assert_eq!(
            redirect_uris(&json!(["https://app.example/cb", "/cb", "https://a/x#y"])),
            Some(json!([
                null,
                "cannot parse '/cb'",
                "fragment not allowed in 'https://a/x#y'"
            ]))
        );
    }
}
