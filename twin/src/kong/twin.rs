//! [`KongTwin`]: the Admin API served on a loopback listener, for embedding and tests.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::admin::{self, AdminState};
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
}

impl Default for TwinConfig {
    fn default() -> Self {
        Self {
            version: "3.9.3".to_owned(),
            edition: "community".to_owned(),
            hostname: "kong-twin".to_owned(),
            node_id: uuid::Uuid::new_v4().to_string(),
            admin_listen: String::new(),
        }
    }
}

impl TwinConfig {
    /// The default identity with `version`.
    pub fn with_version(version: impl Into<String>) -> Self {
        Self {
            version: version.into(),
            ..Self::default()
        }
    }
}

/// A running Kong twin; the server stops when this is dropped.
#[derive(Debug)]
pub struct KongTwin {
    /// The bound address.
    address: SocketAddr,
    /// Signals a graceful stop.
    stop: Option<oneshot::Sender<()>>,
    /// The server task.
    task: JoinHandle<std::io::Result<()>>,
}

impl KongTwin {
    /// Serves an empty twin's Admin API on `listener`.
    pub async fn serve(listener: TcpListener, mut config: TwinConfig) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        config.admin_listen = address.to_string();
        let state = Arc::new(AdminState::new(Store::new(entities::registry()), config));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = admin::router(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            address,
            stop: Some(stop),
            task,
        })
    }

    /// Binds `127.0.0.1:0` and serves there.
    pub async fn start(config: TwinConfig) -> std::io::Result<Self> {
        Self::serve(TcpListener::bind("127.0.0.1:0").await?, config).await
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for KongTwin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
