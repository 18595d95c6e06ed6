//! The `layer7-policy-migration` playbook end to end: the release binary runs
//! `playbooks/layer7-policy-migration.yaml` between two Layer7 twins on loopback (this
//! process serves them), with the gate skipped, and the wall time of each run is printed.
//!
//! Cases: the lab's migration (2 services and a property from `lab-layer7-uat.xml` into
//! `lab-layer7.xml`; median of 5 runs, each into a fresh target); 1,000 services and
//! 1,000 cluster properties into an empty target; the same migration again (nothing left
//! to change). Every run pings both gateways, exports the selection and the whole target,
//! imports in test mode, imports, smoke-tests one path and imports in test mode again.
//!
//! Run: `cargo bench --bench layer7_playbook`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use runsheet_twin::layer7::{Layer7Config, Layer7Twin};

#[path = "support/layer7_bundle.rs"]
mod layer7_bundle;

use layer7_bundle::{PROPERTIES, SERVICES, big_bundle};

/// Runs of the small case (the median is reported).
const SMALL_RUNS: usize = 5;

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return eprintln!("runtime: {e}"),
    };
    if let Err(e) = bench(&runtime) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

/// Runs every case and prints the figures.
fn bench(runtime: &tokio::runtime::Runtime) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lab_source = std::fs::read_to_string(root.join("environments/lab-layer7-uat.xml"))?;
    let lab_target = std::fs::read_to_string(root.join("environments/lab-layer7.xml"))?;
    println!("layer7-policy-migration playbook, release binary, twins on loopback");

    let mut times = Vec::new();
    for _ in 0..SMALL_RUNS {
        let source = twin(runtime, &lab_source)?;
        let target = twin(runtime, &lab_target)?;
        let inputs = "services: [/orders, /inventory]\ncluster_properties: [inventory.cache.ttl]\nsmoke_paths: [/inventory]\n";
        times.push(migrate(dir.path(), &source, &target, inputs)?);
    }
    times.sort();
    report(
        "lab: 2 services + 1 property (median of 5)",
        times[times.len() / 2],
    );

    let source = twin(runtime, &big_bundle())?;
    let target = twin(runtime, "")?;
    let mut inputs = String::from("smoke_paths: [/api/0]\nservices:\n");
    for n in 0..SERVICES {
        inputs.push_str(&format!("  - /api/{n}\n"));
    }
    inputs.push_str("cluster_properties:\n");
    for n in 0..PROPERTIES {
        inputs.push_str(&format!("  - bench.property.{n}\n"));
    }
    let elapsed = migrate(dir.path(), &source, &target, &inputs)?;
    report(
        "1,000 services + 1,000 properties, empty target",
        elapsed,
    );
    let elapsed = migrate(dir.path(), &source, &target, &inputs)?;
    report("the same again (nothing left to change)", elapsed);
    Ok(())
}

/// A Layer7 twin seeded with `seed` (nothing when empty).
fn twin(
    runtime: &tokio::runtime::Runtime,
    seed: &str,
) -> Result<Layer7Twin, Box<dyn std::error::Error>> {
    let twin = runtime.block_on(Layer7Twin::start(Layer7Config::default()))?;
    if !seed.is_empty() {
        twin.seed_bundle(seed)?;
    }
    Ok(twin)
}

/// Runs the playbook from `source` to `target` with `inputs` (YAML); its wall time.
fn migrate(
    dir: &Path,
    source: &Layer7Twin,
    target: &Layer7Twin,
    inputs: &str,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let environment = format!(
        "runsheet: 1\nname: bench\ngateways:\n  l7-uat: {{type: layer7, url: \"{}\", username: admin, password: password}}\n  l7: {{type: layer7, url: \"{}\", username: admin, password: password}}\n",
        source.url(),
        target.url()
    );
    std::fs::write(dir.join("env.yaml"), environment)?;
    std::fs::write(dir.join("inputs.yaml"), inputs)?;
    let playbook: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/layer7-policy-migration.yaml");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_runsheet"))
        .arg("run")
        .arg(&playbook)
        .args(["--env", "env.yaml", "--vars-file", "inputs.yaml"])
        .args(["--set", "approval=false", "--no-progress"])
        .arg("--set")
        .arg(format!("artefacts={}", dir.join("artefacts").display()))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        return Err(format!(
            "the playbook failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(elapsed)
}

/// Prints one case's figure.
fn report(case: &str, elapsed: Duration) {
    println!("  {case:<50} {:>8.3} s", elapsed.as_secs_f64());
}
