//! Run summaries for report tests, folded from real events with fixed times.

use serde_json::json;

use crate::action::Change;
use crate::run::event::{Event, EventKind, Outcome, StopReason};
use crate::run::summary::{RunFacts, RunSummary};

pub(super) const PLAYBOOK: &str = "kong-route-update";
pub(super) const SHA256: &str = "3f4c9a1e0b7d5c2f8e6a4b1d9c0e7f2a5b8d1c4e7f0a3b6c9d2e5f8a1b4c7d0e";
pub(super) const RUN_ID: &str = "run-20260314T220000Z-7f3a";

pub(super) const ROUTE_BEFORE: &str =
    "name: r1\npaths:\n- /v1\nstrip_path: true\nservice: billing\nprotocols:\n- https\n";
pub(super) const ROUTE_AFTER: &str =
    "name: r1\npaths:\n- /v1\n- /v2\nstrip_path: true\nservice: billing\nprotocols:\n- https\n";

/// `2026-03-14T22:MM:SS.000Z` for a second count from the start of the run.
pub(super) fn at(second: u32) -> String {
    format!("2026-03-14T22:{:02}:{:02}.000Z", second / 60, second % 60)
}

pub(super) fn facts() -> RunFacts {
    RunFacts {
        run: RUN_ID.into(),
        playbook: PLAYBOOK.into(),
        playbook_path: "playbooks/kong-route-update.yaml".into(),
        playbook_sha256: SHA256.into(),
        environment: Some("prod".into()),
        change_id: Some("CHG0031234".into()),
        window: Some("2026-03-14T22:00:00Z/2026-03-15T00:00:00Z".into()),
        operator: "alice".into(),
        dry_run: false,
        ci: None,
    }
}

pub(super) fn fold(facts: RunFacts, events: &[Event]) -> RunSummary {
    let mut summary = RunSummary::new(facts);
    for event in events {
        summary.apply(event);
    }
    summary
}

pub(super) fn event(second: u32, kind: EventKind) -> Event {
    Event {
        at: at(second),
        kind,
    }
}

pub(super) fn started(second: u32, resumed: bool) -> Event {
    let facts = facts();
    event(
        second,
        EventKind::RunStarted {
            run: facts.run,
            playbook: facts.playbook,
            environment: facts.environment,
            dry_run: false,
            resumed,
            rollback: false,
            change_id: facts.change_id,
            window: facts.window,
            steps: 5,
        },
    )
}

pub(super) fn step_started(second: u32, step: &str, action: &str, write: bool) -> Event {
    event(
        second,
        EventKind::StepStarted {
            step: step.into(),
            action: action.into(),
            write,
            attempt: 1,
        },
    )
}

pub(super) fn succeeded(
    second: u32,
    step: &str,
    action: &str,
    elapsed_ms: u64,
    change: Option<Change>,
) -> Event {
    event(
        second,
        EventKind::StepSucceeded {
            step: step.into(),
            action: action.into(),
            write: change.is_some(),
            elapsed_ms,
            attempts: 1,
            outputs: json!({}),
            change,
        },
    )
}

pub(super) fn failed(second: u32, step: &str, action: &str, error: &str, tolerated: bool) -> Event {
    event(
        second,
        EventKind::StepFailed {
            step: step.into(),
            action: action.into(),
            error: error.into(),
            elapsed_ms: 2_400,
            attempts: 3,
            tolerated,
        },
    )
}

pub(super) fn skipped(second: u32, step: &str, reason: &str) -> Event {
    event(
        second,
        EventKind::StepSkipped {
            step: step.into(),
            reason: reason.into(),
        },
    )
}

pub(super) fn finished(second: u32, outcome: Outcome, attention: &[&str]) -> Event {
    event(
        second,
        EventKind::RunFinished {
            outcome,
            elapsed_ms: u64::from(second) * 1_000,
            attention: attention.iter().map(|item| (*item).to_owned()).collect(),
            outputs: serde_json::Map::new(),
        },
    )
}

pub(super) fn route_change() -> Change {
    Change::between(
        "update route r1 (paths)",
        Some(ROUTE_BEFORE.into()),
        ROUTE_AFTER.into(),
    )
}

fn upstream_change() -> Change {
    Change::between(
        "update upstream billing (slots)",
        Some("name: billing\nslots: 1000\n".into()),
        "name: billing\nslots: 2000\n".into(),
    )
}

/// Snapshot, a write with a diff and a retry, a skipped step, a notice; succeeded.
pub(super) fn successful() -> RunSummary {
    let mut update = succeeded(4, "update-route", "kong.route", 1_500, Some(route_change()));
    if let EventKind::StepSucceeded {
        attempts, outputs, ..
    } = &mut update.kind
    {
        *attempts = 2;
        *outputs = json!({ "route_id": "r1" });
    }
    fold(
        facts(),
        &[
            started(0, false),
            event(
                0,
                EventKind::Notice {
                    message: "window end taken from --window-end".into(),
                },
            ),
            step_started(1, "snapshot", "kong.snapshot", false),
            succeeded(3, "snapshot", "kong.snapshot", 2_100, None),
            step_started(3, "update-route", "kong.route", true),
            update,
            skipped(4, "smoke-extra", "`when` was false"),
            finished(5, Outcome::Succeeded, &[]),
        ],
    )
}

/// Two writes, a failed step, a rollback whose second undo fails; needs attention.
pub(super) fn rolled_back_with_failed_undo() -> RunSummary {
    fold(
        facts(),
        &[
            started(0, false),
            succeeded(2, "snapshot", "kong.snapshot", 2_000, None),
            succeeded(
                3,
                "update-upstream",
                "kong.upstream",
                900,
                Some(upstream_change()),
            ),
            succeeded(4, "update-route", "kong.route", 1_100, Some(route_change())),
            failed(
                7,
                "patch-plugin",
                "kong.plugin",
                "HTTP 409 conflict on /plugins/p1\nrequest id 5b1c",
                false,
            ),
            skipped(7, "smoke", "skipped after a failure"),
            event(
                7,
                EventKind::Stopping {
                    reason: StopReason::Failure,
                    message: "step `patch-plugin` failed".into(),
                },
            ),
            event(
                8,
                EventKind::RollbackStarted {
                    policy: "checkpoint".into(),
                    checkpoint: Some("snapshot".into()),
                    steps: vec!["update-route".into(), "update-upstream".into()],
                },
            ),
            event(
                9,
                EventKind::StepUndone {
                    step: "update-route".into(),
                    how: "undo record".into(),
                },
            ),
            event(
                10,
                EventKind::UndoFailed {
                    step: "update-upstream".into(),
                    error: "HTTP 503 from admin API: <html>Service & Co</html> | retry later"
                        .into(),
                },
            ),
            finished(
                11,
                Outcome::NeedsAttention,
                &["update-upstream: undo failed, restore slots 1000 by hand"],
            ),
        ],
    )
}

/// A failed step whose rollback completed.
pub(super) fn rolled_back() -> RunSummary {
    fold(
        facts(),
        &[
            started(0, false),
            succeeded(2, "update-route", "kong.route", 1_100, Some(route_change())),
            failed(5, "patch-plugin", "kong.plugin", "HTTP 409 conflict", false),
            event(
                6,
                EventKind::RollbackStarted {
                    policy: "rollback".into(),
                    checkpoint: None,
                    steps: vec!["update-route".into()],
                },
            ),
            event(
                7,
                EventKind::StepUndone {
                    step: "update-route".into(),
                    how: "undo record".into(),
                },
            ),
            finished(8, Outcome::RolledBack, &[]),
        ],
    )
}

/// An answered gate, a write, then a wait at a second gate.
pub(super) fn paused_with_approval() -> RunSummary {
    fold(
        facts(),
        &[
            started(0, false),
            event(
                30,
                EventKind::Approval {
                    gate: "cab".into(),
                    by: "bob".into(),
                    approved: true,
                },
            ),
            succeeded(30, "cab-approval", "core.approval", 30_000, None),
            succeeded(
                32,
                "update-route",
                "kong.route",
                1_200,
                Some(route_change()),
            ),
            event(
                33,
                EventKind::Paused {
                    step: "go-live".into(),
                    gate: "go-live".into(),
                    prompt: "switch traffic to /v2?".into(),
                },
            ),
            finished(33, Outcome::Paused, &[]),
        ],
    )
}

/// A resumed run: a restored step, then a tolerated failure; succeeded.
pub(super) fn tolerated_failure() -> RunSummary {
    fold(
        facts(),
        &[
            started(0, true),
            event(
                0,
                EventKind::StepRestored {
                    step: "snapshot".into(),
                },
            ),
            failed(
                3,
                "warm-cache",
                "http.request",
                "HTTP 502 from cache warmer",
                true,
            ),
            succeeded(4, "update-route", "kong.route", 1_000, Some(route_change())),
            finished(5, Outcome::Succeeded, &[]),
        ],
    )
}

/// A signal stopped the run; no step failed.
pub(super) fn interrupted() -> RunSummary {
    fold(
        facts(),
        &[
            started(0, false),
            succeeded(2, "snapshot", "kong.snapshot", 2_000, None),
            event(
                3,
                EventKind::Stopping {
                    reason: StopReason::Interrupt,
                    message: "SIGTERM".into(),
                },
            ),
            finished(3, Outcome::Interrupted, &[]),
        ],
    )
}

/// A dry run that planned one write.
pub(super) fn planned() -> RunSummary {
    let mut facts = facts();
    facts.dry_run = true;
    fold(
        facts,
        &[
            started(0, false),
            event(
                1,
                EventKind::StepPlanned {
                    step: "update-route".into(),
                    action: "kong.route".into(),
                    change: route_change(),
                },
            ),
            finished(1, Outcome::Planned, &[]),
        ],
    )
}
