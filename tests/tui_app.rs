//! The dashboard's state machine: keys → actions → commands, worker events, notification
//! lifetimes on a passed-in clock. No terminal involved.

mod common;

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use common::{Command, Event, Level, Notification, Snapshot, Topic};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::path::PathBuf;
use std::time::Duration;
use tokenwatch::config::Strategy;
use tokenwatch::messages::LoginUpdate;
use tokenwatch::schedule::Renewal;
use tokenwatch::token::TokenState;
use tokenwatch::tui::app::{Action, App, KEYMAP, KeyAction, LoginStatus, Popup};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 8, 30, 0).unwrap()
}

fn snap(account: &str, state: TokenState) -> Snapshot {
    Snapshot {
        broker: Default::default(),
        account: account.into(),
        at: now(),
        state,
        token: None,
        answer: None,
        last_check_at: None,
        last_check_result: None,
        next_check_at: None,
        renewal: Renewal::Disabled,
        busy: false,
        strategy: Strategy::Browser,
        token_file: PathBuf::from("/tmp/t.json"),
        backups: vec![],
        token_error: None,
        login: None,
        renewals: Default::default(),
        file_writes: Default::default(),
    }
}

fn app() -> App {
    App::new(
        vec![snap("default", TokenState::Healthy)],
        Duration::from_secs(10),
        true,
        true,
    )
}

fn press(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn notice(level: Level, topic: Topic, title: &str, at: DateTime<Utc>) -> Event {
    Event::Notice(Notification {
        account: "default".into(),
        level,
        topic,
        title: title.into(),
        message: "press l to log in".into(),
        elsewhere: "log in: tokenwatch login".into(),
        at,
    })
}

#[test]
fn every_key_of_the_keymap_maps_to_its_action() {
    let a = app();
    for b in KEYMAP {
        let key = KeyEvent::new(b.code, b.modifiers);
        assert_eq!(
            a.action_for(key),
            Some(KeyAction::Do(b.action)),
            "{}",
            b.key
        );
    }
    // Ctrl-C quits; releases and repeats are ignored; unknown keys do nothing.
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(a.action_for(ctrl_c), Some(KeyAction::Do(Action::Quit)));
    let mut release = press(KeyCode::Char('r'));
    release.kind = KeyEventKind::Release;
    assert_eq!(a.action_for(release), None);
    assert_eq!(a.action_for(press(KeyCode::Char('z'))), None);
}

#[test]
fn r_and_l_send_the_right_commands_to_the_shown_account() {
    let mut a = App::new(
        vec![
            snap("default", TokenState::Healthy),
            snap("family", TokenState::Expired),
        ],
        Duration::from_secs(10),
        true,
        true,
    );
    let send = a.update(Action::Refresh, now()).send.unwrap();
    assert_eq!(
        (send.account.as_str(), send.command),
        ("default", Command::force_refresh())
    );
    a.update(Action::NextAccount, now());
    let send = a.update(Action::Login, now()).send.unwrap();
    assert_eq!(
        (send.account.as_str(), send.command),
        ("family", Command::StartLogin)
    );
    assert_eq!(a.popup, Some(Popup::Login));
    assert!(a.login_pending());
    a.update(Action::NextAccount, now());
    assert_eq!(a.selected, 0);
    a.update(Action::PrevAccount, now());
    assert_eq!(a.selected, 1);
}

#[test]
fn paste_flow_types_into_the_input_and_submits_once() {
    let mut a = app();
    assert!(a.update(Action::Paste, now()).send.is_none());
    assert!(a.input.is_none(), "p does nothing without a waiting login");
    a.update(Action::Login, now());
    a.update(Action::Paste, now());
    assert_eq!(a.input.as_deref(), Some(""));
    // While typing, keymap letters are text: q does not quit, r does not refresh.
    for c in "qr?x".chars() {
        let k = a.action_for(press(KeyCode::Char(c))).unwrap();
        assert!(a.key(k, now()).send.is_none());
    }
    assert!(!a.quit);
    let k = a.action_for(press(KeyCode::Backspace)).unwrap();
    a.key(k, now());
    assert_eq!(a.input.as_deref(), Some("qr?"));
    let k = a.action_for(press(KeyCode::Enter)).unwrap();
    let send = a.key(k, now()).send.unwrap();
    assert_eq!(send.command, Command::PasteRedirect("qr?".into()));
    assert!(a.input.is_none());
}

#[test]
fn esc_closes_the_input_then_the_popup_and_never_quits() {
    let mut a = app();
    a.update(Action::Login, now());
    a.update(Action::Paste, now());
    assert!(a.update(Action::Close, now()).send.is_none());
    assert!(a.input.is_none());
    assert_eq!(a.popup, Some(Popup::Login));
    // Closing the overlay of a waiting login cancels the login.
    let send = a.update(Action::Close, now()).send.unwrap();
    assert_eq!(send.command, Command::CancelLogin);
    assert_eq!(a.popup, None);
    a.update(Action::Help, now());
    assert_eq!(a.popup, Some(Popup::Help));
    a.update(Action::Close, now());
    assert_eq!(a.popup, None);
    a.update(Action::Close, now());
    assert!(!a.quit);
    a.update(Action::Details, now());
    assert_eq!(a.popup, Some(Popup::Details));
    a.update(Action::Details, now());
    assert_eq!(a.popup, None);
    a.update(Action::Quit, now());
    assert!(a.quit);
}

#[test]
fn notifications_expire_by_the_clock_passed_in_and_critical_ones_stay() {
    let mut a = app();
    a.on_event(
        notice(
            Level::Warning,
            Topic::TokenState,
            "Token expires soon",
            now(),
        ),
        now(),
    );
    a.on_event(
        notice(Level::Critical, Topic::Deadline, "No valid token", now()),
        now(),
    );
    assert_eq!(a.banners.len(), 2);
    assert!(a.bell, "a critical notification rings the bell");
    assert_eq!(a.next_expiry(), Some(now() + ChronoDuration::seconds(10)));
    a.expire(now() + ChronoDuration::seconds(9));
    assert_eq!(a.banners.len(), 2);
    a.expire(now() + ChronoDuration::seconds(10));
    assert_eq!(a.banners.len(), 1);
    a.expire(now() + ChronoDuration::days(1));
    assert_eq!(a.banners[0].title, "No valid token");
    // x dismisses it.
    a.update(Action::Dismiss, now());
    assert!(a.banners.is_empty());
}

#[test]
fn a_newer_notice_replaces_the_same_topic_and_health_resolves_criticals() {
    let mut a = app();
    a.on_event(
        notice(
            Level::Warning,
            Topic::TokenState,
            "Token expires soon",
            now(),
        ),
        now(),
    );
    a.on_event(
        notice(Level::Critical, Topic::TokenState, "Token expired!", now()),
        now(),
    );
    assert_eq!(a.banners.len(), 1);
    assert_eq!(a.banners[0].title, "Token expired!");
    a.on_event(
        notice(Level::Info, Topic::Renewal, "Token renewed", now()),
        now(),
    );
    a.on_event(
        Event::Status(Box::new(snap("default", TokenState::Healthy))),
        now(),
    );
    let titles: Vec<_> = a.banners.iter().map(|b| b.title.as_str()).collect();
    assert_eq!(titles, ["Token renewed"]);
}

#[test]
fn login_updates_drive_the_overlay() {
    let mut a = app();
    a.update(Action::Login, now());
    assert_eq!(a.login.as_ref().unwrap().status, LoginStatus::Starting);
    a.on_event(
        Event::Login(LoginUpdate::Progress(
            tokenwatch::auth::login::LoginProgress::Exchanging,
        )),
        now(),
    );
    assert_eq!(a.login.as_ref().unwrap().status, LoginStatus::Exchanging);
    let exp = now() + ChronoDuration::hours(19);
    a.on_event(Event::Login(LoginUpdate::Succeeded(exp)), now());
    assert_eq!(
        a.login.as_ref().unwrap().status,
        LoginStatus::Succeeded(exp)
    );
    assert!(!a.login_pending());
    // Closing a finished login's overlay sends nothing.
    assert!(a.update(Action::Close, now()).send.is_none());
    assert!(a.login.is_none());
}

/// Each key and event says whether the screen changed, so the loop draws only then.
#[test]
fn keys_and_events_say_whether_the_screen_changed() {
    let mut a = app();
    // A command whose effect shows only when the worker answers.
    let u = a.update(Action::Refresh, now());
    assert!(u.send.is_some() && !u.changed);
    assert!(
        !a.update(Action::Dismiss, now()).changed,
        "nothing to dismiss"
    );
    assert!(!a.update(Action::Close, now()).changed, "nothing open");
    assert!(a.update(Action::Help, now()).changed);
    assert!(a.update(Action::Close, now()).changed);
    assert!(a.update(Action::ScrollUp, now()).changed);
    assert!(!a.update(Action::Quit, now()).changed);
    // Typing changes the screen only while the paste line is open.
    assert!(!a.key(KeyAction::Type('x'), now()).changed);
    assert!(!a.key(KeyAction::Backspace, now()).changed);

    let n = notice(Level::Info, Topic::Login, "Logged in", now());
    assert!(a.on_event(n, now()));
    // The same snapshot again changes nothing; a notification expiring does.
    let same = || Event::Status(Box::new(snap("default", TokenState::Healthy)));
    assert!(!a.on_event(same(), now()));
    assert!(a.on_event(same(), now() + ChronoDuration::days(1)));
    assert!(!a.expire(now() + ChronoDuration::days(1)));
}

/// `c` while a login waits puts its address on the clipboard (the loop sends it with OSC 52)
/// and says so; without a waiting login it does nothing.
#[test]
fn c_copies_the_waiting_logins_address() {
    let mut a = app();
    let nothing = a.update(Action::Copy, now());
    assert!(!nothing.changed && nothing.send.is_none());
    assert_eq!(a.clipboard, None);

    a.update(Action::Login, now());
    let url = "https://api.upstox.com/v2/login/authorization/dialog?response_type=code&client_id=abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback&state=xyz";
    a.on_event(
        Event::Login(LoginUpdate::Progress(
            tokenwatch::auth::login::LoginProgress::Waiting {
                url: url::Url::parse(url).unwrap(),
                listening: vec![],
                until: now() + ChronoDuration::minutes(5),
                browser: Err("no browser".into()),
            },
        )),
        now(),
    );
    let copied = a.update(Action::Copy, now());
    assert!(copied.changed && copied.send.is_none());
    assert_eq!(a.clipboard.as_deref(), Some(url));
    let banner = a.banners.last().unwrap();
    assert_eq!(banner.title, "Login address copied");
    assert!(banner.message.contains("OSC 52"), "{}", banner.message);
}
