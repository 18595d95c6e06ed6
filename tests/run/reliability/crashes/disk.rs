//! The journal on a full disk, a journal whose last line was torn by a crash, and a state
//! directory on a read-only file system.
//!
//! A full or read-only disk is made for real: a small tmpfs mounted on the state directory
//! (remounted read-only for the last test) when this process may mount (root with
//! CAP_SYS_ADMIN, as the tests run here and in CI's container). Where it may not, the
//! binary runs under a file-size limit (`ulimit -f`, SIGXFSZ ignored), so its writes past
//! the limit fail with EFBIG in the same write(2) calls a full disk fails with ENOSPC; a
//! limit of zero makes every write fail, the nearest thing to a read-only file system that
//! root's permissions cannot bypass (chmod does not stop root). The test prints which it
//! used; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::lab::{KvServer, Lab, Run, TestResult};
use crate::traffic::Outcome;

/// A tmpfs mounted by this test, unmounted when dropped.
struct Mount {
    path: PathBuf,
}

impl Mount {
    /// Mounts a tmpfs of `size` (mount(8)'s syntax) on `path`; `None` when not permitted.
    /// `RUNSHEET_CRASH_NO_MOUNT=1` makes it refuse, to exercise the other way.
    fn tmpfs(path: &Path, size: &str) -> Option<Mount> {
        if std::env::var_os("RUNSHEET_CRASH_NO_MOUNT").is_some() {
            return None;
        }
        std::fs::create_dir_all(path).ok()?;
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .ok()?;
        mounted.status.success().then(|| Mount {
            path: path.to_path_buf(),
        })
    }

    /// Remounts it with `options` (`ro`, `rw`, `size=...`).
    fn remount(&self, options: &str) -> Outcome<()> {
        let done = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .output()?;
        if !done.status.success() {
            return Err(format!(
                "remount {options}: {}",
                String::from_utf8_lossy(&done.stderr)
            )
            .into());
        }
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
    }
}

/// How the test makes the disk refuse writes.
enum Refusal {
    /// A real tmpfs on the state directory.
    Tmpfs(Mount),
    /// A file-size limit of this many 512-byte blocks on the binary.
    Limit(u64),
}

impl Refusal {
    /// The command for `runsheet ARGS` in `lab` under this refusal.
    fn command(&self, lab: &Lab, args: &[&str]) -> Command {
        match self {
            Refusal::Tmpfs(_) => lab.command(args),
            Refusal::Limit(blocks) => {
                let mut script = format!(
                    "trap '' XFSZ; ulimit -f {blocks}; exec \"{}\"",
                    env!("CARGO_BIN_EXE_runsheet")
                );
                for arg in args {
                    script.push_str(&format!(" '{arg}'"));
                }
                let mut shell = Command::new("sh");
                shell
                    .args(["-c", &script])
                    .current_dir(lab.path())
                    .env("NO_COLOR", "1")
                    .env_remove("RUST_BACKTRACE")
                    .stdin(std::process::Stdio::null());
                shell
            }
        }
    }

    /// What the test used, for its log.
    fn describe(&self) -> &'static str {
        match self {
            Refusal::Tmpfs(_) => "a tmpfs mounted on the state directory",
            Refusal::Limit(_) => "mount not permitted: a file-size limit (ulimit -f) on the binary",
        }
    }
}

/// A playbook of `steps` idempotent write steps, each writing `data/fN` with a body of
/// `size` bytes made by a template (the rendered arguments go into the journal's records,
/// the playbook's copy stays small); with a gate `more` before the last one when `gate`.
fn writer(steps: usize, size: usize, gate: bool) -> String {
    let mut text = String::from("runsheet: 1\nname: writer\nsteps:\n");
    for n in 1..=steps {
        if gate && n == steps {
            text.push_str("  - {id: gate, action: approval, with: {prompt: more?, gate: more}}\n");
        }
        text.push_str(&format!(
            "  - {{id: f{n}, action: host.file, on: me, with: {{path: \"{{{{ env.data }}}}/f{n}\", content: \"{n} {{{{ 'x' * {size} }}}}\\n\"}}}}\n"
        ));
    }
    text
}

/// The journal's records' kinds and steps, in order.
fn records(path: &Path) -> Outcome<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            // A torn last line (checked by `show --verify` below).
            continue;
        };
        out.push((
            record["kind"].as_str().unwrap_or_default().to_owned(),
            record["step"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    Ok(out)
}

/// The files of the lab's data directory, sorted.
fn written(lab: &Lab) -> Outcome<Vec<String>> {
    let mut names: Vec<String> = lab.tree()?.into_keys().collect();
    names.sort_by_key(|name| name.trim_start_matches('f').parse::<u32>().unwrap_or(0));
    Ok(names)
}

#[test]
fn a_full_disk_stops_the_run_naming_the_journal_loses_no_record_and_resume_finishes() -> TestResult
{
    const STEPS: usize = 40;
    let lab = Lab::with_data()?;
    lab.write("p.yaml", &writer(STEPS, 1500, false))?;
    let state = lab.path().join(".runsheet");
    // 48 KiB: the run's directory and lock fit, its journal fills it after some steps.
    let refusal = match Mount::tmpfs(&state, "48k") {
        Some(mount) => Refusal::Tmpfs(mount),
        None => Refusal::Limit(40),
    };
    eprintln!("disk full: {}", refusal.describe());
    let run = lab.run_with(refusal.command(&lab, &["run", "p.yaml", "--env", "env.yaml"]))?;
    let id = lab
        .only_run()
        .ok_or_else(|| format!("no run: {}", run.all()))?;
    let journal = state.join("runs").join(&id).join("journal.jsonl");
    assert_eq!(run.code, Some(2), "a person must act: {}", run.all());
    let cause = match refusal {
        Refusal::Tmpfs(_) => "No space left on device",
        Refusal::Limit(_) => "File too large",
    };
    let all = run.all();
    assert!(
        all.contains(&format!(
            "cannot write the journal: journal .runsheet/runs/{id}/journal.jsonl"
        )) && all.contains(cause),
        "the error names the journal and the cause: {all}"
    );
    // Every file written belongs to a step whose start record is in the journal, and
    // nothing after the first step that could not be recorded was written.
    let kept = records(&journal)?;
    let started: Vec<&str> = kept
        .iter()
        .filter(|(kind, _)| kind == "step_started")
        .map(|(_, step)| step.as_str())
        .collect();
    let files = written(&lab)?;
    assert!(
        !files.is_empty() && files.len() < STEPS,
        "the disk filled in the middle of the run: {files:?}"
    );
    for file in &files {
        assert!(
            started.contains(&file.as_str()),
            "{file} was written without its start record: {started:?}"
        );
    }
    assert!(
        files.len() <= started.len(),
        "{files:?} vs started {started:?}"
    );
    // What was recorded before the failure verifies (a torn last line is reported).
    let verified = lab.run(&["show", &id, "--verify"])?;
    assert!(
        verified.stdout.contains("hash chain intact"),
        "{}",
        verified.all()
    );
    let before = kept.len();

    // Space is back: resume finishes the run, every record before the failure kept.
    match &refusal {
        Refusal::Tmpfs(mount) => mount.remount("size=16m")?,
        Refusal::Limit(_) => {}
    }
    let resumed = lab.run(&["resume", &id])?;
    resumed.assert_ended(0, &[]);
    assert_eq!(written(&lab)?.len(), STEPS, "{}", resumed.all());
    let after = records(&journal)?;
    assert_eq!(&after[..before], &kept[..], "no record lost or changed");
    let verified = lab.run(&["show", &id, "--verify"])?;
    assert!(
        verified.stdout.contains("hash chain intact"),
        "{}",
        verified.all()
    );
    Ok(())
}

#[test]
fn a_torn_last_journal_line_is_reported_by_verify_and_dropped_by_resume() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", &writer(3, 10, true))?;
    // Paused at its gate: the last record is the pause.
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    run.assert_ended(4, &[]);
    let id = run.run_id().ok_or("no run id")?;
    let journal = lab
        .path()
        .join(".runsheet/runs")
        .join(&id)
        .join("journal.jsonl");
    let text = std::fs::read_to_string(&journal)?;
    let lines: Vec<&str> = text.lines().collect();
    // Cut the last record in the middle, as a crash while writing it would.
    let last = lines.last().ok_or("empty journal")?;
    let kept = text.len() - last.len() - 1;
    std::fs::write(&journal, &text.as_bytes()[..kept + last.len() / 2])?;

    let verified = lab.run(&["show", &id, "--verify"])?;
    assert_eq!(verified.code, Some(0), "{}", verified.all());
    assert!(
        verified.stdout.contains("hash chain intact") && verified.all().contains("cut short"),
        "verify reports the torn tail: {}",
        verified.all()
    );
    let resumed = lab.run(&["resume", &id, "--approve", "more"])?;
    resumed.assert_ended(0, &[]);
    assert_eq!(written(&lab)?.len(), 3, "{}", resumed.all());
    assert!(
        resumed.all().contains("cut short"),
        "resume says it dropped the torn line: {}",
        resumed.all()
    );
    let repaired = std::fs::read_to_string(&journal)?;
    assert!(
        repaired.starts_with(&text[..kept]) && repaired.ends_with('\n'),
        "every whole record kept, the torn line gone"
    );
    let verified = lab.run(&["show", &id, "--verify"])?;
    assert!(
        verified.stdout.contains("hash chain intact") && !verified.all().contains("cut short"),
        "{}",
        verified.all()
    );
    Ok(())
}

/// A playbook writing two values to the key-value server.
fn gateway_writer(url: &str) -> String {
    format!(
        "runsheet: 1\nname: puts\nsteps:\n  - {{id: a, action: http, with: {{method: PUT, url: \"{url}/kv/a\", body: \"1\"}}}}\n  - {{id: b, action: http, with: {{method: PUT, url: \"{url}/kv/b\", body: \"2\"}}}}\n"
    )
}

#[test]
fn a_read_only_state_dir_is_refused_before_any_write_to_the_gateway() -> TestResult {
    let server = KvServer::start()?;
    let lab = Lab::with_data()?;
    lab.write("p.yaml", &gateway_writer(&server.url))?;
    let state = lab.path().join(".runsheet");
    let refusal = match Mount::tmpfs(&state, "1m") {
        Some(mount) => {
            mount.remount("ro")?;
            Refusal::Tmpfs(mount)
        }
        None => Refusal::Limit(0),
    };
    eprintln!("read-only state dir: {}", refusal.describe());
    let run: Run = lab.run_with(refusal.command(&lab, &["run", "p.yaml", "--env", "env.yaml"]))?;
    let all = run.all();
    assert!(
        all.contains("state directory: .runsheet/"),
        "the error names the state directory: {all}"
    );
    let cause = match refusal {
        Refusal::Tmpfs(_) => "Read-only file system",
        Refusal::Limit(_) => "File too large",
    };
    assert!(all.contains(cause), "the error names the cause: {all}");
    assert_eq!(run.code, Some(5), "refused to start, nothing ran: {all}");
    let methods = server.state().methods;
    assert_eq!(
        methods.get("PUT"),
        None,
        "nothing was written to the gateway: {methods:?}"
    );
    assert!(server.state().values.is_empty());
    Ok(())
}
