//! The Kong twin from the binary: embedded in an environment (`twin: {seed: ...}`) for a
//! run and its resume, and standalone as `runsheet twin kong`.

use std::io::{BufRead as _, BufReader};

use crate::lab::{Lab, TestResult};
use crate::traffic::{free_port, get, wait_for};

/// A decK-style seed with one service and its route.
const SEED: &str = "_format_version: '3.0'
services:
  - name: billing
    url: http://billing.internal:8080
    routes:
      - {name: billing-api, paths: [/billing]}
";

/// An environment whose gateway `kong` is an embedded twin seeded from `kong.yaml`.
const ENVIRONMENT: &str = "runsheet: 1
name: twinlab
gateways:
  kong: {type: kong, twin: {seed: kong.yaml, control: true}}
hosts:
  me: {transport: local}
";

/// Reads the seed, writes a service, pauses at a gate, then reads the write back.
const PLAYBOOK: &str = r#"runsheet: 1
name: twin-roundtrip
steps:
  - id: seeded
    action: http
    with:
      method: GET
      url: "{{ env.gateways.kong.admin_url }}/services/billing"
      expect_status: 200
      extract: {host: /host}
  - id: check-seed
    action: assert
    with: {that: "steps.seeded.outputs.host == 'billing.internal'"}
  - id: create
    action: http
    with:
      method: PUT
      url: "{{ env.gateways.kong.admin_url }}/services/extra"
      json: {host: extra.internal}
      expect_status: 200
  - id: gate
    action: approval
    with: {prompt: "Read the new service back?", gate: read-back}
  - id: read-back
    action: http
    with:
      method: GET
      url: "{{ env.gateways.kong.admin_url }}/services/extra"
      expect_status: 200
"#;

/// A lab with the twin environment, the seed and the playbook.
fn lab() -> std::io::Result<Lab> {
    let lab = Lab::new()?;
    lab.write("env.yaml", ENVIRONMENT)?;
    lab.write("kong.yaml", SEED)?;
    lab.write("p.yaml", PLAYBOOK)?;
    Ok(lab)
}

#[test]
fn an_embedded_twin_serves_its_seed_and_keeps_its_state_across_resume() -> TestResult {
    let lab = lab()?;
    // A certificate with SNIs in the state: its saved form must load back on resume.
    let (cert, key) = self_signed("api.lab.test")?;
    lab.write(
        "kong.yaml",
        &format!(
            "{SEED}certificates:\n  - cert: {}\n    key: {}\n    snis: [{{name: api.lab.test}}]\n",
            serde_json::to_string(&cert)?,
            serde_json::to_string(&key)?
        ),
    )?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(4), "paused at the gate:\n{}", run.all());
    let id = lab.only_run().ok_or("no run recorded")?;
    let saved = lab
        .path()
        .join(".runsheet/runs")
        .join(&id)
        .join("twins/kong.json");
    let state = std::fs::read_to_string(&saved)?;
    assert!(state.contains("extra.internal"), "{state}");
    let resumed = lab.run(&["resume", &id, "--approve", "read-back"])?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    Ok(())
}

#[test]
fn a_plan_against_the_twin_reads_but_never_writes() -> TestResult {
    let lab = lab()?;
    // Without the gate, the read after the write runs in the plan: it finds no `extra`
    // (404 expected), which it would if the plan had applied the PUT.
    let gate = "  - id: gate\n    action: approval\n    with: {prompt: \"Read the new service back?\", gate: read-back}\n";
    let text = PLAYBOOK.replace(gate, "");
    let last =
        "url: \"{{ env.gateways.kong.admin_url }}/services/extra\"\n      expect_status: 200\n";
    let text = match text.rfind(last) {
        Some(at) => format!("{}{}", &text[..at], last.replace("200", "404")),
        None => return Err("playbook shape changed".into()),
    };
    assert!(!text.contains("approval"), "{text}");
    lab.write("p.yaml", &text)?;
    let plan = lab.run(&["plan", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(plan.code, Some(0), "{}", plan.all());
    assert!(plan.stdout.contains("create"), "{}", plan.all());
    Ok(())
}

#[test]
fn a_bad_seed_is_refused_before_anything_runs() -> TestResult {
    let lab = lab()?;
    lab.write(
        "kong.yaml",
        "_format_version: '3.0'\nservices:\n  - {name: billing}\n",
    )?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("gateway `kong`") && run.stderr.contains("kong.yaml"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("required field missing"),
        "{}",
        run.stderr
    );
    assert_eq!(lab.only_run(), None, "no run was recorded");
    std::fs::remove_file(lab.path().join("kong.yaml"))?;
    let missing = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(missing.code, Some(3), "{}", missing.all());
    assert!(missing.stderr.contains("kong.yaml"), "{}", missing.stderr);
    Ok(())
}

#[test]
fn twin_kong_serves_standalone_until_sigterm() -> TestResult {
    let lab = lab()?;
    let mut child = lab.spawn(&[
        "twin",
        "kong",
        "--listen",
        "127.0.0.1:0",
        "--proxy-listen",
        "127.0.0.1:0",
        "--status-listen",
        "127.0.0.1:0",
        "--proxy-tls-listen",
        "127.0.0.1:0",
        "--seed",
        "kong.yaml",
        "--output",
        "json",
    ])?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    let started: serde_json::Value =
        serde_json::from_str(&first).map_err(|e| format!("start-up line {first:?}: {e}"))?;
    let admin = started["admin_url"].as_str().ok_or("no admin_url")?;
    let (status, body) = get(&format!("{admin}/services/billing"))?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("billing.internal"), "{body}");
    let proxy = started["proxy_url"].as_str().ok_or("no proxy_url")?;
    let (status, body) = get(&format!("{proxy}/nowhere"))?;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no Route matched"), "{body}");
    let tls = started["proxy_tls_url"]
        .as_str()
        .ok_or("no proxy_tls_url")?;
    assert!(tls.starts_with("https://127.0.0.1:"), "{tls}");
    let status = started["status_url"].as_str().ok_or("no status_url")?;
    let (code, body) = get(&format!("{status}/status/ready"))?;
    assert_eq!(code, 200, "{body}");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(killed.success());
    let status = child.wait()?;
    assert_eq!(status.code(), Some(0));
    Ok(())
}

#[test]
fn twin_kong_refuses_a_busy_port_and_a_bad_seed() -> TestResult {
    let lab = lab()?;
    let busy = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = busy.local_addr()?.to_string();
    let run = lab.run(&[
        "twin",
        "kong",
        "--listen",
        &address,
        "--proxy-listen",
        "off",
        "--status-listen",
        "off",
        "--proxy-tls-listen",
        "off",
    ])?;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains(&address), "{}", run.stderr);
    lab.write("bad.yaml", "services: []\n")?;
    let run = lab.run(&[
        "twin",
        "kong",
        "--listen",
        "127.0.0.1:0",
        "--proxy-listen",
        "off",
        "--status-listen",
        "off",
        "--proxy-tls-listen",
        "off",
        "--seed",
        "bad.yaml",
    ])?;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("bad.yaml"), "{}", run.stderr);
    Ok(())
}

#[test]
fn twin_kong_names_an_unreadable_tls_certificate() -> TestResult {
    let lab = lab()?;
    lab.write("cert.pem", "not a certificate\n")?;
    lab.write("key.pem", "not a key\n")?;
    let run = lab.run(&[
        "twin",
        "kong",
        "--listen",
        "127.0.0.1:0",
        "--proxy-listen",
        "off",
        "--status-listen",
        "off",
        "--proxy-tls-listen",
        "off",
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        "cert.pem",
        "--tls-key",
        "key.pem",
    ])?;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("cert.pem"), "{}", run.stderr);
    let missing = lab.run(&["twin", "kong", "--tls-cert", "cert.pem"])?;
    assert_eq!(
        missing.code,
        Some(3),
        "--tls-cert without --tls-key is a usage error: {}",
        missing.all()
    );
    assert!(missing.stderr.contains("--tls-key"), "{}", missing.stderr);
    Ok(())
}

#[test]
fn traffic_through_the_embedded_twin_proxy_reaches_the_upstream_by_route() -> TestResult {
    let kv = crate::lab::KvServer::start()?;
    let lab = lab()?;
    lab.write(
        "kong.yaml",
        &format!(
            "_format_version: '3.0'\nservices:\n  - name: kv\n    url: {}\n    routes:\n      - {{name: kv, paths: [/kv], strip_path: false}}\n",
            kv.url
        ),
    )?;
    lab.write(
        "p.yaml",
        r#"runsheet: 1
name: through-the-proxy
steps:
  - id: put
    action: http
    with:
      method: PUT
      url: "{{ env.gateways.kong.proxy_url }}/kv/colour"
      body: blue
      expect_status: 200
  - id: unrouted
    action: http
    with:
      method: GET
      url: "{{ env.gateways.kong.proxy_url }}/elsewhere"
      expect_status: 404
      extract: {message: /message}
  - id: kong-says
    action: assert
    with: {that: "steps.unrouted.outputs.message == 'no Route matched with those values'"}
  - id: ready
    action: http
    with:
      method: GET
      url: "{{ env.gateways.kong.status_url }}/status/ready"
      expect_status: 200
"#,
    )?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let state = kv.state();
    assert_eq!(state.values.get("colour").map(String::as_str), Some("blue"));
    assert_eq!(state.methods.get("PUT"), Some(&1));
    Ok(())
}

#[test]
fn twin_node_reports_its_version_and_stops_on_sigterm() -> TestResult {
    let lab = Lab::new()?;
    let address = format!("127.0.0.1:{}", free_port()?);
    let args = [
        "twin",
        "node",
        "--listen",
        &address,
        "--version",
        "3.8.0",
        "--state-dir",
        "dp1",
    ];
    let mut node = lab.spawn(&args)?;
    let (status, body) = wait_for(&format!("http://{address}/"))?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"3.8.0\""), "{body}");
    let pid = std::fs::read_to_string(lab.path().join("dp1/node.pid"))?;
    assert_eq!(pid.trim(), node.id().to_string());
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()?;
    assert!(killed.success());
    assert_eq!(node.wait()?.code(), Some(0));
    assert!(
        !lab.path().join("dp1/node.pid").exists(),
        "pid file removed"
    );
    let busy = std::net::TcpListener::bind("127.0.0.1:0")?;
    let taken = busy.local_addr()?.to_string();
    let refused = lab.run(&[
        "twin",
        "node",
        "--listen",
        &taken,
        "--version",
        "3.8.0",
        "--state-dir",
        "dp1",
    ])?;
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    assert!(refused.stderr.contains(&taken), "{}", refused.stderr);
    Ok(())
}

#[test]
fn a_playbook_upgrades_a_twin_node_with_host_actions_and_real_traffic() -> TestResult {
    upgrade_a_twin_node(&Lab::new()?, "me")
}

/// Starts a twin node (3.8.0) in the lab, then runs a playbook that drains it, stops it,
/// "upgrades" it to 3.9.1 and starts it again through host actions `on: host`, and
/// checks the new version over HTTP. The lab's `env.yaml` must define `host`.
pub fn upgrade_a_twin_node(lab: &Lab, host: &str) -> TestResult {
    let address = format!("127.0.0.1:{}", free_port()?);
    let binary = env!("CARGO_BIN_EXE_runsheet");
    let dir = lab.path().join("dp1");
    let start = format!(
        "setsid {binary} twin node --listen {address} --version 3.8.0 --state-dir {} > {}/node.log 2>&1 < /dev/null &",
        dir.display(),
        lab.path().display()
    );
    std::fs::create_dir_all(&dir)?;
    let started = std::process::Command::new("sh")
        .args(["-c", &start])
        .status()?;
    assert!(started.success());
    let (_, before) = wait_for(&format!("http://{address}/"))?;
    assert!(before.contains("\"3.8.0\""), "{before}");
    let playbook = format!(
        r#"runsheet: 1
name: node-upgrade
steps:
  - id: drain
    action: http
    with: {{method: POST, url: "http://{address}/status/ready", json: {{status: draining}}, expect_status: 204}}
  - id: stop
    action: host.exec
    on: {host}
    with: {{command: "kill -TERM $(cat {dir}/node.pid); while [ -e {dir}/node.pid ]; do sleep 0.05; done"}}
  - id: upgrade
    action: host.file
    on: {host}
    with: {{path: "{dir}/version", content: "3.9.1
"}}
  - id: start
    action: host.exec
    on: {host}
    with: {{command: "setsid {binary} twin node --listen {address} --version 3.8.0 --state-dir {dir} >> {log} 2>&1 < /dev/null &"}}
  - id: ready
    action: http
    retries: 100
    retry_delay: 100ms
    with: {{method: GET, url: "http://{address}/status/ready", expect_status: 200}}
  - id: version
    action: http
    with: {{method: GET, url: "http://{address}/", extract: {{version: /version}}}}
  - id: check
    action: assert
    with: {{that: "steps.version.outputs.version == '3.9.1'"}}
"#,
        dir = dir.display(),
        log = lab.path().join("node.log").display(),
        host = host,
    );
    lab.write("p.yaml", &playbook)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    let pid = std::fs::read_to_string(dir.join("node.pid")).unwrap_or_default();
    if !pid.trim().is_empty() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", pid.trim()])
            .status();
    }
    assert_eq!(
        run.code,
        Some(0),
        "{}\nnode log:\n{}",
        run.all(),
        std::fs::read_to_string(lab.path().join("node.log")).unwrap_or_default()
    );
    Ok(())
}

#[test]
fn a_fault_injected_through_twin_control_rolls_the_run_back_on_the_twin() -> TestResult {
    let lab = lab()?;
    lab.write(
        "p.yaml",
        r#"runsheet: 1
name: fault-rollback
steps:
  - id: create-a
    action: http
    with:
      method: PUT
      url: "{{ env.gateways.kong.admin_url }}/services/a"
      json: {host: a.internal}
      expect_status: 200
    rollback: [delete-a]
  - id: delete-a
    action: http
    needs: []
    with: {method: DELETE, url: "{{ env.gateways.kong.admin_url }}/services/a", expect_status: 204}
  - id: inject
    action: http
    needs: [create-a]
    with:
      method: POST
      url: "{{ env.gateways.kong.admin_url }}/_twin/faults"
      json: {fail_nth_write: 1, status: 500}
    rollback: none
  - id: create-b
    action: http
    needs: [inject]
    with:
      method: PUT
      url: "{{ env.gateways.kong.admin_url }}/services/b"
      json: {host: b.internal}
      expect_status: 200
"#,
    )?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("500"), "{}", run.all());
    let id = lab.only_run().ok_or("no run recorded")?;
    let saved = std::fs::read_to_string(
        lab.path()
            .join(".runsheet/runs")
            .join(&id)
            .join("twins/kong.json"),
    )?;
    let state: serde_json::Value = serde_json::from_str(&saved)?;
    let names: Vec<&str> = state["services"]
        .as_array()
        .map(|services| services.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["billing"], "a was undone, b never written: {saved}");
    Ok(())
}

/// A self-signed certificate and key (PEM) for `name`.
fn self_signed(name: &str) -> Result<(String, String), Box<dyn std::error::Error>> {
    let made = rcgen::generate_simple_self_signed(vec![name.to_owned()])?;
    Ok((made.cert.pem(), made.signing_key.serialize_pem()))
}

#[test]
fn certificate_rotation_on_the_embedded_twin_is_seen_at_the_tls_proxy() -> TestResult {
    let lab = lab()?;
    let (old_cert, old_key) = self_signed("api.lab.test")?;
    let (new_cert, new_key) = self_signed("api.lab.test")?;
    lab.write("old-ca.pem", &old_cert)?;
    lab.write("new-ca.pem", &new_cert)?;
    lab.write(
        "kong.yaml",
        &format!(
            "_format_version: '3.0'\ncertificates:\n  - cert: {}\n    key: {}\n    snis: [{{name: api.lab.test}}]\n",
            serde_json::to_string(&old_cert)?,
            serde_json::to_string(&old_key)?
        ),
    )?;
    lab.write(
        "env.yaml",
        &format!(
            "{ENVIRONMENT}vars:\n  new_cert: {}\n  new_key: {}\n",
            serde_json::to_string(&new_cert)?,
            serde_json::to_string(&new_key)?
        ),
    )?;
    let port = "{{ env.gateways.kong.proxy_tls_url | split(':') | last | int }}";
    lab.write(
        "p.yaml",
        &format!(
            r#"runsheet: 1
name: cert-rotation
steps:
  - id: before
    action: tls.inspect
    with: {{host: 127.0.0.1, port: "{port}", server_name: api.lab.test, ca: "{old}"}}
  - id: rotate
    action: http
    needs: [before]
    with:
      method: PATCH
      url: "{{{{ env.gateways.kong.admin_url }}}}/certificates/api.lab.test"
      json: {{cert: "{{{{ env.new_cert }}}}", key: "{{{{ env.new_key }}}}"}}
      expect_status: 200
  - id: after
    action: tls.inspect
    needs: [rotate]
    with: {{host: 127.0.0.1, port: "{port}", server_name: api.lab.test, ca: "{new}"}}
  - id: stale
    action: tls.inspect
    needs: [rotate]
    continue_on_error: true
    with: {{host: 127.0.0.1, port: "{port}", server_name: api.lab.test, ca: "{old}"}}
  - id: check
    action: assert
    needs: [after, stale]
    with: {{that: "'api.lab.test' in steps.after.outputs.sans and steps.stale.status != 'succeeded'"}}
"#,
            old = lab.path().join("old-ca.pem").display(),
            new = lab.path().join("new-ca.pem").display(),
        ),
    )?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    Ok(())
}
