//! The shipped rotation playbooks `kong-key-rotation` and `kong-cert-rotation`, run by
//! the real binary against the Kong data-plane lab of `kong_nodes.rs` (standalone twin,
//! three node processes): a key rotation under load with clients switching inside the validation
//! window (0 failed requests), its date checks, its undo when publishing fails, and a
//! certificate rotation proved and rolled back by TLS handshakes through the proxy's
//! TLS listener; every plan with zero writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};

use crate::kong_nodes::{ALICE_KEY, Certificate, KongLab, Options, assert_hidden};
use crate::lab::{KvServer, Run, TestResult};
use crate::traffic::{Load, Outcome, assert_rotation_seen, get, request, switching_keys};

/// An RFC 3339 time `seconds` from now, whole seconds.
fn in_seconds(seconds: i64) -> String {
    at_seconds(seconds).0
}

/// An RFC 3339 time `seconds` from now, whole seconds, and the [`Instant`] it falls at.
fn at_seconds(seconds: i64) -> (String, Instant) {
    let now = jiff::Timestamp::now();
    let at = jiff::Timestamp::from_second(now.as_second() + seconds).unwrap_or(now);
    let ahead = u64::try_from(at.as_millisecond() - now.as_millisecond()).unwrap_or(0);
    (
        at.to_string(),
        Instant::now() + Duration::from_millis(ahead),
    )
}

/// Runs the key rotation playbook for alice with `sets`.
fn rotate(lab: &KongLab, verb: &str, sets: &[&str]) -> std::io::Result<Run> {
    let mut all = vec!["consumer=alice", "validation_path=/orders"];
    all.extend_from_slice(sets);
    lab.run(verb, "kong-key-rotation.yaml", &all)
}

#[test]
fn a_key_rotation_to_an_enforcement_date_fails_no_request_from_clients_switching_inside_the_window()
-> TestResult {
    let lab = KongLab::plain()?;
    let store = Arc::new(KvServer::start()?);
    let publish = format!("publish_url={}/kv/alice", store.url);
    let deprecation = format!("deprecation_date={}", in_seconds(1));
    let (enforcement, enforced_at) = at_seconds(5);
    let enforcement = format!("enforcement_date={enforcement}");
    let dates = [
        deprecation.as_str(),
        enforcement.as_str(),
        "overlap=2s",
        publish.as_str(),
    ];

    let planned = rotate(&lab, "plan", &dates)?;
    planned.assert_ended(0, &["add a key for consumer alice"]);
    assert_eq!(lab.twin.writes()?, 0, "a plan writes nothing");
    assert!(store.state().values.is_empty(), "a plan publishes nothing");

    // Clients 0-3 switch to the new key once it is published, 0.6 s apart; clients 4-5
    // keep the old key throughout.
    let choice = switching_keys(Arc::clone(&store), "alice", ALICE_KEY, 4, |client| {
        Duration::from_millis(600 * client as u64)
    });
    let load = Load::start(&lab.url("/orders"), 6, choice);
    let run = rotate(&lab, "run", &dates)?;
    std::thread::sleep(
        (enforced_at + Duration::from_millis(2500)).saturating_duration_since(Instant::now()),
    );
    let tallies = load.finish();
    run.assert_ended(0, &[]);
    assert!(
        run.stdout.contains("expire at"),
        "the old key expires at the enforcement date: {}",
        run.all()
    );

    let new_key = store
        .state()
        .values
        .get("alice")
        .cloned()
        .ok_or("the key was not published")?;
    assert_hidden(&lab.lab, &run, &new_key)?;

    // The old key worked until the enforcement date, and was revoked then.
    assert_rotation_seen(
        "key rotation to an enforcement date",
        &tallies,
        4,
        (ALICE_KEY, &new_key),
        enforced_at,
        20,
    );
    assert_eq!(
        request(&lab.url("/orders"), &[("apikey", ALICE_KEY)])?.0,
        401
    );
    assert_eq!(
        request(&lab.url("/orders"), &[("apikey", &new_key)])?.0,
        200
    );
    Ok(())
}

#[test]
fn a_key_rotation_refuses_dates_out_of_order_and_is_undone_when_publishing_fails() -> TestResult {
    let lab = KongLab::plain()?;

    let deprecation = format!("deprecation_date={}", in_seconds(7200));
    let enforcement = format!("enforcement_date={}", in_seconds(3600));
    let refused = rotate(&lab, "run", &[&deprecation, &enforcement])?;
    refused.assert_ended(1, &["is before deprecation_date"]);
    let short = format!("enforcement_date={}", in_seconds(600));
    let refused = rotate(&lab, "run", &[&short, "overlap=1h"])?;
    refused.assert_ended(1, &["less than the overlap"]);
    // A date already past (a mistyped year) would revoke every old key at once.
    let past = "enforcement_date=2020-01-01T00:00:00Z";
    let refused = rotate(&lab, "run", &[past])?;
    refused.assert_ended(1, &["has passed", "revoke_now=true"]);
    assert_eq!(lab.twin.writes()?, 0, "refused before any write");

    // The store refuses the key (404 outside /kv): the rotation is undone.
    let store = KvServer::start()?;
    let publish = format!("publish_url={}/elsewhere/alice", store.url);
    let failed = rotate(&lab, "run", &[&publish, "overlap=1h"])?;
    failed.assert_ended(1, &["undone  rotate"]);
    assert!(
        lab.twin.writes()? > 0,
        "the rotation wrote before it was undone"
    );
    assert_eq!(
        lab.twin.key_auth("alice")?,
        vec![(ALICE_KEY.to_owned(), None)],
        "alice has her old key again, without an expiry, and only it"
    );
    assert_eq!(
        request(&lab.url("/orders"), &[("apikey", ALICE_KEY)])?.0,
        200
    );
    Ok(())
}

/// A test CA and certificates it issues for `localhost` (a name that resolves, for the
/// HTTPS smoke request) with a chosen serial.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> Outcome<TestCa> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "runsheet lab CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key)?.pem();
        Ok(TestCa {
            issuer: Issuer::new(params, key),
            pem,
        })
    }

    /// A leaf for `localhost` with `serial`: (certificate, key) PEM.
    fn leaf(&self, serial: &[u8]) -> Outcome<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.serial_number = Some(SerialNumber::from(serial.to_vec()));
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// The serial the proxy's TLS listener presents for `localhost`, read by a `tls.inspect`
/// step run by the binary, trusting the test CA.
fn served_serial(lab: &KongLab) -> Outcome<String> {
    let url = lab.twin.proxy_tls_url.trim_start_matches("https://");
    let (host, port) = url.rsplit_once(':').ok_or("no port in proxy_tls_url")?;
    lab.lab.write(
        "inspect.yaml",
        &format!(
            "runsheet: 1\nname: inspect\nsteps:\n  - id: hello\n    action: tls.inspect\n    with: {{host: '{host}', port: {port}, server_name: localhost, ca: ca.pem}}\n  - id: show\n    action: log\n    with: {{message: \"serial={{{{ steps.hello.outputs.serial }}}}\"}}\n"
        ),
    )?;
    let run = lab.runsheet(&[
        "run",
        "inspect.yaml",
        "--env",
        "env.yaml",
        "--state-dir",
        ".inspect-state",
    ])?;
    if run.code != Some(0) {
        return Err(format!("inspect: {}", run.all()).into());
    }
    let serial = run
        .stdout
        .split("serial=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| format!("no serial in {}", run.stdout))?;
    Ok(serial.to_owned())
}

/// How many certificates the gateway holds.
fn certificates(lab: &KongLab) -> Outcome<usize> {
    let (_, page) = lab.admin("/certificates")?;
    Ok(page["data"].as_array().map_or(0, Vec::len))
}

/// Runs the certificate rotation of `localhost` to `new.pem`, its key from the
/// `NEW_CERT_KEY` secret (the file `key_file`), with `sets`.
fn rotate_cert(lab: &KongLab, verb: &str, key_file: &str, sets: &[&str]) -> Outcome<Run> {
    let playbook = format!(
        "{}/playbooks/kong-cert-rotation.yaml",
        crate::kong_nodes::ROOT
    );
    let cert = format!("cert={}", lab.lab.path().join("new.pem").display());
    let ca = format!("ca={}", lab.lab.path().join("ca.pem").display());
    let mut args = vec![verb, playbook.as_str(), "--env", "env.yaml"];
    for set in [
        "sni=localhost",
        cert.as_str(),
        "key=NEW_CERT_KEY",
        ca.as_str(),
    ]
    .iter()
    .chain(sets)
    {
        args.extend(["--set", set]);
    }
    let mut command = lab.command(&args);
    command.env("NEW_CERT_KEY_FILE", lab.lab.path().join(key_file));
    Ok(lab.lab.run_with(command)?)
}

#[test]
fn a_certificate_rotation_is_proved_by_handshakes_and_a_failure_serves_the_old_certificate_again()
-> TestResult {
    let ca = TestCa::new()?;
    let (old_cert, old_key) = ca.leaf(&[0x0a, 0x01])?;
    let (new_cert, new_key) = ca.leaf(&[0x0b, 0x02])?;
    let lab = KongLab::build(
        Options {
            certificate: Some(Certificate {
                cert: &old_cert,
                key: &old_key,
                sni: "localhost",
            }),
            ..Options::default()
        },
        |env| env,
    )?;
    lab.lab.write("ca.pem", &ca.pem)?;
    lab.lab.write("new.pem", &new_cert)?;
    lab.lab.write("new-key.pem", &new_key)?;
    lab.lab.write("old-key.pem", &old_key)?;
    assert_eq!(served_serial(&lab)?, "0a:01");

    let planned = rotate_cert(&lab, "plan", "new-key.pem", &[])?;
    planned.assert_ended(0, &["move SNIs localhost"]);
    assert_eq!(lab.twin.writes()?, 0, "a plan writes nothing");

    // Pre-checks: a key that is not the certificate's is refused before any write.
    let refused = rotate_cert(&lab, "run", "old-key.pem", &[])?;
    refused.assert_ended(1, &["does not match"]);
    assert_eq!(lab.twin.writes()?, 0, "refused before any write");

    // A failing smoke request (key-auth answers 401 without a key) after the move: the
    // rotation is undone and the old certificate is served again.
    let failed = rotate_cert(
        &lab,
        "run",
        "new-key.pem",
        &["smoke_path=/orders", "smoke_status=200"],
    )?;
    failed.assert_ended(1, &["undone  rotate"]);
    assert_eq!(
        served_serial(&lab)?,
        "0a:01",
        "the old certificate is served again"
    );
    assert_eq!(certificates(&lab)?, 1, "the new certificate was deleted");

    let done = rotate_cert(&lab, "run", "new-key.pem", &["smoke_path=/catalog"])?;
    done.assert_ended(0, &[]);
    assert_eq!(
        served_serial(&lab)?,
        "0b:02",
        "the new certificate is served"
    );
    assert_eq!(certificates(&lab)?, 2, "the old certificate is kept");
    assert!(done.stdout.contains("serial 0b:02"), "{}", done.all());
    for (path, text) in lab.lab.artefacts()? {
        if !path.ends_with("new-key.pem")
            && !path.ends_with("kong.yaml")
            && !path.ends_with("old-key.pem")
        {
            assert!(
                !text.contains(new_key.trim()),
                "{} holds the new private key",
                path.display()
            );
        }
    }
    assert!(!done.all().contains("PRIVATE KEY"), "{}", done.all());

    // Idempotent: the SNI already serves the new certificate.
    let writes = lab.twin.writes()?;
    let again = rotate_cert(&lab, "run", "new-key.pem", &[])?;
    again.assert_ended(0, &[]);
    assert_eq!(lab.twin.writes()?, writes, "a second run writes nothing");
    let (status, _) = get(&lab.url("/catalog"))?;
    assert_eq!(status, 200);
    Ok(())
}
