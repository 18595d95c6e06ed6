//! Helpers shared by the host actions' tests.

use std::path::Path;

use runsheet_engine::model::{Host, Transport as HostTransport};
use runsheet_engine::{StepContext, StepTarget};

use super::transport::{
    ByteStream, ExecOutput, ExecRequest, FileSpec, FileState, SystemNames, Transport,
    TransportError,
};

/// A context for a step on a host reached with the `local` transport.
pub(crate) fn local_step(dry_run: bool) -> StepContext {
    let mut context = StepContext::detached("test", dry_run);
    context.target = StepTarget::Host(Host {
        name: "me".into(),
        address: "127.0.0.1".into(),
        port: 22,
        user: None,
        transport: HostTransport::Local,
        groups: Vec::new(),
        vars: serde_json::Map::new(),
        ssh: Default::default(),
        twin_node: None,
    });
    context
}

/// A transport that adds environment variables to every command, records every
/// command it is asked to run, and hands everything to the transport it wraps
/// (the commands still run for real).
pub(crate) struct WithEnv<T> {
    inner: T,
    env: Vec<(String, String)>,
    requests: std::sync::Mutex<Vec<ExecRequest>>,
}

impl<T: Transport> WithEnv<T> {
    /// Wraps `inner`, adding `env` to each command's environment.
    pub(crate) fn new(inner: T, env: Vec<(String, String)>) -> Self {
        Self {
            inner,
            env,
            requests: std::sync::Mutex::default(),
        }
    }

    /// Wraps `inner` only to record the commands asked of it.
    pub(crate) fn recording(inner: T) -> Self {
        Self::new(inner, Vec::new())
    }

    /// The commands asked for so far, as asked (before `env` is added).
    pub(crate) fn requests(&self) -> Vec<ExecRequest> {
        self.requests
            .lock()
            .map(|requests| requests.clone())
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl<T: Transport> Transport for WithEnv<T> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn exec(&self, request: &ExecRequest) -> Result<ExecOutput, TransportError> {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(request.clone());
        }
        let mut request = request.clone();
        request.env.extend(self.env.iter().cloned());
        self.inner.exec(&request).await
    }

    async fn read_file(&self, path: &Path) -> Result<Option<FileState>, TransportError> {
        self.inner.read_file(path).await
    }

    async fn path_exists(&self, path: &Path) -> Result<bool, TransportError> {
        self.inner.path_exists(path).await
    }

    async fn write_file(&self, path: &Path, file: &FileSpec) -> Result<(), TransportError> {
        self.inner.write_file(path, file).await
    }

    async fn remove_file(&self, path: &Path) -> Result<(), TransportError> {
        self.inner.remove_file(path).await
    }

    async fn port_open(&self, host: &str, port: u16) -> Result<bool, TransportError> {
        self.inner.port_open(host, port).await
    }

    async fn connect_tcp(&self, host: &str, port: u16) -> Result<ByteStream, TransportError> {
        self.inner.connect_tcp(host, port).await
    }

    async fn system_names(&self) -> Result<SystemNames, TransportError> {
        self.inner.system_names().await
    }
}
