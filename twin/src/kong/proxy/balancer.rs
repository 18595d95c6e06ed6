//! Where a service's traffic goes (reference §7.1, §7.7, §7.8, §8): its upstream's
//! targets, balanced by weight, or its own host and port. Main types: [`Destination`]
//! and [`Balancer`] (weighted round-robin state per upstream).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use crate::kong::entities::checks::split_host_port;
use crate::kong::health::{self, TargetHealth};
use crate::kong::store::text;
use crate::kong::store::{Entity, ListFilter, Store};

/// The collection whose entities a service `host` may name.
const UPSTREAMS: &str = "upstreams";

/// Kong's port for a target given without one.
const DEFAULT_TARGET_PORT: u16 = 8000;

/// One target the balancer may pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    /// The target's id.
    pub(crate) id: String,
    /// Host (name or IP, without brackets).
    pub(crate) host: String,
    /// Port.
    pub(crate) port: u16,
    /// Weight, above 0.
    pub(crate) weight: i64,
}

/// Where requests for a service go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// The service host names an upstream: balance over its live targets.
    Upstream {
        /// The upstream's id (keys the round-robin state).
        id: String,
        /// Targets with weight above 0 that are not unhealthy, in id order.
        peers: Vec<Peer>,
        /// The upstream's `host_header`, sent as `Host` unless the route preserves it.
        host_header: Option<String>,
    },
    /// The service's own host and port.
    Direct {
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
}

/// The upstream has no target to send to: Kong's 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoPeer;

/// The destination of `service`: its upstream (when `host` names one) or itself.
pub(crate) fn destination(store: &Store, service: &Entity) -> Result<Destination, NoPeer> {
    let host = text(service, "host");
    let port = service
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|port| u16::try_from(port).ok())
        .unwrap_or(80);
    let upstream = store.find(UPSTREAMS, host).filter(|_| !host.is_empty());
    let Some(upstream) = upstream else {
        return Ok(Destination::Direct {
            host: host.to_owned(),
            port,
        });
    };
    let peers = live_peers(store, upstream)?;
    Ok(Destination::Upstream {
        id: text(upstream, "id").to_owned(),
        peers,
        host_header: upstream
            .get("host_header")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The targets of `upstream` that take traffic; [`NoPeer`] when none does or the
/// balancer is unhealthy (below its `healthchecks.threshold`).
fn live_peers(store: &Store, upstream: &Entity) -> Result<Vec<Peer>, NoPeer> {
    let Some(hook) = store
        .registry()
        .get(UPSTREAMS)
        .and_then(|schema| schema.health)
    else {
        return Err(NoPeer);
    };
    let field = store
        .registry()
        .get(hook.child)
        .and_then(|schema| {
            schema
                .foreign_keys()
                .find(|(_, foreign)| foreign.collection == UPSTREAMS)
                .map(|(field, _)| field.name)
        })
        .unwrap_or_default();
    let checks_enabled = (hook.enabled)(upstream);
    let filter = ListFilter {
        parent: Some((field, text(upstream, "id"))),
        ..ListFilter::default()
    };
    let targets = store.list(hook.child, filter, usize::MAX).entities;
    let mut total = 0;
    let mut available = 0;
    let mut peers = Vec::new();
    for target in &targets {
        let health = TargetHealth::of(store, checks_enabled, target);
        total += health.weight;
        available += health.available_weight();
        if !health.takes_traffic() {
            continue;
        }
        let Ok((host, port)) = split_host_port(text(target, "target")) else {
            continue;
        };
        peers.push(Peer {
            id: text(target, "id").to_owned(),
            host: host.to_owned(),
            port: port.unwrap_or(DEFAULT_TARGET_PORT),
            weight: health.weight,
        });
    }
    let threshold = (hook.threshold)(upstream);
    if peers.is_empty() || !health::balancer_healthy(total, available, threshold) {
        return Err(NoPeer);
    }
    Ok(peers)
}

/// Smooth weighted round-robin state, per upstream: each pick adds every peer's weight
/// to its counter and takes the highest, which then pays back the total. Over any
/// window of `sum(weights)` picks each peer is chosen exactly `weight` times.
#[derive(Debug, Default)]
pub(crate) struct Balancer {
    /// Upstream id → target id → counter.
    counters: Mutex<HashMap<String, HashMap<String, i64>>>,
}

impl Balancer {
    /// The next peer of `upstream` among `peers`, avoiding the `tried` ones while others remain.
    pub(crate) fn pick<'a>(
        &self,
        upstream: &str,
        peers: &'a [Peer],
        tried: &[String],
    ) -> Option<&'a Peer> {
        let untried: Vec<&Peer> = peers
            .iter()
            .filter(|peer| !tried.contains(&peer.id))
            .collect();
        let eligible = if untried.is_empty() {
            peers.iter().collect()
        } else {
            untried
        };
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let counters = counters.entry(upstream.to_owned()).or_default();
        counters.retain(|id, _| peers.iter().any(|peer| &peer.id == id));
        let total: i64 = eligible.iter().map(|peer| peer.weight).sum();
        let mut best: Option<(&Peer, i64)> = None;
        for peer in eligible {
            let counter = counters.entry(peer.id.clone()).or_default();
            *counter += peer.weight;
            if best.is_none_or(|(_, highest)| *counter > highest) {
                best = Some((peer, *counter));
            }
        }
        let (peer, _) = best?;
        if let Some(counter) = counters.get_mut(&peer.id) {
            *counter -= total;
        }
        Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: &str, weight: i64) -> Peer {
        Peer {
            id: id.to_owned(),
            host: "127.0.0.1".to_owned(),
            port: 1,
            weight,
        }
    }

    #[test]
    fn picks_follow_weights_exactly_over_a_cycle() {
        let balancer = Balancer::default();
        let peers = [peer("a", 3), peer("b", 1)];
        let picks: Vec<String> = (0..8)
            .filter_map(|_| balancer.pick("u", &peers, &[]).map(|peer| peer.id.clone()))
            .collect();
        assert_eq!(picks.iter().filter(|id| *id == "a").count(), 6);
        assert_eq!(picks.iter().filter(|id| *id == "b").count(), 2);
        // Smooth: the light peer is not starved for a whole cycle.
        assert!(picks[..4].contains(&"b".to_owned()));
    }

    #[test]
    fn retries_avoid_tried_peers_while_others_remain() {
        let balancer = Balancer::default();
        let peers = [peer("a", 100), peer("b", 1)];
        let tried = ["a".to_owned()];
        assert_eq!(
            balancer.pick("u", &peers, &tried).map(|p| p.id.as_str()),
            Some("b")
        );
        let all = ["a".to_owned(), "b".to_owned()];
        assert!(balancer.pick("u", &peers, &all).is_some());
        assert_eq!(balancer.pick("u", &[], &[]), None);
    }
}
