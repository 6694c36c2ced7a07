//! The renewal plan's rules, end to end: only a failed round puts the next one off, a
//! backoff never stops the clock-driven duties, one-shot checks answer in time, `refresh`
//! waits for another process's renewal, and a token for another user is never stored.

mod common;

use common::*;
use std::time::Duration;
use tokenwatch::brokers::upstox::sim::{Endpoint, Fault};
use tokenwatch::messages::{Command, Event, Level, Topic};
use tokenwatch::token::TokenState;
use tokenwatch::token::read_token_file;
use tokenwatch::token::store::TokenStore;
use tokenwatch::worker::{CHECK_LIMIT, CheckOutcome, RenewOutcome, WorkerHandle};

fn alerts(log: &std::sync::Arc<std::sync::Mutex<Vec<Event>>>) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Alert(a) => Some(a.event.as_str().to_string()),
            _ => None,
        })
        .collect()
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

/// Let virtual time run to `t`, then wait (in real time, with virtual time held) until
/// `renew.command` has started `n` times and no round runs: the command runs on a blocking
/// thread in real time, which the paused clock does not wait for. How many times it ran.
async fn runs_by(
    h: &Harness,
    handle: &WorkerHandle,
    t: chrono::DateTime<chrono::Utc>,
    n: usize,
) -> usize {
    h.run_until(t).await;
    for _ in 0..200 {
        if h.command_runs() >= n && !handle.status.borrow().busy {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
        tokio::task::yield_now().await;
    }
    h.command_runs()
}

/// Friday 09:00 IST: the token died at 03:30, a fresh one waits for `renew.command`.
async fn expired() -> Harness {
    let h = Harness::new(ist_at(26, 9, 0)).await;
    h.store_fresh_token();
    h.run_until(ist_at(27, 9, 0)).await;
    h.prepare_command_token();
    h
}

// ---------------------------------------------------------------------------------------
// 1. Only a failed round puts the next one off.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_token_revoked_after_a_renewal_is_renewed_again_at_once() {
    let h = expired().await;
    let (handle, log) = h.spawn();
    assert_eq!(
        runs_by(&h, &handle, ist_at(27, 9, 0) + secs(5), 1).await,
        1,
        "the expired token is renewed at start"
    );
    // Upstox revokes the new token; the next check sees it rejected.
    h.sim.revoke_all();
    h.prepare_command_token();
    handle.commands.send(Command::Check).await.unwrap();
    assert_eq!(
        runs_by(&h, &handle, ist_at(27, 9, 0) + secs(15), 2).await,
        2,
        "a succeeded round must not put the next one off 30 minutes"
    );
    assert_eq!(handle.status.borrow().state, TokenState::Healthy);
    stop(handle).await;
    assert!(alerts(&log).contains(&"invalid".to_string()));
}

#[tokio::test(start_paused = true)]
async fn a_round_skipped_for_another_process_runs_as_soon_as_the_lock_is_free() {
    let h = expired().await;
    let held = TokenStore::new(h.token_path(), []).login_lock().unwrap();
    let (handle, log) = h.spawn();
    h.run_until(ist_at(27, 9, 1)).await;
    assert_eq!(
        h.command_runs(),
        0,
        "no renewal while another process holds the lock"
    );
    // The other process (a suspended `tokenwatch login`) ends without a token.
    drop(held);
    assert_eq!(
        runs_by(&h, &handle, ist_at(27, 9, 1) + secs(5), 1).await,
        1,
        "a skipped round must not put the next one off 30 minutes"
    );
    assert_eq!(handle.status.borrow().state, TokenState::Healthy);
    stop(handle).await;
    assert!(!alerts(&log).contains(&"renewal_failed".to_string()));
}

#[tokio::test(start_paused = true)]
async fn a_failed_round_puts_the_next_one_off_30_minutes() {
    let h = expired().await;
    // The command prints nothing usable.
    std::fs::write(h.dir.path().join("next_token.txt"), "").unwrap();
    let (handle, log) = h.spawn();
    assert_eq!(
        runs_by(&h, &handle, ist_at(27, 9, 29), 3).await,
        3,
        "one round of three attempts"
    );
    h.prepare_command_token();
    assert_eq!(
        runs_by(&h, &handle, ist_at(27, 9, 31), 4).await,
        4,
        "the next round 30 minutes after the failure"
    );
    stop(handle).await;
    assert_eq!(
        alerts(&log)
            .iter()
            .filter(|a| *a == "renewal_failed")
            .count(),
        1
    );
}

// ---------------------------------------------------------------------------------------
// 2. A backoff never stops the clock-driven duties; one-shot checks answer in time.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_expiry_and_the_deadline_alarm_fire_on_time_while_a_check_waits_to_retry() {
    let mut h = Harness::new(ist_at(26, 9, 0)).await;
    h.account.renew.strategy = tokenwatch::config::Strategy::None;
    h.store_fresh_token();
    let (handle, log) = h.spawn();
    // At 03:29:30 a check meets Upstox's rate limit with Retry-After 50 s, three times.
    h.run_until(ist_at(27, 3, 29) + secs(30)).await;
    h.sim.inject(
        Endpoint::Profile,
        Fault::TooManyRequests {
            retry_after: Some(50),
        },
        3,
    );
    handle.commands.send(Command::Check).await.unwrap();
    h.run_until(ist_at(27, 3, 30) + secs(1)).await;
    assert!(handle.status.borrow().busy, "the check is waiting to retry");
    let expired: Vec<_> = notices(&log)
        .into_iter()
        .filter(|n| n.title == "Token expired!")
        .collect();
    assert_eq!(expired.len(), 1, "{:?}", notices(&log));
    assert_eq!(expired[0].at, ist_at(27, 3, 30), "at the expiry instant");
    assert!(alerts(&log).contains(&"expired".to_string()));

    // At 08:29:30 another check waits to retry; the 08:30 deadline alarm fires anyway, and
    // a forced refresh sent meanwhile is carried out once the check ends.
    h.run_until(ist_at(27, 8, 29) + secs(30)).await;
    h.sim.inject(
        Endpoint::Profile,
        Fault::TooManyRequests {
            retry_after: Some(50),
        },
        3,
    );
    handle.commands.send(Command::Check).await.unwrap();
    h.run_until(ist_at(27, 8, 30) + secs(1)).await;
    assert!(handle.status.borrow().busy);
    let deadline: Vec<_> = notices(&log)
        .into_iter()
        .filter(|n| n.topic == Topic::Deadline)
        .collect();
    assert_eq!(deadline.len(), 1, "{:?}", notices(&log));
    assert_eq!(deadline[0].at, ist_at(27, 8, 30));
    assert_eq!(deadline[0].level, Level::Critical);
    let before = h.sim.calls(Endpoint::Profile);
    handle
        .commands
        .send(Command::force_refresh())
        .await
        .unwrap();
    handle
        .commands
        .send(Command::force_refresh())
        .await
        .unwrap();
    h.run_until(ist_at(27, 8, 33)).await;
    assert_eq!(
        h.sim.calls(Endpoint::Profile),
        before + 2,
        "the requests join the running check (its two retries), no call of their own"
    );
    assert!(!handle.status.borrow().busy);
    // With nothing running, a forced refresh checks at once.
    handle
        .commands
        .send(Command::force_refresh())
        .await
        .unwrap();
    h.run_until(ist_at(27, 8, 33) + secs(1)).await;
    assert_eq!(h.sim.calls(Endpoint::Profile), before + 3);
    stop(handle).await;
}

#[tokio::test(start_paused = true)]
async fn a_one_shot_check_answers_within_its_limit_whatever_upstox_asks() {
    let h = Harness::new(ist_at(26, 10, 0)).await;
    h.store_fresh_token();
    let mut core = h.core();
    // A Retry-After far beyond what is honoured ends the round at once.
    h.sim.inject(
        Endpoint::Profile,
        Fault::TooManyRequests {
            retry_after: Some(999_999),
        },
        1,
    );
    let t0 = h.now();
    let v = core.check_within(CHECK_LIMIT).await;
    assert!(matches!(v, CheckOutcome::Unreachable(_)), "{v:?}");
    assert_eq!(h.sim.calls(Endpoint::Profile), 1);
    assert!(h.now() - t0 < secs(1), "took {}", h.now() - t0);

    // Retry-After 59 s on every attempt: the whole check still answers within 60 s.
    h.sim.inject(
        Endpoint::Profile,
        Fault::TooManyRequests {
            retry_after: Some(59),
        },
        10,
    );
    let t0 = h.now();
    let v = core.check_within(CHECK_LIMIT).await;
    let took = h.now() - t0;
    assert!(
        matches!(&v, CheckOutcome::Unreachable(e) if e.to_string().contains("no answer within")),
        "{v:?}"
    );
    assert!(took <= secs(60), "took {took}");
    assert_eq!(
        core.state(h.now()),
        TokenState::Healthy,
        "unreachable is not invalid"
    );
}

// ---------------------------------------------------------------------------------------
// 4. A renewal that returns another user's token is refused.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_renew_command_token_for_another_user_is_refused_and_alerted() {
    let h = expired().await;
    let before = std::fs::read(h.token_path()).unwrap();
    // The command prints a token of another Upstox user.
    h.sim.set_config(|c| c.user_id = "XY9999".into());
    h.prepare_command_token();
    let mut core = h.core();
    match core.renew_by_command().await {
        RenewOutcome::Failed(why) => {
            assert!(why.contains("XY9999") && why.contains("AB1234"), "{why}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(h.token_path()).unwrap(),
        before,
        "nothing stored"
    );

    let (handle, log) = h.spawn();
    h.run_until(ist_at(27, 9, 1)).await;
    stop(handle).await;
    assert_eq!(
        std::fs::read(h.token_path()).unwrap(),
        before,
        "nothing stored"
    );
    assert!(alerts(&log).contains(&"renewal_failed".to_string()));
    let failed: Vec<_> = notices(&log)
        .into_iter()
        .filter(|n| n.title == "Renewal failed")
        .collect();
    assert!(failed[0].message.contains("XY9999"), "{:?}", failed[0]);
    let stored = read_token_file(&h.token_path()).unwrap().unwrap();
    assert_eq!(stored.user_id.as_deref(), Some("AB1234"));
}

#[tokio::test(start_paused = true)]
async fn a_login_or_approved_token_for_another_user_is_refused_but_a_first_one_sets_the_user() {
    let h = Harness::new(ist_at(26, 10, 0)).await;
    // An empty account takes whichever user logs in first.
    let mut first = h.store_fresh_token();
    std::fs::remove_file(h.token_path()).unwrap();
    let mut core_empty = h.core();
    assert!(core_empty.accept_token(first.clone(), true).await.is_ok());
    // Then a token for another user is refused, whatever path it came by.
    first.user_id = Some("XY9999".into());
    let err = core_empty
        .accept_token(first.clone(), true)
        .await
        .unwrap_err();
    assert!(err.contains("XY9999"), "{err}");
    let stored = read_token_file(&h.token_path()).unwrap().unwrap();
    assert_eq!(stored.user_id.as_deref(), Some("AB1234"));
    // The user is remembered even when the token file is gone meanwhile.
    std::fs::remove_file(h.token_path()).unwrap();
    core_empty.reload_if_changed();
    assert!(core_empty.accept_token(first, true).await.is_err());
}

// ---------------------------------------------------------------------------------------
// 3. `refresh` waits for a renewal running in another process.
// ---------------------------------------------------------------------------------------

/// A sandbox whose `renew.command` fetches a token from the simulator (and leaves
/// `command.log` behind when it runs).
fn command_sandbox(api_base: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write_yaml(&format!(
        "upstox:\n  api_base: \"{api_base}\"\n\
         token:\n  path: upstox_token.json\n\
         monitor:\n  backoff_initial: 50ms\n  backoff_max: 200ms\n{small}\
         login:\n  timeout: 30s\n\
         renew:\n  strategy: command\n  not_before: \"00:00\"\n  \
         command: [\"sh\", \"-c\", \"touch command.log; curl -sf -X POST {api_base}/sim/token\"]\n",
        // Small thresholds: a token issued now is not due for renewal at any time of day.
        small = common::time::small_thresholds_yaml()
    ));
    sb
}

/// `tokenwatch refresh` while another process holds the renewal lock and stores its token
/// 1.5 s later: refresh waits, uses that token and says "Renewed".
fn refresh_beside_another_renewal(sim: &SimProcess, sb: &Sandbox) {
    // Another tokenwatch is renewing: it holds the lock and stores its token 1.5 s later.
    let held = TokenStore::new(sb.token_path(), []).login_lock().unwrap();
    let base = sim.base.clone();
    let path = sb.token_path();
    let other = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let out = std::process::Command::new("curl")
            .args(["-sf", "-X", "POST", &format!("{base}/sim/token")])
            .output()
            .unwrap();
        assert!(out.status.success());
        let token =
            tokenwatch::token::file::parse_token(&out.stdout, Some(chrono::Utc::now())).unwrap();
        let mut token = token;
        token.user_id = Some("AB1234".into());
        TokenStore::new(path, []).write(&token).unwrap();
        drop(held);
    });
    let started = std::time::Instant::now();
    let out = sb.run(&["refresh"]);
    other.join().unwrap();
    let took = started.elapsed();
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(
        took >= Duration::from_millis(1400),
        "refresh did not wait: {took:?}"
    );
    out.assert_stdout("Another tokenwatch is renewing");
    out.assert_stdout("Renewed");
    assert!(!out.stdout.contains("Not renewed"), "{}", out.all());
    assert!(!sb.root.join("command.log").exists());
    let stored = read_token_file(&sb.token_path()).unwrap().unwrap();
    assert_eq!(
        stored.obtained_via, None,
        "the other process's token, not a second renewal"
    );
}

#[test]
fn refresh_waits_for_another_process_renewing_and_uses_its_token() {
    // The other process's token must not be due for renewal itself.
    common::time::clear_of_the_0330_expiry(Duration::from_secs(60));
    let sim = SimProcess::start();
    let sb = command_sandbox(&sim.base);
    refresh_beside_another_renewal(&sim, &sb);
}

/// The other process's token is itself due (here: thresholds of a day, as the defaults make
/// any token issued shortly before 03:30 IST), and renewing it again now would not move its
/// 03:30 IST expiry: refresh reports the other process's renewal, not "Not renewed: token
/// ends 03:30 IST", and does not renew again.
#[test]
fn refresh_reports_another_process_renewal_even_when_its_token_is_due() {
    common::time::clear_of_the_0330_expiry(Duration::from_secs(60));
    // Tokens by Upstox's rule: each dies at the next 03:30 IST, so one issued again now
    // would not live longer.
    let sim = SimProcess::start_with(&[]);
    let sb = command_sandbox(&sim.base);
    let config = std::fs::read_to_string(sb.config_path()).unwrap();
    let mut due = String::new();
    for line in config.lines() {
        match line.trim_start().split(':').next() {
            Some("warning_before" | "critical_before" | "refresh_before") => {}
            _ => {
                due.push_str(line);
                due.push('\n');
            }
        }
        if line == "monitor:" {
            due.push_str("  warning_before: 24h\n  critical_before: 23h\n  refresh_before: 24h\n");
        }
    }
    sb.write_yaml(&due);
    refresh_beside_another_renewal(&sim, &sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_stored_by_another_process_is_picked_up_within_moments() {
    // Real time here: the worker would otherwise look again only after its minute-nap.
    let h = Harness::new(chrono::Utc::now()).await;
    h.store_fresh_token();
    let (handle, _log) = h.spawn();
    let _files = tokenwatch::filewatch::watch(vec![(h.token_path(), handle.wake.clone())]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while handle.status.borrow().last_check_at.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first check did not run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = handle.status.borrow().token.clone().unwrap().masked;
    // Another process (a `tokenwatch login` beside the daemon) stores a new token.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stored = h.store_fresh_token();
    let started = std::time::Instant::now();
    loop {
        let now = handle.status.borrow().token.clone().unwrap().masked;
        if now != first {
            assert_eq!(now, stored.access_token.masked());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the new token was not picked up within 3 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop(handle).await;
}
