//! Field checks shared by entities: names, hosts, paths, enums and ranges.

use serde_json::Value;

use crate::kong::schema::element_errors;

/// Service protocols, in Kong's `expected one of` order.
pub const PROTOCOLS: [&str; 8] = [
    "grpc",
    "grpcs",
    "http",
    "https",
    "tcp",
    "tls",
    "tls_passthrough",
    "udp",
];

/// `expected one of: a, b` when `value` is not one of `allowed`.
pub fn one_of(value: &str, allowed: &[&str]) -> Option<String> {
    (!allowed.contains(&value)).then(|| format!("expected one of: {}", allowed.join(", ")))
}

/// `value should be between min and max` for an out-of-range integer.
pub fn between(value: &Value, min: i64, max: i64) -> Option<Value> {
    let number = value.as_f64()?;
    (number < min as f64 || number > max as f64)
        .then(|| Value::String(format!("value should be between {min} and {max}")))
}

/// Service and route names: ASCII alphanumerics, `.`, `-`, `_`, `~`, any non-ASCII.
pub fn name(value: &Value) -> Option<Value> {
    let text = value.as_str()?;
    let valid = text
        .chars()
        .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || ".-_~".contains(c));
    (!valid).then(|| {
        Value::String(format!(
            "invalid value '{text}': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
        ))
    })
}

/// Whether `text` is a valid DNS hostname (labels of alphanumerics, `-`, `_`).
pub fn is_hostname(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Splits `host[:port]` (IPv6 in brackets); `Err` when the port is not a number in range.
pub fn split_host_port(text: &str) -> Result<(&str, Option<u16>), ()> {
    if text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((text, None));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(());
        };
        return match after.strip_prefix(':') {
            None if after.is_empty() => Ok((host, None)),
            Some(port) => port
                .parse::<u16>()
                .map(|port| (host, Some(port)))
                .map_err(|_| ()),
            None => Err(()),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) => port
            .parse::<u16>()
            .map(|port| (host, Some(port)))
            .map_err(|_| ()),
        None => Ok((text, None)),
    }
}

/// Whether `text` is an IP address or a hostname.
pub fn is_host(text: &str) -> bool {
    text.parse::<std::net::IpAddr>().is_ok() || is_hostname(text)
}

/// Service `host`: a hostname or IP without a port.
pub fn service_host(value: &Value) -> Option<Value> {
    let text = value.as_str()?;
    let message = match split_host_port(text) {
        Ok((host, None)) if is_host(host) => return None,
        Ok((host, Some(_))) if is_host(host) => "must not have a port".to_owned(),
        Err(()) if text.contains(':') => "must not have a port".to_owned(),
        _ => format!("invalid value: {text}"),
    };
    Some(Value::String(message))
}

/// Characters RFC 3986 allows in a path besides `%` escapes.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/".contains(c)
}

/// The first malformed `%` escape in `text`, e.g. `%2G`.
fn bad_escape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let digits = &bytes[index + 1..bytes.len().min(index + 3)];
            if digits.len() < 2 || !digits.iter().all(u8::is_ascii_hexdigit) {
                return Some(
                    String::from_utf8_lossy(&bytes[index..bytes.len().min(index + 3)]).into_owned(),
                );
            }
            index += 3;
        } else {
            index += 1;
        }
    }
    None
}

/// Errors common to service paths and route prefix paths.
fn path_error(text: &str, start_message: &str) -> Option<String> {
    if !text.starts_with('/') {
        return Some(start_message.to_owned());
    }
    if text.contains("//") {
        return Some("must not have empty segments".to_owned());
    }
    if let Some(escape) = bad_escape(text) {
        return Some(format!("invalid url-encoded value: '{escape}'"));
    }
    if !text.chars().all(|c| is_path_char(c) || c == '%') {
        return Some(format!(
            "invalid path: '{text}' (characters outside of the reserved list of RFC 3986 found)"
        ));
    }
    None
}

/// Service `path`.
pub fn service_path(value: &Value) -> Option<Value> {
    path_error(value.as_str()?, "should start with: /").map(Value::String)
}

/// The byte a `%XX` escape at `index` stands for, if there is a valid one there.
pub(crate) fn escaped_byte(bytes: &[u8], index: usize) -> Option<u8> {
    if bytes.get(index) != Some(&b'%') {
        return None;
    }
    let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
    u8::from_str_radix(hex, 16).ok()
}

/// A prefix path normalized as Kong expects: unreserved escapes decoded, hex upper-cased,
/// dot segments removed.
pub fn normalize_path(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = String::with_capacity(text.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = escaped_byte(bytes, index);
        match escape {
            Some(byte) if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) => {
                decoded.push(char::from(byte));
                index += 3;
            }
            Some(_) => {
                decoded.push_str(&text[index..index + 3].to_ascii_uppercase());
                index += 3;
            }
            None => {
                let Some(c) = text[index..].chars().next() else {
                    break;
                };
                decoded.push(c);
                index += c.len_utf8();
            }
        }
    }
    remove_dot_segments(&decoded)
}

/// RFC 3986 §5.2.4 on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." => trailing_slash = index == last,
            ".." => {
                output.pop();
                trailing_slash = index == last;
            }
            other => {
                output.push(other);
                trailing_slash = false;
            }
        }
    }
    let mut result = format!("/{}", output.join("/"));
    if trailing_slash && !result.ends_with('/') {
        result.push('/');
    }
    result
}

/// Route `paths`: prefix (`/`) or regex (`~/`), no empty segments, normalized prefixes.
pub fn route_paths(value: &Value) -> Option<Value> {
    let items = value.as_array()?;
    let errors = items
        .iter()
        .map(|item| {
            let text = item.as_str().unwrap_or_default();
            let error = if let Some(regex) = text.strip_prefix('~') {
                path_error(
                    regex,
                    "should start with: / (fixed path) or ~/ (regex path)",
                )
                .filter(|message| !message.starts_with("invalid path"))
                .or_else(|| {
                    // Kong compiles with PCRE; the twin with the regex crate the proxy uses.
                    regex::Regex::new(regex).err().map(|error| {
                        let reason = error.to_string();
                        let reason = reason.lines().last().unwrap_or_default().trim().to_owned();
                        format!("invalid regex: '{regex}' (PCRE returned: {reason})")
                    })
                })
            } else {
                path_error(text, "should start with: / (fixed path) or ~/ (regex path)").or_else(
                    || {
                        let normalized = normalize_path(text);
                        (normalized != text).then(|| {
                            format!("non-normalized path, consider use '{normalized}' instead")
                        })
                    },
                )
            };
            error.map_or(Value::Null, Value::String)
        })
        .collect();
    element_errors(errors)
}

/// Route `hosts`: hostnames with optional port, at most one `*` at an edge label.
pub fn route_hosts(value: &Value) -> Option<Value> {
    let items = value.as_array()?;
    let errors = items
        .iter()
        .map(|item| {
            route_host(item.as_str().unwrap_or_default()).map_or(Value::Null, Value::String)
        })
        .collect();
    element_errors(errors)
}

/// One route host.
fn route_host(text: &str) -> Option<String> {
    let Ok((host, _)) = split_host_port(text) else {
        return Some("invalid port number".to_owned());
    };
    let wildcards = host.matches('*').count();
    if wildcards > 1 {
        return Some("invalid wildcard: must have at most one wildcard".to_owned());
    }
    if wildcards == 1 {
        let edge = host.strip_prefix("*.").or_else(|| host.strip_suffix(".*"));
        return match edge {
            Some(rest) if is_hostname(rest) => None,
            Some(_) => Some(format!("invalid hostname: {text}")),
            None => {
                Some("invalid wildcard: must be placed at leftmost or rightmost label".to_owned())
            }
        };
    }
    (!is_host(host)).then(|| format!("invalid hostname: {text}"))
}

/// Route `methods`: upper-case letters only.
pub fn route_methods(value: &Value) -> Option<Value> {
    let items = value.as_array()?;
    let errors = items
        .iter()
        .map(|item| {
            let text = item.as_str().unwrap_or_default();
            if text.chars().all(|c| c.is_ascii_uppercase()) {
                Value::Null
            } else {
                Value::String(format!("invalid value: {text}"))
            }
        })
        .collect();
    element_errors(errors)
}

/// Route `headers`: a map of names to string arrays, never `host`.
pub fn route_headers(value: &Value) -> Option<Value> {
    let map = value.as_object()?;
    for (name, values) in map {
        if name.eq_ignore_ascii_case("host") {
            return Some(Value::String(
                "cannot contain 'host' header, which must be specified in the 'hosts' attribute"
                    .to_owned(),
            ));
        }
        let Some(items) = values.as_array() else {
            return Some(Value::String("expected an array".to_owned()));
        };
        let errors = items
            .iter()
            .map(|item| match item.as_str() {
                Some("") => Value::String("length must be at least 1".to_owned()),
                Some(_) => Value::Null,
                None => Value::String("expected a string".to_owned()),
            })
            .collect();
        if let Some(errors) = element_errors(errors) {
            return Some(errors);
        }
    }
    None
}

/// Each element of a protocol set is a known protocol.
pub fn protocols(value: &Value) -> Option<Value> {
    let items = value.as_array()?;
    if items.is_empty() {
        return Some(Value::String("length must be at least 1".to_owned()));
    }
    let errors = items
        .iter()
        .map(|item| {
            one_of(item.as_str().unwrap_or_default(), &PROTOCOLS).map_or(Value::Null, Value::String)
        })
        .collect();
    element_errors(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_decodes_unreserved_and_removes_dot_segments() {
        assert_eq!(normalize_path("/a/./b/../c%7e%2f"), "/a/c~%2F");
        assert_eq!(normalize_path("/ovo/"), "/ovo/");
    }

    #[test]
    fn hosts_follow_kong_wildcard_rules() {
        assert_eq!(route_host("*.example.org:321"), None);
        assert_eq!(route_host("example.*"), None);
        assert_eq!(
            route_host("mock*bin.com").as_deref(),
            Some("invalid wildcard: must be placed at leftmost or rightmost label")
        );
        assert_eq!(
            route_host("*.example.*").as_deref(),
            Some("invalid wildcard: must have at most one wildcard")
        );
        assert_eq!(
            route_host("example.com:1000000").as_deref(),
            Some("invalid port number")
        );
        assert_eq!(
            route_host("hello..example.com").as_deref(),
            Some("invalid hostname: hello..example.com")
        );
    }
}
