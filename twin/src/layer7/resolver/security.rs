//! Keys, trusted certificates and listen ports in Graphman's shape (reference §2.4): keys
//! from PEM or generated, a listen port's TLS key switch (`updateListenPort`).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::StoreResolver;
use super::kind::{GraphmanKind, parse, text};
use crate::layer7::graphman::status::{DetailedStatus, EntityMutationStatus, EntityOutcome};
use crate::layer7::graphman::{Context, Field, FieldError};
use crate::layer7::keys::{self, KeyRequest};
use crate::layer7::store::{
    DEFAULT_KEYSTORE_ID, EntityKind, ListenPort, PrivateKey, Store, StoreError, Stored, TrustFlags,
    TrustedCertificate,
};

/// The purposes a key can be the cluster default for (`usageTypes`).
const USAGE_TYPES: [&str; 6] = [
    "SSL",
    "SERVER_SSL",
    "CLIENT_SSL",
    "CA",
    "AUDIT_VIEWER",
    "AUDIT_SIGNING",
];

/// A key's Graphman goid: the store keys private keys by `<keystoreId>:<alias>`, so the
/// goid is derived from that id (stable, 32 hex digits).
pub(super) fn key_goid(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `KeyInput`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyInput {
    /// Keystore (default: the software keystore).
    keystore_id: Option<String>,
    /// Alias.
    alias: String,
    /// Private key then certificate chain, PEM.
    pem: Option<String>,
    /// PKCS#12, base64 (not taken by the twin).
    p12: Option<String>,
    /// Generate a self-signed key.
    key_generate_options: Option<KeyGenerateOptions>,
    /// Subject DN of a generated key's certificate.
    subject_dn: Option<String>,
    /// Purposes this key becomes the default for.
    usage_types: Option<Vec<String>>,
}

/// `keyGenerateOptions`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyGenerateOptions {
    /// Named curve (`secp384r1`).
    ec_name: Option<String>,
    /// Days the certificate is valid (default 1825).
    cert_expiry: Option<u32>,
    /// A CA certificate.
    #[serde(rename = "certCACapable")]
    cert_ca_capable: Option<bool>,
}

/// The keystore and alias a key input or ref names.
fn key_id(input: &Value) -> Option<String> {
    let alias = text(input, "alias")?;
    let keystore = text(input, "keystoreId").unwrap_or_else(|| DEFAULT_KEYSTORE_ID.to_owned());
    Some(format!("{keystore}:{alias}"))
}

/// PEM text of `der` under `label`.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// The key (PEM) and chain (DER) of a `pem` input, checked to belong together.
fn from_pem(text: &str) -> Result<(String, Vec<Vec<u8>>, String), String> {
    let private = PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map_err(|_| "pem holds no readable private key".to_owned())?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| "pem holds an unreadable certificate".to_owned())?;
    if chain.is_empty() {
        return Err("pem holds no certificate (the private key, then the chain)".to_owned());
    }
    let signing = any_supported_type(&private)
        .map_err(|_| "pem holds a private key of an unsupported type".to_owned())?;
    let algorithm = match signing.algorithm() {
        rustls::SignatureAlgorithm::RSA => "RSA",
        rustls::SignatureAlgorithm::ECDSA => "EC",
        _ => "OTHER",
    }
    .to_owned();
    CertifiedKey::new(chain.clone(), Arc::clone(&signing))
        .keys_match()
        .map_err(|_| "the private key does not match the first certificate of pem".to_owned())?;
    let label = match &private {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    let key_pem = pem(label, private.secret_der());
    Ok((
        key_pem,
        chain.iter().map(|der| der.to_vec()).collect(),
        algorithm,
    ))
}

impl GraphmanKind for PrivateKey {
    const SECTION: &'static str = "keys";
    const TYPE_NAME: &'static str = "Key";

    fn config_json(stored: &Stored<Self>, _store: &Store) -> Map<String, Value> {
        let key = &stored.entity;
        let subject = key
            .chain
            .first()
            .and_then(|der| keys::facts(der).ok())
            .map(|facts| facts.subject);
        let value = json!({
            "goid": key_goid(&stored.id),
            "keystoreId": key.keystore_id,
            "alias": key.alias,
            "keyType": key.algorithm,
            "keySize": null,
            "subjectDn": subject,
            "usageTypes": key.special_purposes,
            "certChain": key.chain.iter().map(|der| keys::certificate_pem(der)).collect::<Vec<_>>(),
            "certProperties": null,
            "p12": null,
            "pem": null,
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        if let Some(id) = key_id(input) {
            return store.get::<PrivateKey>(&id).map(|stored| stored.id.clone());
        }
        let goid = text(input, "goid")?;
        store
            .all::<PrivateKey>()
            .iter()
            .find(|stored| key_goid(&stored.id) == goid)
            .map(|stored| stored.id.clone())
    }

    fn new_id(_store: &Store, input: &Value) -> String {
        key_id(input).unwrap_or_default()
    }

    fn from_input(
        _store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        // Never quote the input: it may hold a private key.
        let given = KeyInput::deserialize(input).map_err(|_| {
            "invalid key input (keystoreId, alias, pem or keyGenerateOptions, ...)".to_owned()
        })?;
        if given.p12.is_some() {
            return Err("the twin takes keys as pem (private key, then chain), not p12".to_owned());
        }
        let usage = given.usage_types.unwrap_or_else(|| {
            existing
                .map(|old| old.entity.special_purposes.clone())
                .unwrap_or_default()
        });
        if let Some(unknown) = usage
            .iter()
            .find(|usage| !USAGE_TYPES.contains(&usage.as_str()))
        {
            return Err(format!(
                "usage type {unknown} is not one of {}",
                USAGE_TYPES.join(", ")
            ));
        }
        let (key_pem, chain, algorithm) = match (&given.pem, given.key_generate_options, existing) {
            (Some(text), _, _) => from_pem(text)?,
            (None, Some(options), _) => {
                let generated = keys::self_signed(&KeyRequest {
                    dn: given
                        .subject_dn
                        .clone()
                        .unwrap_or_else(|| format!("CN={}", given.alias)),
                    curve: options.ec_name,
                    days: options.cert_expiry.unwrap_or(1825),
                    ca: options.cert_ca_capable.unwrap_or(false),
                })
                .map_err(|error| error.to_string())?;
                (generated.key_pem, generated.chain, generated.algorithm)
            }
            (None, None, Some(old)) => (
                old.entity.key_pem.clone(),
                old.entity.chain.clone(),
                old.entity.algorithm.clone(),
            ),
            (None, None, None) => {
                return Err("a new key needs pem or keyGenerateOptions".to_owned());
            }
        };
        Ok(PrivateKey {
            keystore_id: given
                .keystore_id
                .unwrap_or_else(|| DEFAULT_KEYSTORE_ID.to_owned()),
            alias: given.alias,
            chain,
            key_pem,
            algorithm,
            special_purposes: usage,
        })
    }

    fn remove(store: &mut Store, id: &str, _context: &Context<'_>) -> Result<(), StoreError> {
        let user = store.all::<ListenPort>().iter().find(|port| {
            port.entity.tls.as_ref().is_some_and(|tls| {
                tls.key_alias.as_deref().is_some_and(|alias| {
                    let keystore = tls.keystore_id.as_deref().unwrap_or(DEFAULT_KEYSTORE_ID);
                    format!("{keystore}:{alias}") == id
                })
            })
        });
        if let Some(user) = user {
            return Err(StoreError::InUse {
                kind: EntityKind::PrivateKey,
                name: id.to_owned(),
                by: format!("listen port '{}'", user.entity.name),
            });
        }
        store.delete::<PrivateKey>(id).map(|_| ())
    }
}

/// `TrustedCertInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustedCertInput {
    /// Name.
    name: Option<String>,
    /// The certificate, base64 DER.
    cert_base64: Option<String>,
    /// What it is trusted for.
    trusted_for: Option<Vec<String>>,
    /// Verify TLS server host names.
    verify_hostname: Option<bool>,
    /// A trust anchor.
    trust_anchor: Option<bool>,
    /// `NONE`, `USE_DEFAULT` or `SPECIFIED`.
    revocation_check_policy_type: Option<String>,
}

/// The `trustedFor` names and the flag each sets.
const TRUSTED_FOR: [&str; 5] = [
    "SSL",
    "SIGNING_SERVER_CERTS",
    "SIGNING_CLIENT_CERTS",
    "SAML_ISSUER",
    "SAML_ATTESTING_ENTITY",
];

/// The `trustedFor` list of some flags.
fn trusted_for(flags: &TrustFlags) -> Vec<&'static str> {
    let set = [
        flags.trusted_for_ssl,
        flags.trusted_for_signing_server_certs,
        flags.trusted_for_signing_client_certs,
        flags.trusted_as_saml_issuer,
        flags.trusted_as_saml_attesting_entity,
    ];
    TRUSTED_FOR
        .iter()
        .zip(set)
        .filter_map(|(name, on)| on.then_some(*name))
        .collect()
}

/// The SHA-256 thumbprint of a DER certificate, base64 (Graphman's `thumbprint`).
pub(super) fn thumbprint_sha256(der: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(der))
}

/// The certificate's SHA-1 thumbprint from its base64 DER.
fn thumbprint_of(cert_base64: &str) -> Option<String> {
    let der = STANDARD.decode(cert_base64.trim()).ok()?;
    Some(keys::thumbprint_sha1(&der))
}

impl GraphmanKind for TrustedCertificate {
    const SECTION: &'static str = "trustedCerts";
    const TYPE_NAME: &'static str = "TrustedCert";

    fn config_json(stored: &Stored<Self>, _store: &Store) -> Map<String, Value> {
        let cert = &stored.entity;
        let facts = keys::facts(&cert.der).ok();
        let not_after = facts
            .as_ref()
            .and_then(|facts| jiff::Timestamp::from_second(facts.not_after).ok())
            .map(|time| time.to_string());
        let value = json!({
            "goid": stored.id,
            "name": cert.name,
            "subjectDn": facts.as_ref().map(|facts| facts.subject.clone()),
            "issuerDn": facts.as_ref().map(|facts| facts.issuer.clone()),
            "serialNumber": facts.as_ref().map(|facts| facts.serial.clone()),
            "thumbprint": thumbprint_sha256(&cert.der),
            "thumbprintSha1": cert.thumbprint_sha1(),
            "certBase64": STANDARD.encode(&cert.der),
            "trustedFor": trusted_for(&cert.trust),
            "verifyHostname": cert.trust.verify_hostname,
            "trustAnchor": cert.trust.trust_anchor,
            "revocationCheckPolicyType":
                if cert.trust.revocation_checking_enabled { "USE_DEFAULT" } else { "NONE" },
            "revocationCheckPolicyName": null,
            "notAfter": not_after,
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        let thumbprint = text(input, "thumbprintSha1")
            .or_else(|| text(input, "certBase64").and_then(|cert| thumbprint_of(&cert)));
        let by = |key: String| {
            store
                .find::<TrustedCertificate>(&key)
                .first()
                .map(|stored| stored.id.clone())
        };
        match thumbprint {
            Some(thumbprint) => by(format!("thumbprintSha1={thumbprint}")).or_else(|| {
                // Same name, other certificate: the name identifies it (an update).
                text(input, "certBase64")
                    .and(text(input, "name"))
                    .and_then(|name| by(format!("name={name}")))
            }),
            None => text(input, "name").and_then(|name| by(format!("name={name}"))),
        }
    }

    fn from_input(
        _store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        let given: TrustedCertInput = parse(input, "trusted cert")?;
        let old = existing.map(|stored| &stored.entity);
        let der = match (&given.cert_base64, old) {
            (Some(text), _) => STANDARD
                .decode(text.trim())
                .map_err(|_| "certBase64 is not base64".to_owned())?,
            (None, Some(old)) => old.der.clone(),
            (None, None) => return Err("certBase64 is required".to_owned()),
        };
        keys::facts(&der).map_err(|error| format!("certBase64: {error}"))?;
        let mut trust = old.map(|old| old.trust.clone()).unwrap_or_default();
        if let Some(list) = &given.trusted_for {
            if let Some(unknown) = list
                .iter()
                .find(|item| !TRUSTED_FOR.contains(&item.as_str()))
            {
                return Err(format!(
                    "trustedFor {unknown} is not one of {}",
                    TRUSTED_FOR.join(", ")
                ));
            }
            let has = |name: &str| list.iter().any(|item| item == name);
            trust.trusted_for_ssl = has("SSL");
            trust.trusted_for_signing_server_certs = has("SIGNING_SERVER_CERTS");
            trust.trusted_for_signing_client_certs = has("SIGNING_CLIENT_CERTS");
            trust.trusted_as_saml_issuer = has("SAML_ISSUER");
            trust.trusted_as_saml_attesting_entity = has("SAML_ATTESTING_ENTITY");
        }
        if let Some(verify) = given.verify_hostname {
            trust.verify_hostname = verify;
        }
        if let Some(anchor) = given.trust_anchor {
            trust.trust_anchor = anchor;
        }
        if let Some(policy) = &given.revocation_check_policy_type {
            trust.revocation_checking_enabled = policy != "NONE";
        }
        Ok(TrustedCertificate {
            name: given
                .name
                .or_else(|| old.map(|old| old.name.clone()))
                .ok_or("name is required")?,
            der,
            trust,
        })
    }
}

impl StoreResolver {
    /// `setKeys`: like every set, but at most one existing key is updated per request
    /// (reference §2.4); the special purposes given move to the key.
    pub(super) fn set_keys(
        &mut self,
        field: &Field,
        context: &Context<'_>,
    ) -> Result<Value, FieldError> {
        let inputs: Vec<Value> = field.argument("input")?;
        let properties =
            crate::layer7::graphman::mapping::BundleProperties::from_variables(context.variables)
                .map_err(|error| FieldError::Failed(error.to_string()))?;
        let section = PrivateKey::section()?;
        let mut updates = 0;
        let mut outcomes = Vec::new();
        for input in &inputs {
            if PrivateKey::find(&self.store, input).is_some() {
                updates += 1;
                if updates > 1 {
                    let mapping = properties.mapping_for(section, input);
                    outcomes.push(EntityOutcome::new(
                        DetailedStatus::error(
                            mapping.action,
                            format!(
                                "{}: setKeys updates at most one existing key per request; send it in its own request",
                                section.describe(input)
                            ),
                        )
                        .with_source_identity(&section.identity(input)),
                        None,
                    ));
                    continue;
                }
            }
            let outcome = self.set_one::<PrivateKey>(section, &properties, input, context);
            self.spread_purposes(input, &outcome)?;
            outcomes.push(outcome);
        }
        Ok(crate::layer7::graphman::status::plural_payload(
            PrivateKey::SECTION,
            outcomes,
        ))
    }

    /// After a key was saved with `usageTypes`, no other key keeps those purposes.
    fn spread_purposes(
        &mut self,
        input: &Value,
        outcome: &EntityOutcome,
    ) -> Result<(), FieldError> {
        let created_or_updated = matches!(
            outcome.detailed.status,
            EntityMutationStatus::Created | EntityMutationStatus::Updated
        );
        let Some(id) = key_id(input).filter(|_| created_or_updated) else {
            return Ok(());
        };
        let purposes = self
            .store
            .get::<PrivateKey>(&id)
            .map(|key| key.entity.special_purposes.clone())
            .unwrap_or_default();
        if !purposes.is_empty() {
            self.store
                .set_special_purposes(&id, &purposes)
                .map_err(|error| FieldError::Failed(error.to_string()))?;
        }
        Ok(())
    }
}
