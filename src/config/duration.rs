//! [`Duration`]: whole seconds, written like `30s`, `5m`, `1h30m`, `2d` or a bare integer.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A duration in whole seconds.
///
/// Parses `"0"`, `"90"` (a bare integer is seconds), `"30s"`, `"5m"`, `"1h"`, `"2d"` and
/// combinations such as `"1h30m"`. Displays canonically with hours as the largest unit, like Go:
/// `0s`, `30s`, `5m`, `1h30m`, `48h`. Deserializes from a string or a non-negative integer and
/// serializes as the canonical string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Duration(pub u64);

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Duration {
        Duration(secs)
    }

    /// The duration in whole seconds.
    pub const fn as_secs(self) -> u64 {
        self.0
    }
}

/// Why a duration did not parse; displays the whole message, input included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDurationError {
    /// Not a number followed by a unit.
    #[error("invalid duration {0:?}: expected a number with unit s, m, h or d (e.g. 30s, 5m, 1h)")]
    Syntax(String),
    /// Larger than `u64` seconds.
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Duration, ParseDurationError> {
        let syntax = || ParseDurationError::Syntax(s.to_string());
        let overflow = || ParseDurationError::Overflow(s.to_string());
        if s.is_empty() {
            return Err(syntax());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse::<u64>().map(Duration).map_err(|_| overflow());
        }
        let mut total: u64 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(syntax());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| overflow())?;
            let mut chars = rest[digits..].chars();
            let unit = match chars.next() {
                Some('s') => 1,
                Some('m') => 60,
                Some('h') => 3_600,
                Some('d') => 86_400,
                _ => return Err(syntax()),
            };
            let secs = number.checked_mul(unit).ok_or_else(overflow)?;
            total = total.checked_add(secs).ok_or_else(overflow)?;
            rest = chars.as_str();
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let (hours, minutes, seconds) = (self.0 / 3_600, self.0 % 3_600 / 60, self.0 % 60);
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        if seconds > 0 {
            write!(f, "{seconds}s")?;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 30s, 5m, 1h30m or a number of seconds")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v).map(Duration).map_err(|_| E::custom(ParseDurationError::Syntax(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(E::custom(ParseDurationError::Syntax(v.to_string())))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}
