//! [`SshTransport`]: the `ssh` transport. Commands run over the run's
//! ControlMaster to the host ([`SshPool`]), each in its own channel, so steps
//! on one host run in parallel without new handshakes. A command that times
//! out, or whose step is abandoned, is killed on the host with its whole
//! process group ([`script`] says how the group is known). Files are read with
//! `stat` and `cat`, and written through a temporary file renamed over the
//! target, as the `local` transport does.

use std::path::Path;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use openssh::Session;
use runsheet_engine::model::Host;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
    ReadBuf,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::output::{DEFAULT_OUTPUT_LIMIT, append, finish_reading, take};
use super::transport::{
    ByteStream, CapturedOutput, ExecOutput, ExecRequest, FileSpec, FileState, Ownership,
    SystemNames, Transport, TransportError,
};

pub mod failure;
pub mod pool;
pub mod script;

pub use pool::SshPool;

/// The most of a file [`Transport::read_file`] reads over SSH: 64 MiB.
const FILE_LIMIT: usize = 64 * 1024 * 1024;

/// How long killing a timed-out command's process group may take.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// The `ssh` transport to one host, over the run's connection pool.
#[derive(Debug, Clone)]
pub struct SshTransport {
    host: Host,
    pool: Arc<SshPool>,
    output_limit: usize,
}

impl SshTransport {
    /// The transport to `host`, connecting through `pool`.
    pub fn new(host: Host, pool: Arc<SshPool>) -> Self {
        Self {
            host,
            pool,
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }

    /// Runs `script` on the host; `described` names it in errors.
    async fn run(
        &self,
        described: &str,
        script: &str,
        stdin: Option<Vec<u8>>,
        timeout: Option<Duration>,
        limit: usize,
    ) -> Result<ExecOutput, TransportError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let line = script::wrapped(script, &token);
        let marker: Arc<[u8]> = script::end_marker(&token).into();
        let (session, mut child) = self.spawn(described, &line, stdin.is_some()).await?;
        let started = Instant::now();
        let group = RemoteGroup {
            session: Arc::clone(&session),
            pool: Arc::clone(&self.pool),
            id: Arc::new(OnceLock::new()),
            armed: true,
            host: self.host.name.clone(),
            command: described.to_owned(),
        };

        let stdout = Arc::new(Mutex::new(CapturedOutput::default()));
        let stderr = Arc::new(Mutex::new(CapturedOutput::default()));
        // Each stream says when the wrapper's end marker came through it.
        let ended = [Arc::new(Notify::new()), Arc::new(Notify::new())];
        let mut readers = [
            child.stdout().take().map(|pipe| {
                tokio::spawn(capture_after_group(
                    pipe,
                    Arc::clone(&group.id),
                    limit,
                    Arc::clone(&stdout),
                    End {
                        marker: Arc::clone(&marker),
                        seen: Arc::clone(&ended[0]),
                    },
                ))
            }),
            child.stderr().take().map(|pipe| {
                tokio::spawn(capture_until_end(
                    pipe,
                    limit,
                    Arc::clone(&stderr),
                    End {
                        marker: Arc::clone(&marker),
                        seen: Arc::clone(&ended[1]),
                    },
                ))
            }),
        ];
        if let (Some(mut pipe), Some(input)) = (child.stdin().take(), stdin) {
            // A command that exits without reading its input breaks the pipe: not an error.
            tokio::spawn(async move {
                let _written = pipe.write_all(&input).await;
                let _closed = pipe.shutdown().await;
            });
        }

        // The output is read before the exit status is asked for: openssh's `wait`
        // closes the streams the moment the status arrives, output in flight or not.
        // The end markers say all of it came, even while something the command left
        // running in the background (its own from then on) holds the streams open.
        let command_ended = command_ended(&mut readers, &ended);
        let in_time = match timeout {
            Some(limit) => tokio::time::timeout(limit, command_ended).await.is_ok(),
            None => {
                command_ended.await;
                true
            }
        };
        if !in_time {
            let stopped = group.kill().await;
            let _ended = finish_reading(readers).await;
            let after = timeout.unwrap_or_default();
            return Err(if stopped {
                TransportError::TimedOut {
                    command: described.to_owned(),
                    after,
                }
            } else {
                TransportError::NotStopped {
                    command: described.to_owned(),
                    host: self.host.name.clone(),
                    after,
                }
            });
        }
        group.disarm();
        let status = child.wait().await;
        let elapsed = started.elapsed();
        let (exit_code, signal) = match status {
            Ok(status) => (status.code(), None),
            Err(openssh::Error::Remote(error)) if error.kind() == std::io::ErrorKind::NotFound => {
                (Some(127), None)
            }
            Err(openssh::Error::RemoteProcessTerminated) if session.check().await.is_ok() => {
                // The master is alive: a signal ended the command (ssh does not say which).
                (None, None)
            }
            Err(_) => {
                self.pool.forget(&self.host.name, &session);
                let _ended = finish_reading(readers).await;
                return Err(TransportError::ConnectionLost {
                    host: self.host.name.clone(),
                    command: described.to_owned(),
                });
            }
        };
        let [stdout_ended, stderr_ended] = finish_reading(readers).await;
        Ok(ExecOutput {
            exit_code,
            signal,
            stdout: take(&stdout, stdout_ended),
            stderr: take(&stderr, stderr_ended),
            elapsed,
        })
    }

    /// Starts `line` in a new channel; a master found dead before the command
    /// started is replaced once (nothing ran, so trying again is safe).
    async fn spawn(
        &self,
        described: &str,
        line: &str,
        piped_stdin: bool,
    ) -> Result<(Arc<Session>, openssh::Child<Arc<Session>>), TransportError> {
        let mut retried = false;
        loop {
            let session = self.pool.session(&self.host).await?;
            let mut command = Session::to_raw_command(Arc::clone(&session), line);
            command
                .stdin(if piped_stdin {
                    openssh::Stdio::piped()
                } else {
                    openssh::Stdio::null()
                })
                .stdout(openssh::Stdio::piped())
                .stderr(openssh::Stdio::piped());
            match command.spawn().await {
                Ok(child) => return Ok((session, child)),
                Err(openssh::Error::Disconnected | openssh::Error::SshMux(_)) if !retried => {
                    self.pool.forget(&self.host.name, &session);
                    retried = true;
                }
                Err(error) => {
                    self.pool.forget(&self.host.name, &session);
                    return Err(TransportError::Spawn {
                        command: described.to_owned(),
                        source: std::io::Error::other(transport_detail(&self.host, &error)),
                    });
                }
            }
        }
    }

    /// Runs one of runsheet's own scripts, which must exit 0.
    async fn script(
        &self,
        what: &str,
        script: &str,
        stdin: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<ExecOutput, TransportError> {
        let output = self.run(what, script, stdin, None, limit).await?;
        if output.succeeded() {
            return Ok(output);
        }
        let stderr = output.stderr.tail(5);
        Err(TransportError::io(
            what,
            std::io::Error::other(if stderr.is_empty() {
                format!("the host's shell exited with {:?}", output.exit_code)
            } else {
                stderr
            }),
        ))
    }
}

/// What openssh said about a failed channel, with the host named.
fn transport_detail(host: &Host, error: &openssh::Error) -> String {
    format!(
        "over SSH to `{}` ({}): {}",
        host.name,
        pool::endpoint(host),
        super::transport::with_sources(error)
    )
}

#[async_trait::async_trait]
impl Transport for SshTransport {
    fn name(&self) -> &'static str {
        "ssh"
    }

    async fn exec(&self, request: &ExecRequest) -> Result<ExecOutput, TransportError> {
        let script = script::exec_script(request)?;
        self.run(
            &request.program.to_string(),
            &script,
            request.stdin.clone(),
            request.timeout,
            self.output_limit,
        )
        .await
    }

    async fn read_file(&self, path: &Path) -> Result<Option<FileState>, TransportError> {
        let what = format!("read {} on `{}`", path.display(), self.host.name);
        let output = self
            .script(&what, &script::read_file(path), None, FILE_LIMIT)
            .await?;
        if output.stdout.truncated {
            return Err(TransportError::io(
                what,
                std::io::Error::other("the file is larger than 64 MiB"),
            ));
        }
        if output.stdout.cut_short {
            // Partial content must never pass for the file (a wrong diff, a wrong undo).
            return Err(TransportError::io(
                what,
                std::io::Error::other("the file's content did not arrive in full"),
            ));
        }
        let bytes = output.stdout.bytes;
        let split = bytes
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(bytes.len());
        let header = String::from_utf8_lossy(&bytes[..split]).into_owned();
        let content = bytes.get(split + 1..).unwrap_or_default().to_vec();
        if header == "absent" {
            return Ok(None);
        }
        let unreadable = || {
            TransportError::io(
                what.clone(),
                std::io::Error::other(format!("unexpected answer `{header}`")),
            )
        };
        let words: Vec<&str> = header.split_whitespace().collect();
        let ["file", mode, user, group, uid, gid, size] = words[..] else {
            return Err(unreadable());
        };
        let mode = u32::from_str_radix(mode, 8).map_err(|_| unreadable())?;
        let size: usize = size.parse().map_err(|_| unreadable())?;
        if content.len() < size {
            // A wrong undo record is worse than a failed step. (More than the size is
            // fine: files in /proc say 0, and a file may grow while it is read.)
            return Err(TransportError::io(
                what,
                std::io::Error::other(format!(
                    "{} of its {size} bytes arrived (the file changed while it was read, or the \
                     connection cut it short)",
                    content.len()
                )),
            ));
        }
        // An id with no name on the host is kept as the number, as the local transport does.
        let named = |name: &str, id: &str| {
            if name == "UNKNOWN" {
                id.to_owned()
            } else {
                name.to_owned()
            }
        };
        Ok(Some(FileState {
            content,
            mode,
            owner: Ownership {
                user: named(user, uid),
                group: Some(named(group, gid)),
            },
        }))
    }

    async fn path_exists(&self, path: &Path) -> Result<bool, TransportError> {
        let what = format!("look at {} on `{}`", path.display(), self.host.name);
        let output = self
            .script(&what, &script::path_exists(path), None, 64)
            .await?;
        Ok(output.stdout.text().trim() == "yes")
    }

    async fn write_file(&self, path: &Path, file: &FileSpec) -> Result<(), TransportError> {
        let what = format!("write {} on `{}`", path.display(), self.host.name);
        let output = self
            .run(
                &what,
                &script::write_file(path, file),
                Some(file.content.clone()),
                None,
                64 * 1024,
            )
            .await?;
        if output.succeeded() {
            return Ok(());
        }
        let stderr = output.stderr.tail(5);
        for kind in ["user", "group"] {
            if stderr.contains(&format!("invalid {kind}"))
                && let Some(owner) = &file.owner
            {
                let name = match kind {
                    "user" => owner.user.clone(),
                    _ => owner.group.clone().unwrap_or_default(),
                };
                return Err(TransportError::UnknownOwner { kind, name });
            }
        }
        Err(TransportError::io(what, std::io::Error::other(stderr)))
    }

    async fn remove_file(&self, path: &Path) -> Result<(), TransportError> {
        let what = format!("remove {} on `{}`", path.display(), self.host.name);
        self.script(&what, &script::remove_file(path), None, 64 * 1024)
            .await
            .map(drop)
    }

    async fn port_open(&self, host: &str, port: u16) -> Result<bool, TransportError> {
        let what = format!("check port {host}:{port} from `{}`", self.host.name);
        let output = self
            .script(&what, &script::port_open(host, port), None, 64)
            .await?;
        Ok(output.stdout.text().trim() == "open")
    }

    async fn connect_tcp(&self, host: &str, port: u16) -> Result<ByteStream, TransportError> {
        let session = self.pool.session(&self.host).await?;
        let mut child = tokio::process::Command::new("ssh")
            .arg("-S")
            .arg(session.control_socket())
            .args(["-o", "ControlMaster=no", "-o", "BatchMode=yes", "-W"])
            .arg(format!("{host}:{port}"))
            .arg(&self.host.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                TransportError::io(
                    format!("forward to {host}:{port} through `{}`", self.host.name),
                    error,
                )
            })?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(TransportError::io(
                "forward a connection",
                std::io::Error::other("ssh gave no pipes"),
            ));
        };
        Ok(Box::new(Forwarded {
            _ssh: child,
            stream: tokio::io::join(output, input),
        }))
    }

    async fn system_names(&self) -> Result<SystemNames, TransportError> {
        let what = format!("read the system's names on `{}`", self.host.name);
        let output = self.script(&what, script::SYSTEM_NAMES, None, 4096).await?;
        let text = output.stdout.text();
        let mut lines = text.lines();
        Ok(SystemNames {
            hostname: lines.next().unwrap_or_default().to_owned(),
            kernel: lines.next().unwrap_or_default().to_owned(),
        })
    }
}

/// The most a login shell may print before the marker (a banner), kept only
/// if the marker never comes.
const PRELUDE_LIMIT: usize = 64 * 1024;

/// Reads the process group id that follows the marker, dropping what the login
/// shell printed before it, then captures the rest. Without a marker (a host
/// that runs something else than the command, a forced command) everything
/// read is kept as output.
async fn capture_after_group(
    pipe: impl AsyncRead + Unpin,
    group: Arc<OnceLock<i32>>,
    limit: usize,
    sink: Arc<Mutex<CapturedOutput>>,
    end: End,
) {
    let mut reader = BufReader::new(pipe);
    let mut prelude = Vec::new();
    loop {
        let mut line = Vec::new();
        let room = PRELUDE_LIMIT.saturating_sub(prelude.len()).max(1);
        let read = (&mut reader)
            .take(u64::try_from(room).unwrap_or(u64::MAX))
            .read_until(b'\n', &mut line)
            .await;
        if let Ok(read) = read
            && read > 0
            && let Some(id) = script::group_in(&line)
        {
            if let Some(id) = id {
                let _set = group.set(id);
            }
            break;
        }
        prelude.extend_from_slice(&line);
        if !matches!(read, Ok(read) if read > 0) || prelude.len() >= PRELUDE_LIMIT {
            // No marker: nothing is known about the group; what came is the output.
            append(&sink, &prelude, limit);
            if matches!(read, Ok(read) if read > 0) {
                capture_until_end(reader, limit, sink, end).await;
            }
            return;
        }
    }
    capture_until_end(reader, limit, sink, end).await;
}

/// A command's end marker on one stream, and where to say it came.
struct End {
    /// The marker (with the command's token).
    marker: Arc<[u8]>,
    /// Told when the marker came.
    seen: Arc<Notify>,
}

/// Captures a stream up to the end marker, and says when the marker came. What comes
/// after it (a background process still writing) is read but not kept: it is not the
/// command's output, and leaving it unread could block or break that process.
async fn capture_until_end(
    mut pipe: impl AsyncRead + Unpin,
    limit: usize,
    sink: Arc<Mutex<CapturedOutput>>,
    end: End,
) {
    let marker: &[u8] = &end.marker;
    let mut buffer = [0_u8; 8192];
    // Bytes held back because they may be the start of the marker.
    let mut held: Vec<u8> = Vec::new();
    let mut seen = false;
    loop {
        let read = match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if seen {
            continue;
        }
        held.extend_from_slice(&buffer[..read]);
        if let Some(at) = held
            .windows(marker.len())
            .position(|window| window == marker)
        {
            seen = true;
            end.seen.notify_one();
            append(&sink, &held[..at], limit);
            held.clear();
        } else {
            let keep = held.len() - marker_start_at_end(&held, marker);
            append(&sink, &held[..keep], limit);
            held.drain(..keep);
        }
    }
    append(&sink, &held, limit);
}

/// How many bytes at the end of `bytes` could be the start of `marker`.
fn marker_start_at_end(bytes: &[u8], marker: &[u8]) -> usize {
    (1..marker.len())
        .rev()
        .find(|length| bytes.ends_with(&marker[..*length]))
        .unwrap_or(0)
}

/// Waits until the command has ended and all its output came: the wrapper's end
/// marker arrived on both streams, or both were read to their end (a login shell
/// killed before the markers).
async fn command_ended(readers: &mut [Option<JoinHandle<()>>; 2], ended: &[Arc<Notify>; 2]) {
    tokio::select! {
        () = all_read(readers) => {}
        () = async {
            ended[0].notified().await;
            ended[1].notified().await;
        } => {}
    }
}

/// Waits until both streams are read to their end; a stream read to its end is taken out.
async fn all_read(readers: &mut [Option<JoinHandle<()>>; 2]) {
    for reader in readers.iter_mut() {
        if let Some(handle) = reader.as_mut() {
            let _joined = handle.await;
        }
        *reader = None;
    }
}

/// The process group of a command on the host, stopped when the command times
/// out or its step is abandoned, unless disarmed once the command ended.
struct RemoteGroup {
    session: Arc<Session>,
    pool: Arc<SshPool>,
    id: Arc<OnceLock<i32>>,
    armed: bool,
    /// The host's name, for a failed kill's message.
    host: String,
    /// The command, for a failed kill's message.
    command: String,
}

impl RemoteGroup {
    /// Stops the group now; `false` when its id never arrived (nothing could be stopped).
    ///
    /// The group stays armed until the kill is done: when the step's own timeout
    /// drops this future halfway, the drop still sends the kill.
    async fn kill(mut self) -> bool {
        let Some(id) = self.id.get().copied() else {
            self.armed = false;
            return false;
        };
        let stopped = kill(Arc::clone(&self.session), id).await;
        self.armed = false;
        stopped
    }

    /// The command ended by itself: leave what it started in the background alone.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for RemoteGroup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let unstopped = format!(
            "`{}` on host `{}` could not be stopped when its step ended (timeout or abort): \
             it may still be running there",
            self.command, self.host
        );
        let Some(id) = self.id.get().copied() else {
            self.pool.failed(unstopped);
            return;
        };
        // The pool waits for this before it closes the connections at the end of the run,
        // and reports it when the kill did not get through.
        let session = Arc::clone(&self.session);
        let task = runtime.spawn(async move { (!kill(session, id).await).then_some(unstopped) });
        self.pool.pending(task);
    }
}

/// Stops a process group on the host (TERM, then KILL); whether the host confirmed it.
async fn kill(session: Arc<Session>, group: i32) -> bool {
    let mut command = Session::to_raw_command(session, script::wrapped(&script::kill_group(group), "kill"));
    command
        .stdin(openssh::Stdio::null())
        .stdout(openssh::Stdio::null())
        .stderr(openssh::Stdio::null());
    matches!(
        tokio::time::timeout(KILL_TIMEOUT, command.status()).await,
        Ok(Ok(status)) if status.success()
    )
}

/// A TCP connection made from the host by `ssh -W`, over the master.
struct Forwarded {
    _ssh: tokio::process::Child,
    stream: tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>,
}

impl AsyncRead for Forwarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Forwarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end marker the tests' commands print.
    fn end() -> End {
        End {
            marker: script::end_marker("t0k3n").into(),
            seen: Arc::new(Notify::new()),
        }
    }

    async fn read(stdout: &'static [u8], limit: usize) -> (Option<i32>, CapturedOutput) {
        let group = Arc::new(OnceLock::new());
        let sink = Arc::new(Mutex::new(CapturedOutput::default()));
        capture_after_group(stdout, Arc::clone(&group), limit, Arc::clone(&sink), end()).await;
        (group.get().copied(), take(&sink, true))
    }

    #[tokio::test]
    async fn a_banner_before_the_marker_is_not_output() {
        let (group, output) = read(
            b"Welcome\nno newline\x1erunsheet-pgid:4321\nhello\x1erunsheet-end:t0k3n\n",
            1024,
        )
        .await;
        assert_eq!(group, Some(4321));
        assert_eq!(output.bytes, b"hello");
    }

    /// A stream as read in `chunks`: what is kept, whether it was cut at the limit, and
    /// whether the end was announced.
    async fn stream_in(chunks: &[&'static [u8]], limit: usize) -> (Vec<u8>, bool, bool) {
        let (mut writer, reader) = tokio::io::duplex(64);
        let chunks: Vec<&'static [u8]> = chunks.to_vec();
        let writing = tokio::spawn(async move {
            for chunk in chunks {
                let _written = writer.write_all(chunk).await;
                let _flushed = writer.flush().await;
                tokio::task::yield_now().await;
            }
        });
        let sink = Arc::new(Mutex::new(CapturedOutput::default()));
        let end = end();
        let seen = Arc::clone(&end.seen);
        capture_until_end(reader, limit, Arc::clone(&sink), end).await;
        let _written = writing.await;
        let announced = tokio::time::timeout(Duration::from_millis(50), seen.notified())
            .await
            .is_ok();
        let output = take(&sink, true);
        (output.bytes, output.truncated, announced)
    }

    #[tokio::test]
    async fn the_end_marker_is_announced_and_ends_the_output_wherever_the_reads_split_it() {
        let (bytes, _, announced) =
            stream_in(&[b"warning: x\n\x1erunsheet-end:t0k3n\n"], 1024).await;
        assert_eq!((bytes.as_slice(), announced), (&b"warning: x\n"[..], true));
        let (bytes, _, announced) = stream_in(
            &[b"no newline\x1erun", b"sheet-end:t0", b"k3n\n", b"late daemon\n"],
            1024,
        )
        .await;
        assert_eq!(
            (bytes.as_slice(), announced),
            (&b"no newline"[..], true),
            "what a background process writes after the end is not the command's"
        );
        // Another command's marker (another token) is output like any other bytes.
        let (bytes, _, announced) =
            stream_in(&[b"a\x1erunsheet-end:0ther\n", b"b"], 1024).await;
        assert_eq!(
            (bytes.as_slice(), announced),
            (&b"a\x1erunsheet-end:0ther\nb"[..], false)
        );
        let (bytes, truncated, announced) =
            stream_in(&[b"0123456789", b"\x1erunsheet-end:t0k3n\n"], 4).await;
        assert_eq!(
            (bytes.as_slice(), truncated, announced),
            (&b"0123"[..], true, true)
        );
    }

    #[tokio::test]
    async fn without_a_marker_everything_is_output_within_the_limit() {
        let (group, output) = read(b"a forced command said this\nand this", 1024).await;
        assert_eq!(group, None);
        assert_eq!(output.bytes, b"a forced command said this\nand this");
        let (_, output) = read(b"0123456789\n0123456789", 5).await;
        assert_eq!(output.bytes, b"01234");
        assert!(output.truncated);
    }
}
