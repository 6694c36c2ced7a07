//! `tokenwatch simulate`: an embedded broker simulator (Upstox, or Kite with `--broker kite`,
//! Fyers with `--broker fyers`, Angel One with `--broker angel`, Dhan with `--broker dhan`)
//! on loopback, until Ctrl-C.

use super::runtime;
use crate::brokers::upstox::sim::{SimConfig, Simulator};
use crate::cli::SimulateArgs;
use crate::clock::SystemClock;
use std::sync::Arc;

pub(super) fn run(args: &SimulateArgs) -> u8 {
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "tokenwatch: the simulator listens on loopback only; use --listen 127.0.0.1:{}",
            args.listen.port()
        );
        return 3;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokenwatch: {e}");
            return 1;
        }
    };
    if args.broker == crate::brokers::Broker::Kite {
        return rt.block_on(kite(args));
    }
    if args.broker == crate::brokers::Broker::Fyers {
        return rt.block_on(fyers(args));
    }
    if args.broker == crate::brokers::Broker::Angel {
        return rt.block_on(angel(args));
    }
    if args.broker == crate::brokers::Broker::Dhan {
        return rt.block_on(dhan(args));
    }
    rt.block_on(async {
        let config = SimConfig {
            auto_approve: args.auto_approve,
            token_lifetime: args.token_lifetime,
            notifier_url: args.notifier_url.clone(),
            ..SimConfig::default()
        };
        let sim = Simulator::new(config.clone(), Arc::new(SystemClock));
        let server = match sim.serve(args.listen).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "tokenwatch: cannot listen on {}: {e}; pick another port with --listen 127.0.0.1:PORT",
                    args.listen
                );
                return 1;
            }
        };
        let base = server.base_url.as_str().trim_end_matches('/').to_owned();
        let lifetime = match args.token_lifetime {
            Some(d) => format!("{} after issue", crate::timefmt::human(d)),
            None => "03:30 IST after issue (the real rule)".into(),
        };
        println!("Upstox simulator listening on {base}");
        println!("  client_id:     {}", config.client_id);
        println!("  client_secret: {} (a simulator value)", config.client_secret);
        println!("  redirect_uri:  {}", config.redirect_uri);
        println!("  user:          {} ({})", config.user_id, config.user_name);
        println!("  tokens expire: {lifetime}");
        println!(
            "  logins:        {}",
            if args.auto_approve { "approved at once" } else { "approve on the consent page" }
        );
        match &args.notifier_url {
            Some(u) => println!(
                "  v3 requests:   {} to {u}",
                if args.auto_approve { "approved at once and delivered" } else { "pending (no approval without --auto-approve)" }
            ),
            None => println!("  v3 requests:   not delivered (no --notifier-url)"),
        }
        println!();
        println!("Point tokenwatch (or your engine) at it:");
        println!(
            "  export TOKENWATCH__UPSTOX__API_BASE={base} UPSTOX_CLIENT_ID={} UPSTOX_CLIENT_SECRET={}",
            config.client_id, config.client_secret
        );
        println!("A renew.command that fetches a simulator token (for trying renewals):");
        println!("  [\"curl\", \"-sf\", \"-X\", \"POST\", \"{base}/sim/token\"]");
        println!();
        println!("Stop with Ctrl-C.");
        let _ = tokio::signal::ctrl_c().await;
        server.shutdown().await;
        0
    })
}

/// `simulate --broker kite`: the Kite Connect stand-in.
async fn kite(args: &SimulateArgs) -> u8 {
    use crate::brokers::kite::sim::{SimConfig, Simulator};
    if let Some(code) = no_notifier(args, "Kite") {
        return code;
    }
    let config = SimConfig {
        auto_approve: args.auto_approve,
        token_lifetime: args.token_lifetime,
        ..SimConfig::default()
    };
    let sim = Simulator::new(config.clone(), Arc::new(SystemClock));
    let server = match sim.serve(args.listen).await {
        Ok(s) => s,
        Err(e) => return cannot_listen(args, &e),
    };
    let base = server.base_url.as_str().trim_end_matches('/').to_owned();
    banner(
        args,
        &format!("Zerodha Kite simulator listening on {base}"),
        &[
            ("api_key", config.api_key.clone()),
            (
                "api_secret",
                format!("{} (a simulator value)", config.api_secret),
            ),
            ("redirect_url", config.redirect_url.clone()),
            ("user", format!("{} ({})", config.user_id, config.user_name)),
            (
                "tokens expire",
                expiry(args, "06:00 IST after issue (the real rule)"),
            ),
        ],
        "Point a Kite account at it (broker: kite):",
        &format!(
            "TOKENWATCH__KITE__API_BASE={base} TOKENWATCH__KITE__LOGIN_BASE={base} KITE_API_KEY={} KITE_API_SECRET={}",
            config.api_key, config.api_secret
        ),
    );
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    0
}

/// `simulate --broker fyers`: the Fyers API v3 stand-in.
async fn fyers(args: &SimulateArgs) -> u8 {
    use crate::brokers::fyers::sim::{SimConfig, Simulator};
    if let Some(code) = no_notifier(args, "Fyers") {
        return code;
    }
    let config = SimConfig {
        auto_approve: args.auto_approve,
        token_lifetime: args.token_lifetime,
        ..SimConfig::default()
    };
    let sim = Simulator::new(config.clone(), Arc::new(SystemClock));
    let server = match sim.serve(args.listen).await {
        Ok(s) => s,
        Err(e) => return cannot_listen(args, &e),
    };
    let base = server.base_url.as_str().trim_end_matches('/').to_owned();
    banner(
        args,
        &format!("Fyers simulator listening on {base}"),
        &[
            ("client_id", config.client_id.clone()),
            (
                "secret_key",
                format!("{} (a simulator value)", config.secret_key),
            ),
            ("redirect_uri", config.redirect_url.clone()),
            ("pin", format!("{} (a simulator value)", config.pin)),
            ("user", format!("{} ({})", config.fy_id, config.name)),
            (
                "tokens expire",
                expiry(args, "06:00 IST after issue (the token's exp)"),
            ),
        ],
        "Point a Fyers account at it (broker: fyers):",
        &format!(
            "TOKENWATCH__FYERS__API_BASE={base} TOKENWATCH__FYERS__LOGIN_BASE={base} FYERS_CLIENT_ID={} FYERS_SECRET_KEY={} FYERS_PIN={}",
            config.client_id, config.secret_key, config.pin
        ),
    );
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    0
}

/// `simulate --broker angel`: the Angel One SmartAPI stand-in. Its PIN and TOTP secret are
/// the simulator's demo values, not anyone's secrets: printed so they can be configured.
async fn angel(args: &SimulateArgs) -> u8 {
    use crate::brokers::angel::sim::{SimConfig, Simulator};
    if let Some(code) = no_notifier(args, "Angel One") {
        return code;
    }
    if args.auto_approve {
        eprintln!(
            "tokenwatch: --auto-approve is for browser logins; Angel One logs in through its API with the PIN and a TOTP code"
        );
        return 3;
    }
    let config = SimConfig {
        token_lifetime: args.token_lifetime,
        ..SimConfig::default()
    };
    let sim = Simulator::new(config.clone(), Arc::new(SystemClock));
    let server = match sim.serve(args.listen).await {
        Ok(s) => s,
        Err(e) => return cannot_listen(args, &e),
    };
    let base = server.base_url.as_str().trim_end_matches('/').to_owned();
    println!("Angel One simulator listening on {base}");
    for (name, value) in [
        ("api_base", base.clone()),
        ("api_key", config.api_key.clone()),
        ("client_code", config.client_code.clone()),
        ("pin", format!("{} (a simulator value)", config.pin)),
        (
            "totp_secret",
            format!("{} (a simulator value)", config.totp_secret),
        ),
        ("user", format!("{} ({})", config.client_code, config.name)),
        (
            "tokens expire",
            expiry(args, "24 hours after issue (the token's exp)"),
        ),
    ] {
        println!("  {:<15}{value}", format!("{name}:"));
    }
    println!(
        "  {:<15}through the API with the PIN and a TOTP code (no browser)",
        "logins:"
    );
    println!();
    println!("Point an Angel One account at it (broker: angel, renew.strategy: totp):");
    println!(
        "  export TOKENWATCH__ANGEL__API_BASE={base} ANGEL_API_KEY={} ANGEL_CLIENT_CODE={} ANGEL_PIN={} ANGEL_TOTP_SECRET={}",
        config.api_key, config.client_code, config.pin, config.totp_secret
    );
    println!("Then get its first token with: tokenwatch refresh");
    println!();
    println!("Stop with Ctrl-C.");
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    0
}

/// `simulate --broker dhan`: the DhanHQ v2 stand-in (login and API on one address).
async fn dhan(args: &SimulateArgs) -> u8 {
    use crate::brokers::dhan::sim::{SimConfig, Simulator};
    if let Some(code) = no_notifier(args, "Dhan") {
        return code;
    }
    let config = SimConfig {
        auto_approve: args.auto_approve,
        token_lifetime: args.token_lifetime,
        ..SimConfig::default()
    };
    let sim = Simulator::new(config.clone(), Arc::new(SystemClock));
    let server = match sim.serve(args.listen).await {
        Ok(s) => s,
        Err(e) => return cannot_listen(args, &e),
    };
    let base = server.base_url.as_str().trim_end_matches('/').to_owned();
    banner(
        args,
        &format!("Dhan simulator listening on {base}"),
        &[
            (
                "client_id",
                format!("{} ({})", config.client_id, config.client_name),
            ),
            ("api_key", config.app_id.clone()),
            (
                "api_secret",
                format!("{} (a simulator value)", config.app_secret),
            ),
            ("pin", format!("{} (a simulator value)", config.pin)),
            (
                "totp_secret",
                format!("{} (a simulator value)", config.totp_secret),
            ),
            ("redirect_uri", config.redirect_url.clone()),
            (
                "tokens expire",
                expiry(args, "24 hours after issue (expiryTime, IST)"),
            ),
        ],
        "Point a Dhan account at it (broker: dhan):",
        &format!(
            "TOKENWATCH__DHAN__API_BASE={base} TOKENWATCH__DHAN__LOGIN_BASE={base} DHAN_CLIENT_ID={} DHAN_API_KEY={} DHAN_API_SECRET={} DHAN_PIN={} DHAN_TOTP_SECRET={}",
            config.client_id, config.app_id, config.app_secret, config.pin, config.totp_secret
        ),
    );
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    0
}

/// `--notifier-url` is Upstox's alone: exit 3 for `broker`'s simulator.
fn no_notifier(args: &SimulateArgs, broker: &str) -> Option<u8> {
    args.notifier_url.as_ref().map(|_| {
        eprintln!("tokenwatch: --notifier-url is for Upstox's token requests; {broker} has none");
        3
    })
}

/// The simulator could not bind `--listen`: say so, exit 1.
fn cannot_listen(args: &SimulateArgs, e: &std::io::Error) -> u8 {
    eprintln!(
        "tokenwatch: cannot listen on {}: {e}; pick another port with --listen 127.0.0.1:PORT",
        args.listen
    );
    1
}

/// When the simulator's tokens die: `--token-lifetime`, else the broker's `rule`.
fn expiry(args: &SimulateArgs, rule: &str) -> String {
    match args.token_lifetime {
        Some(d) => format!("{} after issue", crate::timefmt::human(d)),
        None => rule.into(),
    }
}

/// What a broker simulator prints at start: its address, its app and user (`fields`), how
/// logins are approved, and the variables that point an account at it.
fn banner(args: &SimulateArgs, title: &str, fields: &[(&str, String)], point: &str, export: &str) {
    println!("{title}");
    for (name, value) in fields {
        println!("  {:<15}{value}", format!("{name}:"));
    }
    let logins = if args.auto_approve {
        "approved at once"
    } else {
        "approve on the login page"
    };
    println!("  {:<15}{logins}", "logins:");
    println!();
    println!("{point}");
    println!("  export {export}");
    println!();
    println!("Stop with Ctrl-C.");
}
