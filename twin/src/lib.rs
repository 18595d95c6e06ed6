//! runsheet-twin: in-memory emulators of gateway management APIs.
//!
//! [`kong`] emulates the Kong Gateway 3.x Admin API over real HTTP ([`kong::KongTwin`]);
//! [`node`] stands in for a Kong data-plane node (version, PID file, readiness, echo).

pub mod kong;
pub mod node;
