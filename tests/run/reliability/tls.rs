//! Reliability matrix: tls (filled in by its part).
