//! runsheet-engine: the playbook model, loader, validation, templating, DAG and
//! the [`Action`] trait. It knows nothing about gateways or hosts: actions come
//! from a [`Registry`] assembled by the caller.

pub mod action;
pub mod check;
pub mod dag;
pub mod de;
pub mod diagnostic;
pub mod format_schema;
pub mod graph;
pub mod inputs;
pub mod loader;
pub mod model;
pub mod node;
pub mod plan;
pub mod policy;
pub mod registry;
pub mod report;
pub mod run;
pub mod schema_check;
pub mod source;
pub mod suggest;
pub mod template;
pub mod validation;
pub mod yaml;

pub use action::{
    Action, ActionError, ActionSpec, Applied, Approver, Change, Close, Decision, Effect, EffectKind,
    Evaluate, Prepared, Probe, Resources, StepContext, StepTarget, TargetKind,
};
pub use diagnostic::{Diagnostic, DiagnosticRecord, Diagnostics, Severity};
pub use registry::{DuplicateAction, Registry};
pub use source::{SourceFile, Span};
