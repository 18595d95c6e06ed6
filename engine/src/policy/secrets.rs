//! The `literal-secrets` rule: a token, password, key or secret written as a literal
//! instead of `{{ secret('NAME') }}`, told by its length and Shannon entropy. The value
//! itself is never printed.

use std::collections::HashMap;
use std::sync::Arc;

use super::model::LiteralSecrets;
use super::{Finding, Subject, Trees};
use crate::model::is_templated;
use crate::node::{Node, NodeValue};
use crate::source::SourceFile;

/// Shannon entropy of a text in bits per character (0 for an empty text).
pub fn shannon_entropy(text: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut total = 0usize;
    for c in text.chars() {
        *counts.entry(c).or_default() += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let total = total as f64;
    counts
        .values()
        .map(|&n| {
            let p = n as f64 / total;
            -p * p.log2()
        })
        .sum()
}

/// Finds literal secrets in the playbook and environment files.
pub(super) fn literal_secrets(
    params: &LiteralSecrets,
    subject: &Subject<'_>,
    trees: &Trees,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(root) = &trees.playbook {
        scan(params, subject.file, root, &mut out);
    }
    if let (Some((file, _)), Some(root)) = (subject.environment, &trees.environment) {
        scan(params, file, root, &mut out);
    }
    out
}

/// Key endings that name something other than the secret itself.
const NOT_SECRET_SUFFIXES: &[&str] = &["_header", "_file", "_path", "_url", "_name", "_id"];

fn is_secret_field(params: &LiteralSecrets, key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    params
        .fields
        .iter()
        .any(|f| key.contains(&f.to_ascii_lowercase()))
        && !NOT_SECRET_SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// Whether a literal looks like a secret value rather than a path, a sentence or a name.
fn looks_secret(params: &LiteralSecrets, value: &str) -> bool {
    let path_like = value.contains('/')
        || [".pem", ".crt", ".key", ".p12", ".jks"]
            .iter()
            .any(|ext| value.ends_with(ext));
    value.chars().count() >= params.min_length
        && !is_templated(value)
        && !value.chars().any(char::is_whitespace)
        && !path_like
        && shannon_entropy(value) >= params.min_entropy
}

/// The file with the bytes under `span` starred out (same length, so every position
/// holds): the finding's snippet must not print the secret it found.
fn redacted(file: &Arc<SourceFile>, span: crate::source::Span) -> Arc<SourceFile> {
    let mut bytes = file.text.clone().into_bytes();
    let end = (span.offset + span.len).min(bytes.len());
    if let Some(secret) = bytes.get_mut(span.offset..end) {
        for byte in secret.iter_mut().filter(|byte| !matches!(byte, b'"' | b'\'' | b'\n')) {
            *byte = b'*';
        }
    }
    SourceFile::new(file.name.clone(), String::from_utf8_lossy(&bytes).into_owned())
}

fn scan(params: &LiteralSecrets, file: &Arc<SourceFile>, node: &Node, out: &mut Vec<Finding>) {
    match &node.value {
        NodeValue::Map(entries) => {
            for (key, value) in entries {
                if let (Some(name), Some(text)) = (key.as_str(), value.as_str())
                    && is_secret_field(params, name)
                    && looks_secret(params, text)
                {
                    out.push(Finding::new(
                        &redacted(file, value.span),
                        value.span,
                        format!("`{name}` holds a literal that looks like a secret"),
                        format!(
                            "write `{name}: \"{{{{ secret('NAME') }}}}\"` and pass the value in $NAME or the file named by $NAME_FILE"
                        ),
                    ));
                } else {
                    scan(params, file, value, out);
                }
            }
        }
        NodeValue::Seq(items) => items.iter().for_each(|item| scan(params, file, item, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> LiteralSecrets {
        LiteralSecrets {
            fields: vec!["token".into(), "password".into(), "key".into()],
            min_length: 12,
            min_entropy: 3.0,
        }
    }

    #[test]
    fn entropy_tells_random_text_from_words() {
        assert!(shannon_entropy("aaaaaaaa") < 0.01);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-9);
        assert!(shannon_entropy("x9Fq2LmZ7pR4tW8kV3nB") > 4.0);
    }

    #[test]
    fn only_literal_high_entropy_values_in_secret_fields_count() {
        let p = defaults();
        assert!(is_secret_field(&p, "admin_token"));
        assert!(is_secret_field(&p, "Password"));
        assert!(!is_secret_field(&p, "token_header"));
        assert!(!is_secret_field(&p, "name"));
        assert!(looks_secret(&p, "x9Fq2LmZ7pR4tW8kV3nB"));
        assert!(!looks_secret(&p, "{{ secret('KONG_TOKEN') }}"));
        assert!(!looks_secret(&p, "short"));
        assert!(!looks_secret(&p, "aaaaaaaaaaaaaaaaaaaa"));
        assert!(!looks_secret(&p, "/etc/kong/client-key.pem"));
    }
}
