//! `tokenwatch demo`: the dashboard against the embedded simulator, in a temporary folder,
//! with a compressed timeline. No credentials, no network, nothing of the user's touched.
//! `--brokers upstox,kite` adds a Zerodha Kite account beside the Upstox one, against the
//! Kite simulator: two tabs, each account by its own broker's rules. `fyers` adds a Fyers
//! account against the Fyers simulator the same way, `angel` an Angel One account whose first
//! token comes from the TOTP login against the Angel One simulator, as its renewals do, and
//! `dhan` a Dhan account against the Dhan simulator (its `l` runs the consent login through
//! the demo's built-in browser).

use super::runtime;
use crate::brokers::upstox::sim::{SimConfig, Simulator};
use crate::cli::DemoArgs;
use crate::clock::SystemClock;
use crate::config::{
    AccountConfig, Config, LogConfig, LoginConfig, MonitorConfig, NotificationsConfig, RenewConfig,
    ServerConfig, Sources, Strategy, TokenConfig, UpstoxConfig,
};
use crate::token::store::TokenStore;
use crate::token::{ExpirySource, Token, TokenFileFormat};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn run(args: &DemoArgs) -> u8 {
    if args.expires_in < Duration::from_secs(10) || args.expires_in > Duration::from_secs(24 * 3600)
    {
        eprintln!("tokenwatch: --expires-in must be between 10s and 24h");
        return 3;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokenwatch: {e}");
            return 1;
        }
    };
    let extra = match parse_brokers(&args.brokers) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("tokenwatch: {e}");
            return 3;
        }
    };
    rt.block_on(demo(args.expires_in, extra))
}

/// The accounts the demo shows beside the Upstox one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Extra {
    kite: bool,
    fyers: bool,
    angel: bool,
    dhan: bool,
}

/// `--brokers`: `upstox` (the default) and optionally `kite`, `fyers`, `angel` and `dhan`.
fn parse_brokers(list: &str) -> Result<Extra, String> {
    let mut extra = Extra::default();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match crate::brokers::Broker::parse(name) {
            Some(crate::brokers::Broker::Upstox) => {}
            Some(crate::brokers::Broker::Kite) => extra.kite = true,
            Some(crate::brokers::Broker::Fyers) => extra.fyers = true,
            Some(crate::brokers::Broker::Angel) => extra.angel = true,
            Some(crate::brokers::Broker::Dhan) => extra.dhan = true,
            None => {
                return Err(format!(
                    "--brokers: the demo has simulators for upstox, kite, fyers, angel and dhan, not {name:?}"
                ));
            }
        }
    }
    Ok(extra)
}

async fn demo(expires_in: Duration, extra: Extra) -> u8 {
    let with_kite = extra.kite;
    let dir = match tempfile::Builder::new()
        .prefix("tokenwatch-demo-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tokenwatch: cannot make a temporary folder for the demo: {e}");
            return 1;
        }
    };
    // The callback port: a free loopback port below the ephemeral range (32768+), so that no
    // outgoing connection takes it before `l` binds it. The simulator gets the same URI.
    let Some(port) = callback_port(None) else {
        eprintln!("tokenwatch: no free loopback port between 20000 and 30000 for the demo's login");
        return 1;
    };
    let redirect = format!("http://localhost:{port}/callback");
    let sim_config = SimConfig {
        redirect_uri: redirect.clone(),
        token_lifetime: Some(expires_in),
        auto_approve: true,
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_config.clone(), Arc::new(SystemClock));
    let server = match sim
        .serve("127.0.0.1:0".parse().expect("static address"))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tokenwatch: cannot start the demo's simulator: {e}");
            return 1;
        }
    };
    let path = dir.path().join("upstox_token.json");
    let account = AccountConfig {
        name: "demo".into(),
        broker: crate::brokers::Broker::Upstox,
        kite: Default::default(),
        fyers: Default::default(),
        angel: Default::default(),
        dhan: Default::default(),
        upstox: UpstoxConfig {
            client_id: Some(sim_config.client_id.clone()),
            client_secret: Some(crate::secret::Secret::new(sim_config.client_secret.clone())),
            redirect_uri: url::Url::parse(&redirect).expect("a valid URL"),
            api_base: server.base_url.clone(),
            legacy_credentials: dir.path().join("none.json"),
        },
        token: demo_token(&path),
        renew: RenewConfig {
            strategy: Strategy::None,
            ..RenewConfig::default()
        },
    };
    // The compressed timeline: warning at 3 minutes left, critical at 1.
    let monitor = MonitorConfig {
        check_interval: Duration::from_secs(30),
        refresh_before: Duration::from_secs(30),
        warning_before: Duration::from_secs(180).min(expires_in),
        critical_before: Duration::from_secs(60).min(expires_in),
        max_retries: 3,
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(10),
    };
    let issued = sim.issue_token();
    let who = [
        &sim_config.user_id,
        &sim_config.user_name,
        &sim_config.email,
    ];
    if let Err(e) = store_first(
        &account,
        issued.access_token,
        issued.issued_at,
        issued.expires_at,
        who,
    ) {
        eprintln!("tokenwatch: {e}");
        return 1;
    }
    let mut accounts = BTreeMap::from([("demo".to_string(), account.clone())]);
    // The Kite account: its own simulator and callback port; its token lives 2 minutes
    // longer, so the two tabs change colour at different times.
    let mut kite_server = None;
    if with_kite {
        match kite_account(dir.path(), port, expires_in + Duration::from_secs(120)).await {
            Ok((kite, server)) => {
                accounts.insert(kite.name.clone(), kite);
                kite_server = Some(server);
            }
            Err(e) => {
                eprintln!("tokenwatch: {e}");
                return 1;
            }
        }
    }
    // The Fyers account: the same again, its token living 4 minutes longer.
    let mut fyers_server = None;
    if extra.fyers {
        match fyers_account(dir.path(), port, expires_in + Duration::from_secs(240)).await {
            Ok((fyers, server)) => {
                accounts.insert(fyers.name.clone(), fyers);
                fyers_server = Some(server);
            }
            Err(e) => {
                eprintln!("tokenwatch: {e}");
                return 1;
            }
        }
    }
    // The Angel One account: its first token from the TOTP login, living 6 minutes longer.
    let mut angel_server = None;
    if extra.angel {
        match angel_account(dir.path(), expires_in + Duration::from_secs(360)).await {
            Ok((angel, server)) => {
                accounts.insert(angel.name.clone(), angel);
                angel_server = Some(server);
            }
            Err(e) => {
                eprintln!("tokenwatch: {e}");
                return 1;
            }
        }
    }
    // The Dhan account: the same again, its token living 6 minutes longer.
    let mut dhan_server = None;
    if extra.dhan {
        match dhan_account(dir.path(), port, expires_in + Duration::from_secs(360)).await {
            Ok((dhan, server)) => {
                accounts.insert(dhan.name.clone(), dhan);
                dhan_server = Some(server);
            }
            Err(e) => {
                eprintln!("tokenwatch: {e}");
                return 1;
            }
        }
    }
    let config = Config {
        sources: Sources {
            relative_to: dir.path().to_path_buf(),
            ..Sources::default()
        },
        account,
        accounts,
        monitor,
        login: LoginConfig::default(),
        notifications: NotificationsConfig::default(),
        server: ServerConfig::default(),
        market: Default::default(),
        log: LogConfig {
            file: dir.path().join("tokenwatch.log"),
            level: crate::config::LogLevel::Info,
        },
        history: Default::default(),
    };
    let code = crate::tui::run(
        config,
        crate::tui::Options {
            builtin_browser: true,
            reload: None,
        },
    )
    .await;
    server.shutdown().await;
    if let Some(k) = kite_server {
        k.shutdown().await;
    }
    if let Some(f) = fyers_server {
        f.shutdown().await;
    }
    if let Some(a) = angel_server {
        a.shutdown().await;
    }
    if let Some(d) = dhan_server {
        d.shutdown().await;
    }
    code
}

/// A demo account's token section: `path`, with one backup in the demo's `backup/` folder.
fn demo_token(path: &std::path::Path) -> TokenConfig {
    let name = path.file_name().unwrap_or_default();
    let backup = path.with_file_name("backup").join(name);
    TokenConfig {
        path: path.to_path_buf(),
        backups: vec![backup],
        env_file: None,
        on_change: Vec::new(),
    }
}

/// Store a simulator's first token for `account`, as its login would: the user id, name and
/// email in `who`.
fn store_first(
    account: &AccountConfig,
    access_token: crate::secret::Secret,
    issued_at: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
    who: [&String; 3],
) -> Result<(), String> {
    let [user_id, user_name, email] = who.map(|w| Some(w.clone()));
    let first = Token {
        broker: account.broker,
        access_token,
        token_type: account.broker.token_type().into(),
        extended_token: None,
        user_id,
        user_name,
        email,
        issued_at: Some(issued_at),
        expires_at,
        expiry_source: ExpirySource::ExpiresAt,
        obtained_via: Some("demo".into()),
        refresh_token: None,
        format: TokenFileFormat::Format1,
    };
    TokenStore::new(&account.token.path, account.token.backups.clone())
        .with_broker(account.broker)
        .write(&first)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "cannot write the demo's {} token: {e}",
                account.broker.display_name()
            )
        })
}

/// A free loopback port below the ephemeral range (32768+), so that no outgoing connection
/// takes it before `l` binds it; not `taken`.
fn callback_port(taken: Option<u16>) -> Option<u16> {
    let offset = fastrand::u16(0..10_000);
    (0..10_000u16)
        .map(|i| 20_000 + (offset + i) % 10_000)
        .filter(|p| Some(*p) != taken)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
}

/// The demo's Zerodha Kite account `zerodha`, its first token stored, against a Kite
/// simulator that approves logins at once.
async fn kite_account(
    dir: &std::path::Path,
    upstox_port: u16,
    lifetime: Duration,
) -> Result<(AccountConfig, crate::brokers::kite::sim::SimServer), String> {
    use crate::brokers::kite::sim::{SimConfig, Simulator};
    let port = callback_port(Some(upstox_port))
        .ok_or("no second free loopback port between 20000 and 30000 for the demo's Kite login")?;
    let redirect = format!("http://localhost:{port}/callback");
    let sim_config = SimConfig {
        redirect_url: redirect.clone(),
        token_lifetime: Some(lifetime),
        auto_approve: true,
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_config.clone(), Arc::new(SystemClock));
    let server = sim
        .serve("127.0.0.1:0".parse().expect("static address"))
        .await
        .map_err(|e| format!("cannot start the demo's Kite simulator: {e}"))?;
    let path = dir.join("kite_token.json");
    let account = AccountConfig {
        name: "zerodha".into(),
        broker: crate::brokers::Broker::Kite,
        kite: crate::config::KiteConfig {
            api_key: Some(sim_config.api_key.clone()),
            api_secret: Some(crate::secret::Secret::new(sim_config.api_secret.clone())),
            redirect_uri: url::Url::parse(&redirect).expect("a valid URL"),
            api_base: server.base_url.clone(),
            login_base: server.base_url.clone(),
        },
        upstox: UpstoxConfig::default(),
        fyers: Default::default(),
        angel: Default::default(),
        dhan: Default::default(),
        token: demo_token(&path),
        renew: RenewConfig {
            strategy: Strategy::None,
            ..RenewConfig::default()
        },
    };
    let issued = sim.issue_token();
    let who = [
        &sim_config.user_id,
        &sim_config.user_name,
        &sim_config.email,
    ];
    store_first(
        &account,
        issued.access_token,
        issued.issued_at,
        issued.expires_at,
        who,
    )?;
    Ok((account, server))
}

/// The demo's Fyers account `fyers`, its first token stored, against a Fyers simulator that
/// approves logins at once.
async fn fyers_account(
    dir: &std::path::Path,
    upstox_port: u16,
    lifetime: Duration,
) -> Result<(AccountConfig, crate::brokers::fyers::sim::SimServer), String> {
    use crate::brokers::fyers::sim::{SimConfig, Simulator};
    let port = callback_port(Some(upstox_port))
        .ok_or("no free loopback port between 20000 and 30000 for the demo's Fyers login")?;
    let redirect = format!("http://localhost:{port}/callback");
    let sim_config = SimConfig {
        redirect_url: redirect.clone(),
        token_lifetime: Some(lifetime),
        auto_approve: true,
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_config.clone(), Arc::new(SystemClock));
    let server = sim
        .serve("127.0.0.1:0".parse().expect("static address"))
        .await
        .map_err(|e| format!("cannot start the demo's Fyers simulator: {e}"))?;
    let path = dir.join("fyers_token.json");
    let account = AccountConfig {
        name: "fyers".into(),
        broker: crate::brokers::Broker::Fyers,
        kite: Default::default(),
        fyers: crate::config::FyersConfig {
            client_id: Some(sim_config.client_id.clone()),
            secret_key: Some(crate::secret::Secret::new(sim_config.secret_key.clone())),
            redirect_uri: url::Url::parse(&redirect).expect("a valid URL"),
            api_base: server.base_url.clone(),
            login_base: server.base_url.clone(),
            ..Default::default()
        },
        angel: Default::default(),
        dhan: Default::default(),
        upstox: UpstoxConfig::default(),
        token: demo_token(&path),
        renew: RenewConfig {
            strategy: Strategy::None,
            ..RenewConfig::default()
        },
    };
    let issued = sim.issue_token();
    let who = [&sim_config.fy_id, &sim_config.name, &sim_config.email];
    store_first(
        &account,
        issued.access_token,
        issued.issued_at,
        issued.expires_at,
        who,
    )?;
    Ok((account, server))
}

/// The demo's Angel One account `angel` against an Angel One simulator: renewed by the TOTP
/// login (no browser), its first token obtained the same way and stored with its refresh
/// token.
async fn angel_account(
    dir: &std::path::Path,
    lifetime: Duration,
) -> Result<(AccountConfig, crate::brokers::angel::sim::SimServer), String> {
    use crate::brokers::angel::sim::{SimConfig, Simulator};
    use crate::brokers::{BrokerClient, Headless, Renewing};
    use crate::secret::Secret;
    let sim_config = SimConfig {
        token_lifetime: Some(lifetime),
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_config.clone(), Arc::new(SystemClock));
    let server = sim
        .serve("127.0.0.1:0".parse().expect("static address"))
        .await
        .map_err(|e| format!("cannot start the demo's Angel One simulator: {e}"))?;
    let path = dir.join("angel_token.json");
    let account = AccountConfig {
        name: "angel".into(),
        broker: crate::brokers::Broker::Angel,
        kite: Default::default(),
        fyers: Default::default(),
        dhan: Default::default(),
        angel: crate::config::AngelConfig {
            api_key: Some(sim_config.api_key.clone()),
            client_code: Some(sim_config.client_code.clone()),
            pin: Some(Secret::new(sim_config.pin.clone())),
            totp_secret: Some(Secret::new(sim_config.totp_secret.clone())),
            api_base: server.base_url.clone(),
            ..Default::default()
        },
        upstox: UpstoxConfig::default(),
        token: demo_token(&path),
        renew: RenewConfig {
            strategy: Strategy::Totp,
            ..RenewConfig::default()
        },
    };
    let failed = |e: crate::brokers::ApiError| format!("the demo's Angel One login failed: {e}");
    let client = BrokerClient::for_account(&account).map_err(failed)?;
    let now = chrono::Utc::now();
    let session = client
        .renew(
            Headless::Totp,
            Renewing {
                current: None,
                refresh_token: None,
                now,
            },
        )
        .await
        .map_err(failed)?;
    let mut first = crate::brokers::session_token(account.broker, session, now, "totp")
        .ok_or("the demo's Angel One token says nothing of when it ends")?;
    let who = client.profile(&first.access_token).await.map_err(failed)?;
    first.user_id = who.user_id;
    first.user_name = who.user_name;
    first.email = who.email;
    TokenStore::new(&account.token.path, account.token.backups.clone())
        .with_broker(account.broker)
        .write(&first)
        .map_err(|e| format!("cannot write the demo's Angel One token: {e}"))?;
    Ok((account, server))
}

/// The demo's Dhan account `dhan`, its first token stored, against a Dhan simulator that
/// approves logins at once.
async fn dhan_account(
    dir: &std::path::Path,
    upstox_port: u16,
    lifetime: Duration,
) -> Result<(AccountConfig, crate::brokers::dhan::sim::SimServer), String> {
    use crate::brokers::dhan::sim::{SimConfig, Simulator};
    let port = callback_port(Some(upstox_port))
        .ok_or("no free loopback port between 20000 and 30000 for the demo's Dhan login")?;
    let redirect = format!("http://localhost:{port}/callback");
    let sim_config = SimConfig {
        redirect_url: redirect.clone(),
        token_lifetime: Some(lifetime),
        auto_approve: true,
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_config.clone(), Arc::new(SystemClock));
    let server = sim
        .serve("127.0.0.1:0".parse().expect("static address"))
        .await
        .map_err(|e| format!("cannot start the demo's Dhan simulator: {e}"))?;
    let path = dir.join("dhan_token.json");
    let account = AccountConfig {
        name: "dhan".into(),
        broker: crate::brokers::Broker::Dhan,
        kite: Default::default(),
        fyers: Default::default(),
        angel: Default::default(),
        dhan: crate::config::DhanConfig {
            client_id: Some(sim_config.client_id.clone()),
            api_key: Some(sim_config.app_id.clone()),
            api_secret: Some(crate::secret::Secret::new(sim_config.app_secret.clone())),
            redirect_uri: url::Url::parse(&redirect).expect("a valid URL"),
            api_base: server.base_url.clone(),
            login_base: server.base_url.clone(),
            ..Default::default()
        },
        upstox: UpstoxConfig::default(),
        token: demo_token(&path),
        renew: RenewConfig {
            strategy: Strategy::None,
            ..RenewConfig::default()
        },
    };
    let issued = sim.issue_token();
    let who = [
        &sim_config.client_id,
        &sim_config.client_name,
        &String::new(),
    ];
    store_first(
        &account,
        issued.access_token,
        issued.issued_at,
        issued.expires_at,
        who,
    )?;
    Ok((account, server))
}

#[cfg(test)]
mod tests {
    use super::{Extra, parse_brokers};

    #[test]
    fn brokers_name_the_simulators_the_demo_has() {
        let kite = Extra {
            kite: true,
            ..Extra::default()
        };
        assert_eq!(parse_brokers("upstox"), Ok(Extra::default()));
        assert_eq!(parse_brokers("upstox,kite"), Ok(kite));
        assert_eq!(parse_brokers(" kite , upstox "), Ok(kite));
        assert_eq!(
            parse_brokers("upstox,kite,fyers"),
            Ok(Extra {
                kite: true,
                fyers: true,
                ..Extra::default()
            })
        );
        assert_eq!(
            parse_brokers("upstox,kite,fyers,angel"),
            Ok(Extra {
                kite: true,
                fyers: true,
                angel: true,
                dhan: false
            })
        );
        assert_eq!(
            parse_brokers("upstox,dhan"),
            Ok(Extra {
                dhan: true,
                ..Extra::default()
            })
        );
        assert!(parse_brokers("upstox,zerodha").is_err());
    }
}
