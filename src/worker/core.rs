//! One account's token and what is known about it: the stored token, what the API last
//! said, and the steps that change them (read the file, check with the API, run
//! `renew.command`, store a new token). No loop and no decisions here: [`super::plan`]
//! decides, the worker loop ([`super`]) and the one-shot commands act.
//!
//! The network steps are returned as owned futures ([`Core::check_call`],
//! [`Core::renew_call`], [`Core::request_call`]) that borrow nothing, so the worker can run
//! one while it keeps the clock-driven duties (state changes, alerts, the deadline alarm,
//! commands); their results are applied afterwards ([`Core::apply_check`],
//! [`Core::accept_token`]).

mod answer;
mod record;
mod renew;

use super::{RENEW_COMMAND_TIMEOUT, plan};
use crate::auth::login::{LoginError, LoginSettings};
use crate::auth::notifier::{self, Expectation, NotifierServer};
use crate::brokers::upstox::client::TokenRequestAck;
use crate::brokers::{ApiError, BrokerClient, Headless, Profile, Renewing};
use crate::clock::Clock;
use crate::config::{AccountConfig, LoginConfig, MonitorConfig, Strategy};
use crate::messages::{PendingLogin, RenewalTally, Snapshot, TokenInfo};
use crate::process::{Run, stderr_excerpt};
use crate::retry::{RetryPolicy, retry, retry_counted};
use crate::schedule::{self, Policy, Renewal};
use crate::secret::Secret;
use crate::timefmt::human;
use crate::token::file::parse_token_as;
use crate::token::store::{RestoreOutcome, StoreError, StoreLock, TokenStore};
use crate::token::verdict::{CheckResult, StoredVerdict};
use crate::token::{Token, TokenState};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::{debug, error, info, warn};

/// A one-shot check (`status --validate`, `refresh`) answers within this, whatever the API
/// does: after it the API counts as unreachable.
pub const CHECK_LIMIT: Duration = Duration::from_secs(60);

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckOutcome {
    /// There is no token to check.
    NoToken,
    /// The API accepted the token.
    Valid(Profile),
    /// The API rejected the token.
    Rejected(ApiError),
    /// The API could not be reached (after every attempt), or refused for another reason.
    Unreachable(ApiError),
}

/// A finished check of one token, to apply with [`Core::apply_check`].
#[derive(Debug)]
pub struct Checked {
    token: Secret,
    result: Result<Profile, ApiError>,
    attempts: u32,
}

/// What the worker is doing, as a snapshot shows it (nothing, for a one-shot command).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    /// A check or renewal round is running.
    pub busy: bool,
    /// The login waiting for the browser, if one is.
    pub login: Option<PendingLogin>,
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

/// The outcome of a renewal round, as `refresh` reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum RenewOutcome {
    /// A new token was verified and stored.
    Renewed,
    /// A renewal now would not move the expiry, or another process renewed meanwhile.
    NotUseful(String),
    /// Every attempt failed.
    Failed(String),
}

/// Why a renewal round ended without a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewFailure {
    /// In words, for the log and the notice.
    pub why: String,
    /// The broker refused (a wrong PIN, a dead refresh token): asking again unattended would
    /// only repeat it, and repeated wrong PINs can lock the account.
    pub refused: bool,
}

impl From<String> for RenewFailure {
    fn from(why: String) -> RenewFailure {
        RenewFailure {
            why,
            refused: false,
        }
    }
}

/// What a renewal round ends with.
pub type RenewResult = Result<Token, RenewFailure>;

/// Taking the renewal lock, which one process per token file holds while it renews.
pub enum Lock {
    /// Held by us until dropped.
    Held(StoreLock),
    /// Another process renews: it is named.
    Busy(String),
    /// The lock cannot even be created (read-only folder, full disk): the token could not
    /// be stored either.
    Broken(String),
}

/// The per-account state and the steps the worker, `status --validate` and `refresh` share.
pub struct Core {
    pub(super) account: AccountConfig,
    monitor: MonitorConfig,
    login: LoginConfig,
    builtin_browser: bool,
    pub(super) policy: Policy,
    pub(super) clock: Arc<dyn Clock>,
    client: BrokerClient,
    store: TokenStore,
    pub(super) token: Option<Token>,
    /// What the token file looked like when last read (inode, size, mtime): any change means
    /// someone replaced it.
    token_stamp: Option<FileStamp>,
    token_error: Option<String>,
    /// The Upstox user this account's tokens are for, once one was seen: a new token for
    /// another user is refused.
    known_user: Option<String>,
    /// The API's last answer about the current token (this process's, or another's read
    /// from the shared `.state` file): the one source of the verdict.
    answer: Option<StoredVerdict>,
    /// What the `.state` file looked like when last read or written.
    state_stamp: Option<FileStamp>,
    /// Why the `.state` file could not be read or written, said once.
    state_problem: Option<String>,
    last_check_at: Option<DateTime<Utc>>,
    last_check_result: Option<String>,
    /// When the last renewal round failed; only a failed round puts the next one off.
    pub(super) last_failed_round_at: Option<DateTime<Utc>>,
    /// The broker refused the last headless renewal, and why.
    refused: Option<String>,
    pub(super) renewals: RenewalTally,
    /// The account's event log, when this process keeps it ([`Core::keep_history`]).
    history: Option<crate::history::Recorder>,
    /// The API calls made since they were last recorded, and the hour they began in.
    calls: Arc<crate::history::CallTally>,
    calls_since: DateTime<Utc>,
}

impl Core {
    /// The core for one account. Reads the token file; does no network I/O.
    pub fn new(
        account: AccountConfig,
        monitor: MonitorConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Core, ApiError> {
        let client = BrokerClient::for_account(&account)?;
        let store = TokenStore::new(account.token.path.clone(), account.token.backups.clone())
            .with_broker(account.broker);
        let policy = policy_of(&account, &monitor);
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
            known_user: None,
            answer: None,
            state_stamp: None,
            state_problem: None,
            last_check_at: None,
            last_check_result: None,
            last_failed_round_at: None,
            refused: None,
            renewals: RenewalTally::default(),
            history: None,
            calls: Arc::default(),
            calls_since: DateTime::<Utc>::MIN_UTC,
        };
        core.reload_token();
        Ok(core)
    }

    /// Take a reloaded configuration of the same account (same broker and token file): its
    /// intervals, thresholds, strategy, broker app and backups. What is known of the token
    /// (the file, the API's last answer, the tallies) stays. Returns what changed, in words.
    pub fn reconfigure(
        &mut self,
        account: AccountConfig,
        monitor: MonitorConfig,
        login: LoginConfig,
    ) -> Result<Vec<String>, String> {
        if account.broker != self.account.broker || account.token.path != self.account.token.path {
            return Err("a new broker or token.path needs a worker of its own".into());
        }
        let client = BrokerClient::for_account(&account).map_err(|e| e.to_string())?;
        let mut changed = Vec::new();
        if monitor.check_interval != self.monitor.check_interval {
            changed.push(format!(
                "checks every {} (was {})",
                human_duration(monitor.check_interval),
                human_duration(self.monitor.check_interval)
            ));
        }
        if monitor != self.monitor && changed.is_empty() {
            changed.push("monitor settings".into());
        } else if monitor != self.monitor {
            let mut rest = monitor.clone();
            rest.check_interval = self.monitor.check_interval;
            if rest != self.monitor {
                changed.push("other monitor settings".into());
            }
        }
        if account.renew.strategy != self.account.renew.strategy {
            changed.push(format!(
                "renewal by {} (was {})",
                account.renew.strategy, self.account.renew.strategy
            ));
        }
        if account.renew != self.account.renew
            && account.renew.strategy == self.account.renew.strategy
        {
            changed.push("renewal settings".into());
        }
        if account.token.backups != self.account.token.backups {
            self.store = TokenStore::new(account.token.path.clone(), account.token.backups.clone())
                .with_broker(account.broker);
            changed.push("backups".into());
        }
        if login != self.login {
            changed.push("login settings".into());
        }
        self.policy = policy_of(&account, &monitor);
        // New settings (a corrected PIN, say) may fix what the broker refused.
        self.refused = None;
        self.client = client;
        self.account = account;
        self.monitor = monitor;
        self.login = login;
        Ok(changed)
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

    /// `login.timeout`: how long a login, a phone approval or another process's renewal is
    /// waited for.
    pub fn login_timeout(&self) -> Duration {
        self.login.timeout
    }

    /// The account's broker.
    pub fn broker(&self) -> crate::brokers::Broker {
        self.account.broker
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

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
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
    /// the user replaced it). A new token starts with no verdict. True when the token changed.
    pub fn reload_if_changed(&mut self) -> bool {
        if self.state_file_changed() {
            self.adopt_stored_answer(true);
        }
        // A file that could not be read (too many open files, a permission being fixed) is
        // read again at every turn, not only once it changes.
        if file_stamp(&self.account.token.path) == self.token_stamp && self.token_error.is_none() {
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
                let why = e.to_string();
                // Said once, not at every turn that reads the file again.
                if self.token_error.as_deref() != Some(why.as_str()) {
                    warn!(account = %self.account.name, "{why}");
                }
                self.token = None;
                self.token_error = Some(why);
            }
        }
        self.remember_user();
        let same = match (&before, &self.token) {
            (Some(a), Some(b)) => a.same_as(&b.access_token),
            _ => false,
        };
        if !same {
            self.forget_answer();
            self.adopt_stored_answer(false);
        }
    }

    fn remember_user(&mut self) {
        if let Some(user) = self.token.as_ref().and_then(|t| t.user_id.clone()) {
            self.known_user = Some(user);
        }
    }

    /// The clock facts the schedule decides on.
    pub fn schedule_facts(&self, now: DateTime<Utc>) -> schedule::Facts {
        // After the clock steps back (NTP, a restored VM), times "in the future" would freeze
        // the schedule for as long as the step: treat them as unknown.
        let past = |t: Option<DateTime<Utc>>| t.filter(|t| *t <= now);
        schedule::Facts {
            now,
            expires_at: self.token.as_ref().map(|t| t.expires_at),
            verdict: self.verdict(),
            last_check_at: past(self.last_check_at),
            last_failed_round_at: past(self.last_failed_round_at),
        }
    }

    /// The facts [`plan::plan`] decides on, for a caller with nothing running.
    pub fn plan_facts(&self, now: DateTime<Utc>) -> plan::Facts {
        plan::Facts {
            refused: self.refused(),
            ..plan::Facts::idle(self.schedule_facts(now))
        }
    }

    /// The policy the schedule and the plan follow.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> TokenState {
        schedule::state(&self.schedule_facts(now), &self.policy)
    }

    /// The renewal decision at `now`.
    pub fn renewal(&self, now: DateTime<Utc>) -> Renewal {
        schedule::renewal(&self.schedule_facts(now), &self.policy)
    }

    /// The account as a consumer sees it at `now`, with what the worker is doing. The one
    /// place a [`Snapshot`] is made.
    pub fn snapshot(&self, now: DateTime<Utc>, activity: Activity) -> Snapshot {
        let facts = self.schedule_facts(now);
        Snapshot {
            account: self.account.name.clone(),
            broker: self.account.broker,
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
                version: crate::token::verdict::token_fingerprint(&t.access_token),
            }),
            answer: self.answer.clone(),
            last_check_at: self.last_check_at,
            last_check_result: self.last_check_result.clone(),
            next_check_at: schedule::next_check(&facts, &self.policy),
            renewal: schedule::renewal(&facts, &self.policy),
            busy: activity.busy,
            strategy: self.account.renew.strategy,
            token_file: self.account.token.path.clone(),
            backups: self.account.token.backups.clone(),
            token_error: self.token_error.clone(),
            login: activity.login,
            renewals: self.renewals,
            file_writes: self.store.write_tally(),
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::from_monitor(&self.monitor)
    }

    /// A check of the current token with the API (`monitor.max_retries` attempts on
    /// transient errors, with backoff), to run anywhere; `None` without a token.
    pub fn check_call(&self) -> Option<impl Future<Output = Checked> + Send + 'static> {
        let token = self.token.as_ref()?.access_token.clone();
        let client = self.counted();
        let policy = self.retry_policy();
        let name = self.account.name.clone();
        debug!(account = %name, "Checking the token with the API");
        Some(async move {
            let (result, attempts) =
                retry_counted(policy, &name, "Check", || client.profile(&token)).await;
            Checked {
                token,
                result,
                attempts,
            }
        })
    }

    /// Record a finished check. `None` when the token changed meanwhile (the check was of a
    /// token that is no longer current).
    pub fn apply_check(&mut self, checked: Checked) -> Option<CheckOutcome> {
        let token = self
            .token
            .clone()
            .filter(|t| t.access_token.same_as(&checked.token))?;
        let name = self.account.name.clone();
        let broker = self.account.broker;
        let now = self.clock.now();
        self.last_check_at = Some(now);
        Some(match checked.result {
            Ok(profile) => {
                self.record_answer(CheckResult::Valid, None, now);
                let left = token.remaining(now);
                if left > chrono::Duration::zero() {
                    info!(account = %name, "Token valid, expires in {}", human(left));
                } else {
                    warn!(
                        account = %name,
                        "The API still accepts the token {} after its expiry; it will stop working any moment",
                        human(-left)
                    );
                }
                self.last_check_result = Some("valid".into());
                if let Some(t) = self.token.as_mut() {
                    t.user_id = t.user_id.take().or(profile.user_id.clone());
                    t.user_name = t.user_name.take().or(profile.user_name.clone());
                }
                self.remember_user();
                CheckOutcome::Valid(profile)
            }
            Err(e @ ApiError::Invalid { .. }) => {
                let code = match &e {
                    ApiError::Invalid { code, .. } => code.clone(),
                    _ => None,
                };
                self.record_answer(CheckResult::Invalid, code, now);
                if token.expires_at <= now {
                    info!(account = %name, "{} confirms the token has expired", broker.display_name());
                } else {
                    warn!(account = %name, "Token invalid: {e}");
                }
                self.last_check_result = Some(format!("rejected: {e}"));
                CheckOutcome::Rejected(e)
            }
            Err(e) => {
                match &e {
                    ApiError::Transient { .. } => match checked.attempts {
                        0 => {
                            warn!(account = %name, "Cannot reach the {} API: {e}", broker.display_name())
                        }
                        1 => {
                            warn!(account = %name, "Cannot reach the {} API after 1 attempt: {e}", broker.display_name())
                        }
                        n => {
                            warn!(account = %name, "Cannot reach the {} API after {n} attempts: {e}", broker.display_name())
                        }
                    },
                    _ => error!(account = %name, "The API refused the check: {e}"),
                }
                self.last_check_result = Some(format!("unreachable: {e}"));
                CheckOutcome::Unreachable(e)
            }
        })
    }

    /// One check, start to end (every attempt `monitor.max_retries` allows).
    pub async fn check(&mut self) -> CheckOutcome {
        self.check_within(Duration::MAX).await
    }

    /// One check that answers within `limit` whatever the API does (the one-shot commands:
    /// [`CHECK_LIMIT`]); after it, the API counts as unreachable.
    pub async fn check_within(&mut self, limit: Duration) -> CheckOutcome {
        let Some(call) = self.check_call() else {
            return CheckOutcome::NoToken;
        };
        let token = self.token.as_ref().map(|t| t.access_token.clone());
        let checked = match (tokio::time::timeout(limit, call).await, token) {
            (Ok(checked), _) => checked,
            (Err(_), Some(token)) => Checked {
                token,
                result: Err(ApiError::Transient {
                    reason: format!(
                        "profile: no answer within {} (the API is slow or asks to wait)",
                        human(limit)
                    ),
                    retry_after: None,
                }),
                attempts: 0,
            },
            (Err(_), None) => return CheckOutcome::NoToken,
        };
        self.apply_check(checked).unwrap_or(CheckOutcome::NoToken)
    }

    /// Take the renewal lock (one renewal per token file at a time, across processes: a
    /// second one would run the command again, or race for the one callback port).
    pub fn renewal_lock(&self) -> Lock {
        match self.store.login_lock() {
            Ok(guard) => Lock::Held(guard),
            Err(StoreError::Locked { holder, .. }) => Lock::Busy(holder),
            Err(e) => Lock::Broken(e.to_string()),
        }
    }

    /// Strategy token-request: ask Upstox to send a token once the user approves it on the
    /// phone. Transient failures are retried like a check.
    pub fn request_call(
        &self,
    ) -> impl Future<Output = Result<TokenRequestAck, RequestError>> + Send + 'static {
        let ids = (
            self.account.upstox.client_id.clone(),
            self.account.upstox.client_secret.clone(),
        );
        let client = self.client.upstox().cloned();
        let calls = self.call_tally();
        let broker = self.account.broker;
        let policy = self.retry_policy();
        let name = self.account.name.clone();
        async move {
            let Some(client) = client else {
                return Err(RequestError {
                    message: format!(
                        "{} has no token request (it is Upstox's phone approval); set renew.strategy to browser",
                        broker.display_name()
                    ),
                    transient: false,
                });
            };
            let (Some(id), Some(secret)) = ids else {
                return Err(RequestError {
                    message:
                        "upstox.client_id and upstox.client_secret are needed for a token request"
                            .into(),
                    transient: false,
                });
            };
            retry(policy, &name, "Token request", || {
                calls.count(client.request_token(&id, &secret))
            })
            .await
            .map_err(|e| RequestError {
                transient: e.is_transient(),
                message: e.to_string(),
            })
        }
    }

    /// Every new token (from `renew.command`, a login, a phone approval) comes in here: a
    /// token for another Upstox user than the account's is refused; else it is stored
    /// (atomically, with `.prev` and backups), made current, marked valid when `verified`,
    /// and handed on (`token.env_file`, `token.on_change`).
    pub async fn accept_token(&mut self, token: Token, verified: bool) -> Result<(), String> {
        if let (Some(known), Some(new)) = (self.known_user.as_deref(), token.user_id.as_deref())
            && !known.eq_ignore_ascii_case(new)
        {
            let why = format!(
                "the new token is for {} user {new}, but this account's token is for {known}; \
                 it was not stored (if the account really changed, move the token file away and log in)",
                self.account.broker.display_name()
            );
            error!(account = %self.account.name, "Refusing the new token: {why}");
            return Err(why);
        }
        self.store_token(token).await?;
        let now = self.clock.now();
        if verified {
            self.last_check_at = Some(now);
            self.last_check_result = Some("valid".into());
            self.record_answer(CheckResult::Valid, None, now);
        } else if self.answer.is_none() {
            self.clear_answer_file();
        }
        Ok(())
    }

    /// One `renew.command` round start to end, under the renewal lock (a round another
    /// process is running is not repeated: [`RenewOutcome::NotUseful`]).
    pub async fn renew_by_command(&mut self) -> RenewOutcome {
        let lock = match self.renewal_lock() {
            Lock::Held(lock) => lock,
            Lock::Busy(holder) => {
                let why = format!("another tokenwatch is renewing this token ({holder})");
                info!(account = %self.account.name, "Not renewing now: {why}");
                return RenewOutcome::NotUseful(why);
            }
            Lock::Broken(why) => {
                error!(account = %self.account.name, "Cannot renew: {why}");
                return RenewOutcome::Failed(why);
            }
        };
        self.renew_holding(lock).await
    }

    /// One `renew.command` round by a caller that holds the renewal lock (given up at the
    /// end): unless another process stored a token just before, which is then used.
    pub async fn renew_holding(&mut self, _lock: StoreLock) -> RenewOutcome {
        if self.reload_if_changed()
            && matches!(self.renewal(self.clock.now()), Renewal::NotDue { .. })
        {
            return RenewOutcome::NotUseful("another process stored a new token meanwhile".into());
        }
        self.log_renewal_start();
        let result = self.renew_call().await;
        self.take_renewal(result).await
    }

    /// Take what a `renew.command` round ([`Core::renew_call`]) ended with: store the
    /// verified token, or say why there is none.
    pub async fn take_renewal(&mut self, result: RenewResult) -> RenewOutcome {
        let name = self.account.name.clone();
        match result {
            Ok(token) => match self.accept_token(token, true).await {
                Ok(()) => {
                    info!(account = %name, "Token refresh successful");
                    self.refused = None;
                    RenewOutcome::Renewed
                }
                Err(e) => {
                    error!(account = %name, "The new token could not be stored, manual intervention required: {e}");
                    RenewOutcome::Failed(e)
                }
            },
            Err(failure) => {
                if failure.refused {
                    self.refused = Some(failure.why.clone());
                }
                RenewOutcome::Failed(failure.why)
            }
        }
    }

    /// Whether the broker refused this account's last headless renewal: unattended rounds
    /// wait until the configuration changes or someone renews by hand.
    pub fn refused(&self) -> bool {
        self.refused.is_some()
    }

    async fn store_token(&mut self, token: Token) -> Result<(), String> {
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
        (token.expires_at, token.expiry_source) = crate::token::expiry::stored_expiry(&token);
        if changed {
            self.forget_answer();
        }
        self.token = Some(token);
        self.token_error = None;
        self.token_stamp = file_stamp(&self.account.token.path);
        self.remember_user();
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

    /// Take a token from a login: store it, then check it with the profile API.
    pub async fn adopt_login(&mut self, token: Token) -> Result<CheckOutcome, String> {
        self.accept_token(token, false).await?;
        Ok(self.check_within(CHECK_LIMIT).await)
    }

    /// Start the notifier webhook receiver for strategy token-request.
    pub async fn serve_notifier(
        &self,
        deliveries: tokio::sync::mpsc::Sender<Token>,
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
            user_id: self.known_user.clone(),
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

/// The time rules of `account` under `monitor`.
fn policy_of(account: &AccountConfig, monitor: &MonitorConfig) -> Policy {
    Policy {
        check_interval: monitor.check_interval,
        refresh_before: monitor.refresh_before,
        thresholds: crate::token::Thresholds {
            warning_before: monitor.warning_before,
            critical_before: monitor.critical_before,
        },
        strategy: account.renew.strategy,
        not_before: account.renew.not_before,
        deadline: account.renew.deadline,
        calendar: account.renew.calendar.clone(),
        broker: account.broker,
    }
}

/// A configured length of time as the configuration writes it: `2m`, `1h 30m`.
fn human_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
