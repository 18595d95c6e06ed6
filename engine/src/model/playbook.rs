//! The playbook format, version 1: the document as written and the checked model.
//!
//! `*Doc` types mirror the YAML exactly (serde + JSON Schema); the loader turns
//! them into [`Playbook`] and [`Step`], resolving defaults and step kinds.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::template_text::{Setting, TemplateText};
use crate::de::Spanned;
use crate::node::Node;
use crate::source::Span;

/// The playbook format version this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// Default number of steps in flight.
pub const DEFAULT_CONCURRENCY: u32 = 16;

/// A playbook as written in YAML.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "runsheet playbook",
    description = "A runsheet playbook (format version 1)."
)]
pub struct PlaybookDoc {
    /// Format version; must be 1.
    pub runsheet: Spanned<u32>,
    /// Name of the playbook: lowercase letters, digits, `-` and `_`.
    pub name: Spanned<String>,
    /// What the playbook does, for humans.
    #[serde(default)]
    pub description: Option<String>,
    /// Typed parameters, set with `--set k=v` or `--vars-file F`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, InputSpec>")]
    pub inputs: IndexMap<Spanned<String>, Node>,
    /// Derived values, templated, evaluated once in order.
    #[serde(default)]
    pub vars: IndexMap<Spanned<String>, Node>,
    /// Most steps in flight at once (default 16).
    #[serde(default)]
    pub concurrency: Option<Spanned<u32>>,
    /// How far back to undo when a step fails.
    #[serde(default)]
    pub rollback: Option<Spanned<RollbackPolicy>>,
    /// What happens when the change window ends with work left (default `rollback`).
    #[serde(default)]
    pub window_end: Option<Spanned<WindowEndPolicy>>,
    /// The steps of the DAG.
    #[schemars(with = "Vec<StepDoc>")]
    pub steps: Spanned<Vec<Node>>,
    /// Steps that always run last, even after a failure or rollback.
    #[serde(default)]
    #[schemars(with = "Vec<StepDoc>")]
    pub finally: Option<Spanned<Vec<Node>>>,
    /// What the run publishes when it ends (dotenv, JSON and closure reports): name → template
    /// over `steps.<id>.outputs`, `inputs`, `vars` and `env`.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}))]
    pub outputs: IndexMap<Spanned<String>, Node>,
}

/// One step as written in YAML: an action, a group, or a `for_each` body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDoc {
    /// Identifier, unique in its scope.
    pub id: Spanned<String>,
    /// Label for humans.
    #[serde(default)]
    pub name: Option<String>,
    /// The registered action type to run.
    #[serde(default)]
    pub action: Option<Spanned<String>>,
    /// Arguments of the action, checked against its schema.
    #[serde(default, rename = "with")]
    pub with: Option<Node>,
    /// Steps this one waits for; absent means the previous step, `[]` means none.
    #[serde(default)]
    pub needs: Option<Spanned<Vec<Spanned<String>>>>,
    /// Skip the step unless this is true.
    #[serde(default)]
    pub when: Option<TemplateText>,
    /// The host or gateway the step runs against.
    #[serde(default)]
    pub on: Option<TemplateText>,
    /// Longest time an attempt may take.
    #[serde(default)]
    pub timeout: Option<Setting<Duration>>,
    /// Attempts after the first failure.
    #[serde(default)]
    pub retries: Option<Setting<u32>>,
    /// Wait before the first retry; doubles each time (default 2s).
    #[serde(default)]
    pub retry_delay: Option<Setting<Duration>>,
    /// Poll the action until this is true, within the timeout.
    #[serde(default)]
    pub until: Option<TemplateText>,
    /// A savepoint: work before it is kept on failure and `resume` restarts after it.
    #[serde(default)]
    pub checkpoint: Option<Spanned<bool>>,
    /// `auto`, `none`, or the ids of steps that undo this one.
    #[serde(default)]
    pub rollback: Option<Spanned<StepRollback>>,
    /// Carry on when this step fails.
    #[serde(default)]
    pub continue_on_error: Option<Spanned<bool>>,
    /// Mask this step's outputs everywhere.
    #[serde(default)]
    pub sensitive: Option<Spanned<bool>>,
    /// A list to run the body once per item.
    #[serde(default)]
    pub for_each: Option<TemplateText>,
    /// Name of the item variable in the body (default `item`).
    #[serde(default, rename = "as")]
    pub as_name: Option<Spanned<String>>,
    /// Most items in flight; the next batch starts when the previous succeeded.
    #[serde(default)]
    pub batch: Option<Setting<u32>>,
    /// Failed items tolerated before the step fails (default 0).
    #[serde(default)]
    pub max_failures: Option<Setting<u32>>,
    /// The body: a group, or what runs per item of `for_each`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<StepDoc>>")]
    pub steps: Option<Spanned<Vec<Node>>>,
}

/// A typed parameter of the playbook.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The value's type.
    #[serde(rename = "type")]
    pub kind: Spanned<InputType>,
    /// What the input is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Must be given (unless it has a default).
    #[serde(default)]
    pub required: bool,
    /// Value used when none is given.
    #[serde(default)]
    pub default: Option<Node>,
    /// Regular expression a string must match.
    #[serde(default)]
    pub pattern: Option<Spanned<String>>,
    /// Smallest allowed number (or list length).
    #[serde(default)]
    pub minimum: Option<Spanned<f64>>,
    /// Largest allowed number (or list length).
    #[serde(default)]
    pub maximum: Option<Spanned<f64>>,
    /// The allowed values.
    #[serde(default, rename = "enum")]
    pub allowed: Option<Spanned<Vec<Node>>>,
}

/// The type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A duration such as "90s".
    Duration,
    /// A list of values.
    List,
    /// A mapping of names to values.
    Map,
    /// The name of a secret, resolved through `secret()` and never printed.
    Secret,
}

impl InputType {
    /// The type's name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Duration => "duration",
            InputType::List => "list",
            InputType::Map => "map",
            InputType::Secret => "secret",
        }
    }
}

/// How far back a failed run undoes its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RollbackPolicy {
    /// Back to the last checkpoint every failed branch passed.
    #[default]
    ToCheckpoint,
    /// Back to the start.
    All,
    /// Undo nothing.
    None,
}

/// What a run does when its change window ends with work left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowEndPolicy {
    /// Finish what is in flight, then roll back per the `rollback` policy.
    #[default]
    Rollback,
    /// Finish what is in flight and pause (exit 4); `resume` continues in the next window.
    Pause,
}

/// What undoes a step when its run rolls back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StepRollback {
    /// The action's own undo record.
    Auto,
    /// Nothing.
    None,
    /// These steps instead (by id).
    Steps(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for StepRollback {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RollbackVisitor;
        impl<'de> Visitor<'de> for RollbackVisitor {
            type Value = StepRollback;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`auto`, `none`, a step id or a list of step ids")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StepRollback, E> {
                Ok(match v {
                    "auto" => StepRollback::Auto,
                    "none" => StepRollback::None,
                    id => StepRollback::Steps(vec![Spanned::new(id.to_owned(), Span::default())]),
                })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StepRollback, A::Error> {
                let mut ids = Vec::new();
                while let Some(id) = seq.next_element::<Spanned<String>>()? {
                    ids.push(id);
                }
                if ids.is_empty() {
                    return Err(de::Error::custom(
                        "an empty rollback list; write `rollback: none` to undo nothing",
                    ));
                }
                Ok(StepRollback::Steps(ids))
            }
        }
        deserializer.deserialize_any(RollbackVisitor)
    }
}

impl JsonSchema for StepRollback {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StepRollback".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`auto` (the action's undo), `none`, or the ids of steps that undo this one.",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1}
            ]
        })
    }
}

/// A loaded, structurally checked playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// Format version as written.
    pub version: Spanned<u32>,
    /// Name of the playbook.
    pub name: Spanned<String>,
    /// What it does.
    pub description: Option<String>,
    /// Typed parameters in declaration order.
    pub inputs: IndexMap<Spanned<String>, InputSpec>,
    /// Inputs declared but unreadable (already reported); templates may name them.
    pub unreadable_inputs: Vec<String>,
    /// Derived values in declaration order.
    pub vars: IndexMap<Spanned<String>, Node>,
    /// Most steps in flight.
    pub concurrency: u32,
    /// How far back to undo on failure.
    pub rollback: RollbackPolicy,
    /// What to do at the change window's end.
    pub window_end: WindowEndPolicy,
    /// The main steps.
    pub steps: Vec<Step>,
    /// Steps that always run last.
    pub finally: Vec<Step>,
    /// Values published when the run ends, in declaration order.
    pub outputs: IndexMap<Spanned<String>, Node>,
}

/// One checked step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Identifier, unique in its scope.
    pub id: Spanned<String>,
    /// Scoped path such as `upgrade.drain` (runtime ids add the item: `upgrade[dp1].drain`).
    pub path: String,
    /// Label for humans.
    pub name: Option<String>,
    /// What the step does.
    pub kind: StepKind,
    /// What it waits for.
    pub needs: Needs,
    /// Run only when true.
    pub when: Option<TemplateText>,
    /// Host or gateway it runs against.
    pub on: Option<TemplateText>,
    /// Longest time an attempt may take.
    pub timeout: Option<Setting<Duration>>,
    /// Attempts after the first failure.
    pub retries: Option<Setting<u32>>,
    /// Wait before the first retry (doubling).
    pub retry_delay: Option<Setting<Duration>>,
    /// Poll until true.
    pub until: Option<TemplateText>,
    /// Whether the step is a savepoint.
    pub checkpoint: bool,
    /// What undoes it.
    pub rollback: Option<Spanned<StepRollback>>,
    /// Whether its failure is tolerated.
    pub continue_on_error: bool,
    /// Whether its outputs are masked.
    pub sensitive: bool,
    /// Where the step's mapping starts (its `id:` key).
    pub span: Span,
}

/// Dependencies of a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Needs {
    /// `needs` absent: the step listed before it (none for the first).
    Previous,
    /// `needs` given: exactly these sibling ids (possibly none).
    Explicit(Spanned<Vec<Spanned<String>>>),
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Runs one action.
    Action {
        /// The action type.
        action: Spanned<String>,
        /// Its arguments, as written.
        with: Option<Node>,
    },
    /// Runs its body once.
    Group {
        /// The body.
        steps: Vec<Step>,
    },
    /// Runs its body once per item.
    ForEach {
        /// The list to iterate.
        items: TemplateText,
        /// Name of the item variable.
        as_name: Spanned<String>,
        /// Most items in flight (default: all).
        batch: Option<Setting<u32>>,
        /// Failed items tolerated (default 0).
        max_failures: Option<Setting<u32>>,
        /// The body.
        steps: Vec<Step>,
    },
}

impl Step {
    /// The body, for groups and `for_each` steps.
    pub fn body(&self) -> &[Step] {
        match &self.kind {
            StepKind::Action { .. } => &[],
            StepKind::Group { steps } | StepKind::ForEach { steps, .. } => steps,
        }
    }

    /// The action type, for action steps.
    pub fn action(&self) -> Option<&Spanned<String>> {
        match &self.kind {
            StepKind::Action { action, .. } => Some(action),
            _ => None,
        }
    }
}

impl Playbook {
    /// Every step, depth first in document order, with finally steps last.
    pub fn all_steps(&self) -> Vec<&Step> {
        fn collect<'a>(steps: &'a [Step], out: &mut Vec<&'a Step>) {
            for step in steps {
                out.push(step);
                collect(step.body(), out);
            }
        }
        let mut out = Vec::new();
        collect(&self.steps, &mut out);
        collect(&self.finally, &mut out);
        out
    }
}
