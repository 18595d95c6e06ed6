//! The Layer7 node playbooks in the fault matrix: layer7-restart and layer7-patch-upgrade
//! over three `runsheet twin layer7 --state-dir` node processes started by
//! playbooks/lab/layer7-nodes.yaml, behind a standalone Kong twin whose upstream `layer7`
//! balances them (the lab of tests/run/layer7_nodes.rs, this build's binary in place of
//! target/release/runsheet). The nodes' host commands go through the matrix's fault
//! wrapper; the Kong twin's `/_twin/faults` fails its writes (the drains and readmits).
//! Restored = every node's status and patches, and the upstream's weights, equal to the
//! checkpoint's: a node whose iteration passed its checkpoint as after a run without
//! faults, the others as before.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::lab::HOST_FAULT;
use super::layer7::{Kind, Row, Trial};
use crate::kong_lab::{EMBEDDED_KONG, ROOT, without_kong_nodes};
use crate::lab::{Lab, Run};
use crate::traffic::{
    Outcome, TwinProcess, delete, node_ports, post, request, stop_by_pid_files, with_ports,
};

/// The lab's node ports in `environments/lab.yaml`, replaced by free ones.
const LAB_PORTS: [u16; 3] = [18441, 18442, 18443];

/// Basic credentials of the node twins' administrator.
const ADMIN: (&str, &str) = ("authorization", "Basic YWRtaW46cGFzc3dvcmQ=");

/// A Layer7 node playbook of the matrix.
struct NodePlaybook {
    /// Its file under playbooks/.
    file: &'static str,
    /// The `--set`s of a run.
    sets: &'static [&'static str],
    /// The checkpoint step that ends each node's iteration, by id.
    checkpoint: &'static str,
}

/// The Layer7 node playbooks.
const NODE_PLAYBOOKS: &[NodePlaybook] = &[
    NodePlaybook {
        file: "layer7-restart.yaml",
        sets: &["boot_timeout=20s"],
        checkpoint: "restarted",
    },
    NodePlaybook {
        file: "layer7-patch-upgrade.yaml",
        sets: &["patch_id=CR03", "from_version=11.1.2", "boot_timeout=20s"],
        checkpoint: "patched",
    },
];

/// The node processes of a lab, stopped by their PID files when dropped.
struct Nodes {
    /// Each node's state directory.
    dirs: Vec<PathBuf>,
    /// Each node's URL.
    urls: Vec<String>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        stop_by_pid_files(self.dirs.iter().map(|dir| dir.join("layer7.pid")));
    }
}

/// One trial's lab: the nodes (dropped first), the Kong twin, the directory.
struct NodeLab {
    /// The node processes.
    nodes: Nodes,
    /// The Kong twin balancing them.
    kong: TwinProcess,
    /// The directory.
    lab: Lab,
}

/// A node as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    /// `running`, `stopped`, `starting`, or `down` when it does not answer.
    status: String,
    /// Its patch ids.
    patches: Vec<String>,
}

/// The lab's state: the nodes (l7n1 first) and the upstream's weights.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    /// Each node.
    nodes: Vec<Node>,
    /// Upstream `layer7`'s targets and weights, sorted.
    weights: Vec<(String, u64)>,
}

impl NodeLab {
    /// A fresh lab with its nodes started (a node port taken meanwhile: a new lab, at most
    /// three times).
    fn started() -> Outcome<NodeLab> {
        for _ in 0..3 {
            let lab = NodeLab::new()?;
            let run = lab.runsheet("run", "playbooks/lab/layer7-nodes.yaml", &[])?;
            if run.code != Some(0) && run.stdout.contains("Address already in use") {
                continue;
            }
            if run.code != Some(0) {
                return Err(format!("the lab's nodes did not start: {}", run.all()).into());
            }
            return Ok(lab);
        }
        Err("three labs in a row found a node port taken".into())
    }

    /// The lab, its host commands wrapped, its nodes not started.
    fn new() -> Outcome<NodeLab> {
        let lab = Lab::new()?;
        std::fs::create_dir_all(lab.path().join("environments"))?;
        for file in [
            "lab-layer7.xml",
            "lab-layer7-uat.xml",
            "lab-layer7-node.sh",
            "lab-node-lib.sh",
        ] {
            std::fs::copy(
                Path::new(ROOT).join("environments").join(file),
                lab.path().join("environments").join(file),
            )?;
        }
        lab.write("environments/host-fault.sh", HOST_FAULT)?;
        let ports = node_ports()?;
        let with_ports = |text: String| with_ports(text, &LAB_PORTS, &ports);
        let seed = std::fs::read_to_string(Path::new(ROOT).join("environments/lab-seed.yaml"))?;
        lab.write("environments/lab-seed.yaml", &with_ports(seed))?;
        let kong = TwinProcess::start(&lab, "environments/lab-seed.yaml")?;
        let environment = std::fs::read_to_string(Path::new(ROOT).join("environments/lab.yaml"))?;
        if !environment.contains(EMBEDDED_KONG) || !environment.contains("target/release/runsheet")
        {
            return Err("environments/lab.yaml changed: update this test's edits".into());
        }
        let environment = without_kong_nodes(&with_ports(environment))
            .replace(
                EMBEDDED_KONG,
                &format!(
                    "kong: {{type: kong, request_timeout: {}, admin_url: \"{}\", proxy_url: \"{}\"}}",
                    super::layer7::REQUEST_TIMEOUT, kong.admin_url, kong.proxy_url
                ),
            )
            .replace("target/release/runsheet", env!("CARGO_BIN_EXE_runsheet"))
            .replace(
                "sh environments/lab-layer7-node.sh",
                "sh environments/host-fault.sh environments/lab-layer7-node.sh",
            );
        lab.write("environments/lab.yaml", &environment)?;
        let nodes = Nodes {
            dirs: (1..=3)
                .map(|n| lab.path().join(format!(".lab/layer7/l7n{n}")))
                .collect(),
            urls: ports
                .iter()
                .map(|port| format!("http://127.0.0.1:{port}"))
                .collect(),
        };
        Ok(NodeLab { nodes, kong, lab })
    }

    /// `runsheet VERB ROOT/PLAYBOOK --env environments/lab.yaml --set ...`.
    fn runsheet(&self, verb: &str, playbook: &str, sets: &[&str]) -> std::io::Result<Run> {
        let path = format!("{ROOT}/{playbook}");
        let mut args = vec![verb, path.as_str(), "--env", "environments/lab.yaml"];
        for set in sets {
            args.extend(["--set", set]);
        }
        self.lab.run(&args)
    }

    /// Makes host command `n` from now fail (0: none), and starts counting again.
    fn host_fault(&self, n: usize) -> Outcome<()> {
        let dir = self.lab.path().join(".lab/faults");
        std::fs::create_dir_all(&dir)?;
        let _ = std::fs::remove_file(dir.join("count"));
        let _ = std::fs::remove_file(dir.join("log"));
        std::fs::write(
            dir.join("fail_at"),
            if n == 0 { String::new() } else { n.to_string() },
        )?;
        Ok(())
    }

    /// Host commands run since the last [`NodeLab::host_fault`].
    fn host_commands(&self) -> usize {
        std::fs::read_to_string(self.lab.path().join(".lab/faults/count"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Host command `n` as the wrapper logged it (`stop .lab/layer7/l7n2`).
    fn command(&self, n: usize) -> String {
        std::fs::read_to_string(self.lab.path().join(".lab/faults/log"))
            .unwrap_or_default()
            .lines()
            .find_map(|line| {
                let (number, command) = line.split_once(' ')?;
                (number == n.to_string())
                    .then(|| command.replace("environments/lab-layer7-node.sh ", ""))
            })
            .unwrap_or_default()
    }

    /// Clears the Kong twin's faults and zeroes its counters.
    fn clear_kong(&self) -> Outcome<()> {
        delete(&format!("{}/_twin/faults", self.kong.admin_url))?;
        let (status, body) = post(&format!("{}/_twin/reset", self.kong.admin_url), "{}")?;
        if status != 200 {
            return Err(format!("/_twin/reset answered {status}: {body}").into());
        }
        Ok(())
    }

    /// The lab's state now.
    fn state(&self) -> Outcome<State> {
        let nodes = self
            .nodes
            .urls
            .iter()
            .map(|url| {
                let node = request(&format!("{url}/_twin/node"), &[ADMIN])
                    .ok()
                    .filter(|(status, _)| *status == 200)
                    .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok());
                match node {
                    Some(node) => {
                        let mut patches: Vec<String> = node["patches"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|patch| patch["patchId"].as_str().map(str::to_owned))
                            .collect();
                        patches.sort();
                        Node {
                            status: node["status"].as_str().unwrap_or("?").to_owned(),
                            patches,
                        }
                    }
                    None => Node {
                        status: "down".to_owned(),
                        patches: Vec::new(),
                    },
                }
            })
            .collect();
        // The nodes' ports differ from lab to lab: their addresses become their names.
        let mut weights: Vec<(String, u64)> = self
            .kong
            .weights("layer7")?
            .into_iter()
            .map(|(target, weight)| {
                let name = self
                    .nodes
                    .urls
                    .iter()
                    .position(|url| url.ends_with(&target))
                    .map_or(target, |n| format!("l7n{}", n + 1));
                (name, weight)
            })
            .collect();
        weights.sort();
        Ok(State { nodes, weights })
    }
}

/// The nodes whose iteration reached `checkpoint` in `run`'s output (`ok  X[l7nN]....checkpoint`).
fn passed(run: &Run, checkpoint: &str) -> BTreeSet<usize> {
    run.stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().skip_while(|word| *word != "ok");
            words.next()?;
            let step = words.next()?;
            if !step.ends_with(&format!(".{checkpoint}")) {
                return None;
            }
            let host = step.split("[l7n").nth(1)?.split(']').next()?;
            host.parse::<usize>().ok()?.checked_sub(1)
        })
        .collect()
}

/// A run without faults: its Kong writes, host commands, and states before and after.
struct Baseline {
    /// Kong twin writes.
    kong_writes: usize,
    /// Host commands.
    host_commands: usize,
    /// The state before.
    before: State,
    /// The state after.
    after: State,
}

/// The baseline of `playbook`.
fn baseline(playbook: &NodePlaybook) -> Outcome<Baseline> {
    let lab = NodeLab::started()?;
    let before = lab.state()?;
    lab.clear_kong()?;
    lab.host_fault(0)?;
    let path = format!("playbooks/{}", playbook.file);
    let run = lab.runsheet("run", &path, playbook.sets)?;
    if run.code != Some(0) {
        return Err(format!(
            "{}: the run without faults failed: {}",
            playbook.file,
            run.all()
        )
        .into());
    }
    Ok(Baseline {
        kong_writes: usize::try_from(lab.kong.writes()?)?,
        host_commands: lab.host_commands(),
        before,
        after: lab.state()?,
    })
}

/// One trial: a fresh lab, fault `kind` at its `n`th Kong write or host command.
fn trial(playbook: &NodePlaybook, base: &Baseline, kind: Kind, n: usize) -> Outcome<Trial> {
    let lab = NodeLab::started()?;
    let before = lab.state()?;
    if before != base.before {
        return Err(format!("{}: a fresh lab differs: {before:?}", playbook.file).into());
    }
    lab.clear_kong()?;
    lab.host_fault(0)?;
    match kind.twin_fault(n) {
        Some(fault) => lab.kong.fault(&fault.to_string())?,
        None => lab.host_fault(n)?,
    }
    let path = format!("playbooks/{}", playbook.file);
    let run = lab.runsheet("run", &path, playbook.sets)?;
    kind.settle();
    lab.clear_kong()?;
    let state = lab.state()?;
    let done = passed(&run, playbook.checkpoint);
    let expected = State {
        nodes: (0..base.before.nodes.len())
            .map(|n| {
                if done.contains(&n) {
                    base.after.nodes[n].clone()
                } else {
                    base.before.nodes[n].clone()
                }
            })
            .collect(),
        weights: base.before.weights.clone(),
    };
    let mut trial = Trial::judge(kind, &run, state == expected, Some(state == base.after));
    if let Err(why) = &mut trial.verdict {
        why.push_str(&format!(": expected {expected:?}, found {state:?}"));
    }
    if kind == Kind::HostCommand {
        trial.step = format!("{} ({})", trial.step, lab.command(n));
    }
    Ok(trial)
}

/// The rows of the Layer7 node playbooks; `below(k)` draws a number in 0..k.
pub fn rows(below: &mut dyn FnMut(usize) -> usize) -> Outcome<Vec<Row>> {
    let mut rows = Vec::new();
    for playbook in NODE_PLAYBOOKS
        .iter()
        .filter(|p| super::layer7::selected(p.file))
    {
        let base = baseline(playbook)?;
        let every: Vec<(Kind, usize)> = [
            Kind::Status503,
            Kind::Dropped,
            Kind::LostAnswer,
            Kind::HostCommand,
            Kind::UndoFails,
            Kind::Late,
        ]
        .iter()
        .flat_map(|&kind| {
            let count = if kind == Kind::HostCommand {
                base.host_commands
            } else {
                base.kong_writes
            };
            (1..=count).map(move |n| (kind, n))
        })
        .collect();
        let writes = format!(
            "{} load-balancer writes, {} host commands",
            base.kong_writes, base.host_commands
        );
        rows.extend(Row::sample(
            playbook.file,
            &writes,
            &every,
            below,
            |kind, n| trial(playbook, &base, kind, n),
        )?);
    }
    Ok(rows)
}
