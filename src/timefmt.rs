//! How durations and times read in logs, notices and reports: `45s`, `2m 29s`, `4h 13m`,
//! `2026-11-27T03:30:00+05:30`.

use crate::token::expiry::to_ist;
use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;

/// RFC 3339 in IST with whole seconds: `2026-11-27T03:30:00+05:30`.
pub fn ist_rfc3339(t: DateTime<Utc>) -> String {
    to_ist(t).to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// A length of time as tokenwatch writes it for people, the one form in prose, notices, logs,
/// alerts and `status`: `4h 13m` from an hour up (no seconds), `2m 29s` under an hour, `45s`
/// under a minute, `0s` for nothing or less (the words around it say "expired"). Under a
/// second, a latency keeps its milliseconds (`250ms`). Time left is never rounded up: `4h 13m`
/// means at least that long. Only the dashboard's ticking countdown line uses another form
/// ([`crate::token::format_countdown`], `4h 13m 05s`).
pub fn human(d: impl Into<Length>) -> String {
    let Length { secs, millis } = d.into();
    if secs <= 0 {
        return match millis {
            Some(ms) if ms > 0 => format!("{ms}ms"),
            _ => "0s".to_string(),
        };
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// A length [`human`] can write: whole seconds, and the milliseconds of one under a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length {
    secs: i64,
    millis: Option<u64>,
}

impl From<Duration> for Length {
    /// A configured length or a wait: rounded to the nearest second (`4.4s` is `4s`).
    fn from(d: Duration) -> Length {
        if d < Duration::from_secs(1) {
            return Length {
                secs: 0,
                millis: Some(d.as_millis() as u64),
            };
        }
        Length {
            secs: i64::try_from(d.as_secs_f64().round() as u64).unwrap_or(i64::MAX),
            millis: None,
        }
    }
}

impl From<chrono::Duration> for Length {
    /// Time left: whole seconds, never rounded up.
    fn from(d: chrono::Duration) -> Length {
        Length {
            secs: d.num_seconds(),
            millis: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_form_for_every_length_of_time() {
        let c = chrono::Duration::seconds;
        assert_eq!(human(c(59)), "59s");
        assert_eq!(human(c(60)), "1m 0s");
        assert_eq!(human(c(149)), "2m 29s");
        assert_eq!(human(c(3599)), "59m 59s");
        assert_eq!(human(c(3600)), "1h 0m");
        assert_eq!(human(c(3630)), "1h 0m");
        assert_eq!(human(c(4 * 3600 + 13 * 60 + 59)), "4h 13m");
        assert_eq!(human(c(25 * 3600)), "25h 0m");
        assert_eq!(human(c(0)), "0s");
        assert_eq!(human(c(-5)), "0s");
        // Time left is never rounded up; configured lengths and waits round to the second.
        assert_eq!(human(chrono::Duration::milliseconds(59_999)), "59s");
        assert_eq!(human(Duration::from_millis(4400)), "4s");
        assert_eq!(human(Duration::from_secs(90)), "1m 30s");
        assert_eq!(human(Duration::from_secs(3 * 3600)), "3h 0m");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::ZERO), "0s");
    }
}

/// Log lines' time: IST with its offset and milliseconds (`2026-12-04T23:16:19.046+05:30`),
/// like every other time tokenwatch shows a person, whatever the machine's time zone.
#[derive(Debug, Clone, Copy, Default)]
pub struct IstLogTime;

impl tracing_subscriber::fmt::time::FormatTime for IstLogTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(
            w,
            "{}",
            crate::token::expiry::to_ist(chrono::Utc::now()).format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        )
    }
}
