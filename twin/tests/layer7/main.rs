//! The Layer7 twin over loopback HTTP: restman envelopes and CRUD, auth, revisions,
//! bundles, ping and lifecycle, faults and counters, published services and TLS listen
//! ports (docs/twin-layer7.md).

mod bundles;
mod graphman;
mod lifecycle;
#[path = "../pki/mod.rs"]
mod pki;
mod restman;
mod support;
mod traffic;
