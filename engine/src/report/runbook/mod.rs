//! The runbook document a change advisory board reads before a change: purpose,
//! inputs, targets, the steps in execution order, what each write changes, the
//! rollback plan, approval gates, verification and expected durations.
//!
//! [`build`] makes the [`Runbook`] from a checked playbook, its static plan, the
//! action registry's metadata, earlier runs and (optionally) a saved plan's diffs;
//! [`markdown`] and [`html`] render it. Nothing here knows a gateway type: what an
//! action does comes from its registered description and effect.

mod build;
mod fallback;
pub mod html;
pub mod markdown;
mod model;
mod svg;
mod targets;
mod words;

pub use build::{Sources, build, path_of};
pub use model::{
    DocStep, EnvironmentFacts, ExpectedTime, Fallback, Gate, Graph, GraphNode, InputRow, PlanFacts,
    PlannedChange, RollbackStep, RollbackText, Runbook, SecretUse, StepKindText, TargetRow,
    WhenResolved,
};
