//! What must never happen, and the hostile edges of the token lifecycle, the login and the
//! HTTP API, against the real binary:
//!
//! - (a) every command at trace level against a `tokenwatch simulate` process — `status`
//!   (plain, `--json`, `--validate`), `token`, `refresh`, `login --no-browser`, `config check`,
//!   `daemon` with every HTTP route, and the dashboard in tmux — and everything they print,
//!   log, answer or show is scanned for tokens, their pieces and the client secret;
//! - (b) forged callbacks to the login's loopback listener (what tests/login.rs does not
//!   already cover: huge and odd queries, raw bytes, every other method, look-alike paths);
//! - (c) forged webhooks to the token-request notifier of a running `tokenwatch refresh`
//!   (tests/notifier.rs covers each refusal at the library level; here the binary must store
//!   nothing);
//! - (d) the renewal lock between `login` and `refresh` processes;
//! - (e) the modes of everything tokenwatch writes, under `umask 000`.
//!
//! Needs `curl` and `tmux` (CI's `.ci/run` installs both).

mod common;

use common::sandbox::{RUN_LIMIT, STEP};
use common::{
    Answer, Leaks, Out, Sandbox, SimHost, SimProcess, Tmux, bin, free_port, http_get, listening,
    mode, output_of, query_param, raw_http, request, sh_quote, split_url, stored_token, wait_until,
};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokenwatch::brokers::upstox::sim::{Endpoint, SimConfig};

/// The client id and secret of `tokenwatch simulate` (it prints them, by design).
const SIM_CLIENT_ID: &str = "615b1297-sim-client";
const SIM_SECRET: &str = "sim-secret";
/// The redirect URI `tokenwatch simulate` registers (it has no flag to change it).
const SIM_REDIRECT: &str = "http://localhost:5001/callback";
/// The client secret of the in-process simulators: distinctive, so a scan cannot miss it.
const LIB_SECRET: &str = "twSecurity-Qx7Lp2-client-secret";
/// `server.api_key` in test (a): it must never be shown either.
const API_KEY: &str = "twApiKey-Hv93Ks-never-shown";
/// The browser: fetch the login page and follow the simulator's 302 to the callback.
const CURL_BROWSER: [&str; 4] = ["curl", "-sL", "-o", "/dev/null"];
/// An extended token planted in the token file (the simulator never issues one).
const EXTENDED: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQjEyMzQiLCJleHRlbmRlZCI6dHJ1ZSwiaXNzIjoidHcifQ.RXh0ZW5kZWRTaWduYXR1cmVOb3RGb3JBbnlPdXRwdXQ";
/// A JWT-shaped token no simulator ever signed.
const FORGED: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQjEyMzQiLCJleHAiOjQxMDI0NDQ4MDB9.Rm9yZ2VkU2lnbmF0dXJlTm9ib2R5SXNzdWVkVGhpcw";

// ---------------------------------------------------------------------------------------
// The simulators
// ---------------------------------------------------------------------------------------

/// What the simulator's auto-approving dialog redirects the browser to.
fn approved_redirect(dialog: &str) -> String {
    let (port, target) = split_url(dialog);
    let a = http_get(port, &target);
    assert_eq!(a.status, 302, "the dialog did not redirect: {}", a.all());
    a.header("location").expect("a Location header")
}

/// The simulator in this process, on a runtime of its own, with its own callback port
/// registered as its redirect URI and [`LIB_SECRET`] as its client secret.
fn lib_sim(config: SimConfig) -> SimHost {
    let config = SimConfig {
        client_secret: LIB_SECRET.into(),
        ..config
    };
    SimHost::start_own_runtime(config, "localhost")
}

/// [`lib_sim`] approving at once, tokens living 20 hours.
fn auto_sim() -> SimHost {
    lib_sim(SimConfig {
        auto_approve: true,
        token_lifetime: Some(Duration::from_secs(20 * 3600)),
        ..SimConfig::default()
    })
}

/// A config for the binary against `sim`; `renew.command` logs each token it fetches to
/// `minted` (and each run to `minted.runs`).
fn lib_config(sim: &SimHost, minted: &Path) -> Value {
    let command = mint_command(&sim.base(), minted, "");
    sim.binary_config(
        json!({"strategy": "command", "not_before": "00:00", "command": command}),
        json!({"timeout": "60s", "browser_command": CURL_BROWSER}),
    )
}

/// `renew.command`: fetch a simulator token (after `before`, shell code), log it to `log`
/// before printing it, and count the runs in `<log>.runs`.
fn mint_command(base: &str, log: &Path, before: &str) -> Value {
    let log = log.display();
    json!([
        "sh",
        "-c",
        format!(
            "echo run >> '{log}.runs'; {before} t=$(curl -sf -X POST '{base}/sim/token') || exit 1; \
             printf '%s\\n' \"$t\" >> '{log}'; printf '%s\\n' \"$t\""
        )
    ])
}

/// The tokens `renew.command` fetched so far.
fn minted(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l.trim()).ok()?;
            Some(v["access_token"].as_str()?.to_owned())
        })
        .collect()
}

/// How often `renew.command` ran.
fn command_runs(log: &Path) -> usize {
    std::fs::read_to_string(format!("{}.runs", log.display()))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------

/// A sandbox (`tw-security-*`) with no config file yet.
fn sandbox() -> Sandbox {
    Sandbox::named("tw-security-")
}

/// The dashboard (`tokenwatch <args>`, after the shell code `before`) in the sandbox, in a
/// 200×50 tmux terminal with the sandbox's environment; killed on drop.
fn dashboard(name: &str, sb: &Sandbox, before: &str, args: &str) -> Tmux {
    let script = format!(
        "cd {} && {before}{} {args}; echo EXITED:$?; sleep 30",
        sh_quote(&sb.root.display().to_string()),
        sh_quote(bin())
    );
    Tmux::start(
        format!("tw-security-{}-{name}", std::process::id()),
        &sb.env,
        &sb.env,
        (200, 50),
        &script,
    )
    .capture_with(&["-J"])
}

// =======================================================================================
// (a) No secret anywhere
// =======================================================================================

/// Wait until 127.0.0.1:`port` can be bound (another test or program may hold it briefly).
fn wait_port_free(port: u16) {
    let deadline = Instant::now() + STEP;
    while std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "port {port} stays in use; this test needs it (tokenwatch simulate's redirect URI)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every command, at trace level, against a `tokenwatch simulate` process; the stdout and
/// stderr of each, the log file, every HTTP answer (head and body), the pages the callback
/// answered the browser with, and the dashboard's screens are scanned for every token seen
/// (whole, its JWT signature, every 20-character piece), a planted extended token, the
/// authorization code and the client secret. Only `token`'s stdout is exempt — it is the
/// token, by design, and the test checks that it is exactly that.
#[test]
fn no_token_or_secret_reaches_output_logs_http_answers_or_the_screen() {
    // Every run must find the token healthy (exit 0), so no renewal comes due on its own.
    common::time::clear_of_the_0330_expiry(Duration::from_secs(180));
    let sim = SimProcess::start_with(&["--auto-approve", "--token-lifetime", "20h"]);
    let mut sb = sandbox();
    sb.set_env("TOKENWATCH__LOG__LEVEL", "trace");
    let minted_log = sb.root.join("minted.log");
    let pages = sb.root.join("pages");
    std::fs::create_dir_all(&pages).unwrap();
    // The browser keeps what the callback answered (head and body) for the scan.
    let browser = json!([
        "sh",
        "-c",
        format!(
            "n=$(date +%s%N); curl -sL -D '{p}/'$n.head -o '{p}/'$n.body \"$0\"",
            p = pages.display()
        ),
        "{url}"
    ]);
    let api_port = free_port();
    let mut config = json!({
        "upstox": {
            "client_id": SIM_CLIENT_ID,
            "client_secret": SIM_SECRET,
            "redirect_uri": SIM_REDIRECT,
            "api_base": sim.base,
        },
        "token": {
            "path": "upstox_token.json",
            "backups": ["backup/upstox_token.json"],
            "env_file": "upstox.env",
        },
        // Small thresholds: a token issued now reads healthy at any time of day.
        "monitor": common::time::with_small_thresholds(
            json!({"backoff_initial": "50ms", "backoff_max": "200ms"})
        ),
        "renew": {"strategy": "command", "not_before": "00:00", "command": mint_command(&sim.base, &minted_log, "")},
        "login": {"timeout": "60s", "browser_command": browser},
        "server": {"listen": format!("127.0.0.1:{api_port}"), "api_key": API_KEY},
        "log": {"file": "logs/tokenwatch.log", "level": "trace"},
    });
    sb.write_config(&config);
    let mut leaks = Leaks::default();
    let mut seen_tokens: Vec<String> = Vec::new();
    let mut snapshot = |sb: &Sandbox| {
        if let Some(t) = sb.stored()
            && !seen_tokens.contains(&t)
        {
            seen_tokens.push(t);
        }
        seen_tokens.len()
    };

    // refresh: no token yet, renew.command fetches one.
    let out = sb.run(&["-vv", "refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    leaks.out("refresh", &out);
    assert_eq!(snapshot(&sb), 1);
    // Plant an extended token in the file (the simulator never issues one).
    let mut file: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.token_path()).unwrap()).unwrap();
    file["extended_token"] = json!(EXTENDED);
    std::fs::write(
        sb.token_path(),
        serde_json::to_string_pretty(&file).unwrap(),
    )
    .unwrap();

    for args in [
        &["-vv", "status"][..],
        &["-vv", "status", "--json"],
        &["-vv", "status", "--validate"],
        &["-vv", "status", "--validate", "--json"],
        &["-vv", "config", "check"],
    ] {
        let out = sb.run(args);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.all());
        if args.contains(&"--validate") {
            // -vv reaches the debug lines.
            assert!(
                out.stderr.contains("Checking the token with the API"),
                "{args:?} is not verbose: {}",
                out.all()
            );
        }
        leaks.out(&format!("{args:?}"), &out);
    }
    let check = sb.run(&["config", "check"]);
    check.assert_stdout("client_secret");
    let out = sb.run(&["-vv", "token"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(
        out.stdout,
        format!("{}\n", sb.stored().unwrap()),
        "token's stdout"
    );
    leaks.text("token: stderr", out.stderr.clone());

    // Token files that hold the token but cannot be used (or only just): what the commands
    // say about them must not quote it.
    let good = std::fs::read(sb.token_path()).unwrap();
    let t = sb.stored().unwrap();
    for (i, content) in [
        format!("{{\"access_token\": \"{t}\", \"expires_at\": \"not a date {t}\"}}"),
        format!("{{\"access_token\": \"{t}\", \"expires_at\": 1e400}}"),
        format!("{{\"access_token\": \"{t}\" \"user_id\": 1}}"),
        format!("{{\"access_token\": [\"{t}\"]}}"),
        format!("{{\"access_token\": \"{t}\", \"user_id\": {{\"x\": \"{t}\"}}}}"),
        format!("{{\"format\": 2, \"access_token\": \"{t}\"}}"),
        format!(
            "{{\"access_token\": \"{t}\", \"expires_at\": \"{}\"}}",
            &t[..30]
        ),
        format!("{t} trailing words"),
        format!("{{\"access_token\": \"{}", &t[..t.len() / 2]),
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(sb.token_path(), content).unwrap();
        for args in [
            &["-vv", "status"][..],
            &["-vv", "status", "--json"],
            &["-vv", "token"],
        ] {
            let out = sb.run(args);
            if args[1] == "token" && out.code == Some(0) {
                // Usable after all: the token is its output, by design.
                assert_eq!(out.stdout.trim(), t, "bad file {i}");
                leaks.text(format!("bad file {i}, token: stderr"), out.stderr.clone());
            } else {
                leaks.out(&format!("bad file {i}, {args:?}"), &out);
            }
        }
    }
    std::fs::write(sb.token_path(), &good).unwrap();

    // login --no-browser, completed by pasting the redirected address.
    wait_port_free(5001);
    let mut p = sb.spawn(&["-vv", "login", "--no-browser"]);
    let url = p
        .line_with("/v2/login/authorization/dialog?")
        .trim()
        .to_owned();
    let loc = approved_redirect(&url);
    leaks.secret("authorization code", &query_param(&loc, "code").unwrap());
    p.send(&loc);
    let out = p.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
    leaks.out("login --no-browser", &out);
    assert_eq!(snapshot(&sb), 2, "the login stored no new token");

    // refresh of a token Upstox rejects: renewed, the old one kept as .prev.
    assert_eq!(sim.revoke(&sb.stored().unwrap()), 200);
    let out = sb.run(&["-vv", "refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stderr("Token invalid");
    leaks.out("refresh of a revoked token", &out);
    assert_eq!(snapshot(&sb), 3);

    // daemon with the HTTP API: every route, both POSTs (a renewal and a login), then SIGTERM.
    let mut d = sb.spawn(&["-vv", "daemon"]);
    wait_until("the daemon's API", STEP, || {
        assert!(d.running(), "the daemon ended: {}", d.stderr());
        listening(api_port) && http_get(api_port, "/healthz").status == 200
    });
    let mut answers: Vec<(String, Answer)> = Vec::new();
    let mut hit = |label: &str, req: Vec<u8>, status: u16| -> Answer {
        let a = raw_http(api_port, &req);
        assert_eq!(a.status, status, "{label}: {}", a.all());
        answers.push((label.to_owned(), a.clone()));
        a
    };
    let get = |path: &str| request("GET", api_port, path, &[], b"");
    let key = format!("X-Tokenwatch-Key: {API_KEY}");
    let post = |path: &str, extra: &[&str]| {
        let mut headers = vec![key.as_str()];
        headers.extend_from_slice(extra);
        request("POST", api_port, path, &headers, b"")
    };
    let all_routes = |hit: &mut dyn FnMut(&str, Vec<u8>, u16) -> Answer, round: &str| {
        for (path, status) in [
            ("/api/token/status", 200),
            ("/api/token/status?account=default", 200),
            ("/api/token/status?account=nobody", 404),
            ("/api/tokens", 200),
            ("/metrics", 200),
            ("/healthz", 200),
            ("/no/such/route", 404),
            ("/api/token/force-refresh", 405),
        ] {
            hit(&format!("{round} GET {path}"), get(path), status);
        }
        hit(
            &format!("{round} POST from a web page"),
            post("/api/token/force-refresh", &["Origin: http://evil.example"]),
            403,
        );
        for (what, headers) in [
            ("without the key", &[][..]),
            (
                "with a wrong key",
                &["X-Tokenwatch-Key: twApiKey-Hv93Ks-never-showX"][..],
            ),
        ] {
            for path in ["/api/token/force-refresh", "/api/upstox/token/refresh"] {
                hit(
                    &format!("{round} POST {path} {what}"),
                    request("POST", api_port, path, headers, b""),
                    401,
                );
            }
        }
    };
    all_routes(&mut hit, "first");
    let status = hit("status", get("/api/token/status"), 200).json();
    assert_eq!(status["api_validated"], true, "{status}");
    let before = sb.stored().unwrap();
    assert_eq!(sim.revoke(&before), 200);
    hit(
        "POST force-refresh",
        post("/api/token/force-refresh", &[]),
        202,
    );
    wait_until("the daemon's renewal", STEP, || {
        sb.stored().as_ref() != Some(&before)
    });
    assert_eq!(snapshot(&sb), 4);
    let before = sb.stored().unwrap();
    wait_port_free(5001);
    let login = hit("POST login", post("/api/upstox/token/refresh", &[]), 202).json();
    assert!(
        login["auth_url"]
            .as_str()
            .unwrap()
            .contains("/v2/login/authorization/dialog"),
        "{login}"
    );
    // A login asked for over the API opens no browser on the daemon's machine: the caller
    // opens the address it got, here with the same recording browser (the simulator
    // approves at once).
    let argv: Vec<String> = browser
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .replace("{url}", login["auth_url"].as_str().unwrap())
        })
        .collect();
    let opened = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .unwrap();
    assert!(opened.success());
    wait_until("the daemon's login", STEP, || {
        sb.stored().as_ref() != Some(&before)
    });
    assert_eq!(snapshot(&sb), 5);
    wait_until("the daemon validated the login's token", STEP, || {
        let j: Value = http_get(api_port, "/api/token/status").json();
        j["api_validated"] == true
    });
    all_routes(&mut hit, "second");
    d.signal(libc::SIGTERM);
    let out = d.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stderr.contains("DEBUG"), "not verbose: {}", out.stderr);
    leaks.out("daemon", &out);
    for (label, a) in &answers {
        leaks.answer(label, a);
        assert!(!a.body.contains("access_token"), "{label}: {}", a.body);
    }

    // The dashboard: r, d, l, then q; every screen kept.
    config["server"] = json!({"listen": format!("127.0.0.1:{}", free_port())});
    sb.write_config(&config);
    wait_port_free(5001);
    let term = dashboard("dashboard", &sb, "", "-vv");
    let mut screens = vec![term.wait_until("the dashboard, validated", |s| {
        s.contains("HEALTHY") && s.contains("Token valid")
    })];
    term.keys(&["r"]);
    screens.push(term.wait_until("r", |s| s.contains("Refresh requested")));
    term.keys(&["d"]);
    screens.push(term.wait_until("d", |s| s.contains("Token details")));
    term.keys(&["Escape"]);
    let before = sb.stored().unwrap();
    term.keys(&["l"]);
    screens.push(term.wait_until("l", |s| s.contains("Logged in")));
    wait_until("the dashboard's login stored", STEP, || {
        sb.stored().as_ref() != Some(&before)
    });
    assert_eq!(snapshot(&sb), 6);
    term.keys(&["d"]);
    screens.push(term.wait_until("d after the login", |s| s.contains("Token details")));
    term.keys(&["Escape"]);
    term.keys(&["q"]);
    screens.push(term.wait_until("the exit", |s| s.contains("EXITED:")));
    assert!(
        screens.last().unwrap().contains("EXITED:0"),
        "{}",
        screens.last().unwrap()
    );
    for (i, s) in screens.iter().enumerate() {
        leaks.text(format!("screen {i}"), s.clone());
    }
    let log = std::fs::read_to_string(sb.root.join("config/logs/tokenwatch.log")).unwrap();
    assert!(
        log.contains("Token valid") && log.contains("Logged in"),
        "{log}"
    );
    leaks.text("log file", log);

    // What the callback answered the browser (the daemon's and the dashboard's logins).
    let mut page_count = 0;
    for e in std::fs::read_dir(&pages).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if text.contains("Logged in") {
            page_count += 1;
        }
        leaks.text(format!("browser {}", e.file_name().to_string_lossy()), text);
    }
    assert_eq!(page_count, 2, "the browser did not get both success pages");

    // Every token there was: stored, kept, backed up, written to the env file, minted.
    let mut tokens = seen_tokens.clone();
    tokens.extend(minted(&minted_log));
    for p in [
        sb.root.join("config/upstox_token.json.prev"),
        sb.root.join("config/backup/upstox_token.json"),
    ] {
        tokens.extend(stored_token(&p));
    }
    let env = std::fs::read_to_string(sb.root.join("config/upstox.env")).unwrap();
    tokens.push(
        env.trim()
            .trim_start_matches("UPSTOX_ACCESS_TOKEN=")
            .to_owned(),
    );
    tokens.sort();
    tokens.dedup();
    assert!(tokens.len() >= 6, "{} tokens", tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(t.split('.').count(), 3, "not a JWT: token {i}");
        leaks.token(&format!("token {i}"), t);
    }
    leaks.token("extended token", EXTENDED);
    leaks.secret("client secret", SIM_SECRET);
    leaks.secret("API key", API_KEY);
    leaks.assert_clean();
}

// =======================================================================================
// (b) Forged callbacks to the login's listener
// =======================================================================================

/// tests/login.rs (`forged_callbacks_are_refused_and_the_login_keeps_waiting`,
/// `binary_no_browser_login_accepts_only_the_right_pasted_address`) already sends a wrong
/// state, a missing state, no query, a denial with a wrong state, the right state without a
/// code, another path, a trailing slash and a POST. Here, against a waiting
/// `tokenwatch login --no-browser`, over raw sockets: 100 KB queries (wrong and right state),
/// duplicate parameters, CR/LF/NUL and non-UTF-8 escapes, markup (escaped and raw), every
/// other method carrying the genuine code and state, look-alike paths carrying them, and bytes
/// that are not HTTP. Each gets its status, none echoes its input (a marker in every request
/// never comes back, in the page or the headers, nor reaches the log), the login keeps
/// waiting with nothing exchanged, and then the genuine callback logs in.
#[test]
fn forged_callbacks_are_refused_without_echo_and_the_login_still_completes() {
    const MARK: &str = "zqFORGEDq7731";
    let sim = auto_sim();
    let sb = sandbox();
    sb.write_config(&lib_config(&sim, &sb.root.join("minted.log")));
    let mut p = sb.spawn(&["login", "--no-browser"]);
    let url = p
        .line_with("/v2/login/authorization/dialog?")
        .trim()
        .to_owned();
    let state = query_param(&url, "state").unwrap();
    let port = sim.callback_port;
    wait_until("the callback listener", STEP, || listening(port));
    let genuine = approved_redirect(&url);
    let (_, genuine_target) = split_url(&genuine);
    let genuine_query = genuine_target.split_once('?').unwrap().1.to_owned();
    assert_eq!(
        query_param(&genuine, "state").as_deref(),
        Some(state.as_str())
    );

    let huge = "A".repeat(100 * 1024);
    let get = |target: &str| request("GET", port, target, &[], b"");
    let mut cases: Vec<(String, Vec<u8>, Vec<u16>)> = vec![
        (
            "100 KB query, wrong state".into(),
            get(&format!("/callback?code={MARK}{huge}&state=wrong{MARK}")),
            vec![400, 414, 431],
        ),
        (
            "100 KB query, right state".into(),
            get(&format!("/callback?code={MARK}&state={state}&pad={huge}")),
            vec![400, 414, 431],
        ),
        (
            // Past tokenwatch's own 8 KB limit, short of the HTTP layer's: tokenwatch answers.
            "9 KB query, right state".into(),
            get(&format!(
                "/callback?code={MARK}&state={state}&pad={}",
                &huge[..9 * 1024]
            )),
            vec![400],
        ),
        (
            "duplicate code".into(),
            get(&format!("/callback?code={MARK}a&code={MARK}b&state=wrong")),
            vec![400],
        ),
        (
            "duplicate state".into(),
            get(&format!(
                "/callback?state=wrong{MARK}&state=other{MARK}&code=x"
            )),
            vec![400],
        ),
        (
            "CR, LF and NUL escapes".into(),
            get(&format!(
                "/callback?code={MARK}%0D%0AX-Injected:%20{MARK}%00&state=wrong%0D%0ASet-Cookie:%20s={MARK}%0A%0A%3C{MARK}%3E"
            )),
            vec![400],
        ),
        (
            "non-UTF-8 escapes".into(),
            get(&format!(
                "/callback?code=%FF%FE{MARK}%C0%AF&state=%C3%28{MARK}%ED%A0%80&error=%80{MARK}"
            )),
            vec![400],
        ),
        (
            "escaped markup".into(),
            get(&format!(
                "/callback?state=%3Cscript%3E{MARK}%3C%2Fscript%3E&code=%22%3E%3Cimg%20src%3Dx%20onerror%3D{MARK}%3E\
                 &error=%3Cb%3E{MARK}%3C%2Fb%3E&error_description=%3Ciframe%3E{MARK}"
            )),
            vec![400],
        ),
        (
            "raw markup".into(),
            get(&format!(
                "/callback?state=<script>{MARK}</script>&code=\"><img/{MARK}>"
            )),
            vec![400],
        ),
        (
            "markup in the path".into(),
            get(&format!("/callback%3Cscript%3E{MARK}?{genuine_query}")),
            vec![404],
        ),
        (
            "not HTTP".into(),
            format!("\x16\x03\x01\x00\x05{MARK}\r\n\r\n").into_bytes(),
            vec![400, 0],
        ),
        (
            "a header too large".into(),
            request(
                "GET",
                port,
                "/callback?state=wrong",
                &[&format!("X-Big: {MARK}{huge}")],
                b"",
            ),
            vec![400, 431],
        ),
    ];
    // The genuine code and state, with every other method: refused, and the code stays unused.
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD", "TRACE"] {
        cases.push((
            format!("{method} with the genuine query"),
            request(
                method,
                port,
                &genuine_target,
                &[&format!("X-Mark: {MARK}")],
                if method == "HEAD" || method == "TRACE" {
                    b""
                } else {
                    MARK.as_bytes()
                },
            ),
            vec![405],
        ));
    }
    // The genuine code and state, on paths that only look like the callback.
    for path in [
        "/callback/",
        "/Callback",
        "//callback",
        "/callback/../callback",
        "/%63allback",
        "/callback;x",
        "/callback.html",
        "/",
    ] {
        cases.push((
            format!("GET {path} with the genuine query"),
            get(&format!("{path}?{genuine_query}&m={MARK}")),
            vec![404],
        ));
    }

    for (what, req, statuses) in &cases {
        let a = raw_http(port, req);
        eprintln!("forged callback, {what}: {}", a.status);
        assert!(
            statuses.contains(&a.status),
            "{what}: status {} (expected one of {statuses:?}):\n{}",
            a.status,
            a.head
        );
        assert!(
            !a.all().contains(MARK),
            "{what}: the answer echoes the input:\n{}",
            a.all()
        );
        let head = a.head.to_ascii_lowercase();
        assert!(
            !head.contains("x-injected") && !head.contains("set-cookie"),
            "{what}: a header was injected:\n{}",
            a.head
        );
        for tag in ["<script", "<img", "<iframe"] {
            assert!(
                !a.body.contains(tag),
                "{what}: {tag} in the page:\n{}",
                a.body
            );
        }
        // tokenwatch's own page, not only a bare status from the HTTP layer — except where
        // the HTTP layer refuses first (a request line or header too long, not HTTP, raw
        // characters a URI may not hold) or HEAD, which has no body.
        let bare_ok = ["100 KB", "not HTTP", "a header", "raw markup", "HEAD"]
            .iter()
            .any(|w| what.contains(w));
        if !bare_ok {
            assert!(a.body.contains("Login failed"), "{what}: {}", a.all());
            assert_eq!(
                a.header("cache-control").as_deref(),
                Some("no-store"),
                "{what}"
            );
        }
        assert!(p.running(), "{what} ended the login: {}", p.stderr());
        assert!(listening(port), "{what}: the listener is gone");
        assert_eq!(
            sim.sim.calls(Endpoint::Token),
            0,
            "{what}: a code was exchanged"
        );
    }
    assert!(sb.stored().is_none(), "a forged callback stored something");

    // The genuine callback still logs in, with the code that was never used.
    let page = http_get(port, &genuine_target);
    assert_eq!(page.status, 200, "{}", page.all());
    assert!(page.body.contains("Logged in"), "{}", page.body);
    let out = p.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(sim.sim.calls(Endpoint::Token), 1);
    assert!(sb.stored().is_some());
    assert!(
        out.stderr.contains("Refused a login callback"),
        "the refusals were not logged: {}",
        out.all()
    );
    // Nothing the forger sent reached the log or the terminal (no log injection).
    assert!(
        !out.all().contains(MARK),
        "the input reached the output: {}",
        out.all()
    );
}

// =======================================================================================
// (c) Forged webhooks to the token-request notifier
// =======================================================================================

/// A webhook body as Upstox would send it.
fn delivery(token: &str, user: &str, client: &str, expires_ms: i64, message_type: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "client_id": client,
        "user_id": user,
        "access_token": token,
        "token_type": "Bearer",
        "expires_at": expires_ms.to_string(),
        "issued_at": chrono::Utc::now().timestamp_millis().to_string(),
        "message_type": message_type,
    }))
    .unwrap()
}

/// tests/notifier.rs checks every refusal of the receiver in the library, one at a time.
/// Here the real `tokenwatch refresh` (strategy token-request) waits for the approval, with a
/// stored token Upstox no longer accepts; forged deliveries — another path, other methods,
/// not JSON, a genuine token for another user, an expired one, one Upstox never issued,
/// another app, another message type — are each refused with their status while nothing is
/// stored (token file, `.prev`, backup all untouched) and the refresh keeps waiting; then the
/// genuine approval is stored. No answer and no output holds a delivered token.
#[test]
fn forged_webhooks_to_a_waiting_refresh_store_nothing() {
    let hook_port = free_port();
    let hook_path = "/upstox-hook-Zr81cQ";
    let hook = format!("http://127.0.0.1:{hook_port}{hook_path}");
    // The real 03:30 IST rule for expiries: the receiver refuses anything later.
    let sim = lib_sim(SimConfig {
        notifier_url: Some(url::Url::parse(&hook).unwrap()),
        ..SimConfig::default()
    });
    let sb = sandbox();
    let mut config = lib_config(&sim, &sb.root.join("minted.log"));
    config["renew"] = json!({
        "strategy": "token-request",
        "not_before": "00:00",
        "notifier_listen": format!("127.0.0.1:{hook_port}"),
        "notifier_path": hook_path,
    });
    sb.write_config(&config);
    // A token of AB1234 that the simulator never signed: invalid, so refresh renews.
    let now = chrono::Utc::now();
    let old = json!({
        "format": 1, "access_token": FORGED, "token_type": "Bearer", "extended_token": null,
        "user_id": "AB1234", "user_name": "Jane Doe", "email": null,
        "issued_at": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "expires_at": (now + chrono::Duration::hours(2)).to_rfc3339(),
        "created_at": now.timestamp() - 3600, "obtained_via": "oauth",
    });
    std::fs::write(sb.token_path(), serde_json::to_string_pretty(&old).unwrap()).unwrap();
    std::fs::set_permissions(sb.token_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = std::fs::read(sb.token_path()).unwrap();
    let prev = sb.root.join("config/upstox_token.json.prev");
    let backup = sb.root.join("config/backup/upstox_token.json");

    let mut r = sb.spawn(&["refresh"]);
    r.line_with("Approve the token request");
    wait_until("the notifier", STEP, || listening(hook_port));
    assert_eq!(sim.sim.calls(Endpoint::TokenRequest), 1);

    let valid_until = tokenwatch::token::expiry::upstox_expiry(now).timestamp_millis();
    let genuine_a = sim.sim.issue_token().access_token.expose().to_owned();
    let genuine_b = sim.sim.issue_token().access_token.expose().to_owned();
    let genuine_c = sim.sim.issue_token().access_token.expose().to_owned();
    let never_issued = FORGED.replace("Rm9yZ2Vk", "QW5vdGhl");
    let good = |t: &str| delivery(t, "AB1234", SIM_CLIENT_ID, valid_until, "access_token");
    let post = |path: &str, body: &[u8]| {
        request(
            "POST",
            hook_port,
            path,
            &["Content-Type: application/json"],
            body,
        )
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "another path",
            post("/upstox-hook-other", &good(&genuine_a)),
            404,
            "",
        ),
        (
            "the path with a slash",
            post(&format!("{hook_path}/"), &good(&genuine_a)),
            404,
            "",
        ),
        (
            "GET",
            request("GET", hook_port, hook_path, &[], b""),
            405,
            "",
        ),
        (
            "PUT",
            request("PUT", hook_port, hook_path, &[], &good(&genuine_a)),
            405,
            "",
        ),
        (
            "DELETE",
            request("DELETE", hook_port, hook_path, &[], b""),
            405,
            "",
        ),
        (
            "not JSON",
            post(hook_path, b"access_token=x&user_id=AB1234"),
            400,
            "not a JSON object",
        ),
        (
            "a JSON array",
            post(hook_path, b"[1,2]"),
            400,
            "not a JSON object",
        ),
        (
            "another user",
            post(
                hook_path,
                &delivery(
                    &genuine_a,
                    "ZZ9999",
                    SIM_CLIENT_ID,
                    valid_until,
                    "access_token",
                ),
            ),
            400,
            "not for the expected Upstox user",
        ),
        (
            "an expired token",
            post(
                hook_path,
                &delivery(
                    &genuine_b,
                    "AB1234",
                    SIM_CLIENT_ID,
                    (now - chrono::Duration::hours(1)).timestamp_millis(),
                    "access_token",
                ),
            ),
            400,
            "unacceptable expires_at",
        ),
        (
            "a token Upstox never issued",
            post(hook_path, &good(&never_issued)),
            400,
            "does not accept the token",
        ),
        (
            "another app",
            post(
                hook_path,
                &delivery(
                    &genuine_c,
                    "AB1234",
                    "someone-elses-app",
                    valid_until,
                    "access_token",
                ),
            ),
            400,
            "client_id",
        ),
        (
            "another message type",
            post(
                hook_path,
                &delivery(
                    &genuine_c,
                    "AB1234",
                    SIM_CLIENT_ID,
                    valid_until,
                    "order_update",
                ),
            ),
            400,
            "message_type",
        ),
    ];
    let mut leaks = Leaks::default();
    for (what, req, status, reason) in &cases {
        let a = raw_http(hook_port, req);
        assert_eq!(a.status, *status, "{what}: {}", a.all());
        if !reason.is_empty() {
            let j = a.json();
            assert_eq!(j["status"], "error", "{what}: {j}");
            assert!(
                j["message"].as_str().unwrap().contains(reason),
                "{what}: {j}"
            );
        }
        leaks.answer(what, &a);
        assert!(r.running(), "{what} ended the refresh: {}", r.stderr());
        assert_eq!(
            std::fs::read(sb.token_path()).unwrap(),
            before,
            "{what} changed the token file"
        );
        assert!(!prev.exists(), "{what} wrote .prev");
        assert!(!backup.exists(), "{what} wrote a backup");
    }

    // The genuine approval is stored.
    let started = sim.block_on(async { sim.sim.approve_pending() });
    assert_eq!(started, 1, "no pending request to approve");
    let out = r.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
    let stored = stored_file(&sb);
    assert_eq!(stored.obtained_via.as_deref(), Some("token-request"));
    let token = stored.access_token.expose().to_owned();
    for forged in [FORGED, &genuine_a, &genuine_b, &genuine_c, &never_issued] {
        assert_ne!(token, forged, "a forged delivery was stored");
    }
    assert_eq!(
        stored_token(&prev).as_deref(),
        Some(FORGED),
        ".prev is not the replaced token"
    );
    assert_eq!(stored_token(&backup).as_deref(), Some(token.as_str()));
    assert!(
        out.stderr.contains("delivery refused"),
        "refusals not logged: {}",
        out.all()
    );

    leaks.out("refresh", &out);
    for (label, t) in [
        ("stored token", token.as_str()),
        ("genuine token for another user", &genuine_a),
        ("expired genuine token", &genuine_b),
        ("genuine token, wrong app", &genuine_c),
        ("never issued", &never_issued),
    ] {
        leaks.token(label, t);
    }
    leaks.secret("client secret", LIB_SECRET);
    leaks.assert_clean();
}

// =======================================================================================
// (d) The renewal lock between processes
// =======================================================================================

/// The stored token file, which must read as a token.
fn stored_file(sb: &Sandbox) -> tokenwatch::token::Token {
    tokenwatch::token::read_token_file(&sb.token_path())
        .expect("the token file reads")
        .expect("a token file")
}

/// Refused at once (exit 1) naming `holder` (`process <pid>`), with no login started.
fn assert_refused_by(out: &Out, holder: &str) {
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(
        out.all().contains(holder),
        "the holder ({holder}) is not named: {}",
        out.all()
    );
    out.assert_not_on_stdout("/v2/login/authorization/dialog");
}

/// tests/login.rs (`binary_second_login_process_is_refused_at_once`) covers two `login`
/// processes. Here: while `login` waits for the browser, `refresh` (strategy command, and
/// strategy browser) waits for it naming the login's process, runs no command and writes
/// nothing; the login then stores its one token, which the refreshes use. While a `refresh`
/// renews (a slow `renew.command`), a `login` is refused at once and a second `refresh`
/// waits; the first refresh stores the only new token.
#[test]
fn a_login_and_a_refresh_never_both_store_a_token() {
    let sim = auto_sim();
    let sb = sandbox();
    let minted_log = sb.root.join("minted.log");
    let config = lib_config(&sim, &minted_log);
    sb.write_config(&config);
    let prev = sb.root.join("config/upstox_token.json.prev");

    // 1. A login waits; refreshes wait for it (whatever their strategy) and then use its
    //    token: no command runs, no second login starts, nothing else is stored.
    let mut login = sb.spawn(&["login", "--no-browser"]);
    let url = login
        .line_with("/v2/login/authorization/dialog?")
        .trim()
        .to_owned();
    wait_until("the callback listener", STEP, || {
        listening(sim.callback_port)
    });
    let holder = format!("process {}", login.pid());
    let mut waiting = Vec::new();
    for strategy in ["command", "browser"] {
        let mut c = config.clone();
        c["renew"]["strategy"] = json!(strategy);
        sb.write_config(&c);
        let mut refresh = sb.spawn(&["refresh"]);
        let line = refresh.line_with("Another tokenwatch is renewing");
        assert!(
            line.contains(&holder),
            "strategy {strategy}: the holder ({holder}) is not named: {line}"
        );
        waiting.push((strategy, refresh));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(command_runs(&minted_log), 0, "renew.command ran");
    assert!(!sb.token_path().exists(), "a token was stored");
    assert!(login.running() && listening(sim.callback_port));
    sb.write_config(&config);
    let loc = approved_redirect(&url);
    login.send(&loc);
    let out = login.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
    let oauth = stored_file(&sb);
    assert_eq!(oauth.obtained_via.as_deref(), Some("oauth"));
    for (strategy, refresh) in waiting {
        let out = refresh.finish();
        assert_eq!(out.code, Some(0), "strategy {strategy}: {}", out.all());
        out.assert_not_on_stdout("/v2/login/authorization/dialog");
    }
    assert_eq!(command_runs(&minted_log), 0, "renew.command ran");
    assert!(
        !prev.exists(),
        "a second token was stored after the login's"
    );
    assert_eq!(
        stored_token(&sb.token_path()).as_deref(),
        Some(oauth.access_token.expose())
    );
    assert_eq!(sim.sim.calls(Endpoint::Token), 1);

    // 2. A refresh renews slowly; a login is refused, and another refresh waits for it and
    //    uses its token.
    let mut slow = config.clone();
    slow["renew"]["command"] = mint_command(&sim.base(), &minted_log, "sleep 3;");
    sb.write_config(&slow);
    sim.sim.revoke_all();
    let mut first = sb.spawn(&["refresh"]);
    wait_until("the first refresh's command", STEP, || {
        command_runs(&minted_log) == 1
    });
    let holder = format!("process {}", first.pid());
    let t0 = Instant::now();
    let out = sb.run(&["login", "--no-browser"]);
    assert!(t0.elapsed() < Duration::from_secs(5), "the login waited");
    assert_refused_by(&out, &holder);
    let mut second = sb.spawn(&["refresh"]);
    let line = second.line_with("Another tokenwatch is renewing");
    assert!(line.contains(&holder), "{holder} not named: {line}");
    assert_eq!(
        stored_token(&sb.token_path()).as_deref(),
        Some(oauth.access_token.expose()),
        "the token changed while the first refresh was still fetching"
    );
    assert!(
        first.running(),
        "the first refresh did not wait for its command"
    );
    let out = first.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
    let out = second.finish();
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_not_on_stdout("/v2/login/authorization/dialog");
    assert_eq!(
        command_runs(&minted_log),
        1,
        "the second refresh ran the command"
    );
    let minted = minted(&minted_log);
    assert_eq!(minted.len(), 1);
    assert_eq!(sb.stored().as_deref(), Some(minted[0].as_str()));
    assert_eq!(
        stored_token(&prev).as_deref(),
        Some(oauth.access_token.expose())
    );
    assert_eq!(
        sim.sim.calls(Endpoint::Token),
        1,
        "another code was exchanged"
    );
}

// =======================================================================================
// (e) File modes under a permissive umask
// =======================================================================================

/// Every file and folder under `dir`, with its mode.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool, u32)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let is_dir = e.file_type().unwrap().is_dir();
        out.push((p.clone(), is_dir, mode(&p)));
        if is_dir {
            walk(&p, out);
        }
    }
}

/// With `umask 000` and no config file (defaults and the environment, so the state folder
/// `$XDG_STATE_HOME/tokenwatch` does not exist yet): renewals (a first token, a second with
/// `.prev`), an unreadable token file set aside, and the dashboard writing its log file in a
/// folder of its own. Every file tokenwatch made is 0600 and every folder 0700: the token
/// file, `.prev`, both default backups, the env file, the lock files, the `.unreadable` copy,
/// the log file, and the folders of all of them.
#[test]
fn everything_written_is_private_even_under_umask_000() {
    let sim = auto_sim();
    let mut sb = sandbox();
    let minted_log = sb.root.join("minted.log");
    let probe = sb.root.join("umask-probe");
    // The command also leaves a file of its own, to show that the umask really is 000.
    let command = mint_command(
        &sim.base(),
        &minted_log,
        &format!(": > '{}';", probe.display()),
    );
    for (k, v) in [
        ("TOKENWATCH__UPSTOX__API_BASE", sim.base()),
        ("TOKENWATCH__RENEW__STRATEGY", "command".into()),
        ("TOKENWATCH__RENEW__NOT_BEFORE", "00:00".into()),
        ("TOKENWATCH__RENEW__COMMAND", command.to_string()),
        ("TOKENWATCH__TOKEN__ENV_FILE", "env/upstox.env".into()),
        ("TOKENWATCH__LOG__FILE", "logs/tokenwatch.log".into()),
    ] {
        sb.set_env(k, v);
    }
    let state = sb.root.join("xdg-state");
    let home_state = sb.root.join("home/.local");
    assert!(!state.exists());
    let umask_run = |args: &[&str]| {
        let mut c = Command::new("sh");
        c.args(["-c", "umask 000; exec \"$0\" \"$@\"", bin()])
            .args(args)
            .env_clear()
            .envs(sb.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&sb.root)
            .stdin(Stdio::null());
        output_of(c, RUN_LIMIT, false)
    };
    let token = state.join("tokenwatch/upstox_token.json");

    let out = umask_run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(mode(&probe), 0o666, "the umask was not 000");
    sim.sim.revoke_all();
    let out = umask_run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    // An unreadable token file (made readable by all, as a user's editor might leave it).
    std::fs::write(&token, "{\"access_token\": ").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = umask_run(&["refresh"]);
    assert_eq!(out.code, Some(0), "{}", out.all());

    // The dashboard writes the log file.
    let log = state.join("tokenwatch/logs/tokenwatch.log");
    let term = dashboard("umask", &sb, "umask 000 && ", "");
    wait_until("the dashboard's log file", STEP, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Token valid"))
    });
    term.keys(&["q"]);
    term.wait_until("the exit", |s| s.contains("EXITED:"));

    let t = |p: &str| state.join("tokenwatch").join(p);
    let expected_files = [
        t("upstox_token.json"),
        t("upstox_token.json.prev"),
        t("upstox_token.json.unreadable"),
        t("upstox_token.json.state"),
        t("backup/upstox_token.json"),
        t("env/upstox.env"),
        t("logs/tokenwatch.log"),
        sb.root
            .join("home/.local/state/tokenwatch/upstox_token.json"),
    ];
    for f in &expected_files {
        assert!(f.is_file(), "{} was not written", f.display());
    }
    let mut all = vec![(state.clone(), true, mode(&state))];
    walk(&state, &mut all);
    all.push((home_state.clone(), true, mode(&home_state)));
    walk(&home_state, &mut all);
    let wrong: Vec<String> = all
        .iter()
        .filter(|(_, is_dir, m)| *m != if *is_dir { 0o700 } else { 0o600 })
        .map(|(p, is_dir, m)| {
            format!(
                "{} {} is {m:o}",
                if *is_dir { "folder" } else { "file" },
                p.display()
            )
        })
        .collect();
    assert!(wrong.is_empty(), "not private under umask 000: {wrong:#?}");
    assert!(all.len() >= expected_files.len() + 6, "{all:#?}");
}

/// `renew.command` (like `token.on_change`, the alert command and the browser) runs without
/// the client secret and the API key in its environment, however they were given.
#[test]
fn renew_command_does_not_inherit_the_client_secret_or_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env.txt");
    let config = dir.path().join("tokenwatch.yaml");
    let yaml = json!({
        "upstox": {"client_id": "sec-test-client", "api_base": "http://127.0.0.1:9"},
        "token": {"path": dir.path().join("upstox_token.json"), "backups": []},
        "renew": {
            "strategy": "command",
            "command": ["sh", "-c", format!("env > {}; exit 1", sh_quote(&dump.to_string_lossy()))],
        },
        "monitor": {"max_retries": 1},
    });
    std::fs::write(&config, serde_json::to_string(&yaml).unwrap()).unwrap();
    let out = Command::new(bin())
        .args(["-c", &config.to_string_lossy(), "refresh"])
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("UPSTOX_CLIENT_SECRET", LIB_SECRET)
        .env("TOKENWATCH__SERVER__API_KEY", API_KEY)
        .env("TOKENWATCH_SECURITY_PROBE", "visible")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let env = std::fs::read_to_string(&dump).expect("renew.command ran and dumped its environment");
    assert!(
        env.contains("TOKENWATCH_SECURITY_PROBE=visible"),
        "the command got tokenwatch's environment: {env}"
    );
    for hidden in [
        "UPSTOX_CLIENT_SECRET",
        "TOKENWATCH__SERVER__API_KEY",
        LIB_SECRET,
        API_KEY,
    ] {
        assert!(!env.contains(hidden), "renew.command saw {hidden}");
    }
}
