//! A scope's step graph as inline SVG: a layered layout, each step on the layer
//! after its deepest dependency, steps of a layer in execution order.

use std::fmt::Write as _;

use super::html::escape;
use super::model::Graph;

const NODE_WIDTH: usize = 180;
const NODE_HEIGHT: usize = 34;
const GAP_X: usize = 24;
const GAP_Y: usize = 30;
const MARGIN: usize = 10;
/// Most characters of a node's label.
const LABEL_WIDTH: usize = 24;

/// The layer of each node: 0 without dependencies, else one past its deepest dependency.
pub(super) fn layers(graph: &Graph) -> Vec<usize> {
    let mut layer = vec![0usize; graph.nodes.len()];
    // Nodes are in execution order, so every dependency comes before its dependent.
    for index in 0..graph.nodes.len() {
        layer[index] = graph
            .edges
            .iter()
            .filter(|(_, to)| *to == index)
            .map(|(from, _)| layer.get(*from).copied().unwrap_or(0) + 1)
            .max()
            .unwrap_or(0);
    }
    layer
}

/// The graph as an `<svg>` element.
pub(super) fn render(graph: &Graph, number: usize) -> String {
    let layer = layers(graph);
    let depth = layer.iter().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (index, &l) in layer.iter().enumerate() {
        rows[l].push(index);
    }
    let widest = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let width = MARGIN * 2 + widest * NODE_WIDTH + (widest - 1) * GAP_X;
    let height = MARGIN * 2 + depth * NODE_HEIGHT + depth.saturating_sub(1) * GAP_Y;
    let mut position = vec![(0usize, 0usize); graph.nodes.len()];
    for (row, members) in rows.iter().enumerate() {
        let row_width = members.len() * NODE_WIDTH + members.len().saturating_sub(1) * GAP_X;
        let start = (width - row_width) / 2;
        for (column, &index) in members.iter().enumerate() {
            position[index] = (
                start + column * (NODE_WIDTH + GAP_X),
                MARGIN + row * (NODE_HEIGHT + GAP_Y),
            );
        }
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"dag\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        escape(&graph.title)
    );
    let _ = write!(
        out,
        "<defs><marker id=\"arrow-{number}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>"
    );
    for &(from, to) in &graph.edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (position.get(from), position.get(to)) else {
            continue;
        };
        let _ = write!(
            out,
            "<line class=\"edge\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" marker-end=\"url(#arrow-{number})\"/>",
            x1 + NODE_WIDTH / 2,
            y1 + NODE_HEIGHT,
            x2 + NODE_WIDTH / 2,
            y2
        );
    }
    for (index, node) in graph.nodes.iter().enumerate() {
        let (x, y) = position[index];
        let class = if node.gate {
            "node gate"
        } else if node.write {
            "node write"
        } else {
            "node read"
        };
        let flag = if node.checkpoint { " ⚑" } else { "" };
        let mut label = format!("{} {}", node.number, node.id);
        if label.chars().count() > LABEL_WIDTH {
            label = label.chars().take(LABEL_WIDTH - 1).collect::<String>() + "…";
        }
        let _ = write!(
            out,
            "<g class=\"{class}\" data-step=\"{}\"><title>{} {}</title><rect x=\"{x}\" y=\"{y}\" width=\"{NODE_WIDTH}\" height=\"{NODE_HEIGHT}\" rx=\"6\"/><text x=\"{}\" y=\"{}\">{}{flag}</text></g>",
            escape(&node.number),
            escape(&node.number),
            escape(&node.id),
            x + NODE_WIDTH / 2,
            y + NODE_HEIGHT / 2 + 4,
            escape(&label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::runbook::model::GraphNode;

    fn node(number: &str) -> GraphNode {
        GraphNode {
            number: number.into(),
            id: format!("s{number}"),
            ..GraphNode::default()
        }
    }

    #[test]
    fn layers_follow_the_deepest_dependency() {
        let graph = Graph {
            title: "t".into(),
            nodes: vec![node("1"), node("2"), node("3"), node("4")],
            edges: vec![(0, 1), (0, 3), (1, 3)],
        };
        assert_eq!(layers(&graph), vec![0, 1, 0, 2]);
        let svg = render(&graph, 0);
        assert_eq!(svg.matches("<rect").count(), 4);
        assert_eq!(svg.matches("<line").count(), 3);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
