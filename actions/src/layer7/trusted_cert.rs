//! `layer7.trusted_cert` ([`Layer7TrustedCert`]): makes a trusted certificate
//! present under a name, holding exactly the given certificate, or absent,
//! through restman.
//!
//! Certificates are compared by SHA-1 thumbprint (base64 of the DER's SHA-1,
//! as the gateway's `thumbprintSha1`), read with x509-parser
//! ([`CertificateFacts`]). The gateway keeps thumbprints unique, so the
//! certificate under another name is reported before anything is written.
//! The undo record holds the previous certificate's DER (a certificate is
//! public), the id of the entry created, or the entry deleted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::Layer7Error;
use super::gateway::Layer7Gateway;
use super::restman::entities::CertificateData;
use super::restman::{Properties, PropertyValue, RestmanClient, TrustedCertificate, WriteOptions};
use super::{FAMILY, Layer7TrustedCertArguments};
use crate::arguments::{Presence, parse};

/// The action's type name.
const NAME: &str = "layer7.trusted_cert";

/// Days before expiry from which the step warns.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The trust flags a certificate the step creates gets: trusted to verify
/// outbound TLS servers (as their certificate or their issuer), with hostname checks.
pub const NEW_CERTIFICATE_TRUST: &[(&str, bool)] = &[
    ("trustedForSsl", true),
    ("trustedForSigningClientCerts", false),
    ("trustedForSigningServerCerts", true),
    ("trustedAsSamlIssuer", false),
    ("trustedAsSamlAttestingEntity", false),
    ("trustAnchor", false),
    ("verifyHostname", true),
    ("revocationCheckingEnabled", false),
];

/// What the step reads of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// The DER bytes.
    pub der: Vec<u8>,
    /// Base64 of the DER's SHA-1 (the gateway's `thumbprintSha1`).
    pub thumbprint_sha1: String,
    /// The subject, as text (`CN=partner.example, O=Partner`).
    pub subject: String,
    /// The issuer, as text.
    pub issuer: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
}

impl CertificateFacts {
    /// Reads a PEM holding exactly one certificate; the error says what is wrong.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let mut certificates = Vec::new();
        for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
            let block = block.map_err(|error| {
                format!("`pem` is not readable PEM ({error}); expected one -----BEGIN CERTIFICATE----- block")
            })?;
            if block.label != "CERTIFICATE" {
                return Err(format!(
                    "`pem` holds a `{}` block; a trusted certificate takes only a certificate (-----BEGIN CERTIFICATE-----), never a key",
                    block.label
                ));
            }
            certificates.push(block.contents);
        }
        match certificates.len() {
            0 => Err(
                "`pem` holds no PEM certificate (expected a -----BEGIN CERTIFICATE----- block)"
                    .to_owned(),
            ),
            1 => Self::from_der(certificates.remove(0))
                .map_err(|error| format!("`pem`: the certificate cannot be read: {error}")),
            count => Err(format!(
                "`pem` holds {count} certificates; a trusted certificate is one certificate: give each its own step and name"
            )),
        }
    }

    /// Reads a DER certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Self, String> {
        let (rest, parsed) =
            x509_parser::parse_x509_certificate(&der).map_err(|error| error.to_string())?;
        if !rest.is_empty() {
            return Err(format!("{} bytes follow the certificate", rest.len()));
        }
        let facts = Self {
            thumbprint_sha1: thumbprint_sha1(&der),
            subject: parsed.subject().to_string(),
            issuer: parsed.issuer().to_string(),
            not_before: parsed.validity().not_before.timestamp(),
            not_after: parsed.validity().not_after.timestamp(),
            der: Vec::new(),
        };
        Ok(Self { der, ..facts })
    }

    /// Reads the certificate of a gateway entry (`l7:Encoded`, base64 DER).
    fn of_entry(entry: &TrustedCertificate) -> Result<Self, String> {
        let compact: String = entry.certificate.encoded.split_whitespace().collect();
        let der = STANDARD
            .decode(compact)
            .map_err(|error| format!("l7:Encoded is not base64: {error}"))?;
        Self::from_der(der)
    }

    /// The plan's text form.
    fn text(&self, name: &str) -> String {
        format!(
            "name: {name}\nsubject: {}\nissuer: {}\nnot_after: {}\nthumbprint_sha1: {}\n",
            self.subject,
            self.issuer,
            rfc3339(self.not_after),
            self.thumbprint_sha1
        )
    }

    /// `CN=x (sha1 AbC=, expires 2027-01-01T00:00:00Z)`.
    fn short(&self) -> String {
        format!(
            "{} (sha1 {}, expires {})",
            self.subject,
            self.thumbprint_sha1,
            rfc3339(self.not_after)
        )
    }

    /// What an operator should know about its validity at `now`; an expired certificate is
    /// a warning here (the step refuses to write one, see [`Wanted::refuse_expired`]).
    pub fn warnings(&self, now: i64) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.not_after < now {
            warnings.push(format!(
                "certificate {} expired on {}",
                self.subject,
                rfc3339(self.not_after)
            ));
        } else if self.not_after - now < EXPIRY_WARNING_DAYS * 86_400 {
            warnings.push(format!(
                "certificate {} expires on {} (in {} days): plan its replacement",
                self.subject,
                rfc3339(self.not_after),
                (self.not_after - now) / 86_400
            ));
        }
        if self.not_before > now {
            warnings.push(format!(
                "certificate {} is not valid before {}",
                self.subject,
                rfc3339(self.not_before)
            ));
        }
        warnings
    }
}

/// Base64 of the SHA-1 of `der` (Layer7's `thumbprintSha1`).
pub fn thumbprint_sha1(der: &[u8]) -> String {
    STANDARD.encode(sha1_smol::Sha1::from(der).digest().bytes())
}

/// Unix seconds as RFC 3339.
fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map_or_else(|_| seconds.to_string(), |t| t.to_string())
}

/// Now, Unix seconds.
fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// What `undo` restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrustedCertUndo {
    /// The step changed nothing.
    Unchanged,
    /// The step created the entry.
    Created {
        /// Its goid.
        id: String,
    },
    /// The step replaced the entry's certificate.
    Replaced {
        /// Its goid.
        id: String,
        /// The previous certificate, base64 DER.
        previous_der: String,
    },
    /// The step deleted the entry.
    Deleted {
        /// Its goid (re-created at the same id).
        id: String,
        /// Its name.
        name: String,
        /// Its certificate, base64 DER.
        der: String,
        /// Its trust flags.
        trust: Vec<(String, bool)>,
    },
}

/// The `layer7.trusted_cert` action.
#[derive(Debug, Clone)]
pub struct Layer7TrustedCert {
    spec: ActionSpec,
}

impl Layer7TrustedCert {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<Layer7TrustedCertArguments>(
                NAME,
                FAMILY,
                "Makes a trusted certificate present (exactly this certificate under this name) or absent.",
                Effect::write().idempotent().reversible(),
            )
            .target(TargetKind::Gateway("layer7"))
            .outputs(&["id", "changed", "thumbprint_sha1", "not_after", "warnings"]),
        }
    }
}

impl Default for Layer7TrustedCert {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for Layer7TrustedCert {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let client = &gateway.restman;
        let current = wanted.by_name(client).await?;
        if let Some(facts) = &wanted.certificate {
            wanted
                .check_writable(client, facts, current.as_ref())
                .await?;
        }
        Ok(wanted.change(current.as_ref()))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let client = &gateway.restman;
        let current = wanted.by_name(client).await?;
        let change = wanted.change(current.as_ref());
        let (id, undo, shown) = match (&wanted.certificate, current) {
            (Some(facts), current) => {
                wanted
                    .check_writable(client, facts, current.as_ref())
                    .await?;
                let (id, undo) = wanted.make_present(client, facts, current).await?;
                (Some(id), undo, Some(facts.clone()))
            }
            (None, Some(entry)) => {
                client
                    .delete::<TrustedCertificate>(&entry.id)
                    .await
                    .or_else(|error| {
                        if error.is_not_found() {
                            Ok(())
                        } else {
                            Err(error)
                        }
                    })?;
                let undo = TrustedCertUndo::Deleted {
                    id: entry.id.clone(),
                    name: entry.entry.name.clone(),
                    der: entry.entry.certificate.encoded.clone(),
                    trust: trust_flags(entry.entry.properties.as_ref()),
                };
                (Some(entry.id), undo, entry.facts)
            }
            (None, None) => (None, TrustedCertUndo::Unchanged, None),
        };
        let changed = !matches!(undo, TrustedCertUndo::Unchanged);
        let warnings = match (&wanted.certificate, &shown) {
            (Some(_), Some(facts)) => facts.warnings(now()),
            _ => Vec::new(),
        };
        for warning in &warnings {
            tracing::warn!(step = %context.step_id, certificate = %wanted.name, "{warning}");
        }
        let undo = serde_json::to_value(&undo)
            .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
        Ok(Applied {
            outputs: outputs(id.as_deref(), changed, shown.as_ref(), &warnings),
            undo: Some(undo),
            change: Some(change),
            secrets: Vec::new(),
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        _arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let undo: TrustedCertUndo = crate::arguments::undo_record(NAME, undo)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let client = &gateway.restman;
        match undo {
            TrustedCertUndo::Unchanged => Ok(()),
            TrustedCertUndo::Created { id } => {
                match client.delete::<TrustedCertificate>(&id).await {
                    // Already gone: nothing left to undo.
                    Err(error) if error.is_not_found() => Ok(()),
                    outcome => Ok(outcome?),
                }
            }
            TrustedCertUndo::Replaced { id, previous_der } => {
                let mut entry: TrustedCertificate = client.get(&id).await.map_err(|error| {
                    ActionError::failed(format!(
                        "{NAME}: cannot put the previous certificate back into trusted certificate {id}: {error}"
                    ))
                })?;
                if entry
                    .certificate
                    .encoded
                    .split_whitespace()
                    .collect::<String>()
                    == previous_der
                {
                    return Ok(());
                }
                entry.certificate = CertificateData {
                    encoded: previous_der,
                    ..CertificateData::default()
                };
                let described = format!("trusted certificate `{}`", entry.name);
                put(client, &id, &entry, &described).await
            }
            TrustedCertUndo::Deleted {
                id,
                name,
                der,
                trust,
            } => {
                match client.get::<TrustedCertificate>(&id).await {
                    Ok(_) => return Ok(()),
                    Err(error) if error.is_not_found() => {}
                    Err(error) => return Err(error.into()),
                }
                let mut properties = Properties::default();
                for (key, flag) in trust {
                    properties.set(&key, PropertyValue::Boolean(flag));
                }
                let entry = TrustedCertificate {
                    id: Some(id.clone()),
                    version: None,
                    name,
                    certificate: CertificateData {
                        encoded: der,
                        ..CertificateData::default()
                    },
                    properties: Some(properties),
                };
                client.put(&id, &entry, &WriteOptions::default()).await?;
                Ok(())
            }
        }
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let current = wanted.by_name(&gateway.restman).await?;
        let done = match (&wanted.certificate, &current) {
            (Some(facts), Some(entry)) => entry.holds(facts),
            (None, None) => true,
            _ => false,
        };
        if !done {
            return Ok(Probe::NotDone);
        }
        // Done, but what it replaced is not known any more: no undo record.
        let warnings = wanted
            .certificate
            .as_ref()
            .map(|facts| facts.warnings(now()))
            .unwrap_or_default();
        Ok(Probe::Done(Applied {
            outputs: outputs(
                current.as_ref().map(|entry| entry.id.as_str()),
                false,
                wanted.certificate.as_ref(),
                &warnings,
            ),
            undo: None,
            change: Some(wanted.change(current.as_ref())),
            secrets: Vec::new(),
        }))
    }
}

/// The step's outputs.
fn outputs(
    id: Option<&str>,
    changed: bool,
    facts: Option<&CertificateFacts>,
    warnings: &[String],
) -> Map<String, Value> {
    let mut outputs = Map::new();
    outputs.insert("id".to_owned(), id.map_or(Value::Null, Value::from));
    outputs.insert("changed".to_owned(), Value::from(changed));
    outputs.insert(
        "thumbprint_sha1".to_owned(),
        facts.map_or(Value::Null, |f| Value::from(f.thumbprint_sha1.clone())),
    );
    outputs.insert(
        "not_after".to_owned(),
        facts.map_or(Value::Null, |f| Value::from(rfc3339(f.not_after))),
    );
    outputs.insert("warnings".to_owned(), Value::from(warnings.to_vec()));
    outputs
}

/// The trust flags among an entry's properties (the booleans).
fn trust_flags(properties: Option<&Properties>) -> Vec<(String, bool)> {
    properties
        .map(|properties| {
            properties
                .entries
                .iter()
                .filter_map(|entry| entry.value.as_bool().map(|flag| (entry.key.clone(), flag)))
                .collect()
        })
        .unwrap_or_default()
}

/// PUTs `entry` (with the version it was read at); a stale version becomes an error
/// saying someone changed it meanwhile.
async fn put(
    client: &RestmanClient,
    id: &str,
    entry: &TrustedCertificate,
    described: &str,
) -> Result<(), ActionError> {
    match client.put(id, entry, &WriteOptions::default()).await {
        Ok(_) => Ok(()),
        Err(error @ Layer7Error::Conflict { .. }) if entry.version.is_some() => {
            Err(ActionError::failed(format!(
                "{NAME}: {described} was changed on the gateway by someone else between this \
                 step's read and its write, so nothing was changed; re-run the step ({error})"
            )))
        }
        Err(error) => Err(error.into()),
    }
}

/// A trusted certificate on the gateway.
#[derive(Debug, Clone)]
struct OnGateway {
    /// Its goid.
    id: String,
    /// The entry as read.
    entry: TrustedCertificate,
    /// Its certificate, when readable.
    facts: Option<CertificateFacts>,
}

impl OnGateway {
    /// An entry read from the gateway.
    fn read(entry: TrustedCertificate) -> Result<Self, ActionError> {
        let id = entry.id.clone().ok_or_else(|| {
            ActionError::failed(format!(
                "{NAME}: the gateway listed trusted certificate `{}` without an id",
                entry.name
            ))
        })?;
        let facts = CertificateFacts::of_entry(&entry).ok();
        Ok(Self { id, entry, facts })
    }

    /// Whether it holds exactly this certificate.
    fn holds(&self, facts: &CertificateFacts) -> bool {
        self.facts
            .as_ref()
            .is_some_and(|mine| mine.thumbprint_sha1 == facts.thumbprint_sha1)
    }

    /// Its plan text (a certificate the step cannot read shows as such).
    fn text(&self) -> String {
        match &self.facts {
            Some(facts) => facts.text(&self.entry.name),
            None => format!("name: {}\ncertificate: (unreadable)\n", self.entry.name),
        }
    }

    /// One line naming it.
    fn short(&self) -> String {
        match &self.facts {
            Some(facts) => facts.short(),
            None => "an unreadable certificate".to_owned(),
        }
    }
}

/// The checked arguments.
#[derive(Debug, Clone)]
struct Wanted {
    name: String,
    /// The certificate when `state: present`; none when absent.
    certificate: Option<CertificateFacts>,
}

impl Wanted {
    /// Reads the rendered arguments and, for `state: present`, the certificate.
    fn parse(arguments: Value) -> Result<Self, ActionError> {
        let arguments: Layer7TrustedCertArguments = parse(NAME, arguments)?;
        let invalid = |message: String| ActionError::InvalidArguments {
            action: NAME,
            message,
        };
        if arguments.name.trim().is_empty() {
            return Err(invalid("the certificate's `name` is empty".to_owned()));
        }
        let certificate = match arguments.state {
            Presence::Absent => None,
            Presence::Present => {
                let pem = arguments.pem.ok_or_else(|| {
                    invalid("`pem` is required unless `state: absent`".to_owned())
                })?;
                Some(CertificateFacts::from_pem(&pem).map_err(invalid)?)
            }
        };
        Ok(Self {
            name: arguments.name,
            certificate,
        })
    }

    /// `trusted certificate `name``.
    fn describe(&self) -> String {
        format!("trusted certificate `{}`", self.name)
    }

    /// The entry with this name, if any; several is an error.
    async fn by_name(&self, client: &RestmanClient) -> Result<Option<OnGateway>, ActionError> {
        let listed: Vec<TrustedCertificate> = client.list(&[("name", self.name.as_str())]).await?;
        let mut found = listed
            .into_iter()
            .filter(|entry| entry.name == self.name)
            .map(OnGateway::read)
            .collect::<Result<Vec<_>, _>>()?;
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            count => Err(ActionError::failed(format!(
                "{NAME}: {count} trusted certificates are named `{}` (ids {}); the step manages exactly one: rename or delete the others",
                self.name,
                found
                    .iter()
                    .map(|entry| entry.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Fails when writing `facts` cannot work: the certificate has expired, or
    /// another entry holds it already (thumbprints are unique on the gateway).
    async fn check_writable(
        &self,
        client: &RestmanClient,
        facts: &CertificateFacts,
        current: Option<&OnGateway>,
    ) -> Result<(), ActionError> {
        if current.is_some_and(|entry| entry.holds(facts)) {
            return Ok(());
        }
        self.refuse_expired(facts)?;
        if let Some(other) = holder_elsewhere(client, facts, current).await? {
            return Err(self.taken_by(facts, &other));
        }
        Ok(())
    }

    /// Refuses to make an expired certificate trusted.
    fn refuse_expired(&self, facts: &CertificateFacts) -> Result<(), ActionError> {
        if facts.not_after < now() {
            return Err(ActionError::failed(format!(
                "{NAME}: refusing to trust an expired certificate as {}: {} expired on {}; \
                 get a current certificate from its owner",
                self.describe(),
                facts.subject,
                rfc3339(facts.not_after)
            )));
        }
        Ok(())
    }

    /// The error for a certificate another entry holds.
    fn taken_by(&self, facts: &CertificateFacts, other: &OnGateway) -> ActionError {
        ActionError::failed(format!(
            "{NAME}: cannot make {} hold {}: the gateway already trusts that certificate as \
             trusted certificate `{}` (id {}), and thumbprints must be unique (UniqueKeyConflict \
             on thumbprintSha1); use that name, or delete or rename that entry first",
            self.describe(),
            facts.short(),
            other.entry.name,
            other.id
        ))
    }

    /// Creates the entry, or replaces its certificate; its id and the undo record.
    async fn make_present(
        &self,
        client: &RestmanClient,
        facts: &CertificateFacts,
        current: Option<OnGateway>,
    ) -> Result<(String, TrustedCertUndo), ActionError> {
        let encoded = STANDARD.encode(&facts.der);
        match current {
            Some(entry) if entry.holds(facts) => Ok((entry.id, TrustedCertUndo::Unchanged)),
            Some(entry) => {
                // Read it again by id: the version the PUT carries is the one just read.
                let mut fresh: TrustedCertificate = client.get(&entry.id).await?;
                let previous_der: String = fresh.certificate.encoded.split_whitespace().collect();
                fresh.certificate = CertificateData {
                    encoded,
                    ..CertificateData::default()
                };
                self.write_conflict(
                    client,
                    facts,
                    put(client, &entry.id, &fresh, &self.describe()).await,
                )
                .await?;
                Ok((
                    entry.id.clone(),
                    TrustedCertUndo::Replaced {
                        id: entry.id,
                        previous_der,
                    },
                ))
            }
            None => {
                let mut properties = Properties::default();
                for (key, flag) in NEW_CERTIFICATE_TRUST {
                    properties.set(key, PropertyValue::Boolean(*flag));
                }
                let entry = TrustedCertificate {
                    id: None,
                    version: None,
                    name: self.name.clone(),
                    certificate: CertificateData {
                        encoded,
                        ..CertificateData::default()
                    },
                    properties: Some(properties),
                };
                let created = client
                    .create(&entry, &WriteOptions::default())
                    .await
                    .map_err(ActionError::from);
                let created = self.write_conflict(client, facts, created).await?;
                let id = created.id.ok_or_else(|| {
                    ActionError::failed(format!(
                        "{NAME}: the gateway created {} but did not say its id",
                        self.describe()
                    ))
                })?;
                Ok((id.clone(), TrustedCertUndo::Created { id }))
            }
        }
    }

    /// A failed write whose cause is another entry holding the certificate (it
    /// appeared since the check) names that entry.
    async fn write_conflict<T>(
        &self,
        client: &RestmanClient,
        facts: &CertificateFacts,
        outcome: Result<T, ActionError>,
    ) -> Result<T, ActionError> {
        match outcome {
            Ok(value) => Ok(value),
            Err(error) => match holder_elsewhere(client, facts, None).await {
                Ok(Some(other)) if other.entry.name != self.name => {
                    Err(self.taken_by(facts, &other))
                }
                _ => Err(error),
            },
        }
    }

    /// What the step changes, from the entry with this name now.
    fn change(&self, current: Option<&OnGateway>) -> Change {
        match (&self.certificate, current) {
            (Some(facts), Some(entry)) if entry.holds(facts) => Change::none(format!(
                "{}: holds {}, no change",
                self.describe(),
                facts.short()
            )),
            (Some(facts), Some(entry)) => Change::between(
                format!(
                    "{}: replace {} with {} (trust settings kept)",
                    self.describe(),
                    entry.short(),
                    facts.short()
                ),
                Some(entry.text()),
                facts.text(&self.name),
            ),
            (Some(facts), None) => Change::between(
                format!("create {} holding {}", self.describe(), facts.short()),
                None,
                facts.text(&self.name),
            ),
            (None, Some(entry)) => Change {
                changes: Some(true),
                summary: format!("delete {} ({})", self.describe(), entry.short()),
                before: Some(entry.text()),
                after: Some(String::new()),
            },
            (None, None) => Change::none(format!("{}: absent, no change", self.describe())),
        }
    }
}

/// The entry other than `current` that holds `facts`'s certificate, if any (restman
/// documents no thumbprint filter: every entry is listed and compared here).
async fn holder_elsewhere(
    client: &RestmanClient,
    facts: &CertificateFacts,
    current: Option<&OnGateway>,
) -> Result<Option<OnGateway>, ActionError> {
    let all: Vec<TrustedCertificate> = client.list(&[]).await?;
    for entry in all {
        let entry = OnGateway::read(entry)?;
        if entry.holds(facts) && current.is_none_or(|mine| mine.id != entry.id) {
            return Ok(Some(entry));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A self-signed certificate for `cn`, valid from `from` to `until` (Unix seconds).
    pub(crate) fn certificate(cn: &str, from: i64, until: i64) -> Result<String, rcgen::Error> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(vec![cn.to_owned()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + std::time::Duration::from_secs(from.unsigned_abs());
        params.not_after = epoch + std::time::Duration::from_secs(until.unsigned_abs());
        Ok(params.self_signed(&key)?.pem())
    }

    #[test]
    fn reads_one_certificate_and_its_thumbprint() -> Result<(), Box<dyn std::error::Error>> {
        let pem = certificate("partner.example", 1_700_000_000, 1_900_000_000)?;
        let facts = CertificateFacts::from_pem(&pem)?;
        assert_eq!(facts.subject, "CN=partner.example");
        assert_eq!(facts.not_after, 1_900_000_000);
        assert_eq!(facts.thumbprint_sha1, thumbprint_sha1(&facts.der));
        assert_eq!(facts.thumbprint_sha1.len(), 28, "{}", facts.thumbprint_sha1);
        Ok(())
    }

    #[test]
    fn refuses_bad_pem_chains_and_keys() -> Result<(), Box<dyn std::error::Error>> {
        let one = certificate("a.example", 1_700_000_000, 1_900_000_000)?;
        let cases = [
            ("not a certificate".to_owned(), "no PEM certificate"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned(),
                "cannot be read",
            ),
            (format!("{one}{one}"), "holds 2 certificates"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
                "holds a `PRIVATE KEY` block",
            ),
        ];
        for (pem, expected) in cases {
            let error = CertificateFacts::from_pem(&pem).err().unwrap_or_default();
            assert!(error.contains(expected), "{expected}: {error}");
            assert!(!error.contains("AAAA"), "{error}");
        }
        Ok(())
    }

    #[test]
    fn warns_near_and_after_expiry() -> Result<(), Box<dyn std::error::Error>> {
        let now = 1_800_000_000;
        let soon = CertificateFacts::from_pem(&certificate("s.example", 0, now + 10 * 86_400)?)?;
        let warnings = soon.warnings(now);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("(in 10 days)"), "{warnings:?}");
        let later = CertificateFacts::from_pem(&certificate("l.example", 0, now + 90 * 86_400)?)?;
        assert!(later.warnings(now).is_empty());
        let gone = CertificateFacts::from_pem(&certificate("g.example", 0, now - 1)?)?;
        assert!(gone.warnings(now)[0].contains("expired on"));
        Ok(())
    }

    #[test]
    fn absent_needs_no_pem_and_present_does() {
        assert!(Wanted::parse(json!({"name": "x", "state": "absent"})).is_ok());
        let error = Wanted::parse(json!({"name": "x"}))
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("`pem` is required")),
            "{error:?}"
        );
    }

    #[test]
    fn undo_records_read_back() -> Result<(), serde_json::Error> {
        for undo in [
            TrustedCertUndo::Unchanged,
            TrustedCertUndo::Created { id: "a".to_owned() },
            TrustedCertUndo::Replaced {
                id: "b".to_owned(),
                previous_der: "AAAA".to_owned(),
            },
            TrustedCertUndo::Deleted {
                id: "c".to_owned(),
                name: "n".to_owned(),
                der: "AAAA".to_owned(),
                trust: vec![("trustedForSsl".to_owned(), true)],
            },
        ] {
            let value = serde_json::to_value(&undo)?;
            assert_eq!(serde_json::from_value::<TrustedCertUndo>(value)?, undo);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "trusted_cert_tests.rs"]
mod twin_tests;
