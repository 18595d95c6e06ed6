//! How `kong.entity` compares the fields a step gives with the entity Kong stores.
//!
//! Only the fields given are compared; an object (a plugin's `config`, an upstream's
//! `healthchecks`) is compared key by key for the keys given, so `config: {minute: 10}`
//! leaves the other config fields alone. Lists are compared as sets (Kong de-duplicates
//! sets and sorts some lists, such as a certificate's `snis`), numbers by value.

use serde_json::{Map, Value};

/// Whether `stored` already holds `wanted` (for objects: the keys `wanted` gives).
pub(super) fn holds(stored: Option<&Value>, wanted: &Value) -> bool {
    match (stored, wanted) {
        (Some(Value::Object(stored)), Value::Object(wanted)) => wanted
            .iter()
            .all(|(key, value)| holds(stored.get(key), value)),
        (stored, wanted) => {
            canonical(stored.unwrap_or(&Value::Null), false) == canonical(wanted, false)
        }
    }
}

/// The fields of `wanted` that `stored` does not hold, in the order given.
pub(super) fn differing(stored: &Value, wanted: &Map<String, Value>) -> Vec<String> {
    wanted
        .iter()
        .filter(|(field, value)| !holds(stored.get(field.as_str()), value))
        .map(|(field, _)| field.clone())
        .collect()
}

/// `wanted` over `stored`: objects merged key by key (recursively), anything else replaced.
///
/// A PATCH carries the merged object, so the result is the same whether Kong merges the
/// field (a record such as `config`) or replaces it (a map such as a route's `headers`).
pub(super) fn merged(stored: Option<&Value>, wanted: &Value) -> Value {
    match (stored, wanted) {
        (Some(Value::Object(stored)), Value::Object(wanted)) => {
            let mut result = stored.clone();
            for (key, value) in wanted {
                let merged = merged(stored.get(key), value);
                result.insert(key.clone(), merged);
            }
            Value::Object(result)
        }
        _ => wanted.clone(),
    }
}

/// `stored` cut to the shape of `wanted`: for objects, only the keys `wanted` gives.
pub(super) fn projected(stored: Option<&Value>, wanted: &Value) -> Value {
    match (stored, wanted) {
        (Some(Value::Object(stored)), Value::Object(wanted)) => Value::Object(
            wanted
                .iter()
                .map(|(key, value)| (key.clone(), projected(stored.get(key), value)))
                .collect(),
        ),
        (stored, _) => stored.cloned().unwrap_or(Value::Null),
    }
}

/// The form two values are compared and shown in: keys sorted, lists de-duplicated and
/// sorted, integral numbers as integers; objects inside lists lose their null fields.
pub(super) fn canonical(value: &Value, in_list: bool) -> Value {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object
                .iter()
                .filter(|(_, value)| !(in_list && value.is_null()))
                .map(|(key, _)| key)
                .collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|key| (key.clone(), canonical(&object[key.as_str()], in_list)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(|item| canonical(item, true)).collect();
            items.sort_by_cached_key(Value::to_string);
            items.dedup();
            Value::Array(items)
        }
        Value::Number(number) => match number.as_f64() {
            Some(float)
                if number.is_f64()
                    && float.fract() == 0.0
                    && float.abs() < 9_007_199_254_740_992.0 =>
            {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "an integral float below 2^53 converts exactly"
                )]
                let integer = float as i64;
                Value::from(integer)
            }
            _ => value.clone(),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_compare_only_the_keys_given() {
        let stored = json!({"config": {"minute": 5, "hour": 100, "policy": "local"}});
        assert!(holds(Some(&stored["config"]), &json!({"minute": 5})));
        assert!(!holds(Some(&stored["config"]), &json!({"minute": 10})));
        assert_eq!(
            merged(Some(&stored["config"]), &json!({"minute": 10})),
            json!({"minute": 10, "hour": 100, "policy": "local"})
        );
        assert_eq!(
            projected(Some(&stored["config"]), &json!({"minute": 10})),
            json!({"minute": 5})
        );
    }

    #[test]
    fn lists_compare_as_sets_and_numbers_by_value() {
        assert!(holds(
            Some(&json!(["https", "http"])),
            &json!(["http", "https", "http"])
        ));
        assert!(!holds(Some(&json!(["http"])), &json!(["http", "https"])));
        assert!(holds(Some(&json!(60000.0)), &json!(60000)));
        assert!(!holds(Some(&json!(1)), &json!("1")));
        assert!(holds(None, &Value::Null));
        assert!(holds(
            Some(&json!([{"ip": "10.0.0.1", "port": null}])),
            &json!([{"ip": "10.0.0.1"}])
        ));
    }

    #[test]
    fn differing_keeps_the_order_given() {
        let stored = json!({"retries": 5, "read_timeout": 60000, "host": "a"});
        let wanted = json!({"read_timeout": 1000, "host": "a", "retries": 3})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(differing(&stored, &wanted), ["read_timeout", "retries"]);
    }
}
