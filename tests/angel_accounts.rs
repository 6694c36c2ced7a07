//! An Angel One account beside the Upstox one, through the real binary against the Angel One
//! simulator: `tokenwatch refresh --account a` logs in with the PIN and a TOTP code (no
//! browser) and stores a private token with `"broker": "angel"` and its refresh token beside
//! it; `status --json` reports the broker and the JWT's expiry; the refresh-token strategy
//! renews through generateTokens without a login; a wrong PIN is tried once and says what to
//! do; nothing secret reaches any output.

mod common;

use common::{Leaks, Sandbox, mode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokenwatch::brokers::angel::sim::{Endpoint, SimConfig, SimServer, Simulator};
use tokenwatch::clock::SystemClock;
use tokenwatch::token::expiry::ExpiryEvidence;

/// Distinctive values, so a leak scan cannot miss them.
const PIN: &str = "PIN-E2E-8fJq3";
const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const API_KEY: &str = "angelE2EKey-5Rt";
const CLIENT_CODE: &str = "E2E4242";

/// Angel One's simulator whose tokens live `lifetime`, and a sandbox whose config has the
/// default Upstox account and an Angel One account `a` (renew.strategy `strategy`) pointed at
/// it; its PIN and TOTP secret come from the environment.
async fn angel_setup(lifetime: Duration) -> (SimServer, Simulator, Sandbox) {
    let sim = Simulator::new(
        SimConfig {
            api_key: API_KEY.into(),
            client_code: CLIENT_CODE.into(),
            pin: PIN.into(),
            totp_secret: TOTP_SECRET.into(),
            token_lifetime: Some(lifetime),
            ..SimConfig::default()
        },
        Arc::new(SystemClock),
    );
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut sb = Sandbox::new();
    sb.set_env("ANGEL_PIN", PIN);
    sb.set_env("ANGEL_TOTP_SECRET", TOTP_SECRET);
    write_config(&sb, &server, None);
    (server, sim, sb)
}

/// The sandbox's config, account `a` with `strategy` (none: its broker's, totp).
fn write_config(sb: &Sandbox, server: &SimServer, strategy: Option<&str>) {
    let base = server.base_url.as_str().trim_end_matches('/');
    let mut a = json!({
        "broker": "angel",
        "angel": {"api_key": API_KEY, "client_code": CLIENT_CODE, "api_base": base},
        "token": {"path": "angel_token.json", "backups": []},
    });
    if let Some(s) = strategy {
        a["renew"] = json!({ "strategy": s });
    }
    sb.write_config(&json!({
        "upstox": {"client_id": "upstox-app", "client_secret": "upstox-secret-not-used"},
        "token": {"path": "upstox_token.json", "backups": []},
        "monitor": {"max_retries": 3, "backoff_initial": "1s", "backoff_max": "2s"},
        "accounts": {"a": a},
    }));
}

fn stored(sb: &Sandbox) -> Value {
    let path = sb.root.join("config/angel_token.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn refresh_file(sb: &Sandbox) -> std::path::PathBuf {
    sb.root.join("config/angel_token.json.refresh")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_refresh_stores_a_private_angel_token_and_its_refresh_token() {
    let (server, sim, sb) = angel_setup(Duration::from_secs(24 * 3600)).await;
    let out = sb.run_async(&["--account", "a", "refresh"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("Renewed: a new token was verified and stored.");
    assert!(!out.all().contains("Upstox"), "{}", out.all());
    assert_eq!(sim.calls(Endpoint::Login), 1);
    assert_eq!(sim.calls(Endpoint::Refresh), 0);
    assert!(sim.calls(Endpoint::Profile) >= 1);

    let path = sb.root.join("config/angel_token.json");
    assert_eq!(mode(&path), 0o600);
    let token_file = std::fs::read_to_string(&path).unwrap();
    let j = stored(&sb);
    assert_eq!(j["broker"], "angel", "{j}");
    assert_eq!(j["token_type"], "Bearer", "{j}");
    assert_eq!(j["user_id"], CLIENT_CODE, "{j}");
    let token = j["access_token"].as_str().unwrap().to_string();
    let exp = ExpiryEvidence::of_token_text(&token)
        .jwt_exp
        .expect("a JWT exp");
    let expires: chrono::DateTime<chrono::FixedOffset> =
        j["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, exp, "{j}");
    // The refresh token: beside the token file, private, never in it.
    assert_eq!(mode(&refresh_file(&sb)), 0o600);
    let kept: Value = serde_json::from_slice(&std::fs::read(refresh_file(&sb)).unwrap()).unwrap();
    let refresh = kept["refresh_token"].as_str().unwrap().to_string();
    assert!(!refresh.is_empty());
    assert!(!token_file.contains(&refresh), "{token_file}");
    assert!(!sb.root.join("config/upstox_token.json").exists());

    let status = sb.run_async(&["--account", "a", "status", "--json"]).await;
    let s = status.json();
    assert_eq!(s["broker"], "angel", "{s}");
    assert_eq!(s["account"], "a", "{s}");
    let shown: chrono::DateTime<chrono::FixedOffset> =
        s["expiry_time"].as_str().unwrap().parse().unwrap();
    assert_eq!(shown, exp, "{s}");
    assert_eq!(s["valid"], true, "{s}");
    let validate = sb
        .run_async(&["--account", "a", "status", "--validate", "--json"])
        .await;
    assert_eq!(validate.json()["api_validated"], true, "{}", validate.all());
    // A dead token reads invalid in Angel One's words, though it came inside an HTTP 200.
    sim.revoke_all();
    let dead = sb
        .run_async(&["--account", "a", "status", "--validate", "--json"])
        .await;
    assert_eq!(dead.code, Some(2), "{}", dead.all());
    let d = dead.json();
    assert_eq!(d["state"], "invalid", "{d}");
    let error = d["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Angel One") && error.contains("AG8001"),
        "{d}"
    );
    let check = sb.run_async(&["config", "check"]).await;
    assert_eq!(check.code, Some(0), "{}", check.all());

    let mut leaks = Leaks::of_outs(&[
        ("refresh", &out),
        ("status", &status),
        ("validate", &validate),
        ("dead", &dead),
        ("config check", &check),
    ]);
    leaks.secret("the PIN", PIN);
    leaks.secret("the TOTP secret", TOTP_SECRET);
    leaks.token("the Angel One access token", &token);
    leaks.token("the Angel One refresh token", &refresh);
    leaks.assert_clean();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_token_strategy_renews_through_generate_tokens_without_a_login() {
    // Tokens that live 30 minutes: within monitor.refresh_before (1 hour), so due at once.
    let (server, sim, sb) = angel_setup(Duration::from_secs(30 * 60)).await;
    let first = sb.run_async(&["--account", "a", "refresh"]).await;
    assert_eq!(first.code, Some(0), "{}", first.all());
    assert_eq!(sim.calls(Endpoint::Login), 1);
    let first_token = stored(&sb)["access_token"].as_str().unwrap().to_string();
    let first_refresh = std::fs::read_to_string(refresh_file(&sb)).unwrap();

    write_config(&sb, &server, Some("refresh-token"));
    let out = sb.run_async(&["--account", "a", "refresh"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("Renewed: a new token was verified and stored.");
    assert_eq!(sim.calls(Endpoint::Refresh), 1);
    assert_eq!(sim.calls(Endpoint::Login), 1, "no TOTP login");
    let j = stored(&sb);
    assert_ne!(j["access_token"], first_token.as_str(), "{j}");
    assert_eq!(j["broker"], "angel", "{j}");
    assert_ne!(
        std::fs::read_to_string(refresh_file(&sb)).unwrap(),
        first_refresh,
        "the new refresh token is kept"
    );

    // Without a refresh token: nothing is sent, and the message says how to start again.
    std::fs::remove_file(refresh_file(&sb)).unwrap();
    let none = sb.run_async(&["--account", "a", "refresh"]).await;
    // The token in the file still works: refresh says so, and why it was not renewed.
    assert_eq!(none.code, Some(0), "{}", none.all());
    none.assert_stdout("Not renewed:");
    assert!(
        none.all().contains("renew.strategy: totp") && none.all().contains("tokenwatch refresh"),
        "{}",
        none.all()
    );
    assert_eq!(sim.calls(Endpoint::Refresh), 1);
    assert_eq!(sim.calls(Endpoint::Login), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_tried_once_and_the_message_says_what_to_do() {
    let (server, sim, mut sb) = angel_setup(Duration::from_secs(24 * 3600)).await;
    sb.set_env("ANGEL_PIN", "PIN-WRONG-0000");
    let out = sb.run_async(&["--account", "a", "refresh"]).await;
    assert_eq!(out.code, Some(1), "{}", out.all());
    out.assert_stdout("Not renewed:");
    let said = out.all();
    assert!(
        said.contains("Invalid PIN") && said.contains("angel.pin"),
        "{said}"
    );
    assert_eq!(
        sim.calls(Endpoint::Login),
        1,
        "a refused login is not repeated"
    );
    assert!(!sb.root.join("config/angel_token.json").exists());

    // Without a PIN at all: named with its variable, nothing sent.
    sb.env.retain(|(k, _)| k != "ANGEL_PIN");
    let unset = sb.run_async(&["--account", "a", "refresh"]).await;
    assert_eq!(unset.code, Some(1), "{}", unset.all());
    assert!(unset.all().contains("ANGEL_PIN"), "{}", unset.all());
    assert_eq!(sim.calls(Endpoint::Login), 1);
    // config check says which keys the account lacks.
    let check = sb.run_async(&["config", "check"]).await;
    assert_eq!(check.code, Some(0), "{}", check.all());
    check.assert_stderr("angel.pin (ANGEL_PIN)");

    let mut leaks = Leaks::of_outs(&[("wrong", &out), ("unset", &unset), ("check", &check)]);
    leaks.secret("the right PIN", PIN);
    leaks.secret("the wrong PIN", "PIN-WRONG-0000");
    leaks.secret("the TOTP secret", TOTP_SECRET);
    leaks.assert_clean();
    server.shutdown().await;
}

#[test]
fn simulate_broker_angel_prints_what_an_account_needs_and_refresh_logs_in_against_it() {
    let mut sb = Sandbox::new();
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut sim = sb.spawn(&["simulate", "--broker", "angel", "--listen", &listen]);
    let title = sim.line_with("Angel One simulator listening on");
    assert!(title.contains(&listen), "{title}");
    let export = sim.line_with("export ");
    let vars: Vec<(String, String)> = export
        .trim()
        .trim_start_matches("export ")
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "TOKENWATCH__ANGEL__API_BASE",
            "ANGEL_API_KEY",
            "ANGEL_CLIENT_CODE",
            "ANGEL_PIN",
            "ANGEL_TOTP_SECRET"
        ],
        "{export}"
    );
    for (k, v) in &vars {
        sb.set_env(k, v.clone());
    }
    sb.write_yaml("broker: angel\ntoken:\n  path: angel_token.json\n  backups: []\n");
    let out = sb.run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("Renewed: a new token was verified and stored.");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(sb.root.join("config/angel_token.json")).unwrap())
            .unwrap();
    assert_eq!(stored["broker"], "angel", "{stored}");
    // An Angel One login has no browser page to approve.
    let refused = sb.run(&[
        "simulate",
        "--broker",
        "angel",
        "--auto-approve",
        "--listen",
        &format!("127.0.0.1:{}", common::free_port()),
    ]);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    refused.assert_stderr("PIN and a TOTP code");
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenwatch_login_logs_in_through_the_api_with_no_browser() {
    let (_server, sim, mut sb) = angel_setup(Duration::from_secs(24 * 3600)).await;
    let out = sb.run_async(&["--account", "a", "login"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout(
        "Logging in to Angel One for account \"a\" with the PIN and a TOTP code (no browser)...",
    );
    out.assert_stdout("Logged in: token stored at");
    out.assert_stdout("API: ✓ the new token works.");
    assert!(!out.all().contains("browser was sent"), "{}", out.all());
    assert_eq!(sim.calls(Endpoint::Login), 1);
    let token = stored(&sb);
    assert_eq!(token["broker"], "angel", "{token}");
    assert_eq!(token["obtained_via"], "totp", "{token}");
    assert_eq!(mode(&refresh_file(&sb)), 0o600);
    let mut leaks = Leaks::of_outs(&[("login", &out)]);
    leaks.secret("the PIN", PIN);
    leaks.secret("the TOTP secret", TOTP_SECRET);
    leaks.token("the token", token["access_token"].as_str().unwrap());
    leaks.assert_clean();

    // A wrong PIN: one login call, exit 1, and the message says what to check.
    sb.set_env("ANGEL_PIN", "PIN-WRONG-000");
    let out = sb.run_async(&["--account", "a", "login"]).await;
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert_eq!(sim.calls(Endpoint::Login), 2);
    assert!(
        out.stderr.contains("tokenwatch: login failed: refused"),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("angel.pin"), "{}", out.all());
}
