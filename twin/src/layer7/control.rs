//! The Layer7 twin's `/_twin` control endpoint (only with `control: true`): counters,
//! faults (the Kong twin's write faults, latency and refusals, plus ping faults) and the
//! node lifecycle (`POST /_twin/node`). Main type: [`Control`].

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::node::{Node, Patch, Restart};
use crate::kong::faults::{self, Action, FaultSpec, Faults, RequestKind};

/// Distinct `"METHOD /path"` counters kept; later new paths are counted together.
const MAX_COUNTED_PATHS: usize = 10_000;

/// Longest ping delay (10 minutes).
const MAX_PING_DELAY_MS: u64 = 600_000;

/// Longest restart phase (1 hour).
const MAX_PHASE_MS: u64 = 3_600_000;

/// `GET /_twin/counters`.
#[derive(Debug, Default)]
struct Counters {
    /// Requests by `"METHOD /path"`.
    requests: BTreeMap<String, u64>,
    /// Requests that committed a change.
    writes: u64,
}

/// Ping faults.
#[derive(Debug, Default, Clone, Copy)]
struct PingFaults {
    /// `/ssg/ping` answers 503.
    failing: bool,
    /// `/ssg/ping` waits this long first.
    delay: Option<Duration>,
}

/// Counters, faults and the refusal deadline of one twin.
#[derive(Debug)]
pub(crate) struct Control {
    /// Counters since the last reset.
    counters: Mutex<Counters>,
    /// Write faults and latency (the Kong twin's).
    faults: Mutex<Faults>,
    /// Ping faults.
    ping: Mutex<PingFaults>,
    /// Until when `refuse_connections_s` refuses connections.
    fault_refusal: Mutex<Option<Instant>>,
    /// The refusal deadline the listener follows (fault or node down, the later).
    refusal: watch::Sender<Option<Instant>>,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            counters: Mutex::default(),
            faults: Mutex::default(),
            ping: Mutex::default(),
            fault_refusal: Mutex::default(),
            refusal: watch::Sender::new(None),
        }
    }
}

/// Locks a mutex, poisoned or not.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Control {
    /// Receives the refusal deadline, for the listener that closes itself.
    pub(crate) fn refusals(&self) -> watch::Receiver<Option<Instant>> {
        self.refusal.subscribe()
    }

    /// Whether connections are being refused now.
    pub(crate) fn refusing(&self) -> bool {
        (*self.refusal.borrow()).is_some_and(|until| until > Instant::now())
    }

    /// Publishes the later of the fault's and the node's refusal deadlines.
    pub(crate) fn publish_refusal(&self, node: &Node) {
        let fault = (*lock(&self.fault_refusal)).filter(|until| *until > Instant::now());
        let deadline = match (fault, node.refusing_until()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.refusal.send_replace(deadline);
    }

    /// Counts one request (`write`: it committed a change).
    pub(crate) fn count(&self, method: &Method, path: &str, write: bool) {
        let mut counters = lock(&self.counters);
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

    /// Counts a committed change of a request already counted.
    pub(crate) fn count_write(&self) {
        lock(&self.counters).writes += 1;
    }

    /// The fate of one request and its added delay.
    pub(crate) fn on_request(&self, path: &str, write: bool) -> (Action, Option<Duration>) {
        lock(&self.faults).on_request(RequestKind {
            path,
            write,
            entity: false,
            config_post: false,
        })
    }

    /// Whether `/ssg/ping` fails, and its delay.
    pub(crate) fn ping(&self) -> (bool, Option<Duration>) {
        let ping = *lock(&self.ping);
        (ping.failing, ping.delay)
    }

    /// The counters as `GET /_twin/counters` shows them.
    fn counters_body(&self) -> Value {
        let counters = lock(&self.counters);
        json!({"requests": counters.requests, "writes": counters.writes})
    }

    /// Every active fault as the body that would recreate it.
    fn faults_body(&self) -> Value {
        let mut faults = lock(&self.faults).view();
        let ping = *lock(&self.ping);
        if ping.failing {
            faults.push(json!({"ping_failing": true}));
        }
        if let Some(delay) = ping.delay {
            faults.push(
                json!({"ping_delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)}),
            );
        }
        if let Some(until) = (*lock(&self.fault_refusal)).filter(|until| *until > Instant::now()) {
            let left = until.saturating_duration_since(Instant::now());
            faults.push(json!({"refuse_connections_s": left.as_secs_f64()}));
        }
        json!({"faults": faults})
    }

    /// Activates a fault body; the error is a 400's message.
    fn set_fault(&self, body: &Value, node: &Node) -> Result<(), String> {
        if let Some(fields) = body.as_object() {
            for kong_only in ["database_unreachable", "config_busy"] {
                if fields.contains_key(kong_only) {
                    return Err(format!(
                        "{kong_only} is a Kong twin fault; the Layer7 twin has ping_failing and ping_delay_ms"
                    ));
                }
            }
            if let Some(value) = fields.get("ping_failing") {
                if fields.len() != 1 {
                    return Err("ping_failing takes no other field".to_owned());
                }
                lock(&self.ping).failing =
                    value.as_bool().ok_or("ping_failing: expected a boolean")?;
                return Ok(());
            }
            if let Some(value) = fields.get("ping_delay_ms") {
                if fields.len() != 1 {
                    return Err("ping_delay_ms takes no other field".to_owned());
                }
                let millis = value
                    .as_u64()
                    .filter(|millis| *millis <= MAX_PING_DELAY_MS)
                    .ok_or(format!(
                        "ping_delay_ms: expected an integer from 0 to {MAX_PING_DELAY_MS}"
                    ))?;
                lock(&self.ping).delay = (millis > 0).then(|| Duration::from_millis(millis));
                return Ok(());
            }
        }
        match faults::parse(body)? {
            FaultSpec::Refuse { duration } => {
                *lock(&self.fault_refusal) = Some(Instant::now() + duration);
                self.publish_refusal(node);
            }
            spec => lock(&self.faults).set(spec),
        }
        Ok(())
    }

    /// Clears every fault (the node's lifecycle is not a fault and stays).
    fn clear_faults(&self, node: &Node) {
        lock(&self.faults).clear();
        *lock(&self.ping) = PingFaults::default();
        *lock(&self.fault_refusal) = None;
        self.publish_refusal(node);
    }

    /// Counters back to zero.
    fn reset(&self) {
        *lock(&self.counters) = Counters::default();
    }
}

/// `POST /_twin/node` bodies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeCommand {
    /// `restart`, `stop`, `start` (absent: only change version and patches).
    #[serde(default)]
    action: Option<String>,
    /// Restart: how long connections are refused (ms).
    #[serde(default)]
    down_ms: u64,
    /// Restart: how long the node then answers 503 (ms).
    #[serde(default)]
    starting_ms: u64,
    /// The product version after the command.
    #[serde(default)]
    version: Option<String>,
    /// The installed patches after the command.
    #[serde(default)]
    patches: Option<Vec<Patch>>,
}

/// What a control request answers: status and JSON body.
pub(crate) type ControlReply = (StatusCode, Value);

/// Serves `/_twin/...` (authorization already checked). `reset_state` empties the store
/// to a new gateway's defaults; `snapshot` is the store's JSON.
pub(crate) fn serve(
    control: &Control,
    node: &Node,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
    store: &dyn Fn(StoreCommand) -> Result<Value, String>,
) -> ControlReply {
    let path = path.trim_end_matches('/');
    let message = |status: StatusCode, text: &str| (status, json!({"message": text}));
    match (path, method) {
        ("/_twin/counters", &Method::GET) => (StatusCode::OK, control.counters_body()),
        ("/_twin/reset", &Method::POST) => {
            control.reset();
            let state = query
                .split('&')
                .any(|pair| pair == "state=true" || pair == "state");
            if state && let Err(error) = store(StoreCommand::Reset) {
                return message(StatusCode::INTERNAL_SERVER_ERROR, &error);
            }
            (StatusCode::OK, control.counters_body())
        }
        ("/_twin/faults", &Method::GET) => (StatusCode::OK, control.faults_body()),
        ("/_twin/faults", &Method::DELETE) => {
            control.clear_faults(node);
            (StatusCode::NO_CONTENT, Value::Null)
        }
        ("/_twin/faults", &Method::POST) => {
            let parsed = serde_json::from_slice::<Value>(body)
                .map_err(|_| "Cannot parse JSON body".to_owned())
                .and_then(|body| control.set_fault(&body, node));
            match parsed {
                Ok(()) => (StatusCode::CREATED, control.faults_body()),
                Err(reason) => message(StatusCode::BAD_REQUEST, &reason),
            }
        }
        ("/_twin/node", &Method::GET) => (StatusCode::OK, json!(node.info())),
        ("/_twin/node", &Method::POST) => match node_command(node, body) {
            Ok(()) => {
                control.publish_refusal(node);
                (StatusCode::OK, json!(node.info()))
            }
            Err(reason) => message(StatusCode::BAD_REQUEST, &reason),
        },
        ("/_twin/snapshot", &Method::GET) => match store(StoreCommand::Snapshot) {
            Ok(snapshot) => (StatusCode::OK, snapshot),
            Err(error) => message(StatusCode::INTERNAL_SERVER_ERROR, &error),
        },
        (
            "/_twin/counters" | "/_twin/reset" | "/_twin/faults" | "/_twin/node"
            | "/_twin/snapshot",
            _,
        ) => message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        _ => message(StatusCode::NOT_FOUND, "Not found"),
    }
}

/// What the control endpoint asks of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreCommand {
    /// Back to a new gateway's defaults.
    Reset,
    /// The store as JSON.
    Snapshot,
}

/// Applies a `POST /_twin/node` body.
fn node_command(node: &Node, body: &[u8]) -> Result<(), String> {
    let command: NodeCommand = serde_json::from_slice(body).map_err(|error| {
        format!("expected {{\"action\": \"restart\"|\"stop\"|\"start\", \"down_ms\", \"starting_ms\", \"version\", \"patches\"}}: {error}")
    })?;
    if command.down_ms > MAX_PHASE_MS || command.starting_ms > MAX_PHASE_MS {
        return Err(format!("down_ms and starting_ms: at most {MAX_PHASE_MS}"));
    }
    match command.action.as_deref() {
        Some("restart") => node.restart(Restart {
            down: Duration::from_millis(command.down_ms),
            starting: Duration::from_millis(command.starting_ms),
            version: command.version,
            patches: command.patches,
        }),
        Some("stop") => {
            node.set_versions(command.version, command.patches);
            node.stop();
        }
        Some("start") => {
            node.set_versions(command.version, command.patches);
            node.start();
        }
        None => node.set_versions(command.version, command.patches),
        Some(other) => {
            return Err(format!(
                "action: expected restart, stop or start, got '{other}'"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_faults_are_set_shown_and_cleared() -> Result<(), String> {
        let control = Control::default();
        let node = Node::new("gw", "id", "11.1.2", Vec::new());
        control.set_fault(&json!({"ping_failing": true}), &node)?;
        control.set_fault(&json!({"ping_delay_ms": 20}), &node)?;
        assert_eq!(control.ping(), (true, Some(Duration::from_millis(20))));
        assert_eq!(
            control.faults_body()["faults"],
            json!([{"ping_failing": true}, {"ping_delay_ms": 20}])
        );
        control.clear_faults(&node);
        assert_eq!(control.ping(), (false, None));
        assert!(
            control
                .set_fault(&json!({"database_unreachable": true}), &node)
                .is_err()
        );
        assert!(
            control
                .set_fault(&json!({"ping_failing": 1}), &node)
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn counters_stay_bounded() {
        let control = Control::default();
        for index in 0..(MAX_COUNTED_PATHS + 5) {
            control.count(&Method::GET, &format!("/p{index}"), false);
        }
        let counters = control.counters_body();
        let requests = counters["requests"]
            .as_object()
            .map_or(0, serde_json::Map::len);
        assert_eq!(requests, MAX_COUNTED_PATHS + 1);
        assert_eq!(counters["requests"]["GET (other paths)"], 5);
    }

    #[test]
    fn node_commands_are_checked() {
        let node = Node::new("gw", "id", "11.1.2", Vec::new());
        assert!(node_command(&node, br#"{"action": "reboot"}"#).is_err());
        assert!(node_command(&node, br#"{"colour": 1}"#).is_err());
        assert!(node_command(&node, br#"{"version": "11.1.3"}"#).is_ok());
        assert_eq!(node.info().product_version.formal_string, "11.1.3");
    }
}
