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
    /// The step's path in the playbook (`upgrade.drain`), shared by every item's instance.
    #[serde(skip)]
    pub path: String,
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
    let main = Place {
        scope: MAIN_SCOPE.into(),
        prefix: String::new(),
        depth: 0,
        finally: false,
    };
    planner.scope(&checked.playbook.steps, checked, &main, &context)?;
    let finally = Place {
        scope: FINALLY_SCOPE.into(),
        prefix: "finally.".into(),
        depth: 0,
        finally: true,
    };
    planner.scope(&checked.playbook.finally, checked, &finally, &context)?;
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
    let gateways: Map<String, Value> = environment
        .gateways
        .iter()
        .map(|(name, gateway)| (name.value.clone(), gateway_value(gateway)))
        .collect();
    let mut value = vars.clone();
    value.insert("name".into(), Value::String(environment.name.value.clone()));
    value.insert("vars".into(), Value::Object(vars));
    value.insert("gateways".into(), Value::Object(gateways));
    Value::Object(value)
}

/// What templates see of a gateway as `env.gateways.NAME`: its type and URLs, never secrets.
fn gateway_value(gateway: &crate::model::Gateway) -> Value {
    let url = |url: &Option<crate::de::Spanned<String>>| {
        url.as_ref()
            .map_or(Value::Null, |url| Value::String(url.value.clone()))
    };
    match gateway {
        crate::model::Gateway::Kong(kong) => json!({
            "type": "kong",
            "admin_url": url(&kong.admin_url),
            "proxy_url": url(&kong.proxy_url),
            "proxy_tls_url": url(&kong.proxy_tls_url),
            "status_url": url(&kong.status_url),
            "twin": kong.twin.is_some(),
        }),
        crate::model::Gateway::Layer7(layer7) => json!({
            "type": "layer7",
            "url": url(&layer7.url),
            "traffic_url": url(if layer7.traffic_url.is_some() { &layer7.traffic_url } else { &layer7.url }),
            "twin": layer7.twin.is_some(),
        }),
    }
}

/// Where a list of steps stands: its DAG scope, the prefix of runtime ids, its depth.
struct Place {
    scope: String,
    prefix: String,
    depth: usize,
    finally: bool,
}

impl Place {
    /// The place of a step's body; `item` labels one `for_each` item (`upgrade[dp1].`).
    fn body(&self, step: &Step, id: &str, item: Option<&str>) -> Place {
        Place {
            scope: format!("{}.", step.path),
            prefix: item.map_or_else(|| format!("{id}."), |item| format!("{id}[{item}].")),
            depth: self.depth + 1,
            finally: self.finally,
        }
    }
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
    fn scope(
        &mut self,
        steps: &'a [Step],
        checked: &'a Checked,
        place: &Place,
        context: &Context,
    ) -> Result<(), RenderError> {
        let order: Vec<usize> = checked
            .dag
            .scope(&place.scope)
            .map(|s| s.order().to_vec())
            .unwrap_or_else(|| (0..steps.len()).collect());
        for index in order {
            let step = &steps[index];
            let mut planned = PlannedStep {
                id: format!("{}{}", place.prefix, step.id.value),
                path: step.path.clone(),
                name: step.name.clone(),
                action: String::new(),
                effect: String::new(),
                arguments: json!({}),
                on: step.on.as_ref().map(|t| self.resolve(t, context)),
                when: step.when.as_ref().map(|t| self.resolve(t, context)),
                checkpoint: step.checkpoint,
                depth: place.depth,
                finally: place.finally,
            };
            match &step.kind {
                StepKind::Action { action, with } => {
                    if let Some(with) = with {
                        planned.arguments = self.resolve_node(with, context);
                    }
                    planned.effect = self
                        .registry
                        .get(&action.value)
                        .map(|a| a.effect_for(&planned.arguments).letters())
                        .unwrap_or_default();
                    planned.action = action.value.clone();
                    self.steps.push(planned);
                }
                StepKind::Group { steps: body } => {
                    planned.action = "group".into();
                    let inner = place.body(step, &planned.id, None);
                    self.steps.push(planned);
                    self.scope(body, checked, &inner, context)?;
                }
                StepKind::ForEach {
                    items,
                    as_name,
                    batch,
                    max_failures,
                    steps: body,
                } => {
                    let list = self.resolve(items, context);
                    planned.action = "for_each".into();
                    planned.arguments = json!({
                        "items": list,
                        "batch": setting_value(batch, self, context),
                        "max_failures": setting_value(max_failures, self, context),
                    });
                    let id = planned.id.clone();
                    self.steps.push(planned);
                    match list {
                        Value::Array(values) => {
                            for value in values {
                                let inner = place.body(step, &id, Some(&item_label(&value)));
                                self.scope(
                                    body,
                                    checked,
                                    &inner,
                                    &context.with(&as_name.value, value),
                                )?;
                            }
                        }
                        _ => {
                            let inner = place.body(step, &id, Some("*"));
                            let unknown = Value::String(KNOWN_AFTER_APPLY.into());
                            self.scope(
                                body,
                                checked,
                                &inner,
                                &context.with(&as_name.value, unknown),
                            )?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Resolves a template, or marks it as known after apply when it reads step results.
    fn resolve(&self, text: &'a TemplateText, context: &Context) -> Value {
        if !text.is_templated() {
            return Value::String(text.source.clone());
        }
        self.resolve_string(&text.source, context)
    }

    fn resolve_string(&self, text: &'a str, context: &Context) -> Value {
        // Only texts that mention these names can depend on run-time results.
        let may_read_results = ["steps", "host", "result"]
            .iter()
            .any(|name| text.contains(name));
        let reads_steps = may_read_results
            && self
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
