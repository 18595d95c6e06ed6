//! sshd killed mid-step: kong-rolling-upgrade over `environments/lab-ssh.yaml` with a
//! test-started sshd (tests/support/sshd.rs). The nth host command pauses in a wrapper;
//! the test kills sshd and every session it serves (the paused command with them) by PID,
//! then starts it again on the same port with the same host key. The run must end with
//! exit 1 and the checkpoint's state, or exit 2 with exactly the steps whose undo failed
//! named under "needs attention".

use std::path::Path;
use std::time::{Duration, Instant};

use super::lab::FaultLab;
use super::layer7::selected;
use super::matrix::{Verdict, WRITING, baseline, sets, undo_fails};
use crate::kong_lab::EMBEDDED_KONG;
use crate::sshd::SshLab;
use crate::traffic::Outcome;

/// The playbook of this part.
pub const FILE: &str = "kong-rolling-upgrade.yaml";

/// The fault kind's name in the table.
pub const KIND: &str = "sshd killed mid-step";

/// The wrapper the host commands run through over ssh: command number `pause_at` writes
/// `.lab/faults/paused` and waits (for the test to kill sshd and it with it).
const PAUSE: &str = r#"#!/bin/sh
# Reliability matrix: the nth host command pauses until sshd is killed
# (tests/run/reliability/faults/sshd_killed.rs).
dir=.lab/faults
mkdir -p "$dir"
n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$dir/count"
echo "$n $*" >> "$dir/log"
if [ "$(cat "$dir/pause_at" 2>/dev/null)" = "$n" ]; then
    touch "$dir/paused"
    sleep 30
fi
exec sh "$@"
"#;

/// Counts of the part: injected, restored (or named exactly), needs attention, and notes.
pub struct Tally {
    /// The writes of a run without faults, as the table describes them.
    pub writes: String,
    /// Faults injected.
    pub injected: usize,
    /// Runs restored or whose undo failures are named exactly.
    pub restored: usize,
    /// Anything else.
    pub attention: usize,
    /// What went wrong, per needs-attention trial.
    pub unexplained: Vec<String>,
    /// Trials whose run ended with exit 2 (undos that could not reach the host, named).
    pub exit2: usize,
}

/// Writes the lab's ssh environment: the standalone Kong twin, this sshd, the pausing
/// wrapper, commands run in the lab's directory.
fn ssh_environment(lab: &FaultLab, servers: &SshLab) -> Outcome<()> {
    let path = lab.shipped.lab.path();
    let shipped = std::fs::read_to_string(path.join("environments/lab-ssh.yaml"))?;
    let (checkout, ssh, node) = (
        "checkout: &checkout runsheet",
        "ssh: {connect_timeout: 10s}",
        "sh environments/lab-kong-node.sh",
    );
    if !shipped.contains(checkout) || !shipped.contains(ssh) || !shipped.contains(EMBEDDED_KONG) {
        return Err("environments/lab-ssh.yaml changed: update sshd_killed.rs's edits".into());
    }
    let environment = shipped
        .replace(
            EMBEDDED_KONG,
            &format!("kong: {}", lab.shipped.twin()?.gateway()),
        )
        .replace(checkout, &format!("checkout: &checkout \"{}\"", path.display()))
        .replace(
            ssh,
            &format!(
                "ssh: {{port: {}, user: {}, identity: \"{}\", known_hosts: \"{}\", connect_timeout: 5s}}",
                servers.servers[0].port,
                servers.user(),
                servers.client_key().display(),
                servers.known_hosts().display()
            ),
        )
        .replace(node, "sh environments/pause.sh environments/lab-kong-node.sh");
    lab.shipped
        .lab
        .write("environments/lab-ssh.yaml", &environment)?;
    lab.shipped.lab.write("environments/pause.sh", PAUSE)?;
    Ok(())
}

/// Waits up to 60 s for `file` to exist.
fn appears(file: &Path) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if file.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The part's trials: one seeded host command in the default run, every one in the full run.
pub fn tally(below: &mut dyn FnMut(usize) -> usize) -> Outcome<Option<Tally>> {
    if !selected(FILE) || !super::kind_selected(KIND) {
        return Ok(None);
    }
    let started = Instant::now();
    let playbook = WRITING
        .iter()
        .find(|playbook| playbook.file == FILE)
        .ok_or("kong-rolling-upgrade is not in the matrix")?;
    let base = baseline(playbook)?;
    let baseline_took = started.elapsed();
    let mut every: Vec<usize> = (1..=base.host_commands).collect();
    while every.len() > crate::reliability::scale(1, base.host_commands) {
        every.remove(below(every.len()));
    }
    let mut tally = Tally {
        writes: format!("{} host commands over ssh", base.host_commands),
        injected: 0,
        restored: 0,
        attention: 0,
        unexplained: Vec::new(),
        exit2: 0,
    };
    for n in every {
        let mut servers = SshLab::start(1)?;
        let lab = FaultLab::new()?;
        ssh_environment(&lab, &servers)?;
        let sets = sets(&lab, playbook)?;
        let path = format!("playbooks/{FILE}");
        let mut args = vec![path.as_str(), "--env", "environments/lab-ssh.yaml"];
        for set in &sets {
            args.extend(["--set", set.as_str()]);
        }
        // The nodes start at the first command, a plan.
        let plan = lab.runsheet(&[&["plan"], &args[..]].concat())?;
        if plan.code != Some(0) {
            return Err(format!("{FILE} over ssh: plan failed: {}", plan.all()).into());
        }
        let before = lab.state()?;
        lab.clear_twin()?;
        let faults = lab.shipped.lab.path().join(".lab/faults");
        std::fs::create_dir_all(&faults)?;
        for file in ["count", "log", "paused"] {
            let _ = std::fs::remove_file(faults.join(file));
        }
        std::fs::write(faults.join("pause_at"), n.to_string())?;
        let (run, paused) = std::thread::scope(|scope| {
            let running = scope.spawn(|| lab.runsheet(&[&["run"], &args[..]].concat()));
            let paused = appears(&faults.join("paused"));
            if paused {
                let _ = std::fs::write(faults.join("pause_at"), "");
                servers.servers[0].kill();
                std::thread::sleep(Duration::from_millis(300));
            }
            let restarted = servers.servers[0].restart();
            (running.join(), paused.then_some(restarted))
        });
        let run = run.map_err(|_| "the run's thread panicked")??;
        let state = lab.state()?;
        let command = std::fs::read_to_string(faults.join("log"))
            .unwrap_or_default()
            .lines()
            .find_map(|line| {
                let (number, command) = line.split_once(' ')?;
                (number == n.to_string())
                    .then(|| command.replace("environments/lab-kong-node.sh ", ""))
            })
            .unwrap_or_default();
        tally.injected += 1;
        match paused {
            Some(restarted) => restarted?,
            None => {
                tally.attention += 1;
                tally.unexplained.push(format!(
                    "{FILE} {KIND} #{n}: host command {n} never ran: {}",
                    run.all()
                ));
                continue;
            }
        }
        if run.code == Some(2) {
            tally.exit2 += 1;
        }
        match undo_fails(playbook, &base, &before, &run, &state) {
            Verdict::NeedsAttention(why) => {
                tally.attention += 1;
                tally
                    .unexplained
                    .push(format!("{FILE} {KIND} #{n} ({command}): {why}"));
            }
            _ => tally.restored += 1,
        }
    }
    eprintln!(
        "faults: sshd killed mid-step, {} trial(s) in {:.1} s (of which its baseline {:.1} s)",
        tally.injected,
        started.elapsed().as_secs_f64(),
        baseline_took.as_secs_f64()
    );
    Ok(Some(tally))
}
