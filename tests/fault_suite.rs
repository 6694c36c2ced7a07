//! The fault suite: every fault the Upstox simulator injects, against every endpoint tokenwatch
//! calls, and the disk faults a token store meets. Each case is checked against the renewal rules and
//! rendered into the tables of `docs/reliability.md`, between the `<!-- NAME:start -->` /
//! `<!-- NAME:end -->` markers. The doc is generated from these tests and cannot rot: when it
//! differs, the tests fail with a diff; `UPDATE_RELIABILITY=1 cargo test --test fault_suite`
//! rewrites it.
//!
//! API faults (`api_fault_table`), each cell in a fresh runtime on tokio's paused clock:
//! * profile: a validation round (`Core::validate`) of a healthy token (Thursday 10:00 IST);
//! * exchange: the code → token exchange of the login a due renewal opens (the worker, strategy
//!   browser, the built-in browser, the simulator approving at once);
//! * v3 request: the access-token request a due renewal sends (the worker, strategy
//!   token-request).
//!
//! For exchange and v3 the token has 30 minutes left (state critical, renewal due). The fault
//! is injected more often than `monitor.max_retries`, so every attempt meets it. Times are
//! shown as the window the ±25% backoff jitter allows (the measured time must fall in it), so
//! the table is the same on every run.
//!
//! Disk faults (`disk_fault_table`), on a store holding a good token, its `.prev` and a backup:
//! a read-only token folder and a full disk (a tmpfs in a mount namespace made with
//! `unshare -rm`; skipped, with a SKIPPED line, where that is not allowed or when
//! `FAULT_SUITE_NO_NAMESPACE` is set), and a backup path under a regular file (ENOTDIR, which
//! stops root too). Each runs through `TokenStore::write`, `tokenwatch refresh` and
//! `tokenwatch daemon`.

mod common;

use common::doc::{cell, code, sync_doc_block};
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};
use tokenwatch::brokers::upstox::client::REQUEST_TIMEOUT;
use tokenwatch::brokers::upstox::sim::{Endpoint, Fault, SimConfig};
use tokenwatch::clock::{Clock, SystemClock};
use tokenwatch::config::{MonitorConfig, Strategy};
use tokenwatch::messages::{Command, Event, Notification, Topic};
use tokenwatch::secret::Secret;
use tokenwatch::token::store::TokenStore;
use tokenwatch::token::{Token, TokenState, read_token_file};
use tokenwatch::worker::{self, CheckOutcome};

/// How often each fault is queued: more than `max_retries`, so every attempt meets it.
const INJECTED: u32 = 5;

// ---------------------------------------------------------------------------------------
// The generated doc
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// API faults: the cases
// ---------------------------------------------------------------------------------------

/// A fault the simulator injects, as the doc names and explains it.
struct FaultCase {
    fault: Fault,
    name: &'static str,
    /// What the simulator sends.
    sends: &'static str,
}

const FAULTS: [FaultCase; 9] = [
    FaultCase {
        fault: Fault::ServerError,
        name: "500",
        sends: "HTTP 500 with Upstox's error envelope, `UDAPI100500` \"Something went wrong\". \
                Transient: retried with backoff, never a reason to log in again.",
    },
    FaultCase {
        fault: Fault::TooManyRequests { retry_after: None },
        name: "429",
        sends: "HTTP 429, `UDAPI10005` \"Too Many Request Sent\", no `Retry-After` (as Upstox \
                documents it). Transient: retried with the normal backoff.",
    },
    FaultCase {
        fault: Fault::TooManyRequests {
            retry_after: Some(30),
        },
        name: "429 + Retry-After: 30",
        sends: "The same 429 with `Retry-After: 30`. Transient: retried, and no retry comes \
                sooner than Upstox asked (up to 60 s is honoured; a longer wait ends the round and \
                the API counts as unreachable until the next check).",
    },
    FaultCase {
        fault: Fault::Timeout,
        name: "timeout",
        sends: "No answer: the simulator holds the request for an hour. tokenwatch gives up \
                after its 15 s request timeout. Transient.",
    },
    FaultCase {
        fault: Fault::MalformedJson,
        name: "malformed JSON",
        sends: "HTTP 200, `application/json`, a body cut off in the middle of the object. Not \
                Upstox's API answering: transient.",
    },
    FaultCase {
        fault: Fault::CloudflareHtml,
        name: "HTML 403",
        sends: "HTTP 403 `text/html`: Cloudflare's \"Access denied, error code: 1010\" page. \
                Not Upstox's API answering: transient, and the body is never parsed as JSON.",
    },
    FaultCase {
        fault: Fault::HtmlUnauthorized,
        name: "HTML 401",
        sends: "HTTP 401 `text/html`: a proxy's or captive portal's sign-in page. Not Upstox's \
                API answering: transient like any outage, and never a reason to call the token \
                `invalid` (only Upstox's JSON `UDAPI100050` is).",
    },
    FaultCase {
        fault: Fault::ServiceWindow,
        name: "UDAPI100074",
        sends: "HTTP 503, `UDAPI100074`: the API's nightly service window. Transient.",
    },
    FaultCase {
        fault: Fault::Unauthorized,
        name: "401",
        sends: "HTTP 401, `UDAPI100050` \"Invalid token used to access API\". An answer, not a \
                failure to answer: never retried. Only on the profile API does it make the \
                stored token `invalid`.",
    },
];

/// The endpoints, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `GET /v2/user/profile`, in a validation round.
    Profile,
    /// `POST /v2/login/authorization/token`, in a login.
    Exchange,
    /// `POST /v3/login/auth/token/request/{client_id}`, in a token-request renewal.
    TokenRequest,
}

const TARGETS: [Target; 3] = [Target::Profile, Target::Exchange, Target::TokenRequest];

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Profile => "profile",
            Target::Exchange => "exchange",
            Target::TokenRequest => "v3 request",
        }
    }

    fn endpoint(self) -> Endpoint {
        match self {
            Target::Profile => Endpoint::Profile,
            Target::Exchange => Endpoint::Token,
            Target::TokenRequest => Endpoint::TokenRequest,
        }
    }
}

/// What one cell measured.
struct CellResult {
    attempts: u64,
    elapsed_ms: i64,
    state: TokenState,
    /// How the round ended, in words.
    outcome: String,
    /// The last warning or error the round logged.
    log: Option<String>,
    /// What the dashboard shows: the notification (exchange, v3) or the last check's result
    /// (profile).
    shown: Option<String>,
    /// How many stored files there were, and which changed.
    files: usize,
    changed: Vec<String>,
    /// The worker was still running when the round ended (profile: no worker).
    worker_alive: Option<bool>,
}

fn is_transient(fault: Fault) -> bool {
    fault != Fault::Unauthorized
}

/// The backoff window, in milliseconds, that `attempts` attempts of `fault` take on the
/// paused clock: each attempt's own cost (a timeout waits `REQUEST_TIMEOUT`), and between
/// attempts the backoff (`backoff_initial`, doubled, ±25%, capped at `backoff_max`) or a
/// longer `Retry-After`.
fn window_ms(fault: Fault, attempts: u64, m: &MonitorConfig) -> (i64, i64) {
    let cost = match fault {
        Fault::Timeout => REQUEST_TIMEOUT.as_millis() as i64,
        _ => 0,
    };
    let retry_after = match fault {
        Fault::TooManyRequests {
            retry_after: Some(s),
        } => Duration::from_secs(s)
            .min(Duration::from_secs(15 * 60))
            .as_millis() as i64,
        _ => 0,
    };
    let cap = m.backoff_max.as_millis() as i64;
    let mut base = m.backoff_initial.as_millis() as i64;
    let (mut lo, mut hi) = (cost * attempts as i64, cost * attempts as i64);
    for _ in 1..attempts {
        lo += (base * 3 / 4).min(cap).max(retry_after);
        hi += (base * 5 / 4).min(cap).max(retry_after);
        base = (base * 2).min(cap);
    }
    (lo, hi)
}

fn seconds(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn render_window((lo, hi): (i64, i64)) -> String {
    if lo == hi {
        seconds(lo)
    } else {
        format!("{}–{}", seconds(lo).trim_end_matches(" s"), seconds(hi))
    }
}

/// What the renewal rules ask of a cell; an empty list when the cell meets them.
fn violations(fc: &FaultCase, target: Target, r: &CellResult, m: &MonitorConfig) -> Vec<String> {
    let mut v = Vec::new();
    let fault = fc.fault;
    let want_attempts = match target {
        Target::Exchange => 1,
        _ if is_transient(fault) => u64::from(m.max_retries),
        _ => 1,
    };
    if r.attempts != want_attempts {
        let why = match target {
            Target::Exchange => "the single-use code is exchanged once, never retried",
            _ if is_transient(fault) => {
                "transient errors are retried with backoff (monitor.max_retries attempts)"
            }
            _ => "an answer (401) is not retried",
        };
        v.push(format!(
            "{} attempt{}, expected {want_attempts} ({why})",
            r.attempts,
            if r.attempts == 1 { "" } else { "s" }
        ));
    }
    let (lo, hi) = window_ms(fault, r.attempts, m);
    // Tokio's timer wheel rounds each sleep up to the next millisecond.
    let slack = 2 * r.attempts as i64 + 2;
    if r.elapsed_ms < lo || r.elapsed_ms > hi + slack {
        v.push(format!(
            "took {} ms on the paused clock, outside the backoff window {lo}..={hi} ms",
            r.elapsed_ms
        ));
    }
    let want_state = match (target, is_transient(fault)) {
        (Target::Profile, true) => TokenState::Healthy,
        (Target::Profile, false) => TokenState::Invalid,
        // A failed login or token request says nothing about the stored token.
        _ => TokenState::Critical,
    };
    if r.state != want_state {
        v.push(format!(
            "final state {}, expected {}",
            r.state.as_str(),
            want_state.as_str()
        ));
    }
    if !r.changed.is_empty() {
        v.push(format!(
            "a failed round never touches the stored files, but these changed: {:?}",
            r.changed
        ));
    }
    if r.worker_alive == Some(false) {
        v.push("the worker no longer answers commands after the failure".into());
    }
    match &r.log {
        None => v.push("nothing was logged at warning level or above".into()),
        Some(log) if !log.contains(fault_reason(fault)) => v.push(format!(
            "the message does not say what happened ({:?} expected): {log}",
            fault_reason(fault)
        )),
        Some(_) => {}
    }
    if target == Target::Exchange {
        let shown = r.shown.as_deref().unwrap_or_default();
        if !shown.contains("log in again") {
            v.push(format!("a failed exchange says \"log in again\": {shown}"));
        }
        if shown.contains("will retry") {
            v.push(format!(
                "the message promises a retry, but the exchange is never retried: {shown}"
            ));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// API faults: running a cell
// ---------------------------------------------------------------------------------------

/// The stored files that differ (bytes, inode or mtime), appeared or went away.
fn changed_files(h: &Harness, before: &Files, after: &Files) -> Vec<String> {
    let name = |p: &PathBuf| {
        p.strip_prefix(h.dir.path())
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let mut out = Vec::new();
    for p in before.0.keys().chain(after.0.keys()) {
        let same = before.0.get(p) == after.0.get(p) && before.1.get(p) == after.1.get(p);
        if !same && !out.contains(&name(p)) {
            out.push(name(p));
        }
    }
    out
}

/// One cell, in a runtime of its own on a paused clock.
fn run_cell(fc: &FaultCase, target: Target) -> CellResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let rec = capture_logs();
    rt.block_on(async {
        match target {
            Target::Profile => profile_cell(fc.fault, &rec).await,
            _ => worker_cell(fc.fault, target, &rec).await,
        }
    })
}

/// A validation round of a healthy token (Thursday 10:00, it dies Friday 03:30).
async fn profile_cell(fault: Fault, rec: &Logs) -> CellResult {
    let h = Harness::new(ist_at(26, 10, 0)).await;
    h.store_fresh_token();
    let before = h.files();
    let mut core = h.core();
    h.sim.inject(Endpoint::Profile, fault, INJECTED);
    let from = rec.len();
    let t0 = h.now();
    let validation = core.check().await;
    let t1 = h.now();
    let outcome = match validation {
        CheckOutcome::NoToken => "no token",
        CheckOutcome::Valid(_) => "valid",
        CheckOutcome::Rejected(_) => "rejected",
        CheckOutcome::Unreachable(_) => "API unreachable",
    };
    let after = h.files();
    CellResult {
        attempts: h.sim.calls(Endpoint::Profile),
        elapsed_ms: (t1 - t0).num_milliseconds(),
        state: core.state(t1),
        outcome: outcome.into(),
        log: rec.last_problem(from),
        shown: core.snapshot(t1, Default::default()).last_check_result,
        files: before.0.len(),
        changed: changed_files(&h, &before, &after),
        worker_alive: None,
    }
}

/// A due renewal of a token with 30 minutes left (Thursday 10:00, it dies 10:30): strategy
/// browser (its login's exchange) or token-request (its v3 request), in the worker.
async fn worker_cell(fault: Fault, target: Target, rec: &Logs) -> CellResult {
    let mut h = Harness::new(ist_at(26, 10, 0)).await;
    let calls = h.record_calls().await;
    let redirect = format!("http://localhost:{}/callback", free_port());
    h.sim.set_config(|c| {
        c.auto_approve = true;
        c.redirect_uri = redirect.clone();
        c.token_lifetime = Some(Duration::from_secs(30 * 60));
    });
    h.store_fresh_token();
    h.sim.set_config(|c| c.token_lifetime = None);
    let sim = SimConfig::default();
    h.account.upstox.client_id = Some(sim.client_id.clone());
    h.account.upstox.client_secret = Some(Secret::new(sim.client_secret.clone()));
    h.account.upstox.redirect_uri = url::Url::parse(&redirect).unwrap();
    h.account.renew.strategy = match target {
        Target::Exchange => Strategy::Browser,
        _ => Strategy::TokenRequest,
    };
    let (path, topic, titles): (String, Topic, [&str; 2]) = match target {
        Target::Exchange => (
            "/v2/login/authorization/token".into(),
            Topic::Login,
            ["Login failed", "Logged in"],
        ),
        _ => (
            format!("/v3/login/auth/token/request/{}", sim.client_id),
            Topic::Renewal,
            ["Token request failed", "Approve the token request"],
        ),
    };
    let before = h.files();
    h.sim.inject(target.endpoint(), fault, INJECTED);
    let from = rec.len();
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let handle = worker::spawn(h.core().with_builtin_browser(true), tx);
    let ended: Notification = tokio::time::timeout(Duration::from_secs(900), async {
        loop {
            match rx.recv().await {
                Some(Event::Notice(n))
                    if n.topic == topic && titles.contains(&n.title.as_str()) =>
                {
                    return n;
                }
                Some(_) => {}
                None => panic!("{fault:?} {target:?}: the worker stopped"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{fault:?} {target:?}: the round did not end"));
    let state = handle.status.borrow().state;
    let log = rec.last_problem(from);
    // Still working: it answers a command with a new check.
    let checks = h.sim.calls(Endpoint::Profile);
    let mut worker_alive = handle.commands.send(Command::Check).await.is_ok();
    for _ in 0..600 {
        if h.sim.calls(Endpoint::Profile) > checks || !worker_alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker_alive &= h.sim.calls(Endpoint::Profile) > checks && !handle.task.is_finished();
    stop(handle).await;
    let after = h.files();
    let times = calls.times(&path);
    let elapsed_ms = times
        .first()
        .map_or(0, |t0| (ended.at - *t0).num_milliseconds());
    let outcome = match (target, ended.title.as_str()) {
        (Target::Exchange, "Login failed") => "login failed",
        (Target::Exchange, _) => "logged in",
        (_, "Token request failed") => "request failed",
        _ => "requested",
    };
    CellResult {
        attempts: h.sim.calls(target.endpoint()),
        elapsed_ms,
        state,
        outcome: outcome.into(),
        log,
        shown: Some(format!("{}: {}", ended.title, ended.message)),
        files: before.0.len(),
        changed: changed_files(&h, &before, &after),
        worker_alive: Some(worker_alive),
    }
}

// ---------------------------------------------------------------------------------------
// API faults: the table
// ---------------------------------------------------------------------------------------

#[test]
fn api_fault_table() {
    let monitor = MonitorConfig::default();
    assert_eq!(
        monitor.max_retries, 3,
        "the table assumes the default monitor"
    );
    let mut rows = vec![
        "| Fault | Endpoint | Attempts | Time (paused clock) | Final state | Stored files | Last warning logged | Meets the rules |".to_string(),
        "|---|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut notes = Vec::new();
    let mut failures = Vec::new();
    for fc in &FAULTS {
        let mut shown = Vec::new();
        for target in TARGETS {
            let r = run_cell(fc, target);
            let v = violations(fc, target, &r, &monitor);
            for problem in &v {
                failures.push(format!("{} × {}: {problem}", fc.name, target.label()));
            }
            let files = if r.changed.is_empty() {
                format!("untouched ({} files)", r.files)
            } else {
                format!("**changed**: {}", r.changed.join(", "))
            };
            let meets = if v.is_empty() {
                "yes".to_string()
            } else {
                format!("**no**: {}", v.join("; "))
            };
            rows.push(format!(
                "| {} | {} | {} | {} | {} ({}) | {} | {} | {} |",
                cell(fc.name),
                target.label(),
                r.attempts,
                render_window(window_ms(fc.fault, r.attempts, &monitor)),
                r.state.as_str(),
                r.outcome,
                files,
                cell(&code(r.log.as_deref().unwrap_or("(none)"))),
                cell(&meets),
            ));
            let what = match target {
                Target::Profile => "the last check reads",
                Target::Exchange | Target::TokenRequest => "notification",
            };
            shown.push(format!(
                "- {}: log {}; {what} {}",
                target.label(),
                code(r.log.as_deref().unwrap_or("(none)")),
                code(r.shown.as_deref().unwrap_or("(none)")),
            ));
        }
        notes.push(format!(
            "**{}.** {}\n\n{}",
            fc.name,
            fc.sends,
            shown.join("\n")
        ));
    }
    let mut problems = Vec::new();
    for (name, block) in [
        ("fault-table", rows.join("\n")),
        ("fault-notes", notes.join("\n\n")),
    ] {
        if let Err(e) = sync_doc_block(name, &block, &[]) {
            problems.push(e);
        }
    }
    if !failures.is_empty() {
        problems.push(format!(
            "{} cell(s) do not behave as the renewal rules ask:\n  {}",
            failures.len(),
            failures.join("\n  ")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

// ---------------------------------------------------------------------------------------
// Disk faults
// ---------------------------------------------------------------------------------------

/// A disk fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskFault {
    /// The token folder is a tmpfs remounted read-only.
    ReadOnly,
    /// The token folder is a 64 KiB tmpfs filled up by a file.
    Full,
    /// The backup path lies under a regular file (ENOTDIR).
    Backup,
}

impl DiskFault {
    fn name(self) -> &'static str {
        match self {
            DiskFault::ReadOnly => "read-only token folder",
            DiskFault::Full => "full disk",
            DiskFault::Backup => "unwritable backup path",
        }
    }

    fn made(self) -> &'static str {
        match self {
            DiskFault::ReadOnly => "a tmpfs, remounted `ro` (`unshare -rm`)",
            DiskFault::Full => "a 64 KiB tmpfs filled by a file (`unshare -rm`)",
            DiskFault::Backup => "`token.backups` under a regular file (ENOTDIR)",
        }
    }

    /// The operating system's words for it.
    fn os_reason(self) -> &'static str {
        match self {
            DiskFault::ReadOnly => "Read-only file system",
            DiskFault::Full => "No space left on device",
            DiskFault::Backup => "Not a directory",
        }
    }

    fn needs_namespace(self) -> bool {
        self != DiskFault::Backup
    }

    fn script_name(self) -> &'static str {
        match self {
            DiskFault::ReadOnly => "ro",
            DiskFault::Full => "full",
            DiskFault::Backup => "backup",
        }
    }
}

const DISK_FAULTS: [DiskFault; 3] = [DiskFault::ReadOnly, DiskFault::Full, DiskFault::Backup];

/// How the store is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `TokenStore::write` (in a child test process inside the namespace).
    Library,
    /// `tokenwatch refresh` with `renew.strategy: command`.
    Refresh,
    /// `tokenwatch daemon`, whose worker renews at start.
    Daemon,
}

const VIAS: [Via; 3] = [Via::Library, Via::Refresh, Via::Daemon];

impl Via {
    fn label(self) -> &'static str {
        match self {
            Via::Library => "`TokenStore::write`",
            Via::Refresh => "`tokenwatch refresh`",
            Via::Daemon => "`tokenwatch daemon`",
        }
    }

    fn script_name(self) -> &'static str {
        match self {
            Via::Library => "library",
            Via::Refresh => "refresh",
            Via::Daemon => "daemon",
        }
    }
}

/// The simulator the binaries renew against: in this process, on a runtime of its own, real
/// time, tokens living 20 hours.
fn bin_sim() -> &'static SimHost {
    static SIM: OnceLock<SimHost> = OnceLock::new();
    SIM.get_or_init(|| {
        let config = SimConfig {
            token_lifetime: Some(Duration::from_secs(20 * 3600)),
            ..SimConfig::default()
        };
        SimHost::start_own_runtime(config, "localhost")
    })
}

/// Whether this machine lets us make a user + mount namespace and mount a tmpfs in it.
fn namespace_support() -> &'static Result<(), String> {
    static SUPPORT: OnceLock<Result<(), String>> = OnceLock::new();
    SUPPORT.get_or_init(|| {
        if std::env::var_os("FAULT_SUITE_NO_NAMESPACE").is_some() {
            return Err("FAULT_SUITE_NO_NAMESPACE is set".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Process::new("unshare")
            .args([
                "-rm",
                "sh",
                "-c",
                "mount -t tmpfs -o size=16k tmpfs \"$1\"",
                "sh",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`unshare -rm` + `mount -t tmpfs` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    })
}

/// A token for the disk cases (never sent anywhere but the simulator, which rejects it).
fn disk_token(label: &str, expires_in: chrono::Duration) -> Token {
    let now = SystemClock.now();
    tokens::token(
        format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.{label}-faultsuite-0123456789abcdef.c2ln"),
        Some(now - chrono::Duration::hours(20)),
        now + expires_in,
    )
}

/// Every file under `dir` (but lock files and the filler) with its bytes and mtime.
fn snapshot_dir(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, SystemTime)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(root, &path, out);
            } else if !(name.ends_with(".lock") || name == "fill") {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
                out.insert(rel, (std::fs::read(&path).unwrap(), mtime));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// One disk case's folder: `stage/` (the store before), `mnt/` (where tokenwatch works: a
/// tmpfs inside the namespace), `after/` (a copy of `mnt/` taken at the end), the config.
struct DiskBox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    previous: Token,
}

impl DiskBox {
    fn new(fault: DiskFault) -> DiskBox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for d in ["stage", "mnt", "after", "home"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        // The store: a token that died an hour ago (so a renewal is due) replacing an older
        // one (`.prev`), and its backup.
        let backup = match fault {
            DiskFault::Backup => {
                std::fs::write(root.join("notadir"), "a regular file, not a folder\n").unwrap();
                root.join("notadir/upstox_token.json")
            }
            _ => root.join("mnt/backup/upstox_token.json"),
        };
        let staged_backup = root.join("stage/backup/upstox_token.json");
        let store = TokenStore::new(
            root.join("stage/upstox_token.json"),
            match fault {
                DiskFault::Backup => vec![],
                _ => vec![staged_backup],
            },
        );
        store
            .write(&disk_token("older", -chrono::Duration::hours(30)))
            .unwrap();
        let previous = disk_token("previous", -chrono::Duration::hours(1));
        store.write(&previous).unwrap();
        let sim = bin_sim();
        let config = json!({
            "upstox": {"api_base": sim.base()},
            "token": {"path": root.join("mnt/upstox_token.json"), "backups": [backup]},
            "monitor": {"backoff_initial": "50ms", "backoff_max": "200ms"},
            "renew": {
                "strategy": "command",
                "not_before": "00:00",
                "command": ["curl", "-sf", "-X", "POST", format!("{}/sim/token", sim.base())],
            },
        });
        std::fs::write(root.join("cfg.yaml"), config.to_string()).unwrap();
        DiskBox {
            _dir: dir,
            root,
            previous,
        }
    }

    fn backup_path(&self, fault: DiskFault) -> PathBuf {
        match fault {
            DiskFault::Backup => self.root.join("notadir/upstox_token.json"),
            _ => self.root.join("mnt/backup/upstox_token.json"),
        }
    }

    /// Paths and temp-file names made stable for the doc.
    fn normalise(&self, text: &str) -> String {
        let mut s = text.replace(&self.root.display().to_string(), "<dir>");
        // tempfile's random suffix: `.upstox_token.json.tmpAbC123`.
        let mut out = String::new();
        while let Some(i) = s.find(".tmp") {
            let (head, tail) = s.split_at(i + 4);
            out.push_str(head);
            let n = tail
                .chars()
                .take(6)
                .take_while(char::is_ascii_alphanumeric)
                .count();
            if n == 6 {
                out.push_str("XXXXXX");
                s = tail[6..].to_string();
            } else {
                s = tail.to_string();
            }
        }
        out.push_str(&s);
        out
    }
}

/// The script every disk case runs: set up `mnt/`, make the fault, run, copy `mnt/` out.
const DISK_SCRIPT: &str = r#"
set -e
if [ "$FAULT" != backup ]; then mount -t tmpfs -o size=64k tmpfs "$ROOT/mnt"; fi
cp -a "$ROOT/stage/." "$ROOT/mnt/"
case "$FAULT" in
  ro) mount -o remount,ro "$ROOT/mnt" ;;
  full) dd if=/dev/zero of="$ROOT/mnt/fill" bs=1k 2>/dev/null || true ;;
esac
set +e
case "$RUN" in
  library)
    FAULT_SUITE_STORE="$ROOT/mnt/upstox_token.json" FAULT_SUITE_BACKUP="$BACKUP" \
      "$TEST_EXE" --exact store_write_inside_namespace --ignored --nocapture --test-threads=1
    code=$? ;;
  refresh)
    "$BIN" -c "$ROOT/cfg.yaml" refresh
    code=$? ;;
  daemon)
    "$BIN" -c "$ROOT/cfg.yaml" daemon </dev/null &
    pid=$!
    read -r go
    echo "daemon-state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/$pid/status)"
    kill -TERM "$pid"
    wait "$pid"
    code=$? ;;
esac
cp -a "$ROOT/mnt/." "$ROOT/after/"
echo "exit=$code"
"#;

/// What one disk case showed.
struct DiskRun {
    stdout: String,
    stderr: String,
    exit: Option<i32>,
    /// The daemon's process state when the test looked, after the failure (`S`, `R`, ...).
    daemon_state: Option<String>,
    /// The daemon's log line that reported the fault, if one did.
    failure_line: Option<String>,
}

fn run_disk_case(b: &DiskBox, fault: DiskFault, via: Via) -> DiskRun {
    let mut cmd = if fault.needs_namespace() {
        let mut c = Process::new("unshare");
        c.args(["-rm", "sh", "-c", DISK_SCRIPT]);
        c
    } else {
        let mut c = Process::new("sh");
        c.args(["-c", DISK_SCRIPT]);
        c
    };
    cmd.env_clear()
        .envs(clock_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", b.root.join("home"))
        .env("ROOT", &b.root)
        .env("FAULT", fault.script_name())
        .env("RUN", via.script_name())
        .env("BACKUP", b.backup_path(fault))
        .env("BIN", assert_cmd::cargo::cargo_bin("tokenwatch"))
        .env("TEST_EXE", std::env::current_exe().unwrap())
        .current_dir(&b.root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut s);
        s
    });
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let mut failure_line = None;
    if via == Via::Daemon {
        // Wait for the renewal (after the validation at start) to report the fault; then give
        // a dying worker a second to die before looking.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut validated = false;
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            // The state notice and the validation both say "expired"; a failure to tidy up
            // at start (before either) is not the renewal's.
            validated |= line.contains("expired");
            // (The shared verdict file fails to be written too, at the check: not the renewal.)
            if validated && line.contains(fault.os_reason()) && !line.contains(".state") {
                failure_line = Some(line);
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(1));
        let _ = writeln!(stdin, "go");
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let stdout = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    assert!(
        status.success(),
        "{fault:?} {via:?}: the script failed ({status}):\n{stdout}\n{stderr}"
    );
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_owned)
    };
    DiskRun {
        exit: field("exit=").and_then(|c| c.trim().parse().ok()),
        daemon_state: field("daemon-state="),
        failure_line,
        stdout,
        stderr,
    }
}

/// `2026-11-26T16:54:11.251126Z ERROR message account=default` → `ERROR message`.
fn log_message(line: &str) -> String {
    let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
    rest.trim_end_matches(" account=default").to_owned()
}

/// One row of the disk table.
struct DiskRow {
    fault: DiskFault,
    via: Via,
    result: String,
    message: String,
    previous: String,
    alive: String,
    violations: Vec<String>,
}

fn disk_case(fault: DiskFault, via: Via) -> DiskRow {
    let b = DiskBox::new(fault);
    let stage = snapshot_dir(&b.root.join("stage"));
    let notadir = std::fs::read(b.root.join("notadir")).ok();
    let run = run_disk_case(&b, fault, via);
    let after = snapshot_dir(&b.root.join("after"));
    let context = format!(
        "stdout:\n{}\nstderr:\n{}",
        b.normalise(&run.stdout),
        b.normalise(&run.stderr)
    );
    let mut v = Vec::new();
    let reason = fault.os_reason();

    // The result and the message the user sees.
    let (result, message) = match via {
        Via::Library => {
            let line = run
                .stdout
                .lines()
                .find_map(|l| l.split_once("STORE-RESULT: ").map(|(_, json)| json))
                .unwrap_or_else(|| panic!("{fault:?}: the child said nothing\n{context}"));
            let r: Value = serde_json::from_str(line).unwrap();
            if r["ok"] == true {
                let failures = r["backup_failures"].as_array().cloned().unwrap_or_default();
                let msg = failures
                    .iter()
                    .map(|f| format!("{}: {}", f[0].as_str().unwrap(), f[1].as_str().unwrap()))
                    .collect::<Vec<_>>()
                    .join("; ");
                (
                    format!("`Ok`, {} backup failure(s)", failures.len()),
                    b.normalise(&msg),
                )
            } else {
                (
                    "`Err`".to_string(),
                    b.normalise(r["error"].as_str().unwrap()),
                )
            }
        }
        Via::Refresh => {
            let summary = run
                .stdout
                .lines()
                .find(|l| l.starts_with("Renewed") || l.starts_with("Not renewed"))
                .unwrap_or("(no summary line)");
            let mut msg = format!("stdout: {summary}");
            if !summary.contains(reason)
                && let Some(l) = run.stderr.lines().find(|l| l.contains(reason))
            {
                msg.push_str(&format!("\nstderr: {}", log_message(l)));
            }
            (
                format!("exit {}", run.exit.map_or("?".into(), |c| c.to_string())),
                b.normalise(&msg),
            )
        }
        Via::Daemon => (
            format!(
                "exit {} on SIGTERM",
                run.exit.map_or("?".into(), |c| c.to_string())
            ),
            run.failure_line
                .as_deref()
                .map_or("(no log line names the fault)".into(), |l| {
                    b.normalise(&log_message(l))
                }),
        ),
    };
    if !message.contains(reason) {
        v.push(format!("no message says {reason:?}"));
    }
    let names_the_path = match fault {
        DiskFault::Backup => message.contains("<dir>/notadir/upstox_token.json"),
        _ => message.contains("<dir>/mnt/upstox_token.json"),
    };
    if !names_the_path {
        v.push("the message does not name the file it could not write".into());
    }
    if fault == DiskFault::Backup && message.contains("the previous token file is untouched") {
        v.push(
            "the backup warning says \"the previous token file is untouched\", but the token \
             file was just replaced (only the backup failed)"
                .into(),
        );
    }

    // The process.
    let alive = match via {
        Via::Library => "—".to_string(),
        Via::Refresh => {
            let want = if fault == DiskFault::Backup { 0 } else { 1 };
            if run.exit != Some(want) {
                v.push(format!(
                    "refresh exited {:?}, expected {want} (0 only with a valid token stored)",
                    run.exit
                ));
            }
            "—".to_string()
        }
        Via::Daemon => {
            let level = run
                .failure_line
                .as_deref()
                .map(log_message)
                .and_then(|m| m.split_whitespace().next().map(str::to_owned))
                .unwrap_or_default();
            if run.failure_line.is_some() && !matches!(level.as_str(), "WARN" | "ERROR") {
                v.push(format!(
                    "the daemon reports the fault at {level} level, not as a warning or error"
                ));
            }
            let state = run.daemon_state.clone().unwrap_or_default();
            let running = !state.is_empty() && state != "Z";
            let stopped_cleanly = run.exit == Some(0) && run.stderr.contains("Worker stopped");
            if !running {
                v.push(format!(
                    "the daemon was not running after the fault (state {state:?})"
                ));
            }
            if !stopped_cleanly {
                v.push("the daemon did not stop cleanly on SIGTERM (worker gone?)".into());
            }
            if running && stopped_cleanly {
                "yes".to_string()
            } else {
                "**no**".to_string()
            }
        }
    };

    // The files.
    let temp_left: Vec<&String> = after.keys().filter(|k| k.contains(".tmp")).collect();
    if !temp_left.is_empty() {
        v.push(format!("temp files left behind: {temp_left:?}"));
    }
    let previous = match fault {
        DiskFault::ReadOnly | DiskFault::Full => {
            let changed: Vec<&String> = stage
                .keys()
                .chain(after.keys())
                .filter(|k| !k.contains(".tmp") && stage.get(*k) != after.get(*k))
                .collect();
            if changed.is_empty() {
                format!("intact: {} files, same bytes and mtime", stage.len())
            } else {
                v.push(format!(
                    "a failed write leaves the files as they were; changed: {changed:?}"
                ));
                format!("**changed**: {changed:?}")
            }
        }
        DiskFault::Backup => {
            let prev = read_token_file(&b.root.join("after/upstox_token.json.prev"))
                .ok()
                .flatten();
            let kept = prev.is_some_and(|t| t.access_token.same_as(&b.previous.access_token));
            let untouched = std::fs::read(b.root.join("notadir")).ok() == notadir;
            if !kept {
                v.push("the previous token is not in `.prev`".into());
            }
            if !untouched {
                v.push("the regular file in the backup path changed".into());
            }
            let primary = read_token_file(&b.root.join("after/upstox_token.json"))
                .ok()
                .flatten();
            let renewed = primary
                .as_ref()
                .is_some_and(|t| !t.access_token.same_as(&b.previous.access_token));
            if !renewed {
                v.push("the token file was not renewed (only the backup is unwritable)".into());
            }
            if kept && untouched && renewed {
                "kept as `.prev`; token file renewed; backup path untouched".to_string()
            } else {
                "**not kept**".to_string()
            }
        }
    };
    if !v.is_empty() {
        eprintln!("{fault:?} via {via:?}:\n{context}");
    }
    DiskRow {
        fault,
        via,
        result,
        message,
        previous,
        alive,
        violations: v,
    }
}

#[test]
fn disk_fault_table() {
    let skip = match namespace_support() {
        Ok(()) => None,
        Err(why) => {
            eprintln!(
                "SKIPPED: the read-only folder and full disk cases need a user + mount \
                 namespace: {why}"
            );
            Some(why.clone())
        }
    };
    let cases: Vec<(DiskFault, Via)> = DISK_FAULTS
        .iter()
        .flat_map(|f| VIAS.iter().map(move |v| (*f, *v)))
        .collect();
    let runnable: Vec<(DiskFault, Via)> = cases
        .iter()
        .copied()
        .filter(|(f, _)| skip.is_none() || !f.needs_namespace())
        .collect();
    let rows: Vec<DiskRow> = std::thread::scope(|s| {
        let handles: Vec<_> = runnable
            .iter()
            .map(|(f, v)| s.spawn(move || disk_case(*f, *v)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut lines = vec![
        "| Disk fault | Run | How it is made | Result | Message (paths shortened to `<dir>`, temp names to `.tmpXXXXXX`) | Previous token | Worker alive | Meets the rules |".to_string(),
        "|---|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut failures = Vec::new();
    for r in &rows {
        for problem in &r.violations {
            failures.push(format!(
                "{} × {}: {problem}",
                r.fault.name(),
                r.via.script_name()
            ));
        }
        let meets = if r.violations.is_empty() {
            "yes".to_string()
        } else {
            format!("**no**: {}", r.violations.join("; "))
        };
        lines.push(format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.fault.name(),
            r.via.label(),
            r.fault.made(),
            r.result,
            r.message
                .lines()
                .map(|l| match l.split_once(": ") {
                    Some((from @ ("stdout" | "stderr"), text)) =>
                        format!("{from} {}", cell(&code(text))),
                    _ => cell(&code(l)),
                })
                .collect::<Vec<_>>()
                .join("<br>"),
            r.previous,
            r.alive,
            cell(&meets),
        ));
    }
    let skipped: Vec<String> = cases
        .iter()
        .filter(|c| !runnable.contains(c))
        .map(|(f, v)| format!("| {} | {}", f.name(), v.label()))
        .collect();
    for key in &skipped {
        eprintln!("SKIPPED: {key} |");
    }
    let mut problems = Vec::new();
    if let Err(e) = sync_doc_block("disk-table", &lines.join("\n"), &skipped) {
        problems.push(e);
    }
    if !failures.is_empty() {
        problems.push(format!(
            "{} disk case(s) do not behave as the store rules ask:\n  {}",
            failures.len(),
            failures.join("\n  ")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Run by `disk_fault_table` (inside the mount namespace for the tmpfs cases): one
/// `TokenStore::write` of a new token over the store at `$FAULT_SUITE_STORE`, with the backup
/// `$FAULT_SUITE_BACKUP`; prints the outcome as a `STORE-RESULT:` JSON line.
#[test]
#[ignore = "an entry point for disk_fault_table, which runs it inside a mount namespace"]
fn store_write_inside_namespace() {
    let (Ok(path), Ok(backup)) = (
        std::env::var("FAULT_SUITE_STORE"),
        std::env::var("FAULT_SUITE_BACKUP"),
    ) else {
        panic!("run by disk_fault_table, with FAULT_SUITE_STORE and FAULT_SUITE_BACKUP set");
    };
    let store = TokenStore::new(PathBuf::from(path), [PathBuf::from(backup)]);
    let result = match store.write(&disk_token("library-new", chrono::Duration::hours(20))) {
        Ok(report) => json!({
            "ok": true,
            "backup_failures": report
                .backup_failures
                .iter()
                .map(|(p, why)| json!([p, why]))
                .collect::<Vec<_>>(),
        }),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    println!("STORE-RESULT: {result}");
}
