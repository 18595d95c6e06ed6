//! The runsheet command line: parses arguments, assembles the action registry,
//! calls the engine and maps the outcome to an exit code.

mod action_reference;
mod ci;
mod cli;
mod closure;
mod commands;
mod doc;
#[cfg(test)]
mod example_commands;
mod execute;
mod exit;
mod explain;
mod history;
mod init;
mod manuals;
mod observe;
mod policy;
mod project;
mod render;
mod stats;
mod report_dir;
mod sarif;
mod state;
mod terminal;
mod twin;


fn main() -> std::process::ExitCode {
    let project = match project_in_force() {
        Ok(project) => project,
        // Help, version and the verbs that read no project setting still work, so a
        // broken file can be looked up, regenerated or fixed.
        Err(error) if needs_no_project() => {
            eprintln!("warning: {error}\n  (ignored: this command uses no project setting)");
            None
        }
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::from(exit::Exit::Invalid.as_u8());
        }
    };
    let cli = match cli::parse(std::env::args_os(), project) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version are not errors; a usage error is invalid input (exit 3), so
            // it never reads as exit 2 ("a person must act").
            let invalid = error.use_stderr();
            let _ = error.print();
            return std::process::ExitCode::from(if invalid {
                exit::Exit::Invalid.as_u8()
            } else {
                0
            });
        }
    };
    if let Ok(filter) = std::env::var("RUNSHEET_LOG") {
        // Diagnostics for developers and support; the run's own output is the event stream.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let code = commands::run(cli);
    std::process::ExitCode::from(code.as_u8())
}

/// The project configuration: the file `--config` or `RUNSHEET_CONFIG` names, else the
/// nearest `.runsheet.yaml`.
fn project_in_force() -> Result<Option<project::Project>, project::ProjectError> {
    let named = cli::config_argument(std::env::args_os()).or_else(|| std::env::var_os(project::VARIABLE).map(Into::into));
    let cwd = std::env::current_dir().unwrap_or_default();
    project::Project::find(&cwd, named.as_deref())
}

/// Whether the command line asks for help, the version, or a verb that reads no project setting.
fn needs_no_project() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| matches!(arg.as_str(), "-h" | "--help" | "-V" | "--version")) {
        return true;
    }
    let verb = args.iter().find(|arg| !arg.starts_with('-'));
    verb.is_none_or(|verb| matches!(verb.as_str(), "help" | "init" | "completions" | "man" | "schema" | "actions" | "graph" | "twin"))
}
