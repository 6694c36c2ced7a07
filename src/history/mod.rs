//! Each account's history: an append-only log of what happened to its token, kept beside it
//! as `<token file>.history/YYYY-MM-DD.jsonl` (one file per IST day, JSON lines, 0600, in a
//! 0700 folder). It records state changes, every renewal (when, how, how long it took,
//! whether a person had to act), the alerts raised, and per hour the API calls made and the
//! rate-limit answers received. It never holds a token or a secret.
//!
//! - Appending is one `write` of a whole line under an exclusive lock on the day's file, so
//!   two processes watching one account never interleave broken lines; a line torn by a
//!   crash is closed off by the next append and skipped (with a warning) when read.
//! - Days older than `history.keep` (90 days by default) are deleted as days turn.
//! - [`days`] turns the records into one summary and one half-hour timeline per day, for
//!   `tokenwatch history` and the dashboard's `h`.

pub mod days;
pub mod table;

use crate::brokers::ApiError;
use crate::token::TokenState;
use crate::token::expiry::to_ist;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tracing::warn;

/// A day's file stops growing at this size (a runaway would otherwise fill the disk); later
/// records of that day are dropped, with one warning.
pub const MAX_DAY_BYTES: u64 = 2 * 1024 * 1024;
/// A longer line is not one of ours: skipped when read.
const MAX_LINE_BYTES: usize = 16 * 1024;
/// Unreadable lines named per day file; the rest are counted.
const MAX_SKIPPED_NAMED: usize = 5;
/// A failed renewal's reason is kept to this many characters.
const MAX_ERROR_CHARS: usize = 300;
/// `history.keep` when not set.
pub const DEFAULT_KEEP: Duration = Duration::from_secs(90 * 24 * 3600);

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When it happened (written in IST with the offset).
    #[serde(with = "ist_time")]
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A tokenwatch process (dashboard or daemon) started watching the account.
    Started {
        /// Its process id.
        pid: u32,
    },
    /// That process stopped watching.
    Stopped {
        /// Its process id.
        pid: u32,
    },
    /// The token's state changed (starting in a state counts).
    State {
        /// The new state.
        state: TokenState,
        /// The state before, when this process knew one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<TokenState>,
        /// The token's expiry, when there is a token.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "opt_ist_time"
        )]
        expires_at: Option<DateTime<Utc>>,
    },
    /// A renewal or login ended, with a new token or without.
    Renewal(Renewal),
    /// An alert was raised (sent to the configured channels).
    Alert {
        /// The alert's event name (`expired`, `renewed`, ...).
        alert: String,
        /// `info`, `warning` or `critical`.
        level: String,
    },
    /// The API calls this process made in one hour (from `hour`), and how many the broker
    /// answered with a rate limit.
    Calls {
        /// The start of the hour (IST).
        #[serde(with = "ist_time")]
        hour: DateTime<Utc>,
        /// Requests sent to the broker.
        calls: u32,
        /// Of them, answered with a rate limit.
        rate_limited: u32,
    },
    /// A record of a kind this version does not know (written by a newer one): kept out.
    #[serde(other)]
    Unknown,
}

/// A renewal or login that ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Renewal {
    /// A new token was stored.
    pub ok: bool,
    /// How: `browser`, `token-request`, `command`, `totp`, `refresh-token`.
    pub how: String,
    /// A person had to act (log in, approve on the phone, press a key).
    pub person: bool,
    /// From the start of the round or login to its end.
    pub took_ms: u64,
    /// The new token's expiry.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_ist_time"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    /// Why there is no new token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Renewal {
    /// A renewal that ended: `Ok(expiry)` or `Err(why)` (cut to a sane length).
    pub fn ended(
        how: &str,
        person: bool,
        took: Duration,
        result: Result<DateTime<Utc>, &str>,
    ) -> Renewal {
        let (expires_at, error) = match result {
            Ok(exp) => (Some(exp), None),
            Err(why) => (None, Some(why.chars().take(MAX_ERROR_CHARS).collect())),
        };
        Renewal {
            ok: error.is_none(),
            how: how.to_string(),
            person,
            took_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            expires_at,
            error,
        }
    }
}

/// Counts one process's API calls for an account, and the rate-limit answers among them,
/// until they are recorded for the hour.
#[derive(Debug, Default)]
pub struct CallTally {
    calls: AtomicU32,
    rate_limited: AtomicU32,
}

impl CallTally {
    /// Make `call` (one request to the broker), counting it.
    pub async fn count<T>(
        &self,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let result = call.await;
        self.calls.fetch_add(1, Ordering::Relaxed);
        if result.as_ref().err().is_some_and(ApiError::is_rate_limit) {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// The counts so far, `(calls, rate_limited)`, starting again from zero.
    pub fn take(&self) -> (u32, u32) {
        (
            self.calls.swap(0, Ordering::Relaxed),
            self.rate_limited.swap(0, Ordering::Relaxed),
        )
    }
}

/// The history folder of the account whose token file is `token_path`.
pub fn dir_for(token_path: &Path) -> PathBuf {
    let mut s = token_path.as_os_str().to_owned();
    s.push(".history");
    PathBuf::from(s)
}

/// The IST day a time falls on.
pub fn ist_day(t: DateTime<Utc>) -> NaiveDate {
    to_ist(t).date_naive()
}

fn day_file(dir: &Path, day: NaiveDate) -> PathBuf {
    dir.join(format!("{}.jsonl", day.format("%Y-%m-%d")))
}

/// Appends one account's records. A record that cannot be written is logged (once per
/// reason) and dropped: the history never stops the worker.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    keep_days: i64,
    /// The day old files were last deleted for.
    pruned_for: Option<NaiveDate>,
    /// The last write problem, said once.
    problem: Option<String>,
}

impl Recorder {
    /// The recorder for the account whose token file is `token_path`, keeping `keep`.
    pub fn for_token(token_path: &Path, keep: Duration) -> Recorder {
        Recorder {
            dir: dir_for(token_path),
            keep_days: i64::try_from(keep.as_secs() / 86_400)
                .unwrap_or(i64::MAX)
                .max(1),
            pruned_for: None,
            problem: None,
        }
    }

    /// The folder it writes to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Append `event` at `at`.
    pub fn record(&mut self, at: DateTime<Utc>, event: Event) {
        let day = ist_day(at);
        if self.pruned_for != Some(day) {
            self.pruned_for = Some(day);
            self.prune(day);
        }
        let mut line = match serde_json::to_vec(&Record { at, event }) {
            Ok(line) => line,
            Err(e) => return self.trouble(format!("cannot write a history record: {e}")),
        };
        line.push(b'\n');
        match append(&self.dir, day, &line) {
            Ok(()) => self.problem = None,
            Err(e) => self.trouble(e),
        }
    }

    fn trouble(&mut self, why: String) {
        if self.problem.as_deref() != Some(why.as_str()) {
            warn!("History not recorded: {why}");
            self.problem = Some(why);
        }
    }

    /// Delete the day files older than `keep` before `today`.
    fn prune(&mut self, today: NaiveDate) {
        let Some(oldest) = today.checked_sub_days(chrono::Days::new(
            u64::try_from(self.keep_days).unwrap_or(u64::MAX),
        )) else {
            return;
        };
        // Only our own folder: never the target of a link planted in its place.
        if is_link(&self.dir) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(day) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if day < oldest {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Append `line` (one whole record with its newline) to `day`'s file, creating the folder
/// (0700) and the file (0600) when needed.
fn append(dir: &Path, day: NaiveDate, line: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let shown = |e: std::io::Error, what: &str, p: &Path| format!("{what} {}: {e}", p.display());
    if is_link(dir) {
        return Err(format!(
            "{} is a symbolic link; tokenwatch does not write its history through one: remove it",
            dir.display()
        ));
    }
    let new_dir = !dir.is_dir();
    if new_dir {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| shown(e, "cannot create", dir))?;
    }
    let path = day_file(dir, day);
    // Never a wait: no link followed, and a FIFO or device there is refused, not opened.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| shown(e, "cannot open", &path))?;
    let meta = file
        .metadata()
        .map_err(|e| shown(e, "cannot read", &path))?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file; remove it",
            path.display()
        ));
    }
    // One writer at a time: another tokenwatch on this account has its turn first, for a
    // moment; a lock held longer (not by tokenwatch) costs this record, never the worker.
    lock_briefly(&file).map_err(|e| shown(e, "cannot lock", &path))?;
    let len = meta.len();
    if len + line.len() as u64 > MAX_DAY_BYTES {
        return Err(format!(
            "{} is full ({} KiB); the rest of the day is not recorded",
            path.display(),
            MAX_DAY_BYTES / 1024
        ));
    }
    let mut out = Vec::with_capacity(line.len() + 1);
    if len > 0 && !ends_with_newline(&path) {
        // A line torn by a crash: close it, so it stays one unreadable line.
        out.push(b'\n');
    }
    out.extend_from_slice(line);
    if let Err(e) = file.write_all(&out) {
        // A full disk: leave no empty file (or folder) of ours behind.
        if len == 0 && file.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&path);
            if new_dir {
                let _ = std::fs::remove_dir(dir);
            }
        }
        return Err(shown(e, "cannot write", &path));
    }
    Ok(())
}

/// Take `file`'s lock, trying for at most about 100 ms.
fn lock_briefly(file: &std::fs::File) -> std::io::Result<()> {
    for _ in 0..20 {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::WouldBlock,
        "another process holds its lock",
    ))
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return true;
    };
    let mut last = [0u8; 1];
    f.seek(SeekFrom::End(-1)).is_ok() && f.read_exact(&mut last).is_ok() && last[0] == b'\n'
}

/// Records read back for some days.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Loaded {
    /// The last state record before the first day asked for (to start the first day with).
    pub before: Option<Record>,
    /// The records of the days asked for, oldest first.
    pub records: Vec<Record>,
    /// Lines that could not be read, as `2026-12-04.jsonl line 12`.
    pub skipped: Vec<String>,
}

/// How far back [`load`] looks for the state the first day starts in.
const LOOK_BACK_DAYS: u64 = 7;

/// Read the records of the IST days `first..=last` from `dir`, and the last state before
/// `first`. Missing files are empty days; unreadable lines are listed in `skipped`.
pub fn load(dir: &Path, first: NaiveDate, last: NaiveDate) -> Loaded {
    let mut loaded = Loaded::default();
    let mut day = first
        .checked_sub_days(chrono::Days::new(LOOK_BACK_DAYS))
        .unwrap_or(first);
    while day <= last {
        let mut records = read_day(dir, day, &mut loaded.skipped);
        records.sort_by_key(|r| r.at);
        if day < first {
            // The state the window starts in: the last state seen, or a new token stored.
            if let Some(state) = records.into_iter().rev().find(|r| match &r.event {
                Event::State { .. } => true,
                Event::Renewal(renewal) => renewal.ok && renewal.expires_at.is_some(),
                _ => false,
            }) {
                loaded.before = Some(state);
            }
        } else {
            loaded.records.extend(records);
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    loaded
}

/// One day's records, in the file's order.
fn read_day(dir: &Path, day: NaiveDate, skipped: &mut Vec<String>) -> Vec<Record> {
    use std::io::BufRead;
    use std::os::unix::fs::OpenOptionsExt;
    let path = day_file(dir, day);
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // Never a wait on a FIFO or device planted at the name.
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
    else {
        return Vec::new();
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        skipped.push(format!("{name} (not a regular file)"));
        return Vec::new();
    }
    let skipped_before = skipped.len();
    let mut reader = std::io::BufReader::new(file.take(MAX_DAY_BYTES + MAX_LINE_BYTES as u64));
    let mut records = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    let mut unnamed = 0usize;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => {
                skipped.push(format!("{name} after line {number}"));
                break;
            }
        }
        number += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match (text.len() <= MAX_LINE_BYTES)
            .then(|| serde_json::from_slice::<Record>(text).ok())
            .flatten()
        {
            Some(Record {
                event: Event::Unknown,
                ..
            }) => {}
            Some(record) => records.push(record),
            // A few by number, then a count: a file of garbage is not a million names.
            None if skipped.len() - skipped_before < MAX_SKIPPED_NAMED => {
                skipped.push(format!("{name} line {number}"))
            }
            None => unnamed += 1,
        }
    }
    if unnamed > 0 {
        skipped.push(format!("{unnamed} more lines of {name}"));
    }
    records
}

/// Times as `2026-12-05T09:15:00+05:30`.
mod ist_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::timefmt::ist_rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// [`ist_time`] for an optional time.
mod opt_ist_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::ist_time::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => DateTime::parse_from_rfc3339(&text)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        // IST wall time.
        crate::token::expiry::ist()
            .with_ymd_and_hms(2026, 12, d, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn state(s: TokenState) -> Event {
        Event::State {
            state: s,
            from: None,
            expires_at: None,
        }
    }

    #[test]
    fn records_read_back_as_written_in_ist_files_by_ist_day() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("upstox_token.json");
        let mut rec = Recorder::for_token(&token, DEFAULT_KEEP);
        // 00:10 IST on the 5th is still the 4th in UTC: it belongs to the 5th's file.
        rec.record(at(5, 0, 10), state(TokenState::Healthy));
        rec.record(
            at(5, 8, 2),
            Event::Renewal(Renewal::ended(
                "browser",
                true,
                Duration::from_secs(41),
                Ok(at(6, 3, 30)),
            )),
        );
        let file = dir
            .path()
            .join("upstox_token.json.history/2026-12-05.jsonl");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with(
                r#"{"at":"2026-12-05T00:10:00+05:30","event":"state","state":"healthy"}"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#""expires_at":"2026-12-06T03:30:00+05:30""#),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
        let loaded = load(rec.dir(), ist_day(at(5, 0, 0)), ist_day(at(5, 0, 0)));
        assert_eq!(loaded.records.len(), 2);
        assert_eq!(loaded.records[0].at, at(5, 0, 10));
        assert!(loaded.skipped.is_empty());
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_next_record_starts_on_its_own_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::for_token(&dir.path().join("t.json"), DEFAULT_KEEP);
        rec.record(at(5, 9, 0), state(TokenState::Healthy));
        let file = rec.dir().join("2026-12-05.jsonl");
        // A crash in the middle of a write.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(br#"{"at":"2026-12-05T09:10:00+05:30","event":"sta"#)
            .unwrap();
        rec.record(at(5, 9, 20), state(TokenState::Expired));
        let loaded = load(rec.dir(), ist_day(at(5, 0, 0)), ist_day(at(5, 0, 0)));
        let states: Vec<_> = loaded.records.iter().map(|r| r.at).collect();
        assert_eq!(states, vec![at(5, 9, 0), at(5, 9, 20)]);
        assert_eq!(loaded.skipped, vec!["2026-12-05.jsonl line 2".to_string()]);
    }

    #[test]
    fn days_older_than_keep_are_deleted_as_days_turn() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("t.json");
        let mut rec = Recorder::for_token(&token, Duration::from_secs(3 * 86_400));
        rec.record(at(1, 12, 0), state(TokenState::Healthy));
        rec.record(at(2, 12, 0), state(TokenState::Healthy));
        std::fs::write(rec.dir().join("notes.txt"), "mine").unwrap();
        let mut later = Recorder::for_token(&token, Duration::from_secs(3 * 86_400));
        later.record(at(5, 12, 0), state(TokenState::Healthy));
        let mut names: Vec<_> = std::fs::read_dir(later.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        // The 2nd is exactly 3 days back and stays; the 1st goes; other files are not ours.
        assert_eq!(names, ["2026-12-02.jsonl", "2026-12-05.jsonl", "notes.txt"]);
    }

    #[test]
    fn the_state_before_the_first_day_is_found_and_unknown_kinds_are_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::for_token(&dir.path().join("t.json"), DEFAULT_KEEP);
        rec.record(at(2, 3, 30), state(TokenState::Expired));
        rec.record(at(3, 8, 0), state(TokenState::Healthy));
        let file = rec.dir().join("2026-12-05.jsonl");
        std::fs::write(
            &file,
            "{\"at\":\"2026-12-05T01:00:00+05:30\",\"event\":\"weather\",\"sky\":\"blue\"}\n",
        )
        .unwrap();
        let loaded = load(rec.dir(), ist_day(at(4, 0, 0)), ist_day(at(5, 0, 0)));
        assert_eq!(loaded.before.map(|r| r.at), Some(at(3, 8, 0)));
        assert!(loaded.records.is_empty());
        assert!(loaded.skipped.is_empty());
    }

    #[test]
    fn a_renewal_the_day_before_is_the_state_the_day_starts_in() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::for_token(&dir.path().join("t.json"), DEFAULT_KEEP);
        rec.record(at(4, 9, 0), state(TokenState::Expired));
        // `tokenwatch login` records its renewal, and no state.
        rec.record(
            at(4, 20, 0),
            Event::Renewal(Renewal::ended(
                "browser",
                true,
                Duration::from_secs(30),
                Ok(at(5, 3, 30)),
            )),
        );
        let loaded = load(rec.dir(), ist_day(at(5, 0, 0)), ist_day(at(5, 0, 0)));
        assert_eq!(loaded.before.map(|r| r.at), Some(at(4, 20, 0)));
    }

    #[test]
    fn two_processes_appending_at_once_never_interleave_lines() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("t.json");
        let threads: Vec<_> = (0..4)
            .map(|n| {
                let token = token.clone();
                std::thread::spawn(move || {
                    let mut rec = Recorder::for_token(&token, DEFAULT_KEEP);
                    for i in 0..200 {
                        rec.record(
                            at(5, 10, 0),
                            Event::Alert {
                                alert: format!("writer-{n}-{i}-{}", "x".repeat(i * 7)),
                                level: "info".into(),
                            },
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let loaded = load(&dir_for(&token), ist_day(at(5, 0, 0)), ist_day(at(5, 0, 0)));
        assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
        assert_eq!(loaded.records.len(), 800);
    }

    #[test]
    fn a_history_folder_that_is_a_link_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        // Someone's old day file there is neither pruned nor joined.
        std::fs::write(elsewhere.join("2020-01-01.jsonl"), "theirs").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("t.json.history")).unwrap();
        let mut rec = Recorder::for_token(&dir.path().join("t.json"), DEFAULT_KEEP);
        rec.record(at(5, 9, 0), state(TokenState::Healthy));
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 1);
        assert!(elsewhere.join("2020-01-01.jsonl").exists());
        assert!(
            rec.problem
                .as_deref()
                .is_some_and(|p| p.contains("symbolic link"))
        );
    }

    #[test]
    fn a_fifo_or_a_held_lock_at_the_day_file_costs_a_record_never_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::for_token(&dir.path().join("t.json"), DEFAULT_KEEP);
        std::fs::create_dir_all(rec.dir()).unwrap();
        let fifo = rec.dir().join("2026-12-05.jsonl");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        rec.record(at(5, 9, 0), state(TokenState::Healthy));
        let loaded = load(rec.dir(), ist_day(at(5, 0, 0)), ist_day(at(5, 0, 0)));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(rec.problem.is_some(), "a FIFO is not written to");
        assert_eq!(loaded.skipped, ["2026-12-05.jsonl (not a regular file)"]);

        // Another process holds the lock (not for a moment): the record is given up.
        rec.record(at(6, 9, 0), state(TokenState::Healthy));
        let day = std::fs::File::open(rec.dir().join("2026-12-06.jsonl")).unwrap();
        day.lock().unwrap();
        let started = std::time::Instant::now();
        rec.record(at(6, 9, 5), state(TokenState::Expired));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            rec.problem
                .as_deref()
                .is_some_and(|p| p.contains("cannot lock"))
        );
        drop(day);
        let loaded = load(rec.dir(), ist_day(at(6, 0, 0)), ist_day(at(6, 0, 0)));
        assert_eq!(loaded.records.len(), 1);
    }

    #[test]
    fn a_file_of_garbage_is_a_few_names_and_a_count() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::for_token(&dir.path().join("t.json"), DEFAULT_KEEP);
        std::fs::create_dir_all(rec.dir()).unwrap();
        std::fs::write(rec.dir().join("2026-12-05.jsonl"), "x\n".repeat(10_000)).unwrap();
        let loaded = load(rec.dir(), ist_day(at(5, 0, 0)), ist_day(at(5, 0, 0)));
        assert_eq!(loaded.skipped.len(), MAX_SKIPPED_NAMED + 1);
        assert_eq!(
            loaded.skipped.last().unwrap(),
            "9995 more lines of 2026-12-05.jsonl"
        );
    }

    #[test]
    fn a_full_day_file_stops_growing() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::for_token(&dir.path().join("t.json"), DEFAULT_KEEP);
        let file = rec.dir().join("2026-12-05.jsonl");
        std::fs::create_dir_all(rec.dir()).unwrap();
        std::fs::write(&file, vec![b'\n'; MAX_DAY_BYTES as usize - 10]).unwrap();
        rec.record(at(5, 9, 0), state(TokenState::Healthy));
        assert_eq!(std::fs::metadata(&file).unwrap().len(), MAX_DAY_BYTES - 10);
        assert!(
            rec.problem
                .as_deref()
                .is_some_and(|p| p.contains("is full"))
        );
    }
}
