//! One Kong lab for one fault trial: the repository's lab (`ShippedLab`, a standalone
//! Kong twin with its control endpoint, the three data-plane node processes) whose host
//! commands go through a wrapper that fails exactly the nth of them, and the lab's state
//! normalised for comparison.

use serde_json::Value;

use crate::kong_lab::ShippedLab;
use crate::lab::Run;
use crate::traffic::{Outcome, get, post, reported_version};

/// The wrapper every host command of the lab's hosts goes through: it counts the
/// commands in `.lab/faults/count` and fails the one whose number `.lab/faults/fail_at`
/// holds (once), without running it.
pub(super) const HOST_FAULT: &str = r#"#!/bin/sh
# Reliability matrix: the nth host command fails (tests/run/reliability/faults/lab.rs).
dir=.lab/faults
mkdir -p "$dir"
n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$dir/count"
echo "$n $*" >> "$dir/log"
if [ "$(cat "$dir/fail_at" 2>/dev/null)" = "$n" ]; then
    echo "injected host fault: command $n ($*) failed" >&2
    exit 97
fi
exec sh "$@"
"#;

/// The Kong gateway's `request_timeout` in a fault lab: short, so that a write answered
/// past it costs a trial seconds, not the default 30.
pub(super) const REQUEST_TIMEOUT: &str = "2s";

/// The node script as the lab's host vars run it.
const NODE_SCRIPT: &str = "sh environments/lab-kong-node.sh";

/// A Kong node as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// The installed version (its version file).
    pub installed: String,
    /// The version it serves, `None` while it is down.
    pub serving: Option<String>,
}

/// The lab's state, normalised: what a restoration must bring back.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The Kong twin's `/_twin/snapshot` without timestamps.
    pub gateway: Value,
    /// Each data-plane node, dp1 first.
    pub nodes: Vec<NodeState>,
}

/// What differs between two states, in a line.
pub fn difference(expected: &State, actual: &State) -> String {
    let mut parts = Vec::new();
    for (n, (want, got)) in expected.nodes.iter().zip(&actual.nodes).enumerate() {
        if want != got {
            parts.push(format!("dp{}: expected {want:?}, found {got:?}", n + 1));
        }
    }
    if let (Value::Object(want), Value::Object(got)) = (&expected.gateway, &actual.gateway) {
        for (collection, rows) in want {
            if got.get(collection) != Some(rows) {
                parts.push(format!(
                    "gateway {collection}: expected {rows}, found {}",
                    got.get(collection).unwrap_or(&Value::Null)
                ));
            }
        }
    } else if expected.gateway != actual.gateway {
        parts.push("gateway snapshot differs".to_owned());
    }
    parts.join("; ")
}

/// The snapshot without `created_at` and `updated_at` anywhere.
fn normalised(mut value: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("created_at");
                map.remove("updated_at");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}

/// `state` comparable across labs and runs: entity ids (derived from addresses with the
/// lab's ports) and the seed's random oauth2 `provision_key` left out; what a key
/// rotation generates (the new key or certificate, its rotation tag's time, the old key's
/// expiry time) reduced to its shape; rows sorted.
pub fn portable(state: &State) -> State {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("id");
                map.remove("provision_key");
                let tags: Vec<String> = map
                    .get("tags")
                    .and_then(Value::as_array)
                    .map(|tags| tags.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                let rotated = tags
                    .iter()
                    .any(|tag| tag.starts_with("runsheet-rotation:") || tag == "runsheet-retired");
                if tags.iter().any(|tag| tag.starts_with("runsheet-rotation:")) {
                    map.insert("key".to_owned(), Value::from("(generated)"));
                    if map.contains_key("cert") {
                        // Each lab makes its own new certificate.
                        map.insert("cert".to_owned(), Value::from("(new)"));
                    }
                    map.insert("tags".to_owned(), serde_json::json!(["runsheet-rotation:(time)"]));
                }
                if rotated && map.get("ttl").is_some_and(Value::is_number) {
                    // An expiry a rotation set is a time of its own run.
                    map.insert("ttl".to_owned(), Value::from("(set)"));
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => {
                items.iter_mut().for_each(strip);
                items.sort_by_key(Value::to_string);
            }
            _ => {}
        }
    }
    let mut gateway = state.gateway.clone();
    strip(&mut gateway);
    State {
        gateway,
        nodes: state.nodes.clone(),
    }
}

/// A lab for one trial.
pub struct FaultLab {
    /// The repository's lab with a standalone twin.
    pub shipped: ShippedLab,
}

impl FaultLab {
    /// A fresh lab whose host commands go through the fault wrapper.
    pub fn new() -> Outcome<FaultLab> {
        let wrapped = "sh environments/host-fault.sh environments/lab-kong-node.sh";
        let timeout = format!("{{type: kong, request_timeout: {REQUEST_TIMEOUT}, admin_url:");
        let shipped = ShippedLab::standalone(
            |text| {
                text.replace(NODE_SCRIPT, wrapped)
                    .replace("{type: kong, admin_url:", &timeout)
            },
            |text| text,
        )?;
        shipped
            .lab
            .write("environments/host-fault.sh", HOST_FAULT)?;
        let environment = std::fs::read_to_string(shipped.lab.path().join("environments/lab.yaml"))?;
        if !environment.contains("request_timeout") {
            return Err("the standalone twin's gateway entry changed: update faults/lab.rs".into());
        }
        Ok(FaultLab { shipped })
    }

    /// `runsheet VERB playbooks/PLAYBOOK --env environments/lab.yaml --set ...`, the secret
    /// `NEW_CERT_KEY` read from the lab's `new-key.pem`.
    pub fn run(&self, verb: &str, playbook: &str, sets: &[String]) -> std::io::Result<Run> {
        let playbook = format!("playbooks/{playbook}");
        let mut args = vec![verb, playbook.as_str(), "--env", "environments/lab.yaml"];
        for set in sets {
            args.extend(["--set", set.as_str()]);
        }
        self.runsheet(&args)
    }

    /// `runsheet ARGS...` in the lab, the secret `NEW_CERT_KEY` read from `new-key.pem`.
    pub fn runsheet(&self, args: &[&str]) -> std::io::Result<Run> {
        let mut command = self.shipped.lab.command(args);
        command.env(
            "NEW_CERT_KEY_FILE",
            self.shipped.lab.path().join("new-key.pem"),
        );
        self.shipped.lab.run_with(command)
    }

    /// Writes a new self-signed certificate (not a CA: rustls refuses a CA as a server's
    /// leaf) into the lab (`new.pem`) with its key (`new-key.pem`), for both SNIs of the
    /// lab seed's certificate, `localhost` and `shop.lab` (the rotation's check refuses a
    /// certificate that does not cover every SNI it moves); the certificate's path.
    pub fn new_certificate(&self) -> Outcome<String> {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "shop.lab".to_owned(),
        ])?;
        self.shipped.lab.write("new.pem", &certified.cert.pem())?;
        self.shipped
            .lab
            .write("new-key.pem", &certified.signing_key.serialize_pem())?;
        Ok(self
            .shipped
            .lab
            .path()
            .join("new.pem")
            .display()
            .to_string())
    }

    /// The twin's Admin API URL.
    fn admin(&self) -> Outcome<&str> {
        Ok(self.shipped.twin()?.admin_url.as_str())
    }

    /// Injects a twin fault (a `/_twin/faults` body).
    pub fn twin_fault(&self, body: &Value) -> Outcome<()> {
        self.shipped.twin()?.fault(&body.to_string())
    }

    /// Clears the twin's faults and zeroes its counters.
    pub fn clear_twin(&self) -> Outcome<()> {
        crate::traffic::delete(&format!("{}/_twin/faults", self.admin()?))?;
        let (status, body) = post(&format!("{}/_twin/reset", self.admin()?), "{}")?;
        if status != 200 {
            return Err(format!("/_twin/reset answered {status}: {body}").into());
        }
        Ok(())
    }

    /// Writes the twin counted since the last reset.
    pub fn twin_writes(&self) -> Outcome<u64> {
        self.shipped.twin()?.writes()
    }

    /// Makes host command `n` from now fail (0: none), and starts counting again.
    pub fn host_fault(&self, n: usize) -> Outcome<()> {
        let dir = self.shipped.lab.path().join(".lab/faults");
        std::fs::create_dir_all(&dir)?;
        let _ = std::fs::remove_file(dir.join("count"));
        let _ = std::fs::remove_file(dir.join("log"));
        std::fs::write(
            dir.join("fail_at"),
            if n == 0 { String::new() } else { n.to_string() },
        )?;
        Ok(())
    }

    /// Host commands run since the last [`FaultLab::host_fault`].
    pub fn host_commands(&self) -> usize {
        std::fs::read_to_string(self.shipped.lab.path().join(".lab/faults/count"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The host command that was number `n` (the fault's), as the wrapper logged it.
    pub fn failed_command(&self, n: usize) -> String {
        std::fs::read_to_string(self.shipped.lab.path().join(".lab/faults/log"))
            .unwrap_or_default()
            .lines()
            .find_map(|line| {
                let (number, command) = line.split_once(' ')?;
                (number == n.to_string())
                    .then(|| command.replace("environments/lab-kong-node.sh ", ""))
            })
            .unwrap_or_default()
    }

    /// The lab's state now.
    pub fn state(&self) -> Outcome<State> {
        let (status, body) = get(&format!("{}/_twin/snapshot", self.admin()?))?;
        if status != 200 {
            return Err(format!("/_twin/snapshot answered {status}: {body}").into());
        }
        // The nodes' ports differ from lab to lab: their addresses become their names.
        let body = self
            .shipped
            .nodes
            .addresses
            .iter()
            .enumerate()
            .fold(body, |body, (n, address)| {
                body.replace(address, &format!("dp{}", n + 1))
            });
        let gateway = normalised(serde_json::from_str(&body)?);
        let nodes = (0..self.shipped.nodes.dirs.len())
            .map(|n| NodeState {
                installed: self.shipped.installed(n),
                serving: self
                    .shipped
                    .pid(n)
                    .and_then(|_| reported_version(&self.shipped.nodes.addresses[n]).ok()),
            })
            .collect();
        Ok(State { gateway, nodes })
    }
}
