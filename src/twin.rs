//! `runsheet twin`: emulators served standalone, and twins embedded in an environment's gateways.

mod layer7;
mod nodes;

use std::path::Path;

use runsheet_engine::check::Checked;
use runsheet_engine::de::Spanned;
use runsheet_engine::model::Gateway;
use runsheet_twin::kong::{KongTwin, TlsSettings, TwinConfig};
use runsheet_twin::layer7::Layer7Twin;
use serde_json::json;
use tokio::net::TcpListener;

use crate::cli::{KongTwinArgs, Layer7TwinArgs, NodeArgs, OutputFormat};
use crate::exit::Exit;

/// Twins started for one command; they stop when this is dropped.
#[derive(Debug, Default)]
pub struct Embedded {
    /// Kong twins by gateway name.
    kong: Vec<(String, KongTwin)>,
    /// Layer7 twins by gateway name.
    layer7: Vec<(String, Layer7Twin)>,
}

impl Embedded {
    /// Saves every twin's state under `dir` (one `<gateway>.json` each), for `resume`.
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        if self.kong.is_empty() && self.layer7.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let states = self
            .kong
            .iter()
            .map(|(name, twin)| (name, twin.export()))
            .chain(self.layer7.iter().map(|(name, twin)| (name, twin.export())));
        for (name, state) in states {
            let path = dir.join(format!("{name}.json"));
            let text = state.to_string();
            runsheet_engine::run::state::write_atomic(&path, text.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// Starts a twin for every gateway of the environment that declares `twin:`, and points the
/// gateway's URLs at it. A twin starts from the state saved in `saved` when there is one
/// (a resumed run), else from its seed. Before that, starts the node stand-in of every host
/// that declares `twin: {node: ...}` and whose node is not running (left running after).
pub fn embed(
    runtime: &tokio::runtime::Runtime,
    mut checked: Checked,
    saved: Option<&Path>,
) -> Result<(Checked, Embedded), Exit> {
    let mut embedded = Embedded::default();
    let Some((file, environment)) = checked.environment.as_mut() else {
        return Ok((checked, embedded));
    };
    nodes::ensure(&environment.hosts).map_err(|(host, message)| {
        eprintln!("error: host `{host}`: {message}");
        Exit::Refused
    })?;
    let base = Path::new(&file.name)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for (name, gateway) in &mut environment.gateways {
        let doc = match gateway {
            Gateway::Kong(doc) => doc,
            Gateway::Layer7(doc) => {
                let twin = layer7::embed(runtime, &name.value, doc, &base, saved)
                    .map_err(|message| refuse(&name.value, &message))?;
                if let Some(twin) = twin {
                    embedded.layer7.push((name.value.clone(), twin));
                }
                continue;
            }
        };
        let Some(settings) = &doc.twin else {
            continue;
        };
        let config = TwinConfig {
            control: settings.control,
            ..TwinConfig::default()
        };
        let twin = runtime
            .block_on(async {
                let mut twin = KongTwin::start(config).await?;
                twin.start_proxy().await?;
                twin.serve_proxy_tls(TcpListener::bind("127.0.0.1:0").await?, None)
                    .await?;
                twin.serve_status(TcpListener::bind("127.0.0.1:0").await?)
                    .await?;
                Ok::<_, std::io::Error>(twin)
            })
            .map_err(|e| refuse(&name.value, &format!("cannot start the Kong twin: {e}")))?;
        let saved_state = saved
            .map(|dir| dir.join(format!("{}.json", name.value)))
            .filter(|path| path.exists());
        let source = match saved_state {
            Some(path) => Some(("the twin's saved state", path)),
            None => settings
                .seed
                .as_ref()
                .map(|seed| ("twin seed", base.join(seed))),
        };
        if let Some((what, path)) = source {
            load(&twin, what, &path).map_err(|message| refuse(&name.value, &message))?;
        }
        doc.admin_url = Some(Spanned::new(twin.url(), Default::default()));
        doc.proxy_url = twin
            .proxy_url()
            .map(|url| Spanned::new(url, Default::default()));
        doc.proxy_tls_url = twin
            .proxy_tls_url()
            .map(|url| Spanned::new(url, Default::default()));
        doc.status_url = twin
            .status_url()
            .map(|url| Spanned::new(url, Default::default()));
        embedded.kong.push((name.value.clone(), twin));
    }
    Ok((checked, embedded))
}

/// Loads a seed or saved state file (`what` names it in errors) into `twin`.
fn load(twin: &KongTwin, what: &str, path: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    twin.seed(&text).map_err(|error| {
        format!(
            "{what} {}: {}",
            path.display(),
            error.body()["message"].as_str().unwrap_or("invalid")
        )
    })
}

/// Prints why gateway `name`'s twin could not start; the exit code for it.
fn refuse(name: &str, message: &str) -> Exit {
    eprintln!("error: gateway `{name}`: {message}");
    Exit::Invalid
}

/// `runsheet twin kong`: serves until Ctrl-C or SIGTERM.
pub fn kong(args: &KongTwinArgs) -> Exit {
    let runtime = match crate::execute::runtime() {
        Ok(runtime) => runtime,
        Err(exit) => return exit,
    };
    runtime.block_on(serve_kong(args))
}

/// Starts the Kong twin's listeners, prints where they are, and waits for a stop signal.
async fn serve_kong(args: &KongTwinArgs) -> Exit {
    let stop = stop_signal();
    let config = TwinConfig {
        control: args.control,
        db_less: args.db_less,
        admin_token: args.admin_token.clone(),
        token_header: args.token_header.clone(),
        ..TwinConfig::with_version(args.version.clone())
    };
    let listener = match TcpListener::bind(&args.listen).await {
        Ok(listener) => listener,
        Err(e) => return usage(&format!("--listen {}: {e}", args.listen)),
    };
    let twin = match KongTwin::serve(listener, config).await {
        Ok(twin) => twin,
        Err(e) => return usage(&format!("cannot serve the Admin API: {e}")),
    };
    let mut twin = twin;
    if let Some(seed) = &args.seed
        && let Err(message) = load(&twin, "twin seed", seed)
    {
        return usage(&message);
    }
    let mut urls = json!({
        "kong_version": args.version,
        "admin_url": twin.url(),
        "control": args.control,
    });
    if let Some(address) = enabled(&args.proxy_listen) {
        let listener = match TcpListener::bind(address).await {
            Ok(listener) => listener,
            Err(e) => return usage(&format!("--proxy-listen {address}: {e}")),
        };
        match twin.serve_proxy(listener).await {
            Ok(address) => urls["proxy_url"] = json!(format!("http://{address}")),
            Err(e) => return usage(&format!("cannot serve the proxy: {e}")),
        }
    }
    if let Some(address) = enabled(&args.proxy_tls_listen) {
        let listener = match TcpListener::bind(address).await {
            Ok(listener) => listener,
            Err(e) => return usage(&format!("--proxy-tls-listen {address}: {e}")),
        };
        match twin.serve_proxy_tls(listener, None).await {
            Ok(address) => urls["proxy_tls_url"] = json!(format!("https://{address}")),
            Err(e) => return usage(&format!("cannot serve the TLS proxy: {e}")),
        }
    }
    if let Some(address) = enabled(&args.status_listen) {
        let listener = match TcpListener::bind(address).await {
            Ok(listener) => listener,
            Err(e) => return usage(&format!("--status-listen {address}: {e}")),
        };
        match twin.serve_status(listener).await {
            Ok(address) => urls["status_url"] = json!(format!("http://{address}")),
            Err(e) => return usage(&format!("cannot serve the status API: {e}")),
        }
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let settings = match TlsSettings::from_pem_files(cert, key, args.client_ca.as_deref()) {
            Ok(settings) => settings,
            Err(e) => {
                return usage(&format!(
                    "--tls-cert {} / --tls-key {}: {e}",
                    cert.display(),
                    key.display()
                ));
            }
        };
        let listener = match TcpListener::bind(&args.tls_listen).await {
            Ok(listener) => listener,
            Err(e) => return usage(&format!("--tls-listen {}: {e}", args.tls_listen)),
        };
        match twin.serve_admin_tls(listener, settings).await {
            Ok(address) => urls["admin_tls_url"] = json!(format!("https://{address}")),
            Err(e) => return usage(&format!("cannot serve the Admin API over TLS: {e}")),
        }
    }
    match args.output {
        OutputFormat::Json => println!("{urls}"),
        OutputFormat::Human => {
            println!("kong twin {} serving", args.version);
            println!("  admin   {}", twin.url());
            if let Some(url) = urls["admin_tls_url"].as_str() {
                let mtls = if args.client_ca.is_some() {
                    " (client certificates required)"
                } else {
                    ""
                };
                println!("  admin   {url}{mtls}");
            }
            if let Some(url) = urls["proxy_url"].as_str() {
                println!("  proxy   {url}");
            }
            if let Some(url) = urls["proxy_tls_url"].as_str() {
                println!("  proxy   {url} (certificates by SNI)");
            }
            if let Some(url) = urls["status_url"].as_str() {
                println!("  status  {url}");
            }
            if args.control {
                println!("  control {}/_twin", twin.url());
            }
            println!("Ctrl-C stops it");
        }
    }
    stop.await;
    drop(twin);
    Exit::Success
}

/// `runsheet twin layer7`: serves until Ctrl-C or SIGTERM.
pub fn layer7(args: &Layer7TwinArgs) -> Exit {
    layer7::serve(args)
}

/// `runsheet twin node`: serves until SIGTERM or SIGINT.
pub fn node(args: &NodeArgs) -> Exit {
    let listen = match args.listen.parse() {
        Ok(listen) => listen,
        Err(e) => return usage(&format!("--listen {}: {e} (expected IP:PORT)", args.listen)),
    };
    let config = runsheet_twin::node::NodeConfig {
        listen,
        state_dir: args.state_dir.clone(),
        version: args.version.clone(),
    };
    let runtime = match crate::execute::runtime() {
        Ok(runtime) => runtime,
        Err(exit) => return exit,
    };
    match runtime.block_on(runsheet_twin::node::run(config)) {
        Ok(()) => Exit::Success,
        Err(e) => usage(&format!(
            "twin node on {} (state {}): {e}",
            args.listen,
            args.state_dir.display()
        )),
    }
}

/// The address of a `--*-listen` option, `None` for `off`.
fn enabled(listen: &str) -> Option<&str> {
    (!listen.eq_ignore_ascii_case("off")).then_some(listen)
}

/// Prints a start-up error; the exit code for it.
fn usage(message: &str) -> Exit {
    eprintln!("error: {message}");
    Exit::Invalid
}

/// Resolves on SIGINT or SIGTERM, listened for from the call on: a signal that comes
/// while the twin is still starting stops it cleanly instead of killing it.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        if let (Some(mut interrupt), Some(mut terminate)) = signals {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
