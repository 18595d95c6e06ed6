//! The short closure summary `run` and `resume` print when a run has ended: the headline
//! of the change-closure report (`closure.md` in the report directory), for the terminal.

use std::path::Path;

use runsheet_engine::run::event::Outcome;
use runsheet_engine::run::summary::RunSummary;

/// The summary's lines (`undo_verb`: the run is `runsheet rollback`); `None` for a dry run or a run that has not ended (paused).
pub fn text(summary: &RunSummary, report_dir: &Path, undo_verb: bool) -> Option<String> {
    let outcome = summary.outcome?;
    if summary.facts.dry_run || matches!(outcome, Outcome::Planned | Outcome::Paused) {
        return None;
    }
    let count = |status: &str| summary.steps.iter().filter(|s| s.status == status).count();
    let mut counts = Vec::new();
    for (status, words) in [
        ("succeeded", "succeeded"),
        ("restored", "done by an earlier attempt"),
        ("failed", "failed"),
        ("skipped", "skipped"),
    ] {
        let n = count(status);
        if n > 0 {
            counts.push(format!("{n} {words}"));
        }
    }
    let writes = summary
        .steps
        .iter()
        .filter(|s| s.write && s.status == "succeeded")
        .count();
    let undo = match &summary.rollback {
        None => "nothing undone".to_owned(),
        Some(rollback) => {
            let undone = rollback
                .steps
                .iter()
                .filter(|u| u.status == "undone")
                .count();
            let failed = rollback.steps.len() - undone;
            let kept = rollback
                .checkpoint
                .as_ref()
                .map(|c| format!(", work up to checkpoint {c} kept"))
                .unwrap_or_default();
            if failed > 0 {
                format!("{undone} undone, {failed} NOT undone{kept}")
            } else {
                format!("{undone} undone{kept}")
            }
        }
    };
    let facts = &summary.facts;
    Some(format!(
        "closure: {} in {}; {} step(s): {}; {writes} write step(s) ran, {undo}\n  run {} ({} on {}, change {}); the full report: {} or runsheet show {}",
        if undo_verb && outcome == Outcome::RolledBack {
            "rolled back (runsheet rollback: every write undone)"
        } else {
            outcome.describe()
        },
        duration(summary.elapsed_ms),
        summary.steps.len(),
        if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join(", ")
        },
        facts.run,
        facts.playbook,
        facts.environment.as_deref().unwrap_or("no environment"),
        facts.change_id.as_deref().unwrap_or("none given"),
        report_dir.join(crate::report_dir::CLOSURE).display(),
        facts.run,
    ))
}

/// A duration for humans: `850 ms`, `4.2 s`, `3 min 7 s`.
fn duration(milliseconds: u64) -> String {
    match milliseconds {
        0..1_000 => format!("{milliseconds} ms"),
        1_000..60_000 => format!("{}.{} s", milliseconds / 1_000, milliseconds % 1_000 / 100),
        _ => format!(
            "{} min {} s",
            milliseconds / 60_000,
            milliseconds % 60_000 / 1_000
        ),
    }
}

#[cfg(test)]
mod tests {
    use runsheet_engine::run::summary::{RollbackSummary, RunFacts, StepSummary, UndoSummary};

    use super::*;

    fn step(id: &str, status: &str, write: bool) -> StepSummary {
        StepSummary {
            id: id.into(),
            action: "log".into(),
            status: status.into(),
            write,
            elapsed_ms: 0,
            attempts: 1,
            message: None,
            tolerated: false,
            change: None,
            outputs: serde_json::Value::Null,
        }
    }

    fn summary(outcome: Outcome) -> RunSummary {
        let mut summary = RunSummary::new(RunFacts {
            run: "R1".into(),
            playbook: "kong-rolling-upgrade".into(),
            environment: Some("lab".into()),
            ..RunFacts::default()
        });
        summary.elapsed_ms = 4_250;
        summary.steps = vec![
            step("a", "succeeded", true),
            step("b", "succeeded", false),
            step("c", "skipped", false),
            step("d", "failed", true),
        ];
        summary.outcome = Some(outcome);
        summary
    }

    #[test]
    fn an_ended_run_says_how_it_ended_what_it_wrote_and_where_the_report_is() {
        let text = text(&summary(Outcome::Succeeded), Path::new("out"), false).unwrap_or_default();
        assert_eq!(
            text,
            "closure: successful in 4.2 s; 4 step(s): 2 succeeded, 1 failed, 1 skipped; 1 write step(s) ran, nothing undone\n  run R1 (kong-rolling-upgrade on lab, change none given); the full report: out/closure.md or runsheet show R1"
        );
    }

    #[test]
    fn a_rollback_counts_what_was_undone_and_what_was_not() {
        let mut rolled_back = summary(Outcome::NeedsAttention);
        rolled_back.rollback = Some(RollbackSummary {
            policy: "to_checkpoint".into(),
            checkpoint: Some("upgrade[dp1].node.upgraded".into()),
            steps: vec![
                UndoSummary {
                    id: "a".into(),
                    status: "undone".into(),
                    message: String::new(),
                },
                UndoSummary {
                    id: "d".into(),
                    status: "failed".into(),
                    message: String::new(),
                },
            ],
        });
        let text = text(&rolled_back, Path::new("out"), false).unwrap_or_default();
        assert!(
            text.contains(
                "1 undone, 1 NOT undone, work up to checkpoint upgrade[dp1].node.upgraded kept"
            ),
            "{text}"
        );
    }

    #[test]
    fn plans_and_paused_runs_have_no_closure() {
        assert_eq!(text(&summary(Outcome::Planned), Path::new("out"), false), None);
        assert_eq!(text(&summary(Outcome::Paused), Path::new("out"), false), None);
    }
}
