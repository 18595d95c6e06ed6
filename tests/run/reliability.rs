//! The reliability and security matrix: faults at every write step of every
//! shipped playbook, kill -9 and resume, a journal on a full or read-only
//! disk, hostile input and hostile gateways, secrets in artefacts, TLS
//! refusals and environment locks.
//!
//! Bounded by default, so the README's test command runs a sample of it;
//! `RUNSHEET_RELIABILITY=full` (what `scripts/reliability.sh` sets) runs the
//! whole matrix. Each part prints its table to stderr and, when
//! `RUNSHEET_RELIABILITY_REPORT` names a file, appends it there.

mod crashes;
mod faults;
mod hostile;
mod locks;
mod secrets;
mod tls;

use std::io::Write;

/// Whether the full matrix runs (`RUNSHEET_RELIABILITY=full`).
pub fn full() -> bool {
    std::env::var("RUNSHEET_RELIABILITY").is_ok_and(|value| value == "full")
}

/// `bounded` in the default (CI) run, `whole` in the full run.
pub fn scale(bounded: usize, whole: usize) -> usize {
    if full() { whole } else { bounded }
}

/// Prints a markdown table under `title` to stderr and appends it to the
/// file `RUNSHEET_RELIABILITY_REPORT` names, when it names one.
pub fn report(title: &str, headers: &[&str], rows: &[Vec<String>]) {
    let mut text = format!(
        "\n### {title}\n\n| {} |\n|{}|\n",
        headers.join(" | "),
        vec!["---"; headers.len()].join("|")
    );
    for row in rows {
        text.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    eprint!("{text}");
    if let Some(path) = std::env::var_os("RUNSHEET_RELIABILITY_REPORT") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(text.as_bytes()));
        if let Err(error) = appended {
            eprintln!(
                "could not append to {}: {error}",
                std::path::Path::new(&path).display()
            );
        }
    }
}
