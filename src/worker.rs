//! The async token worker: one per account. It validates the token with the API, renews it
//! when due (and when renewing would help), stores it, and reports what it sees.
//!
//! Commands come in on a bounded mpsc channel; [`Event`]s (status snapshots and
//! notifications) go out on another, and the latest [`Snapshot`] is also kept in a watch
//! channel for readers such as the HTTP API. The dashboard, the daemon and `refresh` are all
//! just consumers. Decisions live in [`crate::schedule`]; this module does the I/O.

use crate::alerts::{Alert, AlertEvent};
use crate::auth::login::{self, LoginError, LoginProgress, LoginSettings, Obtained};
use crate::auth::notifier::{self, Expectation, NotifierServer};
use crate::clock::Clock;
use crate::config::{AccountConfig, LoginConfig, MonitorConfig, Strategy};
use crate::process::{Run, stderr_excerpt};
use crate::schedule::{self, Deferral, Facts, Policy, Renewal, Verdict};
use crate::token::expiry::to_ist;
use crate::token::file::parse_token;
use crate::token::store::{RestoreOutcome, TokenStore, WriteTally};
use crate::token::{ExpirySource, Token, TokenState, format_countdown};
use crate::upstox::client::{ApiError, Profile, UpstoxClient};
use backon::Retryable;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

/// The worker never sleeps longer than this between looks at the clock, so a suspended
/// laptop or a changed system clock is noticed within a minute.
const MAX_NAP: Duration = Duration::from_secs(60);
/// `renew.command` must finish within this.
pub const RENEW_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound on an honoured `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// Capacity of the command channel.
pub const COMMAND_CAPACITY: usize = 16;

/// What a consumer asks the worker to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Ask the API about the token now.
    Validate,
    /// `r`: validate now, then renew at once if renewal is due or the token is invalid.
    ForceRefresh,
    /// `l`: start the browser login now (a running one is left alone).
    StartLogin,
    /// `p`: the address the browser was sent to after logging in, pasted by the user.
    PasteRedirect(String),
    /// `Esc`: give up the running login.
    CancelLogin,
    /// Stop after the current step; nothing is left half-written.
    Shutdown,
}

/// How loud a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Good news; dismisses itself.
    Info,
    /// Needs attention soon; dismisses itself.
    Warning,
    /// Needs action; stays until dismissed or resolved.
    Critical,
}

/// What a notification is about; a newer one on the same topic replaces the older.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// The token's state changed.
    TokenState,
    /// A renewal succeeded or failed.
    Renewal,
    /// No valid token shortly before `renew.deadline`.
    Deadline,
    /// A login started, succeeded or failed.
    Login,
}

/// A notification for the user.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Notification {
    /// The account it is about.
    pub account: String,
    /// How loud.
    pub level: Level,
    /// What it is about.
    pub topic: Topic,
    /// Short title: "Token expired!".
    pub title: String,
    /// What happened and what to do ("press l to log in").
    pub message: String,
    /// When it was raised.
    pub at: DateTime<Utc>,
}

/// What is known about the stored token, without the token.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenInfo {
    /// `eyJ0…a1B2`.
    pub masked: String,
    /// The Upstox user id.
    pub user_id: Option<String>,
    /// The account holder's name.
    pub user_name: Option<String>,
    /// When it was issued, when known.
    pub issued_at: Option<DateTime<Utc>>,
    /// When it dies.
    pub expires_at: DateTime<Utc>,
    /// Where the expiry came from.
    pub expiry_source: ExpirySource,
    /// How it was obtained, when known.
    pub obtained_via: Option<String>,
    /// Fraction of its life left, 0..=1, for the gauge.
    pub life_fraction: f64,
}

/// The worker's view of one account at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The account name.
    pub account: String,
    /// When this snapshot was taken.
    pub at: DateTime<Utc>,
    /// The token's state.
    pub state: TokenState,
    /// The token, when there is one.
    pub token: Option<TokenInfo>,
    /// What the API last said.
    pub verdict: Verdict,
    /// When the API was last asked.
    pub last_validation_at: Option<DateTime<Utc>>,
    /// The outcome of that: "valid", "rejected: ...", "unreachable: ...".
    pub last_validation_result: Option<String>,
    /// When the API will be asked next.
    pub next_check_at: Option<DateTime<Utc>>,
    /// The renewal decision.
    pub renewal: Renewal,
    /// A renewal or validation round is running.
    pub busy: bool,
    /// `renew.strategy`.
    pub strategy: Strategy,
    /// The token file.
    pub token_file: PathBuf,
    /// The backup files.
    pub backups: Vec<PathBuf>,
    /// Why the token file could not be used, when it could not (the state is then `missing`).
    pub token_error: Option<String>,
    /// The login waiting for the browser, if one is.
    pub login: Option<PendingLogin>,
    /// Renewals since the worker started.
    pub renewals: RenewalTally,
    /// Token file writes since the worker started.
    pub file_writes: WriteTally,
}

/// A login waiting for the user, as the HTTP API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingLogin {
    /// The Upstox login address to open.
    pub auth_url: String,
    /// Where the callback listener listens.
    pub listening: Vec<SocketAddr>,
    /// When the login gives up.
    pub until: DateTime<Utc>,
}

/// How many renewals (of any strategy, logins included) succeeded and failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenewalTally {
    /// A new token was stored.
    pub succeeded: u64,
    /// A renewal ended without a new token after every attempt (or could not store it).
    pub failed: u64,
}

impl Snapshot {
    /// True when anything but the clock-driven fields (`at`, the gauge fraction) changed.
    pub fn differs_from(&self, other: &Snapshot) -> bool {
        let mut a = self.clone();
        a.at = other.at;
        if let (Some(x), Some(y)) = (a.token.as_mut(), other.token.as_ref()) {
            x.life_fraction = y.life_fraction;
        }
        a != *other
    }
}

/// What the worker reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The account's state, after every change.
    Status(Box<Snapshot>),
    /// Something the user should see.
    Notice(Notification),
    /// How a login is going.
    Login(LoginUpdate),
    /// A transition to send to the alert channels (`notifications.*`).
    Alert(Alert),
}

/// A step of a login, for the dashboard's login overlay.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginUpdate {
    /// Waiting, exchanging, or a pasted address refused.
    Progress(LoginProgress),
    /// Stored: the new token lives until then.
    Succeeded(DateTime<Utc>),
    /// Ended without a token, and why.
    Failed(String),
}

/// The outcome of a validation round.
#[derive(Debug, Clone, PartialEq)]
pub enum Validation {
    /// There is no token to validate.
    NoToken,
    /// The API accepted the token.
    Valid(Profile),
    /// The API rejected the token.
    Rejected(ApiError),
    /// The API could not be reached (after every attempt), or refused for another reason.
    Unreachable(ApiError),
}

/// Why a v3 token request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// What happened.
    pub message: String,
    /// Worth asking again later (network, 5xx, rate limit), not a reason to log in.
    pub transient: bool,
}

/// The outcome of a renewal round.
#[derive(Debug, Clone, PartialEq)]
pub enum RenewOutcome {
    /// A new token was verified and stored.
    Renewed,
    /// The strategy needs the user (browser login, phone approval) or is `none`.
    NeedsUser(String),
    /// A renewal now would not move the expiry.
    NotUseful(String),
    /// Every attempt failed.
    Failed(String),
}

/// The per-account state and the steps the worker, `status --validate` and `refresh` share.
pub struct Core {
    account: AccountConfig,
    monitor: MonitorConfig,
    login: LoginConfig,
    builtin_browser: bool,
    policy: Policy,
    clock: Arc<dyn Clock>,
    client: UpstoxClient,
    store: TokenStore,
    token: Option<Token>,
    /// What the token file looked like when last read (inode, size, mtime): any change means
    /// someone replaced it.
    token_stamp: Option<FileStamp>,
    token_error: Option<String>,
    verdict: Verdict,
    last_validation_at: Option<DateTime<Utc>>,
    last_validation_result: Option<String>,
    last_unattended_renewal_at: Option<DateTime<Utc>>,
    busy: bool,
    renewals: RenewalTally,
}

impl Core {
    /// The core for one account. Reads the token file; does no network I/O.
    pub fn new(
        account: AccountConfig,
        monitor: MonitorConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Core, ApiError> {
        let client = UpstoxClient::new(&account.upstox.api_base)?;
        let store = TokenStore::new(account.token.path.clone(), account.token.backups.clone());
        let policy = Policy {
            check_interval: monitor.check_interval,
            refresh_before: monitor.refresh_before,
            thresholds: crate::token::Thresholds {
                warning_before: monitor.warning_before,
                critical_before: monitor.critical_before,
            },
            strategy: account.renew.strategy,
            not_before: account.renew.not_before,
            deadline: account.renew.deadline,
        };
        let mut core = Core {
            account,
            monitor,
            login: LoginConfig::default(),
            builtin_browser: false,
            policy,
            clock,
            client,
            store,
            token: None,
            token_stamp: None,
            token_error: None,
            verdict: Verdict::Unknown,
            last_validation_at: None,
            last_validation_result: None,
            last_unattended_renewal_at: None,
            busy: false,
            renewals: RenewalTally::default(),
        };
        core.reload_token();
        Ok(core)
    }

    /// Use these login settings (`login.timeout`, `login.browser_command`).
    pub fn with_login(mut self, login: LoginConfig) -> Core {
        self.login = login;
        self
    }

    /// Complete logins in-process instead of in a browser (the demo, whose simulator
    /// approves every login at once).
    pub fn with_builtin_browser(mut self, on: bool) -> Core {
        self.builtin_browser = on;
        self
    }

    /// The settings a login for this account would use.
    pub fn login_settings(&self, open_browser: bool) -> Result<LoginSettings, LoginError> {
        let mut settings = LoginSettings::new(&self.account, &self.login, open_browser)?;
        settings.builtin_browser = self.builtin_browser;
        Ok(settings)
    }

    /// The account name.
    pub fn account_name(&self) -> &str {
        &self.account.name
    }

    /// The token store.
    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    /// The current token, if any.
    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// Why the token file could not be used, when it could not.
    pub fn token_error(&self) -> Option<&str> {
        self.token_error.as_deref()
    }

    /// What the API last said.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// At start (daemon, dashboard): clean up after a crash and restore a missing or
    /// unreadable token file from the newest valid backup.
    pub async fn restore(&mut self) {
        let store = self.store.clone();
        let now = self.clock.now();
        let outcome = tokio::task::spawn_blocking(move || store.restore(now)).await;
        match outcome {
            Ok(Ok(RestoreOutcome::Present)) => {}
            Ok(Ok(RestoreOutcome::Restored { from, set_aside })) => {
                if let Some(aside) = set_aside {
                    warn!(account = %self.account.name, "The token file was unreadable; kept it as {}", aside.display());
                }
                info!(account = %self.account.name, "Restored the token file from backup {}", from.display());
            }
            Ok(Ok(RestoreOutcome::NothingToRestore)) => {}
            Ok(Err(e)) => error!(account = %self.account.name, "Cannot check the token file: {e}"),
            Err(e) => error!(account = %self.account.name, "Restoring from backup stopped: {e}"),
        }
        self.reload_token();
        if let Some(token) = self.token.as_ref().filter(|t| t.expires_at > now) {
            crate::sink::repair(
                &self.account.name,
                token,
                &self.account.token,
                crate::sink::ON_CHANGE_LIMIT,
            )
            .await;
        }
    }

    /// Re-read the token file when it changed on disk (another process stored a token, or
    /// the user replaced it). A new token starts with no verdict.
    pub fn reload_if_changed(&mut self) -> bool {
        if file_stamp(&self.account.token.path) == self.token_stamp {
            return false;
        }
        let before = self.token.as_ref().map(|t| t.access_token.clone());
        self.reload_token();
        let same = match (&before, &self.token) {
            (Some(a), Some(b)) => a.same_as(&b.access_token),
            (None, None) => true,
            _ => false,
        };
        if !same {
            info!(account = %self.account.name, "The token file changed; checking the new token");
        }
        !same
    }

    fn reload_token(&mut self) {
        self.token_stamp = file_stamp(&self.account.token.path);
        let before = self.token.as_ref().map(|t| t.access_token.clone());
        match self.store.read() {
            Ok(t) => {
                self.token = t;
                self.token_error = None;
            }
            Err(e) => {
                warn!(account = %self.account.name, "{e}");
                self.token = None;
                self.token_error = Some(e.to_string());
            }
        }
        let same = match (&before, &self.token) {
            (Some(a), Some(b)) => a.same_as(&b.access_token),
            _ => false,
        };
        if !same {
            self.verdict = Verdict::Unknown;
            self.last_validation_at = None;
            self.last_validation_result = None;
        }
    }

    fn facts(&self, now: DateTime<Utc>) -> Facts {
        // After the clock steps back (NTP, a restored VM), times "in the future" would freeze
        // the schedule for as long as the step: treat them as unknown.
        let past = |t: Option<DateTime<Utc>>| t.filter(|t| *t <= now);
        Facts {
            now,
            expires_at: self.token.as_ref().map(|t| t.expires_at),
            verdict: self.verdict,
            last_validation_at: past(self.last_validation_at),
            last_unattended_renewal_at: past(self.last_unattended_renewal_at),
        }
    }

    /// The state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> TokenState {
        schedule::state(&self.facts(now), &self.policy)
    }

    /// A snapshot at `now`.
    pub fn snapshot(&self, now: DateTime<Utc>) -> Snapshot {
        let facts = self.facts(now);
        Snapshot {
            account: self.account.name.clone(),
            at: now,
            state: schedule::state(&facts, &self.policy),
            token: self.token.as_ref().map(|t| TokenInfo {
                masked: t.access_token.masked(),
                user_id: t.user_id.clone(),
                user_name: t.user_name.clone(),
                issued_at: t.issued_at,
                expires_at: t.expires_at,
                expiry_source: t.expiry_source,
                obtained_via: t.obtained_via.clone(),
                life_fraction: t.life_fraction(now),
            }),
            verdict: self.verdict,
            last_validation_at: self.last_validation_at,
            last_validation_result: self.last_validation_result.clone(),
            next_check_at: schedule::next_validation(&facts, &self.policy),
            renewal: schedule::renewal(&facts, &self.policy),
            busy: self.busy,
            strategy: self.account.renew.strategy,
            token_file: self.account.token.path.clone(),
            backups: self.account.token.backups.clone(),
            token_error: self.token_error.clone(),
            login: None,
            renewals: self.renewals,
            file_writes: self.store.write_tally(),
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + Send + Sync + Unpin + use<> {
        schedule::backoff_delays(
            self.monitor.max_retries,
            self.monitor.backoff_initial,
            self.monitor.backoff_max,
            fastrand::f64,
        )
    }

    /// Call the API up to `monitor.max_retries` times while it fails transiently, with
    /// backoff (±25% jitter) and Upstox's Retry-After honoured; each failed attempt is logged as
    /// "`what` attempt n/max failed".
    async fn with_retries<T, F, Fut>(&self, what: &str, call: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let name = &self.account.name;
        let max = self.monitor.max_retries;
        let attempt = AtomicU32::new(0);
        let mut call = call;
        (|| {
            attempt.fetch_add(1, Ordering::Relaxed);
            call()
        })
        .retry(self.backoff())
        .sleep(tokio::time::sleep)
        .when(ApiError::is_transient)
        .adjust(honour_retry_after)
        .notify(|e: &ApiError, d: Duration| {
            warn!(
                account = %name,
                "{what} attempt {}/{max} failed: {e}; retrying in {}",
                attempt.load(Ordering::Relaxed),
                human(d)
            );
        })
        .await
    }

    /// One validation round: up to `max_retries` attempts on transient errors, with backoff.
    pub async fn validate(&mut self) -> Validation {
        let Some(token) = self.token.clone() else {
            return Validation::NoToken;
        };
        let name = self.account.name.clone();
        let client = self.client.clone();
        debug!(account = %name, "Validating the token with the API");
        let result = self
            .with_retries("Validation", || client.profile(&token.access_token))
            .await;
        let now = self.clock.now();
        self.last_validation_at = Some(now);
        match result {
            Ok(profile) => {
                self.verdict = Verdict::Valid(now);
                let left = token.remaining(now);
                if left > chrono::Duration::zero() {
                    info!(account = %name, "Token valid, expires in {}", hours_or_clock(left));
                } else {
                    warn!(
                        account = %name,
                        "The API still accepts the token {} after its expiry; it will stop working any moment",
                        format_countdown(-left)
                    );
                }
                self.last_validation_result = Some("valid".into());
                if let Some(t) = self.token.as_mut() {
                    t.user_id = t.user_id.take().or(profile.user_id.clone());
                    t.user_name = t.user_name.take().or(profile.user_name.clone());
                }
                Validation::Valid(profile)
            }
            Err(e @ ApiError::Invalid { .. }) => {
                self.verdict = Verdict::Invalid(now);
                if token.expires_at <= now {
                    info!(account = %name, "Upstox confirms the token has expired");
                } else {
                    warn!(account = %name, "Token invalid: {e}");
                }
                self.last_validation_result = Some(format!("rejected: {e}"));
                Validation::Rejected(e)
            }
            Err(e) => {
                match &e {
                    ApiError::Transient { .. } => {
                        warn!(account = %name, "Cannot reach the Upstox API after {} attempts: {e}", self.monitor.max_retries)
                    }
                    _ => error!(account = %name, "The API refused the validation: {e}"),
                }
                self.last_validation_result = Some(format!("unreachable: {e}"));
                Validation::Unreachable(e)
            }
        }
    }

    /// The renewal decision at `now`.
    pub fn renewal(&self, now: DateTime<Utc>) -> Renewal {
        schedule::renewal(&self.facts(now), &self.policy)
    }

    /// When a renewal now would not move the expiry (the 03:30 IST boundary rule): why.
    pub fn boundary_note(&self, now: DateTime<Utc>) -> Option<String> {
        match self.renewal(now) {
            Renewal::Deferred {
                reason: Deferral::Boundary { expires_at },
                ..
            } => {
                let end = to_ist(expires_at).format("%H:%M");
                Some(format!("token ends {end} IST; renewal after {end} IST"))
            }
            _ => None,
        }
    }

    /// One renewal round. `forced` (`r`, `refresh`) ignores the unattended waits
    /// (`not_before`, 30 minutes between rounds) but not the 03:30 IST boundary rule.
    pub async fn renew(&mut self, forced: bool) -> RenewOutcome {
        let now = self.clock.now();
        let name = self.account.name.clone();
        if let Some(msg) = self.boundary_note(now) {
            info!(account = %name, "Not renewing now: {msg}");
            return RenewOutcome::NotUseful(msg);
        }
        if !forced {
            self.last_unattended_renewal_at = Some(now);
        }
        match self.account.renew.strategy {
            Strategy::None => {
                let msg =
                    "renew.strategy is none: tokenwatch only alerts; log in to get a new token"
                        .to_string();
                warn!(account = %name, "{msg}");
                RenewOutcome::NeedsUser(msg)
            }
            Strategy::Browser | Strategy::TokenRequest => {
                let msg = "renewal needs you: log in again to get a new token".to_string();
                warn!(account = %name, "{msg}");
                RenewOutcome::NeedsUser(msg)
            }
            Strategy::Command => self.renew_by_command().await,
        }
    }

    async fn renew_by_command(&mut self) -> RenewOutcome {
        let name = self.account.name.clone();
        // One renewal per token file at a time, across processes: a second one would run the
        // command again and overwrite the first one's token.
        let _renewing = match self.store.login_lock() {
            Ok(guard) => guard,
            Err(crate::token::store::StoreError::Locked { holder, .. }) => {
                let msg = format!("another tokenwatch is renewing this token ({holder})");
                info!(account = %name, "Not renewing now: {msg}");
                return RenewOutcome::NotUseful(msg);
            }
            // A lock that cannot even be created (read-only folder, full disk) means the
            // token could not be stored either: a failed renewal, said loudly.
            Err(e) => {
                error!(account = %name, "Cannot renew: {e}");
                return RenewOutcome::Failed(e.to_string());
            }
        };
        // It may have finished just before: use its token rather than renewing again.
        let now = self.clock.now();
        if self.reload_if_changed() && matches!(self.renewal(now), Renewal::NotDue { .. }) {
            return RenewOutcome::NotUseful("another process stored a new token meanwhile".into());
        }
        match self.token.as_ref() {
            Some(t) if t.expires_at > now => info!(
                account = %name,
                "Token expires in {}, attempting refresh...",
                clock_style(t.expires_at - now)
            ),
            Some(_) => info!(account = %name, "Token expired, attempting refresh..."),
            None => info!(account = %name, "No token, attempting refresh..."),
        }

        let argv = self.account.renew.command.clone();
        let max = self.monitor.max_retries;
        let attempt = AtomicU32::new(0);
        let client = self.client.clone();
        let clock = self.clock.clone();
        let result = (|| {
            attempt.fetch_add(1, Ordering::Relaxed);
            fetch_and_verify(&argv, &client, clock.as_ref())
        })
        .retry(self.backoff())
        .sleep(tokio::time::sleep)
        .adjust(|e: &RenewError, d| match e {
            RenewError::Api(api) => honour_retry_after(api, d),
            RenewError::Other(_) => d,
        })
        .notify(|e: &RenewError, d: Duration| {
            warn!(
                account = %name,
                "Refresh attempt {}/{max} failed: {e}; retrying in {}",
                attempt.load(Ordering::Relaxed),
                human(d)
            );
        })
        .await;
        match result {
            Ok((token, profile)) => match self.store_token(token).await {
                Ok(()) => {
                    let now = self.clock.now();
                    self.verdict = Verdict::Valid(now);
                    self.last_validation_at = Some(now);
                    self.last_validation_result = Some("valid".into());
                    if let Some(t) = self.token.as_mut() {
                        t.user_name = t.user_name.take().or(profile.user_name);
                    }
                    info!(account = %name, "Token refresh successful");
                    RenewOutcome::Renewed
                }
                Err(e) => {
                    error!(account = %name, "The new token could not be stored, manual intervention required: {e}");
                    RenewOutcome::Failed(e)
                }
            },
            Err(e) => {
                // backon reports the attempts it retries; the last one is reported here.
                let n = attempt.load(Ordering::Relaxed);
                warn!(account = %name, "Refresh attempt {n}/{max} failed: {e}");
                error!(account = %name, "All refresh attempts failed, manual intervention required");
                RenewOutcome::Failed(e.to_string())
            }
        }
    }

    /// Store a verified token (atomically, with `.prev` and backups), make it current, and
    /// hand it on (`token.env_file`, `token.on_change`) when it is a new token.
    pub async fn store_token(&mut self, token: Token) -> Result<(), String> {
        let changed = !self
            .token
            .as_ref()
            .is_some_and(|t| t.access_token.same_as(&token.access_token));
        let store = self.store.clone();
        let to_store = token.clone();
        let report = tokio::task::spawn_blocking(move || store.write(&to_store))
            .await
            .map_err(|e| format!("storing stopped: {e}"))?
            .map_err(|e| e.to_string())?;
        for (path, why) in &report.backup_failures {
            warn!(account = %self.account.name, "Cannot write backup {}: {why}", path.display());
        }
        if let Some(aside) = &report.set_aside {
            warn!(account = %self.account.name, "The old token file was unreadable; kept it as {}", aside.display());
        }
        // As stored: the file now names its expiry, so the token reads as `status` will read it.
        let mut token = token;
        token.expiry_source = ExpirySource::ExpiresAt;
        self.token = Some(token);
        self.token_error = None;
        self.token_stamp = file_stamp(&self.account.token.path);
        if changed && let Some(t) = &self.token {
            crate::sink::hand_on(
                &self.account.name,
                t,
                &self.account.token,
                crate::sink::ON_CHANGE_LIMIT,
            )
            .await;
        }
        Ok(())
    }

    /// Take a token that arrived verified (the v3 notifier already asked the profile API):
    /// store it and mark it valid.
    pub async fn adopt_verified(&mut self, token: Token) -> Result<(), String> {
        self.store_token(token).await?;
        let now = self.clock.now();
        self.verdict = Verdict::Valid(now);
        self.last_validation_at = Some(now);
        self.last_validation_result = Some("valid".into());
        Ok(())
    }

    /// Take a token from a login: store it, then validate it with the profile API (SPEC §4).
    pub async fn adopt_login(&mut self, token: Token) -> Result<Validation, String> {
        self.store_token(token).await?;
        Ok(self.validate().await)
    }

    /// The v3 access-token request: Upstox asks the user to approve it on the phone. Transient
    /// failures are retried like a validation (`monitor.max_retries`, backoff, Retry-After).
    pub async fn request_token(
        &self,
    ) -> Result<crate::upstox::client::TokenRequestAck, RequestError> {
        let (Some(id), Some(secret)) = (
            &self.account.upstox.client_id,
            &self.account.upstox.client_secret,
        ) else {
            return Err(RequestError {
                message: "upstox.client_id and upstox.client_secret are needed for a token request"
                    .into(),
                transient: false,
            });
        };
        let client = self.client.clone();
        self.with_retries("Token request", || client.request_token(id, secret))
            .await
            .map_err(|e| RequestError {
                transient: e.is_transient(),
                message: e.to_string(),
            })
    }

    /// Start the notifier webhook receiver for strategy token-request.
    pub async fn serve_notifier(
        &self,
        deliveries: mpsc::Sender<Token>,
    ) -> Result<Option<NotifierServer>, String> {
        let renew = &self.account.renew;
        let (Some(listen), Some(path)) = (renew.notifier_listen, renew.notifier_path.clone())
        else {
            return Ok(None);
        };
        let Some(client_id) = self.account.upstox.client_id.clone() else {
            return Err("upstox.client_id is needed to check token-request deliveries".into());
        };
        let expect = Expectation {
            client_id,
            user_id: self.token.as_ref().and_then(|t| t.user_id.clone()),
        };
        notifier::serve(
            listen,
            path,
            false,
            expect,
            self.client.clone(),
            self.clock.clone(),
            deliveries,
        )
        .await
        .map(Some)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "cannot serve the token-request notifier: {listen} is in use (is a tokenwatch daemon \
                 with renew.strategy token-request running? it receives approved tokens itself)"
            ),
            _ => format!("cannot serve the token-request notifier on {listen}: {e}"),
        })
    }
}

/// A file's inode, size and modification time.
type FileStamp = (u64, u64, SystemTime);

fn file_stamp(path: &std::path::Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()?))
}

/// Why one renewal attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
enum RenewError {
    #[error("{0}")]
    Api(ApiError),
    #[error("{0}")]
    Other(String),
}

/// Run `renew.command`, read the token it prints, and check it with the profile API.
async fn fetch_and_verify(
    argv: &[String],
    client: &UpstoxClient,
    clock: &dyn Clock,
) -> Result<(Token, Profile), RenewError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| RenewError::Other("renew.command is empty".into()))?;
    let (program, args) = (program.clone(), args.to_vec());
    // Like every command tokenwatch runs, it does not inherit the client secret or API key.
    let hidden = crate::sink::hidden_from_hooks();
    let run = tokio::task::spawn_blocking(move || {
        let hidden: Vec<&str> = hidden.iter().map(String::as_str).collect();
        crate::process::run(&program, &args, &[], &hidden, RENEW_COMMAND_TIMEOUT)
    })
    .await
    .map_err(|e| RenewError::Other(format!("renew.command stopped: {e}")))?;
    let out = match run {
        Run::Exited(out) => out,
        Run::TimedOut => {
            return Err(RenewError::Other(format!(
                "renew.command did not finish within {}s and was stopped",
                RENEW_COMMAND_TIMEOUT.as_secs()
            )));
        }
        Run::NotStarted(why) => {
            return Err(RenewError::Other(format!(
                "cannot run renew.command: {why}"
            )));
        }
    };
    if !out.status.success() {
        return Err(RenewError::Other(format!(
            "renew.command exited with {}{}",
            out.status,
            stderr_excerpt(&out.stderr)
        )));
    }
    let now = clock.now();
    let mut token = parse_token(&out.stdout, Some(now)).map_err(|why| {
        RenewError::Other(format!("renew.command printed no usable token: {why}"))
    })?;
    if token.expires_at <= now {
        return Err(RenewError::Other(
            "renew.command printed a token that has already expired".into(),
        ));
    }
    let profile = client
        .profile(&token.access_token)
        .await
        .map_err(|e| match e {
            ApiError::Invalid { .. } => RenewError::Other(format!(
                "the token from renew.command was rejected by Upstox: {e}"
            )),
            other => RenewError::Api(other),
        })?;
    token.issued_at = token.issued_at.or(Some(now));
    token.user_id = token.user_id.or(profile.user_id.clone());
    token.user_name = token.user_name.or(profile.user_name.clone());
    token.email = token.email.or(profile.email.clone());
    token.obtained_via = Some("command".into());
    token.format = crate::token::TokenFileFormat::Format1;
    Ok((token, profile))
}

fn honour_retry_after(e: &ApiError, d: Option<Duration>) -> Option<Duration> {
    match (d, e.retry_after()) {
        (Some(d), Some(ra)) => Some(d.max(ra.min(MAX_RETRY_AFTER))),
        (d, _) => d,
    }
}

/// `4s`, `1m 30s`.
pub fn human(d: Duration) -> String {
    let rounded = if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs_f64().round() as u64)
    } else {
        Duration::from_millis(d.as_millis() as u64)
    };
    humantime::format_duration(rounded).to_string()
}

/// `18.3 hours`, or `0:04:57` under an hour (where tenths of an hour say little).
fn hours_or_clock(d: chrono::Duration) -> String {
    if d >= chrono::Duration::hours(1) {
        format!("{:.1} hours", d.num_seconds() as f64 / 3600.0)
    } else {
        clock_style(d)
    }
}

/// `0:45:00`, the form the log uses for time left.
fn clock_style(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// A running worker.
pub struct WorkerHandle {
    /// Send commands here.
    pub commands: mpsc::Sender<Command>,
    /// The latest snapshot.
    pub status: watch::Receiver<Snapshot>,
    /// The worker task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Start a worker for `core` on the current runtime, reporting to `events`.
pub fn spawn(core: Core, events: mpsc::Sender<Event>) -> WorkerHandle {
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    let now = core.clock.now();
    let (status_tx, status_rx) = watch::channel(core.snapshot(now));
    let worker = Worker {
        core,
        commands: rx,
        pending: VecDeque::new(),
        events,
        status: status_tx,
        last_state: None,
        last_deferral: None,
        published: false,
        next_deadline_alarm: None,
        login: None,
        deliveries: None,
        notifier: None,
        shutdown: false,
        failure_alerted: false,
    };
    WorkerHandle {
        commands: tx,
        status: status_rx,
        task: tokio::spawn(worker.run()),
    }
}

struct Worker {
    core: Core,
    commands: mpsc::Receiver<Command>,
    pending: VecDeque<Command>,
    events: mpsc::Sender<Event>,
    status: watch::Sender<Snapshot>,
    last_state: Option<TokenState>,
    last_deferral: Option<(DateTime<Utc>, Deferral)>,
    published: bool,
    next_deadline_alarm: Option<DateTime<Utc>>,
    login: Option<RunningLogin>,
    deliveries: Option<mpsc::Receiver<Token>>,
    notifier: Option<NotifierServer>,
    shutdown: bool,
    /// A renewal failure was alerted and no renewal succeeded since.
    failure_alerted: bool,
}

/// A login the worker started.
struct RunningLogin {
    /// Started by a due renewal, not by the user.
    unattended: bool,
    paste: mpsc::Sender<String>,
    cancel: Option<oneshot::Sender<()>>,
    progress: mpsc::Receiver<LoginProgress>,
    task: tokio::task::JoinHandle<Result<Obtained, LoginError>>,
    /// Set once the listener is up and the address known.
    pending: Option<PendingLogin>,
}

impl Worker {
    async fn run(mut self) {
        let name = self.core.account.name.clone();
        info!(account = %name, "Watching {}", self.core.account.token.path.display());
        self.core.restore().await;
        // Started inside the half hour before the deadline: check at once.
        let since = self.core.clock.now()
            - chrono::Duration::from_std(schedule::DEADLINE_WARNING).unwrap_or_default();
        self.next_deadline_alarm = Some(schedule::next_deadline_alarm(
            since,
            self.core.policy.deadline,
        ));
        if self.core.account.renew.strategy == Strategy::TokenRequest {
            self.start_notifier().await;
        }
        self.publish().await;
        while !self.shutdown {
            if let Some(cmd) = self.pending.pop_front() {
                self.handle(cmd).await;
                continue;
            }
            if self.core.reload_if_changed() {
                self.publish().await;
            }
            let now = self.core.clock.now();
            // The deadline alarm first: it must not wait for a renewal's retries.
            if let Some(alarm) = self.next_deadline_alarm
                && alarm <= now
            {
                self.deadline_check(now).await;
                self.next_deadline_alarm = Some(schedule::next_deadline_alarm(
                    now,
                    self.core.policy.deadline,
                ));
            }
            let facts = self.core.facts(now);
            if schedule::next_validation(&facts, &self.core.policy).is_some_and(|at| at <= now) {
                self.validate().await;
                continue;
            }
            if self.core.renewal(now) == Renewal::Due {
                self.renew(false).await;
                continue;
            }
            self.publish().await;
            let nap = self.nap(now);
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.pending.push_back(cmd),
                    None => self.shutdown = true,
                },
                step = login_step(&mut self.login) => match step {
                    LoginStep::Progress(p) => self.login_progress(p).await,
                    LoginStep::Done(result) => self.finish_login(result).await,
                },
                token = next_delivery(&mut self.deliveries) => self.accept_delivery(token).await,
                _ = tokio::time::sleep(nap) => {}
            }
        }
        if let Some(login) = self.login.take() {
            login.task.abort();
        }
        if let Some(server) = self.notifier.take() {
            server.shutdown().await;
        }
        info!(account = %name, "Worker stopped");
    }

    /// How long to sleep: until the next thing the schedule knows about, at most a minute.
    fn nap(&self, now: DateTime<Utc>) -> Duration {
        let facts = self.core.facts(now);
        let p = &self.core.policy;
        let mut next: Vec<DateTime<Utc>> = Vec::new();
        next.extend(schedule::next_validation(&facts, p));
        match schedule::renewal(&facts, p) {
            Renewal::NotDue { due_at } => next.push(due_at),
            Renewal::Deferred { until, .. } => next.push(until),
            Renewal::Due | Renewal::Disabled => {}
        }
        next.extend(self.next_deadline_alarm);
        if let Some(exp) = facts.expires_at {
            // The state changes at exactly warning_before and at expiry, and one moment after
            // critical_before (critical is strictly less than it).
            let t = p.thresholds;
            let before = |d: Duration| {
                exp - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
            };
            next.push(before(t.warning_before));
            next.push(before(t.critical_before) + chrono::Duration::seconds(1));
            next.push(exp);
        }
        next.into_iter()
            .filter(|t| *t > now)
            .map(|t| (t - now).to_std().unwrap_or(Duration::ZERO))
            .min()
            .unwrap_or(MAX_NAP)
            .min(MAX_NAP)
    }

    async fn handle(&mut self, cmd: Command) {
        // Act on the token that is on disk now, not the one read a minute ago.
        if self.core.reload_if_changed() {
            self.publish().await;
        }
        match cmd {
            Command::Shutdown => self.shutdown = true,
            Command::StartLogin => self.start_login(false).await,
            Command::PasteRedirect(text) => match &self.login {
                Some(login) => {
                    let _ = login.paste.send(text).await;
                }
                None => {
                    let n = self.notice(
                        Level::Info,
                        Topic::Login,
                        "No login is waiting",
                        "press l to start one".into(),
                    );
                    self.notify(n).await;
                }
            },
            Command::CancelLogin => {
                if let Some(cancel) = self.login.as_mut().and_then(|l| l.cancel.take()) {
                    let _ = cancel.send(());
                }
            }
            Command::Validate => self.validate().await,
            Command::ForceRefresh => {
                info!(account = %self.core.account.name, "Refresh requested");
                self.validate().await;
                if self.shutdown {
                    return;
                }
                let now = self.core.clock.now();
                if !matches!(
                    self.core.renewal(now),
                    Renewal::NotDue { .. } | Renewal::Disabled
                ) {
                    self.renew(true).await;
                } else {
                    self.publish().await;
                }
            }
        }
    }

    /// Run a step while still answering `Shutdown`; other commands wait their turn.
    async fn interruptible<T>(
        commands: &mut mpsc::Receiver<Command>,
        pending: &mut VecDeque<Command>,
        step: impl Future<Output = T>,
    ) -> Option<T> {
        tokio::pin!(step);
        loop {
            tokio::select! {
                out = &mut step => return Some(out),
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => return None,
                    Some(other) => pending.push_back(other),
                },
            }
        }
    }

    async fn validate(&mut self) {
        self.core.busy = true;
        self.publish().await;
        let out =
            Self::interruptible(&mut self.commands, &mut self.pending, self.core.validate()).await;
        self.core.busy = false;
        if out.is_none() {
            self.shutdown = true;
        }
        self.publish().await;
    }

    async fn renew(&mut self, forced: bool) {
        let strategy = self.core.account.renew.strategy;
        if matches!(strategy, Strategy::Browser | Strategy::TokenRequest) {
            let now = self.core.clock.now();
            if let Some(why) = self.core.boundary_note(now) {
                info!(account = %self.core.account.name, "Not renewing now: {why}");
                if forced {
                    let n = self.notice(Level::Info, Topic::Renewal, "Not renewing yet", why);
                    self.notify(n).await;
                }
                return;
            }
            if !forced {
                self.core.last_unattended_renewal_at = Some(now);
            }
            if strategy == Strategy::Browser {
                self.start_login(!forced).await;
            } else {
                self.request_token().await;
            }
            self.publish().await;
            return;
        }
        self.core.busy = true;
        self.publish().await;
        let out = Self::interruptible(
            &mut self.commands,
            &mut self.pending,
            self.core.renew(forced),
        )
        .await;
        self.core.busy = false;
        let Some(outcome) = out else {
            self.shutdown = true;
            return;
        };
        let now = self.core.clock.now();
        let account = self.core.account.name.clone();
        let notice = |level, title: &str, message: String| Notification {
            account: account.clone(),
            level,
            topic: Topic::Renewal,
            title: title.to_string(),
            message,
            at: now,
        };
        match outcome {
            RenewOutcome::Renewed => {
                let exp = self
                    .core
                    .token
                    .as_ref()
                    .map(|t| t.expires_at)
                    .unwrap_or(now);
                let n = notice(
                    Level::Info,
                    "Token renewed",
                    format!(
                        "new token valid until {} IST",
                        to_ist(exp).format("%a %d %b %H:%M")
                    ),
                );
                self.renewal_ended(true, n).await;
            }
            RenewOutcome::Failed(why) => {
                let n = notice(
                    Level::Critical,
                    "Renewal failed",
                    format!("all attempts failed ({why}); press r to retry or l to log in"),
                );
                self.renewal_ended(false, n).await;
            }
            RenewOutcome::NeedsUser(why)
                if forced || self.core.state(now) != TokenState::Healthy =>
            {
                self.notify(notice(
                    Level::Warning,
                    "Renewal needs you",
                    format!("{why}; press l to log in"),
                ))
                .await;
            }
            RenewOutcome::NotUseful(why) if forced => {
                self.notify(notice(Level::Info, "Not renewing yet", why))
                    .await;
            }
            RenewOutcome::NeedsUser(_) | RenewOutcome::NotUseful(_) => {}
        }
        self.publish().await;
    }

    fn notice(&self, level: Level, topic: Topic, title: &str, message: String) -> Notification {
        Notification {
            account: self.core.account.name.clone(),
            level,
            topic,
            title: title.to_string(),
            message,
            at: self.core.clock.now(),
        }
    }

    async fn send(&mut self, event: Event) {
        let _ = self.events.send(event).await;
    }

    /// Show `n`, and send it to the alert channels as `event`.
    async fn notify_and_alert(&mut self, n: Notification, event: AlertEvent) {
        let now = self.core.clock.now();
        let alert = Alert {
            account: n.account.clone(),
            event,
            level: n.level,
            title: n.title.clone(),
            message: n.message.clone(),
            state: self.core.state(now),
            expires_at: self.core.token.as_ref().map(|t| t.expires_at),
            at: n.at,
        };
        self.notify(n).await;
        self.send(Event::Alert(alert)).await;
    }

    /// A renewal round ended with a new token (`ok`) or without one: count it, show `n` and
    /// alert.
    async fn renewal_ended(&mut self, ok: bool, n: Notification) {
        if ok {
            self.core.renewals.succeeded += 1;
            self.failure_alerted = false;
            self.notify_and_alert(n, AlertEvent::Renewed).await;
        } else {
            self.core.renewals.failed += 1;
            // The first failure of a run alerts; the retries every half hour after it only
            // show in the dashboard and the log (the deadline alert escalates).
            if std::mem::replace(&mut self.failure_alerted, true) {
                self.notify(n).await;
            } else {
                self.notify_and_alert(n, AlertEvent::RenewalFailed).await;
            }
        }
    }

    /// Start the browser login (`l`, `r`, or an unattended renewal with strategy browser).
    async fn start_login(&mut self, unattended: bool) {
        if self.login.is_some() {
            info!(account = %self.core.account.name, "A login is already waiting");
            return;
        }
        let settings = match self.core.login_settings(true) {
            Ok(s) => s,
            Err(e) => {
                error!(account = %self.core.account.name, "Cannot log in: {e}");
                let n = self.notice(
                    Level::Critical,
                    Topic::Login,
                    "Cannot log in",
                    e.to_string(),
                );
                self.notify(n).await;
                return;
            }
        };
        let (paste, paste_rx) = mpsc::channel(4);
        let (cancel, cancel_rx) = oneshot::channel();
        let (progress_tx, progress) = mpsc::channel(16);
        let task = tokio::spawn(login::run(
            settings,
            self.core.store.clone(),
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

    async fn login_progress(&mut self, p: LoginProgress) {
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
            let n = self.notice(
                Level::Warning,
                Topic::Renewal,
                "Renewal needs you",
                "no browser could be opened here; press l, or run `tokenwatch login` (--no-browser over SSH)".into(),
            );
            self.notify(n).await;
            return;
        }
        if let LoginProgress::Waiting {
            browser: Ok(how), ..
        } = &p
            && self.login.as_ref().is_some_and(|l| l.unattended)
        {
            let n = self.notice(
                Level::Warning,
                Topic::Renewal,
                "Log in to renew",
                format!("the Upstox login was opened with {how}; log in there, or press l to see the address"),
            );
            self.notify(n).await;
        }
        self.send(Event::Login(LoginUpdate::Progress(p))).await;
    }

    async fn finish_login(&mut self, result: Result<Obtained, LoginError>) {
        let unattended = self.login.take().is_some_and(|l| l.unattended);
        let name = self.core.account.name.clone();
        match result {
            Ok(obtained) => match self.core.adopt_login(obtained.token.clone()).await {
                Ok(validation) => {
                    let exp = obtained.token.expires_at;
                    obtained.finish(Ok(())).await;
                    info!(account = %name, "Logged in; new token valid until {} IST", to_ist(exp).format("%a %d %b %H:%M"));
                    if let Validation::Rejected(e) = &validation {
                        warn!(account = %name, "The new token was rejected right after the login: {e}");
                    }
                    self.send(Event::Login(LoginUpdate::Succeeded(exp))).await;
                    let n = self.notice(
                        Level::Info,
                        Topic::Login,
                        "Logged in",
                        format!(
                            "new token valid until {} IST",
                            to_ist(exp).format("%a %d %b %H:%M")
                        ),
                    );
                    self.renewal_ended(true, n).await;
                }
                Err(e) => {
                    obtained
                        .finish(Err(format!("tokenwatch could not store the token: {e}")))
                        .await;
                    error!(account = %name, "Login succeeded but the token could not be stored: {e}");
                    self.send(Event::Login(LoginUpdate::Failed(e.clone())))
                        .await;
                    let n = self.notice(
                        Level::Critical,
                        Topic::Login,
                        "Login failed",
                        format!("cannot store the token: {e}"),
                    );
                    self.renewal_ended(false, n).await;
                }
            },
            Err(LoginError::Cancelled) => {
                info!(account = %name, "Login cancelled");
                self.send(Event::Login(LoginUpdate::Failed("login cancelled".into())))
                    .await;
            }
            Err(e) => {
                warn!(account = %name, "Login failed: {e}");
                self.send(Event::Login(LoginUpdate::Failed(e.to_string())))
                    .await;
                let n = self.notice(
                    Level::Warning,
                    Topic::Login,
                    "Login failed",
                    format!("{e}; press l to try again"),
                );
                if unattended {
                    // The login a due renewal opened ran out: that renewal failed.
                    self.renewal_ended(false, n).await;
                } else {
                    self.notify(n).await;
                }
            }
        }
        self.publish().await;
    }

    /// Strategy token-request: ask Upstox to send a token once the user approves.
    async fn request_token(&mut self) {
        let name = self.core.account.name.clone();
        match self.core.request_token().await {
            Ok(ack) => {
                let until = ack
                    .authorization_expiry
                    .map(|t| format!(" before {} IST", to_ist(t).format("%H:%M")))
                    .unwrap_or_default();
                info!(account = %name, "Token requested; approve it in the Upstox app or on WhatsApp{until}");
                let n = self.notice(
                    Level::Warning,
                    Topic::Renewal,
                    "Approve the token request",
                    format!("open the Upstox app or WhatsApp and approve the request{until}"),
                );
                self.notify(n).await;
            }
            Err(e) => {
                warn!(account = %name, "Token request failed: {e}");
                let advice = if e.transient {
                    "tokenwatch asks again in 30 minutes; press r to retry now"
                } else {
                    "press l to log in instead"
                };
                let n = self.notice(
                    Level::Warning,
                    Topic::Renewal,
                    "Token request failed",
                    format!("{e}; {advice}"),
                );
                self.renewal_ended(false, n).await;
            }
        }
    }

    async fn start_notifier(&mut self) {
        let (tx, rx) = mpsc::channel(4);
        match self.core.serve_notifier(tx).await {
            Ok(Some(server)) => {
                info!(account = %self.core.account.name, "Token-request notifier listening on {}", server.addr);
                self.notifier = Some(server);
                self.deliveries = Some(rx);
            }
            Ok(None) => {}
            Err(e) => {
                error!(account = %self.core.account.name, "{e}");
                let n = self.notice(
                    Level::Critical,
                    Topic::Renewal,
                    "Token requests cannot arrive",
                    e,
                );
                self.notify(n).await;
            }
        }
    }

    /// A token approved on the phone arrived (already checked and verified by the notifier).
    async fn accept_delivery(&mut self, token: Option<Token>) {
        let Some(token) = token else {
            self.deliveries = None;
            return;
        };
        if self
            .core
            .token
            .as_ref()
            .is_some_and(|t| t.access_token.same_as(&token.access_token))
        {
            return;
        }
        let exp = token.expires_at;
        match self.core.adopt_verified(token).await {
            Ok(()) => {
                info!(account = %self.core.account.name, "Token refresh successful (approved on the phone)");
                let n = self.notice(
                    Level::Info,
                    Topic::Renewal,
                    "Token renewed",
                    format!(
                        "approved on the phone; valid until {} IST",
                        to_ist(exp).format("%a %d %b %H:%M")
                    ),
                );
                self.renewal_ended(true, n).await;
            }
            Err(e) => {
                error!(account = %self.core.account.name, "Cannot store the approved token: {e}");
                let n = self.notice(
                    Level::Critical,
                    Topic::Renewal,
                    "Renewal failed",
                    format!("cannot store the approved token: {e}"),
                );
                self.renewal_ended(false, n).await;
            }
        }
        self.publish().await;
    }

    async fn deadline_check(&mut self, now: DateTime<Utc>) {
        let state = self.core.state(now);
        if state.is_usable() {
            return;
        }
        let deadline = self.core.policy.deadline.format("%H:%M");
        error!(account = %self.core.account.name, "No valid token 30 minutes before the {deadline} IST deadline");
        let n = Notification {
            account: self.core.account.name.clone(),
            level: Level::Critical,
            topic: Topic::Deadline,
            title: format!("No valid token before {deadline} IST"),
            message: format!("the token is {}; press l to log in now", state.as_str()),
            at: now,
        };
        self.notify_and_alert(n, AlertEvent::DeadlineMissed).await;
    }

    /// Say once, in the log, why a due renewal waits.
    fn explain_deferral(&mut self, snap: &Snapshot) {
        let plan = match snap.renewal {
            Renewal::Deferred { until, reason } => Some((until, reason)),
            _ => None,
        };
        if plan == self.last_deferral {
            return;
        }
        self.last_deferral = plan;
        let Some((until, reason)) = plan else { return };
        let at = to_ist(until).format("%a %H:%M IST");
        let name = &snap.account;
        match reason {
            Deferral::Boundary { expires_at } => {
                let end = to_ist(expires_at).format("%H:%M");
                info!(account = %name, "Not renewing now: token ends {end} IST; renewal after {end} IST, at {at}")
            }
            Deferral::NotBefore => {
                info!(account = %name, "Renewal waits for renew.not_before: at {at}")
            }
            Deferral::RecentAttempt => debug!(account = %name, "Next unattended renewal at {at}"),
        }
    }

    async fn notify(&mut self, n: Notification) {
        let _ = self.events.send(Event::Notice(n)).await;
    }

    /// Send the snapshot, and a notification when the state changed (starting in a state
    /// counts as entering it).
    async fn publish(&mut self) {
        let now = self.core.clock.now();
        let snap = self.core.snapshot(now);
        let state = snap.state;
        if state == TokenState::Healthy {
            // A good token (from anywhere) ends a run of failed renewals.
            self.failure_alerted = false;
        }
        if self.last_state != Some(state) {
            let from = self.last_state.replace(state);
            if let Some(n) = state_notice(&snap, from, now) {
                match n.level {
                    Level::Critical => {
                        error!(account = %snap.account, "{}: {}", n.title, n.message)
                    }
                    Level::Warning => warn!(account = %snap.account, "{}: {}", n.title, n.message),
                    Level::Info => info!(account = %snap.account, "{}: {}", n.title, n.message),
                }
                match state_alert(state) {
                    Some(event) => self.notify_and_alert(n, event).await,
                    None => self.notify(n).await,
                }
            }
        }
        let mut snap = snap;
        snap.login = self.login.as_ref().and_then(|l| l.pending.clone());
        self.explain_deferral(&snap);
        let changed = snap.differs_from(&self.status.borrow());
        if changed || !self.published {
            self.published = true;
            self.status.send_replace(snap.clone());
            let _ = self.events.send(Event::Status(Box::new(snap))).await;
        }
    }
}

/// The alert for entering `state`, if it is one users are alerted to.
fn state_alert(state: TokenState) -> Option<AlertEvent> {
    match state {
        TokenState::Healthy => None,
        TokenState::Warning => Some(AlertEvent::Warning),
        TokenState::Critical => Some(AlertEvent::Critical),
        TokenState::Expired => Some(AlertEvent::Expired),
        TokenState::Invalid => Some(AlertEvent::Invalid),
        TokenState::Missing => Some(AlertEvent::Missing),
    }
}

/// The notification for entering `snap.state` from `from`.
fn state_notice(
    snap: &Snapshot,
    from: Option<TokenState>,
    now: DateTime<Utc>,
) -> Option<Notification> {
    let left = snap
        .token
        .as_ref()
        .map(|t| format_countdown(t.expires_at - now))
        .unwrap_or_default();
    let (level, title, message) = match snap.state {
        TokenState::Healthy if from.is_some_and(|f| f != TokenState::Healthy) => (
            Level::Info,
            "Token valid".to_string(),
            format!("{left} left"),
        ),
        TokenState::Healthy => return None,
        TokenState::Warning => (
            Level::Warning,
            "Token expires soon".into(),
            match snap.strategy {
                Strategy::None => format!("{left} left; press l to log in before it expires"),
                Strategy::Browser => {
                    format!("{left} left; a login opens when renewal is due (or press l)")
                }
                Strategy::TokenRequest => {
                    format!("{left} left; approve the token request on your phone when it comes")
                }
                Strategy::Command => format!("{left} left; renew.command runs when renewal is due"),
            },
        ),
        TokenState::Critical => (
            Level::Warning,
            "Token expiring soon".into(),
            format!("{left} left; press r to refresh or l to log in"),
        ),
        TokenState::Expired => (
            Level::Critical,
            "Token expired!".into(),
            "press l to log in".into(),
        ),
        TokenState::Invalid => (
            Level::Critical,
            "Token rejected by Upstox".into(),
            "it no longer works; press l to log in".into(),
        ),
        TokenState::Missing => (
            Level::Critical,
            "No token".into(),
            "press l to log in".into(),
        ),
    };
    Some(Notification {
        account: snap.account.clone(),
        level,
        topic: Topic::TokenState,
        title,
        message,
        at: now,
    })
}

enum LoginStep {
    Progress(LoginProgress),
    Done(Result<Obtained, LoginError>),
}

/// The next thing a running login reports; never resolves without one.
async fn login_step(login: &mut Option<RunningLogin>) -> LoginStep {
    let Some(l) = login else {
        return std::future::pending().await;
    };
    tokio::select! {
        biased;
        Some(p) = l.progress.recv() => LoginStep::Progress(p),
        done = &mut l.task => LoginStep::Done(done.unwrap_or_else(|e| Err(LoginError::Other(format!("the login stopped: {e}"))))),
    }
}

/// The next token delivered by the notifier; never resolves without a notifier.
async fn next_delivery(deliveries: &mut Option<mpsc::Receiver<Token>>) -> Option<Token> {
    match deliveries {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
