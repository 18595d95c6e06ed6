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
}

impl Prior {
    /// Rebuilds from journal records, in order.
    pub fn from_records(records: &[Record]) -> Prior {
        let mut prior = Prior::default();
        for record in records {
            let step = record.str("step").unwrap_or("").to_owned();
            match record.kind() {
                "step_started" => {
                    prior.in_doubt.insert(step);
                }
                "step_succeeded" => {
                    prior.in_doubt.remove(&step);
                    prior.done.insert(
                        step,
                        PriorStep {
                            outputs: record.fields.get("outputs").cloned().unwrap_or(json!({})),
                            undo: record.fields.get("undo").cloned().filter(|u| !u.is_null()),
                            masked: record.fields.get("masked").and_then(Value::as_bool)
                                == Some(true),
                        },
                    );
                }
                "step_failed" => {
                    prior.in_doubt.remove(&step);
                    prior.done.remove(&step);
                }
                "step_undone" => {
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
