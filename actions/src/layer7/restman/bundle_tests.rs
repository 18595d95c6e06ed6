//! Tests of restman bundles: reading, writing, mappings and comparison.

use super::*;
use crate::layer7::restman::compare::diff;
use crate::layer7::restman::mapping::{FAIL_ON_EXISTING, MAP_BY};
use crate::layer7::restman::properties::PropertyValue;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A bundle of a folder dependency, a cluster property and a service (after
/// apim-charts' `service-foo.bundle`), with an element this client does not model.
pub(crate) const BUNDLE: &str = r#"<l7:Bundle xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management">
    <l7:References>
        <l7:Item>
            <l7:Name>orders.backend</l7:Name>
            <l7:Id>8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7</l7:Id>
            <l7:Type>CLUSTER_PROPERTY</l7:Type>
            <l7:TimeStamp>2020-08-17T23:28:23.524Z</l7:TimeStamp>
            <l7:Resource>
                <l7:ClusterProperty id="8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7" version="3">
                    <l7:Name>orders.backend</l7:Name>
                    <l7:Value>https://orders:8443</l7:Value>
                </l7:ClusterProperty>
            </l7:Resource>
        </l7:Item>
        <l7:Item>
            <l7:Name>foo API</l7:Name>
            <l7:Id>610e24359b89658ee77ba06dc24673d7</l7:Id>
            <l7:Type>SERVICE</l7:Type>
            <l7:TimeStamp>2020-08-17T23:28:23.524Z</l7:TimeStamp>
            <l7:Resource>
                <l7:Service id="610e24359b89658ee77ba06dc24673d7" version="2">
                    <l7:ServiceDetail folderId="0000000000000000ffffffffffffec76" id="610e24359b89658ee77ba06dc24673d7" version="2">
                        <l7:Name>foo API</l7:Name>
                        <l7:Enabled>true</l7:Enabled>
                        <l7:ServiceMappings>
                            <l7:HttpMapping>
                                <l7:UrlPattern>/foo</l7:UrlPattern>
                                <l7:Verbs><l7:Verb>GET</l7:Verb></l7:Verbs>
                            </l7:HttpMapping>
                        </l7:ServiceMappings>
                        <l7:UnmodelledThing kind="kept">as written</l7:UnmodelledThing>
                    </l7:ServiceDetail>
                    <l7:Resources>
                        <l7:ResourceSet tag="policy">
                            <l7:Resource type="policy" version="1">&lt;wsp:Policy&gt;
&lt;L7p:HardcodedResponse/&gt;
&lt;/wsp:Policy&gt;</l7:Resource>
                        </l7:ResourceSet>
                    </l7:Resources>
                </l7:Service>
            </l7:Resource>
        </l7:Item>
    </l7:References>
    <l7:Mappings>
        <l7:Mapping action="NewOrExisting" srcId="0000000000000000ffffffffffffec76" srcUri="https://uat-gw:9443/restman/1.0/folders/0000000000000000ffffffffffffec76" type="FOLDER">
            <l7:Properties>
                <l7:Property key="FailOnNew">
                    <l7:BooleanValue>true</l7:BooleanValue>
                </l7:Property>
            </l7:Properties>
        </l7:Mapping>
        <l7:Mapping action="NewOrExisting" srcId="8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7" srcUri="https://uat-gw:9443/restman/1.0/clusterProperties/8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7" type="CLUSTER_PROPERTY"/>
        <l7:Mapping action="NewOrExisting" srcId="610e24359b89658ee77ba06dc24673d7" srcUri="https://uat-gw:9443/restman/1.0/services/610e24359b89658ee77ba06dc24673d7" type="SERVICE"/>
    </l7:Mappings>
</l7:Bundle>"#;

/// The export answer: the bundle inside `l7:Item/l7:Resource`.
fn export_answer() -> String {
    let inner = BUNDLE.replace(
        " xmlns:l7=\"http://ns.l7tech.com/2010/04/gateway-management\"",
        "",
    );
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<l7:Item xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management" xmlns:xs="http://www.w3.org/2001/XMLSchema">
    <l7:Name>Bundle</l7:Name>
    <l7:Type>BUNDLE</l7:Type>
    <l7:TimeStamp>2020-08-17T23:28:23.524Z</l7:TimeStamp>
    <l7:Link rel="self" uri="https://uat-gw:9443/restman/1.0/bundle?service=610e24359b89658ee77ba06dc24673d7"/>
    <l7:Resource>
        {inner}
    </l7:Resource>
</l7:Item>"#
    )
}

#[test]
fn reads_items_headers_and_mappings() -> TestResult {
    let bundle = Bundle::parse(BUNDLE)?;
    let headers: Vec<String> = bundle.items.iter().map(|i| i.header.to_string()).collect();
    assert_eq!(
        headers,
        [
            "CLUSTER_PROPERTY `orders.backend` (8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7)",
            "SERVICE `foo API` (610e24359b89658ee77ba06dc24673d7)"
        ]
    );
    assert_eq!(bundle.mappings.len(), 3);
    assert!(bundle.mappings[0].flag("FailOnNew"));
    assert_eq!(bundle.mappings[2].kind, "SERVICE");
    assert!(bundle.items[1].xml.starts_with("<l7:Item>"));
    assert!(bundle.items[1].xml.ends_with("</l7:Item>"));
    assert!(
        bundle.items[1]
            .xml
            .contains("<l7:UnmodelledThing kind=\"kept\">as written</l7:UnmodelledThing>")
    );
    Ok(())
}

#[test]
fn strips_the_export_envelope_and_keeps_other_namespaces() -> TestResult {
    let bundle = Bundle::parse(&export_answer())?;
    assert_eq!(bundle.items.len(), 2);
    assert_eq!(
        bundle.namespaces,
        [(
            "xmlns:xs".to_owned(),
            "http://www.w3.org/2001/XMLSchema".to_owned()
        )]
    );
    let written = bundle.to_xml()?;
    assert!(written.starts_with("<l7:Bundle xmlns:l7=\"http://ns.l7tech.com/2010/04/gateway-management\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">"), "{written}");
    assert_eq!(Bundle::parse(&written)?, bundle);
    Ok(())
}

#[test]
fn writing_keeps_every_item_as_read() -> TestResult {
    let bundle = Bundle::parse(BUNDLE)?;
    let written = bundle.to_xml()?;
    let again = Bundle::parse(&written)?;
    assert_eq!(again, bundle);
    assert!(written.contains("<l7:UnmodelledThing kind=\"kept\">as written</l7:UnmodelledThing>"));
    assert!(written.contains(r#"<l7:Mapping action="NewOrExisting" srcId="0000000000000000ffffffffffffec76" srcUri="https://uat-gw:9443/restman/1.0/folders/0000000000000000ffffffffffffec76" type="FOLDER"><l7:Properties><l7:Property key="FailOnNew"><l7:BooleanValue>true</l7:BooleanValue></l7:Property></l7:Properties></l7:Mapping>"#), "{written}");
    Ok(())
}

#[test]
fn refuses_documents_that_are_not_bundles() {
    for (document, expected) in [
        (
            "<l7:List><l7:Name>x</l7:Name></l7:List>",
            "holds no l7:Bundle",
        ),
        ("<l7:Bundle><l7:References><l7:Item>", "not well-formed XML"),
        (
            "<l7:Bundle><l7:References><l7:Item><l7:Name>a</l7:Name></l7:Item></l7:References></l7:Bundle>",
            "reference item 1 has no l7:Type or no l7:Id",
        ),
        ("not xml at all", "holds no l7:Bundle"),
    ] {
        let error = Bundle::parse(document).map(|_| ()).map_err(|e| e.reason);
        assert!(
            matches!(&error, Err(reason) if reason.contains(expected)),
            "{document}: {error:?}"
        );
    }
}

#[test]
fn default_action_spares_required_dependencies_and_overrides_apply_in_order() -> TestResult {
    let mut bundle = Bundle::parse(BUNDLE)?;
    bundle.apply_mappings(
        MappingAction::NewOrUpdate,
        &[
            Layer7Mapping {
                kind: "clusterProperties".to_owned(),
                source: Some("orders.backend".to_owned()),
                action: MappingAction::NewOrExisting,
                fail_on_new: false,
                fail_on_existing: true,
                map_by: Some("name".to_owned()),
                map_to: None,
            },
            Layer7Mapping {
                kind: "SERVICE".to_owned(),
                source: Some("610e24359b89658ee77ba06dc24673d7".to_owned()),
                action: MappingAction::Ignore,
                fail_on_new: false,
                fail_on_existing: false,
                map_by: None,
                map_to: None,
            },
        ],
    )?;
    let actions: Vec<RestmanAction> = bundle.mappings.iter().map(|m| m.action).collect();
    assert_eq!(
        actions,
        [
            RestmanAction::NewOrExisting,
            RestmanAction::NewOrExisting,
            RestmanAction::Ignore
        ]
    );
    assert!(bundle.mappings[1].flag(FAIL_ON_EXISTING));
    assert_eq!(
        bundle.mappings[1].property(MAP_BY),
        Some(&PropertyValue::String("name".to_owned()))
    );
    let written = bundle.to_xml()?;
    assert!(written.contains(r#"<l7:Property key="FailOnExisting"><l7:BooleanValue>true</l7:BooleanValue></l7:Property><l7:Property key="MapBy"><l7:StringValue>name</l7:StringValue></l7:Property>"#), "{written}");
    Ok(())
}

#[test]
fn an_override_that_matches_nothing_is_refused() -> TestResult {
    let mut bundle = Bundle::parse(BUNDLE)?;
    let outcome = bundle.apply_mappings(
        MappingAction::NewOrUpdate,
        &[Layer7Mapping {
            kind: "SERVICE".to_owned(),
            source: Some("no such service".to_owned()),
            action: MappingAction::Delete,
            fail_on_new: false,
            fail_on_existing: false,
            map_by: None,
            map_to: None,
        }],
    );
    let message = outcome.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(
        message
            .starts_with("mapping for SERVICE `no such service`: matches no mapping in the bundle"),
        "{message}"
    );
    Ok(())
}

#[test]
fn finds_the_mappings_of_an_import_answer() -> TestResult {
    let answer = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<l7:Item xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management">
    <l7:Name>Bundle mappings</l7:Name>
    <l7:Type>BUNDLE MAPPINGS</l7:Type>
    <l7:TimeStamp>2020-08-17T23:28:23.524Z</l7:TimeStamp>
    <l7:Link rel="self" uri="https://gw:8443/restman/1.0/bundle"/>
    <l7:Resource>
        <l7:Mappings>
            <l7:Mapping action="NewOrExisting" actionTaken="UsedExisting" srcId="0000000000000000ffffffffffffec76" srcUri="https://uat-gw:9443/restman/1.0/folders/0000000000000000ffffffffffffec76" targetId="0000000000000000ffffffffffffec76" targetUri="https://gw:8443/restman/1.0/folders/0000000000000000ffffffffffffec76" type="FOLDER">
                <l7:Properties><l7:Property key="FailOnNew"><l7:BooleanValue>true</l7:BooleanValue></l7:Property></l7:Properties>
            </l7:Mapping>
            <l7:Mapping action="NewOrUpdate" actionTaken="CreatedNew" srcId="610e24359b89658ee77ba06dc24673d7" targetId="610e24359b89658ee77ba06dc24673d7" type="SERVICE"/>
        </l7:Mappings>
    </l7:Resource>
</l7:Item>"#;
    let bundle = Bundle::parse(BUNDLE)?;
    let results: Vec<MappingResult> = find_mappings(answer)?
        .iter()
        .map(|m| MappingResult::from_mapping(m, bundle.name_of(&m.kind, &m.src_id)))
        .collect();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].action_taken, Some(ActionTaken::UsedExisting));
    assert_eq!(results[1].action_taken, Some(ActionTaken::CreatedNew));
    assert_eq!(results[1].name.as_deref(), Some("foo API"));
    assert_eq!(
        results[1].target_id.as_deref(),
        Some("610e24359b89658ee77ba06dc24673d7")
    );
    assert!(results.iter().all(|r| r.failure().is_none()));
    Ok(())
}

/// Two exports of an unchanged gateway: other times, versions and host.
fn re_exported() -> String {
    BUNDLE
        .replace("2020-08-17T23:28:23.524Z", "2026-01-02T03:04:05.000Z")
        .replace("version=\"3\"", "version=\"9\"")
        .replace("https://uat-gw:9443", "https://uat-gw-2:8443")
}

#[test]
fn normalised_exports_of_an_unchanged_gateway_are_equal() -> TestResult {
    let first = Bundle::parse(BUNDLE)?.normalised()?;
    let second = Bundle::parse(&re_exported())?.normalised()?;
    assert_eq!(first.to_xml()?, second.to_xml()?);
    let text = first.to_xml()?;
    assert!(
        !text.contains("TimeStamp") && !text.contains("version=") && !text.contains("uat-gw"),
        "{text}"
    );
    assert!(
        text.contains("srcUri=\"/restman/1.0/services/610e24359b89658ee77ba06dc24673d7\""),
        "{text}"
    );
    assert!(diff(&Bundle::parse(BUNDLE)?, &Bundle::parse(&re_exported())?)?.is_empty());
    Ok(())
}

/// A bundle of one service at policy revision `revision` whose `soap` property is `soap`.
fn service_at_revision(revision: u32, soap: bool) -> String {
    format!(
        r#"<l7:Bundle xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:References><l7:Item><l7:Name>s</l7:Name><l7:Id>610e24359b89658ee77ba06dc24673d7</l7:Id><l7:Type>SERVICE</l7:Type><l7:Resource><l7:Service id="610e24359b89658ee77ba06dc24673d7"><l7:ServiceDetail><l7:Name>s</l7:Name><l7:Properties><l7:Property key="policyRevision"><l7:LongValue>{revision}</l7:LongValue></l7:Property><l7:Property key="soap"><l7:BooleanValue>{soap}</l7:BooleanValue></l7:Property></l7:Properties></l7:ServiceDetail></l7:Service></l7:Resource></l7:Item></l7:References><l7:Mappings/></l7:Bundle>"#
    )
}

#[test]
fn revision_counters_do_not_count_as_configuration() -> TestResult {
    let first = Bundle::parse(&service_at_revision(2, false))?;
    let rolled_back = Bundle::parse(&service_at_revision(5, false))?;
    assert!(diff(&first, &rolled_back)?.is_empty());
    let text = first.normalised()?.to_xml()?;
    assert!(
        !text.contains("policyRevision") && text.contains("soap"),
        "{text}"
    );
    let changed = Bundle::parse(&service_at_revision(2, true))?;
    assert_eq!(diff(&first, &changed)?.changed.len(), 1);
    Ok(())
}

#[test]
fn diff_names_added_removed_and_changed_entities_with_a_line_diff() -> TestResult {
    let before = Bundle::parse(BUNDLE)?;
    let mut after = Bundle::parse(&re_exported().replace(
        "<l7:Value>https://orders:8443</l7:Value>",
        "<l7:Value>https://orders-v2:8443</l7:Value>",
    ))?;
    after.items.retain(|item| item.header.kind != "SERVICE");
    let mut added = before.items[0].clone();
    added.header.id = "aaaa".to_owned();
    added.header.name = "new.property".to_owned();
    after.items.push(added);
    let difference = diff(&before, &after)?;
    assert_eq!(
        difference.summary(),
        [
            "+ CLUSTER_PROPERTY `new.property` (aaaa)",
            "- SERVICE `foo API` (610e24359b89658ee77ba06dc24673d7)",
            "~ CLUSTER_PROPERTY `orders.backend` (8f4d6c2a9e1b40f7a3c5d2e1f0a9b8c7)"
        ]
    );
    let change = &difference.changed[0].diff;
    assert!(
        change.contains("-      <l7:Value>https://orders:8443</l7:Value>"),
        "{change}"
    );
    assert!(
        change.contains("+      <l7:Value>https://orders-v2:8443</l7:Value>"),
        "{change}"
    );
    Ok(())
}

#[test]
fn export_and_import_options_become_query_parameters() {
    let query = ExportQuery {
        default_action: Some(RestmanAction::NewOrUpdate),
        include_dependencies: Some(true),
        encrypt_secrets: true,
        passphrase: Some("7layer".to_owned()),
        ..ExportQuery::default()
    }
    .service("s1")
    .folder("f1");
    let pairs: Vec<String> = query
        .parameters()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(
        pairs,
        [
            "service=s1",
            "folder=f1",
            "includeDependencies=true",
            "defaultAction=NewOrUpdate",
            "encryptSecrets=true"
        ]
    );
    assert!(!format!("{query:?}").contains("7layer"));
    let everything: Vec<(String, String)> = ExportQuery::everything().parameters();
    assert_eq!(everything, [("all".to_owned(), "true".to_owned())]);
    let options = ImportOptions {
        test: true,
        activate: Some(false),
        version_comment: Some("CRQ-1".to_owned()),
        passphrase: Some("p".to_owned()),
    };
    let pairs: Vec<String> = options
        .parameters()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(
        pairs,
        ["test=true", "activate=false", "versionComment=CRQ-1"]
    );
}
