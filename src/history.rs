//! The verbs that read the state directory: `runs`, `show`, `unlock`.


use runsheet_engine::run::lock;
use runsheet_engine::run::state::RunRecord;
use runsheet_engine::run::store::Store;
use serde_json::{Value, json};

use crate::cli::{OutputFormat, StateArgs};
use crate::exit::Exit;
use crate::render::{emit, json_text};

/// A run's state as people should read it: a `running` run whose process is gone crashed.
fn live_state(state: &dyn Store, record: &RunRecord) -> String {
    if record.state != "running" {
        return record.state.clone();
    }
    let key = record.lock_key();
    let alive = state
        .inspect(&key)
        .ok()
        .flatten()
        .is_some_and(|(owner, alive)| alive && owner.run == record.id);
    if alive { "running".into() } else { "crashed".into() }
}

/// `runsheet runs`.
pub fn runs(store: &StateArgs, output: OutputFormat) -> Exit {
    let state = match store.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    let state = state.as_ref();
    let records = match state.list() {
        Ok(records) => records,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Invalid;
        }
    };
    match output {
        OutputFormat::Json => {
            let list: Vec<Value> = records
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "playbook": r.playbook,
                        "environment": r.environment,
                        "change_id": r.change_id,
                        "state": live_state(state, r),
                        "started_at": r.started_at,
                        "finished_at": r.finished_at,
                        "operator": r.operator,
                    })
                })
                .collect();
            emit(&json_text(&list));
        }
        OutputFormat::Human => {
            if records.is_empty() {
                emit(&format!("no runs in {}\n", state.place()));
                return Exit::Success;
            }
            let mut out = format!(
                "{:<22} {:<28} {:<12} {:<12} {:<22} {}\n",
                "RUN", "PLAYBOOK", "ENV", "CHANGE", "STARTED", "STATE"
            );
            for r in &records {
                out.push_str(&format!(
                    "{:<22} {:<28} {:<12} {:<12} {:<22} {}\n",
                    r.id,
                    r.playbook,
                    r.environment.as_deref().unwrap_or("-"),
                    r.change_id.as_deref().unwrap_or("-"),
                    r.started_at.get(..19).unwrap_or(&r.started_at),
                    live_state(state, r)
                ));
            }
            emit(&out);
        }
    }
    Exit::Success
}

/// `runsheet show`.
pub fn show(store: &StateArgs, run_id: &str, verify: bool, output: OutputFormat) -> Exit {
    let state = match store.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    let state = state.as_ref();
    let record = match state.load(run_id) {
        Ok(record) => record,
        Err(e) => {
            eprintln!("error: {e}\n  help: `runsheet runs` lists the runs");
            return Exit::Invalid;
        }
    };
    let contents = match state.read_journal(run_id) {
        Ok(contents) => contents,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Invalid;
        }
    };
    if verify {
        return match (&contents.broken, output) {
            (Some((line, why)), _) => {
                eprintln!(
                    "journal of run {run_id}: BROKEN at record {line}: {why}\n  {} record(s) before it verify",
                    contents.records.len()
                );
                Exit::RollbackFailed
            }
            (None, _) => {
                let tail = if contents.truncated_tail {
                    "; the last record was cut short by a crash and is ignored"
                } else {
                    ""
                };
                emit(&format!(
                    "journal of run {run_id}: {} record(s), hash chain intact{tail}\n",
                    contents.records.len()
                ));
                Exit::Success
            }
        };
    }
    if output == OutputFormat::Json {
        let records: Vec<&serde_json::Map<String, Value>> =
            contents.records.iter().map(|r| &r.fields).collect();
        emit(&json_text(&json!({
            "run": record,
            "state": live_state(state, &record),
            "journal": records,
        })));
        return Exit::Success;
    }
    let mut out = format!(
        "run {}: {} on {} — {}\n  started {} by {}{}{}\n",
        record.id,
        record.playbook,
        record.environment.as_deref().unwrap_or("(no environment)"),
        live_state(state, &record),
        record.started_at,
        record.operator,
        record
            .change_id
            .as_deref()
            .map(|c| format!(", change {c}"))
            .unwrap_or_default(),
        record
            .window
            .as_deref()
            .map(|w| format!(", window {w}"))
            .unwrap_or_default(),
    );
    for r in &contents.records {
        let step = r.str("step").unwrap_or("");
        let line = match r.kind() {
            "run_started" => format!(
                "{} of the run",
                if r.fields.get("resumed").and_then(Value::as_bool) == Some(true) { "resume" } else { "start" }
            ),
            "step_started" => format!("start    {step} ({})", r.str("action").unwrap_or("")),
            "step_succeeded" => {
                let outputs = r.fields.get("outputs").filter(|o| o.as_object().is_some_and(|m| !m.is_empty()));
                format!(
                    "ok       {step}  {}ms{}",
                    r.fields.get("elapsed_ms").and_then(Value::as_u64).unwrap_or(0),
                    outputs.map(|o| format!("  outputs {o}")).unwrap_or_default()
                )
            }
            "step_failed" => format!("FAILED   {step}: {}", r.str("error").unwrap_or("")),
            "step_skipped" => format!("skipped  {step}: {}", r.str("reason").unwrap_or("")),
            "paused" => format!("paused   {step} at gate `{}`", r.str("gate").unwrap_or("")),
            "approval" => format!(
                "gate     `{}` {} by {}",
                r.str("gate").unwrap_or(""),
                if r.fields.get("approved").and_then(Value::as_bool) == Some(true) { "approved" } else { "refused" },
                r.str("by").unwrap_or("")
            ),
            "rollback_started" => format!(
                "rollback ({}) of {}",
                r.str("policy").unwrap_or(""),
                r.fields.get("steps").map(Value::to_string).unwrap_or_default()
            ),
            "step_undone" => format!("undone   {step} ({})", r.str("how").unwrap_or("")),
            "undo_failed" => format!("UNDO FAILED {step}: {}", r.str("error").unwrap_or("")),
            "notice" => format!("note     {}", r.str("message").unwrap_or("")),
            "run_finished" => format!(
                "finished: {}{}",
                r.str("outcome").unwrap_or(""),
                r.fields
                    .get("attention")
                    .and_then(Value::as_array)
                    .filter(|a| !a.is_empty())
                    .map(|a| format!("; needs attention: {}", Value::Array(a.clone())))
                    .unwrap_or_default()
            ),
            other => other.to_owned(),
        };
        let at = r.str("at").unwrap_or("");
        out.push_str(&format!("  {}  {line}\n", at.get(11..23).unwrap_or(at)));
    }
    if let Some((line, why)) = &contents.broken {
        out.push_str(&format!("  journal BROKEN at record {line}: {why}\n"));
    }
    emit(&out);
    Exit::Success
}

/// `runsheet unlock`.
pub fn unlock(store: &StateArgs, env: &str) -> Exit {
    let state = match store.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    let name = environment_name(env);
    match state.unlock(&name) {
        Ok(Some(owner)) => {
            eprintln!("released the lock on `{name}` held by {owner}");
            Exit::Success
        }
        Ok(None) => {
            eprintln!("environment `{name}` is not locked");
            Exit::Success
        }
        Err(e @ lock::LockError::Held { .. }) => {
            eprintln!("error: {e}\n  help: a live run holds it; stop that run (Ctrl-C) instead of unlocking");
            Exit::Refused
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Refused
        }
    }
}

/// An environment given by name or file: the name the lock uses.
pub fn environment_name(env: &str) -> String {
    let path = runsheet_engine::check::environment_path(env);
    if let Ok(file) = runsheet_engine::loader::read_source(&path) {
        let (environment, _) = runsheet_engine::loader::load_environment(&file);
        if let Some(environment) = environment {
            return environment.name.value;
        }
    }
    env.to_owned()
}
