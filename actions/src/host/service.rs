//! [`HostService`]: `host.service`, a service brought to a state with
//! `systemctl` or with commands given in the arguments.
//!
//! It asks the status first and acts only as needed: `started` starts a
//! service that is not running, `stopped` stops one that is, `restarted` stops
//! it (when running) and starts it, `reloaded` reloads a running service (or
//! restarts it without a reload command) and starts one that is not running.

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, StepContext, TargetKind,
};
use serde_json::{Map, Value, json};

use super::exec::{STDERR_TAIL_LINES, run_checked};
use super::transport::{self, ExecOutput, ExecRequest, Program, Transport};
use super::{FAMILY, HostServiceArguments, ServiceManager, ServiceState};
use crate::arguments::parse;

/// The action's type name.
pub const NAME: &str = "host.service";

/// `host.service`: starts, stops, restarts or reloads a service.
#[derive(Debug, Clone)]
pub struct HostService {
    spec: ActionSpec,
}

impl Default for HostService {
    fn default() -> Self {
        Self::new()
    }
}

impl HostService {
    /// The action with its catalogue description.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<HostServiceArguments>(
                NAME,
                FAMILY,
                "Starts, stops, restarts or reloads a service with systemd or given commands.",
                Effect::write().idempotent(),
            )
            .target(TargetKind::Host)
            .outputs(&["changed", "active"]),
        }
    }
}

#[async_trait::async_trait]
impl Action for HostService {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, _context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        // The status command is the user's and may not be read-only: plan runs nothing.
        let arguments: HostServiceArguments = parse(NAME, arguments)?;
        let controls = Controls::of(&arguments)?;
        let name = &arguments.name;
        let status = &controls.status;
        let summary = match arguments.state {
            ServiceState::Started => format!("would start {name} unless `{status}` says it runs"),
            ServiceState::Stopped => format!("would stop {name} if `{status}` says it runs"),
            ServiceState::Restarted => format!("would restart {name}"),
            ServiceState::Reloaded => {
                format!("would reload {name} if `{status}` says it runs, otherwise start it")
            }
        };
        Ok(Change::unknown(summary))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: HostServiceArguments = parse(NAME, arguments)?;
        let controls = Controls::of(&arguments)?;
        let transport = transport::for_step(context)?;
        let service = Service {
            transport: transport.as_ref(),
            controls: &controls,
            timeout: context.timeout,
            cwd: arguments.cwd.as_deref().map(std::path::PathBuf::from),
        };
        if arguments.manager == ServiceManager::Systemd {
            require_systemd(transport.as_ref(), context).await?;
        }
        let was_active = service.is_active().await?;
        let changed = match (arguments.state, was_active) {
            (ServiceState::Started, true) | (ServiceState::Stopped, false) => false,
            (ServiceState::Started, false) | (ServiceState::Reloaded, false) => {
                service.run(&controls.start).await?;
                true
            }
            (ServiceState::Stopped, true) => {
                service.run(&controls.stop).await?;
                true
            }
            (ServiceState::Restarted, running) => {
                service.restart(running).await?;
                true
            }
            (ServiceState::Reloaded, true) => {
                match &controls.reload {
                    Some(reload) => service.run(reload).await?,
                    None => service.restart(true).await?,
                }
                true
            }
        };
        let active = if changed {
            // The control command took effect: a status that cannot be read now leaves
            // the service changed and unconfirmed, for a person to check.
            service.is_active().await.map_err(|error| {
                ActionError::partially_applied(
                    format!("{} changed it, then: {error}", arguments.name),
                    vec![format!(
                        "service {}: brought to `{}`, its state after unconfirmed",
                        arguments.name,
                        format!("{:?}", arguments.state).to_lowercase()
                    )],
                )
            })?
        } else {
            was_active
        };
        let mut outputs = Map::new();
        outputs.insert("changed".into(), json!(changed));
        outputs.insert("active".into(), json!(active));
        Ok(Applied {
            secrets: Vec::new(),
            outputs,
            undo: None,
            change: None,
        })
    }
}

/// Fails clearly when the host does not run systemd (the check `sd_booted` makes).
async fn require_systemd(transport: &dyn Transport, context: &StepContext) -> Result<(), ActionError> {
    if transport
        .path_exists(std::path::Path::new("/run/systemd/system"))
        .await?
    {
        return Ok(());
    }
    let host = context.host().map(|h| h.name.clone()).unwrap_or_default();
    Err(ActionError::failed(format!(
        "host `{host}` does not run systemd (no /run/systemd/system), so `manager: systemd` cannot \
         control the service; write `manager: command` with `start`, `stop` and `status` commands"
    )))
}

/// The commands that control a service.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Controls {
    status: Program,
    start: Program,
    stop: Program,
    restart: Option<Program>,
    reload: Option<Program>,
    /// Whether the status command is known to change nothing.
    status_reads_only: bool,
    /// The status command's exit codes that mean "not running" (0 means running).
    stopped_codes: &'static [i32],
}

/// `systemctl is-active`: 3 is "unit is not active"; 1 is a failure of systemctl itself
/// (`is-active` leaves it to `is-failed`), 4 "no such unit".
const SYSTEMCTL_STOPPED: &[i32] = &[3];

/// An LSB status command (init-script actions): 1 dead with a pid file, 2 dead with a
/// lock file, 3 not running; 4 is "unknown".
const LSB_STOPPED: &[i32] = &[1, 2, 3];

/// What the status command's ending says: 0 running, a code of `stopped` not running,
/// anything else (4 "unknown", another code, a signal) an error naming the command, how
/// it ended and the end of its stderr: the service's state cannot be told.
fn status_of(program: &Program, stopped: &[i32], output: &ExecOutput) -> Result<bool, ActionError> {
    match output.exit_code {
        Some(0) => return Ok(true),
        Some(code) if stopped.contains(&code) => return Ok(false),
        _ => {}
    }
    let ended = match (output.exit_code, output.signal) {
        (Some(4), _) => "exited with 4 (LSB: status unknown)".to_owned(),
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended without an exit code".to_owned(),
    };
    let stopped: Vec<String> = stopped.iter().map(i32::to_string).collect();
    let tail = output.stderr.tail(STDERR_TAIL_LINES);
    let stderr = if tail.is_empty() {
        "; it wrote nothing to stderr".to_owned()
    } else {
        format!("; the end of its stderr:\n{tail}")
    };
    Err(ActionError::failed(format!(
        "status command `{program}` {ended}: the service's state cannot be told, so nothing was \
         started or stopped (0 means running, {} not running){stderr}",
        stopped.join(", ")
    )))
}

impl Controls {
    /// The commands for the arguments' manager.
    fn of(arguments: &HostServiceArguments) -> Result<Self, ActionError> {
        match arguments.manager {
            ServiceManager::Systemd => {
                let systemctl = |verb: &str| {
                    Program::Argv(vec![
                        "systemctl".to_owned(),
                        verb.to_owned(),
                        arguments.name.clone(),
                    ])
                };
                Ok(Self {
                    status: systemctl("is-active"),
                    start: systemctl("start"),
                    stop: systemctl("stop"),
                    restart: Some(systemctl("restart")),
                    reload: Some(systemctl("reload")),
                    status_reads_only: true,
                    stopped_codes: SYSTEMCTL_STOPPED,
                })
            }
            ServiceManager::Command => {
                let required = |command: &Option<String>, field: &str| {
                    command.clone().map(Program::Shell).ok_or_else(|| {
                        ActionError::InvalidArguments {
                            action: NAME,
                            message: format!("`manager: command` needs `{field}`"),
                        }
                    })
                };
                Ok(Self {
                    status: required(&arguments.status, "status")?,
                    start: required(&arguments.start, "start")?,
                    stop: required(&arguments.stop, "stop")?,
                    restart: None,
                    reload: arguments.reload.clone().map(Program::Shell),
                    status_reads_only: false,
                    stopped_codes: LSB_STOPPED,
                })
            }
        }
    }
}

/// A service on a host, controlled through a transport.
struct Service<'a> {
    transport: &'a dyn Transport,
    controls: &'a Controls,
    timeout: Option<std::time::Duration>,
    cwd: Option<std::path::PathBuf>,
}

impl Service<'_> {
    /// Whether the service runs, as its status command's exit code says.
    async fn is_active(&self) -> Result<bool, ActionError> {
        let request = self
            .request(&self.controls.status)
            .read_only(self.controls.status_reads_only);
        let output = self.transport.exec(&request).await?;
        status_of(&self.controls.status, self.controls.stopped_codes, &output)
    }

    /// Runs a control command, which must exit 0.
    async fn run(&self, program: &Program) -> Result<(), ActionError> {
        run_checked(self.transport, &self.request(program), &[0])
            .await
            .map(drop)
    }

    /// The request that runs `program` with the step's timeout, in the working directory.
    fn request(&self, program: &Program) -> ExecRequest {
        ExecRequest {
            cwd: self.cwd.clone(),
            ..ExecRequest::new(program.clone()).timeout(self.timeout)
        }
    }

    /// Restarts the service: its restart command, or stop (when running) then start.
    async fn restart(&self, running: bool) -> Result<(), ActionError> {
        if let Some(restart) = &self.controls.restart {
            return self.run(restart).await;
        }
        if running {
            self.run(&self.controls.stop).await?;
        }
        self.run(&self.controls.start).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::host::testing::local_step;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A "service" whose running state is a marker file; every command logs its name.
    fn marker_service(directory: &Path, state: &str) -> Value {
        let marker = directory.join("running");
        let log = directory.join("log");
        let (marker, log) = (marker.display(), log.display());
        json!({
            "name": "fake",
            "state": state,
            "manager": "command",
            "status": format!("test -f {marker}"),
            "start": format!("echo start >> {log}; touch {marker}"),
            "stop": format!("echo stop >> {log}; rm {marker}"),
        })
    }

    /// The commands run so far, in order.
    fn log(directory: &Path) -> String {
        std::fs::read_to_string(directory.join("log"))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    async fn apply(arguments: Value) -> Result<Map<String, Value>, ActionError> {
        Ok(HostService::new()
            .apply(&local_step(false), arguments)
            .await?
            .outputs)
    }

    #[tokio::test]
    async fn systemd_must_run_on_the_host() -> TestResult {
        if Path::new("/run/systemd/system").exists() {
            // This machine runs systemd: the refusal cannot be shown here.
            return Ok(());
        }
        let outcome = apply(json!({"name": "kong", "state": "started"})).await;
        assert!(
            matches!(&outcome, Err(ActionError::Failed { message }) if message.contains("does not run systemd") && message.contains("manager: command")),
            "{outcome:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn started_starts_only_a_stopped_service() -> TestResult {
        let directory = tempfile::tempdir()?;
        let outputs = apply(marker_service(directory.path(), "started")).await?;
        assert_eq!(outputs["changed"], json!(true));
        assert_eq!(outputs["active"], json!(true));
        assert!(directory.path().join("running").exists());

        let outputs = apply(marker_service(directory.path(), "started")).await?;
        assert_eq!(outputs["changed"], json!(false));
        assert_eq!(outputs["active"], json!(true));
        assert_eq!(log(directory.path()), "start");
        Ok(())
    }

    #[tokio::test]
    async fn stopped_stops_only_a_running_service() -> TestResult {
        let directory = tempfile::tempdir()?;
        let outputs = apply(marker_service(directory.path(), "stopped")).await?;
        assert_eq!(outputs["changed"], json!(false));
        assert_eq!(outputs["active"], json!(false));

        std::fs::write(directory.path().join("running"), "")?;
        let outputs = apply(marker_service(directory.path(), "stopped")).await?;
        assert_eq!(outputs["changed"], json!(true));
        assert_eq!(outputs["active"], json!(false));
        assert!(!directory.path().join("running").exists());
        assert_eq!(log(directory.path()), "stop");
        Ok(())
    }

    #[tokio::test]
    async fn restarted_stops_a_running_service_then_starts_it() -> TestResult {
        let directory = tempfile::tempdir()?;
        std::fs::write(directory.path().join("running"), "")?;
        let outputs = apply(marker_service(directory.path(), "restarted")).await?;
        assert_eq!(outputs["changed"], json!(true));
        assert_eq!(outputs["active"], json!(true));
        assert_eq!(log(directory.path()), "stop start");

        std::fs::remove_file(directory.path().join("running"))?;
        apply(marker_service(directory.path(), "restarted")).await?;
        assert_eq!(
            log(directory.path()),
            "stop start start",
            "no stop when stopped"
        );
        Ok(())
    }

    #[tokio::test]
    async fn reloaded_reloads_a_running_service_or_starts_it() -> TestResult {
        let directory = tempfile::tempdir()?;
        let mut arguments = marker_service(directory.path(), "reloaded");
        arguments["reload"] = json!(format!(
            "echo reload >> {}",
            directory.path().join("log").display()
        ));
        apply(arguments.clone()).await?;
        assert_eq!(log(directory.path()), "start");
        apply(arguments).await?;
        assert_eq!(log(directory.path()), "start reload");

        let without_reload = marker_service(directory.path(), "reloaded");
        apply(without_reload).await?;
        assert_eq!(log(directory.path()), "start reload stop start");
        Ok(())
    }

    #[tokio::test]
    async fn a_failing_start_fails_the_step() -> TestResult {
        let directory = tempfile::tempdir()?;
        let mut arguments = marker_service(directory.path(), "started");
        arguments["start"] = json!("echo cannot bind >&2; exit 2");
        let outcome = apply(arguments).await;
        assert!(
            matches!(&outcome, Err(ActionError::Failed { message }) if message.contains("exited with 2") && message.contains("cannot bind")),
            "{outcome:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_status_command_that_fails_fails_the_step_and_nothing_runs() -> TestResult {
        for (status, says) in [
            ("echo no such pid namespace >&2; exit 5", "exited with 5"),
            ("exit 4", "exited with 4 (LSB: status unknown)"),
            ("kill -9 $$", "was killed by signal 9"),
        ] {
            let directory = tempfile::tempdir()?;
            std::fs::write(directory.path().join("running"), "")?;
            let mut arguments = marker_service(directory.path(), "stopped");
            arguments["status"] = json!(status);
            let outcome = apply(arguments).await;
            assert!(
                matches!(&outcome, Err(ActionError::Failed { message })
                    if message.contains(&format!("status command `{status}` {says}"))
                        && message.contains("nothing was started or stopped")),
                "{status}: {outcome:?}"
            );
            assert_eq!(log(directory.path()), "", "{status}: no stop was run");
            assert!(directory.path().join("running").exists());
        }
        let directory = tempfile::tempdir()?;
        let mut arguments = marker_service(directory.path(), "started");
        arguments["status"] = json!("echo no such pid namespace >&2; exit 5");
        let outcome = apply(arguments).await;
        assert!(
            matches!(&outcome, Err(ActionError::Failed { message }) if message.contains("no such pid namespace")),
            "the end of its stderr is shown: {outcome:?}"
        );
        assert_eq!(log(directory.path()), "", "no start was run");
        Ok(())
    }

    #[tokio::test]
    async fn a_status_that_fails_after_the_change_leaves_it_for_a_person() -> TestResult {
        let directory = tempfile::tempdir()?;
        let mut arguments = marker_service(directory.path(), "started");
        // Not running at first (exit 3); once started, the status fails (exit 5).
        let marker = directory.path().join("running");
        arguments["status"] = json!(format!("test -f {} && exit 5; exit 3", marker.display()));
        let outcome = apply(arguments).await;
        assert!(
            matches!(&outcome, Err(ActionError::PartiallyApplied { message, changes_left })
                if message.contains("exited with 5")
                    && changes_left == &["service fake: brought to `started`, its state after unconfirmed"]),
            "{outcome:?}"
        );
        assert_eq!(log(directory.path()), "start");
        Ok(())
    }

    #[tokio::test]
    async fn lsb_not_running_codes_read_as_stopped() -> TestResult {
        for code in [1, 2, 3] {
            let directory = tempfile::tempdir()?;
            let mut arguments = marker_service(directory.path(), "started");
            arguments["status"] = json!(format!(
                "test -f {} || exit {code}",
                directory.path().join("running").display()
            ));
            let outputs = apply(arguments).await?;
            assert_eq!(outputs["changed"], json!(true), "exit {code}");
            assert_eq!(outputs["active"], json!(true), "exit {code}");
            assert_eq!(log(directory.path()), "start", "exit {code}");
        }
        Ok(())
    }

    #[test]
    fn systemctl_is_active_reads_only_3_as_stopped() {
        let output = |code| ExecOutput {
            exit_code: Some(code),
            signal: None,
            stdout: Default::default(),
            stderr: Default::default(),
            elapsed: std::time::Duration::ZERO,
        };
        let program = Program::Argv(vec!["systemctl".into(), "is-active".into(), "kong".into()]);
        let read = |code| status_of(&program, SYSTEMCTL_STOPPED, &output(code)).ok();
        assert_eq!(read(0), Some(true));
        assert_eq!(read(3), Some(false));
        assert_eq!(read(1), None, "a failure of systemctl itself");
        assert_eq!(read(4), None, "no such unit");
    }

    #[tokio::test]
    async fn command_manager_needs_its_commands() {
        let outcome =
            apply(json!({"name": "x", "state": "started", "manager": "command", "start": "true"}))
                .await;
        assert!(
            matches!(outcome, Err(ActionError::InvalidArguments { .. })),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn plan_runs_nothing_and_a_dry_run_apply_is_refused() -> TestResult {
        let directory = tempfile::tempdir()?;
        let arguments = marker_service(directory.path(), "started");
        let change = HostService::new()
            .plan(&local_step(true), arguments.clone())
            .await?;
        assert_eq!(change.changes, None);
        assert!(
            change
                .summary
                .starts_with("would start fake unless `test -f"),
            "{}",
            change.summary
        );
        let outcome = HostService::new().apply(&local_step(true), arguments).await;
        assert!(
            matches!(outcome, Err(ActionError::DryRunWrite { .. })),
            "{outcome:?}"
        );
        assert_eq!(log(directory.path()), "");
        assert!(!directory.path().join("running").exists());
        Ok(())
    }

    #[tokio::test]
    async fn commands_run_in_the_working_directory_given() -> TestResult {
        let directory = tempfile::tempdir()?;
        let arguments = json!({
            "name": "relative",
            "state": "started",
            "manager": "command",
            "status": "test -f running",
            "start": "touch running",
            "stop": "rm running",
            "cwd": directory.path().display().to_string(),
        });
        let outputs = apply(arguments.clone()).await?;
        assert_eq!(outputs["active"], json!(true));
        assert!(directory.path().join("running").exists());
        let outputs = apply(arguments).await?;
        assert_eq!(outputs["changed"], json!(false), "the status ran there too");
        Ok(())
    }

    #[test]
    fn systemd_uses_systemctl() -> Result<(), ActionError> {
        let arguments: HostServiceArguments =
            parse(NAME, json!({"name": "kong", "state": "started"}))?;
        let controls = Controls::of(&arguments)?;
        assert_eq!(controls.status.to_string(), "systemctl is-active kong");
        assert_eq!(controls.start.to_string(), "systemctl start kong");
        assert_eq!(
            controls.reload.map(|reload| reload.to_string()).as_deref(),
            Some("systemctl reload kong")
        );
        Ok(())
    }
}
