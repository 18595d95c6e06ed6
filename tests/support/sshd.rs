//! Real OpenSSH servers on loopback for tests and benchmarks: each with its own
//! host key and port, sharing one client key and one known_hosts file, logging
//! every command they run. The servers run as the current user, with an empty
//! HOME for the login (so no shell start-up file slows or changes a command),
//! and are stopped by PID when the lab is dropped.
//!
//! Included with `#[path]` by the test and bench targets that need it.

#![allow(dead_code, reason = "each including target uses a different part")]

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where sshd is installed (Debian's openssh-server).
pub const SSHD: &str = "/usr/sbin/sshd";

/// Servers on loopback and the files a client needs to reach them.
pub struct SshLab {
    dir: tempfile::TempDir,
    /// The servers, in order.
    pub servers: Vec<Server>,
    /// Extra `NAME=value` pairs the login gets (authorized_keys `environment=`).
    environment: Vec<(String, String)>,
}

/// One sshd.
pub struct Server {
    /// Its loopback port.
    pub port: u16,
    /// Its directory (config, host key, log).
    pub dir: PathBuf,
    child: Option<Child>,
}

impl SshLab {
    /// Starts `count` servers.
    pub fn start(count: usize) -> std::io::Result<SshLab> {
        Self::start_with(count, &[])
    }

    /// Starts `count` servers whose login also gets `environment` (`NAME`, value).
    pub fn start_with(count: usize, environment: &[(&str, &str)]) -> std::io::Result<SshLab> {
        std::fs::create_dir_all("/run/sshd")?;
        let dir = tempfile::Builder::new().prefix("sshlab-").tempdir()?;
        let mut lab = SshLab {
            dir,
            servers: Vec::new(),
            environment: environment
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        };
        std::fs::create_dir_all(lab.home())?;
        keygen(&lab.client_key())?;
        lab.write_authorized_keys()?;
        std::fs::write(
            lab.path().join("log-command.sh"),
            "#!/bin/sh\n# Logs the command sshd was asked to run, then runs it as sshd would.\n\
             printf '%s\\n---\\n' \"$SSH_ORIGINAL_COMMAND\" >> \"$RUNSHEET_COMMAND_LOG\"\n\
             if [ -z \"$SSH_ORIGINAL_COMMAND\" ]; then exec \"$SHELL\"; fi\n\
             exec \"$SHELL\" -c \"$SSH_ORIGINAL_COMMAND\"\n",
        )?;
        std::fs::set_permissions(
            lab.path().join("log-command.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let mut threads = Vec::new();
        for index in 0..count {
            let dir = lab.path().join(format!("server{}", index + 1));
            std::fs::create_dir_all(&dir)?;
            keygen(&dir.join("host_key"))?;
            let script = lab.path().join("log-command.sh");
            threads.push(std::thread::spawn(move || Server::start(dir, &script)));
        }
        for thread in threads {
            let server = thread
                .join()
                .map_err(|_| std::io::Error::other("a server thread panicked"))??;
            lab.servers.push(server);
        }
        lab.write_known_hosts()?;
        Ok(lab)
    }

    /// The lab's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The login's (empty) home directory.
    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// The client's private key.
    pub fn client_key(&self) -> PathBuf {
        self.path().join("client_key")
    }

    /// known_hosts listing every server's key.
    pub fn known_hosts(&self) -> PathBuf {
        self.path().join("known_hosts")
    }

    /// The login user: the user the tests run as.
    pub fn user(&self) -> String {
        std::env::var("USER")
            .ok()
            .filter(|user| !user.is_empty())
            .unwrap_or_else(|| "root".to_owned())
    }

    /// An environment file's `hosts:` (`node1`...) in group `group`, and `ssh:`.
    pub fn environment_yaml(&self, name: &str, group: &str) -> String {
        let mut text = format!("runsheet: 1\nname: {name}\nhosts:\n");
        for (index, server) in self.servers.iter().enumerate() {
            text.push_str(&format!(
                "  node{}: {{address: 127.0.0.1, port: {}, user: {}, groups: [{group}]}}\n",
                index + 1,
                server.port,
                self.user()
            ));
        }
        text.push_str(&format!(
            "ssh: {{identity: \"{}\", known_hosts: \"{}\", connect_timeout: 5s}}\n",
            self.client_key().display(),
            self.known_hosts().display()
        ));
        text
    }

    /// A plain `ssh` command to server `index` (system client, strict host keys).
    pub fn ssh(&self, index: usize) -> Command {
        let mut command = Command::new("ssh");
        command
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
            ])
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .args(["-o", "IdentitiesOnly=yes", "-i"])
            .arg(self.client_key())
            .arg("-p")
            .arg(self.servers[index].port.to_string())
            .arg(format!("{}@127.0.0.1", self.user()));
        command
    }

    /// The commands server `index` was asked to run, in order.
    pub fn commands(&self, index: usize) -> Vec<String> {
        let log = std::fs::read_to_string(self.servers[index].dir.join("commands.log"))
            .unwrap_or_default();
        log.split("\n---\n")
            .filter(|entry| !entry.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Clears every server's command log.
    pub fn clear_commands(&self) -> std::io::Result<()> {
        for server in &self.servers {
            let log = server.dir.join("commands.log");
            if log.exists() {
                std::fs::write(log, "")?;
            }
        }
        Ok(())
    }

    fn write_authorized_keys(&self) -> std::io::Result<()> {
        let public = std::fs::read_to_string(self.client_key().with_extension("pub"))?;
        let mut environment = vec![format!("environment=\"HOME={}\"", self.home().display())];
        for (name, value) in &self.environment {
            environment.push(format!("environment=\"{name}={value}\""));
        }
        std::fs::write(
            self.path().join("authorized_keys"),
            format!("{} {}", environment.join(","), public.trim()) + "\n",
        )
    }

    fn write_known_hosts(&self) -> std::io::Result<()> {
        let mut text = String::new();
        for server in &self.servers {
            let key = std::fs::read_to_string(server.dir.join("host_key.pub"))?;
            let mut words = key.split_whitespace();
            let (algorithm, blob) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            text.push_str(&format!("[127.0.0.1]:{} {algorithm} {blob}\n", server.port));
        }
        std::fs::write(self.known_hosts(), text)
    }
}

impl Server {
    /// Starts sshd in `dir` on a free port, retrying when another process takes the port first.
    fn start(dir: PathBuf, log_command: &Path) -> std::io::Result<Server> {
        let mut last = None;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut server = Server {
                port,
                dir: dir.clone(),
                child: None,
            };
            server.write_config(log_command)?;
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("sshd did not start")))
    }

    fn write_config(&self, log_command: &Path) -> std::io::Result<()> {
        let lab = self.dir.parent().unwrap_or(&self.dir);
        std::fs::write(
            self.dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile none\n\
                 AuthorizedKeysFile {lab}/authorized_keys\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n\
                 PermitUserEnvironment yes\nMaxSessions 64\nMaxStartups 100\nLogLevel VERBOSE\n\
                 SetEnv RUNSHEET_COMMAND_LOG={dir}/commands.log\nForceCommand {log_command}\n",
                port = self.port,
                dir = self.dir.display(),
                lab = lab.display(),
                log_command = log_command.display(),
            ),
        )
    }

    /// Starts sshd in the foreground (`-D`) in its own process group, and waits for its banner.
    fn launch(&mut self) -> std::io::Result<()> {
        let log = std::fs::File::create(self.dir.join("sshd.log"))?;
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Err(std::io::Error::other(format!(
                    "sshd exited with {status}: {}",
                    self.log()
                )));
            }
            if banner(self.port).is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(std::io::Error::other(format!(
            "sshd did not answer: {}",
            self.log()
        )))
    }

    /// sshd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// The PID of the listening sshd, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server and every connection it serves (sshd gives each its own session), at once.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let mut pids = descendants(child.id());
            pids.push(child.id());
            let _killed = Command::new("kill")
                .arg("-KILL")
                .args(pids.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
            let _reaped = child.wait();
        }
    }

    /// Freezes (`STOP`) or thaws (`CONT`) the server and every connection it serves: a hung host.
    pub fn signal_all(&self, signal: &str) -> std::io::Result<()> {
        if let Some(child) = &self.child {
            let mut pids = descendants(child.id());
            pids.push(child.id());
            Command::new("kill")
                .arg(format!("-{signal}"))
                .args(pids.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status()?;
        }
        Ok(())
    }

    /// Starts the server again on the same port with the same host key, after a kill.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        self.launch()
    }

    /// Restarts the server on the same port with a new host key (known_hosts now disagrees).
    pub fn restart_with_new_host_key(&mut self) -> std::io::Result<()> {
        self.kill();
        std::fs::remove_file(self.dir.join("host_key"))?;
        std::fs::remove_file(self.dir.join("host_key.pub"))?;
        keygen(&self.dir.join("host_key"))?;
        self.launch()
    }

    /// The host key's fingerprint as `ssh-keygen -l` prints it (`SHA256:...`).
    pub fn fingerprint(&self) -> std::io::Result<String> {
        let output = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.join("host_key.pub"))
            .output()?;
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| std::io::Error::other("ssh-keygen printed no fingerprint"))
    }

    /// Connections established to the server now (from /proc/net/tcp).
    pub fn connections(&self) -> usize {
        let port = format!(":{:04X}", self.port);
        std::fs::read_to_string("/proc/net/tcp")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                // local address, remote address, state 01 = ESTABLISHED
                words.len() > 3 && words[1].ends_with(&port) && words[3] == "01"
            })
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every process descended from `pid` (from /proc), children before their parents' parents.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(id) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent is the second field after the command name, which ends with the last `)`.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(parent) = parent {
            parents.push((id, parent));
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(current) = frontier.pop() {
        for (id, parent) in &parents {
            if *parent == current && !found.contains(id) {
                found.push(*id);
                frontier.push(*id);
            }
        }
    }
    found
}

/// Makes an ed25519 key pair without a passphrase.
fn keygen(path: &Path) -> std::io::Result<()> {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "runsheet-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "ssh-keygen failed for {}",
            path.display()
        )))
    }
}

/// The server's SSH banner, if it answers on `port`.
fn banner(port: u16) -> Option<String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let mut line = String::new();
    BufReader::new(stream.take(256)).read_line(&mut line).ok()?;
    line.starts_with("SSH-2.0").then_some(line)
}

/// A TCP listener that accepts connections and never answers: a host that
/// does not respond, for connection timeouts.
pub fn silent_listener() -> std::io::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}
