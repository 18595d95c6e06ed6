//! `kong.entity` against a running Kong twin over loopback HTTP.
