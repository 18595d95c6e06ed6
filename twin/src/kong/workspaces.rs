//! Workspaces (reference §1.3, Enterprise): `/workspaces` and `/{workspace}/...` prefixes.
//!
//! Each workspace is a separate [`AdminState`] (its own store) behind the same dispatcher;
//! unprefixed paths act on `default`. Served only by twins whose edition is `enterprise`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::admin::{self, AdminState, empty, json_response, message};
use super::error::DaoError;
use super::schema::{self, Registry};
use super::store::Store;

/// Names a workspace may not take: the Admin API's own top-level paths.
const RESERVED: [&str; 10] = [
    "workspaces",
    "status",
    "config",
    "schemas",
    "tags",
    "endpoints",
    "plugins",
    "cache",
    "clustering",
    "_twin",
];

/// One named workspace.
#[derive(Debug)]
struct Workspace {
    /// Its entity as `/workspaces` returns it.
    entity: Map<String, Value>,
    /// Its Admin API state.
    state: Arc<AdminState>,
}

/// The workspaces of a twin, kept by its `default` state.
#[derive(Debug)]
pub struct Workspaces {
    /// The `default` workspace's entity.
    default_entity: Map<String, Value>,
    /// The other workspaces by name.
    named: Mutex<BTreeMap<String, Workspace>>,
}

impl Default for Workspaces {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspaces {
    /// Only `default`.
    pub fn new() -> Self {
        let mut default_entity = Map::new();
        default_entity.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
        default_entity.insert("name".into(), json!("default"));
        default_entity.insert("comment".into(), Value::Null);
        default_entity.insert("config".into(), json!({}));
        default_entity.insert("meta".into(), json!({}));
        default_entity.insert("created_at".into(), json!(admin::unix_now()));
        default_entity.insert("updated_at".into(), json!(admin::unix_now()));
        Self {
            default_entity,
            named: Mutex::new(BTreeMap::new()),
        }
    }

    /// Locks the named workspaces.
    fn named(&self) -> MutexGuard<'_, BTreeMap<String, Workspace>> {
        self.named.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state serving workspace `key` (name or id).
    fn state_of(&self, default: &Arc<AdminState>, key: &str) -> Option<Arc<AdminState>> {
        if key == "default" || self.default_entity.get("id") == Some(&json!(key)) {
            return Some(Arc::clone(default));
        }
        self.named()
            .values()
            .find(|workspace| {
                workspace.entity.get("name") == Some(&json!(key))
                    || workspace.entity.get("id") == Some(&json!(key))
            })
            .map(|workspace| Arc::clone(&workspace.state))
    }
}

/// Whether `path` is `/workspaces[/...]` on a twin that serves workspaces.
pub(crate) fn is_crud(default: &AdminState, path: &str) -> bool {
    default.config().edition == "enterprise"
        && path.trim_start_matches('/').split('/').next() == Some("workspaces")
}

/// `path` without a leading `/{workspace}` that names one of `default`'s workspaces (as the
/// dispatcher routes it); unchanged otherwise.
pub(crate) fn unprefixed<'a>(default: &Arc<AdminState>, path: &'a str) -> &'a str {
    if default.config().edition != "enterprise" {
        return path;
    }
    let trimmed = path.trim_start_matches('/');
    let (first, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let first = admin::percent_decode(first);
    let named = !first.is_empty()
        && !RESERVED.contains(&first.as_str())
        && default.workspaces.state_of(default, &first).is_some();
    if named {
        // Keep the slash in front of the rest.
        &trimmed[trimmed.len() - rest.len() - usize::from(!rest.is_empty())..]
    } else {
        path
    }
}

/// The Admin API with workspaces: `/workspaces`, `/{workspace}/...`, and `default`
/// (`state`, which keeps the others) unprefixed.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// Routes a request to the workspace it names.
async fn dispatch(
    State(default): State<Arc<AdminState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    let first = admin::percent_decode(first);
    if first == "workspaces" {
        if !admin::authorized(default.config(), &headers) {
            return admin::unauthorized();
        }
        return crud(&default, &method, rest.trim_matches('/'), &headers, &body);
    }
    let Some(state) = (!first.is_empty() && !RESERVED.contains(&first.as_str()))
        .then(|| default.workspaces.state_of(&default, &first))
        .flatten()
    else {
        return admin::dispatch(State(Arc::clone(&default)), method, uri, headers, body).await;
    };
    let stripped = match uri.query() {
        Some(query) => format!("/{rest}?{query}"),
        None => format!("/{rest}"),
    };
    let uri = stripped.parse().unwrap_or(uri);
    admin::dispatch(State(state), method, uri, headers, body).await
}

/// `/workspaces` and `/workspaces/{id|name}`.
fn crud(
    default: &AdminState,
    method: &Method,
    key: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let workspaces = &default.workspaces;
    let key = admin::percent_decode(key);
    match (method.as_str(), key.is_empty()) {
        ("GET" | "HEAD", true) => {
            let mut data = vec![Value::Object(workspaces.default_entity.clone())];
            data.extend(
                workspaces
                    .named()
                    .values()
                    .map(|workspace| Value::Object(workspace.entity.clone())),
            );
            json_response(StatusCode::OK, &json!({"data": data, "next": null}))
        }
        ("POST", true) => match parse(headers, body) {
            Ok(body) => create(default, body),
            Err(response) => response,
        },
        ("GET" | "HEAD", false) => match find(workspaces, &key) {
            Some(entity) => json_response(StatusCode::OK, &Value::Object(entity)),
            None => message(StatusCode::NOT_FOUND, "Not found"),
        },
        ("PATCH", false) => match parse(headers, body) {
            Ok(body) => update(default, &key, body),
            Err(response) => response,
        },
        ("DELETE", false) => delete(workspaces, &key),
        ("OPTIONS", _) => empty(StatusCode::NO_CONTENT),
        _ => message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
    }
}

/// A JSON object body, or Kong's 415/400.
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(empty(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(message(StatusCode::BAD_REQUEST, "Cannot parse JSON body")),
    }
}

/// The workspace entity addressed by `key` (name or id).
fn find(workspaces: &Workspaces, key: &str) -> Option<Map<String, Value>> {
    if key == "default" || workspaces.default_entity.get("id") == Some(&json!(key)) {
        return Some(workspaces.default_entity.clone());
    }
    workspaces
        .named()
        .values()
        .find(|w| {
            w.entity.get("name") == Some(&json!(key)) || w.entity.get("id") == Some(&json!(key))
        })
        .map(|w| w.entity.clone())
}

/// Field errors of a workspace body (`name` required on create).
fn violations(
    body: &Map<String, Value>,
    creating: bool,
    registry: &Registry,
) -> Map<String, Value> {
    let mut fields = Map::new();
    for (field, value) in body {
        match field.as_str() {
            "id" | "created_at" | "updated_at" => {}
            "name" => match value.as_str() {
                None => {
                    fields.insert(field.clone(), json!("expected a string"));
                }
                Some(name) => {
                    let valid = !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
                    if !valid {
                        fields.insert(
                            field.clone(),
                            json!(format!("invalid value '{name}': the only accepted ascii characters are alphanumerics or ., -, _, and ~")),
                        );
                    } else if RESERVED.contains(&name) || registry.get(name).is_some() {
                        fields.insert(
                            field.clone(),
                            json!(format!("must not be one of: {}", reserved_names(registry))),
                        );
                    }
                }
            },
            "comment" => {
                if !(value.is_string() || value.is_null()) {
                    fields.insert(field.clone(), json!("expected a string"));
                }
            }
            "config" | "meta" => {
                if !(value.is_object() || value.is_null()) {
                    fields.insert(field.clone(), json!("expected a record"));
                }
            }
            _ => {
                fields.insert(field.clone(), json!("unknown field"));
            }
        }
    }
    if creating && body.get("name").is_none_or(Value::is_null) {
        fields.insert("name".into(), json!("required field missing"));
    }
    fields
}

/// Core entity names and reserved paths, for the name error.
fn reserved_names(registry: &Registry) -> String {
    let mut names: Vec<&str> = registry
        .schemas
        .iter()
        .map(|schema| schema.collection)
        .chain(RESERVED)
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// The schema-violation response for `fields`.
fn schema_violation(fields: Map<String, Value>) -> Response {
    dao(&DaoError::SchemaViolation {
        fields,
        entity: Vec::new(),
    })
}

/// A DAO error's status and body.
fn dao(error: &DaoError) -> Response {
    json_response(
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST),
        &error.body(),
    )
}

/// POST /workspaces.
fn create(default: &AdminState, body: Map<String, Value>) -> Response {
    let workspaces = &default.workspaces;
    let registry = default.store().registry().clone();
    let fields = violations(&body, true, &registry);
    if !fields.is_empty() {
        return schema_violation(fields);
    }
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if find(workspaces, &name).is_some() {
        return dao(&DaoError::Unique {
            field: "name".into(),
            value: json!(name),
        });
    }
    let id = match body.get("id").and_then(Value::as_str) {
        Some(id) if schema::is_uuid(id) => id.to_ascii_lowercase(),
        Some(_) => {
            return schema_violation(Map::from_iter([(
                "id".into(),
                json!("expected a valid UUID"),
            )]));
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let now = admin::unix_now();
    let entity = Map::from_iter([
        ("id".to_owned(), json!(id)),
        ("name".to_owned(), json!(name)),
        (
            "comment".to_owned(),
            body.get("comment").cloned().unwrap_or(Value::Null),
        ),
        (
            "config".to_owned(),
            body.get("config")
                .cloned()
                .filter(|v| !v.is_null())
                .unwrap_or(json!({})),
        ),
        (
            "meta".to_owned(),
            body.get("meta")
                .cloned()
                .filter(|v| !v.is_null())
                .unwrap_or(json!({})),
        ),
        ("created_at".to_owned(), json!(now)),
        ("updated_at".to_owned(), json!(now)),
    ]);
    let state = Arc::new(AdminState::new(
        Store::new(registry),
        default.config().clone(),
    ));
    workspaces.named().insert(
        name,
        Workspace {
            entity: entity.clone(),
            state,
        },
    );
    json_response(StatusCode::CREATED, &Value::Object(entity))
}

/// PATCH /workspaces/{w}: `comment`, `config` and `meta` (the name is fixed).
fn update(default: &AdminState, key: &str, body: Map<String, Value>) -> Response {
    let workspaces = &default.workspaces;
    let registry = default.store().registry().clone();
    let mut fields = violations(&body, false, &registry);
    let Some(current) = find(workspaces, key) else {
        return dao(&DaoError::NotFound {
            field: if schema::is_uuid(key) { "id" } else { "name" }.into(),
            value: key.to_owned(),
            primary: schema::is_uuid(key),
        });
    };
    if body
        .get("name")
        .is_some_and(|name| Some(name) != current.get("name"))
    {
        fields.insert("name".into(), json!("immutable field cannot be updated"));
    }
    if !fields.is_empty() {
        return schema_violation(fields);
    }
    let name = current
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if name == "default" {
        return message(
            StatusCode::BAD_REQUEST,
            "Cannot update the default workspace",
        );
    }
    let mut named = workspaces.named();
    let Some(workspace) = named.get_mut(&name) else {
        return message(StatusCode::NOT_FOUND, "Not found");
    };
    for (field, value) in body {
        if matches!(field.as_str(), "comment" | "config" | "meta") {
            workspace.entity.insert(field, value);
        }
    }
    workspace
        .entity
        .insert("updated_at".into(), json!(admin::unix_now()));
    json_response(StatusCode::OK, &Value::Object(workspace.entity.clone()))
}

/// DELETE /workspaces/{w}: 204, also when absent; refused for `default` and non-empty ones.
fn delete(workspaces: &Workspaces, key: &str) -> Response {
    let Some(current) = find(workspaces, key) else {
        return empty(StatusCode::NO_CONTENT);
    };
    let name = current
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if name == "default" {
        return message(StatusCode::BAD_REQUEST, "Cannot delete default workspace");
    }
    let mut named = workspaces.named();
    let has_entities = named.get(&name).is_some_and(|workspace| {
        let store = workspace.state.store();
        store
            .registry()
            .schemas
            .iter()
            .any(|schema| store.count(schema.collection) > 0)
    });
    if has_entities {
        return message(StatusCode::BAD_REQUEST, "Workspace is not empty");
    }
    named.remove(&name);
    empty(StatusCode::NO_CONTENT)
}
