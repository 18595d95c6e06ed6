//! `runsheet twin layer7`, and Layer7 twins embedded in an environment's gateways.

use std::path::Path;

use runsheet_engine::de::Spanned;
use runsheet_engine::model::{Layer7GatewayDoc, TemplateText};
use runsheet_twin::kong::TlsSettings;
use runsheet_twin::layer7::state_dir::{self, Boot};
use runsheet_twin::layer7::{Layer7Config, Layer7Twin};
use serde_json::json;
use tokio::net::TcpListener;

use super::{stop_signal, usage};
use crate::cli::{Layer7TwinArgs, OutputFormat};
use crate::exit::Exit;

/// Default administrator of an embedded twin whose gateway names none.
const DEFAULT_USERNAME: &str = "admin";

/// Default password of an embedded twin whose gateway names none.
const DEFAULT_PASSWORD: &str = "password";

/// `runsheet twin layer7`: serves until Ctrl-C or SIGTERM.
pub fn serve(args: &Layer7TwinArgs) -> Exit {
    let runtime = match crate::execute::runtime() {
        Ok(runtime) => runtime,
        Err(exit) => return exit,
    };
    runtime.block_on(run(args))
}

/// Starts the twin, prints where it is, waits for a stop signal, saves its state.
async fn run(args: &Layer7TwinArgs) -> Exit {
    let stop = stop_signal();
    let boot = match &args.state_dir {
        Some(dir) => match state_dir::boot(dir, &args.version) {
            Ok(boot) => Some(boot),
            Err(e) => return usage(&format!("--state-dir {}: {e}", dir.display())),
        },
        None => None,
    };
    let mut config = Layer7Config {
        username: args.username.clone(),
        password: args.password.clone(),
        control: args.control,
        version: args.version.clone(),
        ..Layer7Config::default()
    };
    if let Some(boot) = &boot {
        config.version.clone_from(&boot.version);
        config.node_id.clone_from(&boot.node_id);
        config.patches.clone_from(&boot.patches);
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            match TlsSettings::from_pem_files(cert, key, args.client_ca.as_deref()) {
                Ok(settings) => Some(settings),
                Err(e) => {
                    return usage(&format!(
                        "--tls-cert {} / --tls-key {}: {e}",
                        cert.display(),
                        key.display()
                    ));
                }
            }
        }
        _ => None,
    };
    let listener = match TcpListener::bind(&args.listen).await {
        Ok(listener) => listener,
        Err(e) => return usage(&format!("--listen {}: {e}", args.listen)),
    };
    let mut twin = match Layer7Twin::serve(listener, config, tls).await {
        Ok(twin) => twin,
        Err(e) => return usage(&format!("cannot serve the Layer7 twin: {e}")),
    };
    if let Err(message) = restore(&twin, boot.as_ref(), args.seed.as_deref()) {
        return usage(&message);
    }
    let mut urls = json!({
        "url": twin.url(),
        "version": twin.node().info().product_version.formal_string,
        "username": args.username,
        "control": args.control,
    });
    if args.listen_ports {
        match twin.serve_listen_ports().await {
            Ok(ports) => {
                urls["listen_ports"] = ports
                    .iter()
                    .map(|port| {
                        (
                            port.name.clone(),
                            json!(format!("https://{}", port.address)),
                        )
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            }
            Err(e) => return usage(&format!("cannot serve the listen ports: {e}")),
        }
    }
    if let Some(boot) = &boot
        && let Err(e) = state_dir::write_pid(&boot.dir)
    {
        return usage(&format!("--state-dir {}: {e}", boot.dir.display()));
    }
    print_started(args, &twin, &urls);
    stop.await;
    let state = twin.export();
    drop(twin);
    if let Some(boot) = &boot
        && let Err(e) = state_dir::shut_down(&boot.dir, &state)
    {
        eprintln!("error: --state-dir {}: {e}", boot.dir.display());
        return Exit::Invalid;
    }
    Exit::Success
}

/// Loads the state a previous run saved, else the seed.
fn restore(twin: &Layer7Twin, boot: Option<&Boot>, seed: Option<&Path>) -> Result<(), String> {
    if let Some(boot) = boot
        && let Some(saved) = &boot.saved
    {
        let path = boot.dir.join(state_dir::STATE_FILE);
        // The version and patches files win over what the state recorded.
        let mut saved = saved.clone();
        saved["node"] = json!({"version": boot.version, "patches": boot.patches});
        return twin
            .load(&saved)
            .map_err(|e| format!("saved state {}: {e}", path.display()));
    }
    match seed {
        Some(seed) => seed_from(twin, "twin seed", seed),
        None => Ok(()),
    }
}

/// Imports the bundle file at `path` (`what` names it in errors).
fn seed_from(twin: &Layer7Twin, what: &str, path: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    twin.seed_bundle(&text)
        .map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// The start-up lines.
fn print_started(args: &Layer7TwinArgs, twin: &Layer7Twin, urls: &serde_json::Value) {
    match args.output {
        OutputFormat::Json => println!("{urls}"),
        OutputFormat::Human => {
            println!(
                "layer7 twin {} serving",
                twin.node().info().product_version.formal_string
            );
            let mtls = if args.client_ca.is_some() {
                " (client certificates required)"
            } else {
                ""
            };
            println!("  restman {}/restman/1.0{mtls}", twin.url());
            println!("  ping    {}/ssg/ping", twin.url());
            println!("  traffic {}", twin.url());
            println!("  login   {} / {}", args.username, args.password);
            if let Some(ports) = urls["listen_ports"].as_object() {
                for (name, url) in ports {
                    println!("  port    {} {name}", url.as_str().unwrap_or_default());
                }
            }
            if args.control {
                println!("  control {}/_twin", twin.url());
            }
            println!("Ctrl-C stops it");
        }
    }
}

/// Starts the embedded twin of Layer7 gateway `doc` (from `saved` when a resumed run
/// saved one, else from its seed) and points the gateway at it.
pub fn embed(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    doc: &mut Layer7GatewayDoc,
    base: &Path,
    saved: Option<&Path>,
) -> Result<Option<Layer7Twin>, String> {
    let Some(settings) = doc.twin.clone() else {
        return Ok(None);
    };
    let literal = |text: &Option<TemplateText>| {
        text.as_ref()
            .filter(|text| !text.is_templated())
            .map(|text| text.source.clone())
    };
    if [&doc.username, &doc.password]
        .iter()
        .any(|text| text.as_ref().is_some_and(TemplateText::is_templated))
    {
        eprintln!(
            "warning: gateway `{name}`: the twin cannot read templated credentials; it accepts only the literal ones (default {DEFAULT_USERNAME} / {DEFAULT_PASSWORD})"
        );
    }
    let config = Layer7Config {
        username: literal(&doc.username).unwrap_or_else(|| DEFAULT_USERNAME.to_owned()),
        password: literal(&doc.password).unwrap_or_else(|| DEFAULT_PASSWORD.to_owned()),
        control: settings.control,
        ..Layer7Config::default()
    };
    let mut twin = runtime
        .block_on(Layer7Twin::start(config.clone()))
        .map_err(|e| format!("cannot start the Layer7 twin: {e}"))?;
    let saved_state = saved
        .map(|dir| dir.join(format!("{name}.json")))
        .filter(|path| path.exists());
    match saved_state {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("the twin's saved state {}: {e}", path.display()))?;
            let state: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("the twin's saved state {}: {e}", path.display()))?;
            twin.load(&state)
                .map_err(|e| format!("the twin's saved state {}: {e}", path.display()))?;
        }
        None => {
            if let Some(seed) = &settings.seed {
                seed_from(&twin, "twin seed", &base.join(seed))?;
            }
        }
    }
    // After the state is in: the HTTPS listen ports it holds are served on loopback.
    runtime
        .block_on(twin.serve_listen_ports())
        .map_err(|e| format!("cannot serve the listen ports: {e}"))?;
    let url = Spanned::new(twin.url(), Default::default());
    doc.url = Some(url.clone());
    doc.traffic_url = Some(url);
    if doc.username.is_none() {
        doc.username = Some(TemplateText {
            source: config.username.clone(),
            span: Default::default(),
        });
    }
    if doc.password.is_none() {
        doc.password = Some(TemplateText {
            source: config.password.clone(),
            span: Default::default(),
        });
    }
    Ok(Some(twin))
}
