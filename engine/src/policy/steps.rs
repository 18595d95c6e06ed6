//! Rules about steps: undo and checkpoints for writes, approval gates, rolling
//! bounds and forbidden actions. "Before" means before in the DAG: an ancestor of
//! the step, or of a group or `for_each` that holds it.

use serde_json::Value;

use super::model::{
    ApprovalBeforeWrite, ForbiddenActions, RollingBounds, WriteNeedsUndo, glob_match,
};
use super::{Finding, Subject};
use crate::action::EffectKind;
use crate::dag::{Dag, FINALLY_SCOPE, MAIN_SCOPE};
use crate::model::{RollbackPolicy, Setting, Step, StepKind, StepRollback};
use crate::registry::Registry;

/// A step and where it stands: its (scope, sibling index) from the outermost scope in.
struct Located<'a> {
    step: &'a Step,
    chain: Vec<(String, usize)>,
    /// Named in a sibling's `rollback:`: it runs only to undo that sibling.
    undoes: bool,
}

/// Every step in document order, main steps then `finally`.
fn locate<'a>(subject: &Subject<'a>) -> Vec<Located<'a>> {
    fn walk<'a>(
        steps: &'a [Step],
        scope: &str,
        outer: &[(String, usize)],
        out: &mut Vec<Located<'a>>,
    ) {
        let undoers: Vec<&str> = steps
            .iter()
            .filter_map(|s| match s.rollback.as_ref().map(|r| &r.value) {
                Some(StepRollback::Steps(ids)) => Some(ids),
                _ => None,
            })
            .flatten()
            .map(|id| id.value.as_str())
            .collect();
        for (i, step) in steps.iter().enumerate() {
            let mut chain = outer.to_vec();
            chain.push((scope.to_owned(), i));
            out.push(Located {
                step,
                chain: chain.clone(),
                undoes: undoers.contains(&step.id.value.as_str()),
            });
            walk(step.body(), &format!("{}.", step.path), &chain, out);
        }
    }
    let mut out = Vec::new();
    walk(&subject.playbook.steps, MAIN_SCOPE, &[], &mut out);
    walk(&subject.playbook.finally, FINALLY_SCOPE, &[], &mut out);
    out
}

/// Whether `a` finishes before `b` starts.
fn precedes(dag: &Dag, a: &Located<'_>, b: &Located<'_>) -> bool {
    for (level, (x, y)) in a.chain.iter().zip(&b.chain).enumerate() {
        if x == y {
            continue;
        }
        if level == 0 && x.0 != y.0 {
            // `finally` runs after the main steps.
            return x.0 == MAIN_SCOPE;
        }
        return dag
            .scope(&x.0)
            .is_some_and(|scope| scope.is_ancestor(x.1, y.1));
    }
    false // One holds the other.
}

/// The step's arguments as JSON (templates stay text).
fn arguments(step: &Step) -> Value {
    match &step.kind {
        StepKind::Action {
            with: Some(with), ..
        } => with.to_json(),
        _ => Value::Object(serde_json::Map::new()),
    }
}

/// Whether an action step may change state (its action's effect for its arguments).
fn is_write(step: &Step, registry: &Registry) -> bool {
    step.action()
        .and_then(|name| registry.get(name))
        .is_some_and(|action| action.effect_for(&arguments(step)).kind != EffectKind::Read)
}

fn contains_write(steps: &[Step], registry: &Registry) -> bool {
    steps
        .iter()
        .any(|s| is_write(s, registry) || contains_write(s.body(), registry))
}

/// Every write step follows a checkpoint and has an undo or explicit rollback steps.
pub(super) fn write_needs_undo(
    params: &WriteNeedsUndo,
    subject: &Subject<'_>,
    registry: &Registry,
) -> Vec<Finding> {
    let file = subject.file;
    let located = locate(subject);
    let writes: Vec<&Located<'_>> = located
        .iter()
        .filter(|l| !l.undoes && is_write(l.step, registry))
        .collect();
    let mut out = Vec::new();
    if subject.playbook.rollback == RollbackPolicy::None && !writes.is_empty() {
        out.push(Finding::new(
            file,
            subject.playbook.name.span,
            "the playbook's `rollback: none` undoes no write when a step fails".into(),
            "use `rollback: to_checkpoint` (the default) or `all`",
        ));
    }
    for write in writes {
        let step = write.step;
        let Some(action) = step.action() else {
            continue;
        };
        let reversible = registry
            .get(action)
            .is_some_and(|a| a.effect_for(&arguments(step)).reversible);
        match step.rollback.as_ref().map(|r| &r.value) {
            Some(StepRollback::Steps(_)) => {}
            Some(StepRollback::None) => out.push(Finding::new(
                file,
                step.rollback.as_ref().map_or(step.span, |r| r.span),
                format!("write step `{}` has `rollback: none`: a failed run leaves it in place", step.path),
                "give it `rollback: [steps that undo it]`",
            )),
            Some(StepRollback::Auto) | None if !reversible => out.push(Finding::new(
                file,
                action.span,
                format!(
                    "write step `{}` runs `{}`, which has no undo, and has no `rollback:` steps",
                    step.path, action.value
                ),
                "give it `rollback: [steps that undo it]`, or use an action that can undo (U in `runsheet actions`)",
            )),
            Some(StepRollback::Auto) | None => {}
        }
        if params.require_checkpoint
            && !located
                .iter()
                .any(|other| other.step.checkpoint && precedes(subject.dag, other, write))
        {
            out.push(Finding::new(
                file,
                step.id.span,
                format!("write step `{}` has no checkpoint before it", step.path),
                "mark a step that runs before it `checkpoint: true` (a backup, or a read of the state it changes)",
            ));
        }
    }
    out
}

/// An approval gate is an ancestor of every write step.
pub(super) fn approval_before_write(
    params: &ApprovalBeforeWrite,
    subject: &Subject<'_>,
    registry: &Registry,
) -> Vec<Finding> {
    let located = locate(subject);
    let is_gate = |step: &Step| {
        step.action()
            .is_some_and(|a| params.gate_actions.iter().any(|g| glob_match(g, a)))
    };
    let gates: Vec<&Located<'_>> = located.iter().filter(|l| is_gate(l.step)).collect();
    let help = format!(
        "add a step with action `{}` that every write step needs (directly or through the steps before it)",
        params
            .gate_actions
            .first()
            .map_or("approval", String::as_str)
    );
    let mut out = Vec::new();
    for write in located
        .iter()
        .filter(|l| !l.undoes && is_write(l.step, registry))
    {
        if gates.iter().any(|gate| precedes(subject.dag, gate, write)) {
            continue;
        }
        let message = if gates.is_empty() {
            format!(
                "the playbook has no approval gate; `{}` is its first write step",
                write.step.path
            )
        } else {
            format!(
                "write step `{}` can start before any approval gate",
                write.step.path
            )
        };
        out.push(Finding::new(
            subject.file,
            write.step.id.span,
            message,
            help.clone(),
        ));
        if gates.is_empty() {
            break; // One finding says it: there is no gate at all.
        }
    }
    out
}

/// `batch` and `max_failures` of rolling steps (`for_each` whose body writes) within bounds.
pub(super) fn rolling_bounds(
    params: &RollingBounds,
    subject: &Subject<'_>,
    registry: &Registry,
) -> Vec<Finding> {
    let file = subject.file;
    let mut out = Vec::new();
    for step in subject.playbook.all_steps() {
        let StepKind::ForEach {
            items,
            batch,
            max_failures,
            steps,
            ..
        } = &step.kind
        else {
            continue;
        };
        if !contains_write(steps, registry) {
            continue;
        }
        let total = item_count(&items.source, subject);
        let limit = batch_limit(params, total);
        match batch {
            None if limit.is_some() => out.push(Finding::new(
                file,
                step.id.span,
                format!(
                    "rolling step `{}` has no `batch`: every item at once",
                    step.path
                ),
                format!("add `batch:` of at most {}", limit.map_or(1, |(n, _)| n)),
            )),
            None => {}
            Some(batch) => {
                if let (Some(size), Some((most, why))) = (setting_value(batch, subject), limit)
                    && size > most
                {
                    out.push(Finding::new(
                        file,
                        batch.span(),
                        format!(
                            "rolling step `{}` works on {size} items at once, more than {why}",
                            step.path
                        ),
                        format!("lower `batch` to at most {most}"),
                    ));
                }
            }
        }
        if let (Some(most), Some(setting)) = (params.max_failures, max_failures)
            && let Some(value) = setting_value(setting, subject)
            && value > u64::from(most)
        {
            out.push(Finding::new(
                file,
                setting.span(),
                format!(
                    "rolling step `{}` tolerates {value} failed items, more than {most}",
                    step.path
                ),
                format!("lower `max_failures` to at most {most}"),
            ));
        }
    }
    out
}

/// The largest batch allowed and why, from the bounds and the number of items when known.
fn batch_limit(params: &RollingBounds, total: Option<(u64, String)>) -> Option<(u64, String)> {
    let by_count = params
        .max_batch
        .map(|n| (u64::from(n), format!("the policy's {n}")));
    let by_percent = match (params.max_batch_percent, total) {
        (Some(percent), Some((total, what))) => {
            let most = (total * u64::from(percent) / 100).max(1);
            Some((
                most,
                format!("{percent}% of the {total} items of {what} ({most})"),
            ))
        }
        _ => None,
    };
    match (by_count, by_percent) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// A setting's value: a literal, or `{{ inputs.NAME }}` read from the inputs.
fn setting_value(setting: &Setting<u32>, subject: &Subject<'_>) -> Option<u64> {
    match setting {
        Setting::Literal(value) => Some(u64::from(value.value)),
        Setting::Template(text) => {
            let name = expression(&text.source)?.strip_prefix("inputs.")?;
            subject.inputs.get(name)?.as_u64()
        }
    }
}

/// The single expression of a `{{ ... }}` template, trimmed.
fn expression(source: &str) -> Option<&str> {
    let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    (!inner.contains("{{")).then_some(inner)
}

/// How many items `hosts(GROUP)` gives, when the group is written or an input, and its name.
fn item_count(source: &str, subject: &Subject<'_>) -> Option<(u64, String)> {
    let argument = expression(source)?
        .strip_prefix("hosts(")?
        .strip_suffix(')')?
        .trim();
    let group = match argument.strip_prefix("inputs.") {
        Some(name) => subject.inputs.get(name)?.as_str()?.to_owned(),
        None => argument
            .strip_prefix(['\'', '"'])?
            .strip_suffix(['\'', '"'])?
            .to_owned(),
    };
    let (_, environment) = subject.environment?;
    let count = environment.hosts_in(&group).len() as u64;
    (count > 0).then(|| (count, format!("group `{group}`")))
}

/// Steps whose action the environment forbids, unless their arguments match the exception.
pub(super) fn forbidden_actions(params: &ForbiddenActions, subject: &Subject<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for step in subject.playbook.all_steps() {
        let Some(action) = step.action() else {
            continue;
        };
        if !params.actions.iter().any(|p| glob_match(p, action)) {
            continue;
        }
        let arguments = arguments(step);
        let excepted = !params.unless.is_empty()
            && params
                .unless
                .iter()
                .all(|(key, value)| arguments.get(key) == Some(value));
        if excepted {
            continue;
        }
        let help = if params.unless.is_empty() {
            "use another action, or run this playbook in another environment".to_owned()
        } else {
            let allowed: Vec<String> = params
                .unless
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            format!("it is allowed only with `{}`", allowed.join(", "))
        };
        out.push(Finding::new(
            subject.file,
            action.span,
            format!(
                "step `{}` runs `{}`, which this environment forbids",
                step.path, action.value
            ),
            help,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_expressions_are_read_and_others_are_not() {
        assert_eq!(
            expression("{{ inputs.batch_size }}"),
            Some("inputs.batch_size")
        );
        assert_eq!(expression("{{ a }}-{{ b }}"), None);
        assert_eq!(expression("plain"), None);
    }

    #[test]
    fn the_batch_limit_is_the_tighter_bound_and_at_least_one() {
        let params = RollingBounds {
            max_batch_percent: Some(25),
            max_batch: Some(5),
            max_failures: None,
        };
        let limit = |total| batch_limit(&params, Some((total, "g".into()))).map(|l| l.0);
        assert_eq!(limit(3), Some(1));
        assert_eq!(limit(8), Some(2));
        assert_eq!(limit(100), Some(5));
    }
}
