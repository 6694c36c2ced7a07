//! The dashboard's `h`: the last 14 days of the shown account as a timeline.
//!
//! A fixed fortnight is written to a temporary history folder with the library's own
//! recorder, read back with `history::load` and `history::days::days` at a fixed `now` (Fri
//! 04 Dec 2026, 14:32:05 IST), and drawn with ratatui's `TestBackend`; insta snapshots hold
//! the text and the colours. The keys are checked on `App` alone, and once in the real binary
//! in tmux, where the dashboard's loop reads the folder itself.

mod common;

use chrono::{DateTime, Days, NaiveDate, Utc};
use common::screen::{dump, row_text, screen_text};
use common::{Snapshot, Tmux, at_ist, sh_quote, tokens};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokenwatch::calendar::Calendar;
use tokenwatch::config::Strategy;
use tokenwatch::history::{self, Event, Recorder, Renewal};
use tokenwatch::messages::TokenInfo;
use tokenwatch::schedule::Renewal as Plan;
use tokenwatch::token::store::TokenStore;
use tokenwatch::token::{ExpirySource, TokenState};
use tokenwatch::tui::app::{Action, App, HistoryView, KeyAction, Popup};

/// An IST wall-clock time in late 2026 as an instant.
fn at(month: u32, day: u32, h: u32, m: u32) -> DateTime<Utc> {
    at_ist(2026, month, day, h, m, 0)
}

/// Fri 04 Dec 2026, 14:32:05 IST: the afternoon is still to come.
fn now() -> DateTime<Utc> {
    at_ist(2026, 12, 4, 14, 32, 5)
}

fn date(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).unwrap()
}

/// Where the drawn screens say the files are (the real folder is a temporary one).
const SHOWN_DIR: &str = "/home/jane/algo/config/upstox_token.json.history";
const HOME: &str = "/home/jane";

fn state(rec: &mut Recorder, t: DateTime<Utc>, s: TokenState, exp: Option<DateTime<Utc>>) {
    rec.record(
        t,
        Event::State {
            state: s,
            from: None,
            expires_at: exp,
        },
    );
}

fn renewal(rec: &mut Recorder, t: DateTime<Utc>, how: &str, result: Result<DateTime<Utc>, &str>) {
    let person = how == "browser";
    let took = Duration::from_secs(if person { 41 } else { 6 });
    rec.record(t, Event::Renewal(Renewal::ended(how, person, took, result)));
}

fn alert(rec: &mut Recorder, t: DateTime<Utc>, name: &str, level: &str) {
    rec.record(
        t,
        Event::Alert {
            alert: name.into(),
            level: level.into(),
        },
    );
}

/// The fortnight 21 Nov – 04 Dec 2026, as the worker would have recorded it:
///
/// - nothing before Tue 24 Nov (a holiday: Guru Nanak Dev), when the dashboard first ran, found
///   no token and a login at 09:05 brought one;
/// - each morning the token turns warning at 01:30, critical at 03:00, expires at 03:30, and
///   an unattended TOTP renewal at 08:30 brings the next one;
/// - the weekend of 28–29 Nov: expired Saturday 03:30, renewed Monday, after one failed try;
/// - Thu 03 Dec: no unattended renewal; expired 03:30 until a browser login at 10:00 (45
///   market minutes), with three alerts;
/// - today, Fri 04 Dec: renewed 08:30, the rest of the day still to come;
/// - Tue 01 Dec's file ends in a line torn by a crash.
fn write_fortnight(token: &Path) -> PathBuf {
    let mut rec = Recorder::for_token(token, history::DEFAULT_KEEP);
    use chrono::Datelike;
    rec.record(at(11, 24, 9, 0), Event::Started { pid: 4242 });
    state(&mut rec, at(11, 24, 9, 0), TokenState::Missing, None);
    renewal(&mut rec, at(11, 24, 9, 5), "browser", Ok(at(11, 25, 3, 30)));
    state(
        &mut rec,
        at(11, 24, 9, 5),
        TokenState::Healthy,
        Some(at(11, 25, 3, 30)),
    );
    let mut has_token = true;
    for day in date(11, 25).iter_days().take_while(|d| *d <= date(12, 4)) {
        let (mo, d) = (day.month(), day.day());
        if has_token {
            let exp = Some(at(mo, d, 3, 30));
            state(&mut rec, at(mo, d, 1, 30), TokenState::Warning, exp);
            state(&mut rec, at(mo, d, 3, 0), TokenState::Critical, exp);
            state(&mut rec, at(mo, d, 3, 30), TokenState::Expired, None);
        }
        let next_day = day.checked_add_days(Days::new(1)).unwrap();
        let next = at(next_day.month(), next_day.day(), 3, 30);
        // Renewed when, how, and whether a try failed first.
        let (renewed, how) = match (mo, d) {
            // The weekend: nobody renews.
            (11, 28) | (11, 29) => {
                has_token = false;
                continue;
            }
            (11, 30) => {
                renewal(&mut rec, at(11, 30, 8, 30), "totp", Err("TOTP rejected"));
                (at(11, 30, 8, 35), "totp")
            }
            (12, 3) => {
                alert(&mut rec, at(12, 3, 3, 30), "expired", "critical");
                alert(&mut rec, at(12, 3, 9, 15), "deadline_missed", "critical");
                (at(12, 3, 10, 0), "browser")
            }
            _ => (at(mo, d, 8, 30), "totp"),
        };
        renewal(&mut rec, renewed, how, Ok(next));
        state(&mut rec, renewed, TokenState::Healthy, Some(next));
        if (mo, d) == (12, 3) {
            alert(&mut rec, renewed, "recovered", "info");
        }
        has_token = true;
    }
    // A crash in the middle of a write, at the end of Tuesday's file.
    use std::io::Write;
    let dir = rec.dir().to_path_buf();
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("2026-12-01.jsonl"))
        .unwrap()
        .write_all(br#"{"at":"2026-12-01T23:10:00+05:30","event":"sta"#)
        .unwrap();
    dir
}

/// What the dashboard's loop reads when `h` opens, here from `dir` at [`now`].
fn read(account: &str, dir: &Path) -> HistoryView {
    let (first, last) = (date(11, 21), date(12, 4));
    let loaded = history::load(dir, first, last);
    HistoryView {
        account: account.into(),
        dir: PathBuf::from(SHOWN_DIR),
        found: dir.is_dir(),
        days: history::days::days(&loaded, first, last, &Calendar::nse(), now()),
        skipped: loaded.skipped,
        read_at: now(),
    }
}

fn token_info() -> TokenInfo {
    TokenInfo {
        masked: "eyJ0…a1B2".to_string(),
        user_id: Some("AB1234".to_string()),
        user_name: Some("Jane D.".to_string()),
        issued_at: Some(at(12, 4, 8, 30)),
        expires_at: at(12, 5, 3, 30),
        expiry_source: ExpirySource::ExpiresAt,
        obtained_via: Some("totp".to_string()),
        version: "3f1c0a9e5b7d2e44".into(),
    }
}

fn snap(account: &str) -> Snapshot {
    Snapshot {
        broker: Default::default(),
        account: account.to_string(),
        at: now(),
        state: TokenState::Healthy,
        token: Some(token_info()),
        answer: None,
        last_check_at: Some(at(12, 4, 14, 2)),
        last_check_result: Some("valid".to_string()),
        next_check_at: Some(at(12, 4, 15, 2)),
        renewal: Plan::NotDue {
            due_at: at(12, 5, 2, 30),
        },
        busy: false,
        strategy: Strategy::Totp,
        token_file: PathBuf::from("/home/jane/algo/config/upstox_token.json"),
        backups: vec![],
        token_error: None,
        login: None,
        renewals: Default::default(),
        file_writes: Default::default(),
    }
}

/// The dashboard with the history popup open over the fortnight.
fn history_app(color: bool, unicode: bool) -> App {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_fortnight(&dir.path().join("upstox_token.json"));
    let mut app = App::new(
        vec![snap("default")],
        Duration::from_secs(10),
        color,
        unicode,
    );
    app.home = Some(HOME.to_string());
    app.popup = Some(Popup::History);
    app.history = Some(read("default", &folder));
    app
}

fn draw(app: &App, w: u16, h: u16) -> Buffer {
    common::screen::draw_at(app, now(), w, h)
}

/// The popup's rows: from its top border (`┌ History` / `+ History`) to its bottom one.
fn popup_rows(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let top = lines
        .iter()
        .position(|l| l.contains("┌ History") || l.contains("+ History -"))
        .unwrap_or_else(|| panic!("no history popup:\n{text}"));
    let bottom = lines[top + 1..]
        .iter()
        .position(|l| l.contains("Esc close"))
        .map(|i| top + 1 + i)
        .unwrap_or_else(|| panic!("no bottom border:\n{text}"));
    lines[top..=bottom].to_vec()
}

/// The popup row of the day labelled `label`.
fn day_row<'a>(rows: &[&'a str], label: &str) -> &'a str {
    rows.iter()
        .find(|r| r.contains(&format!(" {label} ")))
        .unwrap_or_else(|| panic!("no row for {label}:\n{}", rows.join("\n")))
}

// ---- the popup as drawn ----

#[test]
fn the_fortnight_as_a_timeline_at_each_size() {
    let app = history_app(true, true);
    for (w, h) in [(120, 36), (100, 30), (80, 24), (64, 24)] {
        let buf = draw(&app, w, h);
        insta::assert_snapshot!(format!("history_{w}x{h}"), dump(&buf));
        let text = screen_text(&buf);
        let rows = popup_rows(&text);
        // Nothing wraps: every row is one line within the terminal, borders closed.
        for r in &rows {
            assert!(
                r.chars().count() <= usize::from(w),
                "{w}x{h}: {r:?} is too wide"
            );
        }
        let long = w >= 100;
        let label = |l: &str, s: &str| if long { l.to_string() } else { s.to_string() };
        // Newest first: today heads the rows, under the hour scale.
        assert!(rows[1].contains("00") && rows[1].contains("21"), "{text}");
        assert!(rows[2].contains(&label("Fri 04 Dec", "Fri 04")), "{text}");
        // The legend explains every glyph.
        for word in [
            "healthy",
            "warning",
            "critical",
            "not usable",
            "no record",
            "renewed",
        ] {
            assert!(
                text.contains(word),
                "{w}x{h}: no {word:?} in the legend:\n{text}"
            );
        }
        // Thursday: expired 03:30, a browser login at 10:00, 45 minutes of market lost.
        let thu = day_row(&rows, &label("Thu 03 Dec", "Thu 03"));
        assert!(thu.contains("45m down"), "{w}x{h}: {thu}");
        assert!(thu.contains('↻'), "{w}x{h}: {thu}");
        if w >= 100 {
            assert!(thu.contains("↻ 10:00 browser 45m down"), "{w}x{h}: {thu}");
        }
        if w >= 120 {
            assert!(thu.contains("3 alerts"), "{w}x{h}: {thu}");
        }
        // The weekend is closed: no minutes counted, however long the token was dead.
        let sun = day_row(&rows, &label("Sun 29 Nov", "Sun 29"));
        assert!(sun.contains("closed") && !sun.contains("down"), "{sun}");
        assert!(sun.contains("xxxxxxxxxxxx"), "{sun}");
    }
}

#[test]
fn the_cells_follow_the_day_half_hour_by_half_hour() {
    let app = history_app(true, true);
    let text = screen_text(&draw(&app, 120, 36));
    let rows = popup_rows(&text);
    let cells = |label: &str| {
        let row = day_row(&rows, label);
        let start = row.find(label).unwrap() + label.len() + 1;
        row[start..].chars().take(48).collect::<String>()
    };
    // Thursday: healthy until 01:30, warning, critical from 03:00, dead 03:30–10:00, the
    // login's cell, healthy after.
    let thu = format!(
        "{}{}{}{}{}{}",
        "█".repeat(3),
        "▓".repeat(3),
        "▒",
        "x".repeat(13),
        "↻",
        "█".repeat(27)
    );
    assert_eq!(cells("Thu 03 Dec"), thu);
    // Today: up to the half hour of 14:32, then blank.
    let fri = cells("Fri 04 Dec");
    assert_eq!(fri.chars().filter(|c| *c != ' ').count(), 30, "{fri:?}");
    assert!(fri.ends_with(&" ".repeat(18)), "{fri:?}");
    // Before the first record: no record.
    assert_eq!(cells("Mon 23 Nov"), "·".repeat(48));
    assert!(day_row(&rows, "Mon 23 Nov").contains("no record"));
    // The hour scale: 09 over 09:00 (the 19th cell), the market's hours filled.
    let scale = rows[1];
    let zero = scale.find("00").unwrap();
    assert_eq!(
        &scale[zero..].chars().skip(18).take(14).collect::<String>(),
        "09════12════15"
    );
    // The torn line and the folder, with ~ for home.
    assert!(
        text.contains("Skipped 1 unreadable line (torn by a crash?): 2026-12-01.jsonl line"),
        "{text}"
    );
    assert!(
        text.contains("Files: ~/algo/config/upstox_token.json.history"),
        "{text}"
    );
}

#[test]
fn at_64_columns_one_cell_is_an_hour_the_worse_of_its_halves() {
    let app = history_app(true, true);
    let text = screen_text(&draw(&app, 64, 24));
    let rows = popup_rows(&text);
    let thu = day_row(&rows, "Thu 03");
    let start = thu.find("Thu 03").unwrap() + 7;
    let cells: String = thu[start..].chars().take(24).collect();
    // 01:00 holds healthy and warning: warning. 03:00 holds critical and dead: dead. The
    // login's hour is marked.
    assert_eq!(cells, format!("█▓▓{}↻{}", "x".repeat(7), "█".repeat(13)));
}

#[test]
fn without_colour_or_unicode_every_state_keeps_a_glyph_of_its_own() {
    let app = history_app(false, false);
    for (w, h) in [(120, 36), (80, 24), (64, 24)] {
        let buf = draw(&app, w, h);
        insta::assert_snapshot!(format!("history_{w}x{h}_ascii_no_color"), dump(&buf));
        let text = screen_text(&buf);
        assert!(text.is_ascii(), "{w}x{h} is not ASCII:\n{text}");
        for y in 0..h {
            for x in 0..w {
                let c = &buf[(x, y)];
                assert!(
                    c.fg == Color::Reset && c.bg == Color::Reset,
                    "{w}x{h}: a colour at {x},{y} under NO_COLOR"
                );
            }
        }
        let rows = popup_rows(&text);
        let thu = day_row(&rows, if w >= 100 { "Thu 03 Dec" } else { "Thu 03" });
        // (An hour holds the worse of its halves: at 64 columns 03:00's critical half is
        // inside its dead hour.)
        let glyphs: &[&str] = if w > 64 {
            &["#", "~", "!", "x", "R"]
        } else {
            &["#", "~", "x", "R"]
        };
        for glyph in glyphs {
            assert!(thu.contains(glyph), "{w}x{h}: no {glyph:?} in {thu}");
        }
        for item in [
            "# healthy",
            "~ warning",
            "! critical",
            "x not usable",
            ". no record",
            "R renewed",
        ] {
            assert!(text.contains(item), "{w}x{h}: no {item:?}:\n{text}");
        }
    }
}

#[test]
fn short_terminals_show_as_many_days_as_fit() {
    let app = history_app(true, true);
    for h in [12, 14, 18, 20] {
        let text = screen_text(&draw(&app, 80, h));
        let rows = popup_rows(&text);
        let days = rows
            .iter()
            .filter(|r| {
                ["Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun "]
                    .iter()
                    .any(|d| r.contains(d))
            })
            .count();
        assert!(days >= 1, "80x{h}:\n{text}");
        assert!(days < 14, "80x{h}: all 14 days cannot fit:\n{text}");
        // Today first, the legend kept.
        assert!(rows[2].contains("Fri 04"), "80x{h}:\n{text}");
        assert!(text.contains("healthy"), "80x{h}:\n{text}");
    }
    // Every size down to the smallest draws without a panic.
    for (w, h) in [(60, 12), (61, 13), (200, 60), (90, 12)] {
        draw(&app, w, h);
    }
}

#[test]
fn no_folder_is_no_history_yet_said_calmly() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = history_app(true, true);
    let mut view = read("default", &dir.path().join("nothing.history"));
    assert!(!view.found);
    view.dir = PathBuf::from(SHOWN_DIR);
    app.history = Some(view);
    let buf = draw(&app, 80, 24);
    insta::assert_snapshot!("history_none_80x24", dump(&buf));
    let text = screen_text(&buf);
    assert!(text.contains("No history yet for this account."), "{text}");
    assert!(text.contains("the daemon record"), "{text}");
    assert!(
        text.contains("~/algo/config/upstox_token.json.history"),
        "{text}"
    );
}

// ---- the keys ----

fn press(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn key(app: &mut App, k: KeyEvent) {
    let action = app.action_for(k).expect("a bound key");
    app.key(action, now());
}

#[test]
fn h_opens_the_shown_accounts_history_esc_closes_it_and_tab_asks_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_fortnight(&dir.path().join("upstox_token.json"));
    let mut app = App::new(
        vec![snap("default"), snap("work")],
        Duration::from_secs(10),
        true,
        true,
    );
    assert_eq!(
        app.action_for(press('h')),
        Some(KeyAction::Do(Action::History))
    );
    key(&mut app, press('h'));
    assert_eq!(app.popup, Some(Popup::History));
    // The loop reads the history; the keys never do.
    assert!(std::mem::take(&mut app.history_requested));
    assert!(app.history.is_none());
    let text = screen_text(&draw(&app, 100, 30));
    assert!(text.contains("History · default"), "{text}");
    assert!(text.contains("Reading the history…"), "{text}");
    app.history = Some(read("default", &folder));
    let text = screen_text(&draw(&app, 100, 30));
    assert!(text.contains("Fri 04 Dec"), "{text}");

    // Esc closes; h opens again, and h closes.
    key(&mut app, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(app.popup, None);
    assert!(!screen_text(&draw(&app, 100, 30)).contains("History ·"));
    key(&mut app, press('h'));
    assert!(std::mem::take(&mut app.history_requested));
    key(&mut app, press('h'));
    assert_eq!(app.popup, None);
    assert!(!app.history_requested);

    // Another tab with the popup open: that account's history is asked for, and the other
    // account's days are not shown as its own meanwhile.
    key(&mut app, press('h'));
    app.history_requested = false;
    key(&mut app, KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    assert_eq!(app.selected, 1);
    assert!(app.history_requested);
    let text = screen_text(&draw(&app, 100, 30));
    assert!(text.contains("History · work"), "{text}");
    assert!(!text.contains("Fri 04 Dec"), "{text}");
    app.history = Some(read("work", &folder));
    let text = screen_text(&draw(&app, 100, 30));
    assert!(
        text.contains("History · work") && text.contains("Fri 04 Dec"),
        "{text}"
    );
    // With the popup closed, switching asks for nothing.
    key(&mut app, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    app.history_requested = false;
    key(&mut app, KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    assert!(!app.history_requested);
}

#[test]
fn the_footer_shows_h_where_it_fits_and_help_always() {
    let mut app = history_app(true, true);
    app.popup = None;
    let footer = |w: u16, h: u16| row_text(&draw(&app, w, h), h - 1).trim_end().to_string();
    assert_eq!(
        footer(100, 30),
        " r refresh  l login  d details  h history  x dismiss  ? help  q quit"
    );
    assert_eq!(
        footer(64, 24),
        " r refresh  l login  d details  x dismiss  ? help  q quit"
    );
    app.popup = Some(Popup::Help);
    let text = screen_text(&draw(&app, 100, 30));
    assert!(
        text.contains("h          the last 14 days of this account"),
        "{text}"
    );
}

// ---- the real binary ----

/// The dashboard on a sandbox whose token has a recorded past: `h` shows today's row (the
/// first under the scale) with the states recorded, the renewal, and the legend; Esc closes.
#[test]
fn h_in_the_real_dashboard_shows_the_recorded_days() {
    let sb = common::Sandbox::new();
    sb.write_yaml(
        "upstox:\n  api_base: \"http://127.0.0.1:9/\"\ntoken:\n  path: upstox_token.json\n  backups: []\nmonitor:\n  check_interval: 30m\n  max_retries: 1\nrenew:\n  strategy: none\n",
    );
    let now = Utc::now();
    let token = tokens::token(
        "history-test-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        Some(now),
        now + chrono::Duration::hours(20),
    );
    let token_path = sb.root.join("config/upstox_token.json");
    TokenStore::new(token_path.clone(), vec![])
        .write(&token)
        .unwrap();
    // Dead until a browser login two hours ago (whatever the time of day: yesterday's row or
    // today's), healthy since.
    let mut rec = Recorder::for_token(&token_path, history::DEFAULT_KEEP);
    let two_hours = chrono::Duration::hours(2);
    state(&mut rec, now - two_hours * 2, TokenState::Expired, None);
    renewal(
        &mut rec,
        now - two_hours,
        "browser",
        Ok(now + chrono::Duration::hours(20)),
    );
    state(
        &mut rec,
        now - two_hours,
        TokenState::Healthy,
        Some(now + chrono::Duration::hours(20)),
    );

    let bin = assert_cmd::cargo::cargo_bin("tokenwatch");
    let script = format!(
        "cd {}; exec {} tui",
        sh_quote(&sb.root.to_string_lossy()),
        sh_quote(&bin.to_string_lossy())
    );
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let mut tmux_env = vec![("PATH".to_string(), path)];
    tmux_env.extend(sb.env.iter().cloned());
    let socket = format!("tokenwatch-history-{}", std::process::id());
    let mut tmux = Tmux::start(socket, &tmux_env, &sb.env, (100, 30), &script);
    tmux.step = Duration::from_secs(60);
    tmux.wait_until("the dashboard", |s| s.contains("tokenwatch · default"));
    tmux.keys(&["h"]);
    let screen = tmux.wait_until("the history popup", |s| {
        s.contains("History · default") && s.contains("not usable")
    });
    let rows = popup_rows(&screen);
    // Today (IST) heads the rows, with a state in its cells.
    let today = history::ist_day(Utc::now());
    let label = today.format("%a %d %b").to_string();
    let label_then = history::ist_day(now).format("%a %d %b").to_string();
    assert!(
        rows[2].contains(&label) || rows[2].contains(&label_then),
        "{screen}"
    );
    assert!(
        rows[2].contains('█') || rows[2].contains('▒') || rows[2].contains('▓'),
        "{screen}"
    );
    // The login, in its cell and in the summary, today or yesterday.
    assert!(
        rows[2..4]
            .iter()
            .any(|r| r.contains('↻') && r.contains("browser")),
        "{screen}"
    );
    assert!(
        screen.contains("upstox_token.json.history"),
        "the folder is named:\n{screen}"
    );
    // While it stays open it is read again: a renewal that fails now shows in today's row.
    let label_now = history::ist_day(Utc::now()).format("%a %d %b").to_string();
    renewal(
        &mut rec,
        Utc::now(),
        "command",
        Err("the command exited with 1"),
    );
    tmux.wait_until("the failed renewal in today's row", |s| {
        s.lines()
            .any(|l| l.contains(&label_now) && l.contains("failed"))
    });
    tmux.keys(&["Escape"]);
    tmux.wait_until("the popup closed", |s| !s.contains("History ·"));
    tmux.keys(&["q"]);
}
