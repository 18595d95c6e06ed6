//! Certificates (reference §7.9): a PEM cert/key pair (plus an optional alternative pair
//! of another key type) and the `snis` that select it, addressable by any of those SNIs.

use serde_json::{Map, Value, json};

use crate::kong::pki;
use crate::kong::schema::{ChildKeys, Element, Field, Kind, Schema, Violations, element_errors};

/// The certificates schema.
pub fn schema() -> Schema {
    let mut fields = super::identity_fields();
    fields.extend([
        Field::new("cert", Kind::String)
            .required()
            .check(certificate),
        Field::new("key", Kind::String).required().check(key),
        Field::new("cert_alt", Kind::String).check(certificate),
        Field::new("key_alt", Kind::String).check(key),
        super::tags_field(),
        Field::new("snis", Kind::Array(Element::String))
            .default(|_| json!([]))
            .check(sni_names),
    ]);
    let mut schema = super::schema("certificates", None, fields);
    schema.entity_checks.extend([
        alternative_pair_complete as fn(&Map<String, Value>, &mut Violations),
        pairs_match,
        alternative_of_another_type,
    ]);
    schema.child_keys = Some(ChildKeys {
        field: "snis",
        child: "snis",
        foreign_key: "certificate",
        not_found: "SNI not found",
    });
    schema
}

/// A PEM certificate that parses.
fn certificate(value: &Value) -> Option<Value> {
    pki::certificate_error(value.as_str()?).map(Value::String)
}

/// A PEM private key that parses.
fn key(value: &Value) -> Option<Value> {
    pki::key_error(value.as_str()?).map(Value::String)
}

/// Each element of `snis` is a valid SNI name.
fn sni_names(value: &Value) -> Option<Value> {
    let errors = value
        .as_array()?
        .iter()
        .map(|item| {
            item.as_str()
                .and_then(super::snis::name_error)
                .map_or(Value::Null, Value::String)
        })
        .collect();
    element_errors(errors)
}

/// The text of a string field, if set.
fn text<'a>(entity: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    entity.get(field).and_then(Value::as_str)
}

/// `cert_alt` and `key_alt` come together.
fn alternative_pair_complete(entity: &Map<String, Value>, violations: &mut Violations) {
    if text(entity, "cert_alt").is_some() != text(entity, "key_alt").is_some() {
        violations.entity("all or none of these fields must be set: 'cert_alt', 'key_alt'");
    }
}

/// Each key belongs to its certificate.
fn pairs_match(entity: &Map<String, Value>, violations: &mut Violations) {
    if let (Some(cert), Some(key)) = (text(entity, "cert"), text(entity, "key"))
        && !pki::keys_match(cert, key)
    {
        violations.entity("certificate does not match key");
    }
    if let (Some(cert), Some(key)) = (text(entity, "cert_alt"), text(entity, "key_alt"))
        && !pki::keys_match(cert, key)
    {
        violations.entity("alternative certificate does not match key");
    }
}

/// The alternative certificate's key type differs from the main one's (RSA vs ECDSA).
fn alternative_of_another_type(entity: &Map<String, Value>, violations: &mut Violations) {
    let (Some(cert), Some(cert_alt)) = (text(entity, "cert"), text(entity, "cert_alt")) else {
        return;
    };
    if pki::key_type(cert).is_some() && pki::key_type(cert) == pki::key_type(cert_alt) {
        violations.entity(
            "certificate and alternative certificate need to have different type (e.g. RSA and ECDSA), the provided certificates were both of the same type",
        );
    }
}
