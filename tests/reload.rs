//! `kill -HUP` on the daemon reads the configuration again: a new `monitor.check_interval`
//! shows in the log and in the API's next check time, an added account starts and a removed
//! one stops, and a broken configuration is refused while the daemon keeps running on the
//! old one.

mod common;

use chrono::{DateTime, Utc};
use common::time::{clear_of_the_0330_expiry, small_thresholds_yaml};
use common::{Sandbox, SimProcess, free_port};
use serde_json::Value;
use std::time::Duration;

fn yaml(api_base: &str, port: u16, check_interval: &str, work: bool) -> String {
    let mut y = format!(
        "upstox:\n  api_base: \"{api_base}\"\n\
         token:\n  path: upstox_token.json\n  backups: []\n\
         monitor:\n  check_interval: {check_interval}\n  backoff_initial: 50ms\n  backoff_max: 200ms\n{small}\
         renew:\n  strategy: command\n  not_before: \"00:00\"\n  command: [\"curl\", \"-sf\", \"-X\", \"POST\", \"{api_base}/sim/token\"]\n\
         server:\n  listen: \"127.0.0.1:{port}\"\n",
        small = small_thresholds_yaml()
    );
    if work {
        y += "accounts:\n  work:\n    token:\n      path: work_token.json\n";
    }
    y
}

fn get(port: u16, path: &str) -> Value {
    let out = std::process::Command::new("curl")
        .args([
            "-fsS",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{port}{path}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse::<DateTime<Utc>>().unwrap()
}

#[test]
fn sighup_applies_a_new_check_interval_and_accounts_and_refuses_a_broken_config() {
    clear_of_the_0330_expiry(Duration::from_secs(90));
    let sim = SimProcess::start();
    let sb = Sandbox::new();
    let port = free_port();
    sb.write_yaml(&yaml(&sim.base, port, "30m", false));
    assert_eq!(sb.run(&["refresh"]).code, Some(0));
    let mut daemon = sb.spawn(&["daemon"]);
    daemon.stderr_with("Token valid, expires in");
    let before = get(port, "/api/token/status");
    let next = at(&before["next_check_at"]) - at(&before["last_check_at"]);
    // 30 minutes, or less when the token ends sooner (the next check never comes after the
    // expiry; at 03:10 IST it is at 03:30): more than the 2 minutes to come, anyway.
    assert!(next.num_minutes() > 2, "{before}");

    // An open event stream, which a change of accounts ends (its client reconnects).
    let mut stream = std::process::Command::new("curl")
        .args(["-sN", "--max-time", "30"])
        .arg(format!("http://127.0.0.1:{port}/api/token/events"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        stream.try_wait().unwrap().is_none(),
        "the stream stays open"
    );

    // A shorter interval, and a second account.
    sb.write_yaml(&yaml(&sim.base, port, "2m", true));
    daemon.signal(libc::SIGHUP);
    daemon.stderr_with("Configuration reloaded: checks every 2m (was 30m)");
    daemon.stderr_with("Configuration reloaded: account work added");
    let ended = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        stream.try_wait().unwrap().is_some()
    });
    if !ended {
        let _ = stream.kill();
    }
    assert!(
        ended,
        "the event stream of the old accounts ended at the reload"
    );
    let out = stream.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("event: token"), "{text}");
    // The API's next check follows the new interval.
    let mut after = Value::Null;
    for _ in 0..50 {
        after = get(port, "/api/token/status");
        let next = at(&after["next_check_at"]) - at(&after["last_check_at"]);
        if next.num_minutes() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let next = at(&after["next_check_at"]) - at(&after["last_check_at"]);
    assert_eq!(next.num_minutes(), 2, "{after}");
    let tokens = get(port, "/api/tokens");
    let names: Vec<&str> = tokens["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "work"], "{tokens}");

    // A broken file is refused; the daemon runs on, as configured before.
    sb.write_yaml("monitor:\n  check_interval: [not, a, duration]\n");
    daemon.signal(libc::SIGHUP);
    let err = daemon.stderr_with("Configuration not reloaded: config error:");
    assert!(err.contains("the running configuration stays"), "{err}");
    assert!(daemon.running(), "the daemon stopped on a broken reload");
    let still = get(port, "/api/token/status");
    let next = at(&still["next_check_at"]) - at(&still["last_check_at"]);
    assert_eq!(next.num_minutes(), 2, "{still}");
    assert_eq!(
        get(port, "/api/tokens")["accounts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The second account removed again.
    sb.write_yaml(&yaml(&sim.base, port, "2m", false));
    daemon.signal(libc::SIGHUP);
    daemon.stderr_with("account work removed");
    assert_eq!(
        get(port, "/api/tokens")["accounts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    daemon.signal(libc::SIGTERM);
    let out = daemon.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
}

#[test]
fn a_reload_waits_for_the_running_renewal_and_never_interrupts_it() {
    clear_of_the_0330_expiry(Duration::from_secs(90));
    let sim = SimProcess::start();
    let sb = Sandbox::new();
    let port = free_port();
    // A renewal that takes a second and a half: the reload arrives in the middle of it.
    let slow = |interval: &str| {
        yaml(&sim.base, port, interval, false).replace(
            "command: [\"curl\",",
            "command: [\"sh\", \"-c\", \"sleep 1.5; exec \\\"$0\\\" \\\"$@\\\"\", \"curl\",",
        )
    };
    sb.write_yaml(&slow("30m"));
    // No token: the daemon renews at start.
    let mut daemon = sb.spawn(&["daemon"]);
    daemon.stderr_with("No token, attempting refresh...");
    sb.write_yaml(&slow("2m"));
    daemon.signal(libc::SIGHUP);
    let err = daemon.stderr_with("Configuration reloaded: checks every 2m (was 30m)");
    let renewed = err
        .find("Token refresh successful")
        .expect("the renewal finished");
    let reloaded = err.find("checks every 2m (was 30m)").unwrap();
    assert!(
        renewed < reloaded,
        "the reload came before the renewal ended:\n{err}"
    );
    assert!(!err.contains("failed"), "{err}");
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.finish().code, Some(0));
}
