//! The typed stream of events an execution emits; reporters and the terminal consume it.

use serde::Serialize;
use serde_json::Value;

use crate::action::Change;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step succeeded (or was skipped or tolerated).
    Succeeded,
    /// A dry run completed: nothing was changed.
    Planned,
    /// A step failed and the rollback the policy asked for completed.
    RolledBack,
    /// A step failed and nothing was undone (policy `none`, a dry run, or a `finally` step).
    Failed,
    /// A rollback failed or was incomplete, or a step's state is unknown: a person must act.
    NeedsAttention,
    /// The run waits at an approval gate or for its window; `resume` continues it.
    Paused,
    /// A signal stopped the run.
    Interrupted,
}

impl Outcome {
    /// The words a change-closure report uses.
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::Succeeded => "successful",
            Outcome::Planned => "planned (dry run, nothing changed)",
            Outcome::RolledBack => "failed and rolled back",
            Outcome::Failed => "failed (nothing was undone)",
            Outcome::NeedsAttention => "needs attention",
            Outcome::Paused => "paused",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// Why the run stopped starting new steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A step failed.
    Failure,
    /// Ctrl-C or SIGTERM.
    Interrupt,
    /// The change window ended, or the time left was too short for the next write.
    WindowEnd,
    /// An approval gate is waiting.
    Approval,
    /// A step needs a person before anything else runs.
    Attention,
}

/// One event of a run, with the time it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// RFC 3339 time with milliseconds.
    pub at: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The run began (or resumed).
    RunStarted {
        /// Run id.
        run: String,
        /// Playbook name.
        playbook: String,
        /// Environment name.
        environment: Option<String>,
        /// Whether nothing may be changed.
        dry_run: bool,
        /// Whether this continues an earlier run.
        resumed: bool,
        /// Whether this undoes an earlier run's writes (`runsheet rollback`).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        rollback: bool,
        /// Change id, when given.
        change_id: Option<String>,
        /// Change window, when given.
        window: Option<String>,
        /// Number of steps declared (not counting `for_each` repetitions).
        steps: usize,
    },
    /// Something the operator must read (insecure TLS, a lock taken back, the window figure used).
    Notice {
        /// The text.
        message: String,
    },
    /// A step began an attempt.
    StepStarted {
        /// Runtime id.
        step: String,
        /// Action type, `group` or `for_each`.
        action: String,
        /// Whether it writes.
        write: bool,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// An attempt failed and another follows.
    StepRetrying {
        /// Runtime id.
        step: String,
        /// The attempt that failed.
        attempt: u32,
        /// Wait before the next attempt.
        delay_ms: u64,
        /// Why it failed.
        error: String,
    },
    /// A step succeeded.
    StepSucceeded {
        /// Runtime id.
        step: String,
        /// Action type.
        action: String,
        /// Whether it wrote.
        write: bool,
        /// Time taken over all attempts.
        elapsed_ms: u64,
        /// Attempts made.
        attempts: u32,
        /// Outputs (masked).
        outputs: Value,
        /// What it changed, when the action said.
        #[serde(skip_serializing_if = "Option::is_none")]
        change: Option<Change>,
    },
    /// A step failed.
    StepFailed {
        /// Runtime id.
        step: String,
        /// Action type.
        action: String,
        /// Why (masked).
        error: String,
        /// Time taken over all attempts.
        elapsed_ms: u64,
        /// Attempts made.
        attempts: u32,
        /// Whether the failure is tolerated (`continue_on_error`, `max_failures`).
        tolerated: bool,
    },
    /// A step did not run.
    StepSkipped {
        /// Runtime id.
        step: String,
        /// Why.
        reason: String,
    },
    /// A step done by an earlier attempt of this run: not run again, its outputs restored.
    StepRestored {
        /// Runtime id.
        step: String,
    },
    /// Dry run: what a write step would change.
    StepPlanned {
        /// Runtime id.
        step: String,
        /// Action type.
        action: String,
        /// The change.
        change: Change,
    },
    /// The run waits at a gate.
    Paused {
        /// Runtime id of the approval step.
        step: String,
        /// Gate name.
        gate: String,
        /// The question.
        prompt: String,
    },
    /// A gate was answered.
    Approval {
        /// Gate name.
        gate: String,
        /// Who answered.
        by: String,
        /// Whether it passed.
        approved: bool,
    },
    /// New steps stopped starting.
    Stopping {
        /// Why.
        reason: StopReason,
        /// Details.
        message: String,
    },
    /// Undoing began.
    RollbackStarted {
        /// Policy applied.
        policy: String,
        /// The checkpoint kept, if any.
        checkpoint: Option<String>,
        /// Steps to undo, in order.
        steps: Vec<String>,
    },
    /// A step was undone.
    StepUndone {
        /// Runtime id.
        step: String,
        /// How: its undo record, or the steps named in its `rollback:`.
        how: String,
    },
    /// A step could not be undone.
    UndoFailed {
        /// Runtime id.
        step: String,
        /// Why.
        error: String,
    },
    /// The run ended.
    RunFinished {
        /// How.
        outcome: Outcome,
        /// Time taken.
        elapsed_ms: u64,
        /// Steps a person must look at, with why.
        attention: Vec<String>,
        /// The playbook's `outputs:` (secrets masked; absent when it declares none).
        #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
        outputs: serde_json::Map<String, serde_json::Value>,
    },
}

/// Why a forward run skips a step that only undoes another (its `StepSkipped` reason).
pub const ROLLBACK_STEP_SKIPPED: &str = "a rollback step: it runs only to undo another step";

/// Receives every event of a run, in order.
pub trait Observer: Send + Sync {
    /// Called once per event.
    fn event(&self, event: &Event);
}

/// The current time as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    format!("{:.3}", now)
}
