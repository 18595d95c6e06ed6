//! ACL group memberships (reference §7.6): unique per (consumer, group); nested URLs
//! address them by group name.

use super::credentials;
use crate::kong::schema::{Field, Kind, Schema};

/// The acls schema.
pub fn schema() -> Schema {
    let mut fields = credentials::owned_fields();
    fields.extend([
        Field::new("group", Kind::String).required().unique(),
        super::tags_field(),
    ]);
    let mut schema = super::schema("acls", Some("group"), fields);
    schema.unique_scope = Some("consumer");
    schema
}
