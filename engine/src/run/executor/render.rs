//! Templates in a step's context: rendering texts, JSON values, conditions and
//! settings against a [`StepScope`], and evaluating `assert` expressions.

use std::sync::Arc;

use serde_json::Value;

use super::Exec;
use crate::action::Evaluate;
use crate::model::{Setting, TemplateText, is_templated};
use crate::run::context::{Frame, StepScope};
use crate::template::Templates;

impl<'a> Exec<'a> {
    /// What templates of a step in `frame` see.
    pub(super) fn scope_of(&self, frame: &Arc<Frame>, host: Option<Value>) -> StepScope {
        StepScope::new(self.base(), Arc::clone(frame), host)
    }

    /// Renders one template text.
    pub(super) fn render(&self, text: &str, scope: &StepScope) -> Result<Value, String> {
        let context = minijinja::Value::from_object(scope.clone_shallow());
        self.templates
            .render_in(text, &context)
            .map_err(|e| e.to_string())
    }

    /// Renders every template string inside a JSON value.
    pub(super) fn render_json(&self, value: &Value, scope: &StepScope) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) if is_templated(text) => self.render(text, scope)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_json(v, scope))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_json(v, scope)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Renders a condition and tells whether it holds.
    pub(super) fn render_bool(
        &self,
        text: &TemplateText,
        scope: &StepScope,
    ) -> Result<bool, String> {
        let value = if text.is_templated() {
            self.render(&text.source, scope)?
        } else {
            Value::String(text.source.clone())
        };
        Ok(truthy(&value))
    }

    /// A step setting, literal or rendered; `what` names it in errors.
    pub(super) fn setting<T: serde::de::DeserializeOwned + Clone>(
        &self,
        setting: Option<&Setting<T>>,
        scope: &StepScope,
        what: &str,
    ) -> Result<Option<T>, String> {
        match setting {
            None => Ok(None),
            Some(Setting::Literal(value)) => Ok(Some(value.value.clone())),
            Some(Setting::Template(text)) => {
                let value = self.render(&text.source, scope)?;
                let value = match value {
                    Value::String(s) => serde_json::from_value(Value::String(s.clone()))
                        .or_else(|_| serde_json::from_str(&s)),
                    other => serde_json::from_value(other),
                };
                value.map(Some).map_err(|e| format!("`{what}`: {e}"))
            }
        }
    }

    /// What evaluates an action's `assert` expressions in the step's scope.
    pub(super) fn evaluator(&self, scope: &StepScope) -> Arc<dyn Evaluate> {
        Arc::new(ScopeEvaluator {
            templates: Arc::clone(&self.templates),
            scope: scope.clone_shallow(),
        })
    }
}

/// Truthiness as templates see it.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !matches!(s.trim(), "" | "false" | "False" | "0" | "no"),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// Evaluates `assert` expressions in a step's context.
struct ScopeEvaluator {
    /// Renders the expressions: the run's own template environment.
    templates: Arc<Templates>,
    /// What the expressions see.
    scope: StepScope,
}

impl Evaluate for ScopeEvaluator {
    fn evaluate(&self, expression: &str) -> Result<Value, String> {
        let context = minijinja::Value::from_object(self.scope.clone_shallow());
        self.templates
            .render_in(&format!("{{{{ {expression} }}}}"), &context)
            .map_err(|e| e.to_string())
    }

    fn render(&self, template: &str) -> Result<String, String> {
        let context = minijinja::Value::from_object(self.scope.clone_shallow());
        self.templates
            .render_text(template, &context)
            .map_err(|e| e.to_string())
    }
}
