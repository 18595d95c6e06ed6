//! rate-limiting (`kong/plugins/rate-limiting/handler.lua`, priority 910): requests per
//! second, minute, hour, day, month and year, counted in memory per plugin scope and
//! client (`limit_by`). A request is refused with 429 (`error_code`, `error_message`)
//! when a period's count already reached its limit; refused requests are not counted.
//! Clients see `X-RateLimit-Limit-<Period>`, `X-RateLimit-Remaining-<Period>`,
//! `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (and `Retry-After` on the
//! 429) unless `hide_client_headers`. Every `policy` counts locally in the twin.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::http::StatusCode;
use serde_json::Value;

use super::{Exit, PluginRequest};
use crate::kong::store::{Entity, foreign_id};

/// Periods, shortest first, with their header suffix and Kong's window length in seconds
/// (`rate-limiting/expiration.lua`).
const PERIODS: [(&str, &str, i64); 6] = [
    ("second", "Second", 1),
    ("minute", "Minute", 60),
    ("hour", "Hour", 3600),
    ("day", "Day", 86_400),
    ("month", "Month", 2_592_000),
    ("year", "Year", 31_536_000),
];

/// Counters kept before old windows are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// The `local` policy's counters, shared by a twin's proxy listeners: requests counted
/// per (plugin scope, client, period) and window start.
#[derive(Debug, Default)]
pub(crate) struct RateCounters {
    /// Count by `route:service:identifier:period` and window start (Unix seconds).
    counts: Mutex<HashMap<(String, i64), u64>>,
}

impl RateCounters {
    /// Forgets every count (`POST /_twin/reset`).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Locks the counters (a poisoned lock is taken over: counts are plain numbers).
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), u64>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Who a request is counted for, as far as the chain knows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    /// The consumer's id.
    pub(crate) consumer: Option<&'a str>,
    /// The credential's id.
    pub(crate) credential: Option<&'a str>,
    /// The route's service's id.
    pub(crate) service: Option<&'a str>,
}

/// One period's state for this request.
#[derive(Debug, Clone, Copy)]
struct Usage {
    /// The header suffix (`Second`, ...).
    suffix: &'static str,
    /// Window length (seconds).
    window: i64,
    /// Seconds since the window started.
    elapsed: i64,
    /// The configured limit.
    limit: u64,
    /// `limit - count` before this request (may be ≤ 0).
    remaining: i64,
}

/// Counts the request against `plugin`'s limits: the client headers to add to the
/// response, or the 429.
pub(crate) fn limit(
    plugin: &Entity,
    request: &PluginRequest<'_>,
    subject: Subject<'_>,
    counters: &RateCounters,
    now: f64,
) -> Result<Vec<(String, String)>, Exit> {
    let config = plugin.get("config").unwrap_or(&Value::Null);
    let identifier = identifier(config, request, subject);
    let scope = format!(
        "{}:{}:{identifier}",
        foreign_id(plugin, "route").unwrap_or_default(),
        foreign_id(plugin, "service").unwrap_or_default(),
    );
    let now_seconds = now.floor() as i64;
    let mut counts = counters.lock();
    let mut usages: Vec<(String, i64, Usage)> = Vec::new();
    for (period, suffix, window) in PERIODS {
        let Some(limit) = config
            .get(period)
            .and_then(Value::as_f64)
            .map(|limit| limit.max(0.0) as u64)
        else {
            continue;
        };
        let start = window_start(period, now_seconds);
        let key = format!("{scope}:{period}");
        let used = counts.get(&(key.clone(), start)).copied().unwrap_or(0);
        let remaining = i64::try_from(limit)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(used).unwrap_or(i64::MAX));
        usages.push((
            key,
            start,
            Usage {
                suffix,
                window,
                elapsed: now_seconds - start,
                limit,
                remaining,
            },
        ));
    }
    let stop = usages.iter().position(|(_, _, usage)| usage.remaining <= 0);
    let hide = config.get("hide_client_headers").and_then(Value::as_bool) == Some(true);
    let mut headers = Vec::new();
    let mut reset = 1;
    if !hide && !usages.is_empty() {
        // The headers name the period with the fewest remaining (the longer on a tie).
        let mut chosen: Option<(i64, i64, u64)> = None;
        for (index, (_, _, usage)) in usages.iter().enumerate() {
            let mut remaining = usage.remaining;
            if stop.is_none_or(|stop| stop == index) {
                remaining -= 1;
            }
            let remaining = remaining.max(0);
            let better = chosen.is_none_or(|(best, window, _)| {
                remaining < best || (remaining == best && usage.window > window)
            });
            if better {
                chosen = Some((remaining, usage.window, usage.limit));
                reset = (usage.window - usage.elapsed).max(1);
            }
            headers.push((
                format!("X-RateLimit-Limit-{}", usage.suffix),
                usage.limit.to_string(),
            ));
            headers.push((
                format!("X-RateLimit-Remaining-{}", usage.suffix),
                remaining.to_string(),
            ));
        }
        if let Some((remaining, _, limit)) = chosen {
            headers.push(("RateLimit-Limit".to_owned(), limit.to_string()));
            headers.push(("RateLimit-Remaining".to_owned(), remaining.to_string()));
            headers.push(("RateLimit-Reset".to_owned(), reset.to_string()));
        }
    }
    if stop.is_some() {
        if !hide {
            headers.push(("Retry-After".to_owned(), reset.to_string()));
        }
        let code = config
            .get("error_code")
            .and_then(Value::as_u64)
            .and_then(|code| u16::try_from(code).ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::TOO_MANY_REQUESTS);
        let message = config
            .get("error_message")
            .and_then(Value::as_str)
            .unwrap_or("API rate limit exceeded");
        return Err(Exit::Error {
            status: code,
            message: message.to_owned(),
            headers,
        });
    }
    if counts.len() > PRUNE_ABOVE {
        counts.retain(|(key, start), _| {
            let window = PERIODS
                .iter()
                .find(|(period, _, _)| key.ends_with(&format!(":{period}")))
                .map_or(0, |(_, _, window)| *window);
            start + window > now_seconds
        });
    }
    for (key, start, _) in usages {
        *counts.entry((key, start)).or_insert(0) += 1;
    }
    Ok(headers)
}

/// The client a request is counted for (`limit_by`), falling back to its IP address.
fn identifier(config: &Value, request: &PluginRequest<'_>, subject: Subject<'_>) -> String {
    let limit_by = config
        .get("limit_by")
        .and_then(Value::as_str)
        .unwrap_or("consumer");
    let found: Option<String> = match limit_by {
        "consumer" => subject.consumer.or(subject.credential).map(str::to_owned),
        "credential" => subject.credential.map(str::to_owned),
        "service" => subject.service.map(str::to_owned),
        "header" => config
            .get("header_name")
            .and_then(Value::as_str)
            .and_then(|name| request.headers.get(name))
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        "path" => config
            .get("path")
            .and_then(Value::as_str)
            .filter(|path| *path == request.path)
            .map(str::to_owned),
        _ => None,
    };
    found.unwrap_or_else(|| {
        request
            .client
            .map_or_else(|| "unknown client".to_owned(), |ip| ip.to_string())
    })
}

/// The start (Unix seconds, UTC) of the `period` window holding `now`: fixed lengths up
/// to a day, calendar months and years.
fn window_start(period: &str, now: i64) -> i64 {
    let fixed = |length: i64| now - now.rem_euclid(length);
    match period {
        "second" => now,
        "minute" => fixed(60),
        "hour" => fixed(3600),
        "day" => fixed(86_400),
        _ => calendar_start(period, now).unwrap_or_else(|| fixed(86_400)),
    }
}

/// The first second of the UTC month or year holding `now`.
fn calendar_start(period: &str, now: i64) -> Option<i64> {
    let date = jiff::Timestamp::from_second(now)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let month = if period == "year" { 1 } else { date.month() };
    let first = jiff::civil::Date::new(date.year(), month, 1).ok()?;
    Some(
        first
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_second(),
    )
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use serde_json::json;

    use super::super::fixtures::{headers, request, row};
    use super::*;

    const NOW: f64 = 1_800_000_000.25;

    fn plugin(config: Value) -> Entity {
        row(
            json!({"id": "p1", "name": "rate-limiting", "config": config, "route": null, "service": null}),
        )
    }

    fn nobody() -> Subject<'static> {
        Subject {
            consumer: None,
            credential: None,
            service: None,
        }
    }

    fn value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn the_request_after_the_limit_is_refused_with_the_headers() -> Result<(), String> {
        let plugin = plugin(json!({"second": 2, "minute": 10}));
        let none = headers(&[]);
        let mut client = request(&none, &[]);
        client.client = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let counters = RateCounters::default();
        let first = limit(&plugin, &client, nobody(), &counters, NOW);
        assert_eq!(
            first
                .as_deref()
                .ok()
                .and_then(|h| value(h, "X-RateLimit-Remaining-Second")),
            Some("1")
        );
        let second = limit(&plugin, &client, nobody(), &counters, NOW).unwrap_or_default();
        assert_eq!(value(&second, "X-RateLimit-Limit-Second"), Some("2"));
        assert_eq!(value(&second, "X-RateLimit-Remaining-Second"), Some("0"));
        assert_eq!(value(&second, "X-RateLimit-Remaining-Minute"), Some("8"));
        assert_eq!(value(&second, "RateLimit-Limit"), Some("2"));
        assert_eq!(value(&second, "RateLimit-Remaining"), Some("0"));
        assert_eq!(value(&second, "RateLimit-Reset"), Some("1"));
        let third = limit(&plugin, &client, nobody(), &counters, NOW);
        let headers = match third {
            Err(Exit::Error {
                status,
                message,
                headers,
            }) => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
                assert_eq!(message, "API rate limit exceeded");
                headers
            }
            other => return Err(format!("expected a 429, got {other:?}")),
        };
        assert_eq!(value(&headers, "Retry-After"), Some("1"));
        assert_eq!(value(&headers, "X-RateLimit-Remaining-Second"), Some("0"));
        // The refused request was not counted; the next second has a fresh window.
        assert_eq!(value(&headers, "X-RateLimit-Remaining-Minute"), Some("8"));
        let later = limit(&plugin, &client, nobody(), &counters, NOW + 1.0).unwrap_or_default();
        assert_eq!(value(&later, "X-RateLimit-Remaining-Second"), Some("1"));
        assert_eq!(value(&later, "X-RateLimit-Remaining-Minute"), Some("7"));
        Ok(())
    }

    #[test]
    fn consumers_are_counted_apart_and_headers_can_be_hidden() {
        let plugin = plugin(
            json!({"minute": 1, "hide_client_headers": true, "error_code": 503, "error_message": "slow down"}),
        );
        let none = headers(&[]);
        let client = request(&none, &[]);
        let counters = RateCounters::default();
        let alice = Subject {
            consumer: Some("alice"),
            ..nobody()
        };
        let bob = Subject {
            consumer: Some("bob"),
            ..nobody()
        };
        assert_eq!(
            limit(&plugin, &client, alice, &counters, NOW),
            Ok(Vec::new())
        );
        assert_eq!(limit(&plugin, &client, bob, &counters, NOW), Ok(Vec::new()));
        assert_eq!(
            limit(&plugin, &client, alice, &counters, NOW),
            Err(Exit::Error {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "slow down".into(),
                headers: Vec::new()
            })
        );
    }

    #[test]
    fn identifiers_follow_limit_by_and_fall_back_to_the_ip() {
        let with_header = headers(&[("x-tenant", "t1")]);
        let mut client = request(&with_header, &[]);
        client.client = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
        let subject = Subject {
            consumer: Some("c"),
            credential: Some("k"),
            service: Some("s"),
        };
        let cases = [
            (json!({}), subject, "c"),
            (
                json!({}),
                Subject {
                    consumer: None,
                    ..subject
                },
                "k",
            ),
            (json!({}), nobody(), "10.0.0.7"),
            (json!({"limit_by": "credential"}), subject, "k"),
            (json!({"limit_by": "service"}), subject, "s"),
            (
                json!({"limit_by": "header", "header_name": "x-tenant"}),
                subject,
                "t1",
            ),
            (
                json!({"limit_by": "path", "path": "/other"}),
                subject,
                "10.0.0.7",
            ),
            (json!({"limit_by": "ip"}), subject, "10.0.0.7"),
        ];
        for (config, subject, expected) in cases {
            assert_eq!(identifier(&config, &client, subject), expected, "{config}");
        }
    }

    #[test]
    fn windows_start_on_utc_boundaries() {
        // 2027-03-15T08:00:00Z; 2027-03-01 and 2027-01-01 at midnight.
        let year = 1798761600;
        let march = year + (31 + 28) * 86_400;
        let now = march + 14 * 86_400 + 8 * 3600;
        assert_eq!(window_start("second", now), now);
        assert_eq!(window_start("minute", now + 59), now);
        assert_eq!(window_start("hour", now + 3599), now);
        assert_eq!(window_start("day", now), now - 8 * 3600);
        assert_eq!(window_start("month", now), march);
        assert_eq!(window_start("year", now), year);
    }
}
