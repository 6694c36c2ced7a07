//! A Fyers account beside the Upstox one, through the real binary: `tokenwatch login
//! --account fy` against the Fyers simulator over the loopback callback, one exchange with the
//! right appIdHash, a verified token stored with `"broker": "fyers"`, and `status --account fy
//! --json` reporting the broker and the expiry the token's JWT `exp` names.

mod common;

use common::{Leaks, Sandbox, free_port, mode};
use serde_json::{Value, json};
use std::sync::Arc;
use tokenwatch::brokers::fyers::sim::{Endpoint, SimConfig, Simulator};
use tokenwatch::clock::SystemClock;
use tokenwatch::token::expiry::ExpiryEvidence;

/// The browser: fetch the login page and follow the simulator's redirect to the callback.
const CURL: [&str; 4] = ["curl", "-sL", "-o", "/dev/null"];
/// A distinctive secret, so a scan cannot miss it.
const SECRET: &str = "fyersE2E-Zq7Wx2Kp9-secret";
const CLIENT_ID: &str = "FYE2EAPP42-100";
/// The user's PIN, for the refresh grant.
const PIN: &str = "918273";

/// Fyers' simulator, auto-approving, with `redirect` registered; and a sandbox whose config has
/// the default Upstox account and a Fyers account `fy` pointed at it.
async fn fyers_setup() -> (
    tokenwatch::brokers::fyers::sim::SimServer,
    Simulator,
    Sandbox,
) {
    fyers_setup_with(SimConfig::default(), json!({})).await
}

/// [`fyers_setup`] with the simulator's other settings from `sim_config` and the account's
/// `renew:` section `renew`.
async fn fyers_setup_with(
    sim_config: SimConfig,
    renew: Value,
) -> (
    tokenwatch::brokers::fyers::sim::SimServer,
    Simulator,
    Sandbox,
) {
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let sim = Simulator::new(
        SimConfig {
            client_id: CLIENT_ID.into(),
            secret_key: SECRET.into(),
            redirect_url: redirect.clone(),
            auto_approve: true,
            pin: PIN.into(),
            ..sim_config
        },
        Arc::new(SystemClock),
    );
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = server.base_url.as_str().trim_end_matches('/').to_string();
    let sb = Sandbox::new();
    sb.write_config(&json!({
        "upstox": {"client_id": "upstox-app", "client_secret": "upstox-secret-not-used"},
        "token": {"path": "upstox_token.json", "backups": []},
        "login": {"timeout": "20s", "browser_command": CURL},
        "accounts": {
            "fy": {
                "broker": "fyers",
                "fyers": {
                    "client_id": CLIENT_ID,
                    "secret_key": SECRET,
                    "pin": PIN,
                    "redirect_uri": redirect,
                    "api_base": base,
                    "login_base": base,
                },
                "token": {"path": "fyers_token.json", "backups": []},
                "renew": renew,
            }
        }
    }));
    (server, sim, sb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fyers_login_through_the_loopback_callback_stores_a_verified_fyers_token() {
    let (_server, sim, sb) = fyers_setup().await;
    let out = sb.run_async(&["--account", "fy", "login"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("/api/v3/generate-authcode?client_id=FYE2EAPP42-100&redirect_uri=");
    out.assert_stdout("Logged in: token stored at");
    assert!(!out.all().contains("Upstox"), "{}", out.all());
    assert_eq!(sim.calls(Endpoint::Login), 1);
    assert_eq!(sim.calls(Endpoint::Exchange), 1);
    assert!(sim.calls(Endpoint::Profile) >= 1);

    let path = sb.root.join("config/fyers_token.json");
    assert_eq!(mode(&path), 0o600);
    let stored: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(stored["broker"], "fyers", "{stored}");
    assert_eq!(stored["user_id"], "XF12345", "{stored}");
    let token = stored["access_token"].as_str().unwrap().to_string();
    // The expiry is the token's own exp (the simulator's: 06:00 IST after issue).
    let exp = ExpiryEvidence::of_token_text(&token)
        .jwt_exp
        .expect("a JWT exp");
    let expires: chrono::DateTime<chrono::FixedOffset> =
        stored["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, exp, "{stored}");
    assert!(
        stored["expires_at"]
            .as_str()
            .unwrap()
            .ends_with("T06:00:00+05:30")
    );
    assert!(!sb.root.join("config/upstox_token.json").exists());

    let status = sb.run_async(&["--account", "fy", "status", "--json"]).await;
    let j = status.json();
    assert_eq!(j["broker"], "fyers", "{j}");
    assert_eq!(j["account"], "fy", "{j}");
    let shown: chrono::DateTime<chrono::FixedOffset> =
        j["expiry_time"].as_str().unwrap().parse().unwrap();
    assert_eq!(shown, exp, "{j}");
    assert_eq!(j["valid"], true, "{j}");

    let validate = sb
        .run_async(&["--account", "fy", "status", "--validate", "--json"])
        .await;
    assert_eq!(validate.json()["api_validated"], true, "{}", validate.all());

    let mut leaks = Leaks::of_outs(&[
        ("login", &out),
        ("status", &status),
        ("validate", &validate),
    ]);
    leaks.secret("the Fyers app's secret", SECRET);
    leaks.token("the Fyers access token", &token);
    leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fyers_token_the_broker_revoked_reads_invalid_in_fyers_words() {
    let (_server, sim, sb) = fyers_setup().await;
    let out = sb.run_async(&["--account", "fy", "login"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    sim.revoke_all();
    let validate = sb
        .run_async(&["--account", "fy", "status", "--validate", "--json"])
        .await;
    assert_eq!(validate.code, Some(2), "{}", validate.all());
    let v = validate.json();
    assert_eq!(v["state"], "invalid", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("Fyers") && error.contains("-16"), "{v}");
    assert!(!validate.all().contains("Upstox"), "{}", validate.all());
}

/// A refresh-token account whose tokens live an hour: a renewal is due as soon as it has one.
async fn refresh_setup() -> (
    tokenwatch::brokers::fyers::sim::SimServer,
    Simulator,
    Sandbox,
) {
    fyers_setup_with(
        SimConfig {
            token_lifetime: Some(std::time::Duration::from_secs(3600)),
            ..SimConfig::default()
        },
        json!({"strategy": "refresh-token"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_token_strategy_renews_with_the_pin_and_no_browser() {
    let (_server, sim, sb) = refresh_setup().await;
    let login = sb.run_async(&["--account", "fy", "login"]).await;
    assert_eq!(login.code, Some(0), "{}", login.all());
    let path = sb.root.join("config/fyers_token.json");
    let kept = sb.root.join("config/fyers_token.json.refresh");
    // The refresh token is kept beside the token file, private, and never in it.
    assert_eq!(mode(&kept), 0o600);
    let refresh: Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    assert_eq!(refresh["broker"], "fyers", "{refresh}");
    let refresh_token = refresh["refresh_token"].as_str().unwrap().to_string();
    assert!(refresh_token.len() > 20, "{refresh}");
    let file_text = std::fs::read_to_string(&path).unwrap();
    assert!(!file_text.contains(&refresh_token), "{file_text}");
    assert!(!file_text.contains("refresh_token"), "{file_text}");
    let first: Value = serde_json::from_str(&file_text).unwrap();
    let first_token = first["access_token"].as_str().unwrap().to_string();

    // The token lives an hour and renewal starts an hour before expiry: it is due now.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = sb.run_async(&["--account", "fy", "refresh"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(sim.calls(Endpoint::Refresh), 1, "{}", out.all());
    assert_eq!(sim.calls(Endpoint::Login), 1, "no second browser login");
    assert_eq!(sim.calls(Endpoint::Exchange), 1);
    let stored: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let second_token = stored["access_token"].as_str().unwrap().to_string();
    assert_ne!(second_token, first_token, "{}", out.all());
    assert_eq!(stored["obtained_via"], "refresh-token", "{stored}");
    assert_eq!(stored["user_id"], "XF12345", "{stored}");
    assert_eq!(mode(&path), 0o600);

    let mut leaks = Leaks::of_outs(&[("login", &login), ("refresh", &out)]);
    leaks.secret("the Fyers app's secret", SECRET);
    leaks.secret("the PIN", PIN);
    leaks.token("the refresh token", &refresh_token);
    leaks.token("the first access token", &first_token);
    leaks.token("the renewed access token", &second_token);
    leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_sent_once_and_the_message_says_what_to_fix() {
    let (_server, sim, sb) = refresh_setup().await;
    let login = sb.run_async(&["--account", "fy", "login"]).await;
    assert_eq!(login.code, Some(0), "{}", login.all());
    let before = std::fs::read(sb.root.join("config/fyers_token.json")).unwrap();
    sim.set_config(|c| c.pin = "000000".into());
    let out = sb.run_async(&["--account", "fy", "refresh"]).await;
    // A refusal is never repeated: a PIN tried again and again can lock the account.
    assert_eq!(sim.calls(Endpoint::Refresh), 1, "{}", out.all());
    assert!(
        out.all()
            .contains("Not renewed: refused, not tried again until the configuration changes or you renew by hand (Fyers refused the request (HTTP 400, -1006): Invalid PIN)"),
        "{}",
        out.all()
    );
    // The token in the file is untouched and still reads as valid.
    let after = std::fs::read(sb.root.join("config/fyers_token.json")).unwrap();
    assert_eq!(before, after);
    let mut leaks = Leaks::of_outs(&[("refresh", &out)]);
    leaks.secret("the PIN", PIN);
    leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_refresh_token_kept_the_refresh_strategy_says_to_log_in_once() {
    let (_server, sim, sb) = refresh_setup().await;
    let out = sb.run_async(&["--account", "fy", "refresh"]).await;
    assert_eq!(sim.calls(Endpoint::Refresh), 0, "{}", out.all());
    assert!(
        out.all().contains("log in once with tokenwatch login"),
        "{}",
        out.all()
    );
    // Nothing was sent: the message says so, not that Fyers refused.
    assert!(
        out.all().contains("Fyers request not sent"),
        "{}",
        out.all()
    );
    assert!(
        !out.all().contains("refused, not tried again"),
        "{}",
        out.all()
    );
}
