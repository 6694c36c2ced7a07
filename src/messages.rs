//! The words the worker and its consumers share: the commands a consumer sends, the events
//! and snapshots a worker reports, notifications and alerts. Low in the module graph: it
//! imports no worker, alert or dashboard code, so every one of them can import it.

use crate::auth::login::LoginProgress;
use crate::brokers::Broker;
use crate::config::Strategy;
use crate::schedule::{Renewal, Verdict};
use crate::token::store::WriteTally;
use crate::token::verdict::StoredVerdict;
use crate::token::{ExpirySource, TokenState};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// What a consumer asks the worker to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Ask the API about the token now.
    Check,
    /// `r`, the API: validate now, then renew at once if renewal is due or the token is
    /// invalid. Requests that come while one is queued or running join it, and forced checks
    /// start at most once per [`FORCE_SPACING`]; the worker answers how it took this one.
    ForceRefresh(Reply<Forced>),
    /// `l`: start the browser login now (a running one is left alone).
    StartLogin,
    /// The HTTP API: start a login whose address goes back to whoever asked, on another
    /// machine perhaps; no browser opens on this one.
    StartLoginElsewhere,
    /// `p`: the address the browser was sent to after logging in, pasted by the user.
    PasteRedirect(String),
    /// `Esc`: give up the running login.
    CancelLogin,
    /// Stop after the current step; nothing is left half-written.
    Shutdown,
    /// A reloaded configuration for this account: taken at once, or after the running check
    /// or renewal ends (which it never interrupts).
    Reload(Reconfig),
}

/// One account's settings from a reloaded configuration.
#[derive(Debug, Clone)]
pub struct Reconfig(pub Arc<ReconfigParts>);

/// What [`Reconfig`] carries.
#[derive(Debug)]
pub struct ReconfigParts {
    /// The account (same name, broker and token file as the running one).
    pub account: crate::config::AccountConfig,
    /// `monitor:`.
    pub monitor: crate::config::MonitorConfig,
    /// `login:`.
    pub login: crate::config::LoginConfig,
}

impl PartialEq for Reconfig {
    fn eq(&self, other: &Reconfig) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Reconfig {}

impl Command {
    /// A forced refresh whose answer nobody waits for (the dashboard's `r`: the worker
    /// shows a refused one as a notification).
    pub fn force_refresh() -> Command {
        Command::ForceRefresh(Reply::none())
    }
}

/// Forced checks of one account start at most this often: a burst of `r` presses or API
/// calls makes one API call, not hundreds (Upstox allows a user 50 requests a second, and
/// the trading engine shares that quota).
pub const FORCE_SPACING: std::time::Duration = std::time::Duration::from_secs(5);

/// What the worker did with a forced refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forced {
    /// A check starts now (and a renewal, when one is due).
    Started,
    /// One was queued or running already: this request joins it.
    Merged,
    /// A forced check started less than [`FORCE_SPACING`] ago; ask again after this long.
    TooSoon(std::time::Duration),
}

/// Where the worker answers one request. Clones share it and the first answer wins;
/// equality ignores it, so commands compare by what they ask.
pub struct Reply<T>(Option<Arc<Mutex<Option<oneshot::Sender<T>>>>>);

impl<T> Reply<T> {
    /// No one waits for the answer.
    pub fn none() -> Reply<T> {
        Reply(None)
    }

    /// A reply and the receiver its answer arrives on.
    pub fn channel() -> (Reply<T>, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (Reply(Some(Arc::new(Mutex::new(Some(tx))))), rx)
    }

    /// Answer; false when no one waits for it (or it was answered already).
    pub fn send(&self, answer: T) -> bool {
        let Some(slot) = &self.0 else { return false };
        let tx = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        tx.is_some_and(|tx| tx.send(answer).is_ok())
    }
}

impl<T> Clone for Reply<T> {
    fn clone(&self) -> Reply<T> {
        Reply(self.0.clone())
    }
}

impl<T> Default for Reply<T> {
    fn default() -> Reply<T> {
        Reply::none()
    }
}

impl<T> PartialEq for Reply<T> {
    fn eq(&self, _: &Reply<T>) -> bool {
        true
    }
}

impl<T> Eq for Reply<T> {}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Reply" } else { "NoReply" })
    }
}

/// How loud a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Good news; dismisses itself.
    Info,
    /// Needs attention soon; dismisses itself.
    Warning,
    /// Needs action; stays until dismissed or resolved.
    Critical,
}

/// What a notification is about; a newer one on the same topic replaces the older.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// The token's state changed.
    TokenState,
    /// A renewal succeeded or failed.
    Renewal,
    /// No valid token shortly before `renew.deadline`.
    Deadline,
    /// A login started, succeeded or failed.
    Login,
    /// The configuration was read again (or not).
    Config,
}

/// A notification for the user.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Notification {
    /// The account it is about.
    pub account: String,
    /// How loud.
    pub level: Level,
    /// What it is about.
    pub topic: Topic,
    /// Short title: "Token expired!".
    pub title: String,
    /// What happened and what to do, for the dashboard: it names keys ("press l to log in").
    pub message: String,
    /// The same for where there is no keyboard, the log and alerts: it names commands
    /// ("log in: tokenwatch login") or the Upstox app, never a key.
    pub elsewhere: String,
    /// When it was raised.
    pub at: DateTime<Utc>,
}

/// What is known about the stored token, without the token.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenInfo {
    /// `eyJ0…a1B2`.
    pub masked: String,
    /// The Upstox user id.
    pub user_id: Option<String>,
    /// The account holder's name.
    pub user_name: Option<String>,
    /// When it was issued, when known.
    pub issued_at: Option<DateTime<Utc>>,
    /// When it dies.
    pub expires_at: DateTime<Utc>,
    /// Where the expiry came from.
    pub expiry_source: ExpirySource,
    /// How it was obtained, when known.
    pub obtained_via: Option<String>,
    /// Which token this is, without saying anything of it: the first 16 hex digits of its
    /// SHA-256 (as in the shared verdict file). A new token has a new version.
    pub version: String,
}

/// The worker's view of one account at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The account name.
    pub account: String,
    /// The account's broker.
    pub broker: Broker,
    /// When this snapshot was taken.
    pub at: DateTime<Utc>,
    /// The token's state.
    pub state: TokenState,
    /// The token, when there is one.
    pub token: Option<TokenInfo>,
    /// When the API was last asked.
    pub last_check_at: Option<DateTime<Utc>>,
    /// The outcome of that: "valid", "rejected: ...", "unreachable: ...".
    pub last_check_result: Option<String>,
    /// The API's last answer about this token (this process's or another's), with its
    /// error code: the status JSON's `last_check`.
    pub answer: Option<StoredVerdict>,
    /// When the API will be asked next.
    pub next_check_at: Option<DateTime<Utc>>,
    /// The renewal decision.
    pub renewal: Renewal,
    /// A renewal or validation round is running.
    pub busy: bool,
    /// `renew.strategy`.
    pub strategy: Strategy,
    /// The token file.
    pub token_file: PathBuf,
    /// The backup files.
    pub backups: Vec<PathBuf>,
    /// Why the token file could not be used, when it could not (the state is then `missing`).
    pub token_error: Option<String>,
    /// The login waiting for the browser, if one is.
    pub login: Option<PendingLogin>,
    /// Renewals since the worker started.
    pub renewals: RenewalTally,
    /// Token file writes since the worker started.
    pub file_writes: WriteTally,
}

/// A login waiting for the user, as the HTTP API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingLogin {
    /// The Upstox login address to open.
    pub auth_url: String,
    /// Where the callback listener listens.
    pub listening: Vec<SocketAddr>,
    /// When the login gives up.
    pub until: DateTime<Utc>,
}

/// How many renewals (of any strategy, logins included) succeeded and failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenewalTally {
    /// A new token was stored.
    pub succeeded: u64,
    /// A renewal ended without a new token after every attempt (or could not store it).
    pub failed: u64,
}

impl Snapshot {
    /// What the API last said, from its last answer.
    pub fn verdict(&self) -> Verdict {
        Verdict::of(self.answer.as_ref())
    }

    /// True when anything but the time it was taken (`at`) changed.
    pub fn differs_from(&self, other: &Snapshot) -> bool {
        let mut a = self.clone();
        a.at = other.at;
        a != *other
    }
}

/// What the worker reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The account's state, after every change.
    Status(Box<Snapshot>),
    /// Something the user should see.
    Notice(Notification),
    /// How a login is going.
    Login(LoginUpdate),
    /// A transition to send to the alert channels (`notifications.*`).
    Alert(Alert),
}

/// A step of a login, for the dashboard's login overlay.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginUpdate {
    /// Waiting, exchanging, or a pasted address refused.
    Progress(LoginProgress),
    /// Stored: the new token lives until then.
    Succeeded(DateTime<Utc>),
    /// Ended without a token, and why.
    Failed(String),
}

/// Which transition an alert is about. One alert per transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// The token entered `warning` (less than `monitor.warning_before` left).
    Warning,
    /// The token entered `critical` (less than `monitor.critical_before` left).
    Critical,
    /// The token expired.
    Expired,
    /// Upstox rejected the token.
    Invalid,
    /// There is no token (or the file cannot be read).
    Missing,
    /// A renewal (any strategy, or a login) stored a new token.
    Renewed,
    /// The token is healthy again after being expired, invalid, missing or critical (fixed
    /// by this process's renewal, or by a new token file from elsewhere). Sent instead of
    /// `renewed` when this process's renewal did it.
    Recovered,
    /// A renewal failed after every attempt.
    RenewalFailed,
    /// No valid token 30 minutes before `renew.deadline` on a trading day.
    DeadlineMissed,
    /// A due renewal opened the Upstox login and waits for the user to log in.
    LoginWaiting,
    /// `tokenwatch alerts test`: a test of every channel, about nothing.
    Test,
}

impl AlertEvent {
    /// The name used in payloads and `TOKENWATCH_ALERT_EVENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Warning => "warning",
            AlertEvent::Critical => "critical",
            AlertEvent::Expired => "expired",
            AlertEvent::Invalid => "invalid",
            AlertEvent::Missing => "missing",
            AlertEvent::Renewed => "renewed",
            AlertEvent::Recovered => "recovered",
            AlertEvent::RenewalFailed => "renewal_failed",
            AlertEvent::DeadlineMissed => "deadline_missed",
            AlertEvent::LoginWaiting => "login_waiting",
            AlertEvent::Test => "test",
        }
    }
}

/// One alert. Never holds a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The account it is about.
    pub account: String,
    /// The transition.
    pub event: AlertEvent,
    /// How loud.
    pub level: Level,
    /// Short title: "Token expired!".
    pub title: String,
    /// What happened and what to do.
    pub message: String,
    /// The token's state when the alert was raised.
    pub state: TokenState,
    /// The token's expiry, when there is a token.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was raised (the worker's clock).
    pub at: DateTime<Utc>,
}
