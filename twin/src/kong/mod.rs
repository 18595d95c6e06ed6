//! The Kong twin: an in-memory Kong Gateway 3.x Admin API served over HTTP.
//!
//! Entities are data: each is an [`schema::Schema`] in [`entities`], and the generic
//! [`store::Store`] and [`admin`] router serve every registered schema the same way.

pub mod admin;
mod config_api;
mod control;
pub mod declarative;
pub mod entities;
pub mod error;
mod faults;
pub mod form;
mod listener;
pub mod paging;
pub(crate) mod pki;
pub mod schema;
mod status;
pub mod store;
pub mod tls;
mod twin;

pub use error::DaoError;
pub use schema::{Registry, Schema};
pub use tls::TlsSettings;
pub use twin::{KongTwin, TwinConfig};
