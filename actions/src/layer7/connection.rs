//! [`Connection`]: what every Layer7 client sends with: the step's
//! [`WebClient`] (TLS, client certificate, timeouts, dry-run guard) and the
//! basic-auth [`Credentials`], if any. Responses the gateway refuses for
//! authentication (401, 403) become [`Layer7Error::Unauthorized`] here, once.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::Layer7Error;
use crate::web::{ExpectedStatus, Method, WebClient, WebRequest, WebResponse};

/// An administrator's user name and password (the password never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"(hidden)")
            .finish()
    }
}

/// The HTTP side of a Layer7 gateway: the client and the credentials.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The step's HTTP client.
    pub web: WebClient,
    /// Basic-auth credentials; `None` when a client certificate authenticates.
    pub credentials: Option<Credentials>,
    /// Longest wait for one answer (the environment's `request_timeout`), if set.
    pub request_timeout: Option<std::time::Duration>,
}

impl Connection {
    /// A connection sending `credentials` (if any) on every request.
    pub fn new(web: WebClient, credentials: Option<Credentials>) -> Self {
        Self {
            web,
            credentials,
            request_timeout: None,
        }
    }

    /// Waits at most `timeout` for each answer (the step's timeout still applies when shorter).
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// How long one answer is waited for (`request_timeout`, or 30s).
    pub fn answer_wait(&self) -> std::time::Duration {
        self.request_timeout.unwrap_or(crate::web::DEFAULT_TIMEOUT)
    }

    /// A request to `url` with the credentials set.
    pub fn request(&self, method: Method, url: &str) -> Result<WebRequest, Layer7Error> {
        let mut request = WebRequest::new(method, url)?;
        if let Some(timeout) = self.request_timeout {
            request = request.timeout(timeout);
        }
        Ok(match &self.credentials {
            Some(credentials) => request.basic(&credentials.username, &credentials.password)?,
            None => request,
        })
    }

    /// Sends `request`; a 401 or 403 answer is [`Layer7Error::Unauthorized`], a
    /// redirect to another host (never followed) a [`crate::web::WebError::RedirectNotFollowed`].
    pub async fn send(&self, request: WebRequest) -> Result<WebResponse, Layer7Error> {
        let write = !request.is_read_only();
        let response = match self.web.send(request).await {
            Ok(response) => response,
            Err(crate::web::WebError::Timeout { what, after }) if write => {
                return Err(Layer7Error::Unanswered {
                    request: what,
                    why: format!("no answer within {}", crate::web::humantime(after)),
                });
            }
            Err(crate::web::WebError::Transport { what, reason }) if write => {
                // The request was on its way when the connection broke: it may have landed.
                return Err(Layer7Error::Unanswered {
                    request: what,
                    why: format!("the connection closed before the gateway answered ({reason})"),
                });
            }
            Err(error) => return Err(error.into()),
        };
        if (300..400).contains(&response.status) && response.headers.contains_key("location") {
            // A redirect to another host was not followed: say so, not "answered 302".
            response.expect_status(&ExpectedStatus::Success)?;
        }
        if matches!(response.status, 401 | 403) {
            return Err(Layer7Error::Unauthorized {
                request: response.request,
                status: response.status,
            });
        }
        Ok(response)
    }
}

/// The value of a passphrase header (`L7-key-passphrase`, `x-l7-passphrase`): base64.
pub fn passphrase_header(passphrase: &str) -> String {
    STANDARD.encode(passphrase)
}

/// The response's content type without parameters, lower-case (`application/xml`).
pub fn content_type(response: &WebResponse) -> Option<String> {
    response.headers.get("content-type").map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_hide_the_password() {
        let credentials = Credentials {
            username: "admin".to_owned(),
            password: "s3cret-7layer".to_owned(),
        };
        let shown = format!("{credentials:?}");
        assert!(shown.contains("admin"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn passphrases_travel_in_base64() {
        assert_eq!(passphrase_header("7layer"), "N2xheWVy");
    }
}
