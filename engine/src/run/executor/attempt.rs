//! Running a step's action: attempts with retries and doubling delays, each
//! bounded by the step's timeout, `until` polling, and waits a second signal
//! cuts short.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use super::display::{compact, human};
use super::step::{Call, Instance};
use super::{DEFAULT_RETRY_DELAY, DEFAULT_UNTIL_TIMEOUT, Exec};
use crate::action::{ActionError, Applied, Prepared};
use crate::model::{Step, TemplateText};
use crate::run::context::StepScope;
use crate::run::event::EventKind;

/// How a step's action is bounded and retried.
#[derive(Debug, Clone, Copy)]
pub(super) struct AttemptSettings {
    /// Longest one apply may take; with `until:`, the longest polling.
    pub(super) timeout: Option<Duration>,
    /// Retries after a failed attempt.
    pub(super) retries: u32,
    /// Wait before the first retry (doubling after); with `until:`, between polls.
    pub(super) retry_delay: Duration,
}

impl<'a> Exec<'a> {
    /// The step's `timeout`, `retries` and `retry_delay`, rendered.
    pub(super) fn attempt_settings(
        &self,
        step: &Step,
        scope: &StepScope,
    ) -> Result<AttemptSettings, String> {
        Ok(AttemptSettings {
            timeout: self
                .setting(step.timeout.as_ref(), scope, "timeout")?
                .map(|d| d.0),
            retries: self
                .setting(step.retries.as_ref(), scope, "retries")?
                .unwrap_or(0),
            retry_delay: self
                .setting(step.retry_delay.as_ref(), scope, "retry_delay")?
                .map_or(DEFAULT_RETRY_DELAY, |d| d.0),
        })
    }

    /// Applies the call until it succeeds or its retries run out; with the attempts made.
    pub(super) async fn attempts(
        &self,
        instance: &Instance<'a>,
        call: &Call,
        scope: &StepScope,
        settings: AttemptSettings,
    ) -> Result<(Applied, u32), (ActionError, u32)> {
        let mut delay = settings.retry_delay;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.emit(EventKind::StepStarted {
                step: instance.id.clone(),
                action: call.action.spec().name.to_owned(),
                write: call.write,
                attempt,
            });
            let clock = instance.trace.attempt_started();
            let result = match &instance.step.until {
                Some(until) => self.poll(call, scope, until, settings, instance.step.sensitive).await,
                None => self.attempt(call, settings.timeout).await,
            };
            let error = result
                .as_ref()
                .err()
                .map(|error| self.masker.text(&error.to_string()));
            instance.trace.attempt_ended(clock, error);
            match result {
                Ok(applied) => return Ok((applied, attempt)),
                Err(error)
                    if attempt <= settings.retries
                        && retryable(&error)
                        && !self.aborted.load(Ordering::Relaxed) =>
                {
                    self.emit(EventKind::StepRetrying {
                        step: instance.id.clone(),
                        attempt,
                        delay_ms: delay.as_millis() as u64,
                        error: self.masker.text(&error.to_string()),
                    });
                    if !self.sleep(delay).await {
                        return Err((error, attempt));
                    }
                    delay = delay.saturating_mul(2);
                }
                Err(error) => return Err((error, attempt)),
            }
        }
    }

    /// One apply, bounded by the timeout and cut short by an abort.
    async fn attempt(
        &self,
        call: &Call,
        timeout: Option<Duration>,
    ) -> Result<Applied, ActionError> {
        if !call.write || self.dry_run {
            return self.bounded(call, &call.context, timeout).await;
        }
        // A write keeps the state it replaces in the journal before it writes.
        let (keeper, mut kept) = tokio::sync::mpsc::unbounded_channel();
        let mut context = call.context.clone();
        let step = context.step_id.clone();
        // What the step's first try kept: in an interrupted attempt, else in this one.
        let earlier = match self.prior.prepared.get(&step) {
            Some(kept) => Some(kept.clone()),
            None => super::lock(&self.kept).get(&step).cloned(),
        };
        context.prepared = Prepared::new(earlier, keeper);
        let bounded = self.bounded(call, &context, timeout);
        tokio::pin!(bounded);
        loop {
            tokio::select! {
                result = &mut bounded => return result,
                Some((state, reply)) = kept.recv() => {
                    let _answered = reply.send(self.keep_prepared(&step, state));
                }
            }
        }
    }

    /// Journals the state a write step replaces (durably), before its write; whether it
    /// was written. A state holding a secret is journalled as masked, unusable on resume.
    fn keep_prepared(&self, step: &str, state: Value) -> bool {
        let fields = if self.masker.value(&state) == state {
            super::lock(&self.kept)
                .entry(step.to_owned())
                .or_insert_with(|| state.clone());
            json!({"step": step, "state": state})
        } else {
            json!({"step": step, "masked": true})
        };
        self.journal("step_prepared", fields, true)
    }

    /// One apply with `context`, bounded by the timeout and cut short by an abort.
    async fn bounded(
        &self,
        call: &Call,
        context: &crate::action::StepContext,
        timeout: Option<Duration>,
    ) -> Result<Applied, ActionError> {
        let apply = call.action.apply(context, call.arguments.clone());
        let bounded = async {
            match timeout {
                Some(limit) => tokio::time::timeout(limit, apply)
                    .await
                    .unwrap_or_else(|_| Err(timed_out(call, limit))),
                None => apply.await,
            }
        };
        tokio::select! {
            result = bounded => result,
            () = self.abort_signal() => Err(ActionError::failed("aborted by a second signal")),
        }
    }

    /// One apply and one evaluation of `until`: the outputs and whether it holds.
    pub(super) async fn check_until_once(
        &self,
        call: &Call,
        scope: &StepScope,
        until: &TemplateText,
    ) -> Result<(Applied, bool), ActionError> {
        let applied = self.attempt(call, call.context.timeout).await?;
        let result = Value::Object(applied.outputs.clone());
        let holds = self
            .render_bool(until, &scope.with_result(&result))
            .map_err(|e| ActionError::failed(format!("`until`: {e}")))?;
        Ok((applied, holds))
    }

    /// Applies until `until` holds, within the timeout, waiting the retry delay between polls.
    async fn poll(
        &self,
        call: &Call,
        scope: &StepScope,
        until: &TemplateText,
        settings: AttemptSettings,
        sensitive: bool,
    ) -> Result<Applied, ActionError> {
        let limit = settings.timeout.unwrap_or(DEFAULT_UNTIL_TIMEOUT);
        let interval = settings.retry_delay;
        let deadline = tokio::time::Instant::now() + limit;
        let mut polls = 0;
        loop {
            polls += 1;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let applied = self
                .attempt(call, Some(left.max(Duration::from_millis(1))))
                .await?;
            let result = Value::Object(applied.outputs.clone());
            if sensitive {
                self.masker.add_value(&result);
            }
            let holds = self
                .render_bool(until, &scope.with_result(&result))
                .map_err(|e| ActionError::failed(format!("`until`: {e}")))?;
            if holds {
                return Ok(applied);
            }
            if tokio::time::Instant::now() + interval > deadline {
                let shown = if sensitive {
                    compact(&crate::run::mask::mask_all(&result))
                } else {
                    self.masker.text(&compact(&result))
                };
                return Err(ActionError::failed(format!(
                    "`until: {}` still false after {} ({polls} polls); last result: {shown}",
                    until.source,
                    human(limit)
                )));
            }
            if !self.sleep(interval).await {
                return Err(ActionError::failed("aborted by a second signal"));
            }
        }
    }

    /// Sleeps unless aborted; false when aborted.
    async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            () = self.abort_signal() => false,
        }
    }

    /// Resolves on a second signal; never when no more signals can come.
    pub(super) async fn abort_signal(&self) {
        let mut signals = self.signals.clone();
        if signals.wait_for(|n| *n >= 2).await.is_err() {
            std::future::pending::<()>().await;
        }
        // Whoever sees the second signal first marks the run aborted, so
        // nothing (a rollback included) starts after it.
        self.interrupted.store(true, Ordering::Relaxed);
        self.aborted.store(true, Ordering::Relaxed);
    }
}

/// The error of an attempt cut off at `limit`: a write stopped partway leaves its
/// changes unknown, so the run ends needing attention rather than claiming a restore.
fn timed_out(call: &Call, limit: Duration) -> ActionError {
    let message = format!("timed out after {}", human(limit));
    if call.write && !call.context.dry_run {
        // Stopped partway through a write: what it had changed by then is not known.
        let left = format!(
            "stopped after {} partway through its writes: what it changed is not known",
            human(limit)
        );
        ActionError::partially_applied(message, vec![left])
    } else {
        ActionError::failed(message)
    }
}

/// Whether a failed attempt may be tried again: a plain failure, not a partial write.
fn retryable(error: &ActionError) -> bool {
    matches!(error, ActionError::Failed { .. })
}
