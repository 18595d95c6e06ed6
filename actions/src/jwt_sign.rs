//! Short-lived HS256 JWTs signed at request time, for the `http` action's `auth: {jwt:
//! ...}`: a smoke test holds a gateway credential's key and secret, never a long-lived
//! token. HMAC-SHA-256 (RFC 2104) over `sha2`; the token is built in memory and only
//! ever sent as a bearer token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use runsheet_engine::model::Duration;

/// SHA-256's block size in bytes, the HMAC key length.
const BLOCK: usize = 64;

/// A JWT signed with HS256 for each request.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtAuth {
    /// The credential's key, sent in claim `key_claim` (Kong's jwt plugin looks it up there).
    pub key: String,
    /// The credential's HS256 secret; use `secret()` so that it is masked.
    pub secret: String,
    /// The claim carrying the key (default `iss`, Kong's `key_claim_name`).
    #[serde(default = "issuer_claim")]
    pub key_claim: String,
    /// How long the token is valid: claim `exp` is now plus this (default 5m).
    #[serde(default = "five_minutes")]
    pub expires_in: Duration,
    /// Further claims (`aud`, `sub`, ...); `key_claim`, `iat` and `exp` are set by runsheet.
    #[serde(default)]
    pub claims: Map<String, Value>,
}

/// The default key claim, `iss`.
fn issuer_claim() -> String {
    "iss".to_owned()
}

/// The default lifetime, five minutes.
fn five_minutes() -> Duration {
    Duration(std::time::Duration::from_secs(300))
}

impl JwtAuth {
    /// The compact token for these settings, issued at `now` (seconds since 1970).
    pub fn token(&self, now: u64) -> String {
        let mut claims = self.claims.clone();
        claims.insert(self.key_claim.clone(), Value::from(self.key.as_str()));
        claims.insert("iat".to_owned(), Value::from(now));
        claims.insert(
            "exp".to_owned(),
            Value::from(now.saturating_add(self.expires_in.0.as_secs())),
        );
        sign_hs256(&Value::Object(claims), self.secret.as_bytes())
    }
}

/// `header.claims.signature` with header `{"alg":"HS256","typ":"JWT"}`.
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{claims}");
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, signed.as_bytes()));
    format!("{signed}.{signature}")
}

/// HMAC-SHA-256 of `message` under `key` (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Seconds since 1970 now (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2, and test case 6 (a key longer than the block).
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_token_is_what_openssl_makes_for_the_same_claims() {
        // The lab's documented smoke token (docs/twin-kong.md, openssl dgst -hmac).
        assert_eq!(
            sign_hs256(
                &json!({"iss": "lab-smoke-issuer", "exp": 4_102_444_800_u64}),
                b"lab-jwt-secret-7c1e9a42d85b3f60"
            ),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJsYWItc21va2UtaXNzdWVyIiwiZXhwIjo0MTAyNDQ0ODAwfQ.gbCLyayxtfWo39WJm4Jk6g_b7JYI5IPJx3vPyVmUYjw"
        );
    }

    #[test]
    fn settings_put_the_key_iat_and_exp_in_the_claims() -> Result<(), Box<dyn std::error::Error>> {
        let auth: JwtAuth = serde_json::from_value(json!({
            "key": "k1", "secret": "s", "expires_in": "2m", "claims": {"aud": "shop", "iss": "x"}
        }))?;
        let token = auth.token(1_000);
        let claims = token.split('.').nth(1).unwrap_or_default();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims)?)?;
        assert_eq!(
            claims,
            json!({"aud": "shop", "iss": "k1", "iat": 1_000, "exp": 1_120})
        );
        let other: JwtAuth = serde_json::from_value(json!({
            "key": "k1", "secret": "s", "key_claim": "kid"
        }))?;
        let claims = other.token(0);
        let claims = claims.split('.').nth(1).unwrap_or_default();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims)?)?;
        assert_eq!(claims, json!({"kid": "k1", "iat": 0, "exp": 300}));
        Ok(())
    }
}
