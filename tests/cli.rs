//! End-to-end tests of the `tokenwatch` binary.
//!
//! Every test runs the real binary in its own sandbox: an empty environment (`env_clear`),
//! HOME, XDG_STATE_HOME and XDG_CONFIG_HOME inside a temporary folder, that folder as the
//! working folder, and `./config/tokenwatch.yaml` pointing `token.path` into it. Token files
//! are built relative to the real clock with margins of many minutes, and remaining-time
//! checks use the window measured around the run, so the tests do not flake.

mod common;

use assert_cmd::prelude::*;
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use common::{Out, Sandbox, at_ist, ist, ist_rfc3339, now_secs, tokens};
use predicates::prelude::*;
use serde_json::{Value, json};
use std::path::Path;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The Upstox rule, computed independently of the product: the first 03:30 at UTC+05:30
/// strictly after `t`. Walks IST calendar days from the day before `t`'s IST date.
fn first_0330_ist_after(t: DateTime<Utc>) -> DateTime<Utc> {
    let mut day = t.with_timezone(&ist()).date_naive() - Duration::days(1);
    loop {
        let candidate = ist()
            .from_local_datetime(&day.and_hms_opt(3, 30, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc);
        if candidate > t {
            return candidate;
        }
        day += Duration::days(1);
    }
}

/// A JWT-shaped token: base64url (no padding) header, JSON payload and a dummy signature.
fn jwt(payload: Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        b64.encode(br#"{"typ":"JWT","key_id":"sk_v1.0","alg":"HS256"}"#),
        b64.encode(payload.to_string()),
        b64.encode(b"not-a-real-signature-0123456789")
    )
}

/// A tokenwatch format-1 token file. A file with an issue time expires at the 03:30 IST after
/// it at the latest, so a file meant to live a given time from now, whatever the time of day,
/// has none.
fn format1(access_token: &str, issued: Option<DateTime<Utc>>, expires: DateTime<Utc>) -> String {
    json!({
        "format": 1,
        "access_token": access_token,
        "token_type": "Bearer",
        "extended_token": null,
        "user_id": "AB1234",
        "user_name": "Jane Doe",
        "email": "jane@example.com",
        "issued_at": issued.map(ist_rfc3339),
        "expires_at": ist_rfc3339(expires),
        "created_at": issued.map(|t| t.timestamp()),
        "obtained_via": "oauth"
    })
    .to_string()
}

/// Upstox's flat token-exchange response, as the older Python manager saved it, plus
/// `created_at` (epoch seconds). No `expires_at`.
fn upstox_response(access_token: &str, created_at: Value) -> String {
    let mut v = tokens::upstox_user();
    v.insert("access_token".into(), json!(access_token));
    v.insert("extended_token".into(), Value::Null);
    v.insert("created_at".into(), created_at);
    Value::Object(v).to_string()
}

/// The state the default thresholds (warning 3h, critical 1h) give for `secs` left.
fn state_for(secs: i64) -> &'static str {
    if secs <= 0 {
        "expired"
    } else if secs < 3600 {
        "critical"
    } else if secs <= 3 * 3600 {
        "warning"
    } else {
        "healthy"
    }
}

/// The Nagios exit code of a state.
fn code_for(state: &str) -> i32 {
    match state {
        "healthy" => 0,
        "warning" => 1,
        "unknown" => 3,
        _ => 2,
    }
}

/// A sandbox whose config sets only `token.path` (to `<root>/upstox_token.json`, given
/// relative to the config file's folder).
fn sandbox() -> Sandbox {
    sandbox_with("token:\n  path: \"../upstox_token.json\"\n")
}

/// A sandbox with this `config/tokenwatch.yaml`, whose token file is
/// `<root>/upstox_token.json`. Its output must be UTF-8.
fn sandbox_with(yaml: &str) -> Sandbox {
    let mut sb = Sandbox::new().strict_utf8();
    sb.token = sb.root.join("upstox_token.json");
    sb.write_yaml(yaml);
    sb
}

/// `time_remaining_seconds` lies in the window the run allows for a token expiring at
/// `expires` (0 once expired), and `time_remaining_hours` is that in hours, one decimal.
fn assert_remaining(run: &Out, expires: DateTime<Utc>) -> i64 {
    let j = run.json();
    let secs = j["time_remaining_seconds"]
        .as_i64()
        .unwrap_or_else(|| panic!("time_remaining_seconds is not an integer: {j}"));
    let hi = ((expires - run.before).num_seconds() + 1).max(0);
    let lo = ((expires - run.after).num_seconds() - 1).max(0);
    assert!(
        (lo..=hi).contains(&secs),
        "time_remaining_seconds {secs} not in {lo}..={hi}: {j}"
    );
    let hours = j["time_remaining_hours"]
        .as_f64()
        .unwrap_or_else(|| panic!("time_remaining_hours is not a number: {j}"));
    let want = (secs as f64 / 360.0).round() / 10.0;
    assert!(
        (hours - want).abs() < 1e-9,
        "time_remaining_hours {hours} for {secs} s, expected {want}: {j}"
    );
    secs
}

/// `status --json` for a readable token expiring at `expires`: exit `code`, `state`, `valid`,
/// the expiry and the remaining time (see [`assert_remaining`]); the run, its JSON and the
/// seconds left it reported.
fn status_json(
    sb: &Sandbox,
    code: i32,
    state: &str,
    valid: bool,
    expires: DateTime<Utc>,
) -> (Out, Value, i64) {
    let run = sb.run(&["status", "--json"]);
    assert_eq!(run.code, Some(code), "{}", run.all());
    let j = run.json();
    assert_eq!(j["state"], state);
    assert_eq!(j["valid"], valid);
    assert_expiry(&j, expires);
    let secs = assert_remaining(&run, expires);
    (run, j, secs)
}

/// `expiry_time` is RFC 3339 with `+05:30`, exactly the expected instant.
fn assert_expiry(j: &Value, expires: DateTime<Utc>) {
    let s = j["expiry_time"]
        .as_str()
        .unwrap_or_else(|| panic!("expiry_time is not a string: {j}"));
    assert!(s.ends_with("+05:30"), "expiry_time not in IST: {s}");
    let parsed = DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("expiry_time {s} is not RFC 3339: {e}"));
    assert_eq!(parsed.with_timezone(&Utc), expires, "expiry_time {s}");
    assert_eq!(s, ist_rfc3339(expires));
}

// ---------------------------------------------------------------------------------------
// 1. status --json for each state, on format-1 files
// ---------------------------------------------------------------------------------------

/// A format-1 token with no issue time, expiring `expires_in` from now.
fn check_format1_state(expires_in: Duration, state: &str, code: i32, valid: bool) {
    let sb = sandbox();
    let now = now_secs();
    let expires = now + expires_in;
    sb.write_token(format1(&jwt(json!({"sub": "AB1234"})), None, expires));

    let (run, j, secs) = status_json(&sb, code, state, valid, expires);
    assert_eq!(j["account"], "default");
    if state == "expired" {
        assert_eq!(secs, 0);
        assert_eq!(j["time_remaining_hours"].as_f64(), Some(0.0));
    } else {
        let nominal = expires_in.num_seconds();
        assert!(
            (nominal - secs).abs() <= 5,
            "{secs} s left, ~{nominal} expected"
        );
    }
    assert_eq!(j["issued_at"], Value::Null);
    assert_eq!(j["user_id"], "AB1234");
    assert_eq!(j["token_file"], sb.token_path().to_str().unwrap());
    assert!(Path::new(j["token_file"].as_str().unwrap()).is_absolute());
    assert_eq!(j["api_validated"], false);
    assert_eq!(j["last_validated_at"], Value::Null);
    assert_eq!(j["next_check_at"], Value::Null);
    assert_eq!(j["expiry_source"], "expires_at");
    assert!(j.get("error").is_none(), "unexpected error: {j}");
    // The status JSON never carries the token.
    assert!(!run.stdout.contains("access_token"));
}

#[test]
fn status_json_healthy_format1() {
    check_format1_state(Duration::hours(10), "healthy", 0, true);
}

#[test]
fn status_json_warning_format1() {
    check_format1_state(Duration::hours(2), "warning", 1, true);
}

#[test]
fn status_json_critical_format1() {
    check_format1_state(Duration::minutes(30), "critical", 2, true);
}

#[test]
fn status_json_expired_format1() {
    check_format1_state(-Duration::hours(1), "expired", 2, false);
}

#[test]
fn status_json_missing() {
    let sb = sandbox();
    let run = sb.run(&["status", "--json"]);
    assert_eq!(
        run.code,
        Some(2),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    let j = run.json();
    assert_eq!(j["account"], "default");
    assert_eq!(j["state"], "missing");
    assert_eq!(j["valid"], false);
    assert_eq!(j["time_remaining_seconds"], Value::Null);
    assert_eq!(j["time_remaining_hours"], Value::Null);
    assert_eq!(j["expiry_time"], Value::Null);
    assert_eq!(j["issued_at"], Value::Null);
    assert_eq!(j["user_id"], Value::Null);
    assert_eq!(j["api_validated"], false);
    assert_eq!(j["token_file"], sb.token_path().to_str().unwrap());
    assert!(j.get("error").is_none(), "missing is not an error: {j}");
}

// ---------------------------------------------------------------------------------------
// 2. Unreadable token files
// ---------------------------------------------------------------------------------------

#[test]
fn garbage_token_file_is_unknown_for_status_and_no_token_for_token() {
    // Fixed pseudo-random bytes, with 0xFF so they are certainly not UTF-8.
    let mut binary = vec![0xFFu8, 0xFE, 0x00, 0x81];
    let mut x: u32 = 0x2545_F491;
    for _ in 0..512 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        binary.push((x >> 24) as u8);
    }
    let secret = "SECRETxTOKENxVALUExMUSTxNOTxLEAK";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated JSON", br#"{"access_token": "#.to_vec()),
        (
            "truncated JSON holding a token",
            format!(r#"{{"access_token": "{secret}"#).into_bytes(),
        ),
        ("binary", binary),
    ];
    for (what, bytes) in cases {
        let sb = sandbox();
        sb.write_token(&bytes);
        let path = sb.token_path().display().to_string();

        let run = sb.run(&["status"]);
        assert_eq!(run.code, Some(3), "{what}: status\n{}", run.all());
        assert!(run.stdout.contains("UNKNOWN"), "{what}: {}", run.stdout);

        let run = sb.run(&["status", "--json"]);
        assert_eq!(run.code, Some(3), "{what}: status --json\n{}", run.all());
        let j = run.json();
        assert_eq!(j["state"], "unknown", "{what}");
        assert_eq!(j["valid"], false, "{what}");
        assert_eq!(j["account"], "default", "{what}");
        assert_eq!(j["time_remaining_seconds"], Value::Null, "{what}");
        assert_eq!(j["expiry_time"], Value::Null, "{what}");
        assert_eq!(j["token_file"], path.as_str(), "{what}");
        let error = j["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no error: {j}"));
        assert!(error.contains("unreadable token file"), "{what}: {error}");
        assert!(error.contains(&path), "{what}: {error}");
        assert!(!run.all().contains(secret), "{what}: token leaked");

        let run = sb.run(&["token"]);
        assert_eq!(run.code, Some(2), "{what}: token\n{}", run.all());
        assert_eq!(run.stdout, "", "{what}: token printed something");
        assert!(!run.stderr.contains(secret), "{what}: token leaked");
    }
}

// ---------------------------------------------------------------------------------------
// 3. A configuration error
// ---------------------------------------------------------------------------------------

#[test]
fn config_error_stops_every_command_with_a_clear_message() {
    let sb = sandbox_with(
        "token:\n  path: \"../upstox_token.json\"\nmonitor: { check_interval: \"30x\" }\n",
    );
    sb.write_token(format1(
        "tok",
        Some(now_secs()),
        now_secs() + Duration::hours(10),
    ));
    let config = sb.config_path().display().to_string();
    let check_message = |run: &Out, what: &str| {
        for needle in [
            config.as_str(),
            "monitor.check_interval",
            "expected a duration",
        ] {
            assert!(
                run.stderr.contains(needle),
                "{what}: stderr lacks {needle:?}:\n{}",
                run.stderr
            );
        }
        assert!(!run.all().contains("panicked"), "{what} panicked");
    };

    let run = sb.run(&["status"]);
    assert_eq!(run.code, Some(3), "status\n{}", run.all());
    check_message(&run, "status");

    let run = sb.run(&["status", "--json"]);
    assert_eq!(run.code, Some(3), "status --json\n{}", run.all());
    check_message(&run, "status --json");
    let j = run.json();
    assert_eq!(j["state"], "unknown");
    assert_eq!(j["valid"], false);
    assert_eq!(j["token_file"], Value::Null);
    assert!(
        j["error"]
            .as_str()
            .is_some_and(|e| e.contains("monitor.check_interval")),
        "{j}"
    );

    let run = sb.run(&["config", "check"]);
    assert_eq!(run.code, Some(78), "config check\n{}", run.all());
    check_message(&run, "config check");

    let run = sb.run(&["token"]);
    assert_eq!(run.code, Some(78), "token\n{}", run.all());
    assert_eq!(run.stdout, "", "token printed something on a config error");
    check_message(&run, "token");
}

// ---------------------------------------------------------------------------------------
// 4. token
// ---------------------------------------------------------------------------------------

fn token_for(expires_in: Duration) -> (Sandbox, String) {
    let sb = sandbox();
    let now = now_secs();
    let tok = jwt(json!({"sub": "AB1234"}));
    sb.write_token(format1(&tok, None, now + expires_in));
    (sb, tok)
}

/// `token` prints `tok` and a newline, nothing else, and exits 0.
fn assert_prints_token(sb: &Sandbox, tok: &str) {
    sb.cmd(&["token"])
        .assert()
        .code(0)
        .stdout(predicate::eq(format!("{tok}\n")));
}

/// `token` prints nothing on stdout and exits 2.
fn assert_prints_no_token(sb: &Sandbox) -> assert_cmd::assert::Assert {
    sb.cmd(&["token"])
        .assert()
        .code(2)
        .stdout(predicate::eq(""))
}

#[test]
fn token_prints_a_healthy_token_alone() {
    let (sb, tok) = token_for(Duration::hours(10));
    assert_prints_token(&sb, &tok);
}

#[test]
fn token_prints_a_critical_token_alone() {
    let (sb, tok) = token_for(Duration::minutes(30));
    assert_prints_token(&sb, &tok);
}

#[test]
fn token_refuses_an_expired_token() {
    let (sb, tok) = token_for(-Duration::hours(1));
    assert_prints_no_token(&sb).stderr(predicate::str::contains(tok.as_str()).not());
}

#[test]
fn token_with_no_token_file_exits_2() {
    assert_prints_no_token(&sandbox());
}

// ---------------------------------------------------------------------------------------
// 5. Every accepted token-file format
// ---------------------------------------------------------------------------------------

#[test]
fn upstox_response_with_opaque_token_uses_the_0330_rule_from_created_at() {
    let sb = sandbox();
    let created = now_secs() - Duration::minutes(90);
    let expires = first_0330_ist_after(created);
    sb.write_token(upstox_response(
        "opaque-access-token-not-a-jwt-0123456789",
        json!(created.timestamp()),
    ));

    let run = sb.run(&["status", "--json"]);
    let j = run.json();
    assert_expiry(&j, expires);
    assert_remaining(&run, expires);
    // The state by time: the run's window may straddle a threshold only by a second.
    let hi = state_for((expires - run.before).num_seconds());
    let lo = state_for((expires - run.after).num_seconds());
    let state = j["state"].as_str().unwrap();
    assert!(
        state == hi || state == lo,
        "state {state}, expected {lo}/{hi}"
    );
    assert_eq!(run.code, Some(code_for(state)), "{}", run.all());
    assert_eq!(j["issued_at"], ist_rfc3339(created));
    assert_eq!(j["user_id"], "AB1234");
    assert_eq!(j["expiry_source"], "rule_from_created_at");
}

#[test]
fn upstox_rule_is_computed_in_ist_on_fixed_dates() {
    // (created_at, expected expiry): hand-computed, and checked against the independent helper.
    let utc = |d, h, mi| Utc.with_ymd_and_hms(2025, 7, d, h, mi, 0).unwrap();
    let cases: [(DateTime<Utc>, &str); 6] = [
        // 09:12 IST → 03:30 the next day.
        (at_ist(2025, 7, 5, 9, 12, 0), "2025-07-06T03:30:00+05:30"),
        // 02:00 IST → 03:30 the same morning.
        (at_ist(2025, 7, 5, 2, 0, 0), "2025-07-05T03:30:00+05:30"),
        // Exactly 03:30 IST → strictly after: the next day.
        (at_ist(2025, 7, 5, 3, 30, 0), "2025-07-06T03:30:00+05:30"),
        // 22:30 UTC on the 4th is 04:00 IST on the 5th: a UTC calendar would say the 5th.
        (utc(4, 22, 30), "2025-07-06T03:30:00+05:30"),
        // 21:30 UTC on the 4th is 03:00 IST on the 5th.
        (utc(4, 21, 30), "2025-07-05T03:30:00+05:30"),
        // Year rollover.
        (at_ist(2025, 12, 31, 23, 59, 0), "2026-01-01T03:30:00+05:30"),
    ];
    let mut cases: Vec<(Value, DateTime<Utc>, &str)> = cases
        .iter()
        .map(|&(created, want)| (json!(created.timestamp()), created, want))
        .collect();
    // The Python manager may have saved time.time(): fractional epoch seconds.
    let created = at_ist(2025, 7, 5, 9, 12, 0);
    cases.push((
        json!(created.timestamp() as f64 + 0.25),
        created,
        "2025-07-06T03:30:00+05:30",
    ));
    for (created_json, created, want) in cases {
        let expires = first_0330_ist_after(created);
        assert_eq!(ist_rfc3339(expires), want, "test helper disagrees");
        let sb = sandbox();
        sb.write_token(upstox_response("opaque-token-0123456789", created_json));
        let run = sb.run(&["status", "--json"]);
        assert_eq!(run.code, Some(2), "{want}: {}", run.all());
        let j = run.json();
        assert_eq!(j["expiry_time"], want, "created {created}");
        assert_eq!(j["state"], "expired");
        assert_eq!(j["valid"], false);
        assert_eq!(j["time_remaining_seconds"], 0);
        assert_eq!(j["issued_at"], ist_rfc3339(created));
    }
}

#[test]
fn upstox_response_with_jwt_takes_expiry_from_exp() {
    let sb = sandbox();
    let now = now_secs();
    // No issue time (no created_at, no iat): the exp alone decides, whatever the time of day.
    // An exp past the 03:30 IST rule is cut to it (tests/odd_files.rs).
    let expires = now + Duration::hours(10);
    let tok = jwt(json!({
        "sub": "AB1234", "jti": "abc", "isMultiClient": false, "isPlusPlan": false,
        "iss": "udapi-gateway-service", "exp": expires.timestamp()
    }));
    sb.write_token(upstox_response(&tok, Value::Null));

    let (_, j, _) = status_json(&sb, 0, "healthy", true, expires);
    assert_eq!(j["issued_at"], Value::Null);
    assert_eq!(j["user_id"], "AB1234");
    assert_eq!(j["expiry_source"], "jwt_exp");
}

/// A legacy `{"access_token", "expires_at"}` file.
fn check_legacy(expires_at: Value, expires: DateTime<Utc>, state: &str) {
    let sb = sandbox();
    sb.write_token(
        json!({"access_token": "legacy-opaque-token-0123456789", "expires_at": expires_at})
            .to_string(),
    );
    let (_, j, _) = status_json(&sb, code_for(state), state, true, expires);
    assert_eq!(j["issued_at"], Value::Null);
    assert_eq!(j["user_id"], Value::Null);
    assert_eq!(j["expiry_source"], "expires_at");
    assert_eq!(j["token_file"], sb.token_path().to_str().unwrap());
}

#[test]
fn legacy_expires_at_epoch_seconds() {
    let expires = now_secs() + Duration::hours(10);
    check_legacy(json!(expires.timestamp()), expires, "healthy");
}

#[test]
fn legacy_expires_at_epoch_milliseconds() {
    let expires = now_secs() + Duration::hours(2);
    check_legacy(json!(expires.timestamp_millis()), expires, "warning");
}

#[test]
fn legacy_expires_at_rfc3339() {
    // Given in UTC; reported in IST.
    let expires = now_secs() + Duration::minutes(30);
    let utc = expires.to_rfc3339_opts(SecondsFormat::Secs, true);
    assert!(utc.ends_with('Z'));
    check_legacy(json!(utc), expires, "critical");
}

#[test]
fn raw_jwt_file_takes_expiry_from_exp() {
    let sb = sandbox();
    let expires = now_secs() + Duration::hours(2);
    // No iat: with one, the 03:30 IST after it could come first at some times of day (the
    // iat as issue time is checked by raw_token_without_exp_dies_at_0330_after_its_jwt_iat).
    let tok = jwt(json!({"sub": "CD5678", "exp": expires.timestamp()}));
    sb.write_token(format!("{tok}\n"));

    let (_, j, _) = status_json(&sb, 1, "warning", true, expires);
    assert_eq!(j["user_id"], "CD5678");
    assert_eq!(j["expiry_source"], "jwt_exp");
    assert_eq!(j["issued_at"], Value::Null);

    // And `token` gives it back without the newline of the file doubled.
    assert_prints_token(&sb, &tok);
}

// ---------------------------------------------------------------------------------------
// 6. config check never prints the client secret
// ---------------------------------------------------------------------------------------

#[test]
fn config_check_never_prints_the_client_secret() {
    let env_secret = "EnvSecret-7f3a9c-from-the-environment";
    let yaml_secret = "YamlSecret-41d2-in-the-config-file";
    let legacy_secret = "LegacySecret-88e1-old-python-manager";
    let dotenv_secret = "DotenvSecret-5b6c-in-dot-env";
    let sb = sandbox_with(&format!(
        "upstox:\n  client_id: \"my-client-id\"\n  client_secret: \"{yaml_secret}\"\n\
         token:\n  path: \"../upstox_token.json\"\n"
    ));
    sb.write(
        "home/Algo/upstox_credentials.json",
        json!({"api_key": "legacy-id", "api_secret": legacy_secret, "redirect_uri": "http://localhost:5001/callback"})
            .to_string(),
    );
    sb.write(".env", format!("UPSTOX_CLIENT_SECRET={dotenv_secret}\n"));
    let secrets = [env_secret, yaml_secret, legacy_secret, dotenv_secret];

    let check = |run: &Out, shown_len: usize| {
        assert_eq!(run.code, Some(0), "{}", run.all());
        let all = run.all();
        for s in secrets {
            assert!(!all.contains(s), "secret {s} printed:\n{all}");
            // Not even a recognisable part of it.
            assert!(
                !all.contains(&s[..12]),
                "part of secret {s} printed:\n{all}"
            );
        }
        let y = run.yaml();
        // Every layer was really read, so the absence above means something.
        let sources = &y["sources"];
        assert_eq!(
            sources["config_file"].as_str(),
            sb.config_path().to_str(),
            "{all}"
        );
        assert_eq!(
            sources["legacy_credentials"].as_str(),
            sb.home().join("Algo/upstox_credentials.json").to_str(),
            "{all}"
        );
        assert_eq!(
            sources["dotenv"].as_str(),
            sb.root.join(".env").to_str(),
            "{all}"
        );
        let shown = y["upstox"]["client_secret"]
            .as_str()
            .unwrap_or_else(|| panic!("client_secret not shown as set:\n{all}"));
        assert!(shown.starts_with("********"), "{shown}");
        assert!(shown.contains("set"), "{shown}");
        // The winning layer's secret, by its length only.
        assert!(
            shown.contains(&format!("{shown_len} characters")),
            "{shown}, expected the {shown_len}-character secret"
        );
    };

    // The environment wins over .env, the file and the legacy file.
    let run = sb.run_with(
        &["config", "check"],
        &[("UPSTOX_CLIENT_SECRET", env_secret)],
    );
    check(&run, env_secret.len());
    // Without it, .env supplies the secret; still masked.
    let run = sb.run(&["config", "check"]);
    check(&run, dotenv_secret.len());

    // Nor does status.
    let run = sb.run_with(
        &["status", "--json"],
        &[("UPSTOX_CLIENT_SECRET", env_secret)],
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    for s in secrets {
        assert!(!run.all().contains(s), "status printed secret {s}");
    }
}

// ---------------------------------------------------------------------------------------
// 7. .env never overrides the environment
// ---------------------------------------------------------------------------------------

#[test]
fn dotenv_is_loaded_but_never_overrides_the_environment() {
    let sb = sandbox();
    sb.write(".env", "UPSTOX_CLIENT_ID=from-dotenv\n");

    let run = sb.run(&["config", "check"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let y = run.yaml();
    assert_eq!(y["upstox"]["client_id"].as_str(), Some("from-dotenv"));
    assert_eq!(
        y["sources"]["dotenv"].as_str(),
        sb.root.join(".env").to_str()
    );

    let run = sb.run_with(&["config", "check"], &[("UPSTOX_CLIENT_ID", "from-env")]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let y = run.yaml();
    assert_eq!(y["upstox"]["client_id"].as_str(), Some("from-env"));
    assert!(!run.stdout.contains("from-dotenv"), "{}", run.stdout);
}

// ---------------------------------------------------------------------------------------
// 8. --help and --version
// ---------------------------------------------------------------------------------------

#[test]
fn help_lists_the_subcommands_and_exit_codes() {
    let sb = sandbox();
    let run = sb.run(&["--help"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    // clap wraps to the terminal width: compare with whitespace collapsed.
    let help = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for sub in ["status", "token", "config"] {
        let listed = run
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{sub} ")));
        assert!(listed, "subcommand {sub} not listed:\n{}", run.stdout);
    }
    for needle in [
        "Exit codes",
        "0 healthy",
        "1 warning",
        "2 critical/expired/invalid/missing",
        "3 unknown",
        "78",
    ] {
        assert!(
            help.contains(needle),
            "--help lacks {needle:?}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn version_prints_the_version() {
    let sb = sandbox();
    sb.cmd(&["--version"])
        .assert()
        .code(0)
        .stdout(predicate::eq(format!(
            "tokenwatch {}\n",
            env!("CARGO_PKG_VERSION")
        )));
}

// ---------------------------------------------------------------------------------------
// 9. Human status: the state word in capitals
// ---------------------------------------------------------------------------------------

#[test]
fn human_status_shows_the_state_word_in_capitals() {
    const WORDS: [&str; 5] = ["HEALTHY", "WARNING", "CRITICAL", "EXPIRED", "NO TOKEN"];
    let cases: [(Option<Duration>, &str, i32); 5] = [
        (Some(Duration::hours(10)), "HEALTHY", 0),
        (Some(Duration::hours(2)), "WARNING", 1),
        (Some(Duration::minutes(30)), "CRITICAL", 2),
        (Some(-Duration::hours(1)), "EXPIRED", 2),
        (None, "NO TOKEN", 2),
    ];
    for (expires_in, word, code) in cases {
        let sb = sandbox();
        if let Some(d) = expires_in {
            let now = now_secs();
            sb.write_token(format1("opaque-token-0123456789", None, now + d));
        }
        let run = sb.run(&["status"]);
        assert_eq!(run.code, Some(code), "{word}: {}", run.all());
        assert!(
            run.stdout.starts_with(word),
            "{word}: first line is not the state word:\n{}",
            run.stdout
        );
        for other in WORDS.iter().filter(|w| **w != word) {
            assert!(
                !run.stdout.contains(other),
                "{word}: also says {other}:\n{}",
                run.stdout
            );
        }
        assert!(
            !run.stdout.trim_start().starts_with('{'),
            "human status printed JSON"
        );
    }
}

#[test]
fn implausible_times_are_unreadable_not_a_crash() {
    // Far-future epoch values used to overflow date arithmetic (a panic, exit 101).
    let sb = sandbox();
    for body in [
        r#"{"access_token":"abcdefghijklmnop","created_at":8210266876799999}"#,
        r#"{"access_token":"abcdefghijklmnop","expires_at":-8334601228799000}"#,
        r#"{"access_token":"abcdefghijklmnop","issued_at":"9999-12-31T23:59:59+05:30"}"#,
    ] {
        sb.write_token(body);
        let run = sb.run(&["status", "--json"]);
        assert_eq!(run.code, Some(3), "{body}: {}", run.all());
        assert_eq!(run.json()["state"], "unknown");
        let run = sb.run(&["token"]);
        assert_eq!(run.code, Some(2), "{body}: {}", run.all());
    }
}

#[test]
fn raw_token_without_exp_dies_at_0330_after_its_jwt_iat() {
    let sb = sandbox();
    let issued = at_ist(2026, 11, 26, 9, 12, 0);
    let tok = jwt(json!({"sub": "CD5678", "iat": issued.timestamp()}));
    sb.write_token(format!("{tok}\n"));
    let run = sb.run(&["status", "--json"]);
    let j = run.json();
    assert_eq!(j["expiry_time"], "2026-11-27T03:30:00+05:30");
    assert_eq!(j["issued_at"], "2026-11-26T09:12:00+05:30");
    assert_eq!(j["expiry_source"], "rule_from_jwt_iat");
}

#[test]
fn usage_errors_exit_3_never_2() {
    // 2 means "critical" to Nagios; a typo in a check's arguments must read as "unknown".
    let sb = sandbox();
    let run = sb.run(&["status", "--bogus"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("--bogus"), "{}", run.stderr);
    let run = sb.run(&["frobnicate"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let run = sb.run(&["status", "--help"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
}

// ---------------------------------------------------------------------------------------
// Times on stderr
// ---------------------------------------------------------------------------------------

/// A log line's time: IST with milliseconds and its offset, as the daemon writes it.
fn starts_with_ist_time(line: &str) -> bool {
    line.split_once(' ').is_some_and(|(time, _)| {
        time.ends_with("+05:30")
            && DateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S%.3f%:z").is_ok()
    })
}

/// `status --validate` with the API unreachable logs its retries on stderr: each line says
/// when, in IST, like the daemon's, so a warning read the next morning still places itself.
#[test]
fn one_shot_commands_log_with_ist_times() {
    let port = common::free_port();
    let sb = sandbox_with(&format!(
        "token:\n  path: \"../upstox_token.json\"\n\
         upstox:\n  api_base: \"http://127.0.0.1:{port}\"\n\
         monitor:\n  backoff_initial: 10ms\n  backoff_max: 20ms\n"
    ));
    sb.write_token(format1(
        &jwt(json!({"sub": "AB1234"})),
        None,
        now_secs() + Duration::hours(30),
    ));
    let out = sb.run(&["status", "--validate"]);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(!lines.is_empty(), "{}", out.all());
    for line in lines {
        assert!(starts_with_ist_time(line), "no IST time: {line}");
    }
}

// ---------------------------------------------------------------------------------------
// The broker: named by status, and a token file of another broker is refused, untouched

#[test]
fn status_names_the_broker_and_refuses_another_brokers_file() {
    let sb = sandbox();
    let expires = Utc::now() + Duration::hours(5);
    let file = format1("tok-upstox-AAAA", None, expires);
    sb.write_token(&file);
    let run = sb.run(&["status", "--json"]);
    assert_eq!(run.json()["broker"], "upstox", "{}", run.all());
    let run = sb.run(&["status"]);
    run.assert_stdout("Broker: Upstox");

    // The same (Upstox) file, for an account now set to Kite: refused, left as it was.
    let sb = sandbox_with("broker: kite\ntoken:\n  path: \"../upstox_token.json\"\n");
    sb.write_token(&file);
    let run = sb.run(&["status", "--json"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let j = run.json();
    assert_eq!(j["broker"], "kite");
    assert_eq!(j["state"], "unknown");
    let why = j["error"].as_str().unwrap();
    assert!(
        why.contains("token for Upstox")
            && why.contains("Zerodha Kite")
            && why.contains("token.path"),
        "{why}"
    );
    assert!(!run.all().contains("tok-upstox-AAAA"), "{}", run.all());
    let run = sb.run(&["token"]);
    assert_ne!(run.code, Some(0));
    assert!(!run.stdout.contains("tok-upstox-AAAA"), "{}", run.all());
    assert_eq!(std::fs::read_to_string(sb.token_path()).unwrap(), file);
}

#[test]
fn config_check_notes_each_accounts_missing_app_id_by_its_brokers_key() {
    let sb = sandbox_with(
        "upstox:\n  client_id: upstox-app\ntoken:\n  path: \"../upstox_token.json\"\naccounts:\n  zerodha:\n    broker: kite\n    token:\n      path: \"../kite_token.json\"\n",
    );
    let run = sb.run(&["config", "check"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr.contains(
            "note: kite.api_key is not set for account \"zerodha\"; it is needed to log in and to \
             validate with the API (set KITE_API_KEY or kite.api_key)"
        ),
        "{}",
        run.all()
    );
    // The Upstox account has its id: no note names it.
    assert!(!run.stderr.contains("upstox.client_id"), "{}", run.all());
}
