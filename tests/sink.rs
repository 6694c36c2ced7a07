//! Handing a new token on: the env file and the `on_change` hook.

mod common;

use chrono::{DateTime, Utc};
use common::{Logs, at_ist, mode, tokens};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokenwatch::config::TokenConfig;
use tokenwatch::sink::{HandOnReport, HookOutcome, ON_CHANGE_LIMIT, hand_on};
use tokenwatch::token::Token;
use tracing::instrument::WithSubscriber;

const TOKEN: &str = "eyJ0eXAiOiJKV1Qi.eyJzdWIiOiJBQjEyMzQi.Zm9vYmFyLXNpZ25hdHVyZQ-_x";

fn expires() -> DateTime<Utc> {
    at_ist(2026, 11, 27, 3, 30, 0)
}

fn token_with(value: &str) -> Token {
    Token {
        user_name: None,
        ..tokens::token(value, None, expires())
    }
}

fn token() -> Token {
    token_with(TOKEN)
}

/// A config whose token file (holding the raw token) is in `dir`.
fn config(dir: &Path) -> TokenConfig {
    let path = dir.join("upstox_token.json");
    std::fs::write(&path, TOKEN).unwrap();
    TokenConfig {
        path,
        backups: vec![],
        env_file: None,
        on_change: vec![],
    }
}

/// [`config`] with this env file.
fn env_file_config(dir: &Path, env_file: &Path) -> TokenConfig {
    TokenConfig {
        env_file: Some(env_file.to_path_buf()),
        ..config(dir)
    }
}

/// [`config`] with this `on_change` hook.
fn hook_config(dir: &Path, on_change: Vec<String>) -> TokenConfig {
    TokenConfig {
        on_change,
        ..config(dir)
    }
}

/// The hook ran and exited with `code`, printing these.
fn exited(code: i32, stdout: &str, stderr: &str) -> Option<HookOutcome> {
    Some(HookOutcome::Exited {
        code: Some(code),
        stdout: stdout.into(),
        stderr: stderr.into(),
    })
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// Run `hand_on` with its logs captured as text.
async fn hand_on_logged(
    account: &str,
    token: &Token,
    cfg: &TokenConfig,
    limit: Duration,
) -> (HandOnReport, String) {
    let logs = Logs::default();
    let report = hand_on(account, token, cfg, limit)
        .with_subscriber(logs.subscriber("debug"))
        .await;
    let logs = logs.text();
    (report, logs)
}

#[tokio::test]
async fn nothing_configured_gives_an_empty_report() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let report = hand_on("default", &token(), &cfg, ON_CHANGE_LIMIT).await;
    assert_eq!(report, HandOnReport::default());
    // Nothing but the token file appeared.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn env_file_is_exact_private_and_created_with_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("new/sub/engine.env");
    let cfg = env_file_config(dir.path(), &env_file);
    let (report, logs) = hand_on_logged("default", &token(), &cfg, ON_CHANGE_LIMIT).await;
    assert_eq!(report.env_file_written, Some(env_file.clone()));
    assert_eq!(report.on_change, None);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(
        std::fs::read(&env_file).unwrap(),
        format!("UPSTOX_ACCESS_TOKEN={TOKEN}\n").into_bytes()
    );
    assert_eq!(mode(&env_file), 0o600);
    assert_eq!(mode(&dir.path().join("new/sub")), 0o700);
    // No temp file left beside it.
    assert_eq!(
        std::fs::read_dir(dir.path().join("new/sub"))
            .unwrap()
            .count(),
        1
    );
    assert!(logs.contains(&env_file.display().to_string()), "{logs}");
    assert!(!logs.contains(TOKEN), "{logs}");
}

#[tokio::test]
async fn existing_env_file_is_replaced_atomically_and_becomes_private() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, "UPSTOX_ACCESS_TOKEN=old\nOTHER=1\n").unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let old_inode = std::fs::metadata(&env_file).unwrap().ino();
    // A reader holding the old file keeps seeing the old content: a new file was renamed
    // over it, never truncated and rewritten in place.
    let held = std::fs::File::open(&env_file).unwrap();

    let cfg = env_file_config(dir.path(), &env_file);
    let report = hand_on("default", &token(), &cfg, ON_CHANGE_LIMIT).await;
    assert_eq!(report.env_file_written, Some(env_file.clone()));
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        format!("UPSTOX_ACCESS_TOKEN={TOKEN}\n")
    );
    assert_eq!(mode(&env_file), 0o600);
    assert_ne!(std::fs::metadata(&env_file).unwrap().ino(), old_inode);
    let mut old = String::new();
    std::io::Read::read_to_string(&mut &held, &mut old).unwrap();
    assert_eq!(old, "UPSTOX_ACCESS_TOKEN=old\nOTHER=1\n");
}

#[tokio::test]
async fn env_file_that_cannot_be_written_is_a_problem_and_the_hook_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let marker = dir.path().join("ran");
    let cfg = TokenConfig {
        env_file: Some(blocker.join(".env")),
        on_change: sh(&format!("touch '{}'", marker.display())),
        ..config(dir.path())
    };
    let report = hand_on("default", &token(), &cfg, ON_CHANGE_LIMIT).await;
    assert_eq!(report.env_file_written, None);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].contains("env file"),
        "{:?}",
        report.problems
    );
    assert!(report.problems[0].contains("not-a-folder"));
    assert!(!report.problems[0].contains(TOKEN));
    assert!(marker.exists(), "the hook did not run");
    assert!(matches!(
        report.on_change,
        Some(HookOutcome::Exited { code: Some(0), .. })
    ));
}

#[tokio::test]
async fn a_token_that_cannot_be_written_unquoted_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    let cfg = env_file_config(dir.path(), &env_file);
    let bad = "abc\nLD_PRELOAD=/tmp/evil.so";
    let report = hand_on("default", &token_with(bad), &cfg, ON_CHANGE_LIMIT).await;
    assert_eq!(report.env_file_written, None);
    assert_eq!(report.problems.len(), 1);
    assert!(!report.problems[0].contains("LD_PRELOAD"));
    assert!(!env_file.exists());
}

#[tokio::test]
async fn hook_runs_once_per_call_with_the_variables_and_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let env_dump = dir.path().join("env.txt");
    let runs = dir.path().join("runs.log");
    let cfg = hook_config(
        dir.path(),
        sh(&format!(
            "env > '{}'; echo run >> '{}'",
            env_dump.display(),
            runs.display()
        )),
    );

    for n in 1..=2 {
        let report = hand_on("acct-1", &token(), &cfg, ON_CHANGE_LIMIT).await;
        assert_eq!(
            report.on_change,
            Some(HookOutcome::Exited {
                code: Some(0),
                stdout: String::new(),
                stderr: String::new()
            })
        );
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), n);
    }

    let env = std::fs::read_to_string(&env_dump).unwrap();
    let lines: Vec<&str> = env.lines().collect();
    assert!(lines.contains(&"TOKENWATCH_ACCOUNT=acct-1"), "{env}");
    let token_file = dir.path().join("upstox_token.json");
    assert!(
        lines.contains(&format!("TOKENWATCH_TOKEN_FILE={}", token_file.display()).as_str()),
        "{env}"
    );
    assert!(
        lines.contains(&"TOKENWATCH_EXPIRES_AT=2026-11-27T03:30:00+05:30"),
        "{env}"
    );
    // tokenwatch's own environment is passed on.
    assert!(lines.iter().any(|l| l.starts_with("PATH=")), "{env}");
    assert!(
        !env.contains(TOKEN),
        "the token leaked into the hook's environment"
    );
    assert!(!env.contains("Zm9vYmFyLXNpZ25hdHVyZQ"));
}

#[tokio::test]
async fn relative_token_path_is_given_to_the_hook_as_absolute() {
    let dir = tempfile::tempdir().unwrap();
    let env_dump = dir.path().join("env.txt");
    let cfg = TokenConfig {
        path: PathBuf::from("some/relative/upstox_token.json"),
        backups: vec![],
        env_file: None,
        on_change: sh(&format!(
            "printf '%s' \"$TOKENWATCH_TOKEN_FILE\" > '{}'",
            env_dump.display()
        )),
    };
    let report = hand_on("default", &token(), &cfg, ON_CHANGE_LIMIT).await;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let expected = std::env::current_dir()
        .unwrap()
        .join("some/relative/upstox_token.json");
    assert_eq!(
        std::fs::read_to_string(&env_dump).unwrap(),
        expected.display().to_string()
    );
}

#[tokio::test]
async fn hook_past_its_limit_is_killed_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let late = dir.path().join("late");
    let bg = dir.path().join("background");
    // The background subshell is in the hook's process group: it must die too.
    let cfg = hook_config(
        dir.path(),
        sh(&format!(
            "(sleep 1; touch '{bg}') & sleep 1; touch '{late}'",
            bg = bg.display(),
            late = late.display()
        )),
    );
    let started = Instant::now();
    let (report, logs) =
        hand_on_logged("default", &token(), &cfg, Duration::from_millis(300)).await;
    let took = started.elapsed();
    assert_eq!(report.on_change, Some(HookOutcome::TimedOut));
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(report.problems.len(), 1);
    assert!(
        report.problems[0].contains("did not finish within 300ms"),
        "{:?}",
        report.problems
    );
    assert!(logs.contains("did not finish within 300ms"), "{logs}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!late.exists(), "the hook was not killed");
    assert!(!bg.exists(), "a process the hook started was not killed");
}

#[tokio::test]
async fn failing_hook_reports_its_code_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hook_config(
        dir.path(),
        sh("echo 'restarting engine'; echo 'engine: unit not found' >&2; exit 3"),
    );
    let (report, logs) = hand_on_logged("default", &token(), &cfg, ON_CHANGE_LIMIT).await;
    assert_eq!(
        report.on_change,
        exited(3, "restarting engine", "engine: unit not found")
    );
    assert_eq!(report.problems.len(), 1);
    let p = &report.problems[0];
    assert!(p.contains("token.on_change"), "{p}");
    assert!(p.contains("code 3"), "{p}");
    assert!(p.contains("engine: unit not found"), "{p}");
    assert!(logs.contains("code 3"), "{logs}");
    assert!(logs.contains("engine: unit not found"), "{logs}");
}

#[tokio::test]
async fn hook_printing_the_token_gets_it_masked_in_report_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    // Reads the token the way an engine does, then prints it on both streams.
    let cfg = hook_config(
        dir.path(),
        sh(
            "printf 'loaded %s ok\\n' \"$(cat \"$TOKENWATCH_TOKEN_FILE\")\"; \
             printf 'debug: Bearer %s\\n' \"$(cat \"$TOKENWATCH_TOKEN_FILE\")\" >&2",
        ),
    );
    let (report, logs) = hand_on_logged("default", &token(), &cfg, ON_CHANGE_LIMIT).await;
    assert_eq!(
        report.on_change,
        exited(0, "loaded ******** ok", "debug: Bearer ********")
    );
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(logs.contains("loaded ******** ok"), "{logs}");
    assert!(logs.contains("debug: Bearer ********"), "{logs}");
    assert!(!logs.contains(TOKEN), "{logs}");
    assert!(!format!("{report:?}").contains(TOKEN));
}

#[tokio::test]
async fn failing_hook_printing_the_token_is_masked_in_problems() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hook_config(dir.path(), sh("cat \"$TOKENWATCH_TOKEN_FILE\" >&2; exit 1"));
    let (report, logs) = hand_on_logged("default", &token(), &cfg, ON_CHANGE_LIMIT).await;
    assert_eq!(report.problems.len(), 1);
    assert!(
        report.problems[0].contains("********"),
        "{:?}",
        report.problems
    );
    assert!(!report.problems[0].contains(TOKEN));
    assert!(logs.contains("code 1"), "{logs}");
    assert!(!logs.contains(TOKEN), "{logs}");
}

#[tokio::test]
async fn missing_program_is_not_started_with_a_readable_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TokenConfig {
        on_change: vec![
            "/nonexistent/tokenwatch-no-such-hook".into(),
            "--flag".into(),
        ],
        ..config(dir.path())
    };
    let (report, logs) = hand_on_logged("default", &token(), &cfg, ON_CHANGE_LIMIT).await;
    match &report.on_change {
        Some(HookOutcome::NotStarted(why)) => {
            assert!(why.contains("No such file"), "{why}")
        }
        other => panic!("expected NotStarted, got {other:?}"),
    }
    assert_eq!(report.problems.len(), 1);
    let p = &report.problems[0];
    assert!(p.contains("/nonexistent/tokenwatch-no-such-hook"), "{p}");
    assert!(p.contains("No such file"), "{p}");
    assert!(logs.contains("tokenwatch-no-such-hook"), "{logs}");
}
