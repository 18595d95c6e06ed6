//! Going back from a `layer7.key_rotate`: the undo record ([`KeyRotateUndo`]: the
//! listen ports' previous keys and whether the step created the key), the roll-back of
//! a failed apply ([`roll_back`]) and the undo of a finished one ([`undo`]), which also
//! proves by TLS handshake that each port presents its previous certificate again.

use runsheet_engine::{ActionError, StepContext};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::gateway::Layer7Gateway;
use super::key_rotate::NAME;
use super::listen_port_keys::{
    KeyRef, endpoint, read_key, read_port, switch_port, verify_timeout, wait_until_served,
};
use super::restman::{ListenPort, PrivateKey};

/// A listen port the rotation switched, and the key it presented before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBefore {
    /// The port's name.
    pub name: String,
    /// Its TCP port when rotated.
    pub port: u16,
    /// The key it presented before.
    pub previous: KeyRef,
}

/// What undo needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyRotateUndo {
    /// The ports were switched to `key`.
    Switched {
        /// The rotation's key.
        key: KeyRef,
        /// Whether the step created it (undo deletes it then).
        created: bool,
        /// SHA-256 of its certificate, hex.
        thumbprint: String,
        /// The ports, with their previous keys.
        ports: Vec<PortBefore>,
    },
    /// Found done on resume: the previous keys are not known.
    Lost {
        /// The rotation's key.
        key: KeyRef,
        /// The ports' names.
        ports: Vec<String>,
    },
}

/// The record as JSON.
pub fn undo_record(record: &KeyRotateUndo) -> Result<Value, ActionError> {
    serde_json::to_value(record)
        .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))
}

/// Switches `touched` back to their previous keys, then deletes `key` if the step
/// `created` it and every port went back. Answers what happened, in words, naming
/// exactly what is left when something fails, and the items left changed (none when
/// everything went back).
pub async fn roll_back(
    gateway: &Layer7Gateway,
    touched: &[PortBefore],
    key: &KeyRef,
    created: bool,
) -> (String, Vec<String>) {
    let mut back = Vec::new();
    let mut stuck = Vec::new();
    for port in touched {
        match switch_port(gateway, &port.name, &port.previous).await {
            Ok(()) => back.push(format!("`{}` on key {}", port.name, port.previous)),
            Err(error) => stuck.push(format!("`{}` ({error})", port.name)),
        }
    }
    let back_words = if back.is_empty() {
        String::new()
    } else {
        format!("listen ports {} again", back.join(", "))
    };
    if !stuck.is_empty() {
        let mut left: Vec<String> = stuck
            .iter()
            .map(|port| format!("listen port {port}: may still present key {key}"))
            .collect();
        if created {
            left.push(format!("private key {key} ({}): created, kept", key.id()));
        }
        let words = format!(
            "rolling back failed: listen ports {} may still present key {}, so the key is kept{}; switch them back by hand",
            stuck.join(", "),
            key,
            if back_words.is_empty() {
                String::new()
            } else {
                format!(" ({back_words})")
            }
        );
        return (words, left);
    }
    let mut left = Vec::new();
    let deleted = if created {
        match delete_unused_key(gateway, key).await {
            Ok(()) => format!("key {key} was deleted"),
            Err(reason) => {
                left.push(format!("private key {key} ({}): created, not deleted", key.id()));
                format!(
                    "rolling back failed: key {key} ({}) was not deleted: {reason}",
                    key.id()
                )
            }
        }
    } else {
        format!("key {key} was kept (it existed before)")
    };
    let words = match back_words.is_empty() {
        true => format!("rolled back: no listen port was switched; {deleted}"),
        false => format!("rolled back: {back_words}; {deleted}"),
    };
    (words, left)
}

/// Deletes `key` unless a listen port still names it; already gone is fine.
async fn delete_unused_key(gateway: &Layer7Gateway, key: &KeyRef) -> Result<(), String> {
    let users: Vec<String> = gateway
        .restman
        .list::<ListenPort>(&[])
        .await
        .map_err(|error| format!("listing the listen ports failed: {error}"))?
        .into_iter()
        .filter(|port| {
            port.tls_settings
                .as_ref()
                .and_then(|tls| tls.private_key.as_ref())
                .is_some_and(|reference| reference.id == key.id())
        })
        .map(|port| format!("`{}`", port.name))
        .collect();
    if !users.is_empty() {
        return Err(format!(
            "listen ports {} present it (deleting it would leave them without a key)",
            users.join(", ")
        ));
    }
    match gateway.restman.delete::<PrivateKey>(&key.id()).await {
        Ok(()) => Ok(()),
        Err(error) if error.is_not_found() => Ok(()),
        Err(error) => Err(error.to_string()),
    }
}

/// Undoes a rotation: each port still on the rotation's key goes back to its previous
/// key and must present that key's certificate again (handshake); then the key is
/// deleted if the step created it. A port changed since is left as it is and reported.
pub async fn undo(
    gateway: &Layer7Gateway,
    record: &KeyRotateUndo,
    context: &StepContext,
) -> Result<(), ActionError> {
    let (key, created, thumbprint, ports) = match record {
        KeyRotateUndo::Lost { key, ports } => {
            return Err(ActionError::failed(format!(
                "{NAME}: the rotation to key {key} was found done on resume, so the listen ports' previous keys are unknown: switch listen ports {} back by hand, then delete private key {} if unused",
                ports.join(", "),
                key.id()
            )));
        }
        KeyRotateUndo::Switched {
            key,
            created,
            thumbprint,
            ports,
        } => (key, *created, thumbprint, ports),
    };
    let mut problems = Vec::new();
    let mut restored = Vec::new();
    let timeout = verify_timeout(context.timeout);
    for before in ports {
        let Some(port) = read_port(gateway, &before.name).await? else {
            problems.push(format!("listen port `{}` no longer exists", before.name));
            continue;
        };
        let current = port.named_key.clone();
        if current.as_ref() == Some(key) {
            if let Err(error) = switch_port(gateway, &before.name, &before.previous).await {
                problems.push(format!(
                    "switching listen port `{}` back to key {} failed: {error}",
                    before.name, before.previous
                ));
                continue;
            }
        } else if current.as_ref() != Some(&before.previous) {
            problems.push(format!(
                "listen port `{}` presents key {} now (changed since the rotation): left as it is",
                before.name,
                current.map_or_else(|| "(none)".to_owned(), |key| key.to_string())
            ));
            continue;
        }
        let Some(previous) = read_key(gateway, &before.previous).await? else {
            problems.push(format!(
                "listen port `{}` names key {} again, but that key no longer exists",
                before.name, before.previous
            ));
            continue;
        };
        let target = endpoint(gateway, port.port).map_err(ActionError::failed)?;
        match wait_until_served(&target, &previous.der, &context.base_dir, timeout).await {
            Ok(()) => restored.push(format!("`{}`", before.name)),
            Err(reason) => problems.push(format!(
                "listen port `{}` is back on key {} but does not serve its certificate: {reason}",
                before.name, before.previous
            )),
        }
    }
    if created {
        // A key whose certificate was replaced since is someone else's now: kept.
        let current = read_key(gateway, key).await?;
        if let Some(current) = current.filter(|current| current.thumbprint() != *thumbprint) {
            problems.push(format!(
                "key {key} holds another certificate than the rotation's ({}): kept",
                current.describe()
            ));
        } else if problems.is_empty() {
            if let Err(reason) = delete_unused_key(gateway, key).await {
                problems.push(format!(
                    "key {key} ({}) was not deleted: {reason}",
                    key.id()
                ));
            }
        } else {
            problems.push(format!(
                "key {key} ({}) is kept until the listen ports above are sorted out",
                key.id()
            ));
        }
    }
    if problems.is_empty() {
        tracing::info!(
            step = %context.step_id,
            "{NAME}: listen ports {} present their previous keys again{}",
            restored.join(", "),
            if created { "; the rotation's key was deleted" } else { "" }
        );
        return Ok(());
    }
    Err(ActionError::failed(format!(
        "{NAME} undo on gateway `{}`: {}{}",
        gateway.name,
        problems.join("; "),
        if restored.is_empty() {
            String::new()
        } else {
            format!(" (restored and verified: {})", restored.join(", "))
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_records_read_back() -> Result<(), Box<dyn std::error::Error>> {
        let record = KeyRotateUndo::Switched {
            key: KeyRef::new("ks", "new"),
            created: true,
            thumbprint: "ab".to_owned(),
            ports: vec![PortBefore {
                name: "Default HTTPS (8443)".to_owned(),
                port: 8443,
                previous: KeyRef::new("ks", "ssl"),
            }],
        };
        let value = undo_record(&record)?;
        assert_eq!(value["kind"], "switched");
        assert_eq!(value["ports"][0]["previous"]["alias"], "ssl");
        assert_eq!(serde_json::from_value::<KeyRotateUndo>(value)?, record);
        Ok(())
    }
}
