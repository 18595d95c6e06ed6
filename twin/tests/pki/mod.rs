//! Certificates made for the tests with rcgen: self-signed pairs, a CA and leaves it signs.
#![allow(dead_code, reason = "each test file uses a different subset")]
#![expect(
    clippy::unwrap_used,
    reason = "certificate generation with fixed valid parameters cannot fail"
)]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ED25519, date_time_ymd,
};

/// A PEM certificate and its PEM (PKCS#8) private key.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The certificate.
    pub cert: String,
    /// The private key.
    pub key: String,
}

impl Pair {
    /// The certificate's DER bytes.
    pub fn der(&self) -> Vec<u8> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(self.cert.as_bytes())
            .unwrap()
            .to_vec()
    }

    /// Key then certificate, as reqwest's `Identity::from_pem` wants.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.key, self.cert)
    }
}

/// Leaf parameters for `names` with a common name.
fn leaf_params(names: &[&str]) -> CertificateParams {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("twin test"),
    );
    params
}

/// A self-signed ECDSA P-256 certificate for `names`.
pub fn ecdsa(names: &[&str]) -> Pair {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(names).self_signed(&key).unwrap();
    Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// A self-signed Ed25519 certificate for `names` (a key type other than ECDSA).
pub fn ed25519(names: &[&str]) -> Pair {
    let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let cert = leaf_params(names).self_signed(&key).unwrap();
    Pair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// A certificate authority that can sign leaves.
pub struct Authority {
    /// The CA's own certificate and key.
    pub pair: Pair,
    /// The CA's parameters (its distinguished name signs leaves).
    params: CertificateParams,
    /// The CA's key.
    key: KeyPair,
}

impl Authority {
    /// A new self-signed CA (with the CA basic constraint), valid now.
    pub fn new(name: &str) -> Self {
        Self::with_validity(name, false)
    }

    /// A CA whose validity ended on 2001-01-01.
    pub fn expired(name: &str) -> Self {
        Self::with_validity(name, true)
    }

    /// A CA valid now, or one that expired in 2001.
    fn with_validity(name: &str, expired: bool) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        if expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            pair: Pair {
                cert: cert.pem(),
                key: key.serialize_pem(),
            },
            params,
            key,
        }
    }

    /// A leaf for `names`, signed by this CA.
    pub fn issue(&self, names: &[&str]) -> Pair {
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = leaf_params(names).signed_by(&key, &issuer).unwrap();
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}
