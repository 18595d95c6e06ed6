//! The Graphman objects the actions read (section 2.4 of
//! reference/layer7-api.md), as the queries in [`super::operations`] select
//! them. Fields a gateway may leave out are optional. No type here ever holds
//! a private key (`p12`, `pem`) read back from the gateway.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{name value}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct NameValue {
    /// The name.
    pub name: String,
    /// The value.
    #[serde(default)]
    pub value: Option<String>,
}

/// `productVersion`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProductVersion {
    /// `formalString` (`11.1.00`).
    pub formal_string: Option<String>,
    /// `buildNumber`.
    pub build_number: Option<String>,
    /// `shortString`.
    pub short_string: Option<String>,
    /// `longString`.
    pub long_string: Option<String>,
}

/// One installed patch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Patch {
    /// `patchId`.
    pub patch_id: String,
    /// `description`.
    pub description: Option<String>,
    /// `status` (`INSTALLED`, ...).
    pub status: Option<String>,
    /// `latest`: whether it is the latest of its type.
    pub latest: Option<bool>,
}

/// `nodeInfo`: the node that answered (`ClusterNodeInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeInfo {
    /// `name`.
    pub name: String,
    /// `nodeId`.
    pub node_id: Option<String>,
    /// `address`.
    pub address: Option<String>,
    /// `uptime` (as the gateway writes it).
    pub uptime: Option<Value>,
    /// `bootTime`.
    pub boot_time: Option<Value>,
    /// `lastUpdatedTime`: the node's heartbeat.
    pub last_updated_time: Option<Value>,
    /// `nodeStatus`.
    pub node_status: Option<String>,
    /// `formFactor`: `APPLIANCE`, `SOFTWARE`, `CONTAINER` or `UNKNOWN`.
    pub form_factor: Option<String>,
    /// `supportsDBUpgrade`.
    #[serde(rename = "supportsDBUpgrade")]
    pub supports_db_upgrade: Option<bool>,
    /// `productVersion`.
    pub product_version: Option<ProductVersion>,
    /// `patches`.
    pub patches: Vec<Patch>,
}

/// One node of `clusterInfo.nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterNode {
    /// `name`.
    pub name: String,
    /// `nodeId`.
    pub node_id: Option<String>,
    /// `address`.
    pub address: Option<String>,
    /// `uptime`.
    pub uptime: Option<Value>,
    /// `lastUpdatedTime`: the node's heartbeat.
    pub last_updated_time: Option<Value>,
}

/// `clusterInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInfo {
    /// `name`.
    pub name: String,
    /// `checksum`.
    pub checksum: Option<String>,
    /// `nodes`.
    pub nodes: Vec<ClusterNode>,
}

/// `policy { xml }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct PolicyCode {
    /// The policy as XML.
    pub xml: Option<String>,
}

/// `L7Service`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphmanService {
    /// `goid`.
    pub goid: String,
    /// `guid`.
    pub guid: Option<String>,
    /// `name`.
    pub name: String,
    /// `resolutionPath`.
    pub resolution_path: Option<String>,
    /// `serviceType` (`WEB_API`, `SOAP`, ...).
    pub service_type: Option<String>,
    /// `enabled`.
    pub enabled: bool,
    /// `folderPath`.
    pub folder_path: Option<String>,
    /// `methodsAllowed`.
    pub methods_allowed: Vec<String>,
    /// `checksum`.
    pub checksum: Option<String>,
    /// `policy { xml }`.
    pub policy: Option<PolicyCode>,
}

/// `L7Policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphmanPolicy {
    /// `goid`.
    pub goid: String,
    /// `guid`.
    pub guid: Option<String>,
    /// `name`.
    pub name: String,
    /// `policyType` (`FRAGMENT`, `GLOBAL`, ...).
    pub policy_type: Option<String>,
    /// `folderPath`.
    pub folder_path: Option<String>,
    /// `checksum`.
    pub checksum: Option<String>,
    /// `policy { xml }`.
    pub policy: Option<PolicyCode>,
}

/// `ClusterProperty`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphmanClusterProperty {
    /// `goid`.
    pub goid: Option<String>,
    /// `name`.
    pub name: String,
    /// `value`.
    pub value: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `hiddenProperty`.
    pub hidden_property: Option<bool>,
    /// `checksum`.
    pub checksum: Option<String>,
}

/// `Key` (without its private part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphmanKey {
    /// `goid`.
    pub goid: Option<String>,
    /// `keystoreId`.
    pub keystore_id: Option<String>,
    /// `alias`.
    pub alias: String,
    /// `keyType`.
    pub key_type: Option<String>,
    /// `subjectDn`.
    pub subject_dn: Option<String>,
    /// `usageTypes` (`SSL`, `CA`, ...).
    pub usage_types: Vec<String>,
    /// `certChain`: PEM certificates, leaf first.
    pub cert_chain: Vec<String>,
    /// `checksum`.
    pub checksum: Option<String>,
}

/// `tlsSettings` of a listen port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphmanTlsSettings {
    /// `clientAuthentication`: `NONE`, `OPTIONAL` or `REQUIRED`.
    pub client_authentication: Option<String>,
    /// `keystoreId`.
    pub keystore_id: Option<String>,
    /// `keyAlias`: the key the port presents.
    pub key_alias: Option<String>,
    /// `tlsVersions`.
    pub tls_versions: Vec<String>,
    /// `cipherSuites`.
    pub cipher_suites: Vec<String>,
    /// `useCipherSuitesOrder`.
    pub use_cipher_suites_order: Option<bool>,
}

/// `ListenPort`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphmanListenPort {
    /// `goid`.
    pub goid: Option<String>,
    /// `name`.
    pub name: String,
    /// `protocol`.
    pub protocol: Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// `enabled`.
    pub enabled: Option<bool>,
    /// `tlsSettings`.
    pub tls_settings: Option<GraphmanTlsSettings>,
    /// `checksum`.
    pub checksum: Option<String>,
}

/// `Certificate` (a trusted certificate).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphmanTrustedCert {
    /// `goid`.
    pub goid: Option<String>,
    /// `name`.
    pub name: String,
    /// `subjectDn`.
    pub subject_dn: Option<String>,
    /// `thumbprintSha1`.
    pub thumbprint_sha1: Option<String>,
    /// `certBase64`: base64 DER.
    pub cert_base64: Option<String>,
    /// `trustedFor`.
    pub trusted_for: Vec<String>,
    /// `verifyHostname`.
    pub verify_hostname: Option<bool>,
    /// `trustAnchor`.
    pub trust_anchor: Option<bool>,
    /// `checksum`.
    pub checksum: Option<String>,
}

/// `Folder`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphmanFolder {
    /// `goid`.
    pub goid: Option<String>,
    /// `name`.
    pub name: String,
    /// `folderPath`.
    pub folder_path: Option<String>,
    /// `checksum`.
    pub checksum: Option<String>,
}

/// `EncassConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphmanEncassConfig {
    /// `goid`.
    pub goid: Option<String>,
    /// `guid`.
    pub guid: Option<String>,
    /// `name`.
    pub name: String,
    /// `policyName`: the backing policy.
    pub policy_name: Option<String>,
    /// `checksum`.
    pub checksum: Option<String>,
}

/// `keyGenerateOptions` of a `KeyInput`: a self-signed key the gateway generates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyGenerateOptions {
    /// `rsaKeyBits` (the gateway's default is 2048).
    pub rsa_key_bits: u32,
    /// `certExpiry` in days (the gateway's default is 1825).
    pub cert_expiry: u32,
}

/// A `KeyInput`: an alias with a PEM key and chain, or generate options.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInput {
    /// `keystoreId`.
    pub keystore_id: String,
    /// `alias`.
    pub alias: String,
    /// `subjectDn` of the certificate a generated key gets (`CN=gw.example.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_dn: Option<String>,
    /// `pem`: the private key then the certificate chain (a secret: never logged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// `keyGenerateOptions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_generate_options: Option<KeyGenerateOptions>,
    /// `usageTypes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub usage_types: Vec<String>,
}

impl std::fmt::Debug for KeyInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyInput")
            .field("keystore_id", &self.keystore_id)
            .field("alias", &self.alias)
            .field("subject_dn", &self.subject_dn)
            .field("pem", &self.pem.as_ref().map(|_| "(hidden)"))
            .field("key_generate_options", &self.key_generate_options)
            .field("usage_types", &self.usage_types)
            .finish()
    }
}

/// A `TrustedCertInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedCertInput {
    /// `name`.
    pub name: String,
    /// `certBase64`: base64 DER.
    pub cert_base64: String,
    /// `trustedFor` (`SSL`, `SIGNING_SERVER_CERTS`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_for: Vec<String>,
    /// `verifyHostname`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_hostname: Option<bool>,
    /// `trustAnchor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_anchor: Option<bool>,
}

/// A `ClusterPropertyInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterPropertyInput {
    /// `name`.
    pub name: String,
    /// `value`.
    pub value: String,
    /// `description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
