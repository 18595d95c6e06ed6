//! `layer7.ping` ([`Layer7Ping`]): `GET /ssg/ping` with the credentials, then Graphman's
//! `nodeInfo` and `clusterInfo` (reference §3.1, §3.3): the node, its cluster, version,
//! patches and boot time. A node that is not operational, refuses the connection or
//! refuses the credentials fails the step, so `retries`/`until` can wait for a restart.
//! A gateway without Graphman (404 on `/graphman`) still pings, with version `unknown`.

use runsheet_engine::{Action, ActionError, ActionSpec, Applied, Effect, StepContext, TargetKind};
use serde_json::{Map, Value, json};

use super::FAMILY;
use super::error::Layer7Error;
use super::gateway::Layer7Gateway;
use super::graphman::types::{ClusterInfo, NodeInfo};
use crate::arguments::NoArguments;
use crate::web::error_chain;

/// The action's name.
pub const NAME: &str = "layer7.ping";

/// The outputs of `layer7.ping`.
pub const OUTPUTS: &[&str] = &[
    "status",
    "node",
    "cluster",
    "version",
    "patches",
    "boot_time",
    "boot_time_ms",
    "note",
];

/// What `version` says when the gateway does not tell.
pub const UNKNOWN: &str = "unknown";

/// The `layer7.ping` action: reads the node's health and identity; never writes.
#[derive(Debug, Clone)]
pub struct Layer7Ping {
    /// The catalogue entry.
    spec: ActionSpec,
}

impl Layer7Ping {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<NoArguments>(
                NAME,
                FAMILY,
                "Pings the gateway and reports node and cluster information.",
                Effect::READ,
            )
            .target(TargetKind::Gateway("layer7"))
            .outputs(OUTPUTS),
        }
    }
}

impl Default for Layer7Ping {
    fn default() -> Self {
        Self::new()
    }
}

/// What Graphman said of the node and its cluster, or why it could not.
enum Information {
    /// `nodeInfo` and `clusterInfo`.
    Known(Box<NodeInfo>, ClusterInfo),
    /// `/graphman` answered 404: a gateway without Graphman.
    NoGraphman(String),
}

/// `gateway `l7`: <what went wrong>`.
fn failure(gateway: &Layer7Gateway, error: Layer7Error) -> ActionError {
    match error {
        Layer7Error::Web(crate::web::WebError::DryRunWrite { what }) => {
            ActionError::DryRunWrite { what }
        }
        other => ActionError::failed(format!(
            "gateway `{}`: {}",
            gateway.name,
            error_chain(&other)
        )),
    }
}

/// `nodeInfo` and `clusterInfo`, or the note of a gateway without Graphman.
async fn information(gateway: &Layer7Gateway) -> Result<Information, Layer7Error> {
    let node = match gateway.graphman.node_info().await {
        Ok(node) => node,
        Err(Layer7Error::Rejected { status: 404, .. }) => {
            return Ok(Information::NoGraphman(format!(
                "{} answered 404: the gateway serves no Graphman (10.1 and later have it), so version, patches and cluster are unknown",
                gateway.graphman.url()
            )));
        }
        Err(error) => return Err(error),
    };
    let cluster = gateway.graphman.cluster_info().await?;
    Ok(Information::Known(Box::new(node), cluster))
}

/// A boot time as the gateway wrote it; milliseconds since the epoch become RFC 3339.
fn boot_time(value: Option<&Value>) -> Value {
    match value {
        Some(Value::Number(number)) => number
            .as_i64()
            .and_then(|millis| jiff::Timestamp::from_millisecond(millis).ok())
            .map_or_else(
                || Value::Number(number.clone()),
                |time| json!(time.to_string()),
            ),
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

/// A boot time in milliseconds since the epoch (as Graphman writes it, or parsed from
/// RFC 3339), so that playbooks compare boot times as numbers.
fn boot_time_ms(value: Option<&Value>) -> Value {
    match value {
        Some(Value::Number(number)) => number.as_i64().map_or(Value::Null, Value::from),
        Some(Value::String(text)) => text
            .parse::<jiff::Timestamp>()
            .map_or(Value::Null, |time| Value::from(time.as_millisecond())),
        _ => Value::Null,
    }
}

/// The outputs of an up node.
fn outputs(information: Information) -> Map<String, Value> {
    let mut outputs = Map::new();
    outputs.insert("status".to_owned(), json!("up"));
    match information {
        Information::Known(node, cluster) => {
            let version = node
                .product_version
                .as_ref()
                .and_then(|version| version.formal_string.clone())
                .unwrap_or_else(|| UNKNOWN.to_owned());
            outputs.insert(
                "node".to_owned(),
                json!({"name": node.name, "id": node.node_id, "status": node.node_status}),
            );
            let names: Vec<&str> = cluster
                .nodes
                .iter()
                .map(|node| node.name.as_str())
                .collect();
            outputs.insert(
                "cluster".to_owned(),
                json!({"name": cluster.name, "node_count": names.len(), "nodes": names}),
            );
            outputs.insert("version".to_owned(), json!(version));
            let patches: Vec<&str> = node
                .patches
                .iter()
                .map(|patch| patch.patch_id.as_str())
                .collect();
            outputs.insert("patches".to_owned(), json!(patches));
            outputs.insert("boot_time".to_owned(), boot_time(node.boot_time.as_ref()));
            outputs.insert(
                "boot_time_ms".to_owned(),
                boot_time_ms(node.boot_time.as_ref()),
            );
            outputs.insert("note".to_owned(), Value::Null);
        }
        Information::NoGraphman(note) => {
            outputs.insert("node".to_owned(), Value::Null);
            outputs.insert("cluster".to_owned(), Value::Null);
            outputs.insert("version".to_owned(), json!(UNKNOWN));
            outputs.insert("patches".to_owned(), json!([]));
            outputs.insert("boot_time".to_owned(), Value::Null);
            outputs.insert("boot_time_ms".to_owned(), Value::Null);
            outputs.insert("note".to_owned(), json!(note));
        }
    }
    outputs
}

#[async_trait::async_trait]
impl Action for Layer7Ping {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        serde_json::from_value::<NoArguments>(arguments).map_err(|error| {
            ActionError::InvalidArguments {
                action: NAME,
                message: error.to_string(),
            }
        })?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let ping = gateway
            .ping
            .ping()
            .await
            .and_then(|ping| ping.require_up())
            .map_err(|error| failure(&gateway, error))?;
        let information = information(&gateway)
            .await
            .map_err(|error| failure(&gateway, error))?;
        let outputs = outputs(information);
        let summary = format!(
            "gateway `{}` is up ({} in {} ms), version {}",
            gateway.name,
            ping.request,
            ping.elapsed.as_millis(),
            outputs["version"].as_str().unwrap_or(UNKNOWN)
        );
        Ok(Applied {
            outputs,
            undo: None,
            change: Some(runsheet_engine::Change::none(summary)),
            secrets: Vec::new(),
        })
    }
}

#[cfg(test)]
#[path = "ping_action_tests.rs"]
mod tests;
