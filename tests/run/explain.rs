//! `runsheet explain RUN STEP` (and `show RUN --step`) and `runsheet runs
//! --stats PLAYBOOK` end to end: real runs with a retried step, a failure and
//! its rollback, skipped steps and a secret, then what the verbs say about them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::lab::{Lab, Run, TestResult};

/// A secret the playbook writes into a file; it must never be shown.
const SECRET: &str = "s3cr3t-Explain-4b5c6d";

/// A write retried once, a step whose `when:` is false, a `for_each`, a failure
/// and the steps it leaves unstarted; `rollback: all` undoes the writes.
const PLAYBOOK: &str = r#"
runsheet: 1
name: explained
rollback: all
inputs:
  token_name: {type: secret, default: APP_TOKEN}
steps:
  - {id: conf, action: host.file, on: me, with: {path: "{{ env.data }}/app.conf", content: "token={{ secret(inputs.token_name) }}\n"}}
  - id: flaky
    action: host.exec
    on: me
    retries: 2
    retry_delay: 10ms
    rollback: none
    with: {command: "cd {{ env.data | shell_quote }} && if test -f flag; then echo second try; else touch flag; echo first try fails >&2; exit 1; fi"}
  - {id: optional, action: log, when: "{{ env.name == 'prod' }}", with: {message: "prod only"}}
  - id: nodes
    for_each: "{{ hosts('nodes') }}"
    as: host
    steps:
      - {id: mark, action: host.file, on: "{{ host }}", with: {path: "{{ env.data }}/{{ host.name }}.mark", content: "marked\n"}}
  - {id: boom, action: fail, with: {message: "health gate failed"}}
  - {id: after, action: log, with: {message: "never"}}
"#;

/// Runs the playbook once (it fails and rolls back); the lab and the run id.
fn failed_run() -> Result<(Lab, String), Box<dyn std::error::Error>> {
    let lab = Lab::with_data()?;
    lab.write("p.yaml", PLAYBOOK)?;
    let mut command = lab.command(&["run", "p.yaml", "--env", "env.yaml"]);
    command.env("APP_TOKEN", SECRET);
    let run = lab.run_with(command)?;
    run.assert_ended(1, &["health gate failed"]);
    let id = run.run_id().ok_or("no run id")?;
    Ok((lab, id))
}

/// `explain` with times, durations, the run id and the lab's path made stable.
fn stable(lab: &Lab, id: &str, text: &str) -> String {
    let text = text
        .replace(id, "[RUN]")
        .replace(&lab.path().display().to_string(), "[LAB]");
    let times = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").ok();
    let durations = regex::Regex::new(r#"\b\d+(ms|s|m\d\ds)\b|"elapsed_ms": \d+"#).ok();
    let text = times.map_or(text.clone(), |re| {
        re.replace_all(&text, "[TIME]").into_owned()
    });
    durations.map_or(text.clone(), |re| {
        re.replace_all(&text, "[DURATION]").into_owned()
    })
}

fn snapshot(name: &str, content: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, content));
}

fn explain_json(lab: &Lab, id: &str, step: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let shown = lab.run(&["explain", id, step, "--output", "json"])?;
    assert_eq!(shown.code, Some(0), "{}", shown.all());
    let value: Value = serde_json::from_str(&shown.stdout)?;
    Ok(value["step"].clone())
}

fn explained(lab: &Lab, id: &str, step: &str) -> Result<Run, Box<dyn std::error::Error>> {
    let shown = lab.run(&["explain", id, step])?;
    assert_eq!(shown.code, Some(0), "{}", shown.all());
    assert!(!shown.all().contains(SECRET), "{}", shown.all());
    Ok(shown)
}

#[test]
fn explain_tells_a_steps_arguments_attempts_diff_undo_and_skips() -> TestResult {
    let (lab, id) = failed_run()?;
    let mut all = String::new();
    for step in [
        "conf",
        "flaky",
        "optional",
        "nodes[me2].mark",
        "boom",
        "after",
    ] {
        let shown = explained(&lab, &id, step)?;
        all.push_str(&stable(&lab, &id, &shown.stdout));
        all.push('\n');
    }
    snapshot("explain-failed-run", &all);

    // The same content through `show --step`.
    let show = lab.run(&["show", &id, "--step", "flaky"])?;
    assert_eq!(
        stable(&lab, &id, &show.stdout),
        stable(&lab, &id, &explained(&lab, &id, "flaky")?.stdout)
    );
    Ok(())
}

#[test]
fn explain_json_holds_attempt_timings_the_masked_secret_and_the_rollback() -> TestResult {
    let (lab, id) = failed_run()?;
    let flaky = explain_json(&lab, &id, "flaky")?;
    assert_eq!(flaky["status"], "succeeded");
    assert_eq!(flaky["target"], "host me (local)");
    let attempts = flaky["attempts"].as_array().ok_or("no attempts")?;
    assert_eq!(attempts.len(), 2, "{flaky:#}");
    assert!(
        attempts[0]["error"].as_str().unwrap_or("").contains("exit"),
        "{flaky:#}"
    );
    assert!(attempts[1].get("error").is_none(), "{flaky:#}");
    let spent: u64 = attempts
        .iter()
        .filter_map(|a| a["elapsed_ms"].as_u64())
        .sum();
    let elapsed = flaky["elapsed_ms"].as_u64().ok_or("no elapsed_ms")?;
    assert!(
        spent <= elapsed,
        "attempts ({spent}ms) fit in the step ({elapsed}ms)"
    );
    assert!(
        attempts[0]["ended_at"].as_str() <= attempts[1]["started_at"].as_str(),
        "{flaky:#}"
    );
    assert_eq!(
        flaky["rollback"]["result"], "kept",
        "rollback: none leaves it: {flaky:#}"
    );
    assert!(
        flaky["outputs"]["stdout"]
            .as_str()
            .unwrap_or("")
            .contains("second try")
    );

    let conf = explain_json(&lab, &id, "conf")?;
    let text = conf.to_string();
    assert!(!text.contains(SECRET), "{conf:#}");
    assert!(
        conf["arguments"]["content"]
            .as_str()
            .unwrap_or("")
            .contains("••••••"),
        "{conf:#}"
    );
    assert_eq!(conf["rollback"]["result"], "undone", "{conf:#}");
    assert_eq!(conf["rollback"]["policy"], "all");
    assert!(
        conf["undo"].is_object() || conf["undo_withheld"] == true,
        "{conf:#}"
    );
    assert!(conf["change"]["summary"].is_string(), "{conf:#}");

    let boom = explain_json(&lab, &id, "boom")?;
    assert_eq!(boom["status"], "failed");
    assert_eq!(boom["error"], "health gate failed");
    assert_eq!(boom["tolerated"], false);

    let after = explain_json(&lab, &id, "after")?;
    assert_eq!(
        (after["status"].as_str(), after["skipped"]["cause"].as_str()),
        (Some("skipped"), Some("dependency"))
    );
    let optional = explain_json(&lab, &id, "optional")?;
    assert_eq!(optional["skipped"]["cause"], "when_false");

    let mark = explain_json(&lab, &id, "nodes[me].mark")?;
    assert_eq!(mark["path"], "nodes.mark");
    assert_eq!(mark["rollback"]["result"], "undone");
    Ok(())
}

#[test]
fn an_unknown_step_lists_the_items_or_the_near_ids() -> TestResult {
    let (lab, id) = failed_run()?;
    let items = lab.run(&["explain", &id, "nodes.mark"])?;
    assert_eq!(items.code, Some(3), "{}", items.all());
    assert!(
        items.stderr.contains("nodes[me].mark") && items.stderr.contains("nodes[me2].mark"),
        "{}",
        items.all()
    );
    let near = lab.run(&["explain", &id, "flakey"])?;
    assert_eq!(near.code, Some(3), "{}", near.all());
    assert!(
        near.stderr.contains("did you mean") && near.stderr.contains("flaky"),
        "{}",
        near.all()
    );
    let unknown_run = lab.run(&["explain", "nope", "flaky"])?;
    assert_eq!(unknown_run.code, Some(3), "{}", unknown_run.all());
    assert!(
        unknown_run.stderr.contains("no run `nope`"),
        "{}",
        unknown_run.all()
    );
    Ok(())
}

/// Steps that take a little time, over the lab's two nodes; `fail` makes the run fail.
const TIMED: &str = r#"
runsheet: 1
name: timed
inputs:
  fail: {type: boolean, default: false}
steps:
  - {id: warm, action: sleep, with: {duration: 20ms}}
  - id: each
    for_each: "{{ hosts('nodes') }}"
    as: host
    steps:
      - {id: nap, action: sleep, with: {duration: 10ms}}
  - {id: stop, action: fail, when: "{{ inputs.fail }}", with: {message: "asked to fail"}}
"#;

/// Nearest-rank percentile, computed here independently of the engine.
fn nearest_rank(samples: &[u64], pct: usize) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Step durations by path, and the whole-run durations of the runs that succeeded.
type Durations = (BTreeMap<String, Vec<u64>>, Vec<u64>);

/// Step durations by path and whole-run durations of the succeeded runs, read from the journals.
fn journal_durations(
    lab: &Lab,
    runs: &[String],
) -> Result<Durations, Box<dyn std::error::Error>> {
    let mut steps: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut whole = Vec::new();
    for id in runs {
        let text = std::fs::read_to_string(
            lab.path()
                .join(".runsheet/runs")
                .join(id)
                .join("journal.jsonl"),
        )?;
        for line in text.lines() {
            let record: Value = serde_json::from_str(line)?;
            match record["kind"].as_str() {
                Some("step_succeeded") => {
                    let path = record["path"].as_str().ok_or("no path")?.to_owned();
                    steps
                        .entry(path)
                        .or_default()
                        .push(record["elapsed_ms"].as_u64().ok_or("no elapsed_ms")?);
                }
                Some("run_finished") if record["outcome"] == "succeeded" => {
                    whole.push(record["elapsed_ms"].as_u64().ok_or("no run elapsed_ms")?);
                }
                _ => {}
            }
        }
    }
    Ok((steps, whole))
}

#[test]
fn runs_stats_gives_p50_and_p95_from_the_journals() -> TestResult {
    let lab = Lab::new()?;
    lab.write("p.yaml", TIMED)?;
    lab.write(
        "uat.yaml",
        &crate::lab::ENVIRONMENT.replace("name: lab", "name: uat"),
    )?;
    let mut lab_runs = Vec::new();
    for fail in [false, false, false, true] {
        let run = lab.run(&[
            "run",
            "p.yaml",
            "--env",
            "env.yaml",
            "--set",
            &format!("fail={fail}"),
        ])?;
        assert_eq!(run.code, Some(if fail { 1 } else { 0 }), "{}", run.all());
        lab_runs.push(run.run_id().ok_or("no run id")?);
    }
    let uat = lab.run(&["run", "p.yaml", "--env", "uat.yaml"])?;
    assert_eq!(uat.code, Some(0), "{}", uat.all());
    let uat_run = uat.run_id().ok_or("no run id")?;
    let dry = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--dry-run"])?;
    assert_eq!(dry.code, Some(0), "{}", dry.all());

    let stats = lab.run(&[
        "runs", "--stats", "timed", "--env", "lab", "--output", "json",
    ])?;
    assert_eq!(stats.code, Some(0), "{}", stats.all());
    let figures: Value = serde_json::from_str(&stats.stdout)?;
    let (steps, whole) = journal_durations(&lab, &lab_runs)?;
    assert_eq!(figures["runs"], 4, "{figures:#}");
    assert_eq!(whole.len(), 3, "the failed run has no whole-run figure");
    assert_eq!(figures["run"]["samples"], 3);
    assert_eq!(figures["run"]["p50_ms"], nearest_rank(&whole, 50));
    assert_eq!(figures["run"]["p95_ms"], nearest_rank(&whole, 95));
    let listed = figures["steps"].as_array().ok_or("no steps")?;
    assert_eq!(listed.len(), steps.len(), "{figures:#}");
    for step in listed {
        let path = step["path"].as_str().ok_or("no path")?;
        let samples = steps.get(path).ok_or("a path the journals do not have")?;
        assert_eq!(step["samples"], samples.len(), "{path}");
        assert_eq!(step["p50_ms"], nearest_rank(samples, 50), "{path}");
        assert_eq!(step["p95_ms"], nearest_rank(samples, 95), "{path}");
    }
    assert_eq!(steps["each.nap"].len(), 8, "two items in each of four runs");
    assert!(
        steps["warm"].iter().all(|ms| *ms >= 20),
        "a 20ms sleep takes 20ms at least"
    );

    // By file and without the filter: every real run (the dry run records none).
    let everything = lab.run(&["runs", "--stats", "p.yaml", "--output", "json"])?;
    let everything: Value = serde_json::from_str(&everything.stdout)?;
    assert_eq!(everything["runs"], 5, "{everything:#}");
    let only_uat = lab.run(&[
        "runs", "--stats", "timed", "--env", "uat.yaml", "--output", "json",
    ])?;
    let only_uat: Value = serde_json::from_str(&only_uat.stdout)?;
    let (uat_steps, uat_whole) = journal_durations(&lab, &[uat_run])?;
    assert_eq!(
        (only_uat["runs"].as_u64(), only_uat["environment"].as_str()),
        (Some(1), Some("uat"))
    );
    assert_eq!(only_uat["run"]["p95_ms"], uat_whole[0]);
    assert_eq!(only_uat["steps"][0]["p50_ms"], uat_steps["warm"][0]);

    let human = lab.run(&["runs", "--stats", "timed", "--env", "lab"])?;
    assert_eq!(human.code, Some(0), "{}", human.all());
    assert!(
        human.stdout.contains("from 4 run(s)") && human.stdout.contains("each.nap"),
        "{}",
        human.all()
    );
    let none = lab.run(&["runs", "--stats", "timed", "--env", "nowhere"])?;
    assert_eq!(none.code, Some(0), "{}", none.all());
    assert!(
        none.stdout.contains("no durations recorded for playbook `timed` on `nowhere`"),
        "{}",
        none.all()
    );
    let empty = lab.run(&["runs", "--stats", "timed", "--state-dir", "empty-state"])?;
    assert_eq!(empty.code, Some(0), "an empty state has no names to check: {}", empty.all());
    assert!(empty.stdout.contains("no durations recorded"), "{}", empty.all());
    // A playbook never run there is a mistake to point at, not "no durations yet".
    let typo = lab.run(&["runs", "--stats", "timmed"])?;
    assert_eq!(typo.code, Some(3), "{}", typo.all());
    assert!(
        typo.stderr.contains("no run of playbook `timmed` is recorded in")
            && typo.stderr.contains("playbooks with runs there: timed")
            && typo.stderr.contains("did you mean `timed`?"),
        "{}",
        typo.all()
    );
    Ok(())
}
