//! The Kong data-plane lab the shipped Kong playbooks' tests share: a standalone
//! `runsheet twin kong` (proxy, TLS proxy, control endpoint) whose upstream `core` balances
//! real `runsheet twin node` processes, and an environment `env.yaml` that follows the
//! playbooks' node contract (group `dataplane`, host vars `target`, `status_url`,
//! `node_url`, `service_manager: command` with start, stop and status commands,
//! `package_manager: command` with an install command, `error_log`), as
//! `environments/lab.yaml` does for dp1-dp3. The lab's own copy of the repository is
//! `kong_lab.rs`.

use std::path::{Path, PathBuf};

use crate::lab::{Lab, Run};
use crate::traffic::{Load, NodeProcess, Outcome, TwinProcess, free_port, request};

/// The repository's root: the shipped playbooks.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// alice's key-auth key (secret `ALICE_KEY` of every run).
pub const ALICE_KEY: &str = "alice-key-4b1d9e";

/// bob's key-auth key.
pub const BOB_KEY: &str = "bob-key-77aa01";

/// alice's jwt credential key (claim `iss`), on route `/payments`.
pub const JWT_KEY: &str = "alice-issuer";

/// alice's jwt credential HS256 secret.
pub const JWT_SECRET: &str = "alice-jwt-secret-93c2f1d07a";

/// alice's OAuth2 client id, for route `/inventory`.
pub const CLIENT_ID: &str = "alice-client";

/// alice's OAuth2 client secret.
pub const CLIENT_SECRET: &str = "alice-client-secret-6e0b24";

/// The SNI the twin's TLS proxy has a certificate for, unless the test brings its own.
pub const SNI: &str = "shop.test";

/// The lab: nodes (dropped first: they are stopped through PID files in the lab's
/// directory), the twin, the directory. The twin serves services `orders` (key-auth),
/// `payments` (jwt), `inventory` (oauth2), `catalog` (open) and `limited` (rate-limiting,
/// 5 an hour per client), none retried on another target, on host `core`; consumers
/// alice (key-auth key, jwt secret, OAuth2 client) and bob (key-auth key); one
/// certificate (the default one also for `localhost`).
pub struct KongLab {
    /// Every node of the environment, started or not, by host name order.
    pub nodes: Vec<NodeProcess>,
    /// The Kong twin.
    pub twin: TwinProcess,
    /// The directory.
    pub lab: Lab,
}

/// Which nodes to build.
pub struct Layout {
    /// Nodes started and in the upstream (dp1..dpN).
    pub serving: usize,
    /// Further nodes in the environment's group, not started, not in the upstream.
    pub spare: usize,
}

/// A certificate a test brings for the twin's TLS proxy (PEM texts).
pub struct Certificate<'a> {
    /// The certificate (chain).
    pub cert: &'a str,
    /// Its private key.
    pub key: &'a str,
    /// The SNI it is served for.
    pub sni: &'a str,
}

/// What to build beyond the nodes.
pub struct Options<'a> {
    /// Which nodes.
    pub layout: Layout,
    /// The version the serving nodes start with.
    pub version: &'a str,
    /// The TLS proxy's certificate; `None`: a self-signed one for [`SNI`], its PEM in `ca.pem`.
    pub certificate: Option<Certificate<'a>>,
    /// By node: a version that node's install command refuses.
    pub refused: &'a [Option<&'a str>],
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            layout: Layout {
                serving: 3,
                spare: 0,
            },
            version: "3.9.0",
            certificate: None,
            refused: &[],
        }
    }
}

impl KongLab {
    /// Three serving nodes at 3.9.0, the environment as written.
    pub fn plain() -> Outcome<KongLab> {
        KongLab::build(Options::default(), |env| env)
    }

    /// The lab with `layout`'s nodes at 3.9.0; `edit` changes the environment text.
    pub fn open(layout: Layout, edit: impl Fn(String) -> String) -> Outcome<KongLab> {
        KongLab::build(
            Options {
                layout,
                ..Options::default()
            },
            edit,
        )
    }

    /// The lab as `options` say; `edit` changes the environment text.
    pub fn build(options: Options<'_>, edit: impl Fn(String) -> String) -> Outcome<KongLab> {
        let Layout { serving, spare } = options.layout;
        let lab = Lab::new()?;
        let mut nodes = Vec::new();
        for n in 1..=serving + spare {
            let dir = lab.path().join(format!("dp{n}"));
            std::fs::create_dir_all(&dir)?;
            if n <= serving {
                std::fs::write(dir.join("version"), format!("{}\n", options.version))?;
                nodes.push(NodeProcess::start(&lab, &format!("dp{n}"))?);
            } else {
                let address = format!("127.0.0.1:{}", free_port()?);
                nodes.push(NodeProcess { address, dir });
            }
        }
        let own;
        let localhost = options.certificate.is_none();
        let certificate = match options.certificate {
            Some(certificate) => certificate,
            None => {
                // `localhost` too: the host clients reach the TLS proxy by, as for the
                // OAuth2 token endpoint.
                own = self_signed_for(&[SNI, "localhost"])?;
                lab.write("ca.pem", &own.0)?;
                Certificate {
                    cert: &own.0,
                    key: &own.1,
                    sni: SNI,
                }
            }
        };
        lab.write("kong.yaml", &seed(&nodes[..serving], &certificate, localhost))?;
        let twin = TwinProcess::start(&lab, "kong.yaml")?;
        let hosts: String = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| host_entry(&lab, i, node, options.refused.get(i).copied().flatten()))
            .collect();
        let environment = format!(
            "runsheet: 1\nname: kong-lab\nvars: {{kong_drain_wait: 50ms}}\ngateways:\n  kong: {}\nhosts:\n{hosts}",
            twin.gateway()
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
        self.url("/orders")
    }

    /// The proxy's URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.twin.proxy_url)
    }

    /// `clients` customers sending alice's key to `/orders` back to back.
    pub fn customers(&self, clients: usize) -> Load {
        Load::with_key(&self.orders(), clients, ALICE_KEY)
    }

    /// `runsheet ARGS...` in the lab, with alice's secrets (`ALICE_KEY`, `JWT_SECRET`,
    /// `CLIENT_SECRET`) and wrong ones (`WRONG_KEY`, `WRONG_JWT_SECRET`,
    /// `WRONG_CLIENT_SECRET`) in its environment.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = self.lab.command(args);
        command
            .env("ALICE_KEY", ALICE_KEY)
            .env("WRONG_KEY", "not-alice-key")
            .env("JWT_SECRET", JWT_SECRET)
            .env("WRONG_JWT_SECRET", "not-alice-jwt-secret")
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("WRONG_CLIENT_SECRET", "not-alice-client-secret");
        command
    }

    /// `runsheet ARGS...` in the lab, with the secrets of [`KongLab::command`].
    pub fn runsheet(&self, args: &[&str]) -> std::io::Result<Run> {
        self.lab.run_with(self.command(args))
    }

    /// `runsheet VERB playbooks/PLAYBOOK --env env.yaml --set ...` in the lab.
    pub fn run(&self, verb: &str, playbook: &str, sets: &[&str]) -> std::io::Result<Run> {
        let path = format!("{ROOT}/playbooks/{playbook}");
        let mut args = vec![verb, path.as_str(), "--env", "env.yaml"];
        for set in sets {
            args.extend(["--set", set]);
        }
        self.runsheet(&args)
    }

    /// Every target of upstream `core` with its weight, sorted by address.
    pub fn weights(&self) -> Outcome<Vec<(String, u64)>> {
        self.twin.weights("core")
    }

    /// Node `n`'s (0-based) process id, when it runs.
    pub fn pid(&self, n: usize) -> Option<String> {
        self.nodes[n].pid()
    }

    /// Every node's process id, when it runs, by node.
    pub fn pids(&self) -> Vec<Option<String>> {
        self.nodes.iter().map(NodeProcess::pid).collect()
    }

    /// Whether node `n` answers `/status/ready` with 200.
    pub fn ready(&self, n: usize) -> bool {
        self.nodes[n].ready()
    }

    /// The version node `n` reports on `GET /`.
    pub fn node_version(&self, n: usize) -> Outcome<String> {
        crate::traffic::reported_version(&self.nodes[n].address)
    }

    /// The twin's write counter.
    pub fn writes(&self) -> Outcome<u64> {
        self.twin.writes()
    }

    /// Injects a twin fault (`/_twin/faults`).
    pub fn fault(&self, json: &str) -> Outcome<()> {
        self.twin.fault(json)
    }

    /// An Admin API read: status and JSON body.
    pub fn admin(&self, path: &str) -> Outcome<(u16, serde_json::Value)> {
        self.twin.admin(path)
    }

    /// The gateway's state, as [`snapshot`] takes it, in `name`.
    pub fn snapshot(&self, name: &str) -> Outcome<String> {
        snapshot(&self.lab, name)
    }
}

/// The twin's seed: the services, consumers, upstream `core` over `serving` and the
/// certificate (also served for `localhost` when `localhost`).
fn seed(serving: &[NodeProcess], certificate: &Certificate<'_>, localhost: bool) -> String {
    let service = |name: &str, plugin: &str| {
        format!(
            "  - name: {name}\n    host: core\n    protocol: http\n    retries: 0\n    routes:\n      - {{name: {name}, paths: [/{name}]}}\n{plugin}"
        )
    };
    let targets = targets(serving);
    format!(
        "_format_version: '3.0'\nservices:\n{}{}{}{}{}consumers:\n  - username: alice\n    keyauth_credentials:\n      - {{key: {ALICE_KEY}}}\n    jwt_secrets:\n      - {{key: {JWT_KEY}, algorithm: HS256, secret: {JWT_SECRET}}}\n    oauth2_credentials:\n      - {{name: alice, client_id: {CLIENT_ID}, client_secret: {CLIENT_SECRET}}}\n  - username: bob\n    keyauth_credentials:\n      - {{key: {BOB_KEY}}}\nupstreams:\n  - name: core\n    targets:\n{targets}certificates:\n  - cert: |\n{}    key: |\n{}    snis:\n      - {{name: {}}}\n{}",
        service("orders", "    plugins:\n      - {name: key-auth}\n"),
        service(
            "payments",
            "    plugins:\n      - {name: jwt, config: {claims_to_verify: [exp]}}\n"
        ),
        service(
            "inventory",
            "    plugins:\n      - {name: oauth2, config: {enable_client_credentials: true, scopes: [inventory.read], mandatory_scope: true}}\n"
        ),
        service("catalog", ""),
        service(
            "limited",
            "    plugins:\n      - {name: rate-limiting, config: {hour: 5, limit_by: ip, policy: local}}\n"
        ),
        indent(certificate.cert),
        indent(certificate.key),
        certificate.sni,
        if localhost {
            "      - {name: localhost}\n"
        } else {
            ""
        },
    )
}

/// Upstream targets for `nodes`, weight 100, as YAML list items under `targets:`.
pub fn targets(nodes: &[NodeProcess]) -> String {
    nodes
        .iter()
        .map(|node| format!("      - {{target: '{}', weight: 100}}\n", node.address))
        .collect()
}

/// The environment entry of host `dp{index + 1}` for `node`: the node contract's host
/// vars; its install command writes the version file, refusing version `refused`.
fn host_entry(lab: &Lab, index: usize, node: &NodeProcess, refused: Option<&str>) -> String {
    let name = format!("dp{}", index + 1);
    let dir = &node.dir;
    let log = lab.path().join(format!("{name}.log"));
    // The version is the command's last argument (`$1` of the script).
    let check = refused.map_or(String::new(), |refused| {
        format!("test \"$1\" != {refused} && ")
    });
    let install = format!(
        "sh -c '{check}echo \"$1\" > {}/version' install",
        dir.display()
    );
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
      package_manager: command
      install_command: '{install}'
      error_log: '{log}'
",
        address = node.address,
        start = quote(NodeProcess::start_command(&node.address, dir, &log)),
        stop = quote(NodeProcess::stop_command(dir)),
        status = quote(status_command(dir)),
        install = quote(install),
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

/// `env` with host `host`'s line for var `var` (the whole line) changed by `edit`.
pub fn with_host_var(
    env: &str,
    host: &str,
    var: &str,
    edit: impl FnOnce(&str) -> String,
) -> String {
    let mut lines: Vec<String> = env.lines().map(str::to_owned).collect();
    let start = lines
        .iter()
        .position(|l| *l == format!("  {host}:"))
        .unwrap_or(0);
    if let Some(found) = lines[start..]
        .iter_mut()
        .find(|l| l.trim_start().starts_with(&format!("{var}:")))
    {
        *found = edit(found);
    }
    lines.join("\n") + "\n"
}

/// The gateway `kong` of the lab's `env.yaml` as `kong.snapshot` writes it (credentials
/// included), taken by the binary into `name`: the normalised form states are compared in.
pub fn snapshot(lab: &Lab, name: &str) -> Outcome<String> {
    lab.write(
        "snap.yaml",
        &format!(
            "runsheet: 1\nname: snap\nsteps:\n  - id: snap\n    action: kong.snapshot\n    on: kong\n    with: {{path: {name}, include_credentials: true}}\n"
        ),
    )?;
    let run = lab.run(&[
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
    Ok(std::fs::read_to_string(lab.path().join(name))?)
}

/// `secret` shows neither in `run`'s output nor in any file of `lab` (journal, artefacts);
/// those files, for further checks.
#[track_caller]
pub fn assert_hidden(lab: &Lab, run: &Run, secret: &str) -> Outcome<Vec<(PathBuf, String)>> {
    assert!(
        !run.all().contains(secret),
        "the secret is masked in the output: {}",
        run.all()
    );
    let files = lab.artefacts()?;
    for (path, text) in &files {
        assert!(
            !text.contains(secret),
            "{} holds the secret",
            path.display()
        );
    }
    Ok(files)
}

/// A self-signed certificate for `name`: (certificate, key) PEM.
pub fn self_signed(name: &str) -> Outcome<(String, String)> {
    self_signed_for(&[name])
}

/// A self-signed certificate for every one of `names`: (certificate, key) PEM.
pub fn self_signed_for(names: &[&str]) -> Outcome<(String, String)> {
    let made = rcgen::generate_simple_self_signed(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
    Ok((made.cert.pem(), made.signing_key.serialize_pem()))
}

/// PEM text indented for a YAML block under a list item's key.
pub fn indent(pem: &str) -> String {
    pem.lines().map(|line| format!("      {line}\n")).collect()
}
