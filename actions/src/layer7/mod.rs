//! The layer7 family: actions against a gateway of type `layer7` through its
//! REST management API (restman) and Graphman (reference/layer7-api.md).
//!
//! `layer7.export`, `layer7.import` (restman or Graphman), `layer7.policy_revision`, `layer7.service`,
//! `layer7.cluster_property` and `layer7.trusted_cert` run (restman), `layer7.ping` runs
//! (`/ssg/ping` and Graphman), `layer7.key_rotate` runs (restman, Graphman and TLS handshakes). They are built on the gateway connection ([`gateway::Layer7Gateway`]), the
//! typed restman client ([`restman::RestmanClient`], XML), the Graphman client
//! ([`graphman::GraphmanClient`], GraphQL JSON), `/ssg/ping` ([`ping`]) and one
//! error type ([`error::Layer7Error`]). docs/layer7-actions.md describes them.

pub mod arguments;
pub mod bundle_state;
pub mod cluster_property;
pub mod connection;
pub mod error;
pub mod export;
#[cfg(test)]
mod export_import_tests;
pub mod gateway;
pub mod graphman;
pub mod graphman_export;
#[cfg(test)]
mod graphman_export_import_tests;
pub mod graphman_import;
pub mod graphman_import_state;
#[cfg(test)]
mod graphman_twin_tests;
#[cfg(test)]
mod http_tests;
pub mod import;
pub mod key_material;
pub mod key_rotate;
pub mod key_rotate_checks;
#[cfg(test)]
mod key_rotate_tests;
pub mod key_rotate_undo;
pub mod listen_port;
pub mod listen_port_keys;
pub mod ping;
pub mod ping_action;
pub mod policy_revision;
#[cfg(test)]
mod policy_revision_tests;
pub mod restman;
pub mod selection;
pub mod service;
#[cfg(test)]
mod test_server;
pub mod trusted_cert;
#[cfg(test)]
mod twin_support;

use runsheet_engine::{DuplicateAction, Registry};

pub use arguments::*;
pub use error::Layer7Error;
pub use export::Layer7Export;
pub use gateway::Layer7Gateway;
pub use import::Layer7Import;
pub use policy_revision::Layer7PolicyRevision;

/// The family name of these actions.
pub const FAMILY: &str = "layer7";

/// Registers the layer7 actions.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateAction> {
    registry.register(ping_action::Layer7Ping::new())?;
    registry.register(Layer7Export::new())?;
    registry.register(Layer7Import::new())?;
    registry.register(service::Layer7Service::new())?;
    registry.register(cluster_property::Layer7ClusterProperty::new())?;
    registry.register(Layer7PolicyRevision::new())?;
    registry.register(key_rotate::Layer7KeyRotate::new())?;
    registry.register(listen_port::Layer7ListenPort::new())?;
    registry.register(trusted_cert::Layer7TrustedCert::new())?;
    Ok(())
}
