//! The typed Graphman operations the Layer7 actions need, as methods of
//! [`GraphmanClient`]: node and cluster information, services, policies,
//! cluster properties, keys, listen ports, trusted certificates, folders and
//! encapsulated assertions. Each query selects exactly the fields of the
//! matching type in [`super::types`]; each mutation selects every entity's
//! `detailedStatus`, which [`GraphmanClient::mutate`] checks.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::client::{GraphmanClient, GraphmanOptions};
use super::status::MutationStatus;
use super::types::{
    ClusterInfo, ClusterPropertyInput, GraphmanClusterProperty, GraphmanEncassConfig,
    GraphmanFolder, GraphmanKey, GraphmanListenPort, GraphmanPolicy, GraphmanService,
    GraphmanTrustedCert, KeyInput, NodeInfo, TrustedCertInput,
};
use crate::layer7::error::Layer7Error;

/// What every mutation selects.
pub const DETAILED_STATUS: &str =
    "detailedStatus { action status description source { name value } target { name value } }";

/// `nodeInfo` fields (section 3.3).
pub const NODE_INFO_FIELDS: &str = "name nodeId address uptime bootTime lastUpdatedTime nodeStatus formFactor supportsDBUpgrade productVersion { formalString buildNumber shortString longString } patches { patchId description status latest }";
/// `clusterInfo` fields.
pub const CLUSTER_INFO_FIELDS: &str =
    "name checksum nodes { name nodeId address uptime lastUpdatedTime }";
/// `L7Service` fields.
pub const SERVICE_FIELDS: &str = "goid guid name resolutionPath serviceType enabled folderPath methodsAllowed checksum policy { xml }";
/// `L7Policy` fields.
pub const POLICY_FIELDS: &str = "goid guid name policyType folderPath checksum policy { xml }";
/// `ClusterProperty` fields.
pub const CLUSTER_PROPERTY_FIELDS: &str = "goid name value description hiddenProperty checksum";
/// `Key` fields (never `p12` or `pem`).
pub const KEY_FIELDS: &str =
    "goid keystoreId alias keyType subjectDn usageTypes certChain checksum";
/// `ListenPort` fields.
pub const LISTEN_PORT_FIELDS: &str = "goid name protocol port enabled checksum tlsSettings { clientAuthentication keystoreId keyAlias tlsVersions cipherSuites useCipherSuitesOrder }";
/// `Certificate` fields.
pub const TRUSTED_CERT_FIELDS: &str =
    "goid name subjectDn thumbprintSha1 certBase64 trustedFor verifyHostname trustAnchor checksum";
/// `Folder` fields.
pub const FOLDER_FIELDS: &str = "goid name folderPath checksum";
/// `EncassConfig` fields.
pub const ENCASS_CONFIG_FIELDS: &str = "goid guid name policyName checksum";

impl GraphmanClient {
    /// Runs `query` and reads `data.<field>` as `T` (`null` reads as `None` where `T` is optional).
    async fn field<T: DeserializeOwned>(
        &self,
        field: &str,
        query: &str,
        variables: Value,
    ) -> Result<T, Layer7Error> {
        let data: serde_json::Map<String, Value> = self.query(query, variables).await?;
        let value = data.get(field).cloned().unwrap_or(Value::Null);
        serde_json::from_value(value.clone()).map_err(|error| {
            Layer7Error::malformed(
                &format!("POST {} ({field})", self.url()),
                format!("unexpected `{field}`: {error}"),
                &value.to_string(),
            )
        })
    }

    /// The answering node's information.
    pub async fn node_info(&self) -> Result<NodeInfo, Layer7Error> {
        self.field(
            "nodeInfo",
            &format!("query nodeInfo {{ nodeInfo {{ {NODE_INFO_FIELDS} }} }}"),
            json!({}),
        )
        .await
    }

    /// The cluster and its nodes.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, Layer7Error> {
        self.field(
            "clusterInfo",
            &format!("query clusterInfo {{ clusterInfo {{ {CLUSTER_INFO_FIELDS} }} }}"),
            json!({}),
        )
        .await
    }

    /// The service at this resolution path, if any.
    pub async fn service_by_resolution_path(
        &self,
        resolution_path: &str,
    ) -> Result<Option<GraphmanService>, Layer7Error> {
        self.field(
            "serviceByResolutionPath",
            &format!(
                "query serviceByResolutionPath($resolutionPath: String!) {{ serviceByResolutionPath(resolutionPath: $resolutionPath) {{ {SERVICE_FIELDS} }} }}"
            ),
            json!({"resolutionPath": resolution_path}),
        )
        .await
    }

    /// Creates or updates services (`L7ServiceInput` objects, matched on their identity).
    pub async fn set_services(
        &self,
        services: &[Value],
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            &format!("mutation setServices($input: [L7ServiceInput!]!) {{ setServices(input: $input) {{ {DETAILED_STATUS} }} }}"),
            json!({"input": services}),
            options,
        )
        .await
    }

    /// Activates revision `revision` of a service's policy (`activate: false` only saves it).
    pub async fn update_service_revision(
        &self,
        resolution_path: &str,
        service_type: &str,
        revision: i64,
        activate: bool,
        comment: Option<&str>,
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            &format!(
                "mutation updateServiceRevision($refInput: ServiceRefInput!, $revision: Long!, $activate: Boolean, $comment: String) {{ updateServiceRevision(refInput: $refInput, revision: $revision, activate: $activate, comment: $comment) {{ {DETAILED_STATUS} }} }}"
            ),
            json!({
                "refInput": {"resolutionPath": resolution_path, "serviceType": service_type},
                "revision": revision, "activate": activate, "comment": comment
            }),
            options,
        )
        .await
    }

    /// The policy (or fragment) with this name, if any.
    pub async fn policy_by_name(&self, name: &str) -> Result<Option<GraphmanPolicy>, Layer7Error> {
        self.field(
            "policyByName",
            &format!("query policyByName($name: String!) {{ policyByName(name: $name) {{ {POLICY_FIELDS} }} }}"),
            json!({"name": name}),
        )
        .await
    }

    /// Activates revision `revision` of a policy (`activate: false` only saves it).
    pub async fn update_policy_revision(
        &self,
        name: &str,
        revision: i64,
        activate: bool,
        comment: Option<&str>,
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            &format!(
                "mutation updatePolicyRevision($refInput: PolicyRefInput!, $revision: Long!, $activate: Boolean, $comment: String) {{ updatePolicyRevision(refInput: $refInput, revision: $revision, activate: $activate, comment: $comment) {{ {DETAILED_STATUS} }} }}"
            ),
            json!({"refInput": {"name": name}, "revision": revision, "activate": activate, "comment": comment}),
            options,
        )
        .await
    }

    /// The cluster property with this name, if any.
    pub async fn cluster_property_by_name(
        &self,
        name: &str,
    ) -> Result<Option<GraphmanClusterProperty>, Layer7Error> {
        self.field(
            "clusterPropertyByName",
            &format!(
                "query clusterPropertyByName($name: String!) {{ clusterPropertyByName(name: $name) {{ {CLUSTER_PROPERTY_FIELDS} }} }}"
            ),
            json!({"name": name}),
        )
        .await
    }

    /// Creates or updates cluster properties (matched by name).
    pub async fn set_cluster_properties(
        &self,
        properties: &[ClusterPropertyInput],
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            &format!(
                "mutation setClusterProperties($input: [ClusterPropertyInput!]!) {{ setClusterProperties(input: $input) {{ {DETAILED_STATUS} }} }}"
            ),
            json!({"input": properties}),
            options,
        )
        .await
    }

    /// Deletes cluster properties by name (a missing one is `NONE`, not an error).
    pub async fn delete_cluster_properties(
        &self,
        names: &[&str],
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        let refs: Vec<Value> = names.iter().map(|name| json!({"name": name})).collect();
        self.mutate(
            &format!(
                "mutation deleteClusterProperties($refInputs: [ClusterPropertyRefInput!]!) {{ deleteClusterProperties(refInputs: $refInputs) {{ {DETAILED_STATUS} }} }}"
            ),
            json!({"refInputs": refs}),
            options,
        )
        .await
    }

    /// The key with this alias, if any (its certificate chain, never its private part).
    pub async fn key_by_alias(&self, alias: &str) -> Result<Option<GraphmanKey>, Layer7Error> {
        self.field(
            "keyByAlias",
            &format!("query keyByAlias($alias: String!) {{ keyByAlias(alias: $alias) {{ {KEY_FIELDS} }} }}"),
            json!({"alias": alias}),
        )
        .await
    }

    /// Creates or updates keys: from PEM, or generated by the gateway (the gateway updates at most one existing key per call).
    pub async fn set_keys(
        &self,
        keys: &[KeyInput],
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            &format!("mutation setKeys($input: [KeyInput!]!) {{ setKeys(input: $input) {{ {DETAILED_STATUS} }} }}"),
            json!({"input": keys}),
            options,
        )
        .await
    }

    /// Deletes keys by keystore and alias.
    pub async fn delete_keys(
        &self,
        keys: &[(&str, &str)],
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        let refs: Vec<Value> = keys
            .iter()
            .map(|(keystore_id, alias)| json!({"keystoreId": keystore_id, "alias": alias}))
            .collect();
        self.mutate(
            &format!("mutation deleteKeys($refInputs: [KeyRefInput!]!) {{ deleteKeys(refInputs: $refInputs) {{ {DETAILED_STATUS} }} }}"),
            json!({"refInputs": refs}),
            options,
        )
        .await
    }

    /// The listen port with this name, if any.
    pub async fn listen_port_by_name(
        &self,
        name: &str,
    ) -> Result<Option<GraphmanListenPort>, Layer7Error> {
        self.field(
            "listenPortByName",
            &format!("query listenPortByName($name: String!) {{ listenPortByName(name: $name) {{ {LISTEN_PORT_FIELDS} }} }}"),
            json!({"name": name}),
        )
        .await
    }

    /// Creates or updates listen ports (`ListenPortInput` objects, matched by name).
    pub async fn set_listen_ports(
        &self,
        ports: &[Value],
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            &format!("mutation setListenPorts($input: [ListenPortInput!]!) {{ setListenPorts(input: $input) {{ {DETAILED_STATUS} }} }}"),
            json!({"input": ports}),
            options,
        )
        .await
    }

    /// Makes the listen port `name` present the key `keystore_id:alias` (`tlsSettings.keyAlias`).
    pub async fn update_listen_port_key(
        &self,
        name: &str,
        keystore_id: &str,
        alias: &str,
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            &format!(
                "mutation updateListenPort($refInput: ListenPortRefInput!, $input: ListenPortPartialInput!) {{ updateListenPort(refInput: $refInput, input: $input) {{ {DETAILED_STATUS} }} }}"
            ),
            json!({"refInput": {"name": name}, "input": {"tlsSettings": {"keystoreId": keystore_id, "keyAlias": alias}}}),
            options,
        )
        .await
    }

    /// The trusted certificates with this name.
    pub async fn trusted_certs_by_name(
        &self,
        name: &str,
    ) -> Result<Vec<GraphmanTrustedCert>, Layer7Error> {
        let found: Option<Vec<GraphmanTrustedCert>> = self
            .field(
                "trustedCertsByName",
                &format!("query trustedCertsByName($name: String!) {{ trustedCertsByName(name: $name) {{ {TRUSTED_CERT_FIELDS} }} }}"),
                json!({"name": name}),
            )
            .await?;
        Ok(found.unwrap_or_default())
    }

    /// Creates or updates trusted certificates.
    pub async fn set_trusted_certs(
        &self,
        certs: &[TrustedCertInput],
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            &format!("mutation setTrustedCerts($input: [TrustedCertInput!]!) {{ setTrustedCerts(input: $input) {{ {DETAILED_STATUS} }} }}"),
            json!({"input": certs}),
            options,
        )
        .await
    }

    /// Deletes trusted certificates by SHA-1 thumbprint.
    pub async fn delete_trusted_certs(
        &self,
        thumbprints_sha1: &[&str],
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        self.mutate(
            &format!(
                "mutation deleteTrustedCerts($thumbprintSha1s: [String!]!) {{ deleteTrustedCerts(thumbprintSha1s: $thumbprintSha1s) {{ {DETAILED_STATUS} }} }}"
            ),
            json!({"thumbprintSha1s": thumbprints_sha1}),
            options,
        )
        .await
    }

    /// The folder at this path (`/apis/orders`), if any.
    pub async fn folder_by_path(&self, path: &str) -> Result<Option<GraphmanFolder>, Layer7Error> {
        self.field(
            "folderByPath",
            &format!("query folderByPath($path: String!) {{ folderByPath(path: $path) {{ {FOLDER_FIELDS} }} }}"),
            json!({"path": path}),
        )
        .await
    }

    /// Every folder.
    pub async fn folders(&self) -> Result<Vec<GraphmanFolder>, Layer7Error> {
        let found: Option<Vec<GraphmanFolder>> = self
            .field(
                "folders",
                &format!("query folders {{ folders {{ {FOLDER_FIELDS} }} }}"),
                json!({}),
            )
            .await?;
        Ok(found.unwrap_or_default())
    }

    /// The encapsulated assertion with this name, if any.
    pub async fn encass_config_by_name(
        &self,
        name: &str,
    ) -> Result<Option<GraphmanEncassConfig>, Layer7Error> {
        self.field(
            "encassConfigByName",
            &format!("query encassConfigByName($name: String!) {{ encassConfigByName(name: $name) {{ {ENCASS_CONFIG_FIELDS} }} }}"),
            json!({"name": name}),
        )
        .await
    }

    /// Every encapsulated assertion.
    pub async fn encass_configs(&self) -> Result<Vec<GraphmanEncassConfig>, Layer7Error> {
        let found: Option<Vec<GraphmanEncassConfig>> = self
            .field(
                "encassConfigs",
                &format!("query encassConfigs {{ encassConfigs {{ {ENCASS_CONFIG_FIELDS} }} }}"),
                json!({}),
            )
            .await?;
        Ok(found.unwrap_or_default())
    }
}
