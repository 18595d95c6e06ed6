//! Comparing restman bundles, for plans, diffs and rollback checks:
//! [`Bundle::normalised`] drops what changes without a configuration change
//! (`version` attributes, time stamps, links, the exporting host in `srcUri`)
//! and sorts items and mappings; [`diff`] says, entity by entity, what was
//! added, removed or changed ([`BundleDiff`]), with a line diff of each change.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::Writer;
use quick_xml::events::{BytesStart, BytesText, Event};

use super::bundle::{Bundle, BundleError, BundleItem, ItemHeader};

/// Elements dropped when normalising: they change without a configuration change.
const VOLATILE_ELEMENTS: &[&str] = &["TimeStamp", "Link"];

/// Attributes dropped when normalising.
const VOLATILE_ATTRIBUTES: &[&str] = &["version"];

/// `l7:Property` keys dropped when normalising: revision counters, which differ
/// between gateways (and after a rollback re-import) for the same policy.
const VOLATILE_PROPERTIES: &[&str] = &["policyRevision", "revision"];

/// Lines of context around each change in a diff.
const CONTEXT_LINES: usize = 2;

impl Bundle {
    /// The bundle without what changes on its own (`version` attributes,
    /// `l7:TimeStamp`, `l7:Link`, the host in `srcUri`, the revision counter
    /// properties `policyRevision` and `revision`), items indented one
    /// element a line and sorted by type, name and id, mappings sorted by type
    /// and id. Two exports of an unchanged gateway normalise to the same text.
    pub fn normalised(&self) -> Result<Bundle, BundleError> {
        let mut items = self
            .items
            .iter()
            .map(|item| {
                Ok(BundleItem {
                    header: item.header.clone(),
                    xml: normalise_item(&item.xml)?,
                })
            })
            .collect::<Result<Vec<_>, BundleError>>()?;
        items.sort_by(|a, b| {
            (&a.header.kind, &a.header.name, &a.header.id).cmp(&(
                &b.header.kind,
                &b.header.name,
                &b.header.id,
            ))
        });
        let mut mappings = self.mappings.clone();
        for mapping in &mut mappings {
            mapping.src_uri = mapping.src_uri.as_deref().map(without_host);
        }
        mappings.sort_by(|a, b| (&a.kind, &a.src_id).cmp(&(&b.kind, &b.src_id)));
        Ok(Bundle {
            namespaces: self.namespaces.clone(),
            items,
            mappings,
        })
    }
}

/// A URI's path and query, without scheme and host (`/restman/1.0/folders/x`).
fn without_host(uri: &str) -> String {
    match uri.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(slash) => rest[slash..].to_owned(),
            None => String::new(),
        },
        None => uri.to_owned(),
    }
}

/// An item's XML re-indented without volatile elements and attributes.
fn normalise_item(xml: &str) -> Result<String, BundleError> {
    let mut reader = Reader::from_str(xml);
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    loop {
        let event = reader.read_event().map_err(|error| BundleError {
            reason: format!(
                "not well-formed XML at byte {}: {error}",
                reader.error_position()
            ),
        })?;
        let written = match event {
            Event::Start(element) if is_volatile(&element) => {
                reader
                    .read_to_end(element.name())
                    .map_err(|error| BundleError {
                        reason: error.to_string(),
                    })?;
                continue;
            }
            Event::Empty(element) if is_volatile(&element) => continue,
            Event::Start(element) => writer.write_event(Event::Start(stable(&element))),
            Event::Empty(element) => writer.write_event(Event::Empty(stable(&element))),
            Event::End(element) => writer.write_event(Event::End(element)),
            Event::Text(text) => {
                let decoded = text.decode().map_err(|error| BundleError {
                    reason: error.to_string(),
                })?;
                let unescaped =
                    quick_xml::escape::unescape(&decoded).map_err(|error| BundleError {
                        reason: error.to_string(),
                    })?;
                let trimmed = unescaped.trim();
                if trimmed.is_empty() {
                    continue;
                }
                writer.write_event(Event::Text(BytesText::new(trimmed)))
            }
            Event::CData(data) => writer.write_event(Event::CData(data)),
            Event::GeneralRef(reference) => writer.write_event(Event::GeneralRef(reference)),
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => continue,
        };
        written.map_err(|error| BundleError {
            reason: error.to_string(),
        })?;
    }
    Ok(String::from_utf8_lossy(&writer.into_inner()).into_owned())
}

/// Whether an element is dropped when normalising.
fn is_volatile(element: &BytesStart<'_>) -> bool {
    let local = element.local_name();
    if local.as_ref() == b"Property" {
        return element.attributes().flatten().any(|attribute| {
            attribute.key.local_name().as_ref() == b"key"
                && VOLATILE_PROPERTIES
                    .iter()
                    .any(|key| attribute.value.as_ref() == key.as_bytes())
        });
    }
    VOLATILE_ELEMENTS
        .iter()
        .any(|name| local.as_ref() == name.as_bytes())
}

/// The element without volatile attributes.
fn stable(element: &BytesStart<'_>) -> BytesStart<'static> {
    let name = String::from_utf8_lossy(element.name().as_ref()).into_owned();
    let mut copy = BytesStart::new(name);
    for attribute in element.attributes().flatten() {
        let local = attribute.key.local_name();
        if VOLATILE_ATTRIBUTES
            .iter()
            .any(|volatile| local.as_ref() == volatile.as_bytes())
        {
            continue;
        }
        copy.push_attribute(attribute);
    }
    copy
}

/// What differs between two bundles, entity by entity (matched by type and id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleDiff {
    /// Entities only in the second bundle.
    pub added: Vec<ItemHeader>,
    /// Entities only in the first bundle.
    pub removed: Vec<ItemHeader>,
    /// Entities in both whose normalised XML differs.
    pub changed: Vec<ChangedEntity>,
}

/// An entity whose configuration differs between two bundles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedEntity {
    /// The entity as the second bundle names it.
    pub header: ItemHeader,
    /// A unified line diff of the normalised item XML (`-` first bundle, `+` second).
    pub diff: String,
}

impl BundleDiff {
    /// Whether the bundles hold the same configuration.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// One line per entity: `+ SERVICE `a` (id)`, `- ...`, `~ ...`.
    pub fn summary(&self) -> Vec<String> {
        let added = self.added.iter().map(|header| format!("+ {header}"));
        let removed = self.removed.iter().map(|header| format!("- {header}"));
        let changed = self
            .changed
            .iter()
            .map(|changed| format!("~ {}", changed.header));
        added.chain(removed).chain(changed).collect()
    }
}

/// What changed from `before` to `after`, entity by entity (matched by type and id).
pub fn diff(before: &Bundle, after: &Bundle) -> Result<BundleDiff, BundleError> {
    let before = by_key(before.normalised()?);
    let after = by_key(after.normalised()?);
    let mut result = BundleDiff::default();
    for (key, item) in &after {
        match before.get(key) {
            None => result.added.push(item.header.clone()),
            Some(old) if old.xml != item.xml => result.changed.push(ChangedEntity {
                header: item.header.clone(),
                diff: similar::TextDiff::from_lines(&old.xml, &item.xml)
                    .unified_diff()
                    .context_radius(CONTEXT_LINES)
                    .to_string(),
            }),
            Some(_) => {}
        }
    }
    for (key, item) in &before {
        if !after.contains_key(key) {
            result.removed.push(item.header.clone());
        }
    }
    Ok(result)
}

/// Items by (type, id).
fn by_key(bundle: Bundle) -> BTreeMap<(String, String), BundleItem> {
    bundle
        .items
        .into_iter()
        .map(|item| ((item.header.kind.clone(), item.header.id.clone()), item))
        .collect()
}
