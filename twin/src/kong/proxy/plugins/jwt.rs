//! jwt (`kong/plugins/jwt/handler.lua`, priority 1450): a signed token from the query
//! (`uri_param_names`), cookies (`cookie_names`) or `Bearer` headers (`header_names`);
//! the consumer's jwt credential is the one whose `key` is the token's `key_claim_name`
//! claim (or header field). Failures answer 401 with Kong's body: `{"message": ...}`, or
//! for registered claims `{"exp": "token expired"}` and the like; from 3.8 with a
//! `WWW-Authenticate: Bearer` challenge.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use base64::Engine;
use regex::Regex;
use serde_json::{Map, Value, json};

use super::consumer::owner;
use super::jws::{self, Token};
use super::{Authenticated, Effects, Exit, PluginRequest, www_authenticate};
use crate::kong::credentials;
use crate::kong::proxy::reply::Flavor;
use crate::kong::store::{Entity, Store};

/// The jwt credentials collection.
const JWTS: &str = "jwts";

/// jwt's configuration with Kong's defaults.
#[derive(Debug, Clone, PartialEq)]
struct JwtConfig {
    /// Query arguments that may carry the token.
    uri_param_names: Vec<String>,
    /// Cookies that may carry the token.
    cookie_names: Vec<String>,
    /// Headers that may carry `Bearer <token>`.
    header_names: Vec<String>,
    /// The claim naming the credential's `key`.
    key_claim_name: String,
    /// HMAC secrets are stored base64-encoded.
    secret_is_base64: bool,
    /// Registered claims to check (`exp`, `nbf`).
    claims_to_verify: Vec<String>,
    /// Largest allowed `exp - now` (0: no limit).
    maximum_expiration: f64,
    /// `WWW-Authenticate` realm.
    realm: Option<String>,
}

impl JwtConfig {
    /// A jwt plugin's `config`, defaults filled.
    fn from_config(config: &Value) -> Self {
        let list = |name: &str, default: &[&str]| -> Vec<String> {
            config
                .get(name)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_else(|| default.iter().map(|item| (*item).to_owned()).collect())
        };
        let string = |name: &str| {
            config
                .get(name)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
        };
        Self {
            uri_param_names: list("uri_param_names", &["jwt"]),
            cookie_names: list("cookie_names", &[]),
            header_names: list("header_names", &["authorization"]),
            key_claim_name: string("key_claim_name").unwrap_or_else(|| "iss".to_owned()),
            secret_is_base64: config
                .get("secret_is_base64")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            claims_to_verify: list("claims_to_verify", &[]),
            maximum_expiration: config
                .get("maximum_expiration")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            realm: string("realm"),
        }
    }

    /// The challenge on a missing token (`None` before 3.8).
    fn challenge(&self, flavor: &Flavor) -> Option<String> {
        flavor.bearer_challenge().then(|| match &self.realm {
            Some(realm) => format!("Bearer realm=\"{realm}\""),
            None => "Bearer".to_owned(),
        })
    }

    /// The challenge on a bad token.
    fn error_challenge(&self, flavor: &Flavor) -> Option<String> {
        flavor.bearer_challenge().then(|| match &self.realm {
            Some(realm) => format!("Bearer realm=\"{realm}\", error=\"invalid_token\""),
            None => "Bearer error=\"invalid_token\"".to_owned(),
        })
    }
}

/// A 401 `kong.response.exit` with `body` and an optional challenge.
fn refuse(body: Value, challenge: Option<String>) -> Exit {
    Exit::Json {
        status: StatusCode::UNAUTHORIZED,
        body,
        headers: www_authenticate(challenge),
    }
}

/// jwt for one request: the credential and consumer the token names, or the 401.
pub(crate) fn authenticate(
    config: &Value,
    request: &PluginRequest<'_>,
    store: &Store,
    flavor: &Flavor,
    now: f64,
) -> Result<Authenticated, Exit> {
    let config = JwtConfig::from_config(config);
    let bad = |message: String| refuse(json!({"message": message}), config.error_challenge(flavor));
    let tokens = tokens(&config, request);
    let token = match tokens.as_slice() {
        [] => {
            return Err(refuse(
                json!({"message": "Unauthorized"}),
                config.challenge(flavor),
            ));
        }
        [token] => token.as_str(),
        _ => return Err(bad("Multiple tokens provided".to_owned())),
    };
    let token = jws::decode(token).map_err(|error| bad(format!("Bad token; {error}")))?;
    let claim = &config.key_claim_name;
    let key = match token.claims.get(claim).or_else(|| token.header.get(claim)) {
        None | Some(Value::Null | Value::Bool(false)) => {
            return Err(bad(format!("No mandatory '{claim}' in claims")));
        }
        Some(Value::String(key)) if key.is_empty() => {
            return Err(bad(format!("Invalid '{claim}' in claims")));
        }
        Some(Value::String(key)) => key.clone(),
        Some(other) => other.to_string(),
    };
    let Some(credential) = credentials::credential(store, JWTS, "key", &key, now) else {
        return Err(bad(format!("No credentials found for given '{claim}'")));
    };
    let algorithm = credential
        .get("algorithm")
        .and_then(Value::as_str)
        .unwrap_or("HS256");
    if token.algorithm() != algorithm {
        return Err(bad("Invalid algorithm".to_owned()));
    }
    let Some(secret) = secret(credential, algorithm, config.secret_is_base64) else {
        return Err(bad("Invalid key/secret".to_owned()));
    };
    match jws::verify(&token, &secret) {
        Ok(true) => {}
        Ok(false) => return Err(bad("Invalid signature".to_owned())),
        // Kong's verifier raises on an unusable key: the request fails.
        Err(_) => {
            return Err(Exit::Error {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "An unexpected error occurred".to_owned(),
                headers: Vec::new(),
            });
        }
    }
    let now = now.floor();
    if let Some(errors) = claim_errors(&token, &config.claims_to_verify, now) {
        return Err(refuse(
            Value::Object(errors),
            config.error_challenge(flavor),
        ));
    }
    if config.maximum_expiration > 0.0 {
        let exp = token.claims.get("exp").and_then(Value::as_f64);
        if exp.is_none_or(|exp| exp - now > config.maximum_expiration) {
            return Err(refuse(
                json!({"exp": "exceeds maximum allowed expiration"}),
                config.error_challenge(flavor),
            ));
        }
    }
    let Some(consumer) = owner(store, credential) else {
        return Err(Exit::Json {
            status: StatusCode::UNAUTHORIZED,
            body: json!({"message": format!("Could not find consumer for '{claim}={key}'")}),
            headers: Vec::new(),
        });
    };
    Ok(Authenticated::by(
        consumer,
        credential,
        "key",
        Effects::default(),
    ))
}

/// The distinct tokens of the request: query arguments, then cookies, then `Bearer`
/// headers (the first value of each header).
fn tokens(config: &JwtConfig, request: &PluginRequest<'_>) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut add = |token: &str| {
        if !token.is_empty() && !found.iter().any(|seen| seen == token) {
            found.push(token.to_owned());
        }
    };
    for name in &config.uri_param_names {
        for (_, value) in request.query.iter().filter(|(key, _)| key == name) {
            add(value);
        }
    }
    let cookies = cookies(request);
    for name in &config.cookie_names {
        if let Some(value) = cookies.get(name.as_str()) {
            add(value);
        }
    }
    for name in &config.header_names {
        let value = request
            .headers
            .get(name.as_str())
            .and_then(|value| value.to_str().ok());
        if let Some(token) = value.and_then(bearer) {
            add(token);
        }
    }
    found
}

/// The token after `Bearer ` anywhere in a header value (Kong's unanchored
/// `\s*[Bb]earer\s+(.+)`).
fn bearer(value: &str) -> Option<&str> {
    static PATTERN: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    let pattern = PATTERN
        .get_or_init(|| Regex::new(r"\s*[Bb]earer\s+(.+)").ok())
        .as_ref()?;
    pattern
        .captures(value)
        .and_then(|captures| captures.get(1))
        .map(|token| token.as_str())
}

/// The request's cookies by name (the first of each name).
fn cookies<'a>(request: &PluginRequest<'a>) -> BTreeMap<&'a str, &'a str> {
    let mut cookies = BTreeMap::new();
    for header in request.headers.get_all("cookie") {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                cookies.entry(name.trim()).or_insert(value.trim());
            }
        }
    }
    cookies
}

/// The secret or public key a credential verifies `algorithm` with.
fn secret(credential: &Entity, algorithm: &str, secret_is_base64: bool) -> Option<Vec<u8>> {
    if algorithm.starts_with("HS") {
        let secret = credential.get("secret").and_then(Value::as_str)?;
        if secret_is_base64 {
            let padded = secret.trim_end_matches('=');
            return base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(padded)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(padded))
                .ok();
        }
        return Some(secret.as_bytes().to_vec());
    }
    credential
        .get("rsa_public_key")
        .and_then(Value::as_str)
        .map(|key| key.as_bytes().to_vec())
}

/// `claims_to_verify`'s errors by claim (`exp`: `token expired`, `nbf`: `token not valid
/// yet`, either: `must be a number`), or `None`.
fn claim_errors(token: &Token, claims: &[String], now: f64) -> Option<Map<String, Value>> {
    let mut errors = Map::new();
    for name in claims {
        let Some(value) = token.claims.get(name).and_then(Value::as_f64) else {
            errors.insert(name.clone(), json!("must be a number"));
            continue;
        };
        let error = match name.as_str() {
            "exp" if value <= now => Some("token expired"),
            "nbf" if value > now => Some("token not valid yet"),
            _ => None,
        };
        if let Some(error) = error {
            errors.insert(name.clone(), json!(error));
        }
    }
    (!errors.is_empty()).then_some(errors)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::super::fixtures::{add, checked, headers, store};
    use super::super::jws::signing::hmac_token;
    use super::*;
    use crate::kong::store::text;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const NOW: f64 = 1_800_000_000.0;

    /// A store with consumer alice and her HS256 credential `alice-key`/`s3cret`.
    fn secrets() -> Result<Store, Box<dyn std::error::Error>> {
        let mut store = store();
        let alice = add(
            &mut store,
            "consumers",
            json!({"username": "alice", "custom_id": "A-1"}),
        )?;
        let id = text(&alice, "id").to_owned();
        add(
            &mut store,
            JWTS,
            json!({"key": "alice-key", "secret": "s3cret", "consumer": {"id": id}}),
        )?;
        add(
            &mut store,
            JWTS,
            json!({"key": "hs512-key", "secret": "c2VjcmV0", "algorithm": "HS512", "consumer": {"id": id}}),
        )?;
        Ok(store)
    }

    fn check(
        store: &Store,
        config: Value,
        headers: &HeaderMap,
        query: &[(String, String)],
        version: &str,
    ) -> Result<Authenticated, Exit> {
        checked(authenticate, store, &config, headers, query, version, NOW)
    }

    fn bearer_of(token: &str) -> HeaderMap {
        headers(&[("authorization", &format!("Bearer {token}"))])
    }

    fn json_exit(body: Value, challenge: Option<&str>) -> Exit {
        refuse(body, challenge.map(str::to_owned))
    }

    #[test]
    fn a_valid_token_names_the_credential_and_consumer() -> TestResult {
        let store = secrets()?;
        let token = hmac_token("HS256", &json!({"iss": "alice-key"}), b"s3cret");
        let found = check(&store, json!({}), &bearer_of(&token), &[], "3.9.1")
            .map_err(|exit| format!("{exit:?}"))?;
        assert_eq!(text(&found.consumer, "username"), "alice");
        assert_eq!(found.identifier.as_deref(), Some("alice-key"));
        let query = [("jwt".to_owned(), token.clone())];
        assert!(check(&store, json!({}), &headers(&[]), &query, "3.9.1").is_ok());
        let cookie = headers(&[("cookie", &format!("a=b; session={token}"))]);
        let by_cookie = json!({"cookie_names": ["session"]});
        assert!(check(&store, by_cookie, &cookie, &[], "3.9.1").is_ok());
        let custom = json!({"key_claim_name": "kid", "header_names": ["x-token"]});
        let kid = hmac_token("HS256", &json!({"kid": "alice-key"}), b"s3cret");
        let header = headers(&[("x-token", &format!("bearer {kid}"))]);
        assert!(check(&store, custom, &header, &[], "3.9.1").is_ok());
        let base64 = json!({"secret_is_base64": true});
        let hs512 = hmac_token("HS512", &json!({"iss": "hs512-key"}), b"secret");
        assert!(check(&store, base64, &bearer_of(&hs512), &[], "3.9.1").is_ok());
        Ok(())
    }

    #[test]
    fn failures_answer_kongs_messages() -> TestResult {
        let store = secrets()?;
        let good = hmac_token("HS256", &json!({"iss": "alice-key"}), b"s3cret");
        let mut tampered = good.clone();
        tampered.pop();
        tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
        let challenge = Some("Bearer error=\"invalid_token\"");
        let cases = [
            (
                headers(&[]),
                json!({"message": "Unauthorized"}),
                Some("Bearer"),
            ),
            (
                bearer_of("abc"),
                json!({"message": "Bad token; invalid JSON"}),
                challenge,
            ),
            (
                bearer_of(&tampered),
                json!({"message": "Invalid signature"}),
                challenge,
            ),
            (
                bearer_of(&hmac_token("HS256", &json!({"sub": "x"}), b"s3cret")),
                json!({"message": "No mandatory 'iss' in claims"}),
                challenge,
            ),
            (
                bearer_of(&hmac_token("HS256", &json!({"iss": ""}), b"s3cret")),
                json!({"message": "Invalid 'iss' in claims"}),
                challenge,
            ),
            (
                bearer_of(&hmac_token("HS256", &json!({"iss": "nobody"}), b"s3cret")),
                json!({"message": "No credentials found for given 'iss'"}),
                challenge,
            ),
            (
                bearer_of(&hmac_token(
                    "HS384",
                    &json!({"iss": "alice-key"}),
                    b"s3cret",
                )),
                json!({"message": "Invalid algorithm"}),
                challenge,
            ),
        ];
        for (headers, body, challenge) in cases {
            assert_eq!(
                check(&store, json!({}), &headers, &[], "3.9.1"),
                Err(json_exit(body.clone(), challenge)),
                "{body}"
            );
        }
        let twice = [("jwt".to_owned(), "a".to_owned())];
        assert_eq!(
            check(&store, json!({}), &bearer_of(&good), &twice, "3.9.1"),
            Err(json_exit(
                json!({"message": "Multiple tokens provided"}),
                challenge
            ))
        );
        // Before 3.8 there is no challenge.
        assert_eq!(
            check(&store, json!({}), &bearer_of(&tampered), &[], "3.7.1"),
            Err(json_exit(json!({"message": "Invalid signature"}), None))
        );
        let realm = json!({"realm": "orders"});
        assert_eq!(
            check(&store, realm, &headers(&[]), &[], "3.10.0"),
            Err(json_exit(
                json!({"message": "Unauthorized"}),
                Some("Bearer realm=\"orders\"")
            ))
        );
        Ok(())
    }

    #[test]
    fn registered_claims_and_maximum_expiration() -> TestResult {
        let store = secrets()?;
        let challenge = Some("Bearer error=\"invalid_token\"");
        let verify = json!({"claims_to_verify": ["exp", "nbf"]});
        let token = |claims: Value| bearer_of(&hmac_token("HS256", &claims, b"s3cret"));
        let valid = token(json!({"iss": "alice-key", "exp": NOW + 60.0, "nbf": NOW - 1.0}));
        assert!(check(&store, verify.clone(), &valid, &[], "3.9.1").is_ok());
        let expired = token(json!({"iss": "alice-key", "exp": NOW, "nbf": NOW + 10.0}));
        assert_eq!(
            check(&store, verify.clone(), &expired, &[], "3.9.1"),
            Err(json_exit(
                json!({"exp": "token expired", "nbf": "token not valid yet"}),
                challenge
            ))
        );
        let text_exp = token(json!({"iss": "alice-key", "exp": "soon", "nbf": 1}));
        assert_eq!(
            check(&store, verify, &text_exp, &[], "3.9.1"),
            Err(json_exit(json!({"exp": "must be a number"}), challenge))
        );
        let limited = json!({"claims_to_verify": ["exp"], "maximum_expiration": 60});
        let far = token(json!({"iss": "alice-key", "exp": NOW + 3600.0}));
        assert_eq!(
            check(&store, limited.clone(), &far, &[], "3.9.1"),
            Err(json_exit(
                json!({"exp": "exceeds maximum allowed expiration"}),
                challenge
            ))
        );
        let near = token(json!({"iss": "alice-key", "exp": NOW + 30.0}));
        assert!(check(&store, limited, &near, &[], "3.9.1").is_ok());
        Ok(())
    }

    #[test]
    fn bearer_is_found_anywhere_in_the_header() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("  bearer   abc def"), Some("abc def"));
        assert_eq!(bearer("Basic abc"), None);
    }
}
