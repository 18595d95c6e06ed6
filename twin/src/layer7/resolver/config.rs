//! Configuration entities in Graphman's shape (reference §2.4): folders, services,
//! policies, encapsulated assertions, cluster properties and secrets.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::kind::{
    GraphmanKind, NameValueInput, folder_id, folder_path, parse, properties_from, properties_json,
    text,
};
use crate::layer7::graphman::Context;
use crate::layer7::store::{
    ClusterProperty, EncapsulatedAssertion, EncassArgument, EncassResult, Folder, HasRevisions,
    PasswordType, Policy, PolicyType, PropertyValue, Revisions, Service, Store, StoreError, Stored,
    StoredPassword,
};

/// Verbs a new service accepts when its input names none (restman's default too).
const DEFAULT_METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// `policy { xml json yaml code }` of an input.
#[derive(Debug, Default, Deserialize)]
struct PolicyCodeInput {
    /// The policy XML.
    #[serde(default)]
    xml: Option<String>,
    /// The policy as JSON text.
    #[serde(default)]
    json: Option<Value>,
    /// The policy as YAML text.
    #[serde(default)]
    yaml: Option<Value>,
    /// The policy as a code object.
    #[serde(default)]
    code: Option<Value>,
}

impl PolicyCodeInput {
    /// The XML, or why not: the twin stores policies as XML only.
    fn xml(self) -> Result<Option<String>, String> {
        if self.xml.is_none()
            && [&self.json, &self.yaml, &self.code]
                .iter()
                .any(|form| form.as_ref().is_some_and(|value| !value.is_null()))
        {
            return Err(
                "the twin takes policies as policy.xml only (not json, yaml or code)".into(),
            );
        }
        Ok(self.xml)
    }
}

/// The policy XML of an input (`policy.xml`), else the existing one's; required when new.
fn policy_xml(
    code: Option<PolicyCodeInput>,
    existing: Option<&Revisions>,
) -> Result<String, String> {
    match (
        code.map(PolicyCodeInput::xml).transpose()?.flatten(),
        existing,
    ) {
        (Some(xml), _) => Ok(xml),
        (None, Some(revisions)) => Ok(revisions.active_xml().to_owned()),
        (None, None) => Err("a new entity needs its policy (policy.xml)".to_owned()),
    }
}

/// The revisions of a service or policy as Graphman's `PolicyRevision`s.
fn revisions_json<T: HasRevisions>(entity: &T) -> Value {
    let revisions = entity.revisions();
    Value::Array(
        revisions
            .all()
            .iter()
            .map(|revision| {
                json!({
                    "__typename": "PolicyRevision",
                    "goid": revision.goid,
                    "ordinal": revision.ordinal,
                    "active": revision.ordinal == revisions.active_ordinal(),
                    "comment": revision.comment,
                    "author": revision.author,
                    "time": revision.time_ms,
                    "xml": revision.xml,
                    "json": null, "yaml": null, "code": null,
                })
            })
            .collect(),
    )
}

/// `policy { xml json yaml code }` of a stored service or policy.
fn policy_json<T: HasRevisions>(entity: &T) -> Value {
    json!({"xml": entity.revisions().active_xml(), "json": null, "yaml": null, "code": null,
        "directDependencies": [], "allDependencies": []})
}

/// A name or an existing value; required when new.
fn required(given: Option<String>, existing: Option<String>, what: &str) -> Result<String, String> {
    given
        .or(existing)
        .ok_or_else(|| format!("{what} is required"))
}

/// A new guid when none is given or kept.
fn guid(given: Option<String>, existing: Option<String>) -> String {
    given
        .or(existing)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

impl GraphmanKind for Folder {
    const SECTION: &'static str = "folders";
    const TYPE_NAME: &'static str = "Folder";

    fn config_json(stored: &Stored<Self>, store: &Store) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("goid".into(), json!(stored.id));
        object.insert("name".into(), json!(stored.entity.name));
        object.insert("folderPath".into(), json!(folder_path(store, &stored.id)));
        object
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        let path = text(input, "folderPath").or_else(|| text(input, "path"))?;
        store.folder_by_path(&path).map(|folder| folder.id.clone())
    }

    fn from_input(
        store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        if let Some(existing) = existing
            && existing.entity.parent_id.is_none()
        {
            return Ok(existing.entity.clone());
        }
        let path = text(input, "folderPath")
            .or_else(|| text(input, "path"))
            .ok_or("folderPath is required")?;
        let trimmed = path.trim_end_matches('/');
        let (parent, last) = trimmed
            .rsplit_once('/')
            .ok_or_else(|| format!("folderPath {path} must start with /"))?;
        let name = text(input, "name").unwrap_or_else(|| last.to_owned());
        if name != last {
            return Err(format!(
                "name {name} does not match the last part of folderPath {path}"
            ));
        }
        Ok(Folder {
            name,
            parent_id: Some(folder_id(
                store,
                Some(if parent.is_empty() { "/" } else { parent }),
            )?),
        })
    }

    fn remove(store: &mut Store, id: &str, context: &Context<'_>) -> Result<(), StoreError> {
        store.delete_folder(id, context.options.force_delete)
    }
}

/// `L7ServiceInput` (the fields the twin models).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceInput {
    /// Name.
    name: Option<String>,
    /// Stable id.
    guid: Option<String>,
    /// URL pattern.
    resolution_path: Option<String>,
    /// `WEB_API`, `SOAP`, `INTERNAL_WEB_API`, `INTERNAL_SOAP`.
    service_type: Option<String>,
    /// Enabled.
    enabled: Option<bool>,
    /// Folder path.
    folder_path: Option<String>,
    /// HTTP verbs.
    methods_allowed: Option<Vec<String>>,
    /// Tracing.
    tracing_enabled: Option<bool>,
    /// WS-Security processing.
    wss_processing_enabled: Option<bool>,
    /// Other properties.
    properties: Option<Vec<NameValueInput>>,
    /// The policy.
    policy: Option<PolicyCodeInput>,
}

/// A service's `L7ServiceType`.
fn service_type(service: &Service) -> &'static str {
    match (service.internal, service.soap) {
        (false, false) => "WEB_API",
        (false, true) => "SOAP",
        (true, false) => "INTERNAL_WEB_API",
        (true, true) => "INTERNAL_SOAP",
    }
}

/// `(internal, soap)` of an `L7ServiceType`.
fn service_flags(kind: &str) -> Result<(bool, bool), String> {
    match kind {
        "WEB_API" => Ok((false, false)),
        "SOAP" => Ok((false, true)),
        "INTERNAL_WEB_API" => Ok((true, false)),
        "INTERNAL_SOAP" => Ok((true, true)),
        other => Err(format!(
            "serviceType {other} is not one of WEB_API, SOAP, INTERNAL_WEB_API, INTERNAL_SOAP"
        )),
    }
}

impl GraphmanKind for Service {
    const SECTION: &'static str = "services";
    const TYPE_NAME: &'static str = "L7Service";

    fn config_json(stored: &Stored<Self>, store: &Store) -> Map<String, Value> {
        let service = &stored.entity;
        let value = json!({
            "goid": stored.id,
            "guid": service.guid,
            "name": service.name,
            "resolutionPath": service.resolution_path,
            "resolvers": {"resolutionPath": service.resolution_path, "baseUri": null, "soapActions": []},
            "serviceType": service_type(service),
            "enabled": service.enabled,
            "folderPath": folder_path(store, &service.folder_id),
            "methodsAllowed": service.verbs,
            "tracingEnabled": service.tracing_enabled,
            "wssProcessingEnabled": service.wss_processing_enabled,
            "laxResolution": false,
            "soapVersion": null,
            "wsdlUrl": null,
            "wsdl": null,
            "wsdlResources": [],
            "properties": properties_json(&service.properties),
            "policy": policy_json(service),
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn state_json(stored: &Stored<Self>, _store: &Store) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("version".into(), json!(stored.version));
        object.insert("policyRevisions".into(), revisions_json(&stored.entity));
        object
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        if let Some(path) = text(input, "resolutionPath") {
            let kind = text(input, "serviceType");
            return store
                .find::<Service>(&format!("path={path}"))
                .into_iter()
                .find(|stored| {
                    kind.as_deref()
                        .is_none_or(|kind| kind == service_type(&stored.entity))
                })
                .map(|stored| stored.id.clone());
        }
        if let Some(goid) = text(input, "goid")
            && store.get::<Service>(&goid).is_some()
        {
            return Some(goid);
        }
        let name = text(input, "name")?;
        store
            .find::<Service>(&format!("name={name}"))
            .first()
            .map(|stored| stored.id.clone())
    }

    fn from_input(
        store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        let given: ServiceInput = parse(input, "service")?;
        let old = existing.map(|stored| &stored.entity);
        let (internal, soap) = match &given.service_type {
            Some(kind) => service_flags(kind)?,
            None => old.map_or((false, false), |old| (old.internal, old.soap)),
        };
        let folder = match (&given.folder_path, old) {
            (None, Some(old)) => old.folder_id.clone(),
            (path, _) => folder_id(store, path.as_deref())?,
        };
        Ok(Service {
            guid: guid(given.guid, old.map(|old| old.guid.clone())),
            name: required(given.name, old.map(|old| old.name.clone()), "name")?,
            folder_id: folder,
            enabled: given.enabled.or(old.map(|old| old.enabled)).unwrap_or(true),
            resolution_path: given
                .resolution_path
                .or_else(|| old.and_then(|old| old.resolution_path.clone())),
            verbs: given
                .methods_allowed
                .or_else(|| old.map(|old| old.verbs.clone()))
                .unwrap_or_else(|| DEFAULT_METHODS.map(str::to_owned).to_vec()),
            soap,
            internal,
            tracing_enabled: given
                .tracing_enabled
                .or(old.map(|old| old.tracing_enabled))
                .unwrap_or(false),
            wss_processing_enabled: given
                .wss_processing_enabled
                .or(old.map(|old| old.wss_processing_enabled))
                .unwrap_or(false),
            properties: match (&given.properties, old) {
                (Some(list), _) => properties_from(list),
                (None, Some(old)) => old.properties.clone(),
                (None, None) => Default::default(),
            },
            revisions: Revisions::new(
                policy_xml(given.policy, old.map(|old| &old.revisions))?,
                None,
            ),
        })
    }
}

/// `L7PolicyInput` (the fields the twin models).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyInput {
    /// Name.
    name: Option<String>,
    /// Stable id.
    guid: Option<String>,
    /// `L7PolicyType`.
    policy_type: Option<String>,
    /// Folder path.
    folder_path: Option<String>,
    /// Tag.
    tag: Option<String>,
    /// Sub-tag.
    sub_tag: Option<String>,
    /// SOAP policy.
    soap: Option<bool>,
    /// The policy.
    policy: Option<PolicyCodeInput>,
}

/// Graphman's `L7PolicyType` of a stored policy type.
fn policy_type_name(kind: &PolicyType) -> String {
    match kind {
        PolicyType::Include => "FRAGMENT".to_owned(),
        PolicyType::Internal => "INTERNAL".to_owned(),
        PolicyType::Global => "GLOBAL".to_owned(),
        PolicyType::Other(name) => match name.as_str() {
            "Service Operation" => "POLICY_BACKED_OPERATION".to_owned(),
            "Identity Provider" => "POLICY_BACKED_IDP".to_owned(),
            other => other.to_owned(),
        },
    }
}

/// The stored policy type of an `L7PolicyType`.
fn policy_type(name: &str) -> PolicyType {
    match name {
        "FRAGMENT" => PolicyType::Include,
        "INTERNAL" => PolicyType::Internal,
        "GLOBAL" => PolicyType::Global,
        "POLICY_BACKED_OPERATION" => PolicyType::Other("Service Operation".to_owned()),
        "POLICY_BACKED_IDP" => PolicyType::Other("Identity Provider".to_owned()),
        other => PolicyType::Other(other.to_owned()),
    }
}

/// A text property.
fn property_text(properties: &crate::layer7::store::Properties, name: &str) -> Option<String> {
    properties.get(name).map(PropertyValue::as_text)
}

impl GraphmanKind for Policy {
    const SECTION: &'static str = "policies";
    const TYPE_NAME: &'static str = "L7Policy";

    fn config_json(stored: &Stored<Self>, store: &Store) -> Map<String, Value> {
        let policy = &stored.entity;
        let value = json!({
            "goid": stored.id,
            "guid": policy.guid,
            "name": policy.name,
            "policyType": policy_type_name(&policy.policy_type),
            "tag": property_text(&policy.properties, "tag"),
            "subTag": property_text(&policy.properties, "subtag"),
            "folderPath": folder_path(store, &policy.folder_id),
            "soap": policy.soap,
            "enabled": true,
            "policy": policy_json(policy),
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn state_json(stored: &Stored<Self>, _store: &Store) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("version".into(), json!(stored.version));
        object.insert("policyRevisions".into(), revisions_json(&stored.entity));
        object
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        let by = |key: String| {
            store
                .find::<Policy>(&key)
                .first()
                .map(|stored| stored.id.clone())
        };
        text(input, "name")
            .and_then(|name| by(format!("name={name}")))
            .or_else(|| text(input, "guid").and_then(|guid| by(format!("guid={guid}"))))
    }

    fn from_input(
        store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        let given: PolicyInput = parse(input, "policy")?;
        let old = existing.map(|stored| &stored.entity);
        let folder = match (&given.folder_path, old) {
            (None, Some(old)) => old.folder_id.clone(),
            (path, _) => folder_id(store, path.as_deref())?,
        };
        let mut properties = old.map(|old| old.properties.clone()).unwrap_or_default();
        for (key, value) in [("tag", given.tag), ("subtag", given.sub_tag)] {
            if let Some(value) = value {
                properties.insert(key.to_owned(), PropertyValue::String(value));
            }
        }
        Ok(Policy {
            guid: guid(given.guid, old.map(|old| old.guid.clone())),
            name: required(given.name, old.map(|old| old.name.clone()), "name")?,
            folder_id: folder,
            policy_type: match (&given.policy_type, old) {
                (Some(name), _) => policy_type(name),
                (None, Some(old)) => old.policy_type.clone(),
                (None, None) => PolicyType::Include,
            },
            soap: given.soap.or(old.map(|old| old.soap)).unwrap_or(false),
            properties,
            revisions: Revisions::new(
                policy_xml(given.policy, old.map(|old| &old.revisions))?,
                None,
            ),
        })
    }
}

/// `EncassConfigInput` (the fields the twin models).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncassInput {
    /// Name.
    name: Option<String>,
    /// Stable id.
    guid: Option<String>,
    /// The backing policy's name.
    policy_name: Option<String>,
    /// Arguments.
    arguments: Option<Vec<EncassArgumentInput>>,
    /// Results.
    results: Option<Vec<EncassResultInput>>,
    /// Other properties.
    properties: Option<Vec<NameValueInput>>,
}

/// One argument of an `EncassConfigInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncassArgumentInput {
    /// Name.
    name: String,
    /// Type.
    #[serde(rename = "type", default)]
    kind: Option<String>,
    /// Position.
    #[serde(default)]
    ordinal: Option<u32>,
    /// Shown in the dialog.
    #[serde(default)]
    gui_prompt: Option<bool>,
    /// Label in the dialog.
    #[serde(default)]
    gui_label: Option<String>,
}

/// One result of an `EncassConfigInput`.
#[derive(Debug, Deserialize)]
struct EncassResultInput {
    /// Name.
    name: String,
    /// Type.
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl GraphmanKind for EncapsulatedAssertion {
    const SECTION: &'static str = "encassConfigs";
    const TYPE_NAME: &'static str = "EncassConfig";

    fn config_json(stored: &Stored<Self>, store: &Store) -> Map<String, Value> {
        let encass = &stored.entity;
        let policy_name = store
            .get::<Policy>(&encass.policy_id)
            .map(|policy| policy.entity.name.clone());
        let value = json!({
            "goid": stored.id,
            "guid": encass.guid,
            "name": encass.name,
            "policyName": policy_name,
            "arguments": encass.arguments.iter().map(|argument| json!({
                "name": argument.name, "type": argument.kind, "ordinal": argument.ordinal,
                "guiPrompt": argument.gui_prompt, "guiLabel": argument.gui_label,
            })).collect::<Vec<_>>(),
            "results": encass.results.iter().map(|result| json!({
                "name": result.name, "type": result.kind,
            })).collect::<Vec<_>>(),
            "properties": properties_json(&encass.properties),
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        let by = |key: String| {
            store
                .find::<EncapsulatedAssertion>(&key)
                .first()
                .map(|stored| stored.id.clone())
        };
        text(input, "name")
            .and_then(|name| by(format!("name={name}")))
            .or_else(|| text(input, "guid").and_then(|guid| by(format!("guid={guid}"))))
    }

    fn from_input(
        store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        let given: EncassInput = parse(input, "encass config")?;
        let old = existing.map(|stored| &stored.entity);
        let policy_id = match (&given.policy_name, old) {
            (Some(name), _) => store
                .find::<Policy>(&format!("name={name}"))
                .first()
                .map(|policy| policy.id.clone())
                .ok_or_else(|| format!("policy {name} does not exist"))?,
            (None, Some(old)) => old.policy_id.clone(),
            (None, None) => return Err("policyName is required".to_owned()),
        };
        let arguments = match given.arguments {
            Some(list) => list
                .into_iter()
                .zip(1_u32..)
                .map(|(argument, position)| EncassArgument {
                    ordinal: argument.ordinal.unwrap_or(position),
                    name: argument.name,
                    kind: argument.kind.unwrap_or_else(|| "string".to_owned()),
                    gui_prompt: argument.gui_prompt.unwrap_or(false),
                    gui_label: argument.gui_label,
                })
                .collect(),
            None => old.map(|old| old.arguments.clone()).unwrap_or_default(),
        };
        let results = match given.results {
            Some(list) => list
                .into_iter()
                .map(|result| EncassResult {
                    name: result.name,
                    kind: result.kind.unwrap_or_else(|| "string".to_owned()),
                })
                .collect(),
            None => old.map(|old| old.results.clone()).unwrap_or_default(),
        };
        Ok(EncapsulatedAssertion {
            name: required(given.name, old.map(|old| old.name.clone()), "name")?,
            guid: guid(given.guid, old.map(|old| old.guid.clone())),
            policy_id,
            arguments,
            results,
            properties: match (&given.properties, old) {
                (Some(list), _) => properties_from(list),
                (None, Some(old)) => old.properties.clone(),
                (None, None) => Default::default(),
            },
        })
    }
}

/// `ClusterPropertyInput`.
#[derive(Debug, Deserialize)]
struct ClusterPropertyInput {
    /// Name.
    name: String,
    /// Value.
    value: Option<String>,
    /// Description.
    description: Option<String>,
}

impl GraphmanKind for ClusterProperty {
    const SECTION: &'static str = "clusterProperties";
    const TYPE_NAME: &'static str = "ClusterProperty";

    fn config_json(stored: &Stored<Self>, _store: &Store) -> Map<String, Value> {
        let property = &stored.entity;
        let value = json!({
            "goid": stored.id,
            "name": property.name,
            "description": property.description,
            "hiddenProperty": false,
            "value": property.value,
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        let name = text(input, "name")?;
        store
            .find::<ClusterProperty>(&format!("name={name}"))
            .first()
            .map(|stored| stored.id.clone())
    }

    fn from_input(
        _store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        let given: ClusterPropertyInput = parse(input, "cluster property")?;
        let old = existing.map(|stored| &stored.entity);
        Ok(ClusterProperty {
            value: required(given.value, old.map(|old| old.value.clone()), "value")?,
            description: given
                .description
                .or_else(|| old.and_then(|old| old.description.clone())),
            name: given.name,
        })
    }
}

/// `SecretInput`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretInput {
    /// Name.
    name: String,
    /// The secret, clear text (the twin does not decrypt bundle secrets).
    secret: Option<String>,
    /// `PASSWORD` or `PEM_PRIVATE_KEY`.
    secret_type: Option<String>,
    /// `${secpass.<name>.plaintext}` allowed.
    variable_referencable: Option<bool>,
    /// Description.
    description: Option<String>,
}

impl GraphmanKind for StoredPassword {
    const SECTION: &'static str = "secrets";
    const TYPE_NAME: &'static str = "Secret";

    fn config_json(stored: &Stored<Self>, _store: &Store) -> Map<String, Value> {
        let secret = &stored.entity;
        let value = json!({
            "goid": stored.id,
            "name": secret.name,
            "description": secret.description,
            "secret": null,
            "secretType": match secret.kind {
                PasswordType::Password => "PASSWORD",
                PasswordType::PemPrivateKey => "PEM_PRIVATE_KEY",
            },
            "variableReferencable": secret.usage_from_variable,
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn hidden_checksum_input(stored: &Stored<Self>) -> Option<String> {
        let digest = Sha256::digest(stored.entity.password.as_bytes());
        Some(digest.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        let name = text(input, "name")?;
        store
            .find::<StoredPassword>(&format!("name={name}"))
            .first()
            .map(|stored| stored.id.clone())
    }

    fn from_input(
        _store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        // Never quote the input: it holds the secret.
        let given = SecretInput::deserialize(input)
            .map_err(|_| "invalid secret input (name, secret, secretType, ...)".to_owned())?;
        let old = existing.map(|stored| &stored.entity);
        let kind = match (given.secret_type.as_deref(), old) {
            (Some("PASSWORD"), _) | (None, None) => PasswordType::Password,
            (Some("PEM_PRIVATE_KEY"), _) => PasswordType::PemPrivateKey,
            (Some(other), _) => {
                return Err(format!(
                    "secretType {other} is not PASSWORD or PEM_PRIVATE_KEY"
                ));
            }
            (None, Some(old)) => old.kind,
        };
        Ok(StoredPassword {
            password: required(given.secret, old.map(|old| old.password.clone()), "secret")?,
            kind,
            usage_from_variable: given
                .variable_referencable
                .or(old.map(|old| old.usage_from_variable))
                .unwrap_or(true),
            description: given
                .description
                .or_else(|| old.and_then(|old| old.description.clone())),
            name: given.name,
        })
    }
}
