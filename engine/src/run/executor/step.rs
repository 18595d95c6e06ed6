//! One action step: its `when:`, target and arguments, the window check, the
//! probe of a write left in doubt, its attempts, and the journal record and
//! events it leaves; also restoring a step an earlier attempt did.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::attempt::AttemptSettings;
use super::container::ForEach;
use super::display::human;
use super::rollback::Completed;
use super::scope::End;
use super::trace::{StepTrace, with_fields};
use super::{Exec, Mode, PriorStep, lock};
use crate::action::{
    Action, ActionError, Applied, Change, EffectKind, Evaluate, Prepared, Probe, StepContext,
    StepTarget,
};
use crate::model::{Step, StepKind};
use crate::node::Node;
use crate::plan::KNOWN_AFTER_APPLY;
use crate::run::context::{Frame, Recorded, StepScope};
use crate::run::event::{EventKind, StopReason};
use crate::run::mask::mask_all;

/// One step being run: where it sits, its runtime id and when it started.
#[derive(Clone)]
pub(super) struct Instance<'a> {
    /// The step.
    pub(super) step: &'a Step,
    /// The steps of its scope, where its `rollback:` steps are found.
    pub(super) siblings: &'a [Step],
    /// Its runtime id (`upgrade[dp1].drain`).
    pub(super) id: String,
    /// The scope instance it runs in.
    pub(super) frame: Arc<Frame>,
    /// When it started.
    pub(super) started: Instant,
    /// Its target, arguments and attempts, for the journal.
    pub(super) trace: Arc<StepTrace>,
}

/// The action side of a step: what runs, with what, and what it is told.
pub(super) struct Call {
    /// The action.
    pub(super) action: Arc<dyn Action>,
    /// Its rendered arguments.
    pub(super) arguments: Value,
    /// Whether it changes something.
    pub(super) write: bool,
    /// What the action is told about the step.
    pub(super) context: StepContext,
}

impl<'a> Exec<'a> {
    /// Runs one step of any kind.
    pub(super) async fn run_step(&self, instance: Instance<'a>) -> End {
        let step = instance.step;
        match &step.kind {
            StepKind::Action { action, with } => {
                self.run_action(instance, &action.value, with.as_ref(), false)
                    .await
            }
            StepKind::Group { steps } => self.run_group(instance, steps).await,
            StepKind::ForEach {
                items,
                as_name,
                batch,
                max_failures,
                steps,
            } => {
                let each = ForEach {
                    items,
                    as_name: &as_name.value,
                    batch: batch.as_ref(),
                    max_failures: max_failures.as_ref(),
                    body: steps,
                };
                self.run_for_each(instance, each).await
            }
        }
    }

    /// Runs an action step, or a `rollback:` step when `undoing`, and records how it ended.
    pub(super) async fn run_action(
        &self,
        instance: Instance<'a>,
        action_name: &str,
        with: Option<&'a Node>,
        undoing: bool,
    ) -> End {
        let Some(action) = self.registry.get(action_name).cloned() else {
            let error = format!("unknown action `{action_name}`");
            return self.fail(&instance, action_name, error, 0);
        };
        let mut scope = self.scope_of(&instance.frame, None);
        let in_finally = instance.id.starts_with("finally.");
        if !undoing
            && !in_finally
            && let Some(prior) = self.prior.done.get(&instance.id)
        {
            return self.restore(instance, action, with, &scope, prior.clone());
        }
        if !undoing && self.mode == Mode::Rollback {
            // Not done before: nothing to undo, and its dependents may still be done.
            if self.prior.in_doubt.contains(&instance.id) {
                let mut book = lock(&self.book);
                book.item_undo_failed = true;
                book.attention.push(format!(
                    "{}: started but never finished; its state is unknown, so it was not undone: check it by hand",
                    instance.id
                ));
            }
            instance
                .frame
                .record(&instance.step.id.value, Recorded::Empty("not_run"));
            return End::Skipped;
        }
        if let Err(end) = self.admit_when(&instance, &scope, action_name, true) {
            return end;
        }
        let (target, host) = match self.target(instance.step, action.as_ref(), &scope) {
            Ok(found) => found,
            Err(error) => return self.fail(&instance, action_name, error, 0),
        };
        instance.trace.set_target(&target);
        if let Some(host) = &host {
            scope = scope.with_host(host);
        }
        let arguments = match self.arguments(with, &scope) {
            Ok(arguments) => arguments,
            Err(error) => return self.fail(&instance, action_name, error, 0),
        };
        instance.trace.set_arguments(self.masker.value(&arguments));
        let effect = action.effect_for(&arguments);
        instance.trace.set_write(effect.kind != EffectKind::Read);
        // Like an environment's `tls.insecure`, a step's is announced on every run.
        if arguments.pointer("/tls/insecure") == Some(&serde_json::Value::Bool(true)) {
            self.notice(format!(
                "TLS verification is OFF for step `{}` (tls.insecure in its arguments)",
                instance.id
            ));
        }
        let settings = match self.attempt_settings(instance.step, &scope) {
            Ok(settings) => settings,
            Err(error) => return self.fail(&instance, action_name, error, 0),
        };
        let evaluator = self.evaluator(&scope);
        let context = self.step_context(&instance.id, target, settings.timeout, evaluator);
        let call = Call {
            action,
            arguments,
            write: effect.kind != EffectKind::Read,
            context,
        };
        if self.dry_run {
            return self.plan_step(&instance, call).await;
        }
        if call.write
            && !undoing
            && let Err(reason) = self.window_admits(instance.step)
        {
            return self.outside_window(&instance, reason);
        }
        let mut probed = None;
        if call.write && self.prior.in_doubt.contains(&instance.id) {
            probed = match self
                .resolve_in_doubt(&instance, &call, effect.idempotent)
                .await
            {
                Ok(probed) => probed,
                Err(end) => return end,
            };
        }
        self.apply(instance, call, &scope, settings, probed, undoing).await
    }

    /// Whether the step's `when:` lets it run; `Err` holds how the step ended instead.
    ///
    /// With `unknown_runs`, a dry run runs a step whose `when:` reads values known only
    /// after apply.
    pub(super) fn admit_when(
        &self,
        instance: &Instance<'a>,
        scope: &StepScope,
        action: &str,
        unknown_runs: bool,
    ) -> Result<(), End> {
        let Some(when) = &instance.step.when else {
            return Ok(());
        };
        match self.render_bool(when, scope) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.skip(instance, format!("`when: {}` is false", when.source))),
            Err(_) if unknown_runs && self.dry_run && scope.saw_unknown.load(Ordering::Relaxed) => {
                Ok(())
            }
            Err(error) => Err(self.fail(instance, action, format!("`when`: {error}"), 0)),
        }
    }

    /// The step's `with:`, rendered (in a dry run, values known only after apply stay unknown).
    fn arguments(&self, with: Option<&Node>, scope: &StepScope) -> Result<Value, String> {
        match with.map(|w| self.render_json(&w.to_json(), scope)) {
            None => Ok(json!({})),
            Some(Ok(arguments)) => Ok(arguments),
            Some(Err(_)) if self.dry_run && scope.saw_unknown.load(Ordering::Relaxed) => {
                Ok(Value::String(KNOWN_AFTER_APPLY.into()))
            }
            Some(Err(error)) => Err(format!("arguments: {error}")),
        }
    }

    /// What an action is told about the step it runs.
    pub(super) fn step_context(
        &self,
        id: &str,
        target: StepTarget,
        timeout: Option<Duration>,
        evaluator: Arc<dyn Evaluate>,
    ) -> StepContext {
        StepContext {
            step_id: id.to_owned(),
            dry_run: self.dry_run,
            target,
            environment: self.environment.clone(),
            base_dir: self.base_dir.clone(),
            timeout,
            resources: Arc::clone(&self.resources),
            approver: Arc::clone(&self.approver),
            evaluator,
            prepared: Prepared::default(),
        }
    }

    /// Whether a write may start now: inside the window, with time left for its p95.
    fn window_admits(&self, step: &Step) -> Result<(), String> {
        let Some(window) = self.window else {
            return Ok(());
        };
        let now = jiff::Timestamp::now();
        let Some(left) = window.left_at(now) else {
            return Err(if now < window.start {
                format!("outside the change window: it opens at {}", window.start)
            } else {
                format!("the change window ended at {}", window.end)
            });
        };
        if let Some(expected) = self.history.expected(&step.path)
            && expected.p95 > left
        {
            return Err(format!(
                "{}: {} left in the window, but this step's p95 is {} (from {} earlier run(s) of this playbook)",
                step.path,
                human(left),
                human(expected.p95),
                expected.samples
            ));
        }
        Ok(())
    }

    /// Leaves a write the window does not admit unstarted, and stops the run.
    fn outside_window(&self, instance: &Instance<'a>, reason: String) -> End {
        instance
            .frame
            .record(&instance.step.id.value, Recorded::Empty("not_run"));
        self.skipped(instance.id.clone(), SkipCause::Window, reason.clone());
        self.stop_run(StopReason::WindowEnd, reason);
        End::NotRun
    }

    /// What to do with a write an earlier attempt started and never ended.
    ///
    /// `Ok(Some)` when its probe found it done, `Ok(None)` to run it again, `Err` with
    /// how the step ended when its state cannot be told.
    async fn resolve_in_doubt(
        &self,
        instance: &Instance<'a>,
        call: &Call,
        idempotent: bool,
    ) -> Result<Option<Applied>, End> {
        let id = &instance.id;
        if idempotent {
            self.notice(format!("{id}: started before the interruption with no end recorded; it is idempotent, so it runs again"));
            return Ok(None);
        }
        match call
            .action
            .probe(&call.context, call.arguments.clone())
            .await
        {
            Ok(Probe::Done(applied)) => {
                self.notice(format!(
                    "{id}: started before the interruption; its probe found it done"
                ));
                Ok(Some(applied))
            }
            Ok(Probe::NotDone) => {
                self.notice(format!("{id}: started before the interruption; its probe found it not done, so it runs again"));
                Ok(None)
            }
            Ok(Probe::Unknown(why)) | Err(ActionError::Failed { message: why }) => {
                let message = format!(
                    "{id}: started before the interruption with no end recorded; it is not idempotent and its state cannot be told ({why}): check it by hand, then `runsheet resume RUN --resolved {id}=done` if it took effect or `--resolved {id}=rerun` if it did not"
                );
                lock(&self.book).attention.push(message.clone());
                self.stop_run(StopReason::Attention, message);
                instance
                    .frame
                    .record(&instance.step.id.value, Recorded::Empty("not_run"));
                Err(End::NotRun)
            }
            Err(other) => {
                let name = call.action.spec().name;
                Err(self.fail(instance, name, other.to_string(), 0))
            }
        }
    }

    /// Journals a write's start, runs its attempts within the concurrency limit
    /// (unless `probed` found it done), and records how it ended.
    async fn apply(
        &self,
        instance: Instance<'a>,
        call: Call,
        scope: &StepScope,
        settings: AttemptSettings,
        probed: Option<Applied>,
        undoing: bool,
    ) -> End {
        let name = call.action.spec().name;
        let masked_arguments = self.masker.value(&call.arguments);
        let permit = self.semaphore.acquire().await;
        // The run may have stopped while this step waited for a slot (a write
        // its probe found done is recorded whatever happens).
        let checks = !undoing && probed.is_none();
        if checks && self.stopped(&instance.frame) {
            drop(permit);
            instance
                .frame
                .record(&instance.step.id.value, Recorded::Empty("not_run"));
            self.skipped(
                instance.id.clone(),
                SkipCause::Stopping,
                "not started: the run is stopping".into(),
            );
            return End::NotRun;
        }
        if call.write
            && checks
            && let Err(reason) = self.window_admits(instance.step)
        {
            drop(permit);
            return self.outside_window(&instance, reason);
        }
        if call.write
            && !self.journal(
                "step_started",
                with_fields(
                    json!({"step": instance.id, "path": instance.step.path, "action": name, "arguments": masked_arguments}),
                    instance.trace.fields(false),
                ),
                true,
            )
        {
            // Not durable: the write must not happen without its start record.
            drop(permit);
            instance
                .frame
                .record(&instance.step.id.value, Recorded::Empty("not_run"));
            return End::NotRun;
        }
        lock(&self.book).in_flight.insert(instance.id.clone());
        let result = match probed {
            Some(applied) => Ok((applied, 1)),
            None => self.attempts(&instance, &call, scope, settings).await,
        };
        if !self.aborted.load(Ordering::Relaxed) {
            // An aborted step stays listed: its state is unknown.
            lock(&self.book).in_flight.remove(&instance.id);
        }
        drop(permit);
        self.record_decisions();
        match result {
            Ok((applied, attempts)) => {
                self.succeed(instance, call, masked_arguments, applied, attempts, undoing);
                End::Succeeded
            }
            Err((ActionError::Paused { gate, prompt }, _)) => self.pause(&instance, gate, prompt),
            Err((
                ActionError::PartiallyApplied {
                    message,
                    changes_left,
                },
                attempts,
            )) => self.fail_leaving(&instance, name, message, attempts, &changes_left),
            Err((error, attempts)) => self.fail(&instance, name, error.to_string(), attempts),
        }
    }

    /// Journals, records and announces a step that succeeded; keeps a write for rollback.
    fn succeed(
        &self,
        instance: Instance<'a>,
        call: Call,
        masked_arguments: Value,
        applied: Applied,
        attempts: u32,
        undoing: bool,
    ) {
        let elapsed_ms = instance.started.elapsed().as_millis() as u64;
        let step = instance.step;
        for secret in &applied.secrets {
            self.masker.add(secret);
        }
        let outputs = Value::Object(applied.outputs);
        if step.sensitive {
            self.masker.add_value(&outputs);
        }
        let shown = if step.sensitive {
            mask_all(&outputs)
        } else {
            self.masker.value(&outputs)
        };
        let seq = self.next_seq();
        let name = call.action.spec().name;
        let write = call.write;
        let change = applied.change.map(|c| self.mask_change(c));
        let mut record = json!({
            "step": instance.id,
            "path": step.path,
            "action": name,
            "write": write,
            "elapsed_ms": elapsed_ms,
            "arguments": masked_arguments,
            "outputs": shown,
            "masked": step.sensitive,
            "undo": applied.undo,
        });
        if let Some(change) = &change {
            record = with_fields(record, Map::from_iter([("change".to_owned(), json!(change))]));
        }
        self.journal("step_succeeded", with_fields(record, instance.trace.fields(false)), write);
        instance
            .frame
            .record(&step.id.value, Recorded::Done(outputs));
        let id = instance.id.clone();
        if !undoing {
            // A rollback step undoes another step; it is never undone itself.
            self.keep(seq, instance, call, applied.undo, None);
        }
        self.emit(EventKind::StepSucceeded {
            step: id,
            action: name.to_owned(),
            write,
            elapsed_ms,
            attempts,
            outputs: shown,
            change,
        });
    }

    /// A step done by an earlier attempt: outputs back, kept for rollback, not run.
    fn restore(
        &self,
        instance: Instance<'a>,
        action: Arc<dyn Action>,
        with: Option<&'a Node>,
        scope: &StepScope,
        prior: PriorStep,
    ) -> End {
        let step = instance.step;
        let outputs = if prior.masked {
            json!({})
        } else {
            prior.outputs
        };
        instance
            .frame
            .record(&step.id.value, Recorded::Done(outputs));
        let arguments = with
            .map(|w| self.render_json(&w.to_json(), scope))
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_else(|| json!({}));
        // As journaled: arguments rendered now may differ (or not render at all).
        let write = prior.write || action.effect_for(&arguments).kind != EffectKind::Read;
        let seq = self.next_seq();
        let target = self
            .target(step, action.as_ref(), scope)
            .map(|(target, _)| target)
            .unwrap_or_default();
        // Its undo may render templates (a gateway's `secret()` token): the step's scope.
        let context = self.step_context(&instance.id, target, None, self.evaluator(scope));
        let id = instance.id.clone();
        let call = Call {
            action,
            arguments,
            write,
            context,
        };
        self.keep(seq, instance, call, prior.undo, prior.undo_unknown);
        self.journal("step_restored", json!({"step": id, "path": step.path}), false);
        self.emit(EventKind::StepRestored { step: id });
        End::Succeeded
    }

    /// Keeps a finished step: for rollback when it wrote, as a checkpoint when it is one.
    fn keep(
        &self,
        seq: u64,
        instance: Instance<'a>,
        call: Call,
        undo: Option<Value>,
        undo_unknown: Option<String>,
    ) {
        let mut book = lock(&self.book);
        if instance.step.checkpoint {
            book.checkpoints.push((instance.id.clone(), seq));
        }
        if call.write {
            book.completed.push(Completed {
                seq,
                instance,
                call,
                undo,
                undo_unknown,
            });
        }
    }

    /// Records a step waiting at an approval gate, and stops the run until it is approved.
    fn pause(&self, instance: &Instance<'a>, gate: String, prompt: String) -> End {
        let id = &instance.id;
        instance
            .frame
            .record(&instance.step.id.value, Recorded::Empty("paused"));
        self.journal("paused", json!({"step": id, "gate": gate}), true);
        self.emit(EventKind::Paused {
            step: id.clone(),
            gate: gate.clone(),
            prompt,
        });
        self.stop_run(
            StopReason::Approval,
            format!("waiting for approval at gate `{gate}`: runsheet resume RUN --approve {gate}"),
        );
        End::NotRun
    }

    /// Journals and announces a step whose `when:` is false.
    pub(super) fn skip(&self, instance: &Instance<'a>, reason: String) -> End {
        instance
            .frame
            .record(&instance.step.id.value, Recorded::Empty("skipped"));
        self.skipped(instance.id.clone(), SkipCause::When, reason);
        End::Skipped
    }

    /// Journals and announces a step that did not run (or did not complete), and why.
    pub(super) fn skipped(&self, id: String, cause: SkipCause, reason: String) {
        self.journal(
            "step_skipped",
            json!({"step": id, "reason": reason, "cause": cause.name()}),
            false,
        );
        self.emit(EventKind::StepSkipped { step: id, reason });
    }

    /// Journals and announces a failed step; unless tolerated, the failure travels up.
    pub(super) fn fail(
        &self,
        instance: &Instance<'a>,
        action: &str,
        error: String,
        attempts: u32,
    ) -> End {
        self.fail_leaving(instance, action, error, attempts, &[])
    }

    /// Like [`Exec::fail`], for a step whose action left `changes_left` changed and could
    /// not put them back: they are journaled and named for a person, and the run ends
    /// needing attention whatever its rollback does.
    pub(super) fn fail_leaving(
        &self,
        instance: &Instance<'a>,
        action: &str,
        error: String,
        attempts: u32,
        changes_left: &[String],
    ) -> End {
        let step = instance.step;
        let id = &instance.id;
        let tolerated = step.continue_on_error;
        let error = self.masker.text(&error);
        let elapsed_ms = instance.started.elapsed().as_millis() as u64;
        instance
            .frame
            .record(&step.id.value, Recorded::Empty("failed"));
        if !self.aborted.load(Ordering::Relaxed) || !lock(&self.book).in_flight.contains(id) {
            // A step cut short by an abort has no end record: resume treats it as in doubt.
            let record = json!({
                "step": id,
                "path": step.path,
                "action": action,
                "error": error,
                "elapsed_ms": elapsed_ms,
                "tolerated": tolerated,
            });
            let record = if changes_left.is_empty() {
                record
            } else {
                with_fields(
                    record,
                    Map::from_iter([("changes_left".to_owned(), json!(changes_left))]),
                )
            };
            self.journal("step_failed", with_fields(record, instance.trace.fields(true)), true);
        }
        self.emit(EventKind::StepFailed {
            step: id.clone(),
            action: action.to_owned(),
            error,
            elapsed_ms,
            attempts,
            tolerated,
        });
        if !changes_left.is_empty() {
            let left: Vec<String> = changes_left.iter().map(|item| self.masker.text(item)).collect();
            let mut book = lock(&self.book);
            book.item_undo_failed = true;
            book.attention.push(format!(
                "{id}: failed partway and could not put back its own changes; left changed: {}",
                left.join("; ")
            ));
        }
        if !tolerated {
            self.escalate(&instance.frame, id);
        }
        End::Failed { tolerated }
    }

    /// Journals and announces a notice.
    pub(super) fn notice(&self, message: String) {
        self.journal("notice", json!({"message": message}), false);
        self.emit(EventKind::Notice { message });
    }

    /// A change with its texts masked.
    pub(super) fn mask_change(&self, change: Change) -> Change {
        Change {
            changes: change.changes,
            summary: self.masker.text(&change.summary),
            before: change.before.map(|b| self.masker.text(&b)),
            after: change.after.map(|a| self.masker.text(&a)),
        }
    }
}

/// Why a step did not run, as the journal names it (`cause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SkipCause {
    /// Its `when:` was false.
    When,
    /// A step it needs did not succeed.
    Dependency,
    /// It runs only to undo another step.
    RollbackStep,
    /// The run was stopping (a failure, a signal, a gate).
    Stopping,
    /// The change window did not admit it.
    Window,
}

impl SkipCause {
    /// Its name in journal records.
    pub(super) fn name(self) -> &'static str {
        match self {
            SkipCause::When => "when_false",
            SkipCause::Dependency => "dependency",
            SkipCause::RollbackStep => "rollback_step",
            SkipCause::Stopping => "stopping",
            SkipCause::Window => "window",
        }
    }
}
