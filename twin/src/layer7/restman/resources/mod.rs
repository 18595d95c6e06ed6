//! Entities as restman resources: each kind's element, bundle type, collection path,
//! and its conversion to and from XML. Main trait: [`Resource`].

mod config;
mod policies;
mod security;

use super::xml::Element;
use crate::layer7::store::{Entity, Properties, PropertyValue, Store, Stored};

pub use security::{key_chain_elements, key_from_creation_context};

/// A resource the request body does not describe acceptably (400 `InvalidResource`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResourceError(pub String);

/// What a resource element says: its id and version attributes and the entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    /// The `id` attribute.
    pub id: Option<String>,
    /// The `version` attribute.
    pub version: Option<u64>,
    /// The entity.
    pub entity: T,
}

/// An entity kind as restman shows it.
pub trait Resource: Entity {
    /// The resource element's local name (`Service`).
    const ELEMENT: &'static str;
    /// The bundle and Item type (`SERVICE`).
    const TYPE: &'static str;
    /// The collection under `/restman/1.0/` (`services`).
    const COLLECTION: &'static str;
    /// List filters accepted besides `name` (query parameter, natural-key field).
    const FILTERS: &'static [(&'static str, &'static str)] = &[];

    /// The resource element of `stored`.
    fn to_xml(stored: &Stored<Self>, store: &Store) -> Element;

    /// The entity an element describes; `id` is where it will be stored when known.
    fn from_xml(element: &Element, id: Option<&str>) -> Result<Parsed<Self>, ResourceError>;

    /// Keeps what restman never shows (a key's private half, a password, a service's
    /// guid) from the entity this one replaces, when the request left it out.
    fn keep_hidden(&mut self, _previous: &Self) {}

    /// Refuses a new entity that lacks what only creation can give (a password, a key).
    fn check_new(&self) -> Result<(), ResourceError> {
        Ok(())
    }
}

/// The `version` attribute of an element, when given.
pub(crate) fn version_of(element: &Element) -> Result<Option<u64>, ResourceError> {
    element
        .attribute("version")
        .map(|version| {
            version
                .trim()
                .parse::<u64>()
                .map_err(|_| ResourceError(format!("invalid version attribute '{version}'")))
        })
        .transpose()
}

/// The required child text `name` of `element`.
pub(crate) fn required<'a>(element: &'a Element, name: &str) -> Result<&'a str, ResourceError> {
    element
        .child_text(name)
        .ok_or_else(|| ResourceError(format!("l7:{} is missing l7:{name}", element.local_name())))
}

/// A boolean child text (`true`/`false`), `default` when absent.
pub(crate) fn flag(element: &Element, name: &str, default: bool) -> Result<bool, ResourceError> {
    match element.child_text(name) {
        None => Ok(default),
        Some(text) => parse_bool(text).ok_or_else(|| {
            ResourceError(format!("l7:{name}: expected true or false, got '{text}'"))
        }),
    }
}

/// `true`/`false`.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The `l7:Properties` of `element`, as typed values.
pub(crate) fn properties(element: &Element) -> Result<Properties, ResourceError> {
    let mut read = Properties::new();
    let Some(list) = element.find("Properties") else {
        return Ok(read);
    };
    for property in list.find_all("Property") {
        let key = property
            .attribute("key")
            .ok_or_else(|| ResourceError("l7:Property without a key".to_owned()))?;
        let value = property_value(property)
            .ok_or_else(|| ResourceError(format!("property '{key}' has no valid value")))?;
        read.insert(key.to_owned(), value);
    }
    Ok(read)
}

/// The typed value inside an `l7:Property`.
fn property_value(property: &Element) -> Option<PropertyValue> {
    let value = property.children.first()?;
    let text = value.text.trim();
    Some(match value.local_name() {
        "StringValue" => PropertyValue::String(value.text.clone()),
        "BooleanValue" => PropertyValue::Boolean(parse_bool(text)?),
        "IntegerValue" | "IntValue" => PropertyValue::Integer(text.parse().ok()?),
        "LongValue" => PropertyValue::Long(text.parse().ok()?),
        _ => return None,
    })
}

/// An `l7:Property` element.
pub(crate) fn property(key: &str, value: &PropertyValue) -> Element {
    let (name, text) = match value {
        PropertyValue::String(text) => ("l7:StringValue", text.clone()),
        PropertyValue::Boolean(flag) => ("l7:BooleanValue", flag.to_string()),
        PropertyValue::Integer(number) => ("l7:IntegerValue", number.to_string()),
        PropertyValue::Long(number) => ("l7:LongValue", number.to_string()),
    };
    Element::new("l7:Property")
        .attr("key", key)
        .child(Element::text(name, text))
}

/// An `l7:Properties` element of `entries`, `None` when there are none.
pub(crate) fn properties_element<'a>(
    entries: impl IntoIterator<Item = (&'a str, PropertyValue)>,
) -> Option<Element> {
    let children: Vec<Element> = entries
        .into_iter()
        .map(|(key, value)| property(key, &value))
        .collect();
    (!children.is_empty()).then(|| Element::new("l7:Properties").children(children))
}

/// Takes property `key` out of `properties` as a boolean, `default` when absent.
pub(crate) fn take_bool(
    properties: &mut Properties,
    key: &str,
    default: bool,
) -> Result<bool, ResourceError> {
    match properties.remove(key) {
        None => Ok(default),
        Some(PropertyValue::Boolean(flag)) => Ok(flag),
        Some(PropertyValue::String(text)) => parse_bool(&text)
            .ok_or_else(|| ResourceError(format!("property '{key}': expected a boolean"))),
        Some(_) => Err(ResourceError(format!(
            "property '{key}': expected a boolean"
        ))),
    }
}

/// Takes property `key` out of `properties` as text.
pub(crate) fn take_text(properties: &mut Properties, key: &str) -> Option<String> {
    properties.remove(key).map(|value| value.as_text())
}

/// A list of `l7:StringValue` children of child `name`.
pub(crate) fn string_values(element: &Element, name: &str) -> Vec<String> {
    element
        .find(name)
        .map(|list| {
            list.find_all("StringValue")
                .map(|value| value.text.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// An element holding `values` as `l7:StringValue` children.
pub(crate) fn string_values_element(name: &str, values: &[String]) -> Element {
    Element::new(name).children(
        values
            .iter()
            .map(|value| Element::text("l7:StringValue", value)),
    )
}

/// The id from the element's `id` attribute, else `id`.
pub(crate) fn id_of(element: &Element, id: Option<&str>) -> Option<String> {
    element
        .attribute("id")
        .map(str::to_owned)
        .or_else(|| id.map(str::to_owned))
}
