//! Durations written as "500ms", "90s", "5m", "1h30m".

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A span of time as written in a playbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

/// Why a duration text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {reason}")]
pub struct DurationError {
    text: String,
    reason: &'static str,
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, DurationError> {
        let fail = |reason| DurationError {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(fail("empty; write a number and a unit such as 30s"));
        }
        let mut total: u128 = 0;
        let mut rest = trimmed;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(fail("expected a number before the unit"));
            }
            let amount: u128 = rest[..digits]
                .parse()
                .map_err(|_| fail("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let millis_per_unit: u128 = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "" => return Err(fail("missing unit; use ms, s, m, h or d (30s, 5m)")),
                _ => return Err(fail("unknown unit; use ms, s, m, h or d")),
            };
            total = amount
                .checked_mul(millis_per_unit)
                .and_then(|ms| total.checked_add(ms))
                .filter(|ms| *ms <= u128::from(u64::MAX))
                .ok_or_else(|| fail("too long"))?;
            rest = &rest[unit_len..];
        }
        let millis = u64::try_from(total).map_err(|_| fail("too long"))?;
        Ok(Duration(std::time::Duration::from_millis(millis)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        let units: [(u128, &str); 4] = [(3_600_000, "h"), (60_000, "m"), (1_000, "s"), (1, "ms")];
        if millis == 0 {
            return f.write_str("0s");
        }
        let mut rest = millis;
        for (size, unit) in units {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl DurationVisitor {
    fn bare_number<E: serde::de::Error>(number: impl fmt::Display) -> E {
        E::custom(format!(
            "a duration needs a unit: write `{number}s` (or `{number}ms`, `{number}m`) instead of `{number}`"
        ))
    }
}

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 30s or 5m")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Duration, E> {
        Err(Self::bare_number(number))
    }

    fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Duration, E> {
        Err(Self::bare_number(number))
    }

    fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<Duration, E> {
        Err(Self::bare_number(number))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(ms|s|m|h|d))+$",
            "description": "A duration such as 500ms, 90s, 5m or 1h30m."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() -> Result<(), DurationError> {
        assert_eq!("90s".parse::<Duration>()?.0.as_secs(), 90);
        assert_eq!("1h30m".parse::<Duration>()?.0.as_secs(), 5400);
        assert_eq!("250ms".parse::<Duration>()?.0.as_millis(), 250);
        Ok(())
    }

    #[test]
    fn refuses_bare_numbers_and_bad_units() {
        assert!("30".parse::<Duration>().is_err());
        assert!("5 minutes".parse::<Duration>().is_err());
        assert!("99999999999999999999999h".parse::<Duration>().is_err());
    }

    #[test]
    fn displays_compactly() -> Result<(), DurationError> {
        assert_eq!("5400s".parse::<Duration>()?.to_string(), "1h30m");
        Ok(())
    }
}
