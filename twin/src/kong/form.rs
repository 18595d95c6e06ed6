//! `application/x-www-form-urlencoded` bodies: nested keys and schema-driven type inference.

use serde_json::{Map, Value};

use super::schema::{Element, Kind, Schema};

/// The most dot-separated parts a form key may have (entity fields nest a few levels).
pub const MAX_KEY_DEPTH: usize = 16;

/// Decodes a form body into a JSON object, typed by `schema` where it names the field;
/// `None` when a key nests deeper than [`MAX_KEY_DEPTH`].
///
/// Keys nest with dots (`service.id=...`); arrays come from repeated keys, `a[]=` or `a[1]=`.
pub fn parse(schema: Option<&Schema>, pairs: Vec<(String, String)>) -> Option<Map<String, Value>> {
    let mut body = Map::new();
    for (key, value) in pairs {
        let (path, indexed) = match key.find('[') {
            Some(open) => (&key[..open], true),
            None => (key.as_str(), false),
        };
        if path.split('.').count() > MAX_KEY_DEPTH {
            return None;
        }
        insert(&mut body, path, Value::String(value), indexed);
    }
    if let Some(schema) = schema {
        for field in &schema.fields {
            if let Some(value) = body.get_mut(field.name) {
                infer(field.kind, value);
            }
        }
    }
    Some(body)
}

/// Inserts `value` at the dotted `path`; repeated or indexed keys build arrays.
fn insert(object: &mut Map<String, Value>, path: &str, value: Value, indexed: bool) {
    match path.split_once('.') {
        Some((head, rest)) => {
            let entry = object
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = entry {
                insert(inner, rest, value, indexed);
            }
        }
        None => match object.get_mut(path) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                let value = if indexed {
                    Value::Array(vec![value])
                } else {
                    value
                };
                object.insert(path.to_owned(), value);
            }
        },
    }
}

/// Converts form strings to the field's type when they parse; leaves them for validation otherwise.
fn infer(kind: Kind, value: &mut Value) {
    match kind {
        Kind::Integer | Kind::Timestamp => {
            infer_scalar(value, |text| text.parse::<i64>().ok().map(Value::from))
        }
        Kind::Number => infer_scalar(value, |text| text.parse::<f64>().ok().map(Value::from)),
        Kind::Boolean => infer_scalar(value, |text| match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        }),
        Kind::Set(element) | Kind::Array(element) => {
            if value.is_string() {
                *value = Value::Array(vec![value.take()]);
            }
            if element == Element::Integer
                && let Value::Array(items) = value
            {
                for item in items {
                    infer_scalar(item, |text| text.parse::<i64>().ok().map(Value::from));
                }
            }
        }
        _ => {}
    }
}

/// Replaces a string with `convert`'s result when it has one.
fn infer_scalar(value: &mut Value, convert: impl Fn(&str) -> Option<Value>) {
    if let Some(converted) = value.as_str().and_then(convert) {
        *value = converted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kong::entities;
    use serde_json::json;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn form_fields_nest_repeat_and_take_the_schema_types() {
        let registry = entities::registry();
        let routes = registry.get("routes");
        let body = parse(
            routes,
            pairs(&[
                ("paths[]", "/a"),
                ("paths[]", "/b"),
                ("hosts", "x.example"),
                ("strip_path", "false"),
                ("service.name", "billing"),
                ("regex_priority", "7"),
            ]),
        )
        .unwrap_or_default();
        assert_eq!(
            Value::Object(body),
            json!({"paths": ["/a", "/b"], "hosts": ["x.example"], "strip_path": false, "service": {"name": "billing"}, "regex_priority": 7})
        );
    }

    #[test]
    fn keys_nested_too_deep_are_refused() {
        let deep = format!("a{}", ".a".repeat(MAX_KEY_DEPTH));
        assert_eq!(parse(None, pairs(&[(deep.as_str(), "1")])), None);
        let fine = format!("a{}", ".a".repeat(MAX_KEY_DEPTH - 1));
        assert!(parse(None, pairs(&[(fine.as_str(), "1")])).is_some());
    }
}
