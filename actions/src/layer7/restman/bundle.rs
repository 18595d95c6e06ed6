//! Restman bundles (`l7:Bundle`): reading one out of any envelope, writing it
//! back, and preparing it for import ([`Bundle`]); the export query
//! ([`ExportQuery`]) and import options ([`ImportOptions`]).
//!
//! A bundle keeps each reference item's XML exactly as the gateway wrote it
//! ([`BundleItem::xml`]), so that entities this client does not model still
//! round-trip on import; only the item's header (type, id, name) and the
//! mappings are parsed.

use std::fmt;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::Deserialize;

use super::mapping::FAIL_ON_NEW;
pub use super::mapping::{
    ActionTaken, Mapping, MappingFailure, MappingResult, RestmanAction, restman_type,
};
use super::xml::{NAMESPACE, PREFIX};
use crate::layer7::arguments::{Layer7Mapping, MappingAction};
use crate::layer7::error::Layer7Error;

/// Why a document is not a usable bundle (or mapping list).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BundleError {
    /// What is wrong.
    pub reason: String,
}

impl BundleError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// What identifies a bundle item: its `l7:Type`, `l7:Id` and `l7:Name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemHeader {
    /// `l7:Type` (`SERVICE`).
    pub kind: String,
    /// `l7:Id`.
    pub id: String,
    /// `l7:Name`.
    pub name: String,
}

impl fmt::Display for ItemHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}` ({})", self.kind, self.name, self.id)
    }
}

/// One `l7:Item` of a bundle's `l7:References`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleItem {
    /// Its type, id and name.
    pub header: ItemHeader,
    /// The whole `<l7:Item>…</l7:Item>` as the gateway wrote it (prefix `l7`, namespace declared by the bundle).
    pub xml: String,
}

/// A restman bundle: reference items in dependency order, and mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    /// Namespace declarations of the bundle's ancestors and root other than `xmlns:l7`, as `(attribute, uri)`.
    pub namespaces: Vec<(String, String)>,
    /// The `l7:References` items, in the bundle's order.
    pub items: Vec<BundleItem>,
    /// The `l7:Mappings`, in the bundle's order (order matters on import).
    pub mappings: Vec<Mapping>,
}

/// The header elements of an `l7:Item`.
#[derive(Deserialize)]
struct HeaderDoc {
    #[serde(rename = "Name", default)]
    name: Option<String>,
    #[serde(rename = "Id", default)]
    id: Option<String>,
    #[serde(rename = "Type", default)]
    kind: Option<String>,
}

/// `l7:Mappings`.
#[derive(Deserialize)]
struct MappingsDoc {
    #[serde(rename = "Mapping", default)]
    mappings: Vec<Mapping>,
}

/// Whether an element's local name is `name`.
fn is(element: &BytesStart<'_>, name: &str) -> bool {
    element.local_name().as_ref() == name.as_bytes()
}

/// A byte offset of the reader as a slice index.
fn position(reader: &Reader<&[u8]>) -> Result<usize, BundleError> {
    usize::try_from(reader.buffer_position()).map_err(|_| BundleError::new("document too large"))
}

/// The `xmlns:*` declarations of an element other than the `l7` one.
fn namespace_declarations(element: &BytesStart<'_>, into: &mut Vec<(String, String)>) {
    for attribute in element.attributes().flatten() {
        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
        if (key == "xmlns" || key.starts_with("xmlns:")) && key != format!("xmlns:{PREFIX}") {
            let value = attribute
                .unescape_value()
                .map(|v| v.into_owned())
                .unwrap_or_default();
            if !into.iter().any(|(existing, _)| *existing == key) {
                into.push((key, value));
            }
        }
    }
}

impl Bundle {
    /// Adds `other`'s items and mappings that this bundle does not hold yet (by type and
    /// id), after its own: a dependency two parts share stays where it first appeared,
    /// before what needs it.
    pub fn merge(&mut self, other: Bundle) {
        let mut items: std::collections::HashSet<(String, String)> = self
            .items
            .iter()
            .map(|item| (item.header.kind.clone(), item.header.id.clone()))
            .collect();
        for item in other.items {
            if items.insert((item.header.kind.clone(), item.header.id.clone())) {
                self.items.push(item);
            }
        }
        let mut mappings: std::collections::HashSet<(String, String)> = self
            .mappings
            .iter()
            .map(|mapping| (mapping.kind.clone(), mapping.src_id.clone()))
            .collect();
        for mapping in other.mappings {
            if mappings.insert((mapping.kind.clone(), mapping.src_id.clone())) {
                self.mappings.push(mapping);
            }
        }
        for namespace in other.namespaces {
            if !self.namespaces.contains(&namespace) {
                self.namespaces.push(namespace);
            }
        }
    }
    /// Reads the `l7:Bundle` in `xml`: a bare bundle document, or the export
    /// answer that wraps it in `l7:Item/l7:Resource`.
    pub fn parse(xml: &str) -> Result<Self, BundleError> {
        let mut reader = Reader::from_str(xml);
        let mut bundle = Bundle::default();
        loop {
            match reader.read_event() {
                Ok(Event::Start(element)) => {
                    namespace_declarations(&element, &mut bundle.namespaces);
                    if is(&element, "Bundle") {
                        bundle.read_children(xml, &mut reader)?;
                        return Ok(bundle);
                    }
                }
                Ok(Event::Empty(element)) if is(&element, "Bundle") => return Ok(bundle),
                Ok(Event::Eof) => return Err(BundleError::new("the document holds no l7:Bundle")),
                Err(error) => return Err(xml_error(&reader, &error)),
                Ok(_) => {}
            }
        }
    }

    /// Reads the children of `l7:Bundle` up to its end.
    fn read_children(&mut self, xml: &str, reader: &mut Reader<&[u8]>) -> Result<(), BundleError> {
        loop {
            let start = position(reader)?;
            match reader.read_event() {
                Ok(Event::Start(element)) if is(&element, "References") => {
                    self.read_references(xml, reader)?;
                }
                Ok(Event::Start(element)) if is(&element, "Mappings") => {
                    reader
                        .read_to_end(element.name())
                        .map_err(|error| xml_error(reader, &error))?;
                    let end = position(reader)?;
                    self.mappings = parse_mappings(&xml[start..end])?;
                }
                Ok(Event::Start(element)) => {
                    reader
                        .read_to_end(element.name())
                        .map_err(|error| xml_error(reader, &error))?;
                }
                Ok(Event::End(_)) => return Ok(()),
                Ok(Event::Eof) => return Err(BundleError::new("the l7:Bundle is not closed")),
                Err(error) => return Err(xml_error(reader, &error)),
                Ok(_) => {}
            }
        }
    }

    /// Reads the items of `l7:References` up to its end.
    fn read_references(
        &mut self,
        xml: &str,
        reader: &mut Reader<&[u8]>,
    ) -> Result<(), BundleError> {
        loop {
            let start = position(reader)?;
            match reader.read_event() {
                Ok(Event::Start(element)) => {
                    let is_item = is(&element, "Item");
                    reader
                        .read_to_end(element.name())
                        .map_err(|error| xml_error(reader, &error))?;
                    if is_item {
                        let end = position(reader)?;
                        let item_xml = &xml[start..end];
                        self.items.push(BundleItem {
                            header: parse_header(item_xml, self.items.len())?,
                            xml: item_xml.to_owned(),
                        });
                    }
                }
                Ok(Event::End(_)) => return Ok(()),
                Ok(Event::Eof) => return Err(BundleError::new("l7:References is not closed")),
                Err(error) => return Err(xml_error(reader, &error)),
                Ok(_) => {}
            }
        }
    }

    /// The bundle as a document: `xmlns:l7` on the root, items as read, mappings written.
    pub fn to_xml(&self) -> Result<String, BundleError> {
        let mut out = format!("<{PREFIX}:Bundle xmlns:{PREFIX}=\"{NAMESPACE}\"");
        for (attribute, uri) in &self.namespaces {
            out.push_str(&format!(
                " {attribute}=\"{}\"",
                quick_xml::escape::escape(uri.as_str())
            ));
        }
        out.push_str(">\n    <l7:References>\n");
        for item in &self.items {
            out.push_str("        ");
            out.push_str(&item.xml);
            out.push('\n');
        }
        out.push_str("    </l7:References>\n    <l7:Mappings>\n");
        for mapping in &self.mappings {
            let written = quick_xml::se::to_string_with_root("l7:Mapping", mapping)
                .map_err(|error| BundleError::new(format!("cannot write a mapping: {error}")))?;
            out.push_str("        ");
            out.push_str(&written);
            out.push('\n');
        }
        out.push_str("    </l7:Mappings>\n</l7:Bundle>\n");
        Ok(out)
    }

    /// The item with this type and id.
    pub fn item(&self, kind: &str, id: &str) -> Option<&BundleItem> {
        self.items
            .iter()
            .find(|item| item.header.kind == kind && item.header.id == id)
    }

    /// The name of the entity a mapping names, when the bundle holds it.
    pub fn name_of(&self, kind: &str, id: &str) -> Option<&str> {
        self.item(kind, id).map(|item| item.header.name.as_str())
    }

    /// Prepares the mappings for an import: every mapping takes `default_action`
    /// except those the exporter marked `FailOnNew` (dependencies that must
    /// already exist, such as the root folder); then each override applies,
    /// in order, to the mappings of its kind (and source, by id or name).
    /// An override that matches nothing is an error: it is likely a typo.
    pub fn apply_mappings(
        &mut self,
        default_action: MappingAction,
        overrides: &[Layer7Mapping],
    ) -> Result<(), Layer7Error> {
        for mapping in &mut self.mappings {
            if !mapping.flag(FAIL_ON_NEW) {
                mapping.action = default_action.into();
            }
        }
        for instruction in overrides {
            let kind = restman_type(&instruction.kind).to_owned();
            let mut matched = false;
            for index in 0..self.mappings.len() {
                let mapping = &self.mappings[index];
                if mapping.kind != kind {
                    continue;
                }
                let selected = match &instruction.source {
                    None => true,
                    Some(source) => {
                        mapping.src_id == *source
                            || self.name_of(&mapping.kind, &mapping.src_id) == Some(source.as_str())
                    }
                };
                if selected {
                    self.mappings[index].apply(instruction);
                    matched = true;
                }
            }
            if !matched {
                return Err(Layer7Error::Mapping {
                    kind: instruction.kind.clone(),
                    selected: instruction.source.clone(),
                    reason: "matches no mapping in the bundle (kinds are restman types such as SERVICE, or Graphman sections such as services; sources are ids or names)".to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// The header of an item, or an error naming its position.
fn parse_header(item_xml: &str, index: usize) -> Result<ItemHeader, BundleError> {
    let header: HeaderDoc = quick_xml::de::from_str(item_xml)
        .map_err(|error| BundleError::new(format!("reference item {}: {error}", index + 1)))?;
    let (Some(kind), Some(id)) = (header.kind, header.id) else {
        return Err(BundleError::new(format!(
            "reference item {} has no l7:Type or no l7:Id",
            index + 1
        )));
    };
    Ok(ItemHeader {
        kind,
        id,
        name: header.name.unwrap_or_default(),
    })
}

/// Reads an `l7:Mappings` element.
fn parse_mappings(xml: &str) -> Result<Vec<Mapping>, BundleError> {
    let doc: MappingsDoc = quick_xml::de::from_str(xml)
        .map_err(|error| BundleError::new(format!("l7:Mappings: {error}")))?;
    Ok(doc.mappings)
}

/// Every `l7:Mapping` in a document, wherever it is: an import answer
/// (`l7:Item/l7:Resource/l7:Mappings`), a bare `l7:Mappings`, or a single
/// `l7:Mapping` (the 409 body of Broadcom KB 107541).
pub fn find_mappings(xml: &str) -> Result<Vec<Mapping>, BundleError> {
    let mut reader = Reader::from_str(xml);
    let mut mappings = Vec::new();
    loop {
        let start = position(&reader)?;
        match reader.read_event() {
            Ok(Event::Start(element)) if is(&element, "Mapping") => {
                reader
                    .read_to_end(element.name())
                    .map_err(|error| xml_error(&reader, &error))?;
                let end = position(&reader)?;
                mappings.push(parse_mapping(&xml[start..end])?);
            }
            Ok(Event::Empty(element)) if is(&element, "Mapping") => {
                let end = position(&reader)?;
                mappings.push(parse_mapping(&xml[start..end])?);
            }
            Ok(Event::Eof) => return Ok(mappings),
            Err(error) => return Err(xml_error(&reader, &error)),
            Ok(_) => {}
        }
    }
}

/// Reads one `l7:Mapping` element.
fn parse_mapping(xml: &str) -> Result<Mapping, BundleError> {
    quick_xml::de::from_str(xml).map_err(|error| BundleError::new(format!("l7:Mapping: {error}")))
}

/// An XML error with the byte offset it was found at.
fn xml_error(reader: &Reader<&[u8]>, error: &quick_xml::Error) -> BundleError {
    BundleError::new(format!(
        "not well-formed XML at byte {}: {error}",
        reader.error_position()
    ))
}

/// What `GET /restman/1.0/bundle` exports.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExportQuery {
    /// Entities by type parameter (`service`, `folder`, `policy`, `clusterProperty`, ...) and id.
    pub entities: Vec<(String, String)>,
    /// The whole gateway (`all=true`).
    pub all: bool,
    /// `includeDependencies` (the gateway's default when absent).
    pub include_dependencies: Option<bool>,
    /// `defaultAction` of the exported mappings (the gateway's default is `NewOrExisting`).
    pub default_action: Option<RestmanAction>,
    /// `encryptSecrets`: export passwords and keys encrypted with the passphrase.
    pub encrypt_secrets: bool,
    /// The passphrase sent (base64) in `L7-key-passphrase`.
    pub passphrase: Option<String>,
}

impl fmt::Debug for ExportQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportQuery")
            .field("entities", &self.entities)
            .field("all", &self.all)
            .field("include_dependencies", &self.include_dependencies)
            .field("default_action", &self.default_action)
            .field("encrypt_secrets", &self.encrypt_secrets)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

impl ExportQuery {
    /// The whole gateway.
    pub fn everything() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }

    /// Adds an entity by its export parameter (`service`, `jdbcConnection`, ...) and id.
    pub fn entity(mut self, parameter: &str, id: &str) -> Self {
        self.entities.push((parameter.to_owned(), id.to_owned()));
        self
    }

    /// Adds a service by id.
    pub fn service(self, id: &str) -> Self {
        self.entity("service", id)
    }

    /// Adds a folder (and what it holds) by id.
    pub fn folder(self, id: &str) -> Self {
        self.entity("folder", id)
    }

    /// Adds a policy by id.
    pub fn policy(self, id: &str) -> Self {
        self.entity("policy", id)
    }

    /// Adds a cluster property by id.
    pub fn cluster_property(self, id: &str) -> Self {
        self.entity("clusterProperty", id)
    }

    /// The query split so that each part names at most `per_part` entities (one part when
    /// it exports everything or names few enough); every part keeps the options.
    pub fn parts(&self, per_part: usize) -> Vec<ExportQuery> {
        if self.all || self.entities.len() <= per_part.max(1) {
            return vec![self.clone()];
        }
        self.entities
            .chunks(per_part.max(1))
            .map(|chunk| ExportQuery {
                entities: chunk.to_vec(),
                ..self.clone()
            })
            .collect()
    }

    /// The URL query parameters, in a stable order.
    pub fn parameters(&self) -> Vec<(String, String)> {
        let mut parameters = self.entities.clone();
        if self.all {
            parameters.push(("all".to_owned(), "true".to_owned()));
        }
        if let Some(include) = self.include_dependencies {
            parameters.push(("includeDependencies".to_owned(), include.to_string()));
        }
        if let Some(action) = self.default_action {
            parameters.push(("defaultAction".to_owned(), action.as_str().to_owned()));
        }
        if self.encrypt_secrets {
            parameters.push(("encryptSecrets".to_owned(), "true".to_owned()));
        }
        parameters
    }
}

/// How `PUT /restman/1.0/bundle` imports.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// `test=true`: the gateway validates and resolves every mapping, then rolls back.
    pub test: bool,
    /// `activate` (the gateway's default is true): false saves new policy revisions inactive.
    pub activate: Option<bool>,
    /// `versionComment` on the new policy revisions.
    pub version_comment: Option<String>,
    /// The passphrase sent (base64) in `L7-key-passphrase` to decrypt the bundle's secrets.
    pub passphrase: Option<String>,
}

impl fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportOptions")
            .field("test", &self.test)
            .field("activate", &self.activate)
            .field("version_comment", &self.version_comment)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

impl ImportOptions {
    /// The URL query parameters.
    pub fn parameters(&self) -> Vec<(String, String)> {
        let mut parameters = Vec::new();
        if self.test {
            parameters.push(("test".to_owned(), "true".to_owned()));
        }
        if let Some(activate) = self.activate {
            parameters.push(("activate".to_owned(), activate.to_string()));
        }
        if let Some(comment) = &self.version_comment {
            parameters.push(("versionComment".to_owned(), comment.clone()));
        }
        parameters
    }
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
pub(crate) mod tests;
