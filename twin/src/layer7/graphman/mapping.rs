//! Mapping instructions of a bundle's `properties` (reference §2.6): the default action,
//! per-section and per-entity instructions, and the decision they lead to for one entity.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::bundle::{BundleError, Section};
use super::status::{EntityMutationAction, EntityMutationStatus};

/// A bundle's `properties`: the default action and mapping instructions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BundleProperties {
    /// `defaultAction`, `NEW_OR_UPDATE` unless given.
    pub default_action: EntityMutationAction,
    /// `mappings` by section name.
    pub mappings: BTreeMap<String, Vec<MappingInstruction>>,
    /// `meta`, kept as sent.
    pub meta: Option<Value>,
}

/// One mapping instruction: for a whole section (`default: true`) or for the entity whose
/// identity is `source`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MappingInstruction {
    /// The action; `None` leaves the section's or the bundle's default.
    pub action: Option<EntityMutationAction>,
    /// Whether this is the section's default instruction.
    pub default: bool,
    /// Fail when the entity does not exist yet.
    pub fail_on_new: bool,
    /// Fail when the entity already exists.
    pub fail_on_existing: bool,
    /// Identity fields of the entity this instruction is for.
    pub source: Map<String, Value>,
}

/// The mapping that applies to one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mapping {
    /// The action.
    pub action: EntityMutationAction,
    /// Fail when the entity does not exist yet.
    pub fail_on_new: bool,
    /// Fail when the entity already exists.
    pub fail_on_existing: bool,
}

impl BundleProperties {
    /// Reads `properties` (`null` is the defaults).
    pub fn from_value(value: &Value) -> Result<Self, BundleError> {
        let invalid = |path: String, reason: String| BundleError::Properties { path, reason };
        let object = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(object) => object,
            _ => return Err(invalid(String::new(), "must be an object".into())),
        };
        let mut properties = Self {
            meta: object.get("meta").cloned(),
            ..Self::default()
        };
        if let Some(action) = object.get("defaultAction").filter(|value| !value.is_null()) {
            properties.default_action =
                parse_action(action).map_err(|reason| invalid(".defaultAction".into(), reason))?;
        }
        match object.get("mappings") {
            None | Some(Value::Null) => {}
            Some(Value::Object(mappings)) => {
                for (section, list) in mappings {
                    let path = format!(".mappings.{section}");
                    let Value::Array(list) = list else {
                        return Err(invalid(path, "must be a list of instructions".into()));
                    };
                    let instructions = list
                        .iter()
                        .enumerate()
                        .map(|(index, entry)| {
                            MappingInstruction::from_value(entry).map_err(|(place, reason)| {
                                invalid(format!("{path}[{index}]{place}"), reason)
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    properties.mappings.insert(section.clone(), instructions);
                }
            }
            Some(_) => return Err(invalid(".mappings".into(), "must be an object".into())),
        }
        Ok(properties)
    }

    /// Reads the `properties` variable of a request (the bundle's, as graphman-client sends it).
    pub fn from_variables(variables: &Map<String, Value>) -> Result<Self, BundleError> {
        variables
            .get("properties")
            .map_or_else(|| Ok(Self::default()), Self::from_value)
    }

    /// The mapping for `entity` of `section`: its own instruction (matched by identity), else
    /// the section's default instruction, else the bundle's default action.
    pub fn mapping_for(&self, section: &Section, entity: &Value) -> Mapping {
        let instructions = self
            .mappings
            .get(section.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let section_default = instructions.iter().find(|instruction| instruction.default);
        let default_action = section_default
            .and_then(|instruction| instruction.action)
            .unwrap_or(self.default_action);
        let own = instructions.iter().find(|instruction| {
            !instruction.default
                && section.same_entity(&Value::Object(instruction.source.clone()), entity)
        });
        match own.or(section_default) {
            Some(instruction) => Mapping {
                action: instruction.action.unwrap_or(default_action),
                fail_on_new: instruction.fail_on_new,
                fail_on_existing: instruction.fail_on_existing,
            },
            None => Mapping {
                action: default_action,
                ..Mapping::default()
            },
        }
    }
}

impl MappingInstruction {
    /// Reads one instruction; the error is the place inside it (`.action`) and the reason.
    fn from_value(value: &Value) -> Result<Self, (String, String)> {
        let object = value
            .as_object()
            .ok_or_else(|| (String::new(), "must be an object".to_owned()))?;
        let flag = |name: &str| -> Result<bool, (String, String)> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(flag)) => Ok(*flag),
                Some(_) => Err((format!(".{name}"), "must be true or false".to_owned())),
            }
        };
        let action = match object.get("action") {
            None | Some(Value::Null) => None,
            Some(action) => {
                Some(parse_action(action).map_err(|reason| (".action".to_owned(), reason))?)
            }
        };
        let source = match object.get("source") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(source)) => source.clone(),
            Some(_) => {
                let reason = "must be an object of identity fields".to_owned();
                return Err((".source".to_owned(), reason));
            }
        };
        let default = flag("default")?;
        if !default && source.is_empty() {
            let reason = "needs \"default\": true or a \"source\" with identity fields";
            return Err((String::new(), reason.to_owned()));
        }
        Ok(Self {
            action,
            default,
            fail_on_new: flag("failOnNew")?,
            fail_on_existing: flag("failOnExisting")?,
            source,
        })
    }
}

/// An action from JSON.
fn parse_action(value: &Value) -> Result<EntityMutationAction, String> {
    value
        .as_str()
        .ok_or_else(|| "must be a mapping action name".to_owned())?
        .parse()
}

/// What to do with one entity, given its mapping and whether it exists on the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create it (status `CREATED`).
    Create,
    /// Replace the existing one (status `UPDATED`).
    Update,
    /// Keep the existing one (status `USED_EXISTING`).
    UseExisting,
    /// Leave it alone (status `IGNORED`).
    Ignore,
    /// Delete the existing one (status `DELETED`).
    Delete,
    /// Delete asked for an entity that does not exist (status `NONE`, not an error).
    AlreadyAbsent,
    /// `failOnNew`/`failOnExisting` refused it (status `ERROR`), with the reason.
    Refuse(String),
}

impl Decision {
    /// The status this decision reports.
    pub fn status(&self) -> EntityMutationStatus {
        match self {
            Self::Create => EntityMutationStatus::Created,
            Self::Update => EntityMutationStatus::Updated,
            Self::UseExisting => EntityMutationStatus::UsedExisting,
            Self::Ignore => EntityMutationStatus::Ignored,
            Self::Delete => EntityMutationStatus::Deleted,
            Self::AlreadyAbsent => EntityMutationStatus::None,
            Self::Refuse(_) => EntityMutationStatus::Error,
        }
    }
}

/// Applies the mapping semantics: `IGNORE` wins, `DELETE` of a missing entity is
/// [`Decision::AlreadyAbsent`], then `failOnNew`/`failOnExisting`, then the action.
pub fn decide(mapping: &Mapping, exists: bool) -> Decision {
    match mapping.action {
        EntityMutationAction::Ignore => return Decision::Ignore,
        EntityMutationAction::Delete if exists => return Decision::Delete,
        EntityMutationAction::Delete => return Decision::AlreadyAbsent,
        _ => {}
    }
    if mapping.fail_on_new && !exists {
        return Decision::Refuse("the entity does not exist and its mapping sets failOnNew".into());
    }
    if mapping.fail_on_existing && exists {
        return Decision::Refuse(
            "the entity already exists and its mapping sets failOnExisting".into(),
        );
    }
    match (mapping.action, exists) {
        (EntityMutationAction::NewOrUpdate, true) => Decision::Update,
        (EntityMutationAction::NewOrExisting, true) => Decision::UseExisting,
        _ => Decision::Create,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::layer7::graphman::bundle::find_section;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn mappings_per_entity_then_per_section_then_bundle_default() -> TestResult {
        let properties = BundleProperties::from_value(&json!({
            "defaultAction": "NEW_OR_UPDATE",
            "mappings": {
                "clusterProperties": [
                    {"default": true, "action": "NEW_OR_EXISTING"},
                    {"action": "DELETE", "source": {"name": "old"}},
                    {"failOnExisting": true, "source": {"name": "fresh"}},
                ],
            },
        }))?;
        let section = find_section("clusterProperties").ok_or("section")?;
        let services = find_section("services").ok_or("section")?;
        let mapping = |section: &Section, name: &str| {
            properties.mapping_for(section, &json!({"name": name, "resolutionPath": name}))
        };
        assert_eq!(mapping(section, "old").action, EntityMutationAction::Delete);
        assert_eq!(
            mapping(section, "other").action,
            EntityMutationAction::NewOrExisting
        );
        let fresh = mapping(section, "fresh");
        assert_eq!(fresh.action, EntityMutationAction::NewOrExisting);
        assert!(fresh.fail_on_existing && !fresh.fail_on_new);
        assert_eq!(
            mapping(services, "/x").action,
            EntityMutationAction::NewOrUpdate
        );
        let variables = json!({"properties": {"defaultAction": "IGNORE"}});
        let from_variables =
            BundleProperties::from_variables(variables.as_object().ok_or("object")?)?;
        assert_eq!(from_variables.default_action, EntityMutationAction::Ignore);
        Ok(())
    }

    #[test]
    fn malformed_properties_say_where() {
        let error = BundleProperties::from_value(&json!({
            "mappings": {"services": [{"default": true}, {"action": "REPLACE", "source": {"name": "a"}}]}
        }))
        .map_err(|error| error.to_string());
        assert_eq!(
            error,
            Err("bundle properties.mappings.services[1].action: unknown mapping action \"REPLACE\" (expected one of NEW_OR_UPDATE, NEW_OR_EXISTING, ALWAYS_CREATE_NEW, IGNORE, DELETE)".to_owned())
        );
        let error =
            BundleProperties::from_value(&json!({"mappings": {"keys": [{"action": "IGNORE"}]}}))
                .map_err(|error| error.to_string());
        assert!(error.is_err_and(|message| message.contains("keys[0]: needs")));
        let error = BundleProperties::from_value(&json!({"defaultAction": 3}));
        assert!(error.is_err_and(|error| error.to_string().contains(".defaultAction")));
    }

    #[test]
    fn decisions_follow_mapping_semantics() {
        let mapping = |action, fail_on_new, fail_on_existing| Mapping {
            action,
            fail_on_new,
            fail_on_existing,
        };
        use EntityMutationAction::*;
        assert_eq!(
            decide(&mapping(NewOrUpdate, false, false), true),
            Decision::Update
        );
        assert_eq!(
            decide(&mapping(NewOrUpdate, false, false), false),
            Decision::Create
        );
        assert_eq!(
            decide(&mapping(NewOrExisting, false, false), true),
            Decision::UseExisting
        );
        assert_eq!(
            decide(&mapping(AlwaysCreateNew, false, false), true),
            Decision::Create
        );
        assert_eq!(
            decide(&mapping(Ignore, true, true), false),
            Decision::Ignore
        );
        assert_eq!(
            decide(&mapping(Delete, false, false), true),
            Decision::Delete
        );
        assert_eq!(
            decide(&mapping(Delete, true, false), false),
            Decision::AlreadyAbsent
        );
        assert_eq!(
            decide(&mapping(Delete, true, false), false).status(),
            EntityMutationStatus::None
        );
        assert!(matches!(
            decide(&mapping(NewOrUpdate, true, false), false),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            decide(&mapping(NewOrExisting, false, true), true),
            Decision::Refuse(_)
        ));
    }
}
