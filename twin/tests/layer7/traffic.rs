//! Published services and TLS listen ports over real connections.

use std::sync::{Arc, Mutex};

use runsheet_twin::layer7::traffic::NOT_FOUND;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::support::{Gateway, TestResult, hardcoded_policy, resource, service};

#[tokio::test]
async fn published_services_answer_route_and_404_like_layer7() -> TestResult {
    let gateway = Gateway::start().await?;
    gateway
        .create(
            "services",
            service(
                "back",
                "/back",
                &hardcoded_policy(201, "from the back"),
                None,
            ),
        )
        .await?;
    let routing = format!(
        r#"<wsp:Policy xmlns:L7p="http://www.layer7tech.com/ws/policy" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"><wsp:All wsp:Usage="Required"><L7p:HttpRoutingAssertion><L7p:ProtectedServiceUrl stringValue="{}/back"/></L7p:HttpRoutingAssertion></wsp:All></wsp:Policy>"#,
        gateway.twin.url()
    );
    gateway
        .create("services", service("front", "/front/*", &routing, None))
        .await?;
    let back = gateway
        .http
        .get(format!("{}/back", gateway.twin.url()))
        .send()
        .await?;
    assert_eq!(back.status(), 201);
    assert_eq!(back.headers()["content-type"], "text/plain; charset=UTF-8");
    assert_eq!(back.text().await?, "from the back");
    let routed = gateway
        .http
        .post(format!("{}/front/orders/1", gateway.twin.url()))
        .send()
        .await?;
    assert_eq!(routed.status(), 201);
    assert_eq!(routed.text().await?, "from the back");
    let nowhere = gateway
        .http
        .get(format!("{}/nowhere", gateway.twin.url()))
        .send()
        .await?;
    assert_eq!(nowhere.status(), 404);
    assert_eq!(nowhere.text().await?.trim(), NOT_FOUND);
    let wrong_verb = gateway
        .http
        .delete(format!("{}/back", gateway.twin.url()))
        .send()
        .await?;
    assert_eq!(wrong_verb.status(), 404);
    // A disabled service no longer resolves.
    let list = gateway.get("services?name=back").await?;
    let item = list.xml.find("Item").ok_or("no service")?;
    let id = item.child_text("Id").ok_or("no id")?;
    let version = resource(item)
        .and_then(|s| s.attribute("version"))
        .ok_or("no version")?;
    let disabled = service(
        "back",
        "/back",
        &hardcoded_policy(201, "from the back"),
        None,
    )
    .replace(
        "<l7:Enabled>true</l7:Enabled>",
        "<l7:Enabled>false</l7:Enabled>",
    )
    .replace(
        "<l7:Service ",
        &format!("<l7:Service id=\"{id}\" version=\"{version}\" "),
    );
    assert_eq!(
        gateway
            .put(&format!("services/{id}"), disabled)
            .await?
            .status,
        200
    );
    let off = gateway
        .http
        .get(format!("{}/back", gateway.twin.url()))
        .send()
        .await?;
    assert_eq!(off.status(), 404);
    Ok(())
}

/// Accepts any server certificate and remembers the last one presented.
#[derive(Debug, Default)]
struct Recorder {
    /// The last leaf certificate seen.
    seen: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.to_vec());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The leaf certificate presented at `address`.
async fn presented(address: std::net::SocketAddr) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let recorder = Arc::new(Recorder::default());
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
    let stream = TcpStream::connect(address).await?;
    let _tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost")?, stream)
        .await?;
    let seen = recorder.seen.lock().map_err(|_| "poisoned")?.clone();
    Ok(seen.ok_or("no certificate presented")?)
}

/// The DER of the first certificate of private key `id`.
async fn key_certificate(
    gateway: &Gateway,
    id: &str,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let key = gateway.get(&format!("privateKeys/{id}")).await?;
    let encoded = resource(&key.xml)
        .and_then(|key| key.find("CertificateChain"))
        .and_then(|chain| chain.find("CertificateData"))
        .and_then(|data| data.child_text("Encoded"))
        .ok_or("no certificate")?;
    Ok(base64::engine::general_purpose::STANDARD.decode(encoded)?)
}

#[tokio::test]
async fn a_listen_port_presents_the_key_it_names_from_the_next_handshake() -> TestResult {
    let mut gateway = Gateway::start().await?;
    let served = gateway.twin.serve_listen_ports().await?;
    assert_eq!(served.len(), 3, "the three HTTPS ports: {served:?}");
    let port = served
        .iter()
        .find(|port| port.name == "Default HTTPS (8443)")
        .ok_or("no 8443")?
        .clone();
    let ssl = key_certificate(&gateway, "00000000000000000000000000000002:ssl").await?;
    assert_eq!(presented(port.address).await?, ssl);

    // The entity records the bound port.
    let entity = gateway.get(&format!("listenPorts/{}", port.id)).await?;
    let listen_port = resource(&entity.xml).ok_or("no listen port")?;
    assert_eq!(
        listen_port.child_text("Port"),
        Some(port.address.port().to_string().as_str())
    );

    // A new key, and the listen port switched to it.
    let new_id = "00000000000000000000000000000002:next";
    let context = r#"<l7:PrivateKeyCreationContext xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:Dn>CN=next</l7:Dn></l7:PrivateKeyCreationContext>"#;
    assert_eq!(
        gateway
            .post(&format!("privateKeys/{new_id}"), context.to_owned())
            .await?
            .status,
        201
    );
    let switched = listen_port
        .clone()
        .to_document()
        .replace(":ssl\"", ":next\"");
    let switched = runsheet_twin::layer7::restman::xml::parse(&switched)?;
    let mut switched = switched;
    prefix(&mut switched);
    let answer = gateway
        .put(&format!("listenPorts/{}", port.id), switched.to_document())
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let next = key_certificate(&gateway, new_id).await?;
    assert_ne!(next, ssl);
    assert_eq!(presented(port.address).await?, next);

    // Management is served there too ("Administrative access").
    let over_tls = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?
        .get(format!(
            "https://127.0.0.1:{}/ssg/ping",
            port.address.port()
        ))
        .send()
        .await?;
    assert_eq!(over_tls.status(), 200);
    Ok(())
}

/// Puts the `l7:` prefix back on every element of a parsed tree.
fn prefix(element: &mut runsheet_twin::layer7::restman::xml::Element) {
    if !element.name.contains(':') {
        element.name = format!("l7:{}", element.name);
    }
    for child in &mut element.children {
        prefix(child);
    }
}

#[tokio::test]
async fn the_management_listener_serves_tls_and_requires_client_certificates_with_a_ca()
-> TestResult {
    use crate::pki::Authority;
    use runsheet_twin::kong::TlsSettings;
    use runsheet_twin::layer7::{Layer7Config, Layer7Twin};

    let authority = Authority::new("Gateway CA");
    let server = authority.issue(&["gw.test"]);
    let client = authority.issue(&["operator"]);
    let settings = TlsSettings::from_pem(&server.cert, &server.key)?
        .with_client_ca_pem(&authority.pair.cert)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let twin = Layer7Twin::serve(listener, Layer7Config::default(), Some(settings)).await?;
    assert!(twin.url().starts_with("https://"));
    let base = format!("https://gw.test:{}", twin.address().port());
    let builder = || {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(
                authority.pair.cert.as_bytes(),
            )?)
            .resolve("gw.test", twin.address())
            .build()
    };
    let anonymous = builder()?;
    assert!(
        anonymous
            .get(format!("{base}/ssg/ping"))
            .send()
            .await
            .is_err(),
        "no client certificate, no handshake"
    );
    let operator = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(
            authority.pair.cert.as_bytes(),
        )?)
        .identity(reqwest::Identity::from_pem(
            client.identity_pem().as_bytes(),
        )?)
        .resolve("gw.test", twin.address())
        .build()?;
    let list = operator
        .get(format!("{base}/restman/1.0/folders"))
        .basic_auth("admin", Some("password"))
        .send()
        .await?;
    assert_eq!(list.status(), 200);
    let text = list.text().await?;
    assert!(
        text.contains(&format!("uri=\"{base}/restman/1.0/folders")),
        "{text}"
    );
    Ok(())
}
