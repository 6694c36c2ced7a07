//! The brokers' sections of the configuration: `upstox:`, `kite:`, `fyers:`, `angel:` and
//! `dhan:`, each with its defaults.

use super::*;

/// `upstox:`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstoxConfig {
    /// The app's API key.
    #[serde(deserialize_with = "opt_string")]
    pub client_id: Option<String>,
    /// The app's secret. Never printed or logged.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub client_secret: Option<Secret>,
    /// Must equal the redirect URI registered with Upstox.
    #[serde(deserialize_with = "http_url")]
    pub redirect_uri: url::Url,
    /// Upstox's API base URL; tests point it at a local stand-in.
    #[serde(deserialize_with = "http_url")]
    pub api_base: url::Url,
    /// The older Python token manager's credentials file, read when present.
    pub legacy_credentials: PathBuf,
}

impl Default for UpstoxConfig {
    fn default() -> Self {
        UpstoxConfig {
            client_id: None,
            client_secret: None,
            redirect_uri: url::Url::parse("http://localhost:5001/callback").expect("valid URL"),
            api_base: url::Url::parse("https://api.upstox.com").expect("valid URL"),
            legacy_credentials: PathBuf::from("~/Algo/upstox_credentials.json"),
        }
    }
}

/// `kite:` a Zerodha Kite Connect app.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KiteConfig {
    /// The app's API key.
    #[serde(deserialize_with = "opt_string")]
    pub api_key: Option<String>,
    /// The app's secret. Never printed or logged.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub api_secret: Option<Secret>,
    /// Must equal the redirect URL registered with the Kite Connect app.
    #[serde(deserialize_with = "http_url")]
    pub redirect_uri: url::Url,
    /// Kite's API base URL; tests point it at a local stand-in.
    #[serde(deserialize_with = "http_url")]
    pub api_base: url::Url,
    /// Where Kite's login page is.
    #[serde(deserialize_with = "http_url")]
    pub login_base: url::Url,
}

impl Default for KiteConfig {
    fn default() -> Self {
        KiteConfig {
            api_key: None,
            api_secret: None,
            redirect_uri: url::Url::parse("http://localhost:5001/callback").expect("valid URL"),
            api_base: url::Url::parse("https://api.kite.trade").expect("valid URL"),
            login_base: url::Url::parse("https://kite.zerodha.com").expect("valid URL"),
        }
    }
}

/// `fyers:` a Fyers API v3 app.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FyersConfig {
    /// The app id with its app-type suffix, like `AB12CD34EF-100`.
    #[serde(deserialize_with = "opt_string")]
    pub client_id: Option<String>,
    /// The app's secret. Never printed or logged.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub secret_key: Option<Secret>,
    /// The user's PIN, for `renew.strategy: refresh-token`. Never printed or logged.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub pin: Option<Secret>,
    /// Must equal the redirect URL registered with the Fyers app.
    #[serde(deserialize_with = "http_url")]
    pub redirect_uri: url::Url,
    /// Fyers' API base URL; tests point it at a local stand-in.
    #[serde(deserialize_with = "http_url")]
    pub api_base: url::Url,
    /// Where Fyers' login page is.
    #[serde(deserialize_with = "http_url")]
    pub login_base: url::Url,
    /// The Fyers error codes that mean the token is dead (uncertain; see the login docs).
    pub invalid_codes: Vec<i64>,
}

impl Default for FyersConfig {
    fn default() -> Self {
        FyersConfig {
            client_id: None,
            secret_key: None,
            pin: None,
            redirect_uri: url::Url::parse("http://localhost:5001/callback").expect("valid URL"),
            api_base: url::Url::parse("https://api-t1.fyers.in").expect("valid URL"),
            login_base: url::Url::parse("https://api-t1.fyers.in").expect("valid URL"),
            invalid_codes: crate::brokers::fyers::DEFAULT_INVALID_CODES.to_vec(),
        }
    }
}

/// `angel:` an Angel One SmartAPI app and the user who logs in with it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AngelConfig {
    /// The SmartAPI app's API key (`X-PrivateKey`).
    #[serde(deserialize_with = "opt_string")]
    pub api_key: Option<String>,
    /// The Angel One client code (user id) that logs in.
    #[serde(deserialize_with = "opt_string")]
    pub client_code: Option<String>,
    /// The user's PIN. Never printed or logged.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub pin: Option<Secret>,
    /// The base32 secret the TOTP codes are made from. Never printed or logged. When
    /// `totp_secret_file` is set, the loaded configuration holds the file's secret here.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub totp_secret: Option<Secret>,
    /// A file (mode 0600) holding the TOTP secret, instead of `totp_secret`.
    #[serde(deserialize_with = "opt_path")]
    pub totp_secret_file: Option<PathBuf>,
    /// Angel One's API base URL; tests point it at a local stand-in.
    #[serde(deserialize_with = "http_url")]
    pub api_base: url::Url,
    /// The Angel One error codes that mean the token is dead (uncertain; see the login docs).
    pub invalid_codes: Vec<String>,
    /// `X-ClientLocalIP` (what Angel One does with it is not documented).
    pub client_local_ip: String,
    /// `X-ClientPublicIP` (what Angel One does with it is not documented).
    pub client_public_ip: String,
    /// `X-MACAddress` (what Angel One does with it is not documented).
    pub mac_address: String,
}

impl Default for AngelConfig {
    fn default() -> Self {
        use crate::brokers::angel;
        AngelConfig {
            api_key: None,
            client_code: None,
            pin: None,
            totp_secret: None,
            totp_secret_file: None,
            api_base: url::Url::parse("https://apiconnect.angelone.in").expect("valid URL"),
            invalid_codes: angel::DEFAULT_INVALID_CODES.map(String::from).to_vec(),
            client_local_ip: angel::DEFAULT_LOCAL_IP.into(),
            client_public_ip: angel::DEFAULT_PUBLIC_IP.into(),
            mac_address: angel::DEFAULT_MAC_ADDRESS.into(),
        }
    }
}

impl AngelConfig {
    /// The client-address headers these keys give.
    pub fn client_headers(&self) -> crate::brokers::angel::client::ClientHeaders {
        crate::brokers::angel::client::ClientHeaders {
            local_ip: self.client_local_ip.clone(),
            public_ip: self.client_public_ip.clone(),
            mac_address: self.mac_address.clone(),
        }
    }
}

/// `dhan:` a DhanHQ v2 app and the Dhan user it logs in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DhanConfig {
    /// The user's Dhan client id (`dhanClientId`).
    #[serde(deserialize_with = "opt_string")]
    pub client_id: Option<String>,
    /// The app's API key (`app_id`), for the browser login.
    #[serde(deserialize_with = "opt_string")]
    pub api_key: Option<String>,
    /// The app's secret (`app_secret`). Never printed or logged.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub api_secret: Option<Secret>,
    /// The user's PIN, for `renew.strategy: totp`. Never printed or logged.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub pin: Option<Secret>,
    /// The user's TOTP secret (base32), for `renew.strategy: totp`. Never printed or logged.
    #[serde(
        deserialize_with = "deserialize_opt_secret",
        serialize_with = "ser_opt_secret"
    )]
    pub totp_secret: Option<Secret>,
    /// A file (mode 0600) holding the TOTP secret, instead of `totp_secret`.
    #[serde(deserialize_with = "opt_path")]
    pub totp_secret_file: Option<PathBuf>,
    /// Must equal the redirect URL registered with the Dhan app.
    #[serde(deserialize_with = "http_url")]
    pub redirect_uri: url::Url,
    /// Dhan's API base URL; tests point it at a local stand-in.
    #[serde(deserialize_with = "http_url")]
    pub api_base: url::Url,
    /// Where Dhan's login calls and page are.
    #[serde(deserialize_with = "http_url")]
    pub login_base: url::Url,
    /// The Dhan error codes that mean the token is dead (uncertain; see the login docs).
    #[serde(deserialize_with = "codes")]
    pub invalid_codes: Vec<String>,
}

impl Default for DhanConfig {
    fn default() -> Self {
        DhanConfig {
            client_id: None,
            api_key: None,
            api_secret: None,
            pin: None,
            totp_secret: None,
            totp_secret_file: None,
            redirect_uri: url::Url::parse("http://localhost:5003/callback").expect("valid URL"),
            api_base: url::Url::parse("https://api.dhan.co").expect("valid URL"),
            login_base: url::Url::parse("https://auth.dhan.co").expect("valid URL"),
            invalid_codes: crate::brokers::dhan::DEFAULT_INVALID_CODES
                .map(String::from)
                .to_vec(),
        }
    }
}
