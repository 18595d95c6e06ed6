//! Input values: reading `--set` text and defaults as the declared type, and
//! checking the declared constraints.

use serde_json::Value;

use crate::model::{Duration, InputSpec, InputType};
use crate::node::{Node, NodeValue};

/// Why an input value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Reads `--set name=text` text as the input's type.
pub fn parse_text(spec: &InputSpec, text: &str) -> Result<Value, InputError> {
    let value = match spec.kind.value {
        InputType::String | InputType::Secret => Value::String(text.to_owned()),
        InputType::Integer => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| InputError(format!("expected an integer, found {text:?}")))?,
        InputType::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| InputError(format!("expected a number, found {text:?}")))?,
        InputType::Boolean => match text.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => {
                return Err(InputError(format!(
                    "expected `true` or `false`, found {text:?}"
                )));
            }
        },
        InputType::Duration => {
            text.parse::<Duration>()
                .map_err(|e| InputError(e.to_string()))?;
            Value::String(text.trim().to_owned())
        }
        InputType::List | InputType::Map => {
            let value: Value = serde_json::from_str(text).map_err(|_| {
                InputError(format!(
                    "expected a {} written as JSON (e.g. {}), found {text:?}",
                    spec.kind.value.as_str(),
                    if spec.kind.value == InputType::List {
                        "[\"a\", \"b\"]"
                    } else {
                        "{\"k\": \"v\"}"
                    }
                ))
            })?;
            check_type(spec.kind.value, &value)?;
            value
        }
    };
    check_constraints(spec, &value)?;
    Ok(value)
}

/// Reads a YAML value (a default, or a vars-file entry) as the input's type.
pub fn from_node(spec: &InputSpec, node: &Node) -> Result<Value, InputError> {
    let value = match (&node.value, spec.kind.value) {
        (NodeValue::String(text), InputType::Duration) => {
            text.parse::<Duration>()
                .map_err(|e| InputError(e.to_string()))?;
            Value::String(text.clone())
        }
        _ => node.to_json(),
    };
    check_type(spec.kind.value, &value)?;
    check_constraints(spec, &value)?;
    Ok(value)
}

fn check_type(kind: InputType, value: &Value) -> Result<(), InputError> {
    let fits = match kind {
        InputType::String | InputType::Secret | InputType::Duration => value.is_string(),
        InputType::Integer => value.is_i64() || value.is_u64(),
        InputType::Number => value.is_number(),
        InputType::Boolean => value.is_boolean(),
        InputType::List => value.is_array(),
        InputType::Map => value.is_object(),
    };
    if fits {
        Ok(())
    } else {
        Err(InputError(format!(
            "expected a value of type {}, found {}",
            kind.as_str(),
            json_kind(value)
        )))
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Checks pattern, minimum, maximum and enum.
pub fn check_constraints(spec: &InputSpec, value: &Value) -> Result<(), InputError> {
    if let (Some(pattern), Some(text)) = (&spec.pattern, value.as_str()) {
        let regex = regex::Regex::new(&pattern.value).map_err(|e| {
            InputError(format!(
                "the input's pattern is not a valid regular expression: {e}"
            ))
        })?;
        if !regex.is_match(text) {
            return Err(InputError(format!(
                "{text:?} does not match the pattern `{}`",
                pattern.value
            )));
        }
    }
    let measure = match value {
        Value::Number(n) => n.as_f64(),
        Value::Array(items) => Some(items.len() as f64),
        _ => None,
    };
    if let Some(measure) = measure {
        let what = if value.is_array() {
            "list length"
        } else {
            "value"
        };
        if let Some(minimum) = &spec.minimum
            && measure < minimum.value
        {
            return Err(InputError(format!(
                "{what} {measure} is below the minimum {}",
                minimum.value
            )));
        }
        if let Some(maximum) = &spec.maximum
            && measure > maximum.value
        {
            return Err(InputError(format!(
                "{what} {measure} is above the maximum {}",
                maximum.value
            )));
        }
    }
    if let Some(allowed) = &spec.allowed {
        let allowed_values: Vec<Value> = allowed.value.iter().map(Node::to_json).collect();
        if !allowed_values.contains(value) {
            let list = allowed_values
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(InputError(format!(
                "{value} is not one of the allowed values: {list}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
#[expect(clippy::panic, reason = "a spec that does not load fails the test")]
mod tests {
    use super::*;
    use crate::de::{Spanned, from_node as read_node};
    use crate::node::parse;
    use crate::source::{SourceFile, Span};

    fn spec(yaml: &str) -> Option<InputSpec> {
        let file = SourceFile::new("t", yaml);
        let node = parse(&file).ok()?;
        read_node(&node).ok()
    }

    #[test]
    fn integers_with_bounds() {
        let Some(spec) = spec("{type: integer, minimum: 1, maximum: 4}") else {
            panic!("spec did not load");
        };
        assert_eq!(parse_text(&spec, "2"), Ok(Value::from(2)));
        assert!(parse_text(&spec, "0").is_err());
        assert!(parse_text(&spec, "two").is_err());
    }

    #[test]
    fn strings_with_pattern_and_enum() {
        let Some(spec) = spec("{type: string, pattern: '^\\d+\\.\\d+\\.\\d+$'}") else {
            panic!("spec did not load");
        };
        assert!(parse_text(&spec, "3.9.1").is_ok());
        assert_eq!(
            parse_text(&spec, "latest"),
            Err(InputError(
                "\"latest\" does not match the pattern `^\\d+\\.\\d+\\.\\d+$`".into()
            ))
        );
        let Some(mut spec) = spec_enum() else {
            panic!("spec did not load");
        };
        spec.kind = Spanned::new(InputType::String, Span::default());
        assert!(parse_text(&spec, "blue").is_ok());
        assert!(parse_text(&spec, "red").is_err());
    }

    fn spec_enum() -> Option<InputSpec> {
        spec("{type: string, enum: [blue, green]}")
    }

    #[test]
    fn durations_and_lists() {
        let Some(duration) = spec("{type: duration}") else {
            panic!("spec did not load");
        };
        assert!(parse_text(&duration, "90s").is_ok());
        assert!(parse_text(&duration, "90").is_err());
        let Some(list) = spec("{type: list, minimum: 1}") else {
            panic!("spec did not load");
        };
        assert_eq!(parse_text(&list, "[\"a\"]"), Ok(serde_json::json!(["a"])));
        assert!(parse_text(&list, "[]").is_err());
    }
}
