//! `playbooks/health-validation.yaml` and `playbooks/gateway-diagnostics.yaml` end to end:
//! the real binary reads the Kong twin (Admin API, proxy, TLS proxy) and the data-plane
//! nodes' logs, writes nothing (the twin's write counter stays 0, no node restarts), and
//! prints one block of verdicts or figures. The twin's proxy enforces what is checked:
//! jwt on `/payments` (the playbook signs an HS256 token with alice's key and secret),
//! oauth2 on `/inventory` (a token from the TLS proxy's `/oauth2/token` with alice's
//! client credentials), rate-limiting on `/limited`.

use std::path::Path;

use crate::kong_nodes::{
    ALICE_KEY, CLIENT_ID, CLIENT_SECRET, JWT_KEY, JWT_SECRET, KongLab, Options, SNI,
};
use crate::lab::{Run, TestResult};
use crate::traffic::{Outcome, get, request};

/// The health playbook.
const HEALTH: &str = "health-validation.yaml";

/// The diagnostics playbook.
const DIAGNOSTICS: &str = "gateway-diagnostics.yaml";

/// The lab and the `--set`s that turn every health check on.
fn every_check(kong: &KongLab) -> Vec<String> {
    vec![
        "key_auth_key=ALICE_KEY".to_owned(),
        format!("jwt_key={JWT_KEY}"),
        "jwt_secret=JWT_SECRET".to_owned(),
        "jwt_path=/payments".to_owned(),
        format!("oauth2_client_id={CLIENT_ID}"),
        "oauth2_client_secret=CLIENT_SECRET".to_owned(),
        "oauth2_scope=inventory.read".to_owned(),
        "oauth2_path=/inventory".to_owned(),
        // The TLS proxy as `localhost`: the OAuth2 token endpoint's host.
        "tls_host=localhost".to_owned(),
        format!("tls_sni={SNI}"),
        format!("tls_ca={}", kong.lab.path().join("ca.pem").display()),
        "probe_count=30".to_owned(),
    ]
}

/// Runs `playbook` with `sets`.
fn run<S: AsRef<str>>(
    kong: &KongLab,
    verb: &str,
    playbook: &str,
    sets: &[S],
) -> std::io::Result<Run> {
    let sets: Vec<&str> = sets.iter().map(AsRef::as_ref).collect();
    kong.run(verb, playbook, &sets)
}

/// Asserts that `run` ended with exit code `code` and that its output (standard output or
/// standard error) holds each of `texts`.
#[track_caller]
fn assert_output(run: &Run, code: i32, texts: &[&str]) {
    assert_eq!(run.code, Some(code), "{}", run.all());
    for text in texts {
        assert!(run.all().contains(text), "{text:?} missing: {}", run.all());
    }
}

/// Asserts that none of `secrets` appears in `run`'s output.
#[track_caller]
fn assert_not_shown(run: &Run, secrets: &[&str]) {
    for secret in secrets {
        assert!(!run.all().contains(secret), "{secret} shown: {}", run.all());
    }
}

/// Waits for the next `period` (seconds) to begin when fewer than `room` seconds of this
/// one are left, so that a probe a rate limit counts per period stays inside one period.
fn stay_inside_one(period: i64, room: i64) {
    let into = jiff::Timestamp::now().as_second().rem_euclid(period);
    if into > period - room {
        std::thread::sleep(std::time::Duration::from_secs(
            (period + 1 - into).unsigned_abs(),
        ));
    }
}

/// No secret value, and no access token the twin issued, appears in the output or in a
/// file runsheet wrote (journal, reports).
fn assert_no_secret(kong: &KongLab, run: &Run) -> Outcome<()> {
    let (status, body) = get(&format!("{}/oauth2_tokens", kong.twin.admin_url))?;
    if status != 200 {
        return Err(format!("GET /oauth2_tokens answered {status}: {body}").into());
    }
    let tokens: serde_json::Value = serde_json::from_str(&body)?;
    let mut secrets: Vec<String> = tokens["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|token| token["access_token"].as_str().map(str::to_owned))
        .collect();
    secrets.extend([ALICE_KEY, JWT_SECRET, CLIENT_SECRET].map(str::to_owned));
    let mut written = String::new();
    for dir in [".runsheet", "runsheet-out"] {
        read_tree(&kong.lab.path().join(dir), &mut written)?;
    }
    for secret in &secrets {
        assert!(
            !run.all().contains(secret.as_str()),
            "{secret} shown: {}",
            run.all()
        );
        assert!(
            !written.contains(secret.as_str()),
            "{secret} written to a file"
        );
    }
    Ok(())
}

/// Appends the text of every file under `dir` (none when it does not exist).
fn read_tree(dir: &Path, into: &mut String) -> Outcome<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            read_tree(&path, into)?;
        } else {
            into.push_str(&String::from_utf8_lossy(&std::fs::read(&path)?));
        }
    }
    Ok(())
}

#[test]
fn a_healthy_gateway_passes_every_check_and_nothing_is_written() -> TestResult {
    let kong = KongLab::plain()?;
    // The routes checked really refuse requests without credentials.
    for (path, headers) in [
        ("/payments", [("authorization", "Bearer not.a.jwt")]),
        ("/inventory", [("authorization", "Bearer not-issued")]),
    ] {
        let (status, body) = request(&format!("{}{path}", kong.twin.proxy_url), &headers)?;
        assert_eq!(status, 401, "{path}: {body}");
    }
    let pids = kong.pids();
    let run = run(&kong, "run", HEALTH, &every_check(&kong))?;
    let token_url = format!(
        "https://localhost:{}/inventory/oauth2/token",
        kong.twin
            .proxy_tls_url
            .rsplit(':')
            .next()
            .unwrap_or_default()
    );
    run.assert_ended(
        0,
        &[
            "0 FAIL, 0 WARN, 7 OK",
            "OK    status    Kong ",
            "OK    upstream  core: 3 target(s) taking traffic, all healthy",
            "OK    key-auth  /orders: 200 with the key, 401 with a wrong key",
            "OK    jwt       /payments: 200 with a JWT signed now, 401 with a wrongly signed one",
            &format!(
                "OK    oauth2    /inventory: 200 with a token for client {CLIENT_ID} from {token_url}, 401 with a wrong token"
            ),
            "OK    tls       shop.test: expires ",
            "latency   30 requests to /orders: p50 ",
            "0 error(s)",
        ],
    );
    assert_no_secret(&kong, &run)?;
    assert_eq!(kong.writes()?, 0);
    assert_eq!(kong.pids(), pids);
    Ok(())
}

#[test]
fn a_wrong_jwt_secret_and_a_wrong_client_secret_fail_their_checks_and_the_run() -> TestResult {
    let kong = KongLab::plain()?;
    let sets: Vec<String> = every_check(&kong)
        .into_iter()
        .map(|set| match set.as_str() {
            "jwt_secret=JWT_SECRET" => "jwt_secret=WRONG_JWT_SECRET".to_owned(),
            "oauth2_client_secret=CLIENT_SECRET" => {
                "oauth2_client_secret=WRONG_CLIENT_SECRET".to_owned()
            }
            _ => set,
        })
        .collect();
    let run = run(&kong, "run", HEALTH, &sets)?;
    assert_output(
        &run,
        1,
        &[
            "2 FAIL, 0 WARN, 5 OK",
            "FAIL  jwt       /payments: a JWT signed now is not accepted (see step jwt)",
            &format!(
                "FAIL  oauth2    /inventory: no token for client {CLIENT_ID} from https://localhost:"
            ),
            "OK    key-auth",
            "OK    tls",
            "health validation failed: jwt       /payments: a JWT signed now is not accepted",
            // The gateway's answers are why: a bad signature, an unknown client.
            "Invalid signature",
            "invalid_client",
        ],
    );
    assert_not_shown(&run, &["not-alice-jwt-secret", "not-alice-client-secret"]);
    assert_eq!(kong.writes()?, 0);
    Ok(())
}

#[test]
fn a_refused_key_and_a_certificate_near_expiry_are_reported_and_fail_the_run() -> TestResult {
    let kong = KongLab::plain()?;
    let mut sets = every_check(&kong);
    sets[0] = "key_auth_key=WRONG_KEY".to_owned();
    // The test certificate lives for centuries: any threshold above that warns.
    sets.push("tls_warn_days=10000000".to_owned());
    let run = run(&kong, "run", HEALTH, &sets)?;
    assert_output(
        &run,
        1,
        &[
            "FAIL  key-auth  /orders: the key is not accepted (see step key-auth)",
            "WARN  tls       shop.test: expires ",
            "(warn under 10000000)",
            "FAIL  latency   30 requests to /orders",
            "30 error(s) (first: answered 401, expected 2xx)",
            "OK    jwt",
            "health validation failed: key-auth  /orders: the key is not accepted",
        ],
    );
    assert_not_shown(&run, &["not-alice-key"]);
    // Only the failing certificate threshold changes the verdict.
    let mut sets = every_check(&kong);
    sets.push("tls_fail_days=10000000".to_owned());
    self::run(&kong, "run", HEALTH, &sets)?.assert_ended(
        1,
        &["FAIL  tls       shop.test: expires ", "OK    key-auth"],
    );
    assert_eq!(kong.writes()?, 0);
    Ok(())
}

#[test]
fn a_plan_of_the_health_checks_writes_nothing_and_skips_empty_checks() -> TestResult {
    let kong = KongLab::plain()?;
    kong.run("validate", HEALTH, &[])?.assert_ended(0, &[]);
    // A plan runs the same reads.
    let plan = run(&kong, "plan", HEALTH, &every_check(&kong))?;
    plan.assert_ended(0, &["0 FAIL, 0 WARN, 7 OK"]);
    assert_no_secret(&kong, &plan)?;
    // The unauthenticated probe of /orders fails.
    run(&kong, "run", HEALTH, &["probe_count=5"])?.assert_ended(
        1,
        &[
            "SKIP  key-auth  no key_auth_key given",
            "SKIP  jwt",
            "SKIP  oauth2",
            "SKIP  tls",
        ],
    );
    run(
        &kong,
        "run",
        HEALTH,
        &["probe_path=/catalog", "probe_count=5"],
    )?
    .assert_ended(0, &["0 FAIL, 0 WARN, 3 OK"]);
    // A secret without the key or client id it belongs to is a mistake, not a skip.
    run(
        &kong,
        "run",
        HEALTH,
        &[
            "probe_path=/catalog",
            "probe_count=5",
            "jwt_secret=JWT_SECRET",
            "oauth2_client_secret=CLIENT_SECRET",
        ],
    )?
    .assert_ended(
        1,
        &[
            "FAIL  jwt       jwt_secret given without jwt_key",
            "FAIL  oauth2    oauth2_client_secret given without oauth2_client_id",
        ],
    );
    assert_eq!(kong.writes()?, 0);
    Ok(())
}

#[test]
fn diagnostics_report_latency_429s_tls_health_and_log_lines_without_writing() -> TestResult {
    let kong = KongLab::build(Options::default(), |env| {
        // dp3's error log is somewhere that does not exist.
        let mut lines: Vec<String> = env.lines().map(str::to_owned).collect();
        let dp3 = lines.iter().position(|l| l == "  dp3:").unwrap_or(0);
        if let Some(line) = lines[dp3..].iter_mut().find(|l| l.contains("error_log:")) {
            *line = "      error_log: '/nonexistent/kong/error.log'".to_owned();
        }
        lines.join("\n") + "\n"
    })?;
    let log = kong.lab.path().join("dp1.log");
    std::fs::write(
        &log,
        "2026/11/27 02:00:01 [error] 123#0: *1 connect() failed (111: Connection refused) while connecting to upstream\n\
         2026/11/27 02:00:02 [warn] 123#0: *2 a client request body is buffered to a temporary file\n",
    )?;
    // `/limited` allows 5 requests an hour per client: keep the probe inside one hour.
    stay_inside_one(3600, 10);
    let files_before = node_files(&kong)?;
    let pids = kong.pids();
    let sets = vec![
        "probe_path=/limited".to_owned(),
        "probe_count=20".to_owned(),
        format!("tls_sni={SNI}"),
        format!("tls_ca={}", kong.lab.path().join("ca.pem").display()),
        "log_lines=5".to_owned(),
    ];
    // The plan probes too, until the rate limit.
    run(&kong, "plan", DIAGNOSTICS, &sets)?.assert_ended(
        0,
        &[
            "0 write step(s) planned",
            "answers   200: 5, 429: 15; rate limited (429): 15; not 2xx or unanswered: 15",
        ],
    );
    run(&kong, "run", DIAGNOSTICS, &sets)?.assert_ended(
        0,
        &[
            "diagnostics of gateway kong",
            "status    Kong ",
            "upstream  core: ",
            "HEALTHCHECKS_OFF (weight 100)",
            "latency   20 requests to /limited: p50 ",
            // The plan's probe had the hour's 5 requests.
            "answers   429: 20; rate limited (429): 20; not 2xx or unanswered: 20",
            "tls       shop.test on 127.0.0.1:",
            "dp1: last 5 line(s) of",
            "connect() failed (111: Connection refused) while connecting to upstream",
            "(empty: ",
            "(no file /nonexistent/kong/error.log)",
        ],
    );
    assert_eq!(kong.writes()?, 0, "the gateway was not written");
    // The rate limiter's own answers, not a canned 429.
    let (status, body) = request(&format!("{}/limited", kong.twin.proxy_url), &[])?;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("API rate limit exceeded"), "{body}");
    assert_eq!(node_files(&kong)?, files_before, "no node file changed");
    assert_eq!(kong.pids(), pids, "no node restarted");
    Ok(())
}

/// Every node's state files and logs with their contents.
fn node_files(kong: &KongLab) -> Outcome<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for node in &kong.nodes {
        for entry in std::fs::read_dir(&node.dir)? {
            let path = entry?.path();
            files.push((path.display().to_string(), std::fs::read(&path)?));
        }
    }
    for n in 1..=3 {
        let log = kong.lab.path().join(format!("dp{n}.log"));
        files.push((
            log.display().to_string(),
            std::fs::read(&log).unwrap_or_default(),
        ));
    }
    files.sort();
    Ok(files)
}

/// The lab's smoke secrets, as `environments/lab-seed.yaml` holds them.
const LAB_SECRETS: [(&str, &str); 3] = [
    ("LAB_SMOKE_KEY", "lab-smoke-key-41f0c7"),
    ("LAB_SMOKE_JWT_SECRET", "lab-jwt-secret-7c1e9a42d85b3f60"),
    ("LAB_SMOKE_OAUTH2_SECRET", "lab-smoke-client-secret-5d2b"),
];

#[test]
fn the_shipped_lab_passes_every_health_check_and_diagnoses_its_rate_limit() -> TestResult {
    // The repository's lab (seed, vars files, embedded twin, nodes started by runsheet)
    // with free node ports.
    let lab = crate::kong_lab::ShippedLab::embedded(|env| env, |seed| seed)?;
    let command = |playbook: &str, vars: &str| -> std::io::Result<Run> {
        let mut command = lab.lab.command(&[
            "run",
            playbook,
            "--env",
            "environments/lab.yaml",
            "--vars-file",
            vars,
        ]);
        for (name, value) in LAB_SECRETS {
            command.env(name, value);
        }
        lab.lab.run_with(command)
    };
    let health = command(
        "playbooks/health-validation.yaml",
        "environments/lab-health.yaml",
    )?;
    health.assert_ended(
        0,
        &[
            "health of gateway kong: 0 FAIL, 0 WARN, 7 OK",
            "OK    key-auth  /payments: 200 with the key, 401 with a wrong key",
            "OK    jwt       /inventory: 200 with a JWT signed now, 401 with a wrongly signed one",
            "OK    oauth2    /partners: 200 with a token for client lab-smoke-client from https://localhost:",
            "OK    tls       shop.lab: expires 2036-",
        ],
    );
    // /payments allows 60 requests a minute per consumer: keep the probe inside one minute.
    stay_inside_one(60, 5);
    let diagnosed = command(
        "playbooks/gateway-diagnostics.yaml",
        "environments/lab-diagnostics.yaml",
    )?;
    diagnosed.assert_ended(
        0,
        &[
            "latency   80 requests to /payments: p50 ",
            "answers   200: 60, 429: 20; rate limited (429): 20",
            "tls       shop.lab on localhost:",
            "dp1: last 20 line(s) of .lab/kong/dp1/node.log",
            "dp3: last 20 line(s) of .lab/kong/dp3/node.log",
        ],
    );
    assert!(
        !diagnosed.stdout.contains("(no file"),
        "{}",
        diagnosed.stdout
    );
    for run in [&health, &diagnosed] {
        assert_not_shown(run, &LAB_SECRETS.map(|(_, value)| value));
    }
    Ok(())
}
