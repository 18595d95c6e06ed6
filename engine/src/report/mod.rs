//! Reports of a run: a [`RunSummary`] rendered as JSON, JUnit XML or a Markdown
//! change-closure report, and written where `--report FORMAT=PATH` says.
//!
//! Every text in a summary was masked by the executor; reports print nothing else.

mod close;
pub mod diff;
pub mod dotenv;
pub mod runbook;
mod file;
mod json;
mod junit;
mod markdown;
mod spec;
mod text;

#[cfg(test)]
mod fixtures;

use std::path::{Path, PathBuf};

pub use close::{SUCCESSFUL, SUCCESSFUL_WITH_ISSUES, UNSUCCESSFUL, close_code, rollback_performed};
pub use junit::not_started as junit_not_started;
pub use spec::{ReportFormat, ReportSpecError, parse_spec};

use crate::run::summary::RunSummary;

/// Why a report could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The summary could not be turned into JSON.
    #[error("failed to render the JSON report")]
    Json(#[source] serde_json::Error),
    /// The summary could not be turned into JUnit XML.
    #[error("failed to render the JUnit report")]
    Junit(#[source] quick_junit::SerializeError),
    /// The report file could not be written.
    #[error("failed to write report `{}`", path.display())]
    Write {
        /// The report's path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The report of a run in one format.
pub fn render(format: ReportFormat, summary: &RunSummary) -> Result<String, ReportError> {
    match format {
        ReportFormat::Json => json::render(summary),
        ReportFormat::Junit => junit::render(summary),
        ReportFormat::Markdown => Ok(markdown::render(summary)),
    }
}

/// Writes `contents` to `path` atomically, creating missing directories (for files
/// beside the reports, such as the dotenv file and a saved plan).
pub fn write_text(path: &Path, contents: &str) -> Result<(), ReportError> {
    file::write_atomically(path, contents.as_bytes()).map_err(|source| ReportError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes the report of a run to `path`, atomically, creating missing directories.
pub fn write(format: ReportFormat, summary: &RunSummary, path: &Path) -> Result<(), ReportError> {
    let report = render(format, summary)?;
    file::write_atomically(path, report.as_bytes()).map_err(|source| ReportError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a report that is not written as expected fails the test"
)]
mod tests {
    use std::fs;

    use super::*;

    fn file_names(directory: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn render_dispatches_on_the_format() {
        let summary = fixtures::successful();
        assert!(
            render(ReportFormat::Json, &summary)
                .unwrap()
                .starts_with("{\n")
        );
        assert!(
            render(ReportFormat::Junit, &summary)
                .unwrap()
                .starts_with("<?xml")
        );
        assert!(
            render(ReportFormat::Markdown, &summary)
                .unwrap()
                .starts_with("# ")
        );
    }

    #[test]
    fn write_creates_directories_and_leaves_only_the_report() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("runsheet-out/nested/junit.xml");
        let summary = fixtures::successful();
        write(ReportFormat::Junit, &summary, &path).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            render(ReportFormat::Junit, &summary).unwrap()
        );
        assert_eq!(file_names(path.parent().unwrap()), ["junit.xml"]);
    }

    #[test]
    fn write_replaces_an_existing_report() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("closure.md");
        fs::write(&path, "old report").unwrap();
        let summary = fixtures::rolled_back_with_failed_undo();
        write(ReportFormat::Markdown, &summary, &path).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            render(ReportFormat::Markdown, &summary).unwrap()
        );
        assert_eq!(file_names(root.path()), ["closure.md"]);
    }

    #[test]
    fn failed_write_names_the_path_and_leaves_no_temporary_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("taken");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), "x").unwrap();
        let error = write(ReportFormat::Json, &fixtures::successful(), &path).unwrap_err();
        assert!(matches!(&error, ReportError::Write { path: failed, .. } if failed == &path));
        assert!(
            error.to_string().starts_with("failed to write report `"),
            "{error}"
        );
        assert_eq!(file_names(root.path()), ["taken"]);
    }

    #[test]
    fn path_without_file_name_is_an_error() {
        let error =
            write(ReportFormat::Json, &fixtures::successful(), Path::new("..")).unwrap_err();
        let ReportError::Write { source, .. } = error else {
            panic!("expected a write error, got {error:?}");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput);
    }
}
