//! Fault injection: a failure after each write step in turn must leave the
//! files exactly as they were at the last checkpoint (or the start), and a
//! failed undo must be named.

use std::collections::BTreeMap;

use crate::lab::{KvServer, Lab, TestResult};

/// The write steps, in order; the third is a checkpoint.
const STEPS: &[&str] = &[
    r#"{id: w1, action: host.file, on: me, with: {path: "{{ env.data }}/p1", content: "new one\n", mode: "0644"}}"#,
    r#"{id: w2, action: host.file, on: me, with: {path: "{{ env.data }}/n2", content: "created\n"}}"#,
    r#"{id: w3, action: host.file, on: me, with: {path: "{{ env.data }}/p3", content: "three\n"}, checkpoint: true}"#,
    r#"{id: w4, action: host.file, on: me, with: {path: "{{ env.data }}/n4", content: "four\n", mode: "0600"}}"#,
    r#"{id: w5, action: host.file, on: me, with: {path: "{{ env.data }}/p1", content: "one again\n", mode: "0640"}}"#,
];
const CHECKPOINT: usize = 3;

fn lab() -> std::io::Result<Lab> {
    let lab = Lab::with_data()?;
    lab.write("data/p1", "original one\n")?;
    lab.write("data/p3", "original three\n")?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(lab.data().join("p1"), std::fs::Permissions::from_mode(0o600))?;
    Ok(lab)
}

/// The playbook of the first `writes` steps, failing after them when `fail` is set.
fn playbook(writes: usize, fail: bool) -> String {
    let mut text = String::from("runsheet: 1\nname: faults\nsteps:\n");
    for step in &STEPS[..writes] {
        text.push_str(&format!("  - {step}\n"));
    }
    if fail {
        text.push_str("  - {id: boom, action: fail, with: {message: injected}}\n");
    }
    if writes == 0 && !fail {
        text.push_str("  - {id: nothing, action: log, with: {message: no writes}}\n");
    }
    text
}

type Tree = BTreeMap<String, (Vec<u8>, u32)>;

fn state_after(writes: usize) -> Result<Tree, Box<dyn std::error::Error>> {
    let lab = lab()?;
    lab.write("p.yaml", &playbook(writes, false))?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    Ok(lab.tree()?)
}

#[test]
fn a_failure_after_each_write_restores_the_last_checkpoint_byte_for_byte() -> TestResult {
    let start = state_after(0)?;
    let at_checkpoint = state_after(CHECKPOINT)?;
    assert_ne!(start, at_checkpoint);
    for k in 1..=STEPS.len() {
        let lab = lab()?;
        lab.write("p.yaml", &playbook(k, true))?;
        let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
        assert_eq!(run.code, Some(1), "failure after w{k}: {}", run.all());
        let expected = if k >= CHECKPOINT { &at_checkpoint } else { &start };
        assert_eq!(&lab.tree()?, expected, "failure after w{k}: {}", run.all());
    }
    Ok(())
}

#[test]
fn rollback_all_restores_the_start_from_any_failure_point() -> TestResult {
    let start = state_after(0)?;
    for k in 1..=STEPS.len() {
        let lab = lab()?;
        lab.write("p.yaml", &playbook(k, true).replace("name: faults", "name: faults\nrollback: all"))?;
        let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
        assert_eq!(run.code, Some(1), "{}", run.all());
        assert_eq!(lab.tree()?, start, "failure after w{k}: {}", run.all());
    }
    Ok(())
}

#[test]
fn http_writes_are_undone_by_their_rollback_steps() -> TestResult {
    let server = KvServer::start()?;
    for k in 1..=3 {
        let lab = lab()?;
        let mut text = String::from("runsheet: 1\nname: kv\nrollback: all\nsteps:\n");
        for i in 1..=3 {
            text.push_str(&format!(
                "  - {{id: put{i}, action: http, with: {{method: PUT, url: \"{url}/kv/k{k}-{i}\", body: \"v{i}\"}}, rollback: [del{i}]}}\n  - {{id: del{i}, action: http, needs: [], with: {{method: DELETE, url: \"{url}/kv/k{k}-{i}\"}}}}\n",
                url = server.url
            ));
            if i == k {
                text.push_str(&format!("  - {{id: boom, action: fail, needs: [put{i}], with: {{message: injected}}}}\n"));
                break;
            }
        }
        lab.write("p.yaml", &text)?;
        let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
        assert_eq!(run.code, Some(1), "{}", run.all());
        let left: Vec<String> = server.state().values.into_keys().filter(|key| key.starts_with(&format!("k{k}-"))).collect();
        assert!(left.is_empty(), "failure after put{k}: {left:?} left on the server\n{}", run.all());
    }
    let methods = server.state().methods;
    assert_eq!(methods.get("PUT"), methods.get("DELETE"), "every PUT undone by one DELETE: {methods:?}");
    Ok(())
}

#[test]
fn a_failed_undo_exits_2_and_names_the_step() -> TestResult {
    let lab = lab()?;
    std::fs::create_dir_all(lab.data().join("sub"))?;
    lab.write("p.yaml", r#"
runsheet: 1
name: stuck
rollback: all
steps:
  - {id: inner, action: host.file, on: me, with: {path: "{{ env.data }}/sub/x", content: "x\n"}}
  - {id: outer, action: host.file, on: me, with: {path: "{{ env.data }}/p3", content: "changed\n"}}
  - {id: break-dir, action: host.exec, on: me, rollback: none, with: {command: "rm -rf {{ env.data }}/sub && touch {{ env.data }}/sub"}}
  - {id: boom, action: fail, with: {message: injected}}
"#)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--report", "markdown=closure.md"])?;
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stdout.contains("UNDO FAILED inner"), "{}", run.all());
    assert!(run.stdout.contains("undone  outer"), "the other undo still ran: {}", run.all());
    assert_eq!(std::fs::read_to_string(lab.data().join("p3"))?, "original three\n");
    let closure = std::fs::read_to_string(lab.path().join("closure.md"))?;
    assert!(closure.contains("inner") && closure.to_lowercase().contains("needs attention"), "{closure}");
    Ok(())
}
