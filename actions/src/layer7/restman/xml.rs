//! Restman's XML envelopes ([`Item`], [`List`], [`ErrorBody`]), the
//! [`RestmanEntity`] trait that ties an entity type to its collection and
//! element name, and reading and writing documents in the `l7` namespace.
//!
//! quick-xml's serde support matches elements and attributes by their local
//! name on reading (`l7:Name` and `Name` both read as `Name`) and writes names
//! as given. So every field is renamed twice: `l7:Name` when written, `Name`
//! when read. Written documents declare `xmlns:l7` on their root element, as
//! restman's own documents do.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// The namespace of restman documents.
pub const NAMESPACE: &str = "http://ns.l7tech.com/2010/04/gateway-management";

/// The prefix restman documents bind [`NAMESPACE`] to.
pub const PREFIX: &str = "l7";

/// An entity type restman manages as a collection (`/restman/1.0/<collection>`).
pub trait RestmanEntity: Serialize + DeserializeOwned {
    /// The collection's path segment (`services`).
    const COLLECTION: &'static str;
    /// The resource's element name, without prefix (`Service`).
    const ELEMENT: &'static str;
    /// The bundle and mapping type code (`SERVICE`).
    const TYPE: &'static str;
    /// The entity type in words, for messages (`service`).
    const NOUN: &'static str;

    /// The entity's name, when it has one.
    fn name(&self) -> Option<&str>;

    /// The entity's `version` attribute (optimistic-lock counter), when read from the gateway.
    fn version(&self) -> Option<u64>;
}

/// `<l7:Item>`: one entity (with its resource) or a reference to one (without).
#[derive(Debug, Clone, Deserialize)]
#[serde(bound(deserialize = "E: RestmanEntity"))]
pub struct Item<E> {
    /// `l7:Name`.
    #[serde(rename = "Name", default)]
    pub name: Option<String>,
    /// `l7:Id`: the entity's goid.
    #[serde(rename = "Id", default)]
    pub id: Option<String>,
    /// `l7:Type` (`SERVICE`).
    #[serde(rename = "Type", default)]
    pub kind: Option<String>,
    /// `l7:TimeStamp`.
    #[serde(rename = "TimeStamp", default)]
    pub time_stamp: Option<String>,
    /// `l7:Link` elements (`rel="self"`).
    #[serde(rename = "Link", default)]
    pub links: Vec<Link>,
    /// `l7:Resource`: the entity itself, when the item carries it.
    #[serde(rename = "Resource", default = "none")]
    pub resource: Option<Resource<E>>,
}

/// No resource.
fn none<T>() -> Option<T> {
    None
}

impl<E: RestmanEntity> Item<E> {
    /// The entity, if the item carries it.
    pub fn entity(&self) -> Option<&E> {
        self.resource.as_ref().map(|resource| &resource.entity)
    }

    /// The entity, taken out of the item.
    pub fn into_entity(self) -> Option<E> {
        self.resource.map(|resource| resource.entity)
    }
}

/// `<l7:Item>` that only references an entity (the answer to a create or update).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Reference {
    /// `l7:Name`.
    #[serde(rename = "Name", default)]
    pub name: Option<String>,
    /// `l7:Id`: the entity's goid (or `keystoreId:alias` for a private key).
    #[serde(rename = "Id", default)]
    pub id: Option<String>,
    /// `l7:Type`.
    #[serde(rename = "Type", default)]
    pub kind: Option<String>,
    /// `l7:Link` elements.
    #[serde(rename = "Link", default)]
    pub links: Vec<Link>,
}

impl Reference {
    /// The URI of the `self` link, when there is one.
    pub fn self_uri(&self) -> Option<&str> {
        self_uri(&self.links)
    }
}

/// `<l7:Link rel=".." uri=".."/>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Link {
    /// `rel` (`self`, `template`, `list`).
    #[serde(rename = "@rel", default)]
    pub rel: String,
    /// `uri`.
    #[serde(rename = "@uri", default)]
    pub uri: String,
}

/// The `self` link's URI among `links`.
fn self_uri(links: &[Link]) -> Option<&str> {
    links
        .iter()
        .find(|link| link.rel == "self")
        .map(|link| link.uri.as_str())
}

/// `<l7:Resource>` holding exactly the element of `E` (`l7:Service` for a service).
#[derive(Debug, Clone)]
pub struct Resource<E> {
    /// The entity.
    pub entity: E,
}

impl<'de, E: RestmanEntity> Deserialize<'de> for Resource<E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ResourceVisitor(PhantomData))
    }
}

/// Reads a `l7:Resource` and checks its child is `E`'s element.
struct ResourceVisitor<E>(PhantomData<E>);

impl<'de, E: RestmanEntity> Visitor<'de> for ResourceVisitor<E> {
    type Value = Resource<E>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an l7:Resource holding an l7:{}", E::ELEMENT)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entity = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == E::ELEMENT && entity.is_none() {
                entity = Some(map.next_value::<E>()?);
            } else if key.starts_with('@') {
                map.next_value::<de::IgnoredAny>()?;
            } else {
                return Err(de::Error::custom(format!(
                    "expected l7:{} in l7:Resource, found `{key}`",
                    E::ELEMENT
                )));
            }
        }
        entity
            .map(|entity| Resource { entity })
            .ok_or_else(|| de::Error::custom(format!("l7:Resource holds no l7:{}", E::ELEMENT)))
    }
}

/// `<l7:List>`: a collection's entities (no `l7:Item` when it is empty).
#[derive(Debug, Clone, Deserialize)]
#[serde(bound(deserialize = "E: RestmanEntity"))]
pub struct List<E> {
    /// `l7:Name` (`SERVICE List`).
    #[serde(rename = "Name", default)]
    pub name: Option<String>,
    /// `l7:Type` (`List`).
    #[serde(rename = "Type", default)]
    pub kind: Option<String>,
    /// The items, in the gateway's order.
    #[serde(rename = "Item", default = "Vec::new")]
    pub items: Vec<Item<E>>,
}

/// `<l7:Error>`: what restman says went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    /// `l7:Type` (`ResourceNotFound`, `InvalidResource`, `BadRequest`...).
    #[serde(rename = "Type", default)]
    pub kind: Option<String>,
    /// `l7:Detail`: the human text.
    #[serde(rename = "Detail", default)]
    pub detail: Option<String>,
}

/// Writes `value` as a document whose root is `l7:<element>` with `xmlns:l7` declared.
pub fn to_document<T: Serialize>(element: &str, value: &T) -> Result<String, quick_xml::SeError> {
    let root = format!("{PREFIX}:{element}");
    let body = quick_xml::se::to_string_with_root(&root, value)?;
    let rest = body.strip_prefix(&format!("<{root}")).unwrap_or(&body);
    Ok(format!("<{root} xmlns:{PREFIX}=\"{NAMESPACE}\"{rest}"))
}

/// Reads a document (any prefix; names are matched by local name).
pub fn from_document<T: DeserializeOwned>(xml: &str) -> Result<T, quick_xml::DeError> {
    quick_xml::de::from_str(xml)
}

/// The local name of the document's root element, if it has one.
pub fn root_element(xml: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(start) | quick_xml::events::Event::Empty(start)) => {
                return Some(String::from_utf8_lossy(start.local_name().as_ref()).into_owned());
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::entities::ClusterProperty;
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Section 1.2's Item, with a cluster property as its resource.
    const ITEM: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<l7:Item xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management">
    <l7:Name>io.httpsHostVerify</l7:Name>
    <l7:Id>8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7</l7:Id>
    <l7:Type>CLUSTER_PROPERTY</l7:Type>
    <l7:TimeStamp>2020-08-17T23:28:23.524Z</l7:TimeStamp>
    <l7:Link rel="self" uri="https://gw:8443/restman/1.0/clusterProperties/8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7"/>
    <l7:Resource>
        <l7:ClusterProperty id="8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7" version="3">
            <l7:Name>io.httpsHostVerify</l7:Name>
            <l7:Value>false</l7:Value>
        </l7:ClusterProperty>
    </l7:Resource>
</l7:Item>"#;

    #[test]
    fn reads_an_item_with_its_resource() -> TestResult {
        let item: Item<ClusterProperty> = from_document(ITEM)?;
        assert_eq!(item.kind.as_deref(), Some("CLUSTER_PROPERTY"));
        assert_eq!(item.links.len(), 1);
        let property = item.entity().ok_or("no resource")?;
        assert_eq!(property.name, "io.httpsHostVerify");
        assert_eq!(property.value, "false");
        assert_eq!(property.version, Some(3));
        Ok(())
    }

    #[test]
    fn refuses_an_item_holding_another_entity() {
        let service = ITEM.replace("l7:ClusterProperty", "l7:Service");
        let error = from_document::<Item<ClusterProperty>>(&service)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            matches!(&error, Err(message) if message.contains("expected l7:ClusterProperty in l7:Resource, found `Service`")),
            "{error:?}"
        );
    }

    fn list_of(items: usize) -> String {
        let item = ITEM
            .split_once("?>")
            .map(|(_, rest)| rest)
            .unwrap_or(ITEM)
            .replace(
                " xmlns:l7=\"http://ns.l7tech.com/2010/04/gateway-management\"",
                "",
            );
        format!(
            "<l7:List xmlns:l7=\"{NAMESPACE}\"><l7:Name>CLUSTER_PROPERTY List</l7:Name><l7:Type>List</l7:Type><l7:TimeStamp>2020-08-17T23:28:23.524Z</l7:TimeStamp><l7:Link rel=\"self\" uri=\"https://gw:8443/restman/1.0/clusterProperties\"/>{}</l7:List>",
            item.repeat(items)
        )
    }

    #[test]
    fn reads_lists_of_none_one_and_many() -> TestResult {
        for count in [0, 1, 3] {
            let list: List<ClusterProperty> = from_document(&list_of(count))?;
            assert_eq!(list.items.len(), count);
            assert_eq!(list.name.as_deref(), Some("CLUSTER_PROPERTY List"));
        }
        Ok(())
    }

    #[test]
    fn reads_an_error() -> TestResult {
        let error: ErrorBody = from_document(
            r#"<l7:Error xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:Type>ResourceNotFound</l7:Type><l7:TimeStamp>2020-08-17T23:28:23.524Z</l7:TimeStamp><l7:Link rel="self" uri="https://gw:8443/restman/1.0/services/x"/><l7:Detail>Resource not found {id=x}</l7:Detail></l7:Error>"#,
        )?;
        assert_eq!(error.kind.as_deref(), Some("ResourceNotFound"));
        assert_eq!(error.detail.as_deref(), Some("Resource not found {id=x}"));
        Ok(())
    }

    #[test]
    fn reads_a_reference_without_resource() -> TestResult {
        let reference: Reference = from_document(
            r#"<l7:Item xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:Name>a</l7:Name><l7:Id>abc</l7:Id><l7:Type>CLUSTER_PROPERTY</l7:Type><l7:TimeStamp/><l7:Link rel="self" uri="https://gw/restman/1.0/clusterProperties/abc"/></l7:Item>"#,
        )?;
        assert_eq!(reference.id.as_deref(), Some("abc"));
        assert_eq!(
            reference.self_uri(),
            Some("https://gw/restman/1.0/clusterProperties/abc")
        );
        Ok(())
    }

    #[test]
    fn writes_the_namespace_on_the_root_and_prefixes_every_element() -> TestResult {
        let property = ClusterProperty::new("a.b", "x < y & z");
        let xml = to_document(ClusterProperty::ELEMENT, &property)?;
        assert_eq!(
            xml,
            format!(
                "<l7:ClusterProperty xmlns:l7=\"{NAMESPACE}\"><l7:Name>a.b</l7:Name><l7:Value>x &lt; y &amp; z</l7:Value></l7:ClusterProperty>"
            )
        );
        assert_eq!(root_element(&xml).as_deref(), Some("ClusterProperty"));
        let back: ClusterProperty = from_document(&xml)?;
        assert_eq!(back, property);
        Ok(())
    }
}
