//! Small text helpers shared by the report formats.

use std::borrow::Cow;

use crate::run::event::Outcome;

/// The words for how a run ended; a summary without an outcome did not finish.
pub(super) fn outcome_text(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(outcome) => outcome.describe(),
        None => "did not finish",
    }
}

/// A duration for humans: `850 ms`, `4.2 s`, `3 min 7 s`, `1 h 12 min`.
pub(super) fn duration(milliseconds: u64) -> String {
    const MINUTE: u64 = 60_000;
    const HOUR: u64 = 60 * MINUTE;
    if milliseconds < 1_000 {
        format!("{milliseconds} ms")
    } else if milliseconds < MINUTE {
        format!("{}.{} s", milliseconds / 1_000, milliseconds % 1_000 / 100)
    } else if milliseconds < HOUR {
        format!(
            "{} min {} s",
            milliseconds / MINUTE,
            milliseconds % MINUTE / 1_000
        )
    } else {
        format!(
            "{} h {} min",
            milliseconds / HOUR,
            milliseconds % HOUR / MINUTE
        )
    }
}

/// The text cut to `limit` characters, saying how many were left out.
pub(super) fn cap(text: &str, limit: usize) -> Cow<'_, str> {
    match text.char_indices().nth(limit) {
        None => Cow::Borrowed(text),
        Some((end, _)) => {
            let left_out = text[end..].chars().count();
            Cow::Owned(format!(
                "{}… ({left_out} characters left out)",
                &text[..end]
            ))
        }
    }
}

/// The first line of a text.
pub(super) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(4_250), "4.2 s");
        assert_eq!(duration(187_000), "3 min 7 s");
        assert_eq!(duration(4_320_000), "1 h 12 min");
    }

    #[test]
    fn cap_keeps_short_text_and_counts_what_it_cuts() {
        assert_eq!(cap("short", 5), "short");
        assert_eq!(cap("ééééé-tail", 5), "ééééé… (5 characters left out)");
    }

    #[test]
    fn unfinished_run_is_named() {
        assert_eq!(outcome_text(None), "did not finish");
        assert_eq!(
            outcome_text(Some(Outcome::RolledBack)),
            "failed and rolled back"
        );
    }

    #[test]
    fn first_line_of_multiline_and_empty_text() {
        assert_eq!(first_line("HTTP 409\nbody"), "HTTP 409");
        assert_eq!(first_line(""), "");
    }
}
