//! [`HostWait`]: `host.wait`, polls a port, path or URL on the host until it
//! reaches a state.
//!
//! It checks every 250ms until `timeout`. URLs are plain `http://`: a minimal
//! HTTP/1.0 GET through the transport's TCP connection, started once it
//! answers 2xx; the `http` action covers https.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runsheet_engine::{Action, ActionError, ActionSpec, Applied, Effect, StepContext, TargetKind};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::exec::millis;
use super::transport::{self, Transport};
use super::{FAMILY, HostWaitArguments, WaitState};
use crate::arguments::parse;

/// The action's type name.
pub const NAME: &str = "host.wait";

/// Time between two checks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Longest single check (one connection or request).
const CHECK_LIMIT: Duration = Duration::from_secs(5);

/// `host.wait`: waits until a port, path or URL on the host reaches a state.
#[derive(Debug, Clone)]
pub struct HostWait {
    spec: ActionSpec,
}

impl Default for HostWait {
    fn default() -> Self {
        Self::new()
    }
}

impl HostWait {
    /// The action with its catalogue description.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<HostWaitArguments>(
                NAME,
                FAMILY,
                "Waits until a port, path or URL on the host reaches a state.",
                Effect::READ,
            )
            .target(TargetKind::Host)
            .outputs(&["elapsed_ms"]),
        }
    }
}

#[async_trait::async_trait]
impl Action for HostWait {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: HostWaitArguments = parse(NAME, arguments)?;
        let condition = Condition::of(&arguments)?;
        let transport = transport::for_step(context)?;
        let elapsed = wait_for(transport.as_ref(), &condition, arguments.timeout.0).await?;
        let mut outputs = Map::new();
        outputs.insert("elapsed_ms".into(), json!(millis(elapsed)));
        Ok(Applied {
            secrets: Vec::new(),
            outputs,
            undo: None,
            change: None,
        })
    }
}

/// What `host.wait` waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// A TCP port accepts connections (`open`) or refuses them.
    Port { host: String, port: u16, open: bool },
    /// A path exists (`present`) or not.
    Path { path: PathBuf, present: bool },
    /// An http URL answers 2xx (`up`) or not.
    Url { url: HttpUrl, up: bool },
}

impl Condition {
    /// The condition the arguments describe.
    fn of(arguments: &HostWaitArguments) -> Result<Self, ActionError> {
        let state = arguments.state;
        match (&arguments.port, &arguments.path, &arguments.url) {
            (Some(port), None, None) => Ok(Condition::Port {
                host: arguments
                    .host
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1".to_owned()),
                port: *port,
                open: started(state, "port")?,
            }),
            (None, Some(path), None) => Ok(Condition::Path {
                path: PathBuf::from(path),
                present: match state {
                    None | Some(WaitState::Present) => true,
                    Some(WaitState::Absent) => false,
                    Some(_) => return Err(invalid("a `path` is `present` or `absent`")),
                },
            }),
            (None, None, Some(url)) => Ok(Condition::Url {
                url: HttpUrl::parse(url)?,
                up: started(state, "url")?,
            }),
            _ => Err(invalid("give exactly one of `port`, `path` and `url`")),
        }
    }

    /// What is awaited, for humans: "port 127.0.0.1:8001 to accept connections".
    fn describe(&self) -> String {
        match self {
            Condition::Port { host, port, open } => format!(
                "port {host}:{port} to {} connections",
                if *open { "accept" } else { "refuse" }
            ),
            Condition::Path { path, present } => format!(
                "{} to {}",
                path.display(),
                if *present { "exist" } else { "disappear" }
            ),
            Condition::Url { url, up } => format!(
                "{} to {}",
                url.text,
                if *up {
                    "answer 2xx"
                } else {
                    "stop answering 2xx"
                }
            ),
        }
    }

    /// Whether the condition holds now; a check that cannot finish in `limit` says no.
    async fn holds(&self, transport: &dyn Transport, limit: Duration) -> Result<bool, ActionError> {
        match self {
            Condition::Path { path, present } => Ok(transport.path_exists(path).await? == *present),
            Condition::Port { host, port, open } => {
                let connected = match tokio::time::timeout(limit, transport.port_open(host, *port)).await {
                    Ok(answer) => answer?,
                    Err(_) => false,
                };
                Ok(connected == *open)
            }
            Condition::Url { url, up } => {
                let status = tokio::time::timeout(limit, url.get_status(transport)).await;
                let answered = matches!(status, Ok(Some(200..=299)));
                Ok(answered == *up)
            }
        }
    }
}

/// Whether `started` (the default) or `stopped` is asked for a port or URL.
fn started(state: Option<WaitState>, what: &str) -> Result<bool, ActionError> {
    match state {
        None | Some(WaitState::Started) => Ok(true),
        Some(WaitState::Stopped) => Ok(false),
        Some(_) => Err(invalid(&format!("a `{what}` is `started` or `stopped`"))),
    }
}

/// Polls until the condition holds; fails at `timeout` naming what it waited for.
async fn wait_for(
    transport: &dyn Transport,
    condition: &Condition,
    timeout: Duration,
) -> Result<Duration, ActionError> {
    let started = Instant::now();
    loop {
        let remaining = timeout.saturating_sub(started.elapsed());
        if condition
            .holds(transport, remaining.clamp(POLL_INTERVAL, CHECK_LIMIT))
            .await?
        {
            return Ok(started.elapsed());
        }
        let remaining = timeout.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Err(ActionError::failed(format!(
                "timed out after {}ms waiting for {}",
                timeout.as_millis(),
                condition.describe()
            )));
        }
        tokio::time::sleep(remaining.min(POLL_INTERVAL)).await;
    }
}

/// An `http://` URL split for a hand-written request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpUrl {
    /// The URL as written.
    text: String,
    /// Host name or address (IPv6 without brackets).
    host: String,
    /// Port (default 80).
    port: u16,
    /// Path and query (default `/`).
    target: String,
    /// The `Host` header's value.
    authority: String,
}

impl HttpUrl {
    /// Reads an `http://host[:port][/path]` URL.
    fn parse(text: &str) -> Result<Self, ActionError> {
        if text.len() >= 8 && text[..8].eq_ignore_ascii_case("https://") {
            return Err(invalid(
                "`url` must be http://: host.wait does not speak TLS; use the `http` action for https",
            ));
        }
        let rest = match text.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &text[7..],
            _ => {
                return Err(invalid(&format!(
                    "`url` must start with http://, not `{text}`"
                )));
            }
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(at) if rest[at..].starts_with('/') => (&rest[..at], rest[at..].to_owned()),
            Some(at) => (&rest[..at], format!("/{}", &rest[at..])),
            None => (rest, "/".to_owned()),
        };
        let target = target.split('#').next().unwrap_or("/").to_owned();
        let bad = || invalid(&format!("`url` has no usable host and port: `{text}`"));
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed.split_once(']').ok_or_else(bad)?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(port) => port
                .parse()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(bad)?,
            None => 80,
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            text: text.to_owned(),
            host: host.to_owned(),
            port,
            target,
            authority: authority.to_owned(),
        })
    }

    /// The status code of a GET, or `None` when there is no HTTP answer.
    async fn get_status(&self, transport: &dyn Transport) -> Option<u16> {
        let mut stream = transport.connect_tcp(&self.host, self.port).await.ok()?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: runsheet\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.target, self.authority
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = Vec::new();
        let mut buffer = [0_u8; 512];
        while !head.contains(&b'\n') && head.len() < 4096 {
            let read = stream.read(&mut buffer).await.ok()?;
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..read]);
        }
        status_code(&head)
    }
}

/// The status code of a response's first line (`HTTP/1.1 200 OK`).
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|byte| *byte == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words.next()?.parse().ok()
}

/// An argument error of this action.
fn invalid(message: &str) -> ActionError {
    ActionError::InvalidArguments {
        action: NAME,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;
    use crate::host::testing::local_step;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    async fn wait(arguments: Value) -> Result<Applied, ActionError> {
        HostWait::new().apply(&local_step(true), arguments).await
    }

    /// A port that nothing listens on (just freed).
    async fn free_port() -> std::io::Result<u16> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Ok(listener.local_addr()?.port())
    }

    #[tokio::test]
    async fn waits_for_a_port_that_opens_later() -> TestResult {
        let port = free_port().await?;
        let opener = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let listener = TcpListener::bind(("127.0.0.1", port)).await?;
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(listener);
            std::io::Result::Ok(())
        });
        let applied = wait(json!({"port": port, "timeout": "10s"})).await?;
        let elapsed = applied.outputs["elapsed_ms"]
            .as_u64()
            .ok_or("no elapsed_ms")?;
        assert!(
            elapsed >= 600,
            "the port was open before it was bound: {elapsed}ms"
        );
        opener.abort();
        Ok(())
    }

    #[tokio::test]
    async fn a_port_that_stays_closed_times_out() -> TestResult {
        let port = free_port().await?;
        let started = Instant::now();
        let outcome = wait(json!({"port": port, "timeout": "600ms"})).await;
        assert!(
            matches!(&outcome, Err(ActionError::Failed { message })
                if message == &format!("timed out after 600ms waiting for port 127.0.0.1:{port} to accept connections")),
            "{outcome:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(600));
        assert!(started.elapsed() < Duration::from_secs(5));
        Ok(())
    }

    #[tokio::test]
    async fn waits_for_a_path_to_appear_and_disappear() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("ready");
        let creator = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                tokio::fs::write(path, "").await
            })
        };
        let applied = wait(json!({"path": path, "timeout": "10s"})).await?;
        assert!(path.exists());
        assert!(
            applied.outputs["elapsed_ms"]
                .as_u64()
                .is_some_and(|ms| ms >= 400)
        );
        creator.await??;

        let outcome = wait(json!({"path": path, "state": "absent", "timeout": "300ms"})).await;
        assert!(
            matches!(&outcome, Err(ActionError::Failed { message }) if message.ends_with("ready to disappear")),
            "{outcome:?}"
        );
        std::fs::remove_file(&path)?;
        wait(json!({"path": path, "state": "absent", "timeout": "1s"})).await?;
        Ok(())
    }

    #[tokio::test]
    async fn waits_for_a_url_to_answer_2xx() -> TestResult {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = tokio::spawn(async move {
            for status in [
                "503 Service Unavailable",
                "503 Service Unavailable",
                "200 OK",
            ] {
                let (mut connection, _) = listener.accept().await?;
                let mut buffer = [0_u8; 1024];
                let read = connection.read(&mut buffer).await?;
                let request = String::from_utf8_lossy(&buffer[..read]).into_owned();
                connection
                    .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await?;
                if status.starts_with("200") {
                    return std::io::Result::Ok(request);
                }
            }
            Ok(String::new())
        });
        let url = format!("http://127.0.0.1:{port}/status?x=1");
        wait(json!({"url": url, "timeout": "10s"})).await?;
        let request = server.await??;
        assert!(
            request.starts_with("GET /status?x=1 HTTP/1.0\r\n"),
            "{request}"
        );
        assert!(
            request.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{request}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn refuses_https_and_mismatched_states() {
        for arguments in [
            json!({"url": "https://kong:8443/status"}),
            json!({"url": "ftp://kong/"}),
            json!({"url": "http://user@kong/"}),
            json!({"port": 8001, "state": "present"}),
            json!({"path": "/tmp", "state": "started"}),
            json!({"path": "/tmp", "port": 8001}),
            json!({}),
        ] {
            let outcome = wait(arguments.clone()).await;
            assert!(
                matches!(outcome, Err(ActionError::InvalidArguments { .. })),
                "{arguments}: {outcome:?}"
            );
        }
    }

    #[test]
    fn reads_http_urls() -> Result<(), ActionError> {
        let url = HttpUrl::parse("http://[::1]:8100/a/b?c#frag")?;
        assert_eq!(
            (url.host.as_str(), url.port, url.target.as_str()),
            ("::1", 8100, "/a/b?c")
        );
        let url = HttpUrl::parse("HTTP://kong")?;
        assert_eq!(
            (url.host.as_str(), url.port, url.target.as_str()),
            ("kong", 80, "/")
        );
        let url = HttpUrl::parse("http://kong:8001?x")?;
        assert_eq!(
            (url.authority.as_str(), url.target.as_str()),
            ("kong:8001", "/?x")
        );
        assert!(HttpUrl::parse("http://kong:0/").is_err());
        assert!(HttpUrl::parse("http://:80/").is_err());
        Ok(())
    }

    #[test]
    fn reads_status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.0 404\r\n"), Some(404));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b""), None);
    }
}
