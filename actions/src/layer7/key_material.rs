//! The certificate material `layer7.key_rotate` works with: a key's leaf certificate
//! ([`KeyCertificate`]: subject, validity, SHA-256 thumbprint, PEM), read from restman's
//! base64 DER, and the check of a `pem` argument ([`check_pem`]): one private key and
//! the certificate chain that belongs to it, valid now. No message quotes the key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{Error as TlsError, InconsistentKeys};
use rustls_pemfile::Item;

use super::restman::PrivateKey;
use crate::kong::certificate_check::sha256_hex;
use crate::kong::rotation::rfc3339;

/// A key's leaf certificate, as the rotation compares and reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCertificate {
    /// The DER bytes (what a listen port must present).
    pub der: Vec<u8>,
    /// The subject, as text (`CN=gw.example.com`).
    pub subject: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// The DNS names of its subject alternative names (what TLS clients verify).
    pub dns_names: Vec<String>,
}

impl KeyCertificate {
    /// Reads a DER certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Self, String> {
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&der).map_err(|error| error.to_string())?;
        let subject = parsed.subject().to_string();
        let not_before = parsed.validity().not_before.timestamp();
        let not_after = parsed.validity().not_after.timestamp();
        let dns_names = crate::served_certificate::dns_names(&parsed);
        Ok(Self {
            der,
            subject,
            not_before,
            not_after,
            dns_names,
        })
    }

    /// The first certificate of a restman `l7:PrivateKey`'s chain.
    pub fn of_key(key: &PrivateKey) -> Result<Self, String> {
        let first = key
            .certificate_chain
            .certificates
            .first()
            .ok_or_else(|| format!("private key `{}` has no certificate chain", key.alias))?;
        let compact: String = first.encoded.split_whitespace().collect();
        let der = STANDARD.decode(compact).map_err(|error| {
            format!(
                "private key `{}`: l7:Encoded is not base64: {error}",
                key.alias
            )
        })?;
        Self::from_der(der)
            .map_err(|error| format!("private key `{}`: its certificate: {error}", key.alias))
    }

    /// SHA-256 of the DER, lowercase hex (what `tls.inspect` and the outputs show).
    pub fn thumbprint(&self) -> String {
        sha256_hex(&self.der)
    }

    /// The expiry, RFC 3339.
    pub fn not_after_text(&self) -> String {
        rfc3339(self.not_after)
    }

    /// The certificate as PEM (public: a playbook may trust it).
    pub fn pem(&self) -> String {
        let encoded = STANDARD.encode(&self.der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// In words: `CN=gw.example.com, expires 2031-01-01T00:00:00Z, sha256 ab12…`.
    pub fn describe(&self) -> String {
        let thumbprint = self.thumbprint();
        format!(
            "{}, expires {}, sha256 {}…",
            self.subject,
            self.not_after_text(),
            thumbprint.get(..16).unwrap_or(&thumbprint)
        )
    }
}

/// A `pem` argument that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPem {
    /// The first certificate: the one the key belongs to.
    pub leaf: KeyCertificate,
    /// Certificates in the chain, leaf included.
    pub chain_length: usize,
}

/// Checks a `pem` argument at Unix time `now`: readable PEM holding exactly one private
/// key (PKCS#8, PKCS#1 or SEC1) and at least one certificate, the first certificate is
/// the key's, every certificate parses, and the first is valid now. The error says what
/// is wrong and never quotes the PEM.
pub fn check_pem(pem: &str, now: i64) -> Result<CheckedPem, String> {
    let mut keys: Vec<PrivateKeyDer<'static>> = Vec::new();
    let mut chain: Vec<CertificateDer<'static>> = Vec::new();
    for item in rustls_pemfile::read_all(&mut pem.as_bytes()) {
        match item.map_err(|error| format!("`pem` is not readable PEM: {error}"))? {
            Item::X509Certificate(der) => chain.push(der),
            Item::Pkcs1Key(key) => keys.push(key.into()),
            Item::Pkcs8Key(key) => keys.push(key.into()),
            Item::Sec1Key(key) => keys.push(key.into()),
            _ => {}
        }
    }
    let key = match keys.len() {
        0 => {
            return Err("`pem` holds no private key (expected -----BEGIN ... PRIVATE KEY----- then the certificate chain)".to_owned());
        }
        1 => keys.remove(0),
        count => {
            return Err(format!(
                "`pem` holds {count} private keys; it takes one key and its certificate chain"
            ));
        }
    };
    let Some(first) = chain.first() else {
        return Err("`pem` holds no certificate (expected the private key, then its certificate chain, -----BEGIN CERTIFICATE-----)".to_owned());
    };
    for (position, certificate) in chain.iter().enumerate() {
        x509_parser::parse_x509_certificate(certificate).map_err(|error| {
            format!(
                "`pem`: certificate {} of the chain cannot be read: {error}",
                position + 1
            )
        })?;
    }
    let signing = any_supported_type(&key).map_err(|_| {
        "`pem`: the private key is of a type the TLS stack does not support (RSA, ECDSA P-256/P-384 and Ed25519 are)".to_owned()
    })?;
    let matches = |certificate: &CertificateDer<'static>| {
        !matches!(
            CertifiedKey::new(vec![certificate.clone()], signing.clone()).keys_match(),
            Err(TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch))
        )
    };
    if !matches(first) {
        let hint = if chain.iter().skip(1).any(matches) {
            ": it belongs to a later certificate; put the key's own certificate first"
        } else {
            ": it belongs to none of its certificates"
        };
        return Err(format!(
            "`pem`: the private key does not match the first certificate{hint}"
        ));
    }
    let leaf = KeyCertificate::from_der(first.to_vec())
        .map_err(|error| format!("`pem`: the first certificate cannot be read: {error}"))?;
    if leaf.not_before > now {
        return Err(format!(
            "`pem`: the certificate ({}) is not valid before {}: clients would refuse it until then",
            leaf.subject,
            rfc3339(leaf.not_before)
        ));
    }
    if leaf.not_after <= now {
        return Err(format!(
            "`pem`: the certificate ({}) expired at {}",
            leaf.subject,
            leaf.not_after_text()
        ));
    }
    Ok(CheckedPem {
        leaf,
        chain_length: chain.len(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;

    /// 2025-06-15, inside rcgen's default validity (1975 to 4096).
    const NOW: i64 = 1_750_000_000;

    /// A self-signed certificate for `cn` and its key, as PEM: `(certificate, key)`.
    pub(crate) fn pair(cn: &str) -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![cn.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.self_signed(&key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// The `pem` argument of a new key for `cn`: the key, then its certificate.
    pub(crate) fn key_and_chain(cn: &str) -> Result<String, rcgen::Error> {
        let (cert, key) = pair(cn)?;
        Ok(format!("{key}{cert}"))
    }

    #[test]
    fn a_key_and_its_certificate_pass() -> Result<(), Box<dyn std::error::Error>> {
        let (cert, key) = pair("gw.example.com")?;
        let checked = check_pem(&format!("{key}{cert}"), NOW)?;
        assert_eq!(checked.leaf.subject, "CN=gw.example.com");
        assert_eq!(checked.chain_length, 1);
        assert_eq!(checked.leaf.dns_names, vec!["gw.example.com".to_owned()]);
        assert_eq!(checked.leaf.thumbprint().len(), 64);
        let again = rustls_pemfile::certs(&mut checked.leaf.pem().as_bytes())
            .next()
            .ok_or("no certificate in the PEM written")??;
        assert_eq!(again.to_vec(), checked.leaf.der);
        Ok(())
    }

    #[test]
    fn a_mismatched_key_or_a_missing_part_is_refused_without_quoting_the_key()
    -> Result<(), Box<dyn std::error::Error>> {
        let (cert, _) = pair("gw.example.com")?;
        let (other_cert, other_key) = pair("other.example.com")?;
        let error = check_pem(&format!("{other_key}{cert}"), NOW)
            .err()
            .ok_or("a mismatched key passed")?;
        assert!(error.contains("does not match"), "{error}");
        assert!(error.contains("none of its certificates"), "{error}");
        assert!(!error.contains("PRIVATE KEY-----"), "{error}");
        let error = check_pem(&format!("{other_key}{cert}{other_cert}"), NOW)
            .err()
            .ok_or("a key of the second certificate passed")?;
        assert!(
            error.contains("put the key's own certificate first"),
            "{error}"
        );
        let error = check_pem(&cert, NOW).err().ok_or("no key passed")?;
        assert!(error.contains("no private key"), "{error}");
        let error = check_pem(&other_key, NOW)
            .err()
            .ok_or("no certificate passed")?;
        assert!(error.contains("no certificate"), "{error}");
        assert!(!error.contains("MII"), "{error}");
        assert!(check_pem("not pem at all", NOW).is_err());
        Ok(())
    }

    #[test]
    fn an_expired_certificate_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let pem = key_and_chain("gw.example.com")?;
        let error = check_pem(&pem, i64::MAX).err().ok_or("expired passed")?;
        assert!(error.contains("expired"), "{error}");
        Ok(())
    }
}
