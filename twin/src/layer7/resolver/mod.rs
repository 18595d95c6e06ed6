//! Graphman over the twin's store: [`StoreResolver`] answers Graphman's queries and
//! mutations (reference §2.4) from the same [`Store`] restman serves, with the node's
//! `nodeInfo`/`clusterInfo`; [`http`] serves `POST /graphman` with it.
//!
//! Each entity kind's JSON shape and input are in [`config`] (folders, services, policies,
//! encass configs, cluster properties, secrets) and [`security`] (keys, trusted certs,
//! listen ports); [`kind`] holds the generic set/delete; [`bundles`] the bundle operations
//! and revision updates.

mod bundles;
mod config;
pub(crate) mod http;
mod kind;
mod listen_ports;
mod policies;
mod security;
#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use self::kind::{GraphmanKind, all, filtered, not_root, one, to_json, under};
use super::graphman::bundle;
use super::graphman::checksum::checksum;
use super::graphman::{Context, Field, FieldError, GraphmanResolver, Selection};
use super::node::{Lifecycle, NodeInfo};
use super::store::{
    ClusterProperty, EncapsulatedAssertion, Folder, ListenPort, Policy, PrivateKey, Service, Store,
    StoredPassword, TrustedCertificate,
};

/// Graphman's view of one gateway: the store, the answering node, the user.
#[derive(Debug, Clone)]
pub(crate) struct StoreResolver {
    /// The entities.
    store: Store,
    /// The answering node as it is now.
    node: NodeInfo,
    /// The node's address as the client reached it (`host:port`).
    address: String,
    /// The authenticated administrator's login.
    user: String,
    /// Whether a mutation changed the store (a write for the counters).
    changed: bool,
}

impl StoreResolver {
    /// A resolver over `store`, answered by `node` at `address` for `user`.
    pub(crate) fn new(store: Store, node: NodeInfo, address: String, user: String) -> Self {
        Self {
            store,
            node,
            address,
            user,
            changed: false,
        }
    }

    /// The store back.
    pub(crate) fn into_store(self) -> Store {
        self.store
    }

    /// Whether a mutation changed the store.
    pub(crate) fn changed(&self) -> bool {
        self.changed
    }

    /// `nodeInfo` (`ClusterNodeInfo`).
    fn node_info(&self) -> Value {
        let node = &self.node;
        let now = jiff::Timestamp::now().as_millisecond();
        let version = &node.product_version;
        json!({
            "__typename": "ClusterNodeInfo",
            "nodeId": node.node_id,
            "name": node.name,
            "address": self.address,
            "uptime": now.saturating_sub(node.boot_time).max(0),
            "bootTime": node.boot_time,
            "lastUpdatedTime": now,
            "nodeStatus": match node.status {
                Lifecycle::Running => "RUNNING",
                Lifecycle::Starting => "STARTING",
                Lifecycle::Stopped => "STOPPED",
            },
            "formFactor": node.form_factor,
            "supportsDBUpgrade": true,
            "failoverDBConfigured": false,
            "operatingSystem": std::env::consts::OS,
            "jvm": null,
            "jvmArguments": [],
            "productName": "Layer7 API Gateway",
            "productVersion": {
                "major": version.major,
                "minor": version.minor,
                "subMinor": version.sub_minor,
                "buildNumber": version.build_number,
                "buildDate": null,
                "formalString": version.formal_string,
                "longString": version.long_string,
                "shortString": version.formal_string,
            },
            "licenses": [],
            "patches": node.patches.iter().map(|patch| json!({
                "patchId": patch.patch_id,
                "description": patch.description,
                "status": patch.status,
                "patchType": null,
                "version": null,
                "latest": patch.latest,
            })).collect::<Vec<_>>(),
            "systemProperties": [],
            "telemetryProperties": [],
            "nodeProperties": [],
        })
    }

    /// `clusterInfo`: the cluster (named by `cluster.hostname`, else the node) of one node.
    fn cluster_info(&self) -> Value {
        let name = self
            .store
            .find::<ClusterProperty>("name=cluster.hostname")
            .first()
            .map_or_else(
                || self.node.name.clone(),
                |property| property.entity.value.clone(),
            );
        let nodes = vec![self.node_info()];
        let summed = json!({"name": name, "nodes": nodes.iter().map(|node| &node["nodeId"]).collect::<Vec<_>>()});
        json!({
            "__typename": "ClusterInfo",
            "name": name,
            "checksum": checksum(&summed),
            "nodes": nodes,
        })
    }

    /// `authenticatedUser`.
    fn authenticated_user(&self) -> Value {
        json!({
            "__typename": "AuthenticatedUser",
            "name": self.user,
            "login": self.user,
            "providerName": "Internal Identity Provider",
            "providerType": "INTERNAL",
            "roles": [{"name": "Administrator", "description": "Users assigned to the Administrator role have full access to the gateway."}],
        })
    }
}

/// String argument `name` of `field`.
fn argument(field: &Field, name: &str) -> Result<String, FieldError> {
    field.argument::<String>(name)
}

/// The entity with id `id`, or `null`.
fn by_id<T: GraphmanKind>(store: &Store, id: &str) -> Value {
    store
        .get::<T>(id)
        .map_or(Value::Null, |stored| to_json(stored, store))
}

/// Services and policies with their `policyRevisions` cut to `policyRevisions(selected:)`
/// when the selection asks (`0` the active revision, `-1` the latest, else ordinals).
fn select_revisions(mut value: Value, field: &Field) -> Result<Value, FieldError> {
    let selected = field.selection.items.iter().find_map(|item| match item {
        Selection::Field(sub) if sub.name == "policyRevisions" => Some(sub),
        _ => None,
    });
    let Some(selected) = selected
        .map(|sub| sub.optional_argument::<Vec<i64>>("selected"))
        .transpose()?
        .flatten()
    else {
        return Ok(value);
    };
    let mut cut = |entity: &mut Value| {
        let Some(Value::Array(revisions)) = entity.get_mut("policyRevisions") else {
            return;
        };
        let latest = revisions
            .iter()
            .filter_map(|revision| revision["ordinal"].as_i64())
            .max()
            .unwrap_or(0);
        revisions.retain(|revision| {
            selected.iter().any(|wanted| match wanted {
                0 => revision["active"] == Value::Bool(true),
                -1 => revision["ordinal"].as_i64() == Some(latest),
                ordinal => revision["ordinal"].as_i64() == Some(*ordinal),
            })
        });
    };
    match &mut value {
        Value::Array(entities) => entities.iter_mut().for_each(&mut cut),
        entity @ Value::Object(_) => cut(entity),
        _ => {}
    }
    Ok(value)
}

impl GraphmanResolver for StoreResolver {
    fn query(&self, field: &Field, _context: &Context<'_>) -> Result<Value, FieldError> {
        let store = &self.store;
        let value = match field.name.as_str() {
            "nodeInfo" => self.node_info(),
            "clusterInfo" => self.cluster_info(),
            "authenticatedUser" => self.authenticated_user(),
            "services" => all::<Service>(store),
            "serviceByResolutionPath" => one::<Service>(
                store,
                &json!({"resolutionPath": argument(field, "resolutionPath")?}),
            ),
            "serviceByName" => one::<Service>(store, &json!({"name": argument(field, "name")?})),
            "serviceByGoid" => by_id::<Service>(store, &argument(field, "goid")?),
            "servicesByFolderPath" => {
                let path = argument(field, "folderPath")?;
                filtered::<Service>(store, |service| {
                    store.folder_path(&service.entity.folder_id).as_deref() == Some(path.as_str())
                })
            }
            "servicesByType" => {
                let kind = argument(field, "serviceType")?;
                filtered::<Service>(store, |service| {
                    Service::config_json(service, store)
                        .get("serviceType")
                        .and_then(Value::as_str)
                        == Some(kind.as_str())
                })
            }
            "policies" => all::<Policy>(store),
            "policyByName" => one::<Policy>(store, &json!({"name": argument(field, "name")?})),
            "policyByGuid" => one::<Policy>(store, &json!({"guid": argument(field, "guid")?})),
            "policyByGoid" => by_id::<Policy>(store, &argument(field, "goid")?),
            "policiesByFolderPath" => {
                let path = argument(field, "folderPath")?;
                filtered::<Policy>(store, |policy| {
                    store.folder_path(&policy.entity.folder_id).as_deref() == Some(path.as_str())
                })
            }
            "folders" => filtered::<Folder>(store, not_root),
            "folderByPath" => {
                one::<Folder>(store, &json!({"folderPath": argument(field, "path")?}))
            }
            "foldersByPath" => {
                let path = argument(field, "path")?;
                filtered::<Folder>(store, |folder| under(store, &folder.id, &path))
            }
            "encassConfigs" => all::<EncapsulatedAssertion>(store),
            "encassConfigByName" => {
                one::<EncapsulatedAssertion>(store, &json!({"name": argument(field, "name")?}))
            }
            "encassConfigByGuid" => {
                one::<EncapsulatedAssertion>(store, &json!({"guid": argument(field, "guid")?}))
            }
            "clusterProperties" => all::<ClusterProperty>(store),
            "clusterPropertyByName" => {
                one::<ClusterProperty>(store, &json!({"name": argument(field, "name")?}))
            }
            "keys" => all::<PrivateKey>(store),
            "keyByAlias" => {
                let keystore: Option<String> = field.optional_argument("keystoreId")?;
                one::<PrivateKey>(
                    store,
                    &json!({"alias": argument(field, "alias")?, "keystoreId": keystore}),
                )
            }
            "keyByGoid" => one::<PrivateKey>(store, &json!({"goid": argument(field, "goid")?})),
            "trustedCerts" => all::<TrustedCertificate>(store),
            "trustedCertsByName" => {
                let name = argument(field, "name")?;
                filtered::<TrustedCertificate>(store, |cert| cert.entity.name == name)
            }
            "trustedCertsBySubjectDn" => {
                let subject = argument(field, "subjectDn")?;
                filtered::<TrustedCertificate>(store, |cert| {
                    TrustedCertificate::config_json(cert, store)
                        .get("subjectDn")
                        .and_then(Value::as_str)
                        == Some(subject.as_str())
                })
            }
            "trustedCertByThumbprint" => {
                let sha1: Option<String> = field.optional_argument("thumbprintSha1")?;
                let sha256: Option<String> = field.optional_argument("thumbprint")?;
                let found = store.all::<TrustedCertificate>().iter().find(|cert| {
                    sha1.as_deref() == Some(cert.entity.thumbprint_sha1().as_str())
                        || sha256.as_deref()
                            == Some(security::thumbprint_sha256(&cert.entity.der).as_str())
                });
                found.map_or(Value::Null, |cert| to_json(cert, store))
            }
            "listenPorts" => all::<ListenPort>(store),
            "listenPortByName" => {
                one::<ListenPort>(store, &json!({"name": argument(field, "name")?}))
            }
            "listenPortsByProtocol" => {
                let protocol = argument(field, "protocol")?;
                filtered::<ListenPort>(store, |port| port.entity.protocol == protocol)
            }
            "secrets" => all::<StoredPassword>(store),
            "secretByName" => {
                one::<StoredPassword>(store, &json!({"name": argument(field, "name")?}))
            }
            _ => return Err(FieldError::unknown(field, "Query")),
        };
        select_revisions(value, field)
    }

    fn mutate(&mut self, field: &Field, context: &Context<'_>) -> Result<Value, FieldError> {
        let names = [("names", "name")];
        match field.name.as_str() {
            "setServices" => self.set::<Service>(field, context),
            "deleteServices" => self.delete::<Service>(
                field,
                context,
                &[("resolutionPaths", "resolutionPath"), ("names", "name")],
            ),
            "updateServiceRevision" => self.update_revision::<Service>(field, "service"),
            "setPolicies" => self.set::<Policy>(field, context),
            "deletePolicies" => self.delete::<Policy>(field, context, &names),
            "updatePolicyRevision" => self.update_revision::<Policy>(field, "policy"),
            "setFolders" => self.set::<Folder>(field, context),
            "deleteFolders" => self.delete::<Folder>(field, context, &[("paths", "folderPath")]),
            "setEncassConfigs" => self.set::<EncapsulatedAssertion>(field, context),
            "deleteEncassConfigs" => self.delete::<EncapsulatedAssertion>(field, context, &names),
            "setClusterProperties" => self.set::<ClusterProperty>(field, context),
            "deleteClusterProperties" => self.delete::<ClusterProperty>(field, context, &names),
            "setKeys" => self.set_keys(field, context),
            "deleteKeys" => self.delete::<PrivateKey>(field, context, &[("aliases", "alias")]),
            "setTrustedCerts" => self.set::<TrustedCertificate>(field, context),
            "deleteTrustedCerts" => self.delete::<TrustedCertificate>(
                field,
                context,
                &[("thumbprintSha1s", "thumbprintSha1"), ("names", "name")],
            ),
            "setListenPorts" => self.set::<ListenPort>(field, context),
            "deleteListenPorts" => self.delete::<ListenPort>(field, context, &names),
            "updateListenPort" => self.update_listen_port(field, context),
            "setSecrets" => self.set::<StoredPassword>(field, context),
            "deleteSecrets" => self.delete::<StoredPassword>(field, context, &names),
            "installBundleEntities" => self.install_bundle(context),
            "deleteBundleEntities" => self.delete_bundle(context),
            _ => bundle::empty_mutation_payload(field)
                .ok_or_else(|| FieldError::unknown(field, "Mutation")),
        }
    }
}
