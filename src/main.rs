//! The runsheet command line: parses arguments, assembles the action registry,
//! calls the engine and maps the outcome to an exit code.

mod cli;
mod commands;
mod execute;
mod exit;
mod history;
mod observe;
mod render;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let code = commands::run(cli);
    std::process::ExitCode::from(code.as_u8())
}
