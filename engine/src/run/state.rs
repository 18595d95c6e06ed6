//! The state directory: one directory per run (`runs/<RUN>/`) holding the run's
//! record, its journal and copies of the playbook and environment as loaded.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Default state directory, relative to the working directory.
pub const DEFAULT_STATE_DIR: &str = ".runsheet";

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file system refused.
    #[error("state directory: {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No such run.
    #[error("no run `{run}` in {place}")]
    UnknownRun {
        /// The id asked for.
        run: String,
        /// The state directory or database (no secret in it).
        place: String,
    },
    /// A state backend other than the file system refused (a database).
    #[error("state in {place}: {message}")]
    Backend {
        /// The backend, with no secret in it.
        place: String,
        /// Why.
        message: String,
    },
    /// A run record that does not parse.
    #[error("run record {path} is damaged: {message}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// What is kept about a run besides its journal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub id: String,
    /// Playbook name.
    pub playbook: String,
    /// Playbook file (absolute).
    pub playbook_path: PathBuf,
    /// SHA-256 of the playbook file when the run started.
    pub playbook_sha256: String,
    /// Environment name.
    pub environment: Option<String>,
    /// Environment file (absolute).
    pub environment_path: Option<PathBuf>,
    /// SHA-256 of the environment file.
    pub environment_sha256: Option<String>,
    /// Input values (a `secret` input holds a secret's name, never its value).
    pub inputs: Map<String, Value>,
    /// Change id.
    pub change_id: Option<String>,
    /// Change window `START/END`.
    pub window: Option<String>,
    /// Who started it.
    pub operator: String,
    /// When it started.
    pub started_at: String,
    /// When it last ended (absent while running).
    pub finished_at: Option<String>,
    /// running, succeeded, rolled_back, needs_attention, paused, interrupted.
    pub state: String,
    /// Process that last ran it.
    pub pid: u32,
}

impl RunRecord {
    /// What the run locks: its environment, or (without one) the run itself, so two
    /// `resume`s of one run cannot overlap.
    pub fn lock_key(&self) -> String {
        self.environment
            .clone()
            .unwrap_or_else(|| format!("run-{}", self.id))
    }
}

/// A state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Its path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a run.
    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.root.join("runs").join(run)
    }

    /// The journal of a run.
    pub fn journal_path(&self, run: &str) -> PathBuf {
        self.run_dir(run).join("journal.jsonl")
    }

    /// Creates a run's directory, complete or not at all: its record, copies of
    /// its files and an empty journal are written aside, then renamed into place.
    pub fn create_run(
        &self,
        record: &RunRecord,
        playbook_text: &str,
        environment_text: Option<&str>,
    ) -> Result<PathBuf, StateError> {
        let dir = self.run_dir(&record.id);
        let aside = self.root.join("runs").join(format!(".{}.creating", record.id));
        std::fs::create_dir_all(&aside).map_err(|source| io(&aside, source))?;
        write_atomic(&aside.join("playbook.yaml"), playbook_text.as_bytes())?;
        if let Some(text) = environment_text {
            write_atomic(&aside.join("environment.yaml"), text.as_bytes())?;
        }
        write_atomic(&aside.join("journal.jsonl"), b"")?;
        let text = serde_json::to_vec_pretty(record).map_err(|e| StateError::Damaged {
            path: aside.join("run.json"),
            message: e.to_string(),
        })?;
        write_atomic(&aside.join("run.json"), &text)?;
        std::fs::rename(&aside, &dir).map_err(|source| io(&dir, source))?;
        if let Ok(runs) = std::fs::File::open(self.root.join("runs")) {
            let _ = runs.sync_all();
        }
        Ok(dir)
    }

    /// Removes a run that never started (its lock was refused).
    pub fn discard_run(&self, run: &str) -> Result<(), StateError> {
        let dir = self.run_dir(run);
        std::fs::remove_dir_all(&dir).map_err(|source| io(&dir, source))
    }

    /// Writes a run's record.
    pub fn save(&self, record: &RunRecord) -> Result<(), StateError> {
        let path = self.run_dir(&record.id).join("run.json");
        let text = serde_json::to_vec_pretty(record).map_err(|e| StateError::Damaged {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&path, &text)
    }

    /// Reads a run's record.
    pub fn load(&self, run: &str) -> Result<RunRecord, StateError> {
        let path = self.run_dir(run).join("run.json");
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::UnknownRun {
                    run: run.to_owned(),
                    place: self.root.display().to_string(),
                });
            }
            Err(source) => return Err(io(&path, source)),
        };
        serde_json::from_slice(&text).map_err(|e| StateError::Damaged {
            path,
            message: e.to_string(),
        })
    }

    /// The playbook text as it was when the run started.
    pub fn playbook_copy(&self, run: &str) -> Option<String> {
        std::fs::read_to_string(self.run_dir(run).join("playbook.yaml")).ok()
    }

    /// Every run's record, newest first; damaged records are skipped.
    pub fn list(&self) -> Result<Vec<RunRecord>, StateError> {
        let dir = self.root.join("runs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(io(&dir, source)),
        };
        let mut runs: Vec<RunRecord> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .filter_map(|name| self.load(&name).ok())
            .collect();
        runs.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        Ok(runs)
    }
}

/// Options that create a file only its owner can read (mode 0600 on Unix): run files and
/// journals hold undo records, which may hold the values a step replaced.
pub fn owner_only() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Writes a file through a temporary file and a rename, durably (mode 0600).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    use std::io::Write as _;
    let temporary = path.with_extension("tmp");
    let mut file = owner_only()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)
        .map_err(|source| io(&temporary, source))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_data())
        .map_err(|source| io(&temporary, source))?;
    std::fs::rename(&temporary, path).map_err(|source| io(path, source))
}

fn io(path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A new run id: UTC time and a short random suffix (`20261126-151230-3fa9`).
pub fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    let nanos = now.subsec_nanosecond() as u64;
    let mixed = (nanos ^ (u64::from(std::process::id()) << 20)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{}-{:04x}", now.strftime("%Y%m%d-%H%M%S"), (mixed >> 48) as u16)
}

/// The OS user running this process: `$USER`, `$LOGNAME`, else the name of
/// the process's uid in /etc/passwd (pipelines often set neither variable).
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".into())
}

fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2) == Some(&uid.as_str())).then(|| fields[0].to_owned())
    })
}

/// This machine's name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
