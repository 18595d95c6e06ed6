//! The store side of the [`Schema::cache_key`] hook: composite uniqueness (plugins).
//!
//! [`Schema::cache_key`]: crate::kong::schema::Schema::cache_key

use serde_json::{Map, Value};

use super::{Entity, Store, entity_id};
use crate::kong::error::DaoError;

impl Store {
    /// 409 with every part of the key when another row of `collection` has the same
    /// values in all of the schema's cache-key fields.
    pub(super) fn check_cache_key(
        &self,
        collection: &str,
        entity: &Entity,
    ) -> Result<(), DaoError> {
        let Some(fields) = self
            .registry
            .get(collection)
            .and_then(|schema| schema.cache_key)
        else {
            return Ok(());
        };
        let part = |row: &Entity, field: &str| row.get(field).cloned().unwrap_or(Value::Null);
        let id = entity_id(entity);
        let taken = self.tables.get(collection).is_some_and(|table| {
            table.rows.values().any(|row| {
                entity_id(row) != id
                    && fields
                        .iter()
                        .all(|field| part(row, field) == part(entity, field))
            })
        });
        if !taken {
            return Ok(());
        }
        let parts: Map<String, Value> = fields
            .iter()
            .map(|field| ((*field).to_owned(), part(entity, field)))
            .collect();
        Err(DaoError::UniqueComposite { parts })
    }
}
