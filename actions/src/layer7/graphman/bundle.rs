//! Graphman JSON bundles (section 2.6): [`GraphmanBundle`] (sections of
//! entities plus `properties` with the default action and mapping
//! instructions), exporting a selection or everything, installing and
//! deleting a bundle with per-entity statuses, and comparing two bundles by
//! checksum ([`diff`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::client::{GraphmanClient, GraphmanOptions};
use super::operations::{
    CLUSTER_PROPERTY_FIELDS, ENCASS_CONFIG_FIELDS, FOLDER_FIELDS, TRUSTED_CERT_FIELDS,
};
use super::status::MutationStatus;
use crate::layer7::arguments::{Layer7Mapping, Layer7Selection, MappingAction};
use crate::layer7::error::Layer7Error;
use crate::layer7::restman::bundle::BundleError;

/// `L7Service` fields a bundle carries.
pub const SERVICE_BUNDLE_FIELDS: &str = "goid guid name resolutionPath serviceType enabled folderPath methodsAllowed tracingEnabled wssProcessingEnabled laxResolution properties { name value } checksum policy { xml }";
/// `L7Policy` fields a bundle carries.
pub const POLICY_BUNDLE_FIELDS: &str =
    "goid guid name policyType tag subTag folderPath soap checksum policy { xml }";

/// The section of the bundle's options and mapping instructions.
pub const PROPERTIES: &str = "properties";

/// The sections an export of everything holds, in dependency order.
pub const EXPORTED_SECTIONS: &[&str] = &[
    "folders",
    "clusterProperties",
    "trustedCerts",
    "policies",
    "encassConfigs",
    "services",
];

/// A Graphman bundle: section name → entities, plus `properties`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GraphmanBundle {
    /// The bundle object, in its order.
    pub sections: Map<String, Value>,
}

impl GraphmanBundle {
    /// Reads a bundle (a JSON object).
    pub fn parse(text: &str) -> Result<Self, BundleError> {
        let value: Value = serde_json::from_str(text).map_err(|error| BundleError {
            reason: format!("not JSON: {error}"),
        })?;
        match value {
            Value::Object(sections) => Ok(Self { sections }),
            _ => Err(BundleError {
                reason: "a Graphman bundle is a JSON object of sections".to_owned(),
            }),
        }
    }

    /// The bundle as indented JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.sections).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The entities of `section` (none when absent).
    pub fn entities(&self, section: &str) -> &[Value] {
        self.sections
            .get(section)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// Every entity section (not `properties`) with its entities.
    pub fn entity_sections(&self) -> impl Iterator<Item = (&str, &[Value])> {
        self.sections
            .iter()
            .filter(|(name, _)| name.as_str() != PROPERTIES)
            .map(|(name, entities)| {
                (
                    name.as_str(),
                    entities.as_array().map_or(&[][..], Vec::as_slice),
                )
            })
    }

    /// Adds an entity to `section` unless one with the same identity is there.
    pub fn push(&mut self, section: &str, entity: Value) {
        let key = identity(section, &entity);
        let entities = self
            .sections
            .entry(section.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entities
            && !list
                .iter()
                .any(|existing| identity(section, existing) == key)
        {
            list.push(entity);
        }
    }

    /// How many entities it holds.
    pub fn len(&self) -> usize {
        self.entity_sections()
            .map(|(_, entities)| entities.len())
            .sum()
    }

    /// Whether it holds no entity.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets `properties.defaultAction` and adds a mapping instruction per
    /// override (`properties.mappings.<section>`), in order. An override must
    /// name a section the bundle has, and a source (goid, name or resolution
    /// path) one of its entities; `map_by`/`map_to` are restman's and refused here.
    pub fn apply_mappings(
        &mut self,
        default_action: MappingAction,
        overrides: &[Layer7Mapping],
    ) -> Result<(), Layer7Error> {
        let mut instructions: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for instruction in overrides {
            let section = graphman_section(&instruction.kind).to_owned();
            let refuse = |reason: &str| Layer7Error::Mapping {
                kind: instruction.kind.clone(),
                selected: instruction.source.clone(),
                reason: reason.to_owned(),
            };
            if instruction.map_by.is_some() || instruction.map_to.is_some() {
                return Err(refuse(
                    "map_by and map_to apply to restman bundles; Graphman matches entities on their identity fields",
                ));
            }
            if self.entities(&section).is_empty() {
                return Err(refuse("the bundle has no entity of this kind"));
            }
            let mut mapping = json!({"action": graphman_action(instruction.action)});
            match &instruction.source {
                None => {
                    mapping["default"] = json!(true);
                }
                Some(source) => {
                    let entity = self
                        .entities(&section)
                        .iter()
                        .find(|entity| matches_source(entity, source))
                        .ok_or_else(|| refuse("matches no entity of the bundle (sources are goids, names or resolution paths)"))?;
                    mapping["source"] = identity_fields(&section, entity);
                }
            }
            if instruction.fail_on_new {
                mapping["failOnNew"] = json!(true);
            }
            if instruction.fail_on_existing {
                mapping["failOnExisting"] = json!(true);
            }
            instructions.entry(section).or_default().push(mapping);
        }
        let properties = self
            .sections
            .entry(PROPERTIES.to_owned())
            .or_insert_with(|| json!({}));
        if !properties.is_object() {
            *properties = json!({});
        }
        properties["defaultAction"] = json!(graphman_action(default_action));
        if instructions.is_empty() {
            return Ok(());
        }
        // The step's instructions come before the bundle's own, so they win.
        let mappings = &mut properties["mappings"];
        if !mappings.is_object() {
            *mappings = json!({});
        }
        for (section, mut added) in instructions {
            let listed = &mut mappings[section.as_str()];
            if let Value::Array(own) = listed.take() {
                added.extend(own);
            }
            *listed = Value::Array(added);
        }
        Ok(())
    }
}

/// The `EntityMutationAction` of an import action.
pub fn graphman_action(action: MappingAction) -> &'static str {
    match action {
        MappingAction::NewOrUpdate => "NEW_OR_UPDATE",
        MappingAction::NewOrExisting => "NEW_OR_EXISTING",
        MappingAction::AlwaysCreateNew => "ALWAYS_CREATE_NEW",
        MappingAction::Delete => "DELETE",
        MappingAction::Ignore => "IGNORE",
    }
}

/// The Graphman section of a mapping `kind` given as a section or a restman type.
pub fn graphman_section(kind: &str) -> &str {
    match kind {
        "SERVICE" => "services",
        "POLICY" => "policies",
        "FOLDER" => "folders",
        "CLUSTER_PROPERTY" => "clusterProperties",
        "TRUSTED_CERT" => "trustedCerts",
        "SSG_KEY_ENTRY" => "keys",
        "SSG_CONNECTOR" => "listenPorts",
        "ENCAPSULATED_ASSERTION" => "encassConfigs",
        "SECURE_PASSWORD" => "secrets",
        "JDBC_CONNECTION" => "jdbcConnections",
        "SCHEDULED_TASK" => "scheduledTasks",
        "JMS_ENDPOINT" => "jmsDestinations",
        other => other,
    }
}

/// The identity fields of a section's entities (`@l7-identity-fields`).
fn identity_field_names(section: &str) -> &'static [&'static str] {
    match section {
        "services" => &["resolutionPath", "serviceType"],
        "folders" => &["folderPath"],
        "keys" => &["keystoreId", "alias"],
        "trustedCerts" => &["thumbprintSha1"],
        _ => &["name"],
    }
}

/// An entity's identity fields, as a mapping `source`.
pub fn identity_fields(section: &str, entity: &Value) -> Value {
    let mut source = Map::new();
    for field in identity_field_names(section) {
        if let Some(value) = entity.get(*field) {
            source.insert((*field).to_owned(), value.clone());
        }
    }
    if source.is_empty()
        && let Some(name) = entity.get("name")
    {
        source.insert("name".to_owned(), name.clone());
    }
    Value::Object(source)
}

/// The key an entity is matched by across bundles: its identity fields (else goid).
pub fn identity(section: &str, entity: &Value) -> String {
    let fields = identity_fields(section, entity);
    match fields.as_object() {
        Some(map) if !map.is_empty() => map
            .values()
            .map(|value| {
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned)
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => entity
            .get("goid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Whether `source` (a goid, name or resolution path) names the entity.
fn matches_source(entity: &Value, source: &str) -> bool {
    ["goid", "name", "resolutionPath", "alias", "folderPath"]
        .iter()
        .any(|field| entity.get(*field).and_then(Value::as_str) == Some(source))
}

/// An entity of a [`GraphmanDiff`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntityKey {
    /// The section (`services`).
    pub section: String,
    /// Its identity (`/orders WEB_API`, a name).
    pub identity: String,
}

/// What differs between two Graphman bundles, entity by entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphmanDiff {
    /// Entities only in the second bundle.
    pub added: Vec<EntityKey>,
    /// Entities only in the first bundle.
    pub removed: Vec<EntityKey>,
    /// Entities in both whose checksum (or, without checksums, content) differs.
    pub changed: Vec<EntityKey>,
}

impl GraphmanDiff {
    /// Whether the bundles hold the same configuration.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// What changed from `before` to `after`: entities matched by section and
/// identity, compared by `checksum` when both have one, else by content
/// without `goid` and `checksum`.
pub fn diff(before: &GraphmanBundle, after: &GraphmanBundle) -> GraphmanDiff {
    let before = by_identity(before);
    let after = by_identity(after);
    let mut result = GraphmanDiff::default();
    for (key, entity) in &after {
        match before.get(key) {
            None => result.added.push(key.clone()),
            Some(old) if !same_configuration(old, entity) => result.changed.push(key.clone()),
            Some(_) => {}
        }
    }
    result.removed = before
        .keys()
        .filter(|key| !after.contains_key(*key))
        .cloned()
        .collect();
    result
}

fn by_identity(bundle: &GraphmanBundle) -> BTreeMap<EntityKey, &Value> {
    bundle
        .entity_sections()
        .flat_map(|(section, entities)| {
            entities.iter().map(move |entity| {
                (
                    EntityKey {
                        section: section.to_owned(),
                        identity: identity(section, entity),
                    },
                    entity,
                )
            })
        })
        .collect()
}

fn same_configuration(a: &Value, b: &Value) -> bool {
    match (a.get("checksum"), b.get("checksum")) {
        (Some(Value::String(x)), Some(Value::String(y))) => x == y,
        _ => without_volatile(a) == without_volatile(b),
    }
}

fn without_volatile(entity: &Value) -> Value {
    let mut copy = entity.clone();
    if let Some(object) = copy.as_object_mut() {
        object.remove("goid");
        object.remove("checksum");
    }
    copy
}

/// The install and delete bundle mutations (bundle in the variables).
const INSTALL_BUNDLE: &str = "mutation installBundleEntities { installBundleEntities { summary } }";
const DELETE_BUNDLE: &str = "mutation deleteBundleEntities { deleteBundleEntities { summary } }";

impl GraphmanClient {
    /// Exports the selection (services by resolution path or name, folders by
    /// path with their services and policies, policies and cluster properties
    /// by name), or everything of [`EXPORTED_SECTIONS`] when `None`. A selected
    /// entity that does not exist is [`Layer7Error::NotFound`].
    pub async fn export(
        &self,
        selection: Option<&Layer7Selection>,
    ) -> Result<GraphmanBundle, Layer7Error> {
        let mut bundle = GraphmanBundle::default();
        let Some(selection) = selection else {
            let query = format!(
                "query all {{ folders {{ {FOLDER_FIELDS} }} clusterProperties {{ {CLUSTER_PROPERTY_FIELDS} }} trustedCerts {{ {TRUSTED_CERT_FIELDS} }} policies {{ {POLICY_BUNDLE_FIELDS} }} encassConfigs {{ {ENCASS_CONFIG_FIELDS} }} services {{ {SERVICE_BUNDLE_FIELDS} }} }}"
            );
            let data: Map<String, Value> = self.query(&query, json!({})).await?;
            for section in EXPORTED_SECTIONS {
                for entity in data
                    .get(*section)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    bundle.push(section, entity.clone());
                }
            }
            return Ok(bundle);
        };
        for path in &selection.folders {
            self.export_folder(path, &mut bundle).await?;
        }
        for name in &selection.cluster_properties {
            let entity = self
                .one(
                    "clusterPropertyByName",
                    "name",
                    name,
                    CLUSTER_PROPERTY_FIELDS,
                    "cluster property",
                )
                .await?;
            bundle.push("clusterProperties", entity);
        }
        for name in &selection.policies {
            let entity = self
                .one("policyByName", "name", name, POLICY_BUNDLE_FIELDS, "policy")
                .await?;
            bundle.push("policies", entity);
        }
        for service in &selection.services {
            let entity = if service.starts_with('/') {
                self.one(
                    "serviceByResolutionPath",
                    "resolutionPath",
                    service,
                    SERVICE_BUNDLE_FIELDS,
                    "service",
                )
                .await?
            } else {
                self.one(
                    "serviceByName",
                    "name",
                    service,
                    SERVICE_BUNDLE_FIELDS,
                    "service",
                )
                .await?
            };
            bundle.push("services", entity);
        }
        Ok(bundle)
    }

    /// Adds the folder at `path`, its sub-folders, and the services and policies in them.
    async fn export_folder(
        &self,
        path: &str,
        bundle: &mut GraphmanBundle,
    ) -> Result<(), Layer7Error> {
        let folders = self
            .list("foldersByPath", "path", path, FOLDER_FIELDS)
            .await?;
        if folders.is_empty() {
            return Err(Layer7Error::NotFound {
                entity: format!("folder `{path}`"),
                request: format!("POST {} (foldersByPath)", self.url()),
                detail: None,
            });
        }
        for folder in folders {
            let folder_path = folder
                .get("folderPath")
                .and_then(Value::as_str)
                .unwrap_or(path)
                .to_owned();
            bundle.push("folders", folder);
            for policy in self
                .list(
                    "policiesByFolderPath",
                    "folderPath",
                    &folder_path,
                    POLICY_BUNDLE_FIELDS,
                )
                .await?
            {
                bundle.push("policies", policy);
            }
            for service in self
                .list(
                    "servicesByFolderPath",
                    "folderPath",
                    &folder_path,
                    SERVICE_BUNDLE_FIELDS,
                )
                .await?
            {
                bundle.push("services", service);
            }
        }
        Ok(())
    }

    /// `field(argument: value) { fields }` that must find one entity.
    async fn one(
        &self,
        field: &str,
        argument: &str,
        value: &str,
        fields: &str,
        noun: &str,
    ) -> Result<Value, Layer7Error> {
        let query = format!(
            "query {field}($value: String!) {{ {field}({argument}: $value) {{ {fields} }} }}"
        );
        let data: Map<String, Value> = self.query(&query, json!({"value": value})).await?;
        match data.get(field) {
            Some(entity) if entity.is_object() => Ok(entity.clone()),
            _ => Err(Layer7Error::NotFound {
                entity: format!("{noun} `{value}`"),
                request: format!("POST {} ({field})", self.url()),
                detail: None,
            }),
        }
    }

    /// `field(argument: value) { fields }` answering a list.
    async fn list(
        &self,
        field: &str,
        argument: &str,
        value: &str,
        fields: &str,
    ) -> Result<Vec<Value>, Layer7Error> {
        let query = format!(
            "query {field}($value: String!) {{ {field}({argument}: $value) {{ {fields} }} }}"
        );
        let data: Map<String, Value> = self.query(&query, json!({"value": value})).await?;
        Ok(data
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// Installs the bundle (`installBundleEntities`, the bundle as variables);
    /// any entity in `ERROR` fails the call. With `options.test` nothing is committed.
    pub async fn install_bundle(
        &self,
        bundle: &GraphmanBundle,
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            INSTALL_BUNDLE,
            Value::Object(bundle.sections.clone()),
            options,
        )
        .await
    }

    /// Deletes the bundle's entities (`deleteBundleEntities`); missing ones are `NONE`, not errors.
    pub async fn delete_bundle(
        &self,
        bundle: &GraphmanBundle,
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            DELETE_BUNDLE,
            Value::Object(bundle.sections.clone()),
            options,
        )
        .await
    }
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;
