//! Secret masking: every value read through `secret()` and every sensitive
//! output is replaced by the mask in events, the journal and reports.

use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::check::MASK;

/// Secrets shorter than this are not masked inside other text (they would mask
/// ordinary words); whole values equal to them still are.
pub const MIN_MASKED_LEN: usize = 4;

/// What ends an excerpt cut short (a quoted response body): the start of a secret
/// right before it is masked too, since the rest of the secret was cut off.
pub const CUT_MARK: &str = "…";

/// The secret values seen so far in a run, shared by everything that writes output.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl Masker {
    /// Adds a secret value and its obvious encodings ([`encodings`]); they are masked
    /// from now on.
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut secrets = match self.secrets.write() {
            Ok(secrets) => secrets,
            Err(poisoned) => poisoned.into_inner(),
        };
        if secrets.iter().any(|s| s == secret) {
            return;
        }
        secrets.push(secret.to_owned());
        for encoded in encodings(secret) {
            if !secrets.contains(&encoded) {
                secrets.push(encoded);
            }
        }
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Adds every string inside a value.
    pub fn add_value(&self, value: &Value) {
        match value {
            Value::String(s) => self.add(s),
            Value::Array(items) => items.iter().for_each(|v| self.add_value(v)),
            Value::Object(map) => map.values().for_each(|v| self.add_value(v)),
            _ => {}
        }
    }

    /// Whether any secret is known.
    pub fn is_empty(&self) -> bool {
        self.secrets.read().map(|s| s.is_empty()).unwrap_or(false)
    }

    /// The text with every secret replaced by the mask.
    pub fn text(&self, text: &str) -> String {
        let secrets = match self.secrets.read() {
            Ok(secrets) => secrets,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = text.to_owned();
        for secret in secrets.iter() {
            if out == *secret || (secret.len() >= MIN_MASKED_LEN && out.contains(secret.as_str())) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        if out.contains(CUT_MARK) {
            out = mask_cut_starts(&out, &secrets);
        }
        out
    }

    /// The value with every secret inside its strings (and keys) replaced by the mask.
    pub fn value(&self, value: &Value) -> Value {
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.text(k), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Secrets shorter than this get no encoded forms masked: the encoded part of a short
/// secret is short enough to occur in ordinary text.
pub const MIN_ENCODED_LEN: usize = 6;

/// The forms a secret takes when a server or a log echoes it encoded: percent-encoded
/// (a URL, a form body), JSON-escaped, and base64 (standard and URL-safe) at each of
/// the three byte alignments it can have inside a longer encoded text (`Basic
/// base64(user:password)`), each cut to the characters that depend on the secret alone.
pub fn encodings(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    if secret.len() < MIN_ENCODED_LEN {
        return Vec::new();
    }
    let mut forms = vec![
        percent_encoded(secret, false),
        percent_encoded(secret, true),
        url_encoded(secret, b"\"#<>'"),
        url_encoded(secret, b"\"#<>?`{}"),
    ];
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json.trim_matches('"').to_owned());
    }
    let bytes = secret.as_bytes();
    for shift in 0..3 {
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(bytes);
        let encoded = STANDARD.encode(&shifted);
        // Character k covers bits 6k..6k+6; the secret's bits are 8*shift..8*(shift+len).
        let first = (8 * shift).div_ceil(6);
        let end = (8 * (shift + bytes.len())) / 6;
        if let Some(core) = encoded.get(first..end) {
            forms.push(core.to_owned());
            forms.push(
                URL_SAFE
                    .encode(&shifted)
                    .get(first..end)
                    .unwrap_or(core)
                    .to_owned(),
            );
        }
    }
    forms.retain(|form| form != secret && form.len() >= MIN_ENCODED_LEN);
    forms.sort();
    forms.dedup();
    forms
}

/// The text as a URL parser writes it into a query (`special` = `"#<>'`) or a path
/// (`"#<>?`{}`): controls, space, non-ASCII and `special` percent-encoded.
fn url_encoded(text: &str, special: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte <= b' ' || byte >= 0x7f || special.contains(&byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

/// The text percent-encoded (every byte but `A-Z a-z 0-9 - . _ ~`); `form`: a space
/// as `+`, as in a form body.
fn percent_encoded(text: &str, form: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' if form => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Every leaf of a value replaced by the mask (for `sensitive: true` outputs).
pub fn mask_all(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(mask_all).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), mask_all(v)))
                .collect(),
        ),
        Value::Null => Value::Null,
        _ => Value::String(MASK.to_owned()),
    }
}

/// `text` with the start of a secret that ends right at a [`CUT_MARK`] masked (at least
/// [`MIN_MASKED_LEN`] bytes of it, the longest that fits).
fn mask_cut_starts(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(CUT_MARK) {
        let before = &rest[..at];
        let cut = secrets
            .iter()
            .filter(|secret| secret.len() > MIN_MASKED_LEN)
            .filter_map(|secret| {
                (MIN_MASKED_LEN..secret.len())
                    .rev()
                    .filter(|&end| secret.is_char_boundary(end))
                    .find(|&end| before.ends_with(&secret[..end]))
            })
            .max();
        match cut {
            Some(len) => {
                out.push_str(&before[..before.len() - len]);
                out.push_str(MASK);
            }
            None => out.push_str(before),
        }
        out.push_str(CUT_MARK);
        rest = &rest[at + CUT_MARK.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_secret_cut_short_at_the_end_of_an_excerpt_is_masked_too() {
        let masker = Masker::default();
        masker.add("kong-admin-token-9f8e7d");
        let cut = "HTTP 500; body: {\"token\": \"kong-admin-tok… (2048 bytes in all)";
        assert_eq!(
            masker.text(cut),
            format!("HTTP 500; body: {{\"token\": \"{MASK}… (2048 bytes in all)")
        );
        // Only right before the mark, and never a stub shorter than the minimum.
        let ordinary = "kong is up… (2048 bytes in all); kong-admin-tok";
        assert_eq!(masker.text(ordinary), ordinary);
    }

    #[test]
    fn masks_secrets_inside_text_and_structures() {
        let masker = Masker::default();
        masker.add("s3cr3t-token");
        masker.add("s3cr3t");
        let value = json!({"auth": "Bearer s3cr3t-token", "list": ["x s3cr3t y"], "n": 1});
        assert_eq!(
            masker.value(&value),
            json!({"auth": format!("Bearer {MASK}"), "list": [format!("x {MASK} y")], "n": 1})
        );
    }

    #[test]
    fn short_secrets_are_masked_only_as_whole_values() {
        let masker = Masker::default();
        masker.add("ab");
        assert_eq!(masker.text("ab"), MASK);
        assert_eq!(masker.text("about"), "about");
    }

    #[test]
    fn encoded_forms_of_a_secret_are_masked_too() {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        let secret = "p@ss w/\"rd+7Kq";
        let masker = Masker::default();
        masker.add(secret);
        let json = serde_json::to_string(secret).unwrap_or_default();
        for (user, what) in [
            ("", "no user"),
            ("u", "user u"),
            ("ab", "user ab"),
            ("abc", "user abc"),
        ] {
            let basic = STANDARD.encode(format!("{user}:{secret}"));
            let shown = masker.text(&format!("echo: Authorization: Basic {basic}"));
            assert!(shown.contains(MASK), "{what}: {shown}");
            assert!(!shown.contains(&basic), "{what}: {shown}");
        }
        for text in [
            "GET /x?key=p%40ss%20w%2F%22rd%2B7Kq HTTP/1.1".to_owned(),
            "body key=p%40ss+w%2F%22rd%2B7Kq".to_owned(),
            "GET /x?key=p@ss%20w/%22rd+7Kq HTTP/1.1".to_owned(),
            format!("{{\"echo\": {json}}}"),
        ] {
            let shown = masker.text(&text);
            assert!(
                shown.contains(MASK) && !shown.contains("rd%2B7Kq") && !shown.contains("rd+7Kq"),
                "{shown}"
            );
        }
        // Short secrets get no encoded forms: they would mask ordinary text.
        assert!(encodings("abcde").is_empty());
        assert!(!encodings(secret).is_empty());
    }

    #[test]
    fn sensitive_outputs_are_masked_leaf_by_leaf() {
        assert_eq!(
            mask_all(&json!({"key": "k", "ids": [1, 2], "none": null})),
            json!({"key": MASK, "ids": [MASK, MASK], "none": null})
        );
    }
}
