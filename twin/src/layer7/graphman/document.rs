//! The GraphQL request text parsed into the one [`Operation`] to run: its top-level fields
//! with arguments resolved (variables substituted, defaults applied, literals as JSON) and
//! selection sets with fragments inlined and `@skip`/`@include` applied.
//!
//! Parsing uses `graphql-parser`, whose tokenizer refuses nesting deeper than 50 brackets;
//! with fragments inlined, nesting and size are bounded here ([`MAX_DEPTH`], [`MAX_SELECTIONS`]).

use std::collections::{BTreeMap, BTreeSet};

use graphql_parser::query::{
    self as ast, Definition, OperationDefinition, TypeCondition, VariableDefinition,
};
use serde_json::{Map, Number, Value};

use super::error::{GraphqlError, Location};

/// The deepest nesting of selection sets once fragments are inlined (fields, inline
/// fragments and fragment spreads each add a level).
pub const MAX_DEPTH: usize = 64;

/// The most selections (fields and fragments, after inlining) one operation may hold.
pub const MAX_SELECTIONS: usize = 20_000;

/// Whether an operation reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// `query` (or a bare selection set).
    Query,
    /// `mutation`.
    Mutation,
}

impl OperationKind {
    /// The root type's name, `Query` or `Mutation`.
    pub fn root_type(self) -> &'static str {
        match self {
            Self::Query => "Query",
            Self::Mutation => "Mutation",
        }
    }
}

/// The operation a request runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Query or mutation.
    pub kind: OperationKind,
    /// The operation's name, if it has one.
    pub name: Option<String>,
    /// Top-level fields in request order, fragments on the root type inlined.
    pub fields: Vec<Field>,
}

/// A selected field with its arguments resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The alias the response uses instead of the name, if any.
    pub alias: Option<String>,
    /// The schema field's name.
    pub name: String,
    /// Arguments as JSON: variables substituted; an argument bound to an absent variable is
    /// left out.
    pub arguments: Map<String, Value>,
    /// The sub-selection (empty for a leaf).
    pub selection: SelectionSet,
    /// Where the field starts in the request text.
    pub location: Location,
}

impl Field {
    /// The key of this field in the response: its alias, else its name.
    pub fn response_key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// The selections inside braces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SelectionSet {
    /// Fields and fragments in request order.
    pub items: Vec<Selection>,
}

impl SelectionSet {
    /// Whether nothing is selected (a leaf field).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One selection.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// A field.
    Field(Field),
    /// An inline fragment or an inlined named fragment.
    Fragment(Fragment),
}

/// A fragment's selections and the type they apply to.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// `on Type`, if given.
    pub type_condition: Option<String>,
    /// The fragment's selections.
    pub selection: SelectionSet,
}

/// Parses `query` and picks the operation to run.
pub fn parse(
    query: &str,
    operation_name: Option<&str>,
    variables: &Map<String, Value>,
) -> Result<Operation, GraphqlError> {
    let document = ast::parse_query::<&str>(query).map_err(|error| syntax_error(&error))?;
    let mut fragments = BTreeMap::new();
    let mut operations = Vec::new();
    for definition in &document.definitions {
        match definition {
            Definition::Fragment(fragment) => {
                if fragments.insert(fragment.name, fragment).is_some() {
                    return Err(GraphqlError::new(format!(
                        "There can be only one fragment named \"{}\".",
                        fragment.name
                    ))
                    .at(fragment.position.into()));
                }
            }
            Definition::Operation(operation) => operations.push(operation),
        }
    }
    let operation = select_operation(&operations, operation_name)?;
    let (kind, name, definitions, directives, selection, position) = match operation {
        OperationDefinition::SelectionSet(set) => (
            OperationKind::Query,
            None,
            &[][..],
            &[][..],
            set,
            set.span.0,
        ),
        OperationDefinition::Query(query) => (
            OperationKind::Query,
            query.name,
            &query.variable_definitions[..],
            &query.directives[..],
            &query.selection_set,
            query.position,
        ),
        OperationDefinition::Mutation(mutation) => (
            OperationKind::Mutation,
            mutation.name,
            &mutation.variable_definitions[..],
            &mutation.directives[..],
            &mutation.selection_set,
            mutation.position,
        ),
        OperationDefinition::Subscription(subscription) => {
            return Err(
                GraphqlError::new("Subscriptions are not supported by Graphman.")
                    .at(subscription.position.into()),
            );
        }
    };
    if let Some(directive) = directives.first() {
        return Err(unknown_directive(directive));
    }
    let mut builder = Builder {
        variables: bind_variables(definitions, variables)?,
        declared: definitions
            .iter()
            .map(|definition| definition.name.to_owned())
            .collect(),
        fragments,
        selections: 0,
    };
    let root = builder.selection_set(selection, 0)?;
    let mut fields = Vec::new();
    flatten_root(root, kind, &mut fields);
    if fields.is_empty() {
        return Err(GraphqlError::new("The operation selects no field.").at(position.into()));
    }
    Ok(Operation {
        kind,
        name: name.map(str::to_owned),
        fields,
    })
}

/// The operation named `name`, or the only one.
fn select_operation<'d, 'a>(
    operations: &[&'d OperationDefinition<'a, &'a str>],
    name: Option<&str>,
) -> Result<&'d OperationDefinition<'a, &'a str>, GraphqlError> {
    match name {
        Some(wanted) => operations
            .iter()
            .copied()
            .find(|operation| operation_name(operation) == Some(wanted))
            .ok_or_else(|| GraphqlError::new(format!("Unknown operation named \"{wanted}\"."))),
        None => match operations {
            [only] => Ok(only),
            [] => Err(GraphqlError::new("The document holds no operation.")),
            _ => Err(GraphqlError::new(
                "Must provide operation name if query contains multiple operations.",
            )),
        },
    }
}

/// An operation's name, if it has one.
fn operation_name<'a>(operation: &OperationDefinition<'a, &'a str>) -> Option<&'a str> {
    match operation {
        OperationDefinition::SelectionSet(_) => None,
        OperationDefinition::Query(query) => query.name,
        OperationDefinition::Mutation(mutation) => mutation.name,
        OperationDefinition::Subscription(subscription) => subscription.name,
    }
}

/// The root fields: root selections with fragments on the root type (or untyped) inlined.
fn flatten_root(set: SelectionSet, kind: OperationKind, fields: &mut Vec<Field>) {
    for item in set.items {
        match item {
            Selection::Field(field) => fields.push(field),
            Selection::Fragment(fragment) => {
                let applies = fragment
                    .type_condition
                    .as_deref()
                    .is_none_or(|condition| condition == kind.root_type());
                if applies {
                    flatten_root(fragment.selection, kind, fields);
                }
            }
        }
    }
}

/// Each declared variable's value: given, else its default; required ones must be given.
fn bind_variables<'a>(
    definitions: &[VariableDefinition<'a, &'a str>],
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, GraphqlError> {
    let mut bound = Map::new();
    for definition in definitions {
        let name = definition.name;
        let required = matches!(definition.var_type, ast::Type::NonNullType(_));
        let value = match (given.get(name), &definition.default_value) {
            (Some(value), _) => Some(value.clone()),
            (None, Some(default)) => Some(constant(default).map_err(|message| {
                GraphqlError::new(format!(
                    "Variable \"${name}\" has an invalid default: {message}"
                ))
                .at(definition.position.into())
            })?),
            (None, None) => None,
        };
        match value {
            None if required => {
                return Err(GraphqlError::new(format!(
                    "Variable \"${name}\" of required type \"{}\" was not provided.",
                    type_name(&definition.var_type)
                ))
                .at(definition.position.into()));
            }
            Some(Value::Null) if required => {
                return Err(GraphqlError::new(format!(
                    "Variable \"${name}\" of non-null type \"{}\" must not be null.",
                    type_name(&definition.var_type)
                ))
                .at(definition.position.into()));
            }
            Some(value) => {
                bound.insert(name.to_owned(), value);
            }
            None => {}
        }
    }
    Ok(bound)
}

/// A type reference as written (`[String!]!`).
fn type_name<'a>(reference: &ast::Type<'a, &'a str>) -> String {
    match reference {
        ast::Type::NamedType(name) => (*name).to_owned(),
        ast::Type::ListType(inner) => format!("[{}]", type_name(inner)),
        ast::Type::NonNullType(inner) => format!("{}!", type_name(inner)),
    }
}

/// A literal without variables (a variable's default) as JSON.
fn constant<'a>(value: &ast::Value<'a, &'a str>) -> Result<Value, String> {
    literal(value, &mut |name| {
        Err(format!(
            "a default value cannot use the variable \"${name}\""
        ))
    })
}

/// A literal as JSON; `variable` answers `$name` (`Ok(None)` when it has no value).
fn literal<'a>(
    value: &ast::Value<'a, &'a str>,
    variable: &mut dyn FnMut(&str) -> Result<Option<Value>, String>,
) -> Result<Value, String> {
    Ok(match value {
        ast::Value::Variable(name) => variable(name)?.unwrap_or(Value::Null),
        ast::Value::Int(number) => number.as_i64().map(Value::from).unwrap_or(Value::Null),
        ast::Value::Float(number) => Number::from_f64(*number)
            .map(Value::Number)
            .ok_or_else(|| format!("{number} is not a finite number"))?,
        ast::Value::String(text) => Value::String(text.clone()),
        ast::Value::Boolean(flag) => Value::Bool(*flag),
        ast::Value::Null => Value::Null,
        ast::Value::Enum(name) => Value::String((*name).to_owned()),
        ast::Value::List(items) => Value::Array(
            items
                .iter()
                .map(|item| literal(item, variable))
                .collect::<Result<_, _>>()?,
        ),
        ast::Value::Object(entries) => {
            let mut object = Map::new();
            for (key, item) in entries {
                object.insert((*key).to_owned(), literal(item, variable)?);
            }
            Value::Object(object)
        }
    })
}

/// Turns parsed selections into [`SelectionSet`]s.
struct Builder<'d, 'a> {
    /// The operation's variables that have a value.
    variables: Map<String, Value>,
    /// Every variable the operation declares, with a value or not.
    declared: BTreeSet<String>,
    /// Named fragments of the document.
    fragments: BTreeMap<&'a str, &'d ast::FragmentDefinition<'a, &'a str>>,
    /// Selections built so far (bounded by [`MAX_SELECTIONS`]).
    selections: usize,
}

impl<'a> Builder<'_, 'a> {
    /// Builds a selection set nested `depth` levels deep.
    fn selection_set(
        &mut self,
        set: &ast::SelectionSet<'a, &'a str>,
        depth: usize,
    ) -> Result<SelectionSet, GraphqlError> {
        if depth > MAX_DEPTH {
            return Err(GraphqlError::new(format!(
                "The query nests selections deeper than {MAX_DEPTH} levels (a fragment cycle?)."
            ))
            .at(set.span.0.into()));
        }
        let mut items = Vec::with_capacity(set.items.len());
        for item in &set.items {
            self.selections += 1;
            if self.selections > MAX_SELECTIONS {
                return Err(GraphqlError::new(format!(
                    "The query is too large: more than {MAX_SELECTIONS} selections once fragments are inlined."
                )));
            }
            match item {
                ast::Selection::Field(field) => {
                    if self.included(&field.directives)? {
                        items.push(Selection::Field(self.field(field, depth)?));
                    }
                }
                ast::Selection::InlineFragment(fragment) => {
                    if self.included(&fragment.directives)? {
                        let type_condition = fragment
                            .type_condition
                            .as_ref()
                            .map(|TypeCondition::On(condition)| (*condition).to_owned());
                        items.push(Selection::Fragment(Fragment {
                            type_condition,
                            selection: self.selection_set(&fragment.selection_set, depth + 1)?,
                        }));
                    }
                }
                ast::Selection::FragmentSpread(spread) => {
                    if self.included(&spread.directives)? {
                        items.push(Selection::Fragment(self.spread(spread, depth)?));
                    }
                }
            }
        }
        Ok(SelectionSet { items })
    }

    /// A named fragment, inlined.
    fn spread(
        &mut self,
        spread: &ast::FragmentSpread<'a, &'a str>,
        depth: usize,
    ) -> Result<Fragment, GraphqlError> {
        let location = Location::from(spread.position);
        let name = spread.fragment_name;
        let definition = *self.fragments.get(name).ok_or_else(|| {
            GraphqlError::new(format!("Unknown fragment \"{name}\".")).at(location)
        })?;
        if let Some(directive) = definition.directives.first() {
            return Err(unknown_directive(directive));
        }
        let TypeCondition::On(condition) = definition.type_condition;
        Ok(Fragment {
            type_condition: Some(condition.to_owned()),
            selection: self.selection_set(&definition.selection_set, depth + 1)?,
        })
    }

    /// A field with its arguments resolved.
    fn field(
        &mut self,
        field: &ast::Field<'a, &'a str>,
        depth: usize,
    ) -> Result<Field, GraphqlError> {
        let location = Location::from(field.position);
        let mut arguments = Map::new();
        for (name, value) in &field.arguments {
            if let ast::Value::Variable(variable) = value
                && !self.variables.contains_key(*variable)
            {
                self.check_declared(variable, location)?;
                continue;
            }
            let resolved = self.resolve(value).map_err(|message| {
                GraphqlError::new(format!(
                    "Field \"{}\" argument \"{name}\": {message}",
                    field.name
                ))
                .at(location)
            })?;
            arguments.insert((*name).to_owned(), resolved);
        }
        Ok(Field {
            alias: field.alias.map(str::to_owned),
            name: field.name.to_owned(),
            arguments,
            selection: self.selection_set(&field.selection_set, depth + 1)?,
            location,
        })
    }

    /// A literal with the operation's variables substituted.
    fn resolve(&self, value: &ast::Value<'a, &'a str>) -> Result<Value, String> {
        literal(value, &mut |name| match self.variables.get(name) {
            Some(value) => Ok(Some(value.clone())),
            None if self.declared.contains(name) => Ok(None),
            None => Err(format!("variable \"${name}\" is not defined")),
        })
    }

    /// Fails unless `$name` is declared by the operation (it may lack a value).
    fn check_declared(&self, name: &str, location: Location) -> Result<(), GraphqlError> {
        if self.declared.contains(name) {
            Ok(())
        } else {
            Err(GraphqlError::new(format!("Variable \"${name}\" is not defined.")).at(location))
        }
    }

    /// Whether `@skip`/`@include` keep a selection; other directives are refused.
    fn included(&self, directives: &[ast::Directive<'a, &'a str>]) -> Result<bool, GraphqlError> {
        let mut keep = true;
        for directive in directives {
            let location = Location::from(directive.position);
            let skip_when = match directive.name {
                "skip" => true,
                "include" => false,
                _ => return Err(unknown_directive(directive)),
            };
            let condition = directive
                .arguments
                .iter()
                .find(|(name, _)| *name == "if")
                .map(|(_, value)| self.resolve(value))
                .transpose()
                .map_err(|message| {
                    GraphqlError::new(format!("Directive \"@{}\": {message}", directive.name))
                        .at(location)
                })?;
            let Some(Value::Bool(flag)) = condition else {
                return Err(GraphqlError::new(format!(
                    "Directive \"@{}\" argument \"if\" of type \"Boolean!\" is required.",
                    directive.name
                ))
                .at(location));
            };
            if flag == skip_when {
                keep = false;
            }
        }
        Ok(keep)
    }
}

/// A directive the twin does not know.
fn unknown_directive<'a>(directive: &ast::Directive<'a, &'a str>) -> GraphqlError {
    GraphqlError::new(format!("Unknown directive \"@{}\".", directive.name))
        .at(directive.position.into())
}

/// A parse failure as a GraphQL syntax error with its location.
fn syntax_error(error: &ast::ParseError) -> GraphqlError {
    // The parser's only output is text: "query parse error: Parse error at L:C\n<details>".
    let text = error.to_string();
    let text = text.strip_prefix("query parse error: ").unwrap_or(&text);
    let (head, details) = text.split_once('\n').unwrap_or((text, ""));
    let location = head
        .rsplit_once(" at ")
        .and_then(|(_, place)| place.split_once(':'))
        .and_then(|(line, column)| Some((line.parse().ok()?, column.parse().ok()?)))
        .map(|(line, column)| Location { line, column });
    let details: Vec<&str> = details.lines().filter(|line| !line.is_empty()).collect();
    let message = if details.is_empty() {
        format!("Syntax Error: {head}.")
    } else {
        format!("Syntax Error: {}.", details.join("; "))
    };
    let error = GraphqlError::new(message);
    match location {
        Some(location) => error.at(location),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn variables(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn only_field(operation: &Operation) -> Result<&Field, String> {
        match operation.fields.as_slice() {
            [field] => Ok(field),
            other => Err(format!("expected one field, got {other:?}")),
        }
    }

    #[test]
    fn resolves_arguments_variables_defaults_and_enums() -> TestResult {
        let query = r#"query Q($name: String!, $limit: Int = 5, $unset: String) {
            byName: clusterPropertyByName(name: $name, limit: $limit, kind: WEB_API,
                nested: {list: [1, 2.5, "x", null, true], inner: $name}, missing: $unset) { name }
        }"#;
        let operation = parse(query, None, &variables(json!({"name": "cluster.hostname"})))?;
        assert_eq!(operation.kind, OperationKind::Query);
        assert_eq!(operation.name.as_deref(), Some("Q"));
        let field = only_field(&operation)?;
        assert_eq!(field.name, "clusterPropertyByName");
        assert_eq!(field.response_key(), "byName");
        assert_eq!(
            Value::Object(field.arguments.clone()),
            json!({"name": "cluster.hostname", "limit": 5, "kind": "WEB_API",
                   "nested": {"list": [1, 2.5, "x", null, true], "inner": "cluster.hostname"}})
        );
        assert_eq!(
            field.location,
            Location {
                line: 2,
                column: 13
            }
        );
        Ok(())
    }

    #[test]
    fn required_variable_missing_or_null_is_an_error() {
        let query = "query ($name: String!) { clusterPropertyByName(name: $name) { name } }";
        let missing = parse(query, None, &Map::new());
        assert_eq!(
            missing.map_err(|error| error.message),
            Err("Variable \"$name\" of required type \"String!\" was not provided.".to_owned())
        );
        let null = parse(query, None, &variables(json!({"name": null})));
        assert!(null.is_err_and(|error| error.message.contains("must not be null")));
    }

    #[test]
    fn undeclared_variable_is_an_error() {
        let result = parse(
            "{ clusterPropertyByName(name: $name) { name } }",
            None,
            &Map::new(),
        );
        assert!(result.is_err_and(
            |error| error.message == "Variable \"$name\" is not defined."
                && error.locations == [Location { line: 1, column: 3 }]
        ));
    }

    #[test]
    fn syntax_errors_carry_a_location() {
        let result = parse("query {\n  field1([x])\n}", None, &Map::new());
        let error = result.err();
        assert_eq!(
            error.as_ref().map(|error| error.locations.clone()),
            Some(vec![Location {
                line: 2,
                column: 10
            }])
        );
        assert!(error.is_some_and(|error| error.message.starts_with("Syntax Error: Unexpected")));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let query = format!("{{ a {} }}", "{ b ".repeat(5_000) + &"}".repeat(5_000));
        let result = parse(&query, None, &Map::new());
        assert!(result.is_err_and(|error| error.message.contains("Recursion limit")));
    }

    #[test]
    fn fragments_are_inlined_and_cycles_refused() -> TestResult {
        let query =
            "query { ...Root } fragment Root on Query { keys { ...K ... on Key { alias } } }
                     fragment K on Key { goid }";
        let operation = parse(query, None, &Map::new())?;
        let field = only_field(&operation)?;
        assert_eq!(field.name, "keys");
        assert_eq!(field.selection.items.len(), 2);
        let cycle = "{ keys { ...A } } fragment A on Key { ...B } fragment B on Key { ...A }";
        assert!(
            parse(cycle, None, &Map::new()).is_err_and(|error| error.message.contains("cycle"))
        );
        let unknown = parse("{ keys { ...Nope } }", None, &Map::new());
        assert!(unknown.is_err_and(|error| error.message == "Unknown fragment \"Nope\"."));
        Ok(())
    }

    #[test]
    fn exponential_fragments_are_bounded() {
        let mut query = String::from("{ a { ...F0 } }\n");
        for level in 0..20 {
            query.push_str(&format!(
                "fragment F{level} on T {{ ...F{next} ...F{next} }}\n",
                next = level + 1
            ));
        }
        query.push_str("fragment F20 on T { x }\n");
        let result = parse(&query, None, &Map::new());
        assert!(result.is_err_and(|error| error.message.contains("too large")));
    }

    #[test]
    fn skip_and_include_follow_variables() -> TestResult {
        let query = "query ($all: Boolean = false) { services { name policy @include(if: $all) { xml } goid @skip(if: true) } }";
        let operation = parse(query, None, &Map::new())?;
        assert_eq!(only_field(&operation)?.selection.items.len(), 1);
        let operation = parse(query, None, &variables(json!({"all": true})))?;
        assert_eq!(only_field(&operation)?.selection.items.len(), 2);
        let unknown = parse("{ services @cached { name } }", None, &Map::new());
        assert!(unknown.is_err_and(|error| error.message == "Unknown directive \"@cached\"."));
        Ok(())
    }

    #[test]
    fn picks_the_named_operation() -> TestResult {
        let query = "query A { nodeInfo { name } } mutation B { setClusterProperties(input: []) { status } }";
        let operation = parse(query, Some("B"), &Map::new())?;
        assert_eq!(operation.kind, OperationKind::Mutation);
        assert!(
            parse(query, None, &Map::new())
                .is_err_and(|error| error.message.starts_with("Must provide operation name"))
        );
        assert!(
            parse(query, Some("C"), &Map::new())
                .is_err_and(|error| error.message == "Unknown operation named \"C\".")
        );
        assert!(parse("subscription { x }", None, &Map::new()).is_err());
        Ok(())
    }
}
