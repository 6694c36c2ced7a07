//! Layered configuration.
//!
//! Layers, highest first: command-line flags > environment (a `.env` in the working folder is
//! loaded first and never overrides variables already set) > config file > legacy credentials
//! file > defaults. The layers are merged with `figment`; each layer is also checked on its
//! own first, so an error always names the file or variable it came from, the key, and what
//! was expected.

mod check;
mod types;

pub use types::*;

use crate::brokers::Broker;
use crate::calendar::{self, Calendar};
use crate::paths::{self, Env};
use crate::token::Thresholds;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
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

/// A configuration layer: named values from one file, variable or flag.
struct Layer {
    origin: String,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.origin.clone())
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}

impl Layer {
    /// A layer setting one dotted key.
    fn single(origin: String, key_path: &[String], value: Value) -> Layer {
        let mut value = value;
        for k in key_path.iter().skip(1).rev() {
            value = Value::from(Dict::from([(k.clone(), value)]));
        }
        Layer {
            origin,
            dict: Dict::from([(key_path[0].clone(), value)]),
        }
    }

    /// Check this layer on its own, so its errors name it.
    fn check(&self) -> Result<RawConfig, ConfigError> {
        Figment::from(self)
            .extract_lossy::<RawConfig>()
            .map_err(|e| figment_error(e, &self.origin))
    }
}

/// Turn a figment error into one that names the origin, key and expectation, and never
/// quotes a secret value.
fn figment_error(e: figment::Error, fallback_origin: &str) -> ConfigError {
    use figment::error::Kind;
    let origin = e
        .metadata
        .as_ref()
        .map(|m| m.name.to_string())
        .unwrap_or_else(|| fallback_origin.to_owned());
    let mut key = e.path.join(".");
    let secret_key = ["client_secret", "api_key", "access_token"]
        .iter()
        .any(|s| key.ends_with(s));
    let message = match &e.kind {
        Kind::UnknownField(field, expected) => {
            if e.path.last() != Some(field) {
                key = if key.is_empty() {
                    field.clone()
                } else {
                    format!("{key}.{field}")
                };
            }
            if expected.is_empty() {
                "unknown key".to_string()
            } else {
                format!("unknown key; expected one of: {}", expected.join(", "))
            }
        }
        Kind::UnknownVariant(v, expected) => {
            format!(
                "unknown value \"{v}\"; expected one of: {}",
                expected.join(", ")
            )
        }
        Kind::InvalidType(_, expected) if secret_key => format!("expected {expected}"),
        Kind::InvalidType(actual, expected) => {
            format!("expected {}, found {actual}", plain(expected))
        }
        Kind::InvalidValue(_, expected) if secret_key => {
            format!("invalid value; expected {expected}")
        }
        Kind::InvalidValue(actual, expected) => {
            format!("invalid value {actual}; expected {expected}")
        }
        Kind::Message(m) if secret_key => {
            if m.contains("expected") {
                m.clone()
            } else {
                "invalid value".into()
            }
        }
        Kind::Message(m) => m.clone(),
        other => other.to_string(),
    };
    ConfigError {
        origin,
        key: (!key.is_empty()).then_some(key),
        message,
    }
}

/// serde's type names in words a user knows.
fn plain(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => {
            "a whole number"
        }
        "a boolean" | "bool" => "true or false",
        other => other,
    }
}

/// Read the config file into a layer. Empty files and `key:` with no value are "not set".
fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let origin = format!("config file {}", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&origin, None, format!("cannot read it: {e}")))?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| ConfigError::new(&origin, None, format!("it is not valid YAML: {e}")))?;
    let dict = match strip_nulls(yaml) {
        None => Dict::new(),
        Some(v @ serde_yaml::Value::Mapping(_)) => {
            let value =
                Value::serialize(&v).map_err(|e| ConfigError::new(&origin, None, e.to_string()))?;
            value.into_dict().unwrap_or_default()
        }
        Some(_) => {
            return Err(ConfigError::new(
                &origin,
                None,
                "expected sections such as `upstox:` and `token:` at the top level",
            ));
        }
    };
    Ok(Layer { origin, dict })
}

/// YAML `key:` with nothing after it means "not set here", not "null".
fn strip_nulls(v: serde_yaml::Value) -> Option<serde_yaml::Value> {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => None,
        Y::Mapping(m) => Some(Y::Mapping(
            m.into_iter()
                .filter_map(|(k, v)| strip_nulls(v).map(|v| (k, v)))
                .collect(),
        )),
        Y::Tagged(t) => strip_nulls(t.value),
        other => Some(other),
    }
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

/// One layer per environment variable that sets a key, highest last.
fn env_layers(env: &Env) -> Result<Vec<Layer>, ConfigError> {
    let mut layers = Vec::new();
    let named = [
        ("UPSTOX_CLIENT_ID", "upstox", "client_id"),
        ("UPSTOX_CLIENT_SECRET", "upstox", "client_secret"),
        ("UPSTOX_REDIRECT_URI", "upstox", "redirect_uri"),
        ("KITE_API_KEY", "kite", "api_key"),
        ("KITE_API_SECRET", "kite", "api_secret"),
        ("KITE_REDIRECT_URI", "kite", "redirect_uri"),
        ("FYERS_CLIENT_ID", "fyers", "client_id"),
        ("FYERS_SECRET_KEY", "fyers", "secret_key"),
        ("FYERS_PIN", "fyers", "pin"),
        ("FYERS_REDIRECT_URI", "fyers", "redirect_uri"),
        ("ANGEL_API_KEY", "angel", "api_key"),
        ("ANGEL_CLIENT_CODE", "angel", "client_code"),
        ("ANGEL_PIN", "angel", "pin"),
        ("ANGEL_TOTP_SECRET", "angel", "totp_secret"),
        ("ANGEL_TOTP_SECRET_FILE", "angel", "totp_secret_file"),
        ("DHAN_CLIENT_ID", "dhan", "client_id"),
        ("DHAN_API_KEY", "dhan", "api_key"),
        ("DHAN_API_SECRET", "dhan", "api_secret"),
        ("DHAN_PIN", "dhan", "pin"),
        ("DHAN_TOTP_SECRET", "dhan", "totp_secret"),
        ("DHAN_REDIRECT_URI", "dhan", "redirect_uri"),
    ];
    for (var, section, key) in named {
        if let Some(v) = env.get(var).filter(|v| !v.trim().is_empty()) {
            let path = [section.to_string(), key.to_string()];
            layers.push(Layer::single(
                format!("environment variable {var}"),
                &path,
                Value::from(v.clone()),
            ));
        }
    }
    for (var, v) in env.range("TOKENWATCH__".to_string()..) {
        let Some(rest) = var.strip_prefix("TOKENWATCH__") else {
            break;
        };
        let origin = format!("environment variable {var}");
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.iter().any(|s| s.is_empty()) {
            return Err(ConfigError::new(
                origin,
                None,
                "expected TOKENWATCH__SECTION__KEY, like TOKENWATCH__MONITOR__CHECK_INTERVAL",
            ));
        }
        if v.trim().is_empty() {
            // An empty TOKENWATCH__SERVER__LISTEN turns the HTTP API off (over a config
            // file's address); other empty variables are ignored.
            if path == ["server", "listen"] {
                layers.push(Layer::single(origin, &path, Value::from("off")));
            }
            continue;
        }
        let value = if v.trim_start().starts_with('[') {
            let list: Vec<String> = serde_json::from_str(v).map_err(|_| {
                ConfigError::new(
                    &origin,
                    Some(&path.join(".")),
                    "a value starting with [ must be a JSON list of strings, like [\"systemctl\",\"restart\",\"engine\"]",
                )
            })?;
            Value::from(list)
        } else {
            Value::from(v.clone())
        };
        layers.push(Layer::single(origin, &path, value));
    }
    Ok(layers)
}

/// The older Python manager's credentials: `api_key`|`client_id`, `api_secret`|`client_secret`,
/// `redirect_uri`. Other keys in that file are ignored.
fn legacy_layer(path: &Path) -> Result<Option<Layer>, ConfigError> {
    #[derive(serde::Deserialize)]
    struct Legacy {
        #[serde(alias = "api_key")]
        client_id: Option<serde_json::Value>,
        #[serde(alias = "api_secret")]
        client_secret: Option<serde_json::Value>,
        redirect_uri: Option<String>,
    }
    let origin = format!("legacy credentials file {}", path.display());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::new(
                origin,
                None,
                format!("cannot read it: {e}"),
            ));
        }
    };
    let legacy: Legacy = serde_json::from_str(&text).map_err(|e| {
        ConfigError::new(
            &origin,
            None,
            format!(
                "expected a JSON object with api_key, api_secret and redirect_uri (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let scalar = |v: Option<serde_json::Value>, key: &str| -> Result<Option<String>, ConfigError> {
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ConfigError::new(&origin, Some(key), "expected a string")),
        }
    };
    let mut upstox = Dict::new();
    if let Some(v) = scalar(legacy.client_id, "api_key")? {
        upstox.insert("client_id".into(), Value::from(v));
    }
    if let Some(v) = scalar(legacy.client_secret, "api_secret")? {
        upstox.insert("client_secret".into(), Value::from(v));
    }
    if let Some(v) = legacy.redirect_uri.filter(|v| !v.trim().is_empty()) {
        upstox.insert("redirect_uri".into(), Value::from(v));
    }
    Ok(Some(Layer {
        origin,
        dict: Dict::from([("upstox".to_string(), Value::from(upstox))]),
    }))
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
