//! The playbooks of the matrix, their trials, and the table.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use super::lab::{FaultLab, State, difference, portable};
use crate::kong_lab::ROOT;
use crate::lab::{Run, TestResult};
use crate::reliability::{full, report, scale};
use crate::traffic::Outcome;

/// A shipped playbook in the matrix.
pub(super) struct Playbook {
    /// Its file under playbooks/.
    pub(super) file: &'static str,
    /// The `--set`s of a run in the lab.
    sets: &'static [&'static str],
    /// The checkpoint step that ends each node's iteration (a rolling playbook), by id.
    node_checkpoint: Option<&'static str>,
}

/// Every shipped Kong playbook with writes, as the lab runs it.
pub(super) const WRITING: &[Playbook] = &[
    Playbook {
        file: "kong-restart.yaml",
        sets: &["ready_timeout=20s"],
        node_checkpoint: Some("restarted"),
    },
    Playbook {
        file: "kong-rolling-upgrade.yaml",
        sets: &["target_version=3.9.1", "ready_delay=50ms"],
        node_checkpoint: Some("upgraded"),
    },
    Playbook {
        file: "kong-rollback.yaml",
        sets: &[
            "approval=false",
            "mode=version",
            "version=3.8.0",
            "ready_timeout=20s",
        ],
        node_checkpoint: Some("done"),
    },
    Playbook {
        file: "kong-scale.yaml",
        sets: &["action=remove", r#"hosts=["dp3"]"#, "ready_timeout=20s"],
        node_checkpoint: Some("removed"),
    },
    Playbook {
        file: "kong-key-rotation.yaml",
        sets: &["consumer=alice", "validation_path=/payments"],
        node_checkpoint: None,
    },
    Playbook {
        file: "kong-policy-migration.yaml",
        sets: &["state_file=examples/kong-lab-state.yaml", "approval=false"],
        node_checkpoint: None,
    },
    Playbook {
        file: "kong-cert-rotation.yaml",
        sets: &["sni=localhost", "key=NEW_CERT_KEY"],
        node_checkpoint: None,
    },
];

/// The shipped playbooks that only read, with the `--set`s of a short run.
/// and the exit code and output line their documentation promises when the gateway's
/// database is unreachable: health-validation fails, gateway-diagnostics reports it.
const READ_ONLY: &[(&str, &[&str], i32, &str)] = &[
    (
        "health-validation.yaml",
        &["probe_count=5"],
        1,
        "FAILED  verdict",
    ),
    (
        "gateway-diagnostics.yaml",
        &["probe_count=5"],
        0,
        "database UNREACHABLE",
    ),
];

/// Shipped playbooks this part does not run yet, and why (the table says so).
const NOT_HERE: &[(&str, &str)] = &[
];

/// Needs-attention outcomes that are understood (docs/reliability.md explains each): the
/// playbook, the fault kind, the failed step and why. None at present: a failing status
/// command now fails its step (host.service reads LSB codes), and a step that leaves
/// changes it could not put back ends the run needing attention, which the undo-fails
/// kind requires.
const EXPLAINED: &[(&str, Kind, &str, &str)] = &[];

/// Why a needs-attention outcome is understood, or `None`: the test fails on it. `step` is
/// the failed step, followed for a host fault by the command the fault failed
/// (`stop (status .lab/kong/dp3)`).
fn explained(playbook: &str, kind: Kind, step: &str) -> Option<&'static str> {
    EXPLAINED
        .iter()
        .find(|(file, k, at, _)| *file == playbook && *k == kind && *at == step)
        .map(|(.., why)| *why)
}

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The nth twin write answers 503.
    Status503,
    /// The nth twin write's connection is closed without an answer.
    Dropped,
    /// The nth twin write is applied, then its connection is closed before the answer.
    LostAnswer,
    /// The nth host command fails (exit 97).
    HostCommand,
    /// Every twin write from the nth on answers 500: the step fails, and so does every
    /// undo that writes to the gateway.
    UndoFails,
    /// The nth twin write is applied and answered [`LATE_MS`] late, past the gateway's
    /// `request_timeout` ([`super::lab::REQUEST_TIMEOUT`]).
    Late,
}

/// How late the [`Kind::Late`] write lands: a second past the request timeout, within
/// the look-again wait of `kong.entity`.
const LATE_MS: u64 = 3000;

impl Kind {
    /// Every kind, in the table's order.
    const ALL: [Kind; 6] = [
        Kind::Status503,
        Kind::Dropped,
        Kind::LostAnswer,
        Kind::HostCommand,
        Kind::UndoFails,
        Kind::Late,
    ];

    /// The kind as the table names it.
    fn name(self) -> &'static str {
        match self {
            Kind::Status503 => "twin 503",
            Kind::Dropped => "twin dropped connection",
            Kind::LostAnswer => "twin write applied, answer lost",
            Kind::HostCommand => "host command fails",
            Kind::UndoFails => "twin 500 from then on (undo fails)",
            Kind::Late => "twin write applied past the timeout",
        }
    }
}

/// What a trial ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Exit 1 and the checkpoint's state.
    Restored,
    /// The fault was absorbed (a retry): exit 0 and the state of a run without faults.
    Absorbed,
    /// Anything else, with what went wrong.
    NeedsAttention(String),
}

/// A playbook's baseline: its write steps, writes and host commands, and its states.
pub(super) struct Baseline {
    /// The write steps `plan --output json` lists.
    write_steps: Vec<String>,
    /// Twin writes of a run without faults.
    twin_writes: usize,
    /// Host commands of a run without faults.
    pub(super) host_commands: usize,
    /// The state before the run.
    before: State,
    /// The state after a run without faults.
    after: State,
}

/// The `--set`s of `playbook` in `lab` (its artefacts kept in the lab).
pub(super) fn sets(lab: &FaultLab, playbook: &Playbook) -> Outcome<Vec<String>> {
    let mut sets: Vec<String> = playbook.sets.iter().map(|set| (*set).to_owned()).collect();
    if playbook_takes(playbook.file, "cert") {
        sets.push(format!("cert={}", lab.new_certificate()?));
    }
    sets.push(format!(
        "artefacts={}",
        lab.shipped.lab.path().join("artefacts").display()
    ));
    sets.retain(|set| !set.starts_with("artefacts=") || playbook_takes(playbook.file, "artefacts"));
    Ok(sets)
}

/// Whether the shipped playbook `file` declares input `name`.
fn playbook_takes(file: &str, name: &str) -> bool {
    std::fs::read_to_string(Path::new(ROOT).join("playbooks").join(file))
        .is_ok_and(|text| text.contains(&format!("\n  {name}: {{")))
}

/// The write steps of `plan --output json`.
fn write_steps(plan: &Run) -> Outcome<Vec<String>> {
    let start = plan.stdout.find('{').ok_or("plan printed no JSON")?;
    let plan_json: Value = serde_json::from_str(&plan.stdout[start..])?;
    Ok(plan_json["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|step| step["step"].as_str().map(str::to_owned))
        .collect())
}

/// A run of `playbook` without faults in a fresh lab, and what it wrote.
pub(super) fn baseline(playbook: &Playbook) -> Outcome<Baseline> {
    let lab = FaultLab::new()?;
    let sets = sets(&lab, playbook)?;
    let planned = {
        let path = format!("playbooks/{}", playbook.file);
        let mut args = vec![
            "plan",
            path.as_str(),
            "--env",
            "environments/lab.yaml",
            "--output",
            "json",
        ];
        for set in &sets {
            args.extend(["--set", set.as_str()]);
        }
        lab.runsheet(&args)?
    };
    if planned.code != Some(0) {
        return Err(format!("{}: plan failed: {}", playbook.file, planned.all()).into());
    }
    let write_steps = write_steps(&planned)?;
    let before = lab.state()?;
    lab.clear_twin()?;
    lab.host_fault(0)?;
    let run = lab.run("run", playbook.file, &sets)?;
    if run.code != Some(0) {
        return Err(format!(
            "{}: the run without faults failed: {}",
            playbook.file,
            run.all()
        )
        .into());
    }
    Ok(Baseline {
        write_steps,
        twin_writes: usize::try_from(lab.twin_writes()?)?,
        host_commands: lab.host_commands(),
        before,
        after: lab.state()?,
    })
}

/// The hosts whose iteration reached `checkpoint` in `run`'s output (`ok  X[dpN]....checkpoint`).
fn passed(run: &Run, checkpoint: &str) -> BTreeSet<usize> {
    run.stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().skip_while(|word| *word != "ok");
            words.next()?;
            let step = words.next()?;
            if !step.ends_with(&format!(".{checkpoint}")) {
                return None;
            }
            let host = step.split("[dp").nth(1)?.split(']').next()?;
            host.parse::<usize>().ok()?.checked_sub(1)
        })
        .collect()
}

/// The state at the checkpoint the run went back to: nodes whose iteration passed its
/// checkpoint as after a whole run, the others as before.
fn expected(
    playbook: &Playbook,
    base: &Baseline,
    before: &State,
    run: &Run,
) -> Result<State, String> {
    let done = playbook
        .node_checkpoint
        .map(|checkpoint| passed(run, checkpoint))
        .unwrap_or_default();
    let nodes = (0..base.before.nodes.len())
        .map(|n| {
            if done.contains(&n) {
                base.after.nodes[n].clone()
            } else {
                base.before.nodes[n].clone()
            }
        })
        .collect();
    let same = portable(&base.before).gateway == portable(&base.after).gateway;
    let gateway = if done.is_empty() || same {
        before.gateway.clone()
    } else if done.len() == base.before.nodes.len() {
        // The whole run's gateway, compared without the lab-specific ids.
        return Ok(portable(&State {
            gateway: base.after.gateway.clone(),
            nodes,
        }));
    } else {
        return Err(format!(
            "nodes {done:?} passed their checkpoint and the gateway's state of that point is not known"
        ));
    };
    Ok(State { gateway, nodes })
}

/// The step the run names as failed.
pub(super) fn failed_step(run: &Run) -> String {
    run.stdout
        .lines()
        .find_map(|line| {
            let rest = line.split("FAILED").nth(1)?;
            rest.split_whitespace()
                .next()
                .map(|step| step.trim_end_matches(':').to_owned())
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// One trial: a fresh lab, fault `kind` at its `n`th write or host command, the run, the
/// verdict, and the step that failed.
fn trial(playbook: &Playbook, base: &Baseline, kind: Kind, n: usize) -> Outcome<(Verdict, String)> {
    let lab = FaultLab::new()?;
    let sets = sets(&lab, playbook)?;
    // The nodes start at runsheet's first command: a plan, which writes nothing.
    let path = format!("playbooks/{}", playbook.file);
    let mut args = vec!["plan", path.as_str(), "--env", "environments/lab.yaml"];
    for set in &sets {
        args.extend(["--set", set.as_str()]);
    }
    lab.runsheet(&args)?;
    let before = lab.state()?;
    if portable(&before) != portable(&base.before) {
        return Err(format!(
            "{}: a fresh lab differs: {}",
            playbook.file,
            difference(&portable(&base.before), &portable(&before))
        )
        .into());
    }
    lab.clear_twin()?;
    lab.host_fault(0)?;
    match kind {
        Kind::Status503 => lab.twin_fault(&json!({"fail_nth_write": n, "status": 503}))?,
        Kind::Dropped => lab.twin_fault(&json!({"drop_nth_write": n}))?,
        Kind::LostAnswer => lab.twin_fault(&json!({"drop_nth_write": n, "when": "after"}))?,
        Kind::HostCommand => lab.host_fault(n)?,
        Kind::UndoFails => lab.twin_fault(
            &json!({"fail_nth_write": n, "status": 500, "probability": 1.0, "seed": 1}),
        )?,
        Kind::Late => lab.twin_fault(&json!({"delay_nth_write": n, "delay_ms": LATE_MS}))?,
    }
    let run = lab.run("run", playbook.file, &sets)?;
    if kind == Kind::Late {
        // The late write lands whether or not anyone waits: compare after it has.
        std::thread::sleep(std::time::Duration::from_millis(LATE_MS));
    }
    lab.clear_twin()?;
    let state = lab.state()?;
    let mut step = failed_step(&run);
    if kind == Kind::HostCommand {
        step = format!("{step} ({})", lab.failed_command(n));
    }
    if kind == Kind::UndoFails || run.code == Some(2) {
        // Exit 2 is right when exactly the steps left changed are named (a host command
        // failing after its step's write took effect: `host.service`'s status after a stop).
        return Ok((undo_fails(playbook, base, &before, &run, &state), step));
    }
    let verdict = match run.code {
        Some(1) => match expected(playbook, base, &before, &run) {
            Ok(expected) if expected == state || expected == portable(&state) => Verdict::Restored,
            Ok(expected) => Verdict::NeedsAttention(format!(
                "exit 1, state differs: {}",
                difference(&expected, &state)
            )),
            Err(why) => Verdict::NeedsAttention(why),
        },
        Some(0) if portable(&state) == portable(&base.after) => Verdict::Absorbed,
        Some(0) => Verdict::NeedsAttention(format!(
            "exit 0 and the state differs from a whole run's: {}",
            difference(&portable(&base.after), &portable(&state))
        )),
        other => Verdict::NeedsAttention(format!(
            "exit {other:?}: {}",
            run.stdout
                .lines()
                .rev()
                .take(12)
                .collect::<Vec<_>>()
                .join(" / ")
        )),
    };
    Ok((verdict, step))
}

/// The verdict of a run whose undos that write to the gateway fail too: exit 2 with every
/// step left as it was named under "needs attention", or exit 1 and the checkpoint's state
/// when nothing written since the checkpoint needed the gateway to be undone.
pub(super) fn undo_fails(
    playbook: &Playbook,
    base: &Baseline,
    before: &State,
    run: &Run,
    state: &State,
) -> Verdict {
    match run.code {
        Some(1) => match expected(playbook, base, before, run) {
            Ok(expected) if expected == *state || expected == portable(state) => Verdict::Restored,
            Ok(expected) => Verdict::NeedsAttention(format!(
                "exit 1, state differs: {}",
                difference(&expected, state)
            )),
            Err(why) => Verdict::NeedsAttention(why),
        },
        Some(2) => {
            let (failed, partial, named) = undo_failures(run);
            let left: BTreeSet<String> = failed.union(&partial).cloned().collect();
            if !left.is_empty()
                && left == named
                && left.iter().all(|step| base.write_steps.contains(step))
            {
                Verdict::Restored
            } else {
                Verdict::NeedsAttention(format!(
                    "exit 2, but the undos that failed ({failed:?}) and the steps left partly \
                     applied ({partial:?}) are not exactly the write steps named under `needs \
                     attention` ({named:?})"
                ))
            }
        }
        other => Verdict::NeedsAttention(format!("exit {other:?}, not 2")),
    }
}

/// The steps of `UNDO FAILED <step>` lines, the steps listed under `needs attention:` as
/// having failed partway without putting back their own changes, and every step listed
/// under `needs attention:`.
pub(super) fn undo_failures(run: &Run) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let mut failed = BTreeSet::new();
    let mut partial = BTreeSet::new();
    let mut named = BTreeSet::new();
    let mut in_list = false;
    for line in run.stdout.lines() {
        if let Some(rest) = line.split("UNDO FAILED ").nth(1) {
            failed.extend(rest.split(':').next().map(|step| step.trim().to_owned()));
        }
        if line.trim_end().ends_with("needs attention:") {
            in_list = true;
            continue;
        }
        // Plain output prefixes each line with its timestamp (`...Z  `).
        let body = line
            .split_once("Z  ")
            .filter(|(time, _)| !time.contains(' '))
            .map_or(line, |(_, body)| body);
        match body.trim_start().strip_prefix("- ") {
            Some(item) if in_list => {
                let step = item.split(':').next().map(|step| step.trim().to_owned());
                if item.contains(": failed partway and could not put back its own changes") {
                    partial.extend(step.clone());
                }
                named.extend(step)
            }
            _ => in_list = false,
        }
    }
    (failed, partial, named)
}

/// A read-only playbook under a gateway whose database is unreachable: exit `code`, output
/// line `says`, nothing written.
fn read_only(file: &str, sets: &[&str], code: i32, says: &str) -> Outcome<Verdict> {
    let lab = FaultLab::new()?;
    let sets: Vec<String> = sets.iter().map(|set| (*set).to_owned()).collect();
    let path = format!("playbooks/{file}");
    lab.shipped
        .runsheet(&["plan", path.as_str(), "--env", "environments/lab.yaml"])?;
    let before = lab.state()?;
    lab.clear_twin()?;
    lab.host_fault(0)?;
    lab.twin_fault(&json!({"database_unreachable": true}))?;
    let run = lab.run("run", file, &sets)?;
    lab.clear_twin()?;
    let after = lab.state()?;
    Ok(if run.code != Some(code) || !run.stdout.contains(says) {
        Verdict::NeedsAttention(format!(
            "exit {:?}, not {code} with {says:?}: {}",
            run.code,
            run.all()
        ))
    } else if lab.twin_writes()? != 0 || after != before {
        Verdict::NeedsAttention(format!(
            "something changed: {}",
            difference(&before, &after)
        ))
    } else {
        Verdict::Restored
    })
}

/// A small seeded generator (xorshift64*), so that the default run's sample is the same
/// on every machine; `RUNSHEET_FAULT_SEED` draws another.
struct Draw(u64);

impl Draw {
    fn new() -> Draw {
        let seed = std::env::var("RUNSHEET_FAULT_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or(0x5eed_f417_u64);
        eprintln!("faults: seed {seed} (RUNSHEET_FAULT_SEED)");
        Draw(seed.max(1))
    }

    /// A number in 0..bound (bound > 0).
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        usize::try_from(value % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// Counts of one table row.
#[derive(Default)]
struct Counts {
    /// Faults injected.
    injected: usize,
    /// Runs that ended as the fault kind requires.
    restored: usize,
    /// Faults a retry absorbed (exit 0, the whole run's state).
    absorbed: usize,
    /// Anything else.
    attention: usize,
}

impl Counts {
    /// Adds `other` to these counts.
    fn add(&mut self, other: &Counts) {
        self.injected += other.injected;
        self.restored += other.restored;
        self.absorbed += other.absorbed;
        self.attention += other.attention;
    }

    /// The table row of these counts.
    fn row(&self, playbook: &str, kind: &str, writes: &str, note: String) -> Vec<String> {
        vec![
            playbook.to_owned(),
            kind.to_owned(),
            writes.to_owned(),
            self.injected.to_string(),
            self.restored.to_string(),
            self.absorbed.to_string(),
            self.attention.to_string(),
            note,
        ]
    }
}

/// Runs the matrix, prints its table, and fails on an unexplained needs-attention outcome.
pub fn run_matrix() -> TestResult {
    let shipped: BTreeSet<String> = std::fs::read_dir(Path::new(ROOT).join("playbooks"))?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    let known: BTreeSet<String> = WRITING
        .iter()
        .map(|playbook| playbook.file)
        .chain(READ_ONLY.iter().map(|(file, ..)| *file))
        .chain(NOT_HERE.iter().map(|(file, _)| *file))
        .chain(super::layer7::FILES.iter().copied())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        shipped, known,
        "every shipped playbook has its place in the fault matrix"
    );

    let mut draw = Draw::new();
    let mut rows = Vec::new();
    let mut total = Counts::default();
    let mut unexplained = Vec::new();
    for playbook in WRITING.iter().filter(|p| super::layer7::selected(p.file)) {
        let base = baseline(playbook)?;
        let writes = format!(
            "{} steps, {} twin writes, {} host commands",
            base.write_steps.len(),
            base.twin_writes,
            base.host_commands
        );
        let every: Vec<(Kind, usize)> = Kind::ALL
            .iter()
            .filter(|kind| super::kind_selected(kind.name()))
            .flat_map(|&kind| {
                let count = if kind == Kind::HostCommand {
                    base.host_commands
                } else {
                    base.twin_writes
                };
                (1..=count).map(move |n| (kind, n))
            })
            .collect();
        // The default run: one seeded draw among every (kind, write) of the playbook.
        let mut trials = every.clone();
        while trials.len() > scale(1, every.len()) {
            trials.remove(draw.below(trials.len()));
        }
        for kind in Kind::ALL {
            let mut counts = Counts::default();
            let mut notes = Vec::new();
            for &(_, n) in trials.iter().filter(|(k, _)| *k == kind) {
                let (verdict, step) = trial(playbook, &base, kind, n)?;
                counts.injected += 1;
                match verdict {
                    Verdict::Restored => counts.restored += 1,
                    Verdict::Absorbed => counts.absorbed += 1,
                    Verdict::NeedsAttention(why) => {
                        counts.attention += 1;
                        let why_known = explained(playbook.file, kind, &step);
                        notes.push(format!(
                            "#{n} at {step}: {}",
                            why_known.unwrap_or("NOT EXPLAINED")
                        ));
                        if why_known.is_none() {
                            unexplained.push(format!(
                                "{} {} #{n} at {step}: {why}",
                                playbook.file,
                                kind.name()
                            ));
                        }
                    }
                }
            }
            if counts.injected > 0 {
                rows.push(counts.row(playbook.file, kind.name(), &writes, notes.join(", ")));
                total.add(&counts);
            }
        }
    }
    for row in super::layer7::rows(&mut |bound| draw.below(bound))? {
        let counts = Counts {
            injected: row.injected,
            restored: row.restored,
            absorbed: row.absorbed,
            attention: row.attention,
        };
        rows.push(counts.row(row.playbook, row.kind.name(), &row.writes, row.notes.join(", ")));
        total.add(&counts);
        unexplained.extend(row.unexplained);
    }
    if let Some(ssh) = super::sshd_killed::tally(&mut |bound| draw.below(bound))? {
        let counts = Counts {
            injected: ssh.injected,
            restored: ssh.restored,
            absorbed: 0,
            attention: ssh.attention,
        };
        let note = format!("{} of them exit 2, the unreachable undos named", ssh.exit2);
        rows.push(counts.row(super::sshd_killed::FILE, super::sshd_killed::KIND, &ssh.writes, note));
        total.add(&counts);
        unexplained.extend(ssh.unexplained);
    }
    for (file, sets, code, says) in READ_ONLY {
        let mut counts = Counts {
            injected: 1,
            ..Counts::default()
        };
        let note = match read_only(file, sets, *code, says)? {
            Verdict::NeedsAttention(why) => {
                counts.attention = 1;
                unexplained.push(format!("{file}: {why}"));
                why
            }
            _ => {
                counts.restored = 1;
                format!("no writes: exit {code} ({says:?}), nothing changed")
            }
        };
        rows.push(counts.row(file, "twin database unreachable", "no writes", note));
        total.add(&counts);
    }
    for (file, why) in NOT_HERE {
        rows.push(Counts::default().row(file, "-", "-", (*why).to_owned()));
    }
    rows.push(total.row(
        "**total**",
        if full() {
            "every write × every kind"
        } else {
            "one seeded trial per playbook"
        },
        "",
        String::new(),
    ));
    report(
        "Faults at every write step",
        &[
            "playbook",
            "fault",
            "writes (run without faults)",
            "injected",
            "restored (or exit 2 with the steps left named exactly)",
            "absorbed (retried)",
            "needs attention",
            "where / why",
        ],
        &rows,
    );
    assert!(
        unexplained.is_empty(),
        "unexplained needs-attention outcomes:\n{}",
        unexplained.join("\n")
    );
    Ok(())
}
