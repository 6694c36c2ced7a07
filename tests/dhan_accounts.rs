//! A Dhan account beside the Upstox one, through the real binary: `tokenwatch login --account
//! d` against the Dhan simulator over the loopback callback (the consent made first, the
//! tokenId consumed once), a verified token stored with `"broker": "dhan"` and the expiry
//! Dhan's `expiryTime` names; the headless renewals `totp` and `refresh-token` through
//! `tokenwatch refresh`; a consent for another Dhan client refused; nothing secret printed.

mod common;

use common::{Leaks, Sandbox, free_port, mode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokenwatch::brokers::dhan::sim::{Endpoint, SimConfig, SimServer, Simulator};
use tokenwatch::clock::SystemClock;

/// The browser: fetch the login page and follow the simulator's redirect to the callback.
const CURL: [&str; 4] = ["curl", "-sL", "-o", "/dev/null"];
/// Distinctive secrets, so a scan cannot miss them.
const SECRET: &str = "dhanE2E-Qm4Rt8Vz1-app-secret";
const PIN: &str = "PIN-dhanE2E-70431";
const TOTP_SECRET: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";
const CLIENT_ID: &str = "1100000042";
const APP_ID: &str = "dhan-e2e-app";

/// Dhan's simulator, auto-approving, with `redirect` registered; `lifetime` for its tokens.
async fn simulator(redirect: &str, lifetime: Option<Duration>) -> (SimServer, Simulator) {
    let sim = Simulator::new(
        SimConfig {
            client_id: CLIENT_ID.into(),
            app_id: APP_ID.into(),
            app_secret: SECRET.into(),
            pin: PIN.into(),
            totp_secret: TOTP_SECRET.into(),
            redirect_url: redirect.into(),
            token_lifetime: lifetime,
            auto_approve: true,
            ..SimConfig::default()
        },
        Arc::new(SystemClock),
    );
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (server, sim)
}

/// A config with the default Upstox account and a Dhan account `d` pointed at `server`,
/// renewing by `strategy`.
fn config(server: &SimServer, redirect: &str, strategy: &str) -> Value {
    let base = server.base_url.as_str().trim_end_matches('/').to_string();
    json!({
        "upstox": {"client_id": "upstox-app", "client_secret": "upstox-secret-not-used"},
        "token": {"path": "upstox_token.json", "backups": []},
        "login": {"timeout": "20s", "browser_command": CURL},
        "accounts": {
            "d": {
                "broker": "dhan",
                "dhan": {
                    "client_id": CLIENT_ID,
                    "api_key": APP_ID,
                    "api_secret": SECRET,
                    "pin": PIN,
                    "totp_secret": TOTP_SECRET,
                    "redirect_uri": redirect,
                    "api_base": base,
                    "login_base": base,
                },
                "renew": {"strategy": strategy},
                "token": {"path": "dhan_token.json", "backups": []},
            }
        }
    })
}

async fn setup(lifetime: Option<Duration>, strategy: &str) -> (SimServer, Simulator, Sandbox) {
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let (server, sim) = simulator(&redirect, lifetime).await;
    let sb = Sandbox::new();
    sb.write_config(&config(&server, &redirect, strategy));
    (server, sim, sb)
}

fn stored(sb: &Sandbox) -> Value {
    let path = sb.root.join("config/dhan_token.json");
    assert_eq!(mode(&path), 0o600);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The token's JWT `exp`, which the simulator also writes as `expiryTime`.
fn exp_of(token: &str) -> chrono::DateTime<chrono::Utc> {
    tokenwatch::token::expiry::ExpiryEvidence::of_token_text(token)
        .jwt_exp
        .expect("a JWT exp")
}

fn leaks_of(outs: &[(&str, &common::Out)], tokens: &[&str]) -> Leaks {
    let mut leaks = Leaks::of_outs(outs);
    leaks.secret("the Dhan app's secret", SECRET);
    leaks.secret("the Dhan PIN", PIN);
    leaks.secret("the TOTP secret", TOTP_SECRET);
    for (i, t) in tokens.iter().enumerate() {
        leaks.token(&format!("Dhan access token {i}"), t);
    }
    leaks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dhan_login_through_the_loopback_callback_stores_a_verified_dhan_token() {
    let (_server, sim, sb) = setup(None, "browser").await;
    let out = sb.run_async(&["--account", "d", "login"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("/login/consentApp-login?consentAppId=");
    out.assert_stdout("Logged in: token stored at");
    assert!(!out.all().contains("Upstox"), "{}", out.all());
    assert_eq!(sim.calls(Endpoint::Consent), 1);
    assert_eq!(sim.calls(Endpoint::Login), 1);
    assert_eq!(sim.calls(Endpoint::Consume), 1);
    assert!(sim.calls(Endpoint::Profile) >= 1);

    let stored = stored(&sb);
    assert_eq!(stored["broker"], "dhan", "{stored}");
    assert_eq!(stored["user_id"], CLIENT_ID, "{stored}");
    assert_eq!(stored["token_type"], "access-token", "{stored}");
    let token = stored["access_token"].as_str().unwrap().to_string();
    assert!(sim.is_token_live(&token));
    // The expiry is the one Dhan's expiryTime names (24 hours after issue), in IST.
    let exp = exp_of(&token);
    let expires: chrono::DateTime<chrono::FixedOffset> =
        stored["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, exp, "{stored}");
    assert!(
        stored["expires_at"].as_str().unwrap().ends_with("+05:30"),
        "{stored}"
    );
    assert!(!sb.root.join("config/upstox_token.json").exists());

    let status = sb.run_async(&["--account", "d", "status", "--json"]).await;
    let j = status.json();
    assert_eq!(j["broker"], "dhan", "{j}");
    assert_eq!(j["account"], "d", "{j}");
    let shown: chrono::DateTime<chrono::FixedOffset> =
        j["expiry_time"].as_str().unwrap().parse().unwrap();
    assert_eq!(shown, exp, "{j}");
    assert_eq!(j["valid"], true, "{j}");

    let validate = sb
        .run_async(&["--account", "d", "status", "--validate", "--json"])
        .await;
    assert_eq!(validate.json()["api_validated"], true, "{}", validate.all());
    // Dhan ends the token: the check reads it invalid, in Dhan's words.
    sim.revoke_all();
    let dead = sb
        .run_async(&["--account", "d", "status", "--validate", "--json"])
        .await;
    assert_eq!(dead.code, Some(2), "{}", dead.all());
    let v = dead.json();
    assert_eq!(v["state"], "invalid", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("Dhan") && error.contains("DH-901"), "{v}");

    leaks_of(
        &[
            ("login", &out),
            ("status", &status),
            ("validate", &validate),
            ("dead", &dead),
        ],
        &[&token],
    )
    .assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_for_another_dhan_client_is_refused() {
    let (_server, sim, sb) = setup(None, "browser").await;
    // The browser is logged in to someone else's Dhan account.
    sim.set_config(|c| c.consent_client_id = Some("1100000099".into()));
    let out = sb.run_async(&["--account", "d", "login"]).await;
    assert_ne!(out.code, Some(0), "{}", out.all());
    let text = out.all();
    assert!(
        text.contains("1100000099") && text.contains(CLIENT_ID),
        "{text}"
    );
    assert!(text.contains("log in as"), "{text}");
    assert_eq!(sim.calls(Endpoint::Consume), 1);
    assert!(!sb.root.join("config/dhan_token.json").exists());
    leaks_of(&[("login", &out)], &[]).assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_and_refresh_token_renew_through_tokenwatch_refresh() {
    // Tokens of 30 minutes: within monitor.refresh_before, so a refresh renews them.
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let (server, sim) = simulator(&redirect, Some(Duration::from_secs(30 * 60))).await;
    let sb = Sandbox::new();
    sb.write_config(&config(&server, &redirect, "totp"));
    let first = sb.run_async(&["--account", "d", "refresh"]).await;
    assert_eq!(first.code, Some(0), "{}", first.all());
    first.assert_stdout("Renewed");
    assert_eq!(sim.calls(Endpoint::PinLogin), 1);
    assert_eq!(sim.calls(Endpoint::Consent), 0);
    let one = stored(&sb);
    assert_eq!(one["broker"], "dhan", "{one}");
    assert_eq!(one["obtained_via"], "totp", "{one}");
    let token_one = one["access_token"].as_str().unwrap().to_string();
    assert!(sim.is_token_live(&token_one));

    // RenewToken with the stored token: a new one, and the old one ends.
    sb.write_config(&config(&server, &redirect, "refresh-token"));
    let second = sb.run_async(&["--account", "d", "refresh"]).await;
    assert_eq!(second.code, Some(0), "{}", second.all());
    second.assert_stdout("Renewed");
    assert_eq!(sim.calls(Endpoint::Renew), 1);
    assert_eq!(sim.calls(Endpoint::PinLogin), 1);
    let two = stored(&sb);
    assert_eq!(two["obtained_via"], "refresh-token", "{two}");
    let token_two = two["access_token"].as_str().unwrap().to_string();
    assert_ne!(token_two, token_one);
    assert!(sim.is_token_live(&token_two));
    assert!(!sim.is_token_live(&token_one));
    let expires: chrono::DateTime<chrono::FixedOffset> =
        two["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, exp_of(&token_two), "{two}");

    // A wrong PIN: refused once, the stored token left as it was.
    let mut wrong = config(&server, &redirect, "totp");
    wrong["accounts"]["d"]["dhan"]["pin"] = json!("PIN-wrong-0000");
    sb.write_config(&wrong);
    let refused = sb.run_async(&["--account", "d", "refresh"]).await;
    assert_eq!(sim.calls(Endpoint::PinLogin), 2, "{}", refused.all());
    refused.assert_stdout("Not renewed");
    assert!(refused.all().contains("DH-905"), "{}", refused.all());
    assert_eq!(stored(&sb)["access_token"], token_two.as_str());

    let mut leaks = leaks_of(
        &[
            ("totp", &first),
            ("renew", &second),
            ("wrong pin", &refused),
        ],
        &[&token_one, &token_two],
    );
    leaks.secret("the wrong PIN", "PIN-wrong-0000");
    leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_the_app_is_refused_ends_the_login_and_says_so() {
    let (_server, sim, sb) = setup(None, "browser").await;
    sim.set_config(|c| c.app_secret = "rotated-app-secret".into());
    let out = sb.run_async(&["--account", "d", "login"]).await;
    assert_ne!(out.code, Some(0), "{}", out.all());
    let text = out.all();
    assert!(
        text.contains("Dhan did not start the login") && text.contains("DH-902"),
        "{text}"
    );
    assert_eq!(sim.calls(Endpoint::Consent), 1);
    assert_eq!(sim.calls(Endpoint::Login), 0);
    assert!(!sb.root.join("config/dhan_token.json").exists());
    leaks_of(&[("login", &out)], &[]).assert_clean();
}

/// `tokenwatch simulate --broker dhan` prints what to configure, and what it prints works:
/// a TOTP account set up from those lines alone renews against it.
#[test]
fn simulate_dhan_prints_a_configuration_that_works() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut lines = Vec::new();
    let mut sim = None;
    for _ in 0..20 {
        let port = free_port();
        let mut child = common::KillOnDrop(
            Command::new(common::bin())
                .args(["simulate", "--broker", "dhan", "--auto-approve"])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .env_clear()
                .envs(common::clock_env())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut reader = BufReader::new(child.0.stdout.take().unwrap());
        lines.clear();
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            lines.push(line.trim().to_owned());
            line.clear();
            if lines
                .last()
                .is_some_and(|l| l.starts_with("Stop with Ctrl-C"))
            {
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        if lines
            .iter()
            .any(|l| l.starts_with("Dhan simulator listening on"))
        {
            sim = Some(child);
            break;
        }
    }
    let _sim = sim.expect("tokenwatch simulate --broker dhan did not start");
    let text = lines.join("\n");
    assert!(text.contains("24 hours after issue"), "{text}");
    let export = lines
        .iter()
        .find_map(|l| l.strip_prefix("export "))
        .unwrap_or_else(|| panic!("no export line in {text}"));
    let vars: Vec<(&str, &str)> = export
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    for name in [
        "TOKENWATCH__DHAN__API_BASE",
        "TOKENWATCH__DHAN__LOGIN_BASE",
        "DHAN_CLIENT_ID",
        "DHAN_API_KEY",
        "DHAN_API_SECRET",
        "DHAN_PIN",
        "DHAN_TOTP_SECRET",
    ] {
        assert!(vars.iter().any(|(k, _)| *k == name), "{name} in {export}");
    }
    let sb = Sandbox::new();
    sb.write_config(&json!({
        "broker": "dhan",
        "renew": {"strategy": "totp"},
        "token": {"path": "dhan_token.json", "backups": []},
    }));
    let out = sb.run_with(&["refresh"], &vars);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("Renewed");
    assert_eq!(stored(&sb)["broker"], "dhan");
}

#[test]
fn config_check_names_the_dhan_keys_a_strategy_lacks() {
    let sb = Sandbox::new();
    sb.write_config(&json!({
        "accounts": {"d": {
            "broker": "dhan",
            "renew": {"strategy": "totp"},
            "dhan": {"client_id": CLIENT_ID},
        }}
    }));
    let out = sb.run(&["config", "check"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stderr("dhan.pin is not set; set DHAN_PIN or dhan.pin");
    out.assert_stderr("dhan.totp_secret is not set; set DHAN_TOTP_SECRET");
    assert!(
        !out.stderr.contains("dhan.client_id is not set"),
        "{}",
        out.all()
    );
    assert!(!out.stderr.contains("dhan.api_key"), "{}", out.all());
    // A secret that cannot make codes stops the configuration, naming the key, not the value.
    sb.write_config(&json!({
        "accounts": {"d": {
            "broker": "dhan",
            "renew": {"strategy": "totp"},
            "dhan": {"client_id": CLIENT_ID, "pin": PIN, "totp_secret": "not base32 at all!"},
        }}
    }));
    let out = sb.run(&["config", "check"]);
    assert_eq!(out.code, Some(78), "{}", out.all());
    out.assert_stderr("accounts.d.dhan.totp_secret");
    assert!(!out.all().contains("not base32 at all"), "{}", out.all());
    leaks_of(&[("config check", &out)], &[]).assert_clean();
}
