//! The report directory (`--report-dir`, default `runsheet-out/`): every run
//! leaves its JUnit, JSON and closure reports there, and `runsheet.env`, the
//! variables a CI step turns into output variables; also when it fails, pauses,
//! is interrupted, or is refused before it starts.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use runsheet_engine::report::{self, ReportFormat, dotenv};
use runsheet_engine::run::summary::RunSummary;

use crate::exit::Exit;

/// The JUnit report's file name.
pub const JUNIT: &str = "junit.xml";
/// The JSON report's file name.
pub const JSON: &str = "report.json";
/// The Markdown closure report's file name.
pub const CLOSURE: &str = "closure.md";
/// The dotenv file's name.
pub const DOTENV: &str = "runsheet.env";
/// The saved plan's file name (`runsheet plan --report-dir`).
pub const PLAN: &str = "plan.json";

/// One command's report directory.
pub struct ReportDir {
    /// The directory.
    dir: PathBuf,
    /// Whether this command wrote its run's files (else a refusal is recorded at the end).
    written: Cell<bool>,
}

impl ReportDir {
    /// The directory `dir`, with the files an earlier command left there removed, so a
    /// pipeline never publishes a report of another run.
    pub fn new(dir: &Path) -> ReportDir {
        for name in [JUNIT, JSON, CLOSURE, DOTENV, PLAN] {
            let path = dir.join(name);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                eprintln!(
                    "warning: cannot remove the old report {}: {e}",
                    path.display()
                );
            }
        }
        ReportDir {
            dir: dir.to_path_buf(),
            written: Cell::new(false),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes the JUnit, JSON and closure reports of a run; false when one failed.
    pub fn write_reports(&self, summary: &RunSummary) -> bool {
        let mut ok = true;
        for (format, name) in [
            (ReportFormat::Junit, JUNIT),
            (ReportFormat::Json, JSON),
            (ReportFormat::Markdown, CLOSURE),
        ] {
            let path = self.dir.join(name);
            if let Err(e) = report::write(format, summary, &path) {
                eprintln!("error: report {}: {e}", path.display());
                ok = false;
            }
        }
        self.written.set(true);
        ok
    }

    /// Writes `runsheet.env` for a run that ended with `exit`; false when it failed.
    pub fn write_dotenv(&self, summary: &RunSummary, exit: Exit) -> bool {
        let closure = self.dir.join(CLOSURE);
        let closure = closure.is_file().then(|| closure.display().to_string());
        let variables = dotenv::run_variables(summary, exit.as_u8(), closure.as_deref());
        self.written.set(true);
        self.write(DOTENV, &dotenv::render(&variables))
    }

    /// Writes a file of the directory; false (and a message) when it failed.
    pub fn write(&self, name: &str, text: &str) -> bool {
        let path = self.dir.join(name);
        match report::write_text(&path, text) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("error: {e}");
                false
            }
        }
    }

    /// Records, unless the run's own files were written, why nothing ran: `runsheet.env`
    /// with the status (`invalid`, `refused`) and the exit code, and a `junit.xml` with one
    /// failed case when the command did not succeed.
    pub fn finish(&self, exit: Exit) {
        if self.written.get() {
            return;
        }
        let status = match exit {
            Exit::Invalid => "invalid",
            Exit::Refused => "refused",
            Exit::Success | Exit::Changes => "succeeded",
            Exit::Paused => "paused",
            Exit::Interrupted => "interrupted",
            Exit::StepFailed | Exit::RollbackFailed => "failed",
        };
        let variables = [
            ("RUNSHEET_STATUS", status.to_owned()),
            ("RUNSHEET_EXIT_CODE", exit.as_u8().to_string()),
            ("RUNSHEET_RUN_ID", String::new()),
            ("RUNSHEET_ROLLBACK_PERFORMED", "false".to_owned()),
            ("RUNSHEET_CLOSE_CODE", String::new()),
            (
                "RUNSHEET_SUMMARY",
                format!(
                    "nothing ran: {status} (exit {}); see the step log",
                    exit.as_u8()
                ),
            ),
        ]
        .map(|(name, value)| (name.to_owned(), value));
        if !matches!(exit, Exit::Success | Exit::Changes) {
            let message = format!(
                "nothing ran: {status} (exit {}); see the step log",
                exit.as_u8()
            );
            match report::junit_not_started(status, &message) {
                Ok(xml) => {
                    self.write(JUNIT, &xml);
                }
                Err(e) => eprintln!("error: {}: {e}", self.dir.join(JUNIT).display()),
            }
        }
        self.write(DOTENV, &dotenv::render(&variables));
    }
}
