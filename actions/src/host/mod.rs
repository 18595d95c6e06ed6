//! The host family: commands, files, services and packages on a host of the
//! environment, reached through a [`Transport`] chosen from the host's
//! `transport:` ([`transport::for_step`]): [`LocalTransport`] for this machine,
//! [`SshTransport`] over the run's SSH connections ([`SshPool`]). In a dry run
//! the transport is wrapped in a [`DryRunGuard`], which refuses every write.
//!
//! `host.exec` reads only when declared `read_only` ([`exec_effect`]).

use std::collections::BTreeMap;

use runsheet_engine::model::Duration;
use runsheet_engine::{DuplicateAction, Effect, Registry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::arguments::OneOrMany;

pub mod exec;
pub mod facts;
pub mod file;
pub mod local;
mod output;
pub mod package;
pub mod service;
pub mod ssh;
pub mod transport;
pub mod wait;

#[cfg(test)]
#[path = "../../../tests/support/apt_lab.rs"]
mod apt_lab;
#[cfg(test)]
mod file_link_tests;
#[cfg(test)]
mod package_apt_tests;
#[cfg(test)]
mod testing;

pub use exec::HostExec;
pub use facts::HostFacts;
pub use file::HostFile;
pub use local::LocalTransport;
pub use package::HostPackage;
pub use service::HostService;
pub use ssh::{SshPool, SshTransport};
pub use transport::{DryRunGuard, Transport, TransportError};
pub use wait::HostWait;

/// The family name of these actions.
pub const FAMILY: &str = "host";

/// Arguments of `host.exec`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["argv"]}, {"required": ["command"]}]))]
pub struct HostExecArguments {
    /// Program and its arguments, run without a shell; exactly one of `argv` and `command`.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub argv: Option<Vec<String>>,
    /// Command line run by `sh -c`; exactly one of `argv` and `command`.
    #[serde(default)]
    pub command: Option<String>,
    /// Declares that the command changes nothing: the step is a read and runs in dry-run (default false).
    #[serde(default)]
    pub read_only: bool,
    /// Exit code or codes that count as success (default 0).
    #[serde(default = "exit_zero")]
    pub expect_exit: OneOrMany<u8>,
    /// Environment variables set for the command, name to value.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory on the host (default: the user's home directory).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Text written to the command's standard input (default: none).
    #[serde(default)]
    pub stdin: Option<String>,
}

/// Success means exit code 0.
fn exit_zero() -> OneOrMany<u8> {
    OneOrMany::one(0)
}

/// Arguments of `host.file`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["content"]},
    {"required": ["template"]},
    {"required": ["src"]}
]))]
pub struct HostFileArguments {
    /// Absolute path of the file on the host.
    pub path: String,
    /// The file's content, as text; exactly one of `content`, `template` and `src`.
    #[serde(default)]
    pub content: Option<String>,
    /// Template file on this machine (relative to the playbook), rendered with the step's context; exactly one of `content`, `template` and `src`.
    #[serde(default)]
    pub template: Option<String>,
    /// File on this machine (relative to the playbook), copied as is; exactly one of `content`, `template` and `src`.
    #[serde(default)]
    pub src: Option<String>,
    /// Permission bits in octal, quoted (`"0644"`); default: unchanged, or 0644 for a new file.
    #[serde(default)]
    #[schemars(pattern(r"^[0-7]{3,4}$"))]
    pub mode: Option<String>,
    /// Owner as `user` or `user:group`; default: unchanged, or the connecting user for a new file.
    #[serde(default)]
    pub owner: Option<String>,
}

/// Arguments of `host.service`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend(
    "if" = {"properties": {"manager": {"const": "command"}}, "required": ["manager"]},
    "then" = {"required": ["start", "stop", "status"]}
))]
pub struct HostServiceArguments {
    /// The systemd unit (`kong.service`), or a label for the commands with `manager: command`.
    pub name: String,
    /// State to bring the service to.
    pub state: ServiceState,
    /// How the service is controlled (default systemd).
    #[serde(default)]
    pub manager: ServiceManager,
    /// Command that starts the service (with `manager: command`, required there).
    #[serde(default)]
    pub start: Option<String>,
    /// Command that stops the service (with `manager: command`, required there).
    #[serde(default)]
    pub stop: Option<String>,
    /// Status command (with `manager: command`, required there): exit 0 runs; 1, 2, 3 not running (LSB); any other code fails the step.
    #[serde(default)]
    pub status: Option<String>,
    /// Command that reloads the service's configuration (with `manager: command`; without it `reloaded` restarts).
    #[serde(default)]
    pub reload: Option<String>,
    /// Working directory of the commands on the host (default: the user's home directory).
    #[serde(default)]
    pub cwd: Option<String>,
}

/// A state `host.service` brings a service to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Running; started if it is not.
    Started,
    /// Not running; stopped if it is.
    Stopped,
    /// Stopped and started again, even if it was running.
    Restarted,
    /// Told to reload its configuration.
    Reloaded,
}

/// How `host.service` controls a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceManager {
    /// With `systemctl`.
    #[default]
    Systemd,
    /// With the given `start`, `stop`, `status` (and `reload`) commands, for hosts without systemd.
    Command,
}

/// Arguments of `host.package`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostPackageArguments {
    /// Package name, as the package manager knows it.
    pub name: String,
    /// Exact version to install, as the package manager spells it (default: the newest available).
    #[serde(default)]
    pub version: Option<String>,
    /// Package manager (default: apt on Debian-family hosts, dnf on Red Hat-family hosts).
    #[serde(default)]
    pub manager: Option<PackageManager>,
}

/// A package manager `host.package` drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PackageManager {
    /// Debian and Ubuntu.
    Apt,
    /// Red Hat Enterprise Linux, Fedora and their rebuilds.
    Dnf,
}

/// Arguments of `host.wait`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["port"]},
    {"required": ["path"]},
    {"required": ["url"]}
]))]
pub struct HostWaitArguments {
    /// TCP port to wait for; exactly one of `port`, `path` and `url`.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Address whose `port` is checked, as seen from the host (default 127.0.0.1).
    #[serde(default)]
    pub host: Option<String>,
    /// File or directory on the host to wait for; exactly one of `port`, `path` and `url`.
    #[serde(default)]
    pub path: Option<String>,
    /// URL requested from the host, started once it answers 2xx; exactly one of `port`, `path` and `url`.
    #[serde(default)]
    pub url: Option<String>,
    /// What to wait for: started or stopped (port, url; default started), present or absent (path; default present).
    #[serde(default)]
    pub state: Option<WaitState>,
    /// How long to wait before the step fails (default 5m).
    #[serde(default = "five_minutes")]
    pub timeout: Duration,
}

/// What `host.wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitState {
    /// The port accepts connections, or the URL answers 2xx.
    Started,
    /// The port refuses connections, or the URL no longer answers.
    Stopped,
    /// The path exists.
    Present,
    /// The path does not exist.
    Absent,
}

/// The default wait, 5 minutes.
fn five_minutes() -> Duration {
    Duration(std::time::Duration::from_secs(300))
}

/// The effect of `host.exec` for these arguments: read when `read_only: true`,
/// write otherwise.
pub fn exec_effect(arguments: &serde_json::Value) -> Effect {
    let read_only = arguments
        .get("read_only")
        .and_then(serde_json::Value::as_bool);
    if read_only == Some(true) {
        Effect::READ
    } else {
        Effect::write()
    }
}

/// Registers the host actions.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateAction> {
    registry.register(HostExec::new())?;
    registry.register(HostFile::new())?;
    registry.register(HostService::new())?;
    registry.register(HostPackage::new())?;
    registry.register(HostWait::new())?;
    registry.register(HostFacts::new())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use runsheet_engine::EffectKind;
    use serde_json::json;

    use super::*;

    #[test]
    fn exec_reads_only_when_declared_read_only() {
        let read = json!({"argv": ["uname", "-a"], "read_only": true});
        assert_eq!(exec_effect(&read).kind, EffectKind::Read);
        for arguments in [
            json!({"command": "systemctl restart kong"}),
            json!({"command": "x", "read_only": false}),
            json!({"command": "x", "read_only": "{{ ro }}"}),
        ] {
            assert_eq!(
                exec_effect(&arguments).kind,
                EffectKind::Write,
                "{arguments}"
            );
        }
    }

    #[test]
    fn exec_takes_one_exit_code_or_a_list() -> Result<(), serde_json::Error> {
        let default: HostExecArguments = serde_json::from_value(json!({"command": "true"}))?;
        assert_eq!(default.expect_exit.as_slice(), &[0]);
        let many: HostExecArguments =
            serde_json::from_value(json!({"argv": ["grep", "x", "f"], "expect_exit": [0, 1]}))?;
        assert_eq!(many.expect_exit.as_slice(), &[0, 1]);
        assert!(
            serde_json::from_value::<HostExecArguments>(
                json!({"command": "x", "expect_exit": 256})
            )
            .is_err()
        );
        Ok(())
    }

    #[test]
    fn service_states_and_managers_are_closed_sets() {
        assert!(
            serde_json::from_value::<HostServiceArguments>(
                json!({"name": "kong", "state": "restarted", "manager": "systemd"})
            )
            .is_ok()
        );
        assert!(
            serde_json::from_value::<HostServiceArguments>(
                json!({"name": "kong", "state": "bounced"})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<HostPackageArguments>(
                json!({"name": "kong", "manager": "yum"})
            )
            .is_err()
        );
    }
}
