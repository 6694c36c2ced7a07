//! The brokers tokenwatch knows. Each broker has its own API client and login, and its own
//! rule for when a day's token dies; the worker, the login and the notifier reach them
//! through this module ([`Broker`], [`BrokerClient`]), never a broker's endpoints directly.

pub mod angel;
pub mod answer;
pub mod dhan;
pub mod fyers;
pub mod kite;
pub mod simkit;
pub mod totp;
pub mod upstox;

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

/// What a login's exchange of the code gives: the token and who it is for (Kite's session
/// is read into the same shape; its issue time is the exchange's).
pub type Session = upstox::client::TokenResponse;

/// The API client of one account's broker. Every call the worker, the login and the
/// notifier make goes through here.
#[derive(Debug, Clone)]
pub enum BrokerClient {
    /// Upstox's API.
    Upstox(upstox::client::UpstoxClient),
    /// Kite Connect's API, with the app's API key every call names.
    Kite {
        /// The client.
        client: kite::client::KiteClient,
        /// `kite.api_key`.
        api_key: String,
    },
    /// Fyers' API, with the app's client_id (with its `-100` suffix) every check names.
    Fyers {
        /// The client.
        client: fyers::client::FyersClient,
        /// `fyers.client_id`.
        client_id: String,
        /// `fyers.secret_key` and `fyers.pin`, for the refresh grant.
        refresh_keys: Option<(Secret, Secret)>,
    },
    /// Angel One's SmartAPI, with the app's API key and the user who logs in.
    Angel {
        /// The client.
        client: angel::client::AngelClient,
        /// `angel.api_key`, `angel.client_code`, `angel.pin`, `angel.totp_secret`.
        user: AngelUser,
    },
    /// Dhan's API, with the account's `dhan:` section (the user's client id, the PIN and the
    /// TOTP secret its headless renewals need).
    Dhan {
        /// The client.
        client: dhan::client::DhanClient,
        /// `dhan:`.
        config: std::sync::Arc<crate::config::DhanConfig>,
    },
}

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
    fn api_key(&self) -> Result<&str, ApiError> {
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
    ApiError::Rejected {
        broker: Broker::Angel,
        status: 0,
        code: None,
        message: format!("{key} is not set; set {var} or {key} to {what}"),
    }
}

impl BrokerClient {
    /// The client for `account`'s broker, or why there is none (a broker this tokenwatch
    /// does not support yet).
    pub fn for_account(account: &crate::config::AccountConfig) -> Result<BrokerClient, ApiError> {
        let api_key = match account.broker {
            Broker::Kite => account.kite.api_key.as_deref().unwrap_or_default(),
            Broker::Fyers => {
                let f = &account.fyers;
                return Ok(BrokerClient::Fyers {
                    client: fyers::client::FyersClient::new(&f.api_base, &f.invalid_codes)?,
                    client_id: f.client_id.clone().unwrap_or_default(),
                    refresh_keys: f.secret_key.clone().zip(f.pin.clone()),
                });
            }
            Broker::Angel => {
                let a = &account.angel;
                return Ok(BrokerClient::Angel {
                    client: angel::client::AngelClient::new(
                        &a.api_base,
                        &a.invalid_codes,
                        &a.client_headers(),
                    )?,
                    user: AngelUser::of(a),
                });
            }
            Broker::Dhan => return BrokerClient::dhan(&account.dhan),
            _ => "",
        };
        BrokerClient::new(account.broker, api_base(account), api_key)
    }

    /// The client for `broker`'s API at `api_base` (the real one, or a simulator), for the
    /// app whose API key is `api_key` (Kite names it in every call; Upstox does not; for
    /// Fyers it is the app id, for Dhan the user's client id).
    pub fn new(broker: Broker, api_base: &Url, api_key: &str) -> Result<BrokerClient, ApiError> {
        match broker {
            Broker::Upstox => Ok(BrokerClient::Upstox(upstox::client::UpstoxClient::new(
                api_base,
            )?)),
            Broker::Kite => Ok(BrokerClient::Kite {
                client: kite::client::KiteClient::new(api_base)?,
                api_key: api_key.to_string(),
            }),
            Broker::Fyers => Ok(BrokerClient::Fyers {
                client: fyers::client::FyersClient::new(api_base, &[])?,
                client_id: api_key.to_string(),
                refresh_keys: None,
            }),
            Broker::Angel => Ok(BrokerClient::Angel {
                client: angel::client::AngelClient::new(
                    api_base,
                    &[],
                    &angel::client::ClientHeaders::default(),
                )?,
                user: AngelUser {
                    api_key: api_key.to_string(),
                    ..AngelUser::default()
                },
            }),
            Broker::Dhan => Ok(BrokerClient::Dhan {
                client: dhan::client::DhanClient::new(api_base, &[])?,
                config: std::sync::Arc::new(crate::config::DhanConfig {
                    client_id: Some(api_key.to_string()).filter(|k| !k.is_empty()),
                    api_base: api_base.clone(),
                    ..Default::default()
                }),
            }),
        }
    }

    /// The client of a Dhan account with this `dhan:` section.
    pub fn dhan(config: &crate::config::DhanConfig) -> Result<BrokerClient, ApiError> {
        Ok(BrokerClient::Dhan {
            client: dhan::client::DhanClient::new(&config.api_base, &config.invalid_codes)?,
            config: std::sync::Arc::new(config.clone()),
        })
    }

    /// The broker this client talks to.
    pub fn broker(&self) -> Broker {
        match self {
            BrokerClient::Upstox(_) => Broker::Upstox,
            BrokerClient::Kite { .. } => Broker::Kite,
            BrokerClient::Fyers { .. } => Broker::Fyers,
            BrokerClient::Angel { .. } => Broker::Angel,
            BrokerClient::Dhan { .. } => Broker::Dhan,
        }
    }

    /// The Upstox client, for what only Upstox has (the v3 token request, the notifier).
    pub fn upstox(&self) -> Option<&upstox::client::UpstoxClient> {
        match self {
            BrokerClient::Upstox(c) => Some(c),
            BrokerClient::Kite { .. }
            | BrokerClient::Fyers { .. }
            | BrokerClient::Angel { .. }
            | BrokerClient::Dhan { .. } => None,
        }
    }

    /// Check a token: the broker's profile call.
    pub async fn profile(&self, token: &Secret) -> Result<Profile, ApiError> {
        match self {
            BrokerClient::Upstox(c) => c.profile(token).await,
            BrokerClient::Kite { client, api_key } => {
                if api_key.is_empty() {
                    return Err(ApiError::Transient {
                        reason: "kite.api_key is not set; set KITE_API_KEY or kite.api_key to \
                                 your Kite Connect app's API key"
                            .into(),
                        retry_after: None,
                    });
                }
                client.profile(api_key, token).await
            }
            BrokerClient::Fyers {
                client, client_id, ..
            } => {
                // Without its app-type suffix Fyers refuses the id; asking anyway could read
                // as a dead token when it is the configuration that is wrong.
                if !fyers::client::has_app_type(client_id) {
                    let what = if client_id.is_empty() {
                        "is not set"
                    } else {
                        "has no app-type suffix"
                    };
                    return Err(ApiError::Transient {
                        reason: format!(
                            "fyers.client_id {what}; set FYERS_CLIENT_ID or fyers.client_id to \
                             your Fyers app's id ({})",
                            fyers::CLIENT_ID_HINT
                        ),
                        retry_after: None,
                    });
                }
                client.profile(client_id, token).await
            }
            BrokerClient::Angel { client, user } => {
                // Without the API key Angel One refuses every call; asking anyway could read
                // as a dead token when it is the configuration that is wrong.
                let api_key = user.api_key().map_err(|e| ApiError::Transient {
                    reason: e.to_string(),
                    retry_after: None,
                })?;
                client.profile(api_key, token).await
            }
            BrokerClient::Dhan { client, config } => {
                client
                    .profile(config.client_id.as_deref().unwrap_or_default(), token)
                    .await
            }
        }
    }

    /// The address the browser opens to log in, carrying `state` where the broker takes one.
    /// Dhan's needs a call first (generate-consent), which can fail like any call; the others
    /// are made here without one.
    pub async fn login_address(&self, login: &LoginApp, state: &Secret) -> Result<Url, ApiError> {
        let url = match self {
            BrokerClient::Upstox(_) => crate::auth::oauth::authorization_url(
                &login.login_base,
                &login.client_id,
                &login.redirect_uri,
                state,
            ),
            // Kite has no `state` parameter: it travels in `redirect_params`.
            BrokerClient::Kite { .. } => {
                kite::login::login_url(&login.login_base, &login.client_id, state)
            }
            BrokerClient::Fyers { .. } => fyers::login::login_url(
                &login.login_base,
                &login.client_id,
                &login.redirect_uri,
                state,
            ),
            // No browser login: LoginApp::for_account refuses first; this is never opened.
            BrokerClient::Angel { .. } => login.login_base.clone(),
            // Dhan's login page is named by a consent made for the user with the app's key.
            BrokerClient::Dhan { client, .. } => {
                let user = login.user_id.as_deref().unwrap_or_default();
                if user.is_empty() {
                    return Err(not_sent(Broker::Dhan, dhan::missing("dhan.client_id")));
                }
                let app = dhan::client::DhanApp {
                    app_id: &login.client_id,
                    app_secret: &login.client_secret,
                };
                let consent = client
                    .generate_consent(&login.login_base, user, app)
                    .await?;
                dhan::login::login_url(&login.login_base, &consent)
            }
        };
        Ok(url)
    }

    /// Read what the browser brought back to the redirect address, checking `state`.
    pub fn read_callback(
        &self,
        query: Option<&str>,
        state: &Secret,
    ) -> Result<crate::auth::oauth::Callback, crate::auth::oauth::CallbackProblem> {
        match self {
            BrokerClient::Upstox(_) => crate::auth::oauth::read_callback(query, state),
            BrokerClient::Kite { .. } => kite::login::read_callback(query, state),
            BrokerClient::Fyers { .. } => fyers::login::read_callback(query, state),
            BrokerClient::Angel { .. } => Err(crate::auth::oauth::CallbackProblem::NoCode),
            BrokerClient::Dhan { .. } => dhan::login::read_callback(query, state),
        }
    }

    /// Read an address the user pasted from the browser, with the same `state` check.
    pub fn read_pasted(
        &self,
        text: &str,
        state: &Secret,
    ) -> Result<crate::auth::oauth::Callback, crate::auth::oauth::CallbackProblem> {
        match self {
            BrokerClient::Upstox(_) => crate::auth::oauth::read_pasted(text, state),
            BrokerClient::Kite { .. } => kite::login::read_pasted(text, state),
            BrokerClient::Fyers { .. } => fyers::login::read_pasted(text, state),
            BrokerClient::Angel { .. } => Err(crate::auth::oauth::CallbackProblem::NotAnAddress),
            BrokerClient::Dhan { .. } => dhan::login::read_pasted(text, state),
        }
    }

    /// Exchange a login's code for a token. The code is single-use: never call this twice
    /// with the same code.
    pub async fn exchange(&self, login: &LoginApp, code: &Secret) -> Result<Session, ApiError> {
        match self {
            BrokerClient::Upstox(c) => {
                c.exchange_code(
                    code,
                    &login.client_id,
                    &login.client_secret,
                    login.redirect_uri.as_str(),
                )
                .await
            }
            BrokerClient::Kite { client, .. } => {
                let session = client
                    .exchange(&login.client_id, code, &login.client_secret)
                    .await?;
                Ok(Session {
                    // Kite's day is counted from its `login_time` (a login at 05:59 whose
                    // code is exchanged at 06:00:30 still dies at 06:00); the login holds it
                    // to its own clock (never later than the exchange).
                    issued_at: session.login_time,
                    access_token: session.access_token,
                    refresh_token: None,
                    expires_at: None,
                    extended_token: None,
                    user_id: session.user_id,
                    user_name: session.user_name,
                    email: session.email,
                })
            }
            BrokerClient::Fyers { client, .. } => {
                let session = client
                    .exchange(&login.client_id, code, &login.client_secret)
                    .await?;
                // Fyers' exchange names no one: who the token is for comes from the profile,
                // when it answers (the login checks the token again anyway).
                let who = client
                    .profile(&login.client_id, &session.access_token)
                    .await
                    .unwrap_or_default();
                Ok(Session {
                    user_id: who.user_id,
                    user_name: who.user_name,
                    email: who.email,
                    ..fyers_session(session)
                })
            }
            BrokerClient::Angel { .. } => Err(ApiError::Rejected {
                broker: Broker::Angel,
                status: 0,
                code: None,
                message: NO_BROWSER_LOGIN.into(),
            }),
            BrokerClient::Dhan { client, .. } => {
                let app = dhan::client::DhanApp {
                    app_id: &login.client_id,
                    app_secret: &login.client_secret,
                };
                let mut session = client.consume_consent(&login.login_base, code, app).await?;
                // Whose session it is decides whether the login may keep it: when the answer
                // does not say, the profile does.
                if session.client_id.is_none() {
                    let user = login.user_id.as_deref().unwrap_or_default();
                    session.client_id = client
                        .profile(user, &session.access_token)
                        .await
                        .ok()
                        .and_then(|p| p.user_id);
                }
                Ok(dhan::session(session))
            }
        }
    }
}

/// Why an Angel One account has no browser login, and what it does instead.
const NO_BROWSER_LOGIN: &str = "Angel One has no browser login: tokenwatch logs in through its API \
     with the PIN and a TOTP code; set renew.strategy: totp and run tokenwatch refresh";
/// A request not sent for `message` (a key the configuration lacks, a token too old to use).
pub(crate) fn not_sent(broker: Broker, message: String) -> ApiError {
    ApiError::Rejected {
        broker,
        status: 0,
        code: None,
        message,
    }
}

/// How [`BrokerClient::renew`] renews a token without a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headless {
    /// A fresh login through the API with the PIN and a TOTP code (`renew.strategy: totp`,
    /// and `tokenwatch login` for Angel One).
    Totp,
    /// A new token from what the last login left (`renew.strategy: refresh-token`): Fyers'
    /// refresh token with the PIN, Angel One's refresh token, Dhan's RenewToken.
    RefreshToken,
}

/// What a headless renewal has to go on.
#[derive(Debug, Clone, Copy)]
pub struct Renewing<'a> {
    /// The token now in the file, when there is one (Angel One's refresh and Dhan's
    /// RenewToken send it).
    pub current: Option<&'a Secret>,
    /// The refresh token the last login left (`<token file>.refresh`), when there is one.
    pub refresh_token: Option<&'a Secret>,
    /// Now, for the TOTP code.
    pub now: DateTime<Utc>,
}

impl BrokerClient {
    /// Renew without a browser, `how` this account's strategy says. A refusal is
    /// [`ApiError::Rejected`], never [`ApiError::Invalid`]: a failed renewal says nothing
    /// about the token in the file.
    pub async fn renew(&self, how: Headless, with: Renewing<'_>) -> Result<Session, ApiError> {
        match (self, how) {
            (
                BrokerClient::Fyers {
                    client,
                    client_id,
                    refresh_keys,
                },
                Headless::RefreshToken,
            ) => {
                let Some((secret, pin)) = refresh_keys else {
                    return Err(missing_key(
                        Broker::Fyers,
                        "fyers.secret_key and fyers.pin are needed for the refresh-token \
                         strategy; set FYERS_SECRET_KEY and FYERS_PIN (or .env)",
                    ));
                };
                let Some(refresh_token) = with.refresh_token else {
                    return Err(missing_key(
                        Broker::Fyers,
                        "no refresh token is kept for this account yet; log in once with \
                         tokenwatch login, and later renewals need no browser",
                    ));
                };
                client
                    .refresh(client_id, secret, refresh_token, pin)
                    .await
                    .map(fyers_session)
            }
            (BrokerClient::Angel { client, user }, how) => {
                angel_renew(client, user, how, with).await
            }
            (BrokerClient::Dhan { client, config }, how) => {
                dhan::renew(client, config, how, with).await
            }
            _ => Err(not_this_way(self.broker(), how)),
        }
    }
}

/// A Fyers session as a login's: the JWT's `iat` and `exp` date it; who it is for comes
/// from the profile.
fn fyers_session(session: fyers::client::Session) -> Session {
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

/// A renewal that cannot even be asked for: what to set or do first.
fn missing_key(broker: Broker, what: &str) -> ApiError {
    ApiError::Rejected {
        broker,
        status: 0,
        code: None,
        message: what.to_string(),
    }
}

/// Angel One's headless renewals: the TOTP login, or `generateTokens` with the refresh
/// token. A missing key is named before anything is sent.
async fn angel_renew(
    client: &angel::client::AngelClient,
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
                        angel::LOG_IN_AGAIN
                    ),
                });
            };
            client
                .generate_tokens(api_key, current, refresh)
                .await
                .map_err(|e| with_hint(e, angel::LOG_IN_AGAIN))?
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

/// "Zerodha Kite has no refresh-token renewal; use one of: browser, command, none".
fn not_this_way(broker: Broker, how: Headless) -> ApiError {
    let strategy = match how {
        Headless::Totp => Strategy::Totp,
        Headless::RefreshToken => Strategy::RefreshToken,
    };
    ApiError::Rejected {
        broker,
        status: 0,
        code: None,
        message: format!(
            "{} has no {strategy} renewal; set renew.strategy to one of: {}",
            broker.display_name(),
            strategy_list(broker)
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

/// The token a login or a headless renewal stored for `broker`, from the broker's answer at
/// `now`: its expiry is the earliest of the JWT's `exp`, the broker's claim and the broker's
/// rule from the issue time (the broker's, if earlier than now). `None` when nothing says
/// when it ends.
pub fn session_token(
    broker: Broker,
    session: Session,
    now: DateTime<Utc>,
    via: &str,
) -> Option<crate::token::Token> {
    use crate::token::expiry::{ExpiryEvidence, decide_expiry};
    let issued = session.issued_at.map_or(now, |t| t.min(now));
    let evidence = ExpiryEvidence {
        claimed: session.expires_at,
        issued_at: Some(issued),
        ..ExpiryEvidence::of_token_text(session.access_token.expose())
    };
    let (expires_at, expiry_source) = decide_expiry(broker, &evidence)?;
    Some(crate::token::Token {
        broker,
        access_token: session.access_token,
        token_type: broker.token_type().into(),
        extended_token: session.extended_token,
        user_id: session.user_id,
        user_name: session.user_name,
        email: session.email,
        issued_at: Some(issued),
        expires_at,
        expiry_source,
        obtained_via: Some(via.into()),
        refresh_token: session.refresh_token,
        format: crate::token::TokenFileFormat::Format1,
    })
}

/// The API base of `account`'s broker (`upstox.api_base`, `kite.api_base`).
pub fn api_base(account: &crate::config::AccountConfig) -> &Url {
    match account.broker {
        Broker::Kite => &account.kite.api_base,
        Broker::Fyers => &account.fyers.api_base,
        Broker::Angel => &account.angel.api_base,
        Broker::Dhan => &account.dhan.api_base,
        _ => &account.upstox.api_base,
    }
}

/// The app a login signs in to: the broker's API key and secret and where the browser goes.
#[derive(Debug, Clone)]
pub struct LoginApp {
    /// The app's API key (Upstox `client_id`, Kite `api_key`).
    pub client_id: String,
    /// The app's secret (Upstox `client_secret`, Kite `api_secret`).
    pub client_secret: Secret,
    /// The registered redirect URI (loopback).
    pub redirect_uri: Url,
    /// Where the login page is (Upstox: the API base; Kite: `kite.login_base`).
    pub login_base: Url,
    /// The broker's id of the user who must log in, when the login has to check whose session
    /// it got (Dhan's `dhanClientId`: its redirect carries no `state`).
    pub user_id: Option<String>,
}

impl LoginApp {
    /// The login app of `account`, or what to set when a key is missing.
    pub fn for_account(account: &crate::config::AccountConfig) -> Result<LoginApp, String> {
        match account.broker {
            Broker::Upstox => {
                let u = &account.upstox;
                Ok(LoginApp {
                    client_id: u.client_id.clone().ok_or(
                        "upstox.client_id is not set; set UPSTOX_CLIENT_ID or upstox.client_id to your app's API key",
                    )?,
                    client_secret: u.client_secret.clone().ok_or(
                        "upstox.client_secret is not set; set UPSTOX_CLIENT_SECRET (or .env) to your app's secret",
                    )?,
                    redirect_uri: u.redirect_uri.clone(),
                    login_base: u.api_base.clone(),
                    user_id: None,
                })
            }
            Broker::Kite => {
                let k = &account.kite;
                Ok(LoginApp {
                    client_id: k.api_key.clone().ok_or(
                        "kite.api_key is not set; set KITE_API_KEY or kite.api_key to your Kite Connect app's API key",
                    )?,
                    client_secret: k.api_secret.clone().ok_or(
                        "kite.api_secret is not set; set KITE_API_SECRET (or .env) to your Kite Connect app's secret",
                    )?,
                    redirect_uri: k.redirect_uri.clone(),
                    login_base: k.login_base.clone(),
                    user_id: None,
                })
            }
            Broker::Fyers => {
                let f = &account.fyers;
                let client_id = f.client_id.clone().ok_or(format!(
                    "fyers.client_id is not set; set FYERS_CLIENT_ID or fyers.client_id to your Fyers app's id ({})",
                    fyers::CLIENT_ID_HINT
                ))?;
                if !fyers::client::has_app_type(&client_id) {
                    return Err(format!(
                        "fyers.client_id has no app-type suffix; {} (set FYERS_CLIENT_ID or fyers.client_id)",
                        fyers::CLIENT_ID_HINT
                    ));
                }
                Ok(LoginApp {
                    client_id,
                    client_secret: f.secret_key.clone().ok_or(
                        "fyers.secret_key is not set; set FYERS_SECRET_KEY (or .env) to your Fyers app's secret",
                    )?,
                    redirect_uri: f.redirect_uri.clone(),
                    login_base: f.login_base.clone(),
                    user_id: None,
                })
            }
            Broker::Dhan => {
                let d = &account.dhan;
                let user = d
                    .client_id
                    .clone()
                    .ok_or_else(|| dhan::missing("dhan.client_id"))?;
                Ok(LoginApp {
                    client_id: d
                        .api_key
                        .clone()
                        .ok_or_else(|| dhan::missing("dhan.api_key"))?,
                    client_secret: d
                        .api_secret
                        .clone()
                        .ok_or_else(|| dhan::missing("dhan.api_secret"))?,
                    redirect_uri: d.redirect_uri.clone(),
                    login_base: d.login_base.clone(),
                    user_id: Some(user),
                })
            }
            Broker::Angel => Err(NO_BROWSER_LOGIN.into()),
        }
    }
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
