//! What the CLI says about itself outside `--help`: shell completions and
//! manual pages, both generated from the clap definitions so they never drift.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Exit;

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Exit {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "runsheet", &mut out);
    crate::render::emit(&String::from_utf8_lossy(&out));
    Exit::Success
}

/// Prints runsheet(1) on stdout, or writes it and a page per command into `out`.
pub fn man(out: Option<&Path>) -> Exit {
    let command = Cli::command();
    let Some(dir) = out else {
        return match page(&command) {
            Ok(text) => {
                crate::render::emit(&text);
                Exit::Success
            }
            Err(error) => {
                eprintln!("error: cannot render the manual page: {error}");
                Exit::StepFailed
            }
        };
    };
    match write_pages(&command, dir) {
        Ok(count) => {
            println!("{count} manual pages in {}", dir.display());
            Exit::Success
        }
        Err(error) => {
            eprintln!(
                "error: {}: cannot write the manual pages: {error}",
                dir.display()
            );
            Exit::StepFailed
        }
    }
}

/// One command's page, in roff.
fn page(command: &clap::Command) -> std::io::Result<String> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Writes `runsheet.1` and `runsheet-VERB.1` (and deeper, `runsheet-twin-kong.1`) into `dir`.
fn write_pages(root: &clap::Command, dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut written = 0;
    let mut pending = vec![(root.get_name().to_owned(), root.clone())];
    while let Some((name, command)) = pending.pop() {
        let command = command.name(name.clone()).display_name(name.clone());
        for sub in command
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
        {
            pending.push((format!("{name}-{}", sub.get_name()), sub.clone()));
        }
        std::fs::write(dir.join(format!("{name}.1")), page(&command)?)?;
        written += 1;
    }
    Ok(written)
}
