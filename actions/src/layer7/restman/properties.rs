//! `<l7:Properties>`: the key/value list most restman resources carry
//! ([`Properties`]), each value typed ([`PropertyValue`]).

use serde::{Deserialize, Serialize};

/// `<l7:Properties>`: `l7:Property` elements, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Properties {
    /// The properties.
    #[serde(rename(serialize = "l7:Property", deserialize = "Property"), default)]
    pub entries: Vec<Property>,
}

/// `<l7:Property key="..">` with one typed value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Property {
    /// The key (`policyRevision`, `FailOnNew`).
    #[serde(rename = "@key")]
    pub key: String,
    /// The value.
    #[serde(rename = "$value")]
    pub value: PropertyValue,
}

/// A property's value, by its element.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub enum PropertyValue {
    /// `l7:StringValue`.
    #[serde(rename(serialize = "l7:StringValue", deserialize = "StringValue"))]
    String(String),
    /// `l7:BooleanValue`.
    #[serde(rename(serialize = "l7:BooleanValue", deserialize = "BooleanValue"))]
    Boolean(bool),
    /// `l7:IntegerValue` (also read as `l7:IntValue`).
    #[serde(
        rename(serialize = "l7:IntegerValue", deserialize = "IntegerValue"),
        alias = "IntValue"
    )]
    Integer(i64),
    /// `l7:LongValue`.
    #[serde(rename(serialize = "l7:LongValue", deserialize = "LongValue"))]
    Long(i64),
}

impl PropertyValue {
    /// The value as text, as the gateway writes it.
    pub fn as_text(&self) -> String {
        match self {
            PropertyValue::String(text) => text.clone(),
            PropertyValue::Boolean(flag) => flag.to_string(),
            PropertyValue::Integer(number) | PropertyValue::Long(number) => number.to_string(),
        }
    }

    /// The value as a boolean: a `BooleanValue`, or a `StringValue` of `true`/`false`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            PropertyValue::Boolean(flag) => Some(*flag),
            PropertyValue::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as a number: an `IntegerValue`, `LongValue` or a numeric `StringValue`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            PropertyValue::Integer(number) | PropertyValue::Long(number) => Some(*number),
            PropertyValue::String(text) => text.trim().parse().ok(),
            PropertyValue::Boolean(_) => None,
        }
    }
}

impl Properties {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&PropertyValue> {
        self.entries
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| &entry.value)
    }

    /// Sets `key` (replacing its value in place, or appending it).
    pub fn set(&mut self, key: &str, value: PropertyValue) {
        match self.entries.iter_mut().find(|entry| entry.key == key) {
            Some(entry) => entry.value = value,
            None => self.entries.push(Property {
                key: key.to_owned(),
                value,
            }),
        }
    }

    /// Removes `key`; whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|entry| entry.key != key);
        self.entries.len() != before
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether optional properties are absent or empty (they are then not written).
pub fn no_properties(properties: &Option<Properties>) -> bool {
    properties.as_ref().is_none_or(Properties::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer7::restman::xml::from_document;

    #[test]
    fn reads_every_value_type() -> Result<(), quick_xml::DeError> {
        let properties: Properties = from_document(
            r#"<l7:Properties xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management">
                <l7:Property key="policyRevision"><l7:LongValue>2</l7:LongValue></l7:Property>
                <l7:Property key="soap"><l7:BooleanValue>false</l7:BooleanValue></l7:Property>
                <l7:Property key="rsaKeySize"><l7:IntegerValue>2048</l7:IntegerValue></l7:Property>
                <l7:Property key="old"><l7:IntValue>7</l7:IntValue></l7:Property>
                <l7:Property key="useExtendedFtpCommandSet"><l7:StringValue>false</l7:StringValue></l7:Property>
            </l7:Properties>"#,
        )?;
        assert_eq!(
            properties.get("policyRevision"),
            Some(&PropertyValue::Long(2))
        );
        assert_eq!(
            properties.get("soap").and_then(PropertyValue::as_bool),
            Some(false)
        );
        assert_eq!(
            properties.get("rsaKeySize"),
            Some(&PropertyValue::Integer(2048))
        );
        assert_eq!(
            properties.get("old").and_then(PropertyValue::as_i64),
            Some(7)
        );
        assert_eq!(
            properties
                .get("useExtendedFtpCommandSet")
                .and_then(PropertyValue::as_bool),
            Some(false)
        );
        assert_eq!(properties.get("missing"), None);
        Ok(())
    }

    #[test]
    fn set_replaces_in_place_and_remove_removes() {
        let mut properties = Properties::default();
        properties.set("a", PropertyValue::Long(1));
        properties.set("b", PropertyValue::Boolean(true));
        properties.set("a", PropertyValue::Long(2));
        let keys: Vec<&str> = properties.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(properties.get("a"), Some(&PropertyValue::Long(2)));
        assert!(properties.remove("a"));
        assert!(!properties.remove("a"));
        assert!(!no_properties(&Some(properties)));
        assert!(no_properties(&None));
    }
}
