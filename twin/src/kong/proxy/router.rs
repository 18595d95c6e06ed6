//! Route matching as Kong 3.x's default `traditional_compatible` router (reference §7.2),
//! and the upstream path Kong builds from the match (`path_handling` `v0`).
//!
//! Kong compiles each route to an expression with a priority (`kong/router/transform.lua`):
//! a route whose paths mix regexes and prefix lengths is split into one matcher per
//! group, and matchers are tried from the highest priority down. Main entry: [`find`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::http::HeaderMap;
use regex::Regex;
use serde_json::Value;

use crate::kong::entities::checks::split_host_port;
use crate::kong::store::Entity;
use crate::kong::store::text;

/// What the router looks at in a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts<'a> {
    /// The method, e.g. `GET`.
    pub(crate) method: &'a str,
    /// The `Host` header's host, lowercased, without its port.
    pub(crate) host: &'a str,
    /// The port the client connected to (Kong's `net.dst.port`).
    pub(crate) port: u16,
    /// The path, without the query.
    pub(crate) path: &'a str,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The TLS server name, on TLS listeners that know it.
    pub(crate) sni: Option<&'a str>,
}

/// The route that matched, its service and the matched path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteMatch {
    /// The matched route.
    pub(crate) route: Entity,
    /// Its service (`None` for a route without one).
    pub(crate) service: Option<Entity>,
    /// The part of the path the route's path matched (the prefix, or a regex's match).
    pub(crate) matched_path: Option<String>,
}

/// Compiled `~` path regexes by source; an invalid regex is kept as `None` (never matches).
#[derive(Debug, Default)]
pub(crate) struct RegexCache {
    /// Regexes by route path (with its `~`).
    compiled: Mutex<HashMap<String, Option<Regex>>>,
}

impl RegexCache {
    /// The text `path` (a `~` route path) matches at the start of `request_path`, if any.
    fn matched<'a>(&self, path: &str, request_path: &'a str) -> Option<&'a str> {
        let mut compiled = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        let regex = compiled
            .entry(path.to_owned())
            .or_insert_with(|| Regex::new(&format!("^(?:{})", &path[1..])).ok());
        regex
            .as_ref()?
            .find(request_path)
            .map(|found| &request_path[..found.end()])
    }
}

/// Kong's route priority, most significant first (`transform.lua` `get_priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Priority {
    /// How many of methods, hosts, headers, paths, snis, sources, destinations are set.
    match_weight: u8,
    /// Hosts are set and none has a wildcard.
    plain_hosts: bool,
    /// Number of header names.
    header_count: usize,
    /// The paths are regexes.
    regex: bool,
    /// `regex_priority`, counted only for regex paths.
    regex_priority: i64,
    /// Length of the prefix paths.
    prefix_length: usize,
}

/// One matcher: a route restricted to one group of its paths.
#[derive(Debug)]
struct Matcher<'a> {
    /// The route.
    route: &'a Entity,
    /// The group's paths (empty when the route has none).
    paths: Vec<&'a str>,
    /// The matcher's priority.
    priority: Priority,
}

/// The highest-priority route matching `request` among `routes`; `service_of` finds a
/// service by id. Routes of disabled services are not routable; ties go to the
/// greater route id, as the ATC router orders matchers of equal priority.
pub(crate) fn find<'a>(
    routes: impl IntoIterator<Item = &'a Entity>,
    service_of: impl Fn(&str) -> Option<Entity>,
    request: &RequestFacts<'_>,
    regexes: &RegexCache,
) -> Option<RouteMatch> {
    let mut services: HashMap<&str, Option<Entity>> = HashMap::new();
    let mut matchers = Vec::new();
    for route in routes.into_iter().filter(|route| is_http_route(route)) {
        let service_id = route
            .get("service")
            .and_then(|service| service.get("id"))
            .and_then(Value::as_str);
        if let Some(id) = service_id {
            let service = services.entry(id).or_insert_with(|| service_of(id));
            let enabled = service
                .as_ref()
                .is_some_and(|service| service.get("enabled") != Some(&Value::Bool(false)));
            if !enabled {
                continue;
            }
        }
        matchers.extend(split_by_path_group(route));
    }
    matchers.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| text(b.route, "id").cmp(text(a.route, "id")))
    });
    matchers.iter().find_map(|matcher| {
        let matched_path = matches(matcher, request, regexes)?;
        let service =
            text_of_service(matcher.route).and_then(|id| services.get(id).cloned().flatten());
        Some(RouteMatch {
            route: matcher.route.clone(),
            service,
            matched_path,
        })
    })
}

/// The route's service id.
fn text_of_service(route: &Entity) -> Option<&str> {
    route.get("service")?.get("id")?.as_str()
}

/// Whether the route belongs to the HTTP subsystem (http, https, grpc, grpcs).
fn is_http_route(route: &Entity) -> bool {
    strings(route, "protocols")
        .iter()
        .any(|protocol| matches!(*protocol, "http" | "https" | "grpc" | "grpcs"))
}

/// One matcher per path group: all regexes together, prefixes by length.
fn split_by_path_group(route: &Entity) -> Vec<Matcher<'_>> {
    let paths = strings(route, "paths");
    let mut groups: Vec<(Option<usize>, Vec<&str>)> = Vec::new();
    for path in paths {
        let key = (!path.starts_with('~')).then_some(path.len());
        match groups.iter_mut().find(|(group, _)| *group == key) {
            Some((_, members)) => members.push(path),
            None => groups.push((key, vec![path])),
        }
    }
    if groups.is_empty() {
        groups.push((Some(0), Vec::new()));
    }
    groups
        .into_iter()
        .map(|(key, paths)| Matcher {
            route,
            priority: priority(route, !paths.is_empty(), key),
            paths,
        })
        .collect()
}

/// The priority of `route` restricted to one path group (`prefix_length` `None` for regexes).
fn priority(route: &Entity, has_paths: bool, prefix_length: Option<usize>) -> Priority {
    let hosts = strings(route, "hosts");
    let header_count = route
        .get("headers")
        .and_then(Value::as_object)
        .map_or(0, |headers| headers.len().min(255));
    let set = [
        !strings(route, "sources").is_empty() || has_records(route, "sources"),
        !strings(route, "destinations").is_empty() || has_records(route, "destinations"),
        !strings(route, "methods").is_empty(),
        !hosts.is_empty(),
        header_count > 0,
        !strings(route, "snis").is_empty(),
        has_paths,
    ];
    let regex = has_paths && prefix_length.is_none();
    Priority {
        match_weight: set.iter().filter(|set| **set).count() as u8,
        plain_hosts: !hosts.is_empty() && hosts.iter().all(|host| !host.contains('*')),
        header_count,
        regex,
        regex_priority: if regex {
            route
                .get("regex_priority")
                .and_then(Value::as_i64)
                .unwrap_or_default()
        } else {
            0
        },
        prefix_length: prefix_length.unwrap_or_default() & 0x7FFFF,
    }
}

/// Whether the matcher accepts `request`; on success, the matched path (if it has paths).
fn matches(
    matcher: &Matcher<'_>,
    request: &RequestFacts<'_>,
    regexes: &RegexCache,
) -> Option<Option<String>> {
    let route = matcher.route;
    let methods = strings(route, "methods");
    if !methods.is_empty() && !methods.contains(&request.method) {
        return None;
    }
    let hosts = strings(route, "hosts");
    if !hosts.is_empty() && !hosts.iter().any(|host| host_matches(host, request)) {
        return None;
    }
    if !headers_match(route, request.headers) {
        return None;
    }
    let snis = strings(route, "snis");
    if let Some(sni) = request.sni
        && !snis.is_empty()
        && !snis.iter().any(|name| sni_matches(name, sni))
    {
        return None;
    }
    if matcher.paths.is_empty() {
        return Some(None);
    }
    matcher.paths.iter().find_map(|path| {
        let matched = if path.starts_with('~') {
            regexes.matched(path, request.path)
        } else {
            request
                .path
                .starts_with(path)
                .then(|| &request.path[..path.len()])
        };
        matched.map(|matched| Some(matched.to_owned()))
    })
}

/// Whether a route host (`host`, `*.suffix`, `prefix.*`, optional `:port`) matches.
fn host_matches(pattern: &str, request: &RequestFacts<'_>) -> bool {
    let (host, port) = split_host_port(pattern).unwrap_or((pattern, None));
    if port.is_some_and(|port| port != request.port) {
        return false;
    }
    let host = host.to_ascii_lowercase();
    if let Some(suffix) = host.strip_prefix('*') {
        request.host.ends_with(suffix)
    } else if let Some(prefix) = host.strip_suffix('*') {
        request.host.starts_with(prefix)
    } else {
        request.host == host
    }
}

/// Whether an SNI pattern (exact, `*.suffix` or `prefix.*`) matches the server name.
fn sni_matches(pattern: &str, sni: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let sni = sni.to_ascii_lowercase();
    if let Some(suffix) = pattern.strip_prefix('*') {
        sni.ends_with(suffix)
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        sni.starts_with(prefix)
    } else {
        sni == pattern
    }
}

/// Every route header must have a request value equal to one of its values (case
/// insensitive), or matching one of its `~*` regexes.
fn headers_match(route: &Entity, headers: &HeaderMap) -> bool {
    let Some(wanted) = route.get("headers").and_then(Value::as_object) else {
        return true;
    };
    wanted.iter().all(|(name, values)| {
        let given: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(str::to_ascii_lowercase)
            .collect();
        let values = values.as_array().map(Vec::as_slice).unwrap_or_default();
        values
            .iter()
            .filter_map(Value::as_str)
            .any(|value| match value.strip_prefix("~*") {
                Some(pattern) => Regex::new(&pattern.to_ascii_lowercase())
                    .is_ok_and(|regex| given.iter().any(|text| regex.is_match(text))),
                None => given.contains(&value.to_ascii_lowercase()),
            })
    })
}

/// The upstream path for a request path (Kong's `get_upstream_uri_v0`): the service
/// path (`/` when unset) joined with the request path, minus the matched part when the
/// route strips it.
pub(crate) fn upstream_path(
    strip_path: bool,
    matched_path: Option<&str>,
    request_path: &str,
    service_path: Option<&str>,
) -> String {
    let base = service_path.unwrap_or("/");
    let prefix = matched_path.filter(|_| strip_path).unwrap_or("/");
    let postfix = sanitize_postfix(request_path.get(prefix.len()..).unwrap_or_default());
    let request_ends_with_slash = request_path.ends_with('/');
    if let Some(trimmed) = base.strip_suffix('/') {
        if !strip_path {
            return format!("{base}{}", request_path.get(1..).unwrap_or_default());
        }
        if postfix.is_empty() {
            if base == "/" {
                "/".to_owned()
            } else if request_ends_with_slash {
                base.to_owned()
            } else {
                trimmed.to_owned()
            }
        } else if postfix.starts_with('/') {
            format!("{trimmed}{postfix}")
        } else {
            format!("{base}{postfix}")
        }
    } else if !strip_path {
        if request_path == "/" {
            base.to_owned()
        } else {
            format!("{base}{request_path}")
        }
    } else if postfix.is_empty() {
        if request_path.len() > 1 && request_ends_with_slash {
            format!("{base}/")
        } else {
            base.to_owned()
        }
    } else if postfix.starts_with('/') {
        format!("{base}{postfix}")
    } else {
        format!("{base}/{postfix}")
    }
}

/// Drops a leading `.`/`..` segment left over after stripping (`sanitize_uri_postfix`).
fn sanitize_postfix(postfix: &str) -> &str {
    match postfix {
        "." | ".." => "",
        _ => postfix
            .strip_prefix("./")
            .or_else(|| postfix.strip_prefix("../"))
            .unwrap_or(postfix),
    }
}

/// The string elements of an array field.
fn strings<'a>(entity: &'a Entity, field: &str) -> Vec<&'a str> {
    entity
        .get(field)
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |items| {
            items.iter().filter_map(Value::as_str).collect()
        })
}

/// Whether an array field holds records (`sources`, `destinations`).
fn has_records(entity: &Entity, field: &str) -> bool {
    entity
        .get(field)
        .and_then(Value::as_array)
        .is_some_and(|items| items.iter().any(Value::is_object))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn route(id: &str, body: Value) -> Entity {
        let mut entity = json!({
            "id": id, "protocols": ["http", "https"], "methods": null, "hosts": null,
            "paths": null, "headers": null, "snis": null, "sources": null,
            "destinations": null, "regex_priority": 0, "strip_path": true,
            "service": null,
        });
        if let (Some(target), Value::Object(fields)) = (entity.as_object_mut(), body) {
            target.extend(fields);
        }
        entity.as_object().cloned().unwrap_or_default()
    }

    fn facts<'a>(
        method: &'a str,
        host: &'a str,
        path: &'a str,
        headers: &'a HeaderMap,
    ) -> RequestFacts<'a> {
        RequestFacts {
            method,
            host,
            port: 8000,
            path,
            headers,
            sni: None,
        }
    }

    fn winner(routes: &[Entity], request: &RequestFacts<'_>) -> Option<(String, Option<String>)> {
        find(routes, |_| None, request, &RegexCache::default())
            .map(|found| (text(&found.route, "id").to_owned(), found.matched_path))
    }

    #[test]
    fn longest_prefix_wins_and_prefixes_match_mid_segment() {
        let headers = HeaderMap::new();
        let routes = [
            route("1", json!({"paths": ["/api"]})),
            route("2", json!({"paths": ["/api/v1"]})),
        ];
        let request = facts("GET", "x", "/api/v1/users", &headers);
        assert_eq!(
            winner(&routes, &request),
            Some(("2".into(), Some("/api/v1".into())))
        );
        let request = facts("GET", "x", "/apiary", &headers);
        assert_eq!(
            winner(&routes, &request),
            Some(("1".into(), Some("/api".into())))
        );
        let request = facts("GET", "x", "/other", &headers);
        assert_eq!(winner(&routes, &request), None);
    }

    #[test]
    fn more_attributes_beat_longer_paths_and_plain_hosts_beat_wildcards() {
        let headers = HeaderMap::new();
        let routes = [
            route("1", json!({"paths": ["/api/v1/long"]})),
            route("2", json!({"paths": ["/api"], "methods": ["GET"]})),
            route(
                "3",
                json!({"paths": ["/api"], "methods": ["GET"], "hosts": ["*.example.com"]}),
            ),
            route(
                "4",
                json!({"paths": ["/api"], "methods": ["GET"], "hosts": ["api.example.com"]}),
            ),
        ];
        let request = facts("GET", "api.example.com", "/api/v1/long", &headers);
        assert_eq!(
            winner(&routes, &request).map(|(id, _)| id),
            Some("4".into())
        );
        let request = facts("GET", "web.example.com", "/api/v1/long", &headers);
        assert_eq!(
            winner(&routes, &request).map(|(id, _)| id),
            Some("3".into())
        );
        let request = facts("POST", "web.example.com", "/api/v1/long", &headers);
        assert_eq!(
            winner(&routes, &request).map(|(id, _)| id),
            Some("1".into())
        );
    }

    #[test]
    fn regex_paths_beat_prefixes_and_order_by_regex_priority() {
        let headers = HeaderMap::new();
        let routes = [
            route("1", json!({"paths": ["/users/42"]})),
            route(
                "2",
                json!({"paths": ["~/users/\\d+$"], "regex_priority": 1}),
            ),
            route(
                "3",
                json!({"paths": ["~/users/(?<id>\\d+)"], "regex_priority": 5}),
            ),
        ];
        let request = facts("GET", "x", "/users/42", &headers);
        assert_eq!(
            winner(&routes, &request),
            Some(("3".into(), Some("/users/42".into())))
        );
        let request = facts("GET", "x", "/users/abc", &headers);
        assert_eq!(winner(&routes, &request), None);
        let regex_only = [route("2", json!({"paths": ["~/users/\\d+$"]}))];
        let request = facts("GET", "x", "/users/42/more", &headers);
        assert_eq!(winner(&regex_only, &request), None);
    }

    #[test]
    fn a_route_with_mixed_paths_is_split_per_group() {
        let headers = HeaderMap::new();
        let routes = [
            route("1", json!({"paths": ["/a", "/abc/def"]})),
            route("2", json!({"paths": ["/abc"]})),
        ];
        let request = facts("GET", "x", "/abc/def/g", &headers);
        assert_eq!(
            winner(&routes, &request),
            Some(("1".into(), Some("/abc/def".into())))
        );
        let request = facts("GET", "x", "/abc/x", &headers);
        assert_eq!(
            winner(&routes, &request),
            Some(("2".into(), Some("/abc".into())))
        );
        let request = facts("GET", "x", "/ax", &headers);
        assert_eq!(
            winner(&routes, &request),
            Some(("1".into(), Some("/a".into())))
        );
    }

    #[test]
    fn hosts_match_exactly_by_wildcard_and_by_port() {
        let headers = HeaderMap::new();
        let routes = [
            route("1", json!({"hosts": ["example.*"]})),
            route("2", json!({"hosts": ["api.example.com:9000"]})),
        ];
        assert_eq!(
            winner(&routes, &facts("GET", "example.org", "/", &headers)).map(|(id, _)| id),
            Some("1".into())
        );
        assert_eq!(
            winner(&routes, &facts("GET", "api.example.com", "/", &headers)),
            None
        );
        let mut on_9000 = facts("GET", "api.example.com", "/", &headers);
        on_9000.port = 9000;
        assert_eq!(
            winner(&routes, &on_9000).map(|(id, _)| id),
            Some("2".into())
        );
    }

    #[test]
    fn headers_need_one_matching_value_each() {
        let mut headers = HeaderMap::new();
        headers.insert("x-version", axum::http::HeaderValue::from_static("V2"));
        let routes = [
            route("1", json!({"paths": ["/"]})),
            route(
                "2",
                json!({"paths": ["/"], "headers": {"x-version": ["v1", "v2"]}}),
            ),
            route(
                "3",
                json!({"paths": ["/"], "headers": {"x-version": ["~*^v[3-9]$"]}}),
            ),
        ];
        assert_eq!(
            winner(&routes, &facts("GET", "x", "/", &headers)).map(|(id, _)| id),
            Some("2".into())
        );
        headers.insert("x-version", axum::http::HeaderValue::from_static("v7"));
        assert_eq!(
            winner(&routes, &facts("GET", "x", "/", &headers)).map(|(id, _)| id),
            Some("3".into())
        );
        headers.insert("x-version", axum::http::HeaderValue::from_static("v0"));
        assert_eq!(
            winner(&routes, &facts("GET", "x", "/", &headers)).map(|(id, _)| id),
            Some("1".into())
        );
    }

    #[test]
    fn routes_of_disabled_or_missing_services_are_skipped() {
        let headers = HeaderMap::new();
        let routes = [
            route("1", json!({"paths": ["/"], "service": {"id": "on"}})),
            route("2", json!({"paths": ["/x"], "service": {"id": "off"}})),
        ];
        let services = |id: &str| match id {
            "on" => json!({"id": "on", "enabled": true}).as_object().cloned(),
            "off" => json!({"id": "off", "enabled": false}).as_object().cloned(),
            _ => None,
        };
        let found = find(
            &routes,
            services,
            &facts("GET", "x", "/x", &headers),
            &RegexCache::default(),
        );
        assert_eq!(
            found.map(|found| text(&found.route, "id").to_owned()),
            Some("1".into())
        );
    }

    #[test]
    fn upstream_paths_follow_kong_joining_rules() {
        // strip_path = true
        assert_eq!(
            upstream_path(true, Some("/api"), "/api/users", None),
            "/users"
        );
        assert_eq!(upstream_path(true, Some("/api"), "/api", None), "/");
        assert_eq!(upstream_path(true, Some("/api"), "/api/", None), "/");
        assert_eq!(upstream_path(true, Some("/api"), "/apiary", None), "/ary");
        assert_eq!(
            upstream_path(true, Some("/api"), "/api/users", Some("/v2")),
            "/v2/users"
        );
        assert_eq!(
            upstream_path(true, Some("/api"), "/api", Some("/v2")),
            "/v2"
        );
        assert_eq!(
            upstream_path(true, Some("/api"), "/api/", Some("/v2")),
            "/v2/"
        );
        assert_eq!(
            upstream_path(true, Some("/api"), "/apiary", Some("/v2")),
            "/v2/ary"
        );
        assert_eq!(
            upstream_path(true, Some("/api"), "/api/users", Some("/v2/")),
            "/v2/users"
        );
        assert_eq!(
            upstream_path(true, Some("/api"), "/api", Some("/v2/")),
            "/v2"
        );
        assert_eq!(
            upstream_path(true, Some("/api"), "/api/", Some("/v2/")),
            "/v2/"
        );
        assert_eq!(upstream_path(true, Some("/api/"), "/api/../x", None), "/x");
        assert_eq!(
            upstream_path(true, None, "/users", Some("/v2")),
            "/v2/users"
        );
        // strip_path = false
        assert_eq!(
            upstream_path(false, Some("/api"), "/api/users", None),
            "/api/users"
        );
        assert_eq!(
            upstream_path(false, Some("/api"), "/api/users", Some("/v2")),
            "/v2/api/users"
        );
        assert_eq!(
            upstream_path(false, Some("/api"), "/api/users", Some("/v2/")),
            "/v2/api/users"
        );
        assert_eq!(upstream_path(false, None, "/", Some("/v2")), "/v2");
    }
}
