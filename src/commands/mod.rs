//! The subcommands: each returns the process exit code and reports its own errors.

mod config_check;
mod status;
mod token;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::{self, Config, ConfigError, LoadOptions};
use crate::paths::Env;
use std::path::PathBuf;

/// Exit code for a configuration error (`EX_CONFIG` from sysexits.h).
pub const EXIT_CONFIG: u8 = 78;

/// Run the parsed command line; returns the exit code.
pub fn run(cli: Cli) -> u8 {
    init_stderr_logging(&cli);
    let Some(command) = &cli.command else {
        // clap's arg_required_else_help shows help before we get here.
        return 3;
    };
    let loaded = load_config(&cli);
    match command {
        Command::Status(args) => status::run(&cli, loaded, args.json),
        Command::Token => token::run(loaded),
        Command::Config(ConfigCommand::Check) => config_check::run(loaded),
    }
}

/// The environment and configuration, as the global flags select them.
pub fn load_config(cli: &Cli) -> Result<Config, ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let (env, dotenv): (Env, _) = config::load_env(&cwd)?;
    let opts = LoadOptions {
        config_file: cli.config.clone(),
        account: cli.account.clone(),
        log_level: cli.log_level(),
        cwd,
    };
    config::load(&opts, &env, dotenv)
}

/// One-shot commands log problems to stderr; `-v` shows more, `-q` only errors.
fn init_stderr_logging(cli: &Cli) {
    let level = cli.log_level().map(|l| l.as_str()).unwrap_or("warn");
    let filter = tracing_subscriber::EnvFilter::new(format!("tokenwatch={level}"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}
