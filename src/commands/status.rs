//! `tokenwatch status [--json]`: read-only token health with Nagios exit codes.

use crate::cli::Cli;
use crate::config::{Config, ConfigError, DEFAULT_ACCOUNT};
use crate::status::StatusReport;
use crate::token::expiry::to_ist;
use crate::token::file::loose_mode;
use crate::token::store::TokenStore;
use crate::token::{TokenState, format_countdown, read_token_file};
use chrono::Utc;

pub(super) fn run(cli: &Cli, loaded: Result<Config, ConfigError>, json: bool) -> u8 {
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            let account = cli.account.as_deref().unwrap_or(DEFAULT_ACCOUNT);
            let report = StatusReport::config_error(account, format!("config error: {e}"));
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            }
            eprintln!("tokenwatch: config error: {e}");
            return report.exit_code();
        }
    };
    let now = Utc::now();
    let path = &config.account.token.path;
    let read = read_token_file(path);
    let report = StatusReport::new(&config.account.name, path, &read, now, config.thresholds());
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return report.exit_code();
    }

    let account = &config.account.name;
    match &read {
        Err(e) => {
            println!("UNKNOWN · {account}");
            println!("{e}");
            println!("Fix the file, or replace it with a valid backup; nothing was changed.");
        }
        Ok(None) => {
            println!("{} · {account}", TokenState::Missing.label());
            println!("No token file at {}", path.display());
            let store = TokenStore::new(path.clone(), config.account.token.backups.clone());
            if let Some((backup, _)) = store.best_backup(now) {
                println!(
                    "A valid backup exists at {} (copy it to the token path to use it).",
                    backup.display()
                );
            }
        }
        Ok(Some(token)) => {
            let state = TokenState::by_time(token.expires_at, now, config.thresholds());
            let who = match (&token.user_id, &token.user_name) {
                (Some(id), Some(name)) => format!(" ({id} {name})"),
                (Some(id), None) => format!(" ({id})"),
                _ => String::new(),
            };
            println!("{} · {account}{who}", state.label());
            let expiry = to_ist(token.expires_at).format("%a %d %b %H:%M IST");
            if state == TokenState::Expired {
                println!("Token: EXPIRED · expired {expiry}");
            } else {
                println!(
                    "Token: {} left · expires {expiry}",
                    format_countdown(token.remaining(now))
                );
            }
            if let Some(issued) = token.issued_at {
                println!("Issued: {}", to_ist(issued).format("%a %d %b %H:%M IST"));
            }
            println!("Expiry from: {}", token.expiry_source.describe());
            println!("File: {}", path.display());
            if let Some(mode) = loose_mode(path) {
                println!(
                    "Warning: the token file is readable by other users (mode {mode:03o}); run: chmod 600 {}",
                    path.display()
                );
            }
        }
    }
    report.exit_code()
}
