//! The YAML document tree: every node keeps its source span.
//!
//! A document is parsed once into [`Node`]s under a budget (size, depth, node
//! count, alias expansion); the typed model is then read from the tree with
//! [`crate::de`], so every later error can point at the exact node.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

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
    let raw: serde_saphyr::Spanned<RawNode> =
        serde_saphyr::from_str_with_options(text, options()).map_err(|e| parse_error(file, &e))?;
    let mut root = convert(raw, text);
    if text.trim().is_empty() || matches!(root.value, NodeValue::Null) && root.span.len == 0 {
        root.value = NodeValue::Null;
    }
    Ok(root)
}

/// Whether the tab at `offset` stands in the leading whitespace of its line.
fn tab_is_indentation(text: &str, offset: usize) -> bool {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..offset]
        .chars()
        .all(|c| c == ' ' || c == '\t')
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = Some(MAX_FILE_BYTES);
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    budget.max_events = MAX_NODES * 2;
    budget.max_aliases = MAX_ALIASES;
    budget.max_anchors = MAX_ALIASES;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_documents = 1;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.strict_booleans = true;
    options.with_snippet = false;
    options
}

fn parse_error(file: &SourceFile, error: &serde_saphyr::Error) -> ParseError {
    let rendered = error
        .without_snippet()
        .render_with_options(serde_saphyr::render_options! {
            snippets: serde_saphyr::SnippetMode::Off,
        });
    let location = error.location().filter(|l| l.line() > 0);
    let span = location.map(|l| location_span(&l, &file.text));
    let message = clean_message(&rendered);
    let (code, help) = classify(&message);
    ParseError {
        message,
        span,
        help,
        code,
    }
}

/// Strips the "line N column M:" decoration the parser adds; positions are shown separately.
fn clean_message(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or(rendered).trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let without_position = match first.strip_prefix("line ") {
        Some(rest) => rest.split_once(": ").map_or(first, |(_, m)| m),
        None => first,
    };
    let without_suffix = without_position
        .split(" at line ")
        .next()
        .unwrap_or(without_position);
    let message = without_suffix
        .replace(", set DuplicateKeyPolicy in Options if acceptable", "")
        .replace(
            "; use from_str_multiple or from_str_multiple_with_options",
            "",
        );
    if message.starts_with("budget breached") {
        return budget_message(&message);
    }
    message
}

fn budget_message(message: &str) -> String {
    if message.contains("Documents") {
        "multiple YAML documents in one file".into()
    } else if message.contains("Depth") {
        format!("document is nested deeper than {MAX_DEPTH} levels")
    } else if message.contains("Alias")
        || message.contains("Anchor")
        || message.contains("Recorded")
    {
        "too many alias expansions (an alias bomb?)".into()
    } else if message.contains("Nodes") || message.contains("Events") {
        format!("document has more than {MAX_NODES} nodes")
    } else if message.contains("Bytes") || message.contains("Scalar") {
        "document is too large".into()
    } else {
        format!("document exceeds the loader's limits ({message})")
    }
}

fn classify(message: &str) -> (&'static str, Option<String>) {
    if message.contains("duplicate mapping key") {
        (
            "yaml::duplicate-key",
            Some("each key may appear once in a mapping".into()),
        )
    } else if message.contains("multiple YAML documents") {
        (
            "yaml::multiple-documents",
            Some("a runsheet file holds one YAML document; remove the `---`".into()),
        )
    } else if message.contains("alias") {
        (
            "yaml::budget",
            Some("anchors and aliases may be used, but not to multiply a document".into()),
        )
    } else if message.contains("nested deeper")
        || message.contains("nodes")
        || message.contains("too large")
    {
        ("yaml::budget", None)
    } else if message.contains("UTF-8") {
        ("yaml::encoding", Some("save the file as UTF-8".into()))
    } else {
        ("yaml::syntax", None)
    }
}

fn location_span(location: &serde_saphyr::Location, text: &str) -> Span {
    let span = location.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(offset), Some(len)) if (offset as usize) <= text.len() => Span::new(
            offset as usize,
            (len as usize).min(text.len() - offset as usize),
        ),
        _ => line_col_span(location, text),
    }
}

fn line_col_span(location: &serde_saphyr::Location, text: &str) -> Span {
    let line_index = usize::try_from(location.line().saturating_sub(1)).unwrap_or(0);
    let Some(line_start) = text
        .split_inclusive('\n')
        .take(line_index)
        .map(str::len)
        .try_fold(0usize, |acc, len| acc.checked_add(len))
    else {
        return Span::default();
    };
    let column = usize::try_from(location.column().saturating_sub(1)).unwrap_or(0);
    let rest = text.get(line_start..).unwrap_or("");
    let offset = rest
        .char_indices()
        .nth(column)
        .map_or(rest.len(), |(i, _)| i);
    Span::new((line_start + offset).min(text.len()), 0)
}

fn convert(raw: serde_saphyr::Spanned<RawNode>, text: &str) -> Node {
    let span = location_span(&raw.referenced, text);
    let value = match raw.value {
        RawNode::Null => NodeValue::Null,
        RawNode::Bool(b) => NodeValue::Bool(b),
        RawNode::Int(i) => NodeValue::Int(i),
        RawNode::Float(f) => NodeValue::Float(f),
        RawNode::String(s) => NodeValue::String(s),
        RawNode::Seq(items) => {
            NodeValue::Seq(items.into_iter().map(|i| convert(i, text)).collect())
        }
        RawNode::Map(entries) => NodeValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (convert(k, text), convert(v, text)))
                .collect(),
        ),
    };
    let span = match &value {
        // Collections report a zero-length point; show the first key or item instead.
        NodeValue::Map(entries) if span.len == 0 => entries.first().map_or(span, |(k, _)| k.span),
        NodeValue::Seq(items) if span.len == 0 => items.first().map_or(span, |i| i.span),
        _ => span,
    };
    Node { value, span }
}

/// The parser-facing tree, read through serde-saphyr's `Spanned`.
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<serde_saphyr::Spanned<RawNode>>),
    Map(
        Vec<(
            serde_saphyr::Spanned<RawNode>,
            serde_saphyr::Spanned<RawNode>,
        )>,
    ),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawNodeVisitor)
    }
}

struct RawNodeVisitor;

impl<'de> Visitor<'de> for RawNodeVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }

    fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }

    fn visit_u128<E>(self, v: u128) -> Result<RawNode, E> {
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawNode, E> {
        String::from_utf8(v.to_vec())
            .map(RawNode::String)
            .map_err(|_| E::custom("binary value is not valid UTF-8"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(RawNode::Map(entries))
    }
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
