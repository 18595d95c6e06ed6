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

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use runsheet_actions::layer7::Layer7Gateway;
use runsheet_actions::layer7::connection::{Connection, Credentials};
use runsheet_actions::layer7::graphman::GraphmanOptions;
use runsheet_actions::layer7::restman::compare::diff;
use runsheet_actions::layer7::restman::{Bundle, ExportQuery, ImportOptions};
use runsheet_actions::web::WebClient;
use runsheet_engine::StepContext;
use runsheet_twin::layer7::{Layer7Config, Layer7Twin};

/// Services in the bundle (each with its own hard-coded-response policy).
const SERVICES: usize = 1_000;

/// Cluster properties in the bundle.
const PROPERTIES: usize = 1_000;

/// The root folder's id.
const ROOT: &str = "0000000000000000ffffffffffffec76";

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

/// The bundle that seeds the source: services at `/api/N` answering a fixed body, and
/// cluster properties `bench.property.N`, all mapped NewOrUpdate.
fn big_bundle() -> String {
    let mut items = String::new();
    let mut mappings = String::new();
    for n in 0..PROPERTIES {
        let id = format!("{n:032x}");
        let id = format!("a{}", &id[1..]);
        items.push_str(&format!(
            r#"<l7:Item><l7:Name>bench.property.{n}</l7:Name><l7:Id>{id}</l7:Id><l7:Type>CLUSTER_PROPERTY</l7:Type><l7:Resource><l7:ClusterProperty id="{id}"><l7:Name>bench.property.{n}</l7:Name><l7:Value>value {n}</l7:Value></l7:ClusterProperty></l7:Resource></l7:Item>"#
        ));
        mappings.push_str(&format!(
            r#"<l7:Mapping action="NewOrUpdate" srcId="{id}" type="CLUSTER_PROPERTY"/>"#
        ));
    }
    for n in 0..SERVICES {
        let id = format!("{n:032x}");
        let id = format!("b{}", &id[1..]);
        let body = STANDARD.encode(format!("service {n}"));
        let policy = escape(&format!(
            r#"<wsp:Policy xmlns:L7p="http://www.layer7tech.com/ws/policy" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"><wsp:All wsp:Usage="Required"><L7p:HardcodedResponse><L7p:Base64ResponseBody stringValue="{body}"/><L7p:ResponseContentType stringValue="text/plain; charset=UTF-8"/><L7p:ResponseStatus intValue="200"/></L7p:HardcodedResponse></wsp:All></wsp:Policy>"#
        ));
        items.push_str(&format!(
            r#"<l7:Item><l7:Name>api-{n}</l7:Name><l7:Id>{id}</l7:Id><l7:Type>SERVICE</l7:Type><l7:Resource><l7:Service id="{id}"><l7:ServiceDetail folderId="{ROOT}" id="{id}"><l7:Name>api-{n}</l7:Name><l7:Enabled>true</l7:Enabled><l7:ServiceMappings><l7:HttpMapping><l7:UrlPattern>/api/{n}</l7:UrlPattern><l7:Verbs><l7:Verb>GET</l7:Verb><l7:Verb>POST</l7:Verb></l7:Verbs></l7:HttpMapping></l7:ServiceMappings></l7:ServiceDetail><l7:Resources><l7:ResourceSet tag="policy"><l7:Resource type="policy">{policy}</l7:Resource></l7:ResourceSet></l7:Resources></l7:Service></l7:Resource></l7:Item>"#
        ));
        mappings.push_str(&format!(
            r#"<l7:Mapping action="NewOrUpdate" srcId="{id}" type="SERVICE"/>"#
        ));
    }
    format!(
        r#"<l7:Bundle xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:References>{items}</l7:References><l7:Mappings>{mappings}</l7:Mappings></l7:Bundle>"#
    )
}

/// XML-escapes text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
