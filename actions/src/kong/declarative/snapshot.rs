//! `kong.snapshot` ([`KongSnapshot`]): the gateway's state (optionally limited by
//! select tags) written as a decK-compatible YAML file, with its SHA-256.
//!
//! A read: it writes no Admin API entity. The file is written atomically (a
//! temporary file in the same directory, synced, renamed over the path; mode 0600, as
//! it may hold credentials) and only outside a dry run: a dry run reads the gateway,
//! renders the file and reports its hash and counts, but writes nothing.

use std::path::{Path, PathBuf};

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, StepContext, TargetKind,
};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::dump::dump;
use super::render::render;
use super::yaml::to_yaml;
use crate::kong::gateway::KongGateway;
use crate::kong::{FAMILY, KongSnapshotArguments};

/// The `kong.snapshot` action.
#[derive(Debug, Clone)]
pub struct KongSnapshot {
    spec: ActionSpec,
}

impl KongSnapshot {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<KongSnapshotArguments>(
                "kong.snapshot",
                FAMILY,
                "Writes the gateway's state as a declarative file, with its content hash.",
                Effect::READ,
            )
            .target(TargetKind::Gateway("kong"))
            .outputs(&["path", "sha256", "entities", "counts", "written"]),
        }
    }
}

impl Default for KongSnapshot {
    fn default() -> Self {
        Self::new()
    }
}

/// A rendered snapshot: its text and what it holds.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The YAML text.
    pub text: String,
    /// Its SHA-256, in hex.
    pub sha256: String,
    /// Entities in it.
    pub entities: usize,
    /// Entities per declarative table.
    pub counts: Map<String, Value>,
}

/// Reads the gateway and renders the snapshot (no file written).
pub async fn take(
    context: &StepContext,
    select_tags: &[String],
    include_credentials: bool,
) -> Result<Snapshot, ActionError> {
    let gateway = KongGateway::for_step(context).await?;
    let state = dump(&gateway.client, select_tags).await?;
    let text = to_yaml(&render(&state, select_tags, include_credentials));
    Ok(Snapshot {
        sha256: sha256_hex(text.as_bytes()),
        entities: state.len(),
        counts: state.counts(),
        text,
    })
}

/// The SHA-256 of bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A path from the arguments, relative to the playbook's directory.
pub fn step_path(context: &StepContext, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_owned()
    } else {
        context.base_dir.join(path)
    }
}

/// Parses the arguments.
fn arguments(arguments: Value) -> Result<KongSnapshotArguments, ActionError> {
    serde_json::from_value(arguments).map_err(|error| ActionError::InvalidArguments {
        action: "kong.snapshot",
        message: error.to_string(),
    })
}

#[async_trait::async_trait]
impl Action for KongSnapshot {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let arguments = self::arguments(arguments)?;
        let snapshot = take(
            context,
            &arguments.select_tags,
            arguments.include_credentials,
        )
        .await?;
        Ok(Change {
            changes: Some(true),
            summary: format!(
                "write snapshot to {} ({} entities)",
                step_path(context, &arguments.path).display(),
                snapshot.entities
            ),
            before: None,
            after: None,
        })
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments = self::arguments(arguments)?;
        let path = step_path(context, &arguments.path);
        let snapshot = take(
            context,
            &arguments.select_tags,
            arguments.include_credentials,
        )
        .await?;
        let written = !context.dry_run;
        if written {
            write_atomically(&path, snapshot.text.as_bytes(), "snapshot").await?;
        }
        let verb = if written { "wrote" } else { "would write" };
        let summary = format!(
            "{verb} snapshot to {} ({} entities)",
            path.display(),
            snapshot.entities
        );
        let mut outputs = Map::new();
        outputs.insert("path".to_owned(), json!(path.display().to_string()));
        outputs.insert("sha256".to_owned(), json!(snapshot.sha256));
        outputs.insert("entities".to_owned(), json!(snapshot.entities));
        outputs.insert("counts".to_owned(), Value::Object(snapshot.counts));
        outputs.insert("written".to_owned(), json!(written));
        Ok(Applied {
            outputs,
            undo: None,
            change: Some(Change::unknown(summary)),
            secrets: Vec::new(),
        })
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
