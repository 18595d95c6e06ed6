//! The registry of action types, keyed by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::action::Action;
use crate::suggest::closest;

/// Every action type a build knows, by name.
#[derive(Default, Clone)]
pub struct Registry {
    actions: BTreeMap<&'static str, Arc<dyn Action>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.actions.keys()).finish()
    }
}

/// A second registration under a name already taken.
#[derive(Debug, thiserror::Error)]
#[error("action type `{0}` is registered twice")]
pub struct DuplicateAction(pub &'static str);

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an action type; its name must be new.
    pub fn register(&mut self, action: impl Action + 'static) -> Result<(), DuplicateAction> {
        let name = action.spec().name;
        if self.actions.contains_key(name) {
            return Err(DuplicateAction(name));
        }
        self.actions.insert(name, Arc::new(action));
        Ok(())
    }

    /// The action type of that name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Action>> {
        self.actions.get(name)
    }

    /// Every action type, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Action>> {
        self.actions.values()
    }

    /// Number of action types.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether no action type is registered.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The registered name nearest to a misspelt one.
    pub fn suggest(&self, name: &str) -> Option<&'static str> {
        closest(name, self.actions.keys().copied())
    }
}
