//! [`KongTwin`]: one twin's shared state and the listeners serving it, for embedding and tests.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::admin::AdminState;
use super::control;
use super::declarative::{self, DeclarativeError};
use super::entities;
use super::store::Store;

/// Identity a twin reports in `GET /`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwinConfig {
    /// Kong version, e.g. `3.9.3`.
    pub version: String,
    /// `community` or `enterprise`.
    pub edition: String,
    /// Reported hostname.
    pub hostname: String,
    /// Node UUID.
    pub node_id: String,
    /// Reported `admin_listen` (filled with the bound address by [`KongTwin::serve`]).
    pub admin_listen: String,
    /// DB-less profile: entity writes answer 405 (code 12) and `/config` loads the state.
    pub db_less: bool,
    /// RBAC token required on every Admin API request, when set.
    pub admin_token: Option<String>,
    /// Header carrying the RBAC token.
    pub token_header: String,
    /// Serve the `/_twin` control endpoint.
    pub control: bool,
}

impl Default for TwinConfig {
    fn default() -> Self {
        Self {
            version: "3.9.3".to_owned(),
            edition: "community".to_owned(),
            hostname: "kong-twin".to_owned(),
            node_id: uuid::Uuid::new_v4().to_string(),
            admin_listen: String::new(),
            db_less: false,
            admin_token: None,
            token_header: "Kong-Admin-Token".to_owned(),
            control: false,
        }
    }
}

impl TwinConfig {
    /// The default identity with `version`; four-part versions (`3.10.0.2`) are Enterprise.
    pub fn with_version(version: impl Into<String>) -> Self {
        let version = version.into();
        let edition = if version.split('.').count() == 4 {
            "enterprise"
        } else {
            "community"
        };
        Self {
            version,
            edition: edition.to_owned(),
            ..Self::default()
        }
    }
}

/// One listener's server task; stops gracefully when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    /// The bound address.
    pub(crate) address: SocketAddr,
    /// Signals a graceful stop.
    stop: Option<oneshot::Sender<()>>,
    /// The server task.
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves `app` over plain HTTP on `listener`.
    pub(crate) fn http(listener: TcpListener, app: Router) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self::spawned(address, stop, task))
    }

    /// A server already spawned as `task`, stopped through `stop`.
    pub(crate) fn spawned(
        address: SocketAddr,
        stop: oneshot::Sender<()>,
        task: JoinHandle<std::io::Result<()>>,
    ) -> Self {
        Self {
            address,
            stop: Some(stop),
            task,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// A running Kong twin: the shared state and its listeners; everything stops when dropped.
///
/// The Admin API listener exists from the start; other listeners (status, proxy, TLS)
/// are added by methods defined next to the code that serves them.
#[derive(Debug)]
pub struct KongTwin {
    /// State shared by every listener.
    pub(crate) state: Arc<AdminState>,
    /// The Admin API listener.
    admin: Server,
    /// Further listeners, stopped with the twin.
    pub(crate) extra: Vec<Server>,
    /// The proxy listeners' shared state and addresses.
    pub(crate) proxy: super::proxy::ProxyListeners,
}

impl KongTwin {
    /// Serves an empty twin's Admin API on `listener`.
    pub async fn serve(listener: TcpListener, mut config: TwinConfig) -> std::io::Result<Self> {
        config.admin_listen = listener.local_addr()?.to_string();
        let state = Arc::new(AdminState::new(Store::new(entities::registry()), config));
        let admin = control::serve_admin(listener, &state)?;
        Ok(Self {
            state,
            admin,
            extra: Vec::new(),
            proxy: Default::default(),
        })
    }

    /// Binds `127.0.0.1:0` and serves there.
    pub async fn start(config: TwinConfig) -> std::io::Result<Self> {
        Self::serve(TcpListener::bind("127.0.0.1:0").await?, config).await
    }

    /// Replaces the twin's entities with a declarative configuration (reference §10), atomically.
    pub fn load(&self, config: &serde_json::Value) -> Result<(), DeclarativeError> {
        self.state.load(config).map(|_| ())
    }

    /// Loads a decK-style YAML or JSON file (the twin's `--seed`).
    pub fn seed(&self, text: &str) -> Result<(), DeclarativeError> {
        self.load(&declarative::parse(text)?)
    }

    /// Every entity as a flat declarative document with ids (loadable by [`KongTwin::load`]).
    pub fn export(&self) -> serde_json::Value {
        declarative::export(&self.state.store())
    }

    /// The Admin API's bound address.
    pub fn address(&self) -> SocketAddr {
        self.admin.address
    }

    /// `http://<admin address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.admin.address)
    }
}
