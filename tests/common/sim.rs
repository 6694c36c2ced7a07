//! The Upstox simulator for tests of the real binary: `tokenwatch simulate` as a process, or
//! the library's simulator in this process, in real time.

use super::http::{raw_http, request};
use super::net::free_port;
use super::sandbox::bin;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use tokenwatch::brokers::upstox::sim::{SimConfig, SimServer, Simulator};
use tokenwatch::clock::SystemClock;

/// The line `tokenwatch simulate` starts with.
const LISTENING: &str = "Upstox simulator listening on ";

/// `tokenwatch simulate` on a free loopback port, stopped on drop.
pub struct SimProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub port: u16,
}

impl SimProcess {
    /// Tokens live 20 hours here instead of until the next 03:30 IST, so that no test depends
    /// on the time of day it runs at (a token issued at 00:30 IST would be `warning` at once).
    pub fn start() -> SimProcess {
        SimProcess::start_with(&["--token-lifetime", "20h"])
    }

    /// `tokenwatch simulate` with these flags after `--listen`.
    pub fn start_with(extra: &[&str]) -> SimProcess {
        for _ in 0..20 {
            let port = free_port();
            let mut child = Command::new(bin())
                .args(["simulate", "--listen", &format!("127.0.0.1:{port}")])
                .args(extra)
                .env_clear()
                .envs(super::sandbox::clock_env())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut first = String::new();
            let mut reader = BufReader::new(child.stdout.take().unwrap());
            reader.read_line(&mut first).unwrap();
            // Keep reading: a closed pipe would end the simulator with SIGPIPE.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            if let Some(base) = first.trim().strip_prefix(LISTENING) {
                return SimProcess {
                    child,
                    base: base.to_owned(),
                    port,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("tokenwatch simulate did not start");
    }

    /// `DELETE /v2/logout` for `token`: the simulator rejects it from now on. The answer's
    /// status: 200, or 401 for a token it rejected already.
    pub fn revoke(&self, token: &str) -> u16 {
        let auth = format!("Authorization: Bearer {token}");
        let a = raw_http(
            self.port,
            &request(
                "DELETE",
                self.port,
                "/v2/logout",
                &[&auth, "Accept: application/json"],
                b"",
            ),
        );
        assert!(
            a.status == 200 || a.status == 401,
            "logout answered: {}",
            a.all()
        );
        a.status
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The library's simulator in this process, on loopback, with a free callback port of its own
/// registered as its redirect URI.
pub struct SimHost {
    /// A runtime of its own, for tests that have none.
    rt: Option<tokio::runtime::Runtime>,
    pub sim: Simulator,
    pub server: SimServer,
    pub callback_port: u16,
    /// `http://<host>:<callback_port>/callback`
    pub redirect: String,
    pub config: SimConfig,
}

impl SimHost {
    /// On the current runtime; `host` names loopback in the redirect URI (`localhost`,
    /// `127.0.0.1`).
    pub async fn start(config: SimConfig, host: &str) -> SimHost {
        let (sim, callback_port, redirect, config) = SimHost::simulator(config, host);
        let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        SimHost {
            rt: None,
            sim,
            server,
            callback_port,
            redirect,
            config,
        }
    }

    /// [`SimHost::start`] on a runtime of its own (one worker thread).
    pub fn start_own_runtime(config: SimConfig, host: &str) -> SimHost {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (sim, callback_port, redirect, config) = SimHost::simulator(config, host);
        let server = rt
            .block_on(sim.serve("127.0.0.1:0".parse().unwrap()))
            .unwrap();
        SimHost {
            rt: Some(rt),
            sim,
            server,
            callback_port,
            redirect,
            config,
        }
    }

    fn simulator(config: SimConfig, host: &str) -> (Simulator, u16, String, SimConfig) {
        let callback_port = free_port();
        let redirect = format!("http://{host}:{callback_port}/callback");
        let config = SimConfig {
            redirect_uri: redirect.clone(),
            ..config
        };
        let sim = Simulator::new(config.clone(), Arc::new(SystemClock));
        (sim, callback_port, redirect, config)
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base(&self) -> String {
        self.server
            .base_url
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    /// A config for the binary (JSON is YAML) against this simulator: its client id and
    /// secret, its redirect URI, `upstox_token.json` with one backup, short backoffs, and
    /// `renew` and `login` as given.
    pub fn binary_config(
        &self,
        renew: serde_json::Value,
        login: serde_json::Value,
    ) -> serde_json::Value {
        serde_json::json!({
            "upstox": {
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret,
                "redirect_uri": self.redirect,
                "api_base": self.base(),
            },
            "token": {"path": "upstox_token.json", "backups": ["backup/upstox_token.json"]},
            // Small thresholds: a token issued now reads healthy at any time of day.
            "monitor": super::time::with_small_thresholds(
                serde_json::json!({"backoff_initial": "50ms", "backoff_max": "200ms"})
            ),
            "renew": renew,
            "login": login,
        })
    }

    /// Run `f` on the simulator's own runtime.
    pub fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt
            .as_ref()
            .expect("a simulator on a runtime of its own")
            .block_on(f)
    }
}
