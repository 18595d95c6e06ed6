//! The text forms `kong.entity` shows in a plan: a stable YAML text of some fields
//! (keys sorted, lists sorted), in which a secret field shows a note instead of its value.

use serde_json::{Map, Value};

use super::compare::canonical;

/// The note shown for a secret field whose value is not compared (created, deleted).
pub(super) const SECRET: &str = "(secret)";
/// The note shown on both sides for a secret field that keeps its value.
pub(super) const SECRET_UNCHANGED: &str = "(secret, unchanged)";
/// The note shown after a change for a secret field that gets a new value.
pub(super) const SECRET_CHANGED: &str = "(secret, changed)";

/// `fields` as YAML, keys sorted; `note(field)` replaces a top-level field's value.
pub(super) fn text(
    fields: &Map<String, Value>,
    note: impl Fn(&str) -> Option<&'static str>,
) -> String {
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort();
    let mut out = String::new();
    for key in keys {
        match note(key) {
            Some(note) if !fields[key.as_str()].is_null() => {
                out.push_str(&format!("{key}: {note}\n"));
            }
            _ => entry(&mut out, 0, key, &canonical(&fields[key.as_str()], false)),
        }
    }
    out
}

/// One `key: value` entry at `indent`, nested values on the lines below.
fn entry(out: &mut String, indent: usize, key: &str, value: &Value) {
    let pad = " ".repeat(indent);
    let key = scalar_text(&Value::String(key.to_owned()));
    match value {
        Value::Object(object) if !object.is_empty() => {
            out.push_str(&format!("{pad}{key}:\n"));
            for (inner, value) in object {
                entry(out, indent + 2, inner, value);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str(&format!("{pad}{key}:\n"));
            for item in items {
                out.push_str(&format!("{pad}- {}\n", inline(item)));
            }
        }
        Value::String(text) if text.contains('\n') => {
            let chomp = if text.ends_with('\n') { "" } else { "-" };
            out.push_str(&format!("{pad}{key}: |{chomp}\n"));
            for line in text.trim_end_matches('\n').lines() {
                out.push_str(&format!("{pad}  {line}\n"));
            }
        }
        other => out.push_str(&format!("{pad}{key}: {}\n", inline(other))),
    }
}

/// A value on one line: scalars plain or quoted, objects and lists as JSON flow.
fn inline(value: &Value) -> String {
    match value {
        Value::Object(object) if object.is_empty() => "{}".to_owned(),
        Value::Array(items) if items.is_empty() => "[]".to_owned(),
        Value::Object(_) | Value::Array(_) => value.to_string(),
        scalar => scalar_text(scalar),
    }
}

/// A scalar: plain when YAML would read it back as the same string, else JSON-quoted.
fn scalar_text(value: &Value) -> String {
    let Value::String(text) = value else {
        return value.to_string();
    };
    let plain_chars = text
        .chars()
        .all(|c| c.is_alphanumeric() || "-_./@~+".contains(c) || c == ':');
    let first_ok = text
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '/' || c == '_');
    let reads_as_other = matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
    ) || text.parse::<f64>().is_ok()
        || text.ends_with(':')
        || text.contains(": ");
    if plain_chars && first_ok && !reads_as_other {
        text.clone()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn renders_sorted_yaml_with_nested_records_and_lists() {
        let shown = text(
            &fields(json!({
                "retries": 5, "name": "orders", "protocols": ["https", "http"],
                "config": {"minute": 10, "hour": null}, "tags": [], "port": "80",
                "service": {"id": "5f1d"}
            })),
            |_| None,
        );
        assert_eq!(
            shown,
            "config:\n  hour: null\n  minute: 10\nname: orders\nport: \"80\"\nprotocols:\n- http\n- https\nretries: 5\nservice:\n  id: 5f1d\ntags: []\n"
        );
    }

    #[test]
    fn secret_fields_show_their_note_and_pem_is_a_block() {
        let shown = text(
            &fields(json!({"key": "k-123", "cert": "-----BEGIN-----\nAAA\n-----END-----\n"})),
            |field| (field == "key").then_some(SECRET_CHANGED),
        );
        assert_eq!(
            shown,
            "cert: |\n  -----BEGIN-----\n  AAA\n  -----END-----\nkey: (secret, changed)\n"
        );
        assert!(!shown.contains("k-123"));
    }
}
