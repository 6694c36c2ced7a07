//! `tokenwatch daemon`: the worker for every configured account, without a UI. Logs go to
//! stderr; SIGINT or SIGTERM stop it cleanly (exit 0).

use super::{EXIT_CONFIG, runtime};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::worker::{self, Command, Core, Event};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};

/// How long workers get to finish their current step after a signal.
const STOP_GRACE: Duration = Duration::from_secs(20);

pub(super) fn run(loaded: Result<Config, ConfigError>) -> u8 {
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tokenwatch: config error: {e}");
            return EXIT_CONFIG;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokenwatch: {e}");
            return 1;
        }
    };
    let code = rt.block_on(serve(config));
    // A renew.command or hook still running on a blocking thread must not hold up the exit
    // (its time limit kills it anyway).
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(config: Config) -> u8 {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (events_tx, mut events) = tokio::sync::mpsc::channel::<Event>(256);
    let mut workers = Vec::new();
    for account in config.accounts.values() {
        match Core::new(account.clone(), config.monitor.clone(), clock.clone()) {
            Ok(core) => workers.push(worker::spawn(
                core.with_login(config.login.clone()),
                events_tx.clone(),
            )),
            Err(e) => {
                error!(account = %account.name, "Cannot start: {e}");
                return 1;
            }
        }
    }
    drop(events_tx);
    info!(
        "tokenwatch {} daemon running for {} account(s); stop with SIGTERM or Ctrl-C",
        env!("CARGO_PKG_VERSION"),
        workers.len()
    );
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            signal = &mut stop => {
                info!("{signal}: stopping");
                break;
            }
            // Workers log their own events; the daemon drains the channel so they never wait.
            event = events.recv() => if event.is_none() {
                error!("every worker stopped");
                return 1;
            },
        }
    }
    for w in &workers {
        let _ = w.commands.send(Command::Shutdown).await;
    }
    let all = futures_join(workers.into_iter().map(|w| w.task));
    match tokio::time::timeout(STOP_GRACE, all).await {
        Ok(()) => 0,
        Err(_) => {
            error!("workers did not stop within {}s", STOP_GRACE.as_secs());
            1
        }
    }
}

async fn futures_join(tasks: impl Iterator<Item = tokio::task::JoinHandle<()>>) {
    for t in tasks {
        if let Err(e) = t.await {
            error!("a worker ended badly: {e}");
        }
    }
}

/// Resolves with the signal's name on SIGINT or SIGTERM.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
