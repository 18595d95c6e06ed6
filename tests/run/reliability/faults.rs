//! Reliability matrix: faults (filled in by its part).
