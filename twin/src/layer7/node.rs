//! The gateway node the twin plays: identity, product version, installed patches and the
//! lifecycle (running, stopped, starting) a restart walks through. Main types: [`Node`]
//! (shared, interior state) and [`NodeInfo`] (what Graphman's `nodeInfo` shows).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where a node is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Serving.
    Running,
    /// Down: connections are refused.
    Stopped,
    /// Up but not operational yet: ping and management answer 503.
    Starting,
}

/// One installed patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patch {
    /// Id, e.g. `CR02`.
    pub patch_id: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// `INSTALLED`, `UPLOADED`, ...
    #[serde(default = "installed")]
    pub status: String,
    /// The newest patch installed.
    #[serde(default)]
    pub latest: bool,
}

/// `INSTALLED`.
fn installed() -> String {
    "INSTALLED".to_owned()
}

/// A product version, as Graphman's `productVersion` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Sub-minor.
    pub sub_minor: u32,
    /// Build number.
    pub build_number: String,
    /// `11.1.2`.
    pub formal_string: String,
    /// `Layer7 API Gateway 11.1.2`.
    pub long_string: String,
}

impl ProductVersion {
    /// The version `text` (`11.1.2`; missing parts are 0).
    pub fn parse(text: &str) -> Self {
        let mut parts = text
            .trim()
            .split(['.', '-'])
            .map(|part| part.parse::<u32>().unwrap_or(0));
        let major = parts.next().unwrap_or(0);
        let minor = parts.next().unwrap_or(0);
        let sub_minor = parts.next().unwrap_or(0);
        let formal = text.trim().to_owned();
        Self {
            major,
            minor,
            sub_minor,
            build_number: format!("{major}{minor:02}{sub_minor:02}"),
            long_string: format!("Layer7 API Gateway {formal}"),
            formal_string: formal,
        }
    }
}

/// What `nodeInfo` shows of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Node id (32 hex digits, kept across restarts with a state directory).
    pub node_id: String,
    /// Product version.
    pub product_version: ProductVersion,
    /// `SOFTWARE`, `APPLIANCE`, `CONTAINER`.
    pub form_factor: String,
    /// When the node last started, milliseconds since the Unix epoch.
    pub boot_time: i64,
    /// Installed patches.
    pub patches: Vec<Patch>,
    /// Lifecycle.
    pub status: Lifecycle,
}

/// How a restart goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restart {
    /// How long connections are refused.
    pub down: Duration,
    /// How long the node is then "starting" (ping and management answer 503).
    pub starting: Duration,
    /// The version it comes back with.
    pub version: Option<String>,
    /// The patches it comes back with.
    pub patches: Option<Vec<Patch>>,
}

/// The node's mutable state.
#[derive(Debug)]
struct State {
    /// Identity and versions.
    info: NodeInfo,
    /// Stopped until started again.
    stopped: bool,
    /// Connections refused until then.
    down_until: Option<Instant>,
    /// Starting until then.
    starting_until: Option<Instant>,
    /// What the node comes back with after the current restart.
    pending: Option<(Option<String>, Option<Vec<Patch>>)>,
}

/// One twin's node, shared by its listeners.
#[derive(Debug)]
pub struct Node {
    /// The state.
    state: Mutex<State>,
}

impl Node {
    /// A running node that booted now.
    pub fn new(name: &str, node_id: &str, version: &str, patches: Vec<Patch>) -> Self {
        Self {
            state: Mutex::new(State {
                info: NodeInfo {
                    name: name.to_owned(),
                    node_id: node_id.to_owned(),
                    product_version: ProductVersion::parse(version),
                    form_factor: "SOFTWARE".to_owned(),
                    boot_time: jiff::Timestamp::now().as_millisecond(),
                    patches,
                    status: Lifecycle::Running,
                },
                stopped: false,
                down_until: None,
                starting_until: None,
                pending: None,
            }),
        }
    }

    /// The state, with a finished restart's pending changes applied.
    fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if state.down_until.is_some_and(|until| until <= now)
            && let Some((version, patches)) = state.pending.take()
        {
            if let Some(version) = version {
                state.info.product_version = ProductVersion::parse(&version);
            }
            if let Some(patches) = patches {
                state.info.patches = patches;
            }
        }
        state
    }

    /// Where the node is now.
    pub fn lifecycle(&self) -> Lifecycle {
        let state = self.state();
        let now = Instant::now();
        if state.stopped || state.down_until.is_some_and(|until| until > now) {
            Lifecycle::Stopped
        } else if state.starting_until.is_some_and(|until| until > now) {
            Lifecycle::Starting
        } else {
            Lifecycle::Running
        }
    }

    /// Identity, version, patches and lifecycle now.
    pub fn info(&self) -> NodeInfo {
        let mut info = self.state().info.clone();
        info.status = self.lifecycle();
        info
    }

    /// Until when connections are refused (`None`: they are not); far ahead when stopped.
    pub fn refusing_until(&self) -> Option<Instant> {
        let state = self.state();
        if state.stopped {
            return Some(Instant::now() + Duration::from_secs(365 * 24 * 3600));
        }
        state.down_until.filter(|until| *until > Instant::now())
    }

    /// Starts a restart: down for `restart.down`, then starting for `restart.starting`,
    /// then running with a new boot time and the version and patches given.
    pub fn restart(&self, restart: Restart) {
        let mut state = self.state();
        let now = Instant::now();
        let back = now + restart.down;
        state.stopped = false;
        state.down_until = Some(back);
        state.starting_until = Some(back + restart.starting);
        let down_ms = i64::try_from(restart.down.as_millis()).unwrap_or(i64::MAX);
        state.info.boot_time = jiff::Timestamp::now()
            .as_millisecond()
            .saturating_add(down_ms);
        state.pending = Some((restart.version, restart.patches));
    }

    /// Stops the node: connections refused until [`Node::start`].
    pub fn stop(&self) {
        self.state().stopped = true;
    }

    /// Starts a stopped node (running now, new boot time).
    pub fn start(&self) {
        let mut state = self.state();
        if state.stopped {
            state.stopped = false;
            state.down_until = None;
            state.starting_until = None;
            state.info.boot_time = jiff::Timestamp::now().as_millisecond();
        }
    }

    /// Changes version and patches at once (an in-place upgrade without restart).
    pub fn set_versions(&self, version: Option<String>, patches: Option<Vec<Patch>>) {
        let mut state = self.state();
        if let Some(version) = version {
            state.info.product_version = ProductVersion::parse(&version);
        }
        if let Some(patches) = patches {
            state.info.patches = patches;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_into_graphman_parts() {
        let version = ProductVersion::parse("11.1.2");
        assert_eq!(
            (version.major, version.minor, version.sub_minor),
            (11, 1, 2)
        );
        assert_eq!(version.formal_string, "11.1.2");
        assert_eq!(ProductVersion::parse("10").minor, 0);
    }

    #[test]
    fn a_restart_goes_down_then_starting_then_running_with_the_new_version() {
        let node = Node::new("gw", "abc", "11.1.2", Vec::new());
        let booted = node.info().boot_time;
        node.restart(Restart {
            down: Duration::from_millis(40),
            starting: Duration::from_millis(40),
            version: Some("11.1.3".to_owned()),
            patches: Some(vec![Patch {
                patch_id: "CR01".to_owned(),
                description: String::new(),
                status: installed(),
                latest: true,
            }]),
        });
        assert_eq!(node.lifecycle(), Lifecycle::Stopped);
        assert!(node.refusing_until().is_some());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(node.lifecycle(), Lifecycle::Starting);
        assert!(node.refusing_until().is_none());
        std::thread::sleep(Duration::from_millis(40));
        let info = node.info();
        assert_eq!(info.status, Lifecycle::Running);
        assert_eq!(info.product_version.formal_string, "11.1.3");
        assert_eq!(info.patches.len(), 1);
        assert!(info.boot_time >= booted);
    }

    #[test]
    fn a_stopped_node_refuses_until_started() {
        let node = Node::new("gw", "abc", "11.1.2", Vec::new());
        node.stop();
        assert_eq!(node.lifecycle(), Lifecycle::Stopped);
        assert!(node.refusing_until().is_some());
        node.start();
        assert_eq!(node.lifecycle(), Lifecycle::Running);
        assert!(node.refusing_until().is_none());
    }
}
