//! Command-line arguments (clap derive).

use std::path::PathBuf;

use std::ffi::OsString;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::project::Project;

/// Runbook engine for API-gateway operations: validated playbooks, dry-run,
/// checkpoints, resume and automatic rollback.
#[derive(Debug, Parser)]
#[command(name = "runsheet", version, about, long_about = None)]
pub struct Cli {
    /// The project configuration (default: the nearest .runsheet.yaml up to the repository root).
    #[arg(long, global = true, value_name = "FILE", env = crate::project::VARIABLE)]
    pub config: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// The project configuration in force, if any.
    #[arg(skip)]
    pub project: Option<crate::project::Project>,
}

/// Parses `args` with the project configuration's values as the defaults of the flags
/// they stand for (a flag or its variable still wins).
pub fn parse(args: impl IntoIterator<Item = OsString>, project: Option<Project>) -> Result<Cli, clap::Error> {
    let args: Vec<OsString> = args.into_iter().collect();
    let mut command = Cli::command();
    if let Some(project) = &project {
        // A state directory asked for by flag or variable wins over the project's `state:`
        // (which would otherwise win as `--state`'s default).
        let state_dir_asked = args.iter().any(|arg| arg == "--state-dir" || arg.to_string_lossy().starts_with("--state-dir="))
            || std::env::var_os("RUNSHEET_STATE_DIR").is_some_and(|dir| !dir.is_empty());
        let defaults = [
            ("env", project.env.clone()),
            ("state_dir", project.state_dir.as_ref().map(|dir| dir.display().to_string())),
            ("report_dir", project.report_dir.as_ref().map(|dir| dir.display().to_string())),
            ("state", project.state.clone().filter(|_| !state_dir_asked)),
        ];
        let names: Vec<String> = command.get_subcommands().map(|sub| sub.get_name().to_owned()).collect();
        for name in names {
            command = command.mut_subcommand(name, |mut sub| {
                for (id, value) in &defaults {
                    let Some(value) = value else { continue };
                    // Only flags that already default (or, for --env and --state, may be left
                    // out) take one: `plan --report-dir` stays off unless asked for.
                    let takes = sub.get_arguments().any(|arg| {
                        arg.get_id() == id
                            && !arg.is_positional()
                            && (matches!(*id, "env" | "state") || !arg.get_default_values().is_empty())
                    });
                    if takes {
                        sub = sub.mut_arg(id, |arg| arg.default_value(value.clone()));
                    }
                }
                // `runsheet state migrate|export|import` take the project's database too.
                if let (Some(state), true) = (&project.state, sub.get_name() == "state") {
                    let verbs: Vec<String> = sub.get_subcommands().map(|verb| verb.get_name().to_owned()).collect();
                    for verb in verbs {
                        sub = sub.mut_subcommand(verb, |verb| {
                            if verb.get_arguments().any(|arg| arg.get_id() == "state") {
                                verb.mut_arg("state", |arg| arg.default_value(state.clone()).required(false))
                            } else {
                                verb
                            }
                        });
                    }
                }
                sub
            });
        }
    }
    let matches = command.try_get_matches_from(&args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    cli.project = project;
    Ok(cli)
}

/// The value of `--config FILE` (or `--config=FILE`) among `args`, read before parsing
/// because the file sets the other flags' defaults.
pub fn config_argument(args: impl IntoIterator<Item = OsString>) -> Option<PathBuf> {
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            return None;
        }
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(value) = arg.to_str().and_then(|text| text.strip_prefix("--config=")) {
            return Some(PathBuf::from(value));
        }
    }
    None
}

/// A switch's value from its variable: `true`, `1`, `yes`, `on` or `false`, `0`, `no`, `off`,
/// empty (any case); anything else is refused rather than guessed.
fn switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "y" | "t" => Ok(true),
        "false" | "0" | "no" | "off" | "n" | "f" | "" => Ok(false),
        other => Err(format!(
            "`{other}` is not a switch value: use true or false"
        )),
    }
}

/// Output formats of diagnostics and listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Human,
    /// One JSON document.
    Json,
}

/// Output formats of `runsheet validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ValidateFormat {
    /// For people.
    #[default]
    Human,
    /// One JSON array of diagnostics.
    Json,
    /// SARIF 2.1.0, for code hosts and CI annotations.
    Sarif,
}

/// The policy applied by validate, plan and run.
#[derive(Debug, Args, Clone, Default)]
pub struct PolicyArgs {
    /// Policy rules to apply (default: the project configuration's `policy:`).
    #[arg(long, value_name = "FILE", env = "RUNSHEET_POLICY")]
    pub policy: Option<PathBuf>,
    /// Fail on warnings too (validation warnings and policy rules of severity warning).
    #[arg(long, env = "RUNSHEET_DENY_WARNINGS", value_parser = switch)]
    pub deny_warnings: bool,
}

/// Output formats of `runsheet actions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ActionsFormat {
    /// For people.
    #[default]
    Human,
    /// One JSON document.
    Json,
    /// The Markdown action reference (docs/actions.md).
    Markdown,
}

/// Graph formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum GraphFormatArg {
    /// Mermaid flowchart.
    #[default]
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// Formats of the runbook document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DocFormat {
    /// Markdown.
    #[default]
    Markdown,
    /// One self-contained HTML file (inline CSS and SVG, prints well).
    Html,
}

/// Which schema `runsheet schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SchemaKind {
    /// The playbook format.
    #[default]
    Playbook,
    /// The environment file format.
    Environment,
}

/// Inputs and environment shared by validate and plan.
#[derive(Debug, Args, Clone, Default)]
pub struct InputArgs {
    /// Environment: a file, or a name looked up as environments/NAME.yaml.
    #[arg(long, env = "RUNSHEET_ENV")]
    pub env: Option<String>,
    /// Set an input: NAME=VALUE (repeatable; also RUNSHEET_INPUT_<NAME> variables, --set wins).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub sets: Vec<String>,
    /// Read inputs from a YAML file (repeatable; --set wins).
    #[arg(long = "vars-file", value_name = "FILE", env = "RUNSHEET_VARS_FILE")]
    pub vars_files: Vec<PathBuf>,
}

/// Change-management options of `run`.
#[derive(Debug, Args, Clone, Default)]
pub struct ChangeArgs {
    /// Change request id (CRQ-123); default: the environment's `change.change_id`.
    #[arg(long, value_name = "ID", env = "RUNSHEET_CHANGE_ID")]
    pub change_id: Option<String>,
    /// Change window START/END in RFC 3339 (2026-11-24T22:00Z/2026-11-25T02:00Z).
    #[arg(long, value_name = "START/END", env = "RUNSHEET_WINDOW")]
    pub window: Option<String>,
    /// At the window's end, pause (exit 4) instead of rolling back.
    #[arg(long, env = "RUNSHEET_PAUSE_AT_WINDOW_END", value_parser = switch)]
    pub pause_at_window_end: bool,
}

/// `runsheet state` verbs.
#[derive(Debug, Subcommand, Clone)]
pub enum StateCommand {
    /// Bring the database schema to this binary's version (also done on first use).
    Migrate {
        /// The database: postgres://USER@HOST:PORT/DB.
        #[arg(long, value_name = "URL", env = "RUNSHEET_STATE")]
        state: String,
    },
    /// Copy a run from the database into a state directory (a run that can go on is moved).
    Export {
        /// The run id.
        run_id: String,
        /// The database: postgres://USER@HOST:PORT/DB.
        #[arg(long, value_name = "URL", env = "RUNSHEET_STATE")]
        state: String,
        /// The state directory to copy it into.
        #[arg(long, value_name = "DIR", default_value = ".runsheet")]
        to: PathBuf,
    },
    /// Copy a run from a state directory into the database (a run that can go on is moved).
    Import {
        /// The run id.
        run_id: String,
        /// The database: postgres://USER@HOST:PORT/DB.
        #[arg(long, value_name = "URL", env = "RUNSHEET_STATE")]
        state: String,
        /// The state directory to copy it from.
        #[arg(long, value_name = "DIR", default_value = ".runsheet")]
        from: PathBuf,
    },
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON event per line on stdout.
    Json,
}

/// Where runs, journals and locks are kept: a state directory, or the backend `--state` names.
#[derive(Debug, Args, Clone)]
pub struct StateArgs {
    /// State directory (runs, journals, locks).
    #[arg(
        long,
        default_value = ".runsheet",
        value_name = "DIR",
        env = "RUNSHEET_STATE_DIR"
    )]
    pub state_dir: PathBuf,
    /// Where runs are kept instead of --state-dir: a directory, or postgres://USER@HOST:PORT/DB (password: RUNSHEET_STATE_PASSWORD).
    #[arg(long, value_name = "DIR|URL", env = "RUNSHEET_STATE")]
    pub state: Option<String>,
}

impl StateArgs {
    /// Opens the backend: `--state` when given, else the state directory; a refusal is
    /// printed and returned as its exit code.
    pub fn open(&self) -> Result<std::sync::Arc<dyn runsheet_engine::run::store::Store>, crate::exit::Exit> {
        crate::state::store_for(self.state.as_deref(), &self.state_dir)
    }
}

/// Options shared by the verbs that execute: state, reports, output.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Where runs are kept.
    #[command(flatten)]
    pub store: StateArgs,
    /// Write a report: json=FILE, junit=FILE or markdown=FILE (repeatable).
    #[arg(long = "report", value_name = "FORMAT=FILE")]
    pub reports: Vec<String>,
    /// Directory that always receives junit.xml, report.json, closure.md and runsheet.env.
    #[arg(
        long,
        default_value = "runsheet-out",
        value_name = "DIR",
        env = "RUNSHEET_REPORT_DIR"
    )]
    pub report_dir: PathBuf,
    /// Event log format.
    #[arg(long, value_enum, default_value_t, env = "RUNSHEET_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Plain lines instead of progress bars, even on a terminal.
    #[arg(long, env = "RUNSHEET_NO_PROGRESS", value_parser = switch)]
    pub no_progress: bool,
    /// Who approves gates (default: the OS user).
    #[arg(long, value_name = "NAME", env = "RUNSHEET_APPROVER")]
    pub approver: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks: errors as file:line:col with a snippet and a help line.
    #[command(
        after_help = "Examples:\n  runsheet validate playbooks/*.yaml\n  runsheet validate upgrade.yaml --env uat --set target_version=3.9.1\n  runsheet validate upgrade.yaml --output json\n  runsheet validate playbooks/*.yaml --env prod --policy policy/production.yaml --deny-warnings\n  runsheet validate playbooks/*.yaml --env prod --output sarif > runsheet.sarif"
    )]
    Validate {
        /// Playbook files.
        #[arg(required = true)]
        playbooks: Vec<PathBuf>,
        /// Environment and inputs.
        #[command(flatten)]
        inputs: InputArgs,
        /// Policy rules.
        #[command(flatten)]
        policy: PolicyArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t, env = "RUNSHEET_OUTPUT")]
        output: ValidateFormat,
    },
    /// Dry-run: what each step would change, reading the real state and changing nothing.
    #[command(
        after_help = "Examples:\n  runsheet plan upgrade.yaml --env uat --set target_version=3.9.1\n  runsheet plan upgrade.yaml --env uat --out upgrade.plan   # then: runsheet run --plan upgrade.plan ...\n  runsheet plan upgrade.yaml --env uat --detailed-exitcode  # 0 no changes, 6 changes"
    )]
    Plan {
        /// The playbook.
        playbook: PathBuf,
        /// Environment and inputs.
        #[command(flatten)]
        inputs: InputArgs,
        /// Policy rules (error violations refuse the plan, exit 3).
        #[command(flatten)]
        policy: PolicyArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t, env = "RUNSHEET_OUTPUT")]
        output: OutputFormat,
        /// Save the plan for `runsheet run --plan FILE` (what a change board approves).
        #[arg(long, value_name = "FILE", env = "RUNSHEET_PLAN_OUT")]
        out: Option<PathBuf>,
        /// Exit 0 when nothing would change and 6 when something would.
        #[arg(long, env = "RUNSHEET_DETAILED_EXITCODE", value_parser = switch)]
        detailed_exitcode: bool,
        /// Only resolve templates; read nothing from hosts or gateways.
        #[arg(long = "static", env = "RUNSHEET_STATIC", value_parser = switch)]
        static_only: bool,
        /// Also write plan.json and runsheet.env into this directory (none by default).
        #[arg(long, value_name = "DIR", env = "RUNSHEET_REPORT_DIR")]
        report_dir: Option<PathBuf>,
    },
    /// The runbook document a change board reads: steps in execution order, what each write
    /// changes, rollback, approval gates, verification and expected durations.
    #[command(
        after_help = "Examples:\n  runsheet doc upgrade.yaml --env prod --set target_version=3.9.1 > upgrade-runbook.md\n  runsheet doc upgrade.yaml --env prod --set target_version=3.9.1 --format html --out upgrade-runbook.html\n  runsheet plan upgrade.yaml --env prod --set target_version=3.9.1 --out upgrade.plan\n  runsheet doc upgrade.yaml --env prod --set target_version=3.9.1 --from-plan upgrade.plan --format html --out upgrade-runbook.html\n\nNothing is read from gateways or hosts: the steps are resolved from the inputs and the\nenvironment, the diffs come from a saved plan, and expected durations from earlier runs\n(and rehearsals) of the playbook in the state directory."
    )]
    Doc {
        /// The playbook.
        playbook: PathBuf,
        /// Environment and inputs.
        #[command(flatten)]
        inputs: InputArgs,
        /// Document format.
        #[arg(long, value_enum, default_value_t)]
        format: DocFormat,
        /// A saved plan (`runsheet plan --out FILE`) whose diffs show what each write step changes.
        #[arg(long, value_name = "PLAN")]
        from_plan: Option<PathBuf>,
        /// Write the document to this file instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
        /// Where runs are kept.
        #[command(flatten)]
        store: StateArgs,
    },
    /// Run a playbook.
    #[command(
        after_help = "Examples:\n  runsheet run upgrade.yaml --env uat --set target_version=3.9.1\n  runsheet run upgrade.yaml --env prod --change-id CRQ-123 --window 2026-11-24T22:00Z/2026-11-25T02:00Z --yes\n  runsheet run upgrade.yaml --env prod --plan upgrade.plan --report junit=out/junit.xml --report markdown=out/closure.md\n  runsheet run upgrade.yaml --env uat --dry-run\n  runsheet run upgrade.yaml --env prod --policy policy/production.yaml --yes\n\nExit codes: 0 success, 1 failed and rolled back, 2 a person must act, 3 invalid input,\n4 paused (resume it), 5 refused to start, 130 interrupted."
    )]
    Run {
        /// The playbook.
        playbook: PathBuf,
        /// Environment and inputs.
        #[command(flatten)]
        inputs: InputArgs,
        /// Policy rules (error violations refuse the run before anything runs, exit 3).
        #[command(flatten)]
        policy: PolicyArgs,
        /// Change nothing: plan writes, run reads (the same as `plan`, with run output).
        #[arg(long, env = "RUNSHEET_DRY_RUN", value_parser = switch)]
        dry_run: bool,
        /// Do not ask for confirmation on a terminal (no variable: one left exported in a
        /// shell would silently turn the production question off).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Apply exactly this saved plan; refuse if anything changed since it was made.
        #[arg(long, value_name = "FILE", env = "RUNSHEET_PLAN")]
        plan: Option<PathBuf>,
        /// Change management.
        #[command(flatten)]
        change: ChangeArgs,
        /// Where runs are kept and how they are shown.
        #[command(flatten)]
        run: RunArgs,
    },
    /// Resume a paused, failed or interrupted run.
    #[command(
        after_help = "Examples:\n  runsheet resume 20261126-221502-3fa9 --approve go-prod\n  runsheet resume 20261126-221502-3fa9 --allow-changed"
    )]
    Resume {
        /// The run id.
        #[arg(env = "RUNSHEET_RUN_ID")]
        run_id: String,
        /// Approve a gate (repeatable; RUNSHEET_APPROVE takes a comma-separated list).
        #[arg(
            long = "approve",
            value_name = "GATE",
            env = "RUNSHEET_APPROVE",
            value_delimiter = ','
        )]
        approve: Vec<String>,
        /// Resume even though the playbook changed since the run started (the diff is shown;
        /// no variable: a person decides it for one resume).
        #[arg(long)]
        allow_changed: bool,
        /// Say how a write that was cut short ended, after checking by hand: STEP=done or STEP=rerun (repeatable).
        #[arg(long = "resolved", value_name = "STEP=done|rerun")]
        resolved: Vec<String>,
        /// A new change window for the rest of the run (START/END, RFC 3339; no variable:
        /// the pipeline's RUNSHEET_WINDOW for `run` must not replace a resumed run's window).
        #[arg(long)]
        window: Option<String>,
        /// Where runs are kept and how they are shown.
        #[command(flatten)]
        run: RunArgs,
    },
    /// Undo a finished run's writes, newest first.
    #[command(after_help = "Examples:\n  runsheet rollback 20261126-221502-3fa9")]
    Rollback {
        /// The run id.
        #[arg(env = "RUNSHEET_RUN_ID")]
        run_id: String,
        /// Say how a write or undo that was cut short ended, after checking by hand: STEP=done or STEP=rerun (repeatable).
        #[arg(long = "resolved", value_name = "STEP=done|rerun")]
        resolved: Vec<String>,
        /// Where runs are kept and how they are shown.
        #[command(flatten)]
        run: RunArgs,
    },
    /// List past runs, newest first; with --stats, the p50/p95 durations of a playbook's steps.
    #[command(
        after_help = "Examples:\n  runsheet runs\n  runsheet runs --output json\n  runsheet runs --stats kong-rolling-upgrade --env uat   # size a change window from UAT rehearsals\n  runsheet runs --stats playbooks/kong-rolling-upgrade.yaml --output json\n\nThe figures are those the change-window check uses: each step's duration over the runs that\nrecorded it (dry runs record none), p50 and p95 by nearest rank; the whole run's working\ntime counts the runs that succeeded, without the time paused between resumes."
    )]
    Runs {
        /// Show step durations of this playbook (its name or file) instead of the list.
        #[arg(long, value_name = "PLAYBOOK")]
        stats: Option<String>,
        /// With --stats, count only the runs against this environment (its name or file).
        #[arg(long, value_name = "ENV", requires = "stats")]
        env: Option<String>,
        /// Where runs are kept.
        #[command(flatten)]
        store: StateArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Show one run: steps, timings, outputs (masked) and rollback.
    #[command(
        after_help = "Examples:\n  runsheet show 20261126-221502-3fa9\n  runsheet show 20261126-221502-3fa9 --verify   # check the journal's hash chain\n  runsheet show 20261126-221502-3fa9 --step 'upgrade[dp1].install'   # same as `runsheet explain`"
    )]
    Show {
        /// The run id.
        run_id: String,
        /// Check the journal's hash chain and report the first broken record.
        #[arg(long, conflicts_with = "step")]
        verify: bool,
        /// Explain one step instead (as `runsheet explain RUN STEP`).
        #[arg(long, value_name = "STEP")]
        step: Option<String>,
        /// Where runs are kept.
        #[command(flatten)]
        store: StateArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Everything about one step of a run: arguments, attempts, outputs, diff, undo, skips.
    #[command(
        after_help = "Examples:\n  runsheet explain 20261126-221502-3fa9 drain\n  runsheet explain 20261126-221502-3fa9 'upgrade[dp1].install'\n  runsheet explain 20261126-221502-3fa9 'upgrade[dp1].install' --output json\n\nSTEP is a runtime id as `runsheet show RUN` lists it (inside a for_each: `upgrade[dp1].install`);\na playbook path that ran once (`checks.ready`) works too. Secrets stay masked, as the journal keeps them."
    )]
    Explain {
        /// The run id.
        run_id: String,
        /// The step's runtime id (`upgrade[dp1].install`).
        step: String,
        /// Where runs are kept.
        #[command(flatten)]
        store: StateArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// The shared state backend: migrate its schema, move runs between it and a state directory.
    #[command(
        after_help = "Examples:\n  runsheet state migrate --state postgres://runsheet@db:5432/runsheet\n  runsheet state export 20261126-221502-3fa9 --to .runsheet\n  runsheet state import 20261126-221502-3fa9 --from .runsheet"
    )]
    State {
        /// What to do.
        #[command(subcommand)]
        action: StateCommand,
    },
    /// Release a stale environment lock, after showing who held it.
    #[command(after_help = "Examples:\n  runsheet unlock uat")]
    Unlock {
        /// The environment (its name, or its file).
        env: String,
        /// Where runs are kept.
        #[command(flatten)]
        store: StateArgs,
    },
    /// The step DAG as Mermaid or DOT.
    #[command(
        after_help = "Examples:\n  runsheet graph upgrade.yaml > upgrade.mmd\n  runsheet graph upgrade.yaml --format dot | dot -Tsvg > upgrade.svg"
    )]
    Graph {
        /// The playbook.
        playbook: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: GraphFormatArg,
    },
    /// The action catalogue, or one action's arguments.
    #[command(
        after_help = "Examples:\n  runsheet actions\n  runsheet actions kong.target\n  runsheet actions kong.target --output json\n  runsheet actions --markdown > docs/actions.md"
    )]
    Actions {
        /// An action type.
        name: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: ActionsFormat,
        /// The Markdown reference (the same as `--output markdown`).
        #[arg(long, conflicts_with = "output")]
        markdown: bool,
    },
    /// Run an emulator: a Kong or Layer7 twin, or a stand-in for a gateway node.
    #[command(
        after_help = "Examples:\n  runsheet twin kong --seed kong.yaml --control\n  runsheet twin layer7 --seed gateway.bundle --control\n  runsheet twin kong --listen 127.0.0.1:8001 --proxy-listen 127.0.0.1:8000 --admin-token secret\n  runsheet twin node --listen 127.0.0.1:9001 --version 3.9.1 --state-dir /tmp/dp1"
    )]
    Twin {
        /// Which emulator.
        #[command(subcommand)]
        twin: TwinCommand,
    },
    /// Scaffold a runbook repository: config, environments, a playbook, schemas, a CI gate.
    ///
    /// Writes .runsheet.yaml, environments/uat.yaml and prod.yaml (secrets by name), a first
    /// read-only playbook with the editor schema line, schemas/, a pre-commit hook and
    /// ci/runsheet-validate.sh. Never overwrites a file.
    #[command(
        after_help = "Examples:\n  runsheet init                 # in the current directory\n  runsheet init gateway-runbooks && cd gateway-runbooks && runsheet validate playbooks/*.yaml"
    )]
    Init {
        /// The repository directory (created when missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Shell completions for bash, zsh, fish, elvish or PowerShell.
    #[command(
        after_help = "Examples:\n  runsheet completions bash > /etc/bash_completion.d/runsheet\n  runsheet completions zsh > \"${fpath[1]}/_runsheet\"\n  runsheet completions fish > ~/.config/fish/completions/runsheet.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The manual page: runsheet(1) on stdout, or a page per command into a directory.
    #[command(
        after_help = "Examples:\n  runsheet man | man -l -\n  runsheet man --out /usr/local/share/man/man1   # runsheet.1, runsheet-run.1, ..."
    )]
    Man {
        /// Write runsheet.1 and a page per command (runsheet-run.1, ...) into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// JSON Schema of the playbook (or environment) format, for editors.
    #[command(
        after_help = "Examples:\n  runsheet schema > runsheet.schema.json\n  # then, first line of a playbook:\n  # yaml-language-server: $schema=./runsheet.schema.json"
    )]
    Schema {
        /// Which format.
        #[arg(value_enum, default_value_t)]
        kind: SchemaKind,
    },
}

/// The emulators `runsheet twin` runs.
#[derive(Debug, Subcommand)]
pub enum TwinCommand {
    /// An in-memory Kong Gateway 3.x: Admin API, proxy and status API on loopback.
    #[command(
        after_help = "Examples:\n  runsheet twin kong\n  runsheet twin kong --seed kong.yaml --control --proxy-listen 127.0.0.1:8000\n  runsheet twin kong --tls-cert admin.pem --tls-key admin-key.pem --client-ca ca.pem\n\nStops on Ctrl-C or SIGTERM. `--output json` prints the bound URLs as one JSON line."
    )]
    Kong(Box<KongTwinArgs>),
    /// An in-memory Layer7 API Gateway: restman, /ssg/ping and published services on one listener.
    #[command(
        after_help = "Examples:\n  runsheet twin layer7\n  runsheet twin layer7 --seed gateway.bundle --control --listen 127.0.0.1:9443\n  runsheet twin layer7 --state-dir /var/tmp/gw1 --version 11.1.2 --listen-ports\n  runsheet twin layer7 --tls-cert gw.pem --tls-key gw-key.pem --client-ca ca.pem\n\nStops on Ctrl-C or SIGTERM (with --state-dir the entities are saved and loaded back at the next start). `--output json` prints the URLs as one JSON line."
    )]
    Layer7(Box<Layer7TwinArgs>),
    /// A stand-in for a Kong data-plane node: status endpoints and an echo route, its version read from STATE_DIR/version.
    #[command(
        after_help = "Examples:\n  runsheet twin node --listen 127.0.0.1:9001 --version 3.9.1 --state-dir /var/tmp/dp1\n\nAn upgrade rewrites STATE_DIR/version and restarts the node; SIGTERM stops it gracefully."
    )]
    Node(NodeArgs),
}

/// Options of `runsheet twin kong`.
#[derive(Debug, Args, Clone)]
pub struct KongTwinArgs {
    /// Admin API address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8001", value_name = "ADDR")]
    pub listen: String,
    /// Proxy address, or `off`.
    #[arg(long, default_value = "127.0.0.1:8000", value_name = "ADDR")]
    pub proxy_listen: String,
    /// Proxy over TLS address (certificates chosen by SNI from /certificates and /snis), or `off`.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub proxy_tls_listen: String,
    /// Status API address (`/status`, `/status/ready`), or `off`.
    #[arg(long, default_value = "127.0.0.1:8007", value_name = "ADDR")]
    pub status_listen: String,
    /// Admin API over TLS address, served when --tls-cert is given.
    #[arg(long, default_value = "127.0.0.1:8444", value_name = "ADDR")]
    pub tls_listen: String,
    /// Serve the Admin API over TLS (on --tls-listen) with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require Admin API clients to present a certificate signed by this CA (mTLS; needs --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Require this RBAC token on every Admin API request.
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// Header carrying the RBAC token.
    #[arg(long, default_value = "Kong-Admin-Token", value_name = "NAME")]
    pub token_header: String,
    /// Start with the entities of this decK-style YAML (or JSON) file.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Serve `/_twin` (counters, reset, snapshot, faults) on the Admin API.
    #[arg(long)]
    pub control: bool,
    /// Behave as a DB-less node: entity writes answer 405 and `POST /config` loads the state.
    #[arg(long)]
    pub db_less: bool,
    /// Kong version to report (three or four parts).
    #[arg(long = "version", default_value = "3.9.3", value_name = "VERSION")]
    pub version: String,
    /// Output format of the start-up lines.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// Options of `runsheet twin layer7`.
#[derive(Debug, Args, Clone)]
pub struct Layer7TwinArgs {
    /// Address of restman, /ssg/ping and published services (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9443", value_name = "ADDR")]
    pub listen: String,
    /// Start with the entities of this restman bundle (imported NewOrUpdate).
    #[arg(long, value_name = "BUNDLE")]
    pub seed: Option<PathBuf>,
    /// Administrator user name (HTTP Basic).
    #[arg(long, default_value = "admin", value_name = "USER")]
    pub username: String,
    /// Administrator password (HTTP Basic).
    #[arg(long, default_value = "password", value_name = "PASSWORD")]
    pub password: String,
    /// Serve over TLS with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require clients to present a certificate signed by this CA (mTLS; needs --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Serve `/_twin` (counters, reset, snapshot, faults, node lifecycle).
    #[arg(long)]
    pub control: bool,
    /// Directory holding `version`, `patches`, `node_id`, `layer7.pid` and the saved entities.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Product version to report (written to STATE_DIR/version when that file does not exist).
    #[arg(long = "version", default_value = "11.1.2", value_name = "VERSION")]
    pub version: String,
    /// Also serve each enabled HTTPS listen port on its own loopback TLS port.
    #[arg(long)]
    pub listen_ports: bool,
    /// Output format of the start-up lines.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// Options of `runsheet twin node`.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// Address to serve on.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Version written to STATE_DIR/version when that file does not exist yet.
    #[arg(long = "version", value_name = "VERSION")]
    pub version: String,
    /// Directory holding the node's `version` and `node.pid` files.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn switch_values_read_as_people_write_them_and_junk_is_refused() {
        for (text, value) in [("true", true), ("YES", true), ("1", true), ("on", true)] {
            assert_eq!(switch(text), Ok(value), "{text}");
        }
        for text in ["false", "No", "0", "off", ""] {
            assert_eq!(switch(text), Ok(false), "{text}");
        }
        assert!(switch("maybe").is_err());
    }

    #[test]
    fn a_switch_given_on_the_command_line_is_on() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from(["runsheet", "run", "p.yaml", "--dry-run", "--yes"])?;
        assert!(matches!(
            cli.command,
            Command::Run {
                dry_run: true,
                yes: true,
                ..
            }
        ));
        Ok(())
    }

    fn project() -> Project {
        Project {
            env: Some("/repo/environments/uat.yaml".into()),
            state_dir: Some("/repo/.state".into()),
            report_dir: Some("/repo/out".into()),
            ..Project::default()
        }
    }

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_project_configuration_sets_defaults_and_flags_still_win() -> Result<(), clap::Error> {
        let cli = parse(args(&["runsheet", "run", "p.yaml"]), Some(project()))?;
        let Command::Run { inputs, run, .. } = &cli.command else {
            return Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand));
        };
        assert_eq!(inputs.env.as_deref(), Some("/repo/environments/uat.yaml"));
        assert_eq!(run.store.state_dir, PathBuf::from("/repo/.state"));
        assert_eq!(run.report_dir, PathBuf::from("/repo/out"));
        assert!(cli.project.is_some());

        let cli = parse(args(&["runsheet", "run", "p.yaml", "--env", "prod", "--state-dir", "s"]), Some(project()))?;
        let Command::Run { inputs, run, .. } = &cli.command else {
            return Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand));
        };
        assert_eq!(inputs.env.as_deref(), Some("prod"));
        assert_eq!(run.store.state_dir, PathBuf::from("s"));
        Ok(())
    }

    #[test]
    fn plan_writes_no_report_directory_unless_asked_even_with_a_project_default() -> Result<(), clap::Error> {
        let cli = parse(args(&["runsheet", "plan", "p.yaml"]), Some(project()))?;
        assert!(matches!(cli.command, Command::Plan { report_dir: None, .. }));
        let cli = parse(args(&["runsheet", "unlock", "uat"]), Some(project()))?;
        assert!(matches!(&cli.command, Command::Unlock { env, store } if env == "uat" && store.state_dir == std::path::Path::new("/repo/.state")));
        Ok(())
    }

    #[test]
    fn an_explicit_state_dir_wins_over_the_project_database() -> Result<(), clap::Error> {
        let project = Project {
            state: Some("postgres://ops@db/runsheet".into()),
            ..project()
        };
        let cli = parse(args(&["runsheet", "runs", "--state-dir", "/elsewhere"]), Some(project.clone()))?;
        assert!(matches!(&cli.command, Command::Runs { store: StateArgs { state: None, .. }, .. }), "{:?}", cli.command);
        let cli = parse(args(&["runsheet", "runs"]), Some(project.clone()))?;
        assert!(matches!(&cli.command, Command::Runs { store: StateArgs { state: Some(url), .. }, .. } if url.starts_with("postgres://")));
        let cli = parse(args(&["runsheet", "state", "migrate"]), Some(project))?;
        assert!(matches!(&cli.command, Command::State { action: StateCommand::Migrate { state } } if state.starts_with("postgres://")));
        Ok(())
    }

    #[test]
    fn the_config_flag_is_read_before_parsing() {
        assert_eq!(config_argument(args(&["runsheet", "runs", "--config", "a.yaml"])), Some("a.yaml".into()));
        assert_eq!(config_argument(args(&["runsheet", "--config=b.yaml", "runs"])), Some("b.yaml".into()));
        assert_eq!(config_argument(args(&["runsheet", "run", "--", "--config", "c"])), None);
        assert_eq!(config_argument(args(&["runsheet", "runs"])), None);
    }
}
