//! Alert delivery (`notifications:`): the webhook payload and headers, the dedupe
//! window, bounded retries, the command's variables, hidden secrets and time limit.
//!
//! The webhook receiver is a small axum server on 127.0.0.1 that records every request and
//! answers as told. Real time, short delays.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokenwatch::alerts::{
    ALERT_COMMAND_LIMIT, Alert, AlertEvent, AlertSender, Alerter, DEDUPE_WINDOW,
};
use tokenwatch::config::NotificationsConfig;
use tokenwatch::token::TokenState;

use common::{Level, capture_logs};

/// 2026-11-27 03:30 IST, the usual Upstox expiry.
fn expiry() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 22, 0, 0).unwrap()
}

/// 2026-11-27 02:45 IST.
fn raised_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 21, 15, 0).unwrap()
}

fn alert(account: &str, event: AlertEvent) -> Alert {
    Alert {
        account: account.into(),
        event,
        level: Level::Critical,
        title: "Token expires soon".into(),
        message: "The token expires at 03:30 IST; press l to log in".into(),
        state: TokenState::Critical,
        expires_at: Some(expiry()),
        at: raised_at(),
    }
}

/// How the receiver answers one request.
#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
    delay: Duration,
    body: String,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply {
            status,
            retry_after: None,
            delay: Duration::ZERO,
            body: "receiver says: no".into(),
        }
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: HeaderMap,
    raw: String,
    body: serde_json::Value,
    at: Instant,
}

#[derive(Clone)]
struct Hook {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Answers for the next requests, in order; then `otherwise`.
    script: Arc<Mutex<VecDeque<Reply>>>,
    otherwise: Arc<Mutex<Reply>>,
}

/// A webhook receiver on loopback.
struct Receiver {
    url: url::Url,
    hook: Hook,
}

async fn record(
    State(hook): State<Hook>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    hook.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers,
        raw,
        body: json,
        at: Instant::now(),
    });
    let reply = hook
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| hook.otherwise.lock().unwrap().clone());
    tokio::time::sleep(reply.delay).await;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    if let Some(ra) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    response
}

impl Receiver {
    /// A receiver answering 200 unless told otherwise.
    async fn start() -> Receiver {
        let hook = Hook {
            seen: Arc::default(),
            script: Arc::default(),
            otherwise: Arc::new(Mutex::new(Reply::status(200))),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(record)
            .with_state(hook.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/services/T000/B000/s3cretPathPart")
                .parse()
                .unwrap(),
            hook,
        }
    }

    fn answer_always(&self, reply: Reply) {
        *self.hook.otherwise.lock().unwrap() = reply;
    }

    fn answer_next(&self, reply: Reply) {
        self.hook.script.lock().unwrap().push_back(reply);
    }

    fn seen(&self) -> Vec<Seen> {
        self.hook.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.hook.seen.lock().unwrap().len()
    }

    /// Wait (up to 5 s) until at least `n` requests came in.
    async fn wait_for(&self, n: usize) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "expected {n} requests, got {}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.seen()
    }

    /// Wait for `n` requests, then a while longer, and insist there were exactly `n`.
    async fn exactly(&self, n: usize, settle: Duration) -> Vec<Seen> {
        self.wait_for(n).await;
        tokio::time::sleep(settle).await;
        let seen = self.seen();
        assert_eq!(seen.len(), n, "requests: {seen:#?}");
        seen
    }
}

fn webhook_config(url: &url::Url) -> NotificationsConfig {
    NotificationsConfig {
        webhook_url: Some(url.clone()),
        ..NotificationsConfig::default()
    }
}

/// A receiver answering 200 and a sender posting to it.
async fn webhook() -> (Receiver, AlertSender) {
    let rx = Receiver::start().await;
    let sender = webhook_alerter(&rx.url);
    (rx, sender)
}

/// [`webhook`] with the receiver answering `reply` to every request.
async fn webhook_answering(reply: Reply) -> (Receiver, AlertSender) {
    let (rx, sender) = webhook().await;
    rx.answer_always(reply);
    (rx, sender)
}

fn webhook_alerter(url: &url::Url) -> AlertSender {
    Alerter::new(&webhook_config(url))
        .with_retry_delay(Duration::from_millis(50))
        .spawn()
}

fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
    seen.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn events_of(seen: &[Seen]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = seen
        .iter()
        .map(|s| {
            (
                s.body["account"].as_str().unwrap_or_default().to_string(),
                s.body["event"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pair(account: &str, event: &str) -> (String, String) {
    (account.to_string(), event.to_string())
}

#[test]
fn defaults_and_empty_configs() {
    assert_eq!(ALERT_COMMAND_LIMIT, Duration::from_secs(30));
    assert_eq!(DEDUPE_WINDOW, chrono::Duration::minutes(10));
    assert!(Alerter::new(&NotificationsConfig::default()).is_empty());
    assert!(!Alerter::new(&webhook_config(&"http://127.0.0.1:9/x".parse().unwrap())).is_empty());
    let command = NotificationsConfig {
        command: vec!["true".into()],
        ..NotificationsConfig::default()
    };
    assert!(!Alerter::new(&command).is_empty());
    // Desktop alerts count only when built in.
    let desktop = NotificationsConfig {
        desktop: true,
        ..NotificationsConfig::default()
    };
    assert_eq!(
        Alerter::new(&desktop).is_empty(),
        !cfg!(feature = "desktop")
    );
    // Outside a runtime, and with nothing configured: a sender that drops everything.
    let sender = Alerter::new(&command).spawn();
    assert!(!sender.is_enabled());
    sender.send(alert("default", AlertEvent::Expired));
    let disabled = AlertSender::disabled();
    assert!(!disabled.is_enabled());
    disabled.clone().send(alert("default", AlertEvent::Expired));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_alert_posts_every_field_and_the_ntfy_headers() {
    let (rx, sender) = webhook().await;
    sender.send(Alert {
        account: "default".into(),
        event: AlertEvent::Expired,
        level: Level::Critical,
        title: "Token expired!".into(),
        message: "The token expired at 03:30 IST; press l to log in".into(),
        state: TokenState::Expired,
        expires_at: Some(expiry()),
        at: Utc.with_ymd_and_hms(2026, 11, 26, 22, 0, 5).unwrap(),
    });
    let seen = rx.exactly(1, Duration::from_millis(300)).await;
    let s = &seen[0];
    assert_eq!(s.method, "POST");
    assert_eq!(s.path, "/services/T000/B000/s3cretPathPart");
    assert_eq!(header(s, "content-type"), "application/json");
    let expected = serde_json::json!({
        "account": "default",
        "level": "critical",
        "title": "Token expired!",
        "message": "The token expired at 03:30 IST; press l to log in",
        "state": "expired",
        "expires_at": "2026-11-27T03:30:00+05:30",
        "event": "expired",
        "at": "2026-11-27T03:30:05+05:30",
        "text": "tokenwatch [default] Token expired!: The token expired at 03:30 IST; press l to log in",
    });
    assert_eq!(s.body, expected, "raw body: {}", s.raw);
    assert_eq!(header(s, "title"), "Token expired!");
    assert_eq!(header(s, "priority"), "urgent");
    assert_eq!(header(s, "tags"), "tokenwatch,expired");
    assert!(sender.close(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn levels_map_to_priorities_titles_are_ascii_and_no_expiry_is_null() {
    let (rx, sender) = webhook().await;
    sender.send(Alert {
        account: "alt".into(),
        event: AlertEvent::Renewed,
        level: Level::Info,
        title: "Token renewed — valid till 03:30…\r\nX-Evil: 1".into(),
        message: "A new token was stored".into(),
        state: TokenState::Healthy,
        expires_at: Some(expiry()),
        at: raised_at(),
    });
    sender.send(Alert {
        account: "alt".into(),
        event: AlertEvent::Missing,
        level: Level::Warning,
        title: "No token".into(),
        message: "There is no token; press l to log in".into(),
        state: TokenState::Missing,
        expires_at: None,
        at: raised_at(),
    });
    let seen = rx.exactly(2, Duration::from_millis(300)).await;
    let renewed = seen.iter().find(|s| s.body["event"] == "renewed").unwrap();
    assert_eq!(header(renewed, "priority"), "default");
    assert_eq!(header(renewed, "tags"), "tokenwatch,renewed");
    assert_eq!(
        header(renewed, "title"),
        "Token renewed - valid till 03:30... X-Evil: 1"
    );
    assert!(renewed.headers.get("x-evil").is_none());
    assert_eq!(renewed.body["level"], "info");
    assert_eq!(renewed.body["state"], "healthy");
    // The body keeps the title as it is.
    assert_eq!(
        renewed.body["title"],
        "Token renewed — valid till 03:30…\r\nX-Evil: 1"
    );
    let missing = seen.iter().find(|s| s.body["event"] == "missing").unwrap();
    assert_eq!(header(missing, "priority"), "high");
    assert_eq!(missing.body["level"], "warning");
    assert_eq!(missing.body["state"], "missing");
    assert!(missing.body["expires_at"].is_null());
    assert!(missing.body.as_object().unwrap().contains_key("expires_at"));
    assert!(sender.close(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_events_for_one_account_post_twice() {
    let (rx, sender) = webhook().await;
    sender.send(alert("default", AlertEvent::Critical));
    sender.send(alert("default", AlertEvent::RenewalFailed));
    let seen = rx.exactly(2, Duration::from_millis(300)).await;
    assert_eq!(
        events_of(&seen),
        vec![
            pair("default", "critical"),
            pair("default", "renewal_failed")
        ]
    );
    assert!(sender.close(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_within_the_window_is_dropped_and_after_it_posts_again() {
    let (rx, sender) = webhook().await;
    let first = alert("default", AlertEvent::Expired);
    sender.send(first.clone());
    sender.send(Alert {
        at: first.at + chrono::Duration::minutes(9),
        ..first.clone()
    });
    rx.exactly(1, Duration::from_millis(400)).await;
    // 11 minutes after the first: past the window.
    sender.send(Alert {
        at: first.at + chrono::Duration::minutes(11),
        ..first.clone()
    });
    let seen = rx.exactly(2, Duration::from_millis(300)).await;
    assert_eq!(seen[0].body["at"], "2026-11-27T02:45:00+05:30");
    assert_eq!(seen[1].body["at"], "2026-11-27T02:56:00+05:30");
    assert!(sender.close(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_is_configurable() {
    let rx = Receiver::start().await;
    let sender = Alerter::new(&webhook_config(&rx.url))
        .with_dedupe_window(chrono::Duration::minutes(1))
        .spawn();
    let first = alert("default", AlertEvent::Expired);
    sender.send(first.clone());
    sender.send(Alert {
        at: first.at + chrono::Duration::minutes(2),
        ..first
    });
    rx.exactly(2, Duration::from_millis(300)).await;
    assert!(sender.close(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_event_for_two_accounts_posts_twice() {
    let (rx, sender) = webhook().await;
    // Through two clones, as two workers would.
    sender.clone().send(alert("default", AlertEvent::Expired));
    sender.clone().send(alert("alt", AlertEvent::Expired));
    let seen = rx.exactly(2, Duration::from_millis(300)).await;
    assert_eq!(
        events_of(&seen),
        vec![pair("alt", "expired"), pair("default", "expired")]
    );
    assert!(sender.close(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_answering_500_is_tried_three_times_then_left() {
    let (rx, sender) = webhook_answering(Reply::status(500)).await;
    sender.send(alert("default", AlertEvent::Expired));
    // Retries after 50 ms and 100 ms, each ±25% (jitter); a fourth would come well within
    // 1.5 s. The second wait is at least 75 ms, more than an undoubled one can be (62.5 ms).
    let seen = rx.exactly(3, Duration::from_millis(1500)).await;
    let gap = seen[2].at - seen[1].at;
    assert!(
        gap >= Duration::from_millis(70),
        "the second retry waits twice the first delay (less 25% jitter); waited {gap:?}"
    );
    assert!(sender.close(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_alert_is_not_retried() {
    let (rx, sender) = webhook_answering(Reply::status(400)).await;
    sender.send(alert("default", AlertEvent::Expired));
    rx.exactly(1, Duration::from_millis(800)).await;
    assert!(sender.close(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_retried_after_its_retry_after() {
    let rx = Receiver::start().await;
    rx.answer_next(Reply {
        retry_after: Some("0"),
        ..Reply::status(429)
    });
    // A long backoff: only `Retry-After: 0` makes the second attempt come at once.
    let sender = Alerter::new(&webhook_config(&rx.url))
        .with_retry_delay(Duration::from_secs(20))
        .spawn();
    sender.send(alert("default", AlertEvent::Expired));
    let seen = rx.exactly(2, Duration::from_millis(500)).await;
    assert!(seen[1].at - seen[0].at < Duration::from_secs(2));
    assert_eq!(seen[0].body, seen[1].body);
    assert!(sender.close(Duration::from_secs(5)).await);

    // And a Retry-After of 1 s is waited for, even with a short backoff.
    let rx = Receiver::start().await;
    rx.answer_next(Reply {
        retry_after: Some("1"),
        ..Reply::status(503)
    });
    let sender = webhook_alerter(&rx.url);
    sender.send(alert("default", AlertEvent::Expired));
    let seen = rx.exactly(2, Duration::from_millis(300)).await;
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(900));
    assert!(sender.close(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_webhook_does_not_hold_up_the_next_alert() {
    let rx = Receiver::start().await;
    rx.answer_next(Reply {
        delay: Duration::from_secs(4),
        ..Reply::status(200)
    });
    let sender = webhook_alerter(&rx.url);
    let started = Instant::now();
    sender.send(alert("default", AlertEvent::Critical));
    rx.wait_for(1).await;
    sender.send(alert("default", AlertEvent::Expired));
    rx.wait_for(2).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the second alert waited for the first: {:?}",
        started.elapsed()
    );
    assert!(sender.close(Duration::from_secs(8)).await);
}

/// `sh -c script sh args...`: the script sees the arguments as `$1`, `$2`, ...
fn sh_script(script: &str, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["sh", "-c", script, "sh"].map(String::from).to_vec();
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

/// A command that appends `<event>` to `log` for each alert it runs for.
fn logging_command(log: &Path) -> Vec<String> {
    sh_script(
        "printf '%s\\n' \"$TOKENWATCH_ALERT_EVENT\" >> \"$1\"",
        &[&log.display().to_string()],
    )
}

async fn wait_for_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} lines in {}, got {lines:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_webhook_leaves_the_sender_usable() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = NotificationsConfig {
        webhook_url: Some(format!("http://{closed}/hook").parse().unwrap()),
        command: logging_command(&log),
        ..NotificationsConfig::default()
    };
    let sender = Alerter::new(&config)
        .with_retry_delay(Duration::from_millis(50))
        .spawn();
    sender.send(alert("default", AlertEvent::Critical));
    wait_for_lines(&log, 1).await;
    // Let the webhook's attempts fail.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sender.send(alert("default", AlertEvent::Expired));
    let mut lines = wait_for_lines(&log, 2).await;
    lines.sort();
    assert_eq!(lines, vec!["critical", "expired"]);
    assert!(sender.close(Duration::from_secs(5)).await);
}

/// Set in the copy of this test binary that [`the_command_gets_the_alert_variables_and_no_secrets`]
/// starts with secrets in its environment.
const CHILD: &str = "TOKENWATCH_ALERTS_TEST_CHILD";
const CLIENT_SECRET: &str = "clientSecretMustNotReachAlertCommands";
const API_KEY: &str = "apiKeyMustNotReachAlertCommands";

/// The secrets have to be in tokenwatch's own environment; rather than changing this test
/// process's environment while other tests run, it runs itself again with them set.
#[test]
fn the_command_gets_the_alert_variables_and_no_secrets() {
    if std::env::var_os(CHILD).is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(command_variables_in_child());
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_command_gets_the_alert_variables_and_no_secrets",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("UPSTOX_CLIENT_SECRET", CLIENT_SECRET)
        .env("TOKENWATCH__SERVER__API_KEY", API_KEY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child run failed:\n{stdout}\n{stderr}"
    );
}

async fn command_variables_in_child() {
    assert_eq!(
        std::env::var("UPSTOX_CLIENT_SECRET").as_deref(),
        Ok(CLIENT_SECRET)
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let config = NotificationsConfig {
        command: sh_script(
            "env -0 > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"",
            &[&out.display().to_string()],
        ),
        ..NotificationsConfig::default()
    };
    let sender = Alerter::new(&config).spawn();
    sender.send(Alert {
        account: "alt account".into(),
        event: AlertEvent::DeadlineMissed,
        level: Level::Critical,
        title: "No token before 09:00".into(),
        message: "No valid token 30 min before the deadline — \"press l\" & $HOME stays literal"
            .into(),
        state: TokenState::Expired,
        expires_at: Some(expiry()),
        at: raised_at(),
    });
    sender.send(Alert {
        account: "other".into(),
        event: AlertEvent::Missing,
        level: Level::Warning,
        title: "No token".into(),
        message: "There is no token".into(),
        state: TokenState::Missing,
        expires_at: None,
        at: raised_at(),
    });
    assert!(sender.close(Duration::from_secs(10)).await);
    let raw = std::fs::read(&out).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let env: BTreeMap<&str, &str> = text
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    // The two alerts ran the command in some order; this file is from either one.
    let expected: BTreeMap<&str, &str> = if env.get("TOKENWATCH_ALERT_ACCOUNT") == Some(&"other") {
        [
            ("TOKENWATCH_ALERT_ACCOUNT", "other"),
            ("TOKENWATCH_ALERT_EVENT", "missing"),
            ("TOKENWATCH_ALERT_LEVEL", "warning"),
            ("TOKENWATCH_ALERT_TITLE", "No token"),
            ("TOKENWATCH_ALERT_MESSAGE", "There is no token"),
            ("TOKENWATCH_ALERT_STATE", "missing"),
            ("TOKENWATCH_ALERT_EXPIRES_AT", ""),
            ("TOKENWATCH_ALERT_AT", "2026-11-27T02:45:00+05:30"),
        ]
        .into()
    } else {
        [
            ("TOKENWATCH_ALERT_ACCOUNT", "alt account"),
            ("TOKENWATCH_ALERT_EVENT", "deadline_missed"),
            ("TOKENWATCH_ALERT_LEVEL", "critical"),
            ("TOKENWATCH_ALERT_TITLE", "No token before 09:00"),
            (
                "TOKENWATCH_ALERT_MESSAGE",
                "No valid token 30 min before the deadline — \"press l\" & $HOME stays literal",
            ),
            ("TOKENWATCH_ALERT_STATE", "expired"),
            ("TOKENWATCH_ALERT_EXPIRES_AT", "2026-11-27T03:30:00+05:30"),
            ("TOKENWATCH_ALERT_AT", "2026-11-27T02:45:00+05:30"),
        ]
        .into()
    };
    let got: BTreeMap<&str, &str> = env
        .iter()
        .filter(|(k, _)| k.starts_with("TOKENWATCH_ALERT_"))
        .map(|(k, v)| (*k, *v))
        .collect();
    assert_eq!(got, expected);
    assert!(!env.contains_key("UPSTOX_CLIENT_SECRET"));
    assert!(!env.contains_key("TOKENWATCH__SERVER__API_KEY"));
    assert!(
        !text.contains(CLIENT_SECRET),
        "the client secret reached the command"
    );
    assert!(!text.contains(API_KEY), "the API key reached the command");
    // The rest of the environment is inherited.
    assert!(env.contains_key("PATH"));

    // Both alerts ran the command: check the other one with a fresh file per run.
    let log = dir.path().join("events.log");
    let sender = Alerter::new(&NotificationsConfig {
        command: logging_command(&log),
        ..NotificationsConfig::default()
    })
    .spawn();
    sender.send(alert("a", AlertEvent::Expired));
    sender.send(alert("b", AlertEvent::Expired));
    assert!(sender.close(Duration::from_secs(10)).await);
    assert_eq!(wait_for_lines(&log, 2).await.len(), 2);
}

/// Alive and not a zombie waiting for a parent that does not reap.
fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

fn read_pid(path: &PathBuf) -> Option<libc::pid_t> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_past_its_limit_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pidfile");
    let shpid = dir.path().join("shpid");
    let config = NotificationsConfig {
        command: sh_script(
            "echo $$ > \"$2\"; sleep 30 & echo $! > \"$1\"; sleep 30",
            &[&pidfile.display().to_string(), &shpid.display().to_string()],
        ),
        ..NotificationsConfig::default()
    };
    let sender = Alerter::new(&config)
        .with_command_limit(Duration::from_millis(300))
        .spawn();
    let started = Instant::now();
    sender.send(alert("default", AlertEvent::Expired));
    let deadline = Instant::now() + Duration::from_secs(5);
    let (child, sh) = loop {
        if let (Some(c), Some(s)) = (read_pid(&pidfile), read_pid(&shpid)) {
            break (c, s);
        }
        assert!(Instant::now() < deadline, "the command did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        sender.close(Duration::from_secs(10)).await,
        "the delivery did not end"
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "killed only after {took:?}"
    );
    // The background child went with the group (allow a moment for the kernel).
    let deadline = Instant::now() + Duration::from_secs(2);
    while (alive(child) || alive(sh)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(child), "the background sleep outlived the limit");
    assert!(!alive(sh), "the command outlived the limit");
}

#[tokio::test(flavor = "multi_thread")]
async fn close_waits_for_deliveries_within_its_grace_only() {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    let config = NotificationsConfig {
        command: sh_script(
            "sleep \"$2\"; touch \"$1\"",
            &[&done.display().to_string(), "0.5"],
        ),
        ..NotificationsConfig::default()
    };
    let sender = Alerter::new(&config).spawn();
    sender.send(alert("default", AlertEvent::Expired));
    assert!(sender.close(Duration::from_secs(5)).await);
    assert!(done.exists(), "close returned before the command ended");

    let mut slow = config.clone();
    slow.command[5] = "3".into();
    let sender = Alerter::new(&slow)
        .with_command_limit(Duration::from_secs(4))
        .spawn();
    let other = sender.clone();
    sender.send(alert("default", AlertEvent::Expired));
    let started = Instant::now();
    assert!(!sender.close(Duration::from_millis(200)).await);
    assert!(started.elapsed() < Duration::from_secs(2));
    // A clone left behind only drops what it is given now.
    other.send(alert("default", AlertEvent::Critical));
    assert!(other.close(Duration::from_millis(100)).await);
}

/// Text as the worker writes it; the token itself must never be in an alert.
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQjEyMzQifQ.c2lnbmF0dXJl";

#[tokio::test(flavor = "multi_thread")]
async fn no_payload_carries_a_token() {
    let (rx, sender) = webhook().await;
    let alerts = [
        Alert {
            account: "default".into(),
            event: AlertEvent::Renewed,
            level: Level::Info,
            title: "Token renewed".into(),
            message: "Token refresh successful; valid till 2026-11-28 03:30 IST".into(),
            state: TokenState::Healthy,
            expires_at: Some(expiry()),
            at: raised_at(),
        },
        Alert {
            account: "default".into(),
            event: AlertEvent::RenewalFailed,
            level: Level::Critical,
            title: "Renewal failed".into(),
            message: "All refresh attempts failed (the API answered 401); press r to retry or l to log in".into(),
            state: TokenState::Invalid,
            expires_at: Some(expiry()),
            at: raised_at(),
        },
        Alert {
            account: "default".into(),
            event: AlertEvent::Invalid,
            level: Level::Critical,
            title: "Token rejected".into(),
            message: "Upstox rejected the token (UDAPI100050); press l to log in".into(),
            state: TokenState::Invalid,
            expires_at: None,
            at: raised_at(),
        },
    ];
    for a in &alerts {
        let payload = a.payload().to_string();
        assert!(
            !payload.contains("eyJ") && !payload.contains(TOKEN),
            "{payload}"
        );
        assert!(a.env_vars().iter().all(|(_, v)| !v.contains("eyJ")));
        sender.send(a.clone());
    }
    let seen = rx.exactly(alerts.len(), Duration::from_millis(200)).await;
    for s in &seen {
        assert!(!s.raw.contains("eyJ"), "{}", s.raw);
        for (name, value) in &s.headers {
            assert!(
                !value.to_str().unwrap_or_default().contains("eyJ"),
                "header {name}"
            );
        }
    }
    assert!(sender.close(Duration::from_secs(5)).await);
}

/// The delivery task logs from its own tasks, so the subscriber is this thread's default and
/// the runtime has only this thread.
#[test]
fn failures_are_logged_without_the_webhook_path_or_long_bodies() {
    let logs = capture_logs();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let rx = Receiver::start().await;
        let long = format!("start-of-body {}", "y".repeat(400));
        rx.answer_always(Reply {
            body: long.clone(),
            ..Reply::status(500)
        });
        let dir = tempfile::tempdir().unwrap();
        let config = NotificationsConfig {
            webhook_url: Some(rx.url.clone()),
            command: vec![
                "sh".into(),
                "-c".into(),
                "echo 'boom happened' >&2; exit 3".into(),
            ],
            ..NotificationsConfig::default()
        };
        let alerter = Alerter::new(&config).with_retry_delay(Duration::from_millis(20));
        let debug = format!("{alerter:?}");
        assert!(!debug.contains("s3cretPathPart"), "{debug}");
        let sender = alerter.spawn();
        sender.send(alert("default", AlertEvent::Expired));
        sender.send(alert("default", AlertEvent::Expired));
        assert!(sender.close(Duration::from_secs(5)).await);
        assert_eq!(rx.count(), 3);

        // A command past its limit, and one that cannot start.
        let sender = Alerter::new(&NotificationsConfig {
            command: vec!["sh".into(), "-c".into(), "sleep 5".into()],
            ..NotificationsConfig::default()
        })
        .with_command_limit(Duration::from_millis(100))
        .spawn();
        sender.send(alert("default", AlertEvent::Critical));
        assert!(sender.close(Duration::from_secs(5)).await);
        let sender = Alerter::new(&NotificationsConfig {
            command: vec![dir.path().join("no-such-program").display().to_string()],
            ..NotificationsConfig::default()
        })
        .spawn();
        sender.send(alert("default", AlertEvent::Missing));
        assert!(sender.close(Duration::from_secs(5)).await);
    });
    let text = logs.text();
    let port = text
        .lines()
        .find(|l| l.contains("attempt 1/3 failed"))
        .unwrap_or_else(|| panic!("no first failure logged:\n{text}"));
    assert!(port.contains("WARN"), "{port}");
    assert!(port.contains("http://127.0.0.1:"), "{port}");
    assert!(port.contains("/…"), "{port}");
    assert!(port.contains("500"), "{port}");
    assert!(port.contains("start-of-body"), "{port}");
    assert!(text.contains("attempt 2/3 failed"), "{text}");
    assert!(
        text.contains("attempt 3/3 failed") && text.contains("not delivered"),
        "{text}"
    );
    assert!(
        text.contains("not sent again"),
        "the repeat is logged at debug: {text}"
    );
    assert!(
        !text.contains("s3cretPathPart"),
        "the URL path was logged:\n{text}"
    );
    assert!(
        !text.contains(&"y".repeat(250)),
        "a long body was logged whole"
    );
    assert!(
        text.contains("exited with code 3") && text.contains("boom happened"),
        "{text}"
    );
    assert!(text.contains("did not finish within 100ms"), "{text}");
    assert!(text.contains("Cannot run notifications.command"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}
