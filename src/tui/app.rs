//! The dashboard's state and its one way of changing: `App::update(action, now)` for keys
//! and `App::on_event(event, now)` for the worker. Neither does I/O; each says whether
//! anything on screen changed, so the loop draws only then (and when the second ticks).
//! Rendering reads `&App` and writes nothing back.

use crate::auth::login::LoginProgress;
use crate::messages::{Command, Event, Level, LoginUpdate, Notification, Snapshot, Topic};
use crate::token::TokenState;
use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::net::SocketAddr;
use std::time::Duration;

/// Everything a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `r`: validate now, renew if due.
    Refresh,
    /// `l`: start the browser login.
    Login,
    /// `p`: paste the redirected address (login overlay).
    Paste,
    /// `c`: copy the waiting login's address to the clipboard (OSC 52).
    Copy,
    /// `d`: the details modal.
    Details,
    /// `h`: the last 14 days of the shown account, as a timeline.
    History,
    /// `x`: dismiss the newest notification.
    Dismiss,
    /// `Tab`: next account.
    NextAccount,
    /// `Shift-Tab`: previous account.
    PrevAccount,
    /// `?`: help.
    Help,
    /// `q` / `Ctrl-C`: quit.
    Quit,
    /// `Esc`: close the popup (or cancel the input / the login).
    Close,
    /// `Ctrl-R`: read the configuration again.
    Reload,
    /// `PgUp`: scroll the log up.
    ScrollUp,
    /// `PgDn`: scroll the log down.
    ScrollDown,
    /// `Home`: oldest log lines.
    ScrollTop,
    /// `End`: follow the newest log lines.
    ScrollBottom,
}

/// One key of the keymap: the help screen and the footer are generated from this table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The key.
    pub code: KeyCode,
    /// Modifiers that must be held.
    pub modifiers: KeyModifiers,
    /// What it does.
    pub action: Action,
    /// How the key is written in the footer and help (`r`, `PgUp`).
    pub key: &'static str,
    /// Short label for the footer (`refresh`); empty to leave it out of the footer.
    pub label: &'static str,
    /// One line for the help screen.
    pub help: &'static str,
}

const fn bind(
    code: KeyCode,
    action: Action,
    key: &'static str,
    label: &'static str,
    help: &'static str,
) -> Binding {
    Binding {
        code,
        modifiers: KeyModifiers::NONE,
        action,
        key,
        label,
        help,
    }
}

/// The keymap.
pub const KEYMAP: &[Binding] = &[
    bind(
        KeyCode::Char('r'),
        Action::Refresh,
        "r",
        "refresh",
        "validate the token now; renew it if due or rejected",
    ),
    bind(
        KeyCode::Char('l'),
        Action::Login,
        "l",
        "login",
        "log in again (browser, or PIN and TOTP)",
    ),
    bind(
        KeyCode::Char('c'),
        Action::Copy,
        "c",
        "",
        "copy the login address to the clipboard (while a login waits)",
    ),
    bind(
        KeyCode::Char('p'),
        Action::Paste,
        "p",
        "",
        "paste the address the browser was sent to (while a login waits)",
    ),
    bind(
        KeyCode::Char('d'),
        Action::Details,
        "d",
        "details",
        "token details: masked token, times, files, last check",
    ),
    bind(
        KeyCode::Char('h'),
        Action::History,
        "h",
        "history",
        "the last 14 days of this account, as a timeline",
    ),
    bind(
        KeyCode::Char('x'),
        Action::Dismiss,
        "x",
        "dismiss",
        "dismiss the newest notification",
    ),
    bind(KeyCode::Tab, Action::NextAccount, "Tab", "", "next account"),
    Binding {
        code: KeyCode::BackTab,
        modifiers: KeyModifiers::SHIFT,
        action: Action::PrevAccount,
        key: "Shift-Tab",
        label: "",
        help: "previous account",
    },
    bind(
        KeyCode::PageUp,
        Action::ScrollUp,
        "PgUp",
        "",
        "scroll the log up",
    ),
    bind(
        KeyCode::PageDown,
        Action::ScrollDown,
        "PgDn",
        "",
        "scroll the log down",
    ),
    bind(
        KeyCode::Home,
        Action::ScrollTop,
        "Home",
        "",
        "oldest log lines",
    ),
    bind(
        KeyCode::End,
        Action::ScrollBottom,
        "End",
        "",
        "newest log lines (follow)",
    ),
    Binding {
        code: KeyCode::Char('r'),
        modifiers: KeyModifiers::CONTROL,
        action: Action::Reload,
        key: "Ctrl-R",
        label: "",
        help: "read the configuration file again",
    },
    bind(KeyCode::Char('?'), Action::Help, "?", "help", "this help"),
    bind(
        KeyCode::Esc,
        Action::Close,
        "Esc",
        "",
        "close a popup; cancel a waiting login",
    ),
    bind(
        KeyCode::Char('q'),
        Action::Quit,
        "q",
        "quit",
        "quit (Ctrl-C too)",
    ),
];

/// A notification on screen (yazi-style: data with a time to live).
#[derive(Debug, Clone, PartialEq)]
pub struct Banner {
    /// The account it is about.
    pub account: String,
    /// How loud.
    pub level: Level,
    /// What it is about (a newer one on the same topic replaces it).
    pub topic: Topic,
    /// Short title.
    pub title: String,
    /// What happened and what to press.
    pub message: String,
    /// When it appeared.
    pub created: DateTime<Utc>,
    /// How long it stays; `None` (critical) until dismissed or resolved.
    pub ttl: Option<Duration>,
}

impl Banner {
    /// Still on screen at `now`.
    pub fn alive(&self, now: DateTime<Utc>) -> bool {
        match self.ttl {
            None => true,
            Some(ttl) => now < self.created + chrono::Duration::from_std(ttl).unwrap_or_default(),
        }
    }
}

/// Where a login stands, for the overlay.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginStatus {
    /// Asked the worker; no answer yet.
    Starting,
    /// Waiting for the browser or a pasted address.
    Waiting,
    /// A pasted address was refused (why); still waiting.
    PasteRejected(String),
    /// Exchanging the code.
    Exchanging,
    /// Stored; the token lives until then.
    Succeeded(DateTime<Utc>),
    /// Ended without a token (why).
    Failed(String),
}

/// The login overlay's data.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginView {
    /// The Upstox login address.
    pub url: Option<String>,
    /// Where the callback listener listens.
    pub listening: Vec<SocketAddr>,
    /// When the login gives up.
    pub until: Option<DateTime<Utc>>,
    /// How the browser was opened, or why not.
    pub browser: Option<Result<String, String>>,
    /// Where it stands.
    pub status: LoginStatus,
}

/// Which popup is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Popup {
    /// `d`
    Details,
    /// `?`
    Help,
    /// A login is pending or just ended.
    Login,
    /// `h`
    History,
}

/// The history popup's data: what the loop last read for one account.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryView {
    /// The account it is of.
    pub account: String,
    /// The account's history folder.
    pub dir: std::path::PathBuf,
    /// The folder exists (else: no history yet).
    pub found: bool,
    /// The days, oldest first.
    pub days: Vec<crate::history::days::Day>,
    /// Lines that could not be read.
    pub skipped: Vec<String>,
    /// When it was read.
    pub read_at: DateTime<Utc>,
}

/// The dashboard's state.
pub struct App {
    /// One snapshot per account, in tab order (`default` first).
    pub accounts: Vec<Snapshot>,
    /// The account shown.
    pub selected: usize,
    /// Notifications, oldest first.
    pub banners: Vec<Banner>,
    /// The open popup.
    pub popup: Option<Popup>,
    /// The login overlay's data, while a login is pending or just ended.
    pub login: Option<LoginView>,
    /// The paste input line, while it is open.
    pub input: Option<String>,
    /// `notifications.dismiss_after`.
    pub dismiss_after: Duration,
    /// False under `NO_COLOR`: the state word carries the meaning.
    pub color: bool,
    /// False when the terminal cannot show emoji: plain text instead of 🔑.
    pub unicode: bool,
    /// False when the terminal lacks 24-bit colour: orange is 256-colour 208 instead.
    pub truecolor: bool,
    /// A critical notification arrived since the last draw: ring the bell once.
    pub bell: bool,
    /// Text for the terminal's clipboard (`c`), sent once with OSC 52.
    pub clipboard: Option<String>,
    /// Set by `q`.
    pub quit: bool,
    /// The log pane's scroll position (tui-logger's own state).
    pub log: tui_logger::TuiWidgetState,
    /// How many log events had been recorded when the log pane's events were last moved in
    /// (the event loop sets it); with [`App::log_scrolls`] it says when the pane may have
    /// changed, so an unchanged pane is left as the terminal shows it instead of laid out
    /// again.
    pub log_events: u64,
    /// Bumped by every scroll key.
    pub log_scrolls: u64,
    /// Where the HTTP API stands, for the details popup (`None`: not shown).
    pub api: Option<String>,
    /// The home folder (`HOME`), shown as `~` in paths on the screen (`None`: paths in full).
    pub home: Option<String>,
    /// `Ctrl-R` asked to read the configuration again; the loop does it.
    pub reload_requested: bool,
    /// The history popup's data; the loop reads it.
    pub history: Option<HistoryView>,
    /// `h` (or another account while the history is open) asked for the shown account's
    /// history; the loop reads it.
    pub history_requested: bool,
}

/// A command for the worker of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToWorker {
    /// The account.
    pub account: String,
    /// The command.
    pub command: Command,
}

impl App {
    /// A dashboard for these accounts' first snapshots.
    pub fn new(
        accounts: Vec<Snapshot>,
        dismiss_after: Duration,
        color: bool,
        unicode: bool,
    ) -> App {
        App {
            accounts,
            selected: 0,
            banners: Vec::new(),
            popup: None,
            login: None,
            input: None,
            dismiss_after,
            color,
            unicode,
            truecolor: true,
            bell: false,
            clipboard: None,
            quit: false,
            log: tui_logger::TuiWidgetState::new(),
            log_events: 0,
            log_scrolls: 0,
            api: None,
            home: None,
            reload_requested: false,
            history: None,
            history_requested: false,
        }
    }

    /// The account shown.
    pub fn current(&self) -> Option<&Snapshot> {
        self.accounts.get(self.selected)
    }

    fn current_name(&self) -> String {
        self.current()
            .map(|s| s.account.clone())
            .unwrap_or_default()
    }

    /// The action a key press means, given what is open. Only presses count.
    pub fn action_for(&self, key: KeyEvent) -> Option<KeyAction> {
        if key.kind != KeyEventKind::Press {
            return None;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return Some(KeyAction::Do(Action::Quit));
        }
        if self.input.is_some() {
            return match key.code {
                KeyCode::Esc => Some(KeyAction::Do(Action::Close)),
                KeyCode::Enter => Some(KeyAction::Submit),
                KeyCode::Backspace => Some(KeyAction::Backspace),
                KeyCode::Char(c) => Some(KeyAction::Type(c)),
                _ => None,
            };
        }
        // A binding with modifiers (Ctrl-R) before the plain one (r), which takes any.
        let matches = |b: &&Binding| {
            b.code == key.code && (b.modifiers.is_empty() || key.modifiers.contains(b.modifiers))
        };
        KEYMAP
            .iter()
            .filter(|b| !b.modifiers.is_empty())
            .chain(KEYMAP.iter().filter(|b| b.modifiers.is_empty()))
            .find(matches)
            .map(|b| KeyAction::Do(b.action))
    }

    /// Apply a key: the command to send, if any, and whether the screen changed.
    pub fn key(&mut self, key: KeyAction, now: DateTime<Utc>) -> Update {
        match key {
            KeyAction::Do(action) => self.update(action, now),
            KeyAction::Type(c) => match self.input.as_mut() {
                Some(input) if input.len() < 8192 => {
                    input.push(c);
                    Update::shown(true)
                }
                _ => Update::shown(false),
            },
            KeyAction::Backspace => {
                Update::shown(self.input.as_mut().and_then(String::pop).is_some())
            }
            KeyAction::Submit => {
                let Some(text) = self.input.take() else {
                    return Update::shown(false);
                };
                Update {
                    send: (!text.trim().is_empty())
                        .then(|| self.send(Command::PasteRedirect(text))),
                    // The paste line closed.
                    changed: true,
                }
            }
        }
    }

    fn send(&self, command: Command) -> ToWorker {
        ToWorker {
            account: self.current_name(),
            command,
        }
    }

    /// Apply an action at `now`: the command to send, if any, and whether the screen changed.
    pub fn update(&mut self, action: Action, now: DateTime<Utc>) -> Update {
        let expired = self.expire(now);
        let mut update = self.apply(action, now);
        update.changed |= expired;
        update
    }

    fn apply(&mut self, action: Action, now: DateTime<Utc>) -> Update {
        match action {
            // The worker's answer (busy, then the new state) is what shows.
            Action::Refresh => Update::send(self.send(Command::force_refresh()), false),
            Action::Login => {
                if !self.login_pending() {
                    self.login = Some(LoginView {
                        url: None,
                        listening: Vec::new(),
                        until: None,
                        browser: None,
                        status: LoginStatus::Starting,
                    });
                }
                self.popup = Some(Popup::Login);
                Update::send(self.send(Command::StartLogin), true)
            }
            Action::Copy => {
                let Some(url) = self
                    .login
                    .as_ref()
                    .filter(|_| self.login_pending())
                    .and_then(|l| l.url.clone())
                else {
                    return Update::shown(false);
                };
                self.clipboard = Some(url);
                let account = self.current_name();
                self.notify(Notification {
                    account,
                    level: Level::Info,
                    topic: Topic::Login,
                    title: "Login address copied".into(),
                    message: "sent to the terminal's clipboard (OSC 52; in tmux: set -g set-clipboard on)".into(),
                    elsewhere: String::new(),
                    at: now,
                });
                Update::shown(true)
            }
            Action::Paste => {
                if !self.login_pending() {
                    return Update::shown(false);
                }
                self.popup = Some(Popup::Login);
                self.input = Some(String::new());
                Update::shown(true)
            }
            Action::Details => {
                self.toggle(Popup::Details);
                Update::shown(true)
            }
            Action::Help => {
                self.toggle(Popup::Help);
                Update::shown(true)
            }
            Action::History => {
                self.toggle(Popup::History);
                self.history_requested = self.popup == Some(Popup::History);
                Update::shown(true)
            }
            Action::Dismiss => Update::shown(self.banners.pop().is_some()),
            Action::NextAccount if !self.accounts.is_empty() => {
                let before = self.selected;
                self.selected = (self.selected + 1) % self.accounts.len();
                self.history_requested |= self.wants_history();
                Update::shown(self.selected != before)
            }
            Action::PrevAccount if !self.accounts.is_empty() => {
                let before = self.selected;
                self.selected = (self.selected + self.accounts.len() - 1) % self.accounts.len();
                self.history_requested |= self.wants_history();
                Update::shown(self.selected != before)
            }
            Action::NextAccount | Action::PrevAccount => Update::shown(false),
            Action::Close => {
                if self.input.take().is_some() {
                    return Update::shown(true);
                }
                let popup = self.popup.take();
                if popup == Some(Popup::Login) && self.login_pending() {
                    return Update::send(self.send(Command::CancelLogin), true);
                }
                if popup == Some(Popup::Login) {
                    self.login = None;
                }
                Update::shown(popup.is_some())
            }
            // The loop ends; nothing more is drawn.
            Action::Quit => {
                self.quit = true;
                Update::shown(false)
            }
            Action::Reload => {
                self.reload_requested = true;
                Update::shown(false)
            }
            Action::ScrollUp => self.scroll(tui_logger::TuiWidgetEvent::PrevPageKey, 1),
            Action::ScrollDown => self.scroll(tui_logger::TuiWidgetEvent::NextPageKey, 1),
            // tui-logger pages back until the start; a large number of pages gets there.
            Action::ScrollTop => self.scroll(tui_logger::TuiWidgetEvent::PrevPageKey, 1000),
            Action::ScrollBottom => self.scroll(tui_logger::TuiWidgetEvent::EscapeKey, 1),
        }
    }

    /// The history popup is open and holds another account's history (or none): the loop
    /// should read the shown account's.
    pub fn wants_history(&self) -> bool {
        self.popup == Some(Popup::History)
            && self.history.as_ref().is_none_or(|h| {
                Some(h.account.as_str()) != self.current().map(|s| s.account.as_str())
            })
    }

    /// Open `popup`, or close it when it is the one open.
    fn toggle(&mut self, popup: Popup) {
        self.popup = if self.popup == Some(popup) {
            None
        } else {
            Some(popup)
        };
    }

    /// Move the log pane's view (`times` times the same key).
    fn scroll(&mut self, key: tui_logger::TuiWidgetEvent, times: usize) -> Update {
        self.log_scrolls += 1;
        for _ in 0..times {
            self.log.transition(key);
        }
        Update::shown(true)
    }

    /// True while a login waits for the browser or a paste.
    pub fn login_pending(&self) -> bool {
        matches!(
            self.login.as_ref().map(|l| &l.status),
            Some(
                LoginStatus::Starting
                    | LoginStatus::Waiting
                    | LoginStatus::PasteRejected(_)
                    | LoginStatus::Exchanging
            )
        )
    }

    /// Take in what a worker reported. True when anything on screen changed.
    pub fn on_event(&mut self, event: Event, now: DateTime<Utc>) -> bool {
        let changed = match event {
            Event::Status(snap) => {
                let resolved = snap.state == TokenState::Healthy;
                let account = snap.account.clone();
                let changed = match self.accounts.iter_mut().find(|s| s.account == snap.account) {
                    Some(slot) if *slot == *snap => false,
                    Some(slot) => {
                        *slot = *snap;
                        true
                    }
                    None => {
                        self.accounts.push(*snap);
                        true
                    }
                };
                // A healthy token resolves the critical notices about its state.
                let before = self.banners.len();
                if resolved {
                    self.banners.retain(|b| {
                        !(b.account == account
                            && b.level == Level::Critical
                            && matches!(b.topic, Topic::TokenState | Topic::Deadline))
                    });
                }
                changed || self.banners.len() != before
            }
            Event::Notice(n) => {
                self.notify(n);
                true
            }
            Event::Login(update) => {
                self.login_update(update);
                true
            }
            // Alerts go to the alert channels; the same transition is already a notice here.
            Event::Alert(_) => false,
        };
        self.expire(now) || changed
    }

    fn notify(&mut self, n: Notification) {
        self.banners
            .retain(|b| !(b.account == n.account && b.topic == n.topic));
        if n.level == Level::Critical {
            self.bell = true;
        }
        self.banners.push(Banner {
            ttl: (n.level != Level::Critical).then_some(self.dismiss_after),
            account: n.account,
            level: n.level,
            topic: n.topic,
            title: n.title,
            message: n.message,
            created: n.at,
        });
    }

    fn login_update(&mut self, update: LoginUpdate) {
        let view = self.login.get_or_insert(LoginView {
            url: None,
            listening: Vec::new(),
            until: None,
            browser: None,
            status: LoginStatus::Starting,
        });
        match update {
            LoginUpdate::Progress(LoginProgress::Waiting {
                url,
                listening,
                until,
                browser,
            }) => {
                view.url = Some(url.to_string());
                view.listening = listening;
                view.until = Some(until);
                view.browser = Some(browser);
                view.status = LoginStatus::Waiting;
            }
            LoginUpdate::Progress(LoginProgress::PasteRejected(why)) => {
                view.status = LoginStatus::PasteRejected(why)
            }
            LoginUpdate::Progress(LoginProgress::Exchanging) => {
                view.status = LoginStatus::Exchanging
            }
            LoginUpdate::Succeeded(exp) => view.status = LoginStatus::Succeeded(exp),
            LoginUpdate::Failed(why) => view.status = LoginStatus::Failed(why),
        }
    }

    /// Drop notifications whose time is up. True when any was dropped.
    pub fn expire(&mut self, now: DateTime<Utc>) -> bool {
        let before = self.banners.len();
        self.banners.retain(|b| b.alive(now));
        self.banners.len() != before
    }

    /// When the next notification expires, so the loop can redraw then.
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.banners
            .iter()
            .filter_map(|b| {
                b.ttl
                    .map(|t| b.created + chrono::Duration::from_std(t).unwrap_or_default())
            })
            .min()
    }
}

/// What applying a key did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// The command for a worker, if any.
    pub send: Option<ToWorker>,
    /// Something on screen changed: the loop draws.
    pub changed: bool,
}

impl Update {
    /// No command; the screen changed or not.
    fn shown(changed: bool) -> Update {
        Update {
            send: None,
            changed,
        }
    }

    /// A command, and whether the screen changed.
    fn send(send: ToWorker, changed: bool) -> Update {
        Update {
            send: Some(send),
            changed,
        }
    }
}

/// A key press, as the dashboard reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    /// A keymap action.
    Do(Action),
    /// A character typed into the paste line.
    Type(char),
    /// Backspace in the paste line.
    Backspace,
    /// Enter in the paste line.
    Submit,
}
