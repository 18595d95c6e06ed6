//! The ip-restriction plugin: allow or deny client addresses and CIDR ranges.

use super::super::checks;
use super::catalog::{self, PluginCheck, PluginSchema};
use crate::kong::schema::{Element, Field, Kind};

/// The ip-restriction plugin schema (it also runs on stream protocols).
pub fn schema() -> PluginSchema {
    let mut schema = PluginSchema::new("ip-restriction", 990)
        .config(vec![
            Field::new("allow", Kind::Array(Element::String))
                .check(|value| catalog::each(value, catalog::ip_or_cidr)),
            Field::new("deny", Kind::Array(Element::String))
                .check(|value| catalog::each(value, catalog::ip_or_cidr)),
            Field::new("status", Kind::Number),
            Field::new("message", Kind::String),
        ])
        .check(PluginCheck::AtLeastOneOf(&["allow", "deny"]));
    schema.protocols = &checks::PROTOCOLS;
    schema.default_protocols = Some(&["http", "https", "tcp", "tls", "grpc", "grpcs"]);
    schema
}
