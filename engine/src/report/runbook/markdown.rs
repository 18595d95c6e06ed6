//! The runbook document as Markdown.

use std::fmt::Write as _;

use super::model::{DocStep, Runbook, StepKindText};
use super::words;
use crate::report::diff::unified;

/// Longest diff shown per change; the rest is counted, not shown.
const DIFF_LINE_LIMIT: usize = 120;

/// The document as Markdown.
pub fn render(runbook: &Runbook) -> String {
    let mut out = String::new();
    title(&mut out, runbook);
    purpose(&mut out, runbook);
    inputs(&mut out, runbook);
    targets(&mut out, runbook);
    steps(&mut out, runbook);
    changes(&mut out, runbook);
    rollback(&mut out, runbook);
    gates(&mut out, runbook);
    verification(&mut out, runbook);
    durations(&mut out, runbook);
    out
}

fn title(out: &mut String, runbook: &Runbook) {
    let environment = runbook
        .environment
        .as_ref()
        .map(|e| format!(" on {}", inline(&e.name)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "# Runbook: {}{environment}\n",
        inline(&runbook.playbook)
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    let short_hash: String = runbook.playbook_sha256.chars().take(16).collect();
    row(
        out,
        &[
            "Playbook",
            &format!("`{}` (sha256 `{short_hash}`)", runbook.playbook_file),
        ],
    );
    row(
        out,
        &[
            "Environment",
            &runbook
                .environment
                .as_ref()
                .map_or("(none given)".to_owned(), |e| cell(&e.name)),
        ],
    );
    row(out, &["Steps", &cell(&words::counts(runbook))]);
    row(
        out,
        &["Rollback policy", &format!("`{}`", runbook.rollback_policy)],
    );
    row(out, &["Expected duration", &cell(&words::total(runbook))]);
    row(
        out,
        &["Changes from", &cell(&words::changes_source(runbook))],
    );
    out.push('\n');
    if let Some(plan) = &runbook.plan {
        for warning in &plan.warnings {
            let _ = writeln!(out, "> **Warning:** {}\n", inline(warning));
        }
    }
}

fn purpose(out: &mut String, runbook: &Runbook) {
    out.push_str("## Purpose\n\n");
    match &runbook.description {
        Some(description) => {
            let _ = writeln!(out, "{}\n", inline(description));
        }
        None => out.push_str("The playbook has no `description:`.\n\n"),
    }
    if !runbook.notes.is_empty() {
        out.push_str("From the playbook's header:\n\n");
        fenced(out, "text", &runbook.notes.join("\n"));
    }
}

fn inputs(out: &mut String, runbook: &Runbook) {
    out.push_str("## Inputs\n\n");
    if runbook.inputs.is_empty() {
        out.push_str("The playbook takes no inputs.\n\n");
    } else {
        out.push_str("| Input | Value | Type | Description |\n|---|---|---|---|\n");
        for input in &runbook.inputs {
            let value = if input.default {
                format!("`{}` (default)", code(&input.value))
            } else {
                format!("`{}`", code(&input.value))
            };
            row(
                out,
                &[
                    &format!("`{}`", input.name),
                    &value,
                    &input.kind,
                    &cell(input.description.as_deref().unwrap_or("")),
                ],
            );
        }
        out.push('\n');
    }
    if runbook.secrets.is_empty() {
        out.push_str("Secrets: none read by name in the playbook or environment.\n\n");
    } else {
        out.push_str("Secrets the run reads (by name only; values never appear in output, reports or the journal):\n\n");
        for secret in &runbook.secrets {
            let _ = writeln!(
                out,
                "- `{0}` (named in the {1}): `${0}`, or the file named by `${0}_FILE`",
                secret.name,
                inline(&secret.named_in)
            );
        }
        out.push('\n');
    }
}

fn targets(out: &mut String, runbook: &Runbook) {
    out.push_str("## Environment and targets\n\n");
    let Some(environment) = &runbook.environment else {
        out.push_str("No environment was given: targets are not known.\n\n");
        return;
    };
    let _ = writeln!(out, "Environment **{}**.\n", inline(&environment.name));
    if environment.change_rules.is_empty() {
        out.push_str("Change rules: none set in the environment file.\n\n");
    } else {
        out.push_str("Change rules:\n\n");
        for rule in &environment.change_rules {
            let _ = writeln!(out, "- {}", inline(rule));
        }
        out.push('\n');
    }
    for warning in &environment.warnings {
        let _ = writeln!(out, "> **Warning:** {}\n", inline(warning));
    }
    if runbook.gateways.is_empty() && runbook.hosts.is_empty() {
        out.push_str("No step runs against a gateway or host of the environment.\n\n");
        return;
    }
    out.push_str("| Target | What | Steps |\n|---|---|---|\n");
    for target in runbook.gateways.iter().chain(&runbook.hosts) {
        row(
            out,
            &[
                &format!("`{}`", target.name),
                &cell(&target.what),
                &target.steps.join(", "),
            ],
        );
    }
    out.push('\n');
    if runbook
        .steps
        .iter()
        .any(|s| s.on.iter().any(|o| o == super::targets::AT_RUN_TIME))
    {
        out.push_str("Some steps choose their target from earlier steps' results: those are decided at run time.\n\n");
    }
}

fn steps(out: &mut String, runbook: &Runbook) {
    out.push_str("## Steps\n\nIn execution order: a step starts once the steps it needs have ended well; a body's steps are numbered under their step, and run once per item of a `for_each`.\n\n");
    out.push_str("| # | Step | Does | On | Expected | Notes |\n|---|---|---|---|---|---|\n");
    let mut in_finally = false;
    for step in &runbook.steps {
        if step.finally && !in_finally {
            in_finally = true;
            out.push_str(
                "| | **finally**: always runs last, after success, failure or rollback | | | | |\n",
            );
        }
        row(
            out,
            &[
                &step.number,
                &step_label(step),
                &cell(&words::does(step)),
                &cell(&step.on.join(", ")),
                &cell(&words::expected(step.expected, runbook.earlier_runs)),
                &cell(&words::notes(step).join("; ")),
            ],
        );
    }
    out.push('\n');
}

fn step_label(step: &DocStep) -> String {
    match &step.name {
        Some(name) => format!("`{}` {}", step.id, cell(name)),
        None => format!("`{}`", step.id),
    }
}

fn changes(out: &mut String, runbook: &Runbook) {
    out.push_str("## What the write steps change\n\n");
    let writes: Vec<&DocStep> = runbook.steps.iter().filter(|s| s.kind.is_write()).collect();
    if writes.is_empty() {
        out.push_str("No step writes: the playbook only reads.\n\n");
        return;
    }
    for step in writes {
        let _ = writeln!(
            out,
            "### {} `{}`{}\n",
            step.number,
            step.path,
            step.name
                .as_ref()
                .map(|n| format!(" — {}", inline(n)))
                .unwrap_or_default()
        );
        if let StepKindText::Action {
            action,
            effect,
            summary,
            ..
        } = &step.kind
        {
            let on = if step.on.is_empty() {
                String::new()
            } else {
                format!(" on {}", inline(&step.on.join(", ")))
            };
            let _ = writeln!(out, "`{action}` [{effect}]{on}: {}\n", inline(summary));
        }
        if !step.arguments.is_empty() {
            let arguments: Vec<String> = step
                .arguments
                .iter()
                .map(|(name, value)| format!("`{name}` = `{}`", code(value)))
                .collect();
            let first = if step.instances > 1 {
                " (first item)"
            } else {
                ""
            };
            let _ = writeln!(out, "Arguments{first}: {}\n", arguments.join(", "));
        }
        if runbook.plan.is_some() {
            if step.changes.is_empty() {
                out.push_str("The saved plan has no change for this step (not reached, or skipped, in the dry run).\n\n");
            }
            for change in &step.changes {
                let verdict = match change.changes {
                    Some(true) => "changes",
                    Some(false) => "no change",
                    None => "may change (cannot be seen beforehand)",
                };
                let _ = writeln!(
                    out,
                    "- `{}`: {verdict}: {}",
                    change.step,
                    inline(&change.summary)
                );
                if change.changes == Some(true) {
                    let diff = unified(change.before.as_deref(), change.after.as_deref());
                    let lines: Vec<&str> = diff.lines().collect();
                    let shown = lines.len().min(DIFF_LINE_LIMIT);
                    let mut text = lines[..shown].join("\n");
                    if lines.len() > shown {
                        let _ = write!(text, "\n… {} more lines", lines.len() - shown);
                    }
                    out.push('\n');
                    fenced(out, "diff", &text);
                }
            }
            out.push('\n');
        }
    }
}

fn rollback(out: &mut String, runbook: &Runbook) {
    out.push_str("## Rollback plan\n\n");
    let _ = writeln!(out, "{}\n", words::policy(runbook));
    let writes: Vec<&DocStep> = runbook.steps.iter().filter(|s| s.kind.is_write()).collect();
    if !writes.is_empty() {
        out.push_str(
            "| # | Write step | Undone by | When it fails, back to |\n|---|---|---|---|\n",
        );
        for step in writes {
            row(
                out,
                &[
                    &step.number,
                    &format!("`{}`", step.path),
                    &cell(
                        &step
                            .rollback
                            .as_ref()
                            .map(words::rollback)
                            .unwrap_or_default(),
                    ),
                    &cell(
                        &step
                            .fallback
                            .as_ref()
                            .map(|f| words::fallback(runbook, f))
                            .unwrap_or_default(),
                    ),
                ],
            );
        }
        out.push('\n');
    }
    if !runbook.rollback_steps.is_empty() {
        out.push_str("Rollback-only steps (skipped on a forward run; they run only to undo the step named):\n\n");
        for step in &runbook.rollback_steps {
            let name = step
                .name
                .as_ref()
                .map(|n| format!(" {}", inline(n)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- `{}`{name}: `{}` [{}], undoes {}",
                step.id,
                step.action,
                step.effect,
                words::step_ref(runbook, &step.undoes)
            );
        }
        out.push('\n');
    }
}

fn gates(out: &mut String, runbook: &Runbook) {
    out.push_str("## Approval gates\n\n");
    let gates: Vec<&DocStep> = runbook.steps.iter().filter(|s| s.gate.is_some()).collect();
    if gates.is_empty() {
        out.push_str("None: the run does not stop for an approval.\n\n");
        return;
    }
    out.push_str("| # | Gate | Question | Notes |\n|---|---|---|---|\n");
    for step in &gates {
        if let Some(gate) = &step.gate {
            let condition = match &step.when {
                Some((when, resolved)) => format!(
                    "only when `{when}` ({})",
                    match resolved {
                        super::model::WhenResolved::Runs => "asked with these inputs",
                        super::model::WhenResolved::Skipped => "not asked with these inputs",
                        super::model::WhenResolved::AtRunTime => "decided at run time",
                    }
                ),
                None => String::new(),
            };
            row(
                out,
                &[
                    &step.number,
                    &format!("`{}`", gate.name),
                    &cell(&gate.prompt),
                    &cell(&condition),
                ],
            );
        }
    }
    let _ = writeln!(out, "\nWho approves: {}\n", words::WHO_APPROVES);
    out.push_str("| Gate | Approved by | Role | Date |\n|---|---|---|---|\n");
    for step in gates {
        if let Some(gate) = &step.gate {
            let _ = writeln!(out, "| `{}` | | | |", gate.name);
        }
    }
    out.push('\n');
}

fn verification(out: &mut String, runbook: &Runbook) {
    out.push_str("## Verification\n\nRead-only checks that run after the first write:\n\n");
    let checks: Vec<&DocStep> = runbook.steps.iter().filter(|s| s.verification).collect();
    if checks.is_empty() {
        out.push_str("None: no read-only check follows a write.\n\n");
        return;
    }
    for step in checks {
        let does = match &step.kind {
            StepKindText::Action {
                action, summary, ..
            } => format!("`{action}`: {}", inline(summary)),
            _ => String::new(),
        };
        let name = step
            .name
            .as_ref()
            .map(|n| format!(" {}", inline(n)))
            .unwrap_or_default();
        let _ = writeln!(out, "- {} `{}`{name} — {does}", step.number, step.path);
    }
    out.push('\n');
}

fn durations(out: &mut String, runbook: &Runbook) {
    out.push_str("## Expected duration\n\n");
    let _ = writeln!(out, "{}.\n", capitalised(&words::total(runbook)));
    if runbook.earlier_runs == 0 {
        return;
    }
    out.push_str("| Phase | Step | Expected |\n|---|---|---|\n");
    for phase in words::phases(runbook) {
        row(
            out,
            &[
                &phase.number,
                &format!("`{}`", phase.path),
                &cell(&words::expected(phase.expected, runbook.earlier_runs)),
            ],
        );
    }
    out.push('\n');
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn row(out: &mut String, cells: &[&str]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

/// Text for a table cell: one line, pipes escaped, markup neutralised.
fn cell(text: &str) -> String {
    inline(text).replace('|', "\\|")
}

/// Text on one line with HTML markup neutralised.
fn inline(text: &str) -> String {
    text.replace("\r\n", " ")
        .replace(['\n', '\r'], " ")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text inside a code span in a table: one line, backticks and pipes made harmless.
fn code(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('`', "'")
        .replace('|', "\\|")
}

/// A fenced block longer than any run of backticks inside.
fn fenced(out: &mut String, language: &str, text: &str) {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(out, "{fence}{language}\n{text}\n{fence}\n");
}
