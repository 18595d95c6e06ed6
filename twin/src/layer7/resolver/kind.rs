//! How one store entity kind shows in Graphman ([`GraphmanKind`]) and the generic set,
//! delete and lookup mutations every kind shares.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::StoreResolver;
use crate::layer7::graphman::bundle::{self, Section};
use crate::layer7::graphman::checksum::checksum;
use crate::layer7::graphman::mapping::{self, BundleProperties, Decision};
use crate::layer7::graphman::status::{
    DetailedStatus, EntityMutationAction, EntityMutationStatus, EntityOutcome, plural_payload,
};
use crate::layer7::graphman::{Context, Field, FieldError};
use crate::layer7::store::{
    Change, Entity, Folder, Properties, PropertyValue, RevisionOptions, Store, StoreError, Stored,
    is_goid, new_goid,
};

/// A store entity kind as Graphman shows and takes it.
pub(super) trait GraphmanKind: Entity {
    /// The bundle section and plural field (`clusterProperties`).
    const SECTION: &'static str;
    /// The GraphQL type (`ClusterProperty`).
    const TYPE_NAME: &'static str;

    /// The entity's configuration as Graphman shows it (with `goid`): what the checksum covers.
    fn config_json(stored: &Stored<Self>, store: &Store) -> Map<String, Value>;

    /// Fields shown beside the configuration that the checksum does not cover (revision
    /// history, versions).
    fn state_json(_stored: &Stored<Self>, _store: &Store) -> Map<String, Value> {
        Map::new()
    }

    /// Extra input folded into the checksum only (a secret's digest), never shown.
    fn hidden_checksum_input(_stored: &Stored<Self>) -> Option<String> {
        None
    }

    /// The id of the stored entity that `input` (an input or a ref input) identifies.
    fn find(store: &Store, input: &Value) -> Option<String>;

    /// The entity `input` describes, saved over `existing` when there is one.
    fn from_input(
        store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        context: &Context<'_>,
    ) -> Result<Self, String>;

    /// The id a new entity from `input` gets: its `goid` when free, else a new one.
    fn new_id(store: &Store, input: &Value) -> String {
        match text(input, "goid") {
            Some(goid) if is_goid(&goid) && store.get::<Self>(&goid).is_none() => goid,
            _ => new_goid(),
        }
    }

    /// Removes entity `id` (folders: with their contents under `forceDelete`).
    fn remove(store: &mut Store, id: &str, _context: &Context<'_>) -> Result<(), StoreError> {
        store.delete::<Self>(id).map(|_| ())
    }

    /// The bundle section.
    fn section() -> Result<&'static Section, FieldError> {
        bundle::find_section(Self::SECTION)
            .ok_or_else(|| FieldError::Failed(format!("section {} is unknown", Self::SECTION)))
    }
}

/// The full JSON of a stored entity: configuration, checksum, state and `__typename`.
pub(super) fn to_json<T: GraphmanKind>(stored: &Stored<T>, store: &Store) -> Value {
    let config = T::config_json(stored, store);
    let mut summed = Value::Object(config.clone());
    if let (Some(hidden), Some(object)) = (T::hidden_checksum_input(stored), summed.as_object_mut())
    {
        object.insert("__hidden".into(), Value::String(hidden));
    }
    let mut object = config;
    object.insert("checksum".into(), Value::String(checksum(&summed)));
    object.extend(T::state_json(stored, store));
    object.insert("__typename".into(), Value::String(T::TYPE_NAME.to_owned()));
    Value::Object(object)
}

/// Every entity of kind `T`, in id order.
pub(super) fn all<T: GraphmanKind>(store: &Store) -> Value {
    Value::Array(
        store
            .all::<T>()
            .iter()
            .map(|stored| to_json(stored, store))
            .collect(),
    )
}

/// The entities of kind `T` that `keep` accepts.
pub(super) fn filtered<T: GraphmanKind>(store: &Store, keep: impl Fn(&Stored<T>) -> bool) -> Value {
    Value::Array(
        store
            .all::<T>()
            .iter()
            .filter(|stored| keep(stored))
            .map(|stored| to_json(stored, store))
            .collect(),
    )
}

/// The entity of kind `T` that `input` identifies, or `null`.
pub(super) fn one<T: GraphmanKind>(store: &Store, input: &Value) -> Value {
    T::find(store, input)
        .and_then(|id| store.get::<T>(&id))
        .map_or(Value::Null, |stored| to_json(stored, store))
}

/// The id of the entity of kind `T` whose natural key is `input`'s `name`, else its `guid`.
pub(super) fn find_by_name_or_guid<T: Entity>(store: &Store, input: &Value) -> Option<String> {
    let by = |key: String| store.find::<T>(&key).first().map(|stored| stored.id.clone());
    text(input, "name")
        .and_then(|name| by(format!("name={name}")))
        .or_else(|| text(input, "guid").and_then(|guid| by(format!("guid={guid}"))))
}

/// String field `name` of `value`, when present and a string.
pub(super) fn text(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// `input` read as `T`, the error in words.
pub(super) fn parse<T: DeserializeOwned>(input: &Value, what: &str) -> Result<T, String> {
    T::deserialize(input).map_err(|error| format!("invalid {what} input: {error}"))
}

/// Properties as Graphman's `[{name value}]`.
pub(super) fn properties_json(properties: &Properties) -> Value {
    Value::Array(
        properties
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value.as_text()}))
            .collect(),
    )
}

/// `[{name value}]` as properties (values as text).
pub(super) fn properties_from(list: &[NameValueInput]) -> Properties {
    list.iter()
        .filter_map(|entry| {
            Some((
                entry.name.clone(),
                PropertyValue::String(entry.value.clone()?),
            ))
        })
        .collect()
}

/// One `{name value}` of an input.
#[derive(Debug, Clone, serde::Deserialize)]
pub(super) struct NameValueInput {
    /// The name.
    pub name: String,
    /// The value (`null`: none).
    #[serde(default)]
    pub value: Option<String>,
}

/// The folder at `path` (`/` is the root), or why not.
pub(super) fn folder_id(store: &Store, path: Option<&str>) -> Result<String, String> {
    let path = path.unwrap_or("/");
    store
        .folder_by_path(path)
        .map(|folder| folder.id.clone())
        .ok_or_else(|| format!("folder {path} does not exist"))
}

/// The path of folder `id` (`/` when unknown).
pub(super) fn folder_path(store: &Store, id: &str) -> String {
    store.folder_path(id).unwrap_or_else(|| "/".to_owned())
}

/// Whether folder `id` is at `path` or below it.
pub(super) fn under(store: &Store, id: &str, path: &str) -> bool {
    store
        .folder_chain(id)
        .iter()
        .any(|folder| store.folder_path(&folder.id).as_deref() == Some(path))
}

/// `true` when the root folder is not `stored` (lists leave the root out).
pub(super) fn not_root(stored: &Stored<Folder>) -> bool {
    stored.entity.parent_id.is_some()
}

impl StoreResolver {
    /// `setXs(input: [XInput!]!)`: each input under its mapping (`properties` of the
    /// request's variables), in order.
    pub(super) fn set<T: GraphmanKind>(
        &mut self,
        field: &Field,
        context: &Context<'_>,
    ) -> Result<Value, FieldError> {
        let inputs: Vec<Value> = field.argument("input")?;
        let properties = BundleProperties::from_variables(context.variables)
            .map_err(|error| FieldError::Failed(error.to_string()))?;
        let outcomes = self.set_all::<T>(&inputs, &properties, context)?;
        Ok(plural_payload(T::SECTION, outcomes))
    }

    /// Applies `inputs` of kind `T`, one outcome each.
    pub(super) fn set_all<T: GraphmanKind>(
        &mut self,
        inputs: &[Value],
        properties: &BundleProperties,
        context: &Context<'_>,
    ) -> Result<Vec<EntityOutcome>, FieldError> {
        let section = T::section()?;
        Ok(inputs
            .iter()
            .map(|input| self.set_one::<T>(section, properties, input, context))
            .collect())
    }

    /// Applies one input under its mapping.
    pub(super) fn set_one<T: GraphmanKind>(
        &mut self,
        section: &Section,
        properties: &BundleProperties,
        input: &Value,
        context: &Context<'_>,
    ) -> EntityOutcome {
        let mapping = properties.mapping_for(section, input);
        let source = section.identity(input);
        let described = section.describe(input);
        let existing = T::find(&self.store, input);
        let decision = mapping::decide(&mapping, existing.is_some());
        let detailed =
            DetailedStatus::new(mapping.action, decision.status()).with_source_identity(&source);
        let fail = |description: String| {
            EntityOutcome::new(
                DetailedStatus::error(mapping.action, description).with_source_identity(&source),
                None,
            )
        };
        let id = match decision {
            Decision::Refuse(reason) => {
                return EntityOutcome::new(
                    detailed.described(format!("{described}: {reason}")),
                    None,
                );
            }
            Decision::AlreadyAbsent => {
                return EntityOutcome::new(
                    detailed.described(format!("{described} not found")),
                    None,
                );
            }
            Decision::Ignore | Decision::UseExisting => existing,
            Decision::Delete => {
                let Some(id) = existing else {
                    return fail(format!("{described} not found"));
                };
                let entity = self
                    .store
                    .get::<T>(&id)
                    .map(|stored| to_json(stored, &self.store));
                if let Err(error) = T::remove(&mut self.store, &id, context) {
                    return fail(format!("{described}: {error}"));
                }
                self.changed = true;
                return EntityOutcome::new(detailed.with_target("goid", id), entity);
            }
            Decision::Create => {
                let id = T::new_id(&self.store, input);
                match self.save::<T>(&id, input, None, context) {
                    Ok(_) => Some(id),
                    Err(error) => return fail(format!("{described}: {error}")),
                }
            }
            Decision::Update => {
                let Some(id) = existing else {
                    return fail(format!("{described} not found"));
                };
                match self.save::<T>(&id, input, Some(&id), context) {
                    Ok(Change::Unchanged) => {
                        let detailed =
                            DetailedStatus::new(mapping.action, EntityMutationStatus::UsedExisting)
                                .with_source_identity(&source)
                                .described(format!("{described} is already as given"));
                        return self.outcome::<T>(detailed, &id);
                    }
                    Ok(_) => Some(id),
                    Err(error) => return fail(format!("{described}: {error}")),
                }
            }
        };
        match id {
            Some(id) => self.outcome::<T>(detailed, &id),
            None => EntityOutcome::new(detailed, None),
        }
    }

    /// Saves the entity `input` describes at `id` (over `existing`); what changed.
    fn save<T: GraphmanKind>(
        &mut self,
        id: &str,
        input: &Value,
        existing: Option<&str>,
        context: &Context<'_>,
    ) -> Result<Change, String> {
        let previous = existing.and_then(|id| self.store.get::<T>(id)).cloned();
        let entity = T::from_input(&self.store, input, previous.as_ref(), context)?;
        let options = RevisionOptions {
            activate: context.options.activate,
            comment: context.options.comment.clone(),
        };
        let saved = self
            .store
            .save(Some(id), entity, None, &options)
            .map_err(|error| error.to_string())?;
        if saved.change != Change::Unchanged {
            self.changed = true;
        }
        Ok(saved.change)
    }

    /// The outcome for stored entity `id`: its goid as target, its JSON.
    pub(super) fn outcome<T: GraphmanKind>(
        &self,
        detailed: DetailedStatus,
        id: &str,
    ) -> EntityOutcome {
        let entity = self
            .store
            .get::<T>(id)
            .map(|stored| to_json(stored, &self.store));
        EntityOutcome::new(detailed.with_target("goid", id), entity)
    }

    /// `deleteXs(refInputs: [XRefInput!], <list>: [String!])`: each ref deleted, a missing
    /// one `NONE`. `lists` maps deprecated string-list arguments to the ref field they
    /// stand for (`names` → `name`).
    pub(super) fn delete<T: GraphmanKind>(
        &mut self,
        field: &Field,
        context: &Context<'_>,
        lists: &[(&str, &str)],
    ) -> Result<Value, FieldError> {
        let mut refs: Vec<Value> = field.optional_argument("refInputs")?.unwrap_or_default();
        for (argument, key) in lists {
            let values: Vec<String> = field.optional_argument(argument)?.unwrap_or_default();
            refs.extend(values.into_iter().map(|value| json!({ *key: value })));
        }
        let outcomes = self.delete_all::<T>(&refs, context)?;
        Ok(plural_payload(T::SECTION, outcomes))
    }

    /// Deletes the entities `refs` identify, one outcome each.
    pub(super) fn delete_all<T: GraphmanKind>(
        &mut self,
        refs: &[Value],
        context: &Context<'_>,
    ) -> Result<Vec<EntityOutcome>, FieldError> {
        let section = T::section()?;
        let action = EntityMutationAction::Delete;
        Ok(refs
            .iter()
            .map(|reference| {
                let source = section.identity(reference);
                let described = section.describe(reference);
                let Some(id) = T::find(&self.store, reference) else {
                    return EntityOutcome::new(
                        DetailedStatus::not_found(action, &described).with_source_identity(&source),
                        None,
                    );
                };
                let entity = self
                    .store
                    .get::<T>(&id)
                    .map(|stored| to_json(stored, &self.store));
                match T::remove(&mut self.store, &id, context) {
                    Ok(()) => {
                        self.changed = true;
                        EntityOutcome::new(
                            DetailedStatus::new(action, EntityMutationStatus::Deleted)
                                .with_source_identity(&source)
                                .with_target("goid", id),
                            entity,
                        )
                    }
                    Err(error) => EntityOutcome::new(
                        DetailedStatus::error(action, format!("{described}: {error}"))
                            .with_source_identity(&source),
                        None,
                    ),
                }
            })
            .collect())
    }
}
