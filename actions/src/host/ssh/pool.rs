//! [`SshPool`]: the run's SSH connections, one ControlMaster per host, opened
//! on first use, shared by every step on that host, and closed when the run
//! ends (when the pool is dropped with the run's resources).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};
use runsheet_engine::model::Host;
use tokio::sync::OnceCell;

use super::super::transport::TransportError;
use super::failure::{Attempt, classify};

/// How long a connection attempt may take when the environment does not say.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Interval of keepalive messages when the environment does not say: a dead
/// connection is noticed after three unanswered ones.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// How long an idle master lives on if runsheet dies without closing it.
const IDLE_MASTER: usize = 300;

/// A host's connection, made once by whichever step needs it first.
type Slot = Arc<OnceCell<Arc<Session>>>;

/// The SSH connections of one run, by host name.
pub struct SshPool {
    /// Connections by host name (dropped first: each closes its master).
    sessions: Mutex<HashMap<String, Slot>>,
    /// Directory of the control sockets, removed last.
    control: Mutex<Option<tempfile::TempDir>>,
}

impl Default for SshPool {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SshPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SshPool")
    }
}

impl SshPool {
    /// An empty pool: nothing connects until a step asks.
    pub fn new() -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            control: Mutex::new(None),
        }
    }

    /// The connection to `host`, opened now if no step opened it yet.
    pub async fn session(&self, host: &Host) -> Result<Arc<Session>, TransportError> {
        let slot = {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(sessions.entry(host.name.clone()).or_default())
        };
        // A failed connection leaves the slot empty: the next attempt (a retry) connects again.
        slot.get_or_try_init(|| async { self.connect(host).await.map(Arc::new) })
            .await
            .map(Arc::clone)
    }

    /// Forgets `session` (its master died) so that the next step on `host` reconnects.
    pub fn forget(&self, host: &str, session: &Arc<Session>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let same = sessions
            .get(host)
            .and_then(|slot| slot.get())
            .is_some_and(|current| Arc::ptr_eq(current, session));
        if same {
            sessions.remove(host);
        }
    }

    /// Opens a ControlMaster to `host` with its merged SSH settings.
    async fn connect(&self, host: &Host) -> Result<Session, TransportError> {
        let settings = &host.ssh;
        let mut builder = SessionBuilder::default();
        builder
            .port(host.port)
            .control_directory(self.control_directory()?)
            .control_persist(ControlPersist::IdleFor(
                NonZeroUsize::new(IDLE_MASTER).unwrap_or(NonZeroUsize::MIN),
            ))
            .known_hosts_check(if settings.strict_host_key_checking {
                KnownHosts::Strict
            } else {
                KnownHosts::Accept
            })
            .connect_timeout(settings.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
            .server_alive_interval(settings.keepalive.unwrap_or(DEFAULT_KEEPALIVE));
        if let Some(user) = &host.user {
            builder.user(user.clone());
        }
        if let Some(identity) = &settings.identity {
            builder.keyfile(identity);
        }
        if let Some(known_hosts) = &settings.known_hosts {
            builder.user_known_hosts_file(known_hosts);
        }
        if let Some(jump) = &settings.jump_host {
            builder.config_file(self.jump_config(host, jump)?);
        }
        match builder.connect_mux(&host.address).await {
            Ok(session) => Ok(session),
            Err(error) => {
                let log = match &error {
                    openssh::Error::Connect(source) | openssh::Error::Master(source) => {
                        source.to_string()
                    }
                    other => other.to_string(),
                };
                let attempt = Attempt {
                    host: &host.name,
                    address: &host.address,
                    port: host.port,
                    endpoint: endpoint(host),
                    known_hosts: settings.known_hosts.as_deref(),
                    jumps: settings.jump_host.is_some(),
                };
                Err(TransportError::Connect(classify(&attempt, &log).await))
            }
        }
    }

    /// An ssh_config file that reaches `host` through `jump` with the host's own
    /// key, known_hosts and checking: `ProxyJump` would not pass them on to the jump.
    fn jump_config(&self, host: &Host, jump: &str) -> Result<PathBuf, TransportError> {
        let settings = &host.ssh;
        let (user, rest) = match jump.rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, jump),
        };
        let (address, port) = match rest.rsplit_once(':') {
            Some((address, port)) if !address.contains(':') && port.parse::<u16>().is_ok() => {
                (address, Some(port))
            }
            _ => (rest.trim_start_matches('[').trim_end_matches(']'), None),
        };
        let mut command = vec![
            "ssh".to_owned(),
            "-o".to_owned(),
            "BatchMode=yes".to_owned(),
            "-o".to_owned(),
            format!(
                "StrictHostKeyChecking={}",
                if settings.strict_host_key_checking { "yes" } else { "no" }
            ),
            "-o".to_owned(),
            format!(
                "ConnectTimeout={}",
                settings
                    .connect_timeout
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
                    .as_secs()
                    .max(1)
            ),
        ];
        if let Some(known_hosts) = &settings.known_hosts {
            command.push("-o".to_owned());
            command.push(format!("UserKnownHostsFile={}", known_hosts.display()));
        }
        if let Some(identity) = &settings.identity {
            command.extend(["-o".to_owned(), "IdentitiesOnly=yes".to_owned(), "-i".to_owned()]);
            command.push(identity.display().to_string());
        }
        if let Some(user) = user {
            command.extend(["-l".to_owned(), user.to_owned()]);
        }
        if let Some(port) = port {
            command.extend(["-p".to_owned(), port.to_owned()]);
        }
        command.extend(["-W".to_owned(), "%h:%p".to_owned(), address.to_owned()]);
        let quoted: Vec<String> = command
            .iter()
            .map(|word| {
                if word == "%h:%p" {
                    word.clone()
                } else {
                    super::script::quote(word)
                }
            })
            .collect();
        let mut text = format!("Host *\n    ProxyCommand {}\n", quoted.join(" "));
        if let Some(home) = std::env::var_os("HOME") {
            let user_config = PathBuf::from(home).join(".ssh/config");
            if user_config.is_file() {
                text.push_str(&format!("    Include \"{}\"\n", user_config.display()));
            }
        }
        let path = self
            .control_directory()?
            .join(format!("{}.jump.config", host.name.replace('/', "_")));
        std::fs::write(&path, text)
            .map_err(|error| TransportError::io(format!("write {}", path.display()), error))?;
        Ok(path)
    }

    /// The directory for control sockets, made on first use (short, for the socket path limit).
    fn control_directory(&self) -> Result<PathBuf, TransportError> {
        let mut control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(directory) = control.as_ref() {
            return Ok(directory.path().to_path_buf());
        }
        let directory = tempfile::Builder::new()
            .prefix("runsheet-ssh-")
            .tempdir_in("/tmp")
            .or_else(|_| tempfile::Builder::new().prefix("runsheet-ssh-").tempdir())
            .map_err(|error| TransportError::io("make a directory for SSH control sockets", error))?;
        let path = directory.path().to_path_buf();
        *control = Some(directory);
        Ok(path)
    }
}

impl Drop for SshPool {
    fn drop(&mut self) {
        // Close every master before their control directory goes.
        self.sessions
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// `user@address:port` as shown in messages.
pub fn endpoint(host: &Host) -> String {
    let user = host
        .user
        .as_deref()
        .map(|user| format!("{user}@"))
        .unwrap_or_default();
    if host.address.contains(':') {
        format!("{user}[{}]:{}", host.address, host.port)
    } else {
        format!("{user}{}:{}", host.address, host.port)
    }
}
