//! `kong.target` ([`KongTarget`]): sets the weight of one target of an upstream
//! (weight 0 drains it), creating the target when it is missing.
//!
//! Plan reads the target and shows `weight A -> B`, `no change`, or the target it
//! would create. The undo record holds the previous weight, or says the step
//! created the target (undo then deletes it).

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::client::{KongClient, KongError, segment};
use super::gateway::KongGateway;
use super::{FAMILY, KongTargetArguments};

/// The port Kong gives a target written without one.
pub const DEFAULT_TARGET_PORT: u16 = 8000;

/// What `undo` restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetUndo {
    /// The target existed with this weight.
    Weight {
        /// Its weight before the step.
        previous_weight: u16,
    },
    /// The step created the target (its id).
    Created {
        /// The created target's id.
        id: String,
    },
}

/// The `kong.target` action.
#[derive(Debug, Clone)]
pub struct KongTarget {
    spec: ActionSpec,
}

impl KongTarget {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<KongTargetArguments>(
                "kong.target",
                FAMILY,
                "Sets an upstream target's weight; weight 0 drains it.",
                Effect::write().idempotent().reversible(),
            )
            .target(TargetKind::Gateway("kong"))
            .outputs(&["id", "weight", "previous_weight"]),
        }
    }
}

impl Default for KongTarget {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for KongTarget {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = KongGateway::for_step(context).await?;
        let current = wanted.current(&gateway.client).await?;
        Ok(wanted.change(current.as_ref().map(|target| target.weight)))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = KongGateway::for_step(context).await?;
        let client = &gateway.client;
        let current = wanted.current(client).await?;
        // What this write replaces: as an interrupted earlier attempt found it (its write
        // may have landed: a drained weight is not the weight to restore), else as now.
        let replaced = match context.prepared.earlier() {
            Some(kept) => Replaced::read(kept)?,
            None => Replaced::of(current.as_ref()),
        };
        let change = wanted.change(replaced.weight());
        let id = match current {
            Some(target) if target.weight == wanted.weight => target.id,
            Some(target) => {
                context.prepared.keep(replaced.to_json()).await?;
                let patched = client
                    .patch(
                        &wanted.target_path(&target.id),
                        &json!({"weight": wanted.weight}),
                    )
                    .await;
                wanted.settled(client, patched).await?;
                target.id
            }
            None => {
                context.prepared.keep(replaced.to_json()).await?;
                let created = client
                    .post(
                        &wanted.targets_path(),
                        &json!({"target": wanted.target, "weight": wanted.weight}),
                    )
                    .await;
                wanted.settled(client, created).await?
            }
        };
        let (undo, previous) = match replaced.weight() {
            Some(previous_weight) => (TargetUndo::Weight { previous_weight }, Value::from(previous_weight)),
            None => (TargetUndo::Created { id: id.clone() }, Value::Null),
        };
        let undo = serde_json::to_value(&undo).map_err(|e| ActionError::failed(e.to_string()))?;
        Ok(Applied {
            secrets: Vec::new(),
            outputs: wanted.outputs(&id, previous),
            undo: Some(undo),
            change: Some(change),
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let undo: TargetUndo = crate::arguments::undo_record("kong.target", undo)?;
        let gateway = KongGateway::for_step(context).await?;
        let client = &gateway.client;
        match undo {
            TargetUndo::Created { id } => match client.delete(&wanted.target_path(&id)).await {
                // Already gone: nothing left to undo (a nested DELETE of a missing target is 404).
                Err(error) if error.is_not_found() => Ok(()),
                outcome => Ok(outcome?),
            },
            TargetUndo::Weight { previous_weight } => {
                match wanted.current(client).await? {
                    Some(target) if target.weight == previous_weight => {}
                    Some(target) => {
                        client
                            .patch(
                                &wanted.target_path(&target.id),
                                &json!({"weight": previous_weight}),
                            )
                            .await?;
                    }
                    // Deleted since: put it back as it was.
                    None => {
                        client
                            .post(
                                &wanted.targets_path(),
                                &json!({"target": wanted.target, "weight": previous_weight}),
                            )
                            .await?;
                    }
                }
                Ok(())
            }
        }
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = KongGateway::for_step(context).await?;
        match wanted.current(&gateway.client).await? {
            // Done, but the weight it replaced is not known any more: no undo record.
            Some(target) if target.weight == wanted.weight => Ok(Probe::Done(Applied {
                secrets: Vec::new(),
                outputs: wanted.outputs(&target.id, Value::Null),
                undo: None,
                change: Some(Change::none(wanted.describe_no_change())),
            })),
            _ => Ok(Probe::NotDone),
        }
    }
}

/// The target a write replaces, as kept in the journal before the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Replaced {
    /// Its weight; `None` when there was no target.
    weight: Option<u16>,
}

impl Replaced {
    /// The state of `current`.
    fn of(current: Option<&CurrentTarget>) -> Self {
        Self {
            weight: current.map(|target| target.weight),
        }
    }

    /// What an earlier attempt kept.
    fn read(kept: &Value) -> Result<Self, ActionError> {
        serde_json::from_value(kept.clone()).map_err(|error| {
            ActionError::failed(format!(
                "kong.target: the state an earlier attempt kept is unreadable: {error}"
            ))
        })
    }

    /// Its weight, `None` for "no target".
    fn weight(self) -> Option<u16> {
        self.weight
    }

    /// As kept in the journal.
    fn to_json(self) -> Value {
        json!({"weight": self.weight})
    }
}

/// A target as Kong lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CurrentTarget {
    id: String,
    weight: u16,
}

/// The checked arguments: the target's `host:port` as Kong stores it.
#[derive(Debug, Clone)]
struct Wanted {
    upstream: String,
    target: String,
    weight: u16,
}

impl Wanted {
    /// Reads the rendered arguments; adds Kong's default port to a target without one.
    fn parse(arguments: Value) -> Result<Self, ActionError> {
        let arguments: KongTargetArguments =
            serde_json::from_value(arguments).map_err(|error| ActionError::InvalidArguments {
                action: "kong.target",
                message: error.to_string(),
            })?;
        Ok(Self {
            upstream: arguments.upstream,
            target: with_default_port(&arguments.target),
            weight: arguments.weight,
        })
    }

    /// `/upstreams/{u}/targets`.
    fn targets_path(&self) -> String {
        format!("/upstreams/{}/targets", segment(&self.upstream))
    }

    /// `/upstreams/{u}/targets/{id}`.
    fn target_path(&self, id: &str) -> String {
        format!("{}/{}", self.targets_path(), segment(id))
    }

    /// The target's id after a write: from Kong's answer, or, when the answer did not come
    /// in time, from the target once it shows the wanted weight (looked for again).
    async fn settled(
        &self,
        client: &KongClient,
        written: Result<Value, KongError>,
    ) -> Result<String, ActionError> {
        let error = match written {
            Ok(stored) => return Ok(text(&stored, "id")),
            Err(error) if error.is_unanswered() => error,
            Err(error) => return Err(error.into()),
        };
        client
            .look_again(|| async {
                match self.current(client).await {
                    Ok(Some(target)) if target.weight == self.weight => Some(target.id),
                    _ => None,
                }
            })
            .await
            .ok_or_else(|| error.into())
    }

    /// The target as Kong has it now; an error when the upstream does not exist.
    async fn current(&self, client: &KongClient) -> Result<Option<CurrentTarget>, ActionError> {
        let upstream = format!("/upstreams/{}", segment(&self.upstream));
        if client.find(&upstream).await?.is_none() {
            return Err(ActionError::failed(format!(
                "upstream `{}` not found on the gateway ({}{upstream})",
                self.upstream,
                client.base_url()
            )));
        }
        let targets = client.list(&self.targets_path()).await?;
        Ok(targets
            .iter()
            .find(|target| target.get("target").and_then(Value::as_str) == Some(&self.target))
            .map(|target| CurrentTarget {
                id: text(target, "id"),
                weight: target
                    .get("weight")
                    .and_then(Value::as_u64)
                    .and_then(|weight| u16::try_from(weight).ok())
                    .unwrap_or_default(),
            }))
    }

    /// What setting the weight changes, from the current weight (`None`: no such target).
    fn change(&self, current: Option<u16>) -> Change {
        let after = format!("weight: {}\n", self.weight);
        match current {
            Some(weight) if weight == self.weight => Change::none(self.describe_no_change()),
            Some(weight) => Change::between(
                format!(
                    "target {} of upstream {}: weight {weight} -> {}",
                    self.target, self.upstream, self.weight
                ),
                Some(format!("weight: {weight}\n")),
                after,
            ),
            None => Change::between(
                format!(
                    "create target {} in upstream {} with weight {}",
                    self.target, self.upstream, self.weight
                ),
                None,
                after,
            ),
        }
    }

    /// The summary of a step that changes nothing.
    fn describe_no_change(&self) -> String {
        format!(
            "target {} of upstream {}: weight {}, no change",
            self.target, self.upstream, self.weight
        )
    }

    /// The step's outputs.
    fn outputs(&self, id: &str, previous_weight: Value) -> Map<String, Value> {
        let mut outputs = Map::new();
        outputs.insert("id".to_owned(), Value::from(id));
        outputs.insert("weight".to_owned(), Value::from(self.weight));
        outputs.insert("previous_weight".to_owned(), previous_weight);
        outputs
    }
}

/// A string field of an entity (empty when absent).
fn text(entity: &Value, key: &str) -> String {
    entity
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `host:port`, with Kong's default port when the target names none (`[v6]` included).
pub fn with_default_port(target: &str) -> String {
    let has_port = match target.rfind(']') {
        Some(end) => target[end..].contains(':'),
        None => target.contains(':'),
    };
    if has_port {
        target.to_owned()
    } else {
        format!("{target}:{DEFAULT_TARGET_PORT}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_default_port_only_when_missing() {
        assert_eq!(with_default_port("10.0.0.1"), "10.0.0.1:8000");
        assert_eq!(with_default_port("10.0.0.1:8080"), "10.0.0.1:8080");
        assert_eq!(with_default_port("a.test"), "a.test:8000");
        assert_eq!(with_default_port("[::1]"), "[::1]:8000");
        assert_eq!(with_default_port("[::1]:81"), "[::1]:81");
    }

    #[test]
    fn plans_weight_changes_creations_and_no_change() -> Result<(), ActionError> {
        let wanted = Wanted::parse(json!({"upstream": "core", "target": "10.0.0.1", "weight": 0}))?;
        let change = wanted.change(Some(100));
        assert_eq!(
            change.summary,
            "target 10.0.0.1:8000 of upstream core: weight 100 -> 0"
        );
        assert_eq!(change.changes, Some(true));
        assert_eq!(change.before.as_deref(), Some("weight: 100\n"));
        assert_eq!(
            wanted.change(Some(0)),
            Change::none("target 10.0.0.1:8000 of upstream core: weight 0, no change")
        );
        let create = wanted.change(None);
        assert_eq!(create.changes, Some(true));
        assert!(create.summary.starts_with("create target 10.0.0.1:8000"));
        Ok(())
    }

    #[test]
    fn undo_records_read_back() -> Result<(), serde_json::Error> {
        for undo in [
            TargetUndo::Weight { previous_weight: 7 },
            TargetUndo::Created {
                id: "t1".to_owned(),
            },
        ] {
            let value = serde_json::to_value(&undo)?;
            assert_eq!(serde_json::from_value::<TargetUndo>(value)?, undo);
        }
        Ok(())
    }
}
