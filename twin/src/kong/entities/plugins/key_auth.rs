//! The key-auth plugin (reference §7.3): API keys in headers, query or body.

use serde_json::json;

use super::catalog::{self, PluginSchema};
use crate::kong::entities::{default_false, default_true};
use crate::kong::schema::{Element, Field, Kind};

/// The key-auth plugin schema.
pub fn schema() -> PluginSchema {
    PluginSchema::new("key-auth", 1250)
        .no_consumer()
        .config(vec![
            Field::new("key_names", Kind::Array(Element::String))
                .required()
                .default(|_| json!(["apikey"]))
                .check(|value| catalog::each(value, catalog::header_name)),
            Field::new("hide_credentials", Kind::Boolean)
                .required()
                .default(default_false),
            Field::new("anonymous", Kind::String),
            Field::new("key_in_header", Kind::Boolean)
                .required()
                .default(default_true),
            Field::new("key_in_query", Kind::Boolean)
                .required()
                .default(default_true),
            Field::new("key_in_body", Kind::Boolean)
                .required()
                .default(default_false),
            Field::new("run_on_preflight", Kind::Boolean)
                .required()
                .default(default_true),
            Field::new("realm", Kind::String),
        ])
}
