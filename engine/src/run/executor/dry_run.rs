//! What a dry run does with an action step: runs a read for real, asks a
//! write's action for its plan, and keeps a [`PlannedChange`] for each step it
//! could not run.

use std::sync::Arc;

use serde_json::Value;

use super::attempt::AttemptSettings;
use super::scope::End;
use super::step::{Call, Instance};
use super::{DEFAULT_RETRY_DELAY, Exec, PlannedChange, lock};
use crate::action::{Action, ActionError, Change};
use crate::plan::KNOWN_AFTER_APPLY;
use crate::run::context::Recorded;
use crate::run::event::EventKind;
use crate::run::mask::mask_all;

impl<'a> Exec<'a> {
    /// Plans a step in a dry run: reads run, writes and reads that cannot run are planned.
    pub(super) async fn plan_step(&self, instance: &Instance<'a>, call: Call) -> End {
        let unknown = contains_unknown(&call.arguments);
        if !call.write && !unknown {
            return self.plan_read(instance, &call).await;
        }
        let name = call.action.spec().name;
        let change = if unknown {
            Change::unknown(format!(
                "{name}: its arguments depend on values {KNOWN_AFTER_APPLY}"
            ))
        } else {
            match call.action.plan(&call.context, call.arguments).await {
                Ok(change) => change,
                Err(error) => return self.fail(instance, name, error.to_string(), 1),
            }
        };
        instance
            .frame
            .record(&instance.step.id.value, Recorded::Unknown);
        self.planned(&instance.id, &call.action, call.write, change);
        End::Succeeded
    }

    /// Runs a read in a dry run, once; what keeps it from running is planned instead. A
    /// read with `until:` is applied once: when its condition is false it is planned as a
    /// wait, its outputs known after apply.
    async fn plan_read(&self, instance: &Instance<'a>, call: &Call) -> End {
        let step = instance.step;
        let frame = &instance.frame;
        let scope = self.scope_of(frame, None);
        let settings = AttemptSettings {
            timeout: call.context.timeout,
            retries: 0,
            retry_delay: DEFAULT_RETRY_DELAY,
        };
        let outcome = match &step.until {
            // Nothing changes in a dry run: polling could only wait out the timeout.
            Some(until) => {
                self.emit(EventKind::StepStarted {
                    step: instance.id.clone(),
                    action: call.action.spec().name.to_owned(),
                    write: false,
                    attempt: 1,
                });
                match self.check_until_once(call, &scope, until).await {
                    Ok((applied, true)) => Ok((applied, 1)),
                    Ok((_, false)) => {
                        frame.record(&step.id.value, Recorded::Unknown);
                        let change = Change::unknown(format!(
                            "would wait until `{}` (false now; a dry run changes nothing, so it does not poll)",
                            until.source
                        ));
                        self.planned(&instance.id, &call.action, false, change);
                        return End::Succeeded;
                    }
                    Err(error) => Err((error, 1)),
                }
            }
            None => self.attempts(instance, call, &scope, settings).await,
        };
        match outcome {
            Ok((applied, attempts)) => {
                let outputs = Value::Object(applied.outputs);
                if step.sensitive {
                    self.masker.add_value(&outputs);
                }
                let shown = if step.sensitive {
                    mask_all(&outputs)
                } else {
                    self.masker.value(&outputs)
                };
                frame.record(&step.id.value, Recorded::Done(outputs));
                self.emit(EventKind::StepSucceeded {
                    step: instance.id.clone(),
                    action: call.action.spec().name.to_owned(),
                    write: false,
                    elapsed_ms: instance.started.elapsed().as_millis() as u64,
                    attempts,
                    outputs: shown,
                    change: None,
                });
                End::Succeeded
            }
            Err((ActionError::Paused { gate, .. }, _)) => {
                frame.record(&step.id.value, Recorded::Unknown);
                let change =
                    Change::unknown(format!("approval gate `{gate}`: the real run waits here"));
                self.planned(&instance.id, &call.action, false, change);
                End::Succeeded
            }
            Err((error @ ActionError::NotAvailable { .. }, _)) => {
                // Plan what can be planned; the real run fails here.
                frame.record(&step.id.value, Recorded::Unknown);
                let change = Change::unknown(format!("cannot read: {error}"));
                self.planned(&instance.id, &call.action, false, change);
                End::Succeeded
            }
            Err((error, attempts)) => {
                let name = call.action.spec().name;
                match self.planned_changes_before(&instance.id) {
                    Some(writes) => {
                        // What it reads would change first: its failure here proves nothing.
                        frame.record(&step.id.value, Recorded::Unknown);
                        let change = Change::unknown(format!(
                            "not conclusive in a dry run: it reads after {writes}, planned but not made; here it failed: {error}"
                        ));
                        self.planned(&instance.id, &call.action, false, change);
                        End::Succeeded
                    }
                    None => self.fail(instance, name, error.to_string(), attempts),
                }
            }
        }
    }

    /// The planned writes among `id`'s ancestors that would change something (`import`,
    /// `drain`), when there are any.
    fn planned_changes_before(&self, id: &str) -> Option<String> {
        let ancestors = self.ancestors(id);
        let book = lock(&self.book);
        let writes: Vec<&str> = book
            .planned
            .iter()
            .filter(|planned| planned.write && planned.change.changes != Some(false))
            .filter(|planned| ancestors.contains(&planned.step))
            .map(|planned| planned.step.as_str())
            .collect();
        (!writes.is_empty()).then(|| format!("`{}`", writes.join("`, `")))
    }

    /// Keeps and announces what a dry run says a step would change.
    fn planned(&self, id: &str, action: &Arc<dyn Action>, write: bool, change: Change) {
        let change = self.mask_change(change);
        lock(&self.book).planned.push(PlannedChange {
            step: id.to_owned(),
            action: action.spec().name.to_owned(),
            write,
            change: change.clone(),
        });
        self.emit(EventKind::StepPlanned {
            step: id.to_owned(),
            action: action.spec().name.to_owned(),
            change,
        });
    }
}

/// Whether a value holds a value known only after apply.
fn contains_unknown(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(KNOWN_AFTER_APPLY),
        Value::Array(items) => items.iter().any(contains_unknown),
        Value::Object(map) => map.values().any(contains_unknown),
        _ => false,
    }
}
