//! The typed entities of a Layer7 gateway, independent of how an API shows them
//! (restman's XML lives in `restman/`, Graphman's JSON beside it).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::revisions::Revisions;

/// The goid of the root folder.
pub const ROOT_FOLDER_ID: &str = "0000000000000000ffffffffffffec76";

/// The goid of the default software keystore.
pub const DEFAULT_KEYSTORE_ID: &str = "00000000000000000000000000000002";

/// A typed property value, as restman carries them (`StringValue`, `BooleanValue`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum PropertyValue {
    /// Text.
    String(String),
    /// A boolean.
    Boolean(bool),
    /// A 32-bit integer.
    Integer(i64),
    /// A 64-bit integer.
    Long(i64),
}

impl PropertyValue {
    /// The value as text.
    pub fn as_text(&self) -> String {
        match self {
            Self::String(text) => text.clone(),
            Self::Boolean(flag) => flag.to_string(),
            Self::Integer(number) | Self::Long(number) => number.to_string(),
        }
    }
}

/// Properties kept as given (keys in order).
pub type Properties = BTreeMap<String, PropertyValue>;

/// A folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    /// Name, unique within the parent.
    pub name: String,
    /// Parent folder goid (`None` only for the root folder).
    pub parent_id: Option<String>,
}

/// A published service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Stable UUID-style id.
    pub guid: String,
    /// Name.
    pub name: String,
    /// Folder goid.
    pub folder_id: String,
    /// Whether it answers traffic.
    pub enabled: bool,
    /// The HTTP mapping's URL pattern (`/orders`, `/orders/*`).
    pub resolution_path: Option<String>,
    /// HTTP verbs accepted (`GET`, `POST`, ...).
    pub verbs: Vec<String>,
    /// SOAP service (always false for services this twin resolves).
    pub soap: bool,
    /// Internal service.
    pub internal: bool,
    /// Tracing enabled.
    pub tracing_enabled: bool,
    /// WS-Security processing enabled.
    pub wss_processing_enabled: bool,
    /// Other properties, as given.
    pub properties: Properties,
    /// The policy's revisions (the active one is the policy).
    pub revisions: Revisions,
}

impl Service {
    /// Whether two services resolve some request alike: same path and a verb in common.
    pub fn overlaps(&self, other: &Service) -> bool {
        self.resolution_path.is_some()
            && self.resolution_path == other.resolution_path
            && self.verbs.iter().any(|verb| {
                other
                    .verbs
                    .iter()
                    .any(|theirs| theirs.eq_ignore_ascii_case(verb))
            })
    }
}

/// A policy's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    /// A fragment included by other policies.
    Include,
    /// An internal-use policy.
    Internal,
    /// A global policy.
    Global,
    /// Another type, by its restman name.
    Other(String),
}

/// A policy (fragment, global, internal, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Stable UUID-style id (policy XML references it as `PolicyGuid`).
    pub guid: String,
    /// Name, unique among policies.
    pub name: String,
    /// Folder goid.
    pub folder_id: String,
    /// Type.
    pub policy_type: PolicyType,
    /// SOAP policy.
    pub soap: bool,
    /// Other properties (`tag`, `subtag`, ...), as given.
    pub properties: Properties,
    /// The policy's revisions (the active one is the policy).
    pub revisions: Revisions,
}

/// One argument of an encapsulated assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncassArgument {
    /// Position.
    pub ordinal: u32,
    /// Name.
    pub name: String,
    /// Type (`string`, `message`, ...).
    pub kind: String,
    /// Shown in the Policy Manager's dialog.
    pub gui_prompt: bool,
    /// Label in that dialog.
    pub gui_label: Option<String>,
}

/// One result of an encapsulated assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncassResult {
    /// Name.
    pub name: String,
    /// Type.
    pub kind: String,
}

/// An encapsulated assertion configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncapsulatedAssertion {
    /// Name, unique.
    pub name: String,
    /// Stable UUID-style id, unique.
    pub guid: String,
    /// The backing policy's goid.
    pub policy_id: String,
    /// Arguments in order.
    pub arguments: Vec<EncassArgument>,
    /// Results.
    pub results: Vec<EncassResult>,
    /// Other properties (`paletteFolder`, ...), as given.
    pub properties: Properties,
}

/// A cluster-wide property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterProperty {
    /// Name, unique.
    pub name: String,
    /// Value.
    pub value: String,
    /// Description.
    pub description: Option<String>,
}

/// What a trusted certificate is trusted for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustFlags {
    /// Outbound TLS server certificates.
    pub trusted_for_ssl: bool,
    /// Signing client certificates.
    pub trusted_for_signing_client_certs: bool,
    /// Signing server certificates.
    pub trusted_for_signing_server_certs: bool,
    /// SAML issuer.
    pub trusted_as_saml_issuer: bool,
    /// SAML attesting entity.
    pub trusted_as_saml_attesting_entity: bool,
    /// A trust anchor (path validation stops here).
    pub trust_anchor: bool,
    /// Verify the hostname of TLS servers.
    pub verify_hostname: bool,
    /// Check revocation.
    pub revocation_checking_enabled: bool,
}

/// A trusted certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedCertificate {
    /// Name, unique.
    pub name: String,
    /// The certificate, DER.
    #[serde(with = "base64_bytes")]
    pub der: Vec<u8>,
    /// Trust flags.
    pub trust: TrustFlags,
}

impl TrustedCertificate {
    /// The SHA-1 thumbprint of the DER, base64 (Layer7's `thumbprintSha1`), unique.
    pub fn thumbprint_sha1(&self) -> String {
        crate::layer7::keys::thumbprint_sha1(&self.der)
    }
}

/// A private key with its certificate chain, in a keystore.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateKey {
    /// Keystore goid.
    pub keystore_id: String,
    /// Alias, unique in the keystore.
    pub alias: String,
    /// Certificate chain, leaf first, DER.
    #[serde(with = "base64_chain")]
    pub chain: Vec<Vec<u8>>,
    /// The private key, PKCS#8 PEM (never served back but in a passphrase-encrypted bundle).
    pub key_pem: String,
    /// `EC` or `RSA`.
    pub algorithm: String,
    /// Cluster-wide purposes this key is the default for (`SSL`, `CA`, ...).
    pub special_purposes: Vec<String>,
}

impl PrivateKey {
    /// `<keystoreId>:<alias>`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.keystore_id, self.alias)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PrivateKey")
            .field("keystore_id", &self.keystore_id)
            .field("alias", &self.alias)
            .field("chain", &self.chain.len())
            .field("algorithm", &self.algorithm)
            .field("special_purposes", &self.special_purposes)
            .finish_non_exhaustive()
    }
}

/// Client certificate policy of a TLS listen port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientAuth {
    /// No client certificate asked.
    None,
    /// Asked, not required.
    Optional,
    /// Required.
    Required,
}

/// TLS settings of a listen port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenPortTls {
    /// Client certificates.
    pub client_auth: ClientAuth,
    /// Keystore goid of the server key (`None`: the default SSL key).
    pub keystore_id: Option<String>,
    /// Alias of the server key (`None`: the default SSL key).
    pub key_alias: Option<String>,
    /// Enabled TLS versions.
    pub versions: Vec<String>,
    /// Enabled cipher suites.
    pub cipher_suites: Vec<String>,
    /// Prefer the server's cipher order.
    pub use_cipher_suites_order: bool,
}

/// A listen port (connector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenPort {
    /// Name, unique.
    pub name: String,
    /// Listening.
    pub enabled: bool,
    /// `HTTP`, `HTTPS`, ...
    pub protocol: String,
    /// Port number, unique (a served twin records the bound port here).
    pub port: u16,
    /// Enabled features (`Published service message input`, ...).
    pub features: Vec<String>,
    /// TLS settings (HTTPS).
    pub tls: Option<ListenPortTls>,
    /// Other properties (`bindAddress`, ...), as given.
    pub properties: Properties,
}

/// What a stored password holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PasswordType {
    /// A password.
    Password,
    /// A PEM private key.
    PemPrivateKey,
}

/// A stored password (secure password).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPassword {
    /// Name, unique.
    pub name: String,
    /// The secret (never served back).
    pub password: String,
    /// What it holds.
    pub kind: PasswordType,
    /// Policies may read it as `${secpass.<name>.plaintext}`.
    pub usage_from_variable: bool,
    /// Description.
    pub description: Option<String>,
}

impl fmt::Debug for StoredPassword {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("StoredPassword")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("usage_from_variable", &self.usage_from_variable)
            .finish_non_exhaustive()
    }
}

/// Bytes as base64 text in the snapshot.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes base64.
    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    /// Reads base64.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A list of byte strings as base64 texts in the snapshot.
mod base64_chain {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes base64 texts.
    pub(super) fn serialize<S: Serializer>(
        chain: &[Vec<u8>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(chain.iter().map(|der| STANDARD.encode(der)))
    }

    /// Reads base64 texts.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .into_iter()
            .map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom))
            .collect()
    }
}
