//! End-to-end tests of the `runsheet` binary.
//!
//! Every test runs the real binary from the workspace root against the files
//! under `tests/fixtures/`: the invalid corpus (one mistake per file, the
//! expected diagnostic code on its first line), the valid corpus, inputs from
//! `--set` and vars files, and the read-only commands. `fuzz` drives the
//! engine library with mutated playbooks instead of the binary, for speed.

mod commands;
mod fuzz;
mod inputs;
mod operator;
mod packaging;
mod policy;
mod runbook;
mod support;
mod validate;
