//! What the Kong actions know about each Admin API entity kind ([`Kind`]): where
//! it lives, what names it, what it refers to and which of its fields are secret
//! (reference/kong-admin-api.md §2–§7).
//!
//! `kong.entity`, `kong.snapshot` and `kong.sync` read this one table instead of
//! naming collections themselves.

use super::KongEntityKind;
use super::client::segment;

/// The entity a nested kind lives under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// `/consumers/{consumer}/...`: credentials.
    Consumer,
    /// `/upstreams/{upstream}/targets`.
    Upstream,
}

impl Parent {
    /// The parent's field name in a nested entity and in a `match` (`consumer`, `upstream`).
    pub fn field(self) -> &'static str {
        match self {
            Parent::Consumer => "consumer",
            Parent::Upstream => "upstream",
        }
    }

    /// The parent's collection (`consumers`, `upstreams`).
    pub fn collection(self) -> &'static str {
        match self {
            Parent::Consumer => "consumers",
            Parent::Upstream => "upstreams",
        }
    }
}

/// One entity kind of the Admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// The kind.
    pub kind: KongEntityKind,
    /// Its name in messages (`service`, `key-auth credential`).
    pub label: &'static str,
    /// The collection's path segment (`services`; `key-auth` under a consumer).
    pub collection: &'static str,
    /// The entity it is nested under, for kinds only reachable through a parent.
    pub parent: Option<Parent>,
    /// The top-level listing of every entity of a nested kind (`/key-auths`), when Kong has one.
    pub listing: Option<&'static str>,
    /// Fields that name an entity in its path besides `id` (Kong's endpoint key and
    /// other unique fields: `name`; `username` and `custom_id`; `key`; `target`).
    pub keys: &'static [&'static str],
    /// Fields that refer to another entity (`{"id": ...}` in Kong's answers).
    pub foreign: &'static [&'static str],
    /// Fields whose values are secrets (never shown, masked in snapshots).
    pub secrets: &'static [&'static str],
}

/// Fields Kong sets itself: never compared, never written.
pub const GENERATED: &[&str] = &["id", "created_at", "updated_at"];

/// Every kind, parents before the kinds that refer to them (the order creates run in):
/// certificates first, as services and upstreams refer to them (`client_certificate`,
/// `ca_certificates`).
pub const KINDS: &[Kind] = &[
    Kind {
        kind: KongEntityKind::Certificate,
        label: "certificate",
        collection: "certificates",
        parent: None,
        listing: None,
        keys: &[],
        foreign: &[],
        secrets: &["key", "key_alt"],
    },
    Kind {
        kind: KongEntityKind::CaCertificate,
        label: "CA certificate",
        collection: "ca_certificates",
        parent: None,
        listing: None,
        keys: &[],
        foreign: &[],
        secrets: &[],
    },
    Kind {
        kind: KongEntityKind::Service,
        label: "service",
        collection: "services",
        parent: None,
        listing: None,
        keys: &["name"],
        foreign: &["client_certificate"],
        secrets: &[],
    },
    Kind {
        kind: KongEntityKind::Route,
        label: "route",
        collection: "routes",
        parent: None,
        listing: None,
        keys: &["name"],
        foreign: &["service"],
        secrets: &[],
    },
    Kind {
        kind: KongEntityKind::Consumer,
        label: "consumer",
        collection: "consumers",
        parent: None,
        listing: None,
        keys: &["username", "custom_id"],
        foreign: &[],
        secrets: &[],
    },
    Kind {
        kind: KongEntityKind::Plugin,
        label: "plugin",
        collection: "plugins",
        parent: None,
        listing: None,
        keys: &[],
        foreign: &["service", "route", "consumer"],
        secrets: &[],
    },
    Kind {
        kind: KongEntityKind::Upstream,
        label: "upstream",
        collection: "upstreams",
        parent: None,
        listing: None,
        keys: &["name"],
        foreign: &["client_certificate"],
        secrets: &[],
    },
    Kind {
        kind: KongEntityKind::Target,
        label: "target",
        collection: "targets",
        parent: Some(Parent::Upstream),
        listing: None,
        keys: &["target"],
        foreign: &["upstream"],
        secrets: &[],
    },
    Kind {
        kind: KongEntityKind::Sni,
        label: "SNI",
        collection: "snis",
        parent: None,
        listing: None,
        keys: &["name"],
        foreign: &["certificate"],
        secrets: &[],
    },
    Kind {
        kind: KongEntityKind::KeyAuth,
        label: "key-auth credential",
        collection: "key-auth",
        parent: Some(Parent::Consumer),
        listing: Some("key-auths"),
        keys: &["key"],
        foreign: &["consumer"],
        secrets: &["key"],
    },
    Kind {
        kind: KongEntityKind::Jwt,
        label: "JWT credential",
        collection: "jwt",
        parent: Some(Parent::Consumer),
        listing: Some("jwts"),
        keys: &["key"],
        foreign: &["consumer"],
        secrets: &["secret"],
    },
    Kind {
        kind: KongEntityKind::Acl,
        label: "ACL group",
        collection: "acls",
        parent: Some(Parent::Consumer),
        listing: Some("acls"),
        keys: &["group"],
        foreign: &["consumer"],
        secrets: &[],
    },
    Kind {
        kind: KongEntityKind::BasicAuth,
        label: "basic-auth credential",
        collection: "basic-auth",
        parent: Some(Parent::Consumer),
        listing: Some("basic-auths"),
        keys: &["username"],
        foreign: &["consumer"],
        secrets: &["password"],
    },
    Kind {
        kind: KongEntityKind::HmacAuth,
        label: "hmac-auth credential",
        collection: "hmac-auth",
        parent: Some(Parent::Consumer),
        listing: Some("hmac-auths"),
        keys: &["username"],
        foreign: &["consumer"],
        secrets: &["secret"],
    },
];

/// The table entry of a kind.
pub fn kind(kind: KongEntityKind) -> &'static Kind {
    KINDS
        .iter()
        .find(|entry| entry.kind == kind)
        .unwrap_or(&KINDS[0])
}

impl Kind {
    /// The collection path: `/services`, or `/consumers/{parent}/key-auth` for a nested kind.
    pub fn collection_path(&self, parent: Option<&str>) -> String {
        match (self.parent, parent) {
            (Some(of), Some(parent)) => format!(
                "/{}/{}/{}",
                of.collection(),
                segment(parent),
                self.collection
            ),
            _ => format!("/{}", self.collection),
        }
    }

    /// The path of one entity by id or key, under its parent for a nested kind.
    pub fn entity_path(&self, parent: Option<&str>, id_or_key: &str) -> String {
        format!("{}/{}", self.collection_path(parent), segment(id_or_key))
    }

    /// What Kong deletes along with an entity of this kind (reference §7.12), for plans:
    /// an undo of the delete brings back the entity only.
    pub fn cascade(&self) -> Option<&'static str> {
        match self.kind {
            KongEntityKind::Service => Some("its plugins"),
            KongEntityKind::Route => Some("its plugins"),
            KongEntityKind::Consumer => Some("its credentials, ACL groups and plugins"),
            KongEntityKind::Upstream => Some("its targets"),
            KongEntityKind::Certificate => Some("its SNIs"),
            _ => None,
        }
    }

    /// Whether `field` holds a secret of this kind.
    pub fn is_secret(&self, field: &str) -> bool {
        self.secrets.contains(&field)
    }

    /// For kinds named within a scope rather than by a unique key (plugins: one
    /// `name` per service, route and consumer): the name field and the scope fields.
    pub fn scoped_name(&self) -> Option<(&'static str, &'static [&'static str])> {
        (self.kind == KongEntityKind::Plugin).then_some(("name", self.foreign))
    }

    /// Whether `PUT` on the entity path creates a missing entity with that id (targets:
    /// no, PUT only updates; they are created by POST with the id in the body, §8, §16).
    pub fn puts_create(&self) -> bool {
        self.kind != KongEntityKind::Target
    }

    /// Whether Kong stores `field` as a hash of what was written (basic-auth `password`,
    /// §7.6): its stored value can be neither compared with a new one nor written back.
    pub fn is_hashed(&self, field: &str) -> bool {
        self.kind == KongEntityKind::BasicAuth && field == "password"
    }

    /// Whether `key` addresses the entity in its path (Kong's endpoint key, the first
    /// of `keys`); the other keys (`custom_id`) are looked up with `?key=value`.
    pub fn is_endpoint_key(&self, key: &str) -> bool {
        self.keys.first() == Some(&key)
    }
}

/// The kind a reference field points at (`service`, `client_certificate` → certificate).
pub fn referenced_kind(field: &str) -> Option<KongEntityKind> {
    match field {
        "service" => Some(KongEntityKind::Service),
        "route" => Some(KongEntityKind::Route),
        "consumer" => Some(KongEntityKind::Consumer),
        "upstream" => Some(KongEntityKind::Upstream),
        "certificate" | "client_certificate" => Some(KongEntityKind::Certificate),
        _ => None,
    }
}

/// Whether a plugin `config` field holds a secret, by its name: Kong marks such fields
/// `encrypted`/`referenceable` in each plugin's schema (a Redis `password`, an OIDC
/// `client_secret`, an AWS `aws_secret`, a `token`); runsheet cannot read every plugin's
/// schema, so it goes by the names those fields use.
pub fn is_sensitive_config_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.ends_with("token")
        || matches!(
            key.as_str(),
            "apikey" | "api_key" | "aws_key" | "private_key" | "client_key"
        )
}

/// The text values under sensitive keys anywhere inside `config` (a plugin's `config`).
pub fn sensitive_config_values(config: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_sensitive(config, false, &mut found);
    found
}

/// Adds to `found` the non-empty strings of `value` that sit under a sensitive key.
fn collect_sensitive(value: &serde_json::Value, sensitive: bool, found: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) if sensitive && !text.is_empty() => {
            found.push(text.clone());
        }
        serde_json::Value::Array(items) => items
            .iter()
            .for_each(|item| collect_sensitive(item, sensitive, found)),
        serde_json::Value::Object(fields) => fields.iter().for_each(|(key, item)| {
            collect_sensitive(item, sensitive || is_sensitive_config_key(key), found);
        }),
        _ => {}
    }
}

/// `config` with every non-null value under a sensitive key replaced by `mask`.
pub fn mask_sensitive_config(config: &mut serde_json::Value, mask: &str) {
    match config {
        serde_json::Value::Array(items) => items
            .iter_mut()
            .for_each(|item| mask_sensitive_config(item, mask)),
        serde_json::Value::Object(fields) => {
            for (key, item) in fields.iter_mut() {
                if is_sensitive_config_key(key) && !item.is_null() {
                    *item = serde_json::Value::from(mask);
                } else {
                    mask_sensitive_config(item, mask);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_entry_and_parents_come_first() {
        for (index, entry) in KINDS.iter().enumerate() {
            assert_eq!(kind(entry.kind), entry, "{}", entry.label);
            for earlier in &KINDS[index + 1..] {
                assert_ne!(earlier.kind, entry.kind, "{} twice", entry.label);
            }
            if let Some(parent) = entry.parent {
                let parent_at = KINDS
                    .iter()
                    .position(|other| other.collection == parent.collection());
                assert!(
                    parent_at.is_some_and(|at| at < index),
                    "{} before its parent",
                    entry.label
                );
            }
        }
    }

    #[test]
    fn secrets_inside_plugin_configs_are_found_and_masked_by_name() {
        let mut config = serde_json::json!({
            "minute": 10,
            "policy": "redis",
            "redis": {"host": "r", "password": "redis-pw", "username": "u"},
            "client_secret": "oidc-s",
            "session_secret": null,
            "headers": ["x"],
            "key_names": ["apikey"],
            "access_token": "t0k"
        });
        let mut found = sensitive_config_values(&config);
        found.sort();
        assert_eq!(found, ["oidc-s", "redis-pw", "t0k"]);
        mask_sensitive_config(&mut config, "(secret)");
        assert_eq!(config["redis"]["password"], "(secret)");
        assert_eq!(config["redis"]["host"], "r");
        assert_eq!(config["client_secret"], "(secret)");
        assert_eq!(config["session_secret"], serde_json::Value::Null);
        assert_eq!(config["key_names"][0], "apikey");
        assert_eq!(config["minute"], 10);
    }

    #[test]
    fn paths_nest_under_the_parent_and_encode_names() {
        let key_auth = kind(KongEntityKind::KeyAuth);
        assert_eq!(
            key_auth.collection_path(Some("alice smith")),
            "/consumers/alice%20smith/key-auth"
        );
        assert_eq!(
            key_auth.entity_path(Some("alice"), "k/1"),
            "/consumers/alice/key-auth/k%2F1"
        );
        assert_eq!(
            kind(KongEntityKind::Service).entity_path(None, "orders"),
            "/services/orders"
        );
        assert!(kind(KongEntityKind::Certificate).is_secret("key"));
        assert!(!kind(KongEntityKind::Certificate).is_secret("cert"));
    }

    #[test]
    fn every_reference_field_names_a_kind() {
        for entry in KINDS {
            for field in entry.foreign {
                assert!(referenced_kind(field).is_some(), "{}.{field}", entry.label);
            }
        }
        assert_eq!(
            kind(KongEntityKind::Plugin).scoped_name(),
            Some(("name", &["service", "route", "consumer"][..]))
        );
        assert!(kind(KongEntityKind::Consumer).is_endpoint_key("username"));
        assert!(!kind(KongEntityKind::Consumer).is_endpoint_key("custom_id"));
    }
}
