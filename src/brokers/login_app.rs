//! The app a login signs in to ([`LoginApp`]), read from an account's broker section.

use super::*;
use crate::brokers::angel::NO_BROWSER_LOGIN;

/// The app a login signs in to: the broker's API key and secret and where the browser goes.
#[derive(Debug, Clone)]
pub struct LoginApp {
    /// The app's API key (Upstox `client_id`, Kite `api_key`).
    pub client_id: String,
    /// The app's secret (Upstox `client_secret`, Kite `api_secret`).
    pub client_secret: Secret,
    /// The registered redirect URI (loopback).
    pub redirect_uri: Url,
    /// Where the login page is (Upstox: the API base; Kite: `kite.login_base`).
    pub login_base: Url,
    /// The broker's id of the user who must log in, when the login has to check whose session
    /// it got (Dhan's `dhanClientId`: its redirect carries no `state`).
    pub user_id: Option<String>,
}

impl LoginApp {
    /// The login app of `account`, or what to set when a key is missing.
    pub fn for_account(account: &crate::config::AccountConfig) -> Result<LoginApp, String> {
        match account.broker {
            Broker::Upstox => {
                let u = &account.upstox;
                Ok(LoginApp {
                    client_id: u.client_id.clone().ok_or(
                        "upstox.client_id is not set; set UPSTOX_CLIENT_ID or upstox.client_id to your app's API key",
                    )?,
                    client_secret: u.client_secret.clone().ok_or(
                        "upstox.client_secret is not set; set UPSTOX_CLIENT_SECRET (or .env) to your app's secret",
                    )?,
                    redirect_uri: u.redirect_uri.clone(),
                    login_base: u.api_base.clone(),
                    user_id: None,
                })
            }
            Broker::Kite => {
                let k = &account.kite;
                Ok(LoginApp {
                    client_id: k.api_key.clone().ok_or(
                        "kite.api_key is not set; set KITE_API_KEY or kite.api_key to your Kite Connect app's API key",
                    )?,
                    client_secret: k.api_secret.clone().ok_or(
                        "kite.api_secret is not set; set KITE_API_SECRET (or .env) to your Kite Connect app's secret",
                    )?,
                    redirect_uri: k.redirect_uri.clone(),
                    login_base: k.login_base.clone(),
                    user_id: None,
                })
            }
            Broker::Fyers => {
                let f = &account.fyers;
                let client_id = f.client_id.clone().ok_or(format!(
                    "fyers.client_id is not set; set FYERS_CLIENT_ID or fyers.client_id to your Fyers app's id ({})",
                    fyers::CLIENT_ID_HINT
                ))?;
                if !fyers::client::has_app_type(&client_id) {
                    return Err(format!(
                        "fyers.client_id has no app-type suffix; {} (set FYERS_CLIENT_ID or fyers.client_id)",
                        fyers::CLIENT_ID_HINT
                    ));
                }
                Ok(LoginApp {
                    client_id,
                    client_secret: f.secret_key.clone().ok_or(
                        "fyers.secret_key is not set; set FYERS_SECRET_KEY (or .env) to your Fyers app's secret",
                    )?,
                    redirect_uri: f.redirect_uri.clone(),
                    login_base: f.login_base.clone(),
                    user_id: None,
                })
            }
            Broker::Dhan => {
                let d = &account.dhan;
                let user = d
                    .client_id
                    .clone()
                    .ok_or_else(|| dhan::missing("dhan.client_id"))?;
                Ok(LoginApp {
                    client_id: d
                        .api_key
                        .clone()
                        .ok_or_else(|| dhan::missing("dhan.api_key"))?,
                    client_secret: d
                        .api_secret
                        .clone()
                        .ok_or_else(|| dhan::missing("dhan.api_secret"))?,
                    redirect_uri: d.redirect_uri.clone(),
                    login_base: d.login_base.clone(),
                    user_id: Some(user),
                })
            }
            Broker::Angel => Err(NO_BROWSER_LOGIN.into()),
        }
    }
}
