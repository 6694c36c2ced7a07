//! Files next to the token, and the expiry a file claims: links planted where tokenwatch keeps
//! its own files (`.lock`, `.login.lock`, `.prev`, `.unreadable`), lock files left behind or
//! left by a dead process, two processes racing for a lock that is removed when let go, and a
//! file claiming an expiry later than the Upstox 03:30 IST rule allows.
//!
//! The `odd-files` block of `docs/reliability.md` is generated from [`CASES`]: each row names
//! the test that holds its figure (`UPDATE_RELIABILITY=1 cargo test --test odd_files`).

mod common;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use common::doc::{hardening_table, sync_doc_block};
use common::{Sandbox, SimProcess, at_ist, capture_logs, ist_rfc3339, now_secs, tokens};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use tokenwatch::token::expiry::{ExpiryEvidence, decide_expiry};
use tokenwatch::token::file::parse_token;
use tokenwatch::token::store::{StoreError, TokenStore, atomic_write_private};
use tokenwatch::token::{ExpirySource, Thresholds, Token, TokenState};

/// Threads racing for one lock file in [`racing_lockers_never_both_hold_the_lock`].
const RACERS: usize = 4;
/// Locks each racer takes.
const ROUNDS: usize = 150;

/// One row of the doc's table: what was found, what the test checks, the bound it holds.
struct Case {
    case: &'static str,
    before: &'static str,
    now: &'static str,
    figure: String,
    test: &'static str,
}

fn cases() -> Vec<Case> {
    let c = |case, before, now, figure: &str, test| Case {
        case,
        before,
        now,
        figure: figure.to_owned(),
        test,
    };
    vec![
        c(
            "`.lock` is a symbolic link to another file",
            "opened through the link: the other file was truncated and overwritten",
            "refused, naming the link and saying to remove it; nothing written",
            "0 bytes of the other file changed, mtime kept",
            "planted_links_are_refused_and_their_targets_untouched",
        ),
        c(
            "`.login.lock` is a symbolic link to another file",
            "opened through the link: the other file was truncated and overwritten",
            "refused the same way (also by `tokenwatch refresh`, exit ≠ 0)",
            "0 bytes of the other file changed, mtime kept",
            "planted_links_are_refused_and_their_targets_untouched",
        ),
        c(
            "`.prev` is a symbolic link to another file",
            "written through the link: the other file was replaced by the old token",
            "refused before anything is written; the token file keeps its token",
            "0 bytes of the other file changed, mtime kept",
            "planted_links_are_refused_and_their_targets_untouched",
        ),
        c(
            "a dangling link at `.lock` / `.prev`",
            "followed: the file it names was created",
            "refused; the named file is not created",
            "0 files created",
            "planted_links_are_refused_and_their_targets_untouched",
        ),
        c(
            "`.unreadable` (where a broken token file is kept) is a link",
            "the name was checked, then written through (a link planted in between was followed)",
            "the copy goes to the next free name, linked in only where nothing is",
            "0 bytes of the other file changed",
            "a_planted_set_aside_name_is_skipped_not_written",
        ),
        c(
            "lock files after `tokenwatch refresh` and after the daemon's SIGTERM",
            "`.lock` and `.login.lock` stayed behind naming a finished process",
            "removed when let go",
            "0 lock files left after refresh and after SIGTERM",
            "no_lock_file_outlives_refresh_or_the_daemon",
        ),
        c(
            "a lock file naming a process that is gone",
            "taken silently",
            "taken over, with a log line naming the dead process",
            "1 \"Took over\" log line; lock taken at once",
            "a_lock_left_by_a_dead_process_is_taken_over_with_a_log_line",
        ),
        c(
            "two processes racing for a lock that is removed when let go",
            "(lock files were never removed)",
            "a waiter that got the removed file checks the path still names it and tries again",
            &format!(
                "0 of {} acquisitions by {RACERS} racers overlapped",
                RACERS * ROUNDS
            ),
            "racing_lockers_never_both_hold_the_lock",
        ),
        c(
            "a legacy file whose `expires_at` is the issue time + 24 h",
            "believed: HEALTHY past 03:30 IST",
            "the earliest of `expires_at`, the JWT `exp` and the 03:30 IST rule; the source names the winner",
            "EXPIRED at 04:00 IST the next day",
            "a_claim_past_the_0330_rule_is_not_believed",
        ),
        c(
            "`tokenwatch status` for such a file",
            "HEALTHY, \"Expiry from: the file's expires_at\"",
            "EXPIRED, \"Expiry from: the 03:30 IST rule from issued_at\"",
            "exit 2, source `rule_from_issued_at`",
            "status_names_the_rule_that_won",
        ),
    ]
}

#[test]
fn reliability_doc_block() {
    let md = hardening_table(cases().into_iter().map(|c| {
        [
            c.case.into(),
            c.before.into(),
            c.now.into(),
            c.figure,
            format!("tests/odd_files.rs::{}", c.test),
        ]
    }));
    if let Err(e) = sync_doc_block("odd-files", &md, &[]) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A format-1 token with no issue time, ending `hours` after a fixed instant.
fn token(access: &str, hours: i64) -> Token {
    let expires = at_ist(2026, 11, 26, 9, 12, 0) + ChronoDuration::hours(hours);
    tokens::token(access, None, expires)
}

/// Another user's file: its bytes and a fixed modification time.
struct Victim {
    path: PathBuf,
    bytes: Vec<u8>,
    mtime: SystemTime,
}

impl Victim {
    fn new(dir: &Path, name: &str) -> Victim {
        let path = dir.join(name);
        let bytes = format!("{name}: someone else's data\n").into_bytes();
        fs::write(&path, &bytes).unwrap();
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        Victim { path, bytes, mtime }
    }

    fn assert_untouched(&self, ctx: &str) {
        assert_eq!(
            fs::read(&self.path).unwrap(),
            self.bytes,
            "{ctx}: the other file's bytes changed"
        );
        let meta = fs::metadata(&self.path).unwrap();
        assert_eq!(
            meta.modified().unwrap(),
            self.mtime,
            "{ctx}: the other file was written"
        );
    }
}

fn assert_refused(err: StoreError, link: &Path, ctx: &str) {
    let msg = err.to_string();
    match &err {
        StoreError::NotPlain { path, what } => {
            assert_eq!(path, link, "{ctx}");
            assert_eq!(*what, "a symbolic link", "{ctx}");
        }
        other => panic!("{ctx}: expected a refusal, got {other:?}"),
    }
    assert!(msg.contains(&link.display().to_string()), "{ctx}: {msg}");
    assert!(msg.contains("remove it"), "{ctx}: {msg}");
}

fn lock_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walkdir(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".lock") {
            out.push(entry.display().to_string());
        }
    }
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Links planted next to the token
// ---------------------------------------------------------------------------------------

#[test]
fn planted_links_are_refused_and_their_targets_untouched() {
    // `.lock`: every write takes it first.
    let tmp = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let store = TokenStore::new(tmp.path().join("upstox_token.json"), []);
    let victim = Victim::new(other.path(), "lock-victim");
    symlink(&victim.path, store.lock_path()).unwrap();
    let err = store.write(&token("eyJ.first.sig", 20)).unwrap_err();
    assert_refused(err, &store.lock_path(), ".lock");
    victim.assert_untouched(".lock");
    assert!(!store.path().exists(), "the token file was written");

    // `.login.lock`: held by every renewal.
    let victim = Victim::new(other.path(), "login-lock-victim");
    symlink(&victim.path, store.login_lock_path()).unwrap();
    let err = store.login_lock().unwrap_err();
    assert_refused(err, &store.login_lock_path(), ".login.lock");
    victim.assert_untouched(".login.lock");

    // `.prev`: written when a token replaces another.
    let tmp = tempfile::tempdir().unwrap();
    let store = TokenStore::new(tmp.path().join("upstox_token.json"), []);
    let first = token("eyJ.first.sig", 20);
    store.write(&first).unwrap();
    let before = fs::read(store.path()).unwrap();
    let victim = Victim::new(other.path(), "prev-victim");
    symlink(&victim.path, store.prev_path()).unwrap();
    let err = store.write(&token("eyJ.second.sig", 44)).unwrap_err();
    assert_refused(err, &store.prev_path(), ".prev");
    victim.assert_untouched(".prev");
    assert_eq!(fs::read(store.path()).unwrap(), before, "the token changed");
    // The one function other files next to the token (`.state`) are written with.
    let err = atomic_write_private(&store.prev_path(), b"x").unwrap_err();
    assert_refused(err, &store.prev_path(), "atomic_write_private");
    victim.assert_untouched("atomic_write_private");
    // Without the link it writes a private file.
    fs::remove_file(store.prev_path()).unwrap();
    store.write(&token("eyJ.second.sig", 44)).unwrap();
    assert_eq!(common::mode(&store.prev_path()), 0o600);

    // Dangling links: nothing is created where they point.
    let tmp = tempfile::tempdir().unwrap();
    let store = TokenStore::new(tmp.path().join("upstox_token.json"), []);
    let nowhere = other.path().join("created-through-a-link");
    symlink(&nowhere, store.lock_path()).unwrap();
    assert_refused(
        store.write(&first).unwrap_err(),
        &store.lock_path(),
        "dangling .lock",
    );
    fs::remove_file(store.lock_path()).unwrap();
    store.write(&first).unwrap();
    symlink(&nowhere, store.prev_path()).unwrap();
    assert_refused(
        store.write(&token("eyJ.second.sig", 44)).unwrap_err(),
        &store.prev_path(),
        "dangling .prev",
    );
    assert!(
        !nowhere.exists(),
        "a file was created through a dangling link"
    );

    // The binary says so and what to do.
    let sim = SimProcess::start();
    let sb = Sandbox::new();
    sb.write_yaml(&format!(
        "upstox:\n  api_base: \"{b}\"\n\
         token:\n  path: upstox_token.json\n\
         renew:\n  strategy: command\n  not_before: \"00:00\"\n  command: [\"curl\", \"-sf\", \"-X\", \"POST\", \"{b}/sim/token\"]\n",
        b = sim.base
    ));
    let victim = Victim::new(other.path(), "binary-victim");
    let link = sb.root.join("config/upstox_token.json.login.lock");
    symlink(&victim.path, &link).unwrap();
    let out = sb.run(&["refresh"]);
    assert_ne!(out.code, Some(0), "{}", out.all());
    out.assert_says(&format!("refusing to use {}", link.display()));
    out.assert_says("it is a symbolic link");
    out.assert_says("remove it");
    victim.assert_untouched("tokenwatch refresh");
    assert!(!sb.token_path().exists());
}

#[test]
fn a_planted_set_aside_name_is_skipped_not_written() {
    let tmp = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let store = TokenStore::new(tmp.path().join("upstox_token.json"), []);
    fs::write(store.path(), b"{\"access_token\": ").unwrap();
    let victim = Victim::new(other.path(), "aside-victim");
    symlink(&victim.path, store.set_aside_path()).unwrap();
    let report = store.write(&token("eyJ.first.sig", 20)).unwrap();
    let aside = report.set_aside.expect("the broken file was kept");
    assert_ne!(aside, store.set_aside_path());
    assert_eq!(fs::read(&aside).unwrap(), b"{\"access_token\": ");
    victim.assert_untouched(".unreadable");
    assert!(
        fs::symlink_metadata(store.set_aside_path())
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link was replaced"
    );
}

// ---------------------------------------------------------------------------------------
// Lock files: removed when let go, taken over from the dead, never held twice
// ---------------------------------------------------------------------------------------

#[test]
fn no_lock_file_outlives_refresh_or_the_daemon() {
    let sim = SimProcess::start();
    let sb = Sandbox::new();
    sb.write_yaml(&format!(
        "upstox:\n  api_base: \"{b}\"\n\
         token:\n  path: upstox_token.json\n  backups: [backup/upstox_token.json]\n\
         monitor:\n  backoff_initial: 50ms\n  backoff_max: 200ms\n\
         renew:\n  strategy: command\n  not_before: \"00:00\"\n  command: [\"curl\", \"-sf\", \"-X\", \"POST\", \"{b}/sim/token\"]\n",
        b = sim.base
    ));
    let out = sb.run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(sb.token_path().exists());
    assert_eq!(lock_files(&sb.root), Vec::<String>::new(), "after refresh");

    let mut daemon = sb.spawn(&["daemon"]);
    daemon.stderr_with("daemon running");
    // Let it check (and renew, if the token is near its end) before it is stopped.
    daemon.stderr_with("Token valid");
    daemon.signal(libc::SIGTERM);
    let out = daemon.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(lock_files(&sb.root), Vec::<String>::new(), "after SIGTERM");
}

#[test]
fn a_lock_left_by_a_dead_process_is_taken_over_with_a_log_line() {
    let tmp = tempfile::tempdir().unwrap();
    let store = TokenStore::new(tmp.path().join("upstox_token.json"), []);
    // A process that has ended (and been reaped): its pid names no one.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    for lock in [store.lock_path(), store.login_lock_path()] {
        fs::write(
            &lock,
            format!("process {dead} (tokenwatch daemon) since 2026-11-26T09:12:00+05:30"),
        )
        .unwrap();
    }
    let logs = capture_logs();
    let started = std::time::Instant::now();
    let held = store.lock(Duration::ZERO).expect("a dead holder's lock");
    let login = store.login_lock().expect("a dead holder's login lock");
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = logs.text();
    for lock in [store.lock_path(), store.login_lock_path()] {
        let line = format!(
            "Took over {}: process {dead}, which left it, is no longer running",
            lock.display()
        );
        assert_eq!(text.matches(&line).count(), 1, "{text}");
        let now_names = fs::read_to_string(&lock).unwrap();
        assert!(
            now_names.starts_with(&format!("process {} ", std::process::id())),
            "{now_names}"
        );
    }
    drop((held, login));
    assert!(!store.lock_path().exists() && !store.login_lock_path().exists());
    // A lock let go cleanly leaves nothing to take over: no second line.
    drop(store.lock(Duration::ZERO).unwrap());
    assert_eq!(logs.text().matches("Took over").count(), 2);
}

#[test]
fn racing_lockers_never_both_hold_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("upstox_token.json");
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (path, inside, overlaps, taken) = (
                path.clone(),
                inside.clone(),
                overlaps.clone(),
                taken.clone(),
            );
            std::thread::spawn(move || {
                // Its own store and its own opens, as another process would have.
                // Trying again at once, never sleeping, so that one racer's open comes
                // between another's removal of the file and its letting go as often as can be.
                let store = TokenStore::new(path, []);
                let deadline = std::time::Instant::now() + Duration::from_secs(120);
                for _ in 0..ROUNDS {
                    let lock = loop {
                        match store.lock(Duration::ZERO) {
                            Ok(lock) => break lock,
                            Err(StoreError::Locked { .. }) => {
                                assert!(std::time::Instant::now() < deadline, "starved");
                            }
                            Err(e) => panic!("{e}"),
                        }
                    };
                    if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_micros(200));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    taken.fetch_add(1, Ordering::SeqCst);
                    drop(lock);
                }
            })
        })
        .collect();
    for r in racers {
        r.join().unwrap();
    }
    assert_eq!(taken.load(Ordering::SeqCst), RACERS * ROUNDS);
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two racers held the lock at once"
    );
    assert!(!TokenStore::new(&path, []).lock_path().exists());
}

// ---------------------------------------------------------------------------------------
// The expiry a file claims
// ---------------------------------------------------------------------------------------

const T: Thresholds = Thresholds {
    warning_before: Duration::from_secs(3 * 3600),
    critical_before: Duration::from_secs(3600),
};

#[test]
fn a_claim_past_the_0330_rule_is_not_believed() {
    let issued = at_ist(2026, 11, 26, 9, 12, 0);
    let claimed = issued + ChronoDuration::hours(24);
    let four_am = at_ist(2026, 11, 27, 4, 0, 0);
    let boundary = at_ist(2026, 11, 27, 3, 30, 0);
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let jwt = |claims: &str| format!("{}.{}.c2ln", b64(r#"{"alg":"HS256"}"#), b64(claims));
    let opaque = "legacy-opaque-token-0123456789";
    let cases: Vec<(&str, String, ExpirySource)> = vec![
        (
            "issued_at",
            format!(
                r#"{{"access_token":"{opaque}","issued_at":"{}","expires_at":"{}"}}"#,
                ist_rfc3339(issued),
                ist_rfc3339(claimed)
            ),
            ExpirySource::RuleFromIssuedAt,
        ),
        (
            "created_at",
            format!(
                r#"{{"access_token":"{opaque}","created_at":{},"expires_at":{}}}"#,
                issued.timestamp(),
                claimed.timestamp()
            ),
            ExpirySource::RuleFromCreatedAt,
        ),
        (
            "JWT iat",
            format!(
                r#"{{"access_token":"{}","expires_at":{}}}"#,
                jwt(&format!(
                    r#"{{"sub":"AB1234","iat":{}}}"#,
                    issued.timestamp()
                )),
                claimed.timestamp_millis()
            ),
            ExpirySource::RuleFromJwtIat,
        ),
        (
            "JWT exp past the rule",
            jwt(&format!(
                r#"{{"sub":"AB1234","iat":{},"exp":{}}}"#,
                issued.timestamp(),
                claimed.timestamp()
            )),
            ExpirySource::RuleFromJwtIat,
        ),
    ];
    for (what, bytes, source) in cases {
        // The file's mtime is later still: it never moves the expiry.
        let t = parse_token(bytes.as_bytes(), Some(claimed)).unwrap();
        assert_eq!(t.expires_at, boundary, "{what}");
        assert_eq!(t.expiry_source, source, "{what}");
        assert_eq!(
            TokenState::by_time(t.expires_at, four_am, T),
            TokenState::Expired
        );
    }
    // An earlier claim, or an earlier exp, still wins and is named.
    let early = issued + ChronoDuration::hours(3);
    let t = parse_token(
        format!(
            r#"{{"access_token":"{opaque}","issued_at":"{}","expires_at":"{}"}}"#,
            ist_rfc3339(issued),
            ist_rfc3339(early)
        )
        .as_bytes(),
        None,
    )
    .unwrap();
    assert_eq!(
        (t.expires_at, t.expiry_source),
        (early, ExpirySource::ExpiresAt)
    );
    let e = ExpiryEvidence {
        claimed: Some(claimed),
        jwt_exp: Some(early),
        issued_at: Some(issued),
        ..ExpiryEvidence::default()
    };
    assert_eq!(
        decide_expiry(tokenwatch::brokers::Broker::Upstox, &e),
        Some((early, ExpirySource::JwtExp))
    );
}

#[test]
fn status_names_the_rule_that_won() {
    // Issued 30 hours ago and claiming 18 hours more: whatever the time of day, the 03:30 IST
    // after the issue time has passed.
    let sb = Sandbox::new();
    sb.write_yaml("token:\n  path: upstox_token.json\n");
    let now: DateTime<Utc> = now_secs();
    let issued = now - ChronoDuration::hours(30);
    sb.write_token(format!(
        r#"{{"access_token":"legacy-opaque-token-0123456789","issued_at":"{}","expires_at":"{}"}}"#,
        ist_rfc3339(issued),
        ist_rfc3339(now + ChronoDuration::hours(18))
    ));
    let out = sb.run(&["status"]);
    assert_eq!(out.code, Some(2), "{}", out.all());
    out.assert_stdout("EXPIRED");
    out.assert_stdout("Expiry from: the 03:30 IST rule from issued_at");
    let out = sb.run(&["status", "--json"]);
    let j = out.json();
    assert_eq!(j["state"], "expired", "{j}");
    assert_eq!(j["expiry_source"], "rule_from_issued_at", "{j}");
}
