//! Terminal output of a run: plain timestamped lines (CI, pipes), a live
//! progress view (terminals), or one JSON event per line (`--log-format json`).

mod live;
mod status;

use std::io::Write as _;
use std::time::Duration;

use runsheet_engine::run::event::{Event, EventKind, Observer, ROLLBACK_STEP_SKIPPED};
use runsheet_engine::run::executor::human;

pub use live::Progress;
pub use status::Outlook;

/// Writes each event as one JSON line on stdout.
#[derive(Debug, Default)]
pub struct JsonLines;

impl Observer for JsonLines {
    fn event(&self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
    }
}

/// The line an event shows as, without time (None: not shown).
pub fn line(event: &EventKind) -> Option<String> {
    Some(match event {
        EventKind::RunStarted {
            run,
            playbook,
            environment,
            dry_run,
            resumed,
            rollback,
            change_id,
            window,
            ..
        } => {
            let mut text = format!(
                "{} {run}: {playbook} on {}",
                if *rollback {
                    "rolling back run"
                } else if *resumed {
                    "resuming run"
                } else if *dry_run {
                    "dry run"
                } else {
                    "run"
                },
                environment.as_deref().unwrap_or("(no environment)")
            );
            if let Some(change) = change_id {
                text.push_str(&format!(", change {change}"));
            }
            if let Some(window) = window {
                text.push_str(&format!(", window {window}"));
            }
            text
        }
        EventKind::Notice { message } => format!("note    {message}"),
        EventKind::StepStarted { step, action, attempt, write, .. } => {
            if *attempt > 1 {
                format!("start   {step} ({action}, attempt {attempt})")
            } else {
                format!("start   {step} ({action}{})", if *write { ", writes" } else { "" })
            }
        }
        EventKind::StepRetrying { step, attempt, delay_ms, error } => format!(
            "retry   {step}: attempt {attempt} failed: {error}; next in {}",
            human(Duration::from_millis(*delay_ms))
        ),
        EventKind::StepSucceeded { step, elapsed_ms, outputs, action, .. } => {
            let mut text = format!("ok      {step}  {}", human(Duration::from_millis(*elapsed_ms)));
            if action == "log"
                && let Some(message) = outputs.get("message").and_then(|m| m.as_str())
            {
                text.push_str(&format!("  {message}"));
            }
            text
        }
        EventKind::StepFailed { step, error, tolerated, .. } => format!(
            "{} {step}: {error}",
            if *tolerated { "failed* (tolerated)" } else { "FAILED " }
        ),
        // A forward run skips every rollback step; listing them is noise at 2 a.m. (the
        // JSON log and the reports keep them).
        EventKind::StepSkipped { reason, .. } if reason == ROLLBACK_STEP_SKIPPED => return None,
        EventKind::StepSkipped { step, reason } => format!("skip    {step}: {reason}"),
        EventKind::StepRestored { step } => format!("done    {step} (by an earlier attempt)"),
        EventKind::StepPlanned { step, action, change } => {
            let mark = match change.changes {
                Some(false) => "=",
                Some(true) => "~",
                None => "?",
            };
            format!("plan  {mark} {step} ({action}): {}", change.summary)
        }
        EventKind::Paused { step, gate, prompt } => {
            format!("PAUSED  {step}: gate `{gate}`: {prompt}")
        }
        EventKind::Approval { gate, by, approved } => format!(
            "gate    `{gate}` {} by {by}",
            if *approved { "approved" } else { "REFUSED" }
        ),
        EventKind::Stopping { message, .. } => format!("stop    {message}"),
        EventKind::RollbackStarted { policy, checkpoint, steps } => format!(
            "rollback ({policy}{}): {} step(s) to undo",
            checkpoint
                .as_ref()
                .map(|c| format!(", keeping work up to checkpoint {c}"))
                .unwrap_or_default(),
            steps.len()
        ),
        EventKind::StepUndone { step, how } => format!("undone  {step} ({how})"),
        EventKind::UndoFailed { step, error } => format!("UNDO FAILED {step}: {error}"),
        EventKind::RunFinished { outcome, elapsed_ms, attention, .. } => {
            let mut text = format!(
                "finished: {} in {}",
                outcome.describe(),
                human(Duration::from_millis(*elapsed_ms))
            );
            if !attention.is_empty() {
                text.push_str("\nneeds attention:");
                for item in attention {
                    text.push_str(&format!("\n  - {item}"));
                }
            }
            text
        }
    })
}

/// Plain lines, each with its UTC RFC 3339 time stamp, flushed one by one: for pipes and CI logs.
#[derive(Debug, Default)]
pub struct PlainLines;

impl Observer for PlainLines {
    fn event(&self, event: &Event) {
        if let Some(text) = line(&event.kind) {
            let mut out = std::io::stdout().lock();
            for part in text.lines() {
                let _ = writeln!(out, "{}  {part}", event.at);
            }
            // A CI log shows each line as it happens, not when a buffer fills.
            let _ = out.flush();
        }
    }
}
