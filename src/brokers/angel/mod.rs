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

use crate::brokers::{ApiError, Broker, Headless, Renewing, Session, totp};
use crate::config::Strategy;
use crate::secret::Secret;

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

// The Angel One account's side of the broker interface: who logs in, and the headless
// renewals.

/// What an Angel One account logs in with. `Debug` shows the client code only: the API key
/// travels as `X-PrivateKey`, and the PIN and TOTP secret are secrets.
#[derive(Clone, Default)]
pub struct AngelUser {
    /// `angel.api_key`, sent as `X-PrivateKey`.
    pub api_key: String,
    /// `angel.client_code`.
    pub client_code: Option<String>,
    /// `angel.pin`.
    pub pin: Option<Secret>,
    /// `angel.totp_secret` (or the file's).
    pub totp_secret: Option<Secret>,
}

impl std::fmt::Debug for AngelUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AngelUser")
            .field("client_code", &self.client_code)
            .finish_non_exhaustive()
    }
}

impl AngelUser {
    /// The user of `account`'s `angel:` section.
    pub fn of(a: &crate::config::AngelConfig) -> AngelUser {
        AngelUser {
            api_key: a.api_key.clone().unwrap_or_default(),
            client_code: a.client_code.clone(),
            pin: a.pin.clone(),
            totp_secret: a.totp_secret.clone(),
        }
    }

    /// The keys that renewals by `strategy` need and that are not set, each with its
    /// variable: `angel.pin (ANGEL_PIN)`.
    pub fn missing(&self, strategy: Strategy) -> Vec<&'static str> {
        let blank = |s: Option<&str>| s.is_none_or(|s| s.trim().is_empty());
        let mut missing = Vec::new();
        if blank(Some(&self.api_key)) {
            missing.push("angel.api_key (ANGEL_API_KEY)");
        }
        if strategy == Strategy::Totp {
            if blank(self.client_code.as_deref()) {
                missing.push("angel.client_code (ANGEL_CLIENT_CODE)");
            }
            if blank(self.pin.as_ref().map(Secret::expose)) {
                missing.push("angel.pin (ANGEL_PIN)");
            }
            if self.totp_secret.is_none() {
                missing.push("angel.totp_secret (ANGEL_TOTP_SECRET or angel.totp_secret_file)");
            }
        }
        missing
    }

    /// The API key, or what to set: nothing is sent without it.
    pub(crate) fn api_key(&self) -> Result<&str, ApiError> {
        if self.api_key.trim().is_empty() {
            return Err(angel_unset(
                "angel.api_key",
                "ANGEL_API_KEY",
                "your SmartAPI app's API key",
            ));
        }
        Ok(&self.api_key)
    }
}

/// "angel.pin is not set; set ANGEL_PIN or angel.pin to your Angel One PIN": a refusal that
/// sent nothing.
fn angel_unset(key: &str, var: &str, what: &str) -> ApiError {
    crate::brokers::not_sent(
        Broker::Angel,
        format!("{key} is not set; set {var} or {key} to {what}"),
    )
}

/// Why an Angel One account has no browser login, and what it does instead.
pub(crate) const NO_BROWSER_LOGIN: &str = "Angel One has no browser login: tokenwatch logs in through its API \
     with the PIN and a TOTP code; set renew.strategy: totp and run tokenwatch refresh";

/// Angel One's headless renewals: the TOTP login, or `generateTokens` with the refresh
/// token. A missing key is named before anything is sent.
pub(crate) async fn angel_renew(
    client: &client::AngelClient,
    user: &AngelUser,
    how: Headless,
    with: Renewing<'_>,
) -> Result<Session, ApiError> {
    let api_key = user.api_key()?;
    let session = match how {
        Headless::Totp => {
            let client_code = user.client_code.as_deref().filter(|c| !c.trim().is_empty());
            let client_code = client_code.ok_or_else(|| {
                angel_unset(
                    "angel.client_code",
                    "ANGEL_CLIENT_CODE",
                    "your Angel One client code",
                )
            })?;
            let pin = user
                .pin
                .as_ref()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| angel_unset("angel.pin", "ANGEL_PIN", "your Angel One PIN"))?;
            let unset_secret = || {
                angel_unset(
                    "angel.totp_secret",
                    "ANGEL_TOTP_SECRET",
                    "the TOTP secret Angel One showed when you enabled TOTP (or set \
                     angel.totp_secret_file)",
                )
            };
            let secret = user.totp_secret.as_ref().ok_or_else(unset_secret)?;
            let code = totp::code(secret, with.now).map_err(|e| ApiError::Rejected {
                broker: Broker::Angel,
                status: 0,
                code: None,
                message: format!("angel.totp_secret cannot make codes: {e}"),
            })?;
            client
                .login(api_key, client_code, pin, &code)
                .await
                .map_err(|e| {
                    with_hint(
                        e,
                        "check angel.client_code, angel.pin and angel.totp_secret (and the \
                         machine's clock); a refused login is not tried again, as repeated \
                         wrong PINs can lock the account",
                    )
                })?
        }
        Headless::RefreshToken => {
            let (Some(current), Some(refresh)) = (with.current, with.refresh_token) else {
                return Err(ApiError::Rejected {
                    broker: Broker::Angel,
                    status: 0,
                    code: None,
                    message: format!(
                        "there is no token and refresh token from an earlier login to renew \
                         with; {}",
                        LOG_IN_AGAIN
                    ),
                });
            };
            client
                .generate_tokens(api_key, current, refresh)
                .await
                .map_err(|e| with_hint(e, LOG_IN_AGAIN))?
        }
    };
    Ok(Session {
        // The JWT's `iat` and `exp` date it; who it is for comes from the profile check
        // the renewal makes next.
        issued_at: None,
        access_token: session.access_token,
        refresh_token: session.refresh_token,
        expires_at: None,
        extended_token: None,
        user_id: None,
        user_name: None,
        email: None,
    })
}

/// A refusal's message with what to do next; other errors as they are.
fn with_hint(e: ApiError, hint: &str) -> ApiError {
    match e {
        ApiError::Rejected {
            broker,
            status,
            code,
            message,
        } => ApiError::Rejected {
            broker,
            status,
            code,
            message: format!("{message}; {hint}"),
        },
        other => other,
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
