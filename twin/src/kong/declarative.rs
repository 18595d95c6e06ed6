//! Declarative configuration (reference §10): a decK-style or `kong config` file loaded into a
//! fresh store, for `POST /config` and the twin's `--seed`.
//!
//! The file's entity keys are Kong's table names; children may be nested under their parent
//! (`services[].routes[]`) or refer to it by name or id as a plain string. Missing ids are
//! derived from the entity's content, so loading the same file twice gives the same ids.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::error::DaoError;
use super::schema::{self, Registry};
use super::store::{Entity, ListFilter, Store};

/// Accepted `_format_version` values.
const FORMAT_VERSIONS: [&str; 3] = ["1.1", "2.1", "3.0"];

/// Top-level keys that are not entity tables.
const META_KEYS: [&str; 6] = [
    "_format_version",
    "_transform",
    "_comment",
    "_ignore",
    "_workspace",
    "_info",
];

/// Table names whose collection (URL name) differs.
const TABLES: [(&str, &str); 6] = [
    ("keyauth_credentials", "key-auths"),
    ("jwt_secrets", "jwts"),
    ("basicauth_credentials", "basic-auths"),
    ("hmacauth_credentials", "hmac-auths"),
    ("oauth2_credentials", "oauth2"),
    ("mtls_auth_credentials", "mtls-auths"),
];

/// Namespace of the ids derived for entities the file gives without one.
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6b0e_55a2_4c1d_4f6e_9d1b_2f7a_8c3e_5d41);

/// Why a declarative configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeclarativeError {
    /// Nothing to load.
    #[error("expected a declarative configuration")]
    Empty,
    /// Unparsable or invalid: code 14 with `fields` mirroring the file.
    #[error("declarative config is invalid")]
    Invalid {
        /// Errors placed where they occur in the file.
        fields: Map<String, Value>,
    },
}

impl DeclarativeError {
    /// The JSON body Kong answers with (HTTP 400).
    pub fn body(&self) -> Value {
        match self {
            Self::Empty => json!({"message": "expected a declarative configuration"}),
            Self::Invalid { fields } => json!({
                "code": 14,
                "name": "invalid declarative configuration",
                "message": format!("declarative config is invalid: {}", Value::Object(fields.clone())),
                "fields": fields,
            }),
        }
    }

    /// A single error at the top of the file.
    fn top(key: &str, message: impl Into<String>) -> Self {
        let mut fields = Map::new();
        fields.insert(key.to_owned(), Value::String(message.into()));
        Self::Invalid { fields }
    }
}

/// Parses YAML or JSON text into a configuration value.
pub fn parse(text: &str) -> Result<Value, DeclarativeError> {
    if text.trim().is_empty() {
        return Err(DeclarativeError::Empty);
    }
    let value: Value = serde_json::from_str(text).or_else(|_| {
        serde_saphyr::from_str(text)
            .map_err(|error| DeclarativeError::top("error", format!("failed parsing: {error}")))
    })?;
    if value.is_null() {
        return Err(DeclarativeError::Empty);
    }
    Ok(value)
}

/// The collection (URL name) of a declarative table name.
fn collection_of(table: &str) -> &str {
    TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .map_or(table, |(_, collection)| collection)
}

/// The declarative table name of a collection.
pub fn table_of(collection: &str) -> &str {
    TABLES
        .iter()
        .find(|(_, name)| *name == collection)
        .map_or(collection, |(table, _)| table)
}

/// A step of the path to an entity in the file, for error placement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

/// An entity read from the file, ready to insert.
#[derive(Debug)]
struct Pending {
    /// Target collection.
    collection: &'static str,
    /// The body as the Admin API takes it (children removed, parent references set).
    body: Entity,
    /// Where it is in the file.
    path: Vec<Segment>,
}

/// Loads `config` into a new store over `registry`, as of `now` (Unix seconds).
pub fn load(registry: &Registry, config: &Value, now: i64) -> Result<Store, DeclarativeError> {
    let Value::Object(document) = config else {
        return Err(DeclarativeError::top(
            "error",
            "expected a mapping at the top of the file",
        ));
    };
    check_format_version(document)?;
    let mut reader = Reader {
        registry,
        pending: Vec::new(),
        errors: Map::new(),
    };
    for (key, value) in document {
        if META_KEYS.contains(&key.as_str()) {
            continue;
        }
        let collection = collection_of(key);
        // Every table the flat export writes loads back, targets included: a top-level
        // row names its parent (`upstream`) itself.
        match registry.get(collection) {
            Some(schema) => {
                reader.sequence(schema.collection, value, &[Segment::Key(key.clone())], None)
            }
            None => reader.error(&[Segment::Key(key.clone())], json!("unknown field")),
        }
    }
    let Reader {
        pending,
        mut errors,
        ..
    } = reader;
    let mut store = Store::new(registry.clone());
    let mut seen: HashSet<(&str, String)> = HashSet::new();
    for pending in in_dependency_order(registry, pending) {
        if let Some(message) = duplicate(registry, &pending, &mut seen) {
            place(&mut errors, &pending.path, json!(message));
            continue;
        }
        if let Err(error) = store.insert(pending.collection, pending.body, now) {
            place(&mut errors, &pending.path, error_fields(&error));
        }
    }
    if errors.is_empty() {
        Ok(store)
    } else {
        Err(DeclarativeError::Invalid { fields: errors })
    }
}

/// Refuses a missing or unknown `_format_version`.
fn check_format_version(document: &Map<String, Value>) -> Result<(), DeclarativeError> {
    match document.get("_format_version") {
        None => Err(DeclarativeError::top(
            "_format_version",
            "required field missing",
        )),
        Some(Value::String(version)) if FORMAT_VERSIONS.contains(&version.as_str()) => Ok(()),
        Some(_) => Err(DeclarativeError::top(
            "_format_version",
            format!("expected one of: {}", FORMAT_VERSIONS.join(", ")),
        )),
    }
}

/// Walks the file, collecting entities to insert and structural errors.
struct Reader<'a> {
    /// The schemas served.
    registry: &'a Registry,
    /// Entities in file order.
    pending: Vec<Pending>,
    /// Errors placed by path.
    errors: Map<String, Value>,
}

impl Reader<'_> {
    /// Records `message` at `path`.
    fn error(&mut self, path: &[Segment], message: Value) {
        place(&mut self.errors, path, message);
    }

    /// Reads a sequence of `collection` entities, children of `parent` when nested.
    fn sequence(
        &mut self,
        collection: &'static str,
        value: &Value,
        path: &[Segment],
        parent: Option<(&'static str, String)>,
    ) {
        let Value::Array(items) = value else {
            self.error(path, json!("expected an array"));
            return;
        };
        for (index, item) in items.iter().enumerate() {
            let mut item_path = path.to_vec();
            item_path.push(Segment::Index(index));
            match item {
                Value::Object(body) => {
                    self.entity(collection, body.clone(), item_path, parent.clone())
                }
                _ => self.error(&item_path, json!("expected a record")),
            }
        }
    }

    /// Reads one entity: takes out its nested children, sets its id and parent reference.
    fn entity(
        &mut self,
        collection: &'static str,
        mut body: Entity,
        path: Vec<Segment>,
        parent: Option<(&'static str, String)>,
    ) {
        let registry = self.registry;
        let Some(schema) = registry.get(collection) else {
            return;
        };
        let mut children = Vec::new();
        for (child, field, _) in registry.children_of(collection) {
            let key = table_of(child.collection);
            let nested = match body.get(key) {
                // A field of the same name taking plain values (certificate `snis: [name]`)
                // stays a field; a list of records is nested children.
                Some(Value::Array(items)) if schema.field(key).is_some() => {
                    items.iter().all(Value::is_object) && !items.is_empty()
                }
                Some(_) => schema.field(key).is_none(),
                None => false,
            };
            if nested && let Some(value) = body.remove(key) {
                children.push((child.collection, field.name, key.to_owned(), value));
            }
        }
        if let Some((field, parent_id)) = &parent {
            body.insert((*field).to_owned(), json!({"id": parent_id}));
        }
        for (field, foreign) in schema.foreign_keys() {
            if let Some(Value::String(reference)) = body.get(field.name) {
                let key = if schema::is_uuid(reference) {
                    "id"
                } else {
                    registry
                        .get(foreign.collection)
                        .and_then(|parent| parent.endpoint_key)
                        .unwrap_or("id")
                };
                let reference = json!({key: reference});
                body.insert(field.name.to_owned(), reference);
            }
        }
        let id = match body.get("id") {
            Some(Value::String(id)) => id.to_ascii_lowercase(),
            _ => derived_id(collection, &body),
        };
        body.insert("id".to_owned(), json!(id));
        for (child, field, key, value) in children {
            let mut child_path = path.clone();
            child_path.push(Segment::Key(key));
            self.sequence(child, &value, &child_path, Some((field, id.clone())));
        }
        self.pending.push(Pending {
            collection,
            body,
            path,
        });
    }
}

/// An id derived from the collection and the entity's content (stable across loads).
fn derived_id(collection: &str, body: &Entity) -> String {
    let mut content = body.clone();
    content.remove("id");
    let name = format!("{collection}:{}", Value::Object(content));
    uuid::Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
}

/// Entities sorted so that every collection comes after the collections it references.
fn in_dependency_order(registry: &Registry, pending: Vec<Pending>) -> Vec<Pending> {
    let mut rank: HashMap<&str, usize> = HashMap::new();
    let mut visiting = HashSet::new();
    for schema in &registry.schemas {
        collection_rank(registry, schema.collection, &mut rank, &mut visiting);
    }
    let mut pending = pending;
    pending.sort_by_key(|entity| rank.get(entity.collection).copied().unwrap_or(0));
    pending
}

/// The depth of `collection` in the foreign-key graph (parents first).
fn collection_rank<'a>(
    registry: &'a Registry,
    collection: &'a str,
    rank: &mut HashMap<&'a str, usize>,
    visiting: &mut HashSet<&'a str>,
) -> usize {
    if let Some(known) = rank.get(collection) {
        return *known;
    }
    if !visiting.insert(collection) {
        return 0;
    }
    let depth = registry.get(collection).map_or(0, |schema| {
        schema
            .foreign_keys()
            .filter(|(_, foreign)| foreign.collection != collection)
            .map(|(_, foreign)| collection_rank(registry, foreign.collection, rank, visiting) + 1)
            .max()
            .unwrap_or(0)
    });
    rank.insert(collection, depth);
    depth
}

/// The uniqueness message when an entity's endpoint key or id was already declared.
fn duplicate<'a>(
    registry: &'a Registry,
    pending: &Pending,
    seen: &mut HashSet<(&'a str, String)>,
) -> Option<String> {
    let schema = registry.get(pending.collection)?;
    let (field, value) = schema
        .endpoint_key
        .and_then(|key| match pending.body.get(key) {
            Some(Value::String(value)) => Some((key, value.clone())),
            _ => None,
        })
        .or_else(|| match pending.body.get("id") {
            Some(Value::String(id)) => Some(("id", id.clone())),
            _ => None,
        })?;
    let scope = schema
        .unique_scope
        .and_then(|scope| pending.body.get(scope))
        .map(Value::to_string)
        .unwrap_or_default();
    let fresh = seen.insert((schema.collection, format!("{field}|{scope}|{value}")));
    (!fresh).then(|| {
        format!(
            "uniqueness violation: '{}' entity with {field} set to '{value}' already declared",
            table_of(schema.collection)
        )
    })
}

/// What an insert error contributes at the entity's place in the file.
fn error_fields(error: &DaoError) -> Value {
    let body = error.body();
    match body.get("fields") {
        Some(fields) if error.status() != 409 => fields.clone(),
        _ => body
            .get("message")
            .cloned()
            .unwrap_or_else(|| json!("invalid entity")),
    }
}

/// Puts `value` into `errors` at `path`, creating objects and null-padded arrays.
fn place(errors: &mut Map<String, Value>, path: &[Segment], value: Value) {
    let Some((Segment::Key(first), rest)) = path.split_first() else {
        return;
    };
    let slot = errors.entry(first.clone()).or_insert(Value::Null);
    place_in(slot, rest, value);
}

/// Recursive step of [`place`].
fn place_in(slot: &mut Value, path: &[Segment], value: Value) {
    let Some((segment, rest)) = path.split_first() else {
        *slot = value;
        return;
    };
    match segment {
        Segment::Index(index) => {
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            if let Value::Array(items) = slot {
                if items.len() <= *index {
                    items.resize(index + 1, Value::Null);
                }
                place_in(&mut items[*index], rest, value);
            }
        }
        Segment::Key(key) => {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(map) = slot {
                place_in(map.entry(key.clone()).or_insert(Value::Null), rest, value);
            }
        }
    }
}

/// Every entity of `store`, keyed by table name then id (the `POST /config` answer).
pub fn entities_by_table(store: &Store) -> Map<String, Value> {
    let mut out = Map::new();
    for schema in &store.registry().schemas {
        let page = store.list(schema.collection, ListFilter::default(), usize::MAX);
        if page.entities.is_empty() {
            continue;
        }
        let by_id: Map<String, Value> = page
            .entities
            .into_iter()
            .map(|entity| {
                let id = entity
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                (id, Value::Object(entity))
            })
            .collect();
        out.insert(table_of(schema.collection).to_owned(), Value::Object(by_id));
    }
    out
}

/// The store as a flat declarative document (`GET /config`): tables of entities with ids.
///
/// A field that only mirrors child rows (a certificate's `snis`) is left out: the child
/// rows are exported themselves, and loading both would declare each child twice.
pub fn export(store: &Store) -> Value {
    let mut document = Map::new();
    document.insert("_format_version".to_owned(), json!("3.0"));
    document.insert("_transform".to_owned(), json!(false));
    for schema in &store.registry().schemas {
        let page = store.list(schema.collection, ListFilter::default(), usize::MAX);
        if !page.entities.is_empty() {
            let mirrored = schema.child_keys.map(|keys| keys.field);
            let rows: Vec<Value> = page
                .entities
                .into_iter()
                .map(|mut row| {
                    if let Some(field) = mirrored {
                        row.remove(field);
                    }
                    Value::Object(row)
                })
                .collect();
            document.insert(table_of(schema.collection).to_owned(), Value::Array(rows));
        }
    }
    Value::Object(document)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failed load fails the test")]
mod tests {
    use super::*;
    use crate::kong::entities;

    /// Loads YAML text at a fixed time.
    fn load_text(text: &str) -> Result<Store, DeclarativeError> {
        load(&entities::registry(), &parse(text)?, 1_700_000_000)
    }

    #[test]
    fn nested_children_are_linked_to_their_parent_and_ids_are_stable() {
        let text = "_format_version: '3.0'\nservices:\n- name: billing\n  url: http://billing.internal:8080/v1\n  routes:\n  - name: billing-route\n    paths: [/billing]\nupstreams:\n- name: billing.internal\n  targets:\n  - target: 10.0.0.1:8080\n    weight: 100\n";
        let first = load_text(text).unwrap();
        let service = first.find("services", "billing").unwrap();
        let route = first.find("routes", "billing-route").unwrap();
        assert_eq!(route["service"]["id"], service["id"]);
        assert_eq!(service["port"], 8080);
        assert_eq!(first.count("targets"), 1);
        let again = load_text(text).unwrap();
        assert_eq!(
            again.find("services", "billing").unwrap()["id"],
            service["id"]
        );
    }

    #[test]
    fn the_flat_export_of_upstreams_and_targets_loads_back() {
        let text = "_format_version: '3.0'\nupstreams:\n- name: core\n  targets:\n  - target: 10.0.0.1:8000\n    weight: 40\n";
        let store = load_text(text).unwrap();
        let again = load(&entities::registry(), &export(&store), 1_700_000_000).unwrap();
        assert_eq!(again.count("targets"), 1);
        assert_eq!(export(&again), export(&store));
    }

    #[test]
    fn a_top_level_target_without_its_upstream_is_refused() {
        let text = "_format_version: '3.0'\ntargets:\n- {target: 10.0.0.1:8000}\n";
        assert!(load_text(text).is_err());
    }

    #[test]
    fn top_level_children_refer_to_parents_by_name() {
        let text = "_format_version: '3.0'\nservices:\n- {name: a, host: a.internal}\nroutes:\n- {name: r, service: a, paths: [/a]}\n";
        let store = load_text(text).unwrap();
        let service = store.find("services", "a").unwrap();
        let route = store.find("routes", "r").unwrap();
        assert_eq!(route["service"]["id"], service["id"]);
    }

    #[test]
    fn errors_mirror_the_file_and_duplicates_are_named() {
        let text = "_format_version: '3.0'\nservices:\n- {name: a, host: a.internal}\n- {name: b}\n- {name: a, host: other}\n";
        let Err(DeclarativeError::Invalid { fields }) = load_text(text) else {
            unreachable!("invalid file accepted");
        };
        assert_eq!(
            Value::Object(fields),
            json!({"services": [null, {"host": "required field missing"},
                "uniqueness violation: 'services' entity with name set to 'a' already declared"]})
        );
    }

    #[test]
    fn format_version_is_required_and_unknown_tables_are_refused() {
        let missing = load_text("services: []\n");
        assert_eq!(
            missing.err().map(|e| e.body()["fields"].clone()),
            Some(json!({"_format_version": "required field missing"}))
        );
        let unknown = load_text("_format_version: '3.0'\nfrobs: []\n");
        assert_eq!(
            unknown.err().map(|e| e.body()["fields"].clone()),
            Some(json!({"frobs": "unknown field"}))
        );
        assert_eq!(parse("  \n").err(), Some(DeclarativeError::Empty));
        assert!(matches!(
            parse("a: [b"),
            Err(DeclarativeError::Invalid { .. })
        ));
    }
}
