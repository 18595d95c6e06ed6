//! The whole Graphman path over real loopback HTTP, against the cluster-property resolver.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::checksum;
use super::handler::router;
use super::testing::ClusterProperties;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A Graphman endpoint on a loopback port, and its resolver.
struct Server {
    /// `http://127.0.0.1:PORT/graphman`.
    url: String,
    /// The state the endpoint serves.
    state: Arc<Mutex<ClusterProperties>>,
    /// The HTTP client.
    client: reqwest::Client,
}

impl Server {
    /// Serves a resolver seeded with `cluster.hostname` and `audit.level`.
    async fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let mut properties = ClusterProperties::default();
        properties.put("cluster.hostname", "gw.example.test");
        properties.put("audit.level", "INFO");
        let state = Arc::new(Mutex::new(properties));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address: SocketAddr = listener.local_addr()?;
        let app = router(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self {
            url: format!("http://{address}/graphman"),
            state,
            client: reqwest::Client::new(),
        })
    }

    /// POSTs `body` as JSON with URL query `options`; the status and JSON answer.
    async fn post(
        &self,
        options: &str,
        body: Value,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let response = self
            .client
            .post(format!("{}{options}", self.url))
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await?))
    }

    /// Runs `query` with `variables`; the JSON answer, which must come with 200.
    async fn graphql(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        self.graphql_with("", query, variables).await
    }

    /// Like [`Server::graphql`], with URL query `options` (`?test=true`).
    async fn graphql_with(
        &self,
        options: &str,
        query: &str,
        variables: Value,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        let (status, body) = self
            .post(options, json!({"query": query, "variables": variables}))
            .await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        Ok(body)
    }

    /// The names and values now stored.
    fn stored(&self) -> Vec<(String, String)> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .entries
            .values()
            .map(|entry| (entry.name.clone(), entry.value.clone()))
            .collect()
    }
}

/// The detailed statuses' `status` values of a plural payload.
fn statuses(payload: &Value) -> Vec<&str> {
    payload["detailedStatus"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|item| item["status"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn query_projects_selection_aliases_and_typename() -> TestResult {
    let server = Server::start().await?;
    let body = server
        .graphql(
            r#"query Props { __typename
                all: clusterProperties { name value __typename }
                one: clusterPropertyByName(name: "audit.level") { ... on ClusterProperty { v: value } }
                none: clusterPropertyByName(name: "missing") { name } }"#,
            Value::Null,
        )
        .await?;
    assert_eq!(
        body,
        json!({"data": {
            "__typename": "Query",
            "all": [
                {"name": "cluster.hostname", "value": "gw.example.test", "__typename": "ClusterProperty"},
                {"name": "audit.level", "value": "INFO", "__typename": "ClusterProperty"},
            ],
            "one": {"v": "INFO"},
            "none": null,
        }})
    );
    Ok(())
}

#[tokio::test]
async fn variables_defaults_and_operation_name() -> TestResult {
    let server = Server::start().await?;
    let query = r#"query A($name: String = "cluster.hostname") { clusterPropertyByName(name: $name) { value } }
                   query B { clusterProperties { name } }"#;
    let (_, body) = server
        .post(
            "",
            json!({"query": query, "operationName": "A", "variables": {"name": "audit.level"}}),
        )
        .await?;
    assert_eq!(
        body,
        json!({"data": {"clusterPropertyByName": {"value": "INFO"}}})
    );
    let (_, body) = server
        .post("", json!({"query": query, "operationName": "A"}))
        .await?;
    assert_eq!(
        body["data"]["clusterPropertyByName"]["value"],
        "gw.example.test"
    );
    Ok(())
}

#[tokio::test]
async fn graphql_errors_come_with_200_and_name_the_field() -> TestResult {
    let server = Server::start().await?;
    let body = server
        .graphql(
            "{ clusterProperties { name }\n  listenPorts { name } }",
            Value::Null,
        )
        .await?;
    assert_eq!(body["data"]["listenPorts"], Value::Null);
    assert_eq!(
        body["data"]["clusterProperties"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        body["errors"],
        json!([{"message": "Cannot query field \"listenPorts\" on type \"Query\".",
                "locations": [{"line": 2, "column": 3}], "path": ["listenPorts"]}])
    );

    let body = server
        .graphql("{ clusterProperties { nmae } }", Value::Null)
        .await?;
    assert_eq!(
        body["errors"][0]["message"],
        "Cannot query field \"nmae\" on type \"ClusterProperty\"."
    );
    assert_eq!(
        body["errors"][0]["path"],
        json!(["clusterProperties", 0, "nmae"])
    );

    let body = server
        .graphql("{ clusterProperties { name }", Value::Null)
        .await?;
    assert!(body.get("data").is_none(), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Syntax Error"))
    );

    let body = server
        .graphql(
            "query ($n: String!) { clusterPropertyByName(name: $n) { name } }",
            json!({}),
        )
        .await?;
    assert_eq!(
        body["errors"][0]["message"],
        "Variable \"$n\" of required type \"String!\" was not provided."
    );

    let body = server
        .graphql("{ clusterPropertyByName { name } }", Value::Null)
        .await?;
    assert_eq!(
        body["errors"][0]["message"],
        "Field \"clusterPropertyByName\" argument \"name\" is required, but it was not provided."
    );
    Ok(())
}

#[tokio::test]
async fn unreadable_requests_are_400_with_a_clear_message() -> TestResult {
    let server = Server::start().await?;
    let response = server
        .client
        .post(&server.url)
        .header("content-type", "text/plain")
        .body(r#"{"query": "{ clusterProperties { name } }"}"#)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await?;
    assert_eq!(
        body["errors"][0]["message"],
        "Graphman takes content-type application/json, got \"text/plain\""
    );

    let response = server
        .client
        .post(&server.url)
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await?;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("request body is not valid JSON"))
    );

    let (status, body) = server
        .post("?test=maybe", json!({"query": "{ a }"}))
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["errors"][0]["message"],
        "query parameter test must be true or false, got \"maybe\""
    );

    let response = server
        .client
        .post(&server.url)
        .header("x-l7-passphrase", "%%%")
        .json(&json!({"query": "{ clusterProperties { name } }"}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = server.client.get(&server.url).send().await?;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    Ok(())
}

const SET: &str = "mutation Set($input: [ClusterPropertyInput!]!) {
    setClusterProperties(input: $input) {
        status
        detailedStatus { action status description source { name value } target { name value } }
        clusterProperties { name value checksum }
    }
}";

#[tokio::test]
async fn set_reports_plural_statuses_in_input_order_and_commits() -> TestResult {
    let server = Server::start().await?;
    let body = server
        .graphql(
            SET,
            json!({"input": [
                {"name": "audit.level", "value": "WARNING"},
                {"name": "new.one", "value": "1", "description": "added"},
            ]}),
        )
        .await?;
    let payload = &body["data"]["setClusterProperties"];
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(payload["status"], json!(["UPDATED", "CREATED"]));
    let first = &payload["detailedStatus"][0];
    assert_eq!(first["action"], "NEW_OR_UPDATE");
    assert_eq!(
        first["source"],
        json!([{"name": "name", "value": "audit.level"}])
    );
    assert_eq!(
        first["target"][1],
        json!({"name": "name", "value": "audit.level"})
    );
    assert_eq!(payload["clusterProperties"][1]["name"], "new.one");
    assert_eq!(
        server.stored(),
        [
            ("cluster.hostname".to_owned(), "gw.example.test".to_owned()),
            ("audit.level".to_owned(), "WARNING".to_owned()),
            ("new.one".to_owned(), "1".to_owned()),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn test_mode_reports_but_commits_nothing() -> TestResult {
    let server = Server::start().await?;
    let before = server.stored();
    let body = server
        .graphql_with(
            "?test=true",
            SET,
            json!({"input": [{"name": "audit.level", "value": "FINE"}, {"name": "x", "value": "y"}]}),
        )
        .await?;
    assert_eq!(
        statuses(&body["data"]["setClusterProperties"]),
        ["UPDATED", "CREATED"]
    );
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(server.stored(), before);
    let delete = server
        .graphql_with(
            "?test=true",
            r#"mutation { deleteClusterProperties(refInputs: [{name: "audit.level"}]) { status } }"#,
            Value::Null,
        )
        .await?;
    assert_eq!(
        delete["data"]["deleteClusterProperties"]["status"],
        json!(["DELETED"])
    );
    assert_eq!(server.stored(), before);
    Ok(())
}

#[tokio::test]
async fn mappings_from_bundle_properties_drive_the_statuses() -> TestResult {
    let server = Server::start().await?;
    let body = server
        .graphql(
            SET,
            json!({
                "input": [
                    {"name": "cluster.hostname", "value": "changed"},
                    {"name": "audit.level", "value": "changed"},
                    {"name": "skipped", "value": "1"},
                    {"name": "gone", "value": "1"},
                ],
                "properties": {
                    "defaultAction": "NEW_OR_EXISTING",
                    "mappings": {"clusterProperties": [
                        {"action": "NEW_OR_UPDATE", "source": {"name": "audit.level"}},
                        {"action": "IGNORE", "source": {"name": "skipped"}},
                        {"action": "DELETE", "source": {"name": "gone"}},
                    ]},
                },
            }),
        )
        .await?;
    let payload = &body["data"]["setClusterProperties"];
    assert_eq!(
        statuses(payload),
        ["USED_EXISTING", "UPDATED", "IGNORED", "NONE"]
    );
    assert_eq!(payload["detailedStatus"][0]["action"], "NEW_OR_EXISTING");
    assert_eq!(
        payload["detailedStatus"][3]["description"],
        "cluster property gone not found"
    );
    assert_eq!(
        server.stored(),
        [
            ("cluster.hostname".to_owned(), "gw.example.test".to_owned()),
            ("audit.level".to_owned(), "changed".to_owned()),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn deletes_of_missing_entities_are_none_not_errors() -> TestResult {
    let server = Server::start().await?;
    let body = server
        .graphql(
            r#"mutation { deleteClusterProperties(refInputs: [{name: "audit.level"}, {name: "nope"}]) {
                status detailedStatus { status description } } }"#,
            Value::Null,
        )
        .await?;
    assert!(body.get("errors").is_none(), "{body}");
    let payload = &body["data"]["deleteClusterProperties"];
    assert_eq!(payload["status"], json!(["DELETED", "NONE"]));
    assert_eq!(
        payload["detailedStatus"][1]["description"],
        "cluster property nope not found"
    );
    assert_eq!(
        server.stored(),
        [("cluster.hostname".to_owned(), "gw.example.test".to_owned())]
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_field_or_error_status_commits_nothing() -> TestResult {
    let server = Server::start().await?;
    let before = server.stored();
    // The first field would succeed; the second refuses an existing entity (failOnExisting).
    let body = server
        .graphql(
            r#"mutation ($first: [ClusterPropertyInput!]!, $second: [ClusterPropertyInput!]!) {
                a: setClusterProperties(input: $first) { status }
                b: setClusterProperties(input: $second) { status detailedStatus { description } }
            }"#,
            json!({
                "first": [{"name": "new.one", "value": "1"}],
                "second": [{"name": "audit.level", "value": "2"}],
                "properties": {"mappings": {"clusterProperties": [
                    {"failOnExisting": true, "source": {"name": "audit.level"}}]}},
            }),
        )
        .await?;
    assert_eq!(body["data"]["a"]["status"], json!(["CREATED"]));
    assert_eq!(body["data"]["b"]["status"], json!(["ERROR"]));
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Nothing was committed: b reported ERROR"),
        "{message}"
    );
    assert!(message.contains("failOnExisting"), "{message}");
    assert_eq!(server.stored(), before);

    // An unknown mutation field after a good one: nothing committed either.
    let body = server
        .graphql(
            r#"mutation { setClusterProperties(input: [{name: "x", value: "1"}]) { status }
                          setWidgets(input: []) { status } }"#,
            Value::Null,
        )
        .await?;
    assert_eq!(
        body["errors"][0]["message"],
        "Cannot query field \"setWidgets\" on type \"Mutation\"."
    );
    assert_eq!(server.stored(), before);
    Ok(())
}

#[tokio::test]
async fn checksums_are_stable_and_change_on_edit() -> TestResult {
    let server = Server::start().await?;
    let read = "{ clusterPropertyByName(name: \"audit.level\") { goid checksum } }";
    let first = server.graphql(read, Value::Null).await?;
    let again = server.graphql(read, Value::Null).await?;
    let checksum = first["data"]["clusterPropertyByName"]["checksum"].clone();
    assert_eq!(checksum, again["data"]["clusterPropertyByName"]["checksum"]);
    let expected = checksum::checksum(&json!({"name": "audit.level", "description": null,
        "hiddenProperty": false, "value": "INFO"}));
    assert_eq!(checksum, json!(expected));

    let set = server
        .graphql(
            SET,
            json!({"input": [{"name": "audit.level", "value": "INFO"}]}),
        )
        .await?;
    assert_eq!(
        set["data"]["setClusterProperties"]["clusterProperties"][0]["checksum"],
        checksum
    );
    server
        .graphql(
            SET,
            json!({"input": [{"name": "audit.level", "value": "FINE"}]}),
        )
        .await?;
    let edited = server.graphql(read, Value::Null).await?;
    assert_ne!(
        edited["data"]["clusterPropertyByName"]["checksum"],
        checksum
    );
    assert_eq!(
        edited["data"]["clusterPropertyByName"]["goid"],
        first["data"]["clusterPropertyByName"]["goid"]
    );
    Ok(())
}

#[tokio::test]
async fn an_install_bundle_query_runs_with_sections_the_resolver_does_not_model() -> TestResult {
    let server = Server::start().await?;
    let status =
        "{detailedStatus {action status description source {name value} target {name value}}}";
    let query = format!(
        "mutation installBundle ($clusterProperties: [ClusterPropertyInput!]!=[], $jmsDestinations: [JmsDestinationInput!]!=[], $keys: [KeyInput!]!=[]) {{
            setClusterProperties (input: $clusterProperties){status}
            setJmsDestinations (input: $jmsDestinations){status}
            # Keys must be mutated at the end
            setKeys (input: $keys) {status}
        }}"
    );
    let bundle = json!({
        "clusterProperties": [{"name": "from.bundle", "value": "1"}],
        "properties": {"defaultAction": "NEW_OR_UPDATE"},
    });
    let body = server.graphql(&query, bundle).await?;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(statuses(&body["data"]["setClusterProperties"]), ["CREATED"]);
    assert_eq!(
        body["data"]["setJmsDestinations"],
        json!({"detailedStatus": []})
    );
    assert_eq!(body["data"]["setKeys"], json!({"detailedStatus": []}));
    assert!(
        server
            .stored()
            .contains(&("from.bundle".to_owned(), "1".to_owned()))
    );

    let body = server
        .graphql(
            &query,
            json!({"keys": [{"alias": "new", "keystoreId": "00000000000000000000000000000002"}]}),
        )
        .await?;
    assert_eq!(
        body["errors"][0]["message"],
        "Cannot query field \"setKeys\" on type \"Mutation\"."
    );
    Ok(())
}
