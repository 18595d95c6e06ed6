//! `layer7.key_rotate` ([`Layer7KeyRotate`]): a new private key, listen ports switched
//! to it, proved by TLS handshakes; undo switches them back.
//!
//! Everything is checked before the first write ([`super::key_rotate_checks`]): the listen ports exist,
//! are enabled HTTPS ports, and the alias is free (or holds the `pem`'s certificate).
//! Then: the key is created (`generate`: restman `POST privateKeys/{ks}:{alias}` with a
//! `PrivateKeyCreationContext`, which carries the DN; `pem`: Graphman `setKeys`, since
//! restman imports keys only as PKCS#12), each port is switched with Graphman
//! `updateListenPort` (a partial update of `tlsSettings` only: the port's other
//! settings cannot be lost by a read-modify-write), and a handshake on each port must
//! show the new certificate. Any failure after the first write switches the ports back
//! and deletes the key the step created ([`rollback`]), or names what is left.

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde_json::{Map, Value, json};

use super::gateway::Layer7Gateway;
use super::graphman::GraphmanOptions;
use super::graphman::types::KeyInput;
use super::key_material::KeyCertificate;
use super::key_rotate_checks::{PortPlan, Prepared, Source, Wanted, prepare};
use super::key_rotate_undo::{KeyRotateUndo, PortBefore, roll_back, undo_record};
use super::listen_port_keys::{
    KeyRef, endpoint, read_key, read_port, switch_port, verify_timeout, wait_until_served,
};
use super::restman::PrivateKeyCreationContext;
use super::{FAMILY, Layer7KeyRotateArguments};

/// The action's type name.
pub const NAME: &str = "layer7.key_rotate";

/// The outputs of `layer7.key_rotate`.
pub const OUTPUTS: &[&str] = &[
    "alias",
    "key_id",
    "thumbprint",
    "subject",
    "not_after",
    "certificate_pem",
    "dns_names",
    "host",
    "ports",
    "listen_ports",
    "created",
    "changed",
];

/// The `layer7.key_rotate` action.
#[derive(Debug, Clone)]
pub struct Layer7KeyRotate {
    spec: ActionSpec,
}

impl Layer7KeyRotate {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<Layer7KeyRotateArguments>(
                NAME,
                FAMILY,
                "Adds a private key and switches listen ports to it, verified by a TLS handshake; undo switches back.",
                Effect::write().reversible(),
            )
            .target(TargetKind::Gateway("layer7"))
            .outputs(OUTPUTS),
        }
    }
}

impl Default for Layer7KeyRotate {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for Layer7KeyRotate {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let wanted = Wanted::read(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let prepared = prepare(&gateway, &wanted).await?;
        if prepared.done(&wanted) {
            return Ok(Change::none(no_change_words(&wanted, &prepared)));
        }
        let key_words = match &prepared.existing {
            Some(existing) => format!(
                "use the existing key {} ({})",
                wanted.key,
                existing.describe()
            ),
            None => format!("create key {} ({})", wanted.key, wanted.describe_new()),
        };
        let summary = format!(
            "{key_words}; switch listen ports {}; verify by TLS handshake that each presents it",
            switch_words(&wanted, &prepared)
        );
        Ok(Change::between(
            summary,
            Some(prepared.lines(|plan| plan.previous.to_string())),
            prepared.lines(|_| wanted.key.to_string()),
        ))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let wanted = Wanted::read(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let prepared = prepare(&gateway, &wanted).await?;
        let endpoints = prepared
            .ports
            .iter()
            .map(|plan| endpoint(&gateway, plan.port.port))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ActionError::failed)?;
        if prepared.done(&wanted) {
            let certificate = prepared
                .existing
                .clone()
                .ok_or_else(|| ActionError::failed(format!("{NAME}: the existing key vanished")))?;
            return Ok(Applied {
                outputs: outputs(&gateway, &wanted, &prepared, &certificate, false, false),
                undo: None,
                change: Some(Change::none(no_change_words(&wanted, &prepared))),
                secrets: wanted.secrets(),
            });
        }
        let created = prepared.existing.is_none();
        let certificate = match &prepared.existing {
            Some(existing) => existing.clone(),
            None => create_key(&gateway, &wanted).await?,
        };
        let record = KeyRotateUndo::Switched {
            key: wanted.key.clone(),
            created,
            thumbprint: certificate.thumbprint(),
            ports: prepared
                .ports
                .iter()
                .map(|plan| PortBefore {
                    name: plan.port.name.clone(),
                    port: plan.port.port,
                    previous: plan.previous.clone(),
                })
                .collect(),
        };

        let mut touched: Vec<PortBefore> = Vec::new();
        let mut failure = None;
        let mut in_doubt = Vec::new();
        for plan in prepared
            .ports
            .iter()
            .filter(|plan| plan.previous != wanted.key)
        {
            // A switch whose answer was lost may have been applied: it goes back too.
            touched.push(PortBefore {
                name: plan.port.name.clone(),
                port: plan.port.port,
                previous: plan.previous.clone(),
            });
            match switch_port(&gateway, &plan.port.name, &wanted.key).await {
                Ok(()) => {}
                Err(error)
                    if error.is_unanswered()
                        && switched_late(&gateway, &plan.port.name, &wanted.key).await => {}
                Err(error) => {
                    if error.is_unanswered() {
                        in_doubt.push(format!(
                            "listen port `{}`: may still be switched to key {}",
                            plan.port.name, wanted.key
                        ));
                    }
                    failure = Some(format!(
                        "switching listen port `{}` to key {}: {error}",
                        plan.port.name, wanted.key
                    ));
                    break;
                }
            }
        }
        if failure.is_none() {
            let timeout = verify_timeout(context.timeout);
            for (plan, endpoint) in prepared.ports.iter().zip(&endpoints) {
                if let Err(reason) =
                    wait_until_served(endpoint, &certificate.der, &context.base_dir, timeout).await
                {
                    failure = Some(format!(
                        "listen port `{}` does not serve the new certificate: {reason}",
                        plan.port.name
                    ));
                    break;
                }
            }
        }
        if let Some(failure) = failure {
            let (outcome, mut left) = roll_back(&gateway, &touched, &wanted.key, created).await;
            // A switch the gateway may still apply after the roll-back put the port back.
            left.extend(in_doubt);
            return Err(failed_leaving(
                format!("{NAME} on gateway `{}`: {failure}; {outcome}", gateway.name),
                left,
            ));
        }

        let change = Change::between(
            format!(
                "{} key {} ({}), switched listen ports {}, each verified by TLS handshake",
                if created {
                    "created"
                } else {
                    "used the existing"
                },
                wanted.key,
                certificate.describe(),
                switch_words(&wanted, &prepared)
            ),
            Some(prepared.lines(|plan| plan.previous.to_string())),
            prepared.lines(|_| wanted.key.to_string()),
        );
        Ok(Applied {
            outputs: outputs(&gateway, &wanted, &prepared, &certificate, created, true),
            undo: Some(undo_record(&record)?),
            change: Some(change),
            secrets: wanted.secrets(),
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        _arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let record: KeyRotateUndo = crate::arguments::undo_record(NAME, undo)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        super::key_rotate_undo::undo(&gateway, &record, context).await
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let wanted = Wanted::read(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let Some(existing) = read_key(&gateway, &wanted.key).await? else {
            return Ok(Probe::NotDone);
        };
        if let Source::Pem { checked, .. } = &wanted.source
            && checked.leaf.der != existing.der
        {
            return Ok(Probe::Unknown(format!(
                "private key {} exists with another certificate ({}) than the pem's: look at it before rerunning",
                wanted.key,
                existing.describe()
            )));
        }
        let mut ports = Vec::new();
        let mut elsewhere = Vec::new();
        for name in &wanted.ports {
            let port = read_port(&gateway, name).await?;
            match port {
                Some(port) if port.named_key.as_ref() == Some(&wanted.key) => {
                    ports.push(PortPlan {
                        previous: wanted.key.clone(),
                        port,
                    })
                }
                _ => elsewhere.push(name.clone()),
            }
        }
        if !elsewhere.is_empty() {
            return Ok(Probe::Unknown(format!(
                "private key {} exists ({}) but listen ports {} do not present it: a rotation was interrupted; switch them to it (or the others back) and delete the key if unused, then rerun",
                wanted.key,
                existing.describe(),
                elsewhere.join(", ")
            )));
        }
        let prepared = Prepared {
            ports,
            existing: Some(existing.clone()),
        };
        let record = KeyRotateUndo::Lost {
            key: wanted.key.clone(),
            ports: wanted.ports.clone(),
        };
        Ok(Probe::Done(Applied {
            outputs: outputs(&gateway, &wanted, &prepared, &existing, false, true),
            undo: Some(undo_record(&record)?),
            change: None,
            secrets: wanted.secrets(),
        }))
    }
}

/// Creates the key; its certificate as the gateway stored it. A failed create whose key
/// exists anyway (an answer lost) is deleted again.
async fn create_key(
    gateway: &Layer7Gateway,
    wanted: &Wanted,
) -> Result<KeyCertificate, ActionError> {
    let key = &wanted.key;
    let created = match &wanted.source {
        Source::Generate(generation) => gateway
            .restman
            .create_private_key(
                &key.keystore,
                &key.alias,
                &PrivateKeyCreationContext::rsa(
                    &generation.dn,
                    u32::from(generation.rsa_key_size),
                    generation.days_until_expiry,
                ),
            )
            .await
            .map(|_| ()),
        Source::Pem { text, .. } => gateway
            .graphman
            .set_keys(
                &[KeyInput {
                    keystore_id: key.keystore.clone(),
                    alias: key.alias.clone(),
                    subject_dn: None,
                    pem: Some(text.clone()),
                    key_generate_options: None,
                    usage_types: Vec::new(),
                }],
                &GraphmanOptions::default(),
            )
            .await
            .map(|_| ()),
    };
    let read_back = match created {
        Ok(()) => read_key(gateway, key).await,
        Err(error) if error.is_unanswered() => {
            // The gateway may store the key late: wait for it, and go on with it if it comes.
            let stored = crate::web::look_again(gateway.connection.answer_wait(), || async {
                read_key(gateway, key).await.ok().flatten()
            })
            .await;
            let Some(stored) = stored else {
                return Err(ActionError::partially_applied(
                    format!(
                        "{NAME} on gateway `{}`: creating private key {}: {error}; no listen port was changed",
                        gateway.name, key
                    ),
                    vec![format!(
                        "private key {key} ({}): may still be created; delete it if it appears",
                        key.id()
                    )],
                ));
            };
            Ok(Some(stored))
        }
        Err(error) => {
            let cleanup = match read_key(gateway, key).await {
                Ok(None) => String::new(),
                Ok(Some(_)) => match gateway
                    .restman
                    .delete::<super::restman::PrivateKey>(&key.id())
                    .await
                {
                    Ok(()) => "; the key stored anyway was deleted".to_owned(),
                    Err(cleanup) => format!(
                        "; the key was stored anyway and deleting it failed ({cleanup}): delete private key {} by hand",
                        key.id()
                    ),
                },
                Err(cleanup) => format!(
                    "; whether the key was stored anyway is unknown ({cleanup}): check private key {}",
                    key.id()
                ),
            };
            return Err(ActionError::failed(format!(
                "{NAME} on gateway `{}`: creating private key {} failed: {error}{cleanup}; no listen port was changed",
                gateway.name, key
            )));
        }
    };
    let certificate = match read_back {
        Ok(Some(certificate)) => certificate,
        Ok(None) => {
            return Err(ActionError::failed(format!(
                "{NAME} on gateway `{}`: private key {} was created but cannot be read back; no listen port was changed",
                gateway.name, key
            )));
        }
        Err(error) => {
            return Err(ActionError::failed(format!(
                "{NAME} on gateway `{}`: reading back private key {} failed: {error}; the key is left (delete {} by hand if unused); no listen port was changed",
                gateway.name,
                key,
                key.id()
            )));
        }
    };
    if let Source::Pem { checked, .. } = &wanted.source
        && checked.leaf.der != certificate.der
    {
        let (outcome, left) = roll_back(gateway, &[], key, true).await;
        return Err(failed_leaving(
            format!(
                "{NAME} on gateway `{}`: private key {} holds another certificate ({}) than the pem's ({}); {outcome}",
                gateway.name,
                key,
                certificate.describe(),
                checked.leaf.describe()
            ),
            left,
        ));
    }
    Ok(certificate)
}

/// `A, B from `ssl` to `new``.
fn switch_words(wanted: &Wanted, prepared: &Prepared) -> String {
    prepared
        .ports
        .iter()
        .map(|plan| format!("`{}` ({} -> {})", plan.port.name, plan.previous, wanted.key))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary when nothing changes.
fn no_change_words(wanted: &Wanted, prepared: &Prepared) -> String {
    let ports: Vec<String> = wanted
        .ports
        .iter()
        .map(|name| format!("`{name}`"))
        .collect();
    let key = prepared
        .existing
        .as_ref()
        .map_or_else(String::new, |existing| {
            format!(" ({})", existing.describe())
        });
    format!(
        "listen ports {} already present key {}{key}, no change",
        ports.join(", "),
        wanted.key
    )
}

/// The step's outputs.
fn outputs(
    gateway: &Layer7Gateway,
    wanted: &Wanted,
    prepared: &Prepared,
    certificate: &KeyCertificate,
    created: bool,
    changed: bool,
) -> Map<String, Value> {
    let host = endpoint(gateway, 0)
        .map(|endpoint| endpoint.host)
        .unwrap_or_default();
    let mut outputs = Map::new();
    outputs.insert("alias".to_owned(), Value::from(wanted.key.alias.clone()));
    outputs.insert("key_id".to_owned(), Value::from(wanted.key.id()));
    outputs.insert(
        "thumbprint".to_owned(),
        Value::from(certificate.thumbprint()),
    );
    outputs.insert(
        "subject".to_owned(),
        Value::from(certificate.subject.clone()),
    );
    outputs.insert(
        "not_after".to_owned(),
        Value::from(certificate.not_after_text()),
    );
    outputs.insert("certificate_pem".to_owned(), Value::from(certificate.pem()));
    outputs.insert(
        "dns_names".to_owned(),
        Value::from(certificate.dns_names.clone()),
    );
    outputs.insert("host".to_owned(), Value::from(host));
    outputs.insert(
        "ports".to_owned(),
        Value::Array(
            prepared
                .ports
                .iter()
                .map(|plan| {
                    json!({
                        "name": plan.port.name,
                        "port": plan.port.port,
                        "previous_alias": plan.previous.alias,
                    })
                })
                .collect(),
        ),
    );
    outputs.insert("listen_ports".to_owned(), Value::from(wanted.ports.clone()));
    outputs.insert("created".to_owned(), Value::Bool(created));
    outputs.insert("changed".to_owned(), Value::Bool(changed));
    outputs
}

/// After switching listen port `name` to `key` went unanswered: whether the port names
/// that key within the wait for one answer.
async fn switched_late(gateway: &Layer7Gateway, name: &str, key: &KeyRef) -> bool {
    crate::web::look_again(gateway.connection.answer_wait(), || async {
        matches!(
            read_port(gateway, name).await,
            Ok(Some(port)) if port.named_key.as_ref() == Some(key)
        )
        .then_some(())
    })
    .await
    .is_some()
}

/// A failure of the step: a plain one when its roll back put everything back, otherwise
/// one that names what is `left` for a person (the run cannot end "rolled back").
fn failed_leaving(message: String, left: Vec<String>) -> ActionError {
    if left.is_empty() {
        ActionError::failed(message)
    } else {
        ActionError::partially_applied(message, left)
    }
}
