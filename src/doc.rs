//! `runsheet doc`: the runbook document of a playbook, for a change board.
//! It checks the playbook like `plan`, resolves its steps statically, reads
//! earlier runs' durations and (optionally) a saved plan's diffs, and renders
//! the engine's runbook as Markdown or HTML.

use std::path::Path;

use runsheet_engine::Registry;
use runsheet_engine::check::{Checked, check};
use runsheet_engine::plan::plan;
use runsheet_engine::report::runbook::{self, PlanFacts, PlannedChange, Sources};
use runsheet_engine::run::journal::hash_line;
use serde_json::Value;

use crate::cli::{DocFormat, InputArgs, OutputFormat, StateArgs};
use crate::commands::request;
use crate::exit::Exit;
use crate::render::{emit, print_diagnostics, summary};

/// What `runsheet doc` is told.
pub struct DocArgs<'a> {
    /// The playbook.
    pub playbook: &'a Path,
    /// Environment and inputs.
    pub inputs: &'a InputArgs,
    /// Markdown or HTML.
    pub format: DocFormat,
    /// A saved plan whose diffs to show.
    pub from_plan: Option<&'a Path>,
    /// Where to write the document (standard output when absent).
    pub out: Option<&'a Path>,
    /// Where earlier runs are kept.
    pub store: &'a StateArgs,
}

/// `runsheet doc`.
pub fn doc(registry: &Registry, args: &DocArgs<'_>) -> Exit {
    let checked = match check(registry, &request(args.playbook, args.inputs, true)) {
        Ok(checked) => checked,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics, OutputFormat::Human);
            eprintln!(
                "{}: invalid ({})",
                args.playbook.display(),
                summary(&diagnostics)
            );
            return Exit::Invalid;
        }
    };
    print_diagnostics(&checked.warnings, OutputFormat::Human);
    let planned = match plan(&checked, registry) {
        Ok(planned) => planned,
        Err(error) => {
            eprintln!(
                "error: {}: cannot resolve vars: {error}",
                args.playbook.display()
            );
            return Exit::Invalid;
        }
    };
    let playbook_sha256 = hash_line(checked.file.text.as_bytes());
    let saved_plan = match args.from_plan {
        Some(path) => match saved_plan(path, &checked, &playbook_sha256) {
            Ok(saved) => Some(saved),
            Err(message) => {
                eprintln!("error: --from-plan {}: {message}", path.display());
                return Exit::Invalid;
            }
        },
        None => None,
    };
    let history = match args.store.open() {
        Ok(store) => store.history(&checked.playbook.name.value, None),
        Err(exit) => return exit,
    };
    let document = runbook::build(&Sources {
        checked: &checked,
        registry,
        plan: &planned,
        history: &history,
        playbook_file: args.playbook.display().to_string(),
        playbook_sha256,
        saved_plan,
    });
    let text = match args.format {
        DocFormat::Markdown => runbook::markdown::render(&document),
        DocFormat::Html => runbook::html::render(&document),
    };
    match args.out {
        Some(out) => match runsheet_engine::report::write_text(out, &text) {
            Ok(()) => {
                eprintln!("runbook written to {}", out.display());
                Exit::Success
            }
            Err(error) => {
                eprintln!("error: --out {}: {}", out.display(), error_chain(&error));
                Exit::Refused
            }
        },
        None => {
            emit(&text);
            Exit::Success
        }
    }
}

/// An error with its causes, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads a saved plan of this playbook; what makes it a poor witness becomes a warning.
fn saved_plan(
    path: &Path,
    checked: &Checked,
    playbook_sha256: &str,
) -> Result<(PlanFacts, Vec<PlannedChange>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let saved: Value = serde_json::from_str(&text)
        .map_err(|e| format!("not a saved plan (`runsheet plan --out FILE` writes one): {e}"))?;
    if saved["runsheet_plan"] != 1 {
        return Err(
            "not a saved plan (`runsheet plan --out FILE` writes one): no `runsheet_plan: 1`"
                .to_owned(),
        );
    }
    let playbook = &checked.playbook.name.value;
    if saved["playbook"].as_str() != Some(playbook.as_str()) {
        return Err(format!(
            "it is a plan of playbook `{}`, not `{playbook}`",
            saved["playbook"].as_str().unwrap_or("?")
        ));
    }
    let changes: Vec<PlannedChange> = serde_json::from_value(saved["steps"].clone())
        .map_err(|e| format!("its `steps` are not a saved plan's: {e}"))?;
    let mut warnings = Vec::new();
    if saved["playbook_sha256"].as_str() != Some(playbook_sha256) {
        warnings.push("the saved plan was made from another version of the playbook: its diffs may not be what this version does; make the plan again".to_owned());
    }
    let environment = checked
        .environment
        .as_ref()
        .map(|(_, e)| e.name.value.clone());
    if saved["environment"].as_str() != environment.as_deref() {
        warnings.push(format!(
            "the saved plan is for environment `{}`, this document for `{}`",
            saved["environment"].as_str().unwrap_or("(none)"),
            environment.as_deref().unwrap_or("(none)")
        ));
    }
    let secret_inputs: Vec<&str> = checked
        .playbook
        .inputs
        .iter()
        .filter(|(_, spec)| spec.kind.value == runsheet_engine::model::InputType::Secret)
        .map(|(name, _)| name.value.as_str())
        .collect();
    let differing: Vec<&str> = checked
        .inputs
        .iter()
        .filter(|(name, value)| {
            !secret_inputs.contains(&name.as_str())
                && saved["inputs"].get(name.as_str()) != Some(*value)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if !differing.is_empty() {
        warnings.push(format!(
            "the saved plan was made with other values of {}: its diffs may not be what these inputs do",
            differing.join(", ")
        ));
    }
    if saved["outcome"].as_str().is_some_and(|o| o != "planned") {
        warnings.push(format!(
            "the dry run that made the saved plan ended `{}`: steps after the point it stopped have no diff",
            saved["outcome"].as_str().unwrap_or_default()
        ));
    }
    let facts = PlanFacts {
        file: path.display().to_string(),
        warnings,
    };
    Ok((facts, changes))
}
