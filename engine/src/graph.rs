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
        GraphFormat::Mermaid => out.push_str("flowchart TD\n"),
        GraphFormat::Dot => {
            let _ = writeln!(out, "digraph \"{}\" {{", escape(&playbook.name));
            out.push_str("  rankdir=TB;\n  node [shape=box, style=rounded];\n");
        }
    }
    scope(&mut out, format, &playbook.steps, dag, MAIN_SCOPE, 1);
    if !playbook.finally.is_empty() {
        match format {
            GraphFormat::Mermaid => out.push_str("  subgraph finally[\"finally\"]\n"),
            GraphFormat::Dot => {
                out.push_str("  subgraph \"cluster_finally\" {\n    label=\"finally\";\n")
            }
        }
        scope(&mut out, format, &playbook.finally, dag, FINALLY_SCOPE, 2);
        out.push_str(match format {
            GraphFormat::Mermaid => "  end\n",
            GraphFormat::Dot => "  }\n",
        });
    }
    if format == GraphFormat::Dot {
        out.push_str("}\n");
    }
    out
}

/// Nodes (and subgraphs for bodies) of one scope, then its edges.
fn scope(
    out: &mut String,
    format: GraphFormat,
    steps: &[Step],
    dag: &Dag,
    key: &str,
    depth: usize,
) {
    let indent = "  ".repeat(depth);
    for step in steps {
        let label = label(step);
        match (&step.kind, format) {
            (StepKind::Action { .. }, GraphFormat::Mermaid) => {
                let _ = writeln!(
                    out,
                    "{indent}{}[\"{}\"]",
                    node_id(step),
                    escape(&label).replace('\n', "<br/>")
                );
            }
            (StepKind::Action { .. }, GraphFormat::Dot) => {
                let _ = writeln!(
                    out,
                    "{indent}\"{}\" [label=\"{}\"];",
                    node_id(step),
                    escape(&label).replace('\n', "\\n")
                );
            }
            (_, _) => {
                let title = escape(&label).replace('\n', " · ");
                let footer = match format {
                    GraphFormat::Mermaid => {
                        let _ = writeln!(out, "{indent}subgraph {}[\"{title}\"]", anchor(step));
                        "end"
                    }
                    GraphFormat::Dot => {
                        let _ = writeln!(out, "{indent}subgraph \"cluster_{}\" {{", node_id(step));
                        let _ = writeln!(out, "{indent}  label=\"{title}\";");
                        let _ = writeln!(
                            out,
                            "{indent}  \"{}\" [shape=point, label=\"\"];",
                            anchor(step)
                        );
                        "}"
                    }
                };
                let body_scope = format!("{}.", step.path);
                scope(out, format, step.body(), dag, &body_scope, depth + 1);
                let _ = writeln!(out, "{indent}{footer}");
            }
        }
    }
    let Some(graph) = dag.scope(key) else {
        return;
    };
    for (index, step) in steps.iter().enumerate() {
        for dependency in graph.dependencies(index) {
            let (from, to) = (anchor(&steps[dependency]), anchor(step));
            let _ = match format {
                GraphFormat::Mermaid => writeln!(out, "{indent}{from} --> {to}"),
                GraphFormat::Dot => writeln!(out, "{indent}\"{from}\" -> \"{to}\";"),
            };
        }
    }
}

fn node_id(step: &Step) -> String {
    let readable: String = step
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{}_{:x}", readable.replace("__", "_"), fnv(&step.path))
}

/// A short stable hash so ids made of different punctuation never collide.
fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    }) & 0xffff
}

/// Two lines: the id (with a flag for checkpoints), then what the step does.
fn label(step: &Step) -> String {
    let kind = match &step.kind {
        StepKind::Action { action, .. } => action.value.clone(),
        StepKind::Group { .. } => "group".into(),
        StepKind::ForEach { items, .. } => format!("for_each {}", items.source),
    };
    let checkpoint = if step.checkpoint { " ⚑" } else { "" };
    format!("{}{checkpoint}\n{kind}", step.id.value)
}

/// Where edges attach: the step itself, or its subgraph.
fn anchor(step: &Step) -> String {
    match &step.kind {
        StepKind::Action { .. } => node_id(step),
        _ => format!("{}_group", node_id(step)),
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::load_playbook;
    use crate::source::SourceFile;

    #[test]
    fn dot_labels_have_one_escape_per_newline() -> Result<(), String> {
        let file = SourceFile::new(
            "p",
            "runsheet: 1\nname: t\nsteps:\n  - {id: a, action: log}\n  - {id: b, action: log}\n",
        );
        let playbook = load_playbook(&file).0.ok_or("fixture did not load")?;
        let (dag, _) = Dag::build(&playbook);
        let dot = render(&playbook, &dag, GraphFormat::Dot);
        assert!(dot.contains("[label=\"a\\nlog\"]"), "{dot}");
        let mermaid = render(&playbook, &dag, GraphFormat::Mermaid);
        assert!(mermaid.contains("[\"a<br/>log\"]"), "{mermaid}");
        assert!(mermaid.contains(" --> "), "{mermaid}");
        Ok(())
    }
}
