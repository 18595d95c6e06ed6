//! State backends compared in one run: the local state directory (fsynced
//! journal) against PostgreSQL (a real server started here with fsync on,
//! on loopback).
//!
//! - journal write latency: 500 durable appends, p50 and p99;
//! - a 1,000-write-step run (`host.file`, each with its start and end records
//!   durable before the step proceeds), executor time end to end.
//!
//! Run: `cargo bench --bench state`. Needs /usr/lib/postgresql/15/bin; without
//! it only the local figures print.

#[path = "../tests/support/postgres.rs"]
mod postgres;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runsheet_engine::check::{CheckRequest, Checked, check};
use runsheet_engine::run::event::Outcome;
use runsheet_engine::run::executor::{Control, Mode, Prior, RunOptions, WindowEnd, execute};
use runsheet_engine::run::mask::Masker;
use runsheet_engine::run::state::RunRecord;
use runsheet_engine::run::store::{LocalStore, Store};
use runsheet_engine::run::window::History;
use runsheet_state_pg::PgStore;
use serde_json::{Map, json};

const APPENDS: usize = 500;
const WRITES: usize = 1_000;

fn main() {
    if let Err(e) = bench() {
        eprintln!("state bench: {e}");
    }
}

fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let local: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path().join("state")));
    let mut backends: Vec<(&str, Arc<dyn Store>)> = vec![("local dir", local)];
    let server = if postgres::available()? {
        let server = postgres::Postgres::start(true)?;
        let url = format!(
            "postgres://{}:{}@127.0.0.1:{}/postgres?sslmode=disable",
            postgres::USER,
            postgres::PASSWORD,
            server.port
        );
        backends.push(("postgresql", Arc::new(PgStore::open(&url)?)));
        Some(server)
    } else {
        None
    };
    let registry = runsheet_actions::registry()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let data = dir.path().join("data");
    let env_path = dir.path().join("env.yaml");
    std::fs::write(
        &env_path,
        format!(
            "runsheet: 1\nname: bench\nvars: {{data: \"{}\"}}\nhosts:\n  me: {{transport: local}}\n",
            data.display()
        ),
    )?;
    let playbook = dir.path().join("p.yaml");
    std::fs::write(&playbook, writes(WRITES))?;
    let checked = check(
        &registry,
        &CheckRequest {
            playbook: playbook.clone(),
            environment: Some(env_path.display().to_string()),
            require_inputs: true,
            ..CheckRequest::default()
        },
    )
    .map_err(|d| {
        format!(
            "invalid playbook: {:?}",
            d.iter().map(|d| d.message.clone()).collect::<Vec<_>>()
        )
    })?;
    println!(
        "{:<12} {:>14} {:>14} {:>22} {:>12}",
        "backend", "append p50 µs", "append p99 µs", "1,000-write run ms", "ms/write"
    );
    for (name, store) in &backends {
        let latencies = appends(store.as_ref(), name)?;
        let p50 = percentile(&latencies, 50).as_secs_f64() * 1e6;
        let p99 = percentile(&latencies, 99).as_secs_f64() * 1e6;
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)?;
        let run = runtime.block_on(run_writes(
            &checked,
            &registry,
            store.as_ref(),
            name,
            dir.path(),
        ))?;
        let ms = run.as_secs_f64() * 1e3;
        println!(
            "{name:<12} {p50:>14.0} {p99:>14.0} {ms:>22.0} {:>12.2}",
            ms / WRITES as f64
        );
    }
    if server.is_none() {
        println!(
            "postgresql: skipped (no server binaries in {})",
            postgres::BIN
        );
    }
    Ok(())
}

fn record(id: &str) -> RunRecord {
    RunRecord {
        id: id.into(),
        playbook: "bench".into(),
        state: "running".into(),
        started_at: jiff::Timestamp::now().to_string(),
        ..RunRecord::default()
    }
}

/// Durable appends of a step-sized record, timed one by one.
fn appends(store: &dyn Store, name: &str) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    let id = format!("append-{}", name.replace(' ', "-"));
    store.create_run(&record(&id), "name: bench\n", None)?;
    let (mut journal, _) = store.open_journal(&id)?;
    let mut fields = Map::new();
    fields.insert("step".into(), json!("s"));
    fields.insert("action".into(), json!("host.file"));
    fields.insert(
        "arguments".into(),
        json!({"path": "/srv/data/file", "content": "x".repeat(64)}),
    );
    let mut latencies = Vec::with_capacity(APPENDS);
    for _ in 0..APPENDS {
        let started = Instant::now();
        journal.append("step_started", fields.clone(), true)?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    Ok(latencies)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

async fn run_writes(
    checked: &Checked,
    registry: &runsheet_engine::Registry,
    store: &dyn Store,
    name: &str,
    base: &std::path::Path,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let id = format!("run-{}", name.replace(' ', "-"));
    store.create_run(&record(&id), "name: bench\n", None)?;
    let (journal, _) = store.open_journal(&id)?;
    let options = RunOptions {
        run_id: id.clone(),
        dry_run: false,
        base_dir: base.to_path_buf(),
        window: None,
        window_end: WindowEnd::Rollback,
        history: History::default(),
        prior: Prior::default(),
        resumed: false,
        mode: Mode::Run,
        approver: Arc::new(runsheet_engine::action::NoApprover),
        observers: Vec::new(),
        journal: Some(journal),
        masker: Masker::default(),
        change_id: None,
    };
    let started = Instant::now();
    let result = execute(checked, registry, options, Control::new()).await;
    let elapsed = started.elapsed();
    if result.outcome != Outcome::Succeeded {
        return Err(format!("{name}: the run ended {:?}", result.outcome).into());
    }
    let records = store.read_journal(&id)?;
    let started = records
        .records
        .iter()
        .filter(|r| r.kind() == "step_started")
        .count();
    if started != WRITES || records.broken.is_some() {
        return Err(format!(
            "{name}: {started} start records, chain broken: {:?}",
            records.broken
        )
        .into());
    }
    Ok(elapsed)
}

fn writes(n: usize) -> String {
    let mut text = "runsheet: 1\nname: bench\nconcurrency: 16\nsteps:\n".to_owned();
    for i in 0..n {
        let _ = writeln!(
            text,
            "  - {{id: f{i}, action: host.file, on: me, with: {{path: \"{{{{ env.data }}}}/f{i}\", content: \"line {i}\\n\"}}}}"
        );
    }
    text
}
