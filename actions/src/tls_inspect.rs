//! `tls.inspect` ([`TlsInspect`]): one TLS handshake with a host, reporting the
//! certificate chain, names, expiry, protocol and cipher. A handshake whose
//! certificate does not verify fails the step, with the reason and what the
//! server presented: the tool is for troubleshooting and for proving a rotation.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runsheet_engine::model::TlsSettings;
use runsheet_engine::{Action, ActionError, ActionSpec, Applied, StepContext};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::{Map, Value};
use tokio::net::TcpStream;
use x509_parser::extensions::GeneralName;

use crate::core::TlsInspectArguments;
use crate::trust::{TlsMaterial, describe_tls_error};
use crate::web::{DEFAULT_TIMEOUT, error_chain};

/// The outputs of `tls.inspect`.
pub const OUTPUTS: &[&str] = &[
    "handshake",
    "chain_subjects",
    "issuer",
    "sans",
    "not_after",
    "days_left",
    "protocol",
    "cipher",
    "fingerprint_sha256",
    "serial",
];

/// The `tls.inspect` action.
#[derive(Debug, Clone)]
pub struct TlsInspect {
    spec: ActionSpec,
}

impl TlsInspect {
    /// The action with this catalogue entry.
    pub fn new(spec: ActionSpec) -> Self {
        Self { spec }
    }
}

#[async_trait::async_trait]
impl Action for TlsInspect {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: TlsInspectArguments =
            serde_json::from_value(arguments).map_err(|error| ActionError::InvalidArguments {
                action: "tls.inspect",
                message: error.to_string(),
            })?;
        let limit = context.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let outputs = inspect(&arguments, context, limit).await?;
        Ok(Applied {
            secrets: Vec::new(),
            outputs,
            undo: None,
            change: None,
        })
    }
}

/// Connects, shakes hands and describes what the server presented.
async fn inspect(
    arguments: &TlsInspectArguments,
    context: &StepContext,
    limit: Duration,
) -> Result<Map<String, Value>, ActionError> {
    let name = arguments
        .server_name
        .clone()
        .unwrap_or_else(|| arguments.host.clone());
    let server_name =
        ServerName::try_from(name.clone()).map_err(|_| ActionError::InvalidArguments {
            action: "tls.inspect",
            message: format!("`{name}` is not a valid TLS server name"),
        })?;
    let settings = TlsSettings {
        ca: arguments.ca.clone(),
        ..TlsSettings::default()
    };
    let material = TlsMaterial::load(Some(&settings), &context.base_dir)
        .await
        .map_err(|error| ActionError::failed(error_chain(&error)))?;
    let recorder = Arc::new(RecordingVerifier {
        inner: material
            .verifier()
            .map_err(|error| ActionError::failed(error_chain(&error)))?,
        presented: Mutex::default(),
    });
    let config = material
        .client_config_with(Arc::clone(&recorder) as Arc<dyn ServerCertVerifier>)
        .map_err(|error| ActionError::failed(error_chain(&error)))?;

    let address = display_address(&arguments.host, arguments.port);
    let stream = connect(&arguments.host, arguments.port, &address, limit).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = tokio::time::timeout(limit, connector.connect(server_name, stream)).await;
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            let reason =
                find_tls_error(&error).map_or_else(|| error.to_string(), describe_tls_error);
            let presented = recorder.presented();
            let seen = match presented.first().and_then(|leaf| Leaf::read(leaf)) {
                Some(leaf) => format!("; the server presented {}", leaf.summary()),
                None => String::new(),
            };
            return Err(ActionError::failed(format!(
                "TLS handshake with {address} (server name `{name}`) failed: {reason}{seen}"
            )));
        }
        Err(_) => {
            return Err(ActionError::failed(format!(
                "TLS handshake with {address}: no answer within {}s",
                limit.as_secs()
            )));
        }
    };
    let connection = tls.get_ref().1;
    let chain = connection.peer_certificates().unwrap_or_default();
    let leaf = chain
        .first()
        .and_then(|leaf| Leaf::read(leaf))
        .ok_or_else(|| {
            ActionError::failed(format!(
                "TLS handshake with {address}: the server's certificate cannot be read"
            ))
        })?;
    let chain_subjects: Vec<Value> = chain
        .iter()
        .map(|certificate| {
            Leaf::read(certificate).map_or(Value::Null, |parsed| Value::from(parsed.subject))
        })
        .collect();
    let protocol = connection
        .protocol_version()
        .map(|version| protocol_name(version.as_str().unwrap_or("unknown")));
    let cipher = connection
        .negotiated_cipher_suite()
        .and_then(|suite| suite.suite().as_str())
        .map(str::to_owned);

    let now = jiff::Timestamp::now().as_second();
    let mut outputs = Map::new();
    outputs.insert("handshake".to_owned(), Value::from("ok"));
    outputs.insert("chain_subjects".to_owned(), Value::Array(chain_subjects));
    outputs.insert("issuer".to_owned(), Value::from(leaf.issuer.clone()));
    outputs.insert("sans".to_owned(), Value::from(leaf.sans.clone()));
    outputs.insert("not_after".to_owned(), Value::from(leaf.not_after_text()));
    outputs.insert(
        "days_left".to_owned(),
        Value::from((leaf.not_after - now).div_euclid(86_400)),
    );
    outputs.insert(
        "protocol".to_owned(),
        protocol.map_or(Value::Null, Value::from),
    );
    outputs.insert("cipher".to_owned(), cipher.map_or(Value::Null, Value::from));
    outputs.insert(
        "fingerprint_sha256".to_owned(),
        Value::from(leaf.fingerprint_sha256.clone()),
    );
    outputs.insert("serial".to_owned(), Value::from(leaf.serial.clone()));
    Ok(outputs)
}

/// `host:port`, with brackets around an IPv6 address.
fn display_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A TCP connection to the first address of `host` that answers.
async fn connect(
    host: &str,
    port: u16,
    address: &str,
    limit: Duration,
) -> Result<TcpStream, ActionError> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| ActionError::failed(format!("cannot resolve host `{host}`: {error}")))?
        .collect();
    match tokio::time::timeout(limit, TcpStream::connect(addresses.as_slice())).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => Err(
            ActionError::failed(format!("connection refused by {address}")),
        ),
        Ok(Err(error)) => Err(ActionError::failed(format!(
            "cannot connect to {address}: {error}"
        ))),
        Err(_) => Err(ActionError::failed(format!(
            "cannot connect to {address}: no answer within {}s",
            limit.as_secs()
        ))),
    }
}

/// The rustls error inside an I/O error from the handshake.
fn find_tls_error(error: &std::io::Error) -> Option<&rustls::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// `TLSv1_3` as operators write it: `TLSv1.3`.
fn protocol_name(name: &str) -> String {
    name.replace('_', ".")
}

/// What the inspection reports of a certificate.
#[derive(Debug, Clone)]
struct Leaf {
    subject: String,
    issuer: String,
    sans: Vec<String>,
    not_after: i64,
    fingerprint_sha256: String,
    serial: String,
}

impl Leaf {
    /// Reads a DER certificate; `None` when it cannot be parsed.
    fn read(der: &CertificateDer<'_>) -> Option<Self> {
        let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
        let sans = match certificate.subject_alternative_name() {
            Ok(Some(extension)) => extension
                .value
                .general_names
                .iter()
                .filter_map(general_name)
                .collect(),
            _ => Vec::new(),
        };
        Some(Self {
            subject: certificate.subject().to_string(),
            issuer: certificate.issuer().to_string(),
            sans,
            not_after: certificate.validity().not_after.timestamp(),
            fingerprint_sha256: crate::artefact::sha256_hex(der),
            serial: certificate.raw_serial_as_string(),
        })
    }

    /// The expiry as RFC 3339.
    fn not_after_text(&self) -> String {
        jiff::Timestamp::from_second(self.not_after)
            .map_or_else(|_| self.not_after.to_string(), |time| time.to_string())
    }

    /// One line: subject, names, issuer and expiry.
    fn summary(&self) -> String {
        format!(
            "`{}` for [{}] issued by `{}`, valid until {}",
            self.subject,
            self.sans.join(", "),
            self.issuer,
            self.not_after_text()
        )
    }
}

/// A subject alternative name as text: DNS names and addresses as written, others tagged.
fn general_name(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(*bytes)
                .ok()
                .map(|octets| std::net::Ipv4Addr::from(octets).to_string()),
            16 => <[u8; 16]>::try_from(*bytes)
                .ok()
                .map(|octets| std::net::Ipv6Addr::from(octets).to_string()),
            _ => None,
        },
        GeneralName::RFC822Name(email) => Some(format!("email:{email}")),
        GeneralName::URI(uri) => Some(format!("uri:{uri}")),
        _ => None,
    }
}

/// Passes verification to the real verifier, keeping the chain the server presented.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    presented: Mutex<Vec<CertificateDer<'static>>>,
}

impl RecordingVerifier {
    /// The chain presented, leaf first (empty before the server's certificate arrives).
    fn presented(&self) -> Vec<CertificateDer<'static>> {
        match self.presented.lock() {
            Ok(presented) => presented.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|certificate| certificate.clone().into_owned())
            .collect();
        match self.presented.lock() {
            Ok(mut presented) => *presented = chain,
            Err(poisoned) => *poisoned.into_inner() = chain,
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
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

#[cfg(test)]
mod tests {
    use runsheet_engine::Effect;
    use serde_json::json;

    use super::*;
    use crate::test_support::{Pki, Reply, TestResult, TestServer};

    fn action() -> TlsInspect {
        TlsInspect::new(
            ActionSpec::new::<TlsInspectArguments>("tls.inspect", "core", "test", Effect::READ)
                .outputs(OUTPUTS),
        )
    }

    fn context_in(dir: &std::path::Path) -> StepContext {
        let mut context = StepContext::detached("inspect", false);
        context.base_dir = dir.to_path_buf();
        context
    }

    #[tokio::test]
    async fn reports_names_expiry_protocol_and_cipher() -> TestResult {
        let pki = Pki::new()?;
        let dir = tempfile::tempdir()?;
        pki.write(dir.path())?;
        let config =
            pki.server_config_for(&["localhost", "127.0.0.1", "kong.example"], (2100, 1, 1))?;
        let server = TestServer::https(config, |_| Reply::text(200, "ok")).await?;
        let applied = action()
            .apply(
                &context_in(dir.path()),
                json!({"host": "127.0.0.1", "port": server.addr.port(), "server_name": "localhost", "ca": "ca.pem"}),
            )
            .await?;
        let outputs = &applied.outputs;
        assert_eq!(outputs["handshake"], json!("ok"));
        assert_eq!(
            outputs["sans"],
            json!(["localhost", "127.0.0.1", "kong.example"])
        );
        assert_eq!(
            outputs["chain_subjects"],
            json!(["CN=localhost", "CN=runsheet test CA"])
        );
        assert_eq!(outputs["issuer"], json!("CN=runsheet test CA"));
        assert_eq!(outputs["not_after"], json!("2100-01-01T00:00:00Z"));
        let expected_days = (4_102_444_800 - jiff::Timestamp::now().as_second()).div_euclid(86_400);
        let days_left = outputs["days_left"].as_i64().unwrap_or_default();
        assert!(
            (days_left - expected_days).abs() <= 1,
            "{days_left} vs {expected_days}"
        );
        assert_eq!(outputs["protocol"], json!("TLSv1.3"));
        assert!(
            outputs["cipher"]
                .as_str()
                .is_some_and(|c| c.starts_with("TLS13_")),
            "{}",
            outputs["cipher"]
        );
        let fingerprint = outputs["fingerprint_sha256"].as_str().unwrap_or_default();
        assert_eq!(fingerprint.len(), 64, "{fingerprint}");
        assert!(
            outputs["serial"].as_str().is_some_and(|serial| !serial.is_empty()),
            "{}",
            outputs["serial"]
        );
        assert_eq!(applied.outputs.len(), OUTPUTS.len());
        Ok(())
    }

    #[tokio::test]
    async fn fails_with_the_reason_and_what_the_server_presented() -> TestResult {
        let pki = Pki::new()?;
        let dir = tempfile::tempdir()?;
        pki.write(dir.path())?;
        let server =
            TestServer::https(pki.server_config(false)?, |_| Reply::text(200, "ok")).await?;
        let port = server.addr.port();
        let context = context_in(dir.path());

        let untrusted = action()
            .apply(&context, json!({"host": "localhost", "port": port}))
            .await;
        let message = untrusted.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "TLS handshake with localhost:{port} (server name `localhost`) failed: certificate verification failed: unknown issuer"
            )),
            "{message}"
        );
        assert!(
            message.ends_with("the server presented `CN=localhost` for [localhost] issued by `CN=runsheet test CA`, valid until 2100-01-01T00:00:00Z"),
            "{message}"
        );

        let wrong_name = action()
            .apply(
                &context,
                json!({"host": "127.0.0.1", "port": port, "server_name": "kong.example", "ca": "ca.pem"}),
            )
            .await;
        let message = wrong_name.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("name mismatch: expected `kong.example`"),
            "{message}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn names_a_refused_port() -> TestResult {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        drop(listener);
        let outcome = action()
            .apply(
                &StepContext::detached("inspect", false),
                json!({"host": "127.0.0.1", "port": port}),
            )
            .await;
        let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(message, format!("connection refused by 127.0.0.1:{port}"));
        Ok(())
    }
}
