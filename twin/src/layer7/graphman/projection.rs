//! A resolver's full JSON cut down to a request's selection set: only the selected fields,
//! under their aliases, through nested objects and lists.
//!
//! A resolver answers every field it models (unset ones as `null`) and may mark an object's
//! GraphQL type with a `__typename` key: projection answers `__typename` from it, applies a
//! fragment only when its type condition matches it, and drops it unless selected. A selected
//! field the object does not carry is the error a GraphQL server gives for a field its type
//! does not have.

use serde_json::{Map, Value};

use super::document::{Field, Selection, SelectionSet};
use super::error::GraphqlError;

/// The key under which a resolver names an object's GraphQL type.
pub const TYPENAME: &str = "__typename";

/// `value` (the full result of the field at `path`) projected onto `selection`.
///
/// An empty selection keeps the value whole (scalars, and JSON-valued fields such as policy
/// code).
pub fn project(
    value: &Value,
    selection: &SelectionSet,
    path: &mut Vec<Value>,
) -> Result<Value, GraphqlError> {
    if selection.is_empty() {
        return Ok(without_typenames(value));
    }
    match value {
        Value::Null => Ok(Value::Null),
        Value::Array(items) => {
            let mut projected = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                path.push(Value::from(index));
                let result = project(item, selection, path);
                path.pop();
                projected.push(result?);
            }
            Ok(Value::Array(projected))
        }
        Value::Object(object) => {
            let mut projected = Map::new();
            project_object(object, selection, path, &mut projected)?;
            Ok(Value::Object(projected))
        }
        Value::Bool(_) | Value::Number(_) | Value::String(_) => Err(GraphqlError::new(format!(
            "Field \"{}\" is a scalar and must not have a selection of subfields.",
            last_key(path)
        ))
        .with_path(path.clone())),
    }
}

/// Adds the fields of `object` that `selection` picks to `projected`.
fn project_object(
    object: &Map<String, Value>,
    selection: &SelectionSet,
    path: &mut Vec<Value>,
    projected: &mut Map<String, Value>,
) -> Result<(), GraphqlError> {
    let typename = object.get(TYPENAME).and_then(Value::as_str);
    for item in &selection.items {
        match item {
            Selection::Field(field) => {
                let key = field.response_key().to_owned();
                path.push(Value::String(key.clone()));
                let result = project_field(object, typename, field, path);
                path.pop();
                merge(projected, key, result?);
            }
            Selection::Fragment(fragment) => {
                let applies = match (&fragment.type_condition, typename) {
                    (Some(condition), Some(actual)) => condition == actual,
                    _ => true,
                };
                if applies {
                    project_object(object, &fragment.selection, path, projected)?;
                }
            }
        }
    }
    Ok(())
}

/// The projected value of one selected field of `object`.
fn project_field(
    object: &Map<String, Value>,
    typename: Option<&str>,
    field: &Field,
    path: &mut Vec<Value>,
) -> Result<Value, GraphqlError> {
    if field.name == TYPENAME {
        return Ok(typename.map_or(Value::Null, |name| Value::String(name.to_owned())));
    }
    match object.get(&field.name) {
        Some(value) => project(value, &field.selection, path).map_err(|error| locate(error, field)),
        None => {
            let on_type = typename.map_or_else(String::new, |name| format!(" on type \"{name}\""));
            Err(
                GraphqlError::new(format!("Cannot query field \"{}\"{on_type}.", field.name))
                    .at(field.location)
                    .with_path(path.clone()),
            )
        }
    }
}

/// Gives `error` the field's location when it has none yet.
fn locate(error: GraphqlError, field: &Field) -> GraphqlError {
    if error.locations.is_empty() {
        error.at(field.location)
    } else {
        error
    }
}

/// Inserts `value` under `key`, merging objects when the key was selected twice.
fn merge(projected: &mut Map<String, Value>, key: String, value: Value) {
    match (projected.get_mut(&key), value) {
        (Some(Value::Object(existing)), Value::Object(more)) => {
            for (inner_key, inner_value) in more {
                merge(existing, inner_key, inner_value);
            }
        }
        (Some(Value::Array(existing)), Value::Array(more)) if existing.len() == more.len() => {
            for (slot, item) in existing.iter_mut().zip(more) {
                if let (Value::Object(slot), Value::Object(item)) = (slot, item) {
                    for (inner_key, inner_value) in item {
                        merge(slot, inner_key, inner_value);
                    }
                }
            }
        }
        (_, value) => {
            projected.insert(key, value);
        }
    }
}

/// `value` without the `__typename` marks a resolver added.
fn without_typenames(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(key, _)| key.as_str() != TYPENAME)
                .map(|(key, item)| (key.clone(), without_typenames(item)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_typenames).collect()),
        other => other.clone(),
    }
}

/// The last object key of `path`, for messages.
fn last_key(path: &[Value]) -> String {
    path.iter()
        .rev()
        .find_map(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::layer7::graphman::document::{Operation, parse};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// The selection of the only top-level field of `query`.
    fn selection_of(query: &str) -> Result<SelectionSet, Box<dyn std::error::Error>> {
        let Operation { mut fields, .. } = parse(query, None, &Map::new())?;
        Ok(fields.pop().ok_or("no field")?.selection)
    }

    fn service() -> Value {
        json!({
            "__typename": "L7Service",
            "goid": "aa", "name": "hello", "enabled": true, "checksum": "c1",
            "properties": [{"name": "a", "value": "1"}, {"name": "b", "value": null}],
            "policy": {"xml": "<wsp:Policy/>", "code": {"All": []}},
        })
    }

    #[test]
    fn keeps_only_selected_fields_in_request_order_under_aliases() -> TestResult {
        let selection =
            selection_of("{ services { id: goid name properties { value } policy { code } } }")?;
        let projected = project(&json!([service(), service()]), &selection, &mut Vec::new())?;
        let expected = json!({"id": "aa", "name": "hello",
            "properties": [{"value": "1"}, {"value": null}], "policy": {"code": {"All": []}}});
        assert_eq!(projected, json!([expected.clone(), expected]));
        let keys: Vec<&String> = projected[0].as_object().ok_or("object")?.keys().collect();
        assert_eq!(keys, ["id", "name", "properties", "policy"]);
        Ok(())
    }

    #[test]
    fn typename_and_fragment_conditions_follow_the_marked_type() -> TestResult {
        let selection = selection_of(
            "{ services { __typename ... on L7Service { name } ... on Key { alias } ...F } }
             fragment F on L7Service { enabled }",
        )?;
        let projected = project(&service(), &selection, &mut Vec::new())?;
        assert_eq!(
            projected,
            json!({"__typename": "L7Service", "name": "hello", "enabled": true})
        );
        Ok(())
    }

    #[test]
    fn an_unknown_field_is_an_error_with_path_and_location() -> TestResult {
        let selection = selection_of("{ services {\n name\n nmae } }")?;
        let mut path = vec![json!("services")];
        let error = project(&json!([service()]), &selection, &mut path)
            .err()
            .ok_or("no error")?;
        assert_eq!(
            error.message,
            "Cannot query field \"nmae\" on type \"L7Service\"."
        );
        assert_eq!(error.path, [json!("services"), json!(0), json!("nmae")]);
        assert_eq!(error.locations.len(), 1);
        Ok(())
    }

    #[test]
    fn a_selection_on_a_scalar_is_an_error_and_null_stays_null() -> TestResult {
        let selection = selection_of("{ services { name { first } } }")?;
        let mut path = vec![json!("services")];
        let error = project(&service(), &selection, &mut path)
            .err()
            .ok_or("no error")?;
        assert!(
            error.message.contains("\"name\" is a scalar"),
            "{}",
            error.message
        );
        let selection = selection_of("{ serviceByName { name } }")?;
        assert_eq!(
            project(&Value::Null, &selection, &mut Vec::new())?,
            Value::Null
        );
        Ok(())
    }

    #[test]
    fn a_field_selected_twice_is_merged() -> TestResult {
        let selection = selection_of("{ services { policy { xml } policy { code } } }")?;
        let projected = project(&service(), &selection, &mut Vec::new())?;
        assert_eq!(
            projected,
            json!({"policy": {"xml": "<wsp:Policy/>", "code": {"All": []}}})
        );
        Ok(())
    }

    #[test]
    fn a_leaf_object_loses_only_typename_marks() -> TestResult {
        let selection = selection_of("{ services { policy } }")?;
        let projected = project(&service(), &selection, &mut Vec::new())?;
        assert_eq!(
            projected,
            json!({"policy": {"xml": "<wsp:Policy/>", "code": {"All": []}}})
        );
        Ok(())
    }
}
