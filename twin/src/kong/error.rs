//! Kong's error bodies: DAO errors with `code`/`name`/`message`/`fields` and plain messages.

use serde_json::{Map, Value, json};

/// A DAO error as Kong renders it (reference §6), with its HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DaoError {
    /// Code 2: field and entity-level validation failures.
    #[error("schema violation")]
    SchemaViolation {
        /// Field errors mirroring the input structure.
        fields: Map<String, Value>,
        /// Entity-level errors (rendered under `@entity`).
        entity: Vec<String>,
    },
    /// Code 3: an insert with an `id` that already exists.
    #[error("primary key violation")]
    PrimaryKey {
        /// The duplicated id.
        id: String,
    },
    /// Code 4: a foreign key id that references no entity.
    #[error("foreign key violation")]
    ForeignKeyMissing {
        /// Foreign-key field name (e.g. `service`).
        field: String,
        /// Referenced collection (e.g. `services`).
        collection: String,
        /// The missing id.
        id: String,
    },
    /// Code 4: deleting an entity that a restricting child references.
    #[error("foreign key violation")]
    ReferencedBy {
        /// Referencing collection (e.g. `routes`).
        child: String,
        /// Referenced collection (e.g. `services`).
        parent: String,
    },
    /// Code 19: deleting an entity that others still list by id (a CA certificate).
    #[error("referenced by others")]
    ReferencedByOthers {
        /// The message, e.g. `ca certificate <id> is still referenced by services (id = <id>)`.
        message: String,
    },
    /// Code 5: a unique field's value is already taken.
    #[error("unique constraint violation")]
    Unique {
        /// Field name.
        field: String,
        /// The conflicting value.
        value: Value,
    },
    /// Code 5 on a composite key: every part, sorted by field name.
    #[error("unique constraint violation")]
    UniqueComposite {
        /// The key's fields and values.
        parts: Map<String, Value>,
    },
    /// Code 6: update of a missing entity, addressed by `field` = `value`.
    #[error("not found")]
    NotFound {
        /// `id` or the endpoint key name.
        field: String,
        /// The value used to address it.
        value: String,
        /// Whether `field` is the primary key.
        primary: bool,
    },
    /// Code 7: a pagination token that does not decode.
    #[error("invalid offset")]
    InvalidOffset {
        /// The token as given.
        offset: String,
        /// `bad base64 encoding` or `bad json encoding`.
        reason: &'static str,
    },
    /// Code 8: an internal failure, answered as a plain 500.
    #[error("database error: {message}")]
    Database {
        /// What went wrong (not shown to clients).
        message: String,
    },
    /// Code 9: a bad `size`.
    #[error("invalid size")]
    InvalidSize {
        /// The message.
        message: &'static str,
    },
    /// Code 11: a bad query option (`tags`).
    #[error("invalid options")]
    InvalidOptions {
        /// Option name.
        option: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Code 13: a foreign key given by endpoint key that does not resolve.
    #[error("foreign keys unresolved")]
    ForeignKeyUnresolved {
        /// Foreign-key field name.
        field: String,
        /// Endpoint key field of the parent (e.g. `name`).
        key: String,
        /// The value that did not resolve.
        value: String,
        /// Parent collection.
        collection: String,
    },
}

/// Lua-style rendering of a scalar inside `'{name="x"}'` messages.
fn lua_value(value: &Value) -> String {
    match value {
        Value::String(text) => format!("\"{text}\""),
        Value::Null => "null".to_owned(),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|key| format!("{key}={}", lua_value(&map[key.as_str()])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// Flattens `fields` into `path: message` items, entity messages first, paths sorted.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                if let Some(inner) = map.get(key) {
                    flatten(&path, inner, out);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}.{}", index + 1), item, out);
            }
        }
        Value::Null => {}
        Value::String(text) => out.push(format!("{prefix}: {text}")),
        other => out.push(format!("{prefix}: {other}")),
    }
}

/// The `message` of a schema violation: `schema violation (a)` or `N schema violations (a; b)`.
pub fn schema_violation_message(fields: &Map<String, Value>, entity: &[String]) -> String {
    let mut items: Vec<String> = entity.to_vec();
    flatten("", &Value::Object(fields.clone()), &mut items);
    if items.len() == 1 {
        format!("schema violation ({})", items.join("; "))
    } else {
        format!("{} schema violations ({})", items.len(), items.join("; "))
    }
}

impl DaoError {
    /// HTTP status Kong answers with for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unique { .. } | Self::UniqueComposite { .. } => 409,
            Self::NotFound { .. } => 404,
            Self::Database { .. } => 500,
            _ => 400,
        }
    }

    /// The JSON body Kong answers with.
    pub fn body(&self) -> Value {
        match self {
            Self::SchemaViolation { fields, entity } => {
                let mut all = fields.clone();
                if !entity.is_empty() {
                    all.insert("@entity".to_owned(), json!(entity));
                }
                let message = schema_violation_message(fields, entity);
                json!({"code": 2, "name": "schema violation", "message": message, "fields": all})
            }
            Self::PrimaryKey { id } => json!({
                "code": 3, "name": "primary key violation",
                "message": format!("primary key violation on key '{{id=\"{id}\"}}'"),
                "fields": {"id": id},
            }),
            Self::ForeignKeyMissing {
                field,
                collection,
                id,
            } => json!({
                "code": 4, "name": "foreign key violation",
                "message": format!("the foreign key '{{id=\"{id}\"}}' does not reference an existing '{collection}' entity."),
                "fields": {field.as_str(): {"id": id}},
            }),
            Self::ReferencedBy { child, parent } => json!({
                "code": 4, "name": "foreign key violation",
                "message": format!("an existing '{child}' entity references this '{parent}' entity"),
                "fields": {"@referenced_by": child},
            }),
            Self::ReferencedByOthers { message } => json!({
                "code": 19, "name": "referenced by others", "message": message,
            }),
            Self::UniqueComposite { parts } => {
                let mut keys: Vec<&String> = parts.keys().collect();
                keys.sort();
                let key = keys
                    .iter()
                    .map(|key| format!("{key}={}", lua_value(&parts[key.as_str()])))
                    .collect::<Vec<_>>()
                    .join(",");
                json!({
                    "code": 5, "name": "unique constraint violation",
                    "message": format!("UNIQUE violation detected on '{{{key}}}'"),
                    "fields": parts,
                })
            }
            Self::Unique { field, value } => json!({
                "code": 5, "name": "unique constraint violation",
                "message": format!("UNIQUE violation detected on '{{{field}={}}}'", lua_value(value)),
                "fields": {field.as_str(): value},
            }),
            Self::NotFound {
                field,
                value,
                primary,
            } => {
                let message = if *primary {
                    format!("could not find the entity with primary key '{{{field}=\"{value}\"}}'")
                } else {
                    format!("could not find the entity with '{{{field}=\"{value}\"}}'")
                };
                json!({"code": 6, "name": "not found", "message": message, "fields": {field.as_str(): value}})
            }
            Self::InvalidOffset { offset, reason } => json!({
                "code": 7, "name": "invalid offset",
                "message": format!("'{offset}' is not a valid offset: {reason}"),
            }),
            Self::Database { .. } => json!({"message": "An unexpected error occurred"}),
            Self::InvalidSize { message } => {
                json!({"code": 9, "name": "invalid size", "message": message})
            }
            Self::InvalidOptions { option, message } => json!({
                "code": 11, "name": "invalid options",
                "message": format!("invalid option ({option}: {message})"),
                "options": {*option: message},
            }),
            Self::ForeignKeyUnresolved {
                field,
                key,
                value,
                collection,
            } => {
                let detail = format!(
                    "the foreign key cannot be resolved with '{{{key}=\"{value}\"}}' for an existing '{collection}' entity"
                );
                json!({
                    "code": 13, "name": "foreign keys unresolved",
                    "message": format!("foreign key unresolved ({field}.{key}: {detail})"),
                    "fields": {field.as_str(): {key.as_str(): detail}},
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_violations_list_entity_first_then_sorted_paths() {
        let mut fields = Map::new();
        fields.insert("port".into(), json!("value should be between 0 and 65535"));
        fields.insert("host".into(), json!("required field missing"));
        fields.insert("protocols".into(), json!([null, "expected one of: http"]));
        let message = schema_violation_message(&fields, &["bad".to_owned()]);
        assert_eq!(
            message,
            "4 schema violations (bad; host: required field missing; port: value should be between 0 and 65535; protocols.2: expected one of: http)"
        );
    }
}
