//! The Kong twin's TLS listeners: the Admin API over TLS and mTLS (reference §1.2), and
//! the certificate chosen by SNI from `/certificates` and `/snis` (§7.9-§7.10), checked
//! with real TLS clients.
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use runsheet_twin::kong::TlsSettings;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

mod pki;
mod support;
use pki::{Authority, Pair};
use support::Admin;

/// A loopback listener on a free port.
async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// A client trusting `authority` that reaches `host` at `address`, with an optional identity.
fn https_client(
    authority: &Authority,
    host: &str,
    address: SocketAddr,
    identity: Option<&Pair>,
) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(authority.pair.cert.as_bytes()).unwrap(),
        )
        .resolve(host, address);
    if let Some(identity) = identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(identity.identity_pem().as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn the_admin_api_over_tls_serves_the_twins_state() {
    let mut admin = Admin::start().await;
    let authority = Authority::new("Admin CA");
    let server = authority.issue(&["admin.test"]);
    let directory = std::env::temp_dir().join(format!("twin-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&directory).unwrap();
    let (cert_path, key_path) = (directory.join("cert.pem"), directory.join("key.pem"));
    std::fs::write(&cert_path, &server.cert).unwrap();
    std::fs::write(&key_path, &server.key).unwrap();
    let settings = TlsSettings::from_pem_files(&cert_path, &key_path, None).unwrap();
    std::fs::remove_dir_all(&directory).unwrap();

    let address = admin
        .twin
        .serve_admin_tls(loopback().await, settings)
        .await
        .unwrap();
    let client = https_client(&authority, "admin.test", address, None);
    let base = format!("https://admin.test:{}", address.port());
    let root = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(root.headers()["server"], "kong/3.4.2");

    let created = client
        .post(format!("{base}/services"))
        .json(&json!({"name": "billing", "url": "http://billing.internal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // The TLS and plain listeners serve one state.
    assert_eq!(admin.get("/services/billing").await.status, 200);
}

#[tokio::test]
async fn mtls_admits_only_clients_with_a_certificate_from_the_client_ca() {
    let mut admin = Admin::start().await;
    let server_ca = Authority::new("Admin CA");
    let client_ca = Authority::new("Client CA");
    let server = server_ca.issue(&["admin.test"]);
    let settings = TlsSettings::from_pem(&server.cert, &server.key)
        .unwrap()
        .with_client_ca_pem(&client_ca.pair.cert)
        .unwrap();
    let address = admin
        .twin
        .serve_admin_tls(loopback().await, settings)
        .await
        .unwrap();
    let url = format!("https://admin.test:{}/", address.port());

    let anonymous = https_client(&server_ca, "admin.test", address, None);
    assert!(anonymous.get(&url).send().await.is_err());

    let stranger = Authority::new("Other CA").issue(&["operator"]);
    let untrusted = https_client(&server_ca, "admin.test", address, Some(&stranger));
    assert!(untrusted.get(&url).send().await.is_err());

    let operator = client_ca.issue(&["operator"]);
    let trusted = https_client(&server_ca, "admin.test", address, Some(&operator));
    let reply = trusted.get(&url).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["version"], "3.4.2");
}

#[tokio::test]
async fn settings_that_do_not_parse_or_match_are_refused() {
    let mut admin = Admin::start().await;
    let error = TlsSettings::from_pem("nope", "nope").unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let (one, other) = (pki::ecdsa(&["a.test"]), pki::ecdsa(&["a.test"]));
    let mismatched = TlsSettings::from_pem(&one.cert, &other.key).unwrap();
    assert!(
        admin
            .twin
            .serve_admin_tls(loopback().await, mismatched)
            .await
            .is_err()
    );
}

/// A verifier that accepts any server certificate, offering `schemes`.
#[derive(Debug)]
struct AcceptAny {
    /// Signature schemes the client offers.
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// The leaf certificate (DER) presented to a client sending `server_name` as SNI
/// (an IP address sends none), offering `schemes` or every scheme ring verifies.
async fn presented_with(
    address: SocketAddr,
    server_name: &str,
    schemes: Option<Vec<SignatureScheme>>,
) -> Vec<u8> {
    let provider = rustls::crypto::ring::default_provider();
    let schemes = schemes.unwrap_or_else(|| {
        provider
            .signature_verification_algorithms
            .supported_schemes()
    });
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny { schemes }))
        .with_no_client_auth();
    let stream = TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// The leaf certificate presented for `server_name`.
async fn presented(address: SocketAddr, server_name: &str) -> Vec<u8> {
    presented_with(address, server_name, None).await
}

/// A twin serving a one-route app over TLS by SNI, with `fallback` as default certificate.
async fn sni_listener(admin: &mut Admin, fallback: &Pair) -> SocketAddr {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "proxied" }));
    let fallback = TlsSettings::from_pem(&fallback.cert, &fallback.key).unwrap();
    admin
        .twin
        .serve_tls_by_sni(loopback().await, app, Some(fallback))
        .await
        .unwrap()
}

/// Stores a certificate for `pair` selected by `snis`.
async fn store(admin: &Admin, pair: &Pair, snis: &[&str]) {
    let reply = admin
        .post(
            "/certificates",
            json!({"cert": pair.cert, "key": pair.key, "snis": snis}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn the_sni_picks_exact_then_wildcard_certificates_then_the_default() {
    let mut admin = Admin::start().await;
    let fallback = pki::ecdsa(&["default.test"]);
    let exact = pki::ecdsa(&["a.test"]);
    let leftmost = pki::ecdsa(&["*.wild.test"]);
    let rightmost = pki::ecdsa(&["suffix.*"]);
    store(&admin, &exact, &["a.test"]).await;
    store(&admin, &leftmost, &["*.wild.test"]).await;
    store(&admin, &rightmost, &["suffix.*"]).await;
    let address = sni_listener(&mut admin, &fallback).await;

    assert_eq!(presented(address, "a.test").await, exact.der());
    assert_eq!(presented(address, "api.wild.test").await, leftmost.der());
    assert_eq!(presented(address, "suffix.example").await, rightmost.der());
    assert_eq!(presented(address, "other.test").await, fallback.der());
    assert_eq!(presented(address, "127.0.0.1").await, fallback.der());

    // An SNI named `*` takes the place of the default certificate for unmatched names.
    let catch_all = pki::ecdsa(&["catch-all"]);
    store(&admin, &catch_all, &["*"]).await;
    assert_eq!(presented(address, "other.test").await, catch_all.der());
    assert_eq!(presented(address, "a.test").await, exact.der());

    // And the listener serves the app behind the handshake.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("a.test", address)
        .build()
        .unwrap();
    let reply = client
        .get(format!("https://a.test:{}/", address.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.text().await.unwrap(), "proxied");
}

#[tokio::test]
async fn a_rotated_certificate_is_presented_at_the_next_handshake() {
    let mut admin = Admin::start().await;
    let fallback = pki::ecdsa(&["default.test"]);
    let old = pki::ecdsa(&["a.test"]);
    store(&admin, &old, &["a.test"]).await;
    let address = sni_listener(&mut admin, &fallback).await;
    assert_eq!(presented(address, "a.test").await, old.der());

    let new = pki::ecdsa(&["a.test"]);
    let rotated = admin
        .patch(
            "/certificates/a.test",
            json!({"cert": new.cert, "key": new.key}),
        )
        .await;
    assert_eq!(rotated.status, 200);
    assert_eq!(presented(address, "a.test").await, new.der());

    assert_eq!(admin.delete("/snis/a.test").await.status, 204);
    assert_eq!(presented(address, "a.test").await, fallback.der());
}

#[tokio::test]
async fn a_client_that_only_verifies_the_alternative_key_type_gets_the_alternative() {
    let mut admin = Admin::start().await;
    let fallback = pki::ecdsa(&["default.test"]);
    let main = pki::ecdsa(&["a.test"]);
    let alternative = pki::ed25519(&["a.test"]);
    let reply = admin
        .post(
            "/certificates",
            json!({"cert": main.cert, "key": main.key, "cert_alt": alternative.cert,
                   "key_alt": alternative.key, "snis": ["a.test"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let address = sni_listener(&mut admin, &fallback).await;

    assert_eq!(presented(address, "a.test").await, main.der());
    let ed25519_only =
        presented_with(address, "a.test", Some(vec![SignatureScheme::ED25519])).await;
    assert_eq!(ed25519_only, alternative.der());
}
