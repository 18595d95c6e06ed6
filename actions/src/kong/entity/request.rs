//! The checked arguments of `kong.entity` ([`Request`]): the kind's table entry, the
//! parent of a nested kind, the fields of `match` that identify the entity, and `spec`.
//!
//! Everything here is checked before the gateway is read, so a `match` that cannot
//! name one entity fails as invalid arguments without a request.

use runsheet_engine::ActionError;
use serde_json::{Map, Value};

use super::super::kinds::{self, GENERATED, Kind};
use super::super::target::with_default_port;
use super::super::{KongEntityArguments, KongEntityKind};
use crate::arguments::{self, Presence};

/// The action's name, in errors.
pub(super) const ACTION: &str = "kong.entity";

/// What the step asks for, checked.
#[derive(Debug, Clone)]
pub(super) struct Request {
    /// The kind's table entry.
    pub kind: &'static Kind,
    /// Present or absent.
    pub state: Presence,
    /// The parent's name or id, for nested kinds (`consumer: alice`).
    pub parent: Option<String>,
    /// The fields of `match` besides the parent: `id`, keys, a plugin's `name` and scope.
    pub identity: Map<String, Value>,
    /// The fields wanted, as given (targets with Kong's default port).
    pub spec: Map<String, Value>,
}

impl Request {
    /// Reads and checks the rendered arguments.
    pub fn parse(arguments: Value) -> Result<Self, ActionError> {
        let arguments: KongEntityArguments = arguments::parse(ACTION, arguments)?;
        let kind = kinds::kind(arguments.kind);
        let mut identity = arguments.r#match;
        let parent = match kind.parent {
            Some(parent) => {
                let value = identity.shift_remove(parent.field());
                let Some(text) = value.as_ref().and_then(reference_text) else {
                    return Err(invalid(format!(
                        "`match` of a {} needs its {}: give {}",
                        kind.label,
                        parent.field(),
                        what_identifies(kind)
                    )));
                };
                Some(text)
            }
            None => None,
        };
        check_identity(kind, &identity)?;
        let mut spec = arguments.spec.unwrap_or_default();
        check_spec(kind, &spec)?;
        if kind.kind == KongEntityKind::Target {
            for fields in [&mut identity, &mut spec] {
                if let Some(Value::String(target)) = fields.get_mut("target") {
                    *target = with_default_port(target);
                }
            }
        }
        Ok(Self {
            kind,
            state: arguments.state,
            parent,
            identity,
            spec,
        })
    }

    /// The entity in messages: `service orders`, `key-auth credential of consumer alice`,
    /// `plugin rate-limiting on service orders`, `global plugin cors`; never a secret.
    pub fn describe(&self) -> String {
        let label = self.kind.label;
        let mut text = if let Some((name_field, scope)) = self.kind.scoped_name()
            && let Some(name) = self.identity.get(name_field).and_then(Value::as_str)
        {
            let scoped: Vec<String> = scope
                .iter()
                .filter_map(|field| {
                    let value = self.identity.get(*field)?;
                    reference_text(value).map(|text| format!("{field} {text}"))
                })
                .collect();
            if scoped.is_empty() {
                format!("global {label} {name}")
            } else {
                format!("{label} {name} on {}", scoped.join(", "))
            }
        } else {
            let named = self
                .kind
                .keys
                .iter()
                .filter(|key| !self.kind.is_secret(key))
                .find_map(|key| self.identity.get(*key).and_then(Value::as_str))
                .or_else(|| self.identity.get("id").and_then(Value::as_str));
            match named {
                Some(name) => format!("{label} {name}"),
                None => label.to_owned(),
            }
        };
        if let (Some(parent), Some(of)) = (&self.parent, self.kind.parent) {
            text.push_str(&format!(" of {} {parent}", of.field()));
        }
        text
    }

    /// The id given in `match`, if any.
    pub fn id(&self) -> Option<&str> {
        self.identity.get("id").and_then(Value::as_str)
    }

    /// The secret values the step was given (a credential's key, a certificate's key).
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = secret_values(self.kind, &self.identity);
        secrets.extend(secret_values(self.kind, &self.spec));
        secrets
    }
}

/// The values of `kind`'s secret fields in `fields`, and those inside a plugin's `config`.
pub(super) fn secret_values(kind: &Kind, fields: &Map<String, Value>) -> Vec<String> {
    let mut values: Vec<String> = kind
        .secrets
        .iter()
        .filter_map(|field| fields.get(*field).and_then(Value::as_str))
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(config) = fields.get("config") {
        values.extend(kinds::sensitive_config_values(config));
    }
    values
}

/// A reference written as a name or id, `{id: ...}` or `{name: ...}`: its text.
pub(super) fn reference_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Object(object) if object.len() == 1 => object
            .get("id")
            .or_else(|| object.get("name"))
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned),
        _ => None,
    }
}

/// What identifies an entity of `kind`, for messages.
fn what_identifies(kind: &Kind) -> String {
    let mut text = String::new();
    if let Some(parent) = kind.parent {
        text.push_str(&format!("`{}` (name or id) and ", parent.field()));
    }
    if let Some((name, scope)) = kind.scoped_name() {
        let scope: Vec<String> = scope.iter().map(|field| format!("`{field}`")).collect();
        text.push_str(&format!(
            "`id`, or `{name}` with its scope ({}; none for a global {})",
            scope.join(", "),
            kind.label
        ));
        return text;
    }
    if kind.keys.is_empty() {
        text.push_str(&format!("`id` (a {} has no name to match by)", kind.label));
        return text;
    }
    let mut names: Vec<String> = vec!["`id`".to_owned()];
    names.extend(kind.keys.iter().map(|key| format!("`{key}`")));
    let last = names.pop().unwrap_or_default();
    text.push_str(&format!("{} or {last}", names.join(", ")));
    text
}

/// Checks that `match` (without the parent) names an entity of `kind` in a way Kong can find.
fn check_identity(kind: &Kind, identity: &Map<String, Value>) -> Result<(), ActionError> {
    if identity.is_empty() {
        return Err(invalid(format!(
            "`match` of a {} names nothing: give {}",
            kind.label,
            what_identifies(kind)
        )));
    }
    let scoped = kind.scoped_name();
    for (field, value) in identity {
        let is_scope = scoped.is_some_and(|(_, scope)| scope.contains(&field.as_str()));
        let is_name = scoped.is_some_and(|(name, _)| name == field);
        let is_key = field == "id" || kind.keys.contains(&field.as_str()) || is_name;
        if !is_key && !is_scope {
            return Err(invalid(format!(
                "`match` of a {} cannot use `{field}`: give {}",
                kind.label,
                what_identifies(kind)
            )));
        }
        let fits = if is_scope {
            value.is_null() || reference_text(value).is_some()
        } else {
            value.as_str().is_some_and(|text| !text.is_empty())
        };
        if !fits {
            let shape = if is_scope {
                "a name or id, `{id: ...}`, `{name: ...}` or null"
            } else {
                "a non-empty string"
            };
            return Err(invalid(format!(
                "`match.{field}` of a {} must be {shape}",
                kind.label
            )));
        }
    }
    if let Some((name, _)) = scoped
        && !identity.contains_key("id")
        && !identity.contains_key(name)
    {
        return Err(invalid(format!(
            "`match` of a {} needs `id` or `{name}`: give {}",
            kind.label,
            what_identifies(kind)
        )));
    }
    Ok(())
}

/// Checks that `spec` sets only fields Kong lets a client write.
fn check_spec(kind: &Kind, spec: &Map<String, Value>) -> Result<(), ActionError> {
    for field in spec.keys() {
        if field == "id" {
            return Err(invalid(format!(
                "`spec` of a {} cannot set `id`: give it in `match`",
                kind.label
            )));
        }
        if GENERATED.contains(&field.as_str()) {
            return Err(invalid(format!(
                "`spec` of a {} cannot set `{field}`: Kong sets it",
                kind.label
            )));
        }
        if let Some(parent) = kind.parent
            && parent.field() == field
        {
            return Err(invalid(format!(
                "`spec` of a {} cannot set `{field}`: give it in `match`",
                kind.label
            )));
        }
    }
    Ok(())
}

/// An invalid-arguments error of this action.
pub(super) fn invalid(message: String) -> ActionError {
    ActionError::InvalidArguments {
        action: ACTION,
        message,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(arguments: Value) -> Result<Request, ActionError> {
        Request::parse(arguments)
    }

    fn message(outcome: Result<Request, ActionError>) -> String {
        outcome.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn describes_entities_without_their_secrets() -> Result<(), ActionError> {
        let service = parse(json!({"kind": "service", "match": {"name": "orders"}}))?;
        assert_eq!(service.describe(), "service orders");
        let key = parse(
            json!({"kind": "key_auth", "match": {"consumer": "alice", "key": "s3cret-key"}}),
        )?;
        assert_eq!(key.describe(), "key-auth credential of consumer alice");
        assert_eq!(key.secrets(), ["s3cret-key"]);
        let plugin = parse(json!({"kind": "plugin",
            "match": {"name": "rate-limiting", "service": "orders", "route": {"name": "r1"}}}))?;
        assert_eq!(
            plugin.describe(),
            "plugin rate-limiting on service orders, route r1"
        );
        let global = parse(json!({"kind": "plugin", "match": {"name": "cors"}}))?;
        assert_eq!(global.describe(), "global plugin cors");
        let target =
            parse(json!({"kind": "target", "match": {"upstream": "core", "target": "10.0.0.1"}}))?;
        assert_eq!(target.describe(), "target 10.0.0.1:8000 of upstream core");
        Ok(())
    }

    #[test]
    fn bad_matches_say_what_to_give() {
        assert_eq!(
            message(parse(json!({"kind": "service", "match": {}}))),
            "invalid arguments for `kong.entity`: `match` of a service names nothing: give `id` or `name`"
        );
        assert_eq!(
            message(parse(
                json!({"kind": "certificate", "match": {"name": "a.test"}})
            )),
            "invalid arguments for `kong.entity`: `match` of a certificate cannot use `name`: give `id` (a certificate has no name to match by)"
        );
        assert_eq!(
            message(parse(json!({"kind": "key_auth", "match": {"key": "k"}}))),
            "invalid arguments for `kong.entity`: `match` of a key-auth credential needs its consumer: give `consumer` (name or id) and `id` or `key`"
        );
        assert!(
            message(parse(
                json!({"kind": "plugin", "match": {"service": "orders"}})
            ))
            .contains("needs `id` or `name`")
        );
        assert!(
            message(parse(
                json!({"kind": "consumer", "match": {"username": ""}})
            ))
            .contains("`match.username` of a consumer must be a non-empty string")
        );
        assert!(
            message(parse(
                json!({"kind": "consumer", "match": {"username": "a"}, "spec": {"id": "x"}})
            ))
            .contains("cannot set `id`")
        );
        assert!(
            message(parse(json!({"kind": "acl", "match": {"consumer": "a", "group": "g"}, "spec": {"consumer": "b"}})))
                .contains("cannot set `consumer`: give it in `match`")
        );
    }
}
