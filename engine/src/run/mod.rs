//! Running a playbook: the executor, its events, the journal, locks, change
//! windows, secret masking and the run summary reports are built from.

pub mod event;
pub mod summary;
pub mod journal;
pub mod mask;
pub mod lock;
pub mod state;
pub mod store;
pub mod window;
pub mod context;
pub mod executor;
