//! The DAG scheduler of one scope (the main steps, `finally`, a group body or
//! one `for_each` item): starts each step once its needs have ended well,
//! earliest in playbook order first, and marks the dependents of a step that
//! did not as never started.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use super::step::{Instance, SkipCause};
use super::{Exec, lock};
use crate::dag::ScopeGraph;
use crate::model::{Step, StepRollback};
use crate::run::context::{Frame, Recorded};

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// It did its work (or an earlier attempt did, or a dry run planned it).
    Succeeded,
    /// Its `when:` was false, or it runs only to undo another step.
    Skipped,
    /// It failed; `tolerated` when `continue_on_error` lets its dependents run.
    Failed {
        /// Whether its failure lets its dependents run.
        tolerated: bool,
    },
    /// It never started.
    NotRun,
}

impl End {
    /// Whether the steps that need this one may start.
    fn lets_dependents_run(self) -> bool {
        matches!(
            self,
            End::Succeeded | End::Skipped | End::Failed { tolerated: true }
        )
    }
}

/// How a scope ended: whether every step did, and the runtime ids it started.
pub(super) struct ScopeEnd {
    /// Whether every step ended well.
    pub(super) ok: bool,
    /// Runtime ids of the steps it started.
    pub(super) ids: Vec<String>,
}

/// The scheduler's state for one scope: what each step waits for and how it ended.
struct Schedule {
    /// Each step's position in the scope's execution order.
    rank: Vec<usize>,
    /// How many of each step's needs have not yet ended well.
    remaining: Vec<usize>,
    /// The steps that need each step.
    dependents: Vec<Vec<usize>>,
    /// Steps free to start, earliest in execution order first.
    ready: BinaryHeap<Reverse<(usize, usize)>>,
    /// How each step ended, once it has.
    ends: Vec<Option<End>>,
}

impl Schedule {
    /// The schedule of a scope of `count` steps before any has started.
    fn new(graph: &ScopeGraph, count: usize) -> Schedule {
        let mut rank = vec![0; count];
        for (position, &index) in graph.order().iter().enumerate() {
            rank[index] = position;
        }
        let mut remaining = vec![0usize; count];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
        for (index, waiting) in remaining.iter_mut().enumerate() {
            for dependency in graph.dependencies(index) {
                *waiting += 1;
                dependents[dependency].push(index);
            }
        }
        let ready = remaining
            .iter()
            .enumerate()
            .filter(|(_, waiting)| **waiting == 0)
            .map(|(index, _)| Reverse((rank[index], index)))
            .collect();
        Schedule {
            rank,
            remaining,
            dependents,
            ready,
            ends: vec![None; count],
        }
    }

    /// The next step free to start.
    fn next_ready(&mut self) -> Option<usize> {
        self.ready.pop().map(|Reverse((_, index))| index)
    }

    /// Records that step `index` never started.
    fn not_run(&mut self, index: usize) {
        self.ends[index] = Some(End::NotRun);
    }

    /// Records how step `index` ended; returns the dependents that now never start.
    fn settle(&mut self, index: usize, end: End) -> Vec<usize> {
        self.ends[index] = Some(end);
        if end.lets_dependents_run() {
            for &dependent in &self.dependents[index] {
                self.remaining[dependent] -= 1;
                if self.remaining[dependent] == 0 {
                    self.ready.push(Reverse((self.rank[dependent], dependent)));
                }
            }
            return Vec::new();
        }
        let mut blocked = Vec::new();
        let mut pending = self.dependents[index].clone();
        while let Some(dependent) = pending.pop() {
            if self.ends[dependent].is_some() {
                continue;
            }
            self.ends[dependent] = Some(End::NotRun);
            blocked.push(dependent);
            pending.extend(self.dependents[dependent].iter().copied());
        }
        blocked
    }

    /// Whether every step ended and each one started.
    fn all_ran(&self) -> bool {
        !self
            .ends
            .iter()
            .any(|end| matches!(end, None | Some(End::NotRun)))
    }
}

impl<'a> Exec<'a> {
    /// Runs the steps of `scope` in `frame`; its first steps wait for the node `entry`.
    pub(super) fn run_scope<'s>(
        &'s self,
        steps: &'a [Step],
        scope: String,
        frame: Arc<Frame>,
        entry: String,
    ) -> BoxFuture<'s, ScopeEnd> {
        Box::pin(async move {
            let Some(graph) = self.checked.dag.scope(&scope) else {
                return ScopeEnd {
                    ok: true,
                    ids: Vec::new(),
                };
            };
            let mut schedule = Schedule::new(graph, steps.len());
            let mut running = FuturesUnordered::new();
            let mut ids = Vec::with_capacity(steps.len());
            let mut ok = true;
            let rollback_only = rollback_only_steps(steps);
            // No more futures in flight than steps may run: ready steps wait in the
            // schedule (cheap) rather than as suspended futures (large).
            let limit = self.checked.playbook.concurrency.max(1) as usize;
            loop {
                while running.len() < limit
                    && let Some(index) = schedule.next_ready()
                {
                    let step = &steps[index];
                    let id = node_id(&frame.prefix, step);
                    if rollback_only.contains(step.id.value.as_str()) {
                        frame.record(&step.id.value, Recorded::Empty("skipped"));
                        self.skipped(
                            id,
                            SkipCause::RollbackStep,
                            crate::run::event::ROLLBACK_STEP_SKIPPED.into(),
                        );
                        self.finish(&mut schedule, index, End::Skipped, steps, &frame);
                        continue;
                    }
                    if self.stopped(&frame) {
                        frame.record(&step.id.value, Recorded::Empty("not_run"));
                        self.skipped(
                            id,
                            SkipCause::Stopping,
                            "not started: the run is stopping".into(),
                        );
                        schedule.not_run(index);
                        continue;
                    }
                    let deps: Vec<String> = graph
                        .dependencies(index)
                        .map(|dependency| node_id(&frame.prefix, &steps[dependency]))
                        .collect();
                    let deps = if deps.is_empty() {
                        vec![entry.clone()]
                    } else {
                        deps
                    };
                    lock(&self.book).deps.insert(id.clone(), deps);
                    ids.push(id.clone());
                    let frame = Arc::clone(&frame);
                    running.push(async move {
                        let instance = Instance {
                            step,
                            siblings: steps,
                            id,
                            frame,
                            started: Instant::now(),
                            trace: Arc::default(),
                        };
                        (index, self.run_step(instance).await)
                    });
                }
                let Some((index, end)) = running.next().await else {
                    break;
                };
                if matches!(end, End::Failed { tolerated: false } | End::NotRun) {
                    ok = false;
                }
                self.finish(&mut schedule, index, end, steps, &frame);
            }
            ScopeEnd {
                ok: ok && schedule.all_ran(),
                ids,
            }
        })
    }

    /// Records how step `index` ended; the dependents it leaves unstarted are reported.
    fn finish(
        &self,
        schedule: &mut Schedule,
        index: usize,
        end: End,
        steps: &[Step],
        frame: &Frame,
    ) {
        for dependent in schedule.settle(index, end) {
            let step = &steps[dependent];
            frame.record(&step.id.value, Recorded::Empty("not_run"));
            self.skipped(
                node_id(&frame.prefix, step),
                SkipCause::Dependency,
                format!(
                    "not started: it needs `{}`, which did not succeed",
                    steps[index].id.value
                ),
            );
        }
    }
}

/// Steps named in a sibling's `rollback:`: they run only to undo.
fn rollback_only_steps(steps: &[Step]) -> HashSet<&str> {
    steps
        .iter()
        .filter_map(|s| match s.rollback.as_ref().map(|r| &r.value) {
            Some(StepRollback::Steps(ids)) => Some(ids.iter().map(|i| i.value.as_str())),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The node a dependent waits for: a step's runtime id.
fn node_id(prefix: &str, step: &Step) -> String {
    format!("{prefix}{}", step.id.value)
}
