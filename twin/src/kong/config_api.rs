//! `/config` (reference §11.1) and the DB-less profile's refusal of entity writes (§11.2).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::admin::{AdminState, empty, json_response, message};
use super::declarative::{self, DeclarativeError};

/// `configuration_hash` before any configuration is loaded.
pub const EMPTY_HASH: &str = "00000000000000000000000000000000";

/// The 32-hex-digit hash of a configuration, as `/status` reports it.
pub fn hash(config: &Value) -> String {
    let digest = Sha256::digest(config.to_string().as_bytes());
    digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Serves `GET /config` and `POST /config`.
pub fn serve(
    state: &AdminState,
    method: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if !state.config().db_less {
        return message(
            StatusCode::BAD_REQUEST,
            "this endpoint is only available when Kong is configured to not use a database",
        );
    }
    if method == "GET" {
        let text = declarative::export(&state.store()).to_string();
        return json_response(StatusCode::OK, &json!({"config": text}));
    }
    let config = match read_body(headers, body) {
        Ok(config) => config,
        Err(error) => return json_response(StatusCode::BAD_REQUEST, &error.body()),
    };
    let check_hash = flag(query, "check_hash");
    let new_hash = hash(&config);
    if check_hash && *state.config_hash() == new_hash {
        return empty(StatusCode::NOT_MODIFIED);
    }
    match state.load(&config) {
        Ok(entities) => json_response(StatusCode::CREATED, &Value::Object(entities)),
        Err(error) => {
            let mut body = error.body();
            if flag(query, "flatten_errors")
                && let DeclarativeError::Invalid { fields } = &error
            {
                body["flattened_errors"] = flattened(fields);
            }
            json_response(StatusCode::BAD_REQUEST, &body)
        }
    }
}

/// Whether query flag `name` is on (`1`, `true`, `on`, `yes`).
fn flag(query: &[(String, String)], name: &str) -> bool {
    query.iter().any(|(key, value)| {
        key == name
            && matches!(
                value.to_ascii_lowercase().as_str(),
                "1" | "true" | "on" | "yes"
            )
    })
}

/// The configuration in a request body: the document itself, `{"config": "<text>"}`, or YAML.
fn read_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, DeclarativeError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(body);
    let value = match media_type.as_str() {
        "application/x-www-form-urlencoded" => {
            let config = text
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == "config")
                .map(|(_, value)| super::admin::percent_decode(&value.replace('+', " ")));
            return declarative::parse(config.as_deref().unwrap_or_default());
        }
        _ => declarative::parse(&text)?,
    };
    match value {
        Value::Object(mut map) if !map.contains_key("_format_version") => {
            match map.remove("config") {
                Some(Value::String(text)) => declarative::parse(&text),
                Some(Value::Object(document)) => Ok(Value::Object(document)),
                _ => Ok(Value::Object(map)),
            }
        }
        other => Ok(other),
    }
}

/// `flattened_errors`: one item per entity that has errors.
fn flattened(fields: &serde_json::Map<String, Value>) -> Value {
    let mut items = Vec::new();
    for (table, value) in fields {
        let Value::Array(entries) = value else {
            items.push(
                json!({"entity_type": table, "errors": [{"message": value, "type": "entity"}]}),
            );
            continue;
        };
        for entry in entries.iter().filter(|entry| !entry.is_null()) {
            let errors: Vec<Value> = match entry {
                Value::Object(errors) => errors
                    .iter()
                    .map(|(field, message)| json!({"field": field, "message": message, "type": "field"}))
                    .collect(),
                other => vec![json!({"message": other, "type": "entity"})],
            };
            items.push(json!({"entity_type": table, "errors": errors}));
        }
    }
    Value::Array(items)
}

/// The code-12 refusal of a write on an entity endpoint of a DB-less node, or `None`.
pub fn refuse_write(
    method: &str,
    collection: &str,
    endpoint_key: Option<&str>,
) -> Option<Response> {
    let verb = match method {
        "POST" => "create",
        "PUT" => "create or update",
        "PATCH" => "update",
        "DELETE" => "remove",
        _ => return None,
    };
    let by = endpoint_key.map_or_else(String::new, |key| format!(" by '{key}'"));
    let text = format!("cannot {verb} '{collection}' entities{by} when not using a database");
    Some(json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"code": 12, "name": "operation unsupported", "message": text}),
    ))
}
