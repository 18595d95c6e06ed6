//! The store side of two entity hooks: [`ChildKeys`] (a parent field mirroring its
//! children's keys, certificate `snis`) and [`IdReference`] (code 19 on delete).

use serde_json::{Value, json};

use super::{Entity, Store, entity_id, foreign_id};
use crate::kong::error::DaoError;
use crate::kong::schema::{self, ChildKeys, Schema};

impl Store {
    /// The entity addressed by the key of one of its children (`/certificates/{sni}`).
    pub(super) fn find_through_child_key(&self, schema: &Schema, key: &str) -> Option<&Entity> {
        let keys = schema.child_keys?;
        let child = self.find(keys.child, key)?;
        let id = foreign_id(child, keys.foreign_key)?;
        self.tables.get(schema.collection)?.rows.get(id)
    }

    /// The 404 message for a URL `key` of `collection` that should name a child and
    /// names none (`SNI not found`); `None` when the key is an id or resolves.
    pub fn missing_child_key(&self, collection: &str, key: &str) -> Option<&'static str> {
        let keys = self.registry.get(collection)?.child_keys?;
        let missing = !schema::is_uuid(key) && self.find(keys.child, key).is_none();
        missing.then_some(keys.not_found)
    }

    /// A PUT addressed by a child key adds that key to the body's list (Kong's
    /// `prepare_args`); a body without the list is left alone.
    pub(super) fn add_url_child_key(&self, collection: &str, key: &str, body: &mut Entity) {
        let Some(keys) = self.registry.get(collection).and_then(|s| s.child_keys) else {
            return;
        };
        if schema::is_uuid(key) {
            return;
        }
        if let Some(Value::Array(names)) = body.get_mut(keys.field)
            && !names.iter().any(|name| name.as_str() == Some(key))
        {
            names.push(json!(key));
        }
    }

    /// The child keys a write asks for, sorted: `None` to keep the current ones.
    ///
    /// A `null` list (or an absent one when `replace`, as PUT) empties them. Refuses a
    /// key given twice, then a key already owned by another parent than `owner`.
    pub(super) fn child_keys_input(
        &self,
        collection: &str,
        body: &mut Entity,
        owner: Option<&str>,
        replace: bool,
    ) -> Result<Option<Vec<String>>, DaoError> {
        let Some(keys) = self.registry.get(collection).and_then(|s| s.child_keys) else {
            return Ok(None);
        };
        let names: Vec<String> = match body.get(keys.field) {
            None if !replace => return Ok(None),
            None | Some(Value::Null) => {
                body.insert(keys.field.to_owned(), json!([]));
                Vec::new()
            }
            Some(Value::Array(items)) => match items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
            {
                Some(names) => names,
                // Not a list of strings: validation reports it.
                None => return Ok(None),
            },
            Some(_) => return Ok(None),
        };
        if let Some(duplicate) = first_duplicate(&names) {
            return Err(violation(keys, format!("{duplicate} is duplicated")));
        }
        let mut names = names;
        names.sort();
        for name in &names {
            let holder = self
                .find(keys.child, name)
                .and_then(|child| foreign_id(child, keys.foreign_key));
            if let Some(holder) = holder.filter(|holder| Some(*holder) != owner) {
                let message = format!(
                    "{name} already associated with existing {} '{holder}'",
                    keys.foreign_key
                );
                return Err(violation(keys, message));
            }
        }
        Ok(Some(names))
    }

    /// Makes exactly `names` (when given) reference the just-written `parent`, and
    /// returns the parent as stored afterwards.
    pub(super) fn sync_child_keys(
        &mut self,
        collection: &str,
        parent: Entity,
        names: Option<Vec<String>>,
        now: i64,
    ) -> Result<Entity, DaoError> {
        let keys = self.registry.get(collection).and_then(|s| s.child_keys);
        let (Some(keys), Some(names)) = (keys, names) else {
            return Ok(parent);
        };
        let parent_id = entity_id(&parent);
        let key_field = self.child_key_field(keys);
        for child in self.children_of_parent(keys, &parent_id) {
            let name = child
                .get(key_field)
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !names.iter().any(|wanted| wanted == name) {
                self.delete(keys.child, &entity_id(&child))?;
            }
        }
        for name in &names {
            let owned = self
                .find(keys.child, name)
                .is_some_and(|child| foreign_id(child, keys.foreign_key) == Some(&parent_id));
            if !owned {
                let mut child = Entity::new();
                child.insert(key_field.to_owned(), json!(name));
                child.insert(keys.foreign_key.to_owned(), json!({"id": parent_id}));
                self.insert(keys.child, child, now)?;
            }
        }
        Ok(self
            .tables
            .get(collection)
            .and_then(|table| table.rows.get(&parent_id))
            .cloned()
            .unwrap_or(parent))
    }

    /// Deletes the mirrored children of the parent `id` before the parent's own delete
    /// is attempted; Kong does this first, so a refused delete still loses them.
    pub(super) fn delete_child_keys(&mut self, collection: &str, id: &str) -> Result<(), DaoError> {
        let Some(keys) = self.registry.get(collection).and_then(|s| s.child_keys) else {
            return Ok(());
        };
        for child in self.children_of_parent(keys, id) {
            self.delete(keys.child, &entity_id(&child))?;
        }
        Ok(())
    }

    /// Recomputes the mirrored field of every parent that `rows` (entities of
    /// `collection`, before and after a write) reference.
    pub(super) fn refresh_child_keys(&mut self, collection: &str, rows: &[&Entity]) {
        let parents: Vec<(&'static str, ChildKeys)> = self
            .registry
            .schemas
            .iter()
            .filter_map(|schema| schema.child_keys.map(|keys| (schema.collection, keys)))
            .filter(|(_, keys)| keys.child == collection)
            .collect();
        for (parent, keys) in parents {
            let key_field = self.child_key_field(keys);
            for row in rows {
                let Some(parent_id) = foreign_id(row, keys.foreign_key) else {
                    continue;
                };
                let mut names: Vec<Value> = self
                    .children_of_parent(keys, parent_id)
                    .iter()
                    .filter_map(|child| child.get(key_field).cloned())
                    .collect();
                names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                if let Some(row) = self
                    .tables
                    .get_mut(parent)
                    .and_then(|table| table.rows.get_mut(parent_id))
                {
                    row.insert(keys.field.to_owned(), Value::Array(names));
                }
            }
        }
    }

    /// Code 19 while an entity lists `id` in one of the schema's [`IdReference`]s.
    ///
    /// [`IdReference`]: crate::kong::schema::IdReference
    pub(super) fn check_id_references(&self, collection: &str, id: &str) -> Result<(), DaoError> {
        let Some(schema) = self.registry.get(collection) else {
            return Ok(());
        };
        for reference in &schema.id_references {
            let referencing = self.tables.get(reference.collection).and_then(|table| {
                table.rows.values().find(|row| {
                    row.get(reference.field)
                        .and_then(Value::as_array)
                        .is_some_and(|ids| ids.iter().any(|item| item.as_str() == Some(id)))
                })
            });
            if let Some(row) = referencing {
                let noun = collection.trim_end_matches('s').replace('_', " ");
                return Err(DaoError::ReferencedByOthers {
                    message: format!(
                        "{noun} {id} is still referenced by {} (id = {})",
                        reference.collection,
                        entity_id(row)
                    ),
                });
            }
        }
        Ok(())
    }

    /// The children of `parent_id` in the hook's child collection.
    fn children_of_parent(&self, keys: ChildKeys, parent_id: &str) -> Vec<Entity> {
        self.tables.get(keys.child).map_or_else(Vec::new, |table| {
            table
                .rows
                .values()
                .filter(|row| foreign_id(row, keys.foreign_key) == Some(parent_id))
                .cloned()
                .collect()
        })
    }

    /// The child's endpoint key field (e.g. `name`).
    fn child_key_field(&self, keys: ChildKeys) -> &'static str {
        self.registry
            .get(keys.child)
            .and_then(|child| child.endpoint_key)
            .unwrap_or("id")
    }
}

/// The first name that occurs twice, in input order.
fn first_duplicate(names: &[String]) -> Option<&str> {
    names
        .iter()
        .enumerate()
        .find(|(index, name)| names[..*index].contains(name))
        .map(|(_, name)| name.as_str())
}

/// A code-2 violation of the hook's field.
fn violation(keys: ChildKeys, message: String) -> DaoError {
    let mut fields = serde_json::Map::new();
    fields.insert(keys.field.to_owned(), json!(message));
    DaoError::SchemaViolation {
        fields,
        entity: Vec::new(),
    }
}
