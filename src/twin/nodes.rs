//! Data-plane node stand-ins declared by an environment's hosts (`twin: {node: ...}`):
//! before a command uses the environment, each one that is not running is started as a
//! detached `runsheet twin node` process and waited for until it is ready; it is then left
//! running, like a real node, for the playbooks to stop, upgrade and start.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use runsheet_engine::model::{Host, TwinNode};
use runsheet_twin::node::PID_FILE;

/// The log a started node writes to, in its state directory.
pub const LOG_FILE: &str = "node.log";

/// The file naming the runsheet binary that last started the node, in its state directory
/// (the lab's node script starts the node again with it).
pub const BINARY_FILE: &str = "binary";

/// How long a started node may take to answer `/status/ready`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a node that runs may take to answer at all.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the node of every host that declares one and whose node is not running; says so
/// on stderr. Stops at the first node that cannot be started, with why and where its log is.
pub fn ensure(hosts: &[Host]) -> Result<(), (String, String)> {
    for host in hosts {
        let Some(node) = &host.twin_node else {
            continue;
        };
        match ensure_one(node) {
            Ok(Some(pid)) => eprintln!(
                "lab: started node {} (runsheet twin node, pid {pid}) on http://{}, state {}",
                host.name, node.listen, node.state_dir
            ),
            Ok(None) => {}
            Err(message) => return Err((host.name.clone(), message)),
        }
    }
    Ok(())
}

/// Starts `node` unless it runs: the new process's PID, or `None` when it was running.
fn ensure_one(node: &TwinNode) -> Result<Option<u32>, String> {
    let listen: SocketAddr = node
        .listen
        .parse()
        .map_err(|e| format!("twin node listen `{}`: {e} (expected IP:PORT)", node.listen))?;
    let dir = PathBuf::from(&node.state_dir);
    let log = dir.join(LOG_FILE);
    if let Some(pid) = running_pid(&dir) {
        wait_until(listen, "/", ANSWER_TIMEOUT, || None).map_err(|why| {
            format!(
                "its node runs (pid {pid}, {}) but does not answer on {listen}: {why}; see {}",
                dir.join(PID_FILE).display(),
                log.display()
            )
        })?;
        return Ok(None);
    }
    if TcpStream::connect_timeout(&listen, Duration::from_millis(300)).is_ok() {
        return Err(format!(
            "{listen} is taken by another process, not the node of state directory {} (no running PID in {}); stop it, or run runsheet from the directory that holds that node's state",
            dir.display(),
            dir.join(PID_FILE).display()
        ));
    }
    start(node, &dir, &log, listen).map(Some)
}

/// Starts the node process detached in its own process group, and waits until it is ready.
fn start(node: &TwinNode, dir: &Path, log: &Path, listen: SocketAddr) -> Result<u32, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find runsheet's own binary to start the node: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join(BINARY_FILE), format!("{}\n", exe.display()))
        .map_err(|e| format!("{}: {e}", dir.join(BINARY_FILE).display()))?;
    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let errors = output
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(&exe);
    command
        .args([
            "twin",
            "node",
            "--listen",
            &node.listen,
            "--version",
            &node.version,
        ])
        .arg("--state-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors);
    detach(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {} twin node: {e}", exe.display()))?;
    let pid = child.id();
    // Reaped as soon as it exits, so that a node stopped while this command runs does not
    // linger as a zombie; the exit status tells a failed start apart.
    let (exited, exit) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait().map(|status| status.to_string()));
    });
    let gone = || {
        exit.try_recv().ok().map(|status| match status {
            Ok(status) => format!("it exited ({status})"),
            Err(e) => format!("it could not be waited for: {e}"),
        })
    };
    wait_until(listen, "/status/ready", START_TIMEOUT, gone).map_err(|why| {
        // A node that did not become ready is not left behind to bind the port later.
        stop_group(pid);
        format!(
            "the node (pid {pid}, `{} twin node --listen {} --state-dir {}`) did not become ready: {why}; the end of {}:\n{}",
            exe.display(),
            node.listen,
            dir.display(),
            log.display(),
            tail(log, 5)
        )
    })?;
    Ok(pid)
}

/// Stops the process group of a node that failed to start (SIGTERM, then SIGKILL after a
/// second); a group already gone is fine.
#[cfg(unix)]
fn stop_group(pid: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    let group = Pid::from_raw(raw);
    if killpg(group, Signal::SIGTERM).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if killpg(group, None).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(group, Signal::SIGKILL);
}

/// Nothing to stop where process groups do not exist.
#[cfg(not(unix))]
fn stop_group(_pid: u32) {}

/// Puts the node in its own process group: Ctrl-C on runsheet's terminal does not reach it.
#[cfg(unix)]
fn detach(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    command.process_group(0);
}

/// Nothing to do off Unix.
#[cfg(not(unix))]
fn detach(_command: &mut Command) {}

/// Polls `GET path` on `listen` until it answers 200 (for `/status/ready`) or anything (for
/// `/`); `gone` says when the process exited meanwhile. Why it gave up.
fn wait_until(
    listen: SocketAddr,
    path: &str,
    timeout: Duration,
    gone: impl Fn() -> Option<String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match get_status(listen, path) {
            Ok(200) => return Ok(()),
            Ok(_) if path == "/" => return Ok(()),
            Ok(status) => format!("GET {path} answered {status}"),
            Err(e) => format!("GET http://{listen}{path}: {e}"),
        };
        if let Some(why) = gone() {
            return Err(why);
        }
        if Instant::now() >= deadline {
            return Err(format!("{last} after {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status code of `GET path` on `listen` (one request per connection).
fn get_status(listen: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&listen, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

/// The PID in the node's PID file while that process runs.
fn running_pid(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(PID_FILE)).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

/// Whether process `pid` runs (an exited one not reaped yet does not).
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// Off Unix, a PID file is taken at its word.
#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    true
}

/// The last `lines` lines of a log, indented ("(empty)" when there is none).
fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    if all.is_empty() {
        return "  (empty)".to_owned();
    }
    all[start..]
        .iter()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_stale_pid_file_is_not_a_running_node() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        assert_eq!(running_pid(dir.path()), None);
        // PIDs above the kernel's maximum (4,194,304) never run.
        std::fs::write(dir.path().join(PID_FILE), "99999999\n")?;
        assert_eq!(running_pid(dir.path()), None);
        std::fs::write(
            dir.path().join(PID_FILE),
            format!("{}\n", std::process::id()),
        )?;
        assert_eq!(running_pid(dir.path()), Some(std::process::id()));
        Ok(())
    }

    #[test]
    fn a_bad_listen_address_is_named() {
        let node = TwinNode {
            listen: "localhost".into(),
            version: "3.9.0".into(),
            state_dir: "x".into(),
        };
        let error = ensure_one(&node).err().unwrap_or_default();
        assert!(
            error.contains("`localhost`") && error.contains("IP:PORT"),
            "{error}"
        );
    }

    #[test]
    fn the_tail_of_a_log_is_its_last_lines() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("node.log");
        assert_eq!(tail(&log, 2), "  (empty)");
        std::fs::write(&log, "a\nb\nc\n")?;
        assert_eq!(tail(&log, 2), "  b\n  c");
        Ok(())
    }
}
