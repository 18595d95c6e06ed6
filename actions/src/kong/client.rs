//! [`KongClient`]: a typed async client over Kong's Admin API
//! (reference/kong-admin-api.md), built on the run's [`WebClient`] (TLS settings,
//! timeouts and the dry-run guard that refuses every write in a dry run).
//!
//! It adds what every Kong action needs: the workspace prefix, the RBAC token
//! header, pagination followed to the end, Kong's error bodies as
//! [`KongError::Api`] (with `code`, `name`, `message`, `fields`), retries of
//! idempotent requests (GET, PUT, DELETE) on connection errors and 5xx, and the
//! node's version from `GET /` ([`KongVersion`], [`NodeInfo`]).

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::web::{
    ExpectedStatus, Method, WebClient, WebError, WebRequest, WebResponse, error_chain, truncate,
};
use runsheet_engine::ActionError;

/// The RBAC token header Kong reads unless `rbac_auth_header` says otherwise.
pub const DEFAULT_TOKEN_HEADER: &str = "Kong-Admin-Token";

/// The most pages [`KongClient::list`] follows (100 000 entities at Kong's default page size).
const MAX_PAGES: usize = 1000;

/// How much of a non-JSON body an error quotes.
const QUOTED_BODY_BYTES: usize = 512;

/// Why an Admin API call failed.
#[derive(Debug, thiserror::Error)]
pub enum KongError {
    /// Kong answered with an error status; `message` is Kong's own words.
    #[error("{message} ({method} {url} answered {status})")]
    Api {
        /// The request method.
        method: String,
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Kong's error code (`5` unique violation, `2` schema violation...), when it gave one.
        code: Option<i64>,
        /// Kong's error name (`unique constraint violation`), when it gave one.
        name: Option<String>,
        /// Kong's message, as Kong said it (or the start of the body when it is not Kong's JSON).
        message: String,
        /// Kong's `fields` (or `options`): what is wrong, field by field, when it gave them.
        fields: Option<Value>,
    },
    /// The answer was a success but not the JSON Kong sends.
    #[error("{method} {url}: the answer is not JSON: {body}")]
    NotJson {
        /// The request method.
        method: String,
        /// The request URL.
        url: String,
        /// The start of the body.
        body: String,
    },
    /// A write was sent and its answer never came (none in time, or the connection
    /// closed first): Kong may have applied it, or may still.
    #[error("{method} {url}: {why}; Kong may still apply this write")]
    Unanswered {
        /// The request method.
        method: String,
        /// The request URL.
        url: String,
        /// Why no answer came (`no answer within 5s`).
        why: String,
    },
    /// The request could not be sent or answered (or a dry run refused it).
    #[error(transparent)]
    Web(#[from] WebError),
    /// A path or header from the arguments or the environment cannot be used.
    #[error("{0}")]
    Invalid(String),
}

impl KongError {
    /// The HTTP status Kong answered, for [`KongError::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            KongError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether Kong answered 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether this is a write whose answer never came (its outcome unknown).
    pub fn is_unanswered(&self) -> bool {
        matches!(self, KongError::Unanswered { .. })
    }

    /// Whether a retry of an idempotent request may succeed: a connection that failed
    /// or closed, or a 5xx.
    fn is_transient(&self) -> bool {
        match self {
            KongError::Api { status, .. } => *status >= 500,
            KongError::Web(
                WebError::ConnectionRefused { .. }
                | WebError::Connect { .. }
                | WebError::Transport { .. },
            ) => true,
            _ => false,
        }
    }
}

impl From<KongError> for ActionError {
    fn from(error: KongError) -> Self {
        match error {
            KongError::Web(web) => ActionError::from(web),
            KongError::Unanswered { .. } => {
                // Nothing says whether the write took effect: a person must look.
                let left = format!("{error} (check it before resuming)");
                ActionError::partially_applied(error.to_string(), vec![left])
            }
            other => ActionError::failed(error_chain(&other)),
        }
    }
}

/// How often and how soon an idempotent request is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1: no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled before each further one.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three tries, 250 ms then 500 ms apart.
    fn default() -> Self {
        Self {
            attempts: 3,
            first_delay: Duration::from_millis(250),
        }
    }
}

/// A Kong version: three parts (`3.9.3`), or four for Enterprise (`3.10.0.2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KongVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
    /// Enterprise build number, the fourth part (0 when absent).
    pub build: u32,
}

impl KongVersion {
    /// A three-part version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
            build: 0,
        }
    }

    /// Reads `3.9.3`, `3.10.0.2`, `3.4.3.12-enterprise-edition` or `3.9.0-rc.1`
    /// (a suffix after `-` or `+` is ignored); `None` when it is not a version.
    pub fn parse(text: &str) -> Option<Self> {
        let core = text
            .trim()
            .split(['-', '+', ' '])
            .next()
            .unwrap_or_default();
        let parts: Vec<u32> = core
            .split('.')
            .map(|part| part.parse().ok())
            .collect::<Option<_>>()?;
        match parts.as_slice() {
            [major, minor, patch] => Some(Self::new(*major, *minor, *patch)),
            [major, minor, patch, build] => Some(Self {
                build: *build,
                ..Self::new(*major, *minor, *patch)
            }),
            _ => None,
        }
    }

    /// Whether the Status API serves `/status/ready` (Kong 3.3 and later).
    pub fn has_status_ready(&self) -> bool {
        *self >= Self::new(3, 3, 0)
    }

    /// Whether target health is forced with PUT (Kong 3.0 and later; 2.x used POST).
    pub fn forces_health_with_put(&self) -> bool {
        self.major >= 3
    }
}

impl fmt::Display for KongVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if self.build != 0 {
            write!(f, ".{}", self.build)?;
        }
        Ok(())
    }
}

/// What `GET /` says about the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The version as Kong wrote it.
    pub version_text: String,
    /// The version, parsed.
    pub version: KongVersion,
    /// `community` or `enterprise` (from `edition`, else from a four-part version).
    pub edition: String,
    /// The node's host name.
    pub hostname: String,
    /// The node's id.
    pub node_id: String,
    /// `traditional`, `control_plane` or `data_plane`.
    pub role: String,
    /// `postgres`, or `off` for DB-less nodes.
    pub database: String,
}

impl NodeInfo {
    /// Reads the body of `GET /`; `None` when it has no readable version.
    pub fn from_root(body: &Value) -> Option<Self> {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let version_text = text(body.get("version"))?;
        let version = KongVersion::parse(&version_text)?;
        let edition = text(body.get("edition")).unwrap_or_else(|| {
            if version.build != 0 || version_text.contains("enterprise") {
                "enterprise".to_owned()
            } else {
                "community".to_owned()
            }
        });
        let configuration = body.get("configuration");
        let setting = |key: &str| text(configuration.and_then(|c| c.get(key)));
        Some(Self {
            version_text,
            version,
            edition,
            hostname: text(body.get("hostname")).unwrap_or_default(),
            node_id: text(body.get("node_id")).unwrap_or_default(),
            role: setting("role").unwrap_or_else(|| "traditional".to_owned()),
            database: setting("database").unwrap_or_else(|| "postgres".to_owned()),
        })
    }
}

/// A typed client over one Kong node's Admin API.
#[derive(Debug, Clone)]
pub struct KongClient {
    web: WebClient,
    base_url: String,
    workspace: Option<String>,
    token: Option<(String, String)>,
    retry: RetryPolicy,
    request_timeout: Option<Duration>,
}

impl KongClient {
    /// A client for the Admin API at `admin_url` (`https://kong-admin:8444`), sending through `web`.
    pub fn new(web: WebClient, admin_url: &str) -> Self {
        Self {
            web,
            base_url: admin_url.trim_end_matches('/').to_owned(),
            workspace: None,
            token: None,
            retry: RetryPolicy::default(),
            request_timeout: None,
        }
    }

    /// Waits at most `timeout` for each answer (the step's timeout still applies when shorter).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Prefixes entity paths with this workspace (Enterprise); `default` needs no prefix.
    pub fn workspace(mut self, workspace: &str) -> Self {
        self.workspace = (!workspace.is_empty()).then(|| workspace.to_owned());
        self
    }

    /// Sends this RBAC token in header `header` on every request.
    pub fn token(mut self, header: &str, token: &str) -> Self {
        self.token = Some((header.to_owned(), token.to_owned()));
        self
    }

    /// Retries idempotent requests with this policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long one answer is waited for (the environment's `request_timeout`, or 30s).
    pub fn answer_wait(&self) -> Duration {
        self.request_timeout.unwrap_or(crate::web::DEFAULT_TIMEOUT)
    }

    /// After a write went unanswered: reads it with `landed` every 250 ms, for as long as
    /// one answer is waited for, until it shows; what the read found then.
    pub async fn look_again<T, F, Fut>(&self, landed: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        crate::web::look_again(self.answer_wait(), landed).await
    }

    /// The Admin API base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Whether certificate verification is off (`tls.insecure: true`).
    pub fn is_insecure(&self) -> bool {
        self.web.is_insecure()
    }

    /// `GET /`: the node's version, edition and role (never workspace-prefixed).
    pub async fn node(&self) -> Result<NodeInfo, KongError> {
        let url = format!("{}/", self.base_url);
        let body = self.call(Method::GET, &url, None).await?;
        NodeInfo::from_root(&body).ok_or_else(|| KongError::NotJson {
            method: "GET".to_owned(),
            url,
            body: "no readable `version` in the node information".to_owned(),
        })
    }

    /// `GET /status` (never workspace-prefixed).
    pub async fn status(&self) -> Result<Value, KongError> {
        let url = format!("{}/status", self.base_url);
        self.call(Method::GET, &url, None).await
    }

    /// GET an entity path (`/upstreams/core`), workspace-prefixed.
    pub async fn get(&self, path: &str) -> Result<Value, KongError> {
        self.call(Method::GET, &self.url(path), None).await
    }

    /// GET an entity path; `None` when Kong answers 404.
    pub async fn find(&self, path: &str) -> Result<Option<Value>, KongError> {
        match self.get(path).await {
            Ok(entity) => Ok(Some(entity)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every entity of a collection (`/upstreams/core/targets`), following `next` to the end.
    pub async fn list(&self, path: &str) -> Result<Vec<Value>, KongError> {
        let mut items = Vec::new();
        let mut url = self.url(path);
        for _ in 0..MAX_PAGES {
            let page = self.call(Method::GET, &url, None).await?;
            if let Some(data) = page.get("data").and_then(Value::as_array) {
                items.extend(data.iter().cloned());
            }
            match page.get("next").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => url = self.next_url(next),
                _ => return Ok(items),
            }
        }
        Err(KongError::Invalid(format!(
            "GET {}: more than {MAX_PAGES} pages; stopped following `next`",
            self.url(path)
        )))
    }

    /// POST `body` to a collection; the created entity. Never retried.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, KongError> {
        self.call(Method::POST, &self.url(path), Some(body)).await
    }

    /// PUT `body` at an entity path; the entity Kong stored.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, KongError> {
        self.call(Method::PUT, &self.url(path), Some(body)).await
    }

    /// PATCH an entity with `body`; the entity Kong stored. Never retried.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, KongError> {
        self.call(Method::PATCH, &self.url(path), Some(body)).await
    }

    /// DELETE an entity path.
    pub async fn delete(&self, path: &str) -> Result<(), KongError> {
        self.call(Method::DELETE, &self.url(path), None)
            .await
            .map(|_| ())
    }

    /// The full URL of an entity path, with the workspace prefix.
    fn url(&self, path: &str) -> String {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        match &self.workspace {
            Some(workspace) => format!("{}/{}{path}", self.base_url, segment(workspace)),
            None => format!("{}{path}", self.base_url),
        }
    }

    /// The URL of a `next` path; Kong's `next` already carries the workspace on EE.
    fn next_url(&self, next: &str) -> String {
        if next.starts_with("http://") || next.starts_with("https://") {
            return next.to_owned();
        }
        match &self.workspace {
            Some(workspace) if next.starts_with(&format!("/{}/", segment(workspace))) => {
                format!("{}{next}", self.base_url)
            }
            _ => self.url(next),
        }
    }

    /// Sends one call, retrying idempotent methods on transient failures; the JSON body
    /// (`null` for an empty one).
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, KongError> {
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE);
        let attempts = if idempotent {
            self.retry.attempts.max(1)
        } else {
            1
        };
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        // Why an earlier try of this write lost its connection after sending: Kong may
        // have applied it even if a later try could not connect at all.
        let mut cut: Option<String> = None;
        loop {
            match self.send_once(method.clone(), url, body).await {
                Err(error) if attempt < attempts && error.is_transient() => {
                    tracing::debug!(%method, url, attempt, error = %error, "retrying a Kong Admin API call");
                    if let KongError::Web(WebError::Transport { reason, .. }) = &error {
                        cut = Some(reason.clone());
                    }
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                outcome => return outcome.map_err(|error| cut_off(&method, url, error, cut)),
            }
        }
    }

    /// Sends one request and reads Kong's answer.
    async fn send_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, KongError> {
        let mut request = WebRequest::new(method.clone(), url)?;
        if let Some(timeout) = self.request_timeout {
            request = request.timeout(timeout);
        }
        if let Some((header, token)) = &self.token {
            request = request.header(header, token)?;
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match self.web.send(request).await {
            Ok(response) => response,
            Err(WebError::Timeout { after, .. })
                if !matches!(method, Method::GET | Method::HEAD) =>
            {
                return Err(KongError::Unanswered {
                    method: method.to_string(),
                    url: url.to_owned(),
                    why: format!("no answer within {}", crate::web::humantime(after)),
                });
            }
            Err(error) => return Err(error.into()),
        };
        read_answer(method.as_str(), url, &response)
    }
}

/// A write whose connection broke once the request was on its way, on its last try or
/// an earlier one (`cut`), as [`KongError::Unanswered`]: Kong may have applied it before
/// the answer was lost. An answer from Kong (a 4xx) stays what it is.
fn cut_off(method: &Method, url: &str, error: KongError, cut: Option<String>) -> KongError {
    if matches!(*method, Method::GET | Method::HEAD) {
        return error;
    }
    let reason = match &error {
        KongError::Web(WebError::Transport { reason, .. }) => reason.clone(),
        _ if error.is_transient() => match cut {
            Some(reason) => reason,
            None => return error,
        },
        _ => return error,
    };
    KongError::Unanswered {
        method: method.to_string(),
        url: url.to_owned(),
        why: format!("the connection closed before Kong answered ({reason})"),
    }
}

/// Kong's answer: the JSON body of a success, or [`KongError::Api`] from its error body.
fn read_answer(method: &str, url: &str, response: &WebResponse) -> Result<Value, KongError> {
    let json = response.json();
    if (200..300).contains(&response.status) {
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        return json.ok_or_else(|| KongError::NotJson {
            method: method.to_owned(),
            url: url.to_owned(),
            body: truncate(&response.text(), QUOTED_BODY_BYTES),
        });
    }
    if (300..400).contains(&response.status) && response.headers.contains_key("location") {
        // A redirect that was not followed (it leads to another host): say so.
        response.expect_status(&ExpectedStatus::Success)?;
    }
    let field = |key: &str| json.as_ref().and_then(|body| body.get(key));
    let message = field("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let text = response.text();
            if text.trim().is_empty() {
                "no message".to_owned()
            } else {
                truncate(text.trim(), QUOTED_BODY_BYTES)
            }
        });
    Err(KongError::Api {
        method: method.to_owned(),
        url: url.to_owned(),
        status: response.status,
        code: field("code").and_then(Value::as_i64),
        name: field("name").and_then(Value::as_str).map(str::to_owned),
        message,
        fields: field("fields").or_else(|| field("options")).cloned(),
    })
}

/// A value percent-encoded for one path segment (`:` and `@` stay, as Kong's own paths use them).
pub fn segment(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b'@' => {
                encoded.push(char::from(byte));
            }
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

/// Whether a path segment is a hyphenated UUID (Kong then reads it as an id, not a name).
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(index, c)| match index {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `text` with every non-empty secret value, as is or encoded for a path segment,
/// replaced by `mask`.
pub fn hide_secrets<S: AsRef<str>>(text: &str, secrets: &[S], mask: &str) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().map(AsRef::as_ref).filter(|s| !s.is_empty()) {
        text = text.replace(secret, mask);
        text = text.replace(&segment(secret), mask);
    }
    text
}

/// `error` with [`hide_secrets`] applied to its message.
pub fn hide_secrets_in<S: AsRef<str>>(
    error: ActionError,
    secrets: &[S],
    mask: &str,
) -> ActionError {
    let hide = |text: String| hide_secrets(&text, secrets, mask);
    match error {
        ActionError::Failed { message } => ActionError::failed(hide(message)),
        ActionError::InvalidArguments { action, message } => ActionError::InvalidArguments {
            action,
            message: hide(message),
        },
        ActionError::DryRunWrite { what } => ActionError::DryRunWrite { what: hide(what) },
        ActionError::PartiallyApplied {
            message,
            changes_left,
        } => ActionError::partially_applied(
            hide(message),
            changes_left.into_iter().map(hide).collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_and_four_part_versions() {
        assert_eq!(KongVersion::parse("3.9.3"), Some(KongVersion::new(3, 9, 3)));
        let enterprise = KongVersion::parse("3.10.0.2");
        assert_eq!(
            enterprise,
            Some(KongVersion {
                build: 2,
                ..KongVersion::new(3, 10, 0)
            })
        );
        assert_eq!(
            KongVersion::parse("3.4.3.12-enterprise-edition").map(|v| v.to_string()),
            Some("3.4.3.12".to_owned())
        );
        assert_eq!(
            KongVersion::parse("3.9.0-rc.1"),
            Some(KongVersion::new(3, 9, 0))
        );
        for bad in ["", "3", "3.9", "3.x.1", "3.9.3.1.1", "v3.9.3"] {
            assert_eq!(KongVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn versions_compare_numerically_with_the_build_last() -> Result<(), String> {
        let version = |text: &str| KongVersion::parse(text).ok_or(format!("not a version: {text}"));
        assert!(version("3.10.0")? > version("3.9.3")?);
        assert!(version("3.10.0.2")? > version("3.10.0.1")?);
        assert!(version("3.10.0.1")? > version("3.10.0")?);
        assert!(version("3.4.3.12")? < version("3.5.0")?);
        Ok(())
    }

    #[test]
    fn feature_checks_follow_the_version() -> Result<(), String> {
        let version = |text: &str| KongVersion::parse(text).ok_or(format!("not a version: {text}"));
        assert!(!version("3.2.2")?.has_status_ready());
        assert!(version("3.3.0")?.has_status_ready());
        assert!(version("3.4.3.12")?.has_status_ready());
        assert!(!version("2.8.4")?.forces_health_with_put());
        assert!(version("3.0.0")?.forces_health_with_put());
        Ok(())
    }

    #[test]
    fn node_info_reads_edition_role_and_database() {
        let community = NodeInfo::from_root(&serde_json::json!({
            "version": "3.9.3", "edition": "community", "hostname": "kong-1",
            "node_id": "n1", "configuration": {"role": "traditional", "database": "postgres"}
        }));
        assert_eq!(
            community.map(|n| (n.edition, n.role, n.database)),
            Some((
                "community".to_owned(),
                "traditional".to_owned(),
                "postgres".to_owned()
            ))
        );
        let enterprise = NodeInfo::from_root(&serde_json::json!({
            "version": "3.10.0.2", "configuration": {"role": "data_plane", "database": "off"}
        }));
        assert_eq!(
            enterprise.map(|n| (n.edition, n.role, n.database)),
            Some((
                "enterprise".to_owned(),
                "data_plane".to_owned(),
                "off".to_owned()
            ))
        );
        assert_eq!(
            NodeInfo::from_root(&serde_json::json!({"version": "new"})),
            None
        );
    }

    #[test]
    fn uuids_are_told_from_names() {
        assert!(is_uuid("5f1d0c4e-8a57-4b7e-9a61-0d2f6c1a9e11"));
        assert!(!is_uuid("orders"));
        assert!(!is_uuid("api.example.com"));
        assert!(!is_uuid("5f1d0c4e-8a57-4b7e-9a61-0d2f6c1a9e1"));
    }

    #[test]
    fn secrets_are_hidden_as_given_and_as_path_segments() {
        assert_eq!(
            hide_secrets(
                "key a b/c at /consumers/x/key-auth/a%20b%2Fc",
                &["a b/c", ""],
                "(secret)"
            ),
            "key (secret) at /consumers/x/key-auth/(secret)"
        );
    }

    #[test]
    fn segments_keep_host_port_and_encode_the_rest() {
        assert_eq!(segment("10.0.0.1:8000"), "10.0.0.1:8000");
        assert_eq!(segment("a b/c?"), "a%20b%2Fc%3F");
        assert_eq!(segment("[::1]:80"), "%5B::1%5D:80");
    }

    #[test]
    fn an_api_error_shows_kongs_message_method_and_url() {
        let error = KongError::Api {
            method: "POST".to_owned(),
            url: "http://kong:8001/upstreams".to_owned(),
            status: 409,
            code: Some(5),
            name: Some("unique constraint violation".to_owned()),
            message: "UNIQUE violation detected on '{name=\"core\"}'".to_owned(),
            fields: Some(serde_json::json!({"name": "core"})),
        };
        assert_eq!(
            error.to_string(),
            "UNIQUE violation detected on '{name=\"core\"}' (POST http://kong:8001/upstreams answered 409)"
        );
        assert!(!error.is_transient());
    }
}
