//! The `/_twin` control endpoint and the layer around the Admin API that counts requests and
//! applies injected faults (`docs/twin-kong.md`, "Control and faults"). Main type: [`Control`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::admin::{self, AdminState, EndpointKind, empty, json_response, message};
use super::config_api;
use super::faults::{self, Action, FaultSpec, Faults, RequestKind, When};
use super::listener::{self, ConnectionKill};
use super::store::{ListFilter, Store};
use super::twin::Server;

/// Largest `/_twin/faults` body read.
const MAX_BODY: usize = 64 * 1024;

/// Counters, faults and node status flags of one twin, shared by its listeners.
#[derive(Debug)]
pub(crate) struct Control {
    /// Requests and writes served since the last reset.
    counters: Mutex<Counters>,
    /// Active faults.
    faults: Mutex<Faults>,
    /// Until when the Admin API listener refuses connections (`None`: it does not).
    refusal: watch::Sender<Option<Instant>>,
    /// `POST /status/ready {"status":"draining"}` was received.
    draining: AtomicBool,
    /// The Status API listener's address, once served.
    status_address: Mutex<Option<std::net::SocketAddr>>,
    /// The proxy's rate-limiting counters (cleared by `/_twin/reset`).
    pub(crate) rate_limits: super::proxy::RateCounters,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            counters: Mutex::default(),
            faults: Mutex::default(),
            refusal: watch::Sender::new(None),
            draining: AtomicBool::new(false),
            status_address: Mutex::new(None),
            rate_limits: super::proxy::RateCounters::default(),
        }
    }
}

/// Distinct `"METHOD /path"` counters kept; later new paths are counted together.
const MAX_COUNTED_PATHS: usize = 10_000;

/// `GET /_twin/counters`.
#[derive(Debug, Default)]
struct Counters {
    /// Requests by `"METHOD /path"`.
    requests: BTreeMap<String, u64>,
    /// Writes on entity endpoints and `/config`.
    writes: u64,
}

impl Control {
    /// The active faults.
    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The counters.
    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the "database unreachable" fault is on.
    pub(crate) fn database_unreachable(&self) -> bool {
        self.faults().database_unreachable()
    }

    /// Whether the node was told to drain.
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Marks the node as draining (until the twin stops).
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Records the Status API listener's address.
    pub(crate) fn set_status_address(&self, address: std::net::SocketAddr) {
        *self
            .status_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(address);
    }

    /// The Status API listener's address, once served.
    pub(crate) fn status_address(&self) -> Option<std::net::SocketAddr> {
        *self
            .status_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Receives the refusal deadline, for the listener that closes itself.
    pub(crate) fn refusals(&self) -> watch::Receiver<Option<Instant>> {
        self.refusal.subscribe()
    }

    /// The refusal deadline, while it lies ahead.
    fn refusing_until(&self) -> Option<Instant> {
        (*self.refusal.borrow()).filter(|until| *until > Instant::now())
    }

    /// Counts one request.
    fn count(&self, method: &Method, path: &str, write: bool) {
        let mut counters = self.counters();
        let mut key = format!("{method} {path}");
        if counters.requests.len() >= MAX_COUNTED_PATHS && !counters.requests.contains_key(&key) {
            // A scan of ever-new paths must not grow the twin without bound.
            key = format!("{method} (other paths)");
        }
        *counters.requests.entry(key).or_default() += 1;
        if write {
            counters.writes += 1;
        }
    }

    /// The counters as `GET /_twin/counters` shows them.
    fn counters_body(&self) -> Value {
        let counters = self.counters();
        json!({"requests": counters.requests, "writes": counters.writes})
    }

    /// Activates a parsed fault.
    fn set_fault(&self, spec: FaultSpec) {
        match spec {
            FaultSpec::Refuse { duration } => {
                self.refusal.send_replace(Some(Instant::now() + duration));
            }
            spec => self.faults().set(spec),
        }
    }

    /// Clears every fault, the refusal included.
    fn clear_faults(&self) {
        self.faults().clear();
        self.refusal.send_replace(None);
    }

    /// `{"faults": [...]}`: every active fault as the body that would recreate what is left.
    fn faults_body(&self) -> Value {
        let mut faults = self.faults().view();
        if let Some(until) = self.refusing_until() {
            let left = until.saturating_duration_since(Instant::now());
            faults.push(json!({"refuse_connections_s": left.as_secs_f64()}));
        }
        json!({"faults": faults})
    }
}

/// The Admin API behind the control layer (the layer also serves `/_twin` when enabled).
pub(crate) fn admin_app(state: Arc<AdminState>) -> Router {
    let app = if state.config().edition == "enterprise" {
        super::workspaces::router(Arc::clone(&state))
    } else {
        admin::router(Arc::clone(&state))
    };
    app.layer(middleware::from_fn_with_state(state, layer))
}

/// Serves the Admin API with the control layer on `listener`, with connections that
/// faults can drop and a listener that `refuse_connections_s` closes.
pub(crate) fn serve_admin(
    listener: tokio::net::TcpListener,
    state: &Arc<AdminState>,
) -> std::io::Result<Server> {
    listener::serve(
        listener,
        admin_app(Arc::clone(state)),
        state.control.refusals(),
    )
}

/// Counts the request, serves `/_twin`, and applies the faults around the Admin API.
async fn layer(State(state): State<Arc<AdminState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if state.config().control && (path == "/_twin" || path.starts_with("/_twin/")) {
        return with_server(&state, control(&state, request).await);
    }
    let method = request.method().clone();
    let endpoint = if super::workspaces::is_crud(&state, &path) {
        Some(EndpointKind::Entity)
    } else {
        admin::endpoint(&state, super::workspaces::unprefixed(&state, &path))
    };
    let write = matches!(endpoint, Some(EndpointKind::Entity | EndpointKind::Config))
        && matches!(
            method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
    state.control.count(&method, &path, write);
    let kill = request.extensions().get::<ConnectionKill>().cloned();
    // A request on a connection opened before the refusal began sees it closed.
    if state.control.refusing_until().is_some() {
        return drop_connection(&state, kill).await;
    }
    let (action, delay) = state.control.faults().on_request(RequestKind {
        path: &path,
        write,
        entity: endpoint == Some(EndpointKind::Entity),
        config_post: endpoint == Some(EndpointKind::Config) && method == Method::POST,
    });
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match action {
        Action::Pass => next.run(request).await,
        Action::Fail(status) => with_server(&state, failure(status)),
        Action::Drop(When::Before) => drop_connection(&state, kill).await,
        Action::Drop(When::After) => {
            // The change is made, then the answer is lost: the client cannot tell.
            let _applied = next.run(request).await;
            drop_connection(&state, kill).await
        }
        Action::Late(late) => {
            // Kong goes on with a write whose client gave up: the change lands regardless.
            let applied = tokio::spawn(async move {
                tokio::time::sleep(late).await;
                next.run(request).await
            });
            applied
                .await
                .unwrap_or_else(|_| with_server(&state, failure(500)))
        }
        Action::DatabaseDown => with_server(&state, failure(500)),
        Action::ConfigBusy => {
            let mut response = message(
                StatusCode::TOO_MANY_REQUESTS,
                "Currently loading previous configuration",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            with_server(&state, response)
        }
    }
}

/// Closes the request's connection without an answer (never returns when it can).
async fn drop_connection(state: &AdminState, kill: Option<ConnectionKill>) -> Response {
    match kill {
        Some(kill) => {
            kill.kill();
            std::future::pending().await
        }
        // A listener that cannot drop connections: the nearest thing, a 500 that closes it.
        None => {
            let mut response = with_server(state, failure(500));
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// An injected failure: Kong's 500 body, or the status's reason for other statuses.
fn failure(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = match status {
        StatusCode::INTERNAL_SERVER_ERROR => "An unexpected error occurred",
        other => other
            .canonical_reason()
            .unwrap_or("An unexpected error occurred"),
    };
    message(status, text)
}

/// Adds Kong's `Server` header to a response the dispatcher did not make.
fn with_server(state: &AdminState, mut response: Response) -> Response {
    if let Ok(server) = HeaderValue::from_str(&format!("kong/{}", state.config().version)) {
        response.headers_mut().insert(header::SERVER, server);
    }
    response
}

/// Serves `/_twin/...`.
async fn control(state: &AdminState, request: Request) -> Response {
    if !admin::authorized(state.config(), request.headers()) {
        return message(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials. Token or User credentials required",
        );
    }
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().trim_end_matches('/');
    let query = parts.uri.query().unwrap_or_default();
    let control = &state.control;
    match (path, &parts.method) {
        ("/_twin/counters", &Method::GET) => {
            json_response(StatusCode::OK, &control.counters_body())
        }
        ("/_twin/reset", &Method::POST) => {
            *control.counters() = Counters::default();
            control.rate_limits.clear();
            if query_flag(query, "state") {
                reset_state(state);
            }
            json_response(StatusCode::OK, &control.counters_body())
        }
        ("/_twin/faults", &Method::GET) => json_response(StatusCode::OK, &control.faults_body()),
        ("/_twin/faults", &Method::DELETE) => {
            control.clear_faults();
            empty(StatusCode::NO_CONTENT)
        }
        ("/_twin/faults", &Method::POST) => {
            let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
                return message(StatusCode::BAD_REQUEST, "body too large");
            };
            let parsed = serde_json::from_slice::<Value>(&bytes)
                .map_err(|_| "Cannot parse JSON body".to_owned())
                .and_then(|body| faults::parse(&body));
            match parsed {
                Ok(spec) => {
                    control.set_fault(spec);
                    json_response(StatusCode::CREATED, &control.faults_body())
                }
                Err(reason) => message(StatusCode::BAD_REQUEST, &reason),
            }
        }
        ("/_twin/snapshot", &Method::GET) => {
            json_response(StatusCode::OK, &snapshot(&state.store()))
        }
        ("/_twin/counters" | "/_twin/reset" | "/_twin/faults" | "/_twin/snapshot", _) => {
            message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        }
        _ => message(StatusCode::NOT_FOUND, "Not found"),
    }
}

/// Empties the store and forgets the loaded configuration's hash.
fn reset_state(state: &AdminState) {
    let mut store = state.store();
    *store = Store::new(store.registry().clone());
    *state.config_hash() = config_api::EMPTY_HASH.to_owned();
}

/// Every collection's entities, by collection name, in id order.
fn snapshot(store: &Store) -> Value {
    let mut collections = Map::new();
    for schema in &store.registry().schemas {
        let page = store.list(schema.collection, ListFilter::default(), usize::MAX);
        let rows = page.entities.into_iter().map(Value::Object).collect();
        collections.insert(schema.collection.to_owned(), Value::Array(rows));
    }
    Value::Object(collections)
}

/// Whether query flag `name` is on (`true`, `1`, `yes`, `on`).
fn query_flag(query: &str, name: &str) -> bool {
    query.split('&').any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
        key == name
            && matches!(
                value.to_ascii_lowercase().as_str(),
                "1" | "true" | "on" | "yes"
            )
    })
}
