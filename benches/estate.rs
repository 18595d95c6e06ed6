//! A large estate (issue #10, "Load"): the real `runsheet run` over 200 hosts
//! × 10 steps (host.exec reads, host.file writes, host.exec appends, a Kong
//! consumer written to and read back from a `runsheet twin kong` process per
//! host), at `concurrency` 1, 16 and 64, on the `local` transport and over SSH
//! (the 200 host entries spread round-robin over a few loopback sshd servers,
//! each allowing 64 sessions per connection and 100 unauthenticated
//! connections, twice the 50 hosts each serves, so sshd is not the limit).
//!
//! Every case checks that no step was lost or repeated: the journal
//! (`runsheet show RUN --output json`) holds exactly one `step_succeeded` per
//! body step and no failure, every file has its content, every host's log has
//! its two appended lines once, and the twin holds one consumer per host and
//! counted one write per host. Then it prints wall time, steps/s, and the
//! peak resident memory (VmHWM, sampled from /proc every 10 ms until the
//! process exits) of the runsheet process and of the twin process.
//!
//! When `RUNSHEET_RELIABILITY_REPORT` names a file (scripts/reliability.sh),
//! the table is appended to it.
//!
//! Run: `cargo bench --bench estate` (`-- --quick` runs concurrency 64 only,
//! `-- --hosts N` another estate size, `-- --local` / `-- --ssh` one transport).

#[path = "../tests/support/estate.rs"]
mod estate;
#[path = "../tests/support/sshd.rs"]
mod sshd;

use std::error::Error;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use estate::{JournalCount, STEPS_PER_HOST, Transport};
use sshd::SshLab;

/// What `main` and its helpers return.
type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Hosts of the estate.
const HOSTS: usize = 200;
/// The `concurrency` values measured, the last one the estate's.
const CONCURRENCIES: [usize; 3] = [1, 16, 64];
/// sshd servers the SSH hosts are spread over.
const SSHD_SERVERS: usize = 4;
/// The runsheet binary built by this `cargo bench`.
const RUNSHEET: &str = env!("CARGO_BIN_EXE_runsheet");

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let hosts = match args.iter().position(|a| a == "--hosts") {
        Some(at) => args
            .get(at + 1)
            .ok_or("--hosts needs a number")?
            .parse::<usize>()?
            .max(1),
        None => HOSTS,
    };
    let concurrencies: &[usize] = if args.iter().any(|a| a == "--quick") {
        &CONCURRENCIES[2..]
    } else {
        &CONCURRENCIES
    };
    let only_local = args.iter().any(|a| a == "--local");
    let only_ssh = args.iter().any(|a| a == "--ssh");
    let lab = if only_local {
        None
    } else {
        Some(SshLab::start(SSHD_SERVERS)?)
    };
    if let Some(lab) = &lab {
        for server in &lab.servers {
            check_sshd_limits(server)?;
        }
    }
    println!(
        "estate: {hosts} hosts x {STEPS_PER_HOST} steps; {} cores; SSH hosts over {SSHD_SERVERS} sshd (MaxStartups 100, MaxSessions 64 each)",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    let mut rows = Vec::new();
    for transport in ["local", "ssh"] {
        if (transport == "local" && only_ssh) || (transport == "ssh" && only_local) {
            continue;
        }
        for &concurrency in concurrencies {
            let figures = run_case(
                hosts,
                concurrency,
                lab.as_ref().filter(|_| transport == "ssh"),
            )?;
            println!(
                "{transport:<5} concurrency {concurrency:>2}: {} of {} steps in {:.2} s, {:.0} steps/s, runsheet peak {:.1} MiB, twin peak {:.1} MiB",
                figures.completed,
                figures.expected,
                figures.wall.as_secs_f64(),
                figures.steps_per_second(),
                figures.runsheet_peak_kib as f64 / 1024.0,
                figures.twin_peak_kib as f64 / 1024.0,
            );
            rows.push((transport, concurrency, figures));
        }
    }
    let mut table = String::from(
        "| transport | concurrency | steps | completed | wall s | steps/s | runsheet peak MiB | twin peak MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (transport, concurrency, figures) in &rows {
        table.push_str(&format!(
            "| {transport} | {concurrency} | {} | {} | {:.2} | {:.0} | {:.1} | {:.1} |\n",
            figures.expected,
            figures.completed,
            figures.wall.as_secs_f64(),
            figures.steps_per_second(),
            figures.runsheet_peak_kib as f64 / 1024.0,
            figures.twin_peak_kib as f64 / 1024.0,
        ));
    }
    println!("\n{table}");
    if let Some(path) = std::env::var_os("RUNSHEET_RELIABILITY_REPORT") {
        let section = format!(
            "\n### Load: a large estate ({hosts} hosts x {STEPS_PER_HOST} steps)\n\n{table}"
        );
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, section.as_bytes()))
            .map_err(|e| format!("cannot append to {}: {e}", Path::new(&path).display()))?;
    }
    Ok(())
}

/// The figures of one run.
struct Figures {
    /// Body steps the playbook holds.
    expected: usize,
    /// Body steps the journal records as succeeded, once each.
    completed: usize,
    /// Wall time of the `runsheet run` process.
    wall: Duration,
    /// Peak resident memory of the runsheet process, KiB.
    runsheet_peak_kib: u64,
    /// Peak resident memory of the twin process, KiB.
    twin_peak_kib: u64,
}

impl Figures {
    /// Completed steps per second of wall time.
    fn steps_per_second(&self) -> f64 {
        self.completed as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }
}

/// Runs the estate once at `concurrency`, over SSH when `lab` is given, and checks that no step was lost.
fn run_case(hosts: usize, concurrency: usize, lab: Option<&SshLab>) -> BenchResult<Figures> {
    let work = tempfile::Builder::new()
        .prefix("runsheet-estate-")
        .tempdir()?;
    let files = work.path().join("files");
    estate::prepare_files(&files, hosts)?;
    let twin = Twin::start()?;
    let transport = match lab {
        Some(lab) => Transport::Ssh {
            ports: lab.servers.iter().map(|s| s.port).collect(),
            user: lab.user(),
            identity: lab.client_key().display().to_string(),
            known_hosts: lab.known_hosts().display().to_string(),
        },
        None => Transport::Local,
    };
    std::fs::write(
        work.path().join("env.yaml"),
        estate::environment(hosts, &twin.admin_url, &transport),
    )?;
    std::fs::write(
        work.path().join("estate.yaml"),
        estate::playbook(&files, concurrency),
    )?;
    let log = std::fs::File::create(work.path().join("run.log"))?;
    let started = Instant::now();
    let mut child = Command::new(RUNSHEET)
        .args(["run", "estate.yaml", "--env", "env.yaml"])
        .env("NO_COLOR", "1")
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let pid = child.id();
    let mut runsheet_peak_kib = 0;
    let status = loop {
        if let Some(kib) = peak_kib(pid) {
            runsheet_peak_kib = runsheet_peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let twin_peak_kib = peak_kib(twin.child.id()).unwrap_or(0);
    let output = std::fs::read_to_string(work.path().join("run.log")).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = output.lines().rev().take(30).collect();
        return Err(format!(
            "run at concurrency {concurrency} ended with {status}:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
        .into());
    }
    let count = journal(work.path())?;
    let expected = hosts * STEPS_PER_HOST;
    if count.state != "succeeded"
        || count.succeeded != expected
        || count.distinct != expected
        || count.failed != 0
        || !count.duplicated.is_empty()
    {
        return Err(format!(
            "concurrency {concurrency}: steps lost or repeated: {count:?} (expected {expected})"
        )
        .into());
    }
    estate::check_files(&files, hosts).map_err(|e| format!("concurrency {concurrency}: {e}"))?;
    let consumers = twin.estate_consumers()?;
    let writes = twin.writes()?;
    if consumers != hosts || writes != hosts as u64 {
        return Err(format!("concurrency {concurrency}: the twin holds {consumers} estate consumers after {writes} writes, not {hosts}").into());
    }
    Ok(Figures {
        expected,
        completed: count.distinct,
        wall,
        runsheet_peak_kib,
        twin_peak_kib,
    })
}

/// The journal of the only run in `work`'s state directory, counted.
fn journal(work: &Path) -> BenchResult<JournalCount> {
    let runs = Command::new(RUNSHEET)
        .args(["runs", "--output", "json"])
        .current_dir(work)
        .output()?;
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout)?;
    let id = runs[0]["id"].as_str().ok_or("no run recorded")?.to_owned();
    let show = Command::new(RUNSHEET)
        .args(["show", &id, "--output", "json"])
        .current_dir(work)
        .output()?;
    if !show.status.success() {
        return Err(format!("show {id}: {}", String::from_utf8_lossy(&show.stderr)).into());
    }
    Ok(estate::count_journal(&serde_json::from_slice(
        &show.stdout,
    )?))
}

/// Fails when sshd's limits would make the estate a test of sshd.
fn check_sshd_limits(server: &sshd::Server) -> BenchResult<()> {
    let config = std::fs::read_to_string(server.dir.join("sshd_config"))?;
    let value = |key: &str| {
        config
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0)
    };
    let per_server = HOSTS.div_ceil(SSHD_SERVERS);
    if value("MaxSessions ") < 64 || value("MaxStartups ") < per_server {
        return Err(format!(
            "sshd on port {} allows too few sessions or start-ups for {per_server} hosts",
            server.port
        )
        .into());
    }
    Ok(())
}

/// A `runsheet twin kong` process with `/_twin` control, stopped when dropped.
struct Twin {
    /// The process.
    child: Child,
    /// Its Admin API URL.
    admin_url: String,
}

impl Twin {
    /// Starts the twin on a free port, its proxy, status and TLS listeners off.
    fn start() -> BenchResult<Twin> {
        let mut child = Command::new(RUNSHEET)
            .args([
                "twin",
                "kong",
                "--listen",
                "127.0.0.1:0",
                "--proxy-listen",
                "off",
                "--status-listen",
                "off",
                "--proxy-tls-listen",
                "off",
                "--control",
                "--output",
                "json",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut first = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut first)?;
        }
        let started: serde_json::Value = serde_json::from_str(&first)
            .map_err(|e| format!("twin start-up line {first:?}: {e}"))?;
        let admin_url = started["admin_url"]
            .as_str()
            .ok_or("no admin_url in the twin's start-up line")?
            .to_owned();
        Ok(Twin { child, admin_url })
    }

    /// A GET on the Admin API, as JSON.
    fn get(&self, path: &str) -> BenchResult<serde_json::Value> {
        let output = Command::new("curl")
            .args(["-sf", &format!("{}{path}", self.admin_url)])
            .output()?;
        if !output.status.success() {
            return Err(format!("GET {path} failed: {}", output.status).into());
        }
        Ok(serde_json::from_slice(&output.stdout)?)
    }

    /// The consumers named `estate-*`.
    fn estate_consumers(&self) -> BenchResult<usize> {
        Ok(estate::estate_consumers(&[
            self.get("/consumers?size=1000")?
        ]))
    }

    /// The twin's write counter.
    fn writes(&self) -> BenchResult<u64> {
        self.get("/_twin/counters")?["writes"]
            .as_u64()
            .ok_or_else(|| "no writes counter".into())
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peak resident memory (VmHWM) of process `pid`, KiB, while it runs.
fn peak_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}
