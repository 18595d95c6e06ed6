//! `kong.status` ([`KongStatus`]): the node's version, edition and role from
//! `GET /`, database reachability from `GET /status`, and readiness from the
//! Status API's `/status/ready` (Kong 3.3 and later, when the environment gives
//! the gateway's `status_url`).

use runsheet_engine::{Action, ActionError, ActionSpec, Applied, Effect, StepContext, TargetKind};
use serde_json::{Map, Value};

use super::FAMILY;
use super::gateway::KongGateway;
use crate::arguments::NoArguments;
use crate::web::WebRequest;

/// The outputs of `kong.status`.
pub const OUTPUTS: &[&str] = &["version", "edition", "role", "database_reachable", "ready"];

/// The `kong.status` action: reads the node's identity and health; never writes.
#[derive(Debug, Clone)]
pub struct KongStatus {
    spec: ActionSpec,
}

impl KongStatus {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<NoArguments>(
                "kong.status",
                FAMILY,
                "Reports the node's version, edition, role, database reachability and readiness.",
                Effect::READ,
            )
            .target(TargetKind::Gateway("kong"))
            .outputs(OUTPUTS),
        }
    }
}

impl Default for KongStatus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for KongStatus {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        serde_json::from_value::<NoArguments>(arguments).map_err(|error| {
            ActionError::InvalidArguments {
                action: "kong.status",
                message: error.to_string(),
            }
        })?;
        let gateway = KongGateway::for_step(context).await?;
        let node = gateway.client.node().await?;
        let status = gateway.client.status().await?;
        // DB-less nodes and data planes have no `database` key: nothing to reach.
        let database_reachable = status
            .get("database")
            .and_then(|database| database.get("reachable"))
            .cloned()
            .unwrap_or(Value::Null);
        let ready = if node.version.has_status_ready() {
            ready(&gateway).await?
        } else {
            Value::Null
        };
        let mut outputs = Map::new();
        outputs.insert("version".to_owned(), Value::from(node.version_text));
        outputs.insert("edition".to_owned(), Value::from(node.edition));
        outputs.insert("role".to_owned(), Value::from(node.role));
        outputs.insert("database_reachable".to_owned(), database_reachable);
        outputs.insert("ready".to_owned(), ready);
        Ok(Applied {
            secrets: Vec::new(),
            outputs,
            undo: None,
            change: None,
        })
    }
}

/// `GET <status_url>/status/ready`: true on 200, false on 503; null without a Status API URL.
async fn ready(gateway: &KongGateway) -> Result<Value, ActionError> {
    let Some(status_url) = &gateway.status_url else {
        return Ok(Value::Null);
    };
    let request = WebRequest::get(&format!("{status_url}/status/ready"))?;
    let response = gateway.status_web.send(request).await?;
    match response.status {
        200 => Ok(Value::Bool(true)),
        503 => Ok(Value::Bool(false)),
        other => Err(ActionError::failed(format!(
            "{} answered {other}, expected 200 or 503",
            response.request
        ))),
    }
}
