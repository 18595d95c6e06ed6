//! Graphman, the Layer7 gateway's GraphQL management API (reference §2), independent of the
//! store that answers it.
//!
//! A request goes through [`handler`] (HTTP: body, content type, query options), [`document`]
//! (the GraphQL text parsed into an [`Operation`]), [`execute()`] (each top-level field handed
//! to a [`GraphmanResolver`], mutations on a copy committed only on success and outside test
//! mode) and [`projection`] (the resolver's full JSON cut down to the selection set).
//! [`status`] builds mutation payloads; [`bundle`], [`mapping`] and [`checksum`] hold the JSON
//! bundle format.

pub mod bundle;
pub mod checksum;
pub mod document;
pub mod error;
pub mod execute;
pub mod handler;
pub mod mapping;
pub mod projection;
pub mod resolver;
pub mod status;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use document::{Field, Operation, OperationKind, Selection, SelectionSet};
pub use error::{GraphqlError, Location};
pub use execute::{Execution, GraphqlRequest, execute};
pub use handler::{GraphmanService, RequestError, read_request, router};
pub use resolver::{Context, FieldError, GraphmanResolver, Passphrase, RequestOptions};
pub use status::{DetailedStatus, EntityMutationAction, EntityMutationStatus, EntityOutcome};
