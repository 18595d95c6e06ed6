//! [`HostFacts`]: `host.facts`, the host's operating system, kernel, uptime
//! and hostname.
//!
//! The operating system is `PRETTY_NAME` of `/etc/os-release` (or
//! `/usr/lib/os-release`), the uptime the whole seconds of `/proc/uptime`.

use std::path::Path;

use runsheet_engine::{Action, ActionError, ActionSpec, Applied, Effect, StepContext, TargetKind};
use serde_json::{Map, Value, json};

use super::FAMILY;
use super::transport::{self, Transport};
use crate::arguments::{NoArguments, parse};

/// The action's type name.
pub const NAME: &str = "host.facts";

/// `host.facts`: reports the host's operating system, kernel, uptime and hostname.
#[derive(Debug, Clone)]
pub struct HostFacts {
    spec: ActionSpec,
}

impl Default for HostFacts {
    fn default() -> Self {
        Self::new()
    }
}

impl HostFacts {
    /// The action with its catalogue description.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<NoArguments>(
                NAME,
                FAMILY,
                "Reports the host's operating system, kernel, uptime and hostname.",
                Effect::READ,
            )
            .target(TargetKind::Host)
            .outputs(&["os", "kernel", "uptime", "hostname"]),
        }
    }
}

#[async_trait::async_trait]
impl Action for HostFacts {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let NoArguments {} = parse(NAME, arguments)?;
        let transport = transport::for_step(context)?;
        let names = transport.system_names().await?;
        let mut outputs = Map::new();
        outputs.insert(
            "os".into(),
            json!(operating_system(transport.as_ref()).await?),
        );
        outputs.insert("kernel".into(), json!(names.kernel));
        outputs.insert(
            "uptime".into(),
            json!(uptime_seconds(transport.as_ref()).await?),
        );
        outputs.insert("hostname".into(), json!(names.hostname));
        Ok(Applied {
            secrets: Vec::new(),
            outputs,
            undo: None,
            change: None,
        })
    }
}

/// The operating system's pretty name, from the first os-release file found.
async fn operating_system(transport: &dyn Transport) -> Result<String, ActionError> {
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Some(file) = transport.read_file(Path::new(path)).await? {
            let text = String::from_utf8_lossy(&file.content);
            if let Some(name) =
                os_release_field(&text, "PRETTY_NAME").or_else(|| os_release_field(&text, "NAME"))
            {
                return Ok(name);
            }
        }
    }
    Err(ActionError::failed(
        "the host has no os-release file naming its operating system",
    ))
}

/// A field of an os-release file, unquoted.
fn os_release_field(text: &str, field: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix(field)?.strip_prefix('=')?;
        let unquoted = value
            .strip_prefix('"')
            .and_then(|value| value.strip_suffix('"'))
            .or_else(|| {
                value
                    .strip_prefix('\'')
                    .and_then(|value| value.strip_suffix('\''))
            })
            .unwrap_or(value);
        Some(unquoted.replace("\\\"", "\"")).filter(|value| !value.is_empty())
    })
}

/// Whole seconds since the host booted, from `/proc/uptime`.
async fn uptime_seconds(transport: &dyn Transport) -> Result<u64, ActionError> {
    let unreadable = || ActionError::failed("failed to read the uptime from /proc/uptime");
    let file = transport
        .read_file(Path::new("/proc/uptime"))
        .await?
        .ok_or_else(unreadable)?;
    let text = String::from_utf8_lossy(&file.content);
    let seconds = text.split(['.', ' ']).next().ok_or_else(unreadable)?;
    seconds.trim().parse().map_err(|_| unreadable())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::testing::local_step;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn reports_every_fact() -> TestResult {
        let applied = HostFacts::new().apply(&local_step(true), json!({})).await?;
        for fact in ["os", "kernel", "hostname"] {
            let value = applied.outputs[fact].as_str().unwrap_or_default();
            assert!(!value.is_empty(), "{fact} is empty");
        }
        let uptime = applied.outputs["uptime"]
            .as_u64()
            .ok_or("uptime is not a number")?;
        let expected: f64 = std::fs::read_to_string("/proc/uptime")?
            .split_whitespace()
            .next()
            .ok_or("empty /proc/uptime")?
            .parse()?;
        assert!(
            (expected - uptime as f64).abs() < 5.0,
            "{uptime} vs {expected}"
        );
        assert_eq!(
            applied.outputs["kernel"],
            json!(std::fs::read_to_string("/proc/sys/kernel/osrelease")?.trim())
        );
        Ok(())
    }

    #[test]
    fn reads_os_release_fields() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(
            os_release_field(text, "PRETTY_NAME").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(os_release_field(text, "ID").as_deref(), Some("debian"));
        assert_eq!(os_release_field(text, "VERSION"), None);
        assert_eq!(os_release_field("NAME=''\n", "NAME"), None);
    }

    #[tokio::test]
    async fn takes_no_arguments() {
        let outcome = HostFacts::new()
            .apply(&local_step(false), json!({"x": 1}))
            .await;
        assert!(
            matches!(outcome, Err(ActionError::InvalidArguments { .. })),
            "{outcome:?}"
        );
    }
}
