//! The history as a table for people: one row per day, newest first, with its key below
//! (`tokenwatch history`).

use super::days::{Cell, Day};
use chrono::{DateTime, Utc};

/// The days as a table, newest first, with the key below it.
pub fn table(account: &str, broker: &str, days: &[Day]) -> String {
    let mut out = match days.len() {
        1 => format!("History of account \"{account}\" ({broker}), today; times IST\n"),
        n => format!("History of account \"{account}\" ({broker}), last {n} days; times IST\n"),
    };
    out.push_str(&format!(
        "{:<10}  {:<28}  {:>6}  {:>6}  {:>5}  {:>7}\n",
        "Day", "Renewed", "Down", "Alerts", "Calls", "Limited"
    ));
    for day in days.iter().rev() {
        out.push_str(&row(day));
        out.push('\n');
    }
    out.push_str(
        "Renewed: when a new token was stored and how (* a person had to act).\n\
         Calls: requests to the broker's API; Limited: of them, answered with a rate limit.\n\
         Down: minutes the token was not usable during market hours (09:15-15:30 IST);\n\
         closed on weekends and NSE holidays.\n",
    );
    out
}

fn row(day: &Day) -> String {
    let label = day.date.format("%a %d %b").to_string();
    let nothing = day
        .cells
        .iter()
        .all(|c| matches!(c, Cell::NoRecord | Cell::Ahead))
        && day.renewals.is_empty()
        && day.alerts.is_empty()
        && day.calls == 0;
    if nothing {
        return format!("{label:<10}  no record");
    }
    let mut renewed: Vec<String> = day
        .renewed()
        .map(|r| format!("{} {}{}", hm(r.at), r.how, if r.person { "*" } else { "" }))
        .collect();
    if renewed.len() > 2 {
        let more = renewed.len() - 1;
        renewed.truncate(1);
        renewed.push(format!("+{more} more"));
    }
    let mut renewed = if renewed.is_empty() {
        "-".to_string()
    } else {
        renewed.join(", ")
    };
    match day.failed() {
        0 => {}
        1 => renewed.push_str(" (1 failed)"),
        n => renewed.push_str(&format!(" ({n} failed)")),
    }
    let down = if day.trading_day {
        super::days::minutes(day.down_minutes)
    } else {
        "closed".to_string()
    };
    format!(
        "{label:<10}  {renewed:<28}  {down:>6}  {:>6}  {:>5}  {:>7}",
        day.alerts.len(),
        day.calls,
        day.rate_limited
    )
}

fn hm(t: DateTime<Utc>) -> String {
    crate::token::expiry::to_ist(t).format("%H:%M").to_string()
}
