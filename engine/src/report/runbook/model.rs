//! The runbook document as data: what a change advisory board reads, built once
//! and rendered as Markdown or HTML.

use std::time::Duration;

use serde::Deserialize;

/// The whole document.
#[derive(Debug, Clone, Default)]
pub struct Runbook {
    /// Playbook name.
    pub playbook: String,
    /// The playbook file as given on the command line.
    pub playbook_file: String,
    /// SHA-256 of the playbook file, so the board knows which version it read.
    pub playbook_sha256: String,
    /// The playbook's `description:`.
    pub description: Option<String>,
    /// The comment block at the top of the playbook file (its longer explanation).
    pub notes: Vec<String>,
    /// The environment, when one was given.
    pub environment: Option<EnvironmentFacts>,
    /// Inputs with the values this document was made with.
    pub inputs: Vec<InputRow>,
    /// Secrets the run reads, by name only.
    pub secrets: Vec<SecretUse>,
    /// Gateways the steps run against.
    pub gateways: Vec<TargetRow>,
    /// Hosts the steps run against.
    pub hosts: Vec<TargetRow>,
    /// `rollback:` of the playbook, as written (`to_checkpoint`, `all`, `none`).
    pub rollback_policy: String,
    /// What the run does at the change window's end (`rollback` or `pause`).
    pub window_end: String,
    /// Every step in execution order, bodies after their container; `finally` last.
    pub steps: Vec<DocStep>,
    /// Steps that run only to undo another step, by the path of the step they undo.
    pub rollback_steps: Vec<RollbackStep>,
    /// The step graphs: the main steps, `finally`, and each body.
    pub graphs: Vec<Graph>,
    /// Earlier runs (and rehearsals) whose step durations are known.
    pub earlier_runs: usize,
    /// The saved plan the changes come from, when one was given.
    pub plan: Option<PlanFacts>,
}

/// What the document says of the environment.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentFacts {
    /// Its name.
    pub name: String,
    /// Change-management rules and settings, one line each.
    pub change_rules: Vec<String>,
    /// Safety settings turned off (TLS verification, host-key checking), one line each.
    pub warnings: Vec<String>,
}

/// One input.
#[derive(Debug, Clone)]
pub struct InputRow {
    /// Its name.
    pub name: String,
    /// Its value as shown (a secret input shows the secret's name).
    pub value: String,
    /// Its type.
    pub kind: String,
    /// Whether the value is the input's default.
    pub default: bool,
    /// What it is for.
    pub description: Option<String>,
}

/// A secret the run reads, and where it is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUse {
    /// The secret's name (`$NAME` or the file named by `$NAME_FILE`).
    pub name: String,
    /// Where it is named (`environment`, `playbook`, `input api_key`).
    pub named_in: String,
}

/// A gateway or host the steps run against.
#[derive(Debug, Clone)]
pub struct TargetRow {
    /// Its name in the environment.
    pub name: String,
    /// What it is (`kong gateway, twin`, `host 10.0.0.1 over ssh`).
    pub what: String,
    /// Numbers of the steps that run against it.
    pub steps: Vec<String>,
}

/// One step of the document.
#[derive(Debug, Clone, Default)]
pub struct DocStep {
    /// Its number in execution order (`6`, `6.3.1`).
    pub number: String,
    /// Its path in the playbook (`upgrade.node.drain`).
    pub path: String,
    /// Its id.
    pub id: String,
    /// Its label for humans.
    pub name: Option<String>,
    /// Nesting depth (0 for top-level steps).
    pub depth: usize,
    /// Whether it belongs to `finally`.
    pub finally: bool,
    /// What it does.
    pub kind: StepKindText,
    /// Ids of the siblings it waits for, when that is not simply the step listed before it.
    pub needs: Option<Vec<String>>,
    /// Its `when:` as written, and how it resolves with these inputs.
    pub when: Option<(String, WhenResolved)>,
    /// Whether it is skipped with these inputs (by its own `when:` or its container's).
    pub skipped: bool,
    /// Targets it runs against (names), over every item.
    pub on: Vec<String>,
    /// Its arguments as resolved for the first item (name, value on one line).
    pub arguments: Vec<(String, String)>,
    /// How many times it runs (items of the `for_each` around it).
    pub instances: usize,
    /// Whether it is a checkpoint.
    pub checkpoint: bool,
    /// Its approval gate, for `approval` steps.
    pub gate: Option<Gate>,
    /// Whether it is a read-only check that comes after a write.
    pub verification: bool,
    /// For write steps: what undoes it.
    pub rollback: Option<RollbackText>,
    /// For write steps: how far back the run goes when this step fails.
    pub fallback: Option<Fallback>,
    /// For write steps with a saved plan: what each instance would change.
    pub changes: Vec<PlannedChange>,
    /// Retries, timeout and polling, one line each.
    pub settings: Vec<String>,
    /// Expected duration from earlier runs.
    pub expected: Option<ExpectedTime>,
}

/// What a step does.
#[derive(Debug, Clone, Default)]
pub enum StepKindText {
    /// Runs one action.
    Action {
        /// The action type.
        action: String,
        /// Effect letters (R, W I U).
        effect: String,
        /// Whether it changes state.
        write: bool,
        /// The action's own one-line description.
        summary: String,
    },
    /// Runs its body once.
    #[default]
    Group,
    /// Runs its body once per item.
    ForEach {
        /// The items' labels, when known before the run.
        items: Option<Vec<String>>,
        /// Items per batch, when known (`None`: all at once).
        batch: Option<String>,
        /// Failed items tolerated.
        max_failures: Option<String>,
    },
}

impl StepKindText {
    /// Whether the step changes state.
    pub fn is_write(&self) -> bool {
        matches!(self, StepKindText::Action { write: true, .. })
    }
}

/// How a step's `when:` resolves before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenResolved {
    /// True with these inputs: the step runs.
    Runs,
    /// False with these inputs: the step is skipped.
    Skipped,
    /// Decided at run time.
    AtRunTime,
}

/// An approval gate.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    /// The gate's name (`--approve NAME`).
    pub name: String,
    /// The question put to the approver.
    pub prompt: String,
}

/// What undoes a write step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackText {
    /// The action's own undo restores what it replaced.
    Undo,
    /// `rollback: auto`, but the action cannot undo: the change stays.
    NoUndo,
    /// `rollback: none`: the change stays on purpose.
    Kept,
    /// These steps run instead (ids, in order).
    Steps(Vec<String>),
    /// The playbook's `rollback: none`: nothing is undone.
    PolicyNone,
}

/// How far back a run goes when a step fails, under the playbook's rollback policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Back to this checkpoint (a step path): work before it is kept.
    Checkpoint(String),
    /// Back to this checkpoint (a path in a `for_each` body) of the batch before; in
    /// the first batch, to what follows.
    EarlierBatch {
        /// The checkpoint's path.
        checkpoint: String,
        /// Where the first batch falls back to.
        first_batch: Box<Fallback>,
    },
    /// Back to the start: no checkpoint comes before the step.
    Start,
    /// The playbook's `rollback: all`: everything is undone.
    Everything,
    /// The playbook's `rollback: none`: nothing is undone.
    Nothing,
}

/// A step that runs only to undo another.
#[derive(Debug, Clone)]
pub struct RollbackStep {
    /// Path of the step it undoes.
    pub undoes: String,
    /// Its id.
    pub id: String,
    /// Its label.
    pub name: Option<String>,
    /// Its action type.
    pub action: String,
    /// Its effect letters.
    pub effect: String,
}

/// One instance's change from a saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PlannedChange {
    /// Runtime id (`upgrade[dp1].node.drain`).
    pub step: String,
    /// Whether it changes anything (`None`: cannot be known beforehand).
    #[serde(default)]
    pub changes: Option<bool>,
    /// One line for humans.
    #[serde(default)]
    pub summary: String,
    /// State before, as text.
    #[serde(default)]
    pub before: Option<String>,
    /// State after, as text.
    #[serde(default)]
    pub after: Option<String>,
}

/// Where the changes came from.
#[derive(Debug, Clone, Default)]
pub struct PlanFacts {
    /// The saved plan's file, as given.
    pub file: String,
    /// Problems that make the plan a poor witness (another playbook version, other inputs).
    pub warnings: Vec<String>,
}

/// An expected duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedTime {
    /// The p95 over earlier runs.
    pub p95: Duration,
    /// How many durations it comes from.
    pub samples: usize,
}

/// A scope's step graph, for drawing.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Title (`Main steps`, `Body of 6 upgrade`).
    pub title: String,
    /// Nodes in execution order: (number, label, write, gate).
    pub nodes: Vec<GraphNode>,
    /// Edges as (dependency, dependent) indices into `nodes`.
    pub edges: Vec<(usize, usize)>,
}

/// One node of a drawn graph.
#[derive(Debug, Clone, Default)]
pub struct GraphNode {
    /// Step number.
    pub number: String,
    /// Step id.
    pub id: String,
    /// Whether it writes.
    pub write: bool,
    /// Whether it is an approval gate.
    pub gate: bool,
    /// Whether it is a checkpoint.
    pub checkpoint: bool,
}
