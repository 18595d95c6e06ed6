//! Environment locks: one run changes an environment at a time.
//!
//! A lock is a file `<state>/locks/<env>.lock` holding its owner, and an OS
//! lock (flock) on it while the owner's process lives. An owner record without
//! the OS lock is stale: its process died, paused at a gate, or left work for a
//! person. Only `resume` of that run or `unlock` clears it; nothing steals it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The run.
    pub run: String,
    /// Its process id.
    pub pid: u32,
    /// The machine.
    pub host: String,
    /// The OS user.
    pub user: String,
    /// When it took the lock.
    pub since: String,
    /// The CI pipeline it runs in (`HARNESS_PIPELINE_ID`, `CI_PIPELINE_ID`, ...), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Its last heartbeat, for backends that keep one (a database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<String>,
}

/// The CI pipeline this process runs in, from the variables CI systems set.
pub fn pipeline_id() -> Option<String> {
    const VARIABLES: [&str; 6] = [
        "HARNESS_PIPELINE_EXECUTION_ID",
        "HARNESS_EXECUTION_ID",
        "CI_PIPELINE_ID",
        "GITHUB_RUN_ID",
        "BUILD_BUILDID",
        "BUILD_TAG",
    ];
    VARIABLES.iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| format!("{name}={v}"))
    })
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} (pid {} on {}, user {}, since {}",
            self.run, self.pid, self.host, self.user, self.since
        )?;
        if let Some(pipeline) = &self.pipeline {
            write!(f, ", pipeline {pipeline}")?;
        }
        if let Some(heartbeat) = &self.heartbeat {
            write!(f, ", last heartbeat {heartbeat}")?;
        }
        f.write_str(")")
    }
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A live process holds it.
    #[error("environment `{environment}` is locked by {owner}, which is still running")]
    Held {
        /// The environment.
        environment: String,
        /// The holder.
        owner: Owner,
    },
    /// A run that is not running any more holds it.
    #[error("environment `{environment}` is held by {owner}, whose process is gone (paused, crashed or waiting for a person)")]
    Stale {
        /// The environment.
        environment: String,
        /// The holder.
        owner: Owner,
    },
    /// The file system refused.
    #[error("lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A state backend other than the file system refused (a database).
    #[error("lock on environment `{environment}` in {place}: {message}")]
    Backend {
        /// The environment.
        environment: String,
        /// The backend, with no secret in it.
        place: String,
        /// Why.
        message: String,
    },
}

/// A held environment lock; dropping it keeps the owner record (a stale lock),
/// [`EnvLock::release`] clears it.
#[derive(Debug)]
pub struct EnvLock {
    file: File,
    path: PathBuf,
    /// The previous owner whose stale lock this run took back, if any.
    pub taken_back_from: Option<Owner>,
}

/// The lock file of an environment.
pub fn lock_path(state_dir: &Path, environment: &str) -> PathBuf {
    state_dir.join("locks").join(format!("{environment}.lock"))
}

/// Takes the environment's lock for `owner`; a stale lock of the same run is taken back.
pub fn acquire(state_dir: &Path, environment: &str, owner: &Owner) -> Result<EnvLock, LockError> {
    let path = lock_path(state_dir, environment);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(LockError::Held {
                environment: environment.to_owned(),
                owner: holder(&mut file),
            });
        }
        Err(TryLockError::Error(source)) => return Err(io(source)),
    }
    let previous = read_owner(&mut file);
    let mut taken_back_from = None;
    if let Some(previous) = previous {
        if previous.run != owner.run {
            return Err(LockError::Stale {
                environment: environment.to_owned(),
                owner: previous,
            });
        }
        taken_back_from = Some(previous);
    }
    write_owner(&mut file, Some(owner)).map_err(io)?;
    Ok(EnvLock {
        file,
        path,
        taken_back_from,
    })
}

impl EnvLock {
    /// Clears the owner record and lets the lock go.
    pub fn release(mut self) -> Result<(), LockError> {
        write_owner(&mut self.file, None).map_err(|source| LockError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// The owner recorded in an environment's lock, and whether its process still
/// runs. It only reads: taking the OS lock, even for a moment, could make a run
/// starting at that moment believe the environment is held.
pub fn inspect(state_dir: &Path, environment: &str) -> Result<Option<(Owner, bool)>, LockError> {
    let path = lock_path(state_dir, environment);
    let mut file = match OpenOptions::new().read(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LockError::Io { path, source }),
    };
    let Some(owner) = read_owner(&mut file) else {
        return Ok(None);
    };
    let here = super::state::host_name();
    let alive = owner.host == here && Path::new("/proc").join(owner.pid.to_string()).exists();
    Ok(Some((owner, alive)))
}

/// Clears a stale lock; a lock whose process still runs is refused.
pub fn unlock(state_dir: &Path, environment: &str) -> Result<Option<Owner>, LockError> {
    let path = lock_path(state_dir, environment);
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LockError::Io { path, source }),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(LockError::Held {
                environment: environment.to_owned(),
                owner: holder(&mut file),
            });
        }
        Err(TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
    }
    let owner = read_owner(&mut file);
    write_owner(&mut file, None).map_err(|source| LockError::Io { path, source })?;
    Ok(owner)
}

/// How long a run refused by a held lock waits for the holder's owner record: a run
/// that took the lock a moment ago may not have written it yet.
const OWNER_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The owner of a lock another process holds, waiting up to [`OWNER_WAIT`] for a
/// record still being written.
fn holder(file: &mut File) -> Owner {
    let started = std::time::Instant::now();
    loop {
        match read_owner(file) {
            Some(owner) if owner.pid != 0 => return owner,
            found if started.elapsed() >= OWNER_WAIT => {
                return found.unwrap_or_else(unknown_owner);
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

fn read_owner(file: &mut File) -> Option<Owner> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    if text.trim().is_empty() {
        return None;
    }
    Some(serde_json::from_str(&text).unwrap_or_else(|_| unknown_owner()))
}

fn write_owner(file: &mut File, owner: Option<&Owner>) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    if let Some(owner) = owner {
        let text = serde_json::to_string(owner).map_err(std::io::Error::other)?;
        file.write_all(text.as_bytes())?;
    }
    file.sync_data()
}

fn unknown_owner() -> Owner {
    Owner {
        run: "(unreadable lock file)".into(),
        pid: 0,
        host: "?".into(),
        user: "?".into(),
        since: "?".into(),
        pipeline: None,
        heartbeat: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(run: &str) -> Owner {
        Owner {
            run: run.into(),
            pid: std::process::id(),
            host: crate::run::state::host_name(),
            user: "me".into(),
            since: "now".into(),
            pipeline: None,
            heartbeat: None,
        }
    }

    #[test]
    fn a_held_lock_refuses_others_and_a_stale_one_is_taken_back_only_by_its_run()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let first = acquire(dir.path(), "uat", &owner("r1"))?;
        assert!(matches!(
            acquire(dir.path(), "uat", &owner("r2")),
            Err(LockError::Held { owner, .. }) if owner.run == "r1"
        ));
        assert_eq!(inspect(dir.path(), "uat")?.map(|(o, alive)| (o.run, alive)), Some(("r1".into(), true)));
        drop(first); // The process "dies": the owner record stays.
        assert!(matches!(
            acquire(dir.path(), "uat", &owner("r2")),
            Err(LockError::Stale { owner, .. }) if owner.run == "r1"
        ));
        let again = acquire(dir.path(), "uat", &owner("r1"))?;
        assert_eq!(again.taken_back_from.as_ref().map(|o| o.run.as_str()), Some("r1"));
        again.release()?;
        acquire(dir.path(), "uat", &owner("r2"))?.release()?;
        Ok(())
    }

    #[test]
    fn a_run_refused_while_the_holder_writes_its_record_names_the_holder()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = lock_path(dir.path(), "uat");
        std::fs::create_dir_all(dir.path().join("locks"))?;
        // The holder has the OS lock but has not written its record yet.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        file.try_lock()?;
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            write_owner(&mut file, Some(&owner("r1"))).map(|()| file)
        });
        let refused = acquire(dir.path(), "uat", &owner("r2"));
        let _held = writer.join().map_err(|_| "writer panicked")??;
        assert!(
            matches!(&refused, Err(LockError::Held { owner, .. }) if owner.run == "r1"),
            "{refused:?}"
        );
        Ok(())
    }

    #[test]
    fn unlock_clears_only_stale_locks() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let held = acquire(dir.path(), "prod", &owner("r1"))?;
        assert!(matches!(unlock(dir.path(), "prod"), Err(LockError::Held { .. })));
        drop(held);
        assert_eq!(unlock(dir.path(), "prod")?.map(|o| o.run), Some("r1".into()));
        assert!(inspect(dir.path(), "prod")?.is_none());
        Ok(())
    }
}
