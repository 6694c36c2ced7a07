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
