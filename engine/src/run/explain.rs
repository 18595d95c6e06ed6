//! Everything a run's journal says about one step, gathered into a
//! [`StepStory`]: what `runsheet explain RUN STEP` shows. Journals written
//! before a field existed still read; what they lack is left out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::journal::Record;
use crate::action::Change;

/// One step of one run, as its journal tells it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepStory {
    /// Runtime id (`upgrade[dp1].install`).
    pub id: String,
    /// Path in the playbook (`upgrade.install`).
    pub path: Option<String>,
    /// Action type (`group` and `for_each` for containers).
    pub action: Option<String>,
    /// The host or gateway it ran on, in words.
    pub target: Option<String>,
    /// succeeded, failed, skipped, paused, or started (no end recorded: in doubt).
    pub status: String,
    /// Whether it wrote.
    pub write: Option<bool>,
    /// When it started (its first attempt, or its start record).
    pub started_at: Option<String>,
    /// When it ended.
    pub ended_at: Option<String>,
    /// Time over all attempts.
    pub elapsed_ms: Option<u64>,
    /// Its arguments as rendered, secrets masked.
    pub arguments: Option<Value>,
    /// Each attempt with its times and error.
    pub attempts: Vec<Attempt>,
    /// Why it failed (masked).
    pub error: Option<String>,
    /// Whether its failure was tolerated.
    pub tolerated: Option<bool>,
    /// Its outputs (masked).
    pub outputs: Option<Value>,
    /// Whether its outputs are masked (`sensitive: true`).
    pub outputs_masked: bool,
    /// What it changed, as its action said (the diff).
    pub change: Option<Change>,
    /// The undo record its action left.
    pub undo: Option<Value>,
    /// Whether the undo record held a secret and was not kept.
    pub undo_withheld: bool,
    /// Why it did not run.
    pub skipped: Option<Skip>,
    /// The approval gate it waited at.
    pub gate: Option<String>,
    /// When a resume restored it (done earlier, not run again).
    pub restored_at: Vec<String>,
    /// What a rollback did with it.
    pub rollback: Option<RollbackPart>,
    /// How a person resolved it by hand (`done` or `rerun`).
    pub resolved: Option<String>,
    /// Every record about it, in order, in words.
    pub timeline: Vec<Moment>,
}

/// One attempt of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Attempt number, from 1.
    pub attempt: u32,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    pub ended_at: String,
    /// How long it took.
    pub elapsed_ms: u64,
    /// Why it failed (masked); absent when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a step did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    /// when_false, dependency, rollback_step, stopping, window (absent in older journals).
    pub cause: Option<String>,
    /// The reason in words.
    pub reason: String,
    /// When.
    pub at: String,
}

/// What a rollback did with a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackPart {
    /// The rollback: its policy, or `failed item ID`.
    pub policy: String,
    /// The checkpoint it kept, if any.
    pub checkpoint: Option<String>,
    /// undone, kept, failed, not_undone (the rollback left it as it is), or
    /// started (no end recorded).
    pub result: String,
    /// How it was undone, why it failed, or why it was left.
    pub message: Option<String>,
    /// When the rollback started.
    pub at: String,
}

/// One record about a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moment {
    /// When.
    pub at: String,
    /// What happened.
    pub what: String,
}

/// A step id the journal does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the journal has no step `{wanted}`")]
pub struct UnknownStep {
    /// The id asked for.
    pub wanted: String,
    /// Runtime ids whose playbook path is the id asked for (a step in a `for_each`).
    pub items: Vec<String>,
    /// Ids close to it.
    pub near: Vec<String>,
}

/// Every step id the records name, in the order first seen.
pub fn step_ids(records: &[Record]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut add = |id: &str| {
        if !id.is_empty() && !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    };
    for record in records {
        if let Some(step) = record.str("step") {
            add(step);
        }
    }
    ids
}

/// The runtime id `wanted` names: itself, or the one step run for that
/// playbook path; otherwise what it may have meant.
pub fn resolve(records: &[Record], wanted: &str) -> Result<String, UnknownStep> {
    let ids = step_ids(records);
    if ids.iter().any(|id| id == wanted) {
        return Ok(wanted.to_owned());
    }
    let mut items: Vec<String> = Vec::new();
    for record in records {
        if record.str("path") == Some(wanted)
            && let Some(step) = record.str("step")
            && !items.iter().any(|i| i == step)
        {
            items.push(step.to_owned());
        }
    }
    if let [only] = items.as_slice() {
        return Ok(only.clone());
    }
    let near = if items.is_empty() {
        near_ids(wanted, &ids)
    } else {
        Vec::new()
    };
    Err(UnknownStep {
        wanted: wanted.to_owned(),
        items,
        near,
    })
}

/// Ids close to `wanted`: a small edit away, or ending with it as a segment.
fn near_ids(wanted: &str, ids: &[String]) -> Vec<String> {
    const MOST: usize = 8;
    let limit = (wanted.chars().count() / 3).max(2);
    let suffix = format!(".{wanted}");
    let mut scored: Vec<(usize, &String)> = ids
        .iter()
        .filter_map(|id| {
            let distance = strsim::damerau_levenshtein(wanted, id);
            if distance <= limit {
                Some((distance, id))
            } else if id.ends_with(&suffix) || id.starts_with(&format!("{wanted}[")) {
                Some((limit + 1, id))
            } else {
                None
            }
        })
        .collect();
    scored.sort_by_key(|(distance, _)| *distance);
    scored
        .into_iter()
        .take(MOST)
        .map(|(_, id)| id.clone())
        .collect()
}

/// Everything the records say about step `id`.
pub fn story(records: &[Record], id: &str) -> StepStory {
    let mut story = StepStory {
        id: id.to_owned(),
        ..StepStory::default()
    };
    for record in records {
        let at = record.str("at").unwrap_or("").to_owned();
        if matches!(record.kind(), "rollback_started" | "item_rollback_started") {
            let done = story.status == "succeeded";
            rollback_started(&mut story, record, &at, done);
            continue;
        }
        if record.str("step") != Some(id) {
            continue;
        }
        let what = apply(&mut story, record, &at);
        story.timeline.push(Moment { at, what });
    }
    if story.status.is_empty() {
        story.status = "not_recorded".into();
    }
    story
}

/// Folds one record about the step into its story; what happened, in words.
fn apply(story: &mut StepStory, record: &Record, at: &str) -> String {
    let text = |name: &str| record.str(name).map(str::to_owned);
    take_common(story, record);
    match record.kind() {
        "step_started" => {
            story.status = "started".into();
            story.started_at = Some(at.to_owned());
            "started (write)".into()
        }
        "step_prepared" => "kept the state its write replaces".into(),
        "step_succeeded" => {
            story.status = "succeeded".into();
            story.ended_at = Some(at.to_owned());
            story.error = None;
            story.skipped = None;
            story.outputs = record.fields.get("outputs").cloned();
            story.outputs_masked =
                record.fields.get("masked").and_then(Value::as_bool) == Some(true);
            story.change = record
                .fields
                .get("change")
                .and_then(|c| serde_json::from_value(c.clone()).ok());
            story.undo = record.fields.get("undo").cloned().filter(|u| !u.is_null());
            story.undo_withheld =
                record.fields.get("undo_masked").and_then(Value::as_bool) == Some(true);
            format!("succeeded{}", elapsed_words(story.elapsed_ms))
        }
        "step_failed" => {
            story.status = "failed".into();
            story.ended_at = Some(at.to_owned());
            story.error = text("error");
            story.tolerated = record.fields.get("tolerated").and_then(Value::as_bool);
            format!("failed: {}", story.error.as_deref().unwrap_or(""))
        }
        "step_skipped" => {
            let reason = text("reason").unwrap_or_default();
            if story.status.is_empty() || story.status == "skipped" {
                story.status = "skipped".into();
            }
            story.skipped = Some(Skip {
                cause: text("cause"),
                reason: reason.clone(),
                at: at.to_owned(),
            });
            format!("skipped: {reason}")
        }
        "step_restored" => {
            story.restored_at.push(at.to_owned());
            "restored by a resume: done earlier, not run again".into()
        }
        "paused" => {
            story.status = "paused".into();
            story.gate = text("gate");
            format!("paused at gate `{}`", story.gate.as_deref().unwrap_or(""))
        }
        "undo_started" => {
            rollback_result(story, "started", None);
            "undo started".into()
        }
        "step_undone" => {
            rollback_result(story, "undone", text("how"));
            format!("undone ({})", text("how").unwrap_or_default())
        }
        "step_kept" => {
            rollback_result(story, "kept", text("how"));
            format!("kept ({})", text("how").unwrap_or_default())
        }
        "undo_failed" => {
            rollback_result(story, "failed", text("error"));
            format!("UNDO FAILED: {}", text("error").unwrap_or_default())
        }
        "resolved" => {
            story.resolved = text("how");
            format!("resolved by hand: {}", text("how").unwrap_or_default())
        }
        other => other.replace('_', " "),
    }
}

/// Takes the fields every step record may carry.
fn take_common(story: &mut StepStory, record: &Record) {
    let text = |name: &str| record.str(name).map(str::to_owned);
    if let Some(path) = text("path") {
        story.path = Some(path);
    }
    if let Some(action) = text("action") {
        story.action = Some(action);
    }
    if let Some(target) = text("target") {
        story.target = Some(target);
    }
    if let Some(write) = record.fields.get("write").and_then(Value::as_bool) {
        story.write = Some(write);
    } else if record.kind() == "step_started" {
        story.write = Some(true);
    }
    if let Some(arguments) = record.fields.get("arguments") {
        story.arguments = Some(arguments.clone());
    }
    if let Some(ms) = record.fields.get("elapsed_ms").and_then(Value::as_u64) {
        story.elapsed_ms = Some(ms);
    }
    if let Some(attempts) = record
        .fields
        .get("attempts")
        .and_then(|a| serde_json::from_value::<Vec<Attempt>>(a.clone()).ok())
    {
        if story.started_at.is_none() || story.status != "started" {
            story.started_at = attempts.first().map(|a| a.started_at.clone());
        }
        story.attempts = attempts;
    }
}

/// Notes a rollback that lists the step, or that leaves a write it could have undone.
fn rollback_started(story: &mut StepStory, record: &Record, at: &str, done_before: bool) {
    let listed = record
        .fields
        .get("steps")
        .and_then(Value::as_array)
        .is_some_and(|steps| steps.iter().any(|s| s.as_str() == Some(story.id.as_str())));
    let item = record.str("item");
    let policy = match item {
        Some(item) => format!("failed item {item}"),
        None => record.str("policy").unwrap_or("rollback").to_owned(),
    };
    let checkpoint = record.str("checkpoint").map(str::to_owned);
    if listed {
        story.rollback = Some(RollbackPart {
            policy: policy.clone(),
            checkpoint,
            result: "listed".into(),
            message: None,
            at: at.to_owned(),
        });
        story.timeline.push(Moment {
            at: at.to_owned(),
            what: format!("rollback ({policy}) lists it for undoing"),
        });
        return;
    }
    let concerns_it = item.is_none_or(|item| story.id.starts_with(&format!("{item}.")));
    if done_before && story.write == Some(true) && concerns_it && story.rollback.is_none() {
        let message = match &checkpoint {
            Some(checkpoint) => {
                format!("it completed before checkpoint `{checkpoint}`, which the rollback keeps")
            }
            None if policy == "none" => "the playbook's policy is `rollback: none`".to_owned(),
            None => "the rollback did not list it".to_owned(),
        };
        story.timeline.push(Moment {
            at: at.to_owned(),
            what: format!("not undone by the rollback ({policy}): {message}"),
        });
        story.rollback = Some(RollbackPart {
            policy,
            checkpoint,
            result: "not_undone".into(),
            message: Some(message),
            at: at.to_owned(),
        });
    }
}

/// Records how the step's undo went.
fn rollback_result(story: &mut StepStory, result: &str, message: Option<String>) {
    let part = story.rollback.get_or_insert_with(|| RollbackPart {
        policy: "rollback".into(),
        checkpoint: None,
        result: String::new(),
        message: None,
        at: String::new(),
    });
    part.result = result.to_owned();
    if message.is_some() {
        part.message = message;
    }
}

/// ` in 1.2s`, or nothing without a figure.
fn elapsed_words(ms: Option<u64>) -> String {
    ms.map(|ms| format!(" in {ms}ms")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn records(list: Vec<Value>) -> Vec<Record> {
        list.into_iter()
            .enumerate()
            .filter_map(|(index, value)| match value {
                Value::Object(fields) => Some(Record {
                    line: index + 1,
                    fields,
                }),
                _ => None,
            })
            .collect()
    }

    fn journal() -> Vec<Record> {
        records(vec![
            json!({"kind": "run_started", "at": "t0"}),
            json!({"kind": "step_started", "at": "t1", "step": "upgrade[dp1].install", "path": "upgrade.install", "action": "host.file", "target": "host dp1 (local)", "arguments": {"token": "••••••"}}),
            json!({"kind": "step_succeeded", "at": "t2", "step": "upgrade[dp1].install", "path": "upgrade.install", "action": "host.file", "write": true, "elapsed_ms": 30,
                   "attempts": [{"attempt": 1, "started_at": "t1", "ended_at": "t1", "elapsed_ms": 10, "error": "500"}, {"attempt": 2, "started_at": "t1", "ended_at": "t2", "elapsed_ms": 20}],
                   "outputs": {"changed": true}, "undo": {"content": null}, "change": {"changes": true, "summary": "write x"}}),
            json!({"kind": "step_started", "at": "t3", "step": "upgrade[dp2].install", "path": "upgrade.install", "action": "host.file"}),
            json!({"kind": "step_failed", "at": "t4", "step": "upgrade[dp2].install", "path": "upgrade.install", "action": "host.file", "error": "disk full", "tolerated": false}),
            json!({"kind": "step_skipped", "at": "t4", "step": "verify", "reason": "not started: it needs `upgrade`, which did not succeed", "cause": "dependency"}),
            json!({"kind": "rollback_started", "at": "t5", "policy": "all", "steps": ["upgrade[dp1].install"]}),
            json!({"kind": "undo_started", "at": "t5", "step": "upgrade[dp1].install"}),
            json!({"kind": "step_undone", "at": "t6", "step": "upgrade[dp1].install", "how": "its undo record"}),
        ])
    }

    #[test]
    fn a_retried_write_that_was_undone_tells_everything() {
        let story = story(&journal(), "upgrade[dp1].install");
        assert_eq!(story.status, "succeeded");
        assert_eq!(story.target.as_deref(), Some("host dp1 (local)"));
        assert_eq!(story.attempts.len(), 2);
        assert_eq!(story.attempts[0].error.as_deref(), Some("500"));
        assert_eq!(
            story.change.as_ref().map(|c| c.summary.as_str()),
            Some("write x")
        );
        let rollback = story.rollback.clone().unwrap_or_else(|| RollbackPart {
            policy: String::new(),
            checkpoint: None,
            result: String::new(),
            message: None,
            at: String::new(),
        });
        assert_eq!(
            (rollback.policy.as_str(), rollback.result.as_str()),
            ("all", "undone")
        );
        assert_eq!(story.timeline.len(), 5, "{:?}", story.timeline);
    }

    #[test]
    fn skips_and_failures_say_why() {
        let journal = journal();
        let skipped = story(&journal, "verify");
        assert_eq!(skipped.status, "skipped");
        assert_eq!(
            skipped.skipped.map(|s| s.cause),
            Some(Some("dependency".into()))
        );
        let failed = story(&journal, "upgrade[dp2].install");
        assert_eq!(
            (failed.status.as_str(), failed.error.as_deref()),
            ("failed", Some("disk full"))
        );
        assert!(failed.rollback.is_none());
    }

    #[test]
    fn a_write_before_the_kept_checkpoint_is_not_undone_and_a_resume_restores_it() {
        let journal = records(vec![
            json!({"kind": "run_started", "at": "t0"}),
            json!({"kind": "step_succeeded", "at": "t1", "step": "drain", "path": "drain", "action": "kong.target", "write": true, "elapsed_ms": 5}),
            json!({"kind": "run_finished", "at": "t2", "outcome": "interrupted"}),
            json!({"kind": "run_started", "at": "t3", "resumed": true}),
            json!({"kind": "step_restored", "at": "t3", "step": "drain", "path": "drain"}),
            json!({"kind": "step_failed", "at": "t4", "step": "upgrade", "error": "no"}),
            json!({"kind": "rollback_started", "at": "t5", "policy": "to_checkpoint", "checkpoint": "snapshot", "steps": []}),
        ]);
        let story = story(&journal, "drain");
        assert_eq!(story.status, "succeeded");
        assert_eq!(story.restored_at, ["t3"]);
        let rollback = story.rollback.map(|r| (r.result, r.checkpoint));
        assert_eq!(
            rollback,
            Some(("not_undone".into(), Some("snapshot".into())))
        );
        assert!(
            story.attempts.is_empty(),
            "an older journal without attempts still reads"
        );
    }

    #[test]
    fn unknown_ids_list_items_and_near_matches() {
        let journal = journal();
        assert_eq!(resolve(&journal, "verify"), Ok("verify".into()));
        let items = resolve(&journal, "upgrade.install").err().map(|e| e.items);
        assert_eq!(
            items,
            Some(vec![
                "upgrade[dp1].install".into(),
                "upgrade[dp2].install".into()
            ])
        );
        let near = resolve(&journal, "verfy").err().map(|e| e.near);
        assert_eq!(near, Some(vec!["verify".into()]));
        let segment = resolve(&journal, "install").err().map(|e| e.near);
        assert_eq!(
            segment,
            Some(vec![
                "upgrade[dp1].install".into(),
                "upgrade[dp2].install".into()
            ])
        );
        assert!(resolve(&journal, "zzzzzzzzzz").is_err_and(|e| e.near.is_empty()));
    }
}
