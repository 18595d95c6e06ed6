//! `/ssg/ping` (section 3.1 of reference/layer7-api.md): [`PingClient`] asks a
//! node whether its policy engine and database answer. A 200 is up; a 503
//! ("The server is not in an operational state") is a typed answer, not an
//! error ([`PingState::NotOperational`]); a refused connection is the
//! transport's [`crate::web::WebError`].

use std::time::Duration;

use super::connection::Connection;
use super::error::{Layer7Error, snippet};
use crate::web::Method;

/// What the ping page said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingState {
    /// HTTP 200: the node is up.
    Up,
    /// HTTP 503: the node runs but is not in an operational state (database checks failing, starting).
    NotOperational,
}

/// A ping's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingResult {
    /// The request (`GET https://gw:8443/ssg/ping`).
    pub request: String,
    /// Up or not operational.
    pub state: PingState,
    /// The HTTP status.
    pub status: u16,
    /// The start of the page, on one line.
    pub body: String,
    /// How long the answer took.
    pub elapsed: Duration,
}

impl PingResult {
    /// Whether the node is up.
    pub fn is_up(&self) -> bool {
        self.state == PingState::Up
    }

    /// The result if the node is up, else [`Layer7Error::NotOperational`].
    pub fn require_up(self) -> Result<Self, Layer7Error> {
        match self.state {
            PingState::Up => Ok(self),
            PingState::NotOperational => Err(Layer7Error::NotOperational {
                request: self.request,
                body: self.body,
            }),
        }
    }
}

/// Pings one node.
#[derive(Debug, Clone)]
pub struct PingClient {
    connection: Connection,
    url: String,
}

impl PingClient {
    /// A client for the node at `gateway_url` (`https://gw:8443`); the page is `/ssg/ping`.
    pub fn new(connection: Connection, gateway_url: &str) -> Self {
        Self {
            connection,
            url: format!("{}/ssg/ping", gateway_url.trim_end_matches('/')),
        }
    }

    /// The ping URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Pings with the admin credentials: up (200), not operational (503), or
    /// an error (401 unauthorized, another status rejected, transport failures).
    pub async fn ping(&self) -> Result<PingResult, Layer7Error> {
        let request = self.connection.request(Method::GET, &self.url)?;
        let response = self.connection.send(request).await?;
        let body = snippet(&page_text(&response.text()));
        let state = match response.status {
            200 => PingState::Up,
            503 => PingState::NotOperational,
            status => {
                return Err(Layer7Error::Rejected {
                    request: response.request,
                    status,
                    error_type: None,
                    detail: body,
                });
            }
        };
        Ok(PingResult {
            request: response.request,
            state,
            status: response.status,
            body,
            elapsed: response.elapsed,
        })
    }
}

/// The text of an HTML page (tags dropped), for a short quote.
fn page_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for character in html.chars() {
        match character {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            other if !in_tag => text.push(other),
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_the_page_text_without_tags() {
        let page = "<html><head><title>Ping</title></head><body><p>The server is not in an operational state</p></body></html>";
        assert_eq!(
            snippet(&page_text(page)),
            "Ping The server is not in an operational state"
        );
    }

    #[test]
    fn not_operational_is_an_error_only_when_asked() {
        let result = PingResult {
            request: "GET https://gw/ssg/ping".to_owned(),
            state: PingState::NotOperational,
            status: 503,
            body: "The server is not in an operational state".to_owned(),
            elapsed: Duration::from_millis(3),
        };
        assert!(!result.is_up());
        let error = result.require_up().map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            error,
            Err("GET https://gw/ssg/ping: the node is not in an operational state; body: The server is not in an operational state".to_owned())
        );
    }
}
