//! The Layer7 twin from the binary: embedded in an environment (`twin: {seed: ...}`) for a
//! run and its resume, and standalone as `runsheet twin layer7` with a state directory
//! (a patch is "applied" by writing the patches file and restarting the process).

use std::io::{BufRead as _, BufReader};
use std::time::{Duration, Instant};

use crate::lab::{Lab, TestResult};
use crate::traffic::get;

/// A restman bundle with one folder and one cluster property.
const SEED: &str = r#"<l7:Bundle xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management">
  <l7:References>
    <l7:Item>
      <l7:Name>greeting</l7:Name>
      <l7:Id>a1b2c3d4e5f60718293a4b5c6d7e8f90</l7:Id>
      <l7:Type>CLUSTER_PROPERTY</l7:Type>
      <l7:Resource>
        <l7:ClusterProperty id="a1b2c3d4e5f60718293a4b5c6d7e8f90">
          <l7:Name>greeting</l7:Name>
          <l7:Value>hello</l7:Value>
        </l7:ClusterProperty>
      </l7:Resource>
    </l7:Item>
  </l7:References>
  <l7:Mappings>
    <l7:Mapping action="NewOrExisting" srcId="a1b2c3d4e5f60718293a4b5c6d7e8f90" type="CLUSTER_PROPERTY"/>
  </l7:Mappings>
</l7:Bundle>
"#;

/// An environment whose gateway `l7` is an embedded Layer7 twin seeded from `gw.bundle`.
const ENVIRONMENT: &str = "runsheet: 1
name: l7lab
gateways:
  l7: {type: layer7, twin: {seed: gw.bundle, control: true}}
hosts:
  me: {transport: local}
";

/// Reads the seed, writes a cluster property, pauses at a gate, reads the write back.
const PLAYBOOK: &str = r#"runsheet: 1
name: l7-twin-roundtrip
steps:
  - id: seeded
    action: http
    with:
      method: GET
      url: "{{ env.gateways.l7.url }}/restman/1.0/clusterProperties?name=greeting"
      auth: {basic: {username: admin, password: password}}
      expect_status: 200
  - id: check-seed
    action: assert
    with: {that: "'hello' in steps.seeded.outputs.body"}
  - id: create
    action: http
    with:
      method: PUT
      url: "{{ env.gateways.l7.url }}/restman/1.0/clusterProperties/0000000000000000000000000000abcd"
      auth: {basic: {username: admin, password: password}}
      headers: {content-type: application/xml}
      body: '<l7:ClusterProperty xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:Name>added</l7:Name><l7:Value>by-the-run</l7:Value></l7:ClusterProperty>'
      expect_status: 201
  - id: gate
    action: approval
    with: {prompt: "Read it back?", gate: read-back}
  - id: read-back
    action: http
    with:
      method: GET
      url: "{{ env.gateways.l7.url }}/restman/1.0/clusterProperties/0000000000000000000000000000abcd"
      auth: {basic: {username: admin, password: password}}
      expect_status: 200
  - id: ping
    action: http
    with:
      method: GET
      url: "{{ env.gateways.l7.traffic_url }}/ssg/ping"
      expect_status: 200
"#;

#[test]
fn an_embedded_layer7_twin_serves_its_seed_and_keeps_its_state_across_resume() -> TestResult {
    let lab = Lab::new()?;
    lab.write("env.yaml", ENVIRONMENT)?;
    lab.write("gw.bundle", SEED)?;
    lab.write("p.yaml", PLAYBOOK)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(4), "paused at the gate:\n{}", run.all());
    let id = lab.only_run().ok_or("no run recorded")?;
    let saved = lab
        .path()
        .join(".runsheet/runs")
        .join(&id)
        .join("twins/l7.json");
    let state = std::fs::read_to_string(&saved)?;
    assert!(state.contains("by-the-run"), "{state}");
    let resumed = lab.run(&["resume", &id, "--approve", "read-back"])?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    Ok(())
}

#[test]
fn a_bad_layer7_seed_is_refused_before_anything_runs() -> TestResult {
    let lab = Lab::new()?;
    lab.write("env.yaml", ENVIRONMENT)?;
    lab.write("gw.bundle", "<l7:Bundle><l7:References>")?;
    lab.write("p.yaml", PLAYBOOK)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("gateway `l7`") && run.stderr.contains("gw.bundle"),
        "{}",
        run.stderr
    );
    assert_eq!(lab.only_run(), None, "no run was recorded");
    Ok(())
}

/// Starts `runsheet twin layer7` with state in `dir`; its URL and the child.
fn start(lab: &Lab) -> Result<(String, std::process::Child), Box<dyn std::error::Error>> {
    let mut child = lab.spawn(&[
        "twin",
        "layer7",
        "--listen",
        "127.0.0.1:0",
        "--seed",
        "gw.bundle",
        "--state-dir",
        "gw1",
        "--control",
        "--output",
        "json",
    ])?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    let started: serde_json::Value =
        serde_json::from_str(&first).map_err(|e| format!("start-up line {first:?}: {e}"))?;
    let url = started["url"].as_str().ok_or("no url")?.to_owned();
    Ok((url, child))
}

/// `GET url` with the administrator's credentials: status and body.
fn admin_get(url: &str) -> std::io::Result<(u16, String)> {
    crate::traffic::request(url, &[("authorization", "Basic YWRtaW46cGFzc3dvcmQ=")])
}

/// Stops the process with SIGTERM and waits for exit code 0.
fn stop(mut child: std::process::Child) -> TestResult {
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            assert_eq!(status.code(), Some(0));
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("the twin did not stop on SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn twin_layer7_keeps_its_entities_and_reads_a_patch_across_a_restart() -> TestResult {
    let lab = Lab::new()?;
    lab.write("gw.bundle", SEED)?;
    let (url, child) = start(&lab)?;
    let (status, body) = get(&format!("{url}/ssg/ping"))?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin_get(&format!(
        "{url}/restman/1.0/clusterProperties?name=greeting"
    ))?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello"), "{body}");
    let (status, _) = get(&format!("{url}/restman/1.0/clusterProperties"))?;
    assert_eq!(status, 401, "restman needs credentials");
    let pid = std::fs::read_to_string(lab.path().join("gw1/layer7.pid"))?;
    assert_eq!(pid.trim(), child.id().to_string());
    stop(child)?;
    assert!(!lab.path().join("gw1/layer7.pid").exists());
    assert!(lab.path().join("gw1/state.json").exists());

    // "Apply a patch": write the patches file and the new version, start again.
    lab.write("gw1/patches", "CR03 cumulative release 3\n")?;
    lab.write("gw1/version", "11.1.3\n")?;
    lab.write("gw.bundle", "<l7:Bundle/>")?;
    let (url, child) = start(&lab)?;
    let (status, node) = admin_get(&format!("{url}/_twin/node"))?;
    assert_eq!(status, 200, "{node}");
    let node: serde_json::Value = serde_json::from_str(&node)?;
    assert_eq!(node["productVersion"]["formalString"], "11.1.3");
    assert_eq!(node["patches"][0]["patchId"], "CR03");
    let (_, body) = admin_get(&format!(
        "{url}/restman/1.0/clusterProperties?name=greeting"
    ))?;
    assert!(
        body.contains("hello"),
        "the entities came back from the state: {body}"
    );
    stop(child)
}

#[test]
fn twin_layer7_refuses_a_busy_port_and_a_bad_seed() -> TestResult {
    let lab = Lab::new()?;
    let busy = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = busy.local_addr()?.to_string();
    let run = lab.run(&["twin", "layer7", "--listen", &address])?;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains(&address), "{}", run.stderr);
    lab.write(
        "bad.bundle",
        "<l7:Bundle><l7:Mappings><l7:Mapping action=\"NewOrUpdate\" srcId=\"x\" type=\"FOLDER\"/></l7:Mappings></l7:Bundle>",
    )?;
    let run = lab.run(&[
        "twin",
        "layer7",
        "--listen",
        "127.0.0.1:0",
        "--seed",
        "bad.bundle",
    ])?;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("bad.bundle") && run.stderr.contains("mapping FOLDER x"),
        "{}",
        run.stderr
    );
    Ok(())
}
