//! The brokers tokenwatch knows. Each broker has its own API client and login, and its own
//! rule for when a day's token dies; the worker, the login and the notifier reach them
//! through this module ([`Broker`], [`BrokerClient`]), never a broker's endpoints directly.

pub mod angel;
pub mod answer;
mod client;
pub mod dhan;
pub mod fyers;
pub mod kite;
mod login_app;
pub mod simkit;
pub mod totp;
pub mod upstox;

pub use angel::AngelUser;
pub use client::{BrokerClient, Headless, Renewing, Session, api_base, not_sent, session_token};
pub use login_app::LoginApp;

use crate::config::Strategy;
use crate::secret::Secret;
use crate::token::expiry::upstox_expiry;
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

/// A broker whose daily token tokenwatch can watch. `broker:` in the configuration, the token
/// file and the status JSON, spelled in lower case.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Broker {
    /// Upstox: tokens die at 03:30 IST.
    #[default]
    Upstox,
    /// Zerodha Kite Connect: tokens die at 06:00 IST.
    Kite,
    /// Fyers: the token's JWT `exp` decides.
    Fyers,
    /// Angel One SmartAPI: the token's JWT `exp` decides.
    Angel,
    /// Dhan: the `expiryTime` it gives decides.
    Dhan,
}

impl Broker {
    /// Every broker, in the order people see them listed.
    pub const ALL: [Broker; 5] = [
        Broker::Upstox,
        Broker::Kite,
        Broker::Fyers,
        Broker::Angel,
        Broker::Dhan,
    ];

    /// The brokers this tokenwatch can log in to and check.
    pub const SUPPORTED: [Broker; 5] = Broker::ALL;

    /// The name in configuration files, token files and JSON: `upstox`, `kite`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Broker::Upstox => "upstox",
            Broker::Kite => "kite",
            Broker::Fyers => "fyers",
            Broker::Angel => "angel",
            Broker::Dhan => "dhan",
        }
    }

    /// The name for people: "Upstox", "Zerodha Kite", ...
    pub fn display_name(self) -> &'static str {
        match self {
            Broker::Upstox => "Upstox",
            Broker::Kite => "Zerodha Kite",
            Broker::Fyers => "Fyers",
            Broker::Angel => "Angel One",
            Broker::Dhan => "Dhan",
        }
    }

    /// How an engine sends this broker's token, for the token file's `token_type`:
    /// `Bearer <token>` (Upstox, Fyers' JWT), `token <api_key>:<token>` (Kite), the bare token
    /// in an `access-token` header (Dhan).
    pub fn token_type(self) -> &'static str {
        match self {
            Broker::Kite => "token",
            Broker::Dhan => "access-token",
            _ => "Bearer",
        }
    }

    /// The short name where room is scarce (the dashboard's header): "Upstox", "Kite", ...
    pub fn short_name(self) -> &'static str {
        match self {
            Broker::Upstox => "Upstox",
            Broker::Kite => "Kite",
            Broker::Fyers => "Fyers",
            Broker::Angel => "Angel",
            Broker::Dhan => "Dhan",
        }
    }

    /// The broker named `name` (`upstox`, `kite`, ...; any case).
    pub fn parse(name: &str) -> Option<Broker> {
        Broker::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this tokenwatch can log in to and check this broker.
    pub fn is_supported(self) -> bool {
        Broker::SUPPORTED.contains(&self)
    }

    /// `upstox, kite`: the supported brokers, for messages.
    pub fn supported_list() -> String {
        Broker::SUPPORTED.map(Broker::as_str).join(", ")
    }

    /// The time of day (IST) this broker's tokens die, when it has such a rule.
    pub fn daily_expiry_time(self) -> Option<NaiveTime> {
        match self {
            Broker::Upstox => NaiveTime::from_hms_opt(3, 30, 0),
            Broker::Kite => Some(kite::expiry_time()),
            Broker::Fyers | Broker::Angel | Broker::Dhan => None,
        }
    }

    /// The broker's own rule for a token issued at `issued_at`: Upstox's die at the first
    /// 03:30 IST after issue, Kite's at the first 06:00 IST after issue. `None` for brokers
    /// whose token says when it ends (Fyers, Angel One: the JWT `exp`; Dhan: `expiryTime`).
    pub fn expiry_rule(self, issued_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Broker::Upstox => Some(upstox_expiry(issued_at)),
            Broker::Kite => Some(kite_expiry(issued_at)),
            Broker::Fyers | Broker::Angel | Broker::Dhan => None,
        }
    }

    /// The renewal strategies (`renew.strategy`) that work for this broker's accounts.
    pub fn strategies(self) -> &'static [Strategy] {
        use Strategy::*;
        match self {
            Broker::Upstox => &[Browser, TokenRequest, Command, None],
            Broker::Kite => &[Browser, Command, None],
            Broker::Fyers => &[Browser, RefreshToken, Command, None],
            // Angel One's login is an API call with the PIN and a TOTP code: no browser.
            Broker::Angel => &[Totp, RefreshToken, Command, None],
            Broker::Dhan => &[Browser, Totp, RefreshToken, Command, None],
        }
    }

    /// The strategy of an account that names none: the browser login, or for Angel One,
    /// whose login has no browser page, the TOTP login.
    pub fn default_strategy(self) -> Strategy {
        match self {
            Broker::Angel => Strategy::Totp,
            _ => Strategy::Browser,
        }
    }

    /// Whether `tokenwatch login` opens this broker's login page in a browser; when not (Angel
    /// One), it logs in through the API with the PIN and a TOTP code.
    pub fn has_browser_login(self) -> bool {
        self.strategies().contains(&Strategy::Browser)
    }

    /// Whether a login (`tokenwatch login`, the dashboard's `l`) for an account with this
    /// strategy is the API's PIN-and-TOTP login rather than the browser's: always for Angel
    /// One, which has no browser login, and for a Dhan account whose strategy is totp.
    pub fn logs_in_headless(self, strategy: Strategy) -> bool {
        !self.has_browser_login() || strategy == Strategy::Totp
    }

    /// "the 03:30 IST rule", "the 06:00 IST rule": how people read the rule's name.
    pub fn rule_name(self) -> String {
        match self.daily_expiry_time() {
            Some(t) => format!("the {} IST rule", t.format("%H:%M")),
            None => format!("{}'s rule", self.display_name()),
        }
    }
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use kite::kite_expiry;

/// Why a call to a broker's API did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The broker rejected the token (Upstox: its JSON error `UDAPI100050`). Only this makes
    /// a token `invalid`.
    #[error("{} rejected the token ({}): {message}", broker.display_name(), code.as_deref().unwrap_or("HTTP 401"))]
    Invalid {
        /// The broker that answered.
        broker: Broker,
        /// The broker's error code, when it sent one.
        code: Option<String>,
        /// The broker's message.
        message: String,
    },
    /// Worth trying again later: network errors, timeouts, 5xx, rate limits, the nightly
    /// service window, and answers that are not the broker's JSON.
    #[error("{reason}")]
    Transient {
        /// What happened.
        reason: String,
        /// The broker's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The broker refused the request for another reason (bad credentials, used code, ...).
    #[error("{}", refusal_text(*broker, *status, code.as_deref(), message))]
    Rejected {
        /// The broker that answered.
        broker: Broker,
        /// The HTTP status.
        status: u16,
        /// The broker's error code, when it sent one.
        code: Option<String>,
        /// The broker's message.
        message: String,
    },
}

impl ApiError {
    /// True for errors worth retrying.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Transient { .. })
    }

    /// The broker answered with a rate limit (worded by [`answer::rate_limited`]).
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, ApiError::Transient { reason, .. } if reason.contains(answer::RATE_LIMITED))
    }

    /// The broker's `Retry-After`, when the error carries one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The user's profile, the answer to a token check. Every field is optional: tokenwatch
/// needs only to know the call succeeded.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Profile {
    /// `AB1234`.
    pub user_id: Option<String>,
    /// The account holder's name.
    pub user_name: Option<String>,
    /// The account holder's email.
    pub email: Option<String>,
    /// Whether the account is active.
    pub is_active: Option<bool>,
}

/// `Zerodha Kite refused the request (HTTP 403, InputException): Invalid checksum`; a status
/// of 0 is a request that could not be sent at all (`not sent`).
fn refusal_text(broker: Broker, status: u16, code: Option<&str>, message: &str) -> String {
    let code = code.map(|c| format!(", {c}")).unwrap_or_default();
    match status {
        0 => format!(
            "{} request not sent{code}: {message}",
            broker.display_name()
        ),
        _ => format!(
            "{} refused the request (HTTP {status}{code}): {message}",
            broker.display_name()
        ),
    }
}

/// `browser, command, none`: a broker's strategies, for messages.
pub fn strategy_list(broker: Broker) -> String {
    broker
        .strategies()
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// "tokenwatch does not support X yet (supported: upstox, kite, fyers, angel, dhan)".
pub fn unsupported_text(broker: Broker) -> String {
    format!(
        "tokenwatch does not support {} yet (supported: {})",
        broker.as_str(),
        Broker::supported_list()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::expiry::ist;
    use chrono::TimeZone;

    fn at_ist(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        ist()
            .with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn upstox_tokens_die_at_the_next_0330_ist() {
        let rule = |t| Broker::Upstox.expiry_rule(t);
        assert_eq!(
            rule(at_ist(2026, 11, 26, 3, 29, 59)),
            Some(at_ist(2026, 11, 26, 3, 30, 0))
        );
        assert_eq!(
            rule(at_ist(2026, 11, 26, 3, 30, 0)),
            Some(at_ist(2026, 11, 27, 3, 30, 0))
        );
    }

    #[test]
    fn kite_tokens_die_at_the_next_0600_ist() {
        let rule = |t| Broker::Kite.expiry_rule(t);
        // Issued just before 06:00: dies at 06:00 the same morning.
        assert_eq!(
            rule(at_ist(2026, 11, 26, 5, 59, 59)),
            Some(at_ist(2026, 11, 26, 6, 0, 0))
        );
        // Issued at 06:00 exactly or just after: dies at 06:00 the next morning.
        assert_eq!(
            rule(at_ist(2026, 11, 26, 6, 0, 0)),
            Some(at_ist(2026, 11, 27, 6, 0, 0))
        );
        assert_eq!(
            rule(at_ist(2026, 11, 26, 6, 0, 1)),
            Some(at_ist(2026, 11, 27, 6, 0, 0))
        );
        // A morning login lives almost a day.
        assert_eq!(
            rule(at_ist(2026, 11, 26, 9, 15, 0)),
            Some(at_ist(2026, 11, 27, 6, 0, 0))
        );
        // Across midnight, the month and the year.
        assert_eq!(
            rule(at_ist(2026, 12, 31, 23, 59, 59)),
            Some(at_ist(2027, 1, 1, 6, 0, 0))
        );
        assert_eq!(
            rule(at_ist(2027, 1, 1, 0, 0, 1)),
            Some(at_ist(2027, 1, 1, 6, 0, 0))
        );
        // 00:45 UTC is 06:15 IST: the rule is IST's day, not UTC's.
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 0, 45, 0).unwrap();
        assert_eq!(rule(t), Some(at_ist(2026, 11, 27, 6, 0, 0)));
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 0, 15, 0).unwrap();
        assert_eq!(rule(t), Some(at_ist(2026, 11, 26, 6, 0, 0)));
    }

    #[test]
    fn brokers_whose_token_says_when_it_ends_have_no_rule() {
        let t = at_ist(2026, 11, 26, 9, 0, 0);
        for b in [Broker::Fyers, Broker::Angel, Broker::Dhan] {
            assert_eq!(b.expiry_rule(t), None, "{b}");
        }
    }

    #[test]
    fn names() {
        for b in Broker::ALL {
            assert_eq!(Broker::parse(b.as_str()), Some(b));
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{}\"", b.as_str()));
        }
        assert_eq!(Broker::default(), Broker::Upstox);
        assert_eq!(Broker::Kite.display_name(), "Zerodha Kite");
        assert_eq!(Broker::Angel.display_name(), "Angel One");
        assert_eq!(Broker::Kite.rule_name(), "the 06:00 IST rule");
        assert_eq!(Broker::Upstox.rule_name(), "the 03:30 IST rule");
        assert_eq!(
            unsupported_text(Broker::Dhan),
            "tokenwatch does not support dhan yet (supported: upstox, kite, fyers, angel, dhan)"
        );
        let e = ApiError::Invalid {
            broker: Broker::Kite,
            code: Some("TokenException".into()),
            message: "Invalid session".into(),
        };
        assert_eq!(
            e.to_string(),
            "Zerodha Kite rejected the token (TokenException): Invalid session"
        );
    }
}
