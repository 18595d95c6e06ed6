//! Checks a YAML node against an action's JSON Schema, pointing at the bad node.
//!
//! Covers the keywords schemars emits for argument structs: type, properties,
//! required, additionalProperties, items, enum, const, anyOf/oneOf/allOf, $ref
//! into $defs, minimum/maximum and pattern-free formats. A string that holds a
//! template is accepted where its rendered value could fit; the executor checks
//! the rendered arguments again before the action runs.

use serde_json::Value;

use crate::model::is_templated;
use crate::node::{Node, NodeValue};
use crate::source::Span;
use crate::suggest::did_you_mean;
use crate::template::lone_expression;

/// One place where a node does not fit the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaViolation {
    /// The node at fault.
    pub span: Span,
    /// Dotted path of the argument (`tls.ca`).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Kind of problem, for the diagnostic code.
    pub kind: ViolationKind,
}

/// Kinds of [`SchemaViolation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// An argument the action does not take.
    Unknown,
    /// A required argument is missing.
    Missing,
    /// A value of the wrong type.
    WrongType,
    /// A value outside what is allowed.
    Invalid,
}

/// Checks `node` against `schema` (a root schema with `$defs`).
pub fn check(schema: &Value, node: &Node) -> Vec<SchemaViolation> {
    let mut checker = Checker {
        root: schema,
        violations: Vec::new(),
    };
    checker.check(schema, node, "", node.span, 0);
    checker.violations
}

struct Checker<'s> {
    root: &'s Value,
    violations: Vec<SchemaViolation>,
}

const MAX_REF_DEPTH: usize = 64;

impl<'s> Checker<'s> {
    fn violation(
        &mut self,
        kind: ViolationKind,
        span: Span,
        path: &str,
        message: String,
        help: Option<String>,
    ) {
        self.violations.push(SchemaViolation {
            span,
            path: path.to_owned(),
            message,
            help,
            kind,
        });
    }

    fn resolve(&self, schema: &'s Value) -> &'s Value {
        let mut current = schema;
        for _ in 0..MAX_REF_DEPTH {
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
                return current;
            };
            let target = reference
                .strip_prefix("#")
                .and_then(|pointer| self.root.pointer(pointer));
            match target {
                Some(target) => current = target,
                None => return current,
            }
        }
        current
    }

    fn check(&mut self, schema: &'s Value, node: &Node, path: &str, key_span: Span, depth: usize) {
        if depth > MAX_REF_DEPTH {
            return;
        }
        let schema = self.resolve(schema);
        if schema == &Value::Bool(true) || schema.as_object().is_some_and(|o| o.is_empty()) {
            return;
        }
        if let Some(text) = node.as_str()
            && lone_expression(text).is_some()
        {
            return; // Any type once rendered.
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, node, path, key_span, depth + 1);
            }
        }
        if let Some(branches) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            self.check_alternatives(branches, schema, node, path, key_span, depth);
            return;
        }
        if !self.check_type(schema, node, path) {
            return;
        }
        self.check_enum(schema, node, path);
        self.check_range(schema, node, path);
        match &node.value {
            NodeValue::Map(entries) => self.check_object(schema, entries, path, key_span, depth),
            NodeValue::Seq(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.check(
                            item_schema,
                            item,
                            &format!("{path}[{index}]"),
                            item.span,
                            depth + 1,
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn check_alternatives(
        &mut self,
        branches: &'s [Value],
        schema: &'s Value,
        node: &Node,
        path: &str,
        key_span: Span,
        depth: usize,
    ) {
        let mut best: Option<Vec<SchemaViolation>> = None;
        for branch in branches {
            let mut sub = Checker {
                root: self.root,
                violations: Vec::new(),
            };
            sub.check(branch, node, path, key_span, depth + 1);
            if sub.violations.is_empty() {
                return;
            }
            // Prefer the branch whose type matched (its problems are deeper than a type clash).
            let type_clash = sub
                .violations
                .iter()
                .all(|v| v.kind == ViolationKind::WrongType && v.span == node.span);
            let better = match &best {
                None => true,
                Some(current) => {
                    !type_clash && current.iter().all(|v| v.kind == ViolationKind::WrongType)
                }
            };
            if better && (!type_clash || best.is_none()) {
                best = Some(sub.violations);
            }
        }
        let all_type_clashes = best.as_ref().is_none_or(|b| {
            b.iter()
                .all(|v| v.kind == ViolationKind::WrongType && v.span == node.span)
        });
        if all_type_clashes {
            let expected = describe_alternatives(self, branches);
            let message = format!("expected {expected}, found {}", node.value.kind());
            let help = schema
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned);
            self.violation(ViolationKind::WrongType, node.span, path, message, help);
        } else if let Some(best) = best {
            self.violations.extend(best);
        }
    }

    /// Checks the JSON type; returns whether deeper checks make sense.
    fn check_type(&mut self, schema: &Value, node: &Node, path: &str) -> bool {
        let Some(types) = schema.get("type") else {
            return true;
        };
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return true,
        };
        let fits = allowed.iter().any(|t| node_has_type(node, t));
        if !fits {
            let expected = allowed
                .iter()
                .map(|t| type_phrase(t))
                .collect::<Vec<_>>()
                .join(" or ");
            let found = match &node.value {
                NodeValue::String(s) => format!("the string {s:?}"),
                other => other.kind().to_owned(),
            };
            self.violation(
                ViolationKind::WrongType,
                node.span,
                path,
                format!("expected {expected}, found {found}"),
                None,
            );
        }
        fits
    }

    fn check_enum(&mut self, schema: &Value, node: &Node, path: &str) {
        let allowed: Vec<Value> = match (schema.get("enum"), schema.get("const")) {
            (Some(Value::Array(values)), _) => values.clone(),
            (_, Some(value)) => vec![value.clone()],
            _ => return,
        };
        if node.as_str().is_some_and(is_templated) {
            return;
        }
        let value = node.to_json();
        if allowed.contains(&value) {
            return;
        }
        let names: Vec<String> = allowed
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        let written = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        let help = did_you_mean(&written, names.iter().map(String::as_str));
        let list = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        self.violation(
            ViolationKind::Invalid,
            node.span,
            path,
            format!("invalid value `{written}`, expected one of {list}"),
            help,
        );
    }

    fn check_range(&mut self, schema: &Value, node: &Node, path: &str) {
        let number = match node.value {
            NodeValue::Int(i) => i as f64,
            NodeValue::Float(f) => f,
            _ => return,
        };
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64)
            && number < minimum
        {
            self.violation(
                ViolationKind::Invalid,
                node.span,
                path,
                format!("{number} is below the minimum {minimum}"),
                None,
            );
        }
        if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64)
            && number > maximum
        {
            self.violation(
                ViolationKind::Invalid,
                node.span,
                path,
                format!("{number} is above the maximum {maximum}"),
                None,
            );
        }
    }

    fn check_object(
        &mut self,
        schema: &'s Value,
        entries: &[(Node, Node)],
        path: &str,
        key_span: Span,
        depth: usize,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (key, value) in entries {
            let name = key.key_text();
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            match properties.and_then(|p| p.get(&name)) {
                Some(sub) => self.check(sub, value, &child_path, key.span, depth + 1),
                None => match additional {
                    Some(Value::Bool(false)) => {
                        let known: Vec<&str> = properties
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        let help = did_you_mean(&name, known.iter().copied()).or_else(|| {
                            (!known.is_empty())
                                .then(|| format!("known arguments: {}", known.join(", ")))
                        });
                        self.violation(
                            ViolationKind::Unknown,
                            key.span,
                            &child_path,
                            format!("unknown argument `{child_path}`"),
                            help,
                        );
                    }
                    Some(sub @ Value::Object(_)) => {
                        self.check(sub, value, &child_path, key.span, depth + 1)
                    }
                    _ => {}
                },
            }
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !entries.iter().any(|(k, _)| k.as_str() == Some(name)) {
                    let full = if path.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    };
                    let help = properties
                        .and_then(|p| p.get(name))
                        .and_then(|p| {
                            self.resolve(p)
                                .get("description")
                                .or_else(|| p.get("description"))
                        })
                        .and_then(Value::as_str)
                        .map(|d| format!("`{name}`: {d}"));
                    self.violation(
                        ViolationKind::Missing,
                        key_span,
                        path,
                        format!("missing required argument `{full}`"),
                        help,
                    );
                }
            }
        }
    }
}

fn describe_alternatives(checker: &Checker<'_>, branches: &[Value]) -> String {
    let mut phrases: Vec<String> = Vec::new();
    for branch in branches {
        let branch = checker.resolve(branch);
        let phrase = if let Some(Value::Array(values)) = branch.get("enum") {
            values
                .iter()
                .map(|v| {
                    format!(
                        "`{}`",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        } else if let Some(value) = branch.get("const") {
            format!(
                "`{}`",
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned)
            )
        } else {
            match branch.get("type") {
                Some(Value::String(t)) => type_phrase(t).to_owned(),
                Some(Value::Array(ts)) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .map(type_phrase)
                    .collect::<Vec<_>>()
                    .join(" or "),
                _ => "a value".to_owned(),
            }
        };
        if !phrases.contains(&phrase) {
            phrases.push(phrase);
        }
    }
    phrases.join(" or ")
}

fn node_has_type(node: &Node, json_type: &str) -> bool {
    match (json_type, &node.value) {
        ("null", NodeValue::Null)
        | ("boolean", NodeValue::Bool(_))
        | ("integer", NodeValue::Int(_))
        | ("number", NodeValue::Int(_) | NodeValue::Float(_))
        | ("string", NodeValue::String(_))
        | ("array", NodeValue::Seq(_))
        | ("object", NodeValue::Map(_)) => true,
        ("integer", NodeValue::Float(f)) => f.fract() == 0.0,
        _ => false,
    }
}

fn type_phrase(json_type: &str) -> &str {
    match json_type {
        "null" => "null",
        "boolean" => "`true` or `false`",
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "array" => "a list",
        "object" => "a mapping",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::parse;
    use crate::source::SourceFile;
    use serde_json::json;

    fn violations(schema: Value, yaml: &str) -> Vec<(String, String)> {
        let file = SourceFile::new("t", yaml);
        match parse(&file) {
            Ok(node) => check(&schema, &node)
                .into_iter()
                .map(|v| (v.path, v.message))
                .collect(),
            Err(e) => vec![("parse".into(), e.message)],
        }
    }

    fn target_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "upstream": {"type": "string", "description": "Upstream name."},
                "weight": {"type": "integer", "minimum": 0, "maximum": 65535},
                "mode": {"$ref": "#/$defs/Mode"},
                "tags": {"type": ["array", "null"], "items": {"type": "string"}}
            },
            "required": ["upstream"],
            "additionalProperties": false,
            "$defs": {"Mode": {"type": "string", "enum": ["drain", "restore"]}}
        })
    }

    #[test]
    fn accepts_valid_and_templated_values() {
        assert!(
            violations(
                target_schema(),
                "upstream: core\nweight: \"{{ inputs.w }}\"\ntags: [a]\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn reports_each_problem_with_its_path() {
        let found = violations(target_schema(), "wieght: 70000\nmode: drian\ntags: [1]\n");
        assert_eq!(
            found,
            vec![
                ("wieght".into(), "unknown argument `wieght`".into()),
                (
                    "mode".into(),
                    "invalid value `drian`, expected one of `drain`, `restore`".into()
                ),
                (
                    "tags[0]".into(),
                    "expected a string, found an integer".into()
                ),
                ("".into(), "missing required argument `upstream`".into()),
            ]
        );
    }

    #[test]
    fn range_is_checked() {
        let found = violations(target_schema(), "upstream: u\nweight: 70000\n");
        assert_eq!(
            found,
            vec![("weight".into(), "70000 is above the maximum 65535".into())]
        );
    }

    #[test]
    fn alternatives_report_the_closest_branch() {
        let schema =
            json!({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]});
        assert_eq!(
            violations(schema.clone(), "[a, 2]"),
            vec![("[1]".into(), "expected a string, found an integer".into())]
        );
        assert_eq!(
            violations(schema, "{a: 1}"),
            vec![(
                "".into(),
                "expected a string or a list, found a mapping".into()
            )]
        );
    }
}
