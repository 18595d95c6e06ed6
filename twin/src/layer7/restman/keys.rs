//! Private-key operations beyond the collection pattern (reference §1.6): create a
//! self-signed key (`POST privateKeys/{keystoreId}:{alias}` with an
//! `l7:PrivateKeyCreationContext`) and mark a key's special purposes
//! (`PUT privateKeys/{id}/specialPurpose?purpose=SSL`).

use axum::http::StatusCode;

use super::crud::{found, head};
use super::envelope;
use super::request::{Failure, Reply, Request};
use super::resources::key_from_creation_context;
use crate::layer7::keys;
use crate::layer7::store::{PrivateKey, RevisionOptions, Store};

/// Purposes a key can be the cluster default for.
const PURPOSES: [&str; 6] = [
    "SSL",
    "CA",
    "AUDIT_VIEWER",
    "AUDIT_SIGNING",
    "DEFAULT_SSL",
    "DEFAULT_CA",
];

/// `POST privateKeys/{keystoreId}:{alias}`: generates the key; 201 with a reference Item.
pub fn create(store: &mut Store, request: &Request, id: &str) -> Result<Reply, Failure> {
    let Some((keystore_id, alias)) = id.split_once(':') else {
        return Err(Failure::bad_request(format!(
            "'{id}' is not a private key id (<keystoreId>:<alias>)"
        )));
    };
    if alias.is_empty() || keystore_id.is_empty() {
        return Err(Failure::bad_request(format!(
            "'{id}' is not a private key id (<keystoreId>:<alias>)"
        )));
    }
    if store.get::<PrivateKey>(id).is_some() {
        return Err(Failure {
            status: StatusCode::CONFLICT,
            kind: "InvalidResource",
            detail: format!(
                "a private key with alias '{alias}' already exists in keystore {keystore_id}"
            ),
        });
    }
    let context = request.xml()?;
    let wanted = key_from_creation_context(&context).map_err(|error| Failure::invalid(error.0))?;
    let generated =
        keys::self_signed(&wanted).map_err(|error| Failure::invalid(error.to_string()))?;
    let key = PrivateKey {
        keystore_id: keystore_id.to_owned(),
        alias: alias.to_owned(),
        chain: generated.chain,
        key_pem: generated.key_pem,
        algorithm: generated.algorithm,
        special_purposes: Vec::new(),
    };
    store.save(Some(id), key, None, &RevisionOptions::active())?;
    let stored = found::<PrivateKey>(store, id)?;
    Ok(Reply::document(
        StatusCode::CREATED,
        &envelope::item(&head(stored, &request.base), None),
    )
    .changed(true))
}

/// `PUT privateKeys/{id}/specialPurpose?purpose=P[&purpose=Q]`: the key becomes the
/// default for each purpose; answers the key.
pub fn special_purpose(store: &mut Store, request: &Request, id: &str) -> Result<Reply, Failure> {
    found::<PrivateKey>(store, id)?;
    let purposes: Vec<String> = request.params("purpose").map(str::to_owned).collect();
    if purposes.is_empty() {
        return Err(Failure::bad_request(
            "query parameter purpose is required (e.g. purpose=SSL)".to_owned(),
        ));
    }
    if let Some(unknown) = purposes
        .iter()
        .find(|purpose| !PURPOSES.contains(&purpose.as_str()))
    {
        return Err(Failure::bad_request(format!(
            "unknown purpose '{unknown}' (expected one of {})",
            PURPOSES.join(", ")
        )));
    }
    let saved = store.set_special_purposes(id, &purposes)?;
    let stored = found::<PrivateKey>(store, id)?;
    Ok(Reply::document(
        StatusCode::OK,
        &super::crud::full_item(stored, store, &request.base),
    )
    .changed(saved.change != crate::layer7::store::Change::Unchanged))
}
