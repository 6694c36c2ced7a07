//! A Zerodha Kite account beside the Upstox one, through the real binary: `tokenwatch login
//! --account zerodha` against the Kite simulator over the loopback callback (the state rides
//! in `redirect_params`), one exchange with the right checksum, a verified token stored with
//! `"broker": "kite"`, and `status --account zerodha --json` reporting the broker and the
//! 06:00 IST expiry. The Upstox account in the same config is left alone.

mod common;

use common::{Leaks, Sandbox, free_port, mode};
use serde_json::{Value, json};
use std::sync::Arc;
use tokenwatch::brokers::kite::sim::{Endpoint, SimConfig, Simulator};
use tokenwatch::clock::SystemClock;

/// The browser: fetch the login page and follow the simulator's redirect to the callback.
const CURL: [&str; 4] = ["curl", "-sL", "-o", "/dev/null"];
/// A distinctive secret, so a scan cannot miss it.
const SECRET: &str = "kiteE2E-Qw8Zt3Lm5-secret";
const API_KEY: &str = "kitee2ekey";

/// Kite's simulator, auto-approving, with `redirect` registered; and a sandbox whose config
/// has the default Upstox account and a Kite account `zerodha` pointed at it.
async fn kite_setup() -> (
    tokenwatch::brokers::kite::sim::SimServer,
    Simulator,
    Sandbox,
) {
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let sim = Simulator::new(
        SimConfig {
            api_key: API_KEY.into(),
            api_secret: SECRET.into(),
            redirect_url: redirect.clone(),
            auto_approve: true,
            ..SimConfig::default()
        },
        Arc::new(SystemClock),
    );
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = server.base_url.as_str().trim_end_matches('/').to_string();
    let sb = Sandbox::new();
    let config: Value = json!({
        "upstox": {"client_id": "upstox-app", "client_secret": "upstox-secret-not-used"},
        "token": {"path": "upstox_token.json", "backups": []},
        "login": {"timeout": "20s", "browser_command": CURL},
        "accounts": {
            "zerodha": {
                "broker": "kite",
                "kite": {
                    "api_key": API_KEY,
                    "api_secret": SECRET,
                    "redirect_uri": redirect,
                    "api_base": base,
                    "login_base": base,
                },
                "token": {"path": "kite_token.json", "backups": []},
            }
        }
    });
    sb.write_config(&config);
    (server, sim, sb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kite_login_through_the_loopback_callback_stores_a_verified_kite_token() {
    let (_server, sim, sb) = kite_setup().await;
    let out = sb.run_async(&["--account", "zerodha", "login"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    // The login address carries the state inside redirect_params (Kite has no `state`).
    out.assert_stdout("/connect/login?v=3&api_key=kitee2ekey&redirect_params=state%3D");
    out.assert_stdout("Logged in: token stored at");
    // A Kite login speaks of Kite, never of Upstox.
    out.assert_stdout("Log in to Zerodha Kite for account \"zerodha\":");
    assert!(!out.all().contains("Upstox"), "{}", out.all());
    // One login page, one exchange (checked against the simulator's checksum), and the
    // profile call that verified the new token.
    assert_eq!(sim.calls(Endpoint::Login), 1);
    assert_eq!(sim.calls(Endpoint::Exchange), 1);
    assert!(sim.calls(Endpoint::Profile) >= 1);

    let path = sb.root.join("config/kite_token.json");
    assert_eq!(mode(&path), 0o600);
    let stored: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(stored["broker"], "kite", "{stored}");
    assert_eq!(stored["user_id"], "ZK1234", "{stored}");
    let token = stored["access_token"].as_str().unwrap().to_string();
    // Kite's day ends at 06:00 IST, whatever time the login ran.
    let expires = stored["expires_at"].as_str().unwrap();
    assert!(expires.ends_with("T06:00:00+05:30"), "{expires}");
    // The Upstox account's file was not touched.
    assert!(!sb.root.join("config/upstox_token.json").exists());

    let status = sb
        .run_async(&["--account", "zerodha", "status", "--json"])
        .await;
    let j = status.json();
    assert_eq!(j["broker"], "kite", "{j}");
    assert_eq!(j["account"], "zerodha", "{j}");
    assert!(
        j["expiry_time"]
            .as_str()
            .is_some_and(|e| e.ends_with("T06:00:00+05:30")),
        "{j}"
    );
    assert_eq!(j["valid"], true, "{j}");

    // The token is checked with Kite's profile call (`token api_key:access_token`).
    let validate = sb
        .run_async(&["--account", "zerodha", "status", "--validate", "--json"])
        .await;
    let v = validate.json();
    assert_eq!(v["api_validated"], true, "{v}");

    let mut leaks = Leaks::of_outs(&[
        ("login", &out),
        ("status", &status),
        ("validate", &validate),
    ]);
    leaks.secret("the Kite app's secret", SECRET);
    leaks.token("the Kite access token", &token);
    leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kite_token_the_broker_revoked_reads_invalid_and_upstox_words_stay_out() {
    let (_server, sim, sb) = kite_setup().await;
    let out = sb.run_async(&["--account", "zerodha", "login"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    sim.revoke_all();
    let validate = sb
        .run_async(&["--account", "zerodha", "status", "--validate", "--json"])
        .await;
    assert_eq!(validate.code, Some(2), "{}", validate.all());
    let v = validate.json();
    assert_eq!(v["state"], "invalid", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("TokenException"), "{v}");
    assert!(
        !validate.all().contains("Upstox"),
        "a Kite refusal must not speak of Upstox:\n{}",
        validate.all()
    );
}

/// One daemon watches the Upstox account and the Kite account side by side: each is checked
/// with its own broker's API, and each reads by its own day (03:30 IST, 06:00 IST).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_watches_an_upstox_and_a_kite_account_each_by_its_own_rule() {
    // Upstox's stand-in as its own process; its /sim/token mints a token for renew.command.
    let upstox = common::SimProcess::start();
    let (_server, sim, sb) = kite_setup().await;
    let mut config: Value =
        serde_yaml::from_str(&std::fs::read_to_string(sb.config_path()).unwrap()).unwrap();
    config["upstox"]["api_base"] = json!(upstox.base);
    config["renew"] = json!({
        "strategy": "command",
        "command": ["curl", "-sf", "-X", "POST", format!("{}/sim/token", upstox.base)],
    });
    // The Kite account logs in through the browser; it has no command.
    config["accounts"]["zerodha"]["renew"] = json!({"strategy": "browser"});
    sb.write_config(&config);

    let up = sb.run_async(&["refresh"]).await;
    assert_eq!(up.code, Some(0), "{}", up.all());
    let kite = sb.run_async(&["--account", "zerodha", "login"]).await;
    assert_eq!(kite.code, Some(0), "{}", kite.all());
    let checks_before = sim.calls(Endpoint::Profile);

    let daemon = sb.spawn(&["daemon"]);
    let err = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let err = daemon.stderr();
            let valid = |account: &str| {
                err.lines().any(|l| {
                    l.contains("Token valid, expires in")
                        && l.ends_with(&format!("account={account}"))
                })
            };
            if valid("default") && valid("zerodha") {
                break err;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "both accounts should be checked:\n{err}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    daemon.signal(libc::SIGTERM);
    let out = daemon.finish();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The Kite account was checked with Kite's profile call, not Upstox's.
    assert!(sim.calls(Endpoint::Profile) > checks_before, "{err}");

    let upstox_status = sb.run_async(&["status", "--json"]).await.json();
    let kite_status = sb
        .run_async(&["--account", "zerodha", "status", "--json"])
        .await
        .json();
    assert_eq!(upstox_status["broker"], "upstox", "{upstox_status}");
    assert_eq!(kite_status["broker"], "kite", "{kite_status}");
    // Each day by its own rule: the simulator's Upstox token lives 20 hours but Upstox's
    // rule ends it at 03:30 IST at the latest; Kite's ends at 06:00 IST.
    let ends = |j: &Value| j["expiry_time"].as_str().unwrap_or_default().to_string();
    assert!(
        ends(&kite_status).ends_with("T06:00:00+05:30"),
        "{kite_status}"
    );
    let at = |j: &Value, key: &str| {
        chrono::DateTime::parse_from_rfc3339(j[key].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let issued = at(&upstox_status, "issued_at");
    let upstox_end = at(&upstox_status, "expiry_time");
    assert!(
        upstox_end <= tokenwatch::token::expiry::upstox_expiry(issued),
        "{upstox_status}"
    );
    assert!(
        at(&kite_status, "expiry_time")
            == tokenwatch::brokers::kite_expiry(at(&kite_status, "issued_at")),
        "{kite_status}"
    );
}
