//! The shipped Kong data-plane playbooks end to end: the release binary runs
//! `playbooks/kong-rolling-upgrade.yaml`, `kong-restart.yaml` and
//! `gateway-diagnostics.yaml` on a copy of the lab (the embedded Kong twin, data-plane
//! nodes that are real `runsheet twin node` processes on free loopback ports, driven
//! through `environments/lab-kong-node.sh`), and the wall time of each run is printed.
//!
//! Cases: a rolling upgrade of 3 nodes one at a time (the lab's; median of 3 runs, each to
//! a new version); the same command again with every node already there (nothing to do);
//! a rolling restart of the 3 nodes; the read-only diagnostics; and a rolling upgrade of
//! 24 nodes in batches of 6 (the lab's shape at estate size). Every upgrade drains, checks
//! traffic through the proxy, stops, installs, starts, waits until ready, checks the
//! version, readmits and waits until the target is healthy, per node.
//!
//! Run: `cargo bench --bench kong_playbook`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs of the small upgrade (the median is reported).
const SMALL_RUNS: usize = 3;

fn main() {
    if let Err(e) = bench() {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

/// Runs every case and prints the figures.
fn bench() -> Result<(), Box<dyn std::error::Error>> {
    println!("shipped Kong playbooks, release binary, lab copy on loopback");
    let small = Estate::new(3)?;
    let mut times = Vec::new();
    for run in 0..SMALL_RUNS {
        let version = format!("3.9.{}", run + 1);
        times.push(small.run(
            "kong-rolling-upgrade.yaml",
            &["--set", &format!("target_version={version}")],
        )?);
    }
    times.sort();
    report(
        "rolling upgrade, 3 nodes, batch 1 (median of 3)",
        times[times.len() / 2],
        3,
    );
    let again = small.run(
        "kong-rolling-upgrade.yaml",
        &["--set", "target_version=3.9.3"],
    )?;
    report("the same upgrade again: nothing to do", again, 3);
    let restart = small.run("kong-restart.yaml", &[])?;
    report("rolling restart, 3 nodes, batch 1", restart, 3);
    let diagnostics = small.run("gateway-diagnostics.yaml", &[])?;
    report("gateway diagnostics (read-only)", diagnostics, 3);
    drop(small);

    let large = Estate::new(24)?;
    let upgrade = large.run(
        "kong-rolling-upgrade.yaml",
        &["--set", "target_version=3.9.1", "--set", "batch_size=6"],
    )?;
    report("rolling upgrade, 24 nodes, batch 6", upgrade, 24);
    Ok(())
}

/// Prints one figure.
fn report(case: &str, took: Duration, nodes: usize) {
    println!(
        "  {case:<52} {:>8.2} s  ({:.0} ms per node)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / nodes as f64
    );
}

/// A copy of the lab with `nodes` data-plane nodes on free ports; the nodes stop when it
/// is dropped.
struct Estate {
    /// The copy (environments/, playbooks/, the nodes' .lab/).
    dir: tempfile::TempDir,
    /// The nodes' state directories.
    nodes: Vec<PathBuf>,
}

impl Estate {
    /// Copies the lab and writes `bench.yaml` (the environment) and `bench-seed.yaml`
    /// (upstream `core` with one target per node, the open `orders` route).
    fn new(nodes: usize) -> Result<Estate, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for sub in ["environments", "playbooks"] {
            copy_tree(&root.join(sub), &dir.path().join(sub))?;
        }
        let ports = (0..nodes)
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let mut hosts = String::new();
        let mut targets = String::new();
        for (n, port) in ports.iter().enumerate() {
            let (name, state) = (format!("dp{}", n + 1), format!(".lab/kong/dp{}", n + 1));
            let address = format!("127.0.0.1:{port}");
            let script = "sh environments/lab-kong-node.sh";
            hosts.push_str(&format!(
                "  {name}:
    transport: local
    groups: [dataplane]
    twin: {{node: {{listen: \"{address}\", version: 3.9.0, state_dir: {state}}}}}
    vars:
      target: \"{address}\"
      status_url: \"http://{address}\"
      node_url: \"http://{address}\"
      cwd: .
      service_manager: command
      start_command: {script} start {state} {address} 3.9.0
      stop_command: {script} stop {state}
      status_command: {script} status {state}
      package_manager: command
      install_command: {script} install {state}
"
            ));
            targets.push_str(&format!("      - {{target: '{address}', weight: 100}}\n"));
        }
        std::fs::write(
            dir.path().join("environments/bench-seed.yaml"),
            format!(
                "_format_version: '3.0'
upstreams:
  - name: core
    targets:
{targets}services:
  - name: orders
    host: core
    routes:
      - {{name: orders, paths: [/orders]}}
"
            ),
        )?;
        std::fs::write(
            dir.path().join("environments/bench.yaml"),
            format!(
                "runsheet: 1
name: bench
# runsheet's own time: no drain wait (the playbooks' `drain_wait`, 10s in production).
vars: {{kong_drain_wait: 0s}}
gateways:
  kong: {{type: kong, twin: {{seed: bench-seed.yaml, control: true}}}}
hosts:
{hosts}"
            ),
        )?;
        let nodes = (1..=nodes)
            .map(|n| dir.path().join(format!(".lab/kong/dp{n}")))
            .collect();
        Ok(Estate { dir, nodes })
    }

    /// Runs `playbooks/PLAYBOOK` on the estate; its wall time. A run that does not exit 0
    /// fails the bench with its output.
    fn run(&self, playbook: &str, extra: &[&str]) -> Result<Duration, Box<dyn std::error::Error>> {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_runsheet"))
            .current_dir(self.dir.path())
            .args([
                "run",
                &format!("playbooks/{playbook}"),
                "--env",
                "environments/bench.yaml",
            ])
            .args(extra)
            .output()?;
        let took = started.elapsed();
        if !output.status.success() {
            return Err(format!(
                "{playbook} exited {:?}:\n{}\n{}",
                output.status.code(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(took)
    }
}

impl Drop for Estate {
    fn drop(&mut self) {
        for dir in &self.nodes {
            if let Ok(pid) = std::fs::read_to_string(dir.join("node.pid")) {
                let pid = pid.trim();
                let _ = Command::new("kill").args(["-TERM", pid]).status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && Path::new(&format!("/proc/{pid}")).exists() {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// A free loopback port.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Copies directory `from` to `to`, recursively.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(&path, to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
