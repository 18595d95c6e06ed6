//! How each entity kind is keyed and checked: natural keys, unique keys and references.

use super::collection::{Collection, Entity};
use super::entities::{
    ClusterProperty, EncapsulatedAssertion, Folder, ListenPort, Policy, PrivateKey, Service,
    StoredPassword, TrustedCertificate,
};
use super::revisions::{RevisionOptions, Revisions};
use super::{EntityKind, Store};

/// Entities that carry policy revisions (services and policies).
pub trait HasRevisions: Entity {
    /// The revisions.
    fn revisions(&self) -> &Revisions;

    /// The revisions, to change them.
    fn revisions_mut(&mut self) -> &mut Revisions;
}

/// `revisions` saved over `previous`'s: a history of its own when new, else the
/// previous history with the new policy appended when it changed.
fn merge_history(
    revisions: &Revisions,
    previous: Option<&Revisions>,
    options: &RevisionOptions,
) -> Revisions {
    match previous {
        None => Revisions::new(revisions.active_xml(), options.comment.clone()),
        Some(previous) => previous.saved(revisions.active_xml(), options),
    }
}

impl HasRevisions for Service {
    fn revisions(&self) -> &Revisions {
        &self.revisions
    }

    fn revisions_mut(&mut self) -> &mut Revisions {
        &mut self.revisions
    }
}

impl HasRevisions for Policy {
    fn revisions(&self) -> &Revisions {
        &self.revisions
    }

    fn revisions_mut(&mut self) -> &mut Revisions {
        &mut self.revisions
    }
}

impl Entity for Folder {
    const KIND: EntityKind = EntityKind::Folder;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> Vec<String> {
        vec![
            format!("name={}", self.name),
            format!("parent={}", self.parent_id.as_deref().unwrap_or_default()),
            format!(
                "child={}/{}",
                self.parent_id.as_deref().unwrap_or_default(),
                self.name
            ),
        ]
    }

    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![(
            "(name, parentFolder)",
            format!(
                "child={}/{}",
                self.parent_id.as_deref().unwrap_or_default(),
                self.name
            ),
        )]
    }

    fn references(&self) -> Vec<(EntityKind, String)> {
        self.parent_id
            .iter()
            .map(|parent| (EntityKind::Folder, parent.clone()))
            .collect()
    }

    fn collection(store: &Store) -> &Collection<Self> {
        &store.folders
    }

    fn collection_mut(store: &mut Store) -> &mut Collection<Self> {
        &mut store.folders
    }
}

impl Entity for Service {
    const KIND: EntityKind = EntityKind::Service;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> Vec<String> {
        let mut keys = vec![
            format!("name={}", self.name),
            format!("guid={}", self.guid),
            format!("parent={}", self.folder_id),
            format!("enabled={}", self.enabled),
        ];
        if let Some(path) = &self.resolution_path {
            keys.push(format!("path={path}"));
        }
        keys
    }

    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        let mut keys = vec![("(guid)", format!("guid={}", self.guid))];
        if let Some(path) = &self.resolution_path {
            keys.push(("(resolution path, verbs)", format!("path={path}")));
        }
        keys
    }

    fn clashes(&self, other: &Self) -> bool {
        self.guid == other.guid || self.overlaps(other)
    }

    fn references(&self) -> Vec<(EntityKind, String)> {
        vec![(EntityKind::Folder, self.folder_id.clone())]
    }

    fn saved_over(mut self, previous: Option<&Self>, options: &RevisionOptions) -> Self {
        self.revisions = merge_history(
            &self.revisions,
            previous.map(|previous| &previous.revisions),
            options,
        );
        self
    }

    fn collection(store: &Store) -> &Collection<Self> {
        &store.services
    }

    fn collection_mut(store: &mut Store) -> &mut Collection<Self> {
        &mut store.services
    }
}

impl Entity for Policy {
    const KIND: EntityKind = EntityKind::Policy;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> Vec<String> {
        vec![
            format!("name={}", self.name),
            format!("guid={}", self.guid),
            format!("parent={}", self.folder_id),
        ]
    }

    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![
            ("(name)", format!("name={}", self.name)),
            ("(guid)", format!("guid={}", self.guid)),
        ]
    }

    fn references(&self) -> Vec<(EntityKind, String)> {
        vec![(EntityKind::Folder, self.folder_id.clone())]
    }

    fn saved_over(mut self, previous: Option<&Self>, options: &RevisionOptions) -> Self {
        self.revisions = merge_history(
            &self.revisions,
            previous.map(|previous| &previous.revisions),
            options,
        );
        self
    }

    fn collection(store: &Store) -> &Collection<Self> {
        &store.policies
    }

    fn collection_mut(store: &mut Store) -> &mut Collection<Self> {
        &mut store.policies
    }
}

impl Entity for EncapsulatedAssertion {
    const KIND: EntityKind = EntityKind::EncapsulatedAssertion;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> Vec<String> {
        vec![
            format!("name={}", self.name),
            format!("guid={}", self.guid),
            format!("policy={}", self.policy_id),
        ]
    }

    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![
            ("(name)", format!("name={}", self.name)),
            ("(guid)", format!("guid={}", self.guid)),
        ]
    }

    fn references(&self) -> Vec<(EntityKind, String)> {
        vec![(EntityKind::Policy, self.policy_id.clone())]
    }

    fn collection(store: &Store) -> &Collection<Self> {
        &store.encapsulated_assertions
    }

    fn collection_mut(store: &mut Store) -> &mut Collection<Self> {
        &mut store.encapsulated_assertions
    }
}

impl Entity for ClusterProperty {
    const KIND: EntityKind = EntityKind::ClusterProperty;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> Vec<String> {
        vec![format!("name={}", self.name)]
    }

    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![("(name)", format!("name={}", self.name))]
    }

    fn collection(store: &Store) -> &Collection<Self> {
        &store.cluster_properties
    }

    fn collection_mut(store: &mut Store) -> &mut Collection<Self> {
        &mut store.cluster_properties
    }
}

impl Entity for TrustedCertificate {
    const KIND: EntityKind = EntityKind::TrustedCertificate;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> Vec<String> {
        vec![
            format!("name={}", self.name),
            format!("thumbprintSha1={}", self.thumbprint_sha1()),
        ]
    }

    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "(thumbprintSha1)",
                format!("thumbprintSha1={}", self.thumbprint_sha1()),
            ),
            ("(name)", format!("name={}", self.name)),
        ]
    }

    fn collection(store: &Store) -> &Collection<Self> {
        &store.trusted_certificates
    }

    fn collection_mut(store: &mut Store) -> &mut Collection<Self> {
        &mut store.trusted_certificates
    }
}

impl Entity for PrivateKey {
    const KIND: EntityKind = EntityKind::PrivateKey;

    fn name(&self) -> String {
        self.alias.clone()
    }

    fn keys(&self) -> Vec<String> {
        vec![
            format!("alias={}", self.alias),
            format!("keystore={}", self.keystore_id),
        ]
    }

    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        // The id is `<keystore>:<alias>`: the id itself keeps the pair unique.
        Vec::new()
    }

    fn collection(store: &Store) -> &Collection<Self> {
        &store.private_keys
    }

    fn collection_mut(store: &mut Store) -> &mut Collection<Self> {
        &mut store.private_keys
    }
}

impl Entity for ListenPort {
    const KIND: EntityKind = EntityKind::ListenPort;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> Vec<String> {
        vec![
            format!("name={}", self.name),
            format!("port={}", self.port),
            format!("protocol={}", self.protocol),
        ]
    }

    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![
            ("(name)", format!("name={}", self.name)),
            ("(port)", format!("port={}", self.port)),
        ]
    }

    fn collection(store: &Store) -> &Collection<Self> {
        &store.listen_ports
    }

    fn collection_mut(store: &mut Store) -> &mut Collection<Self> {
        &mut store.listen_ports
    }
}

impl Entity for StoredPassword {
    const KIND: EntityKind = EntityKind::StoredPassword;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> Vec<String> {
        vec![format!("name={}", self.name)]
    }

    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        vec![("(name)", format!("name={}", self.name))]
    }

    fn collection(store: &Store) -> &Collection<Self> {
        &store.passwords
    }

    fn collection_mut(store: &mut Store) -> &mut Collection<Self> {
        &mut store.passwords
    }
}
