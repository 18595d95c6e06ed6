//! `kong.sync` ([`KongSync`]): brings the gateway to the desired state of a
//! decK-style file, in dependency order, and restores the state before it on any
//! failure part-way.
//!
//! Plan reads the file and the gateway (limited to the select tags) and shows the
//! creates, updates and deletes with the affected entities before and after (secrets
//! masked). Apply reads the whole gateway first (the state a restore puts back), then
//! writes; when a write fails it restores at once and says whether that worked. The
//! undo record holds the ids it created and the previous versions of what it changed
//! or deleted (its secret values and the file's listed in `Applied.secrets`); undo is the
//! same restore.
//! Secret values (the file's and the record's) are masked in its error messages, as
//! Kong quotes a value it refuses.
//! Probe: the sync took effect when the gateway already matches the file.

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde_json::{Map, Value, json};

use super::apply::{Restored, UndoRecord, execute, restore};
use super::diff::{Operation, Plan, diff};
use super::dump::dump;
use super::file::{Document, FileError, load};
use super::resolve::{ResolveError, resolve};
use crate::artefact::{sha256_hex, step_path};
use super::state::State;
use crate::kong::client::KongClient;
use crate::kong::entity::mask;
use crate::kong::gateway::KongGateway;
use crate::kong::{FAMILY, KongSyncArguments};

/// The `kong.sync` action.
#[derive(Debug, Clone)]
pub struct KongSync {
    spec: ActionSpec,
}

impl KongSync {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<KongSyncArguments>(
                "kong.sync",
                FAMILY,
                "Brings the gateway to a declarative file in dependency order; undo restores the state before.",
                Effect::write().idempotent().reversible(),
            )
            .target(TargetKind::Gateway("kong"))
            .outputs(&["created", "updated", "deleted", "snapshot_sha256"]),
        }
    }
}

impl Default for KongSync {
    fn default() -> Self {
        Self::new()
    }
}

/// A read file with the hash of its bytes.
pub(super) struct Wanted {
    document: Document,
    sha256: String,
    select_tags: Vec<String>,
    delete: bool,
}

impl Wanted {
    /// Reads the arguments and the file they name.
    pub(super) async fn read(context: &StepContext, arguments: Value) -> Result<Self, ActionError> {
        let arguments: KongSyncArguments =
            serde_json::from_value(arguments).map_err(|error| ActionError::InvalidArguments {
                action: "kong.sync",
                message: error.to_string(),
            })?;
        let path = step_path(context, &arguments.state);
        let (document, bytes) = load(&path, &arguments.state).await.map_err(file_error)?;
        let select_tags = select_tags(&arguments.select_tags, &document).map_err(file_error)?;
        Ok(Self {
            sha256: sha256_hex(&bytes),
            document,
            select_tags,
            delete: arguments.delete,
        })
    }

    /// The desired state against `current` (the gateway in scope).
    async fn desired(&self, client: &KongClient, current: &State) -> Result<State, ActionError> {
        resolve(&self.document, current, client, &self.select_tags)
            .await
            .map_err(|error| match error {
                ResolveError::File(error) => file_error(error),
                ResolveError::Kong(error) => error.into(),
            })
    }

    /// The plan against the gateway in scope, read through `?tags=`.
    pub(super) async fn plan(
        &self,
        client: &KongClient,
    ) -> Result<(State, State, Plan), ActionError> {
        let current = dump(client, &self.select_tags).await?;
        let desired = self.desired(client, &current).await?;
        let plan = diff(&current, &desired, self.delete);
        Ok((current, desired, plan))
    }

    /// How the plan names the file.
    pub(super) fn what(&self) -> String {
        format!("sync with {}", self.document.file)
    }

    /// The step's outputs.
    pub(super) fn outputs(&self, plan: &Plan) -> Map<String, Value> {
        let (created, updated, deleted) = plan.counts();
        let mut outputs = Map::new();
        outputs.insert("created".to_owned(), json!(created));
        outputs.insert("updated".to_owned(), json!(updated));
        outputs.insert("deleted".to_owned(), json!(deleted));
        outputs.insert("snapshot_sha256".to_owned(), json!(self.sha256));
        outputs
    }
}

/// The select tags: the step's, the file's `_info.select_tags`, which must agree when both are given.
fn select_tags(step: &[String], document: &Document) -> Result<Vec<String>, FileError> {
    let file = document.select_tags.clone().unwrap_or_default();
    if step.is_empty() {
        return Ok(file);
    }
    if !file.is_empty() {
        let sorted = |tags: &[String]| {
            let mut tags = tags.to_vec();
            tags.sort();
            tags.dedup();
            tags
        };
        if sorted(&file) != sorted(step) {
            return Err(FileError {
                file: document.file.clone(),
                line: None,
                message: format!(
                    "`_info.select_tags` {file:?} differ from the step's select_tags {step:?}"
                ),
            });
        }
    }
    Ok(step.to_vec())
}

/// A file error as the step reports it.
fn file_error(error: FileError) -> ActionError {
    ActionError::failed(format!("kong.sync: {error}"))
}

/// The error of a sync that failed at `label`, with the outcome of the restore.
fn failure_message(label: &str, error: &str, restored: &Restored) -> String {
    if restored.is_complete() {
        format!(
            "kong.sync: {label} failed: {error}; the gateway was restored to its state before \
             the sync ({} writes undone)",
            restored.writes
        )
    } else {
        format!(
            "kong.sync: {label} failed: {error}; the restore failed too, these entities need a \
             person: {}",
            restored.failures.join("; ")
        )
    }
}

/// Refuses a create whose id (given by the file) belongs to an entity outside the
/// select tags: the PUT would overwrite it and a restore would then delete it.
fn refuse_hidden_ids(
    plan: &Plan,
    before: &State,
    desired: &State,
    file: &str,
) -> Result<(), ActionError> {
    for operation in &plan.operations {
        if let Operation::Create(entity) = operation
            && before.get(entity.kind, entity.id()).is_some()
        {
            return Err(ActionError::failed(format!(
                "kong.sync: {file}: {} has the id {} of an existing {} that does not carry the \
                 select tags; nothing was written",
                desired.label(entity),
                entity.id(),
                entity.entry().label
            )));
        }
    }
    Ok(())
}

/// The secret values the file gives (new keys, passwords): never shown in a message.
fn desired_secrets(desired: &State) -> Vec<String> {
    desired
        .iter()
        .flat_map(super::state::Entity::secrets)
        .collect()
}

/// Secret values, longest first (so that one inside another is not left half shown).
fn longest_first(mut secrets: Vec<String>) -> Vec<String> {
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.dedup();
    secrets
}

/// Reads an undo record.
fn undo_record(undo: Value) -> Result<UndoRecord, ActionError> {
    crate::arguments::undo_record("kong.sync", undo)
}

#[async_trait::async_trait]
impl Action for KongSync {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let wanted = Wanted::read(context, arguments).await?;
        let gateway = KongGateway::for_step(context).await?;
        let (current, desired, plan) = wanted.plan(&gateway.client).await?;
        Ok(plan.change(&wanted.what(), &current, &desired))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let wanted = Wanted::read(context, arguments).await?;
        let gateway = KongGateway::for_step(context).await?;
        let client = &gateway.client;
        // The whole gateway, secrets included: what a restore puts back (cascades included).
        let before = dump(client, &[]).await?;
        let current = before.with_tags(&wanted.select_tags);
        let desired = wanted.desired(client, &current).await?;
        let plan = diff(&current, &desired, wanted.delete);
        refuse_hidden_ids(&plan, &before, &desired, &wanted.document.file)?;
        let change = plan.change(&wanted.what(), &current, &desired);
        if context.dry_run && !plan.is_empty() {
            return Err(ActionError::DryRunWrite {
                what: change.summary,
            });
        }
        let record = UndoRecord::for_plan(&plan, &before);
        if let Err(failed) = execute(client, &plan).await {
            let operation = &plan.operations[failed.index];
            let names = if matches!(operation, Operation::Create(_)) {
                &desired
            } else {
                &current
            };
            let label = format!("{} {}", operation.verb(), names.label(operation.entity()));
            let restored = restore(client, &record).await;
            // Kong quotes a value it refuses (`UNIQUE violation detected on '{key="..."}'`).
            let secrets = longest_first([desired_secrets(&desired), record.secrets()].concat());
            let message = failure_message(&label, &failed.error.to_string(), &restored);
            let error = if restored.is_complete() && failed.error.is_unanswered() {
                // Restored, but the unanswered write may still land on top of it.
                ActionError::partially_applied(
                    message,
                    vec![format!("{label}: sent, not answered; Kong may still apply it")],
                )
            } else if restored.is_complete() {
                ActionError::failed(message)
            } else {
                // Half the sync is on the gateway: the run must not end "rolled back".
                let mut left = restored.failures;
                if failed.error.is_unanswered() {
                    left.push(format!("{label}: sent, not answered; Kong may still apply it"));
                }
                ActionError::partially_applied(message, left)
            };
            return Err(mask(error, &secrets));
        }
        // The values written and the ones replaced: masked from here on.
        let secrets = longest_first([desired_secrets(&desired), record.secrets()].concat());
        let undo = serde_json::to_value(&record)
            .map_err(|error| ActionError::failed(format!("kong.sync: undo record: {error}")))?;
        Ok(Applied {
            outputs: wanted.outputs(&plan),
            undo: Some(undo),
            change: Some(change),
            secrets,
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        _arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let record = undo_record(undo)?;
        let gateway = KongGateway::for_step(context).await?;
        let restored = restore(&gateway.client, &record).await;
        if restored.is_complete() {
            Ok(())
        } else {
            Err(mask(
                ActionError::failed(format!(
                    "kong.sync undo: the state before the sync could not be restored, these \
                     entities need a person: {}",
                    restored.failures.join("; ")
                )),
                &longest_first(record.secrets()),
            ))
        }
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let wanted = Wanted::read(context, arguments).await?;
        let gateway = KongGateway::for_step(context).await?;
        let (current, desired, plan) = wanted.plan(&gateway.client).await?;
        if !plan.is_empty() {
            return Ok(Probe::NotDone);
        }
        Ok(Probe::Done(Applied {
            outputs: wanted.outputs(&plan),
            undo: None,
            change: Some(plan.change(&wanted.what(), &current, &desired)),
            secrets: Vec::new(),
        }))
    }
}
