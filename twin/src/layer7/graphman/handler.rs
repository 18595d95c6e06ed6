//! `POST /graphman` over HTTP: the JSON body, the content type, the URL query options and the
//! passphrase header read into a request, run by [`execute`], answered with HTTP 200 and
//! `{"data"}`/`{"errors"}` as GraphQL servers do. A request that cannot be read is a 400 with
//! `{"errors": [{"message"}]}`.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::error::{GraphqlError, errors_body};
use super::execute::{Execution, GraphqlRequest, execute};
use super::resolver::{GraphmanResolver, Passphrase, RequestOptions};
use crate::kong::admin::parse_query;

/// The path Graphman answers on.
pub const PATH: &str = "/graphman";

/// The largest request body accepted (bundles travel in the body's variables).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The passphrase headers, current name first (reference §2.1).
const PASSPHRASE_HEADERS: [&str; 2] = ["x-l7-passphrase", "l7-passphrase"];

/// What holds the resolver a Graphman endpoint serves (a store behind a lock).
pub trait GraphmanService: Send + Sync + 'static {
    /// The resolver the requests run against.
    type Resolver: GraphmanResolver;

    /// Runs `run` with exclusive access to the resolver (one request at a time).
    fn with_resolver<T>(&self, run: impl FnOnce(&mut Self::Resolver) -> T) -> T;

    /// Called after each executed request (e.g. to count committed writes); does nothing by
    /// default.
    fn executed(&self, _execution: &Execution) {}
}

impl<R: GraphmanResolver + Send + 'static> GraphmanService for Mutex<R> {
    type Resolver = R;

    fn with_resolver<T>(&self, run: impl FnOnce(&mut R) -> T) -> T {
        // A mutation swaps in a fully built copy or nothing, so a poisoned lock still holds
        // a consistent resolver.
        let mut resolver = self.lock().unwrap_or_else(PoisonError::into_inner);
        run(&mut resolver)
    }
}

/// A router serving `POST /graphman` over `service` (other methods get 405).
pub fn router<S: GraphmanService>(service: Arc<S>) -> Router {
    Router::new()
        .route(PATH, post(handle::<S>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

/// Serves one `POST /graphman`.
pub async fn handle<S: GraphmanService>(
    State(service): State<Arc<S>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match read_request(uri.query(), &headers, &body) {
        Ok((request, options)) => {
            let execution = service.with_resolver(|resolver| execute(resolver, &request, &options));
            service.executed(&execution);
            json_response(StatusCode::OK, &execution.body)
        }
        Err(error) => error.into_response(),
    }
}

/// Why a request could not be read; answered with 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// The content type is missing or not JSON.
    #[error("Graphman takes content-type application/json, got {}", describe_content_type(.0.as_deref()))]
    ContentType(Option<String>),
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    Json(String),
    /// The body is JSON but not `{query, variables?, operationName?}`.
    #[error(
        "request body is not a GraphQL request ({0}); expected {{\"query\": \"...\", \"variables\": {{...}}}}"
    )]
    Shape(String),
    /// A boolean query option with another value.
    #[error("query parameter {name} must be true or false, got \"{value}\"")]
    Option {
        /// The parameter.
        name: String,
        /// Its value.
        value: String,
    },
    /// The passphrase header is not base64 of UTF-8 text (its value is not repeated).
    #[error("header {0} must be the base64 encoding of the passphrase")]
    Passphrase(&'static str),
}

/// `"text/plain"` or `no content-type`.
fn describe_content_type(found: Option<&str>) -> String {
    found.map_or_else(
        || "no content-type".to_owned(),
        |found| format!("\"{found}\""),
    )
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        json_response(
            StatusCode::BAD_REQUEST,
            &errors_body(&[GraphqlError::new(self.to_string())]),
        )
    }
}

/// Reads the GraphQL request and its options from an HTTP request's parts.
pub fn read_request(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(GraphqlRequest, RequestOptions), RequestError> {
    check_content_type(headers)?;
    let options = read_options(query, headers)?;
    let json: Value =
        serde_json::from_slice(body).map_err(|error| RequestError::Json(error.to_string()))?;
    let request: GraphqlRequest =
        serde_json::from_value(json).map_err(|error| RequestError::Shape(error.to_string()))?;
    Ok((request, options))
}

/// Accepts `application/json` with any parameters (`; charset=utf-8`).
fn check_content_type(headers: &HeaderMap) -> Result<(), RequestError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(RequestError::ContentType(None));
    };
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(RequestError::ContentType(Some(text)))
    }
}

/// The URL query options and the passphrase header.
fn read_options(query: Option<&str>, headers: &HeaderMap) -> Result<RequestOptions, RequestError> {
    let parameters = query.map(parse_query).unwrap_or_default();
    let flag = |name: &str, default: bool| -> Result<bool, RequestError> {
        match parameters.iter().find(|(key, _)| key == name) {
            None => Ok(default),
            Some((_, value)) if value.eq_ignore_ascii_case("true") => Ok(true),
            Some((_, value)) if value.eq_ignore_ascii_case("false") => Ok(false),
            Some((_, value)) => Err(RequestError::Option {
                name: name.to_owned(),
                value: value.clone(),
            }),
        }
    };
    let test = flag("test", false)?;
    let activate = flag("activate", true)?;
    let force_delete = flag("forceDelete", false)?;
    let comment = parameters
        .iter()
        .find(|(key, _)| key == "comment")
        .map(|(_, value)| value.clone());
    Ok(RequestOptions {
        test,
        activate,
        comment,
        force_delete,
        passphrase: read_passphrase(headers)?,
        parameters,
    })
}

/// The decoded passphrase header, if sent.
fn read_passphrase(headers: &HeaderMap) -> Result<Option<Passphrase>, RequestError> {
    for name in PASSPHRASE_HEADERS {
        if let Some(value) = headers.get(name) {
            let decoded = STANDARD
                .decode(value.as_bytes())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or(RequestError::Passphrase(name))?;
            return Ok(Some(Passphrase::new(decoded)));
        }
    }
    Ok(None)
}

/// A JSON response.
fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers
    }

    #[test]
    fn reads_body_and_options() -> TestResult {
        let mut headers = json_headers();
        headers.insert("x-l7-passphrase", HeaderValue::from_static("cGFzcw=="));
        let body = br#"{"query": "{ a }", "variables": null, "operationName": "Q"}"#;
        let (request, options) = read_request(
            Some(
                "test=true&activate=FALSE&comment=CRQ%2042&forceDelete=true&migratePolicyRevisions=true",
            ),
            &headers,
            body,
        )?;
        assert_eq!(request.query, "{ a }");
        assert!(request.variables.is_empty());
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert!(options.test && !options.activate && options.force_delete);
        assert_eq!(options.comment.as_deref(), Some("CRQ 42"));
        assert!(options.flag("migratePolicyRevisions"));
        assert_eq!(
            options.passphrase.map(|p| p.expose().to_owned()),
            Some("pass".to_owned())
        );
        Ok(())
    }

    #[test]
    fn defaults_when_nothing_is_given() -> TestResult {
        let (_, options) = read_request(None, &json_headers(), br#"{"query": "{ a }"}"#)?;
        assert_eq!(options, RequestOptions::default());
        Ok(())
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let body = br#"{"query": "{ a }"}"#;
        let mut text = HeaderMap::new();
        text.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(
            read_request(None, &text, body).map(|_| ()),
            Err(RequestError::ContentType(Some("text/plain".to_owned())))
        );
        assert_eq!(
            read_request(None, &HeaderMap::new(), body)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("Graphman takes content-type application/json, got no content-type".to_owned())
        );
        let headers = json_headers();
        assert!(matches!(
            read_request(None, &headers, b"{nope"),
            Err(RequestError::Json(_))
        ));
        assert!(matches!(
            read_request(None, &headers, br#"{"variables": {}}"#),
            Err(RequestError::Shape(message)) if message.contains("query")
        ));
        assert_eq!(
            read_request(Some("test=yes"), &headers, body).map(|_| ()),
            Err(RequestError::Option {
                name: "test".to_owned(),
                value: "yes".to_owned()
            })
        );
        let mut bad_pass = json_headers();
        bad_pass.insert("x-l7-passphrase", HeaderValue::from_static("not base64!"));
        assert_eq!(
            read_request(None, &bad_pass, body).map(|_| ()),
            Err(RequestError::Passphrase("x-l7-passphrase"))
        );
    }
}
