//! Pieces shared by consumer credentials (reference §7.5, §7.6): identity without
//! `updated_at`, the owning consumer, and Kong's random secrets.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::kong::schema::{Field, ForeignKey, Kind, OnDelete};

/// Characters of generated keys and secrets.
const ALPHANUMERICS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `id`, `created_at` and the required `consumer` (deleted with it).
pub(super) fn owned_fields() -> Vec<Field> {
    vec![
        Field::new("id", Kind::Uuid),
        Field::new("created_at", Kind::Timestamp),
        Field::new(
            "consumer",
            Kind::Foreign(ForeignKey {
                collection: "consumers",
                on_delete: OnDelete::Cascade,
            }),
        )
        .required(),
    ]
}

/// 32 random alphanumerics (Kong's `random_string`), as a field default.
pub(super) fn random_string(_: &Map<String, Value>) -> Value {
    let mut seed = Sha256::new();
    seed.update(uuid::Uuid::new_v4().as_bytes());
    seed.update(uuid::Uuid::new_v4().as_bytes());
    let text: String = seed
        .finalize()
        .iter()
        .map(|byte| char::from(ALPHANUMERICS[usize::from(*byte) % ALPHANUMERICS.len()]))
        .collect();
    json!(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_strings_are_32_alphanumerics_and_differ() {
        let first = random_string(&Map::new());
        let second = random_string(&Map::new());
        let text = first.as_str().unwrap_or_default();
        assert_eq!(text.len(), 32);
        assert!(text.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(first, second);
    }
}
