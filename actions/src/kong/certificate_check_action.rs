//! `kong.certificate_check` ([`KongCertificateCheck`]): the pre-checks of a certificate
//! rotation as a step of their own, never writing: the new PEM certificate and key parse
//! and match, the certificate is valid now and covers the SNIs; with `certificate`, the
//! SNIs are on that certificate of the gateway. Its outputs (fingerprint, serial,
//! expiry) are what a later TLS handshake (`tls.inspect`) is compared with.

use runsheet_engine::{Action, ActionError, ActionSpec, Applied, Effect, StepContext, TargetKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::FAMILY;
use super::cert_rotate::{find_old, pem_or_file};
use super::certificate_check::{NewCertificate, sha256_hex};
use super::gateway::KongGateway;
use super::rotation::{now_seconds, rfc3339};
use crate::arguments::parse;

/// The action's name.
const NAME: &str = "kong.certificate_check";

/// The outputs of `kong.certificate_check`.
pub const OUTPUTS: &[&str] = &[
    "subject",
    "serial",
    "fingerprint_sha256",
    "not_after",
    "days_left",
    "dns_names",
    "snis",
    "current_certificate_id",
    "current_fingerprint_sha256",
    "current_certificate_pem",
];

/// Arguments of `kong.certificate_check`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KongCertificateCheckArguments {
    /// PEM of the new certificate, leaf first (or a file holding it, relative to the playbook).
    pub cert: String,
    /// PEM of its private key, usually `secret()` (or a file holding it); never shown.
    pub key: String,
    /// SNI names the certificate must cover (default: every SNI of `certificate`).
    #[serde(default)]
    pub snis: Option<Vec<String>>,
    /// The certificate being replaced on the gateway: its id or one of its SNI names; the SNIs must be on it.
    #[serde(default)]
    pub certificate: Option<String>,
}

/// The `kong.certificate_check` action.
#[derive(Debug, Clone)]
pub struct KongCertificateCheck {
    spec: ActionSpec,
}

impl KongCertificateCheck {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<KongCertificateCheckArguments>(
                NAME,
                FAMILY,
                "Checks a new certificate and key before a rotation: they match, it is valid now and covers the SNIs.",
                Effect::READ,
            )
            .target(TargetKind::Gateway("kong"))
            .outputs(OUTPUTS),
        }
    }
}

impl Default for KongCertificateCheck {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for KongCertificateCheck {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: KongCertificateCheckArguments = parse(NAME, arguments)?;
        let cert = pem_or_file("cert", arguments.cert, context).await?;
        let key = pem_or_file("key", arguments.key, context).await?;
        let now = now_seconds();
        let checked = NewCertificate::check(&cert, &key, now)
            .map_err(|reason| ActionError::failed(format!("{NAME}: {reason}")))?;
        let current = match &arguments.certificate {
            Some(certificate) if !certificate.is_empty() => {
                let gateway = KongGateway::for_step(context).await?;
                Some(find_old(&gateway.client, certificate).await?)
            }
            _ => None,
        };
        let snis = match (&arguments.snis, &current) {
            (Some(snis), _) => snis.clone(),
            (None, Some(current)) => current.snis.clone(),
            (None, None) => {
                return Err(ActionError::InvalidArguments {
                    action: NAME,
                    message: "give `snis`, or `certificate` to check every SNI it has".to_owned(),
                });
            }
        };
        if snis.is_empty() {
            return Err(ActionError::InvalidArguments {
                action: NAME,
                message: "no SNI to check (`snis` is empty, or the certificate has none)"
                    .to_owned(),
            });
        }
        if let Some(current) = &current {
            let foreign: Vec<&str> = snis
                .iter()
                .filter(|sni| !current.snis.contains(sni))
                .map(String::as_str)
                .collect();
            if !foreign.is_empty() {
                return Err(ActionError::failed(format!(
                    "{NAME}: SNI {} not attached to certificate {} (its SNIs: {})",
                    foreign.join(", "),
                    current.id,
                    current.snis.join(", ")
                )));
            }
        }
        let uncovered = checked.uncovered(&snis);
        if !uncovered.is_empty() {
            return Err(ActionError::failed(format!(
                "{NAME}: the new certificate ({}) does not cover SNI {} (its DNS names: {})",
                checked.describe(),
                uncovered.join(", "),
                checked.dns_names.join(", ")
            )));
        }
        Ok(Applied {
            outputs: outputs(&checked, &snis, current.as_ref(), now),
            undo: None,
            change: None,
            secrets: vec![key],
        })
    }
}

/// The step's outputs.
fn outputs(
    checked: &NewCertificate,
    snis: &[String],
    current: Option<&super::cert_rotate::Old>,
    now: i64,
) -> Map<String, Value> {
    let serial = x509_parser::parse_x509_certificate(&checked.leaf)
        .map(|(_, parsed)| parsed.raw_serial_as_string())
        .unwrap_or_default();
    let mut outputs = Map::new();
    outputs.insert("subject".to_owned(), Value::from(checked.subject.clone()));
    outputs.insert("serial".to_owned(), Value::from(serial));
    outputs.insert(
        "fingerprint_sha256".to_owned(),
        Value::from(checked.fingerprint()),
    );
    outputs.insert(
        "not_after".to_owned(),
        Value::from(rfc3339(checked.not_after)),
    );
    outputs.insert(
        "days_left".to_owned(),
        Value::from((checked.not_after - now).div_euclid(86_400)),
    );
    outputs.insert(
        "dns_names".to_owned(),
        Value::from(checked.dns_names.clone()),
    );
    outputs.insert("snis".to_owned(), Value::from(snis.to_vec()));
    outputs.insert(
        "current_certificate_id".to_owned(),
        current.map_or(Value::Null, |current| Value::from(current.id.clone())),
    );
    outputs.insert(
        "current_fingerprint_sha256".to_owned(),
        current
            .and_then(|current| current.leaf.as_deref())
            .map_or(Value::Null, |leaf| Value::from(sha256_hex(leaf))),
    );
    outputs.insert(
        "current_certificate_pem".to_owned(),
        current
            .and_then(|current| current.leaf.as_deref())
            .map_or(Value::Null, |leaf| Value::from(pem_of(leaf))),
    );
    outputs
}

/// A DER certificate as PEM text (public: the certificate, never a key).
fn pem_of(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kong::declarative::tests::{certificate, seed, step};
    use crate::kong::twin_tests::writes;
    use crate::kong::twin_tests::twin;
    use crate::test_support::TestResult;

    #[tokio::test]
    async fn reports_the_new_and_current_certificates_and_refuses_what_would_fail() -> TestResult {
        let twin = twin().await?;
        let (current, _) = seed(&twin)?;
        let dir = tempfile::tempdir()?;
        let context = step(&twin, false, dir.path());
        let (cert, key) = certificate(&["a.test", "b.test"])?;
        let check = KongCertificateCheck::new();

        let applied = check
            .apply(
                &context,
                json!({"cert": cert, "key": key, "certificate": "a.test"}),
            )
            .await?;
        let outputs = &applied.outputs;
        assert_eq!(outputs["snis"], json!(["a.test", "b.test"]));
        assert_eq!(
            outputs["fingerprint_sha256"].as_str().map(str::len),
            Some(64)
        );
        assert_ne!(
            outputs["fingerprint_sha256"],
            outputs["current_fingerprint_sha256"]
        );
        assert!(
            outputs["serial"].as_str().is_some_and(|s| s.contains(':')),
            "{}",
            outputs["serial"]
        );
        let current_pem = outputs["current_certificate_pem"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            super::super::certificate_check::leaf_der(current_pem),
            super::super::certificate_check::leaf_der(&current)
        );
        assert_eq!(applied.secrets, vec![key.clone()]);
        assert_eq!(outputs.len(), OUTPUTS.len());

        let (other_cert, other_key) = certificate(&["a.test"])?;
        for (arguments, expected) in [
            (
                json!({"cert": cert, "key": other_key, "snis": ["a.test"]}),
                "does not match",
            ),
            (
                json!({"cert": other_cert, "key": other_key, "certificate": "a.test"}),
                "does not cover SNI b.test",
            ),
            (
                json!({"cert": cert, "key": key, "snis": ["c.test"], "certificate": "a.test"}),
                "not attached",
            ),
            (json!({"cert": cert, "key": key}), "give `snis`"),
        ] {
            let error = check
                .apply(&context, arguments)
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("PRIVATE KEY"), "{error}");
        }
        assert_eq!(writes(&twin).await?, 0);
        Ok(())
    }
}
