//! The README's first command, run as written: on a copy of the repository's lab
//! (playbooks/ and environments/, nothing started beforehand), the arguments of the
//! README's `cargo run --release -- ...` line given to this build's binary. The only change
//! to the copy is the Kong nodes' ports (free ones, so that tests run side by side); the
//! nodes runsheet starts are stopped by their PID files afterwards.

use crate::kong_lab::{ROOT, ShippedLab};
use crate::lab::TestResult;

/// What the README's first command runs.
const FIRST_COMMAND: &str = "cargo run --release -- run playbooks/kong-rolling-upgrade.yaml --env environments/lab.yaml --set target_version=3.9.1";

/// The first command of the README's "On a fresh machine" section.
fn readme_first_command() -> Result<String, Box<dyn std::error::Error>> {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md"))?;
    let section = readme
        .split("## On a fresh machine")
        .nth(1)
        .ok_or("the README has no section `On a fresh machine`")?;
    let block = section
        .split("```sh\n")
        .nth(1)
        .ok_or("the section has no sh block")?;
    block
        .lines()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| "the sh block is empty".into())
}

#[test]
fn the_readme_first_command_upgrades_the_lab_from_a_fresh_copy_twice() -> TestResult {
    let command = readme_first_command()?;
    assert_eq!(command, FIRST_COMMAND, "the README's first command changed");
    let args: Vec<&str> = command
        .strip_prefix("cargo run --release -- ")
        .ok_or("not a cargo run line")?
        .split_whitespace()
        .collect();
    let lab = ShippedLab::embedded(|text| text, |text| text)?;
    assert!(
        !lab.lab.path().join(".lab").exists(),
        "nothing started before the command"
    );
    let run = lab.runsheet(&args)?;
    run.assert_ended(0, &[]);
    lab.assert_all_on("3.9.1")?;
    assert!(
        run.stdout.contains("dp2 upgraded: Kong 3.9.0 -> 3.9.1"),
        "{}",
        run.all()
    );
    // Each drained node kept serving for the lab's drain wait (kong_drain_wait: 500ms)
    // before it stopped.
    for node in ["dp1", "dp2", "dp3"] {
        let drained = format!("ok      upgrade[{node}].node.drained  ");
        let waited_ms = run
            .stdout
            .lines()
            .find_map(|line| line.split(&drained).nth(1))
            .and_then(|took| took.trim().strip_suffix("ms")?.parse::<u64>().ok());
        assert!(waited_ms.is_some_and(|ms| ms >= 500), "{node}: {waited_ms:?}\n{}", run.all());
    }
    // The run ends with its closure summary.
    let last = run.stdout.lines().rev().take(2).collect::<Vec<_>>();
    assert!(
        last.iter()
            .any(|line| line.contains("  closure: successful in ")),
        "the closure summary ends the output: {}",
        run.all()
    );
    // Per node: drain, stop, install, start, readmit.
    assert!(
        run.stdout
            .contains("; 15 write step(s) ran, nothing undone"),
        "{}",
        run.all()
    );

    let again = lab.runsheet(&args)?;
    assert_eq!(again.code, Some(0), "a second run: {}", again.all());
    assert!(
        again
            .stdout
            .contains("dp3 already runs Kong 3.9.1: left as it is"),
        "{}",
        again.all()
    );
    assert!(
        again.stdout.contains("0 write step(s) ran"),
        "{}",
        again.all()
    );
    Ok(())
}
