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
        Ok(Self::connect(
            name,
            &url.value,
            &traffic_url.value,
            Connection::new(web, credentials),
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
