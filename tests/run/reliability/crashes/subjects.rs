//! The shipped playbooks that write, each in a lab of its own: the Kong ones on a copy of
//! the repository's lab with a standalone Kong twin (`ShippedLab::standalone`: its
//! counters and Admin API are readable while the binary runs), the Layer7 policy migration
//! between two in-process Layer7 twins seeded like the lab's `l7-uat` and `l7`.

use std::collections::BTreeMap;
use std::path::Path;

use runsheet_actions::layer7::restman::Bundle;
use runsheet_twin::layer7::{Layer7Config, Layer7Twin};
use serde_json::Value;

use super::layer7_nodes::Layer7Nodes;
use crate::kong_lab::{ROOT, ShippedLab};
use crate::lab::Lab;
use crate::traffic::{Outcome, delete, get, post};

/// A lab a playbook runs in, as the crash trials see it.
pub trait Target {
    /// The lab directory (the binary runs there; its state dir is `.runsheet/`).
    fn lab(&self) -> &Lab;
    /// `run PLAYBOOK --env ENV --set ...` of the uninterrupted run.
    fn run_args(&self) -> Vec<String>;
    /// The gateways' and nodes' state, normalised for comparison with another lab's.
    fn state(&self) -> Outcome<String>;
    /// Write requests the gateways received since the last reset, by `"METHOD /path"`.
    fn writes(&self) -> Outcome<BTreeMap<String, u64>>;
    /// Sets the gateways' counters to zero.
    fn reset_counters(&self) -> Outcome<()>;
    /// The command `runsheet ARGS` in the lab, with the secrets the playbook reads.
    fn command(&self, args: &[String]) -> std::process::Command {
        self.lab().command(args)
    }
    /// The id of the lab's run, once its directory exists.
    fn run_id(&self) -> Option<String> {
        self.lab().only_run()
    }
}

/// A shipped playbook and how to build a fresh lab for it.
pub struct Subject {
    /// The playbook's file name.
    pub name: &'static str,
    /// Builds a fresh lab, ready for the playbook's run.
    pub build: fn() -> Outcome<Box<dyn Target>>,
}

/// Every shipped playbook the matrix covers.
pub fn all() -> Vec<Subject> {
    vec![
        Subject {
            name: "kong-policy-migration",
            build: || {
                kong(
                    "kong-policy-migration",
                    &["state_file=examples/kong-lab-state.yaml", "approval=false"],
                    true,
                    |_| Ok(Extra::default()),
                )
            },
        },
        Subject {
            name: "kong-rolling-upgrade",
            build: || {
                kong(
                    "kong-rolling-upgrade",
                    &["target_version=3.9.1", "ready_delay=50ms"],
                    false,
                    |_| Ok(Extra::default()),
                )
            },
        },
        Subject {
            name: "kong-restart",
            build: || {
                kong("kong-restart", &["ready_timeout=20s"], false, |_| {
                    Ok(Extra::default())
                })
            },
        },
        Subject {
            name: "kong-scale",
            build: || {
                kong(
                    "kong-scale",
                    &["action=remove", r#"hosts=["dp3"]"#],
                    false,
                    |_| Ok(Extra::default()),
                )
            },
        },
        Subject {
            name: "kong-rollback",
            build: || {
                kong("kong-rollback", &["approval=false"], true, |lab| {
                    // The seed's state is the snapshot to go back to; bob is then
                    // deleted by hand, which the rollback restores.
                    let original = snapshot(lab, "original.yaml")?;
                    std::fs::write(lab.lab.path().join("original.yaml"), original)?;
                    let (status, body) =
                        delete(&format!("{}/consumers/bob", lab.twin()?.admin_url))?;
                    if status != 204 {
                        return Err(format!("deleting bob: {status} {body}").into());
                    }
                    Ok(Extra::default())
                })
            },
        },
        Subject {
            name: "kong-key-rotation",
            build: || {
                kong(
                    "kong-key-rotation",
                    &[
                        "consumer=alice",
                        "validation_path=/payments",
                        "key=NEW_ALICE_KEY",
                    ],
                    true,
                    |_| {
                        Ok(Extra {
                            secrets: vec![("NEW_ALICE_KEY".to_owned(), NEW_KEY.to_owned())],
                            ..Extra::default()
                        })
                    },
                )
            },
        },
        Subject {
            name: "kong-cert-rotation",
            build: || {
                kong(
                    "kong-cert-rotation",
                    &["sni=shop.lab", "key=NEW_CERT_KEY"],
                    true,
                    new_certificate,
                )
            },
        },
        Subject {
            name: "layer7-policy-migration",
            build: || Ok(Box::new(Layer7Migration::start(MIGRATION)?)),
        },
        Subject {
            name: "layer7-restart",
            build: || Ok(Box::new(Layer7Nodes::start("layer7-restart", &[])?)),
        },
        Subject {
            name: "layer7-patch-upgrade",
            build: || {
                Ok(Box::new(Layer7Nodes::start(
                    "layer7-patch-upgrade",
                    &["patch_id=CR03"],
                )?))
            },
        },
        Subject {
            name: "layer7-key-rotation",
            build: || Ok(Box::new(Layer7Migration::start(KEY_ROTATION)?)),
        },
    ]
}

/// The key `kong-key-rotation` gives alice in every lab (the secret `NEW_ALICE_KEY`).
const NEW_KEY: &str = "crash-matrix-alice-key-7Pq2";

/// What a Kong subject's preparation adds to its run.
#[derive(Default)]
struct Extra {
    /// More `--set`s.
    sets: Vec<String>,
    /// Secrets in the binary's environment: name, value.
    secrets: Vec<(String, String)>,
    /// Text of this lab's own making, replaced in its state before comparison: from, to.
    masks: Vec<(String, String)>,
}

/// A new certificate for every SNI of the lab's (shop.lab, localhost) with its key given
/// as the secret `NEW_CERT_KEY`; each lab makes its own, so the state names its lines by
/// what they are.
fn new_certificate(lab: &ShippedLab) -> Outcome<Extra> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["shop.lab".to_owned(), "localhost".to_owned()])?;
    let (cert, key) = (certified.cert.pem(), certified.signing_key.serialize_pem());
    let path = lab.lab.write("new.pem", &cert)?;
    let mut masks = Vec::new();
    for (what, pem) in [("cert", &cert), ("key", &key)] {
        for line in pem.lines().filter(|line| !line.starts_with("-----")) {
            masks.push((line.to_owned(), format!("(new {what} line)")));
        }
    }
    Ok(Extra {
        sets: vec![format!("cert={}", path.display())],
        secrets: vec![("NEW_CERT_KEY".to_owned(), key)],
        masks,
    })
}

/// A shipped Kong playbook in a copy of the lab with a standalone twin.
struct KongTarget {
    lab: ShippedLab,
    args: Vec<String>,
    /// Secrets in the binary's environment.
    secrets: Vec<(String, String)>,
    /// Replacements in the state (see [`Extra::masks`]).
    masks: Vec<(String, String)>,
    /// Whether the nodes take part (their versions and liveness are part of the state).
    gateway_only: bool,
}

/// A Kong subject: `playbook` with `sets` (and `artefacts=` in the lab), after `prepare`.
fn kong(
    playbook: &str,
    sets: &[&str],
    gateway_only: bool,
    prepare: fn(&ShippedLab) -> Outcome<Extra>,
) -> Outcome<Box<dyn Target>> {
    let lab = ShippedLab::standalone(|text| text, |text| text)?;
    let extra = prepare(&lab)?;
    let mut args = vec![
        "run".to_owned(),
        format!("playbooks/{playbook}.yaml"),
        "--env".to_owned(),
        "environments/lab.yaml".to_owned(),
        "--no-progress".to_owned(),
    ];
    let artefacts = format!("artefacts={}", lab.lab.path().join("artefacts").display());
    let snapshot = format!(
        "snapshot={}",
        lab.lab.path().join("original.yaml").display()
    );
    let mut all: Vec<&str> = sets.to_vec();
    if [
        "kong-policy-migration",
        "kong-rolling-upgrade",
        "kong-rollback",
    ]
    .contains(&playbook)
    {
        all.push(&artefacts);
    }
    if playbook == "kong-rollback" {
        all.push(&snapshot);
    }
    all.extend(extra.sets.iter().map(String::as_str));
    for set in all {
        args.extend(["--set".to_owned(), set.to_owned()]);
    }
    if !gateway_only {
        // The lab's nodes run before the playbook does, as a real estate's do: runsheet
        // starts them at its first command on the environment, here a plan.
        let mut plan = args.clone();
        plan[0] = "plan".to_owned();
        plan.retain(|arg| arg != "--no-progress");
        let planned = lab.runsheet(&plan.iter().map(String::as_str).collect::<Vec<_>>())?;
        if planned.code != Some(0) {
            return Err(format!("plan {playbook}: {}", planned.all()).into());
        }
    }
    Ok(Box::new(KongTarget {
        lab,
        args,
        secrets: extra.secrets,
        masks: extra.masks,
        gateway_only,
    }))
}

/// The whole gateway as `kong.snapshot` writes it (credentials included), taken by the
/// binary through an environment that names only the twin.
fn snapshot(lab: &ShippedLab, name: &str) -> Outcome<String> {
    let twin = lab.twin()?;
    lab.lab.write(
        ".snap-env.yaml",
        &format!(
            "runsheet: 1\nname: snap\ngateways:\n  kong: {}\n",
            twin.gateway()
        ),
    )?;
    lab.lab.write(
        ".snap.yaml",
        &format!(
            "runsheet: 1\nname: snap\nsteps:\n  - id: snap\n    action: kong.snapshot\n    on: kong\n    with: {{path: {name}, include_credentials: true}}\n"
        ),
    )?;
    let run = lab.runsheet(&[
        "run",
        ".snap.yaml",
        "--env",
        ".snap-env.yaml",
        "--state-dir",
        ".snap-state",
    ])?;
    if run.code != Some(0) {
        return Err(format!("snapshot: {}", run.all()).into());
    }
    Ok(std::fs::read_to_string(lab.lab.path().join(name))?)
}

/// A snapshot without what differs between two labs doing the same thing: generated ids,
/// keys and times; its lines sorted (entities are listed by id).
fn normalised(snapshot: &str) -> String {
    let mut lines: Vec<&str> = snapshot
        .lines()
        .filter(|line| {
            let key = line.trim_start().trim_start_matches("- ");
            !["id:", "created_at:", "updated_at:", "provision_key:", "# "]
                .iter()
                .any(|prefix| key.starts_with(prefix))
        })
        .collect();
    lines.sort_unstable();
    lines.join("\n")
}

/// `snapshot` with each expiry (`ttl:` as a Unix time) written as whole hours from now
/// and each time stamp of a tag masked: two labs' runs seconds apart set the same ones.
fn expiries_from_now(snapshot: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0);
    let relative = snapshot
        .lines()
        .map(|line| {
            let (indent, rest) = line.split_at(line.len() - line.trim_start().len());
            match rest
                .strip_prefix("ttl: ")
                .and_then(|n| n.parse::<i64>().ok())
            {
                Some(at) if at > 1_000_000_000 => {
                    format!(
                        "{indent}ttl: {}h from now",
                        (at - now + 1800).div_euclid(3600)
                    )
                }
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    // The rotation's tags name the second it ran: `...-20261127T105425Z`.
    match regex::Regex::new(r"-\d{8}T\d{6}Z\b") {
        Ok(stamp) => stamp.replace_all(&relative, "-(time)").into_owned(),
        Err(_) => relative,
    }
}

/// Write requests in a `/_twin/counters` answer.
pub fn counted_writes(counters: &Value) -> BTreeMap<String, u64> {
    counters["requests"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| {
            ["POST ", "PUT ", "PATCH ", "DELETE "]
                .iter()
                .any(|m| key.starts_with(m))
        })
        // Readiness probes and GraphQL queries (Graphman answers reads on POST) change nothing.
        .filter(|(key, _)| !key.contains("/status/ready") && key.as_str() != "POST /graphman")
        .map(|(key, count)| (key.clone(), count.as_u64().unwrap_or(0)))
        .collect()
}

impl Target for KongTarget {
    fn lab(&self) -> &Lab {
        &self.lab.lab
    }

    fn run_args(&self) -> Vec<String> {
        self.args.clone()
    }

    fn command(&self, args: &[String]) -> std::process::Command {
        let mut command = self.lab.lab.command(args);
        for (name, value) in &self.secrets {
            command.env(name, value);
        }
        command
    }

    fn state(&self) -> Outcome<String> {
        let mut state = snapshot(&self.lab, "state.yaml")?;
        for (from, to) in &self.masks {
            state = state.replace(from.as_str(), to);
        }
        let mut state = expiries_from_now(&state);
        // The nodes' ports differ from lab to lab.
        for (n, address) in self.lab.nodes.addresses.iter().enumerate() {
            state = state.replace(address.as_str(), &format!("dp{}", n + 1));
        }
        let mut state = normalised(&state);
        if !self.gateway_only {
            for n in 0..self.lab.nodes.dirs.len() {
                let running = self.lab.pid(n).is_some();
                let reported = if running {
                    self.lab.reported(n).unwrap_or_else(|e| format!("({e})"))
                } else {
                    "(stopped)".to_owned()
                };
                state.push_str(&format!(
                    "\nnode {n}: installed {}, running {running}, reports {reported}",
                    self.lab.installed(n)
                ));
            }
        }
        Ok(state)
    }

    fn writes(&self) -> Outcome<BTreeMap<String, u64>> {
        let (status, body) = get(&format!("{}/_twin/counters", self.lab.twin()?.admin_url))?;
        if status != 200 {
            return Err(format!("counters: {status} {body}").into());
        }
        Ok(counted_writes(&serde_json::from_str(&body)?))
    }

    fn reset_counters(&self) -> Outcome<()> {
        let (status, body) = post(&format!("{}/_twin/reset", self.lab.twin()?.admin_url), "{}")?;
        if !(200..300).contains(&status) {
            return Err(format!("reset: {status} {body}").into());
        }
        Ok(())
    }
}

/// The Layer7 policy migration's playbook.
const MIGRATION: &str = "layer7-policy-migration";
/// The Layer7 key rotation's playbook.
const KEY_ROTATION: &str = "layer7-key-rotation";

/// `layer7-policy-migration` from a twin seeded like `l7-uat` to one seeded like `l7`, or
/// `layer7-key-rotation` on the latter (its HTTPS listen ports served).
struct Layer7Migration {
    /// The playbook's name.
    playbook: &'static str,
    runtime: tokio::runtime::Runtime,
    /// Kept serving while the lab lives.
    _source: Layer7Twin,
    target: Layer7Twin,
    lab: Lab,
}

/// A lab seed of environments/.
fn seed(name: &str) -> std::io::Result<String> {
    std::fs::read_to_string(Path::new(ROOT).join("environments").join(name))
}

impl Layer7Migration {
    fn start(playbook: &'static str) -> Outcome<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let config = Layer7Config {
            control: true,
            ..Layer7Config::default()
        };
        let source = runtime.block_on(Layer7Twin::start(config.clone()))?;
        source.seed_bundle(&seed("lab-layer7-uat.xml")?)?;
        let mut target = runtime.block_on(Layer7Twin::start(config))?;
        target.seed_bundle(&seed("lab-layer7.xml")?)?;
        if playbook == KEY_ROTATION {
            runtime.block_on(target.serve_listen_ports())?;
        }
        let lab = Lab::new()?;
        lab.write(
            "env.yaml",
            &format!(
                "runsheet: 1\nname: l7-migration\ngateways:\n  \
                 l7-uat: {{type: layer7, url: \"{}\", username: admin, password: password}}\n  \
                 l7: {{type: layer7, url: \"{}\", username: admin, password: password}}\n",
                source.url(),
                target.url()
            ),
        )?;
        Ok(Self {
            playbook,
            runtime,
            _source: source,
            target,
            lab,
        })
    }

    /// A request to the target twin with the administrator's credentials; the body.
    fn call(&self, method: reqwest::Method, path: &str) -> Outcome<String> {
        let url = format!("{}{path}", self.target.url());
        Ok(self.runtime.block_on(async {
            reqwest::Client::new()
                .request(method, &url)
                .basic_auth("admin", Some("password"))
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        })?)
    }
}

impl Target for Layer7Migration {
    fn lab(&self) -> &Lab {
        &self.lab
    }

    fn run_args(&self) -> Vec<String> {
        let playbook = Path::new(ROOT).join(format!("playbooks/{}.yaml", self.playbook));
        if self.playbook == KEY_ROTATION {
            return [
                "run",
                &playbook.display().to_string(),
                "--env",
                "env.yaml",
                "--no-progress",
                "--set",
                "alias=ssl-2026",
                "--set",
                "dn=CN=gw.lab.internal",
            ]
            .map(str::to_owned)
            .to_vec();
        }
        [
            "run",
            &playbook.display().to_string(),
            "--env",
            "env.yaml",
            "--no-progress",
            "--set",
            r#"services=["/orders","/inventory"]"#,
            "--set",
            r#"cluster_properties=["inventory.cache.ttl"]"#,
            "--set",
            r#"smoke_paths=["/orders","/inventory"]"#,
            "--set",
            "approval=false",
            "--set",
            &format!("artefacts={}", self.lab.path().join("artefacts").display()),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn state(&self) -> Outcome<String> {
        let text = self.call(reqwest::Method::GET, "/restman/1.0/bundle?all=true")?;
        let xml = Bundle::parse(&text)?.normalised()?.to_xml()?;
        // Each twin makes its own default SSL key at start, and the key rotation its new
        // key: their certificates and serial numbers are this lab's own (the keys' alias,
        // subject, validity and which port uses which key are compared). The key
        // rotation's twin serves its listen ports on loopback ports of its own.
        let served = self.playbook == KEY_ROTATION;
        Ok(xml
            .lines()
            .filter(|line| !line.contains("<l7:Encoded>") && !line.contains("<l7:SerialNumber>"))
            .map(
                |line| match line.trim_start().starts_with("<l7:Port>") && served {
                    true => "<l7:Port>(served on loopback)</l7:Port>",
                    false => line,
                },
            )
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn writes(&self) -> Outcome<BTreeMap<String, u64>> {
        let body = self.call(reqwest::Method::GET, "/_twin/counters")?;
        Ok(counted_writes(&serde_json::from_str(&body)?))
    }

    fn reset_counters(&self) -> Outcome<()> {
        self.call(reqwest::Method::POST, "/_twin/reset")?;
        Ok(())
    }
}
