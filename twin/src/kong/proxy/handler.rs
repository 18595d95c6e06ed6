//! The proxy's request pipeline, as Kong's runloop: route (404), protocol checks,
//! plugins, service and balancer (503), forward with retries (502/504), then Kong's
//! response headers. Main types: [`Proxy`] (shared by a twin's proxy listeners) and the
//! [`handle`] fallback handler.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::serve::IncomingStream;
use serde_json::Value;
use tokio::net::TcpListener;

use super::balancer::{Balancer, Destination, NoPeer, Peer};
use super::forward::{Failure, Upstreams};
use super::plugins::{self, Context, Effects, Exit, PluginRequest, Scope};
use super::reply::{self, Flavor};
use super::router::{self, RegexCache, RequestFacts, RouteMatch};
use crate::kong::admin::{AdminState, parse_query};
use crate::kong::entities::checks::split_host_port;
use crate::kong::store::text;
use crate::kong::store::{Entity, Store};

/// Headers that belong to one connection and are never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
];

/// State shared by every proxy listener of one twin.
#[derive(Debug)]
pub(crate) struct Proxy {
    /// The twin's state; its store is read at every request.
    admin: Arc<AdminState>,
    /// Round-robin positions per upstream.
    balancer: Balancer,
    /// Pooled upstream connections.
    upstreams: Upstreams,
    /// Compiled route regexes.
    regexes: RegexCache,
    /// Version-dependent behaviour.
    flavor: Flavor,
}

impl Proxy {
    /// The proxy of the twin whose state is `admin`.
    pub(crate) fn new(admin: Arc<AdminState>) -> Self {
        let flavor = Flavor::for_version(&admin.config().version);
        Self {
            admin,
            balancer: Balancer::default(),
            upstreams: Upstreams::default(),
            regexes: RegexCache::default(),
            flavor,
        }
    }
}

/// One listener's view: the shared proxy, whether it speaks TLS, and its address.
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    /// The shared proxy.
    pub(crate) proxy: Arc<Proxy>,
    /// The listener terminates TLS (`https`).
    pub(crate) tls: bool,
    /// The listener's bound address (Kong's `server_port` comes from it).
    pub(crate) address: SocketAddr,
}

/// The client's address, recorded per connection by the plain listener
/// (`into_make_service_with_connect_info::<ClientAddress>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddress(pub(crate) SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for ClientAddress {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// A request as the pipeline needs it.
#[derive(Debug)]
struct Incoming {
    /// Method.
    method: Method,
    /// Path without the query.
    path: String,
    /// Raw query (without `?`), if any.
    query: Option<String>,
    /// Decoded query pairs.
    query_pairs: Vec<(String, String)>,
    /// The `Host` header as sent (with its port).
    host_header: Option<String>,
    /// The host, lowercased, without port.
    host: String,
    /// Request headers.
    headers: HeaderMap,
    /// `http` or `https`.
    scheme: &'static str,
    /// The client's IP, when known.
    client: Option<IpAddr>,
    /// The port the client connected to.
    port: u16,
    /// Request id (`X-Kong-Request-Id`).
    request_id: String,
    /// When the request arrived.
    started: Instant,
}

/// What the store decided for a request that goes upstream.
#[derive(Debug)]
struct Plan {
    /// The matched route and service.
    matched: RouteMatch,
    /// The service.
    service: Entity,
    /// Where to send it.
    destination: Destination,
    /// Plugin changes to the upstream request.
    effects: Effects,
}

/// The largest request body the proxy buffers (Kong buffers larger ones to disk; a twin
/// answers 413 instead of growing without bound).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Serves one proxied request (the proxy router's fallback).
pub(crate) async fn handle(State(listener): State<Listener>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let (parts, body) = request.into_parts();
    let incoming = incoming(&listener, &parts, request_id, started);
    let proxy = &listener.proxy;
    let flavor = &proxy.flavor;
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    let read = if declared.is_some_and(|length| length > MAX_BODY) {
        Err(true)
    } else {
        axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|error| error.to_string().contains("length limit"))
    };
    let mut response = match read {
        Err(too_large) => {
            let (status, text) = if too_large {
                (StatusCode::PAYLOAD_TOO_LARGE, "Payload too large")
            } else {
                (StatusCode::BAD_REQUEST, "Bad request")
            };
            local(
                flavor,
                &incoming,
                reply::error(flavor, status, text, &incoming.request_id),
            )
        }
        Ok(body) => {
            let plan = {
                let mut store = proxy.admin.store();
                plan(proxy, &mut store, &incoming, &body)
            };
            match plan {
                Err(response) => local(flavor, &incoming, response),
                Ok(plan) => {
                    let extra = plan.effects.response_headers.clone();
                    let mut response = forward(proxy, plan, &incoming, body).await;
                    for (name, value) in extra {
                        insert(response.headers_mut(), &name, &value);
                    }
                    response
                }
            }
        }
    };
    if flavor.request_id {
        insert(
            response.headers_mut(),
            "x-kong-request-id",
            &incoming.request_id,
        );
    }
    response
}

/// Reads what routing and forwarding need from the request head.
fn incoming(listener: &Listener, parts: &Parts, request_id: String, started: Instant) -> Incoming {
    let host_header = parts
        .headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|authority| authority.to_string()));
    let host = host_header
        .as_deref()
        .map(|text| split_host_port(text).map_or(text, |(host, _)| host))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let query = parts.uri.query().map(str::to_owned);
    Incoming {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query_pairs: query.as_deref().map(parse_query).unwrap_or_default(),
        query,
        host_header,
        host,
        headers: parts.headers.clone(),
        scheme: if listener.tls { "https" } else { "http" },
        client: parts
            .extensions
            .get::<ConnectInfo<ClientAddress>>()
            .map(|ConnectInfo(ClientAddress(address))| address.ip()),
        port: listener.address.port(),
        request_id,
        started,
    }
}

/// Routes the request and runs the plugins against the live store; the plan, or the
/// response Kong gives instead.
fn plan(
    proxy: &Proxy,
    store: &mut Store,
    incoming: &Incoming,
    body: &[u8],
) -> Result<Plan, Response> {
    let flavor = &proxy.flavor;
    let error = |status: StatusCode, message: &str| {
        reply::error(flavor, status, message, &incoming.request_id)
    };
    let facts = RequestFacts {
        method: incoming.method.as_str(),
        host: &incoming.host,
        port: incoming.port,
        path: &incoming.path,
        headers: &incoming.headers,
        sni: None,
    };
    let service_of = |id: &str| store.find("services", id).cloned();
    let Some(matched) = router::find(store.rows("routes"), service_of, &facts, &proxy.regexes)
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "no Route matched with those values",
        ));
    };
    protocol_checks(flavor, &matched.route, incoming)?;
    let route_id = text(&matched.route, "id");
    let service_id = matched.service.as_ref().map(|service| text(service, "id"));
    let scope = Scope {
        route: Some(route_id),
        service: service_id,
        consumer: None,
    };
    let request = PluginRequest {
        protocol: incoming.scheme,
        method: incoming.method.as_str(),
        path: &incoming.path,
        headers: &incoming.headers,
        query: &incoming.query_pairs,
        body,
        client: incoming.client,
    };
    let context = Context {
        flavor,
        now: crate::kong::ttl::now(),
        counters: &proxy.admin.control.rate_limits,
    };
    let effects =
        plugins::run(store, scope, &request, context).map_err(|exit| {
            match exit {
                Exit::Error {
                    status,
                    message,
                    headers,
                } => {
                    let mut response = error(status, &message);
                    for (name, value) in headers {
                        insert(response.headers_mut(), &name, &value);
                    }
                    response
                }
                Exit::Json {
                    status,
                    body,
                    headers,
                } => {
                    let mut response = reply::with_body(
                        status,
                        body.to_string(),
                        "application/json; charset=utf-8",
                    );
                    for (name, value) in headers {
                        insert(response.headers_mut(), &name, &value);
                    }
                    response
                }
                Exit::Body {
                    status,
                    body,
                    content_type,
                } => reply::with_body(status, body, &content_type),
            }
        })?;
    let Some(service) = matched.service.clone() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no Service found with those values",
        ));
    };
    let destination = super::balancer::destination(store, &service).map_err(|NoPeer| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "failure to get a peer from the ring-balancer",
        )
    })?;
    Ok(Plan {
        matched,
        service,
        destination,
        effects,
    })
}

/// HTTPS-only routes refuse plain HTTP (426 or a redirect); gRPC routes refuse plain requests.
fn protocol_checks(flavor: &Flavor, route: &Entity, incoming: &Incoming) -> Result<(), Response> {
    let protocols: Vec<&str> = route
        .get("protocols")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let has = |protocol: &str| protocols.contains(&protocol);
    if has("https") && !has("http") && incoming.scheme != "https" {
        let code = route
            .get("https_redirect_status_code")
            .and_then(Value::as_u64)
            .unwrap_or(426);
        if code == 426 {
            let mut response = reply::error(
                flavor,
                StatusCode::UPGRADE_REQUIRED,
                "Please use HTTPS protocol",
                &incoming.request_id,
            );
            insert(response.headers_mut(), "connection", "Upgrade");
            insert(response.headers_mut(), "upgrade", "TLS/1.2, HTTP/1.1");
            return Err(response);
        }
        let status = u16::try_from(code)
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::MOVED_PERMANENTLY);
        let mut location = format!("https://{}{}", incoming.host, incoming.path);
        if let Some(query) = &incoming.query {
            location = format!("{location}?{query}");
        }
        let mut response = reply::with_body(status, String::new(), "text/plain");
        response.headers_mut().remove(header::CONTENT_TYPE);
        insert(response.headers_mut(), "location", &location);
        return Err(response);
    }
    if has("grpc") || has("grpcs") {
        let grpc = incoming
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/grpc"));
        if !grpc {
            return Err(reply::error(
                flavor,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Non-gRPC request matched gRPC route",
                &incoming.request_id,
            ));
        }
        return Err(reply::error(
            flavor,
            StatusCode::UPGRADE_REQUIRED,
            "Please use HTTP2 protocol",
            &incoming.request_id,
        ));
    }
    Ok(())
}

/// Sends the request to the plan's destination, retrying other peers on connection
/// failures up to the service's `retries`; the upstream's response with Kong's headers.
async fn forward(
    proxy: &Proxy,
    plan: Plan,
    incoming: &Incoming,
    body: axum::body::Bytes,
) -> Response {
    let flavor = &proxy.flavor;
    let millis = |field: &str| {
        Duration::from_millis(
            plan.service
                .get(field)
                .and_then(Value::as_u64)
                .unwrap_or(60_000),
        )
    };
    let (connect, read) = (millis("connect_timeout"), millis("read_timeout"));
    let retries = plan
        .service
        .get("retries")
        .and_then(Value::as_u64)
        .unwrap_or(5);
    let upstream_path = router::upstream_path(
        plan.matched.route.get("strip_path") != Some(&Value::Bool(false)),
        plan.matched.matched_path.as_deref(),
        &incoming.path,
        plan.service.get("path").and_then(Value::as_str),
    );
    let mut tried: Vec<String> = Vec::new();
    let mut last = Failure::Broken;
    for attempt in 0..=retries {
        let (host, port, host_header) = match &plan.destination {
            Destination::Direct { host, port } => (host.as_str(), *port, None),
            Destination::Upstream {
                id,
                peers,
                host_header,
            } => {
                let Some(Peer { id, host, port, .. }) = proxy.balancer.pick(id, peers, &tried)
                else {
                    break;
                };
                tried.push(id.clone());
                (host.as_str(), *port, host_header.as_deref())
            }
        };
        let request = upstream_request(
            flavor,
            &plan,
            incoming,
            &upstream_path,
            (host, port, host_header),
            body.clone(),
        );
        let Ok(request) = request else {
            return local(
                flavor,
                incoming,
                reply::error(
                    flavor,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unexpected error occurred",
                    &incoming.request_id,
                ),
            );
        };
        let sent = Instant::now();
        match proxy.upstreams.send(request, connect, read).await {
            Ok(response) => return proxied(flavor, incoming, response, sent),
            Err(Failure::Connect { timed_out }) => {
                let direct = matches!(plan.destination, Destination::Direct { .. });
                if direct && attempt == 0 && !timed_out && !resolves(host, port).await {
                    return local(
                        flavor,
                        incoming,
                        reply::error(
                            flavor,
                            StatusCode::SERVICE_UNAVAILABLE,
                            "name resolution failed",
                            &incoming.request_id,
                        ),
                    );
                }
                last = Failure::Connect { timed_out };
            }
            Err(failure) => {
                last = failure;
                break;
            }
        }
    }
    let (status, message) = match last {
        Failure::Timeout | Failure::Connect { timed_out: true } => (
            StatusCode::GATEWAY_TIMEOUT,
            "The upstream server is timing out",
        ),
        Failure::Connect { timed_out: false } | Failure::Broken => (
            StatusCode::BAD_GATEWAY,
            "An invalid response was received from the upstream server",
        ),
    };
    local(
        flavor,
        incoming,
        reply::error(flavor, status, message, &incoming.request_id),
    )
}

/// Whether `host` resolves (IP addresses always do).
async fn resolves(host: &str, port: u16) -> bool {
    host.parse::<IpAddr>().is_ok()
        || tokio::net::lookup_host((host, port))
            .await
            .is_ok_and(|mut found| found.next().is_some())
}

/// The request Kong sends upstream: the client's, with the upstream path and query, the
/// `Host` Kong chooses, `X-Forwarded-*`, `X-Real-IP`, `Via` (3.8+), `X-Kong-Request-Id`
/// (3.5+) and the plugins' header and query changes.
fn upstream_request(
    flavor: &Flavor,
    plan: &Plan,
    incoming: &Incoming,
    path: &str,
    (host, port, host_header): (&str, u16, Option<&str>),
    body: axum::body::Bytes,
) -> Result<axum::http::Request<Body>, axum::http::Error> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let query = upstream_query(incoming, &plan.effects.clear_query);
    let uri: Uri = match query {
        Some(query) => format!("http://{authority}{path}?{query}"),
        None => format!("http://{authority}{path}"),
    }
    .parse()?;
    let mut headers = incoming.headers.clone();
    for name in HOP_BY_HOP.iter().chain(&["host", "content-length"]) {
        headers.remove(*name);
    }
    for name in &plan.effects.clear_headers {
        headers.remove(name.as_str());
    }
    for (name, value) in &plan.effects.set_headers {
        insert(&mut headers, name, value);
    }
    let preserve_host = plan.matched.route.get("preserve_host") == Some(&Value::Bool(true));
    let upstream_host = match (preserve_host, &incoming.host_header) {
        (true, Some(original)) => original.clone(),
        _ => {
            let name = host_header.map_or_else(|| authority_host(host), str::to_owned);
            if port == 80 {
                name
            } else {
                format!("{name}:{port}")
            }
        }
    };
    insert(&mut headers, "host", &upstream_host);
    if let Some(client) = incoming.client {
        let forwarded_for = match incoming
            .headers
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
        {
            Some(earlier) => format!("{earlier}, {client}"),
            None => client.to_string(),
        };
        insert(&mut headers, "x-forwarded-for", &forwarded_for);
        insert(&mut headers, "x-real-ip", &client.to_string());
    }
    insert(&mut headers, "x-forwarded-proto", incoming.scheme);
    insert(&mut headers, "x-forwarded-host", &incoming.host);
    insert(&mut headers, "x-forwarded-port", &incoming.port.to_string());
    insert(&mut headers, "x-forwarded-path", &incoming.path);
    let strip_path = plan.matched.route.get("strip_path") != Some(&Value::Bool(false));
    match plan
        .matched
        .matched_path
        .as_deref()
        .filter(|prefix| strip_path && *prefix != "/")
    {
        Some(prefix) => insert(&mut headers, "x-forwarded-prefix", prefix),
        None => {
            headers.remove("x-forwarded-prefix");
        }
    }
    if flavor.via_with_protocol {
        let via = match incoming
            .headers
            .get(header::VIA)
            .and_then(|value| value.to_str().ok())
        {
            Some(earlier) => format!("{earlier}, {}", flavor.via()),
            None => flavor.via(),
        };
        insert(&mut headers, "via", &via);
    }
    if flavor.request_id {
        insert(&mut headers, "x-kong-request-id", &incoming.request_id);
    }
    let mut request = axum::http::Request::builder()
        .method(incoming.method.clone())
        .uri(uri)
        .body(Body::from(body))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// A host for the `Host` header: IPv6 in brackets.
fn authority_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The raw query without the arguments named in `removed` (`hide_credentials`).
fn upstream_query(incoming: &Incoming, removed: &[String]) -> Option<String> {
    let query = incoming.query.as_deref()?;
    if removed.is_empty() {
        return Some(query.to_owned());
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = parse_query(pair).into_iter().next().map(|(name, _)| name);
            !name.is_some_and(|name| removed.contains(&name))
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// The upstream's response with Kong's proxied-response headers.
fn proxied(flavor: &Flavor, incoming: &Incoming, response: Response, sent: Instant) -> Response {
    let upstream_latency = elapsed_millis(sent);
    let proxy_latency = sent
        .saturating_duration_since(incoming.started)
        .as_millis()
        .to_string();
    let (mut parts, body) = response.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    let via = match (
        flavor.via_with_protocol,
        parts
            .headers
            .get(header::VIA)
            .and_then(|value| value.to_str().ok()),
    ) {
        (true, Some(earlier)) => format!("{earlier}, {}", flavor.via()),
        _ => flavor.via(),
    };
    insert(&mut parts.headers, "via", &via);
    insert(
        &mut parts.headers,
        "x-kong-upstream-latency",
        &upstream_latency,
    );
    insert(&mut parts.headers, "x-kong-proxy-latency", &proxy_latency);
    if !parts.headers.contains_key(header::SERVER) {
        insert(&mut parts.headers, "server", &flavor.server);
    }
    Response::from_parts(parts, body)
}

/// A response Kong produced itself: `Server` and `X-Kong-Response-Latency`.
fn local(flavor: &Flavor, incoming: &Incoming, mut response: Response) -> Response {
    insert(response.headers_mut(), "server", &flavor.server);
    insert(
        response.headers_mut(),
        "x-kong-response-latency",
        &elapsed_millis(incoming.started),
    );
    response
}

/// Milliseconds since `since`, as text.
fn elapsed_millis(since: Instant) -> String {
    since.elapsed().as_millis().to_string()
}

/// Sets header `name` to `value`, skipping values that are not valid header text.
fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
        headers.insert(name, value);
    }
}
