//! The operations that bring one [`State`] to another ([`diff`]), in dependency
//! order: creates and updates parents first (kinds order), then deletes children
//! first; and how they read in a plan ([`Plan::change`]).
//!
//! An update changes only the fields the desired entity gives that differ: `tags`
//! compare as sets, records (`config`, `healthchecks`) key by key for the keys given,
//! a key-auth `ttl` (an expiry time) within a few seconds.

use serde_json::{Map, Value};

use super::rank;
use super::state::{Entity, State, sorted};
use super::yaml::to_yaml;
use runsheet_engine::Change;

/// Seconds two key-auth expiry times may differ by and still be the same expiry.
const TTL_TOLERANCE: f64 = 2.0;

/// What a plan shows for a secret that changes (both values stay hidden).
const CHANGED_SECRET: &str = "<secret changed>";

/// Fields compared key by key for the keys given (Kong merges them on PATCH).
const RECORDS: &[&str] = &["config", "healthchecks"];

/// One write to the Admin API.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// The entity is created with its id.
    Create(Entity),
    /// The entity's `changes` (desired values of the differing fields) are written.
    Update {
        /// The entity as the gateway has it.
        current: Entity,
        /// The fields that change, with their new values.
        changes: Map<String, Value>,
    },
    /// The entity is deleted.
    Delete(Entity),
}

impl Operation {
    /// The entity the operation is about (as the gateway has it, for updates and deletes).
    pub fn entity(&self) -> &Entity {
        match self {
            Operation::Create(entity) | Operation::Delete(entity) => entity,
            Operation::Update { current, .. } => current,
        }
    }

    /// `create`, `update` or `delete`.
    pub fn verb(&self) -> &'static str {
        match self {
            Operation::Create(_) => "create",
            Operation::Update { .. } => "update",
            Operation::Delete(_) => "delete",
        }
    }
}

/// The ordered operations between two states.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Creates and updates parents first, then deletes children first.
    pub operations: Vec<Operation>,
}

/// The operations that make `current` into `desired`; entities of `current` that
/// `desired` does not name are deleted only when `delete` is set.
pub fn diff(current: &State, desired: &State, delete: bool) -> Plan {
    let mut writes: Vec<&Entity> = desired.iter().collect();
    writes.sort_by_key(|entity| rank(entity.kind));
    let mut operations = Vec::new();
    for wanted in writes {
        match current.get(wanted.kind, wanted.id()) {
            None => operations.push(Operation::Create(wanted.clone())),
            Some(have) => {
                let changes = changed_fields(wanted, have);
                if !changes.is_empty() {
                    operations.push(Operation::Update {
                        current: have.clone(),
                        changes,
                    });
                }
            }
        }
    }
    if delete {
        let mut gone: Vec<&Entity> = current
            .iter()
            .filter(|have| desired.get(have.kind, have.id()).is_none())
            .collect();
        gone.sort_by_key(|entity| std::cmp::Reverse(rank(entity.kind)));
        operations.extend(gone.into_iter().cloned().map(Operation::Delete));
    }
    Plan { operations }
}

/// The fields `wanted` gives (its id aside) whose values differ from `have`'s.
pub fn changed_fields(wanted: &Entity, have: &Entity) -> Map<String, Value> {
    wanted
        .fields
        .iter()
        .filter(|(field, _)| field.as_str() != "id")
        .filter(|(field, value)| !same_field(field, value, have.fields.get(field.as_str())))
        .map(|(field, value)| (field.clone(), value.clone()))
        .collect()
}

/// Whether two entities are the same in every field (expiry within the tolerance).
pub fn same_entity(a: &Entity, b: &Entity) -> bool {
    let covers = |x: &Entity, y: &Entity| {
        x.fields.iter().all(|(field, value)| {
            if RECORDS.contains(&field.as_str()) {
                y.fields
                    .get(field)
                    .is_some_and(|other| same_value(value, other))
            } else {
                same_field(field, value, y.fields.get(field))
            }
        })
    };
    a.kind == b.kind && covers(a, b) && covers(b, a)
}

/// Whether a given field value is what the gateway has (`null`: unset, as absent).
pub(super) fn same_field(field: &str, wanted: &Value, have: Option<&Value>) -> bool {
    if wanted.is_null() {
        return have.is_none_or(Value::is_null);
    }
    match field {
        "tags" => {
            let set = |value: Option<&Value>| {
                let mut tags: Vec<String> = value
                    .and_then(Value::as_array)
                    .map(|tags| tags.iter().map(Value::to_string).collect())
                    .unwrap_or_default();
                tags.sort();
                tags.dedup();
                tags
            };
            set(Some(wanted)) == set(have)
        }
        "ttl" => match (wanted.as_f64(), have.and_then(Value::as_f64)) {
            (Some(a), Some(b)) => (a - b).abs() <= TTL_TOLERANCE,
            _ => have == Some(wanted),
        },
        record if RECORDS.contains(&record) => {
            have.is_some_and(|have| given_keys_equal(wanted, have))
        }
        _ => have.is_some_and(|have| same_value(wanted, have)),
    }
}

/// Whether every key given in `wanted` (recursively through records) equals `have`'s.
fn given_keys_equal(wanted: &Value, have: &Value) -> bool {
    match (wanted, have) {
        (Value::Object(wanted), Value::Object(have)) => {
            wanted.iter().all(|(key, value)| match have.get(key) {
                Some(other) => given_keys_equal(value, other),
                None => value.is_null(),
            })
        }
        _ => same_value(wanted, have),
    }
}

/// JSON equality with numbers compared by value (`100` equals `100.0`) and a `null`
/// member of an object the same as an absent one (files leave nulls out, Kong
/// answers them: `sources: [{ip: ..., port: null}]`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            let covers = |x: &Map<String, Value>, y: &Map<String, Value>| {
                x.iter()
                    .filter(|(_, value)| !value.is_null())
                    .all(|(key, value)| y.get(key).is_some_and(|other| same_value(value, other)))
            };
            covers(x, y) && covers(y, x)
        }
        _ => a == b,
    }
}

impl Plan {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// How many creates, updates and deletes.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |verb: &str| {
            self.operations
                .iter()
                .filter(|operation| operation.verb() == verb)
                .count()
        };
        (count("create"), count("update"), count("delete"))
    }

    /// `3 to create, 1 to update, 2 to delete`.
    pub fn summary(&self) -> String {
        let (create, update, delete) = self.counts();
        format!("{create} to create, {update} to update, {delete} to delete")
    }

    /// The plan as a change: the affected entities before and after, secrets masked;
    /// `current` and `desired` name the entities' parents in the labels.
    pub fn change(&self, what: &str, current: &State, desired: &State) -> Change {
        if self.is_empty() {
            return Change::none(format!(
                "{what}: in sync ({} entities), no change",
                desired.len()
            ));
        }
        let mut before = Map::new();
        let mut after = Map::new();
        for operation in &self.operations {
            match operation {
                Operation::Create(entity) => {
                    after.insert(
                        format!("create {}", desired.label(entity)),
                        shown(&entity.masked()),
                    );
                }
                Operation::Update {
                    current: have,
                    changes,
                } => {
                    let label = format!("update {}", current.label(have));
                    before.insert(label.clone(), shown(&have.masked()));
                    let mut merged = have.clone();
                    for (field, value) in changes {
                        merged.fields.insert(field.clone(), value.clone());
                    }
                    let mut merged = merged.masked();
                    for secret in have.entry().secrets {
                        if changes.contains_key(*secret) {
                            merged.insert((*secret).to_owned(), Value::from(CHANGED_SECRET));
                        }
                    }
                    after.insert(label, shown(&merged));
                }
                Operation::Delete(entity) => {
                    before.insert(
                        format!("delete {}", current.label(entity)),
                        shown(&entity.masked()),
                    );
                }
            }
        }
        let text =
            |map: Map<String, Value>| (!map.is_empty()).then(|| to_yaml(&Value::Object(map)));
        Change {
            changes: Some(true),
            summary: format!("{what}: {}", self.summary()),
            before: text(before),
            after: text(after).or(Some(String::new())),
        }
    }
}

/// Fields as a plan shows them: sorted, references as plain ids.
fn shown(fields: &Map<String, Value>) -> Value {
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort();
    Value::Object(
        keys.into_iter()
            .map(|key| {
                let value = &fields[key];
                let value = match value.as_object() {
                    Some(reference) if reference.len() == 1 && reference.contains_key("id") => {
                        reference["id"].clone()
                    }
                    _ => sorted(value),
                };
                (key.clone(), value)
            })
            .collect(),
    )
}
