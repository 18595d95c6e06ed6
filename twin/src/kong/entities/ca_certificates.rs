//! CA certificates (reference §7.11): trusted CAs for upstream TLS, unique by digest and
//! protected from deletion while a service lists them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::kong::pki;
use crate::kong::schema::{Field, IdReference, Kind, Schema, Violations};

/// The ca_certificates schema.
pub fn schema() -> Schema {
    let mut fields = super::identity_fields();
    fields.extend([
        Field::new("cert", Kind::String)
            .required()
            .check(|value| pki::certificate_error(value.as_str()?).map(Value::String)),
        Field::new("cert_digest", Kind::String).unique(),
        super::tags_field(),
    ]);
    let mut schema = super::schema("ca_certificates", None, fields);
    schema.entity_checks.push(one_valid_ca);
    schema.on_write = Some(digest);
    schema.id_references.push(IdReference {
        collection: "services",
        field: "ca_certificates",
    });
    schema
}

/// One certificate, not expired, with the CA basic constraint.
fn one_valid_ca(entity: &Map<String, Value>, violations: &mut Violations) {
    let Some(cert) = entity.get("cert").and_then(Value::as_str) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        });
    if let Some(problem) = pki::ca_certificate_problem(cert, now) {
        violations.entity(problem);
    }
}

/// `cert_digest`: the lowercase hex SHA-256 of the certificate's DER.
fn digest(entity: &mut Map<String, Value>) {
    let digest = entity
        .get("cert")
        .and_then(Value::as_str)
        .and_then(pki::sha256_hex);
    if let Some(digest) = digest {
        entity.insert("cert_digest".to_owned(), json!(digest));
    }
}
