//! What the terminal allows: prompts, progress bars and colour, or plain
//! timestamped lines for CI systems and pipes.

use std::io::IsTerminal as _;

use crate::ci::in_ci;

/// Whether colour is allowed at all (`NO_COLOR` set to anything non-empty forbids it).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        && !in_ci()
}

/// Whether a person sits at the terminal: questions (confirmation, approval gates) may be
/// asked.
///
/// Needs stdin and stderr (where questions go) on a terminal and no CI marker; stdout may
/// be piped (`runsheet run ... | tee run.log` still asks before production). Otherwise a
/// question is never asked: an approval gate pauses.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        && !in_ci()
}

/// Whether live output (progress bars, cursor movement) may be drawn.
pub fn live_output() -> bool {
    std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        && !in_ci()
}
