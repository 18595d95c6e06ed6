//! Graphman on the twin's listener over HTTP: auth, one store with restman, writes counted,
//! write faults, the node's lifecycle and Graphman JSON seeds.

use serde_json::{Value, json};

use super::support::{Gateway, TestResult, cluster_property};

/// `POST /graphman?<query>` with the admin credentials; status and JSON body.
async fn graphman(
    gateway: &Gateway,
    query: &str,
    document: &str,
    variables: Value,
) -> Result<(u16, Value), Box<dyn std::error::Error>> {
    let response = gateway
        .http
        .post(format!("{}/graphman{query}", gateway.twin.url()))
        .basic_auth("admin", Some("password"))
        .json(&json!({"query": document, "variables": variables}))
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

const SET: &str =
    "mutation($input: [ClusterPropertyInput!]!) { setClusterProperties(input: $input) { status } }";
const READ: &str = "{ clusterPropertyByName(name: \"a\") { value } }";

#[tokio::test]
async fn graphman_needs_the_credentials_and_a_post() -> TestResult {
    let gateway = Gateway::start().await?;
    let anonymous = gateway
        .http
        .post(format!("{}/graphman", gateway.twin.url()))
        .json(&json!({"query": "{ nodeInfo { name } }"}))
        .send()
        .await?;
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    let get = gateway.get("/graphman").await?;
    assert_eq!(get.status, 405);
    Ok(())
}

#[tokio::test]
async fn restman_and_graphman_share_one_store_and_only_changes_are_writes() -> TestResult {
    let gateway = Gateway::start().await?;
    gateway
        .create("clusterProperties", cluster_property("a", "1"))
        .await?;
    assert_eq!(gateway.writes().await?, 1);
    let (status, body) = graphman(&gateway, "", READ, json!({})).await?;
    assert_eq!(
        (status, &body["data"]["clusterPropertyByName"]["value"]),
        (200, &json!("1"))
    );
    let input = json!({"input": [{"name": "a", "value": "2"}]});
    let (_, tested) = graphman(&gateway, "?test=true", SET, input.clone()).await?;
    assert_eq!(
        tested["data"]["setClusterProperties"]["status"],
        json!(["UPDATED"])
    );
    assert_eq!(gateway.writes().await?, 1);
    graphman(&gateway, "", SET, input.clone()).await?;
    assert_eq!(gateway.writes().await?, 2);
    let (_, again) = graphman(&gateway, "", SET, input).await?;
    assert_eq!(
        again["data"]["setClusterProperties"]["status"],
        json!(["USED_EXISTING"])
    );
    assert_eq!(gateway.writes().await?, 2);
    let restman = gateway.get("clusterProperties?name=a").await?;
    assert!(
        restman.text.contains("<l7:Value>2</l7:Value>"),
        "{}",
        restman.text
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_graphman_write_changes_nothing_and_queries_pass_the_fault() -> TestResult {
    let gateway = Gateway::start().await?;
    gateway
        .control("/_twin/faults", json!({"fail_nth_write": 1, "status": 503}))
        .await?;
    let (status, _) = graphman(&gateway, "", READ, json!({})).await?;
    assert_eq!(status, 200);
    let (status, _) = graphman(
        &gateway,
        "?test=true",
        SET,
        json!({"input": [{"name": "a", "value": "1"}]}),
    )
    .await?;
    assert_eq!(status, 200);
    let (status, _) = graphman(
        &gateway,
        "",
        SET,
        json!({"input": [{"name": "a", "value": "1"}]}),
    )
    .await?;
    assert_eq!(status, 503);
    let (_, body) = graphman(&gateway, "", READ, json!({})).await?;
    assert_eq!(body["data"]["clusterPropertyByName"], Value::Null);
    assert_eq!(gateway.writes().await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_starting_node_answers_503_then_reports_its_new_version() -> TestResult {
    let gateway = Gateway::start().await?;
    gateway
        .control(
            "/_twin/node",
            json!({"action": "restart", "down_ms": 0, "starting_ms": 400, "version": "11.1.3"}),
        )
        .await?;
    let document = "{ nodeInfo { productVersion { formalString } nodeStatus } }";
    let (status, _) = graphman(&gateway, "", document, json!({})).await?;
    assert_eq!(status, 503);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (status, body) = graphman(&gateway, "", document, json!({})).await?;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["nodeInfo"]["productVersion"]["formalString"],
        "11.1.3"
    );
    assert_eq!(body["data"]["nodeInfo"]["nodeStatus"], "RUNNING");
    Ok(())
}

#[tokio::test]
async fn a_graphman_json_seed_is_installed_or_refused_whole() -> TestResult {
    let gateway = Gateway::start().await?;
    let seed = json!({
        "properties": {"defaultAction": "IGNORE"},
        "folders": [{"name": "apis", "folderPath": "/apis"}],
        "clusterProperties": [{"name": "a", "value": "1"}],
    });
    gateway.twin.seed_bundle(&seed.to_string())?;
    let (_, body) = graphman(
        &gateway,
        "",
        "{ folders { folderPath } clusterPropertyByName(name: \"a\") { value } }",
        json!({}),
    )
    .await?;
    assert_eq!(body["data"]["folders"], json!([{"folderPath": "/apis"}]));
    assert_eq!(body["data"]["clusterPropertyByName"]["value"], "1");
    let broken = json!({
        "clusterProperties": [{"name": "b", "value": "1"}],
        "services": [{"name": "s", "resolutionPath": "/s", "folderPath": "/missing", "policy": {"xml": "<p/>"}}],
    });
    let refused = gateway
        .twin
        .seed_bundle(&broken.to_string())
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains("services /s") && refused.contains("folder /missing does not exist"),
        "{refused}"
    );
    let (_, body) = graphman(
        &gateway,
        "",
        "{ clusterPropertyByName(name: \"b\") { value } }",
        json!({}),
    )
    .await?;
    assert_eq!(body["data"]["clusterPropertyByName"], Value::Null);
    Ok(())
}
