//! Reading typed values out of a [`Node`] tree with serde, keeping positions.
//!
//! [`from_node`] drives any `Deserialize` type over a node; an error carries the
//! span of the innermost node that caused it and, for an unknown key, the
//! nearest known one. [`Spanned`] captures a value's span and a field of type
//! [`Node`] keeps the raw subtree (for action arguments checked later).

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};

use schemars::JsonSchema;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::node::{Node, NodeValue};
use crate::source::Span;
use crate::suggest::did_you_mean;

const SPANNED_TOKEN: &str = "$runsheet::Spanned";
const NODE_TOKEN: &str = "$runsheet::Node";

thread_local! {
    static CAPTURED_SPAN: RefCell<Option<Span>> = const { RefCell::new(None) };
    static CAPTURED_NODE: RefCell<Option<Node>> = const { RefCell::new(None) };
}

/// Reads a `T` from a node.
pub fn from_node<'a, T: Deserialize<'a>>(node: &'a Node) -> Result<T, DeError> {
    T::deserialize(NodeDeserializer { node })
}

/// Why a node could not be read as the expected type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// The innermost node the error belongs to.
    pub span: Option<Span>,
    /// A suggestion, such as the nearest valid key.
    pub help: Option<String>,
    /// The kind of problem.
    pub kind: DeErrorKind,
}

/// Kinds of [`DeError`], for diagnostics codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeErrorKind {
    /// A key the type does not know.
    UnknownKey,
    /// A key the type requires is absent.
    MissingKey,
    /// A value of the wrong type.
    WrongType,
    /// A value of the right type but not allowed.
    InvalidValue,
}

impl DeError {
    fn at(mut self, span: Span) -> Self {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            span: None,
            help: None,
            kind: DeErrorKind::InvalidValue,
        }
    }

    fn invalid_type(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        DeError {
            message: format!(
                "expected {}, found {}",
                expected_phrase(expected),
                unexpected_phrase(&unexpected)
            ),
            span: None,
            help: None,
            kind: DeErrorKind::WrongType,
        }
    }

    fn invalid_value(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        DeError {
            message: format!(
                "invalid value {}, expected {}",
                unexpected_phrase(&unexpected),
                expected_phrase(expected)
            ),
            span: None,
            help: None,
            kind: DeErrorKind::InvalidValue,
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            message: format!(
                "unknown value `{variant}`, expected one of {}",
                one_of(expected)
            ),
            span: None,
            help: did_you_mean(variant, expected.iter().copied()),
            kind: DeErrorKind::InvalidValue,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let help = did_you_mean(field, expected.iter().copied()).or_else(|| {
            (!expected.is_empty()).then(|| format!("known keys: {}", expected.join(", ")))
        });
        DeError {
            message: format!("unknown key `{field}`"),
            span: None,
            help,
            kind: DeErrorKind::UnknownKey,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            message: format!("missing required key `{field}`"),
            span: None,
            help: None,
            kind: DeErrorKind::MissingKey,
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::custom(format!("key `{field}` appears twice"))
    }
}

fn one_of(expected: &[&str]) -> String {
    expected
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Turns serde's Rust-flavoured expectations ("u32") into words a YAML author knows.
fn expected_phrase(expected: &dyn de::Expected) -> String {
    let text = expected.to_string();
    match text.as_str() {
        "u8" => "an integer from 0 to 255".into(),
        "u16" => "an integer from 0 to 65535".into(),
        "u32" => "an integer from 0 to 4294967295".into(),
        "u64" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "`true` or `false`".into(),
        "a string" | "a borrowed string" => "a string".into(),
        _ if text.starts_with("struct ") => "a mapping".into(),
        _ if text.starts_with("a sequence") => "a list".into(),
        _ if text.starts_with("a map") => "a mapping".into(),
        _ => text,
    }
}

fn unexpected_phrase(unexpected: &de::Unexpected<'_>) -> String {
    match unexpected {
        de::Unexpected::Str(s) => format!("the string {s:?}"),
        de::Unexpected::Signed(i) => format!("the integer {i}"),
        de::Unexpected::Unsigned(i) => format!("the integer {i}"),
        de::Unexpected::Float(f) => format!("the number {f}"),
        de::Unexpected::Bool(b) => format!("`{b}`"),
        de::Unexpected::Unit => "null".into(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

/// A value and the span of the node it was read from.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written (empty for values built by code).
    #[serde(skip)]
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Pairs a value with its span.
    pub const fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T: Hash> Hash for Spanned<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl Borrow<str> for Spanned<String> {
    fn borrow(&self) -> &str {
        &self.value
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Self::Value, D::Error> {
                let span = CAPTURED_SPAN
                    .with(|c| c.borrow_mut().take())
                    .unwrap_or_default();
                T::deserialize(deserializer).map(|value| Spanned { value, span })
            }
        }
        deserializer
            .deserialize_newtype_struct(SPANNED_TOKEN, SpannedVisitor(std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a document node")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                CAPTURED_NODE
                    .with(|c| c.borrow_mut().take())
                    .ok_or_else(|| {
                        E::custom("a document node can only be read from a loaded document")
                    })
            }
        }
        deserializer.deserialize_newtype_struct(NODE_TOKEN, NodeVisitor)
    }
}

impl JsonSchema for Node {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AnyValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::from(true)
    }
}

#[derive(Clone, Copy)]
struct NodeDeserializer<'a> {
    node: &'a Node,
}

impl<'a> NodeDeserializer<'a> {
    fn invalid_type(&self, expected: &dyn de::Expected) -> DeError {
        let unexpected = match &self.node.value {
            NodeValue::Null => de::Unexpected::Unit,
            NodeValue::Bool(b) => de::Unexpected::Bool(*b),
            NodeValue::Int(i) => de::Unexpected::Signed(*i),
            NodeValue::Float(f) => de::Unexpected::Float(*f),
            NodeValue::String(s) => de::Unexpected::Str(s),
            NodeValue::Seq(_) => de::Unexpected::Seq,
            NodeValue::Map(_) => de::Unexpected::Map,
        };
        <DeError as de::Error>::invalid_type(unexpected, expected).at(self.node.span)
    }
}

impl<'de, 'a: 'de> Deserializer<'de> for NodeDeserializer<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let result = match &self.node.value {
            NodeValue::Null => visitor.visit_unit(),
            NodeValue::Bool(b) => visitor.visit_bool(*b),
            NodeValue::Int(i) => visitor.visit_i64(*i),
            NodeValue::Float(f) => visitor.visit_f64(*f),
            NodeValue::String(s) => visitor.visit_borrowed_str(s),
            NodeValue::Seq(items) => visitor.visit_seq(SeqReader {
                items: items.iter(),
            }),
            NodeValue::Map(entries) => visitor.visit_map(MapReader {
                entries: entries.iter(),
                value: None,
            }),
        };
        result.map_err(|e| e.at(span))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            NodeValue::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match name {
            SPANNED_TOKEN => {
                CAPTURED_SPAN.with(|c| *c.borrow_mut() = Some(self.node.span));
                visitor.visit_newtype_struct(self)
            }
            NODE_TOKEN => {
                CAPTURED_NODE.with(|c| *c.borrow_mut() = Some(self.node.clone()));
                visitor.visit_unit()
            }
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = self.node.span;
        match &self.node.value {
            NodeValue::String(s) => visitor
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: DeError| e.at(span)),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            NodeValue::Null => visitor.visit_unit(),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            NodeValue::String(s) => visitor
                .visit_borrowed_str(s)
                .map_err(|e: DeError| e.at(self.node.span)),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            NodeValue::Seq(_) => self.deserialize_any(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            NodeValue::Map(_) => self.deserialize_any(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit_struct tuple tuple_struct ignored_any
    }
}

struct SeqReader<'a> {
    items: std::slice::Iter<'a, Node>,
}

impl<'de, 'a: 'de> de::SeqAccess<'de> for SeqReader<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed
                .deserialize(NodeDeserializer { node })
                .map(Some)
                .map_err(|e| e.at(node.span)),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapReader<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de, 'a: 'de> de::MapAccess<'de> for MapReader<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(NodeDeserializer { node: key })
                    .map(Some)
                    .map_err(|e| e.at(key.span))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(node) => seed
                .deserialize(NodeDeserializer { node })
                .map_err(|e| e.at(node.span)),
            None => Err(de::Error::custom("a mapping value was read before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::parse;
    use crate::source::SourceFile;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: Spanned<String>,
        #[serde(default)]
        count: u32,
        #[serde(default)]
        raw: Option<Node>,
    }

    fn read(text: &str) -> Result<Sample, DeError> {
        let file = SourceFile::new("t", text);
        let node = parse(&file).map_err(|e| <DeError as de::Error>::custom(e.message))?;
        from_node(&node)
    }

    #[test]
    fn spanned_captures_position() -> Result<(), DeError> {
        let sample = read("count: 2\nname: abc\n")?;
        assert_eq!(
            (sample.name.value.as_str(), sample.name.span),
            ("abc", Span::new(15, 3))
        );
        assert_eq!(sample.count, 2);
        Ok(())
    }

    #[test]
    fn raw_node_is_kept() -> Result<(), DeError> {
        let sample = read("name: a\nraw: {x: [1, 2]}\n")?;
        let raw = sample.raw.map(|n| n.to_json());
        assert_eq!(raw, Some(serde_json::json!({"x": [1, 2]})));
        Ok(())
    }

    #[test]
    fn unknown_key_points_at_key_and_suggests() {
        let err = read("name: a\ncuont: 1\n").err();
        let err = err.map(|e| (e.kind, e.span, e.help));
        assert_eq!(
            err,
            Some((
                DeErrorKind::UnknownKey,
                Some(Span::new(8, 5)),
                Some("did you mean `count`?".into())
            ))
        );
    }

    #[test]
    fn wrong_type_points_at_value() {
        let err = read("name: a\ncount: lots\n").err();
        assert_eq!(
            err.map(|e| (e.message, e.span)),
            Some((
                "expected an integer from 0 to 4294967295, found the string \"lots\"".into(),
                Some(Span::new(15, 4))
            ))
        );
    }

    #[test]
    fn missing_key_is_reported() {
        let err = read("count: 1\n").err();
        assert_eq!(err.map(|e| e.kind), Some(DeErrorKind::MissingKey));
    }
}
