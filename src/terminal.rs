//! What the terminal allows: prompts, progress bars and colour, or plain
//! timestamped lines for CI systems and pipes.

use std::io::IsTerminal as _;

/// Variables whose presence means a CI/CD system runs the command.
///
/// `DRONE` and `HARNESS_*` are set by Harness CI stages, `CI` by most systems
/// (on Harness only with `CI_POPULATE_CI_VARIABLE`).
pub const CI_VARIABLES: [&str; 7] = [
    "CI",
    "DRONE",
    "HARNESS_BUILD_ID",
    "HARNESS_EXECUTION_ID",
    "HARNESS_PIPELINE_ID",
    "BUILD_ID",
    "GITHUB_ACTIONS",
];

/// Whether a variable's value turns a marker on (`CI=false` or `CI=0` does not).
fn set(value: Option<std::ffi::OsString>) -> bool {
    value.is_some_and(|v| {
        let text = v.to_string_lossy();
        !matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off"
        )
    })
}

/// Whether the command runs inside a CI system.
pub fn in_ci() -> bool {
    CI_VARIABLES.iter().any(|name| set(std::env::var_os(name)))
}

/// Whether colour is allowed at all (`NO_COLOR` set to anything non-empty forbids it).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        && !in_ci()
}

/// Whether a person sits at the terminal: prompts may be asked and progress drawn.
///
/// Needs stdin, stdout and stderr on a terminal and no CI marker; otherwise the
/// output is plain lines and a question is never asked (an approval gate pauses).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && live_output()
}

/// Whether live output (progress bars, cursor movement) may be drawn.
pub fn live_output() -> bool {
    std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        && !in_ci()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn false_like_values_do_not_mark_ci() {
        for value in ["", "0", "false", "FALSE", "no", " off "] {
            assert!(!set(Some(value.into())), "{value:?}");
        }
        for value in ["true", "1", "yes", "harness"] {
            assert!(set(Some(value.into())), "{value:?}");
        }
        assert!(!set(None));
    }
}
