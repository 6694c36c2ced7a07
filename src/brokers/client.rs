//! The API client of one account's broker ([`BrokerClient`]): every call the worker, the
//! login and the notifier make, dispatched to the broker's own client; the headless
//! renewals ([`BrokerClient::renew`]); and the one rule that turns a broker's answer into
//! the stored token ([`session_token`]).

use super::*;
use crate::brokers::angel::{AngelUser, NO_BROWSER_LOGIN, angel_renew};
use crate::brokers::fyers::fyers_session;

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

/// A request not sent for `message` (a key the configuration lacks, a token too old to use).
pub fn not_sent(broker: Broker, message: String) -> ApiError {
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
                    return Err(not_sent(
                        Broker::Fyers,
                        "fyers.secret_key and fyers.pin are needed for the refresh-token \
                         strategy; set FYERS_SECRET_KEY and FYERS_PIN (or .env)"
                            .into(),
                    ));
                };
                let Some(refresh_token) = with.refresh_token else {
                    return Err(not_sent(
                        Broker::Fyers,
                        "no refresh token is kept for this account yet; log in once with \
                         tokenwatch login, and later renewals need no browser"
                            .into(),
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
