//! The hmac-auth plugin: HMAC-signed requests.

use serde_json::json;

use super::super::checks;
use super::catalog::{self, PluginSchema};
use crate::kong::entities::default_false;
use crate::kong::schema::{Element, Field, Kind};

/// Signature algorithms, in Kong's order.
const ALGORITHMS: [&str; 4] = ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"];

/// The hmac-auth plugin schema.
pub fn schema() -> PluginSchema {
    PluginSchema::new("hmac-auth", 1030)
        .no_consumer()
        .config(vec![
            Field::new("hide_credentials", Kind::Boolean)
                .required()
                .default(default_false),
            Field::new("clock_skew", Kind::Number)
                .default(|_| json!(300))
                .check(catalog::positive),
            Field::new("anonymous", Kind::String),
            Field::new("validate_request_body", Kind::Boolean)
                .required()
                .default(default_false),
            Field::new("enforce_headers", Kind::Array(Element::String)).default(|_| json!([])),
            Field::new("algorithms", Kind::Array(Element::String))
                .default(|_| json!(ALGORITHMS))
                .check(|value| catalog::each(value, |item| checks::one_of(item, &ALGORITHMS))),
            Field::new("realm", Kind::String),
        ])
}
