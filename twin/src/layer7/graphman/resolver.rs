//! The contract between Graphman and a store: [`GraphmanResolver`] answers top-level fields
//! with full JSON; the request's options ([`RequestOptions`]) and variables come in a
//! [`Context`].

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::document::Field;

/// Answers Graphman's top-level fields.
///
/// `query` and `mutate` return the field's full result (every modelled field of each object,
/// unset ones as `null`, optionally `__typename`); the executor projects it onto the
/// request's selection. A mutation request runs every mutation field in order against a
/// clone of the resolver and swaps the clone in only when no field failed (a [`FieldError`]
/// or an `ERROR` status in a payload) and the request is not `?test=true`; so `mutate` may
/// change `self` freely and need not undo anything.
pub trait GraphmanResolver: Clone {
    /// Resolves query field `field` (its name, arguments and selection).
    fn query(&self, field: &Field, context: &Context<'_>) -> Result<Value, FieldError>;

    /// Applies mutation field `field` and returns its payload (see [`super::status`]).
    fn mutate(&mut self, field: &Field, context: &Context<'_>) -> Result<Value, FieldError>;
}

/// What a resolver knows of the request besides the field.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The URL query options and the passphrase header.
    pub options: &'a RequestOptions,
    /// The request's `variables` as sent (bundles travel here, with their `properties`).
    pub variables: &'a Map<String, Value>,
}

/// The request-level options of a Graphman call (reference §2.1).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestOptions {
    /// `?test=true`: run the mutation, report, commit nothing.
    pub test: bool,
    /// `?activate=` (default `true`): whether new policy revisions become active.
    pub activate: bool,
    /// `?comment=`: the label of new policy revisions.
    pub comment: Option<String>,
    /// `?forceDelete=true`: delete non-empty folders.
    pub force_delete: bool,
    /// `x-l7-passphrase` (or `l7-passphrase`), decoded from base64.
    pub passphrase: Option<Passphrase>,
    /// Every URL query parameter as sent, for options not modelled above
    /// (`migratePolicyRevisions`, `replaceAllMatchingCertChain`, ...).
    pub parameters: Vec<(String, String)>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            test: false,
            activate: true,
            comment: None,
            force_delete: false,
            passphrase: None,
            parameters: Vec::new(),
        }
    }
}

impl RequestOptions {
    /// The first value of URL query parameter `name`.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether boolean URL query parameter `name` is `true`.
    pub fn flag(&self, name: &str) -> bool {
        self.parameter(name)
            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
    }
}

/// The passphrase that protects keys and secrets in bundles; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl Passphrase {
    /// Wraps a decoded passphrase.
    pub fn new(passphrase: impl Into<String>) -> Self {
        Self(passphrase.into())
    }

    /// The passphrase itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Passphrase(<hidden>)")
    }
}

/// Why a top-level field failed; becomes one GraphQL error located at the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    /// The root type has no such field (or the twin does not model it).
    #[error("Cannot query field \"{field}\" on type \"{root}\".")]
    UnknownField {
        /// The field's name.
        field: String,
        /// `Query` or `Mutation`.
        root: &'static str,
    },
    /// A required argument is absent or null.
    #[error("Field \"{field}\" argument \"{argument}\" is required, but it was not provided.")]
    MissingArgument {
        /// The field's name.
        field: String,
        /// The argument's name.
        argument: String,
    },
    /// An argument does not have the expected shape.
    #[error("Field \"{field}\" argument \"{argument}\" is invalid: {reason}")]
    InvalidArgument {
        /// The field's name.
        field: String,
        /// The argument's name.
        argument: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The field ran and failed (a store conflict, an unsupported combination, ...).
    #[error("{0}")]
    Failed(String),
}

impl FieldError {
    /// The error for a field the resolver does not know, on `field`'s root type.
    pub fn unknown(field: &Field, root: &'static str) -> Self {
        Self::UnknownField {
            field: field.name.clone(),
            root,
        }
    }
}

/// Typed access to a field's arguments, for resolvers.
impl Field {
    /// Argument `name`, absent or `null` as `None`.
    pub fn argument_value(&self, name: &str) -> Option<&Value> {
        self.arguments.get(name).filter(|value| !value.is_null())
    }

    /// Argument `name` decoded as `T`; absent or `null` as `None`.
    pub fn optional_argument<T: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, FieldError> {
        self.argument_value(name)
            .map(|value| {
                T::deserialize(value).map_err(|error| FieldError::InvalidArgument {
                    field: self.name.clone(),
                    argument: name.to_owned(),
                    reason: error.to_string(),
                })
            })
            .transpose()
    }

    /// Argument `name` decoded as `T`; absent or `null` is [`FieldError::MissingArgument`].
    pub fn argument<T: DeserializeOwned>(&self, name: &str) -> Result<T, FieldError> {
        self.optional_argument(name)?
            .ok_or_else(|| FieldError::MissingArgument {
                field: self.name.clone(),
                argument: name.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::layer7::graphman::document::parse;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn field(query: &str) -> Result<Field, Box<dyn std::error::Error>> {
        parse(query, None, &Map::new())?
            .fields
            .pop()
            .ok_or_else(|| "no field".into())
    }

    #[test]
    fn typed_arguments_name_the_field_and_argument() -> TestResult {
        let field =
            field(r#"{ clusterPropertyByName(name: "a", count: "x", none: null) { name } }"#)?;
        assert_eq!(field.argument::<String>("name")?, "a");
        assert_eq!(field.optional_argument::<String>("none")?, None);
        assert_eq!(
            field.argument::<String>("none").map_err(|error| error.to_string()),
            Err("Field \"clusterPropertyByName\" argument \"none\" is required, but it was not provided.".to_owned())
        );
        let invalid = field.argument::<u32>("count").err().ok_or("no error")?;
        assert!(
            matches!(invalid, FieldError::InvalidArgument { ref argument, .. } if argument == "count")
        );
        assert_eq!(field.argument_value("name"), Some(&json!("a")));
        Ok(())
    }

    #[test]
    fn passphrase_never_prints() {
        let options = RequestOptions {
            passphrase: Some(Passphrase::new("s3cret")),
            ..RequestOptions::default()
        };
        let printed = format!("{options:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert_eq!(
            options.passphrase.map(|p| p.expose().to_owned()),
            Some("s3cret".to_owned())
        );
    }

    #[test]
    fn unknown_field_message_names_field_and_root() -> TestResult {
        let field = field("{ nope }")?;
        assert_eq!(
            FieldError::unknown(&field, "Query").to_string(),
            "Cannot query field \"nope\" on type \"Query\"."
        );
        Ok(())
    }
}
