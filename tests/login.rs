//! End-to-end tests of the OAuth login: the library's `login::run` with its
//! real loopback callback listener, the `tokenwatch login` binary, and the worker's
//! `StartLogin` / `PasteRedirect` / `CancelLogin`, all against the Upstox simulator.
//!
//! Everything runs in real time: a paused clock would auto-advance into the login timeout
//! while an external browser process works. Tests run in parallel, so each one has its own
//! callback port (bound on 127.0.0.1:0, read, released, then registered as both the
//! simulator's and the account's `redirect_uri`), its own temporary folder and its own
//! simulator. The "browser" is `login.browser_command`: `curl -sL` follows the
//! auto-approving simulator's 302 to the callback listener. Library tests often play the
//! browser themselves with an HTTP client that does not follow redirects, so they can read
//! the code, forge callbacks and read the pages the listener answers with.
//!
//! Secrets: in-process simulators use a distinctive client secret ([`SECRET`]). Every test
//! scans what it captured (the binary's stdout and stderr, callback pages, error texts, and
//! the library's `tracing` output, collected by one global subscriber) for that secret, the
//! access tokens (whole and every 20-character piece) and the authorization codes it saw.

mod common;

use chrono::{DateTime, Utc};
use common::time::{clear_of_the_0330_expiry, with_small_thresholds};
use common::{
    Command, Event, Leaks, Out, Resp, Sandbox, SimHost, SimProcess, client, fetch, get,
    global_logs, listening, mode, port_free, query_param,
};
use serde_json::{Value, json};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenwatch::auth::callback::ListenError;
use tokenwatch::auth::login::{self, LoginError, LoginProgress, LoginSettings, Obtained};
use tokenwatch::brokers::upstox::client::ApiError;
use tokenwatch::brokers::upstox::sim::{Endpoint, Fault, SimConfig};
use tokenwatch::clock::SystemClock;
use tokenwatch::config::{
    AccountConfig, LoginConfig, MonitorConfig, RenewConfig, Strategy, TokenConfig, UpstoxConfig,
};
use tokenwatch::messages::LoginUpdate;
use tokenwatch::secret::Secret;
use tokenwatch::token::expiry::upstox_expiry;
use tokenwatch::token::store::TokenStore;
use tokenwatch::token::{ExpirySource, Token, TokenFileFormat};
use tokenwatch::worker::{self, Core};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use url::Url;

// ---------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------

/// The simulator's app key (its default).
const CLIENT_ID: &str = "615b1297-sim-client";
/// The client secret of every in-process simulator: distinctive, so a scan cannot miss it.
const SECRET: &str = "twLoginE2E-Zq7Rk2Vx9Lm4-secret";
/// The secret `tokenwatch simulate` uses (and prints, by design).
const SIM_DEFAULT_SECRET: &str = "sim-secret";
/// Longest wait for any one step (a line of output, an event, an HTTP answer).
const STEP: Duration = Duration::from_secs(30);
/// How long a binary login test that needs its new token healthy takes at most: such tests
/// start with `clear_of_the_0330_expiry(A_RUN)`, since in the last minutes before 03:30 IST
/// no token reads healthy (even under the small thresholds).
const A_RUN: Duration = Duration::from_secs(120);
/// Simulator tokens live this long, so a login's token is healthy at any time of day.
const TOKEN_LIFETIME: Duration = Duration::from_secs(20 * 3600);
/// The browser: fetch the login page and follow the redirect to the callback.
const CURL: [&str; 4] = ["curl", "-sL", "-o", "/dev/null"];

// ---------------------------------------------------------------------------------------
// Ports and addresses
// ---------------------------------------------------------------------------------------

/// Wait (briefly: the listener stops on a task of its own) until `port` is free.
async fn port_freed(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if port_free(port) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// This machine's addresses that are not loopback (IPv4 and global IPv6).
fn non_loopback_addrs() -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (bind, target) in [
        ("0.0.0.0:0", "8.8.8.8:80"),
        ("[::]:0", "[2001:4860:4860::8888]:80"),
    ] {
        if let Ok(s) = std::net::UdpSocket::bind(bind)
            && s.connect(target).is_ok()
            && let Ok(a) = s.local_addr()
        {
            out.push(a.ip());
        }
    }
    if let Ok(o) = std::process::Command::new("hostname").arg("-I").output() {
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|w| w.parse::<IpAddr>().ok()),
        );
    }
    out.retain(|ip| match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified() && !v4.is_link_local(),
        // fe80::/10 needs a scope id to connect to; skip it.
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    });
    out.sort();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------------------
// URLs and HTTP (the tests' own browser)
// ---------------------------------------------------------------------------------------

/// `url` with query parameter `key` set to `value` (others kept, in order).
fn with_param(url: &Url, key: &str, value: &str) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == key {
                (k, value.to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    let mut out = url.clone();
    out.set_query(None);
    out.query_pairs_mut().extend_pairs(pairs);
    out
}

/// The auto-approving dialog, without following: where it sends the browser.
async fn approved_redirect(dialog: &Url) -> Url {
    let page = get(dialog).await;
    assert_eq!(page.status, 302, "the dialog did not redirect: {page:?}");
    Url::parse(page.location().expect("a Location header")).unwrap()
}

/// `name`/`value` of every hidden input of a form, HTML-unescaped.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split(r#"<input type="hidden" name=""#)
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let value = rest
                .split_once(r#"value=""#)
                .unwrap()
                .1
                .split_once('"')
                .unwrap()
                .0;
            let value = value
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            (name.to_owned(), value)
        })
        .collect()
}

fn cache_headers_ok(page: &Resp) {
    assert_eq!(
        page.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "{page:?}"
    );
    assert_eq!(
        page.headers
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("no-referrer"),
        "{page:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The in-process simulator
// ---------------------------------------------------------------------------------------

/// A simulator on loopback with its own callback port registered as its `redirect_uri`, the
/// distinctive [`SECRET`], tokens living [`TOKEN_LIFETIME`].
async fn start_sim(auto_approve: bool) -> SimHost {
    let config = SimConfig {
        client_id: CLIENT_ID.into(),
        client_secret: SECRET.into(),
        auto_approve,
        token_lifetime: Some(TOKEN_LIFETIME),
        ..SimConfig::default()
    };
    SimHost::start(config, "localhost").await
}

/// A library test's start: the global log capture, a simulator ([`start_sim`]) and a
/// folder for the token store.
async fn lib_test(auto_approve: bool) -> (SimHost, tempfile::TempDir) {
    global_logs();
    (start_sim(auto_approve).await, tempfile::tempdir().unwrap())
}

/// A config for the binary against `sim`: strategy browser, the curl browser, 20 s to log in.
fn login_config(sim: &SimHost) -> Value {
    sim.binary_config(
        json!({"strategy": "browser"}),
        json!({"timeout": "20s", "browser_command": CURL}),
    )
}

/// What the login tests ask of their simulator.
impl SimHost {
    /// Library settings: a browser command that opens nothing (the test is the browser).
    fn settings(&self, account: &str) -> LoginSettings {
        LoginSettings {
            broker: Default::default(),
            account: account.into(),
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(SECRET),
            redirect_uri: Url::parse(&self.redirect).unwrap(),
            api_base: self.server.base_url.clone(),
            login_base: self.server.base_url.clone(),
            user_id: None,
            timeout: Duration::from_secs(20),
            browser_command: vec!["true".into()],
            env_browser: None,
            open_browser: true,
            no_browser_reason: "--no-browser",
            builtin_browser: false,
        }
    }

    /// The callback address with these query parameters.
    fn callback(&self, pairs: &[(&str, &str)]) -> Url {
        let mut u = Url::parse(&self.redirect).unwrap();
        u.query_pairs_mut().extend_pairs(pairs);
        u
    }

    fn account(&self, dir: &Path, name: &str) -> AccountConfig {
        AccountConfig {
            broker: Default::default(),
            kite: Default::default(),
            fyers: Default::default(),
            angel: Default::default(),
            dhan: Default::default(),
            name: name.into(),
            upstox: UpstoxConfig {
                client_id: Some(CLIENT_ID.into()),
                client_secret: Some(Secret::new(SECRET)),
                redirect_uri: Url::parse(&self.redirect).unwrap(),
                api_base: self.server.base_url.clone(),
                ..UpstoxConfig::default()
            },
            token: TokenConfig {
                path: dir.join("upstox_token.json"),
                backups: vec![dir.join("backup/upstox_token.json")],
                env_file: None,
                on_change: vec![],
            },
            renew: RenewConfig {
                strategy: Strategy::Browser,
                ..RenewConfig::default()
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Library logins
// ---------------------------------------------------------------------------------------

/// A `login::run` on a task, with its channels.
struct Login {
    task: tokio::task::JoinHandle<Result<Obtained, LoginError>>,
    paste: mpsc::Sender<String>,
    cancel: Option<oneshot::Sender<()>>,
    progress: mpsc::Receiver<LoginProgress>,
    seen: Vec<LoginProgress>,
}

/// What `LoginProgress::Waiting` said.
struct Waiting {
    url: Url,
    state: String,
    listening: Vec<SocketAddr>,
    until: DateTime<Utc>,
    browser: Result<String, String>,
}

fn begin(settings: LoginSettings, store: TokenStore) -> Login {
    let (paste, paste_rx) = mpsc::channel(4);
    let (cancel, cancel_rx) = oneshot::channel();
    let (progress_tx, progress) = mpsc::channel(16);
    let task = tokio::spawn(login::run(
        settings,
        store,
        Arc::new(SystemClock),
        paste_rx,
        cancel_rx,
        progress_tx,
    ));
    Login {
        task,
        paste,
        cancel: Some(cancel),
        progress,
        seen: Vec::new(),
    }
}

impl Login {
    async fn next(&mut self) -> LoginProgress {
        let p = tokio::time::timeout(STEP, self.progress.recv())
            .await
            .unwrap_or_else(|_| panic!("no login progress within {STEP:?}: {:?}", self.seen))
            .unwrap_or_else(|| panic!("the login ended; progress so far: {:?}", self.seen));
        self.seen.push(p.clone());
        p
    }

    async fn waiting(&mut self) -> Waiting {
        match self.next().await {
            LoginProgress::Waiting {
                url,
                listening,
                until,
                browser,
            } => Waiting {
                state: query_param(&url, "state").expect("the login URL has a state"),
                url,
                listening,
                until,
                browser,
            },
            other => panic!("expected Waiting, got {other:?}"),
        }
    }

    async fn paste(&self, text: &str) {
        self.paste.send(text.to_owned()).await.unwrap();
    }

    fn cancel(&mut self) {
        let _ = self.cancel.take().unwrap().send(());
    }

    /// Cancel the login; it must end `Cancelled`.
    async fn cancelled(&mut self) {
        self.cancel();
        let e = expect_err(self.end().await);
        assert!(matches!(e, LoginError::Cancelled), "{e:?}");
    }

    async fn end(&mut self) -> Result<Obtained, LoginError> {
        let r = tokio::time::timeout(STEP, &mut self.task)
            .await
            .expect("the login did not end in time")
            .expect("the login task panicked");
        while let Ok(p) = self.progress.try_recv() {
            self.seen.push(p);
        }
        r
    }
}

/// Scan what `leaks` holds for the client `secret`, every token (whole, signature and
/// pieces) and every authorization code.
fn assert_no_leak(mut leaks: Leaks, secret: &str, tokens: &[&str], codes: &[&str]) {
    for (i, t) in tokens.iter().enumerate() {
        leaks.token(&format!("access token {i}"), t);
    }
    for (i, c) in codes.iter().enumerate() {
        leaks.secret(&format!("authorization code {i}"), c);
    }
    leaks.secret("client secret", secret);
    leaks.assert_clean();
}

/// A library login for `account` (default settings, a store in `dir`), waiting.
async fn start_login(sim: &SimHost, dir: &tempfile::TempDir, account: &str) -> (Login, Waiting) {
    let mut login = begin(sim.settings(account), store_in(dir.path()));
    let w = login.waiting().await;
    (login, w)
}

/// The callback port is free again within 2 s (the listener stops on a task of its own).
async fn assert_freed(sim: &SimHost, why: &str) {
    assert!(
        port_freed(sim.callback_port, Duration::from_secs(2)).await,
        "{why}"
    );
}

/// A login for `account` starts (nothing holds its lock or port) and is cancelled.
async fn starts_and_cancels(sim: &SimHost, dir: &tempfile::TempDir, account: &str) {
    start_login(sim, dir, account).await.0.cancelled().await;
}

/// The auto-approving dialog of a waiting login: where it sends the browser, and the code.
async fn approve(w: &Waiting) -> (Url, String) {
    let loc = approved_redirect(&w.url).await;
    let code = query_param(&loc, "code").expect("a code");
    (loc, code)
}

/// When a token the in-process simulator issues at `t` ends: TOKEN_LIFETIME later, or at the
/// 03:30 IST after `t` when that comes first.
fn sim_token_end(t: DateTime<Utc>) -> DateTime<Utc> {
    let lifetime = chrono::Duration::from_std(TOKEN_LIFETIME).unwrap();
    (t + lifetime).min(upstox_expiry(t))
}

fn expect_ok(r: Result<Obtained, LoginError>) -> Obtained {
    match r {
        Ok(o) => o,
        Err(e) => panic!("the login failed: {e} ({e:?})"),
    }
}

fn expect_err(r: Result<Obtained, LoginError>) -> LoginError {
    match r {
        Ok(o) => panic!(
            "the login succeeded unexpectedly (token until {})",
            o.token.expires_at
        ),
        Err(e) => e,
    }
}

fn store_in(dir: &Path) -> TokenStore {
    TokenStore::new(dir.join("upstox_token.json"), vec![])
}

/// Check a stored token file; returns the access token.
fn stored_oauth_token(path: &Path, lifetime_from: Option<(Instant, DateTime<Utc>)>) -> String {
    assert_eq!(mode(path), 0o600, "{} is not 0600", path.display());
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(v["format"], 1, "{v}");
    assert_eq!(v["obtained_via"], "oauth", "{v}");
    assert_eq!(v["token_type"], "Bearer", "{v}");
    assert_eq!(v["user_id"], "AB1234", "{v}");
    assert!(v["created_at"].is_i64(), "{v}");
    let exp = v["expires_at"].as_str().unwrap();
    assert!(exp.ends_with("+05:30"), "{v}");
    assert!(v["issued_at"].as_str().unwrap().ends_with("+05:30"), "{v}");
    let token = v["access_token"].as_str().unwrap().to_owned();
    assert!(
        token.starts_with("eyJ") && token.split('.').count() == 3,
        "not a JWT"
    );
    if let Some((_, started)) = lifetime_from {
        // The in-process simulator's tokens live TOKEN_LIFETIME, unless the 03:30 IST rule
        // ends them first.
        let exp = DateTime::parse_from_rfc3339(exp)
            .unwrap()
            .with_timezone(&Utc);
        assert!(
            exp >= sim_token_end(started) - chrono::Duration::seconds(2)
                && exp <= sim_token_end(Utc::now()) + chrono::Duration::seconds(2),
            "expires_at {exp} is not the earlier of the token's exp and the 03:30 IST rule"
        );
    }
    token
}

// ---------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------

/// `status --validate --json` says healthy and API-validated: its output and JSON.
async fn validated_status(sb: &Sandbox) -> (Out, Value) {
    let status = sb.run_async(&["status", "--validate", "--json"]).await;
    assert_eq!(status.code, Some(0), "{}", status.all());
    let j = status.json();
    assert_eq!(j["state"], "healthy", "{j}");
    assert_eq!(j["api_validated"], true, "{j}");
    (status, j)
}

/// A binary test's start: an auto-approving simulator and a sandbox configured for it.
async fn binary_test() -> (SimHost, Sandbox) {
    binary_test_with(|_| {}).await
}

/// [`binary_test`] with the config changed by `edit`.
async fn binary_test_with(edit: impl FnOnce(&mut Value)) -> (SimHost, Sandbox) {
    let sim = start_sim(true).await;
    let mut config = login_config(&sim);
    edit(&mut config);
    let sb = sandbox(&config);
    (sim, sb)
}

/// A browser command that only leaves `marker` behind.
fn touch(marker: &Path) -> Vec<String> {
    let script = format!("touch '{}'", marker.display());
    vec!["sh".into(), "-c".into(), script]
}

/// A sandbox with this config file (JSON is YAML).
fn sandbox(config: &Value) -> Sandbox {
    let sb = Sandbox::new();
    sb.write_config(config);
    sb
}

/// Start `tokenwatch` in `sb` with stdin, stdout and stderr piped, to read the prompt and
/// paste addresses.
fn interactive(sb: &Sandbox, args: &[&str]) -> Interactive {
    let mut child = tokio::process::Command::from(sb.cmd(args))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    Interactive {
        pid: child.id().unwrap(),
        child,
        stdin,
        lines: BufReader::new(stdout).lines(),
        stdout: Vec::new(),
        stderr,
    }
}

/// A running `tokenwatch` with piped stdio.
struct Interactive {
    pid: u32,
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stdout: Vec<String>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Interactive {
    /// Read stdout until a line containing `needle`.
    async fn line_with(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    self.stdout.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Ok(_) => panic!("stdout ended before {needle:?}: {:#?}", self.stdout),
                Err(_) => panic!("no {needle:?} within {STEP:?}: {:#?}", self.stdout),
            }
        }
    }

    /// The printed Upstox login address.
    async fn login_url(&mut self) -> Url {
        let line = self.line_with("/v2/login/authorization/dialog?").await;
        Url::parse(line.trim()).unwrap()
    }

    /// Paste the address `sim` would send the browser to with `code` and `state`.
    async fn paste_callback(&mut self, sim: &SimHost, code: &str, state: &str) {
        let address = sim.callback(&[("code", code), ("state", state)]);
        self.send(address.as_str()).await;
    }

    async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// Wait for the exit; everything it printed.
    async fn finish(mut self) -> Out {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => self.stdout.push(line),
                Ok(_) => break,
                Err(_) => panic!("tokenwatch did not finish: {:#?}", self.stdout),
            }
        }
        let status = tokio::time::timeout(STEP, self.child.wait())
            .await
            .expect("tokenwatch did not exit")
            .unwrap();
        drop(self.stdin.take());
        let stderr = tokio::time::timeout(STEP, self.stderr)
            .await
            .expect("stderr did not close")
            .unwrap();
        let now = Utc::now();
        Out {
            code: status.code(),
            stdout: self.stdout.join("\n"),
            stderr,
            before: now,
            after: now,
        }
    }
}

// =======================================================================================
// 1. The happy login
// =======================================================================================

/// `tokenwatch login` with the curl browser: exit 0, a 0600 format-1 token from "oauth",
/// and `status --validate --json` healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_login_with_the_browser_command_stores_a_validated_token() {
    // The token the login stores must read healthy (`validated_status`).
    clear_of_the_0330_expiry(A_RUN);
    let (sim, sb) = binary_test().await;
    let started = (Instant::now(), Utc::now());
    let out = sb.run_async(&["login"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    let path = sb.token_path();
    out.assert_stdout(&format!("Logged in: token stored at {}", path.display()));
    out.assert_stdout("Opened the login page with login.browser_command (curl).");
    assert!(
        out.stdout.contains(&format!(
            "Waiting for the browser on 127.0.0.1:{p} and [::1]:{p}",
            p = sim.callback_port
        )) || out.stdout.contains(&format!(
            "Waiting for the browser on 127.0.0.1:{}",
            sim.callback_port
        )),
        "{}",
        out.all()
    );
    out.assert_stdout("API: ✓ the new token works.");
    let token = stored_oauth_token(&path, Some(started));
    // The backup got the same token, also 0600.
    let backup = sb.root.join("config/backup/upstox_token.json");
    assert_eq!(mode(&backup), 0o600);
    assert_eq!(
        std::fs::read(&backup).unwrap(),
        std::fs::read(&path).unwrap()
    );
    // One dialog, one exchange.
    assert_eq!(sim.sim.calls(Endpoint::Dialog), 1);
    assert_eq!(sim.sim.calls(Endpoint::Token), 1);
    // The listener is gone with the process.
    assert!(
        port_free(sim.callback_port),
        "the callback port is still taken"
    );

    let (status, j) = validated_status(&sb).await;
    assert_eq!(j["valid"], true, "{j}");
    assert_eq!(j["user_id"], "AB1234", "{j}");

    assert_no_leak(
        Leaks::of_outs(&[("login", &out), ("status", &status)]),
        SECRET,
        &[&token],
        &[],
    );
}

/// The same login against `tokenwatch simulate --auto-approve`, a separate process whose
/// registered redirect URI is fixed at http://localhost:5001/callback (it has no flag to
/// change it), so this is the one test that uses port 5001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_login_against_the_simulate_process() {
    // The token the login stores must read healthy (`validated_status`).
    clear_of_the_0330_expiry(A_RUN);
    if !port_freed(5001, Duration::from_secs(30)).await {
        eprintln!("note: skipped: port 5001 stayed in use by another program for 30 s");
        return;
    }
    let sim = SimProcess::start_with(&["--auto-approve", "--token-lifetime", "20h"]);
    let config = json!({
        "upstox": {
            "client_id": CLIENT_ID,
            "client_secret": SIM_DEFAULT_SECRET,
            "api_base": sim.base,
        },
        "token": {"path": "upstox_token.json", "backups": []},
        // Small thresholds: a token issued now reads healthy at any time of day.
        "monitor": with_small_thresholds(json!({})),
        "login": {"timeout": "20s", "browser_command": CURL},
    });
    let sb = sandbox(&config);
    let out = sb.run_async(&["login"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("redirect_uri=http%3A%2F%2Flocalhost%3A5001%2Fcallback");
    out.assert_stdout("Logged in: token stored at");
    let token = stored_oauth_token(&sb.token_path(), None);
    let (status, _) = validated_status(&sb).await;
    // `simulate` prints its own secret by design; tokenwatch's output must not.
    assert_no_leak(
        Leaks::of_outs(&[("login", &out), ("status", &status)]),
        SIM_DEFAULT_SECRET,
        &[&token],
        &[],
    );
}

/// The library login with the test as the browser: the dialog's 302 carries a code and the
/// login's state to the registered callback; the callback page waits for the outcome and then
/// says "Logged in" — without the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_login_answers_the_browser_with_the_success_page() {
    let (sim, dir) = lib_test(true).await;
    let started = Utc::now();
    let (mut login, w) = start_login(&sim, &dir, "lib-happy").await;
    assert_eq!(w.browser, Ok("login.browser_command (true)".to_string()));
    assert!(!w.listening.is_empty());
    for a in &w.listening {
        assert!(a.ip().is_loopback(), "{a}");
        assert_eq!(a.port(), sim.callback_port);
    }
    assert!(
        w.listening
            .contains(&SocketAddr::from((Ipv4Addr::LOCALHOST, sim.callback_port)))
    );
    // The authorization URL, with a state of at least 128 bits.
    assert!(
        w.url
            .as_str()
            .starts_with(&format!("{}/v2/login/authorization/dialog?", sim.base())),
        "{}",
        w.url
    );
    assert_eq!(
        query_param(&w.url, "response_type").as_deref(),
        Some("code")
    );
    assert_eq!(query_param(&w.url, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        query_param(&w.url, "redirect_uri").as_deref(),
        Some(sim.redirect.as_str())
    );
    assert!(w.state.len() >= 22, "state {:?} is too short", w.state);
    let lead = w.until - started;
    assert!(
        lead >= chrono::Duration::seconds(19) && lead <= chrono::Duration::seconds(21),
        "until {} for a 20 s timeout",
        w.until
    );

    let loc = approved_redirect(&w.url).await;
    assert!(
        loc.as_str().starts_with(&format!("{}?", sim.redirect)),
        "{loc}"
    );
    assert_eq!(
        query_param(&loc, "state").as_deref(),
        Some(w.state.as_str())
    );
    let code = query_param(&loc, "code").expect("a code");
    let browser = tokio::spawn(get(loc.to_string()));

    let obtained = expect_ok(login.end().await);
    assert!(
        matches!(
            login.seen.as_slice(),
            [LoginProgress::Waiting { .. }, LoginProgress::Exchanging]
        ),
        "{:?}",
        login.seen
    );
    // The page waits until the caller has stored the token and says so.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !browser.is_finished(),
        "the page was sent before the token was stored"
    );
    let token = obtained.token.access_token.expose().to_owned();
    assert_eq!(obtained.token.obtained_via.as_deref(), Some("oauth"));
    assert_eq!(obtained.token.user_id.as_deref(), Some("AB1234"));
    // The token's exp, or the 03:30 IST rule from the issue time when that comes first.
    let rule = upstox_expiry(obtained.token.issued_at.unwrap());
    match obtained.token.expires_at.cmp(&rule) {
        std::cmp::Ordering::Less => {
            assert_eq!(obtained.token.expiry_source, ExpirySource::JwtExp)
        }
        std::cmp::Ordering::Equal => assert!(matches!(
            obtained.token.expiry_source,
            ExpirySource::JwtExp | ExpirySource::RuleFromIssuedAt
        )),
        std::cmp::Ordering::Greater => panic!("the expiry is past the 03:30 IST rule"),
    }
    assert!(
        (obtained.token.expires_at - sim_token_end(started))
            .num_seconds()
            .abs()
            < 60
    );
    let token_debug = format!("{:?}", obtained.token);
    obtained.finish(Ok(())).await;
    let page = tokio::time::timeout(STEP, browser).await.unwrap().unwrap();
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains(r#"<h1 id="title">Logged in</h1>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("<dd>lib-happy</dd>"), "{}", page.body);
    assert!(page.body.contains("valid until "), "{}", page.body);
    cache_headers_ok(&page);
    assert_eq!(sim.sim.calls(Endpoint::Token), 1);
    // One-shot: the listener is gone.
    assert_freed(&sim, "the callback port stayed open after the login").await;
    // The library leaves storing to the caller.
    assert!(!dir.path().join("upstox_token.json").exists());

    let mut leaks = Leaks::default();
    leaks.page("success page", &page);
    leaks.text("token Debug", token_debug);
    leaks.text("progress", format!("{:?}", login.seen));
    leaks.text("logs", global_logs().text());
    assert_no_leak(leaks, SECRET, &[&token], &[&code]);
}

/// The browser `tokenwatch login` opened is told the outcome before the process exits:
/// the success page after a login, the reason after a denial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_login_answers_the_browser_before_exiting() {
    for deny in [false, true] {
        let sim = start_sim(!deny).await;
        let sb = sandbox(&login_config(&sim));
        let page = sb.root.join("page.html");
        let status = sb.root.join("status.txt");
        let done = sb.root.join("done.txt");
        let fetch = if deny {
            format!(
                "curl -s -o /dev/null \"$0\" && curl -sSL -o '{page}' -w '%{{http_code}}' \
                 -d \"${{0#*\\?}}&decision=deny\" '{base}/v2/login/authorization/decision'",
                page = page.display(),
                base = sim.base()
            )
        } else {
            format!(
                "curl -sSL -o '{page}' -w '%{{http_code}}' \"$0\"",
                page = page.display()
            )
        };
        let script = format!(
            "{fetch} > '{status}' 2>/dev/null; echo $? > '{done}'",
            status = status.display(),
            done = done.display()
        );
        let mut config = login_config(&sim);
        config["login"]["browser_command"] = json!(["sh", "-c", script]);
        sb.write_config(&config);
        let out = sb.run_async(&["login"]).await;
        assert_eq!(out.code, Some(if deny { 1 } else { 0 }), "{}", out.all());
        let deadline = Instant::now() + STEP;
        while !done.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let curl_status = std::fs::read_to_string(&done).unwrap_or_default();
        let html = std::fs::read_to_string(&page).unwrap_or_default();
        assert_eq!(
            curl_status.trim(),
            "0",
            "deny={deny}: the browser got no page (curl exit {curl_status:?}, last HTTP status {:?})",
            std::fs::read_to_string(&status).unwrap_or_default()
        );
        if deny {
            assert!(html.contains("Login failed"), "{html}");
            assert!(
                html.contains("The user denied the authorization request"),
                "{html}"
            );
        } else {
            assert!(html.contains("Logged in"), "{html}");
        }
    }
}

// =======================================================================================
// 2. Forged callbacks
// =======================================================================================

/// Wrong or missing state → 400 and the login keeps waiting; POST → 405; another path →
/// 404; then the real redirect completes the login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_callbacks_are_refused_and_the_login_keeps_waiting() {
    let (sim, dir) = lib_test(true).await;
    let account = "lib-forged";
    let mut login = begin(sim.settings(account), store_in(dir.path()));
    let w = login.waiting().await;
    // A real code, so a forged callback that carried it cannot sneak it in.
    let (loc, code) = approve(&w).await;

    let mut leaks = Leaks::default();
    let cases: Vec<(&str, Url, u16, &str)> = vec![
        (
            "wrong state",
            sim.callback(&[("code", &code), ("state", "wrong")]),
            400,
            "does not match this login",
        ),
        (
            "missing state",
            sim.callback(&[("code", &code)]),
            400,
            "has no state",
        ),
        (
            "no query",
            Url::parse(&sim.redirect).unwrap(),
            400,
            "has no state",
        ),
        (
            "denial with a wrong state",
            sim.callback(&[("error", "access_denied"), ("state", "wrong")]),
            400,
            "does not match this login",
        ),
        (
            "right state, no code",
            sim.callback(&[("state", &w.state)]),
            400,
            "no authorization code",
        ),
        (
            "another path",
            Url::parse(&format!(
                "http://localhost:{}/other?code={code}&state={}",
                sim.callback_port, w.state
            ))
            .unwrap(),
            404,
            "not tokenwatch&#39;s login address",
        ),
        (
            "the path with a trailing slash",
            Url::parse(&format!(
                "http://localhost:{}/callback/?code={code}&state={}",
                sim.callback_port, w.state
            ))
            .unwrap(),
            404,
            "not tokenwatch&#39;s login address",
        ),
    ];
    for (what, url, status, text) in cases {
        let page = get(&url).await;
        assert_eq!(page.status, status, "{what}: {page:?}");
        assert!(page.body.contains("Login failed"), "{what}: {}", page.body);
        assert!(page.body.contains(text), "{what}: {}", page.body);
        leaks.page(what, &page);
    }
    let posted = fetch(client(Some(STEP)).post(loc.as_str())).await;
    assert_eq!(posted.status, 405, "POST: {posted:?}");
    leaks.page("POST", &posted);

    // Still waiting: nothing ended it, nothing was exchanged.
    assert!(
        !login.task.is_finished(),
        "a forged callback ended the login"
    );
    assert!(login.progress.try_recv().is_err(), "unexpected progress");
    assert_eq!(sim.sim.calls(Endpoint::Token), 0);
    let logs = global_logs().text();
    assert!(
        logs.lines().any(|l| l.contains("Refused a login callback")
            && l.contains("does not match")
            && l.contains(account)),
        "the refusal was not logged"
    );

    // The real redirect completes it.
    let browser = tokio::spawn(get(loc.to_string()));
    let obtained = expect_ok(login.end().await);
    let token = obtained.token.access_token.expose().to_owned();
    obtained.finish(Ok(())).await;
    let page = tokio::time::timeout(STEP, browser).await.unwrap().unwrap();
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("Logged in"), "{}", page.body);
    assert_eq!(sim.sim.calls(Endpoint::Token), 1);

    leaks.page("success page", &page);
    leaks.text("logs", global_logs().text());
    assert_no_leak(leaks, SECRET, &[&token], &[&code]);
}

// =======================================================================================
// 3. Denial
// =======================================================================================

/// The consent page's Deny: `error=access_denied` with the right state ends the login with
/// `Denied`, the page shows the reason, nothing is exchanged; a reason with markup is
/// HTML-escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_login_ends_with_the_reason_escaped_on_the_page() {
    let (sim, dir) = lib_test(false).await;
    let (mut login, w) = start_login(&sim, &dir, "lib-denied").await;

    // The simulator's consent page and its Deny button.
    let dialog = get(&w.url).await;
    assert_eq!(dialog.status, 200, "{dialog:?}");
    assert!(
        dialog
            .body
            .contains(r#"<form method="post" action="/v2/login/authorization/decision">"#),
        "{}",
        dialog.body
    );
    let mut form = hidden_inputs(&dialog.body);
    assert!(
        form.contains(&("state".to_string(), w.state.clone())),
        "{form:?}"
    );
    form.push(("decision".into(), "deny".into()));
    let decided = fetch(
        client(Some(STEP))
            .post(format!("{}/v2/login/authorization/decision", sim.base()))
            .form(&form),
    )
    .await;
    assert_eq!(decided.status, 302, "{decided:?}");
    let back = Url::parse(decided.location().unwrap()).unwrap();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(w.state.as_str())
    );
    let browser = tokio::spawn(get(back.to_string()));
    let e = expect_err(login.end().await);
    let LoginError::Denied(text) = &e else {
        panic!("expected Denied, got {e:?}");
    };
    assert_eq!(
        text,
        "Upstox said: The user denied the authorization request (access_denied)"
    );
    assert!(e.to_string().starts_with("login refused: "), "{e}");
    let page = tokio::time::timeout(STEP, browser).await.unwrap().unwrap();
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("Login failed"), "{}", page.body);
    assert!(
        page.body
            .contains("Upstox said: The user denied the authorization request (access_denied)"),
        "{}",
        page.body
    );
    cache_headers_ok(&page);
    assert_eq!(sim.sim.calls(Endpoint::Token), 0, "a denial was exchanged");
    assert!(!login.seen.contains(&LoginProgress::Exchanging));
    assert_freed(&sim, "the callback port stayed taken").await;

    // Upstox's text is echoed HTML-escaped.
    let (mut login, w) = start_login(&sim, &dir, "lib-denied").await;
    let evil = r#"<script>alert("x")</script> & 'q'"#;
    let browser = tokio::spawn(get(sim
        .callback(&[
            ("error", "access_denied"),
            ("error_description", evil),
            ("state", &w.state),
        ])
        .to_string()));
    let e = expect_err(login.end().await);
    assert!(
        matches!(&e, LoginError::Denied(t) if t.contains(evil)),
        "{e:?}"
    );
    let escaped = page_of(browser).await;
    assert_eq!(escaped.status, 200);
    assert!(
        escaped.body.contains(
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; (access_denied)"
        ),
        "{}",
        escaped.body
    );
    assert!(!escaped.body.contains("<script>"), "{}", escaped.body);
    assert_eq!(sim.sim.calls(Endpoint::Token), 0);
    assert!(!dir.path().join("upstox_token.json").exists());

    let mut leaks = Leaks::default();
    leaks.page("denial page", &page);
    leaks.page("escaped denial page", &escaped);
    leaks.text("logs", global_logs().text());
    assert_no_leak(leaks, SECRET, &[], &[]);
}

async fn page_of(browser: tokio::task::JoinHandle<Resp>) -> Resp {
    tokio::time::timeout(STEP, browser).await.unwrap().unwrap()
}

/// `tokenwatch login` whose browser presses Deny on the consent page: exit 1 with the
/// reason, nothing stored, nothing exchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_denied_login_exits_1_and_stores_nothing() {
    let sim = start_sim(false).await;
    let mut config = login_config(&sim);
    // GET the consent page, then POST its form with decision=deny and follow to the callback.
    let script = format!(
        "curl -s -o /dev/null \"$0\" && curl -sL -o /dev/null -d \"${{0#*\\?}}&decision=deny\" \
         '{}/v2/login/authorization/decision'",
        sim.base()
    );
    config["login"]["browser_command"] = json!(["sh", "-c", script]);
    let sb = sandbox(&config);
    let out = sb.run_async(&["login"]).await;
    assert_eq!(out.code, Some(1), "{}", out.all());
    out.assert_stderr(
        "login refused: Upstox said: The user denied the authorization request (access_denied)",
    );
    assert!(!sb.token_path().exists(), "a denied login stored something");
    assert!(!sb.root.join("config/backup/upstox_token.json").exists());
    assert_eq!(sim.sim.calls(Endpoint::Dialog), 1);
    assert_eq!(sim.sim.calls(Endpoint::Token), 0);
    assert!(port_free(sim.callback_port));
    assert_no_leak(Leaks::of_outs(&[("login", &out)]), SECRET, &[], &[]);
}

// =======================================================================================
// 4. Timeout
// =======================================================================================

/// Nobody comes back: `TimedOut` after `login.timeout`, even when no browser could be
/// opened, and the callback port is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_nobody_answers_times_out_and_frees_the_port() {
    let (sim, dir) = lib_test(true).await;
    let mut settings = sim.settings("lib-timeout");
    settings.timeout = Duration::from_secs(2);
    settings.browser_command = vec!["/nonexistent/browser".into()];
    let t0 = Instant::now();
    let mut login = begin(settings, store_in(dir.path()));
    let w = login.waiting().await;
    // No browser: the URL is still shown and the login still waits (for a paste).
    let why = w.browser.clone().unwrap_err();
    assert!(why.contains("could not start"), "{why}");
    assert!(
        listening(sim.callback_port),
        "nothing listens while the login waits"
    );
    let e = expect_err(login.end().await);
    let waited = t0.elapsed();
    assert!(
        matches!(e, LoginError::TimedOut(d) if d == Duration::from_secs(2)),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "no login within 2s; run the login again");
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    assert_freed(&sim, "the callback port stayed taken after the timeout").await;
    assert_eq!(sim.sim.calls(Endpoint::Token), 0);
}

/// `tokenwatch login --no-browser` with nothing pasted: exit 1 after `login.timeout` with a
/// message, the port free, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_login_times_out_with_exit_1() {
    // The shortest login.timeout the configuration accepts.
    let (sim, sb) = binary_test_with(|c| c["login"]["timeout"] = json!("10s")).await;
    let t0 = Instant::now();
    let out = sb.run_async(&["login", "--no-browser"]).await;
    let took = t0.elapsed();
    assert_eq!(out.code, Some(1), "{}", out.all());
    out.assert_stderr("no login within 10s; run the login again");
    out.assert_stdout("Open the address above in a browser");
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(30),
        "{took:?}"
    );
    assert!(
        port_free(sim.callback_port),
        "the callback port is still taken"
    );
    assert!(!sb.token_path().exists());
    assert_no_leak(Leaks::of_outs(&[("login", &out)]), SECRET, &[], &[]);
}

// =======================================================================================
// 5. A replayed code
// =======================================================================================

/// A code is exchanged once per login and never again: a second login presenting the
/// first one's code (with its own, right state) fails with UDAPI100016 and "log in again";
/// a failed exchange is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_code_is_refused_and_each_login_exchanges_once() {
    let (sim, dir) = lib_test(true).await;

    let (mut first, w1) = start_login(&sim, &dir, "lib-replay").await;
    let (loc, code) = approve(&w1).await;
    first.paste(loc.as_str()).await;
    let obtained = expect_ok(first.end().await);
    assert_eq!(sim.sim.calls(Endpoint::Token), 1);
    let token = obtained.token.access_token.expose().to_owned();
    obtained.finish(Ok(())).await;
    // The listener stops on a task of its own: the next login needs its port.
    assert_freed(&sim, "the first login's port").await;

    let (mut second, w2) = start_login(&sim, &dir, "lib-replay").await;
    assert_ne!(w1.state, w2.state, "two logins shared a state");
    let replay = sim.callback(&[("code", &code), ("state", &w2.state)]);
    second.paste(replay.as_str()).await;
    let e = expect_err(second.end().await);
    match &e {
        LoginError::Exchange(_, ApiError::Rejected { status, code, .. }) => {
            assert_eq!(*status, 400);
            assert_eq!(code.as_deref(), Some("UDAPI100016"));
        }
        other => panic!("expected an exchange rejection, got {other:?}"),
    }
    let text = e.to_string();
    assert!(text.contains("UDAPI100016"), "{text}");
    assert!(text.ends_with("log in again"), "{text}");
    assert!(second.seen.contains(&LoginProgress::Exchanging));
    assert_eq!(
        sim.sim.calls(Endpoint::Token),
        2,
        "exchanged more than once"
    );

    // A transient failure of the exchange is not retried either: the code may be used up.
    sim.sim.inject(Endpoint::Token, Fault::ServerError, 1);
    assert_freed(&sim, "the second login's port").await;
    let (mut third, w3) = start_login(&sim, &dir, "lib-replay").await;
    let (loc3, code3) = approve(&w3).await;
    third.paste(loc3.as_str()).await;
    let e3 = expect_err(third.end().await);
    assert!(matches!(e3, LoginError::Exchange(..)), "{e3:?}");
    assert!(e3.to_string().ends_with("log in again"), "{e3}");
    assert_eq!(
        sim.sim.calls(Endpoint::Token),
        3,
        "a failed exchange was retried"
    );

    let mut leaks = Leaks::default();
    leaks.text("replay error", format!("{e} / {e:?}"));
    leaks.text("5xx error", format!("{e3} / {e3:?}"));
    leaks.text("progress", format!("{:?} {:?}", second.seen, third.seen));
    leaks.text("logs", global_logs().text());
    assert_no_leak(leaks, SECRET, &[&token], &[&code, &code3]);
}

/// The same through the binary: the second `login --no-browser` pasting the used code with
/// its own state exits 1 with "log in again" and leaves the stored token alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_replayed_code_fails_and_keeps_the_stored_token() {
    let (sim, sb) = binary_test().await;

    let mut p = interactive(&sb, &["login", "--no-browser"]);
    let url = p.login_url().await;
    p.line_with("paste the address your browser was sent to")
        .await;
    let loc = approved_redirect(&url).await;
    let code = query_param(&loc, "code").unwrap();
    p.send(loc.as_str()).await;
    let first = p.finish().await;
    assert_eq!(first.code, Some(0), "{}", first.all());
    let token = stored_oauth_token(&sb.token_path(), None);
    let stored = std::fs::read(sb.token_path()).unwrap();
    assert_eq!(sim.sim.calls(Endpoint::Token), 1);

    let mut p = interactive(&sb, &["login", "--no-browser"]);
    let url2 = p.login_url().await;
    let state2 = query_param(&url2, "state").unwrap();
    assert_ne!(query_param(&url, "state").unwrap(), state2);
    p.line_with("paste the address your browser was sent to")
        .await;
    p.paste_callback(&sim, &code, &state2).await;
    let second = p.finish().await;
    assert_eq!(second.code, Some(1), "{}", second.all());
    second.assert_stderr("UDAPI100016");
    second.assert_stderr("log in again");
    assert_eq!(
        std::fs::read(sb.token_path()).unwrap(),
        stored,
        "a failed login changed the token file"
    );
    assert!(!sb.root.join("config/upstox_token.json.prev").exists());
    assert_eq!(sim.sim.calls(Endpoint::Token), 2);

    assert_no_leak(
        Leaks::of_outs(&[("first login", &first), ("replayed login", &second)]),
        SECRET,
        &[&token],
        &[&code],
    );
}

// =======================================================================================
// 6. Two logins at once; a port taken by another program
// =======================================================================================

/// A second login for the same account is refused at once, naming the holder; it never
/// gets as far as the port. Once the first ends, a new login can start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_for_the_same_account_is_refused_naming_the_holder() {
    let (sim, dir) = lib_test(true).await;
    let (mut first, _) = start_login(&sim, &dir, "lib-busy").await;

    let t0 = Instant::now();
    let mut second = begin(sim.settings("lib-busy"), store_in(dir.path()));
    let e = expect_err(second.end().await);
    assert!(t0.elapsed() < Duration::from_secs(2), "not refused at once");
    let LoginError::Busy { account, holder } = &e else {
        panic!("expected Busy, got {e:?}");
    };
    assert_eq!(account, "lib-busy");
    assert!(
        holder.contains(&format!("process {}", std::process::id())),
        "{holder}"
    );
    let text = e.to_string();
    assert!(text.contains("in progress"), "{text}");
    assert!(
        text.contains(&format!("process {}", std::process::id())),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("in use"), "{text}");
    assert!(
        second.seen.is_empty(),
        "the second login started: {:?}",
        second.seen
    );

    // The first is untouched and still waiting.
    assert!(!first.task.is_finished());
    assert!(listening(sim.callback_port));
    first.cancelled().await;
    assert_freed(&sim, "the callback port stayed taken").await;

    // The lock went with it.
    starts_and_cancels(&sim, &dir, "lib-busy").await;
}

/// Two `tokenwatch login` processes for one account: the second exits 1 at once naming the
/// first's process id, never "address already in use".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_second_login_process_is_refused_at_once() {
    let (sim, sb) = binary_test().await;
    let mut first = interactive(&sb, &["login", "--no-browser"]);
    first.line_with("Waiting for the browser on").await;

    let t0 = Instant::now();
    let second = sb.run_async(&["login", "--no-browser"]).await;
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the second login waited"
    );
    assert_eq!(second.code, Some(1), "{}", second.all());
    second.assert_stderr(&format!("process {}", first.pid));
    second.assert_stderr("in progress");
    assert!(
        !second.all().to_lowercase().contains("in use"),
        "{}",
        second.all()
    );
    second.assert_not_on_stdout("/v2/login/authorization/dialog");
    // The first still waits.
    assert!(listening(sim.callback_port));
    first.child.kill().await.unwrap();
    assert!(!sb.token_path().exists());
    assert_no_leak(
        Leaks::of_outs(&[("second login", &second)]),
        SECRET,
        &[],
        &[],
    );
}

/// The callback port held by another program: `ListenError::PortInUse` naming the port and
/// what to do, before any browser opens; the binary exits 1 with that message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_taken_by_another_program_is_named() {
    let (sim, dir) = lib_test(true).await;
    let squatter = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, sim.callback_port)).unwrap();
    let marker = dir.path().join("browser-opened");
    let mut settings = sim.settings("lib-port");
    settings.browser_command = touch(&marker);
    let mut login = begin(settings, store_in(dir.path()));
    let e = expect_err(login.end().await);
    assert!(
        matches!(&e, LoginError::Listen(ListenError::PortInUse { port, .. }) if *port == sim.callback_port),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "port {} of upstox.redirect_uri is in use by another program",
            sim.callback_port
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("ss -ltnp | grep :{}", sim.callback_port)),
        "{text}"
    );
    assert!(text.contains("register another redirect URI"), "{text}");
    assert!(login.seen.is_empty(), "{:?}", login.seen);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !marker.exists(),
        "a browser was opened although nothing listens"
    );

    // The binary says the same and exits 1.
    let sb = sandbox(&login_config(&sim));
    let out = sb.run_async(&["login", "--no-browser"]).await;
    assert_eq!(out.code, Some(1), "{}", out.all());
    out.assert_stderr(&format!(
        "port {} of upstox.redirect_uri is in use",
        sim.callback_port
    ));

    // Once the port is free again, a login for that account can start (no stale lock).
    drop(squatter);
    starts_and_cancels(&sim, &dir, "lib-port").await;
}

// =======================================================================================
// 7. The pasted address
// =======================================================================================

/// `tokenwatch login --no-browser`: the address printed, garbage and a changed state refused
/// with a message while the login keeps waiting (a forged browser callback too), then the
/// real redirected address logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_no_browser_login_accepts_only_the_right_pasted_address() {
    let (sim, sb) = binary_test().await;
    let mut p = interactive(&sb, &["login", "--no-browser"]);
    let url = p.login_url().await;
    let state = query_param(&url, "state").unwrap();
    let why = p.line_with("Open the address above in a browser").await;
    assert!(why.contains("--no-browser"), "{why}");
    p.line_with("paste the address your browser was sent to")
        .await;

    let loc = approved_redirect(&url).await;
    let code = query_param(&loc, "code").unwrap();
    assert_eq!(query_param(&loc, "state").unwrap(), state);

    // A forged callback reaching the listener meanwhile is refused too.
    let forged = get(sim.callback(&[("code", &code), ("state", "forged")])).await;
    assert_eq!(forged.status, 400, "{forged:?}");

    p.send("garbage").await;
    let refused = p.line_with("Not accepted:").await;
    assert!(
        refused.contains("not the address your browser was sent to"),
        "{refused}"
    );
    let mut other = state.clone();
    other.replace_range(0..1, if state.starts_with('A') { "B" } else { "A" });
    p.send(with_param(&loc, "state", &other).as_str()).await;
    let refused = p.line_with("Not accepted:").await;
    assert!(refused.contains("state does not match"), "{refused}");
    assert_eq!(
        sim.sim.calls(Endpoint::Token),
        0,
        "a refused paste was exchanged"
    );

    p.send(loc.as_str()).await;
    p.line_with("Got the login code; exchanging it for a token...")
        .await;
    p.line_with("Logged in: token stored at").await;
    let out = p.finish().await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    let token = stored_oauth_token(&sb.token_path(), None);
    assert_eq!(sim.sim.calls(Endpoint::Token), 1);
    assert!(port_free(sim.callback_port));

    let mut leaks = Leaks::default();
    leaks.out("login --no-browser", &out);
    leaks.page("forged callback", &forged);
    assert_no_leak(leaks, SECRET, &[&token], &[&code]);
}

// =======================================================================================
// 8. Loopback only
// =======================================================================================

/// While a login waits, its callback port answers on loopback and is refused on every
/// non-loopback address of the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_listener_is_on_loopback_only() {
    let (sim, dir) = lib_test(true).await;
    let (mut login, w) = start_login(&sim, &dir, "lib-loopback").await;
    for a in &w.listening {
        assert!(a.ip().is_loopback(), "listens on {a}");
    }
    assert!(listening(sim.callback_port), "not listening on 127.0.0.1");
    let others = non_loopback_addrs();
    if others.is_empty() {
        eprintln!("note: no non-loopback address on this machine; only loopback was checked");
    }
    for ip in &others {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((*ip, sim.callback_port)),
        )
        .await
        .unwrap_or_else(|_| panic!("connecting to {ip}:{} hung", sim.callback_port));
        match r {
            Ok(_) => panic!("the callback port answers on {ip}:{}", sim.callback_port),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{ip}: {e}"),
        }
    }
    login.cancelled().await;
}

/// A redirect URI on another host is a clear error before anything listens or opens:
/// `LoginSettings::new` and `login::run` refuse it, and `tokenwatch login` exits 78.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_redirect_uri_is_refused_before_listening() {
    let (sim, dir) = lib_test(true).await;
    for remote in ["https://example.com/cb", "http://192.168.1.4:5001/callback"] {
        let mut account = sim.account(dir.path(), "lib-remote");
        account.upstox.redirect_uri = Url::parse(remote).unwrap();
        let e = LoginSettings::new(&account, &LoginConfig::default(), true).unwrap_err();
        assert!(
            matches!(&e, LoginError::Listen(ListenError::NotLoopback { .. })),
            "{remote}: {e:?}"
        );
        assert!(e.to_string().contains("goes to another machine"), "{e}");

        let marker = dir.path().join("browser-opened");
        let mut settings = sim.settings("lib-remote");
        settings.redirect_uri = Url::parse(remote).unwrap();
        settings.browser_command = touch(&marker);
        let mut login = begin(settings, store_in(dir.path()));
        let e = expect_err(login.end().await);
        assert!(
            matches!(&e, LoginError::Listen(ListenError::NotLoopback { .. })),
            "{remote}: {e:?}"
        );
        assert!(login.seen.is_empty(), "{:?}", login.seen);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!marker.exists(), "{remote}: a browser was opened");
    }

    let mut config = login_config(&sim);
    config["upstox"]["redirect_uri"] = json!("https://example.com/cb");
    let marker = PathBuf::from("browser-opened");
    config["login"]["browser_command"] = json!(["sh", "-c", "touch browser-opened"]);
    let sb = sandbox(&config);
    let out = sb.run_async(&["login"]).await;
    assert_eq!(out.code, Some(78), "{}", out.all());
    assert!(
        out.stderr.contains("https://example.com/cb")
            && out.stderr.contains("goes to another machine"),
        "{}",
        out.all()
    );
    out.assert_not_on_stdout("/v2/login/authorization/dialog");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sb.root.join(&marker).exists(), "a browser was opened");
    assert_eq!(sim.sim.calls(Endpoint::Dialog), 0);
}

/// The NotLoopback message advises `--no-browser`; that advice must lead somewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_redirect_advice_does_not_point_at_a_dead_end() {
    let remote = json!("https://example.com/cb");
    let (_sim, sb) = binary_test_with(|c| c["upstox"]["redirect_uri"] = remote).await;
    let out = sb.run_async(&["login", "--no-browser"]).await;
    assert_eq!(out.code, Some(78), "{}", out.all());
    out.assert_stderr("goes to another machine");
    assert!(
        !out.stderr.contains("--no-browser"),
        "`login --no-browser` failed while advising --no-browser: {}",
        out.all()
    );
}

// =======================================================================================
// 9. The worker
// =======================================================================================

/// What a worker reported.
struct Events {
    rx: mpsc::Receiver<Event>,
    seen: Vec<Event>,
}

impl Events {
    async fn until(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Ok(None) => panic!("events ended before {what}: {:#?}", self.interesting()),
                Err(_) => panic!("no {what} within {STEP:?}: {:#?}", self.interesting()),
            }
        }
    }

    /// Everything but status snapshots.
    fn interesting(&self) -> Vec<&Event> {
        self.seen
            .iter()
            .filter(|e| !matches!(e, Event::Status(_)))
            .collect()
    }
}

fn is_waiting(e: &Event) -> bool {
    matches!(
        e,
        Event::Login(LoginUpdate::Progress(LoginProgress::Waiting { .. }))
    )
}

/// `l` on an account without a client secret: the login popup it opened ends with the
/// reason (a `Failed` update), instead of staying at "starting".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_cannot_start_ends_with_the_reason() {
    let (sim, dir) = lib_test(true).await;
    let mut account = sim.account(dir.path(), "no-secret");
    account.upstox.client_secret = None;
    let core = Core::new(account, MonitorConfig::default(), Arc::new(SystemClock)).unwrap();
    let (tx, rx) = mpsc::channel(1024);
    let handle = worker::spawn(core, tx);
    let mut ev = Events {
        rx,
        seen: Vec::new(),
    };
    handle.commands.send(Command::StartLogin).await.unwrap();
    let Event::Login(LoginUpdate::Failed(why)) = ev
        .until("Failed", |e| {
            matches!(e, Event::Login(LoginUpdate::Failed(_)))
        })
        .await
    else {
        unreachable!()
    };
    assert!(
        why.contains("client secret") || why.contains("client_secret"),
        "{why}"
    );
    handle.commands.send(Command::Shutdown).await.unwrap();
    let _ = handle.task.await;
}

/// `StartLogin` runs a login with the browser command → Waiting, Succeeded, a "Logged in"
/// notice and the new token stored; a waiting login rejects pasted garbage and ends on
/// `CancelLogin` with the port free for the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_logs_in_rejects_garbage_and_cancels() {
    let (sim, dir) = lib_test(true).await;
    let account = sim.account(dir.path(), "worker-login");
    // A healthy token first, so the worker does not start a login of its own.
    let issued = sim.sim.issue_token();
    let old = Token {
        broker: Default::default(),
        access_token: issued.access_token.clone(),
        token_type: "Bearer".into(),
        extended_token: None,
        user_id: Some("AB1234".into()),
        user_name: Some("Jane Doe".into()),
        email: None,
        issued_at: Some(issued.issued_at),
        expires_at: issued.expires_at,
        expiry_source: ExpirySource::ExpiresAt,
        obtained_via: Some("command".into()),
        refresh_token: None,
        format: TokenFileFormat::Format1,
    };
    TokenStore::new(account.token.path.clone(), account.token.backups.clone())
        .write(&old)
        .unwrap();
    let core = Core::new(
        account.clone(),
        MonitorConfig::default(),
        Arc::new(SystemClock),
    )
    .unwrap()
    .with_login(LoginConfig {
        timeout: Duration::from_secs(20),
        browser_command: CURL.iter().map(|s| s.to_string()).collect(),
    });
    let (tx, rx) = mpsc::channel(1024);
    let handle = worker::spawn(core, tx);
    let mut ev = Events {
        rx,
        seen: Vec::new(),
    };

    handle.commands.send(Command::StartLogin).await.unwrap();
    let Event::Login(LoginUpdate::Progress(LoginProgress::Waiting { browser, url, .. })) =
        ev.until("Waiting", is_waiting).await
    else {
        unreachable!()
    };
    assert_eq!(browser, Ok("login.browser_command (curl)".to_string()));
    assert_eq!(
        query_param(&url, "redirect_uri").as_deref(),
        Some(sim.redirect.as_str())
    );
    let mark = ev.seen.len();
    let Event::Login(LoginUpdate::Succeeded(exp)) = ev
        .until("Succeeded", |e| {
            matches!(e, Event::Login(LoginUpdate::Succeeded(_)))
        })
        .await
    else {
        unreachable!()
    };
    assert!(
        !ev.seen[mark..]
            .iter()
            .any(|e| matches!(e, Event::Login(LoginUpdate::Failed(_)))),
        "{:#?}",
        ev.interesting()
    );
    ev.until(
        "the Logged in notice",
        |e| matches!(e, Event::Notice(n) if n.title == "Logged in" && n.account == "worker-login"),
    )
    .await;
    let token = stored_oauth_token(&account.token.path, None);
    assert_ne!(
        token,
        old.access_token.expose(),
        "the token was not replaced"
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&account.token.path).unwrap()).unwrap();
    let stored_exp = DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(stored_exp.timestamp(), exp.timestamp());
    assert_eq!(sim.sim.calls(Endpoint::Token), 1);
    assert_freed(&sim, "the callback port stayed taken").await;

    // A login that waits: the consent page needs a click nobody makes.
    sim.sim.set_config(|c| c.auto_approve = false);
    handle.commands.send(Command::StartLogin).await.unwrap();
    ev.until("Waiting", is_waiting).await;
    assert!(listening(sim.callback_port));
    handle
        .commands
        .send(Command::PasteRedirect("garbage".into()))
        .await
        .unwrap();
    let Event::Login(LoginUpdate::Progress(LoginProgress::PasteRejected(why))) = ev
        .until("PasteRejected", |e| {
            matches!(
                e,
                Event::Login(LoginUpdate::Progress(LoginProgress::PasteRejected(_)))
            )
        })
        .await
    else {
        unreachable!()
    };
    assert!(why.contains("not the address"), "{why}");
    handle.commands.send(Command::CancelLogin).await.unwrap();
    ev.until("Failed(login cancelled)", |e| {
        *e == Event::Login(LoginUpdate::Failed("login cancelled".into()))
    })
    .await;
    assert_freed(&sim, "the cancelled login kept the callback port").await;

    // `l` again right away: a new login, not "port in use".
    handle.commands.send(Command::StartLogin).await.unwrap();
    let mark = ev.seen.len();
    ev.until("Waiting again", is_waiting).await;
    assert!(
        !ev.seen[mark..]
            .iter()
            .any(|e| matches!(e, Event::Notice(n) if n.title == "Cannot log in")),
        "{:#?}",
        ev.interesting()
    );
    handle.commands.send(Command::CancelLogin).await.unwrap();
    ev.until("Failed(login cancelled)", |e| {
        *e == Event::Login(LoginUpdate::Failed("login cancelled".into()))
    })
    .await;
    // A paste with no login waiting says so.
    handle
        .commands
        .send(Command::PasteRedirect(
            "http://localhost/?code=a&state=b".into(),
        ))
        .await
        .unwrap();
    ev.until(
        "No login is waiting",
        |e| matches!(e, Event::Notice(n) if n.title == "No login is waiting"),
    )
    .await;
    // Nothing changed the token after the first login.
    assert_eq!(stored_oauth_token(&account.token.path, None), token);
    assert_eq!(sim.sim.calls(Endpoint::Token), 1);

    handle.commands.send(Command::Shutdown).await.unwrap();
    tokio::time::timeout(STEP, handle.task)
        .await
        .unwrap()
        .unwrap();

    let mut leaks = Leaks::default();
    leaks.text("worker events", format!("{:?}", ev.seen));
    leaks.text("logs", global_logs().text());
    assert_no_leak(leaks, SECRET, &[&token, old.access_token.expose()], &[]);
}

// =======================================================================================
// 10. env_file and on_change
// =======================================================================================

/// After a login: the env file holds exactly the new token (0600) and `on_change` ran once
/// (without the token in its environment); a `refresh` that keeps the token runs nothing;
/// the next login runs the hook again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_writes_the_env_file_and_runs_on_change_once() {
    let sim = start_sim(true).await;
    let sb = sandbox(&json!({}));
    let env_file = sb.root.join("state/upstox.env");
    let hook_log = sb.root.join("hook.log");
    let hook_env = sb.root.join("hook.env");
    let mut config = login_config(&sim);
    config["token"]["env_file"] = json!(env_file);
    config["token"]["on_change"] = json!([
        "sh",
        "-c",
        format!(
            "echo \"ran $TOKENWATCH_ACCOUNT $TOKENWATCH_TOKEN_FILE\" >> '{}'; env > '{}'",
            hook_log.display(),
            hook_env.display()
        )
    ]);
    sb.write_config(&config);

    let out = sb.run_async(&["login"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    let token = stored_oauth_token(&sb.token_path(), None);
    assert_eq!(mode(&env_file), 0o600);
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        format!("UPSTOX_ACCESS_TOKEN={token}\n")
    );
    let runs = std::fs::read_to_string(&hook_log).unwrap();
    assert_eq!(
        runs,
        format!("ran default {}\n", sb.token_path().display()),
        "the hook did not run exactly once"
    );
    let env_before = std::fs::read(&env_file).unwrap();

    let refresh = sb.run_async(&["refresh"]).await;
    assert_eq!(refresh.code, Some(0), "{}", refresh.all());
    assert_eq!(
        std::fs::read_to_string(&hook_log).unwrap(),
        runs,
        "refresh with a valid token ran on_change again"
    );
    assert_eq!(std::fs::read(&env_file).unwrap(), env_before);
    assert_eq!(stored_oauth_token(&sb.token_path(), None), token);

    let again = sb.run_async(&["login"]).await;
    assert_eq!(again.code, Some(0), "{}", again.all());
    let token2 = stored_oauth_token(&sb.token_path(), None);
    assert_ne!(token2, token);
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        format!("UPSTOX_ACCESS_TOKEN={token2}\n")
    );
    assert_eq!(
        std::fs::read_to_string(&hook_log).unwrap().lines().count(),
        2,
        "a new token runs the hook once more"
    );

    let mut leaks = Leaks::default();
    leaks.out("login", &out);
    leaks.out("refresh", &refresh);
    leaks.out("second login", &again);
    leaks.text(
        "hook environment",
        std::fs::read_to_string(&hook_env).unwrap(),
    );
    assert_no_leak(leaks, SECRET, &[&token, &token2], &[]);
}

// =======================================================================================
// 11. Secrets scan
// =======================================================================================

/// One simulator with a distinctive client secret; every kind of login through the library
/// and the binary (at -vv), and everything they printed, answered and logged, scanned for
/// the secret, every code and every token (whole and in 20-character pieces).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_output_pages_errors_or_logs() {
    // Every binary run must find the token healthy (exit 0).
    clear_of_the_0330_expiry(A_RUN);
    let (sim, dir) = lib_test(true).await;
    let mut leaks = Leaks::default();
    leaks.secret("client secret", SECRET);

    // Library: forged callbacks carrying the real code, then the real one.
    let settings = sim.settings("scan");
    leaks.text("LoginSettings Debug", format!("{settings:?}"));
    let mut login = begin(settings, store_in(dir.path()));
    let w = login.waiting().await;
    let (loc, code) = approve(&w).await;
    leaks.secret("code 1", &code);
    for (what, url) in [
        ("wrong state", with_param(&loc, "state", "wrong")),
        ("no state", sim.callback(&[("code", &code)])),
        (
            "other path",
            Url::parse(&loc.as_str().replace("/callback?", "/elsewhere?")).unwrap(),
        ),
    ] {
        let page = get(&url).await;
        assert!(page.status >= 400, "{what}: {page:?}");
        leaks.page(what, &page);
    }
    leaks.page("POST", &fetch(client(Some(STEP)).post(loc.as_str())).await);
    let browser = tokio::spawn(get(loc.to_string()));
    let obtained = expect_ok(login.end().await);
    leaks.token("library token", obtained.token.access_token.expose());
    leaks.text("token Debug", format!("{:?}", obtained.token));
    obtained.finish(Ok(())).await;
    leaks.page("success page", &page_of(browser).await);
    leaks.text("progress", format!("{:?}", login.seen));

    // Library: a replay of that code, and a denial.
    let (mut replay, w) = start_login(&sim, &dir, "scan").await;
    replay
        .paste(
            sim.callback(&[("code", &code), ("state", &w.state)])
                .as_str(),
        )
        .await;
    let e = expect_err(replay.end().await);
    leaks.text("replay error", format!("{e} / {e:?}"));
    let (mut denied, w) = start_login(&sim, &dir, "scan").await;
    let browser = tokio::spawn(get(sim
        .callback(&[
            ("error", "access_denied"),
            ("error_description", "no <b>thanks</b>"),
            ("state", &w.state),
        ])
        .to_string()));
    let e = expect_err(denied.end().await);
    leaks.text("denial error", format!("{e} / {e:?}"));
    leaks.page("denial page", &page_of(browser).await);

    // The binary, at trace level: browser login, status, refresh, config check.
    let sb = sandbox(&login_config(&sim));
    let out = sb.run_async(&["-vv", "login"]).await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    leaks.out("login -vv", &out);
    leaks.token(
        "binary token 1",
        &stored_oauth_token(&sb.token_path(), None),
    );
    for args in [
        &["-vv", "status", "--validate", "--json"][..],
        &["-vv", "status"][..],
        &["-vv", "refresh"][..],
        &["config", "check"][..],
    ] {
        let out = sb.run_async(args).await;
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.all());
        leaks.out(&format!("{args:?}"), &out);
    }

    // The binary: pasted garbage, a changed state, the real address; then a replay.
    let mut p = interactive(&sb, &["-vv", "login", "--no-browser"]);
    let url = p.login_url().await;
    let loc = approved_redirect(&url).await;
    let code2 = query_param(&loc, "code").unwrap();
    leaks.secret("code 2", &code2);
    p.send("not an address").await;
    p.line_with("Not accepted:").await;
    p.send(with_param(&loc, "state", "changed").as_str()).await;
    p.line_with("Not accepted:").await;
    p.send(loc.as_str()).await;
    let out = p.finish().await;
    assert_eq!(out.code, Some(0), "{}", out.all());
    leaks.out("login --no-browser -vv", &out);
    leaks.token(
        "binary token 2",
        &stored_oauth_token(&sb.token_path(), None),
    );
    let mut p = interactive(&sb, &["-vv", "login", "--no-browser"]);
    let url = p.login_url().await;
    let state = query_param(&url, "state").unwrap();
    p.paste_callback(&sim, &code2, &state).await;
    let out = p.finish().await;
    assert_eq!(out.code, Some(1), "{}", out.all());
    leaks.out("replayed login -vv", &out);

    // The binary: a login that times out.
    let mut config = login_config(&sim);
    config["login"]["timeout"] = json!("10s");
    sb.write_config(&config);
    let out = sb.run_async(&["-vv", "login", "--no-browser"]).await;
    assert_eq!(out.code, Some(1), "{}", out.all());
    leaks.out("timed-out login -vv", &out);

    // Everything the library logged (all tests in this file so far).
    leaks.text("library logs", global_logs().text());
    leaks.assert_clean();
}
