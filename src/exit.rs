//! Exit codes, as DESIGN.md fixes them.

/// The process exit code of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Success,
    /// A step failed and rollback completed.
    StepFailed,
    /// Rollback failed or was incomplete.
    RollbackFailed,
    /// Invalid playbook, environment or input; nothing ran.
    Invalid,
    /// Paused at an approval gate or window end.
    Paused,
    /// Refused to start.
    Refused,
    /// `plan --detailed-exitcode` found changes.
    Changes,
    /// Interrupted.
    Interrupted,
}

impl Exit {
    /// The exit code of a run's outcome.
    pub fn of(outcome: runsheet_engine::run::event::Outcome) -> Exit {
        use runsheet_engine::run::event::Outcome;
        match outcome {
            Outcome::Succeeded | Outcome::Planned => Exit::Success,
            Outcome::RolledBack | Outcome::Failed => Exit::StepFailed,
            Outcome::NeedsAttention => Exit::RollbackFailed,
            Outcome::Paused => Exit::Paused,
            Outcome::Interrupted => Exit::Interrupted,
        }
    }

    /// The numeric code.
    pub fn as_u8(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::StepFailed => 1,
            Exit::RollbackFailed => 2,
            Exit::Invalid => 3,
            Exit::Paused => 4,
            Exit::Refused => 5,
            Exit::Changes => 6,
            Exit::Interrupted => 130,
        }
    }
}
