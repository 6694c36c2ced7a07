//! The account's history with the real binary: a daemon records a renewal and an expiry, and
//! `tokenwatch history` (table and `--json`) shows both with their times; a torn line is
//! skipped with a warning; nothing secret is written.

mod common;

use common::{Sandbox, SimProcess, mode};
use serde_json::Value;
use std::time::Duration;

/// A daemon against a simulator whose tokens live 8 seconds, renewing with a command that
/// works once: it renews, then the renewal before the next expiry fails and the token
/// expires. Thresholds of seconds, so that every state shows within the run.
fn sandbox(sim: &SimProcess) -> Sandbox {
    let sb = Sandbox::new();
    let marker = sb.root.join("renewed-once");
    let script = format!(
        "if [ -e '{m}' ]; then echo 'the test allows one renewal' >&2; exit 1; fi; touch '{m}'; \
         curl -sf -X POST {base}/sim/token",
        m = marker.display(),
        base = sim.base
    );
    sb.write_yaml(&format!(
        "upstox:\n  api_base: \"{base}\"\n\
         token:\n  path: upstox_token.json\n  backups: []\n\
         monitor:\n  warning_before: 5s\n  critical_before: 3s\n  refresh_before: 4s\n  \
         max_retries: 1\n  backoff_initial: 50ms\n  backoff_max: 200ms\n\
         renew:\n  strategy: command\n  not_before: \"00:00\"\n  command: [\"sh\", \"-c\", {script:?}]\n",
        base = sim.base,
    ));
    sb
}

fn history_json(sb: &Sandbox) -> Value {
    let out = sb.run(&["history", "--json", "--days", "2"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.json()
}

/// Every record of the last two days of `key` (`renewals`, `states`, `alerts`).
fn all(json: &Value, key: &str) -> Vec<Value> {
    json["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d[key].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn a_daemon_run_with_a_renewal_and_an_expiry_shows_both_in_history() {
    let sim = SimProcess::start_with(&["--token-lifetime", "8s"]);
    let sb = sandbox(&sim);
    let mut daemon = sb.spawn(&["daemon"]);
    daemon.stderr_with("Token refresh successful");
    // Renewed, then the second renewal fails and the token runs out.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while !all(&history_json(&sb), "states")
        .iter()
        .any(|s| s["state"] == "expired")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no expiry recorded:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    daemon.signal(libc::SIGTERM);
    let out = daemon.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());

    let json = history_json(&sb);
    assert_eq!(json["account"], "default");
    assert_eq!(json["broker"], "upstox");
    let renewals = all(&json, "renewals");
    let ok: Vec<&Value> = renewals.iter().filter(|r| r["ok"] == true).collect();
    assert_eq!(ok.len(), 1, "{renewals:#?}");
    assert_eq!(ok[0]["how"], "command");
    assert_eq!(ok[0]["person"], false);
    let when = ok[0]["at"].as_str().unwrap();
    assert!(when.ends_with("+05:30"), "{when}");
    let failed: Vec<&Value> = renewals.iter().filter(|r| r["ok"] == false).collect();
    assert!(!failed.is_empty(), "{renewals:#?}");
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("the test allows one renewal")),
        "{failed:#?}"
    );
    let states: Vec<String> = all(&json, "states")
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect();
    // Newest day first, each day's states in order: the run's states are in order within it.
    for seen in ["missing", "healthy", "expired"] {
        assert!(states.contains(&seen.to_string()), "{states:?}");
    }
    let expired_at = all(&json, "states")
        .into_iter()
        .find(|s| s["state"] == "expired")
        .unwrap()["at"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(expired_at.as_str() > when, "{expired_at} after {when}");
    // The check of the renewed token was counted when the daemon stopped.
    let calls: u64 = json["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["calls"].as_u64().unwrap())
        .sum();
    assert!(calls >= 1, "{json:#}");
    let alerts: Vec<String> = all(&json, "alerts")
        .iter()
        .map(|a| a["alert"].as_str().unwrap().to_string())
        .collect();
    assert!(alerts.contains(&"expired".to_string()), "{alerts:?}");
    // Today's timeline letter string is 48 half hours.
    assert_eq!(
        json["days"][0]["cells"].as_str().unwrap().chars().count(),
        48
    );

    // The files: 0600 in a 0700 folder, and no token in them.
    let folder = std::path::PathBuf::from(json["folder"].as_str().unwrap());
    assert_eq!(folder, sb.root.join("config/upstox_token.json.history"));
    assert_eq!(mode(&folder), 0o700);
    let token = sb.stored().expect("the renewed token was stored");
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token), "a token in {}", path.display());
    }

    // The dashboard's h shows the same day: the renewal marked at its time, the failed ones
    // counted (the dashboard's own renewal of the dead token fails too).
    let script = format!(
        "cd {}; exec {} tui",
        common::sh_quote(&sb.root.to_string_lossy()),
        common::sh_quote(common::bin())
    );
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let mut tmux_env = vec![("PATH".to_string(), path)];
    tmux_env.extend(sb.env.iter().cloned());
    let socket = format!("tokenwatch-history-daemon-{}", std::process::id());
    let mut tmux = common::Tmux::start(socket, &tmux_env, &sb.env, (120, 36), &script);
    tmux.step = Duration::from_secs(60);
    tmux.wait_until("the dashboard", |s| s.contains("tokenwatch · default"));
    tmux.keys(&["h"]);
    let renewed_hm = &when[11..16];
    let screen = tmux.wait_until("the history popup", |s| {
        s.contains("History · default") && s.contains(" failed")
    });
    // The renewal's day row (the failed ones may fall on the next day, just after midnight).
    let label = chrono::DateTime::parse_from_rfc3339(when)
        .unwrap()
        .format("%a %d %b")
        .to_string();
    let row = screen
        .lines()
        .find(|l| l.contains(&label) && l.contains('↻'))
        .unwrap_or_default();
    assert!(
        row.contains(renewed_hm) && row.contains("command"),
        "{screen}"
    );

    // The table says the same in words.
    let out = sb.run(&["history", "--days", "2"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("History of account \"default\" (Upstox), last 2 days; times IST");
    out.assert_stdout(&format!("{renewed_hm} command"));
    out.assert_stdout(" failed)");
}

#[test]
fn a_torn_line_is_skipped_with_a_warning_and_the_rest_is_shown() {
    let sb = Sandbox::new();
    sb.write_yaml("token:\n  path: upstox_token.json\n  backups: []\n");
    let out = sb.run(&["history", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let json = out.json();
    assert_eq!(json["days"].as_array().unwrap().len(), 14);
    // No history yet: said, with where it will be.
    let out = sb.run(&["history"]);
    out.assert_stdout("No history yet for account \"default\": the dashboard and the daemon");
    out.assert_not_on_stdout("Renewed:");

    // Today's file with one good record and one torn by a crash.
    let today = chrono::Utc::now()
        .with_timezone(&common::ist())
        .format("%Y-%m-%d")
        .to_string();
    let folder = sb.root.join("config/upstox_token.json.history");
    std::fs::create_dir_all(&folder).unwrap();
    let good = format!(
        "{{\"at\":\"{today}T00:00:01+05:30\",\"event\":\"renewal\",\"ok\":true,\"how\":\"browser\",\"person\":true,\"took_ms\":41000}}\n"
    );
    std::fs::write(
        folder.join(format!("{today}.jsonl")),
        format!("{good}{{\"at\":\"{today}T00:00:02+05:30\",\"event\":\"sta"),
    )
    .unwrap();
    // Two days: the file is today's even if midnight passes meanwhile.
    let out = sb.run(&["history", "--days", "2"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stderr(&format!(
        "tokenwatch: warning: skipped what could not be read in the history ({today}.jsonl line 2)"
    ));
    out.assert_stdout("00:00 browser*");
}

#[test]
fn history_keep_must_be_at_least_a_day() {
    let sb = Sandbox::new();
    sb.write_yaml("history:\n  keep: 2h\n");
    let out = sb.run(&["config", "check"]);
    assert_eq!(out.code, Some(78), "{}", out.all());
    out.assert_stderr("history.keep");
    out.assert_stderr("is not between a day and ten years");
}

/// Three days written as the worker writes them, read back and shown: the table in
/// docs/commands.md is this one (regenerate with `UPDATE_RELIABILITY=1`).
#[test]
fn three_fixed_days_read_back_as_the_documented_table() {
    use tokenwatch::history::{self, Event, Recorder, Renewal};
    use tokenwatch::token::TokenState;
    let at = |d: u32, h: u32, m: u32| common::at_ist(2026, 12, d, h, m, 0);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("upstox_token.json");
    let mut rec = Recorder::for_token(&token, history::DEFAULT_KEEP);
    let state = |s: TokenState, exp: Option<chrono::DateTime<chrono::Utc>>| Event::State {
        state: s,
        from: None,
        expires_at: exp,
    };
    let renewal = |how: &str, person: bool, secs: u64, r: Result<_, &str>| {
        Event::Renewal(Renewal::ended(how, person, Duration::from_secs(secs), r))
    };
    let alert = |a: &str, level: &str| Event::Alert {
        alert: a.into(),
        level: level.into(),
    };
    let calls = |h: chrono::DateTime<chrono::Utc>, calls: u32, rate_limited: u32| Event::Calls {
        hour: h,
        calls,
        rate_limited,
    };
    // Wednesday's token, then Thursday: expired at 03:30, renewed by TOTP at 08:01.
    rec.record(at(2, 8, 0), state(TokenState::Healthy, Some(at(3, 3, 30))));
    rec.record(at(3, 3, 30), state(TokenState::Expired, None));
    rec.record(at(3, 3, 30), alert("expired", "critical"));
    rec.record(at(3, 8, 1), renewal("totp", false, 2, Ok(at(4, 3, 30))));
    rec.record(at(3, 8, 1), state(TokenState::Healthy, Some(at(4, 3, 30))));
    rec.record(at(3, 8, 0), calls(at(3, 8, 0), 49, 0));
    // Friday: the 08:00 login ran out; a login at 10:00 brought the token back.
    rec.record(at(4, 3, 30), state(TokenState::Expired, None));
    rec.record(at(4, 3, 30), alert("expired", "critical"));
    rec.record(
        at(4, 8, 3),
        renewal("browser", true, 180, Err("login timed out")),
    );
    rec.record(at(4, 8, 3), alert("renewal_failed", "critical"));
    rec.record(at(4, 8, 30), alert("deadline_missed", "critical"));
    rec.record(at(4, 10, 0), renewal("browser", true, 41, Ok(at(5, 3, 30))));
    rec.record(at(4, 10, 0), state(TokenState::Healthy, Some(at(5, 3, 30))));
    rec.record(at(4, 10, 0), alert("recovered", "info"));
    rec.record(at(4, 10, 0), calls(at(4, 10, 0), 52, 1));
    // Saturday: a login at 08:02.
    rec.record(at(5, 3, 30), state(TokenState::Expired, None));
    rec.record(at(5, 8, 2), renewal("browser", true, 35, Ok(at(6, 3, 30))));
    rec.record(at(5, 8, 2), state(TokenState::Healthy, Some(at(6, 3, 30))));
    rec.record(at(5, 8, 0), calls(at(5, 8, 0), 14, 0));

    let (first, last) = (
        history::ist_day(at(3, 12, 0)),
        history::ist_day(at(5, 12, 0)),
    );
    let loaded = history::load(rec.dir(), first, last);
    assert!(loaded.skipped.is_empty());
    let calendar = tokenwatch::calendar::Calendar::nse();
    let days = history::days::days(&loaded, first, last, &calendar, at(5, 12, 0));
    let down: Vec<u32> = days.iter().map(|d| d.down_minutes).collect();
    assert_eq!(down, [0, 45, 0]);
    let fri: String = days[1].cells.iter().map(|c| c.letter()).collect();
    assert_eq!(
        fri,
        format!("{}{}{}", "h".repeat(7), "x".repeat(13), "h".repeat(28))
    );
    assert_eq!(days[1].renewed_in, [20]);
    assert!(!days[2].trading_day);

    let table = history::table::table("default", "Upstox", &days);
    assert!(
        table.contains("Fri 04 Dec  10:00 browser* (1 failed)"),
        "{table}"
    );
    let block = format!("```text\n{}```", table);
    let doc = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md"));
    if let Err(e) = common::doc::sync_block(doc, "history-table", &block, &[]) {
        panic!("{e}");
    }
    // The README shows the rows alone.
    let rows: Vec<&str> = table.lines().take(5).collect();
    let block = format!(
        "```text\n$ tokenwatch history --days 3\n{}\n```",
        rows.join("\n")
    );
    let readme = std::path::Path::new(common::doc::README);
    if let Err(e) = common::doc::sync_block(readme, "history-rows", &block, &[]) {
        panic!("{e}");
    }
}

/// A worker counts its API calls and the rate-limit answers among them, and records them for
/// the hour when it stops (and as each hour ends).
#[test]
fn a_worker_records_its_calls_and_rate_limits_per_hour() {
    use tokenwatch::brokers::upstox::sim::{Endpoint, Fault};
    use tokenwatch::history::{self, Event};
    common::paused_runtime().block_on(async {
        // Friday 4 December 2026, 11:20 IST.
        let start = common::at_ist(2026, 12, 4, 11, 20, 0);
        let h = common::Harness::new(start).await;
        h.store_fresh_token();
        h.sim.inject(
            Endpoint::Profile,
            Fault::TooManyRequests { retry_after: None },
            2,
        );
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let core = h.core().keep_history(history::DEFAULT_KEEP);
        let handle = tokenwatch::worker::spawn(core, tx);
        // The first check: two rate-limited answers, then the token is accepted.
        h.run_until(start + chrono::Duration::minutes(5)).await;
        common::stop(handle).await;
        let day = history::ist_day(start);
        let loaded = history::load(&history::dir_for(&h.token_path()), day, day);
        let calls: Vec<(String, u32, u32)> = loaded
            .records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Calls {
                    hour,
                    calls,
                    rate_limited,
                } => Some((common::ist_rfc3339(*hour), *calls, *rate_limited)),
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            [("2026-12-04T11:00:00+05:30".to_string(), 3, 2)],
            "{loaded:#?}"
        );
    });
}

/// A worker that watches through midnight IST records the state again on the new day, so the
/// day's file says what it started in however long ago the state changed.
#[test]
fn each_day_starts_with_the_state_it_began_in() {
    use tokenwatch::history::{self, Event};
    common::paused_runtime().block_on(async {
        // Thursday 3 December 2026, 23:50 IST.
        let start = common::at_ist(2026, 12, 3, 23, 50, 0);
        let h = common::Harness::new(start).await;
        h.store_fresh_token();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let core = h.core().keep_history(history::DEFAULT_KEEP);
        let handle = tokenwatch::worker::spawn(core, tx);
        h.run_until(start + chrono::Duration::minutes(20)).await;
        common::stop(handle).await;
        let friday = history::ist_day(start + chrono::Duration::minutes(20));
        let loaded = history::load(&history::dir_for(&h.token_path()), friday, friday);
        let first_state = loaded
            .records
            .iter()
            .find(|r| matches!(r.event, Event::State { .. }))
            .expect("a state on the new day");
        assert_eq!(history::ist_day(first_state.at), friday);
        assert!(
            matches!(
                first_state.event,
                Event::State {
                    state: tokenwatch::token::TokenState::Healthy,
                    ..
                }
            ),
            "{first_state:?}"
        );
        // Within a minute of midnight (the worker looks at least once a minute).
        assert!(
            first_state.at - common::at_ist(2026, 12, 4, 0, 0, 0) <= chrono::Duration::minutes(1)
        );
    });
}
