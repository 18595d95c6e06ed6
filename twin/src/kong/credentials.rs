//! Lookups the proxy makes against the store: live credentials and their consumers,
//! ACL groups, and the plugins that apply to a request.
//!
//! Every lookup takes `now` (Unix seconds, see [`ttl::now`]) so that expired
//! credentials are never returned even before they are purged.
//!
//! [`ttl::now`]: super::ttl::now

use serde_json::Value;

use super::entities::basic_auths;
use super::entities::plugins::catalog;
use super::store::{Entity, Store, is_live};

/// The consumer owning the live key-auth credential whose key is `key`.
pub fn key_auth_consumer<'a>(store: &'a Store, key: &str, now: f64) -> Option<&'a Entity> {
    let credential = credential(store, "key-auths", "key", key, now)?;
    consumer_of(store, credential)
}

/// The live credential of `collection` (`key-auths`, `jwts`, `basic-auths`,
/// `hmac-auths`) whose unique `field` (`key`, `username`) is `value`.
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

/// The enabled plugins that apply to a request matched to `route` and `service` (ids)
/// and authenticated as `consumer` (id): per plugin name the most specific one (Kong's
/// precedence: consumer+route+service, consumer+route, consumer+service, route+service,
/// consumer, route, service, global), in execution order (priority, highest first).
pub fn plugins_for(
    store: &Store,
    route: Option<&str>,
    service: Option<&str>,
    consumer: Option<&str>,
) -> Vec<Entity> {
    let mut chosen: Vec<(u8, &Entity)> = Vec::new();
    for plugin in store.rows("plugins") {
        if plugin.get("enabled") != Some(&Value::Bool(true)) {
            continue;
        }
        let scope = [
            ("route", route),
            ("service", service),
            ("consumer", consumer),
        ];
        let matches = scope
            .iter()
            .all(|(field, wanted)| foreign_id(plugin, field).is_none_or(|id| Some(id) == *wanted));
        if !matches {
            continue;
        }
        let rank = precedence(
            foreign_id(plugin, "consumer").is_some(),
            foreign_id(plugin, "route").is_some(),
            foreign_id(plugin, "service").is_some(),
        );
        let name = plugin.get("name");
        match chosen
            .iter_mut()
            .find(|(_, other)| other.get("name") == name)
        {
            Some(slot) if rank < slot.0 => *slot = (rank, plugin),
            Some(_) => {}
            None => chosen.push((rank, plugin)),
        }
    }
    let priority = |plugin: &Entity| {
        plugin
            .get("name")
            .and_then(Value::as_str)
            .and_then(catalog::find)
            .map_or(0, |schema| schema.priority)
    };
    let mut plugins: Vec<Entity> = chosen
        .into_iter()
        .map(|(_, plugin)| plugin.clone())
        .collect();
    plugins.sort_by_key(|plugin| std::cmp::Reverse(priority(plugin)));
    plugins
}

/// Rank of a plugin's scope; lower is more specific.
fn precedence(consumer: bool, route: bool, service: bool) -> u8 {
    match (consumer, route, service) {
        (true, true, true) => 0,
        (true, true, false) => 1,
        (true, false, true) => 2,
        (false, true, true) => 3,
        (true, false, false) => 4,
        (false, true, false) => 5,
        (false, false, true) => 6,
        (false, false, false) => 7,
    }
}

/// The id inside foreign key `field`, if set.
fn foreign_id<'a>(entity: &'a Entity, field: &str) -> Option<&'a str> {
    entity.get(field)?.get("id")?.as_str()
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

    #[test]
    fn the_most_specific_plugin_of_each_name_applies_in_priority_order() {
        let mut store = Store::new(entities::registry());
        let service = store
            .insert(
                "services",
                object(json!({"name": "s", "host": "s.internal"})),
                1,
            )
            .unwrap();
        let route = store
            .insert(
                "routes",
                object(json!({"name": "r", "paths": ["/"], "service": {"id": service["id"]}})),
                1,
            )
            .unwrap();
        let plugin = |body: Value| object(body);
        store
            .insert(
                "plugins",
                plugin(json!({"name": "rate-limiting", "config": {"minute": 5}})),
                1,
            )
            .unwrap();
        let scoped = store
            .insert(
                "plugins",
                plugin(json!({"name": "rate-limiting", "config": {"minute": 9},
                    "route": {"id": route["id"]}})),
                1,
            )
            .unwrap();
        store
            .insert(
                "plugins",
                plugin(json!({"name": "key-auth", "service": {"id": service["id"]}})),
                1,
            )
            .unwrap();
        let route_id = route["id"].as_str();
        let service_id = service["id"].as_str();
        let applied = plugins_for(&store, route_id, service_id, None);
        let names: Vec<&Value> = applied.iter().map(|p| &p["name"]).collect();
        assert_eq!(names, [&json!("key-auth"), &json!("rate-limiting")]);
        assert_eq!(applied[1]["id"], scoped["id"]);
        let elsewhere = plugins_for(&store, None, None, None);
        assert_eq!(elsewhere.len(), 1);
        assert_eq!(elsewhere[0]["config"]["minute"], json!(5));
    }
}
