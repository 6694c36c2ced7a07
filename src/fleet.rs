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
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// How long in-flight alerts may take to go out at shutdown.
const ALERT_GRACE: Duration = Duration::from_secs(5);
/// How long workers get to finish their current step at shutdown.
const WORKER_GRACE: Duration = Duration::from_secs(20);
/// Accounts' first checks are this far apart, so a thousand accounts do not ask the API in
/// the same second (40 a second; a thousand accounts are all checked within 25 s).
const FIRST_CHECK_SPACING: Duration = Duration::from_millis(25);

/// How to start.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Logins complete in-process (the demo's simulator approves at once).
    pub builtin_browser: bool,
    /// Run this account only (`--account` for the daemon); all accounts when `None`.
    pub only: Option<String>,
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
    alerts: AlertSender,
    forwarder: tokio::task::JoinHandle<()>,
    _files: crate::filewatch::TokenFiles,
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
    // Bind first: a port in use stops the start before any worker acts.
    let listener = match config.server.listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let mut workers = Vec::new();
    let (worker_tx, mut worker_rx) = mpsc::channel::<Event>(256);
    for (i, account) in order.iter().enumerate() {
        let core =
            Core::new((*account).clone(), config.monitor.clone(), clock.clone()).map_err(|e| {
                StartError::Other(format!("cannot start account {}: {e}", account.name))
            })?;
        let core = core
            .with_login(config.login.clone())
            .with_builtin_browser(options.builtin_browser);
        let start = worker::Start {
            first_check_delay: FIRST_CHECK_SPACING.saturating_mul(i as u32),
        };
        workers.push((
            account.name.clone(),
            worker::spawn_with(core, worker_tx.clone(), start),
        ));
    }
    drop(worker_tx);
    let files = crate::filewatch::watch(
        order
            .iter()
            .zip(&workers)
            .map(|(account, (_, w))| (account.token.path.clone(), w.wake.clone()))
            .collect(),
    );

    let alerter = Alerter::new(&config.notifications);
    let alerts = if alerter.is_empty() {
        AlertSender::disabled()
    } else {
        alerter.spawn()
    };
    let (out_tx, out_rx) = mpsc::channel::<Event>(256);
    let to_alerts = alerts.clone();
    let forwarder = tokio::spawn(async move {
        while let Some(event) = worker_rx.recv().await {
            if let Event::Alert(alert) = &event {
                to_alerts.send(alert.clone());
            }
            // A caller that stopped reading is shutting down.
            let _ = out_tx.send(event).await;
        }
    });

    let api = match listener {
        Some(listener) => {
            let state = ApiState {
                accounts: workers
                    .iter()
                    .zip(&order)
                    .map(|((name, w), account)| api::Account {
                        name: name.clone(),
                        commands: w.commands.clone(),
                        status: w.status.clone(),
                        login_problem: LoginSettings::new(account, &config.login, true)
                            .err()
                            .map(|e| e.to_string()),
                    })
                    .collect(),
                thresholds: config.thresholds(),
                api_key: config.server.api_key.clone(),
                clock: clock.clone(),
                metrics: Metrics::new(),
                loopback_only: !config.server.allow_remote,
            };
            match api::serve_on(listener, state).await {
                Ok(server) => Some(server),
                Err(e) => {
                    let fleet = Fleet {
                        workers,
                        api: None,
                        alerts,
                        forwarder,
                        _files: files,
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
            alerts,
            forwarder,
            _files: files,
        },
        out_rx,
    ))
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
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
        StartError::Other(format!(
            "cannot listen on server.listen {addr}: {why}; choose another address in server.listen"
        ))
    })
}

impl Fleet {
    /// Where the HTTP API listens, when it runs.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().map(|a| a.addr)
    }

    /// Stop the API, the workers (after their current step) and the alert channels (after
    /// the alerts already raised went out, a few seconds at most). True when everything
    /// stopped in time.
    pub async fn shutdown(self) -> bool {
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
        self.alerts.close(ALERT_GRACE).await;
        info!("stopped");
        stopped
    }
}
