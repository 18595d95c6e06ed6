//! Exit codes, as DESIGN.md fixes them.

/// The process exit code of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Success,
    /// A step failed and rollback completed.
    #[expect(dead_code, reason = "used once the executor lands")]
    StepFailed,
    /// Rollback failed or was incomplete.
    #[expect(dead_code, reason = "used once the executor lands")]
    RollbackFailed,
    /// Invalid playbook, environment or input; nothing ran.
    Invalid,
    /// Paused at an approval gate or window end.
    #[expect(dead_code, reason = "used once the executor lands")]
    Paused,
    /// Refused to start.
    Refused,
    /// `plan --detailed-exitcode` found changes.
    #[expect(dead_code, reason = "used once the executor lands")]
    Changes,
    /// Interrupted.
    #[expect(dead_code, reason = "used once the executor lands")]
    Interrupted,
}

impl Exit {
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
