//! Shared test support. The test files have `mod common;` (all but parsers.rs, which needs none
//! of it) and take what they need:
//!
//! - [`Harness`] (here): a simulator on loopback driven by tokio's paused clock, a token file
//!   in a temporary folder, and a worker whose events are collected;
//! - [`sandbox`]: the real binary in a sandbox ([`Sandbox`], [`Out`], [`Running`]);
//! - [`sim`]: `tokenwatch simulate` as a process ([`SimProcess`]) and the library's simulator
//!   in real time ([`SimHost`]);
//! - [`http`]: a `reqwest` client and a raw socket client; [`net`]: free ports, waiting;
//! - [`logs`]: log capture; [`leaks`]: the scan for tokens and secrets in what was captured;
//! - [`doc`]: the generated blocks of the docs ([`doc::sync_block`]; [`doc::sync_doc_block`]
//!   for `docs/reliability.md`);
//! - [`rss`]: a process's exact peak memory ([`rss::run_measured`]);
//! - [`screen`]: a drawn frame as text (rows, the screen, styled runs for snapshots);
//! - [`tmux`]: a real terminal; [`time`]: IST instants; [`tokens`]: tokens to store.
//!
//! Each test file compiles this module on its own, so what one file does not use is dead code
//! (and an unused re-export) there.

#![allow(dead_code, unused_imports)]

pub mod doc;
pub mod http;
pub mod leaks;
pub mod logs;
pub mod net;
pub mod rss;
pub mod sandbox;
pub mod screen;
pub mod sim;
pub mod smtp;
pub mod time;
pub mod tmux;
pub mod tokens;

pub use http::{
    Answer, Resp, client, fetch, get, http_get, query_param, raw_http, request, split_url,
};
pub use leaks::{Leaks, assert_no_full_token, full_token_in};
pub use logs::{LogCapture, Logs, capture_logs, global_logs};
pub use net::{free_port, listening, port_free, wait_until};
pub use sandbox::{
    ConfigEnv, KillOnDrop, Out, Running, Sandbox, bin, clock_env, mode, output_of, sh_quote,
    stored_token,
};
pub use sim::{SimHost, SimProcess};
pub use time::{at_ist, ist, ist_at, ist_rfc3339, now_secs};
pub use tmux::Tmux;
/// The worker's messages, imported from here by every test file.
pub use tokenwatch::messages::{Command, Event, Level, Notification, Snapshot, Topic};

use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokenwatch::brokers::upstox::sim::{Fault, SimConfig, SimServer, Simulator};
use tokenwatch::clock::{Clock, TokioClock};
use tokenwatch::config::{
    AccountConfig, MonitorConfig, RenewConfig, Strategy, TokenConfig, UpstoxConfig,
};
use tokenwatch::token::Token;
use tokenwatch::token::store::TokenStore;
use tokenwatch::worker::{self, Core, WorkerHandle};

/// Everything a worker test needs.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub clock: Arc<TokioClock>,
    pub sim: Simulator,
    pub server: SimServer,
    pub account: AccountConfig,
    pub monitor: MonitorConfig,
}

impl Harness {
    /// A simulator and an account at `start` (call inside a paused-clock runtime).
    pub async fn new(start: DateTime<Utc>) -> Harness {
        let clock = Arc::new(TokioClock::starting_at(start));
        let sim = Simulator::new(SimConfig::default(), clock.clone());
        let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let account = AccountConfig {
            name: "default".into(),
            broker: Default::default(),
            kite: Default::default(),
            fyers: Default::default(),
            angel: Default::default(),
            dhan: Default::default(),
            upstox: UpstoxConfig {
                api_base: server.base_url.clone(),
                ..UpstoxConfig::default()
            },
            token: TokenConfig {
                path: dir.path().join("upstox_token.json"),
                backups: vec![dir.path().join("backup/upstox_token.json")],
                env_file: None,
                on_change: vec![],
            },
            renew: RenewConfig {
                strategy: Strategy::Command,
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    format!(
                        "echo run >> '{d}/command.log'; cat '{d}/next_token.txt'",
                        d = dir.path().display()
                    ),
                ],
                ..RenewConfig::default()
            },
        };
        Harness {
            dir,
            clock,
            sim,
            server,
            account,
            monitor: MonitorConfig::default(),
        }
    }

    pub fn token_path(&self) -> PathBuf {
        self.account.token.path.clone()
    }

    /// Mint a token now and store it as the current token file.
    pub fn store_fresh_token(&self) -> Token {
        let token = tokens::issued(self.sim.issue_token());
        TokenStore::new(self.token_path(), self.account.token.backups.clone())
            .write(&token)
            .unwrap();
        token
    }

    /// Mint a token now and leave it where `renew.command` prints it from.
    pub fn prepare_command_token(&self) {
        let issued = self.sim.issue_token();
        std::fs::write(
            self.dir.path().join("next_token.txt"),
            issued.access_token.expose(),
        )
        .unwrap();
    }

    /// How many times `renew.command` ran.
    pub fn command_runs(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("command.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    pub fn core(&self) -> Core {
        Core::new(
            self.account.clone(),
            self.monitor.clone(),
            self.clock.clone() as Arc<dyn Clock>,
        )
        .unwrap()
    }

    /// Start the worker; its events are collected into the returned log.
    pub fn spawn(&self) -> (WorkerHandle, Arc<Mutex<Vec<Event>>>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let handle = worker::spawn(self.core(), tx);
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                sink.lock().unwrap().push(e);
            }
        });
        (handle, log)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Let virtual time run until `t`.
    pub async fn run_until(&self, t: DateTime<Utc>) {
        let d = (t - self.now()).to_std().unwrap_or(Duration::ZERO);
        tokio::time::sleep(d).await;
    }
}

/// The words a failure caused by `fault` must carry (for a 401, Upstox's code).
pub fn fault_reason(fault: Fault) -> &'static str {
    match fault {
        Fault::ServerError => "server error (HTTP 500",
        Fault::TooManyRequests { .. } => "rate limited",
        Fault::Timeout => "timed out",
        Fault::MalformedJson => "HTTP 200 with an answer that is not JSON",
        Fault::CloudflareHtml => "HTTP 403 with an HTML page",
        Fault::ServiceWindow => "service window (UDAPI100074",
        Fault::Unauthorized => "UDAPI100050",
        Fault::HtmlUnauthorized => "HTTP 401 with an HTML page",
        Fault::EndlessBody | Fault::HugeBody => "HTTP 200 with an answer larger than 64 KiB",
        Fault::TrickleBody => "timed out",
    }
}

/// Stop a worker and wait for it.
pub async fn stop(handle: WorkerHandle) {
    handle.commands.send(Command::Shutdown).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), handle.task)
        .await
        .unwrap()
        .unwrap();
}

/// The files tokenwatch keeps, with their bytes and their inode/mtime (a rewrite with the
/// same bytes is still a write).
pub type Files = (
    std::collections::BTreeMap<PathBuf, Vec<u8>>,
    std::collections::BTreeMap<PathBuf, (u64, std::time::SystemTime)>,
);

/// What `pick` takes from each event of a log, in order.
pub fn events_of<T>(log: &Arc<Mutex<Vec<Event>>>, pick: impl Fn(&Event) -> Option<T>) -> Vec<T> {
    log.lock().unwrap().iter().filter_map(pick).collect()
}

/// The alerts in a worker's event log.
pub fn alerts(log: &Arc<Mutex<Vec<Event>>>) -> Vec<tokenwatch::messages::Alert> {
    events_of(log, |e| match e {
        Event::Alert(a) => Some(a.clone()),
        _ => None,
    })
}

/// A current-thread runtime on tokio's paused clock, for a worker's simulated days.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

pub fn notices(log: &Arc<Mutex<Vec<Event>>>) -> Vec<Notification> {
    events_of(log, |e| match e {
        Event::Notice(n) => Some(n.clone()),
        _ => None,
    })
}

pub fn snapshots(log: &Arc<Mutex<Vec<Event>>>) -> Vec<Snapshot> {
    events_of(log, |e| match e {
        Event::Status(s) => Some((**s).clone()),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------
// A recording proxy, command scripts and file snapshots.
// ---------------------------------------------------------------------------------------

/// The requests that reached the simulator through [`Harness::record_calls`]: the virtual
/// time each one arrived and its path.
#[derive(Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<Call>>>);

/// One request: when it arrived (virtual time) and its path.
pub type Call = (DateTime<Utc>, String);

impl CallLog {
    /// When each request for `path` arrived, in order.
    pub fn times(&self, path: &str) -> Vec<DateTime<Utc>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p)| p == path)
            .map(|(t, _)| *t)
            .collect()
    }
}

impl Harness {
    /// Put a recording HTTP proxy between the account and the simulator, so a test can see
    /// when each attempt was made (the simulator only counts them). Call before
    /// [`Harness::core`] or [`Harness::spawn`]: it changes `account.upstox.api_base`.
    pub async fn record_calls(&mut self) -> CallLog {
        use axum::extract::Request;
        use axum::http::{HeaderMap, StatusCode, header};
        use axum::response::IntoResponse;

        let log = CallLog::default();
        let upstream = self.server.base_url.clone();
        let clock = self.clock.clone();
        let client = http::client(None);
        let sink = log.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let (upstream, clock, client, sink) = (
                upstream.clone(),
                clock.clone(),
                client.clone(),
                sink.clone(),
            );
            async move {
                let (parts, body) = req.into_parts();
                sink.0
                    .lock()
                    .unwrap()
                    .push((clock.now(), parts.uri.path().to_owned()));
                let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let url = upstream.join(target.trim_start_matches('/')).unwrap();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let mut headers = HeaderMap::new();
                for name in [header::AUTHORIZATION, header::ACCEPT, header::CONTENT_TYPE] {
                    if let Some(v) = parts.headers.get(&name) {
                        headers.insert(name, v.clone());
                    }
                }
                match client
                    .request(parts.method, url)
                    .headers(headers)
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let status = r.status();
                        let mut out = HeaderMap::new();
                        for name in [header::CONTENT_TYPE, header::RETRY_AFTER, header::LOCATION] {
                            if let Some(v) = r.headers().get(&name) {
                                out.insert(name, v.clone());
                            }
                        }
                        let bytes = r.bytes().await.unwrap_or_default();
                        (status, out, bytes).into_response()
                    }
                    Err(_) => StatusCode::BAD_GATEWAY.into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        self.account.upstox.api_base = url::Url::parse(&format!("http://{addr}/")).unwrap();
        log
    }

    /// Make `renew.command` run `script` with `sh -c` in the test folder, still counting runs
    /// in `command.log` (see [`Harness::command_runs`]).
    pub fn set_command_script(&mut self, script: &str) {
        let d = self.dir.path().display();
        self.account.renew.command = vec![
            "sh".into(),
            "-c".into(),
            format!("echo run >> '{d}/command.log'; cd '{d}' && {script}"),
        ];
    }

    /// The token text [`Harness::prepare_command_token`] left for `renew.command`.
    pub fn command_token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("next_token.txt")).unwrap()
    }

    /// Every file under the test folder with its bytes, except the test's own inputs
    /// (`command.log`, `next_token.txt`) and lock files: what tokenwatch stored.
    pub fn stored_files(&self) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &std::path::Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.file_type().unwrap().is_dir() {
                    walk(&path, out);
                } else if !(name == "command.log"
                    || name == "next_token.txt"
                    || name.ends_with(".lock")
                    // The API's last answer, written by every check: not a stored token.
                    || name.ends_with(".state"))
                {
                    out.insert(path.clone(), std::fs::read(&path).unwrap());
                }
            }
        }
        let mut out = std::collections::BTreeMap::new();
        walk(self.dir.path(), &mut out);
        out
    }

    /// The inode and modification time of every file [`Harness::stored_files`] lists: a
    /// rewrite with the same bytes still changes these.
    pub fn stored_stamps(
        &self,
    ) -> std::collections::BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
        use std::os::unix::fs::MetadataExt;
        self.stored_files()
            .into_keys()
            .map(|p| {
                let m = std::fs::metadata(&p).unwrap();
                let stamp = (m.ino(), m.modified().unwrap());
                (p, stamp)
            })
            .collect()
    }

    /// What tokenwatch stored: [`Harness::stored_files`] and [`Harness::stored_stamps`].
    pub fn files(&self) -> Files {
        (self.stored_files(), self.stored_stamps())
    }

    /// Temp files an interrupted write would leave (`.<name>.tmp*`), anywhere under the
    /// test folder.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                if entry.file_type().unwrap().is_dir() {
                    walk(&entry.path(), out);
                } else if entry.file_name().to_string_lossy().contains(".tmp") {
                    out.push(entry.path());
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out
    }
}
