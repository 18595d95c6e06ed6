//! The runbook document as one self-contained HTML file: inline CSS with print
//! styles, the step graphs as inline SVG, no script and nothing fetched.

use std::fmt::Write as _;

use super::model::{DocStep, Runbook, StepKindText, WhenResolved};
use super::{svg, words};
use crate::report::diff::unified;

/// Longest diff shown per change; the rest is counted, not shown.
const DIFF_LINE_LIMIT: usize = 120;

const STYLE: &str = r#"
:root { --ink: #1d2330; --muted: #5b6475; --line: #d5dae3; --write: #d9822b; --gate: #8a4baf; --read: #3b6fd1; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; color: var(--ink); margin: 2rem auto; max-width: 1100px; padding: 0 1.5rem; }
h1 { font-size: 1.7rem; margin-bottom: .3rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.02rem; margin: 1.2rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid var(--line); padding: .3rem .45rem; text-align: left; vertical-align: top; }
th { background: #f2f4f8; }
table.facts th { width: 12rem; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .92em; background: #f2f4f8; padding: 0 .2em; border-radius: 3px; }
pre { background: #f7f8fb; border: 1px solid var(--line); padding: .6rem; overflow-x: auto; white-space: pre-wrap; font-size: .85em; }
pre.diff .add { color: #1a7f37; } pre.diff .del { color: #b42318; }
.muted { color: var(--muted); }
.warning { border-left: 4px solid #b42318; background: #fff4f2; padding: .4rem .7rem; }
tr.write td:first-child { border-left: 4px solid var(--write); }
tr.gate td:first-child { border-left: 4px solid var(--gate); }
tr.finally td { background: #fafafa; }
tr.phase td { font-weight: 600; background: #f2f4f8; }
.tag { display: inline-block; font-size: .78em; border-radius: 3px; padding: 0 .35em; margin-right: .25em; border: 1px solid var(--line); }
.tag.write { color: var(--write); border-color: var(--write); }
.tag.gate { color: var(--gate); border-color: var(--gate); }
.tag.check { color: var(--read); border-color: var(--read); }
td.number { white-space: nowrap; font-variant-numeric: tabular-nums; }
.depth-1 .label { padding-left: 1rem; } .depth-2 .label { padding-left: 2rem; } .depth-3 .label { padding-left: 3rem; }
figure { margin: .5rem 0 1.2rem; page-break-inside: avoid; break-inside: avoid; }
figcaption { color: var(--muted); margin-bottom: .3rem; }
svg.dag { max-width: 100%; height: auto; }
svg.dag .node rect { stroke-width: 1.5; }
svg.dag .read rect { fill: #eef3ff; stroke: var(--read); }
svg.dag .write rect { fill: #fff3e6; stroke: var(--write); }
svg.dag .gate rect { fill: #f5ecfb; stroke: var(--gate); }
svg.dag text { font: 12px "DejaVu Sans", Arial, sans-serif; text-anchor: middle; fill: var(--ink); }
svg.dag .edge { stroke: #555; stroke-width: 1.2; }
.legend span { margin-right: 1rem; }
@page { size: A4; margin: 14mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 10.5pt; }
  h2 { page-break-after: avoid; break-after: avoid; }
  h3 { page-break-after: avoid; break-after: avoid; }
  tr, pre, .change { page-break-inside: avoid; break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
  th, tr.phase td, code, pre { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// The document as HTML.
pub fn render(runbook: &Runbook) -> String {
    let mut out = String::new();
    let environment = runbook
        .environment
        .as_ref()
        .map(|e| format!(" on {}", e.name))
        .unwrap_or_default();
    let title = format!("Runbook: {}{environment}", runbook.playbook);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"generator\" content=\"runsheet doc\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    facts(&mut out, runbook);
    purpose(&mut out, runbook);
    inputs(&mut out, runbook);
    targets(&mut out, runbook);
    steps(&mut out, runbook);
    graphs(&mut out, runbook);
    changes(&mut out, runbook);
    rollback(&mut out, runbook);
    gates(&mut out, runbook);
    verification(&mut out, runbook);
    durations(&mut out, runbook);
    out.push_str("</body>\n</html>\n");
    out
}

fn facts(out: &mut String, runbook: &Runbook) {
    out.push_str("<table class=\"facts\">\n");
    let short_hash: String = runbook.playbook_sha256.chars().take(16).collect();
    fact(
        out,
        "Playbook",
        &format!(
            "<code>{}</code> <span class=\"muted\">(sha256 <code>{short_hash}</code>)</span>",
            escape(&runbook.playbook_file)
        ),
    );
    let environment = runbook
        .environment
        .as_ref()
        .map_or("(none given)".to_owned(), |e| escape(&e.name));
    fact(out, "Environment", &environment);
    fact(out, "Steps", &rich(&words::counts(runbook)));
    fact(
        out,
        "Rollback policy",
        &format!("<code>{}</code>", escape(&runbook.rollback_policy)),
    );
    fact(out, "Expected duration", &rich(&words::total(runbook)));
    fact(out, "Changes from", &rich(&words::changes_source(runbook)));
    out.push_str("</table>\n");
    if let Some(plan) = &runbook.plan {
        for warning in &plan.warnings {
            let _ = writeln!(
                out,
                "<p class=\"warning\"><strong>Warning:</strong> {}</p>",
                rich(warning)
            );
        }
    }
}

fn fact(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
}

fn purpose(out: &mut String, runbook: &Runbook) {
    out.push_str("<h2 id=\"purpose\">Purpose</h2>\n");
    match &runbook.description {
        Some(description) => {
            let _ = writeln!(out, "<p>{}</p>", escape(description));
        }
        None => {
            out.push_str("<p class=\"muted\">The playbook has no <code>description:</code>.</p>\n")
        }
    }
    if !runbook.notes.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">From the playbook's header:</p>\n<pre>{}</pre>",
            escape(&runbook.notes.join("\n"))
        );
    }
}

fn inputs(out: &mut String, runbook: &Runbook) {
    out.push_str("<h2 id=\"inputs\">Inputs</h2>\n");
    if runbook.inputs.is_empty() {
        out.push_str("<p>The playbook takes no inputs.</p>\n");
    } else {
        out.push_str("<table>\n<thead><tr><th>Input</th><th>Value</th><th>Type</th><th>Description</th></tr></thead>\n<tbody>\n");
        for input in &runbook.inputs {
            let default = if input.default {
                " <span class=\"muted\">(default)</span>"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code>{default}</td><td>{}</td><td>{}</td></tr>",
                escape(&input.name),
                escape(&input.value),
                escape(&input.kind),
                escape(input.description.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if runbook.secrets.is_empty() {
        out.push_str("<p>Secrets: none read by name in the playbook or environment.</p>\n");
    } else {
        out.push_str("<p>Secrets the run reads (by name only; values never appear in output, reports or the journal):</p>\n<ul>\n");
        for secret in &runbook.secrets {
            let name = escape(&secret.name);
            let _ = writeln!(
                out,
                "<li><code>{name}</code> (named in the {}): <code>${name}</code>, or the file named by <code>${name}_FILE</code></li>",
                escape(&secret.named_in)
            );
        }
        out.push_str("</ul>\n");
    }
}

fn targets(out: &mut String, runbook: &Runbook) {
    out.push_str("<h2 id=\"targets\">Environment and targets</h2>\n");
    let Some(environment) = &runbook.environment else {
        out.push_str("<p>No environment was given: targets are not known.</p>\n");
        return;
    };
    let _ = writeln!(
        out,
        "<p>Environment <strong>{}</strong>.</p>",
        escape(&environment.name)
    );
    if environment.change_rules.is_empty() {
        out.push_str("<p>Change rules: none set in the environment file.</p>\n");
    } else {
        out.push_str("<p>Change rules:</p>\n<ul>\n");
        for rule in &environment.change_rules {
            let _ = writeln!(out, "<li>{}</li>", rich(rule));
        }
        out.push_str("</ul>\n");
    }
    for warning in &environment.warnings {
        let _ = writeln!(
            out,
            "<p class=\"warning\"><strong>Warning:</strong> {}</p>",
            rich(warning)
        );
    }
    if runbook.gateways.is_empty() && runbook.hosts.is_empty() {
        out.push_str("<p>No step runs against a gateway or host of the environment.</p>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>Target</th><th>What</th><th>Steps</th></tr></thead>\n<tbody>\n",
    );
    for target in runbook.gateways.iter().chain(&runbook.hosts) {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&target.name),
            escape(&target.what),
            escape(&target.steps.join(", "))
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn steps(out: &mut String, runbook: &Runbook) {
    out.push_str("<h2 id=\"steps\">Steps</h2>\n<p>In execution order: a step starts once the steps it needs have ended well; a body's steps are numbered under their step, and run once per item of a <code>for_each</code>.</p>\n");
    out.push_str("<table class=\"steps\">\n<thead><tr><th>#</th><th>Step</th><th>Does</th><th>On</th><th>Expected</th><th>Notes</th></tr></thead>\n<tbody>\n");
    let mut in_finally = false;
    for step in &runbook.steps {
        if step.finally && !in_finally {
            in_finally = true;
            out.push_str("<tr class=\"phase\"><td></td><td colspan=\"5\">finally: always runs last, after success, failure or rollback</td></tr>\n");
        }
        let mut classes = vec![format!("depth-{}", step.depth.min(3))];
        if step.kind.is_write() {
            classes.push("write".into());
        }
        if step.gate.is_some() {
            classes.push("gate".into());
        }
        if step.finally {
            classes.push("finally".into());
        }
        let name = step
            .name
            .as_ref()
            .map(|n| format!(" {}", escape(n)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr class=\"step {}\" id=\"step-{}\" data-path=\"{}\"><td class=\"number\">{}</td><td class=\"label\"><code>{}</code>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            classes.join(" "),
            escape(&step.number),
            escape(&step.path),
            escape(&step.number),
            escape(&step.id),
            does(step),
            escape(&step.on.join(", ")),
            escape(&words::expected(step.expected, runbook.earlier_runs)),
            notes(step)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn does(step: &DocStep) -> String {
    match &step.kind {
        StepKindText::Action { summary, .. } => format!(
            "<code>{}</code><br><span class=\"muted\">{}</span>",
            escape(&words::does(step)),
            escape(summary)
        ),
        _ => escape(&words::does(step)),
    }
}

fn notes(step: &DocStep) -> String {
    words::notes(step)
        .iter()
        .map(|note| match note.as_str() {
            "writes" => "<span class=\"tag write\">writes</span>".to_owned(),
            "verification" => "<span class=\"tag check\">verification</span>".to_owned(),
            "checkpoint" => "<span class=\"tag\">⚑ checkpoint</span>".to_owned(),
            other if other.starts_with("approval gate") => {
                format!("<span class=\"tag gate\">{}</span>", rich(other))
            }
            other => rich(other),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn graphs(out: &mut String, runbook: &Runbook) {
    out.push_str("<h2 id=\"graph\">Step graph</h2>\n<p class=\"legend\"><span>Boxes: <strong style=\"color: var(--read)\">read</strong>, <strong style=\"color: var(--write)\">write</strong>, <strong style=\"color: var(--gate)\">approval gate</strong>; ⚑ checkpoint.</span><span>An arrow runs from a step to the steps that need it.</span></p>\n");
    for (number, graph) in runbook.graphs.iter().enumerate() {
        let _ = writeln!(
            out,
            "<figure>\n<figcaption>{}</figcaption>\n{}\n</figure>",
            escape(&graph.title),
            svg::render(graph, number)
        );
    }
}

fn changes(out: &mut String, runbook: &Runbook) {
    out.push_str("<h2 id=\"changes\">What the write steps change</h2>\n");
    let writes: Vec<&DocStep> = runbook.steps.iter().filter(|s| s.kind.is_write()).collect();
    if writes.is_empty() {
        out.push_str("<p>No step writes: the playbook only reads.</p>\n");
        return;
    }
    for step in writes {
        out.push_str("<div class=\"change\">\n");
        let name = step
            .name
            .as_ref()
            .map(|n| format!(" — {}", escape(n)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<h3>{} <code>{}</code>{name}</h3>",
            escape(&step.number),
            escape(&step.path)
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
                format!(" on {}", escape(&step.on.join(", ")))
            };
            let _ = writeln!(
                out,
                "<p><code>{} [{}]</code>{on}: {}</p>",
                escape(action),
                escape(effect),
                escape(summary)
            );
        }
        if !step.arguments.is_empty() {
            let first = if step.instances > 1 {
                " (first item)"
            } else {
                ""
            };
            let arguments: Vec<String> = step
                .arguments
                .iter()
                .map(|(name, value)| {
                    format!(
                        "<code>{}</code> = <code>{}</code>",
                        escape(name),
                        escape(value)
                    )
                })
                .collect();
            let _ = writeln!(out, "<p>Arguments{first}: {}</p>", arguments.join(", "));
        }
        if runbook.plan.is_some() {
            if step.changes.is_empty() {
                out.push_str("<p class=\"muted\">The saved plan has no change for this step (not reached, or skipped, in the dry run).</p>\n");
            }
            for change in &step.changes {
                let verdict = match change.changes {
                    Some(true) => "changes",
                    Some(false) => "no change",
                    None => "may change (cannot be seen beforehand)",
                };
                let _ = writeln!(
                    out,
                    "<p><code>{}</code>: {verdict}: {}</p>",
                    escape(&change.step),
                    escape(&change.summary)
                );
                if change.changes == Some(true) {
                    diff(
                        out,
                        &unified(change.before.as_deref(), change.after.as_deref()),
                    );
                }
            }
        }
        out.push_str("</div>\n");
    }
}

fn diff(out: &mut String, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let shown = lines.len().min(DIFF_LINE_LIMIT);
    out.push_str("<pre class=\"diff\">");
    for line in &lines[..shown] {
        let class = match line.chars().next() {
            Some('+') if !line.starts_with("+++") => Some("add"),
            Some('-') if !line.starts_with("---") => Some("del"),
            _ => None,
        };
        match class {
            Some(class) => {
                let _ = writeln!(out, "<span class=\"{class}\">{}</span>", escape(line));
            }
            None => {
                let _ = writeln!(out, "{}", escape(line));
            }
        }
    }
    if lines.len() > shown {
        let _ = writeln!(out, "… {} more lines", lines.len() - shown);
    }
    out.push_str("</pre>\n");
}

fn rollback(out: &mut String, runbook: &Runbook) {
    out.push_str("<h2 id=\"rollback\">Rollback plan</h2>\n");
    let _ = writeln!(out, "<p>{}</p>", rich(&words::policy(runbook)));
    let writes: Vec<&DocStep> = runbook.steps.iter().filter(|s| s.kind.is_write()).collect();
    if !writes.is_empty() {
        out.push_str("<table>\n<thead><tr><th>#</th><th>Write step</th><th>Undone by</th><th>When it fails, back to</th></tr></thead>\n<tbody>\n");
        for step in writes {
            let _ = writeln!(
                out,
                "<tr><td class=\"number\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(&step.number),
                escape(&step.path),
                rich(
                    &step
                        .rollback
                        .as_ref()
                        .map(words::rollback)
                        .unwrap_or_default()
                ),
                rich(
                    &step
                        .fallback
                        .as_ref()
                        .map(|f| words::fallback(runbook, f))
                        .unwrap_or_default()
                )
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if !runbook.rollback_steps.is_empty() {
        out.push_str("<p>Rollback-only steps (skipped on a forward run; they run only to undo the step named):</p>\n<ul>\n");
        for step in &runbook.rollback_steps {
            let name = step
                .name
                .as_ref()
                .map(|n| format!(" {}", escape(n)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<li><code>{}</code>{name}: <code>{} [{}]</code>, undoes {}</li>",
                escape(&step.id),
                escape(&step.action),
                escape(&step.effect),
                rich(&words::step_ref(runbook, &step.undoes))
            );
        }
        out.push_str("</ul>\n");
    }
}

fn gates(out: &mut String, runbook: &Runbook) {
    out.push_str("<h2 id=\"gates\">Approval gates</h2>\n");
    let gates: Vec<&DocStep> = runbook.steps.iter().filter(|s| s.gate.is_some()).collect();
    if gates.is_empty() {
        out.push_str("<p>None: the run does not stop for an approval.</p>\n");
        return;
    }
    out.push_str("<table>\n<thead><tr><th>#</th><th>Gate</th><th>Question</th><th>Notes</th></tr></thead>\n<tbody>\n");
    for step in &gates {
        if let Some(gate) = &step.gate {
            let condition = match &step.when {
                Some((when, resolved)) => format!(
                    "only when <code>{}</code> ({})",
                    escape(when),
                    match resolved {
                        WhenResolved::Runs => "asked with these inputs",
                        WhenResolved::Skipped => "not asked with these inputs",
                        WhenResolved::AtRunTime => "decided at run time",
                    }
                ),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "<tr class=\"gate\"><td class=\"number\">{}</td><td><code>{}</code></td><td>{}</td><td>{condition}</td></tr>",
                escape(&step.number),
                escape(&gate.name),
                escape(&gate.prompt)
            );
        }
    }
    out.push_str("</tbody>\n</table>\n");
    let _ = writeln!(out, "<p>Who approves: {}</p>", rich(words::WHO_APPROVES));
    out.push_str("<table class=\"signoff\">\n<thead><tr><th>Gate</th><th>Approved by</th><th>Role</th><th>Date</th></tr></thead>\n<tbody>\n");
    for step in gates {
        if let Some(gate) = &step.gate {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>&nbsp;</td><td>&nbsp;</td><td>&nbsp;</td></tr>",
                escape(&gate.name)
            );
        }
    }
    out.push_str("</tbody>\n</table>\n");
}

fn verification(out: &mut String, runbook: &Runbook) {
    out.push_str("<h2 id=\"verification\">Verification</h2>\n<p>Read-only checks that run after the first write:</p>\n");
    let checks: Vec<&DocStep> = runbook.steps.iter().filter(|s| s.verification).collect();
    if checks.is_empty() {
        out.push_str("<p>None: no read-only check follows a write.</p>\n");
        return;
    }
    out.push_str("<ul>\n");
    for step in checks {
        let does = match &step.kind {
            StepKindText::Action {
                action, summary, ..
            } => {
                format!("<code>{}</code>: {}", escape(action), escape(summary))
            }
            _ => String::new(),
        };
        let name = step
            .name
            .as_ref()
            .map(|n| format!(" {}", escape(n)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<li>{} <code>{}</code>{name} — {does}</li>",
            escape(&step.number),
            escape(&step.path)
        );
    }
    out.push_str("</ul>\n");
}

fn durations(out: &mut String, runbook: &Runbook) {
    out.push_str("<h2 id=\"duration\">Expected duration</h2>\n");
    let _ = writeln!(out, "<p>{}.</p>", rich(&words::total(runbook)));
    if runbook.earlier_runs == 0 {
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>Phase</th><th>Step</th><th>Expected</th></tr></thead>\n<tbody>\n",
    );
    for phase in words::phases(runbook) {
        let _ = writeln!(
            out,
            "<tr><td class=\"number\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
            escape(&phase.number),
            escape(&phase.path),
            escape(&words::expected(phase.expected, runbook.earlier_runs))
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// Text made safe inside HTML elements and attributes.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Escaped text whose `backticked` spans become `<code>`.
fn rich(text: &str) -> String {
    let escaped = escape(text);
    let mut out = String::with_capacity(escaped.len());
    for (index, part) in escaped.split('`').enumerate() {
        if index % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rich_text_escapes_then_marks_code() {
        assert_eq!(
            rich("run `a<b>` now & then"),
            "run <code>a&lt;b&gt;</code> now &amp; then"
        );
    }
}
