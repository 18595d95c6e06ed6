//! Change windows, and the step durations of earlier runs used to decide
//! whether a write still fits in the time left.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

use super::journal::Record;

/// A change window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// When writes may start.
    pub start: Timestamp,
    /// When writes must be over.
    pub end: Timestamp,
}

/// Why a window does not parse.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("window `{text}`: {message}")]
pub struct WindowError {
    /// As given.
    pub text: String,
    /// Why.
    pub message: String,
}

impl Window {
    /// Parses `START/END` in RFC 3339 (`2026-11-24T22:00Z/2026-11-25T02:00Z`).
    pub fn parse(text: &str) -> Result<Window, WindowError> {
        let error = |message: String| WindowError {
            text: text.to_owned(),
            message,
        };
        let (start, end) = text
            .split_once('/')
            .ok_or_else(|| error("expected START/END, two RFC 3339 times with a `/` between".into()))?;
        let parse = |part: &str, which: &str| {
            part.trim().parse::<Timestamp>().map_err(|e| {
                error(format!(
                    "{which} `{part}` is not an RFC 3339 time with a zone (e.g. 2026-11-24T22:00Z): {e}"
                ))
            })
        };
        let window = Window {
            start: parse(start, "start")?,
            end: parse(end, "end")?,
        };
        if window.end <= window.start {
            return Err(error("the end is not after the start".into()));
        }
        Ok(window)
    }

    /// Time left at `now`, or `None` outside the window.
    pub fn left_at(&self, now: Timestamp) -> Option<Duration> {
        if now < self.start || now >= self.end {
            return None;
        }
        let left = self.end.as_millisecond() - now.as_millisecond();
        Some(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.start, self.end)
    }
}

/// Durations of each step (by its path in the playbook) over earlier runs of one playbook.
#[derive(Debug, Clone, Default)]
pub struct History {
    durations: HashMap<String, Vec<u64>>,
    runs: usize,
}

/// An expected duration and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// The p95 duration.
    pub p95: Duration,
    /// How many recorded durations it comes from.
    pub samples: usize,
}

impl History {
    /// Adds the succeeded steps of one earlier run, from its journal records.
    pub fn add_run(&mut self, records: &[Record]) {
        let mut counted = false;
        for record in records {
            if record.kind() != "step_succeeded" || record.fields.get("dry_run").is_some() {
                continue;
            }
            let (Some(path), Some(ms)) = (
                record.str("path"),
                record.fields.get("elapsed_ms").and_then(serde_json::Value::as_u64),
            ) else {
                continue;
            };
            self.durations.entry(path.to_owned()).or_default().push(ms);
            counted = true;
        }
        self.runs += usize::from(counted);
    }

    /// Number of earlier runs that recorded durations.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// The p95 (nearest rank) duration of a step path, if it ever ran.
    pub fn expected(&self, path: &str) -> Option<Expected> {
        let mut samples = self.durations.get(path)?.clone();
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = (samples.len() * 95).div_ceil(100).max(1);
        Some(Expected {
            p95: Duration::from_millis(samples[rank - 1]),
            samples: samples.len(),
        })
    }

    /// Adds one duration (tests, and steps finished in this run).
    pub fn record(&mut self, path: &str, ms: u64) {
        self.durations.entry(path.to_owned()).or_default().push(ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_say_what_is_wrong() -> Result<(), WindowError> {
        let window = Window::parse("2026-11-24T22:00Z/2026-11-25T02:00Z")?;
        let inside: Timestamp = "2026-11-25T01:30:00Z".parse().map_err(|_| WindowError {
            text: String::new(),
            message: String::new(),
        })?;
        assert_eq!(window.left_at(inside), Some(Duration::from_secs(1800)));
        assert_eq!(window.left_at(window.end), None);
        assert!(Window::parse("2026-11-24T22:00Z").is_err_and(|e| e.message.contains("START/END")));
        assert!(Window::parse("2026-11-25T02:00Z/2026-11-24T22:00Z").is_err_and(|e| e.message.contains("not after")));
        assert!(Window::parse("tonight/2026-11-24T22:00Z").is_err_and(|e| e.message.contains("start `tonight`")));
        Ok(())
    }

    #[test]
    fn p95_is_the_nearest_rank() {
        let mut history = History::default();
        for ms in 1..=100 {
            history.record("upgrade.install", ms);
        }
        assert_eq!(history.expected("upgrade.install").map(|e| e.p95), Some(Duration::from_millis(95)));
        history.record("one", 7);
        assert_eq!(history.expected("one").map(|e| (e.p95.as_millis(), e.samples)), Some((7, 1)));
        assert!(history.expected("never").is_none());
    }
}
