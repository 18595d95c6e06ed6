//! Mutation payloads (reference §2.5): statuses, actions, `detailedStatus`, and the single and
//! plural payload shapes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What a mutation did to one entity (`EntityMutationStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityMutationStatus {
    /// Nothing (e.g. a delete of an entity that does not exist).
    None,
    /// A new entity.
    Created,
    /// An existing entity changed.
    Updated,
    /// An entity removed.
    Deleted,
    /// An existing entity kept as it was (`NEW_OR_EXISTING`).
    UsedExisting,
    /// Skipped by an `IGNORE` mapping.
    Ignored,
    /// The entity could not be applied; the request commits nothing.
    Error,
}

impl EntityMutationStatus {
    /// The enum value as Graphman spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Created => "CREATED",
            Self::Updated => "UPDATED",
            Self::Deleted => "DELETED",
            Self::UsedExisting => "USED_EXISTING",
            Self::Ignored => "IGNORED",
            Self::Error => "ERROR",
        }
    }
}

impl fmt::Display for EntityMutationStatus {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// How a mutation treats one entity (`EntityMutationAction`, the mapping action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityMutationAction {
    /// Create it, or update the existing one (the default).
    #[default]
    NewOrUpdate,
    /// Create it, or keep the existing one unchanged.
    NewOrExisting,
    /// Always create a new one.
    AlwaysCreateNew,
    /// Leave it alone.
    Ignore,
    /// Delete the existing one.
    Delete,
}

impl EntityMutationAction {
    /// Every action, in declaration order.
    pub const ALL: [Self; 5] = [
        Self::NewOrUpdate,
        Self::NewOrExisting,
        Self::AlwaysCreateNew,
        Self::Ignore,
        Self::Delete,
    ];

    /// The enum value as Graphman spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewOrUpdate => "NEW_OR_UPDATE",
            Self::NewOrExisting => "NEW_OR_EXISTING",
            Self::AlwaysCreateNew => "ALWAYS_CREATE_NEW",
            Self::Ignore => "IGNORE",
            Self::Delete => "DELETE",
        }
    }
}

impl fmt::Display for EntityMutationAction {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for EntityMutationAction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|action| action.as_str()).collect();
                format!(
                    "unknown mapping action \"{text}\" (expected one of {})",
                    known.join(", ")
                )
            })
    }
}

/// One `{name value}` pair of a detailed status's `source` or `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameValue {
    /// The identity field's name (`name`, `goid`, `alias`, ...).
    pub name: String,
    /// Its value.
    pub value: String,
}

/// `EntityMutationDetailedStatus`: what was done to one entity, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetailedStatus {
    /// The action applied.
    pub action: EntityMutationAction,
    /// The outcome.
    pub status: EntityMutationStatus,
    /// Human text (e.g. `cluster property not found: a.b`); empty when nothing to add.
    pub description: String,
    /// Identity of the entity as sent.
    pub source: Vec<NameValue>,
    /// Identity of the gateway entity it matched or became.
    pub target: Vec<NameValue>,
}

impl DetailedStatus {
    /// A status with no description, source or target yet.
    pub fn new(action: EntityMutationAction, status: EntityMutationStatus) -> Self {
        Self {
            action,
            status,
            description: String::new(),
            source: Vec::new(),
            target: Vec::new(),
        }
    }

    /// An `ERROR` status explaining why.
    pub fn error(action: EntityMutationAction, description: impl Into<String>) -> Self {
        Self::new(action, EntityMutationStatus::Error).described(description)
    }

    /// A `NONE` status for an entity that does not exist (a delete of a missing entity).
    pub fn not_found(action: EntityMutationAction, what: impl fmt::Display) -> Self {
        Self::new(action, EntityMutationStatus::None).described(format!("{what} not found"))
    }

    /// This status with `description`.
    pub fn described(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// This status with `{name value}` added to `source`.
    pub fn with_source(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.source.push(NameValue {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// This status with `{name value}` added to `target`.
    pub fn with_target(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.target.push(NameValue {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// This status with every string field of `identity` added to `source`.
    pub fn with_source_identity(mut self, identity: &Map<String, Value>) -> Self {
        self.source.extend(name_values(identity));
        self
    }

    /// This status with every string field of `identity` added to `target`.
    pub fn with_target_identity(mut self, identity: &Map<String, Value>) -> Self {
        self.target.extend(name_values(identity));
        self
    }

    /// This status as JSON (every field present, as clients select them all).
    pub fn to_json(&self) -> Value {
        json!({
            "action": self.action.as_str(),
            "status": self.status.as_str(),
            "description": self.description,
            "source": pairs_json(&self.source),
            "target": pairs_json(&self.target),
        })
    }
}

/// The scalar fields of `identity` as name/value pairs (strings as they are, others as JSON).
fn name_values(identity: &Map<String, Value>) -> impl Iterator<Item = NameValue> + '_ {
    identity.iter().filter_map(|(name, value)| {
        let value = match value {
            Value::String(text) => text.clone(),
            Value::Null | Value::Object(_) | Value::Array(_) => return None,
            other => other.to_string(),
        };
        Some(NameValue {
            name: name.clone(),
            value,
        })
    })
}

/// Name/value pairs as a JSON list.
fn pairs_json(pairs: &[NameValue]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|pair| json!({"name": pair.name, "value": pair.value}))
            .collect(),
    )
}

/// The outcome for one input entity of a mutation.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityOutcome {
    /// What was done.
    pub detailed: DetailedStatus,
    /// The entity as it now is (full JSON), or `None` when there is none (error, not found,
    /// deleted: a deleted entity may be given as it was).
    pub entity: Option<Value>,
}

impl EntityOutcome {
    /// An outcome with its entity.
    pub fn new(detailed: DetailedStatus, entity: Option<Value>) -> Self {
        Self { detailed, entity }
    }
}

/// A single-entity payload: `{status, detailedStatus, <entity_field>}`.
pub fn single_payload(entity_field: &str, outcome: EntityOutcome) -> Value {
    let mut payload = Map::new();
    payload.insert("status".into(), json!(outcome.detailed.status.as_str()));
    payload.insert("detailedStatus".into(), outcome.detailed.to_json());
    payload.insert(entity_field.into(), outcome.entity.unwrap_or(Value::Null));
    Value::Object(payload)
}

/// A plural payload: `{status: [..], detailedStatus: [..], <entities_field>: [..]}`, one entry
/// per input in input order (`null` in the entity list where an input has no entity).
pub fn plural_payload(entities_field: &str, outcomes: Vec<EntityOutcome>) -> Value {
    let statuses: Vec<Value> = outcomes
        .iter()
        .map(|outcome| json!(outcome.detailed.status.as_str()))
        .collect();
    let detailed: Vec<Value> = outcomes
        .iter()
        .map(|outcome| outcome.detailed.to_json())
        .collect();
    let entities: Vec<Value> = outcomes
        .into_iter()
        .map(|outcome| outcome.entity.unwrap_or(Value::Null))
        .collect();
    let mut payload = Map::new();
    payload.insert("status".into(), Value::Array(statuses));
    payload.insert("detailedStatus".into(), Value::Array(detailed));
    payload.insert(entities_field.into(), Value::Array(entities));
    Value::Object(payload)
}

/// The description of the first `ERROR` status of a payload (single, plural, or a bundle
/// operation's `summary` of per-section `detailedStatus` lists), if any.
pub fn payload_error(payload: &Value) -> Option<String> {
    let error = EntityMutationStatus::Error.as_str();
    let detailed: Vec<&Value> = match (payload.get("detailedStatus"), payload.get("summary")) {
        (Some(Value::Array(list)), _) => list.iter().collect(),
        (Some(single @ Value::Object(_)), _) => vec![single],
        (None, Some(Value::Object(sections))) => sections
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .collect(),
        _ => Vec::new(),
    };
    if let Some(failed) = detailed
        .into_iter()
        .find(|status| status.get("status").and_then(Value::as_str) == Some(error))
    {
        let description = failed
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Some(description.to_owned());
    }
    let failed = match payload.get("status") {
        Some(Value::String(status)) => status == error,
        Some(Value::Array(list)) => list.iter().any(|status| status.as_str() == Some(error)),
        _ => false,
    };
    failed.then(String::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn enums_use_graphman_spellings() -> TestResult {
        assert_eq!(
            serde_json::to_value(EntityMutationStatus::UsedExisting)?,
            json!("USED_EXISTING")
        );
        assert_eq!(EntityMutationStatus::None.to_string(), "NONE");
        for action in EntityMutationAction::ALL {
            assert_eq!(action.as_str().parse::<EntityMutationAction>(), Ok(action));
            assert_eq!(serde_json::to_value(action)?, json!(action.as_str()));
        }
        let unknown = "NewOrUpdate".parse::<EntityMutationAction>();
        assert!(unknown.is_err_and(|message| message.contains("NEW_OR_UPDATE")));
        assert_eq!(
            EntityMutationAction::default(),
            EntityMutationAction::NewOrUpdate
        );
        Ok(())
    }

    #[test]
    fn detailed_status_renders_every_field() {
        let status = DetailedStatus::new(
            EntityMutationAction::NewOrUpdate,
            EntityMutationStatus::Created,
        )
        .with_source("name", "a")
        .with_target_identity(
            &serde_json::from_value(json!({"goid": "00ff", "n": 1, "x": null})).unwrap_or_default(),
        );
        assert_eq!(
            status.to_json(),
            json!({"action": "NEW_OR_UPDATE", "status": "CREATED", "description": "",
                   "source": [{"name": "name", "value": "a"}],
                   "target": [{"name": "goid", "value": "00ff"}, {"name": "n", "value": "1"}]})
        );
    }

    #[test]
    fn payloads_single_and_plural() {
        let created = EntityOutcome::new(
            DetailedStatus::new(
                EntityMutationAction::NewOrUpdate,
                EntityMutationStatus::Created,
            ),
            Some(json!({"name": "a"})),
        );
        let missing = EntityOutcome::new(
            DetailedStatus::not_found(EntityMutationAction::Delete, "cluster property b"),
            None,
        );
        let single = single_payload("clusterProperty", created.clone());
        assert_eq!(single["status"], json!("CREATED"));
        assert_eq!(single["clusterProperty"], json!({"name": "a"}));
        assert_eq!(payload_error(&single), None);
        let plural = plural_payload("clusterProperties", vec![created, missing]);
        assert_eq!(plural["status"], json!(["CREATED", "NONE"]));
        assert_eq!(plural["clusterProperties"], json!([{"name": "a"}, null]));
        assert_eq!(
            plural["detailedStatus"][1]["description"],
            json!("cluster property b not found")
        );
        assert_eq!(payload_error(&plural), None);
    }

    #[test]
    fn payload_error_finds_error_statuses() {
        let failed = plural_payload(
            "keys",
            vec![EntityOutcome::new(
                DetailedStatus::error(EntityMutationAction::NewOrUpdate, "alias taken"),
                None,
            )],
        );
        assert_eq!(payload_error(&failed), Some("alias taken".to_owned()));
        assert_eq!(
            payload_error(&json!({"status": "ERROR"})),
            Some(String::new())
        );
        assert_eq!(payload_error(&json!({"summary": "ok"})), None);
    }
}
