//! The dashboard's screens, drawn with ratatui's `TestBackend` at a fixed `now` from
//! snapshots built by hand, and compared with insta snapshots that hold the text *and* the
//! colours (a run-length list of styled cells under each screen).
//!
//! tui-logger is process-wide: nothing here initialises it except `log_pane_shows_level_and_message`,
//! which holds `SCREEN` while its line is in the buffer and clears the buffer before letting go,
//! so every other screen's log pane is empty.

mod common;

use chrono::{DateTime, Duration as Span, Utc};
use common::screen::{dump, row_text, screen_text, width};
use common::{Level, Snapshot, Topic, at_ist, ist};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokenwatch::config::Strategy;
use tokenwatch::messages::TokenInfo;
use tokenwatch::schedule::{Deferral, Renewal};
use tokenwatch::token::verdict::{CheckResult, StoredVerdict};
use tokenwatch::token::{ExpirySource, TokenState};
use tokenwatch::tui::app::{App, Banner, LoginStatus, LoginView, Popup};
use tokenwatch::tui::ui::{self, Options};

/// Serialises drawing against the one test that puts a line into tui-logger's global buffer.
static SCREEN: Mutex<()> = Mutex::new(());

fn screen_lock() -> MutexGuard<'static, ()> {
    SCREEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// An IST wall-clock time as an instant.
fn at(d: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    at_ist(2026, 11, d, h, m, s)
}

/// Thu 26 Nov 2026, 14:32:05 IST.
fn now() -> DateTime<Utc> {
    at(26, 14, 32, 5)
}

fn token(issued: DateTime<Utc>, expires: DateTime<Utc>) -> TokenInfo {
    TokenInfo {
        masked: "eyJ0…a1B2".to_string(),
        user_id: Some("AB1234".to_string()),
        user_name: Some("Jane D.".to_string()),
        issued_at: Some(issued),
        expires_at: expires,
        expiry_source: ExpirySource::ExpiresAt,
        obtained_via: Some("oauth".to_string()),
        version: "3f1c0a9e5b7d2e44".into(),
    }
}

/// The API's answer at `at`.
fn answer(result: CheckResult, at: DateTime<Utc>) -> StoredVerdict {
    let code = (result == CheckResult::Invalid).then(|| "UDAPI100050".to_string());
    StoredVerdict { at, result, code }
}

/// The `default` account, healthy: issued 09:12 today, dies 03:30 tomorrow, checked 14:02.
fn healthy() -> Snapshot {
    Snapshot {
        broker: Default::default(),
        account: "default".to_string(),
        at: now(),
        state: TokenState::Healthy,
        token: Some(token(at(26, 9, 12, 0), at(27, 3, 30, 0))),
        answer: Some(answer(CheckResult::Valid, at(26, 14, 2, 11))),
        last_check_at: Some(at(26, 14, 2, 11)),
        last_check_result: Some("valid".to_string()),
        next_check_at: Some(at(26, 15, 2, 11)),
        renewal: Renewal::NotDue {
            due_at: at(27, 2, 30, 0),
        },
        busy: false,
        strategy: Strategy::Browser,
        token_file: PathBuf::from("/home/jane/algo/config/upstox_token.json"),
        backups: vec![
            PathBuf::from("/home/jane/algo/config/backup/upstox_token.json"),
            PathBuf::from("/home/jane/.local/state/tokenwatch/upstox_token.json"),
        ],
        token_error: None,
        login: None,
        renewals: Default::default(),
        file_writes: Default::default(),
    }
}

/// 2h 10m left: warning.
fn warning() -> Snapshot {
    Snapshot {
        state: TokenState::Warning,
        token: Some(token(at(26, 9, 12, 0), now() + Span::minutes(130))),
        ..healthy()
    }
}

/// 25 minutes left, due for renewal, a check running.
fn critical() -> Snapshot {
    Snapshot {
        state: TokenState::Critical,
        token: Some(token(at(26, 9, 12, 0), now() + Span::minutes(25))),
        renewal: Renewal::Due,
        busy: true,
        ..healthy()
    }
}

/// Yesterday's token, dead since 03:30; the last check could not reach the API.
fn expired() -> Snapshot {
    Snapshot {
        state: TokenState::Expired,
        token: Some(token(at(25, 9, 12, 0), at(26, 3, 30, 0))),
        answer: None,
        last_check_at: Some(at(26, 3, 30, 0)),
        last_check_result: Some("unreachable: connection refused".to_string()),
        next_check_at: None,
        renewal: Renewal::Deferred {
            until: at(26, 15, 0, 0),
            reason: Deferral::RecentFailure,
        },
        ..healthy()
    }
}

/// The API rejected today's token.
fn invalid() -> Snapshot {
    Snapshot {
        state: TokenState::Invalid,
        answer: Some(answer(CheckResult::Invalid, at(26, 14, 2, 11))),
        last_check_result: Some(
            "rejected: UDAPI100050 Invalid token used to access API".to_string(),
        ),
        next_check_at: None,
        renewal: Renewal::Due,
        ..healthy()
    }
}

/// No token file.
fn missing() -> Snapshot {
    Snapshot {
        state: TokenState::Missing,
        token: None,
        answer: None,
        last_check_at: None,
        last_check_result: None,
        next_check_at: None,
        renewal: Renewal::Due,
        ..healthy()
    }
}

fn banner(
    level: Level,
    topic: Topic,
    title: &str,
    message: &str,
    created: DateTime<Utc>,
) -> Banner {
    Banner {
        account: "default".to_string(),
        level,
        topic,
        title: title.to_string(),
        message: message.to_string(),
        created,
        ttl: (level != Level::Critical).then_some(Duration::from_secs(3600)),
    }
}

/// The home folder every screen here is drawn with: Jane's, so her paths show as `~/…`.
const HOME: &str = "/home/jane";

fn app(snap: Snapshot) -> App {
    let mut app = App::new(vec![snap], Duration::from_secs(10), true, true);
    app.home = Some(HOME.to_string());
    app
}

fn with_banners(mut app: App, banners: Vec<Banner>) -> App {
    app.banners = banners;
    app
}

/// The healthy screen with its "Token valid" banner.
fn healthy_app() -> App {
    with_banners(
        app(healthy()),
        vec![banner(
            Level::Info,
            Topic::TokenState,
            "Token valid (API)",
            "The API accepted the token; it expires Fri 27 Nov 03:30 IST.",
            at(26, 14, 2, 11),
        )],
    )
}

fn draw(app: &App, w: u16, h: u16) -> Buffer {
    let _guard = screen_lock();
    draw_unlocked(app, w, h)
}

/// The sizes every screen is snapshotted at: a tmux pane beside the engine
/// (`split-window -h -l 64`), the classic terminal, a wide one.
const SIZES: [(u16, u16); 3] = [(64, 30), (80, 24), (120, 36)];

/// Snapshots at 100×30 and at [`SIZES`]; for a screen drawn in colour with Unicode, at
/// [`SIZES`] in ASCII too (`unicode: false`, as under `LANG=C`), named `…_ascii`.
fn check(name: &str, app: &App) {
    for (w, h) in [(100, 30)].into_iter().chain(SIZES) {
        let buf = draw(app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), dump(&buf));
    }
    if app.unicode && app.color {
        let ascii = App {
            unicode: false,
            accounts: app.accounts.clone(),
            banners: app.banners.clone(),
            popup: app.popup,
            login: app.login.clone(),
            input: app.input.clone(),
            home: app.home.clone(),
            selected: app.selected,
            ..App::new(Vec::new(), app.dismiss_after, app.color, false)
        };
        for (w, h) in SIZES {
            let buf = draw(&ascii, w, h);
            let text = screen_text(&buf);
            assert!(text.is_ascii(), "{name} at {w}x{h} is not ASCII:\n{text}");
            insta::assert_snapshot!(format!("{name}_{w}x{h}_ascii"), dump(&buf));
        }
    }
}

/// A state's screen: `snap` with the banner its state raises (level, title, message, when),
/// checked against its snapshots; drawn at 100×30.
fn state_screen(
    name: &str,
    snap: Snapshot,
    (level, title, message, created): (Level, &str, &str, DateTime<Utc>),
) -> Buffer {
    let app = with_banners(
        app(snap),
        vec![banner(level, Topic::TokenState, title, message, created)],
    );
    check(name, &app);
    draw(&app, 100, 30)
}

/// The foreground of the gauge's first cell (row 3, column 2).
fn gauge_fg(buf: &Buffer) -> Color {
    assert!(
        ["█", "#"].contains(&buf[(1, 2)].symbol()),
        "no filled gauge cell at (1, 2):\n{}",
        screen_text(buf)
    );
    buf[(1, 2)].fg
}

/// The screen holds `needle`; the test fails with the screen otherwise.
fn assert_shows(buf: &Buffer, needle: &str) {
    let text = screen_text(buf);
    assert!(
        text.contains(needle),
        "no {needle:?} on the screen:\n{text}"
    );
}

/// The healthy screen with `popup` open, checked against its snapshots: its text at 100×30.
fn popup_text(name: &str, popup: Popup) -> String {
    let mut app = healthy_app();
    app.popup = Some(popup);
    check(name, &app);
    screen_text(&draw(&app, 100, 30))
}

fn contains(buf: &Buffer, needle: &str) -> bool {
    screen_text(buf).contains(needle)
}

// ---- one screen per state ----

#[test]
fn healthy_screen() {
    let app = healthy_app();
    check("healthy", &app);
    let buf = draw(&app, 100, 30);
    assert_eq!(gauge_fg(&buf), Color::Green);
    let top = row_text(&buf, 0);
    assert!(
        top.starts_with(" tokenwatch · default (Upstox AB1234 Jane D.)"),
        "{top}"
    );
    assert!(top.contains("HEALTHY · API ✓ 14:02 IST"), "{top}");
    assert!(top.trim_end().ends_with("14:32:05 IST"), "{top}");
    assert_eq!(
        row_text(&buf, 1).trim_end(),
        " 🔑 Token: 12h 57m 55s left · expires Fri 27 Nov 03:30 IST"
    );
    // 12h57m55s of 18h18m: 71%.
    assert!(
        row_text(&buf, 2).trim_end().ends_with(" 71%"),
        "{}",
        row_text(&buf, 2)
    );
}

#[test]
fn warning_screen() {
    let app = app(warning());
    check("warning", &app);
    let buf = draw(&app, 100, 30);
    assert_eq!(gauge_fg(&buf), Color::Rgb(255, 165, 0));
    assert_shows(&buf, "WARNING · API ✓ 14:02 IST");
    assert_shows(
        &buf,
        "Token: 2h 10m 00s left · expires Thu 26 Nov 16:42 IST",
    );
}

#[test]
fn critical_screen() {
    let buf = state_screen(
        "critical",
        critical(),
        (
            Level::Critical,
            "Token about to expire",
            "0h 25m 00s left; press l to log in now",
            at(26, 14, 7, 5),
        ),
    );
    assert_eq!(gauge_fg(&buf), Color::Red);
    assert_shows(&buf, "Token: 0h 25m 00s left");
    assert!(contains(&buf, "checking…"), "a running check is shown");
    // Where it would only fit cut, it is left off; the countdown and expiry stay whole.
    for unicode in [true, false] {
        let mut narrow = app(critical());
        narrow.unicode = unicode;
        let row = row_text(&draw(&narrow, 64, 30), 1);
        assert!(
            row.trim_end().ends_with("expires Thu 26 Nov 14:57 IST"),
            "{row}"
        );
    }
}

#[test]
fn expired_screen() {
    let buf = state_screen(
        "expired",
        expired(),
        (
            Level::Critical,
            "Token expired!",
            "The token died at 03:30 IST; press l to log in.",
            at(26, 3, 30, 0),
        ),
    );
    assert_shows(&buf, "Token: EXPIRED · expired Thu 26 Nov 03:30 IST");
    assert_shows(&buf, "EXPIRED · API ? 03:30 IST");
    // An unusable token's gauge is empty, its percentage red.
    assert!(row_text(&buf, 2).trim_end().ends_with("  0%"));
    assert!(!row_text(&buf, 2).contains('█'));
    assert_eq!(buf[(97, 2)].symbol(), "0");
    assert_eq!(buf[(97, 2)].fg, Color::Red);
}

#[test]
fn invalid_screen() {
    let buf = state_screen(
        "invalid",
        invalid(),
        (
            Level::Critical,
            "Token rejected",
            "Upstox refused the token (UDAPI100050); press l to log in.",
            at(26, 14, 2, 11),
        ),
    );
    assert_shows(&buf, "INVALID · API ✗ 14:02 IST");
    assert_shows(&buf, "Token: INVALID · expires Fri 27 Nov 03:30 IST");
}

#[test]
fn missing_screen() {
    let buf = state_screen(
        "missing",
        missing(),
        (
            Level::Critical,
            "No token",
            "There is no readable token file; press l to log in.",
            at(26, 14, 0, 0),
        ),
    );
    assert_eq!(row_text(&buf, 1).trim_end(), " 🔑 Token: NO TOKEN");
    assert!(row_text(&buf, 0).starts_with(" tokenwatch · default "));
    assert_shows(&buf, "NO TOKEN · API ?");
}

// ---- popups ----

fn login_app() -> App {
    let mut app = app(healthy());
    app.popup = Some(Popup::Login);
    app.login = Some(LoginView {
        url: Some(
            "https://api.upstox.com/v2/login/authorization/dialog?response_type=code\
             &client_id=3f9c2a71-5b8e-4d0a-9e61-0c7d2b4a8f13\
             &redirect_uri=http%3A%2F%2Flocalhost%3A5001%2Fcallback\
             &state=Qm9uZCwgSmFtZXMgQm9uZC4gMDA3IGxpY2Vuc2U"
                .to_string(),
        ),
        listening: vec![
            "127.0.0.1:5001".parse::<SocketAddr>().unwrap(),
            "[::1]:5001".parse::<SocketAddr>().unwrap(),
        ],
        until: Some(now() + Span::seconds(165)),
        browser: Some(Err(
            "there is no graphical session (no DISPLAY or WAYLAND_DISPLAY)".to_string(),
        )),
        status: LoginStatus::Waiting,
    });
    app.input = Some("http://localhost:5001/callback?code=Xy12&state=Qm9u".to_string());
    app
}

#[test]
fn login_pending_screen() {
    let app = login_app();
    check("login_pending", &app);
    let buf = draw(&app, 80, 24);
    let text = screen_text(&buf);
    assert!(text.contains("https://api.upstox.com/v2/login"), "{text}");
    assert!(
        text.contains("listening on 127.0.0.1:5001, [::1]:5001"),
        "{text}"
    );
    assert!(text.contains("Time left    2m 45s"), "{text}");
    assert!(
        text.contains("> http://localhost:5001/callback?code=Xy12&state=Qm9u"),
        "{text}"
    );
    assert!(text.contains("no graphical session"), "{text}");
    // The cursor after the typed text is a reversed cell.
    let y = (0..24)
        .find(|&y| row_text(&buf, y).contains("> http"))
        .unwrap();
    let x = (0..80u16)
        .rev()
        .find(|&x| buf[(x, y)].symbol() == "u" && buf[(x - 1, y)].symbol() == "9")
        .unwrap();
    assert!(buf[(x + 1, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn login_statuses_and_keys() {
    let mut app = login_app();
    app.input = None;
    let buf = draw(&app, 100, 30);
    assert_shows(&buf, "p paste the redirected address · Esc cancel");
    assert_shows(&buf, "Status       waiting for the browser");
    for (status, expect) in [
        (
            LoginStatus::PasteRejected("the state does not match".into()),
            "pasted address refused: the state does not match",
        ),
        (LoginStatus::Exchanging, "exchanging the code"),
        (
            LoginStatus::Succeeded(at(27, 3, 30, 0)),
            "logged in, valid until Fri 27 Nov 03:30 IST",
        ),
        (
            LoginStatus::Failed("Upstox said: access_denied".into()),
            "failed: Upstox said: access_denied",
        ),
    ] {
        app.login.as_mut().unwrap().status = status;
        let buf = draw(&app, 100, 30);
        assert!(contains(&buf, expect), "{expect}:\n{}", screen_text(&buf));
    }
}

#[test]
fn details_screen() {
    let text = popup_text("details", Popup::Details);
    for want in [
        "eyJ0…a1B2",
        "AB1234 Jane D.",
        "Issued       Thu 26 Nov 09:12 IST",
        "Expires      Fri 27 Nov 03:30 IST",
        "Expiry from  the file's expires_at",
        "Obtained via oauth",
        "Checked      Thu 26 Nov 14:02:11 IST: valid",
        "Next check   Thu 26 Nov 15:02 IST",
        // Due at 02:30 by refresh_before, but a token renewed then would also end at 03:30:
        // the popup says what happens, not the time nothing does.
        "Renewal      after 03:30 IST (a token issued before then ends at 03:30 too)",
        "Strategy     browser",
        "~/algo/config/upstox_token.json",
        "~/.local/state/tokenwatch/upstox_token.json",
        "r refresh · l login · Esc close",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}

/// A token that does not end at the 03:30 IST boundary is renewed when it comes due.
#[test]
fn details_name_the_time_a_renewal_comes_due() {
    let mut s = healthy();
    s.token = Some(token(at(26, 9, 12, 0), at(26, 20, 0, 0)));
    s.renewal = Renewal::NotDue {
        due_at: at(26, 19, 0, 0),
    };
    let mut app = app(s);
    app.popup = Some(Popup::Details);
    let text = screen_text(&draw(&app, 100, 30));
    assert!(
        text.contains("Renewal      not due until Thu 26 Nov 19:00 IST"),
        "{text}"
    );
}

#[test]
fn details_say_why_renewal_waits() {
    let mut app = app(expired());
    app.popup = Some(Popup::Details);
    let text = screen_text(&draw(&app, 100, 30));
    assert!(
        text.contains("deferred until Thu 26 Nov 15:00 IST because a renewal failed less"),
        "{text}"
    );
    assert!(
        text.contains("than 30 minutes ago"),
        "wrapped, not cut:\n{text}"
    );
    assert!(text.contains("unreachable: connection refused"), "{text}");
}

#[test]
fn help_screen() {
    let text = popup_text("help", Popup::Help);
    for b in tokenwatch::tui::app::KEYMAP {
        assert!(
            text.lines()
                .any(|l| l.contains(b.key) && l.contains(b.help)),
            "{} missing:\n{text}",
            b.key
        );
    }
}

// ---- notifications, accounts, terminals ----

fn stack() -> Vec<Banner> {
    vec![
        banner(
            Level::Info,
            Topic::Login,
            "Logged in",
            "A new token is stored; it expires Fri 27 Nov 03:30 IST.",
            at(26, 14, 20, 0),
        ),
        banner(
            Level::Warning,
            Topic::Renewal,
            "Renewal failed",
            "Upstox could not be reached (HTTP 503); retrying in 4s. Press r to try now.",
            at(26, 14, 25, 0),
        ),
        banner(
            Level::Critical,
            Topic::Deadline,
            "No valid token before 09:00",
            "Trading starts at 09:15 IST; press l to log in now.",
            at(26, 14, 30, 0),
        ),
    ]
}

#[test]
fn notification_stack() {
    let app = with_banners(app(healthy()), stack());
    check("notifications", &app);
    let buf = draw(&app, 100, 30);
    let text = screen_text(&buf);
    // Newest on top.
    let pos = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s}:\n{text}"));
    assert!(pos("No valid token before 09:00") < pos("Renewal failed"));
    assert!(pos("Renewal failed") < pos("Logged in"));
    assert!(text.contains("14:30 ✗ No valid token"), "{text}");
    assert!(text.contains("14:25 ! Renewal failed"), "{text}");
    assert!(text.contains("14:20 ✓ Logged in"), "{text}");
    // The critical title is red and bold.
    let y = (0..30)
        .find(|&y| row_text(&buf, y).contains("No valid token"))
        .unwrap();
    let x = row_text(&buf, y).find("No valid").unwrap() as u16;
    let cell = &buf[(x, y)];
    assert_eq!(cell.fg, Color::Red);
    assert!(cell.modifier.contains(Modifier::BOLD));
}

#[test]
fn dismissed_by_time_banners_are_not_drawn() {
    let mut banners = stack();
    banners[0].ttl = Some(Duration::from_secs(10)); // 14:20:00 + 10 s is long past at 14:32
    let app = with_banners(app(healthy()), banners);
    let text = screen_text(&draw(&app, 100, 30));
    assert!(!text.contains("Logged in"), "{text}");
    assert!(text.contains("Renewal failed"), "{text}");
}

#[test]
fn a_full_stack_says_how_many_are_hidden() {
    let many: Vec<Banner> = (0..12)
        .map(|i| {
            let mut b = stack()[1].clone();
            b.topic = Topic::Renewal;
            b.title = format!("Renewal failed #{i}");
            b
        })
        .collect();
    let app = with_banners(app(healthy()), many);
    let text = screen_text(&draw(&app, 80, 24));
    assert!(text.contains("Renewal failed #11"), "newest shown:\n{text}");
    assert!(!text.contains("Renewal failed #0"), "{text}");
    assert!(text.contains(" older"), "{text}");
}

#[test]
fn two_accounts_have_tabs() {
    let work = Snapshot {
        account: "work".to_string(),
        ..warning()
    };
    let mut app = App::new(vec![healthy(), work], Duration::from_secs(10), true, true);
    app.banners = stack();
    app.banners[1].account = "work".to_string();
    check("two_accounts", &app);
    let buf = draw(&app, 100, 30);
    let tabs = row_text(&buf, 3);
    assert!(tabs.contains(" default  HEALTHY"), "{tabs}");
    assert!(tabs.contains(" work  WARNING"), "{tabs}");
    assert_shows(&buf, "[work] Renewal failed");
    let x = tabs.find("default").unwrap() as u16;
    assert!(
        buf[(x, 3)].modifier.contains(Modifier::REVERSED),
        "the selected tab stands out"
    );
    // The second account selected: its state above, its tab marked.
    app.selected = 1;
    let buf = draw(&app, 100, 30);
    assert!(row_text(&buf, 0).starts_with(" tokenwatch · work "));
    assert_eq!(gauge_fg(&buf), Color::Rgb(255, 165, 0));
    let x = row_text(&buf, 3).find("work").unwrap() as u16;
    assert!(buf[(x, 3)].modifier.contains(Modifier::REVERSED));
    // One account: no tab bar.
    let single = draw(&healthy_app(), 100, 30);
    assert!(row_text(&single, 3).starts_with("┌ Notifications"));
}

#[test]
fn no_color_has_no_colours() {
    let mut app = with_banners(app(warning()), stack());
    app.color = false;
    check("no_color", &app);
    for (w, h) in [(100, 30), (80, 24)] {
        let buf = draw(&app, w, h);
        assert_eq!(gauge_fg(&buf), Color::Reset);
        for cell in buf.content() {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
        }
        assert!(
            contains(&buf, "WARNING"),
            "the state word carries the meaning"
        );
    }
    // The same screen in colour does have colours: the check above can fail.
    app.color = true;
    let buf = draw(&app, 100, 30);
    assert!(buf.content().iter().any(|c| c.fg != Color::Reset));
}

#[test]
fn no_unicode_uses_plain_text() {
    let mut app = with_banners(app(critical()), stack());
    app.unicode = false;
    check("no_unicode", &app);
    let buf = draw(&app, 100, 30);
    let text = screen_text(&buf);
    assert_eq!(&row_text(&buf, 1)[..16], " Token: 0h 25m 0");
    for glyph in ["🔑", "✓", "✗", "…", "█", "░"] {
        assert!(!text.contains(glyph), "{glyph} drawn:\n{text}");
    }
    // ASCII means ASCII: the borders too, and the help and details popups over it.
    assert!(text.is_ascii(), "not ASCII:\n{text}");
    assert!(text.contains("+ Notifications (3) ---"), "{text}");
    for popup in [Popup::Help, Popup::Details] {
        app.popup = Some(popup);
        let over = &app;
        let text = screen_text(&draw(over, 100, 30));
        assert!(text.is_ascii(), "{popup:?} is not ASCII:\n{text}");
    }
    app.popup = None;
    assert!(text.contains("14:30 x No valid token"), "{text}");
    assert!(text.contains("14:25 ! Renewal failed"), "{text}");
    assert!(text.contains("14:20 i Logged in"), "{text}");
    assert!(text.contains("CRITICAL - API ok 14:02 IST"), "{text}");
    assert_eq!(gauge_fg(&buf), Color::Red);
}

#[test]
fn footer_comes_from_the_keymap() {
    let buf = draw(&healthy_app(), 100, 30);
    assert_eq!(
        row_text(&buf, 29).trim_end(),
        " r refresh  l login  d details  h history  x dismiss  ? help  q quit"
    );
}

fn app_with_stack() -> App {
    with_banners(app(healthy()), stack())
}

#[test]
fn too_small_says_so_and_nothing_panics() {
    for (w, h) in [
        (1, 1),
        (20, 5),
        (59, 30),
        (100, 11),
        (60, 12),
        (61, 13),
        (300, 100),
        (1, 200),
        (400, 2),
    ] {
        for popup in [
            None,
            Some(Popup::Details),
            Some(Popup::Help),
            Some(Popup::Login),
        ] {
            let mut app = with_banners(login_app(), stack());
            app.popup = popup;
            draw(&app, w, h);
        }
    }
    let app = app_with_stack();
    let text = screen_text(&draw(&app, 59, 12));
    assert!(
        text.contains("terminal too small: need at least 60×12"),
        "{text}"
    );
    assert!(!text.contains("tokenwatch"), "{text}");
    let text = screen_text(&draw(&app, 60, 12));
    assert!(!text.contains("too small"), "{text}");
    assert!(text.contains("Token:"), "{text}");
    let text = screen_text(&draw(&app, 20, 5));
    assert!(text.contains("terminal too small"), "wrapped:\n{text}");
    assert!(text.contains("60×12"), "wrapped:\n{text}");
}

#[test]
fn narrow_terminal_cuts_instead_of_wrapping() {
    let mut snap = healthy();
    snap.account = "a-very-long-account-name-that-goes-on-and-on-and-on".to_string();
    let buf = draw(&app(snap), 60, 12);
    let top = row_text(&buf, 0);
    assert!(top.contains('…'), "{top}");
    assert!(
        top.starts_with(" a-very-long-account"),
        "the account stays: {top}"
    );
    assert!(top.contains("HEALTHY · API ✓"), "the state stays: {top}");
    assert_eq!(width(&top), 60);
}

/// `s` with every run of spaces one space, and none around it.
fn words(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The rows of the pane whose top border starts with `title` (`┌ Log`): from its top border
/// to its bottom one.
fn pane_rows(buf: &Buffer, title: &str) -> std::ops::Range<u16> {
    let top = (0..buf.area.height)
        .find(|&y| row_text(buf, y).starts_with(title))
        .unwrap_or_else(|| panic!("no {title}:\n{}", screen_text(buf)));
    let bottom = (top + 1..buf.area.height)
        .find(|&y| row_text(buf, y).starts_with('└'))
        .unwrap_or_else(|| panic!("{title} has no bottom:\n{}", screen_text(buf)));
    top..bottom + 1
}

/// Below 90 columns the notifications sit above the log, only as tall as what they hold
/// (within 40 % of the panes), and the log keeps the rest; from 90 on they sit side by side.
#[test]
fn a_narrow_terminal_stacks_the_panes() {
    let quiet = app(healthy());
    let buf = draw(&quiet, 64, 30);
    let notices = pane_rows(&buf, "┌ Notifications");
    let log = pane_rows(&buf, "┌ Log");
    // "No notifications": one line inside, then the log, to the footer.
    assert_eq!(notices.len(), 3, "{}", screen_text(&buf));
    assert_eq!(
        row_text(&buf, notices.start + 1).trim_end(),
        "│ No notifications                                             │"
    );
    assert_eq!(log.start, notices.end, "{}", screen_text(&buf));
    assert_eq!(
        log.end,
        29,
        "the log reaches the footer:\n{}",
        screen_text(&buf)
    );

    // Three notices: the pane grows to hold them all.
    let buf = draw(&app_with_stack(), 64, 30);
    let text = screen_text(&buf);
    let notices = pane_rows(&buf, "┌ Notifications (3)");
    assert!(notices.len() > 3 && notices.len() <= 10, "{text}");
    for title in ["No valid token before 09:00", "Renewal failed", "Logged in"] {
        assert!(text.contains(title), "{title}:\n{text}");
    }
    assert!(!text.contains(" older"), "{text}");

    // Twelve: at most 40 % of the 26 rows of panes, the rest said in a line.
    let many: Vec<Banner> = (0..12).map(|_| stack()[1].clone()).collect();
    let buf = draw(&with_banners(app(healthy()), many.clone()), 64, 30);
    assert_eq!(pane_rows(&buf, "┌ Notifications").len(), 10);
    assert_shows(&buf, " older");
    // At the smallest size the log still has rows of its own.
    let buf = draw(&with_banners(app(healthy()), many), 60, 12);
    assert!(pane_rows(&buf, "┌ Log").len() >= 5, "{}", screen_text(&buf));

    // 90 columns: side by side, as before.
    let buf = draw(&app_with_stack(), 90, 30);
    let row = row_text(&buf, 3);
    assert!(
        row.starts_with("┌ Notifications (3)") && row.contains("┐┌ Log"),
        "{row}"
    );
}

/// At 64 columns the header keeps the state word, the countdown, the account with its broker
/// and user id, and one clock, labelled: the time of the API's last answer. The wall clock
/// and the program's name give way.
#[test]
fn a_narrow_header_keeps_what_matters_and_one_labelled_clock() {
    let buf = draw(&healthy_app(), 64, 30);
    let top = row_text(&buf, 0);
    assert_eq!(
        words(&top),
        "default (Upstox AB1234) HEALTHY · API ✓ checked 14:02"
    );
    assert_eq!(width(&top), 64);
    assert!(!screen_text(&buf).contains("14:32:05"), "{top}");
    assert_eq!(
        row_text(&buf, 1).trim_end(),
        " 🔑 Token: 12h 57m 55s left · expires Fri 27 Nov 03:30 IST"
    );
    assert_eq!(
        row_text(&buf, 29).trim_end(),
        " r refresh  l login  d details  x dismiss  ? help  q quit"
    );
    // With room, the program's name and the user's name too; at 60 the user id still fits.
    let top = row_text(&draw(&healthy_app(), 89, 30), 0);
    assert!(
        words(&top) == "tokenwatch · default (Upstox AB1234 Jane D.) HEALTHY · API ✓ checked 14:02",
        "{top}"
    );
    let top = row_text(&draw(&healthy_app(), 72, 30), 0);
    assert_eq!(
        words(&top),
        "tokenwatch · default (Upstox AB1234) HEALTHY · API ✓ checked 14:02"
    );
    let top = row_text(&draw(&healthy_app(), 60, 12), 0);
    assert_eq!(
        words(&top),
        "default (Upstox AB1234) HEALTHY · API ✓ checked 14:02"
    );
    // A Kite account says so.
    let mut kite = healthy();
    kite.broker = tokenwatch::brokers::Broker::Kite;
    kite.account = "zerodha".to_string();
    let top = row_text(&draw(&app(kite), 64, 30), 0);
    assert_eq!(
        words(&top),
        "zerodha (Kite AB1234) HEALTHY · API ✓ checked 14:02"
    );
    // A long account: the check time goes before the account is cut; the state never goes.
    let mut snap = healthy();
    snap.account = "trading-desk-primary-01".to_string();
    let top = row_text(&draw(&app(snap.clone()), 60, 12), 0);
    assert_eq!(
        words(&top),
        "trading-desk-primary-01 HEALTHY · API ✓ checked 14:02"
    );
    snap.account = "trading-desk-primary-account-of-jane".to_string();
    let top = row_text(&draw(&app(snap), 60, 12), 0);
    assert_eq!(
        words(&top),
        "trading-desk-primary-account-of-jane HEALTHY · API ✓"
    );
    // ASCII says the same in ASCII.
    let mut plain = healthy_app();
    plain.unicode = false;
    let top = row_text(&draw(&plain, 64, 30), 0);
    assert!(top.contains("HEALTHY - API ok checked 14:02"), "{top}");
    // The wide header is as it was: the API's time and the wall clock.
    let top = row_text(&draw(&healthy_app(), 100, 30), 0);
    assert!(
        top.contains("HEALTHY · API ✓ 14:02 IST    14:32:05 IST"),
        "{top}"
    );
}

/// Paths on the screen show the home folder as `~`; without a home, in full.
#[test]
fn paths_show_the_home_folder_as_tilde() {
    let mut app = healthy_app();
    app.popup = Some(Popup::Details);
    let text = screen_text(&draw(&app, 100, 30));
    assert!(
        text.contains("Token file   ~/algo/config/upstox_token.json"),
        "{text}"
    );
    assert!(
        text.contains("~/.local/state/tokenwatch/upstox_token.json"),
        "{text}"
    );
    assert!(!text.contains("/home/jane"), "{text}");
    app.home = None;
    let text = screen_text(&draw(&app, 100, 30));
    assert!(
        text.contains("/home/jane/algo/config/upstox_token.json"),
        "{text}"
    );
}

#[test]
fn gauge_survives_odd_lifetimes() {
    for issued in [
        Some(at(27, 3, 30, 0)),  // zero lifetime
        Some(at(28, 0, 0, 0)),   // issued after expiry
        None,                    // nothing known
        Some(at(26, 14, 40, 0)), // issued in the future: more than 100%
    ] {
        let mut snap = healthy();
        let tok = snap.token.as_mut().unwrap();
        tok.issued_at = issued;
        let ratio = ui::life_left(Some(&snap), now());
        assert!((0.0..=1.0).contains(&ratio), "{issued:?}: {ratio}");
        draw(&app(snap), 80, 24);
    }
    // An unknown lifetime leaves the gauge empty rather than guessing.
    let mut snap = healthy();
    snap.token.as_mut().unwrap().issued_at = None;
    assert_eq!(ui::life_left(Some(&snap), now()), 0.0);
}

#[test]
fn log_pane_shows_level_and_message() {
    use tracing_subscriber::layer::SubscriberExt;
    let _guard = screen_lock();
    let ist_clock = || {
        Utc::now()
            .with_timezone(&ist())
            .format("%H:%M:%S")
            .to_string()
    };
    let before = ist_clock();
    let subscriber = tracing_subscriber::registry().with(tui_logger::TuiTracingSubscriberLayer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "tokenwatch::worker", "Token valid, expires in 15.2 hours");
        tracing::warn!(target: "tokenwatch::worker", "Refresh attempt 2/3 failed: HTTP 503; retrying in 4s");
    });
    let after = ist_clock();
    tui_logger::move_events();
    let app = healthy_app();
    let render = |timestamps: bool| {
        let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
        terminal
            .draw(|f| {
                ui::render_with(
                    &app,
                    now(),
                    f,
                    Options {
                        log_timestamps: timestamps,
                    },
                )
            })
            .unwrap();
        terminal.backend().buffer().clone()
    };
    let plain = render(false);
    let stamped = render(true);
    // Empty the process-wide buffer before any other test draws.
    tui_logger::set_buffer_depth(10_000);
    drop(_guard);

    let text = screen_text(&plain);
    assert!(
        text.contains("│ INFO  Token valid, expires in 15.2 hours"),
        "{text}"
    );
    assert!(
        text.contains("│ WARN  Refresh attempt 2/3 failed: HTTP 503;"),
        "{text}"
    );
    assert!(!text.contains("tokenwatch::worker"), "no target:\n{text}");
    let y = (0..30)
        .find(|&y| row_text(&plain, y).contains("WARN "))
        .unwrap();
    let x = row_text(&plain, y).find("WARN").unwrap() as u16;
    assert_eq!(plain[(x, y)].fg, Color::Rgb(255, 165, 0));

    let line = screen_text(&stamped)
        .lines()
        .find(|l| l.contains("Token valid, expires"))
        .unwrap()
        .to_string();
    let start = line.find("││ ").map(|i| i + "││ ".len()).unwrap();
    let (stamp, rest) = line[start..].split_at(8);
    assert!(rest.starts_with(" INFO  Token valid"), "{line}");
    // The time of day in IST, like the rest of the screen (not the machine's zone).
    if before <= after {
        assert!(
            before.as_str() <= stamp && stamp <= after.as_str(),
            "{stamp} not within {before}..{after}: {line}"
        );
    }
}

/// The log pane is laid out again when new events were recorded or a scroll key was pressed,
/// and left as the terminal shows it otherwise (the once-a-second countdown redraw).
#[test]
fn the_log_pane_is_redrawn_when_events_arrive_and_reused_otherwise() {
    use tracing_subscriber::layer::SubscriberExt;
    let _guard = screen_lock();
    let emit = |text: &'static str| {
        let subscriber = tracing_subscriber::registry().with(tui_logger::TuiTracingSubscriberLayer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "tokenwatch::worker", "{text}");
        });
        tui_logger::move_events();
    };
    let mut app = healthy_app();
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    // What the terminal shows, carried from frame to frame as the dashboard's loop does.
    let mut shown = ui::Shown::default();
    let mut draw = |app: &App| {
        terminal
            .draw(|f| shown = ui::render_frame(app, now(), f, Options::default(), shown))
            .unwrap();
        screen_text(terminal.backend().buffer())
    };
    emit("first line of the cache test");
    app.log_events = 1;
    let first = draw(&app);
    assert!(first.contains("first line of the cache test"), "{first}");

    // A new event the loop has not counted yet: the pane is reused as it was.
    emit("second line of the cache test");
    let reused = draw(&app);
    assert!(
        !reused.contains("second line of the cache test"),
        "{reused}"
    );
    assert_eq!(reused, first);

    // Counted: laid out again, with the new line.
    app.log_events = 2;
    let fresh = draw(&app);
    assert!(fresh.contains("second line of the cache test"), "{fresh}");

    // A popup over the pane, then closed: what it covered is drawn again, not left behind.
    app.update(tokenwatch::tui::app::Action::Help, now());
    let with_help = draw(&app);
    assert!(with_help.contains("Keys"), "{with_help}");
    app.update(tokenwatch::tui::app::Action::Close, now());
    let closed = draw(&app);
    assert_eq!(closed, fresh, "the help popup left something behind");

    // A scroll key lays it out again too (and a new size would).
    let scrolls = app.log_scrolls;
    app.update(tokenwatch::tui::app::Action::ScrollUp, now());
    assert_eq!(app.log_scrolls, scrolls + 1);
    tui_logger::set_buffer_depth(10_000);
    drop(_guard);
}

/// Frames drawn one after the other on one terminal, as the dashboard's loop draws them:
/// after each, the terminal shows exactly what one frame drawn afresh would show.
#[test]
fn frames_in_a_row_leave_nothing_behind() {
    use tracing_subscriber::layer::SubscriberExt;
    let _guard = screen_lock();
    let subscriber = tracing_subscriber::registry().with(tui_logger::TuiTracingSubscriberLayer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(target: "tokenwatch::worker", "Validation attempt 1/3 failed: Upstox server error (HTTP 500); retrying in 2s");
    });
    tui_logger::move_events();
    let fresh = |app: &App, timestamps: bool| {
        let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
        terminal
            .draw(|f| {
                ui::render_with(
                    app,
                    now(),
                    f,
                    Options {
                        log_timestamps: timestamps,
                    },
                )
            })
            .unwrap();
        screen_text(terminal.backend().buffer())
    };
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    let mut shown = ui::Shown::default();
    let mut draw = |app: &App, timestamps: bool| {
        let options = Options {
            log_timestamps: timestamps,
        };
        terminal
            .draw(|f| shown = ui::render_frame(app, now(), f, options, shown))
            .unwrap();
        screen_text(terminal.backend().buffer())
    };

    // The login overlay shrinks (no time left once logged in) while the log pane is kept:
    // the rows it no longer covers are drawn again.
    let mut app = login_app();
    app.input = None;
    draw(&app, false);
    draw(&app, false);
    app.login.as_mut().unwrap().status = LoginStatus::Succeeded(at(27, 3, 30, 0));
    let shrunk = draw(&app, false);
    assert_eq!(shrunk, fresh(&app, false), "the overlay left rows behind");

    // A log pane laid out after frames that kept it: a shorter line (no timestamps) leaves no
    // tail of the longer one it replaces.
    let app = healthy_app();
    draw(&app, true);
    draw(&app, true);
    let shorter = draw(&app, false);
    let expected = fresh(&app, false);
    tui_logger::set_buffer_depth(10_000);
    drop(_guard);
    assert!(
        shorter.contains("│ WARN  Validation attempt 1/3"),
        "{shorter}"
    );
    assert_eq!(shorter, expected, "the longer lines left a tail");
}

/// The login address in the log (`Login waiting until … open <address>`): a long one.
const LOGIN_URL: &str = "https://api.upstox.com/v2/login/authorization/dialog?response_type=code\
    &client_id=3f9c2a71-5b8e-4d0a-9e61-0c7d2b4a8f13\
    &redirect_uri=http%3A%2F%2Flocalhost%3A5001%2Fcallback&state=Qm9uZCwgSmFtZXMgQm9uZC4";

/// The inside of the log pane's rows (the pane at the bottom of a stacked screen): the text
/// between its borders, trailing spaces trimmed.
fn stacked_log_rows(buf: &Buffer) -> Vec<String> {
    let rows = pane_rows(buf, "┌ Log");
    (rows.start + 1..rows.end - 1)
        .map(|y| {
            let row = row_text(buf, y);
            let inside = row.trim_end().strip_suffix('│').unwrap_or(&row);
            inside
                .strip_prefix("│ ")
                .unwrap_or(inside)
                .trim_end()
                .to_string()
        })
        .collect()
}

/// In the log pane a path breaks after a separator, not mid-word, with the home folder as
/// `~`; a login address starts on a line of its own, from the pane's left edge (no indent),
/// so it reads and selects as one run, and on one line in a zoomed pane.
#[test]
fn log_lines_break_paths_at_separators_and_give_addresses_their_own_lines() {
    use tracing_subscriber::layer::SubscriberExt;
    let _guard = screen_lock();
    let subscriber = tracing_subscriber::registry().with(tui_logger::TuiTracingSubscriberLayer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "tokenwatch::worker", account = "default",
            "Watching /home/jane/trading/engines/nifty-weekly-options/config/upstox_token.json");
        tracing::info!(target: "tokenwatch::worker", account = "default",
            "Login waiting until 14:35 IST: open {LOGIN_URL}");
    });
    tui_logger::move_events();
    let app = app(healthy());
    let narrow = draw_unlocked(&app, 64, 30);
    let zoomed = draw_unlocked(&app, 400, 40);
    let mut bare = self::app(healthy());
    bare.home = None;
    let homeless = draw_unlocked(&bare, 64, 30);
    tui_logger::set_buffer_depth(10_000);
    drop(_guard);

    let rows = stacked_log_rows(&narrow);
    let at = rows
        .iter()
        .position(|r| r.contains("Watching"))
        .unwrap_or_else(|| panic!("{}", screen_text(&narrow)));
    assert_eq!(
        rows[at..at + 2],
        [
            "INFO  [default] Watching ~/trading/engines/nifty-weekly-",
            "      options/config/upstox_token.json",
        ],
        "{}",
        screen_text(&narrow)
    );
    let at = rows
        .iter()
        .position(|r| r.contains("Login waiting"))
        .unwrap();
    assert_eq!(
        rows[at],
        "INFO  [default] Login waiting until 14:35 IST: open"
    );
    let address: Vec<&String> = rows[at + 1..]
        .iter()
        .take_while(|r| !r.is_empty())
        .collect();
    assert!(
        address[0].starts_with("https://api.upstox.com/"),
        "{rows:#?}"
    );
    assert!(address.len() > 1, "{rows:#?}");
    for row in &address[..address.len() - 1] {
        // Full rows from the left edge: the pane's inside is 60 cells.
        assert_eq!(width(row), 60, "{rows:#?}");
    }
    let joined: String = address.iter().map(|r| r.as_str()).collect();
    assert_eq!(joined, LOGIN_URL);
    // Zoomed (prefix z), the address is one line.
    assert!(
        screen_text(&zoomed)
            .lines()
            .any(|l| l.contains(&format!("│ {LOGIN_URL} "))),
        "{}",
        screen_text(&zoomed)
    );
    // Without a home folder the path is shown in full.
    assert!(
        screen_text(&homeless).contains("Watching /home/jane/"),
        "{}",
        screen_text(&homeless)
    );
}

/// `draw` for a caller that already holds `SCREEN`.
fn draw_unlocked(app: &App, w: u16, h: u16) -> Buffer {
    common::screen::draw_at(app, now(), w, h)
}

/// The screens in the README are the dashboard's own, drawn here: the healthy screen at
/// 100×30 (`screen-wide`) and in a tmux pane beside the engine at 64×30 (`screen-narrow`),
/// with a few log lines. `UPDATE_RELIABILITY=1` rewrites them.
#[test]
fn the_readme_screens_are_the_dashboards() {
    use tracing_subscriber::layer::SubscriberExt;
    let _guard = screen_lock();
    // Start from an empty buffer, whatever a failed test may have left in it.
    tui_logger::move_events();
    tui_logger::set_buffer_depth(10_000);
    let subscriber = tracing_subscriber::registry().with(tui_logger::TuiTracingSubscriberLayer);
    tracing::subscriber::with_default(subscriber, || {
        let info = |text: &str| {
            tracing::info!(target: "tokenwatch::worker", account = "default", "{text}");
        };
        // A morning as the worker logs it: the login at 09:12, the half-hourly checks, an `r`.
        info("Watching /home/jane/algo/config/upstox_token.json");
        info("Logged in; new token valid until Fri 27 Nov 03:30 IST");
        info("Token valid, expires in 18h 17m");
        info("Token valid, expires in 13h 57m");
        info("Token valid, expires in 13h 27m");
        info("Refresh requested");
        info("Token valid, expires in 12h 57m");
    });
    tui_logger::move_events();
    let app = healthy_app();
    let screens = [
        ("screen-wide", draw_unlocked(&app, 100, 16)),
        ("screen-narrow", draw_unlocked(&app, 64, 24)),
    ];
    tui_logger::set_buffer_depth(10_000);
    drop(_guard);
    for (name, buf) in screens {
        let text = screen_text(&buf);
        assert!(text.contains("Refresh requested"), "no log lines:\n{text}");
        let block = format!("```text\n{text}\n```");
        let readme = std::path::Path::new(common::doc::README);
        if let Err(e) = common::doc::sync_block(readme, name, &block, &[]) {
            panic!("{e}");
        }
    }
}
