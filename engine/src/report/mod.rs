//! Reports of a run: a [`RunSummary`](crate::run::summary::RunSummary) rendered as
//! JSON, JUnit XML or a Markdown change-closure report, and written where
//! `--report FORMAT=PATH` says.
//!
//! Every text in a summary was masked by the executor; reports print nothing else.

pub mod diff;
mod spec;

pub use spec::{ReportFormat, ReportSpecError, parse_spec};
