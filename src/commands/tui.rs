//! `tokenwatch` / `tokenwatch tui`: the dashboard on the configured account(s).

use super::{EXIT_CONFIG, runtime};
use crate::config::{Config, ConfigError};

pub(super) fn run(loaded: Result<Config, ConfigError>, reload: crate::tui::Reloader) -> u8 {
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            crate::commands::stderr_line(format_args!("tokenwatch: config error: {e}"));
            return EXIT_CONFIG;
        }
    };
    match runtime() {
        Ok(rt) => rt.block_on(crate::tui::run(
            config,
            crate::tui::Options {
                builtin_browser: false,
                reload: Some(reload),
            },
        )),
        Err(e) => {
            crate::commands::stderr_line(format_args!("tokenwatch: {e}"));
            1
        }
    }
}
