//! Choosing the state backend (`--state DIR|postgres://...`, else
//! `--state-dir`) and the `runsheet state` verbs: migrate, export, import.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use runsheet_engine::run::store::{LocalStore, Store, export_run};
use runsheet_state_pg::{PgStore, is_postgres_url, looks_like_url};

use crate::cli::StateCommand;
use crate::exit::Exit;

/// Opens the backend a state string names: `postgres://...` (or
/// `postgresql://...`) is a database, anything else a state directory.
/// A database's schema is created or migrated on first use.
pub fn open_store(state: &str) -> Result<Arc<dyn Store>, String> {
    if is_postgres_url(state) {
        let store = PgStore::open(state)?;
        if store.insecure() {
            eprintln!(
                "warning: TLS verification is OFF for the state database {} (sslinsecure)",
                store.place()
            );
        }
        return Ok(Arc::new(store));
    }
    if looks_like_url(state) {
        // A mistyped URL taken for a directory would keep runs and locks on this runner
        // only: two pipelines could both change one environment.
        return Err("the state looks like a URL but is not postgres://USER@HOST:PORT/DB (or postgresql://); refused rather than used as a directory name".to_owned());
    }
    Ok(Arc::new(LocalStore::new(state)))
}

/// The backend of a verb: `--state` when given, else the state directory.
pub fn store_for(state: Option<&str>, state_dir: &Path) -> Result<Arc<dyn Store>, Exit> {
    let opened = match state.filter(|s| !s.is_empty()) {
        Some(state) => open_store(state),
        None => Ok(Arc::new(LocalStore::new(state_dir)) as Arc<dyn Store>),
    };
    opened.map_err(|message| {
        eprintln!(
            "error: {message}\n  help: check --state (or RUNSHEET_STATE) and that the database is reachable; the password comes from the URL or RUNSHEET_STATE_PASSWORD"
        );
        Exit::Refused
    })
}

/// `runsheet state ...`.
pub fn command(action: &StateCommand) -> Exit {
    match action {
        StateCommand::Migrate { state } => migrate(state),
        StateCommand::Export { run_id, state, to } => {
            move_run(run_id, database(state), Ok(local(to)))
        }
        StateCommand::Import {
            run_id,
            state,
            from,
        } => move_run(run_id, Ok(local(from)), database(state)),
    }
}

/// A database named by `--state`; a directory there is refused.
fn database(state: &str) -> Result<Arc<dyn Store>, String> {
    if !is_postgres_url(state) {
        return Err(format!(
            "--state `{state}` is not a postgres:// URL: export and import move runs between a state directory and a database"
        ));
    }
    open_store(state)
}

fn migrate(state: &str) -> Exit {
    if !is_postgres_url(state) {
        eprintln!(
            "error: --state `{state}` is not a postgres:// URL: a state directory has no schema to migrate"
        );
        return Exit::Invalid;
    }
    let store = match PgStore::open(state) {
        Ok(store) => store,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Refused;
        }
    };
    match store.migrate() {
        Ok(done) => {
            println!(
                "state database {}: schema version {} (this runsheet knows up to {})",
                store.place(),
                done.to,
                runsheet_state_pg::migrate::latest()
            );
            Exit::Success
        }
        Err(message) => {
            eprintln!("error: state database {}: {message}", store.place());
            Exit::Refused
        }
    }
}

fn local(dir: &Path) -> Arc<dyn Store> {
    Arc::new(LocalStore::new(dir))
}

type Opened = Result<Arc<dyn Store>, String>;

fn move_run(run: &str, from: Opened, to: Opened) -> Exit {
    let (from, to) = match (from, to) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(message), _) | (_, Err(message)) => {
            eprintln!("error: {message}");
            return Exit::Refused;
        }
    };
    let export = match export_run(from.as_ref(), run) {
        Ok(export) => export,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Invalid;
        }
    };
    if let Some(refusal) = unmovable(from.as_ref(), &export.record) {
        eprintln!("error: refused: {refusal}");
        return Exit::Refused;
    }
    if let Err(e) = to.import_run(&export) {
        eprintln!("error: run {run} was not copied into {}: {e}", to.place());
        return Exit::Refused;
    }
    println!(
        "copied run {run} ({}, {} journal record(s), hash chain intact) from {} to {}",
        export.record.state,
        export.journal.len(),
        from.place(),
        to.place()
    );
    if RESUMABLE.contains(&export.record.state.as_str()) {
        // One run must not be resumable in two places: the source copy stops here.
        if let Err(e) = mark_moved(from.as_ref(), export.record, &to.place()) {
            eprintln!(
                "error: run {run} was copied, but its copy in {} could not be marked moved: {e}; do not resume it there",
                from.place()
            );
            return Exit::RollbackFailed;
        }
        println!(
            "the copy in {} is marked moved and refuses resume and rollback: resume the run from {}",
            from.place(),
            to.place()
        );
    }
    Exit::Success
}

/// The run states a `resume` or `rollback` goes on from: moving such a run moves it.
const RESUMABLE: &[&str] = &["paused", "interrupted", "running"];

/// The state of a run that was moved elsewhere.
pub const MOVED: &str = "moved";

/// The run file that says where a moved run went.
pub const MOVED_TO_FILE: &str = "moved-to";

/// Why `record` cannot be moved out of `from`: moved already, or still running there.
fn unmovable(from: &dyn Store, record: &runsheet_engine::run::state::RunRecord) -> Option<String> {
    if record.state == MOVED {
        return Some(format!(
            "run {} was moved already ({}): move it from where it went",
            record.id,
            moved_to(from, &record.id)
        ));
    }
    let key = record.lock_key();
    match from.inspect(&key) {
        Ok(Some((owner, true))) if owner.run == record.id && record.state == "running" => {
            Some(format!(
                "run {} is running in {} (pid {} on {}): move it once it has stopped",
                record.id,
                from.place(),
                owner.pid,
                owner.host
            ))
        }
        _ => None,
    }
}

/// Marks the source copy of a moved run: its state `moved`, where it went, and its
/// environment lock (when it holds it) released, since locks do not move.
fn mark_moved(
    from: &dyn Store,
    mut record: runsheet_engine::run::state::RunRecord,
    to: &str,
) -> Result<(), String> {
    from.put_file(&record.id, MOVED_TO_FILE, to.as_bytes())
        .map_err(|e| e.to_string())?;
    record.state = MOVED.to_owned();
    from.save(&record).map_err(|e| e.to_string())?;
    let key = record.lock_key();
    if let Ok(Some((owner, _))) = from.inspect(&key)
        && owner.run == record.id
    {
        from.unlock(&key).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Where a moved run went, as the source copy records it.
pub fn moved_to(store: &dyn Store, run: &str) -> String {
    store
        .file(run, MOVED_TO_FILE)
        .ok()
        .flatten()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|| "another state".to_owned())
}

/// The embedded twins' saved state of a run, in a directory while the run goes.
pub struct TwinsDir {
    /// Where the twins read and write their state.
    pub path: PathBuf,
}

impl TwinsDir {
    /// Writes the run's saved twin states (`twins/NAME.json`) into a scratch directory.
    pub fn restore(store: &dyn Store, run: &str) -> TwinsDir {
        let path =
            std::env::temp_dir().join(format!("runsheet-twins-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        if let Ok(files) = store.files(run) {
            for (name, bytes) in files {
                if let Some(file) = name.strip_prefix("twins/")
                    && !file.contains('/')
                {
                    let _ = std::fs::create_dir_all(&path);
                    let _ = std::fs::write(path.join(file), bytes);
                }
            }
        }
        TwinsDir { path }
    }

    /// Keeps the twins' state with the run, and removes the scratch directory.
    pub fn keep(self, store: &dyn Store, run: &str) {
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let saved = std::fs::read(entry.path())
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| {
                        store
                            .put_file(run, &format!("twins/{name}"), &bytes)
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = saved {
                    eprintln!(
                        "warning: the twin state {name} was not saved ({e}); a resume starts it from its seed"
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
