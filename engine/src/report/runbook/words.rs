//! The sentences both renderings share: what a step does, its notes, what undoes
//! it, how far back a failure goes, who approves. Plain text; each renderer escapes.

use super::model::{
    DocStep, ExpectedTime, Fallback, RollbackText, Runbook, StepKindText, WhenResolved,
};
use crate::report::text::duration;

/// Said of a gate's approver: the format names none.
pub(super) const WHO_APPROVES: &str = "Whoever continues the run: `runsheet resume RUN --approve GATE` (or yes at the terminal). The playbook format names no approvers or roles; the journal and the closure report record who approved (`--approver NAME`, default the OS user) and when.";

/// What a step does, on one line (without the action's description).
pub(super) fn does(step: &DocStep) -> String {
    match &step.kind {
        StepKindText::Action { action, effect, .. } => {
            format!("{action} [{effect}]")
        }
        StepKindText::Group => "group: its steps run once, in order".to_owned(),
        StepKindText::ForEach {
            items,
            batch,
            max_failures,
        } => for_each_text(items.as_deref(), batch.as_deref(), max_failures.as_deref()),
    }
}

fn for_each_text(
    items: Option<&[String]>,
    batch: Option<&str>,
    max_failures: Option<&str>,
) -> String {
    let over = match items {
        Some([]) => "for each of no items (its steps do not run)".to_owned(),
        Some(items) => format!("for each of {} ({})", items.len(), items.join(", ")),
        None => "for each item (the list is known at run time)".to_owned(),
    };
    let batches = match batch {
        None => "; all at once".to_owned(),
        Some(batch) => match (items, batch.parse::<usize>()) {
            (Some(items), Ok(size)) if size > 0 && size < items.len() => {
                let groups: Vec<String> = items
                    .chunks(size)
                    .enumerate()
                    .map(|(n, chunk)| format!("batch {}: {}", n + 1, chunk.join(", ")))
                    .collect();
                format!(
                    "; {size} at a time, the next batch once the previous succeeded ({})",
                    groups.join("; ")
                )
            }
            (Some(_), Ok(_)) => "; all in one batch".to_owned(),
            _ => format!("; batches of {batch}"),
        },
    };
    let failures = match max_failures {
        Some("0") | None => "; the first failed item fails the step".to_owned(),
        Some(n) => {
            format!("; up to {n} failed items tolerated (each undone back to its own checkpoint)")
        }
    };
    format!("{over}{batches}{failures}")
}

/// Short notes on a step: write, checkpoint, gate, condition, dependencies, settings.
pub(super) fn notes(step: &DocStep) -> Vec<String> {
    let mut notes = Vec::new();
    if step.kind.is_write() {
        notes.push("writes".to_owned());
    }
    if step.verification {
        notes.push("verification".to_owned());
    }
    if step.checkpoint {
        notes.push("checkpoint".to_owned());
    }
    if let Some(gate) = &step.gate {
        notes.push(format!("approval gate `{}`", gate.name));
    }
    if let Some((condition, resolved)) = &step.when {
        let verdict = match resolved {
            WhenResolved::Runs => "runs with these inputs",
            WhenResolved::Skipped => "skipped with these inputs",
            WhenResolved::AtRunTime => "decided at run time",
        };
        notes.push(format!("only when `{condition}`: {verdict}"));
    } else if step.skipped {
        notes.push("skipped with these inputs (its step is)".to_owned());
    }
    if let Some(needs) = &step.needs {
        if needs.is_empty() {
            notes.push("starts at once (needs nothing)".to_owned());
        } else {
            notes.push(format!("after {}", needs.join(", ")));
        }
    }
    if step.instances > 1 && !matches!(step.kind, StepKindText::ForEach { .. }) {
        notes.push(format!("runs {} times", step.instances));
    }
    notes.extend(step.settings.iter().cloned());
    notes
}

/// What undoes a write step.
pub(super) fn rollback(text: &RollbackText) -> String {
    match text {
        RollbackText::Undo => {
            "its own undo: the action restores the state it replaced (kept in the journal)"
                .to_owned()
        }
        RollbackText::NoUndo => "no undo: the action cannot undo this change, it stays".to_owned(),
        RollbackText::Kept => "none (`rollback: none`): the change is kept on purpose".to_owned(),
        RollbackText::Steps(ids) => format!(
            "its rollback steps, in order: {}",
            ids.iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        RollbackText::PolicyNone => "nothing (the playbook's `rollback: none`)".to_owned(),
    }
}

/// How far back a failure goes, with step numbers.
pub(super) fn fallback(runbook: &Runbook, fallback: &Fallback) -> String {
    match fallback {
        Fallback::Checkpoint(path) => format!("checkpoint {}", step_ref(runbook, path)),
        Fallback::EarlierBatch {
            checkpoint,
            first_batch,
        } => format!(
            "checkpoint {} of the batch before; in the first batch: {}",
            step_ref(runbook, checkpoint),
            self::fallback(runbook, first_batch)
        ),
        Fallback::Start => "the start: no checkpoint comes before it".to_owned(),
        Fallback::Everything => "the start (`rollback: all`)".to_owned(),
        Fallback::Nothing => "nothing is undone (`rollback: none`)".to_owned(),
    }
}

/// A step named by number and path (`4 snapshot`).
pub(super) fn step_ref(runbook: &Runbook, path: &str) -> String {
    match runbook.steps.iter().find(|s| s.path == path) {
        Some(step) => format!("{} `{}`", step.number, step.path),
        None => format!("`{path}`"),
    }
}

/// What the playbook's rollback policy means.
pub(super) fn policy(runbook: &Runbook) -> String {
    let policy = match runbook.rollback_policy.as_str() {
        "all" => {
            "`rollback: all`: when a step fails, runsheet lets steps in flight finish, then undoes every completed write, newest first, back to the start"
        }
        "none" => {
            "`rollback: none`: when a step fails, nothing is undone; the run stops and `finally` runs"
        }
        _ => {
            "`rollback: to_checkpoint`: when a step fails, runsheet lets steps in flight finish, then undoes the writes completed since the newest checkpoint every failed branch passed, newest first; work before that checkpoint is kept and `resume` restarts after it"
        }
    };
    let window = match runbook.window_end.as_str() {
        "pause" => "At the change window's end it finishes what is in flight and pauses (exit 4).",
        _ => {
            "At the change window's end it finishes what is in flight and rolls back the same way."
        }
    };
    format!("{policy}. `finally` steps run last in every case. {window}")
}

/// An expected duration, or why there is none.
pub(super) fn expected(expected: Option<ExpectedTime>, earlier_runs: usize) -> String {
    match expected {
        Some(e) => format!(
            "{} (p95 of {} run{})",
            duration(e.p95.as_millis() as u64),
            e.samples,
            if e.samples == 1 { "" } else { "s" }
        ),
        None if earlier_runs == 0 => "no earlier runs".to_owned(),
        None => "not run before".to_owned(),
    }
}

/// The phases: the top-level steps and `finally`, with their expected durations.
pub(super) fn phases(runbook: &Runbook) -> Vec<&DocStep> {
    runbook.steps.iter().filter(|s| s.depth == 0).collect()
}

/// The expected total over the phases, when every phase ran before.
pub(super) fn total(runbook: &Runbook) -> String {
    if runbook.earlier_runs == 0 {
        return "no earlier runs: nothing to estimate from (a rehearsal in a lab or UAT fills this in)".to_owned();
    }
    let phases: Vec<&DocStep> = phases(runbook).into_iter().filter(|p| !p.skipped).collect();
    let known: Vec<u64> = phases
        .iter()
        .filter_map(|p| p.expected.map(|e| e.p95.as_millis() as u64))
        .collect();
    let sum: u64 = known.iter().sum();
    let runs = runbook.earlier_runs;
    let plural = if runs == 1 { "" } else { "s" };
    if known.len() == phases.len() {
        format!(
            "about {} (the sum of each phase's p95 over {runs} earlier run{plural}; less where phases run in parallel)",
            duration(sum)
        )
    } else {
        format!(
            "at least {} ({} of {} phases ran before, over {runs} earlier run{plural})",
            duration(sum),
            known.len(),
            phases.len()
        )
    }
}

/// The count line: steps, writes, gates.
pub(super) fn counts(runbook: &Runbook) -> String {
    let writes = runbook.steps.iter().filter(|s| s.kind.is_write()).count();
    let skipped = runbook
        .steps
        .iter()
        .filter(|s| s.kind.is_write() && s.skipped)
        .count();
    let skipped = if skipped > 0 {
        format!(" ({skipped} skipped with these inputs)")
    } else {
        String::new()
    };
    let gates = runbook.steps.iter().filter(|s| s.gate.is_some()).count();
    let checks = runbook.steps.iter().filter(|s| s.verification).count();
    format!(
        "{} steps in execution order: {writes} write{skipped}, {checks} verification{}, {gates} approval gate{}; {} rollback-only step{}",
        runbook.steps.len(),
        if checks == 1 { "" } else { "s" },
        if gates == 1 { "" } else { "s" },
        runbook.rollback_steps.len(),
        if runbook.rollback_steps.len() == 1 {
            ""
        } else {
            "s"
        },
    )
}

/// Where the "what it changes" texts come from.
pub(super) fn changes_source(runbook: &Runbook) -> String {
    match &runbook.plan {
        Some(plan) => format!("the saved plan `{}` (the dry run's diffs)", plan.file),
        None => "the actions' own descriptions; give a saved plan (`runsheet plan ... --out FILE`, then `--from-plan FILE`) for the real diffs".to_owned(),
    }
}
