//! The request-termination plugin: answers every request with a fixed response.

use serde_json::{Map, Value, json};

use super::super::checks;
use super::catalog::{self, PluginSchema};
use crate::kong::entities::default_false;
use crate::kong::schema::{Field, Kind};

/// The request-termination plugin schema.
pub fn schema() -> PluginSchema {
    let mut schema = PluginSchema::new("request-termination", 2).config(vec![
        Field::new("status_code", Kind::Integer)
            .required()
            .default(|_| json!(503))
            .check(|value| checks::between(value, 100, 599)),
        Field::new("message", Kind::String),
        Field::new("content_type", Kind::String),
        Field::new("body", Kind::String),
        Field::new("echo", Kind::Boolean)
            .required()
            .default(default_false),
        Field::new("trigger", Kind::String)
            .check(|value| catalog::header_name(value.as_str()?).map(Value::String)),
    ]);
    schema.config_check = Some(message_or_body);
    schema
}

/// `message` excludes `content_type` and `body`; `content_type` needs a `body`; `echo`
/// excludes both.
fn message_or_body(config: &Map<String, Value>) -> Option<String> {
    let present = |field: &str| {
        config
            .get(field)
            .and_then(Value::as_str)
            .is_some_and(|text| !text.is_empty())
    };
    if present("message") && (present("content_type") || present("body")) {
        return Some("message cannot be used with content_type or body".to_owned());
    }
    if present("content_type") && !present("body") {
        return Some("content_type requires a body".to_owned());
    }
    let echo = config.get("echo") == Some(&Value::Bool(true));
    (echo && (present("content_type") || present("body")))
        .then(|| "echo cannot be used with content_type and body".to_owned())
}
