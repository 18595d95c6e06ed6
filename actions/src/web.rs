//! The HTTP client every HTTP-speaking action uses: [`WebClient`] sends a
//! [`WebRequest`] and returns a [`WebResponse`], with the step's TLS settings
//! and timeout, and turns transport failures into [`WebError`]s an operator can
//! act on (refused connection, DNS, certificate verification, timeout).
//!
//! **Dry-run guard.** In a dry run the client itself refuses every method but
//! GET and HEAD with [`WebError::DryRunWrite`], before anything is sent, so a
//! dry run cannot change anything even if an action has a bug. There is one
//! narrow exception: [`WebClient::oauth2_token`] may POST an OAuth 2.0
//! client-credentials token request, which it builds itself, because getting a
//! token changes no gateway state and a read step that needs one must still run.
//! And a caller may mark a request it builds as changing nothing
//! ([`WebRequest::changes_nothing`]): a Graphman GraphQL query (always a POST),
//! or a bundle import sent in the gateway's own test mode (`test=true`). Such a
//! request is sent in a dry run; every other non-GET/HEAD request stays refused.
//!
//! Clients (and their connection pools) are cached per TLS configuration, and
//! OAuth 2.0 tokens per grant, in the run's [`Resources`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
pub use reqwest::Method;
use reqwest::Url;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use runsheet_engine::model::TlsSettings;
use runsheet_engine::{ActionError, Resources, StepContext};

use crate::trust::{TlsMaterial, TrustError, describe_tls_error};

/// The request timeout when neither the request nor the step sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest wait for a TCP connection and TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response body read; larger ones are an error.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How much of an unexpected response's body an error quotes.
const QUOTED_BODY_BYTES: usize = 1024;

/// A token is fetched again when it expires within this margin.
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A dry run asked for a write; nothing was sent.
    #[error("dry run refused a write: {what}")]
    DryRunWrite {
        /// The refused request (`POST https://...`).
        what: String,
    },
    /// The URL cannot be used.
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as written.
        url: String,
        /// Why.
        reason: String,
    },
    /// A header name or value cannot be sent.
    #[error("invalid header `{name}`: {reason}")]
    InvalidHeader {
        /// The header's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The TLS settings could not be used.
    #[error("invalid TLS settings")]
    Trust(#[from] TrustError),
    /// The HTTP client could not be built.
    #[error("failed to build the HTTP client: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
    /// Nothing listens at the address.
    #[error("{what}: connection refused by {address}")]
    ConnectionRefused {
        /// The request.
        what: String,
        /// `host:port`.
        address: String,
    },
    /// The host name does not resolve.
    #[error("{what}: cannot resolve host `{host}`: {reason}")]
    Dns {
        /// The request.
        what: String,
        /// The host name.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// The TLS handshake failed (certificate verification, or the server refused).
    #[error("{what}: {reason}")]
    Tls {
        /// The request.
        what: String,
        /// Why, in words ("certificate verification failed: unknown issuer ...").
        reason: String,
    },
    /// No answer in time.
    #[error("{what}: no response within {}", humantime(*after))]
    Timeout {
        /// The request.
        what: String,
        /// The limit.
        after: Duration,
    },
    /// The connection could not be made for another reason.
    #[error("{what}: cannot connect to {address}: {reason}")]
    Connect {
        /// The request.
        what: String,
        /// `host:port`.
        address: String,
        /// Why.
        reason: String,
    },
    /// The exchange failed after connecting.
    #[error("{what}: {reason}")]
    Transport {
        /// The request.
        what: String,
        /// Why.
        reason: String,
    },
    /// The response body is larger than [`MAX_BODY_BYTES`].
    #[error("{what}: response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The request.
        what: String,
        /// The limit.
        limit: usize,
    },
    /// The status is not one the caller expected.
    #[error("{what} answered {status}, expected {expected}{}", quoted_body(body))]
    UnexpectedStatus {
        /// The request.
        what: String,
        /// The status received.
        status: u16,
        /// The statuses expected, in words (`2xx`, `200 or 201`).
        expected: String,
        /// The start of the response body.
        body: String,
    },
    /// A redirect to another origin, which is never followed.
    #[error(
        "{what} answered {status}, a redirect to {location}, which was not followed: runsheet follows redirects only to the same scheme, host and port, so credentials never reach another host; use the final URL"
    )]
    RedirectNotFollowed {
        /// The request.
        what: String,
        /// The 3xx status received.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// The token endpoint answered without a usable token.
    #[error("token request to {token_url} failed: {reason}")]
    Token {
        /// The token endpoint.
        token_url: String,
        /// Why.
        reason: String,
    },
}

impl From<WebError> for ActionError {
    fn from(error: WebError) -> Self {
        match error {
            WebError::DryRunWrite { what } => ActionError::DryRunWrite { what },
            other => ActionError::failed(error_chain(&other)),
        }
    }
}

/// An error and its sources, joined with `: `.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// ` (body: ...)` when the body is not empty.
fn quoted_body(body: &str) -> String {
    if body.trim().is_empty() {
        String::new()
    } else {
        format!("; body: {}", body.trim())
    }
}

/// After a write went unanswered: reads what it wrote with `landed` every 250 ms, for up
/// to `wait`, until that shows it took effect; what the read found then.
pub async fn look_again<T, F, Fut>(wait: Duration, mut landed: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + wait;
    loop {
        if let Some(found) = landed().await {
            return Some(found);
        }
        if tokio::time::Instant::now() >= give_up {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A duration as an operator writes it (`30s`, `250ms`).
pub(crate) fn humantime(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// The statuses that count as success.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExpectedStatus {
    /// Any 2xx.
    #[default]
    Success,
    /// Exactly these codes.
    Codes(Vec<u16>),
}

impl ExpectedStatus {
    /// Whether `status` is expected.
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            ExpectedStatus::Success => (200..300).contains(&status),
            ExpectedStatus::Codes(codes) => codes.contains(&status),
        }
    }

    /// The expectation in words (`2xx`, `200 or 201`).
    pub fn describe(&self) -> String {
        match self {
            ExpectedStatus::Success => "2xx".to_owned(),
            ExpectedStatus::Codes(codes) => {
                let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
                codes.join(" or ")
            }
        }
    }
}

/// One HTTP request, built before it is handed to a [`WebClient`].
#[derive(Debug, Clone)]
pub struct WebRequest {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
    changes_nothing: bool,
}

impl WebRequest {
    /// A request with this method to an absolute http or https URL.
    pub fn new(method: Method, url: &str) -> Result<Self, WebError> {
        let invalid = |reason: String| WebError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|error| invalid(error.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "scheme `{}` is not http or https",
                parsed.scheme()
            )));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host".to_owned()));
        }
        Ok(Self {
            method,
            url: parsed,
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
            changes_nothing: false,
        })
    }

    /// A GET request.
    pub fn get(url: &str) -> Result<Self, WebError> {
        Self::new(Method::GET, url)
    }

    /// Adds a header (a repeated name adds another value).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, WebError> {
        let invalid = |reason: String| WebError::InvalidHeader {
            name: name.to_owned(),
            reason,
        };
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|error| invalid(error.to_string()))?;
        let mut header_value =
            HeaderValue::from_str(value).map_err(|error| invalid(error.to_string()))?;
        if is_sensitive(&header_name) {
            header_value.set_sensitive(true);
        }
        self.headers.append(header_name, header_value);
        Ok(self)
    }

    /// Sets `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Result<Self, WebError> {
        self.header(header::AUTHORIZATION.as_str(), &format!("Bearer {token}"))
    }

    /// Sets HTTP basic credentials.
    pub fn basic(self, username: &str, password: &str) -> Result<Self, WebError> {
        let credentials = STANDARD.encode(format!("{username}:{password}"));
        self.header(
            header::AUTHORIZATION.as_str(),
            &format!("Basic {credentials}"),
        )
    }

    /// Sends this JSON as the body, with `Content-Type: application/json` unless one is set.
    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.body = Some(value.to_string().into_bytes());
        self.headers
            .entry(header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("application/json"));
        self
    }

    /// Sends this text as the body, as written.
    pub fn text(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into().into_bytes());
        self
    }

    /// Sends these fields form-encoded (`application/x-www-form-urlencoded`).
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        let encoded: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
            .collect();
        self.body = Some(encoded.join("&").into_bytes());
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self
    }

    /// Limits this request (the step's timeout still applies when shorter).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Marks a request whose method is not GET/HEAD as changing nothing on the
    /// server, so that a dry run sends it: only for a GraphQL query, or an
    /// import the gateway runs in its test mode (`test=true`) and rolls back.
    /// The caller vouches for it; nothing else may be marked.
    pub fn changes_nothing(mut self) -> Self {
        self.changes_nothing = true;
        self
    }

    /// Whether a dry run may send this request: GET, HEAD, or marked [`Self::changes_nothing`].
    pub fn is_read_only(&self) -> bool {
        self.changes_nothing || matches!(self.method, Method::GET | Method::HEAD)
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request in words, `POST https://host/path`, without any credentials in the URL.
    pub fn describe(&self) -> String {
        let mut url = self.url.clone();
        // Clearing credentials cannot fail on http(s) URLs with a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        format!("{} {url}", self.method)
    }

    /// `host:port` of the URL.
    fn address(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }
}

/// Whether a header carries credentials (kept out of debug output).
fn is_sensitive(name: &HeaderName) -> bool {
    name == header::AUTHORIZATION
        || name == header::PROXY_AUTHORIZATION
        || name.as_str().contains("token")
        || name.as_str().contains("apikey")
        || name.as_str().contains("api-key")
}

/// Encodes a form field (`application/x-www-form-urlencoded`).
fn form_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                encoded.push(char::from(byte));
            }
            b' ' => encoded.push('+'),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

/// A received response, body read in full.
#[derive(Debug, Clone)]
pub struct WebResponse {
    /// The request it answers, in words (`GET https://...`).
    pub request: String,
    /// The status code.
    pub status: u16,
    /// Headers by lower-case name; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as received.
    pub body: Vec<u8>,
    /// Time from sending to the end of the body.
    pub elapsed: Duration,
}

impl WebResponse {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        serde_json::from_slice(&self.body).ok()
    }

    /// Fails unless the status is expected; the error quotes the start of the body.
    pub fn expect_status(&self, expected: &ExpectedStatus) -> Result<(), WebError> {
        if expected.accepts(self.status) {
            return Ok(());
        }
        if let (300..=399, Some(location)) = (self.status, self.headers.get("location")) {
            return Err(WebError::RedirectNotFollowed {
                what: self.request.clone(),
                status: self.status,
                location: location.clone(),
            });
        }
        Err(WebError::UnexpectedStatus {
            what: self.request.clone(),
            status: self.status,
            expected: expected.describe(),
            body: truncate(&self.text(), QUOTED_BODY_BYTES),
        })
    }
}

/// `text` cut to at most `limit` bytes on a character boundary, marked when cut.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // The cut mark lets the run's masker hide a secret cut short here.
    format!(
        "{}{} ({} bytes in all)",
        &text[..end],
        runsheet_engine::run::mask::CUT_MARK,
        text.len()
    )
}

/// The OAuth 2.0 client-credentials grant a token is requested with.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// Token endpoint URL.
    pub token_url: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Scope, space-separated.
    pub scope: Option<String>,
}

/// The run's HTTP clients, one per TLS configuration.
#[derive(Debug, Default)]
struct ClientCache {
    clients: std::sync::Mutex<HashMap<[u8; 32], reqwest::Client>>,
}

/// A token and when it stops being valid.
#[derive(Debug, Clone)]
struct CachedToken {
    access_token: String,
    expires_at: Option<Instant>,
}

/// What a token is cached by: token URL, client id and scope.
type GrantKey = (String, String, Option<String>);

/// The run's OAuth 2.0 tokens, by grant.
#[derive(Debug, Default)]
struct TokenCache {
    tokens: tokio::sync::Mutex<HashMap<GrantKey, CachedToken>>,
}

/// An HTTP client for one step: its TLS settings, timeout and dry-run guard.
#[derive(Debug, Clone)]
pub struct WebClient {
    client: reqwest::Client,
    tls: TlsMaterial,
    dry_run: bool,
    step_timeout: Option<Duration>,
    resources: Arc<Resources>,
}

impl WebClient {
    /// A client for the step in `context`, with these TLS settings (files relative to its base_dir).
    pub async fn for_step(
        context: &StepContext,
        tls: Option<&TlsSettings>,
    ) -> Result<Self, WebError> {
        let material = TlsMaterial::load(tls, &context.base_dir).await?;
        let client = cached_client(&context.resources, &material)?;
        Ok(Self {
            client,
            tls: material,
            dry_run: context.dry_run,
            step_timeout: context.timeout,
            resources: Arc::clone(&context.resources),
        })
    }

    /// Whether certificate verification is off (`insecure: true`): the caller announces it.
    pub fn is_insecure(&self) -> bool {
        self.tls.is_insecure()
    }

    /// Whether this client refuses writes (a dry run).
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Sends the request and reads the response; in a dry run only GET, HEAD and
    /// requests marked [`WebRequest::changes_nothing`] are sent.
    pub async fn send(&self, request: WebRequest) -> Result<WebResponse, WebError> {
        self.refuse_writes_in_dry_run(&request)?;
        execute(&self.client, request, self.step_timeout).await
    }

    /// The dry-run guard: only GET, HEAD and requests marked as changing nothing pass.
    fn refuse_writes_in_dry_run(&self, request: &WebRequest) -> Result<(), WebError> {
        if self.dry_run && !request.is_read_only() {
            return Err(WebError::DryRunWrite {
                what: request.describe(),
            });
        }
        Ok(())
    }

    /// A bearer token for the grant, fetched once per run and reused until it expires.
    ///
    /// The token request is a POST and is sent even in a dry run: it changes no
    /// gateway state, and it is the only write this client ever sends unguarded.
    pub async fn oauth2_token(&self, grant: &ClientCredentials) -> Result<String, WebError> {
        let cache = self.resources.get_or_init(TokenCache::default);
        let mut tokens = cache.tokens.lock().await;
        let key = (
            grant.token_url.clone(),
            grant.client_id.clone(),
            grant.scope.clone(),
        );
        if let Some(cached) = tokens.get(&key)
            && cached
                .expires_at
                .is_none_or(|expires_at| Instant::now() + TOKEN_EXPIRY_MARGIN < expires_at)
        {
            return Ok(cached.access_token.clone());
        }
        let token = self.fetch_token(grant).await?;
        let access_token = token.access_token.clone();
        tokens.insert(key, token);
        Ok(access_token)
    }

    /// Asks the token endpoint for a token (client_secret_basic, form-encoded grant).
    async fn fetch_token(&self, grant: &ClientCredentials) -> Result<CachedToken, WebError> {
        let failed = |reason: String| WebError::Token {
            token_url: grant.token_url.clone(),
            reason,
        };
        let mut fields = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &grant.scope {
            fields.push(("scope", scope.as_str()));
        }
        let request = WebRequest::new(Method::POST, &grant.token_url)?
            .basic(
                &form_encode(&grant.client_id),
                &form_encode(&grant.client_secret),
            )?
            .header(header::ACCEPT.as_str(), "application/json")?
            .form(&fields);
        // The token endpoint is another host: the server-name override does not apply.
        let material = self.tls.without_server_name();
        let client = cached_client(&self.resources, &material)?;
        let sent_at = Instant::now();
        let response = execute(&client, request, self.step_timeout).await?;
        response.expect_status(&ExpectedStatus::Success)?;
        let Some(body) = response.json() else {
            return Err(failed("the response is not JSON".to_owned()));
        };
        let Some(access_token) = body.get("access_token").and_then(|v| v.as_str()) else {
            return Err(failed("the response has no `access_token`".to_owned()));
        };
        let expires_at = body
            .get("expires_in")
            .and_then(serde_json::Value::as_u64)
            .map(|seconds| sent_at + Duration::from_secs(seconds));
        Ok(CachedToken {
            access_token: access_token.to_owned(),
            expires_at,
        })
    }
}

/// The run's client for this TLS configuration, built on first use.
fn cached_client(
    resources: &Resources,
    material: &TlsMaterial,
) -> Result<reqwest::Client, WebError> {
    let cache = resources.get_or_init(ClientCache::default);
    let key = material.fingerprint();
    let mut clients = match cache.clients.lock() {
        Ok(clients) => clients,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    let client = build_client(material)?;
    clients.insert(key, client.clone());
    Ok(client)
}

/// A reqwest client with this TLS configuration.
fn build_client(material: &TlsMaterial) -> Result<reqwest::Client, WebError> {
    let mut tls = material.client_config()?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(redirect_policy())
        .user_agent(concat!("runsheet/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| WebError::Client {
            reason: error_chain(&error),
        })
}

/// The most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// Redirects are followed only within the request's own origin (scheme, host
/// and port), at most [`MAX_REDIRECTS`] of them. A redirect elsewhere is not
/// followed: its 3xx answer is the response, so an `Authorization`,
/// `Kong-Admin-Token` or API-key header never reaches another host (reqwest's
/// default policy follows it and strips only the standard credential headers).
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| same_origin(first, attempt.url()));
        if !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// Whether two URLs share scheme, host and port.
fn same_origin(first: &Url, second: &Url) -> bool {
    first.scheme() == second.scheme()
        && first.host_str() == second.host_str()
        && first.port_or_known_default() == second.port_or_known_default()
}

/// Sends `request` with `client` and reads the whole response: no guard here.
async fn execute(
    client: &reqwest::Client,
    request: WebRequest,
    step_timeout: Option<Duration>,
) -> Result<WebResponse, WebError> {
    let what = request.describe();
    // The request's own limit, the step's, or the default, whichever is shortest.
    let timeout = [request.timeout, step_timeout]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut outgoing = reqwest::Request::new(request.method.clone(), request.url.clone());
    *outgoing.headers_mut() = request.headers.clone();
    *outgoing.timeout_mut() = Some(timeout);
    if let Some(body) = &request.body {
        *outgoing.body_mut() = Some(body.clone().into());
    }
    let started = Instant::now();
    let mut response = client
        .execute(outgoing)
        .await
        .map_err(|error| classify(&error, &request, timeout))?;
    let status = response.status().as_u16();
    let headers = header_map(response.headers());
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(WebError::BodyTooLarge {
                        what,
                        limit: MAX_BODY_BYTES,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(error) => return Err(classify(&error, &request, timeout)),
        }
    }
    Ok(WebResponse {
        request: what,
        status,
        headers,
        body,
        elapsed: started.elapsed(),
    })
}

/// Response headers by lower-case name, repeated ones joined.
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        map.entry(name.as_str().to_ascii_lowercase())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    map
}

/// The operator's reading of a reqwest failure.
fn classify(error: &reqwest::Error, request: &WebRequest, timeout: Duration) -> WebError {
    let what = request.describe();
    if let Some(tls) = find_tls_error(error) {
        return WebError::Tls {
            what,
            reason: describe_tls_error(tls),
        };
    }
    if error.is_timeout() && !error.is_connect() {
        return WebError::Timeout {
            what,
            after: timeout,
        };
    }
    if has_io_kind(error, std::io::ErrorKind::ConnectionRefused) {
        return WebError::ConnectionRefused {
            what,
            address: request.address(),
        };
    }
    let chain = causes(error);
    if chain.iter().any(|cause| cause == "dns error") {
        return WebError::Dns {
            what,
            host: request.url.host_str().unwrap_or_default().to_owned(),
            reason: chain.last().cloned().unwrap_or_default(),
        };
    }
    if error.is_connect() {
        return WebError::Connect {
            what,
            address: request.address(),
            reason: chain.last().cloned().unwrap_or_default(),
        };
    }
    if chain.iter().any(|cause| cause.contains("connection was not ready")) {
        // The new connection closed before the request was sent: nothing was sent.
        let reason = if request.url.scheme() == "https" {
            "the connection closed right after the TLS handshake, before the request was sent: \
             the server refused the client certificate, or closed for another reason \
             (TLS 1.3 servers check a client certificate after the handshake)"
        } else {
            "the connection closed before the request was sent"
        };
        return WebError::Connect {
            what,
            address: request.address(),
            reason: reason.to_owned(),
        };
    }
    WebError::Transport {
        what,
        reason: chain.join(": "),
    }
}

/// The messages of an error's sources (not the error itself), outermost first.
fn causes(error: &reqwest::Error) -> Vec<String> {
    error_sources(error)
        .skip(1)
        .map(|cause| cause.to_string())
        .collect()
}

/// The rustls error somewhere in the chain.
fn find_tls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    error_sources(error).find_map(|cause| cause.downcast_ref::<rustls::Error>())
}

/// Whether an `io::Error` of this kind is somewhere in the chain.
fn has_io_kind(error: &(dyn std::error::Error + 'static), kind: std::io::ErrorKind) -> bool {
    error_sources(error).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
    })
}

/// An error and its causes, outermost first. Unlike `source()`, this also
/// visits the error an `io::Error` wraps (whose `source()` skips it).
fn error_sources<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(
        Some(error),
        |&cause: &&'a (dyn std::error::Error + 'static)| match cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        },
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use runsheet_engine::model::TlsSettings;
    use runsheet_engine::{ActionError, StepContext};
    use serde_json::json;

    use super::*;
    use crate::test_support::{Pki, Reply, TestResult, TestServer};

    fn context(dry_run: bool) -> StepContext {
        StepContext::detached("step", dry_run)
    }

    fn context_in(dir: &std::path::Path) -> StepContext {
        let mut context = context(false);
        context.base_dir = dir.to_path_buf();
        context
    }

    fn ca_only() -> TlsSettings {
        TlsSettings {
            ca: Some("ca.pem".to_owned()),
            ..TlsSettings::default()
        }
    }

    async fn send(
        context: &StepContext,
        tls: Option<&TlsSettings>,
        request: WebRequest,
    ) -> Result<WebResponse, WebError> {
        WebClient::for_step(context, tls).await?.send(request).await
    }

    #[tokio::test]
    async fn reads_status_headers_and_json() -> TestResult {
        let server = TestServer::http(|_| Reply::json(200, json!({"data": [{"id": 7}]}))).await?;
        let response = send(&context(false), None, WebRequest::get(&server.url("/x"))?).await?;
        assert_eq!(response.status, 200);
        assert_eq!(response.json(), Some(json!({"data": [{"id": 7}]})));
        assert_eq!(
            response.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        assert_eq!(
            response.headers.get("x-test").map(String::as_str),
            Some("a, b")
        );
        assert_eq!(server.requests()[0].path, "/x");
        Ok(())
    }

    #[tokio::test]
    async fn dry_run_sends_reads_and_refuses_every_write() -> TestResult {
        let server = TestServer::http(|_| Reply::text(200, "ok")).await?;
        let client = WebClient::for_step(&context(true), None).await?;
        for method in [
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ] {
            let request = WebRequest::new(method.clone(), &server.url("/services"))?
                .json(&json!({"name": "a"}));
            let refused = client.send(request).await;
            assert!(
                matches!(&refused, Err(WebError::DryRunWrite { what }) if *what == format!("{method} {}", server.url("/services"))),
                "{method}: {refused:?}"
            );
        }
        client
            .send(WebRequest::get(&server.url("/services"))?)
            .await?;
        client
            .send(WebRequest::new(Method::HEAD, &server.url("/services"))?)
            .await?;
        let methods: Vec<String> = server.requests().into_iter().map(|r| r.method).collect();
        assert_eq!(methods, ["GET", "HEAD"]);
        Ok(())
    }

    #[tokio::test]
    async fn dry_run_sends_a_post_marked_as_changing_nothing_and_no_other() -> TestResult {
        let server = TestServer::http(|_| Reply::json(200, json!({"data": {}}))).await?;
        let client = WebClient::for_step(&context(true), None).await?;
        let query = WebRequest::new(Method::POST, &server.url("/graphman"))?
            .json(&json!({"query": "{ nodeInfo { name } }"}))
            .changes_nothing();
        assert!(query.is_read_only());
        client.send(query).await?;
        let unmarked = WebRequest::new(Method::POST, &server.url("/graphman"))?
            .json(&json!({"query": "mutation { x }"}));
        assert!(!unmarked.is_read_only());
        let refused = client.send(unmarked).await;
        assert!(matches!(refused, Err(WebError::DryRunWrite { .. })), "{refused:?}");
        let methods: Vec<String> = server.requests().into_iter().map(|r| r.method).collect();
        assert_eq!(methods, ["POST"]);
        Ok(())
    }

    #[tokio::test]
    async fn dry_run_refusal_becomes_the_action_error() -> TestResult {
        let client = WebClient::for_step(&context(true), None).await?;
        let refused = client
            .send(WebRequest::new(
                Method::DELETE,
                "http://user:pw@127.0.0.1:9/x",
            )?)
            .await
            .map_err(ActionError::from);
        assert!(
            matches!(&refused, Err(ActionError::DryRunWrite { what }) if what == "DELETE http://127.0.0.1:9/x"),
            "{refused:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn oauth2_token_is_fetched_once_per_run_even_in_dry_run() -> TestResult {
        let server = TestServer::http(|_| {
            Reply::json(
                200,
                json!({"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}),
            )
        })
        .await?;
        let grant = ClientCredentials {
            token_url: server.url("/oauth/token"),
            client_id: "runsheet".to_owned(),
            client_secret: "s3cret&x".to_owned(),
            scope: Some("admin read".to_owned()),
        };
        let context = context(true);
        let first = WebClient::for_step(&context, None)
            .await?
            .oauth2_token(&grant)
            .await?;
        let second = WebClient::for_step(&context, None)
            .await?
            .oauth2_token(&grant)
            .await?;
        assert_eq!((first.as_str(), second.as_str()), ("tok-1", "tok-1"));
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        let request = &requests[0];
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.body,
            "grant_type=client_credentials&scope=admin+read"
        );
        assert_eq!(
            request.headers.get("content-type").map(String::as_str),
            Some("application/x-www-form-urlencoded")
        );
        let basic = format!("Basic {}", STANDARD.encode("runsheet:s3cret%26x"));
        assert_eq!(request.headers.get("authorization"), Some(&basic));
        // Another run fetches its own token.
        WebClient::for_step(&StepContext::detached("other", false), None)
            .await?
            .oauth2_token(&grant)
            .await?;
        assert_eq!(server.count("POST"), 2);
        Ok(())
    }

    #[tokio::test]
    async fn oauth2_token_errors_name_the_endpoint() -> TestResult {
        let server =
            TestServer::http(|_| Reply::json(200, json!({"token_type": "Bearer"}))).await?;
        let grant = ClientCredentials {
            token_url: server.url("/token"),
            client_id: "c".to_owned(),
            client_secret: "s".to_owned(),
            scope: None,
        };
        let error = WebClient::for_step(&context(false), None)
            .await?
            .oauth2_token(&grant)
            .await;
        let message = error.map_err(|e| error_chain(&e)).err().unwrap_or_default();
        assert!(
            message.contains("/token") && message.contains("no `access_token`"),
            "{message}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn unexpected_status_quotes_the_body() -> TestResult {
        let long = "x".repeat(5000);
        let server =
            TestServer::http(move |_| Reply::text(503, &format!("upstream down {long}"))).await?;
        let response = send(&context(false), None, WebRequest::get(&server.url("/h"))?).await?;
        let error = response.expect_status(&ExpectedStatus::Codes(vec![200, 204]));
        let message = error.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "GET {} answered 503, expected 200 or 204; body: upstream down",
                server.url("/h")
            )),
            "{message}"
        );
        assert!(message.ends_with("(5014 bytes in all)"), "{message}");
        assert!(message.len() < 1300, "{}", message.len());
        Ok(())
    }

    #[tokio::test]
    async fn trusts_the_given_ca() -> TestResult {
        let pki = Pki::new()?;
        let dir = tempfile::tempdir()?;
        pki.write(dir.path())?;
        let server =
            TestServer::https(pki.server_config(false)?, |_| Reply::text(200, "ok")).await?;
        let response = send(
            &context_in(dir.path()),
            Some(&ca_only()),
            WebRequest::get(&server.localhost_url("/"))?,
        )
        .await?;
        assert_eq!(response.text(), "ok");
        Ok(())
    }

    #[tokio::test]
    async fn refuses_an_unknown_issuer_with_a_clear_reason() -> TestResult {
        let pki = Pki::new()?;
        let server =
            TestServer::https(pki.server_config(false)?, |_| Reply::text(200, "ok")).await?;
        let outcome = send(
            &context(false),
            None,
            WebRequest::get(&server.localhost_url("/"))?,
        )
        .await;
        let message = outcome.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(
            message.contains("certificate verification failed: unknown issuer"),
            "{message}"
        );
        assert!(server.requests().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn refuses_an_expired_certificate_saying_when_it_expired() -> TestResult {
        let pki = Pki::new()?;
        let dir = tempfile::tempdir()?;
        pki.write(dir.path())?;
        let expired = pki.server_config_for(&["localhost"], (2020, 1, 1))?;
        let server = TestServer::https(expired, |_| Reply::text(200, "ok")).await?;
        let outcome = send(
            &context_in(dir.path()),
            Some(&ca_only()),
            WebRequest::get(&server.localhost_url("/"))?,
        )
        .await;
        let message = outcome.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(
            message.contains(
                "certificate verification failed: expired: not valid after 2020-01-01T00:00:00Z"
            ),
            "{message}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn insecure_skips_verification() -> TestResult {
        let pki = Pki::new()?;
        let server =
            TestServer::https(pki.server_config(false)?, |_| Reply::text(200, "ok")).await?;
        let insecure = TlsSettings {
            insecure: true,
            ..TlsSettings::default()
        };
        let client = WebClient::for_step(&context(false), Some(&insecure)).await?;
        assert!(client.is_insecure());
        let response = client.send(WebRequest::get(&server.url("/"))?).await?;
        assert_eq!(response.status, 200);
        Ok(())
    }

    #[tokio::test]
    async fn server_name_replaces_the_host_in_verification() -> TestResult {
        let pki = Pki::new()?;
        let dir = tempfile::tempdir()?;
        pki.write(dir.path())?;
        let server =
            TestServer::https(pki.server_config(false)?, |_| Reply::text(200, "ok")).await?;
        let context = context_in(dir.path());
        let by_address = server.url("/");
        let mismatch = send(&context, Some(&ca_only()), WebRequest::get(&by_address)?).await;
        let message = mismatch
            .map_err(|e| e.to_string())
            .err()
            .unwrap_or_default();
        assert!(
            message
                .contains("certificate verification failed: name mismatch: expected `127.0.0.1`"),
            "{message}"
        );
        let named = TlsSettings {
            server_name: Some("localhost".to_owned()),
            ..ca_only()
        };
        let response = send(&context, Some(&named), WebRequest::get(&by_address)?).await?;
        assert_eq!(response.status, 200);
        let wrong = TlsSettings {
            server_name: Some("kong.example".to_owned()),
            ..ca_only()
        };
        let outcome = send(&context, Some(&wrong), WebRequest::get(&by_address)?).await;
        let message = outcome.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(
            message.ends_with("expected `kong.example`, the certificate is valid for localhost"),
            "{message}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn presents_the_client_certificate() -> TestResult {
        let pki = Pki::new()?;
        let dir = tempfile::tempdir()?;
        pki.write(dir.path())?;
        let server =
            TestServer::https(pki.server_config(true)?, |_| Reply::text(200, "ok")).await?;
        let context = context_in(dir.path());
        let mtls = TlsSettings {
            client_cert: Some("client.pem".to_owned()),
            client_key: Some("client.key".to_owned()),
            ..ca_only()
        };
        send(
            &context,
            Some(&mtls),
            WebRequest::get(&server.localhost_url("/"))?,
        )
        .await?;
        let subjects: Vec<Option<String>> = server
            .requests()
            .into_iter()
            .map(|r| r.client_subject)
            .collect();
        assert_eq!(subjects, [Some("CN=deploy-bot".to_owned())]);

        let outcome = send(
            &context,
            Some(&ca_only()),
            WebRequest::get(&server.localhost_url("/"))?,
        )
        .await;
        let message = outcome.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(message.contains("client certificate"), "{message}");
        Ok(())
    }

    #[tokio::test]
    async fn half_an_identity_is_refused() -> TestResult {
        let settings = TlsSettings {
            client_cert: Some("client.pem".to_owned()),
            ..TlsSettings::default()
        };
        let outcome = WebClient::for_step(&context(false), Some(&settings)).await;
        let message = outcome
            .map_err(|e| error_chain(&e))
            .err()
            .unwrap_or_default();
        assert!(
            message.contains("tls.client_cert needs tls.client_key"),
            "{message}"
        );
        let missing = WebClient::for_step(&context(false), Some(&ca_only())).await;
        let message = missing
            .map_err(|e| error_chain(&e))
            .err()
            .unwrap_or_default();
        assert!(
            message.contains("failed to read tls.ca `./ca.pem`"),
            "{message}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn names_the_refusing_address() -> TestResult {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        drop(listener);
        let outcome = send(
            &context(false),
            None,
            WebRequest::get(&format!("http://127.0.0.1:{port}/status"))?,
        )
        .await;
        let message = outcome.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert_eq!(
            message,
            format!("GET http://127.0.0.1:{port}/status: connection refused by 127.0.0.1:{port}")
        );
        Ok(())
    }

    #[tokio::test]
    async fn reports_unresolvable_hosts() -> TestResult {
        let outcome = send(
            &context(false),
            None,
            WebRequest::get("http://no-such-host.invalid/")?,
        )
        .await;
        assert!(
            matches!(&outcome, Err(WebError::Dns { host, .. }) if host == "no-such-host.invalid"),
            "{outcome:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn times_out_on_a_silent_server() -> TestResult {
        let server = TestServer::http(|_| Reply {
            delay: Some(Duration::from_secs(5)),
            ..Reply::text(200, "late")
        })
        .await?;
        let mut context = context(false);
        context.timeout = Some(Duration::from_millis(300));
        let request = WebRequest::get(&server.url("/slow"))?.timeout(Duration::from_secs(60));
        let outcome = send(&context, None, request).await;
        let message = outcome.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert_eq!(
            message,
            format!("GET {}: no response within 300ms", server.url("/slow"))
        );
        Ok(())
    }

    #[test]
    fn refuses_urls_that_are_not_http() {
        assert!(WebRequest::get("ftp://x/").is_err());
        assert!(WebRequest::get("/relative").is_err());
        assert!(WebRequest::get("https://x/").is_ok());
    }

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate("héllo", 2), "h… (6 bytes in all)");
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn redirects_are_followed_only_within_the_origin() -> TestResult {
        let url = |text: &str| Url::parse(text);
        let first = url("http://127.0.0.1:8001/services")?;
        assert!(same_origin(&first, &url("http://127.0.0.1:8001/other")?));
        assert!(same_origin(&url("https://kong/")?, &url("https://kong:443/x")?));
        assert!(!same_origin(&first, &url("http://127.0.0.1:8002/services")?));
        assert!(!same_origin(&first, &url("http://localhost:8001/services")?));
        assert!(!same_origin(&first, &url("https://127.0.0.1:8001/services")?));
        Ok(())
    }

    #[test]
    fn a_redirect_elsewhere_names_its_target() {
        let response = WebResponse {
            request: "GET http://127.0.0.1:1/services".to_owned(),
            status: 302,
            headers: BTreeMap::from([("location".to_owned(), "http://evil:2/".to_owned())]),
            body: Vec::new(),
            elapsed: Duration::ZERO,
        };
        let message = response
            .expect_status(&ExpectedStatus::Success)
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(message.contains("302, a redirect to http://evil:2/, which was not followed"), "{message}");
        assert!(response.expect_status(&ExpectedStatus::Codes(vec![302])).is_ok());
    }
}
