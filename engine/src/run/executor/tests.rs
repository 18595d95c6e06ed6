//! Executor behaviour with test actions that write to an in-memory store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::{Control, Mode, Prior, PriorStep, RunOptions, RunResult, WindowEnd, execute, lock, object};
use crate::run::journal::Record;
use crate::action::{Action, ActionError, ActionSpec, Applied, Change, Effect, StepContext};
use crate::check::{CheckRequest, check};
use crate::registry::Registry;
use crate::run::event::Observer;
use crate::run::mask::Masker;
use crate::run::summary::{Recorder, RunFacts, RunSummary};
use crate::run::window::History;

/// A shared key-value store the test actions change.
#[derive(Debug, Default)]
struct Store {
    values: Mutex<BTreeMap<String, String>>,
    writes: AtomicU32,
}

/// `t.put {key, value}`: W I U — sets a key; undo restores the previous value or absence.
struct Put {
    spec: ActionSpec,
    store: Arc<Store>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[expect(dead_code, reason = "only its schema is used")]
struct PutArgs {
    key: String,
    value: serde_json::Value,
}

#[async_trait::async_trait]
impl Action for Put {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, _: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let key = arguments["key"].as_str().unwrap_or("").to_owned();
        let before = lock(&self.store.values).get(&key).cloned();
        Ok(Change::between(format!("set {key}"), before, arguments["value"].to_string()))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let key = arguments["key"].as_str().unwrap_or("").to_owned();
        let value = arguments["value"].to_string();
        if value.contains("boom") {
            return Err(ActionError::failed(format!("cannot set {key}")));
        }
        // The value this write replaces: as an interrupted earlier attempt kept it, else now.
        let replaced = match context.prepared.earlier() {
            Some(kept) => kept["previous"].as_str().map(str::to_owned),
            None => lock(&self.store.values).get(&key).cloned(),
        };
        context.prepared.keep(json!({"previous": replaced})).await?;
        if value.contains("slow") {
            // A write whose answer is slow: the step's timeout cuts it off midway.
            self.store.writes.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
        self.store.writes.fetch_add(1, Ordering::Relaxed);
        let overwritten = lock(&self.store.values).insert(key.clone(), value.clone());
        if value.contains("lost") && overwritten.as_ref() != Some(&value) {
            // Wrote, and the answer was lost: the step fails, and a retry may run.
            return Err(ActionError::failed(format!("{key}: no answer")));
        }
        let previous = replaced;
        if value.contains("half") {
            // Wrote, failed after, and could not put the value back.
            return Err(ActionError::partially_applied(format!("{key}: the second write failed"), vec![format!("key {key}")]));
        }
        let mut outputs = Map::new();
        outputs.insert("value".into(), Value::String(value));
        // A value naming `s3cret` is one the action must keep from every output.
        let secrets: Vec<String> = arguments["value"].as_str().filter(|v| v.contains("s3cret")).map(str::to_owned).into_iter().collect();
        Ok(Applied {
            secrets,
            outputs,
            undo: Some(json!({"key": key, "previous": previous})),
            change: None,
        })
    }

    async fn undo(&self, _: &StepContext, _: Value, undo: Value) -> Result<(), ActionError> {
        let key = undo["key"].as_str().unwrap_or("").to_owned();
        if key.contains("stuck") {
            return Err(ActionError::failed("the undo itself failed"));
        }
        let mut values = lock(&self.store.values);
        match undo["previous"].as_str() {
            Some(previous) => values.insert(key, previous.to_owned()),
            None => values.remove(&key),
        };
        Ok(())
    }
}

/// `t.flaky {fail_times}`: R — fails the first N attempts, then counts.
struct Flaky {
    spec: ActionSpec,
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl Action for Flaky {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, _: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if u64::from(call) <= arguments["fail_times"].as_u64().unwrap_or(0) {
            return Err(ActionError::failed(format!("attempt {call} failed")));
        }
        let mut outputs = Map::new();
        outputs.insert("calls".into(), Value::from(call));
        Ok(Applied { outputs, ..Applied::default() })
    }
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[expect(dead_code, reason = "only its schema is used")]
struct FlakyArgs {
    fail_times: u32,
}

fn registry(store: &Arc<Store>) -> Registry {
    let mut registry = Registry::new();
    let put = Put {
        spec: ActionSpec::new::<PutArgs>("t.put", "test", "sets a key", Effect::write().idempotent().reversible()),
        store: Arc::clone(store),
    };
    let flaky = Flaky {
        spec: ActionSpec::new::<FlakyArgs>("t.flaky", "test", "fails N times", Effect::READ),
        calls: AtomicU32::new(0),
    };
    assert!(registry.register(put).is_ok());
    assert!(registry.register(flaky).is_ok());
    registry
}

struct Outcome {
    result: RunResult,
    summary: RunSummary,
    store: Arc<Store>,
}

fn run_with(yaml: &str, store: Arc<Store>, dry_run: bool, prior: Prior, mode: Mode) -> Outcome {
    let dir = tempfile::tempdir().unwrap_or_else(unreachable);
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, yaml).unwrap_or_else(unreachable);
    let registry = registry(&store);
    let checked = match check(&registry, &CheckRequest { playbook: path, require_inputs: true, ..CheckRequest::default() }) {
        Ok(checked) => checked,
        Err(diagnostics) => unreachable(format!("{:?}", diagnostics.iter().map(|d| d.message.clone()).collect::<Vec<_>>())),
    };
    let recorder = Arc::new(Recorder::new(RunFacts::default()));
    let options = RunOptions {
        run_id: "test".into(),
        dry_run,
        base_dir: dir.path().to_path_buf(),
        window: None,
        window_end: WindowEnd::Rollback,
        history: History::default(),
        prior,
        resumed: false,
        mode,
        approver: Arc::new(crate::action::NoApprover),
        observers: vec![Arc::clone(&recorder) as Arc<dyn Observer>],
        journal: None,
        masker: Masker::default(),
        change_id: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap_or_else(unreachable);
    let result = runtime.block_on(execute(&checked, &registry, options, Control::new()));
    Outcome { result, summary: recorder.summary(), store }
}

fn run(yaml: &str) -> Outcome {
    run_with(yaml, Arc::default(), false, Prior::default(), Mode::Run)
}

fn unreachable<T>(e: impl std::fmt::Debug) -> T {
    #[expect(clippy::panic, reason = "test setup failure")]
    {
        panic!("test setup: {e:?}")
    }
}

fn described(summary: &RunSummary) -> Vec<(String, String)> {
    summary.steps.iter().map(|s| (s.id.clone(), format!("{} {}", s.status, s.message.clone().unwrap_or_default()))).collect()
}

fn statuses(summary: &RunSummary) -> Vec<(String, String)> {
    summary.steps.iter().map(|s| (s.id.clone(), s.status.clone())).collect()
}

fn store(outcome: &Outcome) -> BTreeMap<String, String> {
    lock(&outcome.store.values).clone()
}

#[test]
fn a_sequential_playbook_runs_in_order_and_passes_outputs() {
    let outcome = run(r#"
runsheet: 1
name: seq
steps:
  - {id: a, action: t.put, with: {key: a, value: 1}}
  - {id: b, action: t.put, with: {key: b, value: "{{ steps.a.outputs.value }}-x"}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::Succeeded, "{:?}", described(&outcome.summary));
    assert_eq!(store(&outcome).get("b").map(String::as_str), Some("\"1-x\""));
    assert_eq!(statuses(&outcome.summary), [("a".into(), "succeeded".into()), ("b".into(), "succeeded".into())]);
}

#[test]
fn secrets_an_action_names_are_masked_in_outputs_but_reach_later_steps() {
    let outcome = run(r#"
runsheet: 1
name: secrets
steps:
  - {id: a, action: t.put, with: {key: a, value: "s3cret-value"}}
  - {id: b, action: t.put, with: {key: b, value: "{{ steps.a.outputs.value }}"}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::Succeeded, "{:?}", described(&outcome.summary));
    assert!(store(&outcome).get("b").is_some_and(|b| b.contains("s3cret-value")), "the next step got the value itself: {:?}", store(&outcome));
    let shown = serde_json::to_string(&outcome.summary.steps).unwrap_or_else(unreachable);
    assert!(!shown.contains("s3cret-value"), "{shown}");
    assert!(shown.contains(crate::check::MASK), "{shown}");
}

#[test]
fn a_failure_rolls_back_to_the_last_checkpoint_the_failed_branch_passed() {
    let outcome = run(r#"
runsheet: 1
name: rb
steps:
  - {id: a, action: t.put, with: {key: a, value: 1}}
  - {id: cp, action: t.put, with: {key: cp, value: 1}, checkpoint: true}
  - {id: c, action: t.put, with: {key: c, value: 1}}
  - {id: d, action: t.put, with: {key: d, value: boom}}
  - {id: e, action: t.put, with: {key: e, value: 1}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::RolledBack);
    let kept: Vec<String> = store(&outcome).into_keys().collect();
    assert_eq!(kept, ["a", "cp"], "work up to the checkpoint stays, c is undone, e never ran");
    let rollback = outcome.summary.rollback.as_ref().map(|r| (r.checkpoint.clone(), r.steps.len()));
    assert_eq!(rollback, Some((Some("cp".into()), 1)));
}

#[test]
fn rollback_all_undoes_everything_in_reverse_and_a_failed_undo_needs_attention() {
    let outcome = run(r#"
runsheet: 1
name: rb
rollback: all
steps:
  - {id: a, action: t.put, with: {key: stuck, value: 1}}
  - {id: cp, action: t.put, with: {key: cp, value: 1}, checkpoint: true}
  - {id: d, action: t.put, with: {key: d, value: boom}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::NeedsAttention);
    let undone: Vec<(String, String)> = outcome.summary.rollback.iter().flat_map(|r| r.steps.iter().map(|s| (s.id.clone(), s.status.clone()))).collect();
    assert_eq!(undone, [("cp".into(), "undone".into()), ("a".into(), "failed".into())]);
    assert!(outcome.result.attention.iter().any(|a| a.starts_with("a: not undone")), "{:?}", outcome.result.attention);
}

#[test]
fn a_write_cut_off_by_its_timeout_needs_attention_and_is_not_retried() {
    let outcome = run(r#"
runsheet: 1
name: cut
rollback: all
steps:
  - {id: a, action: t.put, with: {key: a, value: 1}}
  - {id: d, action: t.put, with: {key: d, value: slow}, timeout: 200ms, retries: 2, retry_delay: 1ms}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::NeedsAttention);
    assert_eq!(
        outcome.result.attention,
        ["d: failed partway and could not put back its own changes; left changed: stopped after 200ms partway through its writes: what it changed is not known"]
    );
    assert_eq!(outcome.store.writes.load(Ordering::Relaxed), 2, "a's write and d's one attempt, not retried");
    assert_eq!(store(&outcome).get("a"), None, "the steps before are still undone");
}

#[test]
fn a_step_that_leaves_changes_it_cannot_put_back_needs_attention_and_names_them() {
    let outcome = run(r#"
runsheet: 1
name: partial
rollback: all
steps:
  - {id: a, action: t.put, with: {key: a, value: 1}}
  - {id: d, action: t.put, with: {key: d, value: half}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::NeedsAttention);
    let undone: Vec<(String, String)> = outcome.summary.rollback.iter().flat_map(|r| r.steps.iter().map(|s| (s.id.clone(), s.status.clone()))).collect();
    assert_eq!(undone, [("a".into(), "undone".into())], "the steps before are still undone");
    assert_eq!(
        outcome.result.attention,
        ["d: failed partway and could not put back its own changes; left changed: key d"]
    );
    assert_eq!(outcome.summary.attention, outcome.result.attention);
    assert_eq!(store(&outcome).get("d").map(String::as_str), Some("\"half\""), "left as the action left it");
}

#[test]
fn retries_double_their_delay_and_until_polls() {
    let outcome = run(r#"
runsheet: 1
name: retry
steps:
  - {id: r, action: t.flaky, with: {fail_times: 2}, retries: 3, retry_delay: 1s}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::Succeeded);
    let step = &outcome.summary.steps[0];
    assert_eq!(step.attempts, 3);
    let outcome = run(r#"
runsheet: 1
name: poll
steps:
  - {id: p, action: t.flaky, with: {fail_times: 0}, until: "{{ result.calls >= 4 }}", retry_delay: 1s, timeout: 1m}
  - {id: q, action: t.flaky, with: {fail_times: 0}, until: "{{ result.calls > 100 }}", retry_delay: 1s, timeout: 3s}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::RolledBack);
    let q = outcome.summary.steps.iter().find(|s| s.id == "q").and_then(|s| s.message.clone()).unwrap_or_default();
    assert!(q.contains("still false after 3s"), "{q}");
}

#[test]
fn for_each_batches_tolerate_max_failures_and_stop_beyond() {
    let outcome = run(r#"
runsheet: 1
name: fe
steps:
  - id: each
    for_each: "{{ ['n1', 'boom2', 'n3', 'n4'] }}"
    batch: 2
    max_failures: 1
    steps:
      - {id: put, action: t.put, with: {key: "{{ item }}", value: "{{ item }}"}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::Succeeded);
    assert_eq!(store(&outcome).len(), 3);
    let outcome = run(r#"
runsheet: 1
name: fe
steps:
  - id: each
    for_each: "{{ ['n1', 'boom2', 'n3', 'n4'] }}"
    batch: 2
    steps:
      - {id: put, action: t.put, with: {key: "{{ item }}", value: "{{ item }}"}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::RolledBack);
    assert!(store(&outcome).is_empty(), "the first batch's write is undone: {:?}", store(&outcome));
    assert!(statuses(&outcome.summary).contains(&("each[n3]".into(), "skipped".into())));
}

#[test]
fn when_continue_on_error_explicit_rollback_steps_and_finally() {
    let outcome = run(r#"
runsheet: 1
name: misc
steps:
  - {id: skipped, action: t.put, with: {key: s, value: 1}, when: "{{ 1 > 2 }}"}
  - {id: tolerated, action: t.put, with: {key: t, value: boom}, continue_on_error: true}
  - {id: main, action: t.put, with: {key: m, value: 1}, rollback: [restore]}
  - {id: restore, action: t.put, with: {key: restored, value: yes}, needs: []}
  - {id: bad, action: t.put, with: {key: x, value: boom}, needs: [main]}
finally:
  - {id: note, action: t.put, with: {key: finally, value: ran}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::RolledBack);
    let values = store(&outcome);
    assert!(values.contains_key("restored"), "the explicit rollback step ran: {values:?}");
    assert!(values.contains_key("m"), "main was undone by its rollback steps, not by its undo record");
    assert!(values.contains_key("finally"));
    assert!(!values.contains_key("s"));
    let status = |id: &str| outcome.summary.steps.iter().find(|s| s.id == id).map(|s| s.status.clone());
    assert_eq!(status("skipped").as_deref(), Some("skipped"));
    assert_eq!(status("tolerated").as_deref(), Some("failed"));
}

#[test]
fn a_dry_run_plans_writes_and_changes_nothing() {
    let store: Arc<Store> = Arc::default();
    lock(&store.values).insert("a".into(), "1".into());
    let outcome = run_with(r#"
runsheet: 1
name: dry
steps:
  - {id: a, action: t.put, with: {key: a, value: 1}}
  - {id: b, action: t.put, with: {key: b, value: "{{ steps.a.outputs.value }}"}}
  - {id: r, action: t.flaky, with: {fail_times: 0}}
"#, store, true, Prior::default(), Mode::Run);
    assert_eq!(outcome.result.outcome, super::Outcome::Planned);
    assert_eq!(outcome.store.writes.load(Ordering::Relaxed), 0);
    let planned: Vec<(String, Option<bool>)> = outcome.result.planned.iter().map(|p| (p.step.clone(), p.change.changes)).collect();
    assert_eq!(planned, [("a".into(), Some(false)), ("b".into(), None)]);
}

#[test]
fn a_dry_run_reads_an_until_step_once_and_plans_the_wait_when_it_does_not_hold() {
    let outcome = run_with(r#"
runsheet: 1
name: dry-until
steps:
  - {id: a, action: t.put, with: {key: a, value: 2}}
  - {id: wait, action: t.flaky, with: {fail_times: 0}, until: "{{ result.calls > 100 }}", retry_delay: 1s, timeout: 10m}
  - {id: after, action: t.put, with: {key: b, value: "{{ steps.wait.outputs.calls }}"}}
  - {id: now, action: t.flaky, with: {fail_times: 0}, until: "{{ result.calls >= 1 }}"}
"#, Arc::default(), true, Prior::default(), Mode::Run);
    assert_eq!(outcome.result.outcome, super::Outcome::Planned, "{:?}", described(&outcome.summary));
    let planned: Vec<(String, String)> = outcome.result.planned.iter().map(|p| (p.step.clone(), p.change.summary.clone())).collect();
    assert_eq!(planned.len(), 3, "{planned:?}");
    assert_eq!(planned[1].0, "wait");
    assert!(planned[1].1.starts_with("would wait until `{{ result.calls > 100 }}` (false now"), "{planned:?}");
    assert!(planned[2].1.contains("known after apply"), "its outputs are unknown: {planned:?}");
    let now = outcome.summary.steps.iter().find(|s| s.id == "now").map(|s| (s.status.clone(), s.attempts));
    assert_eq!(now, Some(("succeeded".into(), 1)), "a condition that holds reads for real, once: it ran after `wait` read once");
    assert_eq!(outcome.store.writes.load(Ordering::Relaxed), 0);
}

#[test]
fn a_dry_run_read_failing_after_a_planned_change_is_not_conclusive_but_one_before_fails() {
    let after = run_with(r#"
runsheet: 1
name: dry-after
steps:
  - {id: change, action: t.put, with: {key: a, value: 2}}
  - {id: check, action: t.flaky, with: {fail_times: 1}}
"#, Arc::default(), true, Prior::default(), Mode::Run);
    assert_eq!(after.result.outcome, super::Outcome::Planned, "{:?}", described(&after.summary));
    let check = after.result.planned.iter().find(|p| p.step == "check").map(|p| p.change.summary.clone());
    assert!(
        check.as_deref().is_some_and(|s| s.starts_with("not conclusive in a dry run: it reads after `change`")),
        "{check:?}"
    );
    let before = run_with(r#"
runsheet: 1
name: dry-before
steps:
  - {id: check, action: t.flaky, with: {fail_times: 1}}
  - {id: change, action: t.put, with: {key: a, value: 2}}
"#, Arc::default(), true, Prior::default(), Mode::Run);
    assert_ne!(before.result.outcome, super::Outcome::Planned, "a read before any change fails the plan");
    let unchanged = Arc::new(Store::default());
    lock(&unchanged.values).insert("a".into(), "2".into());
    let no_change = run_with(r#"
runsheet: 1
name: dry-no-change
steps:
  - {id: change, action: t.put, with: {key: a, value: 2}}
  - {id: check, action: t.flaky, with: {fail_times: 1}}
"#, unchanged, true, Prior::default(), Mode::Run);
    assert_ne!(no_change.result.outcome, super::Outcome::Planned, "a write that changes nothing proves the read's failure");
}

#[test]
fn resume_restores_done_steps_and_rollback_mode_undoes_them() {
    let yaml = r#"
runsheet: 1
name: resume
steps:
  - {id: a, action: t.put, with: {key: a, value: 1}}
  - {id: b, action: t.put, with: {key: b, value: "{{ steps.a.outputs.value }}"}}
"#;
    let store: Arc<Store> = Arc::default();
    lock(&store.values).insert("a".into(), "1".into());
    let mut prior = Prior::default();
    prior.done.insert("a".into(), PriorStep { outputs: json!({"value": "7"}), undo: Some(json!({"key": "a", "previous": null})), masked: false, write: true, undo_unknown: None });
    let outcome = run_with(yaml, Arc::clone(&store), false, prior.clone(), Mode::Run);
    assert_eq!(outcome.result.outcome, super::Outcome::Succeeded);
    assert_eq!(store.writes.load(Ordering::Relaxed), 1, "only b ran");
    assert_eq!(lock(&store.values).get("b").map(String::as_str), Some("\"7\""));
    let outcome = run_with(yaml, Arc::clone(&store), false, prior, Mode::Rollback);
    assert_eq!(outcome.result.outcome, super::Outcome::RolledBack);
    assert!(!lock(&store.values).contains_key("a"), "a's undo ran");
}

#[test]
fn an_idempotent_write_run_again_on_resume_undoes_to_what_its_first_attempt_replaced() {
    // The first attempt kept "old", wrote "new" and was killed before its end record:
    // run again, it must not take its own "new" for the value to restore.
    let yaml = r#"
runsheet: 1
name: resume
steps:
  - {id: w, action: t.put, with: {key: k, value: new}}
  - {id: fail, action: t.put, needs: [w], with: {key: x, value: boom}}
"#;
    let store: Arc<Store> = Arc::default();
    lock(&store.values).insert("k".into(), "\"new\"".into());
    let record = |line: usize, fields: Value| Record { line, fields: object(fields) };
    let prior = Prior::from_records(&[
        record(0, json!({"kind": "step_started", "step": "w"})),
        record(1, json!({"kind": "step_prepared", "step": "w", "state": {"previous": "old"}})),
    ]);
    assert_eq!(prior.prepared.get("w"), Some(&json!({"previous": "old"})));
    let outcome = run_with(yaml, Arc::clone(&store), false, prior, Mode::Run);
    assert_eq!(outcome.result.outcome, super::Outcome::RolledBack, "{:?}", described(&outcome.summary));
    assert_eq!(lock(&store.values).get("k").map(String::as_str), Some("old"), "w's undo restored what its first attempt replaced");
}

#[test]
fn a_retry_undoes_to_what_the_first_try_replaced_not_to_that_try_s_write() {
    let outcome = run(r#"
runsheet: 1
name: retried
steps:
  - {id: w, action: t.put, retries: 1, retry_delay: 1s, with: {key: k, value: lost-once}}
  - {id: fail, action: t.put, needs: [w], with: {key: x, value: boom}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::RolledBack, "{:?}", described(&outcome.summary));
    assert_eq!(outcome.store.writes.load(Ordering::Relaxed), 2, "the write was tried twice");
    assert!(!lock(&outcome.store.values).contains_key("k"), "w's undo removed the key it created");
}

#[test]
fn a_kept_state_counts_only_for_its_write_in_doubt() {
    let record = |line: usize, fields: Value| Record { line, fields: object(fields) };
    let started = record(0, json!({"kind": "step_started", "step": "w"}));
    let kept = record(1, json!({"kind": "step_prepared", "step": "w", "state": {"previous": "old"}}));
    let succeeded = record(2, json!({"kind": "step_succeeded", "step": "w", "write": true}));
    let masked = record(2, json!({"kind": "step_prepared", "step": "w", "masked": true}));
    assert!(Prior::from_records(&[started.clone(), kept.clone(), succeeded]).prepared.is_empty(), "ended: nothing in doubt");
    assert!(Prior::from_records(std::slice::from_ref(&kept)).prepared.is_empty(), "kept without a start");
    assert!(Prior::from_records(&[started.clone(), kept.clone(), masked]).prepared.is_empty(), "a masked state is read again");
    let retried = record(3, json!({"kind": "step_prepared", "step": "w", "state": {"previous": "lost-once"}}));
    let prior = Prior::from_records(&[started, kept, retried]);
    assert_eq!(prior.prepared.get("w"), Some(&json!({"previous": "old"})), "the first try's state wins");
}

#[test]
fn writes_waiting_for_a_slot_do_not_start_after_a_failure() {
    let outcome = run(r#"
runsheet: 1
name: queued
concurrency: 1
rollback: none
steps:
  - {id: boom, action: t.put, needs: [], with: {key: x, value: boom}}
  - {id: w1, action: t.put, needs: [], with: {key: w1, value: 1}}
  - {id: w2, action: t.put, needs: [], with: {key: w2, value: 1}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::Failed);
    assert_eq!(outcome.store.writes.load(Ordering::Relaxed), 0, "{:?}", described(&outcome.summary));
}

#[test]
fn a_checkpoint_before_an_empty_for_each_is_kept() {
    let outcome = run(r#"
runsheet: 1
name: empty-each
steps:
  - {id: base, action: t.put, with: {key: base, value: 1}, checkpoint: true}
  - id: each
    for_each: "{{ [] }}"
    steps:
      - {id: put, action: t.put, with: {key: "{{ item }}", value: 1}}
  - {id: boom, action: t.put, with: {key: x, value: boom}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::RolledBack);
    assert!(store(&outcome).contains_key("base"), "{:?}", described(&outcome.summary));
}

#[test]
fn for_each_items_with_the_same_label_are_refused() {
    let outcome = run(r#"
runsheet: 1
name: twins
steps:
  - id: each
    for_each: "{{ ['dp1', 'dp1'] }}"
    steps:
      - {id: put, action: t.put, with: {key: "{{ item }}", value: 1}}
"#);
    assert_ne!(outcome.result.outcome, super::Outcome::Succeeded);
    let each = outcome.summary.steps.iter().find(|s| s.id == "each").and_then(|s| s.message.clone()).unwrap_or_default();
    assert!(each.contains("two items labelled `dp1`"), "{each}");
    assert_eq!(outcome.store.writes.load(Ordering::Relaxed), 0);
}

#[test]
fn a_journal_replay_reruns_what_came_after_an_undone_write_and_keeps_rollback_none_steps() {
    let records: Vec<Record> = [
        json!({"kind": "step_succeeded", "step": "w1", "write": true, "undo": {"k": 1}}),
        json!({"kind": "step_succeeded", "step": "kept", "write": true}),
        json!({"kind": "step_succeeded", "step": "health", "write": false}),
        json!({"kind": "step_succeeded", "step": "w2", "write": true, "undo": {"k": 2}}),
        json!({"kind": "step_failed", "step": "boom"}),
        json!({"kind": "rollback_started", "steps": ["w2", "kept"]}),
        json!({"kind": "undo_started", "step": "w2"}),
        json!({"kind": "step_undone", "step": "w2"}),
        json!({"kind": "step_kept", "step": "kept"}),
        json!({"kind": "step_succeeded", "step": "masked", "write": true, "undo_masked": true}),
    ]
    .into_iter()
    .enumerate()
    .map(|(line, fields)| Record { line, fields: object(fields) })
    .collect();
    let prior = Prior::from_records(&records);
    let mut done: Vec<&str> = prior.done.keys().map(String::as_str).collect();
    done.sort_unstable();
    assert_eq!(done, ["kept", "masked", "w1"], "health ran after the undone write's first write (kept), so it runs again");
    assert!(prior.undo_in_doubt.is_empty());
    assert!(prior.done.get("masked").is_some_and(|s| s.undo_unknown.is_some()));
    let cut_short = Prior::from_records(&records[..7]);
    assert!(cut_short.undo_in_doubt.contains("w2"), "an undo with a start and no end is in doubt");
}

#[test]
fn a_tolerated_item_failure_undoes_that_item_only() {
    let outcome = run(r#"
runsheet: 1
name: tolerated
steps:
  - id: each
    for_each: "{{ ['n1', 'boom2', 'n3'] }}"
    batch: 1
    max_failures: 1
    steps:
      - {id: drain, action: t.put, with: {key: "{{ item }}-drained", value: 1}}
      - {id: upgrade, action: t.put, with: {key: "{{ item }}", value: "{{ item }}"}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::Succeeded, "{:?}", described(&outcome.summary));
    let keys: Vec<String> = store(&outcome).into_keys().collect();
    assert_eq!(keys, ["n1", "n1-drained", "n3", "n3-drained"], "boom2's drain was undone, the others stand");
}

#[test]
fn a_rollback_step_that_ran_for_a_tolerated_item_is_never_undone_later() {
    let outcome = run(r#"
runsheet: 1
name: nested-undo
rollback: all
steps:
  - id: each
    for_each: "{{ ['boom1', 'n2'] }}"
    batch: 1
    max_failures: 1
    steps:
      - {id: drain, action: t.put, with: {key: "{{ item }}-drained", value: 1}, rollback: [undrain]}
      - {id: undrain, action: t.put, needs: [], with: {key: "{{ item }}-undrained", value: 1}}
      - {id: upgrade, action: t.put, needs: [drain], with: {key: "{{ item }}", value: "{{ item }}"}}
  - {id: final, action: t.put, with: {key: x, value: boom}}
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::RolledBack, "{:?}", described(&outcome.summary));
    let keys: Vec<String> = store(&outcome).into_keys().collect();
    assert_eq!(keys, ["boom1-drained", "boom1-undrained", "n2-drained", "n2-undrained"]);
}

#[test]
fn resolutions_and_item_rollbacks_replay_from_the_journal() {
    let record = |line: usize, fields: Value| Record { line, fields: object(fields) };
    let records = vec![
        record(0, json!({"kind": "step_succeeded", "step": "each[a].drain", "write": true})),
        record(1, json!({"kind": "step_succeeded", "step": "each[a].health", "write": false})),
        record(2, json!({"kind": "step_succeeded", "step": "each[b].drain", "write": true})),
        record(3, json!({"kind": "item_rollback_started", "item": "each[a]", "steps": ["each[a].drain"]})),
        record(4, json!({"kind": "undo_started", "step": "each[a].drain"})),
        record(5, json!({"kind": "step_started", "step": "w"})),
    ];
    let prior = Prior::from_records(&records);
    assert!(!prior.done.contains_key("each[a].health"), "a read after the item's undone write runs again");
    assert!(prior.done.contains_key("each[b].drain"), "other items are not touched");
    assert!(prior.undo_in_doubt.contains("each[a].drain") && prior.in_doubt.contains("w"));
    let mut resolved = records.clone();
    resolved.push(record(6, json!({"kind": "resolved", "step": "each[a].drain", "how": "rerun"})));
    resolved.push(record(7, json!({"kind": "resolved", "step": "w", "how": "done"})));
    let prior = Prior::from_records(&resolved);
    assert!(prior.undo_in_doubt.is_empty() && prior.in_doubt.is_empty());
    assert!(!prior.done.contains_key("each[a].drain"), "rerun: the undo took effect");
    assert!(prior.done.get("w").is_some_and(|w| w.undo_unknown.is_some()), "done by hand: its undo is unknown");
}

#[test]
fn outputs_are_published_after_finally_on_failure_too_and_one_that_cannot_be_evaluated_is_left_out() {
    let outcome = run(r#"
runsheet: 1
name: outputs
steps:
  - {id: a, action: t.put, with: {key: a, value: one}}
  - {id: b, action: t.flaky, with: {fail_times: 5}}
  - {id: c, action: t.put, with: {key: c, value: three}}
finally:
  - {id: f, action: t.put, with: {key: f, value: last}}
outputs:
  first: "{{ steps.a.outputs.value }}"
  last: "{{ steps.f.outputs.value }}"
  third: "{{ steps.c.outputs.value }}"
  list: ["{{ steps.a.outputs.value }}", 2]
"#);
    assert_eq!(outcome.result.outcome, super::Outcome::RolledBack, "{:?}", described(&outcome.summary));
    let outputs = &outcome.result.outputs;
    let written = |step: &str| {
        let found = outcome.summary.steps.iter().find(|s| s.id == step);
        found.map(|s| s.outputs["value"].clone()).unwrap_or_default()
    };
    assert!(written("a").as_str().is_some_and(|v| v.contains("one")), "{:?}", written("a"));
    assert_eq!(outputs.get("first"), Some(&written("a")));
    assert!(outputs.get("last").and_then(|v| v.as_str()).is_some_and(|v| v.contains("last")), "{outputs:?}");
    assert_eq!(outputs.get("list"), Some(&serde_json::json!([written("a"), 2])));
    assert!(!outputs.contains_key("third"), "{outputs:?}");
    assert_eq!(&outcome.summary.outputs, outputs, "the run_finished event carries them");
    assert!(
        outcome.summary.notices.iter().any(|n| n.starts_with("output `third` was not published")),
        "{:?}",
        outcome.summary.notices
    );
}
