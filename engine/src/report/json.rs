//! The JSON report: the run summary with a schema version and the outcome in words.

use serde::Serialize;

use super::ReportError;
use super::text::outcome_text;
use crate::run::summary::RunSummary;

/// Version of the JSON report's shape; raised when a field changes meaning or goes away.
const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct JsonReport<'summary> {
    schema_version: u32,
    // Serialization only: the summary's fields sit at the top level of the report.
    #[serde(flatten)]
    summary: &'summary RunSummary,
    outcome_text: &'static str,
}

/// The summary as pretty JSON, ending with a newline.
pub(super) fn render(summary: &RunSummary) -> Result<String, ReportError> {
    let report = JsonReport {
        schema_version: SCHEMA_VERSION,
        summary,
        outcome_text: outcome_text(summary.outcome),
    };
    let mut json = serde_json::to_string_pretty(&report).map_err(ReportError::Json)?;
    json.push('\n');
    Ok(json)
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a report that does not render or parse fails the test"
)]
mod tests {
    use serde_json::{Value, json};

    use super::super::fixtures;
    use super::*;

    fn parse(summary: &RunSummary) -> Value {
        let text = render(summary).unwrap();
        assert!(text.ends_with("}\n"));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn report_is_the_summary_plus_version_and_outcome_words() {
        let summary = fixtures::successful();
        let mut report = parse(&summary);
        let object = report.as_object_mut().unwrap();
        assert_eq!(object.remove("schema_version"), Some(json!(1)));
        assert_eq!(object.remove("outcome_text"), Some(json!("successful")));
        assert_eq!(report, serde_json::to_value(&summary).unwrap());
    }

    #[test]
    fn schema_version_comes_first() {
        let text = render(&fixtures::successful()).unwrap();
        assert!(text.starts_with("{\n  \"schema_version\": 1,\n"), "{text}");
    }

    #[test]
    fn report_round_trips_through_serde_json() {
        let text = render(&fixtures::rolled_back_with_failed_undo()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let again = serde_json::to_string_pretty(&value).unwrap() + "\n";
        assert_eq!(again, text);
    }

    #[test]
    fn facts_steps_and_changes_are_fields() {
        let report = parse(&fixtures::successful());
        assert_eq!(report["run"], fixtures::RUN_ID);
        assert_eq!(report["playbook"], fixtures::PLAYBOOK);
        assert_eq!(report["playbook_sha256"], fixtures::SHA256);
        assert_eq!(report["change_id"], "CHG0031234");
        assert_eq!(report["environment"], "prod");
        assert_eq!(report["started_at"], fixtures::at(0));
        assert_eq!(report["finished_at"], fixtures::at(5));
        assert_eq!(report["elapsed_ms"], 5_000);
        assert_eq!(report["outcome"], "succeeded");
        let steps = report["steps"].as_array().unwrap();
        let ids: Vec<&str> = steps
            .iter()
            .map(|step| step["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["snapshot", "update-route", "smoke-extra"]);
        assert_eq!(steps[1]["attempts"], 2);
        assert_eq!(steps[1]["outputs"]["route_id"], "r1");
        assert_eq!(steps[1]["change"]["before"], fixtures::ROUTE_BEFORE);
        assert_eq!(steps[1]["change"]["after"], fixtures::ROUTE_AFTER);
        assert_eq!(steps[2]["status"], "skipped");
        assert_eq!(
            report["notices"],
            json!(["window end taken from --window-end"])
        );
        assert_eq!(report["rollback"], Value::Null);
    }

    #[test]
    fn rollback_and_attention_are_fields() {
        let report = parse(&fixtures::rolled_back_with_failed_undo());
        assert_eq!(report["outcome"], "needs_attention");
        assert_eq!(report["outcome_text"], "needs attention");
        assert_eq!(report["rollback"]["policy"], "checkpoint");
        assert_eq!(report["rollback"]["checkpoint"], "snapshot");
        let undos = report["rollback"]["steps"].as_array().unwrap();
        assert_eq!(undos.len(), 2);
        assert_eq!(undos[0]["status"], "undone");
        assert_eq!(undos[1]["status"], "failed");
        assert_eq!(
            report["attention"],
            json!(["update-upstream: undo failed, restore slots 1000 by hand"])
        );
    }

    #[test]
    fn approvals_are_fields() {
        let report = parse(&fixtures::paused_with_approval());
        assert_eq!(report["outcome_text"], "paused");
        assert_eq!(
            report["approvals"],
            json!([{ "gate": "cab", "by": "bob", "at": fixtures::at(30), "approved": true }])
        );
    }

    #[test]
    fn unfinished_run_says_so() {
        let summary = RunSummary::new(fixtures::facts());
        let report = parse(&summary);
        assert_eq!(report["outcome"], Value::Null);
        assert_eq!(report["outcome_text"], "did not finish");
    }
}
