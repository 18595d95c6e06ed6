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
    /// Kills of abandoned commands still on their way, awaited before closing;
    /// each answers what could not be stopped.
    pending: Mutex<Vec<tokio::task::JoinHandle<Option<String>>>>,
    /// Commands known to be left running on a host.
    unstopped: Mutex<Vec<String>>,
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
            pending: Mutex::new(Vec::new()),
            unstopped: Mutex::new(Vec::new()),
            control: Mutex::new(None),
        }
    }

    /// Remembers a command that could not be stopped, for the end of the run.
    pub fn failed(&self, message: String) {
        self.unstopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message);
    }

    /// Remembers a kill on its way, so that closing waits for it.
    pub fn pending(&self, task: tokio::task::JoinHandle<Option<String>>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.retain(|task| !task.is_finished());
        pending.push(task);
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
            builder.keyfile(ssh_path(identity));
        }
        match (&settings.known_hosts, settings.strict_host_key_checking) {
            // Unchecked keys are not recorded: a later checked run must not trust them.
            (_, false) => {
                builder.user_known_hosts_file("/dev/null");
            }
            (Some(known_hosts), true) => {
                builder.user_known_hosts_file(quoted_ssh_path(known_hosts));
            }
            (None, true) => {}
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
                    jump: settings.jump_host.as_deref(),
                };
                Err(TransportError::Connect(classify(&attempt, &log).await))
            }
        }
    }

    /// An ssh_config file that reaches `host` through `jump` with the host's own
    /// key, known_hosts and checking: `ProxyJump` would not pass them on to the jump.
    fn jump_config(&self, host: &Host, jump: &str) -> Result<PathBuf, TransportError> {
        let settings = &host.ssh;
        let (user, address, port) = parse_jump(jump);
        let mut command = vec![
            "ssh".to_owned(),
            "-o".to_owned(),
            "BatchMode=yes".to_owned(),
            "-o".to_owned(),
            format!(
                "StrictHostKeyChecking={}",
                if settings.strict_host_key_checking {
                    "yes"
                } else {
                    "no"
                }
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
        match (&settings.known_hosts, settings.strict_host_key_checking) {
            (_, false) => {
                command.extend(["-o".to_owned(), "UserKnownHostsFile=/dev/null".to_owned()])
            }
            (Some(known_hosts), true) => {
                command.push("-o".to_owned());
                command.push(format!(
                    "UserKnownHostsFile={}",
                    quoted_ssh_path(known_hosts)
                ));
            }
            (None, true) => {}
        }
        if let Some(identity) = &settings.identity {
            command.extend([
                "-o".to_owned(),
                "IdentitiesOnly=yes".to_owned(),
                "-i".to_owned(),
            ]);
            command.push(ssh_path(identity));
        }
        if let Some(user) = user {
            command.extend(["-l".to_owned(), user.to_owned()]);
        }
        if let Some(port) = port {
            command.extend(["-p".to_owned(), port.to_owned()]);
        }
        command.extend(["-W".to_owned(), "%h:%p".to_owned(), address]);
        let quoted: Vec<String> = command
            .iter()
            .map(|word| {
                if word == "%h:%p" {
                    word.clone()
                } else {
                    // ssh expands `%` tokens in a ProxyCommand: every literal `%` is doubled.
                    super::script::quote(&word.replace('%', "%%"))
                }
            })
            .collect();
        let mut text = format!("Host *\n    ProxyCommand {}\n", quoted.join(" "));
        // `-F` replaces both the user's and the system's configuration: bring them back.
        let user_config =
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".ssh/config"));
        for config in user_config
            .into_iter()
            .chain([PathBuf::from("/etc/ssh/ssh_config")])
            .filter(|config| config.is_file())
        {
            text.push_str(&format!("    Include \"{}\"\n", config.display()));
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
            .map_err(|error| {
                TransportError::io("make a directory for SSH control sockets", error)
            })?;
        let path = directory.path().to_path_buf();
        *control = Some(directory);
        Ok(path)
    }
}

#[async_trait::async_trait]
impl runsheet_engine::Close for SshPool {
    /// Waits for kills on their way, then shuts every master down; says what was left running.
    async fn close(&self) -> Vec<String> {
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let mut left = std::mem::take(
            &mut *self
                .unstopped
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in pending {
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(Ok(None)) => {}
                Ok(Ok(Some(message))) => left.push(message),
                Ok(Err(_)) | Err(_) => left.push(
                    "a command abandoned at a timeout or abort could not be confirmed stopped on its host"
                        .to_owned(),
                ),
            }
        }
        let sessions: Vec<Slot> = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, slot)| slot)
            .collect();
        for slot in sessions {
            if let Some(session) = slot.get() {
                // Whoever still holds the session, its master goes now.
                let _closed = openssh_mux_client::shutdown_mux_master(session.control_socket());
            }
        }
        left
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

/// `[user@]host[:port]`, with `[v6]:port` for IPv6 addresses, split.
pub fn parse_jump(jump: &str) -> (Option<String>, String, Option<String>) {
    let (user, rest) = match jump.rsplit_once('@') {
        Some((user, rest)) => (Some(user.to_owned()), rest),
        None => (None, jump),
    };
    if let Some(bracketed) = rest.strip_prefix('[')
        && let Some((address, after)) = bracketed.split_once(']')
    {
        let port = after.strip_prefix(':').map(str::to_owned);
        return (user, address.to_owned(), port);
    }
    match rest.rsplit_once(':') {
        Some((address, port)) if !address.contains(':') && port.parse::<u16>().is_ok() => {
            (user, address.to_owned(), Some(port.to_owned()))
        }
        _ => (user, rest.to_owned(), None),
    }
}

/// A path as ssh reads a file option: `%` escaped (ssh expands `%` tokens in it).
fn ssh_path(path: &std::path::Path) -> String {
    path.display().to_string().replace('%', "%%")
}

/// A path for an option ssh splits on spaces (`UserKnownHostsFile` takes a list), quoted.
fn quoted_ssh_path(path: &std::path::Path) -> String {
    format!("\"{}\"", ssh_path(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hosts_are_read_with_user_port_and_ipv6() {
        let split = |jump: &str| parse_jump(jump);
        assert_eq!(split("bastion"), (None, "bastion".into(), None));
        assert_eq!(
            split("ops@bastion:2222"),
            (Some("ops".into()), "bastion".into(), Some("2222".into()))
        );
        assert_eq!(
            split("[::1]:2222"),
            (None, "::1".into(), Some("2222".into()))
        );
        assert_eq!(
            split("ops@[fe80::1]"),
            (Some("ops".into()), "fe80::1".into(), None)
        );
        assert_eq!(split("fe80::1"), (None, "fe80::1".into(), None));
    }

    #[test]
    fn paths_are_escaped_for_ssh_options() {
        assert_eq!(
            quoted_ssh_path(std::path::Path::new("/a b/100%/kh")),
            "\"/a b/100%%/kh\""
        );
    }
}
