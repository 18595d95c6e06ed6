//! Responses the proxy produces itself, and the details of Kong's proxy output that
//! changed between 3.x releases. Main type: [`Flavor`].

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// Version-dependent proxy behaviour of the twin's configured Kong version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flavor {
    /// `kong/<version>`, for `Server` and `Via`.
    pub(crate) server: String,
    /// 3.5+: error bodies carry `request_id` and responses `X-Kong-Request-Id`.
    pub(crate) request_id: bool,
    /// 3.8+: `Via` is `1.1 kong/<version>` and is also sent upstream.
    pub(crate) via_with_protocol: bool,
    /// 3.6+: an unknown key answers `Unauthorized` (before: `Invalid authentication credentials`).
    unauthorized: bool,
    /// 3.7+: every key-auth 401 carries `WWW-Authenticate: Key` (before: only a missing
    /// key, with `Key realm="kong"`).
    challenge_always: bool,
    /// 3.8+: jwt 401s carry `WWW-Authenticate: Bearer ...`; oauth2's challenge names the
    /// realm only when configured (before: always `realm="service"`).
    bearer_challenge: bool,
    /// 3.10+: oauth2's challenge parameters are comma-separated.
    challenge_commas: bool,
}

impl Flavor {
    /// The behaviour of Kong `version` (`3.9.3`, `3.10.0.2`); unparsable versions act as the newest.
    pub(crate) fn for_version(version: &str) -> Self {
        let mut parts = version
            .split(['.', '-'])
            .map(|part| part.parse::<u32>().ok());
        let release = match (parts.next().flatten(), parts.next().flatten()) {
            (Some(major), Some(minor)) => (major, minor),
            _ => (u32::MAX, 0),
        };
        let since = |major: u32, minor: u32| release >= (major, minor);
        Self {
            server: format!("kong/{version}"),
            request_id: since(3, 5),
            via_with_protocol: since(3, 8),
            unauthorized: since(3, 6),
            challenge_always: since(3, 7),
            bearer_challenge: since(3, 8),
            challenge_commas: since(3, 10),
        }
    }

    /// Whether authentication failures all answer `Unauthorized` (3.6+).
    pub(crate) fn plain_unauthorized(&self) -> bool {
        self.unauthorized
    }

    /// key-auth's message for an unknown or expired key.
    pub(crate) fn invalid_key_message(&self) -> &'static str {
        if self.unauthorized {
            "Unauthorized"
        } else {
            "Invalid authentication credentials"
        }
    }

    /// `WWW-Authenticate` when no key was given.
    pub(crate) fn no_key_challenge(&self, realm: Option<&str>) -> Option<String> {
        if self.challenge_always {
            Some(challenge(realm))
        } else {
            Some("Key realm=\"kong\"".to_owned())
        }
    }

    /// `WWW-Authenticate` on the other key-auth 401s.
    pub(crate) fn other_challenge(&self, realm: Option<&str>) -> Option<String> {
        self.challenge_always.then(|| challenge(realm))
    }

    /// Whether jwt answers 401s with a `Bearer` challenge (3.8+).
    pub(crate) fn bearer_challenge(&self) -> bool {
        self.bearer_challenge
    }

    /// oauth2's `WWW-Authenticate`: `Bearer` with the realm and an error with its
    /// description, in the release's format.
    pub(crate) fn oauth2_challenge(&self, realm: Option<&str>, error: Option<(&str, &str)>) -> String {
        let realm = if self.bearer_challenge {
            realm
        } else {
            Some("service")
        };
        let mut params: Vec<String> = Vec::new();
        if let Some(realm) = realm {
            params.push(format!("realm=\"{realm}\""));
        }
        if let Some((code, description)) = error {
            params.push(format!("error=\"{code}\""));
            params.push(format!("error_description=\"{description}\""));
        }
        if params.is_empty() {
            return "Bearer".to_owned();
        }
        let separator = if self.challenge_commas { ", " } else { " " };
        format!("Bearer {}", params.join(separator))
    }

    /// The `Via` Kong adds: `1.1 kong/<version>` (3.8+) or `kong/<version>`.
    pub(crate) fn via(&self) -> String {
        if self.via_with_protocol {
            format!("1.1 {}", self.server)
        } else {
            self.server.clone()
        }
    }
}

/// `Key` or `Key realm="<realm>"`.
fn challenge(realm: Option<&str>) -> String {
    realm.map_or_else(
        || "Key".to_owned(),
        |realm| format!("Key realm=\"{realm}\""),
    )
}

/// `kong.response.error`: Kong's JSON error template, with `request_id` from 3.5.
pub(crate) fn error(
    flavor: &Flavor,
    status: StatusCode,
    message: &str,
    request_id: &str,
) -> Response {
    let message = escape(message);
    let body = if flavor.request_id {
        format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{request_id}\"\n}}")
    } else {
        format!("{{\n  \"message\":\"{message}\"\n}}")
    };
    with_body(status, body, "application/json; charset=utf-8")
}

/// A response with `body` of `content_type`.
pub(crate) fn with_body(status: StatusCode, body: String, content_type: &str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// Escapes `"` and `\` so a message stays valid JSON inside the template.
fn escape(message: &str) -> String {
    message.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_pick_their_release_behaviour() {
        let old = Flavor::for_version("3.4.2");
        assert!(!old.request_id && !old.via_with_protocol);
        assert_eq!(
            old.invalid_key_message(),
            "Invalid authentication credentials"
        );
        assert_eq!(old.via(), "kong/3.4.2");
        let newest = Flavor::for_version("3.10.0.2");
        assert!(newest.request_id && newest.via_with_protocol);
        assert_eq!(newest.via(), "1.1 kong/3.10.0.2");
        assert_eq!(newest.invalid_key_message(), "Unauthorized");
        assert!(Flavor::for_version("3.5.0").request_id);
        assert!(!Flavor::for_version("3.7.1").via_with_protocol);
        assert!(Flavor::for_version("dev").request_id);
    }

    #[test]
    fn oauth2_challenges_follow_the_release() {
        let invalid = Some(("invalid_token", "The access token is invalid or has expired"));
        assert_eq!(
            Flavor::for_version("3.4.2").oauth2_challenge(None, invalid),
            "Bearer realm=\"service\" error=\"invalid_token\" error_description=\"The access token is invalid or has expired\""
        );
        assert_eq!(Flavor::for_version("3.9.1").oauth2_challenge(None, None), "Bearer");
        assert_eq!(
            Flavor::for_version("3.9.1").oauth2_challenge(Some("api"), invalid),
            "Bearer realm=\"api\" error=\"invalid_token\" error_description=\"The access token is invalid or has expired\""
        );
        assert_eq!(
            Flavor::for_version("3.10.0").oauth2_challenge(Some("api"), invalid),
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token is invalid or has expired\""
        );
    }

    #[tokio::test]
    async fn error_bodies_follow_the_template() {
        let flavor = Flavor::for_version("3.9.3");
        let response = error(
            &flavor,
            StatusCode::NOT_FOUND,
            "no Route matched with those values",
            "abc",
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&body),
            "{\n  \"message\":\"no Route matched with those values\",\n  \"request_id\":\"abc\"\n}"
        );
        let old = Flavor::for_version("3.4.2");
        let response = error(&old, StatusCode::NOT_FOUND, "a \"quoted\" text", "abc");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&body),
            "{\n  \"message\":\"a \\\"quoted\\\" text\"\n}"
        );
    }
}
