//! A [`State`] written as a decK-style document ([`render`]): children nested under
//! their parent when the parent is in the state (routes and plugins under services,
//! plugins under routes, credentials and plugins under consumers, targets under
//! upstreams, SNIs under certificates), at top level with the parent's id otherwise.
//!
//! Entities keep their ids and sort by name, then id; fields are in alphabetical
//! order, nested lists last; so two renderings of one state are byte-identical.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::state::{Entity, State, sorted};
use super::{FORMAT_VERSION, children, parent_field, rank, table};
use crate::kong::KongEntityKind;

/// Top-level tables in the order a document lists them.
const TOP_LEVEL: &[KongEntityKind] = &[
    KongEntityKind::Service,
    KongEntityKind::Route,
    KongEntityKind::Consumer,
    KongEntityKind::Plugin,
    KongEntityKind::Upstream,
    KongEntityKind::Target,
    KongEntityKind::Certificate,
    KongEntityKind::Sni,
    KongEntityKind::CaCertificate,
    KongEntityKind::KeyAuth,
    KongEntityKind::Jwt,
    KongEntityKind::Acl,
    KongEntityKind::BasicAuth,
    KongEntityKind::HmacAuth,
];

/// Parent kinds a child may nest under, most specific first.
fn homes(kind: KongEntityKind) -> &'static [KongEntityKind] {
    match kind {
        KongEntityKind::Route => &[KongEntityKind::Service],
        KongEntityKind::Plugin => &[
            KongEntityKind::Route,
            KongEntityKind::Service,
            KongEntityKind::Consumer,
        ],
        KongEntityKind::Target => &[KongEntityKind::Upstream],
        KongEntityKind::Sni => &[KongEntityKind::Certificate],
        KongEntityKind::KeyAuth
        | KongEntityKind::Jwt
        | KongEntityKind::Acl
        | KongEntityKind::BasicAuth
        | KongEntityKind::HmacAuth => &[KongEntityKind::Consumer],
        _ => &[],
    }
}

/// The parent an entity nests under in `state`: its kind and id.
fn home<'a>(state: &State, entity: &'a Entity) -> Option<(KongEntityKind, &'a str)> {
    homes(entity.kind).iter().find_map(|parent| {
        let id = entity.reference(parent_field(*parent))?;
        state.get(*parent, id).map(|_| (*parent, id))
    })
}

/// The decK document of `state`; secrets masked unless `include_credentials`.
pub fn render(state: &State, select_tags: &[String], include_credentials: bool) -> Value {
    let mut nested: HashMap<(usize, String), Vec<&Entity>> = HashMap::new();
    let mut top: Vec<&Entity> = Vec::new();
    for entity in state.iter() {
        match home(state, entity) {
            Some((kind, id)) => nested
                .entry((rank(kind), id.to_owned()))
                .or_default()
                .push(entity),
            None => top.push(entity),
        }
    }
    let writer = Writer {
        nested,
        include_credentials,
    };
    let mut document = Map::new();
    document.insert("_format_version".to_owned(), json!(FORMAT_VERSION));
    if !select_tags.is_empty() {
        document.insert("_info".to_owned(), json!({"select_tags": select_tags}));
    }
    for kind in TOP_LEVEL {
        let entities: Vec<&Entity> = top.iter().copied().filter(|e| e.kind == *kind).collect();
        if !entities.is_empty() {
            document.insert(table(*kind).to_owned(), writer.list(entities, None));
        }
    }
    Value::Object(document)
}

/// Writes entities with their nested children.
struct Writer<'a> {
    nested: HashMap<(usize, String), Vec<&'a Entity>>,
    include_credentials: bool,
}

impl Writer<'_> {
    /// A sorted list of entities, nested under a parent of kind `under` when given.
    fn list(&self, mut entities: Vec<&Entity>, under: Option<KongEntityKind>) -> Value {
        entities.sort_by_key(|entity| entity.sort_key());
        Value::Array(
            entities
                .into_iter()
                .map(|entity| self.entity(entity, under))
                .collect(),
        )
    }

    /// One entity: sorted fields, references as plain ids, then its children.
    fn entity(&self, entity: &Entity, under: Option<KongEntityKind>) -> Value {
        let fields = if self.include_credentials {
            entity.fields.clone()
        } else {
            entity.masked()
        };
        let mut keys: Vec<&String> = fields.keys().collect();
        keys.sort();
        let mut out = Map::new();
        for key in keys {
            if under.is_some_and(|parent| parent_field(parent) == key) {
                continue;
            }
            let value = &fields[key];
            let value = if entity.entry().foreign.contains(&key.as_str()) {
                value.get("id").cloned().unwrap_or_else(|| value.clone())
            } else {
                sorted(value)
            };
            out.insert(key.clone(), value);
        }
        if let Some(children_of) = self
            .nested
            .get(&(rank(entity.kind), entity.id().to_owned()))
        {
            for kind in children(entity.kind) {
                let of_kind: Vec<&Entity> = children_of
                    .iter()
                    .copied()
                    .filter(|child| child.kind == *kind)
                    .collect();
                if !of_kind.is_empty() {
                    out.insert(
                        table(*kind).to_owned(),
                        self.list(of_kind, Some(entity.kind)),
                    );
                }
            }
        }
        Value::Object(out)
    }
}
