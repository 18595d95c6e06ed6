//! SNIs (reference §7.10): server names bound to a certificate, addressed by id or name.

use serde_json::Value;

use crate::kong::schema::{Field, ForeignKey, Kind, OnDelete, Schema};

/// The snis schema.
pub fn schema() -> Schema {
    let mut fields = super::identity_fields();
    fields.insert(
        1,
        Field::new("name", Kind::String)
            .required()
            .unique()
            .check(|value| name_error(value.as_str()?).map(Value::String)),
    );
    fields.extend([
        super::tags_field(),
        Field::new(
            "certificate",
            Kind::Foreign(ForeignKey {
                collection: "certificates",
                on_delete: OnDelete::Cascade,
            }),
        )
        .required(),
    ]);
    super::schema("snis", Some("name"), fields)
}

/// Kong's `wildcard_host` check of an SNI name: at most one `*`, leftmost or rightmost,
/// and a hostname without a port that is not an IP address.
pub fn name_error(name: &str) -> Option<String> {
    let mut host = name.to_owned();
    if let Some(index) = name.find('*') {
        if index != 0 && index != name.len() - 1 {
            return Some("wildcard must be leftmost or rightmost character".to_owned());
        }
        if name.matches('*').count() > 1 {
            return Some("only one wildcard must be specified".to_owned());
        }
        host = name.replace('*', "wildcard");
    }
    match classify(&host) {
        Address::Ip => Some("must not be an IP".to_owned()),
        Address::Name { port: true } | Address::BadPort => Some("must not have a port".to_owned()),
        Address::Name { port: false } => None,
        Address::Invalid => Some(format!("invalid value: {host}")),
    }
}

/// What Kong's `normalize_ip` makes of a host.
enum Address {
    /// A valid IPv4 or IPv6 address (with or without port).
    Ip,
    /// A valid hostname, with or without a port.
    Name {
        /// Whether a port followed the name.
        port: bool,
    },
    /// A port above 65535.
    BadPort,
    /// Anything else.
    Invalid,
}

/// Classifies `host` as Kong's `kong.tools.ip.normalize_ip` does.
fn classify(host: &str) -> Address {
    if host.matches(':').count() > 1 {
        return ipv6(host);
    }
    let unported = host.replace(':', "");
    if !unported.is_empty() && unported.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return ipv4(host);
    }
    hostname(host)
}

/// `ipv6`, `[ipv6]` or `[ipv6]:port`.
fn ipv6(host: &str) -> Address {
    let (address, port) = match host.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
        Some((address, "")) => (address, None),
        Some((address, rest)) => match rest.strip_prefix(':') {
            Some(port) if port.chars().all(|c| c.is_ascii_digit()) => (address, Some(port)),
            _ => return Address::Invalid,
        },
        None => (host, None),
    };
    if port.is_some_and(|port| port.parse::<u32>().map_or(true, |port| port > 65535)) {
        return Address::BadPort;
    }
    if address.parse::<std::net::Ipv6Addr>().is_ok() {
        Address::Ip
    } else {
        Address::Invalid
    }
}

/// `a.b.c.d` or `a.b.c.d:port`.
fn ipv4(host: &str) -> Address {
    let (address, port) = match host.split_once(':') {
        Some((address, port)) => (address, Some(port)),
        None => (host, None),
    };
    let octets: Vec<&str> = address.split('.').collect();
    let valid = octets.len() == 4
        && octets.iter().all(|octet| {
            (1..=3).contains(&octet.len()) && octet.parse::<u16>().is_ok_and(|value| value <= 255)
        });
    if !valid || port.is_some_and(|port| port.is_empty()) {
        return Address::Invalid;
    }
    if port.is_some_and(|port| port.parse::<u32>().map_or(true, |port| port > 65535)) {
        return Address::BadPort;
    }
    Address::Ip
}

/// `name` or `name:port` with Kong's hostname character and label rules.
fn hostname(host: &str) -> Address {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            (name, Some(port))
        }
        _ => (host, None),
    };
    if port.is_some_and(|port| port.parse::<u32>().map_or(true, |port| port > 65535)) {
        return Address::BadPort;
    }
    let charset = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    let labels: Vec<&str> = name.split('.').collect();
    let last = labels.len() - 1;
    let labels_ok = labels
        .iter()
        .enumerate()
        .all(|(index, label)| !label.ends_with('-') && (!label.is_empty() || index == last));
    if charset && labels_ok {
        Address::Name {
            port: port.is_some(),
        }
    } else {
        Address::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kong_wildcard_host_rules() {
        assert_eq!(name_error("example.com"), None);
        assert_eq!(name_error("*.example.com"), None);
        assert_eq!(name_error("example.*"), None);
        assert_eq!(name_error("*"), None);
        let error = |text: &str| name_error(text).unwrap_or_default();
        assert_eq!(error("*.wildcard.*"), "only one wildcard must be specified");
        assert_eq!(
            error("a.*.com"),
            "wildcard must be leftmost or rightmost character"
        );
        assert_eq!(error("10.0.0.1"), "must not be an IP");
        assert_eq!(error("::1"), "must not be an IP");
        assert_eq!(error("[::1]:443"), "must not be an IP");
        assert_eq!(error("example.com:443"), "must not have a port");
        assert_eq!(error("example.com:99999"), "must not have a port");
        assert_eq!(error("exa mple.com"), "invalid value: exa mple.com");
        assert_eq!(error("*.bad-.com"), "invalid value: wildcard.bad-.com");
    }
}
