//! oauth2's token endpoint (`issue_token` in `kong/plugins/oauth2/access.lua`): the
//! client-credentials grant over HTTPS, the client authenticated by its parameters or
//! HTTP Basic, the scope checked, and the token stored in `oauth2_tokens`.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::super::{Exit, PluginRequest};
use super::{CREDENTIALS, TOKENS, parameters};
use crate::kong::store::Store;

/// A token request, with what issuing needs from the plugin and the route.
#[derive(Debug, Clone)]
pub(crate) struct TokenRequest {
    /// The plugin's `config`.
    config: Value,
    /// The route's service id.
    service: Option<String>,
}

impl TokenRequest {
    /// A request for the plugin with `config` on the route of `service`.
    pub(crate) fn new(config: &Value, service: Option<&str>) -> Self {
        Self {
            config: config.clone(),
            service: service.map(str::to_owned),
        }
    }
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
    // Kong records the last error found, in this order, and issues nothing after one.
    let grant_type = parameter("grant_type");
    let allowed = match grant_type {
        Some("authorization_code" | "refresh_token") => true,
        Some("client_credentials") => flag("enable_client_credentials"),
        Some("password") => flag("enable_password_grant"),
        _ => false,
    };
    let mut refusal =
        (!allowed).then(|| Refusal::bad("unsupported_grant_type", "Invalid grant_type"));
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
    let client_credentials_grant = grant_type == Some("client_credentials");
    if !client_credentials_grant {
        let uris: Option<Vec<&str>> = client
            .as_ref()
            .and_then(|client| client.get("redirect_uris"))
            .and_then(Value::as_array)
            .map(|uris| uris.iter().filter_map(Value::as_str).collect());
        match uris {
            Some(uris) => {
                let wanted = parameter("redirect_uri").or_else(|| uris.first().copied());
                if !wanted.is_some_and(|wanted| uris.contains(&wanted)) {
                    refusal = Some(Refusal::bad(
                        "invalid_request",
                        "Invalid redirect_uri that does not match with any redirect_uri created with the application",
                    ));
                }
            }
            None => refusal = Some(invalid_client(from_header)),
        }
    }
    if let Some(client) = &client {
        let public = client.get("client_type").and_then(Value::as_str) == Some("public");
        let secret = client.get("client_secret").and_then(Value::as_str);
        if public {
            if client_secret
                .as_deref()
                .is_some_and(|text| !text.trim().is_empty())
            {
                refusal = Some(Refusal::bad(
                    "invalid_request",
                    "client_secret is disallowed for public clients",
                ));
            }
        } else if secret.is_none() || secret != client_secret.as_deref() {
            refusal = Some(invalid_client(from_header));
        }
    }
    if let Some(refusal) = refusal {
        return Err(refusal);
    }
    if !client_credentials_grant {
        return Err(Refusal::bad(
            "unsupported_grant_type",
            "the twin's oauth2 serves only the client_credentials grant",
        ));
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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::super::super::fixtures::headers;
    use super::super::tests::{TestResult, body_of, clients, form, token_call};
    use super::*;

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
            // Other grants check the client's redirect URIs: none is an invalid client.
            (
                "https",
                "grant_type=password&client_id=app&client_secret=app-secret",
                400,
                "invalid_client",
                "Invalid client authentication",
            ),
            (
                "https",
                "grant_type=password&client_id=web&client_secret=web-secret",
                400,
                "unsupported_grant_type",
                "Invalid grant_type",
            ),
            (
                "https",
                "grant_type=authorization_code&client_id=web&client_secret=web-secret&redirect_uri=https://elsewhere/",
                400,
                "invalid_request",
                "Invalid redirect_uri that does not match with any redirect_uri created with the application",
            ),
            (
                "https",
                "grant_type=authorization_code&client_id=web&client_secret=web-secret",
                400,
                "unsupported_grant_type",
                "the twin's oauth2 serves only the client_credentials grant",
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
