//! Reliability matrix: hostile (filled in by its part).
