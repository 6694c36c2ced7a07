//! Layered configuration.
//!
//! Layers, highest first: command-line flags > environment (a `.env` in the working folder is
//! loaded first and never overrides variables already set) > config file > legacy credentials
//! file > defaults. The layers are merged with `figment`; each layer is also checked on its
//! own first, so an error always names the file or variable it came from, the key, and what
//! was expected.

mod check;
mod layers;
mod types;

pub use types::*;

use crate::brokers::Broker;
use crate::calendar::{self, Calendar};
use crate::paths::{self, Env};
use crate::token::Thresholds;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use layers::{Layer, env_layers, figment_error, file_layer, legacy_layer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The account the top level of the config file describes.
pub const DEFAULT_ACCOUNT: &str = "default";

/// The token file of a Kite account that names none (Upstox accounts keep `upstox_token.json`).
pub const KITE_TOKEN_FILE: &str = "kite_token.json";

/// The token file of a Fyers account that names none.
pub const FYERS_TOKEN_FILE: &str = "fyers_token.json";

/// The token file of an Angel One account that names none.
pub const ANGEL_TOKEN_FILE: &str = "angel_token.json";
/// The token file of a Dhan account that names none.
pub const DHAN_TOKEN_FILE: &str = "dhan_token.json";

/// A configuration problem: where it came from, which key, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default())]
pub struct ConfigError {
    /// The file, variable or flag the bad value came from.
    pub origin: String,
    /// The dotted key, when the problem is with one key.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    fn new(origin: impl Into<String>, key: Option<&str>, message: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.into(),
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// What the command line contributes to the configuration.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-c/--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--account NAME`.
    pub account: Option<String>,
    /// `-v`/`-q` turned into a log level.
    pub log_level: Option<LogLevel>,
    /// The working folder (for `./config/tokenwatch.yaml` and relative `--config`).
    pub cwd: PathBuf,
}

/// One account's effective settings: the top level, overridden by its `accounts:` entry.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AccountConfig {
    /// The account's name (`default` for the top level).
    #[serde(skip)]
    pub name: String,
    /// The broker whose token this account watches.
    pub broker: Broker,
    /// The Upstox app.
    pub upstox: UpstoxConfig,
    /// The Zerodha Kite Connect app.
    pub kite: KiteConfig,
    /// The Fyers app.
    pub fyers: FyersConfig,
    /// The Angel One app and user.
    pub angel: AngelConfig,
    /// The Dhan app and user.
    pub dhan: DhanConfig,
    /// Where its token is written (paths absolute).
    pub token: TokenConfig,
    /// How it is renewed.
    pub renew: RenewConfig,
}

/// Where the effective configuration came from.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Sources {
    /// The config file used, if any.
    pub config_file: Option<PathBuf>,
    /// The `.env` file loaded, if any.
    pub dotenv: Option<PathBuf>,
    /// The legacy credentials file read, if any.
    pub legacy_credentials: Option<PathBuf>,
    /// Environment variables that set keys (names only).
    pub environment: Vec<String>,
    /// Command-line flags that set keys.
    pub flags: Vec<String>,
    /// The folder relative paths resolve against.
    pub relative_to: PathBuf,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from.
    pub sources: Sources,
    /// The selected account (`--account`, else `default`).
    pub account: AccountConfig,
    /// Every account, `default` included, by name.
    pub accounts: BTreeMap<String, AccountConfig>,
    /// `monitor:`
    pub monitor: MonitorConfig,
    /// `login:`
    pub login: LoginConfig,
    /// `notifications:`
    pub notifications: NotificationsConfig,
    /// `server:`
    pub server: ServerConfig,
    /// `market:` (holidays file path absolute). The calendar it makes is in each account's
    /// `renew.calendar`.
    pub market: MarketConfig,
    /// `log:` (file path absolute).
    pub log: LogConfig,
    /// `history:`
    pub history: HistoryConfig,
}

impl Config {
    /// The state thresholds of `monitor:`.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            warning_before: self.monitor.warning_before,
            critical_before: self.monitor.critical_before,
        }
    }

    /// The trading calendar (the shipped NSE list with `market.holidays_file` over it).
    pub fn calendar(&self) -> &Calendar {
        &self.account.renew.calendar
    }

    /// The configuration as YAML with secrets masked, for `config check`.
    pub fn to_masked_yaml(&self) -> String {
        #[derive(serde::Serialize)]
        struct Shown<'a> {
            sources: &'a Sources,
            account: &'a str,
            broker: Broker,
            upstox: &'a UpstoxConfig,
            kite: &'a KiteConfig,
            fyers: &'a FyersConfig,
            angel: &'a AngelConfig,
            dhan: &'a DhanConfig,
            token: &'a TokenConfig,
            monitor: &'a MonitorConfig,
            renew: &'a RenewConfig,
            login: &'a LoginConfig,
            notifications: &'a NotificationsConfig,
            server: &'a ServerConfig,
            market: &'a MarketConfig,
            log: &'a LogConfig,
            history: &'a HistoryConfig,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            accounts: BTreeMap<&'a str, &'a AccountConfig>,
        }
        let shown = Shown {
            sources: &self.sources,
            account: &self.account.name,
            broker: self.account.broker,
            upstox: &self.account.upstox,
            kite: &self.account.kite,
            fyers: &self.account.fyers,
            angel: &self.account.angel,
            dhan: &self.account.dhan,
            token: &self.account.token,
            monitor: &self.monitor,
            renew: &self.account.renew,
            login: &self.login,
            notifications: &self.notifications,
            server: &self.server,
            market: &self.market,
            log: &self.log,
            history: &self.history,
            accounts: self
                .accounts
                .iter()
                .filter(|(n, _)| *n != &self.account.name)
                .map(|(n, a)| (n.as_str(), a))
                .collect(),
        };
        serde_yaml::to_string(&shown)
            .unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }
}

/// The environment tokenwatch sees: the process environment, plus the variables of `.env` in
/// `cwd` that are not already set. Returns the `.env` path when one was loaded.
pub fn load_env(cwd: &Path) -> Result<(Env, Option<PathBuf>), ConfigError> {
    let mut env: Env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let path = cwd.join(".env");
    if !path.is_file() {
        return Ok((env, None));
    }
    let origin = format!(".env file {}", path.display());
    let iter = dotenvy::from_path_iter(&path)
        .map_err(|e| ConfigError::new(&origin, None, e.to_string()))?;
    for item in iter {
        match item {
            Ok((k, v)) => {
                env.entry(k).or_insert(v);
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                // Never quote the line: it may hold a secret. Find its number instead.
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let n = text
                    .lines()
                    .position(|l| !l.is_empty() && (l == line || line.starts_with(l)))
                    .map(|i| i + 1);
                let at = n
                    .map(|n| format!("line {n}"))
                    .unwrap_or_else(|| "a line".into());
                return Err(ConfigError::new(
                    &origin,
                    None,
                    format!(
                        "{at} is not KEY=VALUE (quote values with spaces or #); fix it or remove the file"
                    ),
                ));
            }
            Err(e) => return Err(ConfigError::new(&origin, None, e.to_string())),
        }
    }
    Ok((env, Some(path)))
}

/// An Angel One account's TOTP secret: from `totp_secret`, or read from `totp_secret_file`
/// (resolved like every path, private to its owner), never both; checked to make codes now,
/// not at the morning's login. The error names the key, never the secret.
fn angel_totp_secret(
    angel: &mut AngelConfig,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<(), (&'static str, String)> {
    if let Some(file) = angel.totp_secret_file.as_deref().map(resolve) {
        if angel.totp_secret.is_some() {
            return Err((
                "totp_secret_file",
                "angel.totp_secret and angel.totp_secret_file are both set; keep one (the file \
                 keeps the secret out of the configuration)"
                    .into(),
            ));
        }
        let secret = crate::secret::read_secret_file(&file).map_err(|e| {
            (
                "totp_secret_file",
                format!("{e} (the Angel One TOTP secret)"),
            )
        })?;
        crate::brokers::totp::validate(&secret)
            .map_err(|e| ("totp_secret_file", format!("{}: {e}", file.display())))?;
        angel.totp_secret = Some(secret);
        angel.totp_secret_file = Some(file);
        return Ok(());
    }
    if let Some(secret) = &angel.totp_secret {
        crate::brokers::totp::validate(secret).map_err(|e| {
            (
                "totp_secret",
                format!("{e}; set ANGEL_TOTP_SECRET or angel.totp_secret to the secret Angel One showed when you enabled TOTP"),
            )
        })?;
    }
    Ok(())
}

/// Read `market.holidays_file` over the shipped NSE list. Errors name the file and line.
fn holidays_file(path: &Path) -> Result<Calendar, ConfigError> {
    use std::io::Read;
    let origin = format!("holidays file {}", path.display());
    let key = Some("market.holidays_file");
    let err = |m: String| ConfigError::new(&origin, key, m);
    let unreadable = |e: std::io::Error| {
        err(format!(
            "cannot read it: {e}; fix the path or remove the key"
        ))
    };
    if !std::fs::metadata(path).map_err(unreadable)?.is_file() {
        // A folder, a FIFO or a device: opening a FIFO would wait for a writer forever.
        return Err(err(
            "is not a regular file; name a text file with one \"YYYY-MM-DD name\" line per day"
                .into(),
        ));
    }
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(calendar::MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > calendar::MAX_FILE_BYTES {
        return Err(err(
            "is larger than 1 MiB; it should hold one \"YYYY-MM-DD name\" line per holiday".into(),
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| err("is not UTF-8 text; save it as plain text".into()))?;
    Calendar::nse()
        .with_lines(&text)
        .map_err(|e| err(e.to_string()))
}

/// Find the config file: `--config` > `$TOKENWATCH_CONFIG` > `./config/tokenwatch.yaml` >
/// `$XDG_CONFIG_HOME/tokenwatch/config.yaml`. A file named explicitly must exist.
pub fn discover(opts: &LoadOptions, env: &Env) -> Result<Option<PathBuf>, ConfigError> {
    let named = |origin: &str, p: &Path| {
        let p = paths::normalize(
            &opts
                .cwd
                .join(paths::expand_tilde(&p.to_string_lossy(), env)),
        );
        if p.is_file() {
            Ok(Some(p))
        } else {
            Err(ConfigError::new(
                origin,
                None,
                format!("no config file at {}", p.display()),
            ))
        }
    };
    if let Some(p) = &opts.config_file {
        return named("--config", p);
    }
    if let Some(p) = env.get("TOKENWATCH_CONFIG").filter(|p| !p.is_empty()) {
        return named("environment variable TOKENWATCH_CONFIG", Path::new(p));
    }
    let local = opts.cwd.join("config/tokenwatch.yaml");
    if local.is_file() {
        return Ok(Some(paths::normalize(&local)));
    }
    let xdg = paths::config_home(env).join("tokenwatch/config.yaml");
    Ok(xdg.is_file().then_some(xdg))
}

/// Load, merge and check the configuration.
pub fn load(opts: &LoadOptions, env: &Env, dotenv: Option<PathBuf>) -> Result<Config, ConfigError> {
    let file = discover(opts, env)?;
    let base = match &file {
        Some(f) => f
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| opts.cwd.clone()),
        None => paths::state_dir(env),
    };
    let mut sources = Sources {
        config_file: file.clone(),
        dotenv,
        relative_to: base.clone(),
        ..Default::default()
    };

    // Every layer above the legacy file, lowest first; each is checked alone so that its
    // errors name it.
    let mut layers = Vec::new();
    if let Some(f) = &file {
        layers.push(file_layer(f)?);
    }
    let envs = env_layers(env)?;
    sources.environment = envs
        .iter()
        .map(|l| {
            l.origin
                .trim_start_matches("environment variable ")
                .to_owned()
        })
        .collect();
    layers.extend(envs);
    if let Some(level) = opts.log_level {
        let flag = if matches!(level, LogLevel::Error | LogLevel::Warn) {
            "-q/--quiet"
        } else {
            "-v/--verbose"
        };
        sources.flags.push(flag.into());
        let path = ["log".to_string(), "level".to_string()];
        layers.push(Layer::single(
            format!("command-line flag {flag}"),
            &path,
            Value::from(level.as_str()),
        ));
    }
    for layer in &layers {
        layer.check()?;
    }
    let mut figment = Figment::new();
    for layer in layers {
        figment = figment.merge(layer);
    }

    // The legacy credentials file sits below all of them; where it is comes from above.
    let upper: RawConfig = figment
        .extract_lossy()
        .map_err(|e| figment_error(e, "configuration"))?;
    let legacy_path = paths::resolve(
        &upper.upstox.legacy_credentials.to_string_lossy(),
        &base,
        env,
    );
    if let Some(legacy) = legacy_layer(&legacy_path)? {
        legacy.check()?;
        sources.legacy_credentials = Some(legacy_path);
        figment = Figment::from(legacy).merge(figment);
    }
    let raw: RawConfig = figment
        .extract_lossy()
        .map_err(|e| figment_error(e, "configuration"))?;

    // A key nobody set is reported against the config file, where the user would set it.
    let unset_origin = match &file {
        Some(f) => format!("config file {}", f.display()),
        None => "the defaults (no config file)".to_owned(),
    };
    let origin_of = |key: &str| {
        figment
            .find_metadata(key)
            .map(|m| m.name.to_string())
            .unwrap_or_else(|| unset_origin.clone())
    };

    // The trading calendar, read once and shared by every account.
    let mut market = raw.market.clone();
    market.holidays_file = market
        .holidays_file
        .as_deref()
        .map(|p| paths::resolve(&p.to_string_lossy(), &base, env));
    let calendar = match &market.holidays_file {
        Some(path) => Arc::new(holidays_file(path)?),
        None => Calendar::nse(),
    };

    // The merged values, looked up once: the top level's sections and each account's.
    let top_values: BTreeMap<&str, Value> =
        ["upstox", "kite", "fyers", "angel", "dhan", "token", "renew"]
            .into_iter()
            .filter_map(|k| figment.find_value(k).ok().map(|v| (k, v)))
            .collect();
    let account_values: Dict = figment
        .find_value("accounts")
        .ok()
        .and_then(|v| v.into_dict())
        .unwrap_or_default();
    let mut accounts = BTreeMap::new();
    let names = std::iter::once(DEFAULT_ACCOUNT.to_owned()).chain(raw.accounts.keys().cloned());
    for name in names {
        if accounts.contains_key(&name) {
            continue;
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || name.is_empty()
        {
            return Err(ConfigError::new(
                origin_of(&format!("accounts.{name}")),
                Some(&format!("accounts.{name}")),
                "account names may use letters, digits, - and _ only",
            ));
        }
        let broker = raw
            .accounts
            .get(&name)
            .and_then(|o| o.broker)
            .unwrap_or(raw.broker);
        // The account's sections over the top level's, merged key by key. Only the
        // sections of this one account are extracted, from values looked up once (a
        // thousand accounts load in milliseconds, not seconds); their types were checked
        // with the whole file above.
        let own = account_values.get(&name).and_then(Value::as_dict);
        let mut account = match own {
            Some(own) => {
                let section = |key: &str| {
                    let mut f = Figment::new();
                    if let Some(top) = top_values.get(key) {
                        f = f.merge(figment::providers::Serialized::defaults(top));
                    }
                    if let Some(mine) = own.get(key) {
                        f = f.merge(figment::providers::Serialized::defaults(mine));
                    }
                    f
                };
                let fail = |e| figment_error(e, &format!("accounts.{name}"));
                AccountConfig {
                    name: name.clone(),
                    broker,
                    upstox: section("upstox").extract_lossy().map_err(fail)?,
                    kite: section("kite").extract_lossy().map_err(fail)?,
                    fyers: section("fyers").extract_lossy().map_err(fail)?,
                    angel: section("angel").extract_lossy().map_err(fail)?,
                    dhan: section("dhan").extract_lossy().map_err(fail)?,
                    token: section("token").extract_lossy().map_err(fail)?,
                    renew: section("renew").extract_lossy().map_err(fail)?,
                }
            }
            None => AccountConfig {
                name: name.clone(),
                broker,
                upstox: raw.upstox.clone(),
                kite: raw.kite.clone(),
                fyers: raw.fyers.clone(),
                angel: raw.angel.clone(),
                dhan: raw.dhan.clone(),
                token: raw.token.clone(),
                renew: raw.renew.clone(),
            },
        };
        // A Kite account that names no token file of its own gets `kite_token.json`, never
        // Upstox's default file; and its default backups take its token file's name.
        let token_key_set = |key: &str| {
            own.and_then(|o| o.get("token"))
                .and_then(|t| t.find_ref(key))
                .is_some()
                || top_values
                    .get("token")
                    .and_then(|t| t.find_ref(key))
                    .is_some()
        };
        let own_default_file = match broker {
            Broker::Kite => Some(KITE_TOKEN_FILE),
            Broker::Fyers => Some(FYERS_TOKEN_FILE),
            Broker::Angel => Some(ANGEL_TOKEN_FILE),
            Broker::Dhan => Some(DHAN_TOKEN_FILE),
            _ => None,
        };
        if let Some(file) = own_default_file.filter(|_| !token_key_set("path")) {
            account.token.path = PathBuf::from(file);
        }
        // An account that names no strategy gets its broker's (Angel One has no browser
        // login, so its accounts log in with TOTP).
        let strategy_set = own
            .and_then(|o| o.get("renew"))
            .and_then(|r| r.find_ref("strategy"))
            .is_some()
            || top_values
                .get("renew")
                .and_then(|r| r.find_ref("strategy"))
                .is_some();
        if !strategy_set {
            account.renew.strategy = broker.default_strategy();
        }
        let resolve = |p: &Path| paths::resolve(&p.to_string_lossy(), &base, env);
        account.upstox.legacy_credentials = resolve(&account.upstox.legacy_credentials);
        account.token.path = resolve(&account.token.path);
        let primary = account.token.path.clone();
        // An extra account that names its own token file but not its own backups gets the
        // top level's backup folders with its own file name, so accounts never share a file.
        let own_backups = own
            .and_then(|o| o.get("token"))
            .and_then(|t| t.find_ref("backups"))
            .is_some();
        let rename = (name != DEFAULT_ACCOUNT && !own_backups)
            || (own_default_file.is_some() && !token_key_set("backups"));
        let mut backups: Vec<PathBuf> = Vec::new();
        for b in &account.token.backups {
            let b = match (rename, primary.file_name()) {
                (true, Some(file)) => b.with_file_name(file),
                _ => b.clone(),
            };
            let b = resolve(&b);
            if b != primary && !backups.contains(&b) {
                backups.push(b);
            }
        }
        account.token.backups = backups;
        account.token.env_file = account.token.env_file.as_deref().map(resolve);
        if broker == Broker::Angel {
            let key = |k: &str| match own {
                Some(_) => format!("accounts.{name}.angel.{k}"),
                None => format!("angel.{k}"),
            };
            let origin = |k: &str| {
                figment
                    .find_metadata(&key(k))
                    .or_else(|| figment.find_metadata(&format!("angel.{k}")))
                    .map(|m| m.name.to_string())
                    .unwrap_or_else(|| unset_origin.clone())
            };
            angel_totp_secret(&mut account.angel, &resolve)
                .map_err(|(k, message)| ConfigError::new(origin(k), Some(&key(k)), message))?;
        }
        account.dhan.totp_secret_file = account.dhan.totp_secret_file.as_deref().map(resolve);
        account.renew.calendar = calendar.clone();
        accounts.insert(name, account);
    }

    let mut log = raw.log;
    log.file = paths::resolve(&log.file.to_string_lossy(), &base, env);
    let config = Config {
        sources,
        account: accounts[DEFAULT_ACCOUNT].clone(),
        accounts,
        monitor: raw.monitor,
        login: raw.login,
        notifications: raw.notifications,
        server: raw.server,
        market,
        log,
        history: raw.history,
    };
    check::check(&config, &origin_of)?;

    let selected = opts.account.as_deref().unwrap_or(DEFAULT_ACCOUNT);
    let Some(account) = config.accounts.get(selected).cloned() else {
        let known: Vec<&str> = config.accounts.keys().map(String::as_str).collect();
        return Err(ConfigError::new(
            "--account",
            None,
            format!(
                "no account named \"{selected}\"; the configured accounts are: {}",
                known.join(", ")
            ),
        ));
    };
    Ok(Config { account, ..config })
}
