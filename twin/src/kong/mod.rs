//! The Kong twin: an in-memory Kong Gateway 3.x Admin API served over HTTP.
//!
//! Entities are data: each is an [`schema::Schema`] in [`entities`], and the generic
//! [`store::Store`] and [`admin`] router serve every registered schema the same way.

pub mod admin;
mod catalog_api;
mod config_api;
pub mod credentials;
mod control;
pub mod declarative;
pub mod entities;
pub mod error;
pub(crate) mod faults;
pub mod form;
pub(crate) mod health;
pub(crate) mod listener;
pub mod paging;
pub(crate) mod pki;
mod proxy;
pub mod schema;
mod status;
pub mod store;
mod workspaces;
pub mod tls;
pub mod ttl;
pub(crate) mod twin;

pub use error::DaoError;
pub use schema::{Registry, Schema};
pub use tls::TlsSettings;
pub use twin::{KongTwin, TwinConfig};
