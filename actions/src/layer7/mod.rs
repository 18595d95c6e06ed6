//! The layer7 family: actions against a gateway of type `layer7` through its
//! REST management API (restman) and Graphman (reference/layer7-api.md).
//!
//! The actions are [`Pending`] until they land; this module already holds what
//! they are built on: the gateway connection ([`gateway::Layer7Gateway`]), the
//! typed restman client ([`restman::RestmanClient`], XML), the Graphman client
//! ([`graphman::GraphmanClient`], GraphQL JSON), `/ssg/ping` ([`ping`]) and one
//! error type ([`error::Layer7Error`]). docs/layer7-actions.md describes them.

pub mod arguments;
pub mod connection;
pub mod error;
pub mod gateway;
pub mod graphman;
#[cfg(test)]
mod graphman_twin_tests;
#[cfg(test)]
mod http_tests;
pub mod ping;
pub mod ping_action;
pub mod restman;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod twin_support;

use runsheet_engine::{ActionSpec, DuplicateAction, Effect, Registry, TargetKind};

pub use arguments::*;
pub use error::Layer7Error;
pub use gateway::Layer7Gateway;

use crate::pending::Pending;

/// The family name of these actions.
pub const FAMILY: &str = "layer7";

/// Why these actions cannot apply in this build.
pub const NOT_IN_THIS_BUILD: &str = "arrives with the Layer7 actions (issue #8)";

/// Registers the layer7 actions.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateAction> {
    registry.register(ping_action::Layer7Ping::new())?;
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
    registry.register(pending(
        ActionSpec::new::<Layer7ServiceArguments>(
            "layer7.service",
            FAMILY,
            "Enables or disables a published service.",
            Effect::write().idempotent().reversible(),
        )
        .outputs(&["id", "changed"]),
    ))?;
    registry.register(pending(
        ActionSpec::new::<Layer7ClusterPropertyArguments>(
            "layer7.cluster_property",
            FAMILY,
            "Sets a cluster property.",
            Effect::write().idempotent().reversible(),
        )
        .outputs(&["id", "changed"]),
    ))?;
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
    registry.register(pending(
        ActionSpec::new::<Layer7TrustedCertArguments>(
            "layer7.trusted_cert",
            FAMILY,
            "Makes a trusted certificate present or absent.",
            Effect::write().idempotent().reversible(),
        )
        .outputs(&["id", "changed"]),
    ))?;
    Ok(())
}

/// A layer7 action that is not in this build.
fn pending(spec: ActionSpec) -> Pending {
    Pending::new(
        spec.target(TargetKind::Gateway("layer7")),
        NOT_IN_THIS_BUILD,
    )
}
