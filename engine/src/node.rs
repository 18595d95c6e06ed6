//! The YAML document tree: every node keeps its source span.
//!
//! A document is parsed once into [`Node`]s under a budget (size, depth, node
//! count, alias expansion); the typed model is then read from the tree with
//! [`crate::de`], so every later error can point at the exact node.

use crate::source::{SourceFile, Span};

/// Largest file the loader reads, in bytes; larger files are refused before parsing.
pub const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;

/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;

/// Most YAML nodes accepted in one document.
pub const MAX_NODES: usize = 2_000_000;

/// Most alias references accepted in one document.
pub const MAX_ALIASES: usize = 1_000;

/// A YAML node and where it stands in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node's value.
    pub value: NodeValue,
    /// Where the node was written (for an alias: where the alias stands).
    pub span: Span,
}

/// The value of a YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` or `false` (YAML 1.2 spellings only).
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping in document order.
    Map(Vec<(Node, Node)>),
}

impl NodeValue {
    /// Noun phrase for the kind of value, as used in messages ("a string").
    pub fn kind(&self) -> &'static str {
        match self {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// A node with no source position (built by code, not read from a file).
    pub fn synthetic(value: NodeValue) -> Self {
        Self {
            value,
            span: Span::default(),
        }
    }

    /// The string value, if this node is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The span of a key of this mapping, if it has that key.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k.span)
    }

    /// The entries, if this node is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under a string key, if this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The node as JSON (mapping keys rendered as strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_text(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The node written as a mapping key would read.
    pub fn key_text(&self) -> String {
        match &self.value {
            NodeValue::String(s) => s.clone(),
            NodeValue::Null => "~".to_owned(),
            NodeValue::Bool(b) => b.to_string(),
            NodeValue::Int(i) => i.to_string(),
            NodeValue::Float(f) => f.to_string(),
            NodeValue::Seq(_) => "[...]".to_owned(),
            NodeValue::Map(_) => "{...}".to_owned(),
        }
    }

    /// Every node of the tree, depth first, this one included.
    pub fn walk(&self, visit: &mut impl FnMut(&Node)) {
        visit(self);
        match &self.value {
            NodeValue::Seq(items) => items.iter().for_each(|item| item.walk(visit)),
            NodeValue::Map(entries) => entries.iter().for_each(|(k, v)| {
                k.walk(visit);
                v.walk(visit);
            }),
            _ => {}
        }
    }
}

/// Why a document could not be parsed as YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// Where, when the parser knows.
    pub span: Option<Span>,
    /// How to fix it, when there is a usual fix.
    pub help: Option<String>,
    /// A stable code for the kind of problem.
    pub code: &'static str,
}

/// Parses one YAML document into a [`Node`] tree under the loader's budget.
pub fn parse(file: &SourceFile) -> Result<Node, ParseError> {
    let text = &file.text;
    if text.len() > MAX_FILE_BYTES {
        return Err(ParseError {
            message: format!(
                "file is {} bytes, more than the {} bytes a playbook may have",
                text.len(),
                MAX_FILE_BYTES
            ),
            span: None,
            help: Some("split the playbook, or generate its steps with for_each".into()),
            code: "yaml::too-large",
        });
    }
    if let Some(offset) = text.find('\t').filter(|&o| tab_is_indentation(text, o)) {
        return Err(ParseError {
            message: "tab character used for indentation".into(),
            span: Some(Span::new(offset, 1)),
            help: Some("YAML indents with spaces only; replace the tab with spaces".into()),
            code: "yaml::tab",
        });
    }
    crate::yaml::build(text)
}

/// Whether the tab at `offset` stands in the leading whitespace of its line.
fn tab_is_indentation(text: &str, offset: usize) -> bool {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..offset]
        .chars()
        .all(|c| c == ' ' || c == '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Node, ParseError> {
        parse(&SourceFile::new("t.yaml", text))
    }

    #[test]
    fn keeps_spans_of_scalars() -> Result<(), ParseError> {
        let root = parse_text("a: 1\nbb: hello\n")?;
        let value = root.get("bb").map(|n| (n.value.clone(), n.span));
        assert_eq!(
            value,
            Some((NodeValue::String("hello".into()), Span::new(9, 5)))
        );
        Ok(())
    }

    #[test]
    fn yaml11_booleans_stay_strings() -> Result<(), ParseError> {
        let root = parse_text("a: yes\nb: on\nc: true\n")?;
        assert_eq!(
            root.get("a").map(|n| n.value.clone()),
            Some(NodeValue::String("yes".into()))
        );
        assert_eq!(
            root.get("c").map(|n| n.value.clone()),
            Some(NodeValue::Bool(true))
        );
        Ok(())
    }

    #[test]
    fn refuses_alias_bomb() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        let names: Vec<char> = ('a'..='j').collect();
        for pair in names.windows(2) {
            let refs = vec![format!("*{}", pair[0]); 9].join(", ");
            text.push_str(&format!("{0}: &{0} [{1}]\n", pair[1], refs));
        }
        let err = parse_text(&text).err();
        assert_eq!(err.map(|e| e.code), Some("yaml::budget"));
    }

    #[test]
    fn refuses_deep_nesting() {
        let text = format!("a: {}{}\n", "[".repeat(200), "]".repeat(200));
        let err = parse_text(&text).err();
        assert_eq!(err.map(|e| e.code), Some("yaml::budget"));
    }

    #[test]
    fn refuses_indenting_tabs() {
        let err = parse_text("a:\n\tb: 1\n").err();
        assert_eq!(
            err.map(|e| (e.code, e.span)),
            Some(("yaml::tab", Some(Span::new(3, 1))))
        );
    }

    #[test]
    fn tab_inside_a_value_is_fine() -> Result<(), ParseError> {
        let root = parse_text("a: \"x\\ty\"\nb: c\td\n")?;
        assert_eq!(root.get("b").and_then(Node::as_str), Some("c\td"));
        Ok(())
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse_text("a: 1\na: 2\n").err();
        assert_eq!(err.map(|e| e.code), Some("yaml::duplicate-key"));
    }
}
