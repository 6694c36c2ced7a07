//! `tokenwatch token`: the access token alone on stdout, for `$(...)`.

use crate::config::{Config, ConfigError};
use crate::exit::EXIT_NO_TOKEN;
use crate::token::TokenState;
use crate::token::expiry::to_ist;
use crate::token::file::read_account_token;
use crate::token::verdict::{CheckResult, read_verdict};
use chrono::Utc;
use std::io::Write;

pub(super) fn run(loaded: Result<Config, ConfigError>) -> u8 {
    let config = match super::config_or_exit(loaded) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let path = &config.account.token.path;
    let token = match read_account_token(path, config.account.broker) {
        Ok(Some(t)) => t,
        Ok(None) => {
            eprintln!(
                "tokenwatch: no valid token: there is no token file at {}; log in to get one",
                path.display()
            );
            return EXIT_NO_TOKEN;
        }
        Err(e) => {
            eprintln!("tokenwatch: no valid token: {e}");
            return EXIT_NO_TOKEN;
        }
    };
    let state = TokenState::by_time(token.expires_at, Utc::now(), config.thresholds());
    if !state.is_usable() {
        eprintln!(
            "tokenwatch: no valid token: the token in {} expired {}; log in again",
            path.display(),
            to_ist(token.expires_at).format("%a %d %b %H:%M IST")
        );
        return EXIT_NO_TOKEN;
    }
    // The broker rejected this very token (this process or another asked): it is not handed out.
    match read_verdict(path, &token.access_token) {
        Ok(Some(answer)) if answer.result == CheckResult::Invalid => {
            let code = answer.code.map(|c| format!(" ({c})")).unwrap_or_default();
            eprintln!(
                "tokenwatch: no valid token: {} rejected the token in {} at {}{code}; log in again",
                token.broker.display_name(),
                path.display(),
                to_ist(answer.at).format("%a %d %b %H:%M IST")
            );
            return EXIT_NO_TOKEN;
        }
        Ok(_) => {}
        Err(why) => eprintln!("tokenwatch: warning: {why}"),
    }
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", token.access_token.expose()).and_then(|_| out.flush()) {
        Ok(()) => 0,
        // A closed pipe: the reader went away; nothing useful to add.
        Err(_) => EXIT_NO_TOKEN,
    }
}
