//! The Kong gateway a step runs against: its settings from the environment
//! (`gateways.<name>` of type kong) turned into a [`KongClient`].

use runsheet_engine::de::Spanned;
use runsheet_engine::model::{Gateway, KongGatewayDoc};
use runsheet_engine::{ActionError, StepContext};

use super::client::{DEFAULT_TOKEN_HEADER, KongClient};
use crate::web::WebClient;

/// The step's Kong gateway, connected.
#[derive(Debug, Clone)]
pub struct KongGateway {
    /// The gateway's name in the environment.
    pub name: String,
    /// The Admin API client.
    pub client: KongClient,
    /// The Status API base URL (`/status/ready`), when the environment gives one.
    pub status_url: Option<String>,
    /// The Status API client (same TLS settings, no token).
    pub status_web: WebClient,
    /// The proxy's base URL (`proxy_url`), for traffic checks.
    pub proxy_url: Option<String>,
    /// The proxy's TLS base URL (`proxy_tls_url`), for certificate checks.
    pub proxy_tls_url: Option<String>,
}

impl KongGateway {
    /// Connects to the gateway named by the step's `on:`: Admin API URL, workspace,
    /// RBAC token (its template rendered in the step's context) and TLS settings.
    pub async fn for_step(context: &StepContext) -> Result<Self, ActionError> {
        let (name, gateway) = context.gateway()?;
        let Gateway::Kong(doc) = gateway else {
            return Err(ActionError::failed(format!(
                "gateway `{name}` is a {} gateway, not kong",
                gateway.kind()
            )));
        };
        let Some(admin_url) = doc.admin_url.as_ref() else {
            return Err(ActionError::failed(format!(
                "gateway `{name}` has no `admin_url`"
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
        let mut client = KongClient::new(web.clone(), &admin_url.value);
        if let Some(timeout) = &doc.request_timeout {
            client = client.request_timeout(timeout.value.0);
        }
        if let Some(workspace) = &doc.workspace {
            client = client.workspace(workspace);
        }
        if let Some(token) = token(context, name, doc)? {
            let header = doc.token_header.as_deref().unwrap_or(DEFAULT_TOKEN_HEADER);
            client = client.token(header, &token);
        }
        Ok(Self {
            name: name.to_owned(),
            client,
            status_url: doc
                .status_url
                .as_ref()
                .map(|url| url.value.trim_end_matches('/').to_owned()),
            status_web: web,
            proxy_url: base_url(doc.proxy_url.as_ref()),
            proxy_tls_url: base_url(doc.proxy_tls_url.as_ref()),
        })
    }
}

/// A base URL from the environment, without a trailing `/`.
fn base_url(url: Option<&Spanned<String>>) -> Option<String> {
    url.map(|url| url.value.trim_end_matches('/').to_owned())
}

/// The gateway's RBAC token, its template (`{{ secret('KONG_TOKEN') }}`) rendered.
fn token(
    context: &StepContext,
    name: &str,
    doc: &KongGatewayDoc,
) -> Result<Option<String>, ActionError> {
    let Some(token) = &doc.token else {
        return Ok(None);
    };
    if !token.is_templated() {
        return Ok(Some(token.source.clone()));
    }
    context
        .evaluator
        .render(&token.source)
        .map(Some)
        .map_err(|error| ActionError::failed(format!("gateway `{name}`: token: {error}")))
}
