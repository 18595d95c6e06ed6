//! The repository's lab (`environments/` and `playbooks/`) copied into a temporary
//! directory, its Kong data-plane node ports (127.0.0.1:18001-18003) replaced by free ones
//! so that tests run side by side: the lab's own host vars, scripts and seed are what runs.
//! The nodes are started by runsheet itself (the hosts' `twin: {node: ...}`) at the first
//! command; [`ShippedLab`] stops them by their PID files when dropped, also when a test failed.

use std::path::{Path, PathBuf};

use crate::lab::{Lab, Run, TestResult};
use crate::traffic::{
    Outcome, TwinProcess, node_ports, reported_version, running_pid, stop_by_pid_files, with_ports,
};

/// The repository's root.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The lab's Kong node ports in `environments/lab.yaml` and `lab-seed.yaml`.
pub const LAB_PORTS: [u16; 3] = [18001, 18002, 18003];

/// The embedded Kong twin of `environments/lab.yaml`, as written there.
pub const EMBEDDED_KONG: &str = "kong: {type: kong, twin: {seed: lab-seed.yaml, control: true}}";

/// A copy of the repository's lab with free node ports.
pub struct ShippedLab {
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
        stop_by_pid_files(self.dirs.iter().map(|dir| dir.join("node.pid")));
    }
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

impl ShippedLab {
    /// The lab with the embedded Kong twin of `environments/lab.yaml`; `edit` changes the
    /// environment's text and `seed` the Kong seed's (after the ports are replaced).
    pub fn embedded(
        edit: impl Fn(String) -> String,
        seed: impl Fn(String) -> String,
    ) -> Outcome<ShippedLab> {
        ShippedLab::build(false, edit, seed)
    }

    /// The lab with a standalone Kong twin (`runsheet twin kong`, its control endpoint on)
    /// seeded from the lab's seed in place of the embedded one, so that a test reads its
    /// targets and counters.
    pub fn standalone(
        edit: impl Fn(String) -> String,
        seed: impl Fn(String) -> String,
    ) -> Outcome<ShippedLab> {
        ShippedLab::build(true, edit, seed)
    }

    fn build(
        standalone: bool,
        edit: impl Fn(String) -> String,
        seed: impl Fn(String) -> String,
    ) -> Outcome<ShippedLab> {
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
        let with_ports = |text: String| with_ports(text, &LAB_PORTS, &ports);
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
            environment = environment.replace(EMBEDDED_KONG, &format!("kong: {}", kong.gateway()));
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
        Ok(ShippedLab { nodes, kong, lab })
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
        reported_version(&self.nodes.addresses[n])
    }

    /// Node `n`'s version file and the version it reports.
    pub fn versions(&self, n: usize) -> Outcome<(String, String)> {
        Ok((self.installed(n), self.reported(n)?))
    }

    /// Every node's version file holds `version` and every node reports it.
    pub fn assert_all_on(&self, version: &str) -> TestResult {
        for n in 0..self.nodes.dirs.len() {
            assert_eq!(self.installed(n), version, "node {n}'s version file");
            assert_eq!(self.reported(n)?, version, "node {n} reports the version");
        }
        Ok(())
    }

    /// Node `n`'s PID while it runs.
    pub fn pid(&self, n: usize) -> Option<String> {
        running_pid(&self.nodes.dirs[n].join("node.pid"))
    }

    /// Every node's PID while it runs, by node.
    pub fn pids(&self) -> Vec<Option<String>> {
        (0..self.nodes.dirs.len()).map(|n| self.pid(n)).collect()
    }

    /// The standalone twin (an error for an embedded lab).
    pub fn twin(&self) -> Outcome<&TwinProcess> {
        self.kong
            .as_ref()
            .ok_or_else(|| "this lab's Kong twin is embedded".into())
    }

    /// Every target of upstream `core` on the standalone twin with its weight, by address.
    pub fn weights(&self) -> Outcome<Vec<(String, u64)>> {
        self.twin()?.weights("core")
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
