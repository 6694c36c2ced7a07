//! Instants in India Standard Time, worked out here (UTC+05:30) rather than with the crate's
//! helpers, so that a test of the product's time arithmetic does not use the product's.

use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, TimeZone, Utc};

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

/// The next 03:30 IST after `t` (worked out here, not with the product's helper).
pub fn next_0330_ist(t: DateTime<Utc>) -> DateTime<Utc> {
    let local = t.with_timezone(&ist());
    let today = ist()
        .with_ymd_and_hms(local.year(), local.month(), local.day(), 3, 30, 0)
        .unwrap()
        .with_timezone(&Utc);
    if today > t {
        today
    } else {
        today + chrono::Duration::days(1)
    }
}

/// The test's monitor thresholds for tokens the simulator issues now (`monitor:` in a
/// config): small, so that a token issued at any time of day reads healthy — at 03:10 IST
/// a fresh Upstox token has 20 minutes left, which the defaults call critical.
pub const SMALL_THRESHOLDS: [(&str, &str); 3] = [
    ("warning_before", "4m"),
    ("critical_before", "2m"),
    ("refresh_before", "2m"),
];

/// Tests that need a fresh token to stay healthy for `need` call this first: within `need`
/// (plus the warning threshold above) of 03:30 IST it sleeps until just past it, so the
/// test runs on a fresh day of tokens whatever the time of day (at most a few minutes, once
/// a day).
pub fn clear_of_the_0330_expiry(need: std::time::Duration) {
    let now = Utc::now();
    let boundary = next_0330_ist(now);
    let margin = chrono::Duration::from_std(need).unwrap() + chrono::Duration::minutes(4);
    if boundary - now < margin {
        let wait = (boundary - now + chrono::Duration::seconds(2))
            .to_std()
            .unwrap_or_default();
        eprintln!("waiting {wait:?} for the 03:30 IST expiry to pass, so fresh tokens live a day");
        std::thread::sleep(wait);
    }
}

/// A config's `monitor` section (a JSON object) with [`SMALL_THRESHOLDS`] added.
pub fn with_small_thresholds(mut monitor: serde_json::Value) -> serde_json::Value {
    for (key, value) in SMALL_THRESHOLDS {
        monitor[key] = serde_json::Value::from(value);
    }
    monitor
}

/// [`SMALL_THRESHOLDS`] as lines of a YAML `monitor:` section (indented two spaces).
pub fn small_thresholds_yaml() -> String {
    SMALL_THRESHOLDS
        .iter()
        .map(|(key, value)| format!("  {key}: {value}\n"))
        .collect()
}
