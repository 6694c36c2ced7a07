//! `tokenwatch refresh`: validate now, renew if due or invalid; exit 0 only with a valid
//! token at the end.

use super::{EXIT_CONFIG, runtime, status::print_token_lines};
use crate::auth::login::LoginSettings;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, Strategy};
use crate::schedule::Renewal;
use crate::token::expiry::to_ist;
use crate::worker::{Core, RenewOutcome, Validation};
use std::sync::Arc;

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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    rt.block_on(async {
        let mut core = match Core::new(
            config.account.clone(),
            config.monitor.clone(),
            clock.clone(),
        ) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tokenwatch: {e}");
                return 1;
            }
        };
        core.restore().await;
        let validation = core.validate().await;
        let now = clock.now();
        let renewed = match core.renewal(now) {
            Renewal::NotDue { .. } | Renewal::Disabled => None,
            _ => Some(
                match (config.account.renew.strategy, core.boundary_note(now)) {
                    (Strategy::Browser | Strategy::TokenRequest, Some(note)) => {
                        RenewOutcome::NotUseful(note)
                    }
                    (Strategy::Browser, None) => by_login(&mut core, &config, clock.clone()).await,
                    (Strategy::TokenRequest, None) => {
                        by_token_request(&mut core, config.login.timeout).await
                    }
                    (Strategy::Command | Strategy::None, _) => core.renew(true).await,
                },
            ),
        };
        let now = clock.now();
        let state = core.state(now);
        println!("{} · {}", state.label(), core.account_name());
        if let Some(token) = core.token() {
            print_token_lines(token, now);
        } else if let Some(e) = core.token_error() {
            println!("{e}");
        }
        match (&validation, &renewed) {
            (_, Some(RenewOutcome::Renewed)) => {
                println!("Renewed: a new token was verified and stored.")
            }
            (
                _,
                Some(
                    RenewOutcome::NeedsUser(why)
                    | RenewOutcome::NotUseful(why)
                    | RenewOutcome::Failed(why),
                ),
            ) => {
                println!("Not renewed: {why}")
            }
            (Validation::Valid(_), None) => println!("API: ✓ valid; renewal is not due yet."),
            (Validation::Unreachable(e), None) => println!("API: ? could not check: {e}"),
            (Validation::Rejected(e), None) => println!("API: ✗ rejected: {e}"),
            (Validation::NoToken, None) => println!("No token, and renew.strategy is none."),
        }
        let api_rejected = matches!(core.verdict(), crate::schedule::Verdict::Invalid(_));
        if state.is_usable() && !api_rejected {
            0
        } else {
            1
        }
    })
}

/// Strategy browser: the same login as `tokenwatch login`.
async fn by_login(core: &mut Core, config: &Config, clock: Arc<dyn Clock>) -> RenewOutcome {
    let settings = match LoginSettings::new(&config.account, &config.login, true) {
        Ok(s) => s,
        Err(e) => return RenewOutcome::Failed(e.to_string()),
    };
    match super::login::interactive_login(core, settings, clock).await {
        Ok(()) => RenewOutcome::Renewed,
        Err(e) => RenewOutcome::Failed(e),
    }
}

/// Strategy token-request: ask Upstox, then wait for the approved token on the notifier.
async fn by_token_request(core: &mut Core, wait: std::time::Duration) -> RenewOutcome {
    let _renewing = match core.store().login_lock() {
        Ok(guard) => guard,
        Err(e) => return RenewOutcome::Failed(e.to_string()),
    };
    let (tx, mut deliveries) = tokio::sync::mpsc::channel(4);
    let server = match core.serve_notifier(tx).await {
        Ok(Some(server)) => server,
        Ok(None) => {
            return RenewOutcome::Failed(
                "renew.notifier_listen and renew.notifier_path must be set for strategy token-request".into(),
            );
        }
        Err(e) => return RenewOutcome::Failed(e),
    };
    let ack = match core.request_token().await {
        Ok(ack) => ack,
        Err(e) => {
            server.shutdown().await;
            return RenewOutcome::Failed(format!("the token request failed: {e}"));
        }
    };
    let until = ack
        .authorization_expiry
        .map(|t| format!(" (before {} IST)", to_ist(t).format("%H:%M")))
        .unwrap_or_default();
    println!(
        "Approve the token request in the Upstox app or on WhatsApp{until}; waiting up to {} on {}...",
        humantime::format_duration(wait),
        server.addr
    );
    let outcome = tokio::select! {
        token = deliveries.recv() => match token {
            Some(token) => match core.adopt_verified(token).await {
                Ok(()) => RenewOutcome::Renewed,
                Err(e) => RenewOutcome::Failed(format!("cannot store the approved token: {e}")),
            },
            None => RenewOutcome::Failed("the notifier stopped".into()),
        },
        _ = tokio::time::sleep(wait) => RenewOutcome::Failed(format!(
            "no approved token arrived within {}; approve the request on the phone, or log in",
            humantime::format_duration(wait)
        )),
        _ = tokio::signal::ctrl_c() => RenewOutcome::Failed("cancelled".into()),
    };
    server.shutdown().await;
    outcome
}
