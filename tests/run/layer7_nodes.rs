//! The Layer7 node playbooks end to end: `playbooks/layer7-patch-upgrade.yaml` and
//! `playbooks/layer7-restart.yaml` against three real `runsheet twin layer7 --state-dir`
//! node processes, started and stopped by `playbooks/lab/layer7-nodes.yaml`, behind a Kong
//! twin whose upstream `layer7` balances them while customers' requests go through its
//! proxy. The environment is `environments/lab.yaml` itself with free ports, this build's
//! binary and the standalone Kong twin put in, so the lab's own host vars are what runs.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::lab::{Lab, Run, TestResult};
use crate::traffic::{
    Load, Outcome, TwinProcess, assert_in_rotation, assert_none_failed, get, node_ports, request,
    stop_by_pid_files, with_ports,
};

/// The repository's root: playbooks and the lab's files.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The lab's node ports in `environments/lab.yaml`, replaced by free ones.
const LAB_PORTS: [u16; 3] = [18441, 18442, 18443];

/// Basic credentials of the twin's default administrator.
const ADMIN: (&str, &str) = ("authorization", "Basic YWRtaW46cGFzc3dvcmQ=");

/// A lab laid out like the repository (environments/ with lab.yaml and its files), its
/// nodes on free ports, a standalone Kong twin as the load balancer.
pub(crate) struct NodeLab {
    /// The guard that stops the nodes; dropped first.
    pub(crate) nodes: Nodes,
    /// The Kong twin in front of the nodes.
    pub(crate) kong: TwinProcess,
    /// The directory.
    pub(crate) lab: Lab,
}

/// The node processes of a lab: each is stopped by its PID file when dropped, also when
/// the test failed.
pub(crate) struct Nodes {
    /// Each node's state directory.
    pub(crate) dirs: Vec<PathBuf>,
    /// Each node's URL.
    pub(crate) urls: Vec<String>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        stop_by_pid_files(self.dirs.iter().map(|dir| dir.join("layer7.pid")));
    }
}

impl NodeLab {
    /// The lab with `edit` applied to its environment text; the nodes are not started.
    fn new(edit: &impl Fn(String) -> String) -> Outcome<NodeLab> {
        let lab = Lab::new()?;
        std::fs::create_dir_all(lab.path().join("environments"))?;
        for file in [
            "lab-layer7.xml",
            "lab-layer7-uat.xml",
            "lab-layer7-node.sh",
            "lab-node-lib.sh",
        ] {
            std::fs::copy(
                Path::new(ROOT).join("environments").join(file),
                lab.path().join("environments").join(file),
            )?;
        }
        let ports = node_ports()?;
        let with_ports = |text: String| with_ports(text, &LAB_PORTS, &ports);
        let kong_seed =
            std::fs::read_to_string(Path::new(ROOT).join("environments/lab-seed.yaml"))?;
        lab.write("environments/lab-seed.yaml", &with_ports(kong_seed))?;
        let kong = TwinProcess::start(&lab, "environments/lab-seed.yaml")?;
        let environment = std::fs::read_to_string(Path::new(ROOT).join("environments/lab.yaml"))?;
        let embedded = crate::kong_lab::EMBEDDED_KONG;
        if !environment.contains(embedded) || !environment.contains("target/release/runsheet") {
            return Err("environments/lab.yaml changed: update this test's edits".into());
        }
        // The Kong data-plane nodes are not these tests' (runsheet would start them).
        let environment = crate::kong_lab::without_kong_nodes(&with_ports(environment))
            .replace(
                embedded,
                &format!(
                    "kong: {{type: kong, admin_url: \"{}\", proxy_url: \"{}\"}}",
                    kong.admin_url, kong.proxy_url
                ),
            )
            .replace("target/release/runsheet", env!("CARGO_BIN_EXE_runsheet"));
        lab.write("environments/lab.yaml", &edit(environment))?;
        let nodes = Nodes {
            dirs: (1..=3)
                .map(|n| lab.path().join(format!(".lab/layer7/l7n{n}")))
                .collect(),
            urls: ports
                .iter()
                .map(|port| format!("http://127.0.0.1:{port}"))
                .collect(),
        };
        Ok(NodeLab { nodes, kong, lab })
    }

    /// The lab with its nodes started by the lab playbook. A node port taken between its
    /// choice and the node's start (by any process on the machine) makes a new lab, at
    /// most three times.
    pub(crate) fn started(edit: impl Fn(String) -> String) -> Outcome<NodeLab> {
        for _ in 0..3 {
            let lab = NodeLab::new(&edit)?;
            let run = lab.run("run", "playbooks/lab/layer7-nodes.yaml", &[])?;
            if run.code != Some(0) && run.stdout.contains("Address already in use") {
                continue;
            }
            assert_eq!(run.code, Some(0), "{}", run.all());
            for url in &lab.nodes.urls {
                assert!(
                    run.stdout.contains(url),
                    "the node's URL is reported: {}",
                    run.all()
                );
            }
            return Ok(lab);
        }
        Err("three labs in a row found a node port taken".into())
    }

    /// `runsheet ARGS...` in the lab.
    fn runsheet(&self, args: &[&str]) -> std::io::Result<Run> {
        self.lab.run(args)
    }

    /// Runs `playbook` (a path under the repository) on the lab's environment; a rolling
    /// playbook waits at most 20 s for a node, so a node that never comes back fails fast.
    fn run(&self, verb: &str, playbook: &str, sets: &[&str]) -> std::io::Result<Run> {
        let path = format!("{ROOT}/{playbook}");
        let mut args = vec![verb, path.as_str(), "--env", "environments/lab.yaml"];
        for set in sets {
            args.extend(["--set", set]);
        }
        if !playbook.contains("/lab/") {
            args.extend(["--set", "boot_timeout=20s"]);
        }
        self.runsheet(&args)
    }

    /// Node `n` (0-based) as its twin control shows it.
    fn node(&self, n: usize) -> Outcome<Value> {
        let (status, body) = request(&format!("{}/_twin/node", self.nodes.urls[n]), &[ADMIN])?;
        if status != 200 {
            return Err(format!("node {n}: /_twin/node answered {status}: {body}").into());
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// Node `n`'s boot time and patch ids.
    fn boot_and_patches(&self, n: usize) -> Outcome<(i64, Vec<String>)> {
        let node = self.node(n)?;
        let boot = node["bootTime"].as_i64().ok_or("no bootTime")?;
        let patches = node["patches"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|patch| patch["patchId"].as_str().map(str::to_owned))
            .collect();
        Ok((boot, patches))
    }

    /// Every node's boot time and patch ids, by node.
    fn every_boot_and_patches(&self) -> Outcome<Vec<(i64, Vec<String>)>> {
        (0..self.nodes.urls.len())
            .map(|n| self.boot_and_patches(n))
            .collect()
    }

    /// Every target of upstream `layer7` with its weight, by address.
    fn weights(&self) -> Outcome<Vec<(String, u64)>> {
        self.kong.weights("layer7")
    }

    /// Customers: two clients asking for the orders service through the Kong proxy.
    fn customers(&self) -> Load {
        Load::with_key(&format!("{}/l7/orders", self.kong.proxy_url), 2, "none")
    }
}

#[test]
fn patch_upgrade_patches_every_node_out_of_rotation_without_failing_a_customer() -> TestResult {
    let lab = NodeLab::started(|text| text)?;
    let before = lab.every_boot_and_patches()?;
    let customers = lab.customers();
    let run = lab.run(
        "run",
        "playbooks/layer7-patch-upgrade.yaml",
        &["patch_id=CR03", "from_version=11.1.2"],
    )?;
    assert_none_failed(&customers.finish(), 0);
    assert_eq!(run.code, Some(0), "{}", run.all());
    for (n, (boot, patches)) in before.iter().enumerate() {
        assert!(
            patches.is_empty(),
            "node {n} started unpatched: {patches:?}"
        );
        let (after, patches) = lab.boot_and_patches(n)?;
        assert_eq!(patches, ["CR03"], "node {n}");
        assert!(after > *boot, "node {n} restarted");
        assert!(
            run.stdout
                .contains(&format!("patch[l7n{}].node.traffic", n + 1)),
            "traffic checked while l7n{} was out: {}",
            n + 1,
            run.stdout
        );
    }
    assert_in_rotation(&lab.weights()?);

    // Again: every node has the patch, so none is touched.
    let patched = lab.every_boot_and_patches()?;
    let writes = lab.kong.writes()?;
    let run = lab.run(
        "run",
        "playbooks/layer7-patch-upgrade.yaml",
        &["patch_id=CR03"],
    )?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    for n in 1..=3 {
        assert!(
            run.stdout
                .contains(&format!("node l7n{n} already has patch CR03")),
            "{}",
            run.stdout
        );
    }
    let again = lab.every_boot_and_patches()?;
    assert_eq!(again, patched, "a patched node is not restarted");
    assert_eq!(lab.kong.writes()?, writes, "nor taken out of rotation");
    Ok(())
}

#[test]
fn a_node_whose_patch_fails_is_rolled_back_and_the_nodes_before_it_keep_the_patch() -> TestResult {
    // l7n2's patchcli installs the patch, then fails (as a failed verification would).
    let lab = NodeLab::started(|text| {
        text.replace(
            "patch_command: sh environments/lab-layer7-node.sh patch .lab/layer7/l7n2",
            "patch_command: 'f() { sh environments/lab-layer7-node.sh patch .lab/layer7/l7n2 \"$1\"; echo patchcli: verification failed >&2; exit 1; }; f'",
        )
    })?;
    let (third_boot, _) = lab.boot_and_patches(2)?;
    let customers = lab.customers();
    let run = lab.run(
        "run",
        "playbooks/layer7-patch-upgrade.yaml",
        &["patch_id=CR03"],
    )?;
    assert_none_failed(&customers.finish(), 0);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("verification failed"), "{}", run.all());
    assert_eq!(lab.boot_and_patches(0)?.1, ["CR03"], "l7n1 keeps the patch");
    let (_, second) = lab.boot_and_patches(1)?;
    assert!(second.is_empty(), "l7n2 rolled back: {second:?}");
    let (status, body) = get(&format!("{}/ssg/ping", lab.nodes.urls[1]))?;
    assert_eq!(status, 200, "l7n2 runs again: {body}");
    assert_eq!(
        lab.boot_and_patches(2)?,
        (third_boot, Vec::new()),
        "l7n3 untouched"
    );
    assert_in_rotation(&lab.weights()?);
    Ok(())
}

#[test]
fn a_stopped_node_fails_the_pre_check_before_anything_changes() -> TestResult {
    let lab = NodeLab::started(|text| text)?;
    let stopped = lab.lab.run_with({
        let mut command = std::process::Command::new("sh");
        command
            .args([
                "environments/lab-layer7-node.sh",
                "stop",
                ".lab/layer7/l7n3",
            ])
            .current_dir(lab.lab.path());
        command
    })?;
    assert_eq!(stopped.code, Some(0), "{}", stopped.all());
    let boots = [lab.boot_and_patches(0)?, lab.boot_and_patches(1)?];
    for (playbook, sets) in [
        (
            "playbooks/layer7-patch-upgrade.yaml",
            &["patch_id=CR03"][..],
        ),
        ("playbooks/layer7-restart.yaml", &[][..]),
    ] {
        let run = lab.run("run", playbook, sets)?;
        assert_eq!(run.code, Some(1), "{playbook}: {}", run.all());
        assert!(
            run.all().contains("precheck[l7n3].ping") && run.all().contains("l7n3-gw"),
            "{playbook}: the stopped node is named: {}",
            run.all()
        );
    }
    assert_eq!(lab.kong.writes()?, 0, "no load balancer change");
    assert_eq!(
        [lab.boot_and_patches(0)?, lab.boot_and_patches(1)?],
        boots,
        "no node restarted or patched"
    );
    assert!(
        !lab.nodes.dirs[2].join("layer7.pid").exists(),
        "the stopped node was not started"
    );
    Ok(())
}

#[test]
fn rolling_restart_gives_every_node_a_new_boot_time_without_failing_a_customer() -> TestResult {
    let lab = NodeLab::started(|text| text)?;
    let before = lab.every_boot_and_patches()?;
    let customers = lab.customers();
    let run = lab.run("run", "playbooks/layer7-restart.yaml", &["batch_size=1"])?;
    assert_none_failed(&customers.finish(), 0);
    assert_eq!(run.code, Some(0), "{}", run.all());
    for (n, (boot, _)) in before.iter().enumerate() {
        let (after, _) = lab.boot_and_patches(n)?;
        assert!(after > *boot, "node {n}: boot time {after} after {boot}");
    }
    assert_in_rotation(&lab.weights()?);
    assert_eq!(lab.kong.writes()?, 6, "a drain and a readmit per node");
    Ok(())
}

#[test]
fn plans_of_both_playbooks_on_the_lab_write_nothing() -> TestResult {
    let lab = NodeLab::started(|text| text)?;
    let before = lab.every_boot_and_patches()?;
    for (playbook, sets) in [
        ("playbooks/layer7-patch-upgrade.yaml", vec!["patch_id=CR03"]),
        ("playbooks/layer7-restart.yaml", vec![]),
    ] {
        let validated = lab.run("validate", playbook, &sets)?;
        assert_eq!(validated.code, Some(0), "{playbook}: {}", validated.all());
        let plan = lab.run("plan", playbook, &sets)?;
        assert_eq!(plan.code, Some(0), "{playbook}: {}", plan.all());
    }
    assert_eq!(lab.kong.writes()?, 0);
    let after = lab.every_boot_and_patches()?;
    assert_eq!(after, before, "no node restarted or patched");
    for dir in &lab.nodes.dirs {
        assert!(!dir.join("patches").exists(), "{}", dir.display());
        assert!(!dir.join("backups").exists(), "{}", dir.display());
    }
    Ok(())
}
