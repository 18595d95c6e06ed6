//! Tests of the Graphman bundles.

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A bundle in the section 2.6 shape.
const BUNDLE: &str = r#"{
  "clusterProperties": [
    {"goid": "a1", "name": "io.httpsHostVerify", "value": "true", "checksum": "c1"},
    {"goid": "a2", "name": "orders.backend", "value": "https://orders:8443", "checksum": "c2"}
  ],
  "services": [
    {"goid": "s1", "name": "orders", "resolutionPath": "/orders", "serviceType": "WEB_API",
     "enabled": true, "methodsAllowed": ["GET", "POST"], "checksum": "c3",
     "policy": {"xml": "<wsp:Policy/>"}}
  ],
  "properties": {"meta": {"exportedBy": "test"}}
}"#;

fn mapping(kind: &str, source: Option<&str>, action: MappingAction) -> Layer7Mapping {
    Layer7Mapping {
        kind: kind.to_owned(),
        source: source.map(str::to_owned),
        action,
        fail_on_new: false,
        fail_on_existing: false,
        map_by: None,
        map_to: None,
    }
}

#[test]
fn reads_sections_and_keeps_properties_apart() -> TestResult {
    let bundle = GraphmanBundle::parse(BUNDLE)?;
    assert_eq!(bundle.len(), 3);
    let sections: Vec<&str> = bundle.entity_sections().map(|(name, _)| name).collect();
    assert_eq!(sections, ["clusterProperties", "services"]);
    assert!(GraphmanBundle::parse("[1]").is_err());
    assert!(GraphmanBundle::parse("{").is_err());
    Ok(())
}

#[test]
fn mappings_become_properties_with_identity_sources() -> TestResult {
    let mut bundle = GraphmanBundle::parse(BUNDLE)?;
    let mut instruction = mapping("SERVICE", Some("/orders"), MappingAction::NewOrExisting);
    instruction.fail_on_new = true;
    bundle.apply_mappings(
        MappingAction::NewOrUpdate,
        &[
            instruction,
            mapping("clusterProperties", None, MappingAction::Ignore),
        ],
    )?;
    let properties = bundle.sections.get(PROPERTIES).ok_or("no properties")?;
    assert_eq!(properties["meta"]["exportedBy"], "test");
    assert_eq!(properties["defaultAction"], "NEW_OR_UPDATE");
    assert_eq!(
        properties["mappings"]["services"],
        json!([{"action": "NEW_OR_EXISTING", "source": {"resolutionPath": "/orders", "serviceType": "WEB_API"}, "failOnNew": true}])
    );
    assert_eq!(
        properties["mappings"]["clusterProperties"],
        json!([{"action": "IGNORE", "default": true}])
    );
    Ok(())
}

#[test]
fn mappings_that_match_nothing_are_refused() -> TestResult {
    let mut bundle = GraphmanBundle::parse(BUNDLE)?;
    let unknown = bundle.apply_mappings(
        MappingAction::NewOrUpdate,
        &[mapping("services", Some("/nope"), MappingAction::Ignore)],
    );
    assert!(
        matches!(&unknown, Err(Layer7Error::Mapping { reason, .. }) if reason.contains("matches no entity")),
        "{unknown:?}"
    );
    let mut restman_only = mapping("services", None, MappingAction::Ignore);
    restman_only.map_by = Some("name".to_owned());
    let refused = bundle.apply_mappings(MappingAction::NewOrUpdate, &[restman_only]);
    assert!(matches!(refused, Err(Layer7Error::Mapping { .. })));
    Ok(())
}

#[test]
fn diff_compares_checksums_by_identity() -> TestResult {
    let before = GraphmanBundle::parse(BUNDLE)?;
    let mut after = before.clone();
    if let Some(Value::Array(properties)) = after.sections.get_mut("clusterProperties") {
        properties[0]["value"] = json!("false");
        properties[0]["checksum"] = json!("c1-changed");
        properties[0]["goid"] = json!("other-goid");
        properties.remove(1);
    }
    after.push(
        "policies",
        json!({"goid": "p1", "name": "auth", "checksum": "c9"}),
    );
    let difference = diff(&before, &after);
    let names = |keys: &[EntityKey]| {
        keys.iter()
            .map(|k| format!("{}:{}", k.section, k.identity))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&difference.added), ["policies:auth"]);
    assert_eq!(
        names(&difference.removed),
        ["clusterProperties:orders.backend"]
    );
    assert_eq!(
        names(&difference.changed),
        ["clusterProperties:io.httpsHostVerify"]
    );
    assert!(diff(&before, &before).is_empty());
    Ok(())
}
