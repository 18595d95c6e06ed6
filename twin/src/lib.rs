//! runsheet-twin: in-memory emulators of gateway management APIs.
//!
//! [`kong`] emulates the Kong Gateway 3.x Admin API over real HTTP ([`kong::KongTwin`]);
//! [`layer7`] emulates a Layer7 API Gateway's restman, Graphman, `/ssg/ping` and published services
//! ([`layer7::Layer7Twin`]);
//! [`node`] stands in for a Kong data-plane node (version, PID file, readiness, echo).

pub mod kong;
pub mod layer7;
pub mod node;
