//! What `kong.key_rotate` and `kong.cert_rotate` share: the rotation id and the tag
//! that marks what a rotation wrote ([`RotationId`]), and the scrubbing of secret
//! values out of error messages ([`scrub`]).

use std::time::Duration;

use runsheet_engine::ActionError;

use super::client::{hide_secrets, hide_secrets_in};
use serde_json::Value;

/// The tag prefix of everything a rotation creates: `runsheet-rotation:<rotation id>`.
pub const TAG_PREFIX: &str = "runsheet-rotation:";

/// How long a verification retries by default while the gateway propagates a change.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause between two verification attempts.
pub const VERIFY_INTERVAL: Duration = Duration::from_millis(250);

/// What a secret is replaced with in a message.
const HIDDEN: &str = "<hidden>";

/// One rotation's id: `<subject>-<UTC timestamp>` (`alice-20250601T021500Z`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationId(pub String);

impl RotationId {
    /// A new id for a rotation of `subject` (a consumer or an SNI name), made now.
    pub fn new(subject: &str) -> Self {
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
        Self(format!("{}-{stamp}", tag_safe(subject)))
    }

    /// The id an entity's tags carry, if one of them is a rotation tag.
    pub fn from_tags(tags: &[String]) -> Option<Self> {
        tags.iter()
            .find_map(|tag| tag.strip_prefix(TAG_PREFIX))
            .map(|id| Self(id.to_owned()))
    }

    /// The tag put on what this rotation creates.
    pub fn tag(&self) -> String {
        format!("{TAG_PREFIX}{}", self.0)
    }
}

impl std::fmt::Display for RotationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The prefix of every rotation tag of `subject` (`runsheet-rotation:alice-`).
pub fn tag_prefix_for(subject: &str) -> String {
    format!("{TAG_PREFIX}{}-", tag_safe(subject))
}

/// `text` with the characters Kong refuses in a tag (`,`, `/`, control and non-ASCII
/// characters, spaces for readability) replaced by `_`.
pub fn tag_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != ',' && c != '/' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The tags of an entity as strings.
pub fn tags_of(entity: &Value) -> Vec<String> {
    entity
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A string field of an entity (empty when absent).
pub fn text(entity: &Value, key: &str) -> String {
    entity
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `message` with every secret value in `secrets` replaced (Kong quotes a duplicate key
/// in its 409 message, for example).
pub fn scrub(message: &str, secrets: &[&str]) -> String {
    hide_secrets(message, secrets, HIDDEN)
}

/// An [`ActionError`] whose message has the secrets scrubbed out.
pub fn scrubbed(error: impl Into<ActionError>, secrets: &[&str]) -> ActionError {
    hide_secrets_in(error.into(), secrets, HIDDEN)
}

/// Now, as Unix seconds.
pub fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Unix seconds as RFC 3339 (`2025-06-01T02:15:00Z`).
pub fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map_or_else(|_| seconds.to_string(), |time| time.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_tag_safe_and_read_back_from_tags() {
        let id = RotationId::new("ali ce/x,y");
        assert!(id.0.starts_with("ali_ce_x_y-"), "{id}");
        assert!(id.0.ends_with('Z'), "{id}");
        let tags = vec!["team:a".to_owned(), id.tag()];
        assert_eq!(RotationId::from_tags(&tags), Some(id.clone()));
        assert!(id.tag().starts_with(&tag_prefix_for("ali ce/x,y")));
        assert_eq!(RotationId::from_tags(&["other".to_owned()]), None);
    }

    #[test]
    fn scrub_hides_every_secret() {
        assert_eq!(
            scrub(
                "UNIQUE violation detected on '{key=\"s3cret\"}'",
                &["s3cret", ""]
            ),
            "UNIQUE violation detected on '{key=\"<hidden>\"}'"
        );
    }
}
