//! [`HostExec`]: `host.exec`, a command on the host whose exit code is checked.

use std::path::PathBuf;

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, StepContext, TargetKind,
};
use serde_json::{Map, Value, json};

use super::transport::{self, ExecOutput, ExecRequest, Program, Transport};
use super::{FAMILY, HostExecArguments, exec_effect};
use crate::arguments::parse;

/// The action's type name.
pub const NAME: &str = "host.exec";

/// How many lines of standard error a failure shows.
pub const STDERR_TAIL_LINES: usize = 20;

/// `host.exec`: runs a command on the host and checks its exit code.
#[derive(Debug, Clone)]
pub struct HostExec {
    spec: ActionSpec,
}

impl Default for HostExec {
    fn default() -> Self {
        Self::new()
    }
}

impl HostExec {
    /// The action with its catalogue description.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<HostExecArguments>(
                NAME,
                FAMILY,
                "Runs a command on the host and checks its exit code.",
                Effect::read_when("read_only is true"),
            )
            .target(TargetKind::Host)
            .outputs(&["stdout", "stderr", "exit_code", "elapsed_ms"]),
        }
    }
}

#[async_trait::async_trait]
impl Action for HostExec {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    fn effect_for(&self, arguments: &Value) -> Effect {
        exec_effect(arguments)
    }

    async fn plan(&self, _context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let arguments: HostExecArguments = parse(NAME, arguments)?;
        let program = program_of(&arguments)?;
        Ok(Change::unknown(format!("would run: {program}")))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: HostExecArguments = parse(NAME, arguments)?;
        let transport = transport::for_step(context)?;
        let request = ExecRequest {
            program: program_of(&arguments)?,
            env: arguments.env,
            cwd: arguments.cwd.map(PathBuf::from),
            stdin: arguments.stdin.map(String::into_bytes),
            timeout: context.timeout,
            read_only: arguments.read_only,
        };
        let output = run_checked(
            transport.as_ref(),
            &request,
            arguments.expect_exit.as_slice(),
        )
        .await?;
        let mut outputs = Map::new();
        outputs.insert("stdout".into(), json!(output.stdout.text()));
        outputs.insert("stderr".into(), json!(output.stderr.text()));
        outputs.insert("exit_code".into(), json!(output.exit_code));
        outputs.insert("elapsed_ms".into(), json!(millis(output.elapsed)));
        Ok(Applied {
            secrets: Vec::new(),
            outputs,
            undo: None,
            change: None,
        })
    }
}

/// The program the arguments name: exactly one of `argv` and `command`.
fn program_of(arguments: &HostExecArguments) -> Result<Program, ActionError> {
    match (&arguments.argv, &arguments.command) {
        (Some(argv), None) if !argv.is_empty() => Ok(Program::Argv(argv.clone())),
        (None, Some(command)) => Ok(Program::Shell(command.clone())),
        (Some(_), None) => Err(invalid("`argv` needs at least the program")),
        _ => Err(invalid("give exactly one of `argv` and `command`")),
    }
}

/// An argument error of this action.
fn invalid(message: &str) -> ActionError {
    ActionError::InvalidArguments {
        action: NAME,
        message: message.to_owned(),
    }
}

/// Runs the request; an exit code outside `expected` is a failure showing the end of stderr.
pub async fn run_checked(
    transport: &dyn Transport,
    request: &ExecRequest,
    expected: &[u8],
) -> Result<ExecOutput, ActionError> {
    let output = transport.exec(request).await?;
    let accepted = output
        .exit_code
        .and_then(|code| u8::try_from(code).ok())
        .is_some_and(|code| expected.contains(&code));
    if accepted {
        Ok(output)
    } else {
        Err(ActionError::failed(failure_message(
            &request.program,
            &output,
            expected,
        )))
    }
}

/// Says how the command ended, what was expected, and the end of its stderr.
fn failure_message(program: &Program, output: &ExecOutput, expected: &[u8]) -> String {
    let ended = match (output.exit_code, output.signal) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended without an exit code".to_owned(),
    };
    let expected: Vec<String> = expected.iter().map(u8::to_string).collect();
    let tail = output.stderr.tail(STDERR_TAIL_LINES);
    let stderr = if tail.is_empty() {
        "; it wrote nothing to stderr".to_owned()
    } else {
        format!("; the end of its stderr:\n{tail}")
    };
    format!(
        "`{program}` {ended} (expected {}){stderr}",
        expected.join(" or ")
    )
}

/// A duration in whole milliseconds, saturating.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use runsheet_engine::model::Transport as HostTransport;
    use runsheet_engine::{Action, StepTarget};

    use super::*;
    use crate::host::testing::local_step;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn returns_the_outputs_of_a_successful_command() -> TestResult {
        let applied = HostExec::new()
            .apply(
                &local_step(false),
                json!({"command": "echo hello; echo warn >&2", "read_only": true}),
            )
            .await?;
        assert_eq!(applied.outputs["stdout"], json!("hello\n"));
        assert_eq!(applied.outputs["stderr"], json!("warn\n"));
        assert_eq!(applied.outputs["exit_code"], json!(0));
        assert!(applied.outputs["elapsed_ms"].is_u64());
        assert!(applied.undo.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn an_unexpected_exit_code_fails_with_the_end_of_stderr() -> TestResult {
        let command = "for n in $(seq 1 30); do echo \"line $n\" >&2; done; exit 3";
        let outcome = HostExec::new()
            .apply(&local_step(false), json!({"command": command}))
            .await;
        let message = match outcome {
            Err(ActionError::Failed { message }) => message,
            other => return Err(format!("expected a failure, got {other:?}").into()),
        };
        assert!(message.contains("exited with 3 (expected 0)"), "{message}");
        let tail: Vec<String> = (11..=30).map(|n| format!("line {n}")).collect();
        assert!(message.ends_with(&tail.join("\n")), "{message}");
        assert!(!message.contains("line 10\n"), "{message}");
        Ok(())
    }

    #[tokio::test]
    async fn listed_exit_codes_count_as_success() -> TestResult {
        let applied = HostExec::new()
            .apply(
                &local_step(false),
                json!({"argv": ["sh", "-c", "exit 1"], "expect_exit": [0, 1]}),
            )
            .await?;
        assert_eq!(applied.outputs["exit_code"], json!(1));
        Ok(())
    }

    #[tokio::test]
    async fn the_step_timeout_kills_the_command() {
        let mut context = local_step(false);
        context.timeout = Some(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let outcome = HostExec::new()
            .apply(&context, json!({"argv": ["sleep", "30"]}))
            .await;
        assert!(
            matches!(&outcome, Err(ActionError::Failed { message }) if message.contains("timed out after 300ms")),
            "{outcome:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_dry_run_refuses_a_write_command_and_runs_a_read_only_one() -> TestResult {
        let directory = tempfile::tempdir()?;
        let marker = directory.path().join("touched");
        let outcome = HostExec::new()
            .apply(
                &local_step(true),
                json!({"argv": ["touch", marker.display().to_string()]}),
            )
            .await;
        assert!(
            matches!(&outcome, Err(ActionError::DryRunWrite { what }) if what.contains("touch")),
            "{outcome:?}"
        );
        assert!(!marker.exists(), "the dry run ran a write command");

        let applied = HostExec::new()
            .apply(
                &local_step(true),
                json!({"argv": ["echo", "hi"], "read_only": true}),
            )
            .await?;
        assert_eq!(applied.outputs["stdout"], json!("hi\n"));
        Ok(())
    }

    #[tokio::test]
    async fn plan_names_the_command_without_running_it() -> TestResult {
        let directory = tempfile::tempdir()?;
        let marker = directory.path().join("touched");
        let command = format!("touch {}", marker.display());
        let change = HostExec::new()
            .plan(&local_step(true), json!({"command": command}))
            .await?;
        assert_eq!(change, Change::unknown(format!("would run: {command}")));
        assert!(!marker.exists());
        Ok(())
    }

    #[tokio::test]
    async fn an_ssh_host_that_refuses_fails_the_step_naming_it() -> Result<(), std::io::Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut context = local_step(false);
        if let StepTarget::Host(host) = &mut context.target {
            host.transport = HostTransport::Ssh;
            host.port = port;
        }
        let outcome = HostExec::new()
            .apply(&context, json!({"argv": ["true"]}))
            .await;
        assert!(
            matches!(&outcome, Err(ActionError::Failed { message, .. })
                if message.contains("host `me` refused the connection") && message.contains(&port.to_string())),
            "{outcome:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn needs_exactly_one_of_argv_and_command() {
        for arguments in [
            json!({}),
            json!({"argv": ["true"], "command": "true"}),
            json!({"argv": []}),
        ] {
            let outcome = HostExec::new()
                .apply(&local_step(false), arguments.clone())
                .await;
            assert!(
                matches!(outcome, Err(ActionError::InvalidArguments { .. })),
                "{arguments}: {outcome:?}"
            );
        }
    }
}
