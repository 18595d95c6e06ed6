//! The front door for commands: load a playbook (and environment), validate
//! them, and resolve the inputs, collecting every diagnostic on the way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::dag::Dag;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::inputs;
use crate::loader::{load_environment, load_playbook, read_source};
use crate::model::{Environment, Playbook};
use crate::node::NodeValue;
use crate::registry::Registry;
use crate::source::SourceFile;
use crate::template::{TemplateHost, Templates};
use crate::validation::{EnvironmentContext, validate};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// The playbook file.
    pub playbook: PathBuf,
    /// The environment: a file path, or a name looked up as `environments/<name>.yaml`.
    pub environment: Option<String>,
    /// `--set name=value` pairs, in order.
    pub sets: Vec<String>,
    /// `RUNSHEET_INPUT_<NAME>` variables as (variable, value): inputs matched by name
    /// ignoring case, after the vars files and before `--set`.
    pub env_inputs: Vec<(String, String)>,
    /// `--vars-file` files, in order.
    pub vars_files: Vec<PathBuf>,
    /// Whether every required input must be given (plan and run) or only given ones checked (validate).
    pub require_inputs: bool,
    /// Input values known before `--vars-file` and `--set` (a resumed run's inputs).
    pub preset: Map<String, Value>,
}

/// A playbook that passed validation, with everything needed to plan it.
#[derive(Debug)]
pub struct Checked {
    /// The playbook file.
    pub file: Arc<SourceFile>,
    /// The playbook.
    pub playbook: Playbook,
    /// Its DAG.
    pub dag: Dag,
    /// The environment, when one was given.
    pub environment: Option<(Arc<SourceFile>, Environment)>,
    /// Input values by name (given, or defaults).
    pub inputs: Map<String, Value>,
    /// Warnings found on the way.
    pub warnings: Diagnostics,
    /// The template environment validation used (its analyses are reused by planning).
    pub templates: Templates,
}

/// Loads, validates and resolves inputs; every problem found is returned together.
pub fn check(registry: &Registry, request: &CheckRequest) -> Result<Checked, Diagnostics> {
    let mut diagnostics = Diagnostics::new();
    let environment = request.environment.as_deref().and_then(|env| {
        let loaded = load_environment_file(env);
        match loaded {
            Ok((file, Some(environment), found)) => {
                diagnostics.extend(found);
                Some((file, environment))
            }
            Ok((_, None, found)) => {
                diagnostics.extend(found);
                None
            }
            Err(d) => {
                diagnostics.push(d);
                None
            }
        }
    });
    let file = match read_source(&request.playbook) {
        Ok(file) => file,
        Err(d) => {
            diagnostics.push(d);
            return Err(diagnostics);
        }
    };
    let (playbook, found) = load_playbook(&file);
    diagnostics.extend(found);
    let Some(playbook) = playbook else {
        return Err(diagnostics);
    };
    let templates = Templates::new(Arc::new(StaticHost::new(
        environment.as_ref().map(|(_, e)| e.clone()),
    )));
    let context = environment
        .as_ref()
        .map(|(file, environment)| EnvironmentContext { environment, file });
    let (dag, found) = validate(&file, &playbook, registry, &templates, context);
    diagnostics.extend(found);
    let inputs = resolve_inputs(&file, &playbook, request, &mut diagnostics);
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    Ok(Checked {
        file,
        playbook,
        dag,
        environment,
        inputs,
        warnings: diagnostics,
        templates,
    })
}

/// The prefix of the variables that set inputs.
pub const INPUT_VARIABLE_PREFIX: &str = "RUNSHEET_INPUT_";

/// Applies `RUNSHEET_INPUT_<NAME>` variables; one naming no input is a warning, not an error
/// (a pipeline may set inputs for several playbooks).
fn env_inputs(
    file: &Arc<SourceFile>,
    playbook: &Playbook,
    variables: &[(String, String)],
    values: &mut Map<String, Value>,
    diagnostics: &mut Diagnostics,
) {
    for (variable, text) in variables {
        let wanted = variable
            .strip_prefix(INPUT_VARIABLE_PREFIX)
            .unwrap_or(variable);
        let Some((declared, spec)) = playbook
            .inputs
            .iter()
            .find(|(name, _)| name.value.eq_ignore_ascii_case(wanted))
        else {
            if !playbook
                .unreadable_inputs
                .iter()
                .any(|n| n.eq_ignore_ascii_case(wanted))
            {
                diagnostics.push(
                    Diagnostic::warning(
                        "input::unknown-variable",
                        format!("{variable} names no input of this playbook; it is ignored"),
                    )
                    .in_file(file),
                );
            }
            continue;
        };
        match inputs::parse_text(spec, text) {
            Ok(value) => {
                values.insert(declared.value.clone(), value);
            }
            Err(e) => diagnostics.push(
                Diagnostic::error("input::invalid", format!("{variable}: {e}"))
                    .at(file, declared.span)
                    .with_label(format!(
                        "`{}` is declared here as {}",
                        declared.value,
                        spec.kind.value.as_str()
                    )),
            ),
        }
    }
}

/// Finds and loads an environment given by path or by name.
fn load_environment_file(
    env: &str,
) -> Result<(Arc<SourceFile>, Option<Environment>, Diagnostics), Diagnostic> {
    let path = environment_path(env);
    let file = read_source(&path)?;
    let (environment, diagnostics) = load_environment(&file);
    Ok((file, environment, diagnostics))
}

/// The file of an environment: the path itself, or `environments/<name>.yaml`.
pub fn environment_path(env: &str) -> PathBuf {
    let direct = Path::new(env);
    if direct.is_file() || env.ends_with(".yaml") || env.ends_with(".yml") || env.contains('/') {
        return direct.to_path_buf();
    }
    ["yaml", "yml"]
        .iter()
        .map(|ext| Path::new("environments").join(format!("{env}.{ext}")))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new("environments").join(format!("{env}.yaml")))
}

fn resolve_inputs(
    file: &Arc<SourceFile>,
    playbook: &Playbook,
    request: &CheckRequest,
    diagnostics: &mut Diagnostics,
) -> Map<String, Value> {
    let mut values = request.preset.clone();
    for vars_file in &request.vars_files {
        read_vars_file(vars_file, playbook, file, &mut values, diagnostics);
    }
    env_inputs(
        file,
        playbook,
        &request.env_inputs,
        &mut values,
        diagnostics,
    );
    for set in &request.sets {
        let Some((name, text)) = set.split_once('=') else {
            diagnostics.push(
                Diagnostic::error(
                    "input::bad-set",
                    format!("--set {set}: expected NAME=VALUE"),
                )
                .with_help("for example --set target_version=3.9.1"),
            );
            continue;
        };
        let name = name.trim();
        if playbook.unreadable_inputs.iter().any(|n| n == name) {
            continue; // Its declaration is broken and already reported.
        }
        let Some((declared, spec)) = playbook.inputs.get_key_value(name) else {
            let names: Vec<&str> = playbook.inputs.keys().map(|k| k.value.as_str()).collect();
            diagnostics.push(
                Diagnostic::error(
                    "input::unknown",
                    format!("--set {name}: the playbook has no input `{name}`"),
                )
                .in_file(file)
                .with_optional_help(
                    crate::suggest::did_you_mean(name, names.iter().copied()).or_else(|| {
                        Some(if names.is_empty() {
                            "the playbook declares no inputs".into()
                        } else {
                            format!("inputs: {}", names.join(", "))
                        })
                    }),
                ),
            );
            continue;
        };
        match inputs::parse_text(spec, text) {
            Ok(value) => {
                values.insert(name.to_owned(), value);
            }
            Err(e) => diagnostics.push(
                Diagnostic::error("input::invalid", format!("--set {name}={text}: {e}"))
                    .at(file, declared.span)
                    .with_label(format!(
                        "`{name}` is declared here as {}",
                        spec.kind.value.as_str()
                    )),
            ),
        }
    }
    for (name, spec) in &playbook.inputs {
        if values.contains_key(&name.value) {
            continue;
        }
        match &spec.default {
            Some(default) if !matches!(default.value, NodeValue::Null) => {
                if let Ok(value) = inputs::from_node(spec, default) {
                    values.insert(name.value.clone(), value);
                }
            }
            _ if spec.required && request.require_inputs => diagnostics.push(
                Diagnostic::error(
                    "input::missing",
                    format!("required input `{}` is not set", name.value),
                )
                .at(file, name.span)
                .with_help(format!(
                    "pass --set {}=<{}>",
                    name.value,
                    spec.kind.value.as_str()
                )),
            ),
            _ => {}
        }
    }
    values
}

fn read_vars_file(
    path: &Path,
    playbook: &Playbook,
    playbook_file: &Arc<SourceFile>,
    values: &mut Map<String, Value>,
    diagnostics: &mut Diagnostics,
) {
    let file = match read_source(path) {
        Ok(file) => file,
        Err(d) => return diagnostics.push(d),
    };
    let root = match crate::node::parse(&file) {
        Ok(root) => root,
        Err(e) => {
            let d = Diagnostic::error(e.code, e.message).with_optional_help(e.help);
            return diagnostics.push(match e.span {
                Some(span) => d.at(&file, span),
                None => d.in_file(&file),
            });
        }
    };
    let Some(entries) = root.as_map() else {
        return diagnostics.push(
            Diagnostic::error(
                "input::vars-file",
                "a vars file is a mapping of input names to values",
            )
            .at(&file, root.span),
        );
    };
    for (key, node) in entries {
        let name = key.key_text();
        let Some(spec) = playbook.inputs.get(name.as_str()) else {
            let names: Vec<&str> = playbook.inputs.keys().map(|k| k.value.as_str()).collect();
            diagnostics.push(
                Diagnostic::error(
                    "input::unknown",
                    format!("the playbook has no input `{name}`"),
                )
                .at(&file, key.span)
                .with_optional_help(crate::suggest::did_you_mean(&name, names.iter().copied())),
            );
            continue;
        };
        match inputs::from_node(spec, node) {
            Ok(value) => {
                values.insert(name, value);
            }
            Err(e) => diagnostics.push(
                Diagnostic::error(
                    "input::invalid",
                    format!("input `{name}` (declared in {}): {e}", playbook_file.name),
                )
                .at(&file, node.span),
            ),
        }
    }
}

/// Answers `secret()` and `hosts()` without reaching anything: secrets stay
/// masked (planning never reads them) and hosts come from the environment.
#[derive(Debug, Clone, Default)]
pub struct StaticHost {
    environment: Option<Environment>,
}

/// What `secret()` gives while planning: the value is never read.
pub const MASK: &str = "••••••";

impl StaticHost {
    /// Looks hosts up in an environment, if any.
    pub fn new(environment: Option<Environment>) -> Self {
        Self { environment }
    }
}

impl TemplateHost for StaticHost {
    fn secret(&self, _name: &str) -> Result<String, String> {
        Ok(MASK.to_owned())
    }

    fn hosts(&self, group: &str) -> Result<Vec<Value>, String> {
        let Some(environment) = &self.environment else {
            return Err(format!("hosts('{group}') needs an environment (--env)"));
        };
        if !environment.has_group(group) {
            return Err(format!(
                "environment `{}` has no host group `{group}`",
                environment.name.value
            ));
        }
        environment
            .hosts_in(group)
            .into_iter()
            .map(|h| serde_json::to_value(h).map_err(|e| e.to_string()))
            .collect()
    }
}
