//! The Layer7 node playbooks as crash subjects: `layer7-restart` and
//! `layer7-patch-upgrade` on three `runsheet twin layer7 --state-dir` node processes
//! behind a standalone Kong twin (`crate::layer7_nodes::NodeLab`, the lab's own
//! environment with free ports). The state compared: each node's PID file, version and
//! patches (boot times differ from lab to lab and are not), the Kong upstream `layer7`'s
//! targets and weights, by node.

use std::collections::BTreeMap;

use super::subjects::{Target, counted_writes};
use crate::kong_lab::ROOT;
use crate::lab::Lab;
use crate::layer7_nodes::NodeLab;
use crate::traffic::{Outcome, get, post, request};

/// Basic credentials of the nodes' default administrator.
const ADMIN: (&str, &str) = ("authorization", "Basic YWRtaW46cGFzc3dvcmQ=");

/// A Layer7 node playbook in a lab of its own, its nodes started.
pub struct Layer7Nodes {
    /// The lab.
    lab: NodeLab,
    /// The `--set`s of the run.
    sets: &'static [&'static str],
    /// The playbook's name.
    playbook: &'static str,
}

impl Layer7Nodes {
    /// A fresh lab for `playbook` run with `sets`, its nodes started (the start-up run's
    /// record removed, so the lab's only run is the subject's).
    pub fn start(playbook: &'static str, sets: &'static [&'static str]) -> Outcome<Self> {
        let lab = NodeLab::started(|text| text)?;
        let start = lab
            .lab
            .only_run()
            .ok_or("the nodes' start-up left no run")?;
        std::fs::remove_dir_all(lab.lab.path().join(".runsheet/runs").join(start))?;
        Ok(Self {
            lab,
            sets,
            playbook,
        })
    }

    /// Node `n`'s PID file, version and patches as its twin control shows them.
    fn node(&self, n: usize) -> String {
        let running = self.lab.nodes.dirs[n].join("layer7.pid").exists();
        let url = format!("{}/_twin/node", self.lab.nodes.urls[n]);
        let shown = match request(&url, &[ADMIN]) {
            Ok((200, body)) => match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(node) => format!(
                    "version {}, patches {}",
                    node["productVersion"]["formalString"],
                    node["patches"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|patch| patch["patchId"].to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                Err(e) => format!("(node info: {e})"),
            },
            Ok((status, _)) => format!("(node info answered {status})"),
            Err(_) => "(not answering)".to_owned(),
        };
        format!("l7n{}: pid file {running}, {shown}", n + 1)
    }
}

impl Target for Layer7Nodes {
    fn lab(&self) -> &Lab {
        &self.lab.lab
    }

    fn run_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            &format!("{ROOT}/playbooks/{}.yaml", self.playbook),
            "--env",
            "environments/lab.yaml",
            "--no-progress",
            "--set",
            "boot_timeout=20s",
        ]
        .map(str::to_owned)
        .to_vec();
        for set in self.sets {
            args.extend(["--set".to_owned(), (*set).to_owned()]);
        }
        args
    }

    fn state(&self) -> Outcome<String> {
        let mut lines: Vec<String> = (0..self.lab.nodes.urls.len())
            .map(|n| self.node(n))
            .collect();
        for (address, weight) in self.lab.kong.weights("layer7")? {
            let node = self
                .lab
                .nodes
                .urls
                .iter()
                .position(|url| url.ends_with(&address))
                .map_or(address.clone(), |n| format!("l7n{}", n + 1));
            lines.push(format!("target {node} weight {weight}"));
        }
        lines.sort();
        Ok(lines.join("\n"))
    }

    fn writes(&self) -> Outcome<BTreeMap<String, u64>> {
        let (status, body) = get(&format!("{}/_twin/counters", self.lab.kong.admin_url))?;
        if status != 200 {
            return Err(format!("counters: {status} {body}").into());
        }
        // A target's id derives from its address, which differs from lab to lab: the
        // requests name the node instead.
        let (status, page) = get(&format!(
            "{}/upstreams/layer7/targets",
            self.lab.kong.admin_url
        ))?;
        if status != 200 {
            return Err(format!("targets: {status} {page}").into());
        }
        let page: serde_json::Value = serde_json::from_str(&page)?;
        let mut names = Vec::new();
        for target in page["data"].as_array().into_iter().flatten() {
            let (Some(id), Some(address)) = (target["id"].as_str(), target["target"].as_str())
            else {
                continue;
            };
            if let Some(n) = self
                .lab
                .nodes
                .urls
                .iter()
                .position(|url| url.ends_with(address))
            {
                names.push((id.to_owned(), format!("l7n{}", n + 1)));
            }
        }
        Ok(counted_writes(&serde_json::from_str(&body)?)
            .into_iter()
            .map(|(key, count)| {
                let key = names
                    .iter()
                    .fold(key, |key, (id, name)| key.replace(id.as_str(), name));
                (key, count)
            })
            .collect())
    }

    fn reset_counters(&self) -> Outcome<()> {
        let (status, body) = post(&format!("{}/_twin/reset", self.lab.kong.admin_url), "{}")?;
        if !(200..300).contains(&status) {
            return Err(format!("reset: {status} {body}").into());
        }
        Ok(())
    }
}
