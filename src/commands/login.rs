//! `tokenwatch login [--no-browser]`: the OAuth login in the terminal. The browser
//! callback and a pasted address race; whichever comes first wins.

use super::EXIT_CONFIG;
use crate::auth::login::{self, LoginError, LoginProgress, LoginSettings};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, Strategy};
use crate::token::expiry::to_ist;
use crate::worker::core::Lock;
use crate::worker::{CheckOutcome, Core, RenewOutcome};
use std::io::BufRead;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(super) fn run(loaded: Result<Config, ConfigError>, no_browser: bool) -> u8 {
    let (config, rt) = match super::config_and_runtime(loaded) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    rt.block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut core = match Core::new(
            config.account.clone(),
            config.monitor.clone(),
            clock.clone(),
        ) {
            Ok(c) => c
                .with_login(config.login.clone())
                .keep_history(config.history.keep),
            Err(e) => {
                eprintln!("tokenwatch: {e}");
                return 1;
            }
        };
        if core.logs_in_headless() {
            return headless_login(&mut core).await;
        }
        let settings = match core.login_settings(!no_browser) {
            Ok(s) => s,
            Err(e @ (LoginError::Config(_) | LoginError::Listen(_))) => {
                eprintln!("tokenwatch: {e}");
                return EXIT_CONFIG;
            }
            Err(e) => {
                eprintln!("tokenwatch: {e}");
                return 1;
            }
        };
        let since = clock.now();
        let result = interactive_login(&mut core, settings, clock).await;
        let ended = match &result {
            Ok(()) => Ok(core.token().map_or(since, |t| t.expires_at)),
            Err(e) => Err(e.as_str()),
        };
        core.record_renewal(Strategy::Browser, true, since, ended);
        core.record_calls(true);
        match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("tokenwatch: {e}");
                1
            }
        }
    })
}

/// Run a login in the terminal, store the token, validate it. Shared with `refresh`.
pub(super) async fn interactive_login(
    core: &mut Core,
    settings: LoginSettings,
    clock: Arc<dyn Clock>,
) -> Result<(), String> {
    let account = settings.account.clone();
    let broker = settings.broker;
    let (paste_tx, paste_rx) = mpsc::channel(4);
    // Pasted addresses come from stdin, on a thread of its own (reading blocks).
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            if paste_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let (_cancel_tx, cancel_rx) = oneshot::channel();
    let (progress_tx, mut progress) = mpsc::channel(16);
    let flow = login::run(
        settings,
        core.store().clone(),
        clock,
        paste_rx,
        cancel_rx,
        progress_tx,
    );
    tokio::pin!(flow);
    let result = loop {
        tokio::select! {
            r = &mut flow => break r,
            Some(p) = progress.recv() => show(&account, broker, p),
        }
    };
    while let Ok(p) = progress.try_recv() {
        show(&account, broker, p);
    }
    let obtained = result.map_err(|e| e.to_string())?;
    let exp = obtained.token.expires_at;
    match core.adopt_login(obtained.token.clone()).await {
        Ok(validation) => {
            obtained.finish(Ok(())).await;
            println!(
                "Logged in: token stored at {}, valid until {} IST.",
                core.store().path().display(),
                to_ist(exp).format("%a %d %b %H:%M")
            );
            match validation {
                CheckOutcome::Valid(_) => println!("API: ✓ the new token works."),
                CheckOutcome::Rejected(e) => {
                    return Err(format!(
                        "the new token was rejected right away: {e}; log in again"
                    ));
                }
                CheckOutcome::Unreachable(e) => {
                    println!("API: ? could not check the new token yet: {e}")
                }
                CheckOutcome::NoToken => {}
            }
            Ok(())
        }
        Err(e) => {
            obtained
                .finish(Err(format!("tokenwatch could not store the token: {e}")))
                .await;
            Err(format!("logged in, but the token could not be stored: {e}"))
        }
    }
}

/// Log in through the broker's API with the PIN and a TOTP code (no browser), store the
/// token, and say so. The renewal lock is held meanwhile, as for any renewal.
async fn headless_login(core: &mut Core) -> u8 {
    let broker = core.broker();
    let account = core.account_name().to_string();
    let _lock = match core.renewal_lock() {
        Lock::Held(lock) => lock,
        Lock::Busy(holder) => {
            eprintln!(
                "tokenwatch: another tokenwatch is renewing this token ({holder}); its token is \
                 used when it lands: run tokenwatch status in a moment"
            );
            return 1;
        }
        Lock::Broken(why) => {
            eprintln!("tokenwatch: cannot log in: {why}");
            return 1;
        }
    };
    println!(
        "Logging in to {} for account \"{account}\" with the PIN and a TOTP code (no browser)...",
        broker.display_name()
    );
    let since = core.clock().now();
    let result = core.headless_login_call().await;
    let outcome = core.take_renewal(result).await;
    core.record_round(Strategy::Totp, true, since, &outcome);
    core.record_calls(true);
    match outcome {
        RenewOutcome::Renewed => {
            if let Some(t) = core.token() {
                println!(
                    "Logged in: token stored at {}, valid until {} IST.",
                    core.store().path().display(),
                    to_ist(t.expires_at).format("%a %d %b %H:%M")
                );
            }
            println!("API: ✓ the new token works.");
            0
        }
        RenewOutcome::Failed(why) | RenewOutcome::NotUseful(why) => {
            eprintln!("tokenwatch: login failed: {why}");
            1
        }
    }
}

fn show(account: &str, broker: crate::brokers::Broker, p: LoginProgress) {
    match p {
        LoginProgress::Waiting {
            url,
            listening,
            until,
            browser,
        } => {
            println!(
                "Log in to {} for account \"{account}\":",
                broker.display_name()
            );
            println!();
            println!("  {url}");
            println!();
            match browser {
                Ok(how) => println!("Opened the login page with {how}."),
                Err(why) => println!("Open the address above in a browser ({why})."),
            }
            let listen: Vec<String> = listening.iter().map(|a| a.to_string()).collect();
            println!(
                "Waiting for the browser on {} until {} IST.",
                listen.join(" and "),
                to_ist(until).format("%H:%M:%S")
            );
            println!(
                "If the browser runs on another machine, after logging in, paste the address your \
                 browser was sent to here and press Enter:"
            );
        }
        LoginProgress::PasteRejected(why) => println!("Not accepted: {why}"),
        LoginProgress::Exchanging => println!("Got the login code; exchanging it for a token..."),
    }
}
