//! `tokenwatch wait`: the real binary, with no daemon, blocks until the token file holds a
//! new token (`--changed`) or the account is healthy (`--healthy`, the default), and gives up
//! with exit 124 after `--timeout`.

mod common;

use chrono::Utc;
use common::{Sandbox, tokens};
use std::time::{Duration, Instant};
use tokenwatch::brokers::Broker;
use tokenwatch::token::store::TokenStore;

/// A Fyers account: its tokens end when their file says (no daily rule), so a token "12 hours
/// from now" is healthy at any time of day (an Upstox one would end at the next 03:30 IST).
fn sandbox() -> Sandbox {
    let mut sb = Sandbox::new();
    sb.write_yaml("broker: fyers\ntoken:\n  path: fyers_token.json\n  backups: []\n");
    sb.token = sb.root.join("config/fyers_token.json");
    sb
}

/// Store a token `text` that lives `hours` more.
fn store(sb: &Sandbox, text: &str, hours: i64) {
    let now = Utc::now();
    let token = tokenwatch::token::Token {
        broker: Broker::Fyers,
        ..tokens::token(
            text,
            Some(now - chrono::Duration::hours(1)),
            now + chrono::Duration::hours(hours),
        )
    };
    TokenStore::new(sb.token_path(), vec![])
        .with_broker(Broker::Fyers)
        .write(&token)
        .unwrap();
}

/// Wait (at most `limit`) for the process to end; when it ended.
fn ended_at(p: &mut common::sandbox::Running, limit: Duration) -> Option<Instant> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if !p.running() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn wait_changed_returns_within_a_second_of_a_new_token() {
    let sb = sandbox();
    store(&sb, "first-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 10);
    let mut p = sb.spawn(&["wait", "--changed", "--timeout", "30s"]);
    // The same token written again is no change.
    std::thread::sleep(Duration::from_millis(500));
    store(&sb, "first-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 10);
    assert_eq!(
        ended_at(&mut p, Duration::from_millis(1500)),
        None,
        "{}",
        p.stderr()
    );
    store(&sb, "second-token-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 10);
    let written = Instant::now();
    let ended = ended_at(&mut p, Duration::from_secs(5)).expect("wait returns");
    let took = ended - written;
    assert!(
        took < Duration::from_secs(1),
        "returned {took:?} after the change"
    );
    let out = p.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("New token for account \"default\": valid until");
    assert!(!out.all().contains("second-token"), "{}", out.all());
}

#[test]
fn wait_changed_with_no_token_at_start_returns_when_one_lands() {
    let sb = sandbox();
    let out = sb.run(&["wait", "--changed", "--timeout", "1s"]);
    assert_eq!(out.code, Some(124), "{}", out.all());
    out.assert_stderr("tokenwatch: waited 1s; no token file appeared");
    let mut p = sb.spawn(&["wait", "--changed", "--timeout", "30s"]);
    std::thread::sleep(Duration::from_millis(300));
    store(&sb, "the-first-token-cccccccccccccccccccccccccccccc", 10);
    let written = Instant::now();
    let ended = ended_at(&mut p, Duration::from_secs(5)).expect("wait returns");
    assert!(ended - written < Duration::from_secs(1));
    assert_eq!(p.finish().code, Some(0));
}

#[test]
fn wait_gives_up_with_124_after_its_timeout() {
    let sb = sandbox();
    store(&sb, "same-token-dddddddddddddddddddddddddddddddddddd", 10);
    let out = sb.run(&["wait", "--changed", "--timeout", "1s"]);
    assert_eq!(out.code, Some(124), "{}", out.all());
    out.assert_stderr("tokenwatch: waited 1s; the token file still holds the same token");
    // An expired token never reads healthy.
    store(&sb, "old-token-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", -1);
    let out = sb.run(&["wait", "--healthy", "--timeout", "1s"]);
    assert_eq!(out.code, Some(124), "{}", out.all());
    out.assert_stderr("the account is not healthy yet");
}

#[test]
fn wait_healthy_is_the_default_and_returns_once_a_good_token_lands() {
    let sb = sandbox();
    // Two hours left is a warning (monitor.warning_before is 3 hours): not healthy yet.
    store(&sb, "short-token-ffffffffffffffffffffffffffffffffffff", 2);
    let mut p = sb.spawn(&["wait", "--timeout", "30s"]);
    assert_eq!(
        ended_at(&mut p, Duration::from_millis(1500)),
        None,
        "{}",
        p.stderr()
    );
    store(&sb, "long-token-gggggggggggggggggggggggggggggggggggg", 12);
    let written = Instant::now();
    let ended = ended_at(&mut p, Duration::from_secs(5)).expect("wait returns");
    assert!(ended - written < Duration::from_secs(1));
    let out = p.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("Account \"default\" is healthy: valid until");
    // A healthy account answers at once.
    let out = sb.run(&["wait", "--healthy", "--timeout", "5s"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
}

#[test]
fn changed_and_healthy_together_are_a_usage_error() {
    let sb = sandbox();
    let out = sb.run(&["wait", "--changed", "--healthy"]);
    // Usage errors exit 3, like every other command's.
    assert_eq!(out.code, Some(3), "{}", out.all());
    out.assert_stderr("cannot be used with");
}
