//! GraphQL errors as a GraphQL server renders them: `{"message", "locations", "path"}`.

use serde::Serialize;
use serde_json::{Value, json};

/// A place in the GraphQL request text, one-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub column: usize,
}

impl From<graphql_parser::Pos> for Location {
    fn from(position: graphql_parser::Pos) -> Self {
        Self {
            line: position.line,
            column: position.column,
        }
    }
}

/// One entry of a response's `errors` list.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct GraphqlError {
    /// What went wrong, naming the field, argument or variable.
    pub message: String,
    /// Where in the request text, when known.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    /// The response path of the failing field (keys and list indexes), when known.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<Value>,
}

impl GraphqlError {
    /// An error with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            locations: Vec::new(),
            path: Vec::new(),
        }
    }

    /// This error, located at `location`.
    pub fn at(mut self, location: Location) -> Self {
        self.locations.push(location);
        self
    }

    /// This error, for the response path `path`.
    pub fn with_path(mut self, path: Vec<Value>) -> Self {
        self.path = path;
        self
    }

    /// This error as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({ "message": self.message }))
    }
}

/// A response body that carries only `errors` (the request never reached execution).
pub fn errors_body(errors: &[GraphqlError]) -> Value {
    json!({ "errors": errors.iter().map(GraphqlError::to_json).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_locations_and_path_only_when_known() {
        let bare = GraphqlError::new("boom").to_json();
        assert_eq!(bare, json!({"message": "boom"}));
        let full = GraphqlError::new("boom")
            .at(Location { line: 2, column: 5 })
            .with_path(vec![json!("a"), json!(0)])
            .to_json();
        assert_eq!(
            full,
            json!({"message": "boom", "locations": [{"line": 2, "column": 5}], "path": ["a", 0]})
        );
    }
}
