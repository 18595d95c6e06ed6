//! Executor overhead benchmark.
//!
//! - 10,000 no-op read steps (`log`) as a chain and as a wide fan-out, with
//!   the journal on: executor time per step (loading and validation excluded).
//! - 1,000 `host.file` writes, each with its journal start and end records fsynced.
//! - 200 sequential `/bin/true` through `host.exec` on the local transport,
//!   against a bash loop of 200 `/bin/true` measured in the same run.
//!
//! Run: `cargo bench --bench execute` (add `-- --quick` for fewer repeats).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runsheet_engine::check::{CheckRequest, Checked, check};
use runsheet_engine::run::executor::{Control, Mode, Prior, RunOptions, WindowEnd, execute};
use runsheet_engine::run::journal::{Journal, JournalWriter};
use runsheet_engine::run::mask::Masker;
use runsheet_engine::run::window::History;

/// A benchmark case: its name, its number of steps, and the playbook generator.
type Case = (&'static str, usize, fn(usize) -> String);

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let repeats = if quick { 3 } else { 7 };
    let registry = match runsheet_actions::registry() {
        Ok(registry) => registry,
        Err(e) => return eprintln!("registry: {e}"),
    };
    let Ok(dir) = tempfile::tempdir() else {
        return eprintln!("no temporary directory");
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return eprintln!("runtime: {e}"),
    };
    let env_path = dir.path().join("env.yaml");
    let data = dir.path().join("data");
    let _ = std::fs::create_dir_all(&data);
    let _ = std::fs::write(
        &env_path,
        format!("runsheet: 1\nname: bench\nvars: {{data: \"{}\"}}\nhosts:\n  me: {{transport: local}}\n", data.display()),
    );
    println!("{:<28} {:>7} {:>10} {:>10} {:>12}", "case", "steps", "best ms", "median ms", "µs/step");
    let cases: [Case; 5] = [
        ("no-op chain", 10_000, chain),
        ("no-op wide", 10_000, wide),
        ("host.file writes (fsync)", 1_000, files),
        ("host.exec /bin/true", 200, trues),
        ("host.exec /bin/true (write)", 200, true_writes),
    ];
    let mut true_median = 0.0;
    for (name, steps, generate) in cases {
        let playbook = dir.path().join("p.yaml");
        let _ = std::fs::write(&playbook, generate(steps));
        let request = CheckRequest {
            playbook: playbook.clone(),
            environment: Some(env_path.display().to_string()),
            require_inputs: true,
            ..CheckRequest::default()
        };
        let checked = match check(&registry, &request) {
            Ok(checked) => checked,
            Err(d) => return eprintln!("{name}: invalid playbook: {:?}", d.iter().map(|d| d.message.clone()).collect::<Vec<_>>()),
        };
        let mut times = Vec::new();
        for repeat in 0..repeats {
            let journal_path = dir.path().join(format!("journal-{name}-{repeat}.jsonl").replace([' ', '/', '(', ')'], "_"));
            let Ok(journal) = Journal::create(&journal_path) else {
                return eprintln!("journal");
            };
            let _ = std::fs::remove_dir_all(&data);
            let _ = std::fs::create_dir_all(&data);
            let elapsed = runtime.block_on(time_run(&checked, &registry, journal, dir.path()));
            match elapsed {
                Some(elapsed) => times.push(elapsed),
                None => return eprintln!("{name}: the run did not succeed"),
            }
        }
        times.sort();
        let best = times[0].as_secs_f64() * 1e3;
        let median = times[times.len() / 2].as_secs_f64() * 1e3;
        println!("{name:<28} {steps:>7} {best:>10.1} {median:>10.1} {:>12.1}", median * 1e3 / steps as f64);
        if name == "host.exec /bin/true" {
            true_median = median;
        }
    }
    let mut bash = Vec::new();
    for _ in 0..repeats {
        let started = Instant::now();
        let status = std::process::Command::new("bash")
            .args(["-c", "for i in $(seq 200); do /bin/true; done"])
            .status();
        if !status.is_ok_and(|s| s.success()) {
            return eprintln!("bash loop failed");
        }
        bash.push(started.elapsed());
    }
    bash.sort();
    let bash_median = bash[bash.len() / 2].as_secs_f64() * 1e3;
    println!("{:<28} {:>7} {:>10.1} {bash_median:>10.1} {:>12.1}", "bash loop /bin/true", 200, bash[0].as_secs_f64() * 1e3, bash_median * 5.0);
    println!("host.exec /bin/true / bash loop = {:.2}x (target ≤ 1.5x)", true_median / bash_median);
}

async fn time_run(checked: &Checked, registry: &runsheet_engine::Registry, journal: Journal, base: &Path) -> Option<Duration> {
    let options = RunOptions {
        run_id: "bench".into(),
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
        // RUNSHEET_BENCH_NO_JOURNAL=1 separates the journal's cost from the executor's.
        journal: std::env::var_os("RUNSHEET_BENCH_NO_JOURNAL")
            .is_none()
            .then(|| Box::new(journal) as Box<dyn JournalWriter>),
        masker: Masker::default(),
        change_id: None,
    };
    let started = Instant::now();
    let result = execute(checked, registry, options, Control::new()).await;
    let elapsed = started.elapsed();
    (result.outcome == runsheet_engine::run::event::Outcome::Succeeded).then_some(elapsed)
}

fn header() -> String {
    "runsheet: 1\nname: bench\nconcurrency: 16\nsteps:\n".to_owned()
}

fn chain(n: usize) -> String {
    let mut text = header();
    for i in 0..n {
        let _ = writeln!(text, "  - {{id: s{i}, action: log, with: {{message: step}}}}");
    }
    text
}

fn wide(n: usize) -> String {
    let mut text = header();
    for i in 0..n {
        let _ = writeln!(text, "  - {{id: s{i}, action: log, needs: [], with: {{message: step}}}}");
    }
    text
}

fn files(n: usize) -> String {
    let mut text = header();
    for i in 0..n {
        let _ = writeln!(text, "  - {{id: f{i}, action: host.file, on: me, with: {{path: \"{{{{ env.data }}}}/f{i}\", content: \"line {i}\\n\"}}}}");
    }
    text
}

fn trues(n: usize) -> String {
    let mut text = header();
    for i in 0..n {
        let _ = writeln!(text, "  - {{id: t{i}, action: host.exec, on: me, with: {{argv: [/bin/true], read_only: true}}}}");
    }
    text
}

fn true_writes(n: usize) -> String {
    let mut text = header();
    for i in 0..n {
        let _ = writeln!(text, "  - {{id: t{i}, action: host.exec, on: me, with: {{argv: [/bin/true]}}}}");
    }
    text
}
