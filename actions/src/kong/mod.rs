//! The kong family: actions against a gateway of type `kong` through its Admin
//! API (reference/kong-admin-api.md), over the typed [`client::KongClient`].
//!
//! Every action of the catalogue: `kong.status` ([`status`]), `kong.entity` ([`entity`]),
//! `kong.target` ([`target`]), `kong.wait_healthy` ([`wait_healthy`]), `kong.snapshot`
//! and `kong.sync` ([`declarative`]), `kong.key_rotate` ([`key_rotate`]) and
//! `kong.cert_rotate` ([`cert_rotate`]).

pub mod cert_rotate;
pub mod certificate_check;
pub mod certificate_check_action;
pub mod client;
pub mod declarative;
pub mod entity;
pub mod gateway;
pub mod key_rotate;
pub mod key_verify;
pub mod kinds;
pub mod rotation;
pub mod status;
pub mod target;
pub mod wait_healthy;

use runsheet_engine::model::Duration;
use runsheet_engine::{DuplicateAction, Registry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::arguments::{OneOrMany, Presence};

/// The family name of these actions.
pub const FAMILY: &str = "kong";

/// Arguments of `kong.entity`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KongEntityArguments {
    /// Entity type.
    pub kind: KongEntityKind,
    /// Fields that identify the entity: `id` or its endpoint key (`name`, `username`, `key`, ...) and, for nested kinds, the parent (`consumer`, `upstream`).
    pub r#match: serde_json::Map<String, serde_json::Value>,
    /// Whether the entity must exist (default present).
    #[serde(default)]
    pub state: Presence,
    /// The entity's fields as the Admin API takes them, when present (default: only the `match` fields).
    #[serde(default)]
    pub spec: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A Kong Admin API entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KongEntityKind {
    /// `/services`.
    Service,
    /// `/routes`.
    Route,
    /// `/plugins`.
    Plugin,
    /// `/consumers`.
    Consumer,
    /// `/upstreams`.
    Upstream,
    /// `/upstreams/{upstream}/targets`.
    Target,
    /// `/certificates`.
    Certificate,
    /// `/snis`.
    Sni,
    /// `/ca_certificates`.
    CaCertificate,
    /// `/consumers/{consumer}/key-auth`.
    KeyAuth,
    /// `/consumers/{consumer}/jwt`.
    Jwt,
    /// `/consumers/{consumer}/acls`.
    Acl,
    /// `/consumers/{consumer}/basic-auth`.
    BasicAuth,
    /// `/consumers/{consumer}/hmac-auth`.
    HmacAuth,
}

/// Arguments of `kong.target`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KongTargetArguments {
    /// Upstream name or id.
    pub upstream: String,
    /// Target as `host:port` (Kong adds port 8000 when it is left out).
    pub target: String,
    /// Weight, 0 to 65535; 0 drains the target (no new traffic, still listed).
    pub weight: u16,
}

/// Arguments of `kong.wait_healthy`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KongWaitHealthyArguments {
    /// Upstream name or id.
    pub upstream: String,
    /// Target `host:port` that must be healthy (default: the upstream's balancer as a whole).
    #[serde(default)]
    pub target: Option<String>,
    /// How long to poll before the step fails (default 5m).
    #[serde(default = "five_minutes")]
    pub timeout: Duration,
}

/// The default wait, 5 minutes.
fn five_minutes() -> Duration {
    Duration(std::time::Duration::from_secs(300))
}

/// Arguments of `kong.snapshot`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KongSnapshotArguments {
    /// File the declarative state is written to (Kong format 3.0).
    pub path: String,
    /// Only entities carrying all these tags (default: every entity).
    #[serde(default)]
    pub select_tags: Vec<String>,
    /// Write credentials' secrets (keys, passwords, private keys) instead of a mask (default false).
    #[serde(default)]
    pub include_credentials: bool,
}

/// Arguments of `kong.sync`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KongSyncArguments {
    /// Declarative file (Kong format 3.0, as `kong.snapshot` writes) the gateway is brought to.
    pub state: String,
    /// Only manage entities carrying all these tags; others are left alone (default: every entity).
    #[serde(default)]
    pub select_tags: Vec<String>,
    /// Delete managed entities missing from the file (default false: only create and update).
    #[serde(default)]
    pub delete: bool,
}

/// Arguments of `kong.key_rotate`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["key"]}, {"required": ["generate"]}]))]
pub struct KongKeyRotateArguments {
    /// Username or id of the consumer whose key-auth key is rotated.
    pub consumer: String,
    /// The new key; exactly one of `key` and `generate: true`.
    #[serde(default)]
    pub key: Option<String>,
    /// `true`: Kong generates the new key; exactly one of `key` and `generate: true`.
    #[serde(default)]
    pub generate: bool,
    /// How long the old key keeps working beside the new one, as its Kong `ttl` (default: revoked at once).
    #[serde(default)]
    pub overlap: Option<Duration>,
    /// Revoke the consumer's previous keys (default true); false keeps them all valid.
    #[serde(default = "yes")]
    pub revoke_old: bool,
    /// How the new key is checked through the proxy before old keys are retired (default: a route protected by key-auth, found on the gateway).
    #[serde(default)]
    pub verify: KeyVerifyArguments,
}

/// How `kong.key_rotate` checks the new key through the gateway's proxy (`proxy_url`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyVerifyArguments {
    /// `true`: no check (announced with a warning); old keys are retired unverified.
    #[serde(default)]
    pub skip: bool,
    /// Proxy path of a route protected by key-auth (default: the first path of such a route).
    #[serde(default)]
    pub path: Option<String>,
    /// Header the key is sent in (default: the key-auth plugin's first `key_names`, else `apikey`).
    #[serde(default)]
    pub header: Option<String>,
    /// Status or statuses that mean the key was accepted (default: any 2xx).
    #[serde(default)]
    pub expect_status: Option<OneOrMany<u16>>,
    /// How long to retry while the gateway propagates the new key (default 10s).
    #[serde(default)]
    pub timeout: Option<Duration>,
}

/// On unless turned off.
fn yes() -> bool {
    true
}

/// Arguments of `kong.cert_rotate`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KongCertRotateArguments {
    /// The certificate being replaced: its id or one of its SNI names.
    pub certificate: String,
    /// PEM of the new certificate, leaf first, then intermediates (or a file holding it, relative to the playbook).
    pub cert: String,
    /// PEM of the new certificate's private key, usually `secret()` so that it is masked (or a file holding it).
    pub key: String,
    /// SNI names moved to the new certificate (default: every SNI of the old one).
    #[serde(default)]
    pub snis: Option<Vec<String>>,
    /// How the move is checked by TLS handshakes through the proxy's TLS listener (`proxy_tls_url`).
    #[serde(default)]
    pub verify: CertVerifyArguments,
}

/// How `kong.cert_rotate` checks that the proxy serves the new certificate.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertVerifyArguments {
    /// `true`: no handshake check (announced with a warning).
    #[serde(default)]
    pub skip: bool,
    /// How long to retry while the gateway propagates the change (default 10s).
    #[serde(default)]
    pub timeout: Option<Duration>,
}

/// Registers the kong actions.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateAction> {
    registry.register(status::KongStatus::new())?;
    registry.register(entity::KongEntity::new())?;
    registry.register(target::KongTarget::new())?;
    registry.register(wait_healthy::KongWaitHealthy::new())?;
    registry.register(declarative::snapshot::KongSnapshot::new())?;
    registry.register(declarative::sync::KongSync::new())?;
    registry.register(declarative::diff_step::KongDiff::new())?;
    registry.register(key_rotate::KongKeyRotate::new())?;
    registry.register(cert_rotate::KongCertRotate::new())?;
    registry.register(certificate_check_action::KongCertificateCheck::new())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn target_weight_is_0_to_65535() {
        let base = json!({"upstream": "core", "target": "10.0.0.1:8000"});
        let with_weight = |weight: serde_json::Value| {
            let mut arguments = base.clone();
            arguments["weight"] = weight;
            serde_json::from_value::<KongTargetArguments>(arguments)
        };
        assert!(with_weight(json!(0)).is_ok());
        assert!(with_weight(json!(65535)).is_ok());
        assert!(with_weight(json!(65536)).is_err());
        assert!(with_weight(json!(-1)).is_err());
    }

    #[test]
    fn entity_reads_match_and_kind() -> Result<(), serde_json::Error> {
        let arguments: KongEntityArguments = serde_json::from_value(json!({
            "kind": "key_auth",
            "match": {"consumer": "alice", "key": "k1"},
            "state": "absent"
        }))?;
        assert_eq!(arguments.kind, KongEntityKind::KeyAuth);
        assert_eq!(arguments.state, Presence::Absent);
        assert_eq!(arguments.r#match.len(), 2);
        assert!(
            serde_json::from_value::<KongEntityArguments>(
                json!({"kind": "workspace", "match": {}})
            )
            .is_err()
        );
        Ok(())
    }

    #[test]
    fn key_rotate_defaults_to_revoking_the_old_key() -> Result<(), serde_json::Error> {
        let arguments: KongKeyRotateArguments =
            serde_json::from_value(json!({"consumer": "alice", "generate": true}))?;
        assert!(arguments.revoke_old);
        assert!(arguments.key.is_none());
        Ok(())
    }
}

#[cfg(test)]
mod entity_tests;
#[cfg(test)]
mod rotate_tests;
#[cfg(test)]
mod twin_tests;
