//! Fyers API v3: the API client ([`client`]), the pieces of the browser login ([`login`]) and
//! a simulator with Fyers' shapes over real loopback HTTP ([`sim`]).
//!
//! # What Fyers does (API v3)
//!
//! * **App id.** Every call names the app's `client_id` **with its app-type suffix**, e.g.
//!   `AB12CD34EF-100`; an id without the `-100` is refused by Fyers.
//! * **Login.** The browser opens `https://api-t1.fyers.in/api/v3/generate-authcode?client_id=…
//!   &redirect_uri=…&response_type=code&state=…`. After the login it is sent to the app's
//!   redirect URL with `auth_code=<JWT>&state=…` (the official sample repository
//!   `FyersDev/fyers-api-sample-code`, `v3/python/login`).
//! * **Exchange.** `POST /api/v3/validate-authcode` with the JSON
//!   `{"grant_type":"authorization_code","appIdHash":hex(sha256("<client_id>:<secret>")),
//!   "code":<auth_code>}`, answered `{"s":"ok","code":200,"message":"","access_token":JWT,
//!   "refresh_token":JWT}` (the official SDKs `fyers-apiv3` and npm `fyers-api-v3`). Errors
//!   seen there: `-371` (no or wrong `appIdHash`), `-374` (no auth code).
//! * **Check.** `GET /api/v3/profile` with `Authorization: <client_id>:<access_token>` and
//!   `version: 3`; the answer's `data` carries `fy_id`, `name` and `email_id`.
//! * **Errors** are `{"s":"error","code":<negative number>,"message":…}` with an HTTP status.
//!   `-353` is the rate limit, `-201`, `-202`, `-204` and `-205` are "Connection error.
//!   Please try again" (the sample repository's error-code sheet): all transient, as are 429
//!   and 5xx.
//! * **Lifetime.** The access token is a JWT and its `exp` decides; there is no fixed rule
//!   ([`Broker::expiry_rule`](crate::brokers::Broker::expiry_rule) is `None` for Fyers). The
//!   sample token in the official repository dies at 06:00 IST the day after issue.
//! * **Logout.** `POST /api/v3/logout` with the same `Authorization` header.
//! * **Refresh** (`validate-refresh-token` with the user's PIN) and the headless TOTP login are
//!   not built.
//!
//! # Facts no official source confirmed, and how they are treated
//!
//! * **Which codes mean a dead token.** HTTP 401 with `-16` ("Could not authenticate the
//!   user") was seen in a third-party test; `-8` (expired), `-15` (invalid) and `-17` are widely
//!   quoted. A token is `Invalid` only for a code in `fyers.invalid_codes` (default
//!   [`DEFAULT_INVALID_CODES`]) or for an HTTP 401 that carries Fyers' JSON; change the list in
//!   the configuration if Fyers answers otherwise.
//! * **Extra redirect parameters.** Whether the redirect also carries `s`, `code` or
//!   `user_id` is unknown: they are accepted and ignored; only `state` and `auth_code` are read.
//! * **HTTP 429** and the limits of 10 a second, 200 a minute: reported by a third party; a
//!   429 is transient whatever its body says.
//! * **Message texts** vary: nothing is decided on a message, only on the HTTP status and the
//!   code; messages are only shown (through [`printable`](crate::printable), clipped).

pub mod client;
pub mod login;
pub mod sim;

use crate::brokers::Session;

/// The Fyers codes that make a token invalid when `fyers.invalid_codes` names none: `-8`
/// (expired), `-15` (invalid), `-16` (could not authenticate), `-17`. Uncertain: see the
/// module's notes.
pub const DEFAULT_INVALID_CODES: [i64; 4] = [-8, -15, -16, -17];

/// The error a missing `-100` suffix gets, in every message about the app id.
pub const CLIENT_ID_HINT: &str =
    "the client_id is the app id with its app-type suffix, like AB12CD34EF-100";

/// A Fyers session as a login's: the JWT's `iat` and `exp` date it; who it is for comes
/// from the profile.
pub(crate) fn fyers_session(session: client::Session) -> Session {
    Session {
        issued_at: None,
        access_token: session.access_token,
        refresh_token: session.refresh_token,
        expires_at: None,
        extended_token: None,
        user_id: None,
        user_name: None,
        email: None,
    }
}

#[cfg(test)]
mod tests {
    use crate::brokers::Broker;
    use crate::token::ExpirySource;
    use crate::token::expiry::{ExpiryEvidence, decide_expiry, ist};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::{TimeZone, Utc};

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn a_fyers_token_dies_at_its_jwt_exp() {
        // The sample token's times: not before 12:56 IST, exp 06:00:13 IST the next day.
        let nbf = ist().with_ymd_and_hms(2026, 11, 26, 12, 56, 0).unwrap();
        let exp = ist().with_ymd_and_hms(2026, 11, 27, 6, 0, 13).unwrap();
        let token = jwt(&format!(
            r#"{{"iss":"api.fyers.in","iat":{0},"nbf":{0},"exp":{1},"sub":"access"}}"#,
            nbf.timestamp(),
            exp.timestamp()
        ));
        assert_eq!(Broker::Fyers.expiry_rule(nbf.with_timezone(&Utc)), None);
        // Logged in now: no fixed rule cuts it short, the exp decides.
        let evidence = ExpiryEvidence {
            issued_at: Some(nbf.with_timezone(&Utc)),
            ..ExpiryEvidence::of_token_text(&token)
        };
        assert_eq!(
            decide_expiry(Broker::Fyers, &evidence),
            Some((exp.with_timezone(&Utc), ExpirySource::JwtExp))
        );
        // A token that is no JWT says nothing: no expiry can be decided from it.
        let opaque = ExpiryEvidence {
            issued_at: Some(nbf.with_timezone(&Utc)),
            ..ExpiryEvidence::of_token_text("opaque")
        };
        assert_eq!(decide_expiry(Broker::Fyers, &opaque), None);
    }
}
