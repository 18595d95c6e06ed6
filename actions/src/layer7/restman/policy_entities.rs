//! The policy-bearing restman resources: [`Service`] (with its
//! [`ServiceDetail`]) and [`Policy`] (with its [`PolicyDetail`]), and the
//! `l7:Resources` block that carries their policy XML ([`Resources`]).

use serde::{Deserialize, Serialize};

use super::properties::{Properties, PropertyValue, no_properties};
use super::xml::RestmanEntity;

/// `l7:Service`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Service {
    /// The goid.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The optimistic-lock counter.
    #[serde(rename = "@version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `l7:ServiceDetail`.
    #[serde(rename(serialize = "l7:ServiceDetail", deserialize = "ServiceDetail"))]
    pub detail: ServiceDetail,
    /// `l7:Resources`: the policy (and WSDL for SOAP services).
    #[serde(
        rename(serialize = "l7:Resources", deserialize = "Resources"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resources: Option<Resources>,
}

/// `l7:ServiceDetail`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ServiceDetail {
    /// The folder's goid.
    #[serde(rename = "@folderId", default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<String>,
    /// The goid.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The optimistic-lock counter.
    #[serde(rename = "@version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `l7:Name`.
    #[serde(rename(serialize = "l7:Name", deserialize = "Name"))]
    pub name: String,
    /// `l7:Enabled`: whether the service serves requests.
    #[serde(rename(serialize = "l7:Enabled", deserialize = "Enabled"), default)]
    pub enabled: bool,
    /// `l7:ServiceMappings`.
    #[serde(
        rename(serialize = "l7:ServiceMappings", deserialize = "ServiceMappings"),
        default
    )]
    pub mappings: ServiceMappings,
    /// `l7:Properties`: `policyRevision`, `soap`, `internal`, `tracingEnabled`, ...
    #[serde(
        rename(serialize = "l7:Properties", deserialize = "Properties"),
        default,
        skip_serializing_if = "no_properties"
    )]
    pub properties: Option<Properties>,
}

/// `l7:ServiceMappings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ServiceMappings {
    /// `l7:HttpMapping`: how requests reach the service.
    #[serde(
        rename(serialize = "l7:HttpMapping", deserialize = "HttpMapping"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http: Option<HttpMapping>,
}

/// `l7:HttpMapping`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct HttpMapping {
    /// `l7:UrlPattern`: the resolution path (`/orders`).
    #[serde(
        rename(serialize = "l7:UrlPattern", deserialize = "UrlPattern"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub url_pattern: Option<String>,
    /// `l7:Verbs`.
    #[serde(rename(serialize = "l7:Verbs", deserialize = "Verbs"), default)]
    pub verbs: Verbs,
}

/// `l7:Verbs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Verbs {
    /// `l7:Verb` elements (`GET`, `POST`, ...).
    #[serde(rename(serialize = "l7:Verb", deserialize = "Verb"), default)]
    pub verbs: Vec<String>,
}

/// `l7:Resources`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Resources {
    /// `l7:ResourceSet` elements (`tag="policy"`, `tag="wsdl"`).
    #[serde(
        rename(serialize = "l7:ResourceSet", deserialize = "ResourceSet"),
        default
    )]
    pub sets: Vec<ResourceSet>,
}

/// `l7:ResourceSet`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResourceSet {
    /// `tag` (`policy`, `wsdl`).
    #[serde(rename = "@tag")]
    pub tag: String,
    /// `rootUrl` (WSDL sets).
    #[serde(rename = "@rootUrl", default, skip_serializing_if = "Option::is_none")]
    pub root_url: Option<String>,
    /// `l7:Resource` elements.
    #[serde(rename(serialize = "l7:Resource", deserialize = "Resource"), default)]
    pub resources: Vec<ResourceDocument>,
}

/// `l7:Resource type=".."`: a document held as text (the policy XML).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResourceDocument {
    /// `type` (`policy`, `wsdl`, `xmlschema`).
    #[serde(rename = "@type")]
    pub kind: String,
    /// `sourceUrl`.
    #[serde(
        rename = "@sourceUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_url: Option<String>,
    /// `version`.
    #[serde(rename = "@version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The document.
    #[serde(rename = "$text", default)]
    pub content: String,
}

impl Resources {
    /// The policy XML (the `policy` resource of the `policy` set).
    pub fn policy_xml(&self) -> Option<&str> {
        self.sets
            .iter()
            .filter(|set| set.tag == "policy")
            .flat_map(|set| &set.resources)
            .find(|resource| resource.kind == "policy")
            .map(|resource| resource.content.as_str())
    }

    /// Replaces (or adds) the policy XML.
    pub fn set_policy_xml(&mut self, xml: &str) {
        let position = self.sets.iter().position(|set| set.tag == "policy");
        let set = match position {
            Some(index) => &mut self.sets[index],
            None => {
                self.sets.push(ResourceSet {
                    tag: "policy".to_owned(),
                    ..ResourceSet::default()
                });
                let last = self.sets.len() - 1;
                &mut self.sets[last]
            }
        };
        match set.resources.iter_mut().find(|r| r.kind == "policy") {
            Some(resource) => resource.content = xml.to_owned(),
            None => set.resources.push(ResourceDocument {
                kind: "policy".to_owned(),
                content: xml.to_owned(),
                ..ResourceDocument::default()
            }),
        }
    }
}

impl Service {
    /// The resolution path (`l7:HttpMapping/l7:UrlPattern`), when it has one.
    pub fn resolution_path(&self) -> Option<&str> {
        self.detail.mappings.http.as_ref()?.url_pattern.as_deref()
    }

    /// The active policy revision (`policyRevision` property).
    pub fn policy_revision(&self) -> Option<i64> {
        self.detail
            .properties
            .as_ref()?
            .get("policyRevision")
            .and_then(PropertyValue::as_i64)
    }

    /// The policy XML.
    pub fn policy_xml(&self) -> Option<&str> {
        self.resources.as_ref()?.policy_xml()
    }

    /// Replaces the policy XML.
    pub fn set_policy_xml(&mut self, xml: &str) {
        self.resources
            .get_or_insert_with(Resources::default)
            .set_policy_xml(xml);
    }
}

impl RestmanEntity for Service {
    const COLLECTION: &'static str = "services";
    const ELEMENT: &'static str = "Service";
    const TYPE: &'static str = "SERVICE";
    const NOUN: &'static str = "service";

    fn name(&self) -> Option<&str> {
        Some(&self.detail.name)
    }

    fn version(&self) -> Option<u64> {
        self.version
    }
}

/// `l7:Policy`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Policy {
    /// The guid (stable across gateways).
    #[serde(rename = "@guid", default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    /// The goid.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The optimistic-lock counter.
    #[serde(rename = "@version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `l7:PolicyDetail`.
    #[serde(rename(serialize = "l7:PolicyDetail", deserialize = "PolicyDetail"))]
    pub detail: PolicyDetail,
    /// `l7:Resources`: the policy XML.
    #[serde(
        rename(serialize = "l7:Resources", deserialize = "Resources"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resources: Option<Resources>,
}

/// `l7:PolicyDetail`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PolicyDetail {
    /// The folder's goid.
    #[serde(rename = "@folderId", default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<String>,
    /// The guid.
    #[serde(rename = "@guid", default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    /// The goid.
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The optimistic-lock counter.
    #[serde(rename = "@version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `l7:Name`.
    #[serde(rename(serialize = "l7:Name", deserialize = "Name"))]
    pub name: String,
    /// `l7:PolicyType`: see [`PolicyType`].
    #[serde(rename(serialize = "l7:PolicyType", deserialize = "PolicyType"))]
    pub policy_type: String,
    /// `l7:Properties`: `revision`, `soap`, `tag`, `subtag`.
    #[serde(
        rename(serialize = "l7:Properties", deserialize = "Properties"),
        default,
        skip_serializing_if = "no_properties"
    )]
    pub properties: Option<Properties>,
}

/// The `l7:PolicyType` values the actions name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    /// `Include`: a policy fragment.
    Include,
    /// `Internal`.
    Internal,
    /// `Global`.
    Global,
}

impl PolicyType {
    /// The value as restman writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::Include => "Include",
            PolicyType::Internal => "Internal",
            PolicyType::Global => "Global",
        }
    }
}

impl Policy {
    /// The active policy revision (`revision` property).
    pub fn revision(&self) -> Option<i64> {
        self.detail
            .properties
            .as_ref()?
            .get("revision")
            .and_then(PropertyValue::as_i64)
    }

    /// The policy XML.
    pub fn policy_xml(&self) -> Option<&str> {
        self.resources.as_ref()?.policy_xml()
    }

    /// Replaces the policy XML.
    pub fn set_policy_xml(&mut self, xml: &str) {
        self.resources
            .get_or_insert_with(Resources::default)
            .set_policy_xml(xml);
    }
}

impl RestmanEntity for Policy {
    const COLLECTION: &'static str = "policies";
    const ELEMENT: &'static str = "Policy";
    const TYPE: &'static str = "POLICY";
    const NOUN: &'static str = "policy";

    fn name(&self) -> Option<&str> {
        Some(&self.detail.name)
    }

    fn version(&self) -> Option<u64> {
        self.version
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::layer7::restman::xml::{from_document, to_document};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// The service of apim-charts' `service-foo.bundle` (section 1.3).
    pub(crate) const SERVICE: &str = r#"<l7:Service xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management" id="610e24359b89658ee77ba06dc24673d7" version="2">
    <l7:ServiceDetail folderId="0000000000000000ffffffffffffec76" id="610e24359b89658ee77ba06dc24673d7" version="2">
        <l7:Name>foo API</l7:Name>
        <l7:Enabled>true</l7:Enabled>
        <l7:ServiceMappings>
            <l7:HttpMapping>
                <l7:UrlPattern>/foo</l7:UrlPattern>
                <l7:Verbs>
                    <l7:Verb>GET</l7:Verb>
                    <l7:Verb>POST</l7:Verb>
                </l7:Verbs>
            </l7:HttpMapping>
        </l7:ServiceMappings>
        <l7:Properties>
            <l7:Property key="hasRouting"><l7:BooleanValue>true</l7:BooleanValue></l7:Property>
            <l7:Property key="policyRevision"><l7:LongValue>2</l7:LongValue></l7:Property>
            <l7:Property key="soap"><l7:BooleanValue>false</l7:BooleanValue></l7:Property>
        </l7:Properties>
    </l7:ServiceDetail>
    <l7:Resources>
        <l7:ResourceSet tag="policy">
            <l7:Resource type="policy" version="1">&lt;?xml version=&quot;1.0&quot; encoding=&quot;UTF-8&quot;?&gt;
&lt;wsp:Policy xmlns:L7p=&quot;http://www.layer7tech.com/ws/policy&quot; xmlns:wsp=&quot;http://schemas.xmlsoap.org/ws/2002/12/policy&quot;&gt;
&lt;wsp:All wsp:Usage=&quot;Required&quot;&gt;
&lt;L7p:HardcodedResponse&gt;
    &lt;L7p:ResponseContentType stringValue=&quot;application/json; charset=UTF-8&quot;/&gt;
&lt;/L7p:HardcodedResponse&gt;
&lt;/wsp:All&gt;
&lt;/wsp:Policy&gt;
</l7:Resource>
        </l7:ResourceSet>
    </l7:Resources>
</l7:Service>"#;

    #[test]
    fn reads_the_reference_service() -> TestResult {
        let service: Service = from_document(SERVICE)?;
        assert_eq!(service.detail.name, "foo API");
        assert!(service.detail.enabled);
        assert_eq!(service.resolution_path(), Some("/foo"));
        assert_eq!(
            service
                .detail
                .mappings
                .http
                .as_ref()
                .map(|h| h.verbs.verbs.clone()),
            Some(vec!["GET".to_owned(), "POST".to_owned()])
        );
        assert_eq!(service.policy_revision(), Some(2));
        assert_eq!(
            service.detail.folder_id.as_deref(),
            Some("0000000000000000ffffffffffffec76")
        );
        let policy = service.policy_xml().ok_or("no policy")?;
        assert!(policy.starts_with("<?xml version=\"1.0\""), "{policy}");
        assert!(policy.contains("<L7p:HardcodedResponse>"), "{policy}");
        Ok(())
    }

    #[test]
    fn writes_a_service_that_reads_back_the_same() -> TestResult {
        let mut service: Service = from_document(SERVICE)?;
        service.detail.enabled = false;
        service.set_policy_xml("<wsp:Policy><wsp:All/></wsp:Policy>");
        let xml = to_document(Service::ELEMENT, &service)?;
        assert!(xml.starts_with("<l7:Service xmlns:l7=\"http://ns.l7tech.com/2010/04/gateway-management\" id=\"610e24359b89658ee77ba06dc24673d7\" version=\"2\"><l7:ServiceDetail folderId="), "{xml}");
        assert!(
            xml.contains("&lt;wsp:Policy&gt;&lt;wsp:All/&gt;&lt;/wsp:Policy&gt;"),
            "{xml}"
        );
        let back: Service = from_document(&xml)?;
        assert_eq!(back, service);
        assert!(!back.detail.enabled);
        Ok(())
    }

    #[test]
    fn reads_a_policy_fragment() -> TestResult {
        let policy: Policy = from_document(
            r#"<l7:Policy xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management" guid="9ba7d1c5-37e3-4f57-b1b5-a7c0c0ee3a37" id="c3d0c4b2a1f04e3d9c8b7a6f5e4d3c2b" version="5">
                <l7:PolicyDetail folderId="0000000000000000ffffffffffffec76" guid="9ba7d1c5-37e3-4f57-b1b5-a7c0c0ee3a37" id="c3d0c4b2a1f04e3d9c8b7a6f5e4d3c2b" version="5">
                    <l7:Name>auth-fragment</l7:Name>
                    <l7:PolicyType>Include</l7:PolicyType>
                    <l7:Properties>
                        <l7:Property key="revision"><l7:LongValue>4</l7:LongValue></l7:Property>
                        <l7:Property key="soap"><l7:BooleanValue>false</l7:BooleanValue></l7:Property>
                    </l7:Properties>
                </l7:PolicyDetail>
                <l7:Resources><l7:ResourceSet tag="policy"><l7:Resource type="policy">&lt;wsp:Policy/&gt;</l7:Resource></l7:ResourceSet></l7:Resources>
            </l7:Policy>"#,
        )?;
        assert_eq!(policy.detail.policy_type, PolicyType::Include.as_str());
        assert_eq!(policy.revision(), Some(4));
        assert_eq!(policy.policy_xml(), Some("<wsp:Policy/>"));
        assert_eq!(policy.guid, policy.detail.guid);
        Ok(())
    }
}
