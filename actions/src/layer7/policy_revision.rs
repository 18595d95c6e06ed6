//! `layer7.policy_revision` ([`Layer7PolicyRevision`]): activates a revision of a
//! service's or policy's policy (`POST …/versions/{n}/activate`): a number, or
//! `previous` (the highest revision below the active one), the cheapest rollback
//! of a policy change (reference §4.6).
//!
//! Plan shows `active revision A -> B` with both revisions' comments, and the two
//! revisions' policy XML as before and after. The undo record holds the revision
//! that was active ([`RevisionUndo`]); undo activates it again.

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::arguments::{Layer7PolicyRevisionArguments, RevisionChoice};
use super::gateway::Layer7Gateway;
use super::restman::{Policy, PolicyVersion, RestmanClient, Service};
use super::selection::{find_policy, find_services};
use super::{FAMILY, Layer7Error};
use crate::arguments::parse;

/// The action's type name.
const NAME: &str = "layer7.policy_revision";

/// The `layer7.policy_revision` action.
#[derive(Debug, Clone)]
pub struct Layer7PolicyRevision {
    spec: ActionSpec,
}

impl Layer7PolicyRevision {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<Layer7PolicyRevisionArguments>(
                NAME,
                FAMILY,
                "Activates a revision of a service's or policy's policy.",
                Effect::write().reversible(),
            )
            .target(TargetKind::Gateway("layer7"))
            .outputs(&["id", "revision", "previous_revision", "changed"]),
        }
    }
}

impl Default for Layer7PolicyRevision {
    fn default() -> Self {
        Self::new()
    }
}

/// Whose policy: a service's or a policy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// A published service.
    Service,
    /// A policy or policy fragment.
    Policy,
}

impl Owner {
    /// `service` or `policy`.
    fn noun(self) -> &'static str {
        match self {
            Owner::Service => "service",
            Owner::Policy => "policy",
        }
    }
}

/// What `undo` restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RevisionUndo {
    /// Re-activate this revision.
    Activate {
        /// Service or policy.
        owner: Owner,
        /// Its id.
        id: String,
        /// The revision that was active before the step.
        previous_revision: u64,
    },
    /// The step took effect before an interruption; the revision it replaced is not known.
    Lost {
        /// The entity in words.
        entity: String,
    },
}

/// The service or policy the step names.
#[derive(Debug, Clone)]
struct Target {
    /// Service or policy.
    owner: Owner,
    /// Its id.
    id: String,
    /// Its name.
    name: String,
}

impl Target {
    /// `service `orders` (id)`.
    fn describe(&self) -> String {
        format!("{} `{}` ({})", self.owner.noun(), self.name, self.id)
    }

    /// Finds the service or policy the arguments name.
    async fn find(
        gateway: &Layer7Gateway,
        arguments: &Layer7PolicyRevisionArguments,
    ) -> Result<Self, ActionError> {
        let restman = &gateway.restman;
        match (&arguments.service, &arguments.policy) {
            (Some(reference), None) => {
                let services = find_services(restman, reference).await?;
                match services.as_slice() {
                    [] => Err(ActionError::failed(format!(
                        "{NAME}: service `{reference}` not found on gateway `{}` (by resolution path, name or id)",
                        gateway.name
                    ))),
                    [service] => Ok(Self {
                        owner: Owner::Service,
                        id: service.id.clone().unwrap_or_default(),
                        name: service.detail.name.clone(),
                    }),
                    several => Err(ActionError::failed(format!(
                        "{NAME}: `{reference}` names {} services on gateway `{}` ({}): name one by id",
                        several.len(),
                        gateway.name,
                        several
                            .iter()
                            .map(|s| format!(
                                "`{}` {}",
                                s.detail.name,
                                s.id.as_deref().unwrap_or("?")
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            }
            (None, Some(reference)) => match find_policy(restman, reference).await? {
                Some(policy) => Ok(Self {
                    owner: Owner::Policy,
                    id: policy.id.clone().unwrap_or_default(),
                    name: policy.detail.name.clone(),
                }),
                None => Err(ActionError::failed(format!(
                    "{NAME}: policy `{reference}` not found on gateway `{}` (by name or id)",
                    gateway.name
                ))),
            },
            _ => Err(ActionError::InvalidArguments {
                action: NAME,
                message: "give exactly one of `service` and `policy`".to_owned(),
            }),
        }
    }

    /// Its policy revisions.
    async fn versions(&self, restman: &RestmanClient) -> Result<Vec<PolicyVersion>, Layer7Error> {
        match self.owner {
            Owner::Service => restman.versions::<Service>(&self.id).await,
            Owner::Policy => restman.versions::<Policy>(&self.id).await,
        }
    }

    /// Activates revision `ordinal`.
    async fn activate(&self, restman: &RestmanClient, ordinal: u64) -> Result<(), Layer7Error> {
        match self.owner {
            Owner::Service => restman.activate_version::<Service>(&self.id, ordinal).await,
            Owner::Policy => restman.activate_version::<Policy>(&self.id, ordinal).await,
        }
    }
}

/// The active revision and the one the step wants.
#[derive(Debug, Clone)]
struct Situation {
    /// The revision active now.
    active: PolicyVersion,
    /// The revision to activate.
    wanted: PolicyVersion,
}

/// Picks the active and the wanted revision out of `versions`.
fn situation(
    target: &Target,
    versions: &[PolicyVersion],
    choice: RevisionChoice,
) -> Result<Situation, ActionError> {
    let entity = target.describe();
    let active = versions
        .iter()
        .find(|version| version.active)
        .cloned()
        .ok_or_else(|| ActionError::failed(format!("{NAME}: {entity} has no active revision")))?;
    let wanted = match choice {
        RevisionChoice::Number(number) => versions
            .iter()
            .find(|version| version.ordinal == u64::from(number))
            .cloned()
            .ok_or_else(|| {
                ActionError::failed(format!(
                    "{NAME}: {entity} has no revision {number} (it has {})",
                    ordinals(versions)
                ))
            })?,
        RevisionChoice::Previous => versions
            .iter()
            .filter(|version| version.ordinal < active.ordinal)
            .max_by_key(|version| version.ordinal)
            .cloned()
            .ok_or_else(|| {
                ActionError::failed(format!(
                    "{NAME}: {entity}: active revision {} is its oldest: there is no previous revision",
                    active.ordinal
                ))
            })?,
    };
    Ok(Situation { active, wanted })
}

/// `1, 2, 3`.
fn ordinals(versions: &[PolicyVersion]) -> String {
    let mut numbers: Vec<u64> = versions.iter().map(|version| version.ordinal).collect();
    numbers.sort_unstable();
    numbers
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `3 ("fix timeout")` or `3 (no comment)`.
fn labelled(version: &PolicyVersion) -> String {
    match version.comment.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(comment) => format!("{} (\"{comment}\")", version.ordinal),
        None => format!("{} (no comment)", version.ordinal),
    }
}

impl Situation {
    /// What activating changes.
    fn change(&self, target: &Target) -> Change {
        if self.active.ordinal == self.wanted.ordinal {
            return Change::none(format!(
                "{}: revision {} is active already, no change",
                target.describe(),
                labelled(&self.active)
            ));
        }
        let mut change = Change::between(
            format!(
                "{}: active revision {} -> {}",
                target.describe(),
                labelled(&self.active),
                labelled(&self.wanted)
            ),
            Some(self.active.xml.clone().unwrap_or_default()),
            self.wanted.xml.clone().unwrap_or_default(),
        );
        // Two revisions may hold the same policy; activating still changes which one serves.
        change.changes = Some(true);
        change
    }
}

/// The step's outputs.
fn outputs(
    target: &Target,
    revision: u64,
    previous: Option<u64>,
    changed: bool,
) -> Map<String, Value> {
    let mut outputs = Map::new();
    outputs.insert("id".to_owned(), json!(target.id));
    outputs.insert("revision".to_owned(), json!(revision));
    outputs.insert("previous_revision".to_owned(), json!(previous));
    outputs.insert("changed".to_owned(), json!(changed));
    outputs
}

/// An error of the gateway in words naming the entity.
fn failed(target: &Target, error: &Layer7Error) -> ActionError {
    let message = format!(
        "{NAME}: {}: {}",
        target.describe(),
        crate::web::error_chain(error)
    );
    if error.is_unanswered() {
        // The activation was sent and not answered: it may still take effect.
        return ActionError::partially_applied(
            message,
            vec![format!(
                "{}: the revision activation may still take effect",
                target.describe()
            )],
        );
    }
    ActionError::failed(message)
}

#[async_trait::async_trait]
impl Action for Layer7PolicyRevision {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let arguments: Layer7PolicyRevisionArguments = parse(NAME, arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let target = Target::find(&gateway, &arguments).await?;
        let versions = target
            .versions(&gateway.restman)
            .await
            .map_err(|error| failed(&target, &error))?;
        Ok(situation(&target, &versions, arguments.activate)?.change(&target))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: Layer7PolicyRevisionArguments = parse(NAME, arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let target = Target::find(&gateway, &arguments).await?;
        let versions = target
            .versions(&gateway.restman)
            .await
            .map_err(|error| failed(&target, &error))?;
        let situation = situation(&target, &versions, arguments.activate)?;
        let change = situation.change(&target);
        let changed = situation.active.ordinal != situation.wanted.ordinal;
        if changed {
            target
                .activate(&gateway.restman, situation.wanted.ordinal)
                .await
                .map_err(|error| failed(&target, &error))?;
        }
        let undo = RevisionUndo::Activate {
            owner: target.owner,
            id: target.id.clone(),
            previous_revision: situation.active.ordinal,
        };
        let undo = serde_json::to_value(&undo)
            .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
        Ok(Applied {
            outputs: outputs(
                &target,
                situation.wanted.ordinal,
                Some(situation.active.ordinal),
                changed,
            ),
            undo: Some(undo),
            change: Some(change),
            secrets: Vec::new(),
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        _arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let record: RevisionUndo = crate::arguments::undo_record(NAME, undo)?;
        let (owner, id, previous) = match record {
            RevisionUndo::Lost { entity } => {
                return Err(ActionError::failed(format!(
                    "{NAME}: {entity}: the step took effect before an interruption and the revision it replaced was not recorded: activate it by hand"
                )));
            }
            RevisionUndo::Activate {
                owner,
                id,
                previous_revision,
            } => (owner, id, previous_revision),
        };
        let gateway = Layer7Gateway::for_step(context).await?;
        let target = Target {
            owner,
            name: id.clone(),
            id,
        };
        let versions = target
            .versions(&gateway.restman)
            .await
            .map_err(|error| failed(&target, &error))?;
        if versions
            .iter()
            .any(|version| version.active && version.ordinal == previous)
        {
            return Ok(());
        }
        target
            .activate(&gateway.restman, previous)
            .await
            .map_err(|error| failed(&target, &error))?;
        tracing::info!(
            step = %context.step_id,
            entity = %target.describe(),
            revision = previous,
            "layer7.policy_revision undone: re-activated the revision that was active before"
        );
        Ok(())
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let arguments: Layer7PolicyRevisionArguments = parse(NAME, arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let target = Target::find(&gateway, &arguments).await?;
        let versions = target
            .versions(&gateway.restman)
            .await
            .map_err(|error| failed(&target, &error))?;
        let Some(active) = versions.iter().find(|version| version.active) else {
            return Ok(Probe::Unknown(format!(
                "{NAME}: {} has no active revision",
                target.describe()
            )));
        };
        let newest = versions.iter().map(|version| version.ordinal).max();
        let done = match arguments.activate {
            RevisionChoice::Number(number) => active.ordinal == u64::from(number),
            // Still on the newest revision: `previous` was not activated. Otherwise
            // it may have been, or the newest was not active before the step.
            RevisionChoice::Previous if Some(active.ordinal) == newest => false,
            RevisionChoice::Previous => {
                return Ok(Probe::Unknown(format!(
                    "{NAME}: {}: revision {} is active, not the newest; whether this step activated it cannot be told",
                    target.describe(),
                    active.ordinal
                )));
            }
        };
        if !done {
            return Ok(Probe::NotDone);
        }
        let undo = serde_json::to_value(RevisionUndo::Lost {
            entity: target.describe(),
        })
        .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
        Ok(Probe::Done(Applied {
            outputs: outputs(&target, active.ordinal, None, true),
            undo: Some(undo),
            change: Some(Change::unknown(format!(
                "{}: revision {} is active (done before the interruption; the revision it replaced is not known)",
                target.describe(),
                active.ordinal
            ))),
            secrets: Vec::new(),
        }))
    }
}
