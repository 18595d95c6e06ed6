//! basic-auth (`kong/plugins/basic-auth/access.lua`, priority 1100): HTTP Basic
//! credentials in `Proxy-Authorization`, then `Authorization`, checked against the
//! basic-auth credential of that username (its password hashed with the consumer id).

use base64::Engine;
use regex::Regex;
use serde_json::Value;

use super::consumer::owner;
use super::{Authenticated, Effects, Exit, PluginRequest, unauthorized};
use crate::kong::credentials::{basic_auth_password_matches, credential};
use crate::kong::proxy::reply::Flavor;
use crate::kong::store::Store;

/// The basic-auth credentials collection.
const BASIC_AUTHS: &str = "basic-auths";

/// basic-auth for one request: the consumer whose username and password match, or the 401.
pub(crate) fn authenticate(
    config: &Value,
    request: &PluginRequest<'_>,
    store: &Store,
    flavor: &Flavor,
    now: f64,
) -> Result<Authenticated, Exit> {
    let realm = config
        .get("realm")
        .and_then(Value::as_str)
        .unwrap_or("service");
    let hide = config.get("hide_credentials").and_then(Value::as_bool) == Some(true);
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    // From 3.6 every failure is `Unauthorized` with the configured realm; before, only a
    // missing header was (with realm `kong`), a bad one `Invalid authentication credentials`.
    let missing = || {
        let challenge = if flavor.plain_unauthorized() {
            format!("Basic realm=\"{realm}\"")
        } else {
            "Basic realm=\"kong\"".to_owned()
        };
        unauthorized(Some(challenge), "Unauthorized")
    };
    let refused = || {
        if flavor.plain_unauthorized() {
            unauthorized(Some(format!("Basic realm=\"{realm}\"")), "Unauthorized")
        } else {
            unauthorized(None, "Invalid authentication credentials")
        }
    };
    let (authorization, proxy_authorization) =
        (header("authorization"), header("proxy-authorization"));
    if authorization.is_none() && proxy_authorization.is_none() {
        return Err(missing());
    }
    let mut strip = Effects::default();
    if hide && proxy_authorization.is_some() {
        strip.clear_headers.push("proxy-authorization".to_owned());
    }
    let lookup = |username: &str| credential(store, BASIC_AUTHS, "username", username, now);
    let mut found = proxy_authorization
        .and_then(basic)
        .and_then(|(username, password)| lookup(&username).map(|row| (row, password)));
    if found.is_none() {
        let Some((username, password)) = authorization.and_then(basic) else {
            return Err(refused());
        };
        if hide {
            strip.clear_headers.push("authorization".to_owned());
        }
        found = lookup(&username).map(|row| (row, password));
    }
    let Some((credential, password)) = found else {
        return Err(refused());
    };
    if !basic_auth_password_matches(credential, &password) {
        return Err(refused());
    }
    let Some(consumer) = owner(store, credential) else {
        return Err(refused());
    };
    Ok(Authenticated::by(consumer, credential, "username", strip))
}

/// The username and password of a `Basic` header value (Kong's unanchored
/// `\s*[Bb]asic\s*(.+)`, then `([^:]+):(.*)` on the decoded text).
fn basic(value: &str) -> Option<(String, String)> {
    static PATTERN: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    let pattern = PATTERN
        .get_or_init(|| Regex::new(r"\s*[Bb]asic\s*(.+)").ok())
        .as_ref()?;
    let encoded = pattern.captures(value)?.get(1)?.as_str();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    (!username.is_empty()).then(|| (username.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{add, checked, headers, store};
    use super::*;
    use crate::kong::store::text;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// `Basic base64(user:password)`.
    fn basic_header(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    fn users() -> Result<Store, Box<dyn std::error::Error>> {
        let mut store = store();
        let ops = add(&mut store, "consumers", json!({"username": "ops"}))?;
        add(
            &mut store,
            BASIC_AUTHS,
            json!({"username": "deploy", "password": "s3cret", "consumer": {"id": text(&ops, "id")}}),
        )?;
        Ok(store)
    }

    fn check(
        store: &Store,
        config: Value,
        pairs: &[(&'static str, &str)],
        version: &str,
    ) -> Result<Authenticated, Exit> {
        checked(
            authenticate,
            store,
            &config,
            &headers(pairs),
            &[],
            version,
            0.0,
        )
    }

    #[test]
    fn a_matching_password_names_the_consumer() -> TestResult {
        let store = users()?;
        let good = basic_header("deploy", "s3cret");
        let found = check(&store, json!({}), &[("authorization", &good)], "3.9.1")
            .map_err(|exit| format!("{exit:?}"))?;
        assert_eq!(text(&found.consumer, "username"), "ops");
        assert_eq!(found.identifier.as_deref(), Some("deploy"));
        // Proxy-Authorization is tried first; hide_credentials strips what was read.
        let hidden = check(
            &store,
            json!({"hide_credentials": true}),
            &[
                ("proxy-authorization", &good),
                ("authorization", "Bearer x"),
            ],
            "3.9.1",
        )
        .map_err(|exit| format!("{exit:?}"))?;
        assert_eq!(hidden.hide.clear_headers, ["proxy-authorization"]);
        Ok(())
    }

    #[test]
    fn failures_follow_the_version() -> TestResult {
        let store = users()?;
        let wrong = basic_header("deploy", "nope");
        let realm = Some("Basic realm=\"service\"".to_owned());
        assert_eq!(
            check(&store, json!({}), &[], "3.9.1").err(),
            Some(unauthorized(realm.clone(), "Unauthorized"))
        );
        assert_eq!(
            check(&store, json!({}), &[("authorization", &wrong)], "3.9.1").err(),
            Some(unauthorized(realm, "Unauthorized"))
        );
        assert_eq!(
            check(
                &store,
                json!({"realm": "ops"}),
                &[("authorization", "Basic !!")],
                "3.9.1"
            )
            .err(),
            Some(unauthorized(
                Some("Basic realm=\"ops\"".to_owned()),
                "Unauthorized"
            ))
        );
        assert_eq!(
            check(&store, json!({}), &[], "3.4.2").err(),
            Some(unauthorized(
                Some("Basic realm=\"kong\"".to_owned()),
                "Unauthorized"
            ))
        );
        assert_eq!(
            check(&store, json!({}), &[("authorization", &wrong)], "3.4.2").err(),
            Some(unauthorized(None, "Invalid authentication credentials"))
        );
        Ok(())
    }
}
