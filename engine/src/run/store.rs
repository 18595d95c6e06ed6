//! Where runs are kept: one trait, [`Store`], for the local state directory
//! ([`LocalStore`]) and for shared backends (a database) that other crates
//! implement. Every verb reads and writes runs, journals, the run's files and
//! environment locks through it, so they behave the same on every backend.

use std::path::{Path, PathBuf};

use super::journal::{self, Contents, Journal, JournalError, JournalWriter};
use super::lock::{self, EnvLock, LockError, Owner};
use super::state::{RunRecord, StateDir, StateError, write_atomic};
use super::window::History;

/// The file names a run keeps besides its record and journal.
pub const PLAYBOOK_FILE: &str = "playbook.yaml";
/// The environment file as the run loaded it.
pub const ENVIRONMENT_FILE: &str = "environment.yaml";

/// A run as a whole, to move it between backends.
#[derive(Debug, Clone)]
pub struct RunExport {
    /// The run's record.
    pub record: RunRecord,
    /// Its files (`playbook.yaml`, `environment.yaml`, `twins/NAME.json`), by relative name.
    pub files: Vec<(String, Vec<u8>)>,
    /// Its journal lines, verbatim (the hash chain covers these bytes).
    pub journal: Vec<Vec<u8>>,
}

/// Runs, journals, run files and environment locks, wherever they are kept.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where this is, for messages (never with a secret in it).
    fn place(&self) -> String;
    /// Creates a run, complete or not at all: its record, its files and an empty journal.
    fn create_run(
        &self,
        record: &RunRecord,
        playbook_text: &str,
        environment_text: Option<&str>,
    ) -> Result<(), StateError>;
    /// Removes a run that never started (its lock was refused).
    fn discard_run(&self, run: &str) -> Result<(), StateError>;
    /// Writes a run's record.
    fn save(&self, record: &RunRecord) -> Result<(), StateError>;
    /// Reads a run's record.
    fn load(&self, run: &str) -> Result<RunRecord, StateError>;
    /// Every run's record, newest first.
    fn list(&self) -> Result<Vec<RunRecord>, StateError>;
    /// One of a run's files by relative name, if it has it.
    fn file(&self, run: &str, name: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Writes one of a run's files.
    fn put_file(&self, run: &str, name: &str, bytes: &[u8]) -> Result<(), StateError>;
    /// Every file of a run, by relative name.
    fn files(&self, run: &str) -> Result<Vec<(String, Vec<u8>)>, StateError>;
    /// Opens a run's journal to append, after checking its chain.
    fn open_journal(&self, run: &str) -> Result<(Box<dyn JournalWriter>, Contents), JournalError>;
    /// Reads a run's journal and checks its chain.
    fn read_journal(&self, run: &str) -> Result<Contents, JournalError>;
    /// A run's journal lines as stored, for export.
    fn journal_lines(&self, run: &str) -> Result<Vec<Vec<u8>>, JournalError>;
    /// Adds a whole run taken from another backend; a run of that id must not exist.
    fn import_run(&self, run: &RunExport) -> Result<(), StateError>;
    /// Step and run durations of earlier runs of `playbook` (against `environment`, when given).
    fn history(&self, playbook: &str, environment: Option<&str>) -> History {
        let mut history = History::default();
        let Ok(runs) = self.list() else {
            return history;
        };
        let wanted = runs
            .iter()
            .filter(|r| r.playbook == playbook)
            .filter(|r| environment.is_none_or(|name| r.environment.as_deref() == Some(name)));
        for run in wanted {
            if let Ok(contents) = self.read_journal(&run.id) {
                history.add_run(&contents.records);
            }
        }
        history
    }
    /// Takes an environment's lock for `owner`; a stale lock of the same run is taken back.
    fn acquire(&self, environment: &str, owner: &Owner) -> Result<Box<dyn HeldLock>, LockError>;
    /// The owner of an environment's lock, and whether it is still alive.
    fn inspect(&self, environment: &str) -> Result<Option<(Owner, bool)>, LockError>;
    /// Clears a stale lock; a live one is refused.
    fn unlock(&self, environment: &str) -> Result<Option<Owner>, LockError>;
}

/// A held environment lock.
pub trait HeldLock: Send + std::fmt::Debug {
    /// The previous owner whose stale lock this run took back, if any.
    fn taken_back_from(&self) -> Option<&Owner>;
    /// Clears the owner and lets the lock go; `forget` also removes the lock's entry.
    fn release(self: Box<Self>, forget: bool) -> Result<(), LockError>;
    /// Keeps the owner record after this process ends (paused, needs a person): a stale lock.
    fn keep(self: Box<Self>);
}

/// The local state directory as a [`Store`].
#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: StateDir,
}

impl LocalStore {
    /// The state directory at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore {
            dir: StateDir::new(root),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &StateDir {
        &self.dir
    }
}

fn io(path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether a run file name stays inside the run's directory.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

fn checked_path(base: &Path, name: &str) -> Result<PathBuf, StateError> {
    if safe_name(name) {
        Ok(base.join(name))
    } else {
        Err(StateError::Damaged {
            path: base.to_path_buf(),
            message: format!("`{name}` is not a file name inside a run"),
        })
    }
}

fn walk(base: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), StateError> {
    let dir = if prefix.is_empty() {
        base.to_path_buf()
    } else {
        base.join(prefix)
    };
    let entries = std::fs::read_dir(&dir).map_err(|source| io(&dir, source))?;
    let mut names: Vec<(String, bool)> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            (e.file_name().to_string_lossy().into_owned(), is_dir)
        })
        .collect();
    names.sort();
    for (name, is_dir) in names {
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if is_dir {
            walk(base, &relative, out)?;
        } else if !matches!(relative.as_str(), "run.json" | "journal.jsonl")
            && !name.ends_with(".tmp")
        {
            let path = base.join(&relative);
            let bytes = std::fs::read(&path).map_err(|source| io(&path, source))?;
            out.push((relative, bytes));
        }
    }
    Ok(())
}

impl Store for LocalStore {
    fn place(&self) -> String {
        self.dir.root().display().to_string()
    }

    fn create_run(
        &self,
        record: &RunRecord,
        playbook_text: &str,
        environment_text: Option<&str>,
    ) -> Result<(), StateError> {
        self.dir
            .create_run(record, playbook_text, environment_text)
            .map(|_| ())
    }

    fn discard_run(&self, run: &str) -> Result<(), StateError> {
        self.dir.discard_run(run)
    }

    fn save(&self, record: &RunRecord) -> Result<(), StateError> {
        self.dir.save(record)
    }

    fn load(&self, run: &str) -> Result<RunRecord, StateError> {
        self.dir.load(run)
    }

    fn list(&self) -> Result<Vec<RunRecord>, StateError> {
        self.dir.list()
    }

    fn file(&self, run: &str, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let path = checked_path(&self.dir.run_dir(run), name)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(io(&path, source)),
        }
    }

    fn put_file(&self, run: &str, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let path = checked_path(&self.dir.run_dir(run), name)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| io(parent, source))?;
        }
        write_atomic(&path, bytes)
    }

    fn files(&self, run: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        self.dir.load(run)?;
        let mut out = Vec::new();
        walk(&self.dir.run_dir(run), "", &mut out)?;
        Ok(out)
    }

    fn open_journal(&self, run: &str) -> Result<(Box<dyn JournalWriter>, Contents), JournalError> {
        let (journal, contents) = Journal::reopen(&self.dir.journal_path(run))?;
        Ok((Box::new(journal), contents))
    }

    fn read_journal(&self, run: &str) -> Result<Contents, JournalError> {
        journal::read(&self.dir.journal_path(run))
    }

    fn journal_lines(&self, run: &str) -> Result<Vec<Vec<u8>>, JournalError> {
        journal::raw_lines(&self.dir.journal_path(run))
    }

    fn import_run(&self, run: &RunExport) -> Result<(), StateError> {
        let id = &run.record.id;
        let dir = self.dir.run_dir(id);
        if dir.exists() {
            return Err(StateError::Damaged {
                path: dir,
                message: "a run of this id is already here".into(),
            });
        }
        let aside = self
            .dir
            .root()
            .join("runs")
            .join(format!(".{id}.importing"));
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::create_dir_all(&aside).map_err(|source| io(&aside, source))?;
        for (name, bytes) in &run.files {
            let path = checked_path(&aside, name)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| io(parent, source))?;
            }
            write_atomic(&path, bytes)?;
        }
        let mut journal = Vec::new();
        for line in &run.journal {
            journal.extend_from_slice(line);
            journal.push(b'\n');
        }
        write_atomic(&aside.join("journal.jsonl"), &journal)?;
        let text = serde_json::to_vec_pretty(&run.record).map_err(|e| StateError::Damaged {
            path: aside.join("run.json"),
            message: e.to_string(),
        })?;
        write_atomic(&aside.join("run.json"), &text)?;
        std::fs::rename(&aside, &dir).map_err(|source| io(&dir, source))
    }

    fn acquire(&self, environment: &str, owner: &Owner) -> Result<Box<dyn HeldLock>, LockError> {
        let held = lock::acquire(self.dir.root(), environment, owner)?;
        Ok(Box::new(LocalLock {
            held,
            path: lock::lock_path(self.dir.root(), environment),
        }))
    }

    fn inspect(&self, environment: &str) -> Result<Option<(Owner, bool)>, LockError> {
        lock::inspect(self.dir.root(), environment)
    }

    fn unlock(&self, environment: &str) -> Result<Option<Owner>, LockError> {
        lock::unlock(self.dir.root(), environment)
    }
}

/// A lock file held through [`LocalStore`].
#[derive(Debug)]
struct LocalLock {
    held: EnvLock,
    path: PathBuf,
}

impl HeldLock for LocalLock {
    fn taken_back_from(&self) -> Option<&Owner> {
        self.held.taken_back_from.as_ref()
    }

    fn release(self: Box<Self>, forget: bool) -> Result<(), LockError> {
        let LocalLock { held, path } = *self;
        held.release()?;
        if forget {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    fn keep(self: Box<Self>) {}
}

/// Copies a whole run out of a store.
pub fn export_run(store: &dyn Store, run: &str) -> Result<RunExport, String> {
    let record = store.load(run).map_err(|e| e.to_string())?;
    let files = store.files(run).map_err(|e| e.to_string())?;
    let contents = store.read_journal(run).map_err(|e| e.to_string())?;
    if let Some((line, why)) = contents.broken {
        return Err(format!(
            "the journal of run {run} in {} is broken at record {line}: {why}; a tampered journal is not moved",
            store.place()
        ));
    }
    let mut journal = store.journal_lines(run).map_err(|e| e.to_string())?;
    journal.truncate(contents.records.len());
    Ok(RunExport {
        record,
        files,
        journal,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    #[cfg(unix)]
    #[test]
    fn run_files_and_journals_are_readable_by_their_owner_only()
    -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir()?;
        let store = LocalStore::new(dir.path());
        let record = RunRecord {
            id: "r1".into(),
            playbook: "p".into(),
            ..RunRecord::default()
        };
        store.create_run(&record, "name: p\n", None)?;
        store.put_file("r1", "undo/secret.json", b"{}")?;
        let (mut journal, _) = store.open_journal("r1")?;
        journal.append("run_started", Map::new(), true)?;
        drop(journal);
        let mut seen = 0;
        let mut pending = vec![store.dir().run_dir("r1")];
        while let Some(path) = pending.pop() {
            for entry in std::fs::read_dir(&path)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    pending.push(entry.path());
                    continue;
                }
                let mode = entry.metadata()?.permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", entry.path().display());
                seen += 1;
            }
        }
        assert!(seen >= 4, "run record, playbook, file and journal: {seen} files");
        Ok(())
    }

    #[test]
    fn a_run_exported_from_one_directory_imports_into_another_with_its_chain()
    -> Result<(), Box<dyn std::error::Error>> {
        let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let (from, to) = (LocalStore::new(a.path()), LocalStore::new(b.path()));
        let record = RunRecord {
            id: "r1".into(),
            playbook: "p".into(),
            state: "paused".into(),
            ..RunRecord::default()
        };
        from.create_run(&record, "name: p\n", Some("name: uat\n"))?;
        from.put_file("r1", "twins/kong.json", b"{}")?;
        let (mut journal, _) = from.open_journal("r1")?;
        journal.append("run_started", Map::new(), true)?;
        journal.append("paused", Map::new(), true)?;
        drop(journal);
        let export = export_run(&from, "r1")?;
        assert_eq!(
            export
                .files
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["environment.yaml", "playbook.yaml", "twins/kong.json"]
        );
        to.import_run(&export)?;
        let contents = to.read_journal("r1")?;
        assert!(contents.broken.is_none());
        assert_eq!(contents.records.len(), 2);
        assert_eq!(to.load("r1")?.state, "paused");
        assert_eq!(
            to.file("r1", "twins/kong.json")?.as_deref(),
            Some(&b"{}"[..])
        );
        assert!(
            to.import_run(&export).is_err(),
            "a second import of one run is refused"
        );
        assert!(to.file("r1", "../r2/x").is_err());
        Ok(())
    }
}
