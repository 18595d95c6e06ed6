//! Reliability matrix: secrets in artefacts. The shipped playbooks that take secrets run
//! in a copy of the repository's lab (embedded Kong twin, data-plane nodes started by
//! runsheet) with distinctive secret values given the way `secret()` reads them
//! (environment variables): a success, a plan saved with `--out`, a failing run rolled
//! back, a pause at a gate and its resume, every run with `--report-dir`; a server that
//! echoes the secrets it was sent in an error body; snapshots and a Layer7 export. Then
//! every artefact (stdout, stderr, the state directory, reports, plans, snapshots, the
//! nodes' logs) is scanned for each secret value and its encodings (base64 at every
//! alignment, percent-encoded, JSON-escaped): zero hits, except the one place that holds
//! the gateway's credentials by design: a `kong.snapshot` taken with
//! `include_credentials: true` (the pre-state a restore needs), which holds the
//! credentials the gateway holds, and nothing else.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;

use base64::Engine as _;

mod playbooks;

use crate::kong_lab::ShippedLab;
use crate::lab::{KvServer, Run, TestResult};
use crate::reliability::report;

/// The lab seed's credential values (environments/lab-seed.yaml) and the distinctive
/// values this test gives them instead: (seed value, secret name, value).
const SEEDED: [(&str, &str, &str); 3] = [
    (
        "lab-smoke-key-41f0c7",
        "LAB_SMOKE_KEY",
        "RSK-smoke-key-Zq81vX7w",
    ),
    (
        "lab-jwt-secret-7c1e9a42d85b3f60",
        "LAB_SMOKE_JWT_SECRET",
        "RSK-jwt-secret-Hn42cPq9Lr07",
    ),
    (
        "lab-smoke-client-secret-5d2b",
        "LAB_SMOKE_OAUTH2_SECRET",
        "RSK-oauth2-secret-Mv30xTb5",
    ),
];

/// Secrets only runsheet is given (the gateway never holds them before a run): name, value.
const GIVEN: [(&str, &str); 3] = [
    ("NEW_ALICE_KEY", "RSK-new-alice-key-Wd63pYe1"),
    ("PUBLISH_TOKEN", "RSK-publish-token-Gk25sNa8"),
    ("ECHO_PASSWORD", "RSK p@ss/w0rd+\"Qj7&x\""),
];

/// Every secret name and value of the runs.
fn secrets() -> Vec<(&'static str, &'static str)> {
    SEEDED
        .iter()
        .map(|(_, name, value)| (*name, *value))
        .chain(GIVEN)
        .collect()
}

/// A secret's value and the forms an artefact could hold it in: base64 (standard and
/// URL-safe, each byte alignment, cut to the characters that depend on the secret
/// alone), percent-encoded, form-encoded, JSON-escaped.
fn needles(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let mut forms = vec![secret.to_owned()];
    for shift in 0..3 {
        let mut shifted = vec![b'x'; shift];
        shifted.extend_from_slice(secret.as_bytes());
        let (first, end) = ((8 * shift).div_ceil(6), (8 * (shift + secret.len())) / 6);
        for encoded in [STANDARD.encode(&shifted), URL_SAFE.encode(&shifted)] {
            forms.push(encoded[first..end].to_owned());
        }
    }
    let percent = |form: bool| {
        secret
            .bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(byte).to_string()
                }
                b' ' if form => "+".to_owned(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    let url = |special: &[u8]| {
        secret
            .bytes()
            .map(|byte| {
                if byte <= b' ' || byte >= 0x7f || special.contains(&byte) {
                    format!("%{byte:02X}")
                } else {
                    char::from(byte).to_string()
                }
            })
            .collect::<String>()
    };
    forms.push(url(b"\"#<>'"));
    forms.push(url(b"\"#<>?`{}"));
    forms.push(percent(false));
    forms.push(percent(true));
    forms.push(
        serde_json::to_string(secret)
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned(),
    );
    forms.sort();
    forms.dedup();
    forms
}

/// The embedded Kong twin's state a run keeps (so a paused run resumes against it): the
/// lab gateway's own database, holding its credentials as a real Kong's database does.
const TWIN_STATE: &str = "state dir: embedded twin's database (the lab gateway)";

/// The kinds that hold the gateway's credentials by design.
const GATEWAY_HELD: [&str; 2] = [TWIN_STATE, "snapshots with include_credentials: true"];

/// The secrets a gateway holds by the end of the runs: the seed's credentials and the
/// key the rotation created.
fn held_by_gateway(name: &str) -> bool {
    name == GIVEN[0].0 || SEEDED.iter().any(|(_, seeded, _)| *seeded == name)
}

/// What the scan found for one kind of artefact.
#[derive(Default)]
struct Tally {
    files: usize,
    bytes: usize,
    hits: Vec<String>,
}

/// Scans `text` (from `origin`) for every needle, into `tally`.
fn scan(tally: &mut Tally, origin: &str, text: &[u8]) {
    scan_for(&secrets(), tally, origin, text);
}

/// Scans `text` (from `origin`) for every needle of `secrets` (name, value), into `tally`.
fn scan_for(secrets: &[(&str, &str)], tally: &mut Tally, origin: &str, text: &[u8]) {
    tally.files += 1;
    tally.bytes += text.len();
    let text = String::from_utf8_lossy(text);
    for &(name, value) in secrets {
        for needle in needles(value) {
            if text.contains(&needle) {
                tally.hits.push(format!("{origin}: {name} as `{needle}`"));
            }
        }
    }
}

/// The artefact kind of a file under the lab, or `None` for the lab's inputs.
fn kind(relative: &Path) -> Option<&'static str> {
    let text = relative.to_string_lossy();
    let name = relative.file_name()?.to_string_lossy();
    Some(if text.starts_with(".runsheet/") {
        if text.contains("/twins/") {
            TWIN_STATE
        } else if name.starts_with("journal") {
            "state dir: journal"
        } else if text.contains("/locks/") {
            "state dir: locks"
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            "state dir: playbook copy"
        } else {
            "state dir: run records, undo records, twin state"
        }
    } else if text.starts_with("reports/") {
        match name.as_ref() {
            "junit.xml" => "report dir: junit.xml",
            "report.json" => "report dir: report.json",
            "closure.md" => "report dir: closure.md",
            "runsheet.env" => "report dir: runsheet.env",
            _ => "report dir: other",
        }
    } else if text.starts_with("plans/") {
        "plan files (--out)"
    } else if text.starts_with("artefacts/") {
        "snapshots with include_credentials: true"
    } else if text.starts_with("snapshots/") {
        "snapshots (kong.snapshot, layer7.export)"
    } else if text.starts_with(".lab/") {
        "lab nodes' state and logs"
    } else {
        return None;
    })
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// A server answering every request with 500 and a text body quoting the request line,
/// its headers and its body: a gateway that echoes what it was sent in its error.
fn echo_server() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = (|| -> std::io::Result<()> {
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut seen = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line)?;
                    if line.trim_end().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    seen.push_str(&line);
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body)?;
                seen.push_str(&String::from_utf8_lossy(&body));
                let reply = format!("denied; you sent:\n{seen}");
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 500 X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                )?;
                stream.flush()
            })();
        }
    });
    Ok(url)
}

/// The playbook of the echo and snapshot checks: an `http` step sending the secrets in
/// a header, basic auth, the query and the body to `echo`, answered with 500 and the
/// request quoted; a `kong.snapshot` and a Layer7 export without credentials.
fn echo_playbook(echo: &str) -> String {
    format!(
        r#"runsheet: 1
name: secret-echo
steps:
  - id: snapshot
    action: kong.snapshot
    on: kong
    with: {{path: ../snapshots/kong.yaml}}
  - id: export
    action: layer7.export
    on: l7
    with: {{path: ../snapshots/l7.xml}}
  - id: echo
    action: http
    needs: [snapshot, export]
    with:
      method: POST
      url: "{echo}/login?key={{{{ secret('LAB_SMOKE_KEY') }}}}&pw={{{{ secret('ECHO_PASSWORD') }}}}"
      headers: {{apikey: "{{{{ secret('NEW_ALICE_KEY') }}}}"}}
      auth: {{basic: {{username: ops, password: "{{{{ secret('ECHO_PASSWORD') }}}}"}}}}
      json: {{token: "{{{{ secret('PUBLISH_TOKEN') }}}}", password: "{{{{ secret('ECHO_PASSWORD') }}}}"}}
"#
    )
}

#[test]
fn no_secret_value_or_encoding_shows_in_any_artefact_of_the_shipped_playbooks() -> TestResult {
    let lab = ShippedLab::embedded(
        |env| env,
        |mut seed| {
            for (seeded, _, value) in SEEDED {
                seed = seed.replace(seeded, value);
            }
            seed
        },
    )?;
    let store = KvServer::start()?;
    let echo = echo_server()?;
    lab.lab
        .write("playbooks/secret-echo.yaml", &echo_playbook(&echo))?;
    std::fs::create_dir_all(lab.lab.path().join("plans"))?;
    std::fs::create_dir_all(lab.lab.path().join("snapshots"))?;
    let artefacts = format!("artefacts={}", lab.lab.path().join("artefacts").display());
    let published = format!("publish_url={}/kv/alice", store.url);
    let refused = format!("publish_url={}/elsewhere/alice", store.url);
    let key_rotation = |publish: &str| {
        vec![
            "playbooks/kong-key-rotation.yaml".to_owned(),
            "--set".to_owned(),
            "consumer=alice".to_owned(),
            "--set".to_owned(),
            "key=NEW_ALICE_KEY".to_owned(),
            "--set".to_owned(),
            "publish_token=PUBLISH_TOKEN".to_owned(),
            "--set".to_owned(),
            publish.to_owned(),
        ]
    };
    let env = ["--env", "environments/lab.yaml"].map(str::to_owned);
    let with = |verb: &str, rest: Vec<String>, report: &str| {
        let mut args = vec![verb.to_owned()];
        args.extend(rest);
        if verb != "resume" {
            args.extend(env.clone());
        }
        args.extend(["--report-dir".to_owned(), format!("reports/{report}")]);
        args
    };
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // (what, arguments, expected exit)
    let mut runs: Vec<(&str, Vec<String>, i32)> = vec![
        (
            "health-validation: success",
            with(
                "run",
                strings(&[
                    "playbooks/health-validation.yaml",
                    "--vars-file",
                    "environments/lab-health.yaml",
                ]),
                "health",
            ),
            0,
        ),
        (
            "gateway-diagnostics: success",
            with(
                "run",
                strings(&[
                    "playbooks/gateway-diagnostics.yaml",
                    "--vars-file",
                    "environments/lab-diagnostics.yaml",
                ]),
                "diagnostics",
            ),
            0,
        ),
        (
            "kong-key-rotation: plan --out",
            {
                let mut args = with("plan", key_rotation(&published), "key-plan");
                args.extend(strings(&["--out", "plans/key-rotation.plan"]));
                args
            },
            0,
        ),
        (
            "kong-key-rotation: publish refused, rolled back",
            with("run", key_rotation(&refused), "key-failed"),
            1,
        ),
        (
            "kong-key-rotation: success",
            with("run", key_rotation(&published), "key-done"),
            0,
        ),
        (
            "kong-policy-migration: paused at its gate",
            with(
                "run",
                vec![
                    "playbooks/kong-policy-migration.yaml".to_owned(),
                    "--set".to_owned(),
                    "state_file=examples/kong-lab-state.yaml".to_owned(),
                    "--set".to_owned(),
                    artefacts.clone(),
                    "--set".to_owned(),
                    "smoke_key=LAB_SMOKE_KEY".to_owned(),
                    "--set".to_owned(),
                    r#"smoke_tests=[{"path": "/v2/orders", "status": 200}]"#.to_owned(),
                ],
                "migration-paused",
            ),
            4,
        ),
    ];
    let mut outcomes: Vec<(String, Run)> = Vec::new();
    let command = |args: &[String]| {
        let mut command = lab.lab.command(args);
        for (name, value) in secrets() {
            command.env(name, value);
        }
        command
    };
    for (what, args, expected) in runs.drain(..) {
        let run = lab.lab.run_with(command(&args))?;
        assert_eq!(run.code, Some(expected), "{what}: {}", run.all());
        outcomes.push((what.to_owned(), run));
    }
    let paused = outcomes
        .last()
        .and_then(|(_, run)| run.run_id())
        .ok_or("the paused migration names no run")?;
    let resumed = lab.lab.run_with(command(&with(
        "resume",
        strings(&[&paused, "--approve", "sync"]),
        "migration-resumed",
    )))?;
    assert_eq!(resumed.code, Some(0), "resume: {}", resumed.all());
    outcomes.push(("kong-policy-migration: resumed".to_owned(), resumed));
    assert!(
        store.state().values.get("alice").map(String::as_str) == Some(GIVEN[0].1),
        "the new key was published: {:?}",
        store.state().values
    );

    let echoed = lab.lab.run_with(command(&with(
        "run",
        strings(&["playbooks/secret-echo.yaml"]),
        "echo",
    )))?;
    assert_eq!(echoed.code, Some(1), "{}", echoed.all());
    assert!(
        echoed.all().contains("answered 500") && echoed.all().contains("you sent"),
        "the error quotes the echoed body: {}",
        echoed.all()
    );
    // The header, basic auth (base64), query (URL-encoded) and body (JSON) all came back
    // in the quoted body, masked.
    let lowered = echoed.all().to_lowercase();
    assert!(
        lowered.contains("authorization: basic")
            && lowered.contains("apikey: ")
            && lowered.contains("/login?key="),
        "the echo is quoted: {}",
        echoed.all()
    );
    assert!(
        echoed.all().matches("••••••").count() >= 5,
        "each echoed form is masked: {}",
        echoed.all()
    );
    outcomes.push(("http step, secrets echoed in a 500 body".to_owned(), echoed));

    // The scan.
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for (what, run) in &outcomes {
        scan(
            tallies.entry("stdout").or_default(),
            &format!("{what} stdout"),
            run.stdout.as_bytes(),
        );
        scan(
            tallies.entry("stderr").or_default(),
            &format!("{what} stderr"),
            run.stderr.as_bytes(),
        );
    }
    let mut all = Vec::new();
    files(lab.lab.path(), &mut all)?;
    for path in all {
        let relative = path.strip_prefix(lab.lab.path())?;
        if let Some(kind) = kind(relative) {
            scan(
                tallies.entry(kind).or_default(),
                &relative.display().to_string(),
                &std::fs::read(&path)?,
            );
        }
    }
    let credentials = "snapshots with include_credentials: true";
    let mut rows = Vec::new();
    for (kind, tally) in &tallies {
        rows.push(vec![
            (*kind).to_owned(),
            tally.files.to_string(),
            tally.bytes.to_string(),
            tally.hits.len().to_string(),
        ]);
    }
    report(
        "Secrets: hits of every secret value and its encodings, by artefact kind",
        &["artefact kind", "files scanned", "bytes", "hits"],
        &rows,
    );
    for (kind, tally) in &tallies {
        if GATEWAY_HELD.contains(kind) {
            // The gateway's own credentials, kept to restore them; never a secret that
            // only runsheet was given (the publish token, the echo password).
            for hit in &tally.hits {
                assert!(
                    secrets()
                        .iter()
                        .any(|(name, _)| held_by_gateway(name)
                            && hit.contains(&format!(": {name} as"))),
                    "{kind} holds a secret the gateway never held: {hit}"
                );
            }
        } else {
            assert!(tally.hits.is_empty(), "{kind}: {:#?}", tally.hits);
        }
    }
    for kind in [
        "stdout",
        "state dir: journal",
        "report dir: junit.xml",
        "report dir: report.json",
        "report dir: closure.md",
        "report dir: runsheet.env",
        "plan files (--out)",
        "snapshots (kong.snapshot, layer7.export)",
        credentials,
    ] {
        assert!(
            tallies.get(kind).is_some_and(|t| t.files > 0),
            "no {kind} was scanned"
        );
    }
    Ok(())
}
