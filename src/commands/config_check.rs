//! `tokenwatch config check`: load, validate, and print the effective config, secrets masked.

use super::EXIT_CONFIG;
use crate::config::{Config, ConfigError};

pub(super) fn run(loaded: Result<Config, ConfigError>) -> u8 {
    match loaded {
        Ok(config) => {
            print!("{}", config.to_masked_yaml());
            for note in notes(&config) {
                eprintln!("{note}");
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

/// What `config check` notes about a configuration that loads: keys an account's logins
/// need and lack, and the trading calendar's coverage.
pub(super) fn notes(config: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    for account in config.accounts.values() {
        if let Some(note) = missing_app_id(account) {
            notes.push(note);
        }
    }
    // Each Angel One account's keys: what its renewals need and lacks.
    for a in config.accounts.values() {
        if a.broker != crate::brokers::Broker::Angel {
            continue;
        }
        let missing = crate::brokers::AngelUser::of(&a.angel).missing(a.renew.strategy);
        if !missing.is_empty() {
            notes.push(format!(
                "note: account \"{}\" (Angel One, renew.strategy {}) cannot log in without: {}; set them in the configuration or the environment",
                a.name,
                a.renew.strategy,
                missing.join(", ")
            ));
        }
    }
    for note in crate::brokers::dhan::missing_notes(config) {
        notes.push(format!("note: {note}"));
    }
    let today = crate::token::expiry::to_ist(chrono::Utc::now()).date_naive();
    notes.extend(config.calendar().coverage_warnings(today));
    notes
}

/// The note for an account whose broker app id is not set: without it, tokenwatch can
/// neither log in nor check the token with the API.
fn missing_app_id(account: &crate::config::AccountConfig) -> Option<String> {
    use crate::brokers::Broker;
    let (key, var, set) = match account.broker {
        Broker::Upstox => (
            "upstox.client_id",
            "UPSTOX_CLIENT_ID",
            account.upstox.client_id.is_some(),
        ),
        Broker::Kite => (
            "kite.api_key",
            "KITE_API_KEY",
            account.kite.api_key.is_some(),
        ),
        Broker::Fyers => (
            "fyers.client_id",
            "FYERS_CLIENT_ID",
            account.fyers.client_id.is_some(),
        ),
        _ => return None,
    };
    if set {
        return None;
    }
    let whose = match account.name.as_str() {
        crate::config::DEFAULT_ACCOUNT => String::new(),
        name => format!(" for account \"{name}\""),
    };
    Some(format!(
        "note: {key} is not set{whose}; it is needed to log in and to validate with the API \
         (set {var} or {key})"
    ))
}
