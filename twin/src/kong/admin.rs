//! The Admin API router: one dispatcher that serves every registered schema (reference §2.4, §3).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::catalog_api::{self, Endpoint};
use super::config_api;
use super::workspaces::Workspaces;
use super::control::Control;
use super::declarative::{self, DeclarativeError};
use super::error::DaoError;
use super::form;
use super::health::{self, TargetHealth};
use super::paging::{self, TagFilter};
use super::schema::{Registry, Schema};
use super::store::{Entity, ListFilter, Store};
use super::ttl;
use super::twin::TwinConfig;

/// Shared state of one twin's Admin API.
#[derive(Debug)]
pub struct AdminState {
    /// The entities.
    store: Mutex<Store>,
    /// The schemas served (immutable; read without the store's lock).
    registry: Registry,
    /// Version and identity answered by `GET /`.
    config: TwinConfig,
    /// Requests served, for `/status`.
    requests: AtomicU64,
    /// Hash of the last loaded declarative configuration (DB-less `/status`).
    config_hash: Mutex<String>,
    /// Counters, injected faults and node status flags (`/_twin`, Status API).
    pub(crate) control: Control,
    /// The workspaces besides `default` (Enterprise; empty in the other workspaces' states).
    pub(crate) workspaces: Workspaces,
    /// `GET /`'s body, by the plugin names in use it was built for (the rest never changes).
    node_info: Mutex<Option<(Vec<String>, String)>>,
}

impl AdminState {
    /// State serving `store` with the identity of `config`.
    pub fn new(store: Store, config: TwinConfig) -> Self {
        Self {
            registry: store.registry().clone(),
            store: Mutex::new(store),
            config,
            requests: AtomicU64::new(0),
            config_hash: Mutex::new(config_api::EMPTY_HASH.to_owned()),
            control: Control::default(),
            workspaces: Workspaces::new(),
            node_info: Mutex::new(None),
        }
    }

    /// Locks the store. Writes validate before they change anything, so a poisoned lock (a
    /// panicked holder) is taken over as it is.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The twin's identity and profile.
    pub(crate) fn config(&self) -> &TwinConfig {
        &self.config
    }

    /// The hash of the last loaded declarative configuration.
    pub(crate) fn config_hash(&self) -> MutexGuard<'_, String> {
        self.config_hash
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces every entity with those of a declarative `config`, atomically; the loaded
    /// entities by table then id.
    pub(crate) fn load(&self, config: &Value) -> Result<Map<String, Value>, DeclarativeError> {
        let loaded = declarative::load(&self.registry, config, unix_now())?;
        let entities = declarative::entities_by_table(&loaded);
        *self.store() = loaded;
        *self.config_hash() = config_api::hash(config);
        Ok(entities)
    }
}

/// The Admin API router over `state`.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `GET /`.
    Root,
    /// `GET /status`.
    Status,
    /// `/config` (reference §11.1).
    Config,
    /// Schemas, enabled plugins, tags and endpoints (reference §5, §9.4).
    Catalog(Endpoint),
    /// `/{entities}`.
    Collection { collection: String },
    /// `/{entities}/{key}`.
    Entity { collection: String, key: String },
    /// `/{parents}/{parent}/{children}`.
    NestedCollection {
        parent: ParentRef,
        child: String,
        field: String,
    },
    /// `/{parents}/{parent}/{children}/{key}`.
    NestedEntity {
        parent: ParentRef,
        child: String,
        field: String,
        key: String,
    },
    /// `/{parents}/{parent}/health`: the balancer view (reference §8.1).
    Health { parent: ParentRef },
    /// `/{parents}/{parent}/{children}/{key}/healthy|unhealthy` (reference §8.2).
    ForcedHealth {
        parent: ParentRef,
        child: String,
        field: String,
        key: String,
        /// One address of the child (`.../{t}/{address}/healthy`); `None` for all of them.
        address: Option<String>,
        healthy: bool,
    },
    /// `/{children}/{child}/{field}`: the parent of a child.
    ParentOf {
        collection: String,
        key: String,
        field: String,
        parent: String,
    },
}

/// A parent addressed in a nested path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParentRef {
    /// Parent collection.
    collection: String,
    /// Id or endpoint key as given (decoded).
    key: String,
    /// The raw path segment, for `next` links.
    raw: String,
}

/// A request as the dispatcher needs it.
struct Request {
    /// HTTP method (HEAD is served as GET).
    method: Method,
    /// Decoded query pairs.
    query: Vec<(String, String)>,
    /// Request headers.
    headers: HeaderMap,
    /// Raw body.
    body: Bytes,
}

impl Request {
    /// The first value of query parameter `name`.
    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Serves one request.
pub(crate) async fn dispatch(
    State(state): State<Arc<AdminState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let version = state.config.version.clone();
    let origin = headers.get(header::ORIGIN).cloned();
    let mut response = match resolve(&state, uri.path()) {
        _ if !authorized(&state.config, &headers) => unauthorized(),
        None => message(StatusCode::NOT_FOUND, "Not found"),
        Some(target) => {
            let query = uri.query().map(parse_query).unwrap_or_default();
            let request = Request {
                method: if method == Method::HEAD {
                    Method::GET
                } else {
                    method
                },
                query,
                headers,
                body,
            };
            if request.method == Method::OPTIONS {
                options(&target)
            } else {
                handle(&state, &target, &request)
            }
        }
    };
    let response_headers = response.headers_mut();
    if let Ok(server) = HeaderValue::from_str(&format!("kong/{version}")) {
        response_headers.insert(header::SERVER, server);
    }
    response_headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        origin.unwrap_or(HeaderValue::from_static("*")),
    );
    response_headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    response_headers.insert(
        "x-kong-admin-latency",
        HeaderValue::from(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
    );
    response
}

/// Whether the request carries the configured RBAC token (always, when none is configured).
pub(crate) fn authorized(config: &TwinConfig, headers: &HeaderMap) -> bool {
    config.admin_token.as_ref().is_none_or(|token| {
        headers
            .get(config.token_header.as_str())
            .is_some_and(|given| given.as_bytes() == token.as_bytes())
    })
}

/// The 401 of a request without the configured RBAC token.
pub(crate) fn unauthorized() -> Response {
    message(
        StatusCode::UNAUTHORIZED,
        "Invalid credentials. Token or User credentials required",
    )
}

/// Maps a path onto a [`Target`] using the registry; `None` for unknown paths.
fn resolve(state: &AdminState, path: &str) -> Option<Target> {
    let raw: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let segments: Vec<String> = raw.iter().map(|segment| percent_decode(segment)).collect();
    if let Some(endpoint) = catalog_api::resolve(&segments) {
        return Some(Target::Catalog(endpoint));
    }
    let registry = &state.registry;
    let known = |collection: &str| {
        registry
            .get(collection)
            .is_some_and(|schema| !schema.nested_only)
    };
    let nested = |parent: &str, name: &str| {
        registry
            .children_of(parent)
            .find(|(child, _, _)| child.nested_name == name)
            .map(|(child, field, _)| (child.collection.to_owned(), field.name.to_owned()))
    };
    let parent_ref = |index: usize| ParentRef {
        collection: segments[0].clone(),
        key: segments[index].clone(),
        raw: raw[index].to_owned(),
    };
    match segments.as_slice() {
        [] => Some(Target::Root),
        [status] if status == "status" => Some(Target::Status),
        [config] if config == "config" => Some(Target::Config),
        [collection] if known(collection) => Some(Target::Collection {
            collection: collection.clone(),
        }),
        [collection, key] if known(collection) => Some(Target::Entity {
            collection: collection.clone(),
            key: key.clone(),
        }),
        [parent, _, name]
            if name == "health" && registry.get(parent).is_some_and(|s| s.health.is_some()) =>
        {
            Some(Target::Health {
                parent: parent_ref(1),
            })
        }
        [parent, _, name, key, rest @ ..]
            if known(parent)
                && rest.len() <= 2
                && rest
                    .last()
                    .is_some_and(|state| state == "healthy" || state == "unhealthy") =>
        {
            let (child, field) = nested(parent, name)?;
            registry
                .get(&child)
                .is_some_and(|schema| schema.forced_health)
                .then(|| Target::ForcedHealth {
                    parent: parent_ref(1),
                    child,
                    field,
                    key: key.clone(),
                    address: (rest.len() == 2).then(|| rest[0].clone()),
                    healthy: rest.last().is_some_and(|state| state == "healthy"),
                })
        }
        [parent, _, name] if known(parent) => {
            if let Some((child, field)) = nested(parent, name) {
                return Some(Target::NestedCollection {
                    parent: parent_ref(1),
                    child,
                    field,
                });
            }
            let schema = registry.get(parent)?;
            let foreign = schema
                .foreign_keys()
                .find(|(field, _)| field.name == name)?
                .1;
            Some(Target::ParentOf {
                collection: parent.clone(),
                key: segments[1].clone(),
                field: name.clone(),
                parent: foreign.collection.to_owned(),
            })
            .filter(|_| known(foreign.collection))
            // A parent addressable by this child's key disables the link (`/snis/{s}/certificate`).
            .filter(|_| {
                registry
                    .get(foreign.collection)
                    .and_then(|parent_schema| parent_schema.child_keys)
                    .is_none_or(|keys| keys.child != parent.as_str())
            })
        }
        [parent, _, name, key] if known(parent) => {
            let (child, field) = nested(parent, name)?;
            Some(Target::NestedEntity {
                parent: parent_ref(1),
                child,
                field,
                key: key.clone(),
            })
        }
        _ => None,
    }
}

/// What kind of endpoint a path is, for the control layer's counters and faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndpointKind {
    /// `/`, `/status`, and the catalogue (`/schemas`, `/tags`, `/endpoints`, ...).
    Node,
    /// `/config`.
    Config,
    /// Any entity endpoint (collections, entities, nested, health).
    Entity,
}

/// The kind of endpoint `path` is; `None` for unknown paths.
pub(crate) fn endpoint(state: &AdminState, path: &str) -> Option<EndpointKind> {
    Some(match resolve(state, path)? {
        Target::Root | Target::Status | Target::Catalog(_) => EndpointKind::Node,
        Target::Config => EndpointKind::Config,
        _ => EndpointKind::Entity,
    })
}

/// Methods a target answers, for OPTIONS and 405.
fn allowed_methods(target: &Target) -> &'static [&'static str] {
    match target {
        Target::Root | Target::Status | Target::Health { .. } => &["GET", "HEAD", "OPTIONS"],
        Target::ForcedHealth { .. } => &["OPTIONS", "PUT"],
        Target::Catalog(endpoint) => endpoint.methods(),
        Target::Config => &["GET", "HEAD", "OPTIONS", "POST"],
        Target::Collection { .. } | Target::NestedCollection { .. } => {
            &["GET", "HEAD", "OPTIONS", "POST"]
        }
        Target::Entity { .. } | Target::NestedEntity { .. } => {
            &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "PUT"]
        }
        Target::ParentOf { .. } => &["GET", "HEAD", "OPTIONS", "PATCH", "PUT"],
    }
}

/// OPTIONS: 204 with `Allow` and the CORS method list.
fn options(target: &Target) -> Response {
    let methods = allowed_methods(target).join(", ");
    let mut response = empty(StatusCode::NO_CONTENT);
    if let Ok(value) = HeaderValue::from_str(&methods) {
        response.headers_mut().insert(header::ALLOW, value.clone());
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
    }
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type"),
    );
    response
}

/// Serves `request` on `target`.
fn handle(state: &AdminState, target: &Target, request: &Request) -> Response {
    let method = request.method.as_str();
    if !allowed_methods(target).contains(&method) {
        return message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    if *target == Target::Config {
        return config_api::serve(
            state,
            method,
            &request.query,
            &request.headers,
            &request.body,
        );
    }
    if state.config.db_less
        && let Some(refusal) = db_less_refusal(&state.registry, target, method)
    {
        return refusal;
    }
    let writes = !matches!(target, Target::ForcedHealth { .. });
    let mut body = if writes && matches!(method, "POST" | "PUT" | "PATCH") {
        match parse_body(request, body_schema(&state.registry, target)) {
            Ok(body) => body,
            Err(response) => return response,
        }
    } else {
        Map::new()
    };
    let now = unix_now();
    let precise_now = ttl::now();
    let expiring = body_schema(&state.registry, target).is_some_and(|schema| schema.ttl);
    if expiring && let Err(error) = ttl::take_option(&mut body, precise_now) {
        return dao_error(&error);
    }
    let mut store = state.store();
    store.purge_expired(precise_now);
    if let Some(text) = missing_child_key(&store, target, method) {
        return message(StatusCode::NOT_FOUND, text);
    }
    let outcome = match target {
        Target::Root => return node_info_response(state, &store),
        Target::Status => return json_response(StatusCode::OK, &status(state)),
        Target::Config => return not_found(),
        Target::Catalog(endpoint) => {
            let (status, value) = catalog_api::serve(&store, endpoint, &request.query, body);
            return json_response(status, &value);
        }
        Target::Collection { collection } => match method {
            "GET" => list_top_level(&store, collection, request),
            _ => store
                .insert(collection, body, now)
                .map(|entity| (StatusCode::CREATED, Value::Object(entity)))
                .map_err(Failure::from),
        },
        Target::Entity { collection, key } => {
            entity_endpoint(&mut store, collection, key, method, body, now)
        }
        Target::NestedCollection {
            parent,
            child,
            field,
        } => {
            let Some(parent_id) = id_of(&store, &parent.collection, &parent.key) else {
                return not_found();
            };
            match method {
                "GET" => list_nested(&store, parent, child, field, &parent_id, request),
                _ => {
                    let mut body = body;
                    body.insert(field.clone(), json!({"id": parent_id}));
                    store
                        .insert(child, body, now)
                        .map(|entity| (StatusCode::CREATED, Value::Object(entity)))
                        .map_err(Failure::from)
                }
            }
        }
        Target::NestedEntity {
            parent,
            child,
            field,
            key,
        } => {
            let Some(parent_id) = id_of(&store, &parent.collection, &parent.key) else {
                return not_found();
            };
            nested_entity(&mut store, child, field, key, &parent_id, method, body, now)
        }
        Target::Health { parent } => health(state, &store, parent, request),
        Target::ForcedHealth {
            parent,
            child,
            field,
            key,
            address,
            healthy,
        } => {
            let Some(parent_id) = id_of(&store, &parent.collection, &parent.key) else {
                return not_found();
            };
            force_health(
                &mut store,
                child,
                field,
                key,
                address.as_deref(),
                &parent_id,
                *healthy,
            )
        }
        Target::ParentOf {
            collection,
            key,
            field,
            parent,
        } => parent_of(
            &mut store, collection, key, field, parent, method, body, now,
        ),
    };
    match outcome {
        Ok((status, Value::Null)) => empty(status),
        Ok((status, mut value)) => {
            if expiring {
                ttl::present(&mut value, precise_now);
            }
            json_response(status, &value)
        }
        Err(Failure::NotFound) => not_found(),
        Err(Failure::Message(status, text)) => message(status, &text),
        Err(Failure::Dao(error)) => dao_error(&error),
    }
}

/// The 404 message when a non-PUT request names its entity (or parent) by a child key
/// that no child has (`/certificates/{unknown sni}`: `SNI not found`).
fn missing_child_key(store: &Store, target: &Target, method: &str) -> Option<&'static str> {
    if method == "PUT" {
        return None;
    }
    match target {
        Target::Entity { collection, key } => store.missing_child_key(collection, key),
        Target::NestedCollection { parent, .. } | Target::NestedEntity { parent, .. } => {
            store.missing_child_key(&parent.collection, &parent.key)
        }
        _ => None,
    }
}

/// Why an endpoint did not succeed.
enum Failure {
    /// The plain `{"message":"Not found"}`.
    NotFound,
    /// Another plain `{"message": ...}`.
    Message(StatusCode, String),
    /// A DAO error body.
    Dao(DaoError),
}

impl From<DaoError> for Failure {
    fn from(error: DaoError) -> Self {
        Self::Dao(error)
    }
}

/// Status and body of a successful endpoint (`Value::Null` for an empty body).
type Outcome = Result<(StatusCode, Value), Failure>;

/// `/{entities}/{key}`: GET, PUT upsert, PATCH merge, idempotent DELETE.
fn entity_endpoint(
    store: &mut Store,
    collection: &str,
    key: &str,
    method: &str,
    body: Entity,
    now: i64,
) -> Outcome {
    match method {
        "GET" => store
            .find(collection, key)
            .map(|entity| (StatusCode::OK, Value::Object(entity.clone())))
            .ok_or(Failure::NotFound),
        "PUT" => Ok((
            StatusCode::OK,
            Value::Object(store.upsert(collection, key, body, now)?),
        )),
        "PATCH" => {
            // Without the subschema key Kong reads the entity first: a miss is the plain 404.
            let reads_first = store
                .registry()
                .get(collection)
                .and_then(|schema| schema.subschema)
                .is_some_and(|subschema| !body.contains_key(subschema.key));
            if reads_first && store.find(collection, key).is_none() {
                return Err(Failure::NotFound);
            }
            Ok((
                StatusCode::OK,
                Value::Object(store.update(collection, key, body, now)?),
            ))
        }
        _ => {
            if let Some(id) = id_of(store, collection, key) {
                store.delete(collection, &id)?;
            }
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
    }
}

/// `/{parents}/{p}/{children}/{key}`: scoped to the parent; missing children are 404.
#[expect(
    clippy::too_many_arguments,
    reason = "one endpoint's full context; grouping it would only rename it"
)]
fn nested_entity(
    store: &mut Store,
    child: &str,
    field: &str,
    key: &str,
    parent_id: &str,
    method: &str,
    mut body: Entity,
    now: i64,
) -> Outcome {
    let update_only = store
        .registry()
        .get(child)
        .is_some_and(|schema| schema.nested_update_only);
    let existing = store.find_scoped(child, key, Some(parent_id)).cloned();
    let existing_id = existing
        .as_ref()
        .and_then(|entity| entity.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let owned = existing.as_ref().is_some_and(|entity| {
        entity
            .get(field)
            .and_then(|value| value.get("id"))
            .and_then(Value::as_str)
            == Some(parent_id)
    });
    match method {
        "GET" if owned => Ok((StatusCode::OK, existing.map_or(Value::Null, Value::Object))),
        "PUT" | "PATCH" if update_only => {
            if !owned {
                return Err(Failure::NotFound);
            }
            body.entry(field.to_owned())
                .or_insert_with(|| json!({"id": parent_id}));
            Ok((
                StatusCode::OK,
                Value::Object(store.update(child, &existing_id, body, now)?),
            ))
        }
        "PUT" if owned || existing.is_none() => {
            body.insert(field.to_owned(), json!({"id": parent_id}));
            Ok((
                StatusCode::OK,
                Value::Object(store.upsert(child, key, body, now)?),
            ))
        }
        "PATCH" if owned => {
            body.entry(field.to_owned())
                .or_insert_with(|| json!({"id": parent_id}));
            Ok((
                StatusCode::OK,
                Value::Object(store.update(child, &existing_id, body, now)?),
            ))
        }
        "DELETE" if owned => {
            if let Some(id) = existing
                .as_ref()
                .and_then(|entity| entity.get("id"))
                .and_then(Value::as_str)
            {
                store.delete(child, id)?;
            }
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        _ => Err(Failure::NotFound),
    }
}

/// `/{children}/{c}/{field}`: GET, PATCH or PUT the child's parent.
#[expect(
    clippy::too_many_arguments,
    reason = "one endpoint's full context; grouping it would only rename it"
)]
fn parent_of(
    store: &mut Store,
    collection: &str,
    key: &str,
    field: &str,
    parent: &str,
    method: &str,
    body: Entity,
    now: i64,
) -> Outcome {
    let Some(child) = store.find(collection, key).cloned() else {
        return Err(Failure::NotFound);
    };
    let parent_id = child
        .get(field)
        .and_then(|value| value.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (method, parent_id) {
        ("GET", Some(id)) => store
            .find(parent, &id)
            .map(|entity| (StatusCode::OK, Value::Object(entity.clone())))
            .ok_or(Failure::NotFound),
        ("PATCH", Some(id)) => Ok((
            StatusCode::OK,
            Value::Object(store.update(parent, &id, body, now)?),
        )),
        ("PUT", Some(id)) => Ok((
            StatusCode::OK,
            Value::Object(store.upsert(parent, &id, body, now)?),
        )),
        ("PUT", None) => {
            let created = store.insert(parent, body, now)?;
            let mut link = Map::new();
            link.insert(field.to_owned(), json!({"id": created.get("id")}));
            let child_id = child
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if let Err(refused) = store.update(collection, &child_id, link, now) {
                // The link was refused: the parent created for it goes too.
                let created_id = created.get("id").and_then(Value::as_str).unwrap_or_default();
                store.delete(parent, created_id)?;
                return Err(refused.into());
            }
            Ok((StatusCode::OK, Value::Object(created)))
        }
        _ => Err(Failure::NotFound),
    }
}

/// `PUT .../{children}/{key}/healthy|unhealthy`: 204, or 404 for an unknown child.
fn force_health(
    store: &mut Store,
    child: &str,
    field: &str,
    key: &str,
    address: Option<&str>,
    parent_id: &str,
    healthy: bool,
) -> Outcome {
    // The twin resolves no DNS: a child's only address is its endpoint key (`host:port`).
    let schema = store.registry().get(child);
    let endpoint_key = schema.and_then(|schema| schema.endpoint_key);
    let canonical = |text: &str| {
        schema
            .and_then(|schema| schema.normalize_key)
            .and_then(|normalize| normalize(text))
            .unwrap_or_else(|| text.to_owned())
    };
    let id = store
        .find_scoped(child, key, Some(parent_id))
        .filter(|entity| {
            entity
                .get(field)
                .and_then(|value| value.get("id"))
                .and_then(Value::as_str)
                == Some(parent_id)
        })
        .filter(|entity| {
            address.is_none_or(|address| {
                endpoint_key
                    .and_then(|key| entity.get(key))
                    .and_then(Value::as_str)
                    == Some(canonical(address).as_str())
            })
        })
        .and_then(|entity| entity.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(Failure::NotFound)?;
    store.force_health(&id, healthy);
    Ok((StatusCode::NO_CONTENT, Value::Null))
}

/// `GET /{parents}/{p}/health` (reference §8.1): each child's balancer view, or with
/// `?balancer_health=1` the balancer as a whole.
fn health(state: &AdminState, store: &Store, parent: &ParentRef, request: &Request) -> Outcome {
    let Some(hook) = store
        .registry()
        .get(&parent.collection)
        .and_then(|schema| schema.health)
    else {
        return Err(Failure::NotFound);
    };
    let Some(upstream) = store.find(&parent.collection, &parent.key).cloned() else {
        return Err(Failure::NotFound);
    };
    let parent_id = upstream
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let field = store
        .registry()
        .get(hook.child)
        .and_then(|schema| {
            schema
                .foreign_keys()
                .find(|(_, foreign)| foreign.collection == parent.collection)
                .map(|(field, _)| field.name)
        })
        .unwrap_or_default();
    let enabled = (hook.enabled)(&upstream);
    let children = newest_first(store, hook.child, field, &parent_id);
    let mut total: i64 = 0;
    let mut available: i64 = 0;
    let reports: Vec<Entity> = children
        .into_iter()
        .map(|mut child| {
            let health = TargetHealth::of(store, enabled, &child);
            let weight = health.weight;
            let (address_health, target_health) = (health.address_health(), health.target_health());
            total += weight;
            available += health.available_weight();
            let text = child.get("target").and_then(Value::as_str).unwrap_or_default();
            let (host, port) = super::entities::checks::split_host_port(text)
                .map(|(host, port)| (host.to_owned(), port.unwrap_or(8000)))
                .unwrap_or_default();
            let dns = if host.parse::<std::net::Ipv6Addr>().is_ok() { "AAAA" } else { "A" };
            let available_weight = health.available_weight();
            child.insert("health".to_owned(), json!(target_health));
            child.insert(
                "data".to_owned(),
                json!({
                    "host": host, "port": port, "dns": dns, "nodeWeight": weight,
                    "weight": {"total": weight, "available": available_weight,
                               "unavailable": weight - available_weight},
                    "addresses": [{"ip": host, "port": port, "weight": weight, "health": address_health}],
                }),
            );
            child
        })
        .collect();
    let node_id = state.config.node_id.clone();
    if request.query("balancer_health").is_some() {
        let threshold = (hook.threshold)(&upstream);
        let balanced = health::balancer_healthy(total, available, threshold);
        let balancer_health = if balanced { "HEALTHY" } else { "UNHEALTHY" };
        let health = if enabled {
            balancer_health
        } else {
            "HEALTHCHECKS_OFF"
        };
        let body = json!({
            "data": {
                "id": parent_id, "health": health, "balancer_health": balancer_health,
                "details": {"weight": {"total": total, "available": available,
                                       "unavailable": total - available}},
            },
            "next": null,
            "node_id": node_id,
        });
        return Ok((StatusCode::OK, body));
    }
    let size = paging::parse_size(request.query("size"))?;
    let path = format!("/{}/{}/health", parent.collection, parent.raw);
    let mut body = indexed_page(reports, request.query("offset"), size, &path)?;
    body["node_id"] = json!(node_id);
    Ok((StatusCode::OK, body))
}

/// The id of the entity addressed by `key`.
fn id_of(store: &Store, collection: &str, key: &str) -> Option<String> {
    store
        .find(collection, key)
        .and_then(|entity| entity.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `GET /{entities}`: paginated, tag-filtered; `next` carries `tags` and `size`.
fn list_top_level(store: &Store, collection: &str, request: &Request) -> Outcome {
    let lookup = store
        .registry()
        .get(collection)
        .and_then(|schema| schema.lookup_query);
    if let Some((field, value)) =
        lookup.and_then(|field| request.query(field).map(|value| (field, value)))
    {
        return exact_lookup(store, collection, field, value);
    }
    let size = paging::parse_size(request.query("size"))?;
    let after = request
        .query("offset")
        .map(paging::decode_offset)
        .transpose()?;
    let raw_tags = request.query("tags");
    let tags = raw_tags.map(TagFilter::parse).transpose()?;
    let page = store.list(
        collection,
        ListFilter {
            parent: None,
            tags: tags.as_ref(),
            after: after.as_deref(),
        },
        size,
    );
    let mut extra = String::new();
    if let Some(raw_tags) = raw_tags {
        extra.push_str(&format!("&tags={}", paging::escape_uri(raw_tags)));
    }
    if request.query("size").is_some() {
        extra.push_str(&format!("&size={size}"));
    }
    Ok((
        StatusCode::OK,
        page_body(&format!("/{collection}"), &extra, page),
    ))
}

/// `GET /{entities}?<field>=<value>`: the one entity with that unique value, or none.
fn exact_lookup(store: &Store, collection: &str, field: &str, value: &str) -> Outcome {
    if value.is_empty() {
        return Err(Failure::Message(
            StatusCode::BAD_REQUEST,
            format!("{field} must be an unempty string"),
        ));
    }
    let data: Vec<Value> = store
        .find_by(collection, field, value)
        .map(|entity| Value::Object(entity.clone()))
        .into_iter()
        .collect();
    Ok((StatusCode::OK, json!({"data": data, "next": null})))
}

/// `GET /{parents}/{p}/{children}`: the parent's children; `tags` ignored, `next` bare.
fn list_nested(
    store: &Store,
    parent: &ParentRef,
    child: &str,
    field: &str,
    parent_id: &str,
    request: &Request,
) -> Outcome {
    let size = paging::parse_size(request.query("size"))?;
    let schema = store.registry().get(child);
    let schema_name = schema.map_or(child, |schema: &Schema| schema.nested_name);
    let path = format!("/{}/{}/{}", parent.collection, parent.raw, schema_name);
    if schema.is_some_and(|schema| schema.index_offsets) {
        let children = newest_first(store, child, field, parent_id);
        let page = indexed_page(children, request.query("offset"), size, &path)?;
        return Ok((StatusCode::OK, page));
    }
    let after = request
        .query("offset")
        .map(paging::decode_offset)
        .transpose()?;
    let filter = ListFilter {
        parent: Some((field, parent_id)),
        tags: None,
        after: after.as_deref(),
    };
    let page = store.list(child, filter, size);
    Ok((StatusCode::OK, page_body(&path, "", page)))
}

/// All children of `parent_id`, newest first (ties by id).
fn newest_first(store: &Store, child: &str, field: &str, parent_id: &str) -> Vec<Entity> {
    let filter = ListFilter {
        parent: Some((field, parent_id)),
        tags: None,
        after: None,
    };
    let mut children = store.list(child, filter, usize::MAX).entities;
    let created = |entity: &Entity| {
        entity
            .get("created_at")
            .and_then(Value::as_f64)
            .unwrap_or_default()
    };
    children.sort_by(|a, b| created(b).total_cmp(&created(a)));
    children
}

/// A page of `items` starting at the decimal index `offset`; `next` is `path?offset=N`.
fn indexed_page(
    items: Vec<Entity>,
    offset: Option<&str>,
    size: usize,
    path: &str,
) -> Result<Value, Failure> {
    let start = match offset {
        None => 0,
        Some(text) => text.parse::<usize>().map_err(|_| DaoError::InvalidOffset {
            offset: text.to_owned(),
            reason: "bad base64 encoding",
        })?,
    };
    let total = items.len();
    let data: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(size)
        .map(Value::Object)
        .collect();
    let end = start.saturating_add(size);
    Ok(if end < total {
        json!({"data": data, "next": format!("{path}?offset={end}"), "offset": end.to_string()})
    } else {
        json!({"data": data, "next": null})
    })
}

/// `{data, next[, offset]}` for a page.
fn page_body(path: &str, extra: &str, page: super::store::Page) -> Value {
    let last_id = page
        .entities
        .last()
        .and_then(|entity| entity.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let data: Vec<Value> = page.entities.into_iter().map(Value::Object).collect();
    match last_id.filter(|_| page.has_more) {
        Some(id) => {
            let offset = paging::encode_offset(&id);
            let next = format!("{path}?offset={}{extra}", paging::escape_uri(&offset));
            json!({"data": data, "next": next, "offset": offset})
        }
        None => json!({"data": data, "next": null}),
    }
}

/// The JSON object body of a write; 415 and 400 as Kong answers them.
fn parse_body(request: &Request, schema: Option<&Schema>) -> Result<Entity, Response> {
    if request.headers.get_all(header::CONTENT_TYPE).iter().count() > 1 {
        return Err(empty(StatusCode::BAD_REQUEST));
    }
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let media_type = content_type.map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    if media_type.as_deref() == Some("application/x-www-form-urlencoded") {
        let text = String::from_utf8_lossy(&request.body);
        return form::parse(schema, parse_query(&text))
            .ok_or_else(|| message(StatusCode::BAD_REQUEST, "Cannot parse form body: keys nest too deep"));
    }
    if media_type.as_deref() != Some("application/json") {
        return Err(empty(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(message(StatusCode::BAD_REQUEST, "Cannot parse JSON body")),
    }
}

/// The schema a write to `target` validates against, for typing form bodies.
fn body_schema<'a>(registry: &'a Registry, target: &Target) -> Option<&'a Schema> {
    match target {
        Target::Root
        | Target::Status
        | Target::Config
        | Target::Health { .. }
        | Target::ForcedHealth { .. } => None,
        Target::Catalog(endpoint) => endpoint.body_schema(registry),
        Target::Collection { collection } | Target::Entity { collection, .. } => {
            registry.get(collection)
        }
        Target::NestedCollection { child, .. } | Target::NestedEntity { child, .. } => {
            registry.get(child)
        }
        Target::ParentOf { parent, .. } => registry.get(parent),
    }
}

/// `GET /`, rebuilt only when the set of plugins in use changed since the last one.
fn node_info_response(state: &AdminState, store: &Store) -> Response {
    let in_use: Vec<String> = catalog_api::plugins_in_use(store)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut cached = state
        .node_info
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let text = match cached.as_ref() {
        Some((names, text)) if *names == in_use => text.clone(),
        _ => {
            let text = node_info(state, store).to_string();
            *cached = Some((in_use, text.clone()));
            text
        }
    };
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// `GET /` (reference §9.1), minimal.
fn node_info(state: &AdminState, store: &Store) -> Value {
    let config = &state.config;
    json!({
        "version": config.version,
        "edition": config.edition,
        "tagline": "Welcome to kong",
        "hostname": config.hostname,
        "node_id": config.node_id,
        "lua_version": "LuaJIT 2.1.0-20231117",
        "timers": {"running": 0, "pending": 1},
        "pids": {"master": std::process::id(), "workers": [std::process::id()]},
        "plugins": catalog_api::node_plugins(store, &config.version),
        "configuration": {
            "database": if config.db_less { "off" } else { "postgres" },
            "role": "traditional",
            "router_flavor": "traditional_compatible",
            "admin_listen": [config.admin_listen],
            "log_level": "notice",
        },
    })
}

/// `GET /status` (reference §9.2), minimal.
pub(crate) fn status(state: &AdminState) -> Value {
    let requests = state.requests.load(Ordering::Relaxed);
    let mut body = json!({
        "server": {
            "connections_accepted": requests, "connections_active": 1, "connections_handled": requests,
            "connections_reading": 0, "connections_writing": 1, "connections_waiting": 0,
            "total_requests": requests,
        },
        "database": {"reachable": !state.control.database_unreachable()},
        "memory": {
            "lua_shared_dicts": {
                "kong": {"capacity": "5.00 MiB", "allocated_slabs": "0.04 MiB"},
                "kong_db_cache": {"capacity": "128.00 MiB", "allocated_slabs": "0.80 MiB"},
            },
            "workers_lua_vms": [{"pid": std::process::id(), "http_allocated_gc": "50.11 MiB"}],
        },
    });
    if state.config.db_less {
        if let Value::Object(map) = &mut body {
            map.remove("database");
        }
        body["configuration_hash"] = json!(*state.config_hash());
    }
    body
}

/// The code-12 refusal of an entity write on a DB-less node, or `None`.
fn db_less_refusal(registry: &Registry, target: &Target, method: &str) -> Option<Response> {
    let (collection, key) = match target {
        Target::Collection { collection } => (collection, None),
        Target::Entity { collection, key } => (collection, Some(key)),
        Target::NestedCollection { child, .. } => (child, None),
        Target::NestedEntity { child, key, .. } => (child, Some(key)),
        Target::ParentOf { parent, .. } => (parent, None),
        Target::ForcedHealth { .. } | Target::Catalog(_) => return None,
        Target::Root | Target::Status | Target::Config | Target::Health { .. } => return None,
    };
    let endpoint_key = key
        .filter(|key| !super::schema::is_uuid(key))
        .and_then(|_| registry.get(collection)?.endpoint_key);
    config_api::refuse_write(method, collection, endpoint_key)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Splits and decodes a query string (`+` is a space).
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&key.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// Decodes `%XX` escapes (invalid UTF-8 is replaced).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = super::entities::checks::escaped_byte(bytes, index);
        match escape {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// A JSON response with Kong's content type.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// `{"message": text}`.
pub(crate) fn message(status: StatusCode, text: &str) -> Response {
    json_response(status, &json!({"message": text}))
}

/// The plain 404.
fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found")
}

/// A DAO error's status and body.
fn dao_error(error: &DaoError) -> Response {
    json_response(
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST),
        &error.body(),
    )
}

/// An empty-bodied response.
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}
