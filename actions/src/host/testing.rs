//! Helpers shared by the host actions' tests.

use runsheet_engine::model::{Host, Transport as HostTransport};
use runsheet_engine::{StepContext, StepTarget};

/// A context for a step on a host reached with the `local` transport.
pub(crate) fn local_step(dry_run: bool) -> StepContext {
    let mut context = StepContext::detached("test", dry_run);
    context.target = StepTarget::Host(Host {
        name: "me".into(),
        address: "127.0.0.1".into(),
        port: 22,
        user: None,
        transport: HostTransport::Local,
        groups: Vec::new(),
        vars: serde_json::Map::new(),
        ssh: Default::default(),
    });
    context
}
