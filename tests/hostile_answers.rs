//! Answers that are too big, never end, or are not Upstox's, and text from outside that
//! carries escape sequences: each case once broke tokenwatch, and each test holds the bound
//! the `hostile-answers` block of `docs/reliability.md` shows
//! (`UPDATE_RELIABILITY=1 cargo test --test hostile_answers` rewrites it).

mod common;

use common::doc::{code, hardening_table, sync_doc_block};
use common::rss::run_measured;
use common::*;
use std::time::{Duration, Instant};
use tokenwatch::brokers::upstox::client::{
    ApiError, MAX_BODY, REQUEST_TIMEOUT, UpstoxClient, classify,
};
use tokenwatch::brokers::upstox::sim::{Endpoint, Fault, HUGE_BODY_BYTES, SimConfig};
use tokenwatch::http::{BodyError, read_limited};
use tokenwatch::token::TokenState;
use tokenwatch::token::store::{StoreError, TokenStore};
use tokenwatch::worker::CheckOutcome;

/// The most of an endless answer read before giving up: the limit and the one chunk (16 KiB
/// from the simulator) that passes it.
const READ_BOUND: usize = 80 * 1024;
/// How long giving up on an endless or huge answer may take (it takes milliseconds).
const GIVE_UP_BOUND: Duration = Duration::from_secs(5);
/// The peak resident set `tokenwatch status --validate` may reach against an endless answer
/// (a normal check of the debug build peaks near 22 MiB)...
const RSS_BOUND_KIB: u64 = 32 * 1024;
/// ... and how far above a normal check's peak it may go.
const RSS_OVER_NORMAL_KIB: u64 = 4 * 1024;
/// A run past this is killed on the spot: the fault once drove it to 12.9 GiB.
const RSS_KILL_KIB: u64 = 512 * 1024;
/// Past the request timeout, what a loaded machine may add before the error is seen.
const TIMEOUT_SLACK: Duration = Duration::from_secs(10);
/// What a user's name holds in the escape-sequence cases: retitle the terminal, clear it.
const HOSTILE_NAME: &str = "\x1b]0;pwned\x07\x1b[2J";

/// One row of the block.
struct Row {
    case: &'static str,
    before: &'static str,
    now: String,
    figure: String,
    test: &'static str,
}

fn rows() -> Vec<Row> {
    let kib = |n: usize| format!("{} KiB", n / 1024);
    let mib = |kib: u64| format!("{} MiB", kib / 1024);
    vec![
        Row {
            case: "Profile answer: HTTP 200, chunked, never ends",
            before: "`status --validate` grew to 12.9 GiB RSS",
            now: format!(
                "reading stops at {}; transient: {}",
                kib(MAX_BODY),
                code("profile: HTTP 200 with an answer larger than 64 KiB (not Upstox's API: …)")
            ),
            figure: format!(
                "≤ {} read, given up in < {} s; `status --validate` peak RSS < {}, \
                 within {} of a normal check",
                kib(READ_BOUND),
                GIVE_UP_BOUND.as_secs(),
                mib(RSS_BOUND_KIB),
                mib(RSS_OVER_NORMAL_KIB)
            ),
            test: "tests/hostile_answers.rs::an_endless_answer_is_cut_at_the_limit, \
                   tests/hostile_answers.rs::status_validate_stays_small_against_endless_and_huge_answers",
        },
        Row {
            case: "Profile answer: HTTP 200, `Content-Length: 500000000`, streamed",
            before: "read whole: 1.03 GB RSS",
            now: "refused on its `Content-Length`, before a byte of the body is read; transient"
                .into(),
            figure: format!(
                "0 bytes read of {HUGE_BODY_BYTES}, given up in < {} s; `status --validate` \
                 peak RSS < {}, within {} of a normal check",
                GIVE_UP_BOUND.as_secs(),
                mib(RSS_BOUND_KIB),
                mib(RSS_OVER_NORMAL_KIB)
            ),
            test: "tests/hostile_answers.rs::a_huge_declared_answer_is_refused_unread, \
                   tests/hostile_answers.rs::status_validate_stays_small_against_endless_and_huge_answers",
        },
        Row {
            case: "Profile answer: HTTP 200, chunked, 1 byte a second, never ends",
            before: "bounded by the request timeout",
            now: "still bounded by the 15 s request timeout while the body is read; transient \
                  `timed out`"
                .into(),
            figure: format!(
                "ends after 15–{} s",
                (REQUEST_TIMEOUT + TIMEOUT_SLACK).as_secs()
            ),
            test: "tests/hostile_answers.rs::a_trickling_answer_ends_at_the_request_timeout",
        },
        Row {
            case: "Profile answer: HTTP 401 `text/html` (a proxy's sign-in page)",
            before: "token marked `invalid`: \"log in again\" for a healthy token",
            now: "transient (`HTTP 401 with an HTML page`), retried; the token stays healthy"
                .into(),
            figure: "3 attempts, 0 invalid verdicts".into(),
            test: "tests/hostile_answers.rs::an_html_401_is_not_upstox_rejecting_the_token",
        },
        Row {
            case: "HTTP 401 JSON with another Upstox code (`UDAPI100067`) or none",
            before: "token marked `invalid`",
            now: "a refusal shown with Upstox's code and message, not retried; only \
                  `UDAPI100050` makes a token invalid"
                .into(),
            figure: "0 of 3 shapes invalid".into(),
            test: "tests/hostile_answers.rs::only_udapi100050_makes_a_token_invalid",
        },
        Row {
            case: "Token file `user_name` holding `ESC]0;pwned BEL ESC[2J`",
            before: "`status` printed it raw: the terminal was retitled and cleared",
            now: "control characters dropped where the file is read; `status` shows \
                  `]0;pwned[2J`"
                .into(),
            figure: "0 ESC/BEL bytes in either output".into(),
            test: "tests/hostile_answers.rs::escape_codes_in_the_token_file_never_reach_the_terminal",
        },
        Row {
            case: "Profile `user_name` and an error message holding escape codes",
            before: "passed raw to the snapshot (dashboard, API) and the log",
            now: "control characters dropped where the answer is read".into(),
            figure: "0 control characters in the snapshot, the error and the log".into(),
            test: "tests/hostile_answers.rs::escape_codes_in_api_answers_never_reach_a_screen_or_log",
        },
        Row {
            case: "Lock file naming its holder with escape codes",
            before: "the holder text went raw into the \"another tokenwatch is writing\" error",
            now: "control characters dropped where the lock file is read".into(),
            figure: "0 control characters in the error".into(),
            test: "tests/hostile_answers.rs::a_lock_holder_with_escape_codes_is_shown_clean",
        },
    ]
}

#[test]
fn the_reliability_doc_shows_these_cases() {
    let md = hardening_table(rows().into_iter().map(|r| {
        [
            r.case.into(),
            r.before.into(),
            r.now,
            r.figure,
            r.test.into(),
        ]
    }));
    if let Err(e) = sync_doc_block("hostile-answers", &md, &[]) {
        panic!(
            "{}",
            e.replace("--test fault_suite", "--test hostile_answers")
        );
    }
}

/// A simulator on this test's runtime whose tokens live 20 hours (no time-of-day edge).
async fn simulator() -> SimHost {
    SimHost::start(
        SimConfig {
            token_lifetime: Some(Duration::from_secs(20 * 3600)),
            ..SimConfig::default()
        },
        "127.0.0.1",
    )
    .await
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

async fn raw_profile(host: &SimHost) -> reqwest::Response {
    client(Some(Duration::from_secs(60)))
        .get(format!("{}/v2/user/profile", host.base()))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_is_cut_at_the_limit() {
    let host = simulator().await;
    host.sim.inject(Endpoint::Profile, Fault::EndlessBody, 2);

    // The one reader: stops once the body passes the limit.
    let t0 = Instant::now();
    let err = read_limited(raw_profile(&host).await, MAX_BODY)
        .await
        .unwrap_err();
    let took = t0.elapsed();
    match err {
        BodyError::TooLarge {
            limit,
            read,
            declared,
        } => {
            assert_eq!((limit, declared), (MAX_BODY, None));
            eprintln!("read {read} bytes of an endless answer in {took:?}");
            assert!(
                read > MAX_BODY && read <= READ_BOUND,
                "read {read} bytes of an endless answer"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(took < GIVE_UP_BOUND, "gave up after {took:?}");

    // The client: a transient error that says what came back.
    let client = UpstoxClient::new(&host.server.base_url).unwrap();
    let token = host.sim.issue_token().access_token;
    let t0 = Instant::now();
    let err = client.profile(&token).await.unwrap_err();
    assert!(
        t0.elapsed() < GIVE_UP_BOUND,
        "gave up after {:?}",
        t0.elapsed()
    );
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "profile: HTTP 200 with an answer larger than 64 KiB (not Upstox's API: a proxy, \
         firewall or outage page)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_declared_answer_is_refused_unread() {
    let host = simulator().await;
    host.sim.inject(Endpoint::Profile, Fault::HugeBody, 2);

    let t0 = Instant::now();
    let resp = raw_profile(&host).await;
    assert_eq!(resp.content_length(), Some(HUGE_BODY_BYTES));
    match read_limited(resp, MAX_BODY).await.unwrap_err() {
        BodyError::TooLarge { read, declared, .. } => {
            assert_eq!((read, declared), (0, Some(HUGE_BODY_BYTES)));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(
        t0.elapsed() < GIVE_UP_BOUND,
        "gave up after {:?}",
        t0.elapsed()
    );

    let client = UpstoxClient::new(&host.server.base_url).unwrap();
    let token = host.sim.issue_token().access_token;
    let t0 = Instant::now();
    let err = client.profile(&token).await.unwrap_err();
    assert!(
        t0.elapsed() < GIVE_UP_BOUND,
        "gave up after {:?}",
        t0.elapsed()
    );
    assert!(err.is_transient(), "{err:?}");
    assert!(
        err.to_string()
            .contains("HTTP 200 with an answer larger than 64 KiB"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_answer_ends_at_the_request_timeout() {
    let host = simulator().await;
    host.sim.inject(Endpoint::Profile, Fault::TrickleBody, 1);
    let client = UpstoxClient::new(&host.server.base_url).unwrap();
    let token = host.sim.issue_token().access_token;
    let t0 = Instant::now();
    let err = client.profile(&token).await.unwrap_err();
    let took = t0.elapsed();
    assert!(
        took >= REQUEST_TIMEOUT - Duration::from_millis(100)
            && took <= REQUEST_TIMEOUT + TIMEOUT_SLACK,
        "the trickling answer ended after {took:?}"
    );
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[test]
fn status_validate_stays_small_against_endless_and_huge_answers() {
    let host = SimHost::start_own_runtime(
        SimConfig {
            token_lifetime: Some(Duration::from_secs(20 * 3600)),
            ..SimConfig::default()
        },
        "127.0.0.1",
    );
    let sb = Sandbox::new();
    sb.write_yaml(&format!(
        "upstox:\n  api_base: \"{}\"\n\
         token:\n  path: upstox_token.json\n\
         monitor:\n  backoff_initial: 50ms\n  backoff_max: 200ms\n",
        host.base()
    ));
    TokenStore::new(sb.token_path(), vec![])
        .write(&tokens::issued(host.sim.issue_token()))
        .unwrap();
    let normal = run_measured(
        sb.cmd(&["status", "--validate"]),
        Duration::from_secs(120),
        RSS_KILL_KIB,
    );
    assert!(
        normal.out.all().contains("API: ✓ valid"),
        "{}",
        normal.out.all()
    );
    for (fault, name) in [
        (Fault::EndlessBody, "an endless answer"),
        (Fault::HugeBody, "a 500 MB answer"),
    ] {
        let calls = host.sim.calls(Endpoint::Profile);
        host.sim.inject(Endpoint::Profile, fault, 3);
        let run = run_measured(
            sb.cmd(&["status", "--validate"]),
            Duration::from_secs(120),
            RSS_KILL_KIB,
        );
        let all = run.out.all();
        assert!(
            !run.killed_for_memory,
            "{name}: killed past {RSS_KILL_KIB} KiB of memory: {all}"
        );
        eprintln!(
            "peak RSS: {} KiB against {name}, {} KiB for a normal check",
            run.peak_rss_kib, normal.peak_rss_kib
        );
        assert!(
            run.peak_rss_kib < RSS_BOUND_KIB
                && run.peak_rss_kib <= normal.peak_rss_kib + RSS_OVER_NORMAL_KIB,
            "{name}: peak RSS {} KiB (bound {RSS_BOUND_KIB} KiB, a normal check {} KiB): {all}",
            run.peak_rss_kib,
            normal.peak_rss_kib
        );
        assert!(
            all.contains("HTTP 200 with an answer larger than 64 KiB"),
            "{name}: status does not say what came back: {all}"
        );
        // Every attempt met the answer, and gave up on it at once.
        assert_eq!(host.sim.calls(Endpoint::Profile), calls + 3, "{name}");
        assert!(
            run.elapsed < GIVE_UP_BOUND * 3,
            "{name}: status took {:?}: {all}",
            run.elapsed
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_html_401_is_not_upstox_rejecting_the_token() {
    let h = Harness::new(ist_at(26, 10, 0)).await;
    h.store_fresh_token();
    let mut core = h.core();
    h.sim.inject(Endpoint::Profile, Fault::HtmlUnauthorized, 5);
    let outcome = core.check().await;
    let CheckOutcome::Unreachable(e) = outcome else {
        panic!("an HTML 401 was taken as an answer about the token: {outcome:?}");
    };
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("HTTP 401 with an HTML page"), "{e}");
    assert_eq!(h.sim.calls(Endpoint::Profile), 3, "retried like any outage");
    assert_eq!(core.state(h.now()), TokenState::Healthy);
}

#[test]
fn only_udapi100050_makes_a_token_invalid() {
    let json = "application/json";
    let other_code = r#"{"status":"error","errors":[{"error_code":"UDAPI100067","message":"Extended token not allowed for this API"}]}"#;
    let no_code = r#"{"message":"Unauthorized"}"#;
    let shapes: [(&str, &str); 3] = [
        (json, other_code),
        (json, no_code),
        (
            "text/html",
            "<html><h1>401 Authorization Required</h1></html>",
        ),
    ];
    for (content_type, body) in shapes {
        let e = classify("profile", 401, None, content_type, body.as_bytes()).unwrap_err();
        assert!(
            !matches!(e, ApiError::Invalid { .. }),
            "{body}: taken as a dead token: {e}"
        );
    }
    let e = classify("profile", 401, None, json, other_code.as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Upstox refused the request (HTTP 401, UDAPI100067): Extended token not allowed for this API"
    );
    let invalid = r#"{"status":"error","errors":[{"error_code":"UDAPI100050","message":"Invalid token used to access API"}]}"#;
    assert!(matches!(
        classify("profile", 401, None, json, invalid.as_bytes()),
        Err(ApiError::Invalid { .. })
    ));
}

#[test]
fn escape_codes_in_the_token_file_never_reach_the_terminal() {
    let sb = Sandbox::new();
    sb.write_yaml("token:\n  path: upstox_token.json\n");
    let file = serde_json::json!({
        "format": 1,
        "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.e30.c2ln",
        "token_type": "Bearer",
        "user_id": "AB\u{1b}[31m1234",
        "user_name": HOSTILE_NAME,
        "email": "\u{9b}2Jj@example.com",
        "issued_at": "2026-03-05T09:00:00+05:30",
        "expires_at": "2026-03-06T03:30:00+05:30",
        "obtained_via": "oauth\u{7}",
    });
    sb.write_token(serde_json::to_vec(&file).unwrap());
    for args in [&["status"][..], &["status", "--json"]] {
        let out = sb.run(args);
        let all = out.all();
        assert!(
            !all.contains('\u{1b}') && !all.contains('\u{7}') && !all.contains('\u{9b}'),
            "{args:?} wrote control characters: {all:?}"
        );
        assert!(all.contains("AB[31m1234"), "{args:?}: no user id: {all}");
        if args == ["status"] {
            assert!(all.contains("]0;pwned[2J"), "no user name: {all}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn escape_codes_in_api_answers_never_reach_a_screen_or_log() {
    let logs = capture_logs();
    let mut h = Harness::new(ist_at(26, 10, 0)).await;
    h.sim.set_config(|c| {
        c.user_name = HOSTILE_NAME.into();
        c.email = "\u{1b}[2Jjane@example.com".into();
    });
    let token = tokenwatch::token::Token {
        user_id: None,
        user_name: None,
        ..tokens::issued(h.sim.issue_token())
    };
    TokenStore::new(h.token_path(), vec![])
        .write(&token)
        .unwrap();

    // A profile answer: its name reaches the snapshot (the dashboard, the API) clean.
    let mut core = h.core();
    let CheckOutcome::Valid(profile) = core.check().await else {
        panic!("the check failed")
    };
    assert_eq!(profile.user_name.as_deref(), Some("]0;pwned[2J"));
    assert_eq!(profile.email.as_deref(), Some("[2Jjane@example.com"));
    let snapshot = core.snapshot(h.now(), Default::default());
    let shown = snapshot.token.as_ref().and_then(|t| t.user_name.clone());
    assert_eq!(shown.as_deref(), Some("]0;pwned[2J"));

    // An error answer: its code and message reach the log and the last check's text clean.
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::BAD_REQUEST,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"{"status":"error","errors":[{"error_code":"UDAPI\u001b[2J1","message":"Bad \u001b]0;pwned\u0007 day"}]}"#,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    h.account.upstox.api_base = url::Url::parse(&format!("http://{addr}/")).unwrap();
    let mut core = h.core();
    let CheckOutcome::Unreachable(e) = core.check().await else {
        panic!("the refusal was not reported")
    };
    let text = e.to_string();
    assert!(
        text.contains("UDAPI[2J1") && text.contains("Bad ]0;pwned day"),
        "{text}"
    );
    assert!(!has_control(&text), "{text:?}");
    let last = core
        .snapshot(h.now(), Default::default())
        .last_check_result
        .unwrap_or_default();
    assert!(last.contains("]0;pwned") && !has_control(&last), "{last:?}");
    let log = logs.text();
    assert!(
        log.contains("Bad ]0;pwned day"),
        "the refusal was not logged: {log}"
    );
    assert!(
        !log.contains('\u{1b}') && !log.contains('\u{7}'),
        "control characters in the log: {log:?}"
    );
}

#[test]
fn a_lock_holder_with_escape_codes_is_shown_clean() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path().join("upstox_token.json"), vec![]);
    let lock_path = store.lock_path();
    std::fs::write(&lock_path, format!("pid 42 {HOSTILE_NAME}\n")).unwrap();
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    held.lock().unwrap();
    let Err(err) = store.lock(Duration::ZERO) else {
        panic!("the lock is held, yet it was taken")
    };
    let StoreError::Locked { ref holder, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(holder, "pid 42 ]0;pwned[2J");
    assert!(!has_control(&err.to_string()), "{err}");
}
