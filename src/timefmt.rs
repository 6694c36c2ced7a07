//! How durations and times read in logs, notices and reports: `4s`, `1m 30s`,
//! `18.3 hours`, `0:45:00`, `2026-11-27T03:30:00+05:30`.

use crate::token::expiry::to_ist;
use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;

/// RFC 3339 in IST with whole seconds: `2026-11-27T03:30:00+05:30`.
pub fn ist_rfc3339(t: DateTime<Utc>) -> String {
    to_ist(t).to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// `4s`, `1m 30s`.
pub fn human(d: Duration) -> String {
    let rounded = if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs_f64().round() as u64)
    } else {
        Duration::from_millis(d.as_millis() as u64)
    };
    humantime::format_duration(rounded).to_string()
}

/// `18.3 hours`, or `0:04:57` under an hour (where tenths of an hour say little).
pub fn hours_or_clock(d: chrono::Duration) -> String {
    if d >= chrono::Duration::hours(1) {
        format!("{:.1} hours", d.num_seconds() as f64 / 3600.0)
    } else {
        clock_style(d)
    }
}

/// `0:45:00`, the form the log uses for time left.
pub fn clock_style(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_log_writes_them() {
        assert_eq!(human(Duration::from_millis(4400)), "4s");
        assert_eq!(human(Duration::from_secs(90)), "1m 30s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(
            hours_or_clock(chrono::Duration::minutes(1098)),
            "18.3 hours"
        );
        assert_eq!(hours_or_clock(chrono::Duration::seconds(297)), "0:04:57");
        assert_eq!(clock_style(chrono::Duration::seconds(-5)), "0:00:00");
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
