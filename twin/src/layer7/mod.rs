//! The Layer7 twin: an in-memory Layer7 API Gateway served over HTTP (reference
//! `layer7-api.md` §1, §3, §5; `docs/twin-layer7.md`).
//!
//! [`store`] holds the gateway's entities, API-neutral; [`restman`] serves them as the REST
//! Management API (XML); [`node`] is the node's identity and lifecycle; [`traffic`]
//! resolves published services; [`graphman`] serves Graphman (`POST /graphman`) over any
//! store that implements [`graphman::GraphmanResolver`]; `resolver` implements it for the
//! store, served on `/graphman`. [`Layer7Twin`] runs a twin; [`state_dir`] runs one as a
//! process with a state directory (`runsheet twin layer7`).

mod control;
mod gateway;
pub mod graphman;
pub mod keys;
mod listener;
pub mod node;
mod resolver;
pub mod restman;
mod server;
pub mod state_dir;
pub mod store;
mod tls;
pub mod traffic;
mod twin;

pub use gateway::Layer7Config;
pub use node::{Lifecycle, NodeInfo, Patch, ProductVersion, Restart};
pub use server::{NOT_OPERATIONAL, REALM};
pub use tls::{ServedPort, port_key};
pub use twin::{Layer7Twin, NodeHandle, SeedError};
