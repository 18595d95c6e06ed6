//! The rate-limiting plugin: request counts per period, with local, cluster or redis
//! counters.

use serde_json::{Map, Value, json};

use super::super::checks;
use super::catalog::{self, PluginCheck, PluginSchema};
use crate::kong::entities::{default_false, default_true};
use crate::kong::schema::{Field, Kind};

/// Limit periods, shortest first.
const PERIODS: [&str; 6] = ["second", "minute", "hour", "day", "month", "year"];

/// The rate-limiting plugin schema (Kong 3.9: redis settings in a `redis` record; the
/// 3.x `redis_*` fields are accepted and moved there).
pub fn schema() -> PluginSchema {
    let mut config: Vec<Field> = PERIODS
        .iter()
        .map(|period| Field::new(period, Kind::Number).check(catalog::positive))
        .collect();
    config.extend([
        Field::new("limit_by", Kind::String)
            .default(|_| json!("consumer"))
            .check(|value| {
                let allowed = ["consumer", "credential", "ip", "service", "header", "path"];
                checks::one_of(value.as_str()?, &allowed).map(Value::String)
            }),
        Field::new("header_name", Kind::String)
            .check(|value| catalog::header_name(value.as_str()?).map(Value::String)),
        Field::new("path", Kind::String).check(checks::service_path),
        Field::new("policy", Kind::String)
            .default(|_| json!("local"))
            .check(|value| {
                checks::one_of(value.as_str()?, &["local", "cluster", "redis"]).map(Value::String)
            }),
        Field::new("fault_tolerant", Kind::Boolean)
            .required()
            .default(default_true),
        Field::new("redis", Kind::Record),
        Field::new("hide_client_headers", Kind::Boolean)
            .required()
            .default(default_false),
        Field::new("error_code", Kind::Number)
            .default(|_| json!(429))
            .check(catalog::positive),
        Field::new("error_message", Kind::String).default(|_| json!("API rate limit exceeded")),
        Field::new("sync_rate", Kind::Number)
            .required()
            .default(|_| json!(-1)),
    ]);
    let mut schema = PluginSchema::new("rate-limiting", 910)
        .config(config)
        .check(PluginCheck::AtLeastOneOf(&PERIODS));
    for then in [
        &["redis", "host"],
        &["redis", "port"],
        &["redis", "timeout"],
    ] {
        schema = schema.check(PluginCheck::RequiredWhen {
            field: "policy",
            value: "redis",
            then,
        });
    }
    schema = schema
        .check(PluginCheck::RequiredWhen {
            field: "limit_by",
            value: "header",
            then: &["header_name"],
        })
        .check(PluginCheck::RequiredWhen {
            field: "limit_by",
            value: "path",
            then: &["path"],
        });
    schema.records = vec![("redis", redis_fields())];
    schema.moved = &[
        ("redis_host", "redis", "host"),
        ("redis_port", "redis", "port"),
        ("redis_password", "redis", "password"),
        ("redis_username", "redis", "username"),
        ("redis_ssl", "redis", "ssl"),
        ("redis_ssl_verify", "redis", "ssl_verify"),
        ("redis_server_name", "redis", "server_name"),
        ("redis_timeout", "redis", "timeout"),
        ("redis_database", "redis", "database"),
    ];
    schema.config_check = Some(periods_in_order);
    schema
}

/// The `redis` record (Kong's shared redis config schema).
fn redis_fields() -> Vec<Field> {
    vec![
        Field::new("host", Kind::String),
        Field::new("port", Kind::Integer)
            .default(|_| json!(6379))
            .check(|value| checks::between(value, 0, 65535)),
        Field::new("timeout", Kind::Integer)
            .default(|_| json!(2000))
            .check(|value| checks::between(value, 0, 2_147_483_646)),
        Field::new("username", Kind::String),
        Field::new("password", Kind::String),
        Field::new("database", Kind::Integer).default(|_| json!(0)),
        Field::new("ssl", Kind::Boolean).default(default_false),
        Field::new("ssl_verify", Kind::Boolean).default(default_false),
        Field::new("server_name", Kind::String),
    ]
}

/// A longer period cannot have a lower limit; `sync_rate` only with redis.
fn periods_in_order(config: &Map<String, Value>) -> Option<String> {
    let limit = |period: &str| config.get(period).and_then(Value::as_f64);
    for (index, lower) in PERIODS.iter().enumerate() {
        let Some(lower_limit) = limit(lower) else {
            continue;
        };
        for upper in &PERIODS[index + 1..] {
            if let Some(upper_limit) = limit(upper).filter(|value| *value < lower_limit) {
                return Some(format!(
                    "The limit for {upper}({upper_limit:.1}) cannot be lower than the limit for {lower}({lower_limit:.1})"
                ));
            }
        }
    }
    let redis = config.get("policy").and_then(Value::as_str) == Some("redis");
    let sync_rate = config
        .get("sync_rate")
        .and_then(Value::as_f64)
        .unwrap_or(-1.0);
    if !redis && sync_rate != -1.0 {
        return Some("sync_rate can only be used with the redis policy".to_owned());
    }
    (redis && sync_rate != -1.0 && sync_rate < 0.02)
        .then(|| "sync_rate must be greater than 0.02, or -1 to disable".to_owned())
}
