//! runsheet-twin: in-memory emulators of gateway management APIs.
//!
//! [`kong`] emulates the Kong Gateway 3.x Admin API over real HTTP ([`kong::KongTwin`]).

pub mod kong;
