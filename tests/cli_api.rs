//! The real binary against the real simulator process: `simulate`, `refresh` with a
//! `renew.command`, `status --validate`, and `daemon` with its signals.

mod common;

use common::time::{clear_of_the_0330_expiry, small_thresholds_yaml};
use common::{Sandbox, SimProcess, free_port, mode};
use serde_json::Value;

/// A sandbox whose config renews with `renew.command` (curl to the simulator's `/sim/token`)
/// against the simulator at `api_base`, with short backoffs.
fn sandbox(api_base: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write_yaml(&format!(
        "upstox:\n  api_base: \"{api_base}\"\n\
         token:\n  path: upstox_token.json\n  backups: [backup/upstox_token.json]\n\
         monitor:\n  backoff_initial: 50ms\n  backoff_max: 200ms\n{small}\
         renew:\n  strategy: command\n  not_before: \"00:00\"\n  command: [\"curl\", \"-sf\", \"-X\", \"POST\", \"{api_base}/sim/token\"]\n",
        // Small thresholds: a token issued now reads healthy at any time of day.
        small = small_thresholds_yaml()
    ));
    sb
}

/// The stored token file, as JSON.
fn stored_json(sb: &Sandbox) -> Value {
    serde_json::from_slice(&std::fs::read(sb.token_path()).unwrap()).unwrap()
}

#[test]
fn refresh_renews_through_the_command_and_status_validates_it() {
    // A fresh token must read healthy and not be due for renewal for the whole test.
    clear_of_the_0330_expiry(std::time::Duration::from_secs(60));
    let sim = SimProcess::start();
    let sb = sandbox(&sim.base);

    // No token yet: refresh runs renew.command, verifies the token, stores it.
    let out = sb.run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_says("Token refresh successful");
    // The heading names the user, like `status`'s.
    out.assert_says("HEALTHY · default (AB1234");
    assert_eq!(mode(&sb.token_path()), 0o600);
    assert_eq!(
        mode(&sb.root.join("config/backup/upstox_token.json")),
        0o600
    );
    let stored = stored_json(&sb);
    assert_eq!(stored["format"], 1);
    assert_eq!(stored["obtained_via"], "command");
    assert_eq!(stored["user_id"], "AB1234");
    let token = stored["access_token"].as_str().unwrap().to_owned();
    assert!(!out.all().contains(&token), "refresh printed the token");

    let out = sb.run(&["status", "--validate", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let j = out.json();
    assert_eq!(j["state"], "healthy");
    assert_eq!(j["api_validated"], true);
    assert!(j["last_validated_at"].as_str().unwrap().ends_with("+05:30"));
    assert!(!out.all().contains(&token));

    // A second refresh finds the token valid and leaves it alone.
    let out = sb.run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_says("renewal is not due yet");
    let again = stored_json(&sb);
    assert_eq!(again["access_token"], stored["access_token"]);
}

#[test]
fn status_validate_reports_a_rejected_token_as_invalid() {
    let sim = SimProcess::start();
    let sb = sandbox(&sim.base);
    // A JWT this simulator never signed.
    let forged = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQjEyMzQiLCJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl";
    std::fs::write(sb.token_path(), forged).unwrap();
    let out = sb.run(&["status", "--validate", "--json"]);
    assert_eq!(out.code, Some(2), "{}", out.all());
    let j = out.json();
    assert_eq!(j["state"], "invalid");
    assert_eq!(j["valid"], false);
    assert!(j["error"].as_str().unwrap().contains("UDAPI100050"), "{j}");
    assert!(!out.all().contains(forged));
    // `refresh` replaces it: a rejected token is renewed at once.
    let out = sb.run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let stored = std::fs::read_to_string(sb.token_path()).unwrap();
    assert!(!stored.contains(forged));
}

#[test]
fn status_validate_with_the_api_down_is_unknown() {
    let sim = SimProcess::start();
    let base = sim.base.clone();
    let sb = sandbox(&base);
    assert_eq!(sb.run(&["refresh"]).code, Some(0));
    drop(sim);
    let out = sb.run(&["status", "--validate", "--json"]);
    assert_eq!(out.code, Some(3), "{}", out.all());
    let j = out.json();
    assert_eq!(j["state"], "unknown");
    assert!(
        j["error"].as_str().unwrap().contains("cannot connect"),
        "{j}"
    );
    // Three attempts, two retries logged, and the token is not called invalid.
    let err = &out.stderr;
    assert_eq!(err.matches("Check attempt").count(), 2, "{err}");
    // refresh: the API cannot confirm, renewal is not due, and a network failure is never
    // a reason to call the token invalid: it is still good by time, so exit 0.
    let out = sb.run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
}

#[test]
fn daemon_validates_and_stops_cleanly_on_sigterm_and_sigint() {
    let sim = SimProcess::start();
    let sb = sandbox(&sim.base);
    assert_eq!(sb.run(&["refresh"]).code, Some(0));
    let before = std::fs::read(sb.token_path()).unwrap();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut daemon = sb.spawn(&["daemon"]);
        daemon.stderr_with("Token valid, expires in");
        daemon.signal(signal);
        let out = daemon.finish();
        assert_eq!(out.code, Some(0), "signal {signal}: {}", out.stderr);
        assert_eq!(
            std::fs::read(sb.token_path()).unwrap(),
            before,
            "the daemon changed a valid token"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(sb.root.join("config"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn refresh_with_token_request_completes_through_the_notifier_webhook() {
    // Below the ephemeral range, so no outgoing connection takes it before the notifier binds.
    let hook_port = free_port();
    let hook = format!("http://127.0.0.1:{hook_port}/upstox-hook-test");
    // The notifier holds a delivered token to Upstox's 03:30 IST rule, so this simulator keeps
    // it; short thresholds keep the stored token `healthy` at any hour but 03:29-03:30 IST.
    let sim = SimProcess::start_with(&["--auto-approve", "--notifier-url", &hook]);
    let sb = sandbox(&sim.base);
    let yaml = format!(
        "upstox:\n  api_base: \"{base}\"\n  client_id: 615b1297-sim-client\n  client_secret: sim-secret\n\
         token:\n  path: upstox_token.json\n  backups: []\n\
         renew:\n  strategy: token-request\n  not_before: \"00:00\"\n  notifier_listen: \"127.0.0.1:{hook_port}\"\n  notifier_path: /upstox-hook-test\n\
         monitor:\n  warning_before: 1m\n  critical_before: 30s\n",
        base = sim.base
    );
    sb.write_yaml(&yaml);
    let out = sb.run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_says("Approve the token request");
    let stored = stored_json(&sb);
    assert_eq!(stored["obtained_via"], "token-request");
    assert_eq!(stored["user_id"], "AB1234");
    assert_eq!(mode(&sb.token_path()), 0o600);
    let token = stored["access_token"].as_str().unwrap();
    assert!(!out.all().contains(token), "refresh printed the token");
    let out = sb.run(&["status", "--validate", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
}

/// With strategy none and a token in its last two minutes, `refresh` does not say renewal
/// "is not due yet": it says tokenwatch does not renew, and which command does.
#[test]
fn refresh_under_strategy_none_says_to_log_in_not_that_renewal_is_not_due() {
    clear_of_the_0330_expiry(std::time::Duration::from_secs(150));
    let sim = SimProcess::start_with(&["--token-lifetime", "100s"]);
    let sb = sandbox(&sim.base);
    // renew.command stores a token that lives 100 s (under refresh_before, 2m).
    let out = sb.run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let config = std::fs::read_to_string(sb.config_path()).unwrap();
    sb.write_yaml(&config.replace("strategy: command", "strategy: none"));
    let out = sb.run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(!out.stdout.contains("not due"), "{}", out.all());
    out.assert_stdout("renew.strategy is none, so tokenwatch does not renew");
    out.assert_stdout("with tokenwatch login");
}
