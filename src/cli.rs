//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Runbook engine for API-gateway operations: validated playbooks, dry-run,
/// checkpoints, resume and automatic rollback.
#[derive(Debug, Parser)]
#[command(name = "runsheet", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
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

/// Graph formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum GraphFormatArg {
    /// Mermaid flowchart.
    #[default]
    Mermaid,
    /// Graphviz DOT.
    Dot,
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
    #[arg(long)]
    pub env: Option<String>,
    /// Set an input: NAME=VALUE (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub sets: Vec<String>,
    /// Read inputs from a YAML file (repeatable; --set wins).
    #[arg(long = "vars-file", value_name = "FILE")]
    pub vars_files: Vec<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks: errors as file:line:col with a snippet and a help line.
    #[command(
        after_help = "Examples:\n  runsheet validate playbooks/*.yaml\n  runsheet validate upgrade.yaml --env uat --set target_version=3.9.1\n  runsheet validate upgrade.yaml --output json"
    )]
    Validate {
        /// Playbook files.
        #[arg(required = true)]
        playbooks: Vec<PathBuf>,
        /// Environment and inputs.
        #[command(flatten)]
        inputs: InputArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Dry-run: the ordered steps with resolved templates.
    #[command(
        after_help = "Examples:\n  runsheet plan upgrade.yaml --env uat --set target_version=3.9.1\n  runsheet plan upgrade.yaml --env uat --output json"
    )]
    Plan {
        /// The playbook.
        playbook: PathBuf,
        /// Environment and inputs.
        #[command(flatten)]
        inputs: InputArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Run a playbook (arrives with the executor).
    Run {
        /// The playbook.
        playbook: PathBuf,
        /// Environment and inputs.
        #[command(flatten)]
        inputs: InputArgs,
    },
    /// Resume a paused or interrupted run (arrives with the executor).
    Resume {
        /// The run id.
        run: String,
    },
    /// Undo a finished run's writes (arrives with the executor).
    Rollback {
        /// The run id.
        run: String,
    },
    /// List past runs (arrives with the executor).
    Runs,
    /// Show one run (arrives with the executor).
    Show {
        /// The run id.
        run: String,
    },
    /// Release a stale environment lock (arrives with the executor).
    Unlock {
        /// The environment.
        env: String,
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
        after_help = "Examples:\n  runsheet actions\n  runsheet actions kong.target\n  runsheet actions kong.target --output json"
    )]
    Actions {
        /// An action type.
        name: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
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
