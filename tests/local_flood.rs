//! Local floods and odd neighbours: slow and idle connections against the HTTP API of the
//! real daemon (under systemd's 1024 open files), the dashboard started beside a daemon that
//! serves the API on the same port, `server.listen: off`, and a closed stderr (SIGPIPE).
//!
//! The `local-flood` block of docs/reliability.md is generated from [`CASES`]
//! (`UPDATE_RELIABILITY=1 cargo test --test local_flood`).

mod common;

use common::doc::{hardening_table, sync_doc_block};
use common::{ConfigEnv, Running, Sandbox, SimProcess, Tmux, bin, free_port, http_get, sh_quote};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Slow connections in the slowloris case.
const SLOW: usize = 300;
/// When the slow connections are counted: the 10 s header timeout and a margin.
const SLOW_COUNTED_AT: Duration = Duration::from_secs(15);
/// Idle connections in the flood case (more than the 1024 open files the daemon gets).
const FLOOD: usize = 1100;
/// The most `/healthz` may take during the flood.
const HEALTHZ_BOUND: Duration = Duration::from_secs(1);
/// The most the renewal may take during the flood, from the moment it is due.
const RENEWAL_BOUND: Duration = Duration::from_secs(30);
/// The most file descriptors the daemon may hold during the flood: 256 connections and the
/// daemon's own (of the 1024 it may open).
const FD_BOUND: usize = 320;
/// The daemon's resident memory bound during the flood.
const RSS_BOUND_KIB: u64 = 20 * 1024;

/// A case of the `local-flood` block: what it did when found, what the test checks, the bound
/// the test holds, and the test.
struct Case {
    case: &'static str,
    before: &'static str,
    now: &'static str,
    figure: String,
    test: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            case: "300 slowloris connections (a request line sent one byte a second)",
            before: "all 300 still open after 70 s",
            now: "closed by the 10 s header timeout (real daemon)",
            figure: format!("0 of {SLOW} open after {} s", SLOW_COUNTED_AT.as_secs()),
            test: "tests/local_flood.rs::slowloris_connections_are_closed_by_the_header_timeout",
        },
        Case {
            case: "1,100 idle loopback connections against a daemon under `ulimit -n 1024`, a renewal due",
            before: "every file descriptor used; /healthz timed out; the renewal failed with EMFILE and was put off 30 minutes",
            now: "at most 256 connections held (256 descriptors left to the worker), the longest idle makes room; /healthz answers, the renewal runs at once",
            figure: format!(
                "≤ {FD_BOUND} of 1024 descriptors in use; /healthz ≤ {} s; renewal done ≤ {} s; memory < {} MB (heap and stacks; the whole RSS in a release build)",
                HEALTHZ_BOUND.as_secs(),
                RENEWAL_BOUND.as_secs(),
                RSS_BOUND_KIB / 1024
            ),
            test: "tests/local_flood.rs::an_idle_flood_under_1024_open_files_leaves_healthz_and_the_renewal_alone",
        },
        Case {
            case: "a request body that stops coming; an answer never read",
            before: "held open for ever",
            now: "closed after the idle limit (60 s; 0.8 s in the test)",
            figure: "closed ≤ 10 s with the test's limits".into(),
            test: "src/serving.rs::a_body_that_never_ends_and_an_answer_never_read_are_closed_when_idle",
        },
        Case {
            case: "every connection slot holds a request being handled",
            before: "no cap: each connection took a descriptor",
            now: "the next connection gets a 503 at once and is closed",
            figure: "503 for the 5th of 4 busy connections".into(),
            test: "src/serving.rs::at_the_cap_an_idle_connection_makes_room_and_busy_ones_get_a_503",
        },
        Case {
            case: "the dashboard started beside a daemon serving the API on the same port",
            before: "exit 1, \"port … is in use\"",
            now: "runs; the log and the details popup say the API is not served by this dashboard",
            figure: "dashboard running after the message".into(),
            test: "tests/local_flood.rs::the_dashboard_starts_beside_a_daemon_that_serves_the_api",
        },
        Case {
            case: "the daemon's stderr reader closed (SIGPIPE)",
            before: "killed by SIGPIPE (exit 141) before its first check",
            now: "keeps running, renews, exits 0 on SIGTERM; `status` into a closed pipe ends quietly",
            figure: "exit 0, 1 renewal".into(),
            test: "tests/local_flood.rs::a_closed_stderr_never_stops_the_daemon",
        },
    ]
}

#[test]
fn reliability_doc_block_is_current() {
    let md = hardening_table(cases().into_iter().map(|c| {
        [
            c.case.into(),
            c.before.into(),
            c.now.into(),
            c.figure,
            c.test.into(),
        ]
    }));
    if let Err(e) = sync_doc_block("local-flood", &md, &[]) {
        panic!("{e}");
    }
}

/// A sandbox renewing with `renew.command` (curl to the simulator) and serving the API on
/// `port`, with a valid token stored by `refresh`.
fn daemon_sandbox(sim: &SimProcess, port: u16) -> Sandbox {
    let sb = Sandbox::new();
    let base = &sim.base;
    sb.write_yaml(&format!(
        "upstox:\n  api_base: \"{base}\"\n\
         token:\n  path: upstox_token.json\n  backups: [backup/upstox_token.json]\n\
         monitor:\n  backoff_initial: 50ms\n  backoff_max: 200ms\n\
         renew:\n  strategy: command\n  not_before: \"00:00\"\n  command: [\"curl\", \"-sf\", \"-X\", \"POST\", \"{base}/sim/token\"]\n\
         server:\n  listen: \"127.0.0.1:{port}\"\n"
    ));
    let out = sb.run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    sb
}

/// A JWT the simulator never signed: stored over a valid token, it makes a renewal due at once.
const FORGED: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQjEyMzQiLCJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl";

/// Raise this process's open-file limit to the hard limit, for the flood's sockets.
fn raise_own_limit(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= need,
        "this test opens {need} sockets; the hard open-file limit is {}",
        lim.rlim_cur
    );
}

/// True while the server keeps `s` open (nothing to read yet, no end of stream).
fn still_open(mut s: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::WouldBlock,
    }
}

fn connect_nonblocking(port: u16) -> TcpStream {
    let s =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(10))
            .expect("connect");
    s.set_nonblocking(true).unwrap();
    s
}

/// A memory figure of `pid` from /proc/PID/status (`VmRSS`, `RssAnon`), in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// `/healthz` answers 200; how long it took.
fn healthz(port: u16) -> Duration {
    let start = Instant::now();
    let a = http_get(port, "/healthz");
    let took = start.elapsed();
    assert_eq!(a.status, 200, "/healthz: {}", a.all());
    took
}

#[test]
fn slowloris_connections_are_closed_by_the_header_timeout() {
    let sim = SimProcess::start();
    let port = free_port();
    let sb = daemon_sandbox(&sim, port);
    let mut daemon = sb.spawn(&["daemon"]);
    daemon.stderr_with("HTTP API listening on");
    daemon.stderr_with("Token valid, expires in");

    let line = b"GET /api/token/status HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    let start = Instant::now();
    let mut slow: Vec<(TcpStream, bool)> = (0..SLOW)
        .map(|_| (connect_nonblocking(port), true))
        .collect();
    // One byte a second on every connection still open, until they are counted.
    let mut sent = 0;
    while start.elapsed() < SLOW_COUNTED_AT {
        for (s, open) in slow.iter_mut().filter(|(_, open)| *open) {
            if sent < line.len() && s.write(&line[sent..sent + 1]).is_err() {
                *open = false;
            }
        }
        sent += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    let open = slow.iter().filter(|(s, _)| still_open(s)).count();
    assert_eq!(
        open,
        0,
        "{open} of {SLOW} slow connections still open after {:?}",
        start.elapsed()
    );
    // The API still answers, and the daemon carries on.
    assert!(healthz(port) < Duration::from_secs(10));
    assert!(daemon.running(), "{}", daemon.stderr());
    daemon.signal(libc::SIGTERM);
    let out = daemon.finish();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn an_idle_flood_under_1024_open_files_leaves_healthz_and_the_renewal_alone() {
    raise_own_limit(FLOOD as u64 + 200);
    let sim = SimProcess::start();
    let port = free_port();
    let sb = daemon_sandbox(&sim, port);
    // The daemon as systemd starts it by default: 1024 open files, soft and hard.
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=1024:1024")
        .arg(bin())
        .arg("daemon")
        .env_clear()
        .envs(sb.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&sb.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut daemon = Running::new(cmd.spawn().expect("prlimit (util-linux)"));
    daemon.stderr_with("HTTP API listening on");
    daemon.stderr_with("Token valid, expires in");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.pid())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 1024 ")),
        "{limits}"
    );

    let flood: Vec<TcpStream> = (0..FLOOD).map(|_| connect_nonblocking(port)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let fds = std::fs::read_dir(format!("/proc/{}/fd", daemon.pid()))
        .unwrap()
        .count();
    assert!(
        fds <= FD_BOUND,
        "the daemon holds {fds} file descriptors during the flood"
    );
    for _ in 0..5 {
        let took = healthz(port);
        assert!(
            took <= HEALTHZ_BOUND,
            "/healthz took {took:?} during the flood"
        );
    }
    // A renewal falls due now: the stored token is replaced by one the API rejects.
    let before = sb.stored().unwrap();
    let due = Instant::now();
    std::fs::write(sb.token_path(), FORGED).unwrap();
    loop {
        let stored = sb.stored();
        if stored
            .as_deref()
            .is_some_and(|t| t != FORGED && t != before)
        {
            break;
        }
        assert!(
            due.elapsed() < RENEWAL_BOUND,
            "no renewal within {RENEWAL_BOUND:?} during the flood:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = healthz(port);
    assert!(
        took <= HEALTHZ_BOUND,
        "/healthz took {took:?} after the renewal"
    );
    // What the process allocated (heap, stacks, buffers): the part a flood can grow. The
    // whole RSS also counts the binary's pages, 20 MB of them in a debug build alone; it is
    // held to the bound in a release build.
    let anon = memory_kib(daemon.pid(), "RssAnon");
    assert!(
        anon < RSS_BOUND_KIB,
        "the daemon's memory is {anon} KiB during the flood"
    );
    if !cfg!(debug_assertions) {
        let rss = memory_kib(daemon.pid(), "VmRSS");
        assert!(
            rss < RSS_BOUND_KIB,
            "the daemon's RSS is {rss} KiB during the flood"
        );
    }
    let err = daemon.stderr();
    assert!(
        !err.contains("Too many open files") && !err.contains("os error 24"),
        "{err}"
    );
    drop(flood);
    daemon.signal(libc::SIGTERM);
    let out = daemon.finish();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn the_dashboard_starts_beside_a_daemon_that_serves_the_api() {
    let sim = SimProcess::start();
    let port = free_port();
    let sb = daemon_sandbox(&sim, port);
    let mut daemon = sb.spawn(&["daemon"]);
    daemon.stderr_with("HTTP API listening on");

    let socket = format!("tokenwatch-flood-{}", std::process::id());
    let script = format!(
        "cd {root} && {bin}; echo EXITED:$?; sleep 30",
        root = sh_quote(&sb.root.to_string_lossy()),
        bin = sh_quote(bin()),
    );
    let tmux_env: Vec<(String, String)> = sb
        .env
        .iter()
        .filter(|(k, _)| k == "PATH" || k == "HOME")
        .cloned()
        .collect();
    let tmux = Tmux::start(socket, &tmux_env, &sb.env, (200, 50), &script);
    let screen = tmux.wait_until("the dashboard's note on the API", |s| {
        s.contains("HTTP API is not served") || s.contains("EXITED:")
    });
    assert!(
        !screen.contains("EXITED:"),
        "the dashboard ended:\n{screen}"
    );
    tmux.keys(&["d"]);
    let screen = tmux.wait_until("the details popup", |s| s.contains("Token details"));
    assert!(
        screen.contains("HTTP API") && screen.contains("not served by this dashboard"),
        "{screen}"
    );
    tmux.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!tmux.screen().contains("EXITED:"));
    // The daemon still serves the API.
    assert!(healthz(port) < Duration::from_secs(10));
    tmux.keys(&["q"]);
    tmux.wait_until("the dashboard's exit", |s| s.contains("EXITED:0"));
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.finish().code, Some(0));
}

#[test]
fn a_daemon_alone_still_fails_fast_on_a_port_in_use() {
    let sim = SimProcess::start();
    let port = free_port();
    let sb = daemon_sandbox(&sim, port);
    let _taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    let out = sb.run(&["daemon"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    out.assert_stderr(&format!("port {port} is in use"));
}

#[test]
fn server_listen_off_none_or_empty_means_no_api() {
    // The environment turns off a config file's address.
    for value in ["off", "none", "", "OFF", "  "] {
        let mut fx = ConfigEnv::new();
        fx.sb.write_yaml("server:\n  listen: \"127.0.0.1:8123\"\n");
        fx.set("TOKENWATCH__SERVER__LISTEN", value);
        let opts = tokenwatch::config::LoadOptions {
            cwd: fx.sb.root.clone(),
            ..Default::default()
        };
        let config = tokenwatch::config::load(&opts, &fx.env, None)
            .unwrap_or_else(|e| panic!("TOKENWATCH__SERVER__LISTEN={value:?}: {e}"));
        assert_eq!(config.server.listen, None, "{value:?}");
    }
    // In YAML, `off` (a string in YAML 1.2, false in YAML 1.1), `none`, `false`.
    for value in ["off", "Off", "none", "false", "\"\"", "null"] {
        let fx = ConfigEnv::new();
        fx.sb.write_yaml(&format!("server:\n  listen: {value}\n"));
        let opts = tokenwatch::config::LoadOptions {
            cwd: fx.sb.root.clone(),
            ..Default::default()
        };
        let config = tokenwatch::config::load(&opts, &fx.env, None)
            .unwrap_or_else(|e| panic!("listen: {value}: {e}"));
        assert_eq!(config.server.listen, None, "listen: {value}");
    }
    let fx = ConfigEnv::new();
    fx.sb.write_yaml("server:\n  listen: true\n");
    let opts = tokenwatch::config::LoadOptions {
        cwd: fx.sb.root.clone(),
        ..Default::default()
    };
    let e = tokenwatch::config::load(&opts, &fx.env, None)
        .expect_err("listen: true is refused")
        .to_string();
    assert!(e.contains("or off for no HTTP API"), "{e}");

    // The real daemon: no listener on the config file's port.
    let sim = SimProcess::start();
    let port = free_port();
    let mut sb = daemon_sandbox(&sim, port);
    sb.set_env("TOKENWATCH__SERVER__LISTEN", "");
    let mut daemon = sb.spawn(&["daemon"]);
    let err = daemon.stderr_with("Token valid, expires in");
    assert!(!err.contains("HTTP API"), "{err}");
    assert!(!common::listening(port), "something listens on {port}");
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.finish().code, Some(0));
}

/// The write end of a pipe whose read end is already closed: every write fails with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into the array; each is owned once below.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        drop(OwnedFd::from_raw_fd(fds[0]));
        Stdio::from(OwnedFd::from_raw_fd(fds[1]))
    }
}

#[test]
fn a_closed_stderr_never_stops_the_daemon() {
    let sim = SimProcess::start();
    let port = free_port();
    let sb = daemon_sandbox(&sim, port);
    // A renewal is due at start: the daemon logs, checks and renews with nobody reading.
    std::fs::write(sb.token_path(), FORGED).unwrap();
    let mut daemon = sb
        .cmd(&["daemon"])
        .stdout(Stdio::null())
        .stderr(closed_pipe())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            panic!("the daemon ended with its stderr closed: {status:?}");
        }
        if sb.stored().is_some_and(|t| t != FORGED) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no renewal with a closed stderr"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // It keeps serving and logging into the closed pipe.
    for _ in 0..3 {
        assert!(healthz(port) < Duration::from_secs(10));
    }
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon ended");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = daemon.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");

    // A one-shot printer into a closed pipe ends quietly (SIGPIPE), never with a panic.
    let out = sb
        .cmd(&["status"])
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {err}",
        out.status
    );
    assert!(err.is_empty(), "{err}");
}
