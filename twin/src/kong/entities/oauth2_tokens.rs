//! OAuth2 access tokens (the oauth2 plugin's `oauth2_tokens`): issued by the proxy's
//! `/oauth2/token` endpoint or created through `/oauth2_tokens`, addressed by
//! `access_token`, with an optional TTL (the refresh token's lifetime).

use serde_json::{Value, json};

use super::checks;
use super::credentials;
use crate::kong::schema::{Field, ForeignKey, Kind, OnDelete, Schema};

/// The oauth2_tokens schema; `ttl` holds the absolute expiry behind the `ttl` hook.
pub fn schema() -> Schema {
    let foreign = |name: &'static str, collection: &'static str| {
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
        Field::new("created_at", Kind::Timestamp),
        foreign("service", "services"),
        foreign("credential", "oauth2").required(),
        Field::new("token_type", Kind::String)
            .required()
            .default(|_| json!("bearer"))
            .check(|value| checks::one_of(value.as_str()?, &["bearer"]).map(Value::String)),
        Field::new("expires_in", Kind::Integer).required(),
        Field::new("access_token", Kind::String)
            .unique()
            .default(credentials::random_string),
        Field::new("refresh_token", Kind::String).unique(),
        Field::new("authenticated_userid", Kind::String),
        Field::new("scope", Kind::String),
        Field::new("ttl", Kind::Number),
    ];
    let mut schema = super::schema("oauth2_tokens", Some("access_token"), fields);
    schema.ttl = true;
    schema
}
