//! Listen ports and the keys they present, for `layer7.key_rotate` and
//! `layer7.listen_port`: a port read through Graphman ([`PortKey`], with the key it
//! names or, when it names none, the default SSL key), the switch of a port to another
//! key (Graphman `updateListenPort`, a partial update of `tlsSettings` only), the
//! certificate of a key (restman `privateKeys/{keystoreId}:{alias}`), and the TLS
//! handshake that proves which certificate a port serves ([`wait_until_served`]).

use std::path::Path;
use std::time::Duration;

use super::error::Layer7Error;
use super::gateway::Layer7Gateway;
use super::graphman::GraphmanOptions;
use super::graphman::types::GraphmanListenPort;
use super::key_material::KeyCertificate;
use super::restman::PrivateKey;
use crate::kong::certificate_check::sha256_hex;
use crate::kong::rotation::{DEFAULT_VERIFY_TIMEOUT, VERIFY_INTERVAL};
use crate::served_certificate::{TlsEndpoint, served_leaf};

/// The longest one verification handshake may take.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

/// The listen port protocol whose key the rotation switches.
pub const HTTPS: &str = "HTTPS";

/// A key in a keystore: `keystoreId:alias`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyRef {
    /// The keystore's goid.
    pub keystore: String,
    /// The alias.
    pub alias: String,
}

impl KeyRef {
    /// A key reference.
    pub fn new(keystore: &str, alias: &str) -> Self {
        Self {
            keystore: keystore.to_owned(),
            alias: alias.to_owned(),
        }
    }

    /// Restman's id: `<keystoreId>:<alias>`.
    pub fn id(&self) -> String {
        PrivateKey::id_of(&self.keystore, &self.alias)
    }
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", self.alias)
    }
}

/// A listen port as the rotation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortKey {
    /// Its name (`Default HTTPS (8443)`).
    pub name: String,
    /// `HTTPS`, `HTTP`, ...
    pub protocol: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// The TCP port.
    pub port: u16,
    /// The key it names in its TLS settings; `None` when it names none (it then presents
    /// the default SSL key).
    pub named_key: Option<KeyRef>,
}

impl PortKey {
    /// From Graphman's `ListenPort`.
    fn from_graphman(port: GraphmanListenPort) -> Self {
        let named_key = port.tls_settings.as_ref().and_then(|tls| {
            let alias = tls.key_alias.as_deref().filter(|alias| !alias.is_empty())?;
            let keystore = tls
                .keystore_id
                .as_deref()
                .unwrap_or(super::SOFTWARE_KEYSTORE);
            Some(KeyRef::new(keystore, alias))
        });
        Self {
            protocol: port.protocol.unwrap_or_default(),
            enabled: port.enabled.unwrap_or(true),
            port: port.port.unwrap_or_default(),
            name: port.name,
            named_key,
        }
    }

    /// Whether it is an HTTPS port (the only protocol whose key is switched and verified).
    pub fn is_https(&self) -> bool {
        self.protocol.eq_ignore_ascii_case(HTTPS)
    }
}

/// The listen port `name`, if the gateway has one.
pub async fn read_port(
    gateway: &Layer7Gateway,
    name: &str,
) -> Result<Option<PortKey>, Layer7Error> {
    Ok(gateway
        .graphman
        .listen_port_by_name(name)
        .await?
        .map(PortKey::from_graphman))
}

/// The key a port presents: the one it names, else the gateway's default SSL key (the
/// key whose `specialPurposes` include `SSL`).
pub async fn presented_key(
    gateway: &Layer7Gateway,
    port: &PortKey,
) -> Result<Option<KeyRef>, Layer7Error> {
    if let Some(key) = &port.named_key {
        return Ok(Some(key.clone()));
    }
    let keys = gateway.restman.list::<PrivateKey>(&[]).await?;
    Ok(keys
        .iter()
        .find(|key| {
            key.properties
                .as_ref()
                .and_then(|properties| properties.get("specialPurposes"))
                .is_some_and(|value| match value {
                    super::restman::PropertyValue::String(purposes) => {
                        purposes.split(',').any(|purpose| purpose.trim() == "SSL")
                    }
                    _ => false,
                })
        })
        .map(|key| KeyRef::new(&key.keystore_id, &key.alias)))
}

/// The key `key` with its leaf certificate, or `None` when the gateway has no such key.
pub async fn read_key(
    gateway: &Layer7Gateway,
    key: &KeyRef,
) -> Result<Option<KeyCertificate>, Layer7Error> {
    match gateway.restman.get::<PrivateKey>(&key.id()).await {
        Ok(found) => KeyCertificate::of_key(&found).map(Some).map_err(|reason| {
            Layer7Error::malformed(
                &format!(
                    "GET {}/privateKeys/{}",
                    gateway.restman.base_url(),
                    key.id()
                ),
                reason,
                "",
            )
        }),
        Err(Layer7Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Makes listen port `name` present `key` (`updateListenPort` with `tlsSettings
/// {keystoreId, keyAlias}`; its other settings stay as they are).
pub async fn switch_port(
    gateway: &Layer7Gateway,
    name: &str,
    key: &KeyRef,
) -> Result<(), Layer7Error> {
    gateway
        .graphman
        .update_listen_port_key(name, &key.keystore, &key.alias, &GraphmanOptions::default())
        .await?;
    Ok(())
}

/// The address TLS handshakes go to: the host of the gateway's `url`, at `port`.
pub fn endpoint(gateway: &Layer7Gateway, port: u16) -> Result<TlsEndpoint, String> {
    let mut endpoint = TlsEndpoint::parse(&gateway.url)
        .map_err(|reason| format!("gateway `{}`: url: {reason}", gateway.name))?;
    endpoint.port = port;
    Ok(endpoint)
}

/// Shakes hands with `endpoint` until it presents `expected` (DER), within `timeout`
/// (retrying while the gateway restarts the connector). The chain is not checked against
/// any CA: the leaf's bytes are compared, which proves identity more strictly than trust.
pub async fn wait_until_served(
    endpoint: &TlsEndpoint,
    expected: &[u8],
    base_dir: &Path,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let server_name = endpoint.host.clone();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let limit = left.clamp(Duration::from_millis(100), HANDSHAKE_LIMIT);
        let last = match served_leaf(endpoint, &server_name, base_dir, limit).await {
            Ok(leaf) if leaf == expected => return Ok(()),
            Ok(leaf) => format!(
                "it presents another certificate (sha256 {}, expected {})",
                sha256_hex(&leaf),
                sha256_hex(expected)
            ),
            Err(reason) => reason,
        };
        if tokio::time::Instant::now() + VERIFY_INTERVAL >= deadline {
            return Err(format!(
                "{}:{} did not present the expected certificate within {}s: {last}",
                endpoint.host,
                endpoint.port,
                timeout.as_secs_f32()
            ));
        }
        tokio::time::sleep(VERIFY_INTERVAL).await;
    }
}

/// How long a verification may take: the step's timeout when shorter than the default.
pub fn verify_timeout(step_timeout: Option<Duration>) -> Duration {
    step_timeout.map_or(DEFAULT_VERIFY_TIMEOUT, |timeout| {
        timeout.min(DEFAULT_VERIFY_TIMEOUT)
    })
}
