//! The NSE trading calendar: no deadline alarm and no urgent morning renewal on an exchange
//! holiday (Christmas 2026, a Friday) or a weekend, `market.holidays_file` and its errors, and
//! the `config check` warning for a year the calendar does not know. Days are driven on
//! tokio's paused clock from fixed instants; the one run of the binary at another date uses
//! libfaketime.

mod common;

use chrono::{DateTime, NaiveDate, Utc};
use common::doc::{hardening_table, sync_doc_block};
use common::*;
use std::path::Path;
use tokenwatch::alerts::AlertEvent;
use tokenwatch::calendar::Calendar;
use tokenwatch::config::Strategy;
use tokenwatch::messages::Event;

/// An instant in IST, December 2026: the 24th is a Thursday, the 25th Christmas (a Friday),
/// the 28th a Monday.
fn dec(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    at_ist(2026, 12, day, h, m, 0)
}

/// When `deadline_missed` fired, for a token stored at `stored` that nobody renews
/// (strategy none), the worker running from `stored` to `end`.
fn deadline_alarms(stored: DateTime<Utc>, end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    paused_runtime().block_on(async {
        let mut h = Harness::new(stored).await;
        h.account.renew.strategy = Strategy::None;
        h.store_fresh_token();
        let (handle, log) = h.spawn();
        h.run_until(end).await;
        stop(handle).await;
        events_of(&log, |e| match e {
            Event::Alert(a) if a.event == AlertEvent::DeadlineMissed => Some(a.at),
            _ => None,
        })
    })
}

/// Thursday 24 Dec 09:00 to Monday 28 Dec 08:31, a token that dies on Christmas at 03:30.
fn christmas_alarms() -> Vec<DateTime<Utc>> {
    deadline_alarms(dec(24, 9, 0), dec(28, 8, 31))
}

/// Wednesday 23 Dec 09:00 to Thursday 24 Dec 09:30, a token that dies Thursday 03:30.
fn thursday_alarms() -> Vec<DateTime<Utc>> {
    deadline_alarms(dec(23, 9, 0), dec(24, 9, 30))
}

fn on_day(times: &[DateTime<Utc>], day: u32) -> usize {
    times
        .iter()
        .filter(|t| **t >= dec(day, 0, 0) && **t < dec(day + 1, 0, 0))
        .count()
}

#[test]
fn no_deadline_alarm_on_christmas_or_the_weekend_after() {
    let times = christmas_alarms();
    assert_eq!(on_day(&times, 25), 0, "{times:?}");
    assert_eq!(times, [dec(28, 8, 30)], "only Monday alarms");
}

#[test]
fn a_normal_thursday_still_alarms_once() {
    assert_eq!(thursday_alarms(), [dec(24, 8, 30)]);
}

/// `renew.command` runs: (Christmas to Sunday, by Monday 08:05) for a token that dies on
/// Christmas at 03:30, with a token waiting for the command only from Monday 07:59.
fn renewals_over_christmas() -> (usize, usize, Option<DateTime<Utc>>) {
    paused_runtime().block_on(async {
        let h = Harness::new(dec(24, 9, 0)).await;
        h.store_fresh_token();
        let (handle, _log) = h.spawn();
        h.run_until(dec(27, 23, 59)).await;
        let over_holiday = h.command_runs();
        h.run_until(dec(28, 7, 59)).await;
        h.prepare_command_token();
        h.run_until(dec(28, 8, 5)).await;
        stop(handle).await;
        let stored = tokenwatch::token::read_token_file(&h.token_path())
            .ok()
            .flatten()
            .map(|t| t.expires_at);
        (over_holiday, h.command_runs() - over_holiday, stored)
    })
}

#[test]
fn the_morning_renewal_waits_for_the_next_trading_day() {
    let (holiday, monday, stored) = renewals_over_christmas();
    assert_eq!(
        holiday, 0,
        "renew.command ran over the holiday and the weekend"
    );
    assert_eq!(monday, 1, "one renewal on Monday at 08:00");
    assert_eq!(stored, Some(dec(29, 3, 30)));
}

/// A sandbox whose config names `holidays.txt` with `text`.
fn with_holidays(text: &str) -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    let file = sb.write("config/holidays.txt", text);
    sb.write_yaml("market:\n  holidays_file: holidays.txt\n");
    (sb, file)
}

/// `config check` with a holidays file whose third line is not a day.
fn bad_line_error() -> Out {
    let (sb, _) = with_holidays("# ours\n2026-12-31 Office closed\n31-12-2026 Office closed\n");
    sb.run(&["config", "check"])
}

#[test]
fn a_bad_holidays_line_is_a_config_error_naming_the_file_and_line() {
    let out = bad_line_error();
    assert_eq!(out.code, Some(78), "{}", out.all());
    out.assert_stderr("holidays file ");
    out.assert_stderr("config/holidays.txt");
    out.assert_stderr("market.holidays_file");
    out.assert_stderr("line 3: expected a date as YYYY-MM-DD");
    out.assert_stderr("got \"31-12-2026 Office closed\"");
    // A missing file says so too.
    let sb = Sandbox::new();
    sb.write_yaml("market:\n  holidays_file: nowhere.txt\n");
    let out = sb.run(&["config", "check"]);
    assert_eq!(out.code, Some(78), "{}", out.all());
    out.assert_stderr("config/nowhere.txt");
    out.assert_stderr("cannot read it");
}

/// `config check` with a FIFO as the holidays file (nobody ever writes to it).
fn fifo_error() -> Out {
    let sb = Sandbox::new();
    let fifo = sb.root.join("config/fifo.txt");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    sb.write_yaml("market:\n  holidays_file: fifo.txt\n");
    sb.run(&["config", "check"])
}

#[test]
fn a_fifo_as_the_holidays_file_is_refused_not_waited_on() {
    let out = fifo_error();
    assert_eq!(out.code, Some(78), "{}", out.all());
    out.assert_stderr("config/fifo.txt");
    out.assert_stderr("is not a regular file");
}

#[test]
fn a_holidays_file_is_read_over_the_shipped_list() {
    let (sb, file) = with_holidays("2026-12-31 Office closed\n-2026-12-25 Special session\n");
    let out = sb.run(&["config", "check"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let shown = out.yaml();
    assert_eq!(
        shown["market"]["holidays_file"].as_str(),
        Some(file.to_str().unwrap())
    );
    // The library's loader makes the calendar every account shares.
    let cal = tokenwatch::config::load(
        &tokenwatch::config::LoadOptions {
            cwd: sb.root.clone(),
            ..Default::default()
        },
        &sb.lib_env(),
        None,
    )
    .unwrap();
    let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
    assert!(!cal.calendar().is_trading_day(d(12, 31)));
    assert!(cal.calendar().is_trading_day(d(12, 25)));
    assert!(
        !cal.calendar().is_trading_day(d(11, 24)),
        "the shipped list stands"
    );
    assert!(
        cal.accounts
            .values()
            .all(|a| a.renew.calendar.as_ref() == cal.calendar())
    );
}

/// libfaketime, where the system keeps it.
fn libfaketime() -> Option<&'static str> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
}

/// `config check` run on 1 March 2028 (a year nothing lists): the warnings it printed.
fn uncovered_year_warnings() -> Vec<String> {
    let sb = Sandbox::new();
    let lib = libfaketime().expect(
        "this test runs tokenwatch at another date with libfaketime: install the faketime package",
    );
    let out = sb.run_with(
        &["config", "check"],
        &[("LD_PRELOAD", lib), ("FAKETIME", "@2028-03-01 10:00:00")],
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.stderr
        .lines()
        .filter(|l| l.contains("trading calendar"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn config_check_warns_about_a_year_the_calendar_does_not_know() {
    let w = uncovered_year_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("warning: "), "{}", w[0]);
    assert!(w[0].contains("no holidays for 2028"), "{}", w[0]);
    assert!(w[0].contains("market.holidays_file"), "{}", w[0]);
    // Today's run with a file covering this year and the next says nothing about it.
    let today = chrono::Utc::now().with_timezone(&ist()).date_naive();
    use chrono::Datelike;
    let y = today.year();
    let (sb, _) = with_holidays(&format!("{y}-12-25 Christmas\n{}-12-25 Christmas\n", y + 1));
    let out = sb.run(&["config", "check"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(!out.stderr.contains("trading calendar"), "{}", out.stderr);
}

#[test]
fn the_shipped_calendar_knows_2026() {
    let cal = Calendar::nse();
    assert_eq!(cal.holidays_in(2026), 16);
    assert!(cal.covers(2026));
    let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
    for (day, name) in [
        (d(1, 26), "Republic Day"),
        (d(3, 3), "Holi"),
        (d(10, 2), "Mahatma Gandhi Jayanti"),
        (d(12, 25), "Christmas"),
    ] {
        assert_eq!(cal.holiday(day), Some(name));
        assert!(!cal.is_trading_day(day));
    }
}

/// The reliability doc's `calendar` block, from measured figures.
#[test]
fn the_calendar_table_in_the_reliability_doc_is_current() {
    let christmas = christmas_alarms();
    let thursday = thursday_alarms();
    let (holiday_runs, monday_runs, _) = renewals_over_christmas();
    let bad = bad_line_error();
    let warnings = uncovered_year_warnings();
    let fifo = fifo_error();
    let cal = Calendar::nse();
    let shipped_2026 = cal.holidays_in(2026);
    let shipped_2027 = cal.holidays_in(2027);
    let bad_line = if bad.stderr.contains("line 3:") {
        "line 3 named"
    } else {
        "no line named"
    };

    let rows = [
        (
            "Deadline alarm on Christmas, Fri 25 Dec 2026",
            "`deadline_missed` fired at 08:30 IST on the exchange holiday",
            "no alarm on the holiday or the weekend; the next is Monday 08:30 IST",
            format!("{} alarms on 25 Dec 2026", on_day(&christmas, 25)),
            "no_deadline_alarm_on_christmas_or_the_weekend_after",
        ),
        (
            "Deadline alarm on a normal Thursday, 24 Dec 2026",
            "fired at 08:30 IST",
            "still fires at 08:30 IST",
            format!("{} alarm at 08:30 IST", thursday.len()),
            "a_normal_thursday_still_alarms_once",
        ),
        (
            "Morning renewal when the token dies on a holiday",
            "`renew.command` (or a browser login) ran at 08:00 IST on Christmas",
            "waits for `renew.not_before` on the next trading day",
            format!("{holiday_runs} runs 25–27 Dec, {monday_runs} on Mon 28 Dec"),
            "the_morning_renewal_waits_for_the_next_trading_day",
        ),
        (
            "NSE holidays shipped",
            "none: only weekends were closed",
            "the exchange's list, built into the binary (2027 not yet published)",
            format!("{shipped_2026} holidays for 2026, {shipped_2027} for 2027"),
            "the_shipped_calendar_knows_2026",
        ),
        (
            "A bad line in `market.holidays_file`",
            "no such key",
            "config error naming the file, the key and the line",
            bad_line.to_string(),
            "a_bad_holidays_line_is_a_config_error_naming_the_file_and_line",
        ),
        (
            "A FIFO as `market.holidays_file`",
            "`config check` and the daemon waited forever for a writer",
            "refused at once: not a regular file",
            format!("exit {} without waiting", fifo.code.unwrap_or(-1)),
            "a_fifo_as_the_holidays_file_is_refused_not_waited_on",
        ),
        (
            "A year the calendar has no holidays for",
            "nothing said; holidays silently treated as trading days",
            "`config check` warns and says what to add",
            format!("{} warning for 2028", warnings.len()),
            "config_check_warns_about_a_year_the_calendar_does_not_know",
        ),
    ];
    let md = hardening_table(rows.into_iter().map(|(case, before, now, figure, test)| {
        [
            case.into(),
            before.into(),
            now.into(),
            figure,
            format!("tests/calendar.rs::{test}"),
        ]
    }));
    // The figures are the bounds the tests hold: the table is the same on every run.
    assert_eq!(on_day(&christmas, 25), 0);
    assert_eq!(thursday.len(), 1);
    assert_eq!((holiday_runs, monday_runs), (0, 1));
    assert_eq!(bad_line, "line 3 named");
    assert_eq!(warnings.len(), 1);
    assert_eq!(fifo.code, Some(78));
    if let Err(e) = sync_doc_block("calendar", &md, &[]) {
        panic!("{e}");
    }
}
