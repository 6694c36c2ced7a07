//! Property tests for every parser that reads outside input: the token file, the JWT
//! decoder, the OAuth callback query and the pasted redirect address, the v3 notifier webhook
//! payload, durations, the config file and `.env`, and Upstox's answers.
//!
//! Each parser is checked three ways: it never panics on any input (arbitrary bytes, invalid
//! UTF-8, huge inputs, deep nesting, huge numbers, NaN-like text); what one side writes the
//! other reads back exactly; and no error text ever contains the secret it was given. The
//! `cargo fuzz` targets in `fuzz/` run the same parsers for longer (see `docs/fuzzing.md`).
//!
//! `tests/parsers.rs` already covers small random token files, printable-ASCII JWTs, a JWT
//! `exp`/`sub` round trip and time fields feeding the schedule; nothing here repeats those.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, Utc};
use common::ConfigEnv;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::time::Duration;
use tokenwatch::auth::notifier::{EXPIRY_SKEW, Expectation, Rejection, check_delivery};
use tokenwatch::auth::oauth::{Callback, CallbackProblem, read_callback, read_pasted};
use tokenwatch::brokers::upstox::client::{ApiError, classify};
use tokenwatch::config::{self, LoadOptions, duration};
use tokenwatch::secret::Secret;
use tokenwatch::token::expiry::{decode_jwt_claims, from_epoch_seconds, upstox_expiry};
use tokenwatch::token::file::{parse_token, read_token_bytes, read_token_file, to_format1_json};
use tokenwatch::token::{ExpirySource, Token, TokenFileFormat};

// ---------------------------------------------------------------------------------------------
// Shared strategies
// ---------------------------------------------------------------------------------------------

/// `n` cases, or `PROPTEST_CASES` when set (`PROPTEST_CASES=20000 cargo test --test
/// properties` for a long run). The defaults keep the whole file well under 30 s.
fn cases(n: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = n;
    }
    config
}

/// 2000-01-01 .. 2200-01-01: the range token files may hold.
const PLAUSIBLE_SECS: std::ops::Range<i64> = 946_684_800..7_258_118_400;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn at_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// A JWT-shaped token as Upstox issues them: long, recognisable, and made only of base64url
/// characters and dots, so that no fixed error text can contain it by accident.
fn jwt_like_token() -> impl Strategy<Value = String> {
    "eyJ[A-Za-z0-9_-]{17,40}\\.[A-Za-z0-9_-]{20,80}\\.[A-Za-z0-9_-]{10,43}"
}

/// A JWT with the given claims (any JSON object) as its payload.
fn jwt_with(claims: &Value, pad: bool) -> String {
    let mut payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    if pad {
        while !payload.len().is_multiple_of(4) {
            payload.push('=');
        }
    }
    format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{payload}.c2lnbmF0dXJl")
}

/// Any JSON value, a few levels deep, with the awkward numbers and strings included.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        odd_text().prop_map(Value::String),
        "\\PC{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec(("[a-z_]{1,12}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Text that number and time parsers tend to trip over.
fn odd_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("NaN".to_string()),
        Just("-NaN".to_string()),
        Just("inf".to_string()),
        Just("-Infinity".to_string()),
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("0x10".to_string()),
        Just("".to_string()),
        Just("   ".to_string()),
        Just("\u{feff}".to_string()),
        Just("99999999999999999999999999999999".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("9223372036854775807".to_string()),
        Just("18446744073709551616".to_string()),
        Just("2026-02-30T03:30:00+05:30".to_string()),
        Just("+262143-12-31T23:59:59Z".to_string()),
        Just("-262144-01-01T00:00:00Z".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
    ]
}

/// Raw JSON text for a number, including ones no integer type holds.
fn odd_number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        Just("1e400".to_string()),
        Just("-1e400".to_string()),
        Just("1e-400".to_string()),
        Just("123456789012345678901234567890".to_string()),
        Just("-0.0".to_string()),
        Just("1.5".to_string()),
        Just("9223372036854775807.9".to_string()),
    ]
}

fn nested(depth: usize, open: &str, close: &str, core: &str) -> String {
    format!("{}{core}{}", open.repeat(depth), close.repeat(depth))
}

// ---------------------------------------------------------------------------------------------
// Token file
// ---------------------------------------------------------------------------------------------

/// Every field of a format-1 file, each either absent or present with any value.
#[derive(Debug, Clone)]
struct Fields {
    access_token: String,
    token_type: String,
    extended_token: Option<String>,
    user_id: Option<String>,
    user_name: Option<String>,
    email: Option<String>,
    issued_at: Option<i64>,
    expires_at: i64,
    obtained_via: Option<String>,
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("\\PC{0,30}")
        .prop_map(|s| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

prop_compose! {
    fn fields()(
        access_token in "[!-~]{1,300}",
        token_type in "[!-~]{1,10}",
        extended_token in proptest::option::of("[!-~]{1,100}"),
        user_id in opt_text(),
        user_name in opt_text(),
        email in opt_text(),
        issued_at in proptest::option::of(PLAUSIBLE_SECS),
        expires_at in PLAUSIBLE_SECS,
        obtained_via in opt_text(),
    ) -> Fields {
        Fields {
            access_token,
            token_type,
            extended_token,
            user_id,
            user_name,
            email,
            issued_at,
            expires_at,
            obtained_via,
        }
    }
}

/// The earliest of the known candidates, the first named winning a tie: what a token's expiry
/// must be, worked out here rather than with the product's function.
fn earliest(
    candidates: &[(Option<DateTime<Utc>>, ExpirySource)],
) -> Option<(DateTime<Utc>, ExpirySource)> {
    let mut best: Option<(DateTime<Utc>, ExpirySource)> = None;
    for (t, source) in candidates {
        if let Some(t) = *t
            && best.is_none_or(|(b, _)| t < b)
        {
            best = Some((t, *source));
        }
    }
    best
}

fn token_of(f: &Fields) -> Token {
    Token {
        broker: Default::default(),
        access_token: Secret::new(f.access_token.clone()),
        token_type: f.token_type.clone(),
        extended_token: f.extended_token.clone().map(Secret::new),
        user_id: f.user_id.clone(),
        user_name: f.user_name.clone(),
        email: f.email.clone(),
        issued_at: f.issued_at.map(at),
        expires_at: at(f.expires_at),
        expiry_source: ExpirySource::ExpiresAt,
        obtained_via: f.obtained_via.clone(),
        refresh_token: None,
        format: TokenFileFormat::Format1,
    }
}

/// How one instant can be written in a time field; all must read back as the same instant.
fn encode_time(ms: i64, how: u8, offset_minutes: i32) -> String {
    let secs = ms.div_euclid(1000);
    match how % 7 {
        0 => secs.to_string(),
        1 => format!("\"{secs}\""),
        2 => format!("{secs}.0"),
        3 => ms.to_string(),
        4 => format!("\" {ms} \""),
        5 => {
            let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap();
            let t = at_ms(ms).with_timezone(&offset);
            format!(
                "\"{}\"",
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
            )
        }
        _ => {
            let t = at_ms(ms);
            format!(
                "\"{}\"",
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            )
        }
    }
}

/// The instant `encode_time` promises: whole seconds for the seconds encodings.
fn decoded_time(ms: i64, how: u8) -> DateTime<Utc> {
    match how % 7 {
        0..=2 => at(ms.div_euclid(1000)),
        _ => at_ms(ms),
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// Whatever a format-1 file holds, writing it and reading it back gives every field back,
    /// and writing the result again gives the same bytes.
    #[test]
    fn token_file_format1_round_trips_every_field(f in fields()) {
        let token = token_of(&f);
        let json = to_format1_json(&token);
        let back = parse_token(json.as_bytes(), None).map_err(TestCaseError::fail)?;
        let claims = decode_jwt_claims(&f.access_token);

        prop_assert_eq!(back.access_token.expose(), f.access_token.as_str());
        prop_assert_eq!(&back.token_type, &f.token_type);
        prop_assert_eq!(back.extended_token.as_ref().map(Secret::expose), f.extended_token.as_deref());
        let expected_user = f.user_id.clone().or_else(|| claims.as_ref().and_then(|c| c.sub.clone()));
        prop_assert_eq!(&back.user_id, &expected_user);
        prop_assert_eq!(&back.user_name, &f.user_name);
        prop_assert_eq!(&back.email, &f.email);
        let jwt_iat = claims.as_ref().and_then(|c| c.iat).and_then(from_epoch_seconds);
        prop_assert_eq!(back.issued_at, f.issued_at.map(at).or(jwt_iat));
        // The expiry is the earliest of the file's, the JWT's exp and the 03:30 IST rule.
        let jwt_exp = claims.as_ref().and_then(|c| c.exp).and_then(from_epoch_seconds);
        let rule = match f.issued_at {
            Some(i) => (Some(upstox_expiry(at(i))), ExpirySource::RuleFromIssuedAt),
            None => (jwt_iat.map(upstox_expiry), ExpirySource::RuleFromJwtIat),
        };
        let (want, source) = earliest(&[
            (Some(at(f.expires_at)), ExpirySource::ExpiresAt),
            (jwt_exp, ExpirySource::JwtExp),
            rule,
        ])
        .unwrap();
        prop_assert_eq!(back.expires_at, want);
        prop_assert_eq!(back.expiry_source, source);
        prop_assert_eq!(&back.obtained_via, &f.obtained_via);
        prop_assert_eq!(back.format, TokenFileFormat::Format1);
        if claims.is_none() && source == ExpirySource::ExpiresAt {
            prop_assert_eq!(to_format1_json(&back), json);
        }
    }

    /// One instant, written as epoch seconds, epoch milliseconds (number or text), or RFC 3339
    /// in any offset, reads back as that instant in every time field, and the 03:30 IST rule is
    /// applied to `issued_at`/`created_at` when there is no `expires_at`.
    #[test]
    fn token_file_time_fields_accept_every_encoding_of_one_instant(
        ms in (PLAUSIBLE_SECS.start * 1000)..(PLAUSIBLE_SECS.end * 1000 - 86_400_000),
        how in any::<u8>(),
        offset_minutes in -(23 * 60 + 59)..(23 * 60 + 59),
        field in prop_oneof![Just("expires_at"), Just("issued_at"), Just("created_at")],
        token in jwt_like_token(),
    ) {
        let text = format!(
            r#"{{"access_token":"{token}","{field}":{}}}"#,
            encode_time(ms, how, offset_minutes)
        );
        let t = parse_token(text.as_bytes(), None).map_err(TestCaseError::fail)?;
        let want = decoded_time(ms, how);
        match field {
            "expires_at" => {
                prop_assert_eq!(t.expires_at, want);
                prop_assert_eq!(t.expiry_source, ExpirySource::ExpiresAt);
                prop_assert_eq!(t.format, TokenFileFormat::Legacy);
            }
            "issued_at" => {
                prop_assert_eq!(t.issued_at, Some(want));
                prop_assert_eq!(t.expires_at, upstox_expiry(want));
                prop_assert_eq!(t.expiry_source, ExpirySource::RuleFromIssuedAt);
            }
            _ => {
                prop_assert_eq!(t.issued_at, Some(want));
                prop_assert_eq!(t.expires_at, upstox_expiry(want));
                prop_assert_eq!(t.expiry_source, ExpirySource::RuleFromCreatedAt);
                prop_assert_eq!(t.format, TokenFileFormat::UpstoxResponse);
            }
        }
    }

    /// A file holding only a JWT takes its expiry from `exp` when plausible, else the 03:30
    /// rule from `iat`, else from the file's mtime, else it is refused — without quoting it.
    #[test]
    fn raw_jwt_file_takes_expiry_from_exp_then_iat_then_mtime(
        exp in prop_oneof![PLAUSIBLE_SECS.prop_map(Some), any::<i64>().prop_map(Some), Just(None)],
        iat in prop_oneof![PLAUSIBLE_SECS.prop_map(Some), any::<i64>().prop_map(Some), Just(None)],
        mtime in proptest::option::of(PLAUSIBLE_SECS),
        sub in "[A-Z0-9]{6}",
        pad in any::<bool>(),
        newline in any::<bool>(),
    ) {
        let mut claims = json!({ "sub": sub, "jti": "x" });
        if let Some(e) = exp { claims["exp"] = e.into(); }
        if let Some(i) = iat { claims["iat"] = i.into(); }
        let token = jwt_with(&claims, pad);
        let file = if newline { format!("{token}\n") } else { token.clone() };
        let got = parse_token(file.as_bytes(), mtime.map(at));
        let exp_t = exp.and_then(from_epoch_seconds);
        let iat_t = iat.and_then(from_epoch_seconds);
        // The earlier of exp and the 03:30 IST rule from iat; the mtime only without both.
        let want = earliest(&[
            (exp_t, ExpirySource::JwtExp),
            (iat_t.map(upstox_expiry), ExpirySource::RuleFromJwtIat),
        ])
        .or_else(|| mtime.map(|m| (upstox_expiry(at(m)), ExpirySource::RuleFromFileMtime)));
        match (got, want) {
            (Ok(t), Some((e, src))) => {
                prop_assert_eq!(t.expires_at, e);
                prop_assert_eq!(t.expiry_source, src);
                prop_assert_eq!(t.user_id.as_deref(), Some(sub.as_str()));
                prop_assert_eq!(t.issued_at, iat_t);
                prop_assert_eq!(t.format, TokenFileFormat::Raw);
                prop_assert_eq!(t.access_token.expose(), token.as_str());
            }
            (Err(e), None) => prop_assert!(!e.contains(&token), "{}", e),
            (got, want) => prop_assert!(false, "got {:?}, want {:?}", got.map(|t| t.expires_at), want),
        }
    }

    /// Broken files of every kind — the token in the wrong field, a wrong type, a file cut
    /// off anywhere, the token next to a space — fail with a reason that never contains it.
    #[test]
    fn token_file_errors_never_quote_the_token(
        token in jwt_like_token(),
        how in 0u8..12,
        cut in any::<prop::sample::Index>(),
        junk in "[ -~]{0,20}",
    ) {
        let full = format!(
            r#"{{"format":1,"access_token":"{token}","expires_at":"2026-11-27T03:30:00+05:30","user_id":"AB1234"}}"#
        );
        let text = match how {
            0 => full[..cut.index(full.len())].to_string(),
            1 => format!(r#"{{"access_token":"{token}","expires_at":"{token}"}}"#),
            2 => format!(r#"{{"access_token":"{token}","issued_at":"{token}"}}"#),
            3 => format!(r#"{{"access_token":"{token}","created_at":["{token}"]}}"#),
            4 => format!(r#"{{"access_token":"{token}","format":"{token}"}}"#),
            5 => format!(r#"{{"access_token":"{token}","user_id":{{"{token}":1}}}}"#),
            6 => format!(r#"{{"access_token":"{token} {junk}","expires_at":1}}"#),
            7 => format!("{token} {junk}"),
            8 => format!("{token}\n{token}"),
            9 => format!(r#"{{"access_token":["{token}"]}}"#),
            10 => format!(r#"{{"access_token":"{token}","extended_token":{{"t":"{token}"}},"expires_at":1}}"#),
            _ => format!(r#"{{"access_token":"{token}"{junk}"#),
        };
        if let Err(e) = parse_token(text.as_bytes(), None) {
            prop_assert!(!e.contains(&token), "{}", e);
        } else {
            // Only a cut that kept the whole object can parse.
            prop_assert!(how == 0 && text == full, "accepted {}", text);
        }
    }

    /// Odd time values (NaN-like text, huge numbers, impossible dates) never panic, and a token
    /// that parses always has an expiry in 2000..2200.
    #[test]
    fn token_file_odd_time_values_stay_in_range(
        field in prop_oneof![Just("expires_at"), Just("issued_at"), Just("created_at")],
        value in prop_oneof![
            odd_text().prop_map(|s| serde_json::to_string(&s).unwrap()),
            odd_number_literal(),
            json_value().prop_map(|v| v.to_string()),
        ],
        mtime in proptest::option::of(any::<i64>()),
    ) {
        let text = format!(r#"{{"access_token":"abcdefghijklmnopqrstuvwx","{field}":{value}}}"#);
        let mtime = mtime.and_then(|s| DateTime::from_timestamp(s, 0));
        if let Ok(t) = parse_token(text.as_bytes(), mtime) {
            prop_assert!(t.expires_at >= at(PLAUSIBLE_SECS.start), "{}", t.expires_at);
            prop_assert!(t.expires_at <= upstox_expiry(at(PLAUSIBLE_SECS.end)), "{}", t.expires_at);
            if let Some(i) = t.issued_at {
                prop_assert!(PLAUSIBLE_SECS.contains(&i.timestamp()), "{}", i);
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(24))]

    /// Big inputs (up to and past the 64 KiB file limit), invalid UTF-8 and deep nesting
    /// never panic the parser, and a reader of the same bytes on disk agrees with it.
    #[test]
    fn token_file_big_or_binary_input_never_panics_and_the_reader_agrees(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..80_000),
            (1usize..20_000).prop_map(|d| nested(d, "[", "]", "1").into_bytes()),
            (1usize..20_000).prop_map(|d| format!(r#"{{"access_token":"abcdefghij","x":{}}}"#, nested(d, "{\"a\":", "}", "0")).into_bytes()),
            (0usize..70_000).prop_map(|n| format!("eyJ{}", "A".repeat(n)).into_bytes()),
            (0usize..70_000).prop_map(|n| format!(r#"{{"access_token":"{}","expires_at":1}}"#, "x".repeat(n)).into_bytes()),
            vec(any::<u8>(), 0..64).prop_map(|mut b| { b.splice(0..0, b"\xEF\xBB\xBF{\"access_token\":\"".iter().copied()); b }),
        ],
    ) {
        let _ = parse_token(&bytes, None);
        let direct = parse_token(&bytes, Some(at(1_764_128_520)));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upstox_token.json");
        std::fs::write(&path, &bytes).unwrap();
        let raw = read_token_bytes(&path).map_err(|e| TestCaseError::fail(e.to_string()))?.unwrap();
        if bytes.len() as u64 > tokenwatch::token::file::MAX_TOKEN_FILE_BYTES {
            prop_assert!(raw.parsed.is_err());
            prop_assert!(raw.bytes.is_empty());
        } else {
            prop_assert_eq!(&raw.bytes, &bytes);
            // The file's mtime is "now", so only the verdict and the token have to agree.
            prop_assert_eq!(raw.parsed.is_ok(), direct.is_ok(), "{:?} vs {:?}", raw.parsed.as_ref().err(), direct.as_ref().err());
            if let (Ok(a), Ok(b)) = (&raw.parsed, &direct) {
                prop_assert!(a.access_token.same_as(&b.access_token));
            }
            let via_file = read_token_file(&path);
            prop_assert_eq!(via_file.is_ok(), direct.is_ok());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JWT
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(256))]

    /// Any claims object decodes to its `exp`, `iat` and `sub` — whatever else it holds, in
    /// any key order, padded or not; claims of the wrong type are skipped, not fatal.
    #[test]
    fn jwt_claims_round_trip_with_any_other_claims(
        exp in proptest::option::of(any::<i64>()),
        iat in proptest::option::of(any::<i64>()),
        sub in proptest::option::of("\\PC{0,40}"),
        extra in vec(("[a-z]{1,10}", json_value()), 0..6),
        wrong_exp in proptest::option::of(prop_oneof![
            odd_text().prop_map(Value::String),
            Just(json!([1751666400])),
            Just(json!({"v": 1})),
            Just(Value::Bool(true)),
        ]),
        pad in any::<bool>(),
    ) {
        let mut claims = Map::new();
        for (k, v) in extra {
            if !matches!(k.as_str(), "exp" | "iat" | "sub") {
                claims.insert(k, v);
            }
        }
        match (&wrong_exp, exp) {
            (Some(w), _) => { claims.insert("exp".into(), w.clone()); }
            (None, Some(e)) => { claims.insert("exp".into(), e.into()); }
            (None, None) => {}
        }
        if let Some(i) = iat { claims.insert("iat".into(), i.into()); }
        if let Some(s) = &sub { claims.insert("sub".into(), s.clone().into()); }
        let token = jwt_with(&Value::Object(claims), pad);
        let got = decode_jwt_claims(&token).ok_or_else(|| TestCaseError::fail("not decoded"))?;
        prop_assert_eq!(got.exp, if wrong_exp.is_some() { None } else { exp });
        prop_assert_eq!(got.iat, iat);
        prop_assert_eq!(got.sub, sub);
    }

    /// Only three dot-separated parts with a base64url JSON object in the middle decode; any
    /// other shape is `None`, never a panic.
    #[test]
    fn jwt_wrong_shapes_are_never_decoded(
        parts in 0usize..7,
        payload in prop_oneof![
            json_value().prop_filter("not an object", |v| !v.is_object()).prop_map(|v| URL_SAFE_NO_PAD.encode(v.to_string())),
            vec(any::<u8>(), 0..200).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
            "[ -~]{0,100}",
            (1usize..5_000).prop_map(|d| URL_SAFE_NO_PAD.encode(nested(d, "{\"a\":", "}", "1"))),
        ],
        object_payload in any::<bool>(),
    ) {
        let object = URL_SAFE_NO_PAD.encode(r#"{"exp":1751666400}"#);
        let middle = if object_payload { object } else { payload.clone() };
        let token = match parts {
            3 => format!("h.{middle}.s"),
            n => std::iter::repeat_n(middle.as_str(), n).collect::<Vec<_>>().join("."),
        };
        let got = decode_jwt_claims(&token);
        if parts != 3 {
            prop_assert_eq!(got, None);
        } else if object_payload {
            prop_assert_eq!(got.and_then(|c| c.exp), Some(1_751_666_400));
        } else if let Some(c) = got {
            // Random bytes may happen to be a JSON object; then it must really be one.
            let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert!(v.is_object(), "{:?} decoded from {}", c, payload);
        }
    }
}

proptest! {
    #![proptest_config(cases(24))]

    /// Huge tokens, huge payloads and deep nesting inside a well-formed JWT never panic.
    #[test]
    fn jwt_huge_or_deep_payloads_never_panic(
        depth in 1usize..50_000,
        len in 0usize..100_000,
        bytes in vec(any::<u8>(), 0..4096),
    ) {
        let deep = URL_SAFE_NO_PAD.encode(nested(depth, "[", "]", "0"));
        prop_assert_eq!(decode_jwt_claims(&format!("h.{deep}.s")), None);
        let long = "A".repeat(len);
        let _ = decode_jwt_claims(&format!("h.{long}.s"));
        let text = String::from_utf8_lossy(&bytes);
        let _ = decode_jwt_claims(&text);
        let _ = decode_jwt_claims(&format!("h.{}.s", URL_SAFE_NO_PAD.encode(&bytes)));
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth callback query and pasted address
// ---------------------------------------------------------------------------------------------

/// Form-encode `s`, choosing per byte between the literal character (where that is safe),
/// `+` for a space, and `%XX` in upper or lower case — every spelling a server may send.
fn form_encode(s: &str, choices: &[u8]) -> String {
    let mut out = String::new();
    for (i, b) in s.bytes().enumerate() {
        let c = choices.get(i % choices.len().max(1)).copied().unwrap_or(0) % 3;
        let safe_literal = b.is_ascii_alphanumeric() || b"-._~!$'()*,;:@/?".contains(&b);
        match (b, c) {
            (b' ', 0) => out.push('+'),
            (_, 0 | 1) if safe_literal => out.push(b as char),
            _ if i % 2 == 0 => out.push_str(&format!("%{b:02X}")),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

const RESERVED: [&str; 4] = ["state", "code", "error", "error_description"];

/// A callback query carrying `code` and `state` among extra parameters, every value encoded
/// in its own way, with later duplicates of `code`/`state` that must be ignored.
#[derive(Debug, Clone)]
struct Query {
    code: String,
    state: String,
    text: String,
}

fn code_text() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9]{6,40}", "\\PC{1,40}"]
        .prop_map(|s| s.trim().to_owned())
        .prop_filter("non-empty", |s| !s.is_empty())
}

fn state_text() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9_-]{43}", "\\PC{1,50}"]
}

fn query() -> impl Strategy<Value = Query> {
    (
        code_text(),
        state_text(),
        vec(("[a-z_]{1,12}", "\\PC{0,30}"), 0..5),
        vec(any::<u8>(), 1..16),
        any::<bool>(),
        any::<bool>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(
            |(code, state, extras, choices, state_first, duplicates, at)| {
                let mut pairs: Vec<String> = extras
                    .iter()
                    .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
                    .map(|(k, v)| format!("{k}={}", form_encode(v, &choices)))
                    .collect();
                let c = format!("code={}", form_encode(&code, &choices));
                let s = format!("state={}", form_encode(&state, &choices[1..]));
                let (first, second) = if state_first { (s, c) } else { (c, s) };
                let i = at.index(pairs.len() + 1);
                pairs.insert(i, second);
                pairs.insert(i, first);
                if duplicates {
                    pairs.push("code=someone-elses-code".into());
                    pairs.push("state=forged".into());
                }
                Query {
                    code,
                    state,
                    text: pairs.join("&"),
                }
            },
        )
}

fn redirect_base() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("http"), Just("https"), Just("HTTP")],
        prop_oneof![
            Just("localhost"),
            Just("127.0.0.1"),
            Just("[::1]"),
            Just("example.com")
        ],
        proptest::option::of(1u16..),
        "(/[a-z0-9]{1,10}){0,3}/?",
    )
        .prop_map(|(scheme, host, port, path)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}://{host}{port}{path}")
        })
}

fn blank() -> impl Strategy<Value = String> {
    "[ \t\r\n]{0,4}"
}

proptest! {
    #![proptest_config(cases(256))]

    /// A callback with the login's state hands back exactly its code, whatever the encoding,
    /// the extra parameters, their order, and any later duplicates.
    #[test]
    fn callback_query_gives_back_the_exact_code(q in query()) {
        let got = read_callback(Some(&q.text), &Secret::new(q.state.clone()));
        match got {
            Ok(Callback::Code(c)) => prop_assert_eq!(c.expose(), q.code.as_str()),
            other => prop_assert!(false, "{:?} for {}", other, q.text),
        }
    }

    /// A wrong or missing state is refused whatever else the query carries (even a code or an
    /// error), and the refusal never contains the code, the state or the expected state.
    #[test]
    fn callback_query_with_a_wrong_or_missing_state_is_refused(
        q in query(),
        expected in state_text(),
        drop_state in any::<bool>(),
        with_error in any::<bool>(),
    ) {
        prop_assume!(expected != q.state);
        let mut text = q.text.clone();
        if drop_state {
            text = text
                .split('&')
                .filter(|p| !p.starts_with("state="))
                .collect::<Vec<_>>()
                .join("&");
        }
        if with_error {
            text.push_str("&error=access_denied");
        }
        let got = read_callback(Some(&text), &Secret::new(expected.clone()));
        let want = if drop_state { CallbackProblem::MissingState } else { CallbackProblem::WrongState };
        match got {
            Err(p) => {
                prop_assert_eq!(&p, &want);
                let shown = p.to_string();
                // Values of 12+ characters cannot be a word of the fixed reasons by chance.
                for secret in [&q.code, &q.state, &expected] {
                    prop_assert!(secret.chars().count() < 12 || !shown.contains(secret.as_str()), "{}", shown);
                }
            }
            Ok(c) => prop_assert!(false, "accepted {:?} for {}", c, text),
        }
    }

    /// `error=` with the right state is a denial: its text is Upstox's, without control
    /// characters and at most 300 characters, and it wins over a code.
    #[test]
    fn callback_error_with_the_right_state_is_a_clean_denial(
        state in state_text(),
        error in "\\PC{1,400}|[\\x00-\\x1f\\x7f a-z]{1,50}",
        description in proptest::option::of(any::<String>()),
        choices in vec(any::<u8>(), 1..8),
    ) {
        let mut text = format!(
            "state={}&code=abc&error={}",
            form_encode(&state, &choices),
            form_encode(&error, &choices)
        );
        if let Some(d) = &description {
            text.push_str(&format!("&error_description={}", form_encode(d, &choices)));
        }
        prop_assume!(text.len() <= 8 * 1024);
        let got = read_callback(Some(&text), &Secret::new(state.clone()));
        let clean = |s: &str| -> String { tokenwatch::printable::printable(s).chars().take(300).collect::<String>().trim().to_owned() };
        if error.trim().is_empty() {
            prop_assert!(matches!(got, Ok(Callback::Code(_))), "{:?}", got);
            return Ok(());
        }
        match got {
            Ok(Callback::Denied { error: e, description: d }) => {
                prop_assert!(e.chars().count() <= 300);
                prop_assert!(!e.chars().any(char::is_control));
                prop_assert_eq!(&e, &clean(&error));
                let want_d = description.as_deref().filter(|d| !d.trim().is_empty()).map(clean);
                prop_assert_eq!(&d, &want_d);
                let shown = Callback::Denied { error: e, description: d }.denial_text().unwrap();
                prop_assert!(!shown.chars().any(char::is_control), "{:?}", shown);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// Any text at all, as a query or as a pasted address, is answered without a panic; a
    /// code only ever comes with the expected state.
    #[test]
    fn callback_and_paste_never_panic_and_never_skip_the_state_check(
        text in prop_oneof![
            any::<String>(),
            "[ -~]{0,200}",
            "(code|state|error|&|=|%[0-9A-Fa-f]{0,2}|\\?|#|[a-z]{1,3}){0,60}",
            (0usize..20_000).prop_map(|n| format!("state=s&code={}", "c".repeat(n))),
            vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ],
        state in state_text(),
    ) {
        let secret = Secret::new(state.clone());
        for got in [read_callback(Some(&text), &secret), read_pasted(&text, &secret)] {
            if got.is_ok() {
                let q = text.split_once('?').map_or(text.as_str(), |(_, q)| q);
                let states: Vec<String> = url::form_urlencoded::parse(q.trim().as_bytes())
                    .filter(|(k, _)| k == "state")
                    .map(|(_, v)| v.into_owned())
                    .collect();
                prop_assert!(states.contains(&state), "accepted {:?} without state {:?}", text, state);
            }
        }
    }

    /// The whole redirected address, the bare `?query` or the query alone, with any blank
    /// space around it, gives back the exact code.
    #[test]
    fn pasted_address_with_blank_space_around_it_gives_the_code(
        q in query(),
        base in redirect_base(),
        shape in 0u8..3,
        before in blank(),
        after in blank(),
        fragment in proptest::option::of("#[a-z0-9=&]{0,20}"),
    ) {
        let core = match shape {
            0 => format!("{base}?{}{}", q.text, fragment.unwrap_or_default()),
            1 => format!("?{}", q.text),
            _ => q.text.clone(),
        };
        let pasted = format!("{before}{core}{after}");
        match read_pasted(&pasted, &Secret::new(q.state.clone())) {
            Ok(Callback::Code(c)) => prop_assert_eq!(c.expose(), q.code.as_str()),
            other => prop_assert!(false, "{:?} for {:?}", other, pasted),
        }
    }

    /// A pasted address is refused, not mangled, when it carries blank space inside or the
    /// wrong state; refusals never contain the code.
    #[test]
    fn pasted_address_with_a_wrong_state_or_inner_space_is_refused(
        q in query(),
        base in redirect_base(),
        other_state in state_text(),
        split_at in any::<prop::sample::Index>(),
        inner in "[ \t\n]{1,3}",
        wrong_state in any::<bool>(),
    ) {
        let full = format!("{base}?{}", q.text);
        let (pasted, expected) = if wrong_state {
            prop_assume!(other_state != q.state);
            (full, other_state)
        } else {
            let i = split_at.index(full.len() - 1) + 1;
            prop_assume!(full.is_char_boundary(i));
            (format!("{}{inner}{}", &full[..i], &full[i..]), q.state.clone())
        };
        match read_pasted(&pasted, &Secret::new(expected)) {
            Err(p) => {
                if !wrong_state {
                    prop_assert_eq!(&p, &CallbackProblem::NotAnAddress);
                }
                prop_assert!(q.code.len() < 12 || !p.to_string().contains(&q.code));
            }
            Ok(c) => prop_assert!(false, "accepted {:?} from {:?}", c, pasted),
        }
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// Users copy addresses out of chat apps, Markdown and shell history wrapped in quotes or
    /// angle brackets. Such a paste must give the exact code — at the very least it must never
    /// give a different code (Upstox codes are single-use, so a mangled code burns the login).
    #[test]
    fn pasted_address_in_quotes_or_brackets_gives_the_code(
        q in query(),
        base in redirect_base(),
        wrap in prop_oneof![Just(("\"", "\"")), Just(("'", "'")), Just(("<", ">")), Just(("`", "`")), Just(("", "\"")), Just(("", ">"))],
    ) {
        let pasted = format!("{}{base}?{}{}", wrap.0, q.text, wrap.1);
        match read_pasted(&pasted, &Secret::new(q.state.clone())) {
            Ok(Callback::Code(c)) => prop_assert_eq!(c.expose(), q.code.as_str()),
            other => prop_assert!(false, "{:?} for {:?}", other, pasted),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// v3 notifier webhook payload
// ---------------------------------------------------------------------------------------------

const CLIENT_ID: &str = "615b1297-3e0a-4c1b-9a52-0f2d3b1c9e77";

fn expectation(user: Option<&str>) -> Expectation {
    Expectation {
        client_id: CLIENT_ID.into(),
        user_id: user.map(str::to_owned),
    }
}

/// A delivery Upstox could really send at `now_ms`, with an acceptable expiry.
#[derive(Debug, Clone)]
struct Delivery {
    now_ms: i64,
    expires_ms: i64,
    issued_ms: Option<i64>,
    token: String,
    user: String,
    as_number: bool,
}

impl Delivery {
    fn latest_ms(now_ms: i64) -> i64 {
        let skew = ChronoDuration::from_std(EXPIRY_SKEW).unwrap();
        (upstox_expiry(at_ms(now_ms) + skew) + skew).timestamp_millis()
    }

    fn body(&self) -> Map<String, Value> {
        let ms = |v: i64| {
            if self.as_number {
                json!(v)
            } else {
                json!(v.to_string())
            }
        };
        let mut m = Map::new();
        m.insert("client_id".into(), json!(CLIENT_ID));
        m.insert("user_id".into(), json!(self.user));
        m.insert("access_token".into(), json!(self.token));
        m.insert("token_type".into(), json!("Bearer"));
        m.insert("expires_at".into(), ms(self.expires_ms));
        if let Some(i) = self.issued_ms {
            m.insert("issued_at".into(), ms(i));
        }
        m.insert("message_type".into(), json!("access_token"));
        m
    }
}

fn delivery() -> impl Strategy<Value = Delivery> {
    (
        (PLAUSIBLE_SECS.start * 1000)..(PLAUSIBLE_SECS.end * 1000 - 3 * 86_400_000),
        any::<u64>(),
        proptest::option::of(any::<u64>()),
        // Short tokens too: a value under 40 characters may be echoed, so only the overlap
        // check keeps those out of the reason.
        prop_oneof![jwt_like_token(), "[A-Za-z0-9_-]{20,40}"],
        prop_oneof![Just("AB1234"), Just("ab1234"), Just("Ab1234")],
        any::<bool>(),
    )
        .prop_map(|(now_ms, r, issued, token, user, as_number)| {
            let span = (Delivery::latest_ms(now_ms) - now_ms) as u64;
            let expires_ms = now_ms + 1 + (r % span) as i64;
            Delivery {
                now_ms,
                expires_ms,
                // Upstox issues the token shortly before it delivers it.
                issued_ms: issued.map(|i| now_ms - (i % 3_600_000) as i64),
                token,
                user: user.to_string(),
                as_number,
            }
        })
}

/// One thing wrong with an otherwise good delivery, and the rejection it must get.
#[derive(Debug, Clone)]
enum Fault {
    WrongMessageType(Value),
    WrongClient(Option<Value>),
    WrongUser(Option<Value>),
    NoToken(Option<Value>),
    Expired(i64),
    TooLate(i64),
    BadExpiry(Value),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        prop_oneof![
            Just(json!("order_update")),
            Just(json!("ACCESS_TOKEN")),
            Just(json!(" access_token")),
            Just(json!("TOKEN")),
            Just(json!("TOKEN-suffix")),
            Just(json!("x-TOKEN-x")),
            Just(json!(["TOKEN"])),
            json_value(),
        ]
        .prop_filter("not the real thing", |v| v != &json!("access_token")
            && !v.is_null())
        .prop_map(Fault::WrongMessageType),
        proptest::option::of(prop_oneof![
            Just(json!(CLIENT_ID.to_uppercase())),
            Just(json!("TOKEN")),
            Just(json!(1234)),
            "[a-f0-9-]{1,36}".prop_map(Value::from),
        ])
        .prop_map(Fault::WrongClient),
        proptest::option::of(prop_oneof![
            Just(json!("AB12345")),
            Just(json!("TOKEN")),
            Just(json!("")),
            Just(json!(1234)),
            "[A-Z]{2}[0-9]{4}"
                .prop_filter("other user", |u| u != "AB1234")
                .prop_map(Value::from),
        ])
        .prop_map(Fault::WrongUser),
        proptest::option::of(prop_oneof![
            Just(json!("")),
            Just(json!("   \t\n")),
            Just(Value::Null),
            Just(json!(12345)),
            Just(json!(["TOKEN"])),
        ])
        .prop_map(Fault::NoToken),
        (0i64..20 * 365 * 86_400_000).prop_map(Fault::Expired),
        (1i64..20 * 365 * 86_400_000).prop_map(Fault::TooLate),
        prop_oneof![
            Just(json!("TOKEN")),
            Just(json!("1731448800000TOKEN")),
            Just(json!(i64::MAX)),
            Just(json!(i64::MIN)),
            Just(json!(u64::MAX)),
            Just(json!(1.5e300)),
            Just(json!(1.5)),
            Just(json!({"ms": 1})),
            Just(json!("")),
            odd_text()
                .prop_filter("not digits", |s| s.trim().parse::<i64>().is_err())
                .prop_map(Value::from),
        ]
        .prop_map(Fault::BadExpiry),
    ]
}

/// True when `shown` contains any 8 consecutive characters of `token`: the notifier promises
/// never to echo a value sharing that much with the token.
fn shares_a_piece(shown: &str, token: &str) -> bool {
    let chars: Vec<char> = token.chars().collect();
    chars
        .windows(8)
        .any(|w| shown.contains(&w.iter().collect::<String>()))
}

/// Put the token text wherever the fault says `TOKEN`.
fn with_token(v: &Value, token: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("TOKEN", token)),
        Value::Array(a) => Value::Array(a.iter().map(|v| with_token(v, token)).collect()),
        other => other.clone(),
    }
}

fn set_or_remove(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    match v {
        Some(v) => m.insert(key.into(), v),
        None => m.remove(key),
    };
}

proptest! {
    #![proptest_config(cases(256))]

    /// A good delivery is accepted and read exactly: the token, the expiry, the issue time
    /// (or now), the user as sent, obtained via `token-request`.
    #[test]
    fn notifier_good_delivery_is_read_exactly(d in delivery(), know_user in any::<bool>()) {
        let body = serde_json::to_vec(&d.body()).unwrap();
        let now = at_ms(d.now_ms);
        let got = check_delivery(&body, &expectation(know_user.then_some("ab1234")), now);
        // The earliest of the claim, the token's JWT exp and the 03:30 IST rule from the issue
        // time; a token that by these has already ended is refused.
        let issued = d.issued_ms.map_or(now, at_ms);
        let jwt_exp = decode_jwt_claims(&d.token).and_then(|c| c.exp).and_then(from_epoch_seconds);
        let (want, source) = earliest(&[
            (Some(at_ms(d.expires_ms)), ExpirySource::ExpiresAt),
            (jwt_exp, ExpirySource::JwtExp),
            (Some(upstox_expiry(issued)), ExpirySource::RuleFromIssuedAt),
        ])
        .unwrap();
        if want <= now {
            prop_assert!(matches!(got, Err(Rejection::BadExpiry(_))), "{:?}", got.map(|t| t.expires_at));
            return Ok(());
        }
        let t = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(t.access_token.expose(), d.token.as_str());
        prop_assert_eq!(t.expires_at, want);
        prop_assert_eq!(t.issued_at, Some(issued));
        prop_assert_eq!(t.user_id.as_deref(), Some(d.user.as_str()));
        prop_assert_eq!(t.obtained_via.as_deref(), Some("token-request"));
        prop_assert_eq!(t.expiry_source, source);
    }

    /// A delivery with one thing wrong — message type, client, user, token, expiry — gets
    /// exactly that rejection, with status 400 and a reason that never contains the token nor
    /// any 8-character piece of it.
    #[test]
    fn notifier_bad_delivery_is_rejected_without_quoting_the_token(d in delivery(), f in fault()) {
        let mut m = d.body();
        let now = at_ms(d.now_ms);
        let token = d.token.clone();
        let want: fn(&Rejection) -> bool = match &f {
            Fault::WrongMessageType(v) => {
                m.insert("message_type".into(), with_token(v, &token));
                |r| matches!(r, Rejection::WrongMessageType(_))
            }
            Fault::WrongClient(v) => {
                set_or_remove(&mut m, "client_id", v.as_ref().map(|v| with_token(v, &token)));
                |r| matches!(r, Rejection::WrongClient)
            }
            Fault::WrongUser(v) => {
                set_or_remove(&mut m, "user_id", v.as_ref().map(|v| with_token(v, &token)));
                |r| matches!(r, Rejection::WrongUser)
            }
            Fault::NoToken(v) => {
                set_or_remove(&mut m, "access_token", v.as_ref().map(|v| with_token(v, &token)));
                |r| matches!(r, Rejection::NoToken)
            }
            Fault::Expired(back) => {
                m.insert("expires_at".into(), json!((d.now_ms - back).to_string()));
                |r| matches!(r, Rejection::BadExpiry(_))
            }
            Fault::TooLate(ahead) => {
                m.insert("expires_at".into(), json!(Delivery::latest_ms(d.now_ms) + ahead));
                |r| matches!(r, Rejection::BadExpiry(_))
            }
            Fault::BadExpiry(v) => {
                m.insert("expires_at".into(), with_token(v, &token));
                |r| matches!(r, Rejection::BadExpiry(_))
            }
        };
        let body = serde_json::to_vec(&m).unwrap();
        match check_delivery(&body, &expectation(Some("AB1234")), now) {
            Ok(_) => prop_assert!(false, "accepted with {:?}", f),
            Err(r) => {
                prop_assert!(want(&r), "{:?} gave {:?}", f, r);
                prop_assert_eq!(r.status_code(), 400);
                let shown = r.to_string();
                prop_assert!(!shares_a_piece(&shown, &token), "{}", shown);
                prop_assert!(!shares_a_piece(&format!("{r:?}"), &token), "{:?}", r);
            }
        }
    }

    /// Whatever any field holds — including the token itself, pieces of it, or it wrapped in
    /// other text — no rejection ever contains the token nor any 8-character piece of it.
    #[test]
    fn notifier_rejections_never_contain_the_token(
        d in delivery(),
        key in prop_oneof![Just("message_type"), Just("client_id"), Just("user_id"), Just("expires_at"), Just("issued_at"), Just("access_token")],
        prefix in "[ -~]{0,10}",
        suffix in "[ -~]{0,10}",
        window in (0usize..40, 8usize..60),
        shape in 0u8..4,
    ) {
        let token = d.token.clone();
        let (start, len) = window;
        let piece: String = token.chars().skip(start).take(len).collect();
        let v = match shape {
            0 => json!(format!("{prefix}{token}{suffix}")),
            1 => json!(format!("{prefix}{piece}{suffix}")),
            2 => json!([format!("{prefix}{token}")]),
            _ => json!({ "v": token }),
        };
        let mut m = d.body();
        if key == "access_token" {
            // A second, different secret is what must stay hidden now.
            m.insert("message_type".into(), v);
        } else {
            m.insert(key.into(), v);
        }
        let body = serde_json::to_vec(&m).unwrap();
        if let Err(r) = check_delivery(&body, &expectation(Some("AB1234")), at_ms(d.now_ms)) {
            prop_assert!(!shares_a_piece(&r.to_string(), &token), "{}", r);
        }
    }

    /// A delivery tokenwatch accepts becomes a token file tokenwatch can read back: the same
    /// token and expiry (to the second), whatever `issued_at` the payload carried.
    #[test]
    fn notifier_accepted_delivery_is_a_token_file_tokenwatch_can_read(
        d in delivery(),
        issued in prop_oneof![
            Just(0i64),
            Just(1_731_412_800),          // epoch seconds where milliseconds belong
            (-8_334_601_228_800_000i64..0),
            any::<i64>(),
        ],
    ) {
        let mut m = d.body();
        m.insert("issued_at".into(), json!(issued.to_string()));
        let now = at_ms(d.now_ms);
        let body = serde_json::to_vec(&m).unwrap();
        let t = check_delivery(&body, &expectation(Some("AB1234")), now)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = parse_token(to_format1_json(&t).as_bytes(), None)
            .map_err(|e| TestCaseError::fail(format!("issued_at {issued}: {e}")))?;
        prop_assert!(back.access_token.same_as(&t.access_token));
        prop_assert_eq!(back.expires_at.timestamp(), t.expires_at.timestamp());
    }
}

proptest! {
    #![proptest_config(cases(48))]

    /// Any bytes — binary, huge, deeply nested, JSON of any shape — are answered with a
    /// rejection or a token, never a panic; an accepted token always expires after `now`.
    #[test]
    fn notifier_any_body_never_panics(
        body in prop_oneof![
            vec(any::<u8>(), 0..70_000),
            json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            (1usize..30_000).prop_map(|d| nested(d, "[", "]", "").into_bytes()),
            (1usize..30_000).prop_map(|d| format!(r#"{{"message_type":"access_token","x":{}}}"#, nested(d, "{\"a\":", "}", "1")).into_bytes()),
            (json_value(), json_value(), json_value()).prop_map(|(e, i, u)| serde_json::to_vec(&json!({
                "message_type": "access_token", "client_id": CLIENT_ID, "user_id": u,
                "access_token": "eyJtoken", "expires_at": e, "issued_at": i,
            })).unwrap()),
        ],
        now_ms in prop_oneof![Just(0i64), (PLAUSIBLE_SECS.start * 1000)..(PLAUSIBLE_SECS.end * 1000)],
        user in proptest::option::of("[A-Z0-9]{0,8}"),
    ) {
        let now = at_ms(now_ms);
        if let Ok(t) = check_delivery(&body, &expectation(user.as_deref()), now) {
            prop_assert!(t.expires_at > now);
            prop_assert!(!t.access_token.expose().is_empty());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------------

#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct WithDuration {
    #[serde(with = "tokenwatch::config::duration")]
    d: Duration,
}

proptest! {
    #![proptest_config(cases(256))]

    /// What `config check` prints for a duration is read back as the same duration, through
    /// the parser and through the config's serde path, with blank space around it too.
    #[test]
    fn duration_format_then_parse_round_trips(
        secs in prop_oneof![0u64..4_000, 0u64..100 * 365 * 86_400, any::<u64>()],
        nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
        pad in blank(),
    ) {
        let d = Duration::new(secs, nanos);
        let text = humantime::format_duration(d).to_string();
        prop_assert_eq!(duration::parse(&text), Ok(d), "{}", text);
        prop_assert_eq!(duration::parse(&format!("{pad}{text}{pad}")), Ok(d));
        let json = serde_json::to_string(&WithDuration { d }).unwrap();
        let back: WithDuration = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.d, d);
    }

    /// Sums of units parse to the sum; bare numbers are refused with a hint to add a unit;
    /// huge, negative, NaN-like and garbage values are refused with a message, never a panic.
    #[test]
    fn duration_parse_sums_units_and_refuses_the_rest(
        parts in vec((0u64..10_000, prop_oneof![Just(("s", 1u64)), Just(("m", 60)), Just(("h", 3600)), Just(("d", 86_400)), Just(("min", 60)), Just(("sec", 1))]), 1..5),
        sep in prop_oneof![Just(""), Just(" "), Just("  ")],
        junk in prop_oneof![
            odd_text(),
            "\\PC{0,40}",
            "[0-9]{15,40}(ns|s|m|h|d|w|y|years)",
            "-[0-9]{1,5}[smhd]",
            (1usize..5_000).prop_map(|n| "9".repeat(n) + "s"),
            (1usize..2_000).prop_map(|n| "1s ".repeat(n)),
        ],
        bare in any::<u64>(),
    ) {
        let text = parts.iter().map(|(n, (u, _))| format!("{n}{u}")).collect::<Vec<_>>().join(sep);
        let want: u64 = parts.iter().map(|(n, (_, k))| n * k).sum();
        prop_assert_eq!(duration::parse(&text), Ok(Duration::from_secs(want)), "{}", text);

        if let Err(e) = duration::parse(&junk) {
            prop_assert!(e.contains("expected a duration"), "{}", e);
        }

        let yaml = format!("d: {bare}\n");
        let e = serde_yaml::from_str::<WithDuration>(&yaml).unwrap_err().to_string();
        prop_assert!(e.contains("with a unit"), "{}", e);
    }
}

// ---------------------------------------------------------------------------------------------
// Config file and .env
// ---------------------------------------------------------------------------------------------

/// A scratch folder with a home inside, and the environment that points there.
type Scratch = ConfigEnv;

impl ConfigEnv {
    fn load(&self, yaml: &[u8]) -> Result<config::Config, config::ConfigError> {
        let path = self.sb.write("tokenwatch.yaml", yaml);
        let opts = LoadOptions {
            config_file: Some(path),
            cwd: self.sb.root.clone(),
            ..Default::default()
        };
        config::load(&opts, &self.env, None)
    }
}

/// Config-shaped YAML: real sections and keys (and some unknown ones) with values of any type.
fn config_yaml() -> impl Strategy<Value = serde_yaml::Value> {
    let scalar = prop_oneof![
        Just(serde_yaml::Value::Null),
        any::<bool>().prop_map(serde_yaml::Value::Bool),
        any::<i64>().prop_map(|n| serde_yaml::Value::Number(n.into())),
        any::<f64>().prop_map(|f| serde_yaml::Value::Number(f.into())),
        odd_text().prop_map(serde_yaml::Value::String),
        prop_oneof![
            Just("30m"),
            Just("1h"),
            Just("0s"),
            Just("08:00"),
            Just("25:99"),
            Just("browser"),
            Just("token-request"),
            Just("none"),
            Just("http://localhost:5001/callback"),
            Just("127.0.0.1:8000"),
            Just("0.0.0.0:1"),
            Just("localhost:99999"),
            Just("~/x"),
            Just("ftp://x"),
            Just("info"),
            Just("LOUD"),
            Just(""),
        ]
        .prop_map(|s| serde_yaml::Value::String(s.into())),
        "\\PC{0,20}".prop_map(serde_yaml::Value::String),
    ];
    let value = scalar.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(serde_yaml::Value::Sequence),
            vec(("[a-z_]{1,8}", inner), 0..4).prop_map(|kv| serde_yaml::Value::Mapping(
                kv.into_iter()
                    .map(|(k, v)| (serde_yaml::Value::String(k), v))
                    .collect()
            )),
        ]
    });
    let sections = [
        (
            "upstox",
            &[
                "client_id",
                "client_secret",
                "redirect_uri",
                "api_base",
                "legacy_credentials",
            ][..],
        ),
        ("token", &["path", "backups", "env_file", "on_change"][..]),
        (
            "monitor",
            &[
                "check_interval",
                "refresh_before",
                "warning_before",
                "critical_before",
                "max_retries",
                "backoff_initial",
                "backoff_max",
            ][..],
        ),
        (
            "renew",
            &[
                "strategy",
                "not_before",
                "deadline",
                "command",
                "notifier_listen",
                "notifier_path",
            ][..],
        ),
        ("login", &["timeout", "browser_command"][..]),
        (
            "notifications",
            &["dismiss_after", "webhook_url", "command", "desktop"][..],
        ),
        ("server", &["listen", "allow_remote", "api_key"][..]),
        ("log", &["file", "level"][..]),
        ("accounts", &["main", "b-2", "bad name", ""][..]),
        ("mystery", &["x"][..]),
    ];
    let entry =
        (0..sections.len(), any::<prop::sample::Index>(), value).prop_map(move |(s, k, v)| {
            let (section, keys) = sections[s];
            (section, keys[k.index(keys.len())], v)
        });
    vec(entry, 0..8).prop_map(|entries| {
        let mut root = serde_yaml::Mapping::new();
        for (section, key, v) in entries {
            let s = root
                .entry(serde_yaml::Value::String(section.into()))
                .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
            if let serde_yaml::Value::Mapping(m) = s {
                m.insert(serde_yaml::Value::String(key.into()), v);
            }
        }
        serde_yaml::Value::Mapping(root)
    })
}

proptest! {
    #![proptest_config(cases(48))]

    /// Any bytes in the config file, and any config-shaped YAML, load or fail with a message
    /// naming the file — never a panic.
    #[test]
    fn config_file_any_content_loads_or_fails_cleanly(
        content in prop_oneof![
            vec(any::<u8>(), 0..2_000),
            "[ -~\n\t]{0,400}".prop_map(String::into_bytes),
            config_yaml().prop_map(|v| serde_yaml::to_string(&v).unwrap().into_bytes()),
            (1usize..3_000).prop_map(|d| format!("upstox: {}", nested(d, "[", "]", "1")).into_bytes()),
            (1usize..3_000).prop_map(|d| format!("upstox:\n{}", (0..d).map(|i| format!("{}a{i}:\n", " ".repeat(i))).collect::<String>()).into_bytes()),
        ],
    ) {
        let s = Scratch::new();
        match s.load(&content) {
            Ok(c) => {
                let shown = c.to_masked_yaml();
                prop_assert!(!shown.starts_with("# cannot show"), "{}", shown);
            }
            Err(e) => prop_assert!(!e.origin.is_empty() && !e.message.is_empty(), "{:?}", e),
        }
    }

    /// A client secret or API key in the config never appears in a load error nor in the
    /// masked configuration, whatever else in the file is broken and whatever its type.
    #[test]
    fn config_errors_and_masked_config_never_show_secrets(
        secret in "[A-Za-z0-9]{24,40}",
        place in 0u8..6,
        rest in config_yaml(),
    ) {
        let mut root = match rest {
            serde_yaml::Value::Mapping(m) => m,
            _ => unreachable!(),
        };
        let s = serde_yaml::Value::String(secret.clone());
        let (section, key, v) = match place {
            0 => ("upstox", "client_secret", s),
            1 => ("server", "api_key", s),
            2 => ("upstox", "client_secret", serde_yaml::Value::Sequence(vec![s])),
            3 => ("upstox", "client_secret", serde_yaml::Value::Mapping([(serde_yaml::Value::String("k".into()), s)].into_iter().collect())),
            4 => ("server", "api_key", serde_yaml::Value::Tagged(Box::new(serde_yaml::value::TaggedValue { tag: serde_yaml::value::Tag::new("secret"), value: s }))),
            _ => ("upstox", "client_secret", serde_yaml::Value::String(format!("  {secret}\t"))),
        };
        let section = root
            .entry(serde_yaml::Value::String(section.into()))
            .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
        if !section.is_mapping() {
            *section = serde_yaml::Value::Mapping(Default::default());
        }
        section.as_mapping_mut().unwrap().insert(serde_yaml::Value::String(key.into()), v);
        let yaml = serde_yaml::to_string(&serde_yaml::Value::Mapping(root)).unwrap();
        match Scratch::new().load(yaml.as_bytes()) {
            Ok(c) => prop_assert!(!c.to_masked_yaml().contains(&secret)),
            Err(e) => prop_assert!(!e.to_string().contains(&secret), "{}", e),
        }
    }

    /// Any `TOKENWATCH__…` and `UPSTOX_…` environment values load or fail cleanly, and a
    /// secret given through the environment never appears in the error or the masked config.
    #[test]
    fn config_environment_values_load_or_fail_without_showing_secrets(
        secret in "[A-Za-z0-9]{24,40}",
        vars in vec((
            prop_oneof![
                Just("TOKENWATCH__MONITOR__CHECK_INTERVAL"), Just("TOKENWATCH__RENEW__STRATEGY"),
                Just("TOKENWATCH__SERVER__LISTEN"), Just("TOKENWATCH__TOKEN__ON_CHANGE"),
                Just("TOKENWATCH__TOKEN__BACKUPS"), Just("TOKENWATCH__RENEW__NOT_BEFORE"),
                Just("TOKENWATCH__NOPE__X"), Just("TOKENWATCH____X"), Just("TOKENWATCH__UPSTOX"),
                Just("UPSTOX_CLIENT_ID"), Just("UPSTOX_REDIRECT_URI"), Just("TOKENWATCH__LOG__LEVEL"),
            ],
            prop_oneof![odd_text(), "\\PC{0,30}", Just("[\"a\",".to_string()), Just("[1,2]".to_string()), Just("[\"systemctl\",\"x\"]".to_string())],
        ), 0..5),
        secret_var in prop_oneof![Just("UPSTOX_CLIENT_SECRET"), Just("TOKENWATCH__UPSTOX__CLIENT_SECRET"), Just("TOKENWATCH__SERVER__API_KEY")],
        secret_shape in 0u8..3,
    ) {
        let mut s = Scratch::new();
        for (k, v) in vars {
            s.env.insert(k.into(), v);
        }
        let value = match secret_shape {
            0 => secret.clone(),
            1 => format!("[\"{secret}\""),
            _ => format!("[\"{secret}\"]"),
        };
        s.env.insert(secret_var.into(), value);
        match s.load(b"") {
            Ok(c) => prop_assert!(!c.to_masked_yaml().contains(&secret)),
            Err(e) => prop_assert!(!e.to_string().contains(&secret), "{}", e),
        }
    }

    /// A `.env` file of any content is loaded or refused by line number, never by quoting a
    /// line (which may hold a secret).
    #[test]
    fn dotenv_errors_never_quote_a_line(
        secret in "[A-Za-z0-9]{24,40}",
        lines in vec(prop_oneof![
            "[A-Z_]{1,10}=[a-z0-9]{0,10}",
            "[ -~]{0,30}",
            Just("export X=1".to_string()),
            Just("X=\"unterminated".to_string()),
            Just("X='a b' c".to_string()),
            Just("${X".to_string()),
            Just("X=${".to_string()),
        ], 0..6),
        secret_line in prop_oneof![
            Just("UPSTOX_CLIENT_SECRET=SECRET"),
            Just("UPSTOX_CLIENT_SECRET SECRET"),
            Just("UPSTOX_CLIENT_SECRET=\"SECRET"),
            Just("UPSTOX_CLIENT_SECRET='SECRET"),
            Just("UPSTOX_CLIENT_SECRET=SECRET withspace"),
            Just("UPSTOX_CLIENT_SECRET=${SECRET"),
            Just("SECRET"),
        ],
        at_line in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut all = lines;
        all.insert(at_line.index(all.len() + 1), secret_line.replace("SECRET", &secret));
        std::fs::write(dir.path().join(".env"), all.join("\n")).unwrap();
        if let Err(e) = config::load_env(dir.path()) {
            prop_assert!(!e.to_string().contains(&secret), "{}", e);
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// A webhook URL may carry its secret in the path (Slack, Discord): `config check` hides
    /// the path, so a config error about that URL must not show it either.
    #[test]
    fn config_error_about_a_webhook_url_does_not_show_its_secret_path(
        secret in "[A-Za-z0-9]{24,40}",
        shape in prop_oneof![
            Just("hooks.slack.com/services/T0/B0/SECRET"),
            Just("ftp://hooks.slack.com/services/SECRET"),
            Just("https//hooks.slack.com/services/SECRET"),
            Just("discord.com/api/webhooks/1/SECRET"),
        ],
    ) {
        let yaml = format!("notifications:\n  webhook_url: \"{}\"\n", shape.replace("SECRET", &secret));
        let e = Scratch::new().load(yaml.as_bytes()).expect_err("an invalid URL");
        prop_assert!(!e.to_string().contains(&secret), "{}", e);
    }
}

// ---------------------------------------------------------------------------------------------
// Upstox answers
// ---------------------------------------------------------------------------------------------

fn upstox_body() -> impl Strategy<Value = Vec<u8>> {
    let code = prop_oneof![
        Just("UDAPI100050"),
        Just("UDAPI10005"),
        Just("UDAPI100072"),
        Just("UDAPI100074"),
        Just("UDAPI100016"),
        Just("UDAPI1022"),
    ];
    prop_oneof![
        vec(any::<u8>(), 0..1_000),
        Just(b"<html><body>error code: 1010</body></html>".to_vec()),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (code, any::<bool>(), any::<bool>(), "\\PC{0,40}").prop_map(|(c, camel, snake, msg)| {
            let mut e = Map::new();
            if camel {
                e.insert("errorCode".into(), json!(c));
            }
            if snake {
                e.insert("error_code".into(), json!(c));
            }
            e.insert("message".into(), json!(msg));
            serde_json::to_vec(&json!({"status": "error", "errors": [e]})).unwrap()
        }),
        json_value()
            .prop_map(|d| serde_json::to_vec(&json!({"status": "success", "data": d})).unwrap()),
        (1usize..20_000).prop_map(|d| format!(
            r#"{{"status":"success","data":{}}}"#,
            nested(d, "[", "]", "")
        )
        .into_bytes()),
        (0usize..300_000).prop_map(|n| format!(
            r#"{{"status":"success","data":"{}"}}"#,
            "x".repeat(n)
        )
        .into_bytes()),
    ]
}

proptest! {
    #![proptest_config(cases(256))]

    /// Every answer is classified without a panic, and by the rules of UPSTOX.md: 401 or
    /// UDAPI100050 makes the token invalid; 429, UDAPI10005, the service window, 5xx and
    /// non-JSON bodies are transient (keeping `Retry-After`); only a 2xx JSON object that is
    /// not an error envelope is success.
    #[test]
    fn upstox_answers_are_classified_by_the_rules(
        status in prop_oneof![Just(200u16), Just(401), Just(403), Just(429), Just(500), Just(503), 0u16..1000],
        retry in proptest::option::of(0u64..100_000),
        content_type in prop_oneof![
            Just("application/json".to_string()),
            Just("text/html; charset=utf-8".to_string()),
            Just(String::new()),
            "[ -~]{0,20}",
        ],
        body in upstox_body(),
    ) {
        let retry_after = retry.map(Duration::from_secs);
        let got = classify("profile", status, retry_after, &content_type, &body);
        // Bodies over MAX_BODY are "not the API" and transient, whatever the status.
        let oversized = body.len() > tokenwatch::brokers::upstox::client::MAX_BODY;
        let json: Option<Value> = serde_json::from_slice::<Value>(&body).ok().filter(Value::is_object).filter(|_| !oversized);
        let first = json.as_ref().and_then(|j| j.get("errors")).and_then(Value::as_array).and_then(|a| a.first());
        let code = first.and_then(|e| e.get("error_code").or_else(|| e.get("errorCode"))).and_then(Value::as_str);
        let code = first
            .and_then(|e| e.get("error_code").and_then(Value::as_str).or_else(|| e.get("errorCode").and_then(Value::as_str)))
            .or(code);
        let is_error = json.as_ref().and_then(|j| j.get("status")).and_then(Value::as_str) == Some("error");
        match &got {
            Ok(v) => {
                prop_assert!((200..300).contains(&status));
                prop_assert!(json.as_ref() == Some(v));
                prop_assert!(!is_error);
                prop_assert!(!matches!(code, Some("UDAPI100050" | "UDAPI10005" | "UDAPI100072" | "UDAPI100074")));
            }
            Err(ApiError::Invalid { .. }) => {
                // Only Upstox's JSON UDAPI100050 says the token is dead.
                prop_assert!(json.is_some() && code == Some("UDAPI100050"), "{:?}", got);
            }
            Err(e @ ApiError::Transient { .. }) => {
                prop_assert_eq!(e.retry_after(), retry_after);
                prop_assert!(oversized || code != Some("UDAPI100050"));
                prop_assert!(
                    oversized || json.is_none() || status == 429 || (500..600).contains(&status)
                        || matches!(code, Some("UDAPI10005" | "UDAPI100072" | "UDAPI100074"))
                        || !((200..300).contains(&status) || (400..500).contains(&status)),
                    "{:?}", got
                );
            }
            Err(ApiError::Rejected { status: s, .. }) => {
                prop_assert_eq!(*s, status);
                prop_assert!(json.is_some() && (400..500).contains(&status) || is_error, "{:?}", got);
                prop_assert!(status != 429 && code != Some("UDAPI100050"));
            }
        }
        if oversized {
            prop_assert!(matches!(got, Err(ApiError::Transient { .. })), "{:?}", got);
        } else if json.is_some() && code == Some("UDAPI100050") {
            prop_assert!(matches!(got, Err(ApiError::Invalid { .. })), "{:?}", got);
        } else if json.is_none() {
            // Not Upstox's JSON (an HTML 401 included): transient, whatever the status.
            prop_assert!(matches!(got, Err(ApiError::Transient { .. })), "{:?}", got);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed regression cases (inputs that once broke a parser, or that a fuzzer would take long
// to reach)
// ---------------------------------------------------------------------------------------------

#[test]
fn regression_deep_json_in_every_json_parser_is_an_error_not_a_stack_overflow() {
    let deep = nested(100_000, "[", "]", "");
    let obj = format!(r#"{{"access_token":"abcdefghij","x":{deep}}}"#);
    assert!(parse_token(obj.as_bytes(), None).is_err());
    assert!(check_delivery(deep.as_bytes(), &expectation(None), at(1_764_128_520)).is_err());
    assert_eq!(
        decode_jwt_claims(&format!("h.{}.s", URL_SAFE_NO_PAD.encode(&deep))),
        None
    );
    assert!(classify("profile", 200, None, "application/json", deep.as_bytes()).is_err());
}

#[test]
fn regression_yaml_alias_bomb_is_refused() {
    // Nine levels of nine aliases: a billion nodes if expanded.
    let mut yaml = String::from("a0: &a0 [\"lol\"]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(",");
        yaml.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    yaml.push_str("upstox:\n  client_id: *a9\n");
    let started = std::time::Instant::now();
    assert!(Scratch::new().load(yaml.as_bytes()).is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn regression_extreme_epoch_values_in_time_fields() {
    for v in [
        "-9223372036854775808",
        "9223372036854775807",
        "\"9223372036854775807\"",
        "\"99999999999999999999\"",
        "1e308",
        "-1e308",
        "8210266876799999",
        "-8334601228800000",
    ] {
        for field in ["expires_at", "issued_at", "created_at"] {
            let text = format!(r#"{{"access_token":"abcdefghijklmnop","{field}":{v}}}"#);
            let got = parse_token(text.as_bytes(), Some(at(1_764_128_520)));
            if let Ok(t) = got {
                assert!(
                    PLAUSIBLE_SECS.contains(&t.expires_at.timestamp()) || field != "expires_at"
                );
            }
        }
    }
}

/// Found by `pasted_address_in_quotes_or_brackets_gives_the_code`. With a trailing quote or
/// bracket the URL parser percent-encodes it into the last parameter: the code read is `XYZ"`,
/// a code Upstox never issued, and the single-use login is burnt; with Upstox's own order
/// (`code` first) the quote lands on the state and the paste is refused as "an old or forged
/// link". A leading quote makes the text no URL at all.
#[test]
fn regression_pasted_address_in_quotes_or_brackets() {
    let s = Secret::new("expected-state-0123456789abcdef");
    let url = "http://localhost:5001/callback?code=XYZ&state=expected-state-0123456789abcdef";
    let swapped = "http://localhost:5001/callback?state=expected-state-0123456789abcdef&code=XYZ";
    for pasted in [
        format!("\"{url}\""),
        format!("'{url}'"),
        format!("<{url}>"),
        format!("`{url}`"),
        format!("{url}\""),
        format!("{swapped}\""),
        format!("{swapped}>"),
    ] {
        match read_pasted(&pasted, &s) {
            Ok(Callback::Code(c)) => assert_eq!(c.expose(), "XYZ", "{pasted}"),
            other => panic!("{other:?} for {pasted}"),
        }
    }
}

/// Found by `notifier_accepted_delivery_is_a_token_file_tokenwatch_can_read`: a delivery whose
/// `issued_at` is epoch seconds (or 0, or any time before 2000) is accepted, stored with an
/// `issued_at` in 1970, and the stored file is then refused by tokenwatch's own reader
/// ("issued_at" is not between the years 2000 and 2200): the account shows no usable token.
#[test]
fn regression_notifier_issued_at_in_seconds_stores_an_unreadable_file() {
    let now = at(1_764_128_520); // 2025-11-26 09:12 IST
    for issued in ["1764128520", "0", "-1"] {
        let body = json!({
            "client_id": CLIENT_ID, "user_id": "AB1234", "message_type": "access_token",
            "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.payloadpayload.signature",
            "token_type": "Bearer", "expires_at": "1764194400000", "issued_at": issued,
        });
        let t = check_delivery(
            body.to_string().as_bytes(),
            &expectation(Some("AB1234")),
            now,
        )
        .expect("a good delivery");
        let back = parse_token(to_format1_json(&t).as_bytes(), None);
        assert!(back.is_ok(), "issued_at {issued}: {:?}", back.err());
    }
}
