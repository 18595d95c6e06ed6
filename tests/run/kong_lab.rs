//! The repository's lab (`environments/` and `playbooks/`) copied into a temporary
//! directory, its Kong data-plane node ports (127.0.0.1:18001-18003) replaced by free ones
//! so that tests run side by side: the lab's own host vars, scripts and seed are what runs.
//! The nodes are started by runsheet itself (the hosts' `twin: {node: ...}`) at the first
//! command; [`KongLab`] stops them by their PID files when dropped, also when a test failed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lab::{Lab, Run};
use crate::traffic::{Outcome, TwinProcess, get};

/// The repository's root.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The lab's Kong node ports in `environments/lab.yaml` and `lab-seed.yaml`.
pub const LAB_PORTS: [u16; 3] = [18001, 18002, 18003];

/// The embedded Kong twin of `environments/lab.yaml`, as written there.
pub const EMBEDDED_KONG: &str = "kong: {type: kong, twin: {seed: lab-seed.yaml, control: true}}";

/// A copy of the repository's lab with free node ports.
pub struct KongLab {
    /// The guard that stops the nodes; dropped first.
    pub nodes: LabNodes,
    /// A standalone Kong twin standing in for the embedded one, when asked for.
    pub kong: Option<TwinProcess>,
    /// The directory (holds environments/, playbooks/ and the nodes' .lab/).
    pub lab: Lab,
}

/// The lab's node processes, stopped by their PID files when dropped.
pub struct LabNodes {
    /// Each node's state directory.
    pub dirs: Vec<PathBuf>,
    /// Each node's address (`127.0.0.1:PORT`).
    pub addresses: Vec<String>,
}

impl Drop for LabNodes {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let Ok(pid) = std::fs::read_to_string(dir.join("node.pid")) else {
                continue;
            };
            let pid = pid.trim().to_owned();
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && alive(&pid) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Whether process `pid` runs (not a zombie).
pub fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
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

/// The environment's text without the hosts' `twin: {node: ...}` lines: a test that does
/// not use the Kong data-plane nodes keeps runsheet from starting them.
pub fn without_kong_nodes(environment: &str) -> String {
    environment
        .lines()
        .filter(|line| !line.trim_start().starts_with("twin: {node:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Copies directory `from` into `to`, recursively.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

impl KongLab {
    /// The lab with the embedded Kong twin of `environments/lab.yaml`; `edit` changes the
    /// environment's text and `seed` the Kong seed's (after the ports are replaced).
    pub fn embedded(
        edit: impl Fn(String) -> String,
        seed: impl Fn(String) -> String,
    ) -> Outcome<KongLab> {
        KongLab::build(false, edit, seed)
    }

    /// The lab with a standalone Kong twin (`runsheet twin kong`, its control endpoint on)
    /// seeded from the lab's seed in place of the embedded one, so that a test reads its
    /// targets and counters.
    pub fn standalone(
        edit: impl Fn(String) -> String,
        seed: impl Fn(String) -> String,
    ) -> Outcome<KongLab> {
        KongLab::build(true, edit, seed)
    }

    fn build(
        standalone: bool,
        edit: impl Fn(String) -> String,
        seed: impl Fn(String) -> String,
    ) -> Outcome<KongLab> {
        let lab = Lab::new()?;
        copy_tree(
            &Path::new(ROOT).join("environments"),
            &lab.path().join("environments"),
        )?;
        copy_tree(
            &Path::new(ROOT).join("playbooks"),
            &lab.path().join("playbooks"),
        )?;
        let ports = node_ports()?;
        let with_ports = |text: String| {
            LAB_PORTS
                .iter()
                .zip(ports)
                .fold(text, |text, (lab_port, port)| {
                    text.replace(
                        &format!("127.0.0.1:{lab_port}"),
                        &format!("127.0.0.1:{port}"),
                    )
                })
        };
        let seed_text = std::fs::read_to_string(lab.path().join("environments/lab-seed.yaml"))?;
        lab.write("environments/lab-seed.yaml", &seed(with_ports(seed_text)))?;
        let over_ssh = std::fs::read_to_string(lab.path().join("environments/lab-ssh.yaml"))?;
        lab.write("environments/lab-ssh.yaml", &with_ports(over_ssh))?;
        let environment = std::fs::read_to_string(lab.path().join("environments/lab.yaml"))?;
        if !environment.contains(EMBEDDED_KONG) {
            return Err("environments/lab.yaml changed: update tests/run/kong_lab.rs".into());
        }
        let mut environment = with_ports(environment);
        let kong = if standalone {
            let kong = TwinProcess::start(&lab, "environments/lab-seed.yaml")?;
            environment = environment.replace(
                EMBEDDED_KONG,
                &format!(
                    "kong: {{type: kong, admin_url: \"{}\", proxy_url: \"{}\", status_url: \"{}\", proxy_tls_url: \"{}\"}}",
                    kong.admin_url, kong.proxy_url, kong.status_url, kong.proxy_tls_url
                ),
            );
            Some(kong)
        } else {
            None
        };
        lab.write("environments/lab.yaml", &edit(environment))?;
        let nodes = LabNodes {
            dirs: (1..=3)
                .map(|n| lab.path().join(format!(".lab/kong/dp{n}")))
                .collect(),
            addresses: ports
                .iter()
                .map(|port| format!("127.0.0.1:{port}"))
                .collect(),
        };
        Ok(KongLab { nodes, kong, lab })
    }

    /// `runsheet ARGS...` in the lab.
    pub fn runsheet(&self, args: &[&str]) -> std::io::Result<Run> {
        self.lab.run(args)
    }

    /// Runs `playbook` (a path under the lab) on the lab's environment with `sets`, fast
    /// retries for node readiness.
    pub fn run(&self, verb: &str, playbook: &str, sets: &[&str]) -> std::io::Result<Run> {
        let mut args = vec![verb, playbook, "--env", "environments/lab.yaml"];
        for set in sets {
            args.extend(["--set", set]);
        }
        self.runsheet(&args)
    }

    /// Node `n`'s (0-based) version file.
    pub fn installed(&self, n: usize) -> String {
        std::fs::read_to_string(self.nodes.dirs[n].join("version"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// The version node `n` reports on `GET /`.
    pub fn reported(&self, n: usize) -> Outcome<String> {
        let (status, body) = get(&format!("http://{}/", self.nodes.addresses[n]))?;
        if status != 200 {
            return Err(format!("node {n}: GET / answered {status}: {body}").into());
        }
        let root: Value = serde_json::from_str(&body)?;
        Ok(root["version"].as_str().unwrap_or_default().to_owned())
    }

    /// Node `n`'s PID while it runs.
    pub fn pid(&self, n: usize) -> Option<String> {
        let pid = std::fs::read_to_string(self.nodes.dirs[n].join("node.pid")).ok()?;
        let pid = pid.trim().to_owned();
        alive(&pid).then_some(pid)
    }

    /// The standalone twin (an error for an embedded lab).
    pub fn twin(&self) -> Outcome<&TwinProcess> {
        self.kong
            .as_ref()
            .ok_or_else(|| "this lab's Kong twin is embedded".into())
    }

    /// Every target of upstream `core` on the standalone twin with its weight, by address.
    pub fn weights(&self) -> Outcome<Vec<(String, u64)>> {
        let twin = self.twin()?;
        let (status, body) = get(&format!("{}/upstreams/core/targets", twin.admin_url))?;
        if status != 200 {
            return Err(format!("targets answered {status}: {body}").into());
        }
        let targets: Value = serde_json::from_str(&body)?;
        let mut weights: Vec<(String, u64)> = targets["data"]
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

    /// Every node's address with weight 100, as the lab's seed has them.
    pub fn full_weights(&self) -> Vec<(String, u64)> {
        let mut weights: Vec<(String, u64)> = self
            .nodes
            .addresses
            .iter()
            .map(|address| (address.clone(), 100))
            .collect();
        weights.sort();
        weights
    }
}
