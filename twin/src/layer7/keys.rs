//! Key and certificate material: self-signed keys generated with rcgen (the default `ssl`
//! key, `PrivateKeyCreationContext`), certificate facts read with x509-parser, the SHA-1
//! thumbprint, and the reversible stand-in cipher that protects key data in bundles.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, SanType,
    SerialNumber,
};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// Why key material could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Generation failed.
    #[error("cannot generate the key: {0}")]
    Generate(String),
    /// A certificate does not parse.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// Encrypted key data does not decrypt with the passphrase given.
    #[error("the key data cannot be decrypted with the passphrase given")]
    Decrypt,
}

/// What a self-signed key is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest {
    /// Subject DN, e.g. `CN=gateway.example.com` (`CN=`, `O=`, `OU=`, `C=` understood).
    pub dn: String,
    /// Named curve (`secp256r1`, `secp384r1`); RSA requests get P-256 (rcgen with ring
    /// cannot make RSA keys).
    pub curve: Option<String>,
    /// Days the certificate is valid.
    pub days: u32,
    /// A CA certificate.
    pub ca: bool,
}

/// A generated key: certificate chain (DER) and PKCS#8 PEM key.
#[derive(Clone, PartialEq, Eq)]
pub struct Generated {
    /// The self-signed certificate, DER.
    pub chain: Vec<Vec<u8>>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// `EC`.
    pub algorithm: String,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Generated")
            .field("chain", &self.chain.len())
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Generates an ECDSA key and a self-signed certificate for `request`.
pub fn self_signed(request: &KeyRequest) -> Result<Generated, KeyError> {
    let algorithm = match request.curve.as_deref() {
        Some("secp384r1" | "P-384" | "p384") => &rcgen::PKCS_ECDSA_P384_SHA384,
        _ => &rcgen::PKCS_ECDSA_P256_SHA256,
    };
    let generate = |error: rcgen::Error| KeyError::Generate(error.to_string());
    let key_pair = KeyPair::generate_for(algorithm).map_err(generate)?;
    let common_name = dn_part(&request.dn, "CN").unwrap_or_else(|| "localhost".to_owned());
    let mut params = CertificateParams::new(vec![common_name.clone()]).map_err(generate)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    for (key, kind) in [
        ("O", DnType::OrganizationName),
        ("OU", DnType::OrganizationalUnitName),
        ("C", DnType::CountryName),
    ] {
        if let Some(value) = dn_part(&request.dn, key) {
            name.push(kind, value);
        }
    }
    params.distinguished_name = name;
    if params
        .subject_alt_names
        .iter()
        .any(|name| matches!(name, SanType::DnsName(dns) if dns.as_str() == "localhost"))
    {
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    }
    let now = jiff::Timestamp::now();
    let start = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let end = start
        .checked_add(jiff::Span::new().days(i64::from(request.days.max(1))))
        .map_err(|error| KeyError::Generate(error.to_string()))?;
    let (year, month, day) = ymd(start.yesterday().unwrap_or(start));
    params.not_before = rcgen::date_time_ymd(year, month, day);
    let (year, month, day) = ymd(end);
    params.not_after = rcgen::date_time_ymd(year, month, day);
    let serial = u64::try_from(now.as_nanosecond().unsigned_abs() & u128::from(u64::MAX))
        .unwrap_or(1)
        .max(1);
    params.serial_number = Some(SerialNumber::from(serial));
    if request.ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let certificate = params.self_signed(&key_pair).map_err(generate)?;
    Ok(Generated {
        chain: vec![certificate.der().to_vec()],
        key_pem: key_pair.serialize_pem(),
        algorithm: "EC".to_owned(),
    })
}

/// A date's year, month and day, as rcgen wants them.
fn ymd(date: jiff::civil::Date) -> (i32, u8, u8) {
    (
        i32::from(date.year()),
        u8::try_from(date.month()).unwrap_or(1),
        u8::try_from(date.day()).unwrap_or(1),
    )
}

/// The value of `key` (`CN`, `O`, ...) in a comma-separated DN.
fn dn_part(dn: &str, key: &str) -> Option<String> {
    dn.split(',').find_map(|part| {
        let (name, value) = part.split_once('=')?;
        (name.trim().eq_ignore_ascii_case(key) && !value.trim().is_empty())
            .then(|| value.trim().to_owned())
    })
}

/// What restman shows of a certificate: issuer, serial (decimal) and subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// Issuer DN.
    pub issuer: String,
    /// Serial number, decimal.
    pub serial: String,
    /// Subject DN.
    pub subject: String,
    /// Not after, seconds since the Unix epoch.
    pub not_after: i64,
}

/// The facts of a DER certificate.
pub fn facts(der: &[u8]) -> Result<CertificateFacts, KeyError> {
    let (_, certificate) =
        X509Certificate::from_der(der).map_err(|error| KeyError::Certificate(error.to_string()))?;
    Ok(CertificateFacts {
        issuer: certificate.issuer().to_string(),
        serial: certificate.serial.to_string(),
        subject: certificate.subject().to_string(),
        not_after: certificate.validity().not_after.timestamp(),
    })
}

/// The SHA-1 of `der`, base64 (Layer7's `thumbprintSha1`).
pub fn thumbprint_sha1(der: &[u8]) -> String {
    STANDARD.encode(sha1_smol::Sha1::from(der).digest().bytes())
}

/// A DER certificate as PEM.
pub fn certificate_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Key data encrypted for a bundle: the ciphertext and its salt, both base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The ciphertext, base64.
    pub data: String,
    /// The salt (`bundleKey`), base64.
    pub salt: String,
}

/// Encrypts `secret` under `passphrase` with the twin's stand-in cipher (a SHA-256 key
/// stream over a random salt: reversible with the passphrase, not real cryptography).
pub fn seal(secret: &str, passphrase: &str) -> Sealed {
    let salt = uuid::Uuid::new_v4().as_bytes().to_vec();
    let data = keystream_xor(format!("{MAGIC}{secret}").as_bytes(), &salt, passphrase);
    Sealed {
        data: STANDARD.encode(data),
        salt: STANDARD.encode(salt),
    }
}

/// Decrypts what [`seal`] made; an error when the passphrase is not the one used.
pub fn open(sealed: &Sealed, passphrase: &str) -> Result<String, KeyError> {
    let data = STANDARD
        .decode(sealed.data.trim())
        .map_err(|_| KeyError::Decrypt)?;
    let salt = STANDARD
        .decode(sealed.salt.trim())
        .map_err(|_| KeyError::Decrypt)?;
    let plain = String::from_utf8(keystream_xor(&data, &salt, passphrase))
        .map_err(|_| KeyError::Decrypt)?;
    plain
        .strip_prefix(MAGIC)
        .map(str::to_owned)
        .ok_or(KeyError::Decrypt)
}

/// What every sealed secret starts with, so that a wrong passphrase is detected.
const MAGIC: &str = "runsheet-twin:";

/// `data` XOR SHA-256(salt ‖ passphrase ‖ block counter) blocks.
fn keystream_xor(data: &[u8], salt: &[u8], passphrase: &str) -> Vec<u8> {
    data.chunks(32)
        .zip(0_u64..)
        .flat_map(|(chunk, counter)| {
            let mut hasher = Sha256::new();
            hasher.update(salt);
            hasher.update(passphrase.as_bytes());
            hasher.update(counter.to_be_bytes());
            let block = hasher.finalize();
            chunk
                .iter()
                .zip(block)
                .map(|(byte, key)| byte ^ key)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_self_signed_for_its_dn() -> Result<(), KeyError> {
        let key = self_signed(&KeyRequest {
            dn: "CN=gw.example.com, O=Example".to_owned(),
            curve: None,
            days: 30,
            ca: false,
        })?;
        let facts = facts(&key.chain[0])?;
        assert!(facts.subject.contains("CN=gw.example.com"), "{facts:?}");
        assert_eq!(facts.subject, facts.issuer);
        assert!(key.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let days_left = (facts.not_after - jiff::Timestamp::now().as_second()) / 86_400;
        assert!((29..=31).contains(&days_left), "{days_left}");
        assert_eq!(thumbprint_sha1(&key.chain[0]).len(), 28);
        Ok(())
    }

    #[test]
    fn sealed_key_data_opens_only_with_its_passphrase() -> Result<(), KeyError> {
        let secret = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n";
        let sealed = seal(secret, "7layer");
        assert!(!sealed.data.contains("abc"));
        assert_eq!(open(&sealed, "7layer")?, secret);
        assert_eq!(open(&sealed, "wrong"), Err(KeyError::Decrypt));
        Ok(())
    }
}
