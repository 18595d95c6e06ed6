//! A [`Document`] matched against the gateway into the desired [`State`]
//! ([`resolve`]): every entity gets its final id, every reference an `{"id": ...}`.
//!
//! An entity of the file is the gateway's entity with the same `id`, else the one
//! with the same natural key: name, username or custom_id, key, group within its
//! consumer, target within its upstream, plugin name within its scope (service, route,
//! consumer), certificate PEM, or an unnamed route's service, paths, hosts and methods.
//! A matched entity keeps the gateway's id; a new one keeps the file's id, or gets a
//! fresh one, so every create is a PUT by id whose effect can be undone even when the
//! answer is lost. The select tags are added to every entity that lacks them.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::file::{Document, FileError, Reference};
use super::state::{Entity, State};
use super::{rank, referenced_kind};
use crate::kong::KongEntityKind;
use crate::kong::client::{KongClient, KongError};
use crate::kong::kinds;
use crate::kong::target::with_default_port;

/// Why the file could not be matched against the gateway.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The file names something that cannot be (a missing parent, a duplicate).
    #[error(transparent)]
    File(#[from] FileError),
    /// Reading the gateway failed.
    #[error(transparent)]
    Kong(#[from] KongError),
}

/// The desired state of `document` against `current` (the gateway's entities in scope);
/// references outside the scope are looked up on the gateway through `client`.
pub async fn resolve(
    document: &Document,
    current: &State,
    client: &KongClient,
    select_tags: &[String],
) -> Result<State, ResolveError> {
    let mut order: Vec<usize> = (0..document.entries.len()).collect();
    order.sort_by_key(|&index| rank(document.entries[index].kind));
    let mut resolver = Resolver {
        document,
        current,
        client,
        desired: State::default(),
        final_ids: vec![None; document.entries.len()],
        file_ids: HashMap::new(),
        claimed: HashMap::new(),
        now: super::state::now(),
        current_keys: HashMap::new(),
        current_names: HashMap::new(),
        desired_names: HashMap::new(),
    };
    for (position, entity) in current.iter().enumerate() {
        for key in natural_keys(entity) {
            resolver
                .current_keys
                .entry((rank(entity.kind), key))
                .or_default()
                .push((position, entity));
        }
        add_names(&mut resolver.current_names, entity);
    }
    for index in order {
        resolver.entry(index, select_tags).await?;
    }
    Ok(resolver.desired)
}

/// The work of one resolution.
struct Resolver<'a> {
    document: &'a Document,
    current: &'a State,
    client: &'a KongClient,
    desired: State,
    /// The final id of each entry, once resolved.
    final_ids: Vec<Option<String>>,
    /// Ids the file gives, per kind, to the final id they became.
    file_ids: HashMap<(usize, String), String>,
    /// Final ids taken, per kind, to the entry that took them.
    claimed: HashMap<(usize, String), usize>,
    /// Unix time of the resolution (key-auth expiry).
    now: i64,
    /// Gateway entities per kind and natural key ([`natural_keys`]), with their positions.
    current_keys: HashMap<(usize, String), Vec<(usize, &'a Entity)>>,
    /// Gateway entities' ids per kind and id or key value ([`add_names`]).
    current_names: HashMap<(usize, String), String>,
    /// The same for the entities resolved so far.
    desired_names: HashMap<(usize, String), String>,
}

impl Resolver<'_> {
    /// Resolves entry `index` into the desired state.
    async fn entry(&mut self, index: usize, select_tags: &[String]) -> Result<(), ResolveError> {
        let entry = &self.document.entries[index];
        let kind = entry.kind;
        let mut fields = entry.fields.clone();
        for (field, reference) in &entry.references {
            let id = self.reference(index, field, reference).await?;
            fields.insert(field.clone(), json!({"id": id}));
        }
        normalize(kind, &mut fields).map_err(|message| self.document.error(index, message))?;
        add_tags(&mut fields, select_tags);
        if kind == KongEntityKind::KeyAuth
            && fields
                .get("ttl")
                .and_then(Value::as_i64)
                .is_some_and(|expiry| expiry <= self.now)
        {
            // Expired: Kong would not list it; creating it would need a ttl it cannot take.
            return Ok(());
        }
        let file_id = fields.get("id").and_then(Value::as_str).map(str::to_owned);
        let matched = self.matching(kind, &fields, file_id.as_deref());
        let id = matched
            .or(file_id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if let Some(&other) = self.claimed.get(&(rank(kind), id.clone())) {
            return Err(self
                .document
                .error(
                    index,
                    format!(
                        "the same {} as the entry at line {} (one entity named twice)",
                        kinds::kind(kind).label,
                        self.document.entries[other].line
                    ),
                )
                .into());
        }
        self.claimed.insert((rank(kind), id.clone()), index);
        if let Some(file_id) = file_id {
            self.file_ids.insert((rank(kind), file_id), id.clone());
        }
        fields.insert("id".to_owned(), Value::String(id.clone()));
        self.final_ids[index] = Some(id);
        let entity = Entity { kind, fields };
        add_names(&mut self.desired_names, &entity);
        self.desired.push(entity);
        Ok(())
    }

    /// The id a reference of entry `index` points at.
    async fn reference(
        &self,
        index: usize,
        field: &str,
        reference: &Reference,
    ) -> Result<String, ResolveError> {
        let kind = self.document.entries[index].kind;
        let named = match reference {
            Reference::Entry(parent) => {
                return self.final_ids[*parent].clone().ok_or_else(|| {
                    self.document
                        .error(index, format!("its {field} could not be resolved"))
                        .into()
                });
            }
            Reference::Named(named) => named,
        };
        let Some(target) = referenced_kind(kind, field) else {
            return Err(self
                .document
                .error(index, format!("`{field}` is not a reference"))
                .into());
        };
        let rank = rank(target);
        if let Some(id) = self.file_ids.get(&(rank, named.clone())) {
            return Ok(id.clone());
        }
        let key = (rank, named.clone());
        if let Some(id) = self
            .desired_names
            .get(&key)
            .or_else(|| self.current_names.get(&key))
        {
            return Ok(id.clone());
        }
        let path = kinds::kind(target).entity_path(None, named);
        if let Some(found) = self.client.find(&path).await?
            && let Some(id) = found.get("id").and_then(Value::as_str)
        {
            return Ok(id.to_owned());
        }
        Err(self
            .document
            .error(
                index,
                format!(
                    "its {field} `{named}` is neither in the file nor on the gateway ({}{path})",
                    self.client.base_url()
                ),
            )
            .into())
    }

    /// The id of the gateway entity this desired entity is, if any not already taken.
    fn matching(
        &self,
        kind: KongEntityKind,
        fields: &Map<String, Value>,
        file_id: Option<&str>,
    ) -> Option<String> {
        if let Some(id) = file_id
            && self.current.get(kind, id).is_some()
        {
            return Some(id.to_owned());
        }
        let wanted = Entity {
            kind,
            fields: fields.clone(),
        };
        natural_keys(&wanted)
            .into_iter()
            .filter_map(|key| self.current_keys.get(&(rank(kind), key)))
            .flatten()
            .filter(|(_, entity)| {
                !self
                    .claimed
                    .contains_key(&(rank(kind), entity.id().to_owned()))
            })
            .filter(|(_, entity)| same_natural_key(&wanted, entity))
            .min_by_key(|(position, _)| *position)
            .map(|(_, entity)| entity.id().to_owned())
    }
}

/// Records that `entity` is found by its id and by each of its key fields' values
/// (`service: billing`), unless an entity added before already is.
fn add_names(names: &mut HashMap<(usize, String), String>, entity: &Entity) {
    let kind = rank(entity.kind);
    let values = kinds::kind(entity.kind)
        .keys
        .iter()
        .filter_map(|key| entity.text(key))
        .chain([entity.id()]);
    for value in values {
        names
            .entry((kind, value.to_owned()))
            .or_insert_with(|| entity.id().to_owned());
    }
}

/// Texts under which an entity is indexed for [`same_natural_key`]: two entities with
/// the same natural key share at least one of them (so only those are compared).
fn natural_keys(entity: &Entity) -> Vec<String> {
    let field = |name: &str| {
        entity
            .fields
            .get(name)
            .map_or_else(String::new, Value::to_string)
    };
    let reference = |name: &str| entity.reference(name).unwrap_or_default().to_owned();
    match entity.kind {
        KongEntityKind::Plugin => vec![format!(
            "{}|{}|{}|{}",
            field("name"),
            reference("service"),
            reference("route"),
            reference("consumer")
        )],
        KongEntityKind::Target => vec![format!("{}|{}", field("target"), reference("upstream"))],
        KongEntityKind::Acl => vec![format!("{}|{}", field("group"), reference("consumer"))],
        KongEntityKind::Certificate | KongEntityKind::CaCertificate => entity
            .text("cert")
            .map(|pem| vec![pem.trim().to_owned()])
            .unwrap_or_default(),
        KongEntityKind::Route if entity.text("name").is_none() => vec![format!(
            "unnamed|{}|{}|{}|{}",
            reference("service"),
            field("paths"),
            field("hosts"),
            field("methods")
        )],
        kind => kinds::kind(kind)
            .keys
            .iter()
            .filter_map(|key| {
                entity
                    .fields
                    .get(*key)
                    .map(|value| format!("{key}={value}"))
            })
            .collect(),
    }
}

/// Whether two entities of one kind have the same natural key.
fn same_natural_key(wanted: &Entity, current: &Entity) -> bool {
    let same = |field: &str| wanted.fields.get(field) == current.fields.get(field);
    let same_reference = |field: &str| wanted.reference(field) == current.reference(field);
    match wanted.kind {
        KongEntityKind::Plugin => {
            same("name")
                && ["service", "route", "consumer"]
                    .into_iter()
                    .all(same_reference)
        }
        KongEntityKind::Target => same("target") && same_reference("upstream"),
        KongEntityKind::Acl => same("group") && same_reference("consumer"),
        KongEntityKind::Certificate | KongEntityKind::CaCertificate => {
            let pem = |entity: &Entity| entity.text("cert").map(str::trim).map(str::to_owned);
            pem(wanted).is_some() && pem(wanted) == pem(current)
        }
        KongEntityKind::Route if wanted.text("name").is_none() => {
            current.text("name").is_none()
                && same_reference("service")
                && ["paths", "hosts", "methods"].into_iter().all(same)
        }
        kind => kinds::kind(kind)
            .keys
            .iter()
            .any(|key| wanted.fields.get(*key).is_some() && same(key)),
    }
}

/// Kong's input shorthands, as Kong stores them: a service's `url`, a target's default port.
fn normalize(kind: KongEntityKind, fields: &mut Map<String, Value>) -> Result<(), String> {
    match kind {
        KongEntityKind::Target => {
            if let Some(target) = fields.get("target").and_then(Value::as_str) {
                let target = with_default_port(target);
                fields.insert("target".to_owned(), Value::String(target));
            }
        }
        KongEntityKind::Service => {
            if let Some(url) = fields.remove("url") {
                let url = url
                    .as_str()
                    .ok_or_else(|| "`url` must be a string".to_owned())?;
                for (field, value) in expand_url(url)? {
                    fields.insert(field.to_owned(), value);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A service `url` as the fields Kong stores: protocol, host, port and path.
fn expand_url(url: &str) -> Result<Vec<(&'static str, Value)>, String> {
    let invalid = || format!("`url` `{url}` is not scheme://host[:port][/path]");
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    };
    let (host, port) = match authority.rfind(':') {
        Some(at) if !authority[at..].contains(']') => {
            let port: u16 = authority[at + 1..].parse().map_err(|_| invalid())?;
            (&authority[..at], Some(port))
        }
        _ => (authority, None),
    };
    if host.is_empty() || scheme.is_empty() {
        return Err(invalid());
    }
    let scheme = scheme.to_ascii_lowercase();
    let port = port.unwrap_or(match scheme.as_str() {
        "https" | "grpcs" | "tls" => 443,
        _ => 80,
    });
    let mut fields = vec![
        ("protocol", Value::String(scheme)),
        ("host", Value::String(host.to_owned())),
        ("port", Value::from(port)),
    ];
    if let Some(path) = path {
        fields.push(("path", Value::String(path.to_owned())));
    }
    Ok(fields)
}

/// Adds each select tag the entity lacks to its `tags`.
fn add_tags(fields: &mut Map<String, Value>, select_tags: &[String]) {
    if select_tags.is_empty() {
        return;
    }
    let mut tags: Vec<Value> = fields
        .get("tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for tag in select_tags {
        if !tags.iter().any(|value| value.as_str() == Some(tag)) {
            tags.push(Value::String(tag.clone()));
        }
    }
    fields.insert("tags".to_owned(), Value::Array(tags));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_expand_like_kong() -> Result<(), String> {
        assert_eq!(
            expand_url("https://api.internal:8443/v1")?,
            vec![
                ("protocol", json!("https")),
                ("host", json!("api.internal")),
                ("port", json!(8443)),
                ("path", json!("/v1")),
            ]
        );
        assert_eq!(expand_url("http://a.test")?[2], ("port", json!(80)));
        assert_eq!(expand_url("https://a.test")?.len(), 3);
        assert!(expand_url("a.test").is_err());
        assert!(expand_url("http://a.test:x").is_err());
        Ok(())
    }

    #[test]
    fn entities_with_the_same_natural_key_share_an_index_text() {
        let entity = |kind, fields: Value| Entity {
            kind,
            fields: fields.as_object().cloned().unwrap_or_default(),
        };
        let pairs = [
            (
                entity(KongEntityKind::Consumer, json!({"custom_id": "A-1"})),
                entity(
                    KongEntityKind::Consumer,
                    json!({"username": "a", "custom_id": "A-1"}),
                ),
                true,
            ),
            (
                entity(
                    KongEntityKind::Route,
                    json!({"service": {"id": "s"}, "paths": ["/a"]}),
                ),
                entity(
                    KongEntityKind::Route,
                    json!({"service": {"id": "s"}, "paths": ["/a"]}),
                ),
                true,
            ),
            (
                entity(
                    KongEntityKind::Route,
                    json!({"service": {"id": "s"}, "paths": ["/a"]}),
                ),
                entity(
                    KongEntityKind::Route,
                    json!({"name": "r", "service": {"id": "s"}, "paths": ["/a"]}),
                ),
                false,
            ),
            (
                entity(
                    KongEntityKind::Target,
                    json!({"target": "a:1", "upstream": {"id": "u"}}),
                ),
                entity(
                    KongEntityKind::Target,
                    json!({"target": "a:1", "upstream": {"id": "u"}}),
                ),
                true,
            ),
            (
                entity(KongEntityKind::Certificate, json!({"cert": "PEM\n"})),
                entity(KongEntityKind::Certificate, json!({"cert": "PEM"})),
                true,
            ),
        ];
        for (wanted, current, same) in pairs {
            assert_eq!(same_natural_key(&wanted, &current), same, "{wanted:?}");
            let shared = natural_keys(&wanted)
                .iter()
                .any(|key| natural_keys(&current).contains(key));
            assert!(
                !same || shared,
                "{wanted:?} and {current:?} share no index text"
            );
        }
    }

    #[test]
    fn plugins_match_by_name_within_their_scope() {
        let plugin = |name: &str, service: &str| Entity {
            kind: KongEntityKind::Plugin,
            fields: json!({"name": name, "service": {"id": service}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        assert!(same_natural_key(
            &plugin("cors", "s1"),
            &plugin("cors", "s1")
        ));
        assert!(!same_natural_key(
            &plugin("cors", "s1"),
            &plugin("cors", "s2")
        ));
        assert!(!same_natural_key(
            &plugin("cors", "s1"),
            &plugin("acl", "s1")
        ));
    }
}
