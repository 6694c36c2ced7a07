//! The history as a table for people: one row per day, newest first, with its key below
//! (`tokenwatch history`).

use super::days::{Cell, Day};
use chrono::{DateTime, Utc};

/// The width of the Renewed column.
const RENEWED: usize = 28;

/// The days as a table, newest first, with the key below it.
pub fn table(account: &str, broker: &str, days: &[Day]) -> String {
    let mut out = match days.len() {
        1 => format!("History of account \"{account}\" ({broker}), today; times IST\n"),
        n => format!("History of account \"{account}\" ({broker}), last {n} days; times IST\n"),
    };
    out.push_str(&format!(
        "{:<10}  {:<RENEWED$}  {:>6}  {:>6}  {:>5}  {:>7}\n",
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
    let all: Vec<String> = day
        .renewed()
        .map(|r| format!("{} {}{}", hm(r.at), r.how, if r.person { "*" } else { "" }))
        .collect();
    let failed = match day.failed() {
        0 => String::new(),
        n => format!(" ({n} failed)"),
    };
    // The column holds RENEWED characters: every renewal when they fit, else the first and
    // how many more (the JSON has them all).
    let mut renewed = match all.len() {
        0 => "-".to_string(),
        _ => all.join(", "),
    } + &failed;
    if renewed.chars().count() > RENEWED && all.len() > 1 {
        renewed = format!("{} +{} more{failed}", all[0], all.len() - 1);
    }
    if renewed.chars().count() > RENEWED
        && let Some(first) = day.renewed().next()
    {
        // The first one's time alone.
        let more = all.len() - 1;
        let more = if more > 0 {
            format!(" +{more} more")
        } else {
            String::new()
        };
        renewed = format!("{}{more}{failed}", hm(first.at));
    }
    if renewed.chars().count() > RENEWED {
        renewed = renewed.chars().take(RENEWED - 1).collect::<String>() + "…";
    }
    let down = if day.trading_day {
        super::days::minutes(day.down_minutes)
    } else {
        "closed".to_string()
    };
    format!(
        "{label:<10}  {renewed:<RENEWED$}  {down:>6}  {:>6}  {:>5}  {:>7}",
        day.alerts.len(),
        day.calls,
        day.rate_limited
    )
}

fn hm(t: DateTime<Utc>) -> String {
    crate::token::expiry::to_ist(t).format("%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Calendar;
    use crate::history::{Event, Loaded, Record, Renewal};
    use chrono::TimeZone;

    #[test]
    fn a_busy_day_keeps_its_columns() {
        let at = |h: u32| {
            crate::token::expiry::ist()
                .with_ymd_and_hms(2026, 12, 4, h, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        let renewal = |h: u32, ok: bool| Record {
            at: at(h),
            event: Event::Renewal(Renewal::ended(
                "token-request",
                true,
                std::time::Duration::from_secs(60),
                if ok {
                    Ok(at(h) + chrono::Duration::hours(12))
                } else {
                    Err("no")
                },
            )),
        };
        let loaded = Loaded {
            before: None,
            records: vec![renewal(8, true), renewal(9, true), renewal(10, false)],
            skipped: Vec::new(),
        };
        let day = crate::history::ist_day(at(12));
        let days = crate::history::days::days(&loaded, day, day, &Calendar::weekdays(), at(12));
        let table = table("default", "Upstox", &days);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[2].contains("08:00 +1 more (1 failed)"), "{table}");
        // Down, Alerts, Calls and Limited end where the header's do.
        assert_eq!(
            lines[1].chars().count(),
            lines[2].chars().count(),
            "{table}"
        );
    }
}
