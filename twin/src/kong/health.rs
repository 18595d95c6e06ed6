//! Balancer health of an upstream's targets (reference §8), shared by
//! `GET /upstreams/{u}/health` and the proxy's balancer. Main type: [`TargetHealth`].

use serde_json::Value;

use super::store::{Entity, Store};

/// One target as the balancer sees it: its weight and its (forced) health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TargetHealth {
    /// The target's `weight` (0 takes no traffic).
    pub(crate) weight: i64,
    /// Whether health checking is enabled for the upstream.
    pub(crate) checks_enabled: bool,
    /// Whether the target is healthy (healthy unless forced unhealthy).
    pub(crate) healthy: bool,
}

impl TargetHealth {
    /// The health of `target` in an upstream whose health checking is `checks_enabled`.
    pub(crate) fn of(store: &Store, checks_enabled: bool, target: &Entity) -> Self {
        let id = target.get("id").and_then(Value::as_str).unwrap_or_default();
        Self {
            weight: target
                .get("weight")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            checks_enabled,
            healthy: store.forced_health(id).unwrap_or(true),
        }
    }

    /// Whether the target's weight counts as available: forced health only has an effect
    /// when health checks are enabled (reference §8.2).
    pub(crate) fn counts(&self) -> bool {
        !self.checks_enabled || self.healthy
    }

    /// Whether the balancer may send traffic to the target.
    pub(crate) fn takes_traffic(&self) -> bool {
        self.weight > 0 && self.counts()
    }

    /// The weight counted as available.
    pub(crate) fn available_weight(&self) -> i64 {
        if self.counts() { self.weight } else { 0 }
    }

    /// The address's `health`: `HEALTHCHECKS_OFF`, `HEALTHY` or `UNHEALTHY`.
    pub(crate) fn address_health(&self) -> &'static str {
        match (self.checks_enabled, self.healthy) {
            (false, _) => "HEALTHCHECKS_OFF",
            (true, true) => "HEALTHY",
            (true, false) => "UNHEALTHY",
        }
    }

    /// The target's `health`: a weight-0 target reports `HEALTHCHECKS_OFF`.
    pub(crate) fn target_health(&self) -> &'static str {
        if self.weight == 0 {
            "HEALTHCHECKS_OFF"
        } else {
            self.address_health()
        }
    }
}

/// Whether a balancer is healthy: available weight over total weight, as a percentage,
/// above the upstream's `threshold` (and some weight at all).
pub(crate) fn balancer_healthy(total: i64, available: i64, threshold: f64) -> bool {
    total > 0 && (available as f64) / (total as f64) * 100.0 > threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_health_counts_only_with_health_checks() {
        let unhealthy = |checks_enabled| TargetHealth {
            weight: 10,
            checks_enabled,
            healthy: false,
        };
        assert!(unhealthy(false).takes_traffic());
        assert_eq!(unhealthy(false).address_health(), "HEALTHCHECKS_OFF");
        assert!(!unhealthy(true).takes_traffic());
        assert_eq!(unhealthy(true).available_weight(), 0);
        assert_eq!(unhealthy(true).target_health(), "UNHEALTHY");
        let drained = TargetHealth {
            weight: 0,
            checks_enabled: true,
            healthy: true,
        };
        assert!(!drained.takes_traffic());
        assert_eq!(drained.target_health(), "HEALTHCHECKS_OFF");
    }

    #[test]
    fn balancer_needs_weight_above_the_threshold() {
        assert!(!balancer_healthy(0, 0, 0.0));
        assert!(!balancer_healthy(100, 0, 0.0));
        assert!(balancer_healthy(100, 1, 0.0));
        assert!(!balancer_healthy(100, 50, 50.0));
        assert!(balancer_healthy(100, 51, 50.0));
    }
}
