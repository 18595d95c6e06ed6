//! The report formats and the `FORMAT=PATH` spec of `--report`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A report format `--report` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportFormat {
    /// The run summary as JSON, for machines.
    Json,
    /// JUnit XML, for the Tests tab of a CI pipeline.
    Junit,
    /// A Markdown change-closure report, for the change request.
    Markdown,
}

impl ReportFormat {
    /// Every format, in the order help texts list them.
    pub const ALL: [ReportFormat; 3] = [
        ReportFormat::Json,
        ReportFormat::Junit,
        ReportFormat::Markdown,
    ];

    /// The name written before `=` in a spec.
    pub fn name(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Junit => "junit",
            ReportFormat::Markdown => "markdown",
        }
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for ReportFormat {
    type Err = ReportSpecError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ReportFormat::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| ReportSpecError::UnknownFormat {
                format: name.to_owned(),
                known: known_formats(),
            })
    }
}

/// Why a `--report` spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportSpecError {
    /// The part before `=` names no known format.
    #[error("unknown report format `{format}`: known formats are {known}")]
    UnknownFormat {
        /// The name given.
        format: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// The spec has no `=` between format and path.
    #[error(
        "report spec `{spec}` has no `=`: write FORMAT=PATH, e.g. junit=runsheet-out/junit.xml (formats: {known})"
    )]
    MissingEquals {
        /// The spec given.
        spec: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// Nothing stands before `=`.
    #[error("report spec `{spec}` names no format before `=`: known formats are {known}")]
    MissingFormat {
        /// The spec given.
        spec: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// Nothing stands after `=`.
    #[error("report spec `{spec}` has no path after `=`: write {format}=PATH")]
    EmptyPath {
        /// The spec given.
        spec: String,
        /// The format named.
        format: ReportFormat,
    },
}

/// Reads a `--report` spec such as `junit=out/junit.xml` (the format name ignores case).
pub fn parse_spec(spec: &str) -> Result<(ReportFormat, PathBuf), ReportSpecError> {
    let Some((name, path)) = spec.split_once('=') else {
        return Err(ReportSpecError::MissingEquals {
            spec: spec.to_owned(),
            known: known_formats(),
        });
    };
    if name.is_empty() {
        return Err(ReportSpecError::MissingFormat {
            spec: spec.to_owned(),
            known: known_formats(),
        });
    }
    let format = name.parse::<ReportFormat>()?;
    if path.is_empty() {
        return Err(ReportSpecError::EmptyPath {
            spec: spec.to_owned(),
            format,
        });
    }
    Ok((format, PathBuf::from(path)))
}

fn known_formats() -> String {
    ReportFormat::ALL.map(ReportFormat::name).join(", ")
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a spec that parses when it should not fails the test"
)]
mod tests {
    use super::*;

    #[test]
    fn each_format_parses_with_its_path() {
        assert_eq!(
            parse_spec("json=out/run.json"),
            Ok((ReportFormat::Json, PathBuf::from("out/run.json")))
        );
        assert_eq!(
            parse_spec("junit=/harness/out/junit.xml"),
            Ok((ReportFormat::Junit, PathBuf::from("/harness/out/junit.xml")))
        );
        assert_eq!(
            parse_spec("markdown=closure.md"),
            Ok((ReportFormat::Markdown, PathBuf::from("closure.md")))
        );
    }

    #[test]
    fn format_name_ignores_case_and_path_keeps_later_equals_signs() {
        assert_eq!(
            parse_spec("JUnit=out/a=b.xml"),
            Ok((ReportFormat::Junit, PathBuf::from("out/a=b.xml")))
        );
    }

    #[test]
    fn names_round_trip_through_display_and_from_str() {
        for format in ReportFormat::ALL {
            assert_eq!(format.to_string().parse::<ReportFormat>(), Ok(format));
        }
    }

    #[test]
    fn unknown_format_lists_the_known_ones() {
        let error = parse_spec("html=out/report.html").unwrap_err();
        assert!(
            matches!(&error, ReportSpecError::UnknownFormat { format, .. } if format == "html")
        );
        assert_eq!(
            error.to_string(),
            "unknown report format `html`: known formats are json, junit, markdown"
        );
    }

    #[test]
    fn spec_without_equals_says_how_to_write_it() {
        let error = parse_spec("junit").unwrap_err();
        assert!(matches!(error, ReportSpecError::MissingEquals { .. }));
        let message = error.to_string();
        assert!(message.contains("`junit` has no `=`"), "{message}");
        assert!(message.contains("FORMAT=PATH"), "{message}");
    }

    #[test]
    fn spec_without_format_is_refused() {
        let error = parse_spec("=out/run.json").unwrap_err();
        assert!(matches!(error, ReportSpecError::MissingFormat { .. }));
        assert!(error.to_string().contains("json, junit, markdown"));
    }

    #[test]
    fn spec_without_path_is_refused() {
        let error = parse_spec("markdown=").unwrap_err();
        assert_eq!(
            error,
            ReportSpecError::EmptyPath {
                spec: "markdown=".into(),
                format: ReportFormat::Markdown,
            }
        );
        assert_eq!(
            error.to_string(),
            "report spec `markdown=` has no path after `=`: write markdown=PATH"
        );
    }
}
