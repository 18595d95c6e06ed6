//! Which configuration of a plugin applies to a request (`lookup_cfg` in
//! `kong/runloop/plugins_iterator.lua`): the most specific enabled one for the route,
//! service and consumer, among those whose `protocols` include the request's.

use serde_json::Value;

use super::Scope;
use crate::kong::store::{Entity, foreign_id, text};

/// The enabled configuration of plugin `name` for `scope`: route+service+consumer, then
/// route+consumer, service+consumer, route+service, consumer, route, service, global.
pub(crate) fn applicable<'a>(
    plugins: &[&'a Entity],
    name: &str,
    scope: Scope<'_>,
    protocol: &str,
) -> Option<&'a Entity> {
    let Scope {
        route,
        service,
        consumer,
    } = scope;
    let combos = [
        (route, service, consumer),
        (route, None, consumer),
        (None, service, consumer),
        (route, service, None),
        (None, None, consumer),
        (route, None, None),
        (None, service, None),
        (None, None, None),
    ];
    let candidates: Vec<&Entity> = plugins
        .iter()
        .copied()
        .filter(|plugin| text(plugin, "name") == name)
        .filter(|plugin| plugin.get("enabled") != Some(&Value::Bool(false)))
        .filter(|plugin| {
            plugin
                .get("protocols")
                .and_then(Value::as_array)
                .is_none_or(|protocols| protocols.iter().any(|item| item == protocol))
        })
        .collect();
    combos
        .iter()
        .find_map(|&(route_id, service_id, consumer_id)| {
            let complete = [
                (route_id, route),
                (service_id, service),
                (consumer_id, consumer),
            ]
            .iter()
            .all(|(wanted, known)| wanted.is_none() || known.is_some());
            if !complete {
                return None;
            }
            candidates.iter().copied().find(|plugin| {
                foreign_id(plugin, "route") == route_id
                    && foreign_id(plugin, "service") == service_id
                    && foreign_id(plugin, "consumer") == consumer_id
            })
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::row;
    use super::*;

    fn plugin(
        id: &str,
        name: &str,
        route: Option<&str>,
        service: Option<&str>,
        consumer: Option<&str>,
    ) -> Entity {
        let reference = |id: Option<&str>| id.map_or(Value::Null, |id| json!({"id": id}));
        row(json!({
            "id": id, "name": name, "enabled": true, "config": {},
            "protocols": ["grpc", "grpcs", "http", "https"],
            "route": reference(route), "service": reference(service), "consumer": reference(consumer),
        }))
    }

    fn scope<'a>(
        route: Option<&'a str>,
        service: Option<&'a str>,
        consumer: Option<&'a str>,
    ) -> Scope<'a> {
        Scope {
            route,
            service,
            consumer,
        }
    }

    #[test]
    fn the_most_specific_enabled_plugin_wins() {
        let plugins = [
            plugin("global", "key-auth", None, None, None),
            plugin("service", "key-auth", None, Some("s"), None),
            plugin("route", "key-auth", Some("r"), None, None),
            plugin("route-service", "key-auth", Some("r"), Some("s"), None),
            plugin("consumer", "acl", None, None, Some("c")),
            plugin("service-acl", "acl", None, Some("s"), None),
        ];
        let plugins: Vec<&Entity> = plugins.iter().collect();
        let id = |name: &str, scope: Scope<'_>| {
            applicable(&plugins, name, scope, "http").map(|plugin| text(plugin, "id").to_owned())
        };
        let cases = [
            (
                "key-auth",
                scope(Some("r"), Some("s"), None),
                Some("route-service"),
            ),
            ("key-auth", scope(Some("r"), Some("t"), None), Some("route")),
            (
                "key-auth",
                scope(Some("q"), Some("s"), None),
                Some("service"),
            ),
            (
                "key-auth",
                scope(Some("q"), Some("t"), None),
                Some("global"),
            ),
            // A consumer-scoped plugin beats a service-scoped one.
            (
                "acl",
                scope(Some("r"), Some("s"), Some("c")),
                Some("consumer"),
            ),
            (
                "acl",
                scope(Some("r"), Some("s"), None),
                Some("service-acl"),
            ),
            ("rate-limiting", scope(Some("r"), Some("s"), None), None),
        ];
        for (name, scope, expected) in cases {
            assert_eq!(id(name, scope).as_deref(), expected, "{name} {scope:?}");
        }
    }

    #[test]
    fn disabled_plugins_and_other_protocols_fall_back_to_less_specific_ones() {
        let mut route_plugin = plugin("route", "key-auth", Some("r"), None, None);
        route_plugin.insert("enabled".into(), json!(false));
        let mut https_only = plugin("service", "key-auth", None, Some("s"), None);
        https_only.insert("protocols".into(), json!(["https"]));
        let plugins = [
            plugin("global", "key-auth", None, None, None),
            route_plugin,
            https_only,
        ];
        let plugins: Vec<&Entity> = plugins.iter().collect();
        let found = applicable(
            &plugins,
            "key-auth",
            scope(Some("r"), Some("s"), None),
            "http",
        );
        assert_eq!(found.map(|plugin| text(plugin, "id")), Some("global"));
        let found = applicable(
            &plugins,
            "key-auth",
            scope(Some("r"), Some("s"), None),
            "https",
        );
        assert_eq!(found.map(|plugin| text(plugin, "id")), Some("service"));
    }
}
