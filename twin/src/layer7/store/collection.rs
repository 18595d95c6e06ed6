//! One kind of entity by id, with an index of natural keys. Main types: [`Collection`],
//! [`Stored`] and the [`Entity`] trait every kind implements.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::revisions::RevisionOptions;
use super::{EntityKind, Store};

/// An entity kind: its natural keys, its unique keys, and where it lives in a [`Store`].
pub trait Entity: Clone + PartialEq + Serialize + DeserializeOwned {
    /// The kind.
    const KIND: EntityKind;

    /// The entity's display name.
    fn name(&self) -> String;

    /// Natural keys to look the entity up by, as `field=value` (e.g. `name=foo`).
    fn keys(&self) -> Vec<String>;

    /// The keys no other entity of the kind may share, with the field names a conflict
    /// message shows; [`Entity::clashes`] confirms a shared key is a conflict.
    fn unique_keys(&self) -> Vec<(&'static str, String)>;

    /// Whether sharing a unique key with `other` is a conflict (services: only when a verb
    /// is shared too).
    fn clashes(&self, _other: &Self) -> bool {
        true
    }

    /// Entities this one points at, which must exist (folder, backing policy).
    fn references(&self) -> Vec<(EntityKind, String)> {
        Vec::new()
    }

    /// This entity as saved over `previous` (services and policies merge the policy
    /// revisions: an unchanged policy adds none, a changed one appends one).
    fn saved_over(self, _previous: Option<&Self>, _options: &RevisionOptions) -> Self {
        self
    }

    /// The kind's collection in `store`.
    fn collection(store: &Store) -> &Collection<Self>;

    /// The kind's collection in `store`, to change it.
    fn collection_mut(store: &mut Store) -> &mut Collection<Self>;
}

/// One stored entity with its id and optimistic-lock version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored<T> {
    /// The goid (private keys: `<keystoreId>:<alias>`).
    pub id: String,
    /// 0 when created, +1 on every change.
    pub version: u64,
    /// The entity.
    pub entity: T,
}

/// Every entity of one kind by id, with the natural-key index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "T: Entity")]
pub struct Collection<T> {
    /// Entities by id.
    rows: BTreeMap<String, Stored<T>>,
    /// Ids by natural key (rebuilt after loading a snapshot).
    #[serde(skip)]
    index: BTreeMap<String, BTreeSet<String>>,
}

impl<T> Default for Collection<T> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            index: BTreeMap::new(),
        }
    }
}

impl<T: Entity> Collection<T> {
    /// The entity `id`.
    pub fn get(&self, id: &str) -> Option<&Stored<T>> {
        self.rows.get(id)
    }

    /// Every entity, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Stored<T>> {
        self.rows.values()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The entities whose natural key `key` (`field=value`) matches, in id order.
    pub fn find(&self, key: &str) -> Vec<&Stored<T>> {
        self.index
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|id| self.rows.get(id))
            .collect()
    }

    /// The first unique key `entity` (to be stored at `id`) shares with another entity,
    /// and that entity's id.
    pub fn conflict(&self, id: &str, entity: &T) -> Option<(&'static str, String)> {
        entity.unique_keys().into_iter().find_map(|(field, key)| {
            self.find(&key)
                .into_iter()
                .find(|other| other.id != id && entity.clashes(&other.entity))
                .map(|other| (field, other.id.clone()))
        })
    }

    /// Stores `entity` at `id` with `version`, replacing what was there.
    pub(crate) fn put(&mut self, id: String, version: u64, entity: T) {
        self.remove(&id);
        for key in entity.keys() {
            self.index.entry(key).or_default().insert(id.clone());
        }
        self.rows.insert(
            id.clone(),
            Stored {
                id,
                version,
                entity,
            },
        );
    }

    /// Removes the entity `id`.
    pub(crate) fn remove(&mut self, id: &str) -> Option<Stored<T>> {
        let removed = self.rows.remove(id)?;
        for key in removed.entity.keys() {
            if let Some(ids) = self.index.get_mut(&key) {
                ids.remove(id);
                if ids.is_empty() {
                    self.index.remove(&key);
                }
            }
        }
        Some(removed)
    }

    /// Rebuilds the index from the rows (after deserializing).
    pub(crate) fn reindex(&mut self) {
        self.index.clear();
        for row in self.rows.values() {
            for key in row.entity.keys() {
                self.index.entry(key).or_default().insert(row.id.clone());
            }
        }
    }
}
