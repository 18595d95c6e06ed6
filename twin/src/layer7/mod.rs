//! The Layer7 twin: an in-memory Layer7 API Gateway served over HTTP (reference
//! `layer7-api.md` §1, §3, §5).
//!
//! [`store`] holds the gateway's entities, API-neutral; [`restman`] serves them as the REST
//! Management API (XML). [`Layer7Twin`] runs a twin.

pub mod keys;
pub mod restman;
pub mod store;
