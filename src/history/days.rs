//! The history, day by day: for each IST day a summary (renewals, minutes the token was not
//! usable during market hours, alerts, API calls) and a timeline of 48 half-hour cells, the
//! one reading behind `tokenwatch history` and the dashboard's `h`.
//!
//! Between records the state carries on as it was, except that a usable token turns
//! expired at its expiry, with or without a process watching. Before the first record of
//! all there is no record. A cell shows the worst state seen in its half hour.

use super::{Event, Loaded, Record, ist_day};
use crate::calendar::Calendar;
use crate::token::TokenState;
use crate::token::expiry::ist;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::Serialize;

/// Half hours in a day.
pub const CELLS: usize = 48;
/// The market's hours (IST), over which unusable minutes are counted on trading days.
pub const MARKET_OPEN: NaiveTime = NaiveTime::from_hms_opt(9, 15, 0).expect("valid time");
/// See [`MARKET_OPEN`].
pub const MARKET_CLOSE: NaiveTime = NaiveTime::from_hms_opt(15, 30, 0).expect("valid time");

/// One half hour of the timeline, by the worst state seen in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// Still to come.
    Ahead,
    /// Nothing recorded yet.
    NoRecord,
    /// The token was healthy.
    Healthy,
    /// Warning: close to expiry.
    Warning,
    /// Critical: very close to expiry.
    Critical,
    /// Not usable: expired, rejected or missing.
    Down,
}

impl Cell {
    fn of(state: TokenState) -> Cell {
        match state {
            TokenState::Healthy => Cell::Healthy,
            TokenState::Warning => Cell::Warning,
            TokenState::Critical => Cell::Critical,
            TokenState::Expired | TokenState::Invalid | TokenState::Missing => Cell::Down,
        }
    }

    /// One letter per cell, as `history --json` writes the timeline: `h` healthy, `w`
    /// warning, `c` critical, `x` not usable, `.` no record, ` ` still to come.
    pub fn letter(self) -> char {
        match self {
            Cell::Ahead => ' ',
            Cell::NoRecord => '.',
            Cell::Healthy => 'h',
            Cell::Warning => 'w',
            Cell::Critical => 'c',
            Cell::Down => 'x',
        }
    }
}

/// A renewal or login that ended that day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenewalRow {
    /// When it ended.
    #[serde(serialize_with = "ist_time")]
    pub at: DateTime<Utc>,
    /// A new token was stored.
    pub ok: bool,
    /// `browser`, `token-request`, `command`, `totp`, `refresh-token`.
    pub how: String,
    /// A person had to act.
    pub person: bool,
    /// How long it took, in seconds.
    pub took_seconds: u64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A state change that day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateRow {
    /// When.
    #[serde(serialize_with = "ist_time")]
    pub at: DateTime<Utc>,
    /// The state entered.
    pub state: TokenState,
}

/// An alert raised that day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    /// When.
    #[serde(serialize_with = "ist_time")]
    pub at: DateTime<Utc>,
    /// The alert's event (`expired`, `renewed`, ...).
    pub alert: String,
    /// `info`, `warning` or `critical`.
    pub level: String,
}

/// One IST day of one account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// The IST date.
    pub date: NaiveDate,
    /// A trading day (not a weekend or NSE holiday).
    pub trading_day: bool,
    /// Minutes between 09:15 and 15:30 IST the token was not usable (trading days only).
    pub down_minutes: u32,
    /// Renewals and logins that ended.
    pub renewals: Vec<RenewalRow>,
    /// State changes.
    pub states: Vec<StateRow>,
    /// Alerts raised.
    pub alerts: Vec<AlertRow>,
    /// API calls made.
    pub calls: u32,
    /// Rate-limit answers received.
    pub rate_limited: u32,
    /// The half hours from 00:00 IST (see [`Cell::letter`]).
    #[serde(serialize_with = "letters")]
    pub cells: [Cell; CELLS],
    /// Half hours in which a renewal stored a new token.
    #[serde(skip)]
    pub renewed_in: Vec<usize>,
}

impl Day {
    /// The successful renewals.
    pub fn renewed(&self) -> impl Iterator<Item = &RenewalRow> {
        self.renewals.iter().filter(|r| r.ok)
    }

    /// Renewals that failed.
    pub fn failed(&self) -> usize {
        self.renewals.iter().filter(|r| !r.ok).count()
    }
}

/// Whole minutes as the history shows them: `45m`, `2h 5m` (the one duration form from an
/// hour up; under one, whole minutes need no seconds).
pub fn minutes(m: u32) -> String {
    if m < 60 {
        format!("{m}m")
    } else {
        crate::timefmt::human(std::time::Duration::from_secs(u64::from(m) * 60))
    }
}

/// Midnight IST starting `day`.
fn start_of(day: NaiveDate) -> DateTime<Utc> {
    ist()
        .from_local_datetime(&day.and_time(NaiveTime::MIN))
        .single()
        .map_or_else(|| DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
}

fn at_ist(day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    start_of(day) + (time - NaiveTime::MIN)
}

/// A stretch of time in one state.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cell: Cell,
}

/// The state over time from `from` to `to`: the state records carried on, a usable token
/// turning expired at its expiry.
fn stretches(loaded: &Loaded, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Stretch> {
    let mut out = Vec::new();
    let mut current: Option<(DateTime<Utc>, TokenState, Option<DateTime<Utc>>)> = None;
    let mut push = |start: DateTime<Utc>,
                    end: DateTime<Utc>,
                    state: Option<(TokenState, Option<DateTime<Utc>>)>| {
        let (start, end) = (start.max(from), end.min(to));
        if start >= end {
            return;
        }
        match state {
            None => out.push(Stretch {
                from: start,
                to: end,
                cell: Cell::NoRecord,
            }),
            Some((state, exp)) => {
                let cut = exp
                    .filter(|e| state.is_usable() && *e < end)
                    .map(|e| e.max(start));
                match cut {
                    Some(cut) => {
                        if cut > start {
                            out.push(Stretch {
                                from: start,
                                to: cut,
                                cell: Cell::of(state),
                            });
                        }
                        out.push(Stretch {
                            from: cut,
                            to: end,
                            cell: Cell::Down,
                        });
                    }
                    None => out.push(Stretch {
                        from: start,
                        to: end,
                        cell: Cell::of(state),
                    }),
                }
            }
        }
    };
    let states = loaded
        .before
        .iter()
        .chain(&loaded.records)
        .filter_map(|r| match &r.event {
            Event::State {
                state, expires_at, ..
            } => Some((r.at, *state, *expires_at)),
            // A new token stored is a healthy one, whoever watched.
            Event::Renewal(renewal) if renewal.ok => {
                Some((r.at, TokenState::Healthy, renewal.expires_at))
            }
            _ => None,
        });
    let mut last = from;
    for (at, state, exp) in states {
        let at = at.max(from);
        push(last, at, current.map(|(_, s, e)| (s, e)));
        current = Some((at, state, exp));
        last = at;
    }
    push(last, to, current.map(|(_, s, e)| (s, e)));
    out
}

/// The days `first..=last` (IST) from `loaded`, as of `now`.
pub fn days(
    loaded: &Loaded,
    first: NaiveDate,
    last: NaiveDate,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Vec<Day> {
    let from = start_of(first);
    let to = last.succ_opt().map_or(now, start_of).min(now);
    let stretches = stretches(loaded, from, to);
    let mut out = Vec::new();
    let mut day = first;
    while day <= last {
        out.push(one_day(day, &stretches, &loaded.records, calendar, now));
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    out
}

fn one_day(
    date: NaiveDate,
    stretches: &[Stretch],
    records: &[Record],
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Day {
    let start = start_of(date);
    let half = chrono::Duration::minutes(30);
    let mut cells = [Cell::Ahead; CELLS];
    for (i, cell) in cells.iter_mut().enumerate() {
        let (a, b) = (start + half * i as i32, start + half * (i as i32 + 1));
        if a >= now {
            continue;
        }
        *cell = stretches
            .iter()
            .filter(|s| s.from < b && s.to > a)
            .map(|s| s.cell)
            .max()
            .unwrap_or(Cell::NoRecord);
    }
    let trading_day = calendar.is_trading_day(date);
    let down_minutes = if trading_day {
        let (open, close) = (at_ist(date, MARKET_OPEN), at_ist(date, MARKET_CLOSE));
        let secs: i64 = stretches
            .iter()
            .filter(|s| s.cell == Cell::Down)
            .map(|s| (s.to.min(close) - s.from.max(open)).num_seconds().max(0))
            .sum();
        u32::try_from((secs + 30) / 60).unwrap_or(u32::MAX)
    } else {
        0
    };
    let mut day = Day {
        date,
        trading_day,
        down_minutes,
        renewals: Vec::new(),
        states: Vec::new(),
        alerts: Vec::new(),
        calls: 0,
        rate_limited: 0,
        cells,
        renewed_in: Vec::new(),
    };
    for r in records.iter().filter(|r| ist_day(r.at) == date) {
        match &r.event {
            // The dashboard and the daemon on one account both record each change: once.
            Event::State { state, .. } if day.states.last().is_some_and(|s| s.state == *state) => {}
            Event::State { state, .. } => day.states.push(StateRow {
                at: r.at,
                state: *state,
            }),
            Event::Renewal(renewal) => {
                if renewal.ok {
                    let cell = usize::try_from((r.at - start).num_minutes() / 30)
                        .unwrap_or(0)
                        .min(CELLS - 1);
                    day.renewed_in.push(cell);
                }
                day.renewals.push(RenewalRow {
                    at: r.at,
                    ok: renewal.ok,
                    how: renewal.how.clone(),
                    person: renewal.person,
                    took_seconds: renewal.took_ms.saturating_add(500) / 1000,
                    error: renewal.error.clone(),
                });
            }
            Event::Alert { alert, level } => day.alerts.push(AlertRow {
                at: r.at,
                alert: alert.clone(),
                level: level.clone(),
            }),
            Event::Calls {
                calls,
                rate_limited,
                ..
            } => {
                day.calls = day.calls.saturating_add(*calls);
                day.rate_limited = day.rate_limited.saturating_add(*rate_limited);
            }
            Event::Started { .. } | Event::Stopped { .. } | Event::Unknown => {}
        }
    }
    day
}

fn ist_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::timefmt::ist_rfc3339(*t))
}

fn letters<S: serde::Serializer>(cells: &[Cell; CELLS], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&cells.iter().map(|c| c.letter()).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Renewal;
    use std::time::Duration;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        ist()
            .with_ymd_and_hms(2026, 12, d, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    fn state(t: DateTime<Utc>, s: TokenState, exp: Option<DateTime<Utc>>) -> Record {
        Record {
            at: t,
            event: Event::State {
                state: s,
                from: None,
                expires_at: exp,
            },
        }
    }

    fn timeline(day: &Day) -> String {
        day.cells.iter().map(|c| c.letter()).collect()
    }

    #[test]
    fn a_token_that_expired_at_0330_and_was_renewed_at_1000_was_down_45_market_minutes() {
        // Thursday 3 December 2026, a trading day.
        let loaded = Loaded {
            before: Some(state(at(2, 8, 0), TokenState::Healthy, Some(at(3, 3, 30)))),
            records: vec![
                // The process saw the expiry...
                state(at(3, 3, 30), TokenState::Expired, None),
                // ...and a login at 10:00 brought a new token.
                Record {
                    at: at(3, 10, 0),
                    event: Event::Renewal(Renewal::ended(
                        "browser",
                        true,
                        Duration::from_millis(41_200),
                        Ok(at(4, 3, 30)),
                    )),
                },
                state(at(3, 10, 0), TokenState::Healthy, Some(at(4, 3, 30))),
                Record {
                    at: at(3, 11, 0),
                    event: Event::Calls {
                        hour: at(3, 10, 0),
                        calls: 5,
                        rate_limited: 1,
                    },
                },
            ],
            skipped: Vec::new(),
        };
        let days = days(
            &loaded,
            date(3),
            date(4),
            &Calendar::weekdays(),
            at(4, 6, 15),
        );
        let thu = &days[0];
        assert!(thu.trading_day);
        assert_eq!(thu.down_minutes, 45);
        assert_eq!(
            timeline(thu),
            format!("{}{}{}", "h".repeat(7), "x".repeat(13), "h".repeat(28))
        );
        assert_eq!(thu.renewed_in, vec![20]);
        let r = thu.renewed().next().unwrap();
        assert_eq!(
            (r.how.as_str(), r.person, r.took_seconds),
            ("browser", true, 41)
        );
        assert_eq!((thu.calls, thu.rate_limited), (5, 1));
        // Friday: expired at 03:30 with nobody recording, down since; the rest is to come.
        let fri = &days[1];
        assert_eq!(
            timeline(fri),
            format!("{}{}{}", "h".repeat(7), "x".repeat(6), " ".repeat(35))
        );
        // 06:15 is before the market opens.
        assert_eq!(fri.down_minutes, 0);
    }

    #[test]
    fn no_record_before_the_first_and_no_down_minutes_on_a_holiday() {
        let loaded = Loaded {
            before: None,
            records: vec![state(at(5, 12, 0), TokenState::Missing, None)],
            skipped: Vec::new(),
        };
        // Saturday 5 December.
        let d = &days(
            &loaded,
            date(5),
            date(5),
            &Calendar::weekdays(),
            at(5, 13, 0),
        )[0];
        assert!(!d.trading_day);
        assert_eq!(d.down_minutes, 0);
        assert_eq!(
            timeline(d),
            format!("{}{}{}", ".".repeat(24), "xx", " ".repeat(22))
        );
    }

    #[test]
    fn a_cell_shows_the_worst_state_of_its_half_hour() {
        let loaded = Loaded {
            before: None,
            records: vec![
                state(at(3, 9, 0), TokenState::Healthy, Some(at(3, 9, 20))),
                state(at(3, 9, 25), TokenState::Healthy, Some(at(4, 3, 30))),
            ],
            skipped: Vec::new(),
        };
        let d = &days(
            &loaded,
            date(3),
            date(3),
            &Calendar::weekdays(),
            at(3, 10, 0),
        )[0];
        assert_eq!(&timeline(d)[18..20], "xh");
        // 09:20–09:25 is inside market hours: 5 minutes.
        assert_eq!(d.down_minutes, 5);
    }
}
