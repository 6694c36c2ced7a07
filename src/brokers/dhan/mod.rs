//! Dhan (DhanHQ API v2): the API client ([`client`]), the pieces of the consent login
//! ([`login`]) and a simulator with Dhan's shapes over real loopback HTTP ([`sim`]).
//!
//! # What Dhan does (DhanHQ v2; the official SDK `dhan-oss/DhanHQ-py`, `auth.py`)
//!
//! * **Ids.** The user is a `dhanClientId` (`dhan.client_id`); the app has an API key
//!   (`app_id`, `dhan.api_key`) and secret (`app_secret`, `dhan.api_secret`), valid for a year,
//!   but a login session is needed every day.
//! * **Consent login (browser).** `POST {auth}/app/generate-consent?client_id=<dhanClientId>`
//!   with headers `app_id` and `app_secret` answers `{"status":"success","consentAppId":…}`;
//!   the browser opens `{auth}/login/consentApp-login?consentAppId=…`; after the login Dhan
//!   sends it to the app's registered redirect URL with `?tokenId=…`;
//!   `GET {auth}/app/consumeApp-consent?tokenId=…` with the same two headers answers
//!   `{dhanClientId,dhanClientName,dhanClientUcc,givenPowerOfAttorney,accessToken,expiryTime}`.
//! * **PIN and TOTP login (headless).** `POST {auth}/app/generateAccessToken?dhanClientId=…
//!   &pin=…&totp=…`: the values travel in the query string, with no body.
//! * **Renewal.** `GET {api}/v2/RenewToken` with headers `access-token` and `dhanClientId`.
//! * **Check.** `GET {api}/v2/profile` with `access-token` (the SDK also sends `client-id`);
//!   the answer carries `dhanClientId` and `tokenValidity`.
//! * **Errors** are `{"errorType","errorCode","errorMessage"}` (the SDK's `dhan_http.py`).
//!   `DH-901` is "Client ID or user generated access token is invalid or expired"; `DH-904`
//!   and the data API's `805` are rate limits; `DH-908` (internal) and `DH-909` (network) are
//!   Dhan's own trouble; the data API's `807`, `808` and `809` are an expired token, a failed
//!   authentication and an invalid token (Dhan's annexure).
//! * **Lifetime.** At most 24 hours; `expiryTime` says when.
//!
//! # Facts no official source confirmed, and how they are treated
//!
//! * **`expiryTime` has no time zone** (`"2025-09-23T12:37:23"`): read as IST (a third-party
//!   client says so). An offset or `Z`, when present, is honoured ([`parse_expiry_time`]).
//!   The token's own JWT `exp`, when it has one, also bounds the expiry.
//! * **Which codes mean a dead token**: `dhan.invalid_codes` (default
//!   [`DEFAULT_INVALID_CODES`]); only a code in that list makes a token invalid, whatever the
//!   HTTP status (Dhan's status for `DH-901` is not documented).
//! * **The PIN and TOTP login's answer** is read like the consent's (`accessToken`,
//!   `expiryTime`); **RenewToken's answer** may name the token `accessToken` or `token`: both
//!   are read.
//! * **The redirect carries no `state`** that Dhan documents. A `state` that does come back is
//!   checked; without one, the login is guarded by the callback listener (it listens only while
//!   this login waits, and takes one callback) and by the consent's answer: a session for a
//!   `dhanClientId` other than `dhan.client_id` is refused, so a `tokenId` someone else sent
//!   the browser never becomes the account's token.
//! * **RenewToken** is said to work only for a token that is still alive and to end the old
//!   one: tokenwatch renews only from a token that has not expired.

pub mod client;
pub mod login;
pub mod sim;

use crate::brokers::totp;
use crate::brokers::{ApiError, Broker, Headless, Renewing, Session, not_sent};
use crate::secret::Secret;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// The Dhan error codes that make a token invalid when `dhan.invalid_codes` names none:
/// `DH-901` (invalid or expired token), `807` (expired), `808` (authentication failed),
/// `809` (invalid token). Uncertain: see the module's notes.
pub const DEFAULT_INVALID_CODES: [&str; 4] = ["DH-901", "807", "808", "809"];

/// Dhan's rate-limit codes.
pub const RATE_LIMIT_CODES: [&str; 2] = ["DH-904", "805"];

/// Dhan's codes for trouble on its side: `DH-908` (internal error), `DH-909` (network).
pub const OWN_TROUBLE_CODES: [&str; 2] = ["DH-908", "DH-909"];

/// The time of Dhan's `expiryTime`: `2025-09-23T12:37:23` (no zone: IST), with fractions of a
/// second or a space instead of the `T`, or with an offset or `Z` (honoured); or a number of
/// seconds (or milliseconds) since 1970. `None` for anything else.
pub fn parse_expiry_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if t.is_empty() || t.len() > 64 {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(t, format) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, format) {
            return crate::token::expiry::ist()
                .from_local_datetime(&n)
                .single()
                .map(|d| d.with_timezone(&Utc));
        }
    }
    let n: i64 = t.parse().ok()?;
    let seconds = if n > 100_000_000_000 { n / 1000 } else { n };
    (seconds > 0)
        .then(|| DateTime::from_timestamp(seconds, 0))
        .flatten()
}

/// The TOTP secret of a `dhan:` section: `totp_secret` (or `DHAN_TOTP_SECRET`), or what the
/// file `totp_secret_file` holds (readable by its owner alone). Both set is an error, as is a
/// secret that is not base32; neither set is `None`. No message shows any of the secret.
pub fn totp_secret(config: &crate::config::DhanConfig) -> Result<Option<Secret>, String> {
    let secret = match (&config.totp_secret, &config.totp_secret_file) {
        (Some(_), Some(_)) => {
            return Err(
                "dhan.totp_secret (or DHAN_TOTP_SECRET) and dhan.totp_secret_file are both set; \
                 keep one of them"
                    .into(),
            );
        }
        (Some(s), None) => s.clone(),
        (None, Some(path)) => crate::secret::read_secret_file(path)
            .map_err(|e| format!("dhan.totp_secret_file: {e}"))?,
        (None, None) => return Ok(None),
    };
    crate::brokers::totp::validate(&secret).map_err(|e| {
        format!("dhan.totp_secret: {e}; copy it again from Dhan's two-factor setup")
    })?;
    Ok(Some(secret))
}

/// The `dhan:` keys each Dhan account's strategy needs and lacks, for `config check`:
/// `account "d": dhan.pin is not set; set DHAN_PIN or dhan.pin to …`.
pub fn missing_notes(config: &crate::config::Config) -> Vec<String> {
    use crate::config::Strategy;
    let mut notes = Vec::new();
    for a in config
        .accounts
        .values()
        .filter(|a| a.broker == Broker::Dhan)
    {
        let d = &a.dhan;
        let set = |key: &str| match key {
            "dhan.client_id" => d.client_id.is_some(),
            "dhan.api_key" => d.api_key.is_some(),
            "dhan.api_secret" => d.api_secret.is_some(),
            "dhan.pin" => d.pin.is_some(),
            _ => d.totp_secret.is_some() || d.totp_secret_file.is_some(),
        };
        let needed: &[&str] = match a.renew.strategy {
            Strategy::Browser => &["dhan.client_id", "dhan.api_key", "dhan.api_secret"],
            Strategy::Totp => &["dhan.client_id", "dhan.pin", "dhan.totp_secret"],
            Strategy::RefreshToken => &["dhan.client_id"],
            _ => &[],
        };
        for key in needed.iter().filter(|k| !set(k)) {
            notes.push(format!(
                "account \"{}\" (renew.strategy {}): {}",
                a.name,
                a.renew.strategy,
                missing(key)
            ));
        }
    }
    notes
}

/// A Dhan session in the shape every login and renewal hands on: `expiryTime` is the claim
/// (the JWT's `exp` also bounds it), the issue time is the call's.
pub(crate) fn session(s: client::DhanSession) -> Session {
    Session {
        access_token: s.access_token,
        extended_token: None,
        user_id: s.client_id,
        user_name: s.client_name,
        email: None,
        issued_at: None,
        refresh_token: None,
        expires_at: s.expires_at,
    }
}

/// "dhan.pin is not set; set DHAN_PIN or dhan.pin to …": what to set for a missing Dhan key.
pub fn missing(key: &str) -> String {
    let (var, what) = match key {
        "dhan.client_id" => (
            "DHAN_CLIENT_ID",
            "your Dhan client id (My Profile on web.dhan.co)",
        ),
        "dhan.api_key" => ("DHAN_API_KEY", "your Dhan app's API key"),
        "dhan.api_secret" => ("DHAN_API_SECRET", "your Dhan app's API secret"),
        "dhan.pin" => ("DHAN_PIN", "your Dhan login PIN"),
        _ => (
            "DHAN_TOTP_SECRET",
            "the TOTP secret Dhan showed when you set up two-factor login (or name a 0600 file in dhan.totp_secret_file)",
        ),
    };
    format!("{key} is not set; set {var} or {key} to {what}")
}

/// Dhan's headless renewals: the PIN and TOTP login, or RenewToken with the current token.
/// Nothing is sent while a key is missing; the PIN and the code are in no message.
pub(crate) async fn renew(
    client: &client::DhanClient,
    config: &crate::config::DhanConfig,
    how: Headless,
    with: Renewing<'_>,
) -> Result<Session, ApiError> {
    let unset = |key: &str| not_sent(Broker::Dhan, missing(key));
    let client_id = config
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| unset("dhan.client_id"))?;
    let session = match how {
        Headless::Totp => {
            let pin = config.pin.as_ref().ok_or_else(|| unset("dhan.pin"))?;
            let secret = totp_secret(config)
                .map_err(|why| not_sent(Broker::Dhan, why))?
                .ok_or_else(|| unset("dhan.totp_secret"))?;
            let code = totp::code(&secret, with.now).map_err(|e| {
                not_sent(
                    Broker::Dhan,
                    format!("{e}; correct dhan.totp_secret (or DHAN_TOTP_SECRET)"),
                )
            })?;
            client
                .generate_access_token(&config.login_base, client_id, pin, &code)
                .await?
        }
        Headless::RefreshToken => {
            let current = with.current.ok_or_else(|| {
                not_sent(
                    Broker::Dhan,
                    "there is no Dhan token to renew; log in first (tokenwatch login)".into(),
                )
            })?;
            let exp = crate::token::expiry::ExpiryEvidence::of_token_text(current.expose()).jwt_exp;
            if exp.is_some_and(|exp| exp <= with.now) {
                return Err(not_sent(
                    Broker::Dhan,
                    "the Dhan token has expired, and RenewToken renews only a live one; log in \
                     again (tokenwatch login)"
                        .into(),
                ));
            }
            client.renew_token(client_id, current).await?
        }
    };
    Ok(self::session(session))
}

/// `2026-11-27T09:15:00`: a time as Dhan writes `expiryTime` (IST, no zone).
pub fn format_expiry_time(at: DateTime<Utc>) -> String {
    crate::token::expiry::to_ist(at)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::expiry::ist;

    fn at_ist(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        ist()
            .with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn expiry_time_without_a_zone_is_ist() {
        let want = at_ist(2025, 9, 23, 12, 37, 23);
        assert_eq!(parse_expiry_time("2025-09-23T12:37:23"), Some(want));
        assert_eq!(parse_expiry_time(" 2025-09-23 12:37:23 "), Some(want));
        assert_eq!(
            parse_expiry_time("2025-09-23T12:37:23.250"),
            Some(want + chrono::Duration::milliseconds(250))
        );
        assert_eq!(parse_expiry_time(&format_expiry_time(want)), Some(want));
    }

    #[test]
    fn expiry_time_with_a_zone_keeps_it() {
        let want = at_ist(2025, 9, 23, 12, 37, 23);
        assert_eq!(parse_expiry_time("2025-09-23T07:07:23Z"), Some(want));
        assert_eq!(parse_expiry_time("2025-09-23T12:37:23+05:30"), Some(want));
        assert_eq!(parse_expiry_time("2025-09-23T12:37:23+0530"), Some(want));
        assert_eq!(parse_expiry_time("2025-09-23T08:07:23+01:00"), Some(want));
        assert_eq!(parse_expiry_time(&want.timestamp().to_string()), Some(want));
        assert_eq!(
            parse_expiry_time(&(want.timestamp() * 1000).to_string()),
            Some(want)
        );
    }

    #[test]
    fn nonsense_is_no_expiry() {
        for bad in [
            "",
            "tomorrow",
            "2025-13-01T00:00:00",
            "2025-09-23",
            "-5",
            "0",
            &"9".repeat(100),
        ] {
            assert_eq!(parse_expiry_time(bad), None, "{bad:?}");
        }
    }
}
