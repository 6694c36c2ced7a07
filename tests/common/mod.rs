//! Shared test harness: a simulator on loopback driven by tokio's paused clock, a token file
//! in a temporary folder, and a worker whose events are collected.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokenwatch::clock::{Clock, TokioClock};
use tokenwatch::config::{
    AccountConfig, MonitorConfig, RenewConfig, Strategy, TokenConfig, UpstoxConfig,
};
use tokenwatch::token::expiry::ist;
use tokenwatch::token::store::TokenStore;
use tokenwatch::token::{ExpirySource, Token, TokenFileFormat};
use tokenwatch::upstox::sim::{SimConfig, SimServer, Simulator};
use tokenwatch::worker::{self, Command, Core, Event, Notification, Snapshot, WorkerHandle};

/// An instant in IST, November 2026 (the 26th is a Thursday).
pub fn ist_at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    ist()
        .with_ymd_and_hms(2026, 11, day, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

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
        let issued = self.sim.issue_token();
        let token = Token {
            access_token: issued.access_token,
            token_type: "Bearer".into(),
            extended_token: None,
            user_id: Some("AB1234".into()),
            user_name: Some("Jane Doe".into()),
            email: None,
            issued_at: Some(issued.issued_at),
            expires_at: issued.expires_at,
            expiry_source: ExpirySource::ExpiresAt,
            obtained_via: Some("oauth".into()),
            format: TokenFileFormat::Format1,
        };
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

/// Stop a worker and wait for it.
pub async fn stop(handle: WorkerHandle) {
    handle.commands.send(Command::Shutdown).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), handle.task)
        .await
        .unwrap()
        .unwrap();
}

pub fn notices(log: &Arc<Mutex<Vec<Event>>>) -> Vec<Notification> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Notice(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

pub fn snapshots(log: &Arc<Mutex<Vec<Event>>>) -> Vec<Snapshot> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Status(s) => Some((**s).clone()),
            _ => None,
        })
        .collect()
}
