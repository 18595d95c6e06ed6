//! Undoing a step restored from the journal (`runsheet rollback RUN`, or a resumed
//! run that fails) renders the gateway's settings like a live step: a token written
//! as `{{ secret('...') }}` works there too.

use serde_json::Value;

use crate::lab::{Lab, TestResult};

const ENVIRONMENT: &str = r#"
runsheet: 1
name: tokened
gateways:
  kong: {type: kong, twin: {seed: kong.yaml}, token: "{{ secret('RESTORED_UNDO_TOKEN') }}"}
"#;

const SEED: &str = r#"
_format_version: '3.0'
upstreams:
  - name: core
    targets:
      - {target: '10.0.0.1:8000', weight: 100}
"#;

const DRAIN: &str = r#"
runsheet: 1
name: drain
steps:
  - {id: drain, action: kong.target, with: {upstream: core, target: "10.0.0.1:8000", weight: 0}}
"#;

fn weight_in_saved_twin(lab: &Lab, run: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let path = lab
        .path()
        .join(".runsheet/runs")
        .join(run)
        .join("twins/kong.json");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let targets = state["targets"]
        .as_array()
        .ok_or("no targets in the saved twin")?;
    let target = targets
        .iter()
        .find(|t| t["target"] == "10.0.0.1:8000")
        .ok_or("target 10.0.0.1:8000 missing")?;
    Ok(target["weight"].clone())
}

#[test]
fn rollback_of_a_finished_run_renders_a_secret_gateway_token() -> TestResult {
    let lab = Lab::new()?;
    lab.write("tokened.yaml", ENVIRONMENT)?;
    lab.write("kong.yaml", SEED)?;
    lab.write("drain.yaml", DRAIN)?;
    let mut command = lab.command(&["run", "drain.yaml", "--env", "tokened.yaml"]);
    command.env("RESTORED_UNDO_TOKEN", "t0ken-value");
    let run = lab.run_with(command)?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let id = run.run_id().ok_or("no run id")?;
    assert_eq!(weight_in_saved_twin(&lab, &id)?, 0);

    let mut command = lab.command(&["rollback", &id]);
    command.env("RESTORED_UNDO_TOKEN", "t0ken-value");
    let rolled = lab.run_with(command)?;
    assert_eq!(rolled.code, Some(0), "{}", rolled.all());
    assert!(rolled.stdout.contains("undone  drain"), "{}", rolled.all());
    assert!(!rolled.all().contains("t0ken-value"), "{}", rolled.all());
    assert_eq!(weight_in_saved_twin(&lab, &id)?, 100);
    Ok(())
}
