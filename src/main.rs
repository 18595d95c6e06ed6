//! The runsheet command line.
fn main() {}
