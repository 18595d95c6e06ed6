//! The project configuration `.runsheet.yaml`: its values are the defaults of
//! `--env`, `--state-dir` and `--report-dir`, from any directory below it.

use crate::lab::{Lab, TestResult};

const PLAYBOOK: &str = "runsheet: 1
name: simple
steps:
  - {id: hello, action: log, with: {message: \"hello from {{ env.name }}\"}}
";

#[test]
fn a_run_from_a_subdirectory_takes_env_state_and_reports_from_the_project() -> TestResult {
    let lab = Lab::new()?;
    std::fs::create_dir_all(lab.path().join("environments"))?;
    std::fs::rename(
        lab.path().join("env.yaml"),
        lab.path().join("environments/uat.yaml"),
    )?;
    lab.write(
        ".runsheet.yaml",
        "env: uat\nstate_dir: state\nreport_dir: out\n",
    )?;
    std::fs::create_dir_all(lab.path().join("playbooks"))?;
    lab.write("playbooks/p.yaml", PLAYBOOK)?;

    let mut command = lab.command(&["run", "p.yaml"]);
    command.current_dir(lab.path().join("playbooks"));
    let run = lab.run_with(command)?;
    run.assert_ended(0, &["hello from lab"]);
    let id = run.run_id().ok_or("no run id")?;
    assert!(
        lab.path().join("state/runs").join(&id).is_dir(),
        "the run is not in the project's state dir"
    );
    assert!(
        lab.path().join("out/junit.xml").is_file(),
        "no reports in the project's report dir"
    );
    assert!(
        !lab.path().join("playbooks/.runsheet").exists()
            && !lab.path().join("playbooks/runsheet-out").exists()
    );

    // `runs` finds it from the project root without a flag; a flag still wins.
    let listed = lab.run(&["runs"])?;
    listed.assert_ended(0, &[id.as_str()]);
    let elsewhere = lab.run(&["runs", "--state-dir", "other"])?;
    assert!(!elsewhere.stdout.contains(&id), "{}", elsewhere.all());
    Ok(())
}

#[test]
fn a_broken_project_configuration_is_invalid_input_naming_the_file() -> TestResult {
    let lab = Lab::new()?;
    lab.write(".runsheet.yaml", "env: uat\nstate-dir: x\n")?;
    lab.write("p.yaml", PLAYBOOK)?;
    let run = lab.run(&["validate", "p.yaml"])?;
    assert_eq!(run.code, Some(3), "{}", run.all());
    for text in [".runsheet.yaml", "state-dir", "state_dir"] {
        assert!(run.stderr.contains(text), "{text:?} missing: {}", run.all());
    }

    let run = lab.run(&["validate", "p.yaml", "--config", "missing.yaml"])?;
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr
            .contains("missing.yaml: cannot read the project configuration"),
        "{}",
        run.all()
    );
    Ok(())
}

#[test]
fn a_broken_project_configuration_leaves_help_and_init_working() -> TestResult {
    let lab = Lab::new()?;
    lab.write(".runsheet.yaml", "env: uat\nstate-dir: x\n")?;
    for args in [&["--version"][..], &["run", "--help"], &["init", "fresh"]] {
        let run = lab.run(args)?;
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.all());
        assert!(run.stderr.contains("ignored: this command uses no project setting"), "{args:?}: {}", run.all());
    }
    assert!(lab.path().join("fresh/.runsheet.yaml").is_file());
    Ok(())
}

#[test]
fn a_state_that_looks_like_a_url_but_is_not_postgres_is_refused() -> TestResult {
    let lab = Lab::new()?;
    lab.write("p.yaml", PLAYBOOK)?;
    for state in ["pg://ops@db/runsheet", "postgres:/db", "https://db.example/runsheet"] {
        let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--state", state])?;
        assert_eq!(run.code, Some(5), "{state}: {}", run.all());
        assert!(run.stderr.contains("looks like a URL but is not postgres://"), "{state}: {}", run.all());
        assert!(!lab.path().join("pg:").exists() && !lab.path().join("postgres:").exists() && !lab.path().join("https:").exists());
    }
    Ok(())
}

#[test]
fn an_explicit_state_dir_wins_over_the_project_state() -> TestResult {
    let lab = Lab::new()?;
    lab.write(".runsheet.yaml", "state: project-state\n")?;
    lab.write("p.yaml", PLAYBOOK)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--state-dir", "mine"])?;
    run.assert_ended(0, &[]);
    assert!(lab.path().join("mine/runs").is_dir() && !lab.path().join("project-state").exists());
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    run.assert_ended(0, &[]);
    assert!(lab.path().join("project-state/runs").is_dir(), "the project's state: is the default");
    Ok(())
}
