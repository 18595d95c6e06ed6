//! The `Action` trait: what the engine knows of an action type.
//!
//! An action type has a name (`kong.target`), a typed argument struct whose
//! JSON Schema checks `with:`, an effect declaration, and the operations the
//! executor calls. The engine never knows which gateway or host an action talks to.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;

/// Whether an action changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// Never changes anything.
    Read,
    /// Changes state.
    Write,
    /// Reads or writes depending on its arguments (see [`Effect::read_when`]).
    Conditional,
}

/// An action type's declared effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Effect {
    /// Read, write, or depending on arguments.
    pub kind: EffectKind,
    /// Applying twice leaves the same state as applying once.
    pub idempotent: bool,
    /// Has an undo.
    pub reversible: bool,
    /// For conditional effects: when the action only reads (for humans).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_when: Option<&'static str>,
}

impl Effect {
    /// Never changes anything.
    pub const READ: Effect = Effect {
        kind: EffectKind::Read,
        idempotent: true,
        reversible: false,
        read_when: None,
    };

    /// Changes state; neither idempotent nor reversible unless marked.
    pub const fn write() -> Effect {
        Effect {
            kind: EffectKind::Write,
            idempotent: false,
            reversible: false,
            read_when: None,
        }
    }

    /// Reads when the condition holds (described for humans), writes otherwise.
    pub const fn read_when(condition: &'static str) -> Effect {
        Effect {
            kind: EffectKind::Conditional,
            idempotent: false,
            reversible: false,
            read_when: Some(condition),
        }
    }

    /// Marks the write as idempotent.
    pub const fn idempotent(mut self) -> Effect {
        self.idempotent = true;
        self
    }

    /// Marks the write as reversible.
    pub const fn reversible(mut self) -> Effect {
        self.reversible = true;
        self
    }

    /// The catalogue's short notation: R, W, W I U, R/W.
    pub fn letters(&self) -> String {
        let mut letters = match self.kind {
            EffectKind::Read => "R".to_owned(),
            EffectKind::Write => "W".to_owned(),
            EffectKind::Conditional => "R/W".to_owned(),
        };
        if self.kind != EffectKind::Read {
            if self.idempotent {
                letters.push_str(" I");
            }
            if self.reversible {
                letters.push_str(" U");
            }
        }
        letters
    }
}

/// What an action runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "type")]
pub enum TargetKind {
    /// Nothing in the environment (local computation or a URL in its arguments).
    None,
    /// A host of the environment (`on:` names one).
    Host,
    /// A gateway of the given `type:` (`on:` names one, or the only one of that type).
    Gateway(&'static str),
}

/// The static description of an action type.
#[derive(Debug, Clone)]
pub struct ActionSpec {
    /// Type name, as written in `action:`.
    pub name: &'static str,
    /// The family it belongs to (core, http, host, kong, layer7).
    pub family: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Its effect.
    pub effect: Effect,
    /// What it runs against.
    pub target: TargetKind,
    /// Names of the outputs it returns.
    pub outputs: &'static [&'static str],
    /// JSON Schema of its `with:` arguments.
    pub arguments: Arc<serde_json::Value>,
}

impl ActionSpec {
    /// Describes an action whose arguments are the struct `A`.
    pub fn new<A: JsonSchema>(
        name: &'static str,
        family: &'static str,
        summary: &'static str,
        effect: Effect,
    ) -> Self {
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<A>();
        Self {
            name,
            family,
            summary,
            effect,
            target: TargetKind::None,
            outputs: &[],
            arguments: Arc::new(schema.to_value()),
        }
    }

    /// Sets what the action runs against.
    pub fn target(mut self, target: TargetKind) -> Self {
        self.target = target;
        self
    }

    /// Names its outputs.
    pub fn outputs(mut self, outputs: &'static [&'static str]) -> Self {
        self.outputs = outputs;
        self
    }
}

/// Why an action could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The action is registered (its arguments are checked) but this build cannot run it yet.
    #[error("action `{action}` is not available in this build: {reason}")]
    NotAvailable {
        /// The action type.
        action: &'static str,
        /// What is missing.
        reason: &'static str,
    },
    /// The arguments did not match the action's type after templates were rendered.
    #[error("invalid arguments for `{action}`: {message}")]
    InvalidArguments {
        /// The action type.
        action: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The action ran and failed.
    #[error("{message}")]
    Failed {
        /// What happened.
        message: String,
    },
}

/// What the executor tells an action about the step it runs.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The step's runtime id (`upgrade[dp1].drain`).
    pub step_id: String,
    /// Whether this is a dry run: the action must not change anything.
    pub dry_run: bool,
}

/// What an applied step returns.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The step's outputs, readable as `steps.<id>.outputs`.
    pub outputs: serde_json::Map<String, serde_json::Value>,
    /// For reversible actions: what `undo` needs to restore the previous state.
    pub undo: Option<serde_json::Value>,
}

/// An action type the engine can run.
#[async_trait::async_trait]
pub trait Action: Send + Sync {
    /// Its static description.
    fn spec(&self) -> &ActionSpec;

    /// Its effect for these arguments (e.g. `http` GET reads, POST writes).
    fn effect_for(&self, _arguments: &serde_json::Value) -> Effect {
        self.spec().effect
    }

    /// Whether this build can run it (every registered action checks its arguments).
    fn is_available(&self) -> bool {
        true
    }

    /// Performs the action with rendered arguments.
    async fn apply(
        &self,
        context: &StepContext,
        arguments: serde_json::Value,
    ) -> Result<Applied, ActionError>;
}
