//! oauth2 (`kong/plugins/oauth2/access.lua`, priority 1400), for clients holding bearer
//! tokens: the `/oauth2/token` endpoint under the route's paths issues tokens with the
//! `client_credentials` grant (over HTTPS, as Kong requires), and proxied requests must
//! carry a live access token (`Authorization: Bearer`, or `access_token` in the query or
//! form body) issued for the route's service (or global, with `global_credentials`).
//! The authorization-code, implicit, password and refresh-token flows are not served.

use axum::http::{StatusCode, header};
use serde_json::{Map, Value, json};

use super::{Authenticated, Effects, Exit, PluginRequest, owner};
use crate::kong::admin::parse_query;
use crate::kong::proxy::reply::Flavor;
use crate::kong::store::{Store, foreign_id, is_live};

/// The oauth2 credentials collection.
const CREDENTIALS: &str = "oauth2";
/// The access tokens collection.
const TOKENS: &str = "oauth2_tokens";
/// The description of every refused access token.
const INVALID_TOKEN: &str = "The access token is invalid or has expired";

/// What the request asks of the plugin's endpoints.
#[derive(Debug)]
pub(crate) enum Endpoint {
    /// A `POST .../oauth2/token`: issue a token.
    Token(TokenRequest),
    /// An endpoint answered without a store write (405, authorization endpoint).
    Refused(Exit),
    /// Not an endpoint: authenticate the request.
    None,
}

/// A token request, with what issuing needs from the plugin and the route.
#[derive(Debug, Clone)]
pub(crate) struct TokenRequest {
    /// The plugin's `config`.
    config: Value,
    /// The route's service id.
    service: Option<String>,
}

/// Whether `request` is for one of the plugin's endpoints (a path ending in
/// `/oauth2/token` or `/oauth2/authorize`, with or without a final slash).
pub(crate) fn endpoint(
    config: &Value,
    request: &PluginRequest<'_>,
    service: Option<&str>,
    flavor: &Flavor,
) -> Endpoint {
    let path = request.path.strip_suffix('/').unwrap_or(request.path);
    let name = if path.ends_with("/oauth2/token") {
        "token"
    } else if path.ends_with("/oauth2/authorize") {
        "authorization"
    } else {
        return Endpoint::None;
    };
    if request.method != "POST" {
        let description = format!(
            "The HTTP method {} is invalid for the {name} endpoint",
            request.method
        );
        let challenge =
            flavor.oauth2_challenge(realm(config), Some(("invalid_method", &description)));
        return Endpoint::Refused(Exit::Json {
            status: StatusCode::METHOD_NOT_ALLOWED,
            body: json!({"error": "invalid_method", "error_description": description}),
            headers: vec![("WWW-Authenticate".to_owned(), challenge)],
        });
    }
    if name == "authorization" {
        return Endpoint::Refused(Exit::Error {
            status: StatusCode::NOT_IMPLEMENTED,
            message: "the twin's proxy does not serve the oauth2 authorization endpoint".to_owned(),
            headers: Vec::new(),
        });
    }
    Endpoint::Token(TokenRequest {
        config: config.clone(),
        service: service.map(str::to_owned),
    })
}

/// The configured realm, if any.
fn realm(config: &Value) -> Option<&str> {
    config
        .get("realm")
        .and_then(Value::as_str)
        .filter(|realm| !realm.is_empty())
}

/// The request's OAuth2 parameters: the query, overridden by a form or JSON body on
/// POST, PUT and PATCH.
fn parameters(request: &PluginRequest<'_>) -> Map<String, Value> {
    let mut parameters: Map<String, Value> = request
        .query
        .iter()
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    if !matches!(request.method, "POST" | "PUT" | "PATCH") {
        return parameters;
    }
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(request.body) {
            parameters.extend(body);
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let text = String::from_utf8_lossy(request.body);
        for (name, value) in parse_query(&text) {
            parameters.insert(name, json!(value));
        }
    }
    parameters
}

/// Answers a token request, writing the issued token to the store: 200 with the token,
/// or 400/401 with Kong's OAuth2 error.
pub(crate) fn issue(
    store: &mut Store,
    token: &TokenRequest,
    request: &PluginRequest<'_>,
    now: f64,
) -> Exit {
    let config = &token.config;
    let parameters = parameters(request);
    let state = parameters.get("state").cloned();
    let mut body = match grant(
        store,
        config,
        token.service.as_deref(),
        request,
        &parameters,
        now,
    ) {
        Ok(body) => body,
        Err(refusal) => {
            let mut body =
                json!({"error": refusal.error, "error_description": refusal.description});
            if let (Some(state), Some(object)) = (&state, body.as_object_mut()) {
                object.insert("state".to_owned(), state.clone());
            }
            let mut headers = no_cache();
            if let Some(challenge) = refusal.challenge {
                headers.push(("WWW-Authenticate".to_owned(), challenge.to_owned()));
            }
            return Exit::Json {
                status: refusal.status,
                body,
                headers,
            };
        }
    };
    if let Some(state) = state {
        body.insert("state".to_owned(), state);
    }
    Exit::Json {
        status: StatusCode::OK,
        body: Value::Object(body),
        headers: no_cache(),
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, on every token response.
fn no_cache() -> Vec<(String, String)> {
    vec![
        ("Cache-Control".to_owned(), "no-store".to_owned()),
        ("Pragma".to_owned(), "no-cache".to_owned()),
    ]
}

/// A token request Kong refuses.
#[derive(Debug, Clone, PartialEq)]
struct Refusal {
    /// 400, or 401 for bad client credentials sent in the `Authorization` header.
    status: StatusCode,
    /// The OAuth2 error code.
    error: &'static str,
    /// Its description.
    description: String,
    /// `WWW-Authenticate`, for the 401.
    challenge: Option<&'static str>,
}

impl Refusal {
    /// A 400 with `error` and `description`.
    fn bad(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            challenge: None,
        }
    }
}

/// The client-credentials grant: checks the transport, grant, client and scope, then
/// stores a token; the response body.
fn grant(
    store: &mut Store,
    config: &Value,
    service: Option<&str>,
    request: &PluginRequest<'_>,
    parameters: &Map<String, Value>,
    now: f64,
) -> Result<Map<String, Value>, Refusal> {
    let flag = |name: &str| config.get(name).and_then(Value::as_bool).unwrap_or(false);
    // The twin trusts no proxy in front of it (Kong's default `trusted_ips`), so
    // `accept_http_if_already_terminated` never applies.
    if request.protocol != "https" {
        return Err(Refusal::bad("access_denied", "You must use HTTPS"));
    }
    let parameter = |name: &str| parameters.get(name).and_then(Value::as_str);
    if parameter("grant_type") != Some("client_credentials") || !flag("enable_client_credentials") {
        return Err(Refusal::bad("unsupported_grant_type", "Invalid grant_type"));
    }
    let (client_id, client_secret, from_header) = client_credentials(request, config, parameters);
    let invalid_client = |from_header: bool| Refusal {
        status: if from_header {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        },
        error: "invalid_client",
        description: "Invalid client authentication".to_owned(),
        challenge: from_header.then_some("Basic realm=\"OAuth2.0\""),
    };
    let client = client_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .and_then(|id| store.find_by(CREDENTIALS, "client_id", id))
        .cloned();
    if let Some(client) = &client {
        let public = client.get("client_type").and_then(Value::as_str) == Some("public");
        let secret = client.get("client_secret").and_then(Value::as_str);
        if public {
            if client_secret
                .as_deref()
                .is_some_and(|text| !text.trim().is_empty())
            {
                return Err(Refusal::bad(
                    "invalid_request",
                    "client_secret is disallowed for public clients",
                ));
            }
        } else if secret.is_none() || secret != client_secret.as_deref() {
            return Err(invalid_client(from_header));
        }
    }
    if parameter("authenticated_userid").is_some()
        && config.get("provision_key").and_then(Value::as_str) != parameter("provision_key")
    {
        return Err(Refusal::bad(
            "invalid_provision_key",
            "Invalid provision_key",
        ));
    }
    let Some(client) = client else {
        return Err(invalid_client(false));
    };
    let scope = scope(config, parameters.get("scope"))?;
    let expiration = config
        .get("token_expiration")
        .and_then(Value::as_i64)
        .unwrap_or(7200);
    let refresh_ttl = config
        .get("refresh_token_ttl")
        .and_then(Value::as_f64)
        .unwrap_or(1_209_600.0);
    let global = flag("global_credentials");
    let mut row = json!({
        "credential": {"id": client.get("id").cloned().unwrap_or(Value::Null)},
        "service": match service.filter(|_| !global) {
            Some(id) => json!({"id": id}),
            None => Value::Null,
        },
        "expires_in": expiration,
        "scope": scope,
        "authenticated_userid": parameter("authenticated_userid"),
    });
    if expiration > 0
        && refresh_ttl > 0.0
        && let Some(object) = row.as_object_mut()
    {
        object.insert("ttl".to_owned(), json!(now + refresh_ttl));
    }
    let row = row.as_object().cloned().unwrap_or_default();
    // The twin's clock is whole seconds for `created_at`.
    let stored = store
        .insert(TOKENS, row, now.floor() as i64)
        .map_err(|_| Refusal::bad("server_error", "the token could not be stored"))?;
    let mut body = Map::new();
    body.insert(
        "access_token".to_owned(),
        stored.get("access_token").cloned().unwrap_or(Value::Null),
    );
    body.insert("token_type".to_owned(), json!("bearer"));
    if expiration > 0 {
        body.insert("expires_in".to_owned(), json!(expiration));
    }
    Ok(body)
}

/// `client_id`/`client_secret` from the parameters, else HTTP Basic in the configured
/// header; whether they came from the header.
fn client_credentials(
    request: &PluginRequest<'_>,
    config: &Value,
    parameters: &Map<String, Value>,
) -> (Option<String>, Option<String>, bool) {
    use base64::Engine;
    let parameter = |name: &str| {
        parameters
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (id, secret) = (parameter("client_id"), parameter("client_secret"));
    if id.is_some() && secret.is_some() {
        return (id, secret, false);
    }
    let name = config
        .get("auth_header_name")
        .and_then(Value::as_str)
        .unwrap_or("authorization");
    let Some(value) = request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
    else {
        return (id, None, false);
    };
    let encoded = value
        .trim_start()
        .strip_prefix("Basic")
        .or_else(|| value.trim_start().strip_prefix("basic"))
        .map(str::trim);
    let decoded = encoded
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded.as_deref().and_then(|text| text.split_once(':')) {
        Some((id, secret)) => (Some(id.to_owned()), Some(secret.to_owned()), true),
        None => (None, None, true),
    }
}

/// The granted scope: the requested scopes, each among `scopes`; required with
/// `mandatory_scope`.
fn scope(config: &Value, requested: Option<&Value>) -> Result<Value, Refusal> {
    let allowed: Option<Vec<&str>> = config
        .get("scopes")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect());
    let mandatory = config.get("mandatory_scope").and_then(Value::as_bool) == Some(true);
    match (allowed, requested) {
        (Some(allowed), Some(requested)) => {
            let Some(requested) = requested.as_str() else {
                return Err(Refusal::bad("invalid_scope", "scope must be a string"));
            };
            let mut granted = Vec::new();
            for scope in requested.split_whitespace() {
                if !allowed.contains(&scope) {
                    return Err(Refusal::bad(
                        "invalid_scope",
                        format!("\"{scope}\" is an invalid scope"),
                    ));
                }
                granted.push(scope);
            }
            Ok(if granted.is_empty() {
                Value::Null
            } else {
                json!(granted.join(" "))
            })
        }
        (_, None) if mandatory => Err(Refusal::bad("invalid_scope", "You must specify a scope")),
        _ => Ok(Value::Null),
    }
}

/// oauth2 for a proxied request: the consumer of the live access token, or the 401.
pub(crate) fn authenticate(
    config: &Value,
    request: &PluginRequest<'_>,
    store: &Store,
    service: Option<&str>,
    flavor: &Flavor,
    now: f64,
) -> Result<Authenticated, Exit> {
    let refuse = |error: &str, description: &str, challenge: String| Exit::Json {
        status: StatusCode::UNAUTHORIZED,
        body: json!({"error": error, "error_description": description}),
        headers: vec![("WWW-Authenticate".to_owned(), challenge)],
    };
    let invalid = || {
        refuse(
            "invalid_token",
            INVALID_TOKEN,
            flavor.oauth2_challenge(realm(config), Some(("invalid_token", INVALID_TOKEN))),
        )
    };
    let header_name = config
        .get("auth_header_name")
        .and_then(Value::as_str)
        .unwrap_or("authorization");
    let (access_token, in_header) = access_token(request, header_name);
    let Some(access_token) = access_token.filter(|token| !token.is_empty()) else {
        return Err(refuse(
            "invalid_request",
            "The access token is missing",
            flavor.oauth2_challenge(realm(config), None),
        ));
    };
    let global = config.get("global_credentials").and_then(Value::as_bool) == Some(true);
    let Some(token) = store
        .find_by(TOKENS, "access_token", &access_token)
        .filter(|row| is_live(row, now))
    else {
        return Err(invalid());
    };
    let token_service = foreign_id(token, "service");
    if token_service.is_none() && !global {
        return Err(refuse(
            "invalid_token",
            "The access token is global, but the current plugin is configured without 'global_credentials'",
            flavor.oauth2_challenge(realm(config), Some(("invalid_token", INVALID_TOKEN))),
        ));
    }
    if token_service.is_some() && token_service != service {
        return Err(invalid());
    }
    let expires_in = token
        .get("expires_in")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let created_at = token
        .get("created_at")
        .and_then(Value::as_f64)
        .unwrap_or(now);
    if expires_in > 0.0 && now.floor() - created_at > expires_in {
        return Err(invalid());
    }
    let credential = foreign_id(token, "credential").and_then(|id| store.find(CREDENTIALS, id));
    let Some((credential, consumer)) =
        credential.and_then(|row| owner(store, row).map(|consumer| (row.clone(), consumer)))
    else {
        return Err(invalid());
    };
    let field = |name: &str| token.get(name).and_then(Value::as_str).map(str::to_owned);
    let mut hide = Effects::default();
    if config.get("hide_credentials").and_then(Value::as_bool) == Some(true) {
        if in_header {
            hide.clear_headers.push(header_name.to_owned());
        } else {
            hide.clear_query.push("access_token".to_owned());
        }
    }
    Ok(Authenticated {
        consumer,
        identifier: credential
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        credential,
        headers: vec![
            ("X-Authenticated-Scope", field("scope")),
            ("X-Authenticated-UserId", field("authenticated_userid")),
        ],
        hide,
    })
}

/// The access token: the configured header (`Bearer`/`Token <t>`, else its whole value),
/// else the `access_token` parameter; whether it came from the header.
fn access_token(request: &PluginRequest<'_>, header_name: &str) -> (Option<String>, bool) {
    if let Some(value) = request
        .headers
        .get(header_name)
        .and_then(|value| value.to_str().ok())
    {
        let parts: Vec<&str> = value.split_whitespace().collect();
        return match parts.as_slice() {
            [scheme, token]
                if scheme.eq_ignore_ascii_case("bearer")
                    || scheme.eq_ignore_ascii_case("token") =>
            {
                (Some((*token).to_owned()), true)
            }
            _ => (Some(value.to_owned()), false),
        };
    }
    let token = parameters(request)
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    (token, false)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::super::fixtures::{add, headers, request, store};
    use super::*;
    use crate::kong::store::text;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const NOW: f64 = 1_800_000_000.0;
    const SERVICE: &str = "5b1484f2-5209-49d9-b43e-92ba09dd9d52";

    fn config() -> Value {
        json!({"enable_client_credentials": true, "token_expiration": 60, "refresh_token_ttl": 600})
    }

    /// A store with a service, consumer alice and her client `app`/`app-secret`.
    fn clients() -> Result<Store, Box<dyn std::error::Error>> {
        let mut store = store();
        add(
            &mut store,
            "services",
            json!({"id": SERVICE, "name": "orders", "host": "core"}),
        )?;
        let alice = add(&mut store, "consumers", json!({"username": "alice"}))?;
        add(
            &mut store,
            CREDENTIALS,
            json!({"name": "app", "client_id": "app", "client_secret": "app-secret",
                   "consumer": {"id": text(&alice, "id")}}),
        )?;
        Ok(store)
    }

    fn token_call(store: &mut Store, protocol: &str, form: &str, headers: &HeaderMap) -> Exit {
        let token = TokenRequest {
            config: config(),
            service: Some(SERVICE.to_owned()),
        };
        let mut request = request(headers, &[]);
        request.method = "POST";
        request.protocol = protocol;
        request.path = "/orders/oauth2/token";
        request.body = form.as_bytes();
        issue(store, &token, &request, NOW)
    }

    fn form() -> HeaderMap {
        headers(&[("content-type", "application/x-www-form-urlencoded")])
    }

    fn body_of(exit: &Exit) -> (u16, Value) {
        match exit {
            Exit::Json { status, body, .. } => (status.as_u16(), body.clone()),
            other => (0, json!(format!("{other:?}"))),
        }
    }

    #[test]
    fn client_credentials_issue_a_token_that_authenticates() -> TestResult {
        let mut store = clients()?;
        let exit = token_call(
            &mut store,
            "https",
            "grant_type=client_credentials&client_id=app&client_secret=app-secret&state=x",
            &form(),
        );
        let (status, body) = body_of(&exit);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 60);
        assert_eq!(body["state"], "x");
        let access = body["access_token"].as_str().unwrap_or_default().to_owned();
        assert_eq!(access.len(), 32);
        let flavor = Flavor::for_version("3.9.1");
        let bearer = headers(&[("authorization", &format!("Bearer {access}"))]);
        let found = authenticate(
            &config(),
            &request(&bearer, &[]),
            &store,
            Some(SERVICE),
            &flavor,
            NOW + 1.0,
        )
        .map_err(|exit| format!("{exit:?}"))?;
        assert_eq!(text(&found.consumer, "username"), "alice");
        assert_eq!(found.identifier.as_deref(), Some("app"));
        let query = [("access_token".to_owned(), access.clone())];
        let none = headers(&[]);
        assert!(
            authenticate(
                &config(),
                &request(&none, &query),
                &store,
                Some(SERVICE),
                &flavor,
                NOW
            )
            .is_ok()
        );
        // Another service does not take it; after expires_in it is refused.
        let refused = |at: f64, service: Option<&str>| {
            authenticate(
                &config(),
                &request(&bearer, &[]),
                &store,
                service,
                &flavor,
                at,
            )
            .map_err(|exit| body_of(&exit))
        };
        let invalid = (
            401,
            json!({"error": "invalid_token", "error_description": INVALID_TOKEN}),
        );
        assert_eq!(refused(NOW, Some("other")).err(), Some(invalid.clone()));
        assert_eq!(refused(NOW + 61.0, Some(SERVICE)).err(), Some(invalid));
        Ok(())
    }

    #[test]
    fn token_requests_are_refused_as_kong_refuses_them() -> TestResult {
        let mut store = clients()?;
        let cases = [
            (
                "http",
                "grant_type=client_credentials&client_id=app&client_secret=app-secret",
                400,
                "access_denied",
                "You must use HTTPS",
            ),
            (
                "https",
                "grant_type=password&client_id=app&client_secret=app-secret",
                400,
                "unsupported_grant_type",
                "Invalid grant_type",
            ),
            (
                "https",
                "grant_type=client_credentials&client_id=app&client_secret=wrong",
                400,
                "invalid_client",
                "Invalid client authentication",
            ),
            (
                "https",
                "grant_type=client_credentials&client_id=nobody&client_secret=x",
                400,
                "invalid_client",
                "Invalid client authentication",
            ),
        ];
        for (protocol, form_body, status, error, description) in cases {
            let exit = token_call(&mut store, protocol, form_body, &form());
            assert_eq!(
                body_of(&exit),
                (
                    status,
                    json!({"error": error, "error_description": description})
                ),
                "{form_body}"
            );
        }
        let basic = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", "Basic YXBwOndyb25n"),
        ]);
        let exit = token_call(&mut store, "https", "grant_type=client_credentials", &basic);
        assert!(matches!(
            exit,
            Exit::Json { status: StatusCode::UNAUTHORIZED, ref headers, .. }
                if headers.iter().any(|(name, value)| name == "WWW-Authenticate" && value == "Basic realm=\"OAuth2.0\"")
        ));
        // app:app-secret in Basic works.
        let good = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", "Basic YXBwOmFwcC1zZWNyZXQ="),
        ]);
        let exit = token_call(&mut store, "https", "grant_type=client_credentials", &good);
        assert_eq!(body_of(&exit).0, 200);
        assert_eq!(store.count(TOKENS), 1);
        Ok(())
    }

    #[test]
    fn missing_and_unknown_tokens_and_the_endpoint_methods() -> TestResult {
        let store = clients()?;
        let flavor = Flavor::for_version("3.9.1");
        let none = headers(&[]);
        let missing = authenticate(
            &config(),
            &request(&none, &[]),
            &store,
            Some(SERVICE),
            &flavor,
            NOW,
        );
        assert_eq!(
            missing.err(),
            Some(Exit::Json {
                status: StatusCode::UNAUTHORIZED,
                body: json!({"error": "invalid_request", "error_description": "The access token is missing"}),
                headers: vec![("WWW-Authenticate".to_owned(), "Bearer".to_owned())],
            })
        );
        let unknown = headers(&[("authorization", "Bearer nope")]);
        let refused = authenticate(
            &config(),
            &request(&unknown, &[]),
            &store,
            Some(SERVICE),
            &flavor,
            NOW,
        );
        assert!(matches!(
            refused,
            Err(Exit::Json { status: StatusCode::UNAUTHORIZED, ref body, .. }) if body["error"] == "invalid_token"
        ));
        let mut get = request(&none, &[]);
        get.path = "/orders/oauth2/token/";
        assert!(matches!(
            endpoint(&config(), &get, Some(SERVICE), &flavor),
            Endpoint::Refused(Exit::Json {
                status: StatusCode::METHOD_NOT_ALLOWED,
                ..
            })
        ));
        get.path = "/orders/items";
        assert!(matches!(
            endpoint(&config(), &get, Some(SERVICE), &flavor),
            Endpoint::None
        ));
        Ok(())
    }

    #[test]
    fn scopes_must_be_configured_ones() {
        let config = json!({"scopes": ["read", "write"], "mandatory_scope": true});
        assert_eq!(
            scope(&config, Some(&json!("read write"))),
            Ok(json!("read write"))
        );
        assert_eq!(
            scope(&config, Some(&json!("admin"))).map_err(|refusal| refusal.description),
            Err("\"admin\" is an invalid scope".to_owned())
        );
        assert_eq!(
            scope(&config, None).map_err(|refusal| refusal.description),
            Err("You must specify a scope".to_owned())
        );
        assert_eq!(scope(&json!({}), Some(&json!("anything"))), Ok(Value::Null));
    }
}
