//! Finding the entities the layer7 actions name, through restman lists: services
//! by resolution path, name or id ([`find_services`]), folders by path
//! ([`FolderTree`]), policies by name or id ([`find_policy`]), cluster
//! properties by name; and [`resolve_selection`], which turns a `layer7.export`
//! selection into an [`ExportQuery`], naming every entity it cannot find.

use std::collections::HashMap;

use super::arguments::Layer7Selection;
use super::error::Layer7Error;
use super::restman::entities::ROOT_FOLDER;
use super::restman::{
    ClusterProperty, ExportQuery, Folder, Policy, RestmanClient, RestmanEntity, Service,
};

/// Why a selection or reference names nothing on the gateway.
#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    /// Entities the selection names that the gateway does not have.
    #[error("not found on gateway `{gateway}`: {}", missing.join(", "))]
    Missing {
        /// The gateway's name.
        gateway: String,
        /// Each missing entity in words (`service `/orders``).
        missing: Vec<String>,
    },
    /// A `select:` that names no entity at all.
    #[error(
        "`select` names no entity; list services, folders, policies or cluster_properties, or leave `select` out to export everything"
    )]
    Empty,
    /// The gateway could not be read.
    #[error(transparent)]
    Gateway(#[from] Layer7Error),
}

/// Whether `text` looks like a goid (32 hexadecimal digits).
pub fn is_goid(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The services `reference` names: by resolution path (it starts with `/`), by
/// name, or by id; several services may share a resolution path (disjoint verbs).
pub async fn find_services(
    restman: &RestmanClient,
    reference: &str,
) -> Result<Vec<Service>, Layer7Error> {
    if is_goid(reference) {
        match restman.get::<Service>(reference).await {
            Ok(service) => return Ok(vec![service]),
            Err(error) if error.is_not_found() => {}
            Err(error) => return Err(error),
        }
    }
    if reference.starts_with('/') {
        let all = restman.list::<Service>(&[]).await?;
        let by_path: Vec<Service> = all
            .into_iter()
            .filter(|service| service.resolution_path() == Some(reference))
            .collect();
        if !by_path.is_empty() {
            return Ok(by_path);
        }
    }
    restman.list::<Service>(&[("name", reference)]).await
}

/// The policy `reference` names: by id, else by name.
pub async fn find_policy(
    restman: &RestmanClient,
    reference: &str,
) -> Result<Option<Policy>, Layer7Error> {
    if is_goid(reference) {
        match restman.get::<Policy>(reference).await {
            Ok(policy) => return Ok(Some(policy)),
            Err(error) if error.is_not_found() => {}
            Err(error) => return Err(error),
        }
    }
    restman.find_by_name::<Policy>(reference).await
}

/// The gateway's folders, by path (`/` is the root folder, `/apis/orders` a folder in `apis`).
#[derive(Debug, Clone, Default)]
pub struct FolderTree {
    /// Folder paths to ids.
    paths: HashMap<String, String>,
}

impl FolderTree {
    /// Reads every folder of the gateway.
    pub async fn read(restman: &RestmanClient) -> Result<Self, Layer7Error> {
        Ok(Self::of(&restman.list::<Folder>(&[]).await?))
    }

    /// The tree of these folders (a folder whose parent chain is broken has no path).
    pub fn of(folders: &[Folder]) -> Self {
        let by_id: HashMap<&str, &Folder> = folders
            .iter()
            .filter_map(|folder| folder.id.as_deref().map(|id| (id, folder)))
            .collect();
        let mut paths = HashMap::new();
        for id in by_id.keys() {
            if let Some(path) = path_of(id, &by_id) {
                paths.insert(path, (*id).to_owned());
            }
        }
        Self { paths }
    }

    /// The id of the folder at `path` (a trailing `/` is ignored).
    pub fn id_of(&self, path: &str) -> Option<&str> {
        let trimmed = path.trim_end_matches('/');
        let key = if trimmed.is_empty() { "/" } else { trimmed };
        self.paths.get(key).map(String::as_str)
    }
}

/// The path of folder `id`, walking up its parents (at most 64 levels).
fn path_of(id: &str, by_id: &HashMap<&str, &Folder>) -> Option<String> {
    let mut names = Vec::new();
    let mut current = id;
    for _ in 0..64 {
        let folder = by_id.get(current)?;
        match folder.parent_id.as_deref() {
            None => {
                names.reverse();
                return Some(format!("/{}", names.join("/")));
            }
            Some(_) if current == ROOT_FOLDER => {
                names.reverse();
                return Some(format!("/{}", names.join("/")));
            }
            Some(parent) => {
                names.push(folder.name.as_str());
                current = parent;
            }
        }
    }
    None
}

/// The export query of a selection: every named entity by id, with its
/// dependencies. No selection is the whole gateway (`all=true`).
pub async fn resolve_selection(
    restman: &RestmanClient,
    gateway: &str,
    selection: Option<&Layer7Selection>,
) -> Result<ExportQuery, SelectionError> {
    let Some(selection) = selection else {
        return Ok(ExportQuery {
            include_dependencies: Some(true),
            ..ExportQuery::everything()
        });
    };
    if selection.services.is_empty()
        && selection.folders.is_empty()
        && selection.policies.is_empty()
        && selection.cluster_properties.is_empty()
    {
        return Err(SelectionError::Empty);
    }
    let mut query = ExportQuery {
        include_dependencies: Some(true),
        ..ExportQuery::default()
    };
    let mut missing = Vec::new();
    // Each kind is listed once, however many entities the selection names.
    if !selection.services.is_empty() {
        let all = restman.list::<Service>(&[]).await?;
        for reference in &selection.services {
            let found = matching_services(&all, reference);
            if found.is_empty() {
                missing.push(format!("service `{reference}`"));
            }
            for id in found {
                query = query.service(id);
            }
        }
    }
    if !selection.folders.is_empty() {
        let tree = FolderTree::read(restman).await?;
        for path in &selection.folders {
            match tree.id_of(path) {
                Some(id) => query = query.folder(id),
                None => missing.push(format!("folder `{path}`")),
            }
        }
    }
    if !selection.policies.is_empty() {
        let all = restman.list::<Policy>(&[]).await?;
        for reference in &selection.policies {
            let found = all.iter().find_map(|policy| {
                let id = policy.id.as_deref()?;
                (id == reference.as_str() || policy.name() == Some(reference.as_str())).then_some(id)
            });
            match found {
                Some(id) => query = query.policy(id),
                None => missing.push(format!("policy `{reference}`")),
            }
        }
    }
    if !selection.cluster_properties.is_empty() {
        let all = restman.list::<ClusterProperty>(&[]).await?;
        let by_name: HashMap<&str, &str> = all
            .iter()
            .filter_map(|property| Some((property.name()?, property.id.as_deref()?)))
            .collect();
        for name in &selection.cluster_properties {
            match by_name.get(name.as_str()) {
                Some(id) => query = query.cluster_property(id),
                None => missing.push(format!("cluster property `{name}`")),
            }
        }
    }
    if !missing.is_empty() {
        return Err(SelectionError::Missing {
            gateway: gateway.to_owned(),
            missing,
        });
    }
    let mut seen = std::collections::HashSet::new();
    query.entities.retain(|entity| seen.insert(entity.clone()));
    Ok(query)
}

/// The ids of the services in `all` that `reference` names: by id, else by resolution
/// path (`/orders`), else by name.
fn matching_services<'a>(all: &'a [Service], reference: &str) -> Vec<&'a str> {
    let ids = |matches: &dyn Fn(&Service) -> bool| -> Vec<&'a str> {
        all.iter()
            .filter(|service| matches(service))
            .filter_map(|service| service.id.as_deref())
            .collect()
    };
    if is_goid(reference) {
        let by_id = ids(&|service| service.id.as_deref() == Some(reference));
        if !by_id.is_empty() {
            return by_id;
        }
    }
    if reference.starts_with('/') {
        let by_path = ids(&|service| service.resolution_path() == Some(reference));
        if !by_path.is_empty() {
            return by_path;
        }
    }
    ids(&|service| service.name() == Some(reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: &str, parent: Option<&str>, name: &str) -> Folder {
        Folder {
            parent_id: parent.map(str::to_owned),
            id: Some(id.to_owned()),
            version: Some(0),
            name: name.to_owned(),
            properties: None,
        }
    }

    #[test]
    fn folder_paths_walk_up_to_the_root() {
        let apis = "a".repeat(32);
        let orders = "b".repeat(32);
        let tree = FolderTree::of(&[
            folder(ROOT_FOLDER, None, "Root Node"),
            folder(&apis, Some(ROOT_FOLDER), "apis"),
            folder(&orders, Some(&apis), "orders"),
            folder(&"c".repeat(32), Some(&"d".repeat(32)), "orphan"),
        ]);
        assert_eq!(tree.id_of("/"), Some(ROOT_FOLDER));
        assert_eq!(tree.id_of("/apis"), Some(apis.as_str()));
        assert_eq!(tree.id_of("/apis/orders/"), Some(orders.as_str()));
        assert_eq!(tree.id_of("/orders"), None);
        assert_eq!(tree.id_of("/orphan"), None);
    }

    #[test]
    fn goids_are_32_hex_digits() {
        assert!(is_goid(ROOT_FOLDER));
        assert!(!is_goid("/orders"));
        assert!(!is_goid(&"g".repeat(32)));
    }
}
