//! Bundles over HTTP: export with dependencies, round trips, every mapping action and
//! property, 409 failures naming the mapping, test mode and rollback.

use runsheet_twin::layer7::restman::xml::Element;

use crate::support::{
    Gateway, ROOT, TestResult, cluster_property, folder, hardcoded_policy, resource, service,
};

/// The `l7:Bundle` of an export answer.
fn bundle_of(answer: &Element) -> Result<&Element, Box<dyn std::error::Error>> {
    Ok(resource(answer).ok_or("no bundle in the export")?)
}

/// The mappings of an import answer, as (type, action taken or error type, target id).
fn results(answer: &Element) -> Vec<(String, String, String)> {
    resource(answer)
        .into_iter()
        .flat_map(|mappings| mappings.find_all("Mapping"))
        .map(|mapping| {
            let attribute = |name: &str| mapping.attribute(name).unwrap_or_default().to_owned();
            let taken = mapping
                .attribute("actionTaken")
                .or(mapping.attribute("errorType"))
                .unwrap_or_default()
                .to_owned();
            (attribute("type"), taken, attribute("targetId"))
        })
        .collect()
}

/// A bundle document of `references` (Item XML) and `mappings` (Mapping XML).
fn bundle(references: &str, mappings: &str) -> String {
    format!(
        r#"<l7:Bundle xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:References>{references}</l7:References><l7:Mappings>{mappings}</l7:Mappings></l7:Bundle>"#
    )
}

/// A reference item holding a cluster property.
fn property_item(id: &str, name: &str, value: &str) -> String {
    format!(
        r#"<l7:Item><l7:Name>{name}</l7:Name><l7:Id>{id}</l7:Id><l7:Type>CLUSTER_PROPERTY</l7:Type><l7:Resource><l7:ClusterProperty id="{id}"><l7:Name>{name}</l7:Name><l7:Value>{value}</l7:Value></l7:ClusterProperty></l7:Resource></l7:Item>"#
    )
}

/// A mapping of a cluster property with properties (`key`, boolean or string value).
fn property_mapping(action: &str, id: &str, properties: &[(&str, &str)]) -> String {
    let properties: String = properties
        .iter()
        .map(|(key, value)| {
            let element = if matches!(*value, "true" | "false") {
                "BooleanValue"
            } else {
                "StringValue"
            };
            format!(
                r#"<l7:Property key="{key}"><l7:{element}>{value}</l7:{element}></l7:Property>"#
            )
        })
        .collect();
    format!(
        r#"<l7:Mapping action="{action}" srcId="{id}" type="CLUSTER_PROPERTY"><l7:Properties>{properties}</l7:Properties></l7:Mapping>"#
    )
}

/// Creates a folder with a service, a fragment it includes and a cluster property.
async fn populate(gateway: &Gateway) -> Result<(String, String), Box<dyn std::error::Error>> {
    let apis = gateway.create("folders", folder("apis", ROOT)).await?;
    let fragment = format!(
        r#"<l7:Policy xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management" guid="6b7c57a4-1111-4d4e-9a1b-000000000001"><l7:PolicyDetail folderId="{apis}"><l7:Name>greeting</l7:Name><l7:PolicyType>Include</l7:PolicyType></l7:PolicyDetail><l7:Resources><l7:ResourceSet tag="policy"><l7:Resource type="policy">{}</l7:Resource></l7:ResourceSet></l7:Resources></l7:Policy>"#,
        crate::support::escape(&hardcoded_policy(200, "hello"))
    );
    gateway.create("policies", fragment).await?;
    let including = r#"<wsp:Policy xmlns:L7p="http://www.layer7tech.com/ws/policy" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"><wsp:All wsp:Usage="Required"><L7p:Include><L7p:PolicyGuid stringValue="6b7c57a4-1111-4d4e-9a1b-000000000001"/></L7p:Include></wsp:All></wsp:Policy>"#;
    let service_id = gateway
        .create(
            "services",
            service("hello", "/hello", including, Some(&apis)),
        )
        .await?;
    gateway
        .create("clusterProperties", cluster_property("greeting.lang", "en"))
        .await?;
    Ok((apis, service_id))
}

#[tokio::test]
async fn an_export_carries_dependencies_in_order_and_round_trips() -> TestResult {
    let source = Gateway::start().await?;
    let (apis, service_id) = populate(&source).await?;
    let export = source
        .get(&format!(
            "bundle?service={service_id}&defaultAction=NewOrUpdate"
        ))
        .await?;
    assert_eq!(export.status, 200, "{}", export.text);
    assert_eq!(export.xml.child_text("Type"), Some("BUNDLE"));
    let bundle = bundle_of(&export.xml)?;
    let types: Vec<&str> = bundle
        .find("References")
        .into_iter()
        .flat_map(|references| references.find_all("Item"))
        .filter_map(|item| item.child_text("Type"))
        .collect();
    assert_eq!(
        types,
        ["FOLDER", "FOLDER", "POLICY", "SERVICE"],
        "{}",
        export.text
    );
    let mappings: Vec<&Element> = bundle
        .find("Mappings")
        .into_iter()
        .flat_map(|mappings| mappings.find_all("Mapping"))
        .collect();
    assert_eq!(mappings[0].attribute("srcId"), Some(ROOT));
    assert!(
        mappings[0].find("Properties").is_some(),
        "the root folder is FailOnNew"
    );
    assert_eq!(mappings[1].attribute("srcId"), Some(apis.as_str()));
    assert_eq!(mappings[3].attribute("action"), Some("NewOrUpdate"));
    assert!(
        mappings[3]
            .attribute("srcUri")
            .is_some_and(|uri| uri.ends_with(&format!("/services/{service_id}")))
    );
    let bundle_text = bundle.to_document();

    // The same gateway: nothing changes, no new revision.
    let before = source.snapshot().await?;
    let writes = source.writes().await?;
    let again = source.put("bundle", bundle_text.clone()).await?;
    assert_eq!(again.status, 200, "{}", again.text);
    let taken: Vec<String> = results(&again.xml).into_iter().map(|r| r.1).collect();
    assert_eq!(taken, ["UpdatedExisting"; 4]);
    assert_eq!(source.snapshot().await?, before);
    assert_eq!(
        source.writes().await?,
        writes,
        "an import that changed nothing is no write"
    );

    // An empty gateway: everything is created with the same ids and serves traffic.
    let target = Gateway::start().await?;
    let imported = target.put("bundle", bundle_text).await?;
    assert_eq!(imported.status, 200, "{}", imported.text);
    let results = results(&imported.xml);
    assert_eq!(results[0].1, "UpdatedExisting", "the root folder exists");
    assert!(
        results[1..].iter().all(|result| result.1 == "CreatedNew"),
        "{results:?}"
    );
    assert_eq!(results[3].2, service_id);
    assert_eq!(
        target.get(&format!("services/{service_id}")).await?.status,
        200
    );
    let hello = target
        .http
        .get(format!("{}/hello", target.twin.url()))
        .send()
        .await?;
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.text().await?, "hello");
    Ok(())
}

#[tokio::test]
async fn a_whole_gateway_export_with_a_passphrase_moves_keys_and_passwords() -> TestResult {
    let source = Gateway::start().await?;
    populate(&source).await?;
    let context = r#"<l7:PrivateKeyCreationContext xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:Dn>CN=moved</l7:Dn></l7:PrivateKeyCreationContext>"#;
    let key = "00000000000000000000000000000002:moved";
    assert_eq!(
        source
            .post(&format!("privateKeys/{key}"), context.to_owned())
            .await?
            .status,
        201
    );
    let password = r#"<l7:StoredPassword xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:Name>db</l7:Name><l7:Password>s3cret!</l7:Password></l7:StoredPassword>"#;
    source.create("passwords", password.to_owned()).await?;
    let passphrase = "N2xheWVy";
    let export = source
        .http
        .get(format!(
            "{}/bundle?all=true&defaultAction=NewOrUpdate",
            source.restman()
        ))
        .basic_auth("admin", Some("password"))
        .header("L7-key-passphrase", passphrase)
        .send()
        .await?;
    let export = crate::support::answer(export).await?;
    assert!(!export.text.contains("s3cret!"), "secrets travel encrypted");
    assert!(export.text.contains("keyData"));
    let bundle = bundle_of(&export.xml)?.to_document();

    let target = Gateway::start().await?;
    let without = target.put("bundle", bundle.clone()).await?;
    assert_eq!(without.status, 409, "no passphrase: {}", without.text);
    let imported = target
        .http
        .put(format!("{}/bundle", target.restman()))
        .basic_auth("admin", Some("password"))
        .header("L7-key-passphrase", passphrase)
        .body(bundle)
        .send()
        .await?;
    let imported = crate::support::answer(imported).await?;
    assert_eq!(imported.status, 200, "{}", imported.text);
    let moved = |snapshot: &serde_json::Value| {
        snapshot["private_keys"]["rows"][key]["entity"]["key_pem"].clone()
    };
    let source_state = source.snapshot().await?;
    let target_state = target.snapshot().await?;
    assert!(moved(&source_state).is_string());
    assert_eq!(moved(&target_state), moved(&source_state));
    let password_of = |snapshot: &serde_json::Value| {
        snapshot["passwords"]["rows"]
            .as_object()
            .and_then(|rows| rows.values().next())
            .map(|row| row["entity"]["password"].clone())
    };
    assert_eq!(
        password_of(&target_state),
        Some(serde_json::json!("s3cret!"))
    );
    Ok(())
}

#[tokio::test]
async fn mapping_actions_and_properties_do_what_restman_says() -> TestResult {
    let gateway = Gateway::start().await?;
    let existing = gateway
        .create("clusterProperties", cluster_property("kept", "old"))
        .await?;
    let fresh = "11111111111111111111111111111111";
    let item = property_item(&existing, "kept", "new");

    // NewOrExisting: existing is used as is; a new one is created at the source id.
    let answer = gateway
        .put(
            "bundle",
            bundle(
                &format!("{item}{}", property_item(fresh, "fresh", "1")),
                &format!(
                    "{}{}",
                    property_mapping("NewOrExisting", &existing, &[]),
                    property_mapping("NewOrExisting", fresh, &[])
                ),
            ),
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let taken = results(&answer.xml);
    assert_eq!(taken[0].1, "UsedExisting");
    assert_eq!(
        taken[1],
        (
            "CLUSTER_PROPERTY".to_owned(),
            "CreatedNew".to_owned(),
            fresh.to_owned()
        )
    );
    assert!(
        gateway
            .get(&format!("clusterProperties/{existing}"))
            .await?
            .text
            .contains(">old<")
    );

    // NewOrUpdate: updated.
    let answer = gateway
        .put(
            "bundle",
            bundle(&item, &property_mapping("NewOrUpdate", &existing, &[])),
        )
        .await?;
    assert_eq!(results(&answer.xml)[0].1, "UpdatedExisting");
    assert!(
        gateway
            .get(&format!("clusterProperties/{existing}"))
            .await?
            .text
            .contains(">new<")
    );

    // FailOnExisting and FailOnNew.
    let answer = gateway
        .put(
            "bundle",
            bundle(
                &item,
                &property_mapping("NewOrExisting", &existing, &[("FailOnExisting", "true")]),
            ),
        )
        .await?;
    assert_eq!(answer.status, 409);
    assert_eq!(results(&answer.xml)[0].1, "TargetExists");
    let ghost = "22222222222222222222222222222222";
    let answer = gateway
        .put(
            "bundle",
            bundle(
                &property_item(ghost, "ghost", "x"),
                &property_mapping("NewOrUpdate", ghost, &[("FailOnNew", "true")]),
            ),
        )
        .await?;
    assert_eq!(answer.status, 409);
    assert_eq!(results(&answer.xml)[0].1, "TargetNotFound");

    // MapBy name with MapTo: the source maps onto the target's own entity.
    let other_id = "33333333333333333333333333333333";
    let answer = gateway
        .put(
            "bundle",
            bundle(
                &property_item(other_id, "kept", "by-name"),
                &property_mapping(
                    "NewOrUpdate",
                    other_id,
                    &[("MapBy", "name"), ("MapTo", "kept")],
                ),
            ),
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(results(&answer.xml)[0].2, existing);
    assert!(
        gateway
            .get(&format!("clusterProperties/{existing}"))
            .await?
            .text
            .contains(">by-name<")
    );

    // AlwaysCreateNew: a new id even though the source id exists (and a new name).
    let answer = gateway
        .put(
            "bundle",
            bundle(
                &property_item(fresh, "fresh.copy", "2"),
                &property_mapping("AlwaysCreateNew", fresh, &[]),
            ),
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let created = &results(&answer.xml)[0];
    assert_eq!(created.1, "CreatedNew");
    assert_ne!(created.2, fresh);

    // Ignore, then Delete (twice: the second finds nothing and ignores it).
    let answer = gateway
        .put(
            "bundle",
            bundle("", &property_mapping("Ignore", fresh, &[])),
        )
        .await?;
    assert_eq!(results(&answer.xml)[0].1, "Ignored");
    let answer = gateway
        .put(
            "bundle",
            bundle("", &property_mapping("Delete", fresh, &[])),
        )
        .await?;
    assert_eq!(results(&answer.xml)[0].1, "Deleted");
    assert_eq!(
        gateway
            .get(&format!("clusterProperties/{fresh}"))
            .await?
            .status,
        404
    );
    let answer = gateway
        .put(
            "bundle",
            bundle("", &property_mapping("Delete", fresh, &[])),
        )
        .await?;
    assert_eq!(results(&answer.xml)[0].1, "Ignored");
    let answer = gateway
        .put(
            "bundle",
            bundle(
                "",
                &property_mapping("Delete", fresh, &[("FailOnNew", "true")]),
            ),
        )
        .await?;
    assert_eq!(answer.status, 409);
    Ok(())
}

#[tokio::test]
async fn a_failing_mapping_is_named_and_rolls_the_whole_bundle_back() -> TestResult {
    let gateway = Gateway::start().await?;
    gateway
        .create("clusterProperties", cluster_property("taken", "1"))
        .await?;
    let first = "44444444444444444444444444444444";
    let second = "55555555555555555555555555555555";
    let writes = gateway.writes().await?;
    let answer = gateway
        .put(
            "bundle",
            bundle(
                &format!(
                    "{}{}",
                    property_item(first, "first", "1"),
                    property_item(second, "taken", "2")
                ),
                &format!(
                    "{}{}",
                    property_mapping("NewOrExisting", first, &[]),
                    property_mapping("AlwaysCreateNew", second, &[])
                ),
            ),
        )
        .await?;
    assert_eq!(answer.status, 409, "{}", answer.text);
    let results = results(&answer.xml);
    assert_eq!(results[0].1, "CreatedNew");
    assert_eq!(results[1].1, "UniqueKeyConflict");
    let failing = resource(&answer.xml)
        .and_then(|mappings| mappings.find_all("Mapping").nth(1))
        .ok_or("no failing mapping")?;
    assert_eq!(failing.attribute("srcId"), Some(second));
    let message = failing
        .find("Properties")
        .and_then(|properties| properties.find("Property"))
        .filter(|property| property.attribute("key") == Some("ErrorMessage"))
        .and_then(|property| property.child_text("StringValue"))
        .ok_or("no ErrorMessage")?;
    assert!(message.contains("(name) must be unique"), "{message}");
    assert_eq!(
        gateway
            .get(&format!("clusterProperties/{first}"))
            .await?
            .status,
        404,
        "the first mapping was rolled back"
    );
    assert_eq!(gateway.writes().await?, writes);
    Ok(())
}

#[tokio::test]
async fn test_mode_resolves_every_mapping_and_changes_nothing() -> TestResult {
    let gateway = Gateway::start().await?;
    let id = "66666666666666666666666666666666";
    let before = gateway.snapshot().await?;
    let writes = gateway.writes().await?;
    let answer = gateway
        .put(
            "bundle?test=true",
            bundle(
                &property_item(id, "planned", "1"),
                &property_mapping("NewOrExisting", id, &[]),
            ),
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(results(&answer.xml)[0].1, "CreatedNew");
    assert_eq!(
        gateway
            .get(&format!("clusterProperties/{id}"))
            .await?
            .status,
        404
    );
    assert_eq!(gateway.snapshot().await?, before);
    assert_eq!(
        gateway.writes().await?,
        writes,
        "a test import is not a write"
    );
    Ok(())
}

#[tokio::test]
async fn bad_bundles_and_exports_are_refused_with_a_reason() -> TestResult {
    let gateway = Gateway::start().await?;
    let unknown_action = gateway
        .put(
            "bundle",
            bundle(
                "",
                r#"<l7:Mapping action="Upsert" srcId="x" type="FOLDER"/>"#,
            ),
        )
        .await?;
    assert_eq!(unknown_action.status, 400);
    assert!(unknown_action.text.contains("Upsert"));
    let not_a_bundle = gateway.put("bundle", cluster_property("a", "b")).await?;
    assert_eq!(not_a_bundle.status, 400);
    let missing = gateway
        .get("bundle?service=77777777777777777777777777777777")
        .await?;
    assert_eq!(missing.status, 404);
    let odd = gateway.get("bundle?colour=red").await?;
    assert_eq!(odd.status, 400);
    Ok(())
}
