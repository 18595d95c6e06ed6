//! PEM certificates and keys as Kong checks them (reference §7.9, §7.11), and the
//! rustls keys the TLS listeners present.

use std::sync::Arc;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{Error as TlsError, InconsistentKeys};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// The PEM header Kong counts to refuse bundles of CA certificates.
const CERTIFICATE_TAG: &str = "-----BEGIN CERTIFICATE-----";

/// Every certificate of a PEM text, in order; an error names what is wrong.
pub(crate) fn certificate_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("PEM: {error}"))?;
    if chain.is_empty() {
        return Err("PEM: no certificate found".to_owned());
    }
    for certificate in &chain {
        X509Certificate::from_der(certificate).map_err(|error| format!("x509: {error}"))?;
    }
    Ok(chain)
}

/// The first certificate of a PEM text.
fn first_certificate(pem: &str) -> Result<CertificateDer<'static>, String> {
    certificate_chain(pem).and_then(|chain| {
        chain
            .into_iter()
            .next()
            .ok_or_else(|| "PEM: no certificate found".to_owned())
    })
}

/// The private key of a PEM text (PKCS#8, PKCS#1 or SEC1), if the TLS stack can sign with it.
pub(crate) fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    let key =
        PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|error| format!("PEM: {error}"))?;
    any_supported_type(&key).map_err(|error| format!("unsupported key: {error}"))?;
    Ok(key)
}

/// `invalid certificate: ...` when `pem` holds no parsable certificate.
pub(crate) fn certificate_error(pem: &str) -> Option<String> {
    certificate_chain(pem)
        .err()
        .map(|reason| format!("invalid certificate: {reason}"))
}

/// `invalid key: ...` when `pem` holds no usable private key.
pub(crate) fn key_error(pem: &str) -> Option<String> {
    private_key(pem)
        .err()
        .map(|reason| format!("invalid key: {reason}"))
}

/// The TLS key pair of a certificate chain and key, when both parse and match.
pub(crate) fn certified_key(cert_pem: &str, key_pem: &str) -> Option<Arc<CertifiedKey>> {
    let chain = certificate_chain(cert_pem).ok()?;
    let key = private_key(key_pem).ok()?;
    let signing_key = any_supported_type(&key).ok()?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(TlsError::InconsistentKeys(InconsistentKeys::Unknown)) => {
            Some(Arc::new(certified))
        }
        Err(_) => None,
    }
}

/// Whether the key's public half is the certificate's (unparsable inputs count as matching:
/// their field errors are reported instead).
pub(crate) fn keys_match(cert_pem: &str, key_pem: &str) -> bool {
    let (Ok(chain), Ok(key)) = (certificate_chain(cert_pem), private_key(key_pem)) else {
        return true;
    };
    let Ok(signing_key) = any_supported_type(&key) else {
        return true;
    };
    !matches!(
        CertifiedKey::new(chain, signing_key).keys_match(),
        Err(TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch))
    )
}

/// The public-key algorithm OID of the certificate (RSA, EC, Ed25519...).
pub(crate) fn key_type(cert_pem: &str) -> Option<String> {
    let der = first_certificate(cert_pem).ok()?;
    let (_, certificate) = X509Certificate::from_der(&der).ok()?;
    Some(certificate.public_key().algorithm.algorithm.to_id_string())
}

/// Lowercase hex SHA-256 of the first certificate's DER (`cert_digest`).
pub(crate) fn sha256_hex(cert_pem: &str) -> Option<String> {
    let der = first_certificate(cert_pem).ok()?;
    let digest = Sha256::digest(der.as_ref());
    Some(digest.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Why a PEM is not acceptable as a CA certificate at Unix time `now`, as Kong words it.
pub(crate) fn ca_certificate_problem(cert_pem: &str, now: i64) -> Option<&'static str> {
    if cert_pem.matches(CERTIFICATE_TAG).count() > 1 {
        return Some("please submit only one certificate at a time");
    }
    let der = first_certificate(cert_pem).ok()?;
    let (_, certificate) = X509Certificate::from_der(&der).ok()?;
    if certificate.validity().not_after.timestamp() < now {
        return Some("certificate expired, \"Not After\" time is in the past");
    }
    let is_ca =
        matches!(certificate.basic_constraints(), Ok(Some(constraints)) if constraints.value.ca);
    (!is_ca).then_some(
        "certificate does not appear to be a CA because it is missing the \"CA\" basic constraint",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unparsable_inputs_say_what_is_wrong() {
        assert_eq!(
            certificate_error("nope").as_deref(),
            Some("invalid certificate: PEM: no certificate found")
        );
        let truncated = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = certificate_error(truncated).unwrap_or_default();
        assert!(error.starts_with("invalid certificate: x509: "), "{error}");
        let error = key_error("nope").unwrap_or_default();
        assert!(error.starts_with("invalid key: PEM: "), "{error}");
    }
}
