//! Entity descriptors: the data that tells the generic store and router what an entity is.

use serde_json::{Map, Value, json};

use super::error::DaoError;
use super::store::Store;

/// What a field's value is, as Kong's schema types (reference §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A UUID string (`expected a valid UUID`).
    Uuid,
    /// A string of length at least 1.
    String,
    /// An integer.
    Integer,
    /// A number.
    Number,
    /// A boolean.
    Boolean,
    /// An integer Unix timestamp stamped by the store when unset.
    Timestamp,
    /// A set of elements, de-duplicated on write.
    Set(Element),
    /// An array of elements.
    Array(Element),
    /// A JSON object with string keys.
    Map,
    /// A JSON object merged recursively on PATCH.
    Record,
    /// A foreign key `{"id": uuid}` to the named collection.
    Foreign(ForeignKey),
}

/// The element type of a set or array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// String elements.
    String,
    /// Integer elements.
    Integer,
    /// UUID elements.
    Uuid,
    /// Object elements.
    Record,
}

/// What deleting the parent does to children that reference it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    /// The delete fails with code 4 while children exist.
    Restrict,
    /// Children are deleted with the parent.
    Cascade,
}

/// A foreign-key field's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referenced collection, e.g. `services`.
    pub collection: &'static str,
    /// What deleting the referenced entity does to this one.
    pub on_delete: OnDelete,
}

/// A per-field check run after the type check; returns the field's error value.
pub type FieldCheck = fn(&Value) -> Option<Value>;

/// A whole-entity check run after field checks; adds to the violations.
pub type EntityCheck = fn(&Map<String, Value>, &mut Violations);

/// A rewrite of the input body before validation (write-only shorthands like `url`).
pub type Shorthand = fn(&mut Map<String, Value>, &mut Violations);

/// A default computed from the rest of the entity (e.g. route `strip_path` for grpc).
pub type DefaultFn = fn(&Map<String, Value>) -> Value;

/// A check that reads other entities, run once the foreign keys are known to exist.
pub type StoreCheck = fn(&Store, &Map<String, Value>) -> Result<(), DaoError>;

/// One field of an entity.
#[derive(Debug, Clone)]
pub struct Field {
    /// Field name.
    pub name: &'static str,
    /// Value type.
    pub kind: Kind,
    /// Whether a value (given or defaulted) must be present.
    pub required: bool,
    /// Default filled when the field is absent or null on insert/replace.
    pub default: Option<DefaultFn>,
    /// Whether values are unique across the collection (409 on conflict).
    pub unique: bool,
    /// Extra validation of a well-typed value.
    pub check: Option<FieldCheck>,
}

impl Field {
    /// An optional field of `kind` with no default.
    pub fn new(name: &'static str, kind: Kind) -> Self {
        Self {
            name,
            kind,
            required: false,
            default: None,
            unique: false,
            check: None,
        }
    }

    /// Marks the field required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the default.
    pub fn default(mut self, default: DefaultFn) -> Self {
        self.default = Some(default);
        self
    }

    /// Marks the field unique.
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Adds a value check.
    pub fn check(mut self, check: FieldCheck) -> Self {
        self.check = Some(check);
        self
    }
}

/// An entity descriptor: URLs, fields, keys and checks.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Collection name used in URLs and messages, e.g. `services`.
    pub collection: &'static str,
    /// Name under a parent's URL, e.g. `routes` in `/services/{s}/routes`.
    pub nested_name: &'static str,
    /// Field usable in URLs instead of the id (e.g. `name`).
    pub endpoint_key: Option<&'static str>,
    /// Fields in response order.
    pub fields: Vec<Field>,
    /// Input rewrites applied before validation.
    pub shorthands: Vec<Shorthand>,
    /// Entity-level checks.
    pub entity_checks: Vec<EntityCheck>,
    /// Hook: only reachable under a parent; top-level URLs answer 404 (targets).
    pub nested_only: bool,
    /// Hook: nested PUT/PATCH only update (merge) an existing entity; 404 when absent.
    pub nested_update_only: bool,
    /// Hook: `created_at`/`updated_at` are float seconds with ms precision (targets).
    pub float_timestamps: bool,
    /// Hook: unique fields are unique only among entities sharing this foreign key.
    pub unique_scope: Option<&'static str>,
    /// Hook: `GET /{entities}/{e}/health` reports the balancer view of these children.
    pub health: Option<HealthHook>,
    /// Hook: `PUT /{parents}/{p}/{entities}/{e}/healthy|unhealthy` forces health.
    pub forced_health: bool,
    /// Hook: nested lists are newest first with a decimal index as `offset` (targets).
    pub index_offsets: bool,
    /// Hook: canonical form of an endpoint key given in a URL (target `host` → `host:8000`).
    pub normalize_key: Option<fn(&str) -> Option<String>>,
    /// Hook: a field listing the keys of children that reference this entity, written
    /// through to them and usable in URLs instead of the id (certificate `snis`).
    pub child_keys: Option<ChildKeys>,
    /// Hook: derives stored fields from the validated entity on every write
    /// (CA certificate `cert_digest`).
    pub on_write: Option<fn(&mut Map<String, Value>)>,
    /// Hook: id arrays of other entities that block this entity's delete with code 19
    /// while they list its id (service `ca_certificates`).
    pub id_references: Vec<IdReference>,
    /// Hook: writes accept Kong's `ttl` option (seconds to live); the `ttl` field stores
    /// the absolute expiry and reads show the remaining seconds (key-auth, §7.5).
    pub ttl: bool,
    /// Hook: `GET /{entities}?<field>=<v>` is an exact lookup by this unique field
    /// (consumers `custom_id`).
    pub lookup_query: Option<&'static str>,
    /// Hook: these fields together are unique (Kong's `cache_key`); a conflict answers
    /// 409 naming every part (plugins: name, route, service, consumer).
    pub cache_key: Option<&'static [&'static str]>,
    /// Hook: completes and validates the part of the entity whose schema another field
    /// selects (a plugin's `config`, by its `name`).
    pub subschema: Option<Subschema>,
    /// Hook: a check reading other entities (a plugin's protocols against its route's).
    pub store_check: Option<StoreCheck>,
    /// Hook: rewrites of fields present in a write's body, after validation (basic-auth
    /// `password` hashed with the consumer id).
    pub transformations: Vec<Transformation>,
}

impl Schema {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name == name)
    }

    /// Foreign-key fields with their targets.
    pub fn foreign_keys(&self) -> impl Iterator<Item = (&Field, ForeignKey)> {
        self.fields.iter().filter_map(|field| match field.kind {
            Kind::Foreign(foreign) => Some((field, foreign)),
            _ => None,
        })
    }

    /// Unique fields (besides `id`).
    pub fn unique_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|field| field.unique)
    }
}

/// How a parent's balancer health is computed (upstreams → targets, reference §8).
#[derive(Debug, Clone, Copy)]
pub struct HealthHook {
    /// The child collection whose entities are balanced (e.g. `targets`).
    pub child: &'static str,
    /// Whether health checking is enabled for the parent.
    pub enabled: fn(&Map<String, Value>) -> bool,
    /// Percentage of healthy weight under which the balancer is unhealthy.
    pub threshold: fn(&Map<String, Value>) -> f64,
}

/// A parent's field mirroring its children's endpoint keys (certificate `snis`, §7.9).
///
/// Writing the field creates and deletes the children so that exactly those keys
/// reference the parent; reading it lists them sorted. A URL key that is not a UUID
/// addresses the parent through one of these children. Deleting the parent first
/// deletes these children, even when the delete is then refused (Kong's order).
#[derive(Debug, Clone, Copy)]
pub struct ChildKeys {
    /// The parent's field, e.g. `snis`.
    pub field: &'static str,
    /// The child collection, e.g. `snis`; its endpoint key is listed.
    pub child: &'static str,
    /// The child's foreign key to the parent, e.g. `certificate`.
    pub foreign_key: &'static str,
    /// The 404 message for a URL key that no child has, e.g. `SNI not found`.
    pub not_found: &'static str,
}

/// A part of an entity validated by a schema that another field selects (Kong's
/// `subschema_key`): run after defaults (insert, PUT) or merge (PATCH), before validation.
#[derive(Debug, Clone, Copy)]
pub struct Subschema {
    /// The field whose value selects the subschema, e.g. `name`.
    pub key: &'static str,
    /// Fills the selected part's defaults and records its violations.
    pub apply: fn(&mut Map<String, Value>, &mut Violations),
}

/// A rewrite applied when a write's body carries `input` (Kong's schema transformations).
#[derive(Debug, Clone, Copy)]
pub struct Transformation {
    /// The body field that triggers it, e.g. `password`.
    pub input: &'static str,
    /// Rewrites the validated entity.
    pub apply: fn(&mut Map<String, Value>),
}

/// An array of ids in another collection that references entities of this one.
#[derive(Debug, Clone, Copy)]
pub struct IdReference {
    /// The referencing collection, e.g. `services`.
    pub collection: &'static str,
    /// Its array-of-ids field, e.g. `ca_certificates`.
    pub field: &'static str,
}

/// Every entity the twin serves.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// The schemas, in registration order.
    pub schemas: Vec<Schema>,
}

impl Registry {
    /// The schema whose collection is `collection`.
    pub fn get(&self, collection: &str) -> Option<&Schema> {
        self.schemas
            .iter()
            .find(|schema| schema.collection == collection)
    }

    /// Children of `parent`: schemas with a foreign key to it, with the key's field name.
    pub fn children_of<'a>(
        &'a self,
        parent: &'a str,
    ) -> impl Iterator<Item = (&'a Schema, &'a Field, ForeignKey)> {
        self.schemas.iter().flat_map(move |schema| {
            schema
                .foreign_keys()
                .filter(move |(_, foreign)| foreign.collection == parent)
                .map(move |(field, foreign)| (schema, field, foreign))
        })
    }
}

/// Validation errors collected for one entity: field errors and `@entity` messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Violations {
    /// Field errors mirroring the input structure.
    pub fields: Map<String, Value>,
    /// Entity-level messages.
    pub entity: Vec<String>,
}

impl Violations {
    /// Records `message` for `field` unless it already has an error.
    pub fn field(&mut self, field: &str, message: impl Into<Value>) {
        self.fields
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    /// Records an entity-level message.
    pub fn entity(&mut self, message: impl Into<String>) {
        self.entity.push(message.into());
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.entity.is_empty()
    }
}

/// Whether `text` is a lowercase or uppercase hyphenated UUID.
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::parse_str(text).is_ok()
}

/// The type error message for `kind`, or `None` when `value` has that type.
fn type_error(kind: Kind, value: &Value) -> Option<Value> {
    let error = |message: &str| Some(Value::String(message.to_owned()));
    match kind {
        Kind::Uuid => match value.as_str() {
            Some(text) if is_uuid(text) => None,
            _ => error("expected a valid UUID"),
        },
        Kind::String => match value.as_str() {
            Some("") => error("length must be at least 1"),
            Some(_) => None,
            None => error("expected a string"),
        },
        Kind::Integer | Kind::Timestamp => match value {
            Value::Number(number) if number.is_i64() || number.is_u64() => None,
            Value::Number(number) if number.as_f64().is_some_and(|float| float.fract() == 0.0) => {
                None
            }
            _ => error("expected an integer"),
        },
        Kind::Number => {
            if value.is_number() {
                None
            } else {
                error("expected a number")
            }
        }
        Kind::Boolean => {
            if value.is_boolean() {
                None
            } else {
                error("expected a boolean")
            }
        }
        Kind::Map => {
            if value.is_object() {
                None
            } else {
                error("expected a map")
            }
        }
        Kind::Record => {
            if value.is_object() {
                None
            } else {
                error("expected a record")
            }
        }
        Kind::Foreign(_) => match value.get("id") {
            Some(Value::String(id)) if is_uuid(id) => None,
            Some(_) => Some(json!({"id": "expected a valid UUID"})),
            None if value.is_object() => Some(json!({"id": "required field missing"})),
            None => error("expected a record"),
        },
        Kind::Set(element) => collection_error(element, value, "expected a set"),
        Kind::Array(element) => collection_error(element, value, "expected an array"),
    }
}

/// Element-wise type errors of a set or array, as an array indexed like the input.
fn collection_error(element: Element, value: &Value, message: &str) -> Option<Value> {
    let Value::Array(items) = value else {
        return Some(Value::String(message.to_owned()));
    };
    let kind = match element {
        Element::String => Kind::String,
        Element::Integer => Kind::Integer,
        Element::Uuid => Kind::Uuid,
        Element::Record => Kind::Record,
    };
    let errors: Vec<Value> = items
        .iter()
        .map(|item| type_error(kind, item).unwrap_or(Value::Null))
        .collect();
    element_errors(errors)
}

/// Trims trailing nulls from per-element errors; `None` when there are none.
pub fn element_errors(mut errors: Vec<Value>) -> Option<Value> {
    while errors.last().is_some_and(Value::is_null) {
        errors.pop();
    }
    if errors.is_empty() {
        None
    } else {
        Some(Value::Array(errors))
    }
}

/// De-duplicates a set, first occurrence wins.
fn dedupe(value: &mut Value) {
    if let Value::Array(items) = value {
        let mut seen: Vec<Value> = Vec::with_capacity(items.len());
        items.retain(|item| {
            if seen.contains(item) {
                false
            } else {
                seen.push(item.clone());
                true
            }
        });
    }
}

/// Checks one tag (reference §2.2).
pub fn tag_error(tag: &str) -> Option<String> {
    let valid = !tag.is_empty()
        && tag
            .chars()
            .all(|c| !c.is_ascii() || ((' '..='~').contains(&c) && c != ',' && c != '/'));
    (!valid).then(|| {
        format!("invalid tag '{tag}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences")
    })
}

/// Checks the `tags` set's elements.
pub fn check_tags(value: &Value) -> Option<Value> {
    let items = value.as_array()?;
    let errors = items
        .iter()
        .map(|item| {
            item.as_str()
                .and_then(tag_error)
                .map_or(Value::Null, Value::String)
        })
        .collect();
    element_errors(errors)
}

/// Validates a complete candidate entity: unknown fields, types, required, checks.
pub fn validate(schema: &Schema, entity: &mut Map<String, Value>, violations: &mut Violations) {
    for key in entity.keys() {
        if schema.field(key).is_none() {
            violations.field(key, "unknown field");
        }
    }
    for field in &schema.fields {
        let value = entity.get_mut(field.name);
        match value {
            None | Some(Value::Null) => {
                if field.required {
                    violations.field(field.name, "required field missing");
                }
            }
            Some(value) => {
                if let Some(error) = type_error(field.kind, value) {
                    violations.field(field.name, error);
                    continue;
                }
                if matches!(field.kind, Kind::Set(_)) {
                    dedupe(value);
                }
                if let Some(error) = field.check.and_then(|check| check(value)) {
                    violations.field(field.name, error);
                }
            }
        }
    }
    if violations.fields.is_empty() {
        for check in &schema.entity_checks {
            check(entity, violations);
        }
    }
}

/// Fills absent or null fields with their defaults and `null`s (insert and full replacement).
pub fn fill_defaults(schema: &Schema, entity: &mut Map<String, Value>) {
    for field in &schema.fields {
        let absent = entity.get(field.name).is_none_or(Value::is_null);
        if absent {
            let value = field.default.map_or(Value::Null, |default| default(entity));
            entity.insert(field.name.to_owned(), value);
        }
    }
}

/// Orders an entity's keys as the schema lists its fields.
pub fn in_schema_order(schema: &Schema, entity: &Map<String, Value>) -> Map<String, Value> {
    let mut ordered = Map::new();
    for field in &schema.fields {
        ordered.insert(
            field.name.to_owned(),
            entity.get(field.name).cloned().unwrap_or(Value::Null),
        );
    }
    ordered
}

/// Merges `patch` into `base`: records recursively, everything else replaced.
pub fn merge(schema: &Schema, base: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        let is_record = schema
            .field(&key)
            .is_some_and(|field| field.kind == Kind::Record);
        match (is_record, base.get_mut(&key), value) {
            (true, Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_records(existing, incoming)
            }
            (_, _, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Recursive record merge.
fn merge_records(base: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_records(existing, incoming)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}
