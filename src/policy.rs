//! The policy gate of `validate`, `plan` and `run`: the policy file from `--policy`
//! or the project configuration, loaded once and applied to each checked playbook.

use std::path::PathBuf;

use runsheet_engine::check::Checked;
use runsheet_engine::loader::read_source;
use runsheet_engine::policy::{Policy, Subject, evaluate, load_policy};
use runsheet_engine::{Diagnostics, Registry, Severity};

use crate::cli::{OutputFormat, PolicyArgs};
use crate::exit::Exit;
use crate::render::{print_diagnostics, summary};

/// The policy in force for one command, and whether warnings fail it.
#[derive(Debug, Default)]
pub struct PolicyGate {
    /// The loaded policy, if any.
    pub policy: Option<Policy>,
    /// Warnings fail like errors.
    pub deny_warnings: bool,
}

impl PolicyGate {
    /// Loads the policy named by `--policy` (or the project's `policy:`); a broken
    /// policy file is printed and exits 3.
    pub fn load(args: &PolicyArgs, project_policy: Option<PathBuf>) -> Result<PolicyGate, Exit> {
        let Some(path) = args.policy.clone().or(project_policy) else {
            return Ok(PolicyGate {
                policy: None,
                deny_warnings: args.deny_warnings,
            });
        };
        let loaded = read_source(&path)
            .map_err(Diagnostics::from)
            .and_then(|file| load_policy(&file));
        match loaded {
            Ok(policy) => Ok(PolicyGate {
                policy: Some(policy),
                deny_warnings: args.deny_warnings,
            }),
            Err(diagnostics) => {
                print_diagnostics(&diagnostics, OutputFormat::Human);
                eprintln!(
                    "{}: invalid policy ({})",
                    path.display(),
                    summary(&diagnostics)
                );
                Err(Exit::Invalid)
            }
        }
    }

    /// The policy's violations for a checked playbook (none without a policy).
    pub fn violations(&self, checked: &Checked, registry: &Registry) -> Diagnostics {
        self.policy
            .as_ref()
            .map_or_else(Diagnostics::new, |policy| {
                evaluate(policy, &Subject::of(checked), registry)
            })
    }

    /// Whether a batch fails: any error, or any warning under `--deny-warnings`.
    pub fn fails(&self, diagnostics: &Diagnostics) -> bool {
        diagnostics.has_errors()
            || (self.deny_warnings && diagnostics.iter().any(|d| d.severity == Severity::Warning))
    }

    /// For `plan` and `run`: prints the violations and refuses (exit 3) when they fail.
    pub fn admit(&self, checked: &Checked, registry: &Registry) -> Result<(), Exit> {
        let violations = self.violations(checked, registry);
        print_diagnostics(&violations, OutputFormat::Human);
        let mut all = checked.warnings.clone();
        all.extend(violations.clone());
        if self.fails(&all) {
            let policy = self
                .policy
                .as_ref()
                .map_or_else(String::new, |p| format!(" by policy {}", p.file.name));
            eprintln!(
                "error: {}: refused{policy} ({}); nothing ran",
                checked.file.name,
                summary(&all)
            );
            if self.deny_warnings && !all.has_errors() {
                eprintln!("  (--deny-warnings: warnings fail)");
            }
            return Err(Exit::Invalid);
        }
        Ok(())
    }
}
