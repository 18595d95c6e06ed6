//! Plugins at the proxy (reference §7.3): which configuration applies to a request, and
//! what key-auth, acl and request-termination do with it, as pure functions over store
//! rows (`plugins`, `consumers`, `key-auths`, `acls`). Main entry: [`run`].
//!
//! Plugins run in Kong's priority order (key-auth 1250, acl 950, request-termination 2);
//! for each plugin name the most specific enabled configuration wins, with the consumer
//! identified so far (`kong/runloop/plugins_iterator.lua` `lookup_cfg`).

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::reply::Flavor;
use crate::kong::store::{Entity, Store};
use crate::kong::store::{foreign_id, text};

/// The plugins collection.
const PLUGINS: &str = "plugins";
/// The consumers collection.
const CONSUMERS: &str = "consumers";
/// Authentication plugins the Admin API accepts but the twin's proxy does not run.
const UNENFORCED_AUTH: [&str; 6] = [
    "basic-auth",
    "jwt",
    "hmac-auth",
    "oauth2",
    "ldap-auth",
    "openid-connect",
];

/// The key-auth credentials collection.
const KEY_AUTHS: &str = "key-auths";

/// The request as plugins see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PluginRequest<'a> {
    /// `http` or `https`.
    pub(crate) protocol: &'a str,
    /// The method.
    pub(crate) method: &'a str,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The decoded query pairs.
    pub(crate) query: &'a [(String, String)],
}

/// What plugins decided for a request that goes on to the upstream.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Effects {
    /// Headers to set on the upstream request (replacing any the client sent).
    pub(crate) set_headers: Vec<(String, String)>,
    /// Headers to remove from the upstream request.
    pub(crate) clear_headers: Vec<String>,
    /// Query arguments to remove from the upstream request.
    pub(crate) clear_query: Vec<String>,
}

/// A response a plugin gave instead of proxying.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Exit {
    /// `kong.response.error`: Kong's error template with `message` (and `request_id`).
    Error {
        /// Status.
        status: StatusCode,
        /// Message.
        message: String,
        /// Extra response headers (`WWW-Authenticate`).
        headers: Vec<(String, String)>,
    },
    /// `kong.response.exit`: a body as given.
    Body {
        /// Status.
        status: StatusCode,
        /// Body bytes.
        body: String,
        /// Content type.
        content_type: String,
    },
}

/// Where a request is in the plugin chain: the route, service and consumer so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The matched route's id.
    pub(crate) route: Option<&'a str>,
    /// The route's service's id.
    pub(crate) service: Option<&'a str>,
    /// The authenticated (or anonymous) consumer's id.
    pub(crate) consumer: Option<&'a str>,
}

/// Runs key-auth, acl and request-termination for a request in `scope` (consumer unset);
/// the upstream changes, or the response to give instead.
pub(crate) fn run(
    store: &Store,
    scope: Scope<'_>,
    request: &PluginRequest<'_>,
    flavor: &Flavor,
    now: f64,
) -> Result<Effects, Exit> {
    // Read in place: a proxied request copies no plugin rows.
    let plugins: Vec<&Entity> = store.rows(PLUGINS).collect();
    if plugins.is_empty() {
        return Ok(Effects::default());
    }
    // An authentication plugin the twin cannot run must not let traffic through unchecked:
    // a rehearsal would pass where Kong refuses.
    for name in UNENFORCED_AUTH {
        if applicable(&plugins, name, scope, request.protocol).is_some() {
            return Err(Exit::Error {
                status: StatusCode::NOT_IMPLEMENTED,
                message: format!(
                    "the twin's proxy does not run the '{name}' plugin configured for this route"
                ),
                headers: Vec::new(),
            });
        }
    }
    let mut effects = Effects::default();
    let mut consumer: Option<Entity> = None;
    let mut credential: Option<Entity> = None;
    // key-auth cannot be scoped to a consumer (`no_consumer`).
    if let Some(plugin) = applicable(&plugins, "key-auth", scope, request.protocol) {
        let config = KeyAuthConfig::from_plugin(plugin);
        let lookup = Lookup {
            credential: &|key| find_credential(store, key),
            consumer: &|id| store.find(CONSUMERS, id).cloned(),
        };
        match key_auth(&config, request, &lookup, flavor, now) {
            KeyAuth::Authenticated {
                consumer: found,
                credential: used,
                hide,
            } => {
                identify(&mut effects, Some(&found), Some(&used));
                if let Some(name) = hide {
                    effects.clear_headers.push(name.clone());
                    effects.clear_query.push(name);
                }
                consumer = Some(found);
                credential = Some(used);
            }
            KeyAuth::Anonymous(anonymous) => {
                identify(&mut effects, anonymous.as_ref(), None);
                consumer = anonymous;
            }
            KeyAuth::Skipped => {}
            KeyAuth::Rejected(exit) => return Err(exit),
        }
    }
    let consumer_id = consumer.as_ref().map(|consumer| text(consumer, "id"));
    let scope = Scope {
        consumer: consumer_id,
        ..scope
    };
    if let Some(plugin) = applicable(&plugins, "acl", scope, request.protocol) {
        let groups = consumer_id.map(|id| crate::kong::credentials::acl_groups(store, id));
        let header = acl(
            plugin.get("config").unwrap_or(&Value::Null),
            groups.as_deref(),
            credential.is_some(),
        )?;
        effects.set_headers.extend(header);
    }
    if let Some(plugin) = applicable(&plugins, "request-termination", scope, request.protocol)
        && let Some(exit) =
            request_termination(plugin.get("config").unwrap_or(&Value::Null), request)
    {
        return Err(exit);
    }
    Ok(effects)
}

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

/// key-auth's configuration with Kong's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyAuthConfig {
    /// Header/query names to look in, in order.
    pub(crate) key_names: Vec<String>,
    /// Look in headers.
    pub(crate) key_in_header: bool,
    /// Look in the query string.
    pub(crate) key_in_query: bool,
    /// Remove the key before proxying.
    pub(crate) hide_credentials: bool,
    /// Consumer id or username to fall back to.
    pub(crate) anonymous: Option<String>,
    /// `WWW-Authenticate` realm (3.7+).
    pub(crate) realm: Option<String>,
    /// Authenticate `OPTIONS` requests too.
    pub(crate) run_on_preflight: bool,
}

impl KeyAuthConfig {
    /// The `config` of a key-auth plugin row, defaults filled.
    pub(crate) fn from_plugin(plugin: &Entity) -> Self {
        let config = plugin.get("config").unwrap_or(&Value::Null);
        let flag = |name: &str, default: bool| {
            config.get(name).and_then(Value::as_bool).unwrap_or(default)
        };
        let string = |name: &str| {
            config
                .get(name)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
        };
        let key_names = config
            .get("key_names")
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_else(|| vec!["apikey".to_owned()]);
        Self {
            key_names,
            key_in_header: flag("key_in_header", true),
            key_in_query: flag("key_in_query", true),
            hide_credentials: flag("hide_credentials", false),
            anonymous: string("anonymous"),
            realm: string("realm"),
            run_on_preflight: flag("run_on_preflight", true),
        }
    }
}

/// Store look-ups key-auth needs.
pub(crate) struct Lookup<'a> {
    /// The credential row with this key.
    pub(crate) credential: &'a dyn Fn(&str) -> Option<Entity>,
    /// The consumer with this id (or, for `anonymous`, username).
    pub(crate) consumer: &'a dyn Fn(&str) -> Option<Entity>,
}

/// key-auth's outcome.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyAuth {
    /// A live credential of an existing consumer.
    Authenticated {
        /// The consumer.
        consumer: Entity,
        /// The credential used.
        credential: Entity,
        /// The key name to strip (`hide_credentials`).
        hide: Option<String>,
    },
    /// Authentication failed and `anonymous` is set: the anonymous consumer, if it exists.
    Anonymous(Option<Entity>),
    /// Not run (an `OPTIONS` preflight with `run_on_preflight` off).
    Skipped,
    /// 401.
    Rejected(Exit),
}

/// Where the key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeySearch {
    /// The key, under this name.
    Found {
        /// The key name.
        name: String,
        /// The key.
        key: String,
    },
    /// The same name given twice.
    Duplicate,
    /// No key.
    Missing,
}

/// key-auth (`kong/plugins/key-auth/handler.lua`).
pub(crate) fn key_auth(
    config: &KeyAuthConfig,
    request: &PluginRequest<'_>,
    lookup: &Lookup<'_>,
    flavor: &Flavor,
    now: f64,
) -> KeyAuth {
    if !config.run_on_preflight && request.method == "OPTIONS" {
        return KeyAuth::Skipped;
    }
    let failure = match find_key(config, request) {
        KeySearch::Missing => rejection(
            flavor.no_key_challenge(config.realm.as_deref()),
            "No API key found in request",
        ),
        KeySearch::Duplicate => rejection(
            flavor.other_challenge(config.realm.as_deref()),
            "Duplicate API key found",
        ),
        KeySearch::Found { name, key } => {
            let credential = (lookup.credential)(&key).filter(|row| key_is_live(row, now));
            let consumer = credential
                .as_ref()
                .and_then(|row| foreign_id(row, "consumer"))
                .and_then(|id| (lookup.consumer)(id));
            match (credential, consumer) {
                (Some(credential), Some(consumer)) => {
                    return KeyAuth::Authenticated {
                        consumer,
                        credential,
                        hide: config.hide_credentials.then_some(name),
                    };
                }
                // Credentials go with their consumer; one without is no credential.
                _ => rejection(
                    flavor.other_challenge(config.realm.as_deref()),
                    flavor.invalid_key_message(),
                ),
            }
        }
    };
    match &config.anonymous {
        Some(anonymous) => KeyAuth::Anonymous((lookup.consumer)(anonymous)),
        None => KeyAuth::Rejected(failure),
    }
}

/// Whether a key-auth credential row is live at `now` (Unix seconds): the store keeps the
/// absolute expiry in `ttl` (see `ttl.rs`); no expiry never expires.
pub(crate) fn key_is_live(credential: &Entity, now: f64) -> bool {
    crate::kong::store::is_live(credential, now)
}

/// The key in the configured headers, then the query, name by name.
fn find_key(config: &KeyAuthConfig, request: &PluginRequest<'_>) -> KeySearch {
    for name in &config.key_names {
        let mut values: Vec<&str> = Vec::new();
        if config.key_in_header {
            values = request
                .headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect();
        }
        if values.is_empty() && config.key_in_query {
            values = request
                .query
                .iter()
                .filter(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .collect();
        }
        match values.as_slice() {
            [] => continue,
            [key] => {
                return KeySearch::Found {
                    name: name.clone(),
                    key: (*key).to_owned(),
                };
            }
            _ => return KeySearch::Duplicate,
        }
    }
    KeySearch::Missing
}

/// A 401 with an optional `WWW-Authenticate` challenge.
fn rejection(challenge: Option<String>, message: &str) -> Exit {
    Exit::Error {
        status: StatusCode::UNAUTHORIZED,
        message: message.to_owned(),
        headers: challenge
            .map(|value| vec![("WWW-Authenticate".to_owned(), value)])
            .unwrap_or_default(),
    }
}

/// The consumer headers key-auth sets upstream (`set_consumer`): an absent value clears
/// the header, and `X-Anonymous-Consumer` marks a request without a credential.
fn identify(effects: &mut Effects, consumer: Option<&Entity>, credential: Option<&Entity>) {
    let field = |entity: Option<&Entity>, name: &str| {
        entity
            .and_then(|entity| entity.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let anonymous = credential.is_none().then(|| "true".to_owned());
    let headers = [
        ("X-Consumer-ID", field(consumer, "id")),
        ("X-Consumer-Custom-ID", field(consumer, "custom_id")),
        ("X-Consumer-Username", field(consumer, "username")),
        ("X-Credential-Identifier", field(credential, "id")),
        ("X-Anonymous-Consumer", anonymous),
    ];
    for (name, value) in headers {
        match value {
            Some(value) => effects.set_headers.push((name.to_owned(), value)),
            None => effects.clear_headers.push(name.to_owned()),
        }
    }
}

/// The acl plugin (`kong/plugins/acl/handler.lua`) for a consumer with `groups` (`None`
/// when no consumer is identified): the group header to send, or 401/403.
pub(crate) fn acl(
    config: &Value,
    groups: Option<&[String]>,
    has_credential: bool,
) -> Result<Option<(String, String)>, Exit> {
    let list = |name: &str| -> Vec<&str> {
        config
            .get(name)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let deny = list("deny");
    let is_deny = !deny.is_empty();
    let configured = if is_deny { deny } else { list("allow") };
    let refused = |has_credential: bool| {
        if has_credential {
            Exit::Error {
                status: StatusCode::FORBIDDEN,
                message: "You cannot consume this service".to_owned(),
                headers: Vec::new(),
            }
        } else {
            Exit::Error {
                status: StatusCode::UNAUTHORIZED,
                message: "Unauthorized".to_owned(),
                headers: Vec::new(),
            }
        }
    };
    let Some(groups) = groups else {
        return Err(refused(has_credential));
    };
    if groups.is_empty() && !is_deny {
        return Err(refused(has_credential));
    }
    let in_group = configured
        .iter()
        .any(|group| groups.iter().any(|own| own == group));
    if in_group == is_deny {
        return Err(Exit::Error {
            status: StatusCode::FORBIDDEN,
            message: "You cannot consume this service".to_owned(),
            headers: Vec::new(),
        });
    }
    let hide = config
        .get("hide_groups_header")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((!hide).then(|| ("X-Consumer-Groups".to_owned(), groups.join(", "))))
}

/// request-termination (`kong/plugins/request-termination/handler.lua`), without `echo`.
pub(crate) fn request_termination(config: &Value, request: &PluginRequest<'_>) -> Option<Exit> {
    let text = |name: &str| {
        config
            .get(name)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    };
    if let Some(trigger) = text("trigger") {
        let in_headers = request.headers.contains_key(trigger);
        let in_query = request.query.iter().any(|(key, _)| key == trigger);
        if !in_headers && !in_query {
            return None;
        }
    }
    let code = config
        .get("status_code")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .unwrap_or(503);
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if let Some(body) = text("body") {
        return Some(Exit::Body {
            status,
            body: body.to_owned(),
            content_type: text("content_type")
                .unwrap_or("application/json; charset=utf-8")
                .to_owned(),
        });
    }
    let default = match code {
        401 => Some("Unauthorized"),
        404 => Some("Not found"),
        405 => Some("Method not allowed"),
        500 => Some("An unexpected error occurred"),
        502 => Some("Bad Gateway"),
        503 => Some("Service unavailable"),
        _ => None,
    };
    let body = text("message")
        .or(default)
        .map(|message| json!({"message": message}).to_string())
        .unwrap_or_default();
    Some(Exit::Body {
        status,
        body,
        content_type: "application/json; charset=utf-8".to_owned(),
    })
}

/// The key-auth credential with `key` (through the unique index; expiry is checked by the caller).
fn find_credential(store: &Store, key: &str) -> Option<Entity> {
    store.find_by(KEY_AUTHS, "key", key).cloned()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn row(value: Value) -> Entity {
        value.as_object().cloned().unwrap_or_default()
    }

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

    fn request<'a>(headers: &'a HeaderMap, query: &'a [(String, String)]) -> PluginRequest<'a> {
        PluginRequest {
            protocol: "http",
            method: "GET",
            headers,
            query,
        }
    }

    fn consumers(id: &str) -> Option<Entity> {
        match id {
            "c1" | "alice" => Some(row(
                json!({"id": "c1", "username": "alice", "custom_id": null}),
            )),
            "anon" | "anonymous" => Some(row(
                json!({"id": "anon", "username": "anonymous", "custom_id": "guest"}),
            )),
            _ => None,
        }
    }

    fn credentials(key: &str) -> Option<Entity> {
        match key {
            "good" => Some(row(
                json!({"id": "k1", "key": "good", "consumer": {"id": "c1"}, "ttl": null}),
            )),
            "expired" => Some(row(
                json!({"id": "k2", "key": "expired", "consumer": {"id": "c1"}, "ttl": 0}),
            )),
            "orphan" => Some(row(
                json!({"id": "k3", "key": "orphan", "consumer": {"id": "gone"}}),
            )),
            _ => None,
        }
    }

    fn lookup() -> Lookup<'static> {
        Lookup {
            credential: &credentials,
            consumer: &consumers,
        }
    }

    fn config(extra: Value) -> KeyAuthConfig {
        KeyAuthConfig::from_plugin(&row(json!({"config": extra})))
    }

    fn with_header(name: &'static str, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(name, HeaderValue::from_static(value));
        headers
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
        let id = |found: Option<&Entity>| found.map(|plugin| text(plugin, "id").to_owned());
        assert_eq!(
            id(applicable(
                &plugins,
                "key-auth",
                scope(Some("r"), Some("s"), None),
                "http"
            )),
            Some("route-service".into())
        );
        assert_eq!(
            id(applicable(
                &plugins,
                "key-auth",
                scope(Some("r"), Some("t"), None),
                "http"
            )),
            Some("route".into())
        );
        assert_eq!(
            id(applicable(
                &plugins,
                "key-auth",
                scope(Some("q"), Some("s"), None),
                "http"
            )),
            Some("service".into())
        );
        assert_eq!(
            id(applicable(
                &plugins,
                "key-auth",
                scope(Some("q"), Some("t"), None),
                "http"
            )),
            Some("global".into())
        );
        // A consumer-scoped plugin beats a service-scoped one.
        assert_eq!(
            id(applicable(
                &plugins,
                "acl",
                scope(Some("r"), Some("s"), Some("c")),
                "http"
            )),
            Some("consumer".into())
        );
        assert_eq!(
            id(applicable(
                &plugins,
                "acl",
                scope(Some("r"), Some("s"), None),
                "http"
            )),
            Some("service-acl".into())
        );
        assert_eq!(
            id(applicable(
                &plugins,
                "rate-limiting",
                scope(Some("r"), Some("s"), None),
                "http"
            )),
            None
        );
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

    #[test]
    fn key_auth_defaults_and_header_then_query_lookup() {
        let defaults = config(json!({}));
        assert_eq!(defaults.key_names, ["apikey"]);
        assert!(defaults.key_in_header && defaults.key_in_query && !defaults.hide_credentials);
        let flavor = Flavor::for_version("3.9.3");
        let headers = with_header("apikey", "good");
        let outcome = key_auth(&defaults, &request(&headers, &[]), &lookup(), &flavor, 0.0);
        let authenticated = KeyAuth::Authenticated {
            consumer: consumers("c1").unwrap_or_default(),
            credential: credentials("good").unwrap_or_default(),
            hide: None,
        };
        assert_eq!(outcome, authenticated);
        let query = [("apikey".to_owned(), "good".to_owned())];
        let outcome = key_auth(
            &defaults,
            &request(&HeaderMap::new(), &query),
            &lookup(),
            &flavor,
            0.0,
        );
        assert!(matches!(outcome, KeyAuth::Authenticated { .. }));
        let header_only = config(json!({"key_in_query": false, "key_names": ["x-key"]}));
        let outcome = key_auth(
            &header_only,
            &request(&HeaderMap::new(), &query),
            &lookup(),
            &flavor,
            0.0,
        );
        assert_eq!(
            outcome,
            KeyAuth::Rejected(rejection(Some("Key".into()), "No API key found in request"))
        );
    }

    #[test]
    fn key_auth_messages_and_challenges_follow_the_version() {
        let defaults = config(json!({}));
        let missing = HeaderMap::new();
        let unknown = with_header("apikey", "nope");
        let expired = with_header("apikey", "expired");
        let mut twice = with_header("apikey", "good");
        twice.append("apikey", HeaderValue::from_static("good"));
        let cases = [
            (
                "3.4.2",
                &missing,
                rejection(
                    Some("Key realm=\"kong\"".into()),
                    "No API key found in request",
                ),
            ),
            (
                "3.4.2",
                &unknown,
                rejection(None, "Invalid authentication credentials"),
            ),
            ("3.6.1", &expired, rejection(None, "Unauthorized")),
            ("3.6.1", &twice, rejection(None, "Duplicate API key found")),
            (
                "3.9.3",
                &missing,
                rejection(Some("Key".into()), "No API key found in request"),
            ),
            (
                "3.9.3",
                &unknown,
                rejection(Some("Key".into()), "Unauthorized"),
            ),
            (
                "3.10.0.2",
                &twice,
                rejection(Some("Key".into()), "Duplicate API key found"),
            ),
        ];
        for (version, headers, expected) in cases {
            let flavor = Flavor::for_version(version);
            let outcome = key_auth(&defaults, &request(headers, &[]), &lookup(), &flavor, 0.0);
            assert_eq!(outcome, KeyAuth::Rejected(expected), "{version}");
        }
        let realm = config(json!({"realm": "api"}));
        let outcome = key_auth(
            &realm,
            &request(&missing, &[]),
            &lookup(),
            &Flavor::for_version("3.9.3"),
            0.0,
        );
        assert_eq!(
            outcome,
            KeyAuth::Rejected(rejection(
                Some("Key realm=\"api\"".into()),
                "No API key found in request"
            ))
        );
    }

    #[test]
    fn key_auth_anonymous_hide_credentials_and_preflight() {
        let flavor = Flavor::for_version("3.9.3");
        let anonymous = config(json!({"anonymous": "anonymous"}));
        let outcome = key_auth(
            &anonymous,
            &request(&HeaderMap::new(), &[]),
            &lookup(),
            &flavor,
            0.0,
        );
        assert_eq!(outcome, KeyAuth::Anonymous(consumers("anon")));
        let hiding =
            config(json!({"hide_credentials": true, "key_names": ["x-api-key", "apikey"]}));
        let headers = with_header("apikey", "good");
        let outcome = key_auth(&hiding, &request(&headers, &[]), &lookup(), &flavor, 0.0);
        assert!(
            matches!(outcome, KeyAuth::Authenticated { hide: Some(ref name), .. } if name == "apikey")
        );
        let no_preflight = config(json!({"run_on_preflight": false}));
        let no_headers = HeaderMap::new();
        let mut preflight = request(&no_headers, &[]);
        preflight.method = "OPTIONS";
        assert_eq!(
            key_auth(&no_preflight, &preflight, &lookup(), &flavor, 0.0),
            KeyAuth::Skipped
        );
        let orphan = with_header("apikey", "orphan");
        let outcome = key_auth(
            &config(json!({})),
            &request(&orphan, &[]),
            &lookup(),
            &flavor,
            0.0,
        );
        assert_eq!(
            outcome,
            KeyAuth::Rejected(rejection(Some("Key".into()), "Unauthorized"))
        );
    }

    #[test]
    fn credentials_without_expiry_are_live_and_expired_ones_are_not() {
        // The store keeps `ttl` as the absolute expiry (Unix seconds).
        assert!(key_is_live(&row(json!({"key": "a"})), 100.0));
        assert!(key_is_live(&row(json!({"key": "a", "ttl": null})), 100.0));
        assert!(key_is_live(&row(json!({"key": "a", "ttl": 100.5})), 100.0));
        assert!(!key_is_live(&row(json!({"key": "a", "ttl": 100.0})), 100.0));
        assert!(!key_is_live(&row(json!({"key": "a", "ttl": 5})), 100.0));
    }

    #[test]
    fn acl_allows_denies_and_names_groups() {
        let allow = json!({"allow": ["ops", "admin"]});
        let groups = ["dev".to_owned(), "ops".to_owned()];
        assert_eq!(
            acl(&allow, Some(&groups), true),
            Ok(Some((
                "X-Consumer-Groups".to_owned(),
                "dev, ops".to_owned()
            )))
        );
        let forbidden = Exit::Error {
            status: StatusCode::FORBIDDEN,
            message: "You cannot consume this service".into(),
            headers: Vec::new(),
        };
        assert_eq!(
            acl(&allow, Some(&["dev".to_owned()]), true),
            Err(forbidden.clone())
        );
        assert_eq!(acl(&allow, Some(&[]), true), Err(forbidden.clone()));
        let deny = json!({"deny": ["dev"], "hide_groups_header": true});
        assert_eq!(acl(&deny, Some(&groups), true), Err(forbidden));
        assert_eq!(acl(&deny, Some(&[]), false), Ok(None));
        assert_eq!(
            acl(&allow, None, false),
            Err(Exit::Error {
                status: StatusCode::UNAUTHORIZED,
                message: "Unauthorized".into(),
                headers: Vec::new()
            })
        );
    }

    #[test]
    fn request_termination_answers_with_status_and_message() {
        let headers = HeaderMap::new();
        let plain = request(&headers, &[]);
        assert_eq!(
            request_termination(&json!({"status_code": 503}), &plain),
            Some(Exit::Body {
                status: StatusCode::SERVICE_UNAVAILABLE,
                body: r#"{"message":"Service unavailable"}"#.into(),
                content_type: "application/json; charset=utf-8".into(),
            })
        );
        let custom = json!({"status_code": 418, "message": "maintenance window"});
        assert!(matches!(
            request_termination(&custom, &plain),
            Some(Exit::Body { status, ref body, .. }) if status.as_u16() == 418 && body == r#"{"message":"maintenance window"}"#
        ));
        let raw = json!({"status_code": 200, "body": "<p>bye</p>", "content_type": "text/html"});
        assert!(matches!(
            request_termination(&raw, &plain),
            Some(Exit::Body { ref body, ref content_type, .. }) if body == "<p>bye</p>" && content_type == "text/html"
        ));
        let triggered = json!({"status_code": 503, "trigger": "x-stop"});
        assert_eq!(request_termination(&triggered, &plain), None);
        let stop = with_header("x-stop", "1");
        assert!(request_termination(&triggered, &request(&stop, &[])).is_some());
    }
}
