//! The static plan: steps in execution order with their templates resolved as
//! far as they can be before anything runs. Values that depend on a step's
//! outputs print as "(known after apply)".

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::check::{Checked, MASK};
use crate::dag::{FINALLY_SCOPE, MAIN_SCOPE};
use crate::model::{Environment, Setting, Step, StepKind, TemplateText, is_templated};
use crate::node::{Node, NodeValue};
use crate::registry::Registry;
use crate::template::{Compiled, RenderError, Templates};

/// Placeholder for a value that depends on a step not yet run.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// One planned step.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    /// Runtime id (`upgrade[dp1].drain`).
    pub id: String,
    /// Human label, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Action type, or `group` / `for_each`.
    pub action: String,
    /// Effect letters (R, W I U...).
    pub effect: String,
    /// Resolved arguments.
    pub arguments: Value,
    /// Resolved `on:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on: Option<Value>,
    /// Resolved `when:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Value>,
    /// Whether it is a checkpoint.
    pub checkpoint: bool,
    /// Nesting depth (0 for top-level steps).
    pub depth: usize,
    /// Whether it belongs to `finally`.
    pub finally: bool,
}

/// The plan of a checked playbook.
#[derive(Debug, Clone, Serialize)]
pub struct StaticPlan {
    /// Playbook name.
    pub playbook: String,
    /// Environment name, when given.
    pub environment: Option<String>,
    /// Input values (secret-typed inputs masked).
    pub inputs: Map<String, Value>,
    /// Resolved vars.
    pub vars: Map<String, Value>,
    /// Steps in order.
    pub steps: Vec<PlannedStep>,
}

/// Builds the static plan of a checked playbook.
pub fn plan(checked: &Checked, registry: &Registry) -> Result<StaticPlan, RenderError> {
    let environment = checked.environment.as_ref().map(|(_, e)| e);
    let templates = &checked.templates;
    let mut inputs = checked.inputs.clone();
    for (name, spec) in &checked.playbook.inputs {
        if spec.kind.value == crate::model::InputType::Secret && inputs.contains_key(&name.value) {
            inputs.insert(name.value.clone(), Value::String(MASK.into()));
        }
    }
    let mut context = json!({
        "inputs": inputs,
        "env": environment_value(environment),
        "vars": {},
    });
    let mut vars = Map::new();
    for (name, node) in &checked.playbook.vars {
        let value = templates.render_value(&node.to_json(), &context)?;
        vars.insert(name.value.clone(), value);
        context["vars"] = Value::Object(vars.clone());
    }
    let mut planner = Planner {
        templates,
        registry,
        steps: Vec::new(),
        compiled: RefCell::default(),
    };
    let context = Context::new(context);
    planner.scope(
        &checked.playbook.steps,
        checked,
        MAIN_SCOPE,
        "",
        &context,
        0,
        false,
    )?;
    planner.scope(
        &checked.playbook.finally,
        checked,
        FINALLY_SCOPE,
        "finally.",
        &context,
        0,
        true,
    )?;
    Ok(StaticPlan {
        playbook: checked.playbook.name.value.clone(),
        environment: environment.map(|e| e.name.value.clone()),
        inputs,
        vars,
        steps: planner.steps,
    })
}

/// The `env` object templates read: name, vars, and each var at the top.
pub fn environment_value(environment: Option<&Environment>) -> Value {
    let Some(environment) = environment else {
        return json!({});
    };
    let vars: Map<String, Value> = environment
        .vars
        .iter()
        .map(|(k, v)| (k.value.clone(), v.to_json()))
        .collect();
    let mut value = vars.clone();
    value.insert("name".into(), Value::String(environment.name.value.clone()));
    value.insert("vars".into(), Value::Object(vars));
    Value::Object(value)
}

/// A template context as JSON and as converted once for the template engine.
struct Context {
    json: Value,
    converted: minijinja::Value,
}

impl Context {
    fn new(json: Value) -> Self {
        let converted = Templates::context(&json);
        Self { json, converted }
    }

    /// This context with an item variable added.
    fn with(&self, name: &str, value: Value) -> Self {
        let mut json = self.json.clone();
        json[name] = value;
        Self::new(json)
    }
}

/// A compiled template (or why it does not compile), shared between renders.
type SharedCompiled<'a> = Rc<Result<Compiled<'a>, RenderError>>;

struct Planner<'a> {
    templates: &'a Templates,
    registry: &'a Registry,
    steps: Vec<PlannedStep>,
    /// Texts rendered so far, compiled once they are rendered a second time
    /// (a `for_each` body renders the same texts once per item).
    compiled: RefCell<HashMap<&'a str, Option<SharedCompiled<'a>>>>,
}

impl<'a> Planner<'a> {
    #[expect(
        clippy::too_many_arguments,
        reason = "recursive walk carrying its position"
    )]
    fn scope(
        &mut self,
        steps: &'a [Step],
        checked: &'a Checked,
        key: &str,
        prefix: &str,
        context: &Context,
        depth: usize,
        finally: bool,
    ) -> Result<(), RenderError> {
        let order: Vec<usize> = checked
            .dag
            .scope(key)
            .map(|s| s.order().to_vec())
            .unwrap_or_else(|| (0..steps.len()).collect());
        for index in order {
            let step = &steps[index];
            let id = format!("{prefix}{}", step.id.value);
            let when = step.when.as_ref().map(|t| self.resolve(t, context));
            let on = step.on.as_ref().map(|t| self.resolve(t, context));
            match &step.kind {
                StepKind::Action { action, with } => {
                    let arguments = with
                        .as_ref()
                        .map_or(json!({}), |w| self.resolve_node(w, context));
                    let effect = self
                        .registry
                        .get(&action.value)
                        .map(|a| a.effect_for(&arguments).letters())
                        .unwrap_or_default();
                    self.steps.push(PlannedStep {
                        id,
                        name: step.name.clone(),
                        action: action.value.clone(),
                        effect,
                        arguments,
                        on,
                        when,
                        checkpoint: step.checkpoint,
                        depth,
                        finally,
                    });
                }
                StepKind::Group { steps: body } => {
                    self.steps.push(self.header(
                        step,
                        &id,
                        "group",
                        json!({}),
                        on,
                        when,
                        depth,
                        finally,
                    ));
                    self.scope(
                        body,
                        checked,
                        &format!("{}.", step.path),
                        &format!("{id}."),
                        context,
                        depth + 1,
                        finally,
                    )?;
                }
                StepKind::ForEach {
                    items,
                    as_name,
                    batch,
                    max_failures,
                    steps: body,
                } => {
                    let list = self.resolve(items, context);
                    let mut settings = Map::new();
                    settings.insert("items".into(), list.clone());
                    settings.insert("batch".into(), setting_value(batch, self, context));
                    settings.insert(
                        "max_failures".into(),
                        setting_value(max_failures, self, context),
                    );
                    self.steps.push(self.header(
                        step,
                        &id,
                        "for_each",
                        Value::Object(settings),
                        on,
                        when,
                        depth,
                        finally,
                    ));
                    let body_key = format!("{}.", step.path);
                    match list {
                        Value::Array(values) => {
                            for value in values {
                                let label = item_label(&value);
                                let inner = context.with(&as_name.value, value);
                                self.scope(
                                    body,
                                    checked,
                                    &body_key,
                                    &format!("{id}[{label}]."),
                                    &inner,
                                    depth + 1,
                                    finally,
                                )?;
                            }
                        }
                        _ => {
                            let inner = context
                                .with(&as_name.value, Value::String(KNOWN_AFTER_APPLY.into()));
                            self.scope(
                                body,
                                checked,
                                &body_key,
                                &format!("{id}[*]."),
                                &inner,
                                depth + 1,
                                finally,
                            )?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    #[expect(clippy::too_many_arguments, reason = "a plain record of a header row")]
    fn header(
        &self,
        step: &Step,
        id: &str,
        action: &str,
        arguments: Value,
        on: Option<Value>,
        when: Option<Value>,
        depth: usize,
        finally: bool,
    ) -> PlannedStep {
        PlannedStep {
            id: id.to_owned(),
            name: step.name.clone(),
            action: action.into(),
            effect: String::new(),
            arguments,
            on,
            when,
            checkpoint: step.checkpoint,
            depth,
            finally,
        }
    }

    /// Resolves a template, or marks it as known after apply when it reads step results.
    fn resolve(&self, text: &'a TemplateText, context: &Context) -> Value {
        if !text.is_templated() {
            return Value::String(text.source.clone());
        }
        self.resolve_string(&text.source, context)
    }

    fn resolve_string(&self, text: &'a str, context: &Context) -> Value {
        let reads_steps = self
            .templates
            .analyze(text)
            .map(|reads| {
                reads
                    .roots()
                    .any(|r| r == "steps" || r == "host" || r == "result")
            })
            .unwrap_or(false);
        let depends_on_item = context
            .json
            .as_object()
            .is_some_and(|c| c.values().any(|v| v.as_str() == Some(KNOWN_AFTER_APPLY)));
        if reads_steps && context.json.get("host").is_none() {
            return Value::String(KNOWN_AFTER_APPLY.into());
        }
        match self.render(text, context) {
            Ok(value) => value,
            Err(_) if reads_steps || depends_on_item => Value::String(KNOWN_AFTER_APPLY.into()),
            Err(error) => Value::String(format!("(error: {error})")),
        }
    }

    /// Renders a text with its compiled template, compiling it on first use.
    fn render(&self, text: &'a str, context: &Context) -> Result<Value, RenderError> {
        let cached = self.compiled.borrow().get(text).cloned();
        let compiled = match cached {
            Some(Some(compiled)) => compiled,
            // Seen once before: it repeats (a `for_each` body), so keep it compiled.
            Some(None) => {
                let compiled = Rc::new(self.templates.compile(text));
                self.compiled
                    .borrow_mut()
                    .insert(text, Some(Rc::clone(&compiled)));
                compiled
            }
            // First use: most texts render once, and a compiled template is large.
            None => {
                self.compiled.borrow_mut().insert(text, None);
                Rc::new(self.templates.compile(text))
            }
        };
        match compiled.as_ref() {
            Ok(template) => template.render(&context.converted),
            Err(error) => Err(error.clone()),
        }
    }

    /// Resolves the templates inside a YAML value, building its JSON once.
    fn resolve_node(&self, node: &'a Node, context: &Context) -> Value {
        match &node.value {
            NodeValue::String(text) if is_templated(text) => self.resolve_string(text, context),
            NodeValue::Seq(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.resolve_node(i, context))
                    .collect(),
            ),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_text(), self.resolve_node(v, context)))
                    .collect(),
            ),
            _ => node.to_json(),
        }
    }
}

fn setting_value<'a, T: Serialize>(
    setting: &'a Option<Setting<T>>,
    planner: &Planner<'a>,
    context: &Context,
) -> Value {
    match setting {
        None => Value::Null,
        Some(Setting::Literal(value)) => serde_json::to_value(&value.value).unwrap_or(Value::Null),
        Some(Setting::Template(text)) => planner.resolve(text, context),
    }
}

/// The label of a `for_each` item in runtime ids: a host's name, or the value itself.
pub fn item_label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) => map
            .get("name")
            .or_else(|| map.get("id"))
            .and_then(Value::as_str)
            .map_or_else(|| value.to_string(), str::to_owned),
        other => other.to_string(),
    }
}
