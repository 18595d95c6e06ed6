//! A hostile gateway: an HTTP server on loopback that answers with a 1 GiB
//! body, a one-byte-per-second drip, truncated JSON and XML, HTML where JSON
//! or XML is expected, and redirects to another host (a second listener that
//! records whatever reaches it). `http`, `kong.status`, `layer7.ping` and
//! `layer7.export` steps of the real binary are pointed at it, with
//! credentials: reads stay bounded, timeouts hold, bad bodies give a parse
//! error naming the request, and no credential ever reaches the other host.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{line_with, measure_command};
use crate::lab::{Lab, TestResult};
use crate::reliability::report;

/// The secrets the steps send: none may reach the other host or any output.
const API_KEY: &str = "hostile-api-key-5f1c";
const BEARER: &str = "hostile-bearer-93ab";
const KONG_TOKEN: &str = "hostile-kong-token-77d2";
const L7_PASSWORD: &str = "hostile-l7-password-c0de";

/// One request a server received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: BTreeMap<String, String>,
}

/// A thread-per-connection HTTP/1.1 server on 127.0.0.1 answering by the first path segment.
struct Hostile {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hostile {
    /// Starts a server; `thief` is the port redirects point to.
    fn start(thief: Option<u16>) -> std::io::Result<Hostile> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let recorded = Arc::clone(&recorded);
                std::thread::spawn(move || {
                    let _ = serve(stream, port, thief, &recorded);
                });
            }
        });
        Ok(Hostile { port, seen })
    }

    fn url(&self, mode: &str) -> String {
        format!("http://127.0.0.1:{}/{mode}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }
}

/// Reads one request and answers it according to its mode, then closes.
fn serve(
    stream: TcpStream,
    port: u16,
    thief: Option<u16>,
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    if let Ok(mut seen) = seen.lock() {
        seen.push(Seen {
            path: path.clone(),
            headers,
        });
    }
    let mut stream = stream;
    let mode = path
        .trim_start_matches('/')
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let head = |status: &str, content_type: &str, length: usize| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
    };
    let whole = |stream: &mut TcpStream, status: &str, content_type: &str, body: &str| {
        stream.write_all(format!("{}{body}", head(status, content_type, body.len())).as_bytes())
    };
    match mode {
        "huge" => {
            // 1 GiB of a JSON array, streamed; the client should hang up long before.
            let total = 1usize << 30;
            stream.write_all(head("200 OK", "application/json", total).as_bytes())?;
            let chunk = "0,".repeat(512 * 1024);
            stream.write_all(b"[")?;
            let mut sent = 1;
            while sent + chunk.len() < total {
                stream.write_all(chunk.as_bytes())?;
                sent += chunk.len();
            }
            Ok(())
        }
        "drip" => {
            stream.write_all(head("200 OK", "application/json", 600).as_bytes())?;
            for _ in 0..600 {
                stream.write_all(b" ")?;
                stream.flush()?;
                std::thread::sleep(Duration::from_secs(1));
            }
            Ok(())
        }
        "badjson" => whole(
            &mut stream,
            "200 OK",
            "application/json",
            "{\"version\": \"3.9.0\", \"data\": [{\"id\": ",
        ),
        "html" => whole(
            &mut stream,
            "200 OK",
            "text/html",
            "<html><body><h1>Sign in</h1><form>",
        ),
        "badxml" => whole(
            &mut stream,
            "200 OK",
            "application/xml",
            "<?xml version=\"1.0\"?><l7:Item xmlns:l7=\"http://ns.l7tech.com/2010/04/gateway-management\"><l7:Name>x</l7:Na",
        ),
        "redirect" => {
            let location = format!("http://127.0.0.1:{}/stolen{path}", thief.unwrap_or(port));
            stream.write_all(format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())
        }
        "hop" => {
            let rest = path.trim_start_matches("/hop");
            let location = format!("http://127.0.0.1:{port}/landed{rest}");
            stream.write_all(format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())
        }
        "landed" => whole(
            &mut stream,
            "200 OK",
            "application/json",
            "{\"version\": \"landed\"}",
        ),
        _ => whole(&mut stream, "404 Not Found", "text/plain", "not here"),
    }
}

/// The environment: gateways `kong` and `l7` and the `http` base URL at the server's `mode`.
fn environment(server: &Hostile, mode: &str) -> String {
    format!(
        "runsheet: 1\nname: hostile\nvars: {{base: \"{base}\"}}\ngateways:\n  kong: {{type: kong, admin_url: \"{base}\", token: \"{{{{ secret('HOSTILE_KONG_TOKEN') }}}}\"}}\n  l7: {{type: layer7, url: \"{base}\", username: admin, password: \"{{{{ secret('HOSTILE_L7_PASSWORD') }}}}\"}}\nhosts:\n  me: {{transport: local}}\n",
        base = server.url(mode)
    )
}

/// The steps, one playbook each.
const STEPS: &[(&str, &str)] = &[
    (
        "http",
        r#"{id: call, action: http, timeout: 3s, with: {url: "{{ env.base }}/api/status", headers: {apikey: "{{ secret('HOSTILE_API_KEY') }}"}, auth: {bearer: "{{ secret('HOSTILE_BEARER') }}"}, extract: {version: /version}}}"#,
    ),
    (
        "kong.status",
        "{id: call, action: kong.status, on: kong, timeout: 3s}",
    ),
    (
        "layer7.ping",
        "{id: call, action: layer7.ping, on: l7, timeout: 3s}",
    ),
    (
        "layer7.export",
        "{id: call, action: layer7.export, on: l7, timeout: 3s, with: {path: bundle.xml, api: restman}}",
    ),
];

/// A mode, what each action's output must say (any of), and a bound on peak RSS.
const MODES: &[(&str, &str, &[&str])] = &[
    ("huge", "1 GiB body", &["larger than 67108864 bytes"]),
    (
        "drip",
        "1 byte/s drip",
        &["no response within 3s", "timed out after 3s"],
    ),
    (
        "badjson",
        "truncated JSON",
        &[
            "not JSON",
            "malformed response",
            "not operational",
            "unexpected",
            "expected",
        ],
    ),
    (
        "html",
        "HTML instead of JSON/XML",
        &[
            "not JSON",
            "malformed response",
            "not operational",
            "unexpected",
            "expected",
            "content type",
        ],
    ),
    (
        "badxml",
        "truncated XML",
        &[
            "not JSON",
            "malformed response",
            "not operational",
            "unexpected",
            "expected",
            "XML",
        ],
    ),
    (
        "redirect",
        "302 to another host",
        &["which was not followed"],
    ),
];

#[test]
fn a_hostile_gateway_gets_bounded_reads_timeouts_and_no_credentials() -> TestResult {
    let thief = Hostile::start(None)?;
    let server = Hostile::start(Some(thief.port))?;
    let lab = Lab::new()?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (mode, what, expected) in MODES {
        lab.write("env.yaml", &environment(&server, mode))?;
        for (action, step) in STEPS {
            lab.write(
                "call.yaml",
                &format!("runsheet: 1\nname: call\nsteps:\n  - {step}\n"),
            )?;
            let mut command = lab.command(&["run", "call.yaml", "--env", "env.yaml", "--yes"]);
            command
                .env("HOSTILE_API_KEY", API_KEY)
                .env("HOSTILE_BEARER", BEARER)
                .env("HOSTILE_KONG_TOKEN", KONG_TOKEN)
                .env("HOSTILE_L7_PASSWORD", L7_PASSWORD);
            let measured = measure_command(&lab, command)?;
            let all = measured.run.all();
            let case = format!("{mode} × {action}");
            let said = expected.iter().find(|text| all.contains(**text));
            let mut problems = Vec::new();
            if measured.run.code != Some(1) {
                problems.push(format!("exit {:?}", measured.run.code));
            }
            if said.is_none() {
                problems.push(format!("none of {expected:?}"));
            }
            if all.contains("panicked") {
                problems.push("a panic".to_owned());
            }
            if [API_KEY, BEARER, KONG_TOKEN, L7_PASSWORD]
                .iter()
                .any(|s| all.contains(s))
            {
                problems.push("a secret printed".to_owned());
            }
            if measured.peak_kib.is_some_and(|kib| kib > 512 * 1024) {
                problems.push(format!("peak RSS {}", measured.peak()));
            }
            if !problems.is_empty() {
                failures.push(format!("{case}: {}: {all}", problems.join(", ")));
            }
            rows.push(vec![
                what.to_string(),
                action.to_string(),
                format!(
                    "`{}`",
                    line_with(&all, said.copied().unwrap_or_default())
                        .chars()
                        .take(140)
                        .collect::<String>()
                ),
                measured.time(),
                measured.peak(),
            ]);
        }
    }
    // A redirect within the same origin is followed, with the credentials.
    lab.write("env.yaml", &environment(&server, "hop"))?;
    lab.write(
        "call.yaml",
        &format!("runsheet: 1\nname: call\nsteps:\n  - {}\n", STEPS[0].1),
    )?;
    let mut command = lab.command(&["run", "call.yaml", "--env", "env.yaml", "--yes"]);
    command
        .env("HOSTILE_API_KEY", API_KEY)
        .env("HOSTILE_BEARER", BEARER);
    let hop = measure_command(&lab, command)?;
    if hop.run.code != Some(0) {
        failures.push(format!("same-origin hop: {}", hop.run.all()));
    }
    let landed = server
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/landed"))
        .collect::<Vec<_>>();
    if !landed
        .iter()
        .any(|s| s.headers.get("apikey").map(String::as_str) == Some(API_KEY))
    {
        failures.push(format!(
            "the same-origin redirect lost its headers: {landed:?}"
        ));
    }
    rows.push(vec![
        "307 within the same host".into(),
        "http".into(),
        "followed, credentials kept, exit 0".into(),
        hop.time(),
        hop.peak(),
    ]);
    let stolen = thief.seen();
    report(
        "Hostile gateways: what each action says (exit 1 everywhere; the other host received 0 requests)",
        &["gateway answers", "action", "message", "time", "peak RSS"],
        &rows,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        stolen.is_empty(),
        "a request reached the other host: {stolen:?}"
    );
    Ok(())
}
