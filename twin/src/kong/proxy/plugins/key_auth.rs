//! key-auth (`kong/plugins/key-auth/handler.lua`, priority 1250): an API key in the
//! configured headers or query arguments, looked up among the live key-auth credentials.
//! `anonymous` and `run_on_preflight` are the chain's (`plugins::consumer::authenticate`).

use serde_json::Value;

use super::consumer::owned;
use super::{Authenticated, Effects, Exit, PluginRequest, unauthorized};
use crate::kong::credentials::credential;
use crate::kong::proxy::reply::Flavor;
use crate::kong::store::Store;

/// The key-auth credentials collection.
const KEY_AUTHS: &str = "key-auths";

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
    /// `WWW-Authenticate` realm (3.7+).
    pub(crate) realm: Option<String>,
}

impl KeyAuthConfig {
    /// A key-auth plugin's `config`, defaults filled.
    pub(crate) fn from_config(config: &Value) -> Self {
        let flag = |name: &str, default: bool| {
            config.get(name).and_then(Value::as_bool).unwrap_or(default)
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
            realm: config
                .get("realm")
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_owned),
        }
    }
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

/// key-auth for one request: the live credential of an existing consumer, or the 401.
pub(crate) fn authenticate(
    config: &Value,
    request: &PluginRequest<'_>,
    store: &Store,
    flavor: &Flavor,
    now: f64,
) -> Result<Authenticated, Exit> {
    let config = KeyAuthConfig::from_config(config);
    let realm = config.realm.as_deref();
    let (name, key) = match find_key(&config, request) {
        KeySearch::Missing => {
            return Err(unauthorized(
                flavor.no_key_challenge(realm),
                "No API key found in request",
            ));
        }
        KeySearch::Duplicate => {
            return Err(unauthorized(
                flavor.other_challenge(realm),
                "Duplicate API key found",
            ));
        }
        KeySearch::Found { name, key } => (name, key),
    };
    let Some((credential, consumer)) = owned(store, credential(store, KEY_AUTHS, "key", &key, now))
    else {
        return Err(unauthorized(
            flavor.other_challenge(realm),
            flavor.invalid_key_message(),
        ));
    };
    let mut hide = Effects::default();
    if config.hide_credentials {
        hide.clear_headers.push(name.clone());
        hide.clear_query.push(name);
    }
    Ok(Authenticated::by(consumer, &credential, "id", hide))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{add, checked, headers, store};
    use super::*;
    use crate::kong::store::text;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A store with consumer alice, her live key `good`, an expired key `expired`.
    fn keys() -> Result<Store, Box<dyn std::error::Error>> {
        let mut store = store();
        let alice = add(&mut store, "consumers", json!({"username": "alice"}))?;
        let id = text(&alice, "id").to_owned();
        add(
            &mut store,
            KEY_AUTHS,
            json!({"key": "good", "consumer": {"id": id}}),
        )?;
        add(
            &mut store,
            KEY_AUTHS,
            json!({"key": "expired", "consumer": {"id": id}, "ttl": 10.0}),
        )?;
        Ok(store)
    }

    fn outcome(
        store: &Store,
        config: Value,
        headers: &axum::http::HeaderMap,
        query: &[(String, String)],
        version: &str,
    ) -> Result<Authenticated, Exit> {
        checked(authenticate, store, &config, headers, query, version, 100.0)
    }

    #[test]
    fn defaults_and_header_then_query_lookup() -> TestResult {
        let store = keys()?;
        let defaults = KeyAuthConfig::from_config(&json!({}));
        assert_eq!(defaults.key_names, ["apikey"]);
        assert!(defaults.key_in_header && defaults.key_in_query && !defaults.hide_credentials);
        let found = outcome(
            &store,
            json!({}),
            &headers(&[("apikey", "good")]),
            &[],
            "3.9.3",
        )
        .map_err(|exit| format!("{exit:?}"))?;
        assert_eq!(text(&found.consumer, "username"), "alice");
        assert_eq!(
            found.identifier.as_deref(),
            Some(text(&found.credential, "id"))
        );
        let query = [("apikey".to_owned(), "good".to_owned())];
        assert!(outcome(&store, json!({}), &headers(&[]), &query, "3.9.3").is_ok());
        let header_only = json!({"key_in_query": false, "key_names": ["x-key"]});
        assert_eq!(
            outcome(&store, header_only, &headers(&[]), &query, "3.9.3"),
            Err(unauthorized(
                Some("Key".into()),
                "No API key found in request"
            ))
        );
        Ok(())
    }

    #[test]
    fn messages_and_challenges_follow_the_version() -> TestResult {
        let store = keys()?;
        let missing = headers(&[]);
        let unknown = headers(&[("apikey", "nope")]);
        let expired = headers(&[("apikey", "expired")]);
        let twice = headers(&[("apikey", "good"), ("apikey", "good")]);
        let cases = [
            (
                "3.4.2",
                &missing,
                unauthorized(
                    Some("Key realm=\"kong\"".into()),
                    "No API key found in request",
                ),
            ),
            (
                "3.4.2",
                &unknown,
                unauthorized(None, "Invalid authentication credentials"),
            ),
            ("3.6.1", &expired, unauthorized(None, "Unauthorized")),
            (
                "3.6.1",
                &twice,
                unauthorized(None, "Duplicate API key found"),
            ),
            (
                "3.9.3",
                &missing,
                unauthorized(Some("Key".into()), "No API key found in request"),
            ),
            (
                "3.9.3",
                &unknown,
                unauthorized(Some("Key".into()), "Unauthorized"),
            ),
            (
                "3.10.0.2",
                &twice,
                unauthorized(Some("Key".into()), "Duplicate API key found"),
            ),
        ];
        for (version, headers, expected) in cases {
            assert_eq!(
                outcome(&store, json!({}), headers, &[], version),
                Err(expected),
                "{version}"
            );
        }
        assert_eq!(
            outcome(&store, json!({"realm": "api"}), &missing, &[], "3.9.3"),
            Err(unauthorized(
                Some("Key realm=\"api\"".into()),
                "No API key found in request"
            ))
        );
        Ok(())
    }

    #[test]
    fn hide_credentials_strips_the_key_name_found() -> TestResult {
        let store = keys()?;
        let hiding = json!({"hide_credentials": true, "key_names": ["x-api-key", "apikey"]});
        let found = outcome(
            &store,
            hiding,
            &headers(&[("apikey", "good")]),
            &[],
            "3.9.3",
        )
        .map_err(|exit| format!("{exit:?}"))?;
        assert_eq!(found.hide.clear_headers, ["apikey"]);
        assert_eq!(found.hide.clear_query, ["apikey"]);
        Ok(())
    }

    #[test]
    fn a_key_deleted_with_its_consumer_is_refused() -> TestResult {
        let mut store = keys()?;
        let alice = store
            .find("consumers", "alice")
            .map(|row| text(row, "id").to_owned())
            .unwrap_or_default();
        store.delete("consumers", &alice)?;
        assert_eq!(
            outcome(
                &store,
                json!({}),
                &headers(&[("apikey", "good")]),
                &[],
                "3.9.3"
            ),
            Err(unauthorized(Some("Key".into()), "Unauthorized"))
        );
        Ok(())
    }
}
