//! Layer7 bundle benchmark: restman export and import of a big bundle (1,000 services
//! with a policy each and 1,000 cluster properties) between two Layer7 twins on loopback,
//! through runsheet's typed restman client, as `layer7.export` and `layer7.import` send them.
//!
//! Cases: seeding the source (an import that creates 2,000 entities); exporting the whole
//! source; a test-mode import of that export into an empty target (what a plan sends);
//! the import itself; the same import again (every entity already there: the no-change
//! re-run); normalising both exports and diffing them (what a rollback check compares).
//! Then the same through Graphman (`api: graphman`): exporting the source as a JSON
//! bundle, a test-mode install into a second empty target, the install, the same
//! install again, and exporting that target and comparing checksums.
//!
//! Run: `cargo bench --bench layer7`.

use std::time::Instant;

use runsheet_actions::layer7::Layer7Gateway;
use runsheet_actions::layer7::connection::{Connection, Credentials};
use runsheet_actions::layer7::graphman::GraphmanOptions;
use runsheet_actions::layer7::restman::compare::diff;
use runsheet_actions::layer7::restman::{Bundle, ExportQuery, ImportOptions};
use runsheet_actions::web::WebClient;
use runsheet_engine::StepContext;
use runsheet_twin::layer7::{Layer7Config, Layer7Twin};

#[path = "support/layer7_bundle.rs"]
mod layer7_bundle;

use layer7_bundle::{PROPERTIES, SERVICES, big_bundle};

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return eprintln!("runtime: {e}"),
    };
    if let Err(e) = runtime.block_on(bench()) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

/// Runs every case and prints the figures.
async fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let source = Layer7Twin::start(Layer7Config::default()).await?;
    let target = Layer7Twin::start(Layer7Config::default()).await?;
    let from = gateway(&source).await?;
    let to = gateway(&target).await?;
    let seed = Bundle::parse(&big_bundle())?;
    println!(
        "layer7 bundles: {SERVICES} services + {PROPERTIES} cluster properties, restman over loopback"
    );

    let started = Instant::now();
    let seeded = from
        .restman
        .import(&seed, &ImportOptions::default())
        .await?;
    report(
        "seed the source (import, 2,000 created)",
        started,
        seeded.len(),
    );

    let started = Instant::now();
    let export = from.restman.export(&ExportQuery::everything()).await?;
    let text = export.to_xml()?;
    report(
        "export everything from the source",
        started,
        export.items.len(),
    );
    println!("    bundle: {:.1} MB", text.len() as f64 / 1e6);

    let test = ImportOptions {
        test: true,
        ..ImportOptions::default()
    };
    let started = Instant::now();
    let tested = to.restman.import(&export, &test).await?;
    report(
        "test-mode import into an empty target",
        started,
        tested.len(),
    );

    let started = Instant::now();
    let imported = to
        .restman
        .import(&export, &ImportOptions::default())
        .await?;
    report("import into the target", started, imported.len());

    let started = Instant::now();
    let again = to
        .restman
        .import(&export, &ImportOptions::default())
        .await?;
    let changed = again
        .iter()
        .filter(|result| {
            result
                .action_taken
                .as_ref()
                .is_some_and(|taken| taken.is_change())
        })
        .count();
    report("the same import again", started, again.len());
    println!("    entities changed by the re-import: {changed}");

    let started = Instant::now();
    let after = to.restman.export(&ExportQuery::everything()).await?;
    let difference = diff(&export.normalised()?, &after.normalised()?)?;
    report(
        "export the target, normalise both, diff",
        started,
        after.items.len(),
    );
    println!(
        "    differences: {} added, {} removed, {} changed",
        difference.added.len(),
        difference.removed.len(),
        difference.changed.len()
    );
    for changed in &difference.changed {
        println!(
            "      changed: {} (each twin generates its own)",
            changed.header
        );
    }
    graphman(&from).await
}

/// The Graphman cases: the seeded source exported as a JSON bundle and installed into a
/// second, empty target.
async fn graphman(from: &Layer7Gateway) -> Result<(), Box<dyn std::error::Error>> {
    let target = Layer7Twin::start(Layer7Config::default()).await?;
    let to = gateway(&target).await?;
    println!("graphman: the same source, installed into an empty target");

    let started = Instant::now();
    let export = from.graphman.export(None).await?;
    let text = export.to_json();
    report("export everything from the source", started, export.len());
    println!("    bundle: {:.1} MB", text.len() as f64 / 1e6);

    let started = Instant::now();
    let tested = to
        .graphman
        .install_bundle(&export, &GraphmanOptions::test())
        .await?;
    report(
        "test-mode install into an empty target",
        started,
        tested.statuses.len(),
    );

    let started = Instant::now();
    let installed = to
        .graphman
        .install_bundle(&export, &GraphmanOptions::default())
        .await?;
    report("install into the target", started, installed.statuses.len());

    let started = Instant::now();
    let again = to
        .graphman
        .install_bundle(&export, &GraphmanOptions::default())
        .await?;
    let changed = again.statuses.iter().filter(|s| s.is_change()).count();
    report("the same install again", started, again.statuses.len());
    println!("    entities changed by the re-install: {changed}");

    let started = Instant::now();
    let after = to.graphman.export(None).await?;
    let difference = runsheet_actions::layer7::graphman::bundle::diff(&export, &after);
    report(
        "export the target, compare checksums",
        started,
        after.len(),
    );
    println!(
        "    differences: {} added, {} removed, {} changed",
        difference.added.len(),
        difference.removed.len(),
        difference.changed.len()
    );
    Ok(())
}

/// Prints one case's figure.
fn report(case: &str, started: Instant, entities: usize) {
    println!(
        "  {case:<45} {:>8.3} s  ({entities} entities)",
        started.elapsed().as_secs_f64()
    );
}

/// The clients of `twin`, with its default credentials.
async fn gateway(twin: &Layer7Twin) -> Result<Layer7Gateway, Box<dyn std::error::Error>> {
    let context = StepContext::detached("bench", false);
    let web = WebClient::for_step(&context, None).await?;
    let credentials = Credentials {
        username: "admin".to_owned(),
        password: "password".to_owned(),
    };
    let url = twin.url();
    Ok(Layer7Gateway::connect(
        "l7",
        &url,
        &url,
        Connection::new(web, Some(credentials)),
    ))
}
