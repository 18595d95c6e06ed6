//! What one step leaves for `runsheet explain`: the target it ran on, its
//! arguments (masked) and each attempt with its times and error, journaled with
//! the record of how the step ended.

use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::lock;
use crate::action::StepTarget;
use crate::model::Transport;
use crate::run::event::now_rfc3339;

/// The trace of one step instance, filled in as it runs.
#[derive(Debug, Default)]
pub(super) struct StepTrace {
    /// What is known so far.
    inner: Mutex<TraceInner>,
}

/// The fields of a trace.
#[derive(Debug, Default)]
struct TraceInner {
    /// The host or gateway, in words.
    target: Option<String>,
    /// The rendered arguments, masked.
    arguments: Option<Value>,
    /// Whether it writes, once known.
    write: Option<bool>,
    /// One object per attempt, in order.
    attempts: Vec<Value>,
}

/// An attempt under way: when it began.
pub(super) struct AttemptClock {
    /// Wall-clock start, RFC 3339.
    started_at: String,
    /// Monotonic start.
    started: Instant,
}

impl StepTrace {
    /// Notes the host or gateway the step runs on.
    pub(super) fn set_target(&self, target: &StepTarget) {
        lock(&self.inner).target = describe_target(target);
    }

    /// Notes the step's rendered arguments (already masked).
    pub(super) fn set_arguments(&self, arguments: Value) {
        lock(&self.inner).arguments = Some(arguments);
    }

    /// Notes whether the step writes.
    pub(super) fn set_write(&self, write: bool) {
        lock(&self.inner).write = Some(write);
    }

    /// Starts timing an attempt.
    pub(super) fn attempt_started(&self) -> AttemptClock {
        AttemptClock {
            started_at: now_rfc3339(),
            started: Instant::now(),
        }
    }

    /// Records an attempt as it ended; `error` (masked) when it failed.
    pub(super) fn attempt_ended(&self, clock: AttemptClock, error: Option<String>) {
        let mut inner = lock(&self.inner);
        let number = inner.attempts.len() + 1;
        let mut attempt = json!({
            "attempt": number,
            "started_at": clock.started_at,
            "ended_at": now_rfc3339(),
            "elapsed_ms": clock.started.elapsed().as_millis() as u64,
        });
        if let (Some(error), Value::Object(map)) = (error, &mut attempt) {
            map.insert("error".into(), Value::String(error));
        }
        inner.attempts.push(attempt);
    }

    /// The journal fields the trace adds: `target`, `attempts` and, with
    /// `arguments`, the arguments.
    pub(super) fn fields(&self, arguments: bool) -> Map<String, Value> {
        let inner = lock(&self.inner);
        let mut fields = Map::new();
        if let Some(target) = &inner.target {
            fields.insert("target".into(), Value::String(target.clone()));
        }
        if let Some(write) = inner.write {
            fields.insert("write".into(), Value::Bool(write));
        }
        if arguments && let Some(value) = &inner.arguments {
            fields.insert("arguments".into(), value.clone());
        }
        if !inner.attempts.is_empty() {
            fields.insert("attempts".into(), Value::Array(inner.attempts.clone()));
        }
        fields
    }
}

/// A target in words (`host dp1 (kong@10.0.0.1:22)`, `gateway kong`), none for none.
fn describe_target(target: &StepTarget) -> Option<String> {
    match target {
        StepTarget::None => None,
        StepTarget::Gateway(name) => Some(format!("gateway {name}")),
        StepTarget::Host(host) => Some(match host.transport {
            Transport::Local => format!("host {} (local)", host.name),
            Transport::Ssh => {
                let user = host
                    .user
                    .as_deref()
                    .map(|u| format!("{u}@"))
                    .unwrap_or_default();
                format!("host {} ({user}{}:{})", host.name, host.address, host.port)
            }
        }),
    }
}

/// Adds `extra` to a JSON object.
pub(super) fn with_fields(mut record: Value, extra: Map<String, Value>) -> Value {
    if let Value::Object(map) = &mut record {
        map.extend(extra);
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_numbered_and_keep_their_errors() {
        let trace = StepTrace::default();
        trace.set_target(&StepTarget::Gateway("kong".into()));
        let first = trace.attempt_started();
        trace.attempt_ended(first, Some("500".into()));
        let second = trace.attempt_started();
        trace.attempt_ended(second, None);
        let fields = trace.fields(false);
        assert_eq!(fields["target"], "gateway kong");
        let attempts = fields["attempts"].as_array().cloned().unwrap_or_default();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0]["attempt"], 1);
        assert_eq!(attempts[0]["error"], "500");
        assert_eq!(attempts[1]["attempt"], 2);
        assert!(attempts[1].get("error").is_none());
        assert!(!fields.contains_key("arguments"));
    }
}
