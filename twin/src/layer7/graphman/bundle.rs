//! The Graphman JSON bundle (reference §2.3, §2.6): the sections and their identity fields,
//! dependency order, `properties` with the default action and mapping instructions, and
//! entity checksums.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::document::Field;
use super::status::{EntityMutationAction, EntityMutationStatus, plural_payload};

/// One kind of entity a bundle carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// The bundle key and plural GraphQL field name (`clusterProperties`).
    pub name: &'static str,
    /// The GraphQL type of its entities (`ClusterProperty`).
    pub type_name: &'static str,
    /// The fields that identify an entity across gateways (`@l7-identity-fields`).
    pub identity_fields: &'static [&'static str],
    /// For a deprecated section, the section that replaces it.
    pub replaced_by: Option<&'static str>,
}

/// Shorthand for the table below.
const fn section(
    name: &'static str,
    type_name: &'static str,
    identity_fields: &'static [&'static str],
) -> Section {
    Section {
        name,
        type_name,
        identity_fields,
        replaced_by: None,
    }
}

/// Shorthand for a deprecated section of the table below.
const fn deprecated(
    name: &'static str,
    type_name: &'static str,
    identity_fields: &'static [&'static str],
    replaced_by: &'static str,
) -> Section {
    Section {
        name,
        type_name,
        identity_fields,
        replaced_by: Some(replaced_by),
    }
}

/// Identity by `name`.
const NAME: &[&str] = &["name"];

/// Every section, in install (dependency) order: graphman-client's `install-bundle` order,
/// keys last.
pub const SECTIONS: &[Section] = &[
    section("serverModuleFiles", "ServerModuleFile", NAME),
    section("clusterProperties", "ClusterProperty", NAME),
    section("serviceResolutionConfigs", "ServiceResolutionConfig", NAME),
    section("passwordPolicies", "PasswordPolicy", NAME),
    section(
        "administrativeUserAccountProperties",
        "AdministrativeUserAccountProperty",
        NAME,
    ),
    section("interfaceTags", "InterfaceTag", NAME),
    section("firewallRules", "FirewallRule", NAME),
    section("folders", "Folder", &["path"]),
    section("revocationCheckPolicies", "RevocationCheckPolicy", NAME),
    section("trustedCerts", "TrustedCert", &["name", "thumbprintSha1"]),
    section("secrets", "Secret", NAME),
    section(
        "httpConfigurations",
        "HttpConfiguration",
        &["host", "port", "protocol", "path"],
    ),
    section("customKeyValues", "CustomKeyValue", &["key"]),
    section("schemas", "Schema", &["systemId"]),
    section("dtds", "Dtd", &["systemId"]),
    section("jdbcConnections", "JdbcConnection", NAME),
    section("internalIdps", "InternalIdp", NAME),
    section("federatedIdps", "FederatedIdp", NAME),
    section("ldapIdps", "LdapIdp", NAME),
    section("simpleLdapIdps", "SimpleLdapIdp", NAME),
    deprecated("fips", "Fip", NAME, "federatedIdps"),
    deprecated("ldaps", "Ldap", NAME, "ldapIdps"),
    section(
        "federatedGroups",
        "FederatedGroup",
        &["name", "providerName"],
    ),
    deprecated(
        "fipGroups",
        "FipGroup",
        &["name", "providerName"],
        "federatedGroups",
    ),
    section("internalGroups", "InternalGroup", NAME),
    section(
        "federatedUsers",
        "FederatedUser",
        &["login", "providerName"],
    ),
    deprecated(
        "fipUsers",
        "FipUser",
        &["login", "providerName"],
        "federatedUsers",
    ),
    section("internalUsers", "InternalUser", &["login"]),
    section("cassandraConnections", "CassandraConnection", NAME),
    section("smConfigs", "SMConfig", NAME),
    section("policies", "L7Policy", NAME),
    deprecated("policyFragments", "PolicyFragment", NAME, "policies"),
    section("encassConfigs", "EncassConfig", NAME),
    deprecated("globalPolicies", "GlobalPolicy", NAME, "policies"),
    deprecated(
        "backgroundTaskPolicies",
        "BackgroundTaskPolicy",
        NAME,
        "policies",
    ),
    section(
        "policyAliases",
        "L7PolicyAlias",
        &["policyName", "folderPath"],
    ),
    section(
        "services",
        "L7Service",
        &["resolutionPath", "serviceType", "resolvers"],
    ),
    deprecated(
        "webApiServices",
        "WebApiService",
        &["resolutionPath"],
        "services",
    ),
    deprecated("soapServices", "SoapService", &["resolvers"], "services"),
    deprecated(
        "internalWebApiServices",
        "WebApiService",
        &["resolutionPath"],
        "services",
    ),
    deprecated(
        "internalSoapServices",
        "SoapService",
        &["resolvers"],
        "services",
    ),
    section(
        "serviceAliases",
        "L7ServiceAlias",
        &["serviceName", "folderPath"],
    ),
    section("sampleMessages", "SampleMessage", NAME),
    section("policyBackedServices", "PolicyBackedService", NAME),
    section("policyBackedIdps", "PolicyBackedIdp", NAME),
    section("jmsDestinations", "JmsDestination", NAME),
    section("emailListeners", "EmailListener", NAME),
    section("listenPorts", "ListenPort", NAME),
    section("activeConnectors", "ActiveConnector", NAME),
    section("scheduledTasks", "ScheduledTask", NAME),
    section("logSinks", "LogSink", NAME),
    section("genericEntities", "GenericEntity", NAME),
    section("roles", "Role", NAME),
    section("auditConfigurations", "AuditConfiguration", NAME),
    section("kerberosConfigs", "KerberosConfig", NAME),
    section("keys", "Key", &["keystoreId", "alias"]),
];

/// Sections mutated last in both install and delete order (graphman-client: "Keys and
/// KerberosConfig must be mutated at the end").
const ALWAYS_LAST: [&str; 2] = ["kerberosConfigs", "keys"];

/// The section named `name` (a bundle key), if known.
pub fn find_section(name: &str) -> Option<&'static Section> {
    SECTIONS.iter().find(|section| section.name == name)
}

/// The section whose set mutation is `field` (`setClusterProperties`), if any.
pub fn section_of_set_mutation(field: &str) -> Option<&'static Section> {
    SECTIONS
        .iter()
        .find(|section| section.set_mutation() == field)
}

/// The payload of a set or delete mutation of a known section called with no entities
/// (`setJmsDestinations(input: [])`), which graphman-client's install-bundle and
/// delete-bundle queries send for every section a bundle lacks; `None` for any other field,
/// so a resolver can answer sections it does not model as long as nothing is asked of them.
pub fn empty_mutation_payload(field: &Field) -> Option<Value> {
    let section = SECTIONS.iter().find(|section| {
        section.set_mutation() == field.name || section.delete_mutation() == field.name
    })?;
    let empty = field.arguments.values().all(|value| match value {
        Value::Null => true,
        Value::Array(list) => list.is_empty(),
        _ => false,
    });
    empty.then(|| plural_payload(section.name, Vec::new()))
}

/// Every section in install order.
pub fn install_order() -> impl Iterator<Item = &'static Section> {
    SECTIONS.iter()
}

/// Every section in delete order: dependents first (the reverse of install), keys and
/// Kerberos configurations still last.
pub fn delete_order() -> Vec<&'static Section> {
    let (last, rest): (Vec<&Section>, Vec<&Section>) = SECTIONS
        .iter()
        .partition(|section| ALWAYS_LAST.contains(&section.name));
    rest.into_iter().rev().chain(last).collect()
}

impl Section {
    /// The set mutation's name (`setClusterProperties`).
    pub fn set_mutation(&self) -> String {
        format!("set{}", self.capitalized())
    }

    /// The delete mutation's name (`deleteClusterProperties`).
    pub fn delete_mutation(&self) -> String {
        format!("delete{}", self.capitalized())
    }

    /// The name with its first letter raised (`smConfigs` is `SMConfigs`, as Graphman spells it).
    fn capitalized(&self) -> String {
        if self.name == "smConfigs" {
            return "SMConfigs".to_owned();
        }
        let mut chars = self.name.chars();
        chars
            .next()
            .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default()
    }

    /// The identity fields `entity` has (absent and `null` ones left out).
    pub fn identity(&self, entity: &Value) -> Map<String, Value> {
        self.identity_fields
            .iter()
            .filter_map(|field| {
                let value = entity.get(*field).filter(|value| !value.is_null())?;
                Some(((*field).to_owned(), value.clone()))
            })
            .collect()
    }

    /// Whether `left` and `right` are the same entity: every identity field both have is
    /// equal, and they share at least one (graphman-client's matching rule).
    pub fn same_entity(&self, left: &Value, right: &Value) -> bool {
        let mut compared = false;
        for field in self.identity_fields {
            let (Some(one), Some(other)) = (
                left.get(*field).filter(|value| !value.is_null()),
                right.get(*field).filter(|value| !value.is_null()),
            ) else {
                continue;
            };
            if one != other {
                return false;
            }
            compared = true;
        }
        compared
    }

    /// `clusterProperties cluster.hostname`: the section and the entity's identity, for
    /// messages.
    pub fn describe(&self, entity: &Value) -> String {
        let identity: Vec<String> = self
            .identity(entity)
            .values()
            .map(|value| match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect();
        if identity.is_empty() {
            format!("{} (no identity fields)", self.name)
        } else {
            format!("{} {}", self.name, identity.join(" "))
        }
    }
}

/// Why a bundle or its properties could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BundleError {
    /// The bundle is not a JSON object.
    #[error("a bundle must be a JSON object of sections")]
    NotAnObject,
    /// A known section is not a list.
    #[error("bundle section {section} must be a list of entities")]
    SectionNotAList {
        /// The section.
        section: String,
    },
    /// An entry of a section is not an object.
    #[error("bundle section {section} entry {index} must be an object")]
    EntityNotAnObject {
        /// The section.
        section: String,
        /// The entry's index (from 0).
        index: usize,
    },
    /// `properties` (or a mapping instruction in it) is malformed.
    #[error("bundle properties{path}: {reason}")]
    Properties {
        /// Where in `properties` (`.mappings.services[0].action`).
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A bundle read from JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bundle {
    /// Known sections with their entities, as the bundle orders them.
    pub sections: IndexMap<&'static str, Vec<Value>>,
    /// The bundle's `properties`.
    pub properties: BundleProperties,
    /// Keys that are neither sections nor `properties`, left for the caller to judge.
    pub unknown: Vec<String>,
}

impl Bundle {
    /// Reads a bundle (or a request's variables, which carry one).
    pub fn from_value(value: &Value) -> Result<Self, BundleError> {
        let object = value.as_object().ok_or(BundleError::NotAnObject)?;
        let mut bundle = Self::default();
        for (key, entries) in object {
            if key == "properties" {
                bundle.properties = BundleProperties::from_value(entries)?;
                continue;
            }
            let Some(section) = find_section(key) else {
                bundle.unknown.push(key.clone());
                continue;
            };
            let list = match entries {
                Value::Null => continue,
                Value::Array(list) => list,
                _ => {
                    return Err(BundleError::SectionNotAList {
                        section: key.clone(),
                    });
                }
            };
            if let Some(index) = list.iter().position(|entry| !entry.is_object()) {
                return Err(BundleError::EntityNotAnObject {
                    section: key.clone(),
                    index,
                });
            }
            if !list.is_empty() {
                bundle.sections.insert(section.name, list.clone());
            }
        }
        Ok(bundle)
    }

    /// The non-empty sections in install order.
    pub fn in_install_order(&self) -> Vec<(&'static Section, &[Value])> {
        self.ordered(install_order())
    }

    /// The non-empty sections in delete order.
    pub fn in_delete_order(&self) -> Vec<(&'static Section, &[Value])> {
        self.ordered(delete_order().into_iter())
    }

    /// The non-empty sections in the order of `sections`.
    fn ordered(
        &self,
        sections: impl Iterator<Item = &'static Section>,
    ) -> Vec<(&'static Section, &[Value])> {
        sections
            .filter_map(|section| {
                let entities = self.sections.get(section.name)?;
                Some((section, entities.as_slice()))
            })
            .collect()
    }
}

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

/// Fields left out of a checksum: identifiers the gateway assigns, and the checksum itself.
const NOT_CHECKSUMMED: [&str; 3] = ["goid", "checksum", "__typename"];

/// The entity's checksum: SHA-1 (hex) of its canonical JSON without `goid`, `checksum` and
/// `__typename`; the same for identical configuration, different after any edit.
pub fn checksum(entity: &Value) -> String {
    let mut canonical = String::new();
    match entity {
        Value::Object(object) => {
            let kept: Map<String, Value> = object
                .iter()
                .filter(|(key, _)| !NOT_CHECKSUMMED.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            write_canonical(&Value::Object(kept), &mut canonical);
        }
        other => write_canonical(other, &mut canonical),
    }
    sha1_smol::Sha1::from(canonical.as_bytes())
        .digest()
        .to_string()
}

/// `value` as canonical JSON: object keys sorted, no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Appends `value`'s canonical JSON to `out`.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<(&String, &Value)> = object.iter().collect();
            entries.sort_by_key(|(key, _)| *key);
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn rank(name: &str) -> Option<usize> {
        SECTIONS.iter().position(|section| section.name == name)
    }

    #[test]
    fn install_order_puts_dependencies_first_and_keys_last() {
        let order = [
            "folders",
            "trustedCerts",
            "secrets",
            "policies",
            "encassConfigs",
            "services",
            "listenPorts",
            "keys",
        ];
        let ranks: Vec<Option<usize>> = order.iter().map(|name| rank(name)).collect();
        assert!(ranks.iter().all(Option::is_some), "{ranks:?}");
        assert!(ranks.windows(2).all(|pair| pair[0] < pair[1]), "{ranks:?}");
        assert!(rank("clusterProperties") < rank("policies"));
        assert_eq!(SECTIONS.last().map(|section| section.name), Some("keys"));
    }

    #[test]
    fn delete_order_reverses_install_but_keeps_keys_last() {
        let order: Vec<&str> = delete_order().iter().map(|section| section.name).collect();
        let position = |name: &str| order.iter().position(|known| *known == name);
        assert!(position("listenPorts") < position("services"));
        assert!(position("services") < position("policies"));
        assert!(position("policies") < position("folders"));
        assert_eq!(order.len(), SECTIONS.len());
        assert_eq!(order[order.len() - 2..], ["kerberosConfigs", "keys"]);
    }

    #[test]
    fn mutation_names_follow_graphman() -> TestResult {
        let properties = find_section("clusterProperties").ok_or("section")?;
        assert_eq!(properties.set_mutation(), "setClusterProperties");
        assert_eq!(properties.delete_mutation(), "deleteClusterProperties");
        assert_eq!(
            find_section("smConfigs").ok_or("section")?.set_mutation(),
            "setSMConfigs"
        );
        assert_eq!(
            section_of_set_mutation("setKeys").map(|s| s.name),
            Some("keys")
        );
        assert_eq!(
            find_section("webApiServices").and_then(|s| s.replaced_by),
            Some("services")
        );
        Ok(())
    }

    #[test]
    fn empty_mutations_of_known_sections_get_an_empty_payload() -> TestResult {
        let parse = |query: &str| -> Result<Field, Box<dyn std::error::Error>> {
            let operation = crate::layer7::graphman::document::parse(query, None, &Map::new())?;
            operation
                .fields
                .into_iter()
                .next()
                .ok_or_else(|| "no field".into())
        };
        let empty = parse("mutation { setJmsDestinations(input: []) { status } }")?;
        assert_eq!(
            empty_mutation_payload(&empty),
            Some(serde_json::json!({"status": [], "detailedStatus": [], "jmsDestinations": []}))
        );
        let delete = parse("mutation { deleteRoles(names: []) { status } }")?;
        assert!(empty_mutation_payload(&delete).is_some());
        let asked = parse(r#"mutation { setJmsDestinations(input: [{name: "q"}]) { status } }"#)?;
        assert_eq!(empty_mutation_payload(&asked), None);
        let unknown = parse("mutation { setWidgets(input: []) { status } }")?;
        assert_eq!(empty_mutation_payload(&unknown), None);
        Ok(())
    }

    #[test]
    fn identity_matching_compares_the_fields_both_sides_have() -> TestResult {
        let keys = find_section("keys").ok_or("section")?;
        let key =
            json!({"alias": "ssl", "keystoreId": "00000000000000000000000000000002", "p12": "x"});
        assert!(keys.same_entity(&json!({"alias": "ssl"}), &key));
        assert!(!keys.same_entity(&json!({"alias": "other"}), &key));
        assert!(!keys.same_entity(&json!({"p12": "x"}), &key));
        assert_eq!(
            keys.describe(&key),
            "keys 00000000000000000000000000000002 ssl"
        );
        assert_eq!(keys.identity(&key).len(), 2);
        Ok(())
    }

    #[test]
    fn reads_sections_properties_and_unknown_keys() -> TestResult {
        let bundle = Bundle::from_value(&json!({
            "keys": [{"alias": "k"}],
            "clusterProperties": [{"name": "a", "value": "1"}],
            "services": [],
            "widgets": [1],
            "properties": {"defaultAction": "NEW_OR_EXISTING", "meta": {"id": 1}},
        }))?;
        let order: Vec<&str> = bundle
            .in_install_order()
            .iter()
            .map(|(s, _)| s.name)
            .collect();
        assert_eq!(order, ["clusterProperties", "keys"]);
        assert_eq!(bundle.unknown, ["widgets"]);
        assert_eq!(
            bundle.properties.default_action,
            EntityMutationAction::NewOrExisting
        );
        assert_eq!(bundle.properties.meta, Some(json!({"id": 1})));
        assert_eq!(
            Bundle::from_value(&json!({"keys": {"alias": "k"}})),
            Err(BundleError::SectionNotAList {
                section: "keys".into()
            })
        );
        assert_eq!(
            Bundle::from_value(&json!({"keys": [{}, 3]})),
            Err(BundleError::EntityNotAnObject {
                section: "keys".into(),
                index: 1
            })
        );
        assert_eq!(
            Bundle::from_value(&json!([])),
            Err(BundleError::NotAnObject)
        );
        Ok(())
    }

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

    #[test]
    fn checksum_is_stable_ignores_identifiers_and_changes_on_edit() {
        let one =
            json!({"goid": "aa", "name": "p", "value": "1", "nested": {"b": 1, "a": [true, null]}});
        let same = json!({"nested": {"a": [true, null], "b": 1}, "value": "1", "name": "p",
                          "goid": "bb", "checksum": "old"});
        let edited =
            json!({"goid": "aa", "name": "p", "value": "2", "nested": {"b": 1, "a": [true, null]}});
        assert_eq!(checksum(&one), checksum(&same));
        assert_ne!(checksum(&one), checksum(&edited));
        assert_eq!(checksum(&one).len(), 40);
        assert!(checksum(&one).chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            canonical_json(&json!({"b": "x\"y", "a": 1.5})),
            r#"{"a":1.5,"b":"x\"y"}"#
        );
    }
}
