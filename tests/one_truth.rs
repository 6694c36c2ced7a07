//! One truth for every reader of the token, and forced checks that cannot flood Upstox:
//!
//! - a burst of `POST /api/token/force-refresh` (and of `r`) makes one profile call: requests
//!   that come while a check is queued or running join it (202, `"merged": true`), and forced
//!   checks start at most once per 5 s per account (429 with `Retry-After` past that);
//! - a rejection the daemon saw is the truth for plain `status`, `token`, the API and a
//!   dashboard beside it (the shared `<token file>.state`), for that token only;
//! - a token fixed from elsewhere, or by this process's renewal, after it was expired,
//!   invalid, missing or critical sends one `recovered` alert.
//!
//! The cases are rendered into the `one-truth` block of `docs/reliability.md`.

mod common;

use common::doc::{hardening_table, sync_doc_block};
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokenwatch::alerts::AlertEvent;
use tokenwatch::brokers::upstox::sim::{Endpoint, SimConfig};
use tokenwatch::messages::FORCE_SPACING;
use tokenwatch::schedule::Verdict;
use tokenwatch::token::verdict::{self, CheckResult};

/// Rows of the doc block, by test, in the order the doc shows them.
static ROWS: Mutex<Vec<(usize, [String; 5])>> = Mutex::new(Vec::new());
const CASES: usize = 5;

fn row(order: usize, case: &str, before: &str, now: &str, figure: &str, test: &str) {
    let mut rows = ROWS.lock().unwrap_or_else(|e| e.into_inner());
    rows.push((
        order,
        [
            case.into(),
            before.into(),
            now.into(),
            figure.into(),
            format!("tests/one_truth.rs::{test}"),
        ],
    ));
    // The last test to finish writes (or compares) the block.
    if rows.len() == CASES {
        rows.sort();
        let md = hardening_table(rows.iter().map(|(_, r)| r.clone()));
        if let Err(e) = sync_doc_block("one-truth", &md, &[]) {
            panic!("{e}");
        }
    }
}

const STEP: Duration = Duration::from_secs(30);

/// A daemon with the API on a free port, against an in-process simulator.
struct Daemon {
    sandbox: Sandbox,
    host: SimHost,
    port: u16,
    running: Option<Running>,
    client: reqwest::Client,
}

impl Daemon {
    async fn start(renew: Value) -> Daemon {
        // A fresh token must stay usable for the test: not in the last minutes before 03:30.
        common::time::clear_of_the_0330_expiry(Duration::from_secs(60));
        let host = SimHost::start(SimConfig::default(), "127.0.0.1").await;
        let sandbox = Sandbox::new();
        let token = tokens::issued(host.sim.issue_token());
        tokenwatch::token::store::TokenStore::new(sandbox.token_path(), vec![])
            .write(&token)
            .unwrap();
        let client = client(Some(STEP));
        for _ in 0..10 {
            let port = free_port();
            let mut config = host.binary_config(renew.clone(), json!({}));
            config["server"] = json!({"listen": format!("127.0.0.1:{port}")});
            sandbox.write_config(&config);
            let mut running = sandbox.spawn(&["daemon"]);
            let deadline = Instant::now() + STEP;
            loop {
                if let Ok(r) = client
                    .get(format!("http://127.0.0.1:{port}/healthz"))
                    .send()
                    .await
                    && r.status().as_u16() == 200
                {
                    let d = Daemon {
                        sandbox,
                        host,
                        port,
                        running: Some(running),
                        client,
                    };
                    d.wait_status("the first check", |s| s["last_check"].is_object())
                        .await;
                    return d;
                }
                if !running.running() {
                    assert!(running.stderr().contains("in use"), "{}", running.stderr());
                    break;
                }
                assert!(Instant::now() < deadline, "no API: {}", running.stderr());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("no free port for the API");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn status(&self) -> Value {
        fetch(self.client.get(self.url("/api/token/status")))
            .await
            .json()
    }

    async fn wait_status(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let s = self.status().await;
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {STEP:?}: {s}\n{}",
                self.running.as_ref().unwrap().stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn force(&self) -> Resp {
        fetch(self.client.post(self.url("/api/token/force-refresh"))).await
    }

    fn stop(&mut self) -> Out {
        let running = self.running.take().unwrap();
        running.signal(libc::SIGTERM);
        running.finish()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_forced_refreshes_makes_one_profile_call() {
    let mut d = Daemon::start(json!({"strategy": "none"})).await;
    let first = d.status().await;
    let calls = d.host.sim.calls(Endpoint::Profile);
    // The first check was a while ago: a forced one may start.
    tokio::time::sleep(FORCE_SPACING + Duration::from_millis(200)).await;

    const BURST: usize = 300;
    // At most 200 at once: the server holds 256 connections and, at that cap, closes the
    // longest-idle one (on a loaded machine, one whose request has not arrived yet) to make
    // room: the flood guard, tested in local_flood.rs, not what this test is about.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(200));
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..BURST {
        let (client, url) = (d.client.clone(), d.url("/api/token/force-refresh"));
        let in_flight = in_flight.clone();
        burst.spawn(async move {
            let _slot = in_flight.acquire_owned().await;
            fetch(client.post(url)).await
        });
    }
    // /healthz answers on time meanwhile.
    let healthz = {
        let (client, url) = (d.client.clone(), d.url("/healthz"));
        tokio::spawn(async move {
            let asked = Instant::now();
            let r = fetch(client.get(url)).await;
            (r.status, asked.elapsed())
        })
    };
    let answers: Vec<Resp> = burst.join_all().await;
    let (health, health_took) = healthz.await.unwrap();
    assert_eq!(health, 200);
    assert!(
        health_took < Duration::from_secs(1),
        "/healthz took {health_took:?}"
    );
    // The test binary is a debug build (about 29 MB at rest here; the release build's
    // figures are in docs/development.md, Measurements): the burst must not add to it.
    let rss = peak_rss_kib(d.running.as_ref().unwrap().pid());
    assert!(rss < 40 * 1024, "the daemon's peak RSS was {rss} KiB");
    let (mut fresh, mut merged, mut refused) = (0, 0, 0);
    for r in &answers {
        match r.status {
            202 if r.json()["merged"] == false => fresh += 1,
            202 if r.json()["merged"] == true => merged += 1,
            429 => {
                let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=FORCE_SPACING.as_secs()).contains(&wait), "{r:?}");
                assert!(r.json()["error"].as_str().unwrap().contains("try again"));
                refused += 1;
            }
            _ => panic!("unexpected answer: {r:?}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one request starts a check");
    assert_eq!(fresh + merged + refused, BURST);
    d.wait_status("the forced check", |s| {
        s["last_check"]["at"] != first["last_check"]["at"]
    })
    .await;
    // Let any check a request might still have queued run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let made = d.host.sim.calls(Endpoint::Profile) - calls;
    assert_eq!(made, 1, "{BURST} requests made {made} profile calls");

    // Past the spacing, a forced check starts again.
    tokio::time::sleep(FORCE_SPACING).await;
    let r = d.force().await;
    assert_eq!((r.status, r.json()["merged"].clone()), (202, json!(false)));
    let deadline = Instant::now() + STEP;
    while d.host.sim.calls(Endpoint::Profile) < calls + 2 {
        assert!(
            Instant::now() < deadline,
            "the next forced check did not run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = d.stop();
    assert_eq!(out.code, Some(0), "{}", out.all());
    row(
        0,
        &format!("{BURST} `POST /api/token/force-refresh` at once"),
        "295 profile calls in 1.4 s (about 210 a second; Upstox allows 50)",
        "one starts a check (202); the rest join it (202, `merged: true`) or wait (429, `Retry-After` ≤ 5 s); at most one forced check per account per 5 s",
        &format!(
            "1 profile call for {BURST} requests; `/healthz` under 1 s; daemon peak RSS under 40 MB (debug build)"
        ),
        "a_burst_of_forced_refreshes_makes_one_profile_call",
    );
}

/// The peak resident memory of a process (VmHWM), KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The dashboard's `r` goes the same way: a burst makes one check, and a press within 5 s of
/// the last forced check says when the next can start.
#[test]
fn pressing_r_again_and_again_makes_one_check() {
    let (calls, notices) = paused_runtime().block_on(async {
        let h = Harness::new(ist_at(26, 10, 0)).await;
        h.store_fresh_token();
        let (handle, log) = h.spawn();
        h.run_until(ist_at(26, 10, 1)).await;
        let calls = h.sim.calls(Endpoint::Profile);
        for _ in 0..20 {
            handle
                .commands
                .send(Command::force_refresh())
                .await
                .unwrap();
        }
        h.run_until(ist_at(26, 10, 1) + chrono::Duration::seconds(2))
            .await;
        handle
            .commands
            .send(Command::force_refresh())
            .await
            .unwrap();
        h.run_until(ist_at(26, 10, 1) + chrono::Duration::seconds(3))
            .await;
        let made = h.sim.calls(Endpoint::Profile) - calls;
        stop(handle).await;
        (made, common::notices(&log))
    });
    assert_eq!(calls, 1, "21 presses made {calls} checks");
    let soon: Vec<_> = notices
        .iter()
        .filter(|n| n.title == "Checked moments ago")
        .collect();
    assert_eq!(soon.len(), 1, "{notices:#?}");
    assert!(
        soon[0].message.contains("can start again in 3s"),
        "{}",
        soon[0].message
    );
    row(
        1,
        "`r` pressed 21 times in 2 s",
        "one profile call per press once the previous check ended",
        "presses while a check is queued or running join it; one within 5 s of the last forced check shows \"Checked moments ago\" with the wait",
        &format!("{calls} profile call for 21 presses"),
        "pressing_r_again_and_again_makes_one_check",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_the_daemon_saw_is_the_truth_for_every_reader() {
    let mut d = Daemon::start(json!({"strategy": "none"})).await;
    let token = d.sandbox.stored().unwrap();
    // (Whatever the time of day: a token the simulator issues at 03:10 IST is critical.)
    let plain = d.sandbox.run_async(&["status", "--json"]).await;
    assert_eq!(plain.json()["valid"], true, "{}", plain.all());

    // Upstox revokes the token; the daemon's next (forced) check sees it.
    d.host.sim.revoke_all();
    tokio::time::sleep(FORCE_SPACING).await;
    assert_eq!(d.force().await.status, 202);
    let api = d
        .wait_status("the rejection", |s| s["state"] == "invalid")
        .await;
    assert_eq!(api["last_check"]["result"], "invalid", "{api}");
    assert_eq!(api["last_check"]["code"], "UDAPI100050", "{api}");

    // Plain status (no API call of its own) tells the same.
    let calls = d.host.sim.calls(Endpoint::Profile);
    let plain = d.sandbox.run_async(&["status"]).await;
    assert_eq!(plain.code, Some(2), "{}", plain.all());
    plain.assert_stdout("INVALID");
    plain.assert_stdout("UDAPI100050");
    let j = d.sandbox.run_async(&["status", "--json"]).await;
    assert_eq!(j.code, Some(2));
    let j = j.json();
    assert_eq!(j["state"], "invalid");
    assert_eq!(j["valid"], false);
    assert_eq!(j["last_check"], api["last_check"], "{j}");
    // `token` does not hand it out.
    let t = d.sandbox.run_async(&["token"]).await;
    assert_ne!(t.code, Some(0));
    assert!(!t.stdout.contains(&token), "{}", t.all());
    t.assert_stderr("rejected");
    assert_eq!(
        d.host.sim.calls(Endpoint::Profile),
        calls,
        "readers ask no one"
    );

    // The shared file: 0600, names the token by a hash only.
    let state = verdict::state_path(&d.sandbox.token_path());
    assert_eq!(mode(&state) & 0o777, 0o600);
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(!text.contains(&token), "{text}");
    assert!(text.contains("\"result\":\"invalid\""), "{text}");

    // A new token (a login elsewhere) is not judged by the old verdict.
    let fresh = tokens::issued(d.host.sim.issue_token());
    tokenwatch::token::store::TokenStore::new(d.sandbox.token_path(), vec![])
        .write(&fresh)
        .unwrap();
    let plain = d.sandbox.run_async(&["status", "--json"]).await;
    assert_eq!(plain.json()["valid"], true, "{}", plain.all());
    assert_ne!(
        plain.json()["last_check"]["result"],
        "invalid",
        "{}",
        plain.all()
    );
    let api = d
        .wait_status("the new token's check", |s| {
            s["valid"] == true && s["last_check"]["result"] == "valid"
        })
        .await;
    assert_eq!(api["last_check"]["code"], Value::Null);
    let out = d.stop();
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(
        !out.all().contains(&token),
        "the token leaked: {}",
        out.all()
    );
    // Times for people are IST with their offset, in the log too.
    for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let time = line.split(' ').next().unwrap_or_default();
        assert!(
            time.ends_with("+05:30") && chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "a log line without its IST time: {line}"
        );
    }
    row(
        2,
        "Upstox rejects the token; the engine's start script runs plain `status`",
        "the daemon said invalid; plain `status` said HEALTHY (exit 0), so the engine would start on a revoked token",
        "the worker keeps its last answer in `<token file>.state` (0600, the token named by a SHA-256 prefix); plain `status`, `token`, the API and the dashboard read it for that token only; a new token is judged afresh",
        "plain `status` exits 2 (INVALID, `UDAPI100050`) with 0 API calls of its own; `token` refuses",
        "a_rejection_the_daemon_saw_is_the_truth_for_every_reader",
    );
}

/// A dashboard beside the daemon shares the daemon's verdict through the file, and its
/// schedule counts the daemon's check as a check.
#[test]
fn a_second_process_takes_the_verdict_the_first_one_stored() {
    paused_runtime().block_on(async {
        let h = Harness::new(ist_at(26, 10, 0)).await;
        h.store_fresh_token();
        let mut daemon = h.core();
        let mut dashboard = h.core();
        assert_eq!(dashboard.verdict(), Verdict::Unknown);
        h.sim.revoke_all();
        daemon.check().await;
        assert!(matches!(daemon.verdict(), Verdict::Invalid(_)));
        assert!(
            !dashboard.reload_if_changed(),
            "the token itself is the same"
        );
        assert_eq!(dashboard.verdict(), daemon.verdict());
        let answer = dashboard.answer().unwrap();
        assert_eq!(answer.result, CheckResult::Invalid);
        assert_eq!(answer.code.as_deref(), Some("UDAPI100050"));
        // A process that starts now sees it at once.
        assert_eq!(h.core().verdict(), daemon.verdict());
    });
}

#[test]
fn a_token_fixed_from_elsewhere_sends_recovered_once() {
    let alerts = paused_runtime().block_on(async {
        let mut h = Harness::new(ist_at(26, 10, 0)).await;
        h.set_command_script("echo 'no token today' >&2; exit 1");
        // The token died at 03:30; renewal waits for 08:00.
        h.store_fresh_token();
        let (handle, log) = h.spawn();
        h.run_until(ist_at(27, 4, 0)).await;
        // `tokenwatch login` in another terminal stores a good token.
        h.store_fresh_token();
        h.run_until(ist_at(27, 5, 0)).await;
        stop(handle).await;
        alerts(&log)
    });
    let events: Vec<AlertEvent> = alerts.iter().map(|a| a.event).collect();
    assert_eq!(
        events,
        vec![
            AlertEvent::Warning,
            AlertEvent::Critical,
            AlertEvent::Expired,
            AlertEvent::Recovered
        ]
    );
    let recovered = &alerts[3];
    assert!(
        recovered.at >= ist_at(27, 4, 0) && recovered.at <= ist_at(27, 4, 1),
        "noticed within a minute: {}",
        recovered.at
    );
    assert!(
        recovered
            .message
            .contains("a new token file from elsewhere"),
        "{}",
        recovered.message
    );
    row(
        3,
        "after an `expired` alert, `tokenwatch login` in another terminal stores a good token",
        "the daemon picked the file up 51 s later and sent nothing",
        "any change to healthy from expired, invalid, missing or critical sends one `recovered` alert saying who fixed it (this process's renewal, or a new token file)",
        "1 `recovered` alert, within 60 s of the new file",
        "a_token_fixed_from_elsewhere_sends_recovered_once",
    );
}

#[test]
fn a_renewal_that_ends_an_expired_token_sends_recovered_instead_of_renewed() {
    let alerts = paused_runtime().block_on(async {
        let h = Harness::new(ist_at(26, 9, 0)).await;
        h.store_fresh_token();
        let (handle, log) = h.spawn();
        h.run_until(ist_at(27, 7, 59)).await;
        h.prepare_command_token();
        h.run_until(ist_at(27, 9, 1)).await;
        stop(handle).await;
        alerts(&log)
    });
    let events: Vec<AlertEvent> = alerts.iter().map(|a| a.event).collect();
    assert_eq!(
        events,
        vec![
            AlertEvent::Warning,
            AlertEvent::Critical,
            AlertEvent::Expired,
            AlertEvent::Recovered
        ]
    );
    assert_eq!(alerts[3].at, ist_at(27, 8, 0));
    assert!(
        alerts[3].message.contains("renewed by this tokenwatch"),
        "{}",
        alerts[3].message
    );
    row(
        4,
        "`renew.command` renews an expired token at 08:00",
        "`renewed` only",
        "one `recovered` alert (\"renewed by this tokenwatch\") instead of `renewed`, so the day's messages end with the fix",
        "1 alert for the fix",
        "a_renewal_that_ends_an_expired_token_sends_recovered_instead_of_renewed",
    );
}
