//! The verbs end to end: records, journal, approvals, locks, windows,
//! signals, dry runs, saved plans, secrets and reports.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lab::{KvServer, Lab, TestResult};

/// Writes two files with an approval gate between them.
const GATED: &str = r#"
runsheet: 1
name: gated
steps:
  - {id: first, action: host.file, on: me, with: {path: "{{ env.data }}/first", content: "one\n"}}
  - {id: go, action: approval, with: {prompt: "Proceed to the second write?", gate: go-second}}
  - {id: second, action: host.file, on: me, with: {path: "{{ env.data }}/second", content: "two\n"}}
"#;


fn json_runs(lab: &Lab) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let listed = lab.run(&["runs", "--output", "json"])?;
    assert_eq!(listed.code, Some(0), "{}", listed.all());
    Ok(serde_json::from_str(&listed.stdout)?)
}

#[test]
fn a_run_is_recorded_listed_shown_and_its_journal_verifies() -> TestResult {
    let lab = Lab::new()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: simple
steps:
  - {id: hello, action: log, with: {message: "hello from {{ env.name }}"}}
  - {id: facts, action: set, with: {values: {answer: 42}}}
  - {id: check, action: assert, with: {that: "steps.facts.outputs.answer == 42"}}
"#)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let id = run.run_id().ok_or("no run id on the first line")?;
    assert!(run.stdout.lines().next().is_some_and(|l| l.contains(&id)), "{}", run.all());
    assert!(run.stdout.contains("hello from lab"), "{}", run.all());
    let runs = json_runs(&lab)?;
    assert_eq!(runs.len(), 1);
    for field in ["id", "playbook", "environment", "state", "started_at"] {
        assert!(runs[0].get(field).is_some(), "runs --output json lacks {field}");
    }
    assert_eq!(runs[0]["state"], "succeeded");
    assert_eq!(runs[0]["id"], id.as_str());
    let shown = lab.run(&["show", &id])?;
    assert_eq!(shown.code, Some(0), "{}", shown.all());
    assert!(shown.stdout.contains("ok       check"), "{}", shown.all());
    let verified = lab.run(&["show", &id, "--verify"])?;
    assert!(verified.stdout.contains("hash chain intact"), "{}", verified.all());
    assert!(lab.path().join(".runsheet/runs").join(&id).join("playbook.yaml").is_file());
    Ok(())
}

#[test]
fn a_tampered_journal_is_detected_and_cannot_be_resumed() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", GATED)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(4), "{}", run.all());
    let id = run.run_id().ok_or("no run id")?;
    let journal = lab.path().join(".runsheet/runs").join(&id).join("journal.jsonl");
    let text = std::fs::read_to_string(&journal)?;
    assert!(text.lines().count() >= 3);
    std::fs::write(&journal, text.replacen("\"first\"", "\"forged\"", 1))?;
    let verified = lab.run(&["show", &id, "--verify"])?;
    assert_ne!(verified.code, Some(0));
    assert!(verified.stderr.contains("BROKEN at record"), "{}", verified.all());
    let resumed = lab.run(&["resume", &id, "--approve", "go-second"])?;
    assert_eq!(resumed.code, Some(5), "{}", resumed.all());
    assert!(resumed.stderr.contains("journal"), "{}", resumed.all());
    assert!(!lab.data().join("second").exists());
    Ok(())
}

#[test]
fn an_approval_gate_pauses_holds_the_lock_and_resume_approves_it() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", GATED)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(4), "{}", run.all());
    let id = run.run_id().ok_or("no run id")?;
    assert!(run.stderr.contains(&format!("runsheet resume {id} --approve go-second")), "{}", run.all());
    assert!(lab.data().join("first").exists() && !lab.data().join("second").exists());
    assert_eq!(json_runs(&lab)?[0]["state"], "paused");
    // The paused run still holds the environment.
    let other = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(other.code, Some(5), "{}", other.all());
    assert!(other.stderr.contains(&id) && other.stderr.contains("runsheet resume"), "{}", other.all());
    // Without the approval it pauses again; with it, it finishes.
    let again = lab.run(&["resume", &id])?;
    assert_eq!(again.code, Some(4), "{}", again.all());
    // A changed playbook is refused, with the diff, unless the operator allows it.
    lab.write("p.yaml", &GATED.replace("Proceed to the second write?", "Proceed?"))?;
    let changed = lab.run(&["resume", &id, "--approve", "go-second"])?;
    assert_eq!(changed.code, Some(5), "{}", changed.all());
    assert!(changed.stderr.contains("-  - {id: go, action: approval, with: {prompt: \"Proceed to the second write?\"") && changed.stderr.contains("--allow-changed"), "{}", changed.all());
    lab.write("p.yaml", GATED)?;
    let environment = std::fs::read_to_string(lab.path().join("env.yaml"))?;
    lab.write("env.yaml", &environment.replace("region: lab-1", "region: lab-2"))?;
    let changed = lab.run(&["resume", &id, "--approve", "go-second"])?;
    assert_eq!(changed.code, Some(5), "{}", changed.all());
    assert!(changed.stderr.contains("+vars: {region: lab-2"), "{}", changed.all());
    lab.write("env.yaml", &environment)?;
    let resumed = lab.run(&["resume", &id, "--approve", "go-second", "--approver", "alice"])?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert!(resumed.stdout.contains("done    first (by an earlier attempt)"), "{}", resumed.all());
    assert_eq!(std::fs::read_to_string(lab.data().join("second"))?, "two\n");
    let journal = std::fs::read_to_string(lab.path().join(".runsheet/runs").join(&id).join("journal.jsonl"))?;
    assert!(journal.lines().any(|l| l.contains("\"kind\":\"approval\"") && l.contains("\"by\":\"alice\"") && l.contains("go-second")), "{journal}");
    // Released: a new run can start.
    let next = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(next.code, Some(4), "{}", next.all());
    Ok(())
}

#[test]
fn a_second_run_is_refused_while_the_first_holds_the_lock_and_unlock_needs_a_dead_holder() -> TestResult {
    let lab = Lab::new()?;
    lab.write("slow.yaml", "runsheet: 1\nname: slow\nsteps:\n  - {id: wait, action: sleep, with: {duration: 3s}}\n")?;
    let first = lab.spawn(&["run", "slow.yaml", "--env", "env.yaml"])?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let lock = lab.path().join(".runsheet/locks/lab.lock");
    while std::fs::metadata(&lock).map(|m| m.len()).unwrap_or(0) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = lab.run(&["run", "slow.yaml", "--env", "env.yaml"])?;
    assert_eq!(second.code, Some(5), "{}", second.all());
    assert!(second.stderr.contains("which is still running"), "{}", second.all());
    let unlock = lab.run(&["unlock", "env.yaml"])?;
    assert_eq!(unlock.code, Some(5), "a live holder is not unlocked: {}", unlock.all());
    let output = first.wait_with_output()?;
    assert_eq!(output.status.code(), Some(0));
    let unlock = lab.run(&["unlock", "lab"])?;
    assert_eq!(unlock.code, Some(0), "{}", unlock.all());
    assert!(unlock.stderr.contains("not locked"), "{}", unlock.all());
    Ok(())
}

#[test]
fn change_requirements_refuse_to_start() -> TestResult {
    let lab = Lab::new()?;
    lab.write("env.yaml", &format!("{}change: {{require_change_id: true, require_window: true}}\n", crate::lab::ENVIRONMENT))?;
    lab.write("p.yaml", "runsheet: 1\nname: p\nsteps:\n  - {id: hi, action: log, with: {message: hi}}\n")?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(5), "{}", run.all());
    assert!(run.stderr.contains("requires a change id"), "{}", run.all());
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--change-id", "CRQ-1"])?;
    assert_eq!(run.code, Some(5));
    assert!(run.stderr.contains("requires a change window"), "{}", run.all());
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--change-id", "CRQ-1", "--window", "2020-01-01T00:00Z/2020-01-01T04:00Z"])?;
    assert_eq!(run.code, Some(5));
    assert!(run.stderr.contains("closed at 2020-01-01T04:00:00Z"), "{}", run.all());
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--change-id", "CRQ-1", "--window", "2020-01-01T00:00Z/2099-01-01T00:00Z"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("change CRQ-1"), "{}", run.all());
    // A window that does not parse is invalid input (3), not a refusal of the change (5).
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--change-id", "CRQ-1", "--window", "tonight"])?;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("change window `tonight`"), "{}", run.all());
    Ok(())
}

fn window_from_now(seconds: i64) -> String {
    let now = jiff::Timestamp::now();
    let end = now + jiff::SignedDuration::from_secs(seconds);
    format!("{}/{}", now - jiff::SignedDuration::from_secs(60), end)
}

#[test]
fn the_window_end_stops_new_writes_and_rolls_back() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: windowed
rollback: all
steps:
  - {id: a, action: host.file, on: me, with: {path: "{{ env.data }}/a", content: "a\n"}}
  - {id: wait, action: sleep, with: {duration: 3s}}
  - {id: b, action: host.file, on: me, with: {path: "{{ env.data }}/b", content: "b\n"}}
"#)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--window", &window_from_now(2)])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("change window ended"), "{}", run.all());
    assert!(run.stdout.contains("undone  a"), "{}", run.all());
    assert!(lab.tree()?.is_empty(), "a was undone and b never written: {:?}", lab.tree()?.keys());
    Ok(())
}

#[test]
fn a_write_that_would_not_fit_in_the_time_left_does_not_start() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: slow-write
steps:
  - {id: slow, action: host.exec, on: me, with: {argv: [sleep, "2"]}}
"#)?;
    let first = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(first.code, Some(0), "{}", first.all());
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--window", &window_from_now(1)])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("p95 is 2s (from 1 earlier run"), "{}", run.all());
    Ok(())
}

/// SIGINT (Ctrl-C) and SIGTERM (what a pipeline sends on timeout) take the same path.
fn a_signal_stops_new_steps_rolls_back_and_exits_130(signal: &str) -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: interrupted
steps:
  - {id: a, action: host.file, on: me, with: {path: "{{ env.data }}/a", content: "a\n"}}
  - {id: wait, action: sleep, with: {duration: 2s}}
  - {id: b, action: host.file, on: me, with: {path: "{{ env.data }}/b", content: "b\n"}}
finally:
  - {id: bye, action: log, with: {message: finally ran}}
"#)?;
    let child = lab.spawn(&["run", "p.yaml", "--env", "env.yaml", "--report", "json=report.json"])?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab.data().join("a").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let status = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status()?;
    assert!(status.success());
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("signal received"), "{stdout}");
    assert!(stdout.contains("undone  a"), "{stdout}");
    assert!(stdout.contains("finally ran"), "{stdout}");
    assert!(lab.tree()?.is_empty(), "{:?}", lab.tree()?.keys());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(lab.path().join("report.json"))?)?;
    assert_eq!(report["outcome"], "interrupted");
    Ok(())
}

#[test]
fn sigint_stops_new_steps_rolls_back_and_exits_130() -> TestResult {
    a_signal_stops_new_steps_rolls_back_and_exits_130("-INT")
}

#[test]
fn sigterm_stops_new_steps_rolls_back_and_exits_130() -> TestResult {
    a_signal_stops_new_steps_rolls_back_and_exits_130("-TERM")
}

#[test]
fn a_dry_run_changes_nothing_anywhere() -> TestResult {
    let lab = Lab::with_data()?;
    let server = KvServer::start()?;
    lab.write("data/existing", "old\n")?;
    let playbook = format!(r#"
runsheet: 1
name: writes
steps:
  - {{id: f1, action: host.file, on: me, with: {{path: "{{{{ env.data }}}}/existing", content: "new\n"}}}}
  - {{id: f2, action: host.file, on: me, with: {{path: "{{{{ env.data }}}}/fresh", content: "x\n", mode: "0600"}}}}
  - {{id: put, action: http, with: {{method: PUT, url: "{url}/kv/k", body: "v", expect_status: 200}}}}
  - {{id: del, action: http, with: {{method: DELETE, url: "{url}/kv/k"}}}}
  - {{id: cmd, action: host.exec, on: me, with: {{command: "touch {{{{ env.data }}}}/touched"}}}}
  - {{id: list, action: http, with: {{method: GET, url: "{url}/kv"}}}}
"#, url = server.url);
    lab.write("p.yaml", &playbook)?;
    let before = lab.tree()?;
    let dry = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--dry-run"])?;
    assert_eq!(dry.code, Some(0), "{}", dry.all());
    let plan = lab.run(&["plan", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(plan.code, Some(0), "{}", plan.all());
    assert!(plan.stdout.contains("-old") && plan.stdout.contains("+new"), "the plan shows the diff: {}", plan.all());
    assert_eq!(lab.tree()?, before, "no file changed");
    let methods = server.state().methods;
    assert_eq!(methods.keys().collect::<Vec<_>>(), ["GET"], "only reads reached the server: {methods:?}");
    assert!(!lab.path().join(".runsheet").exists(), "a dry run records no run");
    Ok(())
}

#[test]
fn a_saved_plan_applies_and_refuses_once_stale() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("data/conf", "v1\n")?;
    lab.write("p.yaml", r#"
runsheet: 1
name: planned
steps:
  - {id: conf, action: host.file, on: me, with: {path: "{{ env.data }}/conf", content: "v2\n"}}
"#)?;
    let plan = lab.run(&["plan", "p.yaml", "--env", "env.yaml", "--out", "p.plan", "--detailed-exitcode"])?;
    assert_eq!(plan.code, Some(6), "changes found: {}", plan.all());
    lab.write("data/conf", "edited by hand\n")?;
    let stale = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--plan", "p.plan"])?;
    assert_eq!(stale.code, Some(5), "{}", stale.all());
    assert!(stale.stderr.contains("not what the plan saw") && stale.stderr.contains("+edited by hand"), "{}", stale.all());
    assert_eq!(std::fs::read_to_string(lab.data().join("conf"))?, "edited by hand\n");
    lab.write("data/conf", "v1\n")?;
    let applied = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--plan", "p.plan"])?;
    assert_eq!(applied.code, Some(0), "{}", applied.all());
    assert_eq!(std::fs::read_to_string(lab.data().join("conf"))?, "v2\n");
    let again = lab.run(&["plan", "p.yaml", "--env", "env.yaml", "--detailed-exitcode"])?;
    assert_eq!(again.code, Some(0), "no changes left: {}", again.all());
    let changed_input = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--plan", "p.plan"])?;
    assert_eq!(changed_input.code, Some(5), "the state moved on since the plan: {}", changed_input.all());
    Ok(())
}

#[test]
fn secrets_never_reach_any_artefact() -> TestResult {
    const SECRET: &str = "s3cr3t-Value-9f8e7d";
    const SENSITIVE: &str = "gen42-key-lab";
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: secretive
inputs:
  token_name: {type: secret, default: APP_TOKEN}
steps:
  - {id: conf, action: host.file, on: me, with: {path: "{{ env.data }}/app.conf", content: "token={{ secret(inputs.token_name) }}\n"}}
  - {id: say, action: log, with: {message: "using {{ secret('APP_TOKEN') }}"}}
  - {id: key, action: set, sensitive: true, with: {values: {key: "{{ 'gen' ~ (6 * 7) ~ '-key-' ~ env.name }}"}}}
  - {id: echo, action: log, with: {message: "key is {{ steps.key.outputs.key }}"}}
  - {id: boom, action: fail, with: {message: "failing with {{ secret('APP_TOKEN') }}"}}
"#)?;
    assert!(!std::fs::read_to_string(lab.path().join("p.yaml"))?.contains(SENSITIVE));
    let mut command = lab.command(&["run", "p.yaml", "--env", "env.yaml", "--report", "json=out/r.json", "--report", "junit=out/r.xml", "--report", "markdown=out/r.md"]);
    command.env("APP_TOKEN", SECRET);
    let run = lab.run_with(command)?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("using ••••••"), "{}", run.all());
    let mut command = lab.command(&["run", "p.yaml", "--env", "env.yaml", "--log-format", "json"]);
    command.env("APP_TOKEN", SECRET);
    let json_run = lab.run_with(command)?;
    let mut scanned = 0;
    for (path, text) in lab.artefacts()? {
        if path.starts_with(lab.data()) {
            continue; // The file the playbook writes holds the secret by design.
        }
        assert!(!text.contains(SECRET), "{} holds the secret", path.display());
        assert!(!text.contains(SENSITIVE), "{} holds the sensitive output", path.display());
        scanned += 1;
    }
    assert!(scanned >= 8, "journals, run records and three reports were scanned ({scanned})");
    for output in [&run, &json_run] {
        assert!(!output.all().contains(SECRET) && !output.all().contains(SENSITIVE), "{}", output.all());
    }
    Ok(())
}

#[test]
fn the_junit_report_parses_and_counts_failures_and_undos() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: reported
rollback: all
steps:
  - {id: a, action: host.file, on: me, with: {path: "{{ env.data }}/a", content: "a\n"}}
  - {id: b, action: host.file, on: me, with: {path: "{{ env.data }}/b", content: "b\n"}}
  - {id: boom, action: fail, with: {message: "health gate failed"}}
"#)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--change-id", "CRQ-7", "--report", "junit=junit.xml", "--report", "markdown=closure.md"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let xml = std::fs::read_to_string(lab.path().join("junit.xml"))?;
    let document = roxmltree::Document::parse(&xml)?;
    let suites: Vec<_> = document.descendants().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 2, "steps and rollback: {xml}");
    let failures: Vec<_> = document.descendants().filter(|n| n.has_tag_name("failure")).collect();
    assert_eq!(failures.len(), 1, "{xml}");
    assert!(failures[0].attribute("message").unwrap_or("").contains("health gate failed") || failures[0].text().unwrap_or("").contains("health gate failed"), "{xml}");
    let rollback_cases = suites[1].children().filter(|n| n.has_tag_name("testcase")).count();
    assert_eq!(rollback_cases, 2, "{xml}");
    let markdown = std::fs::read_to_string(lab.path().join("closure.md"))?;
    assert!(markdown.contains("CRQ-7") && markdown.contains("failed and rolled back"), "{markdown}");
    Ok(())
}

#[test]
fn rollback_undoes_a_finished_run() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("data/a", "original\n")?;
    lab.write("p.yaml", r#"
runsheet: 1
name: undoable
steps:
  - {id: a, action: host.file, on: me, with: {path: "{{ env.data }}/a", content: "changed\n"}}
  - {id: b, action: host.file, on: me, with: {path: "{{ env.data }}/b", content: "new\n"}}
"#)?;
    let before = lab.tree()?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let id = run.run_id().ok_or("no run id")?;
    assert_ne!(lab.tree()?, before);
    let undone = lab.run(&["rollback", &id])?;
    assert_eq!(undone.code, Some(0), "{}", undone.all());
    assert_eq!(lab.tree()?, before, "byte for byte");
    assert_eq!(json_runs(&lab)?[0]["state"], "rolled_back");
    // It says what it did, not that a run failed, and does not suggest resuming it.
    assert!(undone.stdout.contains(&format!("rolling back run {id}")), "{}", undone.all());
    assert!(undone.stdout.contains("closure: rolled back (runsheet rollback: every write undone)"), "{}", undone.all());
    assert!(undone.stderr.contains("every write of run"), "{}", undone.all());
    assert!(!undone.all().contains("runsheet resume"), "{}", undone.all());
    Ok(())
}

#[test]
fn a_write_cut_short_waits_for_a_person_to_say_how_it_ended() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: cut-short
steps:
  - {id: append, action: host.exec, on: me, with: {command: "echo x >> {{ env.data }}/count; sleep 3"}}
  - {id: after, action: host.file, on: me, with: {path: "{{ env.data }}/after", content: "done\n"}}
"#)?;
    let mut child = lab.spawn(&["run", "p.yaml", "--env", "env.yaml"])?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(lab.data().join("count")).unwrap_or_default().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()?;
    let id = lab.only_run().ok_or("no run")?;
    let resumed = lab.run(&["resume", &id])?;
    assert_eq!(resumed.code, Some(2), "{}", resumed.all());
    assert!(resumed.stdout.contains("--resolved append=done"), "{}", resumed.all());
    let wrong = lab.run(&["resume", &id, "--resolved", "after=done"])?;
    assert_eq!(wrong.code, Some(3), "{}", wrong.all());
    assert!(wrong.stderr.contains("those are: append"), "{}", wrong.all());
    let resolved = lab.run(&["resume", &id, "--resolved", "append=done"])?;
    assert_eq!(resolved.code, Some(0), "{}", resolved.all());
    assert_eq!(std::fs::read_to_string(lab.data().join("count"))?, "x\n", "not run twice");
    assert_eq!(std::fs::read_to_string(lab.data().join("after"))?, "done\n");
    Ok(())
}

#[test]
fn a_playbook_can_pause_at_the_window_end_and_resume_in_the_next_window() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: pausing
window_end: pause
steps:
  - {id: a, action: host.file, on: me, with: {path: "{{ env.data }}/a", content: "a\n"}}
  - {id: wait, action: sleep, with: {duration: 3s}}
  - {id: b, action: host.file, on: me, with: {path: "{{ env.data }}/b", content: "b\n"}}
"#)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--window", &window_from_now(2)])?;
    assert_eq!(run.code, Some(4), "{}", run.all());
    let id = run.run_id().ok_or("no run id")?;
    assert!(lab.data().join("a").exists() && !lab.data().join("b").exists());
    let closed = lab.run(&["resume", &id])?;
    assert_eq!(closed.code, Some(5), "the recorded window is over: {}", closed.all());
    assert!(closed.stderr.contains("--window START/END"), "{}", closed.all());
    let resumed = lab.run(&["resume", &id, "--window", &window_from_now(600)])?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert!(lab.data().join("a").exists() && lab.data().join("b").exists());
    Ok(())
}

#[test]
fn a_second_signal_aborts_and_lists_what_it_left() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: aborted
steps:
  - {id: a, action: host.file, on: me, with: {path: "{{ env.data }}/a", content: "a\n"}}
  - {id: long, action: host.exec, on: me, with: {command: "sleep 20"}}
"#)?;
    let child = lab.spawn(&["run", "p.yaml", "--env", "env.yaml"])?;
    let journal_has = |text: &str| -> bool {
        std::fs::read_dir(lab.path().join(".runsheet/runs"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|run| std::fs::read_to_string(run.path().join("journal.jsonl")).is_ok_and(|j| j.contains(text)))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !journal_has("\"step\":\"long\"") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    for _ in 0..2 {
        assert!(std::process::Command::new("kill").args(["-INT", &pid]).status()?.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    let started = Instant::now();
    let output = child.wait_with_output()?;
    assert!(started.elapsed() < Duration::from_secs(10), "the 20 s command was aborted");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("long: aborted while running; its state is unknown"), "{stdout}");
    assert!(stdout.contains("a: written and not undone"), "{stdout}");
    assert!(lab.data().join("a").exists(), "nothing was undone after the abort");
    // The aborted write has no end record: resume does not guess.
    let id = lab.only_run().ok_or("no run")?;
    let resumed = lab.run(&["resume", &id])?;
    assert_eq!(resumed.code, Some(2), "{}", resumed.all());
    assert!(resumed.stdout.contains("--resolved long=done"), "{}", resumed.all());
    Ok(())
}

#[test]
fn turned_off_verification_is_announced_on_every_run() -> TestResult {
    let lab = Lab::new()?;
    lab.write("env.yaml", &format!(
        "{}gateways:\n  kong: {{type: kong, admin_url: \"https://kong:8444\", tls: {{insecure: true}}}}\nssh: {{strict_host_key_checking: false}}\n",
        crate::lab::ENVIRONMENT
    ))?;
    lab.write("p.yaml", "runsheet: 1\nname: p\nsteps:\n  - {id: hi, action: log, with: {message: hi}}\n")?;
    for args in [&["run", "p.yaml", "--env", "env.yaml"][..], &["plan", "p.yaml", "--env", "env.yaml"]] {
        let run = lab.run(args)?;
        assert_eq!(run.code, Some(0), "{}", run.all());
        assert!(run.stdout.contains("TLS verification is OFF for gateway `kong`"), "{args:?}: {}", run.all());
        assert!(run.stdout.contains("SSH host-key checking is OFF"), "{args:?}: {}", run.all());
    }
    Ok(())
}

#[test]
fn rollback_of_a_run_undoes_writes_after_skipped_and_tolerated_steps() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: mixed
rollback: none
steps:
  - {id: maybe, action: log, when: "{{ 1 > 2 }}", with: {message: never}}
  - {id: cfg, action: host.file, on: me, with: {path: "{{ env.data }}/cfg", content: "x\n"}}
  - {id: flaky, action: fail, continue_on_error: true, with: {message: tolerated}}
  - {id: more, action: host.file, on: me, with: {path: "{{ env.data }}/more", content: "y\n"}}
  - {id: boom, action: fail, with: {message: stop here}}
"#)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let id = run.run_id().ok_or("no run id")?;
    assert_eq!(lab.tree()?.len(), 2, "policy none left both files");
    let undone = lab.run(&["rollback", &id])?;
    assert_eq!(undone.code, Some(0), "{}", undone.all());
    assert!(lab.tree()?.is_empty(), "{}", undone.all());
    Ok(())
}

#[test]
fn finally_runs_again_when_a_run_is_resumed() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: notify
steps:
  - {id: gate, action: approval, with: {prompt: go?}}
finally:
  - {id: notify, action: host.exec, on: me, with: {command: "echo sent >> {{ env.data }}/notifications"}}
"#)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(4), "{}", run.all());
    let id = run.run_id().ok_or("no run id")?;
    assert!(!lab.data().join("notifications").exists(), "a paused run has not ended: finally waits");
    let resumed = lab.run(&["resume", &id, "--approve", "gate"])?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert_eq!(std::fs::read_to_string(lab.data().join("notifications"))?, "sent\n");
    Ok(())
}

#[test]
fn a_sensitive_read_never_shows_in_a_dry_run() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: sensitive-plan
steps:
  - {id: token, action: host.exec, on: me, sensitive: true, with: {command: "echo tok-$((6*7))-SECRET", read_only: true}}
  - {id: conf, action: host.file, on: me, with: {path: "{{ env.data }}/conf", content: "token={{ steps.token.outputs.stdout }}"}}
"#)?;
    let plan = lab.run(&["plan", "p.yaml", "--env", "env.yaml", "--out", "p.plan"])?;
    assert_eq!(plan.code, Some(0), "{}", plan.all());
    assert!(plan.stdout.contains("+token=••••••"), "{}", plan.all());
    for text in [plan.all(), std::fs::read_to_string(lab.path().join("p.plan"))?] {
        assert!(!text.contains("tok-42-SECRET"), "{text}");
    }
    Ok(())
}

/// Runs `runsheet ARGS` on a pseudo-terminal (util-linux `script`), typing `input`.
fn on_a_terminal(lab: &Lab, args: &str, input: &str) -> Result<crate::lab::Run, Box<dyn std::error::Error>> {
    use std::io::Write as _;
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_runsheet"));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(lab.path())
        .env_remove("CI")
        .env("USER", "operator-on-tty")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("this test needs util-linux `script` (package bsdutils) for a pseudo-terminal: {e}"))?;
    std::thread::sleep(Duration::from_millis(800));
    if let Some(stdin) = child.stdin.as_mut() {
        stdin.write_all(input.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    Ok(crate::lab::Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).replace('\r', ""),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[test]
fn on_a_terminal_the_gate_asks_and_the_progress_view_draws() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", r#"
runsheet: 1
name: asked
steps:
  - {id: go, action: approval, with: {prompt: "Drain dp1 now?"}}
  - {id: a, action: host.file, on: me, with: {path: "{{ env.data }}/a", content: "a\n"}}
"#)?;
    let yes = on_a_terminal(&lab, "run p.yaml --env env.yaml --yes", "y\n")?;
    assert_eq!(yes.code, Some(0), "{}", yes.all());
    assert!(yes.stdout.contains("Approval gate `go`: Drain dp1 now?"), "{}", yes.all());
    assert!(yes.stdout.contains("gate    `go` approved by operator-on-tty"), "{}", yes.all());
    assert!(yes.stdout.contains("2/2 done"), "the progress view drew: {}", yes.all());
    assert!(lab.data().join("a").exists());
    std::fs::remove_file(lab.data().join("a"))?;
    let no = on_a_terminal(&lab, "run p.yaml --env env.yaml --yes", "n\n")?;
    assert_eq!(no.code, Some(1), "{}", no.all());
    assert!(no.stdout.contains("gate    `go` REFUSED by operator-on-tty"), "{}", no.all());
    assert!(!lab.data().join("a").exists());
    let unconfirmed = on_a_terminal(&lab, "run p.yaml --env env.yaml", "n\n")?;
    assert_eq!(unconfirmed.code, Some(5), "without --yes a terminal run asks first: {}", unconfirmed.all());
    assert!(unconfirmed.stdout.contains("Proceed? [y/N]") && unconfirmed.stdout.contains("not started."), "{}", unconfirmed.all());
    Ok(())
}
