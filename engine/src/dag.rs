//! The step DAG: one graph per scope (the main steps, `finally`, each body),
//! built from `needs` with the defaults of the format, ordered topologically.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::{Needs, Playbook, Step};
use crate::source::Span;

/// The dependency graph of the steps of one scope (siblings).
#[derive(Debug, Clone, Default)]
pub struct ScopeGraph {
    /// Edges run from a dependency to the step that needs it; node `i` is sibling `i`.
    graph: DiGraph<(), ()>,
    /// Sibling index by id (the first of duplicates).
    index: HashMap<String, usize>,
    /// Sibling indices in execution order (document order among ready steps).
    order: Vec<usize>,
    /// Position of each sibling in `order` (empty when the scope has a cycle).
    rank: Vec<usize>,
}

/// A problem found while building a scope's graph.
#[derive(Debug, Clone, PartialEq)]
pub enum DagProblem {
    /// Two siblings share an id.
    DuplicateId {
        /// The later one.
        span: Span,
        /// The first one.
        first: Span,
        /// The id.
        id: String,
    },
    /// `needs` names no sibling.
    UnknownNeed {
        /// The name as written.
        span: Span,
        /// The name.
        name: String,
        /// Sibling ids to suggest from.
        siblings: Vec<String>,
        /// Whether the name is a step of an enclosing scope.
        outer: bool,
    },
    /// A step needs itself.
    SelfNeed {
        /// The name as written.
        span: Span,
    },
    /// Steps that need each other in a ring.
    Cycle {
        /// Paths of the steps in the ring, in dependency order, the first repeated at the end.
        ring: Vec<String>,
        /// Where each `needs` entry that closes the ring was written.
        spans: Vec<Span>,
    },
}

/// The graphs of every scope of a playbook.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    scopes: HashMap<String, ScopeGraph>,
}

/// Key of the main scope.
pub const MAIN_SCOPE: &str = "";
/// Key of the `finally` scope.
pub const FINALLY_SCOPE: &str = "finally.";

impl Dag {
    /// Builds every scope's graph, collecting problems instead of stopping.
    pub fn build(playbook: &Playbook) -> (Dag, Vec<DagProblem>) {
        let mut dag = Dag::default();
        let mut problems = Vec::new();
        dag.add_scope(MAIN_SCOPE, &playbook.steps, &[], &mut problems);
        dag.add_scope(FINALLY_SCOPE, &playbook.finally, &[], &mut problems);
        (dag, problems)
    }

    fn add_scope(
        &mut self,
        key: &str,
        steps: &[Step],
        outer: &[&[Step]],
        problems: &mut Vec<DagProblem>,
    ) {
        let graph = ScopeGraph::build(steps, outer, problems);
        self.scopes.insert(key.to_owned(), graph);
        let mut nested: Vec<&[Step]> = outer.to_vec();
        nested.push(steps);
        for step in steps {
            if !step.body().is_empty() {
                self.add_scope(&format!("{}.", step.path), step.body(), &nested, problems);
            }
        }
    }

    /// The graph of a scope (`""` for the main steps, `"finally."`, or `"<group path>."`).
    pub fn scope(&self, key: &str) -> Option<&ScopeGraph> {
        self.scopes.get(key)
    }
}

impl ScopeGraph {
    fn build(steps: &[Step], outer: &[&[Step]], problems: &mut Vec<DagProblem>) -> ScopeGraph {
        let mut graph = DiGraph::with_capacity(steps.len(), steps.len());
        for _ in steps {
            graph.add_node(());
        }
        let mut index: HashMap<String, usize> = HashMap::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            if let Some(&first) = index.get(step.id.value.as_str()) {
                problems.push(DagProblem::DuplicateId {
                    span: step.id.span,
                    first: steps[first].id.span,
                    id: step.id.value.clone(),
                });
            } else {
                index.insert(step.id.value.clone(), i);
            }
        }
        for (i, step) in steps.iter().enumerate() {
            match &step.needs {
                Needs::Previous if i > 0 => {
                    graph.add_edge(NodeIndex::new(i - 1), NodeIndex::new(i), ());
                }
                Needs::Previous => {}
                Needs::Explicit(names) => {
                    let mut seen: Vec<usize> = Vec::with_capacity(names.value.len());
                    for name in &names.value {
                        match index.get(name.value.as_str()) {
                            Some(&j) if j == i => {
                                problems.push(DagProblem::SelfNeed { span: name.span })
                            }
                            Some(&j) if !seen.contains(&j) => {
                                seen.push(j);
                                graph.add_edge(NodeIndex::new(j), NodeIndex::new(i), ());
                            }
                            Some(_) => {} // Named twice in one `needs`: one edge is enough.
                            None => problems.push(DagProblem::UnknownNeed {
                                span: name.span,
                                name: name.value.clone(),
                                siblings: steps.iter().map(|s| s.id.value.clone()).collect(),
                                outer: outer
                                    .iter()
                                    .any(|scope| scope.iter().any(|s| s.id.value == name.value)),
                            }),
                        }
                    }
                }
            }
        }
        let mut scope = ScopeGraph {
            graph,
            index,
            order: Vec::new(),
            rank: Vec::new(),
        };
        match scope.topological_order() {
            Ok(order) => {
                scope.rank = vec![0; order.len()];
                for (position, &index) in order.iter().enumerate() {
                    scope.rank[index] = position;
                }
                scope.order = order;
            }
            Err(remaining) => problems.push(scope.cycle(steps, &remaining)),
        }
        scope
    }

    /// Kahn's algorithm, taking the ready step listed first; the leftover steps on a cycle.
    fn topological_order(&self) -> Result<Vec<usize>, Vec<usize>> {
        let count = self.graph.node_count();
        let mut indegree: Vec<usize> = (0..count)
            .map(|i| {
                self.graph
                    .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BinaryHeap<Reverse<usize>> = (0..count)
            .filter(|&i| indegree[i] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(count);
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for next in self
                .graph
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            {
                let n = next.index();
                indegree[n] -= 1;
                if indegree[n] == 0 {
                    ready.push(Reverse(n));
                }
            }
        }
        if order.len() == count {
            Ok(order)
        } else {
            Err((0..count).filter(|&i| indegree[i] > 0).collect())
        }
    }

    /// Finds one ring among the steps left over by the topological sort.
    fn cycle(&self, steps: &[Step], remaining: &[usize]) -> DagProblem {
        let in_remaining: HashSet<usize> = remaining.iter().copied().collect();
        // Walk backwards along dependencies that stay in the leftover set until a step repeats.
        let mut seen: HashMap<usize, usize> = HashMap::new();
        let mut walk: Vec<usize> = Vec::new();
        let mut current = remaining.first().copied().unwrap_or(0);
        while !seen.contains_key(&current) {
            seen.insert(current, walk.len());
            walk.push(current);
            let previous = self
                .graph
                .neighbors_directed(NodeIndex::new(current), Direction::Incoming)
                .map(|n| n.index())
                .filter(|n| in_remaining.contains(n))
                .min();
            match previous {
                Some(p) => current = p,
                None => break,
            }
        }
        let start = seen.get(&current).copied().unwrap_or(0);
        // `walk[start..]` goes from a step to what it needs; reverse it into dependency order.
        let mut ring: Vec<usize> = walk[start..].to_vec();
        ring.reverse();
        // Start the ring at the step listed first, so the message is stable.
        if let Some(lowest) = ring
            .iter()
            .enumerate()
            .min_by_key(|(_, i)| **i)
            .map(|(p, _)| p)
        {
            ring.rotate_left(lowest);
        }
        if let Some(&first) = ring.first() {
            ring.push(first);
        }
        let spans = ring
            .windows(2)
            .filter_map(|pair| need_span(&steps[pair[1]], &steps[pair[0]].id.value))
            .collect();
        DagProblem::Cycle {
            ring: ring.iter().map(|&i| steps[i].path.clone()).collect(),
            spans,
        }
    }

    /// Sibling indices in execution order (empty when the scope has a cycle).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The sibling index of an id.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Direct dependencies of sibling `i`.
    pub fn dependencies(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
            .map(|n| n.index())
    }

    /// Whether sibling `ancestor` must finish before sibling `step` starts.
    pub fn is_ancestor(&self, ancestor: usize, step: usize) -> bool {
        let (Some(&low), Some(&high)) = (self.rank.get(ancestor), self.rank.get(step)) else {
            return false; // A scope with a cycle has no order; nothing is known to come first.
        };
        if low >= high {
            return false;
        }
        // Walk dependencies back from `step`; a step ranked before `ancestor` cannot lead to it,
        // so the walk stays between the two and costs nothing for a direct dependency.
        let mut stack = vec![step];
        let mut visited: HashSet<usize> = HashSet::new();
        while let Some(current) = stack.pop() {
            for dependency in self.dependencies(current) {
                if dependency == ancestor {
                    return true;
                }
                if self.rank[dependency] > low && visited.insert(dependency) {
                    stack.push(dependency);
                }
            }
        }
        false
    }
}

fn need_span(step: &Step, name: &str) -> Option<Span> {
    match &step.needs {
        Needs::Explicit(names) => names.value.iter().find(|n| n.value == name).map(|n| n.span),
        Needs::Previous => Some(step.id.span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::load_playbook;
    use crate::source::SourceFile;

    fn build(steps_yaml: &str) -> (Option<Playbook>, Dag, Vec<DagProblem>) {
        let file = SourceFile::new("p", format!("runsheet: 1\nname: t\nsteps:\n{steps_yaml}"));
        let (playbook, diagnostics) = load_playbook(&file);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let Some(playbook) = playbook else {
            return (None, Dag::default(), Vec::new());
        };
        let (dag, problems) = Dag::build(&playbook);
        (Some(playbook), dag, problems)
    }

    #[test]
    fn absent_needs_chain_and_empty_needs_start_at_once() {
        let (_, dag, problems) = build(
            "  - {id: a, action: log}\n  - {id: b, action: log}\n  - {id: c, action: log, needs: []}\n",
        );
        assert!(problems.is_empty());
        let main = dag.scope(MAIN_SCOPE);
        assert_eq!(
            main.map(|s| s.dependencies(1).collect::<Vec<_>>()),
            Some(vec![0])
        );
        assert_eq!(main.map(|s| s.dependencies(2).count()), Some(0));
        assert_eq!(main.map(|s| s.is_ancestor(0, 1)), Some(true));
        assert_eq!(main.map(|s| s.is_ancestor(0, 2)), Some(false));
    }

    #[test]
    fn ancestors_are_transitive_and_ordered() {
        let (_, dag, problems) = build(
            "  - {id: a, action: log}\n  - {id: b, action: log}\n  - {id: c, action: log}\n  - {id: d, action: log, needs: [a]}\n",
        );
        assert!(problems.is_empty());
        let main = dag.scope(MAIN_SCOPE);
        assert_eq!(main.map(|s| s.is_ancestor(0, 2)), Some(true));
        assert_eq!(main.map(|s| s.is_ancestor(2, 0)), Some(false));
        assert_eq!(main.map(|s| s.is_ancestor(1, 3)), Some(false));
        assert_eq!(main.map(|s| s.is_ancestor(0, 3)), Some(true));
    }

    #[test]
    fn order_follows_needs_then_document_order() {
        let (_, dag, problems) = build(
            "  - {id: a, action: log, needs: [c]}\n  - {id: b, action: log, needs: []}\n  - {id: c, action: log, needs: []}\n",
        );
        assert!(problems.is_empty());
        assert_eq!(
            dag.scope(MAIN_SCOPE).map(|s| s.order().to_vec()),
            Some(vec![1, 2, 0])
        );
    }

    #[test]
    fn cycle_names_its_ring() {
        let (_, _, problems) = build(
            "  - {id: a, action: log, needs: [c]}\n  - {id: b, action: log, needs: [a]}\n  - {id: c, action: log, needs: [b]}\n",
        );
        let rings: Vec<Vec<String>> = problems
            .iter()
            .filter_map(|p| match p {
                DagProblem::Cycle { ring, .. } => Some(ring.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(rings, vec![vec!["a", "b", "c", "a"]]);
    }

    #[test]
    fn unknown_and_duplicate_ids() {
        let (_, _, problems) = build(
            "  - {id: a, action: log}\n  - {id: a, action: log}\n  - {id: c, action: log, needs: [zz]}\n",
        );
        assert!(matches!(problems.first(), Some(DagProblem::DuplicateId { id, .. }) if id == "a"));
        assert!(
            matches!(problems.get(1), Some(DagProblem::UnknownNeed { name, .. }) if name == "zz")
        );
    }
}
