//! [`Gateway`]: one twin's shared state (store, node, control) and the configuration it
//! was started with ([`Layer7Config`]).

use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use super::control::Control;
use super::node::{Node, Patch};
use super::store::Store;

/// How a Layer7 twin is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer7Config {
    /// Administrator user name (Basic auth).
    pub username: String,
    /// Administrator password (Basic auth).
    pub password: String,
    /// Serve the `/_twin` control endpoint.
    pub control: bool,
    /// Product version reported, e.g. `11.1.2`.
    pub version: String,
    /// Installed patches reported.
    pub patches: Vec<Patch>,
    /// Node name.
    pub node_name: String,
    /// Node id (32 hex digits).
    pub node_id: String,
}

impl Default for Layer7Config {
    fn default() -> Self {
        Self {
            username: "admin".to_owned(),
            password: "password".to_owned(),
            control: false,
            version: "11.1.2".to_owned(),
            patches: Vec::new(),
            node_name: "layer7-twin".to_owned(),
            node_id: super::store::new_goid(),
        }
    }
}

/// State shared by every listener of one twin.
#[derive(Debug)]
pub(crate) struct Gateway {
    /// The configuration.
    pub(crate) config: Layer7Config,
    /// The entities.
    store: Mutex<Store>,
    /// The node.
    pub(crate) node: Node,
    /// Counters and faults.
    pub(crate) control: Control,
    /// Forwards routed published-service requests.
    pub(crate) client: Client<HttpConnector, Body>,
}

impl Gateway {
    /// A gateway holding `store`.
    pub(crate) fn new(config: Layer7Config, store: Store) -> Self {
        let node = Node::new(
            &config.node_name,
            &config.node_id,
            &config.version,
            config.patches.clone(),
        );
        Self {
            config,
            store: Mutex::new(store),
            node,
            control: Control::default(),
            client: super::traffic::client(),
        }
    }

    /// The store, locked.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
