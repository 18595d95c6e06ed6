//! `runsheet runs --stats PLAYBOOK`: p50/p95 durations of each step and of the
//! whole run over earlier runs, the figures the change-window check uses.

use std::path::Path;
use std::time::Duration;

use runsheet_engine::run::executor::human;
use runsheet_engine::run::timings::Timings;

use crate::cli::{OutputFormat, StateArgs};
use crate::exit::Exit;
use crate::render::{emit, json_text};

/// `runsheet runs --stats PLAYBOOK [--env ENV]`.
pub fn stats(args: &StateArgs, playbook: &str, env: Option<&str>, output: OutputFormat) -> Exit {
    let store = match args.open() {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    let playbook = playbook_name(playbook);
    let environment = env.map(crate::history::environment_name);
    let timings = Timings::load(store.as_ref(), &playbook, environment.as_deref());
    if timings.runs == 0
        && let Err(unknown) = known_playbook(store.as_ref(), &playbook)
    {
        eprintln!("error: {unknown}");
        return Exit::Invalid;
    }
    match output {
        OutputFormat::Json => emit(&json_text(&timings)),
        OutputFormat::Human => emit(&human_timings(&timings, &args.state_dir)),
    }
    Exit::Success
}

/// `Ok` when the state holds a run of `playbook`, or no run at all; otherwise what to
/// say, with the playbooks it holds runs of (a mistyped name must not read as "no
/// durations yet").
fn known_playbook(store: &dyn runsheet_engine::run::store::Store, playbook: &str) -> Result<(), String> {
    let runs = store.list().map_err(|error| error.to_string())?;
    let mut names: Vec<&str> = runs.iter().map(|run| run.playbook.as_str()).collect();
    // An empty state (a first rehearsal) has nothing to check the name against.
    if names.is_empty() || names.contains(&playbook) {
        return Ok(());
    }
    names.sort_unstable();
    names.dedup();
    let known = format!("playbooks with runs there: {}", names.join(", "));
    let hint = runsheet_engine::suggest::did_you_mean(playbook, names.iter().copied())
        .map(|hint| format!("\n  help: {hint}"))
        .unwrap_or_default();
    Err(format!(
        "no run of playbook `{playbook}` is recorded in {}; {known}{hint}",
        store.place()
    ))
}

/// A playbook given by name or file: the name its runs are recorded under.
fn playbook_name(playbook: &str) -> String {
    let path = Path::new(playbook);
    if path.is_file()
        && let Ok(file) = runsheet_engine::loader::read_source(path)
        && let (Some(loaded), _) = runsheet_engine::loader::load_playbook(&file)
    {
        return loaded.name.value;
    }
    playbook.to_owned()
}

/// The figures for people.
fn human_timings(timings: &Timings, state_dir: &Path) -> String {
    let on = timings
        .environment
        .as_deref()
        .map(|e| format!(" on `{e}`"))
        .unwrap_or_default();
    if timings.runs == 0 {
        return format!(
            "no durations recorded for playbook `{}`{on} in {} (dry runs record none)\n",
            timings.playbook,
            state_dir.display()
        );
    }
    let ms = |ms: u64| human(Duration::from_millis(ms));
    let mut out = format!(
        "durations of playbook `{}`{on}, from {} run(s) (p50/p95, nearest rank)\n",
        timings.playbook, timings.runs
    );
    match &timings.run {
        Some(run) => out.push_str(&format!(
            "  whole run: p50 {}  p95 {}  ({} succeeded run(s); working time, pauses between resumes excluded)\n",
            ms(run.p50_ms),
            ms(run.p95_ms),
            run.samples
        )),
        None => out.push_str("  whole run: no run succeeded yet\n"),
    }
    let width = timings
        .steps
        .iter()
        .map(|s| s.path.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "  {:<width$}  {:>7}  {:>8}  {:>8}\n",
        "STEP", "SAMPLES", "P50", "P95"
    ));
    for step in &timings.steps {
        out.push_str(&format!(
            "  {:<width$}  {:>7}  {:>8}  {:>8}\n",
            step.path,
            step.samples,
            ms(step.p50_ms),
            ms(step.p95_ms)
        ));
    }
    out
}
