//! The in-memory entity store: rows by id in id order, unique indexes, foreign keys.
//!
//! Every operation is generic over the [`Registry`]'s schemas; nothing here names an entity.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use serde_json::{Map, Value, json};

use super::error::DaoError;
use super::paging::TagFilter;
use super::schema::{self, OnDelete, Registry, Schema, Violations};

mod cache_key;
mod child_keys;
mod lookup;

pub use lookup::is_live;

/// One entity as stored and returned: every schema field present, `null` when unset.
pub type Entity = Map<String, Value>;

/// One collection's rows and unique indexes.
#[derive(Debug, Default)]
struct Table {
    /// Rows by id; the `BTreeMap` order is the pagination order.
    rows: BTreeMap<String, Entity>,
    /// Unique field name → JSON-encoded value → id.
    unique: HashMap<&'static str, HashMap<String, String>>,
}

/// A page of entities and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The entities, ascending by id.
    pub entities: Vec<Entity>,
    /// Whether entities after the last one match too.
    pub has_more: bool,
}

/// Which rows a listing covers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter<'a> {
    /// Only children whose foreign key `field` holds this parent id.
    pub parent: Option<(&'a str, &'a str)>,
    /// Only entities matching these tags.
    pub tags: Option<&'a TagFilter>,
    /// Only ids strictly greater than this one.
    pub after: Option<&'a str>,
}

/// The twin's database.
#[derive(Debug)]
pub struct Store {
    /// The schemas served.
    registry: Registry,
    /// Tables by collection name.
    tables: HashMap<&'static str, Table>,
    /// Forced health by entity id (`true` healthy); node-local, never listed.
    forced_health: HashMap<String, bool>,
}

impl Store {
    /// An empty store for the entities of `registry`.
    pub fn new(registry: Registry) -> Self {
        let tables = registry
            .schemas
            .iter()
            .map(|schema| (schema.collection, Table::default()))
            .collect();
        Self {
            registry,
            tables,
            forced_health: HashMap::new(),
        }
    }

    /// The schemas served.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Forces the health of the entity with `id`.
    pub fn force_health(&mut self, id: &str, healthy: bool) {
        self.forced_health.insert(id.to_owned(), healthy);
    }

    /// The forced health of the entity with `id`, if any.
    pub fn forced_health(&self, id: &str) -> Option<bool> {
        self.forced_health.get(id).copied()
    }

    /// Number of entities in `collection`.
    pub fn count(&self, collection: &str) -> usize {
        self.tables
            .get(collection)
            .map_or(0, |table| table.rows.len())
    }

    /// The entity addressed by `key`: its id if `key` is a UUID, else its endpoint key.
    pub fn find(&self, collection: &str, key: &str) -> Option<&Entity> {
        self.find_scoped(collection, key, None)
    }

    /// Like [`Store::find`], with the parent id that scopes the endpoint key of schemas
    /// whose uniqueness is scoped (`Schema::unique_scope`).
    pub fn find_scoped(&self, collection: &str, key: &str, scope: Option<&str>) -> Option<&Entity> {
        let table = self.tables.get(collection)?;
        if schema::is_uuid(key) {
            return table.rows.get(&key.to_ascii_lowercase());
        }
        let schema = self.registry.get(collection)?;
        let Some(field) = schema.endpoint_key else {
            return self.find_through_child_key(schema, key);
        };
        // A key written in its short form (`host` for `host:8000`) finds the stored one.
        let key = schema
            .normalize_key
            .and_then(|normalize| normalize(key))
            .unwrap_or_else(|| key.to_owned());
        let value = json!(key).to_string();
        let index_key = match schema.unique_scope {
            Some(_) => format!("{}|{value}", scope?),
            None => value,
        };
        let id = table.unique.get(field)?.get(&index_key)?;
        table.rows.get(id)
    }

    /// Lists entities of `collection` in id order, at most `size`.
    pub fn list(&self, collection: &str, filter: ListFilter<'_>, size: usize) -> Page {
        let Some(table) = self.tables.get(collection) else {
            return Page {
                entities: Vec::new(),
                has_more: false,
            };
        };
        let start = filter
            .after
            .map_or(Bound::Unbounded, |after| Bound::Excluded(after.to_owned()));
        let mut matching = table
            .rows
            .range((start, Bound::Unbounded))
            .map(|(_, entity)| entity)
            .filter(|entity| {
                let parent_matches = filter
                    .parent
                    .is_none_or(|(field, id)| foreign_id(entity, field) == Some(id));
                parent_matches && filter.tags.is_none_or(|tags| tags.matches(entity))
            });
        let entities: Vec<Entity> = matching.by_ref().take(size).cloned().collect();
        let has_more = matching.next().is_some();
        Page { entities, has_more }
    }

    /// Inserts a new entity (POST): 400 if its `id` exists, 409 on a unique conflict.
    pub fn insert(
        &mut self,
        collection: &str,
        mut body: Entity,
        now: i64,
    ) -> Result<Entity, DaoError> {
        if body.get("id").is_none_or(Value::is_null) {
            body.insert("id".to_owned(), json!(uuid::Uuid::new_v4().to_string()));
        }
        let child_keys = self.child_keys_input(collection, &mut body, None, false)?;
        let entity = self.prepare(collection, body, None)?;
        let id = entity_id(&entity);
        if self
            .tables
            .get(collection)
            .is_some_and(|table| table.rows.contains_key(&id))
        {
            return Err(DaoError::PrimaryKey { id });
        }
        self.commit(collection, entity, child_keys, now, false)
    }

    /// Creates or fully replaces the entity addressed by `key` (PUT).
    pub fn upsert(
        &mut self,
        collection: &str,
        key: &str,
        mut body: Entity,
        now: i64,
    ) -> Result<Entity, DaoError> {
        let schema = self.schema(collection)?;
        let id = if schema::is_uuid(key) {
            key.to_ascii_lowercase()
        } else {
            if let Some(field) = schema.endpoint_key {
                body.insert(field.to_owned(), json!(key));
            }
            // Keys unique within a parent are looked up within the body's parent (acl groups).
            let scope = schema
                .unique_scope
                .and_then(|field| foreign_id(&body, field))
                .map(str::to_owned);
            self.find_scoped(collection, key, scope.as_deref())
                .map_or_else(|| uuid::Uuid::new_v4().to_string(), entity_id)
        };
        self.add_url_child_key(collection, key, &mut body);
        let child_keys = self.child_keys_input(collection, &mut body, Some(&id), true)?;
        body.insert("id".to_owned(), json!(id));
        let entity = self.prepare(collection, body, None)?;
        self.commit(collection, entity, child_keys, now, false)
    }

    /// Merges `patch` into the entity addressed by `key` (PATCH); code 6 when absent.
    pub fn update(
        &mut self,
        collection: &str,
        key: &str,
        mut patch: Entity,
        now: i64,
    ) -> Result<Entity, DaoError> {
        let schema = self.schema(collection)?;
        let Some(existing) = self.find(collection, key).cloned() else {
            let primary = schema::is_uuid(key);
            let field = if primary {
                "id"
            } else {
                schema.endpoint_key.unwrap_or("id")
            };
            return Err(DaoError::NotFound {
                field: field.to_owned(),
                value: key.to_owned(),
                primary,
            });
        };
        let id = entity_id(&existing);
        let child_keys = self.child_keys_input(collection, &mut patch, Some(&id), false)?;
        patch.insert("id".to_owned(), json!(id));
        let entity = self.prepare(collection, patch, Some(existing))?;
        self.commit(collection, entity, child_keys, now, true)
    }

    /// The end of every write: timestamps (`update` refreshes `updated_at`), the row and
    /// its unique indexes, then the child rows a `child_keys` field asked for.
    fn commit(
        &mut self,
        collection: &str,
        mut entity: Entity,
        child_keys: Option<Vec<String>>,
        now: i64,
        update: bool,
    ) -> Result<Entity, DaoError> {
        stamp(
            &mut entity,
            now,
            update,
            schema_float(&self.registry, collection),
        );
        let entity = self.write(collection, entity)?;
        self.sync_child_keys(collection, entity, child_keys, now)
    }

    /// Deletes the entity with `id`, cascading or refusing per the children's foreign keys.
    pub fn delete(&mut self, collection: &str, id: &str) -> Result<(), DaoError> {
        self.check_id_references(collection, id)?;
        self.delete_child_keys(collection, id)?;
        let children: Vec<(&'static str, &'static str, OnDelete)> = self
            .registry
            .children_of(collection)
            .map(|(child, field, foreign)| (child.collection, field.name, foreign.on_delete))
            .collect();
        for (child, field, on_delete) in &children {
            let referencing = self.children_ids(child, field, id);
            if *on_delete == OnDelete::Restrict && !referencing.is_empty() {
                return Err(DaoError::ReferencedBy {
                    child: (*child).to_owned(),
                    parent: collection.to_owned(),
                });
            }
        }
        for (child, field, _) in children {
            for child_id in self.children_ids(child, field, id) {
                self.delete(child, &child_id)?;
            }
        }
        if let Some(entity) = self
            .tables
            .get_mut(collection)
            .and_then(|table| table.rows.remove(id))
        {
            self.unindex(collection, &entity);
            self.refresh_child_keys(collection, &[&entity]);
        }
        self.forced_health.remove(id);
        Ok(())
    }

    /// Ids of `child` entities whose `field` references `parent_id`.
    fn children_ids(&self, child: &str, field: &str, parent_id: &str) -> Vec<String> {
        self.tables.get(child).map_or_else(Vec::new, |table| {
            table
                .rows
                .values()
                .filter(|row| foreign_id(row, field) == Some(parent_id))
                .map(entity_id)
                .collect()
        })
    }

    /// The schema of `collection`.
    fn schema(&self, collection: &str) -> Result<&Schema, DaoError> {
        self.registry
            .get(collection)
            .ok_or_else(|| DaoError::InvalidOptions {
                option: "entity",
                message: format!("unknown entity '{collection}'"),
            })
    }

    /// Shorthands, foreign-key resolution, defaults (unless merging into `base`), validation.
    fn prepare(
        &self,
        collection: &str,
        mut body: Entity,
        base: Option<Entity>,
    ) -> Result<Entity, DaoError> {
        let schema = self.schema(collection)?;
        let mut violations = Violations::default();
        let inputs: Vec<String> = if schema.transformations.is_empty() {
            Vec::new()
        } else {
            body.keys().cloned().collect()
        };
        for shorthand in &schema.shorthands {
            shorthand(&mut body, &mut violations);
        }
        self.resolve_foreign_keys(schema, &mut body)?;
        let mut entity = match base {
            Some(mut base) => {
                schema::merge(schema, &mut base, body);
                base
            }
            None => {
                schema::fill_defaults(schema, &mut body);
                body
            }
        };
        if let Some(subschema) = schema.subschema {
            (subschema.apply)(&mut entity, &mut violations);
        }
        schema::validate(schema, &mut entity, &mut violations);
        if !violations.is_empty() {
            return Err(DaoError::SchemaViolation {
                fields: violations.fields,
                entity: violations.entity,
            });
        }
        self.check_foreign_keys_exist(schema, &entity)?;
        if let Some(check) = schema.store_check {
            check(self, &entity)?;
        }
        for transformation in &schema.transformations {
            if inputs.iter().any(|input| input == transformation.input) {
                (transformation.apply)(&mut entity);
            }
        }
        if let Some(on_write) = schema.on_write {
            on_write(&mut entity);
        }
        Ok(schema::in_schema_order(schema, &entity))
    }

    /// Replaces foreign keys given by endpoint key (`{"name": "x"}`) with `{"id": ...}`.
    fn resolve_foreign_keys(&self, schema: &Schema, body: &mut Entity) -> Result<(), DaoError> {
        for (field, foreign) in schema.foreign_keys() {
            let Some(Value::Object(reference)) = body.get(field.name) else {
                continue;
            };
            if let Some(id) = reference.get("id") {
                let id = id.clone();
                body.insert(field.name.to_owned(), json!({"id": id}));
                continue;
            }
            let parent_key = self
                .registry
                .get(foreign.collection)
                .and_then(|parent| parent.endpoint_key);
            let Some((key, Value::String(value))) =
                parent_key.and_then(|key| reference.get(key).map(|value| (key, value)))
            else {
                continue;
            };
            let resolved = self.find(foreign.collection, value).map(entity_id);
            match resolved {
                Some(id) => {
                    body.insert(field.name.to_owned(), json!({"id": id}));
                }
                None => {
                    return Err(DaoError::ForeignKeyUnresolved {
                        field: field.name.to_owned(),
                        key: key.to_owned(),
                        value: value.clone(),
                        collection: foreign.collection.to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Code 4 when a foreign key id references no entity.
    fn check_foreign_keys_exist(&self, schema: &Schema, entity: &Entity) -> Result<(), DaoError> {
        for (field, foreign) in schema.foreign_keys() {
            let Some(id) = foreign_id(entity, field.name) else {
                continue;
            };
            let exists = self
                .tables
                .get(foreign.collection)
                .is_some_and(|table| table.rows.contains_key(id));
            if !exists {
                return Err(DaoError::ForeignKeyMissing {
                    field: field.name.to_owned(),
                    collection: foreign.collection.to_owned(),
                    id: id.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Stores `entity`, replacing the row with its id; 409 on a unique conflict.
    fn write(&mut self, collection: &str, entity: Entity) -> Result<Entity, DaoError> {
        let (name, scope, unique) = {
            let schema = self.schema(collection)?;
            (
                schema.collection,
                schema.unique_scope,
                schema
                    .unique_fields()
                    .map(|field| field.name)
                    .collect::<Vec<&'static str>>(),
            )
        };
        let id = entity_id(&entity);
        self.check_cache_key(name, &entity)?;
        let table = self.tables.entry(name).or_default();
        for field in &unique {
            let Some(value) = entity.get(*field).filter(|value| !value.is_null()) else {
                continue;
            };
            let owner = table
                .unique
                .get(field)
                .and_then(|index| index.get(&index_key(&entity, scope, value)));
            if owner.is_some_and(|owner| *owner != id) {
                return Err(match scope {
                    Some(scope) => {
                        let mut parts = Map::new();
                        parts.insert((*field).to_owned(), value.clone());
                        parts.insert(
                            scope.to_owned(),
                            entity.get(scope).cloned().unwrap_or(Value::Null),
                        );
                        DaoError::UniqueComposite { parts }
                    }
                    None => DaoError::Unique {
                        field: (*field).to_owned(),
                        value: value.clone(),
                    },
                });
            }
        }
        let previous = table.rows.remove(&id);
        if let Some(previous) = &previous {
            self.unindex(name, previous);
        }
        let table = self.tables.entry(name).or_default();
        for field in unique {
            if let Some(value) = entity.get(field).filter(|value| !value.is_null()) {
                table
                    .unique
                    .entry(field)
                    .or_default()
                    .insert(index_key(&entity, scope, value), id.clone());
            }
        }
        table.rows.insert(id, entity.clone());
        let written: Vec<&Entity> = previous.iter().chain([&entity]).collect();
        self.refresh_child_keys(name, &written);
        Ok(entity)
    }

    /// Removes `entity`'s unique index entries.
    fn unindex(&mut self, collection: &str, entity: &Entity) {
        let scope = self
            .registry
            .get(collection)
            .and_then(|schema| schema.unique_scope);
        let Some(table) = self.tables.get_mut(collection) else {
            return;
        };
        for (field, index) in &mut table.unique {
            if let Some(value) = entity.get(*field) {
                index.remove(&index_key(entity, scope, value));
            }
        }
    }
}

/// An entity's id.
fn entity_id(entity: &Entity) -> String {
    entity
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A string field of an entity, empty when absent or not a string.
pub(crate) fn text<'a>(entity: &'a Entity, field: &str) -> &'a str {
    entity
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The id inside foreign key `field`, if set.
pub(crate) fn foreign_id<'a>(entity: &'a Entity, field: &str) -> Option<&'a str> {
    entity.get(field)?.get("id")?.as_str()
}

/// A unique index key: the JSON value, prefixed by the scope's parent id when scoped.
fn index_key(entity: &Entity, scope: Option<&str>, value: &Value) -> String {
    match scope {
        Some(scope) => format!("{}|{value}", foreign_id(entity, scope).unwrap_or_default()),
        None => value.to_string(),
    }
}

/// Whether `collection` stamps float timestamps.
fn schema_float(registry: &Registry, collection: &str) -> bool {
    registry
        .get(collection)
        .is_some_and(|schema| schema.float_timestamps)
}

/// Sets `created_at` when unset and `updated_at` (always on update, else when unset);
/// float seconds with millisecond precision when `float` (the ms come from the clock).
fn stamp(entity: &mut Entity, now: i64, update: bool, float: bool) {
    let now = if float {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_millis());
        json!((now as f64) + f64::from(millis) / 1000.0)
    } else {
        json!(now)
    };
    if entity.get("created_at").is_some_and(Value::is_null) {
        entity.insert("created_at".to_owned(), now.clone());
    }
    let has_updated_at = entity
        .get("updated_at")
        .is_some_and(|value| !value.is_null());
    if entity.contains_key("updated_at") && (update || !has_updated_at) {
        entity.insert("updated_at".to_owned(), now);
    }
}
