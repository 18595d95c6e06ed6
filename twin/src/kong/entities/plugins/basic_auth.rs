//! The basic-auth plugin: username and password credentials.

use serde_json::json;

use super::catalog::PluginSchema;
use crate::kong::entities::default_false;
use crate::kong::schema::{Field, Kind};

/// The basic-auth plugin schema.
pub fn schema() -> PluginSchema {
    PluginSchema::new("basic-auth", 1100)
        .no_consumer()
        .config(vec![
            Field::new("anonymous", Kind::String),
            Field::new("hide_credentials", Kind::Boolean)
                .required()
                .default(default_false),
            Field::new("realm", Kind::String)
                .required()
                .default(|_| json!("service")),
        ])
}
