//! The Markdown change-closure report: what a change request's closure needs to say.

use super::diff::unified;
use super::text::{duration, outcome_text};
use crate::action::Change;
use crate::run::event::Outcome;
use crate::run::summary::{RollbackSummary, RunSummary, StepSummary};

/// Longest diff shown per change; the rest is counted, not shown.
const DIFF_LINE_LIMIT: usize = 200;

/// Step statuses in the order the headline counts them.
const STATUS_ORDER: [&str; 7] = [
    "succeeded",
    "restored",
    "planned",
    "failed",
    "failed (tolerated)",
    "skipped",
    "paused",
];

/// The summary as a Markdown change-closure report.
pub(super) fn render(summary: &RunSummary) -> String {
    let mut document = Document::default();
    title(&mut document, summary);
    facts(&mut document, summary);
    steps(&mut document, &summary.steps);
    changes(&mut document, summary);
    approvals(&mut document, summary);
    rollback(&mut document, summary.rollback.as_ref());
    outputs(&mut document, summary);
    bullet_section(&mut document, "Needs attention", &summary.attention);
    bullet_section(&mut document, "Notices", &summary.notices);
    document.finish()
}

fn title(document: &mut Document, summary: &RunSummary) {
    let playbook = inline(&summary.facts.playbook);
    match &summary.facts.change_id {
        Some(change_id) => document.heading(
            1,
            &format!("Change report: {}, {playbook}", inline(change_id)),
        ),
        None => document.heading(1, &format!("Change report: {playbook}")),
    }
    document.paragraph(&format!(
        "**Outcome: {}.** {}",
        outcome_text(summary.outcome),
        step_counts(&summary.steps)
    ));
}

fn step_counts(steps: &[StepSummary]) -> String {
    if steps.is_empty() {
        return "No step ran.".to_owned();
    }
    let statuses: Vec<String> = steps.iter().map(status_words).collect();
    let mut counts: Vec<String> = STATUS_ORDER
        .iter()
        .filter_map(|status| {
            let count = statuses.iter().filter(|words| words == status).count();
            (count > 0).then(|| format!("{count} {status}"))
        })
        .collect();
    let other = statuses
        .iter()
        .filter(|words| !STATUS_ORDER.contains(&words.as_str()))
        .count();
    if other > 0 {
        counts.push(format!("{other} other"));
    }
    let noun = if steps.len() == 1 { "step" } else { "steps" };
    format!("{} {noun}: {}.", steps.len(), counts.join(", "))
}

fn facts(document: &mut Document, summary: &RunSummary) {
    let facts = &summary.facts;
    let none = || "none given".to_owned();
    let playbook = if facts.playbook_path.is_empty() {
        facts.playbook.clone()
    } else {
        format!("{} ({})", facts.playbook, facts.playbook_path)
    };
    let mut rows = vec![
        ("Change id", facts.change_id.clone().unwrap_or_else(none)),
        ("Window", facts.window.clone().unwrap_or_else(none)),
        ("Operator", facts.operator.clone()),
        ("Playbook", playbook),
        ("Playbook SHA-256", facts.playbook_sha256.clone()),
        (
            "Environment",
            facts.environment.clone().unwrap_or_else(none),
        ),
        ("Run id", facts.run.clone()),
        (
            "Dry run",
            if facts.dry_run { "yes" } else { "no" }.to_owned(),
        ),
        ("Started", summary.started_at.clone()),
        ("Finished", summary.finished_at.clone()),
        ("Duration", duration(summary.elapsed_ms)),
        ("Final outcome", outcome_text(summary.outcome).to_owned()),
        (
            "Suggested close code",
            super::close::close_code(summary)
                .unwrap_or("none yet (the run is not finished)")
                .to_owned(),
        ),
    ];
    if let Some(ci) = &facts.ci {
        rows.push(("CI execution", ci_text(ci)));
    }
    document.heading(2, "Facts");
    document.table(
        &["Fact", "Value"],
        rows.into_iter()
            .map(|(fact, value)| vec![fact.to_owned(), value])
            .collect(),
    );
}

/// The CI execution in one cell: its link, else the system with its ids.
fn ci_text(ci: &crate::run::summary::CiContext) -> String {
    let ids: Vec<String> = [
        ("pipeline", &ci.pipeline),
        ("stage", &ci.stage),
        ("build", &ci.build_id),
        ("execution", &ci.execution_id),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v}")))
    .collect();
    let mut text = ci.system.clone();
    if !ids.is_empty() {
        text.push_str(&format!(" ({})", ids.join(", ")));
    }
    if let Some(url) = &ci.execution_url {
        text.push_str(&format!(": {url}"));
    }
    text
}

fn steps(document: &mut Document, steps: &[StepSummary]) {
    document.heading(2, "Steps");
    if steps.is_empty() {
        document.paragraph("No step ran.");
        return;
    }
    let rows = steps
        .iter()
        .map(|step| {
            vec![
                step.id.clone(),
                step.action.clone(),
                status_words(step),
                step_duration(step),
                step_note(step),
            ]
        })
        .collect();
    document.table(&["Step", "Action", "Status", "Duration", "Note"], rows);
}

fn status_words(step: &StepSummary) -> String {
    if step.status == "failed" && step.tolerated {
        "failed (tolerated)".to_owned()
    } else {
        step.status.replace('_', " ")
    }
}

fn step_duration(step: &StepSummary) -> String {
    let ran = matches!(step.status.as_str(), "succeeded" | "failed");
    if ran || step.elapsed_ms > 0 {
        duration(step.elapsed_ms)
    } else {
        String::new()
    }
}

fn step_note(step: &StepSummary) -> String {
    let mut parts = Vec::new();
    if let Some(message) = &step.message {
        parts.push(message.clone());
    }
    if let Some(change) = &step.change {
        parts.push(change.summary.clone());
    }
    if step.attempts > 1 {
        parts.push(format!("{} attempts", step.attempts));
    }
    parts.join("; ")
}

fn changes(document: &mut Document, summary: &RunSummary) {
    let planned = summary.facts.dry_run || summary.outcome == Some(Outcome::Planned);
    document.heading(
        2,
        if planned {
            "Changes planned"
        } else {
            "Changes applied"
        },
    );
    let changed: Vec<(&StepSummary, &Change)> = summary
        .steps
        .iter()
        .filter_map(|step| step.change.as_ref().map(|change| (step, change)))
        .collect();
    if changed.is_empty() {
        document.paragraph("No step reported a change.");
        return;
    }
    for (step, change) in changed {
        document.heading(
            3,
            &format!("{} ({})", inline(&step.id), inline(&step.action)),
        );
        document.paragraph(&inline(&change.summary));
        change_body(document, change);
    }
}

fn change_body(document: &mut Document, change: &Change) {
    if change.changes == Some(false) {
        document.paragraph("No change.");
        return;
    }
    if change.before.is_none() && change.after.is_none() {
        document.paragraph("The action recorded no before and after text.");
        return;
    }
    let diff = unified(change.before.as_deref(), change.after.as_deref());
    if diff.is_empty() {
        document.paragraph("The recorded before and after texts are the same.");
        return;
    }
    let lines: Vec<&str> = diff.lines().collect();
    let shown = lines.len().min(DIFF_LINE_LIMIT);
    document.code_block("diff", &lines[..shown]);
    let left_out = lines.len() - shown;
    if left_out > 0 {
        let noun = if left_out == 1 { "line" } else { "lines" };
        document.paragraph(&format!(
            "_{left_out} more diff {noun} left out; the JSON report has the full before and after texts._"
        ));
    }
}

fn approvals(document: &mut Document, summary: &RunSummary) {
    document.heading(2, "Approvals");
    if summary.approvals.is_empty() {
        document.paragraph("No approval gate was answered.");
        return;
    }
    let rows = summary
        .approvals
        .iter()
        .map(|approval| {
            let decision = if approval.approved {
                "approved"
            } else {
                "refused"
            };
            vec![
                approval.gate.clone(),
                approval.by.clone(),
                approval.at.clone(),
                decision.to_owned(),
            ]
        })
        .collect();
    document.table(&["Gate", "By", "At", "Decision"], rows);
}

fn rollback(document: &mut Document, rollback: Option<&RollbackSummary>) {
    document.heading(2, "Rollback");
    let Some(rollback) = rollback else {
        document.paragraph("No rollback ran.");
        return;
    };
    let checkpoint = match &rollback.checkpoint {
        Some(checkpoint) => format!("Checkpoint kept: {}.", inline(checkpoint)),
        None => "No checkpoint kept.".to_owned(),
    };
    document.paragraph(&format!(
        "Policy: {}. {checkpoint}",
        inline(&rollback.policy)
    ));
    if rollback.steps.is_empty() {
        document.paragraph("Nothing was undone.");
        return;
    }
    let rows = rollback
        .steps
        .iter()
        .map(|undo| vec![undo.id.clone(), undo.status.clone(), undo.message.clone()])
        .collect();
    document.table(&["Step", "Result", "Detail"], rows);
}

/// The playbook's published outputs, when it declares any.
fn outputs(document: &mut Document, summary: &RunSummary) {
    if summary.outputs.is_empty() {
        return;
    }
    document.heading(2, "Outputs");
    let rows = summary
        .outputs
        .iter()
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            vec![name.clone(), text]
        })
        .collect();
    document.table(&["Output", "Value"], rows);
}

fn bullet_section(document: &mut Document, heading: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    document.heading(2, heading);
    document.bullets(items);
}

/// A Markdown text built block by block; each block ends with a blank line.
#[derive(Default)]
struct Document {
    text: String,
}

impl Document {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn heading(&mut self, level: usize, text: &str) {
        self.line(&format!("{} {text}", "#".repeat(level)));
        self.line("");
    }

    fn paragraph(&mut self, text: &str) {
        self.line(text);
        self.line("");
    }

    fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>) {
        self.line(&format!("| {} |", header.join(" | ")));
        self.line(&format!("|{}", "---|".repeat(header.len())));
        for row in rows {
            let cells: Vec<String> = row.iter().map(|text| cell(text)).collect();
            self.line(&format!("| {} |", cells.join(" | ")));
        }
        self.line("");
    }

    fn bullets(&mut self, items: &[String]) {
        for item in items {
            // Later lines are indented so they stay inside the item.
            self.line(&format!("- {}", plain(item).replace('\n', "\n  ")));
        }
        self.line("");
    }

    fn code_block(&mut self, language: &str, lines: &[&str]) {
        let fence = fence_for(lines);
        self.line(&format!("{fence}{language}"));
        for line in lines {
            self.line(line);
        }
        self.line(&fence);
        self.line("");
    }

    fn finish(mut self) -> String {
        while self.text.ends_with("\n\n") {
            self.text.pop();
        }
        self.text
    }
}

/// Text made safe for one table cell: escaped as [`plain`], `|` escaped, line breaks as `<br>`.
fn cell(text: &str) -> String {
    plain(text)
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

/// Text made safe for a heading or a sentence: on one line, escaped as [`plain`].
fn inline(text: &str) -> String {
    plain(&text.replace("\r\n", " ").replace(['\n', '\r'], " "))
}

/// Text shown as written: backslashes and HTML markup (error bodies often hold some) escaped.
fn plain(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A code fence longer than any run of backticks in the lines it encloses.
fn fence_for(lines: &[&str]) -> String {
    let longest = lines
        .iter()
        .flat_map(|line| line.split(|character| character != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::*;
    use crate::run::event::EventKind;

    #[test]
    fn successful_report_has_facts_steps_and_the_diff() {
        let report = render(&fixtures::successful());
        assert!(report.starts_with(
            "# Change report: CHG0031234, kong-route-update\n\n**Outcome: successful.** 3 steps: 2 succeeded, 1 skipped.\n"
        ), "{report}");
        for row in [
            "| Change id | CHG0031234 |",
            "| Window | 2026-03-14T22:00:00Z/2026-03-15T00:00:00Z |",
            "| Operator | alice |",
            "| Playbook | kong-route-update (playbooks/kong-route-update.yaml) |",
            &format!("| Playbook SHA-256 | {} |", fixtures::SHA256),
            "| Environment | prod |",
            &format!("| Run id | {} |", fixtures::RUN_ID),
            "| Dry run | no |",
            "| Started | 2026-03-14T22:00:00.000Z |",
            "| Finished | 2026-03-14T22:00:05.000Z |",
            "| Duration | 5.0 s |",
            "| Final outcome | successful |",
            "| update-route | kong.route | succeeded | 1.5 s | update route r1 (paths); 2 attempts |",
            "| smoke-extra |  | skipped |  | `when` was false |",
        ] {
            assert!(
                report.contains(&format!("\n{row}\n")),
                "missing {row:?} in\n{report}"
            );
        }
        let diff = "## Changes applied\n\n### update-route (kong.route)\n\nupdate route r1 (paths)\n\n```diff\n--- before\n+++ after\n@@ -1,6 +1,7 @@\n name: r1\n paths:\n - /v1\n+- /v2\n strip_path: true\n service: billing\n protocols:\n";
        assert!(report.contains(diff), "{report}");
        assert!(
            report.contains("## Rollback\n\nNo rollback ran.\n"),
            "{report}"
        );
        assert!(
            report.contains("## Approvals\n\nNo approval gate was answered.\n"),
            "{report}"
        );
        assert!(
            report.contains("## Notices\n\n- window end taken from --window-end\n"),
            "{report}"
        );
        assert!(!report.contains("Needs attention"), "{report}");
        assert!(
            report.ends_with("end taken from --window-end\n"),
            "{report}"
        );
    }

    #[test]
    fn failed_report_has_the_rollback_results_and_attention() {
        let report = render(&fixtures::rolled_back_with_failed_undo());
        assert!(
            report.contains(
                "**Outcome: needs attention.** 5 steps: 3 succeeded, 1 failed, 1 skipped."
            ),
            "{report}"
        );
        assert!(
            report.contains("| Final outcome | needs attention |"),
            "{report}"
        );
        assert!(report.contains(
            "| patch-plugin | kong.plugin | failed | 2.4 s | HTTP 409 conflict on /plugins/p1<br>request id 5b1c; 3 attempts |"
        ), "{report}");
        assert!(report.contains(
            "## Rollback\n\nPolicy: checkpoint. Checkpoint kept: snapshot.\n\n| Step | Result | Detail |\n|---|---|---|\n| update-route | undone | undo record |\n| update-upstream | failed | HTTP 503 from admin API: &lt;html&gt;Service &amp; Co&lt;/html&gt; \\| retry later |\n"
        ), "{report}");
        assert!(
            report.contains(
                "## Needs attention\n\n- update-upstream: undo failed, restore slots 1000 by hand\n"
            ),
            "{report}"
        );
        assert_eq!(report.matches("```diff\n").count(), 2, "{report}");
    }

    #[test]
    fn clean_rollback_reads_failed_and_rolled_back() {
        let report = render(&fixtures::rolled_back());
        assert!(
            report.contains("| Final outcome | failed and rolled back |"),
            "{report}"
        );
        assert!(
            report.contains("Policy: rollback. No checkpoint kept."),
            "{report}"
        );
    }

    #[test]
    fn paused_report_lists_the_approval() {
        let report = render(&fixtures::paused_with_approval());
        assert!(report.contains("| Final outcome | paused |"), "{report}");
        assert!(report.contains(
            "## Approvals\n\n| Gate | By | At | Decision |\n|---|---|---|---|\n| cab | bob | 2026-03-14T22:00:30.000Z | approved |\n"
        ), "{report}");
        assert!(
            report.contains("| go-live |  | paused |  | waiting at gate `go-live` |"),
            "{report}"
        );
    }

    #[test]
    fn refused_approval_says_refused() {
        let mut summary = fixtures::paused_with_approval();
        summary.apply(&fixtures::event(
            40,
            EventKind::Approval {
                gate: "go-live".into(),
                by: "carol".into(),
                approved: false,
            },
        ));
        let report = render(&summary);
        assert!(
            report.contains("| go-live | carol | 2026-03-14T22:00:40.000Z | refused |"),
            "{report}"
        );
    }

    #[test]
    fn tolerated_failure_is_marked() {
        let report = render(&fixtures::tolerated_failure());
        assert!(report.contains(
            "| warm-cache | http.request | failed (tolerated) | 2.4 s | HTTP 502 from cache warmer; 3 attempts |"
        ), "{report}");
        assert!(
            report
                .contains("| snapshot |  | restored |  | done by an earlier attempt of this run |"),
            "{report}"
        );
        assert!(
            report.contains("1 succeeded, 1 restored, 1 failed (tolerated)."),
            "{report}"
        );
    }

    #[test]
    fn dry_run_reports_changes_planned() {
        let report = render(&fixtures::planned());
        assert!(
            report.contains("| Final outcome | planned (dry run, nothing changed) |"),
            "{report}"
        );
        assert!(report.contains("| Dry run | yes |"), "{report}");
        assert!(report.contains("## Changes planned\n"), "{report}");
        assert!(!report.contains("## Changes applied"), "{report}");
    }

    #[test]
    fn long_diff_is_capped_and_counted() {
        let after: String = (1..=500).map(|line| format!("line {line}\n")).collect();
        let summary = fixtures::fold(
            fixtures::facts(),
            &[fixtures::succeeded(
                1,
                "write-config",
                "host.file",
                10,
                Some(Change::between("write kong.conf", None, after)),
            )],
        );
        let report = render(&summary);
        // 500 added lines plus the two headers and the hunk header.
        assert!(
            report.contains("\n+line 197\n```\n\n_303 more diff lines left out;"),
            "{report}"
        );
        assert!(!report.contains("+line 198\n"), "{report}");
    }

    #[test]
    fn unchanged_and_textless_changes_show_no_diff() {
        let summary = fixtures::fold(
            fixtures::facts(),
            &[
                fixtures::succeeded(
                    1,
                    "same",
                    "kong.route",
                    10,
                    Some(Change::none("route r1 already up to date")),
                ),
                fixtures::succeeded(
                    2,
                    "script",
                    "host.command",
                    10,
                    Some(Change::unknown("ran reload.sh")),
                ),
            ],
        );
        let report = render(&summary);
        assert!(
            report.contains("### same (kong.route)\n\nroute r1 already up to date\n\nNo change.\n"),
            "{report}"
        );
        assert!(report.contains("### script (host.command)\n\nran reload.sh\n\nThe action recorded no before and after text.\n"), "{report}");
        assert!(!report.contains("```"), "{report}");
    }

    #[test]
    fn no_change_and_no_steps_are_said() {
        let report = render(&crate::run::summary::RunSummary::new(fixtures::facts()));
        assert!(
            report.contains("**Outcome: did not finish.** No step ran."),
            "{report}"
        );
        assert!(
            report.contains("## Changes applied\n\nNo step reported a change.\n"),
            "{report}"
        );
    }

    #[test]
    fn table_cells_escape_pipes_backslashes_and_line_breaks() {
        assert_eq!(cell("a|b\nc\r\nd"), "a\\|b<br>c<br>d");
        assert_eq!(cell("C:\\temp|x"), "C:\\\\temp\\|x");
    }

    #[test]
    fn markup_in_texts_is_shown_not_rendered() {
        assert_eq!(cell("<b>503</b> & co"), "&lt;b&gt;503&lt;/b&gt; &amp; co");
        assert_eq!(inline("a <br>\nb"), "a &lt;br&gt; b");
        let mut document = Document::default();
        document.bullets(&["<script>".to_owned()]);
        assert_eq!(document.finish(), "- &lt;script&gt;\n");
    }

    #[test]
    fn multiline_list_items_stay_inside_the_item() {
        let mut document = Document::default();
        document.bullets(&["first\nsecond".to_owned()]);
        assert_eq!(document.finish(), "- first\n  second\n");
    }

    #[test]
    fn fence_is_longer_than_backticks_in_the_diff() {
        assert_eq!(fence_for(&["+plain"]), "```");
        assert_eq!(fence_for(&["+```yaml", "+``"]), "````");
    }

    #[test]
    fn the_ci_execution_and_the_outputs_are_listed() {
        let mut summary = fixtures::successful();
        summary.facts.ci = Some(crate::run::summary::CiContext {
            system: "harness".into(),
            execution_url: Some("https://harness.example/executions/Vq1b".into()),
            pipeline: Some("kong_rolling_upgrade".into()),
            build_id: Some("42".into()),
            ..Default::default()
        });
        summary
            .outputs
            .insert("snapshot_path".into(), serde_json::json!("/tmp/a|b"));
        let report = render(&summary);
        assert!(
            report.contains("| CI execution | harness (pipeline kong_rolling_upgrade, build 42): https://harness.example/executions/Vq1b |"),
            "{report}"
        );
        assert!(
            report.contains("| Suggested close code | Successful |"),
            "{report}"
        );
        assert!(
            report.contains(
                "## Outputs\n\n| Output | Value |\n|---|---|\n| snapshot_path | /tmp/a\\|b |\n"
            ),
            "{report}"
        );
    }

    #[test]
    fn failed_run_snapshot() {
        insta::assert_snapshot!(render(&fixtures::rolled_back_with_failed_undo()));
    }
}
