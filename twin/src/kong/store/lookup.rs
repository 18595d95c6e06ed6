//! Read access for code outside the Admin API (the proxy's credential and plugin
//! lookups), lookups by a unique field, and the removal of expired rows (`ttl` hook).

use serde_json::{Value, json};

use super::{Entity, Store, entity_id};

impl Store {
    /// Every row of `collection`, ascending by id.
    pub fn rows(&self, collection: &str) -> impl Iterator<Item = &Entity> {
        self.tables
            .get(collection)
            .into_iter()
            .flat_map(|table| table.rows.values())
    }

    /// The row whose field `field` holds the string `value`: through the unique index
    /// when the field has one (unscoped), else by scanning.
    pub fn find_by(&self, collection: &str, field: &str, value: &str) -> Option<&Entity> {
        let table = self.tables.get(collection)?;
        let scoped = self
            .registry
            .get(collection)
            .is_some_and(|schema| schema.unique_scope.is_some());
        match table.unique.get(field) {
            Some(index) if !scoped => {
                let id = index.get(&json!(value).to_string())?;
                table.rows.get(id)
            }
            _ => table
                .rows
                .values()
                .find(|row| row.get(field).and_then(Value::as_str) == Some(value)),
        }
    }

    /// Deletes the rows of schemas with the `ttl` hook whose expiry (`ttl`, absolute Unix
    /// seconds) is at or before `now`; Kong hides them at once and removes them later.
    pub fn purge_expired(&mut self, now: f64) {
        let expiring: Vec<&'static str> = self
            .registry
            .schemas
            .iter()
            .filter(|schema| schema.ttl)
            .map(|schema| schema.collection)
            .collect();
        for collection in expiring {
            let expired: Vec<String> = self
                .rows(collection)
                .filter(|row| !is_live(row, now))
                .map(entity_id)
                .collect();
            for id in expired {
                // Expiring rows have no restricting children; a refusal would keep the row.
                let _ = self.delete(collection, &id);
            }
        }
    }
}

/// Whether `row` has no expiry or expires after `now` (Unix seconds).
pub fn is_live(row: &Entity, now: f64) -> bool {
    row.get("ttl")
        .and_then(Value::as_f64)
        .is_none_or(|expires_at| expires_at > now)
}
