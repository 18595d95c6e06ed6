//! Running a playbook: the executor, its events, the journal, locks, change
//! windows, secret masking, the run summary reports are built from, what the
//! journal says about one step (`explain`) and step durations (`timings`).

pub mod event;
pub mod summary;
pub mod journal;
pub mod mask;
pub mod lock;
pub mod state;
pub mod store;
pub mod window;
pub mod timings;
pub mod explain;
pub mod context;
pub mod executor;
