//! Renders the step DAG as Mermaid or Graphviz DOT.

use std::fmt::Write as _;

use crate::dag::{Dag, FINALLY_SCOPE, MAIN_SCOPE};
use crate::model::{Playbook, Step, StepKind};

/// Output formats of `runsheet graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// A Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// The playbook's DAG in the given format; bodies become subgraphs.
pub fn render(playbook: &Playbook, dag: &Dag, format: GraphFormat) -> String {
    let mut out = String::new();
    match format {
        GraphFormat::Mermaid => {
            let _ = writeln!(out, "flowchart TD");
            mermaid_scope(&mut out, &playbook.steps, dag, MAIN_SCOPE, 1);
            if !playbook.finally.is_empty() {
                let _ = writeln!(out, "  subgraph finally[\"finally\"]");
                mermaid_scope(&mut out, &playbook.finally, dag, FINALLY_SCOPE, 2);
                let _ = writeln!(out, "  end");
            }
        }
        GraphFormat::Dot => {
            let _ = writeln!(out, "digraph \"{}\" {{", escape(&playbook.name));
            let _ = writeln!(out, "  rankdir=TB;\n  node [shape=box, style=rounded];");
            dot_scope(&mut out, &playbook.steps, dag, MAIN_SCOPE, 1);
            if !playbook.finally.is_empty() {
                let _ = writeln!(
                    out,
                    "  subgraph \"cluster_finally\" {{\n    label=\"finally\";"
                );
                dot_scope(&mut out, &playbook.finally, dag, FINALLY_SCOPE, 2);
                let _ = writeln!(out, "  }}");
            }
            let _ = writeln!(out, "}}");
        }
    }
    out
}

fn node_id(step: &Step) -> String {
    step.path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .replace("__", "_")
        + "_"
        + &format!("{:x}", fnv(&step.path))
}

/// A short stable hash so ids made of different punctuation never collide.
fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    }) & 0xffff
}

fn label(step: &Step) -> String {
    let kind = match &step.kind {
        StepKind::Action { action, .. } => action.value.clone(),
        StepKind::Group { .. } => "group".into(),
        StepKind::ForEach { items, .. } => format!("for_each {}", items.source),
    };
    let checkpoint = if step.checkpoint { " ⚑" } else { "" };
    format!("{}{checkpoint}\\n{kind}", step.id.value)
}

/// Entry steps of a node: itself, or for a group the first steps of its body.
fn anchor(step: &Step) -> String {
    match &step.kind {
        StepKind::Action { .. } => node_id(step),
        _ => format!("{}_group", node_id(step)),
    }
}

fn mermaid_scope(out: &mut String, steps: &[Step], dag: &Dag, key: &str, depth: usize) {
    let indent = "  ".repeat(depth);
    for step in steps {
        match &step.kind {
            StepKind::Action { .. } => {
                let _ = writeln!(
                    out,
                    "{indent}{}[\"{}\"]",
                    node_id(step),
                    escape(&label(step)).replace("\\\\n", "<br/>")
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{indent}subgraph {}[\"{}\"]",
                    anchor(step),
                    escape(&label(step)).replace("\\\\n", " · ")
                );
                mermaid_scope(out, step.body(), dag, &format!("{}.", step.path), depth + 1);
                let _ = writeln!(out, "{indent}end");
            }
        }
    }
    if let Some(scope) = dag.scope(key) {
        for (index, step) in steps.iter().enumerate() {
            for dependency in scope.dependencies(index) {
                let _ = writeln!(
                    out,
                    "{indent}{} --> {}",
                    anchor(&steps[dependency]),
                    anchor(step)
                );
            }
        }
    }
}

fn dot_scope(out: &mut String, steps: &[Step], dag: &Dag, key: &str, depth: usize) {
    let indent = "  ".repeat(depth);
    for step in steps {
        match &step.kind {
            StepKind::Action { .. } => {
                let _ = writeln!(
                    out,
                    "{indent}\"{}\" [label=\"{}\"];",
                    node_id(step),
                    escape(&label(step))
                );
            }
            _ => {
                let _ = writeln!(out, "{indent}subgraph \"cluster_{}\" {{", node_id(step));
                let _ = writeln!(
                    out,
                    "{indent}  label=\"{}\";",
                    escape(&label(step)).replace("\\\\n", " · ")
                );
                let _ = writeln!(
                    out,
                    "{indent}  \"{}\" [shape=point, label=\"\"];",
                    anchor(step)
                );
                dot_scope(out, step.body(), dag, &format!("{}.", step.path), depth + 1);
                let _ = writeln!(out, "{indent}}}");
            }
        }
    }
    if let Some(scope) = dag.scope(key) {
        for (index, step) in steps.iter().enumerate() {
            for dependency in scope.dependencies(index) {
                let _ = writeln!(
                    out,
                    "{indent}\"{}\" -> \"{}\";",
                    anchor(&steps[dependency]),
                    anchor(step)
                );
            }
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
