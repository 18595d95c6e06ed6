//! `playbooks/layer7-policy-migration.yaml` end to end: the real binary moves the lab's
//! UAT services and property into a production-like Layer7 twin, pauses at its gate and
//! resumes, and restores the target's pre-run state whenever something fails after a
//! fault at each of its writes (normalised restman bundles compared).
//!
//! The twins run in this test process (real HTTP on loopback), so the test can read
//! their state and inject faults while the binary runs against them.

use std::path::{Path, PathBuf};

use runsheet_actions::layer7::restman::Bundle;
use runsheet_twin::layer7::{Layer7Config, Layer7Twin};
use serde_json::{Value, json};

use crate::lab::{Lab, Run, TestResult};

/// The shipped playbook.
fn playbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/layer7-policy-migration.yaml")
}

/// A lab seed from environments/.
fn seed(name: &str) -> std::io::Result<String> {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("environments")
            .join(name),
    )
}

/// The administrator's credentials of the twins.
const USER: (&str, &str) = ("admin", "password");

/// Two Layer7 twins seeded like the lab's `l7-uat` (source) and `l7` (target), and a lab
/// directory whose environment points at them.
struct Migration {
    runtime: tokio::runtime::Runtime,
    source: Layer7Twin,
    target: Layer7Twin,
    lab: Lab,
}

impl Migration {
    fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let config = Layer7Config {
            control: true,
            ..Layer7Config::default()
        };
        let source = runtime.block_on(Layer7Twin::start(config.clone()))?;
        source.seed_bundle(&seed("lab-layer7-uat.xml")?)?;
        let target = runtime.block_on(Layer7Twin::start(config))?;
        target.seed_bundle(&seed("lab-layer7.xml")?)?;
        let lab = Lab::new()?;
        lab.write(
            "env.yaml",
            &format!(
                "runsheet: 1\nname: l7-migration\ngateways:\n  \
                 l7-uat: {{type: layer7, url: \"{}\", username: admin, password: password}}\n  \
                 l7: {{type: layer7, url: \"{}\", username: admin, password: password}}\n",
                source.url(),
                target.url()
            ),
        )?;
        Ok(Self {
            runtime,
            source,
            target,
            lab,
        })
    }

    /// `runsheet run` of the shipped playbook with the lab's selection, artefacts in the lab.
    fn run(&self, extra: &[&str]) -> std::io::Result<Run> {
        let artefacts = format!("artefacts={}", self.lab.path().join("artefacts").display());
        let playbook = playbook();
        let mut args = vec![
            "run",
            playbook.to_str().unwrap_or_default(),
            "--env",
            "env.yaml",
            "--set",
            r#"services=["/orders","/inventory"]"#,
            "--set",
            r#"cluster_properties=["inventory.cache.ttl"]"#,
            "--set",
            &artefacts,
        ];
        args.extend_from_slice(extra);
        self.lab.run(&args)
    }

    /// The twin's whole state as a normalised restman bundle.
    fn state(&self, twin: &Layer7Twin) -> Result<String, Box<dyn std::error::Error>> {
        self.export(twin, "all=true")
    }

    /// The restman export `GET /bundle?{query}` of the twin, normalised.
    fn export(&self, twin: &Layer7Twin, query: &str) -> Result<String, Box<dyn std::error::Error>> {
        let url = format!("{}/restman/1.0/bundle?{query}", twin.url());
        let text = self.runtime.block_on(async {
            reqwest::Client::new()
                .get(&url)
                .basic_auth(USER.0, Some(USER.1))
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        })?;
        Ok(Bundle::parse(&text)?.normalised()?.to_xml()?)
    }

    /// `POST` (or `DELETE`) on the target's `/_twin/...`; the answer's JSON.
    fn control(
        &self,
        method: &str,
        path: &str,
        body: Value,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        let url = format!("{}/_twin/{path}", self.target.url());
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let answer = self.runtime.block_on(async {
            let response = reqwest::Client::new()
                .request(method, &url)
                .basic_auth(USER.0, Some(USER.1))
                .json(&body)
                .send()
                .await?
                .error_for_status()?;
            response.json::<Value>().await
        });
        Ok(answer.unwrap_or(Value::Null))
    }

    /// Committed writes on the target so far.
    fn target_writes(&self) -> Result<u64, Box<dyn std::error::Error>> {
        let counters = self.control("GET", "counters", Value::Null)?;
        counters["writes"]
            .as_u64()
            .ok_or_else(|| format!("no writes in {counters}").into())
    }

    /// A published service's answer on the target: status and body.
    fn traffic(&self, path: &str) -> std::io::Result<(u16, String)> {
        crate::traffic::get(&format!("{}{path}", self.target.url()))
    }
}

#[test]
fn the_migration_moves_the_selection_and_the_target_then_matches_the_source() -> TestResult {
    let migration = Migration::start()?;
    let pre = migration.state(&migration.target)?;
    assert_eq!(
        migration.traffic("/inventory")?.0,
        404,
        "inventory is new to the target"
    );
    let run = migration.run(&[
        "--set",
        r#"smoke_paths=["/orders","/inventory"]"#,
        "--set",
        "approval=false",
    ])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("ok      verified"), "{}", run.all());
    assert_eq!(migration.traffic("/inventory")?.0, 200);
    assert_ne!(
        migration.state(&migration.target)?,
        pre,
        "the target changed"
    );
    // The selection on the target now normalises to the source's.
    let selection = "service=5a1e0000000000000000000000000101&service=5a1e0000000000000000000000000103&clusterProperty=5a1e0000000000000000000000000203";
    assert_eq!(
        migration.export(&migration.target, selection)?,
        migration.export(&migration.source, selection)?
    );
    // The artefacts: the source selection and the target's pre-state, in a per-run directory.
    let runs: Vec<PathBuf> = std::fs::read_dir(migration.lab.path().join("artefacts"))?
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let before = std::fs::read_to_string(runs[0].join("target-before.xml"))?;
    assert_eq!(Bundle::parse(&before)?.normalised()?.to_xml()?, pre);
    assert!(runs[0].join("source.xml").exists());
    Ok(())
}

#[test]
fn the_plan_previews_the_import_and_writes_nothing() -> TestResult {
    let migration = Migration::start()?;
    let plan = migration.lab.run(&[
        "plan",
        playbook().to_str().unwrap_or_default(),
        "--env",
        "env.yaml",
        "--set",
        r#"services=["/orders","/inventory"]"#,
        "--set",
        r#"smoke_paths=["/inventory"]"#,
        "--set",
        &format!(
            "artefacts={}",
            migration.lab.path().join("artefacts").display()
        ),
    ])?;
    assert_eq!(plan.code, Some(0), "{}", plan.all());
    for expected in [
        "+ SERVICE `inventory`",
        "~ SERVICE `orders`",
        "approval gate `import`",
        "not conclusive in a dry run",
    ] {
        assert!(plan.stdout.contains(expected), "{expected}: {}", plan.all());
    }
    assert_eq!(migration.target_writes()?, 0);
    assert!(
        !migration.lab.path().join("artefacts").exists(),
        "a dry run keeps no artefact"
    );
    Ok(())
}

#[test]
fn the_run_pauses_at_the_gate_and_resume_with_approval_imports() -> TestResult {
    let migration = Migration::start()?;
    let pre = migration.state(&migration.target)?;
    let paused = migration.run(&["--set", r#"smoke_paths=["/inventory"]"#])?;
    assert_eq!(paused.code, Some(4), "{}", paused.all());
    assert!(
        paused.all().contains("--approve import"),
        "{}",
        paused.all()
    );
    assert_eq!(
        migration.target_writes()?,
        0,
        "nothing written before the gate"
    );
    assert_eq!(migration.state(&migration.target)?, pre);
    let id = paused.run_id().ok_or("no run id")?;
    let resumed = migration
        .lab
        .run(&["resume", id.as_str(), "--approve", "import"])?;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert_eq!(migration.traffic("/inventory")?.0, 200);
    assert_eq!(migration.target_writes()?, 1, "one import");
    Ok(())
}

/// Runs the migration with `fault` set on the target's writes and a smoke path that
/// answers or not; the run's result.
fn with_fault(migration: &Migration, fault: Value, smoke: &str) -> std::io::Result<Run> {
    if !fault.is_null() {
        migration
            .control("POST", "faults", fault)
            .map_err(|error| std::io::Error::other(error.to_string()))?;
    }
    migration.run(&[
        "--set",
        &format!(r#"smoke_paths=["{smoke}"]"#),
        "--set",
        "approval=false",
    ])
}

#[test]
fn a_fault_at_each_write_leaves_the_target_as_its_pre_run_export() -> TestResult {
    // Each case: the fault, a smoke path, what the run must end with.
    let cases = [
        (
            "import answered 500",
            json!({"fail_nth_write": 1, "status": 500}),
            "/inventory",
            1,
        ),
        (
            "import answered 503",
            json!({"fail_nth_write": 1, "status": 503}),
            "/inventory",
            1,
        ),
        (
            // Sent, then the connection closed: whether the gateway committed it is not
            // known, so the run names the import for a person (exit 2).
            "import connection dropped",
            json!({"drop_nth_write": 1}),
            "/inventory",
            2,
        ),
        (
            "smoke test fails after the import",
            Value::Null,
            "/missing",
            1,
        ),
    ];
    for (case, fault, smoke, code) in cases {
        let migration = Migration::start()?;
        let pre = migration.state(&migration.target)?;
        let run = with_fault(&migration, fault, smoke)?;
        assert_eq!(run.code, Some(code), "{case}: {}", run.all());
        let ended = if code == 2 { "may still take effect" } else { "rolled back" };
        assert!(run.stdout.contains(ended), "{case}: {}", run.all());
        assert_eq!(
            migration.state(&migration.target)?,
            pre,
            "{case}: the target is not as before"
        );
        assert_eq!(migration.traffic("/inventory")?.0, 404, "{case}");
    }
    Ok(())
}

#[test]
fn an_undo_that_fails_needs_a_person_and_names_the_import() -> TestResult {
    let migration = Migration::start()?;
    // The import is write 1; the undo's re-import of the pre-state is write 2.
    let run = with_fault(
        &migration,
        json!({"fail_nth_write": 2, "status": 500}),
        "/missing",
    )?;
    assert_eq!(run.code, Some(2), "{}", run.all());
    // The step to look at is named under "needs attention" (the word "import" alone is
    // everywhere in this run's output).
    let attention = run.stdout.split("needs attention:").nth(1).unwrap_or_default();
    assert!(
        attention.lines().any(|line| line.contains("  - import: not undone")),
        "{}",
        run.all()
    );
    assert_ne!(
        migration.traffic("/inventory")?.0,
        404,
        "the failed undo left the import in place, and the run says so"
    );
    Ok(())
}

#[test]
fn the_migration_runs_through_graphman_too() -> TestResult {
    let migration = Migration::start()?;
    let pre = migration.state(&migration.target)?;
    let failed = migration.run(&[
        "--set",
        "api=graphman",
        "--set",
        r#"smoke_paths=["/missing"]"#,
        "--set",
        "approval=false",
    ])?;
    assert_eq!(failed.code, Some(1), "{}", failed.all());
    assert_eq!(migration.state(&migration.target)?, pre, "rolled back");
    let run = migration.run(&[
        "--set",
        "api=graphman",
        "--set",
        r#"smoke_paths=["/orders","/inventory"]"#,
        "--set",
        "approval=false",
    ])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("ok      verified"), "{}", run.all());
    assert_eq!(migration.traffic("/inventory")?.0, 200);
    let (_, orders) = migration.traffic("/orders")?;
    assert!(
        orders.contains("1.5.0"),
        "UAT's orders now answers: {orders}"
    );
    Ok(())
}
