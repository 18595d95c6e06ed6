//! `kong.diff` ([`KongDiff`]): what `kong.sync` with the same arguments would change,
//! as a read step of its own, so that a run shows the diff (and an approval gate can
//! quote its counts) before the sync writes anything. It never writes.

use runsheet_engine::{Action, ActionError, ActionSpec, Applied, Effect, StepContext, TargetKind};
use serde_json::Value;

use super::sync::Wanted;
use crate::kong::gateway::KongGateway;
use crate::kong::{FAMILY, KongSyncArguments};

/// The outputs of `kong.diff`.
pub const OUTPUTS: &[&str] = &[
    "created",
    "updated",
    "deleted",
    "snapshot_sha256",
    "summary",
    "in_sync",
];

/// The `kong.diff` action.
#[derive(Debug, Clone)]
pub struct KongDiff {
    spec: ActionSpec,
}

impl KongDiff {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<KongSyncArguments>(
                "kong.diff",
                FAMILY,
                "Shows what kong.sync with the same arguments would create, update and delete; never writes.",
                Effect::READ,
            )
            .target(TargetKind::Gateway("kong"))
            .outputs(OUTPUTS),
        }
    }
}

impl Default for KongDiff {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for KongDiff {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let wanted = Wanted::read(context, arguments).await?;
        let gateway = KongGateway::for_step(context).await?;
        let (current, desired, plan) = wanted.plan(&gateway.client).await?;
        let change = plan.change(&wanted.what(), &current, &desired);
        let mut outputs = wanted.outputs(&plan);
        outputs.insert("summary".to_owned(), Value::from(change.summary.clone()));
        outputs.insert("in_sync".to_owned(), Value::from(plan.is_empty()));
        Ok(Applied {
            outputs,
            undo: None,
            change: Some(change),
            secrets: Vec::new(),
        })
    }
}
