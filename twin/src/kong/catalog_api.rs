//! Node-level endpoints that describe what the node serves (reference §5, §7.3, §9.4):
//! `/schemas/{entity}[/validate]`, `/schemas/plugins/{name}`, `/schemas/plugins/validate`,
//! `/plugins/enabled`, `/tags[/{tag}]` and `/endpoints`, all derived from the registry
//! and the plugin catalogue.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::declarative::table_of;
use super::entities::plugins::catalog::{self, PluginSchema};
use super::error::DaoError;
use super::paging;
use super::schema::{self, Element, Field, Kind, Registry, Schema, Violations};
use super::store::Store;

/// A catalogue endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `GET /schemas/{name}` (name as in `kong.db`: table names).
    EntitySchema(String),
    /// `POST /schemas/{name}/validate`.
    ValidateEntity(String),
    /// `GET /schemas/plugins/{name}`.
    PluginSchema(String),
    /// `POST /schemas/plugins/validate`.
    ValidatePlugin,
    /// `GET /plugins/enabled`.
    EnabledPlugins,
    /// `GET /tags` and `GET /tags/{tag}`.
    Tags(Option<String>),
    /// `GET /endpoints`.
    Endpoints,
}

/// The catalogue endpoint at the decoded path `segments`, if any.
pub(crate) fn resolve(segments: &[String]) -> Option<Endpoint> {
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    Some(match parts.as_slice() {
        ["schemas", "plugins", "validate"] => Endpoint::ValidatePlugin,
        ["schemas", "plugins", name] => Endpoint::PluginSchema((*name).to_owned()),
        ["schemas", name, "validate"] => Endpoint::ValidateEntity((*name).to_owned()),
        ["schemas", name] => Endpoint::EntitySchema((*name).to_owned()),
        ["plugins", "enabled"] => Endpoint::EnabledPlugins,
        ["tags"] => Endpoint::Tags(None),
        ["tags", tag] => Endpoint::Tags(Some((*tag).to_owned())),
        ["endpoints"] => Endpoint::Endpoints,
        _ => return None,
    })
}

impl Endpoint {
    /// Methods the endpoint answers.
    pub(crate) fn methods(&self) -> &'static [&'static str] {
        match self {
            Self::ValidateEntity(_) | Self::ValidatePlugin => &["OPTIONS", "POST"],
            _ => &["GET", "HEAD", "OPTIONS"],
        }
    }

    /// The schema a body sent here is typed by (form bodies).
    pub(crate) fn body_schema<'a>(&self, registry: &'a Registry) -> Option<&'a Schema> {
        match self {
            Self::ValidateEntity(name) => by_table(registry, name),
            Self::ValidatePlugin => registry.get("plugins"),
            _ => None,
        }
    }
}

/// The schema whose table name (Kong's `kong.db` name) is `name`.
fn by_table<'a>(registry: &'a Registry, name: &str) -> Option<&'a Schema> {
    registry
        .schemas
        .iter()
        .find(|schema| table_of(schema.collection) == name)
}

/// Serves `endpoint`; status and JSON body.
pub(crate) fn serve(
    store: &Store,
    endpoint: &Endpoint,
    query: &[(String, String)],
    body: Map<String, Value>,
) -> (StatusCode, Value) {
    let registry = store.registry();
    let not_found = |message: String| (StatusCode::NOT_FOUND, json!({"message": message}));
    match endpoint {
        Endpoint::EntitySchema(name) => match by_table(registry, name) {
            Some(schema) => (StatusCode::OK, entity_schema_json(schema)),
            None => not_found(format!("No entity named '{name}'")),
        },
        Endpoint::ValidateEntity(name) => match by_table(registry, name) {
            Some(schema) => validation_reply(schema, body),
            None => not_found(format!("No entity named '{name}'")),
        },
        Endpoint::PluginSchema(name) => match catalog::find(name) {
            Some(plugin) => (StatusCode::OK, plugin_schema_json(plugin)),
            None => not_found(format!("No plugin named '{name}'")),
        },
        Endpoint::ValidatePlugin => match registry.get("plugins") {
            Some(schema) => validation_reply(schema, body),
            None => not_found("No entity named 'plugins'".to_owned()),
        },
        Endpoint::EnabledPlugins => {
            let names: Vec<&str> = catalog::all().iter().map(|plugin| plugin.name).collect();
            (StatusCode::OK, json!({"enabled_plugins": names}))
        }
        Endpoint::Tags(tag) => match tags_page(store, tag.as_deref(), query) {
            Ok(page) => (StatusCode::OK, page),
            Err(error) => (
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST),
                error.body(),
            ),
        },
        Endpoint::Endpoints => (StatusCode::OK, json!({"data": endpoints(registry)})),
    }
}

/// `GET /`'s `plugins`: every enabled plugin with its version (bundled plugins carry
/// the node's) and priority, and the names of the plugins configured, in id order.
pub(crate) fn node_plugins(store: &Store, version: &str) -> Value {
    let in_use = plugins_in_use(store);
    json!({"available_on_server": available_plugins(version), "enabled_in_cluster": in_use})
}

/// Names of the plugins configured on any entity, in first-seen order.
pub(crate) fn plugins_in_use(store: &Store) -> Vec<&str> {
    let mut in_use: Vec<&str> = Vec::new();
    for name in store
        .rows("plugins")
        .filter_map(|plugin| plugin.get("name").and_then(Value::as_str))
    {
        if !in_use.contains(&name) {
            in_use.push(name);
        }
    }
    in_use
}

/// `available_on_server` of `GET /`: every plugin the node has, with its priority.
fn available_plugins(version: &str) -> Map<String, Value> {
    catalog::all()
        .iter()
        .map(|plugin| {
            let info = json!({"version": version, "priority": plugin.priority});
            (plugin.name.to_owned(), info)
        })
        .collect()
}


/// Validates `body` as an insert without writing (Kong's `validate_schema`): shorthands,
/// defaults, the subschema hook, field and entity checks; no uniqueness or references.
fn validation_reply(schema: &Schema, mut body: Map<String, Value>) -> (StatusCode, Value) {
    let mut violations = Violations::default();
    for shorthand in &schema.shorthands {
        shorthand(&mut body, &mut violations);
    }
    schema::fill_defaults(schema, &mut body);
    if let Some(subschema) = schema.subschema {
        (subschema.apply)(&mut body, &mut violations);
    }
    schema::validate(schema, &mut body, &mut violations);
    if violations.is_empty() {
        (
            StatusCode::OK,
            json!({"message": "schema validation successful"}),
        )
    } else {
        let error = DaoError::SchemaViolation {
            fields: violations.fields,
            entity: violations.entity,
        };
        (StatusCode::BAD_REQUEST, error.body())
    }
}

/// `{"fields": [{name: {...}}], "entity_checks": []}` of an entity.
fn entity_schema_json(schema: &Schema) -> Value {
    let fields: Vec<Value> = schema
        .fields
        .iter()
        .filter(|field| !(schema.ttl && field.name == "ttl"))
        .map(|field| named(field.name, field_json(field)))
        .collect();
    let mut body = json!({"fields": fields, "entity_checks": []});
    if schema.ttl {
        body["ttl"] = json!(true);
    }
    body
}

/// The schema of a plugin: `consumer` when it must be null, `protocols`, `config`.
fn plugin_schema_json(plugin: &PluginSchema) -> Value {
    let mut fields = Vec::new();
    if plugin.no_consumer {
        fields.push(named(
            "consumer",
            json!({"type": "foreign", "reference": "consumers", "eq": null}),
        ));
    }
    let default_protocols = plugin.default_protocols.map_or_else(
        || json!(catalog::HTTP_PROTOCOLS),
        |protocols| json!(protocols),
    );
    fields.push(named(
        "protocols",
        json!({"type": "set", "required": true, "default": default_protocols,
               "elements": {"type": "string", "one_of": plugin.protocols}}),
    ));
    let config_fields: Vec<Value> = plugin
        .config
        .iter()
        .map(|field| {
            let mut out = field_json(field);
            if let Some((_, record)) = plugin.records.iter().find(|(name, _)| *name == field.name) {
                out["fields"] = json!(
                    record
                        .iter()
                        .map(|inner| named(inner.name, field_json(inner)))
                        .collect::<Vec<_>>()
                );
            }
            named(field.name, out)
        })
        .collect();
    fields.push(named(
        "config",
        json!({"type": "record", "required": true, "fields": config_fields}),
    ));
    let checks: Vec<Value> = plugin
        .checks
        .iter()
        .map(|check| catalog::check_json(*check))
        .collect();
    json!({"fields": fields, "entity_checks": checks})
}

/// `{name: value}`.
fn named(name: &str, value: Value) -> Value {
    let mut object = Map::new();
    object.insert(name.to_owned(), value);
    Value::Object(object)
}

/// Kong's JSON description of one field.
fn field_json(field: &Field) -> Value {
    let mut out = Map::new();
    let element = |element: Element| match element {
        Element::String => json!({"type": "string"}),
        Element::Integer => json!({"type": "integer"}),
        Element::Uuid => json!({"type": "string", "uuid": true}),
        Element::Record => json!({"type": "record", "fields": []}),
    };
    let kind = match field.kind {
        Kind::Uuid => {
            out.insert("uuid".to_owned(), json!(true));
            "string"
        }
        Kind::String => "string",
        Kind::Integer => "integer",
        Kind::Number => "number",
        Kind::Boolean => "boolean",
        Kind::Timestamp => {
            out.insert("timestamp".to_owned(), json!(true));
            "integer"
        }
        Kind::Set(inner) => {
            out.insert("elements".to_owned(), element(inner));
            "set"
        }
        Kind::Array(inner) => {
            out.insert("elements".to_owned(), element(inner));
            "array"
        }
        Kind::Map => {
            out.insert("keys".to_owned(), json!({"type": "string"}));
            out.insert("values".to_owned(), json!({"type": "string"}));
            "map"
        }
        Kind::Record => {
            out.insert("fields".to_owned(), json!([]));
            "record"
        }
        Kind::Foreign(foreign) => {
            out.insert("reference".to_owned(), json!(foreign.collection));
            if foreign.on_delete == schema::OnDelete::Cascade {
                out.insert("on_delete".to_owned(), json!("cascade"));
            }
            "foreign"
        }
    };
    out.insert("type".to_owned(), json!(kind));
    if field.required {
        out.insert("required".to_owned(), json!(true));
    }
    if field.unique {
        out.insert("unique".to_owned(), json!(true));
    }
    let identity = matches!(field.name, "id" | "created_at" | "updated_at");
    if identity {
        out.insert("auto".to_owned(), json!(true));
    } else if let Some(default) = field.default {
        // A default that differs between two calls is generated (Kong's `auto`).
        let (first, second) = (default(&Map::new()), default(&Map::new()));
        if first == second {
            out.insert("default".to_owned(), first);
        } else {
            out.insert("auto".to_owned(), json!(true));
        }
    }
    Value::Object(out)
}

/// One page of (tag, entity) pairs, optionally of one tag (reference §5).
fn tags_page(
    store: &Store,
    tag: Option<&str>,
    query: &[(String, String)],
) -> Result<Value, DaoError> {
    let value = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let size = paging::parse_size(value("size"))?;
    let start = match value("offset") {
        None => 0,
        Some(token) => {
            let position = paging::decode_offset(token)?;
            position
                .parse::<usize>()
                .map_err(|_| DaoError::InvalidOffset {
                    offset: token.to_owned(),
                    reason: "bad json encoding",
                })?
        }
    };
    let mut pairs: Vec<(String, &'static str, String)> = Vec::new();
    for schema in &store.registry().schemas {
        if schema.field("tags").is_none() {
            continue;
        }
        for row in store.rows(schema.collection) {
            let id = row.get("id").and_then(Value::as_str).unwrap_or_default();
            let tags = row.get("tags").and_then(Value::as_array);
            for carried in tags.into_iter().flatten().filter_map(Value::as_str) {
                if tag.is_none_or(|wanted| wanted == carried) {
                    pairs.push((
                        id.to_owned(),
                        table_of(schema.collection),
                        carried.to_owned(),
                    ));
                }
            }
        }
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let total = pairs.len();
    let data: Vec<Value> = pairs
        .into_iter()
        .skip(start)
        .take(size)
        .map(|(id, name, tag)| json!({"entity_name": name, "entity_id": id, "tag": tag}))
        .collect();
    let end = start.saturating_add(size);
    if end >= total {
        return Ok(json!({"data": data, "next": null}));
    }
    let offset = paging::encode_offset(&end.to_string());
    let path = match tag {
        Some(tag) => format!("/tags/{}", paging::escape_uri(tag)),
        None => "/tags".to_owned(),
    };
    let next = format!("{path}?offset={}", paging::escape_uri(&offset));
    Ok(json!({"data": data, "next": next, "offset": offset}))
}

/// Every route template the Admin API serves, `{param}` placeholders, sorted by segment.
fn endpoints(registry: &Registry) -> Vec<String> {
    let mut paths: Vec<String> = [
        "/",
        "/config",
        "/endpoints",
        "/plugins/enabled",
        "/schemas/plugins/validate",
        "/schemas/plugins/{name}",
        "/schemas/{db_entity_name}/validate",
        "/schemas/{name}",
        "/status",
        "/tags",
        "/tags/{tags}",
    ]
    .iter()
    .map(|path| (*path).to_owned())
    .collect();
    for schema in &registry.schemas {
        let name = schema.collection;
        if !schema.nested_only {
            paths.push(format!("/{name}"));
            paths.push(format!("/{name}/{{{name}}}"));
        }
        if schema.health.is_some() {
            paths.push(format!("/{name}/{{{name}}}/health"));
        }
        for (field, foreign) in schema.foreign_keys() {
            let parent = foreign.collection;
            let nested = schema.nested_name;
            paths.push(format!("/{parent}/{{{parent}}}/{nested}"));
            paths.push(format!("/{parent}/{{{parent}}}/{nested}/{{{name}}}"));
            if schema.forced_health {
                for state in ["healthy", "unhealthy"] {
                    paths.push(format!(
                        "/{parent}/{{{parent}}}/{nested}/{{{name}}}/{state}"
                    ));
                }
            }
            let link_disabled = registry
                .get(parent)
                .and_then(|parent_schema| parent_schema.child_keys)
                .is_some_and(|keys| keys.child == name);
            if !schema.nested_only && !link_disabled {
                paths.push(format!("/{name}/{{{name}}}/{}", field.name));
            }
        }
    }
    paths.sort_by_key(|path| path.replace('/', "\u{0}"));
    paths.dedup();
    paths
}
