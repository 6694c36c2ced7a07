//! `tokenwatch daemon`: the worker for every configured account (or the one `--account`
//! names), its alerts and the HTTP API when `server.listen` is set, without a UI. Logs go to
//! stderr; SIGINT or SIGTERM stop it cleanly (exit 0); SIGHUP (`systemctl reload`) reads the
//! configuration again and applies it, or refuses a broken one and keeps running as before.

use super::{EXIT_CONFIG, runtime};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::fleet::{self, StartError};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};

pub(super) fn run(
    loaded: Result<Config, ConfigError>,
    only: Option<String>,
    reload: impl Fn() -> Result<Config, ConfigError>,
) -> u8 {
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            crate::commands::stderr_line(format_args!("tokenwatch: config error: {e}"));
            return EXIT_CONFIG;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            crate::commands::stderr_line(format_args!("tokenwatch: {e}"));
            return 1;
        }
    };
    let code = rt.block_on(serve(config, only, &reload));
    // A renew.command or hook still running on a blocking thread must not hold up the exit
    // (its time limit kills it anyway).
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(
    config: Config,
    only: Option<String>,
    reload: &dyn Fn() -> Result<Config, ConfigError>,
) -> u8 {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let options = fleet::Options {
        builtin_browser: false,
        only,
        // A service fails fast on a port in use (exit 1): systemd shows it and retries.
        api_elsewhere_ok: false,
    };
    // Taken over before anything starts: a reload asked for while the workers start must not
    // end the process (SIGHUP's default).
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let (mut fleet, mut events) = match fleet::start(&config, clock, options).await {
        Ok(started) => started,
        Err(StartError::Config(e)) => {
            error!("config error: {e}");
            return EXIT_CONFIG;
        }
        Err(StartError::Other(e)) => {
            error!("{e}");
            return 1;
        }
    };
    let api = fleet
        .api_addr()
        .map(|a| format!("; HTTP API on http://{a}"))
        .unwrap_or_default();
    info!(
        "tokenwatch {} daemon running for {} account(s){api}; stop with SIGTERM or Ctrl-C, reload the configuration with SIGHUP",
        env!("CARGO_PKG_VERSION"),
        fleet.workers.len()
    );
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut code = 0;
    loop {
        tokio::select! {
            signal = &mut stop => {
                info!("{signal}: stopping");
                break;
            }
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                info!("SIGHUP: reading the configuration again");
                match reload() {
                    Ok(new) => match fleet.reload(&new).await {
                        Ok(changes) if changes.is_empty() => info!("Configuration reloaded"),
                        Ok(changes) => info!("Configuration reloaded: {}", changes.join(", ")),
                        Err(e) => error!("Configuration not reloaded: {e}; the running configuration stays"),
                    },
                    Err(e) => error!("Configuration not reloaded: config error: {e}; the running configuration stays"),
                }
            }
            // Workers log their own events and alerts go out through the fleet; the daemon
            // drains the channel so nothing waits.
            event = events.recv() => if event.is_none() {
                error!("every worker stopped");
                code = 1;
                break;
            },
        }
    }
    drop(events);
    if !fleet.shutdown().await && code == 0 {
        code = 1;
    }
    code
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
