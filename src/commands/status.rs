//! `tokenwatch status [--json] [--validate]`: token health with Nagios exit codes. Without
//! `--validate` it only reads the token file; with it, it also asks the API (one round with
//! retries).

use super::runtime;
use crate::brokers::ApiError;
use crate::cli::Cli;
use crate::clock::SystemClock;
use crate::config::{Config, ConfigError, DEFAULT_ACCOUNT};
use crate::status::{LastCheck, LastCheckReport, ReportState, StatusReport, ist_rfc3339};
use crate::token::expiry::to_ist;
use crate::token::file::loose_mode;
use crate::token::file::read_account_token;
use crate::token::store::TokenStore;
use crate::token::verdict::read_verdict;
use crate::token::{Token, TokenState};
use crate::worker::{CHECK_LIMIT, CheckOutcome, Core};
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub(super) fn run(
    cli: &Cli,
    loaded: Result<Config, ConfigError>,
    json: bool,
    validate: bool,
) -> u8 {
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
    let path = &config.account.token.path;
    let read = read_account_token(path, config.account.broker);
    // One `now` for the state, the exit code and every line printed.
    let now = Utc::now();
    let mut report = StatusReport::new(
        &config.account.name,
        config.account.broker,
        path,
        &read,
        now,
        config.thresholds(),
    );
    // What the API last said about this token, whichever tokenwatch process asked (with
    // --validate, the answer it gets now says it).
    if let (Ok(Some(token)), false) = (&read, validate) {
        match read_verdict(path, &token.access_token) {
            Ok(Some(answer)) => report.apply_answer(&answer),
            Ok(None) => {}
            Err(why) => eprintln!("tokenwatch: warning: {why}"),
        }
    }
    let validation = match (&read, validate) {
        (Ok(Some(_)), true) => Some(check_once(&config)),
        _ => None,
    };
    if let Some((validation, at)) = &validation {
        report.apply_check_outcome(validation, *at);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return report.exit_code();
    }
    print_human(
        &config,
        &read,
        &report,
        validation.as_ref().map(|(v, _)| v),
        now,
    );
    report.exit_code()
}

/// One validation round against the API.
fn check_once(config: &Config) -> (CheckOutcome, DateTime<Utc>) {
    let clock = Arc::new(SystemClock);
    let outcome = runtime().and_then(|rt| {
        rt.block_on(async {
            let mut core = Core::new(config.account.clone(), config.monitor.clone(), clock)
                .map_err(|e| e.to_string())?;
            Ok(core.check_within(CHECK_LIMIT).await)
        })
    });
    let validation = outcome.unwrap_or_else(|why| {
        CheckOutcome::Unreachable(crate::brokers::ApiError::Transient {
            reason: why,
            retry_after: None,
        })
    });
    (validation, Utc::now())
}

fn print_human(
    config: &Config,
    read: &Result<Option<Token>, crate::token::TokenFileError>,
    report: &StatusReport,
    validation: Option<&CheckOutcome>,
    now: DateTime<Utc>,
) {
    let account = &config.account.name;
    let path = &config.account.token.path;
    match read {
        Err(e) => {
            println!("UNKNOWN · {account}");
            println!("{e}");
            println!("Fix the file, or replace it with a valid backup; nothing was changed.");
        }
        Ok(None) => {
            println!("{} · {account}", TokenState::Missing.label());
            println!("Broker: {}", config.account.broker.display_name());
            println!("No token file at {}", path.display());
            let store = TokenStore::new(path.clone(), config.account.token.backups.clone())
                .with_broker(config.account.broker);
            if let Some((backup, _)) = store.best_backup(now) {
                println!(
                    "A valid backup exists at {} (copy it to the token path to use it).",
                    backup.display()
                );
            }
        }
        Ok(Some(token)) => {
            let label = match report.state {
                ReportState::Invalid => TokenState::Invalid.label(),
                ReportState::Unknown => "UNKNOWN",
                _ => TokenState::by_time(token.expires_at, now, config.thresholds()).label(),
            };
            println!("{}", heading(label, account, Some(token)));
            println!("Broker: {}", token.broker.display_name());
            print_token_lines(token, now);
            match validation {
                // No check now: what the API said when a tokenwatch last asked.
                None => {
                    if let Some(c) = &report.last_check {
                        let at = chrono::DateTime::parse_from_rfc3339(&c.at)
                            .map(|t| t.format("%a %d %b %H:%M IST").to_string())
                            .unwrap_or_else(|_| c.at.clone());
                        match (c.result, &c.code) {
                            ("valid", _) => println!("API: ✓ valid at {at}"),
                            (_, Some(code)) => {
                                println!("API: ✗ rejected at {at} ({code}); log in again")
                            }
                            _ => println!("API: ✗ rejected at {at}; log in again"),
                        }
                    }
                }
                Some(CheckOutcome::Valid(_)) => {
                    println!("API: ✓ valid at {} IST", to_ist(now).format("%H:%M"))
                }
                Some(CheckOutcome::Rejected(e)) => println!("API: ✗ rejected: {e}; log in again"),
                Some(CheckOutcome::Unreachable(e)) => println!("API: ? could not check: {e}"),
                Some(CheckOutcome::NoToken) => {}
            }
            println!("File: {}", path.display());
            if let Some(mode) = loose_mode(path) {
                println!(
                    "Warning: the token file is readable by other users (mode {mode:03o}); run: chmod 600 {}",
                    path.display()
                );
            }
        }
    }
}

/// The countdown, expiry, issue time and expiry source of a token.
/// The first line of `status` and `refresh`: `HEALTHY · default (AB1234 Jane Doe)`.
pub(super) fn heading(label: &str, account: &str, token: Option<&Token>) -> String {
    let who = match token.map(|t| (&t.user_id, &t.user_name)) {
        Some((Some(id), Some(name))) => format!(" ({id} {name})"),
        Some((Some(id), None)) => format!(" ({id})"),
        _ => String::new(),
    };
    format!("{label} · {account}{who}")
}

pub(super) fn print_token_lines(token: &Token, now: DateTime<Utc>) {
    let expiry = to_ist(token.expires_at).format("%a %d %b %H:%M IST");
    if token.expires_at <= now {
        println!("Token: EXPIRED · expired {expiry}");
    } else {
        println!(
            "Token: {} left · expires {expiry}",
            crate::timefmt::human(token.remaining(now))
        );
    }
    if let Some(issued) = token.issued_at {
        println!("Issued: {}", to_ist(issued).format("%a %d %b %H:%M IST"));
    }
    println!(
        "Expiry from: {}",
        token.expiry_source.describe(token.broker)
    );
}

impl StatusReport {
    /// Fold in the outcome of an API validation at `at`.
    pub(crate) fn apply_check_outcome(&mut self, v: &CheckOutcome, at: DateTime<Utc>) {
        match v {
            CheckOutcome::NoToken => {}
            CheckOutcome::Valid(_) => {
                self.api_validated = true;
                self.last_check_at = LastCheck(Some(ist_rfc3339(at)));
                self.last_check = Some(LastCheckReport {
                    at: ist_rfc3339(at),
                    result: "valid",
                    code: None,
                });
            }
            // Once its time is up a token is expired, whatever the API adds (as in the worker).
            CheckOutcome::Rejected(e) => {
                let code = match e {
                    ApiError::Invalid { code, .. } => code.clone(),
                    _ => None,
                };
                self.last_check_at = LastCheck(Some(ist_rfc3339(at)));
                self.last_check = Some(LastCheckReport {
                    at: ist_rfc3339(at),
                    result: "invalid",
                    code,
                });
                // Once its time is up a token is expired, whatever the API adds (as in the
                // worker).
                if self.state != ReportState::Expired {
                    self.state = ReportState::Invalid;
                    self.valid = false;
                    self.error = Some(e.to_string());
                }
            }
            CheckOutcome::Unreachable(e) => {
                self.state = ReportState::Unknown;
                self.error = Some(format!("cannot validate with the API: {e}"));
            }
        }
    }
}
