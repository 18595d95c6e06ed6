//! The live view on a terminal: a status line (steps done, running, failed, gates asking,
//! rollback progress, the change window's countdown, the time left by earlier runs)
//! refreshed every half second, one spinner per running step, and each finished step's
//! line printed above, coloured when colour is allowed.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use runsheet_engine::run::event::{Event, EventKind, Observer, Outcome};
use runsheet_engine::run::window::Window;

use super::line;
use super::status::{Counts, Outlook, Paint, short, status_line};

/// How often the status line is redrawn when no event comes.
const TICK: Duration = Duration::from_millis(500);

/// A live view on stderr: a status line and one spinner per running step; finished steps
/// print above it.
pub struct Progress {
    shared: Arc<Shared>,
    /// Stops the ticker when dropped; the ticker's thread.
    ticker: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
}

/// What the events and the ticker both touch.
struct Shared {
    multi: MultiProgress,
    overall: ProgressBar,
    outlook: Outlook,
    paint: Paint,
    /// A person answers approval questions on this terminal.
    interactive: bool,
    state: Mutex<State>,
}

/// The run as the view knows it.
#[derive(Default)]
struct State {
    counts: Counts,
    started: Option<Instant>,
    window: Option<Window>,
    running: HashMap<String, ProgressBar>,
    /// Run id, once started.
    run: String,
    /// The first step that failed and was not tolerated.
    first_failure: Option<String>,
    /// Approval steps running, with their gates.
    approvals: HashMap<String, String>,
    /// Approval questions being asked on the terminal: the view is hidden meanwhile.
    asking: usize,
}

impl Progress {
    /// A view on stderr; `outlook` comes from earlier runs of the playbook.
    pub fn new(outlook: Outlook) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:20}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let shared = Arc::new(Shared {
            multi,
            overall,
            outlook,
            paint: Paint {
                on: crate::terminal::colour_allowed(),
            },
            interactive: crate::terminal::interactive(),
            state: Mutex::default(),
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let ticking = Arc::clone(&shared);
        let handle = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                ticking.refresh();
            }
        });
        Self {
            shared,
            ticker: Mutex::new(Some((stop, handle))),
        }
    }

    /// Stops the ticker and waits for its thread.
    fn stop_ticker(&self) {
        let ticker = match self.ticker.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some((stop, handle)) = ticker {
            drop(stop);
            let _ = handle.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_ticker();
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Redraws the status line from the state and the clock.
    fn refresh(&self) {
        let state = self.state();
        self.refresh_with(&state);
    }

    fn refresh_with(&self, state: &State) {
        if state.started.is_none() {
            return;
        }
        let elapsed = state.started.map(|s| s.elapsed()).unwrap_or_default();
        let text = status_line(
            &state.counts,
            elapsed,
            jiff::Timestamp::now(),
            state.window.as_ref(),
            &self.outlook,
            self.paint,
        );
        self.overall.set_length(state.counts.total as u64);
        self.overall
            .set_position(state.counts.done.min(state.counts.total) as u64);
        self.overall.set_message(text);
    }

    /// Prints a line above the bars (straight to stderr while a question is asked).
    fn print(&self, state: &State, text: &str) {
        if state.asking > 0 {
            eprintln!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    /// A running step's spinner.
    fn spinner(&self, message: String) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// A step stopped running: its spinner goes, and an approval question ends.
    fn ended(&self, state: &mut State, step: &str) {
        if let Some(bar) = state.running.remove(step) {
            bar.finish_and_clear();
        }
        if let Some(gate) = state.approvals.remove(step) {
            if let Some(at) = state.counts.gates.iter().position(|g| *g == gate) {
                state.counts.gates.remove(at);
            }
            if state.asking > 0 {
                state.asking -= 1;
                if state.asking == 0 {
                    self.multi.set_draw_target(ProgressDrawTarget::stderr());
                }
            }
        }
    }

    /// The line an event prints, with its status word coloured.
    fn painted(&self, kind: &EventKind) -> Option<String> {
        let text = line(kind)?;
        let paint = self.paint;
        let (word, colour): (&str, fn(Paint, &str) -> String) = match kind {
            EventKind::StepSucceeded { .. } | EventKind::StepUndone { .. } => {
                (text.split(' ').next().unwrap_or(""), Paint::ok)
            }
            EventKind::StepFailed {
                tolerated: true, ..
            } => ("failed* (tolerated)", Paint::warn),
            EventKind::StepFailed { .. } => ("FAILED", Paint::bad),
            EventKind::UndoFailed { .. } => ("UNDO FAILED", Paint::bad),
            EventKind::Paused { .. } => ("PAUSED", Paint::warn),
            EventKind::StepRetrying { .. } => ("retry", Paint::warn),
            EventKind::RollbackStarted { .. } => ("rollback", Paint::warn),
            EventKind::RunFinished { outcome, .. } => {
                let colour = match outcome {
                    Outcome::Succeeded | Outcome::Planned => Paint::ok,
                    Outcome::Paused | Outcome::Interrupted => Paint::warn,
                    _ => Paint::bad,
                };
                (text.lines().next().unwrap_or(""), colour)
            }
            _ => return Some(text),
        };
        Some(match text.strip_prefix(word) {
            Some(rest) if !word.is_empty() => format!("{}{rest}", colour(paint, word)),
            _ => text,
        })
    }
}

impl Observer for Progress {
    fn event(&self, event: &Event) {
        let shared = &self.shared;
        let mut state = shared.state();
        match &event.kind {
            EventKind::RunStarted {
                run,
                steps,
                window,
                dry_run,
                rollback,
                resumed,
                ..
            } => {
                state.started = Some(Instant::now());
                state.run = run.clone();
                state.counts.total = *steps;
                // A resumed run's earlier segments are not timed here: its estimate would mislead.
                state.counts.estimate = !*dry_run && !*rollback && !*resumed;
                state.window = window.as_deref().and_then(|w| Window::parse(w).ok());
            }
            EventKind::StepStarted {
                step,
                action,
                attempt,
                ..
            } => {
                let message = if action == "approval" {
                    let gate = shared.outlook.gate(step);
                    let new = state.approvals.insert(step.clone(), gate.clone()).is_none();
                    if new {
                        state.counts.gates.push(gate.clone());
                    }
                    if new && shared.interactive {
                        // The question is asked on this terminal: the view steps aside so
                        // the cursor stays after it.
                        state.asking += 1;
                        shared.multi.set_draw_target(ProgressDrawTarget::hidden());
                    }
                    shared
                        .paint
                        .warn(&format!("{step}: waiting on gate `{gate}`"))
                } else {
                    let mut message = format!("{step} ({action}");
                    if *attempt > 1 {
                        message.push_str(&format!(", attempt {attempt}"));
                    }
                    if let Some(usual) = shared.outlook.usual(step) {
                        message.push_str(&format!(", usually {}", short(usual)));
                    }
                    message.push(')');
                    message
                };
                if !matches!(action.as_str(), "group" | "for_each" | "approval")
                    && !state.running.contains_key(step)
                {
                    state.counts.running += 1;
                }
                let bar = shared.spinner(message);
                if let Some(old) = state.running.insert(step.clone(), bar) {
                    old.finish_and_clear();
                }
            }
            EventKind::StepRetrying {
                step,
                attempt,
                delay_ms,
                ..
            } => {
                if let Some(bar) = state.running.get(step) {
                    bar.set_message(format!(
                        "{step}: {}",
                        shared.paint.warn(&format!(
                            "attempt {attempt} failed, next in {}",
                            short(Duration::from_millis(*delay_ms))
                        ))
                    ));
                }
            }
            EventKind::StepSucceeded { step, action, .. }
            | EventKind::StepFailed { step, action, .. }
            | EventKind::StepPlanned { step, action, .. } => {
                if state.running.contains_key(step)
                    && !matches!(action.as_str(), "group" | "for_each" | "approval")
                {
                    state.counts.running = state.counts.running.saturating_sub(1);
                }
                if let EventKind::StepFailed { tolerated, .. } = &event.kind {
                    state.counts.failed += 1;
                    if !tolerated && state.first_failure.is_none() {
                        state.first_failure = Some(step.clone());
                    }
                }
                shared.ended(&mut state, step);
                if !step.contains('[') {
                    state.counts.done += 1;
                }
            }
            EventKind::StepSkipped { step, .. }
            | EventKind::StepRestored { step }
            | EventKind::Paused { step, .. } => {
                shared.ended(&mut state, step);
                if !step.contains('[') {
                    state.counts.done += 1;
                }
            }
            EventKind::RollbackStarted { steps, .. } => {
                state.counts.rollback = Some((0, steps.len()));
            }
            EventKind::StepUndone { .. } | EventKind::UndoFailed { .. } => {
                if let Some((undone, _)) = state.counts.rollback.as_mut() {
                    *undone += 1;
                }
            }
            EventKind::RunFinished { outcome, .. } => {
                for (_, bar) in state.running.drain() {
                    bar.finish_and_clear();
                }
                state.counts.running = 0;
                if *outcome == Outcome::Succeeded {
                    state.counts.done = state.counts.total;
                }
                shared.overall.finish_and_clear();
                if state.asking > 0 {
                    state.asking = 0;
                    shared.multi.set_draw_target(ProgressDrawTarget::stderr());
                }
            }
            _ => {}
        }
        if let EventKind::RunFinished { outcome, .. } = &event.kind {
            drop(state);
            self.stop_ticker();
            let state = shared.state();
            if let Some(text) = shared.painted(&event.kind) {
                shared.print(&state, &text);
            }
            if matches!(
                outcome,
                Outcome::RolledBack | Outcome::Failed | Outcome::NeedsAttention
            ) && let Some(step) = &state.first_failure
            {
                shared.print(
                    &state,
                    &format!("the failed step: runsheet explain {} '{step}'", state.run),
                );
            }
            return;
        }
        shared.refresh_with(&state);
        if !matches!(event.kind, EventKind::StepStarted { .. })
            && let Some(text) = shared.painted(&event.kind)
        {
            shared.print(&state, &text);
        }
    }
}
