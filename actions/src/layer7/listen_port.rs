//! `layer7.listen_port` ([`Layer7ListenPort`]): reads one listen port, the key it
//! presents and that key's certificate (Graphman `listenPortByName`, restman
//! `privateKeys`). A read: it gives a playbook the address to shake hands with and the
//! certificate to trust before and after a `layer7.key_rotate`.

use runsheet_engine::{Action, ActionError, ActionSpec, Applied, Effect, StepContext, TargetKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::FAMILY;
use super::gateway::Layer7Gateway;
use super::listen_port_keys::{endpoint, presented_key, read_key, read_port};
use crate::arguments::parse;

/// The action's name.
pub const NAME: &str = "layer7.listen_port";

/// The outputs of `layer7.listen_port`.
pub const OUTPUTS: &[&str] = &[
    "name",
    "protocol",
    "enabled",
    "host",
    "port",
    "keystore",
    "alias",
    "certificate",
];

/// Arguments of `layer7.listen_port`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer7ListenPortArguments {
    /// The listen port's name (`Default HTTPS (8443)`).
    pub name: String,
}

/// The `layer7.listen_port` action: reads a listen port; never writes.
#[derive(Debug, Clone)]
pub struct Layer7ListenPort {
    /// The catalogue entry.
    spec: ActionSpec,
}

impl Layer7ListenPort {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<Layer7ListenPortArguments>(
                NAME,
                FAMILY,
                "Reads a listen port: its address, the key it presents and that key's certificate.",
                Effect::READ,
            )
            .target(TargetKind::Gateway("layer7"))
            .outputs(OUTPUTS),
        }
    }
}

impl Default for Layer7ListenPort {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for Layer7ListenPort {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: Layer7ListenPortArguments = parse(NAME, arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let Some(port) = read_port(&gateway, &arguments.name).await? else {
            return Err(ActionError::failed(format!(
                "gateway `{}`: no listen port named `{}`",
                gateway.name, arguments.name
            )));
        };
        let key = presented_key(&gateway, &port).await?;
        let certificate = match &key {
            Some(key) => read_key(&gateway, key).await?,
            None => None,
        };
        let host = endpoint(&gateway, port.port)
            .map_err(ActionError::failed)?
            .host;
        let mut outputs = Map::new();
        outputs.insert("name".to_owned(), Value::from(port.name.clone()));
        outputs.insert("protocol".to_owned(), Value::from(port.protocol.clone()));
        outputs.insert("enabled".to_owned(), Value::Bool(port.enabled));
        outputs.insert("host".to_owned(), Value::from(host));
        outputs.insert("port".to_owned(), Value::from(port.port));
        outputs.insert(
            "keystore".to_owned(),
            key.as_ref()
                .map_or(Value::Null, |key| Value::from(key.keystore.clone())),
        );
        outputs.insert(
            "alias".to_owned(),
            key.as_ref()
                .map_or(Value::Null, |key| Value::from(key.alias.clone())),
        );
        outputs.insert(
            "certificate".to_owned(),
            certificate.map_or(Value::Null, |certificate| {
                json!({
                    "subject": certificate.subject,
                    "not_after": certificate.not_after_text(),
                    "thumbprint": certificate.thumbprint(),
                    "dns_names": certificate.dns_names,
                    "pem": certificate.pem(),
                })
            }),
        );
        Ok(Applied {
            outputs,
            undo: None,
            change: None,
            secrets: Vec::new(),
        })
    }
}
