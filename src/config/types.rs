//! The configuration's sections, keys and defaults. Each key's type carries its
//! own parsing, so a bad value is caught where it is read and the message says what was
//! expected.

use crate::brokers::Broker;
use crate::calendar::Calendar;
use crate::secret::{Secret, deserialize_opt_secret};
use chrono::NaiveTime;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod brokers;
pub use brokers::*;

/// One layer's view of the file, and the merged result: every section with its defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// `broker:` the broker whose token is watched (default `upstox`).
    pub broker: Broker,
    /// `upstox:` the Upstox app.
    pub upstox: UpstoxConfig,
    /// `kite:` the Zerodha Kite Connect app.
    pub kite: KiteConfig,
    /// `fyers:` the Fyers API v3 app.
    pub fyers: FyersConfig,
    /// `angel:` the Angel One SmartAPI app and user.
    pub angel: AngelConfig,
    /// `dhan:` the DhanHQ v2 app and user.
    pub dhan: DhanConfig,
    /// `token:` where the token is written.
    pub token: TokenConfig,
    /// `monitor:` checking and thresholds.
    pub monitor: MonitorConfig,
    /// `renew:` how and when renewal happens.
    pub renew: RenewConfig,
    /// `login:` the OAuth login.
    pub login: LoginConfig,
    /// `notifications:` banners and alerts.
    pub notifications: NotificationsConfig,
    /// `server:` the optional HTTP API.
    pub server: ServerConfig,
    /// `market:` the trading calendar.
    pub market: MarketConfig,
    /// `log:` the log file.
    pub log: LogConfig,
    /// `history:` each account's event log.
    pub history: HistoryConfig,
    /// `accounts:` more accounts, each overriding `broker`, `upstox`, `kite`, `token` and
    /// `renew`.
    #[serde(skip_serializing)]
    pub accounts: BTreeMap<String, AccountOverride>,
}

/// An entry of `accounts:`: the sections an account may override.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountOverride {
    /// The account's broker, when not the top level's.
    pub broker: Option<Broker>,
    /// Overrides of `upstox:`.
    pub upstox: Option<UpstoxConfig>,
    /// Overrides of `kite:`.
    pub kite: Option<KiteConfig>,
    /// Overrides of `fyers:`.
    pub fyers: Option<FyersConfig>,
    /// Overrides of `angel:`.
    pub angel: Option<AngelConfig>,
    /// Overrides of `dhan:`.
    pub dhan: Option<DhanConfig>,
    /// Overrides of `token:`.
    pub token: Option<TokenConfig>,
    /// Overrides of `renew:`.
    pub renew: Option<RenewConfig>,
}

/// `token:`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// The file the trading engine reads.
    pub path: PathBuf,
    /// Every new token is also written to each of these.
    pub backups: Vec<PathBuf>,
    /// Also write `UPSTOX_ACCESS_TOKEN=...` (`KITE_ACCESS_TOKEN=...` for a Kite account; 0600)
    /// here when set.
    #[serde(deserialize_with = "opt_path")]
    pub env_file: Option<PathBuf>,
    /// argv run after a new token is stored (30 s limit).
    #[serde(deserialize_with = "argv", serialize_with = "ser_argv")]
    pub on_change: Vec<String>,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            path: PathBuf::from("upstox_token.json"),
            backups: vec![
                PathBuf::from("backup/upstox_token.json"),
                PathBuf::from("~/.local/state/tokenwatch/upstox_token.json"),
            ],
            env_file: None,
            on_change: Vec::new(),
        }
    }
}

/// `monitor:`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// API validation interval while the token is healthy.
    #[serde(with = "duration")]
    pub check_interval: Duration,
    /// Renewal is due this long before expiry.
    #[serde(with = "duration")]
    pub refresh_before: Duration,
    /// Gauge orange at or below this.
    #[serde(with = "duration")]
    pub warning_before: Duration,
    /// Gauge red below this.
    #[serde(with = "duration")]
    pub critical_before: Duration,
    /// Attempts per renewal/validation round.
    pub max_retries: u32,
    /// First retry delay; doubled each retry with ±25% jitter.
    #[serde(with = "duration")]
    pub backoff_initial: Duration,
    /// Cap on the retry delay.
    #[serde(with = "duration")]
    pub backoff_max: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            check_interval: Duration::from_secs(30 * 60),
            refresh_before: Duration::from_secs(3600),
            warning_before: Duration::from_secs(3 * 3600),
            critical_before: Duration::from_secs(3600),
            max_retries: 3,
            backoff_initial: Duration::from_secs(2),
            backoff_max: Duration::from_secs(5 * 60),
        }
    }
}

/// `renew.strategy`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Open the OAuth login in a browser for the user.
    #[default]
    Browser,
    /// Upstox's v3 access-token request, approved on the phone.
    TokenRequest,
    /// Run `renew.command` and read a token from its stdout.
    Command,
    /// Log in through the broker's API with the PIN and a code from the TOTP secret, no
    /// browser (Angel One, Dhan).
    Totp,
    /// Renew through the broker's API with what the last login left (Fyers' refresh token
    /// and the PIN, Angel One's refresh token, Dhan's RenewToken), no browser.
    RefreshToken,
    /// Alerts only.
    None,
}

impl Strategy {
    /// The name in the configuration: `browser`, `token-request`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Browser => "browser",
            Strategy::TokenRequest => "token-request",
            Strategy::Command => "command",
            Strategy::Totp => "totp",
            Strategy::RefreshToken => "refresh-token",
            Strategy::None => "none",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `renew:`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RenewConfig {
    /// How a new token is obtained.
    pub strategy: Strategy,
    /// IST time of day before which unattended renewals wait.
    #[serde(with = "time_of_day")]
    pub not_before: NaiveTime,
    /// IST time of day by which a valid token must exist on trading days.
    #[serde(with = "time_of_day")]
    pub deadline: NaiveTime,
    /// `strategy: command`: argv that prints a token on stdout.
    #[serde(deserialize_with = "argv", serialize_with = "ser_argv")]
    pub command: Vec<String>,
    /// `strategy: token-request`: where the notifier webhook listens.
    #[serde(deserialize_with = "opt_socket_addr")]
    pub notifier_listen: Option<SocketAddr>,
    /// `strategy: token-request`: the webhook's unguessable path.
    #[serde(deserialize_with = "opt_string")]
    pub notifier_path: Option<String>,
    /// The trading calendar `not_before` and `deadline` follow: set from `market:` when the
    /// configuration is loaded, not a key of its own.
    #[serde(skip, default = "crate::calendar::Calendar::nse")]
    pub calendar: Arc<Calendar>,
}

impl Default for RenewConfig {
    fn default() -> Self {
        RenewConfig {
            strategy: Strategy::Browser,
            not_before: NaiveTime::from_hms_opt(8, 0, 0).expect("valid time"),
            deadline: NaiveTime::from_hms_opt(9, 0, 0).expect("valid time"),
            command: Vec::new(),
            notifier_listen: None,
            notifier_path: None,
            calendar: Calendar::nse(),
        }
    }
}

/// `login:`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// How long a login waits for the browser to come back.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// argv that opens a URL; default `$BROWSER`, then the system opener.
    #[serde(deserialize_with = "argv", serialize_with = "ser_argv")]
    pub browser_command: Vec<String>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            timeout: Duration::from_secs(180),
            browser_command: Vec::new(),
        }
    }
}

/// `notifications:`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// Non-critical banners auto-dismiss after this.
    #[serde(with = "duration")]
    pub dismiss_after: Duration,
    /// POST JSON alerts here.
    #[serde(deserialize_with = "opt_webhook_url", serialize_with = "ser_opt_url")]
    pub webhook_url: Option<url::Url>,
    /// argv run per alert with `TOKENWATCH_ALERT_*` variables.
    #[serde(deserialize_with = "argv", serialize_with = "ser_argv")]
    pub command: Vec<String>,
    /// Desktop notifications (cargo feature `desktop`).
    pub desktop: bool,
    /// E-mail alerts over SMTP.
    pub email: Option<EmailConfig>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            dismiss_after: Duration::from_secs(10),
            webhook_url: None,
            command: Vec::new(),
            desktop: false,
            email: None,
        }
    }
}

/// `notifications.email:` one short message per alert, over SMTP. Every key may come from
/// another layer (the password from the environment, say); the section is checked whole.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// The SMTP server as a connection URL: `smtps://user@smtp.example.com:465` (TLS),
    /// `smtp://user@smtp.example.com:587?tls=required` (STARTTLS); plain `smtp://host:port`
    /// only for a server on this machine. The password never goes here.
    pub url: String,
    /// The sender, `tokenwatch <alerts@example.com>` or `alerts@example.com`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The SMTP password (`TOKENWATCH__NOTIFICATIONS__EMAIL__PASSWORD`). Never printed or
    /// logged.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub password: Option<Secret>,
}

impl PartialEq for EmailConfig {
    fn eq(&self, other: &EmailConfig) -> bool {
        self.url == other.url
            && self.from == other.from
            && self.to == other.to
            && match (&self.password, &other.password) {
                (Some(a), Some(b)) => a.same_as(b),
                (None, None) => true,
                _ => false,
            }
    }
}

/// `server:`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Serve the HTTP API here; `None` (unset, `off`, `none`, empty) for no API.
    #[serde(deserialize_with = "opt_listen")]
    pub listen: Option<SocketAddr>,
    /// A non-loopback `listen` is refused unless this is true.
    pub allow_remote: bool,
    /// Required in `X-Tokenwatch-Key` for POSTs when `allow_remote` is true.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub api_key: Option<Secret>,
}

/// `market:`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MarketConfig {
    /// A file of extra NSE holidays (`YYYY-MM-DD name` per line) and trading days
    /// (`-YYYY-MM-DD name`), applied over the shipped list.
    #[serde(deserialize_with = "opt_path")]
    pub holidays_file: Option<PathBuf>,
}

/// `history:` each account's event log (`<token file>.history/`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Days older than this are deleted (at least a day).
    #[serde(with = "duration")]
    pub keep: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            keep: crate::history::DEFAULT_KEEP,
        }
    }
}

/// `log.level`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything, including each HTTP exchange (never a token).
    Trace,
    /// Details useful when something is wrong.
    Debug,
    /// Every validation and renewal attempt.
    #[default]
    Info,
    /// Problems only.
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    /// The `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// `log:`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The dashboard's log file (the daemon and one-shot commands log to stderr).
    pub file: PathBuf,
    /// The log level.
    pub level: LogLevel,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            file: PathBuf::from("~/.local/state/tokenwatch/tokenwatch.log"),
            level: LogLevel::Info,
        }
    }
}

// ---- value parsers: each says what it expected ----

/// A scalar as text, accepting numbers too (an API key that looks like a number is still an
/// API key). Empty is "not set".
fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            Ok((!v.is_empty()).then(|| v.to_owned()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// A list of error codes, each a string or a number (`["DH-901", 807]`).
fn codes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Text(String),
        Number(i64),
    }
    let list = Vec::<Code>::deserialize(d).map_err(|_| {
        serde::de::Error::custom("expected a list of error codes, like [\"DH-901\", \"807\"]")
    })?;
    let codes: Vec<String> = list
        .into_iter()
        .map(|c| match c {
            Code::Text(t) => t.trim().to_owned(),
            Code::Number(n) => n.to_string(),
        })
        .collect();
    if codes.iter().any(String::is_empty) {
        return Err(serde::de::Error::custom(
            "an error code in the list is empty",
        ));
    }
    Ok(codes)
}

fn opt_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(opt_string(d)?.map(PathBuf::from))
}

/// A command as an argv list: `["systemctl", "--user", "restart", "engine"]`.
fn argv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Argv {
        List(Vec<String>),
        Empty(()),
    }
    match Argv::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "expected a command as a list of strings, like [\"systemctl\", \"--user\", \"restart\", \"engine\"]",
        )
    })? {
        Argv::List(v) if v.first().is_some_and(|p| p.trim().is_empty()) => {
            Err(serde::de::Error::custom("the command's program (first item) is empty"))
        }
        Argv::List(v) => Ok(v),
        Argv::Empty(()) => Ok(Vec::new()),
    }
}

/// An http(s) URL with a host, or why not (the rule every URL key of the configuration follows).
pub fn parse_http_url(s: &str) -> Result<url::Url, String> {
    let expected = "expected an http(s) URL like \"https://api.upstox.com\"";
    match url::Url::parse(s.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        Ok(_) => Err(format!("{expected}, got \"{s}\"")),
        Err(e) => Err(format!("{expected}, got \"{s}\" ({e})")),
    }
}

fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    let s = String::deserialize(d)?;
    parse_http_url(&s).map_err(serde::de::Error::custom)
}

/// A webhook URL (http or https). An error shows only the scheme and host of what
/// was given, since Slack-style webhooks carry their secret in the path.
fn opt_webhook_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    let Some(s) = opt_string(d)? else {
        return Ok(None);
    };
    let expected = "expected an http(s) URL like \"https://ntfy.sh/your-topic\"";
    let text = s.trim();
    let head_len = text.find("://").map_or(0, |i| i + 3);
    let shown = match text[head_len..].find(['/', '?', '#']) {
        Some(cut) => format!("{}/… (the rest not shown)", &text[..head_len + cut]),
        None => text.to_string(),
    };
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Some(u)),
        _ => Err(serde::de::Error::custom(format!(
            "{expected}, got \"{shown}\""
        ))),
    }
}

/// `127.0.0.1:8000`, `[::1]:8000` or `localhost:8000` (→ 127.0.0.1).
pub fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let s2 = match s.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => s.to_owned(),
    };
    s2.parse::<SocketAddr>()
        .map_err(|_| format!("expected an address like \"127.0.0.1:8000\", got \"{s}\""))
}

fn opt_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    match opt_string(d)? {
        None => Ok(None),
        Some(s) => parse_socket_addr(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// `server.listen`: an address, or no HTTP API for null, empty, `off`, `none` (any case) and
/// `false` (a YAML 1.1 reader's `off`).
fn opt_listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an address like \"127.0.0.1:8000\", or off")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            let off =
                v.is_empty() || v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none");
            Ok((!off).then(|| v.to_owned()))
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            if v {
                Err(E::custom(
                    "expected an address like \"127.0.0.1:8000\", or off for no HTTP API; got true",
                ))
            } else {
                Ok(None)
            }
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    match d.deserialize_any(V)? {
        None => Ok(None),
        Some(s) => parse_socket_addr(&s)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("{e}, or off for no HTTP API"))),
    }
}

/// Commands are shown as their program only: arguments may hold keys or passwords.
fn ser_argv<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    match v.split_first() {
        None => s.serialize_seq(Some(0))?.end(),
        Some((program, [])) => s.collect_seq([program]),
        Some((program, rest)) => s.collect_seq([
            program.clone(),
            format!("(… {} arguments, not shown)", rest.len()),
        ]),
    }
}

/// Webhook URLs are shown without path, query and user info: services such as Slack put the
/// secret in the path.
fn ser_opt_url<S: Serializer>(v: &Option<url::Url>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(u) => s.serialize_str(&format!(
            "{}://{}/… (path not shown)",
            u.scheme(),
            u.host_str().unwrap_or("")
        )),
        None => s.serialize_none(),
    }
}

fn ser_opt_secret<S: Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(secret) => s.serialize_str(&format!("******** (set, {} characters)", secret.len())),
        None => s.serialize_none(),
    }
}

/// humantime durations: `30m`, `1h`, `10s`, `1h 30m`.
pub mod duration {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    /// Parse a humantime duration, with a message that says what was expected.
    pub fn parse(s: &str) -> Result<Duration, String> {
        humantime::parse_duration(s.trim()).map_err(|e| {
            format!("expected a duration like \"30m\", \"1h\" or \"10s\", got \"{s}\" ({e})")
        })
    }

    /// Deserialize a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration like \"30m\", \"1h\" or \"10s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                parse(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "expected a duration with a unit, like \"{v}s\" or \"{v}m\", got the bare number {v}"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "expected a duration with a unit like \"30m\", got {v}"
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "expected a duration with a unit like \"1h 30m\", got {v}"
                )))
            }
        }
        d.deserialize_any(V)
    }

    /// Serialize as humantime text.
    pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*v).to_string())
    }
}

/// IST times of day: `08:00`.
pub mod time_of_day {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Deserialize `HH:MM`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a time of day in IST as a quoted \"HH:MM\", like \"08:00\"",
            )
        })?;
        NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| {
            serde::de::Error::custom(format!(
                "expected a time of day in IST as \"HH:MM\", like \"08:00\", got \"{s}\""
            ))
        })
    }

    /// Serialize as `HH:MM`.
    pub fn serialize<S: Serializer>(v: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.format("%H:%M").to_string())
    }
}
