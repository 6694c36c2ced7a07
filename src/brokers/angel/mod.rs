//! Angel One SmartAPI: the API client ([`client`]) and a simulator with Angel One's shapes over
//! real loopback HTTP ([`sim`]). There is no browser login: a token comes from an API call
//! with the client code, the PIN and a TOTP code.
//!
//! # What Angel One does (SmartAPI)
//!
//! * **Login.** `POST /rest/auth/angelbroking/user/v1/loginByPassword` with the JSON
//!   `{"clientcode","password":<PIN>,"totp":<code>}`, answered `{"status":true,"message":
//!   "SUCCESS","errorcode":"","data":{"jwtToken","refreshToken","feedToken"}}` (the official
//!   SDKs `smartapi-python` and `smartapi-javascript`). Passing a TOTP code to this call is
//!   Angel One's official way to log in from a program.
//! * **Headers.** Every call sends `Content-Type` and `Accept: application/json`,
//!   `X-UserType: USER`, `X-SourceID: WEB`, `X-ClientLocalIP`, `X-ClientPublicIP`,
//!   `X-MACAddress` and `X-PrivateKey: <api_key>`; the calls after the login add
//!   `Authorization: Bearer <jwtToken>`.
//! * **Refresh.** `POST /rest/auth/angelbroking/jwt/v1/generateTokens` with
//!   `{"refreshToken"}` and the current token in `Authorization`; the answer has the same
//!   `data` as the login's.
//! * **Check.** `GET /rest/secure/angelbroking/user/v1/getProfile`; its `data` carries
//!   `clientcode`, `name` and `email`.
//! * **Logout.** `POST /rest/secure/angelbroking/user/v1/logout` with `{"clientcode"}`.
//! * **Errors** come in two envelopes with different key names and casing:
//!   `{"status":false,"message","errorcode","data"}` and
//!   `{"success":false,"message","errorCode","data"}`, and either may arrive **inside an
//!   HTTP 200** (the official JavaScript SDK looks for `AG8001` there). Both are read the
//!   same way, whatever the status.
//! * **Lifetime.** The token is a JWT whose `exp` decides (Angel One says a fresh token lives
//!   24 to 28 hours); there is no fixed rule
//!   ([`Broker::expiry_rule`](crate::brokers::Broker::expiry_rule) is `None` for Angel One).
//!
//! # Facts no official source confirmed, and how they are treated
//!
//! * **Which codes mean a dead token.** `AG8001` (invalid token) was seen in answers;
//!   `AG8002` (expired), `AG8003` (missing) and `AB1010` (session expired) are listed on
//!   Angel One's error page, which could not be read. A token is `Invalid` only for a code in
//!   `angel.invalid_codes` (default [`DEFAULT_INVALID_CODES`]); change the list in the
//!   configuration if Angel One answers otherwise.
//! * **Refresh-token codes.** `AB8050` and `AB8051` (invalid or expired refresh token): a
//!   refusal like any other, which the TOTP login mends.
//! * **Transient codes.** `AB1004` ("Something Went Wrong, Please Try After Sometime") is
//!   transient; Angel One's rate-limit signal is not known, so HTTP 429 and 5xx are transient
//!   whatever their body says.
//! * **The client's address headers.** What Angel One does with `X-ClientLocalIP`,
//!   `X-ClientPublicIP` and `X-MACAddress` is not documented. They default to
//!   [`DEFAULT_LOCAL_IP`], [`DEFAULT_PUBLIC_IP`] and [`DEFAULT_MAC_ADDRESS`] (the official
//!   SDKs' own fallbacks) and are set with `angel.client_local_ip`,
//!   `angel.client_public_ip` and `angel.mac_address`.
//! * **How long the refresh token lives** is not documented.
//! * **Message texts** vary: nothing is decided on a message, only on the HTTP status and the
//!   code; messages are only shown (through [`printable`](crate::printable), clipped).

pub mod client;
pub mod sim;

/// The Angel One codes that make a token invalid when `angel.invalid_codes` names none:
/// `AG8001` (invalid token), `AG8002` (expired token), `AG8003` (token missing), `AB1010`
/// (session expired). Uncertain: see the module's notes.
pub const DEFAULT_INVALID_CODES: [&str; 4] = ["AG8001", "AG8002", "AG8003", "AB1010"];

/// `X-ClientLocalIP` when `angel.client_local_ip` is not set.
pub const DEFAULT_LOCAL_IP: &str = "127.0.0.1";
/// `X-ClientPublicIP` when `angel.client_public_ip` is not set: the official SDKs' fallback.
pub const DEFAULT_PUBLIC_IP: &str = "106.193.147.98";
/// `X-MACAddress` when `angel.mac_address` is not set.
pub const DEFAULT_MAC_ADDRESS: &str = "00:00:00:00:00:00";

/// What to do when the refresh token no longer works, in every such message.
pub const LOG_IN_AGAIN: &str =
    "log in once with the TOTP login (set renew.strategy: totp, then run tokenwatch refresh)";

#[cfg(test)]
mod tests {
    use crate::brokers::Broker;
    use crate::token::ExpirySource;
    use crate::token::expiry::{ExpiryEvidence, decide_expiry, ist};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::{TimeZone, Utc};

    #[test]
    fn an_angel_token_dies_at_its_jwt_exp() {
        let iat = ist().with_ymd_and_hms(2026, 11, 26, 8, 55, 0).unwrap();
        let exp = ist().with_ymd_and_hms(2026, 11, 27, 8, 55, 0).unwrap();
        let token = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS512"}"#),
            URL_SAFE_NO_PAD.encode(format!(
                r#"{{"username":"A123456","iat":{},"exp":{}}}"#,
                iat.timestamp(),
                exp.timestamp()
            ))
        );
        assert_eq!(Broker::Angel.expiry_rule(iat.with_timezone(&Utc)), None);
        let evidence = ExpiryEvidence {
            issued_at: Some(iat.with_timezone(&Utc)),
            ..ExpiryEvidence::of_token_text(&token)
        };
        assert_eq!(
            decide_expiry(Broker::Angel, &evidence),
            Some((exp.with_timezone(&Utc), ExpirySource::JwtExp))
        );
        assert_eq!(Broker::Angel.token_type(), "Bearer");
    }
}
