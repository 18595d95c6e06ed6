//! Policy rules: checks an organisation sets per environment on top of validation
//! (undo and checkpoints for writes, approval gates, change control, transport
//! security, rolling bounds, forbidden actions, literal secrets).
//!
//! A policy reads the checked playbook, its environment and the registry's action
//! metadata; violations are [`Diagnostic`]s whose code is the rule's id.

mod files;
mod model;
mod secrets;
mod steps;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use model::{
    ApprovalBeforeWrite, ChangeControl, ForbiddenActions, KINDS, LiteralSecrets, POLICY_VERSION,
    Policy, RollingBounds, Rule, RuleCheck, WriteNeedsUndo, glob_match, load_policy,
};
pub use secrets::shannon_entropy;

use crate::check::Checked;
use crate::dag::Dag;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{Environment, Playbook};
use crate::node::Node;
use crate::registry::Registry;
use crate::source::{SourceFile, Span};

/// What a policy is applied to: a checked playbook and its environment.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The playbook file.
    pub file: &'a Arc<SourceFile>,
    /// The playbook.
    pub playbook: &'a Playbook,
    /// Its DAG.
    pub dag: &'a Dag,
    /// The environment and its file, when one was given.
    pub environment: Option<(&'a Arc<SourceFile>, &'a Environment)>,
    /// Input values by name (given, or defaults).
    pub inputs: &'a Map<String, Value>,
}

impl<'a> Subject<'a> {
    /// The subject of a checked playbook.
    pub fn of(checked: &'a Checked) -> Self {
        Self {
            file: &checked.file,
            playbook: &checked.playbook,
            dag: &checked.dag,
            environment: checked.environment.as_ref().map(|(file, env)| (file, env)),
            inputs: &checked.inputs,
        }
    }

    /// The environment's name, when one was given.
    pub fn environment_name(&self) -> Option<&str> {
        self.environment.map(|(_, env)| env.name.value.as_str())
    }
}

/// One breach of a rule, before the rule's id, severity and message are put on it.
#[derive(Debug, Clone)]
struct Finding {
    /// The file it is in.
    file: Arc<SourceFile>,
    /// Where.
    span: Span,
    /// What is wrong.
    message: String,
    /// How to fix it.
    help: String,
}

impl Finding {
    fn new(file: &Arc<SourceFile>, span: Span, message: String, help: impl Into<String>) -> Self {
        Self {
            file: Arc::clone(file),
            span,
            message,
            help: help.into(),
        }
    }
}

/// Applies every rule that applies to the subject's environment; violations come in
/// file and position order.
pub fn evaluate(policy: &Policy, subject: &Subject<'_>, registry: &Registry) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    let trees = Trees::parse(subject);
    for rule in &policy.rules {
        if !rule.applies_to(subject.environment_name()) {
            continue;
        }
        for finding in findings(rule, subject, registry, &trees) {
            diagnostics.push(violation(rule, policy, finding));
        }
    }
    diagnostics.sort();
    diagnostics
}

/// The YAML trees of the playbook and environment files, for rules that read keys as written.
struct Trees {
    playbook: Option<Node>,
    environment: Option<Node>,
}

impl Trees {
    fn parse(subject: &Subject<'_>) -> Self {
        Self {
            playbook: crate::node::parse(subject.file).ok(),
            environment: subject
                .environment
                .and_then(|(file, _)| crate::node::parse(file).ok()),
        }
    }
}

fn findings(
    rule: &Rule,
    subject: &Subject<'_>,
    registry: &Registry,
    trees: &Trees,
) -> Vec<Finding> {
    match &rule.check {
        RuleCheck::WriteNeedsUndo(params) => steps::write_needs_undo(params, subject, registry),
        RuleCheck::ApprovalBeforeWrite(params) => {
            steps::approval_before_write(params, subject, registry)
        }
        RuleCheck::RollingBounds(params) => steps::rolling_bounds(params, subject, registry),
        RuleCheck::ForbiddenActions(params) => steps::forbidden_actions(params, subject),
        RuleCheck::ChangeControl(params) => files::change_control(params, subject, trees),
        RuleCheck::TransportSecurity => files::transport_security(subject, trees),
        RuleCheck::LiteralSecrets(params) => secrets::literal_secrets(params, subject, trees),
    }
}

fn violation(rule: &Rule, policy: &Policy, finding: Finding) -> Diagnostic {
    let help = format!(
        "{} (policy rule `{}` of {})",
        finding.help, rule.id, policy.file.name
    );
    let diagnostic = match &rule.message {
        // The organisation's message leads; what was found stays under the span.
        Some(message) => {
            Diagnostic::error(rule.id.clone(), message.clone()).with_label(finding.message)
        }
        None => Diagnostic::error(rule.id.clone(), finding.message),
    };
    diagnostic
        .at(&finding.file, finding.span)
        .with_help(help)
        .with_severity(rule.severity)
}
