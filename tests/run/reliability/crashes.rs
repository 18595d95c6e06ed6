//! Reliability matrix: crashes (filled in by its part).
