//! The Layer7 twin: an in-memory emulator of the Layer7 API Gateway's management interfaces.
//!
//! [`graphman`] serves the Graphman GraphQL API (`POST /graphman`) over any store that
//! implements [`graphman::GraphmanResolver`].

pub mod graphman;
