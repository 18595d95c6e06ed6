//! Reliability matrix: environment locks. Two `runsheet run`s started at the same
//! moment against one environment: exactly one proceeds, the other is refused with
//! exit 5 (docs/running.md) naming the run that holds the lock; two runs against
//! different environments both proceed.

use std::process::{Child, Output};

use crate::lab::{Lab, TestResult};
use crate::reliability::{report, scale};

/// A playbook that holds its environment for a while: one local command.
const SLOW: &str = "runsheet: 1
name: slow
steps:
  - id: hold
    action: host.exec
    on: me
    with: {command: sleep 1}
";

/// An environment named `name` with the local host `me`.
fn environment(name: &str) -> String {
    format!("runsheet: 1\nname: {name}\nhosts:\n  me: {{transport: local}}\n")
}

/// Starts `runsheet run slow.yaml --env ENV` with a shared state directory.
fn start(lab: &Lab, env: &str) -> std::io::Result<Child> {
    lab.spawn(&["run", "slow.yaml", "--env", env, "--state-dir", "state"])
}

/// Exit code and both streams of a finished child.
fn finish(child: Child) -> std::io::Result<(Option<i32>, String)> {
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output()?;
    Ok((
        status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    ))
}

/// The run id a run's output names on its first line (`run ID: ...`).
fn run_id(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let rest = line.split("  ").nth(1).unwrap_or(line);
        rest.strip_prefix("run ")
            .and_then(|rest| rest.split(':').next())
            .map(str::to_owned)
    })
}

#[test]
fn of_two_runs_started_together_on_one_environment_exactly_one_proceeds() -> TestResult {
    let lab = Lab::new()?;
    lab.write("slow.yaml", SLOW)?;
    lab.write("one.yaml", &environment("one"))?;
    lab.write("other.yaml", &environment("other"))?;
    let trials = scale(3, 20);
    let mut rows = Vec::new();

    let (mut proceeded, mut refused, mut named) = (0, 0, 0);
    for trial in 0..trials {
        let (first, second) = (start(&lab, "one.yaml")?, start(&lab, "one.yaml")?);
        let mut ends = [finish(first)?, finish(second)?];
        ends.sort_by_key(|(code, _)| *code);
        let [(won, winner), (lost, loser)] = ends;
        assert_eq!(
            won,
            Some(0),
            "trial {trial}: one run proceeds:\n{winner}\n{loser}"
        );
        assert_eq!(
            lost,
            Some(5),
            "trial {trial}: the other is refused:\n{winner}\n{loser}"
        );
        proceeded += 1;
        refused += 1;
        let owner = run_id(&winner).ok_or_else(|| format!("no run id in {winner}"))?;
        assert!(
            loser.contains("environment `one` is locked by run")
                && loser.contains(&format!("run {owner} (pid ")),
            "trial {trial}: the refusal names the owner {owner}: {loser}"
        );
        named += 1;
    }
    rows.push(vec![
        "same environment, started together".to_owned(),
        trials.to_string(),
        proceeded.to_string(),
        format!("{refused} (exit 5)"),
        named.to_string(),
    ]);

    let mut both = 0;
    for trial in 0..trials {
        let (first, second) = (start(&lab, "one.yaml")?, start(&lab, "other.yaml")?);
        for (code, output) in [finish(first)?, finish(second)?] {
            assert_eq!(
                code,
                Some(0),
                "trial {trial}: both environments proceed: {output}"
            );
        }
        both += 1;
    }
    rows.push(vec![
        "different environments, started together".to_owned(),
        trials.to_string(),
        (2 * both).to_string(),
        "0".to_owned(),
        "-".to_owned(),
    ]);
    report(
        "Locks: concurrent runs",
        &[
            "case",
            "trials",
            "runs proceeded",
            "runs refused",
            "refusals naming the owner",
        ],
        &rows,
    );
    Ok(())
}
