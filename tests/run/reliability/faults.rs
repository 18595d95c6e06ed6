//! Reliability matrix, faults: every shipped playbook with writes in the repository's lab,
//! a fault injected at each write in turn (the Kong and Layer7 twins' `/_twin/faults`: a
//! 503, a dropped connection, a 500 from then on; a host command of the lab's nodes
//! failing; sshd killed mid-step over the ssh lab), and after the run the gateways'
//! normalised state and the nodes' compared with the state at the checkpoint the
//! playbook's rollback policy names. The default run draws one seeded trial per playbook;
//! `RUNSHEET_RELIABILITY=full` runs every write × every fault kind.
//! Its table is docs/reliability.md's "Faults at every write step".

mod lab;
mod layer7;
mod layer7_gateways;
mod layer7_nodes;
mod matrix;
mod sshd_killed;

use crate::lab::TestResult;

/// Whether the fault kind named `name` is run: `RUNSHEET_FAULT_KINDS=word,...` keeps the
/// kinds whose table name contains one of the words (every kind when unset).
fn kind_selected(name: &str) -> bool {
    std::env::var("RUNSHEET_FAULT_KINDS").map_or(true, |words| {
        words
            .split(',')
            .any(|word| !word.trim().is_empty() && name.contains(word.trim()))
    })
}

#[test]
fn a_fault_at_each_write_of_every_shipped_playbook_leaves_the_checkpoint_state() -> TestResult {
    matrix::run_matrix()
}
