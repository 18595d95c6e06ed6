//! `POST /graphman` on the twin's listener: the request read (as Graphman's handler reads
//! it), run against the store under its lock, committed mutations counted as writes.

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::StoreResolver;
use crate::layer7::gateway::Gateway;
use crate::layer7::graphman::document::{self, OperationKind};
use crate::layer7::graphman::handler::{MAX_BODY_BYTES, PATH};
use crate::layer7::graphman::{GraphqlRequest, execute, read_request};
use crate::layer7::server::text;
use crate::layer7::store::Store;

/// A Graphman request whose body has been read.
#[derive(Debug)]
pub(crate) struct Buffered {
    /// The request without its body.
    parts: axum::http::request::Parts,
    /// The body.
    body: Bytes,
}

impl Buffered {
    /// Reads the body of `request` (413 when larger than Graphman takes).
    pub(crate) async fn read(request: Request) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let body = to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))?;
        Ok(Self { parts, body })
    }

    /// The request's headers.
    pub(crate) fn headers(&self) -> &axum::http::HeaderMap {
        &self.parts.headers
    }

    /// Whether this request would commit a change: a mutation outside test mode (what
    /// write faults apply to). Unreadable requests are not writes.
    pub(crate) fn is_write(&self) -> bool {
        if self.parts.method != Method::POST {
            return false;
        }
        let Ok((request, options)) =
            read_request(self.parts.uri.query(), &self.parts.headers, &self.body)
        else {
            return false;
        };
        !options.test && is_mutation(&request)
    }

    /// Answers the request against `gateway`'s store; counts a write when a committed
    /// mutation changed it.
    pub(crate) fn serve(self, gateway: &Gateway) -> Response {
        if self.parts.uri.path() != PATH {
            return text(StatusCode::NOT_FOUND, "Graphman is served at /graphman");
        }
        if self.parts.method != Method::POST {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "Graphman takes POST with a GraphQL JSON body",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let (request, options) =
            match read_request(self.parts.uri.query(), &self.parts.headers, &self.body) {
                Ok(read) => read,
                Err(error) => return error.into_response(),
            };
        let address = self
            .parts
            .headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or("localhost")
            .to_owned();
        let node = gateway.node.info();
        let (body, changed) = {
            let mut store = gateway.store();
            let mut resolver = StoreResolver::new(
                std::mem::take(&mut *store),
                node,
                address,
                gateway.config.username.clone(),
            );
            let execution = execute(&mut resolver, &request, &options);
            let changed = execution.committed && resolver.changed();
            *store = resolver.into_store();
            (execution.body, changed)
        };
        if changed {
            gateway.control.count_write();
        }
        json(&body)
    }
}

/// Whether the operation `request` runs is a mutation.
fn is_mutation(request: &GraphqlRequest) -> bool {
    document::parse(
        &request.query,
        request.operation_name.as_deref(),
        &request.variables,
    )
    .is_ok_and(|operation| operation.kind == OperationKind::Mutation)
}

/// Installs a Graphman JSON bundle into `store` as a seed: every entity `NEW_OR_UPDATE`
/// (the bundle's own mappings dropped); all or nothing. The error says which entity failed.
pub(crate) fn seed(store: &mut Store, gateway: &Gateway, bundle: &Value) -> Result<(), String> {
    let Value::Object(sections) = bundle else {
        return Err("a Graphman bundle is a JSON object of sections".to_owned());
    };
    let mut variables = sections.clone();
    variables.insert(
        "properties".into(),
        serde_json::json!({"defaultAction": "NEW_OR_UPDATE"}),
    );
    let request = GraphqlRequest {
        query: "mutation seed { installBundleEntities { summary } }".to_owned(),
        variables,
        operation_name: None,
    };
    let mut resolver = StoreResolver::new(
        std::mem::take(store),
        gateway.node.info(),
        "localhost".to_owned(),
        gateway.config.username.clone(),
    );
    let execution = execute(&mut resolver, &request, &Default::default());
    *store = resolver.into_store();
    if execution.committed {
        return Ok(());
    }
    let mut reasons: Vec<String> = Vec::new();
    if let Some(summary) = execution.body["data"]["installBundleEntities"]["summary"].as_object() {
        for status in summary.values().filter_map(Value::as_array).flatten() {
            if status["status"] == "ERROR" {
                reasons.push(
                    status["description"]
                        .as_str()
                        .unwrap_or("failed")
                        .to_owned(),
                );
            }
        }
    }
    if reasons.is_empty() {
        reasons.extend(
            execution.body["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|error| error["message"].as_str().map(str::to_owned)),
        );
    }
    Err(format!(
        "the Graphman bundle was refused, nothing was installed: {}",
        reasons.join("; ")
    ))
}

/// A JSON response (200).
fn json(body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
