//! `GET /bundle`: the selected entities and their dependencies (folder chains, contents of
//! selected folders, policies and encapsulated assertions their policies reference,
//! listen ports' keys) as an `l7:Bundle` wrapped in an `l7:Item`, in dependency order.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use axum::http::StatusCode;
use regex::Regex;

use super::super::crud::head;
use super::super::envelope::{self, ItemHead};
use super::super::request::{Failure, Reply, Request};
use super::super::xml::Element;
use super::{ACTIONS, BundleEntity, collection, type_code};
use crate::layer7::store::{
    ClusterProperty, EncapsulatedAssertion, EntityKind, Folder, ListenPort, Policy, PrivateKey,
    ROOT_FOLDER_ID, Service, Store, StoredPassword, TrustedCertificate,
};

/// Entity parameters and their kinds.
const ENTITY_PARAMETERS: [(&str, EntityKind); 9] = [
    ("folder", EntityKind::Folder),
    ("service", EntityKind::Service),
    ("policy", EntityKind::Policy),
    ("encapsulatedAssertion", EntityKind::EncapsulatedAssertion),
    ("clusterProperty", EntityKind::ClusterProperty),
    ("trustedCertificate", EntityKind::TrustedCertificate),
    ("privateKey", EntityKind::PrivateKey),
    ("password", EntityKind::StoredPassword),
    ("listenPort", EntityKind::ListenPort),
];

/// Options accepted (and, beyond those used, ignored).
const OPTIONS: [&str; 13] = [
    "all",
    "defaultAction",
    "includeDependencies",
    "encryptSecrets",
    "encryptUsingClusterPassphrase",
    "exportGatewayRestManagementService",
    "encassAsPolicyDependency",
    "includeOnlyServicePolicy",
    "includeOnlyDependencies",
    "includeSolutionKits",
    "includeGatewayConfiguration",
    "defaultMapBy",
    "includeRequestFolder",
];

/// Kinds in the order their items are written (dependencies first).
const ORDER: [EntityKind; 9] = [
    EntityKind::Folder,
    EntityKind::TrustedCertificate,
    EntityKind::PrivateKey,
    EntityKind::StoredPassword,
    EntityKind::ClusterProperty,
    EntityKind::ListenPort,
    EntityKind::Policy,
    EntityKind::EncapsulatedAssertion,
    EntityKind::Service,
];

/// One entity chosen for the bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Chosen {
    /// Its kind.
    kind: EntityKind,
    /// Its id.
    id: String,
}

/// What goes in the bundle, and which entities are only required (`FailOnNew`).
#[derive(Debug, Default)]
struct Selection {
    /// Entities to write.
    chosen: BTreeSet<Chosen>,
    /// Entities named by `require<Type>`.
    required: BTreeSet<Chosen>,
}

/// Answers the export (`root`: the single-root form `/bundle/{kind}/{id}`).
pub fn export(
    store: &Store,
    request: &Request,
    root: Option<(&str, &str)>,
) -> Result<Reply, Failure> {
    let action = request.param("defaultAction").unwrap_or("NewOrExisting");
    if !ACTIONS.contains(&action) {
        return Err(Failure::bad_request(format!(
            "defaultAction: expected one of {}, got '{action}'",
            ACTIONS.join(", ")
        )));
    }
    let with_dependencies = request.flag("includeDependencies", true)?;
    let mut selection = Selection::default();
    let mut wanted: Vec<Chosen> = Vec::new();
    if let Some((kind, id)) = root {
        let kind = ENTITY_PARAMETERS
            .iter()
            .find(|(name, _)| *name == kind)
            .map(|(_, kind)| *kind)
            .unwrap_or(EntityKind::Folder);
        wanted.push(Chosen {
            kind,
            id: id.to_owned(),
        });
    }
    for (key, value) in &request.query {
        if let Some((_, kind)) = ENTITY_PARAMETERS.iter().find(|(name, _)| name == key) {
            wanted.push(Chosen {
                kind: *kind,
                id: value.clone(),
            });
        } else if let Some((_, kind)) = ENTITY_PARAMETERS.iter().find(|(name, _)| {
            key.strip_prefix("require")
                .is_some_and(|rest| rest.eq_ignore_ascii_case(name))
        }) {
            let chosen = Chosen {
                kind: *kind,
                id: value.clone(),
            };
            check_exists(store, &chosen)?;
            selection.required.insert(chosen);
        } else if !OPTIONS.contains(&key.as_str()) {
            return Err(Failure::bad_request(format!(
                "Invalid query parameter '{key}' for a bundle export"
            )));
        }
    }
    if request.flag("all", false)? {
        wanted.extend(everything(store));
    }
    for chosen in wanted {
        check_exists(store, &chosen)?;
        select(store, &mut selection, chosen, with_dependencies, true);
    }
    let bundle = write_bundle(store, request, &selection, action);
    let head = ItemHead {
        name: "Bundle".to_owned(),
        id: String::new(),
        kind: "BUNDLE".to_owned(),
        link: format!("{}/bundle", request.base),
    };
    Ok(Reply::document(
        StatusCode::OK,
        &envelope::item(&head, Some(bundle)),
    ))
}

/// A 404 when the entity does not exist.
fn check_exists(store: &Store, chosen: &Chosen) -> Result<(), Failure> {
    if store.exists(chosen.kind, &chosen.id) {
        Ok(())
    } else {
        Err(Failure::not_found(format!(
            "Resource not found: no {} with id {}",
            chosen.kind.noun(),
            chosen.id
        )))
    }
}

/// Every entity of the gateway.
fn everything(store: &Store) -> Vec<Chosen> {
    fn ids<T: crate::layer7::store::Entity>(store: &Store, kind: EntityKind) -> Vec<Chosen> {
        store
            .all::<T>()
            .iter()
            .map(|row| Chosen {
                kind,
                id: row.id.clone(),
            })
            .collect()
    }
    let mut all = ids::<Folder>(store, EntityKind::Folder);
    all.extend(ids::<Service>(store, EntityKind::Service));
    all.extend(ids::<Policy>(store, EntityKind::Policy));
    all.extend(ids::<EncapsulatedAssertion>(
        store,
        EntityKind::EncapsulatedAssertion,
    ));
    all.extend(ids::<ClusterProperty>(store, EntityKind::ClusterProperty));
    all.extend(ids::<TrustedCertificate>(
        store,
        EntityKind::TrustedCertificate,
    ));
    all.extend(ids::<PrivateKey>(store, EntityKind::PrivateKey));
    all.extend(ids::<ListenPort>(store, EntityKind::ListenPort));
    all.extend(ids::<StoredPassword>(store, EntityKind::StoredPassword));
    all
}

/// Adds `chosen` and (with `dependencies`) what it needs; a folder named directly
/// (`explicit`) brings its contents.
fn select(
    store: &Store,
    selection: &mut Selection,
    chosen: Chosen,
    dependencies: bool,
    explicit: bool,
) {
    if !selection.chosen.insert(chosen.clone()) || !dependencies {
        return;
    }
    let mut needs: Vec<(Chosen, bool)> = Vec::new();
    let folder = |id: &str| Chosen {
        kind: EntityKind::Folder,
        id: id.to_owned(),
    };
    match chosen.kind {
        EntityKind::Folder => {
            if let Some(parent) = store
                .get::<Folder>(&chosen.id)
                .and_then(|row| row.entity.parent_id.clone())
            {
                needs.push((folder(&parent), false));
            }
            if explicit {
                let key = format!("parent={}", chosen.id);
                needs.extend(
                    store
                        .find::<Folder>(&key)
                        .into_iter()
                        .map(|row| (folder(&row.id), true)),
                );
                needs.extend(store.find::<Service>(&key).into_iter().map(|row| {
                    (
                        Chosen {
                            kind: EntityKind::Service,
                            id: row.id.clone(),
                        },
                        false,
                    )
                }));
                needs.extend(store.find::<Policy>(&key).into_iter().map(|row| {
                    (
                        Chosen {
                            kind: EntityKind::Policy,
                            id: row.id.clone(),
                        },
                        false,
                    )
                }));
            }
        }
        EntityKind::Service => {
            if let Some(row) = store.get::<Service>(&chosen.id) {
                needs.push((folder(&row.entity.folder_id), false));
                needs.extend(policy_references(store, row.entity.revisions.active_xml()));
            }
        }
        EntityKind::Policy => {
            if let Some(row) = store.get::<Policy>(&chosen.id) {
                needs.push((folder(&row.entity.folder_id), false));
                needs.extend(policy_references(store, row.entity.revisions.active_xml()));
            }
        }
        EntityKind::EncapsulatedAssertion => {
            if let Some(row) = store.get::<EncapsulatedAssertion>(&chosen.id) {
                needs.push((
                    Chosen {
                        kind: EntityKind::Policy,
                        id: row.entity.policy_id.clone(),
                    },
                    false,
                ));
            }
        }
        EntityKind::ListenPort => {
            if let Some(tls) = store
                .get::<ListenPort>(&chosen.id)
                .and_then(|row| row.entity.tls.clone())
                && let (Some(keystore), Some(alias)) = (tls.keystore_id, tls.key_alias)
            {
                let id = format!("{keystore}:{alias}");
                if store.exists(EntityKind::PrivateKey, &id) {
                    needs.push((
                        Chosen {
                            kind: EntityKind::PrivateKey,
                            id,
                        },
                        false,
                    ));
                }
            }
        }
        _ => {}
    }
    for (need, explicit) in needs {
        if store.exists(need.kind, &need.id) {
            select(store, selection, need, true, explicit);
        }
    }
}

/// The pattern of guid references in policy XML (compiled once).
fn references_pattern() -> Option<&'static Regex> {
    static PATTERN: OnceLock<Option<Regex>> = OnceLock::new();
    PATTERN
        .get_or_init(|| {
            Regex::new(r#"(PolicyGuid|EncapsulatedAssertionConfigGuid)\s+stringValue="([^"]+)""#)
                .ok()
        })
        .as_ref()
}

/// Policies (`PolicyGuid`) and encapsulated assertions
/// (`EncapsulatedAssertionConfigGuid`) a policy's XML references.
fn policy_references(store: &Store, xml: &str) -> Vec<(Chosen, bool)> {
    let mut found = Vec::new();
    let Some(pattern) = references_pattern() else {
        return found;
    };
    for capture in pattern.captures_iter(xml) {
        let guid = &capture[2];
        let key = format!("guid={guid}");
        let hit = if &capture[1] == "PolicyGuid" {
            store
                .find::<Policy>(&key)
                .first()
                .map(|row| (EntityKind::Policy, row.id.clone()))
        } else {
            store
                .find::<EncapsulatedAssertion>(&key)
                .first()
                .map(|row| (EntityKind::EncapsulatedAssertion, row.id.clone()))
        };
        if let Some((kind, id)) = hit {
            found.push((Chosen { kind, id }, false));
        }
    }
    found
}

/// The `l7:Bundle` of the selection.
fn write_bundle(store: &Store, request: &Request, selection: &Selection, action: &str) -> Element {
    let mut ordered: Vec<Chosen> = Vec::new();
    for kind in ORDER {
        let mut of_kind: Vec<Chosen> = selection
            .chosen
            .iter()
            .chain(selection.required.iter())
            .filter(|chosen| chosen.kind == kind)
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        match kind {
            EntityKind::Folder => {
                of_kind.sort_by_key(|chosen| {
                    (store.folder_chain(&chosen.id).len(), chosen.id.clone())
                });
            }
            EntityKind::Policy => of_kind = policies_in_dependency_order(store, of_kind),
            _ => {}
        }
        ordered.extend(of_kind);
    }
    let passphrase = request.passphrase.as_deref();
    let mut references = Vec::new();
    let mut mappings = Vec::new();
    for chosen in &ordered {
        let required = selection.required.contains(chosen) && !selection.chosen.contains(chosen);
        if !required && let Some(item) = reference(store, request, chosen, passphrase) {
            references.push(item);
        }
        let mut mapping = Element::new("l7:Mapping")
            .attr("action", if required { "NewOrExisting" } else { action })
            .attr("srcId", &chosen.id)
            .attr(
                "srcUri",
                format!("{}/{}/{}", request.base, collection(chosen.kind), chosen.id),
            )
            .attr("type", type_code(chosen.kind));
        if required || (chosen.kind == EntityKind::Folder && chosen.id == ROOT_FOLDER_ID) {
            mapping = mapping.child(
                Element::new("l7:Properties").child(
                    Element::new("l7:Property")
                        .attr("key", "FailOnNew")
                        .child(Element::text("l7:BooleanValue", "true")),
                ),
            );
        }
        mappings.push(mapping);
    }
    Element::new("l7:Bundle")
        .child(Element::new("l7:References").children(references))
        .child(Element::new("l7:Mappings").children(mappings))
}

/// Policies ordered so that a policy comes after those its XML includes.
fn policies_in_dependency_order(store: &Store, policies: Vec<Chosen>) -> Vec<Chosen> {
    let mut ordered: Vec<Chosen> = Vec::new();
    let mut visiting: BTreeSet<String> = BTreeSet::new();
    fn visit(
        store: &Store,
        chosen: &Chosen,
        all: &[Chosen],
        ordered: &mut Vec<Chosen>,
        visiting: &mut BTreeSet<String>,
    ) {
        if ordered.contains(chosen) || !visiting.insert(chosen.id.clone()) {
            return;
        }
        if let Some(row) = store.get::<Policy>(&chosen.id) {
            for (need, _) in policy_references(store, row.entity.revisions.active_xml()) {
                if all.contains(&need) {
                    visit(store, &need, all, ordered, visiting);
                }
            }
        }
        ordered.push(chosen.clone());
    }
    for chosen in &policies {
        visit(store, chosen, &policies, &mut ordered, &mut visiting);
    }
    ordered
}

/// The reference `l7:Item` of one entity.
fn reference(
    store: &Store,
    request: &Request,
    chosen: &Chosen,
    passphrase: Option<&str>,
) -> Option<Element> {
    match chosen.kind {
        EntityKind::Folder => item::<Folder>(store, request, &chosen.id, passphrase),
        EntityKind::Service => item::<Service>(store, request, &chosen.id, passphrase),
        EntityKind::Policy => item::<Policy>(store, request, &chosen.id, passphrase),
        EntityKind::EncapsulatedAssertion => {
            item::<EncapsulatedAssertion>(store, request, &chosen.id, passphrase)
        }
        EntityKind::ClusterProperty => {
            item::<ClusterProperty>(store, request, &chosen.id, passphrase)
        }
        EntityKind::TrustedCertificate => {
            item::<TrustedCertificate>(store, request, &chosen.id, passphrase)
        }
        EntityKind::PrivateKey => item::<PrivateKey>(store, request, &chosen.id, passphrase),
        EntityKind::ListenPort => item::<ListenPort>(store, request, &chosen.id, passphrase),
        EntityKind::StoredPassword => {
            item::<StoredPassword>(store, request, &chosen.id, passphrase)
        }
    }
}

/// The reference `l7:Item` of entity `id` of kind `T`, secrets sealed under `passphrase`.
fn item<T: BundleEntity>(
    store: &Store,
    request: &Request,
    id: &str,
    passphrase: Option<&str>,
) -> Option<Element> {
    let stored = store.get::<T>(id)?;
    let mut resource = T::to_xml(stored, store);
    stored.entity.seal_secrets(&mut resource, passphrase);
    Some(envelope::item(&head(stored, &request.base), Some(resource)))
}
