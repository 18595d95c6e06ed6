//! The argument structs of the layer7 actions (their JSON Schema checks `with:`).

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::arguments::Presence;

/// The id of the gateway's software keystore.
pub const SOFTWARE_KEYSTORE: &str = "00000000000000000000000000000002";

/// A Layer7 management API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Layer7Api {
    /// The REST management API; bundles are XML.
    #[default]
    Restman,
    /// The GraphQL management API (gateway 10.1 and later); bundles are JSON.
    Graphman,
}

/// Arguments of `layer7.export`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer7ExportArguments {
    /// File the bundle is written to.
    pub path: String,
    /// Management API that exports (default restman).
    #[serde(default)]
    pub api: Layer7Api,
    /// What to export, with its dependencies (default: the whole gateway).
    #[serde(default)]
    pub select: Option<Layer7Selection>,
}

/// The entities a `layer7.export` bundle holds.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer7Selection {
    /// Services, by resolution path (`/orders`) or name.
    #[serde(default)]
    pub services: Vec<String>,
    /// Folders, by path (`/apis/orders`), with everything in them.
    #[serde(default)]
    pub folders: Vec<String>,
    /// Policies and policy fragments, by name.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Cluster properties, by name.
    #[serde(default)]
    pub cluster_properties: Vec<String>,
}

/// Arguments of `layer7.import`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer7ImportArguments {
    /// Bundle file to import (restman XML or Graphman JSON, as `layer7.export` writes).
    pub bundle: String,
    /// Management API that imports; must match the bundle's format (default restman).
    #[serde(default)]
    pub api: Layer7Api,
    /// What to do with entities that have no mapping of their own (default new_or_update).
    #[serde(default)]
    pub default_action: MappingAction,
    /// Mapping instructions for particular entities or entity types, applied in order.
    #[serde(default)]
    pub mappings: Vec<Layer7Mapping>,
    /// Activate the imported policy revisions (default true); false saves them inactive.
    #[serde(default = "yes")]
    pub activate: bool,
    /// Comment recorded on the new policy revisions (default: none).
    #[serde(default)]
    pub comment: Option<String>,
    /// Only run the gateway's test-mode import and output its per-entity results: the step is a read (default false).
    #[serde(default)]
    pub test: bool,
}

/// On unless turned off.
fn yes() -> bool {
    true
}

/// What a bundle import does with an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MappingAction {
    /// Update it if it exists, create it otherwise.
    #[default]
    NewOrUpdate,
    /// Use it as it is if it exists, create it otherwise.
    NewOrExisting,
    /// Create it, with a new id if needed, even if it exists.
    AlwaysCreateNew,
    /// Delete it.
    Delete,
    /// Leave it alone.
    Ignore,
}

/// One mapping instruction of `layer7.import`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer7Mapping {
    /// Entity type as the bundle names it (restman `SERVICE`, `CLUSTER_PROPERTY`; Graphman `services`, `clusterProperties`).
    pub kind: String,
    /// The entity in the bundle, by id or name (default: every entity of that type).
    #[serde(default)]
    pub source: Option<String>,
    /// What to do with it.
    pub action: MappingAction,
    /// Fail if the entity does not exist on the gateway yet (default false).
    #[serde(default)]
    pub fail_on_new: bool,
    /// Fail if the entity exists on the gateway already (default false).
    #[serde(default)]
    pub fail_on_existing: bool,
    /// Field that finds the entity on the gateway (`name`, `guid`, `path`; default: id).
    #[serde(default)]
    pub map_by: Option<String>,
    /// Value of `map_by` on the gateway, when it differs from the bundle's.
    #[serde(default)]
    pub map_to: Option<String>,
}

/// Arguments of `layer7.service`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["resolution_path"]}, {"required": ["name"]}]))]
pub struct Layer7ServiceArguments {
    /// The service's resolution path (`/orders`); exactly one of `resolution_path` and `name`.
    #[serde(default)]
    pub resolution_path: Option<String>,
    /// The service's name; exactly one of `resolution_path` and `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the service is enabled, that is, serves requests.
    pub enabled: bool,
}

/// Arguments of `layer7.cluster_property`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer7ClusterPropertyArguments {
    /// Property name (`io.httpsHostVerify`).
    pub name: String,
    /// Value to set.
    pub value: String,
}

/// Arguments of `layer7.policy_revision`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["service"]}, {"required": ["policy"]}]))]
pub struct Layer7PolicyRevisionArguments {
    /// Service, by resolution path, name or id; exactly one of `service` and `policy`.
    #[serde(default)]
    pub service: Option<String>,
    /// Policy, by name or id; exactly one of `service` and `policy`.
    #[serde(default)]
    pub policy: Option<String>,
    /// Revision to activate: its number, or `previous` (the highest revision below the active one).
    pub activate: RevisionChoice,
}

/// The policy revision `layer7.policy_revision` activates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisionChoice {
    /// This revision number (1 or more).
    Number(u32),
    /// The highest revision below the active one.
    Previous,
}

impl<'de> Deserialize<'de> for RevisionChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RevisionVisitor;
        impl Visitor<'_> for RevisionVisitor {
            type Value = RevisionChoice;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a revision number (1 or more) or `previous`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RevisionChoice, E> {
                match u32::try_from(v) {
                    Ok(number) if number >= 1 => Ok(RevisionChoice::Number(number)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RevisionChoice, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RevisionChoice, E> {
                match v {
                    "previous" => Ok(RevisionChoice::Previous),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(RevisionVisitor)
    }
}

impl Serialize for RevisionChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RevisionChoice::Number(number) => serializer.serialize_u32(*number),
            RevisionChoice::Previous => serializer.serialize_str("previous"),
        }
    }
}

impl JsonSchema for RevisionChoice {
    fn schema_name() -> Cow<'static, str> {
        "RevisionChoice".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A revision number, or `previous`.",
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": u32::MAX},
                {"const": "previous"}
            ]
        })
    }
}

/// Arguments of `layer7.key_rotate`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["pem"]}, {"required": ["generate"]}]))]
pub struct Layer7KeyRotateArguments {
    /// Alias of the new private key.
    pub alias: String,
    /// Keystore id (default 00000000000000000000000000000002, the software keystore).
    #[serde(default = "software_keystore")]
    pub keystore: String,
    /// Listen ports, by name, switched to the new key.
    #[schemars(length(min = 1))]
    pub listen_ports: Vec<String>,
    /// PEM of the new private key followed by its certificate chain; exactly one of `pem` and `generate`.
    #[serde(default)]
    pub pem: Option<String>,
    /// Have the gateway create a self-signed key; exactly one of `pem` and `generate`.
    #[serde(default)]
    pub generate: Option<Layer7KeyGeneration>,
}

/// The software keystore's id.
fn software_keystore() -> String {
    SOFTWARE_KEYSTORE.to_owned()
}

/// A private key the gateway creates, with a self-signed certificate.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer7KeyGeneration {
    /// Subject DN of the certificate (`CN=gateway.example.com`).
    pub dn: String,
    /// RSA key size in bits (default 2048).
    #[serde(default = "rsa_2048")]
    #[schemars(range(min = 2048, max = 8192))]
    pub rsa_key_size: u16,
    /// Days the certificate is valid (default 1825, five years).
    #[serde(default = "five_years")]
    #[schemars(range(min = 1))]
    pub days_until_expiry: u32,
}

/// The default RSA key size.
fn rsa_2048() -> u16 {
    2048
}

/// The gateway's default certificate lifetime, in days.
fn five_years() -> u32 {
    1825
}

/// Arguments of `layer7.trusted_cert`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend(
    "if" = {"properties": {"state": {"const": "absent"}}, "required": ["state"]},
    "else" = {"required": ["pem"]}
))]
pub struct Layer7TrustedCertArguments {
    /// Name of the trusted certificate on the gateway.
    pub name: String,
    /// PEM of the certificate (required unless `state: absent`).
    #[serde(default)]
    pub pem: Option<String>,
    /// Whether the certificate must be trusted (default present).
    #[serde(default)]
    pub state: Presence,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn revision(activate: serde_json::Value) -> Result<RevisionChoice, serde_json::Error> {
        serde_json::from_value::<Layer7PolicyRevisionArguments>(
            json!({"service": "/orders", "activate": activate}),
        )
        .map(|arguments| arguments.activate)
    }

    #[test]
    fn activate_takes_a_number_or_previous() -> Result<(), serde_json::Error> {
        assert_eq!(revision(json!(3))?, RevisionChoice::Number(3));
        assert_eq!(revision(json!("previous"))?, RevisionChoice::Previous);
        assert!(revision(json!(0)).is_err());
        assert!(revision(json!(-2)).is_err());
        assert!(revision(json!("latest")).is_err());
        assert!(revision(json!(1.5)).is_err());
        Ok(())
    }

    #[test]
    fn key_rotate_defaults_to_the_software_keystore() -> Result<(), serde_json::Error> {
        let arguments: Layer7KeyRotateArguments = serde_json::from_value(json!({
            "alias": "ssl-2026",
            "listen_ports": ["Default HTTPS (8443)"],
            "generate": {"dn": "CN=gw.example"}
        }))?;
        assert_eq!(arguments.keystore, SOFTWARE_KEYSTORE);
        let generation = arguments
            .generate
            .map(|g| (g.rsa_key_size, g.days_until_expiry));
        assert_eq!(generation, Some((2048, 1825)));
        Ok(())
    }

    #[test]
    fn import_reads_mappings() -> Result<(), serde_json::Error> {
        let arguments: Layer7ImportArguments = serde_json::from_value(json!({
            "bundle": "before.xml",
            "default_action": "new_or_existing",
            "mappings": [{"kind": "CLUSTER_PROPERTY", "source": "a", "action": "ignore"}]
        }))?;
        assert_eq!(arguments.api, Layer7Api::Restman);
        assert_eq!(arguments.default_action, MappingAction::NewOrExisting);
        assert_eq!(arguments.mappings.len(), 1);
        assert!(arguments.activate);
        Ok(())
    }
}
