//! Crash and resume: kill -9 the binary at random points, resume, and compare
//! with an uninterrupted run; a non-idempotent write never runs twice.

use std::time::{Duration, Instant};

use crate::lab::{Lab, TestResult};

const TRIALS: usize = 30;

/// Writes files (idempotent) and appends to a counter (not idempotent), with short waits.
fn playbook() -> String {
    let mut text = String::from("runsheet: 1\nname: crashy\nsteps:\n");
    for i in 1..=4 {
        text.push_str(&format!(
            "  - {{id: file{i}, action: host.file, on: me, with: {{path: \"{{{{ env.data }}}}/f{i}\", content: \"{i}\\n\"}}}}\n  - {{id: count{i}, action: host.exec, on: me, with: {{command: \"echo {i} >> {{{{ env.data }}}}/count\"}}}}\n  - {{id: wait{i}, action: sleep, with: {{duration: 60ms}}}}\n"
        ));
    }
    text
}

fn lab() -> std::io::Result<Lab> {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", &playbook())?;
    Ok(lab)
}

/// A small deterministic generator (the seed is printed on failure).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[test]
fn kill_9_at_random_points_then_resume_matches_an_uninterrupted_run() -> TestResult {
    let reference = {
        let lab = lab()?;
        let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
        assert_eq!(run.code, Some(0), "{}", run.all());
        lab.tree()?
    };
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    let mut random = Lcg(seed);
    let (mut equal, mut needed_a_person, mut before_start) = (0, 0, 0);
    for trial in 0..TRIALS {
        let lab = lab()?;
        let mut child = lab.spawn(&["run", "p.yaml", "--env", "env.yaml"])?;
        std::thread::sleep(Duration::from_millis(random.next(500)));
        child.kill()?;
        child.wait()?;
        let Some(id) = lab.only_run() else {
            before_start += 1;
            continue;
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < deadline {
            let resumed = lab.run(&["resume", &id])?;
            let code = resumed.code;
            last = Some(resumed);
            if code != Some(5) {
                break;
            }
        }
        let resumed = last.ok_or("no resume")?;
        let count = std::fs::read_to_string(lab.data().join("count")).unwrap_or_default();
        let mut lines: Vec<&str> = count.lines().collect();
        let total = lines.len();
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len(), total, "seed {seed} trial {trial}: a non-idempotent write ran twice: {count:?}\n{}", resumed.all());
        let verified = lab.run(&["show", &id, "--verify"])?;
        assert!(verified.stdout.contains("hash chain intact"), "seed {seed} trial {trial}: {}", verified.all());
        match resumed.code {
            Some(0) => {
                assert_eq!(lab.tree()?, reference, "seed {seed} trial {trial}: {}", resumed.all());
                equal += 1;
            }
            Some(2) => {
                assert!(resumed.stdout.contains("check it by hand") && resumed.stdout.contains("count"), "seed {seed} trial {trial}: {}", resumed.all());
                needed_a_person += 1;
            }
            other => return Err(format!("seed {seed} trial {trial}: resume exited {other:?}: {}", resumed.all()).into()),
        }
    }
    eprintln!("crash trials: {equal} resumed to the reference state, {needed_a_person} stopped for a person (a non-idempotent write in doubt), {before_start} killed before the run existed");
    assert!(equal + needed_a_person + before_start == TRIALS);
    assert!(equal >= TRIALS / 2, "seed {seed}: most trials resume to the reference state");
    Ok(())
}
