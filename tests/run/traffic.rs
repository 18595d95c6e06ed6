//! Customer traffic for the end-to-end tests: plain HTTP requests over loopback, a load
//! generator that sends authenticated requests through a twin's proxy while a playbook
//! runs and tallies every answer, and the processes that carry it (a standalone
//! `runsheet twin kong`, `runsheet twin node` upstreams).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::Lab;

/// What a test helper returns.
pub type Outcome<T> = Result<T, Box<dyn std::error::Error>>;

/// `GET url` over a plain TCP connection: status and body.
pub fn get(url: &str) -> std::io::Result<(u16, String)> {
    request(url, &[])
}

/// `GET url` with extra headers over a plain TCP connection (one request per
/// connection): status and body.
pub fn request(url: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
    send("GET", url, headers, None)
}

/// `POST url` with a JSON body: status and body.
pub fn post(url: &str, json: &str) -> std::io::Result<(u16, String)> {
    send(
        "POST",
        url,
        &[("content-type", "application/json")],
        Some(json),
    )
}

/// One request over a plain TCP connection: status and body.
fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let rest = url.trim_start_matches("http://");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or_default());
    stream.write_all(head.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A loopback port free at the time of asking.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until `url` answers, up to 10 s.
pub fn wait_for(url: &str) -> Outcome<(u16, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match get(url) {
            Ok(answer) => return Ok(answer),
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(format!("{url}: {e}").into()),
        }
    }
}

/// What one client of a [`Load`] saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests answered 2xx.
    pub ok: u64,
    /// When each failed request (any other status, or no answer) was sent.
    pub failed_at: Vec<Instant>,
    /// What happened to the first failures: the answer or the connection error, and the key.
    pub failures: Vec<String>,
    /// Keys sent, in the order first used.
    pub keys: Vec<String>,
}

impl Tally {
    /// Requests that failed.
    pub fn failed(&self) -> u64 {
        self.failed_at.len() as u64
    }

    /// Requests sent.
    pub fn sent(&self) -> u64 {
        self.ok + self.failed()
    }

    /// Every client's tally added up.
    pub fn sum<'a>(tallies: impl IntoIterator<Item = &'a Tally>) -> Tally {
        let mut total = Tally::default();
        for tally in tallies {
            total.ok += tally.ok;
            total.failed_at.extend(&tally.failed_at);
            let room = 10usize.saturating_sub(total.failures.len());
            total
                .failures
                .extend(tally.failures.iter().take(room).cloned());
            for key in &tally.keys {
                if !total.keys.contains(key) {
                    total.keys.push(key.clone());
                }
            }
        }
        total
    }
}

/// Which key a client sends next, by client number: `None` stops that client.
pub type KeyChoice = dyn Fn(usize) -> Option<String> + Send + Sync;

/// Clients sending `GET url` with their key in header `apikey`, back to back, until
/// stopped: the customers of a change.
pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Tally>>,
}

impl Load {
    /// Starts `clients` clients against `url`, each asking `key` which key to send.
    pub fn start(url: &str, clients: usize, key: Arc<KeyChoice>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|client| {
                let stop = Arc::clone(&stop);
                let key = Arc::clone(&key);
                let url = url.to_owned();
                std::thread::spawn(move || {
                    let mut tally = Tally::default();
                    while !stop.load(Ordering::Relaxed) {
                        let Some(key) = key(client) else { break };
                        if !tally.keys.contains(&key) {
                            tally.keys.push(key.clone());
                        }
                        let sent = Instant::now();
                        match request(&url, &[("apikey", &key)]) {
                            Ok((status, _)) if (200..300).contains(&status) => tally.ok += 1,
                            outcome => {
                                tally.failed_at.push(sent);
                                if tally.failures.len() < 10 {
                                    tally
                                        .failures
                                        .push(format!("client {client}, key {key}: {outcome:?}"));
                                }
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        Load { stop, clients }
    }

    /// Stops every client; what each saw, by client number.
    pub fn finish(self) -> Vec<Tally> {
        self.stop.store(true, Ordering::Relaxed);
        self.clients
            .into_iter()
            .map(|client| {
                client.join().unwrap_or_else(|_| Tally {
                    failed_at: vec![Instant::now()],
                    failures: vec!["the client thread panicked".to_owned()],
                    ..Tally::default()
                })
            })
            .collect()
    }
}

/// A standalone `runsheet twin kong` process with its control endpoint, stopped when dropped.
pub struct TwinProcess {
    child: Child,
    /// The Admin API URL.
    pub admin_url: String,
    /// The proxy URL.
    pub proxy_url: String,
    /// The Status API URL.
    pub status_url: String,
    /// The TLS proxy URL (certificates by SNI).
    pub proxy_tls_url: String,
}

impl TwinProcess {
    /// Starts the twin in `lab`, seeded from the lab's file `seed`.
    pub fn start(lab: &Lab, seed: &str) -> Outcome<TwinProcess> {
        let mut child = lab.spawn(&[
            "twin",
            "kong",
            "--listen",
            "127.0.0.1:0",
            "--proxy-listen",
            "127.0.0.1:0",
            "--status-listen",
            "127.0.0.1:0",
            "--proxy-tls-listen",
            "127.0.0.1:0",
            "--seed",
            seed,
            "--control",
            "--output",
            "json",
        ])?;
        let mut first = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut first)?;
        }
        let started: serde_json::Value = match serde_json::from_str(&first) {
            Ok(started) => started,
            Err(e) => {
                let _ = child.kill();
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = err.read_to_string(&mut stderr);
                }
                return Err(format!("twin start-up line {first:?}: {e}; stderr: {stderr}").into());
            }
        };
        let url = |name: &str| started[name].as_str().unwrap_or_default().to_owned();
        Ok(TwinProcess {
            admin_url: url("admin_url"),
            proxy_url: url("proxy_url"),
            status_url: url("status_url"),
            proxy_tls_url: url("proxy_tls_url"),
            child,
        })
    }

    /// The twin's write counter (`/_twin/counters`).
    pub fn writes(&self) -> Outcome<u64> {
        let (status, body) = get(&format!("{}/_twin/counters", self.admin_url))?;
        if status != 200 {
            return Err(format!("counters answered {status}: {body}").into());
        }
        let counters: serde_json::Value = serde_json::from_str(&body)?;
        counters["writes"]
            .as_u64()
            .ok_or_else(|| format!("no writes in {body}").into())
    }
}

impl Drop for TwinProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `runsheet twin node` upstream started in the background (`setsid`), as a playbook's
/// host commands would start it; stopped by its PID file when dropped.
pub struct NodeProcess {
    /// Where it listens (`127.0.0.1:PORT`).
    pub address: String,
    /// Its state directory (version, PID file).
    pub dir: PathBuf,
}

impl NodeProcess {
    /// The shell command that starts a node at `address` with state in `dir`, logging to `log`.
    pub fn start_command(address: &str, dir: &Path, log: &Path) -> String {
        format!(
            "setsid {} twin node --listen {address} --version 3.9.0 --state-dir {} >> {} 2>&1 < /dev/null &",
            env!("CARGO_BIN_EXE_runsheet"),
            dir.display(),
            log.display()
        )
    }

    /// The shell command that stops the node in `dir` and waits until it is gone.
    pub fn stop_command(dir: &Path) -> String {
        format!(
            "kill -TERM $(cat {dir}/node.pid); while [ -e {dir}/node.pid ]; do sleep 0.02; done",
            dir = dir.display()
        )
    }

    /// Starts node `name` under the lab and waits until it answers.
    pub fn start(lab: &Lab, name: &str) -> Outcome<NodeProcess> {
        let address = format!("127.0.0.1:{}", free_port()?);
        let dir = lab.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let log = lab.path().join(format!("{name}.log"));
        let started = std::process::Command::new("sh")
            .args(["-c", &Self::start_command(&address, &dir, &log)])
            .status()?;
        if !started.success() {
            return Err(format!("node {name} did not start").into());
        }
        wait_for(&format!("http://{address}/status/ready"))?;
        Ok(NodeProcess { address, dir })
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.dir.join("node.pid")).unwrap_or_default();
        if !pid.trim().is_empty() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", pid.trim()])
                .status();
        }
    }
}
