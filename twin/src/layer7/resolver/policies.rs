//! Services and policies in Graphman's shape (reference §2.4), with their policy
//! revisions.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config::{guid, required};
use super::kind::{
    GraphmanKind, NameValueInput, find_by_name_or_guid, folder_id, folder_path, parse,
    properties_from, properties_json, text,
};
use crate::layer7::graphman::Context;
use crate::layer7::store::{
    HasRevisions, Policy, PolicyType, PropertyValue, Revisions, Service, Store, Stored,
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
        find_by_name_or_guid::<Self>(store, input)
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
