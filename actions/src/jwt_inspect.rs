//! `jwt.inspect` ([`JwtInspect`]): decodes a JWT's header and claims and checks
//! `exp` and `nbf` against the clock. It reports rather than fails: `expired`
//! and `not_yet_valid` are outputs for an `assert` to judge. The signature is
//! neither verified nor ever shown.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use runsheet_engine::{Action, ActionError, ActionSpec, Applied, StepContext};
use serde_json::{Map, Value};

use crate::core::JwtInspectArguments;

/// The outputs of `jwt.inspect`.
pub const OUTPUTS: &[&str] = &["header", "claims", "expires_at", "expired", "not_yet_valid"];

/// Why a token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Not three dot-separated parts.
    #[error("a JWT has three parts separated by dots (header.claims.signature), this has {parts}")]
    Shape {
        /// How many parts it has.
        parts: usize,
    },
    /// Five parts: an encrypted token.
    #[error(
        "this is an encrypted JWT (JWE, five parts): its claims cannot be read without the key"
    )]
    Encrypted,
    /// A part is not base64url.
    #[error("the {part} part is not base64url")]
    Base64 {
        /// `header` or `claims`.
        part: &'static str,
        /// Why.
        #[source]
        source: base64::DecodeError,
    },
    /// A part is not a JSON object.
    #[error("the {part} part is not a JSON object")]
    Json {
        /// `header` or `claims`.
        part: &'static str,
    },
    /// A time claim is not a number of seconds.
    #[error("claim `{name}` is not a NumericDate (seconds since 1970)")]
    TimeClaim {
        /// The claim.
        name: &'static str,
    },
}

/// A decoded token: header and claims, never the signature.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedJwt {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
}

impl DecodedJwt {
    /// Decodes a compact JWT (a leading `Bearer ` is ignored).
    pub fn decode(token: &str) -> Result<Self, JwtError> {
        let token = token.trim();
        let token = token
            .get(..7)
            .filter(|prefix| prefix.eq_ignore_ascii_case("bearer "))
            .map_or(token, |_| token[7..].trim_start());
        let parts: Vec<&str> = token.split('.').collect();
        match parts.as_slice() {
            [header, claims, _signature] => Ok(Self {
                header: decode_part("header", header)?,
                claims: decode_part("claims", claims)?,
            }),
            parts if parts.len() == 5 => Err(JwtError::Encrypted),
            parts => Err(JwtError::Shape { parts: parts.len() }),
        }
    }

    /// A time claim (`exp`, `nbf`) in whole seconds, if present.
    pub fn time_claim(&self, name: &'static str) -> Result<Option<i64>, JwtError> {
        match self.claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .or_else(|| value.as_f64().map(|seconds| seconds.floor() as i64))
                .map(Some)
                .ok_or(JwtError::TimeClaim { name }),
        }
    }

    /// The step's outputs, with `exp` and `nbf` checked against `now` (seconds since 1970).
    pub fn outputs(&self, now: i64) -> Result<Map<String, Value>, JwtError> {
        let expires = self.time_claim("exp")?;
        let not_before = self.time_claim("nbf")?;
        let expires_at = expires
            .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
            .map_or(Value::Null, |time| Value::from(time.to_string()));
        let mut outputs = Map::new();
        outputs.insert("header".to_owned(), Value::Object(self.header.clone()));
        outputs.insert("claims".to_owned(), Value::Object(self.claims.clone()));
        outputs.insert("expires_at".to_owned(), expires_at);
        // RFC 7519: not accepted on or after `exp`, nor before `nbf`; no leeway.
        outputs.insert(
            "expired".to_owned(),
            Value::from(expires.is_some_and(|exp| now >= exp)),
        );
        outputs.insert(
            "not_yet_valid".to_owned(),
            Value::from(not_before.is_some_and(|nbf| now < nbf)),
        );
        Ok(outputs)
    }
}

/// One base64url part decoded to a JSON object.
fn decode_part(part: &'static str, text: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|source| JwtError::Base64 { part, source })?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Json { part }),
    }
}

/// The `jwt.inspect` action.
#[derive(Debug, Clone)]
pub struct JwtInspect {
    spec: ActionSpec,
}

impl JwtInspect {
    /// The action with this catalogue entry.
    pub fn new(spec: ActionSpec) -> Self {
        Self { spec }
    }
}

#[async_trait::async_trait]
impl Action for JwtInspect {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(
        &self,
        _context: &StepContext,
        arguments: Value,
    ) -> Result<Applied, ActionError> {
        let arguments: JwtInspectArguments =
            serde_json::from_value(arguments).map_err(|error| ActionError::InvalidArguments {
                action: "jwt.inspect",
                message: error.to_string(),
            })?;
        let now = jiff::Timestamp::now().as_second();
        let outputs = DecodedJwt::decode(&arguments.token)
            .and_then(|token| token.outputs(now))
            .map_err(|error| ActionError::failed(format!("cannot read the JWT: {error}")))?;
        Ok(Applied {
            secrets: Vec::new(),
            outputs,
            undo: None,
            change: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use runsheet_engine::Effect;
    use serde_json::json;

    use super::*;

    const SIGNATURE: &str = "c2VjcmV0LXNpZ25hdHVyZQ";

    fn token(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.{SIGNATURE}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn action() -> JwtInspect {
        JwtInspect::new(
            ActionSpec::new::<JwtInspectArguments>("jwt.inspect", "core", "test", Effect::READ)
                .outputs(OUTPUTS),
        )
    }

    #[tokio::test]
    async fn reports_a_valid_token_without_its_signature() -> Result<(), ActionError> {
        let now = jiff::Timestamp::now().as_second();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": "k1"});
        let claims =
            json!({"sub": "svc-deploy", "scope": "admin", "exp": now + 3600, "nbf": now - 10});
        let applied = action()
            .apply(
                &StepContext::detached("jwt", false),
                json!({"token": format!("Bearer {}", token(&header, &claims))}),
            )
            .await?;
        let outputs = &applied.outputs;
        assert_eq!(outputs["header"], header);
        assert_eq!(outputs["claims"], claims);
        assert_eq!(outputs["expired"], json!(false));
        assert_eq!(outputs["not_yet_valid"], json!(false));
        let expires_at = jiff::Timestamp::from_second(now + 3600).map(|t| t.to_string());
        assert_eq!(outputs["expires_at"].as_str(), expires_at.ok().as_deref());
        assert!(
            !Value::Object(outputs.clone())
                .to_string()
                .contains(SIGNATURE)
        );
        assert_eq!(outputs.len(), OUTPUTS.len());
        Ok(())
    }

    #[test]
    fn checks_exp_and_nbf_against_the_clock() -> Result<(), JwtError> {
        let decoded = DecodedJwt::decode(&token(
            &json!({"alg": "HS256"}),
            &json!({"exp": 1_000_000_000, "nbf": 999_999_000}),
        ))?;
        let expired = decoded.outputs(1_000_000_000)?;
        assert_eq!(expired["expired"], json!(true));
        assert_eq!(expired["expires_at"], json!("2001-09-09T01:46:40Z"));
        let early = decoded.outputs(999_998_999)?;
        assert_eq!(early["expired"], json!(false));
        assert_eq!(early["not_yet_valid"], json!(true));
        let in_between = decoded.outputs(999_999_999)?;
        assert_eq!(
            (&in_between["expired"], &in_between["not_yet_valid"]),
            (&json!(false), &json!(false))
        );
        let no_times = DecodedJwt::decode(&token(&json!({"alg": "none"}), &json!({"sub": "x"})))?
            .outputs(0)?;
        assert_eq!(no_times["expires_at"], Value::Null);
        assert_eq!(no_times["expired"], json!(false));
        Ok(())
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_readable_jwt() {
        let context = StepContext::detached("jwt", false);
        let cases = [
            ("not-a-token", "three parts"),
            ("a.b.c.d.e", "encrypted JWT"),
            ("%%%.e30.sig", "the header part is not base64url"),
            (
                &token(&json!({"alg": "HS256"}), &json!([1]))[..],
                "the claims part is not a JSON object",
            ),
            (
                &token(&json!({}), &json!({"exp": "tomorrow"}))[..],
                "claim `exp` is not a NumericDate",
            ),
        ];
        for (token, expected) in cases {
            let outcome = action().apply(&context, json!({"token": token})).await;
            let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(expected), "{token}: {message}");
            assert!(message.starts_with("cannot read the JWT"), "{message}");
        }
    }
}
