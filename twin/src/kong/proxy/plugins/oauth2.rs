//! oauth2 (`kong/plugins/oauth2/access.lua`, priority 1400), for clients holding bearer
//! tokens: the `/oauth2/token` endpoint under the route's paths issues tokens with the
//! `client_credentials` grant (over HTTPS, as Kong requires), and proxied requests must
//! carry a live access token (`Authorization: Bearer`, or `access_token` in the query or
//! form body) issued for the route's service (or global, with `global_credentials`).
//! The authorization-code, implicit, password and refresh-token flows are not served.
//! The token endpoint is `oauth2/token.rs`.

mod token;

use axum::http::{StatusCode, header};
use serde_json::{Map, Value, json};

use super::consumer::owned;
use super::{Authenticated, Effects, Exit, PluginRequest};
use crate::kong::admin::parse_query;
use crate::kong::credentials;
use crate::kong::proxy::reply::Flavor;
use crate::kong::store::{Store, foreign_id};

/// The oauth2 credentials collection.
const CREDENTIALS: &str = "oauth2";
/// The access tokens collection.
const TOKENS: &str = "oauth2_tokens";
/// The description of every refused access token.
const INVALID_TOKEN: &str = "The access token is invalid or has expired";

pub(crate) use token::{TokenRequest, issue};

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
    Endpoint::Token(TokenRequest::new(config, service))
}

/// The configured realm, if any.
pub(super) fn realm(config: &Value) -> Option<&str> {
    config
        .get("realm")
        .and_then(Value::as_str)
        .filter(|realm| !realm.is_empty())
}

/// The request's OAuth2 parameters: the query, overridden by a form or JSON body on
/// POST, PUT and PATCH.
pub(super) fn parameters(request: &PluginRequest<'_>) -> Map<String, Value> {
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
    let Some(token) = credentials::credential(store, TOKENS, "access_token", &access_token, now)
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
    let Some((credential, consumer)) = owned(store, credential) else {
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
pub(super) mod tests {
    use axum::http::HeaderMap;

    use super::super::fixtures::{add, headers, request, store};
    use super::*;
    use crate::kong::store::text;

    pub(super) type TestResult = Result<(), Box<dyn std::error::Error>>;

    pub(super) const NOW: f64 = 1_800_000_000.0;
    pub(super) const SERVICE: &str = "5b1484f2-5209-49d9-b43e-92ba09dd9d52";

    pub(super) fn config() -> Value {
        json!({"enable_client_credentials": true, "token_expiration": 60, "refresh_token_ttl": 600})
    }

    /// A store with a service, consumer alice and her client `app`/`app-secret`.
    pub(super) fn clients() -> Result<Store, Box<dyn std::error::Error>> {
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
        add(
            &mut store,
            CREDENTIALS,
            json!({"name": "web", "client_id": "web", "client_secret": "web-secret",
                   "redirect_uris": ["https://web.example/cb"],
                   "consumer": {"id": text(&alice, "id")}}),
        )?;
        Ok(store)
    }

    pub(super) fn token_call(
        store: &mut Store,
        protocol: &str,
        form: &str,
        headers: &HeaderMap,
    ) -> Exit {
        let token = TokenRequest::new(&config(), Some(SERVICE));
        let mut request = request(headers, &[]);
        request.method = "POST";
        request.protocol = protocol;
        request.path = "/orders/oauth2/token";
        request.body = form.as_bytes();
        issue(store, &token, &request, NOW)
    }

    pub(super) fn form() -> HeaderMap {
        headers(&[("content-type", "application/x-www-form-urlencoded")])
    }

    pub(super) fn body_of(exit: &Exit) -> (u16, Value) {
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
}
