//! Where a step runs: its `on:` and its action's target kind resolved into a
//! host or gateway of the environment.

use serde_json::Value;

use super::Exec;
use crate::action::{Action, StepTarget, TargetKind};
use crate::model::{Environment, Step, Target};
use crate::run::context::StepScope;

impl<'a> Exec<'a> {
    /// Resolves `on:` and the action's target kind into the step's target and `host` value.
    pub(super) fn target(
        &self,
        step: &Step,
        action: &dyn Action,
        scope: &StepScope,
    ) -> Result<(StepTarget, Option<Value>), String> {
        let name = self.on_name(step, scope)?;
        match action.spec().target {
            TargetKind::None => Ok((StepTarget::None, None)),
            TargetKind::Host => self.host_target(name, scope),
            TargetKind::Gateway(kind) => {
                let environment = self
                    .environment
                    .as_deref()
                    .ok_or("this action needs a gateway: run with --env")?;
                gateway_target(environment, name, kind)
            }
        }
    }

    /// The host or gateway name `on:` gives, if it gives one.
    fn on_name(&self, step: &Step, scope: &StepScope) -> Result<Option<String>, String> {
        let on = match &step.on {
            None => None,
            Some(text) if text.is_templated() => Some(self.render(&text.source, scope)?),
            Some(text) => Some(Value::String(text.source.clone())),
        };
        match on {
            None => Ok(None),
            Some(Value::String(name)) => Ok(Some(name)),
            Some(Value::Object(map)) => {
                Ok(map.get("name").and_then(Value::as_str).map(str::to_owned))
            }
            Some(other) => Err(format!(
                "`on:` is {other}; expected a host, or a host or gateway name"
            )),
        }
    }

    /// The host named by `on:`, or else the `host` of the scope (a `for_each` over hosts).
    fn host_target(
        &self,
        name: Option<String>,
        scope: &StepScope,
    ) -> Result<(StepTarget, Option<Value>), String> {
        let name = match name.or_else(|| scope_host(scope)) {
            Some(name) => name,
            None => {
                return Err(
                    "this action runs on a host: set `on:` to a host of the environment".into(),
                );
            }
        };
        let host = self
            .environment
            .as_deref()
            .and_then(|e| e.hosts.iter().find(|h| h.name == name))
            .ok_or_else(|| {
                format!("`on:` names `{name}`, which is not a host of the environment")
            })?;
        let value = serde_json::to_value(host).map_err(|e| e.to_string())?;
        Ok((StepTarget::Host(host.clone()), Some(value)))
    }
}

/// The gateway of `kind` named by `on:`, or else the environment's only one.
fn gateway_target(
    environment: &Environment,
    name: Option<String>,
    kind: &str,
) -> Result<(StepTarget, Option<Value>), String> {
    let name = match name {
        Some(name) => name,
        None => only_gateway(environment, kind)?,
    };
    match environment.target(&name) {
        Some(Target::Gateway(gateway)) if gateway.kind() == kind => {
            Ok((StepTarget::Gateway(name), None))
        }
        _ => Err(format!(
            "`on:` names `{name}`, which is not a {kind} gateway of the environment"
        )),
    }
}

/// The name of the environment's one gateway of `kind`.
fn only_gateway(environment: &Environment, kind: &str) -> Result<String, String> {
    let of_kind: Vec<&str> = environment
        .gateways
        .iter()
        .filter(|(_, g)| g.kind() == kind)
        .map(|(n, _)| n.value.as_str())
        .collect();
    match of_kind.as_slice() {
        [only] => Ok((*only).to_owned()),
        [] => Err(format!(
            "environment `{}` has no {kind} gateway",
            environment.name.value
        )),
        many => Err(format!(
            "environment `{}` has several {kind} gateways ({}): set `on:`",
            environment.name.value,
            many.join(", ")
        )),
    }
}

/// The name of the scope's `host`, if it has one.
fn scope_host(scope: &StepScope) -> Option<String> {
    let value = minijinja::Value::from_object(scope.clone_shallow());
    let host = value.get_attr("host").ok()?;
    if host.is_undefined() || host.is_none() {
        return None;
    }
    host.get_attr("name")
        .ok()
        .and_then(|n| n.as_str().map(str::to_owned))
        .or_else(|| host.as_str().map(str::to_owned))
}
