//! The token model: what tokenwatch knows about the stored access token, how long it has
//! left, and which state that puts it in.
//!
//! - [`file`](mod@self::file) reads every accepted token-file format and writes format 1.
//! - [`expiry`] holds IST, the Upstox 03:30 IST rule, the JWT `exp` decoding and the one
//!   decision of a token's expiry ([`expiry::decide_expiry`]), which applies the broker's rule.
//! - [`store`] writes the file atomically, keeps `.prev` and backups, and restores.
//! - [`verdict`] keeps the API's last answer about the token beside it (`.state`).

pub mod expiry;
pub mod file;
pub mod store;
pub mod verdict;

use crate::brokers::Broker;
use crate::secret::Secret;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

pub use file::{TokenFileError, read_token_file};

/// Which bound decided a token's expiry: the earliest of the file's claim, the JWT `exp` and
/// the broker's rule (Upstox: 03:30 IST, Kite: 06:00 IST) from the issue time (see [`expiry::decide_expiry`]); on a tie, the one
/// listed first here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpirySource {
    /// The file's `expires_at` field.
    ExpiresAt,
    /// The JWT `exp` claim (decoded, not verified).
    JwtExp,
    /// The broker's rule (Upstox: the first 03:30 IST) after the file's `issued_at`.
    RuleFromIssuedAt,
    /// The broker's rule after the file's `created_at`.
    RuleFromCreatedAt,
    /// The broker's rule after the token's JWT `iat` claim.
    RuleFromJwtIat,
    /// The broker's rule after the file's modification time.
    RuleFromFileMtime,
}

impl ExpirySource {
    /// A short phrase for humans, naming `broker`'s rule: "the file's expires_at", "the 03:30
    /// IST rule from issued_at", "the 06:00 IST rule from the file's modification time".
    pub fn describe(self, broker: Broker) -> String {
        let rule = broker.rule_name();
        match self {
            ExpirySource::ExpiresAt => "the file's expires_at".into(),
            ExpirySource::JwtExp => "the token's JWT exp claim".into(),
            ExpirySource::RuleFromIssuedAt => format!("{rule} from issued_at"),
            ExpirySource::RuleFromCreatedAt => format!("{rule} from created_at"),
            ExpirySource::RuleFromJwtIat => format!("{rule} from the token's JWT iat claim"),
            ExpirySource::RuleFromFileMtime => {
                format!("{rule} from the file's modification time")
            }
        }
    }
}

/// Which of the accepted layouts a token file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFileFormat {
    /// tokenwatch's own `{"format":1,...}`.
    Format1,
    /// Upstox's flat token-exchange response, as the older Python manager saved it (with `created_at`).
    UpstoxResponse,
    /// `{"access_token":..., "expires_at": epoch s | epoch ms | RFC 3339}`.
    Legacy,
    /// A file holding only the token text.
    Raw,
}

/// A stored access token and what is known about it.
#[derive(Debug, Clone)]
pub struct Token {
    /// The broker the token is for (a file without `"broker"` is Upstox's).
    pub broker: Broker,
    /// The bearer token itself.
    pub access_token: Secret,
    /// Always "Bearer" for Upstox.
    pub token_type: String,
    /// Upstox's one-year read-only token, when one was issued.
    pub extended_token: Option<Secret>,
    /// The Upstox user id (`AB1234`).
    pub user_id: Option<String>,
    /// The account holder's name.
    pub user_name: Option<String>,
    /// The account holder's email.
    pub email: Option<String>,
    /// When the token was issued, when known.
    pub issued_at: Option<DateTime<Utc>>,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// Where `expires_at` came from.
    pub expiry_source: ExpirySource,
    /// How the token was obtained (`oauth`, `token-request`, `command`, ...), when known.
    pub obtained_via: Option<String>,
    /// What renews it without a login (Fyers' and Angel One's refresh token), when the
    /// login or renewal that gave it sent one. Never written into the token file: the store
    /// keeps it beside it, in `<token file>.refresh` (0600), which engines need not read.
    pub refresh_token: Option<Secret>,
    /// The layout the file had.
    pub format: TokenFileFormat,
}

impl Token {
    /// Time left until expiry (negative once expired).
    pub fn remaining(&self, now: DateTime<Utc>) -> Duration {
        self.expires_at - now
    }
}

/// How long before expiry the state changes colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Below this (inclusive) the token is in `warning`.
    pub warning_before: std::time::Duration,
    /// Below this (exclusive) the token is `critical`.
    pub critical_before: std::time::Duration,
}

/// A token's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    /// More than `warning_before` left.
    Healthy,
    /// Between `critical_before` and `warning_before` left (both inclusive).
    Warning,
    /// Less than `critical_before` left, but not yet expired.
    Critical,
    /// No time left.
    Expired,
    /// The API rejected the token (401 / UDAPI100050).
    Invalid,
    /// No readable token.
    Missing,
}

impl TokenState {
    /// The state by time alone: `healthy`, `warning`, `critical` or `expired`.
    pub fn by_time(expires_at: DateTime<Utc>, now: DateTime<Utc>, t: Thresholds) -> TokenState {
        let left = expires_at - now;
        let warn = Duration::from_std(t.warning_before).unwrap_or(Duration::MAX);
        let crit = Duration::from_std(t.critical_before).unwrap_or(Duration::MAX);
        if left <= Duration::zero() {
            TokenState::Expired
        } else if left < crit {
            TokenState::Critical
        } else if left <= warn {
            TokenState::Warning
        } else {
            TokenState::Healthy
        }
    }

    /// The lowercase name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Healthy => "healthy",
            TokenState::Warning => "warning",
            TokenState::Critical => "critical",
            TokenState::Expired => "expired",
            TokenState::Invalid => "invalid",
            TokenState::Missing => "missing",
        }
    }

    /// The word shown on screen: `HEALTHY`, ..., `NO TOKEN`.
    pub fn label(self) -> &'static str {
        match self {
            TokenState::Healthy => "HEALTHY",
            TokenState::Warning => "WARNING",
            TokenState::Critical => "CRITICAL",
            TokenState::Expired => "EXPIRED",
            TokenState::Invalid => "INVALID",
            TokenState::Missing => "NO TOKEN",
        }
    }

    /// True while the token can still be used (it may be close to expiry).
    pub fn is_usable(self) -> bool {
        matches!(
            self,
            TokenState::Healthy | TokenState::Warning | TokenState::Critical
        )
    }
}

impl std::fmt::Display for TokenState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Format a duration as `15h 12m 09s` (the dashboard's countdown form).
pub fn format_countdown(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    format!("{}h {:02}m {:02}s", s / 3600, (s % 3600) / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const T: Thresholds = Thresholds {
        warning_before: std::time::Duration::from_secs(3 * 3600),
        critical_before: std::time::Duration::from_secs(3600),
    };

    #[test]
    fn state_boundaries_are_exact() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        let at = |secs: i64| TokenState::by_time(now + Duration::seconds(secs), now, T);
        assert_eq!(at(3 * 3600 + 1), TokenState::Healthy);
        assert_eq!(at(3 * 3600), TokenState::Warning);
        assert_eq!(at(3600 + 1), TokenState::Warning);
        assert_eq!(at(3600), TokenState::Warning);
        assert_eq!(at(3600 - 1), TokenState::Critical);
        assert_eq!(at(1), TokenState::Critical);
        assert_eq!(at(0), TokenState::Expired);
        assert_eq!(at(-1), TokenState::Expired);
    }

    #[test]
    fn countdown_format() {
        assert_eq!(
            format_countdown(Duration::seconds(15 * 3600 + 12 * 60 + 9)),
            "15h 12m 09s"
        );
        assert_eq!(format_countdown(Duration::seconds(-5)), "0h 00m 00s");
    }
}
