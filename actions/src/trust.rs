//! TLS client configuration from a step's TLS settings ([`TlsMaterial`]): the
//! CA to trust (else the system's trust store), the client identity for mTLS, a
//! server name to verify instead of the URL's host, or no verification at all;
//! and readable reasons for failed handshakes ([`describe_tls_error`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use runsheet_engine::model::TlsSettings;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use sha2::{Digest, Sha256};

/// Why TLS settings could not be turned into a client configuration.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A PEM file could not be read.
    #[error("failed to read {what} `{path}`")]
    Read {
        /// Which setting named the file (`tls.ca`).
        what: &'static str,
        /// The file, resolved against the playbook's directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{what} `{path}` holds no {expected}")]
    Empty {
        /// Which setting named the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What it should hold ("PEM certificate").
        expected: &'static str,
    },
    /// A PEM file could not be parsed.
    #[error("{what} `{path}` is not valid PEM")]
    Pem {
        /// Which setting named the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// One of a pair of settings is missing (`client_cert` without `client_key`).
    #[error("tls.{given} needs tls.{missing} as well")]
    Incomplete {
        /// The setting given.
        given: &'static str,
        /// The setting missing.
        missing: &'static str,
    },
    /// The server name to verify is not a DNS name or IP address.
    #[error("`{name}` is not a valid TLS server name")]
    ServerName {
        /// The name as written.
        name: String,
    },
    /// A CA certificate was refused as a trust anchor.
    #[error("CA bundle `{path}` holds a certificate that cannot be trusted")]
    Anchor {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// No CA is trusted: the system's trust store is empty and no `ca` is set.
    #[error("no CA to trust: the system trust store is empty; set tls `ca`")]
    NoRoots,
    /// rustls refused the configuration (a bad client key, for example).
    #[error("invalid TLS configuration")]
    Config(#[source] rustls::Error),
}

/// A PEM file named by a TLS setting, with its contents.
#[derive(Debug, Clone)]
struct PemFile {
    what: &'static str,
    path: PathBuf,
    contents: Vec<u8>,
}

impl PemFile {
    /// Reads the file `name` (relative to `base_dir`) for the setting `what`; a value that
    /// is PEM itself (starts with `-----BEGIN`, e.g. a step's certificate output) is used as is.
    async fn read(what: &'static str, name: &str, base_dir: &Path) -> Result<Self, TrustError> {
        if name.trim_start().starts_with("-----BEGIN") {
            return Ok(Self {
                what,
                path: PathBuf::from("(inline PEM)"),
                contents: name.as_bytes().to_vec(),
            });
        }
        let path = base_dir.join(name);
        match tokio::fs::read(&path).await {
            Ok(contents) => Ok(Self {
                what,
                path,
                contents,
            }),
            Err(source) => Err(TrustError::Read { what, path, source }),
        }
    }

    /// The certificates it holds (at least one).
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TrustError> {
        let certificates = rustls_pemfile::certs(&mut self.contents.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| self.pem_error(source))?;
        if certificates.is_empty() {
            return Err(self.empty("PEM certificate"));
        }
        Ok(certificates)
    }

    /// The private key it holds.
    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TrustError> {
        rustls_pemfile::private_key(&mut self.contents.as_slice())
            .map_err(|source| self.pem_error(source))?
            .ok_or_else(|| self.empty("PEM private key"))
    }

    fn pem_error(&self, source: std::io::Error) -> TrustError {
        TrustError::Pem {
            what: self.what,
            path: self.path.clone(),
            source,
        }
    }

    fn empty(&self, expected: &'static str) -> TrustError {
        TrustError::Empty {
            what: self.what,
            path: self.path.clone(),
            expected,
        }
    }
}

/// TLS settings with their files read: what a client configuration is built from.
#[derive(Debug, Clone, Default)]
pub struct TlsMaterial {
    ca: Option<PemFile>,
    identity: Option<(PemFile, PemFile)>,
    server_name: Option<String>,
    insecure: bool,
}

impl TlsMaterial {
    /// Reads the files the settings name, relative to `base_dir`; `None` means the defaults.
    pub async fn load(settings: Option<&TlsSettings>, base_dir: &Path) -> Result<Self, TrustError> {
        let Some(settings) = settings else {
            return Ok(Self::default());
        };
        let ca = match &settings.ca {
            Some(name) => Some(PemFile::read("tls.ca", name, base_dir).await?),
            None => None,
        };
        let identity = match (&settings.client_cert, &settings.client_key) {
            (Some(cert), Some(key)) => Some((
                PemFile::read("tls.client_cert", cert, base_dir).await?,
                PemFile::read("tls.client_key", key, base_dir).await?,
            )),
            (None, None) => None,
            (Some(_), None) => {
                return Err(TrustError::Incomplete {
                    given: "client_cert",
                    missing: "client_key",
                });
            }
            (None, Some(_)) => {
                return Err(TrustError::Incomplete {
                    given: "client_key",
                    missing: "client_cert",
                });
            }
        };
        Ok(Self {
            ca,
            identity,
            server_name: settings.server_name.clone(),
            insecure: settings.insecure,
        })
    }

    /// Whether verification is off (`insecure: true`).
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// These settings without the server-name override (for requests to another host).
    pub fn without_server_name(&self) -> Self {
        Self {
            server_name: None,
            ..self.clone()
        }
    }

    /// A digest of everything the configuration depends on, file contents included.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut digest = Sha256::new();
        let mut field = |bytes: &[u8]| {
            digest.update((bytes.len() as u64).to_le_bytes());
            digest.update(bytes);
        };
        field(self.ca.as_ref().map_or(&[][..], |ca| &ca.contents));
        let (cert, key) = self.identity.as_ref().map_or((&[][..], &[][..]), |(c, k)| {
            (c.contents.as_slice(), k.contents.as_slice())
        });
        field(cert);
        field(key);
        field(self.server_name.as_deref().unwrap_or_default().as_bytes());
        field(&[
            u8::from(self.insecure),
            u8::from(self.server_name.is_some()),
        ]);
        digest.finalize().into()
    }

    /// The verifier of server certificates these settings ask for.
    pub fn verifier(&self) -> Result<Arc<dyn ServerCertVerifier>, TrustError> {
        let provider = provider();
        if self.insecure {
            return Ok(Arc::new(AcceptAnyServer { provider }));
        }
        let roots = match &self.ca {
            Some(ca) => Arc::new(roots_from(ca)?),
            None => default_roots()?,
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|_| TrustError::NoRoots)?;
        let inner: Arc<dyn ServerCertVerifier> = match &self.server_name {
            Some(name) => {
                let fixed = ServerName::try_from(name.clone())
                    .map_err(|_| TrustError::ServerName { name: name.clone() })?;
                Arc::new(FixedNameVerifier {
                    inner: webpki,
                    name: fixed,
                })
            }
            None => webpki,
        };
        Ok(Arc::new(SelfSignedAware { inner }))
    }

    /// A rustls client configuration for these settings.
    pub fn client_config(&self) -> Result<ClientConfig, TrustError> {
        self.client_config_with(self.verifier()?)
    }

    /// A rustls client configuration with this verifier and the settings' client identity.
    pub fn client_config_with(
        &self,
        verifier: Arc<dyn ServerCertVerifier>,
    ) -> Result<ClientConfig, TrustError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TrustError::Config)?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match &self.identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(cert.certificates()?, key.private_key()?)
                .map_err(TrustError::Config),
            None => Ok(builder.with_no_client_auth()),
        }
    }
}

/// The crypto provider every configuration uses (ring).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trust anchors of a CA bundle.
fn roots_from(ca: &PemFile) -> Result<RootCertStore, TrustError> {
    let mut roots = RootCertStore::empty();
    for certificate in ca.certificates()? {
        roots
            .add(certificate)
            .map_err(|source| TrustError::Anchor {
                path: ca.path.clone(),
                source,
            })?;
    }
    Ok(roots)
}

/// The system's trust store, read once per process; Mozilla's roots if it is empty.
fn default_roots() -> Result<Arc<RootCertStore>, TrustError> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates are skipped: the ones left still verify.
        let native = rustls_native_certs::load_native_certs();
        let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Arc::new(roots)
    });
    if roots.is_empty() {
        return Err(TrustError::NoRoots);
    }
    Ok(Arc::clone(roots))
}

/// Verifies the certificate against a fixed name instead of the one connected to.
#[derive(Debug)]
struct FixedNameVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for FixedNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A self-signed server certificate the trusted CAs do not include: refused as
/// "unknown issuer" by webpki, named for what it is.
#[derive(Debug, thiserror::Error)]
#[error("self-signed certificate")]
pub struct SelfSigned;

/// Verifies with `inner`; an unknown issuer of a lone self-issued certificate is
/// reported as [`SelfSigned`].
#[derive(Debug)]
struct SelfSignedAware {
    inner: Arc<dyn ServerCertVerifier>,
}

/// Whether the DER certificate names itself as its issuer.
fn is_self_issued(certificate: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(certificate.as_ref())
        .is_ok_and(|(_, parsed)| parsed.subject().as_raw() == parsed.issuer().as_raw())
}

impl ServerCertVerifier for SelfSignedAware {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if intermediates.is_empty() && is_self_issued(end_entity) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(SelfSigned)),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any server certificate (`insecure: true`); handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAnyServer {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A sentence saying why a TLS handshake failed, for an operator.
pub fn describe_tls_error(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(certificate) => format!(
            "certificate verification failed: {}",
            describe_certificate_error(certificate)
        ),
        rustls::Error::AlertReceived(alert) => describe_alert(*alert),
        other => format!("TLS handshake failed: {other}"),
    }
}

/// Why a certificate was refused, in words.
fn describe_certificate_error(error: &CertificateError) -> String {
    match error {
        CertificateError::UnknownIssuer => {
            "unknown issuer: the chain does not lead to a trusted CA (set `ca` to the issuing CA's PEM)"
                .to_owned()
        }
        CertificateError::NotValidForName => "name mismatch: the certificate is not valid for the expected name".to_owned(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let mut text = format!("name mismatch: expected `{}`, ", expected.to_str());
            if presented.is_empty() {
                text.push_str("the certificate names no subject alternative name");
            } else {
                let names: Vec<&str> = presented.iter().map(|name| plain_name(name)).collect();
                let _ = write!(text, "the certificate is valid for {}", names.join(", "));
            }
            text
        }
        CertificateError::Expired => "expired".to_owned(),
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("expired: not valid after {}", rfc3339(*not_after))
        }
        CertificateError::NotValidYet => "not valid yet".to_owned(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("not valid yet: valid from {}", rfc3339(*not_before))
        }
        CertificateError::Other(other) if other.0.downcast_ref::<SelfSigned>().is_some() => {
            "self-signed: the certificate is its own issuer and no trusted CA vouches for it (set `ca` to it to trust it)".to_owned()
        }
        CertificateError::Revoked => "the certificate is revoked".to_owned(),
        CertificateError::BadSignature => "bad signature in the chain".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not valid for server authentication (extended key usage)".to_owned()
        }
        other => other.to_string(),
    }
}

/// `localhost` for rustls's `DnsName("localhost")`; other forms as they are.
fn plain_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })
        .unwrap_or(presented)
}

/// What an alert from the server means.
fn describe_alert(alert: AlertDescription) -> String {
    let hint = match alert {
        AlertDescription::CertificateRequired => {
            ": the server requires a client certificate (set tls client_cert and client_key)"
        }
        AlertDescription::BadCertificate
        | AlertDescription::UnknownCA
        | AlertDescription::CertificateUnknown
        | AlertDescription::UnsupportedCertificate => ": the server refused the client certificate",
        AlertDescription::HandshakeFailure => {
            ": no common protocol or cipher, or a client certificate was required"
        }
        _ => "",
    };
    format!("the server ended the TLS handshake ({alert:?}){hint}")
}

/// A certificate time as RFC 3339.
fn rfc3339(time: UnixTime) -> String {
    let seconds = i64::try_from(time.as_secs()).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_second(seconds) {
        Ok(timestamp) => timestamp.to_string(),
        Err(_) => format!("{seconds} (UNIX)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Why the default verifier refuses `certificate` for `localhost`, in words.
    fn refusal(certificate: &CertificateDer<'_>) -> Result<String, Box<dyn std::error::Error>> {
        let verifier = TlsMaterial::default().verifier()?;
        let name = ServerName::try_from("localhost")?;
        match verifier.verify_server_cert(certificate, &[], &name, &[], UnixTime::now()) {
            Ok(_) => Err("accepted".into()),
            Err(error) => Ok(describe_tls_error(&error)),
        }
    }

    #[test]
    fn a_self_signed_certificate_is_named_self_signed_and_a_foreign_ca_unknown_issuer() -> TestResult
    {
        let own = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let reason = refusal(own.cert.der())?;
        assert!(
            reason.contains("certificate verification failed: self-signed"),
            "{reason}"
        );

        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "some CA");
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate()?;
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?
            .signed_by(&key, &issuer)?;
        let reason = refusal(leaf.der())?;
        assert!(
            reason.contains("certificate verification failed: unknown issuer"),
            "{reason}"
        );
        Ok(())
    }
}
