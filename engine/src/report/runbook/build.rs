//! Builds the [`Runbook`] of a checked playbook from its static plan, the action
//! registry's metadata, earlier runs and, when given, a saved plan's diffs.
//!
//! Steps are numbered by walking each scope in the DAG's execution order, the same
//! order the static plan and the executor's scheduler use.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::fallback::{Known, Level, fallback};
use super::model::{
    DocStep, ExpectedTime, Gate, Graph, GraphNode, PlanFacts, PlannedChange, RollbackStep,
    RollbackText, Runbook, StepKindText, WhenResolved,
};
use super::targets;
use crate::action::EffectKind;
use crate::check::Checked;
use crate::dag::{FINALLY_SCOPE, MAIN_SCOPE};
use crate::model::{RollbackPolicy, Setting, Step, StepKind, StepRollback, WindowEndPolicy};
use crate::plan::{KNOWN_AFTER_APPLY, PlannedStep, StaticPlan, item_label};
use crate::registry::Registry;
use crate::run::window::History;

/// Longest argument value shown on one line; longer ones are cut.
const ARGUMENT_WIDTH: usize = 100;

/// Where a document's facts come from.
pub struct Sources<'a> {
    /// The checked playbook (and environment).
    pub checked: &'a Checked,
    /// The action types, for effects and descriptions.
    pub registry: &'a Registry,
    /// The static plan of the checked playbook.
    pub plan: &'a StaticPlan,
    /// Step durations of earlier runs of the playbook.
    pub history: &'a History,
    /// The playbook file as given.
    pub playbook_file: String,
    /// SHA-256 of the playbook file.
    pub playbook_sha256: String,
    /// A saved plan's changes, with where it came from.
    pub saved_plan: Option<(PlanFacts, Vec<PlannedChange>)>,
}

/// Builds the document.
pub fn build(sources: &Sources<'_>) -> Runbook {
    let checked = sources.checked;
    let playbook = &checked.playbook;
    let mut walker = Walker::new(sources);
    walker.scope(&playbook.steps, MAIN_SCOPE, "", 0, false, &[]);
    walker.scope(&playbook.finally, FINALLY_SCOPE, "F", 0, true, &[]);
    walker.mark_verifications();
    let (gateways, hosts) = targets::touched(checked, &walker.steps);
    let environment = checked
        .environment
        .as_ref()
        .map(|(_, environment)| targets::environment_facts(environment));
    Runbook {
        playbook: playbook.name.value.clone(),
        playbook_file: sources.playbook_file.clone(),
        playbook_sha256: sources.playbook_sha256.clone(),
        description: playbook.description.clone(),
        notes: header_notes(&checked.file.text),
        environment,
        inputs: targets::inputs(checked),
        secrets: targets::secrets(checked),
        gateways,
        hosts,
        rollback_policy: policy_name(playbook.rollback).to_owned(),
        window_end: match playbook.window_end {
            WindowEndPolicy::Rollback => "rollback",
            WindowEndPolicy::Pause => "pause",
        }
        .to_owned(),
        steps: walker.steps,
        rollback_steps: walker.rollback_steps,
        graphs: walker.graphs,
        earlier_runs: sources.history.runs(),
        plan: sources.saved_plan.as_ref().map(|(facts, _)| facts.clone()),
    }
}

/// The playbook's `rollback:` as written.
pub(super) fn policy_name(policy: RollbackPolicy) -> &'static str {
    match policy {
        RollbackPolicy::ToCheckpoint => "to_checkpoint",
        RollbackPolicy::All => "all",
        RollbackPolicy::None => "none",
    }
}

/// The comment block at the top of a playbook file, without the schema line.
fn header_notes(text: &str) -> Vec<String> {
    let mut notes: Vec<String> = text
        .lines()
        .take_while(|line| line.starts_with('#'))
        .filter(|line| !line.contains("yaml-language-server"))
        .map(|line| {
            let line = line.trim_start_matches('#');
            line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned()
        })
        .collect();
    while notes.first().is_some_and(String::is_empty) {
        notes.remove(0);
    }
    while notes.last().is_some_and(String::is_empty) {
        notes.pop();
    }
    notes
}

/// The runtime id of a step without its `for_each` item labels: its path.
pub fn path_of(runtime_id: &str) -> String {
    let mut path = String::with_capacity(runtime_id.len());
    let mut depth = 0usize;
    for c in runtime_id.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => path.push(c),
            _ => {}
        }
    }
    path
}

struct Walker<'a> {
    sources: &'a Sources<'a>,
    /// Planned instances of each step path, in plan order.
    instances: HashMap<&'a str, Vec<&'a PlannedStep>>,
    /// A saved plan's changes by step path.
    changes: HashMap<String, Vec<PlannedChange>>,
    /// Paths of the steps whose `when:` is false with these inputs.
    skipped: Vec<String>,
    steps: Vec<DocStep>,
    rollback_steps: Vec<RollbackStep>,
    graphs: Vec<Graph>,
}

impl<'a> Walker<'a> {
    fn new(sources: &'a Sources<'a>) -> Self {
        let mut instances: HashMap<&str, Vec<&PlannedStep>> = HashMap::new();
        for planned in &sources.plan.steps {
            instances
                .entry(planned.path.as_str())
                .or_default()
                .push(planned);
        }
        let mut changes: HashMap<String, Vec<PlannedChange>> = HashMap::new();
        if let Some((_, planned)) = &sources.saved_plan {
            for change in planned {
                changes
                    .entry(path_of(&change.step))
                    .or_default()
                    .push(change.clone());
            }
        }
        let skipped = instances
            .iter()
            .filter(|(_, planned)| when_resolved(planned) == WhenResolved::Skipped)
            .map(|(path, _)| (*path).to_owned())
            .collect();
        Self {
            sources,
            instances,
            changes,
            skipped,
            steps: Vec::new(),
            rollback_steps: Vec::new(),
            graphs: Vec::new(),
        }
    }

    /// Numbers and describes the steps of one scope in execution order, bodies after
    /// their container.
    fn scope(
        &mut self,
        steps: &'a [Step],
        key: &str,
        prefix: &str,
        depth: usize,
        finally: bool,
        outer: &[Level<'a>],
    ) {
        let checked = self.sources.checked;
        let Some(graph) = checked.dag.scope(key) else {
            return;
        };
        // Reserved now so that a scope's graph comes before the graphs of its bodies.
        let slot = self.graphs.len();
        self.graphs.push(Graph::default());
        let undoers = undoers(steps);
        let mut numbers: HashMap<usize, String> = HashMap::new();
        let mut counter = 0;
        for &index in graph.order() {
            let step = &steps[index];
            if let Some(undone) = undoers.get(step.id.value.as_str()) {
                self.rollback_steps.push(self.rollback_step(step, undone));
                continue;
            }
            counter += 1;
            let number = format!("{prefix}{counter}");
            numbers.insert(index, number.clone());
            let mut levels = outer.to_vec();
            levels.push(Level {
                steps,
                graph,
                index,
            });
            let mut entry = self.describe(step, &number, depth, finally);
            if entry.kind.is_write() {
                let known = Known {
                    single_batch: &|path| self.single_batch(path),
                    skipped: &|path| self.skipped(path),
                };
                entry.fallback = Some(fallback(checked.playbook.rollback, &levels, &known));
            }
            self.steps.push(entry);
            let body = step.body();
            if !body.is_empty() {
                self.scope(
                    body,
                    &format!("{}.", step.path),
                    &format!("{number}."),
                    depth + 1,
                    finally,
                    &levels,
                );
            }
        }
        match self.graph(steps, key, &numbers, prefix) {
            Some(drawn) => self.graphs[slot] = drawn,
            None => {
                self.graphs.remove(slot);
            }
        }
    }

    /// The drawn graph of a scope: its numbered steps and their dependencies.
    fn graph(
        &self,
        steps: &[Step],
        key: &str,
        numbers: &HashMap<usize, String>,
        prefix: &str,
    ) -> Option<Graph> {
        let graph = self.sources.checked.dag.scope(key)?;
        let order: Vec<usize> = graph
            .order()
            .iter()
            .copied()
            .filter(|i| numbers.contains_key(i))
            .collect();
        if order.is_empty() {
            return None;
        }
        let position: HashMap<usize, usize> =
            order.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        let nodes = order
            .iter()
            .map(|&i| {
                let number = numbers.get(&i).cloned().unwrap_or_default();
                let entry = self.steps.iter().find(|s| s.number == number);
                GraphNode {
                    number,
                    id: steps[i].id.value.clone(),
                    write: entry.is_some_and(|e| e.kind.is_write()),
                    gate: entry.is_some_and(|e| e.gate.is_some()),
                    checkpoint: steps[i].checkpoint,
                }
            })
            .collect();
        let mut edges = Vec::new();
        for &i in &order {
            for dependency in graph.dependencies(i) {
                if let (Some(&from), Some(&to)) = (position.get(&dependency), position.get(&i)) {
                    edges.push((from, to));
                }
            }
        }
        edges.sort_unstable();
        let title = match (key, prefix) {
            (MAIN_SCOPE, _) => "Main steps".to_owned(),
            (FINALLY_SCOPE, _) => "finally (always runs last)".to_owned(),
            (_, prefix) => format!(
                "Body of {} {}",
                prefix.trim_end_matches('.'),
                key.trim_end_matches('.')
            ),
        };
        Some(Graph {
            title,
            nodes,
            edges,
        })
    }

    /// Whether the step at `path` is skipped with these inputs, by its `when:` or its container's.
    fn skipped(&self, path: &str) -> bool {
        self.skipped.iter().any(|skipped| {
            path == skipped
                || path
                    .strip_prefix(skipped.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// Whether every item of the `for_each` at `path` runs in one batch.
    fn single_batch(&self, path: &str) -> bool {
        let Some(first) = self.instances.get(path).and_then(|i| i.first()) else {
            return false;
        };
        let count = first.arguments["items"].as_array().map(Vec::len);
        match (count, &first.arguments["batch"]) {
            (Some(_), Value::Null) => true,
            (Some(count), batch) => batch.as_u64().is_some_and(|b| b as usize >= count),
            (None, _) => false,
        }
    }

    fn rollback_step(&self, step: &Step, undone: &str) -> RollbackStep {
        let (action, effect) = match step.action() {
            Some(action) => (
                action.value.clone(),
                self.first(&step.path)
                    .map(|p| p.effect.clone())
                    .unwrap_or_default(),
            ),
            None => ("group".to_owned(), String::new()),
        };
        RollbackStep {
            undoes: undone.to_owned(),
            id: step.id.value.clone(),
            name: step.name.clone(),
            action,
            effect,
        }
    }

    fn first(&self, path: &str) -> Option<&'a PlannedStep> {
        self.instances.get(path).and_then(|i| i.first().copied())
    }

    /// One step's entry, without its fallback.
    fn describe(&self, step: &Step, number: &str, depth: usize, finally: bool) -> DocStep {
        let instances: &[&PlannedStep] = self
            .instances
            .get(step.path.as_str())
            .map_or(&[], Vec::as_slice);
        let first = instances.first().copied();
        let kind = self.kind(step, first);
        let gate = match (&step.kind, first) {
            (StepKind::Action { action, .. }, planned) if action.value == "approval" => {
                let arguments = planned.map(|p| &p.arguments);
                Some(Gate {
                    name: arguments
                        .and_then(|a| a["gate"].as_str())
                        .unwrap_or(&step.id.value)
                        .to_owned(),
                    prompt: arguments
                        .and_then(|a| a["prompt"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                })
            }
            _ => None,
        };
        let rollback = kind.is_write().then(|| self.rollback_text(step));
        let expected = self
            .sources
            .history
            .expected(&step.path)
            .map(|e| ExpectedTime {
                p95: e.p95,
                samples: e.samples,
            });
        DocStep {
            number: number.to_owned(),
            path: step.path.clone(),
            id: step.id.value.clone(),
            name: step.name.clone(),
            depth,
            finally,
            needs: needs(step),
            when: step
                .when
                .as_ref()
                .map(|w| (w.source.clone(), when_resolved(instances))),
            skipped: self.skipped(&step.path),
            on: targets::step_targets(self.sources, step, instances),
            arguments: match &step.kind {
                StepKind::Action { .. } => {
                    first.map(|p| arguments(&p.arguments)).unwrap_or_default()
                }
                _ => Vec::new(),
            },
            instances: instances.len(),
            checkpoint: step.checkpoint,
            gate,
            verification: false,
            rollback,
            fallback: None,
            changes: self.changes.get(&step.path).cloned().unwrap_or_default(),
            settings: settings(step),
            expected,
            kind,
        }
    }

    fn kind(&self, step: &Step, first: Option<&PlannedStep>) -> StepKindText {
        match &step.kind {
            StepKind::Action { action, .. } => {
                let spec = self.sources.registry.get(&action.value).map(|a| a.spec());
                let effect = first
                    .map(|p| p.effect.clone())
                    .filter(|e| !e.is_empty())
                    .or_else(|| spec.map(|s| s.effect.letters()))
                    .unwrap_or_default();
                let write = match first {
                    Some(_) => effect.starts_with('W'),
                    None => spec.is_some_and(|s| s.effect.kind != EffectKind::Read),
                };
                StepKindText::Action {
                    action: action.value.clone(),
                    write,
                    summary: spec.map(|s| s.summary.to_owned()).unwrap_or_default(),
                    effect,
                }
            }
            StepKind::Group { .. } => StepKindText::Group,
            StepKind::ForEach { .. } => {
                let arguments = first.map(|p| &p.arguments);
                let items = arguments
                    .and_then(|a| a["items"].as_array())
                    .map(|items| items.iter().map(item_label).collect());
                let setting = |name: &str| {
                    arguments
                        .map(|a| &a[name])
                        .filter(|v| !v.is_null())
                        .map(one_line)
                };
                StepKindText::ForEach {
                    items,
                    batch: setting("batch"),
                    max_failures: setting("max_failures"),
                }
            }
        }
    }

    fn rollback_text(&self, step: &Step) -> RollbackText {
        if self.sources.checked.playbook.rollback == RollbackPolicy::None {
            return RollbackText::PolicyNone;
        }
        match step.rollback.as_ref().map(|r| &r.value) {
            Some(StepRollback::None) => RollbackText::Kept,
            Some(StepRollback::Steps(ids)) => {
                RollbackText::Steps(ids.iter().map(|i| i.value.clone()).collect())
            }
            Some(StepRollback::Auto) | None => {
                let reversible = self
                    .first(&step.path)
                    .map(|p| p.effect.contains('U'))
                    .or_else(|| {
                        step.action()
                            .and_then(|a| self.sources.registry.get(&a.value))
                            .map(|a| a.spec().effect.reversible)
                    })
                    .unwrap_or(false);
                if reversible {
                    RollbackText::Undo
                } else {
                    RollbackText::NoUndo
                }
            }
        }
    }

    /// Marks the read-only checks that come after a write as verifications.
    fn mark_verifications(&mut self) {
        let registry = self.sources.registry;
        let mut after_write = false;
        for step in &mut self.steps {
            let skipped = step.skipped;
            if let StepKindText::Action { action, write, .. } = &step.kind {
                if *write && !skipped {
                    after_write = true;
                } else if !*write && after_write && !skipped && step.gate.is_none() {
                    step.verification = registry.get(action).is_some_and(|a| a.spec().verifies);
                }
            }
        }
    }
}

/// Steps named in a sibling's `rollback:`, with the path of the step they undo.
fn undoers(steps: &[Step]) -> HashMap<&str, String> {
    let mut found = HashMap::new();
    for step in steps {
        if let Some(StepRollback::Steps(ids)) = step.rollback.as_ref().map(|r| &r.value) {
            for id in ids {
                found
                    .entry(id.value.as_str())
                    .or_insert_with(|| step.path.clone());
            }
        }
    }
    found
}

/// Explicit dependencies, or `None` when the step simply follows the one listed before it.
fn needs(step: &Step) -> Option<Vec<String>> {
    match &step.needs {
        crate::model::Needs::Previous => None,
        crate::model::Needs::Explicit(names) => {
            Some(names.value.iter().map(|n| n.value.clone()).collect())
        }
    }
}

fn when_resolved(instances: &[&PlannedStep]) -> WhenResolved {
    let values: HashSet<Option<bool>> = instances
        .iter()
        .map(|p| match &p.when {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s == "true" => Some(true),
            Some(Value::String(s)) if s == "false" || s.is_empty() => Some(false),
            _ => None,
        })
        .collect();
    match values.iter().collect::<Vec<_>>().as_slice() {
        [Some(true)] => WhenResolved::Runs,
        [Some(false)] => WhenResolved::Skipped,
        _ => WhenResolved::AtRunTime,
    }
}

/// Arguments as (name, value on one line).
fn arguments(value: &Value) -> Vec<(String, String)> {
    let Value::Object(map) = value else {
        return Vec::new();
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(name, v)| (name.clone(), one_line(v)))
        .collect()
}

/// A value on one line, cut to [`ARGUMENT_WIDTH`] characters; hosts show as their names.
pub(super) fn one_line(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.replace('\n', " ⏎ "),
        Value::Object(map) if map.contains_key("address") && map.contains_key("name") => {
            item_label(value)
        }
        Value::Array(items) if items.iter().any(Value::is_object) => format!(
            "[{}]",
            items.iter().map(one_line).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    };
    if text.chars().count() > ARGUMENT_WIDTH {
        let cut: String = text.chars().take(ARGUMENT_WIDTH).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Timeout, retries and polling, one line each.
fn settings(step: &Step) -> Vec<String> {
    fn show<T: std::fmt::Display>(setting: &Setting<T>) -> String {
        match setting {
            Setting::Literal(value) => value.value.to_string(),
            Setting::Template(text) => text.source.clone(),
        }
    }
    let mut out = Vec::new();
    if let Some(timeout) = &step.timeout {
        out.push(format!("timeout {}", show(timeout)));
    }
    if let Some(retries) = &step.retries {
        let delay = step
            .retry_delay
            .as_ref()
            .map(|d| format!(", from {} doubling", show(d)))
            .unwrap_or_default();
        out.push(format!("retries {}{delay}", show(retries)));
    }
    if let Some(until) = &step.until {
        out.push(format!("polls until {}", until.source));
    }
    if step.continue_on_error {
        out.push("a failure is tolerated (continue_on_error)".to_owned());
    }
    out
}

/// Whether a value is still unknown before the run.
pub(super) fn unknown(value: &Value) -> bool {
    value.as_str() == Some(KNOWN_AFTER_APPLY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_drop_item_labels() {
        assert_eq!(path_of("upgrade[dp1].node.drain"), "upgrade.node.drain");
        assert_eq!(
            path_of("finally.versions[a[b]].now"),
            "finally.versions.now"
        );
        assert_eq!(path_of("snapshot"), "snapshot");
    }

    #[test]
    fn header_notes_skip_the_schema_line_and_blank_edges() {
        let text = "# yaml-language-server: $schema=x\n#\n# What it does.\n#   indented\n#\nrunsheet: 1\n# later\n";
        assert_eq!(header_notes(text), vec!["What it does.", "  indented"]);
    }
}
