//! The subcommands: each returns the process exit code and reports its own errors.

mod alerts;
mod config_check;
mod daemon;
mod demo;
mod history;
mod init;
mod login;
mod packaging;
mod refresh;
mod simulate;
mod status;
mod token;
mod tui;
mod wait;

use crate::cli::{AlertsCommand, Cli, Command, ConfigCommand};
use crate::config::{self, Config, ConfigError, LoadOptions};
use crate::paths::Env;
use std::path::PathBuf;

/// Exit code for a configuration error; defined in [`crate::exit`], named here too for the
/// commands that use it as `super::EXIT_CONFIG`.
pub use crate::exit::EXIT_CONFIG;

/// Run the parsed command line; returns the exit code.
pub fn run(cli: Cli) -> u8 {
    // Before any listener: raise the soft open-file limit to the hard one.
    let _ = crate::serving::raise_open_file_limit();
    // `tokenwatch` alone opens the dashboard.
    let Some(command) = &cli.command else {
        return tui::run(load_config(&cli), reloader(&cli));
    };
    // One-shot commands only show problems unless asked; long-running ones follow log.level.
    // The dashboard and the demo log to their log pane, never to the terminal.
    match command {
        Command::Demo(args) => demo::run(args),
        Command::Init(args) => init::run(&cli, args),
        Command::Tui => tui::run(load_config(&cli), reloader(&cli)),
        Command::Status(args) => {
            status::run(&cli, with_logging(&cli, true), args.json, args.validate)
        }
        Command::Token => token::run(with_logging(&cli, true)),
        Command::Config(ConfigCommand::Check) => config_check::run(with_logging(&cli, true)),
        Command::Alerts(AlertsCommand::Test) => alerts::test(with_logging(&cli, true)),
        Command::Login(args) => login::run(with_logging(&cli, false), args.no_browser),
        Command::Refresh => refresh::run(with_logging(&cli, false)),
        Command::Wait(args) => wait::run(with_logging(&cli, true), args),
        Command::History(args) => history::run(with_logging(&cli, true), args.days, args.json),
        Command::Daemon => daemon::run(with_logging(&cli, false), cli.account.clone(), || {
            load_config(&cli)
        }),
        Command::Simulate(args) => {
            init_stderr_logging(cli.log_level().map(|l| l.as_str()).unwrap_or("info"));
            simulate::run(args)
        }
        // Packaging helpers: no config, no .env, no logging, so they work with a broken setup.
        Command::Completions(args) => packaging::completions(args.shell),
        Command::Man => packaging::man(),
    }
}

/// Write a line to stderr, saying nothing when stderr is closed: the daemon and the
/// dashboard ignore SIGPIPE, and a closed log stream must never stop (or panic) them.
pub(crate) fn stderr_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Whether `command` runs for long (the daemon, the dashboard, the demo): those ignore
/// SIGPIPE, so a closed log stream never stops them. The one-shot printers (`status`, `token`,
/// `completions`, `man`, ...) keep the default and end quietly when their reader goes away
/// (`tokenwatch status | head -1`).
pub fn ignores_sigpipe(command: Option<&Command>) -> bool {
    matches!(
        command,
        None | Some(Command::Tui | Command::Demo(_) | Command::Daemon)
    )
}

/// Load the configuration and start logging to stderr at the level it (or a flag) asks for.
fn with_logging(cli: &Cli, quiet_default: bool) -> Result<Config, ConfigError> {
    let loaded = load_config(cli);
    let level = match (cli.log_level(), &loaded) {
        (Some(level), _) => level.as_str(),
        (None, _) if quiet_default => "warn",
        (None, Ok(config)) => config.log.level.as_str(),
        (None, Err(_)) => "info",
    };
    init_stderr_logging(level);
    loaded
}

/// The runtime of every command, the dashboard included: one thread. The dashboard's frame
/// takes a fraction of a millisecond and the workers only wait on the network and timers, so
/// a second thread would only add wakeups (each idle second cost two thread switches).
/// The most blocking threads a command's runtime starts.
const BLOCKING_THREADS: usize = 64;

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // File reads and writes, hooks and `renew.command` run on blocking threads: a
        // thousand accounts starting at once queue for these rather than start 512 threads.
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// The loaded configuration, or, said on stderr, the exit code of a configuration error.
fn config_or_exit(loaded: Result<Config, ConfigError>) -> Result<Config, u8> {
    loaded.map_err(|e| {
        eprintln!("tokenwatch: config error: {e}");
        EXIT_CONFIG
    })
}

/// [`config_or_exit`], then the commands' runtime (exit 1, said, when it cannot start).
fn config_and_runtime(
    loaded: Result<Config, ConfigError>,
) -> Result<(Config, tokio::runtime::Runtime), u8> {
    let config = config_or_exit(loaded)?;
    let rt = runtime().map_err(|e| {
        eprintln!("tokenwatch: {e}");
        1
    })?;
    Ok((config, rt))
}

/// The environment and configuration, as the global flags select them.
/// Reads the configuration again the way [`load_config`] read it (for `Ctrl-R`).
fn reloader(cli: &Cli) -> crate::tui::Reloader {
    let (config_file, account, log_level) =
        (cli.config.clone(), cli.account.clone(), cli.log_level());
    crate::tui::Reloader(std::sync::Arc::new(move || {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let (env, dotenv): (Env, _) = config::load_env(&cwd)?;
        let opts = LoadOptions {
            config_file: config_file.clone(),
            account: account.clone(),
            log_level,
            cwd,
        };
        config::load(&opts, &env, dotenv)
    }))
}

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

/// Logs go to stderr (problems only for one-shot commands, unless `-v`), every line with its
/// IST time like the daemon's: a warning from `status --validate` at 03:10 says when it was.
fn init_stderr_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::new(format!("tokenwatch={level}"));
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A closed stderr loses the line, nothing more: by default the failure would be
        // reported with eprintln!, which panics on that same closed stderr.
        .log_internal_errors(false)
        .with_ansi(colour)
        .with_timer(crate::timefmt::IstLogTime)
        .with_target(false);
    let _ = builder.try_init();
}
