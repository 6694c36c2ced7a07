//! `tokenwatch alerts test`: one test alert through every configured channel, each
//! channel's result on its own line.

use crate::alerts::Alerter;
use crate::config::{Config, ConfigError};
use crate::messages::{Alert, AlertEvent, Level};
use crate::token::TokenState;

pub(super) fn test(loaded: Result<Config, ConfigError>) -> u8 {
    let (config, rt) = match super::config_and_runtime(loaded) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    rt.block_on(async {
        let alerter = Alerter::new(&config.notifications);
        if alerter.is_empty() {
            eprintln!(
                "tokenwatch: no alert channel is configured; set notifications.webhook_url, \
                 notifications.email, notifications.command or notifications.desktop"
            );
            return 1;
        }
        let now = chrono::Utc::now();
        let alert = Alert {
            account: config.account.name.clone(),
            event: AlertEvent::Test,
            level: Level::Info,
            title: "Test alert".into(),
            message: "tokenwatch alerts test: this channel works".into(),
            state: TokenState::Healthy,
            expires_at: None,
            at: now,
        };
        let mut failed = 0;
        for (channel, result) in alerter.test(alert).await {
            match result {
                Ok(()) => println!("✓ {channel}: delivered"),
                Err(why) => {
                    failed += 1;
                    println!("✗ {channel}: {why}");
                }
            }
        }
        u8::from(failed > 0)
    })
}
