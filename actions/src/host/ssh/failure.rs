//! Turning what `ssh` printed when a connection failed into a
//! [`ConnectError`] an operator can act on, with the host key's fingerprint
//! when the key is the problem.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::super::transport::{ConnectError, ConnectFailure};

/// How long `ssh-keyscan` may take to read a host's key for an error message.
const KEYSCAN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how runsheet connected, for the error message.
pub struct Attempt<'a> {
    /// The host's name in the environment.
    pub host: &'a str,
    /// The address connected to.
    pub address: &'a str,
    /// The port.
    pub port: u16,
    /// `user@address:port`.
    pub endpoint: String,
    /// The known_hosts file, when the environment sets one.
    pub known_hosts: Option<&'a Path>,
    /// The jump host between, if any (then the key cannot be scanned directly).
    pub jump: Option<&'a str>,
}

/// The error for what ssh printed (`log`), reading the offered key when it is unknown.
pub async fn classify(attempt: &Attempt<'_>, log: &str) -> ConnectError {
    let lower = log.to_ascii_lowercase();
    let failure = if lower.contains("remote host identification has changed") {
        ConnectFailure::ChangedHostKey {
            offered: changed_fingerprint(log).into_iter().collect(),
            recorded_at: offending_entry(log),
        }
    } else if lower.contains("host key verification failed") {
        let key_type = unknown_key_type(log);
        let offered = if attempt.jump.is_some() {
            Vec::new()
        } else {
            scan(attempt.address, attempt.port, key_type.as_deref()).await
        };
        ConnectFailure::UnknownHostKey {
            offered,
            known_hosts: attempt.known_hosts.map(|p| p.display().to_string()),
        }
    } else if lower.contains("permission denied (")
        || lower.contains("too many authentication failures")
    {
        ConnectFailure::Authentication
    } else if lower.contains("connection refused") {
        ConnectFailure::Refused
    } else if [
        "timed out",
        "no route to host",
        "network is unreachable",
        "could not resolve hostname",
        "name or service not known",
    ]
    .iter()
    .any(|sign| lower.contains(sign))
    {
        ConnectFailure::Unreachable
    } else {
        ConnectFailure::Other
    };
    ConnectError {
        host: attempt.host.to_owned(),
        endpoint: attempt.endpoint.clone(),
        failure,
        detail: summary(log),
        via: attempt.jump.map(str::to_owned),
    }
}

/// The lines of ssh's log worth showing: no banner art, no blank lines.
fn summary(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('@'))
        .collect();
    let text = lines.last().copied().unwrap_or("ssh gave no reason");
    text.trim_start_matches("ssh: ").to_owned()
}

/// `ED25519 SHA256:...` from the "REMOTE HOST IDENTIFICATION HAS CHANGED" text.
fn changed_fingerprint(log: &str) -> Option<String> {
    let mut lines = log.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.trim().strip_prefix("The fingerprint for the ") {
            let key_type = rest.split_whitespace().next()?;
            let fingerprint = lines.next()?.trim().trim_end_matches('.');
            return Some(format!("{key_type} {fingerprint}"));
        }
    }
    None
}

/// `known_hosts:3` from "Offending ED25519 key in known_hosts:3".
fn offending_entry(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let line = line.trim();
        line.strip_prefix("Offending ")
            .and_then(|rest| rest.split_once(" key in "))
            .map(|(_, place)| place.to_owned())
    })
}

/// `ED25519` from "No ED25519 host key is known for ...".
fn unknown_key_type(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        line.trim()
            .strip_prefix("No ")
            .and_then(|rest| rest.split_once(" host key is known"))
            .map(|(key_type, _)| key_type.to_owned())
    })
}

/// The fingerprints of the keys the host offers, read with `ssh-keyscan`.
async fn scan(address: &str, port: u16, key_type: Option<&str>) -> Vec<String> {
    let mut command = tokio::process::Command::new("ssh-keyscan");
    command.arg("-p").arg(port.to_string()).arg("-T").arg("3");
    if let Some(key_type) = key_type.and_then(keyscan_type) {
        command.arg("-t").arg(key_type);
    }
    command
        .arg(address)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let Ok(Ok(output)) = tokio::time::timeout(KEYSCAN_TIMEOUT, command.output()).await else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(known_hosts_fingerprint)
        .collect()
}

/// The `-t` name ssh-keyscan takes for a key type ssh printed.
fn keyscan_type(key_type: &str) -> Option<&'static str> {
    match key_type {
        "ED25519" => Some("ed25519"),
        "ECDSA" => Some("ecdsa"),
        "RSA" => Some("rsa"),
        _ => None,
    }
}

/// `ED25519 SHA256:...` for a known_hosts line `host algorithm base64`.
pub fn known_hosts_fingerprint(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let mut words = line.split_whitespace();
    let (_host, algorithm, blob) = (words.next()?, words.next()?, words.next()?);
    let blob = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .ok()?;
    let digest = Sha256::digest(&blob);
    let label = match algorithm {
        "ssh-ed25519" => "ED25519",
        "ssh-rsa" => "RSA",
        a if a.starts_with("ecdsa-") => "ECDSA",
        other => other,
    };
    Some(format!(
        "{label} SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt() -> Attempt<'static> {
        Attempt {
            host: "dp1",
            address: "127.0.0.1",
            port: 1,
            endpoint: "root@127.0.0.1:1".into(),
            known_hosts: None,
            jump: Some("bastion"),
        }
    }

    #[tokio::test]
    async fn ssh_messages_become_failures_an_operator_acts_on() {
        let cases = [
            (
                "root@127.0.0.1: Permission denied (publickey).",
                ConnectFailure::Authentication,
            ),
            (
                "ssh: connect to host 127.0.0.1 port 22023: Connection refused",
                ConnectFailure::Refused,
            ),
            (
                "Connection timed out during banner exchange",
                ConnectFailure::Unreachable,
            ),
            (
                "ssh: Could not resolve hostname nohost: Name or service not known",
                ConnectFailure::Unreachable,
            ),
            (
                "kex_exchange_identification: read: Connection reset by peer",
                ConnectFailure::Other,
            ),
        ];
        for (log, failure) in cases.clone() {
            let error = classify(&attempt(), log).await;
            assert_eq!(error.failure, failure, "{log}");
            assert!(error.to_string().contains("`dp1`"), "{error}");
        }
        let refused = classify(&attempt(), cases[1].0).await.to_string();
        assert!(
            refused.contains("nothing listens on that port"),
            "{refused}"
        );
        assert!(refused.contains("through jump host `bastion`"), "{refused}");
        let hung = classify(&attempt(), cases[2].0).await.to_string();
        assert!(hung.contains("no SSH server answered"), "{hung}");
    }

    #[tokio::test]
    async fn a_changed_key_names_the_new_fingerprint_and_the_recorded_entry() {
        let log = "@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@\n\
                   The fingerprint for the ED25519 key sent by the remote host is\n\
                   SHA256:p/XqSwDAS7tR/Oss/P0EEFkpKunPp39YSekJduJI8cQ.\n\
                   Offending ED25519 key in /tmp/kh:1\n\
                   Host key verification failed.\n";
        let error = classify(&attempt(), log).await;
        assert_eq!(
            error.failure,
            ConnectFailure::ChangedHostKey {
                offered: vec!["ED25519 SHA256:p/XqSwDAS7tR/Oss/P0EEFkpKunPp39YSekJduJI8cQ".into()],
                recorded_at: Some("/tmp/kh:1".into()),
            }
        );
        let text = error.to_string();
        assert!(text.contains("has CHANGED"), "{text}");
        assert!(text.contains("SHA256:p/XqSwDAS7tR"), "{text}");
    }

    #[test]
    fn fingerprints_match_ssh_keygen() -> Result<(), Box<dyn std::error::Error>> {
        let directory = tempfile::tempdir()?;
        let key = directory.path().join("k");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()?;
        assert!(made.success());
        let public = std::fs::read_to_string(key.with_extension("pub"))?;
        let listed = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub"))
            .output()?;
        let listed = String::from_utf8(listed.stdout)?;
        let expected = listed.split_whitespace().nth(1).ok_or("no fingerprint")?;
        let line = format!("host {}", public.trim());
        assert_eq!(
            known_hosts_fingerprint(&line),
            Some(format!("ED25519 {expected}"))
        );
        Ok(())
    }
}
