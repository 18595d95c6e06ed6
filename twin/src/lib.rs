//! runsheet-twin: in-memory emulators of gateway management APIs (skeleton).
