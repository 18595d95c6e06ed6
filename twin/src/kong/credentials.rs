//! Lookups against the store: live credentials and their consumers, and ACL groups.
//! (Which plugins apply to a proxied request is `proxy/plugins.rs`'s `applicable`.)
//!
//! Every lookup takes `now` (Unix seconds, see [`ttl::now`]) so that expired
//! credentials are never returned even before they are purged.
//!
//! [`ttl::now`]: super::ttl::now

use serde_json::Value;

use super::entities::basic_auths;
use super::store::{Entity, Store, is_live};
use crate::kong::store::foreign_id;

/// The consumer owning the live key-auth credential whose key is `key`.
pub fn key_auth_consumer<'a>(store: &'a Store, key: &str, now: f64) -> Option<&'a Entity> {
    let credential = credential(store, "key-auths", "key", key, now)?;
    consumer_of(store, credential)
}

/// The live credential of `collection` (`key-auths`, `jwts`, `basic-auths`,
/// `hmac-auths`, `oauth2_tokens`) whose unique `field` (`key`, `username`,
/// `access_token`) is `value`.
pub fn credential<'a>(
    store: &'a Store,
    collection: &str,
    field: &str,
    value: &str,
    now: f64,
) -> Option<&'a Entity> {
    store
        .find_by(collection, field, value)
        .filter(|credential| is_live(credential, now))
}

/// The consumer a credential (or consumer-scoped plugin) belongs to.
pub fn consumer_of<'a>(store: &'a Store, owned: &Entity) -> Option<&'a Entity> {
    let id = owned.get("consumer")?.get("id")?.as_str()?;
    store.find("consumers", id)
}

/// Whether `password` is the one a basic-auth credential stores (hashed with its
/// consumer's id, as Kong does).
pub fn basic_auth_password_matches(credential: &Entity, password: &str) -> bool {
    let consumer = credential
        .get("consumer")
        .and_then(|consumer| consumer.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    credential.get("password").and_then(Value::as_str)
        == Some(basic_auths::password_hash(consumer, password).as_str())
}

/// The ACL groups of the consumer with id `consumer_id`, in id order.
pub fn acl_groups(store: &Store, consumer_id: &str) -> Vec<String> {
    store
        .rows("acls")
        .filter(|acl| foreign_id(acl, "consumer") == Some(consumer_id))
        .filter_map(|acl| acl.get("group").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failed write fails the test")]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kong::entities;

    fn object(value: Value) -> Entity {
        match value {
            Value::Object(map) => map,
            _ => Entity::new(),
        }
    }

    #[test]
    fn keys_find_their_consumer_until_they_expire() {
        let mut store = Store::new(entities::registry());
        let consumer = store
            .insert("consumers", object(json!({"username": "alice"})), 1000)
            .unwrap();
        let body = json!({"key": "k1", "consumer": {"id": consumer["id"]}, "ttl": 1010.0});
        store.insert("key-auths", object(body), 1000).unwrap();
        assert_eq!(
            key_auth_consumer(&store, "k1", 1009.9).map(|c| c["username"].clone()),
            Some(json!("alice"))
        );
        assert!(key_auth_consumer(&store, "k1", 1010.0).is_none());
        assert!(key_auth_consumer(&store, "nope", 1000.0).is_none());
        store.purge_expired(1010.0);
        assert_eq!(store.count("key-auths"), 0);
    }
}
