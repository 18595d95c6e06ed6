//! The twin's HTTP front: Basic auth, `/_twin` control, counters and faults around every
//! request, then `/ssg/ping`, `/restman/1.0/...`, `/graphman`, and published services for
//! every other path.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::control::{self, StoreCommand};
use super::gateway::Gateway;
use super::node::Lifecycle;
use super::resolver::http::Buffered;
use super::restman::{self, Request as RestmanRequest};
use super::store::Store;
use super::traffic;
use crate::kong::faults::{Action, When};
use crate::kong::listener::ConnectionKill;

/// Largest request body read (a bundle of thousands of services fits).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// The realm of the Basic challenge.
pub const REALM: &str = "L7SSGBasicRealm";

/// What Layer7 answers while it is not operational.
pub const NOT_OPERATIONAL: &str = "The server is not in an operational state";

/// One listener's view of the gateway: the state and how it is reached.
#[derive(Debug, Clone)]
pub(crate) struct Front {
    /// The gateway.
    pub(crate) gateway: Arc<Gateway>,
    /// `http` or `https`, for links.
    pub(crate) scheme: &'static str,
    /// Whether management (`/restman`, `/graphman`, `/_twin`) is served here (listen
    /// ports serve published services and ping only).
    pub(crate) management: bool,
}

/// The app of one listener.
pub(crate) fn app(front: Front) -> Router {
    Router::new().fallback(handle).with_state(front)
}

/// Serves one request.
async fn handle(State(front): State<Front>, request: Request) -> Response {
    let gateway = &front.gateway;
    let path = request.uri().path().to_owned();
    let area = Area::of(&path);
    if area == Area::Control && front.management && gateway.config.control {
        return control(gateway, request).await;
    }
    let method = request.method().clone();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let kill = request.extensions().get::<ConnectionKill>().cloned();
    // Graphman's body says whether it writes (a mutation outside test mode).
    let (request, write) = if area == Area::Graphman && front.management {
        match Buffered::read(request).await {
            Ok(buffered) => {
                let write = buffered.is_write();
                (Incoming::Graphman(buffered), write)
            }
            Err(response) => return response,
        }
    } else {
        let write = area == Area::Restman && restman::is_write(&method, &path, &query);
        (Incoming::Plain(request), write)
    };
    gateway.control.count(&method, &path, false);
    if gateway.control.refusing() {
        return drop_connection(kill).await;
    }
    if gateway.node.lifecycle() == Lifecycle::Starting && area != Area::Ping {
        return text(StatusCode::SERVICE_UNAVAILABLE, NOT_OPERATIONAL);
    }
    let (action, delay) = gateway.control.on_request(&path, write);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match action {
        Action::Pass => {}
        Action::Fail(status) => {
            return text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "Injected failure: nothing was changed",
            );
        }
        Action::Drop(When::Before) => return drop_connection(kill).await,
        Action::Drop(When::After) => {
            // The change is made, then the answer is lost: the client cannot tell.
            let _applied = dispatch(&front, area, request).await;
            return drop_connection(kill).await;
        }
        Action::Late(late) => {
            // The gateway goes on with a write whose client gave up: the change lands.
            let front = front.clone();
            let applied = tokio::spawn(async move {
                tokio::time::sleep(late).await;
                dispatch(&front, area, request).await
            });
            return applied.await.unwrap_or_else(|_| {
                text(StatusCode::INTERNAL_SERVER_ERROR, "the delayed write failed")
            });
        }
        Action::DatabaseDown | Action::ConfigBusy => {}
    }
    dispatch(&front, area, request).await
}

/// Which part of the gateway a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    /// `/_twin`.
    Control,
    /// `/ssg/ping`.
    Ping,
    /// `/restman/...`.
    Restman,
    /// `/graphman`.
    Graphman,
    /// Anything else: published services.
    Services,
}

impl Area {
    /// The area of `path`.
    fn of(path: &str) -> Self {
        let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
        if under("/_twin") {
            Self::Control
        } else if under("/ssg/ping") {
            Self::Ping
        } else if under("/restman") {
            Self::Restman
        } else if under("/graphman") {
            Self::Graphman
        } else {
            Self::Services
        }
    }
}

/// A request as it reaches [`dispatch`]: Graphman's with its body already read.
#[derive(Debug)]
enum Incoming {
    /// Any request but Graphman's.
    Plain(Request),
    /// A Graphman request.
    Graphman(Buffered),
}

/// Serves a request that passed the faults.
async fn dispatch(front: &Front, area: Area, incoming: Incoming) -> Response {
    let gateway = &front.gateway;
    let request = match incoming {
        Incoming::Graphman(buffered) => {
            if !authorized(gateway, buffered.headers()) {
                return challenge();
            }
            return buffered.serve(gateway);
        }
        Incoming::Plain(request) => request,
    };
    match area {
        Area::Ping => ping(gateway).await,
        Area::Restman | Area::Graphman | Area::Control if !front.management => traffic::not_found(),
        // Graphman requests on a management listener arrive as `Incoming::Graphman`.
        Area::Graphman => traffic::not_found(),
        Area::Restman => {
            if !authorized(gateway, request.headers()) {
                return challenge();
            }
            restman(front, request).await
        }
        // `/_twin` without `control`: a path like any other.
        Area::Control | Area::Services => published(gateway, request).await,
    }
}

/// `/ssg/ping`: 200 "OK" when running, 503 when made to fail or starting.
async fn ping(gateway: &Gateway) -> Response {
    let (failing, delay) = gateway.control.ping();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if failing || gateway.node.lifecycle() != Lifecycle::Running {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "<html><head><title>Gateway Ping</title></head><body>{NOT_OPERATIONAL}</body></html>\n"
            ),
        );
    }
    html(
        StatusCode::OK,
        "<html><head><title>Gateway Ping</title></head><body>OK</body></html>\n",
    )
}

/// `/restman/1.0/...`.
async fn restman(front: &Front, request: Request) -> Response {
    let gateway = &front.gateway;
    let (parts, body) = request.into_parts();
    let Some(path) = parts.uri.path().strip_prefix("/restman/1.0") else {
        return text(StatusCode::NOT_FOUND, "restman serves /restman/1.0/...");
    };
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost");
    let request = RestmanRequest {
        method: parts.method.clone(),
        path: path.to_owned(),
        query: restman::request::parse_query(parts.uri.query().unwrap_or_default()),
        body: body.to_vec(),
        base: format!("{}://{host}/restman/1.0", front.scheme),
        passphrase: passphrase(&parts.headers),
    };
    let reply = {
        let mut store = gateway.store();
        restman::handle(&mut store, &request)
    };
    if reply.changed {
        gateway.control.count_write();
    }
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = reply.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    response
}

/// The decoded `L7-key-passphrase` header (base64; taken as is when not base64).
fn passphrase(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("l7-key-passphrase")?.to_str().ok()?.trim();
    let decoded = STANDARD
        .decode(value)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Some(decoded.unwrap_or_else(|| value.to_owned()))
}

/// Any other path: the published service that resolves it, or Layer7's 404.
async fn published(gateway: &Gateway, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let behaviour = {
        let store = gateway.store();
        traffic::resolve(&store, &parts.method, parts.uri.path())
            .map(|service| traffic::behaviour(&store, service))
    };
    let Some(behaviour) = behaviour else {
        return traffic::not_found();
    };
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    traffic::answer(
        &gateway.client,
        behaviour,
        parts.method,
        path_and_query,
        parts.headers,
        body.to_vec(),
    )
    .await
}

/// `/_twin/...` (Basic auth required).
async fn control(gateway: &Arc<Gateway>, request: Request) -> Response {
    if !authorized(gateway, request.headers()) {
        return challenge();
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, 64 * 1024).await else {
        return text(StatusCode::BAD_REQUEST, "body too large");
    };
    let store = |command: StoreCommand| match command {
        StoreCommand::Snapshot => Ok(gateway.store().snapshot()),
        StoreCommand::Reset => {
            let fresh = Store::with_defaults().map_err(|error| error.to_string())?;
            *gateway.store() = fresh;
            Ok(serde_json::Value::Null)
        }
    };
    let (status, value) = control::serve(
        &gateway.control,
        &gateway.node,
        &parts.method,
        parts.uri.path(),
        parts.uri.query().unwrap_or_default(),
        &body,
        &store,
    );
    if status == StatusCode::NO_CONTENT {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        return response;
    }
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Whether the request carries the administrator's Basic credentials.
pub(crate) fn authorized(gateway: &Gateway, headers: &HeaderMap) -> bool {
    let Some(credentials) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, encoded) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(encoded)
        })
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
    else {
        return false;
    };
    let Some((user, password)) = credentials.split_once(':') else {
        return false;
    };
    user == gateway.config.username && password == gateway.config.password
}

/// 401 with the Basic challenge.
pub(crate) fn challenge() -> Response {
    let mut response = text(StatusCode::UNAUTHORIZED, "Authentication Required");
    if let Ok(value) = HeaderValue::from_str(&format!("Basic realm=\"{REALM}\"")) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Closes the request's connection without an answer.
async fn drop_connection(kill: Option<ConnectionKill>) -> Response {
    match kill {
        Some(kill) => {
            kill.kill();
            // Never answered: the connection is gone.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            text(StatusCode::SERVICE_UNAVAILABLE, NOT_OPERATIONAL)
        }
        None => {
            let mut response = text(StatusCode::SERVICE_UNAVAILABLE, NOT_OPERATIONAL);
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(Body::from(format!("{body}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    response
}

/// An HTML response.
fn html(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=UTF-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn paths_fall_in_their_areas() {
        assert_eq!(Area::of("/_twin/counters"), Area::Control);
        assert_eq!(Area::of("/ssg/ping"), Area::Ping);
        assert_eq!(Area::of("/restman/1.0/services"), Area::Restman);
        assert_eq!(Area::of("/graphman"), Area::Graphman);
        assert_eq!(Area::of("/restmanx"), Area::Services);
        assert_eq!(Area::of("/orders"), Area::Services);
    }

    #[test]
    fn only_a_committing_restman_request_is_a_write() {
        assert!(restman::is_write(&Method::PUT, "/restman/1.0/bundle", ""));
        assert!(!restman::is_write(
            &Method::PUT,
            "/restman/1.0/bundle",
            "test=true"
        ));
        assert!(!restman::is_write(
            &Method::GET,
            "/restman/1.0/services",
            ""
        ));
        assert!(restman::is_write(
            &Method::DELETE,
            "/restman/1.0/services/x",
            ""
        ));
    }
}
