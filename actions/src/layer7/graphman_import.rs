//! The Graphman path of `layer7.import` (`api: graphman`): a Graphman JSON
//! bundle installed with `installBundleEntities`, with the restman path's shape.
//!
//! Plan installs it in the gateway's test mode (`?test=true`, nothing committed)
//! and shows each entity's `detailedStatus` with a content diff against the
//! target ([`super::bundle_state::Preview`]). Apply reads the
//! target's current version of what the install updates or deletes (the undo
//! record), then installs (`?activate=`, `?comment=`). Undo installs that
//! pre-state `NEW_OR_UPDATE` together with `DELETE` mappings for what the
//! install created, in one request, then deletes the folders it created
//! (`deleteBundleEntities`). A Graphman mutation is all or nothing: an entity
//! in `ERROR` fails the step naming it, and nothing is committed.

use std::path::PathBuf;

use runsheet_engine::{ActionError, Applied, Change, Probe, StepContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Layer7Error;
use super::arguments::Layer7ImportArguments;
use super::bundle_state::{Counts, Verdict};
use super::gateway::Layer7Gateway;
use super::graphman::bundle::{GraphmanBundle, PROPERTIES, identity_fields};
use super::graphman::{GraphmanClient, GraphmanOptions};
use super::graphman_import_state::{
    GraphmanResult, graphman_counts, graphman_in_effect, graphman_pre_state, graphman_preview,
    graphman_results,
};
use super::import::{ImportUndo, NAME, counts_text, outputs_of};

/// One entity an install created, which undo deletes: its section and identity fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphmanCreated {
    /// The bundle section (`services`).
    pub section: String,
    /// Its identity fields as in the bundle (`{"resolutionPath": "/orders"}`).
    pub identity: Map<String, Value>,
    /// Its name in the bundle, when it has one.
    pub name: Option<String>,
}

/// A Graphman bundle file, read and prepared for install.
pub(super) struct GraphmanPrepared {
    /// Where it was read.
    path: PathBuf,
    /// The bundle, `properties` (default action, mappings) set.
    bundle: GraphmanBundle,
    /// The step's arguments.
    arguments: Layer7ImportArguments,
}

impl GraphmanPrepared {
    /// Parses the bundle text and applies `default_action` and `mappings`.
    pub(super) fn of(
        path: PathBuf,
        text: &str,
        arguments: Layer7ImportArguments,
    ) -> Result<Self, ActionError> {
        let shown = path.display();
        let mut bundle = GraphmanBundle::parse(text).map_err(|error| {
            ActionError::failed(format!("{NAME}: {shown} is not a Graphman bundle: {error}"))
        })?;
        if bundle.is_empty() {
            return Err(ActionError::failed(format!(
                "{NAME}: Graphman bundle {shown} holds no entity: nothing to import"
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

    /// The request options (`test` as given).
    fn options(&self, test: bool) -> GraphmanOptions {
        GraphmanOptions {
            test,
            activate: Some(self.arguments.activate),
            comment: self.arguments.comment.clone(),
            ..GraphmanOptions::default()
        }
    }

    /// Installs the bundle (in test mode or for real); errors name the bundle and the gateway.
    async fn install(
        &self,
        gateway: &Layer7Gateway,
        test: bool,
    ) -> Result<Vec<GraphmanResult>, ActionError> {
        let answer = gateway
            .graphman
            .install_bundle(&self.bundle, &self.options(test))
            .await
            .map_err(|error| self.failure(gateway, test, &error))?;
        Ok(graphman_results(&self.bundle, &answer))
    }

    /// An install error in words: which install, of what, where.
    fn failure(&self, gateway: &Layer7Gateway, test: bool, error: &Layer7Error) -> ActionError {
        let mode = if test { "test import" } else { "import" };
        let in_doubt = !test && error.is_unanswered();
        let outcome = match error {
            _ if in_doubt => {
                "no answer: whether the gateway committed it is unknown; a plan of this step shows what is left to do"
            }
            Layer7Error::Web(_) if !test => "not sent: nothing was committed",
            _ => "nothing was committed",
        };
        let message = format!(
            "{NAME}: {mode} of Graphman bundle {} into gateway `{}` ({outcome}): {}",
            self.path.display(),
            gateway.name,
            crate::web::error_chain(error)
        );
        if in_doubt {
            // The install may have been committed, or may still be: a person must look.
            return ActionError::partially_applied(
                message,
                vec![format!(
                    "gateway `{}`: the install of Graphman bundle {} may have taken effect or still may",
                    gateway.name,
                    self.path.display()
                )],
            );
        }
        ActionError::failed(message)
    }

    /// `Graphman bundle b.json into gateway `gw``.
    fn what(&self, gateway: &Layer7Gateway) -> String {
        format!(
            "Graphman bundle {} into gateway `{}`",
            self.path.display(),
            gateway.name
        )
    }

    /// Whether any mapping (the default, the step's or the bundle's own) is `ALWAYS_CREATE_NEW`.
    fn always_creates_new(&self) -> bool {
        self.bundle
            .sections
            .get(PROPERTIES)
            .is_some_and(|properties| properties.to_string().contains("ALWAYS_CREATE_NEW"))
    }

    /// The plan: a test-mode install, shown per entity with a diff.
    pub(super) async fn plan(&self, context: &StepContext) -> Result<Change, ActionError> {
        let gateway = Layer7Gateway::for_step(context).await?;
        let results = self.install(&gateway, true).await?;
        let pre_state = graphman_pre_state(&gateway.graphman, &self.bundle, &results).await?;
        let preview = graphman_preview(&self.bundle, &results, &pre_state);
        let headline = format!(
            "import {} (gateway's test mode): {}",
            self.what(&gateway),
            counts_text(&preview.counts, true)
        );
        Ok(preview.change(&headline))
    }

    /// The apply: test install, pre-state, install; or with `test: true` the test install only.
    pub(super) async fn apply(&self, context: &StepContext) -> Result<Applied, ActionError> {
        let gateway = Layer7Gateway::for_step(context).await?;
        let planned = self.install(&gateway, true).await?;
        let pre_state = graphman_pre_state(&gateway.graphman, &self.bundle, &planned).await?;
        let preview = graphman_preview(&self.bundle, &planned, &pre_state);
        if self.arguments.test {
            let headline = format!(
                "test import of {}: {}",
                self.what(&gateway),
                counts_text(&preview.counts, true)
            );
            return Ok(Applied {
                outputs: outputs(&planned, &preview.counts, true),
                undo: None,
                change: Some(preview.change(&headline)),
                secrets: Vec::new(),
            });
        }
        let results = self.install(&gateway, false).await?;
        let mut counts = graphman_counts(&results);
        counts.changed = preview.counts.changed;
        let undo = ImportUndo::GraphmanRestore {
            pre_state: Value::Object(pre_state.bundle.sections.clone()),
            created: created(&self.bundle, &results),
            not_captured: pre_state.not_captured.clone(),
        };
        let undo = serde_json::to_value(&undo)
            .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
        let headline = format!(
            "imported {}: {}",
            self.what(&gateway),
            counts_text(&counts, false)
        );
        let mut change = preview.change(&headline);
        if !results
            .iter()
            .any(|result| matches!(result.status.as_str(), "CREATED" | "UPDATED" | "DELETED"))
        {
            change.changes = Some(false);
        }
        Ok(Applied {
            outputs: outputs(&results, &counts, false),
            undo: Some(undo),
            change: Some(change),
            secrets: Vec::new(),
        })
    }

    /// The probe: a test install now; anything still to create, delete or change is NotDone.
    pub(super) async fn probe(&self, context: &StepContext) -> Result<Probe, ActionError> {
        if self.always_creates_new() {
            return Ok(Probe::Unknown(format!(
                "{NAME}: the Graphman bundle {} has ALWAYS_CREATE_NEW mappings: whether it was imported cannot be told from the target",
                self.path.display()
            )));
        }
        let gateway = Layer7Gateway::for_step(context).await?;
        let results = match gateway
            .graphman
            .install_bundle(&self.bundle, &self.options(true))
            .await
        {
            Ok(answer) => graphman_results(&self.bundle, &answer),
            Err(error @ Layer7Error::Entity { .. }) => {
                return Ok(Probe::Unknown(format!(
                    "{NAME}: a test import of {} now fails ({error}): check the target by hand",
                    self.path.display()
                )));
            }
            Err(error) => return Err(self.failure(&gateway, true, &error)),
        };
        let pre_state = graphman_pre_state(&gateway.graphman, &self.bundle, &results).await?;
        match graphman_in_effect(&self.bundle, &results, &pre_state) {
            Verdict::NotInEffect(_) if !self.arguments.activate => Ok(Probe::Unknown(format!(
                "{NAME}: the import of {} saves policy revisions inactive (activate: false): whether it ran cannot be told from the active policies",
                self.path.display()
            ))),
            Verdict::NotInEffect(_) => Ok(Probe::NotDone),
            Verdict::InEffect => {
                let undo = serde_json::to_value(ImportUndo::Lost {
                    bundle: self.path.display().to_string(),
                })
                .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
                Ok(Probe::Done(Applied {
                    outputs: outputs(&results, &graphman_counts(&results), false),
                    undo: Some(undo),
                    change: Some(Change::unknown(format!(
                        "the import of {} had taken effect before the interruption; the target's state before it was not recorded, so this step cannot be undone automatically",
                        self.what(&gateway)
                    ))),
                    secrets: Vec::new(),
                }))
            }
        }
    }
}

/// The step's outputs of these results, with their counts (`changed` from the preview).
fn outputs(results: &[GraphmanResult], counts: &Counts, test: bool) -> Map<String, Value> {
    let json = Value::Array(results.iter().map(GraphmanResult::to_json).collect());
    outputs_of(json, counts, test)
}

/// The entities the results say were created, by their identity fields in the bundle.
fn created(bundle: &GraphmanBundle, results: &[GraphmanResult]) -> Vec<GraphmanCreated> {
    results
        .iter()
        .filter(|result| result.status == "CREATED")
        .filter_map(|result| {
            let entity = bundle.entities(&result.section).get(result.index)?;
            Some(GraphmanCreated {
                section: result.section.clone(),
                identity: identity_fields(&result.section, entity)
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                name: result.name.clone(),
            })
        })
        .filter(|created| !created.identity.is_empty())
        .collect()
}

/// Undoes an install: [`restore`], logged.
pub(super) async fn undo(
    context: &StepContext,
    arguments: &Layer7ImportArguments,
    pre_state: &Value,
    created: &[GraphmanCreated],
    not_captured: &[String],
) -> Result<(), ActionError> {
    let pre_state = GraphmanBundle::parse(&pre_state.to_string()).map_err(|error| {
        ActionError::failed(format!("{NAME}: undo record: pre-state bundle: {error}"))
    })?;
    let gateway = Layer7Gateway::for_step(context).await?;
    let restored = restore(&gateway.graphman, &pre_state, created)
        .await
        .map_err(|error| {
            ActionError::failed(format!(
                "{NAME}: undo of the Graphman import of {} on gateway `{}`: {error}",
                arguments.bundle, gateway.name
            ))
        })?;
    tracing::info!(
        step = %context.step_id,
        gateway = %gateway.name,
        restored = ?restored.restored,
        deleted = ?restored.deleted,
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

/// What an undo put back and removed (entities in words).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Entities put back as they were.
    pub restored: Vec<String>,
    /// Entities the import had created, now deleted.
    pub deleted: Vec<String>,
}

/// Why an undo could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The first request failed: nothing was changed.
    #[error("nothing was changed: {}", crate::web::error_chain(.0))]
    Nothing(Layer7Error),
    /// The entities were restored but the folders the import created could not be deleted.
    #[error(
        "the entities were restored and the ones the import created deleted, but its folders {} could not be deleted (delete them by hand): {}",
        folders.join(", "),
        crate::web::error_chain(error)
    )]
    Folders {
        /// The folders left, by path.
        folders: Vec<String>,
        /// Why.
        error: Layer7Error,
    },
}

/// Puts `pre_state` back (`NEW_OR_UPDATE`) and deletes `created`. Entities other
/// than folders go in one install: each section lists the created entities first,
/// with per-entity `DELETE` mappings (a restored entity may take back a unique key
/// a created one holds), then the pre-state. Created folders are deleted after,
/// with `deleteBundleEntities` (deepest first): by then nothing the install moved
/// into them is left there. Graphman takes one bundle per request, so this is two
/// requests when the import created folders.
pub async fn restore(
    client: &GraphmanClient,
    pre_state: &GraphmanBundle,
    created: &[GraphmanCreated],
) -> Result<Restored, RestoreError> {
    let (folders, others): (Vec<&GraphmanCreated>, Vec<&GraphmanCreated>) = created
        .iter()
        .partition(|entity| entity.section == "folders");
    let mut bundle = GraphmanBundle::default();
    let mut instructions: Map<String, Value> = Map::new();
    for entity in others.iter().rev() {
        bundle.push(&entity.section, Value::Object(entity.identity.clone()));
        if let Value::Array(list) = instructions
            .entry(entity.section.clone())
            .or_insert_with(|| json!([]))
        {
            list.push(json!({"action": "DELETE", "source": entity.identity}));
        }
    }
    for (section, entities) in pre_state.entity_sections() {
        for entity in entities {
            bundle.push(section, entity.clone());
        }
    }
    let mut restored = Restored::default();
    if !bundle.is_empty() {
        let bundle = GraphmanBundle {
            sections: {
                let mut sections = super::graphman_export::in_dependency_order(bundle).sections;
                sections.insert(
                    PROPERTIES.to_owned(),
                    json!({"defaultAction": "NEW_OR_UPDATE", "mappings": instructions}),
                );
                sections
            },
        };
        let answer = client
            .install_bundle(&bundle, &GraphmanOptions::default())
            .await
            .map_err(RestoreError::Nothing)?;
        for result in graphman_results(&bundle, &answer) {
            match result.status.as_str() {
                "DELETED" => restored.deleted.push(result.entity()),
                "CREATED" | "UPDATED" => restored.restored.push(result.entity()),
                _ => {}
            }
        }
    }
    if !folders.is_empty() {
        let mut delete = GraphmanBundle::default();
        for folder in &folders {
            delete.push("folders", Value::Object(folder.identity.clone()));
        }
        let paths: Vec<String> = folders
            .iter()
            .map(|folder| {
                folder
                    .identity
                    .get("folderPath")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect();
        let answer = client
            .delete_bundle(&delete, &GraphmanOptions::default())
            .await
            .map_err(|error| RestoreError::Folders {
                folders: paths,
                error,
            })?;
        for result in graphman_results(&delete, &answer) {
            if result.status == "DELETED" {
                restored.deleted.push(result.entity());
            }
        }
    }
    Ok(restored)
}
