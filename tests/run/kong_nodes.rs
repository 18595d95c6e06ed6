//! A Kong data-plane lab for the shipped Kong playbooks: a standalone `runsheet twin kong`
//! (with its proxy, TLS proxy and control endpoint) whose upstream `core` balances real
//! `runsheet twin node` processes, and an environment that follows the playbooks' node
//! contract (group `dataplane`, host vars `target`, `status_url`, `node_url`,
//! `service_manager: command` with start, stop and status commands, `error_log`), as
//! `environments/lab.yaml` does for dp1-dp3.

use std::path::Path;

use serde_json::Value;

use crate::lab::{Lab, Run};
use crate::traffic::{NodeProcess, Outcome, TwinProcess, free_port, get, request};

/// The repository's root: the shipped playbooks.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// alice's key-auth key.
pub const ALICE_KEY: &str = "alice-key-4b1d9e";

/// alice's jwt credential key (claim `iss`), on route `/payments`.
pub const JWT_KEY: &str = "alice-issuer";

/// alice's jwt credential HS256 secret.
pub const JWT_SECRET: &str = "alice-jwt-secret-93c2f1d07a";

/// alice's OAuth2 client id, for route `/inventory`.
pub const CLIENT_ID: &str = "alice-client";

/// alice's OAuth2 client secret.
pub const CLIENT_SECRET: &str = "alice-client-secret-6e0b24";

/// The SNI the twin's TLS proxy has a certificate for.
pub const SNI: &str = "shop.test";

/// The lab: nodes (dropped first: they are stopped through PID files in the lab's
/// directory), the twin, the directory.
pub struct KongLab {
    /// Every node of the environment, started or not, by host name order.
    pub nodes: Vec<NodeProcess>,
    /// The Kong twin.
    pub twin: TwinProcess,
    /// The directory.
    pub lab: Lab,
}

/// What to build.
pub struct Layout {
    /// Nodes started and in the upstream (dp1..dpN).
    pub serving: usize,
    /// Further nodes in the environment's group, not started, not in the upstream.
    pub spare: usize,
}

impl KongLab {
    /// The lab with `layout`'s nodes; `edit` changes the environment text.
    pub fn open(layout: Layout, edit: impl Fn(String) -> String) -> Outcome<KongLab> {
        let lab = Lab::new()?;
        let mut nodes = Vec::new();
        for n in 1..=layout.serving {
            nodes.push(NodeProcess::start(&lab, &format!("dp{n}"))?);
        }
        for n in layout.serving + 1..=layout.serving + layout.spare {
            let dir = lab.path().join(format!("dp{n}"));
            std::fs::create_dir_all(&dir)?;
            nodes.push(NodeProcess {
                address: format!("127.0.0.1:{}", free_port()?),
                dir,
            });
        }
        let targets: String = nodes[..layout.serving]
            .iter()
            .map(|node| format!("      - {{target: '{}', weight: 100}}\n", node.address))
            .collect();
        let (cert, key) = self_signed(SNI)?;
        lab.write(
            "kong.yaml",
            &format!(
                "_format_version: '3.0'
services:
  - name: orders
    host: core
    protocol: http
    retries: 0
    routes:
      - {{name: orders, paths: [/orders]}}
    plugins:
      - {{name: key-auth}}
  - name: payments
    host: core
    protocol: http
    routes:
      - {{name: payments, paths: [/payments]}}
    plugins:
      - {{name: jwt, config: {{claims_to_verify: [exp]}}}}
  - name: inventory
    host: core
    protocol: http
    routes:
      - {{name: inventory, paths: [/inventory]}}
    plugins:
      - {{name: oauth2, config: {{enable_client_credentials: true, scopes: [inventory.read], mandatory_scope: true}}}}
  - name: catalog
    host: core
    protocol: http
    routes:
      - {{name: catalog, paths: [/catalog]}}
  - name: limited
    host: core
    protocol: http
    routes:
      - {{name: limited, paths: [/limited]}}
    plugins:
      - {{name: rate-limiting, config: {{hour: 5, limit_by: ip, policy: local}}}}
consumers:
  - username: alice
    keyauth_credentials:
      - {{key: {ALICE_KEY}}}
    jwt_secrets:
      - {{key: {JWT_KEY}, algorithm: HS256, secret: {JWT_SECRET}}}
    oauth2_credentials:
      - {{name: alice, client_id: {CLIENT_ID}, client_secret: {CLIENT_SECRET}}}
upstreams:
  - name: core
    targets:
{targets}certificates:
  - cert: |
{cert}    key: |
{key}    snis:
      - {{name: {SNI}}}
      - {{name: localhost}}
"
            ),
        )?;
        lab.write("ca.pem", &unindent(&cert))?;
        let twin = TwinProcess::start(&lab, "kong.yaml")?;
        let hosts: String = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| host_entry(&lab, &format!("dp{}", i + 1), node))
            .collect();
        let environment = format!(
            "runsheet: 1
name: kong-lab
gateways:
  kong: {{type: kong, admin_url: '{}', proxy_url: '{}', status_url: '{}', proxy_tls_url: '{}'}}
hosts:
{hosts}",
            twin.admin_url, twin.proxy_url, twin.status_url, twin.proxy_tls_url
        );
        lab.write("env.yaml", &edit(environment))?;
        let kong = KongLab { nodes, twin, lab };
        let (status, body) = request(&kong.orders(), &[("apikey", ALICE_KEY)])?;
        if status != 200 {
            return Err(format!("the proxy does not serve /orders: {status} {body}").into());
        }
        Ok(kong)
    }

    /// The customers' URL (key-auth).
    pub fn orders(&self) -> String {
        format!("{}/orders", self.twin.proxy_url)
    }

    /// `runsheet VERB playbooks/PLAYBOOK --env env.yaml --set ...` in the lab.
    pub fn run(&self, verb: &str, playbook: &str, sets: &[&str]) -> std::io::Result<Run> {
        let path = format!("{ROOT}/playbooks/{playbook}");
        let mut args = vec![verb, path.as_str(), "--env", "env.yaml"];
        for set in sets {
            args.extend(["--set", set]);
        }
        let mut command = self.lab.command(&args);
        command
            .env("ALICE_KEY", ALICE_KEY)
            .env("WRONG_KEY", "not-alice-key")
            .env("JWT_SECRET", JWT_SECRET)
            .env("WRONG_JWT_SECRET", "not-alice-jwt-secret")
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("WRONG_CLIENT_SECRET", "not-alice-client-secret");
        self.lab.run_with(command)
    }

    /// Every target of upstream `core` with its weight, sorted by address.
    pub fn weights(&self) -> Outcome<Vec<(String, u64)>> {
        let (status, body) = get(&format!("{}/upstreams/core/targets", self.twin.admin_url))?;
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

    /// Node `n`'s (0-based) process id, when it runs.
    pub fn pid(&self, n: usize) -> Option<String> {
        let pid = std::fs::read_to_string(self.nodes[n].dir.join("node.pid")).ok()?;
        let pid = pid.trim().to_owned();
        alive(&pid).then_some(pid)
    }

    /// Whether node `n` answers `/status/ready` with 200.
    pub fn ready(&self, n: usize) -> bool {
        get(&format!("http://{}/status/ready", self.nodes[n].address))
            .is_ok_and(|(status, _)| status == 200)
    }

    /// The twin's write counter.
    pub fn writes(&self) -> Outcome<u64> {
        self.twin.writes()
    }

    /// Injects a twin fault (`/_twin/faults`).
    pub fn fault(&self, body: &str) -> Outcome<()> {
        let (status, answer) =
            crate::traffic::post(&format!("{}/_twin/faults", self.twin.admin_url), body)?;
        if status != 201 {
            return Err(format!("fault {body} answered {status}: {answer}").into());
        }
        Ok(())
    }
}

/// The environment entry of host `name` for `node`: the node contract's host vars.
fn host_entry(lab: &Lab, name: &str, node: &NodeProcess) -> String {
    let dir = &node.dir;
    let log = lab.path().join(format!("{name}.log"));
    let quote = |text: String| text.replace('\'', "''");
    format!(
        "  {name}:
    address: 127.0.0.1
    transport: local
    groups: [dataplane]
    vars:
      target: '{address}'
      status_url: 'http://{address}'
      node_url: 'http://{address}'
      service_manager: command
      cwd: .
      service_name: 'kong {name}'
      start_command: '{start}'
      stop_command: '{stop}'
      status_command: '{status}'
      error_log: '{log}'
",
        address = node.address,
        start = quote(NodeProcess::start_command(&node.address, dir, &log)),
        stop = quote(NodeProcess::stop_command(dir)),
        status = quote(status_command(dir)),
        log = log.display(),
    )
}

/// The shell command that exits 0 when the node in `dir` runs.
pub fn status_command(dir: &Path) -> String {
    format!(
        "test -e {dir}/node.pid && kill -0 $(cat {dir}/node.pid) 2>/dev/null",
        dir = dir.display()
    )
}

/// Whether process `pid` runs (exists and is not a zombie).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// A self-signed certificate for `name` and `localhost` (the host clients reach the TLS
/// proxy by, as for the OAuth2 token endpoint) and its key, as PEM indented for YAML.
fn self_signed(name: &str) -> Outcome<(String, String)> {
    let made = rcgen::generate_simple_self_signed(vec![name.to_owned(), "localhost".to_owned()])?;
    let indent =
        |pem: String| -> String { pem.lines().map(|line| format!("      {line}\n")).collect() };
    Ok((
        indent(made.cert.pem()),
        indent(made.signing_key.serialize_pem()),
    ))
}

/// PEM indented for YAML, back to plain lines.
fn unindent(text: &str) -> String {
    text.lines()
        .map(|line| format!("{}\n", line.trim()))
        .collect()
}
