//! Test support for the Layer7 actions: a real Layer7 twin over loopback HTTP, step
//! contexts whose target gateway points at it, and its `/_twin` counters.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use runsheet_engine::de::Spanned;
use runsheet_engine::model::{
    ChangeSettings, Environment, Gateway, Layer7GatewayDoc, SshSettings, TemplateText,
};
use runsheet_engine::{Action, StepContext, StepTarget};
use runsheet_twin::layer7::{Layer7Config, Layer7Twin};
use serde_json::{Value, json};

use super::export::Layer7Export;
use crate::test_support::TestResult;

/// The gateway name steps of these tests run against.
pub(super) const GATEWAY: &str = "l7";

/// The twin's administrator user.
pub(super) const USERNAME: &str = "admin";

/// The twin's administrator password.
pub(super) const PASSWORD: &str = "password";

/// A twin with the control endpoint on and the default credentials.
pub(super) async fn twin() -> std::io::Result<Layer7Twin> {
    Layer7Twin::start(Layer7Config {
        control: true,
        ..Layer7Config::default()
    })
    .await
}

/// A step context whose target is gateway `l7` at `twin`, with the right credentials.
pub(super) fn context(twin: &Layer7Twin, dry_run: bool) -> StepContext {
    context_with(twin, dry_run, PASSWORD)
}

/// A step context whose target is gateway `l7` at `twin`, sending `password`.
pub(super) fn context_with(twin: &Layer7Twin, dry_run: bool, password: &str) -> StepContext {
    context_at(&twin.url(), dry_run, password)
}

/// A step context whose target is gateway `l7` at `url` (a twin or a stub), sending `password`.
pub(super) fn context_at(url: &str, dry_run: bool, password: &str) -> StepContext {
    let text = |source: &str| TemplateText {
        source: source.to_owned(),
        span: Default::default(),
    };
    let doc = Layer7GatewayDoc {
        kind: "layer7".to_owned(),
        url: Some(Spanned::new(url.to_owned(), Default::default())),
        traffic_url: None,
        username: Some(text(USERNAME)),
        password: Some(text(password)),
        request_timeout: None,
        tls: None,
        twin: None,
    };
    let mut gateways = IndexMap::new();
    gateways.insert(
        Spanned::new(GATEWAY.to_owned(), Default::default()),
        Gateway::Layer7(doc),
    );
    let environment = Environment {
        name: Spanned::new("test".to_owned(), Default::default()),
        vars: IndexMap::new(),
        gateways,
        hosts: Vec::new(),
        unreadable: Vec::new(),
        ssh: SshSettings::default(),
        change: ChangeSettings::default(),
    };
    let mut context = StepContext::detached("step", dry_run);
    context.target = StepTarget::Gateway(GATEWAY.to_owned());
    context.environment = Some(Arc::new(environment));
    context
}

/// Sends a control request to the twin (`/_twin/...`, with the credentials); the JSON answer.
pub(super) async fn control(
    twin: &Layer7Twin,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> TestResult<Value> {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", twin.url()))
        .basic_auth(USERNAME, Some(PASSWORD));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(format!("{path}: {status}: {text}").into());
    }
    Ok(if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    })
}

/// How many writes the twin committed since it started (or since `/_twin/reset`).
pub(super) async fn writes(twin: &Layer7Twin) -> TestResult<u64> {
    let counters = control(twin, reqwest::Method::GET, "/_twin/counters", None).await?;
    counters["writes"]
        .as_u64()
        .ok_or_else(|| format!("no `writes` in the counters: {counters}").into())
}

/// A context on `twin` whose relative paths start in `dir`.
pub(super) fn context_in(twin: &Layer7Twin, dry_run: bool, dir: &Path) -> StepContext {
    let mut context = context(twin, dry_run);
    context.base_dir = dir.to_owned();
    context
}

/// `context` with the gateway's `request_timeout` set to `timeout`.
pub(super) fn waiting(mut context: StepContext, timeout: std::time::Duration) -> StepContext {
    if let Some(environment) = context.environment.as_deref() {
        let mut environment = environment.clone();
        for gateway in environment.gateways.values_mut() {
            if let Gateway::Layer7(doc) = gateway {
                doc.request_timeout = Some(Spanned::new(
                    runsheet_engine::model::Duration(timeout),
                    Default::default(),
                ));
            }
        }
        context.environment = Some(Arc::new(environment));
    }
    context
}

/// Exports `select` (everything when null) from `twin` through `api` (`restman` or
/// `graphman`) to `dir/name` with `layer7.export`; the file's path.
pub(super) async fn export_to(
    api: &str,
    twin: &Layer7Twin,
    dir: &Path,
    name: &str,
    select: Value,
) -> TestResult<PathBuf> {
    let mut arguments = json!({"path": name, "api": api});
    if !select.is_null() {
        arguments["select"] = select;
    }
    Layer7Export::new()
        .apply(&context_in(twin, false, dir), arguments)
        .await?;
    Ok(dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_context_reaches_the_twin_and_counters_start_at_zero() -> TestResult {
        let twin = twin().await?;
        let gateway = super::super::Layer7Gateway::for_step(&context(&twin, false)).await?;
        gateway.ping.ping().await?.require_up()?;
        assert_eq!(writes(&twin).await?, 0);
        Ok(())
    }
}
