//! Reliability matrix: secrets (filled in by its part).
