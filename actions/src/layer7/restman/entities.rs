//! The typed restman resources the Layer7 actions read and write: the
//! simple ones here ([`ClusterProperty`], [`Folder`], [`TrustedCertificate`],
//! [`PrivateKey`] and its [`PrivateKeyCreationContext`], [`ListenPort`],
//! [`PolicyVersion`]); services and policies in [`super::policy_entities`].
//!
//! Fields follow restman's element order (the gateway validates documents
//! against its schema). Elements these types do not model are dropped when an
//! entity is read and written back; bundles keep every element (see
//! [`super::bundle`]).

use serde::{Deserialize, Serialize};

use super::properties::{Properties, no_properties};
use super::xml::RestmanEntity;

/// `l7:ClusterProperty`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ClusterProperty {
    /// The goid.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The optimistic-lock counter.
    #[serde(rename = "@version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `l7:Name`.
    #[serde(rename(serialize = "l7:Name", deserialize = "Name"))]
    pub name: String,
    /// `l7:Value`.
    #[serde(rename(serialize = "l7:Value", deserialize = "Value"), default)]
    pub value: String,
    /// `l7:Properties`.
    #[serde(
        rename(serialize = "l7:Properties", deserialize = "Properties"),
        default,
        skip_serializing_if = "no_properties"
    )]
    pub properties: Option<Properties>,
}

impl ClusterProperty {
    /// A new property (no id, no version).
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            id: None,
            version: None,
            name: name.to_owned(),
            value: value.to_owned(),
            properties: None,
        }
    }
}

impl RestmanEntity for ClusterProperty {
    const COLLECTION: &'static str = "clusterProperties";
    const ELEMENT: &'static str = "ClusterProperty";
    const TYPE: &'static str = "CLUSTER_PROPERTY";
    const NOUN: &'static str = "cluster property";

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    fn version(&self) -> Option<u64> {
        self.version
    }
}

/// `l7:Folder` (its `folderId` is the parent folder).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Folder {
    /// The parent folder's goid (absent for the root folder).
    #[serde(rename = "@folderId", default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The goid.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The optimistic-lock counter.
    #[serde(rename = "@version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `l7:Name`.
    #[serde(rename(serialize = "l7:Name", deserialize = "Name"))]
    pub name: String,
    /// `l7:Properties`.
    #[serde(
        rename(serialize = "l7:Properties", deserialize = "Properties"),
        default,
        skip_serializing_if = "no_properties"
    )]
    pub properties: Option<Properties>,
}

impl RestmanEntity for Folder {
    const COLLECTION: &'static str = "folders";
    const ELEMENT: &'static str = "Folder";
    const TYPE: &'static str = "FOLDER";
    const NOUN: &'static str = "folder";

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    fn version(&self) -> Option<u64> {
        self.version
    }
}

/// The goid of the root folder ("Root Node").
pub const ROOT_FOLDER: &str = "0000000000000000ffffffffffffec76";

/// `l7:CertificateData`: one X.509 certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct CertificateData {
    /// `l7:IssuerName`.
    #[serde(
        rename(serialize = "l7:IssuerName", deserialize = "IssuerName"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub issuer_name: Option<String>,
    /// `l7:SerialNumber`.
    #[serde(
        rename(serialize = "l7:SerialNumber", deserialize = "SerialNumber"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub serial_number: Option<String>,
    /// `l7:SubjectName`.
    #[serde(
        rename(serialize = "l7:SubjectName", deserialize = "SubjectName"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub subject_name: Option<String>,
    /// `l7:Encoded`: the certificate, base64 DER.
    #[serde(rename(serialize = "l7:Encoded", deserialize = "Encoded"), default)]
    pub encoded: String,
}

/// `l7:TrustedCertificate`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TrustedCertificate {
    /// The goid.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The optimistic-lock counter.
    #[serde(rename = "@version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `l7:Name`.
    #[serde(rename(serialize = "l7:Name", deserialize = "Name"))]
    pub name: String,
    /// `l7:CertificateData`.
    #[serde(rename(serialize = "l7:CertificateData", deserialize = "CertificateData"))]
    pub certificate: CertificateData,
    /// `l7:Properties`: `trustedForSsl`, `trustAnchor`, `verifyHostname`, ...
    #[serde(
        rename(serialize = "l7:Properties", deserialize = "Properties"),
        default,
        skip_serializing_if = "no_properties"
    )]
    pub properties: Option<Properties>,
}

/// The trust properties of a trusted certificate, all booleans.
pub const TRUST_PROPERTIES: &[&str] = &[
    "trustedForSsl",
    "trustedForSigningClientCerts",
    "trustedForSigningServerCerts",
    "trustedAsSamlIssuer",
    "trustedAsSamlAttestingEntity",
    "trustAnchor",
    "verifyHostname",
    "revocationCheckingEnabled",
];

impl RestmanEntity for TrustedCertificate {
    const COLLECTION: &'static str = "trustedCertificates";
    const ELEMENT: &'static str = "TrustedCertificate";
    const TYPE: &'static str = "TRUSTED_CERT";
    const NOUN: &'static str = "trusted certificate";

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    fn version(&self) -> Option<u64> {
        self.version
    }
}

/// `l7:PrivateKey`: its id is `<keystoreId>:<alias>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PrivateKey {
    /// `<keystoreId>:<alias>`.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The keystore's goid.
    #[serde(rename = "@keystoreId", default)]
    pub keystore_id: String,
    /// The alias.
    #[serde(rename = "@alias", default)]
    pub alias: String,
    /// The optimistic-lock counter.
    #[serde(rename = "@version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `l7:CertificateChain`: the key's certificate first.
    #[serde(
        rename(serialize = "l7:CertificateChain", deserialize = "CertificateChain"),
        default
    )]
    pub certificate_chain: CertificateChain,
    /// `l7:Properties`: `keyAlgorithm`, `specialPurposes`.
    #[serde(
        rename(serialize = "l7:Properties", deserialize = "Properties"),
        default,
        skip_serializing_if = "no_properties"
    )]
    pub properties: Option<Properties>,
}

/// `l7:CertificateChain`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct CertificateChain {
    /// The certificates, leaf first.
    #[serde(
        rename(serialize = "l7:CertificateData", deserialize = "CertificateData"),
        default
    )]
    pub certificates: Vec<CertificateData>,
}

impl PrivateKey {
    /// The restman id of a key: `<keystoreId>:<alias>`.
    pub fn id_of(keystore_id: &str, alias: &str) -> String {
        format!("{keystore_id}:{alias}")
    }
}

impl RestmanEntity for PrivateKey {
    const COLLECTION: &'static str = "privateKeys";
    const ELEMENT: &'static str = "PrivateKey";
    const TYPE: &'static str = "SSG_KEY_ENTRY";
    const NOUN: &'static str = "private key";

    fn name(&self) -> Option<&str> {
        Some(&self.alias)
    }

    fn version(&self) -> Option<u64> {
        self.version
    }
}

/// `l7:PrivateKeyCreationContext`: a self-signed key the gateway generates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PrivateKeyCreationContext {
    /// `l7:Dn`: the certificate's subject (`CN=gw.example.com`).
    #[serde(rename(serialize = "l7:Dn", deserialize = "Dn"))]
    pub dn: String,
    /// `l7:Properties`: `rsaKeySize` or `ecName`, `daysUntilExpiry`, `caCapable`, ...
    #[serde(
        rename(serialize = "l7:Properties", deserialize = "Properties"),
        default,
        skip_serializing_if = "no_properties"
    )]
    pub properties: Option<Properties>,
}

impl PrivateKeyCreationContext {
    /// The element name.
    pub const ELEMENT: &'static str = "PrivateKeyCreationContext";

    /// An RSA key of `rsa_key_size` bits with a certificate valid `days_until_expiry` days.
    pub fn rsa(dn: &str, rsa_key_size: u32, days_until_expiry: u32) -> Self {
        let mut properties = Properties::default();
        properties.set(
            "rsaKeySize",
            super::properties::PropertyValue::Integer(i64::from(rsa_key_size)),
        );
        properties.set(
            "daysUntilExpiry",
            super::properties::PropertyValue::Integer(i64::from(days_until_expiry)),
        );
        Self {
            dn: dn.to_owned(),
            properties: Some(properties),
        }
    }
}

/// `l7:ListenPort`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ListenPort {
    /// The goid.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The optimistic-lock counter.
    #[serde(rename = "@version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `l7:Name` (`Default HTTPS (8443)`).
    #[serde(rename(serialize = "l7:Name", deserialize = "Name"))]
    pub name: String,
    /// `l7:Enabled`.
    #[serde(rename(serialize = "l7:Enabled", deserialize = "Enabled"), default)]
    pub enabled: bool,
    /// `l7:Protocol` (`HTTP`, `HTTPS`, ...).
    #[serde(rename(serialize = "l7:Protocol", deserialize = "Protocol"), default)]
    pub protocol: String,
    /// `l7:Port`.
    #[serde(rename(serialize = "l7:Port", deserialize = "Port"), default)]
    pub port: u16,
    /// `l7:EnabledFeatures`.
    #[serde(
        rename(serialize = "l7:EnabledFeatures", deserialize = "EnabledFeatures"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled_features: Option<StringValues>,
    /// `l7:TargetServiceReference`: the one service this port serves, when hardwired.
    #[serde(
        rename(
            serialize = "l7:TargetServiceReference",
            deserialize = "TargetServiceReference"
        ),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_service: Option<ResourceReference>,
    /// `l7:TlsSettings` (TLS ports).
    #[serde(
        rename(serialize = "l7:TlsSettings", deserialize = "TlsSettings"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_settings: Option<TlsSettings>,
    /// `l7:Properties` (`bindAddress`, ...).
    #[serde(
        rename(serialize = "l7:Properties", deserialize = "Properties"),
        default,
        skip_serializing_if = "no_properties"
    )]
    pub properties: Option<Properties>,
}

impl ListenPort {
    /// The alias of the private key the port presents, when it names one.
    pub fn key_alias(&self) -> Option<&str> {
        let reference = self.tls_settings.as_ref()?.private_key.as_ref()?;
        Some(
            reference
                .id
                .split_once(':')
                .map_or(reference.id.as_str(), |(_, alias)| alias),
        )
    }

    /// Makes the port present the key `keystore_id:alias` (the port must have TLS settings).
    pub fn set_key(&mut self, keystore_id: &str, alias: &str) -> bool {
        let Some(tls) = self.tls_settings.as_mut() else {
            return false;
        };
        let id = PrivateKey::id_of(keystore_id, alias);
        match tls.private_key.as_mut() {
            Some(reference) => reference.id = id,
            None => {
                tls.private_key = Some(ResourceReference {
                    id,
                    resource_uri: None,
                });
            }
        }
        true
    }
}

impl RestmanEntity for ListenPort {
    const COLLECTION: &'static str = "listenPorts";
    const ELEMENT: &'static str = "ListenPort";
    const TYPE: &'static str = "SSG_CONNECTOR";
    const NOUN: &'static str = "listen port";

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    fn version(&self) -> Option<u64> {
        self.version
    }
}

/// A list of `l7:StringValue` elements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct StringValues {
    /// The values.
    #[serde(
        rename(serialize = "l7:StringValue", deserialize = "StringValue"),
        default
    )]
    pub values: Vec<String>,
}

/// A reference to another entity: `id` and, optionally, `resourceUri`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResourceReference {
    /// The entity's id (`<keystoreId>:<alias>` for a private key).
    #[serde(rename = "@id", default)]
    pub id: String,
    /// The entity type's URI.
    #[serde(
        rename = "@resourceUri",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_uri: Option<String>,
}

/// `l7:TlsSettings` of a listen port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TlsSettings {
    /// `l7:ClientAuthentication` (`None`, `Optional`, `Required`).
    #[serde(
        rename(
            serialize = "l7:ClientAuthentication",
            deserialize = "ClientAuthentication"
        ),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_authentication: Option<String>,
    /// `l7:PrivateKeyReference id="<keystoreId>:<alias>"`: the key the port presents.
    #[serde(
        rename(
            serialize = "l7:PrivateKeyReference",
            deserialize = "PrivateKeyReference"
        ),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub private_key: Option<ResourceReference>,
    /// `l7:EnabledVersions` (`TLSv1.2`, ...).
    #[serde(
        rename(serialize = "l7:EnabledVersions", deserialize = "EnabledVersions"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled_versions: Option<StringValues>,
    /// `l7:EnabledCipherSuites`.
    #[serde(
        rename(
            serialize = "l7:EnabledCipherSuites",
            deserialize = "EnabledCipherSuites"
        ),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled_cipher_suites: Option<StringValues>,
    /// `l7:UseCipherSuitesOrder`.
    #[serde(
        rename(
            serialize = "l7:UseCipherSuitesOrder",
            deserialize = "UseCipherSuitesOrder"
        ),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub use_cipher_suites_order: Option<bool>,
    /// `l7:Properties`.
    #[serde(
        rename(serialize = "l7:Properties", deserialize = "Properties"),
        default,
        skip_serializing_if = "no_properties"
    )]
    pub properties: Option<Properties>,
}

/// `l7:PolicyVersion`: one revision of a service's or policy's policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PolicyVersion {
    /// The revision's goid.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `l7:Active`: whether this revision serves traffic.
    #[serde(rename(serialize = "l7:Active", deserialize = "Active"), default)]
    pub active: bool,
    /// `l7:Comment`.
    #[serde(
        rename(serialize = "l7:Comment", deserialize = "Comment"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
    /// `l7:Ordinal`: the revision number, from 1.
    #[serde(rename(serialize = "l7:Ordinal", deserialize = "Ordinal"))]
    pub ordinal: u64,
    /// `l7:PolicyId`: the policy's goid.
    #[serde(
        rename(serialize = "l7:PolicyId", deserialize = "PolicyId"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub policy_id: Option<String>,
    /// `l7:Time`: when it was saved, as the gateway writes it.
    #[serde(
        rename(serialize = "l7:Time", deserialize = "Time"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub time: Option<String>,
    /// `l7:Xml`: the policy XML of this revision.
    #[serde(
        rename(serialize = "l7:Xml", deserialize = "Xml"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub xml: Option<String>,
}

impl RestmanEntity for PolicyVersion {
    const COLLECTION: &'static str = "versions";
    const ELEMENT: &'static str = "PolicyVersion";
    const TYPE: &'static str = "POLICY_VERSION";
    const NOUN: &'static str = "policy revision";

    fn name(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    fn version(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
#[path = "entities_tests.rs"]
mod tests;
