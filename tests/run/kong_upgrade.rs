//! `playbooks/kong-rolling-upgrade.yaml` end to end on a copy of the repository's lab
//! (tests/run/kong_lab.rs): three real `runsheet twin node` processes started by runsheet
//! itself, upgraded by the lab's own host commands (environments/lab-kong-node.sh) behind
//! a Kong twin whose upstream `core` balances them. Success, a second run that changes
//! nothing, an install that fails half-way (rolled back by state), a plan that writes
//! nothing, the migrations gate, and customers through the proxy during the upgrade.

use crate::kong_lab::{ROOT, ShippedLab};
use crate::lab::{Run, TestResult};
use crate::sshd::SshLab;
use crate::traffic::{Load, Outcome, assert_none_failed};

/// The rolling upgrade, as the lab runs it.
const PLAYBOOK: &str = "playbooks/kong-rolling-upgrade.yaml";

/// Node readiness polled fast (the nodes answer within milliseconds of their start).
const FAST: &str = "ready_delay=50ms";

/// The lab with a standalone Kong twin, as shipped.
fn standalone() -> Outcome<ShippedLab> {
    ShippedLab::standalone(|text| text, |text| text)
}

/// The upgrade to 3.9.1 (`verb` `run` or `plan`) with `sets` besides.
fn upgrade(lab: &ShippedLab, verb: &str, sets: &[&str]) -> std::io::Result<Run> {
    lab.run(
        verb,
        PLAYBOOK,
        &[&["target_version=3.9.1", FAST], sets].concat(),
    )
}

/// The pair of a node's version file and reported version, both `version`.
fn both(version: &str) -> (String, String) {
    (version.to_owned(), version.to_owned())
}

#[test]
fn every_node_is_upgraded_back_into_rotation_and_a_second_run_changes_nothing() -> TestResult {
    let lab = standalone()?;
    let run = upgrade(&lab, "run", &[])?;
    run.assert_ended(0, &[]);
    lab.assert_all_on("3.9.1")?;
    for n in 0..3 {
        let name = format!("dp{}", n + 1);
        assert!(
            run.stdout.contains(&format!(
                "{name} upgraded: Kong 3.9.0 -> 3.9.1, back in rotation"
            )),
            "{}",
            run.all()
        );
        assert!(
            run.stdout.contains(&format!("{name}: Kong 3.9.1")),
            "{}",
            run.all()
        );
        assert!(
            run.stderr.contains(&format!("lab: started node {name}")),
            "runsheet started the node: {}",
            run.all()
        );
    }
    assert_eq!(
        lab.weights()?,
        lab.full_weights(),
        "every node back in rotation"
    );
    assert!(
        run.stdout.contains("gateway state before the change: "),
        "{}",
        run.all()
    );
    let writes = lab.twin()?.writes()?;
    assert_eq!(writes, 6, "a drain and a readmit per node");

    let pids = lab.pids();
    let again = upgrade(&lab, "run", &[])?;
    again.assert_ended(0, &[]);
    for name in ["dp1", "dp2", "dp3"] {
        assert!(
            again
                .stdout
                .contains(&format!("{name} already runs Kong 3.9.1: left as it is")),
            "{}",
            again.all()
        );
    }
    assert!(
        !again.stderr.contains("lab: started node"),
        "{}",
        again.all()
    );
    assert_eq!(
        lab.twin()?.writes()?,
        writes,
        "the second run wrote nothing"
    );
    assert_eq!(lab.pids(), pids, "no node restarted");
    Ok(())
}

#[test]
fn a_failed_install_puts_its_node_back_and_leaves_the_nodes_before_it_upgraded() -> TestResult {
    let lab = ShippedLab::standalone(
        |text| {
            text.replace(
                "install_command: sh environments/lab-kong-node.sh install .lab/kong/dp2",
                "install_command: sh environments/broken-install.sh .lab/kong/dp2",
            )
        },
        |text| text,
    )?;
    // dp2's package repository serves a broken 3.9.1; its 3.9.0 installs.
    lab.lab.write(
        "environments/broken-install.sh",
        "case $2 in 3.9.1) echo \"kong $2: package signature check failed\" >&2; exit 1;; esac\n\
         exec sh environments/lab-kong-node.sh install \"$@\"\n",
    )?;
    let run = upgrade(&lab, "run", &[])?;
    assert_eq!(run.code, Some(1), "failed and rolled back: {}", run.all());
    assert!(
        run.stdout.contains("upgrade[dp2].node.install")
            && run.all().contains("package signature check failed"),
        "the failure is named with its cause: {}",
        run.all()
    );
    for undone in ["upgrade[dp2].node.stop", "upgrade[dp2].node.drain"] {
        assert!(
            run.stdout.contains(&format!("undone  {undone}")),
            "{undone}: {}",
            run.all()
        );
    }
    // dp1 finished its batch (a checkpoint): it keeps the new version.
    assert_eq!(lab.versions(0)?, both("3.9.1"));
    // dp2 is back on its previous version, running and back in rotation.
    assert_eq!(lab.versions(1)?, both("3.9.0"));
    assert!(lab.pid(1).is_some(), "dp2 runs again");
    // dp3 was never touched.
    assert_eq!(lab.versions(2)?, both("3.9.0"));
    assert_eq!(lab.weights()?, lab.full_weights(), "every node in rotation");
    assert!(
        run.stdout.contains("dp2: Kong 3.9.0 (not 3.9.1)"),
        "{}",
        run.all()
    );

    // The repository is fixed: the run resumes from its checkpoint and finishes.
    lab.lab.write(
        "environments/broken-install.sh",
        "exec sh environments/lab-kong-node.sh install \"$@\"\n",
    )?;
    let id = run.run_id().ok_or("no run id")?;
    let resumed = lab.runsheet(&["resume", &id])?;
    resumed.assert_ended(0, &[]);
    for n in 0..3 {
        assert_eq!(lab.reported(n)?, "3.9.1", "node {n} after the resume");
    }
    assert!(
        !resumed
            .stdout
            .contains("upgrade[dp1].node.drain (kong.target"),
        "dp1, done before the checkpoint, is not upgraded again: {}",
        resumed.all()
    );
    assert_eq!(lab.weights()?, lab.full_weights(), "every node in rotation");
    Ok(())
}

#[test]
fn a_gateway_refusing_the_readmit_rolls_the_upgraded_node_back_to_its_version() -> TestResult {
    let lab = standalone()?;
    // The gateway's writes: dp1's drain and readmit, dp2's drain, then dp2's readmit fails.
    lab.twin()?
        .fault(r#"{"fail_nth_write": 4, "status": 500}"#)?;
    let run = upgrade(&lab, "run", &[])?;
    assert_eq!(run.code, Some(1), "failed and rolled back: {}", run.all());
    assert!(
        run.stdout.contains("FAILED  upgrade[dp2].node.readmit"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout
            .contains("undone  upgrade[dp2].node.stop (ran `reinstall-previous`"),
        "{}",
        run.all()
    );
    assert_eq!(lab.reported(0)?, "3.9.1", "dp1 keeps the new version");
    assert_eq!(
        lab.versions(1)?,
        both("3.9.0"),
        "dp2 was upgraded and started, then put back on 3.9.0"
    );
    assert_eq!(lab.reported(2)?, "3.9.0", "dp3 untouched");
    assert_eq!(lab.weights()?, lab.full_weights(), "every node in rotation");
    Ok(())
}

#[test]
fn a_plan_of_the_upgrade_writes_nothing() -> TestResult {
    let lab = standalone()?;
    let plan = upgrade(&lab, "plan", &[])?;
    plan.assert_ended(0, &[]);
    let pids = lab.pids();
    assert!(
        pids.iter().all(Option::is_some),
        "the plan started the nodes: {}",
        plan.all()
    );
    for (n, address) in lab.nodes.addresses.iter().enumerate() {
        assert!(
            plan.stdout.contains(&format!(
                "upgrade[dp{}].node.drain (kong.target): target {address} of upstream core: weight 100 -> 0",
                n + 1
            )),
            "{}",
            plan.all()
        );
        assert!(
            plan.stdout.contains(&format!(
                "would run: sh environments/lab-kong-node.sh install .lab/kong/dp{} 3.9.1",
                n + 1
            )),
            "{}",
            plan.all()
        );
    }
    assert!(
        plan.stdout.contains("Nothing was changed: this is a plan."),
        "{}",
        plan.all()
    );
    assert_eq!(
        lab.twin()?.writes()?,
        0,
        "a plan writes nothing to the gateway"
    );
    lab.assert_all_on("3.9.0")?;
    assert_eq!(lab.pids(), pids, "no node restarted");
    Ok(())
}

#[test]
fn migrations_finish_waits_at_its_gate_until_approved() -> TestResult {
    let lab = standalone()?;
    let log = lab.lab.path().join(".lab/kong/cp1/migrations.log");
    let run = upgrade(&lab, "run", &["migrations=true"])?;
    assert_eq!(run.code, Some(4), "paused at the gate: {}", run.all());
    assert!(run.all().contains("migrations-finish"), "{}", run.all());
    let migrations = std::fs::read_to_string(&log)?;
    assert!(migrations.contains("kong migrations up"), "{migrations}");
    assert!(
        !migrations.contains("finish"),
        "finish waits for approval: {migrations}"
    );
    for n in 0..3 {
        assert_eq!(
            lab.reported(n)?,
            "3.9.1",
            "the nodes are upgraded before the gate"
        );
    }
    let id = run.run_id().ok_or("no run id")?;
    let resumed = lab.runsheet(&["resume", &id, "--approve", "migrations-finish"])?;
    resumed.assert_ended(0, &[]);
    let migrations = std::fs::read_to_string(&log)?;
    assert_eq!(
        migrations.matches("kong migrations").count(),
        2,
        "up once, finish once: {migrations}"
    );
    assert!(
        migrations.contains("kong migrations finish"),
        "{migrations}"
    );
    Ok(())
}

#[test]
fn customers_of_the_proxy_see_no_failure_during_the_upgrade() -> TestResult {
    // Without retries on another target, a request the balancer sent to a stopped node
    // would fail: the drain is what keeps the customers whole.
    let lab = ShippedLab::standalone(
        |text| text,
        |text| {
            text.replace(
                "  - name: orders\n    host: core\n",
                "  - name: orders\n    host: core\n    retries: 0\n",
            )
        },
    )?;
    let twin = lab.twin()?;
    let orders = format!("{}/orders", twin.proxy_url);
    // The first command starts the nodes; the customers come once they serve.
    let nodes = lab.run("run", "playbooks/lab/kong-nodes.yaml", &[])?;
    nodes.assert_ended(0, &[]);
    let before = lab.pids();
    let load = Load::with_key(&orders, 4, "none");
    let run = upgrade(&lab, "run", &[])?;
    assert_none_failed(&load.finish(), 0);
    run.assert_ended(0, &[]);
    for (n, before) in before.iter().enumerate() {
        assert_eq!(lab.reported(n)?, "3.9.1");
        // Each node really went down and came back (a new process) while customers called.
        let after = lab.pid(n);
        assert!(
            after.is_some() && after != *before,
            "node {n}: {before:?} -> {after:?}"
        );
    }
    Ok(())
}

#[test]
fn the_ssh_lab_upgrades_the_nodes_with_commands_sent_over_ssh() -> TestResult {
    let servers = SshLab::start(1)?;
    let lab = ShippedLab::embedded(|text| text, |text| text)?;
    let shipped = std::fs::read_to_string(lab.lab.path().join("environments/lab-ssh.yaml"))?;
    let (checkout, ssh) = (
        "checkout: &checkout runsheet",
        "ssh: {connect_timeout: 10s}",
    );
    if !shipped.contains(checkout) || !shipped.contains(ssh) {
        return Err("environments/lab-ssh.yaml changed: update this test's edits".into());
    }
    // The test's sshd: its port, key and known_hosts; the commands run in the lab's copy.
    let environment = shipped
        .replace(
            checkout,
            &format!("checkout: &checkout \"{}\"", lab.lab.path().display()),
        )
        .replace(
            ssh,
            &format!(
                "ssh: {{port: {}, user: {}, identity: \"{}\", known_hosts: \"{}\", connect_timeout: 10s}}",
                servers.servers[0].port,
                servers.user(),
                servers.client_key().display(),
                servers.known_hosts().display()
            ),
        );
    lab.lab.write("environments/lab-ssh.yaml", &environment)?;
    let run = lab.runsheet(&[
        "run",
        "playbooks/kong-rolling-upgrade.yaml",
        "--env",
        "environments/lab-ssh.yaml",
        "--set",
        "target_version=3.9.1",
        "--set",
        FAST,
    ])?;
    run.assert_ended(0, &[]);
    lab.assert_all_on("3.9.1")?;
    let commands = servers.commands(0).join("\n");
    for n in 1..=3 {
        for command in [
            format!("sh environments/lab-kong-node.sh stop .lab/kong/dp{n}"),
            format!("sh environments/lab-kong-node.sh install .lab/kong/dp{n} 3.9.1"),
        ] {
            assert!(
                commands.contains(&command),
                "{command} went over ssh: {commands}"
            );
        }
    }
    Ok(())
}

#[test]
fn the_shipped_lab_environments_validate_with_the_kong_lab_playbooks() -> TestResult {
    let lab = crate::lab::Lab::new()?;
    for environment in ["environments/lab.yaml", "environments/lab-ssh.yaml"] {
        for playbook in [PLAYBOOK, "playbooks/lab/kong-nodes.yaml"] {
            let mut command = lab.command(&[
                "validate",
                &format!("{}/{playbook}", ROOT),
                "--env",
                &format!("{}/{environment}", ROOT),
            ]);
            command.current_dir(ROOT);
            let run = lab.run_with(command)?;
            assert_eq!(
                run.code,
                Some(0),
                "{playbook} on {environment}: {}",
                run.all()
            );
            assert!(
                run.all().contains("ok (0 errors, 0 warnings)"),
                "{}",
                run.all()
            );
        }
    }
    Ok(())
}

#[test]
fn a_lab_node_that_cannot_start_is_named_with_its_log_and_nothing_runs() -> TestResult {
    // dp2's address is not on this machine: its node exits at once.
    let lab = ShippedLab::standalone(
        |text| {
            text.replacen("listen: \"127.0.0.1:", "listen: \"192.0.2.1:", 2)
                .replacen("listen: \"192.0.2.1:", "listen: \"127.0.0.1:", 1)
        },
        |text| text,
    )?;
    let run = upgrade(&lab, "run", &[])?;
    assert_eq!(run.code, Some(5), "refused to start: {}", run.all());
    assert!(run.stderr.contains("error: host `dp2`: "), "{}", run.all());
    assert!(
        run.stderr.contains("did not become ready")
            && run.stderr.contains(".lab/kong/dp2/node.log"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("192.0.2.1"),
        "the log's end is shown: {}",
        run.all()
    );
    assert!(
        !run.stdout.contains("start   gateway"),
        "no step ran: {}",
        run.all()
    );
    assert_eq!(lab.twin()?.writes()?, 0);
    Ok(())
}

#[test]
fn a_lab_node_port_held_by_another_process_is_refused_by_name() -> TestResult {
    let lab = standalone()?;
    let _squatter = std::net::TcpListener::bind(&lab.nodes.addresses[0])?;
    let run = lab.run("plan", PLAYBOOK, &["target_version=3.9.1"])?;
    run.assert_ended(5, &[]);
    assert!(
        run.stderr.contains(&format!(
            "error: host `dp1`: {} is taken by another process, not the node of state directory .lab/kong/dp1",
            lab.nodes.addresses[0]
        )),
        "{}",
        run.all()
    );
    Ok(())
}
