//! Plugin schemas as data (Kong's `kong/plugins/<name>/schema.lua`): the protocols a
//! plugin runs on, whether it may be scoped to a consumer, its `config` fields (the same
//! [`Field`]s as entities), nested config records, and its declarative entity checks.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::super::checks;
use crate::kong::schema::{self, Field, Schema, Violations, element_errors};

/// Protocols of Kong's HTTP subsystem, sorted (`typedefs.protocols_http`).
pub const HTTP_PROTOCOLS: &[&str] = &["grpc", "grpcs", "http", "https"];

/// A check of a whole config record (Kong's record `custom_validator`): the error message.
pub type ConfigCheck = fn(&Map<String, Value>) -> Option<String>;

/// A plugin-level check over `config` fields (Kong's declarative `entity_checks`).
#[derive(Debug, Clone, Copy)]
pub enum PluginCheck {
    /// At least one of these config fields is non-empty.
    AtLeastOneOf(&'static [&'static str]),
    /// Not more than one of these config fields is non-empty.
    OnlyOneOf(&'static [&'static str]),
    /// When config field `field` equals `value`, the config path `then` is required.
    RequiredWhen {
        /// The config field tested, e.g. `policy`.
        field: &'static str,
        /// The value that triggers the requirement, e.g. `redis`.
        value: &'static str,
        /// The required config path, e.g. `["redis", "host"]`.
        then: &'static [&'static str],
    },
    /// When number field `field` is above zero, set `then` must contain `element`.
    ContainsWhenPositive {
        /// The config field tested, e.g. `maximum_expiration`.
        field: &'static str,
        /// The set that must contain `element`, e.g. `claims_to_verify`.
        then: &'static str,
        /// The element required, e.g. `exp`.
        element: &'static str,
    },
}

/// One plugin's schema.
#[derive(Debug, Clone)]
pub struct PluginSchema {
    /// The plugin's name, e.g. `key-auth`.
    pub name: &'static str,
    /// Execution priority (higher runs first), from the plugin's handler.
    pub priority: i64,
    /// Protocols the plugin accepts in `protocols`.
    pub protocols: &'static [&'static str],
    /// The plugin's own `protocols` default, when it differs from the entity's.
    pub default_protocols: Option<&'static [&'static str]>,
    /// Whether `consumer` must be null (authentication plugins, cors, acl).
    pub no_consumer: bool,
    /// Whether `config` is accepted as any record (bundled plugins without a curated schema).
    pub opaque: bool,
    /// The `config` record's fields, in Kong's order.
    pub config: Vec<Field>,
    /// Fields of nested config records, by the record field's name (rate-limiting `redis`).
    pub records: Vec<(&'static str, Vec<Field>)>,
    /// Deprecated config fields moved into a nested record: (old, record, new).
    pub moved: &'static [(&'static str, &'static str, &'static str)],
    /// A check of the whole config record; its message is `config`'s error.
    pub config_check: Option<ConfigCheck>,
    /// Plugin-level checks (messages under `@entity`).
    pub checks: Vec<PluginCheck>,
}

impl PluginSchema {
    /// An HTTP plugin with no config fields yet.
    pub fn new(name: &'static str, priority: i64) -> Self {
        Self {
            name,
            priority,
            protocols: HTTP_PROTOCOLS,
            default_protocols: None,
            no_consumer: false,
            opaque: false,
            config: Vec::new(),
            records: Vec::new(),
            moved: &[],
            config_check: None,
            checks: Vec::new(),
        }
    }

    /// A bundled plugin whose config the twin does not validate.
    fn opaque(name: &'static str, priority: i64) -> Self {
        Self {
            opaque: true,
            protocols: &checks::PROTOCOLS,
            ..Self::new(name, priority)
        }
    }

    /// Refuses a consumer scope.
    pub fn no_consumer(mut self) -> Self {
        self.no_consumer = true;
        self
    }

    /// Sets the config fields.
    pub fn config(mut self, fields: Vec<Field>) -> Self {
        self.config = fields;
        self
    }

    /// Adds a plugin-level check.
    pub fn check(mut self, check: PluginCheck) -> Self {
        self.checks.push(check);
        self
    }

    /// The config record as a schema, for the generic validation.
    fn config_schema(&self, fields: &[Field]) -> Schema {
        super::super::schema(self.name, None, fields.to_vec())
    }
}

/// Bundled plugins whose config the twin accepts without validation, with priorities.
const OPAQUE: &[(&str, i64)] = &[
    ("acme", 1705),
    ("ai-prompt-decorator", 772),
    ("ai-prompt-guard", 771),
    ("ai-prompt-template", 773),
    ("ai-proxy", 770),
    ("ai-request-transformer", 777),
    ("ai-response-transformer", 768),
    ("aws-lambda", 750),
    ("azure-functions", 749),
    ("bot-detection", 2500),
    ("correlation-id", 100_001),
    ("datadog", 10),
    ("file-log", 9),
    ("grpc-gateway", 998),
    ("grpc-web", 3),
    ("http-log", 12),
    ("ldap-auth", 1200),
    ("loggly", 6),
    ("opentelemetry", 14),
    ("post-function", -1000),
    ("pre-function", 1_000_000),
    ("prometheus", 13),
    ("proxy-cache", 100),
    ("redirect", 779),
    ("request-size-limiting", 951),
    ("request-transformer", 801),
    ("response-ratelimiting", 900),
    ("response-transformer", 800),
    ("session", 1900),
    ("standard-webhooks", 760),
    ("statsd", 11),
    ("syslog", 4),
    ("tcp-log", 7),
    ("udp-log", 8),
    ("zipkin", 100_000),
];

/// Every enabled plugin: the curated schemas, then the opaque bundled ones.
pub fn all() -> &'static [PluginSchema] {
    static CATALOG: OnceLock<Vec<PluginSchema>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut plugins = vec![
            super::acl::schema(),
            super::basic_auth::schema(),
            super::cors::schema(),
            super::hmac_auth::schema(),
            super::ip_restriction::schema(),
            super::jwt::schema(),
            super::key_auth::schema(),
            super::oauth2::schema(),
            super::rate_limiting::schema(),
            super::request_termination::schema(),
        ];
        plugins.extend(
            OPAQUE
                .iter()
                .map(|(name, priority)| PluginSchema::opaque(name, *priority)),
        );
        plugins.sort_by_key(|plugin| plugin.name);
        plugins
    })
}

/// The enabled plugin called `name`.
pub fn find(name: &str) -> Option<&'static PluginSchema> {
    all().iter().find(|plugin| plugin.name == name)
}

/// Checks the plugin-specific parts of `plugin` (consumer scope, protocols, config):
/// fills `config`'s defaults and records violations.
pub fn complete(
    schema: &PluginSchema,
    plugin: &mut Map<String, Value>,
    violations: &mut Violations,
) {
    if schema.no_consumer && plugin.get("consumer").is_some_and(|value| !value.is_null()) {
        violations.field("consumer", "value must be null");
    }
    if let Some(Value::Array(protocols)) = plugin.get("protocols") {
        let errors = protocols
            .iter()
            .map(|protocol| {
                protocol
                    .as_str()
                    .and_then(|protocol| checks::one_of(protocol, schema.protocols))
                    .map_or(Value::Null, Value::String)
            })
            .collect();
        if let Some(errors) = element_errors(errors) {
            violations.field("protocols", errors);
        }
    }
    let config = plugin
        .entry("config")
        .or_insert_with(|| Value::Object(Map::new()));
    if config.is_null() {
        *config = Value::Object(Map::new());
    }
    let Value::Object(config) = config else {
        // Not a record: the entity's own validation reports it.
        return;
    };
    if schema.opaque {
        return;
    }
    let config_violations = complete_config(schema, config);
    if !config_violations.is_empty() {
        violations.field("config", Value::Object(config_violations));
        return;
    }
    if let Some(message) = schema.config_check.and_then(|check| check(config)) {
        violations.field("config", message);
        return;
    }
    let config = config.clone();
    for check in &schema.checks {
        run_check(*check, &config, violations);
    }
}

/// Fills defaults of `config` and its nested records, validates them, and orders them
/// as the schema lists them; the field errors.
fn complete_config(schema: &PluginSchema, config: &mut Map<String, Value>) -> Map<String, Value> {
    for (old, record, new) in schema.moved {
        if let Some(value) = config.remove(*old) {
            let target = config
                .entry(*record)
                .or_insert_with(|| Value::Object(Map::new()));
            if target.is_null() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(target) = target {
                target.insert((*new).to_owned(), value);
            }
        }
    }
    let mut errors = complete_record(&schema.config_schema(&schema.config), config);
    for (name, fields) in &schema.records {
        let record = config
            .entry(*name)
            .or_insert_with(|| Value::Object(Map::new()));
        if record.is_null() {
            *record = Value::Object(Map::new());
        }
        if let Value::Object(record) = record {
            let record_errors = complete_record(&schema.config_schema(fields), record);
            if !record_errors.is_empty() {
                errors.entry(*name).or_insert(Value::Object(record_errors));
            }
        }
    }
    errors
}

/// Fills one record's defaults, validates it and puts its keys in schema order.
fn complete_record(schema: &Schema, record: &mut Map<String, Value>) -> Map<String, Value> {
    schema::fill_defaults(schema, record);
    let mut violations = Violations::default();
    schema::validate(schema, record, &mut violations);
    let unknown: Vec<(String, Value)> = record
        .iter()
        .filter(|(key, _)| schema.field(key).is_none())
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let mut ordered = schema::in_schema_order(schema, record);
    ordered.extend(unknown);
    *record = ordered;
    violations.fields
}

/// Whether a config value counts as set (Kong's `is_nonempty`).
fn non_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(map)) => !map.is_empty(),
        Some(Value::String(text)) => !text.is_empty(),
        Some(_) => true,
    }
}

/// `'config.a', 'config.b'`.
fn quoted(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|field| format!("'config.{field}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The config value at `path`.
fn at<'a>(config: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(config.get(*first)?, |value, key| value.get(*key))
}

/// Runs one plugin-level check.
fn run_check(check: PluginCheck, config: &Map<String, Value>, violations: &mut Violations) {
    match check {
        PluginCheck::AtLeastOneOf(fields) => {
            if !fields.iter().any(|field| non_empty(config.get(*field))) {
                violations.entity(format!(
                    "at least one of these fields must be non-empty: {}",
                    quoted(fields)
                ));
            }
        }
        PluginCheck::OnlyOneOf(fields) => {
            let set = fields
                .iter()
                .filter(|field| non_empty(config.get(**field)))
                .count();
            if set > 1 {
                violations.entity(format!(
                    "exactly one of these fields must be non-empty: {}",
                    quoted(fields)
                ));
            }
        }
        PluginCheck::RequiredWhen { field, value, then } => {
            let triggered = config.get(field).and_then(Value::as_str) == Some(value);
            if triggered && at(config, then).is_none_or(Value::is_null) {
                nested_error(violations, then, "required field missing");
                violations.entity(format!(
                    "failed conditional validation given value of field 'config.{field}'"
                ));
            }
        }
        PluginCheck::ContainsWhenPositive {
            field,
            then,
            element,
        } => {
            let positive = config
                .get(field)
                .and_then(Value::as_f64)
                .is_some_and(|number| number > 0.0);
            let missing = config
                .get(then)
                .and_then(Value::as_array)
                .is_some_and(|items| !items.iter().any(|item| item.as_str() == Some(element)));
            if positive && missing {
                nested_error(
                    violations,
                    &[then],
                    &format!("expected to contain: {element}"),
                );
                violations.entity(format!(
                    "failed conditional validation given value of field 'config.{field}'"
                ));
            }
        }
    }
}

/// Records `message` at `config.<path>` in the violations' field errors.
fn nested_error(violations: &mut Violations, path: &[&str], message: &str) {
    let mut slot = violations
        .fields
        .entry("config")
        .or_insert_with(|| Value::Object(Map::new()));
    for key in path {
        if !slot.is_object() {
            return;
        }
        let Some(map) = slot.as_object_mut() else {
            return;
        };
        slot = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    *slot = json!(message);
}

/// The JSON form of a plugin-level check, for `GET /schemas/plugins/{name}`.
pub fn check_json(check: PluginCheck) -> Value {
    let paths = |fields: &[&str]| -> Vec<String> {
        fields
            .iter()
            .map(|field| format!("config.{field}"))
            .collect()
    };
    match check {
        PluginCheck::AtLeastOneOf(fields) => json!({"at_least_one_of": paths(fields)}),
        PluginCheck::OnlyOneOf(fields) => json!({"only_one_of": paths(fields)}),
        PluginCheck::RequiredWhen { field, value, then } => json!({"conditional": {
            "if_field": format!("config.{field}"), "if_match": {"eq": value},
            "then_field": format!("config.{}", then.join(".")), "then_match": {"required": true},
        }}),
        PluginCheck::ContainsWhenPositive {
            field,
            then,
            element,
        } => json!({"conditional": {
            "if_field": format!("config.{field}"), "if_match": {"gt": 0},
            "then_field": format!("config.{then}"), "then_match": {"contains": element},
        }}),
    }
}

// Field checks shared by plugin schemas.

/// Applies `check` to every string element of an array; errors indexed like the input.
pub fn each(value: &Value, check: fn(&str) -> Option<String>) -> Option<Value> {
    let items = value.as_array()?;
    element_errors(
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .and_then(check)
                    .map_or(Value::Null, Value::String)
            })
            .collect(),
    )
}

/// Kong's `validate_header_name`.
pub fn header_name(name: &str) -> Option<String> {
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!valid).then(|| {
        format!("bad header name '{name}', allowed characters are A-Z, a-z, 0-9, '_', and '-'")
    })
}

/// `value must be greater than 0`.
pub fn positive(value: &Value) -> Option<Value> {
    let number = value.as_f64()?;
    (number <= 0.0).then(|| json!("value must be greater than 0"))
}

/// Kong's `ip_or_cidr`: an IPv4/IPv6 address, optionally with a prefix length.
pub fn ip_or_cidr(text: &str) -> Option<String> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let max = match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return Some(format!("invalid ip or cidr range: '{text}'")),
    };
    let prefix_ok = prefix.is_none_or(|prefix| {
        !prefix.is_empty()
            && prefix.chars().all(|c| c.is_ascii_digit())
            && prefix.parse::<u32>().is_ok_and(|length| length <= max)
    });
    (!prefix_ok).then(|| format!("invalid ip or cidr range: '{text}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_and_cidrs_follow_kong() {
        assert_eq!(ip_or_cidr("10.0.0.1"), None);
        assert_eq!(ip_or_cidr("10.0.0.0/8"), None);
        assert_eq!(ip_or_cidr("::1/128"), None);
        assert_eq!(
            ip_or_cidr("10.0.0.0/33").as_deref(),
            Some("invalid ip or cidr range: '10.0.0.0/33'")
        );
        assert_eq!(
            ip_or_cidr("example.com").as_deref(),
            Some("invalid ip or cidr range: 'example.com'")
        );
    }

    #[test]
    fn every_curated_plugin_fills_its_defaults_from_an_empty_config() {
        for plugin in all().iter().filter(|plugin| !plugin.opaque) {
            let mut config = Map::new();
            complete_config(plugin, &mut config);
            let names: Vec<&str> = plugin.config.iter().map(|field| field.name).collect();
            let keys: Vec<&str> = config.keys().map(String::as_str).collect();
            assert_eq!(keys, names, "{}", plugin.name);
        }
    }
}
