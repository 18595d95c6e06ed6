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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kong::declarative::tests::{seed, step};
    use crate::kong::twin_tests::writes;
    use crate::kong::twin_tests::twin;
    use crate::test_support::TestResult;

    #[tokio::test]
    async fn shows_the_sync_plan_and_writes_nothing() -> TestResult {
        let twin = twin().await?;
        seed(&twin)?;
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("desired.yaml"),
            "_format_version: \"3.0\"\nservices:\n- name: billing\n  host: billing-v2.internal\n- name: search\n  url: http://search.internal:9200\n",
        )?;
        let live = step(&twin, false, dir.path());
        let arguments = json!({"state": "desired.yaml"});
        let applied = KongDiff::new().apply(&live, arguments.clone()).await?;
        assert_eq!(applied.outputs["created"], json!(1));
        assert_eq!(applied.outputs["updated"], json!(1));
        assert_eq!(applied.outputs["deleted"], json!(0));
        assert_eq!(applied.outputs["in_sync"], json!(false));
        assert_eq!(
            applied.outputs["summary"],
            json!("sync with desired.yaml: 1 to create, 1 to update, 0 to delete")
        );
        let change = applied.change.ok_or("no change")?;
        assert!(
            change
                .after
                .unwrap_or_default()
                .contains("host: billing-v2.internal"),
            "the diff shows the field"
        );
        assert_eq!(writes(&twin).await?, 0, "a diff writes nothing");

        crate::kong::declarative::sync::KongSync::new()
            .apply(&live, arguments.clone())
            .await?;
        let after = KongDiff::new().apply(&live, arguments).await?;
        assert_eq!(after.outputs["in_sync"], json!(true));
        assert!(
            after.outputs["summary"]
                .as_str()
                .is_some_and(|summary| summary.ends_with("no change")),
            "{}",
            after.outputs["summary"]
        );
        Ok(())
    }
}
