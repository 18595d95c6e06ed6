//! The playbook's `outputs:`, evaluated once the run has ended (after `finally`)
//! over every step that recorded outputs, `inputs`, `vars` and `env`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Exec, lock};

impl Exec<'_> {
    /// Evaluates each output, masking secrets; one that cannot be evaluated (a step it reads
    /// did not run) is left out and announced.
    pub(super) fn publish_outputs(&self) -> Map<String, Value> {
        let mut published = Map::new();
        if self.checked.playbook.outputs.is_empty() {
            return published;
        }
        let frame = lock(&self.finally_frame)
            .clone()
            .unwrap_or_else(|| Arc::clone(&self.root));
        let scope = self.scope_of(&frame, None);
        for (name, node) in &self.checked.playbook.outputs {
            match self.render_json(&node.to_json(), &scope) {
                Ok(value) => {
                    published.insert(name.value.clone(), self.masker.value(&value));
                }
                Err(error) => self.notice(format!(
                    "output `{}` was not published: {}",
                    name.value,
                    self.masker.text(&error)
                )),
            }
        }
        published
    }
}
