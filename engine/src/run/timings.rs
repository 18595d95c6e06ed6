//! Step and run durations of earlier runs as p50/p95 figures, the same ones the
//! change-window check uses: what `runsheet runs --stats` prints so an engineer
//! can size a change window from a rehearsal.

use serde::Serialize;

use super::store::Store;
use super::window::{History, percentile};

/// The duration figures of one playbook over earlier runs.
#[derive(Debug, Clone, Serialize)]
pub struct Timings {
    /// Playbook name.
    pub playbook: String,
    /// The environment the runs were filtered on, if any.
    pub environment: Option<String>,
    /// Runs that recorded step durations.
    pub runs: usize,
    /// The working time of the runs that succeeded, when any did.
    pub run: Option<Figures>,
    /// Each step path that succeeded at least once, in the order first seen.
    pub steps: Vec<StepFigures>,
}

/// p50 and p95 (nearest rank) of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// How many durations.
    pub samples: usize,
    /// Median, in milliseconds.
    pub p50_ms: u64,
    /// 95th percentile, in milliseconds.
    pub p95_ms: u64,
}

/// The figures of one step path (`upgrade.install` counts every item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepFigures {
    /// The step's path in the playbook.
    pub path: String,
    /// How many durations.
    pub samples: usize,
    /// Median, in milliseconds.
    pub p50_ms: u64,
    /// 95th percentile, in milliseconds (what the window check expects).
    pub p95_ms: u64,
}

impl Figures {
    /// The figures of `samples`, none when there are none.
    pub fn of(samples: &[u64]) -> Option<Figures> {
        Some(Figures {
            samples: samples.len(),
            p50_ms: percentile(samples, 50)?,
            p95_ms: percentile(samples, 95)?,
        })
    }
}

impl Timings {
    /// Reads the runs of `playbook` (against `environment`, when given) from the state directory.
    pub fn load(state: &dyn Store, playbook: &str, environment: Option<&str>) -> Timings {
        let history = state.history(playbook, environment);
        Timings::from_history(&history, playbook, environment)
    }

    /// The figures of a history already read.
    pub fn from_history(history: &History, playbook: &str, environment: Option<&str>) -> Timings {
        let steps = history
            .paths()
            .filter_map(|path| {
                let figures = Figures::of(history.samples(path))?;
                Some(StepFigures {
                    path: path.to_owned(),
                    samples: figures.samples,
                    p50_ms: figures.p50_ms,
                    p95_ms: figures.p95_ms,
                })
            })
            .collect();
        Timings {
            playbook: playbook.to_owned(),
            environment: environment.map(str::to_owned),
            runs: history.runs(),
            run: Figures::of(history.run_durations()),
            steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_agree_with_the_window_check() {
        let mut history = History::default();
        for ms in [300, 100, 200, 1000] {
            history.record("upgrade.install", ms);
        }
        history.record("snapshot", 50);
        let timings = Timings::from_history(&history, "upgrade", Some("uat"));
        assert_eq!(timings.steps.len(), 2);
        assert_eq!(timings.steps[0].path, "upgrade.install");
        assert_eq!(
            (timings.steps[0].p50_ms, timings.steps[0].p95_ms),
            (200, 1000)
        );
        let expected = history
            .expected("upgrade.install")
            .map(|e| e.p95.as_millis() as u64);
        assert_eq!(expected, Some(timings.steps[0].p95_ms));
        assert_eq!(timings.steps[1].samples, 1);
        assert!(timings.run.is_none());
    }
}
