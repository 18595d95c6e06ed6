//! SSH transport benchmark (issue #5): the real `runsheet run` process against
//! what a careful engineer would write in bash, timed side by side in one run.
//!
//! - Fan-out: 20 sshd on loopback, 5 read-only commands in sequence on each
//!   host, all hosts in parallel. Baseline: bash, one ControlMaster per host
//!   (`ssh -M -S SOCK -fN`), the 5 commands over it, `ssh -O exit`, hosts in
//!   background jobs, `wait`.
//! - Rolling restart: 10 of those hosts in batches of 2; per host an HTTP drain
//!   (PUT), `sleep 0.2` over SSH, a health poll every 50 ms until 200 (the
//!   bench's server answers 503 twice after each drain), an HTTP undrain (PUT).
//!   Baseline: bash with curl and ssh, a ControlMaster per host opened when the
//!   script reaches the host, two hosts in parallel, `wait`, next batch.
//!
//! Every repetition alternates runsheet and the baseline; the figures are the
//! median and the minimum wall time of the whole process, connection set-up and
//! teardown included. The sshd servers run every command through a logging
//! `ForceCommand` wrapper (tests/support/sshd.rs), the same cost for both sides.
//!
//! Run: `cargo bench --bench ssh` (`-- --quick` for 3 repetitions instead of 7,
//! `-- --reps N` for N).

#[path = "../tests/support/sshd.rs"]
mod sshd;

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sshd::SshLab;

/// What `main` and its helpers return.
type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Hosts of the fan-out.
const FAN_OUT_HOSTS: usize = 20;
/// Hosts of the rolling restart (the first ones of the lab).
const ROLLING_HOSTS: usize = 10;
/// Hosts restarted in parallel.
const BATCH: usize = 2;
/// The commands run on every host of the fan-out, in order.
const COMMANDS: [&[&str]; 5] = [&["uname", "-r"], &["cat", "/proc/loadavg"], &["true"], &["date", "+%s"], &["hostname"]];
/// Health polls answered 503 after each drain before the host answers 200.
const UNHEALTHY_POLLS: u32 = 2;
/// The runsheet binary built by this `cargo bench`.
const RUNSHEET: &str = env!("CARGO_BIN_EXE_runsheet");

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let reps = match args.iter().position(|a| a == "--reps") {
        Some(at) => args.get(at + 1).ok_or("--reps needs a number")?.parse::<usize>()?.max(1),
        None if args.iter().any(|a| a == "--quick") => 3,
        None => 7,
    };
    let lab = SshLab::start(FAN_OUT_HOSTS)?;
    let work = tempfile::Builder::new().prefix("runsheet-ssh-bench-").tempdir()?;
    let health = HealthServer::start()?;
    std::fs::write(work.path().join("env.yaml"), environment(&lab))?;
    std::fs::write(work.path().join("fanout.yaml"), fan_out_playbook())?;
    std::fs::write(work.path().join("fanout.sh"), fan_out_script(&lab))?;
    std::fs::write(work.path().join("rolling.yaml"), rolling_playbook(&health.url))?;
    std::fs::write(work.path().join("rolling.sh"), rolling_script(&lab, &health.url))?;

    println!("{reps} repetitions (after one warm-up each), runsheet and baseline alternating; {} cores", cores());
    let fan_out = compare(&lab, work.path(), &health, reps, Case::FanOut)?;
    let rolling = compare(&lab, work.path(), &health, reps, Case::Rolling)?;
    println!();
    println!(
        "{:<32} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "case", "runsheet", "(min)", "baseline", "(min)", "ratio"
    );
    for (name, baseline, figures) in [
        (format!("fan-out {FAN_OUT_HOSTS} hosts x {} commands", COMMANDS.len()), "raw ssh", &fan_out),
        (format!("rolling restart {ROLLING_HOSTS} hosts / {BATCH}"), "bash", &rolling),
    ] {
        println!(
            "{name:<32} {:>7.0} ms {:>7.0} ms {:>7.0} ms {:>7.0} ms {:>7.2}   ({baseline}; target ≤ 1.30)",
            millis(median(&figures.runsheet)),
            millis(min(&figures.runsheet)),
            millis(median(&figures.baseline)),
            millis(min(&figures.baseline)),
            millis(median(&figures.runsheet)) / millis(median(&figures.baseline)),
        );
    }
    // The lab (sshd servers) and the work directory are removed when dropped here.
    Ok(())
}

/// The two scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// 5 commands on each of 20 hosts.
    FanOut,
    /// Drain, restart, health poll, undrain on 10 hosts in batches of 2.
    Rolling,
}

/// Wall times of one case.
struct Figures {
    /// runsheet's repetitions.
    runsheet: Vec<Duration>,
    /// The baseline's repetitions.
    baseline: Vec<Duration>,
}

/// Runs one case: a warm-up of each side, then `reps` alternating pairs, checking what each run did.
fn compare(lab: &SshLab, work: &Path, health: &HealthServer, reps: usize, case: Case) -> BenchResult<Figures> {
    let (playbook, script, label) = match case {
        Case::FanOut => ("fanout.yaml", "fanout.sh", "fan-out"),
        Case::Rolling => ("rolling.yaml", "rolling.sh", "rolling"),
    };
    let mut figures = Figures {
        runsheet: Vec::new(),
        baseline: Vec::new(),
    };
    for rep in 0..=reps {
        for runsheet in [true, false] {
            lab.clear_commands()?;
            health.reset();
            let mut command = if runsheet {
                let mut command = Command::new(RUNSHEET);
                command.args(["run", playbook, "--env", "env.yaml"]).env("NO_COLOR", "1");
                command
            } else {
                let mut command = Command::new("bash");
                command.arg(script);
                command
            };
            command.current_dir(work).stdin(Stdio::null());
            let started = Instant::now();
            let output = command.output()?;
            let elapsed = started.elapsed();
            let who = if runsheet { "runsheet" } else { "baseline" };
            if !output.status.success() {
                return Err(format!(
                    "{label}: {who} failed ({}):\n{}{}",
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                )
                .into());
            }
            check(lab, health, case).map_err(|e| format!("{label}: {who}: {e}"))?;
            if rep > 0 {
                if runsheet {
                    figures.runsheet.push(elapsed);
                } else {
                    figures.baseline.push(elapsed);
                }
            }
        }
    }
    println!(
        "{label:<8} runsheet ms: {}\n{label:<8} baseline ms: {}",
        list(&figures.runsheet),
        list(&figures.baseline)
    );
    Ok(figures)
}

/// Checks that a run did all the work: every command on every host, every host drained, polled and undrained.
fn check(lab: &SshLab, health: &HealthServer, case: Case) -> BenchResult<()> {
    let (hosts, commands) = match case {
        Case::FanOut => (FAN_OUT_HOSTS, COMMANDS.len()),
        Case::Rolling => (ROLLING_HOSTS, 1),
    };
    for index in 0..lab.servers.len() {
        let expected = if index < hosts { commands } else { 0 };
        let ran = lab.commands(index).len();
        if ran != expected {
            return Err(format!("node{} ran {ran} commands, not {expected}", index + 1).into());
        }
    }
    if case == Case::Rolling {
        let state = health.state();
        for index in 1..=ROLLING_HOSTS {
            let name = format!("node{index}");
            let value = state.values.get(&name).map_or("", String::as_str);
            let polls = state.polls.get(&name).copied().unwrap_or(0);
            if value != "live" || polls != UNHEALTHY_POLLS + 1 {
                return Err(format!("{name}: state {value:?} after {polls} health polls").into());
            }
        }
    }
    Ok(())
}

/// The environment: the lab's hosts in group `all`, the first ten also in `rolling`.
fn environment(lab: &SshLab) -> String {
    let mut text = String::new();
    for line in lab.environment_yaml("sshbench", "all").lines() {
        let rolling = (1..=ROLLING_HOSTS).any(|n| line.starts_with(&format!("  node{n}: ")));
        if rolling {
            text.push_str(&line.replace("groups: [all]", "groups: [all, rolling]"));
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    text
}

/// The fan-out playbook: every host at once, its commands in sequence.
fn fan_out_playbook() -> String {
    let mut text = format!(
        "runsheet: 1\nname: fanout\nconcurrency: {FAN_OUT_HOSTS}\nsteps:\n  - id: each\n    for_each: \"{{{{ hosts('all') }}}}\"\n    as: host\n    steps:\n"
    );
    for (n, argv) in COMMANDS.iter().enumerate() {
        let words: Vec<String> = argv.iter().map(|w| format!("'{w}'")).collect();
        let _ = writeln!(
            text,
            "      - {{id: c{n}, action: host.exec, on: \"{{{{ host }}}}\", with: {{argv: [{}], read_only: true}}}}",
            words.join(", ")
        );
    }
    text
}

/// The rolling-restart playbook: drain, restart, poll health, undrain, two hosts at a time.
fn rolling_playbook(url: &str) -> String {
    format!(
        r#"runsheet: 1
name: rolling
steps:
  - id: restart
    for_each: "{{{{ hosts('rolling') }}}}"
    as: host
    batch: {BATCH}
    steps:
      - {{id: drain, action: http, with: {{method: PUT, url: "{url}/kv/{{{{ host.name }}}}", body: drain}}}}
      - {{id: restart, action: host.exec, on: "{{{{ host }}}}", with: {{argv: [sleep, '0.2']}}}}
      - id: healthy
        action: http
        with: {{url: "{url}/health/{{{{ host.name }}}}", expect_status: [200, 503]}}
        until: "{{{{ result.status == 200 }}}}"
        retry_delay: 50ms
        timeout: 10s
      - {{id: undrain, action: http, with: {{method: PUT, url: "{url}/kv/{{{{ host.name }}}}", body: live}}}}
"#
    )
}

/// The bash prelude both scripts share: the ssh options runsheet uses, and a control directory.
fn script_prelude(lab: &SshLab) -> String {
    format!(
        r#"set -u
SSH=(ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known} -o IdentitiesOnly=yes -i {key} -o ConnectTimeout=5 -l {user})
CTL=$(mktemp -d /tmp/rawssh-XXXXXX)
trap 'rm -rf "$CTL"' EXIT
"#,
        known = lab.known_hosts().display(),
        key = lab.client_key().display(),
        user = lab.user(),
    )
}

/// The fan-out baseline: per host in the background, a master, the commands over it, `-O exit`.
fn fan_out_script(lab: &SshLab) -> String {
    let ports: Vec<String> = lab.servers.iter().map(|s| s.port.to_string()).collect();
    let commands: Vec<String> = COMMANDS.iter().map(|argv| format!("'{}'", argv.join(" "))).collect();
    format!(
        r#"{prelude}
host() {{
  local port=$1 sock=$CTL/$1 out cmd
  "${{SSH[@]}}" -p "$port" -M -S "$sock" -fN -o ControlPersist=yes 127.0.0.1 || return 1
  for cmd in {commands}; do
    out=$("${{SSH[@]}}" -p "$port" -S "$sock" 127.0.0.1 "$cmd") || return 1
  done
  "${{SSH[@]}}" -p "$port" -S "$sock" -O exit 127.0.0.1 2>/dev/null
}}
pids=()
for port in {ports}; do host "$port" & pids+=($!); done
rc=0
for pid in "${{pids[@]}}"; do wait "$pid" || rc=1; done
exit $rc
"#,
        prelude = script_prelude(lab),
        commands = commands.join(" "),
        ports = ports.join(" "),
    )
}

/// The rolling-restart baseline: per host drain, master, restart, `-O exit`, health poll, undrain; two hosts per batch.
fn rolling_script(lab: &SshLab, url: &str) -> String {
    let hosts: Vec<String> = lab.servers[..ROLLING_HOSTS]
        .iter()
        .enumerate()
        .map(|(index, server)| format!("node{}:{}", index + 1, server.port))
        .collect();
    format!(
        r#"{prelude}
URL={url}
host() {{
  local name=${{1%%:*}} port=${{1##*:}} sock=$CTL/${{1##*:}} code tries=0
  curl -sf -o /dev/null -X PUT --data-binary drain "$URL/kv/$name" || return 1
  "${{SSH[@]}}" -p "$port" -M -S "$sock" -fN -o ControlPersist=yes 127.0.0.1 || return 1
  "${{SSH[@]}}" -p "$port" -S "$sock" 127.0.0.1 'sleep 0.2' || return 1
  "${{SSH[@]}}" -p "$port" -S "$sock" -O exit 127.0.0.1 2>/dev/null
  while code=$(curl -s -o /dev/null -w '%{{http_code}}' "$URL/health/$name"); [ "$code" != 200 ]; do
    tries=$((tries + 1)); [ "$tries" -lt 200 ] || return 1
    sleep 0.05
  done
  curl -sf -o /dev/null -X PUT --data-binary live "$URL/kv/$name" || return 1
}}
hosts=({hosts})
for ((i = 0; i < ${{#hosts[@]}}; i += {BATCH})); do
  pids=()
  for h in "${{hosts[@]:i:{BATCH}}}"; do host "$h" & pids+=($!); done
  for pid in "${{pids[@]}}"; do wait "$pid" || exit 1; done
done
"#,
        prelude = script_prelude(lab),
        hosts = hosts.join(" "),
    )
}

/// A loopback HTTP server: `PUT /kv/K` stores the body (a `drain` makes the next
/// health polls of K fail), `GET /kv/K` answers the value or 404, `DELETE
/// /kv/K` removes it, `GET /health/K` answers 503 for the first polls after a
/// drain and 200 after.
struct HealthServer {
    /// Base URL (`http://127.0.0.1:PORT`).
    url: String,
    /// Values and poll counters.
    state: Arc<Mutex<HealthState>>,
}

/// The server's contents.
#[derive(Debug, Default, Clone)]
struct HealthState {
    /// Stored values by key.
    values: BTreeMap<String, String>,
    /// Health polls by key since its last drain.
    polls: BTreeMap<String, u32>,
}

impl HealthServer {
    /// Starts the server on a free loopback port (its thread ends with the process).
    fn start() -> std::io::Result<HealthServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let state: Arc<Mutex<HealthState>> = Arc::default();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Ok(HealthServer { url, state })
    }

    /// A copy of the contents.
    fn state(&self) -> HealthState {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Forgets every value and counter.
    fn reset(&self) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = HealthState::default();
    }
}

/// Answers the requests of one connection (keep-alive) until the client closes it.
fn serve(stream: TcpStream, state: &Mutex<HealthState>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let (status, reply) = {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            match (method.as_str(), path.strip_prefix("/kv/"), path.strip_prefix("/health/")) {
                ("PUT", Some(key), _) => {
                    let value = String::from_utf8_lossy(&body).into_owned();
                    if value == "drain" {
                        state.polls.insert(key.to_owned(), 0);
                    }
                    state.values.insert(key.to_owned(), value);
                    (200, "{\"ok\":true}".to_owned())
                }
                ("GET", Some(key), _) => match state.values.get(key) {
                    Some(value) => (200, format!("{{\"value\":{value:?}}}")),
                    None => (404, "{\"message\":\"not found\"}".to_owned()),
                },
                ("DELETE", Some(key), _) => {
                    state.values.remove(key);
                    (200, "{\"ok\":true}".to_owned())
                }
                ("GET", _, Some(key)) => {
                    let polls = state.polls.entry(key.to_owned()).or_default();
                    *polls += 1;
                    if *polls > UNHEALTHY_POLLS {
                        (200, "{\"healthy\":true}".to_owned())
                    } else {
                        (503, "{\"healthy\":false}".to_owned())
                    }
                }
                _ => (404, "{\"message\":\"not found\"}".to_owned()),
            }
        };
        write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        )?;
        stream.flush()?;
    }
}

/// The median of some durations.
fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// The shortest of some durations.
fn min(times: &[Duration]) -> Duration {
    times.iter().min().copied().unwrap_or_default()
}

/// A duration in milliseconds.
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Durations in milliseconds, in the order measured.
fn list(times: &[Duration]) -> String {
    times.iter().map(|t| format!("{:.0}", millis(*t))).collect::<Vec<_>>().join(" ")
}

/// The number of CPUs this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
