//! `kong.cert_rotate` ([`KongCertRotate`]): replaces the certificate Kong serves for
//! some SNIs by a new one, checked before anything is written ([`NewCertificate`]),
//! proved by TLS handshakes through the proxy ([`served_leaf`]), and rolled back on
//! any failure after the first write.
//!
//! Order of writes: create the new certificate (tagged `runsheet-rotation:<id>`), move
//! each SNI to it (`PATCH /snis/{name}`), then check the proxy's TLS listener presents
//! it for every SNI. The old certificate is never deleted, so undo (and a rollback)
//! only moves the SNIs back and deletes the new certificate, without needing a
//! private key. SNIs are always moved back before the new certificate is deleted:
//! deleting a certificate deletes the SNIs attached to it.

use std::time::Duration;

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::certificate_check::{NewCertificate, leaf_der, not_after, sha256_hex};
use super::client::{KongClient, is_uuid, segment};
use super::gateway::KongGateway;
use super::rotation::{
    DEFAULT_VERIFY_TIMEOUT, RotationId, TAG_PREFIX, VERIFY_INTERVAL, now_seconds, rfc3339, tags_of,
    text,
};
use crate::served_certificate::{TlsEndpoint, served_leaf, server_name_for};
use super::{CertVerifyArguments, FAMILY, KongCertRotateArguments};
use crate::arguments::parse;

/// The action's name.
const NAME: &str = "kong.cert_rotate";

/// The longest a single verification handshake may take.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

/// The outputs of `kong.cert_rotate`.
pub const OUTPUTS: &[&str] = &[
    "certificate_id",
    "previous_certificate_id",
    "snis",
    "not_after",
    "rotation_id",
];

/// The `kong.cert_rotate` action.
#[derive(Debug, Clone)]
pub struct KongCertRotate {
    spec: ActionSpec,
}

impl KongCertRotate {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<KongCertRotateArguments>(
                NAME,
                FAMILY,
                "Adds a new certificate and moves SNIs to it, keeping the old one; undo moves them back.",
                Effect::write().reversible(),
            )
            .target(TargetKind::Gateway("kong"))
            .outputs(OUTPUTS),
        }
    }
}

impl Default for KongCertRotate {
    fn default() -> Self {
        Self::new()
    }
}

/// What undo needs: which SNIs go back to which certificate, and the certificate to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRotateUndo {
    /// The certificate the SNIs were on (kept by the rotation).
    pub previous_certificate_id: String,
    /// The certificate the rotation created.
    pub certificate_id: String,
    /// The SNIs moved.
    pub snis: Vec<String>,
}

#[async_trait::async_trait]
impl Action for KongCertRotate {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let wanted = Wanted::read(arguments, context).await?;
        let gateway = KongGateway::for_step(context).await?;
        let prepared = wanted.prepare(&gateway, context).await?;
        if prepared.already_served(&wanted) {
            return Ok(Change::none(prepared.no_change_words()));
        }
        let verify = match &prepared.endpoint {
            Some(_) => format!(
                ", verify by TLS handshake through {}",
                gateway.proxy_tls_url.as_deref().unwrap_or_default()
            ),
            None => ", no handshake check (verify.skip)".to_owned(),
        };
        let summary = format!(
            "create certificate ({}), move SNIs {} from {}{verify}",
            wanted.new.describe(),
            prepared.snis.join(", "),
            prepared.old.id
        );
        Ok(Change::between(
            summary,
            Some(sni_lines(&prepared.snis, &prepared.old.id)),
            sni_lines(&prepared.snis, "<new certificate>"),
        ))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let wanted = Wanted::read(arguments, context).await?;
        let gateway = KongGateway::for_step(context).await?;
        let client = &gateway.client;
        // Every check runs here, before the first write.
        let prepared = wanted.prepare(&gateway, context).await?;
        if prepared.already_served(&wanted) {
            return Ok(Applied {
                outputs: outputs(&prepared.old.id, &prepared.old.id, &prepared, &wanted, None),
                undo: None,
                change: Some(Change::none(prepared.no_change_words())),
                secrets: vec![wanted.key.clone()],
            });
        }
        let rotation = RotationId::new(prepared.snis.first().map_or("certificate", String::as_str));
        let new_id = create(client, &wanted, &rotation).await?;
        let record = CertRotateUndo {
            previous_certificate_id: prepared.old.id.clone(),
            certificate_id: new_id.clone(),
            snis: prepared.snis.clone(),
        };

        let mut moved: Vec<String> = Vec::new();
        let mut failure = None;
        let mut in_doubt = None;
        for sni in &prepared.snis {
            match move_sni(client, sni, &new_id).await {
                Ok(()) => moved.push(sni.clone()),
                Err(error) => {
                    // Kong may have applied the PATCH whose answer was lost: move it back too.
                    moved.push(sni.clone());
                    if matches!(error, ActionError::PartiallyApplied { .. }) {
                        // Unanswered and not seen since: it may land after the move back.
                        in_doubt = Some(format!("SNI {sni}: may still be moved to certificate {new_id}"));
                    }
                    failure = Some(format!("moving SNI {sni} to the new certificate: {error}"));
                    break;
                }
            }
        }
        if failure.is_none()
            && let Some(endpoint) = &prepared.endpoint
        {
            failure = verify_served(endpoint, &prepared.snis, &wanted, context)
                .await
                .err();
        }
        if let Some(failure) = failure {
            let rolled_back = roll_back(client, &moved, &prepared.old.id, &new_id).await;
            let outcome = match &rolled_back {
                Ok(()) => format!(
                    "rolled back: the SNIs are on certificate {} again and the new certificate was deleted",
                    prepared.old.id
                ),
                Err(error) => format!("rolling back failed: {error}"),
            };
            let message = format!(
                "certificate rotation for {}: {failure}; {outcome}",
                prepared.snis.join(", ")
            );
            return Err(match rolled_back {
                Ok(()) => match in_doubt {
                    None => ActionError::failed(message),
                    Some(doubt) => ActionError::partially_applied(message, vec![doubt]),
                },
                // SNIs may be on the new certificate: the run must not end "rolled back".
                Err(_) => {
                    let mut left: Vec<String> = moved
                        .iter()
                        .map(|sni| format!("SNI {sni}: may be on certificate {new_id}"))
                        .collect();
                    left.push(format!("certificate {new_id}: created, may not be deleted"));
                    ActionError::partially_applied(message, left)
                }
            });
        }

        let summary = format!(
            "created certificate {new_id} ({}), moved SNIs {} from {}{}",
            wanted.new.describe(),
            prepared.snis.join(", "),
            prepared.old.id,
            if prepared.endpoint.is_some() {
                ", served through the proxy"
            } else {
                ", not verified (verify.skip)"
            }
        );
        let change = Change::between(
            summary,
            Some(sni_lines(&prepared.snis, &prepared.old.id)),
            sni_lines(&prepared.snis, &new_id),
        );
        let undo = serde_json::to_value(&record)
            .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
        Ok(Applied {
            outputs: outputs(
                &new_id,
                &prepared.old.id,
                &prepared,
                &wanted,
                Some(&rotation),
            ),
            undo: Some(undo),
            change: Some(change),
            secrets: vec![wanted.key.clone()],
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        _arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let record: CertRotateUndo = crate::arguments::undo_record(NAME, undo)?;
        let gateway = KongGateway::for_step(context).await?;
        let client = &gateway.client;
        let old = &record.previous_certificate_id;
        let Some(previous) = client
            .find(&format!("/certificates/{}", segment(old)))
            .await?
        else {
            return Err(ActionError::failed(format!(
                "the previous certificate {old} no longer exists: SNIs {} stay on certificate {}",
                record.snis.join(", "),
                record.certificate_id
            )));
        };
        // Moving SNIs back to a certificate that expired since would break every client.
        if let Some(not_after) = not_after(&text(&previous, "cert"))
            && not_after <= now_seconds()
        {
            return Err(ActionError::failed(format!(
                "the previous certificate {old} expired at {}: moving SNIs {} back would serve an expired certificate; they stay on certificate {}",
                rfc3339(not_after),
                record.snis.join(", "),
                record.certificate_id
            )));
        }
        for sni in &record.snis {
            match client.find(&format!("/snis/{}", segment(sni))).await? {
                Some(found) if reference_id(&found, "certificate") == Some(old.as_str()) => {}
                Some(_) => move_sni(client, sni, old).await.map_err(|error| {
                    ActionError::failed(format!("moving SNI {sni} back to {old}: {error}"))
                })?,
                // Deleted since: back as it was.
                None => {
                    client
                        .post("/snis", &json!({"name": sni, "certificate": {"id": old}}))
                        .await
                        .map_err(|error| {
                            ActionError::failed(format!("re-creating SNI {sni} on {old}: {error}"))
                        })?;
                }
            }
        }
        delete_new(client, &record.certificate_id).await
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let wanted = Wanted::read(arguments, context).await?;
        let gateway = KongGateway::for_step(context).await?;
        let client = &gateway.client;
        let certificates = client.list("/certificates").await?;
        let created: Vec<&Value> = certificates
            .iter()
            .filter(|certificate| {
                tags_of(certificate)
                    .iter()
                    .any(|tag| tag.starts_with(TAG_PREFIX))
                    && leaf_der(&text(certificate, "cert")).as_deref()
                        == Some(wanted.new.leaf.as_slice())
            })
            .collect();
        if created.is_empty() {
            return Ok(Probe::NotDone);
        }
        let described: Vec<String> = created
            .iter()
            .map(|certificate| {
                let snis: Vec<String> = certificate
                    .get("snis")
                    .and_then(Value::as_array)
                    .map(|snis| {
                        snis.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "certificate {} ({}) with SNIs [{}]",
                    text(certificate, "id"),
                    tags_of(certificate).join(","),
                    snis.join(", ")
                )
            })
            .collect();
        Ok(Probe::Unknown(format!(
            "a rotation already created the new certificate (sha256 {}): {}. If its SNIs are all there, the rotation took effect; if not, move them back to the old certificate and delete it (kong.entity certificate absent) before rerunning",
            wanted.new.fingerprint(),
            described.join("; ")
        )))
    }
}

/// The checked arguments, with the new certificate parsed.
#[derive(Debug, Clone)]
struct Wanted {
    certificate: String,
    cert: String,
    key: String,
    snis: Option<Vec<String>>,
    verify: CertVerifyArguments,
    new: NewCertificate,
}

impl Wanted {
    /// Reads the rendered arguments (`cert` and `key` as PEM, or files holding it) and
    /// checks the new certificate and key.
    async fn read(arguments: Value, context: &StepContext) -> Result<Self, ActionError> {
        let mut arguments: KongCertRotateArguments = parse(NAME, arguments)?;
        arguments.cert = pem_or_file("cert", arguments.cert, context).await?;
        arguments.key = pem_or_file("key", arguments.key, context).await?;
        let new = NewCertificate::check(&arguments.cert, &arguments.key, now_seconds())
            .map_err(|reason| ActionError::failed(format!("{reason}; nothing was changed")))?;
        if arguments.certificate.is_empty() {
            return Err(ActionError::InvalidArguments {
                action: NAME,
                message: "`certificate` is empty".to_owned(),
            });
        }
        if arguments.verify.skip && arguments.verify.timeout.is_some() {
            return Err(ActionError::InvalidArguments {
                action: NAME,
                message: "`verify.skip: true` takes no `timeout`".to_owned(),
            });
        }
        Ok(Self {
            certificate: arguments.certificate,
            cert: arguments.cert,
            key: arguments.key,
            snis: arguments.snis,
            verify: arguments.verify,
            new,
        })
    }

    /// Finds the old certificate and the SNIs to move, and checks everything that can
    /// be checked before writing (SNIs attached to it, covered by the new certificate,
    /// a TLS listener to verify through).
    async fn prepare(
        &self,
        gateway: &KongGateway,
        context: &StepContext,
    ) -> Result<Prepared, ActionError> {
        let client = &gateway.client;
        let old = find_old(client, &self.certificate).await?;
        let snis = match &self.snis {
            Some(snis) => {
                if snis.is_empty() {
                    return Err(ActionError::InvalidArguments {
                        action: NAME,
                        message:
                            "`snis` is empty: leave it out to move every SNI of the certificate"
                                .to_owned(),
                    });
                }
                let foreign: Vec<&str> = snis
                    .iter()
                    .filter(|sni| !old.snis.contains(sni))
                    .map(String::as_str)
                    .collect();
                if !foreign.is_empty() {
                    return Err(ActionError::failed(format!(
                        "SNI {} not attached to certificate {} (its SNIs: {}); nothing was changed",
                        foreign.join(", "),
                        old.id,
                        or_none(&old.snis)
                    )));
                }
                snis.clone()
            }
            None => old.snis.clone(),
        };
        if snis.is_empty() {
            return Err(ActionError::failed(format!(
                "certificate {} has no SNIs to move; nothing was changed",
                old.id
            )));
        }
        let uncovered = self.new.uncovered(&snis);
        if !uncovered.is_empty() {
            return Err(ActionError::failed(format!(
                "the new certificate does not cover SNI {} (its DNS names: {}); nothing was changed",
                uncovered.join(", "),
                or_none(&self.new.dns_names)
            )));
        }
        let endpoint = if self.verify.skip {
            tracing::warn!(
                step = %context.step_id,
                "kong.cert_rotate: the proxy is not checked to serve the new certificate (verify.skip: true)"
            );
            None
        } else {
            let url = gateway.proxy_tls_url.as_deref().ok_or_else(|| {
                ActionError::failed(format!(
                    "gateway `{}` has no `proxy_tls_url`: the move is checked by TLS handshakes through the proxy; set it in the environment, or `verify: {{skip: true}}`; nothing was changed",
                    gateway.name
                ))
            })?;
            Some(TlsEndpoint::parse(url).map_err(|reason| {
                ActionError::failed(format!(
                    "gateway `{}`: proxy_tls_url: {reason}",
                    gateway.name
                ))
            })?)
        };
        Ok(Prepared {
            old,
            snis,
            endpoint,
        })
    }
}

/// A PEM text as given, or the content of the file it names (relative to the playbook's
/// directory) when it holds no PEM header. The error names the file, never its content.
pub(super) async fn pem_or_file(
    field: &str,
    value: String,
    context: &StepContext,
) -> Result<String, ActionError> {
    if value.contains("-----BEGIN") {
        return Ok(value);
    }
    let path = context.base_dir.join(value.trim());
    tokio::fs::read_to_string(&path).await.map_err(|error| {
        // A key given in another form must not be printed as if it were a path.
        let named = if field == "key" {
            "the file it names".to_owned()
        } else {
            path.display().to_string()
        };
        ActionError::failed(format!(
            "`{field}` holds no PEM (-----BEGIN ...) and is not a readable file ({named}: {error}); nothing was changed"
        ))
    })
}

/// The old certificate as found.
#[derive(Debug, Clone)]
pub(super) struct Old {
    /// Its id.
    pub(super) id: String,
    /// The SNI names attached to it.
    pub(super) snis: Vec<String>,
    /// Its leaf certificate's DER bytes, when readable.
    pub(super) leaf: Option<Vec<u8>>,
}

/// What the rotation works on, checked.
#[derive(Debug, Clone)]
struct Prepared {
    old: Old,
    snis: Vec<String>,
    endpoint: Option<TlsEndpoint>,
}

impl Prepared {
    /// Whether the certificate the SNIs are on is already the new one (a rerun).
    fn already_served(&self, wanted: &Wanted) -> bool {
        self.old.leaf.as_deref() == Some(wanted.new.leaf.as_slice())
    }

    /// The summary when nothing changes.
    fn no_change_words(&self) -> String {
        format!(
            "SNIs {} already on certificate {} with this content, no change",
            self.snis.join(", "),
            self.old.id
        )
    }
}

/// The certificate by id, or the one an SNI of that name is attached to.
pub(super) async fn find_old(client: &KongClient, certificate: &str) -> Result<Old, ActionError> {
    let id = if is_uuid(certificate) {
        certificate.to_owned()
    } else {
        let sni = client
            .find(&format!("/snis/{}", segment(certificate)))
            .await?
            .ok_or_else(|| {
                ActionError::failed(format!(
                    "no SNI `{certificate}` on the gateway ({}/snis/{}): give the certificate's id or one of its SNI names",
                    client.base_url(),
                    segment(certificate)
                ))
            })?;
        reference_id(&sni, "certificate")
            .map(str::to_owned)
            .ok_or_else(|| ActionError::failed(format!("SNI `{certificate}` has no certificate")))?
    };
    let found = client
        .find(&format!("/certificates/{}", segment(&id)))
        .await?
        .ok_or_else(|| {
            ActionError::failed(format!(
                "certificate `{id}` not found on the gateway ({}/certificates/{})",
                client.base_url(),
                segment(&id)
            ))
        })?;
    let snis = found
        .get("snis")
        .and_then(Value::as_array)
        .map(|snis| {
            snis.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Old {
        id: text(&found, "id"),
        snis,
        leaf: leaf_der(&text(&found, "cert")),
    })
}

/// Creates the new certificate (without SNIs), tagged with the rotation; its id. When
/// the POST fails, anything stored with the rotation's tag anyway is deleted.
async fn create(
    client: &KongClient,
    wanted: &Wanted,
    rotation: &RotationId,
) -> Result<String, ActionError> {
    let body = json!({"cert": wanted.cert, "key": wanted.key, "tags": [rotation.tag()]});
    match client.post("/certificates", &body).await {
        Ok(created) => Ok(text(&created, "id")),
        Err(error) if error.is_unanswered() => {
            // Kong may store it late: wait for it, and go on with it if it comes.
            let path = format!("/certificates?tags={}", segment(&rotation.tag()));
            let stored = client
                .look_again(|| async {
                    client
                        .list(&path)
                        .await
                        .ok()
                        .and_then(|found| found.first().map(|certificate| text(certificate, "id")))
                })
                .await;
            stored.ok_or_else(|| {
                ActionError::partially_applied(
                    format!("creating the new certificate: {error}; the SNIs are untouched"),
                    vec![format!(
                        "a certificate tagged {} may still be stored: delete it",
                        rotation.tag()
                    )],
                )
            })
        }
        Err(error) => {
            let cleanup = match remove_tagged(client, rotation).await {
                Ok(0) => String::new(),
                Ok(count) => format!("; {count} certificate(s) stored anyway were deleted"),
                Err(cleanup) => {
                    format!("; looking for a certificate stored anyway failed: {cleanup}")
                }
            };
            Err(ActionError::failed(format!(
                "creating the new certificate failed: {error}{cleanup}; the SNIs are untouched"
            )))
        }
    }
}

/// Deletes the certificates tagged with `rotation` (they carry no SNI yet); how many.
async fn remove_tagged(client: &KongClient, rotation: &RotationId) -> Result<usize, ActionError> {
    let tagged = client
        .list(&format!("/certificates?tags={}", segment(&rotation.tag())))
        .await?;
    for certificate in &tagged {
        client
            .delete(&format!(
                "/certificates/{}",
                segment(&text(certificate, "id"))
            ))
            .await?;
    }
    Ok(tagged.len())
}

/// Points an SNI at a certificate.
/// A move Kong did not answer in time is looked for again, and counts as done once it shows.
async fn move_sni(client: &KongClient, sni: &str, certificate_id: &str) -> Result<(), ActionError> {
    let path = format!("/snis/{}", segment(sni));
    match client
        .patch(&path, &json!({"certificate": {"id": certificate_id}}))
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if error.is_unanswered() => {
            let moved = client
                .look_again(|| async {
                    client.find(&path).await.ok().flatten().filter(|found| {
                        found.pointer("/certificate/id").and_then(Value::as_str)
                            == Some(certificate_id)
                    })
                })
                .await;
            moved.map(drop).ok_or_else(|| error.into())
        }
        Err(error) => Err(error.into()),
    }
}

/// Moves `moved` (the SNIs moved, and the one whose move failed: it may have been applied)
/// back to `old_id`, then, if every one went back, deletes `new_id`.
async fn roll_back(
    client: &KongClient,
    moved: &[String],
    old_id: &str,
    new_id: &str,
) -> Result<(), ActionError> {
    let mut failed = Vec::new();
    for sni in moved {
        if let Err(error) = move_sni(client, sni, old_id).await {
            failed.push(format!("{sni}: {error}"));
        }
    }
    if !failed.is_empty() {
        return Err(ActionError::failed(format!(
            "SNIs not moved back to {old_id} ({}); the new certificate {new_id} is kept so that they keep a certificate",
            failed.join("; ")
        )));
    }
    delete_new(client, new_id).await
}

/// Deletes the rotation's certificate unless SNIs are still on it (deleting it would
/// delete them); already gone counts as done.
async fn delete_new(client: &KongClient, new_id: &str) -> Result<(), ActionError> {
    let path = format!("/certificates/{}", segment(new_id));
    let Some(certificate) = client.find(&path).await? else {
        return Ok(());
    };
    let attached: Vec<&str> = certificate
        .get("snis")
        .and_then(Value::as_array)
        .map(|snis| snis.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !attached.is_empty() {
        return Err(ActionError::failed(format!(
            "certificate {new_id} is kept: SNIs {} are attached to it (deleting it would delete them)",
            attached.join(", ")
        )));
    }
    client.delete(&path).await?;
    Ok(())
}

/// Checks by TLS handshakes that the proxy presents the new certificate for every SNI,
/// retrying until the verify timeout while the gateway propagates the change.
async fn verify_served(
    endpoint: &TlsEndpoint,
    snis: &[String],
    wanted: &Wanted,
    context: &StepContext,
) -> Result<(), String> {
    let timeout = wanted
        .verify
        .timeout
        .map_or(DEFAULT_VERIFY_TIMEOUT, |timeout| timeout.0);
    let deadline = tokio::time::Instant::now() + timeout;
    for sni in snis {
        let name = server_name_for(sni);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let limit = left.clamp(Duration::from_millis(100), HANDSHAKE_LIMIT);
            let last = match served_leaf(endpoint, &name, &context.base_dir, limit).await {
                Ok(leaf) if leaf == wanted.new.leaf => break,
                Ok(leaf) => format!(
                    "it presents another certificate (sha256 {}, expected {})",
                    sha256_hex(&leaf),
                    wanted.new.fingerprint()
                ),
                Err(reason) => reason,
            };
            if tokio::time::Instant::now() + VERIFY_INTERVAL >= deadline {
                return Err(format!(
                    "the proxy at {}:{} did not serve the new certificate for {sni} (server name `{name}`) within {}s: {last}",
                    endpoint.host,
                    endpoint.port,
                    timeout.as_secs_f32()
                ));
            }
            tokio::time::sleep(VERIFY_INTERVAL).await;
        }
    }
    Ok(())
}

/// The step's outputs.
fn outputs(
    certificate_id: &str,
    previous_id: &str,
    prepared: &Prepared,
    wanted: &Wanted,
    rotation: Option<&RotationId>,
) -> Map<String, Value> {
    let mut outputs = Map::new();
    outputs.insert("certificate_id".to_owned(), Value::from(certificate_id));
    outputs.insert(
        "previous_certificate_id".to_owned(),
        Value::from(previous_id),
    );
    outputs.insert(
        "snis".to_owned(),
        Value::from(
            prepared
                .snis
                .iter()
                .map(|sni| Value::from(sni.clone()))
                .collect::<Vec<_>>(),
        ),
    );
    outputs.insert(
        "not_after".to_owned(),
        Value::from(rfc3339(wanted.new.not_after)),
    );
    outputs.insert(
        "rotation_id".to_owned(),
        rotation.map_or(Value::Null, |rotation| Value::from(rotation.0.clone())),
    );
    outputs
}

/// The id a foreign key of an entity points at.
fn reference_id<'a>(entity: &'a Value, field: &str) -> Option<&'a str> {
    entity
        .get(field)
        .and_then(|reference| reference.get("id"))
        .and_then(Value::as_str)
}

/// `sni -> certificate` lines, for a Change's before/after.
fn sni_lines(snis: &[String], certificate: &str) -> String {
    snis.iter()
        .map(|sni| format!("{sni} -> {certificate}\n"))
        .collect()
}

/// The names joined, or `none`.
fn or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_records_read_back() -> Result<(), serde_json::Error> {
        let record = CertRotateUndo {
            previous_certificate_id: "old".to_owned(),
            certificate_id: "new".to_owned(),
            snis: vec!["a.example.com".to_owned()],
        };
        let value = serde_json::to_value(&record)?;
        assert_eq!(serde_json::from_value::<CertRotateUndo>(value)?, record);
        Ok(())
    }

    #[test]
    fn sni_lines_name_each_sni() {
        assert_eq!(
            sni_lines(&["a".to_owned(), "b".to_owned()], "c1"),
            "a -> c1\nb -> c1\n"
        );
    }
}
