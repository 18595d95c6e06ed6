//! `PUT /bundle`: applies a bundle's mappings top-down on a copy of the store and swaps the
//! copy in only when every mapping succeeded (never with `test=true`). The answer lists
//! every mapping with `actionTaken` and `targetId`, or (409) the failing one with
//! `errorType` and an `ErrorMessage` property.

use std::collections::HashMap;

use axum::http::StatusCode;

use super::super::envelope::{self, ItemHead};
use super::super::request::{Failure, Reply, Request};
use super::super::resources::{Resource, properties};
use super::super::xml::Element;
use super::{ACTIONS, BundleEntity, collection, kind_of};
use crate::layer7::store::{
    Change, ClusterProperty, EncapsulatedAssertion, EntityKind, Folder, ListenPort, Policy,
    PrivateKey, PropertyValue, RevisionOptions, Service, Store, StoreError, StoredPassword,
    TrustedCertificate, is_goid, new_goid,
};

/// One mapping as the bundle gives it.
#[derive(Debug, Clone)]
struct Mapping {
    /// The element, echoed back with the result attributes.
    element: Element,
    /// `action`.
    action: String,
    /// `srcId`.
    source_id: String,
    /// `type`.
    type_code: String,
    /// `FailOnNew`.
    fail_on_new: bool,
    /// `FailOnExisting`.
    fail_on_existing: bool,
    /// `MapBy` (default `id`).
    map_by: String,
    /// `MapTo`.
    map_to: Option<String>,
}

/// What a mapping did.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// `actionTaken`.
    taken: &'static str,
    /// `targetId`.
    target: Option<String>,
    /// Whether the store changed.
    changed: bool,
}

/// Why a mapping failed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MappingError {
    /// `errorType`.
    kind: &'static str,
    /// The `ErrorMessage` property.
    message: String,
}

impl MappingError {
    /// An error of `kind`.
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<StoreError> for MappingError {
    fn from(error: StoreError) -> Self {
        let kind = match &error {
            StoreError::UniqueKeyConflict { .. } => "UniqueKeyConflict",
            StoreError::NotFound { .. } => "TargetNotFound",
            StoreError::InUse { .. } | StoreError::FolderNotEmpty { .. } => {
                "CannotReplaceDependency"
            }
            StoreError::Invalid { .. } | StoreError::StaleVersion { .. } => "InvalidResource",
        };
        Self::new(kind, error.to_string())
    }
}

/// What every mapping of one import shares.
struct Context<'a> {
    /// The working copy.
    work: Store,
    /// Source id → target id, for references in later entities.
    ids: HashMap<String, String>,
    /// Revision options (`activate`, `versionComment`).
    options: RevisionOptions,
    /// The `L7-key-passphrase`.
    passphrase: Option<&'a str>,
}

/// Answers the import.
pub fn import(store: &mut Store, request: &Request) -> Result<Reply, Failure> {
    let test = request.flag("test", false)?;
    let options = RevisionOptions {
        activate: request.flag("activate", true)?,
        comment: request.param("versionComment").map(str::to_owned),
    };
    let document = request.xml()?;
    let bundle = bundle_of(&document)?;
    let references = references_of(bundle);
    let mappings = mappings_of(bundle)?;
    let mut context = Context {
        work: store.clone(),
        ids: HashMap::new(),
        options,
        passphrase: request.passphrase.as_deref(),
    };
    let mut results = Vec::new();
    let mut failed = false;
    let mut changed = false;
    for mapping in &mappings {
        if failed {
            results.push(mapping.element.clone());
            continue;
        }
        let resource = references
            .get(&(mapping.type_code.as_str(), mapping.source_id.as_str()))
            .copied();
        match apply(&mut context, mapping, resource) {
            Ok(outcome) => {
                changed |= outcome.changed;
                results.push(succeeded(mapping, &outcome, &request.base));
            }
            Err(error) => {
                failed = true;
                results.push(failed_mapping(mapping, &error));
            }
        }
    }
    let head = ItemHead {
        name: "Bundle mappings".to_owned(),
        id: String::new(),
        kind: "BUNDLE MAPPINGS".to_owned(),
        link: format!("{}/bundle", request.base),
    };
    let answer = envelope::item(&head, Some(Element::new("l7:Mappings").children(results)));
    if failed {
        return Ok(Reply::document(StatusCode::CONFLICT, &answer));
    }
    if !test {
        *store = context.work;
    }
    Ok(Reply::document(StatusCode::OK, &answer).changed(changed && !test))
}

/// The `l7:Bundle` of a document (bare, or inside an Item's Resource).
fn bundle_of(document: &Element) -> Result<&Element, Failure> {
    let bundle = match document.local_name() {
        "Bundle" => Some(document),
        "Item" => document
            .find("Resource")
            .and_then(|resource| resource.find("Bundle")),
        _ => None,
    };
    bundle.ok_or_else(|| {
        Failure::bad_request(format!(
            "expected an l7:Bundle document, got l7:{}",
            document.local_name()
        ))
    })
}

/// The resource elements of the bundle's references by (type, id).
fn references_of(bundle: &Element) -> HashMap<(&str, &str), &Element> {
    bundle
        .find("References")
        .into_iter()
        .flat_map(|references| references.find_all("Item"))
        .filter_map(|item| {
            let kind = item.child_text("Type")?;
            let id = item.child_text("Id")?;
            let resource = item.find("Resource")?.children.first()?;
            Some(((kind, id), resource))
        })
        .collect()
}

/// The bundle's mappings, in order; a 400 for one that is not readable.
fn mappings_of(bundle: &Element) -> Result<Vec<Mapping>, Failure> {
    let list = bundle
        .find("Mappings")
        .ok_or_else(|| Failure::bad_request("the bundle has no l7:Mappings".to_owned()))?;
    list.find_all("Mapping")
        .enumerate()
        .map(|(index, element)| {
            let attribute = |name: &str| {
                element.attribute(name).map(str::to_owned).ok_or_else(|| {
                    Failure::bad_request(format!("mapping {} has no {name} attribute", index + 1))
                })
            };
            let action = attribute("action")?;
            if !ACTIONS.contains(&action.as_str()) {
                return Err(Failure::bad_request(format!(
                    "mapping {}: unknown action '{action}' (expected one of {})",
                    index + 1,
                    ACTIONS.join(", ")
                )));
            }
            let mut properties = properties(element)
                .map_err(|error| Failure::bad_request(format!("mapping {}: {error}", index + 1)))?;
            let mut flag = |key: &str| match properties.remove(key) {
                Some(PropertyValue::Boolean(flag)) => flag,
                Some(PropertyValue::String(text)) => text.trim() == "true",
                _ => false,
            };
            let fail_on_new = flag("FailOnNew");
            let fail_on_existing = flag("FailOnExisting");
            Ok(Mapping {
                element: element.clone(),
                action,
                source_id: attribute("srcId")?,
                type_code: attribute("type")?,
                fail_on_new,
                fail_on_existing,
                map_by: properties
                    .remove("MapBy")
                    .map_or_else(|| "id".to_owned(), |value| value.as_text()),
                map_to: properties.remove("MapTo").map(|value| value.as_text()),
            })
        })
        .collect()
}

/// Applies one mapping of any kind.
fn apply(
    context: &mut Context<'_>,
    mapping: &Mapping,
    resource: Option<&Element>,
) -> Result<Outcome, MappingError> {
    let Some(kind) = kind_of(&mapping.type_code) else {
        if mapping.action == "Ignore" {
            return Ok(ignored(None));
        }
        return Err(MappingError::new(
            "InvalidResource",
            format!(
                "entity type {} is not supported by the Layer7 twin",
                mapping.type_code
            ),
        ));
    };
    match kind {
        EntityKind::Folder => apply_kind::<Folder>(context, mapping, resource),
        EntityKind::Service => apply_kind::<Service>(context, mapping, resource),
        EntityKind::Policy => apply_kind::<Policy>(context, mapping, resource),
        EntityKind::EncapsulatedAssertion => {
            apply_kind::<EncapsulatedAssertion>(context, mapping, resource)
        }
        EntityKind::ClusterProperty => apply_kind::<ClusterProperty>(context, mapping, resource),
        EntityKind::TrustedCertificate => {
            apply_kind::<TrustedCertificate>(context, mapping, resource)
        }
        EntityKind::PrivateKey => apply_kind::<PrivateKey>(context, mapping, resource),
        EntityKind::ListenPort => apply_kind::<ListenPort>(context, mapping, resource),
        EntityKind::StoredPassword => apply_kind::<StoredPassword>(context, mapping, resource),
    }
}

/// `Ignored`.
fn ignored(target: Option<String>) -> Outcome {
    Outcome {
        taken: "Ignored",
        target,
        changed: false,
    }
}

/// Applies one mapping to an entity of kind `T`.
fn apply_kind<T: BundleEntity>(
    context: &mut Context<'_>,
    mapping: &Mapping,
    resource: Option<&Element>,
) -> Result<Outcome, MappingError> {
    let entity = resource
        .map(|element| read_entity::<T>(context, mapping, element))
        .transpose()?;
    let target = find_target::<T>(&context.work, mapping, entity.as_ref())?;
    match (mapping.action.as_str(), target) {
        ("Ignore", target) => Ok(ignored(target)),
        ("Delete", Some(target)) => {
            if T::KIND == EntityKind::Folder {
                context.work.delete_folder(&target, false)?;
            } else {
                context.work.delete::<T>(&target)?;
            }
            Ok(Outcome {
                taken: "Deleted",
                target: Some(target),
                changed: true,
            })
        }
        ("Delete", None) if mapping.fail_on_new => Err(not_found::<T>(mapping)),
        ("Delete", None) => Ok(ignored(None)),
        (_, Some(_)) if mapping.fail_on_existing => Err(MappingError::new(
            "TargetExists",
            format!(
                "{} {} exists on the target and the mapping says FailOnExisting",
                T::KIND.noun(),
                mapping.source_id
            ),
        )),
        ("AlwaysCreateNew", Some(_)) => {
            let entity = needed(entity, mapping)?;
            let id = entity.fixed_id().unwrap_or_else(new_goid);
            create(context, mapping, id, entity)
        }
        ("NewOrUpdate", Some(target)) => {
            let previous = context
                .work
                .get::<T>(&target)
                .map(|stored| stored.entity.clone())
                .ok_or_else(|| not_found::<T>(mapping))?;
            context
                .ids
                .insert(mapping.source_id.clone(), target.clone());
            let mut entity = needed(entity, mapping)?;
            if !entity.can_replace() {
                return Ok(used_existing(target));
            }
            entity.keep_identity(&previous);
            entity.keep_hidden(&previous);
            let saved = context
                .work
                .save(Some(&target), entity, None, &context.options)?;
            Ok(Outcome {
                taken: "UpdatedExisting",
                target: Some(target),
                changed: saved.change != Change::Unchanged,
            })
        }
        (_, Some(target)) => {
            context
                .ids
                .insert(mapping.source_id.clone(), target.clone());
            Ok(used_existing(target))
        }
        (_, None) if mapping.fail_on_new => Err(not_found::<T>(mapping)),
        (_, None) => {
            let entity = needed(entity, mapping)?;
            let wanted = if mapping.map_by == "id" {
                mapping
                    .map_to
                    .clone()
                    .unwrap_or_else(|| mapping.source_id.clone())
            } else {
                mapping.source_id.clone()
            };
            let id = if let Some(fixed) = entity.fixed_id() {
                fixed
            } else if is_goid(&wanted) && !context.work.exists(T::KIND, &wanted) {
                wanted
            } else {
                new_goid()
            };
            create(context, mapping, id, entity)
        }
    }
}

/// `UsedExisting` of `target`.
fn used_existing(target: String) -> Outcome {
    Outcome {
        taken: "UsedExisting",
        target: Some(target),
        changed: false,
    }
}

/// Creates `entity` at `id`: `CreatedNew`.
fn create<T: BundleEntity>(
    context: &mut Context<'_>,
    mapping: &Mapping,
    id: String,
    entity: T,
) -> Result<Outcome, MappingError> {
    entity
        .check_new()
        .map_err(|error| MappingError::new("InvalidResource", error.0))?;
    context
        .work
        .save(Some(&id), entity, None, &context.options)?;
    context.ids.insert(mapping.source_id.clone(), id.clone());
    Ok(Outcome {
        taken: "CreatedNew",
        target: Some(id),
        changed: true,
    })
}

/// The bundle's entity for a mapping that needs one.
fn needed<T>(entity: Option<T>, mapping: &Mapping) -> Result<T, MappingError> {
    entity.ok_or_else(|| {
        MappingError::new(
            "InvalidResource",
            format!(
                "the bundle has no {} item with id {} in l7:References",
                mapping.type_code, mapping.source_id
            ),
        )
    })
}

/// `TargetNotFound` for a mapping.
fn not_found<T: Resource>(mapping: &Mapping) -> MappingError {
    MappingError::new(
        "TargetNotFound",
        format!(
            "no {} on the target matches {} (mapped by {}{})",
            T::KIND.noun(),
            mapping.source_id,
            mapping.map_by,
            mapping
                .map_to
                .as_ref()
                .map(|to| format!(" to '{to}'"))
                .unwrap_or_default()
        ),
    )
}

/// The entity a reference item describes, with secrets opened and references remapped.
fn read_entity<T: BundleEntity>(
    context: &Context<'_>,
    mapping: &Mapping,
    element: &Element,
) -> Result<T, MappingError> {
    if element.local_name() != T::ELEMENT {
        return Err(MappingError::new(
            "InvalidResource",
            format!(
                "the {} item {} holds an l7:{}, expected l7:{}",
                mapping.type_code,
                mapping.source_id,
                element.local_name(),
                T::ELEMENT
            ),
        ));
    }
    let parsed = T::from_xml(element, Some(&mapping.source_id))
        .map_err(|error| MappingError::new("InvalidResource", error.0))?;
    let mut entity = parsed.entity;
    entity
        .open_secrets(element, context.passphrase)
        .map_err(|message| MappingError::new("InvalidResource", message))?;
    entity.remap(&context.ids);
    Ok(entity)
}

/// The target entity's id, looked up as the mapping says (`MapBy`, `MapTo`).
fn find_target<T: BundleEntity>(
    work: &Store,
    mapping: &Mapping,
    entity: Option<&T>,
) -> Result<Option<String>, MappingError> {
    if mapping.map_by == "id" {
        let id = mapping.map_to.as_deref().unwrap_or(&mapping.source_id);
        return Ok(work.get::<T>(id).map(|stored| stored.id.clone()));
    }
    let value = mapping
        .map_to
        .clone()
        .or_else(|| entity.and_then(|entity| entity.map_value(&mapping.map_by, work)));
    let Some(value) = value else {
        return Err(MappingError::new(
            "InvalidResource",
            format!(
                "mapping {} {} by {} needs MapTo or an item in l7:References",
                mapping.type_code, mapping.source_id, mapping.map_by
            ),
        ));
    };
    if T::KIND == EntityKind::Folder && mapping.map_by == "path" {
        return Ok(work.folder_by_path(&value).map(|folder| folder.id.clone()));
    }
    let key = T::map_key(&mapping.map_by, &value).ok_or_else(|| {
        MappingError::new(
            "InvalidResource",
            format!(
                "MapBy {} is not supported for {}",
                mapping.map_by, mapping.type_code
            ),
        )
    })?;
    Ok(work.find::<T>(&key).first().map(|stored| stored.id.clone()))
}

/// The mapping echoed with `actionTaken`, `targetId` and `targetUri`.
fn succeeded(mapping: &Mapping, outcome: &Outcome, base: &str) -> Element {
    let mut element = mapping.element.clone();
    element
        .attributes
        .push(("actionTaken".to_owned(), outcome.taken.to_owned()));
    if let Some(target) = &outcome.target {
        let kind = kind_of(&mapping.type_code).map_or("", collection);
        element
            .attributes
            .push(("targetId".to_owned(), target.clone()));
        element
            .attributes
            .push(("targetUri".to_owned(), format!("{base}/{kind}/{target}")));
    }
    prefixed(element)
}

/// The mapping echoed with `errorType` and an `ErrorMessage` property.
fn failed_mapping(mapping: &Mapping, error: &MappingError) -> Element {
    let mut element = mapping.element.clone();
    element
        .attributes
        .push(("errorType".to_owned(), error.kind.to_owned()));
    let message = Element::new("l7:Property")
        .attr("key", "ErrorMessage")
        .child(Element::text("l7:StringValue", &error.message));
    match element
        .children
        .iter_mut()
        .find(|child| child.local_name() == "Properties")
    {
        Some(properties) => properties.children.push(message),
        None => element
            .children
            .push(Element::new("l7:Properties").child(message)),
    }
    prefixed(element)
}

/// An echoed element with the `l7:` prefix back on every name.
fn prefixed(mut element: Element) -> Element {
    if !element.name.contains(':') {
        element.name = format!("l7:{}", element.name);
    }
    element.children = element.children.into_iter().map(prefixed).collect();
    element
}
