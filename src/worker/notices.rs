//! What the worker tells the user: the notification for each state it enters, the alert
//! that goes with it, and the texts of renewal outcomes. One place for the words, so the
//! dashboard, the log and the alerts say the same thing.

use crate::config::Strategy;
use crate::messages::{AlertEvent, Level, Notification, Snapshot, Topic};
use crate::schedule::Renewal;
use crate::token::TokenState;
use crate::token::expiry::to_ist;
use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

/// `Fri 27 Nov 03:30`, how notices name a moment (in IST).
pub fn day_time(t: DateTime<Utc>) -> String {
    to_ist(t).format("%a %d %b %H:%M").to_string()
}

/// What the user can do about a notice, said twice: with the dashboard's keys, and with a
/// command for where there is no keyboard (the log, alerts). The one place the two differ:
/// a notice carries both texts ([`Notification::message`], [`Notification::elsewhere`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// Log in.
    LogIn,
    /// Log in now.
    LogInNow,
    /// Log in, where no browser opens (a server: the login prints its address).
    LogInHeadless,
    /// Log in rather than wait (a token request that cannot succeed).
    LogInInstead,
    /// Start a login: none is running.
    StartLogin,
    /// The login failed: start another.
    LogInAgain,
    /// Renew now (`renew.command`).
    RenewNow,
    /// A renewal failed: try again, or log in.
    Retry,
    /// A token request failed for now: ask again at once rather than in 30 minutes.
    RetryNow,
    /// A token request was not approved: ask again, or log in.
    AskNow,
}

impl Hint {
    /// The dashboard's words: its keys.
    pub fn keys(self) -> &'static str {
        match self {
            Hint::LogIn => "press l to log in",
            Hint::LogInNow => "press l to log in now",
            Hint::LogInHeadless => "press l, or run tokenwatch login (--no-browser over SSH)",
            Hint::LogInInstead => "press l to log in instead",
            Hint::StartLogin => "press l to start one",
            Hint::LogInAgain => "press l to try again",
            Hint::RenewNow => "press r to renew now",
            Hint::Retry => "press r to retry or l to log in",
            Hint::RetryNow => "press r to retry now",
            Hint::AskNow => "press r to ask now, or l to log in",
        }
    }

    /// The words for the log and alerts: the command that does the same.
    pub fn command(self) -> &'static str {
        match self {
            Hint::LogIn => "log in: tokenwatch login",
            Hint::LogInNow => "log in now: tokenwatch login",
            Hint::LogInHeadless => "log in: tokenwatch login (--no-browser over SSH)",
            Hint::LogInInstead => "log in instead: tokenwatch login",
            Hint::StartLogin => "start one: tokenwatch login",
            Hint::LogInAgain => "try again: tokenwatch login",
            Hint::RenewNow => "renew now: tokenwatch refresh",
            Hint::Retry => "retry: tokenwatch refresh, or log in: tokenwatch login",
            Hint::RetryNow => "retry now: tokenwatch refresh",
            Hint::AskNow => "ask now: tokenwatch refresh, or log in: tokenwatch login",
        }
    }
}

/// `what`, then the hint's words after `; `, if there is a hint.
fn with_hint(what: &str, hint: Option<&str>) -> String {
    match hint {
        Some(h) if what.is_empty() => h.to_string(),
        Some(h) => format!("{what}; {h}"),
        None => what.to_string(),
    }
}

/// A notice about `account`: `what` happened and, with a hint, what to do about it, in the
/// dashboard's words and in the log's.
pub fn notice(
    account: &str,
    (level, topic): (Level, Topic),
    title: &str,
    what: &str,
    hint: Option<Hint>,
    at: DateTime<Utc>,
) -> Notification {
    Notification {
        account: account.to_string(),
        level,
        topic,
        title: title.to_string(),
        message: with_hint(what, hint.map(Hint::keys)),
        elsewhere: with_hint(what, hint.map(Hint::command)),
        at,
    }
}

/// The longest alert title and body: alerts are read on a phone's lock screen.
pub const ALERT_TITLE_MAX: usize = 40;
/// See [`ALERT_TITLE_MAX`].
pub const ALERT_BODY_MAX: usize = 140;

/// An alert's own title and body for the dashboard notice `n` about `event`: short, for a
/// phone screen, and with the action for where the reader is — a command or the Upstox app,
/// never a dashboard key.
pub fn alert_text(event: AlertEvent, strategy: Strategy, n: &Notification) -> (String, String) {
    let body = match event {
        AlertEvent::DeadlineMissed if strategy == Strategy::TokenRequest => APPROVE.to_string(),
        AlertEvent::DeadlineMissed => format!("trading starts soon; {LOG_IN}"),
        // A state notice's words away from the dashboard are its alert's (see `away`).
        _ => fit(&n.elsewhere),
    };
    (cut(&n.title, ALERT_TITLE_MAX), cut(&body, ALERT_BODY_MAX))
}

const LOG_IN: &str = "log in: tokenwatch login";
const APPROVE: &str = "approve the token request in the Upstox app, or run tokenwatch login";

/// A state's words for the log and alerts, with `left` the time left and `when` when the
/// next renewal starts (see [`renewal_when`]).
fn away(snap: &Snapshot, left: &str, when: &str) -> String {
    let (state, strategy) = (snap.state, snap.strategy);
    match state {
        TokenState::Healthy => format!("{left} left"),
        TokenState::Warning => format!(
            "{left} left; {}",
            match strategy {
                Strategy::None => "log in before it expires: tokenwatch login".to_string(),
                Strategy::Browser => format!("a login opens {when}, or run tokenwatch login"),
                Strategy::TokenRequest =>
                    format!("approve the token request in the Upstox app when it comes ({when})"),
                Strategy::Command => format!("renew.command runs {when}"),
                Strategy::Totp | Strategy::RefreshToken => format!(
                    "a renewal through {}'s API runs {when}",
                    snap.broker.display_name()
                ),
            }
        ),
        TokenState::Critical => format!(
            "{left} left; {}",
            match strategy {
                Strategy::None | Strategy::Browser => "log in now: tokenwatch login",
                Strategy::TokenRequest => APPROVE,
                Strategy::Command | Strategy::Totp | Strategy::RefreshToken =>
                    "renew now: tokenwatch refresh",
            }
        ),
        TokenState::Expired if strategy == Strategy::TokenRequest => APPROVE.to_string(),
        TokenState::Expired => LOG_IN.to_string(),
        TokenState::Invalid => format!(
            "{} no longer accepts it; {LOG_IN}",
            snap.broker.short_name()
        ),
        TokenState::Missing => format!("there is no token file; {LOG_IN}"),
    }
}

/// When the next unattended renewal starts, as a notice says it: `after 03:30 IST` for a
/// token that ends at the 03:30 IST boundary (renewing before it gains nothing, so nothing
/// happens when it comes due), else its time.
fn renewal_when(snap: &Snapshot) -> String {
    let exp = snap.token.as_ref().map(|t| t.expires_at);
    match (snap.renewal, exp) {
        (Renewal::NotDue { due_at }, Some(exp))
            if Renewal::waits_for_boundary(snap.broker, due_at, exp) =>
        {
            format!("after {} IST", to_ist(exp).format("%H:%M"))
        }
        (Renewal::NotDue { due_at }, _) => format!("at {} IST", day_time(due_at)),
        (Renewal::Deferred { until, .. }, _) => format!("at {} IST", day_time(until)),
        (Renewal::Due | Renewal::Disabled, _) => "now".to_string(),
    }
}

/// `text` within [`ALERT_BODY_MAX`], cut before its last clause (after the last `; `: what
/// to do) so that the action survives a long reason.
fn fit(text: &str) -> String {
    match text.rsplit_once("; ") {
        Some((what, hint)) if text.chars().count() > ALERT_BODY_MAX => {
            let room = ALERT_BODY_MAX.saturating_sub(hint.chars().count() + 2);
            format!("{}; {hint}", cut(what, room))
        }
        _ => text.to_string(),
    }
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
    notice(
        account,
        (Level::Critical, Topic::Renewal),
        "Renewal failed",
        why,
        Some(Hint::Retry),
        at,
    )
}

/// A due renewal opened the Upstox login in a browser (`how`) and waits until `until`. The
/// dashboard shows its address on `l`; away from it, the text holds the address (it holds no
/// secret) when that fits an alert, else it says where the address is: the log, which has it
/// ("Login waiting until …: open …").
pub fn login_waiting(
    account: &str,
    broker: crate::brokers::Broker,
    how: &str,
    url: &str,
    until: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Notification {
    let what = format!("the {} login was opened with {how}", broker.short_name());
    let mut n = notice(
        account,
        (Level::Warning, Topic::Renewal),
        "Log in to renew",
        &what,
        None,
        at,
    );
    n.message = format!("{what}; log in there, or press l to see the address");
    let by = to_ist(until).format("%H:%M");
    let with_url = format!("log in before {by} IST: {url}");
    n.elsewhere = if with_url.chars().count() <= ALERT_BODY_MAX {
        with_url
    } else {
        format!("{what}; log in there before {by} IST (its address is in tokenwatch's log)")
    };
    n
}

/// Log a notification at its level, in the words for where there is no keyboard.
pub fn log(account: &str, n: &Notification) {
    match n.level {
        Level::Critical => error!(account = %account, "{}: {}", n.title, n.elsewhere),
        Level::Warning => warn!(account = %account, "{}: {}", n.title, n.elsewhere),
        Level::Info => info!(account = %account, "{}: {}", n.title, n.elsewhere),
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
    let when = renewal_when(snap);
    let (level, title, message): (Level, String, String) = match snap.state {
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
                    format!("{left} left; a login opens {when}, or press l to log in now")
                }
                Strategy::TokenRequest => format!(
                    "{left} left; approve the token request on your phone when it comes ({when})"
                ),
                Strategy::Command => format!("{left} left; renew.command runs {when}"),
                Strategy::Totp | Strategy::RefreshToken => format!(
                    "{left} left; a renewal through {}'s API runs {when}",
                    snap.broker.display_name()
                ),
            },
        ),
        // Critical, as an alert is urgent and a notice stays until resolved: the engine stops
        // when this runs out. The hint names what works under the strategy.
        TokenState::Critical => (
            Level::Critical,
            "Token about to expire".into(),
            match snap.strategy {
                Strategy::None | Strategy::Browser => {
                    format!("{left} left; {}", Hint::LogInNow.keys())
                }
                Strategy::TokenRequest => {
                    format!("{left} left; approve the token request on your phone, or press l")
                }
                Strategy::Command | Strategy::Totp | Strategy::RefreshToken => {
                    format!("{left} left; {}", Hint::RenewNow.keys())
                }
            },
        ),
        TokenState::Expired => (
            Level::Critical,
            "Token expired!".into(),
            Hint::LogIn.keys().into(),
        ),
        TokenState::Invalid => (
            Level::Critical,
            format!("Token rejected by {}", snap.broker.short_name()),
            format!("it no longer works; {}", Hint::LogIn.keys()),
        ),
        TokenState::Missing => (
            Level::Critical,
            "No token".into(),
            Hint::LogIn.keys().into(),
        ),
    };
    Some(Notification {
        account: snap.account.clone(),
        level,
        topic: Topic::TokenState,
        title,
        message,
        elsewhere: away(snap, &left, &when),
        at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HINTS: [Hint; 10] = [
        Hint::LogIn,
        Hint::LogInNow,
        Hint::LogInHeadless,
        Hint::LogInInstead,
        Hint::StartLogin,
        Hint::LogInAgain,
        Hint::RenewNow,
        Hint::Retry,
        Hint::RetryNow,
        Hint::AskNow,
    ];

    #[test]
    fn every_hint_names_a_key_on_the_dashboard_and_a_command_elsewhere() {
        for h in HINTS {
            assert!(h.keys().starts_with("press "), "{h:?}: {}", h.keys());
            assert!(!h.command().contains("press"), "{h:?}: {}", h.command());
            assert!(
                h.command().contains("tokenwatch "),
                "{h:?}: {}",
                h.command()
            );
        }
    }

    /// A failed renewal's alert keeps its action however long the reason: the reason is
    /// cut, not the command.
    #[test]
    fn a_long_reason_is_cut_before_the_action() {
        let at = DateTime::<Utc>::MIN_UTC;
        for hint in [
            Hint::Retry,
            Hint::RetryNow,
            Hint::AskNow,
            Hint::LogInInstead,
        ] {
            let why = "the token request failed: ".to_string() + &"x".repeat(300);
            let n = notice(
                "default",
                (Level::Warning, Topic::Renewal),
                "Failed",
                &why,
                Some(hint),
                at,
            );
            let (_, body) = alert_text(AlertEvent::RenewalFailed, Strategy::TokenRequest, &n);
            assert!(body.chars().count() <= ALERT_BODY_MAX, "{body}");
            assert!(body.ends_with(&format!("…; {}", hint.command())), "{body}");
            assert!(!body.contains("press"), "{body}");
        }
    }
}
