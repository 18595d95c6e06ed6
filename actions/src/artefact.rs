//! Artefact files that read actions write (`kong.snapshot`, `layer7.export`): paths
//! relative to the playbook, atomic writes, content hashes, and the dry run's scratch
//! copies ([`write_artefact`]).
//!
//! A dry run writes no artefact where the playbook asks: a rehearsal must not overwrite
//! the pre-state an earlier run kept. Later steps of the same dry run still need the
//! file (a test-mode import of the bundle an export just took), so a dry run writes it
//! into a scratch directory that lives as long as the run, and the step's `path`
//! output names that copy.

use std::path::{Path, PathBuf};

use runsheet_engine::{ActionError, StepContext};
use sha2::{Digest as _, Sha256};

/// A path from the arguments, relative to the playbook's directory.
pub fn step_path(context: &StepContext, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_owned()
    } else {
        context.base_dir.join(path)
    }
}

/// The path an artefact is written to: [`step_path`], refusing a `..` that
/// follows a directory name (`snapshots/../../etc/x`) or appears in an
/// absolute path. A leading `..` (`../backups/x.yaml`, a directory beside the
/// playbook's) is allowed; a `..` further in is what a value with `..` spliced
/// into a templated path (`snapshots/{{ inputs.crq }}.yaml`) produces, and
/// would write outside the directory the playbook names.
pub fn artefact_path(context: &StepContext, path: &str) -> Result<PathBuf, ActionError> {
    check_no_climbing(path)?;
    Ok(step_path(context, path))
}

/// Fails when `path` climbs with `..` after a named directory or from the root.
pub fn check_no_climbing(path: &str) -> Result<(), ActionError> {
    use std::path::Component;
    let mut named = Path::new(path).is_absolute();
    for component in Path::new(path).components() {
        match component {
            Component::ParentDir if named => {
                return Err(ActionError::failed(format!(
                    "artefact path `{path}` climbs out of a directory it names with `..`; \
                     write the directory without `..` (a `..` may only lead a relative path)"
                )));
            }
            Component::Normal(_) => named = true,
            _ => {}
        }
    }
    Ok(())
}

/// The SHA-256 of bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Where an artefact went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    /// The file later steps read: the requested path, or a dry run's scratch copy.
    pub path: PathBuf,
    /// Whether it was written at the requested path (false in a dry run).
    pub written: bool,
}

impl Artefact {
    /// `wrote`, or `would write` for a dry run.
    pub fn verb(&self) -> &'static str {
        if self.written {
            "wrote"
        } else {
            "would write"
        }
    }
}

/// Writes an artefact at `path`, or in a dry run into the run's scratch directory
/// (under the same file name); `what` names it in errors.
pub async fn write_artefact(
    context: &StepContext,
    path: &Path,
    bytes: &[u8],
    what: &str,
) -> Result<Artefact, ActionError> {
    if !context.dry_run {
        write_atomically(path, bytes, what).await?;
        return Ok(Artefact {
            path: path.to_owned(),
            written: true,
        });
    }
    let scratch = context.resources.get_or_init(Scratch::new);
    let directory = scratch.directory(&context.step_id).map_err(|error| {
        ActionError::failed(format!("cannot make a scratch directory for {what}: {error}"))
    })?;
    let name = path.file_name().map_or_else(
        || std::ffi::OsString::from("artefact"),
        std::ffi::OsStr::to_owned,
    );
    let copy = directory.join(name);
    write_atomically(&copy, bytes, what).await?;
    Ok(Artefact {
        path: copy,
        written: false,
    })
}

/// A dry run's scratch directory, removed when the run ends (its resources are dropped).
#[derive(Debug)]
struct Scratch {
    /// The directory, or why it could not be made.
    directory: Result<tempfile::TempDir, String>,
}

impl Scratch {
    /// A new scratch directory under the system's temporary directory.
    fn new() -> Self {
        let directory = tempfile::Builder::new()
            .prefix("runsheet-dry-run-")
            .tempdir()
            .map_err(|error| error.to_string());
        Self { directory }
    }

    /// A subdirectory for one step (a step id may hold brackets and dots, not slashes).
    fn directory(&self, step: &str) -> Result<PathBuf, String> {
        let root = self.directory.as_ref().map_err(Clone::clone)?;
        let safe: String = step
            .chars()
            .map(|c| if c == '/' || c == '\\' { '_' } else { c })
            .collect();
        let directory = root.path().join(safe);
        std::fs::create_dir_all(&directory).map_err(|error| error.to_string())?;
        Ok(directory)
    }
}

/// Writes `bytes` to `path` through a synced temporary file renamed over it (mode 0600);
/// `what` names the file in errors (`snapshot`, `bundle`).
pub async fn write_atomically(path: &Path, bytes: &[u8], what: &str) -> Result<(), ActionError> {
    let (path, bytes) = (path.to_owned(), bytes.to_vec());
    let shown = path.display().to_string();
    let outcome = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write as _;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&directory)?;
        let mut temporary = tempfile::Builder::new()
            .prefix(".runsheet-artefact-")
            .tempfile_in(&directory)?;
        temporary.write_all(&bytes)?;
        temporary.as_file().sync_all()?;
        temporary.persist(&path).map_err(|error| error.error)?;
        if let Ok(directory) = std::fs::File::open(&directory) {
            // Makes the rename durable; not every file system can sync a directory.
            directory.sync_all().ok();
        }
        Ok(())
    })
    .await
    .map_err(|error| ActionError::failed(format!("cannot write {what} {shown}: {error}")))?;
    outcome.map_err(|error| ActionError::failed(format!("cannot write {what} {shown}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::check_no_climbing;

    #[test]
    fn a_dot_dot_may_only_lead_a_relative_path() {
        for allowed in ["before.yaml", "../backups/before.yaml", "../../x/y.yaml", "./a/b", "/var/x.yaml"] {
            assert!(check_no_climbing(allowed).is_ok(), "{allowed}");
        }
        for refused in ["snapshots/../../etc/x", "../a/../b", "/var/../etc/x", "a/.."] {
            let message = check_no_climbing(refused).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains("climbs out"), "{refused}: {message}");
        }
    }
}
