//! `tokenwatch history [--days N] [--json]`: the account's last days from its history, one
//! row per IST day: when and how the token was renewed, minutes it was not usable during
//! market hours, alerts and API calls. Reads files only; exit 0, or 78 on a config error.

use crate::config::{Config, ConfigError};
use crate::history::days::{Day, days};
use crate::history::{self, ist_day};
use chrono::Utc;
use serde::Serialize;
use std::path::Path;

/// The JSON `history --json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    account: &'a str,
    broker: &'a str,
    /// The folder of the account's history.
    folder: &'a Path,
    /// Lines that could not be read.
    skipped: &'a [String],
    /// Newest first.
    days: Vec<&'a Day>,
}

pub(super) fn run(loaded: Result<Config, ConfigError>, days_back: u32, json: bool) -> u8 {
    let config = match super::config_or_exit(loaded) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let now = Utc::now();
    let account = &config.account;
    let folder = history::dir_for(&account.token.path);
    let last = ist_day(now);
    let first = last
        .checked_sub_days(chrono::Days::new(u64::from(days_back.max(1) - 1)))
        .unwrap_or(last);
    let loaded = history::load(&folder, first, last);
    if !loaded.skipped.is_empty() {
        eprintln!(
            "tokenwatch: warning: skipped what could not be read in the history ({}): lines \
             torn by a crash, or not written by tokenwatch; the rest is shown",
            loaded.skipped.join(", ")
        );
    }
    let days = days(&loaded, first, last, config.calendar(), now);
    if json {
        let report = Report {
            account: &account.name,
            broker: account.broker.as_str(),
            folder: &folder,
            skipped: &loaded.skipped,
            days: days.iter().rev().collect(),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return 0;
    }
    if !folder.exists() {
        println!(
            "No history yet for account \"{}\": the dashboard and the daemon record it as \
             they watch the token, and tokenwatch refresh and login record their renewals, in \
             {}",
            account.name,
            folder.display()
        );
        return 0;
    }
    print!(
        "{}",
        history::table::table(&account.name, account.broker.display_name(), &days)
    );
    0
}
