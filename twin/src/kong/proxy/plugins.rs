//! Plugins at the proxy (reference §7.3): which configuration applies to a request, and
//! the plugin chain over store rows. Main entry: [`run`].
//!
//! Plugins run in Kong's priority order: jwt 1450, oauth2 1400, key-auth 1250,
//! basic-auth 1100, acl 950, rate-limiting 910, request-termination 2. For each plugin
//! name the most specific enabled configuration wins, with the consumer identified so far
//! (`kong/runloop/plugins_iterator.lua` `lookup_cfg`). Each plugin is a module of
//! `plugins/`; the authentication plugins share the chain's `anonymous`,
//! `run_on_preflight` and consumer-header handling (`consumer::authenticate`).

mod acl;
mod basic_auth;
mod consumer;
mod jws;
mod jwt;
mod key_auth;
mod lookup;
mod oauth2;
mod rate_limiting;
mod request_termination;

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

pub(crate) use lookup::applicable;
pub(crate) use rate_limiting::RateCounters;

use super::reply::Flavor;
use crate::kong::store::{Entity, Store, text};
use consumer::{Identity, authenticate, has_anonymous};

#[cfg(test)]
mod fixtures;

/// The plugins collection.
const PLUGINS: &str = "plugins";
/// Authentication plugins the Admin API accepts but the twin's proxy does not run.
const UNENFORCED_AUTH: [&str; 3] = ["hmac-auth", "ldap-auth", "openid-connect"];

/// The request as plugins see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PluginRequest<'a> {
    /// `http` or `https`.
    pub(crate) protocol: &'a str,
    /// The method.
    pub(crate) method: &'a str,
    /// The request path (without the query).
    pub(crate) path: &'a str,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The decoded query pairs.
    pub(crate) query: &'a [(String, String)],
    /// The request body.
    pub(crate) body: &'a [u8],
    /// The client's address, when the transport knows it.
    pub(crate) client: Option<IpAddr>,
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
    /// Headers to add to the response the client gets (rate-limiting's counters).
    pub(crate) response_headers: Vec<(String, String)>,
}

impl Effects {
    /// Sets upstream header `name` to `value`, or clears it when `None`, undoing what an
    /// earlier plugin decided for the same header (the last plugin wins, as in Kong).
    pub(crate) fn header(&mut self, name: &str, value: Option<String>) {
        self.set_headers
            .retain(|(set, _)| !set.eq_ignore_ascii_case(name));
        self.clear_headers
            .retain(|cleared| !cleared.eq_ignore_ascii_case(name));
        match value {
            Some(value) => self.set_headers.push((name.to_owned(), value)),
            None => self.clear_headers.push(name.to_owned()),
        }
    }
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
    /// `kong.response.exit` with a table: the JSON body as given (no `request_id`).
    Json {
        /// Status.
        status: StatusCode,
        /// The body.
        body: Value,
        /// Extra response headers.
        headers: Vec<(String, String)>,
    },
    /// `kong.response.exit` with a string: a body as given.
    Body {
        /// Status.
        status: StatusCode,
        /// Body bytes.
        body: String,
        /// Content type.
        content_type: String,
    },
}

impl Exit {
    /// The exit with `extra` response headers added (those set by earlier plugins).
    fn with_headers(self, extra: &[(String, String)]) -> Self {
        if extra.is_empty() {
            return self;
        }
        match self {
            Self::Error {
                status,
                message,
                mut headers,
            } => {
                headers.extend_from_slice(extra);
                Self::Error {
                    status,
                    message,
                    headers,
                }
            }
            Self::Json {
                status,
                body,
                mut headers,
            } => {
                headers.extend_from_slice(extra);
                Self::Json {
                    status,
                    body,
                    headers,
                }
            }
            // request-termination's raw bodies keep only their own headers.
            body @ Self::Body { .. } => body,
        }
    }
}

/// A 401 (`kong.response.error`) with an optional `WWW-Authenticate` challenge.
pub(crate) fn unauthorized(challenge: Option<String>, message: &str) -> Exit {
    Exit::Error {
        status: StatusCode::UNAUTHORIZED,
        message: message.to_owned(),
        headers: www_authenticate(challenge),
    }
}

/// The `WWW-Authenticate` response header of a 401, when there is a challenge.
pub(crate) fn www_authenticate(challenge: Option<String>) -> Vec<(String, String)> {
    challenge
        .map(|value| vec![("WWW-Authenticate".to_owned(), value)])
        .unwrap_or_default()
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

/// A credential an authentication plugin accepted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Authenticated {
    /// The credential's consumer.
    pub(crate) consumer: Entity,
    /// The credential row.
    pub(crate) credential: Entity,
    /// `X-Credential-Identifier` (key-auth: the credential id; jwt: its key; oauth2: the
    /// client id).
    pub(crate) identifier: Option<String>,
    /// Plugin-specific upstream headers (`None` clears the header).
    pub(crate) headers: Vec<(&'static str, Option<String>)>,
    /// Headers and query arguments to strip (`hide_credentials`).
    pub(crate) hide: Effects,
}

/// What the chain needs that is not in the store: the version's behaviour, the time and
/// the rate-limiting counters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// Version-dependent messages.
    pub(crate) flavor: &'a Flavor,
    /// Unix seconds.
    pub(crate) now: f64,
    /// rate-limiting's `local` counters.
    pub(crate) counters: &'a RateCounters,
}

/// Where the chain stopped.
enum Step {
    /// Done: go upstream with these effects, or answer with this exit.
    Done(Result<Effects, Exit>),
    /// oauth2's token endpoint: a token to issue (a store write).
    IssueToken(oauth2::TokenRequest),
}

/// Runs the plugin chain for a request in `scope` (consumer unset): the upstream
/// changes, or the response to give instead. The store is written only by oauth2's
/// token endpoint.
pub(crate) fn run(
    store: &mut Store,
    scope: Scope<'_>,
    request: &PluginRequest<'_>,
    context: Context<'_>,
) -> Result<Effects, Exit> {
    match evaluate(store, scope, request, context) {
        Step::Done(result) => result,
        Step::IssueToken(token) => Err(oauth2::issue(store, &token, request, context.now)),
    }
}

/// The chain over a read-only store.
fn evaluate(
    store: &Store,
    scope: Scope<'_>,
    request: &PluginRequest<'_>,
    context: Context<'_>,
) -> Step {
    // Read in place: a proxied request copies no plugin rows.
    let plugins: Vec<&Entity> = store.rows(PLUGINS).collect();
    if plugins.is_empty() {
        return Step::Done(Ok(Effects::default()));
    }
    // An authentication plugin the twin cannot run must not let traffic through unchecked:
    // a rehearsal would pass where Kong refuses.
    for name in UNENFORCED_AUTH {
        if applicable(&plugins, name, scope, request.protocol).is_some() {
            return Step::Done(Err(Exit::Error {
                status: StatusCode::NOT_IMPLEMENTED,
                message: format!(
                    "the twin's proxy does not run the '{name}' plugin configured for this route"
                ),
                headers: Vec::new(),
            }));
        }
    }
    let mut effects = Effects::default();
    let mut identity = Identity::default();
    match authentication(
        store,
        &plugins,
        scope,
        request,
        context,
        &mut identity,
        &mut effects,
    ) {
        Ok(None) => {}
        Ok(Some(token)) => return Step::IssueToken(token),
        Err(exit) => return Step::Done(Err(exit)),
    }
    let consumer_id = identity
        .consumer
        .as_ref()
        .map(|consumer| text(consumer, "id"));
    let scope = Scope {
        consumer: consumer_id,
        ..scope
    };
    if let Some(plugin) = applicable(&plugins, "acl", scope, request.protocol) {
        let groups = consumer_id.map(|id| crate::kong::credentials::acl_groups(store, id));
        match acl::acl(
            config_of(plugin),
            groups.as_deref(),
            identity.credential.is_some(),
        ) {
            Ok(Some((name, value))) => effects.header(&name, Some(value)),
            Ok(None) => {}
            Err(exit) => return Step::Done(Err(exit)),
        }
    }
    if let Some(plugin) = applicable(&plugins, "rate-limiting", scope, request.protocol) {
        let subject = rate_limiting::Subject {
            consumer: consumer_id,
            credential: identity.credential.as_ref().map(|row| text(row, "id")),
            service: scope.service,
        };
        match rate_limiting::limit(plugin, request, subject, context.counters, context.now) {
            Ok(headers) => effects.response_headers.extend(headers),
            Err(exit) => return Step::Done(Err(exit)),
        }
    }
    if let Some(plugin) = applicable(&plugins, "request-termination", scope, request.protocol)
        && let Some(exit) = request_termination::request_termination(config_of(plugin), request)
    {
        return Step::Done(Err(exit.with_headers(&effects.response_headers)));
    }
    Step::Done(Ok(effects))
}

/// The authentication plugins in priority order, identifying the consumer into
/// `identity` and their upstream headers into `effects`: `Some` token request when the
/// request is for oauth2's token endpoint, the exit when one refuses the request.
/// Authentication plugins cannot be scoped to a consumer (`no_consumer`).
fn authentication(
    store: &Store,
    plugins: &[&Entity],
    scope: Scope<'_>,
    request: &PluginRequest<'_>,
    Context { flavor, now, .. }: Context<'_>,
    identity: &mut Identity,
    effects: &mut Effects,
) -> Result<Option<oauth2::TokenRequest>, Exit> {
    let config = |name: &str| applicable(plugins, name, scope, request.protocol).map(config_of);
    if let Some(config) = config("jwt") {
        authenticate(store, config, request, identity, effects, || {
            jwt::authenticate(config, request, store, flavor, now)
        })?;
    }
    if let Some(config) = config("oauth2") {
        match oauth2::endpoint(config, request, scope.service, flavor) {
            oauth2::Endpoint::Token(token) => return Ok(Some(token)),
            oauth2::Endpoint::Refused(exit) => return Err(exit),
            oauth2::Endpoint::None => {}
        }
        if identity.credential.is_some() && has_anonymous(config) {
            effects.header("X-Authenticated-Scope", None);
            effects.header("X-Authenticated-UserId", None);
        }
        authenticate(store, config, request, identity, effects, || {
            oauth2::authenticate(config, request, store, scope.service, flavor, now)
        })?;
    }
    if let Some(config) = config("key-auth") {
        authenticate(store, config, request, identity, effects, || {
            key_auth::authenticate(config, request, store, flavor, now)
        })?;
    }
    if let Some(config) = config("basic-auth") {
        authenticate(store, config, request, identity, effects, || {
            basic_auth::authenticate(config, request, store, flavor, now)
        })?;
    }
    Ok(None)
}

/// A plugin row's `config` (null when absent).
fn config_of(plugin: &Entity) -> &Value {
    plugin.get("config").unwrap_or(&Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fixtures::{add, headers, request, store};
    use super::*;

    /// The chain of `store`'s plugins for `request` outside any route or service, as
    /// Kong 3.9.1 (fresh rate-limiting counters).
    fn run_unscoped(store: &mut Store, request: &PluginRequest<'_>) -> Result<Effects, Exit> {
        let flavor = Flavor::for_version("3.9.1");
        let counters = RateCounters::default();
        let context = Context {
            flavor: &flavor,
            now: 1_700_000_000.0,
            counters: &counters,
        };
        let none = Scope {
            route: None,
            service: None,
            consumer: None,
        };
        run(store, none, request, context)
    }

    #[test]
    fn later_plugins_override_earlier_header_decisions() {
        let mut effects = Effects::default();
        effects.header("X-Consumer-ID", Some("a".into()));
        effects.header("X-Consumer-Custom-ID", None);
        effects.header("x-consumer-id", None);
        effects.header("X-Consumer-Custom-ID", Some("b".into()));
        assert_eq!(
            effects.set_headers,
            [("X-Consumer-Custom-ID".to_owned(), "b".to_owned())]
        );
        assert_eq!(effects.clear_headers, ["x-consumer-id"]);
    }

    /// jwt (anonymous) then key-auth: a valid key wins over jwt's anonymous fallback, and
    /// key-auth with `anonymous` is skipped once jwt accepted a token.
    #[test]
    fn authentication_plugins_chain_as_a_logical_or_with_anonymous()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut store = store();
        let alice = add(&mut store, "consumers", json!({"username": "alice"}))?;
        add(&mut store, "consumers", json!({"username": "guest"}))?;
        let alice_id = text(&alice, "id").to_owned();
        add(
            &mut store,
            "key-auths",
            json!({"key": "k1", "consumer": {"id": alice_id}}),
        )?;
        add(
            &mut store,
            "plugins",
            json!({"name": "jwt", "config": {"anonymous": "guest"}}),
        )?;
        add(&mut store, "plugins", json!({"name": "key-auth"}))?;
        let with_key = headers(&[("apikey", "k1")]);
        let effects = run_unscoped(&mut store, &request(&with_key, &[]))
            .map_err(|exit| format!("{exit:?}"))?;
        let set = |name: &str| {
            effects
                .set_headers
                .iter()
                .find(|(set, _)| set == name)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(set("X-Consumer-Username").as_deref(), Some("alice"));
        assert_eq!(set("X-Anonymous-Consumer"), None);
        assert!(
            effects
                .clear_headers
                .iter()
                .any(|name| name == "X-Anonymous-Consumer")
        );
        let refused = run_unscoped(&mut store, &request(&HeaderMap::new(), &[]));
        assert!(
            matches!(refused, Err(Exit::Error { status, ref message, .. }) if status == StatusCode::UNAUTHORIZED && message == "No API key found in request")
        );
        Ok(())
    }

    /// A preflight skips an authentication plugin with `run_on_preflight` off; a failure
    /// with `anonymous` goes on as the anonymous consumer, marked upstream.
    #[test]
    fn preflight_and_anonymous_fallback() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = store();
        add(
            &mut store,
            "consumers",
            json!({"username": "guest", "custom_id": "g-1"}),
        )?;
        add(
            &mut store,
            "plugins",
            json!({"name": "jwt", "config": {"run_on_preflight": false, "anonymous": "guest"}}),
        )?;
        let no_headers = headers(&[]);
        let mut preflight = request(&no_headers, &[]);
        preflight.method = "OPTIONS";
        let skipped = run_unscoped(&mut store, &preflight).map_err(|exit| format!("{exit:?}"))?;
        assert_eq!(skipped, Effects::default());
        let bad = headers(&[("authorization", "Bearer not.a.token")]);
        let effects =
            run_unscoped(&mut store, &request(&bad, &[])).map_err(|exit| format!("{exit:?}"))?;
        let set: Vec<(&str, &str)> = effects
            .set_headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert!(set.contains(&("X-Consumer-Username", "guest")), "{set:?}");
        assert!(set.contains(&("X-Consumer-Custom-ID", "g-1")), "{set:?}");
        assert!(set.contains(&("X-Anonymous-Consumer", "true")), "{set:?}");
        assert!(
            effects
                .clear_headers
                .iter()
                .any(|name| name == "X-Credential-Identifier")
        );
        Ok(())
    }
}
