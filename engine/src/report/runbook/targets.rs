//! The facts of a runbook around its steps: inputs, secrets by name, the
//! environment's change rules and safety settings, and the gateways and hosts
//! the steps run against.

use std::collections::BTreeSet;

use serde_json::Value;

use super::build::{Sources, one_line, unknown};
use super::model::{DocStep, EnvironmentFacts, InputRow, SecretUse, TargetRow};
use crate::action::TargetKind;
use crate::check::Checked;
use crate::model::{Environment, Gateway, InputType, Step, Transport};
use crate::plan::{PlannedStep, item_label};

/// Said of a target that only the run can resolve.
pub(super) const AT_RUN_TIME: &str = "(decided at run time)";

/// The inputs with their values; a secret input shows the secret's name.
pub(super) fn inputs(checked: &Checked) -> Vec<InputRow> {
    checked
        .playbook
        .inputs
        .iter()
        .map(|(name, spec)| {
            let value = checked.inputs.get(&name.value);
            let default = spec.default.as_ref().map(|d| d.to_json());
            let shown = match value {
                None | Some(Value::Null) => "(not set)".to_owned(),
                Some(Value::String(s)) if s.is_empty() => "(empty)".to_owned(),
                Some(Value::String(s)) if spec.kind.value == InputType::Secret => {
                    format!("secret {s}")
                }
                Some(value) => one_line(value),
            };
            InputRow {
                name: name.value.clone(),
                value: shown,
                kind: spec.kind.value.as_str().to_owned(),
                default: value.is_some() && value == default.as_ref(),
                description: spec.description.clone(),
            }
        })
        .collect()
}

/// Secrets read through `secret('NAME')` in the playbook or environment, and secret inputs.
pub(super) fn secrets(checked: &Checked) -> Vec<SecretUse> {
    let mut found: Vec<SecretUse> = Vec::new();
    let mut add = |name: String, named_in: String| {
        if !found.iter().any(|s| s.name == name) {
            found.push(SecretUse { name, named_in });
        }
    };
    if let Some((file, _)) = &checked.environment {
        for name in literal_secrets(&file.text) {
            add(name, "environment".to_owned());
        }
    }
    for name in literal_secrets(&checked.file.text) {
        add(name, "playbook".to_owned());
    }
    for (name, spec) in &checked.playbook.inputs {
        if spec.kind.value == InputType::Secret
            && let Some(Value::String(secret)) = checked.inputs.get(&name.value)
            && !secret.is_empty()
        {
            add(secret.clone(), format!("input {}", name.value));
        }
    }
    found
}

/// Names in `secret('NAME')` or `secret("NAME")` calls of a text.
fn literal_secrets(text: &str) -> Vec<String> {
    let Ok(pattern) = regex::Regex::new(r#"secret\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\)"#)
    else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    for capture in pattern.captures_iter(text) {
        if let Some(name) = capture.get(1).map(|m| m.as_str().to_owned())
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    names
}

/// Change rules and turned-off safety settings of an environment.
pub(super) fn environment_facts(environment: &Environment) -> EnvironmentFacts {
    let change = &environment.change;
    let mut change_rules = Vec::new();
    if change.require_change_id {
        change_rules.push("a change id is required (`--change-id`)".to_owned());
    }
    if change.require_window {
        change_rules.push("a change window is required (`--window`)".to_owned());
    }
    if let Some(id) = &change.change_id {
        change_rules.push(format!("change id {}", id.value));
    }
    if let Some(window) = &change.window {
        change_rules.push(format!("change window {}", window.value));
    }
    let mut warnings = Vec::new();
    for (name, gateway) in &environment.gateways {
        let insecure = match gateway {
            Gateway::Kong(kong) => kong.tls.as_ref().is_some_and(|t| t.insecure),
            Gateway::Layer7(layer7) => layer7.tls.as_ref().is_some_and(|t| t.insecure),
        };
        if insecure {
            warnings.push(format!(
                "gateway {}: TLS verification is off (`insecure: true`)",
                name.value
            ));
        }
    }
    for host in environment.hosts_without_host_key_checking() {
        warnings.push(format!("host {}: SSH host-key checking is off", host.name));
    }
    EnvironmentFacts {
        name: environment.name.value.clone(),
        change_rules,
        warnings,
    }
}

/// The names of the targets a step runs against over all its instances.
pub(super) fn step_targets(
    sources: &Sources<'_>,
    step: &Step,
    instances: &[&PlannedStep],
) -> Vec<String> {
    let environment = sources.checked.environment.as_ref().map(|(_, e)| e);
    let target_kind = step
        .action()
        .and_then(|a| sources.registry.get(&a.value))
        .map(|a| a.spec().target);
    let mut names: Vec<String> = Vec::new();
    for planned in instances {
        let name = match &planned.on {
            Some(value) if unknown(value) => Some(AT_RUN_TIME.to_owned()),
            Some(Value::String(name)) => Some(name.clone()),
            Some(value @ Value::Object(_)) => Some(item_label(value)),
            Some(_) => None,
            None => default_target(environment, target_kind),
        };
        if let Some(name) = name
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    names
}

/// Without `on:`: the only gateway of the action's type, or the only host.
fn default_target(environment: Option<&Environment>, kind: Option<TargetKind>) -> Option<String> {
    let environment = environment?;
    match kind? {
        TargetKind::None => None,
        TargetKind::Host => match environment.hosts.as_slice() {
            [only] => Some(only.name.clone()),
            _ => None,
        },
        TargetKind::Gateway(kind) => {
            let mut of_kind = environment
                .gateways
                .iter()
                .filter(|(_, g)| g.kind() == kind);
            match (of_kind.next(), of_kind.next()) {
                (Some((name, _)), None) => Some(name.value.clone()),
                _ => None,
            }
        }
    }
}

/// The gateways and hosts the steps touch, each with the numbers of its steps.
pub(super) fn touched(checked: &Checked, steps: &[DocStep]) -> (Vec<TargetRow>, Vec<TargetRow>) {
    let Some((_, environment)) = &checked.environment else {
        return (Vec::new(), Vec::new());
    };
    let numbers = |name: &str| -> Vec<String> {
        steps
            .iter()
            .filter(|s| s.on.iter().any(|n| n == name))
            .map(|s| s.number.clone())
            .collect()
    };
    let gateways = environment
        .gateways
        .iter()
        .map(|(name, gateway)| TargetRow {
            name: name.value.clone(),
            what: gateway_text(gateway),
            steps: numbers(&name.value),
        })
        .filter(|row| !row.steps.is_empty())
        .collect();
    let hosts = environment
        .hosts
        .iter()
        .map(|host| {
            let transport = match host.transport {
                Transport::Ssh => format!("ssh {}:{}", host.address, host.port),
                Transport::Local => "local (this machine)".to_owned(),
            };
            let groups: BTreeSet<&str> = host.groups.iter().map(String::as_str).collect();
            let groups = if groups.is_empty() {
                String::new()
            } else {
                format!(", groups {}", host.groups.join(", "))
            };
            TargetRow {
                name: host.name.clone(),
                what: format!("host, {transport}{groups}"),
                steps: numbers(&host.name),
            }
        })
        .filter(|row| !row.steps.is_empty())
        .collect();
    (gateways, hosts)
}

fn gateway_text(gateway: &Gateway) -> String {
    let (kind, url, twin) = match gateway {
        Gateway::Kong(kong) => ("kong", kong.admin_url.as_ref(), kong.twin.is_some()),
        Gateway::Layer7(layer7) => ("layer7", layer7.url.as_ref(), layer7.twin.is_some()),
    };
    match (url, twin) {
        (_, true) => format!("{kind} gateway, an in-process twin (emulator)"),
        (Some(url), false) => format!("{kind} gateway at {}", url.value),
        (None, false) => format!("{kind} gateway"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_secret_names_are_found_once() {
        let text = "token: \"{{ secret('KONG_TOKEN') }}\"\nx: {{ secret(\"L7_PASSWORD\") }} {{ secret('KONG_TOKEN') }} {{ secret(inputs.key) }}";
        assert_eq!(literal_secrets(text), vec!["KONG_TOKEN", "L7_PASSWORD"]);
    }
}
