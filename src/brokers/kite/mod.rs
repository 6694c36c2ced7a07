//! Zerodha Kite Connect v3: the API client ([`client`]), the pieces of the browser login
//! ([`login`]), the expiry rule ([`kite_expiry`]) and a simulator with Kite's shapes over real
//! loopback HTTP ([`sim`]).
//!
//! # What Kite does (Kite Connect v3)
//!
//! * **Login.** The browser opens `https://kite.zerodha.com/connect/login?v=3&api_key=…`. Kite
//!   has no `state` parameter; an optional `redirect_params` (a URL-encoded query string) is
//!   appended to the redirect as ordinary query parameters, so tokenwatch sends
//!   `redirect_params=state%3D<state>` and reads `state` back from the redirect. After the
//!   login the browser is sent to the app's registered redirect URL with
//!   `request_token=…&status=success` (sources: kite.trade/docs/connect/v3/user and
//!   …/connect/v3/apps; pykiteconnect `connect.py`).
//! * **Exchange.** `POST https://api.kite.trade/session/token`, header `X-Kite-Version: 3`,
//!   form-encoded `api_key`, `request_token` and `checksum` = lowercase hex SHA-256 of
//!   `api_key + request_token + api_secret` with no separators. The answer is
//!   `{"status":"success","data":{…,"access_token","public_token","refresh_token","login_time":
//!   "YYYY-MM-DD HH:MM:SS"}}` (kiteconnect-mocks `generate_session.json`). The request token
//!   can be used once and lasts a few minutes (Zerodha staff on the Kite forum: about 5).
//! * **Check.** `GET /user/profile` with `X-Kite-Version: 3` and
//!   `Authorization: token <api_key>:<access_token>`. A dead token is HTTP 403 with
//!   `error_type: "TokenException"`; the official SDKs' session-expiry hook fires on exactly
//!   that pair, and so does [`client::classify`]'s `Invalid`, and nothing else.
//! * **Errors** (kite.trade/docs/connect/v3/exceptions): 429 rate limited, 502 `DataException`
//!   (the order system is down), 503 `NetworkException` (the API is down), 504 gateway timeout:
//!   all transient.
//! * **Lifetime.** The token is opaque (not a JWT; nothing in it to read) and dies at 06:00 IST
//!   the next day, or earlier on a logout or a master logout in Kite Web ([`kite_expiry`]). The
//!   issue time is the exchange's `login_time` (IST), else the time of the exchange
//!   ([`issued_at`]).
//! * **Logout.** `DELETE /session/token?api_key=…&access_token=…` answers
//!   `{"status":"success","data":true}`. Kite takes the token in the query of this one call
//!   (as the official SDKs send it); the client never puts a URL into an error or a log line.
//! * **Refresh** (`/session/refresh_token`) is issued only to approved platforms and gives a
//!   token without order rights: not built. There is no official headless login: not built.
//!
//! # Facts no official source confirmed, and how they are treated
//!
//! * `action=login` on the redirect: often seen, not documented. The callback ignores `action`;
//!   the simulator sends it.
//! * What the redirect carries when the user cancels: not documented. Any `status` other than
//!   `success` is a denial, shown with Kite's `status` (and a `message` parameter if one comes);
//!   a redirect with a `request_token` and no `status` at all is accepted (the `state` already
//!   proved it came from this login).
//! * The `error_type` of a 429 body: unknown. A 429 is transient whatever its body says; the
//!   simulator sends `NetworkException`.
//! * Message texts ("Invalid session", "Incorrect `api_key` or `access_token`.", "Token is
//!   invalid or has expired."): vary. Nothing is decided on a message, only on the HTTP status
//!   and `error_type`; messages are only shown (through [`printable`](crate::printable), clipped).
//! * The answer to a used or expired request token at the exchange: taken to be 403
//!   `TokenException` (as the simulator answers). Because it is the request token that is dead
//!   there, not a stored access token, [`client::KiteClient::exchange`] reports it as
//!   `Rejected`, never as `Invalid`: a failed login never declares the stored token dead.
//! * The answers to a wrong `api_key` at the login page, a wrong checksum and a missing version
//!   header: taken to be Kite's JSON error with `InputException` (a 4xx: `Rejected`).

pub mod client;
pub mod login;
pub mod sim;

use crate::token::expiry::{ist, next_ist_time_after};
use chrono::{DateTime, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// 06:00, the time of day Kite access tokens die (IST).
pub fn expiry_time() -> NaiveTime {
    NaiveTime::from_hms_opt(6, 0, 0).expect("06:00 is a valid time")
}

/// The Kite rule: a token issued at `issued_at` dies at the first 06:00 IST strictly after
/// it. Issued 09:00 IST → 06:00 the next day; issued 05:59:59 → 06:00 the same day; issued
/// exactly 06:00:00 → 06:00 the next day.
pub fn kite_expiry(issued_at: DateTime<Utc>) -> DateTime<Utc> {
    next_ist_time_after(issued_at, expiry_time())
}

/// Kite's `login_time` (`YYYY-MM-DD HH:MM:SS`, IST) as an instant; `None` for anything else.
pub fn parse_login_time(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    ist()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// When a token was issued: Kite's `login_time` when it sent a usable one (not after the
/// exchange itself: a clock that runs ahead must not push the expiry later), else the time of
/// the exchange.
pub fn issued_at(login_time: Option<DateTime<Utc>>, exchanged_at: DateTime<Utc>) -> DateTime<Utc> {
    login_time
        .filter(|t| *t <= exchanged_at + chrono::Duration::minutes(5))
        .unwrap_or(exchanged_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        ist()
            .with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn tokens_die_at_the_first_six_o_clock_ist_after_issue() {
        // Just before 06:00: dies the same morning.
        assert_eq!(
            kite_expiry(at(2026, 11, 26, 5, 59, 59)),
            at(2026, 11, 26, 6, 0, 0)
        );
        // Exactly 06:00 and just after: the next morning.
        assert_eq!(
            kite_expiry(at(2026, 11, 26, 6, 0, 0)),
            at(2026, 11, 27, 6, 0, 0)
        );
        assert_eq!(
            kite_expiry(at(2026, 11, 26, 6, 0, 1)),
            at(2026, 11, 27, 6, 0, 0)
        );
        // A day's login at 09:15 and an evening one.
        assert_eq!(
            kite_expiry(at(2026, 11, 26, 9, 15, 0)),
            at(2026, 11, 27, 6, 0, 0)
        );
        // Across midnight IST (which is 18:30 UTC the day before) and the month's end.
        assert_eq!(
            kite_expiry(at(2026, 11, 30, 23, 59, 59)),
            at(2026, 12, 1, 6, 0, 0)
        );
        assert_eq!(
            kite_expiry(at(2026, 12, 1, 0, 0, 0)),
            at(2026, 12, 1, 6, 0, 0)
        );
        // The year's end.
        assert_eq!(
            kite_expiry(at(2026, 12, 31, 6, 30, 0)),
            at(2027, 1, 1, 6, 0, 0)
        );
    }

    #[test]
    fn login_time_is_read_as_ist() {
        assert_eq!(
            parse_login_time("2026-11-26 09:15:02"),
            Some(at(2026, 11, 26, 9, 15, 2))
        );
        assert_eq!(
            parse_login_time(" 2026-11-26 00:00:00 "),
            Some(at(2026, 11, 26, 0, 0, 0))
        );
        for bad in [
            "",
            "2026-11-26",
            "2026-11-26T09:15:02",
            "26-11-2026 09:15:02",
            "x",
        ] {
            assert_eq!(parse_login_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_issue_time_is_the_login_time_else_the_exchange() {
        let exchanged = at(2026, 11, 26, 9, 16, 0);
        let login = at(2026, 11, 26, 9, 15, 0);
        assert_eq!(issued_at(Some(login), exchanged), login);
        assert_eq!(issued_at(None, exchanged), exchanged);
        // A login time far in the future is not believed.
        assert_eq!(
            issued_at(Some(at(2026, 11, 27, 9, 15, 0)), exchanged),
            exchanged
        );
        // Logged in at 05:58, exchanged at 06:01: the token still dies at 06:00 that morning.
        let t = issued_at(Some(at(2026, 11, 26, 5, 58, 0)), at(2026, 11, 26, 6, 1, 0));
        assert_eq!(kite_expiry(t), at(2026, 11, 26, 6, 0, 0));
    }
}
