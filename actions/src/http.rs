//! The http family: [`Http`], the `http` action, one request to a URL given in
//! its arguments. It reads for GET and HEAD and writes otherwise
//! ([`http_effect`]); requests go through [`WebClient`], whose dry-run guard
//! refuses writes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use runsheet_engine::model::{Duration, TlsSettings};
use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, DuplicateAction, Effect, Registry,
    StepContext,
};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::arguments::OneOrMany;
use crate::jwt_sign::{JwtAuth, unix_now};
use crate::web::{ClientCredentials, ExpectedStatus, WebClient, WebRequest, WebResponse, truncate};

/// The family name of these actions.
pub const FAMILY: &str = "http";

/// The outputs every `http` step returns; `extract` adds its names.
pub const OUTPUTS: &[&str] = &["status", "headers", "json", "body", "elapsed_ms"];

/// The most of the response body the `body` output keeps (`json` is parsed from all of it).
pub const BODY_OUTPUT_BYTES: usize = 64 * 1024;

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
    /// How to authenticate: `bearer`, `basic`, `oauth2_client_credentials` or `jwt` (default: none).
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
    /// Signs a short-lived HS256 JWT with a credential's key and secret and sends it as a bearer token.
    Jwt(JwtAuth),
}

/// `request` authenticated with `auth` (an OAuth2 token is fetched through `client`).
pub(crate) async fn authenticate(
    request: WebRequest,
    auth: Option<&HttpAuth>,
    client: &WebClient,
) -> Result<WebRequest, ActionError> {
    Ok(match auth {
        None => request,
        Some(HttpAuth::Bearer(token)) => request.bearer(token)?,
        Some(HttpAuth::Basic(basic)) => request.basic(&basic.username, &basic.password)?,
        Some(HttpAuth::OAuth2ClientCredentials(grant)) => {
            let token = client
                .oauth2_token(&ClientCredentials {
                    token_url: grant.token_url.clone(),
                    client_id: grant.client_id.clone(),
                    client_secret: grant.client_secret.clone(),
                    scope: grant.scope.clone(),
                })
                .await?;
            request.bearer(&token)?
        }
        // Signed now: a probe's requests share one token, valid for its `expires_in`.
        Some(HttpAuth::Jwt(jwt)) => request.bearer(&jwt.token(unix_now()))?,
    })
}

/// Refuses `auth` together with an `Authorization` header in `headers`.
pub(crate) fn check_auth_header(
    auth: Option<&HttpAuth>,
    headers: &BTreeMap<String, String>,
) -> Result<(), String> {
    if auth.is_some()
        && headers
            .keys()
            .any(|name| name.eq_ignore_ascii_case("authorization"))
    {
        return Err("set `auth` or an `Authorization` header, not both".to_owned());
    }
    Ok(())
}

/// The statuses that count as success: the listed `codes`, or any 2xx.
pub(crate) fn expected_status(codes: Option<&OneOrMany<StatusCode>>) -> ExpectedStatus {
    match codes {
        Some(codes) => {
            ExpectedStatus::Codes(codes.as_slice().iter().map(|code| code.get()).collect())
        }
        None => ExpectedStatus::Success,
    }
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

impl HttpMethod {
    /// The method as reqwest names it.
    fn as_reqwest(self) -> reqwest::Method {
        match self {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Head => reqwest::Method::HEAD,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
            HttpMethod::Options => reqwest::Method::OPTIONS,
        }
    }
}

/// The `http` action: sends one request, checks its status and publishes the response.
#[derive(Debug, Clone)]
pub struct Http {
    spec: ActionSpec,
}

impl Http {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<HttpArguments>(
                "http",
                FAMILY,
                "Sends one HTTP request and checks its status.",
                Effect::read_when("method is GET or HEAD"),
            )
            .outputs(OUTPUTS),
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for Http {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    fn effect_for(&self, arguments: &Value) -> Effect {
        http_effect(arguments)
    }

    async fn plan(&self, _context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let arguments = HttpArguments::parse(arguments)?;
        if arguments.method.only_reads() {
            return Ok(Change::none(format!("reads {}", arguments.url)));
        }
        // Nothing is sent: what the server would do cannot be known beforehand.
        Ok(Change::unknown(format!(
            "would send {} {}",
            arguments.method.as_reqwest(),
            arguments.url
        )))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments = HttpArguments::parse(arguments)?;
        let client = WebClient::for_step(context, arguments.tls.as_ref()).await?;
        if client.is_insecure() {
            tracing::warn!(
                step = %context.step_id,
                url = %arguments.url,
                "TLS certificate verification is off for this request (insecure: true)"
            );
        }
        let request = arguments.request(&client).await?;
        let response = client.send(request).await?;
        response.expect_status(&arguments.expected_status())?;
        let outputs = outputs(&response, &arguments.extract)?;
        let change = (!arguments.method.only_reads())
            .then(|| Change::unknown(format!("{} answered {}", response.request, response.status)));
        Ok(Applied {
            secrets: Vec::new(),
            outputs,
            undo: None,
            change,
        })
    }
}

impl HttpArguments {
    /// Reads and checks rendered arguments.
    fn parse(arguments: Value) -> Result<Self, ActionError> {
        let invalid = |message: String| ActionError::InvalidArguments {
            action: "http",
            message,
        };
        let arguments: Self =
            serde_json::from_value(arguments).map_err(|error| invalid(error.to_string()))?;
        if arguments.json.is_some() && arguments.body.is_some() {
            return Err(invalid("set `json` or `body`, not both".to_owned()));
        }
        check_auth_header(arguments.auth.as_ref(), &arguments.headers).map_err(invalid)?;
        for (name, pointer) in &arguments.extract {
            if OUTPUTS.contains(&name.as_str()) {
                return Err(invalid(format!(
                    "extract `{name}` would replace the output of the same name; choose another name"
                )));
            }
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(invalid(format!(
                    "extract `{name}`: JSON pointer `{pointer}` must start with `/` (`/data/0/id`)"
                )));
            }
        }
        Ok(arguments)
    }

    /// The statuses that count as success: the listed ones, or any 2xx.
    fn expected_status(&self) -> ExpectedStatus {
        expected_status(self.expect_status.as_ref())
    }

    /// The request these arguments describe, authenticated.
    async fn request(&self, client: &WebClient) -> Result<WebRequest, ActionError> {
        let mut request =
            WebRequest::new(self.method.as_reqwest(), &self.url)?.timeout(self.timeout.0);
        for (name, value) in &self.headers {
            request = request.header(name, value)?;
        }
        if let Some(json) = &self.json {
            request = request.json(json);
        } else if let Some(body) = &self.body {
            request = request.text(body.clone());
        }
        authenticate(request, self.auth.as_ref(), client).await
    }
}

/// The step's outputs: status, headers, json, body, elapsed_ms and each extracted value.
fn outputs(
    response: &WebResponse,
    extract: &BTreeMap<String, String>,
) -> Result<Map<String, Value>, ActionError> {
    let json = response.json();
    let mut outputs = Map::new();
    outputs.insert("status".to_owned(), Value::from(response.status));
    let headers: Map<String, Value> = response
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
        .collect();
    outputs.insert("headers".to_owned(), Value::Object(headers));
    outputs.insert("json".to_owned(), json.clone().unwrap_or(Value::Null));
    outputs.insert(
        "body".to_owned(),
        Value::from(truncate(&response.text(), BODY_OUTPUT_BYTES)),
    );
    let elapsed_ms = u64::try_from(response.elapsed.as_millis()).unwrap_or(u64::MAX);
    outputs.insert("elapsed_ms".to_owned(), Value::from(elapsed_ms));
    for (name, pointer) in extract {
        let Some(document) = &json else {
            return Err(ActionError::failed(format!(
                "extract `{name}`: the response of {} is not JSON",
                response.request
            )));
        };
        let Some(value) = document.pointer(pointer) else {
            return Err(ActionError::failed(format!(
                "extract `{name}`: JSON pointer `{pointer}` not found in the response of {}",
                response.request
            )));
        };
        outputs.insert(name.clone(), value.clone());
    }
    Ok(outputs)
}

/// Registers the http actions.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateAction> {
    registry.register(Http::new())
}

#[cfg(test)]
mod tests {
    use runsheet_engine::EffectKind;
    use serde_json::json;

    use super::*;
    use crate::test_support::{Pki, Reply, TestResult, TestServer};

    async fn apply(context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        Http::new().apply(context, arguments).await
    }

    fn message(outcome: Result<Applied, ActionError>) -> String {
        outcome
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn get_publishes_the_response_and_extracts() -> TestResult {
        let server = TestServer::http(|_| {
            Reply::json(
                200,
                json!({"data": [{"id": 7, "name": "orders"}], "total": 1}),
            )
        })
        .await?;
        let context = StepContext::detached("list", false);
        let applied = apply(
            &context,
            json!({
                "url": server.url("/services?size=1"),
                "extract": {"id": "/data/0/id", "first": "/data/0"}
            }),
        )
        .await?;
        let outputs = &applied.outputs;
        assert_eq!(outputs["status"], json!(200));
        assert_eq!(outputs["json"]["total"], json!(1));
        assert_eq!(outputs["id"], json!(7));
        assert_eq!(outputs["first"], json!({"id": 7, "name": "orders"}));
        assert_eq!(
            outputs["headers"]["content-type"],
            json!("application/json")
        );
        assert_eq!(outputs["headers"]["x-test"], json!("a, b"));
        assert!(
            outputs["body"]
                .as_str()
                .is_some_and(|b| b.contains("orders"))
        );
        assert!(outputs["elapsed_ms"].is_u64());
        assert!(applied.change.is_none());
        assert_eq!(server.requests()[0].path, "/services?size=1");
        Ok(())
    }

    #[tokio::test]
    async fn a_missing_pointer_names_the_output_and_pointer() -> TestResult {
        let server = TestServer::http(|_| Reply::json(200, json!({"data": []}))).await?;
        let context = StepContext::detached("list", false);
        let outcome = apply(
            &context,
            json!({"url": server.url("/"), "extract": {"id": "/data/0/id"}}),
        )
        .await;
        assert_eq!(
            message(outcome),
            format!(
                "extract `id`: JSON pointer `/data/0/id` not found in the response of GET {}",
                server.url("/")
            )
        );
        let text = TestServer::http(|_| Reply::text(200, "ok")).await?;
        let outcome = apply(
            &context,
            json!({"url": text.url("/"), "extract": {"id": "/id"}}),
        )
        .await;
        assert!(message(outcome).contains("is not JSON"));
        Ok(())
    }

    #[tokio::test]
    async fn post_sends_json_and_fails_on_an_unexpected_status() -> TestResult {
        let server = TestServer::http(|_| Reply::text(409, "name already exists")).await?;
        let context = StepContext::detached("create", false);
        let outcome = apply(
            &context,
            json!({
                "method": "POST",
                "url": server.url("/services"),
                "json": {"name": "orders", "port": 80},
                "expect_status": 201
            }),
        )
        .await;
        assert_eq!(
            message(outcome),
            format!(
                "POST {} answered 409, expected 201; body: name already exists",
                server.url("/services")
            )
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "POST");
        assert_eq!(
            serde_json::from_str::<Value>(&requests[0].body)?,
            json!({"name": "orders", "port": 80})
        );
        assert_eq!(
            requests[0].headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_write_reports_what_it_sent() -> TestResult {
        let server = TestServer::http(|_| Reply::text(204, "")).await?;
        let context = StepContext::detached("delete", false);
        let applied = apply(
            &context,
            json!({"method": "DELETE", "url": server.url("/services/a"), "expect_status": [200, 204]}),
        )
        .await?;
        assert_eq!(applied.outputs["json"], Value::Null);
        let summary = applied.change.map(|change| change.summary);
        assert_eq!(
            summary,
            Some(format!("DELETE {} answered 204", server.url("/services/a")))
        );
        Ok(())
    }

    #[tokio::test]
    async fn sends_bearer_and_basic_credentials_and_headers() -> TestResult {
        let server = TestServer::http(|_| Reply::text(200, "ok")).await?;
        let context = StepContext::detached("auth", false);
        apply(
            &context,
            json!({"url": server.url("/a"), "auth": {"bearer": "t0k"}, "headers": {"X-Trace": "42"}}),
        )
        .await?;
        apply(
            &context,
            json!({"url": server.url("/b"), "auth": {"basic": {"username": "admin", "password": "pa:ss"}}}),
        )
        .await?;
        let requests = server.requests();
        let authorization: Vec<Option<&str>> = requests
            .iter()
            .map(|r| r.headers.get("authorization").map(String::as_str))
            .collect();
        assert_eq!(
            authorization,
            [Some("Bearer t0k"), Some("Basic YWRtaW46cGE6c3M=")]
        );
        assert_eq!(
            requests[0].headers.get("x-trace").map(String::as_str),
            Some("42")
        );
        Ok(())
    }

    #[tokio::test]
    async fn jwt_auth_sends_a_fresh_hs256_token_signed_with_the_secret() -> TestResult {
        use base64::Engine as _;
        let server = TestServer::http(|_| Reply::text(200, "ok")).await?;
        let context = StepContext::detached("jwt", false);
        let before = crate::jwt_sign::unix_now();
        apply(
            &context,
            json!({"url": server.url("/a"), "auth": {"jwt": {"key": "iss-1", "secret": "s3cret", "expires_in": "1m"}}}),
        )
        .await?;
        let requests = server.requests();
        let authorization = requests[0]
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        let token = authorization.strip_prefix("Bearer ").unwrap_or_default();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{authorization}");
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1])?,
        )?;
        assert_eq!(claims["iss"], "iss-1");
        let iat = claims["iat"].as_u64().unwrap_or_default();
        assert!(iat >= before, "{claims}");
        assert_eq!(claims["exp"].as_u64(), Some(iat + 60));
        assert_eq!(
            token,
            crate::jwt_sign::sign_hs256(&claims, b"s3cret"),
            "the signature is HMAC-SHA-256 of header.claims under the secret"
        );
        Ok(())
    }

    #[tokio::test]
    async fn oauth2_token_is_fetched_once_and_reused_even_in_dry_run() -> TestResult {
        let server = TestServer::http(|request| {
            if request.path == "/token" {
                Reply::json(200, json!({"access_token": "tok-9", "expires_in": 300}))
            } else {
                Reply::json(200, json!({"ok": true}))
            }
        })
        .await?;
        let context = StepContext::detached("read", true);
        let arguments = json!({
            "url": server.url("/services"),
            "auth": {"oauth2_client_credentials": {
                "token_url": server.url("/token"),
                "client_id": "runsheet",
                "client_secret": "s"
            }}
        });
        apply(&context, arguments.clone()).await?;
        apply(&context, arguments).await?;
        let requests = server.requests();
        let seen: Vec<(&str, &str, Option<&str>)> = requests
            .iter()
            .map(|r| {
                (
                    r.method.as_str(),
                    r.path.as_str(),
                    r.headers.get("authorization").map(String::as_str),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("POST", "/token", Some("Basic cnVuc2hlZXQ6cw==")),
                ("GET", "/services", Some("Bearer tok-9")),
                ("GET", "/services", Some("Bearer tok-9")),
            ]
        );
        Ok(())
    }

    #[tokio::test]
    async fn dry_run_sends_no_write_and_plans_it() -> TestResult {
        let server = TestServer::http(|_| Reply::text(201, "created")).await?;
        let context = StepContext::detached("create", true);
        let arguments =
            json!({"method": "POST", "url": server.url("/services"), "json": {"name": "a"}});
        let outcome = apply(&context, arguments.clone()).await;
        assert!(
            matches!(&outcome, Err(ActionError::DryRunWrite { what }) if *what == format!("POST {}", server.url("/services"))),
            "{outcome:?}"
        );
        let change = Http::new().plan(&context, arguments).await?;
        assert_eq!(
            change,
            Change::unknown(format!("would send POST {}", server.url("/services")))
        );
        assert_eq!(server.count("POST"), 0);
        assert!(server.requests().is_empty());
        let read = apply(&context, json!({"url": server.url("/services")})).await?;
        assert_eq!(read.outputs["status"], json!(201));
        assert_eq!(server.count("GET"), 1);
        Ok(())
    }

    #[tokio::test]
    async fn uses_the_tls_settings_relative_to_the_playbook() -> TestResult {
        let pki = Pki::new()?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("pki"))?;
        pki.write(&dir.path().join("pki"))?;
        let server =
            TestServer::https(pki.server_config(true)?, |_| Reply::text(200, "ok")).await?;
        let mut context = StepContext::detached("mtls", false);
        context.base_dir = dir.path().to_path_buf();
        apply(
            &context,
            json!({
                "url": server.url("/"),
                "tls": {
                    "ca": "pki/ca.pem",
                    "client_cert": "pki/client.pem",
                    "client_key": "pki/client.key",
                    "server_name": "localhost"
                }
            }),
        )
        .await?;
        let subjects: Vec<Option<String>> = server
            .requests()
            .into_iter()
            .map(|r| r.client_subject)
            .collect();
        assert_eq!(subjects, [Some("CN=deploy-bot".to_owned())]);
        let outcome = apply(&context, json!({"url": server.localhost_url("/")})).await;
        assert!(message(outcome).contains("certificate verification failed: unknown issuer"),);
        Ok(())
    }

    #[tokio::test]
    async fn refuses_contradictory_arguments_before_sending() -> TestResult {
        let server = TestServer::http(|_| Reply::text(200, "ok")).await?;
        let context = StepContext::detached("bad", false);
        let url = server.url("/");
        for arguments in [
            json!({"url": url, "json": {}, "body": "x"}),
            json!({"url": url, "extract": {"status": "/s"}}),
            json!({"url": url, "extract": {"id": "data/id"}}),
            json!({"url": url, "auth": {"bearer": "t"}, "headers": {"Authorization": "x"}}),
            json!({"url": "ftp://host/"}),
        ] {
            let outcome = apply(&context, arguments.clone()).await;
            assert!(
                matches!(
                    outcome,
                    Err(ActionError::InvalidArguments { .. } | ActionError::Failed { .. })
                ),
                "{arguments}"
            );
        }
        assert!(server.requests().is_empty());
        Ok(())
    }

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
