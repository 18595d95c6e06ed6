//! [`LocalTransport`]: the `local` transport, which works on the machine
//! runsheet runs on.
//!
//! Commands run in their own process group, so a timeout (or a cancelled step)
//! kills everything they started. They get a small environment — `PATH`,
//! `HOME`, `USER`, `LOGNAME`, `SHELL`, `LANG`, `LC_ALL`, `TZ`, `TMPDIR` from
//! runsheet's own, plus the request's `env` — so secrets runsheet read from its
//! environment do not leak into them, as over SSH. Files are replaced
//! atomically: a temporary file in the same directory gets the content, owner
//! and mode, is synced, then renamed over the target.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Group, Pid, Uid, User};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use super::output::{DEFAULT_OUTPUT_LIMIT, capture, finish_reading, take};
use super::transport::{
    ByteStream, CapturedOutput, ExecOutput, ExecRequest, FileSpec, FileState, Ownership, Program,
    SystemNames, Transport, TransportError,
};

/// Variables of runsheet's environment that commands inherit.
const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR",
];

/// Distinguishes temporary files written by this process.
static TEMPORARY_FILES: AtomicU64 = AtomicU64::new(0);

/// The `local` transport: commands, files and connections on this machine.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    output_limit: usize,
}

impl Default for LocalTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalTransport {
    /// A local transport keeping up to 1 MiB of each output stream.
    pub fn new() -> Self {
        Self {
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }

    /// Keeps up to `limit` bytes of each output stream.
    pub fn with_output_limit(mut self, limit: usize) -> Self {
        self.output_limit = limit;
        self
    }
}

#[async_trait::async_trait]
impl Transport for LocalTransport {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn exec(&self, request: &ExecRequest) -> Result<ExecOutput, TransportError> {
        run(request, self.output_limit).await
    }

    async fn read_file(&self, path: &Path) -> Result<Option<FileState>, TransportError> {
        let path = path.to_owned();
        blocking(format!("read {}", path.display()), move || {
            read_file_state(&path)
        })
        .await
    }

    async fn path_exists(&self, path: &Path) -> Result<bool, TransportError> {
        match tokio::fs::symlink_metadata(path).await {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(TransportError::io(
                format!("look at {}", path.display()),
                error,
            )),
        }
    }

    async fn write_file(&self, path: &Path, file: &FileSpec) -> Result<(), TransportError> {
        let (path, file) = (path.to_owned(), file.clone());
        blocking(format!("write {}", path.display()), move || {
            write_atomically(&path, &file)
        })
        .await
    }

    async fn remove_file(&self, path: &Path) -> Result<(), TransportError> {
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(TransportError::io(
                format!("remove {}", path.display()),
                error,
            )),
        }
    }

    async fn port_open(&self, host: &str, port: u16) -> Result<bool, TransportError> {
        Ok(tokio::net::TcpStream::connect((host, port)).await.is_ok())
    }

    async fn connect_tcp(&self, host: &str, port: u16) -> Result<ByteStream, TransportError> {
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|error| TransportError::io(format!("connect to {host}:{port}"), error))?;
        Ok(Box::new(stream))
    }

    async fn system_names(&self) -> Result<SystemNames, TransportError> {
        let names = nix::sys::utsname::uname()
            .map_err(|errno| TransportError::io("read the system's names", errno.into()))?;
        Ok(SystemNames {
            hostname: names.nodename().to_string_lossy().into_owned(),
            kernel: names.release().to_string_lossy().into_owned(),
        })
    }
}

/// Runs `work` on the blocking pool; `what` names it if the pool fails.
async fn blocking<T: Send + 'static>(
    what: String,
    work: impl FnOnce() -> Result<T, TransportError> + Send + 'static,
) -> Result<T, TransportError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| TransportError::io(what, std::io::Error::other(error)))?
}

// ---- commands ----

/// Runs the request's command, capturing its output, killing its process group at the timeout.
async fn run(request: &ExecRequest, output_limit: usize) -> Result<ExecOutput, TransportError> {
    let described = request.program.to_string();
    let mut command = command_for(request)?;
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| TransportError::Spawn {
        command: described.clone(),
        source,
    })?;
    let mut group = ProcessGroup::of(child.id());

    let stdout = Arc::new(Mutex::new(CapturedOutput::default()));
    let stderr = Arc::new(Mutex::new(CapturedOutput::default()));
    let readers = [
        child
            .stdout
            .take()
            .map(|pipe| tokio::spawn(capture(pipe, output_limit, Arc::clone(&stdout)))),
        child
            .stderr
            .take()
            .map(|pipe| tokio::spawn(capture(pipe, output_limit, Arc::clone(&stderr)))),
    ];
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), request.stdin.clone()) {
        // A command that exits without reading its input breaks the pipe: not an error.
        tokio::spawn(async move {
            let _ignored = pipe.write_all(&input).await;
        });
    }

    let waited = match request.timeout {
        Some(limit) => tokio::time::timeout(limit, child.wait()).await.ok(),
        None => Some(child.wait().await),
    };
    let Some(status) = waited else {
        group.kill();
        let _reaped = child.wait().await;
        let _ended = finish_reading(readers).await;
        return Err(TransportError::TimedOut {
            command: described,
            after: request.timeout.unwrap_or_default(),
        });
    };
    let status =
        status.map_err(|error| TransportError::io(format!("wait for `{described}`"), error))?;
    // What the command left running in the background (a daemon it started) stays.
    group.disarm();
    let elapsed = started.elapsed();
    let [stdout_ended, stderr_ended] = finish_reading(readers).await;
    Ok(ExecOutput {
        exit_code: status.code(),
        signal: status.signal(),
        stdout: take(&stdout, stdout_ended),
        stderr: take(&stderr, stderr_ended),
        elapsed,
    })
}

/// The process to spawn for a request, with its own process group and piped output.
fn command_for(request: &ExecRequest) -> Result<Command, TransportError> {
    let mut command = match &request.program {
        Program::Argv(argv) => {
            let Some((program, arguments)) = argv.split_first() else {
                return Err(TransportError::Spawn {
                    command: String::new(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "argv is empty"),
                });
            };
            let mut command = Command::new(program);
            command.args(arguments);
            command
        }
        Program::Shell(line) => {
            let mut command = Command::new("sh");
            command.arg("-c").arg(line);
            command
        }
    };
    command.env_clear();
    for name in INHERITED_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(&request.env);
    if let Some(directory) = request.cwd.clone().or_else(home_directory) {
        command.current_dir(directory);
    }
    command
        .stdin(if request.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    Ok(command)
}

/// The home directory of the user runsheet runs as, when it exists.
fn home_directory() -> Option<PathBuf> {
    User::from_uid(Uid::effective())
        .ok()
        .flatten()
        .map(|user| user.dir)
        .filter(|directory| directory.is_dir())
}

/// A command's process group, killed when dropped unless disarmed (a cancelled
/// step leaves nothing behind).
struct ProcessGroup {
    id: Option<Pid>,
}

impl ProcessGroup {
    /// The group led by the process `id` (the child was made a group leader).
    fn of(id: Option<u32>) -> Self {
        Self {
            id: id.and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw),
        }
    }

    /// Kills every process of the group.
    fn kill(&mut self) {
        if let Some(id) = self.id.take() {
            // The group may already be gone: nothing left to kill.
            let _gone = killpg(id, Signal::SIGKILL);
        }
    }

    /// Leaves the group alone from now on.
    fn disarm(&mut self) {
        self.id = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- files ----

/// The file at `path`, or `None` when there is nothing.
fn read_file_state(path: &Path) -> Result<Option<FileState>, TransportError> {
    let what = || format!("read {}", path.display());
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(TransportError::io(what(), error)),
    };
    if !metadata.is_file() {
        return Err(TransportError::io(
            what(),
            std::io::Error::other("not a regular file"),
        ));
    }
    let content = std::fs::read(path).map_err(|error| TransportError::io(what(), error))?;
    Ok(Some(FileState {
        content,
        mode: metadata.mode() & 0o7777,
        owner: Ownership {
            user: user_name(metadata.uid()),
            group: Some(group_name(metadata.gid())),
        },
    }))
}

/// The name of a user id, or the id when it has none.
fn user_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

/// The name of a group id, or the id when it has none.
fn group_name(gid: u32) -> String {
    match Group::from_gid(Gid::from_raw(gid)) {
        Ok(Some(group)) => group.name,
        _ => gid.to_string(),
    }
}

/// The uid of a user name or numeric id.
fn uid_of(user: &str) -> Result<u32, TransportError> {
    if let Ok(uid) = user.parse() {
        return Ok(uid);
    }
    match User::from_name(user) {
        Ok(Some(found)) => Ok(found.uid.as_raw()),
        Ok(None) => Err(TransportError::UnknownOwner {
            kind: "user",
            name: user.to_owned(),
        }),
        Err(errno) => Err(TransportError::io(
            format!("look up user `{user}`"),
            errno.into(),
        )),
    }
}

/// The gid of a group name or numeric id.
fn gid_of(group: &str) -> Result<u32, TransportError> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    match Group::from_name(group) {
        Ok(Some(found)) => Ok(found.gid.as_raw()),
        Ok(None) => Err(TransportError::UnknownOwner {
            kind: "group",
            name: group.to_owned(),
        }),
        Err(errno) => Err(TransportError::io(
            format!("look up group `{group}`"),
            errno.into(),
        )),
    }
}

/// Replaces `path` with `file` through a synced temporary file renamed over it.
fn write_atomically(path: &Path, file: &FileSpec) -> Result<(), TransportError> {
    let what = || format!("write {}", path.display());
    let ids = match &file.owner {
        Some(owner) => Some((
            uid_of(&owner.user)?,
            owner.group.as_deref().map(gid_of).transpose()?,
        )),
        None => None,
    };
    if let Ok(metadata) = std::fs::symlink_metadata(path)
        && metadata.file_type().is_symlink()
    {
        let target = std::fs::read_link(path).unwrap_or_default();
        return Err(TransportError::io(
            what(),
            std::io::Error::other(format!(
                "it is a symbolic link to {}; {}",
                target.display(),
                super::transport::LINK_REFUSED
            )),
        ));
    }
    let (Some(directory), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(TransportError::io(
            what(),
            std::io::Error::other("the path names no file"),
        ));
    };
    let temporary = directory.join(format!(
        ".{}.runsheet-{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TEMPORARY_FILES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = fill_temporary(&temporary, file, ids)
        .and_then(|()| std::fs::rename(&temporary, path))
        .and_then(|()| File::open(directory)?.sync_all());
    if let Err(error) = written {
        // Best effort: the temporary file may not exist, or may already be renamed.
        let _cleaned = std::fs::remove_file(&temporary);
        return Err(TransportError::io(what(), error));
    }
    remove_debris(directory, &name.to_string_lossy());
    Ok(())
}

/// Removes temporary files of `name` left by writers that died before their
/// rename (a crash, kill -9), so a resumed run leaves the directory clean.
fn remove_debris(directory: &Path, name: &str) {
    let prefix = format!(".{name}.runsheet-");
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        let alive = pid == std::process::id().to_string()
            || Path::new("/proc").join(pid).exists();
        if !alive {
            let _removed = std::fs::remove_file(entry.path());
        }
    }
}

/// Creates `temporary` with the content, owner and mode of `file`, synced to disk.
fn fill_temporary(
    temporary: &Path,
    file: &FileSpec,
    ids: Option<(u32, Option<u32>)>,
) -> std::io::Result<()> {
    let mut handle = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temporary)?;
    handle.write_all(&file.content)?;
    if let Some((uid, gid)) = ids {
        std::os::unix::fs::fchown(&handle, Some(uid), gid)?;
    }
    // After chown, which may clear set-id bits.
    handle.set_permissions(Permissions::from_mode(file.mode))?;
    handle.sync_all()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use std::time::Duration;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn runs_argv_without_a_shell_and_captures_both_streams() -> TestResult {
        let transport = LocalTransport::new();
        let output = transport
            .exec(&ExecRequest::argv(["echo", "$HOME", "*"]))
            .await?;
        assert_eq!(output.exit_code, Some(0));
        assert_eq!(output.stdout.text(), "$HOME *\n");

        let output = transport
            .exec(&ExecRequest::shell("echo out; echo err >&2; exit 3"))
            .await?;
        assert_eq!(output.exit_code, Some(3));
        assert_eq!(output.stdout.text(), "out\n");
        assert_eq!(output.stderr.text(), "err\n");
        Ok(())
    }

    #[tokio::test]
    async fn passes_env_cwd_and_stdin_but_not_runsheets_secrets() -> TestResult {
        let directory = tempfile::tempdir()?;
        let mut request =
            ExecRequest::shell("pwd; echo \"$GREETING\"; cat; echo \"[$CARGO_PKG_NAME]\"");
        request.env = BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]);
        request.cwd = Some(directory.path().canonicalize()?);
        request.stdin = Some(b"from stdin\n".to_vec());
        let output = LocalTransport::new().exec(&request).await?;
        let expected = format!(
            "{}\nhello\nfrom stdin\n[]\n",
            directory.path().canonicalize()?.display()
        );
        assert_eq!(output.stdout.text(), expected);
        Ok(())
    }

    #[tokio::test]
    async fn keeps_output_up_to_the_limit_and_says_so() -> TestResult {
        let output = LocalTransport::new()
            .with_output_limit(10)
            .exec(&ExecRequest::shell("printf 'abcdefghijklmnopqrstuvwxyz'"))
            .await?;
        assert_eq!(output.stdout.bytes, b"abcdefghij");
        assert!(output.stdout.truncated);
        assert!(
            output.stdout.text().contains("truncated"),
            "{}",
            output.stdout.text()
        );
        assert!(!output.stderr.truncated);
        Ok(())
    }

    #[tokio::test]
    async fn output_still_open_after_the_command_ends_is_marked_cut_short() -> TestResult {
        let complete = LocalTransport::new()
            .exec(&ExecRequest::shell("echo done"))
            .await?;
        assert!(!complete.stdout.cut_short);
        // A background process keeps the command's stdout open past the grace period.
        let held = LocalTransport::new()
            .exec(&ExecRequest::shell("echo started; sleep 4 &"))
            .await?;
        assert_eq!(held.exit_code, Some(0));
        assert!(held.stdout.cut_short);
        assert!(held.stdout.text().starts_with("started\n"), "{}", held.stdout.text());
        assert!(held.stdout.text().contains("cut short"), "{}", held.stdout.text());
        Ok(())
    }

    #[tokio::test]
    async fn a_missing_program_fails_to_start() {
        let outcome = LocalTransport::new()
            .exec(&ExecRequest::argv(["/nonexistent/runsheet-test"]))
            .await;
        assert!(
            matches!(&outcome, Err(TransportError::Spawn { command, .. }) if command == "/nonexistent/runsheet-test"),
            "{outcome:?}"
        );
        let outcome = LocalTransport::new()
            .exec(&ExecRequest::argv(Vec::<String>::new()))
            .await;
        assert!(
            matches!(outcome, Err(TransportError::Spawn { .. })),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_timeout_kills_the_command_and_its_children() -> TestResult {
        let directory = tempfile::tempdir()?;
        let pid_file = directory.path().join("child.pid");
        let request =
            ExecRequest::shell(format!("sleep 30 & echo $! > {}; wait", pid_file.display()))
                .timeout(Some(Duration::from_secs(1)));
        let started = Instant::now();
        let outcome = LocalTransport::new().exec(&request).await;
        assert!(
            matches!(&outcome, Err(TransportError::TimedOut { after, .. }) if after.as_millis() == 1000),
            "{outcome:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );

        let child: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_alive(child) {
            assert!(
                Instant::now() < deadline,
                "the background sleep {child} survived"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_plain_sleep_is_killed_at_the_timeout() -> TestResult {
        let started = Instant::now();
        let outcome = LocalTransport::new()
            .exec(&ExecRequest::argv(["sleep", "30"]).timeout(Some(Duration::from_millis(300))))
            .await;
        assert!(
            matches!(outcome, Err(TransportError::TimedOut { .. })),
            "{outcome:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        Ok(())
    }

    #[tokio::test]
    async fn a_background_daemon_survives_and_does_not_hold_the_command() -> TestResult {
        let directory = tempfile::tempdir()?;
        let pid_file = directory.path().join("daemon.pid");
        let started = Instant::now();
        let output = LocalTransport::new()
            .exec(&ExecRequest::shell(format!(
                "sleep 30 & echo $! > {}",
                pid_file.display()
            )))
            .await?;
        assert_eq!(output.exit_code, Some(0));
        assert!(started.elapsed() < Duration::from_secs(5));
        let daemon: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
        assert!(is_alive(daemon), "a started daemon must keep running");
        killpg(Pid::from_raw(daemon), Signal::SIGKILL)
            .or_else(|_| nix::sys::signal::kill(Pid::from_raw(daemon), Signal::SIGKILL))?;
        Ok(())
    }

    /// Whether a process exists and is not a zombie.
    fn is_alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn writes_reads_and_removes_files() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("kong.conf");
        let transport = LocalTransport::new();
        assert_eq!(transport.read_file(&path).await?, None);
        assert!(!transport.path_exists(&path).await?);

        let me = Ownership {
            user: user_name(Uid::effective().as_raw()),
            group: Some(group_name(Gid::effective().as_raw())),
        };
        let spec = FileSpec {
            content: b"a = 1\n".to_vec(),
            mode: 0o640,
            owner: Some(me.clone()),
        };
        transport.write_file(&path, &spec).await?;
        let state = transport.read_file(&path).await?;
        assert_eq!(
            state,
            Some(FileState {
                content: b"a = 1\n".to_vec(),
                mode: 0o640,
                owner: me,
            })
        );
        assert!(transport.path_exists(&path).await?);
        let leftovers: Vec<_> = std::fs::read_dir(directory.path())?.collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");

        transport.remove_file(&path).await?;
        assert!(!path.exists());
        transport.remove_file(&path).await?;
        Ok(())
    }

    #[tokio::test]
    async fn an_unknown_owner_is_refused_before_writing() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("f");
        let spec = FileSpec {
            content: b"x".to_vec(),
            mode: 0o644,
            owner: Some(Ownership::parse("no-such-user-runsheet").map_err(std::io::Error::other)?),
        };
        let outcome = LocalTransport::new().write_file(&path, &spec).await;
        assert!(
            matches!(
                &outcome,
                Err(TransportError::UnknownOwner { kind: "user", .. })
            ),
            "{outcome:?}"
        );
        assert_eq!(std::fs::read_dir(directory.path())?.count(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn reports_the_system_names() -> TestResult {
        let names = LocalTransport::new().system_names().await?;
        assert!(!names.hostname.is_empty());
        assert_eq!(
            names.kernel,
            std::fs::read_to_string("/proc/sys/kernel/osrelease")?.trim()
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_write_removes_the_debris_of_a_writer_that_died() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("kong.conf");
        let dead = directory.path().join(".kong.conf.runsheet-999999999-0.tmp");
        let other = directory.path().join(".other.conf.runsheet-999999999-0.tmp");
        std::fs::write(&dead, "half")?;
        std::fs::write(&other, "half")?;
        write_atomically(&path, &FileSpec { content: b"new\n".to_vec(), mode: 0o644, owner: None })?;
        assert_eq!(std::fs::read(&path)?, b"new\n");
        assert!(!dead.exists(), "the dead writer's temporary file is gone");
        assert!(other.exists(), "another file's temporary file is left alone");
        Ok(())
    }
}
