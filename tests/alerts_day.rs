//! Alerts through simulated days: the worker raises exactly one alert per transition on the
//! paused clock, and a scripted webhook receiver then gets exactly those, with no token in
//! any payload.

mod common;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokenwatch::alerts::{Alert, AlertEvent, Alerter};
use tokenwatch::config::NotificationsConfig;
use tokenwatch::messages::Level;
use tokenwatch::token::TokenState;

/// Thursday 09:00 to Friday 09:01 with `renew.command` succeeding at 08:00. Returns the
/// alerts and every token text the day minted.
fn good_day() -> (Vec<Alert>, Vec<String>) {
    paused_runtime().block_on(async {
        let h = Harness::new(ist_at(26, 9, 0)).await;
        let first = h.store_fresh_token();
        let (handle, log) = h.spawn();
        h.run_until(ist_at(27, 7, 59)).await;
        h.prepare_command_token();
        h.run_until(ist_at(27, 9, 1)).await;
        stop(handle).await;
        let tokens = vec![first.access_token.expose().to_string(), h.command_token()];
        (alerts(&log), tokens)
    })
}

/// The same day with `renew.command` failing every time.
fn bad_day() -> (Vec<Alert>, Vec<String>) {
    paused_runtime().block_on(async {
        let mut h = Harness::new(ist_at(26, 9, 0)).await;
        h.set_command_script("echo 'no token today' >&2; exit 1");
        let first = h.store_fresh_token();
        let (handle, log) = h.spawn();
        h.run_until(ist_at(27, 10, 1)).await;
        stop(handle).await;
        (alerts(&log), vec![first.access_token.expose().to_string()])
    })
}

fn summary(
    alerts: &[Alert],
) -> Vec<(AlertEvent, chrono::DateTime<chrono::Utc>, Level, TokenState)> {
    alerts
        .iter()
        .map(|a| (a.event, a.at, a.level, a.state))
        .collect()
}

#[test]
fn a_good_day_alerts_warning_critical_expired_and_recovered_once_each() {
    let (alerts, _) = good_day();
    let second = chrono::Duration::seconds(1);
    assert_eq!(
        summary(&alerts),
        vec![
            (
                AlertEvent::Warning,
                ist_at(27, 0, 30),
                Level::Warning,
                TokenState::Warning
            ),
            (
                AlertEvent::Critical,
                ist_at(27, 2, 30) + second,
                Level::Critical,
                TokenState::Critical
            ),
            (
                AlertEvent::Expired,
                ist_at(27, 3, 30),
                Level::Critical,
                TokenState::Expired
            ),
            // The renewal ended an expired token: one `recovered` alert says so.
            (
                AlertEvent::Recovered,
                ist_at(27, 8, 0),
                Level::Info,
                TokenState::Healthy
            ),
        ]
    );
    // Each alert carries the token's expiry at the time: the old one until the renewal.
    assert_eq!(alerts[0].expires_at, Some(ist_at(27, 3, 30)));
    assert_eq!(alerts[3].expires_at, Some(ist_at(28, 3, 30)));
    assert!(alerts.iter().all(|a| a.account == "default"));
}

#[test]
fn a_bad_day_alerts_the_first_failed_renewal_and_the_missed_deadline_once() {
    let (alerts, _) = bad_day();
    let events: Vec<AlertEvent> = alerts.iter().map(|a| a.event).collect();
    assert_eq!(
        events,
        vec![
            AlertEvent::Warning,
            AlertEvent::Critical,
            AlertEvent::Expired,
            AlertEvent::RenewalFailed,
            AlertEvent::DeadlineMissed,
        ],
        "renewals retried at 08:30, 09:00, 09:30 and 10:00 must not alert again"
    );
    let failed = &alerts[3];
    assert!(failed.at >= ist_at(27, 8, 0) && failed.at < ist_at(27, 8, 5));
    assert_eq!(failed.level, Level::Critical);
    let deadline = &alerts[4];
    assert_eq!(deadline.at, ist_at(27, 8, 30));
    assert_eq!(deadline.state, TokenState::Expired);
    assert!(deadline.title.contains("09:00"), "{}", deadline.title);
}

/// Requests the receiver got: JSON bodies.
type Received = Arc<Mutex<Vec<serde_json::Value>>>;

async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    async fn take(
        State(got): State<Received>,
        body: axum::Json<serde_json::Value>,
    ) -> &'static str {
        got.lock().unwrap().push(body.0);
        "ok"
    }
    let app = Router::new()
        .route("/hook", post(take))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// Send the day's alerts through a real Alerter to a local webhook, in real time.
fn deliver(alerts: &[Alert]) -> Vec<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (url, got) = receiver().await;
        let config = NotificationsConfig {
            webhook_url: Some(url.parse().unwrap()),
            ..NotificationsConfig::default()
        };
        let sender = Alerter::new(&config)
            .with_retry_delay(Duration::from_millis(50))
            .spawn();
        for a in alerts {
            sender.send(a.clone());
        }
        assert!(sender.close(Duration::from_secs(10)).await);
        got.lock().unwrap().clone()
    })
}

fn assert_no_token(payloads: &[serde_json::Value], tokens: &[String]) {
    let text = serde_json::to_string(payloads).unwrap();
    let mut leaks = Leaks::default();
    leaks.text("the payloads", text.clone());
    for t in tokens {
        assert!(t.len() > 40, "a real token was minted");
        leaks.token("a minted token", t);
    }
    leaks.assert_clean();
    assert!(!text.contains("eyJ"), "nothing JWT-shaped in a payload");
}

#[test]
fn the_webhook_receives_the_good_days_alerts_in_order_without_tokens() {
    let (alerts, tokens) = good_day();
    let got = deliver(&alerts);
    let events: Vec<&str> = got.iter().map(|p| p["event"].as_str().unwrap()).collect();
    // Delivered concurrently, so compare as sets; four transitions, four requests.
    let mut sorted = events.clone();
    sorted.sort();
    assert_eq!(sorted, ["critical", "expired", "recovered", "warning"]);
    let expired = got.iter().find(|p| p["event"] == "expired").unwrap();
    assert_eq!(expired["account"], "default");
    assert_eq!(expired["level"], "critical");
    assert_eq!(expired["state"], "expired");
    assert_eq!(expired["title"], "Token expired!");
    assert_eq!(expired["expires_at"], "2026-11-27T03:30:00+05:30");
    assert_no_token(&got, &tokens);
}

#[test]
fn the_webhook_receives_the_bad_days_alerts_once_each_without_tokens() {
    let (alerts, tokens) = bad_day();
    let got = deliver(&alerts);
    let mut events: Vec<&str> = got.iter().map(|p| p["event"].as_str().unwrap()).collect();
    events.sort();
    assert_eq!(
        events,
        [
            "critical",
            "deadline_missed",
            "expired",
            "renewal_failed",
            "warning"
        ]
    );
    let failed = got.iter().find(|p| p["event"] == "renewal_failed").unwrap();
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("no token today"),
        "the failure says why: {failed}"
    );
    assert_no_token(&got, &tokens);
}

#[test]
fn a_revoked_token_alerts_invalid_and_a_missing_one_alerts_missing_once() {
    let (revoked, missing) = paused_runtime().block_on(async {
        // Strategy none: nothing renews, so the states stay as they are.
        let mut h = Harness::new(ist_at(26, 10, 0)).await;
        h.account.renew.strategy = tokenwatch::config::Strategy::None;
        h.store_fresh_token();
        let (handle, log) = h.spawn();
        h.run_until(ist_at(26, 10, 5)).await;
        h.sim.revoke_all();
        // The next check (every 30 min) finds it rejected; an hour more adds nothing.
        h.run_until(ist_at(26, 11, 45)).await;
        stop(handle).await;
        let revoked = alerts(&log);

        let mut h = Harness::new(ist_at(26, 10, 0)).await;
        h.account.renew.strategy = tokenwatch::config::Strategy::None;
        let (handle, log) = h.spawn();
        h.run_until(ist_at(26, 12, 0)).await;
        stop(handle).await;
        (revoked, alerts(&log))
    });
    assert_eq!(
        summary(&revoked),
        vec![(
            AlertEvent::Invalid,
            ist_at(26, 10, 30),
            Level::Critical,
            TokenState::Invalid
        )]
    );
    assert!(revoked[0].expires_at.is_some());
    assert_eq!(
        summary(&missing),
        vec![(
            AlertEvent::Missing,
            ist_at(26, 10, 0),
            Level::Critical,
            TokenState::Missing
        )]
    );
    assert_eq!(missing[0].expires_at, None);
}

/// Alerts are read on a phone, not at the dashboard: short (title ≤ 40 characters, body
/// ≤ 140) and with the action for where the reader is — a command, never a dashboard key.
#[test]
fn alerts_name_commands_not_keys_and_fit_a_phone() {
    let (good, _) = good_day();
    let (bad, _) = bad_day();
    assert!(good.len() + bad.len() >= 9, "{good:#?} {bad:#?}");
    for a in good.iter().chain(&bad) {
        assert!(!a.message.contains("press"), "{:?}: {}", a.event, a.message);
        assert!(a.title.chars().count() <= 40, "{:?}: {}", a.event, a.title);
        assert!(
            a.message.chars().count() <= 140,
            "{:?}: {}",
            a.event,
            a.message
        );
    }
    let text = |e: AlertEvent| {
        bad.iter()
            .chain(&good)
            .find(|a| a.event == e)
            .map(|a| a.message.clone())
            .unwrap()
    };
    assert!(
        text(AlertEvent::Expired).contains("tokenwatch"),
        "{}",
        text(AlertEvent::Expired)
    );
    assert!(
        text(AlertEvent::RenewalFailed).contains("tokenwatch refresh"),
        "{}",
        text(AlertEvent::RenewalFailed)
    );
    assert!(
        text(AlertEvent::DeadlineMissed).contains("tokenwatch login"),
        "{}",
        text(AlertEvent::DeadlineMissed)
    );
}

/// A day with strategy none, nothing renewing: the dashboard's notices name its keys (and
/// `l`, the one that helps: `r` would only check), while the same notices' words for the log
/// and alerts name the command instead.
#[test]
fn notices_name_keys_on_the_dashboard_and_commands_elsewhere() {
    let notices = paused_runtime().block_on(async {
        let mut h = Harness::new(ist_at(26, 9, 0)).await;
        h.account.renew.strategy = tokenwatch::config::Strategy::None;
        h.store_fresh_token();
        let (handle, log) = h.spawn();
        h.run_until(ist_at(27, 4, 0)).await;
        stop(handle).await;
        common::notices(&log)
    });
    let titles: Vec<&str> = notices.iter().map(|n| n.title.as_str()).collect();
    for title in [
        "Token expires soon",
        "Token about to expire",
        "Token expired!",
    ] {
        assert!(titles.contains(&title), "{title}: {notices:#?}");
    }
    for n in &notices {
        assert!(n.message.contains("press l"), "{}: {}", n.title, n.message);
        assert!(!n.message.contains("press r"), "{}: {}", n.title, n.message);
        assert!(
            !n.elsewhere.contains("press"),
            "{}: {}",
            n.title,
            n.elsewhere
        );
        assert!(
            n.elsewhere.contains("tokenwatch login"),
            "{}: {}",
            n.title,
            n.elsewhere
        );
    }
}

/// The warning comes at 00:30 for a token that ends at 03:30 IST: renewal is due at 02:30 by
/// `refresh_before`, but a token renewed then would end at 03:30 too, so the alert says what
/// happens (after 03:30), not the time when nothing does.
#[test]
fn the_warning_says_when_renewal_really_runs() {
    let (alerts, _) = good_day();
    let warning = alerts
        .iter()
        .find(|a| a.event == AlertEvent::Warning)
        .unwrap();
    assert_eq!(warning.at, ist_at(27, 0, 30));
    assert_eq!(
        warning.message,
        "3h 0m left; renew.command runs after 03:30 IST"
    );
}
