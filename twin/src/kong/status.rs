//! The Status API listener (reference §9.2, §9.3): `GET /status` and `/status/ready` with
//! draining, on a listener of its own ([`KongTwin::serve_status`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::Value;
use tokio::net::TcpListener;

use super::admin::{self, AdminState, empty, json_response, message};
use super::config_api;
use super::twin::{KongTwin, Server};

impl KongTwin {
    /// Serves the Status API (`/status`, `/status/ready`) on `listener`; returns the bound
    /// address. The listener stops with the twin.
    pub async fn serve_status(&mut self, listener: TcpListener) -> io::Result<SocketAddr> {
        let router = Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&self.state));
        let server = Server::http(listener, router)?;
        let address = server.address;
        self.state.control.set_status_address(address);
        self.extra.push(server);
        Ok(address)
    }

    /// `http://<status address>`, once [`KongTwin::serve_status`] was called.
    pub fn status_url(&self) -> Option<String> {
        self.state
            .control
            .status_address()
            .map(|address| format!("http://{address}"))
    }
}

/// Serves one Status API request.
async fn serve(
    State(state): State<Arc<AdminState>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut response = match (uri.path().trim_end_matches('/'), method) {
        ("/status", Method::GET | Method::HEAD) => {
            json_response(StatusCode::OK, &admin::status(&state))
        }
        ("/status/ready", Method::GET | Method::HEAD) => readiness(&state),
        ("/status/ready", Method::POST) => drain(&state, &body),
        ("/status" | "/status/ready", _) => {
            message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        }
        _ => message(StatusCode::NOT_FOUND, "Not found"),
    };
    if let Ok(server) = HeaderValue::from_str(&format!("kong/{}", state.config().version)) {
        response.headers_mut().insert(header::SERVER, server);
    }
    response
}

/// `GET /status/ready`: 200 ready, or 503 with the first reason the node is not.
fn readiness(state: &AdminState) -> Response {
    let reason = if state.control.draining() {
        Some("draining")
    } else if state.control.database_unreachable() {
        Some("failed to connect to database")
    } else if state.config().db_less && *state.config_hash() == config_api::EMPTY_HASH {
        Some("no configuration available (empty configuration present)")
    } else {
        None
    };
    match reason {
        Some(reason) => message(StatusCode::SERVICE_UNAVAILABLE, reason),
        None => message(StatusCode::OK, "ready"),
    }
}

/// `POST /status/ready {"status":"draining"}`: 204, and the node reports draining until it stops.
fn drain(state: &AdminState, body: &[u8]) -> Response {
    let status = serde_json::from_slice::<Value>(body).ok().and_then(|body| {
        body.get("status")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if status.as_deref() == Some("draining") {
        state.control.drain();
        empty(StatusCode::NO_CONTENT)
    } else {
        message(
            StatusCode::BAD_REQUEST,
            "expected {\"status\":\"draining\"}",
        )
    }
}
