//! The Layer7 playbooks' part of the fault matrix: the kinds of fault, the verdict of a
//! trial, and the table rows (the gateway playbooks in `layer7_gateways`, the node
//! playbooks in `layer7_nodes`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::matrix::{failed_step, undo_failures};
use crate::lab::Run;
use crate::reliability::scale;
use crate::traffic::Outcome;

/// The Layer7 playbooks of the matrix.
pub const FILES: [&str; 4] = [
    "layer7-policy-migration.yaml",
    "layer7-key-rotation.yaml",
    "layer7-restart.yaml",
    "layer7-patch-upgrade.yaml",
];

/// Whether playbook `file` runs: every one, or those whose name contains one of the
/// comma-separated words of `RUNSHEET_FAULT_ONLY` (to run part of the full matrix).
pub fn selected(file: &str) -> bool {
    std::env::var("RUNSHEET_FAULT_ONLY").map_or(true, |only| {
        only.split(',').any(|word| file.contains(word.trim()))
    })
}

/// A kind of fault, named as the Kong rows name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The nth gateway write answers 503.
    Status503,
    /// The nth gateway write's connection is closed without an answer.
    Dropped,
    /// The nth gateway write is applied, then its connection is closed before the answer.
    LostAnswer,
    /// The nth host command fails (exit 97).
    HostCommand,
    /// Every gateway write from the nth on answers 500, the undos' too.
    UndoFails,
    /// The nth gateway write is applied and answered [`LATE_MS`] late, past the gateway's
    /// `request_timeout` ([`REQUEST_TIMEOUT`]).
    Late,
}

/// The gateways' `request_timeout` in these labs.
pub const REQUEST_TIMEOUT: &str = "2s";

/// How late a [`Kind::Late`] write lands: a second past the request timeout.
pub const LATE_MS: u64 = 3000;

impl Kind {
    /// The `/_twin/faults` body of this kind at the nth write (`None`: a host fault).
    pub fn twin_fault(self, n: usize) -> Option<serde_json::Value> {
        match self {
            Kind::Status503 => Some(json!({"fail_nth_write": n, "status": 503})),
            Kind::Dropped => Some(json!({"drop_nth_write": n})),
            Kind::LostAnswer => Some(json!({"drop_nth_write": n, "when": "after"})),
            Kind::UndoFails => Some(
                json!({"fail_nth_write": n, "status": 500, "probability": 1.0, "seed": 1}),
            ),
            Kind::Late => Some(json!({"delay_nth_write": n, "delay_ms": LATE_MS})),
            Kind::HostCommand => None,
        }
    }

    /// Waits, after a run, for what this kind may still apply (a late write) to land.
    pub fn settle(self) {
        if self == Kind::Late {
            std::thread::sleep(std::time::Duration::from_millis(LATE_MS));
        }
    }
}

impl Kind {
    /// The kind as the table names it.
    pub fn name(self) -> &'static str {
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

/// What a trial ended in, and where.
pub struct Trial {
    /// `None`: restored (or, for the undo-fails kind, exit 2 with the steps named
    /// exactly); `Some(true)`: absorbed by a retry; otherwise what went wrong.
    pub verdict: Result<Option<bool>, String>,
    /// The step the run names as failed (a host fault: and the failed command).
    pub step: String,
}

impl Trial {
    /// The verdict of `run` under a fault of `kind`: `restored` whether the state equals the
    /// checkpoint's, `whole` whether it equals a run without faults' (`None`: not
    /// comparable, as a generated key differs from run to run).
    pub fn judge(kind: Kind, run: &Run, restored: bool, whole: Option<bool>) -> Trial {
        let verdict = match run.code {
            Some(1) if restored => Ok(None),
            Some(1) => Err("exit 1, but the state is not the checkpoint's".to_owned()),
            Some(0)
                if kind != Kind::UndoFails
                    && (whole == Some(true) || (whole.is_none() && !restored)) =>
            {
                Ok(Some(true))
            }
            Some(0) if kind != Kind::UndoFails => {
                Err("exit 0, but the state is not a whole run's".to_owned())
            }
            // Exit 2 is right for any kind when exactly the steps left changed are named:
            // undos that failed, a late write's step, a status command failing after its
            // stop took effect (the step partly applied, and the drain's undo then waits
            // for a node nobody restarts), as in the Kong rows.
            Some(2) => {
                let (failed, partial, named) = undo_failures(run);
                let left: BTreeSet<String> = failed.union(&partial).cloned().collect();
                if !left.is_empty() && left == named {
                    Ok(None)
                } else {
                    Err(format!(
                        "exit 2, but the undos that failed ({failed:?}) and the steps left \
                         partly applied ({partial:?}) are not exactly the steps named under \
                         `needs attention` ({named:?})"
                    ))
                }
            }
            other => Err(format!(
                "exit {other:?}: {}",
                run.stdout
                    .lines()
                    .rev()
                    .take(12)
                    .collect::<Vec<_>>()
                    .join(" / ")
            )),
        };
        Trial {
            verdict,
            step: failed_step(run),
        }
    }
}

/// Why a needs-attention outcome is understood (docs/reliability.md explains each), or
/// `None`: the test fails on it.
fn explained(playbook: &str, kind: Kind, step: &str) -> Option<&'static str> {
    // None at present: layer7.key_rotate whose own roll-back fails reports the key it left
    // (a partly applied step), so that run ends needing attention, as the kind requires.
    let _ = (playbook, kind, step);
    None
}

/// One table row: a playbook under one kind of fault.
pub struct Row {
    /// The playbook's file.
    pub playbook: &'static str,
    /// The kind of fault.
    pub kind: Kind,
    /// What a run without faults writes.
    pub writes: String,
    /// Faults injected.
    pub injected: usize,
    /// Runs restored.
    pub restored: usize,
    /// Faults absorbed by a retry.
    pub absorbed: usize,
    /// Runs that need attention.
    pub attention: usize,
    /// Where each needs-attention run failed.
    pub notes: Vec<String>,
    /// The needs-attention runs not explained, with what went wrong.
    pub unexplained: Vec<String>,
}

impl Row {
    /// Runs the default run's one seeded draw among `every` (kind, n), or all of them in
    /// the full run, with `trial`; the rows by kind.
    pub fn sample(
        playbook: &'static str,
        writes: &str,
        every: &[(Kind, usize)],
        below: &mut dyn FnMut(usize) -> usize,
        mut trial: impl FnMut(Kind, usize) -> Outcome<Trial>,
    ) -> Outcome<Vec<Row>> {
        let every: Vec<(Kind, usize)> = every
            .iter()
            .filter(|(kind, _)| super::kind_selected(kind.name()))
            .copied()
            .collect();
        let mut trials = every.clone();
        while trials.len() > scale(1, every.len()) {
            trials.remove(below(trials.len()));
        }
        // `RUNSHEET_FAULT_TRIALS=3,6`: only those writes or commands (to replay trials).
        if let Ok(only) = std::env::var("RUNSHEET_FAULT_TRIALS") {
            let only: Vec<usize> = only.split(',').filter_map(|n| n.trim().parse().ok()).collect();
            trials.retain(|(_, n)| only.contains(n));
        }
        let mut rows: BTreeMap<Kind, Row> = BTreeMap::new();
        for (kind, n) in trials {
            let outcome = trial(kind, n)?;
            let row = rows.entry(kind).or_insert_with(|| Row {
                playbook,
                kind,
                writes: writes.to_owned(),
                injected: 0,
                restored: 0,
                absorbed: 0,
                attention: 0,
                notes: Vec::new(),
                unexplained: Vec::new(),
            });
            row.injected += 1;
            match outcome.verdict {
                Ok(None) => row.restored += 1,
                Ok(Some(_)) => row.absorbed += 1,
                Err(why) => {
                    row.attention += 1;
                    let known = explained(playbook, kind, &outcome.step);
                    row.notes.push(format!(
                        "#{n} at {}: {}",
                        outcome.step,
                        known.unwrap_or("NOT EXPLAINED")
                    ));
                    if known.is_some() {
                        continue;
                    }
                    row.unexplained.push(format!(
                        "{playbook} {} #{n} at {}: {why}",
                        kind.name(),
                        outcome.step
                    ));
                }
            }
        }
        Ok(rows.into_values().collect())
    }
}

/// Every Layer7 row: the gateway playbooks, then the node playbooks.
pub fn rows(below: &mut dyn FnMut(usize) -> usize) -> Outcome<Vec<Row>> {
    let started = std::time::Instant::now();
    let mut rows = super::layer7_gateways::rows(below)?;
    let gateways = started.elapsed();
    rows.extend(super::layer7_nodes::rows(below)?);
    eprintln!(
        "faults: Layer7 gateway playbooks {:.1} s, node playbooks {:.1} s",
        gateways.as_secs_f64(),
        (started.elapsed() - gateways).as_secs_f64()
    );
    Ok(rows)
}
