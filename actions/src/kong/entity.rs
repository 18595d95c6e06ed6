//! `kong.entity` ([`KongEntity`]): makes one Admin API entity of any kind in the
//! catalogue (kinds.rs) present with the fields given, or absent.
//!
//! Plan and apply make the same decision from the same reads ([`Survey`]): create
//! (POST, or PUT by id when `match` gives one), update (PATCH of only the fields that
//! differ), delete, or no change. The undo record holds what the step replaced
//! ([`EntityUndo`]). Secret fields (the kind's `secrets`) never appear in a plan, a
//! message or an output; their values go to [`Applied::secrets`].

mod compare;
mod locate;
mod render;
mod request;

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::client::{KongClient, KongError, hide_secrets, hide_secrets_in, segment};
use super::gateway::KongGateway;
use super::kinds::{self, Kind};
use super::{FAMILY, KongEntityArguments};
use crate::arguments::Presence;
use render::{SECRET, SECRET_CHANGED, SECRET_UNCHANGED};
use request::{ACTION, Request, secret_values};

/// The mask an output shows instead of a secret field's value.
pub const MASK: &str = SECRET;

/// Fields an undo record does not keep: Kong stamps them again on re-creation.
const STAMPS: &[&str] = &["created_at", "updated_at"];

/// Write options: Kong takes them in a body but refuses `null`; `0` means none (a
/// credential's `ttl`, reference §7.5).
const WRITE_OPTIONS: &[&str] = &["ttl"];

/// What `undo` restores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntityUndo {
    /// The step created the entity: undo deletes it.
    Created {
        /// The created entity's id.
        id: String,
        /// The parent's id, for nested kinds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<String>,
    },
    /// The step changed some fields: undo writes their previous values back.
    Updated {
        /// The entity's id.
        id: String,
        /// The parent's id, for nested kinds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<String>,
        /// The fields that changed, as they were.
        previous: Map<String, Value>,
    },
    /// The step deleted the entity: undo re-creates it with the same id.
    Deleted {
        /// The whole entity as it was, without its timestamps.
        previous: Map<String, Value>,
    },
}

/// What a write of `kong.entity` replaces, kept in the journal before the write: the
/// undo of that write, or `None` when there was no entity (a create).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Replaced {
    undo: Option<EntityUndo>,
}

/// The `kong.entity` action.
#[derive(Debug, Clone)]
pub struct KongEntity {
    spec: ActionSpec,
}

impl KongEntity {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<KongEntityArguments>(
                ACTION,
                FAMILY,
                "Makes one Admin API entity present with the given fields, or absent.",
                Effect::write().idempotent().reversible(),
            )
            .target(TargetKind::Gateway("kong"))
            .outputs(&["id", "entity", "changed"]),
        }
    }
}

impl Default for KongEntity {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for KongEntity {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let request = Request::parse(arguments)?;
        let gateway = KongGateway::for_step(context).await?;
        let survey = Survey::read(&gateway.client, request).await?;
        Ok(survey.change(&survey.decide()))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let request = Request::parse(arguments)?;
        let gateway = KongGateway::for_step(context).await?;
        let client = &gateway.client;
        let survey = Survey::read(client, request).await?;
        let decision = survey.decide();
        let change = survey.change(&decision);
        let mut secrets = survey.secrets();
        // What this write replaces: as an interrupted earlier try kept it (its write may
        // have landed: the entity as wanted now is not what the undo puts back), else now.
        let earlier: Option<Replaced> = context
            .prepared
            .earlier()
            .map(|kept| crate::arguments::undo_record(ACTION, kept.clone()))
            .transpose()?;
        if !matches!(decision, Decision::NoChange) {
            let replaced = earlier.clone().unwrap_or_else(|| survey.replaced(&decision));
            let kept = serde_json::to_value(&replaced).map_err(|error| {
                ActionError::failed(format!("{ACTION}: cannot keep the state it replaces: {error}"))
            })?;
            context.prepared.keep(kept).await?;
        }
        let (stored, undo) = match survey.carry_out(client, &decision).await {
            Ok(done) => done,
            // The write went unanswered (the only partial outcome here): look again.
            Err(error @ ActionError::PartiallyApplied { .. }) => {
                match survey.landed(client, &decision).await {
                    Some(done) => done,
                    None => return Err(survey.mask(error)),
                }
            }
            Err(error) => return Err(survey.mask(error)),
        };
        if let Some(stored) = &stored {
            secrets.extend(stored_secrets(survey.request.kind, stored));
        }
        let undo = match earlier.clone().map(|replaced| replaced.undo) {
            None => undo,
            Some(Some(first)) => Some(first),
            // The first try created it: the undo deletes what is there now.
            Some(None) => undo.or_else(|| survey.created_undo()),
        };
        let undo = undo
            .map(|undo| {
                serde_json::to_value(&undo).map_err(|error| {
                    ActionError::failed(format!("{ACTION}: cannot record the undo: {error}"))
                })
            })
            .transpose()?;
        let changed = earlier.is_some() || !matches!(decision, Decision::NoChange);
        let shown = stored.as_ref().or(match decision {
            Decision::Delete => None,
            _ => survey.current.as_ref(),
        });
        let id = match decision {
            Decision::Delete => survey.current_id(),
            _ => shown
                .and_then(|entity| entity.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        secrets.sort();
        secrets.dedup();
        Ok(Applied {
            outputs: outputs(survey.request.kind, id, shown, changed),
            undo,
            change: Some(change),
            secrets,
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let request = Request::parse(arguments)?;
        let undo: EntityUndo = crate::arguments::undo_record(ACTION, undo)?;
        let gateway = KongGateway::for_step(context).await?;
        let secrets = match &undo {
            EntityUndo::Updated { previous, .. } | EntityUndo::Deleted { previous } => {
                secret_values(request.kind, previous)
            }
            EntityUndo::Created { .. } => Vec::new(),
        };
        restore(&gateway.client, &request, undo)
            .await
            .map_err(|error| mask(error, &[request.secrets(), secrets].concat()))
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let request = Request::parse(arguments)?;
        let gateway = KongGateway::for_step(context).await?;
        let survey = Survey::read(&gateway.client, request).await?;
        if !matches!(survey.decide(), Decision::NoChange) {
            return Ok(Probe::NotDone);
        }
        // Done, but what it replaced is not known any more: no undo record.
        let kind = survey.request.kind;
        let mut secrets = survey.secrets();
        secrets.sort();
        secrets.dedup();
        Ok(Probe::Done(Applied {
            outputs: outputs(kind, survey.current_id(), survey.current.as_ref(), true),
            undo: None,
            change: Some(survey.change(&Decision::NoChange)),
            secrets,
        }))
    }
}

/// What a step does, from the entity as it is and as wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// The entity is missing and must be present.
    Create,
    /// These fields (in the order given) differ from what is wanted.
    Update(Vec<String>),
    /// The entity exists and must be absent.
    Delete,
    /// The entity is as wanted.
    NoChange,
}

/// The request with what the gateway has: the entity and the wanted fields, resolved.
#[derive(Debug, Clone)]
struct Survey {
    /// The checked arguments.
    request: Request,
    /// The entity as Kong stores it.
    current: Option<Value>,
    /// `spec` with its references resolved to ids: the fields compared.
    compared: Map<String, Value>,
    /// The body of a create: the identifying fields of `match` (resolved) and `compared`.
    create: Map<String, Value>,
}

impl Survey {
    /// Reads the entity and resolves the references of `match` and `spec`.
    async fn read(client: &KongClient, request: Request) -> Result<Self, ActionError> {
        let current = locate::find(client, &request).await?;
        let compared = if request.state == Presence::Present {
            locate::resolve_all(client, request.kind, &request.spec).await?
        } else {
            Map::new()
        };
        let mut create = Map::new();
        if request.state == Presence::Present && current.is_none() {
            let identity = locate::resolve_all(client, request.kind, &request.identity).await?;
            for (field, value) in identity {
                let keeps_id = field == "id" && !creates_by_put(request.kind);
                if (field != "id" || keeps_id) && !value.is_null() {
                    create.insert(field, value);
                }
            }
            create.extend(compared.clone());
        }
        Ok(Self {
            request,
            current,
            compared,
            create,
        })
    }

    /// What the step does.
    fn decide(&self) -> Decision {
        match (self.request.state, &self.current) {
            (Presence::Present, None) => Decision::Create,
            (Presence::Present, Some(current)) => {
                let differing = compare::differing(current, &self.compared);
                if differing.is_empty() {
                    Decision::NoChange
                } else {
                    Decision::Update(differing)
                }
            }
            (Presence::Absent, Some(_)) => Decision::Delete,
            (Presence::Absent, None) => Decision::NoChange,
        }
    }

    /// What the decision changes, for plans and reports; secret values never shown (those
    /// inside a plugin's `config` are replaced wherever they appear).
    fn change(&self, decision: &Decision) -> Change {
        let secrets = self.secrets();
        let hide = |text: String| hide_secrets(&text, &secrets, MASK);
        let change = self.fields_change(decision);
        Change {
            summary: hide(change.summary),
            before: change.before.map(hide),
            after: change.after.map(hide),
            ..change
        }
    }

    /// What the decision changes, with the kind's secret fields shown as masks.
    fn fields_change(&self, decision: &Decision) -> Change {
        let kind = self.request.kind;
        let described = self.request.describe();
        let secret = |field: &str| kind.is_secret(field).then_some(SECRET);
        match decision {
            Decision::Create => {
                let mut shown = self.create.clone();
                if let Some(id) = self.request.id() {
                    shown.insert("id".to_owned(), Value::from(id));
                }
                Change::between(
                    format!("create {described}"),
                    None,
                    render::text(&shown, secret),
                )
            }
            Decision::Update(differing) => {
                let current = self.current.as_ref().unwrap_or(&Value::Null);
                let before: Map<String, Value> = self
                    .compared
                    .iter()
                    .map(|(field, wanted)| {
                        (
                            field.clone(),
                            compare::projected(current.get(field.as_str()), wanted),
                        )
                    })
                    .collect();
                let note = |changed: bool, field: &str| {
                    kind.is_secret(field).then_some(if changed {
                        SECRET_CHANGED
                    } else {
                        SECRET_UNCHANGED
                    })
                };
                let changed = |field: &str| differing.iter().any(|name| name == field);
                let before_note = |field: &str| {
                    if changed(field) {
                        kind.is_secret(field).then_some(SECRET)
                    } else {
                        note(false, field)
                    }
                };
                Change::between(
                    format!("update {described}: {}", differing.join(", ")),
                    Some(render::text(&before, before_note)),
                    render::text(&self.compared, |field| note(changed(field), field)),
                )
            }
            Decision::Delete => {
                let shown = self
                    .current
                    .as_ref()
                    .map(without_stamps)
                    .unwrap_or_default();
                let summary = match kind.cascade() {
                    Some(also) => format!(
                        "delete {described} (Kong deletes {also} with it; undo brings back only the {})",
                        kind.label
                    ),
                    None => format!("delete {described}"),
                };
                Change::between(summary, Some(render::text(&shown, secret)), String::new())
            }
            Decision::NoChange if self.request.state == Presence::Absent => {
                Change::none(format!("{described}: absent, no change"))
            }
            Decision::NoChange => Change::none(format!("{described}: no change")),
        }
    }

    /// Writes what the decision says; the entity Kong stored (none after a delete) and
    /// the undo record (none when nothing changed).
    async fn carry_out(
        &self,
        client: &KongClient,
        decision: &Decision,
    ) -> Result<(Option<Value>, Option<EntityUndo>), ActionError> {
        let request = &self.request;
        let kind = request.kind;
        let parent = request.parent.as_deref();
        let described = request.describe();
        let failed = |doing: &str, error: KongError| kong_failure(doing, &described, error);
        match decision {
            Decision::NoChange => Ok((None, None)),
            Decision::Create => {
                self.check_parent(client).await?;
                let body = Value::Object(self.create.clone());
                let stored = match request.id() {
                    Some(id) if creates_by_put(kind) => {
                        client.put(&kind.entity_path(parent, id), &body).await
                    }
                    _ => client.post(&kind.collection_path(parent), &body).await,
                }
                .map_err(|error| failed("create", error))?;
                let id = text(&stored, "id").ok_or_else(|| {
                    ActionError::failed(format!("create {described}: Kong's answer has no id"))
                })?;
                let parent = parent_id(kind, &stored);
                Ok((Some(stored), Some(EntityUndo::Created { id, parent })))
            }
            Decision::Update(differing) => {
                let current = self.current.as_ref().unwrap_or(&Value::Null);
                let id = self.current_id().unwrap_or_default();
                let mut body = Map::new();
                for field in differing {
                    let before = current.get(field.as_str());
                    let wanted = self.compared.get(field.as_str()).unwrap_or(&Value::Null);
                    body.insert(field.clone(), compare::merged(before, wanted));
                }
                let previous = self.previous(differing);
                let stored = client
                    .patch(&kind.entity_path(parent, &id), &Value::Object(body))
                    .await
                    .map_err(|error| failed("update", error))?;
                let parent = parent_id(kind, current);
                Ok((
                    Some(stored),
                    Some(EntityUndo::Updated {
                        id,
                        parent,
                        previous,
                    }),
                ))
            }
            Decision::Delete => {
                let current = self.current.as_ref().unwrap_or(&Value::Null);
                let id = self.current_id().unwrap_or_default();
                match client.delete(&kind.entity_path(parent, &id)).await {
                    // A nested DELETE of an entity gone meanwhile is 404: it is absent.
                    Err(error) if error.is_not_found() => {}
                    outcome => outcome.map_err(|error| failed("delete", error))?,
                }
                let previous = without_stamps(current);
                Ok((None, Some(EntityUndo::Deleted { previous })))
            }
        }
    }

    /// After a write went unanswered: reads the entity again, for as long as one answer is
    /// waited for, until it is as wanted. Then the write took effect late and the step's
    /// result and undo are as if it had been answered; `None` when it never showed.
    async fn landed(
        &self,
        client: &KongClient,
        decision: &Decision,
    ) -> Option<(Option<Value>, Option<EntityUndo>)> {
        let now = client
            .look_again(|| async {
                Survey::read(client, self.request.clone())
                    .await
                    .ok()
                    .filter(|now| now.decide() == Decision::NoChange)
            })
            .await?;
        let kind = self.request.kind;
        let current = self.current.as_ref().unwrap_or(&Value::Null);
        let undo = match decision {
            Decision::NoChange => return Some((None, None)),
            Decision::Create => {
                let stored = now.current.as_ref()?;
                EntityUndo::Created {
                    id: text(stored, "id")?,
                    parent: parent_id(kind, stored),
                }
            }
            Decision::Update(differing) => EntityUndo::Updated {
                id: self.current_id().unwrap_or_default(),
                parent: parent_id(kind, current),
                previous: self.previous(differing),
            },
            Decision::Delete => EntityUndo::Deleted {
                previous: without_stamps(current),
            },
        };
        tracing::warn!(
            entity = %self.request.describe(),
            "Kong did not answer the write in time, but it took effect"
        );
        Some((now.current, Some(undo)))
    }

    /// The fields of `differing` as they are now, for an update's undo.
    fn previous(&self, differing: &[String]) -> Map<String, Value> {
        let current = self.current.as_ref().unwrap_or(&Value::Null);
        differing
            .iter()
            .map(|field| {
                (
                    field.clone(),
                    previous_value(field, current.get(field.as_str())),
                )
            })
            .collect()
    }

    /// For a nested kind: an error naming the parent when it does not exist.
    async fn check_parent(&self, client: &KongClient) -> Result<(), ActionError> {
        let (Some(of), Some(parent)) = (self.request.kind.parent, &self.request.parent) else {
            return Ok(());
        };
        let path = format!("/{}/{}", of.collection(), segment(parent));
        let described = self.request.describe();
        match client.find(&path).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ActionError::failed(format!(
                "create {described}: {} `{parent}` not found on the gateway ({}{path})",
                of.field(),
                client.base_url()
            ))),
            Err(error) => Err(kong_failure("create", &described, error)),
        }
    }

    /// What `decision`'s write replaces, kept before it is carried out.
    fn replaced(&self, decision: &Decision) -> Replaced {
        let current = self.current.as_ref().unwrap_or(&Value::Null);
        let undo = match decision {
            Decision::NoChange | Decision::Create => None,
            Decision::Update(differing) => Some(EntityUndo::Updated {
                id: self.current_id().unwrap_or_default(),
                parent: parent_id(self.request.kind, current),
                previous: self.previous(differing),
            }),
            Decision::Delete => Some(EntityUndo::Deleted {
                previous: without_stamps(current),
            }),
        };
        Replaced { undo }
    }

    /// The undo of a create whose entity is there now (an earlier try made it).
    fn created_undo(&self) -> Option<EntityUndo> {
        let current = self.current.as_ref()?;
        Some(EntityUndo::Created {
            id: self.current_id()?,
            parent: parent_id(self.request.kind, current),
        })
    }

    /// The id of the entity as it is.
    fn current_id(&self) -> Option<String> {
        self.current.as_ref().and_then(|entity| text(entity, "id"))
    }

    /// Every secret value the step was given or read.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.request.secrets();
        if let Some(current) = &self.current {
            secrets.extend(stored_secrets(self.request.kind, current));
        }
        secrets
    }

    /// `error` with the step's secret values replaced by the mask.
    fn mask(&self, error: ActionError) -> ActionError {
        mask(error, &self.secrets())
    }
}

/// Writes back what an undo record says the step replaced.
async fn restore(
    client: &KongClient,
    request: &Request,
    undo: EntityUndo,
) -> Result<(), ActionError> {
    let kind = request.kind;
    let described = request.describe();
    let failed = |error: KongError| kong_failure("undo", &described, error);
    if let EntityUndo::Updated { previous, .. } | EntityUndo::Deleted { previous } = &undo
        && let Some(field) = previous.keys().find(|field| kind.is_hashed(field))
    {
        return Err(ActionError::failed(format!(
            "undo {described}: Kong keeps only a hash of its previous `{field}`, which cannot be written back: restore it by hand"
        )));
    }
    match undo {
        EntityUndo::Created { id, parent } => {
            let parent = parent.or_else(|| request.parent.clone());
            match client
                .delete(&kind.entity_path(parent.as_deref(), &id))
                .await
            {
                // Already gone: nothing left to undo.
                Err(error) if error.is_not_found() => Ok(()),
                outcome => outcome.map_err(failed),
            }
        }
        EntityUndo::Updated {
            id,
            parent,
            previous,
        } => {
            let parent = parent.or_else(|| request.parent.clone());
            client
                .patch(
                    &kind.entity_path(parent.as_deref(), &id),
                    &Value::Object(previous),
                )
                .await
                .map(|_| ())
                .map_err(failed)
        }
        EntityUndo::Deleted { previous } => {
            recreate(client, request, previous).await.map_err(failed)
        }
    }
}

/// Creates a deleted entity again with its id and references (PUT by id; targets, which
/// PUT only updates: PUT, then on 404 POST with the id in the body, as decK does), so
/// that running it twice leaves the same entity.
async fn recreate(
    client: &KongClient,
    request: &Request,
    previous: Map<String, Value>,
) -> Result<(), KongError> {
    let kind = request.kind;
    let entity = Value::Object(previous.clone());
    let parent = parent_id(kind, &entity).or_else(|| request.parent.clone());
    let id = text(&entity, "id").unwrap_or_default();
    // Unset fields are left out: PUT gives them their defaults, and write options
    // (a credential's `ttl`) refuse null.
    let mut body: Map<String, Value> = previous
        .into_iter()
        .filter(|(field, value)| !value.is_null() && !STAMPS.contains(&field.as_str()))
        .collect();
    if kind.puts_create() {
        body.shift_remove("id");
        client
            .put(
                &kind.entity_path(parent.as_deref(), &id),
                &Value::Object(body),
            )
            .await
            .map(|_| ())
    } else {
        // Already re-created (an undo run again): PUT updates it; missing: 404, then POST.
        let mut update = body.clone();
        update.shift_remove("id");
        match client
            .put(
                &kind.entity_path(parent.as_deref(), &id),
                &Value::Object(update),
            )
            .await
        {
            Err(error) if error.is_not_found() => client
                .post(
                    &kind.collection_path(parent.as_deref()),
                    &Value::Object(body),
                )
                .await
                .map(|_| ()),
            outcome => outcome.map(|_| ()),
        }
    }
}

/// Whether a create with an id from `match` is a PUT by id (top-level kinds) rather than a
/// POST with the id in the body. A nested PUT (`/consumers/alice/key-auth/{id}`) upserts
/// by id without checking the owner: on an id of bob's credential it would move it to
/// alice and replace it; a POST answers Kong's primary key violation instead.
fn creates_by_put(kind: &Kind) -> bool {
    kind.puts_create() && kind.parent.is_none()
}

/// What an undo writes back for `field`, stored as `before`: the value, or null when
/// unset (for a write option such as `ttl`, which refuses null: `0`, none).
fn previous_value(field: &str, before: Option<&Value>) -> Value {
    match before {
        Some(value) if !value.is_null() => value.clone(),
        _ if WRITE_OPTIONS.contains(&field) => Value::from(0),
        _ => Value::Null,
    }
}

/// The step's outputs: `id`, `entity` with secret fields masked, `changed`.
fn outputs(
    kind: &Kind,
    id: Option<String>,
    entity: Option<&Value>,
    changed: bool,
) -> Map<String, Value> {
    let mut outputs = Map::new();
    outputs.insert("id".to_owned(), id.map_or(Value::Null, Value::from));
    outputs.insert(
        "entity".to_owned(),
        entity.map_or(Value::Null, |entity| masked(kind, entity)),
    );
    outputs.insert("changed".to_owned(), Value::Bool(changed));
    outputs
}

/// `entity` with the kind's secret fields, and those inside a plugin's `config`, replaced
/// by [`MASK`] (null stays null).
fn masked(kind: &Kind, entity: &Value) -> Value {
    let mut entity = entity.clone();
    if let Value::Object(fields) = &mut entity {
        for field in kind.secrets {
            if let Some(value) = fields.get_mut(*field)
                && !value.is_null()
            {
                *value = Value::from(MASK);
            }
        }
        if let Some(config) = fields.get_mut("config") {
            kinds::mask_sensitive_config(config, MASK);
        }
    }
    entity
}

/// The secret values of a stored entity.
fn stored_secrets(kind: &Kind, entity: &Value) -> Vec<String> {
    entity
        .as_object()
        .map(|fields| secret_values(kind, fields))
        .unwrap_or_default()
}

/// `entity`'s fields without `created_at` and `updated_at`.
fn without_stamps(entity: &Value) -> Map<String, Value> {
    entity
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(field, _)| !STAMPS.contains(&field.as_str()))
                .map(|(field, value)| (field.clone(), value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The id of a nested entity's parent, from its reference field.
fn parent_id(kind: &Kind, entity: &Value) -> Option<String> {
    let field = kind.parent?.field();
    entity.get(field).and_then(|parent| text(parent, "id"))
}

/// A string field of an entity.
fn text(entity: &Value, field: &str) -> Option<String> {
    entity.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// A failed write, as Kong said it, naming what was being done.
fn kong_failure(doing: &str, described: &str, error: KongError) -> ActionError {
    if error.is_unanswered() {
        return ActionError::partially_applied(
            format!("{doing} {described}: {error}"),
            vec![format!(
                "{described}: the {doing} was sent, not answered, and had not taken effect when runsheet stopped looking; Kong may still apply it"
            )],
        );
    }
    match ActionError::from(error) {
        ActionError::Failed { message } => {
            ActionError::failed(format!("{doing} {described}: {message}"))
        }
        other => other,
    }
}

/// `error` with every value of `secrets` (and its path-encoded form) replaced by the mask.
pub(super) fn mask(error: ActionError, secrets: &[String]) -> ActionError {
    hide_secrets_in(error, secrets, MASK)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn undo_records_read_back() -> Result<(), serde_json::Error> {
        let previous = json!({"retries": 5})
            .as_object()
            .cloned()
            .unwrap_or_default();
        for undo in [
            EntityUndo::Created {
                id: "a".to_owned(),
                parent: None,
            },
            EntityUndo::Updated {
                id: "a".to_owned(),
                parent: Some("c".to_owned()),
                previous: previous.clone(),
            },
            EntityUndo::Deleted { previous },
        ] {
            let value = serde_json::to_value(&undo)?;
            assert_eq!(serde_json::from_value::<EntityUndo>(value)?, undo);
        }
        assert_eq!(
            serde_json::to_value(EntityUndo::Created {
                id: "a".to_owned(),
                parent: None
            })?,
            json!({"kind": "created", "id": "a"})
        );
        Ok(())
    }

    #[test]
    fn masks_secrets_in_messages_and_outputs() {
        let error = mask(
            ActionError::failed("UNIQUE violation detected on '{key=\"k 1\"}' (GET /x/k%201)"),
            &["k 1".to_owned()],
        );
        assert_eq!(
            error.to_string(),
            "UNIQUE violation detected on '{key=\"(secret)\"}' (GET /x/(secret))"
        );
        let kind = super::super::kinds::kind(super::super::KongEntityKind::KeyAuth);
        assert_eq!(
            masked(kind, &json!({"key": "k1", "ttl": null})),
            json!({"key": "(secret)", "ttl": null})
        );
    }
}
