//! Secret masking: every value read through `secret()` and every sensitive
//! output is replaced by the mask in events, the journal and reports.

use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::check::MASK;

/// Secrets shorter than this are not masked inside other text (they would mask
/// ordinary words); whole values equal to them still are.
pub const MIN_MASKED_LEN: usize = 4;

/// The secret values seen so far in a run, shared by everything that writes output.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl Masker {
    /// Adds a secret value; it is masked from now on.
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut secrets = match self.secrets.write() {
            Ok(secrets) => secrets,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_owned());
            // Longest first, so a secret containing another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Adds every string inside a value.
    pub fn add_value(&self, value: &Value) {
        match value {
            Value::String(s) => self.add(s),
            Value::Array(items) => items.iter().for_each(|v| self.add_value(v)),
            Value::Object(map) => map.values().for_each(|v| self.add_value(v)),
            _ => {}
        }
    }

    /// Whether any secret is known.
    pub fn is_empty(&self) -> bool {
        self.secrets.read().map(|s| s.is_empty()).unwrap_or(false)
    }

    /// The text with every secret replaced by the mask.
    pub fn text(&self, text: &str) -> String {
        let secrets = match self.secrets.read() {
            Ok(secrets) => secrets,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = text.to_owned();
        for secret in secrets.iter() {
            if out == *secret || (secret.len() >= MIN_MASKED_LEN && out.contains(secret.as_str())) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// The value with every secret inside its strings (and keys) replaced by the mask.
    pub fn value(&self, value: &Value) -> Value {
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.text(k), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Every leaf of a value replaced by the mask (for `sensitive: true` outputs).
pub fn mask_all(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(mask_all).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), mask_all(v)))
                .collect(),
        ),
        Value::Null => Value::Null,
        _ => Value::String(MASK.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn masks_secrets_inside_text_and_structures() {
        let masker = Masker::default();
        masker.add("s3cr3t-token");
        masker.add("s3cr3t");
        let value = json!({"auth": "Bearer s3cr3t-token", "list": ["x s3cr3t y"], "n": 1});
        assert_eq!(
            masker.value(&value),
            json!({"auth": format!("Bearer {MASK}"), "list": [format!("x {MASK} y")], "n": 1})
        );
    }

    #[test]
    fn short_secrets_are_masked_only_as_whole_values() {
        let masker = Masker::default();
        masker.add("ab");
        assert_eq!(masker.text("ab"), MASK);
        assert_eq!(masker.text("about"), "about");
    }

    #[test]
    fn sensitive_outputs_are_masked_leaf_by_leaf() {
        assert_eq!(
            mask_all(&json!({"key": "k", "ids": [1, 2], "none": null})),
            json!({"key": MASK, "ids": [MASK, MASK], "none": null})
        );
    }
}
