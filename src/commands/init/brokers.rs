//! What `init` asks for each broker: one table of the app's keys (the config key, its
//! variable, the flag that gives it, whether it is a secret, and its format), the redirect
//! rule and the strategies' one-line explanations. The questions themselves are asked by
//! `mod.rs`, the same code for every broker.

use crate::brokers::Broker;
use crate::config::Strategy;
use crate::secret::Secret;

/// When a key is asked: always, or only for some strategies.
#[derive(Debug, Clone, Copy)]
pub(super) enum When {
    /// Every account of the broker needs it.
    Always,
    /// Needed unless the account renews with this strategy.
    Unless(Strategy),
    /// Needed only when the account renews with this strategy.
    If(Strategy),
}

/// The flag that answers a key without a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flag {
    /// `--client-id`
    ClientId,
    /// `--client-secret-env VAR`
    ClientSecretEnv,
    /// `--client-code`
    ClientCode,
    /// `--api-key`
    ApiKey,
    /// `--pin-env VAR`
    PinEnv,
    /// `--totp-secret-env VAR`
    TotpSecretEnv,
}

impl Flag {
    /// `--client-id`, for messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Flag::ClientId => "--client-id",
            Flag::ClientSecretEnv => "--client-secret-env",
            Flag::ClientCode => "--client-code",
            Flag::ApiKey => "--api-key",
            Flag::PinEnv => "--pin-env",
            Flag::TotpSecretEnv => "--totp-secret-env",
        }
    }

    /// Whether the flag names a variable that holds the value (secrets never go in argv).
    #[cfg(test)]
    pub(super) fn names_a_variable(self) -> bool {
        matches!(
            self,
            Flag::ClientSecretEnv | Flag::PinEnv | Flag::TotpSecretEnv
        )
    }
}

/// One key of a broker's app or user.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    /// The key in the broker's section: `client_id`.
    pub key: &'static str,
    /// The environment variable that sets it: `UPSTOX_CLIENT_ID`.
    pub var: &'static str,
    /// What people call it: "client id (the app's API key)".
    pub label: &'static str,
    /// Asked with hidden input, kept out of every output, written to `.env` (or a 0600 file).
    pub secret: bool,
    /// The flag that gives it without a terminal.
    pub flag: Flag,
    /// When it is asked.
    pub when: When,
    /// Its format: `Err(why)` for a malformed value.
    pub check: fn(&str) -> Result<(), String>,
}

impl Field {
    /// Whether an account of this strategy needs the key.
    pub(super) fn needed(&self, strategy: Option<Strategy>) -> bool {
        match (self.when, strategy) {
            (When::Always, _) => true,
            (When::Unless(s), Some(chosen)) => s != chosen,
            (When::If(s), Some(chosen)) => s == chosen,
            // Before the strategy is chosen only the keys every account needs are asked.
            (_, None) => false,
        }
    }

    /// Whether the key depends on the strategy (asked after it).
    pub(super) fn after_strategy(&self) -> bool {
        !matches!(self.when, When::Always)
    }
}

const fn field(
    key: &'static str,
    var: &'static str,
    label: &'static str,
    secret: bool,
    flag: Flag,
    when: When,
    check: fn(&str) -> Result<(), String>,
) -> Field {
    Field {
        key,
        var,
        label,
        secret,
        flag,
        when,
        check,
    }
}

use Flag::*;
use When::*;

#[rustfmt::skip]
const UPSTOX: &[Field] = &[
    field("client_id", "UPSTOX_CLIENT_ID", "client id (your app's API key)", false, ClientId, Always, app_id),
    field("client_secret", "UPSTOX_CLIENT_SECRET", "client secret (your app's API secret)", true, ClientSecretEnv, Always, secret),
];
#[rustfmt::skip]
const KITE: &[Field] = &[
    field("api_key", "KITE_API_KEY", "API key (your Kite Connect app's)", false, ClientId, Always, alphanumeric),
    field("api_secret", "KITE_API_SECRET", "API secret", true, ClientSecretEnv, Always, secret),
];
#[rustfmt::skip]
const FYERS: &[Field] = &[
    field("client_id", "FYERS_CLIENT_ID", "app id, with its -100 suffix (like AB12CD34EF-100)", false, ClientId, Always, fyers_app_id),
    field("secret_key", "FYERS_SECRET_KEY", "secret key", true, ClientSecretEnv, Always, secret),
    field("pin", "FYERS_PIN", "PIN (Fyers' refresh grant asks for it)", true, PinEnv, If(Strategy::RefreshToken), pin),
];
#[rustfmt::skip]
const ANGEL: &[Field] = &[
    field("api_key", "ANGEL_API_KEY", "SmartAPI API key", false, ClientId, Always, alphanumeric),
    field("client_code", "ANGEL_CLIENT_CODE", "client code (the user id you log in with)", false, ClientCode, Always, alphanumeric),
    field("pin", "ANGEL_PIN", "PIN", true, PinEnv, Always, pin),
    field("totp_secret", "ANGEL_TOTP_SECRET", "TOTP secret (the base32 text shown when you enabled TOTP)", true, TotpSecretEnv, Always, totp_secret),
];
#[rustfmt::skip]
const DHAN: &[Field] = &[
    field("client_id", "DHAN_CLIENT_ID", "client id (your Dhan user id)", false, ClientId, Always, alphanumeric),
    field("api_key", "DHAN_API_KEY", "app API key (for the browser login)", false, ApiKey, Unless(Strategy::Totp), app_id),
    field("api_secret", "DHAN_API_SECRET", "app API secret", true, ClientSecretEnv, Unless(Strategy::Totp), secret),
    field("pin", "DHAN_PIN", "PIN", true, PinEnv, If(Strategy::Totp), pin),
    field("totp_secret", "DHAN_TOTP_SECRET", "TOTP secret (the base32 text Dhan showed)", true, TotpSecretEnv, If(Strategy::Totp), totp_secret),
];

/// The keys `init` asks for a broker's account, in the order asked.
pub(super) fn fields(broker: Broker) -> &'static [Field] {
    match broker {
        Broker::Upstox => UPSTOX,
        Broker::Kite => KITE,
        Broker::Fyers => FYERS,
        Broker::Angel => ANGEL,
        Broker::Dhan => DHAN,
    }
}

/// Where the broker's developer console is, for the redirect question.
pub(super) fn console(broker: Broker) -> &'static str {
    match broker {
        Broker::Upstox => {
            "the Upstox developer console (Upstox Developer Apps → your app → Redirect URL)"
        }
        Broker::Kite => {
            "the Kite Connect developer console (developers.kite.trade → your app → Redirect URL)"
        }
        Broker::Fyers => "the Fyers API dashboard (myapi.fyers.in → your app → Redirect URL)",
        Broker::Dhan => "web.dhan.co (My Profile → Access DhanHQ APIs → your app → Redirect URL)",
        Broker::Angel => "the SmartAPI console",
    }
}

/// The broker's default redirect URL (what an account that names none uses).
pub(super) fn default_redirect(broker: Broker) -> url::Url {
    use crate::config::*;
    match broker {
        Broker::Kite => KiteConfig::default().redirect_uri,
        Broker::Fyers => FyersConfig::default().redirect_uri,
        Broker::Dhan => DhanConfig::default().redirect_uri,
        _ => UpstoxConfig::default().redirect_uri,
    }
}

/// The redirect rule: an http(s) URL (as the config's loader reads it) whose host is this
/// machine's loopback (as the login's callback listener needs it).
pub(super) fn redirect(broker: Broker, text: &str) -> Result<url::Url, String> {
    let url = crate::config::parse_http_url(text)?;
    // The listener's rule, in words for this question rather than for the config file.
    if crate::auth::callback::loopback_addrs(&url, broker).is_err() {
        return Err(format!(
            "{url} is not on this machine (localhost, 127.0.0.1 or [::1]), so tokenwatch \
             cannot receive the login there; use e.g. {} and register that with the {} app",
            default_redirect(broker),
            broker.display_name()
        ));
    }
    Ok(url)
}

/// One line per strategy: what it does (the words of docs/login.md).
pub(super) fn explain(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Browser => "opens the login for you when renewal is due",
        Strategy::TokenRequest => {
            "posts Upstox's v3 access-token request and waits for your approval on the phone"
        }
        Strategy::Command => {
            "runs renew.command, reads a token from its stdout, checks it, and only then stores it"
        }
        Strategy::Totp => {
            "logs in through the broker's API with your PIN and a code made from your TOTP secret, with no browser and no person"
        }
        Strategy::RefreshToken => {
            "asks the broker for a new token with what the last login left, with no browser"
        }
        Strategy::None => "only alerts",
    }
}

/// Whether the account's logins go through a browser (and so need a redirect URL).
pub(super) fn logs_in_with_browser(broker: Broker, strategy: Strategy) -> bool {
    !broker.logs_in_headless(strategy)
}

fn not_empty(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("an answer is needed".into());
    }
    Ok(())
}

/// An app id or key: letters, digits, `-` and `_` (formats the brokers do not document
/// exactly are not checked further).
fn app_id(s: &str) -> Result<(), String> {
    not_empty(s)?;
    if s.len() > 100 {
        return Err("is longer than 100 characters; paste the id alone".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "may hold letters, digits, - and _ only, not {c:?}; paste the id alone"
        ));
    }
    Ok(())
}

fn alphanumeric(s: &str) -> Result<(), String> {
    app_id(s)?;
    if s.contains(['-', '_']) {
        return Err("may hold letters and digits only; paste the id alone".into());
    }
    Ok(())
}

fn fyers_app_id(s: &str) -> Result<(), String> {
    app_id(s)?;
    if !crate::brokers::fyers::client::has_app_type(s) {
        return Err(format!(
            "has no app-type suffix: {}",
            crate::brokers::fyers::CLIENT_ID_HINT
        ));
    }
    Ok(())
}

fn secret(s: &str) -> Result<(), String> {
    not_empty(s)?;
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("holds a space or a control character; paste the value alone".into());
    }
    Ok(())
}

fn pin(s: &str) -> Result<(), String> {
    not_empty(s)?;
    if !s.bytes().all(|b| b.is_ascii_digit()) || !(4..=8).contains(&s.len()) {
        return Err("a PIN is 4 to 8 digits".into());
    }
    Ok(())
}

fn totp_secret(s: &str) -> Result<(), String> {
    not_empty(s)?;
    crate::brokers::totp::validate(&Secret::new(s.trim())).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broker_has_its_id_first_and_secrets_marked() {
        for b in Broker::ALL {
            let f = fields(b);
            assert_eq!(f[0].flag, Flag::ClientId, "{b}");
            assert!(!f[0].secret);
            for f in f {
                assert_eq!(f.secret, f.flag.names_a_variable(), "{b} {}", f.key);
                assert!(
                    f.var.starts_with(&b.as_str().to_ascii_uppercase()),
                    "{}",
                    f.var
                );
            }
        }
    }

    #[test]
    fn formats() {
        assert!(app_id("615b1297-d443-3b39-ba19-1927fbcdddc7").is_ok());
        assert!(app_id("has space").is_err());
        assert!(app_id("").is_err());
        assert!(fyers_app_id("AB12CD34EF-100").is_ok());
        assert!(fyers_app_id("AB12CD34EF").unwrap_err().contains("-100"));
        assert!(pin("1234").is_ok());
        assert!(pin("12a4").is_err());
        assert!(totp_secret("JBSWY3DPEHPK3PXP").is_ok());
        assert!(totp_secret("not base32!").is_err());
        assert!(secret("abc def").is_err());
    }

    #[test]
    fn the_redirect_rule_is_the_listeners() {
        assert!(redirect(Broker::Upstox, "http://localhost:5001/callback").is_ok());
        assert!(redirect(Broker::Upstox, "http://127.0.0.1:5002/cb").is_ok());
        let e = redirect(Broker::Upstox, "https://example.com/callback").unwrap_err();
        assert!(e.contains("is not on this machine"), "{e}");
        let e = redirect(Broker::Upstox, "ftp://localhost/x").unwrap_err();
        assert!(e.contains("http(s)"), "{e}");
    }
}
