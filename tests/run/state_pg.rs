//! The PostgreSQL state backend end to end, against a real server: runs move
//! between runners through the database, one run per environment, crash and
//! connection loss recover by `resume`, tampering shows, the schema is
//! versioned, and runs move between a state directory and the database.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::lab::{Lab, Run, TestResult};
use crate::postgres::{self, PASSWORD, Postgres};

/// Writes two files with an approval gate between them.
const GATED: &str = r#"
runsheet: 1
name: gated
steps:
  - {id: first, action: host.file, on: me, with: {path: "{{ env.data }}/first", content: "one\n"}}
  - {id: go, action: approval, with: {prompt: "Proceed to the second write?", gate: go-second}}
  - {id: second, action: host.file, on: me, with: {path: "{{ env.data }}/second", content: "two\n"}}
"#;

/// A write, a wait long enough to act during it, and another write.
const SLOW: &str = r#"
runsheet: 1
name: slow
steps:
  - {id: first, action: host.file, on: me, with: {path: "{{ env.data }}/first", content: "one\n"}}
  - {id: wait, action: sleep, with: {duration: 3s}, needs: [first]}
  - {id: third, action: host.file, on: me, with: {path: "{{ env.data }}/third", content: "three\n"}, needs: [wait]}
"#;

/// The shared server and a fresh database for one test, or `None` to skip.
fn database(name: &str) -> Result<Option<(&'static Postgres, String)>, Box<dyn std::error::Error>> {
    let Some(server) = postgres::shared()? else {
        return Ok(None);
    };
    let db = server.database(name)?;
    Ok(Some((server, server.url(&db))))
}

/// `runsheet ARGS` in `cwd` with the database password in its environment.
fn command(lab: &Lab, cwd: &Path, args: &[&str]) -> Command {
    let mut command = lab.command(args);
    command
        .current_dir(cwd)
        .env("RUNSHEET_STATE_PASSWORD", PASSWORD);
    command
}

fn run(lab: &Lab, cwd: &Path, args: &[&str]) -> Result<Run, Box<dyn std::error::Error>> {
    let run = lab.run_with(command(lab, cwd, args))?;
    assert!(
        !run.all().contains(PASSWORD),
        "the password shows: {}",
        run.all()
    );
    Ok(run)
}

fn spawn(lab: &Lab, args: &[&str]) -> std::io::Result<Child> {
    command(lab, lab.path(), args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if done() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("timed out waiting for {what}"))
}

#[test]
fn a_run_paused_on_runner_a_resumes_on_runner_b_through_the_database() -> TestResult {
    let Some((server, url)) = database("pause_a_resume_b")? else {
        return Ok(());
    };
    let lab = Lab::with_data()?;
    lab.write("p.yaml", GATED)?;
    let runner_b = tempfile::tempdir()?;
    let paused = run(
        &lab,
        lab.path(),
        &["run", "p.yaml", "--env", "env.yaml", "--state", &url],
    )?;
    assert_eq!(paused.code, Some(4), "{}", paused.all());
    let id = paused.run_id().ok_or("no run id")?;
    // Another runner, another working directory, nothing local: the database has it all.
    let listed = run(
        &lab,
        runner_b.path(),
        &["runs", "--state", &url, "--output", "json"],
    )?;
    let runs: serde_json::Value = serde_json::from_str(&listed.stdout)?;
    assert_eq!(runs[0]["id"], id.as_str(), "{}", listed.all());
    assert_eq!(runs[0]["state"], "paused", "{}", listed.all());
    let other = run(
        &lab,
        runner_b.path(),
        &[
            "run",
            &lab.path().join("p.yaml").display().to_string(),
            "--env",
            &lab.path().join("env.yaml").display().to_string(),
            "--state",
            &url,
        ],
    )?;
    assert_eq!(
        other.code,
        Some(5),
        "the paused run holds the environment: {}",
        other.all()
    );
    assert!(other.stderr.contains(&id), "{}", other.all());
    let resumed = run(
        &lab,
        runner_b.path(),
        &[
            "resume",
            &id,
            "--approve",
            "go-second",
            "--approver",
            "bob",
            "--state",
            &url,
        ],
    )?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert!(
        resumed
            .stdout
            .contains("done    first (by an earlier attempt)"),
        "{}",
        resumed.all()
    );
    assert_eq!(std::fs::read_to_string(lab.data().join("second"))?, "two\n");
    let shown = run(&lab, runner_b.path(), &["show", &id, "--state", &url])?;
    assert!(
        shown
            .stdout
            .contains("gate     `go-second` approved by bob"),
        "{}",
        shown.all()
    );
    assert!(shown.stdout.contains("succeeded"), "{}", shown.all());
    let verified = run(
        &lab,
        runner_b.path(),
        &["show", &id, "--verify", "--state", &url],
    )?;
    assert!(
        verified.stdout.contains("hash chain intact"),
        "{}",
        verified.all()
    );
    assert!(
        !lab.path().join(".runsheet").exists() && !runner_b.path().join(".runsheet").exists(),
        "nothing is kept locally"
    );
    let db = url
        .rsplit('/')
        .next()
        .and_then(|d| d.split('?').next())
        .unwrap_or("");
    let lock = server.psql(
        db,
        "SELECT coalesce(run_id, '(free)') FROM runsheet_locks WHERE environment = 'lab'",
    )?;
    assert_eq!(lock, "(free)");
    Ok(())
}

#[test]
fn two_concurrent_runs_on_one_environment_exactly_one_proceeds() -> TestResult {
    let Some((_, url)) = database("two_concurrent")? else {
        return Ok(());
    };
    let lab = Lab::with_data()?;
    lab.write("p.yaml", &SLOW.replace("3s", "1s"))?;
    let args = [
        "run",
        "p.yaml",
        "--env",
        "env.yaml",
        "--state",
        url.as_str(),
    ];
    let (a, b) = (spawn(&lab, &args)?, spawn(&lab, &args)?);
    let (a, b) = (a.wait_with_output()?, b.wait_with_output()?);
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    let both = format!(
        "{}{}{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stdout),
        String::from_utf8_lossy(&b.stderr)
    );
    assert_eq!(codes, [Some(0), Some(5)], "{both}");
    assert!(
        both.contains("is locked by run") && both.contains("which is still running"),
        "{both}"
    );
    let listed = run(
        &lab,
        lab.path(),
        &["runs", "--state", &url, "--output", "json"],
    )?;
    let runs: serde_json::Value = serde_json::from_str(&listed.stdout)?;
    assert_eq!(
        runs.as_array().map(Vec::len),
        Some(1),
        "the refused run leaves nothing: {}",
        listed.all()
    );
    Ok(())
}

#[test]
fn a_run_killed_with_sigkill_resumes_through_the_database() -> TestResult {
    let Some((server, url)) = database("kill_9")? else {
        return Ok(());
    };
    let db = url
        .rsplit('/')
        .next()
        .and_then(|d| d.split('?').next())
        .unwrap_or("")
        .to_owned();
    let lab = Lab::with_data()?;
    lab.write("p.yaml", SLOW)?;
    let mut child = spawn(
        &lab,
        &["run", "p.yaml", "--env", "env.yaml", "--state", &url],
    )?;
    wait_for("the first write's end record", || {
        server
            .psql(
                &db,
                "SELECT count(*) FROM runsheet_journal WHERE kind = 'step_succeeded'",
            )
            .is_ok_and(|n| n == "1")
    })?;
    child.kill()?;
    child.wait()?;
    let listed = run(&lab, lab.path(), &["runs", "--state", &url])?;
    assert!(listed.stdout.contains("crashed"), "{}", listed.all());
    let other = run(
        &lab,
        lab.path(),
        &["run", "p.yaml", "--env", "env.yaml", "--state", &url],
    )?;
    assert_eq!(other.code, Some(5), "{}", other.all());
    assert!(
        other.stderr.contains("whose process is gone"),
        "a stale lock is reported: {}",
        other.all()
    );
    let id = server.psql(&db, "SELECT id FROM runsheet_runs")?;
    let resumed = run(&lab, lab.path(), &["resume", &id, "--state", &url])?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert!(
        resumed.stderr.contains("took back the lock on `lab`"),
        "{}",
        resumed.all()
    );
    assert_eq!(
        std::fs::read_to_string(lab.data().join("third"))?,
        "three\n"
    );
    Ok(())
}

#[test]
fn a_lost_connection_stops_new_steps_and_resume_completes_once_the_database_is_back() -> TestResult
{
    if !postgres::available()? {
        return Ok(());
    }
    // Its own server: this test stops it.
    let server = Postgres::start(false)?;
    let url = server.url("postgres");
    let lab = Lab::with_data()?;
    lab.write("p.yaml", SLOW)?;
    let child = spawn(
        &lab,
        &["run", "p.yaml", "--env", "env.yaml", "--state", &url],
    )?;
    wait_for("the first write", || lab.data().join("first").exists())?;
    std::thread::sleep(Duration::from_millis(300));
    server.stop()?;
    let output = child.wait_with_output()?;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains(PASSWORD), "{all}");
    assert_eq!(output.status.code(), Some(2), "needs attention: {all}");
    assert!(
        all.contains("stop    cannot write the journal") && all.contains("cannot connect"),
        "{all}"
    );
    assert!(
        !lab.data().join("third").exists(),
        "no step starts without its record: {all}"
    );
    server.boot(false)?;
    let id = server.psql("postgres", "SELECT id FROM runsheet_runs")?;
    let resumed = run(&lab, lab.path(), &["resume", &id, "--state", &url])?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert_eq!(
        std::fs::read_to_string(lab.data().join("third"))?,
        "three\n"
    );
    let verified = run(
        &lab,
        lab.path(),
        &["show", &id, "--verify", "--state", &url],
    )?;
    assert!(
        verified.stdout.contains("hash chain intact"),
        "{}",
        verified.all()
    );
    Ok(())
}

#[test]
fn a_tampered_journal_row_is_detected_and_cannot_be_resumed() -> TestResult {
    let Some((server, url)) = database("tampered")? else {
        return Ok(());
    };
    let db = url
        .rsplit('/')
        .next()
        .and_then(|d| d.split('?').next())
        .unwrap_or("")
        .to_owned();
    let lab = Lab::with_data()?;
    lab.write("p.yaml", GATED)?;
    let paused = run(
        &lab,
        lab.path(),
        &["run", "p.yaml", "--env", "env.yaml", "--state", &url],
    )?;
    assert_eq!(paused.code, Some(4), "{}", paused.all());
    let id = paused.run_id().ok_or("no run id")?;
    server.psql(
        &db,
        "UPDATE runsheet_journal SET line = replace(line, '\"first\"', '\"forged\"') WHERE seq = 2",
    )?;
    let verified = run(
        &lab,
        lab.path(),
        &["show", &id, "--verify", "--state", &url],
    )?;
    assert_ne!(verified.code, Some(0), "{}", verified.all());
    assert!(
        verified.stderr.contains("BROKEN at record 2"),
        "{}",
        verified.all()
    );
    let resumed = run(
        &lab,
        lab.path(),
        &["resume", &id, "--approve", "go-second", "--state", &url],
    )?;
    assert_eq!(resumed.code, Some(5), "{}", resumed.all());
    assert!(!lab.data().join("second").exists());
    Ok(())
}

#[test]
fn migrate_reports_the_version_and_a_newer_schema_is_refused() -> TestResult {
    let Some((server, url)) = database("migrate")? else {
        return Ok(());
    };
    let db = url
        .rsplit('/')
        .next()
        .and_then(|d| d.split('?').next())
        .unwrap_or("")
        .to_owned();
    let lab = Lab::new()?;
    let migrated = run(&lab, lab.path(), &["state", "migrate", "--state", &url])?;
    assert_eq!(migrated.code, Some(0), "{}", migrated.all());
    assert!(
        migrated.stdout.contains("schema version 1"),
        "{}",
        migrated.all()
    );
    assert_eq!(
        server.psql(&db, "SELECT count(*) FROM runsheet_schema")?,
        "1"
    );
    server.psql(
        &db,
        "INSERT INTO runsheet_schema (version, name) VALUES (99, 'from the future')",
    )?;
    let refused = run(&lab, lab.path(), &["runs", "--state", &url])?;
    assert_eq!(refused.code, Some(5), "{}", refused.all());
    assert!(
        refused
            .stderr
            .contains("schema is version 99, newer than this runsheet"),
        "{}",
        refused.all()
    );
    let wrong = lab.run_with(command(
        &lab,
        lab.path(),
        &[
            "runs",
            "--state",
            &url.replace("runsheet@", "runsheet:wrong-pw-1@"),
        ],
    ))?;
    assert_eq!(wrong.code, Some(5), "{}", wrong.all());
    assert!(
        !wrong.all().contains("wrong-pw-1")
            && wrong.stderr.contains("postgres://runsheet@127.0.0.1"),
        "{}",
        wrong.all()
    );
    Ok(())
}

#[test]
fn a_run_exports_to_a_directory_and_imports_into_another_database() -> TestResult {
    let Some((server, url)) = database("export_from")? else {
        return Ok(());
    };
    let other = server.url(&server.database("import_into")?);
    let lab = Lab::with_data()?;
    lab.write("p.yaml", GATED)?;
    let paused = run(
        &lab,
        lab.path(),
        &["run", "p.yaml", "--env", "env.yaml", "--state", &url],
    )?;
    assert_eq!(paused.code, Some(4), "{}", paused.all());
    let id = paused.run_id().ok_or("no run id")?;
    let exported = run(
        &lab,
        lab.path(),
        &["state", "export", &id, "--state", &url, "--to", "local"],
    )?;
    assert_eq!(exported.code, Some(0), "{}", exported.all());
    assert!(
        exported.stdout.contains("hash chain intact"),
        "{}",
        exported.all()
    );
    let verified = run(
        &lab,
        lab.path(),
        &["show", &id, "--verify", "--state-dir", "local"],
    )?;
    assert!(
        verified.stdout.contains("hash chain intact"),
        "{}",
        verified.all()
    );
    let imported = run(
        &lab,
        lab.path(),
        &["state", "import", &id, "--from", "local", "--state", &other],
    )?;
    assert_eq!(imported.code, Some(0), "{}", imported.all());
    let again = run(
        &lab,
        lab.path(),
        &["state", "import", &id, "--from", "local", "--state", &other],
    )?;
    assert_ne!(
        again.code,
        Some(0),
        "a second import is refused: {}",
        again.all()
    );
    // The paused run moved: neither the database nor the directory resumes it again.
    for (from, flag) in [(url.as_str(), "--state"), ("local", "--state-dir")] {
        let stale = run(&lab, lab.path(), &["resume", &id, "--approve", "go-second", flag, from])?;
        assert_eq!(stale.code, Some(5), "{}", stale.all());
        assert!(
            stale.stderr.contains(&format!("run {id} was moved to")),
            "{}",
            stale.all()
        );
    }
    let listed = run(&lab, lab.path(), &["runs", "--state", &url])?;
    assert!(listed.stdout.contains("moved"), "{}", listed.all());
    let twice = run(
        &lab,
        lab.path(),
        &["state", "export", &id, "--state", &url, "--to", "elsewhere"],
    )?;
    assert_eq!(twice.code, Some(5), "a moved run is not moved again: {}", twice.all());
    // The source released the environment lock the paused run held there.
    let fresh = run(&lab, lab.path(), &["run", "p.yaml", "--env", "env.yaml", "--state", &url])?;
    assert_eq!(fresh.code, Some(4), "{}", fresh.all());
    // The lock is the source database's; the imported run resumes in its new home.
    let resumed = run(
        &lab,
        lab.path(),
        &["resume", &id, "--approve", "go-second", "--state", &other],
    )?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert_eq!(std::fs::read_to_string(lab.data().join("second"))?, "two\n");
    Ok(())
}

#[test]
fn a_run_whose_lock_is_taken_over_stops_at_its_next_record() -> TestResult {
    let Some((server, url)) = database("taken_over")? else {
        return Ok(());
    };
    let lab = Lab::with_data()?;
    // Longer than a heartbeat period (5 s), so that one runs while the step waits.
    lab.write("p.yaml", &SLOW.replace("duration: 3s", "duration: 7s"))?;
    let child = spawn(&lab, &["run", "p.yaml", "--env", "env.yaml", "--state", &url])?;
    wait_for("the first write", || lab.data().join("first").exists())?;
    let db = url
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .ok_or("no database in the URL")?;
    let stolen = server.psql(db, "UPDATE runsheet_locks SET run_id = 'someone-else' RETURNING environment")?;
    assert!(!stolen.trim().is_empty(), "no lock row to take over");
    let output = child.wait_with_output()?;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(2), "needs attention: {all}");
    assert!(all.contains("is no longer this run's"), "{all}");
    assert!(
        !lab.data().join("third").exists(),
        "no step starts once the lock is lost: {all}"
    );
    Ok(())
}
