//! The declarative side of the Kong actions: `kong.snapshot` ([`snapshot`]) writes the
//! gateway's state as a decK-style file, `kong.sync` ([`sync`]) brings the gateway to
//! one, in dependency order, restoring the state before it on any failure.
//!
//! The pieces, in the order data flows through them:
//! - [`state`]: the model, a [`state::State`] of flat [`state::Entity`]s as Kong stores them;
//! - [`dump`]: the gateway read into a state (optionally limited by select tags);
//! - [`render`]: a state written as the nested decK document, [`yaml`] its text;
//! - [`file`]: a decK-style file read into a [`file::Document`];
//! - [`resolve`]: a document matched against the gateway into the desired state;
//! - [`diff`]: the ordered creates, updates and deletes between two states;
//! - [`apply`]: those operations sent to the Admin API, and the restore of a state.
//!
//! The facts about each entity kind come from [`super::kinds`]; this module adds the
//! declarative table names and which kinds nest under which.

pub mod apply;
pub mod diff;
pub mod diff_step;
pub mod dump;
pub mod file;
pub mod render;
pub mod resolve;
pub mod snapshot;
pub mod state;
pub mod sync;
pub mod yaml;

#[cfg(test)]
mod review_tests;
#[cfg(test)]
pub(crate) mod tests;

use super::KongEntityKind;
use super::kinds::KINDS;

/// What a snapshot writes instead of a secret when credentials are not included.
pub const MASK: &str = "<masked: snapshot taken without include_credentials>";

/// The format version written and read (decK's for Kong 3.x).
pub const FORMAT_VERSION: &str = "3.0";

/// Declarative table names of the kinds (decK's and Kong's `kong config` names).
const TABLES: &[(KongEntityKind, &str)] = &[
    (KongEntityKind::Certificate, "certificates"),
    (KongEntityKind::CaCertificate, "ca_certificates"),
    (KongEntityKind::Service, "services"),
    (KongEntityKind::Route, "routes"),
    (KongEntityKind::Consumer, "consumers"),
    (KongEntityKind::Plugin, "plugins"),
    (KongEntityKind::Upstream, "upstreams"),
    (KongEntityKind::Target, "targets"),
    (KongEntityKind::Sni, "snis"),
    (KongEntityKind::KeyAuth, "keyauth_credentials"),
    (KongEntityKind::Jwt, "jwt_secrets"),
    (KongEntityKind::Acl, "acls"),
    (KongEntityKind::BasicAuth, "basicauth_credentials"),
    (KongEntityKind::HmacAuth, "hmacauth_credentials"),
];

/// The declarative table name of a kind (`keyauth_credentials`).
pub fn table(kind: KongEntityKind) -> &'static str {
    TABLES
        .iter()
        .find(|(entry, _)| *entry == kind)
        .map_or("entities", |(_, table)| table)
}

/// The kind of a declarative table name, when runsheet manages it.
pub fn kind_of_table(table: &str) -> Option<KongEntityKind> {
    TABLES
        .iter()
        .find(|(_, name)| *name == table)
        .map(|(kind, _)| *kind)
}

/// The kinds a file nests under an entity of `kind`, in the order a snapshot writes them.
pub fn children(kind: KongEntityKind) -> &'static [KongEntityKind] {
    match kind {
        KongEntityKind::Service => &[KongEntityKind::Route, KongEntityKind::Plugin],
        KongEntityKind::Route => &[KongEntityKind::Plugin],
        KongEntityKind::Consumer => &[
            KongEntityKind::KeyAuth,
            KongEntityKind::Jwt,
            KongEntityKind::Acl,
            KongEntityKind::BasicAuth,
            KongEntityKind::HmacAuth,
            KongEntityKind::Plugin,
        ],
        KongEntityKind::Upstream => &[KongEntityKind::Target],
        KongEntityKind::Certificate => &[KongEntityKind::Sni],
        _ => &[],
    }
}

/// The field of a child that names a parent of `kind` (`service`, `consumer`...).
pub fn parent_field(kind: KongEntityKind) -> &'static str {
    match kind {
        KongEntityKind::Service => "service",
        KongEntityKind::Route => "route",
        KongEntityKind::Consumer => "consumer",
        KongEntityKind::Upstream => "upstream",
        KongEntityKind::Certificate => "certificate",
        _ => "parent",
    }
}

/// The kind a reference field of `kind` points at (`client_certificate` → certificate).
/// `None` when `field` is not one of `kind`'s reference fields.
pub fn referenced_kind(kind: KongEntityKind, field: &str) -> Option<KongEntityKind> {
    super::kinds::referenced_kind(field)
        .filter(|_| super::kinds::kind(kind).foreign.contains(&field))
}

/// Whether deleting the entity a `field` of `kind` points at deletes the entity too
/// (reference §7.12: plugins, credentials, targets and SNIs go with their parent).
pub fn cascades(kind: KongEntityKind, field: &str) -> bool {
    kind != KongEntityKind::Route
        && children(referenced_kind(kind, field).unwrap_or(kind)).contains(&kind)
        && field != "client_certificate"
}

/// Position of a kind in the creation order ([`KINDS`]).
pub fn rank(kind: KongEntityKind) -> usize {
    KINDS
        .iter()
        .position(|entry| entry.kind == kind)
        .unwrap_or(KINDS.len())
}
