//! The status report: one account's token state as the `status` command, the HTTP API and
//! scripts see it. Built from data and `now`; no I/O.

use crate::brokers::Broker;
use crate::messages::Snapshot;
use crate::schedule::Verdict;
pub use crate::token::verdict::LastCheckReport;
use crate::token::verdict::{CheckResult, StoredVerdict};
use crate::token::{ExpirySource, Thresholds, Token, TokenFileError, TokenState};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;

/// What the status report says of the token: one of the six token states, or `unknown` when
/// the token file, the configuration or the API could not tell (then `error` says why).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportState {
    /// More than `warning_before` left.
    Healthy,
    /// Between `critical_before` and `warning_before` left.
    Warning,
    /// Less than `critical_before` left.
    Critical,
    /// Its time is up.
    Expired,
    /// The API rejected it.
    Invalid,
    /// There is no token.
    #[default]
    Missing,
    /// It could not be told.
    Unknown,
}

impl From<TokenState> for ReportState {
    fn from(s: TokenState) -> ReportState {
        match s {
            TokenState::Healthy => ReportState::Healthy,
            TokenState::Warning => ReportState::Warning,
            TokenState::Critical => ReportState::Critical,
            TokenState::Expired => ReportState::Expired,
            TokenState::Invalid => ReportState::Invalid,
            TokenState::Missing => ReportState::Missing,
        }
    }
}

impl ReportState {
    /// The token state, when one is known.
    pub fn token_state(self) -> Option<TokenState> {
        Some(match self {
            ReportState::Healthy => TokenState::Healthy,
            ReportState::Warning => TokenState::Warning,
            ReportState::Critical => TokenState::Critical,
            ReportState::Expired => TokenState::Expired,
            ReportState::Invalid => TokenState::Invalid,
            ReportState::Missing => TokenState::Missing,
            ReportState::Unknown => return None,
        })
    }

    /// The word the JSON uses: `healthy`, ..., `unknown`.
    pub fn as_str(self) -> &'static str {
        self.token_state().map_or("unknown", TokenState::as_str)
    }

    /// The Nagios exit code: 0 healthy, 1 warning, 2 critical/expired/invalid/missing,
    /// 3 unknown.
    pub fn nagios_code(self) -> u8 {
        match self {
            ReportState::Healthy => 0,
            ReportState::Warning => 1,
            ReportState::Unknown => 3,
            _ => 2,
        }
    }
}

/// When the API last answered about the token (RFC 3339 in IST). Written to the JSON as
/// `last_check_at`, and as `last_validated_at` too, the name it had before "check" became
/// the word for asking the API; the old name goes in a later release.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastCheck(pub Option<String>);

impl Serialize for LastCheck {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("last_check_at", &self.0)?;
        map.serialize_entry("last_validated_at", &self.0)?;
        map.end()
    }
}

/// The status JSON. `state` is one of the six token states, or `unknown` when the token file
/// or the configuration could not be read (then `error` says why).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StatusReport {
    /// The account name.
    pub account: String,
    /// The account's broker (`upstox`, `kite`); null when the configuration could not be read.
    pub broker: Option<Broker>,
    /// `healthy`, `warning`, `critical`, `expired`, `invalid`, `missing` or `unknown`.
    pub state: ReportState,
    /// True while the token can be used (healthy, warning or critical).
    pub valid: bool,
    /// Hours left, one decimal; 0 once expired; null with no token.
    pub time_remaining_hours: Option<f64>,
    /// Seconds left; 0 once expired; null with no token.
    pub time_remaining_seconds: Option<i64>,
    /// Expiry, RFC 3339 in IST.
    pub expiry_time: Option<String>,
    /// Issue time, RFC 3339 in IST, when known.
    pub issued_at: Option<String>,
    /// True when the API confirmed the token at `last_check_at`.
    pub api_validated: bool,
    /// The API's last answer about this token, RFC 3339 in IST; in the JSON as
    /// `last_check_at` and, for one release, also under its old name `last_validated_at`.
    #[serde(flatten)]
    pub last_check_at: LastCheck,
    /// The API's last answer about this token: `{at, result, code}` (`result` `valid` or
    /// `invalid`; `code` the API's error code with a rejection), whichever tokenwatch process
    /// asked; null when none is known.
    pub last_check: Option<LastCheckReport>,
    /// The Upstox user id.
    pub user_id: Option<String>,
    /// The token file, absolute (null when the configuration could not be read).
    pub token_file: Option<String>,
    /// The next scheduled check, RFC 3339 in IST (only when a worker runs).
    pub next_check_at: Option<String>,
    /// Where the expiry came from (`expires_at`, `jwt_exp`, `rule_from_issued_at`, ...).
    pub expiry_source: Option<ExpirySource>,
    /// Why the state is `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub use crate::timefmt::ist_rfc3339;

impl StatusReport {
    /// The report for what reading the token file gave.
    pub fn new(
        account: &str,
        broker: Broker,
        token_file: &Path,
        read: &Result<Option<Token>, TokenFileError>,
        now: DateTime<Utc>,
        thresholds: Thresholds,
    ) -> StatusReport {
        let mut r = StatusReport {
            account: account.to_owned(),
            broker: Some(broker),
            state: ReportState::Missing,
            token_file: Some(token_file.display().to_string()),
            ..StatusReport::default()
        };
        match read {
            Ok(None) => {}
            Err(e) => {
                r.state = ReportState::Unknown;
                r.error = Some(e.to_string());
            }
            Ok(Some(token)) => {
                let state = TokenState::by_time(token.expires_at, now, thresholds);
                r.set_token(
                    state,
                    now,
                    token.expires_at,
                    token.issued_at,
                    &token.user_id,
                    token.expiry_source,
                );
            }
        }
        r
    }

    /// The report for a running worker's snapshot, at `now` (the HTTP API). The same fields
    /// and meanings as `status --json --validate`: `api_validated` says whether the API's
    /// last answer accepted this token; `next_check_at` is the worker's next check.
    pub fn from_snapshot(
        snap: &Snapshot,
        now: DateTime<Utc>,
        thresholds: Thresholds,
    ) -> StatusReport {
        let mut r = StatusReport {
            account: snap.account.clone(),
            broker: Some(snap.broker),
            state: ReportState::Missing,
            token_file: Some(
                std::path::absolute(&snap.token_file)
                    .unwrap_or_else(|_| snap.token_file.clone())
                    .display()
                    .to_string(),
            ),
            // The API's last answer about this token (not an attempt that found it unreachable).
            last_check_at: LastCheck(match snap.verdict() {
                Verdict::Valid(t) | Verdict::Invalid(t) => Some(ist_rfc3339(t)),
                Verdict::Unknown => None,
            }),
            next_check_at: snap.next_check_at.map(ist_rfc3339),
            last_check: snap.answer.as_ref().map(LastCheckReport::from),
            ..StatusReport::default()
        };
        let Some(token) = &snap.token else {
            if let Some(e) = &snap.token_error {
                r.state = ReportState::Unknown;
                r.error = Some(e.clone());
            }
            return r;
        };
        // The snapshot may be a few seconds old: the time-driven states are worked out at
        // `now`; a rejection stands until the token's time is up (as in the worker).
        let by_time = TokenState::by_time(token.expires_at, now, thresholds);
        let state = match snap.state {
            TokenState::Invalid if by_time != TokenState::Expired => TokenState::Invalid,
            _ => by_time,
        };
        r.set_token(
            state,
            now,
            token.expires_at,
            token.issued_at,
            &token.user_id,
            token.expiry_source,
        );
        r.api_validated = matches!(snap.verdict(), Verdict::Valid(_)) && state.is_usable();
        r
    }

    /// The fields of a token in `state` at `now` (shared by the file and the worker views).
    fn set_token(
        &mut self,
        state: TokenState,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        issued_at: Option<DateTime<Utc>>,
        user_id: &Option<String>,
        source: ExpirySource,
    ) {
        let secs = (expires_at - now).num_seconds().max(0);
        self.state = state.into();
        self.valid = state.is_usable();
        self.time_remaining_seconds = Some(secs);
        self.time_remaining_hours = Some((secs as f64 / 360.0).round() / 10.0);
        self.expiry_time = Some(ist_rfc3339(expires_at));
        self.issued_at = issued_at.map(ist_rfc3339);
        self.user_id = user_id.clone();
        self.expiry_source = Some(source);
    }

    /// Fold in the API's last answer about this token (the shared `.state` file): a rejection
    /// makes a token that is not yet expired `invalid`, for every reader alike.
    pub fn apply_answer(&mut self, answer: &StoredVerdict) {
        self.last_check = Some(LastCheckReport::from(answer));
        self.last_check_at = LastCheck(Some(ist_rfc3339(answer.at)));
        match answer.result {
            CheckResult::Valid => self.api_validated = self.valid,
            CheckResult::Invalid => {
                self.api_validated = false;
                if self.valid {
                    self.state = ReportState::Invalid;
                    self.valid = false;
                }
            }
        }
    }

    /// A report for when the configuration itself could not be loaded.
    pub fn config_error(account: &str, message: String) -> StatusReport {
        StatusReport {
            account: account.to_owned(),
            state: ReportState::Unknown,
            error: Some(message),
            ..StatusReport::default()
        }
    }

    /// The Nagios exit code: 0 healthy, 1 warning, 2 critical/expired/invalid/missing, 3 unknown.
    pub fn exit_code(&self) -> u8 {
        self.state.nagios_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_states_serialize_as_their_words_and_exit_codes() {
        let all = [
            (ReportState::Healthy, "healthy", 0),
            (ReportState::Warning, "warning", 1),
            (ReportState::Critical, "critical", 2),
            (ReportState::Expired, "expired", 2),
            (ReportState::Invalid, "invalid", 2),
            (ReportState::Missing, "missing", 2),
            (ReportState::Unknown, "unknown", 3),
        ];
        for (state, word, code) in all {
            assert_eq!(serde_json::to_value(state).unwrap(), word);
            assert_eq!(state.as_str(), word);
            assert_eq!(state.nagios_code(), code);
            if let Some(t) = state.token_state() {
                assert_eq!(ReportState::from(t), state);
            }
        }
    }
}
