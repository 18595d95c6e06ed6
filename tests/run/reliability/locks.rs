//! Reliability matrix: locks (filled in by its part).
