//! [`Pending`]: an action type registered ahead of its implementation.
//!
//! A pending action has its real name, argument schema, effect and outputs, so
//! playbooks that use it validate and plan. It reports itself unavailable, and
//! its `apply` refuses with [`ActionError::NotAvailable`] naming what is missing.

use runsheet_engine::{Action, ActionError, ActionSpec, Applied, Effect, StepContext};

/// Computes an action's effect from its rendered arguments.
pub type EffectFor = fn(&serde_json::Value) -> Effect;

/// An action type whose implementation is not in this build.
#[derive(Debug, Clone)]
pub struct Pending {
    spec: ActionSpec,
    reason: &'static str,
    effect_for: Option<EffectFor>,
}

impl Pending {
    /// Registers `spec` as not yet available, for `reason` ("arrives with ...").
    pub fn new(spec: ActionSpec, reason: &'static str) -> Self {
        Self {
            spec,
            reason,
            effect_for: None,
        }
    }

    /// Computes the effect from the arguments (for effects that depend on them).
    pub fn effect_for(mut self, effect_for: EffectFor) -> Self {
        self.effect_for = Some(effect_for);
        self
    }

    /// What is missing from this build.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

#[async_trait::async_trait]
impl Action for Pending {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    fn effect_for(&self, arguments: &serde_json::Value) -> Effect {
        match self.effect_for {
            Some(effect_for) => effect_for(arguments),
            None => self.spec.effect,
        }
    }

    fn is_available(&self) -> bool {
        false
    }

    async fn apply(
        &self,
        _context: &StepContext,
        _arguments: serde_json::Value,
    ) -> Result<Applied, ActionError> {
        Err(ActionError::NotAvailable {
            action: self.spec.name,
            reason: self.reason,
        })
    }
}
