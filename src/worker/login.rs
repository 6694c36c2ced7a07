//! The worker's browser login (`l`, `r`, or a due renewal with strategy browser): started
//! here, followed step by step, and its token taken through [`super::Core::accept_token`].

use super::Worker;
use super::notices::{self, Hint};
use crate::auth::login::{self, LoginError, LoginProgress, LoginSettings, Obtained};
use crate::messages::{AlertEvent, Event, Level, LoginUpdate, PendingLogin, Topic};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

/// A login the worker started.
pub(super) struct RunningLogin {
    /// Started by a due renewal, not by the user.
    unattended: bool,
    paste: mpsc::Sender<String>,
    cancel: Option<oneshot::Sender<()>>,
    progress: mpsc::Receiver<LoginProgress>,
    pub(super) task: tokio::task::JoinHandle<Result<Obtained, LoginError>>,
    /// Set once the listener is up and the address known.
    pub(super) pending: Option<PendingLogin>,
}

pub(super) enum LoginStep {
    Progress(LoginProgress),
    Done(Result<Obtained, LoginError>),
}

/// The next thing a running login reports; never resolves without one.
pub(super) async fn login_step(login: &mut Option<RunningLogin>) -> LoginStep {
    let Some(l) = login else {
        return std::future::pending().await;
    };
    tokio::select! {
        biased;
        Some(p) = l.progress.recv() => LoginStep::Progress(p),
        done = &mut l.task => LoginStep::Done(done.unwrap_or_else(|e| Err(LoginError::Other(format!("the login stopped: {e}"))))),
    }
}

impl Worker {
    /// Start the browser login (`l`, `r`, or an unattended renewal with strategy browser).
    /// Start a login; `open_browser`: open it in a browser here (not for a login asked for
    /// over the HTTP API, whose caller gets the address).
    pub(super) async fn start_login(&mut self, unattended: bool, open_browser: bool) {
        if self.login.is_some() {
            info!(account = %self.core.account.name, "A login is already waiting");
            return;
        }
        if self.core.logs_in_headless() {
            // No browser: the PIN-and-TOTP login through the broker's API, as a renewal
            // round (one at a time, under the renewal lock).
            if self.round.is_some() {
                let why = "a check or renewal is running; press l again in a moment";
                self.send(Event::Login(LoginUpdate::Failed(why.into())))
                    .await;
                return;
            }
            let now = self.core.clock.now();
            self.start_renewal_round(!unattended, now, true).await;
            return;
        }
        let settings = match self.core.login_settings(open_browser) {
            Ok(s) if !open_browser => LoginSettings {
                no_browser_reason: "the login was asked for over the HTTP API, which has its address",
                ..s
            },
            Ok(s) => s,
            Err(e) => {
                error!(account = %self.core.account.name, "Cannot log in: {e}");
                let n = self.notice(
                    Level::Critical,
                    Topic::Login,
                    "Cannot log in",
                    e.to_string(),
                    None,
                );
                if unattended {
                    self.round_failed(n).await;
                } else {
                    self.notify(n).await;
                    // The login popup `l` opened ends with the reason, not at "starting".
                    self.send(Event::Login(LoginUpdate::Failed(e.to_string())))
                        .await;
                }
                return;
            }
        };
        self.renewal_begins(crate::config::Strategy::Browser, true);
        let (paste, paste_rx) = mpsc::channel(4);
        let (cancel, cancel_rx) = oneshot::channel();
        let (progress_tx, progress) = mpsc::channel(16);
        let task = tokio::spawn(login::run(
            settings,
            self.core.store().clone(),
            self.core.clock.clone(),
            paste_rx,
            cancel_rx,
            progress_tx,
        ));
        self.login = Some(RunningLogin {
            unattended,
            paste,
            cancel: Some(cancel),
            progress,
            task,
            pending: None,
        });
    }

    /// `p`: the address the browser was sent to, pasted by the user.
    pub(super) async fn paste(&mut self, text: String) {
        match &self.login {
            Some(login) => {
                let _ = login.paste.send(text).await;
            }
            None => {
                self.tell(
                    Level::Info,
                    Topic::Login,
                    "No login is waiting",
                    String::new(),
                    Some(Hint::StartLogin),
                )
                .await;
            }
        }
    }

    /// `Esc`: give up the running login.
    pub(super) fn cancel_login(&mut self) {
        if let Some(cancel) = self.login.as_mut().and_then(|l| l.cancel.take()) {
            let _ = cancel.send(());
        }
    }

    pub(super) async fn login_progress(&mut self, p: LoginProgress) {
        if let LoginProgress::Waiting {
            url,
            listening,
            until,
            ..
        } = &p
            && let Some(login) = self.login.as_mut()
        {
            login.pending = Some(PendingLogin {
                auth_url: url.to_string(),
                listening: listening.clone(),
                until: *until,
            });
        }
        // A login that waits for someone (one asked for over the HTTP API, one a renewal
        // opened in a browser here): its address, which holds no secret, for the log.
        if let LoginProgress::Waiting {
            url,
            until,
            browser,
            ..
        } = &p
            && self
                .login
                .as_ref()
                .is_some_and(|l| !l.unattended || browser.is_ok())
        {
            info!(
                account = %self.core.account.name,
                "Login waiting until {} IST: open {url}",
                crate::token::expiry::to_ist(*until).format("%H:%M")
            );
        }
        // Nobody is at this machine to use a login that opened no browser (a daemon on a
        // server): end it at once rather than hold the port and the lock for nothing.
        if let LoginProgress::Waiting {
            browser: Err(why), ..
        } = &p
            && let Some(login) = self.login.as_mut().filter(|l| l.unattended)
        {
            warn!(account = %self.core.account.name, "Renewal needs a login, but {why}; run `tokenwatch login`");
            if let Some(cancel) = login.cancel.take() {
                let _ = cancel.send(());
            }
            self.tell(
                Level::Warning,
                Topic::Renewal,
                "Renewal needs you",
                "no browser could be opened here".into(),
                Some(Hint::LogInHeadless),
            )
            .await;
            return;
        }
        if let LoginProgress::Waiting {
            url,
            until,
            browser: Ok(how),
            ..
        } = &p
            && self.login.as_ref().is_some_and(|l| l.unattended)
        {
            let n = notices::login_waiting(
                &self.core.account.name,
                self.core.account.broker,
                how,
                url.as_str(),
                *until,
                self.core.clock.now(),
            );
            self.notify_and_alert(n, AlertEvent::LoginWaiting).await;
        }
        self.send(Event::Login(LoginUpdate::Progress(p))).await;
    }

    /// The check of a token a login just stored has answered: announce and count the login.
    pub(super) async fn login_verified(
        &mut self,
        exp: chrono::DateTime<chrono::Utc>,
        rejected: Option<String>,
    ) {
        if let Some(e) = rejected {
            warn!(account = %self.core.account.name, "The new token was rejected right after the login: {e}");
        }
        let n = self.notice(
            Level::Info,
            Topic::Login,
            "Logged in",
            format!("new token valid until {} IST", notices::day_time(exp)),
            None,
        );
        self.renewal_ended(true, n).await;
    }

    pub(super) async fn finish_login(&mut self, result: Result<Obtained, LoginError>) {
        let unattended = self.login.take().is_some_and(|l| l.unattended);
        let name = self.core.account.name.clone();
        match result {
            Ok(obtained) => match self.core.accept_token(obtained.token.clone(), false).await {
                Ok(()) => {
                    let exp = obtained.token.expires_at;
                    obtained.finish(Ok(())).await;
                    info!(account = %name, "Logged in; new token valid until {} IST", notices::day_time(exp));
                    self.send(Event::Login(LoginUpdate::Succeeded(exp))).await;
                    // The login counts (and is announced) once the check of the new token
                    // has answered.
                    // The plan checks it next (a new token has no verdict), at once.
                    self.verifying_login = Some(exp);
                    self.first_check_at = None;
                }
                Err(e) => {
                    obtained
                        .finish(Err(format!("tokenwatch could not store the token: {e}")))
                        .await;
                    error!(account = %name, "Login succeeded but the token was not stored: {e}");
                    self.send(Event::Login(LoginUpdate::Failed(e.clone())))
                        .await;
                    let n = self.notice(
                        Level::Critical,
                        Topic::Login,
                        "Login failed",
                        format!("the token was not stored: {e}"),
                        None,
                    );
                    self.round_failed(n).await;
                }
            },
            Err(LoginError::Busy { .. }) if unattended => {
                // Another process logs in or renews: not a failure; its token is used.
                info!(account = %name, "Not renewing now: another tokenwatch is logging in for this account");
                let now = self.core.clock.now();
                self.other_renewal_until = Some(now + super::lock_recheck());
            }
            Err(LoginError::Cancelled) => {
                info!(account = %name, "Login cancelled");
                self.send(Event::Login(LoginUpdate::Failed("login cancelled".into())))
                    .await;
                if unattended {
                    // Nobody took the login this renewal opened: wait before opening another.
                    self.core.last_failed_round_at = Some(self.core.clock.now());
                }
            }
            Err(e) => {
                warn!(account = %name, "Login failed: {e}");
                self.send(Event::Login(LoginUpdate::Failed(e.to_string())))
                    .await;
                let n = self.notice(
                    Level::Warning,
                    Topic::Login,
                    "Login failed",
                    e.to_string(),
                    Some(Hint::LogInAgain),
                );
                if unattended {
                    // The login a due renewal opened ran out: that renewal failed.
                    self.round_failed(n).await;
                } else {
                    self.notify(n).await;
                }
            }
        }
    }
}
