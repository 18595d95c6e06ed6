//! The live view's status line: how far the run is, the change window's countdown, and the
//! time left estimated from earlier runs. Pure formatting, so it is tested without a terminal.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use runsheet_engine::model::{Playbook, StepKind};
use runsheet_engine::run::window::{History, Window, percentile};

/// Under this much time left, the window's countdown is highlighted.
pub const WINDOW_WARNING: Duration = Duration::from_secs(10 * 60);

/// What earlier runs of the playbook say about this one.
#[derive(Debug, Clone, Default)]
pub struct Outlook {
    /// Median working time of the earlier runs that succeeded.
    pub typical: Option<Duration>,
    /// How many earlier successful runs that median comes from.
    pub runs: usize,
    /// Median duration of each step path in earlier runs.
    pub steps: HashMap<String, Duration>,
    /// The gate of each approval step path whose `gate:` is written literally.
    pub gates: HashMap<String, String>,
}

impl Outlook {
    /// The outlook from the earlier runs' durations and the playbook's approval steps.
    pub fn new(history: &History, playbook: &Playbook) -> Outlook {
        let runs = history.run_durations();
        let steps = history
            .paths()
            .filter_map(|path| {
                let ms = percentile(history.samples(path), 50)?;
                Some((path.to_owned(), Duration::from_millis(ms)))
            })
            .collect();
        let gates = playbook
            .all_steps()
            .into_iter()
            .filter_map(|step| match &step.kind {
                StepKind::Action { action, with } if action.value == "approval" => {
                    let gate = with.as_ref()?.get("gate")?.as_str()?;
                    (!gate.contains("{{")).then(|| (step.path.clone(), gate.to_owned()))
                }
                _ => None,
            })
            .collect();
        Outlook {
            typical: percentile(runs, 50).map(Duration::from_millis),
            runs: runs.len(),
            steps,
            gates,
        }
    }

    /// The gate an approval step (by runtime id) asks at: its literal `gate:`, else the
    /// default, its id without scope.
    pub fn gate(&self, step: &str) -> String {
        let path = path_of(step);
        self.gates
            .get(&path)
            .cloned()
            .unwrap_or_else(|| path.rsplit('.').next().unwrap_or(&path).to_owned())
    }

    /// The median duration of a step (by runtime id) in earlier runs.
    pub fn usual(&self, step: &str) -> Option<Duration> {
        self.steps.get(&path_of(step)).copied()
    }
}

/// A runtime id's playbook path: `upgrade[dp1].drain` gives `upgrade.drain`.
pub fn path_of(step: &str) -> String {
    let mut path = String::with_capacity(step.len());
    let mut depth = 0usize;
    for c in step.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => path.push(c),
            _ => {}
        }
    }
    path
}

/// How far a run is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Steps declared.
    pub total: usize,
    /// Declared steps finished (succeeded, failed, skipped or restored).
    pub done: usize,
    /// Steps running now (not counting groups).
    pub running: usize,
    /// Steps that failed.
    pub failed: usize,
    /// Gates asking now.
    pub gates: Vec<String>,
    /// During a rollback: steps undone (or failed to undo) and steps to undo.
    pub rollback: Option<(usize, usize)>,
    /// Whether earlier runs may estimate the time left (not for dry runs, resumes, rollbacks).
    pub estimate: bool,
}

/// ANSI colours, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paint {
    /// Whether colour codes are written.
    pub on: bool,
}

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\u{1b}[{code}m{text}\u{1b}[0m")
        } else {
            text.to_owned()
        }
    }

    /// Green: it went well.
    pub fn ok(self, text: &str) -> String {
        self.wrap("32", text)
    }

    /// Bold red: it failed.
    pub fn bad(self, text: &str) -> String {
        self.wrap("1;31", text)
    }

    /// Yellow: look at it.
    pub fn warn(self, text: &str) -> String {
        self.wrap("33", text)
    }
}

/// The status line: counts, window countdown and estimate, separated by ` · `.
pub fn status_line(
    counts: &Counts,
    elapsed: Duration,
    now: Timestamp,
    window: Option<&Window>,
    outlook: &Outlook,
    paint: Paint,
) -> String {
    let mut parts = vec![format!(
        "{}/{} done",
        counts.done.min(counts.total),
        counts.total
    )];
    if counts.running > 0 {
        parts.push(format!("{} running", counts.running));
    }
    if counts.failed > 0 {
        parts.push(paint.bad(&format!("{} failed", counts.failed)));
    }
    for gate in &counts.gates {
        parts.push(paint.warn(&format!("waiting on gate `{gate}`")));
    }
    if let Some((undone, of)) = counts.rollback {
        parts.push(paint.warn(&format!("rolling back: {undone}/{of} undone")));
    }
    if let Some(window) = window {
        parts.push(window_note(window, now, paint));
    }
    if counts.estimate
        && counts.rollback.is_none()
        && let Some(note) = estimate_note(elapsed, outlook, paint)
    {
        parts.push(note);
    }
    parts.join(" · ")
}

/// The window's countdown at `now`.
pub fn window_note(window: &Window, now: Timestamp, paint: Paint) -> String {
    if now < window.start {
        let wait = millis_between(now, window.start);
        return paint.warn(&format!("window opens in {}", short(wait)));
    }
    match window.left_at(now) {
        Some(left) if left < WINDOW_WARNING => {
            paint.warn(&format!("window closes in {}", short(left)))
        }
        Some(left) => format!("window closes in {}", short(left)),
        None => paint.bad("window closed"),
    }
}

/// The time left by the earlier runs' median, none without earlier runs.
pub fn estimate_note(elapsed: Duration, outlook: &Outlook, paint: Paint) -> Option<String> {
    let typical = outlook.typical?;
    let basis = format!(
        "typical run {}, {} earlier run{}",
        short(typical),
        outlook.runs,
        if outlook.runs == 1 { "" } else { "s" }
    );
    let left = typical.saturating_sub(elapsed);
    let over = elapsed.saturating_sub(typical);
    Some(if left.as_secs() > 0 {
        format!("about {} left ({basis})", rough(left))
    } else if over.as_secs() > 0 {
        paint.warn(&format!(
            "over the typical time by {} ({basis})",
            rough(over)
        ))
    } else {
        format!("about at the typical time ({basis})")
    })
}

fn millis_between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::from_millis(u64::try_from(to.as_millisecond() - from.as_millisecond()).unwrap_or(0))
}

/// A duration for a countdown: `45s`, `9m05s`, `1h02m`.
pub fn short(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// A duration for an estimate, to the minute once over one: `45s`, `3m`, `1h02m`.
pub fn rough(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", (secs + 30) / 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const PLAIN: Paint = Paint { on: false };

    fn at(text: &str) -> Result<Timestamp, jiff::Error> {
        text.parse()
    }

    fn outlook(typical_secs: u64, runs: usize) -> Outlook {
        Outlook {
            typical: Some(Duration::from_secs(typical_secs)),
            runs,
            ..Outlook::default()
        }
    }

    fn counts() -> Counts {
        Counts {
            total: 7,
            done: 3,
            running: 1,
            estimate: true,
            ..Counts::default()
        }
    }

    #[test]
    fn the_status_line_has_counts_countdown_and_estimate() -> TestResult {
        let window = Window::parse("2026-11-24T22:00Z/2026-11-25T02:00Z")?;
        let now = at("2026-11-25T00:57:30Z")?;
        let line = status_line(
            &counts(),
            Duration::from_secs(132),
            now,
            Some(&window),
            &outlook(312, 4),
            PLAIN,
        );
        assert_eq!(
            line,
            "3/7 done · 1 running · window closes in 1h02m · about 3m left (typical run 5m12s, 4 earlier runs)"
        );
        Ok(())
    }

    #[test]
    fn without_window_or_history_only_counts_show() -> TestResult {
        let line = status_line(
            &counts(),
            Duration::from_secs(5),
            at("2026-11-25T00:00Z")?,
            None,
            &Outlook::default(),
            PLAIN,
        );
        assert_eq!(line, "3/7 done · 1 running");
        Ok(())
    }

    #[test]
    fn failures_gates_and_rollback_show_and_the_estimate_stops_during_rollback() -> TestResult {
        let mut counts = counts();
        counts.failed = 1;
        counts.running = 0;
        counts.gates = vec!["go-prod".into()];
        counts.rollback = Some((1, 3));
        let line = status_line(
            &counts,
            Duration::from_secs(10),
            at("2026-11-25T00:00Z")?,
            None,
            &outlook(600, 2),
            PLAIN,
        );
        assert_eq!(
            line,
            "3/7 done · 1 failed · waiting on gate `go-prod` · rolling back: 1/3 undone"
        );
        Ok(())
    }

    #[test]
    fn the_countdown_warns_near_the_end_and_says_when_closed_or_not_open() -> TestResult {
        let window = Window::parse("2026-11-24T22:00Z/2026-11-25T02:00Z")?;
        let colour = Paint { on: true };
        assert_eq!(
            window_note(&window, at("2026-11-25T01:50:55Z")?, PLAIN),
            "window closes in 9m05s"
        );
        assert_eq!(
            window_note(&window, at("2026-11-25T01:50:55Z")?, colour),
            "\u{1b}[33mwindow closes in 9m05s\u{1b}[0m"
        );
        assert_eq!(
            window_note(&window, at("2026-11-25T01:00Z")?, colour),
            "window closes in 1h00m"
        );
        assert_eq!(
            window_note(&window, at("2026-11-25T02:00Z")?, PLAIN),
            "window closed"
        );
        assert_eq!(
            window_note(&window, at("2026-11-24T21:59:20Z")?, PLAIN),
            "window opens in 40s"
        );
        Ok(())
    }

    #[test]
    fn the_estimate_says_when_the_run_is_over_its_typical_time() {
        assert_eq!(
            estimate_note(Duration::from_secs(352), &outlook(312, 1), PLAIN).as_deref(),
            Some("over the typical time by 40s (typical run 5m12s, 1 earlier run)")
        );
        assert_eq!(
            estimate_note(Duration::from_secs(2), &outlook(47, 3), PLAIN).as_deref(),
            Some("about 45s left (typical run 47s, 3 earlier runs)")
        );
        assert_eq!(
            estimate_note(Duration::ZERO, &Outlook::default(), PLAIN),
            None
        );
    }

    #[test]
    fn dry_runs_have_no_estimate() -> TestResult {
        let mut counts = counts();
        counts.estimate = false;
        let line = status_line(
            &counts,
            Duration::ZERO,
            at("2026-11-25T00:00Z")?,
            None,
            &outlook(60, 2),
            PLAIN,
        );
        assert_eq!(line, "3/7 done · 1 running");
        Ok(())
    }

    #[test]
    fn runtime_ids_map_to_paths_and_gates() {
        assert_eq!(path_of("upgrade[dp1].drain"), "upgrade.drain");
        assert_eq!(path_of("a[x[1]].b"), "a.b");
        let mut outlook = Outlook::default();
        outlook.gates.insert("upgrade.go".into(), "go-prod".into());
        assert_eq!(outlook.gate("upgrade[dp1].go"), "go-prod");
        assert_eq!(outlook.gate("checks.confirm"), "confirm");
        outlook
            .steps
            .insert("upgrade.drain".into(), Duration::from_secs(3));
        assert_eq!(
            outlook.usual("upgrade[dp2].drain"),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn durations_read_as_countdowns_and_estimates() {
        assert_eq!(short(Duration::from_secs(45)), "45s");
        assert_eq!(short(Duration::from_secs(312)), "5m12s");
        assert_eq!(short(Duration::from_secs(3720)), "1h02m");
        assert_eq!(rough(Duration::from_secs(180)), "3m");
        assert_eq!(rough(Duration::from_secs(200)), "3m");
        assert_eq!(rough(Duration::from_secs(7260)), "2h01m");
    }
}
