//! The http family: `http`, one request to a URL given in its arguments. It
//! reads for GET and HEAD and writes otherwise ([`http_effect`]). It is
//! [`Pending`] until the executor lands.

use std::borrow::Cow;
use std::collections::BTreeMap;

use runsheet_engine::model::{Duration, TlsSettings};
use runsheet_engine::{ActionSpec, DuplicateAction, Effect, Registry};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::arguments::OneOrMany;
use crate::pending::Pending;

/// The family name of these actions.
pub const FAMILY: &str = "http";

/// Why these actions cannot apply in this build.
pub const NOT_IN_THIS_BUILD: &str = "arrives with the executor (issue #4)";

/// Arguments of `http`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = {"required": ["json", "body"]}))]
pub struct HttpArguments {
    /// Request method (default GET); GET and HEAD only read, every other method writes.
    #[serde(default)]
    pub method: HttpMethod,
    /// Absolute http or https URL.
    pub url: String,
    /// Request headers, name to value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON request body, sent with `Content-Type: application/json`; at most one of `json` and `body`.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Request body as text, sent as written; at most one of `json` and `body`.
    #[serde(default)]
    pub body: Option<String>,
    /// Status code or codes that count as success (default: any 2xx).
    #[serde(default)]
    pub expect_status: Option<OneOrMany<StatusCode>>,
    /// How to authenticate: `bearer`, `basic` or `oauth2_client_credentials` (default: none).
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    /// TLS settings: CA to trust, client certificate and key for mTLS, server name, insecure.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Values picked from the JSON response: output name to JSON pointer (`/data/0/id`).
    #[serde(default)]
    pub extract: BTreeMap<String, String>,
    /// Limit for one request (default 30s); the step's `timeout:` bounds retries and polling.
    #[serde(default = "thirty_seconds")]
    pub timeout: Duration,
}

/// The default request timeout, 30 seconds.
fn thirty_seconds() -> Duration {
    Duration(std::time::Duration::from_secs(30))
}

/// An HTTP request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// Reads a resource.
    #[default]
    Get,
    /// Reads a resource's headers.
    Head,
    /// Creates or submits.
    Post,
    /// Replaces a resource.
    Put,
    /// Changes part of a resource.
    Patch,
    /// Removes a resource.
    Delete,
    /// Asks what the resource allows (counted as a write, as the catalogue says).
    Options,
}

impl HttpMethod {
    /// Whether the method only reads (GET and HEAD): a step using it may run in dry-run.
    pub fn only_reads(self) -> bool {
        matches!(self, HttpMethod::Get | HttpMethod::Head)
    }
}

/// An HTTP status code, 100 to 599.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct StatusCode(u16);

impl StatusCode {
    /// The code as a number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for StatusCode {
    type Error = String;

    fn try_from(code: u16) -> Result<Self, String> {
        if (100..=599).contains(&code) {
            Ok(Self(code))
        } else {
            Err(format!("{code} is not an HTTP status code (100 to 599)"))
        }
    }
}

impl From<StatusCode> for u16 {
    fn from(code: StatusCode) -> u16 {
        code.0
    }
}

impl JsonSchema for StatusCode {
    fn schema_name() -> Cow<'static, str> {
        "StatusCode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An HTTP status code.",
            "type": "integer",
            "minimum": 100,
            "maximum": 599
        })
    }
}

/// How an `http` request authenticates; write exactly one key.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpAuth {
    /// Sends `Authorization: Bearer <token>` with this token.
    Bearer(String),
    /// Sends HTTP basic credentials.
    Basic(BasicAuth),
    /// Fetches a token with the OAuth 2.0 client-credentials grant, then sends it as a bearer token.
    #[serde(rename = "oauth2_client_credentials")]
    OAuth2ClientCredentials(OAuth2ClientCredentials),
}

/// HTTP basic credentials.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password; use `secret()` so that it is masked.
    pub password: String,
}

/// The OAuth 2.0 client-credentials grant.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2ClientCredentials {
    /// Token endpoint URL.
    pub token_url: String,
    /// Client id.
    pub client_id: String,
    /// Client secret; use `secret()` so that it is masked.
    pub client_secret: String,
    /// Scope requested, space-separated (default: none).
    #[serde(default)]
    pub scope: Option<String>,
}

/// The effect of `http` for these arguments: read for GET and HEAD (GET when
/// `method` is absent), write for anything else, including a method it cannot read.
pub fn http_effect(arguments: &serde_json::Value) -> Effect {
    let method = match arguments.get("method") {
        None | Some(serde_json::Value::Null) => Some(HttpMethod::default()),
        Some(method) => HttpMethod::deserialize(method).ok(),
    };
    match method {
        Some(method) if method.only_reads() => Effect::READ,
        _ => Effect::write(),
    }
}

/// Registers the http actions.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateAction> {
    registry.register(
        Pending::new(
            ActionSpec::new::<HttpArguments>(
                "http",
                FAMILY,
                "Sends one HTTP request and checks its status.",
                Effect::read_when("method is GET or HEAD"),
            )
            .outputs(&["status", "headers", "json", "body", "elapsed_ms"]),
            NOT_IN_THIS_BUILD,
        )
        .effect_for(http_effect),
    )
}

#[cfg(test)]
mod tests {
    use runsheet_engine::EffectKind;
    use serde_json::json;

    use super::*;

    #[test]
    fn get_and_head_read_everything_else_writes() {
        assert_eq!(
            http_effect(&json!({"url": "http://x"})).kind,
            EffectKind::Read
        );
        assert_eq!(
            http_effect(&json!({"method": "HEAD", "url": "http://x"})).kind,
            EffectKind::Read
        );
        for method in [
            "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "{{ m }}",
        ] {
            assert_eq!(
                http_effect(&json!({"method": method, "url": "http://x"})).kind,
                EffectKind::Write,
                "{method}"
            );
        }
    }

    #[test]
    fn reads_a_full_request() -> Result<(), serde_json::Error> {
        let arguments: HttpArguments = serde_json::from_value(json!({
            "method": "POST",
            "url": "https://api.example/orders",
            "headers": {"x-trace": "1"},
            "json": {"a": 1},
            "expect_status": [200, 201],
            "auth": {"oauth2_client_credentials": {
                "token_url": "https://idp.example/token",
                "client_id": "c",
                "client_secret": "s"
            }},
            "tls": {"ca": "ca.pem", "insecure": false},
            "extract": {"id": "/id"},
            "timeout": "5s"
        }))?;
        assert_eq!(arguments.method, HttpMethod::Post);
        assert_eq!(arguments.timeout.0.as_secs(), 5);
        let codes: Vec<u16> = arguments
            .expect_status
            .iter()
            .flat_map(|codes| codes.as_slice().iter().map(|code| code.get()))
            .collect();
        assert_eq!(codes, [200, 201]);
        Ok(())
    }

    #[test]
    fn refuses_bad_status_codes_and_lowercase_methods() {
        let url = "http://x";
        assert!(
            serde_json::from_value::<HttpArguments>(json!({"url": url, "expect_status": 99}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<HttpArguments>(json!({"url": url, "method": "get"})).is_err()
        );
        assert!(
            serde_json::from_value::<HttpArguments>(json!({"url": url, "auth": {"bearer": "t"}}))
                .is_ok()
        );
        assert!(
            serde_json::from_value::<HttpArguments>(
                json!({"url": url, "auth": {"bearer": "t", "basic": {}}})
            )
            .is_err()
        );
    }
}
