//! The real binary against the real simulator process: `simulate`, `refresh` with a
//! `renew.command`, `status --validate`, and `daemon` with its signals.

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `tokenwatch simulate` on a free port, stopped on drop.
struct SimProcess {
    child: Child,
    base: String,
}

impl SimProcess {
    /// Tokens live 20 hours here instead of until the next 03:30 IST, so that no test depends
    /// on the time of day it runs at (a token issued at 00:30 IST would be `warning` at once).
    fn start() -> SimProcess {
        Self::start_with(&["--token-lifetime", "20h"])
    }

    fn start_with(extra: &[&str]) -> SimProcess {
        for _ in 0..20 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let mut child = Command::new(cargo_bin("tokenwatch"))
                .args(["simulate", "--listen", &format!("127.0.0.1:{port}")])
                .args(extra)
                .env_clear()
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut first = String::new();
            let mut reader = BufReader::new(child.stdout.take().unwrap());
            reader.read_line(&mut first).unwrap();
            // Keep reading: a closed pipe would end the simulator with SIGPIPE.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            if let Some(base) = first.trim().strip_prefix("Upstox simulator listening on ") {
                return SimProcess {
                    child,
                    base: base.to_owned(),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the simulator did not start");
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Sandbox {
    fn new(api_base: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        let yaml = format!(
            "upstox:\n  api_base: \"{api_base}\"\n\
             token:\n  path: upstox_token.json\n  backups: [backup/upstox_token.json]\n\
             monitor:\n  backoff_initial: 50ms\n  backoff_max: 200ms\n\
             renew:\n  strategy: command\n  not_before: \"00:00\"\n  command: [\"curl\", \"-sf\", \"-X\", \"POST\", \"{api_base}/sim/token\"]\n"
        );
        std::fs::write(root.join("config/tokenwatch.yaml"), yaml).unwrap();
        Sandbox { _dir: dir, root }
    }

    fn token_path(&self) -> PathBuf {
        self.root.join("config/upstox_token.json")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(cargo_bin("tokenwatch"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.root.join("home"))
            .current_dir(&self.root);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn refresh_renews_through_the_command_and_status_validates_it() {
    let sim = SimProcess::start();
    let sb = Sandbox::new(&sim.base);

    // No token yet: refresh runs renew.command, verifies the token, stores it.
    let out = sb.run(&["refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("Token refresh successful"),
        "{}",
        text(&out)
    );
    assert_eq!(mode(&sb.token_path()), 0o600);
    assert_eq!(
        mode(&sb.root.join("config/backup/upstox_token.json")),
        0o600
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(sb.token_path()).unwrap()).unwrap();
    assert_eq!(stored["format"], 1);
    assert_eq!(stored["obtained_via"], "command");
    assert_eq!(stored["user_id"], "AB1234");
    let token = stored["access_token"].as_str().unwrap().to_owned();
    assert!(!text(&out).contains(&token), "refresh printed the token");

    let out = sb.run(&["status", "--validate", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["state"], "healthy");
    assert_eq!(j["api_validated"], true);
    assert!(j["last_validated_at"].as_str().unwrap().ends_with("+05:30"));
    assert!(!text(&out).contains(&token));

    // A second refresh finds the token valid and leaves it alone.
    let out = sb.run(&["refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("renewal is not due yet"),
        "{}",
        text(&out)
    );
    let again: Value = serde_json::from_slice(&std::fs::read(sb.token_path()).unwrap()).unwrap();
    assert_eq!(again["access_token"], stored["access_token"]);
}

#[test]
fn status_validate_reports_a_rejected_token_as_invalid() {
    let sim = SimProcess::start();
    let sb = Sandbox::new(&sim.base);
    // A JWT this simulator never signed.
    let forged = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQjEyMzQiLCJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl";
    std::fs::write(sb.token_path(), forged).unwrap();
    let out = sb.run(&["status", "--validate", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["state"], "invalid");
    assert_eq!(j["valid"], false);
    assert!(j["error"].as_str().unwrap().contains("UDAPI100050"), "{j}");
    assert!(!text(&out).contains(forged));
    // `refresh` replaces it: a rejected token is renewed at once.
    let out = sb.run(&["refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stored = std::fs::read_to_string(sb.token_path()).unwrap();
    assert!(!stored.contains(forged));
}

#[test]
fn status_validate_with_the_api_down_is_unknown() {
    let sim = SimProcess::start();
    let base = sim.base.clone();
    let sb = Sandbox::new(&base);
    assert_eq!(sb.run(&["refresh"]).status.code(), Some(0));
    drop(sim);
    let out = sb.run(&["status", "--validate", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["state"], "unknown");
    assert!(
        j["error"].as_str().unwrap().contains("cannot connect"),
        "{j}"
    );
    // Three attempts, two retries logged, and the token is not called invalid.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("Check attempt").count(), 2, "{err}");
    // refresh: the API cannot confirm, renewal is not due, and a network failure is never
    // a reason to call the token invalid: it is still good by time, so exit 0.
    let out = sb.run(&["refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn daemon_validates_and_stops_cleanly_on_sigterm_and_sigint() {
    let sim = SimProcess::start();
    let sb = Sandbox::new(&sim.base);
    assert_eq!(sb.run(&["refresh"]).status.code(), Some(0));
    let before = std::fs::read(sb.token_path()).unwrap();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut child = sb.cmd(&["daemon"]).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lines = Vec::new();
        while !lines
            .iter()
            .any(|l: &String| l.contains("Token valid, expires in"))
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => lines.push(l),
                Err(_) => panic!("the daemon did not validate: {lines:#?}"),
            }
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "signal {signal}: {lines:#?}");
        assert_eq!(
            std::fs::read(sb.token_path()).unwrap(),
            before,
            "the daemon changed a valid token"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(sb.root.join("config"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn refresh_with_token_request_completes_through_the_notifier_webhook() {
    // Below the ephemeral range, so no outgoing connection takes it before the notifier binds.
    let hook_port = (21_000..30_000)
        .map(|p| p + (std::process::id() % 500) as u16)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .unwrap();
    let hook = format!("http://127.0.0.1:{hook_port}/upstox-hook-test");
    // The notifier holds a delivered token to Upstox's 03:30 IST rule, so this simulator keeps
    // it; short thresholds keep the stored token `healthy` at any hour but 03:29-03:30 IST.
    let sim = SimProcess::start_with(&["--auto-approve", "--notifier-url", &hook]);
    let sb = Sandbox::new(&sim.base);
    let yaml = format!(
        "upstox:\n  api_base: \"{base}\"\n  client_id: 615b1297-sim-client\n  client_secret: sim-secret\n\
         token:\n  path: upstox_token.json\n  backups: []\n\
         renew:\n  strategy: token-request\n  not_before: \"00:00\"\n  notifier_listen: \"127.0.0.1:{hook_port}\"\n  notifier_path: /upstox-hook-test\n\
         monitor:\n  warning_before: 1m\n  critical_before: 30s\n",
        base = sim.base
    );
    std::fs::write(sb.root.join("config/tokenwatch.yaml"), yaml).unwrap();
    let out = sb.run(&["refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("Approve the token request"),
        "{}",
        text(&out)
    );
    let stored: Value = serde_json::from_slice(&std::fs::read(sb.token_path()).unwrap()).unwrap();
    assert_eq!(stored["obtained_via"], "token-request");
    assert_eq!(stored["user_id"], "AB1234");
    assert_eq!(mode(&sb.token_path()), 0o600);
    let token = stored["access_token"].as_str().unwrap();
    assert!(!text(&out).contains(token), "refresh printed the token");
    let out = sb.run(&["status", "--validate", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
