//! The shared verdict: what the API last answered about one token, kept beside the token
//! file as `<token file>.state` so that every reader — plain `tokenwatch status`,
//! `tokenwatch token`, the HTTP API, a dashboard beside a daemon — tells the same truth. A
//! token Upstox rejected is `invalid` for all of them, not only for the process that asked.
//!
//! ```json
//! {"token_sha256_prefix":"3f1c0a9e5b7d2e44","at":"2026-12-04T10:00:00+05:30","result":"invalid","code":"UDAPI100050"}
//! ```
//!
//! The file names its token by the first 16 hex digits of the token's SHA-256, never the
//! token itself, and counts only for that token: a new token makes it void (and the worker
//! that stores one rewrites it). It is written 0600 and atomically; an unreadable or
//! malformed file counts as no verdict (said once by the reader that cares), never as an
//! error that stops a command.

use crate::secret::Secret;
use crate::timefmt::ist_rfc3339;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The largest `.state` file read; a bigger one is not ours.
const MAX_STATE_FILE: u64 = 4 * 1024;

/// What the API said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    /// The API accepted the token.
    Valid,
    /// The API rejected the token.
    Invalid,
}

impl CheckResult {
    /// `valid` or `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckResult::Valid => "valid",
            CheckResult::Invalid => "invalid",
        }
    }
}

/// The API's last answer about one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVerdict {
    /// When it answered.
    pub at: DateTime<Utc>,
    /// What it said.
    pub result: CheckResult,
    /// The API's error code with a rejection (`UDAPI100050`), when it gave one.
    pub code: Option<String>,
}

/// The file's layout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    token_sha256_prefix: String,
    at: DateTime<chrono::FixedOffset>,
    result: CheckResult,
    #[serde(default)]
    code: Option<String>,
}

/// `<token file>.state`.
pub fn state_path(token_file: &Path) -> PathBuf {
    let mut s = token_file.as_os_str().to_owned();
    s.push(".state");
    PathBuf::from(s)
}

/// The first 16 hex digits of the token's SHA-256: enough to tell tokens apart, nothing
/// that helps to guess one.
pub fn token_fingerprint(token: &Secret) -> String {
    let digest = Sha256::digest(token.expose().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The verdict stored for `token`, if the file holds one for it. `Err` says why an
/// existing file could not be used (unreadable, malformed); a missing file or a verdict
/// about another token is `Ok(None)`.
pub fn read_verdict(token_file: &Path, token: &Secret) -> Result<Option<StoredVerdict>, String> {
    let path = state_path(token_file);
    let bytes = match read_small(&path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is not a verdict file ({e}); it is ignored",
            path.display()
        )
    })?;
    if file.token_sha256_prefix != token_fingerprint(token) {
        return Ok(None);
    }
    Ok(Some(StoredVerdict {
        at: file.at.with_timezone(&Utc),
        result: file.result,
        code: file.code.map(|c| crate::printable::printable(&c)),
    }))
}

/// The file's bytes; `None` when there is no file. Never follows a symlink and reads at
/// most [`MAX_STATE_FILE`] bytes.
fn read_small(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(std::io::Error::other(
                "it is a symlink, which tokenwatch does not follow there; remove it",
            ));
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_STATE_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_STATE_FILE {
        return Err(std::io::Error::other(
            "it is too large to be a verdict file",
        ));
    }
    Ok(Some(bytes))
}

/// The file's text for `token`'s verdict.
fn render(token: &Secret, verdict: &StoredVerdict) -> String {
    let file = StateFile {
        token_sha256_prefix: token_fingerprint(token),
        at: crate::token::expiry::to_ist(verdict.at),
        result: verdict.result,
        code: verdict.code.clone(),
    };
    let mut text = serde_json::to_string(&file).unwrap_or_default();
    text.push('\n');
    text
}

/// Store `verdict` about `token` beside `token_file` (0600, atomic).
pub fn write_verdict(
    token_file: &Path,
    token: &Secret,
    verdict: &StoredVerdict,
) -> Result<(), String> {
    let path = state_path(token_file);
    super::store::atomic_write_private(&path, render(token, verdict).as_bytes()).map_err(
        |e| match e {
            super::store::StoreError::Write { path, source } => {
                format!("cannot write {}: {source}", path.display())
            }
            other => other.to_string(),
        },
    )
}

/// Remove the verdict file (a token was stored whose verdict is not known yet).
pub fn clear_verdict(token_file: &Path) -> Result<(), String> {
    let path = state_path(token_file);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
    }
}

/// The `last_check` of the status JSON: `{at, result, code}`, times in IST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastCheckReport {
    /// When the API answered, RFC 3339 in IST.
    pub at: String,
    /// `valid` or `invalid`.
    pub result: &'static str,
    /// The API's error code with a rejection.
    pub code: Option<String>,
}

impl From<&StoredVerdict> for LastCheckReport {
    fn from(v: &StoredVerdict) -> LastCheckReport {
        LastCheckReport {
            at: ist_rfc3339(v.at),
            result: v.result.as_str(),
            code: v.code.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn verdict(result: CheckResult, code: Option<&str>) -> StoredVerdict {
        StoredVerdict {
            at: "2026-12-04T04:30:00Z".parse().unwrap(),
            result,
            code: code.map(str::to_owned),
        }
    }

    #[test]
    fn a_verdict_counts_for_its_own_token_only_and_never_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        let (a, b) = (Secret::new("token-a-123456"), Secret::new("token-b-654321"));
        let v = verdict(CheckResult::Invalid, Some("UDAPI100050"));
        write_verdict(&file, &a, &v).unwrap();
        assert_eq!(read_verdict(&file, &a).unwrap(), Some(v));
        assert_eq!(read_verdict(&file, &b).unwrap(), None);
        let text = std::fs::read_to_string(state_path(&file)).unwrap();
        assert!(!text.contains("token-a"), "{text}");
        assert!(
            text.contains("\"at\":\"2026-12-04T10:00:00+05:30\""),
            "{text}"
        );
        assert!(text.contains("\"result\":\"invalid\""), "{text}");
        let mode = std::fs::metadata(state_path(&file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        clear_verdict(&file).unwrap();
        assert_eq!(read_verdict(&file, &a).unwrap(), None);
        clear_verdict(&file).unwrap();
    }

    #[test]
    fn a_malformed_or_symlinked_state_file_is_no_verdict_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        let a = Secret::new("token-a-123456");
        std::fs::write(state_path(&file), "{not json").unwrap();
        let e = read_verdict(&file, &a).unwrap_err();
        assert!(e.contains("is not a verdict file"), "{e}");
        std::fs::remove_file(state_path(&file)).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "x").unwrap();
        std::os::unix::fs::symlink(&victim, state_path(&file)).unwrap();
        let e = read_verdict(&file, &a).unwrap_err();
        assert!(e.contains("symlink"), "{e}");
    }
}
