//! The oauth2 plugin: bearer access tokens issued by the plugin's `/oauth2/token`
//! endpoint to the consumers' oauth2 credentials.

use serde_json::{Map, Value, json};

use super::super::checks;
use super::catalog::PluginSchema;
use crate::kong::entities::credentials::random_string;
use crate::kong::entities::default_false;
use crate::kong::schema::{Element, Field, Kind};

/// The grant flows, one of which must be enabled.
const FLOWS: [&str; 4] = [
    "enable_authorization_code",
    "enable_implicit_grant",
    "enable_client_credentials",
    "enable_password_grant",
];

/// The oauth2 plugin schema (no consumer scope; `kong/plugins/oauth2/schema.lua`).
pub fn schema() -> PluginSchema {
    let flag = |name: &'static str| {
        Field::new(name, Kind::Boolean)
            .required()
            .default(default_false)
    };
    let mut schema = PluginSchema::new("oauth2", 1400).no_consumer().config(vec![
        Field::new("scopes", Kind::Array(Element::String)),
        flag("mandatory_scope"),
        Field::new("provision_key", Kind::String)
            .required()
            .default(random_string),
        Field::new("token_expiration", Kind::Number)
            .required()
            .default(|_| json!(7200)),
        flag("enable_authorization_code"),
        flag("enable_implicit_grant"),
        flag("enable_client_credentials"),
        flag("enable_password_grant"),
        flag("hide_credentials"),
        flag("accept_http_if_already_terminated"),
        Field::new("anonymous", Kind::String),
        flag("global_credentials"),
        Field::new("auth_header_name", Kind::String).default(|_| json!("authorization")),
        Field::new("refresh_token_ttl", Kind::Number)
            .required()
            .default(|_| json!(1_209_600))
            .check(|value| checks::between(value, 0, 100_000_000)),
        flag("reuse_refresh_token"),
        Field::new("pkce", Kind::String)
            .default(|_| json!("lax"))
            .check(|value| {
                checks::one_of(value.as_str()?, &["none", "lax", "strict"]).map(Value::String)
            }),
        Field::new("realm", Kind::String),
    ]);
    schema.config_check = Some(one_flow);
    schema
}

/// At least one grant flow must be enabled; `mandatory_scope` needs `scopes`.
fn one_flow(config: &Map<String, Value>) -> Option<String> {
    let mandatory = config.get("mandatory_scope") == Some(&Value::Bool(true));
    if mandatory && config.get("scopes").is_none_or(Value::is_null) {
        return Some("mandatory_scope requires scopes".to_owned());
    }
    let enabled = FLOWS
        .iter()
        .any(|flow| config.get(*flow) == Some(&Value::Bool(true)));
    (!enabled).then(|| {
        format!(
            "at least one of these fields must be true: {}",
            FLOWS.join(", ")
        )
    })
}
