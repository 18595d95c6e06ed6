//! Finding the entity a `kong.entity` step names, and the ids its references point at.
//!
//! Every identifier in `match` is looked up (`id` and keys by path, a secret key such as
//! a key-auth `key` by listing the parent's credentials so that it never appears in a
//! URL, a key shaped like a UUID by listing too since Kong reads it as an id in a path,
//! `custom_id` with `?custom_id=`, a plugin by `name` in its exact scope); they must all
//! find the same entity, or all find none.

use serde_json::{Map, Value, json};

use super::super::client::{KongClient, KongError, is_uuid, segment};
use super::super::kinds::{self, Kind, referenced_kind};
use super::request::{Request, invalid, reference_text};
use runsheet_engine::ActionError;

/// A reference field's value, resolved against the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reference {
    /// Explicitly no entity (`null`).
    Null,
    /// The id Kong stores.
    Id(String),
    /// Names nothing on the gateway (yet): sent as given (`{"name": ...}`) so that Kong says so.
    Unresolved(Value),
}

impl Reference {
    /// The value Kong takes and stores: `null`, `{"id": ...}` or the unresolved reference.
    pub fn to_value(&self) -> Value {
        match self {
            Reference::Null => Value::Null,
            Reference::Id(id) => json!({"id": id}),
            Reference::Unresolved(value) => value.clone(),
        }
    }
}

/// Resolves a reference written as a name or id, `{id: ...}` or `{name: ...}`.
pub(super) async fn resolve(
    client: &KongClient,
    kind: &Kind,
    field: &str,
    value: &Value,
) -> Result<Reference, ActionError> {
    if value.is_null() {
        return Ok(Reference::Null);
    }
    if let Some(id) = value.get("id").and_then(Value::as_str) {
        return Ok(Reference::Id(id.to_owned()));
    }
    let (Some(text), Some(target)) = (reference_text(value), referenced_kind(field)) else {
        return Err(invalid(format!(
            "`{field}` of a {} must be a name or id, `{{id: ...}}` or `{{name: ...}}`",
            kind.label
        )));
    };
    let target = kinds::kind(target);
    let path = target.entity_path(None, &text);
    match client.find(&path).await {
        Ok(Some(found)) => Ok(found.get("id").and_then(Value::as_str).map_or_else(
            || Reference::Unresolved(json!({"name": text})),
            |id| Reference::Id(id.to_owned()),
        )),
        Ok(None) if is_uuid(&text) => Ok(Reference::Unresolved(json!({"id": text}))),
        Ok(None) => Ok(Reference::Unresolved(json!({"name": text}))),
        Err(error) => Err(read_failure(target.label, &text, error)),
    }
}

/// Resolves every reference field of `fields` (not the parent: it is in the path).
pub(super) async fn resolve_all(
    client: &KongClient,
    kind: &Kind,
    fields: &Map<String, Value>,
) -> Result<Map<String, Value>, ActionError> {
    let parent = kind.parent.map(|parent| parent.field());
    let mut resolved = Map::new();
    for (field, value) in fields {
        let is_reference = kind.foreign.contains(&field.as_str()) && parent != Some(field.as_str());
        let value = if is_reference {
            resolve(client, kind, field, value).await?.to_value()
        } else {
            value.clone()
        };
        resolved.insert(field.clone(), value);
    }
    Ok(resolved)
}

/// The entity the request names as Kong stores it (`None`: absent).
pub(super) async fn find(
    client: &KongClient,
    request: &Request,
) -> Result<Option<Value>, ActionError> {
    let kind = request.kind;
    let parent = request.parent.as_deref();
    let mut found: Vec<(String, Option<Value>)> = Vec::new();
    for (field, value) in &request.identity {
        let Some(text) = value.as_str() else {
            continue;
        };
        let is_scoped_name = kind.scoped_name().is_some_and(|(name, _)| name == field);
        let is_scope = kind
            .scoped_name()
            .is_some_and(|(_, scope)| scope.contains(&field.as_str()));
        if is_scope {
            // Part of the plugin's scope, read with its name.
            continue;
        }
        let how = if kind.is_secret(field) {
            format!("`{field}` (secret)")
        } else {
            format!("`{field}: {text}`")
        };
        let entity = if field == "id" {
            by_path(client, request, &kind.entity_path(parent, text)).await?
        } else if is_scoped_name {
            in_scope(client, request, text).await?
        } else if kind.is_secret(field) || !kind.is_endpoint_key(field) || is_uuid(text) {
            // A key shaped like a UUID would be read by Kong as an id in a path (§2.1),
            // reaching the entity with that id instead: it is looked up by listing.
            by_listing(client, request, field, text).await?
        } else {
            by_path(client, request, &kind.entity_path(parent, text)).await?
        };
        found.push((how, entity));
    }
    reconcile(request, found)
}

/// GET one entity path; `None` on 404.
async fn by_path(
    client: &KongClient,
    request: &Request,
    path: &str,
) -> Result<Option<Value>, ActionError> {
    client
        .find(path)
        .await
        .map_err(|error| read_failure(request.kind.label, &request.describe(), error))
}

/// The entity whose `field` is `value`, from a listing of the (parent's) collection.
async fn by_listing(
    client: &KongClient,
    request: &Request,
    field: &str,
    value: &str,
) -> Result<Option<Value>, ActionError> {
    let kind = request.kind;
    let mut path = kind.collection_path(request.parent.as_deref());
    if !kind.is_secret(field) {
        path.push_str(&format!("?{field}={}", segment(value)));
    }
    let listed = match client.list(&path).await {
        Ok(listed) => listed,
        // The parent does not exist: neither does the entity.
        Err(error) if error.is_not_found() && request.parent.is_some() => return Ok(None),
        Err(error) => return Err(read_failure(kind.label, &request.describe(), error)),
    };
    let mut matching = listed
        .into_iter()
        .filter(|entity| entity.get(field).and_then(Value::as_str) == Some(value));
    let first = matching.next();
    if matching.next().is_some() {
        return Err(invalid(format!(
            "`match` of {} finds more than one {}: add `id`",
            request.describe(),
            kind.label
        )));
    }
    Ok(first)
}

/// The plugin named `name` in exactly the scope `match` gives (no scope: global).
async fn in_scope(
    client: &KongClient,
    request: &Request,
    name: &str,
) -> Result<Option<Value>, ActionError> {
    let kind = request.kind;
    let scope_fields = kind
        .scoped_name()
        .map(|(_, scope)| scope)
        .unwrap_or_default();
    let mut scope: Vec<(&str, Option<String>)> = Vec::new();
    for field in scope_fields {
        let value = request.identity.get(*field).unwrap_or(&Value::Null);
        match resolve(client, kind, field, value).await? {
            Reference::Null => scope.push((field, None)),
            Reference::Id(id) => scope.push((field, Some(id))),
            // The scope names nothing: no plugin can be there.
            Reference::Unresolved(_) => return Ok(None),
        }
    }
    // The narrowest listing: the last scoped reference's nested plugins, else all plugins.
    let path = scope
        .iter()
        .rev()
        .find_map(|(field, id)| {
            let id = id.as_deref()?;
            let owner = kinds::kind(referenced_kind(field)?);
            Some(format!(
                "{}/{}",
                owner.entity_path(None, id),
                kind.collection
            ))
        })
        .unwrap_or_else(|| kind.collection_path(None));
    let listed = match client.list(&path).await {
        Ok(listed) => listed,
        // The scope's entity (given by id) does not exist: no plugin can be on it.
        Err(error) if error.is_not_found() => return Ok(None),
        Err(error) => return Err(read_failure(kind.label, &request.describe(), error)),
    };
    let mut matching = listed
        .into_iter()
        .filter(|plugin| in_exact_scope(plugin, name, &scope));
    let first = matching.next();
    if matching.next().is_some() {
        return Err(invalid(format!(
            "`match` of {} finds more than one {}: add `id`",
            request.describe(),
            kind.label
        )));
    }
    Ok(first)
}

/// Scope fields of plugins that `match` cannot give (Enterprise's `consumer_group`): a
/// plugin scoped by one is in no scope `match` names.
const UNMATCHED_SCOPES: &[&str] = &["consumer_group"];

/// Whether `plugin` is named `name` and scoped by exactly `scope` (field, id or none).
fn in_exact_scope(plugin: &Value, name: &str, scope: &[(&str, Option<String>)]) -> bool {
    let id_of = |field: &str| {
        plugin
            .get(field)
            .and_then(|reference| reference.get("id"))
            .and_then(Value::as_str)
    };
    plugin.get("name").and_then(Value::as_str) == Some(name)
        && scope
            .iter()
            .all(|(field, id)| id_of(field) == id.as_deref())
        && UNMATCHED_SCOPES
            .iter()
            .all(|field| plugin.get(*field).is_none_or(Value::is_null))
}

/// The one entity every identifier found, or an error saying which found what.
fn reconcile(
    request: &Request,
    found: Vec<(String, Option<Value>)>,
) -> Result<Option<Value>, ActionError> {
    let id_of = |entity: &Value| entity.get("id").and_then(Value::as_str).map(str::to_owned);
    let ids: Vec<Option<String>> = found
        .iter()
        .map(|(_, entity)| entity.as_ref().and_then(id_of))
        .collect();
    if ids.iter().all(Option::is_none) {
        return Ok(None);
    }
    if ids.windows(2).all(|pair| pair[0] == pair[1]) {
        return Ok(found.into_iter().find_map(|(_, entity)| entity));
    }
    let label = request.kind.label;
    let findings: Vec<String> = found
        .iter()
        .zip(&ids)
        .map(|((how, _), id)| match id {
            Some(id) => format!("{how} finds {label} {id}"),
            None => format!("{how} finds none"),
        })
        .collect();
    Err(invalid(format!(
        "`match` of {} is ambiguous: {}; give identifiers of one {label}",
        request.describe(),
        findings.join(", ")
    )))
}

/// A read that failed, naming what was read.
fn read_failure(label: &str, what: &str, error: KongError) -> ActionError {
    match ActionError::from(error) {
        ActionError::Failed { message } => {
            let what = if what.starts_with(label) {
                what.to_owned()
            } else {
                format!("{label} {what}")
            };
            ActionError::failed(format!("read {what}: {message}"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_scoped_by_a_consumer_group_is_not_the_global_one() {
        let global: Vec<(&str, Option<String>)> =
            vec![("service", None), ("route", None), ("consumer", None)];
        let plugin = |group: Value| {
            json!({"name": "rate-limiting", "service": null, "route": null,
                "consumer": null, "consumer_group": group})
        };
        assert!(in_exact_scope(
            &plugin(Value::Null),
            "rate-limiting",
            &global
        ));
        assert!(!in_exact_scope(
            &plugin(json!({"id": "g1"})),
            "rate-limiting",
            &global
        ));
        assert!(!in_exact_scope(&plugin(Value::Null), "cors", &global));
        let on_service: Vec<(&str, Option<String>)> = vec![
            ("service", Some("s1".to_owned())),
            ("route", None),
            ("consumer", None),
        ];
        let scoped =
            json!({"name": "cors", "service": {"id": "s1"}, "route": null, "consumer": null});
        assert!(in_exact_scope(&scoped, "cors", &on_service));
        assert!(!in_exact_scope(&scoped, "cors", &global));
    }
}
