//! A stand-in for one Kong data-plane node, for rehearsing restarts, drains and rolling
//! upgrades on a laptop: an HTTP server whose version lives in a state directory (so
//! "upgrade" = rewrite `<state_dir>/version` and restart), with a PID file, Kong-like `/`,
//! `/status` and `/status/ready` (with draining), and an echo of every other request that
//! names the node that answered. Main items: [`serve`] / [`NodeHandle`] and [`run`].

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The file holding the version the node serves.
pub const VERSION_FILE: &str = "version";

/// The file holding the node's PID while it runs.
pub const PID_FILE: &str = "node.pid";

/// The file holding the node's id, kept across restarts.
pub const NODE_ID_FILE: &str = "node_id";

/// Header asking the echo route to wait before answering (milliseconds), to simulate a
/// slow request.
pub const DELAY_HEADER: &str = "x-node-delay-ms";

/// Longest delay the echo route honours.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// How a node stand-in is started (`runsheet twin node`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory holding the version, PID and node id files (created if missing).
    pub state_dir: PathBuf,
    /// Version written to `<state_dir>/version` when that file is missing.
    pub version: String,
}

/// Serves a node on `config.listen` until SIGTERM or SIGINT, then stops gracefully
/// (in-flight requests finish, the PID file is removed).
pub async fn run(config: NodeConfig) -> io::Result<()> {
    // Listening for signals before serving: once the node answers, a signal stops it.
    let signals = Signals::new()?;
    let listener = TcpListener::bind(config.listen).await?;
    let node = serve(listener, &config.state_dir, &config.version).await?;
    signals.received().await;
    node.stop().await
}

/// The signals that stop a node: SIGTERM and SIGINT.
#[cfg(unix)]
struct Signals {
    /// SIGTERM.
    terminate: tokio::signal::unix::Signal,
    /// SIGINT.
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    /// Starts listening.
    fn new() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for one of them.
    async fn received(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// The signal that stops a node: Ctrl-C.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    /// Starts listening.
    fn new() -> io::Result<Self> {
        Ok(Self)
    }

    /// Waits for Ctrl-C.
    async fn received(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves a node on `listener` with the version read from `<state_dir>/version` (written
/// with `version` first when missing); writes `<state_dir>/node.pid`.
pub async fn serve(
    listener: TcpListener,
    state_dir: impl AsRef<Path>,
    version: &str,
) -> io::Result<NodeHandle> {
    let state_dir = state_dir.as_ref().to_path_buf();
    tokio::fs::create_dir_all(&state_dir).await?;
    let version = read_or_init(&state_dir.join(VERSION_FILE), version).await?;
    let node_id = read_or_init(
        &state_dir.join(NODE_ID_FILE),
        &uuid::Uuid::new_v4().to_string(),
    )
    .await?;
    let address = listener.local_addr()?;
    let pid_file = state_dir.join(PID_FILE);
    tokio::fs::write(&pid_file, format!("{}\n", std::process::id())).await?;
    let node = Arc::new(Node {
        version: version.clone(),
        node_id,
        hostname: hostname(),
        listen: address,
        requests: AtomicU64::new(0),
        draining: AtomicBool::new(false),
    });
    let app = Router::new().fallback(handle).with_state(node);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(NodeHandle {
        address,
        version,
        pid_file,
        stop: Some(stop),
        task: Some(task),
    })
}

/// The trimmed content of `path`, after writing `initial` there when the file is missing.
async fn read_or_init(path: &Path, initial: &str) -> io::Result<String> {
    if !tokio::fs::try_exists(path).await? {
        tokio::fs::write(path, format!("{initial}\n")).await?;
    }
    let text = tokio::fs::read_to_string(path).await?;
    let value = text.trim();
    if value.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(value.to_owned())
}

/// The machine's hostname, as Kong reports it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "kong-node".to_owned())
}

/// A running node; [`NodeHandle::stop`] stops it gracefully. Dropping it stops the server
/// at once and leaves the PID file behind, as a killed process would.
#[derive(Debug)]
pub struct NodeHandle {
    /// The bound address.
    address: SocketAddr,
    /// The version served.
    version: String,
    /// `<state_dir>/node.pid`.
    pid_file: PathBuf,
    /// Signals a graceful stop.
    stop: Option<oneshot::Sender<()>>,
    /// The server task.
    task: Option<JoinHandle<io::Result<()>>>,
}

impl NodeHandle {
    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The version served (read from the state directory at start).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Stops accepting connections, lets in-flight requests finish, removes the PID file.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.map_err(io::Error::other)??;
        }
        match tokio::fs::remove_file(&self.pid_file).await {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One node's identity and state.
#[derive(Debug)]
struct Node {
    /// Version served.
    version: String,
    /// Node UUID (kept in the state directory).
    node_id: String,
    /// Reported hostname.
    hostname: String,
    /// Bound address.
    listen: SocketAddr,
    /// Requests served, for `/status`.
    requests: AtomicU64,
    /// Told to drain (until restarted).
    draining: AtomicBool,
}

/// Serves one request.
async fn handle(
    State(node): State<Arc<Node>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    node.requests.fetch_add(1, Ordering::Relaxed);
    let mut response = match (uri.path(), &method) {
        ("/", &Method::GET) => json_response(StatusCode::OK, &node_info(&node)),
        ("/status", &Method::GET) => json_response(StatusCode::OK, &status(&node)),
        ("/status/ready", &Method::GET) => readiness(&node),
        ("/status/ready", &Method::POST) => drain(&node, &body),
        ("/status" | "/status/ready", _) => {
            message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        }
        _ => echo(&node, &method, &uri, &headers, body.len()).await,
    };
    if let Ok(server) = HeaderValue::from_str(&format!("kong/{}", node.version)) {
        response.headers_mut().insert(header::SERVER, server);
    }
    response
}

/// `GET /`: Kong's node information for a data plane.
fn node_info(node: &Node) -> Value {
    json!({
        "version": node.version,
        "edition": if node.version.split('.').count() > 3 { "enterprise" } else { "community" },
        "tagline": "Welcome to kong",
        "hostname": node.hostname,
        "node_id": node.node_id,
        "lua_version": "LuaJIT 2.1.0-20231117",
        "timers": {"running": 0, "pending": 1},
        "pids": {"master": std::process::id(), "workers": [std::process::id()]},
        "plugins": {"available_on_server": {}, "enabled_in_cluster": []},
        "configuration": {
            "database": "off",
            "role": "data_plane",
            "proxy_listen": [node.listen.to_string()],
            "status_listen": [node.listen.to_string()],
            "admin_listen": ["off"],
            "router_flavor": "traditional_compatible",
            "log_level": "notice",
        },
    })
}

/// `GET /status`: a data plane's status (no `database`, a `configuration_hash`).
fn status(node: &Node) -> Value {
    let requests = node.requests.load(Ordering::Relaxed);
    json!({
        "server": {
            "connections_accepted": requests, "connections_active": 1, "connections_handled": requests,
            "connections_reading": 0, "connections_writing": 1, "connections_waiting": 0,
            "total_requests": requests,
        },
        "configuration_hash": configuration_hash(&node.version),
        "memory": {
            "lua_shared_dicts": {
                "kong": {"capacity": "5.00 MiB", "allocated_slabs": "0.04 MiB"},
                "kong_db_cache": {"capacity": "128.00 MiB", "allocated_slabs": "0.80 MiB"},
            },
            "workers_lua_vms": [{"pid": std::process::id(), "http_allocated_gc": "50.11 MiB"}],
        },
    })
}

/// A stable, non-zero 32-hex-digit hash standing for the node's (fixed) configuration.
fn configuration_hash(version: &str) -> String {
    Sha256::digest(format!("runsheet node stand-in {version}").as_bytes())[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `GET /status/ready`: 200 ready, 503 draining.
fn readiness(node: &Node) -> Response {
    if node.draining.load(Ordering::Relaxed) {
        message(StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        message(StatusCode::OK, "ready")
    }
}

/// `POST /status/ready {"status":"draining"}`: 204, draining until restarted.
fn drain(node: &Node, body: &[u8]) -> Response {
    let draining = serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|body| body.get("status").and_then(Value::as_str) == Some("draining"));
    if !draining {
        return message(
            StatusCode::BAD_REQUEST,
            "expected {\"status\":\"draining\"}",
        );
    }
    node.draining.store(true, Ordering::Relaxed);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Any other request: 200 with what was received and which node answered.
async fn echo(
    node: &Node,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body_size: usize,
) -> Response {
    let delay = headers
        .get(DELAY_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    if let Some(delay) = delay {
        tokio::time::sleep(delay.min(MAX_DELAY)).await;
    }
    let mut received: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        received
            .entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "method": method.as_str(),
            "path": uri.path(),
            "query": uri.query().unwrap_or_default(),
            "headers": received,
            "body_size": body_size,
            "node": {
                "version": node.version,
                "listen": node.listen.to_string(),
                "node_id": node.node_id,
                "hostname": node.hostname,
            },
        }),
    );
    if let Ok(via) = HeaderValue::from_str(&format!("1.1 kong/{}", node.version)) {
        response.headers_mut().insert(header::VIA, via);
    }
    response
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

/// `{"message": text}`.
fn message(status: StatusCode, text: &str) -> Response {
    json_response(status, &json!({"message": text}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_hash_has_kongs_shape_and_is_not_the_empty_one() {
        let hash = configuration_hash("3.9.1");
        assert_eq!(hash.len(), 32);
        assert!(hash.chars().all(|digit| digit.is_ascii_hexdigit()));
        assert_ne!(hash, "0".repeat(32));
        assert_ne!(hash, configuration_hash("3.10.0"));
    }
}
