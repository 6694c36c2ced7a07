//! The dashboard's `Ctrl-R`: the configuration is read again and each account takes its new
//! settings (a notice says so); a broken file, or one that adds an account, is refused with
//! the reason, and the dashboard runs on as before.

mod common;

use common::{Sandbox, Tmux, sh_quote, tokens};
use std::time::Duration;
use tokenwatch::token::store::TokenStore;

fn yaml(interval: &str, work: bool) -> String {
    // No API anywhere: checks find it unreachable, which changes nothing here.
    let mut y = format!(
        "upstox:\n  api_base: \"http://127.0.0.1:9/\"\ntoken:\n  path: upstox_token.json\n  backups: []\nmonitor:\n  check_interval: {interval}\n  max_retries: 1\nrenew:\n  strategy: none\n"
    );
    if work {
        y += "accounts:\n  work:\n    token:\n      path: work_token.json\n";
    }
    y
}

#[test]
fn ctrl_r_reloads_the_configuration_or_says_why_not() {
    let sb = Sandbox::new();
    sb.write_yaml(&yaml("30m", false));
    let now = chrono::Utc::now();
    let token = tokens::token(
        "reload-test-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        Some(now),
        now + chrono::Duration::hours(2),
    );
    TokenStore::new(sb.token_path(), vec![])
        .write(&token)
        .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("tokenwatch");
    let script = format!(
        "cd {}; exec {} tui",
        sh_quote(&sb.root.to_string_lossy()),
        sh_quote(&bin.to_string_lossy())
    );
    let env: Vec<(String, String)> = sb.env.clone();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let mut tmux_env = vec![("PATH".to_string(), path)];
    tmux_env.extend(env.iter().cloned());
    let socket = format!("tokenwatch-reload-{}", std::process::id());
    let mut tmux = Tmux::start(socket, &tmux_env, &env, (100, 30), &script);
    tmux.step = Duration::from_secs(30);
    tmux.wait_until("the dashboard", |s| s.contains("tokenwatch · default"));

    // A new interval: taken.
    sb.write_yaml(&yaml("10m", false));
    tmux.keys(&["C-r"]);
    let screen = tmux.wait_until("the reload notice", |s| {
        s.contains("Configuration reloaded")
    });
    assert!(!screen.contains("not reloaded"), "{screen}");
    tmux.wait_until("the log line", |s| s.contains("every 10m (was 30m)"));

    // A broken file: refused, the reason shown.
    sb.write_yaml("monitor:\n  check_interval: [broken]\n");
    tmux.keys(&["C-r"]);
    tmux.wait_until("the refusal", |s| s.contains("Configuration not reloaded"));

    // A second account: the tabs are the ones the dashboard started with.
    sb.write_yaml(&yaml("10m", true));
    tmux.keys(&["x", "C-r"]);
    tmux.wait_until("the refusal naming accounts", |s| {
        s.contains("adds or removes") || s.contains("accounts;")
    });
    tmux.keys(&["q"]);
}
