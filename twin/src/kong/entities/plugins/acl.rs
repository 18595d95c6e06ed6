//! The acl plugin: allow or deny consumers by their ACL groups.

use super::catalog::{PluginCheck, PluginSchema};
use crate::kong::entities::default_false;
use crate::kong::schema::{Element, Field, Kind};

/// The acl plugin schema.
pub fn schema() -> PluginSchema {
    PluginSchema::new("acl", 950)
        .no_consumer()
        .config(vec![
            Field::new("allow", Kind::Array(Element::String)),
            Field::new("deny", Kind::Array(Element::String)),
            Field::new("hide_groups_header", Kind::Boolean)
                .required()
                .default(default_false),
            Field::new("always_use_authenticated_groups", Kind::Boolean)
                .required()
                .default(default_false),
        ])
        .check(PluginCheck::OnlyOneOf(&["allow", "deny"]))
        .check(PluginCheck::AtLeastOneOf(&["allow", "deny"]))
}
