//! The OAuth login flow: one login per account at a time, a fresh `state`, the
//! loopback callback listener and the pasted address racing each other, and a single
//! exchange of the code. The caller stores the token and then tells the browser.

use super::browser;
use super::callback::{self, Hit, ListenError, Listener};
use super::oauth::{self, Callback, CallbackProblem};
use crate::brokers::{ApiError, Broker, BrokerClient, LoginApp};
use crate::clock::Clock;
use crate::config::{AccountConfig, LoginConfig};
use crate::secret::Secret;
use crate::token::Token;
use crate::token::expiry::to_ist;
use crate::token::store::{StoreError, TokenStore};
use chrono::{DateTime, Utc};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use url::Url;

/// The most of a page the demo's built-in browser reads.
const BUILTIN_BROWSER_PAGE_LIMIT: usize = 64 * 1024;

/// What a login needs to know.
#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// The account name.
    pub account: String,
    /// The account's broker.
    pub broker: Broker,
    /// The app's API key.
    pub client_id: String,
    /// The app's secret.
    pub client_secret: Secret,
    /// The registered redirect URI (loopback).
    pub redirect_uri: Url,
    /// The broker's API base.
    pub api_base: Url,
    /// Where the broker's login page is (Upstox: the API base).
    pub login_base: Url,
    /// The broker's id of the user who must log in, when the login checks it (Dhan).
    pub user_id: Option<String>,
    /// How long to wait for the browser.
    pub timeout: Duration,
    /// `login.browser_command`.
    pub browser_command: Vec<String>,
    /// `$BROWSER`.
    pub env_browser: Option<String>,
    /// False for `--no-browser`: only print the address.
    pub open_browser: bool,
    /// Why no browser opens when `open_browser` is false, for the messages.
    pub no_browser_reason: &'static str,
    /// Follow the login address in-process instead of opening a browser: for the demo,
    /// whose simulator approves at once and redirects straight to the callback.
    pub builtin_browser: bool,
}

impl LoginSettings {
    /// Settings for `account`, or what is missing from the configuration.
    pub fn new(
        account: &AccountConfig,
        login: &LoginConfig,
        open_browser: bool,
    ) -> Result<LoginSettings, LoginError> {
        let app = LoginApp::for_account(account).map_err(LoginError::Config)?;
        callback::loopback_addrs(&app.redirect_uri, account.broker).map_err(LoginError::Listen)?;
        let api_base = crate::brokers::api_base(account).clone();
        Ok(LoginSettings {
            account: account.name.clone(),
            broker: account.broker,
            client_id: app.client_id,
            client_secret: app.client_secret,
            redirect_uri: app.redirect_uri,
            api_base,
            login_base: app.login_base,
            user_id: app.user_id,
            timeout: login.timeout,
            browser_command: login.browser_command.clone(),
            env_browser: std::env::var("BROWSER").ok(),
            open_browser,
            no_browser_reason: "--no-browser",
            builtin_browser: false,
        })
    }
}

impl LoginSettings {
    /// The broker's API client for this login.
    pub fn client(&self) -> Result<BrokerClient, ApiError> {
        // Dhan's checks name the user, not the app.
        let key = self.user_id.as_deref().unwrap_or(&self.client_id);
        BrokerClient::new(self.broker, &self.api_base, key)
    }

    /// The app this login signs in to.
    pub fn app(&self) -> LoginApp {
        LoginApp {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            redirect_uri: self.redirect_uri.clone(),
            login_base: self.login_base.clone(),
            user_id: self.user_id.clone(),
        }
    }
}

/// How a login is going.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginProgress {
    /// Waiting for the browser (or a pasted address) until `until`.
    Waiting {
        /// The broker's login address.
        url: Url,
        /// Where the callback listener listens.
        listening: Vec<SocketAddr>,
        /// When the login gives up.
        until: DateTime<Utc>,
        /// How the browser was opened, or why it was not.
        browser: Result<String, String>,
    },
    /// A pasted address was not accepted; still waiting.
    PasteRejected(String),
    /// The code arrived and is being exchanged.
    Exchanging,
}

/// Why a login ended without a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoginError {
    /// Something the configuration lacks.
    #[error("{0}")]
    Config(String),
    /// Another login for this account is running.
    #[error(
        "another login for account \"{account}\" is in progress ({holder}); finish or cancel it first"
    )]
    Busy {
        /// The account.
        account: String,
        /// Who holds the login.
        holder: String,
    },
    /// The callback listener could not start.
    #[error("{0}")]
    Listen(ListenError),
    /// The user or the broker refused.
    #[error("login refused: {0}")]
    Denied(String),
    /// Nobody came back in time.
    #[error("no login within {}; run the login again", crate::timefmt::human(*.0))]
    TimedOut(Duration),
    /// Cancelled by the user.
    #[error("login cancelled")]
    Cancelled,
    /// The code could not be exchanged (it is single-use: never retried).
    #[error("{} did not exchange the login code ({}); log in again", .0.display_name(), .1)]
    Exchange(Broker, ApiError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A token obtained by a login, with the browser still waiting for its page.
pub struct Obtained {
    /// The new token.
    pub token: Token,
    page: Option<oneshot::Sender<Result<String, String>>>,
    listener: Option<Listener>,
    /// The renewal lock, held until the token is stored (dropped with this), so that no
    /// other process starts a renewal between the login and the store.
    _lock: crate::token::store::StoreLock,
}

impl Obtained {
    /// Answer the browser: `Ok(())` after the token was stored, or the reason it was not;
    /// returns once the page has gone out (or a few seconds passed).
    pub async fn finish(mut self, stored: Result<(), String>) {
        if let Some(page) = self.page.take() {
            let text = stored.map(|()| {
                format!(
                    "valid until {} IST",
                    to_ist(self.token.expires_at).format("%a %d %b %H:%M")
                )
            });
            let _ = page.send(text);
        }
        if let Some(listener) = self.listener.take() {
            listener.close().await;
        }
    }
}

/// Answer the browser with a failure and close the listener, then return the error.
async fn fail(
    page: Option<oneshot::Sender<Result<String, String>>>,
    listener: Listener,
    text: String,
    error: LoginError,
) -> Result<Obtained, LoginError> {
    if let Some(page) = page {
        let _ = page.send(Err(text));
    }
    listener.close().await;
    Err(error)
}

/// Run one login. Pasted addresses arrive on `paste`; a message on `cancel` (or dropping its
/// sender) ends the login. Progress goes to `progress`.
pub async fn run(
    settings: LoginSettings,
    store: TokenStore,
    clock: Arc<dyn Clock>,
    mut paste: mpsc::Receiver<String>,
    mut cancel: oneshot::Receiver<()>,
    progress: mpsc::Sender<LoginProgress>,
) -> Result<Obtained, LoginError> {
    let login_lock = store.login_lock().map_err(|e| match e {
        StoreError::Locked { holder, .. } => LoginError::Busy {
            account: settings.account.clone(),
            holder,
        },
        other => LoginError::Other(other.to_string()),
    })?;
    let client = settings
        .client()
        .map_err(|e| LoginError::Other(e.to_string()))?;
    let app = settings.app();
    let state = oauth::new_state().map_err(LoginError::Other)?;
    let mut listener = callback::listen(
        &settings.redirect_uri,
        state.clone(),
        &settings.account,
        client.clone(),
    )
    .await
    .map_err(LoginError::Listen)?;
    let url = match client.login_address(&app, &state).await {
        Ok(url) => url,
        Err(e) => {
            listener.close().await;
            return Err(LoginError::Other(format!(
                "{} did not start the login ({e}); check the app's settings and log in again",
                settings.broker.display_name()
            )));
        }
    };
    let browser = if settings.builtin_browser {
        let follow = url.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::limited(5))
                .timeout(Duration::from_secs(30))
                .build();
            if let Ok(client) = client
                && let Ok(page) = client.get(follow).send().await
            {
                // Read the page as a browser would, but never more than a page's worth.
                let _ = crate::http::read_limited(page, BUILTIN_BROWSER_PAGE_LIMIT).await;
            }
        });
        Ok("the demo's built-in browser (the simulator approves at once)".to_string())
    } else if settings.open_browser {
        let (url, cmd, env) = (
            url.clone(),
            settings.browser_command.clone(),
            settings.env_browser.clone(),
        );
        tokio::task::spawn_blocking(move || browser::open(&url, &cmd, env.as_deref()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    } else {
        Err(format!(
            "not opening a browser ({})",
            settings.no_browser_reason
        ))
    };
    let until = clock.now() + chrono::Duration::from_std(settings.timeout).unwrap_or_default();
    let _ = progress
        .send(LoginProgress::Waiting {
            url,
            listening: listener.addrs.clone(),
            until,
            browser,
        })
        .await;
    tracing::info!(account = %settings.account, "Login started; waiting for {} to send the browser back", settings.broker.display_name());

    let deadline = tokio::time::sleep(settings.timeout);
    tokio::pin!(deadline);
    let mut paste_open = true;
    let (callback, page) = loop {
        tokio::select! {
            hit = listener.hits.recv() => match hit {
                Some(Hit { callback, reply }) => break (callback, Some(reply)),
                None => return Err(LoginError::Other("the callback listener stopped".into())),
            },
            text = paste.recv(), if paste_open => match text {
                Some(text) => match client.read_pasted(&text, &state) {
                    Ok(callback) => break (callback, None),
                    Err(problem) => {
                        tracing::warn!(account = %settings.account, "Pasted address refused: {problem}");
                        let _ = progress.send(LoginProgress::PasteRejected(paste_hint(&problem))).await;
                    }
                },
                None => paste_open = false,
            },
            _ = &mut deadline => return Err(LoginError::TimedOut(settings.timeout)),
            _ = &mut cancel => return Err(LoginError::Cancelled),
        }
    };
    let code = match callback {
        Callback::Code(code) => code,
        denied @ Callback::Denied { .. } => {
            let text = denied
                .denial_text_from(settings.broker.display_name())
                .unwrap_or_default();
            return fail(page, listener, text.clone(), LoginError::Denied(text)).await;
        }
    };
    let _ = progress.send(LoginProgress::Exchanging).await;
    let exchanged = client.exchange(&app, &code).await;
    let response = match exchanged {
        Ok(r) => r,
        Err(e) => {
            let text = format!(
                "{} did not accept the login ({e}). Log in again.",
                settings.broker.display_name()
            );
            return fail(
                page,
                listener,
                text,
                LoginError::Exchange(settings.broker, e),
            )
            .await;
        }
    };
    // A login that names its user (Dhan, whose redirect has no state) keeps only that user's
    // session: a code someone else sent the browser must not become this account's token.
    if let Some(want) = app.user_id.as_deref()
        && response.user_id.as_deref().map(str::trim) != Some(want.trim())
    {
        let text = format!(
            "the {} login signed in {}, not this account's user {want}; log in as {want} (or \
             correct the account's client id)",
            settings.broker.display_name(),
            response.user_id.as_deref().unwrap_or("an unknown user"),
        );
        return fail(page, listener, text.clone(), LoginError::Denied(text)).await;
    }
    let Some(token) =
        crate::brokers::session_token(settings.broker, response, clock.now(), "oauth")
    else {
        let text = format!(
            "{} gave a token without saying when it ends",
            settings.broker.display_name()
        );
        return fail(page, listener, text.clone(), LoginError::Other(text)).await;
    };
    Ok(Obtained {
        token,
        page,
        listener: Some(listener),
        _lock: login_lock,
    })
}

fn paste_hint(problem: &CallbackProblem) -> String {
    format!("{problem}; paste the address again, or wait for the browser")
}
