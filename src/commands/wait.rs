//! `tokenwatch wait [--changed | --healthy] [--timeout D]`: block until the token file holds
//! another token than at the start, or until the account is healthy. It reads the token file
//! and the shared verdict beside it, as `status` does, so it needs no daemon: an inotify watch
//! on the token's folder says at once when the file is replaced, and a look every second
//! catches what only the clock changes (a folder that cannot be watched included).

use crate::cli::WaitArgs;
use crate::config::{Config, ConfigError};
use crate::status::{ReportState, StatusReport};
use crate::token::Token;
use crate::token::expiry::to_ist;
use crate::token::file::read_account_token;
use crate::token::verdict::{read_verdict, token_fingerprint};
use chrono::Utc;
use notify::{RecursiveMode, Watcher};
use std::time::{Duration, Instant};

/// The exit code when `--timeout` passes first (as `timeout(1)` uses).
pub const EXIT_TIMED_OUT: u8 = 124;

/// The longest wait between two looks at the file when nothing wakes the command.
const LOOK_EVERY: Duration = Duration::from_secs(1);

pub(super) fn run(loaded: Result<Config, ConfigError>, args: &WaitArgs) -> u8 {
    let config = match super::config_or_exit(loaded) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let account = &config.account;
    let path = account.token.path.clone();
    let read = || read_account_token(&path, account.broker);
    let version = |t: &Token| token_fingerprint(&t.access_token);
    let at_start = read().ok().flatten().map(|t| version(&t));

    // Wake at once when anything in the token's folder changes (it is replaced by rename).
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let _watcher = path.parent().and_then(|folder| {
        let mut w = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            let _ = tx.send(());
        })
        .ok()?;
        w.watch(folder, RecursiveMode::NonRecursive).ok()?;
        Some(w)
    });

    let deadline = args.timeout.map(|t| Instant::now() + t);
    let name = &account.name;
    loop {
        let now = Utc::now();
        let token = read();
        match (&token, args.changed) {
            (Ok(Some(t)), true) if Some(version(t)) != at_start => {
                println!(
                    "New token for account \"{name}\": valid until {} IST.",
                    to_ist(t.expires_at).format("%a %d %b %H:%M")
                );
                return 0;
            }
            (_, false) => {
                let mut report = StatusReport::new(
                    name,
                    account.broker,
                    &path,
                    &token,
                    now,
                    config.thresholds(),
                );
                if let Ok(Some(t)) = &token
                    && let Ok(Some(answer)) = read_verdict(&path, &t.access_token)
                {
                    report.apply_answer(&answer);
                }
                if report.state == ReportState::Healthy
                    && let Ok(Some(t)) = &token
                {
                    println!(
                        "Account \"{name}\" is healthy: valid until {} IST.",
                        to_ist(t.expires_at).format("%a %d %b %H:%M")
                    );
                    return 0;
                }
            }
            _ => {}
        }
        let mut nap = LOOK_EVERY;
        if let Some(end) = deadline {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let what = if args.changed && at_start.is_none() {
                    "no token file appeared"
                } else if args.changed {
                    "the token file still holds the same token"
                } else {
                    "the account is not healthy yet"
                };
                eprintln!(
                    "tokenwatch: waited {}; {what}",
                    crate::timefmt::human(args.timeout.unwrap_or_default())
                );
                return EXIT_TIMED_OUT;
            }
            nap = nap.min(left);
        }
        // A change wakes this at once; several in a burst are taken as one.
        if rx.recv_timeout(nap).is_ok() {
            while rx.try_recv().is_ok() {}
        }
    }
}
