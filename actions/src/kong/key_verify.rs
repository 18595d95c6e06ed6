//! How `kong.key_rotate` proves that a key works ([`KeyCheck`]): a GET through the
//! gateway's proxy (`proxy_url`) to a route protected by key-auth, with the key in the
//! plugin's header. The route is the step's `verify.path`, or the first route a
//! key-auth plugin applies to (route, then service, then global plugins).

use std::time::Duration;

use serde_json::Value;

use super::KeyVerifyArguments;
use super::gateway::KongGateway;
use super::rotation::{DEFAULT_VERIFY_TIMEOUT, VERIFY_INTERVAL, text};
use crate::web::{ExpectedStatus, Method, WebClient, WebError, WebRequest, error_chain};
use runsheet_engine::ActionError;

/// The header key-auth reads unless its `key_names` say otherwise.
pub const DEFAULT_KEY_HEADER: &str = "apikey";

/// The longest a single verification request may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// Where and how a key is checked through the proxy.
#[derive(Debug, Clone)]
pub struct KeyCheck {
    /// The proxy path requested (`/orders`).
    pub path: String,
    /// The full URL requested.
    pub url: String,
    /// The header carrying the key.
    pub header: String,
    /// The `Host` header sent, when the route matches on hosts.
    pub host: Option<String>,
    /// The statuses that mean the key was accepted.
    pub expected: ExpectedStatus,
    /// How long to retry before the key counts as refused.
    pub timeout: Duration,
    /// The client the requests go through.
    web: WebClient,
}

/// A route a key can be checked on: its path, host and the key-auth header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The proxy path.
    pub path: String,
    /// A host the route matches, when it matches on hosts.
    pub host: Option<String>,
    /// The header key-auth reads first.
    pub header: String,
}

impl KeyCheck {
    /// Finds where to check keys on `gateway` (reads the Admin API only; sends no traffic).
    /// Fails when the gateway has no `proxy_url` or no protected route can be found.
    pub async fn resolve(
        gateway: &KongGateway,
        verify: &KeyVerifyArguments,
    ) -> Result<Self, ActionError> {
        let Some(proxy_url) = gateway.proxy_url.clone() else {
            return Err(ActionError::failed(format!(
                "gateway `{}` has no `proxy_url`: the new key is checked through the proxy before old keys are retired; set `proxy_url` in the environment, or `verify: {{skip: true}}`",
                gateway.name
            )));
        };
        let scheme = if proxy_url.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        let client = &gateway.client;
        let plugins: Vec<Value> = client
            .list("/plugins")
            .await?
            .into_iter()
            .filter(is_enabled_key_auth)
            .collect();
        let routes = client.list("/routes").await?;
        let target = match &verify.path {
            Some(path) => {
                if !path.starts_with('/') {
                    return Err(ActionError::InvalidArguments {
                        action: "kong.key_rotate",
                        message: format!("verify.path `{path}` must start with `/`"),
                    });
                }
                target_for_path(path, &plugins, &routes)?
            }
            None => discover(&plugins, &routes, scheme).ok_or_else(|| {
                ActionError::failed(format!(
                    "no route protected by key-auth found on gateway `{}` to check the new key through the proxy (looked for an enabled key-auth plugin on a route, a service or globally, applying to a route with a plain path that takes GET over {scheme}); nothing was changed: set `verify.path` to a proxy path protected by key-auth, or `verify: {{skip: true}}`",
                    gateway.name
                ))
            })?,
        };
        let header = verify.header.clone().unwrap_or(target.header);
        let expected = match &verify.expect_status {
            Some(codes) => ExpectedStatus::Codes(codes.as_slice().to_vec()),
            None => ExpectedStatus::Success,
        };
        Ok(Self {
            url: format!("{proxy_url}{}", target.path),
            path: target.path,
            header,
            host: target.host,
            expected,
            timeout: verify
                .timeout
                .map_or(DEFAULT_VERIFY_TIMEOUT, |timeout| timeout.0),
            web: gateway.status_web.clone(),
        })
    }

    /// The check in words (`GET /orders through http://kong:8000 with the key in header apikey`).
    pub fn describe(&self) -> String {
        let host = self
            .host
            .as_ref()
            .map(|host| format!(", Host {host}"))
            .unwrap_or_default();
        format!(
            "GET {} with the key in header `{}`{host}, expecting {}",
            self.url,
            self.header,
            self.expected.describe()
        )
    }

    /// Before anything is written: the proxy answers and refuses a key that does not
    /// exist (else the check could not tell a valid key from any other).
    pub async fn precheck(&self) -> Result<(), ActionError> {
        let bogus = format!(
            "runsheet-not-a-key-{}",
            jiff::Timestamp::now().as_nanosecond()
        );
        match self.status_with(&bogus, REQUEST_LIMIT).await {
            Ok(status) if self.expected.accepts(status) => Err(ActionError::failed(format!(
                "the key check cannot prove anything: {} answered {status} to a key that does not exist, so this path is not protected by key-auth for such a request (an `anonymous` consumer?); nothing was changed: set `verify.path` to a protected route, or `verify.expect_status`",
                self.url
            ))),
            Ok(_) => Ok(()),
            Err(error) => Err(ActionError::failed(format!(
                "cannot check keys through the proxy ({}); nothing was changed: {}",
                self.describe(),
                error_chain(&error)
            ))),
        }
    }

    /// Retries until the proxy accepts `key` or the timeout passes: the accepted status,
    /// or what the last attempt got.
    pub async fn wait_accepted(&self, key: &str) -> Result<u16, String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let last = match self
                .status_with(key, left.clamp(Duration::from_millis(100), REQUEST_LIMIT))
                .await
            {
                Ok(status) if self.expected.accepts(status) => return Ok(status),
                Ok(status) => format!("the last answer was {status}"),
                Err(error) => format!("the last attempt failed: {}", error_chain(&error)),
            };
            if tokio::time::Instant::now() + VERIFY_INTERVAL >= deadline {
                return Err(format!(
                    "{} did not accept it within {}s; {last}",
                    self.describe(),
                    self.timeout.as_secs_f32()
                ));
            }
            tokio::time::sleep(VERIFY_INTERVAL).await;
        }
    }

    /// The status the proxy answers to a request carrying `key`.
    async fn status_with(&self, key: &str, limit: Duration) -> Result<u16, WebError> {
        let mut request = WebRequest::new(Method::GET, &self.url)?
            .header(&self.header, key)?
            .timeout(limit);
        if let Some(host) = &self.host {
            request = request.header("host", host)?;
        }
        Ok(self.web.send(request).await?.status)
    }
}

/// Whether a plugin row is an enabled key-auth plugin.
fn is_enabled_key_auth(plugin: &Value) -> bool {
    plugin.get("name").and_then(Value::as_str) == Some("key-auth")
        && plugin.get("enabled") != Some(&Value::Bool(false))
}

/// The id of a plugin's or route's foreign key (`service`, `route`), when set.
fn foreign_id<'a>(entity: &'a Value, field: &str) -> Option<&'a str> {
    entity
        .get(field)
        .and_then(|reference| reference.get("id"))
        .and_then(Value::as_str)
}

/// The strings of an array field.
fn strings<'a>(entity: &'a Value, field: &str) -> Vec<&'a str> {
    entity
        .get(field)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The first header name of a key-auth plugin, when it reads headers.
fn header_of(plugin: &Value) -> Option<String> {
    let config = plugin.get("config").unwrap_or(&Value::Null);
    if config.get("key_in_header") == Some(&Value::Bool(false)) {
        return None;
    }
    Some(
        strings(config, "key_names")
            .first()
            .map_or(DEFAULT_KEY_HEADER, |name| name)
            .to_owned(),
    )
}

/// Which plugin scope a key-auth plugin has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// On one route.
    Route,
    /// On one service (all its routes).
    Service,
    /// Global.
    Global,
}

/// The scope of a plugin (consumer-scoped key-auth plugins do not exist).
fn scope_of(plugin: &Value) -> Scope {
    if foreign_id(plugin, "route").is_some() {
        Scope::Route
    } else if foreign_id(plugin, "service").is_some() {
        Scope::Service
    } else {
        Scope::Global
    }
}

/// Whether `plugin` applies to `route` (by its scope).
fn applies_to(plugin: &Value, route: &Value) -> bool {
    match scope_of(plugin) {
        Scope::Route => foreign_id(plugin, "route") == route.get("id").and_then(Value::as_str),
        Scope::Service => {
            foreign_id(plugin, "service").is_some()
                && foreign_id(plugin, "service") == foreign_id(route, "service")
        }
        Scope::Global => true,
    }
}

/// The key-auth plugin that applies to `route`: the route's, else its service's, else the global one.
fn plugin_for<'a>(plugins: &'a [Value], route: &Value) -> Option<&'a Value> {
    [Scope::Route, Scope::Service, Scope::Global]
        .into_iter()
        .find_map(|scope| {
            plugins
                .iter()
                .find(|plugin| scope_of(plugin) == scope && applies_to(plugin, route))
        })
}

/// A GET request can be sent to `route` over `scheme`: its first plain path, and a host
/// to send when it matches on hosts.
fn reachable(route: &Value, scheme: &str) -> Option<(String, Option<String>)> {
    let protocols = strings(route, "protocols");
    if !protocols.is_empty() && !protocols.contains(&scheme) {
        return None;
    }
    let methods = strings(route, "methods");
    if !methods.is_empty() && !methods.contains(&"GET") {
        return None;
    }
    if route
        .get("headers")
        .and_then(Value::as_object)
        .is_some_and(|headers| !headers.is_empty())
    {
        return None;
    }
    let hosts = strings(route, "hosts");
    let host = match hosts.as_slice() {
        [] => None,
        hosts => Some(hosts.iter().find(|host| !host.contains('*'))?.to_string()),
    };
    let path = strings(route, "paths")
        .into_iter()
        .find(|path| path.starts_with('/'))?;
    Some((path.to_owned(), host))
}

/// The first route a key-auth plugin applies to and a GET over `scheme` reaches: route
/// plugins first, then service plugins, then a global plugin.
pub fn discover(plugins: &[Value], routes: &[Value], scheme: &str) -> Option<Target> {
    if !plugins.iter().any(is_enabled_key_auth) {
        return None;
    }
    let plugins: Vec<Value> = plugins
        .iter()
        .filter(|plugin| is_enabled_key_auth(plugin))
        .filter(|plugin| {
            let protocols = strings(plugin, "protocols");
            protocols.is_empty() || protocols.contains(&scheme)
        })
        .cloned()
        .collect();
    [Scope::Route, Scope::Service, Scope::Global]
        .into_iter()
        .find_map(|scope| {
            routes.iter().find_map(|route| {
                // The plugin that really applies to the route (a route's own plugin beats
                // its service's and the global one).
                let plugin = plugin_for(&plugins, route)?;
                if scope_of(plugin) != scope {
                    return None;
                }
                let header = header_of(plugin)?;
                let (path, host) = reachable(route, scheme)?;
                Some(Target { path, host, header })
            })
        })
}

/// The header and host for a path the step names: from the route whose plain path is
/// the longest prefix of it and the key-auth plugin applying there.
pub fn target_for_path(
    path: &str,
    plugins: &[Value],
    routes: &[Value],
) -> Result<Target, ActionError> {
    let route = routes
        .iter()
        .filter_map(|route| {
            strings(route, "paths")
                .into_iter()
                .filter(|prefix| prefix.starts_with('/') && path.starts_with(prefix))
                .map(str::len)
                .max()
                .map(|length| (length, route))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, route)| route);
    let plugin = route.and_then(|route| plugin_for(plugins, route));
    let header = match plugin {
        Some(plugin) => header_of(plugin).ok_or_else(|| {
            ActionError::failed(format!(
                "the key-auth plugin `{}` on the route of `{path}` does not read keys from headers (key_in_header: false); nothing was changed: set `verify.path` to a route whose key-auth reads headers, or `verify: {{skip: true}}`",
                text(plugin, "id")
            ))
        })?,
        None => DEFAULT_KEY_HEADER.to_owned(),
    };
    let host = route.and_then(|route| {
        strings(route, "hosts")
            .into_iter()
            .find(|host| !host.contains('*'))
            .map(str::to_owned)
    });
    Ok(Target {
        path: path.to_owned(),
        host,
        header,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn route(id: &str, service: &str, paths: &[&str]) -> Value {
        json!({"id": id, "service": {"id": service}, "paths": paths, "protocols": ["http", "https"]})
    }

    #[test]
    fn discovery_prefers_route_then_service_then_global_plugins() {
        let routes = vec![
            route("r1", "s1", &["/open"]),
            route("r2", "s2", &["/billing"]),
            route("r3", "s3", &["/orders", "/o"]),
        ];
        let global = json!({"name": "key-auth", "config": {"key_names": ["x-global"]}});
        let on_service = json!({"name": "key-auth", "service": {"id": "s2"}, "config": {"key_names": ["x-svc"]}});
        let on_route = json!({"name": "key-auth", "route": {"id": "r3"}, "config": {"key_names": ["x-route"]}});
        let all = vec![global.clone(), on_service.clone(), on_route];
        assert_eq!(
            discover(&all, &routes, "http"),
            Some(Target {
                path: "/orders".to_owned(),
                host: None,
                header: "x-route".to_owned()
            })
        );
        let two = vec![global.clone(), on_service];
        assert_eq!(
            discover(&two, &routes, "http").map(|t| (t.path, t.header)),
            Some(("/billing".to_owned(), "x-svc".to_owned()))
        );
        assert_eq!(
            discover(&[global], &routes, "http").map(|t| (t.path, t.header)),
            Some(("/open".to_owned(), "x-global".to_owned()))
        );
        assert_eq!(discover(&[], &routes, "http"), None);
    }

    #[test]
    fn discovery_skips_disabled_plugins_and_unreachable_routes() {
        let disabled = json!({"name": "key-auth", "enabled": false, "config": {}});
        assert_eq!(
            discover(&[disabled], &[route("r", "s", &["/a"])], "http"),
            None
        );
        let plugin = json!({"name": "key-auth", "config": {}});
        let routes = vec![
            json!({"id": "a", "paths": ["~/regex$"], "protocols": ["http"]}),
            json!({"id": "b", "paths": ["/post"], "methods": ["POST"]}),
            json!({"id": "c", "paths": ["/tls"], "protocols": ["https"]}),
            json!({"id": "d", "paths": ["/h"], "headers": {"x-v": ["1"]}}),
            json!({"id": "e", "paths": ["/wild"], "hosts": ["*.example.com"]}),
            json!({"id": "f", "paths": ["/named"], "hosts": ["*.example.com", "api.example.com"]}),
        ];
        assert_eq!(
            discover(&[plugin], &routes, "http"),
            Some(Target {
                path: "/named".to_owned(),
                host: Some("api.example.com".to_owned()),
                header: DEFAULT_KEY_HEADER.to_owned()
            })
        );
    }

    #[test]
    fn a_given_path_takes_the_header_of_the_plugin_on_its_route() -> Result<(), ActionError> {
        let routes = vec![route("r1", "s1", &["/"]), route("r2", "s2", &["/orders"])];
        let plugins = vec![
            json!({"name": "key-auth", "route": {"id": "r2"}, "config": {"key_names": ["x-key", "apikey"]}}),
        ];
        assert_eq!(
            target_for_path("/orders/1", &plugins, &routes)?.header,
            "x-key"
        );
        assert_eq!(
            target_for_path("/other", &plugins, &routes)?.header,
            DEFAULT_KEY_HEADER
        );
        let query_only = vec![
            json!({"id": "p", "name": "key-auth", "route": {"id": "r2"}, "config": {"key_in_header": false}}),
        ];
        assert!(target_for_path("/orders", &query_only, &routes).is_err());
        Ok(())
    }
}
