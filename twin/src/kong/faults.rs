//! Faults injected through `POST /_twin/faults`: what each fault body means, which requests
//! it hits and what is left of it. Main types: [`FaultSpec`] (a parsed body) and [`Faults`]
//! (the active faults, consulted once per Admin API request).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The fault kinds a body may set, one per body.
const KINDS: [&str; 7] = [
    "fail_nth_write",
    "drop_nth_write",
    "delay_nth_write",
    "latency_ms",
    "refuse_connections_s",
    "database_unreachable",
    "config_busy",
];

/// Longest injectable latency (10 minutes).
const MAX_LATENCY_MS: u64 = 600_000;

/// Longest connection refusal (1 hour).
const MAX_REFUSAL_S: f64 = 3600.0;

/// One parsed `POST /_twin/faults` body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FaultSpec {
    /// `{"fail_nth_write": n, "status": s, ...}`: the write answers `status`, nothing changes.
    Fail {
        /// When and how often it fires.
        schedule: ScheduleSpec,
        /// The HTTP status answered.
        status: u16,
    },
    /// `{"drop_nth_write": n, "when": "before"|"after", ...}`: the connection is closed.
    Drop {
        /// When and how often it fires.
        schedule: ScheduleSpec,
        /// Whether the write is applied before the connection is closed.
        when: When,
    },
    /// `{"delay_nth_write": n, "delay_ms": ms, ...}`: the write is applied `delay_ms` late,
    /// whether or not the client still waits for the answer.
    Delay {
        /// When and how often it fires.
        schedule: ScheduleSpec,
        /// How late the write is applied and answered.
        delay_ms: u64,
    },
    /// `{"latency_ms": ms, "probability": p, "writes_only": b, "path_prefix": s}`.
    Latency {
        /// Added delay.
        delay_ms: u64,
        /// Chance that an eligible request is delayed.
        probability: f64,
        /// RNG seed, for a reproducible sequence.
        seed: Option<u64>,
        /// Delay writes only.
        writes_only: bool,
        /// Delay only paths starting with this.
        path_prefix: Option<String>,
    },
    /// `{"refuse_connections_s": s}`: the listener is closed for that long.
    Refuse {
        /// How long connections are refused.
        duration: Duration,
    },
    /// `{"database_unreachable": b}`.
    DatabaseUnreachable(bool),
    /// `{"config_busy": b}`.
    ConfigBusy(bool),
}

/// When a write fault fires: from the `nth` write on, with `probability`, at most `times`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScheduleSpec {
    /// The first eligible write, counted from now (1 = the next write).
    pub(crate) nth: u64,
    /// Chance that an eligible write is hit; `None` means a one-shot fault on the nth write.
    pub(crate) probability: Option<f64>,
    /// RNG seed, for a reproducible sequence.
    pub(crate) seed: Option<u64>,
    /// How many writes it hits at most (`None`: until cleared).
    pub(crate) times: Option<u64>,
}

/// When a dropped write's connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// Before the write is applied: nothing changes.
    Before,
    /// After the write is applied: the change is kept but never acknowledged.
    After,
}

impl When {
    /// The JSON name.
    fn name(self) -> &'static str {
        match self {
            Self::Before => "before",
            Self::After => "after",
        }
    }
}

/// Parses a `POST /_twin/faults` body; the error is the message of a 400.
pub(crate) fn parse(body: &Value) -> Result<FaultSpec, String> {
    let Value::Object(fields) = body else {
        return Err("expected a JSON object".to_owned());
    };
    let kinds: Vec<&str> = KINDS
        .into_iter()
        .filter(|kind| fields.contains_key(*kind))
        .collect();
    let [kind] = kinds.as_slice() else {
        return Err(format!("expected exactly one of {}", KINDS.join(", ")));
    };
    let allowed: &[&str] = match *kind {
        "fail_nth_write" => &["status", "probability", "seed", "times"],
        "drop_nth_write" => &["when", "probability", "seed", "times"],
        "delay_nth_write" => &["delay_ms", "probability", "seed", "times"],
        "latency_ms" => &["probability", "seed", "writes_only", "path_prefix"],
        _ => &[],
    };
    if let Some(unknown) = fields
        .keys()
        .find(|key| key.as_str() != *kind && !allowed.contains(&key.as_str()))
    {
        return Err(format!("unknown field '{unknown}' for {kind}"));
    }
    let value = &fields[*kind];
    match *kind {
        "fail_nth_write" => Ok(FaultSpec::Fail {
            schedule: schedule(value, fields)?,
            status: match fields.get("status") {
                None => 500,
                Some(status) => status
                    .as_u64()
                    .filter(|status| (400..=599).contains(status))
                    .and_then(|status| u16::try_from(status).ok())
                    .ok_or("status: expected an integer from 400 to 599")?,
            },
        }),
        "drop_nth_write" => Ok(FaultSpec::Drop {
            schedule: schedule(value, fields)?,
            when: match fields.get("when").map(Value::as_str) {
                None | Some(Some("before")) => When::Before,
                Some(Some("after")) => When::After,
                Some(_) => return Err("when: expected \"before\" or \"after\"".to_owned()),
            },
        }),
        "delay_nth_write" => Ok(FaultSpec::Delay {
            schedule: schedule(value, fields)?,
            delay_ms: fields
                .get("delay_ms")
                .and_then(Value::as_u64)
                .filter(|delay| (1..=MAX_LATENCY_MS).contains(delay))
                .ok_or(format!(
                    "delay_ms: expected an integer from 1 to {MAX_LATENCY_MS}"
                ))?,
        }),
        "latency_ms" => Ok(FaultSpec::Latency {
            delay_ms: value
                .as_u64()
                .filter(|delay| *delay <= MAX_LATENCY_MS)
                .ok_or(format!(
                    "latency_ms: expected an integer from 0 to {MAX_LATENCY_MS}"
                ))?,
            probability: probability(fields)?.unwrap_or(1.0),
            seed: seed(fields)?,
            writes_only: match fields.get("writes_only") {
                None => false,
                Some(flag) => flag.as_bool().ok_or("writes_only: expected a boolean")?,
            },
            path_prefix: match fields.get("path_prefix") {
                None | Some(Value::Null) => None,
                Some(Value::String(prefix)) if prefix.starts_with('/') => Some(prefix.clone()),
                Some(_) => return Err("path_prefix: expected a path starting with /".to_owned()),
            },
        }),
        "refuse_connections_s" => value
            .as_f64()
            .filter(|seconds| *seconds > 0.0 && *seconds <= MAX_REFUSAL_S)
            .map(|seconds| FaultSpec::Refuse {
                duration: Duration::from_secs_f64(seconds),
            })
            .ok_or(format!(
                "refuse_connections_s: expected a number of seconds above 0, at most {MAX_REFUSAL_S}"
            )),
        "database_unreachable" => value
            .as_bool()
            .map(FaultSpec::DatabaseUnreachable)
            .ok_or_else(|| "database_unreachable: expected a boolean".to_owned()),
        _ => value
            .as_bool()
            .map(FaultSpec::ConfigBusy)
            .ok_or_else(|| "config_busy: expected a boolean".to_owned()),
    }
}

/// The schedule of a write fault whose ordinal is `nth`.
fn schedule(nth: &Value, fields: &Map<String, Value>) -> Result<ScheduleSpec, String> {
    Ok(ScheduleSpec {
        nth: nth
            .as_u64()
            .filter(|nth| *nth >= 1)
            .ok_or("expected a write number from 1")?,
        probability: probability(fields)?,
        seed: seed(fields)?,
        times: match fields.get("times") {
            None | Some(Value::Null) => None,
            Some(times) => Some(
                times
                    .as_u64()
                    .filter(|times| *times >= 1)
                    .ok_or("times: expected an integer from 1")?,
            ),
        },
    })
}

/// The optional `probability` (0 to 1).
fn probability(fields: &Map<String, Value>) -> Result<Option<f64>, String> {
    fields
        .get("probability")
        .map(|value| {
            value
                .as_f64()
                .filter(|probability| (0.0..=1.0).contains(probability))
                .ok_or_else(|| "probability: expected a number from 0 to 1".to_owned())
        })
        .transpose()
}

/// The optional `seed`.
fn seed(fields: &Map<String, Value>) -> Result<Option<u64>, String> {
    fields
        .get("seed")
        .map(|value| {
            value
                .as_u64()
                .ok_or_else(|| "seed: expected a non-negative integer".to_owned())
        })
        .transpose()
}

/// A small xorshift64* generator: reproducible with a seed, no dependency.
#[derive(Debug, Clone)]
pub(crate) struct XorShift {
    /// The generator state (never zero).
    state: u64,
}

impl XorShift {
    /// A generator from `seed`, or from the clock when `None`.
    pub(crate) fn new(seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos() as u64)
        });
        // Scramble so that small seeds (0, 1, 2) give unrelated sequences; zero is a fixed point.
        let state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        Self {
            state: if state == 0 {
                0x2545_F491_4F6C_DD1D
            } else {
                state
            },
        }
    }

    /// The next value in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let value = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (value >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether an event of `probability` happens (1 always, 0 never, without drawing).
    fn chance(&mut self, probability: f64) -> bool {
        if probability >= 1.0 {
            true
        } else if probability <= 0.0 {
            false
        } else {
            self.next_f64() < probability
        }
    }
}

/// An active write fault's schedule and what is left of it.
#[derive(Debug, Clone)]
struct Schedule {
    /// The settings as posted, with `nth` counted down to the next eligible write.
    spec: ScheduleSpec,
    /// Draws for `probability`.
    rng: XorShift,
}

impl Schedule {
    /// A schedule starting now.
    fn new(spec: ScheduleSpec) -> Self {
        Self {
            rng: XorShift::new(spec.seed),
            spec,
        }
    }

    /// Counts one write; whether it is hit.
    fn hit(&mut self) -> bool {
        if self.spec.nth > 1 {
            self.spec.nth -= 1;
            return false;
        }
        let hit = match self.spec.probability {
            None => true,
            Some(probability) => self.rng.chance(probability),
        };
        if hit && let Some(times) = &mut self.spec.times {
            *times = times.saturating_sub(1);
        }
        hit
    }

    /// Whether it can fire no more (a one-shot fault that fired, or `times` used up).
    fn spent(&self, fired: bool) -> bool {
        match (self.spec.probability, self.spec.times) {
            (_, Some(0)) => true,
            (None, None) => fired,
            _ => false,
        }
    }

    /// The `POST` fields that would recreate what is left.
    fn view(&self, kind: &str, body: &mut Map<String, Value>) {
        body.insert(kind.to_owned(), json!(self.spec.nth));
        if let Some(probability) = self.spec.probability {
            body.insert("probability".to_owned(), json!(probability));
        }
        if let Some(times) = self.spec.times {
            body.insert("times".to_owned(), json!(times));
        }
    }
}

/// An active latency fault.
#[derive(Debug, Clone)]
struct Latency {
    /// Added delay.
    delay: Duration,
    /// Chance that an eligible request is delayed.
    probability: f64,
    /// Delay writes only.
    writes_only: bool,
    /// Delay only paths starting with this.
    path_prefix: Option<String>,
    /// Draws for `probability`.
    rng: XorShift,
}

/// What the Admin API does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Serve it.
    Pass,
    /// Answer `status` without applying it.
    Fail(u16),
    /// Close the connection without answering, before (`Before`) or after applying it.
    Drop(When),
    /// Apply it and answer after this delay, even when the client has stopped waiting.
    Late(Duration),
    /// 500: the database is unreachable.
    DatabaseDown,
    /// 429 on `POST /config`.
    ConfigBusy,
}

/// What a request is, for the faults.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestKind<'a> {
    /// The path as requested.
    pub(crate) path: &'a str,
    /// A write on an entity endpoint or `/config`.
    pub(crate) write: bool,
    /// An entity endpoint (read or write).
    pub(crate) entity: bool,
    /// `POST /config`.
    pub(crate) config_post: bool,
}

/// The faults active on one twin (the refusal lives with the listener it closes).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// `fail_nth_write` and the status it answers.
    fail: Option<(Schedule, u16)>,
    /// `drop_nth_write` and when it closes the connection.
    drop: Option<(Schedule, When)>,
    /// `delay_nth_write` and how late the write is applied.
    late: Option<(Schedule, Duration)>,
    /// `latency_ms`.
    latency: Option<Latency>,
    /// `database_unreachable`.
    database_unreachable: bool,
    /// `config_busy`.
    config_busy: bool,
}

impl Faults {
    /// Activates `spec` (replacing an active fault of the same kind); `Refuse` is not kept here.
    pub(crate) fn set(&mut self, spec: FaultSpec) {
        match spec {
            FaultSpec::Fail { schedule, status } => {
                self.fail = Some((Schedule::new(schedule), status));
            }
            FaultSpec::Drop { schedule, when } => {
                self.drop = Some((Schedule::new(schedule), when));
            }
            FaultSpec::Delay { schedule, delay_ms } => {
                self.late = Some((Schedule::new(schedule), Duration::from_millis(delay_ms)));
            }
            FaultSpec::Latency {
                delay_ms,
                probability,
                seed,
                writes_only,
                path_prefix,
            } => {
                self.latency = Some(Latency {
                    delay: Duration::from_millis(delay_ms),
                    probability,
                    writes_only,
                    path_prefix,
                    rng: XorShift::new(seed),
                });
            }
            FaultSpec::Refuse { .. } => {}
            FaultSpec::DatabaseUnreachable(on) => self.database_unreachable = on,
            FaultSpec::ConfigBusy(on) => self.config_busy = on,
        }
    }

    /// Clears every fault.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Whether the database is reported unreachable.
    pub(crate) fn database_unreachable(&self) -> bool {
        self.database_unreachable
    }

    /// Decides the fate of one request (counting it against the write faults) and its delay.
    pub(crate) fn on_request(&mut self, request: RequestKind<'_>) -> (Action, Option<Duration>) {
        let delay = self.delay(request);
        if request.write {
            // Both schedules count every write, whichever fires.
            let dropped = self.drop.as_mut().map(|(schedule, when)| {
                let hit = schedule.hit();
                (hit, schedule.spent(hit), *when)
            });
            let failed = self.fail.as_mut().map(|(schedule, status)| {
                let hit = schedule.hit();
                (hit, schedule.spent(hit), *status)
            });
            let late = self.late.as_mut().map(|(schedule, late)| {
                let hit = schedule.hit();
                (hit, schedule.spent(hit), *late)
            });
            if dropped.is_some_and(|(_, spent, _)| spent) {
                self.drop = None;
            }
            if failed.is_some_and(|(_, spent, _)| spent) {
                self.fail = None;
            }
            if late.is_some_and(|(_, spent, _)| spent) {
                self.late = None;
            }
            if let Some((true, _, when)) = dropped {
                return (Action::Drop(when), delay);
            }
            if let Some((true, _, status)) = failed {
                return (Action::Fail(status), delay);
            }
            if let Some((true, _, late)) = late {
                return (Action::Late(late), delay);
            }
        }
        let action = if self.database_unreachable && request.entity {
            Action::DatabaseDown
        } else if self.config_busy && request.config_post {
            Action::ConfigBusy
        } else {
            Action::Pass
        };
        (action, delay)
    }

    /// The latency fault's delay for `request`, if it applies.
    fn delay(&mut self, request: RequestKind<'_>) -> Option<Duration> {
        let latency = self.latency.as_mut()?;
        let eligible = (!latency.writes_only || request.write)
            && latency
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| request.path.starts_with(prefix));
        (eligible && latency.rng.chance(latency.probability)).then_some(latency.delay)
    }

    /// The active faults, each as the `POST` body that would recreate what is left of it.
    pub(crate) fn view(&self) -> Vec<Value> {
        let mut faults = Vec::new();
        if let Some((schedule, status)) = &self.fail {
            let mut body = Map::new();
            schedule.view("fail_nth_write", &mut body);
            body.insert("status".to_owned(), json!(status));
            faults.push(Value::Object(body));
        }
        if let Some((schedule, when)) = &self.drop {
            let mut body = Map::new();
            schedule.view("drop_nth_write", &mut body);
            body.insert("when".to_owned(), json!(when.name()));
            faults.push(Value::Object(body));
        }
        if let Some((schedule, late)) = &self.late {
            let mut body = Map::new();
            schedule.view("delay_nth_write", &mut body);
            body.insert(
                "delay_ms".to_owned(),
                json!(u64::try_from(late.as_millis()).unwrap_or(u64::MAX)),
            );
            faults.push(Value::Object(body));
        }
        if let Some(latency) = &self.latency {
            faults.push(json!({
                "latency_ms": u64::try_from(latency.delay.as_millis()).unwrap_or(u64::MAX),
                "probability": latency.probability,
                "writes_only": latency.writes_only,
                "path_prefix": latency.path_prefix,
            }));
        }
        if self.database_unreachable {
            faults.push(json!({"database_unreachable": true}));
        }
        if self.config_busy {
            faults.push(json!({"config_busy": true}));
        }
        faults
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a valid body that fails to parse fails the test"
)]
mod tests {
    use super::*;

    /// A write to `/services`.
    const WRITE: RequestKind<'static> = RequestKind {
        path: "/services",
        write: true,
        entity: true,
        config_post: false,
    };

    /// Which of `count` writes are hit.
    fn hits(faults: &mut Faults, count: usize) -> Vec<bool> {
        (0..count)
            .map(|_| faults.on_request(WRITE).0 != Action::Pass)
            .collect()
    }

    #[test]
    fn the_nth_write_fails_once_then_the_fault_is_gone() {
        let mut faults = Faults::default();
        faults.set(parse(&json!({"fail_nth_write": 3, "status": 503})).unwrap());
        assert_eq!(faults.on_request(WRITE).0, Action::Pass);
        assert_eq!(faults.view(), [json!({"fail_nth_write": 2, "status": 503})]);
        assert_eq!(faults.on_request(WRITE).0, Action::Pass);
        assert_eq!(faults.on_request(WRITE).0, Action::Fail(503));
        assert_eq!(faults.on_request(WRITE).0, Action::Pass);
        assert!(faults.view().is_empty());
    }

    #[test]
    fn reads_do_not_count_as_writes() {
        let mut faults = Faults::default();
        faults.set(parse(&json!({"drop_nth_write": 1})).unwrap());
        let read = RequestKind {
            write: false,
            ..WRITE
        };
        assert_eq!(faults.on_request(read).0, Action::Pass);
        assert_eq!(faults.on_request(WRITE).0, Action::Drop(When::Before));
    }

    #[test]
    fn a_seed_makes_probabilistic_faults_reproducible() {
        let body = json!({"fail_nth_write": 1, "probability": 0.5, "seed": 42});
        let mut first = Faults::default();
        first.set(parse(&body).unwrap());
        let mut second = Faults::default();
        second.set(parse(&body).unwrap());
        let pattern = hits(&mut first, 64);
        assert_eq!(pattern, hits(&mut second, 64));
        assert!(pattern.contains(&true) && pattern.contains(&false));
    }

    #[test]
    fn times_limits_a_repeating_fault() {
        let mut faults = Faults::default();
        faults.set(parse(&json!({"fail_nth_write": 2, "probability": 1.0, "times": 2})).unwrap());
        assert_eq!(hits(&mut faults, 5), [false, true, true, false, false]);
    }

    #[test]
    fn the_nth_write_is_applied_late_once() {
        let mut faults = Faults::default();
        faults.set(parse(&json!({"delay_nth_write": 2, "delay_ms": 1500})).unwrap());
        assert_eq!(
            faults.view(),
            [json!({"delay_nth_write": 2, "delay_ms": 1500})]
        );
        assert_eq!(faults.on_request(WRITE).0, Action::Pass);
        assert_eq!(
            faults.on_request(WRITE).0,
            Action::Late(Duration::from_millis(1500))
        );
        assert_eq!(faults.on_request(WRITE).0, Action::Pass);
        assert!(faults.view().is_empty());
    }

    #[test]
    fn latency_is_scoped_by_writes_only_and_path_prefix() {
        let mut faults = Faults::default();
        faults.set(
            parse(&json!({"latency_ms": 5, "writes_only": true, "path_prefix": "/routes"}))
                .unwrap(),
        );
        let route_write = RequestKind {
            path: "/routes/r1",
            ..WRITE
        };
        let route_read = RequestKind {
            write: false,
            ..route_write
        };
        assert_eq!(faults.on_request(WRITE).1, None);
        assert_eq!(faults.on_request(route_read).1, None);
        assert_eq!(
            faults.on_request(route_write).1,
            Some(Duration::from_millis(5))
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        for (body, reason) in [
            (json!([]), "expected a JSON object"),
            (json!({}), "expected exactly one of"),
            (
                json!({"fail_nth_write": 1, "latency_ms": 3}),
                "expected exactly one of",
            ),
            (
                json!({"fail_nth_write": 0}),
                "expected a write number from 1",
            ),
            (
                json!({"fail_nth_write": 1, "status": 200}),
                "status: expected",
            ),
            (
                json!({"fail_nth_write": 1, "when": "after"}),
                "unknown field 'when'",
            ),
            (
                json!({"drop_nth_write": 1, "when": "later"}),
                "when: expected",
            ),
            (
                json!({"latency_ms": 1, "probability": 2}),
                "probability: expected",
            ),
            (
                json!({"refuse_connections_s": 0}),
                "refuse_connections_s: expected",
            ),
            (json!({"database_unreachable": "yes"}), "expected a boolean"),
            (json!({"delay_nth_write": 1}), "delay_ms: expected"),
            (
                json!({"delay_nth_write": 1, "delay_ms": 0}),
                "delay_ms: expected",
            ),
        ] {
            let error = parse(&body).unwrap_err();
            assert!(error.contains(reason), "{body}: {error}");
        }
    }
}
