//! The token store: atomic 0600 writes, `.prev`, backups, setting an
//! unreadable primary aside, restoring at start, the writer lock, and crash safety under
//! SIGKILL.

mod common;

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use common::{KillOnDrop, mode, tokens};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokenwatch::brokers::Broker;
use tokenwatch::token::Token;
use tokenwatch::token::file::{parse_token, to_format1_json};
use tokenwatch::token::read_token_file;
use tokenwatch::token::store::{RestoreOutcome, StoreError, TokenStore, WriteReport, atomic_write};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A fixed instant, whole seconds (the file format keeps seconds only).
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 3, 42, 0).unwrap()
}

fn hours(h: i64) -> ChronoDuration {
    ChronoDuration::hours(h)
}

fn token(access: &str, expires_at: DateTime<Utc>) -> Token {
    Token {
        user_name: Some("Jane Trader".into()),
        email: Some("jane@example.in".into()),
        // No issue time: the expiry as given, not cut short by the 03:30 IST rule.
        ..tokens::token(access, None, expires_at)
    }
}

fn json(t: &Token) -> Vec<u8> {
    to_format1_json(t).into_bytes()
}

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Read `p` as tokenwatch does and return the token; panics when missing or unreadable.
fn read_back(p: &Path) -> Token {
    match read_token_file(p) {
        Ok(Some(t)) => t,
        Ok(None) => panic!("{} does not exist", p.display()),
        Err(e) => panic!("{} does not parse: {e}", p.display()),
    }
}

fn assert_same_token(p: &Path, expected: &Token) {
    let got = read_back(p);
    assert_eq!(
        got.expires_at,
        expected.expires_at,
        "expires_at of {}",
        p.display()
    );
    assert_eq!(got.user_id, expected.user_id, "user_id of {}", p.display());
    assert!(
        got.access_token.same_as(&expected.access_token),
        "access token of {} differs",
        p.display()
    );
    // The in-memory parser agrees with the file reader.
    let parsed = parse_token(&fs::read(p).unwrap(), None).unwrap();
    assert_eq!(parsed.expires_at, expected.expires_at);
    assert!(parsed.access_token.same_as(&expected.access_token));
}

/// Files in `dir` whose name starts with `prefix`.
fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Temp files `atomic_write` would leave beside `path` (`.<name>.tmp*`).
fn temp_files_for(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy();
    files_with_prefix(path.parent().unwrap(), &format!(".{name}.tmp"))
}

/// Does a 0o500 folder stop this process from creating files? (Not when running as root.)
fn permission_bits_stop_writes(scratch: &Path) -> bool {
    let probe = scratch.join("probe-readonly");
    fs::create_dir(&probe).unwrap();
    set_mode(&probe, 0o500);
    let blocked = fs::File::create(probe.join("x")).is_err();
    set_mode(&probe, 0o700);
    fs::remove_dir_all(&probe).unwrap();
    blocked
}

/// Gives a folder its write bit back when the test ends, even on panic.
struct RestoreMode(PathBuf);
impl Drop for RestoreMode {
    fn drop(&mut self) {
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o700));
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Writing the primary and the backups
// ---------------------------------------------------------------------------------------------

#[test]
fn write_creates_primary_and_every_backup_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let primary = dir.join("upstox_token.json");
    let b1 = dir.join("copy.json");
    // A backup in a folder that does not exist yet.
    let b2 = dir.join("not-yet").join("deeper").join("upstox_token.json");
    assert!(!b2.parent().unwrap().exists());

    let store = TokenStore::new(
        &primary,
        [
            b1.clone(),
            primary.clone(),                         // the primary itself: ignored
            dir.join(".").join("upstox_token.json"), // the same path, spelled differently
            b2.clone(),
            b1.clone(), // a duplicate: written once
        ],
    );
    assert_eq!(store.path(), primary.as_path());
    assert_eq!(store.backups(), &[b1.clone(), b2.clone()]);

    let t = token("eyJ.first-token.sig", base() + hours(20));
    let report: WriteReport = store.write(&t).expect("write");
    assert!(!report.prev_kept, "nothing to keep on a first write");
    assert_eq!(report.set_aside, None);
    assert!(
        report.backup_failures.is_empty(),
        "{:?}",
        report.backup_failures
    );

    for p in [&primary, &b1, &b2] {
        assert_eq!(mode(p), 0o600, "mode of {}", p.display());
        assert_eq!(
            fs::read(p).unwrap(),
            json(&t),
            "contents of {}",
            p.display()
        );
        assert_same_token(p, &t);
        assert!(
            temp_files_for(p).is_empty(),
            "temp files beside {}",
            p.display()
        );
    }
    // The folder made for the backup is private too.
    assert_eq!(mode(b2.parent().unwrap()), 0o700);
    assert_eq!(mode(dir.join("not-yet").as_path()), 0o700);
    assert!(!store.prev_path().exists());
    assert!(!store.set_aside_path().exists());
    // Only the expected files are in the folder (the lock file is gone once let go).
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["copy.json", "not-yet", "upstox_token.json",]);
}

#[test]
fn atomic_write_makes_0600_files_even_over_a_world_readable_one() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("sub").join("t.json");
    atomic_write(&p, b"hello\n").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"hello\n");
    assert_eq!(mode(&p), 0o600);
    // Replacing a world-readable file leaves a 0600 one.
    set_mode(&p, 0o644);
    atomic_write(&p, b"again\n").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"again\n");
    assert_eq!(mode(&p), 0o600);
    assert!(temp_files_for(&p).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 2. `.prev`
// ---------------------------------------------------------------------------------------------

#[test]
fn second_write_keeps_the_first_token_as_prev() {
    let tmp = tempfile::tempdir().unwrap();
    let primary = tmp.path().join("upstox_token.json");
    let backup = tmp.path().join("bk").join("upstox_token.json");
    let store = TokenStore::new(&primary, [backup.clone()]);
    let prev = store.prev_path();
    assert_eq!(prev, tmp.path().join("upstox_token.json.prev"));

    let t1 = token("eyJ.token-one.sig", base() + hours(20));
    let t2 = token("eyJ.token-two.sig", base() + hours(44));

    assert!(!store.write(&t1).unwrap().prev_kept);
    assert!(!prev.exists());

    let r = store.write(&t2).unwrap();
    assert!(r.prev_kept);
    assert_eq!(r.set_aside, None);
    assert!(r.backup_failures.is_empty());
    assert_eq!(fs::read(&prev).unwrap(), json(&t1));
    assert_eq!(mode(&prev), 0o600);
    assert_same_token(&prev, &t1);
    assert_eq!(fs::read(&primary).unwrap(), json(&t2));
    assert_eq!(fs::read(&backup).unwrap(), json(&t2));

    // The same token again: `.prev` still holds the first one.
    let r = store.write(&t2).unwrap();
    assert!(!r.prev_kept);
    assert_eq!(fs::read(&prev).unwrap(), json(&t1));
    assert_eq!(fs::read(&primary).unwrap(), json(&t2));

    // The same access token with new details (say a later expiry): still not a new `.prev`,
    // but the primary and the backup are updated.
    let t2b = token("eyJ.token-two.sig", base() + hours(45));
    let r = store.write(&t2b).unwrap();
    assert!(!r.prev_kept);
    assert_eq!(fs::read(&prev).unwrap(), json(&t1));
    assert_eq!(fs::read(&primary).unwrap(), json(&t2b));
    assert_eq!(fs::read(&backup).unwrap(), json(&t2b));

    // A third token moves the second one into `.prev`.
    let t3 = token("eyJ.token-three.sig", base() + hours(68));
    assert!(store.write(&t3).unwrap().prev_kept);
    assert_eq!(fs::read(&prev).unwrap(), json(&t2b));
    assert_eq!(mode(&prev), 0o600);
    assert_same_token(&primary, &t3);
    assert!(temp_files_for(&primary).is_empty());
    assert!(temp_files_for(&prev).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3. An unreadable primary is set aside, not destroyed
// ---------------------------------------------------------------------------------------------

#[test]
fn unreadable_primary_is_set_aside_byte_for_byte() {
    let garbage_cases: [&[u8]; 3] = [
        b"{\"format\":1,\"access_token\":\"eyJ.cut-sho", // cut short
        b"\xff\xfe\x00 not utf-8 \x80\x81\n",            // not text
        b"this is not a token file\nat all\n",           // text, not a token
    ];
    for garbage in garbage_cases {
        let tmp = tempfile::tempdir().unwrap();
        let primary = tmp.path().join("upstox_token.json");
        fs::write(&primary, garbage).unwrap();
        set_mode(&primary, 0o644);
        let store = TokenStore::new(&primary, []);
        assert!(
            read_token_file(&primary).is_err(),
            "the case must be unreadable"
        );

        let t = token("eyJ.fresh.sig", base() + hours(20));
        let r = store.write(&t).unwrap();
        let aside = store.set_aside_path();
        assert_eq!(aside, tmp.path().join("upstox_token.json.unreadable"));
        assert_eq!(r.set_aside.as_deref(), Some(aside.as_path()));
        assert!(!r.prev_kept);
        assert_eq!(fs::read(&aside).unwrap(), garbage, "set-aside copy differs");
        assert_eq!(mode(&aside), 0o600);
        assert_eq!(fs::read(&primary).unwrap(), json(&t));
        assert_eq!(mode(&primary), 0o600);
        assert!(
            !store.prev_path().exists(),
            "garbage is not a previous token"
        );
        assert!(temp_files_for(&primary).is_empty());
        assert!(temp_files_for(&aside).is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Failures
// ---------------------------------------------------------------------------------------------

#[test]
fn unwritable_backup_is_reported_and_primary_still_written() {
    let tmp = tempfile::tempdir().unwrap();
    let primary = tmp.path().join("upstox_token.json");
    let blocker = tmp.path().join("blocker");
    fs::write(&blocker, b"a regular file, not a folder\n").unwrap();
    let bad = blocker.join("upstox_token.json");
    let good = tmp.path().join("good").join("upstox_token.json");
    // The failing backup comes first: the ones after it are still written.
    let store = TokenStore::new(&primary, [bad.clone(), good.clone()]);

    let t = token("eyJ.token.sig", base() + hours(20));
    let r = store
        .write(&t)
        .expect("a failing backup does not fail the write");
    assert_eq!(r.backup_failures.len(), 1, "{:?}", r.backup_failures);
    assert_eq!(r.backup_failures[0].0, bad);
    // The path is the pair's first half; the reason is the system's, and does not claim the
    // token file was left alone (it was just written).
    assert!(
        r.backup_failures[0].1.contains("Not a directory")
            && !r.backup_failures[0].1.contains("untouched"),
        "the reason: {}",
        r.backup_failures[0].1
    );
    assert_eq!(fs::read(&primary).unwrap(), json(&t));
    assert_eq!(mode(&primary), 0o600);
    assert_eq!(fs::read(&good).unwrap(), json(&t));
    assert_eq!(mode(&good), 0o600);
    assert_eq!(
        fs::read(&blocker).unwrap(),
        b"a regular file, not a folder\n"
    );
}

#[test]
fn unwritable_primary_fails_and_leaves_the_previous_files_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let old = token("eyJ.old-token.sig", base() + hours(20));

    if permission_bits_stop_writes(tmp.path()) {
        // Not root: a read-only folder.
        for (label, new) in [
            // Same access token: no `.prev` copy, the primary write itself fails.
            ("same token", token("eyJ.old-token.sig", base() + hours(21))),
            // A new token: the `.prev` copy (same folder) fails first.
            ("new token", token("eyJ.new-token.sig", base() + hours(44))),
        ] {
            let dir = tmp.path().join(label.replace(' ', "-"));
            fs::create_dir(&dir).unwrap();
            let primary = dir.join("upstox_token.json");
            let backup = tmp.path().join(format!("{label}-backup.json"));
            let store = TokenStore::new(&primary, [backup.clone()]);
            store.write(&old).unwrap();
            let before = fs::read(&primary).unwrap();
            let backup_before = fs::read(&backup).unwrap();
            let listing_before = files_with_prefix(&dir, "");

            set_mode(&dir, 0o500);
            let _guard = RestoreMode(dir.clone());
            let err = store.write(&new).expect_err("a read-only folder must fail");
            match &err {
                StoreError::Write { path, .. } => {
                    assert!(
                        path == &primary || path == &store.prev_path(),
                        "{label}: error names {}",
                        path.display()
                    );
                    if label == "same token" {
                        assert_eq!(path, &primary);
                    }
                }
                other => panic!("{label}: expected StoreError::Write, got {other:?}"),
            }
            assert!(err.to_string().contains("untouched"), "{err}");
            assert_eq!(
                fs::read(&primary).unwrap(),
                before,
                "{label}: primary changed"
            );
            assert_eq!(mode(&primary), 0o600);
            assert_eq!(
                fs::read(&backup).unwrap(),
                backup_before,
                "{label}: a failed write must not touch the backups"
            );
            assert_eq!(files_with_prefix(&dir, ""), listing_before, "{label}");
        }
    } else {
        // Root: permission bits do not stop writes. The primary's folder is a regular file.
        let blocker = tmp.path().join("blocker");
        fs::write(&blocker, b"not a folder\n").unwrap();
        let primary = blocker.join("upstox_token.json");
        let backup = tmp.path().join("backup.json");
        let store = TokenStore::new(&primary, [backup.clone()]);
        let err = store
            .write(&old)
            .expect_err("a primary in a file must fail");
        // The lock file beside the primary is the first thing that cannot be created.
        match &err {
            StoreError::Lock { path, source } => {
                assert_eq!(path, &store.lock_path());
                assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory);
            }
            other => panic!("expected StoreError::Lock, got {other:?}"),
        }
        assert!(
            err.to_string().contains(&primary.display().to_string()),
            "{err}"
        );
        // With the lock taken care of, reading the current primary fails first.
        let err = store
            .write_locked(&old)
            .expect_err("a primary in a file must fail");
        match &err {
            StoreError::Read { path, reason } => {
                assert_eq!(path, &primary);
                assert!(reason.contains("Not a directory"), "{reason}");
            }
            other => panic!("expected StoreError::Read, got {other:?}"),
        }
        assert_eq!(fs::read(&blocker).unwrap(), b"not a folder\n");
        assert!(
            !backup.exists(),
            "backups are written only after the primary"
        );
    }

    // Run as any user: a primary that is a non-empty folder cannot be replaced; its content is
    // left as it was and no temp file is left behind.
    let dir = tmp.path().join("folder-primary");
    let primary = dir.join("upstox_token.json");
    fs::create_dir_all(&primary).unwrap();
    fs::write(primary.join("keep.txt"), b"keep me\n").unwrap();
    let store = TokenStore::new(&primary, []);
    let err = store.write(&old).expect_err("cannot replace a folder");
    match &err {
        StoreError::Read { path, reason } => {
            assert_eq!(path, &primary);
            assert!(reason.contains("not a regular file"), "{reason}");
        }
        other => panic!("expected StoreError::Read, got {other:?}"),
    }
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(fs::read(primary.join("keep.txt")).unwrap(), b"keep me\n");
    assert!(temp_files_for(&primary).is_empty());
}

#[test]
fn failed_prev_copy_aborts_the_write_and_changes_nothing() {
    // Works as root too: `.prev` is a non-empty folder, so keeping the old token fails, and the
    // write must stop before touching the primary or the backups.
    let tmp = tempfile::tempdir().unwrap();
    let primary = tmp.path().join("upstox_token.json");
    let backup = tmp.path().join("bk").join("upstox_token.json");
    let store = TokenStore::new(&primary, [backup.clone()]);
    let old = token("eyJ.old-token.sig", base() + hours(20));
    store.write(&old).unwrap();
    fs::create_dir(store.prev_path()).unwrap();
    fs::write(store.prev_path().join("x"), b"x").unwrap();

    let new = token("eyJ.new-token.sig", base() + hours(44));
    let err = store.write(&new).expect_err("`.prev` cannot be written");
    match &err {
        StoreError::NotPlain { path, what } => {
            assert_eq!(path, &store.prev_path());
            assert_eq!(*what, "not a regular file");
        }
        other => panic!("expected StoreError::NotPlain, got {other:?}"),
    }
    assert_eq!(fs::read(&primary).unwrap(), json(&old));
    assert_eq!(fs::read(&backup).unwrap(), json(&old));
    assert!(temp_files_for(&primary).is_empty());
    assert!(temp_files_for(&store.prev_path()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 5. restore()
// ---------------------------------------------------------------------------------------------

/// A primary in `dir`, `n` backups in folders of their own.
fn restore_layout(dir: &Path, n: usize) -> (PathBuf, Vec<PathBuf>) {
    let primary = dir.join("upstox_token.json");
    let backups = (1..=n)
        .map(|i| dir.join(format!("backup{i}")).join("token-copy.json"))
        .collect();
    (primary, backups)
}

fn put(p: &Path, bytes: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

#[test]
fn restore_with_a_readable_primary_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let now = base();
    let (primary, backups) = restore_layout(tmp.path(), 1);
    let store = TokenStore::new(&primary, backups.clone());
    let current = json(&token("eyJ.current.sig", now + hours(3)));
    let newer = json(&token("eyJ.newer.sig", now + hours(20)));
    put(&primary, &current);
    set_mode(&primary, 0o640);
    put(&backups[0], &newer);
    put(&store.prev_path(), &newer);

    assert_eq!(store.restore(now).unwrap(), RestoreOutcome::Present);
    assert_eq!(fs::read(&primary).unwrap(), current);
    assert_eq!(mode(&primary), 0o640, "a present primary is not rewritten");
    assert_eq!(fs::read(&backups[0]).unwrap(), newer);
    assert_eq!(fs::read(store.prev_path()).unwrap(), newer);
    assert!(!store.set_aside_path().exists());

    // A readable primary that has expired is still "present": restore only replaces a missing
    // or unreadable one.
    let expired = json(&token("eyJ.expired.sig", now - hours(1)));
    put(&primary, &expired);
    assert_eq!(store.restore(now).unwrap(), RestoreOutcome::Present);
    assert_eq!(fs::read(&primary).unwrap(), expired);
}

#[test]
fn restore_missing_primary_from_the_latest_unexpired_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let now = base();
    let (primary, backups) = restore_layout(tmp.path(), 4);
    let store = TokenStore::new(&primary, backups.clone());
    // Candidates in the order restore sees them: .prev, backup1..4. The newest unexpired one
    // is neither the first valid nor the last valid one.
    let prev = json(&token("eyJ.prev.sig", now + hours(2)));
    let b1 = json(&token("eyJ.expired.sig", now - hours(1)));
    let b2 = json(&token("eyJ.newest.sig", now + hours(5)));
    let b3 = b"{\"format\":1,\"access_token\":".to_vec(); // garbage
    let b4 = json(&token("eyJ.middle.sig", now + hours(3)));
    put(&store.prev_path(), &prev);
    for (p, bytes) in backups.iter().zip([&b1, &b2, &b3, &b4]) {
        put(p, bytes);
    }

    let outcome = store.restore(now).unwrap();
    assert_eq!(
        outcome,
        RestoreOutcome::Restored {
            from: backups[1].clone(),
            set_aside: None
        }
    );
    assert_eq!(fs::read(&primary).unwrap(), b2);
    assert_eq!(mode(&primary), 0o600);
    assert_same_token(&primary, &token("eyJ.newest.sig", now + hours(5)));
    // Nothing else changed.
    assert_eq!(fs::read(store.prev_path()).unwrap(), prev);
    for (p, bytes) in backups.iter().zip([&b1, &b2, &b3, &b4]) {
        assert_eq!(&fs::read(p).unwrap(), bytes, "{}", p.display());
    }
    assert!(!store.set_aside_path().exists());
    // Restoring again finds the primary present.
    assert_eq!(store.restore(now).unwrap(), RestoreOutcome::Present);

    // `.prev` is a candidate too: with every backup gone, it is the one used.
    fs::remove_file(&primary).unwrap();
    for p in &backups {
        fs::remove_file(p).unwrap();
    }
    assert_eq!(
        store.restore(now).unwrap(),
        RestoreOutcome::Restored {
            from: store.prev_path(),
            set_aside: None
        }
    );
    assert_eq!(fs::read(&primary).unwrap(), prev);
}

#[test]
fn restore_garbage_primary_sets_it_aside_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let now = base();
    let (primary, backups) = restore_layout(tmp.path(), 1);
    let store = TokenStore::new(&primary, backups.clone());
    let garbage = b"\x00\x01{{ half a token".to_vec();
    let good = json(&token("eyJ.backup.sig", now + hours(10)));
    put(&primary, &garbage);
    put(&backups[0], &good);

    let outcome = store.restore(now).unwrap();
    assert_eq!(
        outcome,
        RestoreOutcome::Restored {
            from: backups[0].clone(),
            set_aside: Some(store.set_aside_path())
        }
    );
    assert_eq!(fs::read(store.set_aside_path()).unwrap(), garbage);
    assert_eq!(mode(&store.set_aside_path()), 0o600);
    assert_eq!(fs::read(&primary).unwrap(), good);
    assert_eq!(mode(&primary), 0o600);
    assert_eq!(fs::read(&backups[0]).unwrap(), good);
}

#[test]
fn restore_with_only_expired_or_garbage_backups_restores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let now = base();
    let (primary, backups) = restore_layout(tmp.path(), 3);
    let store = TokenStore::new(&primary, backups.clone());
    put(
        &store.prev_path(),
        &json(&token("eyJ.prev.sig", now - hours(20))),
    );
    // Expiring exactly now counts as expired.
    put(&backups[0], &json(&token("eyJ.at-now.sig", now)));
    put(&backups[1], &json(&token("eyJ.old.sig", now - hours(1))));
    put(&backups[2], b"not json, not a token\n");

    assert_eq!(
        store.restore(now).unwrap(),
        RestoreOutcome::NothingToRestore
    );
    assert!(!primary.exists(), "no primary may be created");
    assert!(temp_files_for(&primary).is_empty());
    assert!(!store.set_aside_path().exists());

    // A garbage primary with nothing to restore is left exactly as it was: nothing is copied
    // aside (a daemon restarting in a loop must not pile up copies).
    let garbage = b"{ garbage".to_vec();
    put(&primary, &garbage);
    assert_eq!(
        store.restore(now).unwrap(),
        RestoreOutcome::NothingToRestore
    );
    assert_eq!(
        store.restore(now).unwrap(),
        RestoreOutcome::NothingToRestore
    );
    assert_eq!(fs::read(&primary).unwrap(), garbage);
    assert!(!store.set_aside_path().exists());
}

#[test]
fn restore_removes_stale_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let now = base();
    let (primary, backups) = restore_layout(tmp.path(), 1);
    let store = TokenStore::new(&primary, backups.clone());
    put(
        &backups[0],
        &json(&token("eyJ.backup.sig", now + hours(10))),
    );

    let stale = [
        tmp.path().join(".upstox_token.json.tmpAbC123"),
        tmp.path().join(".upstox_token.json.tmp"),
        backups[0]
            .parent()
            .unwrap()
            .join(".token-copy.json.tmpZZZ999"),
    ];
    let unrelated = [
        tmp.path().join(".other.json.tmp123"),
        tmp.path().join("upstox_token.json.tmp123"), // not hidden: not ours
        tmp.path().join(".upstox_token.jsonXtmp1"),
    ];
    for p in stale.iter().chain(&unrelated) {
        put(p, b"{\"format\":1,\"acc");
    }

    // Missing primary: temp files go, the backup is restored.
    assert_eq!(
        store.restore(now).unwrap(),
        RestoreOutcome::Restored {
            from: backups[0].clone(),
            set_aside: None
        }
    );
    for p in &stale {
        assert!(!p.exists(), "{} should be removed", p.display());
    }
    for p in &unrelated {
        assert!(p.exists(), "{} is not a temp file of ours", p.display());
    }

    // Present primary: temp files still go.
    put(&stale[0], b"partial");
    put(&stale[2], b"partial");
    assert_eq!(store.restore(now).unwrap(), RestoreOutcome::Present);
    assert!(!stale[0].exists());
    assert!(!stale[2].exists());
    assert!(temp_files_for(&primary).is_empty());
    assert!(temp_files_for(&backups[0]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 6. The lock
// ---------------------------------------------------------------------------------------------

#[test]
fn held_lock_makes_another_handle_report_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let primary = tmp.path().join("upstox_token.json");
    let store = TokenStore::new(&primary, []);
    let lock_path = store.lock_path();
    assert_eq!(lock_path, tmp.path().join("upstox_token.json.lock"));
    let pid = std::process::id();

    let held = store.lock(Duration::from_millis(200)).expect("first lock");
    assert_eq!(mode(&lock_path), 0o600);
    let content = fs::read_to_string(&lock_path).unwrap();
    assert!(
        content.contains(&format!("process {pid} ")),
        "lock file content: {content:?}"
    );

    // std's File::try_lock is flock(2): per open file description, so two opens in one
    // process conflict.
    {
        let a = fs::File::open(&lock_path).unwrap();
        let b = fs::File::open(&lock_path).unwrap();
        // `held` already has it.
        assert!(matches!(
            a.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(a);
        assert!(matches!(
            b.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
    }

    let other = TokenStore::new(&primary, []);
    let started = Instant::now();
    let err = other
        .lock(Duration::from_millis(200))
        .expect_err("the lock is held");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    match &err {
        StoreError::Locked {
            token,
            lock,
            holder,
        } => {
            assert_eq!(token, &primary);
            assert_eq!(lock, &lock_path);
            assert!(holder.contains(&format!("process {pid} ")), "{holder}");
            // Its time reads as every time for people does: IST, labelled.
            let since = holder.rsplit(" since ").next().unwrap();
            assert!(
                chrono::NaiveDateTime::parse_from_str(since, "%Y-%m-%d %H:%M:%S IST").is_ok(),
                "{holder}"
            );
        }
        other => panic!("expected StoreError::Locked, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&lock_path.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("process {pid}")), "{msg}");
    assert!(msg.contains(&primary.display().to_string()), "{msg}");

    // The same handle locking again conflicts too (each lock() opens the file anew).
    assert!(matches!(
        store.lock(Duration::from_millis(0)),
        Err(StoreError::Locked { .. })
    ));

    drop(held);
    let again = other
        .lock(Duration::from_millis(200))
        .expect("free after drop");
    assert!(
        fs::read_to_string(&lock_path)
            .unwrap()
            .contains(&format!("process {pid} "))
    );
    // And while `again` is held, the first handle is the one kept out.
    assert!(matches!(
        store.lock(Duration::from_millis(0)),
        Err(StoreError::Locked { .. })
    ));
    drop(again);
    store.lock(Duration::from_millis(0)).expect("free again");
}

#[test]
fn lock_waits_for_a_holder_that_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let primary = tmp.path().join("upstox_token.json");
    let store = TokenStore::new(&primary, []);
    let held = store.lock(Duration::ZERO).unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        drop(held);
    });
    let started = Instant::now();
    let other = TokenStore::new(&primary, []);
    let lock = other
        .lock(Duration::from_secs(5))
        .expect("the holder finishes within the wait");
    assert!(started.elapsed() >= Duration::from_millis(100));
    releaser.join().unwrap();
    // Once that lock is dropped too, the first handle can write.
    drop(lock);
    let t = token("eyJ.after-lock.sig", base() + hours(5));
    store.write(&t).unwrap();
    assert_eq!(fs::read(&primary).unwrap(), json(&t));
}

// ---------------------------------------------------------------------------------------------
// 7. Crash safety: a writer SIGKILLed at random moments never leaves a corrupt file
// ---------------------------------------------------------------------------------------------

const CRASH_DIR_ENV: &str = "TOKENWATCH_CRASH_DIR";
const CRASH_ITERATIONS_ENV: &str = "TOKENWATCH_CRASH_ITERATIONS";

fn crash_base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

fn crash_token(n: i64) -> Token {
    token(
        &format!("eyJ.crash-token-{n}.sig"),
        crash_base() + ChronoDuration::seconds(n),
    )
}

fn crash_seq(t: &Token) -> i64 {
    (t.expires_at - crash_base()).num_seconds()
}

fn crash_layout(dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    (
        dir.join("upstox_token.json"),
        vec![
            dir.join("backup-a").join("upstox_token.json"),
            dir.join("backup-b").join("token-copy.json"),
        ],
    )
}

/// The child process of [`killed_writer_never_leaves_a_corrupt_file`]: writes tokens forever,
/// continuing the sequence from the current primary, and reports each completed write.
#[test]
#[ignore = "helper process for the crash test"]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let (primary, backups) = crash_layout(Path::new(&dir));
    let store = TokenStore::new(&primary, backups);
    let mut n = match read_token_file(&primary) {
        Ok(Some(t)) => crash_seq(&t) + 1,
        Ok(None) => 0,
        Err(e) => panic!("the crash child found an unreadable primary: {e}"),
    };
    let mut out = std::io::stdout();
    loop {
        let report = store.write(&crash_token(n)).expect("child write");
        assert!(
            report.backup_failures.is_empty() && report.set_aside.is_none(),
            "{report:?}"
        );
        writeln!(out, "done {n}").unwrap();
        out.flush().unwrap();
        n += 1;
    }
}

/// Kills the child if the test panics before it does.
/// Numbers from complete `done <n>` lines (a line cut by the kill is ignored). libtest may
/// print "test crash_child_writer ... " on the same line as the first report.
fn done_numbers(stdout: &str) -> Vec<i64> {
    let mut lines: Vec<&str> = stdout.split('\n').collect();
    lines.pop(); // after the last '\n': empty or incomplete
    lines
        .iter()
        .filter_map(|l| {
            let i = l.rfind("done ")?;
            l[i + 5..].trim().parse().ok()
        })
        .collect()
}

#[test]
fn killed_writer_never_leaves_a_corrupt_file() {
    let iterations: u32 = std::env::var(CRASH_ITERATIONS_ENV)
        .ok()
        .map(|v| v.parse().expect("TOKENWATCH_CRASH_ITERATIONS is a number"))
        .unwrap_or(60);
    // On the build's disk rather than a tmpfs, so fsync does real work and kills land mid-write.
    // (Falls back to the system temp folder where that is not writable.)
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let (primary, backups) = crash_layout(tmp.path());
    let store = TokenStore::new(&primary, backups.clone());
    let exe = std::env::current_exe().unwrap();

    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test: {iterations} iterations, seed {seed}");
    let mut next_delay_ms = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        5 + (seed >> 33) % 36
    };

    // The sequence number of the primary (None while there is none).
    let mut floor: Option<i64> = None;
    // The last write a child reported complete.
    let mut last_completed: Option<i64> = None;
    let mut total_done = 0usize;
    let mut iterations_with_writes = 0u32;
    let started = Instant::now();

    for i in 0..iterations {
        let child = Command::new(&exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR_ENV, tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the crash child");
        let mut child = KillOnDrop(child);
        let delay = next_delay_ms();
        std::thread::sleep(Duration::from_millis(delay));
        child.0.kill().expect("SIGKILL the child");
        let status = child.0.wait().unwrap();
        let mut stdout = String::new();
        child
            .0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let mut stderr = String::new();
        child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let ctx = format!(
            "iteration {i}, killed after {delay} ms ({status}); child stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "the child failed: {ctx}");

        let done = done_numbers(&stdout);
        // The child continues the sequence from the primary it found.
        if let Some(&first) = done.first() {
            assert_eq!(first, floor.map_or(0, |f| f + 1), "{ctx}");
            assert!(done.windows(2).all(|w| w[1] == w[0] + 1), "{ctx}");
            iterations_with_writes += 1;
        }
        total_done += done.len();
        let last_done = done.last().copied();

        // The primary: always parses, 0600, never older than the last completed write, and at
        // most the one write that was in flight newer.
        let lowest_allowed = last_done.or(floor);
        let primary_seq = if primary.exists() {
            assert_eq!(mode(&primary), 0o600, "{ctx}");
            let t = match read_token_file(&primary) {
                Ok(Some(t)) => t,
                other => panic!("the primary does not parse ({other:?}): {ctx}"),
            };
            let seq = crash_seq(&t);
            assert!(
                t.access_token.same_as(&crash_token(seq).access_token),
                "{ctx}"
            );
            if let Some(low) = lowest_allowed {
                assert!(
                    seq == low || seq == low + 1,
                    "primary is write {seq}, last completed write {low}: {ctx}"
                );
            } else {
                assert_eq!(seq, 0, "{ctx}");
            }
            Some(seq)
        } else {
            assert!(lowest_allowed.is_none(), "the primary vanished: {ctx}");
            None
        };

        // Backups and `.prev`: whichever exist parse, are 0600, and are consistent with the
        // primary. Every completed write wrote every backup; a backup is written after the
        // primary.
        if last_done.is_some() {
            last_completed = last_done;
        }
        for b in &backups {
            if !b.exists() {
                assert!(
                    last_completed.is_none(),
                    "{} is missing: {ctx}",
                    b.display()
                );
                continue;
            }
            assert_eq!(mode(b), 0o600, "{} {ctx}", b.display());
            let t = match read_token_file(b) {
                Ok(Some(t)) => t,
                other => panic!("{} does not parse ({other:?}): {ctx}", b.display()),
            };
            let seq = crash_seq(&t);
            let p = primary_seq.expect("a backup without a primary");
            assert!(
                seq <= p && last_completed.is_none_or(|low| seq >= low),
                "{} is write {seq}, primary {p}, last completed {last_completed:?}: {ctx}",
                b.display()
            );
        }
        let prev = store.prev_path();
        if prev.exists() {
            assert_eq!(mode(&prev), 0o600, "{ctx}");
            let t = match read_token_file(&prev) {
                Ok(Some(t)) => t,
                other => panic!(".prev does not parse ({other:?}): {ctx}"),
            };
            let p = primary_seq.expect(".prev without a primary");
            let seq = crash_seq(&t);
            assert!(
                seq == p || seq + 1 == p,
                ".prev is {seq}, primary {p}: {ctx}"
            );
        }
        assert!(!store.set_aside_path().exists(), "{ctx}");

        floor = primary_seq;
    }
    let elapsed = started.elapsed();

    let stale_before: Vec<PathBuf> = std::iter::once(&primary)
        .chain(&backups)
        .flat_map(|p| temp_files_for(p))
        .collect();
    let prev_stale_before = temp_files_for(&store.prev_path());
    eprintln!(
        "crash test: {iterations} kills in {elapsed:.2?}; {iterations_with_writes} children completed \
         writes, {total_done} writes in all; last reported write {last_completed:?}; {} stale temp files beside the \
         primary/backups and {} beside .prev before restore",
        stale_before.len(),
        prev_stale_before.len()
    );
    if iterations >= 10 {
        assert!(
            total_done > 0,
            "no child ever completed a write: the test checked nothing"
        );
    }

    assert_eq!(
        store.restore(crash_base()).unwrap(),
        RestoreOutcome::Present
    );
    let tmp_left = files_with_prefix(tmp.path(), ".upstox_token.json.tmp");
    assert!(tmp_left.is_empty(), "left after restore: {tmp_left:?}");
    for b in &backups {
        let left = temp_files_for(b);
        assert!(left.is_empty(), "left after restore: {left:?}");
    }
    // Temp files of an interrupted `.prev` write are cleaned up too.
    let prev_left = temp_files_for(&store.prev_path());
    assert!(prev_left.is_empty(), "left after restore: {prev_left:?}");
}

#[test]
fn a_fifo_primary_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let primary = tmp.path().join("upstox_token.json");
    let made = std::process::Command::new("mkfifo").arg(&primary).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo is not available; skipping");
        return;
    }
    let store = TokenStore::new(&primary, []);
    let now = base();
    match store.restore(now) {
        Err(StoreError::Read { path, reason }) => {
            assert_eq!(path, primary);
            assert!(reason.contains("not a regular file"), "{reason}");
        }
        other => panic!("expected StoreError::Read, got {other:?}"),
    }
    assert!(matches!(
        store.write(&token("eyJ.a.b", base() + hours(5))),
        Err(StoreError::Read { .. })
    ));
}

#[test]
fn a_second_unreadable_primary_does_not_destroy_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let primary = tmp.path().join("upstox_token.json");
    let store = TokenStore::new(&primary, []);
    fs::write(&primary, b"first garbage").unwrap();
    let r = store
        .write(&token("eyJ.one.sig", base() + hours(5)))
        .unwrap();
    assert_eq!(r.set_aside, Some(store.set_aside_path()));
    fs::write(&primary, b"second garbage").unwrap();
    let r = store
        .write(&token("eyJ.two.sig", base() + hours(6)))
        .unwrap();
    let second = tmp.path().join("upstox_token.json.unreadable.1");
    assert_eq!(r.set_aside.as_deref(), Some(second.as_path()));
    assert_eq!(fs::read(store.set_aside_path()).unwrap(), b"first garbage");
    assert_eq!(fs::read(&second).unwrap(), b"second garbage");
    assert_eq!(mode(&second), 0o600);
}

#[test]
fn a_symlinked_token_path_is_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("engine").join("token.json");
    fs::create_dir_all(real.parent().unwrap()).unwrap();
    let link = tmp.path().join("upstox_token.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let store = TokenStore::new(&link, []);
    let t = token("eyJ.linked.sig", base() + hours(5));
    store.write(&t).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    assert_eq!(fs::read(&real).unwrap(), json(&t));
    assert_eq!(mode(&real), 0o600);
}

#[test]
fn a_mtime_dated_primary_is_kept_as_prev_not_set_aside() {
    // A raw, non-JWT token gets its expiry from the file's mtime: still a valid token.
    let tmp = tempfile::tempdir().unwrap();
    let primary = tmp.path().join("upstox_token.json");
    fs::write(&primary, b"opaque-token-0123456789abcdef\n").unwrap();
    let store = TokenStore::new(&primary, []);
    let r = store
        .write(&token("eyJ.new.sig", base() + hours(5)))
        .unwrap();
    assert!(r.prev_kept);
    assert_eq!(r.set_aside, None);
    let prev = tokenwatch::token::read_token_file(&store.prev_path())
        .unwrap()
        .unwrap();
    assert_eq!(prev.access_token.expose(), "opaque-token-0123456789abcdef");
}

#[test]
fn restore_never_takes_another_users_token_from_a_shared_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let primary = tmp.path().join("a/upstox_token.json");
    let own_backup = tmp.path().join("a/backup/upstox_token.json");
    let shared = tmp.path().join("shared/upstox_token.json");
    let store = TokenStore::new(&primary, [own_backup.clone(), shared.clone()]);
    let now = base();
    let mut mine = token("eyJ.mine.sig", now + hours(10));
    mine.user_id = Some("AB1234".into());
    let mut theirs = token("eyJ.theirs.sig", now + hours(12));
    theirs.user_id = Some("CD5678".into());
    fs::create_dir_all(own_backup.parent().unwrap()).unwrap();
    fs::create_dir_all(shared.parent().unwrap()).unwrap();
    fs::write(&own_backup, json(&mine)).unwrap();
    fs::write(&shared, json(&theirs)).unwrap();

    // No .prev: two users among the backups is ambiguous, nothing is restored.
    assert_eq!(
        store.restore(now).unwrap(),
        RestoreOutcome::NothingToRestore
    );
    assert!(!primary.exists());

    // .prev names the owner: only their token qualifies, though the other lives longer.
    let mut old = token("eyJ.old.sig", now + hours(1));
    old.user_id = Some("AB1234".into());
    fs::write(store.prev_path(), json(&old)).unwrap();
    assert_eq!(
        store.restore(now).unwrap(),
        RestoreOutcome::Restored {
            from: own_backup.clone(),
            set_aside: None
        }
    );
    let restored = tokenwatch::token::read_token_file(&primary)
        .unwrap()
        .unwrap();
    assert_eq!(restored.user_id.as_deref(), Some("AB1234"));
}

#[test]
fn an_existing_lock_file_with_a_loose_mode_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let primary = tmp.path().join("upstox_token.json");
    let lock = tmp.path().join("upstox_token.json.lock");
    fs::write(&lock, b"").unwrap();
    fs::set_permissions(&lock, fs::Permissions::from_mode(0o644)).unwrap();
    let store = TokenStore::new(&primary, []);
    let held = store.lock(Duration::from_millis(200)).unwrap();
    assert_eq!(mode(&lock), 0o600, "the lock file kept its loose mode");
    drop(held);
    assert!(
        !lock.exists(),
        "the lock file stayed after the lock was let go"
    );
    store
        .write(&token("eyJ.token.sig", base() + hours(20)))
        .unwrap();
    assert_eq!(mode(&primary), 0o600);
}

// ---------------------------------------------------------------------------------------------
// The broker a token file is for
// ---------------------------------------------------------------------------------------------

#[test]
fn every_write_names_the_broker_and_a_file_without_it_is_upstox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upstox_token.json");
    let store = TokenStore::new(&path, []);
    store.write(&token("tok-one", base() + hours(10))).unwrap();
    let written: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(written["broker"], "upstox");
    assert_eq!(written["format"], 1);
    // A file from before brokers (no "broker") is an Upstox file, for Upstox accounts.
    fs::write(
        &path,
        r#"{"format":1,"access_token":"tok-old","expires_at":"2026-11-27T03:30:00+05:30"}"#,
    )
    .unwrap();
    let t = store.read().unwrap().unwrap();
    assert_eq!(t.broker, Broker::Upstox);
    // A Kite store writes "kite".
    let kite_path = dir.path().join("kite_token.json");
    let kite = TokenStore::new(&kite_path, []).with_broker(Broker::Kite);
    let kt = Token {
        broker: Broker::Kite,
        ..token("kite-tok", base() + hours(10))
    };
    kite.write(&kt).unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&fs::read(&kite_path).unwrap()).unwrap();
    assert_eq!(written["broker"], "kite");
    assert_eq!(kite.read().unwrap().unwrap().broker, Broker::Kite);
}

#[test]
fn another_brokers_file_is_refused_and_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.json");
    let backup = dir.path().join("backup/token.json");
    // An Upstox token sits in the file; the account is now set to Kite.
    TokenStore::new(&path, [])
        .write(&token("upstox-tok", base() + hours(10)))
        .unwrap();
    let before = fs::read(&path).unwrap();
    let kite = TokenStore::new(&path, [backup.clone()]).with_broker(Broker::Kite);
    let e = kite.read().unwrap_err().to_string();
    assert!(
        e.contains("token for Upstox") && e.contains("Zerodha Kite") && e.contains("token.path"),
        "{e}"
    );
    assert!(!e.contains("upstox-tok"), "{e}");
    // A Kite token is not stored over it: nothing written, no backup, no .prev.
    let kt = Token {
        broker: Broker::Kite,
        ..token("kite-tok", base() + hours(10))
    };
    let e = kite.write(&kt).unwrap_err();
    assert!(matches!(e, StoreError::OtherBroker { .. }), "{e:?}");
    assert!(e.to_string().contains("nothing was written"), "{e}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert!(!backup.exists());
    assert!(!kite.prev_path().exists());
    // Nor is restoring at start: the file is readable, so it stays.
    assert!(matches!(
        kite.restore(base()).unwrap(),
        RestoreOutcome::Present
    ));
    assert_eq!(fs::read(&path).unwrap(), before);
    // And a token of another broker than the store's is never written by it.
    let upstox = TokenStore::new(dir.path().join("u.json"), []);
    assert!(matches!(
        upstox.write(&kt).unwrap_err(),
        StoreError::OtherBroker { .. }
    ));
    assert!(!dir.path().join("u.json").exists());
}

#[test]
fn backups_of_another_broker_are_never_restored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kite_token.json");
    let backup = dir.path().join("backup/kite_token.json");
    // The backup holds a live Upstox token (a shared folder); the Kite account has no file.
    TokenStore::new(&backup, [])
        .write(&token("upstox-tok", base() + hours(10)))
        .unwrap();
    let kite = TokenStore::new(&path, [backup.clone()]).with_broker(Broker::Kite);
    assert!(kite.best_backup(base()).is_none());
    assert!(matches!(
        kite.restore(base()).unwrap(),
        RestoreOutcome::NothingToRestore
    ));
    assert!(!path.exists());
    // The Upstox account would use it.
    let upstox = TokenStore::new(dir.path().join("upstox_token.json"), [backup]);
    assert!(upstox.best_backup(base()).is_some());
}
