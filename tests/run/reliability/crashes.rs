//! Reliability matrix, crashes: `kill -9` of the binary at seeded random points of every
//! shipped playbook that writes, then `runsheet resume RUN` until the run ends; the
//! gateway and nodes end as an uninterrupted run leaves them, no non-idempotent write
//! reaches the twin more often than that run sends it, and the journal's hash chain
//! verifies. The journal on a full disk, a torn last line and a read-only state
//! directory are in `crashes/disk.rs`.
//!
//! The seed is printed first (`RUNSHEET_CRASH_SEED=N` replays a failure's trials;
//! `RUNSHEET_CRASH_PLAYBOOKS=a,b` runs those playbooks' trials only,
//! `RUNSHEET_CRASH_TRIALS=N` N trials of each).

mod disk;
mod layer7_nodes;
mod subjects;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::lab::{Run, TestResult};
use crate::traffic::Outcome;

use subjects::{Subject, Target};

/// A small deterministic generator (its seed is printed, so a failure reproduces).
pub struct Lcg(u64);

impl Lcg {
    /// A number below `below`.
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}

/// The seed of this run's trials: `RUNSHEET_CRASH_SEED`, else the clock.
fn seed() -> u64 {
    std::env::var("RUNSHEET_CRASH_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos() as u64)
                .unwrap_or(7)
        })
}

/// What an uninterrupted run of a subject does: its final state, its write requests and
/// how long it takes.
struct Reference {
    state: String,
    writes: BTreeMap<String, u64>,
    took: Duration,
}

/// Tallies of one playbook's trials.
#[derive(Default)]
struct Tally {
    trials: usize,
    equal: usize,
    person: usize,
    before_start: usize,
    twice: u64,
    reruns: u64,
    chain_intact: usize,
    resumes: usize,
}

/// A write request kind that must not reach the gateway more often than in an
/// uninterrupted run: a `POST` creates (Kong and restman alike), so a second one is a
/// non-idempotent write applied twice; `PUT`, `PATCH` and `DELETE` set a state and may be
/// sent again by an idempotent action re-run.
fn non_idempotent(key: &str) -> bool {
    key.starts_with("POST ")
}

/// The requests of `after` beyond those of `reference`: (non-idempotent, idempotent).
fn excess(
    after: &BTreeMap<String, u64>,
    reference: &BTreeMap<String, u64>,
) -> (u64, u64, Vec<String>) {
    let (mut twice, mut reruns, mut named) = (0, 0, Vec::new());
    for (key, count) in after {
        let more = count.saturating_sub(reference.get(key).copied().unwrap_or(0));
        if more == 0 {
            continue;
        }
        if non_idempotent(key) {
            twice += more;
            named.push(format!("{key} x{more}"));
        } else {
            reruns += more;
        }
    }
    (twice, reruns, named)
}

/// The lines of `reference` missing from `resumed` and the lines `resumed` has more.
fn difference(reference: &str, resumed: &str) -> String {
    let count = |text: &str| {
        let mut lines: BTreeMap<String, i64> = BTreeMap::new();
        for line in text.lines() {
            *lines.entry(line.to_owned()).or_default() += 1;
        }
        lines
    };
    let (before, after) = (count(reference), count(resumed));
    let mut out = String::new();
    for (line, n) in &before {
        for _ in 0..(n - after.get(line).copied().unwrap_or(0)).max(0) {
            out.push_str(&format!("- {line}\n"));
        }
    }
    for (line, n) in &after {
        for _ in 0..(n - before.get(line).copied().unwrap_or(0)).max(0) {
            out.push_str(&format!("+ {line}\n"));
        }
    }
    out
}

/// The gate a paused run names (`--approve GATE`).
fn gate(run: &Run) -> Option<String> {
    let all = run.all();
    let at = all.find("--approve ")?;
    let rest = &all[at + "--approve ".len()..];
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// `runsheet resume RUN` until it ends: approving a gate it pauses at, retrying while
/// it is refused (a lock the killed process left is being taken back). The last run
/// and how many resumes it took.
fn resume_to_the_end(target: &dyn Target, id: &str) -> Outcome<(Run, usize)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut approve: Option<String> = None;
    let mut resumes = 0;
    loop {
        let mut args = vec!["resume".to_owned(), id.to_owned()];
        if let Some(gate) = approve.take() {
            args.extend(["--approve".to_owned(), gate]);
        }
        let resumed = target.lab().run_with(target.command(&args))?;
        resumes += 1;
        let again = match resumed.code {
            Some(4) => {
                approve = gate(&resumed);
                approve.is_some()
            }
            Some(5) => true,
            _ => false,
        };
        if !again || Instant::now() > deadline {
            return Ok((resumed, resumes));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `subject` uninterrupted (through its gates): the reference.
fn reference(subject: &Subject) -> Outcome<Reference> {
    let target = (subject.build)()?;
    target.reset_counters()?;
    let started = Instant::now();
    let run = target.lab().run_with(target.command(&target.run_args()))?;
    let took = started.elapsed();
    let run = match run.code {
        Some(4) => {
            let id = run.run_id().ok_or("no run id")?;
            resume_to_the_end(target.as_ref(), &id)?.0
        }
        _ => run,
    };
    if run.code != Some(0) {
        return Err(format!(
            "{}: the uninterrupted run failed: {}",
            subject.name,
            run.all()
        )
        .into());
    }
    Ok(Reference {
        writes: target.writes()?,
        state: target.state()?,
        took,
    })
}

/// One trial: killed after `delay`, resumed to the end, checked against `reference`.
fn trial(
    subject: &Subject,
    reference: &Reference,
    delay: Duration,
    tally: &mut Tally,
    label: &str,
) -> TestResult {
    let target = (subject.build)()?;
    target.reset_counters()?;
    let initial = target.state()?;
    let mut child = target
        .command(&target.run_args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // The delay counts from the moment the run's directory exists (the binary's start-up
    // and loading are not worth trials), or from the start if it never appears.
    let appeared = Instant::now() + Duration::from_secs(10);
    while target.run_id().is_none() && Instant::now() < appeared {
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(delay);
    child.kill()?;
    child.wait()?;
    tally.trials += 1;
    let Some(id) = target.run_id() else {
        // Killed before the run's directory existed: nothing may have changed.
        let state = target.state()?;
        assert!(
            state == initial,
            "{label}: killed before the run existed, yet the state changed:\n{}",
            difference(&initial, &state)
        );
        tally.before_start += 1;
        tally.equal += 1;
        tally.chain_intact += 1;
        return Ok(());
    };
    let (resumed, resumes) = resume_to_the_end(target.as_ref(), &id)?;
    tally.resumes += resumes;
    let (twice, reruns, named) = excess(&target.writes()?, &reference.writes);
    tally.twice += twice;
    tally.reruns += reruns;
    assert_eq!(
        twice,
        0,
        "{label}: a non-idempotent write reached the gateway twice ({named:?}): {}",
        resumed.all()
    );
    let verified = target.lab().run(&["show", id.as_str(), "--verify"])?;
    assert!(
        verified.stdout.contains("hash chain intact"),
        "{label}: {}",
        verified.all()
    );
    tally.chain_intact += 1;
    match resumed.code {
        Some(0) => {
            let state = target.state()?;
            assert!(
                state == reference.state,
                "{label}: resumed to a state other than the uninterrupted run's:\n{}\n{}",
                resumed.all(),
                difference(&reference.state, &state)
            );
            tally.equal += 1;
        }
        Some(2) if resumed.all().contains("check it by hand") => tally.person += 1,
        other => {
            return Err(format!("{label}: resume ended with {other:?}: {}", resumed.all()).into());
        }
    }
    Ok(())
}

#[test]
fn kill_9_at_random_points_of_every_writing_playbook_then_resume() -> TestResult {
    let seed = seed();
    eprintln!("crash matrix seed {seed} (RUNSHEET_CRASH_SEED={seed} replays it)");
    let mut random = Lcg(seed);
    let subjects = subjects::all();
    // CI: one trial each for two playbooks, chosen by the seed; full: every playbook,
    // >= 200 trials in all.
    let per_subject = std::env::var("RUNSHEET_CRASH_TRIALS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| crate::reliability::scale(1, 200_usize.div_ceil(subjects.len())));
    let only = std::env::var("RUNSHEET_CRASH_PLAYBOOKS").unwrap_or_default();
    let chosen: Vec<&Subject> = if !only.is_empty() {
        subjects
            .iter()
            .filter(|subject| only.split(',').any(|name| name == subject.name))
            .collect()
    } else if crate::reliability::full() {
        subjects.iter().collect()
    } else {
        let first = random.next(subjects.len() as u64) as usize;
        (0..2)
            .map(|i| &subjects[(first + i) % subjects.len()])
            .collect()
    };
    let mut rows = Vec::new();
    let mut total = 0;
    for subject in chosen {
        let reference = reference(subject)?;
        let mut tally = Tally::default();
        for n in 0..per_subject {
            // Anywhere from the run's start to a little past the uninterrupted run's end.
            let span = reference.took.as_millis() as u64 + 100;
            let delay = Duration::from_millis(random.next(span));
            let label = format!(
                "seed {seed}, {} trial {n}, killed after {} ms",
                subject.name,
                delay.as_millis()
            );
            trial(subject, &reference, delay, &mut tally, &label)?;
        }
        total += tally.trials;
        rows.push(vec![
            subject.name.to_owned(),
            tally.trials.to_string(),
            tally.equal.to_string(),
            tally.person.to_string(),
            tally.twice.to_string(),
            tally.reruns.to_string(),
            format!("{}/{}", tally.chain_intact, tally.trials),
            tally.before_start.to_string(),
            format!("{} ms", reference.took.as_millis()),
        ]);
    }
    crate::reliability::report(
        &format!("Crashes: kill -9 at random points, then resume (seed {seed})"),
        &[
            "playbook",
            "trials",
            "resumed to equal state",
            "stopped for a person",
            "writes applied twice",
            "idempotent writes re-sent",
            "chain intact",
            "killed before the run existed",
            "uninterrupted run",
        ],
        &rows,
    );
    assert!(total > 0, "no trial ran");
    Ok(())
}
