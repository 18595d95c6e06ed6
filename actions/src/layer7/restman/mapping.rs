//! Bundle mappings: the `l7:Mapping` instruction ([`Mapping`]) with its
//! [`RestmanAction`] and properties, the import's per-mapping answer
//! ([`MappingResult`], [`MappingFailure`]), and the import arguments'
//! [`Layer7Mapping`] overrides turned into restman's actions and properties.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::properties::{Properties, PropertyValue, no_properties};
use crate::layer7::arguments::{Layer7Mapping, MappingAction};

/// `FailOnNew`: fail if the target does not exist.
pub const FAIL_ON_NEW: &str = "FailOnNew";
/// `FailOnExisting`: fail if the target exists.
pub const FAIL_ON_EXISTING: &str = "FailOnExisting";
/// `MapBy`: the field that finds the target (`id` by default).
pub const MAP_BY: &str = "MapBy";
/// `MapTo`: the target's value of `MapBy`.
pub const MAP_TO: &str = "MapTo";
/// `ErrorMessage`: why a mapping failed (in a 409 answer).
pub const ERROR_MESSAGE: &str = "ErrorMessage";

/// A mapping's action, as restman spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum RestmanAction {
    /// Use the target if it exists, else create it.
    NewOrExisting,
    /// Update the target if it exists, else create it.
    NewOrUpdate,
    /// Create, with a new id if needed, even if it exists.
    AlwaysCreateNew,
    /// Delete the target.
    Delete,
    /// Leave it alone.
    Ignore,
}

impl RestmanAction {
    /// The action as restman spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RestmanAction::NewOrExisting => "NewOrExisting",
            RestmanAction::NewOrUpdate => "NewOrUpdate",
            RestmanAction::AlwaysCreateNew => "AlwaysCreateNew",
            RestmanAction::Delete => "Delete",
            RestmanAction::Ignore => "Ignore",
        }
    }
}

impl From<MappingAction> for RestmanAction {
    fn from(action: MappingAction) -> Self {
        match action {
            MappingAction::NewOrUpdate => RestmanAction::NewOrUpdate,
            MappingAction::NewOrExisting => RestmanAction::NewOrExisting,
            MappingAction::AlwaysCreateNew => RestmanAction::AlwaysCreateNew,
            MappingAction::Delete => RestmanAction::Delete,
            MappingAction::Ignore => RestmanAction::Ignore,
        }
    }
}

impl fmt::Display for RestmanAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `<l7:Mapping>`: what an import does with one entity, and (in the answer) what it did.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Mapping {
    /// `action`.
    #[serde(rename = "@action")]
    pub action: RestmanAction,
    /// `actionTaken` (answer): `CreatedNew`, `UsedExisting`, `UpdatedExisting`, `Deleted`, `Ignored`.
    #[serde(
        rename = "@actionTaken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub action_taken: Option<String>,
    /// `errorType` (409 answer): `UniqueKeyConflict`, `TargetNotFound`, ...
    #[serde(
        rename = "@errorType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_type: Option<String>,
    /// `srcId`: the entity's id in the bundle.
    #[serde(rename = "@srcId", default)]
    pub src_id: String,
    /// `srcUri`: where the exporting gateway served it.
    #[serde(rename = "@srcUri", default, skip_serializing_if = "Option::is_none")]
    pub src_uri: Option<String>,
    /// `targetId` (answer): the entity's id on this gateway.
    #[serde(rename = "@targetId", default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// `targetUri` (answer).
    #[serde(
        rename = "@targetUri",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_uri: Option<String>,
    /// `type` (`SERVICE`).
    #[serde(rename = "@type")]
    pub kind: String,
    /// `l7:Properties`: `FailOnNew`, `FailOnExisting`, `MapBy`, `MapTo`, `ErrorMessage`.
    #[serde(
        rename(serialize = "l7:Properties", deserialize = "Properties"),
        default,
        skip_serializing_if = "no_properties"
    )]
    pub properties: Option<Properties>,
}

impl Mapping {
    /// A mapping of `kind` `src_id` with this action and no properties.
    pub fn new(action: RestmanAction, kind: &str, src_id: &str) -> Self {
        Self {
            action,
            action_taken: None,
            error_type: None,
            src_id: src_id.to_owned(),
            src_uri: None,
            target_id: None,
            target_uri: None,
            kind: kind.to_owned(),
            properties: None,
        }
    }

    /// A property's value.
    pub fn property(&self, key: &str) -> Option<&PropertyValue> {
        self.properties.as_ref()?.get(key)
    }

    /// Whether a boolean property is set and true.
    pub fn flag(&self, key: &str) -> bool {
        self.property(key)
            .and_then(PropertyValue::as_bool)
            .unwrap_or(false)
    }

    /// Sets a boolean property when `on`, removes it otherwise.
    pub fn set_flag(&mut self, key: &str, on: bool) {
        if on {
            self.properties
                .get_or_insert_with(Properties::default)
                .set(key, PropertyValue::Boolean(true));
        } else if let Some(properties) = self.properties.as_mut() {
            properties.remove(key);
        }
    }

    /// Sets a string property when given, removes it otherwise.
    pub fn set_text(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self
                .properties
                .get_or_insert_with(Properties::default)
                .set(key, PropertyValue::String(value.to_owned())),
            None => {
                if let Some(properties) = self.properties.as_mut() {
                    properties.remove(key);
                }
            }
        }
    }

    /// The `ErrorMessage` property of a failed mapping.
    pub fn error_message(&self) -> Option<String> {
        self.property(ERROR_MESSAGE).map(PropertyValue::as_text)
    }

    /// Applies an import override: its action, `FailOnNew`/`FailOnExisting` and `MapBy`/`MapTo`.
    pub fn apply(&mut self, mapping: &Layer7Mapping) {
        self.action = mapping.action.into();
        self.set_flag(FAIL_ON_NEW, mapping.fail_on_new);
        self.set_flag(FAIL_ON_EXISTING, mapping.fail_on_existing);
        self.set_text(MAP_BY, mapping.map_by.as_deref());
        self.set_text(MAP_TO, mapping.map_to.as_deref());
        if self.properties.as_ref().is_some_and(Properties::is_empty) {
            self.properties = None;
        }
    }
}

/// The restman type code of a mapping `kind` given as a restman type or a Graphman section.
pub fn restman_type(kind: &str) -> &str {
    match kind {
        "services" => "SERVICE",
        "policies" => "POLICY",
        "folders" => "FOLDER",
        "clusterProperties" => "CLUSTER_PROPERTY",
        "trustedCerts" => "TRUSTED_CERT",
        "keys" => "SSG_KEY_ENTRY",
        "listenPorts" => "SSG_CONNECTOR",
        "encassConfigs" => "ENCAPSULATED_ASSERTION",
        "secrets" => "SECURE_PASSWORD",
        "jdbcConnections" => "JDBC_CONNECTION",
        "scheduledTasks" => "SCHEDULED_TASK",
        "jmsDestinations" => "JMS_ENDPOINT",
        other => other,
    }
}

/// What an import did with a mapping (`actionTaken`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionTaken {
    /// `CreatedNew`.
    CreatedNew,
    /// `UsedExisting`.
    UsedExisting,
    /// `UpdatedExisting`.
    UpdatedExisting,
    /// `Deleted`.
    Deleted,
    /// `Ignored`.
    Ignored,
    /// A value this client does not know, as the gateway wrote it.
    Other(String),
}

impl ActionTaken {
    /// Reads restman's spelling.
    pub fn parse(text: &str) -> Self {
        match text {
            "CreatedNew" => ActionTaken::CreatedNew,
            "UsedExisting" => ActionTaken::UsedExisting,
            "UpdatedExisting" => ActionTaken::UpdatedExisting,
            "Deleted" => ActionTaken::Deleted,
            "Ignored" => ActionTaken::Ignored,
            other => ActionTaken::Other(other.to_owned()),
        }
    }

    /// Whether the gateway's state changed (created, updated or deleted).
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            ActionTaken::CreatedNew | ActionTaken::UpdatedExisting | ActionTaken::Deleted
        )
    }

    /// restman's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ActionTaken::CreatedNew => "CreatedNew",
            ActionTaken::UsedExisting => "UsedExisting",
            ActionTaken::UpdatedExisting => "UpdatedExisting",
            ActionTaken::Deleted => "Deleted",
            ActionTaken::Ignored => "Ignored",
            ActionTaken::Other(other) => other,
        }
    }
}

/// One mapping's result of an import (or of its test run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingResult {
    /// The entity type (`SERVICE`).
    pub kind: String,
    /// The entity's id in the bundle.
    pub src_id: String,
    /// The entity's name in the bundle, when the bundle holds it.
    pub name: Option<String>,
    /// The action asked for.
    pub action: RestmanAction,
    /// What the gateway did (absent for a failed mapping).
    pub action_taken: Option<ActionTaken>,
    /// The entity's id on the gateway.
    pub target_id: Option<String>,
    /// The entity's URI on the gateway.
    pub target_uri: Option<String>,
    /// `errorType`, when this mapping failed.
    pub error_type: Option<String>,
    /// `ErrorMessage`, when this mapping failed.
    pub error_message: Option<String>,
}

impl MappingResult {
    /// The result of a mapping as the gateway answered it, named from the bundle.
    pub fn from_mapping(mapping: &Mapping, name: Option<&str>) -> Self {
        Self {
            kind: mapping.kind.clone(),
            src_id: mapping.src_id.clone(),
            name: name.map(str::to_owned),
            action: mapping.action,
            action_taken: mapping.action_taken.as_deref().map(ActionTaken::parse),
            target_id: mapping.target_id.clone(),
            target_uri: mapping.target_uri.clone(),
            error_type: mapping.error_type.clone(),
            error_message: mapping.error_message(),
        }
    }

    /// The entity in words: `SERVICE `foo API` (610e…)` or `SERVICE 610e…`.
    pub fn entity(&self) -> String {
        match &self.name {
            Some(name) => format!("{} `{name}` ({})", self.kind, self.src_id),
            None => format!("{} {}", self.kind, self.src_id),
        }
    }

    /// The failure, when this mapping failed.
    pub fn failure(&self) -> Option<MappingFailure> {
        let error_type = self.error_type.clone()?;
        Some(MappingFailure {
            kind: self.kind.clone(),
            src_id: self.src_id.clone(),
            name: self.name.clone(),
            error_type,
            message: self.error_message.clone().unwrap_or_default(),
        })
    }
}

/// The mapping a bundle import failed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingFailure {
    /// The entity type (`TRUSTED_CERT`).
    pub kind: String,
    /// The entity's id in the bundle.
    pub src_id: String,
    /// The entity's name in the bundle, when the bundle holds it.
    pub name: Option<String>,
    /// `errorType` (`UniqueKeyConflict`).
    pub error_type: String,
    /// The `ErrorMessage` property (`(thumbprintSha1) must be unique`).
    pub message: String,
}

impl fmt::Display for MappingFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bundle import failed at {}", self.kind)?;
        if let Some(name) = &self.name {
            write!(f, " `{name}`")?;
        }
        write!(f, " (srcId {}): {}", self.src_id, self.error_type)?;
        if !self.message.trim().is_empty() {
            write!(f, ": {}", self.message.trim())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer7::restman::xml::from_document;

    /// The 409 body of Broadcom KB 107541.
    pub(crate) const KB_107541: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <l7:Mapping action="NewOrExisting" errorType="UniqueKeyConflict" srcId="72f4f7b3163310e735f460b5daba111d" type="TRUSTED_CERT">
                <l7:Properties>
                    <l7:Property key="ErrorMessage">
                        <l7:StringValue>(thumbprintSha1)  must be unique</l7:StringValue>
                    </l7:Property>
                </l7:Properties>
            </l7:Mapping>"#;

    #[test]
    fn reads_the_kb_107541_failure() -> Result<(), quick_xml::DeError> {
        let mapping: Mapping = from_document(KB_107541)?;
        let result = MappingResult::from_mapping(&mapping, Some("apim-ssg"));
        let failure = result.failure();
        assert_eq!(
            failure.map(|f| f.to_string()).as_deref(),
            Some(
                "bundle import failed at TRUSTED_CERT `apim-ssg` (srcId 72f4f7b3163310e735f460b5daba111d): UniqueKeyConflict: (thumbprintSha1)  must be unique"
            )
        );
        Ok(())
    }

    #[test]
    fn an_override_sets_exactly_its_properties() {
        let mut mapping = Mapping::new(RestmanAction::NewOrExisting, "CLUSTER_PROPERTY", "abc");
        mapping.set_flag(FAIL_ON_NEW, true);
        mapping.apply(&Layer7Mapping {
            kind: "CLUSTER_PROPERTY".to_owned(),
            source: None,
            action: MappingAction::NewOrUpdate,
            fail_on_new: false,
            fail_on_existing: true,
            map_by: Some("name".to_owned()),
            map_to: Some("b".to_owned()),
        });
        assert_eq!(mapping.action, RestmanAction::NewOrUpdate);
        assert!(!mapping.flag(FAIL_ON_NEW));
        assert!(mapping.flag(FAIL_ON_EXISTING));
        assert_eq!(
            mapping.property(MAP_TO),
            Some(&PropertyValue::String("b".to_owned()))
        );
        mapping.apply(&Layer7Mapping {
            kind: "CLUSTER_PROPERTY".to_owned(),
            source: None,
            action: MappingAction::Ignore,
            fail_on_new: false,
            fail_on_existing: false,
            map_by: None,
            map_to: None,
        });
        assert_eq!(mapping.properties, None);
    }

    #[test]
    fn graphman_sections_name_restman_types() {
        assert_eq!(restman_type("services"), "SERVICE");
        assert_eq!(restman_type("clusterProperties"), "CLUSTER_PROPERTY");
        assert_eq!(restman_type("SERVICE"), "SERVICE");
        assert!(ActionTaken::parse("CreatedNew").is_change());
        assert!(!ActionTaken::parse("UsedExisting").is_change());
        assert_eq!(ActionTaken::parse("Renamed").as_str(), "Renamed");
    }
}
