//! Rendering diagnostics for people (miette) or machines (JSON).

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};
use runsheet_engine::{Diagnostics, Severity};

use crate::cli::OutputFormat;

/// Whether colour may be used on stderr.
pub fn colour_on_stderr() -> bool {
    crate::terminal::colour_allowed() && std::io::stderr().is_terminal()
}

/// Renders a batch for people: each diagnostic with its snippet, then a count.
pub fn diagnostics_human(diagnostics: &Diagnostics, colour: bool) -> String {
    let theme = if colour {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .with_context_lines(1);
    let mut out = String::new();
    for diagnostic in diagnostics.iter() {
        // Without a position the snippet header is missing: name the file in the message.
        let named;
        let diagnostic = match (&diagnostic.file, diagnostic.span) {
            (Some(file), None) => {
                let mut copy = diagnostic.clone();
                copy.message = format!("{}: {}", file.name, copy.message);
                named = copy;
                &named
            }
            _ => diagnostic,
        };
        let mut rendered = String::new();
        if handler.render_report(&mut rendered, diagnostic).is_err() {
            rendered = format!("{}: {}\n", diagnostic.code, diagnostic.message);
        }
        out.push_str(&rendered);
        out.push('\n');
    }
    out
}

/// One-line count of errors and warnings.
pub fn summary(diagnostics: &Diagnostics) -> String {
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// Prints a batch in the chosen format (human to stderr, JSON to stdout).
pub fn print_diagnostics(diagnostics: &Diagnostics, output: OutputFormat) {
    match output {
        OutputFormat::Human => {
            if !diagnostics.is_empty() {
                eprint!("{}", diagnostics_human(diagnostics, colour_on_stderr()));
            }
        }
        OutputFormat::Json => {
            let records: Vec<_> = diagnostics.iter().map(|d| d.to_record()).collect();
            let json = serde_json::to_string_pretty(&records).unwrap_or_else(|_| "[]".into());
            emit(&format!("{json}\n"));
        }
    }
}

/// Writes command output to stdout; a closed pipe (`... | head`) ends the output quietly.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write output: {error}");
    }
}

/// Pretty JSON of a value, one trailing newline.
pub fn json_text(value: &impl serde::Serialize) -> String {
    let mut text =
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
