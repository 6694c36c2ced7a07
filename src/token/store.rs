//! The token store: the file the trading engine reads, written so that a reader never sees a
//! partial file and a crash never leaves a corrupt one.
//!
//! Every write goes to a temp file in the same folder (created 0600), is fsynced, renamed over
//! the target, and the folder is fsynced. The token being replaced is kept as `<path>.prev`;
//! the new token also goes to every backup path, the same way. Writers hold `<path>.lock`;
//! renewals hold `<path>.login.lock`; both are removed when let go.
//!
//! The token path itself may be a symbolic link (written through: the link stays). The files
//! tokenwatch keeps beside it (`.lock`, `.login.lock`, `.prev`, `.state`, `.unreadable*`, the
//! `.<name>.tmp*` temp files) are never opened or written through a link: a link planted
//! there is refused, so no one can steer a write at another user's file.

use super::file::{RawTokenFile, read_token_bytes_as, read_token_file_as, to_format1_json};
use super::{Token, TokenFileError};
use crate::brokers::Broker;
use crate::secret::Secret;
use chrono::{DateTime, Utc};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a writer waits for another process's lock before giving up.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// What went wrong while storing or restoring.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the lock.
    #[error(
        "another tokenwatch is writing {token}: {holder} holds {lock}; wait for it to finish or stop it"
    )]
    Locked {
        /// The token file.
        token: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// Who holds it, as the holder wrote it.
        holder: String,
    },
    /// A file could not be written. The previous file is untouched.
    #[error("cannot write {path}: {source}; the previous token file is untouched")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The token file holds another broker's token: a token for this account's broker is
    /// never written over it.
    #[error(
        "{} holds a token for {}, but this account is set to {}; nothing was written (give this \
         account its own token.path, or set its broker to {})",
        path.display(), file.display_name(), account.display_name(), file.as_str()
    )]
    OtherBroker {
        /// The token file.
        path: PathBuf,
        /// The broker of the token in the file.
        file: Broker,
        /// The account's broker.
        account: Broker,
    },
    /// The token file exists but cannot be read or is not a regular file; nothing was written.
    #[error("cannot use {path}: {reason}; nothing was written")]
    Read {
        /// The token file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file tokenwatch keeps next to the token (`.lock`, `.login.lock`, `.prev`, `.state`)
    /// is a symbolic link, a hard link or not a regular file: writing it could change a file
    /// someone else owns, so nothing was written.
    #[error(
        "refusing to use {path}: it is {what}, and writing through it could change another file; remove it (rm '{path}') and try again"
    )]
    NotPlain {
        /// The file.
        path: PathBuf,
        /// What it is: "a symbolic link", "a hard link to another file", "not a regular file".
        what: &'static str,
    },
    /// The lock file could not be opened.
    #[error("cannot open lock file {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The outcome of [`TokenStore::write`].
#[derive(Debug, Default)]
pub struct WriteReport {
    /// The replaced token was kept as `<path>.prev`.
    pub prev_kept: bool,
    /// An unreadable primary was moved aside to this path before being replaced.
    pub set_aside: Option<PathBuf>,
    /// Backups that could not be written, with the reason. The primary was written.
    pub backup_failures: Vec<(PathBuf, String)>,
}

/// The outcome of [`TokenStore::restore`].
#[derive(Debug, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// The primary file is readable; nothing was done.
    Present,
    /// The primary was missing or unreadable and was restored from this backup.
    Restored {
        /// The backup used.
        from: PathBuf,
        /// Where the unreadable primary was moved, if there was one.
        set_aside: Option<PathBuf>,
    },
    /// The primary is missing or unreadable and no backup holds an unexpired token; an
    /// unreadable primary is left as it was.
    NothingToRestore,
}

/// The token file, its `.prev`, its backups and its lock.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
    backups: Vec<PathBuf>,
    broker: Broker,
    writes: Arc<WriteCounts>,
}

/// How many writes of the token file this store (and its clones) made, for the
/// `tokenwatch_token_file_writes_total` metric.
#[derive(Debug, Default)]
pub struct WriteCounts {
    ok: AtomicU64,
    failed: AtomicU64,
    backup_failed: AtomicU64,
}

/// A reading of [`WriteCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteTally {
    /// The token file was written.
    pub ok: u64,
    /// Writing the token file failed (it was left as it was).
    pub failed: u64,
    /// Writing one of the backups failed (the token file itself was written).
    pub backup_failed: u64,
}

/// A held `<path>.lock` or `<path>.login.lock`. Released when dropped, and the lock file
/// removed, so that no file naming a finished process stays in the folder the engine reads.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    path: PathBuf,
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Unlinked while the flock is still held: a process waiting on this file gets the
        // flock only after it is gone from the folder, sees that the path no longer names it
        // ([`names_same_file`]) and opens the path anew, so two processes never both hold it.
        if names_same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// True when `path` (not followed) is the file `file` has open.
fn names_same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Open (creating 0600 if missing) a file tokenwatch keeps next to the token, never through a
/// symbolic link, and refuse anything but a plain file with a single name.
fn open_plain(path: &Path) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::EMLINK) => StoreError::NotPlain {
                path: path.to_owned(),
                what: "a symbolic link",
            },
            _ => StoreError::Lock {
                path: path.to_owned(),
                source,
            },
        })?;
    check_plain(&file, path)?;
    Ok(file)
}

fn check_plain(file: &File, path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().map_err(|source| StoreError::Lock {
        path: path.to_owned(),
        source,
    })?;
    let what = if !meta.is_file() {
        "not a regular file"
    } else if meta.nlink() > 1 {
        "a hard link to another file"
    } else {
        return Ok(());
    };
    Err(StoreError::NotPlain {
        path: path.to_owned(),
        what,
    })
}

/// The pid a lock file's text names (`process N (...) since ...`), when that process is gone.
/// What a lock file says of its holder: at most [`HOLDER_TEXT_LIMIT`] bytes of it (a lock
/// file is a line; a huge one is not read whole).
fn read_holder(file: &File) -> String {
    let mut bytes = Vec::new();
    let _ = file.take(HOLDER_TEXT_LIMIT).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The most of a lock file read to name its holder.
const HOLDER_TEXT_LIMIT: u64 = 4096;

fn dead_holder(text: &str) -> Option<u32> {
    let pid: u32 = text
        .trim()
        .strip_prefix("process ")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let raw = libc::pid_t::try_from(pid).ok().filter(|p| *p > 0)?;
    if pid == std::process::id() {
        return None;
    }
    // SAFETY: kill with signal 0 sends nothing; it only asks whether the process exists.
    let rc = unsafe { libc::kill(raw, 0) };
    let gone = rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    gone.then_some(pid)
}

impl TokenStore {
    /// A store for `path` that also writes `backups` (a backup equal to `path` is ignored).
    pub fn new(path: impl Into<PathBuf>, backups: impl IntoIterator<Item = PathBuf>) -> Self {
        let path = path.into();
        let mut list: Vec<PathBuf> = Vec::new();
        for b in backups {
            if b != path && !list.contains(&b) {
                list.push(b);
            }
        }
        TokenStore {
            path,
            backups: list,
            broker: Broker::Upstox,
            writes: Arc::default(),
        }
    }

    /// This store for an account of `broker` (the default is Upstox): a file holding another
    /// broker's token is refused on read and never written over, and backups of another
    /// broker are never restored.
    pub fn with_broker(mut self, broker: Broker) -> Self {
        self.broker = broker;
        self
    }

    /// The broker of the account this store keeps the token of.
    pub fn broker(&self) -> Broker {
        self.broker
    }

    /// How many writes this store and its clones made so far.
    pub fn write_tally(&self) -> WriteTally {
        WriteTally {
            ok: self.writes.ok.load(Ordering::Relaxed),
            failed: self.writes.failed.load(Ordering::Relaxed),
            backup_failed: self.writes.backup_failed.load(Ordering::Relaxed),
        }
    }

    fn count<T>(&self, result: &Result<T, StoreError>) {
        let counter = match result {
            Ok(_) => &self.writes.ok,
            Err(_) => &self.writes.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The primary token file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The backup paths.
    pub fn backups(&self) -> &[PathBuf] {
        &self.backups
    }

    /// `<path>.prev`.
    pub fn prev_path(&self) -> PathBuf {
        sibling(&self.path, ".prev")
    }

    /// `<path>.lock`.
    pub fn lock_path(&self) -> PathBuf {
        sibling(&self.path, ".lock")
    }

    /// `<path>.unreadable`, where an unreadable primary is moved before it is replaced, so
    /// that nothing the user had is destroyed.
    pub fn set_aside_path(&self) -> PathBuf {
        sibling(&self.path, ".unreadable")
    }

    /// `<path>.refresh`, where the refresh token of the last login is kept (0600) for
    /// `renew.strategy: refresh-token`: beside the token file, never in it.
    pub fn refresh_path(&self) -> PathBuf {
        sibling(&self.path, ".refresh")
    }

    /// The refresh token kept for this account's broker, when there is one. A file another
    /// broker's account wrote, or one that cannot be read, counts as none.
    pub fn read_refresh(&self) -> Option<Secret> {
        let bytes = std::fs::read(self.refresh_path()).ok()?;
        let kept: KeptRefresh = serde_json::from_slice(&bytes).ok()?;
        (kept.broker == self.broker && !kept.refresh_token.is_empty())
            .then(|| Secret::new(kept.refresh_token))
    }

    fn write_refresh(&self, token: &Token) -> Result<(), StoreError> {
        let Some(refresh) = &token.refresh_token else {
            return Ok(());
        };
        let kept = serde_json::json!({
            "broker": self.broker,
            "refresh_token": refresh.expose(),
            "saved_at": token.issued_at.map(|t| t.to_rfc3339()),
        });
        atomic_write_private(&self.refresh_path(), format!("{kept}\n").as_bytes())
    }

    /// Read the primary token file (`Ok(None)` when missing). Read-only.
    pub fn read(&self) -> Result<Option<Token>, TokenFileError> {
        super::file::read_account_token(&self.path, self.broker)
    }

    /// Take the writer lock, waiting up to `wait` for another holder to finish.
    pub fn lock(&self, wait: Duration) -> Result<StoreLock, StoreError> {
        self.lock_at(self.lock_path(), wait)
    }

    /// `<path>.login.lock`, held by whatever renews this token file: a login waiting for the
    /// browser, a `renew.command`, a token request waiting for approval.
    pub fn login_lock_path(&self) -> PathBuf {
        sibling(&self.path, ".login.lock")
    }

    /// Take the renewal lock at once, or fail with [`StoreError::Locked`] naming the holder:
    /// two logins for one account would race for the one callback port and the one code, and
    /// two renewals would overwrite each other's token.
    pub fn login_lock(&self) -> Result<StoreLock, StoreError> {
        self.lock_at(self.login_lock_path(), Duration::ZERO)
    }

    fn lock_at(&self, lock_path: PathBuf, wait: Duration) -> Result<StoreLock, StoreError> {
        ensure_dir(&lock_path).map_err(|source| StoreError::Lock {
            path: lock_path.clone(),
            source,
        })?;
        let deadline = Instant::now() + wait;
        let mut file = loop {
            // Opened anew on every try: a holder removes the file when it lets go.
            let file = open_plain(&lock_path)?;
            // An existing lock file keeps its mode when opened: keep it private like the rest.
            if let Ok(meta) = file.metadata()
                && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0
            {
                let _ = file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
            }
            match file.try_lock() {
                // The previous holder removed this file before letting go: the lock is
                // whichever file the path names now.
                Ok(()) if !names_same_file(&file, &lock_path) => continue,
                Ok(()) => break file,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = read_holder(&file);
                    let holder = crate::printable::printable(holder.trim());
                    let holder = holder.trim();
                    return Err(StoreError::Locked {
                        token: self.path.clone(),
                        lock: lock_path,
                        holder: if holder.is_empty() {
                            "another process".into()
                        } else {
                            holder.into()
                        },
                    });
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(StoreError::Lock {
                        path: lock_path,
                        source,
                    });
                }
            }
        };
        // A lock file left by a process that ended without removing it (killed, crashed).
        let left = read_holder(&file);
        if let Some(pid) = dead_holder(&left) {
            tracing::info!(
                "Took over {}: process {pid}, which left it, is no longer running",
                lock_path.display()
            );
        }
        // Say who holds the lock, for the message a second writer shows.
        let holder = format!(
            "process {} ({}) since {}",
            std::process::id(),
            std::env::args().take(2).collect::<Vec<_>>().join(" "),
            super::expiry::to_ist(Utc::now()).format("%Y-%m-%d %H:%M:%S IST")
        );
        let _ = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(holder.as_bytes()));
        Ok(StoreLock {
            file,
            path: lock_path,
        })
    }

    /// Store a new token: keep the current one as `.prev`, write the primary, then every
    /// backup. Fails (and changes nothing) if the primary cannot be written; a backup that
    /// cannot be written is reported in [`WriteReport::backup_failures`].
    pub fn write(&self, token: &Token) -> Result<WriteReport, StoreError> {
        let _lock = self.lock(LOCK_WAIT)?;
        self.write_locked(token)
    }

    /// [`write`](Self::write) for a caller that already holds the lock.
    pub fn write_locked(&self, token: &Token) -> Result<WriteReport, StoreError> {
        let result = self.write_files(token);
        self.count(&result);
        if let Ok(report) = &result {
            let n = report.backup_failures.len() as u64;
            self.writes.backup_failed.fetch_add(n, Ordering::Relaxed);
        }
        result
    }

    fn write_files(&self, token: &Token) -> Result<WriteReport, StoreError> {
        let bytes = to_format1_json(token);
        let mut report = WriteReport::default();
        if token.broker != self.broker {
            return Err(StoreError::OtherBroker {
                path: self.path.clone(),
                file: token.broker,
                account: self.broker,
            });
        }
        match self.read_primary()? {
            Some(RawTokenFile {
                parsed: Ok(old), ..
            }) if old.broker != self.broker => {
                return Err(StoreError::OtherBroker {
                    path: self.path.clone(),
                    file: old.broker,
                    account: self.broker,
                });
            }
            // Format 1 keeps the expiry as read, even one that came from the mtime.
            Some(RawTokenFile {
                parsed: Ok(old), ..
            }) if !old.access_token.same_as(&token.access_token) => {
                atomic_write_private(&self.prev_path(), to_format1_json(&old).as_bytes())?;
                report.prev_kept = true;
            }
            Some(RawTokenFile { parsed: Ok(_), .. }) => {}
            Some(RawTokenFile {
                parsed: Err(_),
                bytes,
            }) => {
                report.set_aside = Some(self.set_aside(&bytes)?);
            }
            None => {}
        }
        atomic_write(&self.path, bytes.as_bytes())?;
        // The token is stored; a refresh token that cannot be kept only costs the next
        // headless renewal, and is reported with the backups.
        if let Err(e) = self.write_refresh(token) {
            report
                .backup_failures
                .push((self.refresh_path(), e.to_string()));
        }
        for backup in &self.backups {
            match atomic_write(backup, bytes.as_bytes()) {
                Ok(()) => {}
                // Only the backup failed: the token file itself was written.
                Err(StoreError::Write { source, .. }) => {
                    report
                        .backup_failures
                        .push((backup.clone(), source.to_string()));
                }
                Err(other) => report
                    .backup_failures
                    .push((backup.clone(), other.to_string())),
            }
        }
        Ok(report)
    }

    /// At start (daemon and dashboard, never `status`): remove temp files left by a crash,
    /// and if the primary is missing or unreadable, restore it from the newest backup (or
    /// `.prev`) that holds an unexpired token at `now`.
    pub fn restore(&self, now: DateTime<Utc>) -> Result<RestoreOutcome, StoreError> {
        let _lock = self.lock(LOCK_WAIT)?;
        let own = [
            self.path.clone(),
            self.prev_path(),
            self.set_aside_path(),
            super::verdict::state_path(&self.path),
        ];
        for p in own.iter().chain(&self.backups) {
            remove_stale_temp_files(p);
        }
        let unreadable = match self.read_primary()? {
            Some(RawTokenFile { parsed: Ok(_), .. }) => return Ok(RestoreOutcome::Present),
            Some(RawTokenFile {
                parsed: Err(_),
                bytes,
            }) => Some(bytes),
            None => None,
        };
        let Some((from, token)) = self.best_backup(now) else {
            // Nothing better to put there: leave an unreadable file as it is.
            return Ok(RestoreOutcome::NothingToRestore);
        };
        let set_aside = match unreadable {
            Some(bytes) => Some(self.set_aside(&bytes)?),
            None => None,
        };
        let written = atomic_write(&self.path, to_format1_json(&token).as_bytes());
        self.count(&written);
        written?;
        Ok(RestoreOutcome::Restored { from, set_aside })
    }

    /// The backup (or `.prev`) that [`restore`](Self::restore) would use at `now`: the one
    /// whose unexpired token lives longest. Read-only.
    ///
    /// A backup folder may be shared (two installs under one home writing the same default
    /// `~/.local/state/tokenwatch/upstox_token.json`), so a backup is never used for another
    /// Upstox user: when `.prev` names a user, only that user's tokens qualify; with no
    /// `.prev`, backups of different users are ambiguous and none is used.
    pub fn best_backup(&self, now: DateTime<Utc>) -> Option<(PathBuf, Token)> {
        let prev = read_token_file_as(&self.prev_path(), self.broker)
            .ok()
            .flatten();
        let candidates: Vec<(PathBuf, Token)> = std::iter::once(self.prev_path())
            .chain(self.backups.iter().cloned())
            .filter_map(|p| {
                let token = read_token_file_as(&p, self.broker).ok()??;
                (token.expires_at > now && token.broker == self.broker).then_some((p, token))
            })
            .collect();
        let users: std::collections::BTreeSet<&str> = candidates
            .iter()
            .filter_map(|(_, t)| t.user_id.as_deref())
            .collect();
        let owner = prev.as_ref().and_then(|t| t.user_id.clone());
        let allowed = |t: &Token| match (&owner, t.user_id.as_deref()) {
            (Some(owner), Some(user)) => owner.eq_ignore_ascii_case(user),
            (Some(_), None) => false,
            (None, _) => users.len() <= 1,
        };
        candidates
            .iter()
            .filter(|(_, t)| allowed(t))
            .max_by_key(|(_, t)| (t.expires_at, t.issued_at))
            .cloned()
    }

    /// The primary's bytes and parse result; an error when it is not a regular file or cannot
    /// be read (then nothing is written over it).
    fn read_primary(&self) -> Result<Option<RawTokenFile>, StoreError> {
        read_token_bytes_as(&self.path, self.broker).map_err(|e| StoreError::Read {
            path: self.path.clone(),
            reason: match e {
                TokenFileError::Unreadable { reason, .. } => reason,
                TokenFileError::Io { source, .. } => source.to_string(),
                other @ TokenFileError::OtherBroker { .. } => other.to_string(),
            },
        })
    }

    /// Keep an unreadable primary under the first free `<path>.unreadable[.N]` name, so
    /// that nothing the user had is destroyed, even by a second bad file. A name that exists
    /// in any form (a file, a symbolic link planted there) is never written through or
    /// replaced: the copy is linked in only where nothing is.
    fn set_aside(&self, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let base = self.set_aside_path();
        let names = (0..1000).map(|n| {
            if n == 0 {
                base.clone()
            } else {
                sibling(&base, &format!(".{n}"))
            }
        });
        let too_large =
            std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0) && bytes.is_empty();
        let mut last_err = None;
        for free in names {
            if std::fs::symlink_metadata(&free).is_ok() {
                continue;
            }
            let placed = if too_large {
                // Too large to be a token file: link it aside instead of copying it.
                std::fs::hard_link(&self.path, &free)
            } else {
                write_new(&free, bytes)
            };
            match placed {
                Ok(()) => return Ok(free),
                // Taken since it was looked at: try the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(source) => return Err(StoreError::Write { path: free, source }),
            }
        }
        Err(StoreError::Write {
            path: base,
            source: last_err
                .unwrap_or_else(|| std::io::Error::other("no free name to keep the old file")),
        })
    }
}

/// Write `bytes` to a new file at `path` (0600, fsynced), failing with `AlreadyExists` when
/// anything (a file, a symbolic link) is already there: the temp file is linked in, never
/// renamed over a name.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (tmp, dir) = filled_temp(path, bytes).map_err(without_temp_path)?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    File::open(dir).and_then(|d| d.sync_all())
}

/// A temp file beside `path` (0600, created new with O_EXCL), holding `bytes` and fsynced,
/// and `path`'s folder: the first half of every atomic write.
fn filled_temp<'p>(
    path: &'p Path,
    bytes: &[u8],
) -> std::io::Result<(tempfile::NamedTempFile, &'p Path)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok((tmp, dir))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp")
}

fn ensure_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir),
        _ => Ok(()),
    }
}

/// tempfile adds its random temp file's path to an error ("No space left on device at path
/// \"/x/.upstox_token.json.tmpA1b2\""); the message names the real file instead, so keep only
/// the system's error.
fn without_temp_path(e: std::io::Error) -> std::io::Error {
    let text = e.to_string();
    match text.find(" at path \"") {
        Some(cut) => std::io::Error::new(e.kind(), text[..cut].to_string()),
        None => e,
    }
}

/// Write `bytes` to `path` atomically: temp file (0600) in the same folder → write → fsync →
/// rename → fsync the folder. On any error the target is untouched and the temp file removed.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    // A symlinked token path is written through: the link stays, its target gets the token.
    write_via_temp(&follow_symlinks(path), bytes)
}

/// `<token file>.refresh`.
#[derive(serde::Deserialize)]
struct KeptRefresh {
    broker: crate::brokers::Broker,
    refresh_token: String,
}

/// Write a file tokenwatch keeps next to the token (`<token file>.prev`, `<token file>.state`)
/// atomically and private (0600), like [`atomic_write`] but never through a symbolic link:
/// a link planted at `path` (to someone else's file) is refused with
/// [`StoreError::NotPlain`] and nothing is written. The temp file is created with O_EXCL
/// and renamed over `path` itself, so the link's target is never touched either way.
pub fn atomic_write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(StoreError::NotPlain {
                path: path.to_owned(),
                what: "a symbolic link",
            });
        }
        Ok(meta) if !meta.is_file() => {
            return Err(StoreError::NotPlain {
                path: path.to_owned(),
                what: "not a regular file",
            });
        }
        _ => {}
    }
    // rename(2) replaces the name itself: a link planted after the check above is replaced,
    // its target is not written.
    write_via_temp(path, bytes)
}

/// The one atomic write: a temp file (0600, created new) in `path`'s folder → write → fsync
/// → rename over `path` → fsync the folder.
fn write_via_temp(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let err = |source| StoreError::Write {
        path: path.to_owned(),
        source: without_temp_path(source),
    };
    ensure_dir(path).map_err(err)?;
    let (tmp, dir) = filled_temp(path, bytes).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
    Ok(())
}

/// The file a path finally names, following symlinks (also dangling ones); the path itself
/// when it is not a symlink.
fn follow_symlinks(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(target) => {
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                }
            }
            Err(_) => return p,
        }
    }
    p
}

/// Remove `.<name>.tmp*` files a killed writer left beside `path`. Only called under the lock.
/// Remove the temp files an interrupted [`atomic_write`] of `path` left beside it.
pub fn remove_stale_temp_files(path: &Path) {
    let prefix = temp_prefix(path);
    let Some(dir) = path.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(
                    "removed {}, left by an interrupted write",
                    entry.path().display()
                ),
                Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}
