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
mod history;
mod observe;
mod render;
mod report_dir;
mod terminal;
mod twin;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match cli::Cli::try_parse() {
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
