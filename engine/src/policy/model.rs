//! The policy file: rules an organisation sets per environment, as written and as checked.
//!
//! Each rule has an id, a `kind` (one of the built-in checks), a severity, the environments
//! it applies to (names or `*`/`?` patterns) and the kind's parameters under `with:`.

use std::sync::Arc;

use serde::Deserialize;

use crate::de::{DeError, Spanned, from_node};
use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::node::{Node, parse};
use crate::source::{SourceFile, Span};

/// The policy file format version this build reads.
pub const POLICY_VERSION: u32 = 1;

/// A policy file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    /// Format version; must be 1.
    runsheet: Spanned<u32>,
    /// The rules, in order.
    rules: Vec<Node>,
}

/// One rule as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    /// Identifier shown with every violation (`write-needs-undo`).
    id: Spanned<String>,
    /// Which built-in check.
    kind: Spanned<String>,
    /// `error` (refuses) or `warning`.
    #[serde(default)]
    severity: Option<Severity>,
    /// Environment names or patterns; absent means every environment (and none).
    #[serde(default)]
    environments: Option<Vec<String>>,
    /// Message replacing the built-in one.
    #[serde(default)]
    message: Option<String>,
    /// The kind's parameters.
    #[serde(default, rename = "with")]
    with: Option<Node>,
}

/// A checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file it was read from.
    pub file: Arc<SourceFile>,
    /// Its rules, in file order.
    pub rules: Vec<Rule>,
}

/// One checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Identifier shown with every violation.
    pub id: String,
    /// How serious a violation is.
    pub severity: Severity,
    /// Environment names or patterns it applies to; `None` means everywhere.
    pub environments: Option<Vec<String>>,
    /// Message replacing the built-in one.
    pub message: Option<String>,
    /// What it checks.
    pub check: RuleCheck,
    /// Where the rule's `id:` stands in the policy file.
    pub span: Span,
}

/// The built-in checks and their parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleCheck {
    /// Every write step follows a checkpoint and has an undo or an explicit `rollback:`.
    WriteNeedsUndo(WriteNeedsUndo),
    /// An approval gate is an ancestor of every write step.
    ApprovalBeforeWrite(ApprovalBeforeWrite),
    /// The environment's `change:` requires a change id and/or a window.
    ChangeControl(ChangeControl),
    /// No `insecure: true` TLS and no `strict_host_key_checking: false`.
    TransportSecurity,
    /// Bounds on `batch` and `max_failures` of rolling (`for_each`) steps.
    RollingBounds(RollingBounds),
    /// Action types that may not run, unless their arguments match an exception.
    ForbiddenActions(ForbiddenActions),
    /// No high-entropy literal in a token, password, key or secret field.
    LiteralSecrets(LiteralSecrets),
}

/// The kinds as written in `kind:`.
pub const KINDS: &[&str] = &[
    "write-needs-undo",
    "approval-before-write",
    "change-control",
    "transport-security",
    "rolling-bounds",
    "forbidden-actions",
    "literal-secrets",
];

/// Parameters of `write-needs-undo`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteNeedsUndo {
    /// Require a checkpoint before every write (default true).
    #[serde(default = "yes")]
    pub require_checkpoint: bool,
}

/// Parameters of `approval-before-write`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBeforeWrite {
    /// Action types that are gates (default `[approval]`).
    #[serde(default = "gate_actions")]
    pub gate_actions: Vec<String>,
}

/// Parameters of `change-control`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeControl {
    /// `change.require_change_id` must be true (default true).
    #[serde(default = "yes")]
    pub require_change_id: bool,
    /// `change.require_window` must be true (default true).
    #[serde(default = "yes")]
    pub require_window: bool,
}

/// Parameters of `rolling-bounds`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollingBounds {
    /// Largest batch as a percentage of the items (at least one item).
    #[serde(default)]
    pub max_batch_percent: Option<u32>,
    /// Largest batch in items.
    #[serde(default)]
    pub max_batch: Option<u32>,
    /// Largest `max_failures`.
    #[serde(default)]
    pub max_failures: Option<u32>,
}

/// Parameters of `forbidden-actions`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForbiddenActions {
    /// Action types (or patterns such as `host.*`) that may not run.
    pub actions: Vec<String>,
    /// Arguments that make a step acceptable when all of them have these values.
    #[serde(default)]
    pub unless: serde_json::Map<String, serde_json::Value>,
}

/// Parameters of `literal-secrets`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiteralSecrets {
    /// Words a field name contains to be checked (default token, password, secret, key).
    #[serde(default = "secret_fields")]
    pub fields: Vec<String>,
    /// Shortest literal checked (default 12 characters).
    #[serde(default = "min_length")]
    pub min_length: usize,
    /// Shannon entropy in bits per character at or above which a literal is a secret (default 3.0).
    #[serde(default = "min_entropy")]
    pub min_entropy: f64,
}

fn yes() -> bool {
    true
}

fn gate_actions() -> Vec<String> {
    vec!["approval".to_owned()]
}

fn secret_fields() -> Vec<String> {
    ["token", "password", "passwd", "secret", "key", "credential"]
        .map(str::to_owned)
        .to_vec()
}

fn min_length() -> usize {
    12
}

fn min_entropy() -> f64 {
    3.0
}

impl RuleCheck {
    /// What the check requires, in one line (SARIF's short description).
    pub fn describe(&self) -> &'static str {
        match self {
            RuleCheck::WriteNeedsUndo(_) => {
                "every write step follows a checkpoint and has an undo or rollback steps"
            }
            RuleCheck::ApprovalBeforeWrite(_) => "an approval gate comes before every write step",
            RuleCheck::ChangeControl(_) => "the environment requires a change id and a window",
            RuleCheck::TransportSecurity => "TLS verification and SSH host-key checking stay on",
            RuleCheck::RollingBounds(_) => "rolling steps keep batch and max_failures in bounds",
            RuleCheck::ForbiddenActions(_) => "forbidden action types do not run",
            RuleCheck::LiteralSecrets(_) => "secrets come through secret(), never as literals",
        }
    }
}

impl Rule {
    /// Whether the rule applies to an environment (`None`: no environment given).
    pub fn applies_to(&self, environment: Option<&str>) -> bool {
        match (&self.environments, environment) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(patterns), Some(name)) => patterns.iter().any(|p| glob_match(p, name)),
        }
    }
}

/// Whether `text` matches a pattern where `*` is any run of characters and `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Reads a policy file; every problem is reported with its position.
pub fn load_policy(file: &Arc<SourceFile>) -> Result<Policy, Diagnostics> {
    let mut diagnostics = Diagnostics::new();
    let root = match parse(file) {
        Ok(root) => root,
        Err(e) => {
            let mut d = Diagnostic::error(e.code, e.message).with_optional_help(e.help);
            d = match e.span {
                Some(span) => d.at(file, span),
                None => d.in_file(file),
            };
            return Err(d.into());
        }
    };
    let doc: PolicyDoc = match from_node(&root) {
        Ok(doc) => doc,
        Err(e) => return Err(de_error(file, &e, root.span).into()),
    };
    if doc.runsheet.value != POLICY_VERSION {
        diagnostics.push(
            Diagnostic::error(
                "policy::version",
                format!(
                    "policy format version {} is not supported",
                    doc.runsheet.value
                ),
            )
            .at(file, doc.runsheet.span)
            .with_help("write `runsheet: 1`"),
        );
    }
    let mut rules: Vec<Rule> = Vec::new();
    for node in &doc.rules {
        match rule(file, node) {
            Ok(rule) => {
                if rules.iter().any(|r| r.id == rule.id) {
                    diagnostics.push(
                        Diagnostic::error(
                            "policy::duplicate-id",
                            format!("two rules have the id `{}`", rule.id),
                        )
                        .at(file, rule.span),
                    );
                }
                rules.push(rule);
            }
            Err(d) => diagnostics.push(d),
        }
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    Ok(Policy {
        file: Arc::clone(file),
        rules,
    })
}

fn rule(file: &Arc<SourceFile>, node: &Node) -> Result<Rule, Diagnostic> {
    let doc: RuleDoc = from_node(node).map_err(|e| de_error(file, &e, node.span))?;
    let empty = Node::synthetic(crate::node::NodeValue::Map(Vec::new()));
    let with = doc.with.as_ref().unwrap_or(&empty);
    let params = |e: DeError| de_error(file, &e, with.span);
    let check = match doc.kind.value.as_str() {
        "write-needs-undo" => RuleCheck::WriteNeedsUndo(from_node(with).map_err(params)?),
        "approval-before-write" => RuleCheck::ApprovalBeforeWrite(from_node(with).map_err(params)?),
        "change-control" => RuleCheck::ChangeControl(from_node(with).map_err(params)?),
        "transport-security" => {
            if with.as_map().is_some_and(|m| !m.is_empty()) {
                return Err(Diagnostic::error(
                    "policy::invalid",
                    "`transport-security` takes no parameters",
                )
                .at(file, with.span));
            }
            RuleCheck::TransportSecurity
        }
        "rolling-bounds" => RuleCheck::RollingBounds(from_node(with).map_err(params)?),
        "forbidden-actions" => RuleCheck::ForbiddenActions(from_node(with).map_err(params)?),
        "literal-secrets" => RuleCheck::LiteralSecrets(from_node(with).map_err(params)?),
        other => {
            return Err(Diagnostic::error(
                "policy::unknown-kind",
                format!("unknown rule kind `{other}`"),
            )
            .at(file, doc.kind.span)
            .with_help(
                crate::suggest::did_you_mean(other, KINDS.iter().copied())
                    .unwrap_or_else(|| format!("the kinds are {}", KINDS.join(", "))),
            ));
        }
    };
    Ok(Rule {
        id: doc.id.value,
        severity: doc.severity.unwrap_or(Severity::Error),
        environments: doc.environments,
        message: doc.message,
        check,
        span: doc.id.span,
    })
}

fn de_error(file: &Arc<SourceFile>, error: &DeError, fallback: Span) -> Diagnostic {
    Diagnostic::error("policy::invalid", error.message.clone())
        .at(file, error.span.unwrap_or(fallback))
        .with_optional_help(error.help.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names() {
        assert!(glob_match("prod*", "prod"));
        assert!(glob_match("prod*", "prod-eu"));
        assert!(glob_match("*-prod", "eu-prod"));
        assert!(glob_match("p?od", "prod"));
        assert!(!glob_match("prod", "production"));
        assert!(!glob_match("prod-*", "prod"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn a_policy_reads_and_its_mistakes_have_positions() -> Result<(), String> {
        let file = SourceFile::new(
            "p.yaml",
            "runsheet: 1\nrules:\n  - id: gate\n    kind: approval-before-write\n    environments: [prod*]\n",
        );
        let policy = load_policy(&file).map_err(|d| format!("{d:?}"))?;
        assert_eq!(policy.rules.len(), 1);
        assert!(policy.rules[0].applies_to(Some("prod-eu")));
        assert!(!policy.rules[0].applies_to(Some("uat")));
        assert!(!policy.rules[0].applies_to(None));

        let file = SourceFile::new(
            "p.yaml",
            "runsheet: 1\nrules:\n  - id: x\n    kind: rolling-bounds\n    with: {max_batch_pct: 25}\n",
        );
        let errors = load_policy(&file).err().unwrap_or_default();
        let first = errors
            .iter()
            .next()
            .map(|d| (d.message.clone(), d.line_col()));
        assert_eq!(
            first,
            Some(("unknown key `max_batch_pct`".to_owned(), Some((5, 12))))
        );
        let file = SourceFile::new("p.yaml", "runsheet: 1\nrules:\n  - {id: x, kind: gates}\n");
        let errors = load_policy(&file).err().unwrap_or_default();
        assert!(errors.iter().any(|d| d.code == "policy::unknown-kind"));
        Ok(())
    }
}
