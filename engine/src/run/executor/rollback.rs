//! Rollback: undoes completed writes, newest first, back to the point the
//! playbook's policy names (everything, or the last checkpoint every failure
//! came after), by each step's `rollback:` steps or its undo record.

use std::cmp::Reverse;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Value, json};

use super::display::human;
use super::scope::End;
use super::step::{Call, Instance};
use super::{Exec, UNDO_TIMEOUT, lock};
use crate::de::Spanned;
use crate::model::{RollbackPolicy, StepKind, StepRollback};
use crate::run::event::EventKind;

/// A write step that completed, kept for rollback.
pub(super) struct Completed<'a> {
    /// Its completion sequence number.
    pub(super) seq: u64,
    /// The step as it ran.
    pub(super) instance: Instance<'a>,
    /// The call that changed something.
    pub(super) call: Call,
    /// Its undo record, if the action left one.
    pub(super) undo: Option<Value>,
    /// Why the undo record cannot be used, when it cannot.
    pub(super) undo_unknown: Option<String>,
}

impl<'a> Exec<'a> {
    /// Undoes completed writes back to the point the policy names; true when all undid.
    pub(super) async fn rollback(&self, policy: RollbackPolicy) -> bool {
        if policy == RollbackPolicy::None {
            return true;
        }
        let keep = if policy == RollbackPolicy::ToCheckpoint {
            self.checkpoint_kept()
        } else {
            None
        };
        let cutoff = keep.as_ref().map_or(0, |(_, seq)| *seq);
        let completed = self.take_completed_after(cutoff);
        let policy_name = match policy {
            RollbackPolicy::ToCheckpoint => "to_checkpoint",
            RollbackPolicy::All => "all",
            RollbackPolicy::None => "none",
        };
        let steps: Vec<String> = completed.iter().map(|c| c.instance.id.clone()).collect();
        self.journal(
            "rollback_started",
            json!({"policy": policy_name, "checkpoint": keep.as_ref().map(|k| &k.0), "steps": steps}),
            true,
        );
        self.emit(EventKind::RollbackStarted {
            policy: policy_name.into(),
            checkpoint: keep.map(|k| k.0),
            steps,
        });
        let mut complete = true;
        for done in completed {
            if !self.undo_and_record(&done).await {
                complete = false;
            }
        }
        complete
    }

    /// Undoes the writes of one failed `for_each` item whose failure the run
    /// tolerates (`max_failures`), so the host or entity it worked on is not left
    /// half-changed: back to the item's newest checkpoint (`to_checkpoint`), or
    /// to its start (`all`). The rest of the run carries on.
    pub(super) async fn undo_item(&self, item_id: &str) {
        let policy = self.checked.playbook.rollback;
        if policy == RollbackPolicy::None || self.dry_run {
            return;
        }
        let prefix = format!("{item_id}.");
        let (completed, keep) = {
            let mut book = lock(&self.book);
            let keep = (policy == RollbackPolicy::ToCheckpoint)
                .then(|| {
                    book.checkpoints
                        .iter()
                        .filter(|(id, _)| id.starts_with(&prefix))
                        .max_by_key(|(_, seq)| *seq)
                        .cloned()
                })
                .flatten();
            let cutoff = keep.as_ref().map_or(0, |(_, seq)| *seq);
            let all = std::mem::take(&mut book.completed);
            let (mut undo, kept): (Vec<_>, Vec<_>) = all
                .into_iter()
                .partition(|c| c.instance.id.starts_with(&prefix) && c.seq > cutoff);
            book.completed = kept;
            undo.sort_by_key(|c| Reverse(c.seq));
            (undo, keep)
        };
        if completed.is_empty() {
            return;
        }
        let steps: Vec<String> = completed.iter().map(|c| c.instance.id.clone()).collect();
        // Its own record kind: a resume must not treat later items as built on an undone state.
        self.journal(
            "item_rollback_started",
            json!({"item": item_id, "checkpoint": keep.as_ref().map(|k| &k.0), "steps": steps}),
            true,
        );
        self.emit(EventKind::RollbackStarted {
            policy: format!("failed item {item_id}"),
            checkpoint: keep.map(|k| k.0),
            steps,
        });
        for done in completed {
            if !self.undo_and_record(&done).await {
                lock(&self.book).item_undo_failed = true;
            }
        }
    }

    /// The newest checkpoint every failure came after, with its completion sequence.
    fn checkpoint_kept(&self) -> Option<(String, u64)> {
        let (failed, mut candidates) = {
            let book = lock(&self.book);
            (book.failed.clone(), book.checkpoints.clone())
        };
        candidates.sort_by_key(|(_, seq)| Reverse(*seq));
        let ancestry: Vec<HashSet<String>> = failed.iter().map(|f| self.ancestors(f)).collect();
        candidates
            .into_iter()
            .find(|(checkpoint, _)| ancestry.iter().all(|a| a.contains(checkpoint)))
    }

    /// Takes the writes completed after sequence `cutoff` out of the book, newest first.
    fn take_completed_after(&self, cutoff: u64) -> Vec<Completed<'a>> {
        let mut completed = {
            let mut book = lock(&self.book);
            let all = std::mem::take(&mut book.completed);
            let (undo, kept): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.seq > cutoff);
            book.completed = kept;
            undo
        };
        completed.sort_by_key(|c| Reverse(c.seq));
        completed
    }

    /// Every node that had to finish before `id` started.
    pub(super) fn ancestors(&self, id: &str) -> HashSet<String> {
        let book = lock(&self.book);
        let mut seen = HashSet::new();
        let mut stack = vec![id.to_owned()];
        while let Some(current) = stack.pop() {
            for dep in book.deps.get(&current).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen
    }

    /// Undoes one write (unless aborted) and journals and announces how; true when it undid.
    async fn undo_and_record(&self, done: &Completed<'a>) -> bool {
        let id = &done.instance.id;
        if self.aborted.load(Ordering::Relaxed) {
            let message = format!("{id}: not undone (aborted by a second signal)");
            lock(&self.book).attention.push(message);
            return false;
        }
        let keeps = matches!(
            done.instance.step.rollback.as_ref().map(|r| &r.value),
            Some(StepRollback::None)
        );
        if !keeps && !self.journal("undo_started", json!({"step": id}), true) {
            lock(&self.book)
                .attention
                .push(format!("{id}: not undone: the journal cannot record it"));
            return false;
        }
        let undone = tokio::select! {
            result = self.undo_one(done) => result,
            () = self.abort_signal() => {
                // No end record: a resume finds this undo cut short and asks a person.
                lock(&self.book)
                    .attention
                    .push(format!("{id}: aborted while undoing; its state is unknown"));
                return false;
            }
        };
        match undone {
            Ok(how) if keeps => {
                // Left as it is: it stays done (a resume must not run it again).
                self.journal("step_kept", json!({"step": id, "how": how}), true);
                self.emit(EventKind::StepUndone {
                    step: id.clone(),
                    how,
                });
                true
            }
            Ok(how) => {
                self.journal("step_undone", json!({"step": id, "how": how}), true);
                self.emit(EventKind::StepUndone {
                    step: id.clone(),
                    how,
                });
                true
            }
            Err(error) => {
                let error = self.masker.text(&error);
                self.journal("undo_failed", json!({"step": id, "error": error}), true);
                lock(&self.book)
                    .attention
                    .push(format!("{id}: not undone: {error}"));
                self.emit(EventKind::UndoFailed {
                    step: id.clone(),
                    error,
                });
                false
            }
        }
    }

    /// Undoes one write as its step says; how it was undone, or why it was not.
    async fn undo_one(&self, done: &Completed<'a>) -> Result<String, String> {
        match done.instance.step.rollback.as_ref().map(|r| &r.value) {
            Some(StepRollback::None) => Ok("left as is (`rollback: none`)".into()),
            Some(StepRollback::Steps(ids)) => self.run_rollback_steps(done, ids).await,
            Some(StepRollback::Auto) | None => self.apply_undo_record(done).await,
        }
    }

    /// Runs a step's `rollback:` steps in order, stopping at the first that fails.
    async fn run_rollback_steps(
        &self,
        done: &Completed<'a>,
        ids: &[Spanned<String>],
    ) -> Result<String, String> {
        for name in ids {
            let Some(undo_step) = done
                .instance
                .siblings
                .iter()
                .find(|s| s.id.value == name.value)
            else {
                return Err(format!("rollback step `{}` not found", name.value));
            };
            let StepKind::Action { action, with } = &undo_step.kind else {
                return Err(format!(
                    "rollback step `{}` is not an action step",
                    name.value
                ));
            };
            let undo_id = format!("{}{}", done.instance.frame.prefix, undo_step.id.value);
            let instance = Instance {
                step: undo_step,
                siblings: done.instance.siblings,
                id: undo_id.clone(),
                frame: Arc::clone(&done.instance.frame),
                started: Instant::now(),
                trace: Arc::default(),
            };
            let end = self
                .run_action(instance, &action.value, with.as_ref(), true)
                .await;
            if !matches!(end, End::Succeeded | End::Skipped) {
                return Err(format!("rollback step `{undo_id}` failed"));
            }
        }
        Ok(format!(
            "ran {}",
            ids.iter()
                .map(|i| format!("`{}`", i.value))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// Undoes a write with the undo record its action left, within [`UNDO_TIMEOUT`].
    async fn apply_undo_record(&self, done: &Completed<'a>) -> Result<String, String> {
        let call = &done.call;
        if let Some(why) = &done.undo_unknown {
            return Err(format!("{why}: restore it by hand"));
        }
        let Some(undo) = done.undo.clone() else {
            let effect = call.action.effect_for(&call.arguments);
            if effect.reversible {
                return Ok("nothing to undo: it changed nothing".into());
            }
            return Err(format!(
                "`{}` has no undo: restore it by hand, or give the step `rollback:` steps (or `rollback: none`)",
                call.action.spec().name
            ));
        };
        let undo = tokio::time::timeout(
            UNDO_TIMEOUT,
            call.action
                .undo(&call.context, call.arguments.clone(), undo),
        );
        match undo.await {
            Ok(Ok(())) => Ok("its undo record".into()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("undo timed out after {}", human(UNDO_TIMEOUT))),
        }
    }
}
