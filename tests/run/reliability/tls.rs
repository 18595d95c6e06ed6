//! Reliability matrix: TLS refusals. A small rustls server in the test presents
//! certificates made here with rcgen (expired, for another host, self-signed, from a CA
//! the client does not trust) to the `http` action, the Kong gateway client
//! (`kong.status`) and the Layer7 gateway client (`layer7.ping`), run by the binary:
//! each is refused by default with a message naming the reason. A server requiring a
//! client certificate from its CA refuses one from another CA, clearly; `insecure:
//! true` connects and is announced in the output and the report of every run.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber, date_time_ymd,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::lab::{Lab, Run, TestResult};
use crate::reliability::report;
use crate::traffic::Outcome;

/// A CA made in the test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

/// A certificate and its key, DER and PEM.
struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
    pem: String,
    key_pem: String,
}

impl Ca {
    fn new(name: &str) -> Outcome<Ca> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A leaf for `names`, valid until `until` (year, month, day) or a year from now.
    fn leaf(&self, names: &[&str], until: Option<(i32, u8, u8)>) -> Outcome<Leaf> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.serial_number = Some(SerialNumber::from(vec![0x51, 0x07]));
        if let Some((year, month, day)) = until {
            params.not_before = date_time_ymd(year - 1, month, day);
            params.not_after = date_time_ymd(year, month, day);
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            chain: vec![cert.der().clone()],
            key: key.serialize_der(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A self-signed leaf for `localhost`.
fn self_signed() -> Outcome<Leaf> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    Ok(Leaf {
        chain: vec![made.cert.der().clone()],
        key: made.signing_key.serialize_der(),
        pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
    })
}

/// A TLS server on loopback answering every request with a fixed JSON body, or
/// relaying the decrypted bytes to `backend`. Stops with its runtime.
struct Server {
    address: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Presents `leaf`; requires a client certificate from `client_ca` when given.
    fn start(leaf: &Leaf, client_ca: Option<&Ca>, backend: Option<String>) -> Outcome<Server> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.der.clone())?;
                builder.with_client_cert_verifier(
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()?,
                )
            }
            None => builder.with_no_client_auth(),
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.clone()));
        let config = Arc::new(builder.with_single_cert(leaf.chain.clone(), key)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let backend = backend.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    match backend {
                        Some(backend) => {
                            if let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await {
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                            }
                        }
                        None => {
                            let mut buffer = vec![0; 16 * 1024];
                            let _ = tls.read(&mut buffer).await;
                            let body = "{\"served\": true}";
                            let reply = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = tls.write_all(reply.as_bytes()).await;
                            let _ = tls.shutdown().await;
                        }
                    }
                });
            }
        });
        Ok(Server {
            address,
            _runtime: runtime,
        })
    }

    /// `https://localhost:PORT`.
    fn url(&self) -> String {
        format!("https://localhost:{}", self.address.port())
    }
}

/// Which client of the binary connects (named by its action, `-` for `.`).
#[derive(Clone, Copy)]
enum Client {
    Http,
    Kong,
    Layer7,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Http => "http",
            Client::Kong => "kong-status",
            Client::Layer7 => "layer7-ping",
        }
    }
}

/// Runs one step of `client` against `url` with the TLS settings `tls` (a YAML flow
/// mapping, file names relative to the lab), a report directory `reports/NAME`.
fn connect(lab: &Lab, client: Client, url: &str, tls: &str, name: &str) -> Outcome<Run> {
    let (gateway, step) = match client {
        Client::Http => (
            String::new(),
            format!("action: http\n    with: {{url: '{url}/', tls: {tls}}}"),
        ),
        Client::Kong => (
            format!("gateways:\n  kong: {{type: kong, admin_url: '{url}', tls: {tls}}}\n"),
            "action: kong.status".to_owned(),
        ),
        Client::Layer7 => (
            format!(
                "gateways:\n  l7: {{type: layer7, url: '{url}', username: admin, password: password, tls: {tls}}}\n"
            ),
            "action: layer7.ping".to_owned(),
        ),
    };
    lab.write(
        &format!("{name}-env.yaml"),
        &format!("runsheet: 1\nname: {name}\n{gateway}hosts:\n  me: {{transport: local}}\n"),
    )?;
    lab.write(
        &format!("{name}.yaml"),
        &format!("runsheet: 1\nname: {name}\nsteps:\n  - id: connect\n    {step}\n"),
    )?;
    let reports = format!("reports/{name}");
    Ok(lab.run(&[
        "run",
        &format!("{name}.yaml"),
        "--env",
        &format!("{name}-env.yaml"),
        "--report-dir",
        &reports,
    ])?)
}

#[test]
fn bad_certificates_are_refused_by_every_client_with_the_reason_and_insecure_is_announced()
-> TestResult {
    let lab = Lab::new()?;
    let ca = Ca::new("runsheet test CA")?;
    let other_ca = Ca::new("some other CA")?;
    lab.write("ca.pem", &ca.pem)?;
    let cases: Vec<(&str, Leaf, &str)> = vec![
        (
            "expired",
            ca.leaf(&["localhost"], Some((2024, 1, 1)))?,
            "expired",
        ),
        (
            "wrong host",
            ca.leaf(&["other.example"], None)?,
            "name mismatch",
        ),
        ("self-signed", self_signed()?, "self-signed"),
        (
            "untrusted CA",
            other_ca.leaf(&["localhost"], None)?,
            "unknown issuer",
        ),
    ];
    let mut rows = Vec::new();
    for (case, leaf, reason) in &cases {
        let server = Server::start(leaf, None, None)?;
        for client in [Client::Http, Client::Kong, Client::Layer7] {
            let name = format!(
                "{}-{}",
                case.replace(' ', "-").to_lowercase(),
                client.name()
            );
            let run = connect(&lab, client, &server.url(), "{ca: ca.pem}", &name)?;
            assert_eq!(
                run.code,
                Some(1),
                "{case} via {}: {}",
                client.name(),
                run.all()
            );
            assert!(
                run.all().contains(reason),
                "{case} via {}: the reason `{reason}` is named: {}",
                client.name(),
                run.all()
            );
            rows.push(vec![
                (*case).to_owned(),
                client.name().to_owned(),
                "refused (exit 1)".to_owned(),
                shown_reason(&run),
            ]);
        }
    }

    // mTLS: the server trusts client certificates of `client_ca` only.
    let client_ca = Ca::new("client CA")?;
    let served = ca.leaf(&["localhost"], None)?;
    let mtls = Server::start(&served, Some(&client_ca), None)?;
    let wrong = other_ca.leaf(&["runsheet-client"], None)?;
    let right = client_ca.leaf(&["runsheet-client"], None)?;
    lab.write("wrong.pem", &wrong.pem)?;
    lab.write("wrong-key.pem", &wrong.key_pem)?;
    lab.write("right.pem", &right.pem)?;
    lab.write("right-key.pem", &right.key_pem)?;
    for client in [Client::Http, Client::Kong, Client::Layer7] {
        let name = format!("mtls-wrong-{}", client.name());
        let tls = "{ca: ca.pem, client_cert: wrong.pem, client_key: wrong-key.pem}";
        let run = connect(&lab, client, &mtls.url(), tls, &name)?;
        assert_eq!(run.code, Some(1), "{}", run.all());
        assert!(
            run.all().contains("refused the client certificate"),
            "mTLS with a wrong client certificate via {}: {}",
            client.name(),
            run.all()
        );
        rows.push(vec![
            "mTLS, client certificate from another CA".to_owned(),
            client.name().to_owned(),
            "refused (exit 1)".to_owned(),
            shown_reason(&run),
        ]);
        let name = format!("mtls-none-{}", client.name());
        let run = connect(&lab, client, &mtls.url(), "{ca: ca.pem}", &name)?;
        assert_eq!(run.code, Some(1), "{}", run.all());
        rows.push(vec![
            "mTLS, no client certificate".to_owned(),
            client.name().to_owned(),
            "refused (exit 1)".to_owned(),
            shown_reason(&run),
        ]);
    }
    let tls = "{ca: ca.pem, client_cert: right.pem, client_key: right-key.pem}";
    let run = connect(&lab, Client::Http, &mtls.url(), tls, "mtls-right")?;
    run.assert_ended(0, &[]);
    rows.push(vec![
        "mTLS, client certificate from the server's CA".to_owned(),
        "http".to_owned(),
        "accepted (exit 0)".to_owned(),
        "-".to_owned(),
    ]);

    // insecure: true connects to the self-signed server and says so, in the output and
    // in the report, on every run. Kong's client reaches a real twin through the server.
    lab.write("seed.yaml", "_format_version: '3.0'\n")?;
    let twin = crate::traffic::TwinProcess::start(&lab, "seed.yaml")?;
    let backend = twin
        .admin_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let relay = Server::start(&cases[2].1, None, Some(backend))?;
    let plain = Server::start(&cases[2].1, None, None)?;
    for (client, url) in [(Client::Http, plain.url()), (Client::Kong, relay.url())] {
        for attempt in 1..=2 {
            let name = format!("insecure-{}-{attempt}", client.name());
            let run = connect(&lab, client, &url, "{insecure: true}", &name)?;
            run.assert_ended(0, &[]);
            let announced = "tls verification is off";
            assert!(
                run.all().to_lowercase().contains(announced),
                "insecure via {} announced in run {attempt}: {}",
                client.name(),
                run.all()
            );
            let closure =
                std::fs::read_to_string(lab.path().join(format!("reports/{name}/closure.md")))?;
            let json =
                std::fs::read_to_string(lab.path().join(format!("reports/{name}/report.json")))?;
            assert!(
                closure.to_lowercase().contains(announced)
                    && json.to_lowercase().contains(announced),
                "insecure via {} announced in the report of run {attempt}:\n{closure}\n{json}",
                client.name()
            );
        }
        rows.push(vec![
            "self-signed with `insecure: true` (2 runs)".to_owned(),
            client.name().to_owned(),
            "accepted (exit 0), announced in output, closure.md and report.json each run"
                .to_owned(),
            "-".to_owned(),
        ]);
    }
    report(
        "TLS: refusals by default",
        &["case", "client", "outcome", "reason shown"],
        &rows,
    );
    Ok(())
}

/// The part of a refused run's output that says why (the failure line, cut).
fn shown_reason(run: &Run) -> String {
    let all = run.all();
    let line = all
        .lines()
        .find(|line| {
            line.contains("certificate") || line.contains("TLS") || line.contains("handshake")
        })
        .unwrap_or("(no reason found)");
    let start = ["certificate verification failed: ", "the server "]
        .iter()
        .find_map(|marker| line.find(marker))
        .unwrap_or(0);
    line[start..]
        .chars()
        .take(110)
        .collect::<String>()
        .replace('|', "/")
}
