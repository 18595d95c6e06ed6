//! The summary of a run, folded from its events: what reports are written from.

use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use super::event::{Event, EventKind, Observer, Outcome};
use crate::action::Change;

/// Facts about the run that are not events: who, where, what.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunFacts {
    /// Run id.
    pub run: String,
    /// Playbook name.
    pub playbook: String,
    /// Playbook file as given.
    pub playbook_path: String,
    /// SHA-256 of the playbook file.
    pub playbook_sha256: String,
    /// Environment name.
    pub environment: Option<String>,
    /// Change id.
    pub change_id: Option<String>,
    /// Change window as `START/END`.
    pub window: Option<String>,
    /// Who ran it (the OS user).
    pub operator: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// The CI/CD execution that started the run, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiContext>,
}

/// The CI/CD execution a run belongs to, for the closure report and the change request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CiContext {
    /// The system: `harness`, `github`, or `ci` when only `CI` says so.
    pub system: String,
    /// Link to the execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_url: Option<String>,
    /// Execution id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// Pipeline id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Stage id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Build (run) number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

/// One step as it ended.
#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    /// Runtime id.
    pub id: String,
    /// Action type.
    pub action: String,
    /// succeeded, failed, skipped, restored, planned, paused, not_run.
    pub status: String,
    /// Whether it wrote.
    pub write: bool,
    /// Time over all attempts.
    pub elapsed_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Error (masked), for failures; reason, for skips.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether a failure was tolerated.
    pub tolerated: bool,
    /// What it changed or would change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// Outputs (masked).
    pub outputs: Value,
}

/// One undo.
#[derive(Debug, Clone, Serialize)]
pub struct UndoSummary {
    /// Runtime id of the step undone.
    pub id: String,
    /// undone or failed.
    pub status: String,
    /// How it was undone, or why it failed.
    pub message: String,
}

/// The rollback, when one ran.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackSummary {
    /// Policy applied.
    pub policy: String,
    /// Checkpoint kept.
    pub checkpoint: Option<String>,
    /// Undos in order.
    pub steps: Vec<UndoSummary>,
}

/// An answered gate.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalSummary {
    /// Gate name.
    pub gate: String,
    /// Who answered.
    pub by: String,
    /// When.
    pub at: String,
    /// Whether it passed.
    pub approved: bool,
}

/// Everything reports say about a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Facts given at the start.
    #[serde(flatten)]
    pub facts: RunFacts,
    /// First event time.
    pub started_at: String,
    /// Last event time.
    pub finished_at: String,
    /// Time taken.
    pub elapsed_ms: u64,
    /// Steps in the order they ended.
    pub steps: Vec<StepSummary>,
    /// Answered gates.
    pub approvals: Vec<ApprovalSummary>,
    /// The rollback, when one ran.
    pub rollback: Option<RollbackSummary>,
    /// Notices shown to the operator.
    pub notices: Vec<String>,
    /// How it ended (absent while running).
    pub outcome: Option<Outcome>,
    /// What a person must look at.
    pub attention: Vec<String>,
    /// The playbook's `outputs:` as the run ended (secrets masked).
    pub outputs: serde_json::Map<String, Value>,
    /// Gates the run waits at (a paused run), in the order it reached them.
    pub waiting_gates: Vec<String>,
    /// Steps that started as writes, so a failed one is still reported as a write.
    #[serde(skip)]
    started_writes: std::collections::HashSet<String>,
}

impl RunSummary {
    /// An empty summary with the run's facts.
    pub fn new(facts: RunFacts) -> Self {
        Self {
            facts,
            ..Self::default()
        }
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: &Event) {
        if self.started_at.is_empty() {
            self.started_at = event.at.clone();
        }
        self.finished_at = event.at.clone();
        match &event.kind {
            EventKind::StepSucceeded {
                step,
                action,
                write,
                elapsed_ms,
                attempts,
                outputs,
                change,
            } => self.steps.push(StepSummary {
                id: step.clone(),
                action: action.clone(),
                status: "succeeded".into(),
                write: *write,
                elapsed_ms: *elapsed_ms,
                attempts: *attempts,
                message: None,
                tolerated: false,
                change: change.clone(),
                outputs: outputs.clone(),
            }),
            EventKind::StepFailed {
                step,
                action,
                error,
                elapsed_ms,
                attempts,
                tolerated,
            } => self.steps.push(StepSummary {
                id: step.clone(),
                action: action.clone(),
                status: "failed".into(),
                write: self.started_writes.contains(step),
                elapsed_ms: *elapsed_ms,
                attempts: *attempts,
                message: Some(error.clone()),
                tolerated: *tolerated,
                change: None,
                outputs: Value::Null,
            }),
            EventKind::StepSkipped { step, reason } => {
                self.steps.push(simple(step, "skipped", Some(reason.clone())));
            }
            EventKind::StepRestored { step } => {
                self.steps.push(simple(
                    step,
                    "restored",
                    Some("done by an earlier attempt of this run".into()),
                ));
            }
            EventKind::StepPlanned {
                step,
                action,
                change,
            } => {
                let mut planned = simple(step, "planned", None);
                planned.action = action.clone();
                planned.write = true;
                planned.change = Some(change.clone());
                self.steps.push(planned);
            }
            EventKind::Paused { step, gate, .. } => {
                if !self.waiting_gates.contains(gate) {
                    self.waiting_gates.push(gate.clone());
                }
                self.steps
                    .push(simple(step, "paused", Some(format!("waiting at gate `{gate}`"))));
            }
            EventKind::Approval { gate, by, approved } => self.approvals.push(ApprovalSummary {
                gate: gate.clone(),
                by: by.clone(),
                at: event.at.clone(),
                approved: *approved,
            }),
            EventKind::Notice { message } => self.notices.push(message.clone()),
            EventKind::RollbackStarted {
                policy, checkpoint, ..
            } => match &mut self.rollback {
                // A failed item put back earlier, then the run's own rollback: keep both.
                Some(earlier) => {
                    earlier.policy = format!("{}; then {policy}", earlier.policy);
                    if checkpoint.is_some() {
                        earlier.checkpoint = checkpoint.clone();
                    }
                }
                None => {
                    self.rollback = Some(RollbackSummary {
                        policy: policy.clone(),
                        checkpoint: checkpoint.clone(),
                        steps: Vec::new(),
                    });
                }
            },
            EventKind::StepUndone { step, how } => self.undo(step, "undone", how),
            EventKind::UndoFailed { step, error } => self.undo(step, "failed", error),
            EventKind::RunFinished {
                outcome,
                elapsed_ms,
                attention,
                outputs,
            } => {
                self.outcome = Some(*outcome);
                self.elapsed_ms = *elapsed_ms;
                self.attention = attention.clone();
                self.outputs = outputs.clone();
            }
            EventKind::StepStarted {
                step, write: true, ..
            } => {
                self.started_writes.insert(step.clone());
            }
            EventKind::RunStarted { .. }
            | EventKind::StepStarted { .. }
            | EventKind::StepRetrying { .. }
            | EventKind::Stopping { .. } => {}
        }
    }

    fn undo(&mut self, step: &str, status: &str, message: &str) {
        let rollback = self.rollback.get_or_insert_with(|| RollbackSummary {
            policy: "rollback".into(),
            checkpoint: None,
            steps: Vec::new(),
        });
        rollback.steps.push(UndoSummary {
            id: step.to_owned(),
            status: status.to_owned(),
            message: message.to_owned(),
        });
    }
}

fn simple(step: &str, status: &str, message: Option<String>) -> StepSummary {
    StepSummary {
        id: step.to_owned(),
        action: String::new(),
        status: status.to_owned(),
        write: false,
        elapsed_ms: 0,
        attempts: 0,
        message,
        tolerated: false,
        change: None,
        outputs: Value::Null,
    }
}

/// An observer that folds events into a [`RunSummary`].
#[derive(Debug, Default)]
pub struct Recorder {
    summary: Mutex<RunSummary>,
}

impl Recorder {
    /// A recorder starting from the run's facts.
    pub fn new(facts: RunFacts) -> Self {
        Self {
            summary: Mutex::new(RunSummary::new(facts)),
        }
    }

    /// The summary so far.
    pub fn summary(&self) -> RunSummary {
        match self.summary.lock() {
            Ok(summary) => summary.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        match self.summary.lock() {
            Ok(mut summary) => summary.apply(event),
            Err(poisoned) => poisoned.into_inner().apply(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            at: "2026-11-26T22:00:00.000Z".into(),
            kind,
        }
    }

    #[test]
    fn a_failed_write_step_is_reported_as_a_write() {
        let mut summary = RunSummary::default();
        for (step, write) in [("drain", true), ("check", false)] {
            summary.apply(&event(EventKind::StepStarted {
                step: step.into(),
                action: "kong.target".into(),
                write,
                attempt: 1,
            }));
            summary.apply(&event(EventKind::StepFailed {
                step: step.into(),
                action: "kong.target".into(),
                error: "500".into(),
                elapsed_ms: 1,
                attempts: 1,
                tolerated: false,
            }));
        }
        let writes: Vec<bool> = summary.steps.iter().map(|s| s.write).collect();
        assert_eq!(writes, [true, false]);
    }

    #[test]
    fn an_item_put_back_and_the_run_rollback_are_both_kept() {
        let mut summary = RunSummary::default();
        for kind in [
            EventKind::RollbackStarted {
                policy: "failed item upgrade[dp2]".into(),
                checkpoint: None,
                steps: vec!["upgrade[dp2].drain".into()],
            },
            EventKind::StepUndone {
                step: "upgrade[dp2].drain".into(),
                how: "its undo record".into(),
            },
            EventKind::RollbackStarted {
                policy: "to_checkpoint".into(),
                checkpoint: Some("snapshot".into()),
                steps: vec!["upgrade[dp1].drain".into()],
            },
            EventKind::StepUndone {
                step: "upgrade[dp1].drain".into(),
                how: "its undo record".into(),
            },
        ] {
            summary.apply(&event(kind));
        }
        let rollback = summary.rollback.unwrap_or_else(|| RollbackSummary {
            policy: String::new(),
            checkpoint: None,
            steps: Vec::new(),
        });
        assert_eq!(rollback.policy, "failed item upgrade[dp2]; then to_checkpoint");
        assert_eq!(rollback.checkpoint.as_deref(), Some("snapshot"));
        let undone: Vec<&str> = rollback.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(undone, ["upgrade[dp2].drain", "upgrade[dp1].drain"]);
    }
}
