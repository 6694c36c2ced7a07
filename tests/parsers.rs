//! Property tests: the token-file parser, the JWT decoder, duration parsing and the 03:30 IST
//! rule hold for any input, and never panic.

use chrono::{DateTime, Duration, Timelike, Utc};
use proptest::prelude::*;
use tokenwatch::token::expiry::{decode_jwt_claims, to_ist, upstox_expiry};
use tokenwatch::token::file::parse_token;

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2000-01-01 .. 2100-01-01
    (946_684_800i64..4_102_444_800i64).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_0330_rule_holds_for_any_issue_time(t in instant()) {
        let e = upstox_expiry(t);
        prop_assert!(e > t);
        prop_assert!(e - t <= Duration::hours(24));
        let local = to_ist(e);
        prop_assert_eq!((local.hour(), local.minute(), local.second()), (3, 30, 0));
    }

    #[test]
    fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_token(&bytes, None);
        let _ = parse_token(&bytes, Some(Utc::now()));
    }

    #[test]
    fn json_shaped_input_fails_without_quoting_the_token(
        token in "[A-Za-z0-9._-]{20,60}",
        expires in prop_oneof![
            Just("null".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| if f.is_finite() { f.to_string() } else { "0".into() }),
            "[ -~]{0,30}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("{}".to_string()),
            Just("[]".to_string()),
        ],
        extra in "[ -~]{0,20}",
    ) {
        let text = format!(r#"{{"access_token":"{token}","expires_at":{expires}}}{extra}"#);
        if let Err(e) = parse_token(text.as_bytes(), None) {
            prop_assert!(!e.contains(&token), "{}", e);
        }
    }

    #[test]
    fn jwt_decoding_never_panics(s in "[ -~]{0,300}") {
        let _ = decode_jwt_claims(&s);
    }

    #[test]
    fn jwt_exp_round_trips(exp in 0i64..4_102_444_800, sub in "[A-Z0-9]{6}") {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"{sub}","exp":{exp}}}"#));
        let claims = decode_jwt_claims(&format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig")).unwrap();
        prop_assert_eq!(claims.exp, Some(exp));
        prop_assert_eq!(claims.sub, Some(sub));
    }

    #[test]
    fn duration_parsing_never_panics(s in "\\PC{0,40}") {
        let _ = tokenwatch::config::duration::parse(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Any time value in any time field either fails to parse cleanly or yields a token whose
    /// times every later step (state, renewal schedule, IST formatting) can handle.
    #[test]
    fn any_time_fields_parse_into_times_the_schedule_can_handle(
        field in prop_oneof![Just("expires_at"), Just("issued_at"), Just("created_at")],
        value in prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| format!("\"{n}\"")),
            // Epoch milliseconds at the very ends of what chrono can represent: these used to
            // parse and then overflow the 03:30 arithmetic.
            (8_210_266_876_799_999i64 - 2 * 86_400_000..=8_210_266_876_799_999).prop_map(|n| n.to_string()),
            (-8_334_601_228_800_000i64..=-8_334_601_228_800_000 + 2 * 86_400_000).prop_map(|n| n.to_string()),
            (-9999i32..99999, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("\"{y:04}-{m:02}-{d:02}T03:30:00+05:30\"")),
        ],
        now_secs in 946_684_800i64..7_258_118_400,
    ) {
        let text = format!(r#"{{"access_token":"abcdefghijklmnopqrstuvwx","{field}":{value}}}"#);
        let now = DateTime::from_timestamp(now_secs, 0).unwrap();
        if let Ok(token) = parse_token(text.as_bytes(), Some(now)) {
            let policy = tokenwatch::schedule::Policy {
                check_interval: std::time::Duration::from_secs(1800),
                refresh_before: std::time::Duration::from_secs(7 * 24 * 3600),
                thresholds: tokenwatch::token::Thresholds {
                    warning_before: std::time::Duration::from_secs(7 * 24 * 3600),
                    critical_before: std::time::Duration::from_secs(7 * 24 * 3600),
                },
                strategy: tokenwatch::config::Strategy::Browser,
                not_before: chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                deadline: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                calendar: tokenwatch::calendar::Calendar::nse(),
                broker: Default::default(),
            };
            let facts = tokenwatch::schedule::Facts {
                now,
                expires_at: Some(token.expires_at),
                verdict: tokenwatch::schedule::Verdict::Unknown,
                last_check_at: token.issued_at,
                last_failed_round_at: None,
            };
            let _ = tokenwatch::schedule::state(&facts, &policy);
            let _ = tokenwatch::schedule::renewal(&facts, &policy);
            let _ = tokenwatch::schedule::next_check(&facts, &policy);
            let _ = tokenwatch::status::ist_rfc3339(token.expires_at);
            let _ = tokenwatch::token::file::to_format1_json(&token);
        }
    }
}
