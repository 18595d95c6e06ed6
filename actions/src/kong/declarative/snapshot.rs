//! `kong.snapshot` ([`KongSnapshot`]): the gateway's state (optionally limited by
//! select tags) written as a decK-compatible YAML file, with its SHA-256.
//!
//! A read: it writes no Admin API entity. The file is written atomically (a
//! temporary file in the same directory, synced, renamed over the path; mode 0600, as
//! it may hold credentials) and only outside a dry run: a dry run reads the gateway and
//! writes its scratch copy instead ([`crate::artefact`]), which later steps of the dry
//! run read through the `path` output.

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, StepContext, TargetKind,
};
use serde_json::{Map, Value, json};

use super::dump::dump;
use super::render::render;
use super::yaml::to_yaml;
use crate::kong::gateway::KongGateway;
use crate::kong::{FAMILY, KongSnapshotArguments};
use crate::artefact::{artefact_path, sha256_hex, write_artefact};

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
                artefact_path(context, &arguments.path)?.display(),
                snapshot.entities
            ),
            before: None,
            after: None,
        })
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments = self::arguments(arguments)?;
        let path = artefact_path(context, &arguments.path)?;
        let snapshot = take(
            context,
            &arguments.select_tags,
            arguments.include_credentials,
        )
        .await?;
        let artefact = write_artefact(context, &path, snapshot.text.as_bytes(), "snapshot").await?;
        let summary = format!(
            "{} snapshot to {} ({} entities)",
            artefact.verb(),
            path.display(),
            snapshot.entities
        );
        let written = artefact.written;
        let mut outputs = Map::new();
        outputs.insert("path".to_owned(), json!(artefact.path.display().to_string()));
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
