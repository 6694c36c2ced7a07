//! The worker against a misbehaving Upstox and misbehaving renew commands, on tokio's paused
//! clock: every fault kind in a validation round and in a renewal round (attempt counts,
//! verdicts, virtual time spent, files untouched), bad `renew.command` output, the weekday
//! deadline alarm, `r` (force refresh), a token revoked on the server, and shutdown in the
//! middle of a long backoff.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use std::time::Duration;
use tokenwatch::brokers::upstox::client::{ApiError, REQUEST_TIMEOUT};
use tokenwatch::brokers::upstox::sim::{Endpoint, Fault, SimConfig, Simulator};
use tokenwatch::config::Strategy;
use tokenwatch::messages::{Command, Level, Notification, Topic};
use tokenwatch::schedule::{Deferral, Renewal, Verdict};
use tokenwatch::token::TokenState;
use tokenwatch::token::read_token_file;
use tokenwatch::worker::{CheckOutcome, RenewOutcome};

const PROFILE: &str = "/v2/user/profile";

fn ms(d: chrono::Duration) -> i64 {
    d.num_milliseconds()
}

fn assert_ms_between(what: &str, d: chrono::Duration, lo: i64, hi: i64) {
    let got = ms(d);
    assert!(
        (lo..=hi).contains(&got),
        "{what}: {got} ms, expected {lo}..={hi} ms"
    );
}

/// What one attempt costs on the paused clock before its answer arrives.
fn attempt_cost_ms(fault: Fault) -> i64 {
    match fault {
        Fault::Timeout => REQUEST_TIMEOUT.as_millis() as i64,
        _ => 0,
    }
}

/// The window of the wait before retry number `retry` (0-based), with monitor defaults
/// (backoff_initial 2 s, doubled, ±25% jitter). A Retry-After is honoured as a minimum.
/// One millisecond of slack on top for tokio's millisecond timer wheel.
fn delay_window_ms(fault: Fault, retry: usize) -> (i64, i64) {
    let backoff = [(1500, 2501), (3000, 5001)][retry];
    match fault {
        Fault::TooManyRequests {
            retry_after: Some(s),
        } => {
            let ra = s as i64 * 1000;
            (ra.max(backoff.0), ra.max(backoff.1) + 5000)
        }
        _ => backoff,
    }
}

/// The wait after the last attempt until its round ends: only what the attempt costs.
fn assert_last_attempt(fault: Fault, after_last: chrono::Duration) {
    let cost = attempt_cost_ms(fault);
    assert_ms_between(
        &format!("{fault:?}: the last attempt"),
        after_last,
        cost,
        cost + 2,
    );
}

/// Rate limited, come back in five minutes.
const LONG_RETRY_AFTER: Fault = Fault::TooManyRequests {
    // Long, but within the 60 s a round honours (a longer one ends the round at once).
    retry_after: Some(50),
};

/// A validation round of `h`'s token with `fault` injected `n` times: the core, when the
/// round started, its result, when it ended.
async fn validate_with(
    h: &Harness,
    fault: Fault,
    n: u32,
) -> (
    tokenwatch::worker::Core,
    DateTime<Utc>,
    CheckOutcome,
    DateTime<Utc>,
) {
    let mut core = h.core();
    h.sim.inject(Endpoint::Profile, fault, n);
    let t0 = h.now();
    let v = core.check().await;
    (core, t0, v, h.now())
}

/// Check that the attempts (profile calls) started at `t0` and were spaced by the backoff.
fn assert_spacing(fault: Fault, t0: DateTime<Utc>, times: &[DateTime<Utc>]) {
    assert_eq!(times[0], t0, "the first attempt is made at once");
    for (i, pair) in times.windows(2).enumerate() {
        let (lo, hi) = delay_window_ms(fault, i);
        let cost = attempt_cost_ms(fault);
        assert_ms_between(
            &format!("{fault:?}: attempt {} → {}", i + 1, i + 2),
            pair[1] - pair[0],
            cost + lo,
            cost + hi + 1,
        );
    }
}

/// Thursday 26 Nov 10:00 IST, a fresh token (dies Friday 03:30), calls recorded.
async fn healthy_harness() -> (Harness, CallLog) {
    let mut h = Harness::new(ist_at(26, 10, 0)).await;
    assert_eq!(h.monitor.max_retries, 3);
    assert_eq!(h.monitor.backoff_initial, Duration::from_secs(2));
    assert_eq!(REQUEST_TIMEOUT, Duration::from_secs(15));
    let calls = h.record_calls().await;
    h.store_fresh_token();
    (h, calls)
}

/// Friday 27 Nov 09:00 IST: the stored token died at 03:30; a fresh one waits where
/// `renew.command` prints it from. Calls recorded.
async fn expired_harness() -> (Harness, CallLog) {
    let mut h = Harness::new(ist_at(26, 9, 0)).await;
    let calls = h.record_calls().await;
    h.store_fresh_token();
    h.run_until(ist_at(27, 9, 0)).await;
    h.prepare_command_token();
    (h, calls)
}

/// [`expired_harness`] with the stored token's text, the new token's and the files.
async fn expired_round() -> (Harness, CallLog, String, String, Files) {
    let (h, calls) = expired_harness().await;
    let old = stored_token_text(&h);
    let new = h.command_token();
    let before = h.files();
    (h, calls, old, new, before)
}

/// Fails when `text` shows `secret`, its signature or any piece of it (see [`Leaks`]).
fn assert_no_leak(what: &str, text: &str, secret: &str) {
    let mut leaks = Leaks::default();
    leaks.text(what, text);
    leaks.token("a token", secret);
    leaks.assert_clean();
}

fn stored_token_text(h: &Harness) -> String {
    read_token_file(&h.token_path())
        .unwrap()
        .unwrap()
        .access_token
        .expose()
        .to_string()
}

// ---------------------------------------------------------------------------------------
// 1. A validation round (Core::validate) meets each fault kind on the profile API.
// ---------------------------------------------------------------------------------------

async fn validation_round_transient(fault: Fault) {
    // Injected more often than max_retries: exactly 3 attempts, then Unreachable.
    let (h, calls) = healthy_harness().await;
    let before = h.files();
    assert!(before.0.contains_key(&h.token_path()));
    assert!(before.0.contains_key(&h.account.token.backups[0]));
    let (core, t0, v, t1) = validate_with(&h, fault, 5).await;
    assert_eq!(h.sim.calls(Endpoint::Profile), 3, "{fault:?}");
    let times = calls.times(PROFILE);
    assert_eq!(times.len(), 3);
    assert_spacing(fault, t0, &times);
    assert_last_attempt(fault, t1 - times[2]);
    match &v {
        CheckOutcome::Unreachable(e @ ApiError::Transient { .. }) => {
            assert!(
                e.to_string().contains(fault_reason(fault)),
                "{fault:?}: {e}"
            );
            if let Fault::TooManyRequests { retry_after } = fault {
                assert_eq!(e.retry_after(), retry_after.map(Duration::from_secs));
            }
        }
        other => panic!("{fault:?}: expected Unreachable(Transient), got {other:?}"),
    }
    // Never invalid: the token is as healthy as before, with no verdict.
    assert_eq!(core.state(t1), TokenState::Healthy, "{fault:?}");
    assert_eq!(core.verdict(), Verdict::Unknown, "{fault:?}");
    let snap = core.snapshot(t1, Default::default());
    assert_eq!(snap.last_check_at, Some(t1));
    assert!(
        snap.last_check_result
            .as_deref()
            .is_some_and(|r| r.starts_with("unreachable: ")),
        "{:?}",
        snap.last_check_result
    );
    assert_eq!(h.files(), before, "{fault:?}: the files changed");

    // Injected once: the second attempt succeeds.
    let (h, calls) = healthy_harness().await;
    let before = h.files();
    let (core, t0, v, t1) = validate_with(&h, fault, 1).await;
    assert_eq!(h.sim.calls(Endpoint::Profile), 2, "{fault:?}");
    let times = calls.times(PROFILE);
    assert_eq!(times.len(), 2);
    assert_spacing(fault, t0, &times);
    assert_eq!(t1, times[1], "the successful attempt costs no time");
    match &v {
        CheckOutcome::Valid(p) => assert_eq!(p.user_id.as_deref(), Some("AB1234")),
        other => panic!("{fault:?}: expected Valid, got {other:?}"),
    }
    assert_eq!(core.verdict(), Verdict::Valid(t1));
    assert_eq!(core.state(t1), TokenState::Healthy);
    assert_eq!(h.files(), before, "{fault:?}: the files changed");
}

#[tokio::test(start_paused = true)]
async fn validation_unauthorized_is_rejected_at_once_and_makes_the_token_invalid() {
    let (h, calls) = healthy_harness().await;
    let before = h.files();
    let mut core = h.core();
    // Queued three times, but a rejection is an answer: no retry.
    h.sim.inject(Endpoint::Profile, Fault::Unauthorized, 3);
    let t0 = h.now();
    let v = core.check().await;
    let t1 = h.now();
    assert_eq!(h.sim.calls(Endpoint::Profile), 1);
    assert_eq!(calls.times(PROFILE), [t0]);
    assert_eq!(t1, t0, "a rejection costs no time");
    match &v {
        CheckOutcome::Rejected(ApiError::Invalid { code, .. }) => {
            assert_eq!(code.as_deref(), Some("UDAPI100050"))
        }
        other => panic!("expected Rejected(Invalid), got {other:?}"),
    }
    assert_eq!(core.verdict(), Verdict::Invalid(t1));
    assert_eq!(core.state(t1), TokenState::Invalid);
    assert!(
        core.snapshot(t1, Default::default())
            .last_check_result
            .is_some_and(|r| r.starts_with("rejected: "))
    );
    assert_eq!(h.files(), before);
}

// ---------------------------------------------------------------------------------------
// 2. A renewal round (strategy command) meets each fault kind on its profile check.
// ---------------------------------------------------------------------------------------

async fn renewal_round_transient(fault: Fault) {
    // Injected 3 times: every attempt fails, nothing is stored.
    let (h, calls, old, new, before) = expired_round().await;
    let mut core = h.core();
    let t0 = h.now();
    assert_eq!(core.state(t0), TokenState::Expired);
    assert_eq!(core.renewal(t0), Renewal::Due);
    h.sim.inject(Endpoint::Profile, fault, 3);
    let out = core.renew_by_command().await;
    let t1 = h.now();
    let RenewOutcome::Failed(why) = &out else {
        panic!("{fault:?}: expected Failed, got {out:?}");
    };
    assert!(why.contains(fault_reason(fault)), "{fault:?}: {why}");
    assert_no_leak("the failure", why, &new);
    assert_no_leak("the failure", why, &old);
    assert_eq!(h.command_runs(), 3, "{fault:?}");
    assert_eq!(h.sim.calls(Endpoint::Profile), 3, "{fault:?}");
    let times = calls.times(PROFILE);
    assert_spacing(fault, t0, &times);
    assert_last_attempt(fault, t1 - times[2]);
    assert_eq!(h.files(), before, "{fault:?}: a failed renewal wrote");
    assert!(
        !h.token_path()
            .with_file_name("upstox_token.json.prev")
            .exists()
    );
    assert_eq!(core.state(t1), TokenState::Expired);
    assert_eq!(core.token().unwrap().access_token.expose(), old);

    // Injected once: the second attempt stores the new token.
    let (h, calls) = expired_harness().await;
    let old = stored_token_text(&h);
    let new = h.command_token();
    let mut core = h.core();
    let t0 = h.now();
    h.sim.inject(Endpoint::Profile, fault, 1);
    let out = core.renew_by_command().await;
    let t1 = h.now();
    assert_eq!(out, RenewOutcome::Renewed, "{fault:?}");
    assert_eq!(h.command_runs(), 2, "{fault:?}");
    assert_eq!(h.sim.calls(Endpoint::Profile), 2, "{fault:?}");
    let times = calls.times(PROFILE);
    assert_spacing(fault, t0, &times);
    assert_eq!(t1, times[1]);
    let stored = read_token_file(&h.token_path()).unwrap().unwrap();
    assert_eq!(stored.access_token.expose(), new);
    assert_eq!(stored.expires_at, ist_at(28, 3, 30));
    assert_eq!(stored.obtained_via.as_deref(), Some("command"));
    assert_eq!(
        std::fs::read(&h.account.token.backups[0]).unwrap(),
        std::fs::read(h.token_path()).unwrap(),
        "the backup holds the same bytes"
    );
    let prev = read_token_file(&h.token_path().with_file_name("upstox_token.json.prev"))
        .unwrap()
        .unwrap();
    assert_eq!(prev.access_token.expose(), old);
    assert_eq!(core.state(t1), TokenState::Healthy);
    assert_eq!(core.verdict(), Verdict::Valid(t1));
    assert!(h.temp_files().is_empty(), "{:?}", h.temp_files());
}

#[tokio::test(start_paused = true)]
async fn the_command_strategy_rejects_a_token_that_the_profile_api_rejects() {
    let (h, calls, old, new, before) = expired_round().await;
    let mut core = h.core();
    let t0 = h.now();
    h.sim.inject(Endpoint::Profile, Fault::Unauthorized, 3);
    let out = core.renew_by_command().await;
    let t1 = h.now();
    let RenewOutcome::Failed(why) = &out else {
        panic!("expected Failed, got {out:?}");
    };
    assert!(why.contains("rejected by Upstox"), "{why}");
    assert_no_leak("the failure", why, &new);
    assert_no_leak("the failure", why, &old);
    // Every attempt runs the command again (it may print a better token next time).
    assert_eq!(h.command_runs(), 3);
    assert_eq!(h.sim.calls(Endpoint::Profile), 3);
    assert_spacing(Fault::Unauthorized, t0, &calls.times(PROFILE));
    assert_eq!(h.files(), before, "nothing may be stored");
    assert_eq!(core.state(t1), TokenState::Expired);
    assert_eq!(core.token().unwrap().access_token.expose(), old);
}

macro_rules! per_transient_fault {
    ($($name:ident => $fault:expr;)*) => {
        mod validation_round {
            use super::*;
            $(
                #[tokio::test(start_paused = true)]
                async fn $name() {
                    validation_round_transient($fault).await;
                }
            )*
        }
        mod renewal_round {
            use super::*;
            $(
                #[tokio::test(start_paused = true)]
                async fn $name() {
                    renewal_round_transient($fault).await;
                }
            )*
        }
    };
}

per_transient_fault! {
    server_error => Fault::ServerError;
    too_many_requests => Fault::TooManyRequests { retry_after: None };
    too_many_requests_retry_after_30 => Fault::TooManyRequests { retry_after: Some(30) };
    timeout => Fault::Timeout;
    malformed_json => Fault::MalformedJson;
    cloudflare_html => Fault::CloudflareHtml;
    service_window => Fault::ServiceWindow;
}

// ---------------------------------------------------------------------------------------
// 3. renew.command misbehaves.
// ---------------------------------------------------------------------------------------

/// Run one renewal round with the command as it is; check it fails naming `reason`, never
/// shows `secret`, ran the command max_retries times, made `profile_calls` profile calls, and
/// left the files alone.
async fn check_bad_command(
    h: &Harness,
    secret: &str,
    reason: &str,
    profile_calls: u64,
    calls: &CallLog,
) {
    assert!(secret.len() > 40, "the secret to look for is a real token");
    let logs = capture_logs();
    let before = h.files();
    let mut core = h.core();
    let t0 = h.now();
    let out = core.renew_by_command().await;
    let t1 = h.now();
    let RenewOutcome::Failed(why) = &out else {
        panic!("expected Failed, got {out:?}");
    };
    assert!(why.contains(reason), "{why:?} should say {reason:?}");
    assert_no_leak("the failure", why, secret);
    assert_eq!(h.command_runs(), 3);
    assert_eq!(h.sim.calls(Endpoint::Profile), profile_calls);
    assert_eq!(calls.times(PROFILE).len() as u64, profile_calls);
    // Two backoff waits, nothing else.
    assert_ms_between("the round", t1 - t0, 4500, 7502);
    assert_eq!(h.files(), before, "a failed renewal wrote");
    assert!(h.temp_files().is_empty());
    assert_eq!(core.state(t1), TokenState::Expired);
    let text = logs.text();
    assert!(text.contains("Refresh attempt 1/3 failed"), "{text}");
    assert!(text.contains("Refresh attempt 2/3 failed"), "{text}");
    assert!(
        text.contains("All refresh attempts failed, manual intervention required"),
        "{text}"
    );
    assert_no_leak("the log", &text, secret);
}

/// The token a bad command prints (and its failure must not show).
enum Prints {
    /// The new token left for the command.
    TheNewToken,
    /// The stored token, which died at 03:30.
    TheStoredToken,
}

/// [`check_bad_command`] for `script` (run with `sh -c` in the test folder) on the expired
/// harness; the command makes no profile call.
async fn bad_command(script: &str, prints: Prints, reason: &str) {
    let (mut h, calls) = expired_harness().await;
    let secret = match prints {
        Prints::TheNewToken => h.command_token(),
        Prints::TheStoredToken => stored_token_text(&h),
    };
    h.set_command_script(script);
    check_bad_command(&h, &secret, reason, 0, &calls).await;
}

#[tokio::test(start_paused = true)]
async fn a_command_that_exits_non_zero_fails_without_showing_what_it_printed() {
    // It prints the token on stdout and stderr, then fails.
    bad_command(
        "cat next_token.txt; echo \"got $(cat next_token.txt)\" >&2; exit 3",
        Prints::TheNewToken,
        "renew.command exited with exit status: 3",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_command_that_prints_garbage_fails_without_echoing_it() {
    bad_command(
        "echo 'Your new token is:'; cat next_token.txt; echo 'Have a nice day'",
        Prints::TheNewToken,
        "renew.command printed no usable token",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_command_that_prints_an_expired_token_fails() {
    // The old token file itself: its token died at 03:30.
    bad_command(
        "cat upstox_token.json",
        Prints::TheStoredToken,
        "renew.command printed a token that has already expired",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_command_that_prints_a_token_upstox_never_issued_fails() {
    let (mut h, calls) = expired_harness().await;
    // A well-formed, unexpired JWT signed by another simulator's key.
    let stranger = Simulator::new(SimConfig::default(), h.clock.clone() as _).issue_token();
    assert!(stranger.expires_at > h.now());
    let forged = stranger.access_token.expose().to_string();
    std::fs::write(h.dir.path().join("forged.txt"), &forged).unwrap();
    h.set_command_script("cat forged.txt");
    check_bad_command(&h, &forged, "rejected by Upstox", 3, &calls).await;
}

#[tokio::test(start_paused = true)]
async fn every_failed_refresh_attempt_is_logged_with_its_reason() {
    // Every attempt is logged. Each attempt fails differently (exit 11, 12, 13), so
    // the log must show all three reasons; today the third only reaches the notification,
    // and with max_retries 1 the log never says why the renewal failed.
    let (mut h, _calls) = expired_harness().await;
    h.set_command_script("exit $(( $(wc -l < command.log) + 10 ))");
    let logs = capture_logs();
    let mut core = h.core();
    let out = core.renew_by_command().await;
    assert!(
        matches!(&out, RenewOutcome::Failed(why) if why.contains("exit status: 13")),
        "{out:?}"
    );
    assert_eq!(h.command_runs(), 3);
    let text = logs.text();
    for code in [11, 12, 13] {
        assert!(
            text.contains(&format!("exit status: {code}")),
            "attempt exiting {code} is not in the log:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. The weekday deadline alarm.
// ---------------------------------------------------------------------------------------

fn deadline_notices(log: &std::sync::Arc<std::sync::Mutex<Vec<Event>>>) -> Vec<Notification> {
    notices(log)
        .into_iter()
        .filter(|n| n.topic == Topic::Deadline)
        .collect()
}

/// When each deadline alert came.
fn deadline_times(log: &std::sync::Arc<std::sync::Mutex<Vec<Event>>>) -> Vec<DateTime<Utc>> {
    deadline_notices(log).iter().map(|n| n.at).collect()
}

/// A fresh token stored at `stored` that nobody renews (strategy none), and the worker
/// started at `start`.
async fn unrenewed(
    stored: DateTime<Utc>,
    start: DateTime<Utc>,
) -> (
    Harness,
    tokenwatch::worker::WorkerHandle,
    std::sync::Arc<std::sync::Mutex<Vec<Event>>>,
) {
    let mut h = Harness::new(stored).await;
    h.account.renew.strategy = Strategy::None;
    h.store_fresh_token();
    h.run_until(start).await;
    let (handle, log) = h.spawn();
    (h, handle, log)
}

/// [`unrenewed`], run until `end` and stopped: the events.
async fn unrenewed_until(
    stored: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> std::sync::Arc<std::sync::Mutex<Vec<Event>>> {
    let (h, handle, log) = unrenewed(stored, start).await;
    h.run_until(end).await;
    stop(handle).await;
    log
}

#[tokio::test(start_paused = true)]
async fn no_valid_token_at_0830_on_a_weekday_raises_one_critical_deadline_alert() {
    // Thursday 09:00: a token that dies Friday 03:30. Strategy none: nobody renews it.
    let (h, handle, log) = unrenewed(ist_at(26, 9, 0), ist_at(27, 8, 0)).await;
    h.run_until(ist_at(27, 8, 29)).await;
    assert!(deadline_notices(&log).is_empty(), "too early");
    h.run_until(ist_at(27, 12, 0)).await;
    stop(handle).await;
    let d = deadline_notices(&log);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].at, ist_at(27, 8, 30));
    assert_eq!(d[0].level, Level::Critical);
    assert_eq!(d[0].title, "No valid token before 09:00 IST");
    assert!(d[0].message.contains("expired"), "{}", d[0].message);
    assert!(d[0].message.contains("press l"), "{}", d[0].message);
}

#[tokio::test(start_paused = true)]
async fn starting_inside_the_half_hour_before_the_deadline_alerts_at_once() {
    // Friday 08:45: the token died at 03:30 and tokenwatch only starts now.
    let log = unrenewed_until(ist_at(26, 9, 0), ist_at(27, 8, 45), ist_at(27, 9, 30)).await;
    assert_eq!(deadline_times(&log), [ist_at(27, 8, 45)]);
}

#[tokio::test(start_paused = true)]
async fn no_deadline_alert_on_the_weekend() {
    // Friday 09:00: a token that dies Saturday 03:30, nobody renews it. Saturday and Sunday
    // stay quiet; Monday 08:30 alerts.
    let (h, handle, log) = unrenewed(ist_at(27, 9, 0), ist_at(28, 8, 0)).await;
    h.run_until(ist_at(30, 8, 29)).await;
    assert!(
        deadline_notices(&log).is_empty(),
        "{:?}",
        deadline_notices(&log)
    );
    h.run_until(ist_at(30, 8, 31)).await;
    stop(handle).await;
    assert_eq!(deadline_times(&log), [ist_at(30, 8, 30)]);
}

#[tokio::test(start_paused = true)]
async fn no_deadline_alert_with_a_valid_token() {
    let log = unrenewed_until(ist_at(27, 8, 0), ist_at(27, 8, 0), ist_at(27, 9, 30)).await;
    assert!(deadline_notices(&log).is_empty());
    assert!(notices(&log).iter().all(|n| n.level != Level::Critical));
    assert_eq!(snapshots(&log).last().unwrap().state, TokenState::Healthy);
}

// ---------------------------------------------------------------------------------------
// 5. Force refresh (`r`).
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn force_refresh_with_a_healthy_token_validates_at_once_and_does_not_renew() {
    let h = Harness::new(ist_at(26, 10, 0)).await;
    h.store_fresh_token();
    h.prepare_command_token();
    let (handle, log) = h.spawn();
    h.run_until(ist_at(26, 10, 5)).await;
    assert_eq!(h.sim.calls(Endpoint::Profile), 1, "the check at start");
    handle
        .commands
        .send(Command::force_refresh())
        .await
        .unwrap();
    h.run_until(ist_at(26, 10, 6)).await;
    assert_eq!(h.sim.calls(Endpoint::Profile), 2);
    {
        let s = handle.status.borrow();
        assert_eq!(s.last_check_at, Some(ist_at(26, 10, 5)));
        assert_eq!(s.verdict(), Verdict::Valid(ist_at(26, 10, 5)));
        assert_eq!(s.state, TokenState::Healthy);
        assert!(matches!(s.renewal, Renewal::NotDue { .. }));
        assert!(!s.busy);
    }
    // The schedule moves on from the forced check: the next one is at 10:35.
    h.run_until(ist_at(26, 10, 34)).await;
    assert_eq!(h.sim.calls(Endpoint::Profile), 2);
    h.run_until(ist_at(26, 10, 36)).await;
    assert_eq!(h.sim.calls(Endpoint::Profile), 3);
    stop(handle).await;
    assert_eq!(h.command_runs(), 0);
    assert!(notices(&log).iter().all(|n| n.topic != Topic::Renewal));
}

#[tokio::test(start_paused = true)]
async fn force_refresh_renews_a_critical_token_at_once_inside_the_unattended_wait() {
    // Friday 04:00, a token that lives 2 h (dies 06:00). A token obtained now would live to
    // Saturday 03:30, so a renewal is useful; but unattended renewals wait for 08:00.
    let mut h = Harness::new(ist_at(27, 4, 0)).await;
    h.monitor.refresh_before = Duration::from_secs(3600);
    h.sim
        .set_config(|c| c.token_lifetime = Some(Duration::from_secs(2 * 3600)));
    let first = h.store_fresh_token();
    assert_eq!(first.expires_at, ist_at(27, 6, 0));
    h.sim.set_config(|c| c.token_lifetime = None);
    h.prepare_command_token();
    let new = h.command_token();
    let (handle, log) = h.spawn();
    h.run_until(ist_at(27, 5, 15)).await;
    {
        let s = handle.status.borrow();
        assert_eq!(s.state, TokenState::Critical);
        assert_eq!(
            s.renewal,
            Renewal::Deferred {
                until: ist_at(27, 8, 0),
                reason: Deferral::NotBefore
            }
        );
    }
    assert_eq!(
        h.command_runs(),
        0,
        "unattended renewals wait for not_before"
    );
    // Checks at 04:00, 04:30, 05:00.
    assert_eq!(h.sim.calls(Endpoint::Profile), 3);
    handle
        .commands
        .send(Command::force_refresh())
        .await
        .unwrap();
    h.run_until(ist_at(27, 5, 16)).await;
    assert_eq!(h.command_runs(), 1);
    // The forced check and the new token's verification.
    assert_eq!(h.sim.calls(Endpoint::Profile), 5);
    {
        let s = handle.status.borrow();
        assert_eq!(s.state, TokenState::Healthy);
        assert_eq!(s.token.as_ref().unwrap().expires_at, ist_at(28, 3, 30));
    }
    stop(handle).await;
    assert_eq!(stored_token_text(&h), new);
    let renewed: Vec<_> = notices(&log)
        .into_iter()
        .filter(|n| n.topic == Topic::Renewal)
        .map(|n| (n.at, n.level, n.title))
        .collect();
    assert_eq!(
        renewed,
        [(ist_at(27, 5, 15), Level::Info, "Token renewed".to_string())]
    );
}

#[tokio::test(start_paused = true)]
async fn force_refresh_before_the_0330_boundary_does_not_renew_and_says_why() {
    // Friday 02:05: a token issued now dies at 03:30, and so would any new one.
    let h = Harness::new(ist_at(27, 2, 5)).await;
    let first = h.store_fresh_token();
    assert_eq!(first.expires_at, ist_at(27, 3, 30));
    h.prepare_command_token();
    let before = h.files();
    let (handle, log) = h.spawn();
    h.run_until(ist_at(27, 2, 30)).await;
    handle
        .commands
        .send(Command::force_refresh())
        .await
        .unwrap();
    h.run_until(ist_at(27, 2, 31)).await;
    // The check at start and the forced one; no renewal.
    assert_eq!(h.sim.calls(Endpoint::Profile), 2);
    assert_eq!(h.command_runs(), 0);
    assert_eq!(
        handle.status.borrow().renewal,
        Renewal::Deferred {
            until: ist_at(27, 8, 0),
            reason: Deferral::Boundary {
                expires_at: ist_at(27, 3, 30)
            }
        }
    );
    stop(handle).await;
    let renewal: Vec<_> = notices(&log)
        .into_iter()
        .filter(|n| n.topic == Topic::Renewal)
        .collect();
    assert_eq!(renewal.len(), 1, "{renewal:?}");
    assert_eq!(renewal[0].at, ist_at(27, 2, 30));
    assert_eq!(renewal[0].level, Level::Info);
    assert!(
        renewal[0].message.contains("token ends 03:30 IST")
            && renewal[0].message.contains("renewal after 03:30"),
        "{}",
        renewal[0].message
    );
    assert_eq!(h.files(), before);
}

// ---------------------------------------------------------------------------------------
// 6. A token revoked on the server.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_revoked_token_is_invalid_at_the_next_check_and_is_renewed_at_once() {
    let h = Harness::new(ist_at(26, 10, 0)).await;
    let first = h.store_fresh_token();
    let (handle, log) = h.spawn();
    h.run_until(ist_at(26, 10, 10)).await;
    h.sim.revoke_all();
    // The replacement is minted after the revocation, so it is live.
    h.prepare_command_token();
    let new = h.command_token();
    h.run_until(ist_at(26, 10, 29)).await;
    assert_eq!(h.sim.calls(Endpoint::Profile), 1, "no check before 10:30");
    assert_eq!(handle.status.borrow().state, TokenState::Healthy);
    assert_eq!(h.command_runs(), 0);
    h.run_until(ist_at(26, 10, 31)).await;
    stop(handle).await;

    let snaps = snapshots(&log);
    let first_invalid = snaps
        .iter()
        .find(|s| s.state == TokenState::Invalid)
        .expect("the worker reported the token invalid");
    assert_eq!(first_invalid.at, ist_at(26, 10, 30));
    assert_eq!(
        first_invalid.verdict(),
        Verdict::Invalid(ist_at(26, 10, 30))
    );
    // The check, then the new token's verification.
    assert_eq!(h.sim.calls(Endpoint::Profile), 3);
    assert_eq!(h.command_runs(), 1);
    let seen: Vec<_> = notices(&log)
        .into_iter()
        .map(|n| (n.at, n.level, n.topic, n.title))
        .collect();
    assert_eq!(
        seen,
        [
            (
                ist_at(26, 10, 30),
                Level::Critical,
                Topic::TokenState,
                "Token rejected by Upstox".to_string()
            ),
            (
                ist_at(26, 10, 30),
                Level::Info,
                Topic::Renewal,
                "Token renewed".to_string()
            ),
            (
                ist_at(26, 10, 30),
                Level::Info,
                Topic::TokenState,
                "Token valid".to_string()
            ),
        ]
    );
    assert_eq!(stored_token_text(&h), new);
    let prev = read_token_file(&h.token_path().with_file_name("upstox_token.json.prev"))
        .unwrap()
        .unwrap();
    assert!(prev.access_token.same_as(&first.access_token));
    let last = snaps.last().unwrap();
    assert_eq!(last.state, TokenState::Healthy);
    assert_eq!(last.verdict(), Verdict::Valid(ist_at(26, 10, 30)));
}

// ---------------------------------------------------------------------------------------
// 7. Shutdown in the middle of a long backoff.
// ---------------------------------------------------------------------------------------

async fn stop_now(h: &Harness, handle: tokenwatch::worker::WorkerHandle) {
    let t = h.now();
    handle.commands.send(Command::Shutdown).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), handle.task)
        .await
        .expect("the worker did not stop within a second")
        .unwrap();
    assert_eq!(h.now(), t, "stopping took virtual time");
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_validation_backoff_stops_at_once() {
    let h = Harness::new(ist_at(26, 10, 0)).await;
    h.store_fresh_token();
    let before = h.files();
    h.sim.inject(Endpoint::Profile, LONG_RETRY_AFTER, 10);
    let (handle, _log) = h.spawn();
    h.run_until(ist_at(26, 10, 0) + chrono::Duration::seconds(10))
        .await;
    assert_eq!(h.sim.calls(Endpoint::Profile), 1);
    assert!(
        handle.status.borrow().busy,
        "the worker is waiting to retry"
    );
    stop_now(&h, handle).await;
    assert_eq!(
        h.sim.calls(Endpoint::Profile),
        1,
        "no attempt after shutdown"
    );
    assert_eq!(h.files(), before);
    assert!(h.temp_files().is_empty(), "{:?}", h.temp_files());
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_renewal_backoff_stops_at_once_and_writes_nothing() {
    let (h, _calls) = expired_harness().await;
    let before = h.files();
    // The check at start is rejected; the renewal's verification is rate limited.
    h.sim.inject(Endpoint::Profile, Fault::Unauthorized, 1);
    h.sim.inject(Endpoint::Profile, LONG_RETRY_AFTER, 10);
    let (handle, _log) = h.spawn();
    h.run_until(ist_at(27, 9, 0) + chrono::Duration::seconds(10))
        .await;
    assert_eq!(h.command_runs(), 1);
    assert_eq!(h.sim.calls(Endpoint::Profile), 2);
    assert!(
        handle.status.borrow().busy,
        "the worker is waiting to retry"
    );
    stop_now(&h, handle).await;
    assert_eq!(h.command_runs(), 1, "no attempt after shutdown");
    assert_eq!(h.sim.calls(Endpoint::Profile), 2);
    assert_eq!(h.files(), before);
    assert!(h.temp_files().is_empty(), "{:?}", h.temp_files());
}

// ---------------------------------------------------------------------------------------
// Only one renewal per token file at a time.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_renewal_waits_for_another_process_renewing_the_same_file() {
    // Friday 09:00: the token died at 03:30, renewal is due.
    let h = Harness::new(ist_at(26, 9, 0)).await;
    h.store_fresh_token();
    h.run_until(ist_at(27, 9, 0)).await;
    h.prepare_command_token();
    let mut core = h.core();
    // Someone else (another tokenwatch) holds the renewal lock.
    let held = tokenwatch::token::store::TokenStore::new(h.token_path(), [])
        .login_lock()
        .unwrap();
    let before = std::fs::read(h.token_path()).unwrap();
    match core.renew_by_command().await {
        RenewOutcome::NotUseful(why) => {
            assert!(why.contains("another tokenwatch is renewing"), "{why}")
        }
        other => panic!("expected NotUseful, got {other:?}"),
    }
    assert_eq!(
        h.command_runs(),
        0,
        "the command must not run while another renewal holds the lock"
    );
    assert_eq!(std::fs::read(h.token_path()).unwrap(), before);
    drop(held);
    assert_eq!(core.renew_by_command().await, RenewOutcome::Renewed);
    assert_eq!(h.command_runs(), 1);
}
