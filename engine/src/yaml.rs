//! Builds the [`Node`] tree straight from YAML parser events.
//!
//! The events come from serde-saphyr's own parser (granit). Reading them
//! directly, instead of through serde with `Spanned` wrappers, halves the load
//! time of large playbooks; the budget the loader promises (depth, node count,
//! alias expansion) is enforced here while the tree grows, so an alias bomb is
//! refused after at most [`MAX_NODES`] nodes of work.
//!
//! Scalars resolve by the YAML 1.2 core schema: only `true`/`false` spellings
//! are booleans, `~`/`null`/empty are null, and quoted or block scalars are
//! always strings.

use std::collections::{HashMap, HashSet};

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, ScanError, Tag};

use crate::node::{MAX_ALIASES, MAX_DEPTH, MAX_NODES, Node, NodeValue, ParseError};
use crate::source::Span;

/// Parses one YAML document into a node tree, enforcing the loader's budget.
pub fn build(text: &str) -> Result<Node, ParseError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| scan_error(&e, text))?;
        let span = byte_span(&span, text);
        builder.event(event, span)?;
    }
    Ok(builder
        .root
        .unwrap_or_else(|| Node::synthetic(NodeValue::Null)))
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    documents: usize,
    nodes: usize,
    aliases: usize,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// Positions in `entries` of plain `<<` merge keys.
        merges: Vec<usize>,
        /// Key texts, kept once the mapping is large enough for lookups to matter.
        seen: Option<HashSet<String>>,
        span: Span,
        anchor: usize,
    },
}

/// Mappings with more entries than this check duplicate keys with a set.
const LINEAR_KEY_CHECK: usize = 16;

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), ParseError> {
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(error(
                        "yaml::multiple-documents",
                        "multiple YAML documents in one file",
                        Some(span),
                        Some("a runsheet file holds one YAML document; remove the `---`"),
                    ));
                }
                Ok(())
            }
            Event::Scalar(value, style, anchor, tag) => {
                let value = resolve(&value, style, tag.as_deref(), span)?;
                self.complete(Node { value, span }, anchor)
            }
            Event::Alias(id) => self.alias(id, span),
            Event::SequenceStart(_, anchor, tag) => {
                reject_collection_tag(tag.as_deref(), "seq", span)?;
                self.open(Frame::Seq {
                    items: Vec::new(),
                    span,
                    anchor,
                })
            }
            Event::MappingStart(_, anchor, tag) => {
                reject_collection_tag(tag.as_deref(), "map", span)?;
                self.open(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    merges: Vec::new(),
                    seen: None,
                    span,
                    anchor,
                })
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            _ => Ok(()),
        }
    }

    fn open(&mut self, frame: Frame) -> Result<(), ParseError> {
        if self.stack.len() >= MAX_DEPTH {
            let span = match &frame {
                Frame::Seq { span, .. } | Frame::Map { span, .. } => *span,
            };
            return Err(error(
                "yaml::budget",
                &format!("document is nested deeper than {MAX_DEPTH} levels"),
                Some(span),
                None,
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self) -> Result<(), ParseError> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        match frame {
            Frame::Seq {
                items,
                span,
                anchor,
            } => {
                let span = if span.len == 0 {
                    items.first().map_or(span, |i| i.span)
                } else {
                    span
                };
                self.complete(
                    Node {
                        value: NodeValue::Seq(items),
                        span,
                    },
                    anchor,
                )
            }
            Frame::Map {
                entries,
                merges,
                span,
                anchor,
                ..
            } => {
                let entries = merge(entries, &merges)?;
                let span = if span.len == 0 {
                    entries.first().map_or(span, |(k, _)| k.span)
                } else {
                    span
                };
                self.complete(
                    Node {
                        value: NodeValue::Map(entries),
                        span,
                    },
                    anchor,
                )
            }
        }
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), ParseError> {
        self.aliases += 1;
        if self.aliases > MAX_ALIASES {
            return Err(alias_bomb(span));
        }
        let Some(target) = self.anchors.get(&id) else {
            return Err(error(
                "yaml::syntax",
                "alias to an unknown anchor",
                Some(span),
                None,
            ));
        };
        let mut copy = target.clone();
        copy.span = span;
        // Expanded copies count against the node budget: this is what stops an alias bomb.
        self.count(count_nodes(&copy), span)
            .map_err(|_| alias_bomb(span))?;
        self.attach(copy)
    }

    /// Records a finished node: remembers it under its anchor, then attaches it.
    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), ParseError> {
        self.count(1, node.span)?;
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        self.attach(node)
    }

    fn count(&mut self, nodes: usize, span: Span) -> Result<(), ParseError> {
        self.nodes += nodes;
        if self.nodes > MAX_NODES {
            return Err(error(
                "yaml::budget",
                &format!("document has more than {MAX_NODES} nodes"),
                Some(span),
                None,
            ));
        }
        Ok(())
    }

    fn attach(&mut self, node: Node) -> Result<(), ParseError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                key,
                merges,
                seen,
                ..
            }) => match key.take() {
                None => {
                    check_duplicate(entries, seen, &node)?;
                    *key = Some(node);
                    Ok(())
                }
                Some(k) => {
                    if k.as_str() == Some("<<") && is_plain_merge_key(&k) {
                        merges.push(entries.len());
                    }
                    entries.push((k, node));
                    Ok(())
                }
            },
        }
    }
}

/// A `<<` key counts as a merge key; quoting it (`"<<"`) makes it an ordinary key.
/// The span of a plain `<<` is exactly two bytes long.
fn is_plain_merge_key(key: &Node) -> bool {
    key.span.len == 2
}

fn check_duplicate(
    entries: &[(Node, Node)],
    seen: &mut Option<HashSet<String>>,
    key: &Node,
) -> Result<(), ParseError> {
    let text = key.key_text();
    let duplicate = match seen {
        Some(set) => !set.insert(text.clone()),
        None => {
            let found = entries.iter().any(|(k, _)| k.value == key.value);
            if entries.len() >= LINEAR_KEY_CHECK {
                *seen = Some(
                    entries
                        .iter()
                        .map(|(k, _)| k.key_text())
                        .chain([text.clone()])
                        .collect(),
                );
            }
            found
        }
    };
    if duplicate && text != "<<" {
        return Err(error(
            "yaml::duplicate-key",
            &format!("duplicate mapping key: {text}"),
            Some(key.span),
            Some("each key may appear once in a mapping"),
        ));
    }
    Ok(())
}

/// Applies `<<` merge keys: entries of the merged mappings not given explicitly.
fn merge(entries: Vec<(Node, Node)>, merges: &[usize]) -> Result<Vec<(Node, Node)>, ParseError> {
    if merges.is_empty() {
        return Ok(entries);
    }
    let mut own = Vec::with_capacity(entries.len());
    let mut sources = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        if merges.contains(&index) {
            sources.push(entry.1);
        } else {
            own.push(entry);
        }
    }
    for source in sources {
        let maps: Vec<Node> = match source.value {
            NodeValue::Map(_) => vec![source],
            NodeValue::Seq(items) if items.iter().all(|i| matches!(i.value, NodeValue::Map(_))) => {
                items
            }
            _ => {
                return Err(error(
                    "yaml::syntax",
                    "a merge key `<<` takes a mapping or a list of mappings",
                    Some(source.span),
                    None,
                ));
            }
        };
        for map in maps {
            if let NodeValue::Map(merged) = map.value {
                for (key, value) in merged {
                    if !own.iter().any(|(k, _)| k.value == key.value) {
                        own.push((key, value));
                    }
                }
            }
        }
    }
    Ok(own)
}

fn count_nodes(node: &Node) -> usize {
    let mut count = 0;
    node.walk(&mut |_| count += 1);
    count
}

fn alias_bomb(span: Span) -> ParseError {
    error(
        "yaml::budget",
        "too many alias expansions (an alias bomb?)",
        Some(span),
        Some("anchors and aliases may be used, but not to multiply a document"),
    )
}

/// The value of a scalar by the YAML 1.2 core schema and its tag.
fn resolve(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    span: Span,
) -> Result<NodeValue, ParseError> {
    if let Some(tag) = tag {
        return resolve_tagged(text, tag, span);
    }
    if style != ScalarStyle::Plain {
        return Ok(NodeValue::String(text.to_owned()));
    }
    Ok(resolve_plain(text))
}

fn resolve_plain(text: &str) -> NodeValue {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return NodeValue::Null,
        "true" | "True" | "TRUE" => return NodeValue::Bool(true),
        "false" | "False" | "FALSE" => return NodeValue::Bool(false),
        _ => {}
    }
    if let Some(number) = resolve_number(text) {
        return number;
    }
    NodeValue::String(text.to_owned())
}

fn resolve_number(text: &str) -> Option<NodeValue> {
    let first = text.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let negative = text.starts_with('-');
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Some(match text.parse::<i64>() {
            Ok(i) => NodeValue::Int(i),
            // Too large for 64 bits: kept as a float so the loader can flag it where it stands.
            Err(_) => NodeValue::Float(text.parse::<f64>().unwrap_or(f64::INFINITY)),
        });
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return i64::from_str_radix(octal, 8).ok().map(NodeValue::Int);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(NodeValue::Int);
    }
    match unsigned {
        ".inf" | ".Inf" | ".INF" => {
            return Some(NodeValue::Float(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }));
        }
        ".nan" | ".NaN" | ".NAN" if unsigned.len() == text.len() => {
            return Some(NodeValue::Float(f64::NAN));
        }
        _ => {}
    }
    is_core_float(unsigned)
        .then(|| text.parse::<f64>().ok())
        .flatten()
        .map(NodeValue::Float)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_core_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match fraction {
        Some(f) => digits(whole) && digits(f) && !(whole.is_empty() && f.is_empty()),
        None => !whole.is_empty() && digits(whole),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn resolve_tagged(text: &str, tag: &Tag, span: Span) -> Result<NodeValue, ParseError> {
    let wrong = |kind: &str| {
        error(
            "yaml::tag",
            &format!(
                "`{text}` is not a valid {kind} for its tag `{}`",
                tag.original()
            ),
            Some(span),
            None,
        )
    };
    match tag.core_suffix() {
        Some("str") => Ok(NodeValue::String(text.to_owned())),
        Some("null") => match resolve_plain(text) {
            NodeValue::Null => Ok(NodeValue::Null),
            _ => Err(wrong("null")),
        },
        Some("bool") => match resolve_plain(text) {
            value @ NodeValue::Bool(_) => Ok(value),
            _ => Err(wrong("boolean")),
        },
        Some("int") => match resolve_number(text) {
            Some(value @ NodeValue::Int(_)) => Ok(value),
            _ => Err(wrong("integer")),
        },
        Some("float") => match resolve_number(text) {
            Some(NodeValue::Int(i)) => Ok(NodeValue::Float(i as f64)),
            Some(value @ NodeValue::Float(_)) => Ok(value),
            _ => Err(wrong("number")),
        },
        _ => Err(unsupported_tag(tag, span)),
    }
}

fn reject_collection_tag(tag: Option<&Tag>, expected: &str, span: Span) -> Result<(), ParseError> {
    match tag {
        None => Ok(()),
        Some(tag) if tag.core_suffix() == Some(expected) => Ok(()),
        Some(tag) => Err(unsupported_tag(tag, span)),
    }
}

fn unsupported_tag(tag: &Tag, span: Span) -> ParseError {
    error(
        "yaml::tag",
        &format!("unsupported tag `{}`", tag.original()),
        Some(span),
        Some("runsheet reads plain YAML; secrets come from `{{ secret('NAME') }}`, not from tags"),
    )
}

fn error(code: &'static str, message: &str, span: Option<Span>, help: Option<&str>) -> ParseError {
    ParseError {
        message: message.to_owned(),
        span,
        help: help.map(str::to_owned),
        code,
    }
}

fn scan_error(error: &ScanError, text: &str) -> ParseError {
    let marker = error.marker();
    let offset = marker
        .byte_offset()
        .unwrap_or_else(|| char_to_byte(text, marker.index()))
        .min(text.len());
    let info = error.info();
    let (code, message) = if info.contains("recursion limit") {
        (
            "yaml::budget",
            format!("document is nested deeper than {MAX_DEPTH} levels"),
        )
    } else if info.contains("UTF-8") {
        ("yaml::encoding", info)
    } else {
        ("yaml::syntax", info)
    };
    ParseError {
        message,
        span: Some(Span::new(offset, 0)),
        help: None,
        code,
    }
}

fn byte_span(span: &serde_saphyr::granit_parser::Span, text: &str) -> Span {
    let start = span
        .start
        .byte_offset()
        .unwrap_or_else(|| char_to_byte(text, span.start.index()))
        .min(text.len());
    let end = span
        .end
        .byte_offset()
        .unwrap_or_else(|| char_to_byte(text, span.end.index()))
        .clamp(start, text.len());
    Span::new(start, end - start)
}

fn char_to_byte(text: &str, index: usize) -> usize {
    text.char_indices()
        .nth(index)
        .map_or(text.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Result<NodeValue, ParseError> {
        build(&format!("v: {text}\n"))
            .map(|root| root.get("v").map_or(NodeValue::Null, |n| n.value.clone()))
    }

    #[test]
    fn core_schema_scalars() -> Result<(), ParseError> {
        assert_eq!(value("12")?, NodeValue::Int(12));
        assert_eq!(value("-3")?, NodeValue::Int(-3));
        assert_eq!(value("0o17")?, NodeValue::Int(15));
        assert_eq!(value("0x1f")?, NodeValue::Int(31));
        assert_eq!(value("1.5")?, NodeValue::Float(1.5));
        assert_eq!(value("1e3")?, NodeValue::Float(1000.0));
        assert_eq!(value("'12'")?, NodeValue::String("12".into()));
        assert_eq!(value("yes")?, NodeValue::String("yes".into()));
        assert_eq!(value("~")?, NodeValue::Null);
        assert_eq!(value("TRUE")?, NodeValue::Bool(true));
        assert_eq!(value("1.2.3")?, NodeValue::String("1.2.3".into()));
        assert_eq!(value("07")?, NodeValue::Int(7));
        assert_eq!(value("!!str 12")?, NodeValue::String("12".into()));
        assert_eq!(value("-.inf")?, NodeValue::Float(f64::NEG_INFINITY));
        Ok(())
    }

    #[test]
    fn unknown_tags_are_refused() {
        assert_eq!(value("!vault abc").err().map(|e| e.code), Some("yaml::tag"));
    }

    #[test]
    fn aliases_copy_and_merge_keys_merge() -> Result<(), ParseError> {
        let root = build("base: &b {x: 1, y: 2}\nother: {<<: *b, y: 3}\nagain: *b\n")?;
        let other = root.get("other").map(Node::to_json);
        assert_eq!(other, Some(serde_json::json!({"y": 3, "x": 1})));
        assert_eq!(
            root.get("again").map(Node::to_json),
            Some(serde_json::json!({"x": 1, "y": 2}))
        );
        Ok(())
    }

    #[test]
    fn quoted_merge_key_is_an_ordinary_key() -> Result<(), ParseError> {
        let root = build("m: {\"<<\": 1}\n")?;
        assert_eq!(
            root.get("m").map(Node::to_json),
            Some(serde_json::json!({"<<": 1}))
        );
        Ok(())
    }

    #[test]
    fn duplicate_keys_in_large_mappings() {
        let mut text = String::new();
        for i in 0..40 {
            text.push_str(&format!("k{i}: {i}\n"));
        }
        text.push_str("k7: again\n");
        assert_eq!(
            build(&text).err().map(|e| e.code),
            Some("yaml::duplicate-key")
        );
    }

    #[test]
    fn deep_flow_nesting_is_a_budget_error() {
        let text = format!("a: {}", "[".repeat(100_000));
        assert_eq!(build(&text).err().map(|e| e.code), Some("yaml::budget"));
    }

    #[test]
    fn second_document_is_refused() {
        assert_eq!(
            build("a: 1\n---\nb: 2\n").err().map(|e| e.code),
            Some("yaml::multiple-documents")
        );
    }
}
