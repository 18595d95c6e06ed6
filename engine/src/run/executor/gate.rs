//! Approval gates: the [`Gatekeeper`] answers from the run's earlier approvals
//! first, then asks the operator's approver, and every answer is journalled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::{Exec, lock};
use crate::action::{Approver, Decision};
use crate::run::event::EventKind;

/// Answers gates from the run's earlier approvals first, then asks the
/// operator's approver; keeps every answer for the journal.
pub(super) struct Gatekeeper {
    /// The operator's approver.
    inner: Arc<dyn Approver>,
    /// Gates approved by an earlier attempt, with who approved them.
    earlier: HashMap<String, String>,
    /// Answers not yet journalled.
    answered: Mutex<Vec<(String, Decision)>>,
}

impl Gatekeeper {
    /// A gatekeeper asking `inner` about every gate not in `earlier`.
    pub(super) fn new(inner: Arc<dyn Approver>, earlier: HashMap<String, String>) -> Gatekeeper {
        Gatekeeper {
            inner,
            earlier,
            answered: Mutex::default(),
        }
    }

    /// The answers given since the last call.
    fn take(&self) -> Vec<(String, Decision)> {
        std::mem::take(&mut *lock(&self.answered))
    }
}

#[async_trait::async_trait]
impl Approver for Gatekeeper {
    async fn decide(&self, gate: &str, prompt: &str) -> Decision {
        if let Some(by) = self.earlier.get(gate) {
            return Decision::Approved(by.clone());
        }
        let decision = self.inner.decide(gate, prompt).await;
        lock(&self.answered).push((gate.to_owned(), decision.clone()));
        decision
    }
}

impl<'a> Exec<'a> {
    /// Journals and announces the gates answered since the last call.
    pub(super) fn record_decisions(&self) {
        for (gate, decision) in self.gatekeeper.take() {
            let (by, approved) = match decision {
                Decision::Approved(by) => (by, true),
                Decision::Refused(by) => (by, false),
                Decision::Pending => continue,
            };
            self.journal(
                "approval",
                json!({"gate": gate, "by": by, "approved": approved}),
                true,
            );
            self.emit(EventKind::Approval { gate, by, approved });
        }
    }
}
