//! The JSON Schema of the playbook and environment formats, generated from the
//! model types, with each action's `with:` schema bound to its `action:` value.

use serde_json::{Map, Value, json};

use crate::model::{EnvironmentDoc, PlaybookDoc};
use crate::registry::Registry;

fn generator() -> schemars::SchemaGenerator {
    schemars::generate::SchemaSettings::draft2020_12().into_generator()
}

/// JSON Schema of playbooks, for editors (yaml-language-server) and CI linters.
pub fn playbook_schema(registry: &Registry) -> Value {
    let mut schema = generator().into_root_schema_for::<PlaybookDoc>().to_value();
    let mut bindings = Vec::new();
    for action in registry.iter() {
        let spec = action.spec();
        let arguments = import_definitions(&mut schema, spec.name, &spec.arguments);
        bindings.push(json!({
            "if": {"properties": {"action": {"const": spec.name}}, "required": ["action"]},
            "then": {"properties": {"with": arguments}}
        }));
    }
    let names: Vec<&str> = registry.iter().map(|a| a.spec().name).collect();
    if let Some(step) = schema
        .pointer_mut("/$defs/StepDoc")
        .and_then(Value::as_object_mut)
    {
        step.insert("allOf".into(), Value::Array(bindings));
        if let Some(action) = step.get_mut("properties").and_then(|p| p.get_mut("action")) {
            *action = json!({
                "description": action.get("description").cloned().unwrap_or(Value::Null),
                "type": ["string", "null"],
                "enum": names.iter().map(|n| Value::String((*n).into())).chain([Value::Null]).collect::<Vec<_>>()
            });
        }
    }
    schema
}

/// JSON Schema of environment files.
pub fn environment_schema() -> Value {
    generator()
        .into_root_schema_for::<EnvironmentDoc>()
        .to_value()
}

/// Moves an action schema's `$defs` into the root under prefixed names; returns the body.
fn import_definitions(root: &mut Value, action: &str, schema: &Value) -> Value {
    let prefix = format!("{}.", action);
    let mut body = schema.clone();
    let definitions = body
        .as_object_mut()
        .and_then(|o| o.remove("$defs"))
        .and_then(|d| d.as_object().cloned())
        .unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
    }
    rewrite_refs(&mut body, &prefix);
    if let Some(root_defs) = root.get_mut("$defs").and_then(Value::as_object_mut) {
        for (name, mut definition) in definitions {
            rewrite_refs(&mut definition, &prefix);
            root_defs.insert(format!("{prefix}{name}"), definition);
        }
    } else if let Some(object) = root.as_object_mut() {
        let mut root_defs = Map::new();
        for (name, mut definition) in definitions {
            rewrite_refs(&mut definition, &prefix);
            root_defs.insert(format!("{prefix}{name}"), definition);
        }
        object.insert("$defs".into(), Value::Object(root_defs));
    }
    body
}

fn rewrite_refs(value: &mut Value, prefix: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => {
                        if let Some(name) = reference.strip_prefix("#/$defs/") {
                            *reference = format!("#/$defs/{prefix}{name}");
                        }
                    }
                    (_, child) => rewrite_refs(child, prefix),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite_refs(item, prefix)),
        _ => {}
    }
}
