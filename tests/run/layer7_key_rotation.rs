//! `playbooks/layer7-key-rotation.yaml` run by the real binary against the lab
//! environment (`environments/lab.yaml`: embedded Layer7 twins serving their HTTPS listen
//! ports on loopback). After each run, the twin's saved state is loaded into a fresh
//! in-process twin whose listen ports are served again, and a TLS handshake shows which
//! certificate the port presents: the new one after a successful run, the old one after
//! a failure that rolled back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use runsheet_actions::kong::certificate_check::sha256_hex;
use runsheet_actions::served_certificate::{TlsEndpoint, served_leaf};
use runsheet_twin::layer7::{Layer7Config, Layer7Twin};

use crate::lab::{Lab, Run, TestResult};

/// The traffic port the playbook rotates by default.
const PORT: &str = "Default HTTPS (8443)";

/// A file of the repository.
fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A copy of the lab's environments in `lab`, without the Kong data-plane nodes (runsheet
/// would start them; this playbook does not use them).
fn lab_environment(lab: &Lab) -> std::io::Result<PathBuf> {
    let copy = lab.path().join("environments");
    crate::kong_lab::copy_tree(&repository("environments"), &copy)?;
    let path = copy.join("lab.yaml");
    let text = std::fs::read_to_string(&path)?;
    std::fs::write(&path, crate::kong_lab::without_kong_nodes(&text))?;
    Ok(path)
}

/// Runs `runsheet VERB` of the playbook against the lab environment with `sets`.
fn playbook(lab: &Lab, verb: &str, sets: &[&str]) -> std::io::Result<Run> {
    let playbook = repository("playbooks/layer7-key-rotation.yaml");
    let environment = lab_environment(lab)?;
    let mut args = vec![
        verb.to_owned(),
        playbook.display().to_string(),
        "--env".to_owned(),
        environment.display().to_string(),
    ];
    if verb == "run" {
        args.push("--no-progress".to_owned());
    }
    for set in sets {
        args.push("--set".to_owned());
        args.push((*set).to_owned());
    }
    lab.run(&args)
}

/// What listen port `PORT` serves when the saved state of gateway `l7` of run `id` is
/// loaded into a new twin.
struct Served {
    /// SHA-256 (hex) of the leaf certificate a handshake shows.
    leaf: String,
    /// The key alias the port names in the state.
    alias: String,
    /// SHA-256 (hex) of that key's certificate in the state.
    alias_certificate: String,
}

/// Loads the saved state of gateway `l7` of run `id` into a new twin, serves its listen
/// ports and shakes hands with `PORT`.
fn served_after(lab: &Lab, id: &str) -> Result<Served, Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let path = lab
        .path()
        .join(".runsheet/runs")
        .join(id)
        .join("twins/l7.json");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let store = &state["store"];
    let tls = store["listen_ports"]["rows"]
        .as_object()
        .and_then(|rows| rows.values().find(|row| row["entity"]["name"] == PORT))
        .map(|row| row["entity"]["tls"].clone())
        .ok_or("the saved state has no such listen port")?;
    let keystore = tls["keystore_id"].as_str().ok_or("no keystore")?;
    let alias = tls["key_alias"].as_str().ok_or("no key alias")?.to_owned();
    let certificate =
        store["private_keys"]["rows"][format!("{keystore}:{alias}")]["entity"]["chain"][0]
            .as_str()
            .ok_or("the port's key is not in the saved state")?;
    let alias_certificate =
        sha256_hex(&base64::engine::general_purpose::STANDARD.decode(certificate)?);
    let runtime = tokio::runtime::Runtime::new()?;
    let leaf = runtime.block_on(async {
        let mut twin = Layer7Twin::start(Layer7Config::default()).await?;
        twin.load(&state)?;
        let served = twin.serve_listen_ports().await?;
        let port = served
            .iter()
            .find(|port| port.name == PORT)
            .ok_or("the port is not served")?;
        let endpoint = TlsEndpoint {
            host: "127.0.0.1".to_owned(),
            port: port.address.port(),
        };
        let leaf = served_leaf(&endpoint, "127.0.0.1", lab.path(), Duration::from_secs(5)).await?;
        Ok::<_, Box<dyn std::error::Error>>(sha256_hex(&leaf))
    })?;
    Ok(Served {
        leaf,
        alias,
        alias_certificate,
    })
}

/// The SHA-256 the playbook's last step logs (`..., sha256 <hex>, expires ...`).
fn logged_thumbprint(run: &Run) -> Option<String> {
    let line = run.stdout.lines().find(|line| line.contains("serve key"))?;
    let rest = line.split("sha256 ").nth(1)?;
    Some(rest.split(',').next()?.trim().to_owned())
}

#[test]
fn the_rotation_runs_in_the_lab_and_the_port_serves_the_new_certificate() -> TestResult {
    let lab = Lab::new()?;
    let run = playbook(&lab, "run", &["alias=ssl-2026", "dn=CN=gw.lab.internal"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout
            .contains("ok      verify[Default HTTPS (8443)].handshake"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("ok      smoke"), "{}", run.all());
    let thumbprint = logged_thumbprint(&run).ok_or("no thumbprint logged")?;
    let id = run.run_id().ok_or("no run id")?;
    let served = served_after(&lab, &id)?;
    assert_eq!(served.leaf, thumbprint);
    assert_eq!(served.alias, "ssl-2026");
    assert_eq!(served.alias_certificate, thumbprint);
    Ok(())
}

#[test]
fn the_plan_shows_the_switch_and_writes_nothing() -> TestResult {
    let lab = Lab::new()?;
    let run = playbook(&lab, "plan", &["alias=ssl-2026"])?;
    // A dry run refuses every write before it is sent: a plan that tried one fails.
    assert_eq!(run.code, Some(0), "{}", run.all());
    let all = run.all();
    assert!(all.contains("create key `ssl-2026`"), "{all}");
    assert!(
        all.contains("`Default HTTPS (8443)` (`ssl` -> `ssl-2026`)"),
        "{all}"
    );
    assert!(all.contains("Nothing was changed"), "{all}");
    assert_eq!(lab.only_run(), None, "a plan recorded a run");
    Ok(())
}

#[test]
fn a_failure_after_the_rotation_rolls_back_to_the_old_certificate() -> TestResult {
    let lab = Lab::new()?;
    // The smoke request finds no service: the step fails after the rotation.
    let run = playbook(
        &lab,
        "run",
        &["alias=ssl-2026", "smoke_path=/no-such-service"],
    )?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("undone  rotate"), "{}", run.all());
    let id = run.run_id().ok_or("no run id")?;
    let served = served_after(&lab, &id)?;
    assert_eq!(served.alias, "ssl");
    assert_eq!(
        served.leaf, served.alias_certificate,
        "the old `ssl` certificate is served"
    );
    let state = std::fs::read_to_string(
        lab.path()
            .join(".runsheet/runs")
            .join(&id)
            .join("twins/l7.json"),
    )?;
    assert!(!state.contains(":ssl-2026"), "the new key was not deleted");
    Ok(())
}

#[test]
fn a_rotation_refused_before_any_write_changes_nothing() -> TestResult {
    let lab = Lab::new()?;
    let ports = r#"listen_ports=["Default HTTPS (8443)", "No Such Port"]"#;
    let run = playbook(&lab, "run", &["alias=ssl-2026", ports])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let all = run.all();
    assert!(all.contains("no listen port named `No Such Port`"), "{all}");
    assert!(all.contains("nothing was changed"), "{all}");
    let id = run.run_id().ok_or("no run id")?;
    let served = served_after(&lab, &id)?;
    assert_eq!(served.alias, "ssl");
    assert_eq!(served.leaf, served.alias_certificate);
    Ok(())
}
