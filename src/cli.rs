//! The command line.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const ABOUT: &str = "Keeps an Upstox access token alive and visible";

const LONG_ABOUT: &str = "\
Keeps an Upstox access token alive and visible.

Upstox access tokens die every morning at 03:30 IST. tokenwatch reads the token file your \
trading engine uses, tells you how long the token has left, and writes new tokens atomically \
(with backups) so the engine never reads a partial file.";

const AFTER_HELP: &str = "\
New here? `tokenwatch init` sets up an account in one guided command.

Configuration is read from --config, $TOKENWATCH_CONFIG, ./config/tokenwatch.yaml or \
$XDG_CONFIG_HOME/tokenwatch/config.yaml, then UPSTOX_* and TOKENWATCH__SECTION__KEY variables \
(a ./.env is loaded first). Run `tokenwatch config check` to see the effective settings.

Exit codes: status: 0 healthy, 1 warning, 2 critical/expired/invalid/missing, 3 unknown; \
token: 0, or 2 with no valid token; login: 0 stored, 1 failed; init: 0 written, 1 nothing \
written (a file exists: --force), 130 cancelled; refresh: 0 with a valid \
token at the end, else 1; wait: 0 on the event, 124 on --timeout; \
78 is a configuration error; 3 a usage error.";

/// `tokenwatch [global flags] <command>`
#[derive(Debug, Parser)]
#[command(name = "tokenwatch", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
#[command(propagate_version = true)]
pub struct Cli {
    /// Config file to use (default: $TOKENWATCH_CONFIG, ./config/tokenwatch.yaml, then
    /// $XDG_CONFIG_HOME/tokenwatch/config.yaml)
    #[arg(short = 'c', long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Account to act on, from the config's `accounts:` (default: "default", the top level)
    #[arg(long, global = true, value_name = "NAME")]
    pub account: Option<String>,

    /// More log output on stderr (-v debug, -vv trace); overrides log.level
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr; overrides log.level
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// What to do
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The live dashboard (also what `tokenwatch` alone opens)
    #[command(long_about = "\
The live dashboard for the configured account(s): a countdown and a gauge that turns green, \
orange and red, notifications, and the log of every validation and renewal. It runs the same \
worker as `daemon`. Keys: r refresh, l login, p paste, d details, h history (the last 14 \
days), x dismiss, Tab account, ? help, q quit.")]
    Tui,

    /// Set up an account in one guided command: config file, secrets, first login
    #[command(long_about = "\
Set up tokenwatch in one guided command: asks for the broker, your app's keys (secrets with \
hidden input), the renewal strategy, the redirect URL, where your engine reads the token file, \
and where alerts go; writes ./config/tokenwatch.yaml (or --config) with only what was chosen, \
and the secrets in ./.env (mode 0600; other lines kept), or, for a config file elsewhere, in \
that file (then mode 0600); checks the result like `config check`; offers the first login; \
and prints the next steps.

Without a terminal (scripts, containers) every answer comes from the flags, and the defaults \
only from --yes; a secret is read from the variable --client-secret-env (or --pin-env, \
--totp-secret-env) names, never from the command line. An existing config file (or a .env \
value it would change) is never replaced without --force, which keeps what it replaces as .bak; the same answers again change nothing.

Exit codes: 0 written and checked, or nothing to change; 1 nothing written (a file exists without --force, or the \
answers were not confirmed); 3 a missing or bad answer (the message names the flag); 78 the \
written configuration does not load; 130 cancelled with Ctrl-C or Esc (nothing written).")]
    Init(InitArgs),

    /// The dashboard against the embedded simulator: no credentials, a 5-minute token
    #[command(long_about = "\
The dashboard against the embedded Upstox simulator, in a temporary folder, with no \
credentials and no network. The first token lives 5 minutes (or --expires-in): warning at \
3 minutes left, critical at 1, so every colour and notification shows within minutes. \
`l` logs in for real through the loopback callback (the simulator approves at once); `r` \
validates for real.")]
    Demo(DemoArgs),

    /// One-shot token health, with Nagios exit codes (0 ok, 1 warning, 2 critical, 3 unknown)
    #[command(long_about = "\
One-shot token health, read from the token file (no network).

Prints the state (HEALTHY, WARNING, CRITICAL, EXPIRED, NO TOKEN), the time left and the expiry \
in IST. Exit codes follow Nagios: 0 healthy, 1 warning, 2 critical/expired/invalid/missing, \
3 unknown (configuration error or an unreadable token file).")]
    Status(StatusArgs),

    /// Print the access token alone, for `$(tokenwatch token)`; exit 2 when there is no valid token
    #[command(long_about = "\
Print the access token alone on stdout, for scripts: `TOKEN=$(tokenwatch token) || exit 1`.

Exits 2 (printing nothing on stdout) when the token is missing, unreadable or expired, so a \
script never uses a dead token. A token close to expiry is still printed.")]
    Token,

    /// Log in to the account's broker (in the browser, or paste the address) and store the new token
    #[command(long_about = "\
Log in to the account's broker and store the new token.

Opens the broker's login page in a browser (login.browser_command, $BROWSER, or the system's \
opener) and waits, on the redirect URI's loopback port, for the broker to send the browser back. \
On a server over SSH, use --no-browser: open the printed address anywhere, log in, and paste \
the address your browser was sent to (it fails to load; that is expected). An Angel One \
account, or one with renew.strategy totp, logs in through the broker's API with the PIN and a \
TOTP code instead, with no browser. Exits 0 when a token was stored, 1 when the login failed, was refused or timed out (login.timeout).")]
    Login(LoginArgs),

    /// Validate now with the API, and renew if due or invalid; exit 0 only with a valid token at the end
    #[command(long_about = "\
Validate the token with the Upstox API now, and renew it if renewal is due or the API \
rejects it (renew.strategy command; browser and token-request need you to log in).

Retries transient failures (network, 5xx, rate limits) with backoff. Exits 0 only when a \
valid token is stored at the end, 1 otherwise.")]
    Refresh,

    /// Wait until the token file holds a new token (--changed) or the account is healthy (--healthy)
    #[command(long_about = "\
Block until the token file holds a different token than when the command started (--changed), \
or until the account is healthy (--healthy, the default: a token with more than \
monitor.warning_before left that the API has not rejected). Watches the token file itself, so \
it works with no daemon running; an engine can run `tokenwatch wait --changed && reconnect` in \
a loop. Exits 0 on the event, 124 when --timeout passes first, 78 on a configuration error.")]
    Wait(WaitArgs),

    /// The account's last days: when and how the token was renewed, minutes it was not usable
    /// in market hours, alerts and API calls
    #[command(long_about = "\
The account's last days from its history, one row per IST day, newest first: when and how \
the token was renewed (and whether a person had to act), minutes it was not usable during \
market hours (09:15-15:30 IST, trading days), alerts raised and API calls made.

The dashboard and the daemon record the history as they watch the token, in \
<token file>.history/ (a JSON-lines file per day, kept history.keep, 90 days by default); \
`tokenwatch refresh` and `tokenwatch login` record their renewals. In the dashboard, `h` \
shows the same days as a timeline.")]
    History(HistoryArgs),

    /// Run the token worker without a UI (for systemd and containers); logs to stderr
    #[command(long_about = "\
Run the token worker for every configured account without a UI: validate at start and every \
monitor.check_interval, renew when due (renew.strategy), restore a missing token file from \
backups at start. Logs go to stderr at log.level (-v for more). SIGINT or SIGTERM stop it \
cleanly with exit 0.")]
    Daemon,

    /// Run the embedded Upstox simulator alone, to try an engine or tokenwatch against it
    Simulate(SimulateArgs),

    /// Send a test alert through every configured alert channel and say how each went
    #[command(subcommand)]
    Alerts(AlertsCommand),

    /// Check and show the configuration
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Print a shell completion script on stdout (bash, zsh, fish, elvish, powershell)
    #[command(long_about = "\
Print the completion script for a shell on stdout, generated from this command line's \
definition. Needs no configuration. Install it where your shell looks, e.g. \
`tokenwatch completions bash > ~/.local/share/bash-completion/completions/tokenwatch`, \
`tokenwatch completions zsh > ~/.zfunc/_tokenwatch` (with ~/.zfunc in $fpath) or \
`tokenwatch completions fish > ~/.config/fish/completions/tokenwatch.fish`.")]
    Completions(CompletionsArgs),

    /// Print the manual page (roff) on stdout
    #[command(long_about = "\
Print the tokenwatch(1) manual page, in roff, on stdout: every command and flag, the exit \
codes, the configuration files and the environment variables. Needs no configuration. \
Install it with `tokenwatch man > ~/.local/share/man/man1/tokenwatch.1`, or read it at once \
with `tokenwatch man | man -l -`.")]
    Man,
}

/// `completions` arguments.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `status` flags.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON (the same object as the HTTP API's /api/token/status)
    #[arg(long)]
    pub json: bool,

    /// Also ask the Upstox API whether the token works (exit 2 with state invalid when it
    /// rejects the token, 3 when the API cannot be reached)
    #[arg(long)]
    pub validate: bool,
}

/// `demo` flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long the demo's tokens live, e.g. 90s or 10m
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub expires_in: std::time::Duration,

    /// The brokers shown, e.g. upstox,kite,fyers,angel,dhan for an Upstox, a Zerodha Kite, a
    /// Fyers, an Angel One and a Dhan account side by side (each against its own simulator)
    #[arg(long, value_name = "LIST", default_value = "upstox")]
    pub brokers: String,
}

/// `history` flags.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How many days back, today included
    #[arg(long, default_value_t = 14, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=400))]
    pub days: u32,

    /// Print the days as JSON (newest first; each with its renewals, state changes, alerts,
    /// calls and a 48-letter half-hour timeline)
    #[arg(long)]
    pub json: bool,
}

/// `init` flags: the answers, for scripts.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The broker: upstox (the default), kite, fyers, angel or dhan
    #[arg(long, value_name = "NAME", value_parser = parse_sim_broker)]
    pub broker: Option<crate::brokers::Broker>,

    /// The app's id: the Upstox client id (API key), the Kite API key, the Fyers app id with
    /// its -100 suffix, the Angel One API key, the Dhan client id
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    /// The environment variable holding the app's secret (Upstox client secret, Kite API
    /// secret, Fyers secret key, Dhan API secret); the secret itself never goes on the
    /// command line
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,

    /// Angel One: the client code (user id) that logs in
    #[arg(long, value_name = "CODE")]
    pub client_code: Option<String>,

    /// Dhan: the app's API key, for the browser login
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,

    /// The environment variable holding the PIN (Angel One; Fyers with refresh-token; Dhan
    /// with totp)
    #[arg(long, value_name = "VAR")]
    pub pin_env: Option<String>,

    /// The environment variable holding the TOTP secret (Angel One; Dhan with totp)
    #[arg(long, value_name = "VAR")]
    pub totp_secret_env: Option<String>,

    /// The redirect URL registered with the app (a loopback http URL; default: the
    /// broker's, e.g. http://localhost:5001/callback)
    #[arg(long, value_name = "URL")]
    pub redirect_uri: Option<String>,

    /// Where the engine reads the token file (default: the broker's file beside the config,
    /// e.g. config/upstox_token.json)
    #[arg(long, value_name = "PATH")]
    pub token_path: Option<String>,

    /// renew.strategy (default: the broker's: browser, or totp for Angel One)
    #[arg(long, value_name = "NAME", value_parser = parse_strategy)]
    pub strategy: Option<crate::config::Strategy>,

    /// renew.command for --strategy command, words separated by spaces
    #[arg(long, value_name = "COMMAND")]
    pub renew_command: Option<String>,

    /// Send alerts to this ntfy.sh topic (notifications.webhook_url https://ntfy.sh/TOPIC)
    #[arg(long, value_name = "TOPIC", conflicts_with = "webhook_url")]
    pub ntfy_topic: Option<String>,

    /// Send alerts to this webhook URL (notifications.webhook_url)
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,

    /// Take the default of every question that has one, and do not ask to confirm
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Replace an existing config file (kept as .bak) and .env values
    #[arg(long)]
    pub force: bool,
}

fn parse_strategy(s: &str) -> Result<crate::config::Strategy, String> {
    use crate::config::Strategy::*;
    let all = [Browser, TokenRequest, Command, Totp, RefreshToken, None];
    all.into_iter()
        .find(|x| x.as_str() == s.trim())
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|x| x.as_str()).collect();
            format!("unknown strategy {s:?} ({})", names.join(", "))
        })
}

/// `wait` flags.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Wait for a token other than the one in the file now
    #[arg(long, conflicts_with = "healthy")]
    pub changed: bool,

    /// Wait until the account is healthy (the default)
    #[arg(long)]
    pub healthy: bool,

    /// Give up after this long (exit 124), e.g. 30s or 10m; default: wait for ever
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// `login` flags.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Do not open a browser: print the address and read the redirected address from stdin
    #[arg(long)]
    pub no_browser: bool,
}

/// `simulate` flags.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on (loopback only)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5055")]
    pub listen: std::net::SocketAddr,

    /// Approve logins at once instead of showing the consent page
    #[arg(long)]
    pub auto_approve: bool,

    /// Where approved v3 token requests are POSTed (tokenwatch's renew.notifier_listen +
    /// renew.notifier_path), e.g. http://127.0.0.1:5002/upstox-hook
    #[arg(long, value_name = "URL")]
    pub notifier_url: Option<url::Url>,

    /// Token lifetime instead of the broker's daily rule (Upstox 03:30 IST, Kite and Fyers
    /// 06:00 IST, Angel One and Dhan 24 hours), e.g. 10m (for trying renewals quickly)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub token_lifetime: Option<std::time::Duration>,

    /// Which broker to stand in for: upstox (the default), kite, fyers, angel or dhan
    #[arg(long, value_name = "NAME", default_value = "upstox", value_parser = parse_sim_broker)]
    pub broker: crate::brokers::Broker,
}

fn parse_sim_broker(s: &str) -> Result<crate::brokers::Broker, String> {
    use crate::brokers::Broker;
    match Broker::parse(s) {
        Some(b) => Ok(b),
        None => Err(format!(
            "unknown broker {s:?} (upstox, kite, fyers, angel, dhan)"
        )),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::config::duration::parse(s)
}

/// `alerts` subcommands.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Send one test alert through every configured channel (webhook, e-mail, command,
    /// desktop) and report each channel's result; exit 0 when all delivered, 1 when any
    /// failed or none is configured
    Test,
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the effective configuration and print it with secrets masked (exit 78 on error)
    Check,
}

impl Cli {
    /// The log level the flags ask for, if any.
    pub fn log_level(&self) -> Option<crate::config::LogLevel> {
        use crate::config::LogLevel;
        match (self.quiet, self.verbose) {
            (true, _) => Some(LogLevel::Error),
            (false, 0) => None,
            (false, 1) => Some(LogLevel::Debug),
            (false, _) => Some(LogLevel::Trace),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
