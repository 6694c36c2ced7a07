//! The checks that span keys, run once the layers are merged: thresholds in order, each
//! strategy's prerequisites, the remote-listen rule, one token file per account.

use super::{Config, ConfigError, DEFAULT_ACCOUNT, Strategy};
use std::collections::BTreeMap;
use std::path::Path;

/// Checks that span keys: thresholds in order, strategy prerequisites, the remote-listen
/// rule, distinct token paths.
pub(super) fn check(
    config: &Config,
    origin_of: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    let err = |key: &str, msg: String| Err(ConfigError::new(origin_of(key), Some(key), msg));
    let m = &config.monitor;
    let human = |d: std::time::Duration| humantime::format_duration(d).to_string();
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    let long = [
        ("monitor.check_interval", m.check_interval),
        ("monitor.refresh_before", m.refresh_before),
        ("monitor.warning_before", m.warning_before),
        ("monitor.critical_before", m.critical_before),
        ("monitor.backoff_initial", m.backoff_initial),
        ("monitor.backoff_max", m.backoff_max),
        ("login.timeout", config.login.timeout),
        (
            "notifications.dismiss_after",
            config.notifications.dismiss_after,
        ),
    ];
    if let Some((key, d)) = long.iter().find(|(_, d)| *d > week) {
        return err(
            key,
            format!(
                "{} is longer than a week; tokens live a day at most",
                human(*d)
            ),
        );
    }
    if let Some(email) = &config.notifications.email
        && let Err((key, why)) = crate::alerts::email::check(email)
    {
        return err(&format!("notifications.email.{key}"), why);
    }
    let keep = config.history.keep.as_secs();
    if !(86_400..=10 * 366 * 86_400).contains(&keep) {
        return err(
            "history.keep",
            format!(
                "{} is not between a day and ten years; the default is 90d",
                human(config.history.keep)
            ),
        );
    }
    if m.critical_before > m.warning_before {
        return err(
            "monitor.critical_before",
            format!(
                "must not be longer than monitor.warning_before ({} > {})",
                human(m.critical_before),
                human(m.warning_before)
            ),
        );
    }
    if m.check_interval < std::time::Duration::from_secs(10) {
        return err(
            "monitor.check_interval",
            "must be at least 10s (Upstox rate-limits callers)".into(),
        );
    }
    if m.max_retries == 0 {
        return err("monitor.max_retries", "must be at least 1".into());
    }
    if m.backoff_initial.is_zero() || m.backoff_initial > m.backoff_max {
        return err(
            "monitor.backoff_initial",
            format!(
                "must be above 0 and not longer than monitor.backoff_max ({})",
                human(m.backoff_max)
            ),
        );
    }
    if config.login.timeout < std::time::Duration::from_secs(10) {
        return err("login.timeout", "must be at least 10s".into());
    }

    let s = &config.server;
    if let Some(addr) = s.listen {
        if !addr.ip().is_loopback() && !s.allow_remote {
            return err(
                "server.listen",
                format!(
                    "{addr} is not a loopback address; use 127.0.0.1, or set server.allow_remote: true \
                     and server.api_key to expose the API on purpose"
                ),
            );
        }
        if s.allow_remote && s.api_key.is_none() {
            return err(
                "server.api_key",
                "is required when server.allow_remote is true".into(),
            );
        }
    }

    let mut seen: BTreeMap<&Path, &str> = BTreeMap::new();
    // The top level first, so a clash is reported on the extra account that caused it.
    let ordered = config.accounts.get(DEFAULT_ACCOUNT).into_iter().chain(
        config
            .accounts
            .values()
            .filter(|a| a.name != DEFAULT_ACCOUNT),
    );
    for a in ordered {
        let name = a.name.as_str();
        let prefix = if name == DEFAULT_ACCOUNT {
            String::new()
        } else {
            format!("accounts.{name}.")
        };
        if !a.broker.is_supported() {
            return err(
                &format!("{prefix}broker"),
                crate::brokers::unsupported_text(a.broker),
            );
        }
        if !a.broker.strategies().contains(&a.renew.strategy) {
            let why = match a.renew.strategy {
                Strategy::TokenRequest => "token-request is Upstox's phone approval".to_string(),
                other => format!("{other} is not a way to renew this broker's tokens"),
            };
            return err(
                &format!("{prefix}renew.strategy"),
                format!(
                    "{why}; {} accounts renew with one of: {}",
                    a.broker.display_name(),
                    crate::brokers::strategy_list(a.broker)
                ),
            );
        }
        if a.broker == crate::brokers::Broker::Dhan {
            let d = &a.dhan;
            let key = if d.totp_secret_file.is_some() {
                "dhan.totp_secret_file"
            } else {
                "dhan.totp_secret"
            };
            // Both set is always wrong; the secret itself is read and checked only when the
            // account logs in with it.
            let both = d.totp_secret.is_some() && d.totp_secret_file.is_some();
            if (both || a.renew.strategy == Strategy::Totp)
                && let Err(why) = crate::brokers::dhan::totp_secret(d)
            {
                return err(&format!("{prefix}{key}"), why);
            }
        }
        match a.renew.strategy {
            Strategy::RefreshToken
                if a.broker == crate::brokers::Broker::Fyers && a.fyers.pin.is_none() =>
            {
                return err(
                    &format!("{prefix}fyers.pin"),
                    "is required when renew.strategy is refresh-token (Fyers' refresh grant \
                     asks for the PIN); set FYERS_PIN in the environment or .env"
                        .into(),
                );
            }
            Strategy::Command if a.renew.command.is_empty() => {
                return err(
                    &format!("{prefix}renew.command"),
                    "is required when renew.strategy is command".into(),
                );
            }
            Strategy::TokenRequest if a.renew.notifier_listen.is_none() => {
                return err(
                    &format!("{prefix}renew.notifier_listen"),
                    "is required when renew.strategy is token-request, e.g. \"127.0.0.1:5002\""
                        .into(),
                );
            }
            Strategy::TokenRequest
                if !a
                    .renew
                    .notifier_path
                    .as_deref()
                    .is_some_and(|p| p.starts_with('/')) =>
            {
                return err(
                    &format!("{prefix}renew.notifier_path"),
                    "is required when renew.strategy is token-request: an unguessable path starting with /".into(),
                );
            }
            _ => {}
        }
        if let Some(addr) = a.renew.notifier_listen
            && !addr.ip().is_loopback()
        {
            return err(
                &format!("{prefix}renew.notifier_listen"),
                format!(
                    "{addr} is not a loopback address; listen on 127.0.0.1 and put your HTTPS reverse \
                     proxy or tunnel in front of it"
                ),
            );
        }
        let files = std::iter::once((&a.token.path, "token.path"))
            .chain(a.token.backups.iter().map(|b| (b, "token.backups")));
        for (path, key) in files {
            if let Some(other) = seen.insert(path, name)
                && other != name
            {
                return err(
                    &format!("{prefix}{key}"),
                    format!(
                        "accounts \"{other}\" and \"{name}\" would share {}; give account \"{name}\" its own token.path",
                        path.display()
                    ),
                );
            }
        }
    }
    Ok(())
}
