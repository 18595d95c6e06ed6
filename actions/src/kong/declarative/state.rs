//! The declarative model: a [`State`] of flat [`Entity`]s, each as Kong stores it
//! (fields without timestamps or nulls, references as `{"id": ...}`), whether read
//! from the gateway or resolved from a file.
//!
//! One rule differs from the Admin API: a key-auth credential's `ttl` is held as the
//! absolute Unix time it expires at (as Kong's declarative format writes it), not the
//! seconds left, so that two reads of one state are equal.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{MASK, rank};
use crate::kong::KongEntityKind;
use crate::kong::kinds::{self, Kind};

/// Fields Kong computes or mirrors: dropped when read, never written.
const READ_ONLY: &[(KongEntityKind, &str)] = &[
    (KongEntityKind::Certificate, "snis"),
    (KongEntityKind::CaCertificate, "cert_digest"),
];

/// The current Unix time in seconds.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// One entity of one kind: its fields as Kong stores them, `id` included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Its kind.
    pub kind: KongEntityKind,
    /// Its fields (no timestamps, no null fields (nested nulls kept, so that a PUT restores
    /// records whole); references as `{"id": ...}`; key-auth `ttl` absolute).
    pub fields: Map<String, Value>,
}

impl Entity {
    /// An entity from an Admin API answer read at Unix time `now`; `None` when it is not an object.
    pub fn from_kong(kind: KongEntityKind, answer: &Value, now: i64) -> Option<Self> {
        let mut fields = answer.as_object()?.clone();
        for generated in ["created_at", "updated_at"] {
            fields.remove(generated);
        }
        for (of, field) in READ_ONLY {
            if *of == kind {
                fields.remove(*field);
            }
        }
        fields.retain(|_, value| !value.is_null());
        if kind == KongEntityKind::KeyAuth
            && let Some(left) = fields.get("ttl").and_then(Value::as_i64)
        {
            fields.insert("ttl".to_owned(), Value::from(now + left));
        }
        Some(Self { kind, fields })
    }

    /// Its table entry.
    pub fn entry(&self) -> &'static Kind {
        kinds::kind(self.kind)
    }

    /// Its id (empty when it has none).
    pub fn id(&self) -> &str {
        self.text("id").unwrap_or_default()
    }

    /// A string field.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    /// The id a reference field points at (`{"id": ...}`).
    pub fn reference(&self, field: &str) -> Option<&str> {
        self.fields
            .get(field)
            .and_then(|value| value.get("id"))
            .and_then(Value::as_str)
    }

    /// The id of the entity a nested kind lives under (a credential's consumer, a target's upstream).
    pub fn parent_id(&self) -> Option<&str> {
        self.entry()
            .parent
            .and_then(|parent| self.reference(parent.field()))
    }

    /// The value that names it for people: its first key field that is not secret
    /// (`name`, `username`, `target`, `group`...), `None` for kinds named by id only.
    pub fn name(&self) -> Option<&str> {
        let entry = self.entry();
        if self.kind == KongEntityKind::Plugin {
            return self.text("name");
        }
        entry
            .keys
            .iter()
            .filter(|key| !entry.is_secret(key))
            .find_map(|key| self.text(key))
    }

    /// What snapshots sort by: the name, then the id.
    pub fn sort_key(&self) -> (String, String) {
        (
            self.name().unwrap_or_default().to_owned(),
            self.id().to_owned(),
        )
    }

    /// Its fields with every secret (those inside a plugin's `config` included) replaced
    /// by [`MASK`].
    pub fn masked(&self) -> Map<String, Value> {
        let mut fields = self.fields.clone();
        for secret in self.entry().secrets {
            if let Some(value) = fields.get_mut(*secret)
                && !value.is_null()
            {
                *value = Value::String(MASK.to_owned());
            }
        }
        if let Some(config) = fields.get_mut("config") {
            kinds::mask_sensitive_config(config, MASK);
        }
        fields
    }

    /// The values of its secret fields and of the secrets inside a plugin's `config`
    /// (to be masked by the executor).
    pub fn secrets(&self) -> Vec<String> {
        let mut values: Vec<String> = self
            .entry()
            .secrets
            .iter()
            .filter_map(|secret| self.text(secret))
            .map(str::to_owned)
            .collect();
        if let Some(config) = self.fields.get("config") {
            values.extend(kinds::sensitive_config_values(config));
        }
        values.retain(|value| !value.is_empty() && value != MASK);
        values
    }

    /// Whether it carries every one of `tags`.
    pub fn has_tags(&self, tags: &[String]) -> bool {
        let own = self.fields.get("tags").and_then(Value::as_array);
        tags.iter()
            .all(|tag| own.is_some_and(|own| own.iter().any(|value| value.as_str() == Some(tag))))
    }
}

/// `value` as files and plans show it: the keys of every object sorted (Kong's JSON
/// objects come in no fixed order) and `null` members left out, recursively.
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|key| !map[*key].is_null()).collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|key| (key.clone(), sorted(&map[key])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Entities of every kind, each findable by kind and id.
#[derive(Debug, Clone, Default)]
pub struct State {
    entities: Vec<Entity>,
    index: HashMap<(usize, String), usize>,
}

impl State {
    /// Adds an entity (a second one with the same kind and id replaces the first).
    pub fn push(&mut self, entity: Entity) {
        let key = (rank(entity.kind), entity.id().to_owned());
        match self.index.get(&key) {
            Some(&at) => self.entities[at] = entity,
            None => {
                self.index.insert(key, self.entities.len());
                self.entities.push(entity);
            }
        }
    }

    /// The entity of `kind` with `id`.
    pub fn get(&self, kind: KongEntityKind, id: &str) -> Option<&Entity> {
        self.index
            .get(&(rank(kind), id.to_owned()))
            .map(|&at| &self.entities[at])
    }

    /// Every entity, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Entity> {
        self.entities.iter()
    }

    /// The entities of one kind, in the order they were added.
    pub fn of_kind(&self, kind: KongEntityKind) -> impl Iterator<Item = &Entity> {
        self.entities
            .iter()
            .filter(move |entity| entity.kind == kind)
    }

    /// How many entities it holds.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether it holds no entity.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// The entities carrying every one of `tags` (all of them when `tags` is empty);
    /// targets go with their upstream, as [`super::dump::dump`] reads them.
    pub fn with_tags(&self, tags: &[String]) -> State {
        let mut selected = State::default();
        for entity in self
            .iter()
            .filter(|entity| entity.kind != KongEntityKind::Target && entity.has_tags(tags))
        {
            selected.push(entity.clone());
        }
        for target in self.of_kind(KongEntityKind::Target) {
            if target
                .parent_id()
                .is_some_and(|upstream| selected.get(KongEntityKind::Upstream, upstream).is_some())
            {
                selected.push(target.clone());
            }
        }
        selected
    }

    /// A label for people: `service billing`, `target 10.0.0.1:8000 of upstream core`,
    /// `plugin key-auth on route r`, `key-auth credential 1a2b3c4d of consumer alice`.
    pub fn label(&self, entity: &Entity) -> String {
        let own = match entity.name() {
            Some(name) => format!("{} {name}", entity.entry().label),
            None => format!("{} {}", entity.entry().label, short(entity.id())),
        };
        let scope: Vec<String> = entity
            .entry()
            .foreign
            .iter()
            .filter(|field| **field != "client_certificate")
            .filter_map(|field| {
                let id = entity.reference(field)?;
                let kind = super::referenced_kind(entity.kind, field)?;
                let name = self
                    .get(kind, id)
                    .and_then(Entity::name)
                    .map_or_else(|| short(id).to_owned(), str::to_owned);
                Some(format!("{field} {name}"))
            })
            .collect();
        if scope.is_empty() {
            return own;
        }
        let joint = if entity.kind == KongEntityKind::Plugin {
            "on"
        } else {
            "of"
        };
        format!("{own} {joint} {}", scope.join(", "))
    }

    /// Entities per declarative table (`{"services": 2, ...}`), every managed table listed.
    pub fn counts(&self) -> Map<String, Value> {
        kinds::KINDS
            .iter()
            .map(|entry| {
                (
                    super::table(entry.kind).to_owned(),
                    Value::from(self.of_kind(entry.kind).count()),
                )
            })
            .collect()
    }
}

/// The first 8 characters of an id, enough to tell entities apart in a message.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
