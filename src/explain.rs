//! `runsheet explain RUN STEP` (and `show RUN --step STEP`): everything the
//! journal says about one step, for people or as JSON.

use std::time::Duration;

use runsheet_engine::report::diff::unified;
use runsheet_engine::run::executor::human;
use runsheet_engine::run::explain::{self, StepStory, UnknownStep};
use serde_json::{Value, json};

use crate::cli::{OutputFormat, StateArgs};
use crate::exit::Exit;
use crate::render::{emit, json_text};

/// `runsheet explain RUN STEP`.
pub fn explain(store: &StateArgs, run_id: &str, step: &str, output: OutputFormat) -> Exit {
    let state = match store.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    if let Err(e) = state.load(run_id) {
        eprintln!("error: {e}\n  help: `runsheet runs` lists the runs");
        return Exit::Invalid;
    }
    let contents = match state.read_journal(run_id) {
        Ok(contents) => contents,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Invalid;
        }
    };
    let id = match explain::resolve(&contents.records, step) {
        Ok(id) => id,
        Err(unknown) => {
            eprintln!("error: run {run_id}: {}", unknown_help(&unknown));
            return Exit::Invalid;
        }
    };
    let story = explain::story(&contents.records, &id);
    match output {
        OutputFormat::Json => emit(&json_text(&json!({"run": run_id, "step": story}))),
        OutputFormat::Human => emit(&human_story(run_id, &story)),
    }
    if let Some((line, why)) = &contents.broken {
        eprintln!(
            "warning: the journal of run {run_id} is BROKEN at record {line} ({why}): what follows it is not shown"
        );
    }
    Exit::Success
}

/// The error for an unknown step, with what was probably meant.
fn unknown_help(unknown: &UnknownStep) -> String {
    let list = |ids: &[String]| {
        ids.iter()
            .map(|id| format!("\n    {id}"))
            .collect::<String>()
    };
    if !unknown.items.is_empty() {
        return format!(
            "step `{}` ran once per item; name one of them:{}",
            unknown.wanted,
            list(&unknown.items)
        );
    }
    if unknown.near.is_empty() {
        return format!(
            "{unknown}\n  help: it never started, or the id is wrong; `runsheet show RUN` lists the steps the run recorded"
        );
    }
    format!(
        "{unknown}\n  help: did you mean one of these?{}",
        list(&unknown.near)
    )
}

/// The story for people.
fn human_story(run_id: &str, story: &StepStory) -> String {
    let mut out = format!(
        "step {} of run {run_id}: {}\n",
        story.id,
        status_words(story)
    );
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("  {label:<10}{value}\n"));
    };
    if let Some(action) = &story.action {
        let kind = match story.write {
            Some(true) => " (write)",
            Some(false) => " (read)",
            None => "",
        };
        let on = story
            .target
            .as_deref()
            .map(|t| format!(" on {t}"))
            .unwrap_or_default();
        line("action", format!("{action}{kind}{on}"));
    }
    if let Some(path) = story.path.as_ref().filter(|p| **p != story.id) {
        line("path", path.clone());
    }
    if story.started_at.is_some() || story.ended_at.is_some() {
        let took = story
            .elapsed_ms
            .map(|ms| {
                let attempts = match story.attempts.len() {
                    0 | 1 => String::new(),
                    n => format!(" over {n} attempts"),
                };
                format!("  ({}{attempts})", human(Duration::from_millis(ms)))
            })
            .unwrap_or_default();
        line(
            "time",
            format!(
                "{} → {}{took}",
                story.started_at.as_deref().unwrap_or("?"),
                story.ended_at.as_deref().unwrap_or("(no end recorded)")
            ),
        );
    }
    if let Some(skip) = &story.skipped {
        let cause = skip
            .cause
            .as_deref()
            .map(|c| format!(" [{c}]"))
            .unwrap_or_default();
        line("skipped", format!("{}{cause}", skip.reason));
    }
    if let Some(error) = &story.error {
        let tolerated = if story.tolerated == Some(true) {
            " (tolerated: the run went on)"
        } else {
            ""
        };
        line(
            "error",
            format!("{}{tolerated}", continued(error, "            ")),
        );
    }
    if let Some(gate) = &story.gate {
        line("gate", format!("waited at `{gate}`"));
    }
    for at in &story.restored_at {
        line(
            "restored",
            format!("{at}: done by an earlier attempt of the run, not run again"),
        );
    }
    if let Some(arguments) = &story.arguments {
        out.push_str(&block("arguments", arguments));
    }
    if !story.attempts.is_empty() {
        out.push_str("  attempts\n");
        for attempt in &story.attempts {
            let result = attempt
                .error
                .as_deref()
                .map(|e| format!("failed: {}", continued(e, "        ")))
                .unwrap_or_else(|| "ok".into());
            out.push_str(&format!(
                "    #{} {} → {}  {}  {result}\n",
                attempt.attempt,
                attempt.started_at,
                attempt.ended_at,
                human(Duration::from_millis(attempt.elapsed_ms))
            ));
        }
    }
    if let Some(outputs) = story.outputs.as_ref().filter(|o| !is_empty(o)) {
        let title = if story.outputs_masked {
            "outputs (sensitive: masked)"
        } else {
            "outputs"
        };
        out.push_str(&block(title, outputs));
    }
    if let Some(change) = &story.change {
        out.push_str(&format!("  change    {}\n", change.summary));
        let diff = unified(change.before.as_deref(), change.after.as_deref());
        if change.before.is_some() || change.after.is_some() {
            out.push_str(&indent(&diff, "    "));
        }
    }
    if let Some(undo) = &story.undo {
        out.push_str(&block("undo record", undo));
    } else if story.undo_withheld {
        out.push_str("  undo record  not kept: it held a secret\n");
    }
    if let Some(rollback) = &story.rollback {
        let checkpoint = rollback
            .checkpoint
            .as_deref()
            .map(|c| format!(", checkpoint `{c}`"))
            .unwrap_or_default();
        let what = match (rollback.result.as_str(), rollback.message.as_deref()) {
            ("kept", Some(message)) => message.to_owned(),
            (result, Some(message)) => format!("{}: {message}", rollback_words(result)),
            (result, None) => rollback_words(result).to_owned(),
        };
        out.push_str(&format!(
            "  rollback  ({}{checkpoint}) {what}\n",
            rollback.policy
        ));
    }
    if let Some(how) = &story.resolved {
        out.push_str(&format!("  resolved  by hand: {how}\n"));
    }
    if !story.timeline.is_empty() {
        out.push_str("  journal\n");
        for moment in &story.timeline {
            out.push_str(&format!("    {}  {}\n", moment.at, moment.what));
        }
    }
    out
}

/// A text whose later lines are indented by `prefix`, so they stay under their label.
fn continued(text: &str, prefix: &str) -> String {
    text.trim_end().replace('\n', &format!("\n{prefix}"))
}

/// The status line's words.
fn status_words(story: &StepStory) -> String {
    match story.status.as_str() {
        "started" => "STARTED, no end recorded (its state is in doubt)".into(),
        "failed" => "FAILED".into(),
        "not_recorded" => "no record of it".into(),
        other => other.replace('_', " "),
    }
}

/// What a rollback did, in words.
fn rollback_words(result: &str) -> &str {
    match result {
        "undone" => "undone",
        "kept" => "left as is",
        "failed" => "UNDO FAILED",
        "not_undone" => "not undone",
        "started" => "undo started, no end recorded,",
        _ => "listed",
    }
}

/// A titled, indented JSON block.
fn block(title: &str, value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    format!("  {title}\n{}", indent(&text, "    "))
}

/// Every line of `text` indented, ending with a newline.
fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

/// Whether a value holds nothing worth a block.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}
