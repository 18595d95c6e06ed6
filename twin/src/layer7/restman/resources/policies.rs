//! Services (`l7:Service` + `l7:ServiceDetail`) and policies (`l7:Policy` +
//! `l7:PolicyDetail`) as restman shows them, with the policy XML escaped inside
//! `l7:Resources/l7:ResourceSet tag="policy"`.

use super::{
    Parsed, Resource, ResourceError, flag, id_of, properties, properties_element, required,
    take_bool, version_of,
};
use crate::layer7::restman::xml::Element;
use crate::layer7::store::{
    Policy, PolicyType, PropertyValue, ROOT_FOLDER_ID, Revisions, Service, Store, Stored,
};

/// Verbs a service accepts when its mapping names none.
const DEFAULT_VERBS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// A stable guid for an entity without one: derived from its goid when known.
pub(crate) fn derived_guid(id: Option<&str>) -> String {
    match id {
        Some(id) => uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes()).to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    }
}

/// `l7:Resources` holding `xml` as the policy resource of `revision`.
fn policy_resources(xml: &str, revision: u64) -> Element {
    Element::new("l7:Resources").child(
        Element::new("l7:ResourceSet").attr("tag", "policy").child(
            Element::text("l7:Resource", xml)
                .attr("type", "policy")
                .attr("version", revision.to_string()),
        ),
    )
}

/// The policy XML inside an element's `l7:Resources`.
fn policy_xml(element: &Element) -> Result<String, ResourceError> {
    element
        .find("Resources")
        .into_iter()
        .flat_map(|resources| resources.find_all("ResourceSet"))
        .filter(|set| set.attribute("tag") == Some("policy"))
        .flat_map(|set| set.find_all("Resource"))
        .find(|resource| {
            resource
                .attribute("type")
                .is_none_or(|kind| kind == "policy")
        })
        .map(|resource| resource.text.trim().to_owned())
        .filter(|xml| !xml.is_empty())
        .ok_or_else(|| {
            ResourceError(format!(
                "l7:{} has no policy (l7:Resources/l7:ResourceSet tag=\"policy\")",
                element.local_name()
            ))
        })
}

impl Resource for Service {
    const ELEMENT: &'static str = "Service";
    const TYPE: &'static str = "SERVICE";
    const COLLECTION: &'static str = "services";
    const FILTERS: &'static [(&'static str, &'static str)] = &[
        ("guid", "guid"),
        ("parentFolder.id", "parent"),
        ("enabled", "enabled"),
    ];

    fn to_xml(stored: &Stored<Self>, _store: &Store) -> Element {
        let service = &stored.entity;
        let version = stored.version.to_string();
        let revision = service.revisions.active_ordinal();
        let fixed = [
            (
                "policyRevision",
                PropertyValue::Long(i64::try_from(revision).unwrap_or(i64::MAX)),
            ),
            (
                "wssProcessingEnabled",
                PropertyValue::Boolean(service.wss_processing_enabled),
            ),
            ("soap", PropertyValue::Boolean(service.soap)),
            ("internal", PropertyValue::Boolean(service.internal)),
            (
                "tracingEnabled",
                PropertyValue::Boolean(service.tracing_enabled),
            ),
        ];
        let extra = service
            .properties
            .iter()
            .map(|(key, value)| (key.as_str(), value.clone()));
        let mapping = Element::new("l7:HttpMapping")
            .child_opt(
                service
                    .resolution_path
                    .as_ref()
                    .map(|path| Element::text("l7:UrlPattern", path)),
            )
            .child(
                Element::new("l7:Verbs").children(
                    service
                        .verbs
                        .iter()
                        .map(|verb| Element::text("l7:Verb", verb)),
                ),
            );
        let detail = Element::new("l7:ServiceDetail")
            .attr("folderId", &service.folder_id)
            .attr("id", &stored.id)
            .attr("version", &version)
            .child(Element::text("l7:Name", &service.name))
            .child(Element::text("l7:Enabled", service.enabled.to_string()))
            .child(Element::new("l7:ServiceMappings").child(mapping))
            .child_opt(properties_element(fixed.into_iter().chain(extra)));
        Element::new("l7:Service")
            .attr("id", &stored.id)
            .attr("version", &version)
            .child(detail)
            .child(policy_resources(service.revisions.active_xml(), revision))
    }

    fn from_xml(element: &Element, id: Option<&str>) -> Result<Parsed<Self>, ResourceError> {
        let detail = element
            .find("ServiceDetail")
            .ok_or_else(|| ResourceError("l7:Service is missing l7:ServiceDetail".to_owned()))?;
        let id = id_of(element, id).or_else(|| detail.attribute("id").map(str::to_owned));
        let mapping = detail
            .find("ServiceMappings")
            .and_then(|mappings| mappings.find("HttpMapping"));
        let verbs: Vec<String> = mapping
            .and_then(|mapping| mapping.find("Verbs"))
            .map(|verbs| {
                verbs
                    .find_all("Verb")
                    .map(|verb| verb.text.trim().to_ascii_uppercase())
                    .collect()
            })
            .unwrap_or_default();
        let mut properties = properties(detail)?;
        properties.remove("policyRevision");
        let soap = take_bool(&mut properties, "soap", false)?;
        let internal = take_bool(&mut properties, "internal", false)?;
        let tracing_enabled = take_bool(&mut properties, "tracingEnabled", false)?;
        let wss_processing_enabled = take_bool(&mut properties, "wssProcessingEnabled", false)?;
        let service = Service {
            guid: element
                .attribute("guid")
                .map_or_else(|| derived_guid(id.as_deref()), str::to_owned),
            name: required(detail, "Name")?.to_owned(),
            folder_id: detail
                .attribute("folderId")
                .unwrap_or(ROOT_FOLDER_ID)
                .to_owned(),
            enabled: flag(detail, "Enabled", true)?,
            resolution_path: mapping
                .and_then(|mapping| mapping.child_text("UrlPattern"))
                .filter(|path| !path.is_empty())
                .map(str::to_owned),
            verbs: if verbs.is_empty() {
                DEFAULT_VERBS
                    .iter()
                    .map(|verb| (*verb).to_owned())
                    .collect()
            } else {
                verbs
            },
            soap,
            internal,
            tracing_enabled,
            wss_processing_enabled,
            properties,
            revisions: Revisions::new(policy_xml(element)?, None),
        };
        Ok(Parsed {
            version: version_of(element)?,
            id,
            entity: service,
        })
    }

    fn keep_hidden(&mut self, previous: &Self) {
        self.guid.clone_from(&previous.guid);
    }
}

/// The restman name of a policy type.
pub(crate) fn policy_type_name(kind: &PolicyType) -> &str {
    match kind {
        PolicyType::Include => "Include",
        PolicyType::Internal => "Internal",
        PolicyType::Global => "Global",
        PolicyType::Other(name) => name,
    }
}

/// A policy type from its restman name.
fn policy_type(name: &str) -> PolicyType {
    match name {
        "Include" => PolicyType::Include,
        "Internal" => PolicyType::Internal,
        "Global" => PolicyType::Global,
        other => PolicyType::Other(other.to_owned()),
    }
}

impl Resource for Policy {
    const ELEMENT: &'static str = "Policy";
    const TYPE: &'static str = "POLICY";
    const COLLECTION: &'static str = "policies";
    const FILTERS: &'static [(&'static str, &'static str)] =
        &[("guid", "guid"), ("parentFolder.id", "parent")];

    fn to_xml(stored: &Stored<Self>, _store: &Store) -> Element {
        let policy = &stored.entity;
        let version = stored.version.to_string();
        let revision = policy.revisions.active_ordinal();
        let fixed = [
            (
                "revision",
                PropertyValue::Long(i64::try_from(revision).unwrap_or(i64::MAX)),
            ),
            ("soap", PropertyValue::Boolean(policy.soap)),
        ];
        let extra = policy
            .properties
            .iter()
            .map(|(key, value)| (key.as_str(), value.clone()));
        let detail = Element::new("l7:PolicyDetail")
            .attr("folderId", &policy.folder_id)
            .attr("guid", &policy.guid)
            .attr("id", &stored.id)
            .attr("version", &version)
            .child(Element::text("l7:Name", &policy.name))
            .child(Element::text(
                "l7:PolicyType",
                policy_type_name(&policy.policy_type),
            ))
            .child_opt(properties_element(fixed.into_iter().chain(extra)));
        Element::new("l7:Policy")
            .attr("guid", &policy.guid)
            .attr("id", &stored.id)
            .attr("version", &version)
            .child(detail)
            .child(policy_resources(policy.revisions.active_xml(), revision))
    }

    fn from_xml(element: &Element, id: Option<&str>) -> Result<Parsed<Self>, ResourceError> {
        let detail = element
            .find("PolicyDetail")
            .ok_or_else(|| ResourceError("l7:Policy is missing l7:PolicyDetail".to_owned()))?;
        let id = id_of(element, id).or_else(|| detail.attribute("id").map(str::to_owned));
        let mut properties = properties(detail)?;
        properties.remove("revision");
        let soap = take_bool(&mut properties, "soap", false)?;
        let guid = element
            .attribute("guid")
            .or_else(|| detail.attribute("guid"))
            .map_or_else(|| derived_guid(id.as_deref()), str::to_owned);
        let policy = Policy {
            guid,
            name: required(detail, "Name")?.to_owned(),
            folder_id: detail
                .attribute("folderId")
                .unwrap_or(ROOT_FOLDER_ID)
                .to_owned(),
            policy_type: policy_type(detail.child_text("PolicyType").unwrap_or("Include")),
            soap,
            properties,
            revisions: Revisions::new(policy_xml(element)?, None),
        };
        Ok(Parsed {
            version: version_of(element)?,
            id,
            entity: policy,
        })
    }
}
