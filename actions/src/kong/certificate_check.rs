//! What `kong.cert_rotate` checks of a new certificate before it writes anything
//! ([`NewCertificate`]): the PEM certificate and key parse, the key is the
//! certificate's, the certificate is valid now (started, not expired), and its DNS
//! names cover the SNIs ([`covers`]: `*.example.com` covers one label under
//! `example.com`).

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{Error as TlsError, InconsistentKeys};
use sha2::{Digest, Sha256};

use super::rotation::rfc3339;

/// A new certificate that passed the checks: what the rotation writes and compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCertificate {
    /// The leaf certificate's DER bytes (what the proxy must present).
    pub leaf: Vec<u8>,
    /// The leaf's subject, as text.
    pub subject: String,
    /// The leaf's common name, when it has one.
    pub common_name: Option<String>,
    /// The leaf's DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// The leaf's expiry, Unix seconds.
    pub not_after: i64,
}

impl NewCertificate {
    /// Checks a PEM certificate chain (leaf first) and its PEM private key at Unix time
    /// `now`; the error says what is wrong (never quoting the key).
    pub fn check(cert_pem: &str, key_pem: &str, now: i64) -> Result<Self, String> {
        let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|error| format!("`cert` is not a readable PEM certificate: {error}"))?;
        let Some(leaf) = chain.first() else {
            return Err("`cert` holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
        };
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|error| format!("`cert`: the first certificate cannot be read: {error}"))?;
        let key = read_key(key_pem)?;
        let signing_key = any_supported_type(&key)
            .map_err(|error| format!("`key`: unsupported private key: {error}"))?;
        // `InconsistentKeys::Unknown` (the key type cannot tell) passes: the handshake
        // check after the move proves the pair.
        if let Err(TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) =
            CertifiedKey::new(chain.clone(), signing_key).keys_match()
        {
            return Err(
                "`key` does not match `cert`: its public key is not the certificate's".to_owned(),
            );
        }
        let dns_names = crate::served_certificate::dns_names(&parsed);
        let common_name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|name| name.as_str().ok())
            .map(str::to_owned);
        let not_before = parsed.validity().not_before.timestamp();
        if not_before > now {
            return Err(format!(
                "the new certificate is not valid before {} (clients would refuse it until then)",
                rfc3339(not_before)
            ));
        }
        let not_after = parsed.validity().not_after.timestamp();
        if not_after <= now {
            return Err(format!(
                "the new certificate expired at {}",
                rfc3339(not_after)
            ));
        }
        Ok(Self {
            leaf: leaf.to_vec(),
            subject: parsed.subject().to_string(),
            common_name,
            dns_names,
            not_after,
        })
    }

    /// The SNIs its DNS names do not cover, in the order given.
    pub fn uncovered<'a>(&self, snis: &'a [String]) -> Vec<&'a str> {
        snis.iter()
            .map(String::as_str)
            .filter(|sni| !self.dns_names.iter().any(|name| covers(name, sni)))
            .collect()
    }

    /// The certificate in words: `CN=api.example.com, expires 2026-01-01T00:00:00Z`.
    pub fn describe(&self) -> String {
        let name = match &self.common_name {
            Some(name) => format!("CN={name}"),
            None => self.subject.clone(),
        };
        format!("{name}, expires {}", rfc3339(self.not_after))
    }

    /// SHA-256 of the leaf, lowercase hex.
    pub fn fingerprint(&self) -> String {
        sha256_hex(&self.leaf)
    }
}

/// The private key of a PEM text; the error never quotes it.
fn read_key(key_pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    match rustls_pemfile::private_key(&mut key_pem.as_bytes()) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(
            "`key` holds no PEM private key (PKCS#8, PKCS#1 or SEC1 -----BEGIN ... PRIVATE KEY-----)"
                .to_owned(),
        ),
        Err(error) => Err(format!("`key` is not a readable PEM private key: {error}")),
    }
}

/// The first certificate of a PEM text, as DER; `None` when there is none.
pub fn leaf_der(pem: &str) -> Option<Vec<u8>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|der| der.to_vec())
}

/// The expiry (Unix seconds) of the first certificate of a PEM text; `None` when it
/// cannot be read.
pub fn not_after(pem: &str) -> Option<i64> {
    let leaf = leaf_der(pem)?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// SHA-256 of DER bytes, lowercase hex.
pub fn sha256_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether a certificate's DNS name covers an SNI: the same name, or a wildcard
/// `*.example.com` for one label under `example.com` (`a.example.com`, not
/// `a.b.example.com` nor `example.com`). A wildcard SNI is covered only by the same wildcard.
pub fn covers(name: &str, sni: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let sni = sni.trim_end_matches('.').to_ascii_lowercase();
    if name == sni {
        return true;
    }
    let Some(parent) = name.strip_prefix("*.") else {
        return false;
    };
    match sni.split_once('.') {
        Some((label, rest)) => {
            !label.is_empty() && !label.contains('*') && rest == parent && !parent.is_empty()
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;

    /// A time inside the default validity of rcgen's certificates (1975 to 4096): 2025-06-15.
    const NOW: i64 = 1_750_000_000;

    /// A self-signed certificate for `names` and its key, as PEM.
    fn pair(names: &[&str]) -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("x"));
        let cert = params.self_signed(&key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("a.example.com", "A.example.com"));
        assert!(covers("*.example.com", "a.example.com"));
        assert!(covers("*.example.com", "*.example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("a.example.com", "*.example.com"));
        assert!(!covers("*.example.com", "a.example.org"));
        assert!(!covers("b.example.com", "a.example.com"));
    }

    #[test]
    fn a_matching_pair_passes_and_names_what_it_covers() -> Result<(), Box<dyn std::error::Error>> {
        let (cert, key) = pair(&["api.example.com", "*.shop.example.com"])?;
        let checked = NewCertificate::check(&cert, &key, NOW)?;
        assert_eq!(checked.common_name.as_deref(), Some("api.example.com"));
        let snis = vec![
            "api.example.com".to_owned(),
            "eu.shop.example.com".to_owned(),
            "other.example.com".to_owned(),
        ];
        assert_eq!(checked.uncovered(&snis), vec!["other.example.com"]);
        assert_eq!(leaf_der(&cert), Some(checked.leaf.clone()));
        assert!(
            checked
                .describe()
                .starts_with("CN=api.example.com, expires ")
        );
        Ok(())
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_without_quoting_it()
    -> Result<(), Box<dyn std::error::Error>> {
        let (cert, _) = pair(&["api.example.com"])?;
        let (_, other_key) = pair(&["api.example.com"])?;
        let error = NewCertificate::check(&cert, &other_key, NOW)
            .err()
            .ok_or("a mismatched key passed")?;
        assert!(error.contains("does not match"), "{error}");
        assert!(!error.contains("PRIVATE KEY-----\n"), "{error}");
        assert!(NewCertificate::check("not pem", &other_key, NOW).is_err());
        assert!(NewCertificate::check(&cert, "not pem", NOW).is_err());
        Ok(())
    }

    #[test]
    fn a_certificate_not_valid_yet_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["api.example.com".to_owned()])?;
        params.not_before = rcgen::date_time_ymd(2999, 1, 1);
        params.not_after = rcgen::date_time_ymd(3000, 1, 1);
        let cert = params.self_signed(&key)?.pem();
        let error = NewCertificate::check(&cert, &key.serialize_pem(), NOW)
            .err()
            .ok_or("a certificate valid only from 2999 passed")?;
        assert!(error.contains("not valid before 2999-01-01"), "{error}");
        Ok(())
    }

    #[test]
    fn an_expired_certificate_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let (cert, key) = pair(&["api.example.com"])?;
        let error = NewCertificate::check(&cert, &key, i64::MAX)
            .err()
            .ok_or("an expired certificate passed")?;
        assert!(error.contains("expired"), "{error}");
        Ok(())
    }
}
