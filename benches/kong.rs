//! Kong actions benchmark: `kong.snapshot` and `kong.sync` against a big gateway (a Kong
//! twin on loopback holding 2,000 services with a route and a plugin each, 5,000
//! consumers with a key and an ACL group each, and 200 upstreams with two targets each:
//! 21,600 entities), with the Admin API requests each one sends.
//!
//! Cases: a snapshot with credentials; the plan of a sync of that snapshot back (nothing
//! to change: the whole read, parse, match and diff); the plan of the same file without
//! its ids (a hand-written decK file, matched by names and keys).
//!
//! Run: `cargo bench --bench kong`.

use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use runsheet_actions::kong::declarative::snapshot::KongSnapshot;
use runsheet_actions::kong::declarative::sync::KongSync;
use runsheet_engine::de::Spanned;
use runsheet_engine::model::{ChangeSettings, Environment, Gateway, KongGatewayDoc, SshSettings};
use runsheet_engine::{Action, StepContext, StepTarget};
use runsheet_twin::kong::{KongTwin, TwinConfig};
use serde_json::{Value, json};

/// Services (each with a route and a plugin).
const SERVICES: usize = 2_000;

/// Consumers (each with a key-auth key and an ACL group).
const CONSUMERS: usize = 5_000;

/// Upstreams (each with two targets).
const UPSTREAMS: usize = 200;

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
    let twin = KongTwin::start(TwinConfig {
        control: true,
        ..TwinConfig::default()
    })
    .await?;
    twin.load(&big_gateway())
        .map_err(|error| format!("seed: {}", error.body()))?;
    let dir = tempfile::tempdir()?;
    let live = context(&twin, dir.path(), false);
    let planning = context(&twin, dir.path(), true);

    requests(&twin).await?;
    let started = Instant::now();
    let snapshot = KongSnapshot::new()
        .apply(
            &live,
            json!({"path": "big.yaml", "include_credentials": true}),
        )
        .await?;
    let took = started.elapsed();
    let bytes = std::fs::metadata(dir.path().join("big.yaml"))?.len();
    println!(
        "kong.snapshot of {} entities: {:.2} s, {} Admin API requests, {:.1} MB file",
        snapshot.outputs["entities"],
        took.as_secs_f64(),
        requests(&twin).await?,
        bytes as f64 / 1e6
    );

    let started = Instant::now();
    let change = KongSync::new()
        .plan(&planning, json!({"state": "big.yaml", "delete": true}))
        .await?;
    println!(
        "kong.sync plan of that snapshot (no change: {}): {:.2} s, {} Admin API requests",
        change.changes == Some(false),
        started.elapsed().as_secs_f64(),
        requests(&twin).await?
    );

    let text = std::fs::read_to_string(dir.path().join("big.yaml"))?;
    let file = runsheet_engine::SourceFile::new("big.yaml", &text);
    let mut document = runsheet_engine::node::parse(&file)
        .map_err(|error| error.message)?
        .to_json();
    drop_ids(&mut document);
    // JSON is YAML: the file reader takes it as it is.
    let without_ids = serde_json::to_string_pretty(&document)?;
    std::fs::write(dir.path().join("no-ids.yaml"), without_ids)?;
    let started = Instant::now();
    let change = KongSync::new()
        .plan(&planning, json!({"state": "no-ids.yaml", "delete": true}))
        .await?;
    println!(
        "kong.sync plan of the same file without ids ({}): {:.2} s, {} Admin API requests",
        change.summary,
        started.elapsed().as_secs_f64(),
        requests(&twin).await?
    );
    Ok(())
}

/// The big gateway as a decK-style document.
fn big_gateway() -> Value {
    let services: Vec<Value> = (0..SERVICES)
        .map(|i| {
            json!({"name": format!("svc-{i}"), "host": format!("svc-{i}.internal"),
                "routes": [{"name": format!("route-{i}"), "paths": [format!("/svc-{i}")]}],
                "plugins": [{"name": "rate-limiting", "config": {"minute": 100}}]})
        })
        .collect();
    let consumers: Vec<Value> = (0..CONSUMERS)
        .map(|i| {
            json!({"username": format!("user-{i}"),
                "keyauth_credentials": [{"key": format!("key-{i:08}")}],
                "acls": [{"group": "gold"}]})
        })
        .collect();
    let upstreams: Vec<Value> = (0..UPSTREAMS)
        .map(|i| {
            json!({"name": format!("up-{i}"), "targets": [
                {"target": format!("10.0.{}.{}:8000", i / 250, i % 250 + 1)},
                {"target": format!("10.1.{}.{}:8000", i / 250, i % 250 + 1)}]})
        })
        .collect();
    json!({"_format_version": "3.0", "services": services, "consumers": consumers,
        "upstreams": upstreams})
}

/// `value` without any `id` field, at any depth.
fn drop_ids(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.shift_remove("id");
            fields.values_mut().for_each(drop_ids);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_ids),
        _ => {}
    }
}

/// The requests the twin answered since the last call (its counters are reset).
async fn requests(twin: &KongTwin) -> Result<u64, Box<dyn std::error::Error>> {
    let url = format!("{}/_twin/counters", twin.url());
    let counters: Value = reqwest::get(&url).await?.json().await?;
    let total = counters["requests"]
        .as_object()
        .map(|requests| requests.values().filter_map(Value::as_u64).sum())
        .unwrap_or_default();
    reqwest::Client::new()
        .post(format!("{}/_twin/reset", twin.url()))
        .send()
        .await?;
    Ok(total)
}

/// A step context whose gateway `kong` is `twin`, with paths relative to `dir`.
fn context(twin: &KongTwin, dir: &std::path::Path, dry_run: bool) -> StepContext {
    let doc = KongGatewayDoc {
        kind: "kong".to_owned(),
        admin_url: Some(Spanned::new(twin.url(), Default::default())),
        proxy_url: None,
        proxy_tls_url: None,
        status_url: None,
        token: None,
        request_timeout: None,
        token_header: None,
        workspace: None,
        tls: None,
        twin: None,
    };
    let mut gateways = IndexMap::new();
    gateways.insert(
        Spanned::new("kong".to_owned(), Default::default()),
        Gateway::Kong(doc),
    );
    let environment = Environment {
        name: Spanned::new("bench".to_owned(), Default::default()),
        vars: IndexMap::new(),
        gateways,
        hosts: Vec::new(),
        unreadable: Vec::new(),
        ssh: SshSettings::default(),
        change: ChangeSettings::default(),
    };
    let mut context = StepContext::detached("bench", dry_run);
    context.target = StepTarget::Gateway("kong".to_owned());
    context.environment = Some(Arc::new(environment));
    context.base_dir = dir.to_path_buf();
    context
}
