//! `tokenwatch refresh`: validate now, renew if due or invalid; exit 0 only with a valid
//! token at the end.

use super::{EXIT_CONFIG, runtime, status::print_token_lines};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::schedule::Renewal;
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
            _ => Some(core.renew(true).await),
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
