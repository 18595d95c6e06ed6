//! Shared test fixtures of the plugin modules: a store with the twin's schemas, rows,
//! headers and requests.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::{Authenticated, Exit, PluginRequest};
use crate::kong::proxy::reply::Flavor;
use crate::kong::store::{Entity, Store};

/// An authentication plugin's check of one request (jwt, key-auth, basic-auth).
pub(crate) type Check =
    fn(&Value, &PluginRequest<'_>, &Store, &Flavor, f64) -> Result<Authenticated, Exit>;

/// A JSON object as a row.
pub(crate) fn row(value: Value) -> Entity {
    value.as_object().cloned().unwrap_or_default()
}

/// An empty store with the twin's schemas.
pub(crate) fn store() -> Store {
    Store::new(crate::kong::entities::registry())
}

/// Inserts `body` into `collection`; the stored row.
pub(crate) fn add(
    store: &mut Store,
    collection: &str,
    body: Value,
) -> Result<Entity, Box<dyn std::error::Error>> {
    Ok(store.insert(collection, row(body), 1_700_000_000)?)
}

/// Headers from name/value pairs.
pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    headers
}

/// A plain-HTTP GET of `/` with these headers and query.
pub(crate) fn request<'a>(
    headers: &'a HeaderMap,
    query: &'a [(String, String)],
) -> PluginRequest<'a> {
    PluginRequest {
        protocol: "http",
        method: "GET",
        path: "/",
        headers,
        query,
        body: b"",
        client: None,
    }
}

/// `check` with `config` on a GET of `/` with `headers` and `query`, as Kong `version`
/// answers at `now`.
pub(crate) fn checked(
    check: Check,
    store: &Store,
    config: &Value,
    headers: &HeaderMap,
    query: &[(String, String)],
    version: &str,
    now: f64,
) -> Result<Authenticated, Exit> {
    check(
        config,
        &request(headers, query),
        store,
        &Flavor::for_version(version),
        now,
    )
}
