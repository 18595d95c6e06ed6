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

/// Durations of each step (by its path in the playbook) over earlier runs of one
/// playbook, and of the runs that succeeded as a whole: the figures the window
/// check and `runsheet runs --stats` use.
#[derive(Debug, Clone, Default)]
pub struct History {
    durations: HashMap<String, Vec<u64>>,
    /// Step paths in the order they were first seen (newest run first).
    order: Vec<String>,
    /// Working time of each run that succeeded, in milliseconds.
    run_durations: Vec<u64>,
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
    /// Adds the durations one run's journal records: each step that succeeded
    /// (dry runs record none), and the run's working time when it succeeded.
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
            self.record(path, ms);
            counted = true;
        }
        self.runs += usize::from(counted);
        if let Some(ms) = working_time(records) {
            self.run_durations.push(ms);
        }
    }

    /// Number of earlier runs that recorded durations.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// The p95 (nearest rank) duration of a step path, if it ever ran.
    pub fn expected(&self, path: &str) -> Option<Expected> {
        let samples = self.samples(path);
        Some(Expected {
            p95: Duration::from_millis(percentile(samples, 95)?),
            samples: samples.len(),
        })
    }

    /// The recorded durations of a step path, in milliseconds.
    pub fn samples(&self, path: &str) -> &[u64] {
        self.durations.get(path).map_or(&[], Vec::as_slice)
    }

    /// The step paths with durations, in the order they were first seen.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// The working time of each run that succeeded, in milliseconds.
    pub fn run_durations(&self) -> &[u64] {
        &self.run_durations
    }

    /// Adds one duration (tests, and steps finished in this run).
    pub fn record(&mut self, path: &str, ms: u64) {
        let samples = self.durations.entry(path.to_owned()).or_default();
        if samples.is_empty() {
            self.order.push(path.to_owned());
        }
        samples.push(ms);
    }
}

/// The `pct` percentile (nearest rank) of `samples`, none when there are none.
pub fn percentile(samples: &[u64], pct: usize) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (sorted.len() * pct).div_ceil(100).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// A run's working time when it ended well: each start (or resume) to its end,
/// summed, so time paused at a gate between two resumes does not count.
pub fn working_time(records: &[Record]) -> Option<u64> {
    let last = records.iter().rev().find(|r| r.kind() == "run_finished")?;
    if last.str("outcome") != Some("succeeded") {
        return None;
    }
    let mut total = 0;
    let mut started: Option<&Record> = None;
    let mut previous: Option<&Record> = None;
    for record in records {
        match record.kind() {
            "run_started" => {
                if let (Some(start), Some(end)) = (started, previous) {
                    // A segment cut short by a crash: up to its last record.
                    total += between(start, end);
                }
                started = Some(record);
            }
            "run_finished" => {
                if let Some(start) = started.take() {
                    total += record
                        .fields
                        .get("elapsed_ms")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or_else(|| between(start, record));
                }
            }
            _ => {}
        }
        previous = Some(record);
    }
    Some(total)
}

/// Milliseconds from one record's `at` to another's (0 when either does not parse).
fn between(from: &Record, to: &Record) -> u64 {
    let at = |r: &Record| r.str("at").and_then(|t| t.parse::<Timestamp>().ok());
    match (at(from), at(to)) {
        (Some(a), Some(b)) => u64::try_from(b.as_millisecond() - a.as_millisecond()).unwrap_or(0),
        _ => 0,
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

    fn record(at: &str, kind: &str, extra: serde_json::Value) -> Record {
        let mut fields = serde_json::Map::new();
        fields.insert("at".into(), at.into());
        fields.insert("kind".into(), kind.into());
        if let serde_json::Value::Object(map) = extra {
            fields.extend(map);
        }
        Record { line: 0, fields }
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[40, 10, 30, 20], 50), Some(20));
        assert_eq!(percentile(&[40, 10, 30, 20], 95), Some(40));
        assert_eq!(percentile(&[7], 50), Some(7));
    }

    #[test]
    fn working_time_sums_segments_and_skips_time_paused_between() {
        use serde_json::json;
        let records = [
            record("2026-11-26T22:00:00.000Z", "run_started", json!({})),
            record("2026-11-26T22:00:05.000Z", "run_finished", json!({"outcome": "paused"})),
            record("2026-11-26T23:00:00.000Z", "run_started", json!({"resumed": true})),
            record("2026-11-26T23:00:02.000Z", "run_finished", json!({"outcome": "succeeded", "elapsed_ms": 1500})),
        ];
        assert_eq!(working_time(&records), Some(6500));
        let failed = [
            record("2026-11-26T22:00:00.000Z", "run_started", json!({})),
            record("2026-11-26T22:00:05.000Z", "run_finished", json!({"outcome": "rolled_back"})),
        ];
        assert_eq!(working_time(&failed), None);
    }
}
