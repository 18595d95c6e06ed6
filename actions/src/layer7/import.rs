//! `layer7.import` ([`Layer7Import`]): imports a restman bundle file, or with
//! `api: graphman` a Graphman JSON bundle ([`super::graphman_import`], same
//! plan, apply, undo and probe shape).
//!
//! Plan runs the gateway's own test-mode import (`PUT /bundle?test=true`) and
//! shows, per entity, the action the gateway would take, with a normalised
//! content diff against the target's current version ([`Preview`]). Apply
//! exports the target's current version of every entity the import updates or
//! deletes (the undo record, [`ImportUndo`]), then imports. Undo re-imports that
//! export with `NewOrUpdate` and deletes what the import created, in one
//! transactional import. With `test: true` the step is a read: it runs the
//! test-mode import only and outputs its per-entity results.

use std::path::PathBuf;

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::arguments::{Layer7Api, Layer7ImportArguments};
use super::bundle_state::{
    Counts, PreState, Preview, Verdict, counts_json, in_effect, pre_state, results_json,
};
use super::gateway::Layer7Gateway;
use super::graphman_import::{self, GraphmanCreated, GraphmanPrepared};
use super::restman::{
    ActionTaken, Bundle, ImportOptions, Mapping, MappingResult, RestmanAction, RestmanClient,
};
use super::{FAMILY, Layer7Error};
use crate::arguments::parse;
use crate::artefact::step_path;

/// The action's type name.
pub(super) const NAME: &str = "layer7.import";

/// The `layer7.import` action.
#[derive(Debug, Clone)]
pub struct Layer7Import {
    spec: ActionSpec,
}

impl Layer7Import {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<Layer7ImportArguments>(
                NAME,
                FAMILY,
                "Imports a bundle; plan uses the gateway's test mode; undo re-imports the export taken before.",
                Effect::write().reversible(),
            )
            .target(TargetKind::Gateway("layer7"))
            .outputs(&[
                "results",
                "created",
                "updated",
                "changed",
                "deleted",
                "used_existing",
                "ignored",
                "test",
            ]),
        }
    }
}

impl Default for Layer7Import {
    fn default() -> Self {
        Self::new()
    }
}

/// The effect of `layer7.import` with these arguments: a read with `test: true`.
pub fn import_effect(arguments: &Value) -> Effect {
    if arguments.get("test").and_then(Value::as_bool) == Some(true) {
        Effect::READ
    } else {
        Effect::write().reversible()
    }
}

/// One entity an import created, which undo deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedEntity {
    /// Its restman type (`SERVICE`).
    pub kind: String,
    /// Its id on the target.
    pub id: String,
    /// Its name in the bundle, when known.
    pub name: Option<String>,
}

/// What `undo` restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImportUndo {
    /// The import's pre-state and what it created.
    Restore {
        /// The target's export, taken just before, of the entities the import updated or deleted (restman XML; no secrets).
        pre_state: String,
        /// Entities the import created, in import order.
        created: Vec<CreatedEntity>,
        /// Updated or deleted entities whose type cannot be exported (not restored).
        not_captured: Vec<String>,
    },
    /// A Graphman install's pre-state and what it created.
    GraphmanRestore {
        /// The target's Graphman export, taken just before, of the entities the install updated or deleted (no keys, no secrets).
        pre_state: Value,
        /// Entities the install created (identity fields only), in install order.
        created: Vec<GraphmanCreated>,
        /// Updated or deleted entities whose section cannot be read one by one (not restored).
        not_captured: Vec<String>,
    },
    /// The import took effect before a crash and its pre-state was lost (a probe found it done).
    Lost {
        /// The bundle file.
        bundle: String,
    },
}

/// The bundle file, read and prepared for import.
struct Prepared {
    /// Where it was read.
    path: PathBuf,
    /// The bundle, mappings applied.
    bundle: Bundle,
    /// The step's arguments.
    arguments: Layer7ImportArguments,
}

/// The format a bundle file's text is in, from its first character.
fn format_of(text: &str) -> Option<Layer7Api> {
    match text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .chars()
        .next()
    {
        Some('<') => Some(Layer7Api::Restman),
        Some('{') => Some(Layer7Api::Graphman),
        _ => None,
    }
}

/// Reads the bundle file of `arguments` (relative to the playbook) and refuses,
/// before any request, a restman XML file given with `api: graphman` and the reverse.
pub(super) async fn read_bundle_file(
    context: &StepContext,
    arguments: &Layer7ImportArguments,
) -> Result<(PathBuf, String), ActionError> {
    let path = step_path(context, &arguments.bundle);
    let shown = path.display();
    let text = tokio::fs::read_to_string(&path).await.map_err(|error| {
        ActionError::failed(format!("{NAME}: cannot read bundle {shown}: {error}"))
    })?;
    match (arguments.api, format_of(&text)) {
        (Layer7Api::Graphman, Some(Layer7Api::Restman)) => Err(ActionError::failed(format!(
            "{NAME}: {shown} is a restman (XML) bundle but the step says `api: graphman`; import it with `api: restman` (the default), or give a Graphman JSON bundle"
        ))),
        (Layer7Api::Restman, Some(Layer7Api::Graphman)) => Err(ActionError::failed(format!(
            "{NAME}: {shown} is a Graphman (JSON) bundle but the step imports through restman; set `api: graphman`, or give a restman XML bundle"
        ))),
        _ => Ok((path, text)),
    }
}

/// The step's bundle, prepared for the API it names.
enum Source {
    /// A restman XML bundle.
    Restman(Prepared),
    /// A Graphman JSON bundle.
    Graphman(GraphmanPrepared),
}

impl Source {
    /// Reads the bundle file and prepares it for the step's API.
    async fn read(context: &StepContext, arguments: Value) -> Result<Self, ActionError> {
        let arguments: Layer7ImportArguments = parse(NAME, arguments)?;
        let (path, text) = read_bundle_file(context, &arguments).await?;
        Ok(match arguments.api {
            Layer7Api::Restman => Source::Restman(Prepared::of(path, &text, arguments)?),
            Layer7Api::Graphman => Source::Graphman(GraphmanPrepared::of(path, &text, arguments)?),
        })
    }
}

impl Prepared {
    /// Parses the bundle text and applies `default_action` and `mappings`.
    fn of(
        path: PathBuf,
        text: &str,
        arguments: Layer7ImportArguments,
    ) -> Result<Self, ActionError> {
        let shown = path.display();
        let mut bundle = Bundle::parse(text).map_err(|error| {
            ActionError::failed(format!("{NAME}: {shown} is not a restman bundle: {error}"))
        })?;
        if bundle.mappings.is_empty() {
            return Err(ActionError::failed(format!(
                "{NAME}: bundle {shown} has no l7:Mappings: nothing to import"
            )));
        }
        bundle
            .apply_mappings(arguments.default_action, &arguments.mappings)
            .map_err(|error| ActionError::failed(format!("{NAME}: bundle {shown}: {error}")))?;
        Ok(Self {
            path,
            bundle,
            arguments,
        })
    }

    /// The import options (`test` as given).
    fn options(&self, test: bool) -> ImportOptions {
        ImportOptions {
            test,
            activate: Some(self.arguments.activate),
            version_comment: self.arguments.comment.clone(),
            passphrase: None,
        }
    }

    /// Imports the bundle (in test mode or for real); errors name the bundle and the gateway.
    async fn import(
        &self,
        gateway: &Layer7Gateway,
        test: bool,
    ) -> Result<Vec<MappingResult>, ActionError> {
        gateway
            .restman
            .import(&self.bundle, &self.options(test))
            .await
            .map_err(|error| self.failure(gateway, test, &error))
    }

    /// An import error in words: which import, of what, where.
    fn failure(&self, gateway: &Layer7Gateway, test: bool, error: &Layer7Error) -> ActionError {
        let mode = if test { "test import" } else { "import" };
        let message = format!(
            "{NAME}: {mode} of {} into gateway `{}`: {}",
            self.path.display(),
            gateway.name,
            crate::web::error_chain(error)
        );
        if error.is_unanswered() && !test {
            // A bundle lands whole or not at all, but nothing says which, nor when.
            return ActionError::partially_applied(
                message,
                vec![format!(
                    "gateway `{}`: the import of {} may still take effect",
                    gateway.name,
                    self.path.display()
                )],
            );
        }
        ActionError::failed(message)
    }

    /// The preview of `results` against the target's current state.
    async fn preview(
        &self,
        restman: &RestmanClient,
        results: &[MappingResult],
    ) -> Result<(Preview, PreState), ActionError> {
        let current = pre_state(restman, results).await?;
        let preview = Preview::of(&self.bundle, results, &current.bundle)?;
        Ok((preview, current))
    }

    /// `import bundle.xml into gateway `gw``.
    fn what(&self, gateway: &Layer7Gateway) -> String {
        format!(
            "bundle {} into gateway `{}`",
            self.path.display(),
            gateway.name
        )
    }
}

/// `1 created, 2 updated (1 changed), 0 deleted, 3 used as they are, 0 ignored`.
pub(super) fn counts_text(counts: &Counts, future: bool) -> String {
    let (created, updated, deleted) = if future {
        ("to create", "to update", "to delete")
    } else {
        ("created", "updated", "deleted")
    };
    format!(
        "{} {created}, {} {updated} ({} with changes), {} {deleted}, {} used as they are, {} ignored",
        counts.created,
        counts.updated,
        counts.changed,
        counts.deleted,
        counts.used_existing,
        counts.ignored
    )
}

/// The step's outputs.
fn outputs(results: &[MappingResult], counts: &Counts, test: bool) -> Map<String, Value> {
    outputs_of(results_json(results), counts, test)
}

/// The step's outputs: the per-entity `results`, the counts, `test`.
pub(super) fn outputs_of(results: Value, counts: &Counts, test: bool) -> Map<String, Value> {
    let mut outputs = Map::new();
    outputs.insert("results".to_owned(), results);
    for (key, count) in counts_json(counts) {
        outputs.insert(key.to_owned(), json!(count));
    }
    outputs.insert("test".to_owned(), json!(test));
    outputs
}

#[async_trait::async_trait]
impl Action for Layer7Import {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    fn effect_for(&self, arguments: &Value) -> Effect {
        import_effect(arguments)
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let prepared = match Source::read(context, arguments).await? {
            Source::Restman(prepared) => prepared,
            Source::Graphman(prepared) => return prepared.plan(context).await,
        };
        let gateway = Layer7Gateway::for_step(context).await?;
        let results = prepared.import(&gateway, true).await?;
        let (preview, _) = prepared.preview(&gateway.restman, &results).await?;
        let headline = format!(
            "import {} (gateway's test mode): {}",
            prepared.what(&gateway),
            counts_text(&preview.counts, true)
        );
        Ok(preview.change(&headline))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let prepared = match Source::read(context, arguments).await? {
            Source::Restman(prepared) => prepared,
            Source::Graphman(prepared) => return prepared.apply(context).await,
        };
        let gateway = Layer7Gateway::for_step(context).await?;
        let planned = prepared.import(&gateway, true).await?;
        let (preview, pre_state) = prepared.preview(&gateway.restman, &planned).await?;
        if prepared.arguments.test {
            let headline = format!(
                "test import of {}: {}",
                prepared.what(&gateway),
                counts_text(&preview.counts, true)
            );
            return Ok(Applied {
                outputs: outputs(&planned, &preview.counts, true),
                undo: None,
                change: Some(preview.change(&headline)),
                secrets: Vec::new(),
            });
        }
        let results = prepared.import(&gateway, false).await?;
        let mut counts = Counts::of(&results);
        counts.changed = preview.counts.changed;
        let undo = ImportUndo::Restore {
            pre_state: pre_state.bundle.to_xml().map_err(Layer7Error::from)?,
            created: created(&results),
            not_captured: pre_state.not_captured,
        };
        let undo = serde_json::to_value(&undo)
            .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
        let headline = format!(
            "imported {}: {}",
            prepared.what(&gateway),
            counts_text(&counts, false)
        );
        let mut change = preview.change(&headline);
        if !results.iter().any(|result| {
            result
                .action_taken
                .as_ref()
                .is_some_and(ActionTaken::is_change)
        }) {
            change.changes = Some(false);
        }
        Ok(Applied {
            outputs: outputs(&results, &counts, false),
            undo: Some(undo),
            change: Some(change),
            secrets: Vec::new(),
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let arguments: Layer7ImportArguments = parse(NAME, arguments)?;
        let record: ImportUndo = crate::arguments::undo_record(NAME, undo)?;
        let (pre_state, created, not_captured) = match record {
            ImportUndo::Lost { bundle } => {
                return Err(ActionError::failed(format!(
                    "{NAME}: the import of {bundle} took effect before an interruption and the target's state before it was not recorded: restore it by hand (re-import an export taken before the change)"
                )));
            }
            ImportUndo::GraphmanRestore {
                pre_state,
                created,
                not_captured,
            } => {
                return graphman_import::undo(
                    context,
                    &arguments,
                    &pre_state,
                    &created,
                    &not_captured,
                )
                .await;
            }
            ImportUndo::Restore {
                pre_state,
                created,
                not_captured,
            } => (pre_state, created, not_captured),
        };
        let gateway = Layer7Gateway::for_step(context).await?;
        let pre_state = Bundle::parse(&pre_state).map_err(|error| {
            ActionError::failed(format!("{NAME}: undo record: pre-state bundle: {error}"))
        })?;
        let restored = restore(&gateway.restman, &pre_state, &created)
            .await
            .map_err(|error| {
                ActionError::failed(format!(
                    "{NAME}: undo of the import of {} on gateway `{}`: {}",
                    arguments.bundle,
                    gateway.name,
                    crate::web::error_chain(&error)
                ))
            })?;
        let restored_names: Vec<String> = restored
            .iter()
            .filter(|result| result.action_taken == Some(ActionTaken::UpdatedExisting))
            .chain(
                restored
                    .iter()
                    .filter(|result| result.action_taken == Some(ActionTaken::CreatedNew)),
            )
            .map(MappingResult::entity)
            .collect();
        let deleted: Vec<String> = restored
            .iter()
            .filter(|result| result.action_taken == Some(ActionTaken::Deleted))
            .map(MappingResult::entity)
            .collect();
        tracing::info!(
            step = %context.step_id,
            gateway = %gateway.name,
            restored = ?restored_names,
            deleted = ?deleted,
            "layer7.import undone: restored the pre-state and deleted what the import created"
        );
        if !not_captured.is_empty() {
            tracing::warn!(
                step = %context.step_id,
                not_restored = ?not_captured,
                "layer7.import undo: these entities could not be exported before the import and are not restored"
            );
        }
        Ok(())
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let prepared = match Source::read(context, arguments).await? {
            Source::Restman(prepared) => prepared,
            Source::Graphman(prepared) => return prepared.probe(context).await,
        };
        if prepared
            .bundle
            .mappings
            .iter()
            .any(|mapping| mapping.action == RestmanAction::AlwaysCreateNew)
        {
            return Ok(Probe::Unknown(format!(
                "{NAME}: the bundle {} has AlwaysCreateNew mappings: whether they were imported cannot be told from the target",
                prepared.path.display()
            )));
        }
        let gateway = Layer7Gateway::for_step(context).await?;
        let results = match gateway
            .restman
            .import(&prepared.bundle, &prepared.options(true))
            .await
        {
            Ok(results) => results,
            Err(error @ Layer7Error::BundleFailed { .. }) => {
                return Ok(Probe::Unknown(format!(
                    "{NAME}: a test import of {} now fails ({error}): check the target by hand",
                    prepared.path.display()
                )));
            }
            Err(error) => return Err(prepared.failure(&gateway, true, &error)),
        };
        let current = pre_state(&gateway.restman, &results).await?;
        match in_effect(&prepared.bundle, &results, &current.bundle)? {
            Verdict::NotInEffect(_) if !prepared.arguments.activate => Ok(Probe::Unknown(format!(
                "{NAME}: the import of {} saves policy revisions inactive (activate: false): whether it ran cannot be told from the active policies",
                prepared.path.display()
            ))),
            Verdict::NotInEffect(_) => Ok(Probe::NotDone),
            Verdict::InEffect => {
                let counts = Counts::of(&results);
                let undo = serde_json::to_value(ImportUndo::Lost {
                    bundle: prepared.path.display().to_string(),
                })
                .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
                Ok(Probe::Done(Applied {
                    outputs: outputs(&results, &counts, false),
                    undo: Some(undo),
                    change: Some(Change::unknown(format!(
                        "the import of {} had taken effect before the interruption; the target's state before it was not recorded, so this step cannot be undone automatically",
                        prepared.what(&gateway)
                    ))),
                    secrets: Vec::new(),
                }))
            }
        }
    }
}

/// The entities the results say were created.
fn created(results: &[MappingResult]) -> Vec<CreatedEntity> {
    results
        .iter()
        .filter(|result| result.action_taken == Some(ActionTaken::CreatedNew))
        .filter_map(|result| {
            Some(CreatedEntity {
                kind: result.kind.clone(),
                id: result.target_id.clone()?,
                name: result.name.clone(),
            })
        })
        .collect()
}

/// Restores `pre_state` (`NewOrUpdate`) and deletes `created` (newest first) in
/// one transactional import. Restoring first suits an import that moved existing
/// entities into a folder it created; deleting first suits one that took a
/// unique key from an entity it deleted: the other order is tried when one fails.
pub async fn restore(
    restman: &RestmanClient,
    pre_state: &Bundle,
    created: &[CreatedEntity],
) -> Result<Vec<MappingResult>, Layer7Error> {
    let deletes: Vec<Mapping> = created
        .iter()
        .rev()
        .map(|entity| Mapping::new(RestmanAction::Delete, &entity.kind, &entity.id))
        .collect();
    let options = ImportOptions::default();
    let restore_first = Bundle {
        namespaces: pre_state.namespaces.clone(),
        items: pre_state.items.clone(),
        mappings: pre_state
            .mappings
            .iter()
            .cloned()
            .chain(deletes.iter().cloned())
            .collect(),
    };
    if restore_first.mappings.is_empty() {
        return Ok(Vec::new());
    }
    match restman.import(&restore_first, &options).await {
        Err(first @ Layer7Error::BundleFailed { .. })
            if !deletes.is_empty() && !pre_state.mappings.is_empty() =>
        {
            let delete_first = Bundle {
                mappings: deletes
                    .iter()
                    .cloned()
                    .chain(pre_state.mappings.iter().cloned())
                    .collect(),
                ..restore_first.clone()
            };
            restman
                .import(&delete_first, &options)
                .await
                .map_err(|_| first)
        }
        outcome => outcome,
    }
}
