//! A small block-style YAML writer for JSON values ([`to_yaml`]): deterministic
//! (keys in the map's order), strings quoted whenever a YAML 1.1 or 1.2 reader
//! could take them for anything but a string, multi-line strings (PEM) as
//! literal blocks.

use serde_json::{Map, Value};

/// The YAML text of `value`, ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar, 0));
            out.push('\n');
        }
    }
    out
}

/// Writes the entries of a non-empty mapping, each on its own line at `indent`.
fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    for (key, value) in map {
        push_indent(out, indent);
        out.push_str(&key_text(key));
        out.push(':');
        write_value_after_key(out, value, indent);
    }
}

/// Writes the items of a non-empty sequence at `indent` (`- item`).
fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        push_indent(out, indent);
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first entry shares the dash's line; the rest align under it.
                let mut first = true;
                for (key, value) in map {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        push_indent(out, indent + 2);
                    }
                    out.push_str(&key_text(key));
                    out.push(':');
                    write_value_after_key(out, value, indent + 2);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar, indent + 2));
                out.push('\n');
            }
        }
    }
}

/// Writes what follows `key:` for `value` of a mapping entry at `indent`.
fn write_value_after_key(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar, indent + 2));
            out.push('\n');
        }
    }
}

/// A scalar (or empty collection) on one line; a block literal's lines at `indent`.
fn inline(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => string(text, indent),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// A string as a plain scalar when that is unambiguous, a literal block for
/// multi-line text, double-quoted otherwise.
fn string(text: &str, indent: usize) -> String {
    if is_plain(text) {
        return text.to_owned();
    }
    if let Some(block) = literal_block(text, indent) {
        return block;
    }
    quoted(text)
}

/// A mapping key: plain when unambiguous, double-quoted otherwise.
fn key_text(key: &str) -> String {
    if is_plain(key) {
        key.to_owned()
    } else {
        quoted(key)
    }
}

/// `text` double-quoted with JSON's escapes (valid YAML escapes).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{}\"", text.escape_default()))
}

/// Whether `text` reads back as this same string when written unquoted.
fn is_plain(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == '/' || first == '_') {
        return false;
    }
    if text.ends_with(' ') || text.ends_with(':') || text.contains(": ") || text.contains(" #") {
        return false;
    }
    if !text.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                ' ' | '_' | '.' | '/' | ':' | '@' | '+' | '-' | '(' | ')' | '='
            )
    }) {
        return false;
    }
    // Numbers, YAML 1.1 sexagesimals and dates are quoted.
    if text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '_' | '+' | '-' | 'e' | 'E'))
    {
        return false;
    }
    if text.parse::<f64>().is_ok() || text.starts_with("0x") || text.starts_with("0o") {
        return false;
    }
    !matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
    )
}

/// `|`-style block for multi-line text whose lines need no escaping; `None` otherwise.
fn literal_block(text: &str, indent: usize) -> Option<String> {
    if !text.contains('\n')
        || text.starts_with(' ')
        || text.starts_with('\n')
        || text.chars().any(|c| c.is_control() && c != '\n')
    {
        return None;
    }
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    let chomping = match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    };
    let mut block = chomping.to_owned();
    let pad = " ".repeat(indent);
    for line in text
        .split('\n')
        .take(body.split('\n').count() + trailing.saturating_sub(1))
    {
        block.push('\n');
        if !line.is_empty() {
            block.push_str(&pad);
            block.push_str(line);
        }
    }
    Some(block)
}

/// Spaces for `indent`.
fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parses YAML back to JSON with the engine's reader.
    fn read_back(text: &str) -> Value {
        let file = runsheet_engine::SourceFile::new("t.yaml", text);
        match runsheet_engine::node::parse(&file) {
            Ok(node) => node.to_json(),
            Err(error) => Value::String(format!("{error:?}")),
        }
    }

    #[test]
    fn nested_maps_lists_and_scalars_read_back_unchanged() {
        let value = json!({
            "_format_version": "3.0",
            "services": [{
                "name": "billing", "port": 8080, "enabled": true, "tags": ["a", "team b"],
                "routes": [{"paths": ["/b"], "headers": {"x": ["1"]}}],
                "empty": [], "none": {}
            }],
            "odd": ["yes", "null", "1.5", "10:30", "", " lead", "a: b", "#c", "-x", "x:", "0x1f", "true"],
            "nested": [[1, 2], []]
        });
        let text = to_yaml(&value);
        assert_eq!(read_back(&text), value, "{text}\n{}", read_back(&text));
        assert!(text.contains("- name: billing\n  port: 8080\n"), "{text}");
    }

    #[test]
    fn multi_line_text_is_a_literal_block() {
        for pem in [
            "-----BEGIN X-----\nabc\n-----END X-----\n",
            "line one\nline two",
            "a\n\nb\n\n",
        ] {
            let value = json!({"certificates": [{"cert": pem}]});
            let text = to_yaml(&value);
            assert!(text.contains("cert: |"), "{text}");
            assert_eq!(read_back(&text), value, "{text}");
        }
        let tricky = json!({"x": "tab\tinside\nline"});
        assert_eq!(read_back(&to_yaml(&tricky)), tricky);
    }
}
