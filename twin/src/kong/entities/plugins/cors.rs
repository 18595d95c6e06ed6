//! The cors plugin: CORS headers and preflight answers.

use serde_json::json;

use super::super::checks;
use super::catalog::{self, PluginSchema};
use crate::kong::entities::default_false;
use crate::kong::schema::{Element, Field, Kind};

/// Methods allowed by default, in Kong's order.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

/// The cors plugin schema.
pub fn schema() -> PluginSchema {
    PluginSchema::new("cors", 2000).no_consumer().config(vec![
        Field::new("origins", Kind::Array(Element::String)),
        Field::new("headers", Kind::Array(Element::String)),
        Field::new("exposed_headers", Kind::Array(Element::String)),
        Field::new("methods", Kind::Array(Element::String))
            .default(|_| json!(METHODS))
            .check(|value| catalog::each(value, |item| checks::one_of(item, &METHODS))),
        Field::new("max_age", Kind::Number),
        Field::new("credentials", Kind::Boolean)
            .required()
            .default(default_false),
        Field::new("private_network", Kind::Boolean)
            .required()
            .default(default_false),
        Field::new("preflight_continue", Kind::Boolean)
            .required()
            .default(default_false),
    ])
}
