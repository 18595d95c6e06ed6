//! Runs one GraphQL request against a [`GraphmanResolver`]: queries read it; mutations run on
//! a clone that replaces it only when every field succeeded and the request is not a test.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::document::{self, Field, Operation, OperationKind};
use super::error::GraphqlError;
use super::projection::{self, TYPENAME};
use super::resolver::{Context, FieldError, GraphmanResolver, RequestOptions};
use super::status;

/// A GraphQL-over-HTTP request body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlRequest {
    /// The GraphQL document.
    pub query: String,
    /// Variable values (`null` or absent is none).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub variables: Map<String, Value>,
    /// Which operation of the document to run.
    #[serde(default)]
    pub operation_name: Option<String>,
}

/// `variables: null` read as no variables.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(deserializer)?.unwrap_or_default())
}

impl GraphqlRequest {
    /// A request for `query` without variables.
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            variables: Map::new(),
            operation_name: None,
        }
    }
}

/// The result of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// The response body: `{"data": ...}` and/or `{"errors": [...]}`.
    pub body: Value,
    /// The operation's kind; `None` when the document did not parse.
    pub kind: Option<OperationKind>,
    /// Whether a mutation changed the resolver (false for queries, tests and failures).
    pub committed: bool,
}

/// Runs `request` against `resolver` with `options`.
pub fn execute<R: GraphmanResolver>(
    resolver: &mut R,
    request: &GraphqlRequest,
    options: &RequestOptions,
) -> Execution {
    let operation = match document::parse(
        &request.query,
        request.operation_name.as_deref(),
        &request.variables,
    ) {
        Ok(operation) => operation,
        Err(error) => {
            return Execution {
                body: json!({ "errors": [error.to_json()] }),
                kind: None,
                committed: false,
            };
        }
    };
    let context = Context {
        options,
        variables: &request.variables,
    };
    match operation.kind {
        OperationKind::Query => run_query(resolver, &operation, &context),
        OperationKind::Mutation => run_mutation(resolver, &operation, &context),
    }
}

/// Resolves every query field; a failed field is `null` with an error.
fn run_query<R: GraphmanResolver>(
    resolver: &R,
    operation: &Operation,
    context: &Context<'_>,
) -> Execution {
    let mut results = Results::default();
    for field in &operation.fields {
        let outcome = if field.name == TYPENAME {
            Ok(json!(OperationKind::Query.root_type()))
        } else {
            resolver.query(field, context)
        };
        results.record(field, OperationKind::Query, outcome);
    }
    Execution {
        body: results.body(),
        kind: Some(OperationKind::Query),
        committed: false,
    }
}

/// Applies every mutation field, in order, to a clone; commits it when all succeeded and
/// the request is not a test.
fn run_mutation<R: GraphmanResolver>(
    resolver: &mut R,
    operation: &Operation,
    context: &Context<'_>,
) -> Execution {
    let mut draft = resolver.clone();
    let mut results = Results::default();
    let mut failure: Option<String> = None;
    for field in &operation.fields {
        let outcome = if field.name == TYPENAME {
            Ok(json!(OperationKind::Mutation.root_type()))
        } else {
            draft.mutate(field, context)
        };
        match &outcome {
            Err(_) => {
                failure.get_or_insert_with(|| format!("{} failed", field.response_key()));
            }
            Ok(payload) => {
                if let Some(description) = status::payload_error(payload) {
                    let reason = if description.is_empty() {
                        format!("{} reported ERROR", field.response_key())
                    } else {
                        format!("{} reported ERROR ({description})", field.response_key())
                    };
                    failure.get_or_insert(reason);
                }
            }
        }
        if !results.record(field, OperationKind::Mutation, outcome) {
            failure.get_or_insert_with(|| format!("{} failed", field.response_key()));
        }
    }
    let committed = failure.is_none() && !context.options.test;
    if let Some(reason) = failure {
        results.errors.push(GraphqlError::new(format!(
            "Nothing was committed: {reason}; a Graphman mutation request is all or nothing."
        )));
    }
    if committed {
        *resolver = draft;
    }
    Execution {
        body: results.body(),
        kind: Some(OperationKind::Mutation),
        committed,
    }
}

/// The `data` and `errors` of a response being built.
#[derive(Default)]
struct Results {
    /// Top-level results by response key.
    data: Map<String, Value>,
    /// Errors in the order they happened.
    errors: Vec<GraphqlError>,
}

impl Results {
    /// Projects a field's outcome into `data` (or `null` and an error); whether it succeeded.
    fn record(
        &mut self,
        field: &Field,
        kind: OperationKind,
        outcome: Result<Value, FieldError>,
    ) -> bool {
        let key = field.response_key().to_owned();
        let mut path = vec![Value::String(key.clone())];
        let projected = match outcome {
            Ok(value) => projection::project(&value, &field.selection, &mut path),
            Err(error) => Err(field_error(error, field, kind)),
        };
        let (value, succeeded) = match projected {
            Ok(value) => (value, true),
            Err(error) => {
                self.errors.push(error);
                (Value::Null, false)
            }
        };
        match self.data.get_mut(&key) {
            // The same key selected twice: both selections answered from one resolution
            // would need a merged selection; answering the later one keeps it simple.
            Some(existing) => *existing = value,
            None => {
                self.data.insert(key, value);
            }
        }
        succeeded
    }

    /// The response body.
    fn body(self) -> Value {
        let mut body = Map::new();
        body.insert("data".into(), Value::Object(self.data));
        if !self.errors.is_empty() {
            body.insert(
                "errors".into(),
                Value::Array(self.errors.iter().map(GraphqlError::to_json).collect()),
            );
        }
        Value::Object(body)
    }
}

/// A resolver's error as a GraphQL error at the field.
fn field_error(error: FieldError, field: &Field, kind: OperationKind) -> GraphqlError {
    let error = match error {
        FieldError::UnknownField { field, .. } => FieldError::UnknownField {
            field,
            root: kind.root_type(),
        },
        other => other,
    };
    GraphqlError::new(error.to_string())
        .at(field.location)
        .with_path(vec![Value::String(field.response_key().to_owned())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer7::graphman::testing::ClusterProperties;

    const SET: &str =
        r#"mutation { setClusterProperties(input: [{name: "a", value: "1"}]) { status } }"#;

    #[test]
    fn commits_only_successful_non_test_mutations() {
        let mut resolver = ClusterProperties::default();
        let query = execute(
            &mut resolver,
            &GraphqlRequest::new("{ clusterProperties { name } }"),
            &RequestOptions::default(),
        );
        assert_eq!(
            (query.kind, query.committed),
            (Some(OperationKind::Query), false)
        );
        let test = RequestOptions {
            test: true,
            ..RequestOptions::default()
        };
        let tested = execute(&mut resolver, &GraphqlRequest::new(SET), &test);
        assert_eq!(
            (tested.kind, tested.committed),
            (Some(OperationKind::Mutation), false)
        );
        assert!(resolver.entries.is_empty());
        let applied = execute(
            &mut resolver,
            &GraphqlRequest::new(SET),
            &RequestOptions::default(),
        );
        assert!(applied.committed);
        assert_eq!(resolver.entries.len(), 1);
        let broken = execute(
            &mut resolver,
            &GraphqlRequest::new("mutation {"),
            &RequestOptions::default(),
        );
        assert_eq!((broken.kind, broken.committed), (None, false));
        assert!(broken.body.get("data").is_none());
    }
}
