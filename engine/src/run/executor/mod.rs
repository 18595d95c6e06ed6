//! The executor: runs a checked playbook's DAG with bounded concurrency,
//! `for_each` batches, retries, polling and timeouts; journals every step;
//! stops on failure, signal or window end; rolls back; then runs `finally`.
//!
//! It emits [`Event`]s and never prints. Dry runs call each write action's
//! `plan` instead of `apply`, and run reads for real through transports that
//! refuse writes.
//!
//! This file holds the public API ([`execute`], [`RunOptions`], [`RunResult`])
//! and `Exec`, the state of one run with its top level: main steps, rollback,
//! `finally`, signals and the window. The rest lives in:
//!
//! - `prior`: what an earlier attempt of the run did, from its journal;
//! - `scope`: the DAG scheduler of one scope;
//! - `step`: one action step, from `when:` to the record it leaves;
//! - `attempt`: retries, timeouts and `until` polling;
//! - `dry_run`: what a dry run says about each step;
//! - `target`: the host or gateway a step runs on;
//! - `render`: templates in a step's context;
//! - `container`: groups and `for_each`;
//! - `rollback`: undoing completed writes;
//! - `gate`: approval gates;
//! - `outputs`: the playbook's `outputs:`, evaluated when the run ends;
//! - `display`: durations and values for people;
//! - `trace`: a step's target, arguments and attempts, for its journal records.

mod attempt;
mod container;
mod display;
mod dry_run;
mod gate;
mod outputs;
mod prior;
mod render;
mod rollback;
mod scope;
mod step;
mod target;
mod trace;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, watch};

pub use self::display::human;
pub use self::prior::{Prior, PriorStep};
pub use self::render::truthy;

use self::gate::Gatekeeper;
use self::rollback::Completed;
use super::context::{Base, Frame, OnFail, RunHost, to_value};
use super::event::{Event, EventKind, Observer, Outcome, StopReason, now_rfc3339};
use super::journal::JournalWriter;
use super::mask::Masker;
use super::window::{History, Window};
use crate::action::{Approver, Change, NoApprover, Resources};
use crate::check::Checked;
use crate::dag::{FINALLY_SCOPE, MAIN_SCOPE};
use crate::model::{Environment, Gateway, RollbackPolicy, Transport};
use crate::plan::environment_value;
use crate::registry::Registry;
use crate::template::Templates;

/// Default wait before the first retry (doubling after).
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(2);
/// Longest `until` polling when the step sets no timeout.
pub const DEFAULT_UNTIL_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for one undo.
pub const UNDO_TIMEOUT: Duration = Duration::from_secs(600);

/// What happens when the change window ends with work left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WindowEnd {
    /// Finish what is in flight, then roll back per the playbook's policy.
    #[default]
    Rollback,
    /// Finish what is in flight and pause; `resume` continues in the next window.
    Pause,
}

/// How an execution treats the steps of an earlier attempt of the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Run every step not done before.
    #[default]
    Run,
    /// Restore the steps done before, run nothing, then undo all of them.
    Rollback,
}

/// Signals from outside: Ctrl-C and SIGTERM.
#[derive(Debug)]
pub struct Control {
    /// How many signals have arrived.
    signals: watch::Sender<u32>,
}

impl Control {
    /// A control no signal has reached.
    pub fn new() -> Arc<Control> {
        Arc::new(Control {
            signals: watch::channel(0).0,
        })
    }

    /// Records a signal: the first stops new steps, the second aborts in-flight ones.
    pub fn interrupt(&self) -> u32 {
        let mut count = 0;
        self.signals.send_modify(|n| {
            *n += 1;
            count = *n;
        });
        count
    }

    /// A receiver of the signal count.
    fn subscribe(&self) -> watch::Receiver<u32> {
        self.signals.subscribe()
    }
}

/// How to run.
pub struct RunOptions {
    /// Run id.
    pub run_id: String,
    /// Change nothing: plan writes, run reads.
    pub dry_run: bool,
    /// Directory of the playbook.
    pub base_dir: PathBuf,
    /// Change window, if any.
    pub window: Option<Window>,
    /// What to do at the window's end.
    pub window_end: WindowEnd,
    /// Durations of earlier runs.
    pub history: History,
    /// Steps done by an earlier attempt (resume, rollback).
    pub prior: Prior,
    /// Whether this continues an earlier attempt.
    pub resumed: bool,
    /// Run or roll back.
    pub mode: Mode,
    /// Answers approval gates.
    pub approver: Arc<dyn Approver>,
    /// Receive every event.
    pub observers: Vec<Arc<dyn Observer>>,
    /// Where records go (none for dry runs).
    pub journal: Option<Box<dyn JournalWriter>>,
    /// Secret values to mask.
    pub masker: Masker,
    /// Change id, for the start event.
    pub change_id: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The outcome.
    pub outcome: Outcome,
    /// Steps a person must look at, with why.
    pub attention: Vec<String>,
    /// Why new steps stopped starting, if they did.
    pub stop: Option<(StopReason, String)>,
    /// Dry runs: what each step that could not run would change.
    pub planned: Vec<PlannedChange>,
    /// The playbook's `outputs:` that could be evaluated, secrets masked.
    pub outputs: Map<String, Value>,
}

/// What a dry run says about a step it did not run.
#[derive(Debug, Clone)]
pub struct PlannedChange {
    /// Runtime id.
    pub step: String,
    /// Action type.
    pub action: String,
    /// Whether the step writes (reads appear here when they could not run).
    pub write: bool,
    /// The change.
    pub change: Change,
}

/// Runs a checked playbook.
pub async fn execute(
    checked: &Checked,
    registry: &Registry,
    options: RunOptions,
    control: Arc<Control>,
) -> RunResult {
    let started = Instant::now();
    let run_id = options.run_id.clone();
    let resumed = options.resumed;
    let rollback = options.mode == Mode::Rollback;
    let change_id = options.change_id.clone();
    let exec = Exec::new(checked, registry, options, control.subscribe());
    exec.emit(EventKind::RunStarted {
        run: run_id.clone(),
        playbook: checked.playbook.name.value.clone(),
        environment: exec.environment.as_ref().map(|e| e.name.value.clone()),
        dry_run: exec.dry_run,
        resumed,
        rollback,
        change_id,
        window: exec.window.map(|w| w.to_string()),
        steps: checked.playbook.all_steps().len(),
    });
    exec.journal(
        "run_started",
        json!({"run": run_id, "resumed": resumed, "dry_run": exec.dry_run}),
        true,
    );
    for message in exec.environment.as_deref().map(relaxed_checks).unwrap_or_default() {
        exec.notice(message);
    }
    let mut outcome = exec.run(control).await;
    // Connections to hosts close with the run, also when steps were abandoned;
    // what they could not clean up (a command still running) is for a person to see.
    for left in exec.resources.close().await {
        exec.notice(left.clone());
        outcome.attention.push(left);
    }
    outcome.outputs = exec.publish_outputs();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    exec.journal(
        "run_finished",
        json!({"outcome": outcome.outcome, "attention": outcome.attention, "elapsed_ms": elapsed_ms}),
        true,
    );
    exec.emit(EventKind::RunFinished {
        outcome: outcome.outcome,
        elapsed_ms,
        attention: outcome.attention.clone(),
        outputs: outcome.outputs.clone(),
    });
    outcome
}

/// The verifications an environment turns off, announced on every run.
fn relaxed_checks(environment: &Environment) -> Vec<String> {
    let mut found = Vec::new();
    for (name, gateway) in &environment.gateways {
        let tls = match gateway {
            Gateway::Kong(kong) => kong.tls.as_ref(),
            Gateway::Layer7(layer7) => layer7.tls.as_ref(),
        };
        if tls.is_some_and(|t| t.insecure) {
            found.push(format!(
                "TLS verification is OFF for gateway `{}` (tls.insecure in environment `{}`)",
                name.value, environment.name.value
            ));
        }
    }
    let unchecked: Vec<String> = environment
        .hosts_without_host_key_checking()
        .iter()
        .map(|h| format!("`{}`", h.name))
        .collect();
    let default_off = environment
        .ssh
        .strict_host_key_checking
        .as_ref()
        .is_some_and(|s| !s.value);
    // A default turned off matters when some host uses it; with no SSH host at all it is still announced.
    let no_ssh_host = environment.hosts.iter().all(|h| h.transport != Transport::Ssh);
    if !unchecked.is_empty() || (default_off && no_ssh_host) {
        let hosts = if unchecked.is_empty() {
            String::new()
        } else {
            format!(" for {}", unchecked.join(", "))
        };
        found.push(format!(
            "SSH host-key checking is OFF{hosts} (strict_host_key_checking in environment `{}`)",
            environment.name.value
        ));
    }
    found
}

/// What the run keeps while it goes.
#[derive(Default)]
struct Book<'a> {
    /// Writes completed, for rollback.
    completed: Vec<Completed<'a>>,
    /// Checkpoints passed: runtime id and completion sequence.
    checkpoints: Vec<(String, u64)>,
    /// Runtime dependencies: what had to finish before each node.
    deps: HashMap<String, Vec<String>>,
    /// Failures that stopped the run.
    failed: Vec<String>,
    /// What a person must look at.
    attention: Vec<String>,
    /// Steps in flight (for an abort's report).
    in_flight: HashSet<String>,
    /// Dry run: planned changes.
    planned: Vec<PlannedChange>,
    /// Whether a `finally` step failed.
    finally_failed: bool,
    /// Whether an undo outside the main rollback failed or could not be tried
    /// (a tolerated `for_each` item; an unknown write in `rollback RUN`), or a step
    /// failed leaving changes it could not put back.
    item_undo_failed: bool,
}

/// One run of a checked playbook: its settings and everything it keeps while it goes.
struct Exec<'a> {
    /// The playbook, its inputs and its DAG.
    checked: &'a Checked,
    /// Action types by name.
    registry: &'a Registry,
    /// Renders the playbook's templates (shared with `assert`'s evaluators).
    templates: Arc<Templates>,
    /// The environment, if the run has one.
    environment: Option<Arc<Environment>>,
    /// Bounds the actions in flight to the playbook's concurrency.
    semaphore: Semaphore,
    /// Why new steps stopped starting, once they have.
    stop: Mutex<Option<(StopReason, String)>>,
    /// Whether a signal arrived.
    interrupted: AtomicBool,
    /// Signals acted on so far: each watcher sees the count, only a new one acts.
    signals_handled: AtomicU32,
    /// Whether a second signal arrived: steps in flight are cut short.
    aborted: AtomicBool,
    /// The signal count.
    signals: watch::Receiver<u32>,
    /// What the run keeps while it goes.
    book: Mutex<Book<'a>>,
    /// Where records go.
    journal: Mutex<Option<Box<dyn JournalWriter>>>,
    /// Resources actions share during the run.
    resources: Arc<Resources>,
    /// The last completion sequence number handed out.
    seq: AtomicU64,
    /// Secret values to mask.
    masker: Masker,
    /// The scope of the main steps.
    root: Arc<Frame>,
    /// Receive every event.
    observers: Vec<Arc<dyn Observer>>,
    /// The gatekeeper, as actions see it.
    approver: Arc<dyn Approver>,
    /// Answers approval gates and keeps the answers for the journal.
    gatekeeper: Arc<Gatekeeper>,
    /// What an earlier attempt of the run did.
    prior: Prior,
    /// The state each write step of this attempt kept first, by step id: what a retry
    /// of the step in this attempt replaces (an earlier try may have written).
    kept: Mutex<HashMap<String, Value>>,
    /// Change nothing: plan writes, run reads.
    dry_run: bool,
    /// Directory of the playbook.
    base_dir: PathBuf,
    /// Change window, if any.
    window: Option<Window>,
    /// What to do at the window's end.
    window_end: WindowEnd,
    /// Durations of earlier runs.
    history: History,
    /// Run or roll back.
    mode: Mode,
    /// `inputs`, `vars` and `env`, once rendered.
    base: Mutex<Option<Arc<Base>>>,
    /// The scope of the `finally` steps, once they ran (it sees the main steps too).
    finally_frame: Mutex<Option<Arc<Frame>>>,
}

/// Locks a mutex, taking the value of a poisoned one.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The fields of a JSON object (none for anything else).
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl<'a> Exec<'a> {
    /// A run of `checked` set up from `options`, before anything has happened.
    fn new(
        checked: &'a Checked,
        registry: &'a Registry,
        options: RunOptions,
        signals: watch::Receiver<u32>,
    ) -> Exec<'a> {
        let environment = checked
            .environment
            .as_ref()
            .map(|(_, e)| Arc::new(e.clone()));
        let masker = options.masker;
        let templates = Arc::new(Templates::new(Arc::new(RunHost::new(
            environment.as_deref().cloned(),
            masker.clone(),
        ))));
        let inner: Arc<dyn Approver> = if options.dry_run {
            Arc::new(NoApprover)
        } else {
            options.approver
        };
        let gatekeeper = Arc::new(Gatekeeper::new(inner, options.prior.approvals.clone()));
        Exec {
            checked,
            registry,
            templates,
            environment,
            semaphore: Semaphore::new(checked.playbook.concurrency.max(1) as usize),
            stop: Mutex::new(None),
            interrupted: AtomicBool::new(false),
            signals_handled: AtomicU32::new(0),
            aborted: AtomicBool::new(false),
            signals,
            book: Mutex::default(),
            journal: Mutex::new(options.journal),
            resources: Arc::default(),
            seq: AtomicU64::new(0),
            masker,
            root: Frame::new(None, None, OnFail::Propagate, String::new()),
            observers: options.observers,
            approver: Arc::clone(&gatekeeper) as Arc<dyn Approver>,
            gatekeeper,
            prior: options.prior,
            kept: Mutex::default(),
            dry_run: options.dry_run,
            base_dir: options.base_dir,
            window: options.window,
            window_end: options.window_end,
            history: options.history,
            mode: options.mode,
            base: Mutex::new(None),
            finally_frame: Mutex::new(None),
        }
    }

    /// Runs the main steps, rolls back when the stop calls for it, then runs `finally`.
    async fn run(&self, control: Arc<Control>) -> RunResult {
        let base = match self.base_values() {
            Ok(base) => base,
            Err(message) => return self.vars_failed(message),
        };
        *lock(&self.base) = Some(base);
        drop(control);
        let playbook = &self.checked.playbook;
        let main = self.run_scope(
            &playbook.steps,
            MAIN_SCOPE.to_owned(),
            Arc::clone(&self.root),
            String::new(),
        );
        let main_end = self.watch(main).await;
        let stop = lock(&self.stop).clone();
        let reason = stop.as_ref().map(|(reason, _)| *reason);
        let mut undo_complete = true;
        let mut undo_skipped = false;
        if let Some(policy) = self.rollback_wanted(reason)
            && !self.dry_run
        {
            if self.aborted.load(Ordering::Relaxed) {
                undo_skipped = policy != RollbackPolicy::None;
            } else {
                undo_complete = self.watch(self.rollback(policy)).await;
            }
        }
        let paused = self.paused(reason);
        if !paused && !self.aborted.load(Ordering::Relaxed) && self.mode == Mode::Run {
            self.run_finally().await;
        }
        if let Some(journal) = lock(&self.journal).as_mut() {
            let _ = journal.sync();
        }
        let book = lock(&self.book);
        let mut attention = book.attention.clone();
        if self.aborted.load(Ordering::Relaxed) {
            for step in &book.in_flight {
                attention.push(format!(
                    "{step}: aborted while running; its state is unknown"
                ));
            }
            if undo_skipped {
                for done in &book.completed {
                    attention.push(format!(
                        "{}: written and not undone: a second signal aborted the run before its rollback",
                        done.instance.id
                    ));
                }
            }
        }
        let finished = Finished {
            reason,
            paused,
            main_ok: main_end.ok,
            undo_complete: undo_complete && !book.item_undo_failed,
            finally_failed: book.finally_failed,
        };
        RunResult {
            outcome: self.outcome(finished),
            attention,
            stop,
            planned: book.planned.clone(),
            outputs: Map::new(),
        }
    }

    /// Reports a `vars` entry that did not render: nothing runs.
    fn vars_failed(&self, message: String) -> RunResult {
        self.emit(EventKind::StepFailed {
            step: "vars".into(),
            action: "vars".into(),
            error: message.clone(),
            elapsed_ms: 0,
            attempts: 1,
            tolerated: false,
        });
        RunResult {
            outcome: Outcome::Failed,
            attention: Vec::new(),
            stop: Some((StopReason::Failure, message)),
            planned: Vec::new(),
            outputs: Map::new(),
        }
    }

    /// The rollback policy to apply after the main steps, if any.
    fn rollback_wanted(&self, reason: Option<StopReason>) -> Option<RollbackPolicy> {
        let policy = self.checked.playbook.rollback;
        match self.mode {
            Mode::Rollback => Some(RollbackPolicy::All),
            Mode::Run => match reason {
                Some(StopReason::Failure | StopReason::Interrupt) => Some(policy),
                Some(StopReason::WindowEnd) if self.window_end == WindowEnd::Rollback => {
                    Some(policy)
                }
                _ => None,
            },
        }
    }

    /// Whether the run stopped to continue later: at a gate, or at the window's end.
    fn paused(&self, reason: Option<StopReason>) -> bool {
        matches!(reason, Some(StopReason::Approval))
            || (matches!(reason, Some(StopReason::WindowEnd))
                && self.window_end == WindowEnd::Pause)
    }

    /// Runs the `finally` steps in a scope the run's stop does not reach.
    async fn run_finally(&self) {
        let finally = Frame::new(
            Some(Arc::clone(&self.root)),
            None,
            OnFail::Contain,
            "finally.".into(),
        );
        finally.isolate();
        *lock(&self.finally_frame) = Some(Arc::clone(&finally));
        let scope = self.run_scope(
            &self.checked.playbook.finally,
            FINALLY_SCOPE.to_owned(),
            finally,
            String::new(),
        );
        if !self.watch(scope).await.ok {
            lock(&self.book).finally_failed = true;
        }
    }

    /// The run's outcome, from how its parts ended.
    fn outcome(&self, finished: Finished) -> Outcome {
        if !finished.undo_complete {
            // A person must act, whatever stopped the run.
            return Outcome::NeedsAttention;
        }
        if self.interrupted.load(Ordering::Relaxed) {
            return Outcome::Interrupted;
        }
        if finished.paused {
            return Outcome::Paused;
        }
        if self.mode == Mode::Rollback {
            return if finished.undo_complete {
                Outcome::RolledBack
            } else {
                Outcome::NeedsAttention
            };
        }
        match finished.reason {
            None if finished.main_ok && !finished.finally_failed => {
                if self.dry_run {
                    Outcome::Planned
                } else {
                    Outcome::Succeeded
                }
            }
            None => Outcome::Failed,
            Some(StopReason::Attention) => Outcome::NeedsAttention,
            Some(_) if !finished.undo_complete => Outcome::NeedsAttention,
            Some(_) if self.dry_run => Outcome::Failed,
            Some(_) if self.checked.playbook.rollback == RollbackPolicy::None => Outcome::Failed,
            Some(_) => Outcome::RolledBack,
        }
    }

    /// Awaits `work` while watching signals and the window's end.
    async fn watch<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        let mut signals = self.signals.clone();
        let window_end = self.window.filter(|_| !self.dry_run).map(|w| {
            let left = w.end.as_millisecond() - jiff::Timestamp::now().as_millisecond();
            tokio::time::Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(0))
        });
        let mut window_fired = window_end.is_none() || lock(&self.stop).is_some();
        loop {
            let deadline = window_end.unwrap_or_else(tokio::time::Instant::now);
            tokio::select! {
                result = &mut work => return result,
                changed = signals.changed() => {
                    if changed.is_err() {
                        // The control is gone: no more signals can come.
                        return work.await;
                    }
                    let count = *signals.borrow_and_update();
                    self.signalled(count);
                }
                () = tokio::time::sleep_until(deadline), if !window_fired => {
                    window_fired = true;
                    self.stop_run(StopReason::WindowEnd, "the change window ended: no new steps start".into());
                }
            }
        }
    }

    /// Stops the run on the `count`th signal; from the second on, aborts steps in flight.
    fn signalled(&self, count: u32) {
        // The rollback phase watches again and sees the same count: announce it once.
        if self.signals_handled.fetch_max(count, Ordering::Relaxed) >= count {
            return;
        }
        self.interrupted.store(true, Ordering::Relaxed);
        if count >= 2 {
            self.aborted.store(true, Ordering::Relaxed);
            self.stop_run(
                StopReason::Interrupt,
                "second signal: aborting steps in flight".into(),
            );
        } else {
            self.stop_run(
                StopReason::Interrupt,
                "signal received: no new steps start; steps in flight finish, then rollback per policy (signal again to abort)".into(),
            );
        }
    }

    /// Renders `inputs`, `env` and then each of `vars` in order.
    fn base_values(&self) -> Result<Arc<Base>, String> {
        let inputs = Value::Object(self.checked.inputs.clone());
        let env = environment_value(self.environment.as_deref());
        let mut context = json!({"inputs": inputs, "env": env, "vars": {}});
        let mut vars = Map::new();
        for (name, node) in &self.checked.playbook.vars {
            let value = self
                .templates
                .render_value(&node.to_json(), &context)
                .map_err(|e| format!("var `{}`: {e}", name.value))?;
            vars.insert(name.value.clone(), value);
            context["vars"] = Value::Object(vars.clone());
        }
        Ok(Arc::new(Base {
            inputs: to_value(&context["inputs"]),
            vars: to_value(&context["vars"]),
            env: to_value(&context["env"]),
        }))
    }

    /// The rendered `inputs`, `vars` and `env` (empty before they are rendered).
    fn base(&self) -> Arc<Base> {
        lock(&self.base).clone().unwrap_or_else(|| {
            Arc::new(Base {
                inputs: to_value(&json!({})),
                vars: to_value(&json!({})),
                env: to_value(&json!({})),
            })
        })
    }

    /// Sends an event to every observer.
    fn emit(&self, kind: EventKind) {
        let event = Event {
            at: now_rfc3339(),
            kind,
        };
        for observer in &self.observers {
            observer.event(&event);
        }
    }

    /// Appends a masked record to the journal; a journal that cannot be written stops the run.
    /// Appends a record (secrets masked, names kept); false when it could not be written.
    fn journal(&self, kind: &str, fields: Value, sync: bool) -> bool {
        if self.dry_run {
            return true;
        }
        let mut journal = lock(&self.journal);
        let Some(writer) = journal.as_mut() else {
            return true;
        };
        if writer.failed() {
            return false;
        }
        if let Err(error) = writer.append(kind, self.masked_record(fields), sync) {
            drop(journal);
            let message = format!("cannot write the journal: {error}");
            lock(&self.book).attention.push(message.clone());
            self.stop_run(StopReason::Attention, message);
            return false;
        }
        true
    }

    /// A record with secrets masked in its values, except the names that identify
    /// steps and gates (masking those would make resume lose track of them).
    fn masked_record(&self, fields: Value) -> Map<String, Value> {
        const NAMES: [&str; 8] = ["step", "steps", "path", "action", "gate", "run", "item", "checkpoint"];
        let mut record = Map::new();
        for (key, value) in object(fields) {
            if NAMES.contains(&key.as_str()) {
                record.insert(key, value);
                continue;
            }
            let masked = self.masker.value(&value);
            if key == "undo" && masked != value {
                // The undo record held a secret: it cannot be kept, so it cannot be used later.
                record.insert("undo_masked".into(), Value::Bool(true));
                record.insert(key, Value::Null);
                continue;
            }
            record.insert(key, masked);
        }
        record
    }

    /// Stops new steps from starting; the first reason stays (an interrupt is always announced).
    fn stop_run(&self, reason: StopReason, message: String) {
        self.root.stop.store(true, Ordering::Relaxed);
        let mut stop = lock(&self.stop);
        let waiting = matches!(
            stop.as_ref().map(|(r, _)| *r),
            Some(StopReason::Approval | StopReason::WindowEnd)
        );
        if stop.is_none() || (waiting && reason == StopReason::Failure) {
            // A failure while waiting at a gate (or the window's end) still rolls back.
            *stop = Some((reason, message.clone()));
        } else if reason != StopReason::Interrupt {
            return;
        }
        drop(stop);
        self.emit(EventKind::Stopping { reason, message });
    }

    /// A failure travels up until a `for_each` budget absorbs it or it stops the run.
    fn escalate(&self, frame: &Frame, step: &str) {
        frame.stop.store(true, Ordering::Relaxed);
        match &frame.on_fail {
            OnFail::Contain => {}
            OnFail::Item(budget) => {
                let failures = budget.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures > budget.max {
                    budget.exceeded.store(true, Ordering::Relaxed);
                    if let Some(parent) = &frame.parent {
                        self.escalate(parent, step);
                    }
                }
            }
            OnFail::Propagate => match &frame.parent {
                Some(parent) => self.escalate(parent, step),
                None => {
                    lock(&self.book).failed.push(step.to_owned());
                    self.stop_run(StopReason::Failure, format!("step `{step}` failed"));
                }
            },
        }
    }

    /// Whether no new step may start in `frame`.
    fn stopped(&self, frame: &Frame) -> bool {
        frame.stopped() || self.aborted.load(Ordering::Relaxed)
    }

    /// The next completion sequence number: the order steps finished in, for rollback.
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// How the parts of a run ended, from which its outcome follows.
struct Finished {
    /// Why new steps stopped starting, if they did.
    reason: Option<StopReason>,
    /// Whether the run stopped to continue later.
    paused: bool,
    /// Whether every main step ended well.
    main_ok: bool,
    /// Whether every undo the rollback tried succeeded.
    undo_complete: bool,
    /// Whether a `finally` step failed.
    finally_failed: bool,
}
