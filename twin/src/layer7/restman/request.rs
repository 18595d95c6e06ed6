//! A restman request as the handlers see it, and their reply. Main types: [`Request`],
//! [`Reply`] and [`Failure`] (an `l7:Error` to send).

use axum::http::{Method, StatusCode};

use super::envelope;
use super::xml::{self, Element};
use crate::layer7::store::StoreError;

/// restman's content type.
pub const XML: &str = "application/xml;charset=UTF-8";

/// One request under `/restman/1.0`.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path after `/restman/1.0` (`/services/abc`).
    pub path: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// `<scheme>://<host>/restman/1.0`, for links.
    pub base: String,
    /// The `L7-key-passphrase` header, decoded.
    pub passphrase: Option<String>,
}

impl Request {
    /// The path's segments.
    pub fn segments(&self) -> Vec<&str> {
        self.path
            .split('/')
            .filter(|part| !part.is_empty())
            .collect()
    }

    /// The values of query parameter `name`.
    pub fn params<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Query flag `name`: `default` when absent; an error for a value other than true/false.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, Failure> {
        match self.param(name) {
            None => Ok(default),
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "true" | "" => Ok(true),
                "false" => Ok(false),
                _ => Err(Failure::bad_request(format!(
                    "query parameter {name}: expected true or false, got '{value}'"
                ))),
            },
        }
    }

    /// The request's own URL (for error links).
    pub fn url(&self) -> String {
        format!("{}{}", self.base, self.path)
    }

    /// The body parsed as XML; a 400 naming the parser's complaint otherwise.
    pub fn xml(&self) -> Result<Element, Failure> {
        let text = std::str::from_utf8(&self.body)
            .map_err(|_| Failure::bad_request("the request body is not UTF-8".to_owned()))?;
        if text.trim().is_empty() {
            return Err(Failure::bad_request(
                "the request body is empty; expected an XML document".to_owned(),
            ));
        }
        xml::parse(text).map_err(|error| Failure::bad_request(format!("Invalid XML: {error}")))
    }
}

/// A handled request's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// The XML document (empty for 204).
    pub body: String,
    /// Whether the request changed the gateway (counted as a write).
    pub changed: bool,
    /// The body's content type.
    pub content_type: &'static str,
}

impl Reply {
    /// A document with `status`.
    pub fn document(status: StatusCode, element: &Element) -> Self {
        Self {
            status,
            body: element.to_document(),
            changed: false,
            content_type: XML,
        }
    }

    /// 204 No Content.
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: String::new(),
            changed: false,
            content_type: XML,
        }
    }

    /// Marks the reply as the answer to a committed change.
    pub fn changed(mut self, changed: bool) -> Self {
        self.changed = changed;
        self
    }
}

/// A refused request: the status and the `l7:Error` it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP status.
    pub status: StatusCode,
    /// `l7:Type`.
    pub kind: &'static str,
    /// `l7:Detail`.
    pub detail: String,
}

impl Failure {
    /// 400 `BadRequest` (malformed request).
    pub fn bad_request(detail: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "BadRequest",
            detail,
        }
    }

    /// 400 `InvalidResource` (a well-formed body describing an unacceptable entity).
    pub fn invalid(detail: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "InvalidResource",
            detail,
        }
    }

    /// 404 `ResourceNotFound`.
    pub fn not_found(detail: String) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "ResourceNotFound",
            detail,
        }
    }

    /// 405 `NotAllowed`.
    pub fn method_not_allowed(method: &Method, path: &str) -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            kind: "NotAllowed",
            detail: format!("{method} is not supported on {path}"),
        }
    }

    /// The `l7:Error` reply for the request at `url`.
    pub fn reply(&self, url: &str) -> Reply {
        Reply::document(self.status, &envelope::error(self.kind, url, &self.detail))
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        let detail = error.to_string();
        match error {
            StoreError::NotFound { .. } => Self::not_found(detail),
            StoreError::UniqueKeyConflict { .. } => Self {
                status: StatusCode::CONFLICT,
                kind: "UniqueKeyConflict",
                detail,
            },
            StoreError::StaleVersion { .. }
            | StoreError::FolderNotEmpty { .. }
            | StoreError::InUse { .. } => Self {
                status: StatusCode::CONFLICT,
                kind: "InvalidResource",
                detail,
            },
            StoreError::Invalid { .. } => Self::invalid(detail),
        }
    }
}

/// Decodes a query string into its pairs (`+` is a space, `%XX` a byte).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// Percent-decodes `text`.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_plus_and_percent() {
        assert_eq!(
            parse_query("name=a+b&versionComment=fix%20it&x&bad=%zz&end=%4"),
            [
                ("name".to_owned(), "a b".to_owned()),
                ("versionComment".to_owned(), "fix it".to_owned()),
                ("x".to_owned(), String::new()),
                ("bad".to_owned(), "%zz".to_owned()),
                ("end".to_owned(), "%4".to_owned()),
            ]
        );
    }
}
