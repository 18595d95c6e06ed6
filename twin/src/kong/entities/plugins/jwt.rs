//! The jwt plugin: signed JSON Web Tokens from the consumer's jwt credentials.

use serde_json::json;

use super::super::checks;
use super::catalog::{self, PluginCheck, PluginSchema};
use crate::kong::entities::{default_false, default_true};
use crate::kong::schema::{Element, Field, Kind};

/// The jwt plugin schema.
pub fn schema() -> PluginSchema {
    PluginSchema::new("jwt", 1450)
        .no_consumer()
        .config(vec![
            Field::new("uri_param_names", Kind::Set(Element::String)).default(|_| json!(["jwt"])),
            Field::new("cookie_names", Kind::Set(Element::String)).default(|_| json!([])),
            Field::new("key_claim_name", Kind::String).default(|_| json!("iss")),
            Field::new("secret_is_base64", Kind::Boolean)
                .required()
                .default(default_false),
            Field::new("claims_to_verify", Kind::Set(Element::String))
                .check(|value| catalog::each(value, |item| checks::one_of(item, &["exp", "nbf"]))),
            Field::new("anonymous", Kind::String),
            Field::new("run_on_preflight", Kind::Boolean)
                .required()
                .default(default_true),
            Field::new("maximum_expiration", Kind::Number)
                .default(|_| json!(0))
                .check(|value| checks::between(value, 0, 31_536_000)),
            Field::new("header_names", Kind::Set(Element::String))
                .default(|_| json!(["authorization"])),
            Field::new("realm", Kind::String),
        ])
        .check(PluginCheck::ContainsWhenPositive {
            field: "maximum_expiration",
            then: "claims_to_verify",
            element: "exp",
        })
}
