//! Graphman, the GraphQL management API (`POST /graphman`, JSON): the client
//! and its dry-run rules ([`client`]), per-entity statuses ([`status`]), the
//! typed operations ([`operations`], [`types`]) and JSON bundles ([`bundle`]).

pub mod bundle;
pub mod client;
pub mod operations;
pub mod status;
pub mod types;

pub use bundle::{GraphmanBundle, GraphmanDiff};
pub use client::{GraphmanClient, GraphmanOptions};
pub use status::{EntityStatus, MutationStatus};
