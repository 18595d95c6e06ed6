//! Customer traffic for the end-to-end tests: plain HTTP requests over loopback, a load
//! generator that sends authenticated requests through a twin's proxy while a playbook
//! runs and tallies every answer, and the processes that carry it (a standalone
//! `runsheet twin kong`, `runsheet twin node` upstreams).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::{KvServer, Lab};

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

/// `DELETE url`: status and body.
pub fn delete(url: &str) -> std::io::Result<(u16, String)> {
    send("DELETE", url, &[], None)
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

/// The customers' total: none failed, and more than `more_than` were answered.
pub fn assert_none_failed(tallies: &[Tally], more_than: u64) -> Tally {
    let total = Tally::sum(tallies);
    assert_eq!(total.failed(), 0, "failed requests: {:?}", total.failures);
    assert!(total.ok > more_than, "too little traffic: {total:?}");
    total
}

/// Which key a client sends next, by client number: `None` stops that client.
pub type KeyChoice = dyn Fn(usize) -> Option<String> + Send + Sync;

/// The key choice of clients switching keys during a rotation: until `store` holds a key
/// under `name`, every client sends `old`; once it does, clients below `switchers` send
/// that new key from `after(client)` past the moment it was first seen, the others keep
/// `old` throughout.
pub fn switching_keys(
    store: Arc<KvServer>,
    name: &str,
    old: &str,
    switchers: usize,
    after: impl Fn(usize) -> Duration + Send + Sync + 'static,
) -> Arc<KeyChoice> {
    let published: Mutex<Option<(Instant, String)>> = Mutex::default();
    let (name, old) = (name.to_owned(), old.to_owned());
    Arc::new(move |client: usize| -> Option<String> {
        let mut published = published.lock().ok()?;
        if published.is_none()
            && let Some(key) = store.state().values.get(&name)
        {
            *published = Some((Instant::now(), key.clone()));
        }
        match &*published {
            Some((at, key)) if client < switchers && at.elapsed() >= after(client) => {
                Some(key.clone())
            }
            _ => Some(old.clone()),
        }
    })
}

/// What the clients of a rotation under [`switching_keys`] saw (`tallies` by client, the
/// first `switchers` switching): no switching client failed and each sent both `old` and
/// `new`; the clients on `old` had more than `more_than` requests answered and failed,
/// at least once, only from `revoked_at` on. Prints the figures under `label`.
#[track_caller]
pub fn assert_rotation_seen(
    label: &str,
    tallies: &[Tally],
    switchers: usize,
    (old, new): (&str, &str),
    revoked_at: Instant,
    more_than: u64,
) {
    let (switching, laggards) = tallies.split_at(switchers);
    let (switched, stayed) = (Tally::sum(switching), Tally::sum(laggards));
    let before = stayed
        .failed_at
        .iter()
        .filter(|at| **at < revoked_at)
        .count();
    println!(
        "{label}: clients switching to the new key {} requests, {} failed; clients on the old key {} requests, {before} failed before the revoke, {} after",
        switched.sent(),
        switched.failed(),
        stayed.sent(),
        stayed.failed() - before as u64,
    );
    assert_eq!(switched.failed(), 0, "{:?}", switched.failures);
    assert!(
        switching
            .iter()
            .all(|tally| tally.keys.iter().any(|k| k == old) && tally.keys.iter().any(|k| k == new)),
        "every switching client used both keys"
    );
    assert!(
        stayed.failed_at.iter().all(|at| *at >= revoked_at),
        "the old key failed before it was revoked: {:?}",
        stayed.failures
    );
    assert!(stayed.ok > more_than, "{stayed:?}");
    assert!(stayed.failed() > 0, "the old key was never revoked");
}

/// Every target of `weights` at weight 100: back in rotation.
#[track_caller]
pub fn assert_in_rotation(weights: &[(String, u64)]) {
    assert!(
        weights.iter().all(|(_, weight)| *weight == 100),
        "every node in rotation: {weights:?}"
    );
}

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

    /// Starts `clients` clients against `url`, all sending `key` throughout.
    pub fn with_key(url: &str, clients: usize, key: &str) -> Load {
        let key = key.to_owned();
        Load::start(url, clients, Arc::new(move |_| Some(key.clone())))
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

    /// Makes the twin fail, drop or slow down coming requests (`/_twin/faults`).
    pub fn fault(&self, json: &str) -> Outcome<()> {
        let (status, body) = post(&format!("{}/_twin/faults", self.admin_url), json)?;
        if !(200..300).contains(&status) {
            return Err(format!("fault {json} answered {status}: {body}").into());
        }
        Ok(())
    }

    /// An Admin API read: status and JSON body (null when it is not JSON).
    pub fn admin(&self, path: &str) -> Outcome<(u16, serde_json::Value)> {
        let (status, body) = get(&format!("{}{path}", self.admin_url))?;
        Ok((
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// Every target of `upstream` with its weight, sorted by address.
    pub fn weights(&self, upstream: &str) -> Outcome<Vec<(String, u64)>> {
        let (status, page) = self.admin(&format!("/upstreams/{upstream}/targets"))?;
        if status != 200 {
            return Err(format!("targets of {upstream} answered {status}: {page}").into());
        }
        let mut weights: Vec<(String, u64)> = page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|target| {
                (
                    target["target"].as_str().unwrap_or_default().to_owned(),
                    target["weight"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        weights.sort();
        Ok(weights)
    }

    /// `consumer`'s key-auth keys with their ttl, in the Admin API's order.
    pub fn key_auth(&self, consumer: &str) -> Outcome<Vec<(String, Option<u64>)>> {
        let (status, page) = self.admin(&format!("/consumers/{consumer}/key-auth"))?;
        if status != 200 {
            return Err(format!("{consumer}'s keys answered {status}: {page}").into());
        }
        Ok(page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|key| {
                (
                    key["key"].as_str().unwrap_or_default().to_owned(),
                    key["ttl"].as_u64(),
                )
            })
            .collect())
    }

    /// This twin as an environment's gateway (a YAML flow mapping).
    pub fn gateway(&self) -> String {
        format!(
            "{{type: kong, admin_url: '{}', proxy_url: '{}', status_url: '{}', proxy_tls_url: '{}'}}",
            self.admin_url, self.proxy_url, self.status_url, self.proxy_tls_url
        )
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

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<String> {
        running_pid(&self.dir.join("node.pid"))
    }

    /// Whether it answers `/status/ready` with 200.
    pub fn ready(&self) -> bool {
        get(&format!("http://{}/status/ready", self.address)).is_ok_and(|(status, _)| status == 200)
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
        stop_by_pid_files([self.dir.join("node.pid")]);
    }
}

/// The version a Kong node at `address` reports on `GET /`.
pub fn reported_version(address: &str) -> Outcome<String> {
    let (status, body) = get(&format!("http://{address}/"))?;
    if status != 200 {
        return Err(format!("node {address}: GET / answered {status}: {body}").into());
    }
    let root: serde_json::Value = serde_json::from_str(&body)?;
    Ok(root["version"].as_str().unwrap_or_default().to_owned())
}

/// Whether process `pid` runs: it exists and is not a zombie waiting to be reaped (a node
/// started with `setsid` by a command that ended is init's child).
pub fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// The process id in PID file `file`, while that process runs.
pub fn running_pid(file: &Path) -> Option<String> {
    let pid = std::fs::read_to_string(file).ok()?;
    let pid = pid.trim().to_owned();
    alive(&pid).then_some(pid)
}

/// Stops the process of each PID file (SIGTERM) and waits up to 10 s for it to be gone.
pub fn stop_by_pid_files(files: impl IntoIterator<Item = PathBuf>) {
    for file in files {
        let Some(pid) = running_pid(&file) else {
            continue;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && alive(&pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Three distinct loopback ports free now, below the kernel's ephemeral range (32768 and
/// up), where neither outgoing connections nor listeners on port 0 land.
pub fn node_ports() -> Outcome<[u16; 3]> {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos()
        ^ std::process::id().rotate_left(16);
    let mut ports = Vec::new();
    for _ in 0..200 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let port = 20_000 + u16::try_from((seed >> 8) % 12_000)?;
        if !ports.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
        if let Ok(three) = <[u16; 3]>::try_from(ports.as_slice()) {
            return Ok(three);
        }
    }
    Err("no three free loopback ports in 20000-31999".into())
}

/// `text` with every `127.0.0.1:FROM` of `from` replaced by the `to` port at its place.
pub fn with_ports(text: String, from: &[u16], to: &[u16]) -> String {
    from.iter().zip(to).fold(text, |text, (from, to)| {
        text.replace(&format!("127.0.0.1:{from}"), &format!("127.0.0.1:{to}"))
    })
}
