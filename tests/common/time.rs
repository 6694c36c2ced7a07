//! Instants in India Standard Time, worked out here (UTC+05:30) rather than with the crate's
//! helpers, so that a test of the product's time arithmetic does not use the product's.

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};

/// India Standard Time, UTC+05:30.
pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).unwrap()
}

/// An IST wall-clock time as an instant.
pub fn at_ist(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    ist()
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .unwrap()
        .with_timezone(&Utc)
}

/// An instant in IST, November 2026 (the 26th is a Thursday).
pub fn ist_at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    at_ist(2026, 11, day, h, m, 0)
}

/// RFC 3339 in IST with whole seconds, the form the contract uses: `2026-11-27T03:30:00+05:30`.
pub fn ist_rfc3339(t: DateTime<Utc>) -> String {
    t.with_timezone(&ist())
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Now, truncated to whole seconds (token files carry whole seconds).
pub fn now_secs() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}
