//! The layer7 family: actions against a gateway of type `layer7` through its
//! REST management API (restman) and Graphman (reference/layer7-api.md).
//!
//! The actions are [`Pending`] until they land; this module already holds what
//! they are built on: the gateway connection ([`gateway::Layer7Gateway`]), the
//! typed restman client ([`restman::RestmanClient`], XML), the Graphman client
//! ([`graphman::GraphmanClient`], GraphQL JSON), `/ssg/ping` ([`ping`]) and one
//! error type ([`error::Layer7Error`]). docs/layer7-actions.md describes them.

pub mod arguments;
pub mod cluster_property;
pub mod connection;
pub mod error;
pub mod gateway;
pub mod graphman;
#[cfg(test)]
mod http_tests;
pub mod ping;
pub mod restman;
pub mod service;
#[cfg(test)]
mod test_server;
pub mod trusted_cert;
#[cfg(test)]
mod twin_support;

use runsheet_engine::{ActionSpec, DuplicateAction, Effect, Registry, TargetKind};

pub use arguments::*;
pub use error::Layer7Error;
pub use gateway::Layer7Gateway;

use crate::arguments::NoArguments;
use crate::pending::Pending;

/// The family name of these actions.
pub const FAMILY: &str = "layer7";

/// Why these actions cannot apply in this build.
pub const NOT_IN_THIS_BUILD: &str = "arrives with the Layer7 actions (issue #8)";

/// Registers the layer7 actions.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateAction> {
    registry.register(pending(
        ActionSpec::new::<NoArguments>(
            "layer7.ping",
            FAMILY,
            "Pings the gateway and reports node and cluster information.",
            Effect::READ,
        )
        .outputs(&["node", "cluster", "version", "patches", "boot_time"]),
    ))?;
    registry.register(pending(
        ActionSpec::new::<Layer7ExportArguments>(
            "layer7.export",
            FAMILY,
            "Exports services, folders, policies and cluster properties (or all) as a bundle file.",
            Effect::READ,
        )
        .outputs(&["path", "sha256"]),
    ))?;
    registry.register(pending(
        ActionSpec::new::<Layer7ImportArguments>(
            "layer7.import",
            FAMILY,
            "Imports a bundle; plan uses the gateway's test mode; undo re-imports the export taken before.",
            Effect::write().reversible(),
        )
        .outputs(&["results"]),
    ))?;
    registry.register(service::Layer7Service::new())?;
    registry.register(cluster_property::Layer7ClusterProperty::new())?;
    registry.register(pending(
        ActionSpec::new::<Layer7PolicyRevisionArguments>(
            "layer7.policy_revision",
            FAMILY,
            "Activates a revision of a service's or policy's policy.",
            Effect::write().reversible(),
        )
        .outputs(&["revision", "previous_revision"]),
    ))?;
    registry.register(pending(
        ActionSpec::new::<Layer7KeyRotateArguments>(
            "layer7.key_rotate",
            FAMILY,
            "Adds a private key and switches listen ports to it, verified by a TLS handshake; undo switches back.",
            Effect::write().reversible(),
        )
        .outputs(&["key_id", "not_after"]),
    ))?;
    registry.register(trusted_cert::Layer7TrustedCert::new())?;
    Ok(())
}

/// A layer7 action that is not in this build.
fn pending(spec: ActionSpec) -> Pending {
    Pending::new(
        spec.target(TargetKind::Gateway("layer7")),
        NOT_IN_THIS_BUILD,
    )
}
