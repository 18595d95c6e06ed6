//! The dotenv file of a run (`runsheet.env`): one `NAME='value'` line per
//! variable, safe to `source` from a POSIX shell, for CI steps that turn the
//! lines into pipeline output variables.

use serde_json::Value;

use super::close::{close_code, rollback_performed};
use super::text::outcome_text;
use crate::run::summary::RunSummary;

/// The prefix of the variables holding the playbook's `outputs:`.
pub const OUTPUT_PREFIX: &str = "RUNSHEET_OUTPUT_";

/// The variables of a finished (or stopped) run, in the order the file lists them.
///
/// `exit_code` is the process's exit code; `closure_report` the path of the
/// Markdown closure report, when one was written.
pub fn run_variables(
    summary: &RunSummary,
    exit_code: u8,
    closure_report: Option<&str>,
) -> Vec<(String, String)> {
    let status = summary
        .outcome
        .and_then(|o| serde_json::to_value(o).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unfinished".into());
    let mut variables = vec![
        ("RUNSHEET_STATUS".to_owned(), status),
        ("RUNSHEET_EXIT_CODE".to_owned(), exit_code.to_string()),
        ("RUNSHEET_RUN_ID".to_owned(), summary.facts.run.clone()),
        (
            "RUNSHEET_ROLLBACK_PERFORMED".to_owned(),
            rollback_performed(summary).to_string(),
        ),
        (
            "RUNSHEET_CLOSE_CODE".to_owned(),
            close_code(summary).unwrap_or_default().to_owned(),
        ),
        ("RUNSHEET_SUMMARY".to_owned(), one_line_summary(summary)),
        (
            "RUNSHEET_PLAYBOOK".to_owned(),
            summary.facts.playbook.clone(),
        ),
        (
            "RUNSHEET_ENVIRONMENT".to_owned(),
            summary.facts.environment.clone().unwrap_or_default(),
        ),
    ];
    variables.push((
        "RUNSHEET_WAITING_GATES".to_owned(),
        summary.waiting_gates.join(","),
    ));
    if let Some(path) = closure_report {
        variables.push(("RUNSHEET_CLOSURE_REPORT".to_owned(), path.to_owned()));
    }
    for (name, value) in &summary.outputs {
        variables.push((
            format!("{OUTPUT_PREFIX}{}", name.to_ascii_uppercase()),
            output_text(value),
        ));
    }
    variables
}

/// One line for a pipeline's summary field: playbook, environment, outcome, step counts.
fn one_line_summary(summary: &RunSummary) -> String {
    let count = |status: &str| summary.steps.iter().filter(|s| s.status == status).count();
    format!(
        "{} on {}: {}; {} step(s) succeeded, {} failed, {} skipped",
        summary.facts.playbook,
        summary
            .facts
            .environment
            .as_deref()
            .unwrap_or("no environment"),
        outcome_text(summary.outcome),
        count("succeeded") + count("restored"),
        count("failed"),
        count("skipped"),
    )
}

/// An output as text: strings as they are, `null` as nothing, anything else as JSON.
fn output_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The file's text: a header comment, then `NAME='value'` lines.
pub fn render(variables: &[(String, String)]) -> String {
    let mut text = String::from(
        "# runsheet run variables: `. ./runsheet.env` in a POSIX shell; one variable per line.\n",
    );
    for (name, value) in variables {
        text.push_str(name);
        text.push('=');
        text.push_str(&quote(value));
        text.push('\n');
    }
    text
}

/// A value single-quoted for a POSIX shell, on one line: a newline becomes `\n`, a carriage
/// return `\r`, other control characters `?`, and `'` is written `'\''`.
pub fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for character in value.chars() {
        match character {
            '\'' => quoted.push_str("'\\''"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push('\t'),
            c if c.is_control() => quoted.push('?'),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a variable that is missing fails the test"
)]
mod tests {
    use serde_json::json;

    use super::super::fixtures;
    use super::*;

    fn value<'a>(variables: &'a [(String, String)], name: &str) -> &'a str {
        variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn quotes_make_any_value_one_safe_line() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("a\nb\r"), "'a\\nb\\r'");
        assert_eq!(quote("$(rm -rf /) `x` \"y\""), "'$(rm -rf /) `x` \"y\"'");
        assert_eq!(quote("esc\u{1b}[31m"), "'esc?[31m'");
    }

    #[test]
    fn a_successful_run_has_every_variable() {
        let mut summary = fixtures::successful();
        summary
            .outputs
            .insert("snapshot_path".into(), json!("/tmp/snap.yaml"));
        summary
            .outputs
            .insert("nodes".into(), json!(["dp1", "dp2"]));
        let variables = run_variables(&summary, 0, Some("runsheet-out/closure.md"));
        assert_eq!(value(&variables, "RUNSHEET_STATUS"), "succeeded");
        assert_eq!(value(&variables, "RUNSHEET_EXIT_CODE"), "0");
        assert_eq!(value(&variables, "RUNSHEET_RUN_ID"), summary.facts.run);
        assert_eq!(value(&variables, "RUNSHEET_ROLLBACK_PERFORMED"), "false");
        assert_eq!(value(&variables, "RUNSHEET_CLOSE_CODE"), "Successful");
        assert_eq!(
            value(&variables, "RUNSHEET_OUTPUT_SNAPSHOT_PATH"),
            "/tmp/snap.yaml"
        );
        assert_eq!(
            value(&variables, "RUNSHEET_OUTPUT_NODES"),
            r#"["dp1","dp2"]"#
        );
        let text = render(&variables);
        assert!(
            text.lines().skip(1).all(|l| l.starts_with("RUNSHEET_")),
            "{text}"
        );
    }

    #[test]
    fn a_paused_run_names_its_gates_for_resume() {
        let summary = fixtures::paused_with_approval();
        let variables = run_variables(&summary, 4, None);
        assert_eq!(value(&variables, "RUNSHEET_STATUS"), "paused");
        assert_eq!(value(&variables, "RUNSHEET_CLOSE_CODE"), "");
        assert_eq!(value(&variables, "RUNSHEET_WAITING_GATES"), "go-live");
    }

    #[test]
    fn a_rolled_back_run_says_so() {
        let variables = run_variables(&fixtures::rolled_back(), 1, None);
        assert_eq!(value(&variables, "RUNSHEET_STATUS"), "rolled_back");
        assert_eq!(value(&variables, "RUNSHEET_ROLLBACK_PERFORMED"), "true");
        assert_eq!(value(&variables, "RUNSHEET_CLOSE_CODE"), "Unsuccessful");
        assert!(
            !variables
                .iter()
                .any(|(n, _)| n == "RUNSHEET_CLOSURE_REPORT")
        );
    }
}
