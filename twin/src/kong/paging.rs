//! Pagination (reference §4) and tag filters (reference §5) of collection listings.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::Value;

use super::error::DaoError;
use super::schema::tag_error;

/// Default page size.
pub const DEFAULT_SIZE: usize = 100;

/// Largest page size.
pub const MAX_SIZE: usize = 1000;

/// Most tags one filter may name.
const MAX_TAGS: usize = 5;

/// A `?tags=` filter: `a,b` needs all, `a/b` needs any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    /// Entities carrying every tag.
    All(Vec<String>),
    /// Entities carrying at least one tag.
    Any(Vec<String>),
}

impl TagFilter {
    /// Parses the raw `tags` query value.
    pub fn parse(raw: &str) -> Result<Self, DaoError> {
        let invalid = |message: &str| DaoError::InvalidOptions {
            option: "tags",
            message: message.to_owned(),
        };
        if raw.is_empty() {
            return Err(invalid("cannot be null"));
        }
        let (and, or) = (raw.contains(','), raw.contains('/'));
        if and && or {
            return Err(invalid("invalid filter syntax"));
        }
        let separator = if or { '/' } else { ',' };
        let tags: Vec<String> = raw.split(separator).map(str::to_owned).collect();
        if tags.len() > MAX_TAGS {
            return Err(invalid("cannot query more than 5 tags"));
        }
        if tags.iter().any(|tag| tag_error(tag).is_some()) {
            return Err(invalid("invalid filter syntax"));
        }
        Ok(if or { Self::Any(tags) } else { Self::All(tags) })
    }

    /// Whether `entity`'s `tags` satisfy the filter.
    pub fn matches(&self, entity: &serde_json::Map<String, Value>) -> bool {
        let carried: Vec<&str> = entity
            .get("tags")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |tags| {
                tags.iter().filter_map(Value::as_str).collect()
            });
        match self {
            Self::All(tags) => tags.iter().all(|tag| carried.contains(&tag.as_str())),
            Self::Any(tags) => tags.iter().any(|tag| carried.contains(&tag.as_str())),
        }
    }
}

/// Parses `?size=`: a number, an integer in 1..=1000.
pub fn parse_size(raw: Option<&str>) -> Result<usize, DaoError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_SIZE);
    };
    let number: f64 = raw.trim().parse().map_err(|_| DaoError::InvalidSize {
        message: "size must be a number",
    })?;
    let in_range = number.fract() == 0.0 && (1.0..=MAX_SIZE as f64).contains(&number);
    if in_range {
        Ok(number as usize)
    } else {
        Err(DaoError::InvalidSize {
            message: "size must be an integer between 1 and 1000",
        })
    }
}

/// The offset token after the row with `id`: base64 without padding of `["<id>"]`.
pub fn encode_offset(id: &str) -> String {
    STANDARD_NO_PAD.encode(serde_json::json!([id]).to_string())
}

/// The id an offset token points after.
pub fn decode_offset(token: &str) -> Result<String, DaoError> {
    let invalid = |reason| DaoError::InvalidOffset {
        offset: token.to_owned(),
        reason,
    };
    let bytes = STANDARD_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid("bad base64 encoding"))?;
    let keys: Vec<String> =
        serde_json::from_slice(&bytes).map_err(|_| invalid("bad json encoding"))?;
    keys.into_iter()
        .next()
        .ok_or_else(|| invalid("bad json encoding"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn escape_uri(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_reject_garbage() {
        let id = "5f1d1c6e-0000-4000-8000-0000000000e1";
        let token = encode_offset(id);
        assert!(!token.ends_with('='));
        assert_eq!(decode_offset(&token), Ok(id.to_owned()));
        assert!(matches!(
            decode_offset("!!"),
            Err(DaoError::InvalidOffset {
                reason: "bad base64 encoding",
                ..
            })
        ));
        let not_json = STANDARD_NO_PAD.encode("nope");
        assert!(matches!(
            decode_offset(&not_json),
            Err(DaoError::InvalidOffset {
                reason: "bad json encoding",
                ..
            })
        ));
    }

    #[test]
    fn sizes_outside_one_to_a_thousand_are_refused() {
        assert_eq!(parse_size(None), Ok(100));
        assert_eq!(parse_size(Some("1000")), Ok(1000));
        assert!(parse_size(Some("0")).is_err());
        assert!(parse_size(Some("1001")).is_err());
        assert_eq!(
            parse_size(Some("abc")),
            Err(DaoError::InvalidSize {
                message: "size must be a number"
            })
        );
    }
}
