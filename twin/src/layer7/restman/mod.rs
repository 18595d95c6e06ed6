//! restman: the REST Management API (`/restman/1.0/...`, XML) over the store.

pub mod xml;
