//! [`Layer7Error`]: why a restman, Graphman or ping exchange with a Layer7
//! gateway failed, in words that name the request, the entity and the
//! gateway's own message. No variant ever holds a password or a private key.

use runsheet_engine::ActionError;

use super::restman::bundle::{BundleError, MappingFailure, MappingResult};
use crate::web::{WebError, error_chain, truncate};

/// How much of a response body an error quotes.
pub const QUOTED_BYTES: usize = 300;

/// Why an exchange with a Layer7 gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum Layer7Error {
    /// The gateway refused the credentials (HTTP 401, or 403 before restman ran).
    #[error(
        "{request} answered {status}: the gateway refused the credentials; check the gateway's username and password (or its client certificate)"
    )]
    Unauthorized {
        /// The request (`GET https://gw:8443/restman/1.0/services`).
        request: String,
        /// 401 or 403.
        status: u16,
    },
    /// The entity does not exist (HTTP 404).
    #[error("{entity} not found ({request} answered 404{})", detail_suffix(detail))]
    NotFound {
        /// The entity (`service 610e24359b89658ee77ba06dc24673d7`).
        entity: String,
        /// The request.
        request: String,
        /// The gateway's `l7:Detail`, when it sent one.
        detail: Option<String>,
    },
    /// The write conflicts with the gateway's state: a stale `version` or a unique key taken.
    #[error(
        "{entity}: {reason} ({request} answered {status}{})",
        detail_suffix(detail)
    )]
    Conflict {
        /// The entity written.
        entity: String,
        /// What conflicts, in words.
        reason: String,
        /// The request.
        request: String,
        /// The HTTP status (409, or 400 for a stale version).
        status: u16,
        /// The gateway's `l7:Detail`, when it sent one.
        detail: Option<String>,
    },
    /// The gateway refused the request (a 4xx or 5xx with its `l7:Error`, or another body).
    #[error("{request} answered {status}: {}{detail}", error_type.as_deref().map(|t| format!("{t}: ")).unwrap_or_default())]
    Rejected {
        /// The request.
        request: String,
        /// The HTTP status.
        status: u16,
        /// The `l7:Error/l7:Type`, when the body is an `l7:Error`.
        error_type: Option<String>,
        /// The `l7:Error/l7:Detail`, or the start of the body.
        detail: String,
    },
    /// A bundle import failed (HTTP 409): nothing was imported.
    #[error("{failure}; the import changed nothing (a bundle is imported all or nothing)")]
    BundleFailed {
        /// The first failing mapping (the one to fix first).
        failure: Box<MappingFailure>,
        /// Every mapping's result as the gateway reported it.
        results: Vec<MappingResult>,
    },
    /// Graphman answered with GraphQL errors.
    #[error("{request}: GraphQL errors: {}", messages.join("; "))]
    Graphql {
        /// The request (`POST https://gw:8443/graphman`, with the operation).
        request: String,
        /// The `errors[].message` values.
        messages: Vec<String>,
        /// The answer's `data`, when it had some beside the errors.
        data: Option<serde_json::Value>,
    },
    /// A Graphman mutation reported `ERROR` for an entity in its `detailedStatus`.
    #[error("{operation}: {entity}: {description}")]
    Entity {
        /// The mutation (`setClusterProperties`).
        operation: String,
        /// The entity, from the status's `source` (`name=io.httpsHostVerify`).
        entity: String,
        /// The gateway's `description`.
        description: String,
    },
    /// The answer is not what the API sends (bad XML or JSON, wrong content type, missing fields).
    #[error("{request}: malformed response: {problem}{}", snippet_suffix(snippet))]
    Malformed {
        /// The request.
        request: String,
        /// What is wrong with it.
        problem: String,
        /// The start of the body.
        snippet: String,
    },
    /// `/ssg/ping` says the node is up but not operational (HTTP 503).
    #[error(
        "{request}: the node is not in an operational state{}",
        snippet_suffix(body)
    )]
    NotOperational {
        /// The ping request.
        request: String,
        /// The start of the page it answered.
        body: String,
    },
    /// A mapping instruction of the import cannot be applied to the bundle.
    #[error("mapping for {kind}{}: {reason}", selected.as_deref().map(|s| format!(" `{s}`")).unwrap_or_default())]
    Mapping {
        /// The entity type it names.
        kind: String,
        /// The entity it names (its `source`), when it names one.
        selected: Option<String>,
        /// Why it cannot be applied.
        reason: String,
    },
    /// A bundle cannot be read or written.
    #[error("invalid bundle: {0}")]
    InvalidBundle(#[from] BundleError),
    /// A write was sent and its answer never came (none in time, or the connection
    /// closed first): the gateway may have applied it, or may still.
    #[error("{request}: {why}; the gateway may still apply this write")]
    Unanswered {
        /// The request in words (`PUT https://gw:8443/restman/1.0/bundle`).
        request: String,
        /// Why no answer came (`no answer within 5s`).
        why: String,
    },
    /// The request could not be sent or answered (or a dry run refused it).
    #[error(transparent)]
    Web(#[from] WebError),
}

impl Layer7Error {
    /// Whether this is a write whose answer never came (its outcome unknown).
    pub fn is_unanswered(&self) -> bool {
        matches!(self, Layer7Error::Unanswered { .. })
    }

    /// A [`Layer7Error::Malformed`] quoting the start of `body`.
    pub fn malformed(request: &str, problem: impl Into<String>, body: &str) -> Self {
        Layer7Error::Malformed {
            request: request.to_owned(),
            problem: problem.into(),
            snippet: snippet(body),
        }
    }

    /// Whether the entity was not found.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Layer7Error::NotFound { .. })
    }
}

impl From<Layer7Error> for ActionError {
    fn from(error: Layer7Error) -> Self {
        match error {
            Layer7Error::Web(web) => ActionError::from(web),
            Layer7Error::Unanswered { .. } => {
                // Nothing says whether the write took effect: a person must look.
                let left = format!("{error} (check it before resuming)");
                ActionError::partially_applied(error.to_string(), vec![left])
            }
            other => ActionError::failed(error_chain(&other)),
        }
    }
}

/// The start of a body, on one line, for an error message.
pub fn snippet(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(&one_line, QUOTED_BYTES)
}

/// `: detail` when there is one.
fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_deref()
        .filter(|detail| !detail.trim().is_empty())
        .map(|detail| format!(": {}", detail.trim()))
        .unwrap_or_default()
}

/// `; body: ...` when the snippet is not empty.
fn snippet_suffix(snippet: &str) -> String {
    if snippet.trim().is_empty() {
        String::new()
    } else {
        format!("; body: {snippet}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_says_what_to_check() {
        let error = Layer7Error::Unauthorized {
            request: "GET https://gw:8443/restman/1.0/services".to_owned(),
            status: 401,
        };
        let message = error.to_string();
        assert!(message.contains("answered 401"), "{message}");
        assert!(message.contains("username and password"), "{message}");
        assert!(message.contains("client certificate"), "{message}");
    }

    #[test]
    fn malformed_quotes_one_short_line() {
        let body = format!("<html>\n  <body>{}</body>", "x".repeat(2000));
        let error = Layer7Error::malformed("GET https://gw/x", "not XML", &body);
        let message = error.to_string();
        assert!(
            message
                .starts_with("GET https://gw/x: malformed response: not XML; body: <html> <body>"),
            "{message}"
        );
        assert!(message.len() < 500, "{}", message.len());
        assert!(!message.contains('\n'));
    }

    #[test]
    fn not_found_and_conflict_name_the_entity() {
        let missing = Layer7Error::NotFound {
            entity: "service `orders`".to_owned(),
            request: "GET https://gw/restman/1.0/services/abc".to_owned(),
            detail: Some("Resource not found".to_owned()),
        };
        assert_eq!(
            missing.to_string(),
            "service `orders` not found (GET https://gw/restman/1.0/services/abc answered 404: Resource not found)"
        );
        assert!(missing.is_not_found());
        let conflict = Layer7Error::Conflict {
            entity: "cluster property `a`".to_owned(),
            reason: "version 3 is stale: the entity changed since it was read".to_owned(),
            request: "PUT https://gw/x".to_owned(),
            status: 409,
            detail: None,
        };
        assert!(
            conflict
                .to_string()
                .starts_with("cluster property `a`: version 3 is stale")
        );
    }
}
