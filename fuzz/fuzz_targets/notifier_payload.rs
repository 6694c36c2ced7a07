//! v3 notifier webhook payload: any body is a token or a rejection; an accepted token expires
//! after `now` and by the next 03:30 IST (plus skew); a rejection never quotes a JWT-like token.
#![no_main]

use chrono::{DateTime, Duration};
use libfuzzer_sys::fuzz_target;
use tokenwatch::auth::notifier::{EXPIRY_SKEW, Expectation, check_delivery};
use tokenwatch::token::expiry::upstox_expiry;

fuzz_target!(|data: &[u8]| {
    let now = DateTime::from_timestamp(1_764_128_520, 0).unwrap();
    let skew = Duration::from_std(EXPIRY_SKEW).unwrap();
    let token: Option<String> = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("access_token")?.as_str().map(|s| s.trim().to_owned()));
    for user_id in [None, Some("AB1234".to_string())] {
        let expect = Expectation {
            client_id: "615b1297-3e0a-4c1b-9a52-0f2d3b1c9e77".into(),
            user_id,
        };
        match check_delivery(data, &expect, now) {
            Ok(t) => {
                assert!(t.expires_at > now);
                assert!(t.expires_at <= upstox_expiry(now + skew) + skew);
            }
            Err(r) => {
                // Only long base64url-ish tokens: a short one may legitimately be a word of
                // the fixed reason text.
                if let Some(token) = token.as_deref().filter(|t| {
                    t.len() >= 20
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                }) {
                    assert!(
                        !r.to_string().contains(token),
                        "the rejection quotes the token"
                    );
                }
            }
        }
    }
});
