//! The executor: runs a checked playbook's DAG with bounded concurrency,
//! `for_each` batches, retries, polling and timeouts; journals every step;
//! stops on failure, signal or window end; rolls back; then runs `finally`.
//!
//! It emits [`Event`]s and never prints. Dry runs call each write action's
//! `plan` instead of `apply`, and run reads for real through transports that
//! refuse writes.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::cmp::Reverse;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, watch};

use super::context::{Base, Frame, ItemBudget, OnFail, Recorded, RunHost, StepScope, to_value};
use super::event::{Event, EventKind, Observer, Outcome, StopReason, now_rfc3339};
use super::journal::{Journal, Record};
use super::mask::{Masker, mask_all};
use super::window::{History, Window};
use crate::action::{
    Action, ActionError, Applied, Approver, Change, Decision, EffectKind, Evaluate, Probe, Resources,
    StepContext, StepTarget, TargetKind,
};
use crate::check::Checked;
use crate::dag::{FINALLY_SCOPE, MAIN_SCOPE};
use crate::model::{
    Environment, Gateway, RollbackPolicy, Setting, Step, StepKind, StepRollback, Target,
    TemplateText, is_templated,
};
use crate::plan::{KNOWN_AFTER_APPLY, environment_value, item_label};
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

    fn subscribe(&self) -> watch::Receiver<u32> {
        self.signals.subscribe()
    }
}

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
    pub journal: Option<Journal>,
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
    let environment = checked.environment.as_ref().map(|(_, e)| Arc::new(e.clone()));
    let masker = options.masker.clone();
    let templates = Templates::new(Arc::new(RunHost::new(
        environment.as_deref().cloned(),
        masker.clone(),
    )));
    let signals = control.subscribe();
    let gatekeeper = Arc::new(Gatekeeper {
        inner: if options.dry_run { Arc::new(crate::action::NoApprover) } else { options.approver },
        earlier: options.prior.approvals.clone(),
        answered: Mutex::default(),
    });
    let exec = Exec {
        checked,
        registry,
        templates,
        environment,
        semaphore: Semaphore::new(checked.playbook.concurrency.max(1) as usize),
        stop: Mutex::new(None),
        interrupted: AtomicBool::new(false),
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
        dry_run: options.dry_run,
        base_dir: options.base_dir,
        window: options.window,
        window_end: options.window_end,
        history: options.history,
        mode: options.mode,
        base: Mutex::new(None),
    };
    exec.emit(EventKind::RunStarted {
        run: options.run_id.clone(),
        playbook: checked.playbook.name.value.clone(),
        environment: exec.environment.as_ref().map(|e| e.name.value.clone()),
        dry_run: exec.dry_run,
        resumed: options.resumed,
        change_id: options.change_id.clone(),
        window: exec.window.map(|w| w.to_string()),
        steps: checked.playbook.all_steps().len(),
    });
    exec.journal(
        "run_started",
        json!({"run": options.run_id, "resumed": options.resumed, "dry_run": exec.dry_run}),
        true,
    );
    let outcome = exec.run(control).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    exec.journal(
        "run_finished",
        json!({"outcome": outcome.outcome, "attention": outcome.attention}),
        true,
    );
    exec.emit(EventKind::RunFinished {
        outcome: outcome.outcome,
        elapsed_ms,
        attention: outcome.attention.clone(),
    });
    outcome
}

/// A write step that completed, kept for rollback.
struct Completed<'a> {
    seq: u64,
    id: String,
    action: Arc<dyn Action>,
    arguments: Value,
    undo: Option<Value>,
    step: &'a Step,
    siblings: &'a [Step],
    frame: Arc<Frame>,
    context: StepContext,
}

/// What the run keeps while it goes.
#[derive(Default)]
struct Book<'a> {
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
}

struct Exec<'a> {
    checked: &'a Checked,
    registry: &'a Registry,
    templates: Templates,
    environment: Option<Arc<Environment>>,
    semaphore: Semaphore,
    stop: Mutex<Option<(StopReason, String)>>,
    interrupted: AtomicBool,
    aborted: AtomicBool,
    signals: watch::Receiver<u32>,
    book: Mutex<Book<'a>>,
    journal: Mutex<Option<Journal>>,
    resources: Arc<Resources>,
    seq: AtomicU64,
    masker: Masker,
    root: Arc<Frame>,
    observers: Vec<Arc<dyn Observer>>,
    approver: Arc<dyn Approver>,
    gatekeeper: Arc<Gatekeeper>,
    prior: Prior,
    dry_run: bool,
    base_dir: PathBuf,
    window: Option<Window>,
    window_end: WindowEnd,
    history: History,
    mode: Mode,
    base: Mutex<Option<Arc<Base>>>,
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Succeeded,
    Skipped,
    Failed { tolerated: bool },
    NotRun,
}

impl End {
    fn lets_dependents_run(self) -> bool {
        matches!(
            self,
            End::Succeeded | End::Skipped | End::Failed { tolerated: true }
        )
    }
}

/// How a scope ended: whether every step did, and the runtime ids it started.
struct ScopeEnd {
    ok: bool,
    ids: Vec<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl<'a> Exec<'a> {
    async fn run(&self, control: Arc<Control>) -> RunResult {
        let base = match self.base_values() {
            Ok(base) => base,
            Err(message) => {
                self.emit(EventKind::StepFailed {
                    step: "vars".into(),
                    action: "vars".into(),
                    error: message.clone(),
                    elapsed_ms: 0,
                    attempts: 1,
                    tolerated: false,
                });
                return RunResult {
                    outcome: Outcome::Failed,
                    attention: Vec::new(),
                    stop: Some((StopReason::Failure, message)),
                    planned: Vec::new(),
                };
            }
        };
        *lock(&self.base) = Some(base);
        drop(control);
        let playbook = &self.checked.playbook;
        let main = self.run_scope(&playbook.steps, MAIN_SCOPE.to_owned(), Arc::clone(&self.root), String::new());
        let main_end = self.watch(main).await;
        let stop = lock(&self.stop).clone();
        let mut undo_complete = true;
        let rollback_wanted = match self.mode {
            Mode::Rollback => Some(RollbackPolicy::All),
            Mode::Run => match stop.as_ref().map(|(r, _)| *r) {
                Some(StopReason::Failure | StopReason::Interrupt) => Some(playbook.rollback),
                Some(StopReason::WindowEnd) if self.window_end == WindowEnd::Rollback => {
                    Some(playbook.rollback)
                }
                _ => None,
            },
        };
        if let Some(policy) = rollback_wanted
            && !self.dry_run
            && !self.aborted.load(Ordering::Relaxed)
        {
            undo_complete = self.watch(self.rollback(policy)).await;
        }
        let paused = matches!(
            stop.as_ref().map(|(r, _)| *r),
            Some(StopReason::Approval)
        ) || (matches!(stop.as_ref().map(|(r, _)| *r), Some(StopReason::WindowEnd))
            && self.window_end == WindowEnd::Pause);
        if !paused && !self.aborted.load(Ordering::Relaxed) && self.mode == Mode::Run {
            let finally = Frame::new(Some(Arc::clone(&self.root)), None, OnFail::Contain, "finally.".into());
            finally.isolate();
            let end = self.watch(self.run_scope(&playbook.finally, FINALLY_SCOPE.to_owned(), finally, String::new())).await;
            if !end.ok {
                lock(&self.book).finally_failed = true;
            }
        }
        if let Some(journal) = lock(&self.journal).as_mut() {
            let _ = journal.sync();
        }
        let book = lock(&self.book);
        let mut attention = book.attention.clone();
        if self.aborted.load(Ordering::Relaxed) {
            for step in &book.in_flight {
                attention.push(format!("{step}: aborted while running; its state is unknown"));
            }
        }
        let outcome = if self.interrupted.load(Ordering::Relaxed) {
            Outcome::Interrupted
        } else if paused {
            Outcome::Paused
        } else if self.mode == Mode::Rollback {
            if undo_complete { Outcome::RolledBack } else { Outcome::NeedsAttention }
        } else {
            match stop.as_ref().map(|(r, _)| *r) {
                None if main_end.ok && !book.finally_failed => {
                    if self.dry_run { Outcome::Planned } else { Outcome::Succeeded }
                }
                None => Outcome::Failed,
                Some(StopReason::Attention) => Outcome::NeedsAttention,
                Some(_) if !undo_complete => Outcome::NeedsAttention,
                Some(_) if self.dry_run => Outcome::Failed,
                Some(_) if playbook.rollback == RollbackPolicy::None => Outcome::Failed,
                Some(_) => Outcome::RolledBack,
            }
        };
        RunResult {
            outcome,
            attention,
            stop,
            planned: book.planned.clone(),
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
                    self.interrupted.store(true, Ordering::Relaxed);
                    if count >= 2 {
                        self.aborted.store(true, Ordering::Relaxed);
                        self.stop_run(StopReason::Interrupt, "second signal: aborting steps in flight".into());
                    } else {
                        self.stop_run(StopReason::Interrupt, "signal received: no new steps start; steps in flight finish, then rollback per policy (signal again to abort)".into());
                    }
                }
                () = tokio::time::sleep_until(deadline), if !window_fired => {
                    window_fired = true;
                    self.stop_run(StopReason::WindowEnd, "the change window ended: no new steps start".into());
                }
            }
        }
    }

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

    fn base(&self) -> Arc<Base> {
        lock(&self.base).clone().unwrap_or_else(|| {
            Arc::new(Base {
                inputs: to_value(&json!({})),
                vars: to_value(&json!({})),
                env: to_value(&json!({})),
            })
        })
    }

    fn emit(&self, kind: EventKind) {
        let event = Event {
            at: now_rfc3339(),
            kind,
        };
        for observer in &self.observers {
            observer.event(&event);
        }
    }

    fn journal(&self, kind: &str, fields: Value, sync: bool) {
        if self.dry_run {
            return;
        }
        let mut journal = lock(&self.journal);
        let Some(writer) = journal.as_mut() else {
            return;
        };
        if let Err(error) = writer.append(kind, object(self.masker.value(&fields)), sync) {
            drop(journal);
            let message = format!("cannot write the journal: {error}");
            lock(&self.book).attention.push(message.clone());
            self.stop_run(StopReason::Attention, message);
        }
    }

    fn stop_run(&self, reason: StopReason, message: String) {
        self.root.stop.store(true, Ordering::Relaxed);
        let mut stop = lock(&self.stop);
        if stop.is_none() {
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

    fn stopped(&self, frame: &Frame) -> bool {
        frame.stopped() || self.aborted.load(Ordering::Relaxed)
    }

    fn run_scope<'s>(
        &'s self,
        steps: &'a [Step],
        scope: String,
        frame: Arc<Frame>,
        entry: String,
    ) -> BoxFuture<'s, ScopeEnd> {
        Box::pin(async move {
            let Some(graph) = self.checked.dag.scope(&scope) else {
                return ScopeEnd { ok: true, ids: Vec::new() };
            };
            let n = steps.len();
            let order = graph.order();
            let mut rank = vec![0; n];
            for (position, &index) in order.iter().enumerate() {
                rank[index] = position;
            }
            let mut remaining = vec![0usize; n];
            let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
            for i in 0..n {
                for dependency in graph.dependencies(i) {
                    remaining[i] += 1;
                    dependents[dependency].push(i);
                }
            }
            let mut ready: BinaryHeap<Reverse<(usize, usize)>> = (0..n)
                .filter(|&i| remaining[i] == 0)
                .map(|i| Reverse((rank[i], i)))
                .collect();
            let mut ends: Vec<Option<End>> = vec![None; n];
            let mut running = FuturesUnordered::new();
            let mut ids = Vec::with_capacity(n);
            let mut ok = true;
            let rollback_only = rollback_only_steps(steps);
            loop {
                while let Some(Reverse((_, i))) = ready.pop() {
                    let step = &steps[i];
                    let id = format!("{}{}", frame.prefix, step.id.value);
                    if rollback_only.contains(step.id.value.as_str()) {
                        frame.record(&step.id.value, Recorded::Empty("skipped"));
                        self.emit(EventKind::StepSkipped {
                            step: id,
                            reason: "a rollback step: it runs only to undo another step".into(),
                        });
                        self.finish(i, End::Skipped, &mut ends, &dependents, &mut remaining, &mut ready, &rank, steps, &frame);
                        continue;
                    }
                    if self.stopped(&frame) {
                        frame.record(&step.id.value, Recorded::Empty("not_run"));
                        self.emit(EventKind::StepSkipped {
                            step: id,
                            reason: "not started: the run is stopping".into(),
                        });
                        ends[i] = Some(End::NotRun);
                        continue;
                    }
                    let deps: Vec<String> = graph
                        .dependencies(i)
                        .map(|d| node_id(&frame.prefix, &steps[d]))
                        .collect();
                    let deps = if deps.is_empty() { vec![entry.clone()] } else { deps };
                    lock(&self.book).deps.insert(id.clone(), deps);
                    ids.push(id.clone());
                    let frame = Arc::clone(&frame);
                    running.push(async move {
                        let end = self.run_step(step, steps, id, frame).await;
                        (i, end)
                    });
                }
                let Some((i, end)) = running.next().await else {
                    break;
                };
                if matches!(end, End::Failed { tolerated: false } | End::NotRun) {
                    ok = false;
                }
                self.finish(i, end, &mut ends, &dependents, &mut remaining, &mut ready, &rank, steps, &frame);
            }
            if ends.iter().any(|e| matches!(e, None | Some(End::NotRun))) {
                ok = false;
            }
            ScopeEnd { ok, ids }
        })
    }

    #[expect(clippy::too_many_arguments, reason = "the scheduler's state, kept in one loop")]
    fn finish(
        &self,
        i: usize,
        end: End,
        ends: &mut [Option<End>],
        dependents: &[Vec<usize>],
        remaining: &mut [usize],
        ready: &mut BinaryHeap<Reverse<(usize, usize)>>,
        rank: &[usize],
        steps: &'a [Step],
        frame: &Frame,
    ) {
        ends[i] = Some(end);
        if end.lets_dependents_run() {
            for &dependent in &dependents[i] {
                remaining[dependent] -= 1;
                if remaining[dependent] == 0 {
                    ready.push(Reverse((rank[dependent], dependent)));
                }
            }
            return;
        }
        // Dependents of a step that did not succeed never start.
        let mut blocked = dependents[i].clone();
        while let Some(dependent) = blocked.pop() {
            if ends[dependent].is_some() {
                continue;
            }
            ends[dependent] = Some(End::NotRun);
            let step = &steps[dependent];
            frame.record(&step.id.value, Recorded::Empty("not_run"));
            self.emit(EventKind::StepSkipped {
                step: format!("{}{}", frame.prefix, step.id.value),
                reason: format!("not started: it needs `{}`, which did not succeed", steps[i].id.value),
            });
            blocked.extend(dependents[dependent].iter().copied());
        }
    }

    async fn run_step(&self, step: &'a Step, siblings: &'a [Step], id: String, frame: Arc<Frame>) -> End {
        match &step.kind {
            StepKind::Action { action, with } => {
                self.run_action(step, siblings, &action.value, with.as_ref(), id, frame, false).await
            }
            StepKind::Group { steps } => self.run_group(step, steps, id, frame).await,
            StepKind::ForEach { items, as_name, batch, max_failures, steps } => {
                self.run_for_each(step, items, &as_name.value, batch.as_ref(), max_failures.as_ref(), steps, id, frame).await
            }
        }
    }

    fn scope_of(&self, frame: &Arc<Frame>, host: Option<Value>) -> StepScope {
        StepScope::new(self.base(), Arc::clone(frame), host)
    }

    fn render(&self, text: &str, scope: &StepScope) -> Result<Value, String> {
        let context = minijinja::Value::from_object(scope.clone_shallow());
        self.templates
            .render_in(text, &context)
            .map_err(|e| e.to_string())
    }

    fn render_json(&self, value: &Value, scope: &StepScope) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) if is_templated(text) => self.render(text, scope)?,
            Value::Array(items) => Value::Array(
                items.iter().map(|v| self.render_json(v, scope)).collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_json(v, scope)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    fn render_bool(&self, text: &TemplateText, scope: &StepScope) -> Result<bool, String> {
        let value = if text.is_templated() {
            self.render(&text.source, scope)?
        } else {
            Value::String(text.source.clone())
        };
        Ok(truthy(&value))
    }

    fn setting<T: serde::de::DeserializeOwned + Clone>(
        &self,
        setting: Option<&Setting<T>>,
        scope: &StepScope,
        what: &str,
    ) -> Result<Option<T>, String> {
        match setting {
            None => Ok(None),
            Some(Setting::Literal(value)) => Ok(Some(value.value.clone())),
            Some(Setting::Template(text)) => {
                let value = self.render(&text.source, scope)?;
                let value = match value {
                    Value::String(s) => serde_json::from_value(Value::String(s.clone()))
                        .or_else(|_| serde_json::from_str(&s)),
                    other => serde_json::from_value(other),
                };
                value.map(Some).map_err(|e| format!("`{what}`: {e}"))
            }
        }
    }

    fn skip(&self, frame: &Frame, step: &Step, id: String, reason: String) -> End {
        frame.record(&step.id.value, Recorded::Empty("skipped"));
        self.journal("step_skipped", json!({"step": id, "reason": reason}), false);
        self.emit(EventKind::StepSkipped { step: id, reason });
        End::Skipped
    }

    fn fail(&self, frame: &Frame, step: &Step, id: &str, action: &str, error: String, elapsed: Duration, attempts: u32) -> End {
        let tolerated = step.continue_on_error;
        let error = self.masker.text(&error);
        frame.record(&step.id.value, Recorded::Empty("failed"));
        self.journal(
            "step_failed",
            json!({"step": id, "path": step.path, "action": action, "error": error}),
            true,
        );
        self.emit(EventKind::StepFailed {
            step: id.to_owned(),
            action: action.to_owned(),
            error,
            elapsed_ms: elapsed.as_millis() as u64,
            attempts,
            tolerated,
        });
        if !tolerated {
            self.escalate(frame, id);
        }
        End::Failed { tolerated }
    }

    /// Resolves `on:` and the action's target kind into the step's target and `host` value.
    fn target(
        &self,
        step: &Step,
        action: &dyn Action,
        scope: &StepScope,
    ) -> Result<(StepTarget, Option<Value>), String> {
        let kind = action.spec().target;
        let on = match &step.on {
            None => None,
            Some(text) if text.is_templated() => Some(self.render(&text.source, scope)?),
            Some(text) => Some(Value::String(text.source.clone())),
        };
        let name = match &on {
            None => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(Value::Object(map)) => map.get("name").and_then(Value::as_str).map(str::to_owned),
            Some(other) => return Err(format!("`on:` is {other}; expected a host, or a host or gateway name")),
        };
        let environment = self.environment.as_deref();
        match kind {
            TargetKind::None => Ok((StepTarget::None, None)),
            TargetKind::Host => {
                let name = match name {
                    Some(name) => name,
                    None => match scope_host(scope) {
                        Some(name) => name,
                        None => return Err("this action runs on a host: set `on:` to a host of the environment".into()),
                    },
                };
                let host = environment
                    .and_then(|e| e.hosts.iter().find(|h| h.name == name))
                    .ok_or_else(|| format!("`on:` names `{name}`, which is not a host of the environment"))?;
                let value = serde_json::to_value(host).map_err(|e| e.to_string())?;
                Ok((StepTarget::Host(host.clone()), Some(value)))
            }
            TargetKind::Gateway(kind) => {
                let environment = environment.ok_or("this action needs a gateway: run with --env")?;
                let name = match name {
                    Some(name) => name,
                    None => {
                        let of_kind: Vec<&str> = environment
                            .gateways
                            .iter()
                            .filter(|(_, g)| g.kind() == kind)
                            .map(|(n, _)| n.value.as_str())
                            .collect();
                        match of_kind.as_slice() {
                            [only] => (*only).to_owned(),
                            [] => return Err(format!("environment `{}` has no {kind} gateway", environment.name.value)),
                            many => return Err(format!("environment `{}` has several {kind} gateways ({}): set `on:`", environment.name.value, many.join(", "))),
                        }
                    }
                };
                match environment.target(&name) {
                    Some(Target::Gateway(gateway)) if gateway_kind(gateway) == kind => Ok((StepTarget::Gateway(name), None)),
                    _ => Err(format!("`on:` names `{name}`, which is not a {kind} gateway of the environment")),
                }
            }
        }
    }

    fn step_context(&self, id: &str, step: &Step, target: StepTarget, timeout: Option<Duration>, evaluator: Arc<dyn Evaluate>) -> StepContext {
        let _ = step;
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
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one step's whole situation")]
    async fn run_action(
        &self,
        step: &'a Step,
        siblings: &'a [Step],
        action_name: &str,
        with: Option<&'a crate::node::Node>,
        id: String,
        frame: Arc<Frame>,
        undoing: bool,
    ) -> End {
        let started = Instant::now();
        let Some(action) = self.registry.get(action_name).cloned() else {
            return self.fail(&frame, step, &id, action_name, format!("unknown action `{action_name}`"), started.elapsed(), 0);
        };
        let mut scope = self.scope_of(&frame, None);
        if !undoing && let Some(prior) = self.prior.done.get(&id) {
            return self.restore(step, siblings, &id, &action, with, &frame, &scope, prior.clone());
        }
        if !undoing && self.mode == Mode::Rollback {
            frame.record(&step.id.value, Recorded::Empty("not_run"));
            return End::NotRun;
        }
        if let Some(when) = &step.when {
            match self.render_bool(when, &scope) {
                Ok(true) => {}
                Ok(false) => return self.skip(&frame, step, id, format!("`when: {}` is false", when.source)),
                Err(_) if self.dry_run && scope.saw_unknown.load(Ordering::Relaxed) => {}
                Err(e) => return self.fail(&frame, step, &id, action_name, format!("`when`: {e}"), started.elapsed(), 0),
            }
        }
        let (target, host) = match self.target(step, action.as_ref(), &scope) {
            Ok(found) => found,
            Err(e) => return self.fail(&frame, step, &id, action_name, e, started.elapsed(), 0),
        };
        if let Some(host) = &host {
            scope = scope.with_host(host);
        }
        let arguments = match with.map(|w| self.render_json(&w.to_json(), &scope)) {
            None => json!({}),
            Some(Ok(arguments)) => arguments,
            Some(Err(_)) if self.dry_run && scope.saw_unknown.load(Ordering::Relaxed) => Value::String(KNOWN_AFTER_APPLY.into()),
            Some(Err(e)) => return self.fail(&frame, step, &id, action_name, format!("arguments: {e}"), started.elapsed(), 0),
        };
        let effect = action.effect_for(&arguments);
        let write = effect.kind != EffectKind::Read;
        let settings = (|| -> Result<_, String> {
            Ok((
                self.setting(step.timeout.as_ref(), &scope, "timeout")?.map(|d| d.0),
                self.setting(step.retries.as_ref(), &scope, "retries")?.unwrap_or(0),
                self.setting(step.retry_delay.as_ref(), &scope, "retry_delay")?.map_or(DEFAULT_RETRY_DELAY, |d| d.0),
            ))
        })();
        let (timeout, retries, retry_delay) = match settings {
            Ok(settings) => settings,
            Err(e) => return self.fail(&frame, step, &id, action_name, e, started.elapsed(), 0),
        };
        let evaluator: Arc<dyn Evaluate> = Arc::new(ScopeEvaluator {
            templates: Templates::new(Arc::new(RunHost::new(self.environment.as_deref().cloned(), self.masker.clone()))),
            scope: scope.clone_shallow(),
        });
        let context = self.step_context(&id, step, target, timeout, evaluator);
        if self.dry_run {
            return self.plan_step(step, &id, &action, arguments, write, &context, &frame, started).await;
        }
        if write && !undoing && let Err(reason) = self.window_admits(step) {
            frame.record(&step.id.value, Recorded::Empty("not_run"));
            self.emit(EventKind::StepSkipped { step: id.clone(), reason: reason.clone() });
            self.stop_run(StopReason::WindowEnd, reason);
            return End::NotRun;
        }
        let mut probed: Option<Applied> = None;
        if write && self.prior.in_doubt.contains(&id) {
            if effect.idempotent {
                self.notice(format!("{id}: started before the interruption with no end recorded; it is idempotent, so it runs again"));
            } else {
                match action.probe(&context, arguments.clone()).await {
                    Ok(Probe::Done(applied)) => {
                        self.notice(format!("{id}: started before the interruption; its probe found it done"));
                        probed = Some(applied);
                    }
                    Ok(Probe::NotDone) => self.notice(format!("{id}: started before the interruption; its probe found it not done, so it runs again")),
                    Ok(Probe::Unknown(why)) | Err(ActionError::Failed { message: why }) => {
                        let message = format!("{id}: started before the interruption with no end recorded; it is not idempotent and its state cannot be told ({why}): check it by hand");
                        lock(&self.book).attention.push(message.clone());
                        self.stop_run(StopReason::Attention, message.clone());
                        frame.record(&step.id.value, Recorded::Empty("not_run"));
                        return End::NotRun;
                    }
                    Err(other) => return self.fail(&frame, step, &id, action_name, other.to_string(), started.elapsed(), 0),
                }
            }
        }
        let masked_arguments = self.masker.value(&arguments);
        if write {
            self.journal("step_started", json!({"step": id, "path": step.path, "action": action_name, "arguments": masked_arguments}), true);
        }
        let permit = self.semaphore.acquire().await;
        lock(&self.book).in_flight.insert(id.clone());
        let result = match probed {
            Some(applied) => Ok((applied, 1)),
            None => self.attempts(step, &id, &action, &arguments, write, &context, &scope, timeout, retries, retry_delay).await,
        };
        lock(&self.book).in_flight.remove(&id);
        drop(permit);
        self.record_decisions();
        let elapsed = started.elapsed();
        match result {
            Ok((applied, attempts)) => {
                self.succeed(step, siblings, &id, &action, arguments, masked_arguments, write, applied, &frame, elapsed, attempts, context);
                End::Succeeded
            }
            Err((ActionError::Paused { gate, prompt }, _)) => {
                frame.record(&step.id.value, Recorded::Empty("paused"));
                self.journal("paused", json!({"step": id, "gate": gate}), true);
                self.emit(EventKind::Paused { step: id.clone(), gate: gate.clone(), prompt });
                self.stop_run(StopReason::Approval, format!("waiting for approval at gate `{gate}`: runsheet resume RUN --approve {gate}"));
                End::NotRun
            }
            Err((error, attempts)) => {
                self.fail(&frame, step, &id, action_name, error.to_string(), elapsed, attempts)
            }
        }
    }

    /// Journals and announces the gates answered since the last call.
    fn record_decisions(&self) {
        for (gate, decision) in self.gatekeeper.take() {
            let (by, approved) = match decision {
                Decision::Approved(by) => (by, true),
                Decision::Refused(by) => (by, false),
                Decision::Pending => continue,
            };
            self.journal("approval", json!({"gate": gate, "by": by, "approved": approved}), true);
            self.emit(EventKind::Approval { gate, by, approved });
        }
    }

    fn notice(&self, message: String) {
        self.journal("notice", json!({"message": message}), false);
        self.emit(EventKind::Notice { message });
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

    #[expect(clippy::too_many_arguments, reason = "one attempt loop's whole situation")]
    async fn attempts(
        &self,
        step: &Step,
        id: &str,
        action: &Arc<dyn Action>,
        arguments: &Value,
        write: bool,
        context: &StepContext,
        scope: &StepScope,
        timeout: Option<Duration>,
        retries: u32,
        retry_delay: Duration,
    ) -> Result<(Applied, u32), (ActionError, u32)> {
        let mut delay = retry_delay;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.emit(EventKind::StepStarted {
                step: id.to_owned(),
                action: action.spec().name.to_owned(),
                write,
                attempt,
            });
            let result = match &step.until {
                Some(until) => self.poll(action, arguments, context, scope, until, timeout, retry_delay).await,
                None => self.attempt(action, arguments, context, timeout).await,
            };
            match result {
                Ok(applied) => return Ok((applied, attempt)),
                Err(error) if attempt <= retries && retryable(&error) && !self.aborted.load(Ordering::Relaxed) => {
                    self.emit(EventKind::StepRetrying {
                        step: id.to_owned(),
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
    async fn attempt(&self, action: &Arc<dyn Action>, arguments: &Value, context: &StepContext, timeout: Option<Duration>) -> Result<Applied, ActionError> {
        let apply = action.apply(context, arguments.clone());
        let bounded = async {
            match timeout {
                Some(limit) => tokio::time::timeout(limit, apply).await.unwrap_or_else(|_| {
                    Err(ActionError::failed(format!("timed out after {}", human(limit))))
                }),
                None => apply.await,
            }
        };
        tokio::select! {
            result = bounded => result,
            () = self.abort_signal() => Err(ActionError::failed("aborted by a second signal")),
        }
    }

    /// Applies until `until` holds, within the timeout.
    #[expect(clippy::too_many_arguments, reason = "one polling loop's whole situation")]
    async fn poll(
        &self,
        action: &Arc<dyn Action>,
        arguments: &Value,
        context: &StepContext,
        scope: &StepScope,
        until: &TemplateText,
        timeout: Option<Duration>,
        interval: Duration,
    ) -> Result<Applied, ActionError> {
        let limit = timeout.unwrap_or(DEFAULT_UNTIL_TIMEOUT);
        let deadline = tokio::time::Instant::now() + limit;
        let mut polls = 0;
        loop {
            polls += 1;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let applied = self.attempt(action, arguments, context, Some(left.max(Duration::from_millis(1)))).await?;
            let result = Value::Object(applied.outputs.clone());
            let holds = self
                .render_bool(until, &scope.with_result(&result))
                .map_err(|e| ActionError::failed(format!("`until`: {e}")))?;
            if holds {
                return Ok(applied);
            }
            if tokio::time::Instant::now() + interval > deadline {
                let shown = self.masker.text(&compact(&result));
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
    async fn abort_signal(&self) {
        let mut signals = self.signals.clone();
        if signals.wait_for(|n| *n >= 2).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    #[expect(clippy::too_many_arguments, reason = "everything a finished step leaves behind")]
    fn succeed(
        &self,
        step: &'a Step,
        siblings: &'a [Step],
        id: &str,
        action: &Arc<dyn Action>,
        arguments: Value,
        masked_arguments: Value,
        write: bool,
        applied: Applied,
        frame: &Arc<Frame>,
        elapsed: Duration,
        attempts: u32,
        context: StepContext,
    ) {
        let outputs = Value::Object(applied.outputs);
        if step.sensitive {
            self.masker.add_value(&outputs);
        }
        let shown = if step.sensitive { mask_all(&outputs) } else { self.masker.value(&outputs) };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let elapsed_ms = elapsed.as_millis() as u64;
        self.journal(
            "step_succeeded",
            json!({
                "step": id,
                "path": step.path,
                "action": action.spec().name,
                "write": write,
                "elapsed_ms": elapsed_ms,
                "arguments": masked_arguments,
                "outputs": shown,
                "masked": step.sensitive,
                "undo": applied.undo,
            }),
            write,
        );
        frame.record(&step.id.value, Recorded::Done(outputs));
        let mut book = lock(&self.book);
        if write {
            book.completed.push(Completed {
                seq,
                id: id.to_owned(),
                action: Arc::clone(action),
                arguments,
                undo: applied.undo,
                step,
                siblings,
                frame: Arc::clone(frame),
                context,
            });
        }
        if step.checkpoint {
            book.checkpoints.push((id.to_owned(), seq));
        }
        drop(book);
        self.emit(EventKind::StepSucceeded {
            step: id.to_owned(),
            action: action.spec().name.to_owned(),
            write,
            elapsed_ms,
            attempts,
            outputs: shown,
            change: applied.change.map(|c| self.mask_change(c)),
        });
    }

    fn mask_change(&self, change: Change) -> Change {
        Change {
            changes: change.changes,
            summary: self.masker.text(&change.summary),
            before: change.before.map(|b| self.masker.text(&b)),
            after: change.after.map(|a| self.masker.text(&a)),
        }
    }

    /// A step done by an earlier attempt: outputs back, kept for rollback, not run.
    #[expect(clippy::too_many_arguments, reason = "everything a restored step needs")]
    fn restore(
        &self,
        step: &'a Step,
        siblings: &'a [Step],
        id: &str,
        action: &Arc<dyn Action>,
        with: Option<&'a crate::node::Node>,
        frame: &Arc<Frame>,
        scope: &StepScope,
        prior: PriorStep,
    ) -> End {
        let outputs = if prior.masked { json!({}) } else { prior.outputs };
        frame.record(&step.id.value, Recorded::Done(outputs));
        let arguments = with
            .map(|w| self.render_json(&w.to_json(), scope))
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_else(|| json!({}));
        let write = action.effect_for(&arguments).kind != EffectKind::Read;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let target = self
            .target(step, action.as_ref(), scope)
            .map(|(t, _)| t)
            .unwrap_or_default();
        let context = self.step_context(id, step, target, None, Arc::new(crate::action::NoEvaluator));
        let mut book = lock(&self.book);
        if write {
            book.completed.push(Completed {
                seq,
                id: id.to_owned(),
                action: Arc::clone(action),
                arguments,
                undo: prior.undo,
                step,
                siblings,
                frame: Arc::clone(frame),
                context,
            });
        }
        if step.checkpoint {
            book.checkpoints.push((id.to_owned(), seq));
        }
        drop(book);
        self.emit(EventKind::StepRestored { step: id.to_owned() });
        End::Succeeded
    }

    #[expect(clippy::too_many_arguments, reason = "one planned step's whole situation")]
    async fn plan_step(
        &self,
        step: &Step,
        id: &str,
        action: &Arc<dyn Action>,
        arguments: Value,
        write: bool,
        context: &StepContext,
        frame: &Arc<Frame>,
        started: Instant,
    ) -> End {
        let unknown = contains_unknown(&arguments);
        if !write && !unknown {
            let scope = self.scope_of(frame, None);
            return match self.attempts(step, id, action, &arguments, false, context, &scope, context.timeout, 0, DEFAULT_RETRY_DELAY).await {
                Ok((applied, attempts)) => {
                    let outputs = Value::Object(applied.outputs);
                    let shown = if step.sensitive { mask_all(&outputs) } else { self.masker.value(&outputs) };
                    frame.record(&step.id.value, Recorded::Done(outputs));
                    self.emit(EventKind::StepSucceeded {
                        step: id.to_owned(),
                        action: action.spec().name.to_owned(),
                        write: false,
                        elapsed_ms: started.elapsed().as_millis() as u64,
                        attempts,
                        outputs: shown,
                        change: None,
                    });
                    End::Succeeded
                }
                Err((ActionError::Paused { gate, .. }, _)) => {
                    frame.record(&step.id.value, Recorded::Unknown);
                    let change = Change::unknown(format!("approval gate `{gate}`: the real run waits here"));
                    self.planned(id, action, false, change);
                    End::Succeeded
                }
                Err((error @ ActionError::NotAvailable { .. }, _)) => {
                    // Plan what can be planned; the real run fails here.
                    frame.record(&step.id.value, Recorded::Unknown);
                    self.planned(id, action, false, Change::unknown(format!("cannot read: {error}")));
                    End::Succeeded
                }
                Err((error, attempts)) => self.fail(frame, step, id, action.spec().name, error.to_string(), started.elapsed(), attempts),
            };
        }
        let change = if unknown {
            Change::unknown(format!("{}: its arguments depend on values {KNOWN_AFTER_APPLY}", action.spec().name))
        } else {
            match action.plan(context, arguments).await {
                Ok(change) => change,
                Err(error) => return self.fail(frame, step, id, action.spec().name, error.to_string(), started.elapsed(), 1),
            }
        };
        frame.record(&step.id.value, Recorded::Unknown);
        self.planned(id, action, write, change);
        End::Succeeded
    }

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

    async fn run_group(&self, step: &'a Step, body: &'a [Step], id: String, frame: Arc<Frame>) -> End {
        let started = Instant::now();
        let scope = self.scope_of(&frame, None);
        if let Some(when) = &step.when {
            match self.render_bool(when, &scope) {
                Ok(true) => {}
                Ok(false) => return self.skip(&frame, step, id, format!("`when: {}` is false", when.source)),
                Err(e) => return self.fail(&frame, step, &id, "group", format!("`when`: {e}"), started.elapsed(), 0),
            }
        }
        let on_fail = if step.continue_on_error { OnFail::Contain } else { OnFail::Propagate };
        let inner = Frame::new(Some(Arc::clone(&frame)), None, on_fail, format!("{id}."));
        let entry = format!("{id}>");
        self.link(&entry, &id);
        let end = self.run_scope(body, format!("{}.", step.path), inner, entry).await;
        lock(&self.book).deps.insert(id.clone(), end.ids);
        self.container_end(step, &id, "group", end.ok, &frame, json!({}), started)
    }

    /// Records a group or `for_each` as it ended; inner failures have already travelled up.
    fn container_end(&self, step: &Step, id: &str, kind: &str, ok: bool, frame: &Arc<Frame>, outputs: Value, started: Instant) -> End {
        if ok {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
            if step.checkpoint {
                lock(&self.book).checkpoints.push((id.to_owned(), seq));
            }
            frame.record(&step.id.value, Recorded::Done(outputs.clone()));
            self.journal("step_succeeded", json!({"step": id, "path": step.path, "action": kind, "write": false, "elapsed_ms": started.elapsed().as_millis() as u64, "outputs": outputs}), false);
            self.emit(EventKind::StepSucceeded {
                step: id.to_owned(),
                action: kind.to_owned(),
                write: false,
                elapsed_ms: started.elapsed().as_millis() as u64,
                attempts: 1,
                outputs,
                change: None,
            });
            return End::Succeeded;
        }
        frame.record(&step.id.value, Recorded::Empty("failed"));
        if self.stopped(frame) && !step.continue_on_error {
            self.emit(EventKind::StepSkipped { step: id.to_owned(), reason: "did not complete: the run is stopping".into() });
            return End::Failed { tolerated: false };
        }
        End::Failed { tolerated: step.continue_on_error }
    }

    /// Records that `entry` (a body's start) needs what `container` needs.
    fn link(&self, entry: &str, container: &str) {
        let mut book = lock(&self.book);
        let deps = book.deps.get(container).cloned().unwrap_or_default();
        book.deps.insert(entry.to_owned(), deps);
    }

    #[expect(clippy::too_many_arguments, reason = "the for_each settings")]
    async fn run_for_each(
        &self,
        step: &'a Step,
        items: &TemplateText,
        as_name: &str,
        batch: Option<&Setting<u32>>,
        max_failures: Option<&Setting<u32>>,
        body: &'a [Step],
        id: String,
        frame: Arc<Frame>,
    ) -> End {
        let started = Instant::now();
        let scope = self.scope_of(&frame, None);
        if let Some(when) = &step.when {
            match self.render_bool(when, &scope) {
                Ok(true) => {}
                Ok(false) => return self.skip(&frame, step, id, format!("`when: {}` is false", when.source)),
                Err(e) => return self.fail(&frame, step, &id, "for_each", format!("`when`: {e}"), started.elapsed(), 0),
            }
        }
        let list = if items.is_templated() { self.render(&items.source, &scope) } else { Ok(Value::String(items.source.clone())) };
        let list = match list {
            Ok(Value::Array(list)) => list,
            Ok(_) if self.dry_run && scope.saw_unknown.load(Ordering::Relaxed) => vec![Value::String(KNOWN_AFTER_APPLY.into())],
            Ok(other) => return self.fail(&frame, step, &id, "for_each", format!("`for_each` gave {}, not a list", compact(&other)), started.elapsed(), 0),
            Err(e) => return self.fail(&frame, step, &id, "for_each", format!("`for_each`: {e}"), started.elapsed(), 0),
        };
        let settings = (|| -> Result<_, String> {
            Ok((self.setting(batch, &scope, "batch")?, self.setting(max_failures, &scope, "max_failures")?.unwrap_or(0)))
        })();
        let (batch, max) = match settings {
            Ok(settings) => settings,
            Err(e) => return self.fail(&frame, step, &id, "for_each", e, started.elapsed(), 0),
        };
        let size = batch.map_or(list.len(), |b| b.max(1) as usize).max(1);
        let budget = Arc::new(ItemBudget { failures: Default::default(), max, exceeded: AtomicBool::new(false) });
        self.emit(EventKind::StepStarted { step: id.clone(), action: "for_each".into(), write: false, attempt: 1 });
        let entry = format!("{id}>");
        self.link(&entry, &id);
        let body_scope = format!("{}.", step.path);
        let mut previous: Vec<String> = Vec::new();
        let mut ends: Vec<String> = Vec::new();
        let mut labels = Vec::new();
        let mut not_started = Vec::new();
        for chunk in list.chunks(size) {
            if self.stopped(&frame) || budget.exceeded.load(Ordering::Relaxed) {
                not_started.extend(chunk.iter().map(item_label));
                continue;
            }
            let mut items = Vec::new();
            for value in chunk {
                let label = item_label(value);
                let item_id = format!("{id}[{label}]");
                let item_entry = format!("{item_id}>");
                {
                    let mut book = lock(&self.book);
                    let mut deps = vec![entry.clone()];
                    deps.extend(previous.iter().cloned());
                    book.deps.insert(item_entry.clone(), deps);
                }
                let inner = Frame::new(
                    Some(Arc::clone(&frame)),
                    Some((as_name.to_owned(), to_value(value))),
                    OnFail::Item(Arc::clone(&budget)),
                    format!("{item_id}."),
                );
                labels.push(label);
                items.push(async {
                    let end = self.run_scope(body, body_scope.clone(), inner, item_entry).await;
                    (item_id, end)
                });
            }
            previous.clear();
            for (item_id, end) in futures::future::join_all(items).await {
                lock(&self.book).deps.insert(item_id.clone(), end.ids);
                previous.push(item_id.clone());
                ends.push(item_id);
            }
        }
        for label in &not_started {
            self.emit(EventKind::StepSkipped { step: format!("{id}[{label}]"), reason: "not started: the run is stopping".into() });
        }
        lock(&self.book).deps.insert(id.clone(), ends);
        let failures = budget.failures.load(Ordering::Relaxed);
        let ok = failures <= max && not_started.is_empty();
        let outputs = json!({"items": labels, "failed": failures});
        self.container_end(step, &id, "for_each", ok, &frame, outputs, started)
    }

    /// Every node that had to finish before `id` started.
    fn ancestors(&self, id: &str) -> HashSet<String> {
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

    /// Undoes completed writes back to the point the policy names; true when all undid.
    async fn rollback(&self, policy: RollbackPolicy) -> bool {
        if policy == RollbackPolicy::None {
            return true;
        }
        let (failed, checkpoints) = {
            let book = lock(&self.book);
            (book.failed.clone(), book.checkpoints.clone())
        };
        let mut keep: Option<(String, u64)> = None;
        if policy == RollbackPolicy::ToCheckpoint {
            let mut candidates = checkpoints;
            candidates.sort_by_key(|(_, seq)| Reverse(*seq));
            let ancestry: Vec<HashSet<String>> = failed.iter().map(|f| self.ancestors(f)).collect();
            keep = candidates
                .into_iter()
                .find(|(checkpoint, _)| ancestry.iter().all(|a| a.contains(checkpoint)));
        }
        let cutoff = keep.as_ref().map_or(0, |(_, seq)| *seq);
        let mut completed: Vec<Completed<'a>> = {
            let mut book = lock(&self.book);
            let all = std::mem::take(&mut book.completed);
            let (undo, kept): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.seq > cutoff);
            book.completed = kept;
            undo
        };
        completed.sort_by_key(|c| Reverse(c.seq));
        let policy_name = match policy {
            RollbackPolicy::ToCheckpoint => "to_checkpoint",
            RollbackPolicy::All => "all",
            RollbackPolicy::None => "none",
        };
        let steps: Vec<String> = completed.iter().map(|c| c.id.clone()).collect();
        self.journal("rollback_started", json!({"policy": policy_name, "checkpoint": keep.as_ref().map(|k| &k.0), "steps": steps}), true);
        self.emit(EventKind::RollbackStarted { policy: policy_name.into(), checkpoint: keep.map(|k| k.0), steps });
        let mut complete = true;
        for done in completed {
            if self.aborted.load(Ordering::Relaxed) {
                let message = format!("{}: not undone (aborted by a second signal)", done.id);
                lock(&self.book).attention.push(message);
                complete = false;
                continue;
            }
            match self.undo_one(&done).await {
                Ok(how) => {
                    self.journal("step_undone", json!({"step": done.id, "how": how}), true);
                    self.emit(EventKind::StepUndone { step: done.id.clone(), how });
                }
                Err(error) => {
                    let error = self.masker.text(&error);
                    complete = false;
                    self.journal("undo_failed", json!({"step": done.id, "error": error}), true);
                    lock(&self.book).attention.push(format!("{}: not undone: {error}", done.id));
                    self.emit(EventKind::UndoFailed { step: done.id.clone(), error });
                }
            }
        }
        complete
    }

    async fn undo_one(&self, done: &Completed<'a>) -> Result<String, String> {
        match done.step.rollback.as_ref().map(|r| &r.value) {
            Some(StepRollback::None) => Ok("left as is (`rollback: none`)".into()),
            Some(StepRollback::Steps(ids)) => {
                for name in ids {
                    let Some(undo_step) = done.siblings.iter().find(|s| s.id.value == name.value) else {
                        return Err(format!("rollback step `{}` not found", name.value));
                    };
                    let StepKind::Action { action, with } = &undo_step.kind else {
                        return Err(format!("rollback step `{}` is not an action step", name.value));
                    };
                    let undo_id = format!("{}{}", done.frame.prefix, undo_step.id.value);
                    let end = self
                        .run_action(undo_step, done.siblings, &action.value, with.as_ref(), undo_id.clone(), Arc::clone(&done.frame), true)
                        .await;
                    if !matches!(end, End::Succeeded | End::Skipped) {
                        return Err(format!("rollback step `{undo_id}` failed"));
                    }
                }
                Ok(format!(
                    "ran {}",
                    ids.iter().map(|i| format!("`{}`", i.value)).collect::<Vec<_>>().join(", ")
                ))
            }
            Some(StepRollback::Auto) | None => {
                let Some(undo) = done.undo.clone() else {
                    let effect = done.action.effect_for(&done.arguments);
                    if effect.reversible {
                        return Ok("nothing to undo: it changed nothing".into());
                    }
                    return Err(format!(
                        "`{}` has no undo: restore it by hand, or give the step `rollback:` steps (or `rollback: none`)",
                        done.action.spec().name
                    ));
                };
                let undo = tokio::time::timeout(
                    UNDO_TIMEOUT,
                    done.action.undo(&done.context, done.arguments.clone(), undo),
                );
                match undo.await {
                    Ok(Ok(())) => Ok("its undo record".into()),
                    Ok(Err(error)) => Err(error.to_string()),
                    Err(_) => Err(format!("undo timed out after {}", human(UNDO_TIMEOUT))),
                }
            }
        }
    }
}

/// Answers gates from the run's earlier approvals first, then asks the
/// operator's approver; keeps every answer for the journal.
struct Gatekeeper {
    inner: Arc<dyn Approver>,
    earlier: HashMap<String, String>,
    answered: Mutex<Vec<(String, Decision)>>,
}

impl Gatekeeper {
    fn take(&self) -> Vec<(String, Decision)> {
        std::mem::take(&mut *lock(&self.answered))
    }
}

#[async_trait::async_trait]
impl Approver for Gatekeeper {
    async fn decide(&self, gate: &str, prompt: &str) -> Decision {
        if let Some(by) = self.earlier.get(gate) {
            return Decision::Approved(by.clone());
        }
        let decision = self.inner.decide(gate, prompt).await;
        lock(&self.answered).push((gate.to_owned(), decision.clone()));
        decision
    }
}

/// Steps named in a sibling's `rollback:`: they run only to undo.
fn rollback_only_steps(steps: &[Step]) -> HashSet<&str> {
    steps
        .iter()
        .filter_map(|s| match s.rollback.as_ref().map(|r| &r.value) {
            Some(StepRollback::Steps(ids)) => Some(ids.iter().map(|i| i.value.as_str())),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The node a dependent waits for: a step's runtime id.
fn node_id(prefix: &str, step: &Step) -> String {
    format!("{prefix}{}", step.id.value)
}

fn gateway_kind(gateway: &Gateway) -> &'static str {
    gateway.kind()
}

fn scope_host(scope: &StepScope) -> Option<String> {
    let value = minijinja::Value::from_object(scope.clone_shallow());
    let host = value.get_attr("host").ok()?;
    if host.is_undefined() || host.is_none() {
        return None;
    }
    host.get_attr("name")
        .ok()
        .and_then(|n| n.as_str().map(str::to_owned))
        .or_else(|| host.as_str().map(str::to_owned))
}

fn retryable(error: &ActionError) -> bool {
    matches!(error, ActionError::Failed { .. })
}

/// Truthiness as templates see it.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !matches!(s.trim(), "" | "false" | "False" | "0" | "no"),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

fn contains_unknown(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(KNOWN_AFTER_APPLY),
        Value::Array(items) => items.iter().any(contains_unknown),
        Value::Object(map) => map.values().any(contains_unknown),
        _ => false,
    }
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 300 {
        format!("{}…", &text[..text.floor_char_boundary(300)])
    } else {
        text
    }
}

/// A duration for people: 850ms, 12s, 3m20s, 1h05m.
pub fn human(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = duration.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Evaluates `assert` expressions in a step's context.
struct ScopeEvaluator {
    templates: Templates,
    scope: StepScope,
}

impl Evaluate for ScopeEvaluator {
    fn evaluate(&self, expression: &str) -> Result<Value, String> {
        let context = minijinja::Value::from_object(self.scope.clone_shallow());
        self.templates
            .render_in(&format!("{{{{ {expression} }}}}"), &context)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests;
