//! Entity checksums: SHA-1 of canonical JSON, equal for identical configuration.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Fields left out of a checksum: identifiers the gateway assigns, and the checksum itself.
const NOT_CHECKSUMMED: [&str; 3] = ["goid", "checksum", "__typename"];

/// The entity's checksum: SHA-1 (hex) of its canonical JSON without `goid`, `checksum` and
/// `__typename`; the same for identical configuration, different after any edit.
pub fn checksum(entity: &Value) -> String {
    let mut canonical = String::new();
    match entity {
        Value::Object(object) => {
            let kept: Map<String, Value> = object
                .iter()
                .filter(|(key, _)| !NOT_CHECKSUMMED.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            write_canonical(&Value::Object(kept), &mut canonical);
        }
        other => write_canonical(other, &mut canonical),
    }
    sha1_smol::Sha1::from(canonical.as_bytes())
        .digest()
        .to_string()
}

/// `value` as canonical JSON: object keys sorted, no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Appends `value`'s canonical JSON to `out`.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<(&String, &Value)> = object.iter().collect();
            entries.sort_by_key(|(key, _)| *key);
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn checksum_is_stable_ignores_identifiers_and_changes_on_edit() {
        let one =
            json!({"goid": "aa", "name": "p", "value": "1", "nested": {"b": 1, "a": [true, null]}});
        let same = json!({"nested": {"a": [true, null], "b": 1}, "value": "1", "name": "p",
                          "goid": "bb", "checksum": "old"});
        let edited =
            json!({"goid": "aa", "name": "p", "value": "2", "nested": {"b": 1, "a": [true, null]}});
        assert_eq!(checksum(&one), checksum(&same));
        assert_ne!(checksum(&one), checksum(&edited));
        assert_eq!(checksum(&one).len(), 40);
        assert!(checksum(&one).chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            canonical_json(&json!({"b": "x\"y", "a": 1.5})),
            r#"{"a":1.5,"b":"x\"y"}"#
        );
    }
}
