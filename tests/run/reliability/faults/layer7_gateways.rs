//! The Layer7 gateway playbooks in the fault matrix: layer7-policy-migration (a source and
//! a target twin) and layer7-key-rotation (one twin serving its HTTPS listen ports), the
//! twins running in this test process on loopback so that faults go to their `/_twin`
//! while the binary runs. Restored = the target's normalised restman export
//! (`bundle?all=true`) equal to its export before the run.

use std::path::Path;

use runsheet_actions::layer7::restman::Bundle;
use runsheet_twin::layer7::{Layer7Config, Layer7Twin};
use serde_json::Value;

use super::layer7::{Kind, REQUEST_TIMEOUT, Row, Trial};
use crate::kong_lab::ROOT;
use crate::lab::{Lab, Run};
use crate::traffic::Outcome;

/// The administrator's credentials of the twins.
const USER: (&str, &str) = ("admin", "password");

/// A Layer7 gateway playbook of the matrix.
struct Gateway {
    /// Its file under playbooks/.
    file: &'static str,
    /// The `--set`s of a run.
    sets: &'static [&'static str],
    /// Whether it reads a source gateway `l7-uat` too.
    source: bool,
}

/// The Layer7 playbooks that write to a gateway.
const GATEWAYS: &[Gateway] = &[
    Gateway {
        file: "layer7-policy-migration.yaml",
        sets: &[
            r#"services=["/orders","/inventory"]"#,
            r#"cluster_properties=["inventory.cache.ttl"]"#,
            r#"smoke_paths=["/orders","/inventory"]"#,
            "approval=false",
        ],
        source: true,
    },
    Gateway {
        file: "layer7-key-rotation.yaml",
        sets: &["alias=ssl-2026", "dn=CN=gw.lab.internal"],
        source: false,
    },
];

/// The twins of one trial and the lab directory whose environment points at them.
struct GatewayLab {
    /// The twins' runtime (kept alive with them).
    runtime: tokio::runtime::Runtime,
    /// The target `l7`.
    target: Layer7Twin,
    /// The source `l7-uat`, for a migration.
    _source: Option<Layer7Twin>,
    /// The directory.
    lab: Lab,
}

/// A lab seed from environments/.
fn seed(name: &str) -> std::io::Result<String> {
    std::fs::read_to_string(Path::new(ROOT).join("environments").join(name))
}

impl GatewayLab {
    /// Fresh twins seeded like the lab's `l7` (listen ports served) and `l7-uat`.
    fn new(gateway: &Gateway) -> Outcome<GatewayLab> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let config = Layer7Config {
            control: true,
            ..Layer7Config::default()
        };
        let mut target = runtime.block_on(Layer7Twin::start(config.clone()))?;
        target.seed_bundle(&seed("lab-layer7.xml")?)?;
        runtime.block_on(target.serve_listen_ports())?;
        let source = if gateway.source {
            let source = runtime.block_on(Layer7Twin::start(config))?;
            source.seed_bundle(&seed("lab-layer7-uat.xml")?)?;
            Some(source)
        } else {
            None
        };
        let lab = Lab::new()?;
        let mut environment = format!(
            "runsheet: 1\nname: l7-faults\ngateways:\n  \
             l7: {{type: layer7, url: \"{}\", request_timeout: {REQUEST_TIMEOUT}, username: admin, password: password}}\n",
            target.url()
        );
        if let Some(source) = &source {
            environment.push_str(&format!(
                "  l7-uat: {{type: layer7, url: \"{}\", request_timeout: {REQUEST_TIMEOUT}, username: admin, password: password}}\n",
                source.url()
            ));
        }
        lab.write("env.yaml", &environment)?;
        Ok(GatewayLab {
            runtime,
            target,
            _source: source,
            lab,
        })
    }

    /// `runsheet run` of the playbook with its sets, artefacts in the lab.
    fn run(&self, gateway: &Gateway) -> std::io::Result<Run> {
        let playbook = Path::new(ROOT).join("playbooks").join(gateway.file);
        let artefacts = format!("artefacts={}", self.lab.path().join("artefacts").display());
        let mut args = vec![
            "run".to_owned(),
            playbook.display().to_string(),
            "--env".to_owned(),
            "env.yaml".to_owned(),
            "--no-progress".to_owned(),
        ];
        for set in gateway
            .sets
            .iter()
            .copied()
            .chain(gateway.source.then_some(artefacts.as_str()))
        {
            args.extend(["--set".to_owned(), set.to_owned()]);
        }
        self.lab.run(&args)
    }

    /// The target's whole state as a normalised restman bundle.
    fn state(&self) -> Outcome<String> {
        let url = format!("{}/restman/1.0/bundle?all=true", self.target.url());
        let text = self.runtime.block_on(async {
            reqwest::Client::new()
                .get(&url)
                .basic_auth(USER.0, Some(USER.1))
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        })?;
        Ok(Bundle::parse(&text)?.normalised()?.to_xml()?)
    }

    /// `METHOD /_twin/PATH` on the target with `body`; the answer's JSON (null if none).
    fn control(&self, method: &str, path: &str, body: &Value) -> Outcome<Value> {
        let url = format!("{}/_twin/{path}", self.target.url());
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let answer = self.runtime.block_on(async {
            reqwest::Client::new()
                .request(method, &url)
                .basic_auth(USER.0, Some(USER.1))
                .json(body)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        })?;
        Ok(serde_json::from_str(&answer).unwrap_or(Value::Null))
    }

    /// Committed writes on the target so far.
    fn writes(&self) -> Outcome<usize> {
        let counters = self.control("GET", "counters", &Value::Null)?;
        let writes = counters["writes"]
            .as_u64()
            .ok_or_else(|| format!("no writes in {counters}"))?;
        Ok(usize::try_from(writes)?)
    }
}

/// One trial: fresh twins, fault `kind` at the target's `n`th write, the run, the verdict.
fn trial(gateway: &Gateway, kind: Kind, n: usize) -> Outcome<Trial> {
    let lab = GatewayLab::new(gateway)?;
    let before = lab.state()?;
    let fault = kind
        .twin_fault(n)
        .ok_or("no host commands on a Layer7 gateway")?;
    lab.control("POST", "faults", &fault)?;
    let run = lab.run(gateway)?;
    kind.settle();
    lab.control("DELETE", "faults", &Value::Null)?;
    let after = lab.state()?;
    let mut trial = Trial::judge(kind, &run, before == after, None);
    if let Err(why) = &mut trial.verdict {
        // What the export has now that it had not before (names and ids), in short.
        let new: Vec<&str> = after
            .lines()
            .filter(|line| !before.contains(*line) && line.contains("<l7:Name>"))
            .take(3)
            .collect();
        why.push_str(&format!("; new in the export: {new:?}; {}", run.all()));
    }
    Ok(trial)
}

/// The rows of the Layer7 gateway playbooks; `below(k)` draws a number in 0..k.
pub fn rows(below: &mut dyn FnMut(usize) -> usize) -> Outcome<Vec<Row>> {
    let mut rows = Vec::new();
    for gateway in GATEWAYS.iter().filter(|g| super::layer7::selected(g.file)) {
        let lab = GatewayLab::new(gateway)?;
        let run = lab.run(gateway)?;
        if run.code != Some(0) {
            return Err(format!(
                "{}: the run without faults failed: {}",
                gateway.file,
                run.all()
            )
            .into());
        }
        let writes = lab.writes()?;
        drop(lab);
        let kinds = [
            Kind::Status503,
            Kind::Dropped,
            Kind::LostAnswer,
            Kind::UndoFails,
            Kind::Late,
        ];
        let every: Vec<(Kind, usize)> = kinds
            .iter()
            .flat_map(|&kind| (1..=writes).map(move |n| (kind, n)))
            .collect();
        let description = format!("{writes} gateway writes");
        rows.extend(Row::sample(
            gateway.file,
            &description,
            &every,
            below,
            |kind, n| trial(gateway, kind, n),
        )?);
    }
    Ok(rows)
}
