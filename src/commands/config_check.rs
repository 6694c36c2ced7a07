//! `tokenwatch config check`: load, validate, and print the effective config, secrets masked.

use super::EXIT_CONFIG;
use crate::config::{Config, ConfigError};

pub(super) fn run(loaded: Result<Config, ConfigError>) -> u8 {
    match loaded {
        Ok(config) => {
            print!("{}", config.to_masked_yaml());
            // Each Angel One account's keys: what its renewals need and lacks.
            for a in config.accounts.values() {
                if a.broker != crate::brokers::Broker::Angel {
                    continue;
                }
                let missing = crate::brokers::AngelUser::of(&a.angel).missing(a.renew.strategy);
                if !missing.is_empty() {
                    eprintln!(
                        "note: account \"{}\" (Angel One, renew.strategy {}) cannot log in without: {}; set them in the configuration or the environment",
                        a.name,
                        a.renew.strategy,
                        missing.join(", ")
                    );
                }
            }
            if config.account.broker != crate::brokers::Broker::Angel
                && config.account.upstox.client_id.is_none()
            {
                eprintln!(
                    "note: upstox.client_id is not set; it is needed to log in and to validate with the API \
                     (set UPSTOX_CLIENT_ID or upstox.client_id)"
                );
            }
            let today = crate::token::expiry::to_ist(chrono::Utc::now()).date_naive();
            for warning in config.calendar().coverage_warnings(today) {
                eprintln!("{warning}");
            }
            eprintln!("configuration OK");
            0
        }
        Err(e) => {
            eprintln!("tokenwatch: config error: {e}");
            EXIT_CONFIG
        }
    }
}
