//! The Graphman JSON bundle (reference §2.3, §2.6): the sections with their identity fields
//! and dependency order, and a bundle read from JSON. Its `properties` are in
//! [`super::mapping`], checksums in [`super::checksum`].

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::document::Field;
use super::mapping::BundleProperties;
use super::status::plural_payload;

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
    section("folders", "Folder", &["folderPath"]),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::layer7::graphman::status::EntityMutationAction;

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
}
