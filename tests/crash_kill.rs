//! Crash safety of the real binary: `tokenwatch refresh` renewing through
//! `renew.command` against a `tokenwatch simulate` process, SIGKILLed at random moments.
//!
//! tests/store.rs kills a process that calls `TokenStore::write` in a loop; this file kills the
//! shipped binary in the middle of a whole renewal (start-up and restore, validation, the
//! command, verification, `.prev`, the primary, two backups, `token.env_file`), so kills land
//! before the new token exists, between fetching and storing, inside the writes, and after.
//!
//! After every kill: the token file, `.prev` and each backup (when present) parse and are 0600,
//! and the token file never goes back: it holds the token of the last run that completed, or
//! a newer one. Tokens are ordered by the order the simulator minted them — `renew.command`
//! appends each one to `minted.log` before printing it (the JWTs' `iat` has whole seconds, too
//! coarse for two renewals a second). Temp files a kill leaves must be gone once a run has
//! completed, since `refresh` (like `daemon` and the dashboard) cleans them at start.
//!
//! Each iteration first revokes the stored token at the simulator (`DELETE /v2/logout`), so
//! `refresh` finds it invalid and renews at once, whatever the time of day (a valid token would
//! not be renewed: not due, or the 03:30 IST boundary rule).
//!
//! Iterations: `CRASH_ITERATIONS` (default 30, for CI); `CRASH_SEED` repeats a run. The long
//! run, which prints a summary line:
//!
//! ```text
//! CRASH_ITERATIONS=1000 cargo test --release --test crash_kill -- --nocapture
//! ```

mod common;

use common::{KillOnDrop, Sandbox, SimProcess, mode, output_of};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokenwatch::token::read_token_file;

/// Iterations when `CRASH_ITERATIONS` is not set.
const DEFAULT_ITERATIONS: usize = 30;
/// Longest wait for one normal run of the binary.
const RUN_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The sandbox: a config folder with the token file, two backups and an env file
// ---------------------------------------------------------------------------------------

/// A sandbox on the build's disk (so fsync does real work and kills can land inside a write)
/// renewing through `renew.command`, with its token file, `.prev`, two backups, an env file and
/// the log of minted tokens.
struct Fixture {
    sb: Sandbox,
    token: PathBuf,
    prev: PathBuf,
    backups: Vec<PathBuf>,
    env_file: PathBuf,
    minted_log: PathBuf,
}

impl std::ops::Deref for Fixture {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.sb
    }
}

impl Fixture {
    fn new(sim: &SimProcess) -> Fixture {
        let sb = Sandbox::on_disk("crash-kill-");
        let config = sb.root.join("config");
        let minted_log = sb.root.join("minted.log");
        // The token is logged before it is printed, so a token tokenwatch stores is always in
        // the log already.
        let script = format!(
            "t=$(curl -sf -X POST '{base}/sim/token') || exit 1; \
             printf '%s\\n' \"$t\" >> '{log}'; printf '%s\\n' \"$t\"",
            base = sim.base,
            log = minted_log.display()
        );
        sb.write_config(&serde_json::json!({
            "upstox": {"api_base": sim.base},
            "token": {
                "path": "upstox_token.json",
                "backups": ["backup/upstox_token.json", "backup2/upstox_token.json"],
                "env_file": "upstox.env",
            },
            // Small thresholds: a token issued now is not due for renewal at any time of day.
            "monitor": common::time::with_small_thresholds(
                serde_json::json!({"backoff_initial": "50ms", "backoff_max": "200ms"})
            ),
            "renew": {"strategy": "command", "not_before": "00:00", "command": ["sh", "-c", script]},
        }));
        Fixture {
            token: config.join("upstox_token.json"),
            prev: config.join("upstox_token.json.prev"),
            backups: vec![
                config.join("backup/upstox_token.json"),
                config.join("backup2/upstox_token.json"),
            ],
            env_file: config.join("upstox.env"),
            minted_log,
            sb,
        }
    }

    /// A simulator and a fixture whose first `refresh` stored a token.
    fn renewed_once() -> (SimProcess, Fixture) {
        let sim = SimProcess::start();
        let sb = Fixture::new(&sim);
        sb.refresh_ok();
        (sim, sb)
    }

    /// Run `refresh` to the end: (exit code, stdout + stderr, duration).
    fn refresh(&self) -> (Option<i32>, String, Duration) {
        let t0 = Instant::now();
        let out = output_of(self.cmd(&["refresh"]), RUN_LIMIT, false);
        (out.code, out.all(), t0.elapsed())
    }

    /// Run `refresh`, which must succeed; its output.
    fn refresh_ok(&self) -> String {
        let (code, out, _) = self.refresh();
        assert_eq!(code, Some(0), "{out}");
        out
    }

    /// The folders tokenwatch writes into.
    fn folders(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::iter::once(&self.token)
            .chain(&self.backups)
            .chain(std::iter::once(&self.env_file))
            .map(|p| p.parent().unwrap().to_path_buf())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Temp files (`.<name>.tmp*`) in the folders tokenwatch writes into.
    fn temp_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in self.folders() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().contains(".tmp") {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        out
    }

    /// Temp files of the env file (`.upstox.env.tmp*`), kept apart: the store does not own it.
    fn is_env_temp(&self, p: &Path) -> bool {
        let name = self.env_file.file_name().unwrap().to_string_lossy();
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&format!(".{name}.tmp")))
    }

    /// Every token `renew.command` handed out so far, in the order they were minted. A line
    /// still being written (by a command whose tokenwatch was killed) is skipped.
    fn minted(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.minted_log).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l.trim()).ok()?;
                Some(v["access_token"].as_str()?.to_owned())
            })
            .collect()
    }

    /// The position of `token` among the minted tokens. A token is logged before tokenwatch
    /// sees it, so it is there; a short retry covers a reader racing the append.
    fn index_of(&self, token: &str, ctx: &str) -> usize {
        for _ in 0..50 {
            if let Some(i) = self.minted().iter().position(|t| t == token) {
                return i;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("a stored token was never minted by the simulator: {ctx}");
    }

    /// The env file's token (`UPSTOX_ACCESS_TOKEN=<token>\n`), checked: 0600, that one line.
    fn env_token(&self, ctx: &str) -> Option<String> {
        let text = match std::fs::read_to_string(&self.env_file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot read the env file ({e}): {ctx}"),
        };
        assert_eq!(mode(&self.env_file), 0o600, "env file mode: {ctx}");
        let token = text
            .strip_prefix("UPSTOX_ACCESS_TOKEN=")
            .and_then(|t| t.strip_suffix('\n'))
            .filter(|t| !t.contains('\n') && !t.is_empty())
            .unwrap_or_else(|| panic!("the env file is not one whole line ({text:?}): {ctx}"));
        Some(token.to_owned())
    }
}

/// The access token in a token file: `None` when there is no file; panics unless it parses
/// and is 0600.
fn checked_token(
    path: &Path,
    ctx: &str,
) -> Option<(String, Option<chrono::DateTime<chrono::Utc>>)> {
    if std::fs::symlink_metadata(path).is_err() {
        return None;
    }
    assert_eq!(mode(path), 0o600, "{} is not 0600: {ctx}", path.display());
    match read_token_file(path) {
        Ok(Some(t)) => Some((t.access_token.expose().to_owned(), t.issued_at)),
        Ok(None) => None,
        Err(e) => panic!("{} does not parse ({e}): {ctx}", path.display()),
    }
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

/// What the files held before a run.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Files {
    primary: Option<String>,
    prev: Option<String>,
    backups: Vec<Option<String>>,
    env: Option<String>,
}

#[derive(Default, Debug)]
struct Tally {
    completed: usize,
    killed: usize,
    killed_before_fetch: usize,
    killed_fetched_not_stored: usize,
    killed_mid_store: usize,
    killed_after_store: usize,
    kills_leaving_temp_files: usize,
    store_temps_seen: usize,
    store_temps_cleaned: usize,
    env_temps_seen: usize,
    kills_leaving_env_behind: usize,
    max_run: Duration,
    run_times: Vec<Duration>,
}

#[test]
fn sigkilled_refreshes_never_leave_a_bad_or_older_token_file() {
    let iterations: usize = std::env::var("CRASH_ITERATIONS")
        .ok()
        .map(|v| v.trim().parse().expect("CRASH_ITERATIONS is a number"))
        .unwrap_or(DEFAULT_ITERATIONS);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .map(|v| v.trim().parse().expect("CRASH_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut rng = fastrand::Rng::with_seed(seed);
    let wall = Instant::now();
    let sim = SimProcess::start();
    let sb = Fixture::new(&sim);
    let mut tally = Tally::default();

    // Calibrate: a few whole renewals, uninterrupted. The first stores the first token.
    let mut floor: Option<usize> = None;
    let mut times = Vec::new();
    for i in 0..4 {
        if let Some((t, _)) = checked_token(&sb.token, "calibration") {
            sim.revoke(&t);
        }
        let (code, out, took) = sb.refresh();
        assert_eq!(code, Some(0), "calibration run {i}: {out}");
        assert!(out.contains("Token refresh successful"), "{out}");
        let (t, _) = checked_token(&sb.token, "calibration").expect("a stored token");
        floor = Some(sb.index_of(&t, "calibration"));
        times.push(took);
    }
    times.sort();
    let median = times[times.len() / 2];
    tally.max_run = *times.last().unwrap();
    tally.run_times.extend(&times);
    // Kills spread over 0..=the median renewal: before, during and (when a run is quicker
    // than its median) after the write.
    let window_ms = (median.as_millis() as u64).max(5);
    eprintln!(
        "crash_kill: {iterations} iterations, seed {seed}, kill delay 0-{window_ms} ms \
         (renewal median {} ms)",
        median.as_millis()
    );

    let mut last_seen = floor.unwrap();
    let mut last_issued = checked_token(&sb.token, "start").unwrap().1;
    let mut pending_temps: BTreeSet<PathBuf> = BTreeSet::new();
    let mut pending_env_temps: BTreeSet<PathBuf> = BTreeSet::new();

    for i in 0..iterations {
        let before = Files {
            primary: checked_token(&sb.token, "before").map(|t| t.0),
            prev: checked_token(&sb.prev, "before").map(|t| t.0),
            backups: sb
                .backups
                .iter()
                .map(|b| checked_token(b, "before").map(|t| t.0))
                .collect(),
            env: sb.env_token("before"),
        };
        let minted_before = sb.minted().len();
        if let Some(t) = &before.primary {
            sim.revoke(t);
        }

        let delay = rng.u64(0..=window_ms);
        let t0 = Instant::now();
        let child = sb
            .cmd(&["refresh"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        std::thread::sleep(Duration::from_millis(delay));
        let finished_first = child.0.try_wait().unwrap().is_some();
        if !finished_first {
            let _ = child.0.kill();
        }
        let status = child.0.wait().unwrap();
        let took = t0.elapsed();
        let killed = status.signal() == Some(libc::SIGKILL);
        let ctx = format!(
            "iteration {i} (seed {seed}), kill after {delay} ms, {status}; minted {} tokens",
            sb.minted().len()
        );
        if !killed {
            assert_eq!(
                status.code(),
                Some(0),
                "a run that was not killed failed: {ctx}"
            );
        }

        // Every file parses and is 0600.
        let primary = checked_token(&sb.token, &ctx).expect("the token file is gone");
        let _ = checked_token(&sb.prev, &ctx);
        let backups: Vec<Option<(String, _)>> =
            sb.backups.iter().map(|b| checked_token(b, &ctx)).collect();
        let env = sb.env_token(&ctx);

        // Never older than the last completed renewal, never going back at all.
        let idx = sb.index_of(&primary.0, &ctx);
        let floor_idx = floor.unwrap();
        assert!(
            idx >= floor_idx,
            "the token file holds token #{idx}, older than #{floor_idx} of the last completed \
             renewal: {ctx}"
        );
        assert!(
            idx >= last_seen,
            "the token file went back from token #{last_seen} to #{idx}: {ctx}"
        );
        assert!(
            primary.1 >= last_issued,
            "issued_at went back from {last_issued:?} to {:?}: {ctx}",
            primary.1
        );
        last_seen = idx;
        last_issued = primary.1;
        for (b, got) in sb.backups.iter().zip(&backups) {
            let (t, _) = got
                .as_ref()
                .unwrap_or_else(|| panic!("backup {} is gone: {ctx}", b.display()));
            let bi = sb.index_of(t, &ctx);
            assert!(
                bi >= floor_idx && bi <= idx,
                "backup {} holds token #{bi}; the last completed renewal stored #{floor_idx}, \
                 the token file holds #{idx}: {ctx}",
                b.display()
            );
        }
        if let Some(e) = &env {
            let ei = sb.index_of(e, &ctx);
            assert!(ei <= idx, "the env file is ahead of the token file: {ctx}");
        }

        // Temp files: count what kills leave; a completed run must have removed them all.
        let temps = sb.temp_files();
        let (env_temps, store_temps): (Vec<_>, Vec<_>) =
            temps.iter().cloned().partition(|p| sb.is_env_temp(p));
        let now_present: BTreeSet<PathBuf> = store_temps.iter().cloned().collect();
        tally.store_temps_cleaned += pending_temps.difference(&now_present).count();
        let new_temps = now_present.difference(&pending_temps).count();
        tally.store_temps_seen += new_temps;
        let env_now: BTreeSet<PathBuf> = env_temps.iter().cloned().collect();
        let new_env_temps = env_now.difference(&pending_env_temps).count();
        tally.env_temps_seen += new_env_temps;
        if killed && new_temps + new_env_temps > 0 {
            tally.kills_leaving_temp_files += 1;
        }
        pending_temps = now_present;
        pending_env_temps = env_now;

        let all_backups_new = backups
            .iter()
            .all(|b| b.as_ref().map(|b| &b.0) == Some(&primary.0));
        let changed = before.primary.as_ref() != Some(&primary.0);
        let prev_changed = before.prev != checked_token(&sb.prev, &ctx).map(|t| t.0);
        if killed && changed && env.as_ref() != Some(&primary.0) {
            tally.kills_leaving_env_behind += 1;
        }
        if killed {
            tally.killed += 1;
            if !store_temps.is_empty()
                || (prev_changed && !changed)
                || (changed && !all_backups_new)
            {
                tally.killed_mid_store += 1;
            } else if changed {
                tally.killed_after_store += 1;
            } else if sb.minted().len() > minted_before {
                tally.killed_fetched_not_stored += 1;
            } else {
                tally.killed_before_fetch += 1;
            }
        } else {
            // A completed renewal: a new token everywhere, the old one as .prev, no temp file.
            tally.completed += 1;
            tally.run_times.push(took);
            tally.max_run = tally.max_run.max(took);
            assert!(
                idx >= minted_before,
                "a completed refresh kept an old token: {ctx}"
            );
            assert!(
                all_backups_new,
                "a completed refresh left a backup behind: {ctx}"
            );
            assert_eq!(
                env.as_deref(),
                Some(primary.0.as_str()),
                "a completed refresh left the env file behind: {ctx}"
            );
            if let Some(old) = &before.primary {
                let prev = checked_token(&sb.prev, &ctx).expect("no .prev after a renewal");
                assert_eq!(&prev.0, old, ".prev is not the replaced token: {ctx}");
            }
            assert!(
                store_temps.is_empty(),
                "temp files survived a completed start: {store_temps:?}: {ctx}"
            );
            floor = Some(idx);
        }
    }

    // One more normal start removes whatever the last kills left.
    if let Some((t, _)) = checked_token(&sb.token, "final") {
        sim.revoke(&t);
    }
    let (code, out, took) = sb.refresh();
    assert_eq!(code, Some(0), "the final refresh failed: {out}");
    tally.max_run = tally.max_run.max(took);
    let left: Vec<PathBuf> = sb
        .temp_files()
        .into_iter()
        .filter(|p| !sb.is_env_temp(p))
        .collect();
    tally.store_temps_cleaned += pending_temps.iter().filter(|p| !p.exists()).count();
    assert!(
        left.is_empty(),
        "temp files left after a normal start: {left:?}"
    );
    let env_left: Vec<PathBuf> = sb
        .temp_files()
        .into_iter()
        .filter(|p| sb.is_env_temp(p))
        .collect();

    tally.run_times.sort();
    let median_run = tally.run_times[tally.run_times.len() / 2];
    println!(
        "crash_kill summary: {iterations} iterations (seed {seed}, kill delay 0-{window_ms} ms) in \
         {:.1} s: {} completed, {} killed [{} before the token was fetched, {} fetched but not \
         stored, {} mid-store (a temp file, or only part of .prev/token/backups written), {} after \
         the store]; {} kills left temp files: {} beside the token file, .prev and backups ({} \
         removed by the next start), {} beside the env file ({} still there at the end); {} kills \
         left the env file behind the token file; renewal time median {} ms, max {} ms",
        wall.elapsed().as_secs_f64(),
        tally.completed,
        tally.killed,
        tally.killed_before_fetch,
        tally.killed_fetched_not_stored,
        tally.killed_mid_store,
        tally.killed_after_store,
        tally.kills_leaving_temp_files,
        tally.store_temps_seen,
        tally.store_temps_cleaned,
        tally.env_temps_seen,
        env_left.len(),
        tally.kills_leaving_env_behind,
        median_run.as_millis(),
        tally.max_run.as_millis(),
    );
    // The delays must have reached both sides of the write, or the test proved little.
    assert!(tally.killed > 0, "no run was killed: {tally:?}");
    if iterations >= 200 {
        assert!(
            tally.killed_before_fetch > 0 && tally.completed + tally.killed_after_store > 0,
            "the kills did not spread over the renewal: {tally:?}"
        );
    }
}

/// Leave temp files as a killed writer would, beside the token file, `.prev`, both backups
/// and the env file, plus two files that only look alike.
fn plant_temp_files(sb: &Fixture) -> (Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>) {
    let config = sb.token.parent().unwrap();
    let store_owned = vec![
        config.join(".upstox_token.json.tmpKILLED1"),
        config.join(".upstox_token.json.prev.tmpKILLED2"),
        sb.backups[0]
            .parent()
            .unwrap()
            .join(".upstox_token.json.tmpKILLED3"),
        sb.backups[1]
            .parent()
            .unwrap()
            .join(".upstox_token.json.tmpKILLED4"),
    ];
    let env_owned = vec![config.join(".upstox.env.tmpKILLED5")];
    // Not tokenwatch's: another program's temp file and a user's file.
    let foreign = vec![
        config.join(".engine_state.json.tmp123"),
        config.join("notes.tmp"),
    ];
    for p in store_owned.iter().chain(&env_owned).chain(&foreign) {
        std::fs::write(p, b"{\"access_token\":\"half-writ").unwrap();
    }
    (store_owned, env_owned, foreign)
}

/// `tokenwatch daemon` until it has validated the token, then SIGTERM; its stderr.
fn run_daemon_briefly(sb: &Fixture) -> String {
    let mut daemon = sb.spawn(&["daemon"]);
    daemon.stderr_with("Token valid, expires in");
    daemon.signal(libc::SIGTERM);
    let out = daemon.finish();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.stderr
}

/// Temp files a killed writer left beside the token file, `.prev` and the backups are removed
/// when `refresh` starts and when `daemon` starts; files that only look alike are kept.
#[test]
fn stale_temp_files_are_removed_when_refresh_or_daemon_starts() {
    // The token the first refresh stores must not be due for renewal when refresh runs again.
    common::time::clear_of_the_0330_expiry(Duration::from_secs(60));
    let (_sim, sb) = Fixture::renewed_once();
    let stored = std::fs::read(&sb.token).unwrap();

    for start in ["refresh", "daemon"] {
        let (store_owned, _, foreign) = plant_temp_files(&sb);
        let log = if start == "refresh" {
            // The token is valid: this run only starts, validates and ends.
            let out = sb.refresh_ok();
            assert!(out.contains("renewal is not due yet"), "{out}");
            out
        } else {
            run_daemon_briefly(&sb)
        };
        let left: Vec<&PathBuf> = store_owned.iter().filter(|p| p.exists()).collect();
        assert!(left.is_empty(), "{start} left {left:?}:\n{log}");
        for p in &store_owned {
            assert!(
                log.contains(&format!("removed {}", p.display())),
                "{start} did not say it removed {}:\n{log}",
                p.display()
            );
        }
        for p in &foreign {
            assert!(p.exists(), "{start} removed {}, not its file", p.display());
        }
        assert_eq!(
            std::fs::read(&sb.token).unwrap(),
            stored,
            "{start} changed a valid token file"
        );
    }
}

/// Was a finding (fixed): the env file (`token.env_file`) is written with the same temp-file-and-rename as
/// the token file, but `TokenStore::restore` only cleans temp files beside the token file,
/// `.prev`, `.unreadable` and the backups — a `.upstox.env.tmp*` left by a kill (it holds the
/// whole token) stays forever.
#[test]
fn stale_env_file_temp_files_are_removed_at_start() {
    let (_sim, sb) = Fixture::renewed_once();
    let (_, env_owned, _) = plant_temp_files(&sb);
    let out = sb.refresh_ok();
    let log = run_daemon_briefly(&sb);
    let left: Vec<&PathBuf> = env_owned.iter().filter(|p| p.exists()).collect();
    assert!(
        left.is_empty(),
        "refresh and daemon both started and left {left:?}:\n{out}\n{log}"
    );
}

/// Was a finding (fixed): a kill between storing the token file and writing `token.env_file` (the crash
/// loop above sees it: "env file behind the token file") leaves the env file with the old
/// token, and nothing repairs it: `token.env_file` and `token.on_change` are only handed a
/// token when a renewal stores a new one, so `refresh` and `daemon` starting with a valid
/// token leave the env file stale until the next renewal (and `on_change` never runs for the
/// token the kill interrupted). Staged here without a kill: the env file is put back to the
/// replaced token, exactly what such a kill leaves.
#[test]
fn an_env_file_left_behind_by_a_kill_is_repaired_at_start() {
    let (sim, sb) = Fixture::renewed_once();
    let old_env = std::fs::read(&sb.env_file).unwrap();
    sim.revoke(&checked_token(&sb.token, "first").unwrap().0);
    sb.refresh_ok();
    let current = checked_token(&sb.token, "second").unwrap().0;
    assert_eq!(sb.env_token("second").as_deref(), Some(current.as_str()));
    // What a kill after the token file's rename and before the env file's leaves.
    std::fs::write(&sb.env_file, &old_env).unwrap();

    let out = sb.refresh_ok();
    let log = run_daemon_briefly(&sb);
    assert_eq!(
        sb.env_token("after refresh and daemon").as_deref(),
        Some(current.as_str()),
        "the env file still holds the replaced token after refresh and daemon started:\n{out}\n{log}"
    );
}
