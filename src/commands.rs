//! One function per command; each returns the exit code.

use std::path::Path;

use runsheet_engine::check::{CheckRequest, check};
use runsheet_engine::graph::{GraphFormat, render};
use runsheet_engine::loader::{load_playbook, read_source};
use runsheet_engine::plan::{StaticPlan, plan};
use runsheet_engine::run::executor::Mode;
use runsheet_engine::{Diagnostics, Registry, format_schema};
use serde_json::Value;

use crate::cli::{
    ActionsFormat, Cli, Command, GraphFormatArg, InputArgs, OutputFormat, SchemaKind, TwinCommand,
    ValidateFormat,
};
use crate::policy::PolicyGate;
use crate::exit::Exit;
use crate::render::{emit, json_text, print_diagnostics, summary};

/// Runs the parsed command.
pub fn run(cli: Cli) -> Exit {
    let registry = match runsheet_actions::registry() {
        Ok(registry) => registry,
        Err(error) => {
            eprintln!("error: internal: {error}");
            return Exit::Invalid;
        }
    };
    let project_policy = cli.project.as_ref().and_then(|p| p.policy.clone());
    let gate = |args| PolicyGate::load(args, project_policy.clone());
    match cli.command {
        Command::Validate {
            playbooks,
            inputs,
            policy,
            output,
        } => match gate(&policy) {
            Ok(gate) => validate(&registry, &playbooks, &inputs, &gate, output),
            Err(exit) => exit,
        },
        Command::Plan {
            playbook,
            inputs,
            policy,
            output,
            out,
            detailed_exitcode,
            static_only,
            report_dir,
        } => {
            let gate = match gate(&policy) {
                Ok(gate) => gate,
                Err(exit) => return exit,
            };
            if static_only {
                plan_command(&registry, &playbook, &inputs, &gate, output)
            } else {
                crate::execute::plan(
                    &registry,
                    &playbook,
                    &inputs,
                    &crate::execute::PlanArgs {
                        output,
                        out: out.as_deref(),
                        detailed_exitcode,
                        report_dir: report_dir.as_deref(),
                        policy: &gate,
                    },
                )
            }
        }
        Command::Graph { playbook, format } => graph(&registry, &playbook, format),
        Command::Doc {
            playbook,
            inputs,
            format,
            from_plan,
            out,
            store,
        } => crate::doc::doc(
            &registry,
            &crate::doc::DocArgs {
                playbook: &playbook,
                inputs: &inputs,
                format,
                from_plan: from_plan.as_deref(),
                out: out.as_deref(),
                store: &store,
            },
        ),
        Command::Actions {
            name,
            output,
            markdown,
        } => {
            let output = if markdown { ActionsFormat::Markdown } else { output };
            actions(&registry, name.as_deref(), output)
        }
        Command::Schema { kind } => schema(&registry, kind),
        Command::Init { dir } => crate::init::init(&registry, &dir),
        Command::Completions { shell } => crate::manuals::completions(shell),
        Command::Man { out } => crate::manuals::man(out.as_deref()),
        Command::Run {
            playbook,
            inputs,
            policy,
            dry_run,
            yes,
            plan,
            change,
            run,
        } => match gate(&policy) {
            Ok(gate) => crate::execute::run(
                &registry,
                &playbook,
                &inputs,
                crate::execute::RunFlags {
                    dry_run,
                    yes,
                    plan_file: plan.as_deref(),
                    policy: &gate,
                },
                &change,
                &run,
            ),
            Err(exit) => exit,
        },
        Command::Resume {
            run_id,
            approve,
            allow_changed,
            resolved,
            window,
            run,
        } => crate::execute::resume(
            &registry,
            &run_id,
            &crate::execute::ResumeArgs {
                approve: &approve,
                allow_changed,
                resolved: &resolved,
                window: window.as_deref(),
            },
            &run,
            Mode::Run,
        ),
        Command::Rollback {
            run_id,
            resolved,
            run,
        } => {
            let arguments = crate::execute::ResumeArgs {
                approve: &[],
                allow_changed: true,
                resolved: &resolved,
                window: None,
            };
            crate::execute::resume(&registry, &run_id, &arguments, &run, Mode::Rollback)
        }
        Command::Runs {
            stats: Some(playbook),
            env,
            store,
            output,
        } => crate::stats::stats(&store, &playbook, env.as_deref(), output),
        Command::Runs {
            store, output, ..
        } => crate::history::runs(&store, output),
        Command::Show {
            run_id,
            step: Some(step),
            store,
            output,
            ..
        }
        | Command::Explain {
            run_id,
            step,
            store,
            output,
        } => crate::explain::explain(&store, &run_id, &step, output),
        Command::Show {
            run_id,
            verify,
            store,
            output,
            ..
        } => crate::history::show(&store, &run_id, verify, output),
        Command::Unlock {
            env,
            store,
        } => crate::history::unlock(&store, &env),
        Command::State { action } => crate::state::command(&action),
        Command::Twin { twin } => match twin {
            TwinCommand::Kong(args) => crate::twin::kong(&args),
            TwinCommand::Layer7(args) => crate::twin::layer7(&args),
            TwinCommand::Node(args) => crate::twin::node(&args),
        },
    }
}

pub fn request(playbook: &Path, inputs: &InputArgs, require_inputs: bool) -> CheckRequest {
    CheckRequest {
        playbook: playbook.to_path_buf(),
        environment: inputs.env.clone(),
        sets: inputs.sets.clone(),
        env_inputs: input_variables(),
        vars_files: inputs.vars_files.clone(),
        require_inputs,
        preset: serde_json::Map::new(),
    }
}

/// The `RUNSHEET_INPUT_<NAME>` variables of the process, sorted by name.
fn input_variables() -> Vec<(String, String)> {
    let prefix = runsheet_engine::check::INPUT_VARIABLE_PREFIX;
    let mut found: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            (name.len() > prefix.len() && name.starts_with(prefix))
                .then(|| (name, value.to_string_lossy().into_owned()))
        })
        .collect();
    found.sort();
    found
}

fn validate(
    registry: &Registry,
    playbooks: &[std::path::PathBuf],
    inputs: &InputArgs,
    gate: &PolicyGate,
    output: ValidateFormat,
) -> Exit {
    let mut all = Diagnostics::new();
    let mut failed = 0;
    // A violation in the environment file is the same for every playbook: reported once.
    let mut reported = std::collections::HashSet::new();
    for playbook in playbooks {
        let diagnostics = match check(registry, &request(playbook, inputs, false)) {
            Ok(checked) => {
                let mut diagnostics = checked.warnings.clone();
                for violation in gate.violations(&checked, registry) {
                    let elsewhere = violation.file.as_ref().is_some_and(|f| f.name != checked.file.name);
                    let key = (
                        violation.code.clone(),
                        violation.file.as_ref().map(|f| f.name.clone()),
                        violation.span,
                        violation.message.clone(),
                    );
                    if !elsewhere || reported.insert(key) {
                        diagnostics.push(violation);
                    }
                }
                diagnostics
            }
            Err(diagnostics) => diagnostics,
        };
        if gate.fails(&diagnostics) {
            failed += 1;
        }
        if output == ValidateFormat::Human {
            print_diagnostics(&diagnostics, OutputFormat::Human);
            let verdict = if diagnostics.has_errors() {
                "invalid"
            } else if gate.fails(&diagnostics) {
                "failed (--deny-warnings)"
            } else {
                "ok"
            };
            eprintln!(
                "{}: {verdict} ({})",
                playbook.display(),
                summary(&diagnostics)
            );
        }
        all.extend(diagnostics);
    }
    match output {
        ValidateFormat::Human => {}
        ValidateFormat::Json => print_diagnostics(&all, OutputFormat::Json),
        ValidateFormat::Sarif => {
            let cwd = std::env::current_dir().unwrap_or_default();
            emit(&json_text(&crate::sarif::sarif(&all, gate.policy.as_ref(), &cwd)));
        }
    }
    if failed > 0 {
        Exit::Invalid
    } else {
        Exit::Success
    }
}

fn plan_command(
    registry: &Registry,
    playbook: &Path,
    inputs: &InputArgs,
    gate: &PolicyGate,
    output: OutputFormat,
) -> Exit {
    let checked = match check(registry, &request(playbook, inputs, true)) {
        Ok(checked) => checked,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics, OutputFormat::Human);
            eprintln!(
                "{}: invalid ({})",
                playbook.display(),
                summary(&diagnostics)
            );
            return Exit::Invalid;
        }
    };
    print_diagnostics(&checked.warnings, OutputFormat::Human);
    if let Err(exit) = gate.admit(&checked, registry) {
        return exit;
    }
    let planned = match plan(&checked, registry) {
        Ok(planned) => planned,
        Err(error) => {
            eprintln!(
                "error: {}: cannot resolve vars: {error}",
                playbook.display()
            );
            return Exit::Invalid;
        }
    };
    match output {
        OutputFormat::Json => emit(&json_text(&planned)),
        OutputFormat::Human => emit(&plan_human(&planned)),
    }
    Exit::Success
}

fn plan_human(planned: &StaticPlan) -> String {
    let mut out = format!(
        "Plan: {} on {}\n",
        planned.playbook,
        planned.environment.as_deref().unwrap_or("(no environment)")
    );
    if !planned.inputs.is_empty() {
        out.push_str("Inputs:\n");
        for (name, value) in &planned.inputs {
            out.push_str(&format!("  {name} = {}\n", compact(value)));
        }
    }
    let mut in_finally = false;
    let mut writes = 0;
    for (number, step) in planned.steps.iter().enumerate() {
        if step.finally && !in_finally {
            out.push_str("Finally:\n");
            in_finally = true;
        }
        let indent = "  ".repeat(step.depth + 1);
        let effect = if step.effect.is_empty() {
            String::new()
        } else {
            format!(" [{}]", step.effect)
        };
        if step.effect.starts_with('W') {
            writes += 1;
        }
        let checkpoint = if step.checkpoint { " (checkpoint)" } else { "" };
        out.push_str(&format!(
            "{indent}{:>3}. {} {}{effect}{checkpoint}\n",
            number + 1,
            step.id,
            step.action
        ));
        if let Some(on) = &step.on {
            out.push_str(&format!("{indent}     on: {}\n", compact(on)));
        }
        if let Some(when) = &step.when {
            out.push_str(&format!("{indent}     when: {}\n", compact(when)));
        }
        if let Value::Object(arguments) = &step.arguments {
            for (name, value) in arguments {
                out.push_str(&format!("{indent}     {name}: {}\n", compact(value)));
            }
        }
    }
    out.push_str(&format!(
        "{} steps, {writes} of them write. Nothing was changed: this is a plan.\n",
        planned.steps.len()
    ));
    out
}

/// A value on one line; hosts show as their names.
fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) if map.contains_key("address") && map.contains_key("name") => {
            runsheet_engine::plan::item_label(value)
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            format!(
                "[{}]",
                items.iter().map(compact).collect::<Vec<_>>().join(", ")
            )
        }
        other => other.to_string(),
    }
}

fn graph(registry: &Registry, playbook: &Path, format: GraphFormatArg) -> Exit {
    let file = match read_source(playbook) {
        Ok(file) => file,
        Err(d) => {
            print_diagnostics(&d.into(), OutputFormat::Human);
            return Exit::Invalid;
        }
    };
    let (loaded, diagnostics) = load_playbook(&file);
    let Some(loaded) = loaded.filter(|_| !diagnostics.has_errors()) else {
        print_diagnostics(&diagnostics, OutputFormat::Human);
        return Exit::Invalid;
    };
    let templates = runsheet_engine::template::Templates::new(std::sync::Arc::new(
        runsheet_engine::check::StaticHost::default(),
    ));
    let (dag, diagnostics) =
        runsheet_engine::validation::validate(&file, &loaded, registry, &templates, None);
    if diagnostics.has_errors() {
        print_diagnostics(&diagnostics, OutputFormat::Human);
        return Exit::Invalid;
    }
    let format = match format {
        GraphFormatArg::Mermaid => GraphFormat::Mermaid,
        GraphFormatArg::Dot => GraphFormat::Dot,
    };
    emit(&render(&loaded, &dag, format));
    Exit::Success
}

fn actions(registry: &Registry, name: Option<&str>, output: ActionsFormat) -> Exit {
    let Some(name) = name else {
        match output {
            ActionsFormat::Json => {
                let list: Vec<Value> = registry.iter().map(|a| action_json(a.as_ref())).collect();
                emit(&json_text(&list));
            }
            ActionsFormat::Human => emit(&catalogue_human(registry)),
            ActionsFormat::Markdown => emit(&crate::action_reference::reference(registry)),
        }
        return Exit::Success;
    };
    let Some(action) = registry.get(name) else {
        let help = registry
            .suggest(name)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        eprintln!("error: unknown action type `{name}`{help}");
        return Exit::Invalid;
    };
    match output {
        ActionsFormat::Json => emit(&json_text(&action_json(action.as_ref()))),
        ActionsFormat::Human => emit(&action_human(action.as_ref())),
        ActionsFormat::Markdown => emit(&crate::action_reference::section(action.as_ref())),
    }
    Exit::Success
}

/// Family order of the catalogue listing, as DESIGN.md presents it.
const FAMILIES: &[&str] = &["core", "http", "host", "kong", "layer7"];

fn catalogue_human(registry: &Registry) -> String {
    let mut listed: Vec<&dyn runsheet_engine::Action> =
        registry.iter().map(AsRef::as_ref).collect();
    let family_rank = |family: &str| {
        FAMILIES
            .iter()
            .position(|f| *f == family)
            .unwrap_or(FAMILIES.len())
    };
    listed.sort_by_key(|a| (family_rank(a.spec().family), a.spec().family, a.spec().name));
    let mut out = String::new();
    let mut family = "";
    for action in listed {
        let spec = action.spec();
        if spec.family != family {
            family = spec.family;
            out.push_str(&format!("{family}:\n"));
        }
        let availability = if action.is_available() {
            ""
        } else {
            "  (not available in this build)"
        };
        out.push_str(&format!(
            "  {:<24} {:<7} {}{availability}\n",
            spec.name,
            spec.effect.letters(),
            spec.summary
        ));
    }
    out.push_str("\nEffects: R read, W write, I idempotent, U reversible (has undo).\n");
    out
}

fn action_human(action: &dyn runsheet_engine::Action) -> String {
    let spec = action.spec();
    let mut out = format!(
        "{}  [{}]  {}\n",
        spec.name,
        spec.effect.letters(),
        spec.summary
    );
    if let Some(condition) = spec.effect.read_when {
        out.push_str(&format!("Reads only when {condition}.\n"));
    }
    if !action.is_available() {
        out.push_str(
            "Not available in this build: its arguments are checked, but it cannot run yet.\n",
        );
    }
    out.push_str("\nArguments (with:):\n");
    let required: Vec<&str> = spec.arguments["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(properties) = spec.arguments["properties"].as_object() {
        for (field, schema) in properties {
            let marker = if required.contains(&field.as_str()) {
                " (required)"
            } else {
                ""
            };
            let description = schema["description"].as_str().unwrap_or("");
            out.push_str(&format!(
                "  {field:<22} {:<18} {description}{marker}\n",
                type_name(schema, &spec.arguments)
            ));
        }
    }
    if !spec.outputs.is_empty() {
        out.push_str(&format!("\nOutputs: {}\n", spec.outputs.join(", ")));
    }
    out
}

fn type_name(schema: &Value, root: &Value) -> String {
    let resolved = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| root.pointer(p))
        .unwrap_or(schema);
    if let Some(value) = resolved["const"].as_str() {
        return value.to_owned();
    }
    if let Some(values) = resolved["enum"].as_array() {
        return values
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|");
    }
    if let Some(branches) = resolved["anyOf"]
        .as_array()
        .or_else(|| resolved["oneOf"].as_array())
    {
        return branches
            .iter()
            .map(|b| type_name(b, root))
            .filter(|t| t != "null")
            .collect::<Vec<_>>()
            .join("|");
    }
    match &resolved["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join("|"),
        _ => "any".into(),
    }
}

fn action_json(action: &dyn runsheet_engine::Action) -> Value {
    let spec = action.spec();
    serde_json::json!({
        "name": spec.name,
        "family": spec.family,
        "summary": spec.summary,
        "effect": spec.effect,
        "target": spec.target,
        "available": action.is_available(),
        "outputs": spec.outputs,
        "arguments": *spec.arguments,
    })
}

fn schema(registry: &Registry, kind: SchemaKind) -> Exit {
    let schema = match kind {
        SchemaKind::Playbook => format_schema::playbook_schema(registry),
        SchemaKind::Environment => format_schema::environment_schema(),
    };
    emit(&json_text(&schema));
    Exit::Success
}
