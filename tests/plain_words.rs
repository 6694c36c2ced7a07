//! Where there is no keyboard there are no keys: the real daemon, against the simulator,
//! through warning, critical, expired, invalid and a waiting login. Its log and its alerts name commands, never a dashboard key, and a waiting login's
//! address is in the log and in the alert.

mod common;

use common::time::clear_of_the_0330_expiry;
use common::{Sandbox, SimHost};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use tokenwatch::brokers::upstox::sim::SimConfig;

/// A sandbox for the daemon against `sim`: `renew` and `login` as given, thresholds of
/// seconds, the log in `tokenwatch.log` and every alert appended to `alerts.log` as
/// `event|message` by the alert command.
fn sandbox(sim: &SimHost, renew: serde_json::Value, login: serde_json::Value) -> Sandbox {
    let sb = Sandbox::new();
    let mut config = sim.binary_config(renew, login);
    config["monitor"]["warning_before"] = json!("20s");
    config["monitor"]["critical_before"] = json!("10s");
    config["monitor"]["refresh_before"] = json!("5s");
    config["log"] = json!({"file": sb.root.join("tokenwatch.log")});
    let alerts = sb.root.join("alerts.log");
    config["notifications"] = json!({"command": [
        "sh", "-c",
        format!(
            "printf '%s|%s\\n' \"$TOKENWATCH_ALERT_EVENT\" \"$TOKENWATCH_ALERT_MESSAGE\" >> '{}'",
            alerts.display()
        ),
    ]});
    sb.write_config(&config);
    sb
}

/// The alerts so far, as `(event, message)`.
fn alerts(sb: &Sandbox) -> Vec<(String, String)> {
    std::fs::read_to_string(sb.root.join("alerts.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(e, m)| (e.to_string(), m.to_string()))
        .collect()
}

/// Wait (up to a minute: the states follow a clock of seconds on a loaded machine) for an
/// alert of `event`.
fn wait_for_alert(sb: &Sandbox, event: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((_, m)) = alerts(sb).into_iter().find(|(e, _)| e == event) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "no {event} alert: {:?}",
            alerts(sb)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Nothing a person reads away from the dashboard names a key.
fn assert_no_keys(sb: &Sandbox, stderr: &str) {
    // The daemon logs to stderr (its service manager keeps it); `log.file` is checked too
    // in case it writes there.
    let file = std::fs::read_to_string(sb.root.join("tokenwatch.log")).unwrap_or_default();
    assert!(!stderr.is_empty(), "the daemon logged nothing");
    for (place, text) in [("stderr", stderr), ("log.file", file.as_str())] {
        for line in text.lines() {
            assert!(!line.contains("press "), "{place}: {line}");
        }
    }
    for (event, message) in alerts(sb) {
        assert!(!message.contains("press "), "{event}: {message}");
    }
}

fn write_token(path: &Path, token: &str) {
    std::fs::write(path, token).unwrap();
}

#[test]
fn the_daemon_names_commands_through_every_state_and_a_waiting_login() {
    // A token living 25 s, so it goes warning, critical and expired within the test: it
    // must not meet the 03:30 IST expiry on the way.
    clear_of_the_0330_expiry(Duration::from_secs(60));
    let sim = SimHost::start_own_runtime(
        SimConfig {
            token_lifetime: Some(Duration::from_secs(25)),
            ..SimConfig::default()
        },
        "127.0.0.1",
    );

    // Strategy none: the states follow the clock, and nothing renews.
    let sb = sandbox(&sim, json!({"strategy": "none"}), json!({}));
    write_token(
        &sb.token_path(),
        sim.sim.issue_token().access_token.expose(),
    );
    let daemon = sb.spawn(&["daemon"]);
    for event in ["warning", "critical", "expired"] {
        wait_for_alert(&sb, event);
    }
    daemon.signal(libc::SIGTERM);
    let out = daemon.finish();
    assert_no_keys(&sb, &out.stderr);
    assert!(
        wait_for_alert(&sb, "expired").contains("tokenwatch login"),
        "{:?}",
        alerts(&sb)
    );

    // A token Upstox no longer accepts.
    write_token(
        &sb.token_path(),
        sim.sim.issue_token().access_token.expose(),
    );
    sim.sim.revoke_all();
    let daemon = sb.spawn(&["daemon"]);
    let message = wait_for_alert(&sb, "invalid");
    assert!(message.contains("tokenwatch login"), "{message}");
    daemon.signal(libc::SIGTERM);
    let out = daemon.finish();
    assert_no_keys(&sb, &out.stderr);

    // Strategy browser with no token: the renewal opens the login (the "browser" here is
    // `true`) and waits for the user. Its address, which holds no secret, is in the log and
    // in the alert.
    let sb = sandbox(
        &sim,
        json!({"strategy": "browser", "not_before": "00:00"}),
        json!({"timeout": "60s", "browser_command": ["true"]}),
    );
    let mut daemon = sb.spawn(&["daemon"]);
    let line = daemon.stderr_with("Login waiting until");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap_or_else(|| panic!("no address in {line}"))
        .to_string();
    assert!(url.contains("/login/authorization/dialog"), "{line}");
    let message = wait_for_alert(&sb, "login_waiting");
    assert!(
        message.contains(&url) || message.contains("its address is in tokenwatch's log"),
        "{message}"
    );
    assert!(message.chars().count() <= 140, "{message}");
    daemon.signal(libc::SIGTERM);
    let out = daemon.finish();
    assert_no_keys(&sb, &out.stderr);
}
