//! Operations sent to the Admin API ([`execute`]) and the restore of the state a
//! sync replaced ([`restore`], from an [`UndoRecord`]).
//!
//! Writes: a create is `PUT /{collection}/{id}` (credentials
//! `PUT /consumers/{c}/{cred}/{id}`; targets `POST /upstreams/{u}/targets` with the id
//! in the body, as decK does, since a target PUT only updates); an update is a PATCH of
//! the changed fields; a delete is a DELETE by id (a nested 404 means already gone).
//! A restore deletes what the sync created, then puts every previous entity back with
//! its id: a full PUT, except certificates (a PUT would drop their SNIs) and targets,
//! which are PATCHed with every field; a created entity Kong would not delete while a
//! changed one still referred to it is deleted after that one is put back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::diff::{Operation, Plan, same_entity, same_field};
use super::dump::dump;
use super::state::{Entity, State, now, short};
use super::{cascades, rank, referenced_kind};
use crate::kong::KongEntityKind;
use crate::kong::client::{KongClient, KongError, segment};

/// What a restore needs: the entities a sync created and the previous versions of
/// those it changed or deleted (with the children Kong deletes with a parent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UndoRecord {
    /// Entities the sync creates: kind, id and parent reference only.
    pub created: Vec<Entity>,
    /// Entities as they were before the sync, secrets included.
    pub previous: Vec<Entity>,
}

impl UndoRecord {
    /// The record for `plan`, with cascaded children found in `before` (the whole gateway).
    pub fn for_plan(plan: &Plan, before: &State) -> Self {
        let mut record = UndoRecord::default();
        let mut gone = State::default();
        for operation in &plan.operations {
            match operation {
                Operation::Create(entity) => record.created.push(identity(entity)),
                Operation::Update { current, .. } => record.previous.push(current.clone()),
                Operation::Delete(entity) => {
                    gone.push(entity.clone());
                    record.previous.push(entity.clone());
                }
            }
        }
        // Children Kong deletes with their parent, whether the plan names them or not.
        loop {
            let cascaded: Vec<Entity> = before
                .iter()
                .filter(|entity| gone.get(entity.kind, entity.id()).is_none())
                .filter(|entity| {
                    entity.entry().foreign.iter().any(|field| {
                        cascades(entity.kind, field)
                            && referenced_kind(entity.kind, field).is_some_and(|kind| {
                                entity
                                    .reference(field)
                                    .is_some_and(|id| gone.get(kind, id).is_some())
                            })
                    })
                })
                .cloned()
                .collect();
            if cascaded.is_empty() {
                break;
            }
            for entity in cascaded {
                gone.push(entity.clone());
                record.previous.push(entity);
            }
        }
        record
    }

    /// Every secret value the record holds (masked by the executor).
    pub fn secrets(&self) -> Vec<String> {
        self.previous.iter().flat_map(Entity::secrets).collect()
    }

    /// How many entities it restores.
    pub fn len(&self) -> usize {
        self.created.len() + self.previous.len()
    }

    /// Whether it restores nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An entity's kind, id and parent reference: what deleting it needs.
fn identity(entity: &Entity) -> Entity {
    let mut fields = Map::new();
    fields.insert("id".to_owned(), Value::String(entity.id().to_owned()));
    if let Some(parent) = entity.entry().parent
        && let Some(value) = entity.fields.get(parent.field())
    {
        fields.insert(parent.field().to_owned(), value.clone());
    }
    Entity {
        kind: entity.kind,
        fields,
    }
}

/// A failed operation: which one (its index in the plan) and Kong's answer.
#[derive(Debug)]
pub struct Failed {
    /// Index of the operation in the plan.
    pub index: usize,
    /// What Kong (or the connection) said.
    pub error: KongError,
}

/// Sends the plan's operations in order; stops at the first failure.
pub async fn execute(client: &KongClient, plan: &Plan) -> Result<(), Failed> {
    for (index, operation) in plan.operations.iter().enumerate() {
        let outcome = match operation {
            Operation::Create(entity) => create(client, entity).await,
            Operation::Update { current, changes } => update(client, current, changes).await,
            Operation::Delete(entity) => delete(client, entity).await,
        };
        match outcome {
            Ok(()) => {}
            // Unanswered, but it took effect while runsheet looked again: go on.
            Err(error) if error.is_unanswered() && landed(client, operation).await => {}
            Err(error) => return Err(Failed { index, error }),
        }
    }
    Ok(())
}

/// After `operation` went unanswered: whether it shows on the gateway within the wait
/// for one answer (the entity there, with the changed fields; or gone).
async fn landed(client: &KongClient, operation: &Operation) -> bool {
    client
        .look_again(|| async {
            let shows = match operation {
                Operation::Create(entity) => {
                    matches!(client.find(&entity_path(entity)).await, Ok(Some(_)))
                }
                Operation::Update { current, changes } => {
                    // Compared as the diff compares (records by the keys given, tags as a
                    // set, a key's expiry within the tolerance).
                    match client.find(&entity_path(current)).await {
                        Ok(Some(found)) => Entity::from_kong(current.kind, &found, now())
                            .is_some_and(|have| {
                                changes.iter().all(|(field, value)| {
                                    same_field(field, value, have.fields.get(field.as_str()))
                                })
                            }),
                        _ => false,
                    }
                }
                Operation::Delete(entity) => {
                    matches!(client.find(&entity_path(entity)).await, Ok(None))
                }
            };
            shows.then_some(())
        })
        .await
        .is_some()
}

/// The collection an entity is written to (`/consumers/{c}/key-auth` for a credential).
fn collection_path(entity: &Entity) -> String {
    entity.entry().collection_path(entity.parent_id())
}

/// The entity's own path, by id.
fn entity_path(entity: &Entity) -> String {
    format!("{}/{}", collection_path(entity), segment(entity.id()))
}

/// The fields as Kong takes them in a write: no id, a key-auth `ttl` as seconds left.
fn write_body(kind: KongEntityKind, fields: &Map<String, Value>) -> Value {
    let mut body = fields.clone();
    body.remove("id");
    if kind == KongEntityKind::KeyAuth
        && let Some(expiry) = body.get("ttl").and_then(Value::as_i64)
    {
        body.insert("ttl".to_owned(), Value::from((expiry - now()).max(1)));
    }
    Value::Object(body)
}

/// Creates the entity with its id.
pub async fn create(client: &KongClient, entity: &Entity) -> Result<(), KongError> {
    let body = write_body(entity.kind, &entity.fields);
    if entity.kind == KongEntityKind::Target {
        let mut body = body;
        if let Some(fields) = body.as_object_mut() {
            fields.insert("id".to_owned(), Value::String(entity.id().to_owned()));
        }
        return client.post(&collection_path(entity), &body).await.map(drop);
    }
    client.put(&entity_path(entity), &body).await.map(drop)
}

/// Writes the changed fields of an entity.
pub async fn update(
    client: &KongClient,
    current: &Entity,
    changes: &Map<String, Value>,
) -> Result<(), KongError> {
    client
        .patch(&entity_path(current), &write_body(current.kind, changes))
        .await
        .map(drop)
}

/// Deletes the entity; one already gone is not an error.
pub async fn delete(client: &KongClient, entity: &Entity) -> Result<(), KongError> {
    match client.delete(&entity_path(entity)).await {
        Err(error) if error.is_not_found() => Ok(()),
        outcome => outcome,
    }
}

/// Puts `previous` back as it was, given what the gateway has now under its id;
/// `Ok(false)` when a basic-auth password could not be put back (Kong keeps a hash).
async fn put_back(
    client: &KongClient,
    previous: &Entity,
    now_there: Option<&Entity>,
) -> Result<bool, KongError> {
    let password_kept = |there: Option<&Entity>| {
        previous.kind != KongEntityKind::BasicAuth
            || previous.fields.get("password").is_none()
            || there.is_some_and(|there| {
                there.fields.get("password") == previous.fields.get("password")
            })
    };
    let Some(now_there) = now_there else {
        create(client, previous).await?;
        return Ok(password_kept(None));
    };
    let kept = password_kept(Some(now_there));
    let patched = matches!(
        previous.kind,
        KongEntityKind::Certificate | KongEntityKind::Target
    ) || (previous.kind == KongEntityKind::BasicAuth && kept);
    if patched {
        // Every field back; fields it did not have are cleared; a kept password is not rewritten.
        let mut fields = previous.fields.clone();
        for field in now_there.fields.keys() {
            if !fields.contains_key(field) {
                fields.insert(field.clone(), Value::Null);
            }
        }
        fields.remove("id");
        if previous.kind == KongEntityKind::BasicAuth {
            fields.remove("password");
        }
        update(client, now_there, &fields).await?;
        return Ok(true);
    }
    client
        .put(
            &entity_path(previous),
            &write_body(previous.kind, &previous.fields),
        )
        .await?;
    Ok(kept)
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Writes it made.
    pub writes: usize,
    /// Entities it could not put back, each with why: a person must look at them.
    pub failures: Vec<String>,
}

impl Restored {
    /// Whether everything is back.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Brings the entities of `record` back to their state before the sync: deletes those
/// it created (children first), then puts back every previous entity that differs from
/// the gateway's (parents first), then deletes again the created ones Kong refused to
/// delete while a changed entity still referred to them. Goes on past failures and
/// lists them.
pub async fn restore(client: &KongClient, record: &UndoRecord) -> Restored {
    let mut restored = Restored::default();
    let mut names = State::default();
    for entity in &record.previous {
        names.push(entity.clone());
    }
    let current = match dump(client, &[]).await {
        Ok(current) => current,
        Err(error) => {
            restored.failures = everything(record, &names, &error);
            return restored;
        }
    };
    let mut created: Vec<&Entity> = record
        .created
        .iter()
        .filter(|entity| current.get(entity.kind, entity.id()).is_some())
        .collect();
    created.sort_by_key(|entity| std::cmp::Reverse(rank(entity.kind)));
    // A delete Kong refuses (an entity the sync changed still refers to it: a route
    // moved onto a created service) is tried again once the previous entities are back.
    let mut refused = Vec::new();
    for entity in &created {
        restored.writes += 1;
        if delete(client, entity).await.is_err() {
            refused.push(*entity);
        }
    }
    let current = if created.is_empty() {
        current
    } else {
        match dump(client, &[]).await {
            Ok(current) => current,
            Err(error) => {
                restored.failures.extend(everything(record, &names, &error));
                return restored;
            }
        }
    };
    let mut previous: Vec<&Entity> = record.previous.iter().collect();
    previous.sort_by_key(|entity| rank(entity.kind));
    let now = now();
    for entity in previous {
        let there = current.get(entity.kind, entity.id());
        if there.is_some_and(|there| same_entity(there, entity)) {
            continue;
        }
        if entity.kind == KongEntityKind::KeyAuth
            && entity
                .fields
                .get("ttl")
                .and_then(Value::as_i64)
                .is_some_and(|expiry| expiry <= now)
        {
            continue; // expired since: Kong would have removed it anyway
        }
        restored.writes += 1;
        let label = format!("{} (id {})", names.label(entity), entity.id());
        match put_back(client, entity, there).await {
            Err(error) => restored
                .failures
                .push(format!("{label}: put back failed: {error}")),
            Ok(false) => restored.failures.push(format!(
                "{label}: put back, but Kong keeps only a hash of its password, which cannot \
                 be written back: set its password again"
            )),
            Ok(true) => {}
        }
    }
    for entity in refused {
        restored.writes += 1;
        if let Err(error) = delete(client, entity).await {
            restored.failures.push(format!(
                "{} {} (created by the sync): delete failed: {error}",
                entity.entry().label,
                entity.id()
            ));
        }
    }
    restored
}

/// Every entity of the record, as needing a person, when the gateway cannot be read.
fn everything(record: &UndoRecord, names: &State, error: &KongError) -> Vec<String> {
    let mut failures = vec![format!("could not read the gateway to restore it: {error}")];
    failures.extend(record.created.iter().map(|entity| {
        format!(
            "{} {} (created by the sync): not checked",
            entity.entry().label,
            entity.id()
        )
    }));
    failures.extend(record.previous.iter().map(|entity| {
        format!(
            "{} (id {}): not checked",
            names.label(entity),
            short(entity.id())
        )
    }));
    failures
}
