//! runsheet-twin: in-memory emulators of gateway management APIs.
//!
//! [`kong`] emulates the Kong Gateway 3.x Admin API over real HTTP ([`kong::KongTwin`]);
//! [`layer7`] emulates the Layer7 API Gateway's management interfaces (Graphman so far);
//! [`node`] stands in for a Kong data-plane node (version, PID file, readiness, echo).

pub mod kong;
pub mod layer7;
pub mod node;
