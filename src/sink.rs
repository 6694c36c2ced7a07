//! Handing a new token on to the trading engine's side: the optional env file
//! (`token.env_file`) and the optional hook (`token.on_change`).
//!
//! Both run only after a new token has been stored; neither ever puts the token into a log
//! line, a problem message or the hook's environment. The hook reads the token file itself
//! (its path is in `TOKENWATCH_TOKEN_FILE`).

use crate::config::TokenConfig;
use crate::process::hidden_from_hooks;
use crate::process::{self, Run};
use crate::timefmt::ist_rfc3339;
use crate::token::Token;
use crate::token::store::{StoreError, atomic_write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::{info, warn};

/// The `token.on_change` time limit.
pub const ON_CHANGE_LIMIT: Duration = Duration::from_secs(30);

/// The variable the env file sets for `broker`'s token: `UPSTOX_ACCESS_TOKEN`,
/// `KITE_ACCESS_TOKEN`, ...
pub fn env_file_variable(broker: crate::brokers::Broker) -> &'static str {
    use crate::brokers::Broker;
    match broker {
        Broker::Upstox => "UPSTOX_ACCESS_TOKEN",
        Broker::Kite => "KITE_ACCESS_TOKEN",
        Broker::Fyers => "FYERS_ACCESS_TOKEN",
        Broker::Angel => "ANGEL_ACCESS_TOKEN",
        Broker::Dhan => "DHAN_ACCESS_TOKEN",
    }
}

/// What replaces the token wherever it would otherwise be shown.
const MASK: &str = "********";

/// The longest excerpt of the hook's stdout or stderr kept in the report and the log.
const EXCERPT_CHARS: usize = 300;

/// What happened when the token was handed on. Each problem is a readable sentence that
/// never contains the token.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HandOnReport {
    /// The env file, when one was configured and written.
    pub env_file_written: Option<PathBuf>,
    /// What the `on_change` hook did, when one is configured.
    pub on_change: Option<HookOutcome>,
    /// What went wrong, one sentence each; empty when everything worked.
    pub problems: Vec<String>,
}

/// How the `on_change` hook ended.
#[derive(Debug, Clone, PartialEq)]
pub enum HookOutcome {
    /// The hook ran to its end.
    Exited {
        /// Its exit code; `None` when a signal ended it.
        code: Option<i32>,
        /// A short single-line excerpt of its stdout, with the token masked.
        stdout: String,
        /// A short single-line excerpt of its stderr, with the token masked.
        stderr: String,
    },
    /// It was still running at the time limit and was killed (with every process it started).
    TimedOut,
    /// It could not be started; why.
    NotStarted(String),
}

/// Hand a newly stored token on: write `token.env_file`, then run `token.on_change`.
///
/// The caller calls this only when the token actually changed (a new token was stored),
/// never for a re-read or a restore of the same token, so the hook runs once per new token.
///
/// - `env_file` (when set) is replaced atomically with exactly
///   `UPSTOX_ACCESS_TOKEN=<token>\n`, mode 0600 (temp file in the same folder, fsync, rename,
///   fsync the folder; a missing folder is created 0700). The whole file belongs to
///   tokenwatch: anything else in it is replaced. The value is unquoted, so a token with a
///   character outside `[A-Za-z0-9._+/=-]` is refused rather than written.
/// - `on_change` (when non-empty) runs after the env file, even when writing that failed,
///   with no stdin, in its own process group, killed after `limit` (pass
///   [`ON_CHANGE_LIMIT`]) together with every process still in that group (only a process
///   that made its own session escapes). It runs on a blocking thread, never blocking the
///   runtime, but this future waits for it. A process the hook leaves running in the
///   background after it exits is not killed; its output is read and dropped. It gets
///   tokenwatch's environment plus `TOKENWATCH_ACCOUNT`, `TOKENWATCH_TOKEN_FILE` (the token
///   file's absolute path) and `TOKENWATCH_EXPIRES_AT` (RFC 3339, IST) — never the token.
///
/// Logs the env file written, the hook's exit code and short excerpts of its output with
/// the token masked; never the environment, never the hook's arguments. Problems are
/// returned in [`HandOnReport::problems`] (and logged as warnings); this never fails.
pub async fn hand_on(
    account: &str,
    token: &Token,
    cfg: &TokenConfig,
    limit: Duration,
) -> HandOnReport {
    let mut report = HandOnReport::default();
    if let Some(path) = &cfg.env_file {
        match write_env_file(path, token).await {
            Ok(()) => {
                info!(account = %account, "Wrote {} to {}", env_file_variable(token.broker), path.display());
                report.env_file_written = Some(path.clone());
            }
            Err(problem) => {
                warn!(account = %account, "{problem}");
                report.problems.push(problem);
            }
        }
    }
    if !cfg.on_change.is_empty() {
        let (outcome, problem) = run_on_change(account, token, cfg, limit).await;
        if let Some(problem) = problem {
            report.problems.push(problem);
        }
        report.on_change = Some(outcome);
    }
    report
}

/// What the env file says of the token: `Some(true)` when it holds this token, `Some(false)`
/// when it holds another (or cannot be read), `None` when there is no env file yet.
pub fn env_file_holds(path: &Path, token: &Token) -> Option<bool> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(_) => return Some(false),
    };
    let want = token.access_token.expose();
    Some(text.lines().any(|line| {
        line.strip_prefix(env_file_variable(token.broker))
            .and_then(|rest| rest.strip_prefix('='))
            .is_some_and(|value| value == want)
    }))
}

/// At start: bring `token.env_file` up to date with the stored token. A missing env file is
/// written; one holding another token means a hand-on was interrupted (tokenwatch was
/// killed between storing the token and writing the env file), so it is completed: the env
/// file and `token.on_change`.
pub async fn repair(account: &str, token: &Token, cfg: &TokenConfig, limit: Duration) {
    let Some(path) = &cfg.env_file else { return };
    crate::token::store::remove_stale_temp_files(path);
    match env_file_holds(path, token) {
        Some(true) => {}
        None => match write_env_file(path, token).await {
            Ok(()) => {
                info!(account = %account, "Wrote {} to {}", env_file_variable(token.broker), path.display())
            }
            Err(problem) => warn!(account = %account, "{problem}"),
        },
        Some(false) => {
            warn!(
                account = %account,
                "{} does not hold the stored token (an interrupted renewal?); handing the token on again",
                path.display()
            );
            hand_on(account, token, cfg, limit).await;
        }
    }
}

/// Write the env file on a blocking thread; a problem sentence on failure.
async fn write_env_file(path: &Path, token: &Token) -> Result<(), String> {
    let value = token.access_token.expose();
    if value.is_empty() {
        return Err(format!(
            "Did not write the env file {}: the token is empty",
            path.display()
        ));
    }
    if !value.chars().all(is_plain_env_char) {
        return Err(format!(
            "Did not write the env file {}: the token contains characters that cannot be \
             written unquoted (expected only letters, digits and . _ - + / =)",
            path.display()
        ));
    }
    let bytes = format!("{}={value}\n", env_file_variable(token.broker)).into_bytes();
    let target = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || atomic_write(&target, &bytes)).await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(StoreError::Write { path: p, source })) => Err(format!(
            "Cannot write the env file {}: {source}; the token file itself was stored",
            p.display()
        )),
        Ok(Err(e)) => Err(format!(
            "Cannot write the env file {}: {e}; the token file itself was stored",
            path.display()
        )),
        Err(e) => Err(format!(
            "Writing the env file {} stopped unexpectedly: {e}",
            path.display()
        )),
    }
}

/// Safe unquoted in a shell assignment, a systemd `EnvironmentFile`, docker's `--env-file`
/// and dotenv parsers (no `~`: a shell expands it at the start of a value).
fn is_plain_env_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '/' | '=')
}

/// Run the hook and describe the outcome: the outcome, and a problem sentence unless it
/// exited 0.
async fn run_on_change(
    account: &str,
    token: &Token,
    cfg: &TokenConfig,
    limit: Duration,
) -> (HookOutcome, Option<String>) {
    let (program, args) = match cfg.on_change.split_first() {
        Some((p, a)) if !p.trim().is_empty() => (p.clone(), a.to_vec()),
        _ => {
            let why = "token.on_change has an empty program name".to_string();
            warn!(account = %account, "{why}; it was not run");
            return (
                HookOutcome::NotStarted(why.clone()),
                Some(format!("{why}; it was not run")),
            );
        }
    };
    let token_file = std::path::absolute(&cfg.path).unwrap_or_else(|_| cfg.path.clone());
    let envs = vec![
        ("TOKENWATCH_ACCOUNT".to_string(), account.to_string()),
        (
            "TOKENWATCH_TOKEN_FILE".to_string(),
            token_file.to_string_lossy().into_owned(),
        ),
        (
            "TOKENWATCH_EXPIRES_AT".to_string(),
            ist_rfc3339(token.expires_at),
        ),
    ];
    let prog = program.clone();
    let hidden = hidden_from_hooks();
    let run = tokio::task::spawn_blocking(move || {
        let hidden: Vec<&str> = hidden.iter().map(String::as_str).collect();
        process::run(&prog, &args, &envs, &hidden, limit)
    })
    .await
    .unwrap_or_else(|e| Run::NotStarted(format!("it stopped unexpectedly: {e}")));

    let secrets: Vec<&str> = std::iter::once(token.access_token.expose())
        .chain(token.extended_token.as_ref().map(|s| s.expose()))
        .filter(|s| !s.is_empty())
        .collect();
    match run {
        Run::Exited(out) => {
            use std::os::unix::process::ExitStatusExt;
            let code = out.status.code();
            let stdout = excerpt(&out.stdout, &secrets);
            let stderr = excerpt(&out.stderr, &secrets);
            let shown = |label: &str, text: &str| {
                if text.is_empty() {
                    String::new()
                } else {
                    format!("; {label}: {text}")
                }
            };
            let output = format!("{}{}", shown("stdout", &stdout), shown("stderr", &stderr));
            let problem = match (code, out.status.signal()) {
                (Some(0), _) => {
                    info!(account = %account, "token.on_change ({program}) exited with code 0{output}");
                    None
                }
                (Some(c), _) => Some(format!(
                    "token.on_change ({program}) exited with code {c}{output}"
                )),
                (None, Some(sig)) => Some(format!(
                    "token.on_change ({program}) was ended by signal {sig}{output}"
                )),
                (None, None) => Some(format!(
                    "token.on_change ({program}) ended without an exit code{output}"
                )),
            };
            if let Some(p) = &problem {
                warn!(account = %account, "{p}");
            }
            (
                HookOutcome::Exited {
                    code,
                    stdout,
                    stderr,
                },
                problem,
            )
        }
        Run::TimedOut => {
            let problem = format!(
                "token.on_change ({program}) did not finish within {} and was stopped",
                crate::timefmt::human(limit)
            );
            warn!(account = %account, "{problem}");
            (HookOutcome::TimedOut, Some(problem))
        }
        Run::NotStarted(why) => {
            let problem = format!("Cannot run token.on_change ({program}): {why}");
            warn!(account = %account, "{problem}");
            (HookOutcome::NotStarted(why), Some(problem))
        }
    }
}

/// A short, single-line excerpt of a hook's output: every secret replaced by `********`
/// (before anything is cut), lines trimmed and joined with ` | `, at most
/// [`EXCERPT_CHARS`] characters.
fn excerpt(bytes: &[u8], secrets: &[&str]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    for s in secrets {
        if !s.is_empty() && text.contains(s) {
            text = text.replace(s, MASK);
        }
    }
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    let clean: String = joined
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= EXCERPT_CHARS {
        clean
    } else {
        let mut cut: String = clean.chars().take(EXCERPT_CHARS).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_masks_before_cutting_and_keeps_one_line() {
        let token = "abc.DEF-123_xyz";
        let out = format!("first {token}\n\n  second\r\n{token}{token}\n");
        assert_eq!(
            excerpt(out.as_bytes(), &[token]),
            "first ******** | second | ****************"
        );
        let long = "x".repeat(1000);
        let e = excerpt(long.as_bytes(), &[]);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }

    #[test]
    fn env_characters() {
        assert!("eyJ0eXAi.OiJKV1Q-_x+/=".chars().all(is_plain_env_char));
        for bad in ["a b", "a\nb", "a$b", "a\"b", "a'b", "~a", "a;b", "a`b"] {
            assert!(!bad.chars().all(is_plain_env_char), "{bad}");
        }
    }
}
