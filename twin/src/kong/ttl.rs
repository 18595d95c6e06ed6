//! Kong's `ttl` option (reference §7.5) at the Admin API's edge, for schemas with the
//! `ttl` hook.
//!
//! A write's `ttl` (seconds to live, 0..100000000) becomes the absolute expiry stored in
//! the entity's `ttl` field (`0` clears it; a PATCH without `ttl` keeps it; a PUT without
//! it clears it, as any field absent from a full replacement). Responses show the whole
//! seconds remaining. Expired rows are removed before each request is served
//! ([`Store::purge_expired`]), so lists, lookups and uniqueness never see them.
//! Declarative files carry the absolute expiry, as Kong's export does.
//!
//! [`Store::purge_expired`]: super::store::Store::purge_expired

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::error::DaoError;

/// Largest accepted `ttl`.
const MAX_TTL: i64 = 100_000_000;

/// The wall clock in Unix seconds, with sub-second precision.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// Replaces the body's relative `ttl` with the absolute expiry as of `now` (`null` for
/// 0); code 11 when it is not an integer in 0..=100000000.
pub fn take_option(body: &mut Map<String, Value>, now: f64) -> Result<(), DaoError> {
    let Some(ttl) = body.get("ttl") else {
        return Ok(());
    };
    let seconds = match ttl {
        Value::Number(number) => number
            .as_f64()
            .filter(|value| value.fract() == 0.0)
            .map(|value| value as i64),
        // Form bodies carry strings.
        Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    }
    .filter(|seconds| (0..=MAX_TTL).contains(seconds))
    .ok_or_else(|| DaoError::InvalidOptions {
        option: "ttl",
        message: format!("must be an integer between 0 and {MAX_TTL}"),
    })?;
    let expiry = if seconds == 0 {
        Value::Null
    } else {
        json!(now + seconds as f64)
    };
    body.insert("ttl".to_owned(), expiry);
    Ok(())
}

/// Rewrites the absolute `ttl` of an entity, or of each entity of a page's `data`, into
/// the whole seconds remaining at `now`.
pub fn present(body: &mut Value, now: f64) {
    match body.get_mut("data") {
        Some(Value::Array(entities)) => entities
            .iter_mut()
            .for_each(|entity| remaining(entity, now)),
        _ => remaining(body, now),
    }
}

/// Slack for the rounding of `now + ttl` in floating point (a write's own response shows
/// the `ttl` it was given).
const ROUNDING: f64 = 1e-6;

/// `ttl` as remaining whole seconds (never negative).
fn remaining(entity: &mut Value, now: f64) {
    if let Some(ttl) = entity.get_mut("ttl")
        && let Some(expiry) = ttl.as_f64()
    {
        *ttl = json!(((expiry - now + ROUNDING).floor() as i64).max(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_becomes_an_absolute_expiry_and_reads_count_down() {
        let mut body = Map::new();
        body.insert("ttl".to_owned(), json!(10));
        assert_eq!(take_option(&mut body, 1000.0), Ok(()));
        assert_eq!(body["ttl"], json!(1010.0));
        let mut entity = Value::Object(body);
        let mut later = entity.clone();
        present(&mut entity, 1000.0);
        assert_eq!(entity["ttl"], json!(10));
        present(&mut later, 1002.5);
        assert_eq!(later["ttl"], json!(7));
        let mut page = json!({"data": [{"ttl": 1010.0}, {"ttl": null}], "next": null});
        present(&mut page, 1001.0);
        assert_eq!(page["data"], json!([{"ttl": 9}, {"ttl": null}]));
    }

    #[test]
    fn a_write_reads_back_the_ttl_it_was_given() {
        let now = 1_732_650_000.123_456_7;
        let mut body = Map::new();
        body.insert("ttl".to_owned(), json!(50));
        assert_eq!(take_option(&mut body, now), Ok(()));
        let mut entity = Value::Object(body);
        present(&mut entity, now);
        assert_eq!(entity["ttl"], json!(50));
    }

    #[test]
    fn zero_clears_and_bad_values_are_code_11() {
        let mut body = Map::new();
        body.insert("ttl".to_owned(), json!(0));
        assert_eq!(take_option(&mut body, 5.0), Ok(()));
        assert_eq!(body["ttl"], Value::Null);
        for bad in [
            json!(-1),
            json!(100_000_001),
            json!(1.5),
            json!("x"),
            Value::Null,
        ] {
            let mut body = Map::new();
            body.insert("ttl".to_owned(), bad);
            let error = take_option(&mut body, 5.0).err().map(|error| error.body());
            assert_eq!(
                error,
                Some(json!({"code": 11, "name": "invalid options",
                    "message": "invalid option (ttl: must be an integer between 0 and 100000000)",
                    "options": {"ttl": "must be an integer between 0 and 100000000"}}))
            );
        }
    }
}
