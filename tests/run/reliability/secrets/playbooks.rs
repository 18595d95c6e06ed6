//! Secrets in the artefacts of the shipped playbooks the main scan does not run: the Kong
//! certificate rotation (its new private key given as a secret), restart, scale, rollback
//! and rolling upgrade (key-auth traffic checks with the lab's smoke key, the gateway's
//! credentials in their snapshots), and the four Layer7 playbooks against the lab's Layer7
//! twins and node processes, whose administrator password is a distinctive value (the
//! nodes' one given to the playbooks through `secret()`), with a patch upgrade that fails
//! on the last node and is rolled back. The same scan as the main test: zero hits outside
//! what holds the gateways' own credentials by design, the nodes' own logs (the Layer7
//! twin prints its login when it starts) and a run's copy of the environment file, which
//! holds the credentials the file names literally (the in-process Layer7 twins take only
//! literal ones), never a secret's value.

use std::collections::BTreeMap;
use std::path::Path;

use super::{GATEWAY_HELD, SEEDED, Tally, files, kind, scan_for};
use crate::kong_lab::ShippedLab;
use crate::lab::{Lab, Run, TestResult};
use crate::layer7_nodes::NodeLab;
use crate::reliability::report;
use crate::traffic::Outcome;

/// One run of a playbook: what it is, its arguments after the verb, its expected exit.
type Planned = (String, Vec<String>, i32);

/// `items` as owned strings.
fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// `run PLAYBOOK --env ENV --set S...` with a report directory of its own.
fn run_args(playbook: &str, sets: &[String], report: &str) -> Vec<String> {
    let mut args = strings(&[
        "run",
        playbook,
        "--env",
        "environments/lab.yaml",
        "--report-dir",
        &format!("reports/{report}"),
    ]);
    for set in sets {
        args.extend(["--set".to_owned(), set.clone()]);
    }
    args
}

/// Runs each of `planned` in `lab` with `secrets` in its environment; asserts its exit.
fn run_all(
    lab: &Lab,
    planned: Vec<Planned>,
    secrets: &[(&str, &str)],
) -> Outcome<Vec<(String, Run)>> {
    let mut outcomes = Vec::new();
    for (what, args, expected) in planned {
        let mut command = lab.command(&args);
        for (name, value) in secrets {
            command.env(name, value);
        }
        let run = lab.run_with(command)?;
        assert_eq!(run.code, Some(expected), "{what}: {}", run.all());
        outcomes.push((what, run));
    }
    Ok(outcomes)
}

/// Scans the runs' output and every artefact under the lab (its kind by `kind_of`) for
/// `secrets`; prints the table under `title`; asserts zero hits outside the `held`
/// kinds, and there only of the secret names listed with the kind; asserts `scanned`
/// kinds were scanned.
fn scan_and_check(
    title: &str,
    lab: &Lab,
    outcomes: &[(String, Run)],
    secrets: &[(&str, &str)],
    kind_of: impl Fn(&Path) -> Option<&'static str>,
    held: &[(&str, &[&str])],
    scanned: &[&str],
) -> TestResult {
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for (what, run) in outcomes {
        let out = format!("{what} stdout");
        scan_for(
            secrets,
            tallies.entry("stdout").or_default(),
            &out,
            run.stdout.as_bytes(),
        );
        let err = format!("{what} stderr");
        scan_for(
            secrets,
            tallies.entry("stderr").or_default(),
            &err,
            run.stderr.as_bytes(),
        );
    }
    let mut all = Vec::new();
    files(lab.path(), &mut all)?;
    for path in all {
        let relative = path.strip_prefix(lab.path())?;
        if let Some(kind) = kind_of(relative) {
            let origin = relative.display().to_string();
            scan_for(
                secrets,
                tallies.entry(kind).or_default(),
                &origin,
                &std::fs::read(&path)?,
            );
        }
    }
    let rows: Vec<Vec<String>> = tallies
        .iter()
        .map(|(kind, tally)| {
            vec![
                (*kind).to_owned(),
                tally.files.to_string(),
                tally.bytes.to_string(),
                tally.hits.len().to_string(),
            ]
        })
        .collect();
    report(
        title,
        &["artefact kind", "files scanned", "bytes", "hits"],
        &rows,
    );
    for (kind, tally) in &tallies {
        if let Some((_, names)) = held.iter().find(|(held, _)| held == kind) {
            for hit in &tally.hits {
                assert!(
                    names
                        .iter()
                        .any(|name| hit.contains(&format!(": {name} as"))),
                    "{kind} holds a secret the gateway never held: {hit}"
                );
            }
        } else {
            assert!(tally.hits.is_empty(), "{kind}: {:#?}", tally.hits);
        }
    }
    for kind in scanned {
        assert!(
            tallies.get(kind).is_some_and(|t| t.files > 0),
            "no {kind} was scanned"
        );
    }
    Ok(())
}

#[test]
fn no_secret_shows_in_the_artefacts_of_the_kong_node_and_certificate_playbooks() -> TestResult {
    let lab = ShippedLab::embedded(
        |env| env,
        |mut seed| {
            for (seeded, _, value) in SEEDED {
                seed = seed.replace(seeded, value);
            }
            seed
        },
    )?;
    // It covers every SNI of the certificate it replaces (lab-seed.yaml's).
    let certified =
        rcgen::generate_simple_self_signed(vec!["shop.lab".to_owned(), "localhost".to_owned()])?;
    let pem = certified.signing_key.serialize_pem();
    let cert = lab.lab.write("new.pem", &certified.cert.pem())?;
    // A line of the key's body, found alone if the key is cut or re-wrapped.
    let line = pem.lines().nth(2).ok_or("a short key")?.to_owned();
    let mut secrets: Vec<(&str, &str)> = SEEDED
        .iter()
        .map(|(_, name, value)| (*name, *value))
        .collect();
    secrets.extend([
        ("NEW_CERT_KEY", pem.as_str()),
        ("NEW_CERT_KEY (one line)", line.as_str()),
    ]);
    let artefacts = format!("artefacts={}", lab.lab.path().join("artefacts").display());
    let sets = |items: &[&str]| strings(items);
    let mut planned: Vec<Planned> = vec![
        (
            "kong-cert-rotation: success".to_owned(),
            run_args(
                "playbooks/kong-cert-rotation.yaml",
                &sets(&[
                    "sni=shop.lab",
                    &format!("cert={}", cert.display()),
                    "key=NEW_CERT_KEY",
                ]),
                "cert",
            ),
            0,
        ),
        (
            "kong-restart: success".to_owned(),
            run_args(
                "playbooks/kong-restart.yaml",
                &sets(&["ready_timeout=20s", "traffic_apikey=LAB_SMOKE_KEY"]),
                "restart",
            ),
            0,
        ),
    ];
    planned.extend([
        (
            "kong-rolling-upgrade: success".to_owned(),
            run_args(
                "playbooks/kong-rolling-upgrade.yaml",
                &sets(&["target_version=3.9.1", "ready_delay=50ms", &artefacts]),
                "upgrade",
            ),
            0,
        ),
        (
            "kong-rollback: success".to_owned(),
            run_args(
                "playbooks/kong-rollback.yaml",
                &sets(&[
                    "approval=false",
                    "mode=version",
                    "version=3.9.0",
                    "ready_timeout=20s",
                    "traffic_key=LAB_SMOKE_KEY",
                    &artefacts,
                ]),
                "rollback",
            ),
            0,
        ),
        (
            "kong-scale: success".to_owned(),
            run_args(
                "playbooks/kong-scale.yaml",
                &sets(&[
                    "action=remove",
                    r#"hosts=["dp3"]"#,
                    "ready_timeout=20s",
                    "traffic_apikey=LAB_SMOKE_KEY",
                ]),
                "scale",
            ),
            0,
        ),
    ]);
    let outcomes = run_all(&lab.lab, planned, &secrets)?;
    let names: Vec<&str> = secrets.iter().map(|(name, _)| *name).collect();
    let scanned = [
        "stdout",
        "state dir: journal",
        "report dir: report.json",
        "snapshots with include_credentials: true",
    ];
    scan_and_check(
        "Secrets: Kong certificate rotation and node playbooks, hits by artefact kind",
        &lab.lab,
        &outcomes,
        &secrets,
        kind,
        // The gateway holds the seed's credentials and the new certificate's key.
        &GATEWAY_HELD.map(|kind| (kind, names.as_slice())),
        &scanned,
    )
}

/// The Layer7 administrator passwords of this test: the nodes' (given to runsheet as the
/// secret `L7_ADMIN_PASSWORD`) and the in-process twins' `l7` and `l7-uat` (the lab's
/// environment names them literally: an in-process twin takes literal credentials only).
const NODE_PASSWORD: &str = "RSK-l7-node-admin-Tf58wKc2";
/// See [`NODE_PASSWORD`].
const TWIN_PASSWORD: &str = "RSK-l7-twin-admin-Bv17nQe4";

/// A Layer7 node's own log: the twin prints its login there when it starts.
const NODE_LOG: &str = "Layer7 nodes' own logs (the twin prints its login)";

/// A run's copy of the environment file as written (literal credentials included).
const ENVIRONMENT_COPY: &str = "state dir: environment copy (as written)";

/// The name the scan gives the in-process twins' literal password.
const TWINS: &str = "l7 twins' literal password";

/// The kind of a file of the Layer7 lab, or `None` for its inputs.
fn layer7_kind(relative: &Path) -> Option<&'static str> {
    let text = relative.to_string_lossy();
    if text.starts_with(".lab/layer7/") && text.ends_with("node.log") {
        return Some(NODE_LOG);
    }
    if text.starts_with(".runsheet/runs/") && text.ends_with("/environment.yaml") {
        return Some(ENVIRONMENT_COPY);
    }
    kind(relative)
}

#[test]
fn no_secret_shows_in_the_artefacts_of_the_layer7_playbooks() -> TestResult {
    // The nodes start with NODE_PASSWORD (a wrapper gives `twin layer7` its --password:
    // the lab's node script passes none).
    let scratch = Lab::new()?;
    let wrapper = scratch.write(
        "runsheet-node",
        &format!(
            "#!/bin/sh\nexec '{}' \"$@\" --password '{NODE_PASSWORD}'\n",
            env!("CARGO_BIN_EXE_runsheet")
        ),
    )?;
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()?;
    let literal = format!("username: admin, password: {NODE_PASSWORD}}}");
    let twin_login = format!("control: true}}, username: admin, password: {TWIN_PASSWORD}}}");
    let failing = "patch_command: 'f() { sh environments/lab-layer7-node.sh patch .lab/layer7/l7n3 \"$1\"; echo patchcli: verification failed >&2; exit 1; }; f'";
    let original = "patch_command: sh environments/lab-layer7-node.sh patch .lab/layer7/l7n3";
    let lab = NodeLab::started(|text| {
        text.replace(
            env!("CARGO_BIN_EXE_runsheet"),
            &wrapper.display().to_string(),
        )
        .replace("username: admin, password: password}", &literal)
        .replace("control: true}}", &twin_login)
    })?;
    // The start-up run's state (its environment copy names the nodes' password literally,
    // as the test wrote it) is not a subject of the scan.
    let start = lab
        .lab
        .only_run()
        .ok_or("the nodes' start-up run left no run")?;
    std::fs::remove_dir_all(lab.lab.path().join(".runsheet/runs").join(start))?;
    let environment = lab.lab.path().join("environments/lab.yaml");
    let text = std::fs::read_to_string(&environment)?;
    if !text.contains(&literal) || !text.contains(&twin_login) || !text.contains(original) {
        return Err("environments/lab.yaml changed: update this test's edits".into());
    }
    // From here on the nodes' password reaches runsheet only as a secret.
    let secret = text.replace(
        &literal,
        "username: admin, password: \"{{ secret('L7_ADMIN_PASSWORD') }}\"}",
    );
    lab.lab
        .write("environments/lab.yaml", &secret.replace(original, failing))?;
    let secrets = [("L7_ADMIN_PASSWORD", NODE_PASSWORD), (TWINS, TWIN_PASSWORD)];
    let playbook = |name: &str| format!("{}/playbooks/{name}.yaml", crate::kong_lab::ROOT);
    let artefacts = format!("artefacts={}", lab.lab.path().join("artefacts").display());
    let patch = |report: &str| {
        run_args(
            &playbook("layer7-patch-upgrade"),
            &strings(&["patch_id=CR03", "boot_timeout=20s"]),
            report,
        )
    };
    let mut outcomes = run_all(
        &lab.lab,
        vec![
            (
                "layer7-key-rotation: success".to_owned(),
                run_args(
                    &playbook("layer7-key-rotation"),
                    &strings(&["alias=ssl-2026", "dn=CN=gw.lab.internal"]),
                    "l7-key",
                ),
                0,
            ),
            (
                "layer7-patch-upgrade: last node fails, rolled back".to_owned(),
                patch("l7-patch-failed"),
                1,
            ),
        ],
        &secrets,
    )?;
    let failed = outcomes
        .last()
        .map(|(_, run)| run.all())
        .unwrap_or_default();
    assert!(
        failed.contains("verification failed") && failed.contains("rolled back"),
        "the patch failed on l7n3 and was rolled back: {failed}"
    );
    lab.lab.write("environments/lab.yaml", &secret)?;
    outcomes.extend(run_all(
        &lab.lab,
        vec![
            (
                "layer7-patch-upgrade: success".to_owned(),
                patch("l7-patch"),
                0,
            ),
            (
                "layer7-restart: success".to_owned(),
                run_args(
                    &playbook("layer7-restart"),
                    &strings(&["boot_timeout=20s"]),
                    "l7-restart",
                ),
                0,
            ),
            (
                "layer7-policy-migration: success".to_owned(),
                run_args(
                    &playbook("layer7-policy-migration"),
                    &strings(&[
                        r#"services=["/orders","/inventory"]"#,
                        r#"cluster_properties=["inventory.cache.ttl"]"#,
                        r#"smoke_paths=["/orders","/inventory"]"#,
                        "approval=false",
                        &artefacts,
                    ]),
                    "l7-migration",
                ),
                0,
            ),
        ],
        &secrets,
    )?);
    scan_and_check(
        "Secrets: Layer7 playbooks (administrator passwords), hits by artefact kind",
        &lab.lab,
        &outcomes,
        &secrets,
        layer7_kind,
        &[
            (NODE_LOG, &["L7_ADMIN_PASSWORD"]),
            (ENVIRONMENT_COPY, &[TWINS]),
        ],
        &[
            "stdout",
            "state dir: journal",
            "report dir: report.json",
            NODE_LOG,
        ],
    )
}
