//! The verbs that execute a playbook: `plan`, `run`, `resume`, `rollback`.
//! They check the inputs, enforce change management and the environment lock,
//! wire the engine's events to the terminal and reports, and map the outcome
//! to an exit code.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use runsheet_engine::check::{CheckRequest, Checked, check};
use runsheet_engine::report;
use runsheet_engine::run::event::{Observer, Outcome};
use runsheet_engine::run::executor::{
    Control, Mode, Prior, RunOptions, RunResult, WindowEnd, execute,
};
use runsheet_engine::run::journal::hash_line;
use runsheet_engine::run::lock::{LockError, Owner, pipeline_id};
use runsheet_engine::run::store::{ENVIRONMENT_FILE, HeldLock, PLAYBOOK_FILE, Store};
use runsheet_engine::run::mask::Masker;
use runsheet_engine::run::state::{RunRecord, host_name, new_run_id, os_user};
use runsheet_engine::run::summary::{Recorder, RunFacts, RunSummary};
use runsheet_engine::run::window::{History, Window};
use runsheet_engine::{Approver, Decision, Registry};
use serde_json::{Map, Value, json};

use crate::cli::{ChangeArgs, InputArgs, LogFormat, OutputFormat, RunArgs, StateArgs};
use crate::commands::request;
use crate::exit::Exit;
use crate::observe::{JsonLines, Outlook, PlainLines, Progress};
use crate::render::{emit, json_text, print_diagnostics, summary};
use crate::report_dir::ReportDir;

/// Loads and validates, printing diagnostics; `None` means exit 3.
fn checked(registry: &Registry, request: &CheckRequest) -> Option<Checked> {
    match check(registry, request) {
        Ok(checked) => {
            print_diagnostics(&checked.warnings, OutputFormat::Human);
            Some(checked)
        }
        Err(diagnostics) => {
            print_diagnostics(&diagnostics, OutputFormat::Human);
            eprintln!(
                "{}: invalid ({})",
                request.playbook.display(),
                summary(&diagnostics)
            );
            None
        }
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            Exit::Refused
        })
}

/// SHA-256 of the playbook as it was loaded (no second read of the file).
fn text_sha256(checked: &Checked) -> String {
    hash_line(checked.file.text.as_bytes())
}

/// SHA-256 of a file's bytes, hex (the file as it is now on disk).
fn file_sha256(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| hash_line(&bytes))
        .unwrap_or_default()
}

/// The playbook's directory, absolute: relative paths in arguments start there, and paths in
/// outputs (an export's `path`) stay valid when a later step joins them again.
fn base_dir(playbook: &Path) -> PathBuf {
    let dir = playbook
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::path::absolute(&dir).unwrap_or(dir)
}

/// The terminal (or `--approve`) answers approval gates.
struct OperatorApprover {
    approved: Vec<String>,
    approver: String,
    interactive: bool,
    /// One question at a time: parallel gates must not take each other's answer.
    terminal: tokio::sync::Mutex<()>,
}

impl OperatorApprover {
    fn new(approved: Vec<String>, approver: String) -> Self {
        Self {
            approved,
            approver,
            interactive: crate::terminal::interactive(),
            terminal: tokio::sync::Mutex::new(()),
        }
    }
}

#[async_trait::async_trait]
impl Approver for OperatorApprover {
    async fn decide(&self, gate: &str, prompt: &str) -> Decision {
        if self.approved.iter().any(|g| g == gate) {
            return Decision::Approved(self.approver.clone());
        }
        if !self.interactive {
            return Decision::Pending;
        }
        let _one_at_a_time = self.terminal.lock().await;
        let question = format!("\nApproval gate `{gate}`: {prompt}\nApprove? [y/N] ");
        let (send, answer) = tokio::sync::oneshot::channel();
        // A thread nobody joins: an abort must not wait for someone to press Enter.
        std::thread::spawn(move || {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(question.as_bytes());
            let _ = err.flush();
            let mut line = String::new();
            let _ = send.send(std::io::stdin().lock().read_line(&mut line).map(|_| line));
        });
        match answer.await {
            Ok(Ok(line)) if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") => {
                Decision::Approved(self.approver.clone())
            }
            Ok(Ok(line)) if line.is_empty() => Decision::Pending,
            _ => Decision::Refused(self.approver.clone()),
        }
    }
}

/// What shows the run; `outlook` (earlier runs' durations) feeds the live view's estimate.
fn observers(args: &RunArgs, outlook: Outlook) -> Vec<Arc<dyn Observer>> {
    let show: Arc<dyn Observer> = match args.log_format {
        LogFormat::Json => Arc::new(JsonLines),
        LogFormat::Text if live(args) => Arc::new(Progress::new(outlook)),
        LogFormat::Text => Arc::new(PlainLines),
    };
    vec![show]
}

/// Whether the run's text log is the live view (else plain time-stamped lines).
fn live(args: &RunArgs) -> bool {
    !args.no_progress && crate::terminal::live_output()
}

/// Where and how `drive` prints the closure summary: only for the text log, time-stamped
/// like the plain lines before it.
fn closure_out<'a>(args: &RunArgs, report_dir: &'a ReportDir, mode: Mode) -> Option<ClosureOut<'a>> {
    (args.log_format == LogFormat::Text).then(|| ClosureOut {
        report_dir: report_dir.path(),
        stamped: !live(args),
        undo_verb: mode == Mode::Rollback,
    })
}

/// The closure summary's destination.
struct ClosureOut<'a> {
    /// The report directory the summary points to.
    report_dir: &'a Path,
    /// Each line starts with the time, as plain log lines do.
    stamped: bool,
    /// The run is `runsheet rollback`: undoing every write is its success.
    undo_verb: bool,
}

/// Parses every `--report` before anything runs.
fn report_specs(args: &RunArgs) -> Result<Vec<(report::ReportFormat, PathBuf)>, Exit> {
    args.reports
        .iter()
        .map(|spec| {
            report::parse_spec(spec).map_err(|e| {
                eprintln!("error: --report {spec}: {e}");
                Exit::Invalid
            })
        })
        .collect()
}

/// Runs the executor with signal handling and writes the reports; with `closure` (the
/// report directory), prints the closure summary once the run has ended.
async fn drive(
    checked: &Checked,
    registry: &Registry,
    options: RunOptions,
    reports: &[(report::ReportFormat, PathBuf)],
    facts: RunFacts,
    closure: Option<ClosureOut<'_>>,
) -> (RunResult, RunSummary, bool) {
    let recorder = Arc::new(Recorder::new(facts));
    let mut options = options;
    options.observers.push(Arc::clone(&recorder) as Arc<dyn Observer>);
    let control = Control::new();
    let signals = Arc::clone(&control);
    let listener = tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut interrupt), Ok(mut terminate)) =
                (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
            else {
                return;
            };
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                if signals.interrupt() >= 2 {
                    break;
                }
            }
        }
    });
    let result = execute(checked, registry, options, control).await;
    listener.abort();
    let summary = recorder.summary();
    if let Some(out) = closure
        && let Some(text) = crate::closure::text(&summary, out.report_dir, out.undo_verb)
    {
        let at = runsheet_engine::run::event::now_rfc3339();
        for line in text.lines() {
            if out.stamped {
                println!("{at}  {}", line.trim_start());
            } else {
                println!("{line}");
            }
        }
    }
    let mut reports_ok = true;
    for (format, path) in reports {
        if let Err(e) = report::write(*format, &summary, path) {
            eprintln!("error: report {}: {e}", path.display());
            reports_ok = false;
        }
    }
    (result, summary, reports_ok)
}

/// Fills the report directory and gives the exit code: a report that could not be
/// written turns a success into a failure.
fn publish(dir: &ReportDir, summary: &RunSummary, exit: Exit) -> Exit {
    let reports_ok = dir.write_reports(summary);
    let exit = if !reports_ok { unwritten(exit) } else { exit };
    let dotenv_ok = dir.write_dotenv(summary, exit);
    if !dotenv_ok { unwritten(exit) } else { exit }
}

/// The exit code when a report could not be written: a success (or a plan's "changes") is
/// then a failure, so a pipeline does not go on without the files it publishes.
fn unwritten(exit: Exit) -> Exit {
    if matches!(exit, Exit::Success | Exit::Changes) {
        Exit::StepFailed
    } else {
        exit
    }
}

/// What `runsheet plan` is told beyond the playbook and its inputs.
pub struct PlanArgs<'a> {
    /// Output format.
    pub output: OutputFormat,
    /// Where to save the plan.
    pub out: Option<&'a Path>,
    /// Exit 6 when something would change.
    pub detailed_exitcode: bool,
    /// Where to write plan.json, the reports and runsheet.env (none by default).
    pub report_dir: Option<&'a Path>,
    /// The policy that must admit the playbook.
    pub policy: &'a crate::policy::PolicyGate,
}

/// `runsheet plan`: a dry run through the executor.
pub fn plan(registry: &Registry, playbook: &Path, inputs: &InputArgs, args: &PlanArgs<'_>) -> Exit {
    let reports = args.report_dir.map(ReportDir::new);
    let exit = plan_playbook(registry, playbook, inputs, args, reports.as_ref());
    if let Some(reports) = &reports {
        reports.finish(exit);
    }
    exit
}

fn plan_playbook(
    registry: &Registry,
    playbook: &Path,
    inputs: &InputArgs,
    args: &PlanArgs<'_>,
    reports: Option<&ReportDir>,
) -> Exit {
    let (output, out, detailed_exitcode) = (args.output, args.out, args.detailed_exitcode);
    let Some(checked) = checked(registry, &request(playbook, inputs, true)) else {
        return Exit::Invalid;
    };
    if let Err(exit) = args.policy.admit(&checked, registry) {
        return exit;
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(exit) => return exit,
    };
    let (checked, _twins) = match crate::twin::embed(&runtime, checked, None) {
        Ok(embedded) => embedded,
        Err(exit) => return exit,
    };
    let args = RunArgs {
        store: StateArgs {
            state_dir: PathBuf::from(".runsheet"),
            state: None,
        },
        reports: Vec::new(),
        report_dir: PathBuf::new(),
        log_format: LogFormat::Text,
        no_progress: true,
        approver: None,
    };
    let observers: Vec<Arc<dyn Observer>> = match output {
        OutputFormat::Human => observers(&args, Outlook::default()),
        OutputFormat::Json => Vec::new(),
    };
    let options = dry_options(playbook, observers);
    let facts = facts(&checked, playbook, "plan", None, None, true);
    let (result, summary, _) = runtime.block_on(drive(&checked, registry, options, &[], facts, None));
    let saved = saved_plan(&checked, &result);
    match output {
        OutputFormat::Json => emit(&json_text(&saved)),
        OutputFormat::Human => emit(&plan_diffs(&result)),
    }
    if let Some(out) = out {
        let text = json_text(&saved);
        if let Err(e) = runsheet_engine::run::state::write_atomic(out, text.as_bytes()) {
            eprintln!("error: --out {}: {e}", out.display());
            return Exit::Refused;
        }
        eprintln!("plan saved to {}; apply it with: runsheet run {} --plan {}", out.display(), playbook.display(), out.display());
    }
    let changes = result.planned.iter().filter(|p| p.write && p.change.changes != Some(false)).count();
    let exit = if result.outcome != Outcome::Planned {
        Exit::of(result.outcome)
    } else if detailed_exitcode && changes > 0 {
        Exit::Changes
    } else {
        Exit::Success
    };
    match reports {
        Some(reports) if reports.write(crate::report_dir::PLAN, &json_text(&saved)) => {
            publish(reports, &summary, exit)
        }
        Some(_) => unwritten(exit),
        None => exit,
    }
}

fn dry_options(playbook: &Path, observers: Vec<Arc<dyn Observer>>) -> RunOptions {
    RunOptions {
        run_id: "plan".into(),
        dry_run: true,
        base_dir: base_dir(playbook),
        window: None,
        window_end: WindowEnd::Rollback,
        history: History::default(),
        prior: Prior::default(),
        resumed: false,
        mode: Mode::Run,
        approver: Arc::new(runsheet_engine::action::NoApprover),
        observers,
        journal: None,
        masker: Masker::default(),
        change_id: None,
    }
}

/// The diffs of a dry run, for people.
fn plan_diffs(result: &RunResult) -> String {
    let mut out = String::new();
    let mut changes = 0;
    let mut unread = 0;
    for planned in &result.planned {
        let (id, action, change) = (&planned.step, &planned.action, &planned.change);
        let mark = match change.changes {
            _ if !planned.write => {
                unread += 1;
                "not run"
            }
            Some(false) => "no change",
            Some(true) => {
                changes += 1;
                "change"
            }
            None => {
                changes += 1;
                "may change"
            }
        };
        out.push_str(&format!("\n{id} ({action}): {mark}: {}\n", change.summary));
        if change.changes == Some(true) {
            let diff = report::diff::unified(change.before.as_deref(), change.after.as_deref());
            for line in diff.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    let writes = result.planned.iter().filter(|p| p.write).count();
    out.push_str(&format!(
        "\n{writes} write step(s) planned, {changes} would or may change something"
    ));
    if unread > 0 {
        out.push_str(&format!("; {unread} read step(s) or gate(s) did not run in the dry run"));
    }
    out.push_str(". Nothing was changed: this is a plan.\n");
    out
}

/// The saved plan: hashes, inputs, and each write step's "before" state.
fn saved_plan(checked: &Checked, result: &RunResult) -> Value {
    let steps: Vec<Value> = result
        .planned
        .iter()
        .filter(|p| p.write)
        .map(|p| {
            json!({"step": p.step, "action": p.action, "changes": p.change.changes, "summary": p.change.summary, "before": p.change.before, "after": p.change.after})
        })
        .collect();
    json!({
        "runsheet_plan": 1,
        "playbook": checked.playbook.name.value,
        "playbook_sha256": text_sha256(checked),
        "environment": checked.environment.as_ref().map(|(_, e)| e.name.value.clone()),
        "environment_sha256": checked.environment.as_ref().map(|(f, _)| hash_line(f.text.as_bytes())),
        "inputs": masked_inputs(checked),
        "outcome": result.outcome,
        "steps": steps,
    })
}

fn masked_inputs(checked: &Checked) -> Map<String, Value> {
    let mut inputs = checked.inputs.clone();
    for (name, spec) in &checked.playbook.inputs {
        if spec.kind.value == runsheet_engine::model::InputType::Secret
            && let Some(value) = inputs.get_mut(&name.value)
        {
            *value = Value::String(runsheet_engine::check::MASK.into());
        }
    }
    inputs
}

fn facts(
    checked: &Checked,
    playbook: &Path,
    run: &str,
    change_id: Option<String>,
    window: Option<String>,
    dry_run: bool,
) -> RunFacts {
    RunFacts {
        run: run.to_owned(),
        playbook: checked.playbook.name.value.clone(),
        playbook_path: playbook.display().to_string(),
        playbook_sha256: text_sha256(checked),
        environment: checked.environment.as_ref().map(|(_, e)| e.name.value.clone()),
        change_id,
        window,
        operator: os_user(),
        dry_run,
        ci: crate::ci::context(),
    }
}

/// Compares a saved plan with the situation now; the differences, if any.
fn stale_plan(saved: &Value, fresh: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for field in ["playbook_sha256", "environment_sha256", "inputs"] {
        if saved[field] != fresh[field] {
            problems.push(format!(
                "{field} changed: was {}, now {}",
                saved[field], fresh[field]
            ));
        }
    }
    let befores = |plan: &Value| -> Vec<(String, Value)> {
        plan["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| (s["step"].as_str().unwrap_or("").to_owned(), s["before"].clone()))
            .collect()
    };
    let (old, new) = (befores(saved), befores(fresh));
    if old.iter().map(|(id, _)| id).ne(new.iter().map(|(id, _)| id)) {
        problems.push("the write steps differ from the saved plan's".into());
    }
    for ((id, before), (_, now)) in old.iter().zip(new.iter()) {
        if before != now {
            let diff = report::diff::unified(before.as_str(), now.as_str());
            problems.push(format!("{id}: the state it would change is not what the plan saw:\n{diff}"));
        }
    }
    problems
}

/// Change id and window from the flags, else the environment; a refusal (or an invalid
/// window) as its exit code and message.
fn change_management(
    checked: &Checked,
    change: &ChangeArgs,
) -> Result<(Option<String>, Option<Window>), (Exit, String)> {
    let settings = checked.environment.as_ref().map(|(_, e)| &e.change);
    let change_id = change
        .change_id
        .clone()
        .or_else(|| settings.and_then(|s| s.change_id.as_ref().map(|c| c.value.clone())));
    let window_text = change
        .window
        .clone()
        .or_else(|| settings.and_then(|s| s.window.as_ref().map(|w| w.value.clone())));
    let environment = checked
        .environment
        .as_ref()
        .map_or("(none)".to_owned(), |(_, e)| e.name.value.clone());
    if settings.is_some_and(|s| s.require_change_id) && change_id.is_none() {
        return Err((Exit::Refused, format!(
            "environment `{environment}` requires a change id: pass --change-id CRQ-... (or set change.change_id)"
        )));
    }
    let window = match window_text.as_deref().map(Window::parse).transpose() {
        Ok(window) => window,
        // A window that does not parse is a typing error, not a refusal of the change.
        Err(e) => return Err((Exit::Invalid, format!("change window `{}`: {e}", window_text.unwrap_or_default()))),
    };
    if settings.is_some_and(|s| s.require_window) && window.is_none() {
        return Err((Exit::Refused, format!(
            "environment `{environment}` requires a change window: pass --window START/END (RFC 3339)"
        )));
    }
    if let Some(window) = window {
        let now = jiff::Timestamp::now();
        if now < window.start {
            return Err((Exit::Refused, format!("outside the change window: it opens at {} (now {})", window.start, now)));
        }
        if now >= window.end {
            return Err((Exit::Refused, format!("outside the change window: it closed at {} (now {})", window.end, now)));
        }
    }
    Ok((change_id, window))
}

fn owner(run: &str) -> Owner {
    Owner {
        run: run.to_owned(),
        pid: std::process::id(),
        host: host_name(),
        user: os_user(),
        since: jiff::Timestamp::now().to_string(),
        pipeline: pipeline_id(),
        heartbeat: None,
    }
}

fn lock_refusal(error: &LockError) {
    match error {
        LockError::Held { owner, .. } => eprintln!(
            "error: {error}\n  help: wait for run {} to finish; `runsheet show {}` shows where it is",
            owner.run, owner.run
        ),
        LockError::Stale { environment, owner } => eprintln!(
            "error: {error}\n  help: `runsheet resume {}` continues that run and takes its lock back; `runsheet unlock {environment}` releases the lock once you are sure nobody is working on it",
            owner.run
        ),
        LockError::Io { .. } => eprintln!("error: {error}"),
        LockError::Backend { .. } => eprintln!(
            "error: {error}\n  help: the state database must be reachable to take the environment's lock; nothing ran"
        ),
    }
}

/// `runsheet run`.
pub fn run(
    registry: &Registry,
    playbook: &Path,
    inputs: &InputArgs,
    flags: RunFlags<'_>,
    change: &ChangeArgs,
    args: &RunArgs,
) -> Exit {
    let reports = ReportDir::new(&args.report_dir);
    let exit = run_playbook(registry, playbook, inputs, flags, change, args, &reports);
    reports.finish(exit);
    exit
}

/// The switches of `run`.
pub struct RunFlags<'a> {
    /// Change nothing.
    pub dry_run: bool,
    /// Ask nothing.
    pub yes: bool,
    /// Apply this saved plan.
    pub plan_file: Option<&'a Path>,
    /// The policy that must admit the playbook.
    pub policy: &'a crate::policy::PolicyGate,
}

fn run_playbook(
    registry: &Registry,
    playbook: &Path,
    inputs: &InputArgs,
    flags: RunFlags<'_>,
    change: &ChangeArgs,
    args: &RunArgs,
    report_dir: &ReportDir,
) -> Exit {
    let RunFlags {
        dry_run,
        yes,
        plan_file,
        policy,
    } = flags;
    let Some(checked) = checked(registry, &request(playbook, inputs, true)) else {
        return Exit::Invalid;
    };
    if let Err(exit) = policy.admit(&checked, registry) {
        return exit;
    }
    let reports = match report_specs(args) {
        Ok(reports) => reports,
        Err(exit) => return exit,
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(exit) => return exit,
    };
    let (checked, twins) = match crate::twin::embed(&runtime, checked, None) {
        Ok(embedded) => embedded,
        Err(exit) => return exit,
    };
    if dry_run {
        let options = dry_options(playbook, observers(args, Outlook::default()));
        let facts = facts(&checked, playbook, "dry-run", change.change_id.clone(), change.window.clone(), true);
        let (result, summary, reports_ok) = runtime.block_on(drive(&checked, registry, options, &reports, facts, closure_out(args, report_dir, Mode::Run)));
        return publish(report_dir, &summary, finish_exit(result.outcome, reports_ok));
    }
    let (change_id, window) = match change_management(&checked, change) {
        Ok(found) => found,
        Err((Exit::Refused, message)) => {
            eprintln!("error: refused to start: {message}");
            return Exit::Refused;
        }
        Err((exit, message)) => {
            eprintln!("error: {message}");
            return exit;
        }
    };
    if let Some(plan_file) = plan_file {
        let saved: Value = match std::fs::read_to_string(plan_file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(saved) => saved,
            Err(e) => {
                eprintln!("error: --plan {}: {e}", plan_file.display());
                return Exit::Invalid;
            }
        };
        let options = dry_options(playbook, Vec::new());
        let fresh_facts = facts(&checked, playbook, "plan-check", None, None, true);
        let (fresh, _, _) = runtime.block_on(drive(&checked, registry, options, &[], fresh_facts, None));
        let fresh = saved_plan(&checked, &fresh);
        let problems = stale_plan(&saved, &fresh);
        if !problems.is_empty() {
            eprintln!("error: refused to start: the saved plan {} is stale:", plan_file.display());
            for problem in problems {
                eprintln!("  - {problem}");
            }
            eprintln!("  help: make a new plan with `runsheet plan ... --out FILE` and have it approved again");
            return Exit::Refused;
        }
        eprintln!("saved plan {} still matches: applying it", plan_file.display());
    }
    if crate::terminal::interactive() && !yes {
        let writes = checked
            .playbook
            .all_steps()
            .iter()
            .filter(|s| {
                s.action()
                    .and_then(|a| registry.get(&a.value))
                    .is_some_and(|a| a.spec().effect.kind != runsheet_engine::EffectKind::Read)
            })
            .count();
        eprint!(
            "About to run `{}` on {} ({writes} step(s) may write). Proceed? [y/N] ",
            checked.playbook.name.value,
            checked.environment.as_ref().map_or("no environment".to_owned(), |(_, e)| e.name.value.clone())
        );
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            eprintln!("not started.");
            return Exit::Refused;
        }
    }
    let state = match args.store.open() {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    let run_id = new_run_id();
    let environment = checked.environment.as_ref().map(|(_, e)| e.name.value.clone());
    let playbook_text = checked.file.text.as_str();
    let environment_file = checked.environment.as_ref().map(|(f, _)| f);
    let record = RunRecord {
        id: run_id.clone(),
        playbook: checked.playbook.name.value.clone(),
        playbook_path: std::path::absolute(playbook).unwrap_or_else(|_| playbook.to_path_buf()),
        playbook_sha256: text_sha256(&checked),
        environment: environment.clone(),
        environment_path: inputs
            .env
            .as_deref()
            .map(runsheet_engine::check::environment_path)
            .map(|p| std::path::absolute(&p).unwrap_or(p)),
        environment_sha256: environment_file.map(|f| hash_line(f.text.as_bytes())),
        inputs: checked.inputs.clone(),
        change_id: change_id.clone(),
        window: window.map(|w| w.to_string()),
        operator: os_user(),
        started_at: jiff::Timestamp::now().to_string(),
        finished_at: None,
        state: "running".into(),
        pid: std::process::id(),
    };
    // The run exists (complete) before it takes the lock, so a crash at any
    // point leaves either nothing or a run that `resume` can continue.
    if let Err(e) = state.create_run(&record, playbook_text, environment_file.map(|f| f.text.as_str())) {
        eprintln!("error: {e}");
        return Exit::Refused;
    }
    let held = match state.acquire(&record.lock_key(), &owner(&run_id)) {
        Ok(held) => Some(held),
        Err(e) => {
            let _ = state.discard_run(&run_id);
            lock_refusal(&e);
            return Exit::Refused;
        }
    };
    let journal = match state.open_journal(&run_id) {
        Ok((journal, _)) => journal,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(held) = held {
                let _ = held.release(record.environment.is_none());
            }
            let _ = state.discard_run(&run_id);
            return Exit::Refused;
        }
    };
    let history = state.history(&checked.playbook.name.value, None);
    let outlook = Outlook::new(&history, &checked.playbook);
    let options = RunOptions {
        run_id: run_id.clone(),
        dry_run: false,
        base_dir: base_dir(playbook),
        window,
        window_end: if change.pause_at_window_end
            || checked.playbook.window_end == runsheet_engine::model::WindowEndPolicy::Pause
        {
            WindowEnd::Pause
        } else {
            WindowEnd::Rollback
        },
        history,
        prior: Prior::default(),
        resumed: false,
        mode: Mode::Run,
        approver: Arc::new(OperatorApprover::new(
            Vec::new(),
            args.approver.clone().unwrap_or_else(os_user),
        )),
        observers: observers(args, outlook),
        journal: Some(journal),
        masker: Masker::default(),
        change_id: change_id.clone(),
    };
    let facts = facts(&checked, playbook, &run_id, change_id, window.map(|w| w.to_string()), false);
    let (result, summary, reports_ok) = runtime.block_on(drive(&checked, registry, options, &reports, facts, closure_out(args, report_dir, Mode::Run)));
    save_twins(&twins, state.as_ref(), &run_id);
    conclude(state.as_ref(), record, held, &result, &run_id, Mode::Run);
    publish(report_dir, &summary, finish_exit(result.outcome, reports_ok))
}

/// Keeps the embedded twins' state with the run, so `resume` continues from it.
fn save_twins(twins: &crate::twin::Embedded, state: &dyn Store, run_id: &str) {
    let scratch = crate::state::TwinsDir::restore(state, run_id);
    match twins.save(&scratch.path) {
        Ok(()) => scratch.keep(state, run_id),
        Err(e) => eprintln!("warning: the twins' state was not saved ({e}); a resume starts them from their seed"),
    }
}

fn finish_exit(outcome: Outcome, reports_ok: bool) -> Exit {
    let exit = Exit::of(outcome);
    if exit == Exit::Success && !reports_ok {
        return Exit::StepFailed;
    }
    exit
}

/// Saves the run's end state, releases or keeps the lock, and says what to do next.
fn conclude(
    state: &dyn Store,
    mut record: RunRecord,
    held: Option<Box<dyn HeldLock>>,
    result: &RunResult,
    run_id: &str,
    mode: Mode,
) {
    record.state = serde_json::to_value(result.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    record.finished_at = Some(jiff::Timestamp::now().to_string());
    if let Err(e) = state.save(&record) {
        eprintln!("error: {e}");
    }
    let keep_lock = matches!(
        result.outcome,
        Outcome::Paused | Outcome::NeedsAttention | Outcome::Interrupted
    );
    if let Some(held) = held {
        if keep_lock {
            held.keep();
            if let Some(environment) = &record.environment {
                eprintln!(
                    "the environment stays locked by run {run_id} until it is resumed (or `runsheet unlock {environment}`)"
                );
            }
        } else if let Err(e) = held.release(record.environment.is_none()) {
            // A run's own lock (no environment) has no use once the run has ended: it is forgotten.
            eprintln!("error: {e}");
        }
    }
    match result.outcome {
        Outcome::Paused => eprintln!(
            "paused: {}\n  resume with: runsheet resume {run_id}{}",
            result.stop.as_ref().map_or("", |(_, m)| m.as_str()),
            gate_hint(result)
        ),
        Outcome::NeedsAttention => eprintln!(
            "a person must act before anything else runs here; details: runsheet show {run_id}"
        ),
        Outcome::Interrupted => eprintln!(
            "interrupted; continue with: runsheet resume {run_id}   (details: runsheet show {run_id})"
        ),
        Outcome::RolledBack if mode == Mode::Rollback => eprintln!(
            "rolled back: every write of run {run_id} was undone, newest first; details: runsheet show {run_id}"
        ),
        Outcome::RolledBack | Outcome::Failed => eprintln!(
            "details: runsheet show {run_id}; after fixing the cause: runsheet resume {run_id}"
        ),
        Outcome::Succeeded | Outcome::Planned => {}
    }
}

fn gate_hint(result: &RunResult) -> String {
    result
        .stop
        .as_ref()
        .and_then(|(_, m)| m.split("--approve ").nth(1))
        .map(|gate| format!(" --approve {gate}"))
        .unwrap_or_default()
}

/// The text of a file the run kept (its playbook or environment as they were), or empty.
fn copy_of(state: &dyn Store, run_id: &str, name: &str) -> String {
    state
        .file(run_id, name)
        .ok()
        .flatten()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// What `resume` is told beyond the run id.
pub struct ResumeArgs<'a> {
    /// Gates approved now.
    pub approve: &'a [String],
    /// Resume with a changed playbook.
    pub allow_changed: bool,
    /// `STEP=done|rerun` for writes cut short.
    pub resolved: &'a [String],
    /// A new change window.
    pub window: Option<&'a str>,
}

/// Applies `--resolved STEP=done|rerun` to what the journal says: for a write
/// cut short, `done` means it took effect; for an undo cut short, `done` means
/// the write still stands and `rerun` that the undo took effect.
fn resolve(prior: &mut Prior, resolved: &[String]) -> Result<(), String> {
    for item in resolved {
        let Some((step, how)) = item.split_once('=') else {
            return Err(format!("--resolved {item}: expected STEP=done or STEP=rerun"));
        };
        if !matches!(how, "done" | "rerun") {
            return Err(format!("--resolved {item}: `{how}` is neither done nor rerun"));
        }
        if prior.undo_in_doubt.remove(step) {
            if how == "rerun" {
                prior.done.remove(step);
            } else if let Some(done) = prior.done.get_mut(step) {
                done.undo_unknown = Some("its undo was cut short and resolved by hand".into());
            }
            continue;
        }
        if !prior.in_doubt.remove(step) {
            let known: Vec<&str> = prior
                .in_doubt
                .iter()
                .chain(prior.undo_in_doubt.iter())
                .map(String::as_str)
                .collect();
            return Err(format!(
                "--resolved {item}: `{step}` is not a write or undo cut short in this run{}",
                if known.is_empty() { String::new() } else { format!(" (those are: {})", known.join(", ")) }
            ));
        }
        if how == "done" {
            prior.done.insert(
                step.to_owned(),
                runsheet_engine::run::executor::PriorStep {
                    outputs: json!({}),
                    undo: None,
                    masked: false,
                    write: true,
                    undo_unknown: Some("it was resolved by hand, so its undo record is unknown".into()),
                },
            );
        }
    }
    if !prior.undo_in_doubt.is_empty() {
        let steps: Vec<&str> = prior.undo_in_doubt.iter().map(String::as_str).collect();
        return Err(format!(
            "the undo of {} was cut short and its state is unknown: check by hand, then pass --resolved STEP=done (the write still stands) or --resolved STEP=rerun (the undo took effect)",
            steps.join(", ")
        ));
    }
    Ok(())
}

/// `runsheet resume` and `runsheet rollback`.
pub fn resume(
    registry: &Registry,
    run_id: &str,
    resume: &ResumeArgs<'_>,
    args: &RunArgs,
    mode: Mode,
) -> Exit {
    let state = match args.store.open() {
        Ok(state) => state,
        Err(exit) => {
            if args.report_dir.is_dir() {
                ReportDir::new(&args.report_dir).finish(exit);
            }
            return exit;
        }
    };
    if let Err(e) = state.load(run_id) {
        eprintln!("error: {e}\n  help: `runsheet runs` lists the runs in {}", state.place());
        // No run: nothing is created, but a report directory an earlier command left (a
        // pipeline's workspace) must not keep another run's "succeeded" for this step.
        if args.report_dir.is_dir() {
            ReportDir::new(&args.report_dir).finish(Exit::Invalid);
        }
        return Exit::Invalid;
    }
    let reports = ReportDir::new(&args.report_dir);
    let exit = resume_run(registry, state.as_ref(), run_id, resume, args, mode, &reports);
    reports.finish(exit);
    exit
}

fn resume_run(
    registry: &Registry,
    state: &dyn Store,
    run_id: &str,
    resume: &ResumeArgs<'_>,
    args: &RunArgs,
    mode: Mode,
    report_dir: &ReportDir,
) -> Exit {
    let (approve, allow_changed, window) = (resume.approve, resume.allow_changed, resume.window);
    let record = match state.load(run_id) {
        Ok(record) => record,
        Err(e) => {
            eprintln!("error: {e}\n  help: `runsheet runs` lists the runs in {}", state.place());
            return Exit::Invalid;
        }
    };
    if record.state == crate::state::MOVED {
        eprintln!(
            "error: refused: run {run_id} was moved to {} (runsheet state export/import): resume or roll it back there",
            crate::state::moved_to(state, run_id)
        );
        return Exit::Refused;
    }
    if record.state == "succeeded" && mode == Mode::Run {
        eprintln!("run {run_id} already succeeded: nothing to resume");
        return Exit::Success;
    }
    let reports = match report_specs(args) {
        Ok(reports) => reports,
        Err(exit) => return exit,
    };
    let now_sha = file_sha256(&record.playbook_path);
    if now_sha != record.playbook_sha256 {
        let before = copy_of(state, run_id, PLAYBOOK_FILE);
        let after = std::fs::read_to_string(&record.playbook_path).unwrap_or_default();
        let diff = report::diff::unified(Some(&before), Some(&after));
        if !allow_changed {
            eprintln!(
                "error: refused: the playbook {} changed since run {run_id} started:\n{diff}\n  help: restore it, or pass --allow-changed to resume with the new text",
                record.playbook_path.display()
            );
            return Exit::Refused;
        }
        eprintln!("note: resuming with a changed playbook (--allow-changed):\n{diff}");
    }
    if let (Some(path), Some(recorded)) = (&record.environment_path, &record.environment_sha256) {
        let now = std::fs::read_to_string(path).unwrap_or_default();
        if &hash_line(now.as_bytes()) != recorded {
            let before = copy_of(state, run_id, ENVIRONMENT_FILE);
            let diff = report::diff::unified(Some(&before), Some(&now));
            if !allow_changed {
                eprintln!(
                    "error: refused: the environment {} changed since run {run_id} started:\n{diff}\n  help: restore it, or pass --allow-changed to resume against the new file",
                    path.display()
                );
                return Exit::Refused;
            }
            eprintln!("note: resuming with a changed environment (--allow-changed):\n{diff}");
        }
    }
    let request = CheckRequest {
        playbook: record.playbook_path.clone(),
        environment: record
            .environment_path
            .as_ref()
            .map(|p| p.display().to_string()),
        sets: Vec::new(),
        env_inputs: Vec::new(),
        vars_files: Vec::new(),
        require_inputs: true,
        preset: record.inputs.clone(),
    };
    let Some(checked) = checked(registry, &request) else {
        return Exit::Invalid;
    };
    let key = record.lock_key();
    let held = match state.acquire(&key, &owner(run_id)) {
        Ok(held) => {
            if let Some(previous) = held.taken_back_from() {
                eprintln!("note: took back the lock on `{key}` left by {previous}");
            }
            Some(held)
        }
        Err(e) => {
            lock_refusal(&e);
            return Exit::Refused;
        }
    };
    // Refused from here on: give back a lock this attempt took fresh (a lock the
    // run already held stays with it).
    let refuse = |held: Option<Box<dyn HeldLock>>, exit: Exit| {
        if let Some(held) = held {
            if held.taken_back_from().is_none() {
                let _ = held.release(false);
            } else {
                held.keep();
            }
        }
        exit
    };
    let (mut journal, contents) = match state.open_journal(run_id) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: {e}");
            return refuse(held, Exit::Refused);
        }
    };
    if let Some((line, why)) = &contents.broken {
        eprintln!(
            "error: refused: the journal of run {run_id} is broken at record {line}: {why}\n  help: `runsheet show {run_id} --verify`; a tampered journal cannot be resumed"
        );
        return refuse(held, Exit::Refused);
    }
    if contents.truncated_tail {
        eprintln!("note: the journal's last record was cut short (a crash while writing it); it was dropped");
    }
    let mut prior = Prior::from_records(&contents.records);
    if let Err(message) = resolve(&mut prior, resume.resolved) {
        eprintln!("error: {message}");
        return refuse(held, Exit::Invalid);
    }
    let window = match window.map(Window::parse).transpose() {
        Ok(found) => found.or_else(|| record.window.as_deref().and_then(|w| Window::parse(w).ok())),
        Err(e) => {
            eprintln!("error: --window: {e}");
            return refuse(held, Exit::Invalid);
        }
    };
    if mode == Mode::Run
        && let Some(window) = window
        && window.left_at(jiff::Timestamp::now()).is_none()
    {
        eprintln!(
            "error: refused: run {run_id} is outside its change window {window}\n  help: pass the next window: runsheet resume {run_id} --window START/END"
        );
        return refuse(held, Exit::Refused);
    }
    // What a person resolved is kept, so a later resume does not ask again.
    for item in resume.resolved {
        if let Some((step, how)) = item.split_once('=')
            && let Err(e) = journal.append(
                "resolved",
                serde_json::Map::from_iter([
                    ("step".to_owned(), json!(step)),
                    ("how".to_owned(), json!(how)),
                    ("by".to_owned(), json!(args.approver.clone().unwrap_or_else(os_user))),
                ]),
                true,
            )
        {
            eprintln!("error: {e}");
            return refuse(held, Exit::Refused);
        }
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(exit) => return refuse(held, exit),
    };
    let twins_dir = crate::state::TwinsDir::restore(state, run_id);
    let (checked, twins) = match crate::twin::embed(&runtime, checked, Some(&twins_dir.path)) {
        Ok(embedded) => embedded,
        Err(exit) => return refuse(held, exit),
    };
    let history = state.history(&checked.playbook.name.value, None);
    let outlook = Outlook::new(&history, &checked.playbook);
    let playbook = record.playbook_path.clone();
    let options = RunOptions {
        run_id: run_id.to_owned(),
        dry_run: false,
        base_dir: base_dir(&playbook),
        window,
        window_end: if checked.playbook.window_end == runsheet_engine::model::WindowEndPolicy::Pause {
            WindowEnd::Pause
        } else {
            WindowEnd::Rollback
        },
        history,
        prior,
        resumed: true,
        mode,
        approver: Arc::new(OperatorApprover::new(
            approve.to_vec(),
            args.approver.clone().unwrap_or_else(os_user),
        )),
        observers: observers(args, outlook),
        journal: Some(journal),
        masker: Masker::default(),
        change_id: record.change_id.clone(),
    };
    let facts = facts(&checked, &playbook, run_id, record.change_id.clone(), record.window.clone(), false);
    let (result, summary, reports_ok) = runtime.block_on(drive(&checked, registry, options, &reports, facts, closure_out(args, report_dir, mode)));
    save_twins(&twins, state, run_id);
    conclude(state, record, held, &result, run_id, mode);
    let exit = if mode == Mode::Rollback && result.outcome == Outcome::RolledBack && reports_ok {
        // For this verb, undoing every write is the success.
        Exit::Success
    } else {
        finish_exit(result.outcome, reports_ok)
    };
    publish(report_dir, &summary, exit)
}
