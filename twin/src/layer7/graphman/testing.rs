//! A resolver over cluster properties only, for tests of the whole Graphman path; the store
//! side's resolvers follow the same pattern.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::bundle::{self, Section};
use super::checksum::checksum;
use super::document::Field;
use super::mapping::{self, BundleProperties, Decision};
use super::resolver::{Context, FieldError, GraphmanResolver};
use super::status::{
    DetailedStatus, EntityMutationAction, EntityMutationStatus, EntityOutcome, plural_payload,
};

/// One cluster property.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ClusterProperty {
    /// Gateway object id.
    pub goid: String,
    /// Unique name.
    pub name: String,
    /// Value.
    pub value: String,
    /// Description.
    pub description: Option<String>,
    /// Whether the Policy Manager hides it.
    pub hidden_property: bool,
}

impl ClusterProperty {
    /// The full JSON Graphman answers for it, with its checksum and GraphQL type.
    pub fn to_json(&self) -> Value {
        let mut entity = json!({
            "__typename": "ClusterProperty",
            "goid": self.goid,
            "name": self.name,
            "description": self.description,
            "hiddenProperty": self.hidden_property,
            "value": self.value,
        });
        let checksum = checksum(&entity);
        if let Some(object) = entity.as_object_mut() {
            object.insert("checksum".into(), Value::String(checksum));
        }
        entity
    }
}

/// `ClusterPropertyInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterPropertyInput {
    /// Name.
    name: String,
    /// Value.
    value: String,
    /// Description.
    #[serde(default)]
    description: Option<String>,
    /// Hidden flag.
    #[serde(default)]
    hidden_property: bool,
}

/// `ClusterPropertyRefInput`.
#[derive(Debug, Deserialize)]
struct ClusterPropertyRef {
    /// Name.
    name: String,
}

/// Cluster properties by name.
#[derive(Debug, Clone, Default)]
pub(super) struct ClusterProperties {
    /// The properties.
    pub entries: IndexMap<String, ClusterProperty>,
    /// Goids handed out so far.
    issued: u64,
}

impl ClusterProperties {
    /// Adds or replaces `name` = `value`; its goid.
    pub fn put(&mut self, name: &str, value: &str) -> String {
        let goid = match self.entries.get(name) {
            Some(existing) => existing.goid.clone(),
            None => self.next_goid(),
        };
        self.entries.insert(
            name.to_owned(),
            ClusterProperty {
                goid: goid.clone(),
                name: name.to_owned(),
                value: value.to_owned(),
                description: None,
                hidden_property: false,
            },
        );
        goid
    }

    /// A fresh 32-hex goid.
    fn next_goid(&mut self) -> String {
        self.issued += 1;
        format!("{:032x}", 0xc0ff_ee00_u64 + self.issued)
    }

    /// The bundle section of cluster properties.
    fn section() -> Result<&'static Section, FieldError> {
        bundle::find_section("clusterProperties")
            .ok_or_else(|| FieldError::Failed("clusterProperties section missing".into()))
    }

    /// `setClusterProperties(input: [ClusterPropertyInput!]!)`.
    fn set(&mut self, field: &Field, context: &Context<'_>) -> Result<Value, FieldError> {
        let inputs: Vec<Value> = field.argument("input")?;
        let properties = BundleProperties::from_variables(context.variables)
            .map_err(|error| FieldError::Failed(error.to_string()))?;
        let section = Self::section()?;
        let outcomes = inputs
            .iter()
            .map(|input| self.set_one(section, &properties, input))
            .collect();
        Ok(plural_payload("clusterProperties", outcomes))
    }

    /// Applies one input under its mapping.
    fn set_one(
        &mut self,
        section: &Section,
        properties: &BundleProperties,
        input: &Value,
    ) -> EntityOutcome {
        let mapping = properties.mapping_for(section, input);
        let source = section.identity(input);
        let parsed = match ClusterPropertyInput::deserialize(input) {
            Ok(parsed) => parsed,
            Err(error) => {
                let detailed = DetailedStatus::error(
                    mapping.action,
                    format!("invalid cluster property input: {error}"),
                )
                .with_source_identity(&source);
                return EntityOutcome::new(detailed, None);
            }
        };
        let existing = self.entries.get(&parsed.name).cloned();
        let decision = mapping::decide(&mapping, existing.is_some());
        let status = decision.status();
        let detailed = DetailedStatus::new(mapping.action, status).with_source_identity(&source);
        let entity = match decision {
            Decision::Refuse(reason) => {
                return EntityOutcome::new(
                    detailed.described(format!("{}: {reason}", section.describe(input))),
                    None,
                );
            }
            Decision::AlreadyAbsent => {
                return EntityOutcome::new(
                    detailed.described(format!("cluster property {} not found", parsed.name)),
                    None,
                );
            }
            Decision::Ignore | Decision::UseExisting => existing,
            Decision::Delete => self.entries.shift_remove(&parsed.name),
            Decision::Create | Decision::Update => {
                let goid = existing
                    .map(|existing| existing.goid)
                    .unwrap_or_else(|| self.next_goid());
                let property = ClusterProperty {
                    goid,
                    name: parsed.name.clone(),
                    value: parsed.value,
                    description: parsed.description,
                    hidden_property: parsed.hidden_property,
                };
                self.entries.insert(parsed.name, property.clone());
                Some(property)
            }
        };
        let detailed = match &entity {
            Some(entity) => detailed
                .with_target("goid", entity.goid.clone())
                .with_target("name", entity.name.clone()),
            None => detailed,
        };
        EntityOutcome::new(detailed, entity.map(|entity| entity.to_json()))
    }

    /// `deleteClusterProperties(refInputs: [ClusterPropertyRefInput!], names: [String!])`.
    fn delete(&mut self, field: &Field) -> Result<Value, FieldError> {
        let refs: Vec<ClusterPropertyRef> =
            field.optional_argument("refInputs")?.unwrap_or_default();
        let names: Vec<String> = field.optional_argument("names")?.unwrap_or_default();
        let outcomes = refs
            .into_iter()
            .map(|reference| reference.name)
            .chain(names)
            .map(|name| match self.entries.shift_remove(&name) {
                Some(removed) => EntityOutcome::new(
                    DetailedStatus::new(
                        EntityMutationAction::Delete,
                        EntityMutationStatus::Deleted,
                    )
                    .with_source("name", name)
                    .with_target("goid", removed.goid.clone()),
                    Some(removed.to_json()),
                ),
                None => EntityOutcome::new(
                    DetailedStatus::not_found(
                        EntityMutationAction::Delete,
                        format!("cluster property {name}"),
                    )
                    .with_source("name", name),
                    None,
                ),
            })
            .collect();
        Ok(plural_payload("clusterProperties", outcomes))
    }
}

impl GraphmanResolver for ClusterProperties {
    fn query(&self, field: &Field, _context: &Context<'_>) -> Result<Value, FieldError> {
        match field.name.as_str() {
            "clusterProperties" => Ok(Value::Array(
                self.entries
                    .values()
                    .map(ClusterProperty::to_json)
                    .collect(),
            )),
            "clusterPropertyByName" => {
                let name: String = field.argument("name")?;
                Ok(self
                    .entries
                    .get(&name)
                    .map_or(Value::Null, ClusterProperty::to_json))
            }
            _ => Err(FieldError::unknown(field, "Query")),
        }
    }

    fn mutate(&mut self, field: &Field, context: &Context<'_>) -> Result<Value, FieldError> {
        match field.name.as_str() {
            "setClusterProperties" => self.set(field, context),
            "deleteClusterProperties" => self.delete(field),
            _ => bundle::empty_mutation_payload(field)
                .ok_or_else(|| FieldError::unknown(field, "Mutation")),
        }
    }
}
