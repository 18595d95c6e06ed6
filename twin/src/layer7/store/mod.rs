//! The Layer7 twin's store: typed entities by goid with natural-key indexes, optimistic
//! versions, uniqueness, policy revisions and the seeded defaults. API-neutral: restman
//! (XML) and Graphman (JSON) both read and write it. Main type: [`Store`].
//!
//! Writes are whole-entity saves ([`Store::save`]) that bump `version` only when something
//! changed. A transaction is a clone: bundle imports work on a copy and swap it in.

mod collection;
mod defaults;
pub mod entities;
mod kinds;
pub mod revisions;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use collection::{Collection, Entity, Stored};
pub use entities::*;
pub use kinds::HasRevisions;
pub use revisions::{PolicyRevision, RevisionOptions, Revisions};

/// A new random goid: 32 lowercase hex digits.
pub fn new_goid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `id` has the shape of a goid.
pub fn is_goid(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The kinds of entity the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityKind {
    /// [`Folder`].
    Folder,
    /// [`Service`].
    Service,
    /// [`Policy`].
    Policy,
    /// [`EncapsulatedAssertion`].
    EncapsulatedAssertion,
    /// [`ClusterProperty`].
    ClusterProperty,
    /// [`TrustedCertificate`].
    TrustedCertificate,
    /// [`PrivateKey`].
    PrivateKey,
    /// [`ListenPort`].
    ListenPort,
    /// [`StoredPassword`].
    StoredPassword,
}

impl EntityKind {
    /// The kind in words, for messages (`cluster property`).
    pub fn noun(self) -> &'static str {
        match self {
            Self::Folder => "folder",
            Self::Service => "service",
            Self::Policy => "policy",
            Self::EncapsulatedAssertion => "encapsulated assertion",
            Self::ClusterProperty => "cluster property",
            Self::TrustedCertificate => "trusted certificate",
            Self::PrivateKey => "private key",
            Self::ListenPort => "listen port",
            Self::StoredPassword => "stored password",
        }
    }
}

/// Why a store operation was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No entity of that kind has that id.
    #[error("{} {id} not found", kind.noun())]
    NotFound {
        /// The kind.
        kind: EntityKind,
        /// The id asked for.
        id: String,
    },
    /// Another entity already has a unique key.
    #[error("{} '{name}': {field} must be unique ({} {other} has it)", kind.noun(), kind.noun())]
    UniqueKeyConflict {
        /// The kind.
        kind: EntityKind,
        /// The refused entity's name.
        name: String,
        /// The unique key, e.g. `(thumbprintSha1)`.
        field: &'static str,
        /// The id of the entity that has it.
        other: String,
    },
    /// The request's version is not the entity's.
    #[error("{} {id}: version {given} is stale, the entity is at version {current}", kind.noun())]
    StaleVersion {
        /// The kind.
        kind: EntityKind,
        /// The id.
        id: String,
        /// The version sent.
        given: u64,
        /// The stored version.
        current: u64,
    },
    /// The entity is not acceptable as given.
    #[error("{} '{name}': {reason}", kind.noun())]
    Invalid {
        /// The kind.
        kind: EntityKind,
        /// The entity's name (or id).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A folder with contents was deleted without `force`.
    #[error("folder '{name}' is not empty (delete with force to remove its contents)")]
    FolderNotEmpty {
        /// The folder's name.
        name: String,
    },
    /// The entity is used by another one.
    #[error("{} '{name}' is used by {by}", kind.noun())]
    InUse {
        /// The kind.
        kind: EntityKind,
        /// The entity's name.
        name: String,
        /// What uses it.
        by: String,
    },
}

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new entity.
    Created,
    /// An existing entity changed (version +1).
    Updated,
    /// The entity was already as given (version kept).
    Unchanged,
}

/// The result of a save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The entity's id.
    pub id: String,
    /// Its version now.
    pub version: u64,
    /// What happened.
    pub change: Change,
}

/// Every entity of one gateway (the database of a cluster).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Store {
    /// Folders.
    pub(crate) folders: Collection<Folder>,
    /// Published services.
    pub(crate) services: Collection<Service>,
    /// Policies.
    pub(crate) policies: Collection<Policy>,
    /// Encapsulated assertions.
    pub(crate) encapsulated_assertions: Collection<EncapsulatedAssertion>,
    /// Cluster properties.
    pub(crate) cluster_properties: Collection<ClusterProperty>,
    /// Trusted certificates.
    pub(crate) trusted_certificates: Collection<TrustedCertificate>,
    /// Private keys by `<keystore>:<alias>`.
    pub(crate) private_keys: Collection<PrivateKey>,
    /// Listen ports.
    pub(crate) listen_ports: Collection<ListenPort>,
    /// Stored passwords.
    pub(crate) passwords: Collection<StoredPassword>,
}

impl Store {
    /// A store holding only the root folder (no key, no listen port).
    pub fn empty() -> Self {
        let mut store = Self::default();
        store.folders.put(
            ROOT_FOLDER_ID.to_owned(),
            0,
            Folder {
                name: "Root Node".to_owned(),
                parent_id: None,
            },
        );
        store
    }

    /// The entities of one kind.
    pub fn all<T: Entity>(&self) -> &Collection<T> {
        T::collection(self)
    }

    /// The entity `id` of kind `T`.
    pub fn get<T: Entity>(&self, id: &str) -> Option<&Stored<T>> {
        T::collection(self).get(id)
    }

    /// The entity `id` of kind `T`, or a not-found error.
    pub fn require<T: Entity>(&self, id: &str) -> Result<&Stored<T>, StoreError> {
        self.get(id).ok_or_else(|| StoreError::NotFound {
            kind: T::KIND,
            id: id.to_owned(),
        })
    }

    /// The entities of kind `T` whose natural key `key` (`name=foo`) matches.
    pub fn find<T: Entity>(&self, key: &str) -> Vec<&Stored<T>> {
        T::collection(self).find(key)
    }

    /// Whether an entity of `kind` has id `id`.
    pub fn exists(&self, kind: EntityKind, id: &str) -> bool {
        match kind {
            EntityKind::Folder => self.folders.get(id).is_some(),
            EntityKind::Service => self.services.get(id).is_some(),
            EntityKind::Policy => self.policies.get(id).is_some(),
            EntityKind::EncapsulatedAssertion => self.encapsulated_assertions.get(id).is_some(),
            EntityKind::ClusterProperty => self.cluster_properties.get(id).is_some(),
            EntityKind::TrustedCertificate => self.trusted_certificates.get(id).is_some(),
            EntityKind::PrivateKey => self.private_keys.get(id).is_some(),
            EntityKind::ListenPort => self.listen_ports.get(id).is_some(),
            EntityKind::StoredPassword => self.passwords.get(id).is_some(),
        }
    }

    /// Saves `entity` at `id` (a new goid when `None`): creates it, or updates it when it
    /// exists and `version` (when given) is the stored one. Services and policies append a
    /// policy revision when their policy changed (`options`).
    pub fn save<T: Entity>(
        &mut self,
        id: Option<&str>,
        entity: T,
        version: Option<u64>,
        options: &RevisionOptions,
    ) -> Result<Saved, StoreError> {
        let id = id.map_or_else(new_goid, str::to_owned);
        let previous = T::collection(self).get(&id).cloned();
        if let (Some(previous), Some(given)) = (&previous, version)
            && previous.version != given
        {
            return Err(StoreError::StaleVersion {
                kind: T::KIND,
                id,
                given,
                current: previous.version,
            });
        }
        let entity = entity.saved_over(previous.as_ref().map(|stored| &stored.entity), options);
        if let Some(previous) = &previous
            && previous.entity == entity
        {
            return Ok(Saved {
                id,
                version: previous.version,
                change: Change::Unchanged,
            });
        }
        self.check(&id, &entity)?;
        let (version, change) = match &previous {
            Some(previous) => (previous.version + 1, Change::Updated),
            None => (0, Change::Created),
        };
        T::collection_mut(self).put(id.clone(), version, entity);
        Ok(Saved {
            id,
            version,
            change,
        })
    }

    /// Refuses `entity` at `id` when it names no name, points at a missing entity or
    /// shares a unique key.
    fn check<T: Entity>(&self, id: &str, entity: &T) -> Result<(), StoreError> {
        let invalid = |reason: String| StoreError::Invalid {
            kind: T::KIND,
            name: entity.name(),
            reason,
        };
        if entity.name().trim().is_empty() {
            return Err(invalid("a name is required".to_owned()));
        }
        for (kind, target) in entity.references() {
            if !self.exists(kind, &target) {
                return Err(invalid(format!("{} {target} does not exist", kind.noun())));
            }
        }
        if T::KIND == EntityKind::Folder && id == ROOT_FOLDER_ID && !entity.references().is_empty()
        {
            return Err(invalid("the root folder has no parent".to_owned()));
        }
        if let Some((field, other)) = T::collection(self).conflict(id, entity) {
            return Err(StoreError::UniqueKeyConflict {
                kind: T::KIND,
                name: entity.name(),
                field,
                other,
            });
        }
        Ok(())
    }

    /// Deletes entity `id` of kind `T` (folders: [`Store::delete_folder`]); refused while
    /// an encapsulated assertion uses a policy, or a listen port presents a private key.
    pub fn delete<T: Entity>(&mut self, id: &str) -> Result<Stored<T>, StoreError> {
        let name = self.require::<T>(id)?.entity.name();
        if T::KIND == EntityKind::Folder {
            return Err(StoreError::Invalid {
                kind: T::KIND,
                name,
                reason: "folders are deleted with delete_folder".to_owned(),
            });
        }
        if T::KIND == EntityKind::Policy
            && let Some(user) = self
                .encapsulated_assertions
                .find(&format!("policy={id}"))
                .first()
        {
            return Err(StoreError::InUse {
                kind: T::KIND,
                name,
                by: format!("encapsulated assertion '{}'", user.entity.name),
            });
        }
        if T::KIND == EntityKind::PrivateKey
            && let Some(user) = self.listen_ports.iter().find(|port| {
                port.entity.tls.as_ref().is_some_and(|tls| {
                    let keystore = tls.keystore_id.as_deref().unwrap_or(DEFAULT_KEYSTORE_ID);
                    tls.key_alias
                        .as_deref()
                        .is_some_and(|alias| format!("{keystore}:{alias}") == id)
                })
            })
        {
            return Err(StoreError::InUse {
                kind: T::KIND,
                name,
                by: format!("listen port '{}'", user.entity.name),
            });
        }
        T::collection_mut(self)
            .remove(id)
            .ok_or_else(|| StoreError::NotFound {
                kind: T::KIND,
                id: id.to_owned(),
            })
    }

    /// Deletes folder `id`; with `force` its contents too (subfolders, services,
    /// policies), else only when empty. The root folder cannot be deleted.
    pub fn delete_folder(&mut self, id: &str, force: bool) -> Result<(), StoreError> {
        // On a copy: a policy in use found half-way must leave everything as it was.
        let mut copy = self.clone();
        copy.delete_folder_in_place(id, force)?;
        *self = copy;
        Ok(())
    }

    /// [`Store::delete_folder`] without the copy.
    fn delete_folder_in_place(&mut self, id: &str, force: bool) -> Result<(), StoreError> {
        let name = self.require::<Folder>(id)?.entity.name.clone();
        if id == ROOT_FOLDER_ID {
            return Err(StoreError::Invalid {
                kind: EntityKind::Folder,
                name,
                reason: "the root folder cannot be deleted".to_owned(),
            });
        }
        let parent_key = format!("parent={id}");
        let subfolders: Vec<String> = ids(self.folders.find(&parent_key));
        let services: Vec<String> = ids(self.services.find(&parent_key));
        let policies: Vec<String> = ids(self.policies.find(&parent_key));
        let empty = subfolders.is_empty() && services.is_empty() && policies.is_empty();
        if !force && !empty {
            return Err(StoreError::FolderNotEmpty { name });
        }
        for folder in subfolders {
            self.delete_folder_in_place(&folder, true)?;
        }
        for service in services {
            self.services.remove(&service);
        }
        for policy in policies {
            self.delete::<Policy>(&policy)?;
        }
        self.folders.remove(id);
        Ok(())
    }

    /// Makes revision `ordinal` of service or policy `id` the active one (version +1).
    pub fn activate_revision<T: HasRevisions>(
        &mut self,
        id: &str,
        ordinal: u64,
    ) -> Result<Saved, StoreError> {
        let stored = self.require::<T>(id)?.clone();
        let mut entity = stored.entity;
        if !entity.revisions_mut().activate(ordinal) {
            return Err(StoreError::NotFound {
                kind: T::KIND,
                id: format!("{id} revision {ordinal}"),
            });
        }
        self.replace(stored.id, stored.version, entity)
    }

    /// Sets the comment of revision `ordinal` of service or policy `id`.
    pub fn comment_revision<T: HasRevisions>(
        &mut self,
        id: &str,
        ordinal: u64,
        comment: Option<String>,
    ) -> Result<Saved, StoreError> {
        let stored = self.require::<T>(id)?.clone();
        let mut entity = stored.entity;
        if !entity.revisions_mut().set_comment(ordinal, comment) {
            return Err(StoreError::NotFound {
                kind: T::KIND,
                id: format!("{id} revision {ordinal}"),
            });
        }
        self.replace(stored.id, stored.version, entity)
    }

    /// Stores `entity` over the entity at `id` (at `version`) without revision merging.
    fn replace<T: Entity>(
        &mut self,
        id: String,
        version: u64,
        entity: T,
    ) -> Result<Saved, StoreError> {
        if self
            .get::<T>(&id)
            .is_some_and(|stored| stored.entity == entity)
        {
            return Ok(Saved {
                id,
                version,
                change: Change::Unchanged,
            });
        }
        T::collection_mut(self).put(id.clone(), version + 1, entity);
        Ok(Saved {
            id,
            version: version + 1,
            change: Change::Updated,
        })
    }

    /// Makes private key `id` the cluster default for `purposes` (taking them from any
    /// other key that had them).
    pub fn set_special_purposes(
        &mut self,
        id: &str,
        purposes: &[String],
    ) -> Result<Saved, StoreError> {
        self.require::<PrivateKey>(id)?;
        let others: Vec<Stored<PrivateKey>> = self
            .private_keys
            .iter()
            .filter(|key| {
                key.id != id
                    && key
                        .entity
                        .special_purposes
                        .iter()
                        .any(|purpose| purposes.contains(purpose))
            })
            .cloned()
            .collect();
        for other in others {
            let mut entity = other.entity;
            entity
                .special_purposes
                .retain(|purpose| !purposes.contains(purpose));
            self.replace(other.id, other.version, entity)?;
        }
        let stored = self.require::<PrivateKey>(id)?.clone();
        let mut entity = stored.entity;
        for purpose in purposes {
            if !entity.special_purposes.contains(purpose) {
                entity.special_purposes.push(purpose.clone());
            }
        }
        self.replace(stored.id, stored.version, entity)
    }

    /// The private key that is the default for `purpose` (e.g. `SSL`).
    pub fn key_for_purpose(&self, purpose: &str) -> Option<&Stored<PrivateKey>> {
        self.private_keys.iter().find(|key| {
            key.entity
                .special_purposes
                .iter()
                .any(|held| held == purpose)
        })
    }

    /// The folders from the root down to folder `id` (empty when it does not exist).
    pub fn folder_chain(&self, id: &str) -> Vec<&Stored<Folder>> {
        let mut chain = Vec::new();
        let mut next = Some(id.to_owned());
        while let Some(current) = next {
            let Some(folder) = self.folders.get(&current) else {
                break;
            };
            if chain
                .iter()
                .any(|seen: &&Stored<Folder>| seen.id == folder.id)
            {
                break;
            }
            chain.push(folder);
            next = folder.entity.parent_id.clone();
        }
        chain.reverse();
        chain
    }

    /// Folder `id`'s path from the root: `/` for the root, `/a/b` below it.
    pub fn folder_path(&self, id: &str) -> Option<String> {
        let chain = self.folder_chain(id);
        if chain.is_empty() {
            return None;
        }
        let names: Vec<&str> = chain
            .iter()
            .skip(1)
            .map(|folder| folder.entity.name.as_str())
            .collect();
        Some(format!("/{}", names.join("/")))
    }

    /// The folder at `path` (`/`, `/a/b`).
    pub fn folder_by_path(&self, path: &str) -> Option<&Stored<Folder>> {
        let mut current = self.folders.get(ROOT_FOLDER_ID)?;
        for name in path.split('/').filter(|name| !name.is_empty()) {
            let key = format!("child={}/{name}", current.id);
            current = self.folders.find(&key).into_iter().next()?;
        }
        Some(current)
    }

    /// The whole store as twin-internal JSON (loadable by [`Store::from_snapshot`]).
    pub fn snapshot(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// A store from [`Store::snapshot`]'s JSON.
    pub fn from_snapshot(value: &Value) -> Result<Self, String> {
        let mut store: Store =
            Store::deserialize(value).map_err(|error| format!("invalid snapshot: {error}"))?;
        store.folders.reindex();
        store.services.reindex();
        store.policies.reindex();
        store.encapsulated_assertions.reindex();
        store.cluster_properties.reindex();
        store.trusted_certificates.reindex();
        store.private_keys.reindex();
        store.listen_ports.reindex();
        store.passwords.reindex();
        if store.folders.get(ROOT_FOLDER_ID).is_none() {
            return Err("invalid snapshot: no root folder".to_owned());
        }
        Ok(store)
    }
}

/// The ids of some stored entities.
fn ids<T>(rows: Vec<&Stored<T>>) -> Vec<String> {
    rows.into_iter().map(|row| row.id.clone()).collect()
}

#[cfg(test)]
mod tests;
