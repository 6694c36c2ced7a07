//! The async token worker: one per account. It checks the token with the API, renews it
//! when due (and when renewing would help), stores it, and reports what it sees.
//!
//! Commands come in on a bounded mpsc channel; [`Event`]s (status snapshots, notifications,
//! alerts) go out on another, and the latest [`Snapshot`] is also kept in a watch channel
//! for readers such as the HTTP API. The dashboard, the daemon and the API are consumers.
//!
//! - [`plan`]: what to do now (the one decision, pure);
//! - [`core`]: the token, what the API said, and the steps that change them;
//! - this module: the loop that asks the plan, runs one check or renewal at a time beside
//!   the clock-driven duties (state changes, alerts, the deadline alarm, commands), and
//!   reports; `login` and `delivery` are its browser-login and token-request parts;
//!   `notices` holds the texts.

pub mod core;
mod delivery;
mod history;
mod login;
mod notices;
pub mod plan;

pub use self::core::{CHECK_LIMIT, CheckOutcome, Core, RenewOutcome, RequestError};
pub use self::plan::Plan;

use self::core::{Activity, Checked, Lock, RenewResult};
use self::login::{LoginStep, RunningLogin, login_step};
use crate::auth::notifier::NotifierServer;
use crate::brokers::upstox::client::TokenRequestAck;
use crate::messages::{
    Alert, AlertEvent, Command, Event, FORCE_SPACING, Forced, Level, LoginUpdate, Notification,
    Snapshot, Topic,
};
use crate::schedule::{self, Deferral, Renewal};
use crate::token::expiry::to_ist;
use crate::token::store::StoreLock;
use crate::token::{Token, TokenState};
use chrono::{DateTime, Utc};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use tracing::{debug, error, info};

/// Unless told otherwise ([`Start::max_nap`]), the worker never sleeps longer than this
/// between looks at the clock and its token file, so a suspended laptop, a changed system
/// clock or a replaced token file is noticed within a minute.
pub const MAX_NAP: Duration = Duration::from_secs(60);
/// While another process holds the renewal lock, look again this often.
fn lock_recheck() -> chrono::Duration {
    chrono::Duration::seconds(2)
}
/// `renew.command` must finish within this.
pub const RENEW_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Capacity of the command channel.
pub const COMMAND_CAPACITY: usize = 16;

/// A running worker.
pub struct WorkerHandle {
    /// Send commands here.
    pub commands: mpsc::Sender<Command>,
    /// The latest snapshot.
    pub status: watch::Receiver<Snapshot>,
    /// Wakes the worker to look at its token file at once (the fleet's file watcher).
    pub wake: Arc<Notify>,
    /// The worker task.
    pub task: tokio::task::JoinHandle<()>,
}

/// How a worker starts.
#[derive(Debug, Clone)]
pub struct Start {
    /// The first check waits this long (the fleet spreads many accounts' first checks).
    pub first_check_delay: Duration,
    /// The longest nap between turns: [`MAX_NAP`], or longer where something else wakes the
    /// worker when its file changes or the clock jumps (the fleet's watchers).
    pub max_nap: Duration,
    /// Notified to wake the worker at once; the worker makes its own when `None`.
    pub wake: Option<Arc<Notify>>,
}

impl Default for Start {
    fn default() -> Start {
        Start {
            first_check_delay: Duration::ZERO,
            max_nap: MAX_NAP,
            wake: None,
        }
    }
}

/// Start a worker for `core` on the current runtime, reporting to `events`.
pub fn spawn(core: Core, events: mpsc::Sender<Event>) -> WorkerHandle {
    spawn_with(core, events, Start::default())
}

/// [`spawn`], with start options.
pub fn spawn_with(core: Core, events: mpsc::Sender<Event>, start: Start) -> WorkerHandle {
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    let now = core.clock.now();
    let (status_tx, status_rx) = watch::channel(core.snapshot(now, Activity::default()));
    let wake = start.wake.unwrap_or_default();
    let first_check_at = (!start.first_check_delay.is_zero())
        .then(|| now + chrono::Duration::from_std(start.first_check_delay).unwrap_or_default());
    let worker = Worker {
        core,
        max_nap: start.max_nap,
        commands: rx,
        events,
        status: status_tx,
        wake: wake.clone(),
        round: None,
        forced_at: None,
        last_forced_at: None,
        first_check_at,
        other_renewal_until: None,
        approval_until: None,
        verifying_login: None,
        last_state: None,
        last_deferral: None,
        published: false,
        next_deadline_alarm: None,
        login: None,
        deliveries: None,
        notifier: None,
        shutdown: false,
        failure_alerted: false,
        recovered_by: None,
        pending_reload: None,
        underway: None,
        state_day: None,
    };
    WorkerHandle {
        commands: tx,
        status: status_rx,
        wake,
        task: tokio::spawn(worker.run()),
    }
}

/// What a running round ends with.
enum Done {
    Checked(Checked),
    Renewed(RenewResult),
    /// A login through the broker's API (PIN and TOTP) that `l` or the API asked for.
    LoggedIn(RenewResult),
    Requested(Result<TokenRequestAck, RequestError>),
}

/// How long a stopping worker waits for a renewal under way to land: short, as a container
/// or service manager wants the process gone within a few seconds.
const SHUTDOWN_RENEWAL_WAIT: Duration = Duration::from_millis(1500);

/// The one check or renewal round that may run at a time, beside the loop.
struct Round {
    work: Pin<Box<dyn Future<Output = Done> + Send>>,
    /// The renewal lock, held while `renew.command` runs.
    _lock: Option<StoreLock>,
    /// A request to the broker's API that may spend the old token (a refresh token, a
    /// RenewToken): a stopping worker lets it land.
    settle: bool,
}

struct Worker {
    core: Core,
    max_nap: Duration,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    status: watch::Sender<Snapshot>,
    wake: Arc<Notify>,
    round: Option<Round>,
    /// `r` or the API asked at this time for a check and, if due, a renewal.
    forced_at: Option<DateTime<Utc>>,
    /// When the last forced check was started (they start at most once per [`FORCE_SPACING`]).
    last_forced_at: Option<DateTime<Utc>>,
    first_check_at: Option<DateTime<Utc>>,
    other_renewal_until: Option<DateTime<Utc>>,
    approval_until: Option<DateTime<Utc>>,
    /// A login stored a token expiring then; it is announced once its check answers.
    verifying_login: Option<DateTime<Utc>>,
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
    /// This process's renewal ended a bad state: the `recovered` alert says so.
    recovered_by: Option<&'static str>,
    /// A reloaded configuration that waits for the running round to end.
    pending_reload: Option<crate::messages::Reconfig>,
    /// The renewal or login under way, for the history.
    underway: Option<history::Underway>,
    /// The IST day the state was last recorded on: each day's history starts with it.
    state_day: Option<chrono::NaiveDate>,
}

impl Worker {
    async fn run(mut self) {
        let name = self.core.account.name.clone();
        info!(account = %name, "Watching {}", self.core.account.token.path.display());
        self.core.restore().await;
        self.record_start();
        // Started inside the half hour before the deadline: check at once.
        let since = self.core.clock.now()
            - chrono::Duration::from_std(schedule::DEADLINE_WARNING).unwrap_or_default();
        self.next_deadline_alarm = Some(schedule::next_deadline_alarm(since, &self.core.policy));
        if self.core.policy.strategy == crate::config::Strategy::TokenRequest {
            self.start_notifier().await;
        }
        while !self.shutdown {
            if self.core.reload_if_changed() {
                // Whoever held the renewal lock has stored a token: look at it now.
                self.other_renewal_until = None;
            }
            self.core.record_calls(false);
            let now = self.core.clock.now();
            self.clock_duties(now).await;
            if self.round.is_none() {
                self.act(now).await;
            }
            self.publish().await;
            self.carry_state_into_the_day();
            let nap = self.nap(self.core.clock.now());
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => self.shutdown = true,
                },
                done = round_done(&mut self.round) => self.finish_round(done).await,
                step = login_step(&mut self.login) => match step {
                    LoginStep::Progress(p) => self.login_progress(p).await,
                    LoginStep::Done(result) => self.finish_login(result).await,
                },
                token = delivery::next_delivery(&mut self.deliveries) => self.accept_delivery(token).await,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
        // A renewal through the broker's API under way may already have spent the old token
        // (a refresh token used, a RenewToken that ended the old one): give it a moment to
        // land and be stored rather than drop the only live token. A check, or a command's
        // round waiting out a backoff, is simply dropped.
        if self.round.as_ref().is_some_and(|r| r.settle) {
            info!(account = %name, "Stopping after the renewal under way");
            if let Ok(done) =
                tokio::time::timeout(SHUTDOWN_RENEWAL_WAIT, round_done(&mut self.round)).await
            {
                self.finish_round(done).await;
            }
        }
        self.round = None;
        if let Some(login) = self.login.take() {
            login.task.abort();
        }
        if let Some(server) = self.notifier.take() {
            server.shutdown().await;
        }
        self.record_stop();
        info!(account = %name, "Worker stopped");
    }

    /// The facts the plan decides on now.
    fn facts(&self, now: DateTime<Utc>) -> plan::Facts {
        plan::Facts {
            schedule: self.core.schedule_facts(now),
            running: self.round.is_some(),
            login_waiting: self.login.is_some(),
            approval_until: self.approval_until,
            other_renewal_until: self.other_renewal_until,
            forced_at: self.forced_at,
            first_check_at: self.first_check_at,
            refused: self.core.refused(),
        }
    }

    /// Duties that follow the clock alone, whatever else runs: the deadline alarm and the end
    /// of a token request's approval window. (State changes are published every turn.)
    async fn clock_duties(&mut self, now: DateTime<Utc>) {
        if let Some(alarm) = self.next_deadline_alarm
            && alarm <= now
        {
            self.deadline_check(now).await;
            self.next_deadline_alarm = Some(schedule::next_deadline_alarm(now, &self.core.policy));
        }
        if self.approval_until.is_some_and(|t| t <= now) {
            self.approval_lapsed().await;
        }
    }

    /// Ask the plan and start what it says.
    async fn act(&mut self, now: DateTime<Utc>) {
        let decided = plan::plan(&self.facts(now), &self.core.policy);
        let forced = self.forced_at.is_some();
        if decided != Plan::Check {
            self.forced_at = None;
        }
        match decided {
            Plan::Check => self.start_check(),
            Plan::RenewByCommand | Plan::RenewByBroker => self.start_renewal(forced, now).await,
            Plan::LogIn => self.start_login(!forced, true).await,
            Plan::RequestToken => {
                info!(account = %self.core.account.name, "Requesting a token from Upstox");
                self.renewal_begins(crate::config::Strategy::TokenRequest, true);
                let call = self.core.request_call();
                self.start_round(call, None, Done::Requested);
            }
            Plan::Wait {
                reason: plan::Wait::Schedule(Deferral::Boundary { expires_at }),
                ..
            } if forced => {
                let why = schedule::boundary_words(expires_at);
                info!(account = %self.core.account.name, "Not renewing now: {why}");
                self.tell(Level::Info, Topic::Renewal, "Not renewing yet", why, None)
                    .await;
            }
            Plan::Wait { .. } | Plan::Nothing(_) => {}
        }
    }

    fn start_round<F, T>(&mut self, work: F, lock: Option<StoreLock>, done: fn(T) -> Done)
    where
        F: Future<Output = T> + Send + 'static,
        T: 'static,
    {
        self.round = Some(Round {
            work: Box::pin(async move { done(work.await) }),
            _lock: lock,
            settle: false,
        });
    }

    /// Start a check of the current token (no round may be running).
    fn start_check(&mut self) {
        self.first_check_at = None;
        match self.core.check_call() {
            Some(call) => self.start_round(call, None, Done::Checked),
            // Nothing to check: only a forced check of no token gets here.
            None => self.forced_at = None,
        }
    }

    async fn start_renewal(&mut self, forced: bool, now: DateTime<Utc>) {
        self.start_renewal_round(forced, now, false).await;
    }

    /// Take the renewal lock and run a renewal round: the strategy's, or (`login`) a login
    /// through the broker's API.
    async fn start_renewal_round(&mut self, forced: bool, now: DateTime<Utc>, login: bool) {
        match self.core.renewal_lock() {
            Lock::Held(lock) => {
                self.other_renewal_until = None;
                // It may have finished just before: use its token rather than renew again.
                if self.core.reload_if_changed() {
                    if login {
                        let update = match self.core.token.as_ref() {
                            Some(t) => LoginUpdate::Succeeded(t.expires_at),
                            None => LoginUpdate::Failed(
                                "another tokenwatch changed the token file meanwhile".into(),
                            ),
                        };
                        self.send(Event::Login(update)).await;
                    }
                    return;
                }
                if login {
                    info!(account = %self.core.account.name, "Logging in to {} with the PIN and a TOTP code", self.core.account.broker.display_name());
                } else {
                    self.core.log_renewal_start();
                }
                let through_api = login
                    || matches!(
                        self.core.policy.strategy,
                        crate::config::Strategy::Totp | crate::config::Strategy::RefreshToken
                    );
                self.renewal_begins(
                    if login {
                        crate::config::Strategy::Totp
                    } else {
                        self.core.policy.strategy
                    },
                    forced,
                );
                if login {
                    let call = self.core.headless_login_call();
                    self.start_round(call, Some(lock), Done::LoggedIn);
                } else {
                    let call = self.core.renew_call();
                    self.start_round(call, Some(lock), Done::Renewed);
                }
                if let Some(round) = self.round.as_mut() {
                    round.settle = through_api;
                }
            }
            Lock::Busy(holder) => {
                if self.other_renewal_until.is_none() {
                    info!(account = %self.core.account.name, "Not renewing now: another tokenwatch is renewing this token ({holder}); using its token when it lands");
                }
                self.other_renewal_until = Some(now + lock_recheck());
                if forced {
                    let n = self.notice(
                        Level::Info,
                        Topic::Renewal,
                        "Not renewing yet",
                        format!("another tokenwatch is renewing this token ({holder}); its token is used when it lands"),
                        None,
                    );
                    self.notify(n).await;
                }
                if login {
                    let why = format!(
                        "another tokenwatch is renewing this token ({holder}); its token is used when it lands"
                    );
                    self.send(Event::Login(LoginUpdate::Failed(why))).await;
                }
            }
            Lock::Broken(why) => {
                // A lock that cannot even be created means the token could not be stored
                // either: a failed round, said loudly.
                error!(account = %self.core.account.name, "Cannot renew: {why}");
                if login {
                    self.send(Event::Login(LoginUpdate::Failed(why.clone())))
                        .await;
                }
                let n = notices::renewal_failed(&self.core.account.name, &why, now);
                self.round_failed(n).await;
            }
        }
    }

    async fn finish_round(&mut self, done: Done) {
        self.round = None;
        Box::pin(self.finish_round_work(done)).await;
        if let Some(reload) = self.pending_reload.take() {
            self.reload(reload).await;
        }
    }

    /// Take a reloaded configuration now (no round is running).
    async fn reload(&mut self, reload: crate::messages::Reconfig) {
        let parts = &reload.0;
        let was_token_request = self.core.policy.strategy == crate::config::Strategy::TokenRequest;
        let name = self.core.account.name.clone();
        match self.core.reconfigure(
            parts.account.clone(),
            parts.monitor.clone(),
            parts.login.clone(),
        ) {
            Ok(changed) if changed.is_empty() => {
                info!(account = %name, "Configuration reloaded; nothing changed for this account");
            }
            Ok(changed) => {
                info!(account = %name, "Configuration reloaded: {}", changed.join(", "));
            }
            Err(why) => {
                error!(account = %name, "Configuration not reloaded for this account: {why}");
                return;
            }
        }
        let is_token_request = self.core.policy.strategy == crate::config::Strategy::TokenRequest;
        if is_token_request && self.notifier.is_none() {
            self.start_notifier().await;
        } else if was_token_request
            && !is_token_request
            && let Some(server) = self.notifier.take()
        {
            server.shutdown().await;
        }
        // The next check and the state follow the new settings from now on.
        self.published = false;
    }

    async fn finish_round_work(&mut self, done: Done) {
        match done {
            Done::Checked(checked) => {
                // A check of a token that is no longer current (`None`) says nothing about
                // the one a login just stored.
                if let Some(outcome) = self.core.apply_check(checked)
                    && let Some(exp) = self.verifying_login.take()
                {
                    let rejected = match outcome {
                        CheckOutcome::Rejected(e) => Some(e.to_string()),
                        _ => None,
                    };
                    self.login_verified(exp, rejected).await;
                }
            }
            Done::LoggedIn(result) => {
                let update = match self.renewal_done(result).await {
                    Ok(exp) => LoginUpdate::Succeeded(exp),
                    Err(why) => LoginUpdate::Failed(why),
                };
                self.send(Event::Login(update)).await;
            }
            Done::Renewed(result) => {
                let _ = self.renewal_done(result).await;
            }
            Done::Requested(result) => self.requested(result).await,
        }
    }

    /// Take a renewal round's result: store and announce the new token, or say why there is
    /// none. The new token's expiry, or the reason.
    async fn renewal_done(&mut self, result: RenewResult) -> Result<DateTime<Utc>, String> {
        match self.core.take_renewal(result).await {
            RenewOutcome::Renewed => {
                let now = self.core.clock.now();
                let exp = self.core.token.as_ref().map_or(now, |t| t.expires_at);
                let n = self.notice(
                    Level::Info,
                    Topic::Renewal,
                    "Token renewed",
                    format!("new token valid until {} IST", notices::day_time(exp)),
                    None,
                );
                self.renewal_ended(true, n).await;
                Ok(exp)
            }
            RenewOutcome::Failed(why) | RenewOutcome::NotUseful(why) => {
                let n =
                    notices::renewal_failed(&self.core.account.name, &why, self.core.clock.now());
                self.round_failed(n).await;
                Err(why)
            }
        }
    }

    async fn handle(&mut self, cmd: Command) {
        // Act on the token that is on disk now, not the one read a minute ago.
        if self.core.reload_if_changed() {
            self.other_renewal_until = None;
        }
        match cmd {
            Command::Shutdown => self.shutdown = true,
            // A running check or renewal is never interrupted: the new settings wait for it.
            Command::Reload(reload) if self.round.is_some() => self.pending_reload = Some(reload),
            Command::Reload(reload) => self.reload(reload).await,
            Command::StartLogin => self.start_login(false, true).await,
            Command::StartLoginElsewhere => self.start_login(false, false).await,
            Command::PasteRedirect(text) => self.paste(text).await,
            Command::CancelLogin => self.cancel_login(),
            Command::Check => {
                // One running joins it.
                if self.round.is_none() {
                    self.start_check();
                }
            }
            Command::ForceRefresh(reply) => {
                let now = self.core.clock.now();
                let answer = self.force(now);
                // The dashboard's `r` waits for no answer: a refused press is shown.
                if !reply.send(answer)
                    && let Forced::TooSoon(wait) = answer
                {
                    let wait =
                        Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
                    self.tell(
                        Level::Info,
                        Topic::Renewal,
                        "Checked moments ago",
                        format!(
                            "a forced check can start again in {}",
                            crate::timefmt::human(wait)
                        ),
                        None,
                    )
                    .await;
                }
            }
        }
    }

    /// Take a forced refresh at `now`: one queued or running takes it in; otherwise a forced
    /// check starts, unless one started less than [`FORCE_SPACING`] ago.
    fn force(&mut self, now: DateTime<Utc>) -> Forced {
        if self.forced_at.is_some() || self.round.is_some() {
            // A running round's answer serves it; a forced renewal still follows if due.
            self.forced_at.get_or_insert(now);
            return Forced::Merged;
        }
        if let Some(last) = self.last_forced_at
            && let Some(next) = last
                .checked_add_signed(chrono::Duration::from_std(FORCE_SPACING).unwrap_or_default())
            && now < next
            && now >= last
        {
            return Forced::TooSoon((next - now).to_std().unwrap_or(FORCE_SPACING));
        }
        info!(account = %self.core.account.name, "Refresh requested");
        self.forced_at = Some(now);
        self.last_forced_at = Some(now);
        Forced::Started
    }

    /// How long to sleep: until the next thing the plan, the schedule or the clock duties
    /// know about, at most `max_nap`.
    fn nap(&self, now: DateTime<Utc>) -> Duration {
        let facts = self.facts(now);
        let p = &self.core.policy;
        let mut next: Vec<DateTime<Utc>> = Vec::new();
        next.extend(plan::plan(&facts, p).wake_at());
        next.extend(schedule::next_check(&facts.schedule, p));
        next.extend(self.first_check_at);
        next.extend(self.next_deadline_alarm);
        next.extend(self.approval_until);
        next.extend(self.other_renewal_until);
        if let Some(exp) = facts.schedule.expires_at {
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
            .unwrap_or(self.max_nap)
            .min(self.max_nap)
            // A file that could not be read is read again within a minute.
            .min(if self.core.token_error().is_some() {
                MAX_NAP
            } else {
                self.max_nap
            })
    }

    /// A notice that `what` happened and, with a hint, what to do (see [`notices::notice`]).
    fn notice(
        &self,
        level: Level,
        topic: Topic,
        title: &str,
        what: String,
        hint: Option<notices::Hint>,
    ) -> Notification {
        notices::notice(
            &self.core.account.name,
            (level, topic),
            title,
            &what,
            hint,
            self.core.clock.now(),
        )
    }

    /// Show a notification.
    async fn tell(
        &mut self,
        level: Level,
        topic: Topic,
        title: &str,
        what: String,
        hint: Option<notices::Hint>,
    ) {
        let n = self.notice(level, topic, title, what, hint);
        self.notify(n).await;
    }

    async fn send(&mut self, event: Event) {
        let _ = self.events.send(event).await;
    }

    async fn notify(&mut self, n: Notification) {
        self.send(Event::Notice(n)).await;
    }

    /// Show `n`, and send it to the alert channels as `event`.
    async fn notify_and_alert(&mut self, n: Notification, event: AlertEvent) {
        let now = self.core.clock.now();
        self.record_alert(event, n.level);
        let (title, message) = self.alert_text(event, &n);
        let alert = Alert {
            account: n.account.clone(),
            event,
            level: n.level,
            title,
            message,
            state: self.core.state(now),
            expires_at: self.core.token.as_ref().map(|t| t.expires_at),
            at: n.at,
        };
        self.notify(n).await;
        self.send(Event::Alert(alert)).await;
    }

    /// The alert's own words for notice `n` (no dashboard keys: it is read elsewhere).
    fn alert_text(&self, event: AlertEvent, n: &Notification) -> (String, String) {
        notices::alert_text(event, self.core.policy.strategy, n)
    }

    /// A renewal round failed: the next unattended one waits (the only thing that puts it
    /// off); count it, show `n` and alert.
    async fn round_failed(&mut self, n: Notification) {
        self.core.last_failed_round_at = Some(self.core.clock.now());
        self.renewal_ended(false, n).await;
    }

    /// A renewal round ended with a new token (`ok`) or without one: count it, show `n` and
    /// alert.
    async fn renewal_ended(&mut self, ok: bool, n: Notification) {
        let expires_at = self.core.token.as_ref().map(|t| t.expires_at);
        match expires_at.filter(|_| ok) {
            Some(exp) => self.record_renewal(Ok(exp)),
            // The history is read away from the dashboard: the words without keys.
            None => self.record_renewal(Err(&n.elsewhere)),
        }
        if ok {
            self.core.renewals.succeeded += 1;
            self.core.last_failed_round_at = None;
            self.failure_alerted = false;
            if self.last_state.is_some_and(notices::needs_recovery) {
                // The state change that follows sends one `recovered` alert for both.
                self.recovered_by = Some("renewed by this tokenwatch");
                self.notify(n).await;
            } else {
                self.notify_and_alert(n, AlertEvent::Renewed).await;
            }
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

    async fn deadline_check(&mut self, now: DateTime<Utc>) {
        let state = self.core.state(now);
        if state.is_usable() {
            return;
        }
        let deadline = self.core.policy.deadline.format("%H:%M");
        error!(account = %self.core.account.name, "No valid token 30 minutes before the {deadline} IST deadline");
        let n = notices::notice(
            &self.core.account.name,
            (Level::Critical, Topic::Deadline),
            &format!("No valid token before {deadline} IST"),
            &format!("the token is {}", state.as_str()),
            Some(notices::Hint::LogInNow),
            now,
        );
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
            Deferral::NotBefore if to_ist(until).date_naive() != to_ist(snap.at).date_naive() => {
                info!(account = %name, "Renewal waits for renew.not_before on the next trading day (weekends and NSE holidays are skipped): at {at}")
            }
            Deferral::NotBefore => {
                info!(account = %name, "Renewal waits for renew.not_before: at {at}")
            }
            Deferral::RecentFailure => {
                debug!(account = %name, "Next unattended renewal at {at}")
            }
        }
    }

    /// Send the snapshot, and a notification when the state changed (starting in a state
    /// counts as entering it).
    async fn publish(&mut self) {
        let now = self.core.clock.now();
        let activity = Activity {
            busy: self.round.is_some(),
            login: self.login.as_ref().and_then(|l| l.pending.clone()),
        };
        let snap = self.core.snapshot(now, activity);
        let state = snap.state;
        if state == TokenState::Healthy {
            // A good token (from anywhere) ends a run of failed renewals.
            self.failure_alerted = false;
        }
        if self.last_state != Some(state) {
            let from = self.last_state.replace(state);
            self.record_state(state, from);
            let by = self.recovered_by.take();
            if let Some(mut n) = notices::state_notice(&snap, from, now) {
                let recovered =
                    state == TokenState::Healthy && from.is_some_and(notices::needs_recovery);
                if recovered {
                    let by = by.unwrap_or("a new token file from elsewhere");
                    n.message = format!("{}; {by}", n.message);
                    n.elsewhere = format!("{}; {by}", n.elsewhere);
                }
                // The log is read where there is no keyboard too: it says what the alert
                // says.
                notices::log(&snap.account, &n);
                match notices::state_alert(state) {
                    _ if recovered => self.notify_and_alert(n, AlertEvent::Recovered).await,
                    Some(event) => self.notify_and_alert(n, event).await,
                    None => self.notify(n).await,
                }
            }
        }
        self.explain_deferral(&snap);
        let changed = snap.differs_from(&self.status.borrow());
        if changed || !self.published {
            self.published = true;
            self.status.send_replace(snap.clone());
            self.send(Event::Status(Box::new(snap))).await;
        }
    }
}

/// The end of the running round; never resolves without one.
async fn round_done(round: &mut Option<Round>) -> Done {
    match round {
        Some(r) => (&mut r.work).await,
        None => std::future::pending().await,
    }
}
