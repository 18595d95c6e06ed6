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
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            self.check_alternatives(branches, false, schema, node, path, key_span, depth);
        }
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            self.check_alternatives(branches, true, schema, node, path, key_span, depth);
        }
        self.check_conditional(schema, node, path, key_span, depth);
        self.check_not(schema, node, path, key_span, depth);
        if !self.check_type(schema, node, path) {
            return;
        }
        self.check_enum(schema, node, path);
        self.check_range(schema, node, path);
        self.check_lengths(schema, node, path);
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

    /// Whether a node fits a schema, without reporting anything.
    fn fits(
        &self,
        schema: &'s Value,
        node: &Node,
        path: &str,
        key_span: Span,
        depth: usize,
    ) -> Vec<SchemaViolation> {
        let mut sub = Checker {
            root: self.root,
            violations: Vec::new(),
        };
        sub.check(schema, node, path, key_span, depth + 1);
        sub.violations
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the recursive walk's position travels with it"
    )]
    fn check_alternatives(
        &mut self,
        branches: &'s [Value],
        exclusive: bool,
        schema: &'s Value,
        node: &Node,
        path: &str,
        key_span: Span,
        depth: usize,
    ) {
        let results: Vec<Vec<SchemaViolation>> = branches
            .iter()
            .map(|branch| self.fits(branch, node, path, key_span, depth))
            .collect();
        let matched = results.iter().filter(|r| r.is_empty()).count();
        let required_only = branches
            .iter()
            .map(|b| required_only(self.resolve(b)))
            .collect::<Option<Vec<_>>>();
        if matched == 1 || (matched > 1 && !exclusive) {
            return;
        }
        if let Some(names) = required_only {
            let list = names
                .iter()
                .map(|n| format!("`{}`", n.join("` and `")))
                .collect::<Vec<_>>()
                .join(", ");
            if matched > 1 {
                // Point at the second of the keys given together.
                let given: Vec<Span> = node
                    .as_map()
                    .unwrap_or_default()
                    .iter()
                    .filter(|(k, _)| names.iter().flatten().any(|n| k.as_str() == Some(n)))
                    .map(|(k, _)| k.span)
                    .collect();
                let span = given.get(1).copied().unwrap_or(key_span);
                self.violation(
                    ViolationKind::Invalid,
                    span,
                    path,
                    format!("give only one of {list}"),
                    None,
                );
            } else {
                self.violation(
                    ViolationKind::Missing,
                    key_span,
                    path,
                    format!("give one of {list}"),
                    None,
                );
            }
            return;
        }
        if matched > 1 {
            let message = "the value matches more than one of the allowed forms".to_owned();
            self.violation(ViolationKind::Invalid, node.span, path, message, None);
            return;
        }
        if let Some(values) = branches
            .iter()
            .map(|b| value_choices(self.resolve(b)))
            .collect::<Option<Vec<_>>>()
        {
            let allowed: Vec<Value> = values.into_iter().flatten().collect();
            self.enum_violation(&allowed, node, path);
            return;
        }
        // Prefer the branch whose type matched: its problems are more specific than a type clash.
        let type_clash = |violations: &[SchemaViolation]| {
            violations
                .iter()
                .all(|v| v.kind == ViolationKind::WrongType && v.span == node.span)
        };
        match results.into_iter().find(|r| !type_clash(r)) {
            Some(best) => self.violations.extend(best),
            None => {
                let expected = describe_alternatives(self, branches);
                let message = format!("expected {expected}, found {}", node.value.kind());
                let help = schema
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.violation(ViolationKind::WrongType, node.span, path, message, help);
            }
        }
    }

    /// `if` / `then` / `else`: the branch that applies is checked like the rest.
    fn check_conditional(
        &mut self,
        schema: &'s Value,
        node: &Node,
        path: &str,
        key_span: Span,
        depth: usize,
    ) {
        let Some(condition) = schema.get("if") else {
            return;
        };
        let holds = self.fits(condition, node, path, key_span, depth).is_empty();
        let branch = if holds {
            schema.get("then")
        } else {
            schema.get("else")
        };
        if let Some(branch) = branch {
            self.check(branch, node, path, key_span, depth + 1);
        }
    }

    /// `not`: the node must not fit the schema.
    fn check_not(
        &mut self,
        schema: &'s Value,
        node: &Node,
        path: &str,
        key_span: Span,
        depth: usize,
    ) {
        let Some(forbidden) = schema.get("not") else {
            return;
        };
        if !self.fits(forbidden, node, path, key_span, depth).is_empty() {
            return;
        }
        let message = match required_only(self.resolve(forbidden)) {
            Some(names) if names.len() > 1 => {
                format!("`{}` cannot be given together", names.join("` and `"))
            }
            _ => "the value has a form that is not allowed here".to_owned(),
        };
        let help = schema
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.violation(ViolationKind::Invalid, key_span, path, message, help);
    }

    /// `minItems`, `maxItems`, `minLength`, `maxLength` and `pattern`.
    fn check_lengths(&mut self, schema: &Value, node: &Node, path: &str) {
        let bound = |key: &str| schema.get(key).and_then(Value::as_u64);
        match &node.value {
            NodeValue::Seq(items) => {
                let count = items.len() as u64;
                if let Some(minimum) = bound("minItems").filter(|m| count < *m) {
                    let message = format!(
                        "the list needs at least {minimum} item{}",
                        if minimum == 1 { "" } else { "s" }
                    );
                    self.violation(ViolationKind::Invalid, node.span, path, message, None);
                }
                if let Some(maximum) = bound("maxItems").filter(|m| count > *m) {
                    self.violation(
                        ViolationKind::Invalid,
                        node.span,
                        path,
                        format!("the list takes at most {maximum} items"),
                        None,
                    );
                }
            }
            NodeValue::String(text) if !is_templated(text) => {
                let count = text.chars().count() as u64;
                if let Some(minimum) = bound("minLength").filter(|m| count < *m) {
                    self.violation(
                        ViolationKind::Invalid,
                        node.span,
                        path,
                        format!("the text needs at least {minimum} characters"),
                        None,
                    );
                }
                if let Some(maximum) = bound("maxLength").filter(|m| count > *m) {
                    self.violation(
                        ViolationKind::Invalid,
                        node.span,
                        path,
                        format!("the text takes at most {maximum} characters"),
                        None,
                    );
                }
                if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                    let matches = regex::Regex::new(pattern)
                        .map(|r| r.is_match(text))
                        .unwrap_or(true);
                    if !matches {
                        let help = schema
                            .get("description")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        let message = format!(
                            "{text:?} does not have the expected form (pattern `{pattern}`)"
                        );
                        self.violation(ViolationKind::Invalid, node.span, path, message, help);
                    }
                }
            }
            _ => {}
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
        if let Some(allowed) = value_choices(schema) {
            self.enum_violation(&allowed, node, path);
        }
    }

    /// Reports a value outside `allowed`, with the nearest allowed value.
    fn enum_violation(&mut self, allowed: &[Value], node: &Node, path: &str) {
        if node.as_str().is_some_and(is_templated) {
            return;
        }
        let value = node.to_json();
        if allowed.contains(&value) {
            return;
        }
        let names: Vec<String> = allowed.iter().map(value_text).collect();
        let written = value_text(&value);
        let help = did_you_mean(&written, names.iter().map(String::as_str));
        let list = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("invalid value `{written}`, expected one of {list}");
        self.violation(ViolationKind::Invalid, node.span, path, message, help);
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

/// The values a schema allows, when it is a `const` or an `enum`.
fn value_choices(schema: &Value) -> Option<Vec<Value>> {
    match (schema.get("enum"), schema.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.clone()),
        (_, Some(value)) => Some(vec![value.clone()]),
        _ => None,
    }
}

/// For a schema that only requires keys (`{"required": ["argv"]}`), those keys.
fn required_only(schema: &Value) -> Option<Vec<&str>> {
    let object = schema.as_object()?;
    let keys_ok = object
        .keys()
        .all(|k| matches!(k.as_str(), "required" | "description" | "title"));
    let names: Vec<&str> = object
        .get("required")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (keys_ok && !names.is_empty()).then_some(names)
}

fn value_text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
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

    fn exec_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "command": {"type": "string"},
                "json": {}, "body": {"type": "string"},
                "mode": {"type": "string", "pattern": "^[0-7]{3,4}$"},
                "state": {"oneOf": [{"type": "string", "const": "present"}, {"type": "string", "const": "absent"}]},
                "pem": {"type": "string"}
            },
            "additionalProperties": false,
            "oneOf": [{"required": ["argv"]}, {"required": ["command"]}],
            "not": {"required": ["json", "body"]},
            "if": {"properties": {"state": {"const": "absent"}}, "required": ["state"]},
            "else": {"required": ["pem"]}
        })
    }

    #[test]
    fn exactly_one_of_is_enforced_and_properties_still_checked() {
        assert_eq!(
            violations(
                exec_schema(),
                "argv: [a]\ncommand: b\nstate: absent\ntimeout: 3\n"
            ),
            vec![
                ("".into(), "give only one of `argv`, `command`".into()),
                ("timeout".into(), "unknown argument `timeout`".into()),
            ]
        );
        assert_eq!(
            violations(exec_schema(), "state: absent\n"),
            vec![("".into(), "give one of `argv`, `command`".into())]
        );
    }

    #[test]
    fn conditional_not_lengths_and_patterns() {
        assert_eq!(
            violations(
                exec_schema(),
                "argv: []\nmode: rw-r--r--\njson: 1\nbody: x\n"
            ),
            vec![
                ("".into(), "missing required argument `pem`".into()),
                (
                    "".into(),
                    "`json` and `body` cannot be given together".into()
                ),
                ("argv".into(), "the list needs at least 1 item".into()),
                (
                    "mode".into(),
                    "\"rw-r--r--\" does not have the expected form (pattern `^[0-7]{3,4}$`)".into()
                ),
            ]
        );
    }

    #[test]
    fn enums_written_as_one_of_constants_list_every_value() {
        let found = violations(exec_schema(), "command: x\nstate: presnt\npem: p\n");
        assert_eq!(
            found,
            vec![(
                "state".into(),
                "invalid value `presnt`, expected one of `present`, `absent`".into()
            )]
        );
    }
}
