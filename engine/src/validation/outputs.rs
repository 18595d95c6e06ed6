//! Checks of the playbook's `outputs:`: their names, their templates, and what
//! they may read (any top-level step, never a secret or a sensitive step).

use std::collections::{HashMap, HashSet};

use super::{NameScope, Validator, is_identifier};
use crate::source::Span;
use crate::suggest::did_you_mean;
use crate::template::TemplateReads;

impl Validator<'_> {
    /// Checks each output's name and template.
    pub(super) fn outputs(&mut self) {
        let mut by_variable: HashMap<String, Span> = HashMap::new();
        for (name, value) in &self.playbook.outputs {
            if !is_identifier(&name.value) {
                let d = self
                    .error(
                        "output::bad-name",
                        name.span,
                        format!("invalid output name `{}`", name.value),
                    )
                    .with_help("letters, digits and `_`, starting with a letter or `_`: it becomes the variable RUNSHEET_OUTPUT_<NAME>");
                self.push(d);
            } else if let Some(first) =
                by_variable.insert(name.value.to_ascii_uppercase(), name.span)
            {
                let d = self
                    .error(
                        "output::name-clash",
                        name.span,
                        format!(
                            "output `{}` becomes the same variable as an earlier output",
                            name.value
                        ),
                    )
                    .with_related(first, "the earlier output")
                    .with_help("output names are upper-cased into RUNSHEET_OUTPUT_<NAME>: make them differ by more than case");
                self.push(d);
            }
            let scope = NameScope {
                steps: true,
                outputs: true,
                ..NameScope::default()
            };
            self.node_templates(value, &scope, &[]);
        }
    }

    /// The vars whose value is built from a secret: their templates call `secret()` or read
    /// such a var (a secret transformed, `b64encode`d for example, is no longer masked).
    fn secret_vars(&self) -> HashSet<String> {
        let mut tainted = HashSet::new();
        for (name, value) in &self.playbook.vars {
            let mut texts = Vec::new();
            strings(&value.to_json(), &mut texts);
            let reads_secret = texts.iter().any(|text| {
                self.templates.analyze(text).is_ok_and(|reads| {
                    reads.roots().any(|root| root == "secret")
                        || reads.members_of("vars").any(|var| tainted.contains(var))
                })
            });
            if reads_secret {
                tainted.insert(name.value.clone());
            }
        }
        tainted
    }

    /// What an output's template reads: no secret (also through a var built from one), and
    /// only top-level steps that are not sensitive.
    pub(super) fn output_reads(&mut self, reads: &TemplateReads, span: Span) {
        let secret_vars = self.secret_vars();
        if let Some(var) = reads.members_of("vars").find(|var| secret_vars.contains(*var)) {
            let d = self
                .error(
                    "output::secret",
                    span,
                    format!("an output cannot read `vars.{var}`: its value is built from a secret, and outputs are written to files and pipeline variables"),
                )
                .with_help("publish a fact about the secret instead (its name, a fingerprint, an expiry date)");
            self.push(d);
        }
        if reads.roots().any(|root| root == "secret") {
            let d = self
                .error(
                    "output::secret",
                    span,
                    "an output cannot read a secret: outputs are written to files and pipeline variables",
                )
                .with_help("publish a fact about the secret instead (its name, a fingerprint, an expiry date)");
            self.push(d);
        }
        let top_level: Vec<&crate::model::Step> = self
            .playbook
            .steps
            .iter()
            .chain(&self.playbook.finally)
            .collect();
        for id in reads.step_ids() {
            match top_level.iter().find(|step| step.id.value == id) {
                None => {
                    let help = did_you_mean(id, top_level.iter().map(|s| s.id.value.as_str()))
                        .unwrap_or_else(|| {
                            "outputs read top-level steps (main or finally); publish a value from inside a group with a top-level `set` step".into()
                        });
                    let d = self
                        .error(
                            "output::unknown-step",
                            span,
                            format!(
                                "output reads `steps.{id}`, but there is no top-level step `{id}`"
                            ),
                        )
                        .with_help(help);
                    self.push(d);
                }
                Some(step) if step.sensitive => {
                    let d = self
                        .error(
                            "output::sensitive",
                            span,
                            format!("output reads `steps.{id}`, whose outputs are sensitive"),
                        )
                        .with_related(step.span, "marked `sensitive` here")
                        .with_help("outputs end up in files and pipeline variables; publish a fact that is not secret");
                    self.push(d);
                }
                Some(_) => {}
            }
        }
    }
}

/// Every string inside a value (the texts templates may hide in).
fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => out.push(text.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        serde_json::Value::Object(map) => map.values().for_each(|item| strings(item, out)),
        _ => {}
    }
}
