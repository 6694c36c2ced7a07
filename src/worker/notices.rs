//! What the worker tells the user: the notification for each state it enters, the alert
//! that goes with it, and the texts of renewal outcomes. One place for the words, so the
//! dashboard, the log and the alerts say the same thing.

use crate::config::Strategy;
use crate::messages::{AlertEvent, Level, Notification, Snapshot, Topic};
use crate::token::TokenState;
use crate::token::expiry::to_ist;
use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

/// `Fri 27 Nov 03:30`, how notices name a moment (in IST).
pub fn day_time(t: DateTime<Utc>) -> String {
    to_ist(t).format("%a %d %b %H:%M").to_string()
}

/// The dashboard's hint after a failed renewal's reason.
const RETRY_HINT: &str = "; press r to retry or l to log in";

/// The longest alert title and body: alerts are read on a phone's lock screen.
pub const ALERT_TITLE_MAX: usize = 40;
/// See [`ALERT_TITLE_MAX`].
pub const ALERT_BODY_MAX: usize = 140;

/// An alert's own title and body for the dashboard notice `n` about `event`: short, for a
/// phone screen, and with the action for where the reader is — a command or the Upstox app,
/// never a dashboard key. `left` is the time left, as the notice says it.
pub fn alert_text(
    event: AlertEvent,
    strategy: Strategy,
    n: &Notification,
    left: &str,
) -> (String, String) {
    const LOG_IN: &str = "log in: tokenwatch login";
    let approve = "approve the token request in the Upstox app, or run tokenwatch login";
    let body = match event {
        AlertEvent::Warning => format!(
            "{left} left; {}",
            match strategy {
                Strategy::None => "log in before it expires: tokenwatch login",
                Strategy::Browser => "a login opens when renewal is due",
                Strategy::TokenRequest =>
                    "approve the token request in the Upstox app when it comes",
                Strategy::Command => "renew.command runs when renewal is due",
            }
        ),
        AlertEvent::Critical => format!(
            "{left} left; {}",
            match strategy {
                Strategy::None | Strategy::Browser => "log in now: tokenwatch login",
                Strategy::TokenRequest => approve,
                Strategy::Command => "renew now: tokenwatch refresh",
            }
        ),
        AlertEvent::Expired | AlertEvent::DeadlineMissed if strategy == Strategy::TokenRequest => {
            approve.to_string()
        }
        AlertEvent::Expired => LOG_IN.to_string(),
        AlertEvent::Invalid => format!("Upstox no longer accepts it; {LOG_IN}"),
        AlertEvent::Missing => format!("there is no token file; {LOG_IN}"),
        AlertEvent::DeadlineMissed => format!("trading starts soon; {LOG_IN}"),
        AlertEvent::RenewalFailed => {
            let why = n.message.strip_suffix(RETRY_HINT).unwrap_or(&n.message);
            let hint = "; retry: tokenwatch refresh";
            format!("{}{hint}", cut(why, ALERT_BODY_MAX - hint.chars().count()))
        }
        AlertEvent::Renewed | AlertEvent::Recovered => n.message.clone(),
    };
    (cut(&n.title, ALERT_TITLE_MAX), cut(&body, ALERT_BODY_MAX))
}

/// `text` cut to at most `max` characters, with `…` where it was cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A renewal round that ended without a token.
pub fn renewal_failed(account: &str, why: &str, at: DateTime<Utc>) -> Notification {
    Notification {
        account: account.to_string(),
        level: Level::Critical,
        topic: Topic::Renewal,
        title: "Renewal failed".into(),
        message: format!("{why}{RETRY_HINT}"),
        at,
    }
}

/// Log a notification at its level.
pub fn log(account: &str, n: &Notification) {
    match n.level {
        Level::Critical => error!(account = %account, "{}: {}", n.title, n.message),
        Level::Warning => warn!(account = %account, "{}: {}", n.title, n.message),
        Level::Info => info!(account = %account, "{}: {}", n.title, n.message),
    }
}

/// The alert for entering `state`, if it is one users are alerted to.
pub fn state_alert(state: TokenState) -> Option<AlertEvent> {
    match state {
        TokenState::Healthy => None,
        TokenState::Warning => Some(AlertEvent::Warning),
        TokenState::Critical => Some(AlertEvent::Critical),
        TokenState::Expired => Some(AlertEvent::Expired),
        TokenState::Invalid => Some(AlertEvent::Invalid),
        TokenState::Missing => Some(AlertEvent::Missing),
    }
}

/// A state whose end is worth a `recovered` alert: the token did not work, or nearly did not.
pub fn needs_recovery(state: TokenState) -> bool {
    matches!(
        state,
        TokenState::Expired | TokenState::Invalid | TokenState::Missing | TokenState::Critical
    )
}

/// The notification for entering `snap.state` from `from`.
pub fn state_notice(
    snap: &Snapshot,
    from: Option<TokenState>,
    now: DateTime<Utc>,
) -> Option<Notification> {
    let left = snap
        .token
        .as_ref()
        .map(|t| crate::timefmt::human(t.expires_at - now))
        .unwrap_or_default();
    let (level, title, message) = match snap.state {
        TokenState::Healthy if from.is_some_and(|f| f != TokenState::Healthy) => (
            Level::Info,
            "Token valid".to_string(),
            format!("{left} left"),
        ),
        TokenState::Healthy => return None,
        TokenState::Warning => (
            Level::Warning,
            "Token expires soon".into(),
            match snap.strategy {
                Strategy::None => format!("{left} left; press l to log in before it expires"),
                Strategy::Browser => {
                    format!("{left} left; a login opens when renewal is due (or press l)")
                }
                Strategy::TokenRequest => {
                    format!("{left} left; approve the token request on your phone when it comes")
                }
                Strategy::Command => format!("{left} left; renew.command runs when renewal is due"),
            },
        ),
        // Critical, as an alert is urgent and a notice stays until resolved: the engine stops
        // when this runs out. The hint names what works under the strategy.
        TokenState::Critical => (
            Level::Critical,
            "Token about to expire".into(),
            match snap.strategy {
                Strategy::None | Strategy::Browser => {
                    format!("{left} left; press l to log in now")
                }
                Strategy::TokenRequest => {
                    format!("{left} left; approve the token request on your phone, or press l")
                }
                Strategy::Command => format!("{left} left; press r to renew now"),
            },
        ),
        TokenState::Expired => (
            Level::Critical,
            "Token expired!".into(),
            "press l to log in".into(),
        ),
        TokenState::Invalid => (
            Level::Critical,
            "Token rejected by Upstox".into(),
            "it no longer works; press l to log in".into(),
        ),
        TokenState::Missing => (
            Level::Critical,
            "No token".into(),
            "press l to log in".into(),
        ),
    };
    Some(Notification {
        account: snap.account.clone(),
        level,
        topic: Topic::TokenState,
        title,
        message,
        at: now,
    })
}
