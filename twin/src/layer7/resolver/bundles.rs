//! Whole-bundle mutations (`installBundleEntities`, `deleteBundleEntities`, reference §2.6)
//! and the revision updates of services and policies (`updateServiceRevision`,
//! `updatePolicyRevision`).

use serde_json::{Map, Value, json};

use super::StoreResolver;
use super::kind::GraphmanKind;
use crate::layer7::graphman::bundle::{Bundle, Section};
use crate::layer7::graphman::status::{
    DetailedStatus, EntityMutationAction, EntityMutationStatus, EntityOutcome, single_payload,
};
use crate::layer7::graphman::{Context, Field, FieldError};
use crate::layer7::store::{
    Change, ClusterProperty, EncapsulatedAssertion, Folder, HasRevisions, ListenPort, Policy,
    PrivateKey, Service, StoredPassword, TrustedCertificate,
};

impl StoreResolver {
    /// `installBundleEntities { summary }`: the bundle in the request's variables, section by
    /// section in install order under its mappings; `summary` holds each section's
    /// `detailedStatus` list. A section the twin does not model is an `ERROR` per entity.
    pub(super) fn install_bundle(&mut self, context: &Context<'_>) -> Result<Value, FieldError> {
        let bundle = Bundle::from_value(&Value::Object(context.variables.clone()))
            .map_err(|error| FieldError::Failed(error.to_string()))?;
        let properties = bundle.properties.clone();
        let mut summary = Map::new();
        for (section, entities) in bundle.in_install_order() {
            let outcomes = match section.name {
                "folders" => self.set_all::<Folder>(entities, &properties, context)?,
                "clusterProperties" => {
                    self.set_all::<ClusterProperty>(entities, &properties, context)?
                }
                "trustedCerts" => {
                    self.set_all::<TrustedCertificate>(entities, &properties, context)?
                }
                "secrets" => self.set_all::<StoredPassword>(entities, &properties, context)?,
                "policies" => self.set_all::<Policy>(entities, &properties, context)?,
                "encassConfigs" => {
                    self.set_all::<EncapsulatedAssertion>(entities, &properties, context)?
                }
                "services" => self.set_all::<Service>(entities, &properties, context)?,
                "listenPorts" => self.set_all::<ListenPort>(entities, &properties, context)?,
                "keys" => self.set_all::<PrivateKey>(entities, &properties, context)?,
                _ => unmodelled(section, entities),
            };
            summary.insert(section.name.to_owned(), statuses(outcomes));
        }
        Ok(json!({ "summary": summary }))
    }

    /// `deleteBundleEntities { summary }`: every entity of the bundle deleted, dependents
    /// first (keys last); a missing one is `NONE`.
    pub(super) fn delete_bundle(&mut self, context: &Context<'_>) -> Result<Value, FieldError> {
        let bundle = Bundle::from_value(&Value::Object(context.variables.clone()))
            .map_err(|error| FieldError::Failed(error.to_string()))?;
        let mut summary = Map::new();
        for (section, entities) in bundle.in_delete_order() {
            let outcomes = match section.name {
                "folders" => {
                    // Children before their parents.
                    let mut deepest_first = entities.to_vec();
                    deepest_first.sort_by_key(|folder| {
                        std::cmp::Reverse(
                            super::kind::text(folder, "folderPath")
                                .map_or(0, |path| path.matches('/').count()),
                        )
                    });
                    self.delete_all::<Folder>(&deepest_first, context)?
                }
                "clusterProperties" => self.delete_all::<ClusterProperty>(entities, context)?,
                "trustedCerts" => self.delete_all::<TrustedCertificate>(entities, context)?,
                "secrets" => self.delete_all::<StoredPassword>(entities, context)?,
                "policies" => self.delete_all::<Policy>(entities, context)?,
                "encassConfigs" => self.delete_all::<EncapsulatedAssertion>(entities, context)?,
                "services" => self.delete_all::<Service>(entities, context)?,
                "listenPorts" => self.delete_all::<ListenPort>(entities, context)?,
                "keys" => self.delete_all::<PrivateKey>(entities, context)?,
                _ => entities
                    .iter()
                    .map(|entity| {
                        EntityOutcome::new(
                            DetailedStatus::not_found(
                                EntityMutationAction::Delete,
                                section.describe(entity),
                            )
                            .with_source_identity(&section.identity(entity)),
                            None,
                        )
                    })
                    .collect(),
            };
            summary.insert(section.name.to_owned(), statuses(outcomes));
        }
        Ok(json!({ "summary": summary }))
    }

    /// `updateServiceRevision` / `updatePolicyRevision(refInput, revision, activate,
    /// comment)`: activates revision `revision` (`0` the active one, `-1` the latest) unless
    /// `activate: false`, and sets its comment when given.
    pub(super) fn update_revision<T: GraphmanKind + HasRevisions>(
        &mut self,
        field: &Field,
        entity_field: &str,
    ) -> Result<Value, FieldError> {
        let reference: Value = field.argument("refInput")?;
        let revision: i64 = field.argument("revision")?;
        let activate: bool = field.optional_argument("activate")?.unwrap_or(true);
        let comment: Option<String> = field.optional_argument("comment")?;
        let action = EntityMutationAction::NewOrUpdate;
        let section = T::section()?;
        let source = section.identity(&reference);
        let described = section.describe(&reference);
        let fail = |description: String| {
            single_payload(
                entity_field,
                EntityOutcome::new(
                    DetailedStatus::error(action, description).with_source_identity(&source),
                    None,
                ),
            )
        };
        let Some(id) = T::find(&self.store, &reference) else {
            return Ok(fail(format!("{described} not found")));
        };
        let Some(revisions) = self
            .store
            .get::<T>(&id)
            .map(|stored| stored.entity.revisions().clone())
        else {
            return Ok(fail(format!("{described} not found")));
        };
        let ordinal = match revision {
            0 => revisions.active_ordinal(),
            -1 => revisions.latest_ordinal(),
            other => u64::try_from(other).unwrap_or(0),
        };
        if revisions.get(ordinal).is_none() {
            return Ok(fail(format!(
                "{described} has no revision {revision} (it has revisions 1 to {})",
                revisions.latest_ordinal()
            )));
        }
        let mut changed = false;
        if activate {
            let saved = self
                .store
                .activate_revision::<T>(&id, ordinal)
                .map_err(|error| FieldError::Failed(error.to_string()))?;
            changed |= saved.change != Change::Unchanged;
        }
        if comment.is_some() {
            let saved = self
                .store
                .comment_revision::<T>(&id, ordinal, comment)
                .map_err(|error| FieldError::Failed(error.to_string()))?;
            changed |= saved.change != Change::Unchanged;
        }
        self.changed |= changed;
        let detailed = if changed {
            DetailedStatus::new(action, EntityMutationStatus::Updated)
        } else {
            DetailedStatus::new(action, EntityMutationStatus::UsedExisting).described(format!(
                "{described}: revision {ordinal} is already as asked"
            ))
        }
        .with_source_identity(&source)
        .with_target("revision", ordinal.to_string());
        Ok(single_payload(
            entity_field,
            self.outcome::<T>(detailed, &id),
        ))
    }
}

/// The `detailedStatus` list of some outcomes.
fn statuses(outcomes: Vec<EntityOutcome>) -> Value {
    Value::Array(
        outcomes
            .iter()
            .map(|outcome| outcome.detailed.to_json())
            .collect(),
    )
}

/// An `ERROR` for each entity of a section the twin does not model.
fn unmodelled(section: &Section, entities: &[Value]) -> Vec<EntityOutcome> {
    entities
        .iter()
        .map(|entity| {
            EntityOutcome::new(
                DetailedStatus::error(
                    EntityMutationAction::NewOrUpdate,
                    format!(
                        "{}: the twin does not model {} (it models folders, services, policies, encassConfigs, clusterProperties, keys, trustedCerts, secrets and listenPorts)",
                        section.describe(entity),
                        section.name
                    ),
                )
                .with_source_identity(&section.identity(entity)),
                None,
            )
        })
        .collect()
}
