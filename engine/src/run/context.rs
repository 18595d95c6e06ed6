//! What templates see while a run executes: `inputs`, `vars`, `env`, the
//! outputs of steps done so far (`steps.<id>.outputs`), the `for_each` item,
//! `host` and `result`, looked up lazily so a step costs nothing it does not read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

use super::mask::Masker;
use crate::model::Environment;
use crate::plan::KNOWN_AFTER_APPLY;
use crate::template::TemplateHost;

/// Values every template of the run can read.
#[derive(Debug)]
pub struct Base {
    /// `inputs`.
    pub inputs: Value,
    /// `vars`.
    pub vars: Value,
    /// `env`.
    pub env: Value,
}

/// What a step's record says in `steps.<id>`: its status and outputs.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// Done; its outputs.
    Done(serde_json::Value),
    /// Not run (skipped, failed, or a dry run's write): no outputs.
    Empty(&'static str),
    /// A dry run's write: outputs known after apply.
    Unknown,
}

/// How a failure inside a scope travels up.
#[derive(Debug)]
pub enum OnFail {
    /// To the enclosing scope (main steps, group bodies).
    Propagate,
    /// To a `for_each`'s failure budget.
    Item(Arc<ItemBudget>),
    /// Nowhere: the scope's failure stays in it (`finally`, `continue_on_error` groups).
    Contain,
}

/// Failures a `for_each` tolerates.
#[derive(Debug)]
pub struct ItemBudget {
    /// Items failed so far.
    pub failures: AtomicU32,
    /// Failures tolerated.
    pub max: u32,
    /// Set once the budget is spent: no new items start.
    pub exceeded: AtomicBool,
}

/// One scope instance: the main steps, a group body, or one `for_each` item.
#[derive(Debug)]
pub struct Frame {
    /// The enclosing scope.
    pub parent: Option<Arc<Frame>>,
    /// The item variable of a `for_each` body.
    pub binding: Option<(String, Value)>,
    /// Steps of this scope recorded so far, by id.
    pub results: Mutex<HashMap<String, Recorded>>,
    /// No new steps start in this scope (or below).
    pub stop: AtomicBool,
    /// How failures travel.
    pub on_fail: OnFail,
    /// Runtime id prefix of this scope (`upgrade[dp1].`).
    pub prefix: String,
    /// Stops of enclosing scopes do not reach this one (`finally`).
    isolated: AtomicBool,
}

impl Frame {
    /// A scope inside `parent` (or the root when `None`).
    pub fn new(
        parent: Option<Arc<Frame>>,
        binding: Option<(String, Value)>,
        on_fail: OnFail,
        prefix: String,
    ) -> Arc<Frame> {
        Arc::new(Frame {
            parent,
            binding,
            results: Mutex::default(),
            stop: AtomicBool::new(false),
            on_fail,
            prefix,
            isolated: AtomicBool::new(false),
        })
    }

    /// Makes stops of enclosing scopes not reach this one.
    pub fn isolate(&self) {
        self.isolated.store(true, Ordering::Relaxed);
    }

    /// Whether this scope or any enclosing one has stopped starting steps.
    pub fn stopped(&self) -> bool {
        let mut frame = Some(self);
        while let Some(current) = frame {
            if current.stop.load(Ordering::Relaxed) {
                return true;
            }
            if let OnFail::Item(budget) = &current.on_fail
                && budget.exceeded.load(Ordering::Relaxed)
            {
                return true;
            }
            if current.isolated.load(Ordering::Relaxed) {
                return false;
            }
            frame = current.parent.as_deref();
        }
        false
    }

    /// Records a step of this scope.
    pub fn record(&self, id: &str, recorded: Recorded) {
        lock(&self.results).insert(id.to_owned(), recorded);
    }

    fn lookup_step(&self, id: &str) -> Option<Recorded> {
        let mut frame = Some(self);
        while let Some(current) = frame {
            if let Some(found) = lock(&current.results).get(id) {
                return Some(found.clone());
            }
            frame = current.parent.as_deref();
        }
        None
    }

    fn lookup_binding(&self, name: &str) -> Option<Value> {
        let mut frame = Some(self);
        while let Some(current) = frame {
            if let Some((bound, value)) = &current.binding
                && bound == name
            {
                return Some(value.clone());
            }
            frame = current.parent.as_deref();
        }
        None
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The template context of one step.
#[derive(Debug)]
pub struct StepScope {
    base: Arc<Base>,
    frame: Arc<Frame>,
    host: Option<Value>,
    result: Option<Value>,
    /// Set when a template read a value known only after apply.
    pub saw_unknown: Arc<AtomicBool>,
}

impl StepScope {
    /// The context of a step in `frame`, with its `host` if it runs on one.
    pub fn new(base: Arc<Base>, frame: Arc<Frame>, host: Option<serde_json::Value>) -> Self {
        Self {
            base,
            frame,
            host: host.map(|h| to_value(&h)),
            result: None,
            saw_unknown: Arc::default(),
        }
    }

    /// Another handle on the same context.
    pub fn clone_shallow(&self) -> Self {
        Self {
            base: Arc::clone(&self.base),
            frame: Arc::clone(&self.frame),
            host: self.host.clone(),
            result: self.result.clone(),
            saw_unknown: Arc::clone(&self.saw_unknown),
        }
    }

    /// The same context with `result` (for `until`).
    pub fn with_result(&self, result: &serde_json::Value) -> Self {
        Self {
            base: Arc::clone(&self.base),
            frame: Arc::clone(&self.frame),
            host: self.host.clone(),
            result: Some(to_value(result)),
            saw_unknown: Arc::clone(&self.saw_unknown),
        }
    }

    /// The same context with `host` set.
    pub fn with_host(&self, host: &serde_json::Value) -> Self {
        Self {
            base: Arc::clone(&self.base),
            frame: Arc::clone(&self.frame),
            host: Some(to_value(host)),
            result: self.result.clone(),
            saw_unknown: Arc::clone(&self.saw_unknown),
        }
    }
}

impl Object for StepScope {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "inputs" => Some(self.base.inputs.clone()),
            "vars" => Some(self.base.vars.clone()),
            "env" => Some(self.base.env.clone()),
            "steps" => Some(Value::from_object(StepsView {
                frame: Arc::clone(&self.frame),
                saw_unknown: Arc::clone(&self.saw_unknown),
            })),
            "result" => self.result.clone(),
            "host" => self
                .host
                .clone()
                .or_else(|| self.frame.lookup_binding("host")),
            name => self.frame.lookup_binding(name),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["inputs", "vars", "env", "steps"])
    }
}

/// `steps`: the recorded steps visible from a scope.
#[derive(Debug)]
struct StepsView {
    frame: Arc<Frame>,
    saw_unknown: Arc<AtomicBool>,
}

impl Object for StepsView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let recorded = self.frame.lookup_step(key.as_str()?)?;
        Some(match recorded {
            Recorded::Done(outputs) => to_value(&serde_json::json!({
                "status": "succeeded",
                "outputs": outputs,
            })),
            Recorded::Empty(status) => to_value(&serde_json::json!({
                "status": status,
                "outputs": {},
            })),
            Recorded::Unknown => {
                self.saw_unknown.store(true, Ordering::Relaxed);
                Value::from_object(Unknown)
            }
        })
    }
}

/// A value known only after apply: every member of it is unknown too.
#[derive(Debug)]
struct Unknown;

impl Object for Unknown {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(Value::from_object(Unknown))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(KNOWN_AFTER_APPLY)
    }
}

/// Answers `secret()` from the process environment (`$NAME`, or the file named
/// by `$NAME_FILE`) and `hosts()` from the environment; every secret read is masked.
#[derive(Debug)]
pub struct RunHost {
    environment: Option<Environment>,
    masker: Masker,
}

impl RunHost {
    /// A host reading real secrets, masking them with `masker`.
    pub fn new(environment: Option<Environment>, masker: Masker) -> Self {
        Self {
            environment,
            masker,
        }
    }
}

impl TemplateHost for RunHost {
    fn secret(&self, name: &str) -> Result<String, String> {
        let value = match std::env::var(name) {
            Ok(value) => value,
            Err(_) => {
                let file_var = format!("{name}_FILE");
                let Ok(path) = std::env::var(&file_var) else {
                    return Err(format!(
                        "secret `{name}` is not set: export {name}, or {file_var} naming a file that holds it"
                    ));
                };
                std::fs::read_to_string(&path)
                    .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
                    .map_err(|e| format!("secret `{name}`: cannot read {file_var}={path}: {e}"))?
            }
        };
        self.masker.add(&value);
        Ok(value)
    }

    fn hosts(&self, group: &str) -> Result<Vec<serde_json::Value>, String> {
        crate::check::StaticHost::new(self.environment.clone()).hosts(group)
    }
}

/// A JSON value as a template value.
pub fn to_value(json: &serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(json))
}
