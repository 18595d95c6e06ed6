//! The `Action` trait: what the engine knows of an action type.
//!
//! An action type has a name (`kong.target`), a typed argument struct whose
//! JSON Schema checks `with:`, an effect declaration, and the operations the
//! executor calls. The engine never knows which gateway or host an action talks to.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;

use crate::model::{Environment, Gateway, Host};

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
    /// Whether a read-only step of this type checks something (a verification in a
    /// runbook document); false for notes, waits, derived values and gates.
    pub verifies: bool,
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
            verifies: true,
        }
    }

    /// Marks a read-only action as one that checks nothing (a note, a wait, a gate).
    pub fn checks_nothing(mut self) -> Self {
        self.verifies = false;
        self
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
    /// The action failed after some of its writes took effect, and could not put them
    /// back: whatever the run's rollback does, a person must look at what is left.
    #[error("{message}")]
    PartiallyApplied {
        /// What happened.
        message: String,
        /// What is left changed, each item named for a person (no secrets).
        changes_left: Vec<String>,
    },
    /// A dry run asked a transport to write; the transport refused (a bug in the action).
    #[error("dry run refused a write: {what}")]
    DryRunWrite {
        /// The write that was refused (`POST https://...`, `rm -f /etc/...`).
        what: String,
    },
    /// The step waits for a person: the run pauses at this gate.
    #[error("waiting for approval at gate `{gate}`")]
    Paused {
        /// The gate's name.
        gate: String,
        /// The question shown to the approver.
        prompt: String,
    },
}

impl ActionError {
    /// A failure with this message.
    pub fn failed(message: impl Into<String>) -> Self {
        ActionError::Failed {
            message: message.into(),
        }
    }

    /// A failure that left `changes_left` changed (the action's own restore failed).
    pub fn partially_applied(message: impl Into<String>, changes_left: Vec<String>) -> Self {
        ActionError::PartiallyApplied {
            message: message.into(),
            changes_left,
        }
    }
}

/// The host, gateway or nothing that a step runs against, resolved from `on:`.
#[derive(Debug, Clone, Default)]
pub enum StepTarget {
    /// Nothing in the environment.
    #[default]
    None,
    /// A host of the environment.
    Host(Host),
    /// A gateway of the environment, by name.
    Gateway(String),
}

/// Asks a person (or the record of an earlier answer) whether a gate may pass.
#[async_trait::async_trait]
pub trait Approver: Send + Sync {
    /// The decision for a gate; `Pending` pauses the run.
    async fn decide(&self, gate: &str, prompt: &str) -> Decision;
}

/// An answer at an approval gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approved, by whom.
    Approved(String),
    /// Refused, by whom.
    Refused(String),
    /// Nobody can answer now: the run pauses.
    Pending,
}

/// Evaluates expressions and renders templates in the step's template context
/// (for `assert` and template files).
pub trait Evaluate: Send + Sync {
    /// The value of a minijinja expression.
    fn evaluate(&self, expression: &str) -> Result<serde_json::Value, String>;

    /// A whole text rendered as a template.
    fn render(&self, template: &str) -> Result<String, String>;
}

/// A run resource that holds something outside runsheet (connections to hosts):
/// the executor closes it when the run ends, on every path, whoever still holds it.
#[async_trait::async_trait]
pub trait Close: Send + Sync {
    /// Releases what the resource holds outside the process; says what it had to leave
    /// behind (a command still running on a host), for the operator.
    async fn close(&self) -> Vec<String>;
}

/// Values shared by every step of one run, by type: connection pools and clients.
#[derive(Default)]
pub struct Resources {
    map: std::sync::Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    closers: std::sync::Mutex<Vec<Arc<dyn Close>>>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resources")
    }
}

impl Resources {
    /// The run's value of type `T`, made by `init` on first use.
    pub fn get_or_init<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut map = match self.map.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(found) = map.get(&TypeId::of::<T>())
            && let Ok(value) = Arc::clone(found).downcast::<T>()
        {
            return value;
        }
        let value = Arc::new(init());
        map.insert(TypeId::of::<T>(), Arc::clone(&value) as Arc<dyn Any + Send + Sync>);
        value
    }

    /// The run's value of type `T`, made by `init` on first use and closed when the run ends.
    pub fn get_or_init_closed<T: Close + Any>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut made = false;
        let value = self.get_or_init(|| {
            made = true;
            init()
        });
        if made {
            let mut closers = match self.closers.lock() {
                Ok(closers) => closers,
                Err(poisoned) => poisoned.into_inner(),
            };
            closers.push(Arc::clone(&value) as Arc<dyn Close>);
        }
        value
    }

    /// Closes every value made by [`Resources::get_or_init_closed`], newest first;
    /// what they had to leave behind.
    pub async fn close(&self) -> Vec<String> {
        let closers = match self.closers.lock() {
            Ok(mut closers) => std::mem::take(&mut *closers),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        let mut left = Vec::new();
        for closer in closers.iter().rev() {
            left.extend(closer.close().await);
        }
        left
    }
}

/// What the executor tells an action about the step it runs.
#[derive(Clone)]
pub struct StepContext {
    /// The step's runtime id (`upgrade[dp1].drain`).
    pub step_id: String,
    /// Whether this is a dry run: the action must not change anything.
    pub dry_run: bool,
    /// What the step runs against.
    pub target: StepTarget,
    /// The environment of the run, if any.
    pub environment: Option<Arc<Environment>>,
    /// Directory of the playbook: relative paths in arguments start here.
    pub base_dir: PathBuf,
    /// The step's timeout, if any (the executor enforces it too).
    pub timeout: Option<std::time::Duration>,
    /// Values shared across the run's steps.
    pub resources: Arc<Resources>,
    /// Answers approval gates.
    pub approver: Arc<dyn Approver>,
    /// Evaluates expressions in the step's context.
    pub evaluator: Arc<dyn Evaluate>,
    /// Keeps in the journal the state a write replaces, before it writes.
    pub prepared: Prepared,
}

/// The journal's keeping of the state a write step replaces, written before the write,
/// and what an earlier attempt of the step kept when it was interrupted after it.
///
/// An idempotent write run again on resume would otherwise read its own earlier write
/// as the state it replaces (a drained weight as the weight to restore).
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    earlier: Option<serde_json::Value>,
    keeper: Option<tokio::sync::mpsc::UnboundedSender<(serde_json::Value, tokio::sync::oneshot::Sender<bool>)>>,
}

impl Prepared {
    /// A keeping that journals through `keeper`, with what an interrupted attempt kept.
    pub fn new(
        earlier: Option<serde_json::Value>,
        keeper: tokio::sync::mpsc::UnboundedSender<(serde_json::Value, tokio::sync::oneshot::Sender<bool>)>,
    ) -> Self {
        Self {
            earlier,
            keeper: Some(keeper),
        }
    }

    /// What an earlier, interrupted attempt of this step kept before its write.
    pub fn earlier(&self) -> Option<&serde_json::Value> {
        self.earlier.as_ref()
    }

    /// Keeps `state` (what the write replaces) durably in the journal; the write must not
    /// start when this fails. Without a journal (tests, tools) it keeps nothing.
    pub async fn keep(&self, state: serde_json::Value) -> Result<(), ActionError> {
        let Some(keeper) = &self.keeper else {
            return Ok(());
        };
        let (reply, kept) = tokio::sync::oneshot::channel();
        if keeper.send((state, reply)).is_ok() && kept.await == Ok(true) {
            return Ok(());
        }
        Err(ActionError::failed(
            "the state this write replaces could not be kept in the journal; nothing was written",
        ))
    }
}

impl std::fmt::Debug for StepContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("step_id", &self.step_id)
            .field("dry_run", &self.dry_run)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl StepContext {
    /// A context for running an action outside a playbook (tests, tools).
    pub fn detached(step_id: impl Into<String>, dry_run: bool) -> Self {
        Self {
            step_id: step_id.into(),
            dry_run,
            target: StepTarget::None,
            environment: None,
            base_dir: PathBuf::from("."),
            timeout: None,
            resources: Arc::default(),
            approver: Arc::new(NoApprover),
            evaluator: Arc::new(NoEvaluator),
            prepared: Prepared::default(),
        }
    }

    /// The host the step runs against, or an error naming the step.
    pub fn host(&self) -> Result<&Host, ActionError> {
        match &self.target {
            StepTarget::Host(host) => Ok(host),
            _ => Err(ActionError::failed(format!(
                "step `{}` needs a host: set `on:` to a host of the environment",
                self.step_id
            ))),
        }
    }

    /// The gateway the step runs against (its name and settings), or an error naming the step.
    ///
    /// The executor resolves `on:` to a gateway name ([`StepTarget::Gateway`]); this looks
    /// that name up in the run's environment, so that a gateway action reads its own
    /// connection settings without the engine knowing any gateway type.
    pub fn gateway(&self) -> Result<(&str, &Gateway), ActionError> {
        let StepTarget::Gateway(name) = &self.target else {
            return Err(ActionError::failed(format!(
                "step `{}` needs a gateway: set `on:` to a gateway of the environment",
                self.step_id
            )));
        };
        self.environment
            .as_deref()
            .and_then(|environment| environment.gateways.get(name.as_str()))
            .map(|gateway| (name.as_str(), gateway))
            .ok_or_else(|| {
                ActionError::failed(format!(
                    "step `{}`: gateway `{name}` is not in the run's environment",
                    self.step_id
                ))
            })
    }
}

/// An approver that never decides: every gate pauses.
#[derive(Debug, Clone, Copy)]
pub struct NoApprover;

#[async_trait::async_trait]
impl Approver for NoApprover {
    async fn decide(&self, _gate: &str, _prompt: &str) -> Decision {
        Decision::Pending
    }
}

/// An evaluator with no context: every expression is an error.
#[derive(Debug, Clone, Copy)]
pub struct NoEvaluator;

impl Evaluate for NoEvaluator {
    fn evaluate(&self, expression: &str) -> Result<serde_json::Value, String> {
        Err(format!("cannot evaluate `{expression}` outside a run"))
    }

    fn render(&self, _template: &str) -> Result<String, String> {
        Err("cannot render a template outside a run".to_owned())
    }
}

/// What a step would change, as `plan` sees it, or what it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Change {
    /// Whether anything changes: `Some(false)` for "no change", `None` when it cannot be known.
    pub changes: Option<bool>,
    /// One line for humans ("write /etc/kong/kong.conf (12 lines changed)").
    pub summary: String,
    /// The state before, as text (diffed against `after`); also what a saved plan compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The state after, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl Change {
    /// Nothing changes.
    pub fn none(summary: impl Into<String>) -> Self {
        Self {
            changes: Some(false),
            summary: summary.into(),
            before: None,
            after: None,
        }
    }

    /// A change whose effect cannot be seen beforehand (a command to run).
    pub fn unknown(summary: impl Into<String>) -> Self {
        Self {
            changes: None,
            summary: summary.into(),
            before: None,
            after: None,
        }
    }

    /// A change from `before` to `after` (text forms); no change when they are equal.
    pub fn between(summary: impl Into<String>, before: Option<String>, after: String) -> Self {
        Self {
            changes: Some(before.as_deref() != Some(after.as_str())),
            summary: summary.into(),
            before,
            after: Some(after),
        }
    }
}

/// What an applied step returns.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The step's outputs, readable as `steps.<id>.outputs`.
    pub outputs: serde_json::Map<String, serde_json::Value>,
    /// For reversible actions: what `undo` needs to restore the previous state.
    pub undo: Option<serde_json::Value>,
    /// What it changed, for reports.
    pub change: Option<Change>,
    /// Values the action read or made that must never be shown (a generated key, a
    /// credential in the undo record): masked from here on, like `secret()` values.
    pub secrets: Vec<String>,
}

/// What `probe` found about a write that started but whose end was not recorded.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one probe per step in doubt, on resume only"
)]
pub enum Probe {
    /// The write took effect: these are its results.
    Done(Applied),
    /// The write did not take effect: it can run again.
    NotDone,
    /// The action cannot tell: a person must look.
    Unknown(String),
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

    /// What applying would change, without changing anything (called for write steps in dry runs).
    async fn plan(
        &self,
        _context: &StepContext,
        _arguments: serde_json::Value,
    ) -> Result<Change, ActionError> {
        Ok(Change::unknown(format!("would run {}", self.spec().name)))
    }

    /// Performs the action with rendered arguments.
    async fn apply(
        &self,
        context: &StepContext,
        arguments: serde_json::Value,
    ) -> Result<Applied, ActionError>;

    /// Restores the state an `apply` replaced, from its undo record.
    async fn undo(
        &self,
        _context: &StepContext,
        _arguments: serde_json::Value,
        _undo: serde_json::Value,
    ) -> Result<(), ActionError> {
        Err(ActionError::failed(format!(
            "`{}` has no undo",
            self.spec().name
        )))
    }

    /// Finds out whether an interrupted `apply` took effect.
    async fn probe(
        &self,
        _context: &StepContext,
        _arguments: serde_json::Value,
    ) -> Result<Probe, ActionError> {
        Ok(Probe::Unknown(format!(
            "`{}` cannot tell whether it ran",
            self.spec().name
        )))
    }
}
