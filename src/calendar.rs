//! The NSE trading calendar: which days the market opens. The exchange's holidays ship in
//! `config/holidays/nse.txt` (built into the binary); `market.holidays_file` adds days or
//! marks listed ones as trading days. The deadline alarm and the urgency of the morning
//! renewal follow it.
//!
//! The file format, for both: one day per line, `YYYY-MM-DD name`; `#` starts a comment;
//! `-YYYY-MM-DD name` marks a day as a trading day (a special session on a holiday or a
//! weekend). A later line about the same day wins.

use crate::printable::printable;
use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

/// The shipped list.
const NSE_HOLIDAYS: &str = include_str!("../config/holidays/nse.txt");

/// A holidays file larger than this is refused (a year is a few hundred bytes).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How far [`Calendar::next_trading_day`] looks: a file that closes every day for ten years
/// still gets an answer.
const SEARCH_DAYS: u32 = 3660;

/// A bad line in a holidays file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

/// The trading calendar: weekends and listed holidays are closed, unless marked as trading
/// days.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Calendar {
    holidays: BTreeMap<NaiveDate, String>,
    trading: BTreeMap<NaiveDate, String>,
}

impl std::fmt::Debug for Calendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calendar")
            .field("holidays", &self.holidays.len())
            .field("trading_days", &self.trading.len())
            .field("years", &self.years())
            .finish()
    }
}

impl Calendar {
    /// The shipped NSE calendar, parsed once per process.
    pub fn nse() -> Arc<Calendar> {
        static NSE: OnceLock<Arc<Calendar>> = OnceLock::new();
        NSE.get_or_init(|| {
            // The shipped file is checked by the unit tests; a bad line there would leave
            // only the weekends, never a panic.
            Arc::new(
                Calendar::default()
                    .with_lines(NSE_HOLIDAYS)
                    .unwrap_or_default(),
            )
        })
        .clone()
    }

    /// Weekdays only: no holidays at all.
    pub fn weekdays() -> Calendar {
        Calendar::default()
    }

    /// This calendar with the lines of a holidays file applied over it.
    pub fn with_lines(&self, text: &str) -> Result<Calendar, LineError> {
        let mut cal = self.clone();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (trading, rest) = match line.strip_prefix('-') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, line),
            };
            let (date_text, name) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let Some(date) = parse_date(date_text) else {
                return Err(LineError {
                    line: i + 1,
                    message: format!(
                        "expected a date as YYYY-MM-DD and a name, like \"2026-12-25 Christmas\" \
                         (or \"-2026-11-08 Muhurat trading\" for a trading day), got \"{}\"",
                        shown(raw)
                    ),
                });
            };
            let mut name: String = printable(name.trim()).chars().take(80).collect();
            if name.is_empty() {
                name = if trading { "trading day" } else { "holiday" }.into();
            }
            if trading {
                cal.holidays.remove(&date);
                cal.trading.insert(date, name);
            } else {
                cal.trading.remove(&date);
                cal.holidays.insert(date, name);
            }
        }
        Ok(cal)
    }

    /// Whether the market opens on `day`: a weekday that is not a holiday, or a day marked
    /// as a trading day.
    pub fn is_trading_day(&self, day: NaiveDate) -> bool {
        if self.trading.contains_key(&day) {
            return true;
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains_key(&day)
    }

    /// The first trading day strictly after `day`.
    pub fn next_trading_day(&self, day: NaiveDate) -> NaiveDate {
        let mut d = day;
        for _ in 0..SEARCH_DAYS {
            match d.succ_opt() {
                Some(next) => d = next,
                None => return d,
            }
            if self.is_trading_day(d) {
                return d;
            }
        }
        d
    }

    /// The holiday's name, when `day` is a listed holiday.
    pub fn holiday(&self, day: NaiveDate) -> Option<&str> {
        self.holidays.get(&day).map(String::as_str)
    }

    /// Whether the calendar lists any day of `year` (a holiday or a trading day): a year it
    /// has no entry for knows only the weekends.
    pub fn covers(&self, year: i32) -> bool {
        let in_year = |m: &BTreeMap<NaiveDate, String>| {
            let (Some(first), Some(last)) = (
                NaiveDate::from_ymd_opt(year, 1, 1),
                NaiveDate::from_ymd_opt(year, 12, 31),
            ) else {
                return false;
            };
            m.range(first..=last).next().is_some()
        };
        in_year(&self.holidays) || in_year(&self.trading)
    }

    /// The number of holidays listed in `year`.
    pub fn holidays_in(&self, year: i32) -> usize {
        self.holidays.keys().filter(|d| d.year() == year).count()
    }

    /// The years the calendar lists days for.
    pub fn years(&self) -> Vec<i32> {
        let set: BTreeSet<i32> = self
            .holidays
            .keys()
            .chain(self.trading.keys())
            .map(Datelike::year)
            .collect();
        set.into_iter().collect()
    }

    /// What `config check` says about the calendar on `today` (IST): a warning when the
    /// current year has no entries, and from December a note when next year has none yet.
    pub fn coverage_warnings(&self, today: NaiveDate) -> Vec<String> {
        let year = today.year();
        let mut out = Vec::new();
        if !self.covers(year) {
            out.push(format!(
                "warning: the trading calendar has no holidays for {year}, so only weekends count as \
                 closed days and the deadline alarm may fire on an exchange holiday. Add {year}'s NSE \
                 trading holidays to market.holidays_file (one \"YYYY-MM-DD name\" per line), or update \
                 tokenwatch."
            ));
        } else if today.month() == 12 && !self.covers(year + 1) {
            out.push(format!(
                "note: the trading calendar has no holidays for {} yet. When NSE publishes them, add \
                 them to market.holidays_file (one \"YYYY-MM-DD name\" per line), or update tokenwatch.",
                year + 1
            ));
        }
        out
    }
}

/// `YYYY-MM-DD`, strictly: four-digit year, two-digit month and day.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A bad line as it may be shown: no control characters, at most 60 characters.
fn shown(line: &str) -> String {
    let clean = printable(line.trim());
    if clean.chars().count() > 60 {
        format!("{}…", clean.chars().take(60).collect::<String>())
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn the_shipped_list_parses_and_lists_only_weekdays() {
        let text_days = NSE_HOLIDAYS
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .count();
        let cal = Calendar::nse();
        assert_eq!(cal.holidays.len(), text_days);
        assert_eq!(cal.holidays_in(2026), 16);
        assert!(cal.covers(2026));
        for day in cal.holidays.keys() {
            assert!(
                !matches!(day.weekday(), Weekday::Sat | Weekday::Sun),
                "{day} is a weekend"
            );
        }
        assert_eq!(cal.holiday(d(2026, 12, 25)), Some("Christmas"));
    }

    #[test]
    fn weekends_and_holidays_are_closed() {
        let cal = Calendar::nse();
        assert!(!cal.is_trading_day(d(2026, 12, 25))); // Friday, Christmas
        assert!(!cal.is_trading_day(d(2026, 12, 26))); // Saturday
        assert!(cal.is_trading_day(d(2026, 12, 24))); // Thursday
        assert_eq!(cal.next_trading_day(d(2026, 12, 24)), d(2026, 12, 28));
        assert_eq!(cal.next_trading_day(d(2026, 11, 23)), d(2026, 11, 25));
    }

    #[test]
    fn a_holidays_file_adds_days_and_marks_trading_days() {
        let cal = Calendar::nse()
            .with_lines(
                "# ours\n\
                 2026-12-31 Office closed\n\
                 -2026-03-03 Special session   # Holi, open after all\n\
                 -2026-11-08\n",
            )
            .unwrap();
        assert!(!cal.is_trading_day(d(2026, 12, 31)));
        assert_eq!(cal.holiday(d(2026, 12, 31)), Some("Office closed"));
        assert!(cal.is_trading_day(d(2026, 3, 3)));
        assert_eq!(cal.holiday(d(2026, 3, 3)), None);
        assert!(cal.is_trading_day(d(2026, 11, 8))); // a Sunday session
        // The rest of the shipped list stands.
        assert!(!cal.is_trading_day(d(2026, 12, 25)));
    }

    #[test]
    fn bad_lines_name_their_number_and_show_no_control_characters() {
        for (text, line) in [
            ("2026-12-25 Christmas\n25-12-2026 Christmas\n", 2),
            ("\n\n2026-02-30 no such day\n", 3),
            ("2026-1-5 short\n", 1),
            ("- \n", 1),
            ("Christmas\x1b[31m\n", 1),
        ] {
            let e = Calendar::nse().with_lines(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains("YYYY-MM-DD"), "{e}");
            assert!(!e.to_string().contains('\x1b'), "{e}");
        }
    }

    #[test]
    fn coverage_is_judged_on_the_given_day() {
        let cal = Calendar::weekdays()
            .with_lines("2026-12-25 Christmas\n")
            .unwrap();
        assert!(cal.coverage_warnings(d(2026, 6, 1)).is_empty());
        let w = cal.coverage_warnings(d(2026, 12, 4));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("note:") && w[0].contains("2027"),
            "{}",
            w[0]
        );
        let w = cal.coverage_warnings(d(2028, 3, 1));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("no holidays for 2028"), "{}", w[0]);
        assert!(w[0].contains("market.holidays_file"), "{}", w[0]);
        let next = cal.with_lines("2027-01-26 Republic Day\n").unwrap();
        assert!(next.coverage_warnings(d(2026, 12, 4)).is_empty());
    }
}
