//! restman: the REST Management API (`/restman/1.0/...`, XML) over the store. [`handle`]
//! serves one request; every XML concern of the twin lives here.

pub mod bundle;
pub mod crud;
pub mod envelope;
pub mod keys;
pub mod request;
pub mod resources;
pub mod revisions;
mod routes;
pub mod xml;

pub use request::{Failure, Reply, Request};
pub use routes::{handle, is_write};
