//! restman over HTTP: envelopes, CRUD, stale versions, filters, auth, uniqueness,
//! revisions and private keys.

use crate::support::{
    Gateway, ROOT, TestResult, cluster_property, folder, hardcoded_policy, resource, service,
};

#[tokio::test]
async fn items_lists_and_errors_have_restmans_envelopes() -> TestResult {
    let gateway = Gateway::start().await?;
    let root = gateway.get(&format!("folders/{ROOT}")).await?;
    assert_eq!(root.status, 200, "{}", root.text);
    assert!(
        root.headers["content-type"]
            .to_str()?
            .starts_with("application/xml")
    );
    assert!(
        root.text
            .contains("xmlns:l7=\"http://ns.l7tech.com/2010/04/gateway-management\"")
    );
    let item = &root.xml;
    assert_eq!(item.name, "Item");
    assert_eq!(item.child_text("Name"), Some("Root Node"));
    assert_eq!(item.child_text("Id"), Some(ROOT));
    assert_eq!(item.child_text("Type"), Some("FOLDER"));
    assert_eq!(item.child_text("TimeStamp").map(str::len), Some(24));
    let link = item.find("Link").ok_or("no link")?;
    assert_eq!(link.attribute("rel"), Some("self"));
    assert_eq!(
        link.attribute("uri"),
        Some(format!("{}/folders/{ROOT}", gateway.restman()).as_str())
    );
    let folder = resource(item).ok_or("no resource")?;
    assert_eq!(folder.name, "Folder");
    assert_eq!(folder.attribute("id"), Some(ROOT));
    assert_eq!(folder.attribute("version"), Some("0"));

    let empty = gateway.get("clusterProperties").await?;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.xml.name, "List");
    assert_eq!(empty.xml.child_text("Name"), Some("CLUSTER_PROPERTY List"));
    assert_eq!(empty.xml.child_text("Type"), Some("List"));
    assert_eq!(empty.xml.find_all("Item").count(), 0);

    let ports = gateway.get("listenPorts").await?;
    let names: Vec<&str> = ports
        .xml
        .find_all("Item")
        .filter_map(|item| item.child_text("Name"))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for expected in [
        "Default HTTP (8080)",
        "Default HTTPS (8443)",
        "Default HTTPS (9443)",
        "Node HTTPS (2124)",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }

    let missing = gateway
        .get("services/0123456789abcdef0123456789abcdef")
        .await?;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.xml.name, "Error");
    assert_eq!(missing.xml.child_text("Type"), Some("ResourceNotFound"));
    assert!(
        missing
            .xml
            .child_text("Detail")
            .is_some_and(|d| d.contains("0123456789abcdef"))
    );

    let malformed = gateway
        .post(
            "clusterProperties",
            "<l7:ClusterProperty>\n<l7:Name>x</l7:Nam>".to_owned(),
        )
        .await?;
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    assert_eq!(malformed.xml.child_text("Type"), Some("BadRequest"));
    assert!(
        malformed
            .xml
            .child_text("Detail")
            .is_some_and(|d| d.contains("line 2")),
        "{}",
        malformed.text
    );
    Ok(())
}

#[tokio::test]
async fn crud_counts_versions_and_refuses_a_stale_one() -> TestResult {
    let gateway = Gateway::start().await?;
    let created = gateway
        .post("clusterProperties", cluster_property("a.b", "1"))
        .await?;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        created.xml.find("Resource").is_none(),
        "a created answer has no resource"
    );
    let id = created.xml.child_text("Id").ok_or("no id")?.to_owned();
    assert_eq!(id.len(), 32);

    let read = gateway.get(&format!("clusterProperties/{id}")).await?;
    let property = resource(&read.xml).ok_or("no resource")?;
    assert_eq!(property.attribute("version"), Some("0"));
    assert_eq!(property.child_text("Value"), Some("1"));

    let body = |value: &str, version: u64| {
        cluster_property("a.b", value).replace(
            "<l7:ClusterProperty ",
            &format!("<l7:ClusterProperty id=\"{id}\" version=\"{version}\" "),
        )
    };
    let updated = gateway
        .put(&format!("clusterProperties/{id}"), body("2", 0))
        .await?;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let stale = gateway
        .put(&format!("clusterProperties/{id}"), body("3", 0))
        .await?;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert_eq!(stale.xml.child_text("Type"), Some("InvalidResource"));
    assert!(
        stale
            .xml
            .child_text("Detail")
            .is_some_and(|d| d.contains("version 0 is stale"))
    );
    let read = gateway.get(&format!("clusterProperties/{id}")).await?;
    let property = resource(&read.xml).ok_or("no resource")?;
    assert_eq!(property.attribute("version"), Some("1"));
    assert_eq!(property.child_text("Value"), Some("2"));

    let found = gateway.get("clusterProperties?name=a.b").await?;
    assert_eq!(found.xml.find_all("Item").count(), 1);
    let none = gateway.get("clusterProperties?name=other").await?;
    assert_eq!(none.xml.find_all("Item").count(), 0);
    let unknown = gateway.get("clusterProperties?colour=red").await?;
    assert_eq!(unknown.status, 400, "{}", unknown.text);

    let duplicate = gateway
        .post("clusterProperties", cluster_property("a.b", "9"))
        .await?;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    assert_eq!(duplicate.xml.child_text("Type"), Some("UniqueKeyConflict"));

    let deleted = gateway.delete(&format!("clusterProperties/{id}")).await?;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        gateway
            .get(&format!("clusterProperties/{id}"))
            .await?
            .status,
        404
    );
    assert_eq!(
        gateway
            .delete(&format!("clusterProperties/{id}"))
            .await?
            .status,
        404
    );
    Ok(())
}

#[tokio::test]
async fn put_creates_at_a_given_goid_and_checks_the_body() -> TestResult {
    let gateway = Gateway::start().await?;
    let id = "00000000000000000000000000abcdef";
    let created = gateway
        .put(
            &format!("clusterProperties/{id}"),
            cluster_property("x", "1"),
        )
        .await?;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.xml.child_text("Id"), Some(id));
    let wrong = gateway
        .put(&format!("clusterProperties/{id}"), folder("f", ROOT))
        .await?;
    assert_eq!(wrong.status, 400, "{}", wrong.text);
    let bad_id = gateway
        .put("clusterProperties/not-a-goid", cluster_property("y", "1"))
        .await?;
    assert_eq!(bad_id.status, 400, "{}", bad_id.text);
    Ok(())
}

#[tokio::test]
async fn every_management_request_needs_the_administrators_credentials() -> TestResult {
    let gateway = Gateway::start().await?;
    let url = format!("{}/clusterProperties", gateway.restman());
    let anonymous = gateway.http.get(&url).send().await?;
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"].to_str()?.to_owned();
    assert!(challenge.starts_with("Basic realm=\""), "{challenge}");
    let wrong = gateway
        .http
        .get(&url)
        .basic_auth("admin", Some("wrong"))
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    let control = gateway
        .http
        .get(format!("{}/_twin/counters", gateway.twin.url()))
        .send()
        .await?;
    assert_eq!(control.status(), 401);
    let ping = gateway
        .http
        .get(format!("{}/ssg/ping", gateway.twin.url()))
        .send()
        .await?;
    assert_eq!(ping.status(), 200, "ping needs no credentials");
    Ok(())
}

#[tokio::test]
async fn services_are_unique_by_path_and_verb_and_folders_by_name_in_their_parent() -> TestResult {
    let gateway = Gateway::start().await?;
    let policy = hardcoded_policy(200, "a");
    gateway
        .create("services", service("a", "/orders", &policy, None))
        .await?;
    let clash = gateway
        .post("services", service("b", "/orders", &policy, None))
        .await?;
    assert_eq!(clash.status, 409, "{}", clash.text);
    assert_eq!(clash.xml.child_text("Type"), Some("UniqueKeyConflict"));
    let other_verb = service("c", "/orders", &policy, None).replace(
        "<l7:Verb>GET</l7:Verb><l7:Verb>POST</l7:Verb>",
        "<l7:Verb>DELETE</l7:Verb>",
    );
    gateway.create("services", other_verb).await?;

    let apis = gateway.create("folders", folder("apis", ROOT)).await?;
    assert_eq!(
        gateway.post("folders", folder("apis", ROOT)).await?.status,
        409
    );
    gateway.create("folders", folder("apis", &apis)).await?;
    let children = gateway
        .get(&format!("folders?parentFolder.id={apis}"))
        .await?;
    assert_eq!(children.xml.find_all("Item").count(), 1);
    let refused = gateway.delete(&format!("folders/{apis}")).await?;
    assert_eq!(refused.status, 409, "{}", refused.text);
    let forced = gateway
        .delete(&format!("folders/{apis}?force=true"))
        .await?;
    assert_eq!(forced.status, 204, "{}", forced.text);
    assert_eq!(gateway.get(&format!("folders/{apis}")).await?.status, 404);
    assert_eq!(
        gateway
            .delete(&format!("folders/{ROOT}?force=true"))
            .await?
            .status,
        400
    );
    Ok(())
}

#[tokio::test]
async fn a_policy_change_is_a_revision_activated_when_asked() -> TestResult {
    let gateway = Gateway::start().await?;
    let id = gateway
        .create(
            "services",
            service("s", "/s", &hardcoded_policy(200, "one"), None),
        )
        .await?;
    let traffic = format!("{}/s", gateway.twin.url());
    assert_eq!(
        gateway.http.get(&traffic).send().await?.text().await?,
        "one"
    );

    let current = gateway.get(&format!("services/{id}")).await?;
    let version = resource(&current.xml)
        .and_then(|service| service.attribute("version"))
        .ok_or("no version")?
        .to_owned();
    let changed = service("s", "/s", &hardcoded_policy(200, "two"), None).replace(
        "<l7:Service ",
        &format!("<l7:Service id=\"{id}\" version=\"{version}\" "),
    );
    let saved = gateway
        .put(
            &format!("services/{id}?active=false&versionComment=second%20try"),
            changed,
        )
        .await?;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert_eq!(
        gateway.http.get(&traffic).send().await?.text().await?,
        "one",
        "an inactive revision does not serve"
    );

    let versions = gateway.get(&format!("services/{id}/versions")).await?;
    let items: Vec<_> = versions.xml.find_all("Item").collect();
    assert_eq!(items.len(), 2, "{}", versions.text);
    let second = resource(items[1]).ok_or("no resource")?;
    assert_eq!(second.child_text("Ordinal"), Some("2"));
    assert_eq!(second.child_text("Comment"), Some("second try"));
    assert_eq!(second.child_text("Active"), Some("false"));
    let active = gateway
        .get(&format!("services/{id}/versions/active"))
        .await?;
    assert_eq!(
        resource(&active.xml).and_then(|v| v.child_text("Ordinal")),
        Some("1")
    );

    let activated = gateway
        .post(&format!("services/{id}/versions/2/activate"), String::new())
        .await?;
    assert_eq!(activated.status, 200, "{}", activated.text);
    assert_eq!(
        gateway.http.get(&traffic).send().await?.text().await?,
        "two"
    );
    let rolled_back = gateway
        .post(&format!("services/{id}/versions/1/activate"), String::new())
        .await?;
    assert_eq!(rolled_back.status, 200);
    assert_eq!(
        gateway.http.get(&traffic).send().await?.text().await?,
        "one"
    );
    assert_eq!(
        gateway
            .get(&format!("services/{id}/versions/7"))
            .await?
            .status,
        404
    );
    Ok(())
}

#[tokio::test]
async fn private_keys_are_generated_and_take_special_purposes() -> TestResult {
    let gateway = Gateway::start().await?;
    let ssl = gateway.get("privateKeys?alias=ssl").await?;
    let item = ssl.xml.find("Item").ok_or("no ssl key")?;
    assert_eq!(
        item.child_text("Id"),
        Some("00000000000000000000000000000002:ssl")
    );
    let id = "00000000000000000000000000000002:rotated";
    let context = r#"<l7:PrivateKeyCreationContext xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:Dn>CN=gw.example.com</l7:Dn><l7:Properties><l7:Property key="daysUntilExpiry"><l7:IntegerValue>30</l7:IntegerValue></l7:Property></l7:Properties></l7:PrivateKeyCreationContext>"#;
    let created = gateway
        .post(&format!("privateKeys/{id}"), context.to_owned())
        .await?;
    assert_eq!(created.status, 201, "{}", created.text);
    let again = gateway
        .post(&format!("privateKeys/{id}"), context.to_owned())
        .await?;
    assert_eq!(again.status, 409);
    let read = gateway.get(&format!("privateKeys/{id}")).await?;
    let key = resource(&read.xml).ok_or("no key")?;
    assert_eq!(key.attribute("alias"), Some("rotated"));
    let subject = key
        .find("CertificateChain")
        .and_then(|chain| chain.find("CertificateData"))
        .and_then(|data| data.child_text("SubjectName"))
        .ok_or("no subject")?;
    assert!(subject.contains("gw.example.com"), "{subject}");
    assert!(
        !read.text.contains("PRIVATE KEY"),
        "the private half is never served"
    );

    let marked = gateway
        .put(
            &format!("privateKeys/{id}/specialPurpose?purpose=SSL"),
            String::new(),
        )
        .await?;
    assert_eq!(marked.status, 200, "{}", marked.text);
    let old = gateway
        .get("privateKeys/00000000000000000000000000000002:ssl")
        .await?;
    assert!(!old.text.contains("specialPurposes"), "{}", old.text);
    let new = gateway.get(&format!("privateKeys/{id}")).await?;
    assert!(new.text.contains("specialPurposes"), "{}", new.text);
    let unknown = gateway
        .put(
            &format!("privateKeys/{id}/specialPurpose?purpose=COFFEE"),
            String::new(),
        )
        .await?;
    assert_eq!(unknown.status, 400);
    Ok(())
}
