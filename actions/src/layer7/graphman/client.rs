//! [`GraphmanClient`]: GraphQL over `POST {url}/graphman` (section 2.1 of
//! reference/layer7-api.md). Queries change nothing and are sent even in a
//! dry run; mutations are writes unless sent in the gateway's test mode
//! (`?test=true`). Every mutation's per-entity statuses are checked: any
//! `ERROR` fails the call, naming the entity and the gateway's description.

use reqwest::Url;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::status::{EntityStatus, MutationStatus, collect_statuses};
use crate::layer7::connection::{Connection, content_type, passphrase_header};
use crate::layer7::error::{Layer7Error, snippet};
use crate::web::{Method, WebError, WebResponse};

/// The header carrying the secrets passphrase (base64).
pub const PASSPHRASE_HEADER: &str = "x-l7-passphrase";

/// Request-level options of a mutation (URL query parameters of `/graphman`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GraphmanOptions {
    /// `test=true`: preview the mutation without committing (sent even in a dry run).
    pub test: bool,
    /// `activate`: false creates new policy revisions without activating them.
    pub activate: Option<bool>,
    /// `comment`: the new policy revisions' comment.
    pub comment: Option<String>,
    /// `forceDelete=true`: delete non-empty folders.
    pub force_delete: bool,
    /// The passphrase sent (base64) in `x-l7-passphrase` for keys and secrets.
    pub passphrase: Option<String>,
}

impl std::fmt::Debug for GraphmanOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphmanOptions")
            .field("test", &self.test)
            .field("activate", &self.activate)
            .field("comment", &self.comment)
            .field("force_delete", &self.force_delete)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

impl GraphmanOptions {
    /// The options in the gateway's test mode.
    pub fn test() -> Self {
        Self {
            test: true,
            ..Self::default()
        }
    }

    fn parameters(&self) -> Vec<(&'static str, String)> {
        let mut parameters = Vec::new();
        if self.test {
            parameters.push(("test", "true".to_owned()));
        }
        if let Some(activate) = self.activate {
            parameters.push(("activate", activate.to_string()));
        }
        if let Some(comment) = &self.comment {
            parameters.push(("comment", comment.clone()));
        }
        if self.force_delete {
            parameters.push(("forceDelete", "true".to_owned()));
        }
        parameters
    }
}

/// A GraphQL client for one gateway's Graphman.
#[derive(Debug, Clone)]
pub struct GraphmanClient {
    connection: Connection,
    url: String,
}

impl GraphmanClient {
    /// A client for the gateway at `gateway_url` (`https://gw:8443`); Graphman is at `/graphman`.
    pub fn new(connection: Connection, gateway_url: &str) -> Self {
        Self {
            connection,
            url: format!("{}/graphman", gateway_url.trim_end_matches('/')),
        }
    }

    /// The endpoint (`https://gw:8443/graphman`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs a query (changes nothing: sent even in a dry run) and reads its `data` as `T`.
    pub async fn query<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<T, Layer7Error> {
        let (request, data) = self.execute(query, variables, None).await?;
        serde_json::from_value(data.clone()).map_err(|error| {
            Layer7Error::malformed(
                &request,
                format!("unexpected `data`: {error}"),
                &data.to_string(),
            )
        })
    }

    /// Runs a mutation and checks every entity's `detailedStatus`: the first
    /// `ERROR` is [`Layer7Error::Entity`]. Answers every status found, in order.
    /// In the gateway's test mode (`options.test`) it changes nothing and is
    /// sent even in a dry run.
    pub async fn mutate(
        &self,
        query: &str,
        variables: Value,
        options: &GraphmanOptions,
    ) -> Result<MutationStatus, Layer7Error> {
        let (_, data) = match self.execute(query, variables, Some(options)).await {
            // A gateway may add GraphQL errors to per-entity ERROR statuses (the twin says
            // that nothing was committed): the failing entity is the better message.
            Err(Layer7Error::Graphql {
                data: Some(data),
                request,
                messages,
            }) => {
                if !collect_statuses(&data).iter().any(EntityStatus::is_error) {
                    return Err(Layer7Error::Graphql {
                        request,
                        messages,
                        data: None,
                    });
                }
                (request, data)
            }
            other => other?,
        };
        let statuses = collect_statuses(&data);
        if let Some(failed) = statuses.iter().find(|status| status.is_error()) {
            return Err(Layer7Error::Entity {
                operation: failed.operation.clone(),
                entity: failed.entity(),
                description: failed
                    .description
                    .clone()
                    .unwrap_or_else(|| "failed".to_owned()),
            });
        }
        Ok(MutationStatus { data, statuses })
    }

    /// Sends one GraphQL request and answers the request in words and its `data`.
    async fn execute(
        &self,
        query: &str,
        variables: Value,
        mutation: Option<&GraphmanOptions>,
    ) -> Result<(String, Value), Layer7Error> {
        let mut url = Url::parse(&self.url).map_err(|error| {
            Layer7Error::Web(WebError::InvalidUrl {
                url: self.url.clone(),
                reason: error.to_string(),
            })
        })?;
        let parameters = mutation
            .map(GraphmanOptions::parameters)
            .unwrap_or_default();
        if !parameters.is_empty() {
            url.query_pairs_mut().extend_pairs(parameters);
        }
        let mut request = self
            .connection
            .request(Method::POST, url.as_str())?
            .header("accept", "application/json")?
            // Before `json`, which only sets a content type when none is set.
            .header("content-type", "application/json; charset=utf-8")?
            .json(&json!({"query": query, "variables": variables}));
        if let Some(passphrase) = mutation.and_then(|options| options.passphrase.as_ref()) {
            request = request.header(PASSPHRASE_HEADER, &passphrase_header(passphrase))?;
        }
        if mutation.is_none_or(|options| options.test) {
            request = request.changes_nothing();
        }
        let operation = operation_name(query);
        let response = self.connection.send(request).await?;
        let what = format!("{} ({operation})", response.request);
        let body = read_json(&response, &what)?;
        if let Some(messages) = graphql_errors(&body) {
            return Err(Layer7Error::Graphql {
                request: what,
                messages,
                data: body.get("data").filter(|data| !data.is_null()).cloned(),
            });
        }
        if !(200..300).contains(&response.status) {
            return Err(Layer7Error::Rejected {
                request: what,
                status: response.status,
                error_type: None,
                detail: snippet(&response.text()),
            });
        }
        match body.get("data") {
            Some(data) if !data.is_null() => Ok((what, data.clone())),
            _ => Err(Layer7Error::malformed(
                &what,
                "no `data` in the answer",
                &response.text(),
            )),
        }
    }
}

/// The first field of the operation (`nodeInfo`), for messages.
fn operation_name(query: &str) -> String {
    let body = query.split_once('{').map_or(query, |(_, rest)| rest);
    body.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|word| !word.is_empty())
        .unwrap_or("query")
        .to_owned()
}

/// The body as JSON, refusing other content types (multipart included).
fn read_json(response: &WebResponse, what: &str) -> Result<Value, Layer7Error> {
    let text = response.text();
    match content_type(response) {
        Some(kind) if kind == "application/json" || kind.ends_with("+json") => {}
        Some(kind) if (200..300).contains(&response.status) || kind.contains("json") => {
            return Err(Layer7Error::malformed(
                what,
                format!("no valid response from graphman: expected application/json, got `{kind}`"),
                &text,
            ));
        }
        _ if !(200..300).contains(&response.status) => {
            return Err(Layer7Error::Rejected {
                request: what.to_owned(),
                status: response.status,
                error_type: None,
                detail: snippet(&text),
            });
        }
        _ => {}
    }
    serde_json::from_str(&text)
        .map_err(|error| Layer7Error::malformed(what, format!("not JSON: {error}"), &text))
}

/// The `errors[].message` values, when the answer has errors.
fn graphql_errors(body: &Value) -> Option<Vec<String>> {
    let errors = body.get("errors")?.as_array()?;
    if errors.is_empty() {
        return None;
    }
    Some(
        errors
            .iter()
            .map(|error| {
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)");
                match error.get("path").and_then(Value::as_array) {
                    Some(path) if !path.is_empty() => {
                        let path: Vec<String> = path
                            .iter()
                            .map(|part| {
                                part.as_str()
                                    .map_or_else(|| part.to_string(), str::to_owned)
                            })
                            .collect();
                        format!("{message} (at {})", path.join("."))
                    }
                    _ => message.to_owned(),
                }
            })
            .collect(),
    )
}

/// The statuses of every entity a mutation touched, for callers that report them.
pub fn statuses(data: &Value) -> Vec<EntityStatus> {
    collect_statuses(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_operation() {
        assert_eq!(operation_name("query { nodeInfo { name } }"), "nodeInfo");
        assert_eq!(
            operation_name(
                "mutation setCp($input: [ClusterPropertyInput!]!) { setClusterProperties(input: $input) { x } }"
            ),
            "setClusterProperties"
        );
        assert_eq!(operation_name("{ clusterInfo { name } }"), "clusterInfo");
    }

    #[test]
    fn reads_graphql_errors_with_their_paths() {
        let body = json!({"errors": [
            {"message": "Validation error: field `x` undefined", "path": ["services", 0, "x"]},
            {"message": "boom"}
        ], "data": null});
        assert_eq!(
            graphql_errors(&body),
            Some(vec![
                "Validation error: field `x` undefined (at services.0.x)".to_owned(),
                "boom".to_owned()
            ])
        );
        assert_eq!(graphql_errors(&json!({"data": {}, "errors": []})), None);
    }
}
