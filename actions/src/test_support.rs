//! Test helpers: a tiny HTTP/1.1 server over plain TCP or TLS that records what
//! it receives ([`TestServer`]), and a test PKI made with rcgen ([`Pki`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Any error in a test.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The message of an action's error; an error itself when the call succeeded.
pub fn message<T: std::fmt::Debug>(
    outcome: Result<T, runsheet_engine::ActionError>,
) -> TestResult<String> {
    match outcome {
        Ok(value) => Err(format!("expected an error, got {value:?}").into()),
        Err(error) => Ok(error.to_string()),
    }
}

/// `context` recording in a list what its write keeps before writing (the journal's
/// part), with `earlier` as what an interrupted attempt kept.
pub fn keeping(
    mut context: runsheet_engine::StepContext,
    earlier: Option<serde_json::Value>,
) -> (runsheet_engine::StepContext, Arc<Mutex<Vec<serde_json::Value>>>) {
    let (keeper, mut kept) =
        tokio::sync::mpsc::unbounded_channel::<(serde_json::Value, tokio::sync::oneshot::Sender<bool>)>();
    let list = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&list);
    tokio::spawn(async move {
        while let Some((state, reply)) = kept.recv().await {
            into.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(state);
            let _answered = reply.send(true);
        }
    });
    context.prepared = runsheet_engine::Prepared::new(earlier, keeper);
    (context, list)
}

/// One request as the server received it.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub client_subject: Option<String>,
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub delay: Option<std::time::Duration>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_string(),
            delay: None,
        }
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: body.to_owned(),
            delay: None,
        }
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A local HTTP(S) server on 127.0.0.1 that records every request.
pub struct TestServer {
    pub addr: SocketAddr,
    scheme: &'static str,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A plain HTTP server.
    pub async fn http(
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> TestResult<Self> {
        Self::start(None, Arc::new(handler)).await
    }

    /// An HTTPS server with this TLS configuration.
    pub async fn https(
        tls: Arc<rustls::ServerConfig>,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> TestResult<Self> {
        Self::start(Some(tls), Arc::new(handler)).await
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> TestResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let recorded = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = Arc::clone(&handler);
                let recorded = Arc::clone(&recorded);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(stream, None, &handler, &recorded).await,
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let subject = stream
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|chain| chain.first())
                                    .and_then(|der| subject_of(der));
                                serve(stream, subject, &handler, &recorded).await;
                            }
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            scheme,
            requests,
            task,
        })
    }

    /// The URL of `path` on this server, by address.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// The URL of `path` on this server, by the name `localhost`.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("{}://localhost:{}{path}", self.scheme, self.addr.port())
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many requests with this method were received.
    pub fn count(&self, method: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }
}

fn subject_of(der: &CertificateDer<'_>) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(certificate.subject().to_string())
}

/// Reads one request, records it, answers it and closes the connection.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    client_subject: Option<String>,
    handler: &Handler,
    recorded: &Mutex<Vec<Recorded>>,
) {
    let Some(mut request) = read_request(&mut stream).await else {
        return;
    };
    request.client_subject = client_subject;
    if let Ok(mut all) = recorded.lock() {
        all.push(request.clone());
    }
    let reply = handler(&request);
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let body = if request.method == "HEAD" {
        ""
    } else {
        reply.body.as_str()
    };
    let response = format!(
        "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\nx-test: a\r\nX-Test: b\r\nconnection: close\r\n\r\n{body}",
        reply.status,
        reply.content_type,
        reply.body.len(),
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(position) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break position + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        client_subject: None,
    })
}

/// A test CA, a server certificate for `localhost` and a client certificate, all signed by the CA.
pub struct Pki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    pub server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl Pki {
    /// A new PKI; the server certificate is valid for `localhost` only, until 2100.
    pub fn new() -> TestResult<Self> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "runsheet test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let (server_chain, server_key) = Self::leaf(
            &issuer,
            ca.der(),
            &["localhost"],
            "localhost",
            (2100, 1, 1),
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "deploy-bot");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &issuer)?;
        Ok(Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            issuer,
            server_chain,
            server_key,
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// A leaf signed by the CA: its chain (leaf, CA) and PKCS#8 key.
    fn leaf(
        issuer: &Issuer<'static, KeyPair>,
        ca_der: &CertificateDer<'static>,
        names: &[&str],
        common_name: &str,
        not_after: (i32, u8, u8),
        purpose: ExtendedKeyUsagePurpose,
    ) -> TestResult<(Vec<CertificateDer<'static>>, Vec<u8>)> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![purpose];
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let certificate = params.signed_by(&key, issuer)?;
        Ok((
            vec![certificate.der().clone(), ca_der.clone()],
            key.serialize_der(),
        ))
    }

    /// A server configuration for a certificate valid for `names` until `not_after` (year, month, day).
    pub fn server_config_for(
        &self,
        names: &[&str],
        not_after: (i32, u8, u8),
    ) -> TestResult<Arc<rustls::ServerConfig>> {
        let (chain, key) = Self::leaf(
            &self.issuer,
            &self.ca_der,
            names,
            names.first().copied().unwrap_or("x"),
            not_after,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        Self::config(chain, key, None)
    }

    /// The server configuration; with `require_client`, clients must present a certificate of this CA.
    pub fn server_config(&self, require_client: bool) -> TestResult<Arc<rustls::ServerConfig>> {
        let client_roots = if require_client {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca_der.clone())?;
            Some(roots)
        } else {
            None
        };
        Self::config(
            self.server_chain.clone(),
            self.server_key.clone(),
            client_roots,
        )
    }

    fn config(
        chain: Vec<CertificateDer<'static>>,
        key: Vec<u8>,
        client_roots: Option<RootCertStore>,
    ) -> TestResult<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let builder = match client_roots {
            Some(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?,
            ),
            None => builder.with_no_client_auth(),
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
        Ok(Arc::new(builder.with_single_cert(chain, key)?))
    }

    /// Writes ca.pem, client.pem and client.key into `dir`.
    pub fn write(&self, dir: &Path) -> TestResult<PathBuf> {
        std::fs::write(dir.join("ca.pem"), &self.ca_pem)?;
        std::fs::write(dir.join("client.pem"), &self.client_cert_pem)?;
        std::fs::write(dir.join("client.key"), &self.client_key_pem)?;
        Ok(dir.to_path_buf())
    }
}
