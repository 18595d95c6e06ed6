//! The shipped Kong playbooks `kong-policy-migration` and `kong-rollback`, run by the real
//! binary against a standalone twin (`runsheet twin kong`) whose upstream `core` balances
//! three `runsheet twin node` processes, the hosts `dp1`..`dp3` of the environment with
//! the node contract's host vars (the lab's shape). Each playbook: the success path, a
//! failure in the middle with the automatic rollback checked by the gateway's state
//! (normalised `kong.snapshot` files before and after), and a dry run with zero writes.
//! The fixture ([`KongLab`]) is shared with `kong_rotations.rs`.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use crate::lab::{Lab, Run, TestResult};
use crate::traffic::{Load, NodeProcess, Outcome, Tally, TwinProcess, get, post, request};

/// alice's key before any rotation.
pub const ALICE_KEY: &str = "alice-key-5e1f0c2a";

/// A shipped playbook's path.
pub fn playbook(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks")
        .join(name)
        .display()
        .to_string()
}

/// The lab's shape in a temporary directory: services `orders` (key-auth) on `/orders`,
/// `payments` (key-auth) and `inventory` on host `core`, consumers alice and bob with
/// key-auth keys, a certificate for `shop.test` (given by the test), upstream `core`
/// over three node processes; `env.yaml` names gateway `kong` and hosts `dp1`..`dp3`.
pub struct KongLab {
    // Dropped in this order: the nodes are stopped through PID files inside the lab.
    /// The data-plane nodes, `dp1`..`dp3`.
    pub nodes: Vec<NodeProcess>,
    /// The gateway.
    pub twin: TwinProcess,
    /// The directory.
    pub lab: Lab,
}

impl KongLab {
    /// Opens the lab: nodes at `version`, the certificate's PEM texts (certificate chain, key)
    /// for `shop.test`; `refused[i]` names a version node `i`'s install command refuses.
    pub fn open(
        version: &str,
        certificate: (&str, &str),
        refused: &[Option<&str>],
    ) -> Outcome<KongLab> {
        Self::open_with_sni(version, certificate, "shop.test", refused)
    }

    /// [`KongLab::open`] with the certificate served for SNI `sni`.
    pub fn open_with_sni(
        version: &str,
        certificate: (&str, &str),
        sni: &str,
        refused: &[Option<&str>],
    ) -> Outcome<KongLab> {
        let lab = Lab::new()?;
        let mut nodes = Vec::new();
        for n in 1..=3 {
            let dir = lab.path().join(format!("dp{n}"));
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("version"), format!("{version}\n"))?;
            nodes.push(NodeProcess::start(&lab, &format!("dp{n}"))?);
        }
        let targets: String = nodes
            .iter()
            .map(|node| format!("      - {{target: '{}', weight: 100}}\n", node.address))
            .collect();
        let indent =
            |pem: &str| -> String { pem.lines().map(|line| format!("      {line}\n")).collect() };
        let service = |name: &str, protected: bool| {
            format!(
                "  - name: {name}\n    host: core\n    protocol: http\n    retries: 0\n    routes:\n      - {{name: {name}, paths: [/{name}]}}\n{}",
                if protected {
                    "    plugins:\n      - {name: key-auth}\n"
                } else {
                    ""
                }
            )
        };
        lab.write(
            "seed.yaml",
            &format!(
                "_format_version: '3.0'\nservices:\n{}{}{}consumers:\n  - username: alice\n    keyauth_credentials:\n      - {{key: {ALICE_KEY}}}\n  - username: bob\n    keyauth_credentials:\n      - {{key: bob-key-77aa01}}\nupstreams:\n  - name: core\n    targets:\n{targets}certificates:\n  - cert: |\n{}    key: |\n{}    snis:\n      - {{name: {sni}}}\n",
                service("orders", true),
                service("payments", true),
                service("inventory", false),
                indent(certificate.0),
                indent(certificate.1),
            ),
        )?;
        let twin = TwinProcess::start(&lab, "seed.yaml")?;
        let hosts: String = nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                host_entry(&lab, index, node, refused.get(index).copied().flatten())
            })
            .collect::<Outcome<String>>()?;
        lab.write(
            "env.yaml",
            &format!(
                "runsheet: 1\nname: kong-lab\ngateways:\n  kong: {{type: kong, admin_url: '{}', proxy_url: '{}', status_url: '{}', proxy_tls_url: '{}'}}\nhosts:\n{hosts}",
                twin.admin_url, twin.proxy_url, twin.status_url, twin.proxy_tls_url
            ),
        )?;
        let opened = KongLab { nodes, twin, lab };
        let (status, body) = request(&opened.url("/orders"), &[("apikey", ALICE_KEY)])?;
        if status != 200 {
            return Err(format!("the lab does not serve /orders: {status} {body}").into());
        }
        Ok(opened)
    }

    /// A URL through the proxy.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.twin.proxy_url)
    }

    /// Runs the binary in the lab.
    pub fn run(&self, args: &[&str]) -> Outcome<Run> {
        Ok(self.lab.run(args)?)
    }

    /// The gateway's state as `kong.snapshot` writes it (credentials included), taken by
    /// the binary into `name`: the normalised form states are compared in.
    pub fn snapshot(&self, name: &str) -> Outcome<String> {
        self.lab.write(
            "snap.yaml",
            &format!(
                "runsheet: 1\nname: snap\nsteps:\n  - id: snap\n    action: kong.snapshot\n    on: kong\n    with: {{path: {name}, include_credentials: true}}\n"
            ),
        )?;
        let run = self.run(&[
            "run",
            "snap.yaml",
            "--env",
            "env.yaml",
            "--state-dir",
            ".snap-state",
        ])?;
        if run.code != Some(0) {
            return Err(format!("snapshot: {}", run.all()).into());
        }
        Ok(std::fs::read_to_string(self.lab.path().join(name))?)
    }

    /// Makes the twin fail or drop a coming write (`/_twin/faults`).
    pub fn fault(&self, json: &str) -> Outcome<()> {
        let (status, body) = post(&format!("{}/_twin/faults", self.twin.admin_url), json)?;
        if status >= 300 {
            return Err(format!("fault {json}: {status} {body}").into());
        }
        Ok(())
    }

    /// An Admin API read: status and JSON body.
    pub fn admin(&self, path: &str) -> Outcome<(u16, serde_json::Value)> {
        let (status, body) = get(&format!("{}{path}", self.twin.admin_url))?;
        Ok((
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// The version node `index` reports on `GET /`.
    pub fn node_version(&self, index: usize) -> Outcome<String> {
        let (_, body) = get(&format!("http://{}/", self.nodes[index].address))?;
        let info: serde_json::Value = serde_json::from_str(&body)?;
        Ok(info["version"].as_str().unwrap_or_default().to_owned())
    }

    /// Every target's weight in upstream `core`, by address.
    pub fn weights(&self) -> Outcome<Vec<(String, u64)>> {
        let (_, page) = self.admin("/upstreams/core/targets")?;
        let mut weights: Vec<(String, u64)> = page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["target"].as_str().unwrap_or_default().to_owned(),
                    t["weight"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        weights.sort();
        Ok(weights)
    }
}

/// One host of the environment with the node contract's vars, as JSON (valid YAML).
fn host_entry(
    lab: &Lab,
    index: usize,
    node: &NodeProcess,
    refused: Option<&str>,
) -> Outcome<String> {
    let dir = node.dir.display().to_string();
    // The version is the command's last argument (`$1` of the script).
    let install = match refused {
        Some(refused) => {
            format!("sh -c 'test \"$1\" != {refused} && echo \"$1\" > {dir}/version' install")
        }
        None => format!("sh -c 'echo \"$1\" > {dir}/version' install"),
    };
    let vars = serde_json::json!({
        "target": node.address,
        "status_url": format!("http://{}", node.address),
        "node_url": format!("http://{}", node.address),
        "service_manager": "command",
        "start_command": NodeProcess::start_command(&node.address, &node.dir, &lab.path().join("nodes.log")),
        "stop_command": NodeProcess::stop_command(&node.dir),
        "status_command": format!("test -e {dir}/node.pid && kill -0 $(cat {dir}/node.pid)"),
        "package_manager": "command",
        "install_command": install,
    });
    Ok(format!(
        "  dp{}: {{transport: local, groups: [dataplane], vars: {}}}\n",
        index + 1,
        serde_json::to_string(&vars)?
    ))
}

/// A self-signed certificate for `shop.test`: (certificate, key) PEM.
pub fn self_signed() -> Outcome<(String, String)> {
    let made = rcgen::generate_simple_self_signed(vec!["shop.test".to_owned()])?;
    Ok((made.cert.pem(), made.signing_key.serialize_pem()))
}

/// The lab for the configuration playbooks: nodes at 3.9.0, a self-signed certificate.
fn config_lab() -> Outcome<KongLab> {
    let (cert, key) = self_signed()?;
    KongLab::open("3.9.0", (&cert, &key), &[])
}

/// `--set` arguments of a policy migration of the shipped example state file.
fn migration(lab: &KongLab, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        &playbook("kong-policy-migration.yaml"),
        "--env",
        "env.yaml",
        "--set",
        "state_file=examples/kong-lab-state.yaml",
        "--set",
        &format!("artefacts={}", lab.lab.path().join("artefacts").display()),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn run_args(lab: &KongLab, args: &[String]) -> Outcome<Run> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lab.run(&args)
}

#[test]
fn policy_migration_plans_without_writing_pauses_at_its_gate_and_syncs_when_approved() -> TestResult
{
    let lab = config_lab()?;
    let mut plan = migration(&lab, &[]);
    plan[0] = "plan".to_owned();
    let planned = run_args(&lab, &plan)?;
    assert_eq!(planned.code, Some(0), "{}", planned.all());
    assert!(
        planned
            .stdout
            .contains("2 to create, 1 to update, 0 to delete"),
        "{}",
        planned.all()
    );
    assert!(
        planned.stdout.contains("+create route orders-v2"),
        "{}",
        planned.all()
    );
    assert_eq!(lab.twin.writes()?, 0, "a plan writes nothing");

    let smoke = r#"smoke_tests=[{"path": "/v2/orders", "status": 200}, {"path": "/v2/orders", "status": 401, "key": false, "name": "no key"}]"#;
    let mut command = lab.lab.command(&migration(
        &lab,
        &["--set", smoke, "--set", "smoke_key=ALICE_SMOKE_KEY"],
    ));
    command.env("ALICE_SMOKE_KEY", ALICE_KEY);
    let paused = lab.lab.run_with(command)?;
    assert_eq!(paused.code, Some(4), "{}", paused.all());
    assert!(
        paused
            .stdout
            .contains("2 to create, 1 to update, 0 to delete"),
        "the gate quotes the diff: {}",
        paused.all()
    );
    assert_eq!(lab.twin.writes()?, 0, "nothing is written before the gate");
    let run = paused.run_id().ok_or("no run id")?;

    let mut resume = lab.lab.command(&["resume", &run, "--approve", "sync"]);
    resume.env("ALICE_SMOKE_KEY", ALICE_KEY);
    let resumed = lab.lab.run_with(resume)?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert!(
        !resumed.all().contains(ALICE_KEY),
        "the smoke key is masked: {}",
        resumed.all()
    );
    let (status, route) = lab.admin("/routes/orders-v2")?;
    assert_eq!(status, 200, "{route}");
    let (status, _) = request(&lab.url("/v2/orders"), &[("apikey", ALICE_KEY)])?;
    assert_eq!(status, 200);
    let (_, payments) = lab.admin("/services/payments")?;
    assert_eq!(payments["read_timeout"], 15000);
    let before = std::fs::read_dir(lab.lab.path().join("artefacts"))?.count();
    assert_eq!(before, 1, "the pre-state snapshot is kept");

    // Idempotent: a second run finds the gateway in sync, does not stop at the gate,
    // and changes nothing.
    let writes = lab.twin.writes()?;
    let snapshot = lab.snapshot("after-first.yaml")?;
    let again = run_args(&lab, &migration(&lab, &[]))?;
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert!(
        again.stdout.contains("gate: `when:"),
        "no gate when in sync: {}",
        again.all()
    );
    assert_eq!(lab.snapshot("after-second.yaml")?, snapshot);
    assert_eq!(lab.twin.writes()?, writes, "a second run writes nothing");
    Ok(())
}

#[test]
fn policy_migration_restores_the_gateway_when_a_write_fails_or_a_smoke_test_fails() -> TestResult {
    let lab = config_lab()?;
    let before = lab.snapshot("before.yaml")?;

    // A write failing in the middle of the sync (its 2nd write: the route's plugin).
    lab.fault(r#"{"fail_nth_write": 2, "status": 400}"#)?;
    let failed = run_args(&lab, &migration(&lab, &["--set", "approval=false"]))?;
    assert_eq!(failed.code, Some(1), "{}", failed.all());
    assert!(failed.all().contains("restored"), "{}", failed.all());
    assert_eq!(
        lab.snapshot("after-fault.yaml")?,
        before,
        "the gateway is back to its snapshot"
    );

    // A smoke test failing after a complete sync: /v2/orders without a key answers 401.
    let smoke = r#"smoke_tests=[{"path": "/v2/orders", "status": 200}]"#;
    let failed = run_args(
        &lab,
        &migration(&lab, &["--set", "approval=false", "--set", smoke]),
    )?;
    assert_eq!(failed.code, Some(1), "{}", failed.all());
    assert!(failed.stdout.contains("undone  sync"), "{}", failed.all());
    assert_eq!(
        lab.snapshot("after-smoke.yaml")?,
        before,
        "the gateway is back to its snapshot"
    );
    let (status, _) = lab.admin("/routes/orders-v2")?;
    assert_eq!(status, 404, "the new route is gone");
    Ok(())
}

/// Arguments of a `kong-rollback` run restoring `snapshot`.
fn restore(lab: &KongLab, verb: &str, snapshot: &Path, extra: &[&str]) -> Outcome<Run> {
    let playbook = playbook("kong-rollback.yaml");
    let snapshot = format!("snapshot={}", snapshot.display());
    let artefacts = format!("artefacts={}", lab.lab.path().join("rollback").display());
    let mut args = vec![
        verb,
        playbook.as_str(),
        "--env",
        "env.yaml",
        "--set",
        &snapshot,
        "--set",
        &artefacts,
    ];
    args.extend_from_slice(extra);
    lab.run(&args)
}

#[test]
fn rollback_restores_a_snapshot_exactly_and_undoes_a_restore_that_fails() -> TestResult {
    let lab = config_lab()?;
    let original = lab.snapshot("original.yaml")?;
    let migrated = run_args(&lab, &migration(&lab, &["--set", "approval=false"]))?;
    assert_eq!(migrated.code, Some(0), "{}", migrated.all());
    // Something changed by hand too: bob is gone.
    let (status, _) = delete(&format!("{}/consumers/bob", lab.twin.admin_url))?;
    assert_eq!(status, 204);
    let changed = lab.snapshot("changed.yaml")?;
    assert_ne!(changed, original);
    let snapshot = lab.lab.path().join("original.yaml");

    let writes = lab.twin.writes()?;
    let planned = restore(&lab, "plan", &snapshot, &[])?;
    assert_eq!(planned.code, Some(0), "{}", planned.all());
    assert!(planned.stdout.contains("to delete"), "{}", planned.all());
    assert_eq!(lab.twin.writes()?, writes, "a plan writes nothing");

    // A write failing in the middle of the restore: the gateway stays as it was.
    lab.fault(r#"{"fail_nth_write": 2, "status": 400}"#)?;
    let failed = restore(&lab, "run", &snapshot, &["--set", "approval=false"])?;
    assert_eq!(failed.code, Some(1), "{}", failed.all());
    assert_eq!(
        lab.snapshot("after-fault.yaml")?,
        changed,
        "a failed restore leaves the state before it"
    );

    // Through the gate, then restored byte for byte (the playbook compares the hashes).
    let paused = restore(&lab, "run", &snapshot, &[])?;
    assert_eq!(paused.code, Some(4), "{}", paused.all());
    let run = paused.run_id().ok_or("no run id")?;
    let resumed = lab.run(&["resume", &run, "--approve", "restore"])?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert_eq!(lab.snapshot("restored.yaml")?, original);
    let (status, _) = request(&lab.url("/orders"), &[("apikey", "bob-key-77aa01")])?;
    assert_eq!(status, 200, "bob's key works again");
    Ok(())
}

#[test]
fn rollback_puts_nodes_back_on_a_version_without_failing_a_request() -> TestResult {
    let (cert, key) = self_signed()?;
    let lab = KongLab::open("3.9.1", (&cert, &key), &[])?;
    let playbook = playbook("kong-rollback.yaml");
    let base = [
        "--env",
        "env.yaml",
        "--set",
        "mode=version",
        "--set",
        "version=3.9.0",
        "--set",
        "ready_timeout=20s",
        "--set",
        "traffic_key=ALICE",
    ];

    let mut plan = lab
        .lab
        .command(&[&["plan", playbook.as_str()][..], &base[..]].concat());
    plan.env("ALICE", ALICE_KEY);
    let planned = lab.lab.run_with(plan)?;
    assert_eq!(planned.code, Some(0), "{}", planned.all());
    assert!(
        planned.stdout.contains("weight 100 -> 0"),
        "{}",
        planned.all()
    );
    assert_eq!(lab.twin.writes()?, 0, "a plan writes nothing");
    for index in 0..3 {
        assert_eq!(
            lab.node_version(index)?,
            "3.9.1",
            "a plan leaves the nodes alone"
        );
    }

    let load = Load::start(
        &lab.url("/orders"),
        4,
        Arc::new(|_| Some(ALICE_KEY.to_owned())),
    );
    let mut run = lab
        .lab
        .command(&[&["run", playbook.as_str()][..], &base[..]].concat());
    run.env("ALICE", ALICE_KEY);
    let done = lab.lab.run_with(run)?;
    let tally = Tally::sum(&load.finish());
    assert_eq!(done.code, Some(0), "{}", done.all());
    for index in 0..3 {
        assert_eq!(lab.node_version(index)?, "3.9.0");
    }
    assert!(
        lab.weights()?.iter().all(|(_, weight)| *weight == 100),
        "{:?}",
        lab.weights()?
    );
    println!(
        "version rollback of 3 nodes: {} requests, {} failed",
        tally.sent(),
        tally.failed()
    );
    assert!(tally.ok > 50, "{tally:?}");
    assert_eq!(tally.failed(), 0, "{:?}", tally.failures);
    Ok(())
}

#[test]
fn a_node_failing_its_version_rollback_is_put_back_and_finished_nodes_stay() -> TestResult {
    let (cert, key) = self_signed()?;
    // dp2 refuses to install 3.9.0; its reinstall of 3.9.1 works.
    let lab = KongLab::open("3.9.1", (&cert, &key), &[None, Some("3.9.0"), None])?;
    let load = Load::start(
        &lab.url("/orders"),
        4,
        Arc::new(|_| Some(ALICE_KEY.to_owned())),
    );
    let mut run = lab.lab.command(&[
        "run",
        &playbook("kong-rollback.yaml"),
        "--env",
        "env.yaml",
        "--set",
        "mode=version",
        "--set",
        "version=3.9.0",
        "--set",
        "ready_timeout=20s",
        "--set",
        "traffic_key=ALICE",
    ]);
    run.env("ALICE", ALICE_KEY);
    let failed = lab.lab.run_with(run)?;
    let tally = Tally::sum(&load.finish());
    assert_eq!(failed.code, Some(1), "{}", failed.all());
    assert_eq!(
        lab.node_version(0)?,
        "3.9.0",
        "the finished batch stays on the version"
    );
    assert_eq!(
        lab.node_version(1)?,
        "3.9.1",
        "the failed node is back on the version it ran"
    );
    assert_eq!(
        lab.node_version(2)?,
        "3.9.1",
        "no batch starts after the failure"
    );
    assert!(
        lab.weights()?.iter().all(|(_, weight)| *weight == 100),
        "every node back in rotation: {:?}",
        lab.weights()?
    );
    let (status, _) = get(&format!("http://{}/status/ready", lab.nodes[1].address))?;
    assert_eq!(status, 200, "the failed node runs and is ready");
    assert_eq!(tally.failed(), 0, "{:?}", tally.failures);
    Ok(())
}

/// `DELETE url` over a plain TCP connection: the status.
fn delete(url: &str) -> Outcome<(u16, String)> {
    let rest = url.trim_start_matches("http://");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(authority)?;
    write!(
        stream,
        "DELETE {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, response))
}
