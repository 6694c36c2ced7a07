//! The dashboard's state and its one way of changing: `App::update(action, now)` for keys
//! and `App::on_event(event, now)` for the worker. Neither does I/O; rendering reads `&App`.

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
    /// `d`: the details modal.
    Details,
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
        "log in to Upstox in the browser",
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
    /// Set by `q`.
    pub quit: bool,
    /// The log pane's scroll position (tui-logger's own state).
    pub log: tui_logger::TuiWidgetState,
    /// How many log events had been recorded when the log pane's events were last moved in
    /// (the event loop sets it); with [`App::log_scrolls`] it says when the pane may have
    /// changed, so an unchanged pane is copied from the last frame instead of laid out again.
    pub log_events: u64,
    /// Bumped by every scroll key.
    pub log_scrolls: u64,
    /// The log pane as last drawn (kept by the renderer).
    pub log_cache: std::cell::RefCell<Option<LogCache>>,
}

/// What the log pane was last laid out from. While nothing of it changes, the renderer marks
/// the pane's cells to be skipped: ratatui then neither compares nor writes them, and the
/// terminal keeps showing them.
#[derive(Debug, Clone, PartialEq)]
pub struct LogCache {
    /// Where it was drawn.
    pub area: ratatui::layout::Rect,
    /// [`App::log_events`] and [`App::log_scrolls`] then.
    pub version: (u64, u64),
    /// With timestamps or not.
    pub timestamps: bool,
    /// The popup drawn over it, if any (closing one must redraw what it covered).
    pub popup: Option<Popup>,
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
            quit: false,
            log: tui_logger::TuiWidgetState::new(),
            log_events: 0,
            log_scrolls: 0,
            log_cache: std::cell::RefCell::new(None),
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
        KEYMAP
            .iter()
            .find(|b| {
                b.code == key.code
                    && (b.modifiers.is_empty() || key.modifiers.contains(b.modifiers))
            })
            .map(|b| KeyAction::Do(b.action))
    }

    /// Apply a key. Returns the command to send, if any.
    pub fn key(&mut self, key: KeyAction, now: DateTime<Utc>) -> Option<ToWorker> {
        match key {
            KeyAction::Do(action) => self.update(action, now),
            KeyAction::Type(c) => {
                if let Some(input) = self.input.as_mut()
                    && input.len() < 8192
                {
                    input.push(c);
                }
                None
            }
            KeyAction::Backspace => {
                if let Some(input) = self.input.as_mut() {
                    input.pop();
                }
                None
            }
            KeyAction::Submit => {
                let text = self.input.take()?;
                (!text.trim().is_empty()).then(|| self.send(Command::PasteRedirect(text)))
            }
        }
    }

    fn send(&self, command: Command) -> ToWorker {
        ToWorker {
            account: self.current_name(),
            command,
        }
    }

    /// Apply an action at `now`. Returns the command to send, if any.
    pub fn update(&mut self, action: Action, now: DateTime<Utc>) -> Option<ToWorker> {
        self.expire(now);
        match action {
            Action::Refresh => Some(self.send(Command::ForceRefresh)),
            Action::Login => {
                if !matches!(
                    self.login.as_ref().map(|l| &l.status),
                    Some(
                        LoginStatus::Waiting
                            | LoginStatus::Starting
                            | LoginStatus::Exchanging
                            | LoginStatus::PasteRejected(_)
                    )
                ) {
                    self.login = Some(LoginView {
                        url: None,
                        listening: Vec::new(),
                        until: None,
                        browser: None,
                        status: LoginStatus::Starting,
                    });
                }
                self.popup = Some(Popup::Login);
                Some(self.send(Command::StartLogin))
            }
            Action::Paste => {
                if self.login_pending() {
                    self.popup = Some(Popup::Login);
                    self.input = Some(String::new());
                }
                None
            }
            Action::Details => {
                self.popup = if self.popup == Some(Popup::Details) {
                    None
                } else {
                    Some(Popup::Details)
                };
                None
            }
            Action::Help => {
                self.popup = if self.popup == Some(Popup::Help) {
                    None
                } else {
                    Some(Popup::Help)
                };
                None
            }
            Action::Dismiss => {
                self.banners.pop();
                None
            }
            Action::NextAccount if !self.accounts.is_empty() => {
                self.selected = (self.selected + 1) % self.accounts.len();
                None
            }
            Action::PrevAccount if !self.accounts.is_empty() => {
                self.selected = (self.selected + self.accounts.len() - 1) % self.accounts.len();
                None
            }
            Action::NextAccount | Action::PrevAccount => None,
            Action::Close => {
                if self.input.take().is_some() {
                    return None;
                }
                let popup = self.popup.take();
                if popup == Some(Popup::Login) && self.login_pending() {
                    return Some(self.send(Command::CancelLogin));
                }
                if popup == Some(Popup::Login) {
                    self.login = None;
                }
                None
            }
            Action::Quit => {
                self.quit = true;
                None
            }
            Action::ScrollUp => {
                self.log_scrolls += 1;
                self.log.transition(tui_logger::TuiWidgetEvent::PrevPageKey);
                None
            }
            Action::ScrollDown => {
                self.log_scrolls += 1;
                self.log.transition(tui_logger::TuiWidgetEvent::NextPageKey);
                None
            }
            Action::ScrollTop => {
                self.log_scrolls += 1;
                // tui-logger pages back until the start; a large number of pages gets there.
                for _ in 0..1000 {
                    self.log.transition(tui_logger::TuiWidgetEvent::PrevPageKey);
                }
                None
            }
            Action::ScrollBottom => {
                self.log_scrolls += 1;
                self.log.transition(tui_logger::TuiWidgetEvent::EscapeKey);
                None
            }
        }
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

    /// Take in what a worker reported.
    pub fn on_event(&mut self, event: Event, now: DateTime<Utc>) {
        match event {
            Event::Status(snap) => {
                let resolved = snap.state == TokenState::Healthy;
                let account = snap.account.clone();
                match self.accounts.iter_mut().find(|s| s.account == snap.account) {
                    Some(slot) => *slot = *snap,
                    None => self.accounts.push(*snap),
                }
                // A healthy token resolves the critical notices about its state.
                if resolved {
                    self.banners.retain(|b| {
                        !(b.account == account
                            && b.level == Level::Critical
                            && matches!(b.topic, Topic::TokenState | Topic::Deadline))
                    });
                }
            }
            Event::Notice(n) => self.notify(n),
            Event::Login(update) => self.login_update(update),
            // Alerts go to the alert channels; the same transition is already a notice here.
            Event::Alert(_) => {}
        }
        self.expire(now);
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

    /// Drop notifications whose time is up.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        self.banners.retain(|b| b.alive(now));
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
