//! The JUnit report, shaped for CI pipelines such as Harness.
//!
//! One testsuite `runsheet.<playbook>` holds a testcase per step: its name is the
//! runtime step id, its classname the action type, its time the step's time.
//!
//! - A failed step is a `failure` (first line of the error as message, the whole
//!   error as body).
//! - A tolerated failure (`continue_on_error`, `max_failures`) is a passed testcase
//!   with a `system-out` note: the run went on by design, so it must not turn the
//!   pipeline's tests red.
//! - Skipped steps and steps waiting at a gate are `skipped`; restored and planned
//!   steps pass with a note.
//! - A run that needs attention, was interrupted or did not finish gets a failing
//!   testcase `run` with the outcome and the attention list, so the report is red
//!   even when no step failed; so does a rolled-back run whose failure is not listed.
//!
//! When a rollback ran, a second testsuite `runsheet.<playbook>.rollback` holds a
//! testcase per undo; a failed undo is a `failure`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::ReportError;
use super::text::{cap, first_line, outcome_text};
use crate::run::event::Outcome;
use crate::run::summary::{RollbackSummary, RunSummary, StepSummary, UndoSummary};

/// Longest failure message; Harness shows it as the short reason.
const MESSAGE_LIMIT: usize = 500;
/// Longest body or note; Harness keeps the last 4000 characters of a field.
const BODY_LIMIT: usize = 3_900;
/// Classname of the testcase for the run as a whole.
const RUN_CLASSNAME: &str = "runsheet";
/// Classname of the testcases for undos.
const ROLLBACK_CLASSNAME: &str = "rollback";

/// The summary as JUnit XML.
pub(super) fn render(summary: &RunSummary) -> Result<String, ReportError> {
    let mut report = Report::new("runsheet");
    report.set_time(milliseconds(summary.elapsed_ms));
    report.add_test_suite(steps_suite(summary));
    if let Some(rollback) = &summary.rollback {
        report.add_test_suite(rollback_suite(summary, rollback));
    }
    report.to_string().map_err(ReportError::Junit)
}

/// JUnit XML for a command that ran nothing (refused, invalid input): one failed test case
/// `start` whose message says why, so a pipeline's JUnit publish shows red, not nothing.
pub fn not_started(status: &str, message: &str) -> Result<String, ReportError> {
    let mut case_status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    case_status.set_message(message);
    case_status.set_type(status);
    let mut case = TestCase::new("start", case_status);
    case.set_classname("runsheet");
    let mut suite = TestSuite::new("runsheet");
    suite.add_test_case(case);
    let mut report = Report::new("runsheet");
    report.add_test_suite(suite);
    report.to_string().map_err(ReportError::Junit)
}

fn steps_suite(summary: &RunSummary) -> TestSuite {
    let mut suite = TestSuite::new(format!("runsheet.{}", summary.facts.playbook));
    suite.add_properties(properties(summary));
    if !summary.started_at.is_empty() {
        suite
            .extra
            .insert("timestamp".into(), summary.started_at.as_str().into());
    }
    suite.set_time(milliseconds(summary.elapsed_ms));
    suite.add_test_cases(summary.steps.iter().map(step_case));
    let step_failure_listed = summary
        .steps
        .iter()
        .any(|step| step.status == "failed" && !step.tolerated);
    if needs_run_failure(summary.outcome, step_failure_listed) {
        suite.add_test_case(run_case(summary));
    }
    add_skipped_count(&mut suite);
    suite
}

fn rollback_suite(summary: &RunSummary, rollback: &RollbackSummary) -> TestSuite {
    let mut suite = TestSuite::new(format!("runsheet.{}.rollback", summary.facts.playbook));
    suite.add_properties(properties(summary));
    suite.add_property(Property::new("rollback_policy", &rollback.policy));
    if let Some(checkpoint) = &rollback.checkpoint {
        suite.add_property(Property::new("checkpoint", checkpoint));
    }
    suite.add_test_cases(rollback.steps.iter().map(undo_case));
    add_skipped_count(&mut suite);
    suite
}

fn properties(summary: &RunSummary) -> Vec<Property> {
    let facts = &summary.facts;
    let named = [
        ("run_id", Some(facts.run.as_str())),
        ("playbook", Some(facts.playbook.as_str())),
        ("playbook_sha256", Some(facts.playbook_sha256.as_str())),
        ("change_id", facts.change_id.as_deref()),
        ("environment", facts.environment.as_deref()),
        ("outcome", Some(outcome_text(summary.outcome))),
    ];
    named
        .into_iter()
        .filter_map(|(name, value)| {
            value
                .filter(|value| !value.is_empty())
                .map(|value| Property::new(name, value))
        })
        .collect()
}

fn step_case(step: &StepSummary) -> TestCase {
    let status = match step.status.as_str() {
        "failed" if !step.tolerated => failure(step.message.as_deref(), &step.action),
        "succeeded" | "restored" | "planned" | "failed" => TestCaseStatus::success(),
        "skipped" | "paused" => skipped(step.message.as_deref().unwrap_or(&step.status)),
        other => skipped(&format!("status {other}")),
    };
    let mut case = TestCase::new(&step.id, status);
    if !step.action.is_empty() {
        case.set_classname(&step.action);
    }
    case.set_time(milliseconds(step.elapsed_ms));
    let notes = step_notes(step);
    if !notes.is_empty() {
        case.set_system_out(cap(&notes.join("\n"), BODY_LIMIT));
    }
    case
}

fn step_notes(step: &StepSummary) -> Vec<String> {
    let mut notes = Vec::new();
    match step.status.as_str() {
        "failed" if step.tolerated => notes.push(format!(
            "failed, tolerated (continue_on_error or max_failures): {}",
            step.message.as_deref().unwrap_or_default()
        )),
        "restored" => notes.push(format!(
            "restored, not run again: {}",
            step.message
                .as_deref()
                .unwrap_or("done by an earlier attempt")
        )),
        _ => {}
    }
    if let Some(change) = &step.change {
        let verb = match (step.status.as_str(), change.changes) {
            (_, Some(false)) => "no change",
            ("planned", _) => "planned (dry run)",
            _ => "changed",
        };
        notes.push(format!("{verb}: {}", change.summary));
    }
    if step.attempts > 1 {
        notes.push(format!("{} attempts", step.attempts));
    }
    notes
}

fn undo_case(undo: &UndoSummary) -> TestCase {
    let status = if undo.status == "undone" {
        TestCaseStatus::success()
    } else {
        failure(Some(&undo.message), ROLLBACK_CLASSNAME)
    };
    let mut case = TestCase::new(&undo.id, status);
    case.set_classname(ROLLBACK_CLASSNAME);
    if undo.status == "undone" {
        case.set_system_out(cap(&format!("undone: {}", undo.message), BODY_LIMIT));
    }
    case
}

/// Whether the run itself must show as a failure: these outcomes need a person
/// or left work undone, and the steps alone may not show it.
fn needs_run_failure(outcome: Option<Outcome>, step_failure_listed: bool) -> bool {
    match outcome {
        Some(Outcome::NeedsAttention | Outcome::Interrupted) | None => true,
        Some(Outcome::RolledBack | Outcome::Failed) => !step_failure_listed,
        Some(Outcome::Succeeded | Outcome::Planned | Outcome::Paused) => false,
    }
}

fn run_case(summary: &RunSummary) -> TestCase {
    let words = outcome_text(summary.outcome);
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(format!("run {words}"));
    status.set_type(RUN_CLASSNAME);
    let description = if summary.attention.is_empty() {
        format!("run {words}; no step was listed for attention")
    } else {
        summary
            .attention
            .iter()
            .map(|item| format!("- {item}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    status.set_description(cap(&description, BODY_LIMIT));
    let mut case = TestCase::new("run", status);
    case.set_classname(RUN_CLASSNAME);
    case.set_time(milliseconds(summary.elapsed_ms));
    case
}

fn failure(error: Option<&str>, kind: &str) -> TestCaseStatus {
    let error = error.unwrap_or("failed");
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(cap(first_line(error), MESSAGE_LIMIT));
    if !kind.is_empty() {
        status.set_type(kind);
    }
    status.set_description(cap(error, BODY_LIMIT));
    status
}

fn skipped(message: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::skipped();
    status.set_message(cap(message, MESSAGE_LIMIT));
    status
}

/// quick-junit counts skipped testcases as `disabled`; JUnit readers look for `skipped`.
fn add_skipped_count(suite: &mut TestSuite) {
    let skipped = suite
        .test_cases
        .iter()
        .filter(|case| matches!(case.status, TestCaseStatus::Skipped { .. }))
        .count();
    suite
        .extra
        .insert("skipped".into(), skipped.to_string().into());
}

fn milliseconds(milliseconds: u64) -> Duration {
    Duration::from_millis(milliseconds)
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a report that does not render, parse or hold the element fails the test"
)]
mod tests {
    use roxmltree::{Document, Node};

    use super::super::fixtures;
    use super::*;

    fn xml(summary: &RunSummary) -> String {
        render(summary).unwrap()
    }

    fn suites<'a>(document: &'a Document<'a>) -> Vec<Node<'a, 'a>> {
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        root.children()
            .filter(|node| node.has_tag_name("testsuite"))
            .collect()
    }

    fn cases<'a>(suite: Node<'a, 'a>) -> Vec<Node<'a, 'a>> {
        suite
            .children()
            .filter(|node| node.has_tag_name("testcase"))
            .collect()
    }

    fn case<'a>(suite: Node<'a, 'a>, name: &str) -> Node<'a, 'a> {
        cases(suite)
            .into_iter()
            .find(|case| case.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no testcase `{name}`"))
    }

    fn child<'a>(node: Node<'a, 'a>, tag: &str) -> Option<Node<'a, 'a>> {
        node.children().find(|child| child.has_tag_name(tag))
    }

    fn counts<'a>(node: Node<'a, 'a>) -> (&'a str, &'a str) {
        (
            node.attribute("tests").unwrap(),
            node.attribute("failures").unwrap(),
        )
    }

    fn property<'a>(suite: Node<'a, 'a>, name: &str) -> Option<&'a str> {
        child(suite, "properties")?
            .children()
            .find(|node| node.attribute("name") == Some(name))?
            .attribute("value")
    }

    #[test]
    fn successful_run_has_one_suite_with_a_testcase_per_step() {
        let text = xml(&fixtures::successful());
        let document = Document::parse(&text).unwrap();
        assert_eq!(document.root_element().attribute("name"), Some("runsheet"));
        assert_eq!(counts(document.root_element()), ("3", "0"));
        let suites = suites(&document);
        assert_eq!(suites.len(), 1);
        let suite = suites[0];
        assert_eq!(suite.attribute("name"), Some("runsheet.kong-route-update"));
        assert_eq!(counts(suite), ("3", "0"));
        assert_eq!(suite.attribute("skipped"), Some("1"));
        assert_eq!(suite.attribute("time"), Some("5.000"));
        assert_eq!(suite.attribute("timestamp"), Some(fixtures::at(0).as_str()));
        let names: Vec<&str> = cases(suite)
            .iter()
            .filter_map(|case| case.attribute("name"))
            .collect();
        assert_eq!(names, ["snapshot", "update-route", "smoke-extra"]);

        let update = case(suite, "update-route");
        assert_eq!(update.attribute("classname"), Some("kong.route"));
        assert_eq!(update.attribute("time"), Some("1.500"));
        assert!(child(update, "failure").is_none());
        let notes = child(update, "system-out").unwrap().text().unwrap();
        assert_eq!(notes, "changed: update route r1 (paths)\n2 attempts");

        let smoke = case(suite, "smoke-extra");
        assert_eq!(smoke.attribute("classname"), None);
        let skipped = child(smoke, "skipped").unwrap();
        assert_eq!(skipped.attribute("message"), Some("`when` was false"));
    }

    #[test]
    fn properties_identify_the_run() {
        let text = xml(&fixtures::successful());
        let document = Document::parse(&text).unwrap();
        let suite = suites(&document)[0];
        assert_eq!(property(suite, "run_id"), Some(fixtures::RUN_ID));
        assert_eq!(property(suite, "change_id"), Some("CHG0031234"));
        assert_eq!(property(suite, "environment"), Some("prod"));
        assert_eq!(property(suite, "playbook_sha256"), Some(fixtures::SHA256));
        assert_eq!(property(suite, "outcome"), Some("successful"));
    }

    #[test]
    fn absent_facts_are_left_out_of_the_properties() {
        let mut summary = fixtures::successful();
        summary.facts.change_id = None;
        summary.facts.environment = None;
        let text = xml(&summary);
        let document = Document::parse(&text).unwrap();
        let suite = suites(&document)[0];
        assert_eq!(property(suite, "change_id"), None);
        assert_eq!(property(suite, "environment"), None);
        assert_eq!(property(suite, "run_id"), Some(fixtures::RUN_ID));
    }

    #[test]
    fn failed_step_and_failed_undo_are_failures_in_their_suites() {
        let text = xml(&fixtures::rolled_back_with_failed_undo());
        let document = Document::parse(&text).unwrap();
        // Five steps and the run itself, plus two undos.
        assert_eq!(counts(document.root_element()), ("8", "3"));
        let suites = suites(&document);
        assert_eq!(suites.len(), 2);
        let (steps, rollback) = (suites[0], suites[1]);
        assert_eq!(counts(steps), ("6", "2"));
        assert_eq!(steps.attribute("skipped"), Some("1"));

        let plugin = child(case(steps, "patch-plugin"), "failure").unwrap();
        assert_eq!(
            plugin.attribute("message"),
            Some("HTTP 409 conflict on /plugins/p1")
        );
        assert_eq!(plugin.attribute("type"), Some("kong.plugin"));
        assert_eq!(
            plugin.text(),
            Some("HTTP 409 conflict on /plugins/p1\nrequest id 5b1c")
        );

        let run = case(steps, "run");
        assert_eq!(run.attribute("classname"), Some("runsheet"));
        let run_failure = child(run, "failure").unwrap();
        assert_eq!(
            run_failure.attribute("message"),
            Some("run needs attention")
        );
        assert_eq!(
            run_failure.text(),
            Some("- update-upstream: undo failed, restore slots 1000 by hand")
        );

        assert_eq!(
            rollback.attribute("name"),
            Some("runsheet.kong-route-update.rollback")
        );
        assert_eq!(counts(rollback), ("2", "1"));
        assert_eq!(property(rollback, "rollback_policy"), Some("checkpoint"));
        assert_eq!(property(rollback, "checkpoint"), Some("snapshot"));
        let undone = case(rollback, "update-route");
        assert_eq!(undone.attribute("classname"), Some("rollback"));
        assert!(child(undone, "failure").is_none());
        assert_eq!(
            child(undone, "system-out").unwrap().text(),
            Some("undone: undo record")
        );
        let undo_failure = child(case(rollback, "update-upstream"), "failure").unwrap();
        // Markup and ampersands in an error survive escaping.
        assert_eq!(
            undo_failure.attribute("message"),
            Some("HTTP 503 from admin API: <html>Service & Co</html> | retry later")
        );
    }

    #[test]
    fn rolled_back_run_is_red_through_its_failed_step_only() {
        let text = xml(&fixtures::rolled_back());
        let document = Document::parse(&text).unwrap();
        let suites = suites(&document);
        assert_eq!(counts(suites[0]), ("2", "1"));
        assert!(
            cases(suites[0])
                .iter()
                .all(|case| case.attribute("name") != Some("run"))
        );
        assert_eq!(counts(suites[1]), ("1", "0"));
        assert_eq!(property(suites[1], "checkpoint"), None);
    }

    #[test]
    fn rolled_back_run_without_a_listed_failure_gets_a_run_failure() {
        let mut summary = fixtures::rolled_back();
        summary.steps.retain(|step| step.status != "failed");
        let text = xml(&summary);
        let document = Document::parse(&text).unwrap();
        let run = case(suites(&document)[0], "run");
        let failure = child(run, "failure").unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some("run failed and rolled back")
        );
    }

    #[test]
    fn tolerated_failure_passes_with_a_note() {
        let text = xml(&fixtures::tolerated_failure());
        let document = Document::parse(&text).unwrap();
        assert_eq!(counts(document.root_element()), ("3", "0"));
        let suite = suites(&document)[0];
        let warm = case(suite, "warm-cache");
        assert!(child(warm, "failure").is_none());
        assert!(child(warm, "skipped").is_none());
        let note = child(warm, "system-out").unwrap().text().unwrap();
        assert!(note.starts_with("failed, tolerated"), "{note}");
        assert!(note.contains("HTTP 502 from cache warmer"), "{note}");
        assert!(note.contains("3 attempts"), "{note}");
    }

    #[test]
    fn restored_step_passes_with_a_note() {
        let text = xml(&fixtures::tolerated_failure());
        let document = Document::parse(&text).unwrap();
        let restored = case(suites(&document)[0], "snapshot");
        assert!(child(restored, "failure").is_none());
        assert!(child(restored, "skipped").is_none());
        assert_eq!(
            child(restored, "system-out").unwrap().text(),
            Some("restored, not run again: done by an earlier attempt of this run")
        );
    }

    #[test]
    fn paused_run_is_not_red_and_the_waiting_step_is_skipped() {
        let text = xml(&fixtures::paused_with_approval());
        let document = Document::parse(&text).unwrap();
        assert_eq!(counts(document.root_element()), ("3", "0"));
        let waiting = child(case(suites(&document)[0], "go-live"), "skipped").unwrap();
        assert_eq!(
            waiting.attribute("message"),
            Some("waiting at gate `go-live`")
        );
    }

    #[test]
    fn interrupted_run_without_failed_steps_still_has_a_failure() {
        let text = xml(&fixtures::interrupted());
        let document = Document::parse(&text).unwrap();
        assert_eq!(counts(document.root_element()), ("2", "1"));
        let failure = child(case(suites(&document)[0], "run"), "failure").unwrap();
        assert_eq!(failure.attribute("message"), Some("run interrupted"));
        assert_eq!(
            failure.text(),
            Some("run interrupted; no step was listed for attention")
        );
    }

    #[test]
    fn unfinished_run_has_a_failure() {
        let text = xml(&crate::run::summary::RunSummary::new(fixtures::facts()));
        let document = Document::parse(&text).unwrap();
        assert_eq!(counts(document.root_element()), ("1", "1"));
        let failure = child(case(suites(&document)[0], "run"), "failure").unwrap();
        assert_eq!(failure.attribute("message"), Some("run did not finish"));
    }

    #[test]
    fn planned_step_passes_with_its_change() {
        let text = xml(&fixtures::planned());
        let document = Document::parse(&text).unwrap();
        assert_eq!(counts(document.root_element()), ("1", "0"));
        let update = case(suites(&document)[0], "update-route");
        assert_eq!(
            child(update, "system-out").unwrap().text(),
            Some("planned (dry run): update route r1 (paths)")
        );
    }

    #[test]
    fn long_errors_are_capped() {
        let mut summary = fixtures::rolled_back();
        let long = format!("{}\n{}", "x".repeat(2_000), "y".repeat(10_000));
        summary.steps[1].message = Some(long);
        let text = xml(&summary);
        let document = Document::parse(&text).unwrap();
        let failure = child(case(suites(&document)[0], "patch-plugin"), "failure").unwrap();
        let message = failure.attribute("message").unwrap();
        assert!(message.starts_with(&"x".repeat(MESSAGE_LIMIT)), "{message}");
        assert!(message.ends_with("(1500 characters left out)"), "{message}");
        let body = failure.text().unwrap();
        assert!(body.chars().count() < 4_000, "{}", body.len());
        assert!(body.ends_with("characters left out)"));
    }

    #[test]
    fn failed_run_snapshot() {
        insta::assert_snapshot!(xml(&fixtures::rolled_back_with_failed_undo()));
    }
}
