//! How far back a run goes when a step fails: the newest checkpoint every path
//! to the step passed, found statically the way the executor finds it at run time
//! (its ancestors in the DAG, innermost scope first, then earlier batches of the
//! `for_each` around it, then the enclosing scopes).

use super::model::Fallback;
use crate::dag::ScopeGraph;
use crate::model::{RollbackPolicy, Step, StepKind, StepRollback};

/// One scope on the way from the main steps down to a step.
#[derive(Clone, Copy)]
pub(super) struct Level<'a> {
    /// The scope's steps.
    pub(super) steps: &'a [Step],
    /// Its graph.
    pub(super) graph: &'a ScopeGraph,
    /// The index of the step (or of the container holding it) in this scope.
    pub(super) index: usize,
}

/// What is known of the steps before the run.
pub(super) struct Known<'a> {
    /// Whether the `for_each` at a path runs all its items in one batch.
    pub(super) single_batch: &'a dyn Fn(&str) -> bool,
    /// Whether the step at a path is skipped with these inputs (it records no checkpoint).
    pub(super) skipped: &'a dyn Fn(&str) -> bool,
}

/// Where a failure of the innermost step of `levels` rolls back to.
pub(super) fn fallback(
    policy: RollbackPolicy,
    levels: &[Level<'_>],
    known: &Known<'_>,
) -> Fallback {
    match policy {
        RollbackPolicy::None => Fallback::Nothing,
        RollbackPolicy::All => Fallback::Everything,
        RollbackPolicy::ToCheckpoint => to_checkpoint(levels, known),
    }
}

fn to_checkpoint(levels: &[Level<'_>], known: &Known<'_>) -> Fallback {
    let Some((level, outer)) = levels.split_last() else {
        return Fallback::Start;
    };
    if let Some(checkpoint) = newest_ancestor_checkpoint(level, known) {
        return Fallback::Checkpoint(checkpoint);
    }
    // Inside a `for_each` body, the items of earlier batches have passed their checkpoints.
    if let Some(parent) = outer.last() {
        let container = &parent.steps[parent.index];
        if let StepKind::ForEach { steps: body, .. } = &container.kind
            && !(known.single_batch)(&container.path)
            && let Some(checkpoint) = last_checkpoint_in_scope(body, known)
        {
            return Fallback::EarlierBatch {
                checkpoint,
                first_batch: Box::new(to_checkpoint(outer, known)),
            };
        }
    }
    to_checkpoint(outer, known)
}

/// The newest checkpoint among the siblings that must finish before the step starts.
fn newest_ancestor_checkpoint(level: &Level<'_>, known: &Known<'_>) -> Option<String> {
    let undoers = rollback_only(level.steps);
    level
        .graph
        .order()
        .iter()
        .rev()
        .filter(|&&j| j != level.index && level.graph.is_ancestor(j, level.index))
        .filter(|&&j| !undoers.contains(&level.steps[j].id.value.as_str()))
        .find_map(|&j| last_checkpoint(&level.steps[j], known))
}

/// The checkpoint a step passes last: itself, or the last one of its body.
fn last_checkpoint(step: &Step, known: &Known<'_>) -> Option<String> {
    if (known.skipped)(&step.path) {
        return None;
    }
    if step.checkpoint {
        return Some(step.path.clone());
    }
    last_checkpoint_in_scope(step.body(), known)
}

/// The last checkpoint of a list of steps, by document order (rollback-only steps aside).
fn last_checkpoint_in_scope(steps: &[Step], known: &Known<'_>) -> Option<String> {
    let undoers = rollback_only(steps);
    steps
        .iter()
        .rev()
        .filter(|s| !undoers.contains(&s.id.value.as_str()))
        .find_map(|s| last_checkpoint(s, known))
}

/// Ids named in a sibling's `rollback:` list.
fn rollback_only(steps: &[Step]) -> Vec<&str> {
    steps
        .iter()
        .filter_map(|s| match s.rollback.as_ref().map(|r| &r.value) {
            Some(StepRollback::Steps(ids)) => Some(ids.iter().map(|i| i.value.as_str())),
            _ => None,
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::{Dag, MAIN_SCOPE};
    use crate::loader::load_playbook;
    use crate::model::Playbook;
    use crate::source::SourceFile;

    fn load(steps: &str) -> Result<(Playbook, Dag), String> {
        let file = SourceFile::new("p", format!("runsheet: 1\nname: t\nsteps:\n{steps}"));
        let (playbook, diagnostics) = load_playbook(&file);
        let playbook = playbook.ok_or_else(|| format!("{diagnostics:?}"))?;
        let (dag, problems) = Dag::build(&playbook);
        if !problems.is_empty() {
            return Err(format!("{problems:?}"));
        }
        Ok((playbook, dag))
    }

    const NEVER: &dyn Fn(&str) -> bool = &|_| false;
    const ALWAYS: &dyn Fn(&str) -> bool = &|_| true;

    fn known<'a>(single_batch: &'a dyn Fn(&str) -> bool) -> Known<'a> {
        Known {
            single_batch,
            skipped: NEVER,
        }
    }

    fn levels<'a>(playbook: &'a Playbook, dag: &'a Dag, path: &[usize]) -> Vec<Level<'a>> {
        let mut out = Vec::new();
        let mut steps: &[Step] = &playbook.steps;
        let mut key = MAIN_SCOPE.to_owned();
        for &index in path {
            let Some(graph) = dag.scope(&key) else {
                break;
            };
            out.push(Level {
                steps,
                graph,
                index,
            });
            key = format!("{}.", steps[index].path);
            steps = steps[index].body();
        }
        out
    }

    #[test]
    fn newest_ancestor_checkpoint_wins_and_parallel_ones_do_not_count() -> Result<(), String> {
        let (playbook, dag) = load(
            "  - {id: a, action: log, checkpoint: true}\n  - {id: b, action: log, checkpoint: true}\n  - {id: side, action: log, needs: [], checkpoint: true}\n  - {id: w, action: log, needs: [b]}\n",
        )?;
        let found = fallback(
            RollbackPolicy::ToCheckpoint,
            &levels(&playbook, &dag, &[3]),
            &known(NEVER),
        );
        assert_eq!(found, Fallback::Checkpoint("b".into()));
        let b_skipped = Known {
            single_batch: NEVER,
            skipped: &|path| path == "b",
        };
        let without_b = fallback(
            RollbackPolicy::ToCheckpoint,
            &levels(&playbook, &dag, &[3]),
            &b_skipped,
        );
        assert_eq!(without_b, Fallback::Checkpoint("a".into()));
        let first = fallback(
            RollbackPolicy::ToCheckpoint,
            &levels(&playbook, &dag, &[0]),
            &known(NEVER),
        );
        assert_eq!(first, Fallback::Start);
        Ok(())
    }

    #[test]
    fn batches_fall_back_to_the_batch_before_then_outward() -> Result<(), String> {
        let (playbook, dag) = load(
            "  - {id: snap, action: log, checkpoint: true}\n  - id: each\n    for_each: '{{ [1, 2] }}'\n    batch: 1\n    steps:\n      - {id: w, action: log}\n      - {id: done, action: log, checkpoint: true}\n",
        )?;
        let found = fallback(
            RollbackPolicy::ToCheckpoint,
            &levels(&playbook, &dag, &[1, 0]),
            &known(NEVER),
        );
        assert_eq!(
            found,
            Fallback::EarlierBatch {
                checkpoint: "each.done".into(),
                first_batch: Box::new(Fallback::Checkpoint("snap".into())),
            }
        );
        let one_batch = fallback(
            RollbackPolicy::ToCheckpoint,
            &levels(&playbook, &dag, &[1, 0]),
            &known(ALWAYS),
        );
        assert_eq!(one_batch, Fallback::Checkpoint("snap".into()));
        assert_eq!(
            fallback(
                RollbackPolicy::All,
                &levels(&playbook, &dag, &[1, 0]),
                &known(ALWAYS)
            ),
            Fallback::Everything
        );
        Ok(())
    }
}
