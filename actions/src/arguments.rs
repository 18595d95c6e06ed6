//! Argument shapes shared by several action types: [`NoArguments`], [`OneOrMany`]
//! and [`Presence`]; [`parse`], which reads rendered arguments, and [`undo_record`],
//! which reads an undo record back from the journal.

use std::borrow::Cow;
use std::marker::PhantomData;

use runsheet_engine::ActionError;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Reads an action's rendered arguments into its argument struct.
pub fn parse<A: DeserializeOwned>(
    action: &'static str,
    arguments: serde_json::Value,
) -> Result<A, ActionError> {
    serde_json::from_value(arguments).map_err(|error| ActionError::InvalidArguments {
        action,
        message: error.to_string(),
    })
}

/// Reads an action's undo record, as its apply wrote it to the journal.
pub fn undo_record<R: DeserializeOwned>(
    action: &str,
    undo: serde_json::Value,
) -> Result<R, ActionError> {
    serde_json::from_value(undo)
        .map_err(|error| ActionError::failed(format!("{action}: unreadable undo record: {error}")))
}

/// The arguments of an action that takes none: `with:` is empty.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}

/// Whether an entity must exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// It must exist, as described.
    #[default]
    Present,
    /// It must not exist.
    Absent,
}

/// One value or a non-empty list of them, written `200` or `[200, 204]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> OneOrMany<T> {
    /// Exactly one value.
    pub fn one(value: T) -> Self {
        Self(vec![value])
    }

    /// The values, in the order written.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

/// Reads a single value through `T`, or a sequence of them.
struct OneOrManyVisitor<T>(PhantomData<T>);

impl<T> OneOrManyVisitor<T> {
    fn single<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OneOrMany<T>, D::Error>
    where
        T: Deserialize<'de>,
    {
        T::deserialize(deserializer).map(OneOrMany::one)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
    type Value = OneOrMany<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value or a non-empty list of values")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Self::single(v.into_deserializer())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Self::single(v.into_deserializer())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::single(v.into_deserializer())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Self::single(v.into_deserializer())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Self::single(v.into_deserializer())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Self::single(MapAccessDeserializer::new(map))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let values = Vec::<T>::deserialize(SeqAccessDeserializer::new(seq))?;
        if values.is_empty() {
            return Err(de::Error::invalid_length(0, &"at least one value"));
        }
        Ok(OneOrMany(values))
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("runsheet_actions::OneOrMany<{}>", T::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<T>();
        json_schema!({
            "anyOf": [
                item,
                {"type": "array", "items": item, "minItems": 1}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_one_value_or_a_list() -> Result<(), serde_json::Error> {
        let one: OneOrMany<u16> = serde_json::from_value(json!(200))?;
        assert_eq!(one.as_slice(), &[200]);
        let many: OneOrMany<u16> = serde_json::from_value(json!([200, 204]))?;
        assert_eq!(many.as_slice(), &[200, 204]);
        let text: OneOrMany<String> = serde_json::from_value(json!("a"))?;
        assert_eq!(text.as_slice(), &["a".to_owned()]);
        Ok(())
    }

    #[test]
    fn refuses_an_empty_list_and_wrong_items() {
        assert!(serde_json::from_value::<OneOrMany<u16>>(json!([])).is_err());
        assert!(serde_json::from_value::<OneOrMany<u16>>(json!("200")).is_err());
        assert!(serde_json::from_value::<OneOrMany<u8>>(json!(300)).is_err());
    }

    #[test]
    fn no_arguments_means_an_empty_map() {
        assert!(serde_json::from_value::<NoArguments>(json!({})).is_ok());
        assert!(serde_json::from_value::<NoArguments>(json!({"x": 1})).is_err());
    }
}

