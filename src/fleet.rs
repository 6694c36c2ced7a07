//! Everything the dashboard and the daemon run: one worker per account, the alert channels
//! fed by the workers' alerts, and the HTTP API when `server.listen` is set.
//!
//! The workers report into one channel; a forwarding task hands each alert to the
//! [`AlertSender`] (which never blocks) and passes every event on to the caller.

use crate::alerts::{AlertSender, Alerter};
use crate::api::{self, ApiServer, ApiState};
use crate::auth::login::LoginSettings;
use crate::clock::Clock;
use crate::config::{AccountConfig, Config};
use crate::messages::{Command, Event};
use crate::metrics::Metrics;
use crate::worker::{self, Core, WorkerHandle};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tracing::{error, info, warn};

/// How long in-flight alerts may take to go out at shutdown.
const ALERT_GRACE: Duration = Duration::from_secs(5);
/// How long workers get to finish their current step at shutdown.
const WORKER_GRACE: Duration = Duration::from_secs(20);
/// Accounts' first checks are this far apart, so a thousand accounts do not ask the API in
/// the same second (40 a second; a thousand accounts are all checked within 25 s).
const FIRST_CHECK_SPACING: Duration = Duration::from_millis(25);
/// The longest a worker sleeps when the fleet wakes it on a file change or a clock jump.
const LONG_NAP: Duration = Duration::from_secs(3600);
/// How often the fleet compares the wall clock with the monotonic one.
const CLOCK_WATCH: Duration = Duration::from_secs(60);
/// A difference larger than this between the two is a jump (a suspend, a clock step).
const CLOCK_JUMP: chrono::Duration = chrono::Duration::seconds(5);

/// How to start.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Logins complete in-process (the demo's simulator approves at once).
    pub builtin_browser: bool,
    /// Run this account only (`--account` for the daemon); all accounts when `None`.
    pub only: Option<String>,
    /// When `server.listen` cannot be bound (a daemon beside the dashboard serves the API),
    /// carry on without the API instead of failing: the dashboard's choice, never the
    /// daemon's.
    pub api_elsewhere_ok: bool,
}

/// Where the HTTP API stands for this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    /// `server.listen` is not set (or is `off`).
    Off,
    /// Served here.
    Serving(SocketAddr),
    /// `server.listen` could not be bound (another program, most likely a tokenwatch daemon,
    /// listens there): not served by this process.
    Elsewhere {
        /// `server.listen`.
        addr: SocketAddr,
        /// Why it could not be bound, in plain words.
        why: String,
    },
}

impl Api {
    /// One line for people: where the API is, or why this process does not serve it.
    pub fn describe(&self) -> String {
        match self {
            Api::Off => "off (server.listen is not set)".to_string(),
            Api::Serving(addr) => format!("http://{addr}"),
            Api::Elsewhere { addr, why } => format!(
                "not served by this dashboard: {why}; another tokenwatch (a daemon) most \
                 likely serves it on http://{addr}"
            ),
        }
    }
}

/// Why starting failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration does not allow it (exit 78).
    #[error("{0}")]
    Config(String),
    /// Something else (a port in use): exit 1.
    #[error("{0}")]
    Other(String),
}

/// The running workers, alert channels and API.
pub struct Fleet {
    /// Workers in tab order: the selected account first, then the others by name.
    pub workers: Vec<(String, WorkerHandle)>,
    api: Option<ApiServer>,
    api_state: Api,
    /// What the API serves, shared with it: a reload changes its accounts and thresholds.
    api_shared: Option<Arc<ApiState>>,
    /// The alert channels; a reload puts new ones in.
    alerts: Arc<std::sync::Mutex<AlertSender>>,
    forwarder: tokio::task::JoinHandle<()>,
    _files: crate::filewatch::TokenFiles,
    clock_watch: tokio::task::JoinHandle<()>,
    /// What the fleet was started (or last reloaded) with, to see what a reload changes.
    config: Config,
    clock: Arc<dyn Clock>,
    options: Options,
    /// The workers' wakes, in the order of `workers`.
    wakes: Vec<Arc<Notify>>,
    /// Where new workers report (the forwarder ends once every worker has gone).
    worker_tx: mpsc::WeakSender<Event>,
}

/// The accounts to run, the selected one first.
fn accounts<'a>(
    config: &'a Config,
    only: Option<&str>,
) -> Result<Vec<&'a AccountConfig>, StartError> {
    if let Some(name) = only {
        return match config.accounts.get(name) {
            Some(a) => Ok(vec![a]),
            None => Err(StartError::Config(format!(
                "--account {name}: no such account; configured: {}",
                config
                    .accounts
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        };
    }
    let mut order = vec![&config.account];
    order.extend(
        config
            .accounts
            .values()
            .filter(|a| a.name != config.account.name),
    );
    Ok(order)
}

/// Start every worker (and the API and alert channels) on the current runtime. Events come
/// out of the returned receiver: the caller must keep reading it, and drop it before
/// [`Fleet::shutdown`].
pub async fn start(
    config: &Config,
    clock: Arc<dyn Clock>,
    options: Options,
) -> Result<(Fleet, mpsc::Receiver<Event>), StartError> {
    let order = accounts(config, options.only.as_deref())?;
    if !crate::serving::raise_open_file_limit() {
        warn!("cannot raise the open-file limit; many accounts may need `ulimit -n`");
    }
    // Bind first: for the daemon, a port in use stops the start before any worker acts; the
    // dashboard carries on without the API (a daemon beside it serves it, most likely).
    let mut api_state = match config.server.listen {
        Some(addr) => Api::Serving(addr),
        None => Api::Off,
    };
    let listener = match config.server.listen {
        Some(addr) => match bind(addr).await {
            Ok(l) => Some(l),
            Err(e) if options.api_elsewhere_ok => {
                let why = e.why.clone();
                warn!(
                    "The HTTP API is not served by this dashboard: {why}. Another tokenwatch \
                     (a daemon) most likely serves it there; the dashboard carries on without it. \
                     To serve it here, stop the other program or set server.listen to another \
                     address (or to off)."
                );
                api_state = Api::Elsewhere { addr, why };
                None
            }
            Err(e) => return Err(StartError::Other(e.to_string())),
        },
        None => None,
    };
    let wakes: Vec<Arc<Notify>> = order.iter().map(|_| Arc::new(Notify::new())).collect();
    let files = crate::filewatch::watch(
        order
            .iter()
            .zip(&wakes)
            .map(|(account, wake)| (account.token.path.clone(), wake.clone()))
            .collect(),
    );
    let mut workers = Vec::new();
    let (worker_tx, mut worker_rx) = mpsc::channel::<Event>(256);
    for (i, (account, wake)) in order.iter().zip(&wakes).enumerate() {
        let handle = spawn_worker(
            account,
            config,
            &clock,
            &options,
            &files,
            wake,
            FIRST_CHECK_SPACING.saturating_mul(i as u32),
            worker_tx.clone(),
        )?;
        workers.push((account.name.clone(), handle));
    }
    let weak_tx = worker_tx.downgrade();
    drop(worker_tx);
    let clock_watch = tokio::spawn(watch_clock(clock.clone(), wakes.clone()));

    let alerts = Arc::new(std::sync::Mutex::new(alert_sender(&config.notifications)));
    let (out_tx, out_rx) = mpsc::channel::<Event>(256);
    let to_alerts = alerts.clone();
    let forwarder = tokio::spawn(async move {
        while let Some(event) = worker_rx.recv().await {
            if let Event::Alert(alert) = &event {
                to_alerts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .send(alert.clone());
            }
            // A caller that stopped reading is shutting down.
            let _ = out_tx.send(event).await;
        }
    });

    let mut api_shared = None;
    let api = match listener {
        Some(listener) => {
            let state = ApiState {
                accounts: std::sync::RwLock::new(
                    workers
                        .iter()
                        .zip(&order)
                        .map(|((name, w), account)| api_account(name, w, account, config))
                        .collect(),
                ),
                thresholds: std::sync::RwLock::new(config.thresholds()),
                streams: Default::default(),
                generation: tokio::sync::watch::Sender::new(0),
                api_key: config.server.api_key.clone(),
                clock: clock.clone(),
                metrics: Metrics::new(),
                loopback_only: !config.server.allow_remote,
            };
            let state = Arc::new(state);
            api_shared = Some(state.clone());
            match api::serve_on(listener, state).await {
                Ok(server) => {
                    api_state = Api::Serving(server.addr);
                    Some(server)
                }
                Err(e) => {
                    let fleet = Fleet {
                        workers,
                        api: None,
                        api_state,
                        api_shared: None,
                        alerts,
                        forwarder,
                        _files: files,
                        clock_watch,
                        config: config.clone(),
                        clock,
                        options,
                        wakes,
                        worker_tx: weak_tx,
                    };
                    fleet.shutdown().await;
                    return Err(StartError::Other(format!("cannot serve the HTTP API: {e}")));
                }
            }
        }
        None => None,
    };
    Ok((
        Fleet {
            workers,
            api,
            api_state,
            api_shared,
            alerts,
            forwarder,
            _files: files,
            clock_watch,
            config: config.clone(),
            clock,
            options,
            wakes,
            worker_tx: weak_tx,
        },
        out_rx,
    ))
}

/// The alert channels of `notifications:` (none configured: a sender that drops alerts).
fn alert_sender(notifications: &crate::config::NotificationsConfig) -> AlertSender {
    let alerter = Alerter::new(notifications);
    if alerter.is_empty() {
        AlertSender::disabled()
    } else {
        alerter.spawn()
    }
}

/// One account as the API sees it.
fn api_account(
    name: &str,
    w: &WorkerHandle,
    account: &AccountConfig,
    config: &Config,
) -> api::Account {
    api::Account {
        name: name.to_string(),
        commands: w.commands.clone(),
        status: w.status.clone(),
        // This route waits for a browser login's address; a login through the broker's API
        // (PIN and TOTP) has none, and a forced refresh runs it.
        login_problem: if account.broker.logs_in_headless(account.renew.strategy) {
            Some(format!(
                "account {name} logs in through {}'s API with the PIN and a TOTP code, not in a \
                 browser: POST /api/token/force-refresh renews it",
                account.broker.display_name()
            ))
        } else {
            LoginSettings::new(account, &config.login, true)
                .err()
                .map(|e| e.to_string())
        },
    }
}

/// Start the worker of `account`, its first check `first_check_delay` from now.
#[allow(clippy::too_many_arguments)]
fn spawn_worker(
    account: &AccountConfig,
    config: &Config,
    clock: &Arc<dyn Clock>,
    options: &Options,
    files: &crate::filewatch::TokenFiles,
    wake: &Arc<Notify>,
    first_check_delay: Duration,
    tx: mpsc::Sender<Event>,
) -> Result<WorkerHandle, StartError> {
    let core = Core::new(account.clone(), config.monitor.clone(), clock.clone())
        .map_err(|e| StartError::Other(format!("cannot start account {}: {e}", account.name)))?;
    let core = core
        .with_login(config.login.clone())
        .with_builtin_browser(options.builtin_browser)
        .keep_history(config.history.keep);
    // A worker whose file is watched (and whose clock the fleet watches) sleeps until its
    // next duty; otherwise it looks again every minute.
    let max_nap = if files.watches(&account.token.path) {
        LONG_NAP
    } else {
        worker::MAX_NAP
    };
    let start = worker::Start {
        first_check_delay,
        max_nap,
        wake: Some(wake.clone()),
    };
    Ok(worker::spawn_with(core, tx, start))
}

/// `server.listen` could not be bound.
#[derive(Debug)]
struct BindError {
    addr: SocketAddr,
    /// In plain words: "port 8000 is in use by another program".
    why: String,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot listen on server.listen {}: {}; choose another address in server.listen \
             (or off for no HTTP API)",
            self.addr, self.why
        )
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, BindError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                format!("port {} is in use by another program", addr.port())
            }
            std::io::ErrorKind::AddrNotAvailable => {
                format!("{} is not an address of this machine", addr.ip())
            }
            _ => e.to_string(),
        };
        BindError { addr, why }
    })
}

impl Fleet {
    /// Take a reloaded configuration (already checked): each running account gets its new
    /// settings (after its running check or renewal, which is never interrupted), new
    /// accounts start, removed ones stop, the alert channels and the API's thresholds are
    /// replaced. An account whose broker or token file changed starts afresh. What only a
    /// restart can change (`server:`, `log:`) is said in the log. Returns the changes in
    /// words, for the log.
    pub async fn reload(&mut self, config: &Config) -> Result<Vec<String>, StartError> {
        let order: Vec<AccountConfig> = accounts(config, self.options.only.as_deref())?
            .into_iter()
            .cloned()
            .collect();
        // First what becomes of each account: kept (same broker and token file, new
        // settings), or started afresh. Nothing running changes until every new worker has
        // started: a reload that fails leaves the fleet as it was.
        let kept: Vec<Option<usize>> = order
            .iter()
            .map(|account| {
                let same_file = self.config.accounts.get(&account.name).is_some_and(|w| {
                    w.broker == account.broker && w.token.path == account.token.path
                });
                self.workers
                    .iter()
                    .position(|(n, _)| *n == account.name)
                    .filter(|_| same_file)
            })
            .collect();
        let wakes: Vec<Arc<Notify>> = kept
            .iter()
            .map(|k| match k {
                Some(at) => self.wakes[*at].clone(),
                None => Arc::new(Notify::new()),
            })
            .collect();
        // The new set of token files is watched before any new worker starts, so that they
        // sleep as long as the others.
        let files = crate::filewatch::watch(
            order
                .iter()
                .zip(&wakes)
                .map(|(a, w)| (a.token.path.clone(), w.clone()))
                .collect(),
        );
        let Some(tx) = self.worker_tx.upgrade() else {
            return Err(StartError::Other(
                "the workers have stopped; restart tokenwatch".into(),
            ));
        };
        let mut started: Vec<(usize, WorkerHandle)> = Vec::new();
        for (i, account) in order.iter().enumerate() {
            if kept[i].is_some() {
                continue;
            }
            let spawned = spawn_worker(
                account,
                config,
                &self.clock,
                &self.options,
                &files,
                &wakes[i],
                FIRST_CHECK_SPACING.saturating_mul(i as u32),
                tx.clone(),
            );
            match spawned {
                Ok(handle) => started.push((i, handle)),
                Err(e) => {
                    for (_, handle) in started {
                        let _ = handle.commands.send(Command::Shutdown).await;
                    }
                    return Err(e);
                }
            }
        }
        drop(tx);

        // Every new worker runs: now the fleet changes.
        let mut said = Vec::new();
        let mut old: Vec<Option<WorkerHandle>> =
            self.workers.drain(..).map(|(_, w)| Some(w)).collect();
        let old_names: Vec<String> = self.config.accounts.keys().cloned().collect();
        let mut next_workers = Vec::new();
        let mut started = started.into_iter().peekable();
        for (i, account) in order.iter().enumerate() {
            match kept[i] {
                Some(at) => {
                    let handle = old[at].take().expect("each kept worker is taken once");
                    let parts = crate::messages::ReconfigParts {
                        account: account.clone(),
                        monitor: config.monitor.clone(),
                        login: config.login.clone(),
                    };
                    let _ = handle
                        .commands
                        .send(Command::Reload(crate::messages::Reconfig(Arc::new(parts))))
                        .await;
                    next_workers.push((account.name.clone(), handle));
                }
                None => {
                    let (_, handle) = started.next().expect("a new worker for each new account");
                    if old_names.contains(&account.name) {
                        said.push(format!(
                            "account {} restarts on its new broker or token file",
                            account.name
                        ));
                    } else {
                        said.push(format!("account {} added", account.name));
                    }
                    next_workers.push((account.name.clone(), handle));
                }
            }
        }
        // Removed (or replaced) workers stop after their current step, in the background.
        for handle in old.into_iter().flatten() {
            let _ = handle.commands.send(Command::Shutdown).await;
            tokio::spawn(async move {
                if tokio::time::timeout(WORKER_GRACE, handle.task)
                    .await
                    .is_err()
                {
                    warn!(
                        "a stopped worker did not end within {}s",
                        WORKER_GRACE.as_secs()
                    );
                }
            });
        }
        for name in &old_names {
            if !order.iter().any(|a| a.name == *name)
                && self.options.only.as_ref().is_none_or(|o| o == name)
            {
                said.push(format!("account {name} removed"));
            }
        }
        self._files = files;
        self.clock_watch.abort();
        self.clock_watch = tokio::spawn(watch_clock(self.clock.clone(), wakes.clone()));
        if let Some(api) = &self.api_shared {
            let accounts = next_workers
                .iter()
                .zip(&order)
                .map(|((name, w), account)| api_account(name, w, account, config))
                .collect();
            *api.accounts.write().unwrap_or_else(|e| e.into_inner()) = accounts;
            *api.thresholds.write().unwrap_or_else(|e| e.into_inner()) = config.thresholds();
            // Open event streams follow the old set of workers: end them (clients reconnect).
            if !said.is_empty() {
                api.generation.send_modify(|g| *g += 1);
            }
        }
        if config.notifications != self.config.notifications {
            let fresh = alert_sender(&config.notifications);
            let stale = std::mem::replace(
                &mut *self.alerts.lock().unwrap_or_else(|e| e.into_inner()),
                fresh,
            );
            tokio::spawn(stale.close(ALERT_GRACE));
            said.push("alert channels replaced".into());
        }
        let server_changed = config.server.listen != self.config.server.listen
            || config.server.allow_remote != self.config.server.allow_remote
            || config
                .server
                .api_key
                .as_ref()
                .map(|k| k.expose().to_string())
                != self
                    .config
                    .server
                    .api_key
                    .as_ref()
                    .map(|k| k.expose().to_string());
        if server_changed {
            warn!(
                "server: settings take effect at the next restart; the API keeps its address and key until then"
            );
        }
        if config.log.level != self.config.log.level || config.log.file != self.config.log.file {
            warn!("log: settings take effect at the next restart");
        }
        self.workers = next_workers;
        self.wakes = wakes;
        self.config = config.clone();
        Ok(said)
    }

    /// Where the HTTP API listens, when it runs.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().map(|a| a.addr)
    }

    /// Where the HTTP API stands for this process.
    pub fn api(&self) -> &Api {
        &self.api_state
    }

    /// Stop the API, the workers (after their current step) and the alert channels (after
    /// the alerts already raised went out, a few seconds at most). True when everything
    /// stopped in time.
    pub async fn shutdown(self) -> bool {
        self.clock_watch.abort();
        if let Some(api) = self.api {
            api.shutdown().await;
        }
        for (_, w) in &self.workers {
            let _ = w.commands.send(Command::Shutdown).await;
        }
        let all = async {
            for (name, w) in self.workers {
                if let Err(e) = w.task.await {
                    error!(account = %name, "the worker ended badly: {e}");
                }
            }
        };
        let stopped = tokio::time::timeout(WORKER_GRACE, all).await.is_ok();
        if !stopped {
            warn!("workers did not stop within {}s", WORKER_GRACE.as_secs());
        }
        // The workers' senders are gone: the forwarder ends once it passed on the last alert.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.forwarder).await;
        let alerts = std::mem::replace(
            &mut *self.alerts.lock().unwrap_or_else(|e| e.into_inner()),
            AlertSender::disabled(),
        );
        alerts.close(ALERT_GRACE).await;
        info!("stopped");
        stopped
    }
}

/// Wake every worker when the wall clock jumps against the monotonic one (a laptop resumed
/// from suspend, an NTP step): their naps were measured on the monotonic clock, and the
/// token's times on the wall clock. One look a minute for the whole process.
async fn watch_clock(clock: Arc<dyn Clock>, wakes: Vec<Arc<Notify>>) {
    let mut wall = clock.now();
    let mut mono = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(CLOCK_WATCH).await;
        let (w, m) = (clock.now(), tokio::time::Instant::now());
        let elapsed = chrono::Duration::from_std(m - mono).unwrap_or_default();
        if ((w - wall) - elapsed).abs() > CLOCK_JUMP {
            info!("The clock jumped (suspend or a clock change); looking at every token again");
            for wake in &wakes {
                wake.notify_one();
            }
        }
        (wall, mono) = (w, m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TokioClock;
    use std::sync::Mutex;

    /// Follows tokio's (paused) clock, plus jumps the test makes.
    struct JumpClock {
        base: TokioClock,
        jumped: Mutex<chrono::Duration>,
    }

    impl Clock for JumpClock {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            self.base.now() + *self.jumped.lock().unwrap()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_jump_wakes_every_worker_and_a_steady_clock_none() {
        let clock = Arc::new(JumpClock {
            base: TokioClock::starting_at(chrono::Utc::now()),
            jumped: Mutex::new(chrono::Duration::zero()),
        });
        let wakes = vec![Arc::new(Notify::new()), Arc::new(Notify::new())];
        let task = tokio::spawn(watch_clock(clock.clone(), wakes.clone()));
        // The wall clock keeps pace with the monotonic one: nobody is woken.
        tokio::time::sleep(CLOCK_WATCH * 3 + Duration::from_secs(1)).await;
        for w in &wakes {
            let woken = tokio::time::timeout(Duration::from_millis(1), w.notified()).await;
            assert!(woken.is_err(), "woken without a jump");
        }
        // A laptop resumes after an hour asleep: the wall clock is an hour ahead.
        *clock.jumped.lock().unwrap() = chrono::Duration::hours(1);
        tokio::time::sleep(CLOCK_WATCH).await;
        for w in &wakes {
            tokio::time::timeout(Duration::from_secs(1), w.notified())
                .await
                .expect("every worker is woken after a jump");
        }
        task.abort();
    }
}
