//! Steps that hold steps: a group runs its body once; `for_each` runs it once
//! per item, in batches, within a failure budget. Each records its runtime
//! dependencies so rollback can tell what came before what.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use super::display::compact;
use super::scope::{End, ScopeEnd};
use super::step::{Instance, SkipCause};
use super::{Exec, lock};
use crate::model::{Setting, Step, TemplateText};
use crate::plan::{KNOWN_AFTER_APPLY, item_label};
use crate::run::context::{Frame, ItemBudget, OnFail, Recorded, StepScope, to_value};
use crate::run::event::EventKind;

/// What a `for_each` step asks for.
pub(super) struct ForEach<'a> {
    /// The list to iterate, as written.
    pub(super) items: &'a TemplateText,
    /// Name of the item variable.
    pub(super) as_name: &'a str,
    /// Most items in flight.
    pub(super) batch: Option<&'a Setting<u32>>,
    /// Failed items tolerated.
    pub(super) max_failures: Option<&'a Setting<u32>>,
    /// The body.
    pub(super) body: &'a [Step],
}

impl<'a> Exec<'a> {
    /// Runs a group's body once, in a scope of its own.
    pub(super) async fn run_group(&self, instance: Instance<'a>, body: &'a [Step]) -> End {
        let scope = self.scope_of(&instance.frame, None);
        if let Err(end) = self.admit_when(&instance, &scope, "group", false) {
            return end;
        }
        let step = instance.step;
        let id = &instance.id;
        let on_fail = if step.continue_on_error {
            OnFail::Contain
        } else {
            OnFail::Propagate
        };
        let inner = Frame::new(
            Some(Arc::clone(&instance.frame)),
            None,
            on_fail,
            format!("{id}."),
        );
        let entry = entry_of(id);
        self.link(&entry, id);
        let end = self
            .run_scope(body, format!("{}.", step.path), inner, entry)
            .await;
        let mut waited = end.ids;
        waited.push(entry_of(id)); // An empty body still comes after what the group waited for.
        lock(&self.book).deps.insert(id.clone(), waited);
        self.container_end(&instance, "group", end.ok, json!({}))
    }

    /// Runs a `for_each` body once per item, batch after batch, until its budget is spent.
    pub(super) async fn run_for_each(&self, instance: Instance<'a>, each: ForEach<'a>) -> End {
        let scope = self.scope_of(&instance.frame, None);
        if let Err(end) = self.admit_when(&instance, &scope, "for_each", false) {
            return end;
        }
        let list = match self.for_each_items(each.items, &scope) {
            Ok(list) => list,
            Err(error) => return self.fail(&instance, "for_each", error, 0),
        };
        let (batch, max) = match self.batching(&each, &scope) {
            Ok(settings) => settings,
            Err(error) => return self.fail(&instance, "for_each", error, 0),
        };
        let id = &instance.id;
        let size = batch.map_or(list.len(), |b| b.max(1) as usize).max(1);
        let budget = Arc::new(ItemBudget {
            failures: Default::default(),
            max,
            exceeded: AtomicBool::new(false),
        });
        self.emit(EventKind::StepStarted {
            step: id.clone(),
            action: "for_each".into(),
            write: false,
            attempt: 1,
        });
        let entry = entry_of(id);
        self.link(&entry, id);
        let mut previous: Vec<String> = Vec::new();
        let mut ends: Vec<String> = Vec::new();
        let mut labels = Vec::new();
        let mut not_started = Vec::new();
        for chunk in list.chunks(size) {
            if self.stopped(&instance.frame) || budget.exceeded.load(Ordering::Relaxed) {
                not_started.extend(chunk.iter().map(item_label));
                continue;
            }
            labels.extend(chunk.iter().map(item_label));
            let mut waits_for = vec![entry.clone()];
            waits_for.append(&mut previous);
            let items = self
                .run_batch(&instance, &each, chunk, &waits_for, &budget)
                .await;
            for (item_id, end) in items {
                let mut waited = end.ids;
                waited.push(entry_of(&item_id));
                lock(&self.book).deps.insert(item_id.clone(), waited);
                previous.push(item_id.clone());
                ends.push(item_id);
            }
        }
        for label in &not_started {
            self.skipped(
                format!("{id}[{label}]"),
                SkipCause::Stopping,
                "not started: the run is stopping".into(),
            );
        }
        ends.push(entry.clone()); // An empty list still comes after what the for_each waited for.
        lock(&self.book).deps.insert(id.clone(), ends);
        let failures = budget.failures.load(Ordering::Relaxed);
        let ok = failures <= max && not_started.is_empty();
        let outputs = json!({"items": labels, "failed": failures});
        self.container_end(&instance, "for_each", ok, outputs)
    }

    /// The list a `for_each` iterates (in a dry run, one unknown item when it is known only after apply).
    fn for_each_items(
        &self,
        items: &TemplateText,
        scope: &StepScope,
    ) -> Result<Vec<Value>, String> {
        let list = if items.is_templated() {
            self.render(&items.source, scope)
        } else {
            Ok(Value::String(items.source.clone()))
        };
        match list {
            Ok(Value::Array(list)) => {
                // Items are told apart by their labels (runtime ids, resume): they must differ.
                let mut seen = std::collections::HashSet::new();
                for item in &list {
                    let label = item_label(item);
                    if !seen.insert(label.clone()) {
                        return Err(format!(
                            "`for_each` has two items labelled `{label}`: items need distinct values (or distinct `name`/`id`)"
                        ));
                    }
                }
                Ok(list)
            }
            Ok(_) if self.dry_run && scope.saw_unknown.load(Ordering::Relaxed) => {
                Ok(vec![Value::String(KNOWN_AFTER_APPLY.into())])
            }
            Ok(other) => Err(format!("`for_each` gave {}, not a list", compact(&other))),
            Err(error) => Err(format!("`for_each`: {error}")),
        }
    }

    /// A `for_each`'s `batch` and `max_failures` (default 0), rendered.
    fn batching(
        &self,
        each: &ForEach<'a>,
        scope: &StepScope,
    ) -> Result<(Option<u32>, u32), String> {
        Ok((
            self.setting(each.batch, scope, "batch")?,
            self.setting(each.max_failures, scope, "max_failures")?
                .unwrap_or(0),
        ))
    }

    /// Runs one batch of items side by side; each item's body waits for the nodes `waits_for`.
    async fn run_batch(
        &self,
        instance: &Instance<'a>,
        each: &ForEach<'a>,
        chunk: &[Value],
        waits_for: &[String],
        budget: &Arc<ItemBudget>,
    ) -> Vec<(String, ScopeEnd)> {
        let body_scope = format!("{}.", instance.step.path);
        let mut items = Vec::new();
        for value in chunk {
            let item_id = format!("{}[{}]", instance.id, item_label(value));
            let item_entry = entry_of(&item_id);
            lock(&self.book)
                .deps
                .insert(item_entry.clone(), waits_for.to_vec());
            let inner = Frame::new(
                Some(Arc::clone(&instance.frame)),
                Some((each.as_name.to_owned(), to_value(value))),
                OnFail::Item(Arc::clone(budget)),
                format!("{item_id}."),
            );
            let scope = self.run_scope(each.body, body_scope.clone(), inner, item_entry);
            items.push(async move {
                let end = scope.await;
                if !end.ok
                    && !budget.exceeded.load(Ordering::Relaxed)
                    && !self.stopped(&instance.frame)
                {
                    // Tolerated: put this item back before the run goes on.
                    self.undo_item(&item_id).await;
                }
                (item_id, end)
            });
        }
        futures::future::join_all(items).await
    }

    /// Records a group or `for_each` as it ended; inner failures have already travelled up.
    fn container_end(&self, instance: &Instance<'a>, kind: &str, ok: bool, outputs: Value) -> End {
        let step = instance.step;
        let id = &instance.id;
        let frame = &instance.frame;
        if ok {
            let seq = self.next_seq();
            if step.checkpoint {
                lock(&self.book).checkpoints.push((id.clone(), seq));
            }
            frame.record(&step.id.value, Recorded::Done(outputs.clone()));
            let elapsed_ms = instance.started.elapsed().as_millis() as u64;
            self.journal(
                "step_succeeded",
                json!({"step": id, "path": step.path, "action": kind, "write": false, "elapsed_ms": elapsed_ms, "outputs": outputs}),
                false,
            );
            self.emit(EventKind::StepSucceeded {
                step: id.clone(),
                action: kind.to_owned(),
                write: false,
                elapsed_ms: instance.started.elapsed().as_millis() as u64,
                attempts: 1,
                outputs,
                change: None,
            });
            return End::Succeeded;
        }
        frame.record(&step.id.value, Recorded::Empty("failed"));
        if self.stopped(frame) && !step.continue_on_error {
            self.skipped(
                id.clone(),
                SkipCause::Stopping,
                "did not complete: the run is stopping".into(),
            );
            return End::Failed { tolerated: false };
        }
        End::Failed {
            tolerated: step.continue_on_error,
        }
    }

    /// Records that `entry` (a body's start) needs what `container` needs.
    fn link(&self, entry: &str, container: &str) {
        let mut book = lock(&self.book);
        let deps = book.deps.get(container).cloned().unwrap_or_default();
        book.deps.insert(entry.to_owned(), deps);
    }
}

/// The node of a container's (or item's) start, which its body's first steps wait for.
fn entry_of(id: &str) -> String {
    format!("{id}>")
}
