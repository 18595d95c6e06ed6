//! Rules about the environment file and keys as written: change control and
//! transport security (TLS verification, host-key checking).

use std::sync::Arc;

use super::model::ChangeControl;
use super::{Finding, Subject, Trees};
use crate::node::{Node, NodeValue};
use crate::source::SourceFile;

/// The environment's `change:` requires what the policy requires.
pub(super) fn change_control(
    params: &ChangeControl,
    subject: &Subject<'_>,
    trees: &Trees,
) -> Vec<Finding> {
    let Some((file, environment)) = subject.environment else {
        return Vec::new();
    };
    let change = trees
        .environment
        .as_ref()
        .and_then(|root| root.get("change"));
    let span = |key: &str| {
        change
            .and_then(|c| c.get(key).map(|v| v.span))
            .or_else(|| {
                trees
                    .environment
                    .as_ref()
                    .and_then(|r| r.key_span("change"))
            })
            .unwrap_or(environment.name.span)
    };
    let mut out = Vec::new();
    let name = &environment.name.value;
    if params.require_change_id && !environment.change.require_change_id {
        out.push(Finding::new(
            file,
            span("require_change_id"),
            format!("environment `{name}` lets writes run without a change id"),
            "set `change: {require_change_id: true}` in the environment file",
        ));
    }
    if params.require_window && !environment.change.require_window {
        out.push(Finding::new(
            file,
            span("require_window"),
            format!("environment `{name}` lets writes run outside a change window"),
            "set `change: {require_window: true}` in the environment file",
        ));
    }
    out
}

/// No `tls: {insecure: true}` and no `strict_host_key_checking: false`, in the environment
/// file or in the playbook's step arguments.
pub(super) fn transport_security(subject: &Subject<'_>, trees: &Trees) -> Vec<Finding> {
    let mut out = Vec::new();
    if let (Some((file, _)), Some(root)) = (subject.environment, &trees.environment) {
        insecure_keys(file, root, None, &mut out);
    }
    if let Some(root) = &trees.playbook {
        insecure_keys(subject.file, root, None, &mut out);
    }
    out
}

fn insecure_keys(
    file: &Arc<SourceFile>,
    node: &Node,
    parent: Option<&str>,
    out: &mut Vec<Finding>,
) {
    match &node.value {
        NodeValue::Map(entries) => {
            for (key, value) in entries {
                let name = key.as_str();
                match (name, &value.value) {
                    (Some("insecure"), NodeValue::Bool(true)) if parent == Some("tls") => {
                        out.push(Finding::new(
                            file,
                            key.span.join(value.span),
                            "TLS verification is turned off (`insecure: true`)".into(),
                            "remove `insecure: true` and give the server's CA with `tls: {ca: FILE}`",
                        ));
                    }
                    (Some("strict_host_key_checking"), NodeValue::Bool(false)) => {
                        out.push(Finding::new(
                            file,
                            key.span.join(value.span),
                            "SSH host-key checking is turned off (`strict_host_key_checking: false`)".into(),
                            "remove it and give the hosts' keys with `ssh: {known_hosts: FILE}`",
                        ));
                    }
                    _ => insecure_keys(file, value, name, out),
                }
            }
        }
        NodeValue::Seq(items) => {
            for item in items {
                insecure_keys(file, item, parent, out);
            }
        }
        _ => {}
    }
}
