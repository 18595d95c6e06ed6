//! `kong.wait_healthy` ([`KongWaitHealthy`]): polls `GET /upstreams/{u}/health`
//! until every target with weight above 0 (or the one target named) is
//! `HEALTHY` or `HEALTHCHECKS_OFF`, within the argument's timeout and the step's.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use runsheet_engine::{Action, ActionError, ActionSpec, Applied, Effect, StepContext, TargetKind};
use serde_json::{Map, Value};

use super::client::{KongClient, segment};
use super::gateway::KongGateway;
use super::target::with_default_port;
use super::{FAMILY, KongWaitHealthyArguments};

/// Time between two reads of the upstream's health.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Health values that let traffic through (or say nobody checks).
const GOOD: &[&str] = &["HEALTHY", "HEALTHCHECKS_OFF"];

/// The `kong.wait_healthy` action.
#[derive(Debug, Clone)]
pub struct KongWaitHealthy {
    spec: ActionSpec,
}

impl KongWaitHealthy {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<KongWaitHealthyArguments>(
                "kong.wait_healthy",
                FAMILY,
                "Polls an upstream's health until its targets (or one target) are healthy.",
                Effect::READ,
            )
            .target(TargetKind::Gateway("kong"))
            .outputs(&["health", "weights", "elapsed_ms"]),
        }
    }
}

impl Default for KongWaitHealthy {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for KongWaitHealthy {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: KongWaitHealthyArguments =
            serde_json::from_value(arguments).map_err(|error| ActionError::InvalidArguments {
                action: "kong.wait_healthy",
                message: error.to_string(),
            })?;
        let gateway = KongGateway::for_step(context).await?;
        let limit = [Some(arguments.timeout.0), context.timeout]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(arguments.timeout.0);
        let target = arguments.target.as_deref().map(with_default_port);
        let started = Instant::now();
        loop {
            let health = read_health(&gateway.client, &arguments.upstream).await?;
            let waiting = not_yet_healthy(&health, target.as_deref())?;
            if waiting.is_empty() {
                return Ok(applied(&health, started.elapsed()));
            }
            if started.elapsed() + POLL_INTERVAL > limit {
                return Err(ActionError::failed(format!(
                    "upstream `{}` not healthy within {}s: {}",
                    arguments.upstream,
                    limit.as_secs(),
                    waiting.join(", ")
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// A target's weight and health as the health endpoint reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TargetHealth {
    weight: u64,
    health: String,
}

/// Every target's health, by `host:port`.
async fn read_health(
    client: &KongClient,
    upstream: &str,
) -> Result<BTreeMap<String, TargetHealth>, ActionError> {
    let path = format!("/upstreams/{}/health", segment(upstream));
    let entries = client.list(&path).await?;
    Ok(entries
        .iter()
        .filter_map(|entry| {
            let target = entry.get("target").and_then(Value::as_str)?;
            Some((
                target.to_owned(),
                TargetHealth {
                    weight: entry.get("weight").and_then(Value::as_u64).unwrap_or(0),
                    health: entry
                        .get("health")
                        .and_then(Value::as_str)
                        .unwrap_or("UNKNOWN")
                        .to_owned(),
                },
            ))
        })
        .collect())
}

/// The targets still waited for, as `host:port (HEALTH)`; an error when the named
/// target is not in the upstream.
fn not_yet_healthy(
    health: &BTreeMap<String, TargetHealth>,
    target: Option<&str>,
) -> Result<Vec<String>, ActionError> {
    let waited: Vec<(&String, &TargetHealth)> = match target {
        Some(name) => {
            let Some((key, found)) = health.get_key_value(name) else {
                return Err(ActionError::failed(format!(
                    "target `{name}` is not in the upstream (targets: {})",
                    health.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            };
            vec![(key, found)]
        }
        None => health.iter().filter(|(_, t)| t.weight > 0).collect(),
    };
    Ok(waited
        .into_iter()
        .filter(|(_, t)| !GOOD.contains(&t.health.as_str()))
        .map(|(name, t)| format!("{name} ({})", t.health))
        .collect())
}

/// The outputs: every target's health and weight, and the time waited.
fn applied(health: &BTreeMap<String, TargetHealth>, elapsed: Duration) -> Applied {
    let map: Map<String, Value> = health
        .iter()
        .map(|(name, t)| (name.clone(), Value::from(t.health.as_str())))
        .collect();
    let weights: Map<String, Value> = health
        .iter()
        .map(|(name, t)| (name.clone(), Value::from(t.weight)))
        .collect();
    let mut outputs = Map::new();
    outputs.insert("health".to_owned(), Value::Object(map));
    outputs.insert("weights".to_owned(), Value::Object(weights));
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    outputs.insert("elapsed_ms".to_owned(), Value::from(elapsed_ms));
    Applied {
        secrets: Vec::new(),
        outputs,
        undo: None,
        change: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(entries: &[(&str, u64, &str)]) -> BTreeMap<String, TargetHealth> {
        entries
            .iter()
            .map(|(name, weight, health)| {
                (
                    (*name).to_owned(),
                    TargetHealth {
                        weight: *weight,
                        health: (*health).to_owned(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn drained_targets_are_not_waited_for() -> Result<(), ActionError> {
        let state = health(&[
            ("a:8000", 100, "HEALTHY"),
            ("b:8000", 0, "UNHEALTHY"),
            ("c:8000", 10, "HEALTHCHECKS_OFF"),
        ]);
        assert!(not_yet_healthy(&state, None)?.is_empty());
        assert_eq!(
            not_yet_healthy(&state, Some("b:8000"))?,
            ["b:8000 (UNHEALTHY)"]
        );
        let sick = health(&[("a:8000", 100, "UNHEALTHY"), ("d:8000", 5, "DNS_ERROR")]);
        assert_eq!(
            not_yet_healthy(&sick, None)?,
            ["a:8000 (UNHEALTHY)", "d:8000 (DNS_ERROR)"]
        );
        assert!(not_yet_healthy(&sick, Some("z:8000")).is_err());
        Ok(())
    }

    #[test]
    fn outputs_give_every_target_its_health_and_weight() {
        let state = health(&[("a:8000", 100, "HEALTHY"), ("b:8000", 0, "HEALTHCHECKS_OFF")]);
        let outputs = applied(&state, Duration::from_millis(3)).outputs;
        assert_eq!(
            outputs["health"],
            serde_json::json!({"a:8000": "HEALTHY", "b:8000": "HEALTHCHECKS_OFF"})
        );
        assert_eq!(outputs["weights"], serde_json::json!({"a:8000": 100, "b:8000": 0}));
        assert_eq!(outputs["elapsed_ms"], serde_json::json!(3));
    }
}
