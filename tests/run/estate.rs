//! A bounded large estate (issue #10, "Load"; the timed figures come from
//! `cargo bench --bench estate`): 40 local hosts × 10 steps at concurrency 16
//! against a `runsheet twin kong` process. Every step ran exactly once: one
//! `step_succeeded` each in the journal, every file written with its content,
//! each host's log appended to once per appending step, one consumer and one
//! write per host on the twin.

#[path = "../support/estate.rs"]
mod generated;

use generated::{FILES_PER_HOST, LOG_LINES, STEPS_PER_HOST, Transport};

use crate::lab::{Lab, TestResult};
use crate::traffic::TwinProcess;

/// Hosts of the bounded estate.
const HOSTS: usize = 40;

#[test]
fn every_step_of_a_40_host_estate_runs_exactly_once_at_concurrency_16() -> TestResult {
    let lab = Lab::new()?;
    lab.write("seed.yaml", "_format_version: \"3.0\"\n")?;
    let twin = TwinProcess::start(&lab, "seed.yaml")?;
    let files = lab.path().join("files");
    generated::prepare_files(&files, HOSTS)?;
    lab.write(
        "estate-env.yaml",
        &generated::environment(HOSTS, &twin.admin_url, &Transport::Local),
    )?;
    lab.write("estate.yaml", &generated::playbook(&files, 16))?;

    let run = lab.run(&["run", "estate.yaml", "--env", "estate-env.yaml"])?;
    run.assert_ended(0, &["finished: successful"]);

    let id = run.run_id().ok_or("no run id on the first line")?;
    let show = lab.run(&["show", &id, "--output", "json"])?;
    show.assert_ended(0, &[]);
    let count = generated::count_journal(&serde_json::from_str(&show.stdout)?);
    let steps = HOSTS * STEPS_PER_HOST;
    assert_eq!(count.state, "succeeded", "{count:?}");
    assert_eq!(
        (count.succeeded, count.distinct, count.failed),
        (steps, steps, 0),
        "{count:?}"
    );
    assert!(count.duplicated.is_empty(), "{count:?}");

    assert_eq!(
        generated::check_files(&files, HOSTS)?,
        HOSTS * (FILES_PER_HOST + LOG_LINES.len())
    );
    let (status, page) = twin.admin("/consumers?size=1000")?;
    assert_eq!(status, 200, "{page}");
    assert_eq!(generated::estate_consumers(&[page]), HOSTS);
    assert_eq!(twin.writes()?, HOSTS as u64);
    Ok(())
}
