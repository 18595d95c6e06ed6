//! The change-management close code a run suggests: ServiceNow's out-of-the-box
//! `close_code` values "Successful", "Successful with issues" and "Unsuccessful".

use crate::run::event::Outcome;
use crate::run::summary::RunSummary;

/// Every change went in and nothing needed a person.
pub const SUCCESSFUL: &str = "Successful";
/// Every change went in, with tolerated failures, an item put back, or items needing attention.
pub const SUCCESSFUL_WITH_ISSUES: &str = "Successful with issues";
/// The change did not go in (failed, rolled back, interrupted) or left work for a person.
pub const UNSUCCESSFUL: &str = "Unsuccessful";

/// The suggested close code; `None` while there is nothing to close (paused, a dry run).
pub fn close_code(summary: &RunSummary) -> Option<&'static str> {
    match summary.outcome? {
        Outcome::Succeeded => {
            let issues = !summary.attention.is_empty()
                || summary.rollback.is_some()
                || summary
                    .steps
                    .iter()
                    .any(|step| step.status == "failed" && step.tolerated);
            Some(if issues {
                SUCCESSFUL_WITH_ISSUES
            } else {
                SUCCESSFUL
            })
        }
        Outcome::RolledBack | Outcome::Failed | Outcome::NeedsAttention | Outcome::Interrupted => {
            Some(UNSUCCESSFUL)
        }
        Outcome::Paused | Outcome::Planned => None,
    }
}

/// Whether any write was undone or an undo was tried.
pub fn rollback_performed(summary: &RunSummary) -> bool {
    summary
        .rollback
        .as_ref()
        .is_some_and(|rollback| !rollback.steps.is_empty())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::*;

    #[test]
    fn a_clean_success_is_successful() {
        let summary = fixtures::successful();
        assert_eq!(close_code(&summary), Some(SUCCESSFUL));
        assert!(!rollback_performed(&summary));
    }

    #[test]
    fn a_success_with_attention_items_is_successful_with_issues() {
        let mut summary = fixtures::successful();
        summary
            .attention
            .push("node dp2: a command was left running".into());
        assert_eq!(close_code(&summary), Some(SUCCESSFUL_WITH_ISSUES));
    }

    #[test]
    fn a_rolled_back_run_is_unsuccessful_and_says_it_rolled_back() {
        let summary = fixtures::rolled_back_with_failed_undo();
        assert_eq!(close_code(&summary), Some(UNSUCCESSFUL));
        assert!(rollback_performed(&summary));
    }

    #[test]
    fn paused_and_dry_runs_have_nothing_to_close() {
        let mut summary = fixtures::successful();
        summary.outcome = Some(Outcome::Paused);
        assert_eq!(close_code(&summary), None);
        summary.outcome = Some(Outcome::Planned);
        assert_eq!(close_code(&summary), None);
        summary.outcome = Some(Outcome::Interrupted);
        assert_eq!(close_code(&summary), Some(UNSUCCESSFUL));
    }
}
