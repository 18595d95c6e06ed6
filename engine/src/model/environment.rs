//! Environment files: the gateways, hosts and rules of one stage (uat, prod...).
//!
//! Gateways are read by their explicit `type:` tag: the loader looks at the tag,
//! then reads the mapping as that type's document, so unknown keys are still caught.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::template_text::TemplateText;
use crate::de::Spanned;
use crate::node::Node;

/// An environment as written in YAML.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "runsheet environment")]
pub struct EnvironmentDoc {
    /// Format version; must be 1.
    pub runsheet: Spanned<u32>,
    /// Name of the environment (uat, prod...).
    pub name: Spanned<String>,
    /// Values templates read as `env.vars.<name>`.
    #[serde(default)]
    pub vars: IndexMap<Spanned<String>, Node>,
    /// Gateways by name; each has a `type`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, GatewaySchema>")]
    pub gateways: IndexMap<Spanned<String>, Node>,
    /// Hosts by name, in order.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, HostDoc>")]
    pub hosts: IndexMap<Spanned<String>, Node>,
    /// SSH settings for every host (a host may override them).
    #[serde(default)]
    pub ssh: Option<SshSettings>,
    /// Change-management requirements.
    #[serde(default)]
    pub change: Option<ChangeSettings>,
}

/// A host as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostDoc {
    /// Address to connect to (required for ssh hosts).
    #[serde(default)]
    pub address: Option<Spanned<String>>,
    /// SSH port (default 22).
    #[serde(default)]
    pub port: Option<Spanned<u16>>,
    /// Login user.
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    /// `ssh` (default) or `local`.
    #[serde(default)]
    pub transport: Option<Spanned<Transport>>,
    /// Groups the host belongs to, for `hosts(group)`.
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    /// Values templates read as `host.vars.<name>`.
    #[serde(default)]
    pub vars: IndexMap<Spanned<String>, Node>,
    /// SSH settings for this host only.
    #[serde(default)]
    pub ssh: Option<SshSettings>,
    /// A stand-in process runsheet keeps running for this host (the lab's data-plane nodes).
    #[serde(default)]
    pub twin: Option<HostTwinSettings>,
}

/// Stand-ins runsheet starts for a host before a command uses the environment.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostTwinSettings {
    /// A Kong data-plane node stand-in (`runsheet twin node`), started when not running.
    pub node: TwinNode,
}

/// A `runsheet twin node` process kept running for a host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TwinNode {
    /// Address it serves on, `IP:PORT` (its status API, root JSON and traffic).
    pub listen: String,
    /// Version written to its state directory on its first start.
    pub version: String,
    /// Its state directory (version, PID file, log), relative to runsheet's working directory.
    pub state_dir: String,
}

/// How runsheet reaches a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Over SSH.
    #[default]
    Ssh,
    /// On the machine runsheet runs on.
    Local,
}

/// SSH connection settings.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// Login user.
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    /// Port (default 22).
    #[serde(default)]
    pub port: Option<Spanned<u16>>,
    /// Private key file.
    #[serde(default)]
    pub identity: Option<Spanned<String>>,
    /// known_hosts file.
    #[serde(default)]
    pub known_hosts: Option<Spanned<String>>,
    /// Host to jump through (ProxyJump), as `[user@]host[:port]`.
    #[serde(default)]
    pub jump_host: Option<Spanned<String>>,
    /// Longest wait for a connection.
    #[serde(default)]
    pub connect_timeout: Option<Spanned<Duration>>,
    /// Interval of keepalive messages.
    #[serde(default)]
    pub keepalive: Option<Spanned<Duration>>,
    /// Refuse unknown or changed host keys (default true).
    #[serde(default)]
    pub strict_host_key_checking: Option<Spanned<bool>>,
}

/// Change-management settings of an environment.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeSettings {
    /// Refuse to run writes without a change id.
    #[serde(default)]
    pub require_change_id: bool,
    /// Refuse to run writes without a change window.
    #[serde(default)]
    pub require_window: bool,
    /// The change id, when fixed for this environment file.
    #[serde(default)]
    pub change_id: Option<Spanned<String>>,
    /// The window as `START/END` in RFC 3339.
    #[serde(default)]
    pub window: Option<Spanned<String>>,
}

/// TLS settings of a client connection.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// CA bundle (PEM) to verify the server.
    #[serde(default)]
    pub ca: Option<String>,
    /// Client certificate (PEM) for mTLS.
    #[serde(default)]
    pub client_cert: Option<String>,
    /// Client key (PEM) for mTLS.
    #[serde(default)]
    pub client_key: Option<String>,
    /// Name to verify instead of the URL's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Skip verification (announced on every run).
    #[serde(default)]
    pub insecure: bool,
}

/// An in-process twin that stands in for the gateway.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TwinSettings {
    /// decK-style (Kong) or bundle (Layer7) file to start from.
    #[serde(default)]
    pub seed: Option<String>,
    /// Serve the `/_twin` control endpoint.
    #[serde(default)]
    pub control: bool,
}

/// A Kong Gateway as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KongGatewayDoc {
    /// Always `kong`.
    #[serde(rename = "type")]
    #[schemars(with = "KongTag")]
    pub kind: String,
    /// Admin API base URL (not needed with `twin`).
    #[serde(default)]
    pub admin_url: Option<Spanned<String>>,
    /// Proxy base URL, for traffic checks.
    #[serde(default)]
    pub proxy_url: Option<Spanned<String>>,
    /// Proxy base URL over TLS, for certificate checks.
    #[serde(default)]
    pub proxy_tls_url: Option<Spanned<String>>,
    /// Status API base URL (`/status/ready`).
    #[serde(default)]
    pub status_url: Option<Spanned<String>>,
    /// RBAC token, usually `{{ secret('NAME') }}`.
    #[serde(default)]
    pub token: Option<TemplateText>,
    /// Longest wait for one Admin API answer (default 30s; a step's `timeout:` still caps it).
    #[serde(default)]
    pub request_timeout: Option<Spanned<Duration>>,
    /// Header carrying the token (default `Kong-Admin-Token`).
    #[serde(default)]
    pub token_header: Option<String>,
    /// Workspace (Enterprise).
    #[serde(default)]
    pub workspace: Option<String>,
    /// TLS settings.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Run an in-process twin instead of a real gateway.
    #[serde(default)]
    pub twin: Option<TwinSettings>,
}

/// A Layer7 API Gateway as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer7GatewayDoc {
    /// Always `layer7`.
    #[serde(rename = "type")]
    #[schemars(with = "Layer7Tag")]
    pub kind: String,
    /// Base URL of the management API (not needed with `twin`).
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Base URL published services answer on, for traffic checks (default: `url`).
    #[serde(default)]
    pub traffic_url: Option<Spanned<String>>,
    /// Basic-auth user.
    #[serde(default)]
    pub username: Option<TemplateText>,
    /// Basic-auth password, usually `{{ secret('NAME') }}`.
    #[serde(default)]
    pub password: Option<TemplateText>,
    /// Longest wait for one management API answer (default 30s; a step's `timeout:` still caps it).
    #[serde(default)]
    pub request_timeout: Option<Spanned<Duration>>,
    /// TLS settings.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Run an in-process twin instead of a real gateway.
    #[serde(default)]
    pub twin: Option<TwinSettings>,
}

#[derive(JsonSchema)]
#[schemars(inline)]
#[expect(dead_code, reason = "only describes the schema of the `type` tag")]
enum KongTag {
    #[schemars(rename = "kong")]
    Kong,
}

#[derive(JsonSchema)]
#[schemars(inline)]
#[expect(dead_code, reason = "only describes the schema of the `type` tag")]
enum Layer7Tag {
    #[schemars(rename = "layer7")]
    Layer7,
}

/// Schema of a gateway entry: one of the gateway types, told apart by `type`.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[expect(dead_code, reason = "only describes the schema of a gateway entry")]
enum GatewaySchema {
    Kong(KongGatewayDoc),
    Layer7(Layer7GatewayDoc),
}

/// A checked gateway.
#[derive(Debug, Clone)]
pub enum Gateway {
    /// A Kong Gateway.
    Kong(KongGatewayDoc),
    /// A Layer7 API Gateway.
    Layer7(Layer7GatewayDoc),
}

impl Gateway {
    /// The gateway's type name as written in `type:`.
    pub fn kind(&self) -> &'static str {
        match self {
            Gateway::Kong(_) => "kong",
            Gateway::Layer7(_) => "layer7",
        }
    }
}

/// A checked host.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// Its key in the environment file.
    pub name: String,
    /// Address to connect to.
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// Login user, if set.
    pub user: Option<String>,
    /// How it is reached.
    pub transport: Transport,
    /// Its groups.
    pub groups: Vec<String>,
    /// Its vars.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// How to reach it over SSH: the environment's `ssh:` with the host's overrides.
    #[serde(skip)]
    pub ssh: std::sync::Arc<HostSsh>,
    /// The node stand-in runsheet keeps running for it, if any.
    #[serde(skip)]
    pub twin_node: Option<Box<TwinNode>>,
}

/// The SSH settings of one host, merged and with paths made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSsh {
    /// Private key file.
    pub identity: Option<std::path::PathBuf>,
    /// known_hosts file.
    pub known_hosts: Option<std::path::PathBuf>,
    /// Host to jump through (ProxyJump), as `user@host:port`.
    pub jump_host: Option<String>,
    /// Longest wait for a connection.
    pub connect_timeout: Option<std::time::Duration>,
    /// Interval of keepalive messages.
    pub keepalive: Option<std::time::Duration>,
    /// Refuse unknown or changed host keys.
    pub strict_host_key_checking: bool,
}

impl Default for HostSsh {
    fn default() -> Self {
        Self {
            identity: None,
            known_hosts: None,
            jump_host: None,
            connect_timeout: None,
            keepalive: None,
            strict_host_key_checking: true,
        }
    }
}

/// A loaded, checked environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Its name.
    pub name: Spanned<String>,
    /// Its vars.
    pub vars: IndexMap<Spanned<String>, Node>,
    /// Gateways by name.
    pub gateways: IndexMap<Spanned<String>, Gateway>,
    /// Hosts in file order.
    pub hosts: Vec<Host>,
    /// Hosts and gateways declared but unreadable (already reported); `on:` may name them.
    pub unreadable: Vec<String>,
    /// SSH defaults.
    pub ssh: SshSettings,
    /// Change-management settings.
    pub change: ChangeSettings,
}

impl Environment {
    /// Hosts of a group, in file order.
    pub fn hosts_in(&self, group: &str) -> Vec<&Host> {
        self.hosts
            .iter()
            .filter(|h| h.groups.iter().any(|g| g == group))
            .collect()
    }

    /// Whether any host belongs to the group (or a host has that name).
    pub fn has_group(&self, group: &str) -> bool {
        self.hosts
            .iter()
            .any(|h| h.groups.iter().any(|g| g == group))
    }

    /// Hosts whose SSH host-key checking the environment file turns off.
    pub fn hosts_without_host_key_checking(&self) -> Vec<&Host> {
        self.hosts
            .iter()
            .filter(|h| h.transport == Transport::Ssh && !h.ssh.strict_host_key_checking)
            .collect()
    }

    /// Every group name, in first-seen order.
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = Vec::new();
        for group in self.hosts.iter().flat_map(|h| h.groups.iter()) {
            if !groups.contains(&group.as_str()) {
                groups.push(group);
            }
        }
        groups
    }

    /// The host or gateway a literal `on:` names, if any.
    pub fn target(&self, name: &str) -> Option<Target<'_>> {
        if let Some(host) = self.hosts.iter().find(|h| h.name == name) {
            return Some(Target::Host(host));
        }
        self.gateways.get(name).map(Target::Gateway)
    }
}

/// What a literal `on:` resolves to.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A host.
    Host(&'a Host),
    /// A gateway.
    Gateway(&'a Gateway),
}
