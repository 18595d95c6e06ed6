//! [`Transport`]: how the host actions reach a host — run a command, read,
//! write and remove a file, open a TCP connection — with [`TransportError`]
//! saying what went wrong. The `local` transport is [`LocalTransport`];
//! [`DryRunGuard`] wraps any transport so that a dry run cannot write.
//!
//! [`LocalTransport`]: super::local::LocalTransport

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use runsheet_engine::model::Transport as HostTransport;
use runsheet_engine::{ActionError, StepContext};
use tokio::io::{AsyncRead, AsyncWrite};

use super::local::LocalTransport;
use super::ssh::{SshPool, SshTransport};

/// The transport to the step's host, refusing writes when the step is a dry run.
pub fn for_step(context: &StepContext) -> Result<Arc<dyn Transport>, ActionError> {
    let host = context.host()?;
    let ssh = || {
        let pool = context.resources.get_or_init_closed(SshPool::new);
        SshTransport::new(host.clone(), pool)
    };
    Ok(match (host.transport, context.dry_run) {
        (HostTransport::Local, false) => Arc::new(LocalTransport::new()),
        (HostTransport::Local, true) => Arc::new(DryRunGuard::new(LocalTransport::new())),
        (HostTransport::Ssh, false) => Arc::new(ssh()),
        (HostTransport::Ssh, true) => Arc::new(DryRunGuard::new(ssh())),
    })
}

/// How a host runs commands, reads and writes files, and opens connections.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// The transport's name as written in the environment (`local`, `ssh`).
    fn name(&self) -> &'static str;

    /// Runs a command and waits for it, or kills it at the request's timeout.
    async fn exec(&self, request: &ExecRequest) -> Result<ExecOutput, TransportError>;

    /// The file at `path` with its mode and owner, or `None` when nothing is there.
    async fn read_file(&self, path: &Path) -> Result<Option<FileState>, TransportError>;

    /// Whether anything (file, directory, other) exists at `path`.
    async fn path_exists(&self, path: &Path) -> Result<bool, TransportError>;

    /// Replaces the file at `path` atomically with this content, mode and owner.
    async fn write_file(&self, path: &Path, file: &FileSpec) -> Result<(), TransportError>;

    /// Removes the file at `path`; nothing there is not an error.
    async fn remove_file(&self, path: &Path) -> Result<(), TransportError>;

    /// Whether `host:port` accepts a TCP connection, as seen from the host.
    async fn port_open(&self, host: &str, port: u16) -> Result<bool, TransportError>;

    /// A TCP connection to `host:port` as seen from the host (for probes).
    async fn connect_tcp(&self, host: &str, port: u16) -> Result<ByteStream, TransportError>;

    /// The host's name and kernel release.
    async fn system_names(&self) -> Result<SystemNames, TransportError>;
}

/// A bidirectional byte stream opened by [`Transport::connect_tcp`].
pub type ByteStream = Box<dyn Duplex>;

/// A byte stream that can be read and written.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// What to run: a program with arguments, or a shell command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// Program and arguments, run without a shell.
    Argv(Vec<String>),
    /// A command line run by `sh -c`.
    Shell(String),
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Argv(argv) => f.write_str(&argv.join(" ")),
            Program::Shell(command) => f.write_str(command),
        }
    }
}

/// A command to run on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// What to run.
    pub program: Program,
    /// Environment variables added for the command.
    pub env: BTreeMap<String, String>,
    /// Working directory (default: the user's home directory).
    pub cwd: Option<PathBuf>,
    /// Bytes written to standard input, which is then closed (default: empty input).
    pub stdin: Option<Vec<u8>>,
    /// Longest run before the command and its process group are killed.
    pub timeout: Option<Duration>,
    /// Declares that the command changes nothing: a dry run may run it.
    pub read_only: bool,
}

impl ExecRequest {
    /// A request to run `program` with no environment, input or timeout, as a write.
    pub fn new(program: Program) -> Self {
        Self {
            program,
            env: BTreeMap::new(),
            cwd: None,
            stdin: None,
            timeout: None,
            read_only: false,
        }
    }

    /// A request for a shell command line.
    pub fn shell(command: impl Into<String>) -> Self {
        Self::new(Program::Shell(command.into()))
    }

    /// A request for a program and its arguments.
    pub fn argv<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Self::new(Program::Argv(argv.into_iter().map(Into::into).collect()))
    }

    /// Marks the command as read-only (or not).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Adds an environment variable.
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Captured output of a command; each stream is kept up to a limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    /// The bytes kept.
    pub bytes: Vec<u8>,
    /// Whether more was written than kept.
    pub truncated: bool,
    /// Whether the stream had not ended when the command's exit was reported and the
    /// grace period ran out (a background process holding it open, or output arriving
    /// late): what was kept may be incomplete.
    pub cut_short: bool,
}

impl CapturedOutput {
    /// The output as text (invalid UTF-8 replaced), saying so when it was truncated.
    pub fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated {
            text.push_str("\n[output truncated: only the first ");
            text.push_str(&self.bytes.len().to_string());
            text.push_str(" bytes are kept]");
        }
        if self.cut_short {
            text.push_str("\n[output cut short: the stream was still open after the command ended]");
        }
        text
    }

    /// The last `lines` lines of the output, as text.
    pub fn tail(&self, lines: usize) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let all: Vec<&str> = text.trim_end().lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// How a command ended and what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code, or `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Standard output.
    pub stdout: CapturedOutput,
    /// Standard error.
    pub stderr: CapturedOutput,
    /// Time from start to exit.
    pub elapsed: Duration,
}

impl ExecOutput {
    /// Whether it exited with code 0.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// An owner as `user` or `user:group` (names or numeric ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// User name or uid.
    pub user: String,
    /// Group name or gid; `None` leaves the group as it is.
    pub group: Option<String>,
}

impl Ownership {
    /// Reads `user` or `user:group`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (user, group) = match text.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (text, None),
        };
        if user.is_empty() || group.is_some_and(str::is_empty) {
            return Err(format!(
                "owner `{text}` must be `user` or `user:group`, with no empty part"
            ));
        }
        Ok(Self {
            user: user.to_owned(),
            group: group.map(str::to_owned),
        })
    }

    /// Whether `actual` (a full `user:group`) satisfies this wanted owner.
    pub fn is_met_by(&self, actual: &Ownership) -> bool {
        self.user == actual.user
            && self
                .group
                .as_ref()
                .is_none_or(|group| Some(group) == actual.group.as_ref())
    }
}

impl fmt::Display for Ownership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(group) => write!(f, "{}:{group}", self.user),
            None => f.write_str(&self.user),
        }
    }
}

/// A file as found on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    /// Its content.
    pub content: Vec<u8>,
    /// Its permission bits (`0o644`).
    pub mode: u32,
    /// Its owner and group, by name where the host has one.
    pub owner: Ownership,
}

/// Why a write to a symbolic link is refused (both transports say it).
pub const LINK_REFUSED: &str = "host.file replaces neither a symbolic link nor the file it points to: name that file's own path";

/// A file to write on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Its content.
    pub content: Vec<u8>,
    /// Its permission bits (`0o644`).
    pub mode: u32,
    /// Its owner; `None` leaves it to the connecting user.
    pub owner: Option<Ownership>,
}

/// The host's name and kernel release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemNames {
    /// Host name.
    pub hostname: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
}

/// Why a transport could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A dry run asked for a write; the transport refused.
    #[error("refused in a dry run: {what}")]
    Refused {
        /// The refused write (`run rm -rf /tmp/x`, `write /etc/kong/kong.conf`).
        what: String,
    },
    /// The command could not be started.
    #[error("failed to start `{command}`")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The command ran past its timeout; it and its process group were killed.
    #[error("`{command}` timed out after {}ms and was killed", after.as_millis())]
    TimedOut {
        /// The command.
        command: String,
        /// Its timeout.
        after: Duration,
    },
    /// The command ran past its timeout and could not be stopped on the host.
    #[error(
        "`{command}` timed out after {}ms, and runsheet could not stop it on host `{host}` \
         (its process group never arrived): it may still be running there",
        after.as_millis()
    )]
    NotStopped {
        /// The command.
        command: String,
        /// The host's name.
        host: String,
        /// Its timeout.
        after: Duration,
    },
    /// A file or process operation failed.
    #[error("failed to {what}")]
    Io {
        /// What was being done (`read /etc/kong/kong.conf`).
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The host could not be reached, or would not let runsheet in.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The connection to the host broke while a command ran.
    #[error(
        "the connection to host `{host}` was lost while running `{command}`; \
         what the command did on the host is unknown"
    )]
    ConnectionLost {
        /// The host's name in the environment.
        host: String,
        /// The command.
        command: String,
    },
    /// A user or group name is unknown on the host.
    #[error("no {kind} named `{name}` on the host")]
    UnknownOwner {
        /// `user` or `group`.
        kind: &'static str,
        /// The name.
        name: String,
    },
}

impl TransportError {
    /// An I/O failure while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        TransportError::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<TransportError> for ActionError {
    fn from(error: TransportError) -> Self {
        match error {
            TransportError::Refused { what } => ActionError::DryRunWrite { what },
            other => ActionError::failed(with_sources(&other)),
        }
    }
}

/// The error's message followed by its causes: `failed to read x: permission denied`.
pub fn with_sources(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Why runsheet could not open an SSH connection to a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ConnectError {
    /// The host's name in the environment.
    pub host: String,
    /// Where runsheet connected: `user@address:port`.
    pub endpoint: String,
    /// What went wrong.
    pub failure: ConnectFailure,
    /// What ssh said, trimmed.
    pub detail: String,
    /// The jump host in between, if any: the failure may be there.
    pub via: Option<String>,
}

/// The kinds of connection failure an operator acts on differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// No answer: a wrong address, no route, a firewall, or a timeout.
    Unreachable,
    /// The address answered, but nothing listens on the port.
    Refused,
    /// The server refused the login (user or key).
    Authentication,
    /// The host's key is not in known_hosts and checking is strict.
    UnknownHostKey {
        /// Fingerprints the host offers (`ED25519 SHA256:...`), when they could be read.
        offered: Vec<String>,
        /// The known_hosts file consulted, when set.
        known_hosts: Option<String>,
    },
    /// The host's key differs from the one in known_hosts.
    ChangedHostKey {
        /// The fingerprint the host offered now.
        offered: Vec<String>,
        /// Where the recorded key is (`known_hosts:3`).
        recorded_at: Option<String>,
    },
    /// Something else; the detail says what.
    Other,
}

impl ConnectError {
    /// The message an operator reads.
    fn describe(&self) -> String {
        let mut message = self.describe_failure();
        if self.detail.contains("banner exchange") {
            message.push_str(
                " (the port accepted the connection but no SSH server answered: is sshd hung or overloaded?)",
            );
        }
        if let Some(via) = &self.via {
            message.push_str(&format!(
                "; the host is reached through jump host `{via}`, so the failure may be at the jump host"
            ));
        }
        message
    }

    /// The message for the failure itself.
    fn describe_failure(&self) -> String {
        let (host, endpoint, detail) = (&self.host, &self.endpoint, &self.detail);
        let fingerprints = |offered: &[String]| {
            if offered.is_empty() {
                "(its key could not be read)".to_owned()
            } else {
                offered.join(", ")
            }
        };
        match &self.failure {
            ConnectFailure::Unreachable => {
                format!("cannot reach host `{host}` at {endpoint}: {detail}")
            }
            ConnectFailure::Refused => format!(
                "host `{host}` refused the connection to {endpoint}: nothing listens on that port ({detail})"
            ),
            ConnectFailure::Authentication => format!(
                "host `{host}` refused the login {endpoint}: {detail}; check the user and `ssh.identity`"
            ),
            ConnectFailure::UnknownHostKey {
                offered,
                known_hosts,
            } => format!(
                "host `{host}` ({endpoint}) is not in {} and host-key checking is strict; it offers {}. \
                 Check that fingerprint with the host's owner, then add the key to known_hosts",
                known_hosts.as_deref().unwrap_or("known_hosts"),
                fingerprints(offered)
            ),
            ConnectFailure::ChangedHostKey {
                offered,
                recorded_at,
            } => format!(
                "the host key of `{host}` ({endpoint}) has CHANGED: it now offers {}, which does not match {}. \
                 Someone may be intercepting the connection, or the host was rebuilt: \
                 confirm with the host's owner before replacing the recorded key",
                fingerprints(offered),
                recorded_at.as_deref().unwrap_or("known_hosts")
            ),
            ConnectFailure::Other => format!("cannot connect to host `{host}` at {endpoint}: {detail}"),
        }
    }
}

/// Wraps a transport for a dry run: it refuses every write, and runs only
/// commands declared read-only, so a bug in an action cannot change a host.
pub struct DryRunGuard<T> {
    inner: T,
}

impl<T: Transport> DryRunGuard<T> {
    /// Guards `inner`.
    pub fn new(inner: T) -> Self {
        Self { inner }
    }
}

#[async_trait::async_trait]
impl<T: Transport> Transport for DryRunGuard<T> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn exec(&self, request: &ExecRequest) -> Result<ExecOutput, TransportError> {
        if !request.read_only {
            return Err(TransportError::Refused {
                what: format!("run `{}` (not declared read-only)", request.program),
            });
        }
        self.inner.exec(request).await
    }

    async fn read_file(&self, path: &Path) -> Result<Option<FileState>, TransportError> {
        self.inner.read_file(path).await
    }

    async fn path_exists(&self, path: &Path) -> Result<bool, TransportError> {
        self.inner.path_exists(path).await
    }

    async fn write_file(&self, path: &Path, _file: &FileSpec) -> Result<(), TransportError> {
        Err(TransportError::Refused {
            what: format!("write {}", path.display()),
        })
    }

    async fn remove_file(&self, path: &Path) -> Result<(), TransportError> {
        Err(TransportError::Refused {
            what: format!("remove {}", path.display()),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_read_user_or_user_and_group() -> Result<(), String> {
        assert_eq!(
            Ownership::parse("kong")?,
            Ownership {
                user: "kong".into(),
                group: None
            }
        );
        let both = Ownership::parse("kong:adm")?;
        assert_eq!(both.group.as_deref(), Some("adm"));
        assert_eq!(both.to_string(), "kong:adm");
        for bad in ["", ":adm", "kong:", ":"] {
            assert!(Ownership::parse(bad).is_err(), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn a_wanted_owner_without_group_ignores_the_group() -> Result<(), String> {
        let actual = Ownership::parse("kong:adm")?;
        assert!(Ownership::parse("kong")?.is_met_by(&actual));
        assert!(Ownership::parse("kong:adm")?.is_met_by(&actual));
        assert!(!Ownership::parse("kong:root")?.is_met_by(&actual));
        assert!(!Ownership::parse("root")?.is_met_by(&actual));
        Ok(())
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let output = CapturedOutput {
            bytes: (1..=30)
                .map(|n| format!("line {n}\n"))
                .collect::<String>()
                .into_bytes(),
            truncated: false,
            cut_short: false,
        };
        let tail = output.tail(20);
        assert!(tail.starts_with("line 11\n"), "{tail}");
        assert!(tail.ends_with("line 30"), "{tail}");
        assert_eq!(tail.lines().count(), 20);
    }

    #[tokio::test]
    async fn the_guard_refuses_writes_and_lets_reads_through()
    -> Result<(), Box<dyn std::error::Error>> {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("f");
        std::fs::write(&path, "old\n")?;
        let guard = DryRunGuard::new(LocalTransport::new());
        let marker = directory.path().join("touched");

        let touch = ExecRequest::argv(["touch".to_owned(), marker.display().to_string()]);
        let outcome = guard.exec(&touch).await;
        assert!(
            matches!(&outcome, Err(TransportError::Refused { what }) if what.starts_with("run `touch ")),
            "{outcome:?}"
        );
        assert!(!marker.exists(), "the guard ran a write command");
        let file = FileSpec {
            content: b"new\n".to_vec(),
            mode: 0o644,
            owner: None,
        };
        let outcome = guard.write_file(&path, &file).await;
        assert!(
            matches!(outcome, Err(TransportError::Refused { .. })),
            "{outcome:?}"
        );
        let outcome = guard.remove_file(&path).await;
        assert!(
            matches!(outcome, Err(TransportError::Refused { .. })),
            "{outcome:?}"
        );
        assert_eq!(std::fs::read(&path)?, b"old\n");
        assert_eq!(std::fs::read_dir(directory.path())?.count(), 1);

        let echo = ExecRequest::argv(["echo", "read"]).read_only(true);
        assert_eq!(guard.exec(&echo).await?.stdout.text(), "read\n");
        let read = guard.read_file(&path).await?.ok_or("the file is gone")?;
        assert_eq!(read.content, b"old\n");
        assert!(guard.path_exists(&path).await?);
        Ok(())
    }

    #[test]
    fn refusals_become_dry_run_errors() {
        let refused = ActionError::from(TransportError::Refused {
            what: "write /etc/x".into(),
        });
        assert!(matches!(refused, ActionError::DryRunWrite { ref what } if what == "write /etc/x"));
        let io = ActionError::from(TransportError::io(
            "read /etc/x",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        ));
        assert_eq!(io.to_string(), "failed to read /etc/x: permission denied");
    }
}
