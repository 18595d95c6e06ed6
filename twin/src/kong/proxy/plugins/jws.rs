//! JSON Web Signatures for the jwt plugin (`kong/plugins/jwt/jwt_parser.lua`): the
//! token's three parts, and signature checks with `ring` (HMAC, RSA PKCS#1 and PSS,
//! ECDSA P-256/P-384, Ed25519) against a secret or a PEM public key.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::{hmac, signature};
use serde_json::{Map, Value};

/// Signature algorithms the jwt plugin knows (a token naming another is `invalid alg`).
const ALGORITHMS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// base64url, padding optional (Kong pads before decoding) and, as nginx's decoder,
/// ignoring non-zero bits after the last byte (a tampered last character still decodes).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A decoded token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    /// The header object (`alg`, `typ`, ...).
    pub(crate) header: Map<String, Value>,
    /// The claims object.
    pub(crate) claims: Map<String, Value>,
    /// `base64(header).base64(claims)`, the signed text.
    pub(crate) signing_input: String,
    /// The signature bytes.
    pub(crate) signature: Vec<u8>,
}

impl Token {
    /// The header's `alg` (checked at decoding to be a known algorithm).
    pub(crate) fn algorithm(&self) -> &str {
        self.header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// Why a token could not be decoded: Kong's `Bad token; <reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// A part is missing or is not base64url JSON.
    #[error("invalid JSON")]
    Json,
    /// `alg` is missing or unknown.
    #[error("invalid alg")]
    Algorithm,
}

/// Splits and decodes `token` (`header.claims.signature`; the signature part keeps any
/// further dots, as Kong's tokenizer does).
pub(crate) fn decode(token: &str) -> Result<Token, DecodeError> {
    let mut parts = token.splitn(3, '.');
    let (Some(header_64), Some(claims_64), Some(signature_64)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(DecodeError::Json);
    };
    let object = |part: &str| -> Result<Map<String, Value>, DecodeError> {
        let bytes = BASE64URL.decode(part).map_err(|_| DecodeError::Json)?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(object)) => Ok(object),
            _ => Err(DecodeError::Json),
        }
    };
    let header = object(header_64)?;
    let claims = object(claims_64)?;
    let signature = BASE64URL
        .decode(signature_64)
        .map_err(|_| DecodeError::Json)?;
    let known = header
        .get("alg")
        .and_then(Value::as_str)
        .is_some_and(|alg| ALGORITHMS.contains(&alg));
    if !known {
        return Err(DecodeError::Algorithm);
    }
    Ok(Token {
        header,
        claims,
        signing_input: format!("{header_64}.{claims_64}"),
        signature,
    })
}

/// A public key that cannot be used (Kong fails the request with a 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    /// Not a PEM public key of the algorithm's type.
    #[error("the credential's public key is not a usable PEM public key")]
    Unusable,
    /// An algorithm the twin cannot verify.
    #[error("the twin cannot verify {0} signatures")]
    Unsupported(String),
}

/// Whether `token`'s signature verifies with `key` (an HMAC secret for `HS*`, a PEM
/// public key otherwise).
pub(crate) fn verify(token: &Token, key: &[u8]) -> Result<bool, KeyError> {
    let input = token.signing_input.as_bytes();
    let signature = token.signature.as_slice();
    let algorithm = token.algorithm();
    let hmac_of = |algorithm: hmac::Algorithm| {
        hmac::verify(&hmac::Key::new(algorithm, key), input, signature).is_ok()
    };
    let public: &dyn signature::VerificationAlgorithm = match algorithm {
        "HS256" => return Ok(hmac_of(hmac::HMAC_SHA256)),
        "HS384" => return Ok(hmac_of(hmac::HMAC_SHA384)),
        "HS512" => return Ok(hmac_of(hmac::HMAC_SHA512)),
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
        "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
        "ES256" => &signature::ECDSA_P256_SHA256_FIXED,
        "ES384" => &signature::ECDSA_P384_SHA384_FIXED,
        "EdDSA" => &signature::ED25519,
        other => return Err(KeyError::Unsupported(other.to_owned())),
    };
    let key = public_key(key).ok_or(KeyError::Unusable)?;
    Ok(signature::UnparsedPublicKey::new(public, key)
        .verify(input, signature)
        .is_ok())
}

/// The key bytes `ring` verifies with, from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo:
/// its subject key bits) or `RSA PUBLIC KEY` (PKCS#1 as is).
fn public_key(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    let body_start = &rest[label_end + "-----".len()..];
    let body = &body_start[..body_start.find("-----END ")?];
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    match label {
        "RSA PUBLIC KEY" => Some(der),
        "PUBLIC KEY" => {
            use x509_parser::prelude::FromDer;
            let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&der).ok()?;
            Some(info.subject_public_key.data.to_vec())
        }
        _ => None,
    }
}

/// Test helpers: signing tokens as a client would.
#[cfg(test)]
pub(crate) mod signing {
    use super::*;

    /// base64url without padding.
    pub(crate) fn encode(bytes: &[u8]) -> String {
        BASE64URL.encode(bytes)
    }

    /// An HS256/384/512 token over `header` and `claims` with `secret`.
    pub(crate) fn hmac_token(alg: &str, claims: &Value, secret: &[u8]) -> String {
        let algorithm = match alg {
            "HS384" => hmac::HMAC_SHA384,
            "HS512" => hmac::HMAC_SHA512,
            _ => hmac::HMAC_SHA256,
        };
        let input = format!(
            "{}.{}",
            encode(
                serde_json::json!({"alg": alg, "typ": "JWT"})
                    .to_string()
                    .as_bytes()
            ),
            encode(claims.to_string().as_bytes())
        );
        let tag = hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes());
        format!("{input}.{}", encode(tag.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    use super::signing::{encode, hmac_token};
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn tokens_decode_into_header_claims_and_signature() -> TestResult {
        let token = hmac_token("HS256", &json!({"iss": "k"}), b"s");
        let decoded = decode(&token)?;
        assert_eq!(decoded.algorithm(), "HS256");
        assert_eq!(decoded.claims.get("iss"), Some(&json!("k")));
        assert_eq!(decoded.signature.len(), 32);
        // A changed last character still decodes (the signature then fails to verify).
        let mut tampered = token.clone();
        tampered.replace_range(tampered.len() - 2.., "xx");
        assert_eq!(decode(&tampered).map(|token| token.signature.len()), Ok(32));
        assert_eq!(decode("a.b"), Err(DecodeError::Json));
        assert_eq!(decode("not-base64!.x.y"), Err(DecodeError::Json));
        let array_claims = format!("{}.{}.", encode(b"{\"alg\":\"HS256\"}"), encode(b"[1]"));
        assert_eq!(decode(&array_claims), Err(DecodeError::Json));
        let none = format!("{}.{}.", encode(b"{\"alg\":\"none\"}"), encode(b"{}"));
        assert_eq!(decode(&none), Err(DecodeError::Algorithm));
        Ok(())
    }

    #[test]
    fn hmac_signatures_verify_only_with_their_secret() -> TestResult {
        for alg in ["HS256", "HS384", "HS512"] {
            let token = decode(&hmac_token(alg, &json!({"iss": "k"}), b"secret"))?;
            assert_eq!(verify(&token, b"secret"), Ok(true), "{alg}");
            assert_eq!(verify(&token, b"other"), Ok(false), "{alg}");
        }
        Ok(())
    }

    #[test]
    fn es256_signatures_verify_with_the_pem_public_key() -> TestResult {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let rng = ring::rand::SystemRandom::new();
        let signer = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pair.serialize_der(),
            &rng,
        )
        .map_err(|error| error.to_string())?;
        let input = format!(
            "{}.{}",
            encode(b"{\"alg\":\"ES256\"}"),
            encode(b"{\"iss\":\"k\"}")
        );
        let signed = signer
            .sign(&rng, input.as_bytes())
            .map_err(|error| error.to_string())?;
        let token = decode(&format!("{input}.{}", encode(signed.as_ref())))?;
        let pem = pair.public_key_pem();
        assert_eq!(verify(&token, pem.as_bytes()), Ok(true));
        assert!(!signer.public_key().as_ref().is_empty());
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        assert_eq!(verify(&token, other.public_key_pem().as_bytes()), Ok(false));
        assert_eq!(verify(&token, b"not a key"), Err(KeyError::Unusable));
        Ok(())
    }

    /// A 2048-bit RSA public key (the private half was discarded after signing
    /// [`RS256_TOKEN`] with `openssl dgst -sha256 -sign`).
    const RSA_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAp9WR0z4xe86nXKb8PkWH\nJEBNwsIVCbnO5sTxsGUGpDQYE3REVrTxu+EerzrcAD865p32u5dW8Ei6MjeTTNPF\nEaoviZvOqrlykyTvOBXKeKJ8wLB383v8aGQE1h/z5hS3UbDMWMXIIGrFdxu1WVAg\nU8xh9yjVNPHIG60tpVqJovX6ZtEmt2DlziGFKb7I8cq/oJvYbnSmyymJWM9Mzgy/\n1gK3vV7NiIT7S9aMRFj0UCR/EWeCacl4bMoPQEVuKWLHDYqq2mxfpJFCM7S6HNcT\npWg8UNp8hSFnfybBhXGs7IQaHQf3U/tBBmOyaLun9WUD0CMohFKW7doxWBgmG4j/\ncwIDAQAB\n-----END PUBLIC KEY-----\n";

    /// The same key in PKCS#1 form (`openssl rsa -RSAPublicKey_out`).
    const RSA_PUBLIC_KEY_PKCS1: &str = "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEAp9WR0z4xe86nXKb8PkWHJEBNwsIVCbnO5sTxsGUGpDQYE3REVrTx\nu+EerzrcAD865p32u5dW8Ei6MjeTTNPFEaoviZvOqrlykyTvOBXKeKJ8wLB383v8\naGQE1h/z5hS3UbDMWMXIIGrFdxu1WVAgU8xh9yjVNPHIG60tpVqJovX6ZtEmt2Dl\nziGFKb7I8cq/oJvYbnSmyymJWM9Mzgy/1gK3vV7NiIT7S9aMRFj0UCR/EWeCacl4\nbMoPQEVuKWLHDYqq2mxfpJFCM7S6HNcTpWg8UNp8hSFnfybBhXGs7IQaHQf3U/tB\nBmOyaLun9WUD0CMohFKW7doxWBgmG4j/cwIDAQAB\n-----END RSA PUBLIC KEY-----\n";

    /// `{"alg":"RS256","typ":"JWT"}.{"iss":"rsa-key"}` signed with that key.
    const RS256_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJyc2Eta2V5In0.Q8OqsN9tqPaoAdRpjWw_T5xEGz5kNbJm2-G_c15fTCZ9jG6w7E-BT4yyW7sDp5B-GmGQc6WcNtNfMy4EBsc3K1Rjvbgziv7UYWZr5R4TyadPXjnOgqfWgpVrAWIzlAS6XRXj3PJtkVZWQSDqAiX-yYp40QXQETcky_T4HQUwCQurAv9WgXnnagLfswVUWbK4BHOp302SmF7mocEP2J-mJqXMcvyLnpxShvsjTmD-UKt3Zr3qL5mSVzqE3Y7qlI5gtMrm3hHyBDMBEIFggHgYnPMryNyz5kXN0ez2BCoBXvgZs74hlWP6_v5sbo4fZcw87PLmH4P__JngPshR7aweug";

    #[test]
    fn rs256_signatures_verify_with_either_pem_form() -> TestResult {
        let token = decode(RS256_TOKEN)?;
        assert_eq!(verify(&token, RSA_PUBLIC_KEY.as_bytes()), Ok(true));
        assert_eq!(verify(&token, RSA_PUBLIC_KEY_PKCS1.as_bytes()), Ok(true));
        let mut forged = token.clone();
        forged.signing_input.push('x');
        assert_eq!(verify(&forged, RSA_PUBLIC_KEY.as_bytes()), Ok(false));
        Ok(())
    }
}
