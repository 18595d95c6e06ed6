//! Bundles (reference §1.5): `GET /bundle` exports entities with their dependencies as an
//! `l7:Bundle` of references and mappings; `PUT /bundle` imports one, mapping by mapping,
//! all or nothing. Export and import are in [`export`] and [`import`].

mod entity;
mod export;
mod import;

use axum::http::Method;

use super::request::{Failure, Reply, Request};
use crate::layer7::store::{EntityKind, Store};

pub use entity::BundleEntity;

/// Mapping actions.
pub const ACTIONS: [&str; 5] = [
    "NewOrExisting",
    "NewOrUpdate",
    "AlwaysCreateNew",
    "Delete",
    "Ignore",
];

/// Serves `/bundle` and `/bundle/{folder|service|policy}/{id}`.
pub fn serve(store: &mut Store, request: &Request, rest: &[&str]) -> Result<Reply, Failure> {
    match (rest, &request.method) {
        ([], &Method::GET) => export::export(store, request, None),
        ([kind @ ("folder" | "service" | "policy"), id], &Method::GET) => {
            export::export(store, request, Some((kind, id)))
        }
        ([], &Method::PUT) => import::import(store, request),
        ([], method) | ([_, _], method) => Err(Failure::method_not_allowed(method, &request.path)),
        _ => Err(Failure::not_found(format!(
            "no resource at {}",
            request.path
        ))),
    }
}

/// The bundle type code of a kind.
pub fn type_code(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Folder => "FOLDER",
        EntityKind::Service => "SERVICE",
        EntityKind::Policy => "POLICY",
        EntityKind::EncapsulatedAssertion => "ENCAPSULATED_ASSERTION",
        EntityKind::ClusterProperty => "CLUSTER_PROPERTY",
        EntityKind::TrustedCertificate => "TRUSTED_CERT",
        EntityKind::PrivateKey => "SSG_KEY_ENTRY",
        EntityKind::ListenPort => "SSG_CONNECTOR",
        EntityKind::StoredPassword => "SECURE_PASSWORD",
    }
}

/// The kind of a bundle type code.
pub fn kind_of(code: &str) -> Option<EntityKind> {
    [
        EntityKind::Folder,
        EntityKind::Service,
        EntityKind::Policy,
        EntityKind::EncapsulatedAssertion,
        EntityKind::ClusterProperty,
        EntityKind::TrustedCertificate,
        EntityKind::PrivateKey,
        EntityKind::ListenPort,
        EntityKind::StoredPassword,
    ]
    .into_iter()
    .find(|kind| type_code(*kind) == code)
}

/// The restman collection of a kind.
pub fn collection(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Folder => "folders",
        EntityKind::Service => "services",
        EntityKind::Policy => "policies",
        EntityKind::EncapsulatedAssertion => "encapsulatedAssertions",
        EntityKind::ClusterProperty => "clusterProperties",
        EntityKind::TrustedCertificate => "trustedCertificates",
        EntityKind::PrivateKey => "privateKeys",
        EntityKind::ListenPort => "listenPorts",
        EntityKind::StoredPassword => "passwords",
    }
}
