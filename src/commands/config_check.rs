//! `tokenwatch config check`: load, validate, and print the effective config, secrets masked.

use super::EXIT_CONFIG;
use crate::config::{Config, ConfigError};

pub(super) fn run(loaded: Result<Config, ConfigError>) -> u8 {
    match loaded {
        Ok(config) => {
            print!("{}", config.to_masked_yaml());
            if config.account.upstox.client_id.is_none() {
                eprintln!(
                    "note: upstox.client_id is not set; it is needed to log in and to validate with the API \
                     (set UPSTOX_CLIENT_ID or upstox.client_id)"
                );
            }
            for note in crate::brokers::dhan::missing_notes(&config) {
                eprintln!("note: {note}");
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
