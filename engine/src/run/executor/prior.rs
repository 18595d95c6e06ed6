//! What an earlier attempt of the run did: [`Prior`], rebuilt from its
//! journal, tells a resume or a rollback which steps are done, which writes are
//! in doubt and which gates were approved.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::run::journal::Record;

/// A step finished by an earlier attempt of the run, as its journal tells.
#[derive(Debug, Clone)]
pub struct PriorStep {
    /// Its outputs (masked ones are not restored).
    pub outputs: Value,
    /// Its undo record.
    pub undo: Option<Value>,
    /// Whether its outputs were masked in the journal.
    pub masked: bool,
    /// Whether it wrote (as journaled).
    pub write: bool,
    /// Why its undo record cannot be used, when it cannot (it held a secret, or a
    /// person resolved the step by hand).
    pub undo_unknown: Option<String>,
}

/// What an earlier attempt of the run did, rebuilt from its journal.
#[derive(Debug, Clone, Default)]
pub struct Prior {
    /// Steps done, by runtime id.
    pub done: HashMap<String, PriorStep>,
    /// Write steps started without an end record.
    pub in_doubt: HashSet<String>,
    /// Gates approved, with who approved them.
    pub approvals: HashMap<String, String>,
    /// Writes whose undo started without an end record.
    pub undo_in_doubt: HashSet<String>,
    /// The state each write step in doubt kept before its write (`step_prepared`).
    pub prepared: HashMap<String, Value>,
}

impl Prior {
    /// Rebuilds from journal records, in order.
    pub fn from_records(records: &[Record]) -> Prior {
        let mut prior = Prior::default();
        // Where each done step's success record is, to find what completed after an undo.
        let mut done_at: HashMap<String, usize> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            let step = record.str("step").unwrap_or("").to_owned();
            match record.kind() {
                "step_started" => {
                    prior.undo_in_doubt.remove(&step);
                    if !prior.in_doubt.contains(&step) {
                        // A new start, not a resume of one in doubt: nothing kept yet.
                        prior.prepared.remove(&step);
                    }
                    prior.in_doubt.insert(step);
                }
                // The first state kept is what the step replaced: a retry's own read
                // may be of that try's write.
                "step_prepared" => match record.fields.get("state") {
                    Some(state) if prior.in_doubt.contains(&step) => {
                        prior.prepared.entry(step).or_insert_with(|| state.clone());
                    }
                    Some(_) => {}
                    // Masked (it held a secret): the step reads the state again.
                    None => {
                        prior.prepared.remove(&step);
                    }
                },
                "step_succeeded" => {
                    prior.prepared.remove(&step);
                    prior.in_doubt.remove(&step);
                    prior.undo_in_doubt.remove(&step);
                    let flag = |name: &str| record.fields.get(name).and_then(Value::as_bool) == Some(true);
                    done_at.insert(step.clone(), index);
                    prior.done.insert(
                        step,
                        PriorStep {
                            outputs: record.fields.get("outputs").cloned().unwrap_or(json!({})),
                            undo: record.fields.get("undo").cloned().filter(|u| !u.is_null()),
                            masked: flag("masked"),
                            write: flag("write"),
                            undo_unknown: flag("undo_masked").then(|| {
                                "its undo record held a secret, which the journal does not keep".to_owned()
                            }),
                        },
                    );
                }
                // Steps that completed after the earliest write a rollback undoes ran
                // on a state that is gone: they run again (reads included). An item's
                // rollback touches only that item's steps.
                "rollback_started" => forget_after_undo(&mut prior, &done_at, record, ""),
                "item_rollback_started" => {
                    let prefix = format!("{}.", record.str("item").unwrap_or(""));
                    forget_after_undo(&mut prior, &done_at, record, &prefix);
                }
                "resolved" => {
                    prior.prepared.remove(&step);
                    // A person said how a write or an undo cut short ended.
                    let done = record.str("how") == Some("done");
                    let undo = prior.undo_in_doubt.remove(&step);
                    let write = prior.in_doubt.remove(&step);
                    if undo && !done {
                        prior.done.remove(&step);
                    } else if undo || (write && done) {
                        let entry = prior.done.entry(step).or_insert_with(|| PriorStep {
                            outputs: json!({}),
                            undo: None,
                            masked: false,
                            write: true,
                            undo_unknown: None,
                        });
                        entry.undo_unknown = Some("a person resolved it by hand, so its undo is unknown".into());
                    }
                }
                "undo_started" => {
                    prior.undo_in_doubt.insert(step);
                }
                "undo_failed" => {
                    prior.undo_in_doubt.remove(&step);
                }
                "step_failed" => {
                    prior.prepared.remove(&step);
                    prior.in_doubt.remove(&step);
                    prior.done.remove(&step);
                }
                "step_undone" => {
                    prior.undo_in_doubt.remove(&step);
                    prior.done.remove(&step);
                }
                "approval" => {
                    if record.fields.get("approved").and_then(Value::as_bool) == Some(true)
                        && let (Some(gate), Some(by)) = (record.str("gate"), record.str("by"))
                    {
                        prior.approvals.insert(gate.to_owned(), by.to_owned());
                    }
                }
                _ => {}
            }
        }
        prior
    }
}

/// Drops from `done` the steps under `prefix` that completed after the earliest
/// write a rollback record lists (the listed writes themselves get their own records).
fn forget_after_undo(
    prior: &mut Prior,
    done_at: &HashMap<String, usize>,
    record: &Record,
    prefix: &str,
) {
    let undone: Vec<&str> = record
        .fields
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(earliest) = undone.iter().filter_map(|s| done_at.get(*s)).min().copied() else {
        return;
    };
    prior.done.retain(|step, _| {
        !step.starts_with(prefix)
            || undone.contains(&step.as_str())
            || done_at.get(step).is_none_or(|at| *at < earliest)
    });
}
