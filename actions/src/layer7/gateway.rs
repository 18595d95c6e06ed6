//! The Layer7 gateway a step runs against: its settings from the environment
//! (`gateways.<name>` of type layer7) turned into connected clients
//! ([`Layer7Gateway`]): restman, Graphman and `/ssg/ping` on `url`, and the
//! `traffic_url` published services answer on.

use runsheet_engine::model::{Gateway, Layer7GatewayDoc, TemplateText};
use runsheet_engine::{ActionError, StepContext};

use super::connection::{Connection, Credentials};
use super::graphman::GraphmanClient;
use super::ping::PingClient;
use super::restman::RestmanClient;
use crate::web::WebClient;

/// The step's Layer7 gateway, connected.
#[derive(Debug, Clone)]
pub struct Layer7Gateway {
    /// The gateway's name in the environment.
    pub name: String,
    /// The management base URL (`https://gw:8443`).
    pub url: String,
    /// The base URL published services answer on (default: `url`).
    pub traffic_url: String,
    /// The HTTP side: client (TLS, mTLS, dry-run guard) and credentials.
    pub connection: Connection,
    /// The restman client (`/restman/1.0`).
    pub restman: RestmanClient,
    /// The Graphman client (`/graphman`).
    pub graphman: GraphmanClient,
    /// The ping client (`/ssg/ping`).
    pub ping: PingClient,
}

impl Layer7Gateway {
    /// Connects to the gateway named by the step's `on:`: URL, traffic URL,
    /// username and password (templates rendered in the step's context) and
    /// TLS settings, including a client certificate. Insecure TLS is announced.
    pub async fn for_step(context: &StepContext) -> Result<Self, ActionError> {
        let (name, gateway) = context.gateway()?;
        let Gateway::Layer7(doc) = gateway else {
            return Err(ActionError::failed(format!(
                "gateway `{name}` is a {} gateway, not layer7",
                gateway.kind()
            )));
        };
        let Some(url) = doc.url.as_ref() else {
            return Err(ActionError::failed(format!(
                "gateway `{name}` has no `url`"
            )));
        };
        let web = WebClient::for_step(context, doc.tls.as_ref()).await?;
        if web.is_insecure() {
            tracing::warn!(
                step = %context.step_id,
                gateway = name,
                "TLS certificate verification is off for this gateway (tls.insecure: true)"
            );
        }
        let credentials = credentials(context, name, doc)?;
        let traffic_url = doc.traffic_url.as_ref().unwrap_or(url);
        let mut connection = Connection::new(web, credentials);
        if let Some(timeout) = &doc.request_timeout {
            connection = connection.request_timeout(timeout.value.0);
        }
        Ok(Self::connect(
            name,
            &url.value,
            &traffic_url.value,
            connection,
        ))
    }

    /// The clients of the gateway at `url` (tests and callers with their own settings).
    pub fn connect(name: &str, url: &str, traffic_url: &str, connection: Connection) -> Self {
        let url = url.trim_end_matches('/').to_owned();
        Self {
            name: name.to_owned(),
            traffic_url: traffic_url.trim_end_matches('/').to_owned(),
            restman: RestmanClient::new(connection.clone(), &url),
            graphman: GraphmanClient::new(connection.clone(), &url),
            ping: PingClient::new(connection.clone(), &url),
            connection,
            url,
        }
    }
}

/// The basic-auth credentials: both `username` and `password`, or neither
/// (a client certificate then authenticates).
fn credentials(
    context: &StepContext,
    name: &str,
    doc: &Layer7GatewayDoc,
) -> Result<Option<Credentials>, ActionError> {
    match (&doc.username, &doc.password) {
        (None, None) => Ok(None),
        (Some(username), Some(password)) => Ok(Some(Credentials {
            username: render(context, name, "username", username)?,
            password: render(context, name, "password", password)?,
        })),
        (Some(_), None) => Err(ActionError::failed(format!(
            "gateway `{name}` has a `username` but no `password`"
        ))),
        (None, Some(_)) => Err(ActionError::failed(format!(
            "gateway `{name}` has a `password` but no `username`"
        ))),
    }
}

/// A setting's template (`{{ secret('L7_PASSWORD') }}`) rendered; the error names the setting, never its value.
fn render(
    context: &StepContext,
    name: &str,
    setting: &str,
    text: &TemplateText,
) -> Result<String, ActionError> {
    if !text.is_templated() {
        return Ok(text.source.clone());
    }
    context
        .evaluator
        .render(&text.source)
        .map_err(|error| ActionError::failed(format!("gateway `{name}`: {setting}: {error}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use indexmap::IndexMap;
    use runsheet_engine::StepTarget;
    use runsheet_engine::de::Spanned;
    use runsheet_engine::model::{ChangeSettings, Environment, SshSettings};

    use super::*;
    use crate::layer7::test_server::{ADMIN_BASIC, GatewayStub, TestResult};

    fn text(source: &str) -> TemplateText {
        TemplateText {
            source: source.to_owned(),
            span: Default::default(),
        }
    }

    fn spanned(value: &str) -> Spanned<String> {
        Spanned::new(value.to_owned(), Default::default())
    }

    fn context(doc: Layer7GatewayDoc) -> StepContext {
        let mut gateways = IndexMap::new();
        gateways.insert(spanned("l7"), Gateway::Layer7(doc));
        let environment = Environment {
            name: spanned("test"),
            vars: IndexMap::new(),
            gateways,
            hosts: Vec::new(),
            unreadable: Vec::new(),
            ssh: SshSettings::default(),
            change: ChangeSettings::default(),
        };
        let mut context = StepContext::detached("step", false);
        context.target = StepTarget::Gateway("l7".to_owned());
        context.environment = Some(Arc::new(environment));
        context
    }

    fn doc(url: &str) -> Layer7GatewayDoc {
        Layer7GatewayDoc {
            kind: "layer7".to_owned(),
            url: Some(spanned(url)),
            traffic_url: None,
            username: Some(text("admin")),
            password: Some(text("s3cret-pw")),
            request_timeout: None,
            tls: None,
            twin: None,
        }
    }

    #[tokio::test]
    async fn connects_with_the_environment_settings() -> TestResult {
        let stub = GatewayStub::start(|_| (200, "text/html", "OK".to_owned())).await?;
        let gateway = Layer7Gateway::for_step(&context(doc(&format!("{}/", stub.url)))).await?;
        assert_eq!(gateway.name, "l7");
        assert_eq!(gateway.url, stub.url);
        assert_eq!(gateway.traffic_url, stub.url);
        assert_eq!(
            gateway.restman.base_url(),
            format!("{}/restman/1.0", stub.url)
        );
        gateway.ping.ping().await?;
        assert_eq!(stub.seen()[0].header("authorization"), Some(ADMIN_BASIC));
        let mut with_traffic = doc(&stub.url);
        with_traffic.traffic_url = Some(spanned("http://traffic.example:8080/"));
        let gateway = Layer7Gateway::for_step(&context(with_traffic)).await?;
        assert_eq!(gateway.traffic_url, "http://traffic.example:8080");
        Ok(())
    }

    #[tokio::test]
    async fn refuses_half_credentials_and_names_the_setting_of_a_failed_template() -> TestResult {
        let mut half = doc("https://gw:8443");
        half.password = None;
        let error = Layer7Gateway::for_step(&context(half)).await.map(|_| ());
        let message = error.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(
            message.contains("gateway `l7` has a `username` but no `password`"),
            "{message}"
        );
        let mut templated = doc("https://gw:8443");
        templated.password = Some(text("{{ secret('L7_PASSWORD') }}"));
        let error = Layer7Gateway::for_step(&context(templated))
            .await
            .map(|_| ());
        let message = error.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(message.contains("gateway `l7`: password:"), "{message}");
        let mut no_url = doc("https://gw:8443");
        no_url.url = None;
        let error = Layer7Gateway::for_step(&context(no_url)).await.map(|_| ());
        let message = error.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(message.contains("gateway `l7` has no `url`"), "{message}");
        Ok(())
    }
}
